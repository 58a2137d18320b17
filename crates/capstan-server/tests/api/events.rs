use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::each_backend;

fn issue_example() -> serde_json::Value {
    json!({"events": [
        {"kind": "exposure", "flag": "new-checkout", "variant": "on", "targetingKey": "u-1", "timestamp": "2026-11-24T20:00:00Z"},
        {"kind": "metric", "metric": "checkout_error", "targetingKey": "u-1", "value": 1.0, "timestamp": "2026-11-24T20:00:01Z"}
    ]})
}

#[tokio::test]
async fn events_are_accepted_and_stored() {
    each_backend!(|app| {
        let sdk = app.token("sdk", Some("production")).await;
        let (status, body) = app
            .request(
                Method::POST,
                "/api/v1/events",
                Some(&sdk),
                Some(issue_example()),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["accepted"], 2);
        let project = capstan_model::ProjectKey::parse("default").unwrap();
        let production = capstan_model::EnvironmentKey::parse("production").unwrap();
        let stored = app
            .state()
            .core
            .store
            .list_events(&project, &production, 0, 10)
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].1.targeting_key, "u-1");
        assert_eq!(
            stored[0].1.at,
            capstan_server::core::clock::parse_rfc3339("2026-11-24T20:00:00Z").unwrap()
        );
        assert!(
            matches!(&stored[1].1.kind, capstan_store::EventKind::Metric { metric, value } if metric == "checkout_error" && *value == 1.0)
        );
        // Client keys may send events too; extra fields are fine.
        let client = app.token("client", Some("production")).await;
        let mut extra = issue_example();
        extra["events"][0]["sdk"] = json!("capstan-js/1.0");
        let (status, _) = app
            .request(Method::POST, "/api/v1/events", Some(&client), Some(extra))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    });
}

#[tokio::test]
async fn a_bad_event_is_named_by_its_index_and_nothing_is_stored() {
    each_backend!(|app| {
        let sdk = app.token("sdk", Some("production")).await;
        let cases = [
            ("timestamp", json!("yesterday"), "events[1].timestamp"),
            ("kind", json!("click"), "events[1].kind"),
            ("metric", json!("bad metric"), "events[1].metric"),
            ("targetingKey", json!(""), "events[1].targetingKey"),
        ];
        for (field, value, named) in cases {
            let mut batch = issue_example();
            batch["events"][1][field] = value;
            let (status, body) = app
                .request(Method::POST, "/api/v1/events", Some(&sdk), Some(batch))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["field"], named, "{body}");
        }
        let mut batch = issue_example();
        batch["events"][1]
            .as_object_mut()
            .unwrap()
            .remove("targetingKey");
        let (status, body) = app
            .request(Method::POST, "/api/v1/events", Some(&sdk), Some(batch))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["message"].as_str().unwrap().starts_with("events[1]"),
            "{body}"
        );
        let project = capstan_model::ProjectKey::parse("default").unwrap();
        let production = capstan_model::EnvironmentKey::parse("production").unwrap();
        assert!(
            app.state()
                .core
                .store
                .list_events(&project, &production, 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let (status, _) = app
            .request(
                Method::POST,
                "/api/v1/events",
                Some(crate::helpers::ADMIN_TOKEN),
                Some(issue_example()),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    });
}
