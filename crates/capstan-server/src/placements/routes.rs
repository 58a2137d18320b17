//! Placement routes: surfaces and items (management), and rank, reward and activate
//! (placement tokens).

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use capstan_model::{ProjectKey, Role, SurfaceKey};
use capstan_store::{ItemRecord, ItemStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{
    Decision, DecisionPage, Item, ItemLearning, ItemList, Lift, Ranking, StoredItems, Surface,
    SurfaceDetail, SurfaceList,
};
use super::{RankInput, SurfaceSettings, new_event_id};
use crate::core::auth::Principal;
use crate::core::body::{JsonBody, key};
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InProject, OnSurface, permissions};
use crate::core::state::Core;
use crate::placements::PlacementsState;

permissions! {
    ReadModels = (Viewer, "read models");
    ManageSurfaces = (Editor, "manage surfaces");
    ManageItems = (Editor, "manage items");
    ReadDecisions = (Viewer, "read decisions");
    ReadSurfaces = (Viewer, "read surfaces");
    ReadItems = (Viewer, "read items");
}

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    PlacementsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_surfaces))
        .routes(routes!(get_surface, put_surface))
        .routes(routes!(list_items, put_items))
        .routes(routes!(put_item))
        .routes(routes!(decisions))
        .routes(routes!(model))
        .routes(routes!(rank))
        .routes(routes!(reward))
        .routes(routes!(activate))
}

pub(super) fn surface_key(text: &str) -> Result<SurfaceKey, ApiError> {
    key("surface", text, SurfaceKey::parse)
}

/// The project a placement token works in.
pub(super) fn placement_scope(principal: &Principal) -> Result<ProjectKey, ApiError> {
    match (&principal.project, principal.role) {
        (Some(project), Role::Placement) => Ok(project.clone()),
        _ => Err(ApiError::Forbidden {
            role: principal.role.as_str(),
            action: "rank or reward (use a placement key)",
        }),
    }
}

/// An answer as the audit trail records it.
fn audited(answer: &impl serde::Serialize) -> Value {
    serde_json::to_value(answer).unwrap_or_default()
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/surfaces",
    tag = "placements",
    summary = "Placement surfaces",
    params(paths::Project),
    responses((status = 200, description = "OK", body = SurfaceList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_surfaces(
    State(state): State<PlacementsState>,
    InProject { project, .. }: InProject<ReadSurfaces>,
) -> Result<Json<SurfaceList>, ApiError> {
    let surfaces = state
        .core
        .store
        .list_surfaces(&project)
        .await?
        .iter()
        .map(Surface::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(SurfaceList { surfaces }))
}

/// A surface's description and settings; settings given are merged into the current
/// ones (or the defaults).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PutSurface {
    description: Option<String>,
    settings: Option<Value>,
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/surfaces/{surface}",
    tag = "placements",
    summary = "Create a surface or change its description and settings",
    params(paths::Surface),
    request_body = PutSurface,
    responses((status = 200, description = "OK", body = Surface), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn put_surface(
    State(state): State<PlacementsState>,
    OnSurface {
        principal,
        project,
        surface,
        ..
    }: OnSurface<ManageSurfaces>,
    JsonBody(body): JsonBody<PutSurface>,
) -> Result<Json<Surface>, ApiError> {
    let (record, settings) = super::put_surface(
        &state,
        &principal.name,
        (&project, &surface),
        body.description,
        body.settings,
    )
    .await?;
    Ok(Json(Surface::new(&record, &settings)))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/surfaces/{surface}",
    tag = "placements",
    summary = "A surface with its settings, the lift of personalisation and each item's impressions and testing state",
    params(paths::Surface),
    responses((status = 200, description = "OK", body = SurfaceDetail), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn get_surface(
    State(state): State<PlacementsState>,
    OnSurface {
        project, surface, ..
    }: OnSurface<ReadSurfaces>,
) -> Result<Json<SurfaceDetail>, ApiError> {
    let record = state.core.store.surface(&project, &surface).await?;
    let learner = state.learners.get(&state, &project, &surface).await?;
    let (lift, items) = {
        let model = learner.learner.read().unwrap_or_else(|p| p.into_inner());
        (model.lift(), model.item_stats())
    };
    Ok(Json(SurfaceDetail {
        surface: Surface::try_from(&record)?,
        model_version: learner
            .model_version
            .load(std::sync::atomic::Ordering::Relaxed),
        lift: Lift::from(&lift),
        items: items.iter().map(ItemLearning::from).collect(),
    }))
}

/// An item of a surface.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PutItem {
    /// Features as Personalizer takes them: an object (keys with object values are
    /// namespaces) or an array of such objects.
    features: Value,
    /// `live` (default) or `retired`.
    status: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    id: String,
    features: Value,
    status: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PutItems {
    items: Vec<ItemBody>,
}

/// Most items one request may put.
const MAX_ITEMS_PER_REQUEST: usize = 1_000;

fn item_record(
    field: &str,
    id: String,
    features: Value,
    status: Option<String>,
    now: i64,
) -> Result<ItemRecord, ApiError> {
    if id.is_empty() || id.len() > 256 {
        return Err(ApiError::field(
            format!("{field}id"),
            "must be 1 to 256 bytes",
        ));
    }
    super::features::parse_features(&format!("{field}features"), &features)?;
    let status = match status.as_deref() {
        None => ItemStatus::Live,
        Some(text) => ItemStatus::parse(text)
            .ok_or_else(|| ApiError::field(format!("{field}status"), "expected live or retired"))?,
    };
    Ok(ItemRecord {
        id,
        features,
        status,
        created_at: now,
        updated_at: now,
    })
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/surfaces/{surface}/items/{id}",
    tag = "placements",
    summary = "Create or replace one item of a surface",
    params(paths::SurfaceItem),
    request_body = PutItem,
    responses((status = 200, description = "OK", body = Item), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn put_item(
    State(state): State<PlacementsState>,
    OnSurface {
        principal,
        project,
        surface,
        ..
    }: OnSurface<ManageItems>,
    Path(paths::SurfaceItem { id, .. }): Path<paths::SurfaceItem>,
    JsonBody(body): JsonBody<PutItem>,
) -> Result<Json<Item>, ApiError> {
    let now = state.core.clock.now_ms();
    let item = item_record("", id, body.features, body.status, now)?;
    let answer = Item::from(&item);
    state
        .core
        .store
        .upsert_items(
            &project,
            &surface,
            std::slice::from_ref(&item),
            super::audit(
                &principal.name,
                &project,
                "item.put",
                surface.as_str(),
                audited(&answer),
                now,
            ),
        )
        .await?;
    Ok(Json(answer))
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/surfaces/{surface}/items",
    tag = "placements",
    summary = "Create or replace several items of a surface, all or none",
    params(paths::Surface),
    request_body = PutItems,
    responses((status = 200, description = "OK", body = StoredItems), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn put_items(
    State(state): State<PlacementsState>,
    OnSurface {
        principal,
        project,
        surface,
        ..
    }: OnSurface<ManageItems>,
    JsonBody(body): JsonBody<PutItems>,
) -> Result<Json<StoredItems>, ApiError> {
    if body.items.len() > MAX_ITEMS_PER_REQUEST {
        return Err(ApiError::field(
            "items",
            format!("at most {MAX_ITEMS_PER_REQUEST} items per request"),
        ));
    }
    let now = state.core.clock.now_ms();
    let items = body
        .items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            item_record(
                &format!("items[{index}]."),
                item.id,
                item.features,
                item.status,
                now,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<&str> = items.iter().map(|item| item.id.as_str()).collect();
    state
        .core
        .store
        .upsert_items(
            &project,
            &surface,
            &items,
            super::audit(
                &principal.name,
                &project,
                "items.put",
                surface.as_str(),
                json!({ "items": ids }),
                now,
            ),
        )
        .await?;
    Ok(Json(StoredItems {
        stored: items.len(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/surfaces/{surface}/items",
    tag = "placements",
    summary = "Items of a surface",
    params(paths::Surface),
    responses((status = 200, description = "OK", body = ItemList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_items(
    State(state): State<PlacementsState>,
    OnSurface {
        project, surface, ..
    }: OnSurface<ReadItems>,
) -> Result<Json<ItemList>, ApiError> {
    state.core.store.surface(&project, &surface).await?;
    let items = state
        .core
        .store
        .list_items(&project, &surface)
        .await?
        .iter()
        .map(Item::from)
        .collect();
    Ok(Json(ItemList { items }))
}

/// A candidate: the id of a live item of the surface, or an item given inline.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum CandidateBody {
    Id(String),
    Inline { id: String, features: Value },
}

/// What to rank.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RankBody {
    /// User and situation features (no raw user ids needed).
    context: Value,
    /// Default: the surface's live items.
    candidates: Option<Vec<CandidateBody>>,
    /// Ids never to show.
    exclude: Option<Vec<String>>,
    /// How many items to answer (default: all).
    slots: Option<usize>,
    /// Your id for this decision (default: generated); it seeds the decision's randomness.
    event_id: Option<String>,
    /// The user may not see the result: no reward is expected until `activate`.
    defer_activation: Option<bool>,
}

/// Candidates for a decision: given ones (ids resolved against live items) or every live
/// item, less the excluded ones.
pub(super) async fn candidates(
    state: &PlacementsState,
    project: &ProjectKey,
    surface: &SurfaceKey,
    given: Option<Vec<(String, Option<Value>)>>,
    exclude: &[String],
) -> Result<Vec<(String, Value)>, ApiError> {
    let needs_items = given
        .as_ref()
        .is_none_or(|given| given.iter().any(|(_, features)| features.is_none()));
    let items = if needs_items {
        state.core.store.list_items(project, surface).await?
    } else {
        Vec::new()
    };
    let live = |id: &str| {
        items
            .iter()
            .find(|item| item.id == id && item.status == ItemStatus::Live)
    };
    let chosen: Vec<(String, Value)> = match given {
        None => items
            .iter()
            .filter(|item| item.status == ItemStatus::Live)
            .map(|item| (item.id.clone(), item.features.clone()))
            .collect(),
        Some(given) => {
            let mut chosen = Vec::with_capacity(given.len());
            for (index, (id, features)) in given.into_iter().enumerate() {
                match features {
                    Some(features) => chosen.push((id, features)),
                    None => match live(&id) {
                        Some(item) => chosen.push((id, item.features.clone())),
                        None => {
                            return Err(ApiError::field(
                                format!("candidates[{index}]"),
                                format!("no live item {id:?} on surface {surface}"),
                            ));
                        }
                    },
                }
            }
            chosen
        }
    };
    let mut seen = std::collections::HashSet::new();
    for (index, (id, _)) in chosen.iter().enumerate() {
        if !seen.insert(id.as_str()) {
            return Err(ApiError::field(
                format!("candidates[{index}]"),
                format!("item {id:?} is listed twice"),
            ));
        }
    }
    Ok(chosen
        .into_iter()
        .filter(|(id, _)| !exclude.contains(id))
        .collect())
}

pub(super) fn check_event_id(event_id: Option<String>) -> Result<String, ApiError> {
    match event_id {
        None => Ok(new_event_id()),
        Some(id) if id.is_empty() || id.len() > 256 => {
            Err(ApiError::field("eventId", "must be 1 to 256 bytes"))
        }
        Some(id) => Ok(id),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/placements/{surface}/rank",
    tag = "placements",
    summary = "Rank content for a context (placement key): the items in order, each one's probability, and the event id to reward",
    params(("surface" = String, Path, description = "Surface key")),
    request_body = RankBody,
    responses((status = 201, description = "Ranked", body = Ranking), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn rank(
    State(state): State<PlacementsState>,
    principal: Principal,
    Path(surface): Path<String>,
    JsonBody(body): JsonBody<RankBody>,
) -> Result<(StatusCode, Json<Ranking>), ApiError> {
    let project = placement_scope(&principal)?;
    let surface = surface_key(&surface)?;
    state.core.store.surface(&project, &surface).await?;
    if body.slots == Some(0) {
        return Err(ApiError::field("slots", "must be at least 1"));
    }
    let given = body.candidates.map(|candidates| {
        candidates
            .into_iter()
            .map(|candidate| match candidate {
                CandidateBody::Id(id) => (id, None),
                CandidateBody::Inline { id, features } => (id, Some(features)),
            })
            .collect()
    });
    let candidates = candidates(
        &state,
        &project,
        &surface,
        given,
        &body.exclude.unwrap_or_default(),
    )
    .await?;
    let output = super::rank(
        &state,
        &project,
        &surface,
        RankInput {
            event_id: check_event_id(body.event_id)?,
            context: body.context,
            candidates,
            defer_activation: body.defer_activation.unwrap_or(false),
        },
    )
    .await?;
    let slots = body.slots.unwrap_or(output.ranking.len());
    Ok((StatusCode::CREATED, Json(Ranking::new(&output, slots))))
}

/// A reward for a decision.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RewardBody {
    /// Within the surface's reward range (default -1 to 1).
    value: f64,
}

#[utoipa::path(
    post,
    path = "/api/v1/placements/events/{eventId}/reward",
    tag = "placements",
    summary = "Reward a decision (placement key)",
    params(("eventId" = String, Path, description = "The event id rank answered")),
    request_body = RewardBody,
    responses((status = 204, description = "Recorded"), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn reward(
    State(state): State<PlacementsState>,
    principal: Principal,
    Path(event_id): Path<String>,
    JsonBody(body): JsonBody<RewardBody>,
) -> Result<StatusCode, ApiError> {
    let project = placement_scope(&principal)?;
    super::reward(&state, &project, &event_id, body.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/placements/events/{eventId}/activate",
    tag = "placements",
    summary = "Say the user saw a decision whose activation was deferred (placement key)",
    params(("eventId" = String, Path, description = "The event id rank answered")),
    responses((status = 204, description = "Activated"), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn activate(
    State(state): State<PlacementsState>,
    principal: Principal,
    Path(event_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let project = placement_scope(&principal)?;
    super::activate(&state, &project, &event_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DecisionsQuery {
    /// Continue after this cursor (the `next` of the previous page).
    after: Option<String>,
    /// At most this many (default 1,000, at most 10,000).
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/surfaces/{surface}/decisions",
    tag = "placements",
    summary = "The decision log of a surface, oldest first: context, candidates, the item shown, its probability and its reward (decisions learned from only, so rewards are final)",
    params(paths::Surface, DecisionsQuery),
    responses((status = 200, description = "OK", body = DecisionPage), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn decisions(
    State(state): State<PlacementsState>,
    OnSurface {
        project, surface, ..
    }: OnSurface<ReadDecisions>,
    axum::extract::Query(query): axum::extract::Query<DecisionsQuery>,
) -> Result<Json<DecisionPage>, ApiError> {
    let record = state.core.store.surface(&project, &surface).await?;
    let settings = SurfaceSettings::parse(&record.settings)?;
    let limit = query.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 10000"));
    }
    let after = match &query.after {
        None => None,
        Some(cursor) => {
            let (time, event) = cursor
                .split_once(':')
                .and_then(|(time, event)| Some((time.parse::<i64>().ok()?, event.to_owned())))
                .ok_or_else(|| {
                    ApiError::field("after", "expected the `next` cursor of a previous page")
                })?;
            Some((time, event))
        }
    };
    let page = state
        .core
        .store
        .list_decisions(&project, &surface, after, limit)
        .await?;
    let next = (page.len() as i64 == limit)
        .then(|| {
            page.last()
                .map(|last| format!("{}:{}", last.created_at, last.event_id))
        })
        .flatten();
    let decisions = page
        .iter()
        .filter(|decision| decision.learned_at.is_some())
        .map(|decision| Decision::new(decision, settings.default_reward))
        .collect::<Result<_, _>>()?;
    Ok(Json(DecisionPage { decisions, next }))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/surfaces/{surface}/model",
    tag = "placements",
    summary = "The surface's saved model, as bytes (application/octet-stream), for offline evaluation",
    params(paths::Surface),
    responses((status = 200, description = "The model; X-Capstan-Model-Version gives its version"), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn model(
    State(state): State<PlacementsState>,
    OnSurface {
        project, surface, ..
    }: OnSurface<ReadModels>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    state.core.store.surface(&project, &surface).await?;
    let (bytes, version) = state
        .core
        .store
        .load_model(&project, &surface)
        .await?
        .ok_or_else(|| ApiError::not_found("model of surface", &surface))?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_owned(),
            ),
            (
                axum::http::HeaderName::from_static("x-capstan-model-version"),
                version.to_string(),
            ),
        ],
        bytes,
    )
        .into_response())
}
