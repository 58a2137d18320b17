use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::each_backend;

const FLAGD: &str = "/api/v1/projects/default/environments/staging/flagd";

fn file() -> Value {
    json!({
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {
            "banner": {
                "state": "ENABLED",
                "variants": { "show": true, "hide": false },
                "defaultVariant": "hide",
                "targeting": { "if": [{ "$ref": "beta" }, "show", null] },
                "metadata": { "owner": "web" }
            },
            "greeting": {
                "state": "ENABLED",
                "variants": { "formal": "Good day", "casual": "Hi" },
                "defaultVariant": "casual"
            }
        },
        "$evaluators": { "beta": { "starts_with": [{ "var": "email" }, "beta-"] } }
    })
}

#[tokio::test]
async fn import_then_export_is_the_same_file() {
    each_backend!(|app| {
        let (status, summary) = app.admin(Method::POST, FLAGD, Some(file())).await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        assert_eq!(summary["created"], json!(["banner", "greeting"]));
        let (_, exported) = app.admin(Method::GET, FLAGD, None).await;
        assert_eq!(exported, file());
        // Imported again, nothing changes.
        let (_, again) = app.admin(Method::POST, FLAGD, Some(exported.clone())).await;
        assert_eq!(again["changed"], false);
        assert_eq!(app.admin(Method::GET, FLAGD, None).await.1, exported);
        // New flags exist in the other environments, disabled; types were inferred.
        let (_, greeting) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/production/flags/greeting",
                None,
            )
            .await;
        assert_eq!(greeting["state"], "DISABLED");
        assert_eq!(greeting["type"], "string");
        // And they evaluate.
        let sdk = app.token("sdk", Some("staging")).await;
        let (_, banner) = app
            .ofrep(
                "banner",
                &sdk,
                json!({ "targetingKey": "u", "email": "beta-ann@x.org" }),
            )
            .await;
        assert_eq!(banner["value"], true);
        assert_eq!(banner["metadata"]["owner"], "web");
    });
}

#[tokio::test]
async fn import_is_one_audited_change_that_leaves_other_flags_alone() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "untouched" })).await;
        let (_, summary) = app.admin(Method::POST, FLAGD, Some(file())).await;
        let (_, audit) = app
            .admin(
                Method::GET,
                "/api/v1/audit?kind=environment&environment=staging",
                None,
            )
            .await;
        let entries = audit["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["action"], "flagd.import");
        assert_eq!(entries[0]["id"], summary["auditId"]);
        let (_, exported) = app.admin(Method::GET, FLAGD, None).await;
        assert!(exported["flags"].get("untouched").is_some());

        // With replace, the environment becomes exactly the file.
        let mut smaller = file();
        smaller["flags"].as_object_mut().unwrap().remove("greeting");
        let (status, summary) = app
            .admin(
                Method::POST,
                &format!("{FLAGD}?replace=true"),
                Some(smaller.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{summary}");
        assert_eq!(summary["removed"], json!(["greeting", "untouched"]));
        let (_, exported) = app.admin(Method::GET, FLAGD, None).await;
        assert_eq!(exported, smaller);
        // Replace touches only this environment.
        let (status, _) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/production/flags/untouched",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    });
}

#[tokio::test]
async fn an_invalid_file_changes_nothing() {
    each_backend!(|app| {
        let mut bad = file();
        bad["flags"]["greeting"]["targeting"] =
            json!({ "if": [{ "sem_ver": [{ "var": "v" }, "~~", "1.0.0"] }, "formal", null] });
        let (status, body) = app.admin(Method::POST, FLAGD, Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("flags.greeting.targeting"),
            "{body}"
        );
        let (_, exported) = app.admin(Method::GET, FLAGD, None).await;
        assert_eq!(exported["flags"], json!({}));

        let (status, body) = app
            .admin(
                Method::POST,
                FLAGD,
                Some(json!({ "flags": { "x": { "state": "ON", "variants": { "a": 1 } } } })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("flags.x.state"),
            "{body}"
        );
        let (status, body) = app
            .admin(Method::POST, FLAGD, Some(json!({ "flagz": {} })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "flagz");
        let (_, audit) = app
            .admin(Method::GET, "/api/v1/audit?kind=environment", None)
            .await;
        assert_eq!(audit["entries"], json!([]));
    });
}
