//! Scheduled flag changes: what is to happen to a flag, and when.

use async_trait::async_trait;
use capstan_model::{EnvironmentKey, FlagKey, ProjectKey};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{AuditEntry, insert_audit};
use crate::sql::{SqlStore, corrupt, json_column, key_column, not_found};
use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub project: ProjectKey,
    pub environment: EnvironmentKey,
    pub flag: FlagKey,
    pub run_at: i64,
    pub action: Value,
    pub created_by: String,
    pub created_at: i64,
}

text_enum! {
    /// Where a scheduled change stands.
    pub enum ScheduleStatus {
        Pending = "pending",
        Applied = "applied",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleOutcome {
    Applied,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    pub id: i64,
    pub schedule: NewSchedule,
    pub status: ScheduleStatus,
    pub settled_at: Option<i64>,
    pub error: Option<String>,
}

/// A scheduled change stays pending until it is settled once: applied (by the change set
/// that carries it out, see [`ScheduleWrite`]), failed or cancelled.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    async fn create_schedule(
        &self,
        schedule: NewSchedule,
        audit: AuditEntry,
    ) -> Result<ScheduleRecord>;

    async fn list_schedules(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<Vec<ScheduleRecord>>;

    /// Pending scheduled changes whose time has come, oldest first.
    async fn due_schedules(&self, now: i64) -> Result<Vec<ScheduleRecord>>;

    /// Marks a schedule done (or failed) if it is still pending; returns false when
    /// someone else already settled it, so each schedule takes effect once.
    async fn settle_schedule(&self, id: i64, outcome: ScheduleOutcome, at: i64) -> Result<bool>;

    async fn cancel_schedule(&self, id: i64, audit: AuditEntry) -> Result<()>;
}

#[async_trait]
impl ScheduleStore for SqlStore {
    async fn create_schedule(
        &self,
        schedule: NewSchedule,
        audit: AuditEntry,
    ) -> Result<ScheduleRecord> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO scheduled_changes (project, environment, flag, run_at, action, status, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) RETURNING {SCHEDULE_COLUMNS}"
        ))
        .bind(schedule.project.as_str())
        .bind(schedule.environment.as_str())
        .bind(schedule.flag.as_str())
        .bind(schedule.run_at)
        .bind(schedule.action.to_string())
        .bind(&schedule.created_by)
        .bind(schedule.created_at)
        .fetch_one(&mut *tx)
        .await?;
        let record = schedule_from_row(&row)?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn list_schedules(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<Vec<ScheduleRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM scheduled_changes WHERE project = $1 AND environment = $2 \
             ORDER BY run_at, id"
        ))
        .bind(project.as_str())
        .bind(environment.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn due_schedules(&self, now: i64) -> Result<Vec<ScheduleRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCHEDULE_COLUMNS} FROM scheduled_changes WHERE status = 'pending' AND run_at <= $1 \
             ORDER BY run_at, id"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn settle_schedule(&self, id: i64, outcome: ScheduleOutcome, at: i64) -> Result<bool> {
        let (status, error) = match outcome {
            ScheduleOutcome::Applied => (ScheduleStatus::Applied, None),
            ScheduleOutcome::Failed(error) => (ScheduleStatus::Failed, Some(error)),
        };
        let updated = sqlx::query(
            "UPDATE scheduled_changes SET status = $2, settled_at = $3, error = $4 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(at)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn cancel_schedule(&self, id: i64, audit: AuditEntry) -> Result<()> {
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE scheduled_changes SET status = 'cancelled', settled_at = $2 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(audit.at)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(not_found("pending schedule", id));
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

const SCHEDULE_COLUMNS: &str = "id, project, environment, flag, run_at, action, status, created_by, \
     created_at, settled_at, error";

fn schedule_from_row(row: &AnyRow) -> Result<ScheduleRecord> {
    let status: String = row.try_get("status")?;
    Ok(ScheduleRecord {
        id: row.try_get("id")?,
        schedule: NewSchedule {
            project: key_column(row, "project", ProjectKey::parse)?,
            environment: key_column(row, "environment", EnvironmentKey::parse)?,
            flag: key_column(row, "flag", FlagKey::parse)?,
            run_at: row.try_get("run_at")?,
            action: json_column(row, "action")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
        },
        status: ScheduleStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("schedule status {status:?}")))?,
        settled_at: row.try_get("settled_at")?,
        error: row.try_get("error")?,
    })
}

/// Marks a pending schedule applied by the change that carries it out, in that change's
/// transaction, so a schedule takes effect once across replicas.
/// What a change set does to a scheduled change.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleWrite {
    /// Marks the pending schedule applied: the change carries it out, so it takes effect
    /// exactly once across replicas (`AlreadySettled` if someone else settled it first).
    Settle(i64),
}

pub(crate) async fn write(
    tx: &mut Transaction<'_, Any>,
    write: &ScheduleWrite,
    at: i64,
) -> Result<()> {
    match write {
        ScheduleWrite::Settle(id) => settle_applied(tx, *id, at).await,
    }
}

async fn settle_applied(tx: &mut Transaction<'_, Any>, id: i64, at: i64) -> Result<()> {
    let settled = sqlx::query(
        "UPDATE scheduled_changes SET status = 'applied', settled_at = $2 WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    if settled.rows_affected() == 0 {
        return Err(StoreError::AlreadySettled { id });
    }
    Ok(())
}
