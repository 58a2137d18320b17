//! The loop every background controller runs in: one pass per interval (a slow pass
//! delays the next rather than piling them up), a failed pass logged and retried on the
//! next tick, and an end at shutdown.

use std::future::Future;
use std::time::Duration;

use capstan_store::StoreError;
use tokio::sync::watch;

use crate::core::state::Core;

/// A controller that does one pass of its work at a time.
pub trait Controller: Send {
    /// What a pass is called in the log.
    const WHAT: &'static str;

    /// The state of the capability the controller belongs to.
    type State: Send + Sync;

    /// What a failed pass reports; it is logged, and the next tick tries again.
    type Error: std::fmt::Display + Send;

    fn pass(&mut self, state: &Self::State)
    -> impl Future<Output = Result<(), Self::Error>> + Send;
}

pub async fn every<C: Controller>(
    mut controller: C,
    state: C::State,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = controller.pass(&state).await {
                    tracing::warn!(error = %error, "{} failed", C::WHAT);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// A lease in the store that lets one replica at a time do the work it names (drive
/// rollouts, deliver webhooks, learn placements). Each controller holds its own, under a
/// holder name unique to this process.
pub struct Lease {
    name: &'static str,
    holder: String,
    ttl_ms: i64,
}

impl Lease {
    /// `ttl_ms`: how long after its last renewal a silent holder is replaced.
    pub fn new(name: &'static str, ttl_ms: i64) -> Lease {
        Lease {
            name,
            holder: format!("replica-{:016x}", rand::random::<u64>()),
            ttl_ms,
        }
    }

    /// Takes or renews the lease; whether this replica holds it now.
    pub async fn hold(&self, core: &Core) -> Result<bool, StoreError> {
        core.store
            .acquire_lease(self.name, &self.holder, core.clock.now_ms(), self.ttl_ms)
            .await
    }
}
