//! Segments: named, reusable targeting rules of one environment. A flag's targeting uses
//! one with `{"$ref": "segment-key"}`; in a flagd file they are the `$evaluators`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use capstan_model::SegmentKey;
use capstan_store::{SegmentRecord, SegmentWrite};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::body::{JsonBody, if_match, key};

use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InEnvironment, permissions};
use crate::flags::environments::EnvironmentSnapshot;
use crate::flags::wire::{Segment, SegmentList};
use crate::flags::write::{AuditDraft, Plan, mutate};
use crate::state::AppState;

permissions! {
    ChangeSegments = (Editor, "change segments");
    ReadSegments = (Viewer, "read segments");
}

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(
        get_segment,
        put_segment,
        delete_segment
    ))
}

fn find_segment<'a>(
    snapshot: &'a EnvironmentSnapshot,
    segment: &SegmentKey,
) -> Option<&'a SegmentRecord> {
    snapshot
        .state
        .segments
        .iter()
        .find(|record| &record.key == segment)
}

fn segment_not_found(segment: &SegmentKey) -> ApiError {
    ApiError::NotFound {
        kind: "segment",
        key: segment.to_string(),
    }
}

/// A segment as the audit trail records it.
fn segment_json(segment: &SegmentRecord) -> Value {
    serde_json::to_value(Segment::from(segment)).unwrap_or_default()
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/segments",
    tag = "segments",
    summary = "Segments of an environment",
    params(paths::Environment),
    responses((status = 200, description = "OK", body = SegmentList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    InEnvironment {
        project,
        environment,
        ..
    }: InEnvironment<ReadSegments>,
) -> Result<Json<SegmentList>, ApiError> {
    let snapshot = state.environments.get(&project, &environment).await?;
    let segments = snapshot.state.segments.iter().map(Segment::from).collect();
    Ok(Json(SegmentList { segments }))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/segments/{segment}",
    tag = "segments",
    summary = "One segment",
    params(paths::SegmentInEnvironment),
    responses((status = 200, description = "OK", body = Segment), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn get_segment(
    State(state): State<AppState>,
    InEnvironment {
        project,
        environment,
        ..
    }: InEnvironment<ReadSegments>,
    Path(paths::SegmentInEnvironment { segment, .. }): Path<paths::SegmentInEnvironment>,
) -> Result<Json<Segment>, ApiError> {
    let segment = key("segment", &segment, SegmentKey::parse)?;
    let snapshot = state.environments.get(&project, &environment).await?;
    let record = find_segment(&snapshot, &segment).ok_or_else(|| segment_not_found(&segment))?;
    Ok(Json(Segment::from(record)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PutSegment {
    #[serde(default)]
    description: String,
    rule: Value,
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/environments/{environment}/segments/{segment}",
    tag = "segments",
    summary = "Create or replace a segment",
    params(paths::SegmentInEnvironment),
    request_body = PutSegment,
    responses((status = 200, description = "OK", body = Segment), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn put_segment(
    State(state): State<AppState>,
    headers: HeaderMap,
    InEnvironment {
        principal,
        project,
        environment,
        ..
    }: InEnvironment<ChangeSegments>,
    Path(paths::SegmentInEnvironment { segment, .. }): Path<paths::SegmentInEnvironment>,
    JsonBody(body): JsonBody<PutSegment>,
) -> Result<(StatusCode, Json<Segment>), ApiError> {
    let segment = key("segment", &segment, SegmentKey::parse)?;
    let expected = if_match(&headers)?;
    let (created, _) = mutate::<_, ApiError>(
        &state,
        &principal.name,
        &project,
        std::slice::from_ref(&environment),
        |snapshots, _| {
            let current = find_segment(&snapshots[0], &segment);
            if let (Some(expected), Some(current)) = (expected, current)
                && expected != current.version
            {
                return Err(ApiError::VersionConflict {
                    kind: "segment",
                    key: segment.to_string(),
                    current_version: current.version,
                });
            }
            let mut plan = Plan::new(
                AuditDraft {
                    action: "segment.put",
                    environment: Some(environment.clone()),
                    resource_kind: "segment",
                    resource_key: segment.to_string(),
                    before: current.map(segment_json),
                    after: Some(json!({ "description": body.description, "rule": body.rule })),
                },
                current.is_none(),
            );
            plan.segments.push(SegmentWrite {
                environment: environment.clone(),
                key: segment.clone(),
                expected_version: current.map(|s| s.version),
                segment: Some((body.description.clone(), body.rule.clone())),
            });
            Ok(plan)
        },
    )
    .await?;
    let snapshot = state.environments.get(&project, &environment).await?;
    let record = find_segment(&snapshot, &segment).ok_or_else(|| segment_not_found(&segment))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Segment::from(record))))
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/environments/{environment}/segments/{segment}",
    tag = "segments",
    summary = "Delete a segment",
    params(paths::SegmentInEnvironment),
    responses((status = 204, description = "Deleted"), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn delete_segment(
    State(state): State<AppState>,
    InEnvironment {
        principal,
        project,
        environment,
        ..
    }: InEnvironment<ChangeSegments>,
    Path(paths::SegmentInEnvironment { segment, .. }): Path<paths::SegmentInEnvironment>,
) -> Result<StatusCode, ApiError> {
    let segment = key("segment", &segment, SegmentKey::parse)?;
    mutate::<_, ApiError>(
        &state,
        &principal.name,
        &project,
        std::slice::from_ref(&environment),
        |snapshots, _| {
            let current =
                find_segment(&snapshots[0], &segment).ok_or_else(|| segment_not_found(&segment))?;
            let mut plan = Plan::new(
                AuditDraft {
                    action: "segment.delete",
                    environment: Some(environment.clone()),
                    resource_kind: "segment",
                    resource_key: segment.to_string(),
                    before: Some(segment_json(current)),
                    after: None,
                },
                (),
            );
            plan.segments.push(SegmentWrite {
                environment: environment.clone(),
                key: segment.clone(),
                expected_version: Some(current.version),
                segment: None,
            });
            Ok(plan)
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
