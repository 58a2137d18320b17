//! Migrations: the schema each backend ends up with, and upgrades from older versions.

use capstan_store::testing::{TestDatabase, backends};
use capstan_store::*;

use crate::helpers::{bootstrapped, create_flag, env, project};

/// A database left at any version, the newest included, opens, upgrades to the newest
/// schema and keeps what it held.
#[tokio::test]
async fn an_older_schema_upgrades_and_keeps_its_data() {
    assert!(SqlStore::latest_schema_version() >= 2);
    for backend in backends() {
        for version in 1..=SqlStore::latest_schema_version() {
            let database = TestDatabase::new(&backend).await;
            let old = SqlStore::open_with(
                &database.url,
                OpenOptions {
                    migrate_up_to: Some(version),
                },
            )
            .await
            .unwrap();
            assert_eq!(old.schema_version().await.unwrap(), version);
            bootstrapped(&old).await;
            old.apply(create_flag("kept", 0)).await.unwrap();
            drop(old);

            let upgraded = SqlStore::open(&database.url).await.unwrap();
            assert_eq!(
                upgraded.schema_version().await.unwrap(),
                SqlStore::latest_schema_version()
            );
            let state = upgraded
                .load_environment(&project(), &env("production"))
                .await
                .unwrap();
            assert_eq!(state.configs.len(), 1);
            assert_eq!(state.configs[0].flag.as_str(), "kept");
            // The table the second migration adds works.
            assert!(upgraded.due_schedules(i64::MAX).await.unwrap().is_empty());
        }
    }
}
