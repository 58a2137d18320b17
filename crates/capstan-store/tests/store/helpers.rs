//! Setup shared by the store tests.

use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey, Role, TokenName};
use capstan_store::*;
use serde_json::json;

/// Runs `check` once per backend, each time on a fresh database.
#[macro_export]
macro_rules! each_backend {
    ($check:ident) => {
        for backend in capstan_store::testing::backends() {
            let database = capstan_store::testing::TestDatabase::new(&backend).await;
            let store = capstan_store::SqlStore::open(&database.url)
                .await
                .expect("failed to open store");
            $check(&store, &backend).await;
        }
    };
}

pub(crate) fn project() -> ProjectKey {
    ProjectKey::parse("default").unwrap()
}

pub(crate) fn env(key: &str) -> EnvironmentKey {
    EnvironmentKey::parse(key).unwrap()
}

pub(crate) fn flag(key: &str) -> FlagKey {
    FlagKey::parse(key).unwrap()
}

pub(crate) fn token(id: &str, role: Role, hash: &str) -> TokenRecord {
    TokenRecord {
        id: id.to_owned(),
        name: TokenName::parse(format!("{id}-name")).unwrap(),
        role,
        project: None,
        environment: None,
        hash: hash.to_owned(),
        hint: "cps_abcd".to_owned(),
        created_at: 1,
        expires_at: None,
        revoked_at: None,
        created_by: "test".to_owned(),
    }
}

pub(crate) fn audit(action: &str, key: &str) -> AuditEntry {
    AuditEntry {
        at: 10,
        actor: "tester".to_owned(),
        action: action.to_owned(),
        project: Some(project()),
        environment: Some(env("production")),
        resource_kind: "flag".to_owned(),
        resource_key: key.to_owned(),
        before: None,
        after: Some(json!({"k": key})),
    }
}

pub(crate) async fn bootstrapped(store: &SqlStore) {
    let outcome = store
        .bootstrap(Bootstrap {
            project: project(),
            project_name: "Default".to_owned(),
            environments: vec![env("development"), env("staging"), env("production")],
            admin_token: token("admin", Role::Admin, "hash-admin"),
            at: 1,
        })
        .await
        .unwrap();
    assert_eq!(outcome, BootstrapOutcome::Created);
}

pub(crate) fn boolean_flag(key: &str) -> FlagRecord {
    FlagRecord {
        key: flag(key),
        flag_type: FlagType::Boolean,
        description: String::new(),
        client_visible: false,
        created_at: 5,
    }
}

pub(crate) fn config(state: &str) -> serde_json::Value {
    json!({"state": state, "variants": {"on": true, "off": false}, "defaultVariant": "off"})
}

/// A change to production, expecting the environment at `revision`, that writes nothing
/// yet: tests fill in the writes they need.
pub(crate) fn production_change(revision: i64, audit: AuditEntry, at: i64) -> ChangeSet {
    ChangeSet {
        project: project(),
        environments: vec![(env("production"), revision)],
        audit,
        at,
        writes: vec![],
        notifications: vec![],
    }
}

/// A change that creates `key` in production, expecting the environment at `revision`.
pub(crate) fn create_flag(key: &str, revision: i64) -> ChangeSet {
    ChangeSet {
        writes: vec![
            FlagWrite::Upsert(boolean_flag(key)).into(),
            ConfigWrite {
                environment: env("production"),
                flag: flag(key),
                expected_version: None,
                config: Some(config("DISABLED")),
            }
            .into(),
        ],
        ..production_change(revision, audit("flag.create", key), 10)
    }
}

/// A change that sets `key`'s configuration in production from `expected_version`.
pub(crate) fn change_config(
    key: &str,
    revision: i64,
    expected_version: i64,
    config: serde_json::Value,
) -> ChangeSet {
    ChangeSet {
        writes: vec![
            ConfigWrite {
                environment: env("production"),
                flag: flag(key),
                expected_version: Some(expected_version),
                config: Some(config),
            }
            .into(),
        ],
        ..production_change(revision, audit("flag.update", key), 10)
    }
}

/// A change that starts rollout `id` of `flag_key` in production, announcing it; with
/// `create_flag`, it creates the flag too.
pub(crate) fn start_rollout(flag_key: &str, revision: i64, id: i64, create: bool) -> ChangeSet {
    let mut change = if create {
        create_flag(flag_key, revision)
    } else {
        production_change(revision, audit("rollout.start", flag_key), 10)
    };
    change.audit = audit("rollout.start", flag_key);
    change.writes.push(
        RolloutWrite::Create {
            id,
            environment: env("production"),
            flag: flag(flag_key),
            status: RolloutStatus::Running,
            plan: json!({"control": "off", "treatment": "on"}),
            progress: json!({"step": 0}),
            timeline: json!([]),
            created_by: "token:admin".to_owned(),
        }
        .into(),
    );
    change.notifications = vec![Notification {
        event: "rollout.started".to_owned(),
        body: json!({"text": format!("{flag_key} started")}),
    }];
    change
}
