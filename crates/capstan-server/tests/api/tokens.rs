use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::each_backend;

#[tokio::test]
async fn tokens_are_shown_once_rotate_with_grace_and_revoke() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "f" })).await;
        let (status, created) = app
            .admin(
                Method::POST,
                "/api/v1/tokens",
                Some(json!({ "name": "checkout-service", "role": "sdk", "environment": "production" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let secret = created["token"].as_str().unwrap().to_owned();
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["hint"], &secret[..8]);

        // Listing never shows a secret, and the store holds only a hash.
        let (_, list) = app.admin(Method::GET, "/api/v1/tokens", None).await;
        let text = list.to_string();
        assert!(!text.contains(&secret));
        assert!(
            list["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t.get("token").is_none())
        );
        let stored = app.state().core.store.token_by_id(&id).await.unwrap();
        assert_ne!(stored.hash, secret);
        assert_eq!(stored.hash.len(), 64);

        let (status, _) = app.ofrep("f", &secret, json!({})).await;
        assert_eq!(status, StatusCode::OK);

        // Rotation: both work during the grace period, only the new one after it.
        let (status, rotated) = app
            .admin(
                Method::POST,
                &format!("/api/v1/tokens/{id}/rotate"),
                Some(json!({ "gracePeriodSeconds": 60 })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{rotated}");
        let new_secret = rotated["token"].as_str().unwrap().to_owned();
        assert_ne!(new_secret, secret);
        assert_eq!(app.ofrep("f", &secret, json!({})).await.0, StatusCode::OK);
        assert_eq!(
            app.ofrep("f", &new_secret, json!({})).await.0,
            StatusCode::OK
        );
        app.clock.advance(61_000);
        assert_eq!(
            app.ofrep("f", &secret, json!({})).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.ofrep("f", &new_secret, json!({})).await.0,
            StatusCode::OK
        );

        // Revocation takes effect at once.
        let new_id = rotated["id"].as_str().unwrap();
        let (status, revoked) = app
            .admin(Method::DELETE, &format!("/api/v1/tokens/{new_id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(revoked["status"], "revoked");
        assert_eq!(
            app.ofrep("f", &new_secret, json!({})).await.0,
            StatusCode::UNAUTHORIZED
        );

        // Every token change is audited.
        let (_, audit) = app
            .admin(Method::GET, "/api/v1/audit?kind=token", None)
            .await;
        let actions: Vec<&str> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["token.revoke", "token.rotate", "token.create"]);
    });
}

#[tokio::test]
async fn tokens_expire() {
    each_backend!(|app| {
        let (_, created) = app
            .admin(
                Method::POST,
                "/api/v1/tokens",
                Some(json!({ "name": "short", "role": "viewer", "expiresInSeconds": 30 })),
            )
            .await;
        let secret = created["token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.request(Method::GET, "/api/v1/projects", Some(&secret), None)
                .await
                .0,
            StatusCode::OK
        );
        app.clock.advance(30_000);
        assert_eq!(
            app.request(Method::GET, "/api/v1/projects", Some(&secret), None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    });
}

#[tokio::test]
async fn bad_token_requests_name_the_field() {
    each_backend!(|app| {
        let cases = [
            (json!({ "name": "x", "role": "root" }), "role"),
            (json!({ "name": "x", "role": "sdk" }), "environment"),
            (
                json!({ "name": "x", "role": "sdk", "environment": "nowhere" }),
                "environment",
            ),
            (
                json!({ "name": "x", "role": "viewer", "environment": "production" }),
                "environment",
            ),
            (json!({ "name": "", "role": "viewer" }), "name"),
            (
                json!({ "name": "x", "role": "viewer", "expiresAt": "tomorrow" }),
                "expiresAt",
            ),
        ];
        for (body, field) in cases {
            let (status, answer) = app
                .admin(Method::POST, "/api/v1/tokens", Some(body.clone()))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(answer["field"], field, "{body}: {answer}");
        }
    });
}
