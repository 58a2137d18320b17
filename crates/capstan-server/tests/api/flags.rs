use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::each_backend;

const PROD: &str = "/api/v1/projects/default/environments/production/flags";

#[tokio::test]
async fn a_flag_is_created_everywhere_disabled_then_flipped_and_reverted() {
    each_backend!(|app| {
        let created = app
            .create_flag(json!({ "key": "new-checkout", "description": "The new checkout" }))
            .await;
        assert_eq!(created["type"], "boolean");
        for env in ["development", "staging", "production"] {
            assert_eq!(created["environments"][env]["state"], "DISABLED");
            assert_eq!(
                created["environments"][env]["variants"],
                json!({ "on": true, "off": false })
            );
            assert_eq!(created["environments"][env]["version"], 1);
        }
        let sdk = app.token("sdk", Some("production")).await;
        let (_, off) = app.ofrep("new-checkout", &sdk, json!({})).await;
        assert_eq!(off["reason"], "DISABLED");
        assert_eq!(off["value"], false);

        let enabled = app.enable("production", "new-checkout").await;
        assert_eq!(enabled["state"], "ENABLED");
        assert_eq!(enabled["version"], 2);
        let (status, on) = app.ofrep("new-checkout", &sdk, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(on["value"], true);
        assert_eq!(on["reason"], "STATIC");
        assert_eq!(on["variant"], "on");

        // Other environments are untouched.
        let (_, staging) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/staging/flags/new-checkout",
                None,
            )
            .await;
        assert_eq!(staging["state"], "DISABLED");

        let (status, history) = app
            .admin(Method::GET, &format!("{PROD}/new-checkout/history"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let versions = history["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0]["version"], 2);
        assert_eq!(versions[0]["action"], "flag.enable");
        assert_eq!(versions[0]["actor"], "bootstrap-admin");
        assert_eq!(versions[1]["action"], "flag.create");

        let (status, reverted) = app
            .admin(
                Method::POST,
                &format!("{PROD}/new-checkout/revert"),
                Some(json!({ "version": 1 })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reverted}");
        assert_eq!(reverted["state"], "DISABLED");
        assert_eq!(reverted["version"], 3);
        let (_, after) = app.ofrep("new-checkout", &sdk, json!({})).await;
        assert_eq!(after["reason"], "DISABLED");

        // The audit trail has who, what, before and after.
        let (_, audit) = app
            .admin(
                Method::GET,
                "/api/v1/audit?key=new-checkout&environment=production",
                None,
            )
            .await;
        let entries = audit["entries"].as_array().unwrap();
        assert_eq!(entries[0]["action"], "flag.revert");
        assert_eq!(entries[0]["before"]["state"], "ENABLED");
        assert_eq!(entries[0]["after"]["state"], "DISABLED");
        assert_eq!(entries[0]["actor"], "bootstrap-admin");
    });
}

#[tokio::test]
async fn an_invalid_definition_is_refused_with_its_path_and_not_stored() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "checkout" })).await;
        let targeting = json!({ "if": [
            { "==": [{ "var": "plan" }, "free"] },
            { "startswith": [{ "var": "email" }, "a"] },
            "off"
        ]});
        let (status, body) = app
            .patch_config("production", "checkout", json!({ "targeting": targeting }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "invalid_flag_definition");
        assert_eq!(
            body["message"],
            "flags.checkout.targeting.if[1]: unknown operator \"startswith\""
        );
        let (_, flag) = app
            .admin(Method::GET, &format!("{PROD}/checkout"), None)
            .await;
        assert_eq!(flag["version"], 1);
        assert!(flag.get("targeting").is_none());

        // A default variant that is not a variant, and a variant of the wrong type.
        let (status, body) = app
            .patch_config(
                "production",
                "checkout",
                json!({ "defaultVariant": "maybe" }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("flags.checkout.defaultVariant"),
            "{body}"
        );
        let (status, body) = app
            .patch_config(
                "production",
                "checkout",
                json!({ "variants": { "on": "yes", "off": false } }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("flags.checkout.variants.on"),
            "{body}"
        );
    });
}

#[tokio::test]
async fn the_loser_of_a_concurrent_edit_gets_409_with_the_current_version() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "contested" })).await;
        let path = format!("{PROD}/contested");
        let first = app
            .raw(
                Method::PATCH,
                &path,
                Some(crate::helpers::ADMIN_TOKEN),
                Some(json!({ "defaultVariant": "off" })),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()["etag"], "\"2\"");
        let second = app
            .raw(
                Method::PATCH,
                &path,
                Some(crate::helpers::ADMIN_TOKEN),
                Some(json!({ "state": "ENABLED" })),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!(second.status(), StatusCode::CONFLICT);
        let body: Value = second.json().await.unwrap();
        assert_eq!(body["code"], "version_conflict");
        assert_eq!(body["currentVersion"], 2);
        let (_, flag) = app.admin(Method::GET, &path, None).await;
        assert_eq!(flag["defaultVariant"], "off");
        assert_eq!(flag["state"], "DISABLED");
    });
}

#[tokio::test]
async fn concurrent_edits_through_the_api_lose_nothing() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "busy" })).await;
        let path = format!("{PROD}/busy");
        // Every writer reads the version, then writes with If-Match: each write either
        // lands as exactly one new version or is refused with 409.
        let mut tasks = Vec::new();
        for writer in 0..6 {
            let http = app.http.clone();
            let url = format!("{}{path}", app.address);
            tasks.push(tokio::spawn(async move {
                let mut landed = 0;
                for round in 0..4 {
                    let current: Value = http
                        .get(&url)
                        .bearer_auth(crate::helpers::ADMIN_TOKEN)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let version = current["version"].as_i64().unwrap();
                    let metadata = json!({ "metadata": { "writer": writer, "round": round } });
                    let response = http
                        .patch(&url)
                        .bearer_auth(crate::helpers::ADMIN_TOKEN)
                        .header("if-match", version.to_string())
                        .json(&metadata)
                        .send()
                        .await
                        .unwrap();
                    match response.status() {
                        StatusCode::OK => landed += 1,
                        StatusCode::CONFLICT => {}
                        other => panic!("unexpected status {other}"),
                    }
                }
                landed
            }));
        }
        let mut landed = 0;
        for task in tasks {
            landed += task.await.unwrap();
        }
        let (_, history) = app
            .admin(Method::GET, &format!("{path}/history"), None)
            .await;
        assert!(landed >= 1);
        assert_eq!(history["versions"].as_array().unwrap().len(), 1 + landed);
    });
}

#[tokio::test]
async fn bad_input_names_the_field() {
    each_backend!(|app| {
        let flags = "/api/v1/projects/default/flags";
        let (status, body) = app
            .admin(Method::POST, flags, Some(json!({ "key": "bad key" })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "invalid_field");
        assert_eq!(body["field"], "key");

        let (status, body) = app
            .admin(
                Method::POST,
                flags,
                Some(json!({ "key": "k", "type": "colour" })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "type");

        let (status, body) = app
            .admin(
                Method::POST,
                flags,
                Some(json!({ "key": "k", "colour": "red" })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["message"].as_str().unwrap().contains("colour"),
            "{body}"
        );

        let (status, body) = app
            .admin(Method::POST, flags, Some(json!({ "key": 7 })))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "key");

        let response = app
            .http
            .post(format!("{}{flags}", app.address))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body("{\"key\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "malformed_body");

        app.create_flag(json!({ "key": "k" })).await;
        let (status, body) = app
            .admin(Method::POST, flags, Some(json!({ "key": "k" })))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "already_exists");

        let (status, body) = app
            .patch_config("production", "k", json!({ "colour": "red" }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "colour");

        let (status, body) = app
            .patch_config("production", "missing", json!({ "state": "ENABLED" }))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not_found");

        let (status, body) = app
            .admin(
                Method::POST,
                &format!("{PROD}/k/revert"),
                Some(json!({ "version": 99 })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["field"], "version");
    });
}

#[tokio::test]
async fn segments_are_shared_rules_referenced_with_ref() {
    each_backend!(|app| {
        let (status, segment) = app
            .admin(
                Method::PUT,
                "/api/v1/projects/default/environments/production/segments/staff",
                Some(json!({ "description": "Our people", "rule": { "ends_with": [{ "var": "email" }, "@example.com"] } })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{segment}");
        app.create_flag(json!({ "key": "staff-only" })).await;
        let (status, body) = app
            .patch_config(
                "production",
                "staff-only",
                json!({ "state": "ENABLED", "targeting": { "if": [{ "$ref": "staff" }, "on", "off"] } }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let sdk = app.token("sdk", Some("production")).await;
        let (_, staff) = app
            .ofrep(
                "staff-only",
                &sdk,
                json!({ "targetingKey": "u1", "email": "ann@example.com" }),
            )
            .await;
        assert_eq!(staff["value"], true);
        assert_eq!(staff["reason"], "TARGETING_MATCH");
        let (_, other) = app
            .ofrep(
                "staff-only",
                &sdk,
                json!({ "targetingKey": "u2", "email": "bob@else.org" }),
            )
            .await;
        assert_eq!(other["value"], false);

        // A segment in use cannot be deleted out from under a flag.
        let (status, body) = app
            .admin(
                Method::DELETE,
                "/api/v1/projects/default/environments/production/segments/staff",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // A flag cannot reference a segment that does not exist.
        let (status, _) = app
            .patch_config(
                "production",
                "staff-only",
                json!({ "targeting": { "if": [{ "$ref": "nobody" }, "on", "off"] } }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    });
}

#[tokio::test]
async fn prerequisites_gate_a_flag_on_another() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "new-api" })).await;
        app.create_flag(json!({ "key": "new-ui" })).await;
        let (status, body) = app
            .patch_config(
                "production",
                "new-ui",
                json!({ "state": "ENABLED", "defaultVariant": "on", "prerequisites": [{ "flag": "new-api", "variants": ["on"] }] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let sdk = app.token("sdk", Some("production")).await;
        let (_, gated) = app.ofrep("new-ui", &sdk, json!({})).await;
        assert_eq!(gated["reason"], "PREREQUISITE_FAILED");
        app.patch_config(
            "production",
            "new-api",
            json!({ "state": "ENABLED", "defaultVariant": "on" }),
        )
        .await;
        let (_, open) = app.ofrep("new-ui", &sdk, json!({})).await;
        assert_eq!(open["value"], true);
        assert_eq!(open["reason"], "STATIC");

        // The prerequisite cannot be deleted while another flag depends on it.
        let (status, body) = app
            .admin(
                Method::DELETE,
                "/api/v1/projects/default/flags/new-api",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("prerequisites"),
            "{body}"
        );
    });
}

#[tokio::test]
async fn deleting_a_flag_removes_it_from_every_environment() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "temporary", "type": "string", "variants": { "a": "A", "b": "B" }, "defaultVariant": "a" }))
            .await;
        let (status, _) = app
            .admin(
                Method::DELETE,
                "/api/v1/projects/default/flags/temporary",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        for env in ["development", "staging", "production"] {
            let (status, _) = app
                .admin(
                    Method::GET,
                    &format!("/api/v1/projects/default/environments/{env}/flags/temporary"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let (_, list) = app
            .admin(Method::GET, "/api/v1/projects/default/flags", None)
            .await;
        assert_eq!(list["flags"], json!([]));
    });
}

#[tokio::test]
async fn a_new_environment_starts_with_every_flag_disabled() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "carried" })).await;
        let (status, body) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/environments",
                Some(json!({ "key": "qa", "name": "QA" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, flag) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/qa/flags/carried",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(flag["state"], "DISABLED");
        let (status, _) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/environments",
                Some(json!({ "key": "qa" })),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
    });
}

#[tokio::test]
async fn the_snapshot_installed_after_a_write_equals_what_the_store_holds() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "b-flag" })).await;
        app.create_flag(
            json!({ "key": "A-flag", "type": "string", "variants": { "x": "x", "y": "y" } }),
        )
        .await;
        app.enable("production", "b-flag").await;
        app.admin(
            Method::PUT,
            "/api/v1/projects/default/environments/production/segments/vip",
            Some(json!({ "rule": { "==": [{ "var": "tier" }, "gold"] } })),
        )
        .await;
        app.patch_config(
            "production",
            "A-flag",
            json!({ "targeting": { "if": [{ "$ref": "vip" }, "y", null] } }),
        )
        .await;
        app.admin(
            Method::DELETE,
            "/api/v1/projects/default/flags/b-flag",
            None,
        )
        .await;
        let project = capstan_model::ProjectKey::parse("default").unwrap();
        for env in ["production", "staging"] {
            let environment = capstan_model::EnvironmentKey::parse(env).unwrap();
            let installed = app
                .state()
                .flags
                .environments
                .cached("default", env)
                .expect("a snapshot");
            let stored = app
                .state()
                .core
                .store
                .load_environment(&project, &environment)
                .await
                .unwrap();
            assert_eq!(installed.state, stored, "{env}");
        }
    });
}
