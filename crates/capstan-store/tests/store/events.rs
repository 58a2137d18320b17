//! SDK events: batches, reading back and retention.

use capstan_store::testing::TestBackend;
use capstan_store::*;

use crate::each_backend;
use crate::helpers::{bootstrapped, env, flag, project};

#[tokio::test]
async fn events_are_stored_in_batches_and_read_back_in_order() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let events: Vec<EventRecord> = (0..1_201)
            .map(|n| EventRecord {
                project: project(),
                environment: env("production"),
                kind: if n % 2 == 0 {
                    EventKind::Exposure {
                        flag: flag("checkout"),
                        variant: "on".to_owned(),
                    }
                } else {
                    EventKind::Metric {
                        metric: "checkout_error".to_owned(),
                        value: n as f64 / 2.0,
                    }
                },
                targeting_key: format!("user-{n}"),
                at: 1_000 + n,
                received_at: 5_000,
            })
            .collect();
        assert_eq!(store.insert_events(&events).await.unwrap(), 1_201);
        let mut read = Vec::new();
        let mut after = 0;
        loop {
            let page = store
                .list_events(&project(), &env("production"), after, 500)
                .await
                .unwrap();
            let Some((last, _)) = page.last() else { break };
            after = *last;
            read.extend(page.into_iter().map(|(_, event)| event));
        }
        assert_eq!(read, events);
        assert!(
            store
                .list_events(&project(), &env("staging"), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
    each_backend!(check);
}
#[tokio::test]
async fn retention_deletes_only_old_events() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let events: Vec<EventRecord> = (0..10)
            .map(|n| EventRecord {
                project: project(),
                environment: env("production"),
                kind: EventKind::Metric {
                    metric: "error".to_owned(),
                    value: 0.0,
                },
                targeting_key: format!("user-{n}"),
                at: n * 100,
                received_at: n * 100,
            })
            .collect();
        store.insert_events(&events).await.unwrap();
        assert_eq!(store.delete_events_before(500).await.unwrap(), 5);
        let left = store
            .list_events(&project(), &env("production"), 0, 100)
            .await
            .unwrap();
        assert_eq!(
            left.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
            vec![500, 600, 700, 800, 900]
        );
    }
    each_backend!(check);
}
/// Batches whose statements start with a metric (a value) or an exposure (no value) in
/// any order: PostgreSQL once refused the second kind after the first (error 22P03).
#[tokio::test]
async fn event_batches_store_whatever_kind_comes_first() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        let event = |n: i64, metric: bool| EventRecord {
            project: project(),
            environment: env("production"),
            kind: if metric {
                EventKind::Metric {
                    metric: "latency_ms".to_owned(),
                    value: 12.5,
                }
            } else {
                EventKind::Exposure {
                    flag: flag("checkout"),
                    variant: "on".to_owned(),
                }
            },
            targeting_key: format!("user-{n}"),
            at: n,
            received_at: n,
        };
        // 500 rows per statement: the first statement starts with an exposure, the
        // second with a metric.
        let first: Vec<EventRecord> = (0..2_000).map(|n| event(n, n % 9 != 0)).collect();
        assert_eq!(store.insert_events(&first).await.unwrap(), 2_000);
        let second: Vec<EventRecord> = (0..1_000).map(|n| event(n, n % 2 == 0)).collect();
        assert_eq!(store.insert_events(&second).await.unwrap(), 1_000);
    }
    each_backend!(check);
}
