//! Bootstrap, projects and environments.

use capstan_model::Role;
use capstan_store::testing::TestBackend;
use capstan_store::*;
use serde_json::json;

use crate::each_backend;
use crate::helpers::{audit, bootstrapped, create_flag, env, flag, project, token};

#[tokio::test]
async fn bootstrap_creates_the_project_once() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        assert!(store.is_empty().await.unwrap());
        bootstrapped(store).await;
        assert!(!store.is_empty().await.unwrap());
        let again = store
            .bootstrap(Bootstrap {
                project: project(),
                project_name: "Default".to_owned(),
                environments: vec![env("other")],
                admin_token: token("admin2", Role::Admin, "hash-admin2"),
                at: 2,
            })
            .await
            .unwrap();
        assert_eq!(again, BootstrapOutcome::AlreadyBootstrapped);
        let environments: Vec<String> = store
            .list_environments(&project())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key.to_string())
            .collect();
        let mut sorted = environments.clone();
        sorted.sort();
        assert_eq!(sorted, ["development", "production", "staging"]);
        assert!(store.token_by_hash("hash-admin2").await.unwrap().is_none());
        assert_eq!(
            store
                .token_by_hash("hash-admin")
                .await
                .unwrap()
                .unwrap()
                .role,
            Role::Admin
        );
    }
    each_backend!(check);
}
#[tokio::test]
async fn a_new_environment_gets_every_flag_disabled() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        // Flags live in the oldest environment the new one copies from.
        let mut change = create_flag("copied", 0);
        change.environments = vec![(env("development"), 0)];
        change.writes[1] = ConfigWrite {
            environment: env("development"),
            flag: flag("copied"),
            expected_version: None,
            config: Some(json!({
                "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
                "targeting": {"if": [true, "off"]}
            })),
        }
        .into();
        store.apply(change).await.unwrap();
        let created = store
            .create_environment(
                NewEnvironment {
                    project: project(),
                    key: env("qa"),
                    name: "QA".to_owned(),
                    created_at: 20,
                },
                audit("environment.create", "qa"),
            )
            .await
            .unwrap();
        assert_eq!(created.name, "QA");
        let state = store
            .load_environment(&project(), &env("qa"))
            .await
            .unwrap();
        assert_eq!(state.configs.len(), 1);
        assert_eq!(
            state.configs[0].config,
            json!({"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"})
        );
        assert!(matches!(
            store
                .create_environment(
                    NewEnvironment {
                        project: project(),
                        key: env("qa"),
                        name: "QA".to_owned(),
                        created_at: 21
                    },
                    audit("environment.create", "qa"),
                )
                .await,
            Err(StoreError::AlreadyExists { .. })
        ));
    }
    each_backend!(check);
}
