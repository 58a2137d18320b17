//! Leases: one replica at a time does a job (drives rollouts, delivers webhooks).

use async_trait::async_trait;
use sqlx::Row;

use crate::Result;
use crate::sql::SqlStore;

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms` if it is free,
    /// expired or already held by `holder`; returns whether `holder` holds it. Replicas
    /// use it so that one of them at a time drives rollouts.
    async fn acquire_lease(&self, name: &str, holder: &str, now: i64, ttl_ms: i64) -> Result<bool>;
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn acquire_lease(&self, name: &str, holder: &str, now: i64, ttl_ms: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT holder FROM leases WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        let current: String = row.try_get("holder")?;
        Ok(current == holder)
    }
}
