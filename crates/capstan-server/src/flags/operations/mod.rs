//! Flag operations: what the routes, the scheduler, rollouts and (next) the console do to
//! flags. Domain values in, domain values out; never an HTTP response.
//!
//! Every write goes through [`crate::flags::write::mutate`], so each is checked by
//! compiling the environments it changes, stored as one transaction and audited.

use crate::flags::FlagsState;

pub mod events;
pub mod flagd;
pub mod schedules;
pub mod segments;

use std::sync::Arc;

use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey};
use capstan_store::{
    ConfigRecord, ConfigWrite, FlagRecord, FlagVersionRecord, FlagWrite, ScheduleWrite,
};
use serde_json::{Map, Value, json};

use crate::core::error::Failure;
use crate::flags::environments::EnvironmentSnapshot;
use crate::flags::error::FlagError;
use crate::flags::wire;
use crate::flags::write::{AuditDraft, Plan, mutate};

/// The fields of a flag's configuration in one environment (a flagd flag object).
pub const CONFIG_FIELDS: [&str; 6] = [
    "state",
    "variants",
    "defaultVariant",
    "targeting",
    "metadata",
    "prerequisites",
];

/// A flag with its configuration in each environment of its project, in the project's
/// order of environments.
pub struct FlagView {
    pub flag: FlagRecord,
    pub environments: Vec<(EnvironmentKey, ConfigRecord)>,
}

/// A flag as one environment sees it.
pub struct ConfigView {
    pub environment: EnvironmentKey,
    pub flag: FlagRecord,
    pub config: ConfigRecord,
}

/// A flag to create. What is left out is filled in: a boolean flag gets `on`/`off`
/// variants, the type is inferred from the variants, the default variant is `on` or the
/// first variant.
pub struct NewFlag {
    pub key: FlagKey,
    pub flag_type: Option<FlagType>,
    pub description: String,
    pub client_visible: bool,
    pub variants: Option<Map<String, Value>>,
    pub default_variant: Option<String>,
}

/// Changes to a flag's project-wide attributes; `None` leaves one as it is.
pub struct FlagUpdate {
    pub description: Option<String>,
    pub client_visible: Option<bool>,
}

/// How a configuration change is recorded and checked.
pub struct ConfigChange {
    /// The version the caller read (`If-Match`); a different current version is a
    /// conflict. `None` changes whatever is current.
    pub expected_version: Option<i64>,
    /// The audit action, such as `flag.enable`.
    pub action: &'static str,
    /// The pending scheduled change this change carries out, settled in the same
    /// transaction (so a schedule takes effect once, across replicas).
    pub settles_schedule: Option<i64>,
}

/// A configuration change: the new configuration from the current one.
pub type Edit<'a> =
    dyn Fn(&Map<String, Value>) -> Result<Map<String, Value>, FlagError> + Sync + 'a;

/// The environments of a project, in order.
pub async fn project_environments(
    state: &FlagsState,
    project: &ProjectKey,
) -> Result<Vec<EnvironmentKey>, FlagError> {
    Ok(state
        .core
        .store
        .list_environments(project)
        .await?
        .into_iter()
        .map(|env| env.key)
        .collect())
}

fn flag_not_found(flag: &FlagKey) -> FlagError {
    FlagError::not_found("flag", flag)
}

async fn snapshots(
    state: &FlagsState,
    project: &ProjectKey,
) -> Result<Vec<Arc<EnvironmentSnapshot>>, FlagError> {
    let mut out = Vec::new();
    for environment in project_environments(state, project).await? {
        out.push(state.environments.get(project, &environment).await?);
    }
    Ok(out)
}

fn flag_view(flag: &FlagRecord, snapshots: &[Arc<EnvironmentSnapshot>]) -> FlagView {
    FlagView {
        flag: flag.clone(),
        environments: snapshots
            .iter()
            .filter_map(|snapshot| {
                snapshot
                    .config(&flag.key)
                    .map(|config| (snapshot.environment.clone(), config.clone()))
            })
            .collect(),
    }
}

fn find_view(
    snapshots: &[Arc<EnvironmentSnapshot>],
    flag: &FlagKey,
) -> Result<FlagView, FlagError> {
    snapshots
        .first()
        .and_then(|first| first.flag(flag))
        .map(|record| flag_view(record, snapshots))
        .ok_or_else(|| flag_not_found(flag))
}

fn config_view(snapshot: &EnvironmentSnapshot, flag: &FlagKey) -> Result<ConfigView, FlagError> {
    let record = snapshot.flag(flag).ok_or_else(|| flag_not_found(flag))?;
    let config = snapshot.config(flag).ok_or_else(|| flag_not_found(flag))?;
    Ok(ConfigView {
        environment: snapshot.environment.clone(),
        flag: record.clone(),
        config: config.clone(),
    })
}

/// Every flag of a project with its configuration in every environment.
pub async fn list_flags(
    state: &FlagsState,
    project: &ProjectKey,
) -> Result<Vec<FlagView>, FlagError> {
    let snapshots = snapshots(state, project).await?;
    Ok(snapshots
        .first()
        .map(|first| {
            first
                .state
                .flags
                .iter()
                .map(|flag| flag_view(flag, &snapshots))
                .collect()
        })
        .unwrap_or_default())
}

/// One flag with its configuration in every environment.
pub async fn flag(
    state: &FlagsState,
    project: &ProjectKey,
    flag: &FlagKey,
) -> Result<FlagView, FlagError> {
    find_view(&snapshots(state, project).await?, flag)
}

/// Every flag of one environment.
pub async fn environment_flags(
    state: &FlagsState,
    project: &ProjectKey,
    environment: &EnvironmentKey,
) -> Result<Vec<ConfigView>, FlagError> {
    let snapshot = state.environments.get(project, environment).await?;
    Ok(snapshot
        .state
        .flags
        .iter()
        .filter_map(|flag| config_view(&snapshot, &flag.key).ok())
        .collect())
}

/// One flag in one environment.
pub async fn config(
    state: &FlagsState,
    (project, environment, flag): (&ProjectKey, &EnvironmentKey, &FlagKey),
) -> Result<ConfigView, FlagError> {
    let snapshot = state.environments.get(project, environment).await?;
    config_view(&snapshot, flag)
}

/// The variants, type and default variant a new flag gets.
fn new_flag_config(new: &NewFlag) -> Result<(FlagType, Value), FlagError> {
    let variants = match &new.variants {
        Some(variants) if variants.is_empty() => {
            return Err(FlagError::field("variants", "must not be empty"));
        }
        Some(variants) => variants.clone(),
        None if matches!(new.flag_type, None | Some(FlagType::Boolean)) => {
            let mut variants = Map::new();
            variants.insert("on".into(), json!(true));
            variants.insert("off".into(), json!(false));
            variants
        }
        None => {
            return Err(FlagError::field(
                "variants",
                "are required for non-boolean flags",
            ));
        }
    };
    let flag_type = match new.flag_type {
        Some(flag_type) => flag_type,
        None => FlagType::infer(variants.values()).ok_or_else(|| {
            FlagError::field(
                "variants",
                "hold values of different types; give the flag a type",
            )
        })?,
    };
    // A new flag is created disabled; turning it on serves "on" unless told otherwise.
    let default_variant = match &new.default_variant {
        Some(name) => name.clone(),
        None if variants.contains_key("on") => "on".to_owned(),
        None => variants.keys().next().cloned().unwrap_or_default(),
    };
    Ok((
        flag_type,
        json!({ "state": "DISABLED", "variants": variants, "defaultVariant": default_variant }),
    ))
}

/// Creates a flag, disabled in every environment of its project.
pub async fn create_flag(
    state: &FlagsState,
    actor: &str,
    project: &ProjectKey,
    new: NewFlag,
) -> Result<FlagView, FlagError> {
    let (flag_type, config) = new_flag_config(&new)?;
    let flag = &new.key;
    let environments = project_environments(state, project).await?;
    mutate::<_, FlagError>(state, actor, project, &environments, |snapshots, now| {
        if snapshots
            .iter()
            .any(|snapshot| snapshot.flag(flag).is_some())
        {
            return Err(Failure::AlreadyExists {
                kind: "flag",
                key: flag.to_string(),
            }
            .into());
        }
        let record = FlagRecord {
            key: flag.clone(),
            flag_type,
            description: new.description.clone(),
            client_visible: new.client_visible,
            created_at: now,
        };
        let mut plan = Plan::new(
            AuditDraft {
                action: "flag.create",
                environment: None,
                resource_kind: "flag",
                resource_key: flag.to_string(),
                before: None,
                after: Some(json!({ "flag": wire::flag_json(&record), "config": config })),
            },
            (),
        );
        plan.push(FlagWrite::Upsert(record));
        for snapshot in snapshots {
            plan.push(ConfigWrite {
                environment: snapshot.environment.clone(),
                flag: flag.clone(),
                expected_version: None,
                config: Some(config.clone()),
            });
        }
        Ok(plan)
    })
    .await?;
    self::flag(state, project, flag).await
}

/// Changes a flag's description or client visibility.
pub async fn update_flag(
    state: &FlagsState,
    actor: &str,
    project: &ProjectKey,
    flag: &FlagKey,
    update: FlagUpdate,
) -> Result<FlagView, FlagError> {
    let environments = project_environments(state, project).await?;
    mutate::<_, FlagError>(state, actor, project, &environments, |snapshots, _| {
        let current = snapshots
            .first()
            .and_then(|first| first.flag(flag))
            .ok_or_else(|| flag_not_found(flag))?;
        let mut next = current.clone();
        if let Some(description) = &update.description {
            next.description = description.clone();
        }
        if let Some(client_visible) = update.client_visible {
            next.client_visible = client_visible;
        }
        let mut plan = Plan::new(
            AuditDraft {
                action: "flag.update",
                environment: None,
                resource_kind: "flag",
                resource_key: flag.to_string(),
                before: Some(wire::flag_json(current)),
                after: Some(wire::flag_json(&next)),
            },
            (),
        );
        if &next != current {
            plan.push(FlagWrite::Upsert(next));
        }
        Ok(plan)
    })
    .await?;
    self::flag(state, project, flag).await
}

/// Deletes a flag from every environment; its history stays.
pub async fn delete_flag(
    state: &FlagsState,
    actor: &str,
    project: &ProjectKey,
    flag: &FlagKey,
) -> Result<(), FlagError> {
    let environments = project_environments(state, project).await?;
    mutate::<_, FlagError>(state, actor, project, &environments, |snapshots, _| {
        let current = find_view(snapshots, flag)?;
        let mut plan = Plan::new(
            AuditDraft {
                action: "flag.delete",
                environment: None,
                resource_kind: "flag",
                resource_key: flag.to_string(),
                before: Some(wire::full_flag_json(&current)),
                after: None,
            },
            (),
        );
        for (environment, config) in &current.environments {
            plan.push(ConfigWrite {
                environment: environment.clone(),
                flag: flag.clone(),
                expected_version: Some(config.version),
                config: None,
            });
        }
        plan.push(FlagWrite::Delete(flag.clone()));
        Ok(plan)
    })
    .await?;
    Ok(())
}

/// Changes one flag's configuration in one environment.
pub async fn change_config(
    state: &FlagsState,
    actor: &str,
    (project, environment, flag): (&ProjectKey, &EnvironmentKey, &FlagKey),
    change: ConfigChange,
    edit: &Edit<'_>,
) -> Result<ConfigView, FlagError> {
    mutate::<_, FlagError>(
        state,
        actor,
        project,
        std::slice::from_ref(environment),
        |snapshots, _| {
            let snapshot = &snapshots[0];
            let current = snapshot.config(flag).ok_or_else(|| flag_not_found(flag))?;
            if let Some(expected) = change.expected_version
                && expected != current.version
            {
                return Err(Failure::VersionConflict {
                    kind: "flag",
                    key: flag.to_string(),
                    current_version: current.version,
                }
                .into());
            }
            let before = current.config.as_object().cloned().unwrap_or_default();
            let after = edit(&before)?;
            let mut plan = Plan::new(
                AuditDraft {
                    action: change.action,
                    environment: Some(environment.clone()),
                    resource_kind: "flag",
                    resource_key: flag.to_string(),
                    before: Some(Value::Object(before.clone())),
                    after: Some(Value::Object(after.clone())),
                },
                (),
            );
            if let Some(id) = change.settles_schedule {
                plan.push(ScheduleWrite::Settle(id));
            }
            if after != before || change.settles_schedule.is_some() {
                plan.push(ConfigWrite {
                    environment: environment.clone(),
                    flag: flag.clone(),
                    expected_version: Some(current.version),
                    config: Some(Value::Object(after)),
                });
            }
            Ok(plan)
        },
    )
    .await?;
    config(state, (project, environment, flag)).await
}

/// The edit that turns a flag on (`ENABLED`) or off (`DISABLED`).
pub fn set_state(
    state: &'static str,
) -> impl Fn(&Map<String, Value>) -> Result<Map<String, Value>, FlagError> + Send + Sync {
    move |current: &Map<String, Value>| {
        let mut next = current.clone();
        next.insert("state".into(), json!(state));
        Ok(next)
    }
}

/// Every recorded version of a flag in an environment, newest first.
pub async fn history(
    state: &FlagsState,
    (project, environment, flag): (&ProjectKey, &EnvironmentKey, &FlagKey),
) -> Result<Vec<FlagVersionRecord>, FlagError> {
    let versions = state
        .core
        .store
        .flag_history(project, environment, flag)
        .await?;
    if versions.is_empty() {
        return Err(flag_not_found(flag));
    }
    Ok(versions)
}

/// Restores an earlier version of a flag's configuration as a new change.
pub async fn revert(
    state: &FlagsState,
    actor: &str,
    scope: (&ProjectKey, &EnvironmentKey, &FlagKey),
    version: i64,
    expected_version: Option<i64>,
) -> Result<ConfigView, FlagError> {
    let (project, environment, flag) = scope;
    let versions = state
        .core
        .store
        .flag_history(project, environment, flag)
        .await?;
    let target = versions
        .iter()
        .find(|candidate| candidate.version == version)
        .ok_or_else(|| {
            FlagError::field("version", format!("flag {flag:?} has no version {version}"))
        })?;
    let config = target
        .config
        .as_ref()
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            FlagError::field(
                "version",
                format!("version {version} is the flag's deletion"),
            )
        })?;
    let edit = move |_: &Map<String, Value>| Ok(config.clone());
    change_config(
        state,
        actor,
        scope,
        ConfigChange {
            expected_version,
            action: "flag.revert",
            settles_schedule: None,
        },
        &edit,
    )
    .await
}
