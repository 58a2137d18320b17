//! What every capability shares at run time: the store, the clock, authentication, rate
//! limits, metrics, settings and the shutdown signal. Each capability's state holds it
//! (as `Arc<Core>`) beside its own parts; `crate::state::AppState` assembles them.

use std::sync::Arc;

use capstan_store::Store;

use crate::core::auth::TokenCache;
use crate::core::clock::Clock;
use crate::core::metrics::Metrics;
use crate::core::rate_limit::RateLimiter;

pub struct Core {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub tokens: TokenCache,
    pub rate_limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Turns true when the server starts shutting down; long-lived streams end on it.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

/// The parts of the configuration handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a rotated token keeps working beside its replacement, by default.
    pub rotation_grace_seconds: i64,
    /// Seconds between keep-alive comments on idle event streams.
    pub sse_keep_alive_seconds: u64,
    /// Hours raw events are kept (see `ServeConfig::event_retention_hours`).
    pub event_retention_hours: i64,
}

impl Core {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        rate_limiter: RateLimiter,
    ) -> Core {
        Core {
            store,
            clock,
            tokens: TokenCache::default(),
            rate_limiter,
            metrics: Arc::new(Metrics::default()),
            settings,
            shutdown: tokio::sync::watch::Sender::new(false),
        }
    }
}
