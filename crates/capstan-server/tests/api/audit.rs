//! The audit trail: what it keeps of each change, and what it must not show.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::each_backend;

#[tokio::test]
async fn the_audit_trail_does_not_show_a_webhooks_credentials() {
    each_backend!(|app| {
        let (status, _) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/webhooks",
                Some(json!({ "url": "https://ops:pass@hooks.example.com:8443/services/T0/B0/s3cr3tPath?key=k3y" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        // A viewer may read the audit trail, though not the webhooks themselves.
        let viewer = app.token("viewer", None).await;
        let (status, _) = app
            .request(
                Method::GET,
                "/api/v1/projects/default/webhooks",
                Some(&viewer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, audit) = app
            .request(
                Method::GET,
                "/api/v1/audit?kind=webhook",
                Some(&viewer),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let entry = &audit["entries"][0];
        assert_eq!(entry["action"], "webhook.create");
        assert_eq!(entry["after"]["url"], "https://hooks.example.com:8443/…");
        let text = audit.to_string();
        for secret in ["s3cr3tPath", "k3y", "pass"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    });
}
