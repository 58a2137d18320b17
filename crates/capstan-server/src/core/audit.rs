//! The audit trail: every change, who made it, when, and what it was before and after.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Query, State};
use capstan_model::{EnvironmentKey, ProjectKey};
use capstan_store::AuditFilter;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::key;
use crate::core::error::ApiError;
use crate::core::scope::{Allowed, permissions};
use crate::core::state::Core;
use crate::core::wire::{AuditEntry, AuditLog};

permissions! {
    ReadTheAuditTrail = (Viewer, "read the audit trail");
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Core>: FromRef<S>,
{
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
    responses((status = 200, description = "OK", body = AuditLog), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<Arc<Core>>,
    Allowed { principal, .. }: Allowed<ReadTheAuditTrail>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditLog>, ApiError> {
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
    let entries = records.iter().map(AuditEntry::from).collect();
    Ok(Json(AuditLog { entries }))
}
