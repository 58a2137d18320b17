//! Projects and their environments: the first bootstrap, creating an environment, and
//! the revision every change to an environment increments.

use async_trait::async_trait;
use capstan_model::{EnvironmentKey, FlagKey, ProjectKey};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::audit::{AuditEntry, insert_audit};
use crate::flags::{self, ConfigWrite};
use crate::sql::{SqlStore, is_unique_violation, json_column, key_column, not_found};
use crate::tokens::{TokenRecord, insert_token};
use crate::{Backend, Result, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRecord {
    pub key: ProjectKey,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentRecord {
    pub project: ProjectKey,
    pub key: EnvironmentKey,
    pub name: String,
    pub revision: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewEnvironment {
    pub project: ProjectKey,
    pub key: EnvironmentKey,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub project: ProjectKey,
    pub project_name: String,
    pub environments: Vec<EnvironmentKey>,
    pub admin_token: TokenRecord,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapOutcome {
    Created,
    AlreadyBootstrapped,
}

/// Projects and their environments. Every change set names the environment revisions it
/// was planned against, and moves them on (see `FlagStore::apply`).
#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Whether the store holds no project yet, so the server should bootstrap it.
    async fn is_empty(&self) -> Result<bool>;

    /// Creates the first project, its environments and the admin token, atomically, and
    /// only if the store is still empty (two replicas starting at once bootstrap once).
    async fn bootstrap(&self, bootstrap: Bootstrap) -> Result<BootstrapOutcome>;

    async fn list_projects(&self) -> Result<Vec<ProjectRecord>>;

    async fn list_environments(&self, project: &ProjectKey) -> Result<Vec<EnvironmentRecord>>;

    /// Creates an environment and copies every flag of the project into it, disabled.
    async fn create_environment(
        &self,
        environment: NewEnvironment,
        audit: AuditEntry,
    ) -> Result<EnvironmentRecord>;

    /// The environment's revision, which every change to it increments.
    async fn environment_revision(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<i64>;
}

#[async_trait]
impl ProjectStore for SqlStore {
    async fn is_empty(&self) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM projects")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? == 0)
    }

    async fn bootstrap(&self, bootstrap: Bootstrap) -> Result<BootstrapOutcome> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO projects (key, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(bootstrap.project.as_str())
        .bind(&bootstrap.project_name)
        .bind(bootstrap.at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(BootstrapOutcome::AlreadyBootstrapped);
        }
        for environment in &bootstrap.environments {
            insert_environment(
                &mut tx,
                &bootstrap.project,
                environment,
                environment.as_str(),
                bootstrap.at,
            )
            .await?;
        }
        insert_token(&mut tx, &bootstrap.admin_token).await?;
        insert_audit(
            &mut tx,
            &AuditEntry {
                at: bootstrap.at,
                actor: "capstan".to_owned(),
                action: "bootstrap".to_owned(),
                project: Some(bootstrap.project.clone()),
                environment: None,
                resource_kind: "project".to_owned(),
                resource_key: bootstrap.project.to_string(),
                before: None,
                after: Some(serde_json::json!({
                    "environments": bootstrap.environments.iter().map(|env| env.as_str()).collect::<Vec<_>>(),
                    "adminToken": bootstrap.admin_token.name.as_str(),
                })),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(BootstrapOutcome::Created)
    }

    async fn list_projects(&self) -> Result<Vec<ProjectRecord>> {
        let rows = sqlx::query("SELECT key, name, created_at FROM projects ORDER BY key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ProjectRecord {
                    key: key_column(row, "key", ProjectKey::parse)?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn list_environments(&self, project: &ProjectKey) -> Result<Vec<EnvironmentRecord>> {
        let rows = sqlx::query(
            "SELECT project, key, name, revision, created_at FROM environments \
             WHERE project = $1 ORDER BY created_at, key",
        )
        .bind(project.as_str())
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty()
            && !self
                .list_projects()
                .await?
                .iter()
                .any(|p| &p.key == project)
        {
            return Err(not_found("project", project));
        }
        rows.iter().map(environment_from_row).collect()
    }

    async fn create_environment(
        &self,
        new: NewEnvironment,
        audit: AuditEntry,
    ) -> Result<EnvironmentRecord> {
        let mut tx = self.begin().await?;
        let project_exists = sqlx::query("SELECT key FROM projects WHERE key = $1")
            .bind(new.project.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !project_exists {
            return Err(not_found("project", &new.project));
        }
        match insert_environment(&mut tx, &new.project, &new.key, &new.name, new.created_at).await {
            Err(StoreError::Database(error)) if is_unique_violation(&error) => {
                return Err(StoreError::AlreadyExists {
                    kind: "environment",
                    key: new.key.to_string(),
                });
            }
            other => other?,
        }
        let audit_id = insert_audit(&mut tx, &audit).await?;
        // A new environment starts with every flag of the project, disabled, with the
        // variants the flag has in the oldest environment.
        let rows = sqlx::query(
            "SELECT c.flag, c.config FROM flag_configs c JOIN environments e \
             ON e.project = c.project AND e.key = c.environment WHERE c.project = $1 \
             AND e.created_at = (SELECT MIN(created_at) FROM environments WHERE project = $1 AND key <> $2) \
             ORDER BY c.flag",
        )
        .bind(new.project.as_str())
        .bind(new.key.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let mut seen = std::collections::HashSet::new();
        for row in rows {
            let flag = key_column(&row, "flag", FlagKey::parse)?;
            if !seen.insert(flag.clone()) {
                continue;
            }
            let mut config = json_column(&row, "config")?;
            if let Some(object) = config.as_object_mut() {
                object.insert("state".to_owned(), Value::from("DISABLED"));
                object.remove("targeting");
                object.remove("prerequisites");
            }
            let write = ConfigWrite {
                environment: new.key.clone(),
                flag,
                expected_version: None,
                config: Some(config),
            };
            flags::write_config(&mut tx, &new.project, &write, audit_id, new.created_at).await?;
        }
        tx.commit().await?;
        self.environment_record(&new.project, &new.key).await
    }

    async fn environment_revision(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<i64> {
        Ok(self
            .environment_record(project, environment)
            .await?
            .revision)
    }
}

async fn insert_environment(
    tx: &mut AnyConnection,
    project: &ProjectKey,
    key: &EnvironmentKey,
    name: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO environments (project, key, name, revision, created_at) VALUES ($1, $2, $3, 0, $4)",
    )
    .bind(project.as_str())
    .bind(key.as_str())
    .bind(name)
    .bind(at)
    .execute(tx)
    .await?;
    Ok(())
}

pub(crate) fn environment_from_row(row: &AnyRow) -> Result<EnvironmentRecord> {
    Ok(EnvironmentRecord {
        project: key_column(row, "project", ProjectKey::parse)?,
        key: key_column(row, "key", EnvironmentKey::parse)?,
        name: row.try_get("name")?,
        revision: row.try_get("revision")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Checks that the environment exists and increments its revision if it is still
/// `expected`. Runs first in a transaction, so the transaction holds the write lock
/// from its first statement. On PostgreSQL it also queues a notification of the new
/// revision, which PostgreSQL delivers to every listening replica when (and only if)
/// the transaction commits.
pub(crate) async fn bump_revision(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    project: &ProjectKey,
    environment: &EnvironmentKey,
    expected: i64,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE environments SET revision = revision + 1 \
         WHERE project = $1 AND key = $2 AND revision = $3",
    )
    .bind(project.as_str())
    .bind(environment.as_str())
    .bind(expected)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 1 {
        if backend == Backend::Postgres {
            let notice = format!("{project}/{environment}/{}", expected + 1);
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::feed::CHANNEL)
                .bind(notice)
                .execute(&mut **tx)
                .await?;
        }
        return Ok(());
    }
    let exists = sqlx::query("SELECT revision FROM environments WHERE project = $1 AND key = $2")
        .bind(project.as_str())
        .bind(environment.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    match exists {
        Some(_) => Err(StoreError::RevisionConflict {
            environment: environment.to_string(),
        }),
        None => Err(not_found("environment", environment)),
    }
}

impl SqlStore {
    async fn environment_record(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
    ) -> Result<EnvironmentRecord> {
        let row = sqlx::query(
            "SELECT project, key, name, revision, created_at FROM environments \
             WHERE project = $1 AND key = $2",
        )
        .bind(project.as_str())
        .bind(environment.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("environment", environment))?;
        environment_from_row(&row)
    }
}
