//! The loop every background controller runs in: one pass per interval (a slow pass
//! delays the next rather than piling them up), a failed pass logged and retried on the
//! next tick, and an end at shutdown.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::ApiError;
use crate::state::AppState;

/// A controller that does one pass of its work at a time.
pub trait Controller: Send {
    /// What a pass is called in the log.
    const WHAT: &'static str;

    fn pass(&mut self, state: &AppState) -> impl Future<Output = Result<(), ApiError>> + Send;
}

pub async fn every<C: Controller>(
    mut controller: C,
    state: AppState,
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
