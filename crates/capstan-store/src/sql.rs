//! The SQL implementation of [`Store`], over sqlx's `Any` driver so that one set of
//! queries serves SQLite and PostgreSQL. Both understand `$n` placeholders, `RETURNING`
//! and `ON CONFLICT`; where they differ (identity columns, locking) the backend decides.

use std::str::FromStr;

use async_trait::async_trait;
use capstan_model::{EnvironmentKey, FlagKey, ProjectKey};
use serde_json::Value;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, Executor, Pool, Row, Transaction};

use crate::audit::insert_audit;
use crate::flags;
use crate::migrations::MIGRATIONS;
use crate::records::*;
use crate::tokens::insert_token;
use crate::{AuditEntry, Backend, ConfigWrite, Result, Store, StoreError};

/// How long a request waits for a database connection before the store reports itself
/// unavailable: long enough to ride out a busy moment, short enough that health checks
/// and clients hear about an outage quickly.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A store on SQLite or PostgreSQL, chosen by the URL it is opened with.
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pool: Pool<Any>,
    pub(crate) backend: Backend,
    /// The database URL, for the dedicated connection that listens for changes.
    url: String,
}

/// How [`SqlStore::open_with`] prepares the database.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Stop migrating at this schema version; `None` migrates to the newest. Tests use it
    /// to build a database as an older Capstan left it.
    pub migrate_up_to: Option<i64>,
}

impl SqlStore {
    /// Opens (creating if needed) the database at `url` and migrates it to the newest
    /// schema. `url` is a `postgres://` URL, a `sqlite:` URL or a plain file path.
    pub async fn open(url: &str) -> Result<SqlStore> {
        SqlStore::open_with(url, OpenOptions::default()).await
    }

    pub async fn open_with(url: &str, options: OpenOptions) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url);
        let connect = AnyConnectOptions::from_str(&url)
            .map_err(|error| StoreError::Open(format!("invalid database URL: {error}")))?;
        let pool = match backend {
            // Write transactions take the write lock as they begin (see `begin`), so with
            // a busy timeout SQLite's single writer never fails a transaction that read
            // first; WAL lets readers run beside it. FULL sync
            // makes an acknowledged commit survive a power cut, not just a crash.
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                            )
                            .await?;
                        Ok(())
                    })
                })
                .connect_with(connect)
                .await
                .map_err(|error| StoreError::Open(error.to_string()))?,
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(connect)
                .await
                .map_err(|error| StoreError::Open(error.to_string()))?,
        };
        let store = SqlStore {
            pool,
            backend,
            url: url.clone(),
        };
        store.migrate(options.migrate_up_to).await?;
        Ok(store)
    }

    /// The newest schema version this build knows.
    pub fn latest_schema_version() -> i64 {
        MIGRATIONS.last().map_or(0, |migration| migration.version)
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that read before it wrote failed at its first
    /// write with "database is locked" (SQLITE_BUSY_SNAPSHOT, which no busy timeout
    /// waits out) whenever another connection committed in between, as the background
    /// controllers' lease renewals do several times a second. Taken at the start, the
    /// lock waits for the other writer under the busy timeout instead.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("version")?)
    }

    async fn migrate(&self, up_to: Option<i64>) -> Result<()> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            // Replicas starting together must not run the same migration twice.
            tx.execute("SELECT pg_advisory_xact_lock(847001)").await?;
        }
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version BIGINT PRIMARY KEY, description TEXT NOT NULL)",
        )
        .await?;
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?;
        let current: i64 = row.try_get("version")?;
        for migration in MIGRATIONS {
            if migration.version <= current || up_to.is_some_and(|limit| migration.version > limit)
            {
                continue;
            }
            tracing::info!(
                version = migration.version,
                migration.description,
                "migrating store"
            );
            for part in migration.sql(self.backend) {
                tx.execute(part.as_str()).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)")
                .bind(migration.version)
                .bind(migration.description)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks that the environment exists and increments its revision if it is still
    /// `expected`. Runs first in a transaction, so the transaction holds the write lock
    /// from its first statement. On PostgreSQL it also queues a notification of the new
    /// revision, which PostgreSQL delivers to every listening replica when (and only if)
    /// the transaction commits.
    pub(crate) async fn bump_revision(
        &self,
        tx: &mut Transaction<'_, Any>,
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
            if self.backend == Backend::Postgres {
                let notice = format!("{project}/{environment}/{}", expected + 1);
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(crate::feed::CHANNEL)
                    .bind(notice)
                    .execute(&mut **tx)
                    .await?;
            }
            return Ok(());
        }
        let exists =
            sqlx::query("SELECT revision FROM environments WHERE project = $1 AND key = $2")
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

fn normalise_url(url: &str) -> (Backend, String) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        (Backend::Postgres, url.to_owned())
    } else if url.starts_with("sqlite:") {
        (Backend::Sqlite, url.to_owned())
    } else {
        // A plain path: create the file if it is missing.
        (Backend::Sqlite, format!("sqlite://{url}?mode=rwc"))
    }
}

/// Optimistic concurrency: the row must be at the version the writer read, or absent
/// when the writer expects to create it.
pub(crate) fn check_version(
    kind: &'static str,
    key: &impl ToString,
    current: Option<i64>,
    expected: Option<i64>,
) -> Result<()> {
    match (current, expected) {
        (Some(current), Some(expected)) if current == expected => Ok(()),
        (None, None) => Ok(()),
        (Some(current), _) => Err(StoreError::VersionConflict {
            kind,
            key: key.to_string(),
            current_version: current,
        }),
        (None, Some(_)) => Err(not_found(kind, key.to_string())),
    }
}

pub(crate) fn not_found(kind: &'static str, key: impl ToString) -> StoreError {
    StoreError::NotFound {
        kind,
        key: key.to_string(),
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            error.is_unique_violation()
                || error
                    .code()
                    .is_some_and(|code| code == "23505" || code == "1555" || code == "2067")
        }
        _ => false,
    }
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn json_column(row: &AnyRow, column: &str) -> Result<Value> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|error| corrupt(format!("column {column}: {error}")))
}

pub(crate) fn optional_json_column(row: &AnyRow, column: &str) -> Result<Option<Value>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|error| corrupt(format!("column {column}: {error}")))
}

pub(crate) fn key_column<K>(
    row: &AnyRow,
    column: &str,
    parse: fn(String) -> Result<K, capstan_model::InvalidKey>,
) -> Result<K> {
    let text: String = row.try_get(column)?;
    parse(text).map_err(corrupt)
}

pub(crate) fn optional_key_column<K>(
    row: &AnyRow,
    column: &str,
    parse: fn(String) -> Result<K, capstan_model::InvalidKey>,
) -> Result<Option<K>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(parse).transpose().map_err(corrupt)
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

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn changes(&self) -> Result<Option<crate::ChangeFeed>> {
        match self.backend {
            Backend::Sqlite => Ok(None),
            Backend::Postgres => crate::ChangeFeed::listen(&self.url).await.map(Some),
        }
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

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
            Self::insert_environment(
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
        match Self::insert_environment(&mut tx, &new.project, &new.key, &new.name, new.created_at)
            .await
        {
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
