use std::sync::Arc;

use capstan_server::core::clock::ManualClock;
use capstan_server::{RunningServer, ServeConfig};
use capstan_store::testing::{TestBackend, TestDatabase, backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) const ADMIN_TOKEN: &str = "cps_test_admin_token_0123456789abcdefghij";

/// A running server with its own database and a clock the test moves.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) http: reqwest::Client,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) server: Option<RunningServer>,
    pub(crate) database: TestDatabase,
}

/// What a test may change about the server it starts.
/// Rate limiting is off unless a test turns it on.
#[derive(Clone, Default)]
pub(crate) struct Options {
    pub(crate) rate_limit_per_second: u32,
    pub(crate) rate_limit_burst: u32,
    /// Seconds between keep-alive comments on idle streams; 0 keeps the default (15).
    pub(crate) sse_keep_alive_seconds: u64,
}

/// A fixed start time, so tests are exact; the clock moves only when a test moves it.
pub(crate) const START_MS: i64 = 1_795_000_000_000;

pub(crate) fn config(database: &str, options: &Options) -> ServeConfig {
    ServeConfig {
        config: None,
        listen: "127.0.0.1:0".to_owned(),
        database: database.to_owned(),
        bootstrap_token: Some(ADMIN_TOKEN.to_owned().into()),
        rate_limit_per_second: options.rate_limit_per_second,
        rate_limit_burst: options.rate_limit_burst,
        rotation_grace_seconds: 3_600,
        sse_keep_alive_seconds: if options.sse_keep_alive_seconds == 0 {
            15
        } else {
            options.sse_keep_alive_seconds
        },
        scheduler_interval_ms: 0,
        rollout_interval_ms: 0,
        event_retention_hours: 168,
        placement_interval_ms: 0,
    }
}

impl TestApp {
    pub(crate) async fn spawn(backend: &TestBackend) -> TestApp {
        TestApp::spawn_with(backend, Options::default()).await
    }

    pub(crate) async fn spawn_with(backend: &TestBackend, options: Options) -> TestApp {
        let database = TestDatabase::new(backend).await;
        let clock = Arc::new(ManualClock::new(START_MS));
        let server = capstan_server::start(&config(&database.url, &options), clock.clone())
            .await
            .expect("failed to start server");
        TestApp {
            address: format!("http://{}", server.address),
            http: reqwest::Client::new(),
            clock,
            server: Some(server),
            database,
        }
    }

    pub(crate) fn state(&self) -> &capstan_server::state::AppState {
        &self.server.as_ref().expect("server is running").state
    }

    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.raw(method, path, token, body, &[]).await;
        let status = response.status();
        let text = response.text().await.expect("failed to read body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub(crate) async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request failed")
    }

    pub(crate) async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.request(method, path, Some(ADMIN_TOKEN), body).await
    }

    /// Creates a flag and returns its JSON, failing the test if creation fails.
    pub(crate) async fn create_flag(&self, body: Value) -> Value {
        let (status, json) = self
            .admin(Method::POST, "/api/v1/projects/default/flags", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    pub(crate) async fn patch_config(
        &self,
        env: &str,
        flag: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        self.admin(
            Method::PATCH,
            &format!("/api/v1/projects/default/environments/{env}/flags/{flag}"),
            Some(body),
        )
        .await
    }

    pub(crate) async fn enable(&self, env: &str, flag: &str) -> Value {
        let (status, json) = self
            .admin(
                Method::POST,
                &format!("/api/v1/projects/default/environments/{env}/flags/{flag}/enable"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    }

    /// Creates a token and returns its secret.
    pub(crate) async fn token(&self, role: &str, env: Option<&str>) -> String {
        let mut body = json!({ "name": format!("{role}-token"), "role": role });
        if let Some(env) = env {
            body["environment"] = json!(env);
        }
        let (status, json) = self.admin(Method::POST, "/api/v1/tokens", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json["token"]
            .as_str()
            .expect("token in response")
            .to_owned()
    }

    /// The Prometheus text of `/metrics`.
    pub(crate) async fn metrics(&self) -> String {
        self.raw(Method::GET, "/metrics", None, None, &[])
            .await
            .text()
            .await
            .expect("metrics text")
    }

    pub(crate) async fn ofrep(
        &self,
        key: &str,
        token: &str,
        context: Value,
    ) -> (StatusCode, Value) {
        self.request(
            Method::POST,
            &format!("/ofrep/v1/evaluate/flags/{key}"),
            Some(token),
            Some(json!({ "context": context })),
        )
        .await
    }
}

/// Runs a test body once per backend, each with a fresh server and database.
#[macro_export]
macro_rules! each_backend {
    (|$app:ident| $body:block) => {
        for backend in capstan_store::testing::backends() {
            let $app = $crate::helpers::TestApp::spawn(&backend).await;
            $body
        }
    };
}

pub(crate) fn all_backends() -> Vec<TestBackend> {
    backends()
}
