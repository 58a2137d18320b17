//! Evaluation and metric events from SDKs, as guarded rollouts read them.

use async_trait::async_trait;
use capstan_model::{EnvironmentKey, FlagKey, ProjectKey};
use sqlx::Row;

use crate::sql::{SqlStore, corrupt, key_column};
use crate::{Backend, Result};

/// What an SDK saw or measured: an exposure (a flag served a variant to someone) or a
/// metric (a named number about someone), as guarded rollouts read them.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Exposure { flag: FlagKey, variant: String },
    Metric { metric: String, value: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub project: ProjectKey,
    pub environment: EnvironmentKey,
    pub kind: EventKind,
    pub targeting_key: String,
    /// When it happened, by the SDK's clock.
    pub at: i64,
    /// When the server took it.
    pub received_at: i64,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores events, all or none, and returns how many were stored.
    async fn insert_events(&self, events: &[EventRecord]) -> Result<u64>;

    /// Events of one environment after the event id `after`, oldest first, with their ids.
    async fn list_events(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, EventRecord)>>;

    /// Deletes raw events that happened before `cutoff` (retention).
    async fn delete_events_before(&self, cutoff: i64) -> Result<u64>;
}

#[async_trait]
impl EventStore for SqlStore {
    async fn insert_events(&self, events: &[EventRecord]) -> Result<u64> {
        // Multi-row inserts in one transaction: a batch costs a few statements, not one
        // per event. 500 rows of 10 columns stays far below SQLite's parameter limit.
        const ROWS_PER_STATEMENT: usize = 500;
        const COLUMNS: usize = 10;
        let mut tx = self.begin().await?;
        let mut stored = 0;
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let mut sql = String::from(
                "INSERT INTO events (project, environment, kind, flag, variant, metric, targeting_key, \
                 value, at, received_at) VALUES ",
            );
            for row in 0..chunk.len() {
                if row > 0 {
                    sql.push_str(", ");
                }
                // SQLite finds a `$N` parameter by a linear scan of the statement's
                // parameter names, which makes a 5,000-parameter insert quadratic;
                // anonymous `?` parameters are bound by position.
                let placeholders: Vec<String> = (1..=COLUMNS)
                    .map(|column| match self.backend {
                        Backend::Sqlite => "?".to_owned(),
                        Backend::Postgres => format!("${}", row * COLUMNS + column),
                    })
                    .collect();
                sql.push('(');
                sql.push_str(&placeholders.join(", "));
                sql.push(')');
            }
            // Not a prepared statement kept for reuse: sqlx declares a NULL parameter's type
            // from the first execution, so a cached statement whose first row had no value
            // refuses a later batch whose first row has one (PostgreSQL error 22P03).
            let mut query = sqlx::query(&sql).persistent(false);
            for event in chunk {
                let (kind, flag, variant, metric, value) = match &event.kind {
                    EventKind::Exposure { flag, variant } => (
                        "exposure",
                        Some(flag.as_str().to_owned()),
                        Some(variant.clone()),
                        None,
                        None,
                    ),
                    EventKind::Metric { metric, value } => {
                        ("metric", None, None, Some(metric.clone()), Some(*value))
                    }
                };
                query = query
                    .bind(event.project.as_str())
                    .bind(event.environment.as_str())
                    .bind(kind)
                    .bind(flag)
                    .bind(variant)
                    .bind(metric)
                    .bind(&event.targeting_key)
                    .bind(value)
                    .bind(event.at)
                    .bind(event.received_at);
            }
            stored += query.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn list_events(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, EventRecord)>> {
        let rows = sqlx::query(
            "SELECT id, project, environment, kind, flag, variant, metric, targeting_key, value, at, received_at \
             FROM events WHERE project = $1 AND environment = $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(project.as_str())
        .bind(environment.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                let kind = match kind.as_str() {
                    "exposure" => EventKind::Exposure {
                        flag: key_column(row, "flag", FlagKey::parse)?,
                        variant: row.try_get("variant")?,
                    },
                    "metric" => EventKind::Metric {
                        metric: row.try_get("metric")?,
                        value: row.try_get("value")?,
                    },
                    other => return Err(corrupt(format!("event kind {other:?}"))),
                };
                Ok((
                    row.try_get("id")?,
                    EventRecord {
                        project: key_column(row, "project", ProjectKey::parse)?,
                        environment: key_column(row, "environment", EnvironmentKey::parse)?,
                        kind,
                        targeting_key: row.try_get("targeting_key")?,
                        at: row.try_get("at")?,
                        received_at: row.try_get("received_at")?,
                    },
                ))
            })
            .collect()
    }

    async fn delete_events_before(&self, cutoff: i64) -> Result<u64> {
        let deleted = sqlx::query("DELETE FROM events WHERE at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}
