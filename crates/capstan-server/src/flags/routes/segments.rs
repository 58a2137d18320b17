//! Segments: named, reusable targeting rules of one environment. A flag's targeting uses
//! one with `{"$ref": "segment-key"}`; in a flagd file they are the `$evaluators`.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use capstan_model::SegmentKey;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::body::{JsonBody, if_match, key};
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InEnvironment, permissions};
use crate::core::state::Core;
use crate::flags::FlagsState;
use crate::flags::operations::segments;
use crate::flags::wire::{Segment, SegmentList};

permissions! {
    ChangeSegments = (Editor, "change segments");
    ReadSegments = (Viewer, "read segments");
}

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(
        get_segment,
        put_segment,
        delete_segment
    ))
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
    State(state): State<FlagsState>,
    InEnvironment {
        project,
        environment,
        ..
    }: InEnvironment<ReadSegments>,
) -> Result<Json<SegmentList>, ApiError> {
    let segments = segments::list(&state, &project, &environment)
        .await?
        .iter()
        .map(Segment::from)
        .collect();
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
    State(state): State<FlagsState>,
    InEnvironment {
        project,
        environment,
        ..
    }: InEnvironment<ReadSegments>,
    Path(paths::SegmentInEnvironment { segment, .. }): Path<paths::SegmentInEnvironment>,
) -> Result<Json<Segment>, ApiError> {
    let segment = key("segment", &segment, SegmentKey::parse)?;
    let record = segments::get(&state, (&project, &environment, &segment)).await?;
    Ok(Json(Segment::from(&record)))
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
    State(state): State<FlagsState>,
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
    let (record, created) = segments::put(
        &state,
        &principal.name,
        (&project, &environment, &segment),
        (body.description, body.rule),
        expected,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Segment::from(&record))))
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
    State(state): State<FlagsState>,
    InEnvironment {
        principal,
        project,
        environment,
        ..
    }: InEnvironment<ChangeSegments>,
    Path(paths::SegmentInEnvironment { segment, .. }): Path<paths::SegmentInEnvironment>,
) -> Result<StatusCode, ApiError> {
    let segment = key("segment", &segment, SegmentKey::parse)?;
    segments::delete(&state, &principal.name, (&project, &environment, &segment)).await?;
    Ok(StatusCode::NO_CONTENT)
}
