//! The JSON shapes of what the webhook routes answer with: webhooks and their deliveries.

use capstan_store::{DeliveryRecord, WebhookRecord};
use serde::{Deserialize, Serialize};

use crate::core::clock::rfc3339;

/// A webhook, never its secret.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// The events it receives (see `webhooks::EVENTS`); empty means all.
    pub events: Vec<String>,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&WebhookRecord> for Webhook {
    fn from(webhook: &WebhookRecord) -> Webhook {
        Webhook {
            id: webhook.id.clone(),
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            created_by: webhook.created_by.clone(),
            created_at: rfc3339(webhook.created_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<Webhook>,
}

/// A webhook just made, with its signing secret: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The key deliveries are signed with (HMAC-SHA256).
    pub secret: String,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not delivered yet; it is tried again at `nextAttemptAt`.
    Pending,
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

/// One message to one webhook.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: i64,
    pub event: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub next_attempt_at: String,
}

impl From<capstan_store::DeliveryStatus> for DeliveryStatus {
    fn from(status: capstan_store::DeliveryStatus) -> DeliveryStatus {
        match status {
            capstan_store::DeliveryStatus::Pending => DeliveryStatus::Pending,
            capstan_store::DeliveryStatus::Delivered => DeliveryStatus::Delivered,
            capstan_store::DeliveryStatus::Failed => DeliveryStatus::Failed,
        }
    }
}

impl From<&DeliveryRecord> for Delivery {
    fn from(delivery: &DeliveryRecord) -> Delivery {
        Delivery {
            id: delivery.id,
            event: delivery.event.clone(),
            status: delivery.status.into(),
            attempts: delivery.attempts,
            last_error: delivery.last_error.clone(),
            created_at: rfc3339(delivery.created_at),
            next_attempt_at: rfc3339(delivery.next_attempt_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}
