//! The flag routes. Each parses, names its permission and calls an operation.

mod events;
mod flagd;
mod flags;
mod ofrep;
mod schedules;
mod sdk;
mod segments;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(ofrep::router())
        .merge(flags::router())
        .merge(segments::router())
        .merge(schedules::router())
        .merge(flagd::router())
        .merge(sdk::router())
        .merge(events::router())
}
