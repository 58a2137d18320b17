//! API tokens: who may call the server, as what role, until when.

use async_trait::async_trait;
use capstan_model::{EnvironmentKey, ProjectKey, Role, TokenName};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::Result;
use crate::audit::{AuditEntry, insert_audit};
use crate::sql::{SqlStore, corrupt, key_column, not_found, optional_key_column};

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub name: TokenName,
    pub role: Role,
    pub project: Option<ProjectKey>,
    pub environment: Option<EnvironmentKey>,
    /// Hex SHA-256 of the secret; the secret itself is never stored.
    pub hash: String,
    /// The first characters of the secret, so a person can tell tokens apart.
    pub hint: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_by: String,
}

impl TokenRecord {
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// Tokens are stored by the hash of their secret; each write records its audit entry in
/// the same transaction.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, token: TokenRecord, audit: AuditEntry) -> Result<()>;

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>>;

    async fn token_by_id(&self, id: &str) -> Result<TokenRecord>;

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Stores `replacement` and makes the old token expire at `old_expires_at` (the end
    /// of the grace period during which both work).
    async fn rotate_token(
        &self,
        old_id: &str,
        old_expires_at: i64,
        replacement: TokenRecord,
        audit: AuditEntry,
    ) -> Result<()>;

    async fn revoke_token(&self, id: &str, at: i64, audit: AuditEntry) -> Result<()>;
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn create_token(&self, token: TokenRecord, audit: AuditEntry) -> Result<()> {
        let mut tx = self.begin().await?;
        insert_token(&mut tx, &token).await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn token_by_id(&self, id: &str) -> Result<TokenRecord> {
        let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("token", id))?;
        token_from_row(&row)
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn rotate_token(
        &self,
        old_id: &str,
        old_expires_at: i64,
        replacement: TokenRecord,
        audit: AuditEntry,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // The old token keeps the earlier of its own expiry and the end of the grace period.
        let updated = sqlx::query(
            "UPDATE tokens SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $2 \
             THEN $2 ELSE expires_at END WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(old_id)
        .bind(old_expires_at)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(not_found("token", old_id));
        }
        insert_token(&mut tx, &replacement).await?;
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_token(&self, id: &str, at: i64, audit: AuditEntry) -> Result<()> {
        let mut tx = self.begin().await?;
        let updated =
            sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(not_found("token", id));
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(crate) async fn insert_token(tx: &mut AnyConnection, token: &TokenRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (id, name, role, project, environment, hash, hint, created_at, \
         expires_at, revoked_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&token.id)
    .bind(token.name.as_str())
    .bind(token.role.as_str())
    .bind(token.project.as_ref().map(|key| key.as_str().to_owned()))
    .bind(
        token
            .environment
            .as_ref()
            .map(|key| key.as_str().to_owned()),
    )
    .bind(&token.hash)
    .bind(&token.hint)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.revoked_at)
    .bind(&token.created_by)
    .execute(tx)
    .await?;
    Ok(())
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord> {
    let role: String = row.try_get("role")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: key_column(row, "name", TokenName::parse)?,
        role: Role::parse(&role).map_err(corrupt)?,
        project: optional_key_column(row, "project", ProjectKey::parse)?,
        environment: optional_key_column(row, "environment", EnvironmentKey::parse)?,
        hash: row.try_get("hash")?,
        hint: row.try_get("hint")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        created_by: row.try_get("created_by")?,
    })
}
