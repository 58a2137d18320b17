//! Azure Personalizer's REST shapes, so an application using Microsoft's Personalizer
//! client moves to Capstan by changing its endpoint and key (a placement token, sent in
//! `Ocp-Apim-Subscription-Key`).
//!
//! `{endpoint}/personalizer/v1.0/...` ranks on the surface `personalizer` (created with
//! default settings on first use); `{endpoint}/surfaces/{surface}/personalizer/v1.0/...`
//! on a named surface. Actions come inline with their features, so nothing needs to be
//! registered first. Errors carry Personalizer's `{"error": {"code", "message",
//! "target"}}` beside Capstan's own fields.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use capstan_model::{ProjectKey, SurfaceKey};
use capstan_store::{AuditEntry, SurfaceRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::routes::{check_event_id, placement_scope, surface_key};
use super::wire::RankResponse;
use super::{RankInput, SurfaceSettings};
use crate::core::auth::Principal;
use crate::core::body::parse_json;
use crate::core::error::ApiError;
use crate::core::state::Core;
use crate::placements::PlacementsState;
use crate::placements::error::PlacementError;

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    PlacementsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(rank_default))
        .routes(routes!(reward_default))
        .routes(routes!(activate_default))
        .routes(routes!(rank_on_surface))
        .routes(routes!(reward_on_surface))
        .routes(routes!(activate_on_surface))
}

/// The surface `/personalizer/v1.0` ranks on.
const DEFAULT_SURFACE: &str = "personalizer";

/// An error in Personalizer's shape (and Capstan's).
pub(super) struct PersonalizerError(ApiError);

impl From<PlacementError> for PersonalizerError {
    fn from(error: PlacementError) -> PersonalizerError {
        PersonalizerError(error.into())
    }
}

impl From<ApiError> for PersonalizerError {
    fn from(error: ApiError) -> PersonalizerError {
        PersonalizerError(error)
    }
}

impl IntoResponse for PersonalizerError {
    fn into_response(self) -> Response {
        let (status, body) = self.0.answer();
        let error = json!({ "code": body.code, "message": body.message, "target": body.field });
        let mut body = json!(body);
        body["error"] = error;
        (status, Json(body)).into_response()
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RankableAction {
    id: String,
    #[serde(default)]
    features: Value,
}

/// Personalizer's rank request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct RankRequest {
    #[serde(default)]
    context_features: Value,
    actions: Vec<RankableAction>,
    #[serde(default)]
    excluded_actions: Vec<String>,
    event_id: Option<String>,
    #[serde(default)]
    defer_activation: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RewardRequest {
    value: f64,
}

async fn default_surface(
    state: &PlacementsState,
    principal: &Principal,
    project: &ProjectKey,
) -> Result<SurfaceKey, ApiError> {
    let surface = surface_key(DEFAULT_SURFACE)?;
    match state.core.store.surface(project, &surface).await {
        Ok(_) => Ok(surface),
        Err(capstan_store::StoreError::NotFound { .. }) => {
            let now = state.core.clock.now_ms();
            let settings = serde_json::to_value(SurfaceSettings::default()).unwrap_or(Value::Null);
            let record = SurfaceRecord {
                project: project.clone(),
                key: surface.clone(),
                description: "Ranked through the Azure Personalizer API".to_owned(),
                settings: settings.clone(),
                created_at: now,
                updated_at: now,
            };
            let audit = AuditEntry {
                at: now,
                actor: principal.name.clone(),
                action: "surface.put".to_owned(),
                project: Some(project.clone()),
                environment: None,
                resource_kind: "surface".to_owned(),
                resource_key: DEFAULT_SURFACE.to_owned(),
                before: None,
                after: Some(json!({ "settings": settings })),
            };
            state.core.store.upsert_surface(record, audit).await?;
            Ok(surface)
        }
        Err(error) => Err(error.into()),
    }
}

async fn rank(
    state: &PlacementsState,
    principal: &Principal,
    surface: Option<String>,
    body: &[u8],
) -> Result<(StatusCode, Json<RankResponse>), PersonalizerError> {
    let project = placement_scope(principal)?;
    let surface = match surface {
        Some(surface) => {
            let surface = surface_key(&surface)?;
            state
                .core
                .store
                .surface(&project, &surface)
                .await
                .map_err(ApiError::from)?;
            surface
        }
        None => default_surface(state, principal, &project).await?,
    };
    let request: RankRequest = parse_json(body)?;
    let mut seen = std::collections::HashSet::new();
    for (index, action) in request.actions.iter().enumerate() {
        if action.id.is_empty() || action.id.len() > 256 {
            return Err(
                ApiError::field(format!("actions[{index}].id"), "must be 1 to 256 bytes").into(),
            );
        }
        if !seen.insert(action.id.as_str()) {
            return Err(ApiError::field(
                format!("actions[{index}].id"),
                format!("action {:?} is listed twice", action.id),
            )
            .into());
        }
    }
    let candidates: Vec<(String, Value)> = request
        .actions
        .into_iter()
        .filter(|action| !request.excluded_actions.contains(&action.id))
        .map(|action| (action.id, action.features))
        .collect();
    let output = super::rank(
        state,
        &project,
        &surface,
        RankInput {
            event_id: check_event_id(request.event_id)?,
            context: request.context_features,
            candidates,
            defer_activation: request.defer_activation,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(RankResponse::from(&output))))
}

async fn reward(
    state: &PlacementsState,
    principal: &Principal,
    event_id: &str,
    body: &[u8],
) -> Result<StatusCode, PersonalizerError> {
    let project = placement_scope(principal)?;
    let request: RewardRequest = parse_json(body)?;
    super::reward(state, &project, event_id, request.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn activate(
    state: &PlacementsState,
    principal: &Principal,
    event_id: &str,
) -> Result<StatusCode, PersonalizerError> {
    let project = placement_scope(principal)?;
    super::activate(state, &project, event_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/personalizer/v1.0/rank", tag = "personalizer",
    summary = "Azure Personalizer rank, on the surface `personalizer` (placement key)",
    request_body = RankRequest,
    responses((status = 201, description = "Ranked", body = RankResponse)),
    security(("bearer" = [])))]
async fn rank_default(
    State(state): State<PlacementsState>,
    principal: Principal,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<RankResponse>), PersonalizerError> {
    rank(&state, &principal, None, &body).await
}

#[utoipa::path(post, path = "/personalizer/v1.0/events/{eventId}/reward", tag = "personalizer",
    summary = "Azure Personalizer reward (placement key)",
    params(("eventId" = String, Path, description = "Event id")),
    request_body = RewardRequest,
    responses((status = 204, description = "Recorded")),
    security(("bearer" = [])))]
async fn reward_default(
    State(state): State<PlacementsState>,
    principal: Principal,
    Path(event_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<StatusCode, PersonalizerError> {
    reward(&state, &principal, &event_id, &body).await
}

#[utoipa::path(post, path = "/personalizer/v1.0/events/{eventId}/activate", tag = "personalizer",
    summary = "Azure Personalizer activate (placement key)",
    params(("eventId" = String, Path, description = "Event id")),
    responses((status = 204, description = "Activated")),
    security(("bearer" = [])))]
async fn activate_default(
    State(state): State<PlacementsState>,
    principal: Principal,
    Path(event_id): Path<String>,
) -> Result<StatusCode, PersonalizerError> {
    activate(&state, &principal, &event_id).await
}

#[utoipa::path(post, path = "/surfaces/{surface}/personalizer/v1.0/rank", tag = "personalizer",
    summary = "Azure Personalizer rank on a named surface (placement key)",
    params(("surface" = String, Path, description = "Surface key")),
    request_body = RankRequest,
    responses((status = 201, description = "Ranked", body = RankResponse)),
    security(("bearer" = [])))]
async fn rank_on_surface(
    State(state): State<PlacementsState>,
    principal: Principal,
    Path(surface): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<RankResponse>), PersonalizerError> {
    rank(&state, &principal, Some(surface), &body).await
}

#[utoipa::path(post, path = "/surfaces/{surface}/personalizer/v1.0/events/{eventId}/reward", tag = "personalizer",
    summary = "Azure Personalizer reward, named surface (placement key)",
    params(("surface" = String, Path, description = "Surface key"), ("eventId" = String, Path, description = "Event id")),
    request_body = RewardRequest,
    responses((status = 204, description = "Recorded")),
    security(("bearer" = [])))]
async fn reward_on_surface(
    State(state): State<PlacementsState>,
    principal: Principal,
    Path((_surface, event_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<StatusCode, PersonalizerError> {
    reward(&state, &principal, &event_id, &body).await
}

#[utoipa::path(post, path = "/surfaces/{surface}/personalizer/v1.0/events/{eventId}/activate", tag = "personalizer",
    summary = "Azure Personalizer activate, named surface (placement key)",
    params(("surface" = String, Path, description = "Surface key"), ("eventId" = String, Path, description = "Event id")),
    responses((status = 204, description = "Activated")),
    security(("bearer" = [])))]
async fn activate_on_surface(
    State(state): State<PlacementsState>,
    principal: Principal,
    Path((_surface, event_id)): Path<(String, String)>,
) -> Result<StatusCode, PersonalizerError> {
    activate(&state, &principal, &event_id).await
}
