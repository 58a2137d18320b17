//! `/api/v1/projects/{project}/webhooks`: add, list and remove webhooks, and read a
//! webhook's deliveries.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use capstan_store::{AuditEntry, WebhookRecord};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::EVENTS;
use super::wire::{CreatedWebhook, Delivery, DeliveryList, Webhook, WebhookList};
use crate::core::body::JsonBody;
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InProject, permissions};
use crate::core::state::Core;

permissions! {
    ManageWebhooks = (Admin, "manage webhooks");
}

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(delete))
        .routes(routes!(deliveries))
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
    responses((status = 201, description = "Created", body = CreatedWebhook), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn create(
    State(state): State<Arc<Core>>,
    InProject {
        principal, project, ..
    }: InProject<ManageWebhooks>,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
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
    let shown = Webhook::from(&webhook);
    // The audit trail is readable by viewers, who may not list webhooks; a webhook's URL
    // is often a credential (Slack's are), so the trail keeps only where it points.
    let audited = Webhook {
        url: redacted_url(&url),
        ..Webhook::from(&webhook)
    };
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
                after: Some(serde_json::to_value(&audited).unwrap_or_default()),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: shown,
            secret,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/webhooks",
    tag = "webhooks",
    summary = "Webhooks of a project (secrets are not shown)",
    params(paths::Project),
    responses((status = 200, description = "OK", body = WebhookList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<Arc<Core>>,
    InProject { project, .. }: InProject<ManageWebhooks>,
) -> Result<Json<WebhookList>, ApiError> {
    let webhooks = state
        .store
        .list_webhooks(&project)
        .await?
        .iter()
        .map(Webhook::from)
        .collect();
    Ok(Json(WebhookList { webhooks }))
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
    State(state): State<Arc<Core>>,
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
    responses((status = 200, description = "OK", body = DeliveryList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn deliveries(
    State(state): State<Arc<Core>>,
    InProject { project, .. }: InProject<ManageWebhooks>,
    Path(paths::Webhook { id, .. }): Path<paths::Webhook>,
) -> Result<Json<DeliveryList>, ApiError> {
    if !state
        .store
        .list_webhooks(&project)
        .await?
        .iter()
        .any(|webhook| webhook.id == id)
    {
        return Err(ApiError::not_found("webhook", id));
    }
    let deliveries = state
        .store
        .list_deliveries(&id)
        .await?
        .iter()
        .map(Delivery::from)
        .collect();
    Ok(Json(DeliveryList { deliveries }))
}

/// A URL without what may be a credential: its scheme, host and port, with the path,
/// query and user information replaced by `…`.
fn redacted_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}
