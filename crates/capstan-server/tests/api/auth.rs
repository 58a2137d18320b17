use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::each_backend;
use crate::helpers::ADMIN_TOKEN;

/// Every management route, the role it needs, and a body that succeeds with that role.
/// Routes run in order, so later ones may use what earlier ones made.
fn routes(
    schedule: i64,
    token_id: &str,
    rollout: i64,
    webhook: &str,
) -> Vec<(Method, String, Option<Value>, &'static str)> {
    let rollouts = "/api/v1/projects/default/rollouts";
    let surfaces = "/api/v1/projects/default/surfaces";
    let webhooks = "/api/v1/projects/default/webhooks";
    let env = "/api/v1/projects/default/environments/production";
    let flag = format!("{env}/flags/auth-x");
    vec![
        (Method::GET, "/api/v1/projects".into(), None, "viewer"),
        (
            Method::GET,
            "/api/v1/projects/default/environments".into(),
            None,
            "viewer",
        ),
        (
            Method::POST,
            "/api/v1/projects/default/environments".into(),
            Some(json!({ "key": "qa" })),
            "admin",
        ),
        (
            Method::GET,
            "/api/v1/projects/default/flags".into(),
            None,
            "viewer",
        ),
        (
            Method::POST,
            "/api/v1/projects/default/flags".into(),
            Some(json!({ "key": "auth-y" })),
            "editor",
        ),
        (
            Method::GET,
            "/api/v1/projects/default/flags/auth-x".into(),
            None,
            "viewer",
        ),
        (
            Method::PATCH,
            "/api/v1/projects/default/flags/auth-x".into(),
            Some(json!({ "description": "d" })),
            "editor",
        ),
        (Method::GET, format!("{env}/flags"), None, "viewer"),
        (Method::GET, flag.clone(), None, "viewer"),
        (
            Method::PATCH,
            flag.clone(),
            Some(json!({ "metadata": { "team": "web" } })),
            "editor",
        ),
        (
            Method::PUT,
            flag.clone(),
            Some(
                json!({ "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" }),
            ),
            "editor",
        ),
        (Method::POST, format!("{flag}/enable"), None, "editor"),
        (Method::POST, format!("{flag}/disable"), None, "editor"),
        (Method::GET, format!("{flag}/history"), None, "viewer"),
        (
            Method::POST,
            format!("{flag}/revert"),
            Some(json!({ "version": 1 })),
            "editor",
        ),
        (
            Method::POST,
            format!("{flag}/schedules"),
            Some(json!({ "at": "2030-01-01T00:00:00Z", "action": "enable" })),
            "editor",
        ),
        (Method::GET, format!("{flag}/schedules"), None, "viewer"),
        (Method::GET, format!("{env}/schedules"), None, "viewer"),
        (
            Method::DELETE,
            format!("{env}/schedules/{schedule}"),
            None,
            "editor",
        ),
        (
            Method::PUT,
            format!("{env}/segments/beta"),
            Some(json!({ "rule": { "==": [1, 1] } })),
            "editor",
        ),
        (Method::GET, format!("{env}/segments"), None, "viewer"),
        (Method::GET, format!("{env}/segments/beta"), None, "viewer"),
        (
            Method::DELETE,
            format!("{env}/segments/beta"),
            None,
            "editor",
        ),
        (Method::GET, format!("{env}/flagd"), None, "viewer"),
        (
            Method::POST,
            format!("{env}/flagd"),
            Some(json!({ "flags": {} })),
            "editor",
        ),
        (Method::GET, "/api/v1/audit".into(), None, "viewer"),
        (Method::GET, "/api/v1/tokens".into(), None, "admin"),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({ "name": "made", "role": "viewer" })),
            "admin",
        ),
        (
            Method::GET,
            format!("/api/v1/tokens/{token_id}"),
            None,
            "admin",
        ),
        (
            Method::POST,
            format!("/api/v1/tokens/{token_id}/rotate"),
            Some(json!({ "gracePeriodSeconds": 0 })),
            "admin",
        ),
        (
            Method::DELETE,
            format!("/api/v1/tokens/{token_id}"),
            None,
            "admin",
        ),
        (Method::GET, "/api/v1/sdk/config".into(), None, "sdk"),
        (
            Method::POST,
            "/api/v1/events".into(),
            Some(
                json!({ "events": [{ "kind": "metric", "metric": "m", "targetingKey": "u", "timestamp": "2026-01-01T00:00:00Z" }] }),
            ),
            "client",
        ),
        (Method::GET, "/api/v1/sdk/stream".into(), None, "sdk"),
        (Method::POST, format!("{flag}/enable"), None, "editor"),
        (
            Method::POST,
            rollouts.into(),
            Some(json!({ "flag": "auth-x", "environment": "production", "to": "off" })),
            "editor",
        ),
        (Method::GET, rollouts.into(), None, "viewer"),
        (Method::GET, format!("{rollouts}/{rollout}"), None, "viewer"),
        (
            Method::POST,
            format!("{rollouts}/{rollout}/pause"),
            None,
            "editor",
        ),
        (
            Method::POST,
            format!("{rollouts}/{rollout}/resume"),
            None,
            "editor",
        ),
        (
            Method::POST,
            format!("{rollouts}/{rollout}/promote"),
            None,
            "editor",
        ),
        (
            Method::POST,
            format!("{rollouts}/{rollout}/abort"),
            None,
            "editor",
        ),
        (
            Method::POST,
            webhooks.into(),
            Some(json!({ "url": "http://127.0.0.1:9/hook" })),
            "admin",
        ),
        (Method::GET, webhooks.into(), None, "admin"),
        (
            Method::GET,
            format!("{webhooks}/{webhook}/deliveries"),
            None,
            "admin",
        ),
        (
            Method::DELETE,
            format!("{webhooks}/{webhook}"),
            None,
            "admin",
        ),
        (Method::GET, surfaces.into(), None, "viewer"),
        (
            Method::PUT,
            format!("{surfaces}/auth-s"),
            Some(json!({ "description": "d" })),
            "editor",
        ),
        (Method::GET, format!("{surfaces}/auth-s"), None, "viewer"),
        (
            Method::GET,
            format!("{surfaces}/auth-s/items"),
            None,
            "viewer",
        ),
        (
            Method::GET,
            format!("{surfaces}/auth-s/decisions"),
            None,
            "viewer",
        ),
        (
            Method::GET,
            format!("{surfaces}/auth-s/model"),
            None,
            "viewer",
        ),
        (
            Method::POST,
            format!("{surfaces}/auth-s/items"),
            Some(json!({ "items": [] })),
            "editor",
        ),
        (
            Method::PUT,
            format!("{surfaces}/auth-s/items/a"),
            Some(json!({ "features": {} })),
            "editor",
        ),
        (
            Method::POST,
            "/api/v1/placements/auth-s/rank".into(),
            Some(json!({ "context": {} })),
            "placement",
        ),
        (
            Method::POST,
            "/api/v1/placements/events/auth-event/reward".into(),
            Some(json!({ "value": 1 })),
            "placement",
        ),
        (
            Method::POST,
            "/api/v1/placements/events/auth-event/activate".into(),
            None,
            "placement",
        ),
        (
            Method::DELETE,
            "/api/v1/projects/default/flags/auth-x".into(),
            None,
            "editor",
        ),
    ]
}

#[tokio::test]
async fn every_management_route_checks_the_role() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "auth-x" })).await;
        let (_, schedule) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/environments/production/flags/auth-x/schedules",
                Some(json!({ "at": "2030-01-01T00:00:00Z", "action": "disable" })),
            )
            .await;
        let (_, target) = app
            .admin(
                Method::POST,
                "/api/v1/tokens",
                Some(json!({ "name": "target", "role": "viewer" })),
            )
            .await;
        app.create_flag(json!({ "key": "auth-r", "defaultVariant": "off" }))
            .await;
        app.enable("production", "auth-r").await;
        let (_, rollout) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/rollouts",
                Some(json!({ "flag": "auth-r", "environment": "production", "to": "on" })),
            )
            .await;
        let (_, webhook) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/webhooks",
                Some(json!({ "url": "http://127.0.0.1:9/first" })),
            )
            .await;
        app.admin(
            Method::PUT,
            "/api/v1/projects/default/surfaces/auth-s",
            Some(json!({})),
        )
        .await;
        app.admin(
            Method::PUT,
            "/api/v1/projects/default/surfaces/auth-s/items/a",
            Some(json!({ "features": {} })),
        )
        .await;
        let placement = app.token("placement", None).await;
        let (_, ranked) = app
            .request(
                Method::POST,
                "/api/v1/placements/auth-s/rank",
                Some(&placement),
                Some(json!({ "context": {}, "eventId": "auth-event" })),
            )
            .await;
        assert_eq!(ranked["eventId"], "auth-event", "{ranked}");
        // One decision learned from, so the surface has a saved model to read.
        let (_, learned) = app
            .request(
                Method::POST,
                "/api/v1/placements/auth-s/rank",
                Some(&placement),
                Some(json!({ "context": {} })),
            )
            .await;
        let event = learned["eventId"].as_str().unwrap();
        app.request(
            Method::POST,
            &format!("/api/v1/placements/events/{event}/reward"),
            Some(&placement),
            Some(json!({ "value": 1 })),
        )
        .await;
        let mut learning = capstan_server::placements::driver::PlacementDriver::new(60_000, 0);
        assert_eq!(
            learning.tick(&app.state().placements).await.unwrap().saved,
            1
        );
        let tokens = [
            ("admin", ADMIN_TOKEN.to_owned()),
            ("placement", placement),
            ("editor", app.token("editor", None).await),
            ("viewer", app.token("viewer", None).await),
            ("sdk", app.token("sdk", Some("production")).await),
            ("client", app.token("client", Some("production")).await),
        ];
        let token = |role: &str| {
            tokens
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, t)| t.clone())
                .unwrap()
        };
        // The role just below the one needed: it must be refused.
        let below = |role: &str| match role {
            "admin" => "editor",
            "editor" => "viewer",
            "sdk" => "client",
            "client" => "viewer",
            _ => "sdk",
        };
        let table = routes(
            schedule["id"].as_i64().unwrap(),
            target["id"].as_str().unwrap(),
            rollout["id"].as_i64().expect("a rollout"),
            webhook["id"].as_str().expect("a webhook"),
        );
        // The table covers every management operation the API documents, so a new route
        // cannot escape this test.
        let (_, document) = app
            .request(Method::GET, "/api/v1/openapi.json", None, None)
            .await;
        for (path, item) in document["paths"].as_object().unwrap() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let pattern: Vec<&str> = path.split('/').collect();
            for method in item.as_object().unwrap().keys() {
                let covered = table.iter().any(|(m, p, _, _)| {
                    let concrete: Vec<&str> = p.split('/').collect();
                    m.as_str().eq_ignore_ascii_case(method)
                        && concrete.len() == pattern.len()
                        && pattern
                            .iter()
                            .zip(&concrete)
                            .all(|(a, b)| a.starts_with('{') || a == b)
                });
                assert!(covered, "{method} {path} is not in the role table");
            }
        }
        for (method, path, body, role) in table {
            let (status, _) = app.request(method.clone(), &path, None, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a token"
            );
            let (status, _) = app
                .request(
                    method.clone(),
                    &path,
                    Some("cps_not_a_real_token"),
                    body.clone(),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with an unknown token"
            );
            let (status, refused) = app
                .request(
                    method.clone(),
                    &path,
                    Some(&token(below(role))),
                    body.clone(),
                )
                .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} as {}: {refused}",
                below(role)
            );
            assert_eq!(refused["code"], "forbidden");
            // A stream never ends by itself: look at its status only.
            let response = app
                .raw(method.clone(), &path, Some(&token(role)), body, &[])
                .await;
            let status = response.status();
            let answer = if path.ends_with("/stream") {
                String::new()
            } else {
                response.text().await.unwrap()
            };
            assert!(
                status.is_success(),
                "{method} {path} as {role}: {status} {answer}"
            );
        }
    });
}

#[tokio::test]
async fn evaluation_keys_cannot_manage_and_management_keys_cannot_evaluate() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "f" })).await;
        let client = app.token("client", Some("production")).await;
        let (status, _) = app
            .request(
                Method::GET,
                "/api/v1/projects/default/flags",
                Some(&client),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app.ofrep("f", ADMIN_TOKEN, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app
            .request(
                Method::POST,
                "/ofrep/v1/evaluate/flags/f",
                None,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Both header styles OFREP allows are accepted.
        let sdk = app.token("sdk", Some("production")).await;
        let response = app
            .raw(
                Method::POST,
                "/ofrep/v1/evaluate/flags/f",
                None,
                Some(json!({})),
                &[("x-api-key", &sdk)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    });
}
