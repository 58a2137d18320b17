//! What local evaluation through the SDK costs on top of the engine: `Client::bool_value`
//! against `CompiledEnvironment::evaluate` on the same flag, the same context and the same
//! configuration (the server's SDK document, compiled the way the client compiles it),
//! with exposure tracking off and on.
//!
//! The client needs a server: a real one runs in this process on a temporary SQLite
//! file, on one runtime worker thread (the benchmark loop has the other core), and the
//! flags are created through its API. With exposures on, the client's background task
//! sends what it buffers once a second, so that cost is in the figure too.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use capstan_flags::{CompiledEnvironment, EvaluationContext, FlagdDocument};
use capstan_sdk::Client;
use capstan_server::core::clock::SystemClock;
use capstan_server::{RunningServer, ServeConfig};
use clap::{Args, FromArgMatches};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

const ADMIN_TOKEN: &str = "cps_benchmark_admin_0123456789abcdefghijk";

/// Unix seconds handed to the engine; neither flag reads the time.
const NOW: i64 = 1_700_000_000;

/// The server, its database, and an sdk key for production.
struct Fixture {
    _directory: tempfile::TempDir,
    server: RunningServer,
    url: String,
    sdk_key: String,
}

async fn call(request: reqwest::RequestBuilder) -> Value {
    let response = request
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("the benchmark server answers");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "HTTP {status}: {body}");
    body
}

/// The server's configuration as `capstan serve` would parse these options, every other
/// setting at its default.
fn serve_config(options: &[&str]) -> ServeConfig {
    let command = ServeConfig::augment_args(clap::Command::new("serve"));
    let matches = command
        .try_get_matches_from(std::iter::once("serve").chain(options.iter().copied()))
        .expect("valid server options");
    ServeConfig::from_arg_matches(&matches).expect("a server configuration")
}

impl Fixture {
    async fn start() -> Fixture {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let database = directory.path().join("capstan.db");
        let config = serve_config(&[
            "--listen",
            "127.0.0.1:0",
            "--database",
            &database.to_string_lossy(),
            "--bootstrap-token",
            ADMIN_TOKEN,
            "--rate-limit-per-second",
            "0",
            "--scheduler-interval-ms",
            "0",
        ]);
        let server = capstan_server::start(&config, Arc::new(SystemClock))
            .await
            .expect("the benchmark server starts");
        let url = format!("http://{}", server.address);
        let http = reqwest::Client::new();
        let flags = format!("{url}/api/v1/projects/default/flags");
        let production = format!("{url}/api/v1/projects/default/environments/production/flags");
        for key in ["no-rules", "one-rule"] {
            call(http.post(&flags).json(&json!({ "key": key }))).await;
            call(http.post(format!("{production}/{key}/enable"))).await;
        }
        call(http.patch(format!("{production}/one-rule")).json(&json!({
            "targeting": {"if": [{"in": [{"var": "userId"}, ["7"]]}, "on", "off"]},
            "defaultVariant": "off",
        })))
        .await;
        let token = call(http.post(format!("{url}/api/v1/tokens")).json(&json!({
            "name": "benchmark", "role": "sdk", "environment": "production",
        })))
        .await;
        Fixture {
            _directory: directory,
            server,
            sdk_key: token["token"].as_str().expect("a token").to_owned(),
            url,
        }
    }

    /// The engine the client holds: the SDK document's flagd part, compiled.
    async fn engine(&self) -> CompiledEnvironment {
        let document: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/sdk/config", self.url))
            .bearer_auth(&self.sdk_key)
            .send()
            .await
            .expect("the configuration")
            .json()
            .await
            .expect("the configuration is JSON");
        let mut flagd = Map::new();
        for field in ["flags", "$evaluators", "metadata"] {
            if let Some(value) = document.get(field) {
                flagd.insert(field.to_owned(), value.clone());
            }
        }
        let document = FlagdDocument::parse(&Value::Object(flagd)).expect("a flagd document");
        CompiledEnvironment::compile(&document).expect("the configuration compiles")
    }
}

fn context() -> EvaluationContext {
    let Value::Object(attributes) = json!({
        "userId": "7",
        "country": "NO",
        "email": "user@example.com",
        "appVersion": "2.4.1",
        "age": 30,
        "plan": "pro",
        "device": "ios",
        "locale": "nb-NO",
    }) else {
        unreachable!("an object literal")
    };
    EvaluationContext::new(Some("user-7@example.com".into()), attributes)
}

fn local_evaluation(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let fixture = runtime.block_on(Fixture::start());
    let engine = runtime.block_on(fixture.engine());
    let client = |track_exposures: bool| {
        runtime.block_on(
            Client::builder(&fixture.url, &fixture.sdk_key)
                .track_exposures(track_exposures)
                .build(),
        )
    };
    let quiet = client(false);
    let tracking = client(true);
    let context = context();

    let mut group = criterion.benchmark_group("sdk local evaluation");
    // For scale: the client reads the clock once per evaluation (for exposures'
    // timestamps and the engine's `$flagd.timestamp`).
    group.bench_function("for scale: SystemTime::now", |bencher| {
        bencher.iter(std::time::SystemTime::now)
    });
    for (name, key, expected) in [
        ("flag without rules", "no-rules", true),
        ("one in rule", "one-rule", true),
    ] {
        let resolution = engine.evaluate(key, &context, NOW);
        assert_eq!(resolution.value, Some(&Value::Bool(expected)), "{key}");
        for client in [&quiet, &tracking] {
            let details = client.bool_details(key, &context, !expected);
            assert_eq!(
                (details.value, details.error_code),
                (expected, None),
                "{key}"
            );
        }
        group.bench_function(format!("{name}: engine evaluate"), |bencher| {
            bencher.iter(|| {
                engine
                    .evaluate(black_box(key), black_box(&context), NOW)
                    .variant
            })
        });
        group.bench_function(
            format!("{name}: sdk bool_value, exposures off"),
            |bencher| bencher.iter(|| quiet.bool_value(black_box(key), black_box(&context), false)),
        );
        group.bench_function(format!("{name}: sdk bool_value, exposures on"), |bencher| {
            bencher.iter(|| tracking.bool_value(black_box(key), black_box(&context), false))
        });
    }
    group.finish();

    let dropped = tracking.status().dropped_events;
    drop((quiet, tracking));
    runtime
        .block_on(fixture.server.shutdown())
        .expect("the benchmark server stops");
    // Exposures past the client's buffer (10,000) are dropped between sends; say so, as
    // the figure with exposures on includes that.
    eprintln!("exposures dropped by the client's bounded buffer during the run: {dropped}");
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = local_evaluation
}
criterion_main!(benches);
