//! Feature flags: flags and their configuration per environment, segments, scheduled
//! changes, flagd import and export, evaluation (OFREP), the SDK configuration and its
//! live stream, SDK events, the compiled environments, and the write path every change
//! to them goes through.
//!
//! Other capabilities use [`operations`] and [`write`] (rollouts write a flag's split
//! through them) and read [`environments`]; the routes are this module's own.

pub mod changes;
pub mod environments;
pub mod error;
pub mod operations;
mod routes;
pub mod scheduler;
pub mod wire;
pub mod write;

use std::sync::Arc;

use axum::extract::FromRef;
use utoipa_axum::router::OpenApiRouter;

use crate::core::state::Core;
use crate::flags::environments::Environments;

/// What flags hold at run time beside `core`: the compiled environments and the lock that
/// serialises this replica's writes.
#[derive(Clone)]
pub struct FlagsState {
    pub core: Arc<Core>,
    pub environments: Arc<Environments>,
    /// Serialises this replica's writes, so that two requests here do not race each
    /// other into revision conflicts; the store's revisions order writes across replicas.
    pub write_lock: Arc<tokio::sync::Mutex<()>>,
}

impl FlagsState {
    pub fn new(core: Arc<Core>) -> FlagsState {
        FlagsState {
            environments: Arc::new(Environments::new(core.store.clone(), core.metrics.clone())),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            core,
        }
    }
}

/// Every flag route: management, evaluation (OFREP), SDK configuration and events.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    routes::router()
}
