//! Webhooks: where rollout news goes. Messages are queued in the transaction of the
//! change they describe (see `capstan_store::Notification`) and delivered here, by one
//! replica at a time, signed, and retried with exponential backoff.
//!
//! Each delivery is a JSON POST whose `text` field makes it a valid Slack incoming-webhook
//! message. It carries `X-Capstan-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
//! HMAC-SHA256, keyed with the webhook's secret, of `<t>.<body>`; receivers recompute it
//! and reject old timestamps, so a captured message cannot be replayed later.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::core::state::Core;

mod routes;
pub mod wire;

use std::time::Duration;

use capstan_store::{DeliveryOutcome, DeliveryRecord, StoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::core::background::Lease;

/// The webhook routes.
pub fn router<S>() -> utoipa_axum::router::OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Core>: FromRef<S>,
{
    routes::router()
}

/// Every event a webhook can hear.
pub const EVENTS: [&str; 8] = [
    "rollout.started",
    "rollout.step",
    "rollout.promoted",
    "rollout.paused",
    "rollout.resumed",
    "rollout.reverted",
    "rollout.finished",
    "rollout.guardrail",
];

/// The signature header of a body sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 8;

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s, ... up to 10 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    (1_000i64 << attempts.clamp(0, 20)).min(600_000)
}

/// Delivers due webhook messages; one replica at a time holds the `webhooks` lease.
pub struct Deliverer {
    lease: Lease,
    client: reqwest::Client,
}

/// The longest a receiver may take to answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

impl Deliverer {
    pub fn new(lease_ttl_ms: i64) -> Deliverer {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the webhook HTTP client builds");
        Deliverer {
            lease: Lease::new("webhooks", lease_ttl_ms),
            client,
        }
    }

    /// Attempts every due delivery once; returns how many were delivered.
    pub async fn tick(&self, state: &Core) -> Result<usize, StoreError> {
        let now = state.clock.now_ms();
        if !self.lease.hold(state).await? {
            return Ok(0);
        }
        let mut delivered = 0;
        for delivery in state.store.due_deliveries(now, 100).await? {
            let outcome = self.attempt(&delivery, now).await;
            state.metrics.record_webhook_attempt(match outcome {
                DeliveryOutcome::Delivered => "delivered",
                DeliveryOutcome::Retry { .. } => "retry",
                DeliveryOutcome::GaveUp { .. } => "failed",
            });
            if outcome == DeliveryOutcome::Delivered {
                delivered += 1;
            }
            state
                .store
                .settle_delivery(delivery.id, outcome, state.clock.now_ms())
                .await?;
        }
        Ok(delivered)
    }

    async fn attempt(&self, delivery: &DeliveryRecord, now: i64) -> DeliveryOutcome {
        let body = delivery.body.to_string();
        let signed = signature(&delivery.webhook.secret, now / 1000, body.as_bytes());
        let sent = self
            .client
            .post(&delivery.webhook.url)
            .header("content-type", "application/json")
            .header("x-capstan-event", &delivery.event)
            .header("x-capstan-delivery", delivery.id.to_string())
            .header("x-capstan-signature", signed)
            .body(body)
            .send()
            .await;
        let error = match sent {
            Ok(response) if response.status().is_success() => return DeliveryOutcome::Delivered,
            Ok(response) => format!("the receiver answered {}", response.status()),
            Err(error) => format!("failed to send: {error}"),
        };
        let attempts = delivery.attempts + 1;
        if attempts >= MAX_ATTEMPTS {
            DeliveryOutcome::GaveUp { error }
        } else {
            DeliveryOutcome::Retry {
                at: now + backoff_ms(attempts - 1),
                error,
            }
        }
    }
}

impl crate::core::background::Controller for Deliverer {
    const WHAT: &'static str = "webhook delivery";

    type State = Arc<Core>;

    type Error = StoreError;

    async fn pass(&mut self, state: &Arc<Core>) -> Result<(), StoreError> {
        self.tick(state).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 has no vector for this framing; check against a direct computation.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{}");
        let expected = format!(
            "t=1700000000,v1={}",
            hex::encode(mac.finalize().into_bytes())
        );
        assert_eq!(signature("key", 1_700_000_000, b"{}"), expected);
        assert_ne!(signature("other", 1_700_000_000, b"{}"), expected);
        assert_ne!(signature("key", 1_700_000_001, b"{}"), expected);
    }

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(30), 600_000);
    }
}
