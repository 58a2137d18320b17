//! The provider against the real Capstan server, started in-process on every test
//! backend: flags are made through the management API and read through the OpenFeature
//! API, and a change made on the server is seen live.

use std::sync::Arc;
use std::time::Duration;

use capstan_openfeature::CapstanProvider;
use capstan_server::core::clock::SystemClock;
use capstan_server::{RunningServer, ServeConfig};
use capstan_store::testing::{TestBackend, TestDatabase, backends};
use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationErrorCode, EvaluationReason,
    OpenFeature, StructValue, Value,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value as Json, json};

const ADMIN_TOKEN: &str = "cps_openfeature_test_admin_0123456789abcdef";

/// A server with its own database, and the calls the tests make to its management API.
struct TestServer {
    address: String,
    http: reqwest::Client,
    server: RunningServer,
    // Dropped after the server is stopped: it deletes the database.
    _database: TestDatabase,
}

impl TestServer {
    async fn start(backend: &TestBackend) -> TestServer {
        let database = TestDatabase::new(backend).await;
        let config = ServeConfig {
            config: None,
            listen: "127.0.0.1:0".to_owned(),
            database: database.url.clone(),
            bootstrap_token: Some(ADMIN_TOKEN.to_owned().into()),
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            rotation_grace_seconds: 3_600,
            sse_keep_alive_seconds: 15,
            scheduler_interval_ms: 0,
            rollout_interval_ms: 0,
            event_retention_hours: 168,
            placement_interval_ms: 0,
        };
        let server = capstan_server::start(&config, Arc::new(SystemClock))
            .await
            .expect("failed to start the server");
        TestServer {
            address: format!("http://{}", server.address),
            http: reqwest::Client::new(),
            server,
            _database: database,
        }
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Json>) -> (StatusCode, Json) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request failed");
        let status = response.status();
        let text = response.text().await.expect("failed to read the body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }

    /// Creates a flag, disabled everywhere, as a new flag is.
    async fn create_flag(&self, body: Json) {
        let (status, json) = self
            .admin(Method::POST, "/api/v1/projects/default/flags", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
    }

    async fn set_targeting(&self, flag: &str, targeting: Json) {
        let (status, json) = self
            .admin(
                Method::PATCH,
                &format!("/api/v1/projects/default/environments/production/flags/{flag}"),
                Some(json!({ "targeting": targeting })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
    }

    async fn enable(&self, flag: &str) {
        let (status, json) = self
            .admin(
                Method::POST,
                &format!("/api/v1/projects/default/environments/production/flags/{flag}/enable"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
    }

    async fn sdk_token(&self) -> String {
        let body = json!({ "name": "openfeature", "role": "sdk", "environment": "production" });
        let (status, json) = self.admin(Method::POST, "/api/v1/tokens", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["token"].as_str().expect("a token").to_owned()
    }

    async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(10), self.server.shutdown())
            .await
            .expect("the server did not stop within 10 s")
            .expect("the server failed");
    }
}

/// One flag of each type, a targeting rule on strings and one on a nested context
/// field, and `new-checkout`, left disabled for the test to flip.
async fn make_flags(server: &TestServer) {
    server.create_flag(json!({ "key": "dark-mode" })).await;
    server.create_flag(json!({ "key": "new-checkout" })).await;
    server
        .create_flag(json!({
            "key": "banner", "type": "string",
            "variants": { "plain": "Welcome", "festive": "Happy holidays" },
            "defaultVariant": "plain",
        }))
        .await;
    server
        .set_targeting(
            "banner",
            json!({ "if": [{ "ends_with": [{ "var": "email" }, "@example.com"] }, "festive", null] }),
        )
        .await;
    server
        .create_flag(json!({
            "key": "max-items", "type": "number",
            "variants": { "few": 10, "many": 100 }, "defaultVariant": "few",
        }))
        .await;
    server
        .set_targeting(
            "max-items",
            json!({ "if": [{ "==": [{ "var": "account.plan" }, "pro"] }, "many", null] }),
        )
        .await;
    server
        .create_flag(json!({
            "key": "ratio", "type": "number", "variants": { "half": 0.5 }, "defaultVariant": "half",
        }))
        .await;
    server
        .create_flag(json!({
            "key": "layout", "type": "object",
            "variants": {
                "grid": { "columns": 3, "dense": true, "sizes": [1, 2.5], "theme": { "name": "dark" } },
                "list": { "columns": 1 },
            },
            "defaultVariant": "grid",
        }))
        .await;
    for flag in ["dark-mode", "banner", "max-items", "ratio", "layout"] {
        server.enable(flag).await;
    }
}

#[tokio::test]
async fn every_type_resolves_through_the_openfeature_api() {
    // The OpenFeature API is a process-wide singleton. This is the only test that uses
    // it, and each backend binds its provider to a name of its own.
    for (index, backend) in backends().into_iter().enumerate() {
        let server = TestServer::start(&backend).await;
        make_flags(&server).await;
        let client = capstan_sdk::Client::builder(&server.address, server.sdk_token().await)
            .build()
            .await;
        let provider = CapstanProvider::new(client.clone());
        assert_eq!(provider.status(), ProviderStatus::Ready);
        let name = format!("capstan-{index}");
        let flags = {
            let mut api = OpenFeature::singleton_mut().await;
            api.set_named_provider(&name, provider).await;
            let metadata = api.named_provider_metadata(&name).await;
            assert_eq!(
                metadata.map(|metadata| metadata.name).as_deref(),
                Some("capstan")
            );
            api.create_named_client(&name)
        };
        let anyone = EvaluationContext::default().with_targeting_key("user-1");

        let dark_mode = flags
            .get_bool_details("dark-mode", Some(&anyone), None)
            .await
            .unwrap();
        assert!(dark_mode.value);
        assert_eq!(dark_mode.variant.as_deref(), Some("on"));
        assert_eq!(dark_mode.reason, Some(EvaluationReason::Static));

        // A rule on a plain attribute: matched, then not.
        let insider = anyone.clone().with_custom_field("email", "ada@example.com");
        let banner = flags
            .get_string_details("banner", Some(&insider), None)
            .await
            .unwrap();
        assert_eq!(banner.value, "Happy holidays");
        assert_eq!(banner.variant.as_deref(), Some("festive"));
        assert_eq!(banner.reason, Some(EvaluationReason::TargetingMatch));
        let outsider = anyone
            .clone()
            .with_custom_field("email", "bob@elsewhere.org");
        let banner = flags
            .get_string_details("banner", Some(&outsider), None)
            .await
            .unwrap();
        assert_eq!(banner.value, "Welcome");
        assert_eq!(banner.reason, Some(EvaluationReason::Default));

        // A rule on a field of a struct in the context.
        let pro = anyone.clone().with_custom_field(
            "account",
            EvaluationContextFieldValue::new_struct(
                StructValue::default().with_field("plan", "pro"),
            ),
        );
        let items = flags
            .get_int_details("max-items", Some(&pro), None)
            .await
            .unwrap();
        assert_eq!(items.value, 100);
        assert_eq!(items.variant.as_deref(), Some("many"));
        assert_eq!(items.reason, Some(EvaluationReason::TargetingMatch));
        let items = flags
            .get_int_details("max-items", Some(&anyone), None)
            .await
            .unwrap();
        assert_eq!(items.value, 10);
        assert_eq!(items.reason, Some(EvaluationReason::Default));
        let items = flags
            .get_float_details("max-items", Some(&pro), None)
            .await
            .unwrap();
        assert_eq!(items.value, 100.0);

        let ratio = flags
            .get_float_details("ratio", Some(&anyone), None)
            .await
            .unwrap();
        assert_eq!(ratio.value, 0.5);
        assert_eq!(ratio.variant.as_deref(), Some("half"));
        // 0.5 is no integer: converting it would change the value.
        let error = flags
            .get_int_details("ratio", Some(&anyone), None)
            .await
            .unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::TypeMismatch);

        let layout = flags
            .get_struct_details::<StructValue>("layout", Some(&anyone), None)
            .await
            .unwrap();
        let expected = StructValue::default()
            .with_field("columns", 3)
            .with_field("dense", true)
            .with_field(
                "sizes",
                Value::Array(vec![Value::Int(1), Value::Float(2.5)]),
            )
            .with_field("theme", StructValue::default().with_field("name", "dark"));
        assert_eq!(layout.value, expected);
        assert_eq!(layout.variant.as_deref(), Some("grid"));
        assert_eq!(layout.reason, Some(EvaluationReason::Static));

        // A flag of another type, and a flag that does not exist: errors, and the
        // caller's default applies.
        let error = flags
            .get_bool_details("banner", Some(&anyone), None)
            .await
            .unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::TypeMismatch);
        let error = flags
            .get_string_details("no-such-flag", Some(&anyone), None)
            .await
            .unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::FlagNotFound);
        assert_eq!(error.code.to_string(), "FLAG_NOT_FOUND");
        let value = flags
            .get_string_value("no-such-flag", Some(&anyone), None)
            .await
            .unwrap_or_else(|_| "the default".to_owned());
        assert_eq!(value, "the default");

        // A flip on the server, seen live without asking the server again.
        let off = flags
            .get_bool_details("new-checkout", Some(&anyone), None)
            .await
            .unwrap();
        assert!(!off.value);
        assert_eq!(off.reason, Some(EvaluationReason::Disabled));
        server.enable("new-checkout").await;
        let seen = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                // Subscribe before looking, so a change between the two is not missed.
                let changed = client.status_changed();
                let details = flags
                    .get_bool_details("new-checkout", Some(&anyone), None)
                    .await
                    .unwrap();
                if details.value {
                    return details;
                }
                changed.await;
            }
        })
        .await
        .expect("the flip did not arrive within 10 s");
        assert_eq!(seen.variant.as_deref(), Some("on"));
        assert_eq!(seen.reason, Some(EvaluationReason::Static));

        client.close().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn a_provider_without_a_configuration_is_not_ready() {
    // A server that accepts connections and never answers: the client gives up waiting
    // for its first configuration after the initial timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", silent.local_addr().unwrap());
    let client = capstan_sdk::Client::builder(address, "cps_unused")
        .initial_timeout(Duration::from_millis(100))
        .build()
        .await;
    let provider = CapstanProvider::new(client.clone());
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    let error = provider
        .resolve_bool_value("anything", &EvaluationContext::default())
        .await
        .unwrap_err();
    assert_eq!(error.code, EvaluationErrorCode::ProviderNotReady);
    client.close().await;
}
