//! The flag routes. Each parses, names its permission and calls an operation.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::core::state::Core;
use crate::flags::FlagsState;

mod events;
mod flagd;
mod flags;
mod ofrep;
mod schedules;
mod sdk;
mod segments;

use utoipa_axum::router::OpenApiRouter;

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .merge(ofrep::router())
        .merge(flags::router())
        .merge(segments::router())
        .merge(schedules::router())
        .merge(flagd::router())
        .merge(sdk::router())
        .merge(events::router())
}
