//! The audit trail: every change, who made it, when, and what it was before and after.

use axum::Json;
use axum::extract::{Query, State};
use capstan_model::{EnvironmentKey, ProjectKey};
use capstan_store::AuditFilter;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::key;
use crate::core::clock::rfc3339;
use crate::core::error::ApiError;
use crate::core::scope::{Allowed, permissions};
use crate::state::AppState;

permissions! {
    ReadTheAuditTrail = (Viewer, "read the audit trail");
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    project: Option<String>,
    environment: Option<String>,
    kind: Option<String>,
    key: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    summary = "The audit trail, newest first",
    params(AuditQuery),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    Allowed { principal, .. }: Allowed<ReadTheAuditTrail>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let project = match (&query.project, &principal.project) {
        (Some(text), _) => {
            let project = key("project", text, ProjectKey::parse)?;
            principal.require_project(&project)?;
            Some(project)
        }
        (None, own) => own.clone(),
    };
    let environment = query
        .environment
        .as_deref()
        .map(|text| key("environment", text, EnvironmentKey::parse))
        .transpose()?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 1000"));
    }
    let records = state
        .store
        .audit_log(AuditFilter {
            project,
            environment,
            resource_kind: query.kind,
            resource_key: query.key,
            limit: Some(limit),
        })
        .await?;
    let entries: Vec<Value> = records
        .iter()
        .map(|record| {
            let entry = &record.entry;
            json!({
                "id": record.id,
                "at": rfc3339(entry.at),
                "actor": entry.actor,
                "action": entry.action,
                "project": entry.project.as_ref().map(|p| p.as_str()),
                "environment": entry.environment.as_ref().map(|e| e.as_str()),
                "kind": entry.resource_kind,
                "key": entry.resource_key,
                "before": entry.before,
                "after": entry.after,
            })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}
