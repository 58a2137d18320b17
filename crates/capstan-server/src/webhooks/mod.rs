//! Webhooks: where rollout news goes. Messages are queued in the transaction of the
//! change they describe (see `capstan_store::Notification`) and delivered here, by one
//! replica at a time, signed, and retried with exponential backoff.
//!
//! Each delivery is a JSON POST whose `text` field makes it a valid Slack incoming-webhook
//! message. It carries `X-Capstan-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
//! HMAC-SHA256, keyed with the webhook's secret, of `<t>.<body>`; receivers recompute it
//! and reject old timestamps, so a captured message cannot be replayed later.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use capstan_store::{AuditEntry, DeliveryOutcome, DeliveryRecord, StoreError, WebhookRecord};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::body::JsonBody;

use crate::core::background::Lease;
use crate::core::clock::rfc3339;
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InProject, permissions};
use crate::state::AppState;

permissions! {
    ManageWebhooks = (Admin, "manage webhooks");
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(delete))
        .routes(routes!(deliveries))
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

fn webhook_json(webhook: &WebhookRecord) -> Value {
    json!({
        "id": webhook.id,
        "url": webhook.url,
        "events": webhook.events,
        "createdBy": webhook.created_by,
        "createdAt": rfc3339(webhook.created_at),
    })
}

/// A webhook to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateWebhook {
    /// Where to POST, http:// or https://.
    url: String,
    /// Events to send; all when omitted.
    events: Option<Vec<String>>,
    /// The signing key; generated (and shown once) when omitted.
    secret: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/webhooks",
    tag = "webhooks",
    summary = "Add a webhook; the answer shows its signing secret, once",
    params(paths::Project),
    request_body = CreateWebhook,
    responses((status = 201, description = "Created", body = serde_json::Value), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn create(
    State(state): State<AppState>,
    InProject {
        principal, project, ..
    }: InProject<ManageWebhooks>,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let url = reqwest::Url::parse(&body.url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| ApiError::field("url", "expected an http:// or https:// URL"))?;
    let events = body.events.unwrap_or_default();
    if let Some((index, unknown)) = events
        .iter()
        .enumerate()
        .find(|(_, event)| !EVENTS.contains(&event.as_str()))
    {
        return Err(ApiError::field(
            format!("events[{index}]"),
            format!(
                "unknown event {unknown:?}; expected one of {}",
                EVENTS.join(", ")
            ),
        ));
    }
    let secret = match body.secret {
        Some(secret) if secret.len() < 16 => {
            return Err(ApiError::field("secret", "must be at least 16 characters"));
        }
        Some(secret) => secret,
        None => format!("whsec_{}", hex::encode(rand::random::<[u8; 24]>())),
    };
    let now = state.clock.now_ms();
    let webhook = WebhookRecord {
        id: format!("wh_{}", hex::encode(rand::random::<[u8; 8]>())),
        project: project.clone(),
        url: url.to_string(),
        secret: secret.clone(),
        events,
        created_by: principal.name.clone(),
        created_at: now,
    };
    let mut shown = webhook_json(&webhook);
    state
        .store
        .create_webhook(
            webhook.clone(),
            AuditEntry {
                at: now,
                actor: principal.name.clone(),
                action: "webhook.create".to_owned(),
                project: Some(project),
                environment: None,
                resource_kind: "webhook".to_owned(),
                resource_key: webhook.id.clone(),
                before: None,
                after: Some(webhook_json(&webhook)),
            },
        )
        .await?;
    shown["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(shown)))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/webhooks",
    tag = "webhooks",
    summary = "Webhooks of a project (secrets are not shown)",
    params(paths::Project),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    InProject { project, .. }: InProject<ManageWebhooks>,
) -> Result<Json<Value>, ApiError> {
    let webhooks: Vec<Value> = state
        .store
        .list_webhooks(&project)
        .await?
        .iter()
        .map(webhook_json)
        .collect();
    Ok(Json(json!({ "webhooks": webhooks })))
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/webhooks/{id}",
    tag = "webhooks",
    summary = "Remove a webhook and its pending deliveries",
    params(paths::Webhook),
    responses((status = 204, description = "Deleted"), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn delete(
    State(state): State<AppState>,
    InProject {
        principal, project, ..
    }: InProject<ManageWebhooks>,
    Path(paths::Webhook { id, .. }): Path<paths::Webhook>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now_ms();
    state
        .store
        .delete_webhook(
            &project,
            &id,
            AuditEntry {
                at: now,
                actor: principal.name.clone(),
                action: "webhook.delete".to_owned(),
                project: Some(project.clone()),
                environment: None,
                resource_kind: "webhook".to_owned(),
                resource_key: id.clone(),
                before: None,
                after: None,
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/webhooks/{id}/deliveries",
    tag = "webhooks",
    summary = "Deliveries of a webhook: event, attempts, status and last error",
    params(paths::Webhook),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn deliveries(
    State(state): State<AppState>,
    InProject { project, .. }: InProject<ManageWebhooks>,
    Path(paths::Webhook { id, .. }): Path<paths::Webhook>,
) -> Result<Json<Value>, ApiError> {
    if !state
        .store
        .list_webhooks(&project)
        .await?
        .iter()
        .any(|webhook| webhook.id == id)
    {
        return Err(ApiError::NotFound {
            kind: "webhook",
            key: id,
        });
    }
    let deliveries: Vec<Value> = state
        .store
        .list_deliveries(&id)
        .await?
        .iter()
        .map(|delivery| {
            json!({
                "id": delivery.id,
                "event": delivery.event,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "lastError": delivery.last_error,
                "createdAt": rfc3339(delivery.created_at),
                "nextAttemptAt": rfc3339(delivery.next_attempt_at),
            })
        })
        .collect();
    Ok(Json(json!({ "deliveries": deliveries })))
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
    pub async fn tick(&self, state: &AppState) -> Result<usize, StoreError> {
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

    type Error = StoreError;

    async fn pass(&mut self, state: &AppState) -> Result<(), StoreError> {
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
