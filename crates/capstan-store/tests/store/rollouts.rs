//! Guarded rollouts and their per-minute buckets.

use capstan_store::testing::TestBackend;
use capstan_store::*;
use serde_json::json;

use crate::each_backend;
use crate::helpers::{audit, bootstrapped, env, flag, production_change, project, start_rollout};

#[tokio::test]
async fn a_rollout_commits_with_its_flag_change_and_one_is_active_per_flag() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let id = 7_001;
        store
            .apply(start_rollout("checkout", 0, id, true))
            .await
            .unwrap();
        let rollout = store.rollout(id).await.unwrap();
        assert_eq!((rollout.status.as_str(), rollout.version), ("running", 1));
        assert_eq!(rollout.plan["treatment"], "on");

        // A second active rollout of the same flag is refused, and nothing of it is kept.
        let second = start_rollout("checkout", 1, 7_002, false);
        let refused = store.apply(second).await.unwrap_err();
        assert!(
            matches!(refused, StoreError::AlreadyExists { .. }),
            "{refused:?}"
        );
        assert_eq!(
            store
                .environment_revision(&project(), &env("production"))
                .await
                .unwrap(),
            1
        );

        // Moving on checks the version; a stale writer loses.
        let update = |expected_version, status| ChangeSet {
            environments: vec![],
            writes: vec![
                RolloutWrite::Update {
                    id,
                    expected_version,
                    status,
                    progress: json!({"step": 1}),
                    timeline: json!([{"step": 0}]),
                }
                .into(),
            ],
            ..production_change(1, audit("rollout.advance", "checkout"), 10)
        };
        store
            .apply(update(1, RolloutStatus::Promoted))
            .await
            .unwrap();
        let stale = store
            .apply(update(1, RolloutStatus::Reverted))
            .await
            .unwrap_err();
        assert!(
            matches!(
                stale,
                StoreError::VersionConflict {
                    current_version: 2,
                    ..
                }
            ),
            "{stale:?}"
        );
        let rollout = store.rollout(id).await.unwrap();
        assert_eq!((rollout.status.as_str(), rollout.version), ("promoted", 2));
        assert_eq!(rollout.progress, json!({"step": 1}));

        // Finished, the flag may have a new rollout.
        let next_id = 7_003;
        store
            .apply(start_rollout("checkout", 1, next_id, false))
            .await
            .unwrap();
        let active = store
            .list_rollouts(RolloutFilter {
                active_only: true,
                ..RolloutFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            active.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![next_id]
        );
        let all = store
            .list_rollouts(RolloutFilter {
                flag: Some(flag("checkout")),
                ..RolloutFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 2);

        store
            .record_rollout_reading(next_id, &json!({"reason": "holding"}))
            .await
            .unwrap();
        assert_eq!(
            store.rollout(next_id).await.unwrap().latest,
            Some(json!({"reason": "holding"}))
        );
        let bucket = RolloutBucketRecord {
            rollout_id: next_id,
            arm: "treatment".to_owned(),
            bucket_start: 60_000,
            exposures: 3,
            new_units: 2,
            metrics: json!({"error": [3, 1.0]}),
        };
        store
            .save_rollout_buckets(std::slice::from_ref(&bucket))
            .await
            .unwrap();
        let replaced = RolloutBucketRecord {
            exposures: 5,
            ..bucket
        };
        store
            .save_rollout_buckets(std::slice::from_ref(&replaced))
            .await
            .unwrap();
        assert_eq!(
            store.rollout_buckets(next_id).await.unwrap(),
            vec![replaced]
        );
    }
    each_backend!(check);
}
