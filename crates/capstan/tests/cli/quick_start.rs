use serde_json::{Value, json};

use crate::process::{ServerProcess, cli, ok};

async fn evaluate(server: &str, key: &str, token: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{server}/ofrep/v1/evaluate/flags/{key}"))
        .bearer_auth(token)
        .json(&json!({ "context": { "targetingKey": "user-1" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The README's quick start, step by step, through the real binary.
#[tokio::test]
async fn the_quick_start_works() {
    for backend in capstan_store::testing::backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let server = ServerProcess::start(&database.url);
        let url = server.url.clone();

        ok(
            &url,
            &[
                "flags",
                "create",
                "new-checkout",
                "--description",
                "The new checkout",
            ],
        );
        let sdk = ok(
            &url,
            &[
                "tokens",
                "create",
                "--role",
                "sdk",
                "--env",
                "production",
                "--name",
                "checkout-service",
            ],
        );
        let sdk = sdk.trim();
        assert!(
            sdk.starts_with("cps_") && !sdk.contains(char::is_whitespace),
            "{sdk:?}"
        );

        let off = evaluate(&url, "new-checkout", sdk).await;
        assert_eq!(
            (off["value"].clone(), off["reason"].clone()),
            (json!(false), json!("DISABLED"))
        );
        ok(
            &url,
            &["flags", "enable", "new-checkout", "--env", "production"],
        );
        let on = evaluate(&url, "new-checkout", sdk).await;
        assert_eq!(
            (on["value"].clone(), on["reason"].clone()),
            (json!(true), json!("STATIC"))
        );

        let history: Value = serde_json::from_str(&ok(
            &url,
            &[
                "flags",
                "history",
                "new-checkout",
                "--env",
                "production",
                "--json",
            ],
        ))
        .unwrap();
        assert_eq!(history["versions"].as_array().unwrap().len(), 2);
        let table = ok(
            &url,
            &["flags", "history", "new-checkout", "--env", "production"],
        );
        assert!(
            table.contains("flag.enable") && table.contains("bootstrap-admin"),
            "{table}"
        );

        ok(
            &url,
            &[
                "flags",
                "revert",
                "new-checkout",
                "--env",
                "production",
                "--to",
                "1",
            ],
        );
        assert_eq!(
            evaluate(&url, "new-checkout", sdk).await["reason"],
            "DISABLED"
        );

        // Targeting from the CLI, then export and import the environment.
        ok(
            &url,
            &["flags", "enable", "new-checkout", "--env", "staging"],
        );
        ok(
            &url,
            &[
                "flags",
                "update",
                "new-checkout",
                "--env",
                "staging",
                "--targeting",
                r#"{"if":[{"ends_with":[{"var":"email"},"@example.com"]},"on","off"]}"#,
            ],
        );
        let exported = ok(&url, &["flags", "export", "--env", "staging"]);
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("staging.flagd.json");
        std::fs::write(&file, &exported).unwrap();
        let imported = ok(
            &url,
            &[
                "flags",
                "import",
                file.to_str().unwrap(),
                "--env",
                "development",
                "--replace",
            ],
        );
        assert!(imported.contains("1 updated"), "{imported}");
        let development = ok(&url, &["flags", "export", "--env", "development"]);
        assert_eq!(
            serde_json::from_str::<Value>(&development).unwrap(),
            serde_json::from_str::<Value>(&exported).unwrap()
        );

        let list = ok(&url, &["flags", "list", "--env", "staging"]);
        assert!(
            list.starts_with("KEY") && list.contains("new-checkout") && list.contains("ENABLED"),
            "{list}"
        );
        let environments = ok(&url, &["env", "list", "--json"]);
        assert_eq!(
            serde_json::from_str::<Value>(&environments).unwrap()["environments"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        ok(&url, &["env", "create", "qa"]);

        // Token management end to end.
        let created: Value = serde_json::from_str(&ok(
            &url,
            &[
                "tokens",
                "create",
                "--role",
                "viewer",
                "--name",
                "dashboards",
                "--json",
            ],
        ))
        .unwrap();
        let id = created["id"].as_str().unwrap();
        let rotated = ok(&url, &["tokens", "rotate", id, "--grace", "0"]);
        assert!(rotated.trim().starts_with("cps_"));
        let listed = ok(&url, &["tokens", "list"]);
        assert!(
            listed.contains("dashboards") && listed.contains("expired"),
            "{listed}"
        );
        let new_id = ok(&url, &["tokens", "list", "--json"]);
        let tokens: Value = serde_json::from_str(&new_id).unwrap();
        let active = tokens["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "dashboards" && t["status"] == "active")
            .unwrap();
        ok(&url, &["tokens", "revoke", active["id"].as_str().unwrap()]);

        // Errors are one line on stderr with a non-zero exit.
        let failed = cli(
            &url,
            &["flags", "enable", "missing-flag", "--env", "production"],
        );
        assert!(!failed.status.success());
        let stderr = String::from_utf8(failed.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: flag \"missing-flag\" not found"),
            "{stderr}"
        );
        let unauthenticated = std::process::Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(["flags", "list"])
            .env("CAPSTAN_SERVER", &url)
            .env_remove("CAPSTAN_TOKEN")
            .output()
            .unwrap();
        assert!(!unauthenticated.status.success());
        assert!(String::from_utf8_lossy(&unauthenticated.stderr).contains("CAPSTAN_TOKEN"));
        // The remaining flag commands.
        let one: Value =
            serde_json::from_str(&ok(&url, &["flags", "get", "new-checkout", "--json"])).unwrap();
        assert_eq!(one["environments"]["staging"]["state"], "ENABLED");
        let shown = ok(&url, &["flags", "get", "new-checkout", "--env", "staging"]);
        assert!(
            shown.contains("state: ENABLED") && shown.contains("targeting:"),
            "{shown}"
        );
        ok(
            &url,
            &[
                "flags",
                "update",
                "new-checkout",
                "--description",
                "Checkout v2",
                "--client-visible",
                "true",
            ],
        );
        let one: Value =
            serde_json::from_str(&ok(&url, &["flags", "get", "new-checkout", "--json"])).unwrap();
        assert_eq!(
            (one["description"].clone(), one["clientVisible"].clone()),
            (json!("Checkout v2"), json!(true))
        );
        let stale = cli(
            &url,
            &[
                "flags",
                "update",
                "new-checkout",
                "--env",
                "staging",
                "--default-variant",
                "off",
                "--if-version",
                "1",
            ],
        );
        assert!(!stale.status.success());
        assert!(String::from_utf8_lossy(&stale.stderr).contains("version_conflict"));
        let scheduled = ok(
            &url,
            &[
                "flags",
                "schedule",
                "new-checkout",
                "--env",
                "staging",
                "--at",
                "2030-01-01T00:00:00Z",
                "--action",
                "disable",
            ],
        );
        assert!(scheduled.starts_with("scheduled disable"), "{scheduled}");
        let audit = ok(&url, &["audit", "--key", "new-checkout", "--limit", "5"]);
        assert!(
            audit.starts_with("ID") && audit.contains("schedule.create"),
            "{audit}"
        );
        ok(&url, &["flags", "delete", "new-checkout"]);
        let gone = cli(&url, &["flags", "get", "new-checkout"]);
        assert!(!gone.status.success());
        drop(server);
    }
}
