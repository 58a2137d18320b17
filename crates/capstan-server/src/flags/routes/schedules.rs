//! Scheduled changes: enable, disable or replace a flag's targeting at a given time.
//! The scheduler (`crate::flags::scheduler`) carries them out.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::body::JsonBody;
use crate::core::clock::parse_rfc3339;
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InEnvironment, OnFlagIn, permissions};
use crate::core::state::Core;
use crate::flags::FlagsState;
use crate::flags::operations::schedules;
use crate::flags::wire::{Schedule, ScheduleList};

permissions! {
    ScheduleFlagChanges = (Editor, "schedule flag changes");
    ReadScheduledChanges = (Viewer, "read scheduled changes");
    CancelScheduledChanges = (Editor, "cancel scheduled changes");
}

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_for_flag, create))
        .routes(routes!(list))
        .routes(routes!(cancel))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateSchedule {
    /// When to act, RFC 3339.
    at: String,
    action: String,
    targeting: Option<Value>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}/schedules",
    tag = "schedules",
    summary = "Schedule a change to a flag",
    params(paths::FlagInEnvironment),
    request_body = CreateSchedule,
    responses((status = 201, description = "Created", body = Schedule), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn create(
    State(state): State<FlagsState>,
    OnFlagIn {
        principal,
        project,
        environment,
        flag,
        ..
    }: OnFlagIn<ScheduleFlagChanges>,
    JsonBody(body): JsonBody<CreateSchedule>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let run_at = parse_rfc3339(&body.at)
        .ok_or_else(|| ApiError::field("at", "expected an RFC 3339 time"))?;
    let mut action = json!({ "kind": body.action });
    if let Some(targeting) = body.targeting {
        action["targeting"] = targeting;
    }
    let scope = (&project, &environment, &flag);
    let record = schedules::create(&state, &principal.name, scope, run_at, action).await?;
    Ok((StatusCode::CREATED, Json(Schedule::from(&record))))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/schedules",
    tag = "schedules",
    summary = "Scheduled changes of an environment",
    params(paths::Environment),
    responses((status = 200, description = "OK", body = ScheduleList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<FlagsState>,
    InEnvironment {
        project,
        environment,
        ..
    }: InEnvironment<ReadScheduledChanges>,
) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = schedules::list(&state, &project, &environment, None)
        .await?
        .iter()
        .map(Schedule::from)
        .collect();
    Ok(Json(ScheduleList { schedules }))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}/schedules",
    tag = "schedules",
    summary = "Scheduled changes of a flag",
    params(paths::FlagInEnvironment),
    responses((status = 200, description = "OK", body = ScheduleList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_for_flag(
    State(state): State<FlagsState>,
    OnFlagIn {
        project,
        environment,
        flag,
        ..
    }: OnFlagIn<ReadScheduledChanges>,
) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = schedules::list(&state, &project, &environment, Some(&flag))
        .await?
        .iter()
        .map(Schedule::from)
        .collect();
    Ok(Json(ScheduleList { schedules }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/environments/{environment}/schedules/{id}",
    tag = "schedules",
    summary = "Cancel a pending scheduled change",
    params(paths::Schedule),
    responses((status = 204, description = "Cancelled"), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn cancel(
    State(state): State<FlagsState>,
    InEnvironment {
        principal,
        project,
        environment,
        ..
    }: InEnvironment<CancelScheduledChanges>,
    Path(paths::Schedule { id, .. }): Path<paths::Schedule>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::field("id", "expected a schedule id"))?;
    schedules::cancel(&state, &principal.name, &project, &environment, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
