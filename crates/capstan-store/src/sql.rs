//! [`SqlStore`]: the store on SQLite or PostgreSQL. This module opens and migrates the
//! database and answers [`Store`]'s own methods; each capability's module implements its
//! trait for `SqlStore` with its own SQL.
//!
//! sqlx's `Any` driver lets one set of queries serve both backends: both understand `$n`
//! placeholders, `RETURNING` and `ON CONFLICT`; where they differ (identity columns,
//! locking) the backend decides.
//!
//! What every capability's SQL shares lives here too: write transactions
//! ([`SqlStore::begin`]), optimistic version checks, the errors for a missing row and a
//! unique violation, and decoding of key and JSON columns.

use std::str::FromStr;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, Executor, Pool, Row, Transaction};

use crate::migrations::MIGRATIONS;
use crate::{Backend, Result, Store, StoreError};

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
