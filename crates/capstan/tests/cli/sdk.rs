use std::time::Duration;

use capstan_sdk::{Client, ConfigSource, ErrorCode, EvaluationContext, Reason};
use serde_json::{Value, json};

use crate::process::{ADMIN_TOKEN, ServerProcess};

async fn api(url: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new()
        .request(method.clone(), format!("{url}{path}"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{method} {path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

async fn sdk_key(url: &str) -> String {
    let token = api(
        url,
        reqwest::Method::POST,
        "/api/v1/tokens",
        Some(json!({ "name": "app", "role": "sdk", "environment": "production" })),
    )
    .await;
    token["token"].as_str().unwrap().to_owned()
}

async fn set_state(url: &str, flag: &str, action: &str) {
    api(
        url,
        reqwest::Method::POST,
        &format!("/api/v1/projects/default/environments/production/flags/{flag}/{action}"),
        None,
    )
    .await;
}

fn user() -> EvaluationContext {
    EvaluationContext::new(Some("user-1".into()), Default::default())
}

/// Waits (at most ten seconds: past that the test has failed) until the client holds a
/// configuration in which `check` holds.
async fn until(client: &Client, check: impl Fn(&Client) -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            // Listen before looking, so a change between the two is not missed.
            let next = client.changed();
            if check(client) {
                break;
            }
            next.await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the client did not see the change: {:?}",
        client.status()
    );
}

fn fast(builder: capstan_sdk::ClientBuilder) -> capstan_sdk::ClientBuilder {
    builder
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(200))
        .initial_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn a_flip_reaches_a_connected_sdk_which_evaluates_locally() {
    for backend in capstan_store::testing::backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let server = ServerProcess::start(&database.url);
        api(
            &server.url,
            reqwest::Method::POST,
            "/api/v1/projects/default/flags",
            Some(json!({ "key": "new-checkout" })),
        )
        .await;
        api(
            &server.url,
            reqwest::Method::POST,
            "/api/v1/projects/default/flags",
            Some(json!({ "key": "banner", "type": "string", "variants": { "a": "Hello", "b": "Hi" }, "defaultVariant": "b" })),
        )
        .await;
        set_state(&server.url, "banner", "enable").await;
        let key = sdk_key(&server.url).await;
        let client = fast(Client::builder(&server.url, &key)).build().await;
        assert_eq!(client.status().source, ConfigSource::Server);

        // Disabled: the caller's default, as OpenFeature's in-process providers do.
        let details = client.bool_details("new-checkout", &user(), false);
        assert_eq!((details.value, details.reason), (false, Reason::Disabled));
        assert_eq!(client.string_value("banner", &user(), "none"), "Hi");
        let mismatch = client.number_details("banner", &user(), 7.0);
        assert_eq!(
            (mismatch.value, mismatch.error_code),
            (7.0, Some(ErrorCode::TypeMismatch))
        );
        let missing = client.bool_details("no-such-flag", &user(), true);
        assert_eq!(
            (missing.value, missing.error_code),
            (true, Some(ErrorCode::FlagNotFound))
        );

        set_state(&server.url, "new-checkout", "enable").await;
        until(&client, |client| {
            client.bool_value("new-checkout", &user(), false)
        })
        .await;
        let details = client.bool_details("new-checkout", &user(), false);
        assert_eq!(
            (details.value, details.variant.as_deref(), details.reason),
            (true, Some("on"), Reason::Static)
        );
        assert!(client.status().connected);
        set_state(&server.url, "new-checkout", "disable").await;
        until(&client, |client| {
            client.bool_details("new-checkout", &user(), true).reason == Reason::Disabled
        })
        .await;
    }
}

#[tokio::test]
async fn the_sdk_outlives_the_server_and_catches_up_when_it_returns() {
    for backend in capstan_store::testing::backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let server = ServerProcess::start(&database.url);
        let url = server.url.clone();
        let address = url.trim_start_matches("http://").to_owned();
        api(
            &url,
            reqwest::Method::POST,
            "/api/v1/projects/default/flags",
            Some(json!({ "key": "resilient" })),
        )
        .await;
        set_state(&url, "resilient", "enable").await;
        let key = sdk_key(&url).await;
        let client = fast(Client::builder(&url, &key)).build().await;
        assert!(client.bool_value("resilient", &user(), false));
        let before = client.status().revision.unwrap();

        // The real process dies: the SDK keeps answering from what it has.
        server.signal("KILL");
        server.wait();
        for _ in 0..100 {
            assert!(client.bool_value("resilient", &user(), false));
        }

        // A change is made while the SDK cannot hear it, through another server.
        let elsewhere = ServerProcess::start(&database.url);
        set_state(&elsewhere.url, "resilient", "disable").await;
        drop(elsewhere);
        assert!(client.bool_value("resilient", &user(), false));

        // The server comes back where the SDK expects it; the SDK catches up.
        let _back = ServerProcess::start_at(&database.url, &address);
        assert!(
            client
                .wait_for_revision(before + 1, Duration::from_secs(15))
                .await,
            "{:?}",
            client.status()
        );
        assert_eq!(
            client.bool_details("resilient", &user(), true).reason,
            Reason::Disabled
        );
        assert_eq!(client.status().source, ConfigSource::Server);
    }
}

#[tokio::test]
async fn an_sdk_starts_from_its_cache_when_the_server_is_down() {
    let backend = capstan_store::testing::TestBackend::Sqlite;
    let database = capstan_store::testing::TestDatabase::new(&backend).await;
    let directory = tempfile::tempdir().unwrap();
    let cache = directory.path().join("capstan-cache.json");
    let server = ServerProcess::start(&database.url);
    let url = server.url.clone();
    api(
        &url,
        reqwest::Method::POST,
        "/api/v1/projects/default/flags",
        Some(json!({ "key": "cached" })),
    )
    .await;
    set_state(&url, "cached", "enable").await;
    let key = sdk_key(&url).await;
    let first = fast(Client::builder(&url, &key))
        .cache_path(&cache)
        .build()
        .await;
    assert!(first.bool_value("cached", &user(), false));
    assert!(cache.exists());
    first.close().await;
    drop(server);

    // Nothing listens at the address any more.
    let client = Client::builder(&url, &key)
        .cache_path(&cache)
        .initial_timeout(Duration::from_secs(1))
        .build()
        .await;
    assert_eq!(client.status().source, ConfigSource::Cache);
    let details = client.bool_details("cached", &user(), false);
    assert_eq!((details.value, details.reason), (true, Reason::Static));

    // With neither a server nor a usable cache: the caller's defaults, not ready.
    std::fs::write(
        &cache,
        "{\"revision\": 3, \"flags\": {\"cached\": {\"state\": \"ENAB",
    )
    .unwrap();
    let client = Client::builder(&url, &key)
        .cache_path(&cache)
        .initial_timeout(Duration::from_secs(1))
        .build()
        .await;
    let details = client.bool_details("cached", &user(), true);
    assert_eq!(
        (details.value, details.error_code),
        (true, Some(ErrorCode::ProviderNotReady))
    );
    assert_eq!(client.status().source, ConfigSource::None);
    assert!(
        client.status().last_error.unwrap().contains("cache"),
        "{:?}",
        client.status()
    );
}

#[tokio::test]
async fn events_reach_the_server_and_wait_for_it_in_bounded_memory() {
    for backend in capstan_store::testing::backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let server = ServerProcess::start(&database.url);
        let url = server.url.clone();
        api(
            &url,
            reqwest::Method::POST,
            "/api/v1/projects/default/flags",
            Some(json!({ "key": "measured" })),
        )
        .await;
        set_state(&url, "measured", "enable").await;
        let key = sdk_key(&url).await;
        let client = fast(Client::builder(&url, &key))
            .event_buffer(5)
            .event_batching(Duration::from_secs(3600), 500)
            .build()
            .await;
        assert!(client.bool_value("measured", &user(), false));
        client.track("checkout_error", "user-1", 2.5);
        client.flush().await.unwrap();
        assert_eq!(client.status().buffered_events, 0);
        let store = capstan_store::SqlStore::open(&database.url).await.unwrap();
        let project = capstan_model::ProjectKey::parse("default").unwrap();
        let production = capstan_model::EnvironmentKey::parse("production").unwrap();
        use capstan_store::prelude::*;
        let stored = store
            .list_events(&project, &production, 0, 10)
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert!(
            matches!(&stored[0].1.kind, capstan_store::EventKind::Exposure { variant, .. } if variant == "on")
        );
        assert!(
            matches!(&stored[1].1.kind, capstan_store::EventKind::Metric { value, .. } if *value == 2.5)
        );

        // The server goes away: events pile up to the limit, the oldest are dropped and
        // counted, and nothing blocks.
        drop(server);
        for n in 0..20 {
            client.track("checkout_error", &format!("user-{n}"), 1.0);
        }
        assert!(client.flush().await.is_err());
        let status = client.status();
        assert_eq!((status.buffered_events, status.dropped_events), (5, 15));
    }
}

#[tokio::test]
async fn an_sdk_on_one_replica_sees_a_change_written_through_another() {
    for backend in capstan_store::testing::backends() {
        // Replicas share a database only on PostgreSQL; SQLite is one process.
        if !matches!(backend, capstan_store::testing::TestBackend::Postgres(_)) {
            continue;
        }
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let a = ServerProcess::start(&database.url);
        let b = ServerProcess::start(&database.url);
        api(
            &a.url,
            reqwest::Method::POST,
            "/api/v1/projects/default/flags",
            Some(json!({ "key": "everywhere" })),
        )
        .await;
        let key = sdk_key(&a.url).await;
        let on_b = fast(Client::builder(&b.url, &key)).build().await;
        assert_eq!(
            on_b.bool_details("everywhere", &user(), false).reason,
            Reason::Disabled
        );
        set_state(&a.url, "everywhere", "enable").await;
        until(&on_b, |client| {
            client.bool_value("everywhere", &user(), false)
        })
        .await;
        assert_eq!(on_b.status().source, ConfigSource::Server);
    }
}
