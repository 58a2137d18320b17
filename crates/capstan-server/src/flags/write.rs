//! The one write path of the control plane.
//!
//! A handler describes a change as a pure plan over the current snapshots of the
//! environments it touches. [`mutate`] applies the plan to copies of those environments,
//! compiles them (so an invalid definition is refused before anything is stored), and
//! hands the change to the store as one transaction that expects the environments'
//! revisions to be unchanged. If another writer got there first, it reloads and plans
//! again; nothing is ever half applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use capstan_model::{EnvironmentKey, FlagKey, ProjectKey, SegmentKey};
use capstan_store::{
    AppliedChange, AuditEntry, ChangeSet, ConfigRecord, EnvironmentState, FlagRecord, FlagWrite,
    FlagsWrite, Notification, SegmentRecord, StoreError, Write,
};
use serde_json::Value;

use crate::core::error::Failure;
use crate::flags::FlagsState;
use crate::flags::environments::{EnvironmentSnapshot, compile};
use crate::flags::error::FlagError;

/// What a change does, before it is checked and stored: the store's writes (a variant
/// per capability), the messages announcing it, and its audit entry.
pub struct Plan<T> {
    pub writes: Vec<Write>,
    pub audit: AuditDraft,
    pub notifications: Vec<Notification>,
    /// What the operation answers with once the change is stored.
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
            writes: Vec::new(),
            audit,
            notifications: Vec::new(),
            result,
        }
    }

    /// Adds a write: a flag, configuration or segment write, a `ScheduleWrite` or a
    /// `RolloutWrite`.
    pub fn push(&mut self, write: impl Into<Write>) {
        self.writes.push(write.into());
    }

    fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.notifications.is_empty()
    }
}

/// How many times a change is planned again after losing a race with another writer.
const ATTEMPTS: usize = 5;

/// Plans, checks and stores one change over `environments` of `project`. Returns the
/// plan's result, and `None` for the store's receipt when the plan changed nothing.
pub async fn mutate<T, E>(
    state: &FlagsState,
    actor: &str,
    project: &ProjectKey,
    environments: &[EnvironmentKey],
    plan: impl Fn(&[Arc<EnvironmentSnapshot>], i64) -> Result<Plan<T>, E>,
) -> Result<(T, Option<AppliedChange>), E>
where
    E: From<FlagError>,
{
    let _writing = state.write_lock.lock().await;
    let mut last_conflict = None;
    for _ in 0..ATTEMPTS {
        let mut snapshots = Vec::with_capacity(environments.len());
        for environment in environments {
            snapshots.push(fresh_snapshot(state, project, environment).await?);
        }
        let now = state.core.clock.now_ms();
        let planned = plan(&snapshots, now)?;
        if planned.is_empty() {
            return Ok((planned.result, None));
        }
        // Check the change by compiling every environment as it will be, off the async
        // workers: a large environment takes a while to compile.
        let writes: Vec<FlagsWrite> = planned
            .writes
            .iter()
            .filter_map(|write| match write {
                Write::Flags(write) => Some(write.clone()),
                _ => None,
            })
            .collect();
        let current = snapshots.clone();
        let nexts = tokio::task::spawn_blocking(move || {
            current
                .iter()
                .map(|snapshot| {
                    let next = apply_to_state(&snapshot.state, &writes);
                    compile(&next).map(|engine| (next, engine))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|error| FlagError::from(Failure::internal(error)))?
        .map_err(|error| FlagError::InvalidDefinition(error.to_string()))?;
        let change = ChangeSet {
            project: project.clone(),
            environments: snapshots
                .iter()
                .map(|s| (s.environment.clone(), s.revision()))
                .collect(),
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
            writes: planned.writes,
            notifications: planned.notifications,
        };
        match state.core.store.apply(change).await {
            Ok(applied) => {
                // What was checked is what was stored: install it without reloading, with
                // the versions the store gave.
                for (mut next, engine) in nexts {
                    next.environment.revision += 1;
                    let versions: HashMap<&FlagKey, i64> = applied
                        .config_versions
                        .iter()
                        .filter(|(environment, _, _)| environment == &next.environment.key)
                        .map(|(_, flag, version)| (flag, *version))
                        .collect();
                    for config in &mut next.configs {
                        if let Some(version) = versions.get(&config.flag) {
                            config.version = *version;
                            config.updated_at = now;
                        }
                    }
                    for segment in &mut next.segments {
                        if segment.updated_at == 0 {
                            segment.updated_at = now;
                        }
                    }
                    state.environments.install(next, engine);
                }
                return Ok((planned.result, Some(applied)));
            }
            Err(StoreError::RevisionConflict { environment }) => last_conflict = Some(environment),
            Err(error) => return Err(FlagError::from(error).into()),
        }
    }
    let failure = Failure::Internal(anyhow::anyhow!(
        "gave up after {ATTEMPTS} concurrent changes to environment {:?}",
        last_conflict.unwrap_or_default()
    ));
    Err(FlagError::from(failure).into())
}

/// The environment as the store has it now: the cached snapshot if its revision is
/// current, otherwise a fresh one.
async fn fresh_snapshot(
    state: &FlagsState,
    project: &ProjectKey,
    environment: &EnvironmentKey,
) -> Result<Arc<EnvironmentSnapshot>, FlagError> {
    let revision = state
        .core
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
/// Linear in the size of the environment, whatever the number of writes.
fn apply_to_state(current: &EnvironmentState, writes: &[FlagsWrite]) -> EnvironmentState {
    let environment = &current.environment.key;
    let mut flags: BTreeMap<FlagKey, FlagRecord> = current
        .flags
        .iter()
        .map(|flag| (flag.key.clone(), flag.clone()))
        .collect();
    for write in writes.iter().filter_map(|write| match write {
        FlagsWrite::Flag(write) => Some(write),
        _ => None,
    }) {
        match write {
            FlagWrite::Upsert(flag) => {
                flags.insert(flag.key.clone(), flag.clone());
            }
            FlagWrite::Delete(key) => {
                flags.remove(key);
            }
        }
    }
    let mut configs: BTreeMap<FlagKey, ConfigRecord> = current
        .configs
        .iter()
        .map(|config| (config.flag.clone(), config.clone()))
        .collect();
    for write in writes.iter().filter_map(|write| match write {
        FlagsWrite::Config(write) if &write.environment == environment => Some(write),
        _ => None,
    }) {
        match &write.config {
            Some(config) => {
                configs.insert(
                    write.flag.clone(),
                    ConfigRecord {
                        flag: write.flag.clone(),
                        config: config.clone(),
                        version: write.expected_version.unwrap_or(0) + 1,
                        updated_at: 0,
                    },
                );
            }
            None => {
                configs.remove(&write.flag);
            }
        }
    }
    let mut segments: BTreeMap<SegmentKey, SegmentRecord> = current
        .segments
        .iter()
        .map(|segment| (segment.key.clone(), segment.clone()))
        .collect();
    for write in writes.iter().filter_map(|write| match write {
        FlagsWrite::Segment(write) if &write.environment == environment => Some(write),
        _ => None,
    }) {
        match &write.segment {
            Some((description, rule)) => {
                segments.insert(
                    write.key.clone(),
                    SegmentRecord {
                        key: write.key.clone(),
                        description: description.clone(),
                        rule: rule.clone(),
                        version: write.expected_version.unwrap_or(0) + 1,
                        updated_at: 0,
                    },
                );
            }
            None => {
                segments.remove(&write.key);
            }
        }
    }
    EnvironmentState {
        environment: current.environment.clone(),
        flags: flags.into_values().collect(),
        configs: configs.into_values().collect(),
        segments: segments.into_values().collect(),
    }
}
