//! Guarded rollouts end to end: the real server process drives the rollout on its own
//! clock; a real SDK evaluates the flag, sends exposures and metrics, and sees the
//! outcome through its live stream; a webhook receiver gets signed messages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use capstan_sdk::{Client, EvaluationContext, Reason};
use serde_json::Value;

use crate::process::{ServerProcess, ok};

type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A webhook receiver on a random loopback port; `arrived` wakes whoever waits.
async fn receiver() -> (String, Received, Arc<tokio::sync::Notify>) {
    let received: Received = Arc::default();
    let arrived = Arc::new(tokio::sync::Notify::new());
    let (kept, wake) = (received.clone(), arrived.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (kept, wake) = (kept.clone(), wake.clone());
            async move {
                kept.lock().unwrap().push((headers, body));
                wake.notify_waiters();
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received, arrived)
}

fn context(unit: usize) -> EvaluationContext {
    EvaluationContext::new(Some(format!("user-{unit}")), Default::default())
}

/// Each unit evaluates the flag through the SDK (which records the exposure) and makes
/// four requests, each tracked as `error` (failed or not) and `latency_ms`.
async fn traffic(
    client: &Client,
    flag: &str,
    units: std::ops::Range<usize>,
    fails: impl Fn(bool, usize) -> bool,
) {
    for unit in units {
        let treated = client.bool_value(flag, &context(unit), false);
        let key = format!("user-{unit}");
        for request in 0..4 {
            let n = unit * 4 + request;
            client.track("error", &key, if fails(treated, n) { 1.0 } else { 0.0 });
            client.track("latency_ms", &key, 80.0 + (n * 13 % 40) as f64);
        }
    }
    client.flush().await.expect("events delivered");
}

fn status(server: &str, id: &str) -> Value {
    serde_json::from_str(&ok(server, &["rollouts", "status", id, "--json"])).unwrap()
}

/// Sends traffic (with `more`) until the rollout reaches `wanted`; at most 30 s, past
/// which the test has failed.
async fn until_status(server: &str, id: &str, wanted: &str, mut more: impl AsyncFnMut()) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let current = status(server, id);
        if current["status"] == wanted {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout {id} never became {wanted}: {current}"
        );
        more().await;
    }
}

#[tokio::test]
async fn a_bad_treatment_reverts_and_a_good_one_reaches_everyone() {
    for backend in capstan_store::testing::backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let server = ServerProcess::start_with(
            &database.url,
            "127.0.0.1:0",
            &["--rollout-interval-ms", "50"],
        );
        let url = server.url.as_str();
        for flag in ["new-checkout", "new-search"] {
            ok(url, &["flags", "create", flag, "--default-variant", "off"]);
            ok(url, &["flags", "enable", flag, "--env", "production"]);
        }
        let (hook, received, arrived) = receiver().await;
        let webhook: Value = serde_json::from_str(&ok(
            url,
            &[
                "webhooks",
                "create",
                "--url",
                &hook,
                "--events",
                "rollout.started,rollout.reverted,rollout.promoted",
                "--json",
            ],
        ))
        .unwrap();
        let secret = webhook["secret"].as_str().unwrap().to_owned();
        let key = ok(
            url,
            &[
                "tokens",
                "create",
                "--name",
                "app",
                "--role",
                "sdk",
                "--env",
                "production",
            ],
        );
        let client = Client::builder(url, key.trim())
            .initial_timeout(Duration::from_secs(5))
            .build()
            .await;

        // A bad treatment: a third of its requests fail.
        let started: Value = serde_json::from_str(&ok(
            url,
            &[
                "rollouts",
                "start",
                "--flag",
                "new-checkout",
                "--env",
                "production",
                "--to",
                "on",
                "--steps",
                "50,100",
                "--step-duration",
                "0s",
                "--step-units",
                "10",
                "--json",
            ],
        ))
        .unwrap();
        let bad = started["id"].to_string();
        // The SDK hears of the split before it sends traffic.
        let split = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let next = client.changed();
                if client
                    .bool_details("new-checkout", &context(0), false)
                    .reason
                    == Reason::Split
                {
                    break;
                }
                next.await;
            }
        })
        .await;
        assert!(split.is_ok(), "the SDK never saw the split");
        traffic(&client, "new-checkout", 0..400, |treated, n| {
            if treated { n % 3 == 0 } else { n % 100 == 0 }
        })
        .await;
        // The SDK hears of the revert through its live stream: everyone is back on the
        // control. The rollout's state commits with the flag change, so it says why.
        let back = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let next = client.changed();
                if (0..100).all(|unit| {
                    let details = client.bool_details("new-checkout", &context(unit), true);
                    !details.value && details.reason == Reason::Static
                }) {
                    break;
                }
                next.await;
            }
        })
        .await;
        assert!(back.is_ok(), "the SDK still sees the treatment");
        let reverted = status(url, &bad);
        assert_eq!(reverted["status"], "reverted", "{reverted}");
        assert!(
            reverted["reason"]
                .as_str()
                .unwrap()
                .starts_with("Reverted because error mean"),
            "{reverted}"
        );

        let shown = ok(url, &["rollouts", "status", &bad]);
        for expected in [
            "status: reverted at 0%",
            "why: Reverted because error mean",
            "GUARDRAIL",
            "error mean",
            "worse",
            "UNITS C/T",
        ] {
            assert!(
                shown.contains(expected),
                "{expected:?} missing from:\n{shown}"
            );
        }

        // A good treatment: it fails nothing, the control 2%.
        let started: Value = serde_json::from_str(&ok(
            url,
            &[
                "rollouts",
                "start",
                "--flag",
                "new-search",
                "--env",
                "production",
                "--to",
                "on",
                "--steps",
                "20,50,100",
                "--step-duration",
                "0s",
                "--step-units",
                "20",
                "--json",
            ],
        ))
        .unwrap();
        let good = started["id"].to_string();
        let mut next_unit = 1_000;
        let promoted = until_status(url, &good, "promoted", async || {
            traffic(
                &client,
                "new-search",
                next_unit..next_unit + 300,
                |treated, n| !treated && n % 50 == 0,
            )
            .await;
            next_unit += 300;
        })
        .await;
        assert_eq!(promoted["percent"], 100.0);
        let timeline = promoted["timeline"].as_array().unwrap();
        assert_eq!(timeline.len(), 2, "{promoted}");
        let everyone = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let next = client.changed();
                if client.bool_value("new-search", &context(5), false) {
                    break;
                }
                next.await;
            }
        })
        .await;
        assert!(everyone.is_ok(), "the SDK never saw the promotion");
        let listed = ok(url, &["rollouts", "list"]);
        assert!(
            listed.contains("reverted") && listed.contains("promoted"),
            "{listed}"
        );

        // Signed messages: two starts, a revert and a promotion.
        let delivered = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let next = arrived.notified();
                if received.lock().unwrap().len() >= 4 {
                    break;
                }
                next.await;
            }
        })
        .await;
        assert!(
            delivered.is_ok(),
            "webhooks: {:?}",
            received.lock().unwrap().len()
        );
        let messages = received.lock().unwrap().clone();
        let mut events: Vec<String> = messages
            .iter()
            .map(|(headers, _)| headers["x-capstan-event"].to_str().unwrap().to_owned())
            .collect();
        events.sort();
        assert_eq!(
            events,
            [
                "rollout.promoted",
                "rollout.reverted",
                "rollout.started",
                "rollout.started"
            ]
        );
        for (headers, body) in &messages {
            let signed = headers["x-capstan-signature"].to_str().unwrap();
            let timestamp: i64 = signed[2..signed.find(',').unwrap()].parse().unwrap();
            assert_eq!(
                signed,
                capstan_server::webhooks::signature(&secret, timestamp, body.as_bytes())
            );
            let message: Value = serde_json::from_str(body).unwrap();
            assert!(message["text"].is_string(), "{message}");
        }
        client.close().await;
    }
}
