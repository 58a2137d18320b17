//! Change sets of flags, configurations and segments, and flag history.

use capstan_model::SegmentKey;
use capstan_store::testing::TestBackend;
use capstan_store::*;
use serde_json::json;

use crate::each_backend;
use crate::helpers::{
    audit, boolean_flag, bootstrapped, change_config, config, create_flag, env, flag,
    production_change, project,
};

#[tokio::test]
async fn applies_a_change_and_records_its_version_and_audit() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let applied = store.apply(create_flag("checkout", 0)).await.unwrap();
        assert_eq!(
            applied.config_versions,
            vec![(env("production"), flag("checkout"), 1)]
        );
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.environment.revision, 1);
        assert_eq!(state.flags, vec![boolean_flag("checkout")]);
        assert_eq!(state.configs[0].config, config("DISABLED"));
        assert_eq!(state.configs[0].version, 1);

        let mut enable = change_config("checkout", 1, 1, config("ENABLED"));
        enable.audit.action = "flag.enable".to_owned();
        store.apply(enable).await.unwrap();

        let history = store
            .flag_history(&project(), &env("production"), &flag("checkout"))
            .await
            .unwrap();
        assert_eq!(
            history.iter().map(|v| v.version).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(history[0].config, Some(config("ENABLED")));
        assert_eq!(history[0].action, "flag.enable");
        assert_eq!(history[1].actor, "tester");

        let log = store
            .audit_log(AuditFilter {
                resource_key: Some("checkout".to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].entry.action, "flag.enable");
    }
    each_backend!(check);
}
#[tokio::test]
async fn a_stale_version_loses_with_the_current_version() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("checkout", 0)).await.unwrap();
        let stale = change_config("checkout", 1, 7, config("DISABLED"));
        match store.apply(stale).await {
            Err(StoreError::VersionConflict {
                current_version, ..
            }) => assert_eq!(current_version, 1),
            other => panic!("expected a version conflict, got {other:?}"),
        }
        // Creating a flag that exists is a conflict too, never an overwrite.
        match store.apply(create_flag("checkout", 1)).await {
            Err(StoreError::VersionConflict {
                current_version, ..
            }) => assert_eq!(current_version, 1),
            other => panic!("expected a version conflict, got {other:?}"),
        }
    }
    each_backend!(check);
}
#[tokio::test]
async fn a_failed_change_leaves_nothing_behind() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("existing", 0)).await.unwrap();
        // The second configuration write conflicts, after the first one and the audit
        // entry were written inside the transaction.
        let mut change = create_flag("fresh", 1);
        change.writes.push(
            ConfigWrite {
                environment: env("production"),
                flag: flag("existing"),
                expected_version: Some(42),
                config: Some(config("ENABLED")),
            }
            .into(),
        );
        assert!(matches!(
            store.apply(change).await,
            Err(StoreError::VersionConflict { .. })
        ));
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.environment.revision, 1);
        assert_eq!(state.flags.len(), 1);
        assert_eq!(state.configs.len(), 1);
        let log = store.audit_log(AuditFilter::default()).await.unwrap();
        assert!(
            log.iter()
                .all(|record| record.entry.resource_key != "fresh")
        );
    }
    each_backend!(check);
}
#[tokio::test]
async fn a_stale_environment_revision_is_refused() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("a", 0)).await.unwrap();
        assert!(matches!(
            store.apply(create_flag("b", 0)).await,
            Err(StoreError::RevisionConflict { .. })
        ));
        assert!(matches!(
            store
                .apply(ChangeSet {
                    environments: vec![(env("nowhere"), 0)],
                    ..create_flag("c", 0)
                })
                .await,
            Err(StoreError::NotFound {
                kind: "environment",
                ..
            })
        ));
    }
    each_backend!(check);
}
#[tokio::test]
async fn deleting_a_flag_removes_it_everywhere_and_keeps_history() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("gone", 0)).await.unwrap();
        let delete = ChangeSet {
            writes: vec![
                FlagWrite::Delete(flag("gone")).into(),
                ConfigWrite {
                    environment: env("production"),
                    flag: flag("gone"),
                    expected_version: Some(1),
                    config: None,
                }
                .into(),
            ],
            ..production_change(1, audit("flag.delete", "gone"), 11)
        };
        store.apply(delete).await.unwrap();
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert!(state.flags.is_empty() && state.configs.is_empty());
        let history = store
            .flag_history(&project(), &env("production"), &flag("gone"))
            .await
            .unwrap();
        assert_eq!(history[0].config, None);
        assert_eq!(history[0].version, 2);
        // Re-created, its versions go on counting.
        let applied = store.apply(create_flag("gone", 2)).await.unwrap();
        assert_eq!(applied.config_versions[0].2, 3);
    }
    each_backend!(check);
}
#[tokio::test]
async fn segments_are_versioned_per_environment() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let key = SegmentKey::parse("beta-users").unwrap();
        let write = |expected, rule: serde_json::Value, revision| ChangeSet {
            writes: vec![
                SegmentWrite {
                    environment: env("production"),
                    key: key.clone(),
                    expected_version: expected,
                    segment: Some(("Beta".to_owned(), rule)),
                }
                .into(),
            ],
            ..production_change(revision, audit("segment.upsert", "beta-users"), 12)
        };
        store
            .apply(write(None, json!({"in": [1, [1]]}), 0))
            .await
            .unwrap();
        store
            .apply(write(Some(1), json!({"in": [2, [2]]}), 1))
            .await
            .unwrap();
        assert!(matches!(
            store.apply(write(Some(1), json!(true), 2)).await,
            Err(StoreError::VersionConflict {
                kind: "segment",
                current_version: 2,
                ..
            })
        ));
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.segments.len(), 1);
        assert_eq!(state.segments[0].rule, json!({"in": [2, [2]]}));
        let staging = store
            .load_environment(&project(), &env("staging"))
            .await
            .unwrap();
        assert!(staging.segments.is_empty());
    }
    each_backend!(check);
}
#[tokio::test]
async fn concurrent_writers_never_lose_an_acknowledged_change() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("counter", 0)).await.unwrap();
        // Eight writers race to bump one flag from the version they read; each success
        // must be visible as exactly one version, and every failure must be a conflict.
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut successes = 0;
                for _ in 0..5 {
                    let state = store.load_environment(&project(), &env("production")).await.unwrap();
                    let version = state.configs[0].version;
                    let change = change_config("counter", state.environment.revision, version, json!({"state": "ENABLED", "variants": {"w": writer}, "defaultVariant": "w"}));
                    match store.apply(change).await {
                        Ok(_) => successes += 1,
                        Err(StoreError::VersionConflict { .. } | StoreError::RevisionConflict { .. }) => {}
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                }
                successes
            }));
        }
        let mut successes = 0;
        for task in tasks {
            successes += task.await.unwrap();
        }
        let history = store
            .flag_history(&project(), &env("production"), &flag("counter"))
            .await
            .unwrap();
        assert!(successes >= 1);
        assert_eq!(history.len(), 1 + successes);
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.configs[0].version, 1 + successes as i64);
    }
    each_backend!(check);
}
