//! Import of flagd flag-definition files, one environment at a time.

use std::collections::BTreeSet;
use std::sync::Arc;

use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey, SegmentKey};
use capstan_store::{ConfigWrite, FlagRecord, FlagWrite, SegmentWrite, Write};
use serde_json::{Map, Value, json};

use crate::flags::FlagsState;
use crate::flags::environments::EnvironmentSnapshot;
use crate::flags::error::FlagError;
use crate::flags::operations::{CONFIG_FIELDS, project_environments};
use crate::flags::write::{AuditDraft, Plan, mutate};

/// The parts of a flagd file, checked for shape (the engine checks the rest).
pub struct ImportFile {
    flags: Vec<(FlagKey, Map<String, Value>)>,
    segments: Vec<(SegmentKey, Value)>,
}

pub fn read_file(document: &Value) -> Result<ImportFile, FlagError> {
    let object = document
        .as_object()
        .ok_or_else(|| FlagError::field("$", "a flagd file is a JSON object"))?;
    if let Some(field) = object.keys().find(|key| {
        !matches!(
            key.as_str(),
            "$schema" | "flags" | "$evaluators" | "metadata"
        )
    }) {
        return Err(FlagError::field(
            field.clone(),
            "unknown top-level field of a flagd file",
        ));
    }
    let shared_metadata = match object.get("metadata") {
        None => Map::new(),
        Some(Value::Object(metadata)) => metadata.clone(),
        Some(_) => return Err(FlagError::field("metadata", "expected an object")),
    };
    let flags = match object.get("flags") {
        Some(Value::Object(flags)) => flags,
        Some(_) => return Err(FlagError::field("flags", "expected an object")),
        None => return Err(FlagError::field("flags", "is required")),
    };
    let mut out = ImportFile {
        flags: Vec::new(),
        segments: Vec::new(),
    };
    for (key, config) in flags {
        let path = format!("flags.{key}");
        let flag =
            FlagKey::parse(key.clone()).map_err(|error| FlagError::field(path.clone(), error))?;
        let mut config = config
            .as_object()
            .cloned()
            .ok_or_else(|| FlagError::field(path.clone(), "expected an object"))?;
        if let Some(field) = config
            .keys()
            .find(|field| !CONFIG_FIELDS.contains(&field.as_str()))
        {
            return Err(FlagError::field(
                format!("{path}.{field}"),
                "unknown field of a flag",
            ));
        }
        // The file's shared metadata applies to every flag under the flag's own, as flagd
        // merges them; stored per flag, it survives export.
        if !shared_metadata.is_empty() {
            let mut metadata = shared_metadata.clone();
            if let Some(Value::Object(own)) = config.get("metadata") {
                metadata.extend(own.clone());
            }
            config.insert("metadata".into(), Value::Object(metadata));
        }
        out.flags.push((flag, config));
    }
    match object.get("$evaluators") {
        None => {}
        Some(Value::Object(evaluators)) => {
            for (key, rule) in evaluators {
                let segment = SegmentKey::parse(key.clone())
                    .map_err(|error| FlagError::field(format!("$evaluators.{key}"), error))?;
                out.segments.push((segment, rule.clone()));
            }
        }
        Some(_) => return Err(FlagError::field("$evaluators", "expected an object")),
    }
    Ok(out)
}

/// What an import changed.
pub struct ImportOutcome {
    /// Flags the file created.
    pub created: Vec<String>,
    /// Flags whose definition the file changed.
    pub updated: Vec<String>,
    /// Flags removed (only when the import replaces the environment).
    pub removed: Vec<String>,
    pub segments_changed: usize,
    /// The import's audit entry; `None` when it changed nothing.
    pub audit_id: Option<i64>,
}

/// Makes an environment hold the file's flags and segments, as one change; with
/// `replace`, flags and segments not in the file are removed from the environment. A new
/// flag is created in the project's other environments too, disabled.
pub async fn import(
    state: &FlagsState,
    actor: &str,
    (project, environment): (&ProjectKey, &EnvironmentKey),
    file: &ImportFile,
    replace: bool,
) -> Result<ImportOutcome, FlagError> {
    let environments = project_environments(state, project).await?;
    if !environments.contains(environment) {
        return Err(FlagError::not_found("environment", environment));
    }
    let (outcome, applied) =
        mutate::<_, FlagError>(state, actor, project, &environments, |snapshots, now| {
            plan_import(snapshots, environment, file, replace, now)
        })
        .await?;
    Ok(ImportOutcome {
        audit_id: applied.map(|applied| applied.audit_id),
        ..outcome
    })
}

/// The change an import makes, planned over the project's environments as they are now.
fn plan_import(
    snapshots: &[Arc<EnvironmentSnapshot>],
    environment: &EnvironmentKey,
    file: &ImportFile,
    replace: bool,
    now: i64,
) -> Result<Plan<ImportOutcome>, FlagError> {
    let target = snapshots
        .iter()
        .find(|snapshot| &snapshot.environment == environment)
        .ok_or_else(|| FlagError::not_found("environment", environment))?;
    let mut created = Vec::new();
    let mut updated = Vec::new();
    let mut removed = Vec::new();
    let mut plan_flags = Vec::new();
    let mut configs = Vec::new();
    for (flag, config) in &file.flags {
        let existing = target.flag(flag);
        let current = target.config(flag);
        let config_value = Value::Object(config.clone());
        if existing.is_none() {
            let variants = config.get("variants").and_then(Value::as_object);
            let flag_type = variants
                .and_then(|variants| FlagType::infer(variants.values()))
                .ok_or_else(|| {
                    FlagError::InvalidDefinition(format!(
                        "flags.{flag}.variants: a new flag needs variants that all hold values of one type"
                    ))
                })?;
            plan_flags.push(FlagWrite::Upsert(FlagRecord {
                key: flag.clone(),
                flag_type,
                description: String::new(),
                client_visible: false,
                created_at: now,
            }));
            created.push(flag.to_string());
            // The other environments get the flag too, disabled, with the same variants.
            let mut disabled = Map::new();
            disabled.insert("state".into(), json!("DISABLED"));
            for field in ["variants", "defaultVariant"] {
                if let Some(value) = config.get(field) {
                    disabled.insert(field.into(), value.clone());
                }
            }
            for other in snapshots
                .iter()
                .filter(|snapshot| &snapshot.environment != environment)
            {
                configs.push(ConfigWrite {
                    environment: other.environment.clone(),
                    flag: flag.clone(),
                    expected_version: None,
                    config: Some(Value::Object(disabled.clone())),
                });
            }
        } else if current.is_some_and(|current| current.config == config_value) {
            continue;
        } else {
            updated.push(flag.to_string());
        }
        configs.push(ConfigWrite {
            environment: environment.clone(),
            flag: flag.clone(),
            expected_version: current.map(|current| current.version),
            config: Some(config_value),
        });
    }
    let in_file: BTreeSet<&FlagKey> = file.flags.iter().map(|(flag, _)| flag).collect();
    if replace {
        for current in target
            .state
            .configs
            .iter()
            .filter(|config| !in_file.contains(&config.flag))
        {
            removed.push(current.flag.to_string());
            configs.push(ConfigWrite {
                environment: environment.clone(),
                flag: current.flag.clone(),
                expected_version: Some(current.version),
                config: None,
            });
        }
    }
    let mut segments = Vec::new();
    for (segment, rule) in &file.segments {
        let current = target
            .state
            .segments
            .iter()
            .find(|record| &record.key == segment);
        if current.is_some_and(|current| &current.rule == rule) {
            continue;
        }
        segments.push(SegmentWrite {
            environment: environment.clone(),
            key: segment.clone(),
            expected_version: current.map(|current| current.version),
            segment: Some((
                current.map(|c| c.description.clone()).unwrap_or_default(),
                rule.clone(),
            )),
        });
    }
    if replace {
        let in_file: BTreeSet<&SegmentKey> =
            file.segments.iter().map(|(segment, _)| segment).collect();
        for current in target
            .state
            .segments
            .iter()
            .filter(|segment| !in_file.contains(&segment.key))
        {
            segments.push(SegmentWrite {
                environment: environment.clone(),
                key: current.key.clone(),
                expected_version: Some(current.version),
                segment: None,
            });
        }
    }
    let changes = json!({
        "created": created,
        "updated": updated,
        "removed": removed,
        "segmentsChanged": segments.len(),
    });
    let outcome = ImportOutcome {
        segments_changed: segments.len(),
        created,
        updated,
        removed,
        audit_id: None,
    };
    let mut plan = Plan::new(
        AuditDraft {
            action: "flagd.import",
            environment: Some(environment.clone()),
            resource_kind: "environment",
            resource_key: environment.to_string(),
            before: None,
            after: Some(json!({ "replace": replace, "changes": changes })),
        },
        outcome,
    );
    plan.writes = plan_flags
        .into_iter()
        .map(Write::from)
        .chain(configs.into_iter().map(Write::from))
        .chain(segments.into_iter().map(Write::from))
        .collect();
    Ok(plan)
}
