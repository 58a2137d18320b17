//! What every capability shares: errors and their codes, authentication and the scope
//! extractors, request parsing, the clock, background controllers and their leases,
//! metrics, health, rate limits, configuration, and the routes that belong to no one
//! capability (projects and environments, tokens, the audit trail).
//!
//! *API boundary*: `core` imports no capability. Capabilities import `core`.

pub mod audit;
pub mod auth;
pub mod background;
pub mod body;
pub mod clock;
pub mod config;
pub mod error;
pub mod health;
pub mod metrics;
pub mod paths;
pub mod projects;
pub mod rate_limit;
pub mod scope;
pub mod state;
pub mod tokens;
pub mod wire;
