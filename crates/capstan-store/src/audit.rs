//! The audit trail: who changed what, when, with the state before and after.

use async_trait::async_trait;
use capstan_model::{EnvironmentKey, ProjectKey};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::Result;
use crate::sql::{SqlStore, optional_json_column, optional_key_column};

/// What happened, for the audit trail. `before` and `after` are JSON snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub project: Option<ProjectKey>,
    pub environment: Option<EnvironmentKey>,
    pub resource_kind: String,
    pub resource_key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project: Option<ProjectKey>,
    pub environment: Option<EnvironmentKey>,
    pub resource_kind: Option<String>,
    pub resource_key: Option<String>,
    pub limit: Option<i64>,
}

/// Every write of the store records its audit entry in its own transaction; this reads
/// them back.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn audit_log(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>>;
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn audit_log(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>> {
        // Unset filters bind NULL and match everything, so the query text is fixed.
        let rows = sqlx::query(
            "SELECT * FROM audit WHERE ($1 IS NULL OR project = $1) AND ($2 IS NULL OR environment = $2) \
             AND ($3 IS NULL OR resource_kind = $3) AND ($4 IS NULL OR resource_key = $4) \
             ORDER BY id DESC LIMIT $5",
        )
        .bind(filter.project.as_ref().map(|key| key.as_str().to_owned()))
        .bind(filter.environment.as_ref().map(|key| key.as_str().to_owned()))
        .bind(filter.resource_kind)
        .bind(filter.resource_key)
        .bind(filter.limit.unwrap_or(100))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

pub(crate) async fn insert_audit(tx: &mut Transaction<'_, Any>, entry: &AuditEntry) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO audit (at, actor, action, project, environment, resource_kind, \
         resource_key, before_state, after_state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING id",
    )
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(entry.project.as_ref().map(|key| key.as_str().to_owned()))
    .bind(
        entry
            .environment
            .as_ref()
            .map(|key| key.as_str().to_owned()),
    )
    .bind(&entry.resource_kind)
    .bind(&entry.resource_key)
    .bind(entry.before.as_ref().map(Value::to_string))
    .bind(entry.after.as_ref().map(Value::to_string))
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("id")?)
}

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        entry: AuditEntry {
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            project: optional_key_column(row, "project", ProjectKey::parse)?,
            environment: optional_key_column(row, "environment", EnvironmentKey::parse)?,
            resource_kind: row.try_get("resource_kind")?,
            resource_key: row.try_get("resource_key")?,
            before: optional_json_column(row, "before_state")?,
            after: optional_json_column(row, "after_state")?,
        },
    })
}
