//! Webhooks, their deliveries and the notifications change sets queue.

use capstan_store::testing::TestBackend;
use capstan_store::*;
use serde_json::json;

use crate::each_backend;
use crate::helpers::{audit, bootstrapped, project, start_rollout};

#[tokio::test]
async fn notifications_are_queued_for_matching_webhooks_in_the_same_transaction() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let webhook = |id: &str, events: Vec<String>| WebhookRecord {
            id: id.to_owned(),
            project: project(),
            url: format!("http://127.0.0.1:9/{id}"),
            secret: "s3cret".to_owned(),
            events,
            created_by: "token:admin".to_owned(),
            created_at: 1,
        };
        store
            .create_webhook(webhook("all", vec![]), audit("webhook.create", "all"))
            .await
            .unwrap();
        store
            .create_webhook(
                webhook("reverts", vec!["rollout.reverted".to_owned()]),
                audit("webhook.create", "reverts"),
            )
            .await
            .unwrap();
        assert_eq!(store.list_webhooks(&project()).await.unwrap().len(), 2);

        // A change that fails queues nothing.
        let mut failing = start_rollout("checkout", 99, 7_001, true);
        failing.notifications[0].event = "rollout.reverted".to_owned();
        store.apply(failing).await.unwrap_err();
        assert!(store.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());

        store
            .apply(start_rollout("checkout", 0, 7_001, true))
            .await
            .unwrap();
        let due = store.due_deliveries(10, 10).await.unwrap();
        assert_eq!(
            due.len(),
            1,
            "only the webhook for every event hears of a start"
        );
        assert_eq!(
            (due[0].webhook.id.as_str(), due[0].event.as_str()),
            ("all", "rollout.started")
        );
        assert_eq!(due[0].body, json!({"text": "checkout started"}));

        store
            .settle_delivery(
                due[0].id,
                DeliveryOutcome::Retry {
                    at: 500,
                    error: "503".to_owned(),
                },
                10,
            )
            .await
            .unwrap();
        assert!(store.due_deliveries(499, 10).await.unwrap().is_empty());
        let retried = store.due_deliveries(500, 10).await.unwrap();
        assert_eq!(
            (retried[0].attempts, retried[0].last_error.as_deref()),
            (1, Some("503"))
        );
        store
            .settle_delivery(retried[0].id, DeliveryOutcome::Delivered, 501)
            .await
            .unwrap();
        assert!(store.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());
        assert_eq!(
            store.list_deliveries("all").await.unwrap()[0]
                .status
                .as_str(),
            "delivered"
        );

        store
            .delete_webhook(&project(), "all", audit("webhook.delete", "all"))
            .await
            .unwrap();
        let missing = store
            .delete_webhook(&project(), "all", audit("webhook.delete", "all"))
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    }
    each_backend!(check);
}
