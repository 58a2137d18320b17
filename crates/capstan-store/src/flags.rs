//! Flags, their configuration per environment and segments: the change sets that write
//! them (with whatever else a change carries), the state an environment's flag engine
//! loads, and each flag's history.

use async_trait::async_trait;
use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey, SegmentKey};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row, Transaction};

use crate::audit::{AuditEntry, insert_audit};
use crate::projects::environment_from_row;
use crate::sql::{
    SqlStore, check_version, corrupt, json_column, key_column, not_found, optional_json_column,
};
use crate::{
    Backend, EnvironmentRecord, Notification, Result, RolloutWrite, ScheduleWrite, projects,
    rollouts, schedules, webhooks,
};

/// A flag's project-wide attributes; its per-environment configuration is a
/// [`ConfigRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRecord {
    pub key: FlagKey,
    pub flag_type: FlagType,
    pub description: String,
    pub client_visible: bool,
    pub created_at: i64,
}

/// A flag's configuration in one environment: a flagd flag object (state, variants,
/// defaultVariant, targeting, metadata, prerequisites), versioned.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRecord {
    pub flag: FlagKey,
    pub config: Value,
    pub version: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRecord {
    pub key: SegmentKey,
    pub description: String,
    pub rule: Value,
    pub version: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentState {
    pub environment: EnvironmentRecord,
    pub flags: Vec<FlagRecord>,
    pub configs: Vec<ConfigRecord>,
    pub segments: Vec<SegmentRecord>,
}

/// One atomic change to a project. Every write of the control plane is one of these.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub project: ProjectKey,
    /// Environments whose revision the change increments, with the revision the writer
    /// read; a different revision in the database aborts the change.
    pub environments: Vec<(EnvironmentKey, i64)>,
    pub audit: AuditEntry,
    pub at: i64,
    /// What the change writes, each handed to the module of the capability it belongs to.
    pub writes: Vec<Write>,
    /// Messages for the project's webhooks, queued in the same transaction (an outbox),
    /// so a committed change is always announced and an aborted one never is. Their
    /// bodies are complete: a new row's id is chosen before the change is applied.
    pub notifications: Vec<Notification>,
}

/// One write of a change set: a variant per capability, applied by that capability's
/// module in the change's transaction.
#[derive(Debug, Clone)]
pub enum Write {
    /// A flag's project-wide attributes, its configuration in an environment, or a segment.
    Flags(FlagsWrite),
    /// A scheduled change this change carries out.
    Schedule(ScheduleWrite),
    /// A rollout started or moved on (a rollout step and the flag change that carries it
    /// out commit together).
    Rollout(RolloutWrite),
}

/// A write to flags, their configurations or segments.
#[derive(Debug, Clone)]
pub enum FlagsWrite {
    Flag(FlagWrite),
    Config(ConfigWrite),
    Segment(SegmentWrite),
}

impl From<FlagWrite> for Write {
    fn from(write: FlagWrite) -> Write {
        Write::Flags(FlagsWrite::Flag(write))
    }
}

impl From<ConfigWrite> for Write {
    fn from(write: ConfigWrite) -> Write {
        Write::Flags(FlagsWrite::Config(write))
    }
}

impl From<SegmentWrite> for Write {
    fn from(write: SegmentWrite) -> Write {
        Write::Flags(FlagsWrite::Segment(write))
    }
}

impl From<ScheduleWrite> for Write {
    fn from(write: ScheduleWrite) -> Write {
        Write::Schedule(write)
    }
}

impl From<RolloutWrite> for Write {
    fn from(write: RolloutWrite) -> Write {
        Write::Rollout(write)
    }
}

impl ChangeSet {
    /// The change's writes to flags, configurations and segments.
    pub fn flag_writes(&self) -> impl Iterator<Item = &FlagsWrite> {
        self.writes.iter().filter_map(|write| match write {
            Write::Flags(write) => Some(write),
            _ => None,
        })
    }
}

#[derive(Debug, Clone)]
pub enum FlagWrite {
    /// Creates the flag, or updates its project-wide attributes.
    Upsert(FlagRecord),
    /// Deletes the flag and its configuration in every environment.
    Delete(FlagKey),
}

#[derive(Debug, Clone)]
pub struct ConfigWrite {
    pub environment: EnvironmentKey,
    pub flag: FlagKey,
    /// The version the writer read, or `None` when it expects no configuration yet.
    pub expected_version: Option<i64>,
    /// The new configuration, or `None` to remove the flag from the environment.
    pub config: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct SegmentWrite {
    pub environment: EnvironmentKey,
    pub key: SegmentKey,
    pub expected_version: Option<i64>,
    /// The new `(description, rule)`, or `None` to delete the segment.
    pub segment: Option<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppliedChange {
    pub audit_id: i64,
    /// The new version of each configuration written, in the order given.
    pub config_versions: Vec<(EnvironmentKey, FlagKey, i64)>,
}

/// One version of a flag's configuration in one environment, with the change that
/// made it. `config` is `None` for the version that deleted the flag.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagVersionRecord {
    pub version: i64,
    pub config: Option<Value>,
    pub audit_id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
}

/// Every change to flags, configurations and segments is a [`ChangeSet`], applied in
/// one transaction that also carries what goes with it: the audit entry, the schedule it
/// settles, the rollouts it starts or moves on, and the notifications it queues. Each of
/// those is written by the module that owns it.
#[async_trait]
pub trait FlagStore: Send + Sync {
    /// Everything an environment's flag engine needs: its flags, their configurations and
    /// its segments, with the revision they were read at.
    async fn load_environment(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<EnvironmentState>;

    /// Applies a change set in one transaction: all of it, or none of it.
    async fn apply(&self, change: ChangeSet) -> Result<AppliedChange>;

    /// Every recorded version of one flag in one environment, newest first.
    async fn flag_history(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
        flag: &FlagKey,
    ) -> Result<Vec<FlagVersionRecord>>;
}

#[async_trait]
impl FlagStore for SqlStore {
    async fn load_environment(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<EnvironmentState> {
        // One read transaction, so the revision matches the rows read with it.
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
        }
        let row = sqlx::query(
            "SELECT project, key, name, revision, created_at FROM environments WHERE project = $1 AND key = $2",
        )
        .bind(project.as_str())
        .bind(environment.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| not_found("environment", environment))?;
        let environment_record = environment_from_row(&row)?;
        let flags = sqlx::query(
            "SELECT key, flag_type, description, client_visible, created_at FROM flags \
             WHERE project = $1 ORDER BY key",
        )
        .bind(project.as_str())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(flag_from_row)
        .collect::<Result<Vec<_>>>()?;
        let configs = sqlx::query(
            "SELECT flag, config, version, updated_at FROM flag_configs \
             WHERE project = $1 AND environment = $2 ORDER BY flag",
        )
        .bind(project.as_str())
        .bind(environment.as_str())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok(ConfigRecord {
                flag: key_column(row, "flag", FlagKey::parse)?,
                config: json_column(row, "config")?,
                version: row.try_get("version")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let segments = sqlx::query(
            "SELECT key, description, rule, version, updated_at FROM segments \
             WHERE project = $1 AND environment = $2 ORDER BY key",
        )
        .bind(project.as_str())
        .bind(environment.as_str())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok(SegmentRecord {
                key: key_column(row, "key", SegmentKey::parse)?,
                description: row.try_get("description")?,
                rule: json_column(row, "rule")?,
                version: row.try_get("version")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        // Order by the keys' bytes on every backend, whatever the database's collation, so
        // a loaded environment lists its flags as a freshly written one does.
        let (mut flags, mut configs, mut segments) = (flags, configs, segments);
        flags.sort_by(|a, b| a.key.cmp(&b.key));
        configs.sort_by(|a, b| a.flag.cmp(&b.flag));
        segments.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(EnvironmentState {
            environment: environment_record,
            flags,
            configs,
            segments,
        })
    }

    async fn apply(&self, change: ChangeSet) -> Result<AppliedChange> {
        let mut tx = self.begin().await?;
        for (environment, expected) in &change.environments {
            projects::bump_revision(
                &mut tx,
                self.backend,
                &change.project,
                environment,
                *expected,
            )
            .await?;
        }
        let audit_id = insert_audit(&mut tx, &change.audit).await?;
        let config_versions = write_flags(
            &mut tx,
            &change.project,
            change.flag_writes(),
            audit_id,
            change.at,
        )
        .await?;
        for write in &change.writes {
            match write {
                Write::Flags(_) => {}
                Write::Schedule(write) => schedules::write(&mut tx, write, change.at).await?,
                Write::Rollout(write) => {
                    rollouts::write_rollout(&mut tx, &change.project, write, change.at).await?
                }
            }
        }
        for notification in &change.notifications {
            webhooks::queue_notification(&mut tx, &change.project, notification, change.at).await?;
        }
        tx.commit().await?;
        Ok(AppliedChange {
            audit_id,
            config_versions,
        })
    }

    async fn flag_history(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
        flag: &FlagKey,
    ) -> Result<Vec<FlagVersionRecord>> {
        let rows = sqlx::query(
            "SELECT v.version, v.config, v.audit_id, a.at, a.actor, a.action FROM flag_versions v \
             JOIN audit a ON a.id = v.audit_id \
             WHERE v.project = $1 AND v.environment = $2 AND v.flag = $3 ORDER BY v.version DESC",
        )
        .bind(project.as_str())
        .bind(environment.as_str())
        .bind(flag.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FlagVersionRecord {
                    version: row.try_get("version")?,
                    config: optional_json_column(row, "config")?,
                    audit_id: row.try_get("audit_id")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                })
            })
            .collect()
    }
}

async fn write_flag(
    tx: &mut Transaction<'_, Any>,
    project: &ProjectKey,
    write: &FlagWrite,
) -> Result<()> {
    match write {
        FlagWrite::Upsert(flag) => {
            sqlx::query(
                "INSERT INTO flags (project, key, flag_type, description, client_visible, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project, key) DO UPDATE SET \
                 flag_type = excluded.flag_type, description = excluded.description, \
                 client_visible = excluded.client_visible",
            )
            .bind(project.as_str())
            .bind(flag.key.as_str())
            .bind(flag.flag_type.as_str())
            .bind(&flag.description)
            .bind(i64::from(flag.client_visible))
            .bind(flag.created_at)
            .execute(&mut **tx)
            .await?;
        }
        FlagWrite::Delete(key) => {
            let deleted = sqlx::query("DELETE FROM flags WHERE project = $1 AND key = $2")
                .bind(project.as_str())
                .bind(key.as_str())
                .execute(&mut **tx)
                .await?;
            if deleted.rows_affected() == 0 {
                return Err(not_found("flag", key));
            }
        }
    }
    Ok(())
}

/// Writes (or removes) a flag's configuration in one environment if it is still at the
/// version the writer read, records the new version in the flag's history, and returns it.
pub(crate) async fn write_config(
    tx: &mut Transaction<'_, Any>,
    project: &ProjectKey,
    write: &ConfigWrite,
    audit_id: i64,
    at: i64,
) -> Result<i64> {
    let current = sqlx::query(
        "SELECT version FROM flag_configs WHERE project = $1 AND environment = $2 AND flag = $3",
    )
    .bind(project.as_str())
    .bind(write.environment.as_str())
    .bind(write.flag.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .map(|row| row.try_get::<i64, _>("version"))
    .transpose()?;
    check_version("flag", &write.flag, current, write.expected_version)?;
    // Versions keep counting across a delete and re-create, so history stays unique.
    let last = sqlx::query(
        "SELECT COALESCE(MAX(version), 0) AS version FROM flag_versions \
         WHERE project = $1 AND environment = $2 AND flag = $3",
    )
    .bind(project.as_str())
    .bind(write.environment.as_str())
    .bind(write.flag.as_str())
    .fetch_one(&mut **tx)
    .await?
    .try_get::<i64, _>("version")?;
    let version = last.max(current.unwrap_or(0)) + 1;
    let text = write.config.as_ref().map(Value::to_string);
    match &text {
        Some(text) => {
            sqlx::query(
                "INSERT INTO flag_configs (project, environment, flag, config, version, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project, environment, flag) DO UPDATE \
                 SET config = excluded.config, version = excluded.version, updated_at = excluded.updated_at",
            )
            .bind(project.as_str())
            .bind(write.environment.as_str())
            .bind(write.flag.as_str())
            .bind(text)
            .bind(version)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "DELETE FROM flag_configs WHERE project = $1 AND environment = $2 AND flag = $3",
            )
            .bind(project.as_str())
            .bind(write.environment.as_str())
            .bind(write.flag.as_str())
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query(
        "INSERT INTO flag_versions (project, environment, flag, version, config, audit_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(project.as_str())
    .bind(write.environment.as_str())
    .bind(write.flag.as_str())
    .bind(version)
    .bind(text)
    .bind(audit_id)
    .execute(&mut **tx)
    .await?;
    Ok(version)
}

async fn write_segment(
    tx: &mut Transaction<'_, Any>,
    project: &ProjectKey,
    write: &SegmentWrite,
    at: i64,
) -> Result<()> {
    let current = sqlx::query(
        "SELECT version FROM segments WHERE project = $1 AND environment = $2 AND key = $3",
    )
    .bind(project.as_str())
    .bind(write.environment.as_str())
    .bind(write.key.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .map(|row| row.try_get::<i64, _>("version"))
    .transpose()?;
    check_version("segment", &write.key, current, write.expected_version)?;
    match &write.segment {
        Some((description, rule)) => {
            sqlx::query(
                "INSERT INTO segments (project, environment, key, description, rule, version, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (project, environment, key) DO UPDATE \
                 SET description = excluded.description, rule = excluded.rule, \
                 version = excluded.version, updated_at = excluded.updated_at",
            )
            .bind(project.as_str())
            .bind(write.environment.as_str())
            .bind(write.key.as_str())
            .bind(description)
            .bind(rule.to_string())
            .bind(current.unwrap_or(0) + 1)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query(
                "DELETE FROM segments WHERE project = $1 AND environment = $2 AND key = $3",
            )
            .bind(project.as_str())
            .bind(write.environment.as_str())
            .bind(write.key.as_str())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

fn flag_from_row(row: &AnyRow) -> Result<FlagRecord> {
    let flag_type: String = row.try_get("flag_type")?;
    Ok(FlagRecord {
        key: key_column(row, "key", FlagKey::parse)?,
        flag_type: FlagType::parse(&flag_type)
            .ok_or_else(|| corrupt(format!("flag type {flag_type:?}")))?,
        description: row.try_get("description")?,
        client_visible: row.try_get::<i64, _>("client_visible")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// A change's writes to flags, configurations and segments, in the order foreign keys
/// need: new flags, then configurations, then deleted flags, then segments. Returns each
/// configuration's new version, in the order given.
async fn write_flags(
    tx: &mut Transaction<'_, Any>,
    project: &ProjectKey,
    writes: impl Iterator<Item = &FlagsWrite>,
    audit_id: i64,
    at: i64,
) -> Result<Vec<(EnvironmentKey, FlagKey, i64)>> {
    let (mut upserts, mut deletes, mut configs, mut segments) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for write in writes {
        match write {
            FlagsWrite::Flag(flag @ FlagWrite::Upsert(_)) => upserts.push(flag),
            FlagsWrite::Flag(flag @ FlagWrite::Delete(_)) => deletes.push(flag),
            FlagsWrite::Config(config) => configs.push(config),
            FlagsWrite::Segment(segment) => segments.push(segment),
        }
    }
    for write in upserts {
        write_flag(tx, project, write).await?;
    }
    let mut config_versions = Vec::with_capacity(configs.len());
    for write in configs {
        let version = write_config(tx, project, write, audit_id, at).await?;
        config_versions.push((write.environment.clone(), write.flag.clone(), version));
    }
    for write in deletes {
        write_flag(tx, project, write).await?;
    }
    for write in segments {
        write_segment(tx, project, write, at).await?;
    }
    Ok(config_versions)
}
