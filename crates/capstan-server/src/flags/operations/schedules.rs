//! Scheduled changes: enable, disable or replace a flag's targeting at a given time.
//! The scheduler (`crate::flags::scheduler`) carries them out.

use capstan_model::{EnvironmentKey, FlagKey, ProjectKey};
use capstan_store::{AuditEntry, NewSchedule, ScheduleRecord};
use serde_json::{Value, json};

use crate::core::clock::rfc3339;
use crate::flags::FlagsState;
use crate::flags::error::FlagError;
use crate::flags::wire::Schedule;

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

/// Schedules `action` (`{"kind": .., "targeting": ..}`) on a flag at `run_at`. A new
/// targeting must compile now, not fail silently when the time comes.
pub async fn create(
    state: &FlagsState,
    actor: &str,
    (project, environment, flag): (&ProjectKey, &EnvironmentKey, &FlagKey),
    run_at: i64,
    action: Value,
) -> Result<ScheduleRecord, FlagError> {
    let parsed = ScheduledAction::parse(&action)?;
    let snapshot = state.environments.get(project, environment).await?;
    let mut next = snapshot.state.clone();
    let config = next
        .configs
        .iter_mut()
        .find(|config| &config.flag == flag)
        .ok_or_else(|| FlagError::not_found("flag", flag))?;
    if let ScheduledAction::SetTargeting(targeting) = &parsed {
        config.config["targeting"] = targeting.clone();
        crate::flags::environments::compile(&next)
            .map_err(|error| FlagError::InvalidDefinition(error.to_string()))?;
    }
    let now = state.core.clock.now_ms();
    let schedule = NewSchedule {
        project: project.clone(),
        environment: environment.clone(),
        flag: flag.clone(),
        run_at,
        action: action.clone(),
        created_by: actor.to_owned(),
        created_at: now,
    };
    let audit = AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action: "schedule.create".to_owned(),
        project: Some(project.clone()),
        environment: Some(environment.clone()),
        resource_kind: "flag".to_owned(),
        resource_key: flag.to_string(),
        before: None,
        after: Some(json!({ "at": rfc3339(run_at), "action": action })),
    };
    Ok(state.core.store.create_schedule(schedule, audit).await?)
}

/// The scheduled changes of an environment, or of one flag in it.
pub async fn list(
    state: &FlagsState,
    project: &ProjectKey,
    environment: &EnvironmentKey,
    flag: Option<&FlagKey>,
) -> Result<Vec<ScheduleRecord>, FlagError> {
    let mut schedules = state
        .core
        .store
        .list_schedules(project, environment)
        .await?;
    if let Some(flag) = flag {
        schedules.retain(|schedule| &schedule.schedule.flag == flag);
    }
    Ok(schedules)
}

/// Cancels a pending scheduled change.
pub async fn cancel(
    state: &FlagsState,
    actor: &str,
    project: &ProjectKey,
    environment: &EnvironmentKey,
    id: i64,
) -> Result<(), FlagError> {
    let schedules = state
        .core
        .store
        .list_schedules(project, environment)
        .await?;
    let schedule = schedules
        .iter()
        .find(|schedule| schedule.id == id)
        .ok_or_else(|| FlagError::not_found("schedule", id))?;
    let now = state.core.clock.now_ms();
    let audit = AuditEntry {
        at: now,
        actor: actor.to_owned(),
        action: "schedule.cancel".to_owned(),
        project: Some(project.clone()),
        environment: Some(environment.clone()),
        resource_kind: "flag".to_owned(),
        resource_key: schedule.schedule.flag.to_string(),
        before: Some(schedule_json(schedule)),
        after: None,
    };
    state.core.store.cancel_schedule(id, audit).await?;
    Ok(())
}
