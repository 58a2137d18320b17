//! Guarded rollouts and their per-minute buckets of events.

use async_trait::async_trait;
use capstan_model::{EnvironmentKey, FlagKey, ProjectKey};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::sql::{
    SqlStore, check_version, corrupt, is_unique_violation, json_column, key_column, not_found,
    optional_json_column,
};
use crate::{Result, StoreError};

/// A guarded rollout of one flag in one environment. The plan, progress, timeline and
/// latest reading are JSON documents the server owns; the store keeps them whole.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    pub id: i64,
    pub project: ProjectKey,
    pub environment: EnvironmentKey,
    pub flag: FlagKey,
    pub status: RolloutStatus,
    pub plan: Value,
    pub progress: Value,
    pub timeline: Value,
    /// The judge's latest reading, refreshed every tick without a version change.
    pub latest: Option<Value>,
    pub version: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

text_enum! {
    /// Where a rollout stands.
    pub enum RolloutStatus {
        Running = "running",
        Paused = "paused",
        Promoted = "promoted",
        Reverted = "reverted",
    }
}

impl RolloutStatus {
    /// Statuses in which a rollout still drives its flag; a flag has at most one such
    /// rollout per environment (migration 4's `rollouts_one_active_per_flag` index).
    pub const ACTIVE: [RolloutStatus; 2] = [RolloutStatus::Running, RolloutStatus::Paused];

    pub fn is_active(self) -> bool {
        RolloutStatus::ACTIVE.contains(&self)
    }
}

#[derive(Debug, Clone)]
pub enum RolloutWrite {
    Create {
        /// Chosen by the server before the change is applied, so the messages that announce
        /// the rollout in the same change already carry it.
        id: i64,
        environment: EnvironmentKey,
        flag: FlagKey,
        status: RolloutStatus,
        plan: Value,
        progress: Value,
        timeline: Value,
        created_by: String,
    },
    /// Moves a rollout on if it is still at `expected_version`.
    Update {
        id: i64,
        expected_version: i64,
        status: RolloutStatus,
        progress: Value,
        timeline: Value,
    },
}

#[derive(Debug, Clone, Default)]
pub struct RolloutFilter {
    pub project: Option<ProjectKey>,
    pub environment: Option<EnvironmentKey>,
    pub flag: Option<FlagKey>,
    pub active_only: bool,
}

/// One minute of one arm of a rollout: exposures, new units and each metric's count and
/// sum (a JSON object `{metric: [count, sum]}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutBucketRecord {
    pub rollout_id: i64,
    pub arm: String,
    pub bucket_start: i64,
    pub exposures: i64,
    pub new_units: i64,
    pub metrics: Value,
}

/// Rollouts start and move on only in a change set (`ChangeSet::rollouts`), together
/// with the flag change of their step; between steps the judge reads them here and keeps
/// its reading and its per-minute buckets.
#[async_trait]
pub trait RolloutStore: Send + Sync {
    async fn list_rollouts(&self, filter: RolloutFilter) -> Result<Vec<RolloutRecord>>;

    async fn rollout(&self, id: i64) -> Result<RolloutRecord>;

    /// Keeps the judge's latest reading of a rollout, for anyone asking; it changes no
    /// decision, so it carries no version.
    async fn record_rollout_reading(&self, id: i64, latest: &Value) -> Result<()>;

    /// Stores (replacing) per-minute summaries of rollout events.
    async fn save_rollout_buckets(&self, buckets: &[RolloutBucketRecord]) -> Result<()>;

    async fn rollout_buckets(&self, rollout_id: i64) -> Result<Vec<RolloutBucketRecord>>;
}

#[async_trait]
impl RolloutStore for SqlStore {
    async fn list_rollouts(&self, filter: RolloutFilter) -> Result<Vec<RolloutRecord>> {
        let statuses = if filter.active_only {
            let active: Vec<String> = RolloutStatus::ACTIVE
                .iter()
                .map(|status| format!("'{}'", status.as_str()))
                .collect();
            format!("AND status IN ({})", active.join(", "))
        } else {
            String::new()
        };
        let rows = sqlx::query(&format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE ($1 IS NULL OR project = $1) \
             AND ($2 IS NULL OR environment = $2) AND ($3 IS NULL OR flag = $3) {statuses} \
             ORDER BY id DESC"
        ))
        .bind(filter.project.as_ref().map(|key| key.as_str().to_owned()))
        .bind(
            filter
                .environment
                .as_ref()
                .map(|key| key.as_str().to_owned()),
        )
        .bind(filter.flag.as_ref().map(|key| key.as_str().to_owned()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rollout_from_row).collect()
    }

    async fn rollout(&self, id: i64) -> Result<RolloutRecord> {
        let row = sqlx::query(&format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("rollout", id))?;
        rollout_from_row(&row)
    }

    async fn record_rollout_reading(&self, id: i64, latest: &Value) -> Result<()> {
        sqlx::query("UPDATE rollouts SET latest = $2 WHERE id = $1")
            .bind(id)
            .bind(latest.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn save_rollout_buckets(&self, buckets: &[RolloutBucketRecord]) -> Result<()> {
        let mut tx = self.begin().await?;
        for bucket in buckets {
            sqlx::query(
                "INSERT INTO rollout_buckets (rollout_id, arm, bucket_start, exposures, new_units, metrics) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (rollout_id, arm, bucket_start) DO UPDATE \
                 SET exposures = excluded.exposures, new_units = excluded.new_units, metrics = excluded.metrics",
            )
            .bind(bucket.rollout_id)
            .bind(&bucket.arm)
            .bind(bucket.bucket_start)
            .bind(bucket.exposures)
            .bind(bucket.new_units)
            .bind(bucket.metrics.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rollout_buckets(&self, rollout_id: i64) -> Result<Vec<RolloutBucketRecord>> {
        let rows = sqlx::query(
            "SELECT rollout_id, arm, bucket_start, exposures, new_units, metrics FROM rollout_buckets \
             WHERE rollout_id = $1 ORDER BY bucket_start, arm",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RolloutBucketRecord {
                    rollout_id: row.try_get("rollout_id")?,
                    arm: row.try_get("arm")?,
                    bucket_start: row.try_get("bucket_start")?,
                    exposures: row.try_get("exposures")?,
                    new_units: row.try_get("new_units")?,
                    metrics: json_column(row, "metrics")?,
                })
            })
            .collect()
    }
}

/// Starts or moves on a rollout in a change set's transaction.
pub(crate) async fn write_rollout(
    tx: &mut Transaction<'_, Any>,
    project: &ProjectKey,
    write: &RolloutWrite,
    at: i64,
) -> Result<()> {
    match write {
        RolloutWrite::Create {
            id,
            environment,
            flag,
            status,
            plan,
            progress,
            timeline,
            created_by,
        } => {
            let inserted = sqlx::query(
                "INSERT INTO rollouts (id, project, environment, flag, status, plan, progress, \
                 timeline, version, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $10)",
            )
            .bind(id)
            .bind(project.as_str())
            .bind(environment.as_str())
            .bind(flag.as_str())
            .bind(status.as_str())
            .bind(plan.to_string())
            .bind(progress.to_string())
            .bind(timeline.to_string())
            .bind(created_by)
            .bind(at)
            .execute(&mut **tx)
            .await;
            match inserted {
                Ok(_) => Ok(()),
                Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyExists {
                    kind: "active rollout of flag",
                    key: flag.to_string(),
                }),
                Err(error) => Err(error.into()),
            }
        }
        RolloutWrite::Update {
            id,
            expected_version,
            status,
            progress,
            timeline,
        } => {
            let current =
                sqlx::query("SELECT version FROM rollouts WHERE id = $1 AND project = $2")
                    .bind(id)
                    .bind(project.as_str())
                    .fetch_optional(&mut **tx)
                    .await?
                    .map(|row| row.try_get::<i64, _>("version"))
                    .transpose()?;
            check_version("rollout", id, current, Some(*expected_version))?;
            sqlx::query(
                "UPDATE rollouts SET status = $2, progress = $3, timeline = $4, \
                 version = version + 1, updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(progress.to_string())
            .bind(timeline.to_string())
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
    }
}

const ROLLOUT_COLUMNS: &str = "id, project, environment, flag, status, plan, progress, timeline, latest, \
    version, created_by, created_at, updated_at";

fn rollout_from_row(row: &AnyRow) -> Result<RolloutRecord> {
    Ok(RolloutRecord {
        id: row.try_get("id")?,
        project: key_column(row, "project", ProjectKey::parse)?,
        environment: key_column(row, "environment", EnvironmentKey::parse)?,
        flag: key_column(row, "flag", FlagKey::parse)?,
        status: {
            let status: String = row.try_get("status")?;
            RolloutStatus::parse(&status)
                .ok_or_else(|| corrupt(format!("rollout status {status:?}")))?
        },
        plan: json_column(row, "plan")?,
        progress: json_column(row, "progress")?,
        timeline: json_column(row, "timeline")?,
        latest: optional_json_column(row, "latest")?,
        version: row.try_get("version")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
