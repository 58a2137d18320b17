//! The one write path of the control plane.
//!
//! A handler describes a change as a pure plan over the current snapshots of the
//! environments it touches. [`mutate`] applies the plan to copies of those environments,
//! compiles them (so an invalid definition is refused before anything is stored), and
//! hands the change to the store as one transaction that expects the environments'
//! revisions to be unchanged. If another writer got there first, it reloads and plans
//! again; nothing is ever half applied.

use std::sync::Arc;

use capstan_model::{EnvironmentKey, ProjectKey};
use capstan_store::{
    AppliedChange, AuditEntry, ChangeSet, ConfigRecord, ConfigWrite, EnvironmentState, FlagWrite,
    SegmentRecord, SegmentWrite, StoreError,
};
use serde_json::Value;

use crate::environments::{EnvironmentSnapshot, compile};
use crate::error::ApiError;
use crate::state::AppState;

/// What a change does, before it is checked and stored.
pub struct Plan<T> {
    pub flags: Vec<FlagWrite>,
    pub configs: Vec<ConfigWrite>,
    pub segments: Vec<SegmentWrite>,
    pub audit: AuditDraft,
    pub settles_schedule: Option<i64>,
    /// What the handler answers with once the change is stored.
    pub result: T,
}

/// The audit entry of a change, less what [`mutate`] fills in (time, actor, project).
pub struct AuditDraft {
    pub action: &'static str,
    pub environment: Option<EnvironmentKey>,
    pub resource_kind: &'static str,
    pub resource_key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl<T> Plan<T> {
    pub fn new(audit: AuditDraft, result: T) -> Plan<T> {
        Plan {
            flags: Vec::new(),
            configs: Vec::new(),
            segments: Vec::new(),
            audit,
            settles_schedule: None,
            result,
        }
    }

    fn is_empty(&self) -> bool {
        self.flags.is_empty()
            && self.configs.is_empty()
            && self.segments.is_empty()
            && self.settles_schedule.is_none()
    }
}

/// How many times a change is planned again after losing a race with another writer.
const ATTEMPTS: usize = 5;

/// Plans, checks and stores one change over `environments` of `project`. Returns the
/// plan's result, and `None` for the store's receipt when the plan changed nothing.
pub async fn mutate<T>(
    state: &AppState,
    actor: &str,
    project: &ProjectKey,
    environments: &[EnvironmentKey],
    plan: impl Fn(&[Arc<EnvironmentSnapshot>], i64) -> Result<Plan<T>, ApiError>,
) -> Result<(T, Option<AppliedChange>), ApiError> {
    let _writing = state.write_lock.lock().await;
    let mut last_conflict = None;
    for _ in 0..ATTEMPTS {
        let mut snapshots = Vec::with_capacity(environments.len());
        for environment in environments {
            snapshots.push(fresh_snapshot(state, project, environment).await?);
        }
        let now = state.clock.now_ms();
        let planned = plan(&snapshots, now)?;
        if planned.is_empty() {
            return Ok((planned.result, None));
        }
        for snapshot in &snapshots {
            let next = apply_to_state(&snapshot.state, &planned);
            compile(&next).map_err(|error| ApiError::InvalidDefinition(error.to_string()))?;
        }
        let change = ChangeSet {
            project: project.clone(),
            environments: snapshots
                .iter()
                .map(|s| (s.environment.clone(), s.revision()))
                .collect(),
            flags: planned.flags,
            configs: planned.configs,
            segments: planned.segments,
            audit: AuditEntry {
                at: now,
                actor: actor.to_owned(),
                action: planned.audit.action.to_owned(),
                project: Some(project.clone()),
                environment: planned.audit.environment,
                resource_kind: planned.audit.resource_kind.to_owned(),
                resource_key: planned.audit.resource_key,
                before: planned.audit.before,
                after: planned.audit.after,
            },
            at: now,
            settles_schedule: planned.settles_schedule,
        };
        match state.store.apply(change).await {
            Ok(applied) => {
                for environment in environments {
                    state.environments.refresh(project, environment).await?;
                }
                return Ok((planned.result, Some(applied)));
            }
            Err(StoreError::RevisionConflict { environment }) => last_conflict = Some(environment),
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "gave up after {ATTEMPTS} concurrent changes to environment {:?}",
        last_conflict.unwrap_or_default()
    )))
}

/// The environment as the store has it now: the cached snapshot if its revision is
/// current, otherwise a fresh one.
async fn fresh_snapshot(
    state: &AppState,
    project: &ProjectKey,
    environment: &EnvironmentKey,
) -> Result<Arc<EnvironmentSnapshot>, ApiError> {
    let revision = state
        .store
        .environment_revision(project, environment)
        .await?;
    match state
        .environments
        .cached(project.as_str(), environment.as_str())
    {
        Some(snapshot) if snapshot.revision() == revision => Ok(snapshot),
        _ => state.environments.refresh(project, environment).await,
    }
}

/// The environment's state as it will be after the plan, for checking before storing.
fn apply_to_state<T>(current: &EnvironmentState, plan: &Plan<T>) -> EnvironmentState {
    let mut next = current.clone();
    let environment = &current.environment.key;
    for write in &plan.flags {
        match write {
            FlagWrite::Upsert(flag) => match next.flags.iter_mut().find(|f| f.key == flag.key) {
                Some(existing) => *existing = flag.clone(),
                None => next.flags.push(flag.clone()),
            },
            FlagWrite::Delete(key) => next.flags.retain(|f| &f.key != key),
        }
    }
    for write in plan
        .configs
        .iter()
        .filter(|w| &w.environment == environment)
    {
        next.configs.retain(|c| c.flag != write.flag);
        if let Some(config) = &write.config {
            next.configs.push(ConfigRecord {
                flag: write.flag.clone(),
                config: config.clone(),
                version: write.expected_version.unwrap_or(0) + 1,
                updated_at: 0,
            });
        }
    }
    for write in plan
        .segments
        .iter()
        .filter(|w| &w.environment == environment)
    {
        next.segments.retain(|s| s.key != write.key);
        if let Some((description, rule)) = &write.segment {
            next.segments.push(SegmentRecord {
                key: write.key.clone(),
                description: description.clone(),
                rule: rule.clone(),
                version: write.expected_version.unwrap_or(0) + 1,
                updated_at: 0,
            });
        }
    }
    next
}
