//! Scheduled changes: enable, disable or replace a flag's targeting at a given time.
//! The scheduler (`crate::flags::scheduler`) carries them out.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use capstan_store::{AuditEntry, NewSchedule, ScheduleRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::body::JsonBody;

use crate::core::clock::{parse_rfc3339, rfc3339};
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InEnvironment, OnFlagIn, permissions};
use crate::flags::error::FlagError;
use crate::flags::wire::{Schedule, ScheduleList};
use crate::state::AppState;

permissions! {
    ScheduleFlagChanges = (Editor, "schedule flag changes");
    ReadScheduledChanges = (Viewer, "read scheduled changes");
    CancelScheduledChanges = (Editor, "cancel scheduled changes");
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_for_flag, create))
        .routes(routes!(list))
        .routes(routes!(cancel))
}

/// What a scheduled change does, as stored in the schedule's `action`.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduledAction {
    Enable,
    Disable,
    SetTargeting(Value),
}

impl ScheduledAction {
    pub fn parse(action: &Value) -> Result<ScheduledAction, FlagError> {
        match action.get("kind").and_then(Value::as_str) {
            Some("enable") => Ok(ScheduledAction::Enable),
            Some("disable") => Ok(ScheduledAction::Disable),
            Some("setTargeting") => Ok(ScheduledAction::SetTargeting(
                action.get("targeting").cloned().unwrap_or(Value::Null),
            )),
            Some(other) => Err(FlagError::field(
                "action",
                format!("unknown action {other:?}; expected enable, disable or setTargeting"),
            )),
            None => Err(FlagError::field("action", "is required")),
        }
    }
}

/// A schedule as the audit trail records it.
fn schedule_json(schedule: &ScheduleRecord) -> Value {
    serde_json::to_value(Schedule::from(schedule)).unwrap_or_default()
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
    State(state): State<AppState>,
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
    let parsed = ScheduledAction::parse(&action)?;
    if let ScheduledAction::SetTargeting(targeting) = &parsed {
        // The targeting must compile now, not fail silently when the time comes.
        let snapshot = state.environments.get(&project, &environment).await?;
        let mut next = snapshot.state.clone();
        let config = next
            .configs
            .iter_mut()
            .find(|config| config.flag == flag)
            .ok_or_else(|| ApiError::NotFound {
                kind: "flag",
                key: flag.to_string(),
            })?;
        config.config["targeting"] = targeting.clone();
        crate::flags::environments::compile(&next)
            .map_err(|error| ApiError::InvalidDefinition(error.to_string()))?;
    } else {
        let snapshot = state.environments.get(&project, &environment).await?;
        if !snapshot
            .state
            .configs
            .iter()
            .any(|config| config.flag == flag)
        {
            return Err(ApiError::NotFound {
                kind: "flag",
                key: flag.to_string(),
            });
        }
    }
    let now = state.clock.now_ms();
    let schedule = NewSchedule {
        project: project.clone(),
        environment: environment.clone(),
        flag: flag.clone(),
        run_at,
        action: action.clone(),
        created_by: principal.name.clone(),
        created_at: now,
    };
    let record = state
        .store
        .create_schedule(
            schedule,
            AuditEntry {
                at: now,
                actor: principal.name.clone(),
                action: "schedule.create".to_owned(),
                project: Some(project),
                environment: Some(environment),
                resource_kind: "flag".to_owned(),
                resource_key: flag.to_string(),
                before: None,
                after: Some(json!({ "at": rfc3339(run_at), "action": action })),
            },
        )
        .await?;
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
    State(state): State<AppState>,
    InEnvironment {
        project,
        environment,
        ..
    }: InEnvironment<ReadScheduledChanges>,
) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = state
        .store
        .list_schedules(&project, &environment)
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
    State(state): State<AppState>,
    OnFlagIn {
        project,
        environment,
        flag,
        ..
    }: OnFlagIn<ReadScheduledChanges>,
) -> Result<Json<ScheduleList>, ApiError> {
    let schedules = state
        .store
        .list_schedules(&project, &environment)
        .await?
        .iter()
        .filter(|schedule| schedule.schedule.flag == flag)
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
    State(state): State<AppState>,
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
    let schedules = state.store.list_schedules(&project, &environment).await?;
    let schedule = schedules
        .iter()
        .find(|schedule| schedule.id == id)
        .ok_or_else(|| ApiError::NotFound {
            kind: "schedule",
            key: id.to_string(),
        })?;
    let now = state.clock.now_ms();
    state
        .store
        .cancel_schedule(
            id,
            AuditEntry {
                at: now,
                actor: principal.name.clone(),
                action: "schedule.cancel".to_owned(),
                project: Some(project),
                environment: Some(environment),
                resource_kind: "flag".to_owned(),
                resource_key: schedule.schedule.flag.to_string(),
                before: Some(schedule_json(schedule)),
                after: None,
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
