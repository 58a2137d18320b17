//! The state every handler and controller shares, passed explicitly.

use std::sync::Arc;

use capstan_store::Store;

use crate::core::auth::TokenCache;
use crate::core::clock::Clock;
use crate::core::metrics::Metrics;
use crate::core::rate_limit::RateLimiter;
use crate::flags::environments::Environments;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub environments: Arc<Environments>,
    pub tokens: Arc<TokenCache>,
    pub rate_limiter: Arc<RateLimiter>,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<Settings>,
    /// Serialises this replica's writes, so that two requests here do not race each
    /// other into revision conflicts; the store's revisions order writes across replicas.
    pub write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Turns true when the server starts shutting down; long-lived streams end on it.
    pub shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// Placement learners this replica holds.
    pub placements: Arc<crate::placements::Placements>,
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

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Settings,
        rate_limiter: RateLimiter,
    ) -> AppState {
        let metrics = Arc::new(Metrics::default());
        AppState {
            environments: Arc::new(Environments::new(store.clone(), metrics.clone())),
            store,
            clock,
            tokens: Arc::new(TokenCache::default()),
            rate_limiter: Arc::new(rate_limiter),
            metrics,
            settings: Arc::new(settings),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            shutdown: Arc::new(tokio::sync::watch::Sender::new(false)),
            placements: Arc::default(),
        }
    }
}
