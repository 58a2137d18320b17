//! Throwaway databases for tests: a fresh SQLite file, or (when
//! `CAPSTAN_TEST_DATABASE_URL` names a PostgreSQL server) a fresh PostgreSQL database
//! that is dropped again when the test ends.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Executor;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions};

/// The environment variable that names the PostgreSQL server tests may use.
pub const TEST_DATABASE_URL: &str = "CAPSTAN_TEST_DATABASE_URL";

/// Which backends this test run covers: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<TestBackend> {
    let mut backends = vec![TestBackend::Sqlite];
    if let Ok(url) = std::env::var(TEST_DATABASE_URL)
        && !url.trim().is_empty()
    {
        backends.push(TestBackend::Postgres(url));
    }
    backends
}

#[derive(Debug, Clone)]
pub enum TestBackend {
    Sqlite,
    Postgres(String),
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The temporary directory that holds the SQLite file and its WAL.
    Sqlite(std::path::PathBuf),
    Postgres {
        admin_url: String,
        name: String,
    },
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestDatabase {
    pub async fn new(backend: &TestBackend) -> TestDatabase {
        sqlx::any::install_default_drivers();
        match backend {
            TestBackend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("capstan-test-{}", unique_suffix()));
                std::fs::create_dir_all(&dir).expect("failed to create test directory");
                let url = dir.join("capstan.db").display().to_string();
                TestDatabase {
                    url,
                    cleanup: Cleanup::Sqlite(dir),
                }
            }
            TestBackend::Postgres(admin_url) => {
                let name = format!("capstan_test_{}", unique_suffix());
                let mut admin = connect(admin_url).await;
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("failed to create test database");
                let url = with_database(admin_url, &name);
                TestDatabase {
                    url,
                    cleanup: Cleanup::Postgres {
                        admin_url: admin_url.clone(),
                        name,
                    },
                }
            }
        }
    }
}

async fn connect(url: &str) -> AnyConnection {
    url.parse::<AnyConnectOptions>()
        .expect("invalid test database URL")
        .connect()
        .await
        .expect("failed to connect to the test database server")
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |index| index + 3);
    let path_start = base[scheme_end..].find('/').map(|index| scheme_end + index);
    let host = path_start.map_or(base, |index| &base[..index]);
    match query {
        Some(query) => format!("{host}/{name}?{query}"),
        None => format!("{host}/{name}"),
    }
}

impl TestDatabase {
    /// Removes a PostgreSQL database now, under any connections to it, to simulate the
    /// database going away. Returns false for SQLite, which cannot go away this way.
    pub async fn destroy(&self) -> bool {
        match &self.cleanup {
            Cleanup::Sqlite(_) => false,
            Cleanup::Postgres { admin_url, name } => {
                let mut admin = connect(admin_url).await;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .expect("failed to drop test database");
                true
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = match &self.cleanup {
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
                return;
            }
            Cleanup::Postgres { admin_url, name } => (admin_url, name),
        };
        {
            let admin_url = admin_url.clone();
            let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            // Drop cannot await; a short-lived runtime on its own thread does the work.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        let mut admin = connect(&admin_url).await;
                        let _ = admin.execute(statement.as_str()).await;
                    });
                }
            })
            .join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::with_database("postgres://127.0.0.1:5432/test", "x"),
            "postgres://127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
