//! One store test suite, run against every backend this run has: SQLite always,
//! PostgreSQL when `CAPSTAN_TEST_DATABASE_URL` is set.

use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey, Role, SegmentKey, TokenName};
use capstan_store::testing::{TestBackend, TestDatabase, backends};
use capstan_store::*;
use serde_json::json;

/// Runs `check` once per backend, each time on a fresh database.
macro_rules! each_backend {
    ($check:ident) => {
        for backend in backends() {
            let database = TestDatabase::new(&backend).await;
            let store = SqlStore::open(&database.url)
                .await
                .expect("failed to open store");
            $check(&store, &backend).await;
        }
    };
}

fn project() -> ProjectKey {
    ProjectKey::parse("default").unwrap()
}

fn env(key: &str) -> EnvironmentKey {
    EnvironmentKey::parse(key).unwrap()
}

fn flag(key: &str) -> FlagKey {
    FlagKey::parse(key).unwrap()
}

fn token(id: &str, role: Role, hash: &str) -> TokenRecord {
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

fn audit(action: &str, key: &str) -> AuditEntry {
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

async fn bootstrapped(store: &SqlStore) {
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

fn boolean_flag(key: &str) -> FlagRecord {
    FlagRecord {
        key: flag(key),
        flag_type: FlagType::Boolean,
        description: String::new(),
        client_visible: false,
        created_at: 5,
    }
}

fn config(state: &str) -> serde_json::Value {
    json!({"state": state, "variants": {"on": true, "off": false}, "defaultVariant": "off"})
}

/// A change that creates `key` in production, expecting the environment at `revision`.
fn create_flag(key: &str, revision: i64) -> ChangeSet {
    ChangeSet {
        project: project(),
        environments: vec![(env("production"), revision)],
        flags: vec![FlagWrite::Upsert(boolean_flag(key))],
        configs: vec![ConfigWrite {
            environment: env("production"),
            flag: flag(key),
            expected_version: None,
            config: Some(config("DISABLED")),
        }],
        segments: vec![],
        audit: audit("flag.create", key),
        at: 10,
        settles_schedule: None,
        rollouts: vec![],
        notifications: vec![],
    }
}

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
async fn an_older_schema_upgrades_and_keeps_its_data() {
    for backend in backends() {
        let database = TestDatabase::new(&backend).await;
        let old = SqlStore::open_with(
            &database.url,
            OpenOptions {
                migrate_up_to: Some(1),
            },
        )
        .await
        .unwrap();
        assert_eq!(old.schema_version().await.unwrap(), 1);
        bootstrapped(&old).await;
        old.apply(create_flag("kept", 0)).await.unwrap();
        drop(old);

        let upgraded = SqlStore::open(&database.url).await.unwrap();
        assert_eq!(
            upgraded.schema_version().await.unwrap(),
            SqlStore::latest_schema_version()
        );
        assert!(SqlStore::latest_schema_version() >= 2);
        let state = upgraded
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.configs.len(), 1);
        assert_eq!(state.configs[0].flag.as_str(), "kept");
        // The table the second migration adds works.
        assert!(upgraded.due_schedules(i64::MAX).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn applies_a_change_and_records_its_version_and_audit() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let applied = store.apply(create_flag("checkout", 0)).await.unwrap();
        assert_eq!(
            applied.config_versions,
            vec![(env("production"), flag("checkout"), 1)]
        );
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.environment.revision, 1);
        assert_eq!(state.flags, vec![boolean_flag("checkout")]);
        assert_eq!(state.configs[0].config, config("DISABLED"));
        assert_eq!(state.configs[0].version, 1);

        let mut enable = create_flag("checkout", 1);
        enable.flags.clear();
        enable.configs[0].expected_version = Some(1);
        enable.configs[0].config = Some(config("ENABLED"));
        enable.audit.action = "flag.enable".to_owned();
        store.apply(enable).await.unwrap();

        let history = store
            .flag_history(&project(), &env("production"), &flag("checkout"))
            .await
            .unwrap();
        assert_eq!(
            history.iter().map(|v| v.version).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(history[0].config, Some(config("ENABLED")));
        assert_eq!(history[0].action, "flag.enable");
        assert_eq!(history[1].actor, "tester");

        let log = store
            .audit_log(AuditFilter {
                resource_key: Some("checkout".to_owned()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].entry.action, "flag.enable");
    }
    each_backend!(check);
}

#[tokio::test]
async fn a_stale_version_loses_with_the_current_version() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("checkout", 0)).await.unwrap();
        let mut stale = create_flag("checkout", 1);
        stale.flags.clear();
        stale.configs[0].expected_version = Some(7);
        match store.apply(stale).await {
            Err(StoreError::VersionConflict {
                current_version, ..
            }) => assert_eq!(current_version, 1),
            other => panic!("expected a version conflict, got {other:?}"),
        }
        // Creating a flag that exists is a conflict too, never an overwrite.
        match store.apply(create_flag("checkout", 1)).await {
            Err(StoreError::VersionConflict {
                current_version, ..
            }) => assert_eq!(current_version, 1),
            other => panic!("expected a version conflict, got {other:?}"),
        }
    }
    each_backend!(check);
}

#[tokio::test]
async fn a_failed_change_leaves_nothing_behind() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("existing", 0)).await.unwrap();
        // The second configuration write conflicts, after the first one and the audit
        // entry were written inside the transaction.
        let mut change = create_flag("fresh", 1);
        change.configs.push(ConfigWrite {
            environment: env("production"),
            flag: flag("existing"),
            expected_version: Some(42),
            config: Some(config("ENABLED")),
        });
        assert!(matches!(
            store.apply(change).await,
            Err(StoreError::VersionConflict { .. })
        ));
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.environment.revision, 1);
        assert_eq!(state.flags.len(), 1);
        assert_eq!(state.configs.len(), 1);
        let log = store.audit_log(AuditFilter::default()).await.unwrap();
        assert!(
            log.iter()
                .all(|record| record.entry.resource_key != "fresh")
        );
    }
    each_backend!(check);
}

#[tokio::test]
async fn a_stale_environment_revision_is_refused() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("a", 0)).await.unwrap();
        assert!(matches!(
            store.apply(create_flag("b", 0)).await,
            Err(StoreError::RevisionConflict { .. })
        ));
        assert!(matches!(
            store
                .apply(ChangeSet {
                    environments: vec![(env("nowhere"), 0)],
                    ..create_flag("c", 0)
                })
                .await,
            Err(StoreError::NotFound {
                kind: "environment",
                ..
            })
        ));
    }
    each_backend!(check);
}

#[tokio::test]
async fn deleting_a_flag_removes_it_everywhere_and_keeps_history() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("gone", 0)).await.unwrap();
        let delete = ChangeSet {
            project: project(),
            environments: vec![(env("production"), 1)],
            flags: vec![FlagWrite::Delete(flag("gone"))],
            configs: vec![ConfigWrite {
                environment: env("production"),
                flag: flag("gone"),
                expected_version: Some(1),
                config: None,
            }],
            segments: vec![],
            audit: audit("flag.delete", "gone"),
            at: 11,
            settles_schedule: None,
            rollouts: vec![],
            notifications: vec![],
        };
        store.apply(delete).await.unwrap();
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert!(state.flags.is_empty() && state.configs.is_empty());
        let history = store
            .flag_history(&project(), &env("production"), &flag("gone"))
            .await
            .unwrap();
        assert_eq!(history[0].config, None);
        assert_eq!(history[0].version, 2);
        // Re-created, its versions go on counting.
        let applied = store.apply(create_flag("gone", 2)).await.unwrap();
        assert_eq!(applied.config_versions[0].2, 3);
    }
    each_backend!(check);
}

#[tokio::test]
async fn segments_are_versioned_per_environment() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let key = SegmentKey::parse("beta-users").unwrap();
        let write = |expected, rule: serde_json::Value, revision| ChangeSet {
            project: project(),
            environments: vec![(env("production"), revision)],
            flags: vec![],
            configs: vec![],
            segments: vec![SegmentWrite {
                environment: env("production"),
                key: key.clone(),
                expected_version: expected,
                segment: Some(("Beta".to_owned(), rule)),
            }],
            audit: audit("segment.upsert", "beta-users"),
            at: 12,
            settles_schedule: None,
            rollouts: vec![],
            notifications: vec![],
        };
        store
            .apply(write(None, json!({"in": [1, [1]]}), 0))
            .await
            .unwrap();
        store
            .apply(write(Some(1), json!({"in": [2, [2]]}), 1))
            .await
            .unwrap();
        assert!(matches!(
            store.apply(write(Some(1), json!(true), 2)).await,
            Err(StoreError::VersionConflict {
                kind: "segment",
                current_version: 2,
                ..
            })
        ));
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.segments.len(), 1);
        assert_eq!(state.segments[0].rule, json!({"in": [2, [2]]}));
        let staging = store
            .load_environment(&project(), &env("staging"))
            .await
            .unwrap();
        assert!(staging.segments.is_empty());
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
        change.configs[0].environment = env("development");
        change.configs[0].config = Some(json!({
            "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on",
            "targeting": {"if": [true, "off"]}
        }));
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

#[tokio::test]
async fn tokens_rotate_and_revoke() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let mut sdk = token("sdk1", Role::Sdk, "hash-sdk1");
        sdk.project = Some(project());
        sdk.environment = Some(env("production"));
        store
            .create_token(sdk.clone(), audit("token.create", "sdk1"))
            .await
            .unwrap();
        assert_eq!(
            store.token_by_hash("hash-sdk1").await.unwrap(),
            Some(sdk.clone())
        );

        let replacement = TokenRecord {
            id: "sdk2".to_owned(),
            hash: "hash-sdk2".to_owned(),
            ..sdk.clone()
        };
        store
            .rotate_token("sdk1", 500, replacement, audit("token.rotate", "sdk1"))
            .await
            .unwrap();
        let old = store.token_by_id("sdk1").await.unwrap();
        assert_eq!(old.expires_at, Some(500));
        assert!(old.is_valid_at(499) && !old.is_valid_at(500));
        assert!(store.token_by_id("sdk2").await.unwrap().is_valid_at(10_000));

        store
            .revoke_token("sdk2", 600, audit("token.revoke", "sdk2"))
            .await
            .unwrap();
        assert!(!store.token_by_id("sdk2").await.unwrap().is_valid_at(601));
        assert!(matches!(
            store
                .revoke_token("sdk2", 601, audit("token.revoke", "sdk2"))
                .await,
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.list_tokens().await.unwrap().len(), 3);
    }
    each_backend!(check);
}

#[tokio::test]
async fn a_schedule_settles_once() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let schedule = NewSchedule {
            project: project(),
            environment: env("production"),
            flag: flag("checkout"),
            run_at: 1_000,
            action: json!({"kind": "enable"}),
            created_by: "tester".to_owned(),
            created_at: 10,
        };
        let created = store
            .create_schedule(schedule, audit("schedule.create", "checkout"))
            .await
            .unwrap();
        assert!(store.due_schedules(999).await.unwrap().is_empty());
        let due = store.due_schedules(1_000).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, created.id);
        // A change that carries the schedule out settles it in the same transaction; a
        // second one (another replica) finds it settled and changes nothing.
        let mut carry_out = create_flag("checkout", 0);
        carry_out.settles_schedule = Some(created.id);
        carry_out.at = 1_001;
        store.apply(carry_out).await.unwrap();
        let mut again = create_flag("other", 1);
        again.settles_schedule = Some(created.id);
        assert!(matches!(
            store.apply(again).await,
            Err(StoreError::AlreadySettled { .. })
        ));
        assert_eq!(
            store
                .load_environment(&project(), &env("production"))
                .await
                .unwrap()
                .flags
                .len(),
            1
        );
        assert!(
            !store
                .settle_schedule(created.id, ScheduleOutcome::Applied, 1_002)
                .await
                .unwrap()
        );
        assert!(store.due_schedules(2_000).await.unwrap().is_empty());
        let listed = store
            .list_schedules(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(listed[0].status, ScheduleStatus::Applied);
        assert_eq!(listed[0].settled_at, Some(1_001));
    }
    each_backend!(check);
}

#[tokio::test]
async fn concurrent_writers_never_lose_an_acknowledged_change() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        store.apply(create_flag("counter", 0)).await.unwrap();
        // Eight writers race to bump one flag from the version they read; each success
        // must be visible as exactly one version, and every failure must be a conflict.
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut successes = 0;
                for _ in 0..5 {
                    let state = store.load_environment(&project(), &env("production")).await.unwrap();
                    let version = state.configs[0].version;
                    let mut change = create_flag("counter", state.environment.revision);
                    change.flags.clear();
                    change.configs[0].expected_version = Some(version);
                    change.configs[0].config = Some(json!({"state": "ENABLED", "variants": {"w": writer}, "defaultVariant": "w"}));
                    match store.apply(change).await {
                        Ok(_) => successes += 1,
                        Err(StoreError::VersionConflict { .. } | StoreError::RevisionConflict { .. }) => {}
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                }
                successes
            }));
        }
        let mut successes = 0;
        for task in tasks {
            successes += task.await.unwrap();
        }
        let history = store
            .flag_history(&project(), &env("production"), &flag("counter"))
            .await
            .unwrap();
        assert!(successes >= 1);
        assert_eq!(history.len(), 1 + successes);
        let state = store
            .load_environment(&project(), &env("production"))
            .await
            .unwrap();
        assert_eq!(state.configs[0].version, 1 + successes as i64);
    }
    each_backend!(check);
}

#[tokio::test]
async fn events_are_stored_in_batches_and_read_back_in_order() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let events: Vec<EventRecord> = (0..1_201)
            .map(|n| EventRecord {
                project: project(),
                environment: env("production"),
                kind: if n % 2 == 0 {
                    EventKind::Exposure {
                        flag: flag("checkout"),
                        variant: "on".to_owned(),
                    }
                } else {
                    EventKind::Metric {
                        metric: "checkout_error".to_owned(),
                        value: n as f64 / 2.0,
                    }
                },
                targeting_key: format!("user-{n}"),
                at: 1_000 + n,
                received_at: 5_000,
            })
            .collect();
        assert_eq!(store.insert_events(&events).await.unwrap(), 1_201);
        let mut read = Vec::new();
        let mut after = 0;
        loop {
            let page = store
                .list_events(&project(), &env("production"), after, 500)
                .await
                .unwrap();
            let Some((last, _)) = page.last() else { break };
            after = *last;
            read.extend(page.into_iter().map(|(_, event)| event));
        }
        assert_eq!(read, events);
        assert!(
            store
                .list_events(&project(), &env("staging"), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
    each_backend!(check);
}

fn start_rollout(flag_key: &str, revision: i64) -> ChangeSet {
    let mut change = create_flag(flag_key, revision);
    change.audit = audit("rollout.start", flag_key);
    change.rollouts = vec![RolloutWrite::Create {
        environment: env("production"),
        flag: flag(flag_key),
        status: "running".to_owned(),
        plan: json!({"control": "off", "treatment": "on"}),
        progress: json!({"step": 0}),
        timeline: json!([]),
        created_by: "token:admin".to_owned(),
    }];
    change.notifications = vec![Notification {
        event: "rollout.started".to_owned(),
        body: json!({"text": format!("{flag_key} started")}),
    }];
    change
}

#[tokio::test]
async fn a_rollout_commits_with_its_flag_change_and_one_is_active_per_flag() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let applied = store.apply(start_rollout("checkout", 0)).await.unwrap();
        let id = applied.rollout_ids[0];
        let rollout = store.rollout(id).await.unwrap();
        assert_eq!((rollout.status.as_str(), rollout.version), ("running", 1));
        assert_eq!(rollout.plan["treatment"], "on");

        // A second active rollout of the same flag is refused, and nothing of it is kept.
        let mut second = start_rollout("checkout", 1);
        second.flags.clear();
        second.configs.clear();
        let refused = store.apply(second).await.unwrap_err();
        assert!(
            matches!(refused, StoreError::AlreadyExists { .. }),
            "{refused:?}"
        );
        assert_eq!(
            store
                .environment_revision(&project(), &env("production"))
                .await
                .unwrap(),
            1
        );

        // Moving on checks the version; a stale writer loses.
        let update = |expected_version, status: &str| {
            let mut change = create_flag("other", 1);
            change.flags.clear();
            change.configs.clear();
            change.environments.clear();
            change.audit = audit("rollout.advance", "checkout");
            change.rollouts = vec![RolloutWrite::Update {
                id,
                expected_version,
                status: status.to_owned(),
                progress: json!({"step": 1}),
                timeline: json!([{"step": 0}]),
            }];
            change
        };
        store.apply(update(1, "promoted")).await.unwrap();
        let stale = store.apply(update(1, "reverted")).await.unwrap_err();
        assert!(
            matches!(
                stale,
                StoreError::VersionConflict {
                    current_version: 2,
                    ..
                }
            ),
            "{stale:?}"
        );
        let rollout = store.rollout(id).await.unwrap();
        assert_eq!((rollout.status.as_str(), rollout.version), ("promoted", 2));
        assert_eq!(rollout.progress, json!({"step": 1}));

        // Finished, the flag may have a new rollout.
        let mut next = start_rollout("checkout", 1);
        next.flags.clear();
        next.configs.clear();
        let next_id = store.apply(next).await.unwrap().rollout_ids[0];
        let active = store
            .list_rollouts(RolloutFilter {
                active_only: true,
                ..RolloutFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            active.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![next_id]
        );
        let all = store
            .list_rollouts(RolloutFilter {
                flag: Some(flag("checkout")),
                ..RolloutFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 2);

        store
            .record_rollout_reading(next_id, &json!({"reason": "holding"}))
            .await
            .unwrap();
        assert_eq!(
            store.rollout(next_id).await.unwrap().latest,
            Some(json!({"reason": "holding"}))
        );
        let bucket = RolloutBucketRecord {
            rollout_id: next_id,
            arm: "treatment".to_owned(),
            bucket_start: 60_000,
            exposures: 3,
            new_units: 2,
            metrics: json!({"error": [3, 1.0]}),
        };
        store
            .save_rollout_buckets(std::slice::from_ref(&bucket))
            .await
            .unwrap();
        let replaced = RolloutBucketRecord {
            exposures: 5,
            ..bucket
        };
        store
            .save_rollout_buckets(std::slice::from_ref(&replaced))
            .await
            .unwrap();
        assert_eq!(
            store.rollout_buckets(next_id).await.unwrap(),
            vec![replaced]
        );
    }
    each_backend!(check);
}

#[tokio::test]
async fn notifications_are_queued_for_matching_webhooks_in_the_same_transaction() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let webhook = |id: &str, events: Vec<String>| WebhookRecord {
            id: id.to_owned(),
            project: project(),
            url: format!("http://127.0.0.1:9/{id}"),
            secret: "s3cret".to_owned(),
            events,
            created_by: "token:admin".to_owned(),
            created_at: 1,
        };
        store
            .create_webhook(webhook("all", vec![]), audit("webhook.create", "all"))
            .await
            .unwrap();
        store
            .create_webhook(
                webhook("reverts", vec!["rollout.reverted".to_owned()]),
                audit("webhook.create", "reverts"),
            )
            .await
            .unwrap();
        assert_eq!(store.list_webhooks(&project()).await.unwrap().len(), 2);

        // A change that fails queues nothing.
        let mut failing = start_rollout("checkout", 99);
        failing.notifications[0].event = "rollout.reverted".to_owned();
        store.apply(failing).await.unwrap_err();
        assert!(store.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());

        store.apply(start_rollout("checkout", 0)).await.unwrap();
        let due = store.due_deliveries(10, 10).await.unwrap();
        assert_eq!(
            due.len(),
            1,
            "only the webhook for every event hears of a start"
        );
        assert_eq!(
            (due[0].webhook.id.as_str(), due[0].event.as_str()),
            ("all", "rollout.started")
        );
        assert_eq!(due[0].body, json!({"text": "checkout started"}));

        store
            .settle_delivery(
                due[0].id,
                DeliveryOutcome::Retry {
                    at: 500,
                    error: "503".to_owned(),
                },
                10,
            )
            .await
            .unwrap();
        assert!(store.due_deliveries(499, 10).await.unwrap().is_empty());
        let retried = store.due_deliveries(500, 10).await.unwrap();
        assert_eq!(
            (retried[0].attempts, retried[0].last_error.as_deref()),
            (1, Some("503"))
        );
        store
            .settle_delivery(retried[0].id, DeliveryOutcome::Delivered, 501)
            .await
            .unwrap();
        assert!(store.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());
        assert_eq!(
            store.list_deliveries("all").await.unwrap()[0].status,
            "delivered"
        );

        store
            .delete_webhook(&project(), "all", audit("webhook.delete", "all"))
            .await
            .unwrap();
        let missing = store
            .delete_webhook(&project(), "all", audit("webhook.delete", "all"))
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    }
    each_backend!(check);
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        assert!(
            store
                .acquire_lease("rollouts", "a", 1_000, 100)
                .await
                .unwrap()
        );
        assert!(
            !store
                .acquire_lease("rollouts", "b", 1_050, 100)
                .await
                .unwrap()
        );
        assert!(
            store
                .acquire_lease("rollouts", "a", 1_090, 100)
                .await
                .unwrap(),
            "renewed"
        );
        assert!(
            !store
                .acquire_lease("rollouts", "b", 1_150, 100)
                .await
                .unwrap()
        );
        assert!(
            store
                .acquire_lease("rollouts", "b", 1_190, 100)
                .await
                .unwrap(),
            "expired"
        );
        assert!(
            !store
                .acquire_lease("rollouts", "a", 1_200, 100)
                .await
                .unwrap()
        );
    }
    each_backend!(check);
}

#[tokio::test]
async fn retention_deletes_only_old_events() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let events: Vec<EventRecord> = (0..10)
            .map(|n| EventRecord {
                project: project(),
                environment: env("production"),
                kind: EventKind::Metric {
                    metric: "error".to_owned(),
                    value: 0.0,
                },
                targeting_key: format!("user-{n}"),
                at: n * 100,
                received_at: n * 100,
            })
            .collect();
        store.insert_events(&events).await.unwrap();
        assert_eq!(store.delete_events_before(500).await.unwrap(), 5);
        let left = store
            .list_events(&project(), &env("production"), 0, 100)
            .await
            .unwrap();
        assert_eq!(
            left.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
            vec![500, 600, 700, 800, 900]
        );
    }
    each_backend!(check);
}

/// Batches whose statements start with a metric (a value) or an exposure (no value) in
/// any order: PostgreSQL once refused the second kind after the first (error 22P03).
#[tokio::test]
async fn event_batches_store_whatever_kind_comes_first() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        let event = |n: i64, metric: bool| EventRecord {
            project: project(),
            environment: env("production"),
            kind: if metric {
                EventKind::Metric {
                    metric: "latency_ms".to_owned(),
                    value: 12.5,
                }
            } else {
                EventKind::Exposure {
                    flag: flag("checkout"),
                    variant: "on".to_owned(),
                }
            },
            targeting_key: format!("user-{n}"),
            at: n,
            received_at: n,
        };
        // 500 rows per statement: the first statement starts with an exposure, the
        // second with a metric.
        let first: Vec<EventRecord> = (0..2_000).map(|n| event(n, n % 9 != 0)).collect();
        assert_eq!(store.insert_events(&first).await.unwrap(), 2_000);
        let second: Vec<EventRecord> = (0..1_000).map(|n| event(n, n % 2 == 0)).collect();
        assert_eq!(store.insert_events(&second).await.unwrap(), 1_000);
    }
    each_backend!(check);
}

fn surface_key(key: &str) -> capstan_model::SurfaceKey {
    capstan_model::SurfaceKey::parse(key).unwrap()
}

fn decision(event_id: &str, created_at: i64, activated: bool) -> DecisionRecord {
    DecisionRecord {
        event_id: event_id.to_owned(),
        project: project(),
        surface: surface_key("home_hero"),
        context: json!({"user": {"taste": "sleep"}}),
        candidates: json!([{"id": "a"}, {"id": "b"}]),
        shown: 1,
        probabilities: json!([0.1, 0.9]),
        policy: "personalized".to_owned(),
        created_at,
        activated_at: activated.then_some(created_at),
        reward: None,
        reward_count: 0,
        learned_at: None,
    }
}

/// The surface `home_hero` in the bootstrapped project.
async fn home_hero(store: &SqlStore) {
    let surface = SurfaceRecord {
        project: project(),
        key: surface_key("home_hero"),
        description: String::new(),
        settings: json!({}),
        created_at: 1,
        updated_at: 1,
    };
    store
        .upsert_surface(surface, audit("surface.create", "home_hero"))
        .await
        .unwrap();
}

#[tokio::test]
async fn transactions_that_read_before_writing_wait_for_other_writers() {
    // A transaction that reads, then writes, while other connections keep committing
    // (leases renewed, as the background controllers do): on SQLite a deferred
    // transaction failed at its first write with "database is locked" whenever a commit
    // came between its read and its write. Bounded: 40 writes of items against 400
    // lease renewals.
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        home_hero(store).await;
        let renewals = async {
            for round in 0..400i64 {
                store
                    .acquire_lease(&format!("lease-{}", round % 4), "me", round, 60_000)
                    .await
                    .unwrap();
            }
        };
        let writes = async {
            let writes = (0..40).map(|round| async move {
                store
                    .upsert_items(
                        &project(),
                        &surface_key("home_hero"),
                        &[ItemRecord {
                            id: format!("item-{round}"),
                            features: json!({}),
                            status: "live".to_owned(),
                            created_at: round,
                            updated_at: round,
                        }],
                        audit("items.put", "home_hero"),
                    )
                    .await
            });
            futures_util::future::join_all(writes).await
        };
        let ((), results) = tokio::join!(renewals, writes);
        for result in results {
            result.unwrap();
        }
        let items = store
            .list_items(&project(), &surface_key("home_hero"))
            .await
            .unwrap();
        assert_eq!(items.len(), 40);
    }
    each_backend!(check);
}

#[tokio::test]
async fn a_batch_of_decisions_is_logged_in_one_go_and_skips_used_event_ids() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        home_hero(store).await;
        store
            .insert_decision(&decision("used", 10, true))
            .await
            .unwrap();
        let mut again_in_batch = decision("b", 30, true);
        again_in_batch.shown = 0;
        let inserted = store
            .insert_decisions(&[
                decision("a", 20, true),
                decision("used", 25, true),
                decision("b", 30, false),
                again_in_batch,
            ])
            .await
            .unwrap();
        assert_eq!(inserted, vec![true, false, true, false]);
        // The first of each event id is what was logged.
        assert_eq!(store.decision("a").await.unwrap(), decision("a", 20, true));
        assert_eq!(
            store.decision("used").await.unwrap(),
            decision("used", 10, true)
        );
        assert_eq!(store.decision("b").await.unwrap(), decision("b", 30, false));
        assert_eq!(
            store.insert_decisions(&[]).await.unwrap(),
            Vec::<bool>::new()
        );
    }
    each_backend!(check);
}

#[tokio::test]
async fn surfaces_items_decisions_rewards_and_models() {
    async fn check(store: &SqlStore, _: &TestBackend) {
        bootstrapped(store).await;
        let surface = SurfaceRecord {
            project: project(),
            key: surface_key("home_hero"),
            description: "The hero slot".to_owned(),
            settings: json!({"holdout": 0.05}),
            created_at: 1,
            updated_at: 1,
        };
        store
            .upsert_surface(surface.clone(), audit("surface.create", "home_hero"))
            .await
            .unwrap();
        assert_eq!(
            store
                .surface(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            surface
        );
        let missing = store.surface(&project(), &surface_key("nope")).await;
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
        let item = |id: &str, status: &str| ItemRecord {
            id: id.to_owned(),
            features: json!({"category": "sleep"}),
            status: status.to_owned(),
            created_at: 2,
            updated_at: 2,
        };
        store
            .upsert_items(
                &project(),
                &surface_key("home_hero"),
                &[item("a", "live"), item("b", "live")],
                audit("items.put", "home_hero"),
            )
            .await
            .unwrap();
        store
            .upsert_items(
                &project(),
                &surface_key("home_hero"),
                &[item("b", "retired")],
                audit("items.put", "home_hero"),
            )
            .await
            .unwrap();
        let items = store
            .list_items(&project(), &surface_key("home_hero"))
            .await
            .unwrap();
        assert_eq!(items, vec![item("a", "live"), item("b", "retired")]);
        let no_surface = store
            .upsert_items(
                &project(),
                &surface_key("nope"),
                &[item("a", "live")],
                audit("items.put", "nope"),
            )
            .await;
        assert!(matches!(no_surface, Err(StoreError::NotFound { .. })));

        // Decisions: unique event ids; rewards combine; learning picks the ready ones.
        store
            .insert_decision(&decision("e1", 100, true))
            .await
            .unwrap();
        store
            .insert_decision(&decision("e2", 200, true))
            .await
            .unwrap();
        store
            .insert_decision(&decision("e3", 300, false))
            .await
            .unwrap();
        let again = store.insert_decision(&decision("e1", 100, true)).await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists { .. })),
            "{again:?}"
        );
        assert_eq!(
            store
                .record_reward("e1", 1.0, RewardCombine::First)
                .await
                .unwrap(),
            RewardOutcome::Recorded
        );
        assert_eq!(
            store
                .record_reward("e1", 5.0, RewardCombine::First)
                .await
                .unwrap(),
            RewardOutcome::Duplicate
        );
        assert_eq!(
            store
                .record_reward("e2", 0.5, RewardCombine::Sum)
                .await
                .unwrap(),
            RewardOutcome::Recorded
        );
        assert_eq!(
            store
                .record_reward("e2", 0.25, RewardCombine::Sum)
                .await
                .unwrap(),
            RewardOutcome::Recorded
        );
        let e2 = store.decision("e2").await.unwrap();
        assert_eq!((e2.reward, e2.reward_count), (Some(0.75), 2));
        assert!(matches!(
            store.record_reward("nope", 1.0, RewardCombine::Sum).await,
            Err(StoreError::NotFound { .. })
        ));

        let ready = |combine, closed_before| async move {
            store
                .decisions_to_learn(
                    &project(),
                    &surface_key("home_hero"),
                    combine,
                    closed_before,
                    10,
                )
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.event_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ready(RewardCombine::First, 0).await,
            vec!["e1", "e2"],
            "rewarded: at once"
        );
        assert!(
            ready(RewardCombine::Sum, 0).await.is_empty(),
            "sums wait for the window"
        );
        assert_eq!(ready(RewardCombine::Sum, 250).await, vec!["e1", "e2"]);
        // Deferred until activated.
        assert_eq!(ready(RewardCombine::Sum, 1_000).await, vec!["e1", "e2"]);
        store.activate_decision("e3", 400).await.unwrap();
        store.activate_decision("e3", 500).await.unwrap();
        assert_eq!(store.decision("e3").await.unwrap().activated_at, Some(400));
        assert_eq!(
            ready(RewardCombine::Sum, 1_000).await,
            vec!["e1", "e2", "e3"]
        );
        store
            .mark_learned(&["e1".to_owned(), "e2".to_owned()], 600)
            .await
            .unwrap();
        assert_eq!(ready(RewardCombine::Sum, 1_000).await, vec!["e3"]);
        assert_eq!(
            store
                .record_reward("e2", 1.0, RewardCombine::Sum)
                .await
                .unwrap(),
            RewardOutcome::Late
        );
        let logged = store
            .list_decisions(
                &project(),
                &surface_key("home_hero"),
                Some((100, "e1".to_owned())),
                10,
            )
            .await
            .unwrap();
        assert_eq!(
            logged
                .iter()
                .map(|d| d.event_id.as_str())
                .collect::<Vec<_>>(),
            vec!["e2", "e3"]
        );

        // Models are bytes, kept whole, versioned.
        assert_eq!(
            store
                .load_model(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .model_version(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            None
        );
        let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        assert_eq!(
            store
                .save_model(&project(), &surface_key("home_hero"), &bytes, 7)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .save_model(&project(), &surface_key("home_hero"), &bytes[..10], 8)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .load_model(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            Some((bytes[..10].to_vec(), 2))
        );
        assert_eq!(
            store
                .model_version(&project(), &surface_key("home_hero"))
                .await
                .unwrap(),
            Some(2)
        );
    }
    each_backend!(check);
}
