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

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every flag route: management, evaluation (OFREP), SDK configuration and events.
pub fn router() -> OpenApiRouter<AppState> {
    routes::router()
}
