//! Placement surfaces, items, decisions, rewards and models.

use capstan_store::testing::TestBackend;
use capstan_store::*;
use serde_json::json;

use crate::each_backend;
use crate::helpers::{audit, bootstrapped, project};

fn surface_key(key: &str) -> capstan_model::SurfaceKey {
    capstan_model::SurfaceKey::parse(key).unwrap()
}
fn decision(event_id: &str, created_at: i64, activated: bool) -> DecisionRecord {
    DecisionRecord {
        event_id: event_id.to_owned(),
        project: project(),
        surface: surface_key("home_hero"),
        context: json!({"user": {"taste": "sleep"}}),
        candidates: json!([{"id": "a"}, {"id": "b"}]),
        shown: 1,
        probabilities: json!([0.1, 0.9]),
        policy: "personalized".to_owned(),
        created_at,
        activated_at: activated.then_some(created_at),
        reward: None,
        reward_count: 0,
        learned_at: None,
    }
}
/// The surface `home_hero` in the bootstrapped project.
async fn home_hero(store: &SqlStore) {
    let surface = SurfaceRecord {
        project: project(),
        key: surface_key("home_hero"),
        description: String::new(),
        settings: json!({}),
        created_at: 1,
        updated_at: 1,
    };
    store
        .upsert_surface(surface, audit("surface.create", "home_hero"))
        .await
        .unwrap();
}
#[tokio::test]
async fn transactions_that_read_before_writing_wait_for_other_writers() {
    // A transaction that reads, then writes, while other connections keep committing
    // (leases renewed, as the background controllers do): on SQLite a deferred
    // transaction failed at its first write with "database is locked" whenever a commit
    // came between its read and its write. Bounded: 40 writes of items against 400
    // lease renewals.
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        home_hero(store).await;
        let renewals = async {
            for round in 0..400i64 {
                store
                    .acquire_lease(&format!("lease-{}", round % 4), "me", round, 60_000)
                    .await
                    .unwrap();
            }
        };
        let writes = async {
            let writes = (0..40).map(|round| async move {
                store
                    .upsert_items(
                        &project(),
                        &surface_key("home_hero"),
                        &[ItemRecord {
                            id: format!("item-{round}"),
                            features: json!({}),
                            status: ItemStatus::Live,
                            created_at: round,
                            updated_at: round,
                        }],
                        audit("items.put", "home_hero"),
                    )
                    .await
            });
            futures_util::future::join_all(writes).await
        };
        let ((), results) = tokio::join!(renewals, writes);
        for result in results {
            result.unwrap();
        }
        let items = store
            .list_items(&project(), &surface_key("home_hero"))
            .await
            .unwrap();
        assert_eq!(items.len(), 40);
    }
    each_backend!(check);
}
#[tokio::test]
async fn a_batch_of_decisions_is_logged_in_one_go_and_skips_used_event_ids() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        home_hero(store).await;
        store
            .insert_decision(&decision("used", 10, true))
            .await
            .unwrap();
        let mut again_in_batch = decision("b", 30, true);
        again_in_batch.shown = 0;
        let inserted = store
            .insert_decisions(&[
                decision("a", 20, true),
                decision("used", 25, true),
                decision("b", 30, false),
                again_in_batch,
            ])
            .await
            .unwrap();
        assert_eq!(inserted, vec![true, false, true, false]);
        // The first of each event id is what was logged.
        assert_eq!(store.decision("a").await.unwrap(), decision("a", 20, true));
        assert_eq!(
            store.decision("used").await.unwrap(),
            decision("used", 10, true)
        );
        assert_eq!(store.decision("b").await.unwrap(), decision("b", 30, false));
        assert_eq!(
            store.insert_decisions(&[]).await.unwrap(),
            Vec::<bool>::new()
        );
    }
    each_backend!(check);
}
#[tokio::test]
async fn surfaces_items_decisions_rewards_and_models() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let surface = SurfaceRecord {
            project: project(),
            key: surface_key("home_hero"),
            description: "The hero slot".to_owned(),
            settings: json!({"holdout": 0.05}),
            created_at: 1,
            updated_at: 1,
        };
        store
            .upsert_surface(surface.clone(), audit("surface.create", "home_hero"))
            .await
            .unwrap();
        assert_eq!(
            store
                .surface(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            surface
        );
        let missing = store.surface(&project(), &surface_key("nope")).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
        let item = |id: &str, status: &str| ItemRecord {
            id: id.to_owned(),
            features: json!({"category": "sleep"}),
            status: ItemStatus::parse(status).unwrap(),
            created_at: 2,
            updated_at: 2,
        };
        store
            .upsert_items(
                &project(),
                &surface_key("home_hero"),
                &[item("a", "live"), item("b", "live")],
                audit("items.put", "home_hero"),
            )
            .await
            .unwrap();
        store
            .upsert_items(
                &project(),
                &surface_key("home_hero"),
                &[item("b", "retired")],
                audit("items.put", "home_hero"),
            )
            .await
            .unwrap();
        let items = store
            .list_items(&project(), &surface_key("home_hero"))
            .await
            .unwrap();
        assert_eq!(items, vec![item("a", "live"), item("b", "retired")]);
        let no_surface = store
            .upsert_items(
                &project(),
                &surface_key("nope"),
                &[item("a", "live")],
                audit("items.put", "nope"),
            )
            .await;
        assert!(matches!(no_surface, Err(StoreError::NotFound { .. })));

        // Decisions: unique event ids; rewards combine; learning picks the ready ones.
        store
            .insert_decision(&decision("e1", 100, true))
            .await
            .unwrap();
        store
            .insert_decision(&decision("e2", 200, true))
            .await
            .unwrap();
        store
            .insert_decision(&decision("e3", 300, false))
            .await
            .unwrap();
        let again = store.insert_decision(&decision("e1", 100, true)).await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists { .. })),
            "{again:?}"
        );
        assert_eq!(
            store
                .record_reward("e1", 1.0, RewardCombine::First)
                .await
                .unwrap(),
            RewardOutcome::Recorded
        );
        assert_eq!(
            store
                .record_reward("e1", 5.0, RewardCombine::First)
                .await
                .unwrap(),
            RewardOutcome::Duplicate
        );
        assert_eq!(
            store
                .record_reward("e2", 0.5, RewardCombine::Sum)
                .await
                .unwrap(),
            RewardOutcome::Recorded
        );
        assert_eq!(
            store
                .record_reward("e2", 0.25, RewardCombine::Sum)
                .await
                .unwrap(),
            RewardOutcome::Recorded
        );
        let e2 = store.decision("e2").await.unwrap();
        assert_eq!((e2.reward, e2.reward_count), (Some(0.75), 2));
        assert!(matches!(
            store.record_reward("nope", 1.0, RewardCombine::Sum).await,
            Err(StoreError::NotFound { .. })
        ));

        let ready = |combine, closed_before| async move {
            store
                .decisions_to_learn(
                    &project(),
                    &surface_key("home_hero"),
                    combine,
                    closed_before,
                    10,
                )
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.event_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ready(RewardCombine::First, 0).await,
            vec!["e1", "e2"],
            "rewarded: at once"
        );
        assert!(
            ready(RewardCombine::Sum, 0).await.is_empty(),
            "sums wait for the window"
        );
        assert_eq!(ready(RewardCombine::Sum, 250).await, vec!["e1", "e2"]);
        // Deferred until activated.
        assert_eq!(ready(RewardCombine::Sum, 1_000).await, vec!["e1", "e2"]);
        store.activate_decision("e3", 400).await.unwrap();
        store.activate_decision("e3", 500).await.unwrap();
        assert_eq!(store.decision("e3").await.unwrap().activated_at, Some(400));
        assert_eq!(
            ready(RewardCombine::Sum, 1_000).await,
            vec!["e1", "e2", "e3"]
        );
        store
            .mark_learned(&["e1".to_owned(), "e2".to_owned()], 600)
            .await
            .unwrap();
        assert_eq!(ready(RewardCombine::Sum, 1_000).await, vec!["e3"]);
        assert_eq!(
            store
                .record_reward("e2", 1.0, RewardCombine::Sum)
                .await
                .unwrap(),
            RewardOutcome::Late
        );
        let logged = store
            .list_decisions(
                &project(),
                &surface_key("home_hero"),
                Some((100, "e1".to_owned())),
                10,
            )
            .await
            .unwrap();
        assert_eq!(
            logged
                .iter()
                .map(|d| d.event_id.as_str())
                .collect::<Vec<_>>(),
            vec!["e2", "e3"]
        );

        // Models are bytes, kept whole, versioned.
        assert_eq!(
            store
                .load_model(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .model_version(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            None
        );
        let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        assert_eq!(
            store
                .save_model(&project(), &surface_key("home_hero"), &bytes, 7)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .save_model(&project(), &surface_key("home_hero"), &bytes[..10], 8)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .load_model(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            Some((bytes[..10].to_vec(), 2))
        );
        assert_eq!(
            store
                .model_version(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            Some(2)
        );
    }
    each_backend!(check);
}
