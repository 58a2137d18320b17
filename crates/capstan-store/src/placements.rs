//! Placement: surfaces and their items, the decisions logged for learning, their
//! rewards, and the learned models.

use async_trait::async_trait;
use capstan_model::{ProjectKey, SurfaceKey};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{AuditEntry, insert_audit};
use crate::sql::{SqlStore, corrupt, json_column, key_column, not_found};
use crate::{Result, StoreError};

/// A placement surface: a place content appears. `settings` is the learner's settings,
/// as the server stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceRecord {
    pub project: ProjectKey,
    pub key: SurfaceKey,
    pub description: String,
    pub settings: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

text_enum! {
    /// Whether an item may be ranked.
    pub enum ItemStatus {
        Live = "live",
        Retired = "retired",
    }
}

/// An item that can appear on a surface.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    pub id: String,
    pub features: Value,
    pub status: ItemStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One ranking, as logged for learning and offline evaluation: the context, the
/// candidates with their features, which was shown, every candidate's probability, and
/// the reward so far.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    pub event_id: String,
    pub project: ProjectKey,
    pub surface: SurfaceKey,
    pub context: Value,
    pub candidates: Value,
    pub shown: i64,
    pub probabilities: Value,
    pub policy: String,
    pub created_at: i64,
    /// When the application said the user saw it; `None` while activation is deferred.
    pub activated_at: Option<i64>,
    pub reward: Option<f64>,
    pub reward_count: i64,
    pub learned_at: Option<i64>,
}

/// How several rewards for one event combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardCombine {
    Sum,
    First,
}

/// What became of a reward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardOutcome {
    Recorded,
    /// `First` keeps only the first reward; this one changed nothing.
    Duplicate,
    /// The event was already learned from (its reward window closed).
    Late,
}

/// Surfaces and items are written with an audit entry; decisions, rewards and models are
/// the learner's own traffic and are not audited.
#[async_trait]
pub trait PlacementStore: Send + Sync {
    /// Creates or replaces a surface (its description and settings).
    async fn upsert_surface(&self, surface: SurfaceRecord, audit: AuditEntry) -> Result<()>;

    async fn list_surfaces(&self, project: &ProjectKey) -> Result<Vec<SurfaceRecord>>;

    async fn surface(&self, project: &ProjectKey, key: &SurfaceKey) -> Result<SurfaceRecord>;

    /// Creates or replaces items of a surface, all or none.
    async fn upsert_items(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
        items: &[ItemRecord],
        audit: AuditEntry,
    ) -> Result<()>;

    async fn list_items(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
    ) -> Result<Vec<ItemRecord>>;

    /// Logs a decision; an event id already used is `AlreadyExists`.
    async fn insert_decision(&self, decision: &DecisionRecord) -> Result<()> {
        let inserted = self
            .insert_decisions(std::slice::from_ref(decision))
            .await?;
        if inserted.first() == Some(&true) {
            Ok(())
        } else {
            Err(StoreError::AlreadyExists {
                kind: "event",
                key: decision.event_id.clone(),
            })
        }
    }

    /// Logs decisions in one transaction (one commit, so one flush to disk, for all of
    /// them); for each, whether it was inserted: `false` for an event id already used,
    /// by an earlier decision or by one before it in the batch. Any other failure logs
    /// none of them.
    async fn insert_decisions(&self, decisions: &[DecisionRecord]) -> Result<Vec<bool>>;

    async fn decision(&self, event_id: &str) -> Result<DecisionRecord>;

    /// Adds a reward to a decision not yet learned from.
    async fn record_reward(
        &self,
        event_id: &str,
        value: f64,
        combine: RewardCombine,
    ) -> Result<RewardOutcome>;

    /// Marks a decision whose activation was deferred as seen by the user.
    async fn activate_decision(&self, event_id: &str, at: i64) -> Result<()>;

    /// Activated decisions of a surface ready to learn from, oldest first: rewarded ones
    /// at once when only the first reward counts, and every one activated at or before
    /// `window_closed_before` (its reward window has closed).
    async fn decisions_to_learn(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
        combine: RewardCombine,
        window_closed_before: i64,
        limit: i64,
    ) -> Result<Vec<DecisionRecord>>;

    async fn mark_learned(&self, event_ids: &[String], at: i64) -> Result<()>;

    /// Stores a surface's model, returning its new version.
    async fn save_model(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
        model: &[u8],
        at: i64,
    ) -> Result<i64>;

    /// The version of the surface's latest model, without the model.
    async fn model_version(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
    ) -> Result<Option<i64>>;

    /// The surface's latest model and its version.
    async fn load_model(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
    ) -> Result<Option<(Vec<u8>, i64)>>;

    /// Logged decisions of a surface after the decision `after` (its creation time and
    /// event id; `None` from the start), oldest first: a cursor that never skips
    /// decisions made in the same millisecond.
    async fn list_decisions(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<DecisionRecord>>;
}

#[async_trait]
impl PlacementStore for SqlStore {
    async fn upsert_surface(&self, surface: SurfaceRecord, audit: AuditEntry) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO surfaces (project, key, description, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project, key) DO UPDATE \
             SET description = excluded.description, settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(surface.project.as_str())
        .bind(surface.key.as_str())
        .bind(&surface.description)
        .bind(surface.settings.to_string())
        .bind(surface.created_at)
        .bind(surface.updated_at)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_surfaces(&self, project: &ProjectKey) -> Result<Vec<SurfaceRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SURFACE_COLUMNS} FROM surfaces WHERE project = $1 ORDER BY key"
        ))
        .bind(project.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(surface_from_row).collect()
    }

    async fn surface(&self, project: &ProjectKey, key: &SurfaceKey) -> Result<SurfaceRecord> {
        let row = sqlx::query(&format!(
            "SELECT {SURFACE_COLUMNS} FROM surfaces WHERE project = $1 AND key = $2"
        ))
        .bind(project.as_str())
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("surface", key))?;
        surface_from_row(&row)
    }

    async fn upsert_items(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
        items: &[ItemRecord],
        audit: AuditEntry,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT 1 AS one FROM surfaces WHERE project = $1 AND key = $2")
            .bind(project.as_str())
            .bind(surface.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(not_found("surface", surface));
        }
        for item in items {
            sqlx::query(
                "INSERT INTO surface_items (project, surface, id, features, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (project, surface, id) DO UPDATE \
                 SET features = excluded.features, status = excluded.status, updated_at = excluded.updated_at",
            )
            .bind(project.as_str())
            .bind(surface.as_str())
            .bind(&item.id)
            .bind(item.features.to_string())
            .bind(item.status.as_str())
            .bind(item.created_at)
            .bind(item.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_items(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
    ) -> Result<Vec<ItemRecord>> {
        let rows = sqlx::query(
            "SELECT id, features, status, created_at, updated_at FROM surface_items \
             WHERE project = $1 AND surface = $2 ORDER BY id",
        )
        .bind(project.as_str())
        .bind(surface.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ItemRecord {
                    id: row.try_get("id")?,
                    features: json_column(row, "features")?,
                    status: {
                        let status: String = row.try_get("status")?;
                        ItemStatus::parse(&status)
                            .ok_or_else(|| corrupt(format!("item status {status:?}")))?
                    },
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn insert_decisions(&self, decisions: &[DecisionRecord]) -> Result<Vec<bool>> {
        let mut tx = self.begin().await?;
        let mut inserted = Vec::with_capacity(decisions.len());
        for decision in decisions {
            let result = sqlx::query(&format!(
                "INSERT INTO decisions ({DECISION_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (event_id) DO NOTHING"
            ))
            .bind(&decision.event_id)
            .bind(decision.project.as_str())
            .bind(decision.surface.as_str())
            .bind(decision.context.to_string())
            .bind(decision.candidates.to_string())
            .bind(decision.shown)
            .bind(decision.probabilities.to_string())
            .bind(&decision.policy)
            .bind(decision.created_at)
            .bind(decision.activated_at)
            .bind(decision.reward)
            .bind(decision.reward_count)
            .bind(decision.learned_at)
            // NULLs of varying types: see insert_events.
            .persistent(false)
            .execute(&mut *tx)
            .await?;
            inserted.push(result.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn decision(&self, event_id: &str) -> Result<DecisionRecord> {
        let row = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE event_id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("event", event_id))?;
        decision_from_row(&row)
    }

    async fn record_reward(
        &self,
        event_id: &str,
        value: f64,
        combine: RewardCombine,
    ) -> Result<RewardOutcome> {
        let sql = match combine {
            RewardCombine::First => {
                "UPDATE decisions SET reward = $2, reward_count = reward_count + 1 \
                 WHERE event_id = $1 AND learned_at IS NULL AND reward_count = 0"
            }
            RewardCombine::Sum => {
                "UPDATE decisions SET reward = COALESCE(reward, 0) + $2, reward_count = reward_count + 1 \
                 WHERE event_id = $1 AND learned_at IS NULL"
            }
        };
        let updated = sqlx::query(sql)
            .bind(event_id)
            .bind(value)
            .execute(&self.pool)
            .await?;
        if updated.rows_affected() == 1 {
            return Ok(RewardOutcome::Recorded);
        }
        let decision = self.decision(event_id).await?;
        if combine == RewardCombine::First && decision.reward_count > 0 {
            Ok(RewardOutcome::Duplicate)
        } else {
            Ok(RewardOutcome::Late)
        }
    }

    async fn activate_decision(&self, event_id: &str, at: i64) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE decisions SET activated_at = $2 WHERE event_id = $1 AND activated_at IS NULL",
        )
        .bind(event_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            // Unknown is an error; already active is fine (activation is idempotent).
            self.decision(event_id).await?;
        }
        Ok(())
    }

    async fn decisions_to_learn(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
        combine: RewardCombine,
        window_closed_before: i64,
        limit: i64,
    ) -> Result<Vec<DecisionRecord>> {
        let rewarded_now = match combine {
            RewardCombine::First => "OR reward_count > 0",
            RewardCombine::Sum => "",
        };
        let rows = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE project = $1 AND surface = $2 \
             AND learned_at IS NULL AND activated_at IS NOT NULL \
             AND (activated_at <= $3 {rewarded_now}) ORDER BY created_at, event_id LIMIT $4"
        ))
        .bind(project.as_str())
        .bind(surface.as_str())
        .bind(window_closed_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decision_from_row).collect()
    }

    async fn mark_learned(&self, event_ids: &[String], at: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        for event_id in event_ids {
            sqlx::query("UPDATE decisions SET learned_at = $2 WHERE event_id = $1")
                .bind(event_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn save_model(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
        model: &[u8],
        at: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO surface_models (project, surface, model, version, updated_at) \
             VALUES ($1, $2, $3, 1, $4) ON CONFLICT (project, surface) DO UPDATE \
             SET model = excluded.model, version = surface_models.version + 1, updated_at = excluded.updated_at \
             RETURNING version",
        )
        .bind(project.as_str())
        .bind(surface.as_str())
        .bind(model.to_vec())
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("version")?)
    }

    async fn model_version(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
    ) -> Result<Option<i64>> {
        let row =
            sqlx::query("SELECT version FROM surface_models WHERE project = $1 AND surface = $2")
                .bind(project.as_str())
                .bind(surface.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| Ok(row.try_get("version")?)).transpose()
    }

    async fn load_model(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        let row = sqlx::query(
            "SELECT model, version FROM surface_models WHERE project = $1 AND surface = $2",
        )
        .bind(project.as_str())
        .bind(surface.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((row.try_get("model")?, row.try_get("version")?)))
            .transpose()
    }

    async fn list_decisions(
        &self,
        project: &ProjectKey,
        surface: &SurfaceKey,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<DecisionRecord>> {
        let (after_time, after_event) = after.unwrap_or((i64::MIN, String::new()));
        let rows = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE project = $1 AND surface = $2 \
             AND (created_at > $3 OR (created_at = $3 AND event_id > $4)) \
             ORDER BY created_at, event_id LIMIT $5"
        ))
        .bind(project.as_str())
        .bind(surface.as_str())
        .bind(after_time)
        .bind(after_event)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decision_from_row).collect()
    }
}

const SURFACE_COLUMNS: &str = "project, key, description, settings, created_at, updated_at";

fn surface_from_row(row: &AnyRow) -> Result<SurfaceRecord> {
    Ok(SurfaceRecord {
        project: key_column(row, "project", ProjectKey::parse)?,
        key: key_column(row, "key", SurfaceKey::parse)?,
        description: row.try_get("description")?,
        settings: json_column(row, "settings")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const DECISION_COLUMNS: &str = "event_id, project, surface, context, candidates, shown, probabilities, \
    policy, created_at, activated_at, reward, reward_count, learned_at";

fn decision_from_row(row: &AnyRow) -> Result<DecisionRecord> {
    Ok(DecisionRecord {
        event_id: row.try_get("event_id")?,
        project: key_column(row, "project", ProjectKey::parse)?,
        surface: key_column(row, "surface", SurfaceKey::parse)?,
        context: json_column(row, "context")?,
        candidates: json_column(row, "candidates")?,
        shown: row.try_get("shown")?,
        probabilities: json_column(row, "probabilities")?,
        policy: row.try_get("policy")?,
        created_at: row.try_get("created_at")?,
        activated_at: row.try_get("activated_at")?,
        reward: row.try_get("reward")?,
        reward_count: row.try_get("reward_count")?,
        learned_at: row.try_get("learned_at")?,
    })
}
