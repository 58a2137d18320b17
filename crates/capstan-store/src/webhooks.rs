//! Webhooks, the notifications change sets queue for them (an outbox), and their
//! deliveries.

use async_trait::async_trait;
use capstan_model::ProjectKey;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::Result;
use crate::audit::{AuditEntry, insert_audit};
use crate::sql::{SqlStore, corrupt, json_column, key_column, not_found};

/// A message for every webhook of a project that listens to `event`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub event: String,
    pub body: Value,
}

text_enum! {
    /// Where a delivery is.
    pub enum DeliveryStatus {
        /// Not delivered yet; it is tried again at its next attempt's time.
        Pending = "pending",
        Delivered = "delivered",
        /// Given up after the last attempt.
        Failed = "failed",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    pub id: String,
    pub project: ProjectKey,
    pub url: String,
    /// The key the server signs deliveries with (HMAC-SHA256); kept, because signing
    /// needs it.
    pub secret: String,
    /// Events it receives; empty means all.
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub webhook: WebhookRecord,
    pub event: String,
    pub body: Value,
    pub attempts: i64,
    pub next_attempt_at: i64,
    /// `pending`, `delivered` or `failed` (gave up).
    pub status: DeliveryStatus,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Try again at this time.
    Retry {
        at: i64,
        error: String,
    },
    GaveUp {
        error: String,
    },
}

/// Webhooks of a project and their deliveries. Deliveries are queued only by change sets
/// (`ChangeSet::notifications`), in the transaction of the change they announce.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(&self, webhook: WebhookRecord, audit: AuditEntry) -> Result<()>;

    async fn list_webhooks(&self, project: &ProjectKey) -> Result<Vec<WebhookRecord>>;

    async fn delete_webhook(&self, project: &ProjectKey, id: &str, audit: AuditEntry)
    -> Result<()>;

    /// Pending deliveries whose next attempt is due, oldest first.
    async fn due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<DeliveryRecord>>;

    async fn list_deliveries(&self, webhook_id: &str) -> Result<Vec<DeliveryRecord>>;

    /// Records an attempt's outcome, if the delivery is still pending.
    async fn settle_delivery(&self, id: i64, outcome: DeliveryOutcome, at: i64) -> Result<()>;
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn create_webhook(&self, webhook: WebhookRecord, audit: AuditEntry) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&webhook.id)
        .bind(webhook.project.as_str())
        .bind(&webhook.url)
        .bind(&webhook.secret)
        .bind(serde_json::to_string(&webhook.events).map_err(corrupt)?)
        .bind(&webhook.created_by)
        .bind(webhook.created_at)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_webhooks(&self, project: &ProjectKey) -> Result<Vec<WebhookRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE project = $1 ORDER BY created_at, id"
        ))
        .bind(project.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    async fn delete_webhook(
        &self,
        project: &ProjectKey,
        id: &str,
        audit: AuditEntry,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE project = $1 AND id = $2")
            .bind(project.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(not_found("webhook", id));
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "{} WHERE d.status = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.id LIMIT $2",
            delivery_select()
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn list_deliveries(&self, webhook_id: &str) -> Result<Vec<DeliveryRecord>> {
        let rows = sqlx::query(&format!(
            "{} WHERE d.webhook_id = $1 ORDER BY d.id",
            delivery_select()
        ))
        .bind(webhook_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn settle_delivery(&self, id: i64, outcome: DeliveryOutcome, at: i64) -> Result<()> {
        let (status, next, error) = match outcome {
            DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, at, None),
            DeliveryOutcome::Retry { at: next, error } => {
                (DeliveryStatus::Pending, next, Some(error))
            }
            DeliveryOutcome::GaveUp { error } => (DeliveryStatus::Failed, at, Some(error)),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, last_error = $4, \
             attempts = attempts + 1, settled_at = CASE WHEN $2 = 'pending' THEN NULL ELSE $5 END \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(next)
        .bind(error)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Queues a delivery of the notification for every webhook of the project that listens
/// to its event, in a change set's transaction.
pub(crate) async fn queue_notification(
    tx: &mut Transaction<'_, Any>,
    project: &ProjectKey,
    notification: &Notification,
    at: i64,
) -> Result<()> {
    let webhooks = sqlx::query(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE project = $1 ORDER BY id"
    ))
    .bind(project.as_str())
    .fetch_all(&mut **tx)
    .await?;
    for row in &webhooks {
        let webhook = webhook_from_row(row)?;
        if !webhook.events.is_empty() && !webhook.events.contains(&notification.event) {
            continue;
        }
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event, body, attempts, next_attempt_at, \
             status, created_at) VALUES ($1, $2, $3, 0, $4, 'pending', $4)",
        )
        .bind(&webhook.id)
        .bind(&notification.event)
        .bind(notification.body.to_string())
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

const WEBHOOK_COLUMNS: &str = "id, project, url, secret, events, created_by, created_at";

fn webhook_from_row(row: &AnyRow) -> Result<WebhookRecord> {
    let events: Vec<String> = serde_json::from_value(json_column(row, "events")?)
        .map_err(|error| corrupt(format!("column events: {error}")))?;
    Ok(WebhookRecord {
        id: row.try_get("id")?,
        project: key_column(row, "project", ProjectKey::parse)?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        events,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Deliveries joined with their webhook, as `delivery_from_row` reads them.
fn delivery_select() -> String {
    let columns = WEBHOOK_COLUMNS
        .split(", ")
        .map(|column| format!("w.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT d.id AS delivery_id, d.event, d.body, d.attempts, d.next_attempt_at, d.status, \
         d.last_error, d.created_at AS delivery_created_at, {columns} \
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
    )
}

fn delivery_from_row(row: &AnyRow) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: row.try_get("delivery_id")?,
        webhook: webhook_from_row(row)?,
        event: row.try_get("event")?,
        body: json_column(row, "body")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        status: {
            let status: String = row.try_get("status")?;
            DeliveryStatus::parse(&status)
                .ok_or_else(|| corrupt(format!("delivery status {status:?}")))?
        },
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("delivery_created_at")?,
    })
}
