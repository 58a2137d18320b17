use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::each_backend;
use crate::helpers::START_MS;

const FLAG: &str = "/api/v1/projects/default/environments/production/flags/launch";

#[tokio::test]
async fn a_scheduled_change_fires_on_time_and_once() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "launch" })).await;
        let at = capstan_server::core::clock::rfc3339(START_MS + 60_000);
        let (status, schedule) = app
            .admin(
                Method::POST,
                &format!("{FLAG}/schedules"),
                Some(json!({ "at": at, "action": "enable" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{schedule}");
        assert_eq!(schedule["status"], "pending");
        let targeting = json!({ "if": [{ "==": [{ "var": "tier" }, "gold"] }, "on", "off"] });
        app.admin(
            Method::POST,
            &format!("{FLAG}/schedules"),
            Some(json!({ "at": capstan_server::core::clock::rfc3339(START_MS + 120_000), "action": "setTargeting", "targeting": targeting })),
        )
        .await;

        // Not yet.
        let report = capstan_server::flags::scheduler::tick(&app.state().flags)
            .await
            .unwrap();
        assert_eq!(report.applied, 0);
        app.clock.advance(60_000);
        assert_eq!(
            capstan_server::flags::scheduler::tick(&app.state().flags)
                .await
                .unwrap()
                .applied,
            1
        );
        assert_eq!(
            capstan_server::flags::scheduler::tick(&app.state().flags)
                .await
                .unwrap()
                .applied,
            0
        );
        let (_, flag) = app.admin(Method::GET, FLAG, None).await;
        assert_eq!(flag["state"], "ENABLED");
        assert!(flag.get("targeting").is_none());

        app.clock.advance(60_000);
        assert_eq!(
            capstan_server::flags::scheduler::tick(&app.state().flags)
                .await
                .unwrap()
                .applied,
            1
        );
        let (_, flag) = app.admin(Method::GET, FLAG, None).await;
        assert_eq!(flag["targeting"], targeting);

        let (_, history) = app
            .admin(Method::GET, &format!("{FLAG}/history"), None)
            .await;
        let actions: Vec<&str> = history["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["schedule.set_targeting", "schedule.enable", "flag.create"]
        );
        assert_eq!(
            history["versions"][0]["actor"],
            "scheduler (for bootstrap-admin)"
        );
        let (_, list) = app
            .admin(Method::GET, &format!("{FLAG}/schedules"), None)
            .await;
        assert!(
            list["schedules"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == "applied")
        );
    });
}

#[tokio::test]
async fn two_replicas_apply_a_schedule_once() {
    for backend in crate::helpers::all_backends() {
        let app = crate::helpers::TestApp::spawn(&backend).await;
        app.create_flag(json!({ "key": "launch" })).await;
        let at = capstan_server::core::clock::rfc3339(START_MS + 1_000);
        app.admin(
            Method::POST,
            &format!("{FLAG}/schedules"),
            Some(json!({ "at": at, "action": "enable" })),
        )
        .await;
        // A second replica on the same database, with its own clock at the same time.
        let clock = std::sync::Arc::new(capstan_server::core::clock::ManualClock::new(
            START_MS + 1_000,
        ));
        let replica = capstan_server::start(
            &crate::helpers::config(&app.database.url, &Default::default()),
            clock,
        )
        .await
        .unwrap();
        app.clock.advance(1_000);
        let (first, second) = tokio::join!(
            capstan_server::flags::scheduler::tick(&app.state().flags),
            capstan_server::flags::scheduler::tick(&replica.state.flags)
        );
        assert_eq!(first.unwrap().applied + second.unwrap().applied, 1);
        let (_, history) = app
            .admin(Method::GET, &format!("{FLAG}/history"), None)
            .await;
        assert_eq!(history["versions"].as_array().unwrap().len(), 2);
        replica.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_schedule_that_cannot_apply_is_refused_or_cancellable() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "launch" })).await;
        let (status, body) = app
            .admin(
                Method::POST,
                &format!("{FLAG}/schedules"),
                Some(json!({ "at": "2030-01-01T00:00:00Z", "action": "setTargeting", "targeting": { "nope": [] } })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("unknown operator"),
            "{body}"
        );
        let (status, body) = app
            .admin(
                Method::POST,
                &format!("{FLAG}/schedules"),
                Some(json!({ "at": "soon", "action": "enable" })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "at");
        let (_, schedule) = app
            .admin(
                Method::POST,
                &format!("{FLAG}/schedules"),
                Some(json!({ "at": "2030-01-01T00:00:00Z", "action": "enable" })),
            )
            .await;
        let id = schedule["id"].as_i64().unwrap();
        let (status, _) = app
            .admin(
                Method::DELETE,
                &format!("/api/v1/projects/default/environments/production/schedules/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        app.clock.set(4_102_444_800_000);
        assert_eq!(
            capstan_server::flags::scheduler::tick(&app.state().flags)
                .await
                .unwrap()
                .applied,
            0
        );
    });
}
