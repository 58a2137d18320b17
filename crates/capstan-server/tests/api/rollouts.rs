//! Guarded rollouts through the real server: the API, the driver (ticked by the test on
//! a clock the test moves), the flag the SDKs see, the audit log and signed webhooks.

use std::sync::{Arc, Mutex};

use capstan_server::core::clock::Clock;
use capstan_server::rollouts::driver::RolloutDriver;
use capstan_server::webhooks::{Deliverer, signature};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::each_backend;
use crate::helpers::TestApp;

const ROLLOUTS: &str = "/api/v1/projects/default/rollouts";

/// A bad treatment: it fails a third of its requests; the control one in a hundred.
fn bad_treatment(variant: &str, unit: usize, request: usize) -> bool {
    let n = unit * 4 + request;
    if variant == "on" {
        n.is_multiple_of(3)
    } else {
        n.is_multiple_of(100)
    }
}

/// A boolean flag `checkout`, enabled in production, serving `off`.
async fn enabled_flag(app: &TestApp) {
    app.create_flag(json!({ "key": "checkout", "defaultVariant": "off" }))
        .await;
    app.enable("production", "checkout").await;
}

async fn start(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.admin(Method::POST, ROLLOUTS, Some(body)).await
}

async fn status(app: &TestApp, id: i64) -> Value {
    let (code, body) = app
        .admin(Method::GET, &format!("{ROLLOUTS}/{id}"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

/// What a service under test would do for `units`: evaluate the flag (over OFREP), then
/// report the exposure and, per request, an `error` (0 or 1) and a `latency_ms`.
/// `errors(variant, unit, request)` decides failures. Returns units per variant.
async fn traffic(
    app: &TestApp,
    sdk: &str,
    units: std::ops::Range<usize>,
    errors: impl Fn(&str, usize, usize) -> bool,
) -> (usize, usize) {
    let mut events = Vec::new();
    let (mut control, mut treatment) = (0, 0);
    let timestamp = capstan_server::core::clock::rfc3339(app.clock.now_ms());
    for unit in units {
        let key = format!("user-{unit}");
        let (code, body) = app
            .ofrep("checkout", sdk, json!({ "targetingKey": key }))
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let variant = body["variant"].as_str().unwrap().to_owned();
        if variant == "on" {
            treatment += 1;
        } else {
            control += 1;
        }
        events.push(json!({"kind": "exposure", "flag": "checkout", "variant": variant, "targetingKey": key, "timestamp": timestamp}));
        for request in 0..4 {
            let failed = errors(&variant, unit, request);
            events.push(json!({"kind": "metric", "metric": "error", "value": if failed { 1.0 } else { 0.0 }, "targetingKey": key, "timestamp": timestamp}));
            let latency = 80.0 + ((unit * 7 + request * 13) % 40) as f64;
            events.push(json!({"kind": "metric", "metric": "latency_ms", "value": latency, "targetingKey": key, "timestamp": timestamp}));
        }
    }
    for batch in events.chunks(2_000) {
        let (code, body) = app
            .request(
                Method::POST,
                "/api/v1/events",
                Some(sdk),
                Some(json!({ "events": batch })),
            )
            .await;
        assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    }
    (control, treatment)
}

/// A webhook receiver on a random loopback port that keeps what it gets.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>,
}

async fn receiver() -> Receiver {
    let received: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push((headers, body));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, received }
}

#[tokio::test]
async fn a_rollout_starts_by_splitting_the_default_path_and_refuses_bad_plans() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let cases = [
            (
                json!({"flag": "checkout", "environment": "production", "to": "maybe"}),
                "to",
            ),
            (
                json!({"flag": "checkout", "environment": "production", "to": "off"}),
                "to",
            ),
            (
                json!({"flag": "checkout", "environment": "production", "to": "on", "steps": [{"percent": 10}, {"percent": 5}, {"percent": 100}]}),
                "steps[1].percent",
            ),
            (
                json!({"flag": "checkout", "environment": "production", "to": "on", "steps": [{"percent": 10}]}),
                "steps",
            ),
            (
                json!({"flag": "checkout", "environment": "production", "to": "on", "guardrails": [{"metric": "plays", "statistic": "median"}]}),
                "guardrails[0].statistic",
            ),
            (
                json!({"flag": "checkout", "environment": "production", "to": "on", "guardrails": [{"metric": "plays", "response": "panic"}]}),
                "guardrails[0].response",
            ),
            (
                json!({"flag": "checkout", "environment": "production", "to": "on", "falseRevertRate": 2}),
                "falseRevertRate",
            ),
            (
                json!({"flag": "checkout", "environment": "production", "to": "on", "speed": 3}),
                "speed",
            ),
        ];
        for (body, field) in cases {
            let (code, error) = start(&app, body.clone()).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {error}");
            assert!(
                error["field"].as_str().unwrap_or_default().contains(field)
                    || error["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(field),
                "{body}: {error}"
            );
        }
        let (code, error) = start(
            &app,
            json!({"flag": "nope", "environment": "production", "to": "on"}),
        )
        .await;
        assert_eq!(
            (code, error["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
        // Nothing was half started: the flag is as it was.
        let (_, flag) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/production/flags/checkout",
                None,
            )
            .await;
        assert!(flag.get("targeting").is_none_or(Value::is_null), "{flag}");

        let (code, rollout) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on"}),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{rollout}");
        assert_eq!(
            (rollout["status"].as_str(), rollout["percent"].as_f64()),
            (Some("running"), Some(1.0))
        );
        assert_eq!(
            (rollout["control"].as_str(), rollout["treatment"].as_str()),
            (Some("off"), Some("on"))
        );
        assert_eq!(rollout["plan"]["guardrails"].as_array().unwrap().len(), 3);
        assert_eq!(rollout["timeline"][0]["percent"], 1.0);
        let (_, flag) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/production/flags/checkout",
                None,
            )
            .await;
        assert_eq!(
            flag["targeting"],
            json!({"fractional": [["off", 9900], ["on", 100]]}),
            "{flag}"
        );

        // About 1% of units see the treatment, reported as a split.
        let sdk = app.token("sdk", Some("production")).await;
        let mut treated = 0;
        for unit in 0..2_000 {
            let (_, body) = app
                .ofrep(
                    "checkout",
                    &sdk,
                    json!({ "targetingKey": format!("user-{unit}") }),
                )
                .await;
            assert_eq!(body["reason"], "SPLIT", "{body}");
            treated += (body["variant"] == "on") as usize;
        }
        assert!(
            (5..=45).contains(&treated),
            "{treated} of 2000 treated at 1%"
        );

        // One active rollout per flag and environment.
        let (code, error) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on"}),
        )
        .await;
        assert_eq!(
            (code, error["code"].as_str()),
            (StatusCode::CONFLICT, Some("already_exists")),
            "{error}"
        );
        let (_, listed) = app
            .admin(Method::GET, &format!("{ROLLOUTS}?active=true"), None)
            .await;
        assert_eq!(listed["rollouts"].as_array().unwrap().len(), 1);
    });
}

#[tokio::test]
async fn a_bad_treatment_is_reverted_with_evidence_audit_and_signed_webhooks() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let hook = receiver().await;
        let (code, webhook) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/webhooks",
                Some(json!({ "url": hook.url })),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{webhook}");
        let secret = webhook["secret"].as_str().unwrap().to_owned();
        let (_, rollout) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on",
                   "steps": [{"percent": 50, "minDurationSeconds": 600, "minUnits": 10}, {"percent": 100}]}),
        )
        .await;
        let id = rollout["id"].as_i64().unwrap();
        let sdk = app.token("sdk", Some("production")).await;
        let (control, treatment) = traffic(&app, &sdk, 0..400, bad_treatment).await;
        assert!(control > 100 && treatment > 100, "{control} / {treatment}");
        let mut driver = RolloutDriver::new(10_000);
        let report = driver.tick(&app.state().flags).await.unwrap();
        assert!(report.leading);
        assert_eq!(
            report.transitions,
            vec![(id, "Revert".to_owned())],
            "{report:?}"
        );
        let metrics = app.metrics().await;
        for line in [
            "capstan_rollout_driver_leader 1",
            "capstan_rollouts_active 1",
            "capstan_rollout_transitions_total{kind=\"revert\"} 1",
        ] {
            assert!(metrics.contains(line), "{line} missing from {metrics}");
        }

        let body = status(&app, id).await;
        assert_eq!(body["status"], "reverted", "{body}");
        let reason = body["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("Reverted because error mean is worse in the treatment"),
            "{reason}"
        );
        assert_eq!(
            body["timeline"][0]["unitsAtEnd"]["treatment"],
            treatment as u64
        );
        let error = body["guardrails"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["guardrail"] == "error mean")
            .unwrap();
        assert_eq!(error["verdict"], "worse");
        assert!(error["estimate"]["low"].as_f64().unwrap() > 0.0, "{error}");
        assert!(!body["buckets"].as_array().unwrap().is_empty());

        // Everyone sees the control again, as the flag served before.
        for unit in 0..50 {
            let (_, evaluation) = app
                .ofrep(
                    "checkout",
                    &sdk,
                    json!({ "targetingKey": format!("user-{unit}") }),
                )
                .await;
            assert_eq!(
                (
                    evaluation["variant"].as_str(),
                    evaluation["reason"].as_str()
                ),
                (Some("off"), Some("STATIC")),
                "{evaluation}"
            );
        }
        let (_, flag) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/production/flags/checkout",
                None,
            )
            .await;
        assert!(flag.get("targeting").is_none_or(Value::is_null), "{flag}");

        // The revert is in the audit log, by the rollout, with its evidence.
        let (_, audit) = app
            .admin(Method::GET, "/api/v1/audit?kind=rollout", None)
            .await;
        let entry = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "rollout.revert")
            .unwrap_or_else(|| panic!("{audit}"));
        assert_eq!(entry["actor"], format!("rollout:{id}"));
        assert_eq!(
            entry["after"]["evidence"]["guardrails"][0]["verdict"],
            "worse"
        );

        // Webhooks: start, revert and finish, each signed.
        let delivered = Deliverer::new(10_000)
            .tick(&app.state().core)
            .await
            .unwrap();
        assert_eq!(delivered, 3);
        let received = hook.received.lock().unwrap().clone();
        let events: Vec<&str> = received
            .iter()
            .map(|(headers, _)| headers["x-capstan-event"].to_str().unwrap())
            .collect();
        assert_eq!(
            events,
            vec!["rollout.started", "rollout.reverted", "rollout.finished"]
        );
        for (headers, body) in &received {
            let signed = headers["x-capstan-signature"].to_str().unwrap();
            let timestamp: i64 = signed
                .strip_prefix("t=")
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(signed, signature(&secret, timestamp, body.as_bytes()));
            let message: Value = serde_json::from_str(body).unwrap();
            assert!(
                message["text"].as_str().unwrap().contains("checkout"),
                "{message}"
            );
            assert_eq!(message["rollout"]["id"], id);
        }
        let (_, deliveries) = app
            .admin(
                Method::GET,
                &format!(
                    "/api/v1/projects/default/webhooks/{}/deliveries",
                    webhook["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert!(
            deliveries["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] == "delivered"),
            "{deliveries}"
        );
    });
}

#[tokio::test]
async fn a_good_treatment_steps_up_to_everyone() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let (_, rollout) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on",
                   "steps": [{"percent": 20, "minDurationSeconds": 60, "minUnits": 20},
                             {"percent": 50, "minDurationSeconds": 60, "minUnits": 20},
                             {"percent": 100}]}),
        )
        .await;
        let id = rollout["id"].as_i64().unwrap();
        let sdk = app.token("sdk", Some("production")).await;
        let mut driver = RolloutDriver::new(3_600_000);
        let mut next_unit = 0;
        let mut actions = Vec::new();
        for _ in 0..8 {
            // The control fails 2% of requests, the treatment none.
            traffic(
                &app,
                &sdk,
                next_unit..next_unit + 500,
                |variant, unit, request| variant == "off" && (unit * 4 + request) % 50 == 0,
            )
            .await;
            next_unit += 500;
            app.clock.advance(61_000);
            let report = driver.tick(&app.state().flags).await.unwrap();
            actions.extend(report.transitions.into_iter().map(|(_, action)| action));
            if status(&app, id).await["status"] == "promoted" {
                break;
            }
        }
        assert_eq!(
            actions,
            vec!["Advance { step: 1 }".to_owned(), "Promote".to_owned()]
        );
        let body = status(&app, id).await;
        assert_eq!(
            (body["status"].as_str(), body["percent"].as_f64()),
            (Some("promoted"), Some(100.0))
        );
        let timeline = body["timeline"].as_array().unwrap();
        assert_eq!(timeline.len(), 2);
        assert!(
            timeline
                .iter()
                .all(|step| step["endedAt"].is_string() && step["outcome"].is_string()),
            "{body}"
        );
        let (_, evaluation) = app
            .ofrep("checkout", &sdk, json!({ "targetingKey": "anyone" }))
            .await;
        assert_eq!(
            (
                evaluation["variant"].as_str(),
                evaluation["reason"].as_str()
            ),
            (Some("on"), Some("STATIC"))
        );
        let (_, listed) = app.admin(Method::GET, ROLLOUTS, None).await;
        assert_eq!(listed["rollouts"][0]["status"], "promoted");
    });
}

#[tokio::test]
async fn too_little_traffic_holds_then_pauses_at_the_deadline() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let (_, rollout) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on", "decisionDeadlineSeconds": 3600}),
        )
        .await;
        let id = rollout["id"].as_i64().unwrap();
        let mut driver = RolloutDriver::new(3_600_000);
        app.clock.advance(11 * 60_000);
        assert!(
            driver
                .tick(&app.state().flags)
                .await
                .unwrap()
                .transitions
                .is_empty()
        );
        let body = status(&app, id).await;
        assert_eq!(body["status"], "running");
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .starts_with("Holding at 1%"),
            "{body}"
        );
        app.clock.advance(3_600_000);
        let report = driver.tick(&app.state().flags).await.unwrap();
        assert_eq!(report.transitions, vec![(id, "Pause".to_owned())]);
        let body = status(&app, id).await;
        assert_eq!(body["status"], "paused");
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .starts_with("Paused after 1h11m without a decision"),
            "{body}"
        );
        // Resuming restarts the step's clock, so it does not pause again at once.
        let (code, resumed) = app
            .admin(Method::POST, &format!("{ROLLOUTS}/{id}/resume"), None)
            .await;
        assert_eq!(
            (code, resumed["status"].as_str()),
            (StatusCode::OK, Some("running")),
            "{resumed}"
        );
        assert!(
            driver
                .tick(&app.state().flags)
                .await
                .unwrap()
                .transitions
                .is_empty()
        );
    });
}

#[tokio::test]
async fn humans_pause_resume_promote_and_abort() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let (_, rollout) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on"}),
        )
        .await;
        let id = rollout["id"].as_i64().unwrap();
        let steer = |action: &'static str, body: Option<Value>| {
            let app = &app;
            async move {
                app.admin(Method::POST, &format!("{ROLLOUTS}/{id}/{action}"), body)
                    .await
            }
        };
        let (code, error) = steer("resume", None).await;
        assert_eq!(
            (code, error["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("action")),
            "{error}"
        );
        let (_, paused) = steer("pause", Some(json!({"reason": "checking a dashboard"}))).await;
        assert_eq!(paused["status"], "paused");
        assert_eq!(
            paused["reason"], "Paused by bootstrap-admin: checking a dashboard.",
            "{paused}"
        );
        // A paused rollout holds: the driver leaves it alone.
        let mut driver = RolloutDriver::new(3_600_000);
        app.clock.advance(48 * 3_600_000);
        assert!(
            driver
                .tick(&app.state().flags)
                .await
                .unwrap()
                .transitions
                .is_empty()
        );
        let (_, resumed) = steer("resume", None).await;
        assert_eq!(resumed["status"], "running");
        let (_, promoted) = steer("promote", None).await;
        assert_eq!(
            (promoted["percent"].as_f64(), promoted["step"].as_i64()),
            (Some(5.0), Some(1)),
            "{promoted}"
        );
        let (_, flag) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/production/flags/checkout",
                None,
            )
            .await;
        assert_eq!(flag["targeting"]["fractional"][1], json!(["on", 500]));
        let (_, aborted) = steer("abort", None).await;
        assert_eq!(aborted["status"], "reverted");
        let (_, flag) = app
            .admin(
                Method::GET,
                "/api/v1/projects/default/environments/production/flags/checkout",
                None,
            )
            .await;
        assert_eq!(flag["defaultVariant"], "off");
        assert!(flag.get("targeting").is_none_or(Value::is_null), "{flag}");
        let (code, _) = steer("pause", None).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        let (code, error) = app
            .admin(Method::POST, &format!("{ROLLOUTS}/abc/pause"), None)
            .await;
        assert_eq!(
            (code, error["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("id"))
        );
        let (code, _) = app
            .admin(Method::GET, &format!("{ROLLOUTS}/999"), None)
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
    });
}

#[tokio::test]
async fn a_flag_changed_behind_the_rollouts_back_pauses_it() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let (_, rollout) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on"}),
        )
        .await;
        let id = rollout["id"].as_i64().unwrap();
        let (code, _) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/environments/production/flags/checkout/disable",
                None,
            )
            .await;
        assert_eq!(code, StatusCode::OK);
        let mut driver = RolloutDriver::new(3_600_000);
        let report = driver.tick(&app.state().flags).await.unwrap();
        assert_eq!(report.transitions, vec![(id, "pause".to_owned())]);
        let body = status(&app, id).await;
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .contains("changed outside the rollout"),
            "{body}"
        );
    });
}

#[tokio::test]
async fn a_rollout_survives_a_restart_and_one_replica_drives_it() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let (_, rollout) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on",
                   "steps": [{"percent": 50, "minDurationSeconds": 600, "minUnits": 10}, {"percent": 100}]}),
        )
        .await;
        let id = rollout["id"].as_i64().unwrap();
        let sdk = app.token("sdk", Some("production")).await;
        // Half the traffic arrives while the first driver leads; it holds.
        let bad = bad_treatment;
        traffic(&app, &sdk, 0..30, bad).await;
        let mut first = RolloutDriver::new(10_000);
        let mut second = RolloutDriver::new(10_000);
        let report = first.tick(&app.state().flags).await.unwrap();
        assert!(
            report.leading && report.transitions.is_empty(),
            "{report:?}"
        );
        assert!(
            !second.tick(&app.state().flags).await.unwrap().leading,
            "one driver at a time"
        );

        // The first driver dies (dropped with what it had in memory). The server restarts
        // on the same database, the rest of the traffic arrives, and once the lease
        // expires the second driver takes over, rebuilds from the stored events and reverts.
        drop(first);
        let restarted = capstan_server::start(
            &crate::helpers::config(&app.database.url, &Default::default()),
            app.clock.clone(),
        )
        .await
        .unwrap();
        traffic(&app, &sdk, 30..400, bad).await;
        assert!(
            !second.tick(&restarted.state.flags).await.unwrap().leading,
            "the lease is still held"
        );
        app.clock.advance(10_001);
        let report = second.tick(&restarted.state.flags).await.unwrap();
        assert!(report.leading);
        assert!(
            report.events_read == 400 * 9,
            "rebuilt from every stored event: {report:?}"
        );
        assert_eq!(report.transitions, vec![(id, "Revert".to_owned())]);
        let body = status(&app, id).await;
        assert_eq!(body["status"], "reverted");
    });
}

#[tokio::test]
async fn a_notify_guardrail_tells_people_and_the_rollout_carries_on() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let (_, rollout) = start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on",
                   "steps": [{"percent": 50, "minDurationSeconds": 0, "minUnits": 10}, {"percent": 100}],
                   "defaultGuardrails": false,
                   "guardrails": [{"metric": "error", "response": "notify", "tolerance": {"relative": 0.5, "absolute": 0.0025}}]}),
        )
        .await;
        let id = rollout["id"].as_i64().unwrap();
        let sdk = app.token("sdk", Some("production")).await;
        traffic(&app, &sdk, 0..400, bad_treatment).await;
        let mut driver = RolloutDriver::new(10_000);
        let report = driver.tick(&app.state().flags).await.unwrap();
        assert_eq!(
            report.transitions,
            vec![(id, "notify".to_owned()), (id, "Promote".to_owned())]
        );
        let (_, audit) = app
            .admin(Method::GET, "/api/v1/audit?kind=rollout", None)
            .await;
        let notified = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "rollout.notify")
            .unwrap();
        assert!(
            notified["after"]["reason"]
                .as_str()
                .unwrap()
                .contains("error mean"),
            "{notified}"
        );
        assert_eq!(status(&app, id).await["status"], "promoted");
    });
}

#[tokio::test]
async fn retention_deletes_old_raw_events_but_not_an_active_rollouts() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        let sdk = app.token("sdk", Some("production")).await;
        let event = |at_ms: i64, key: &str| {
            json!({"kind": "metric", "metric": "error", "value": 0, "targetingKey": key,
                   "timestamp": capstan_server::core::clock::rfc3339(at_ms)})
        };
        let now = app.clock.now_ms();
        let old = event(now - 200 * 3_600_000, "old");
        let recent = event(now - 3_600_000, "recent");
        let (code, _) = app
            .request(
                Method::POST,
                "/api/v1/events",
                Some(&sdk),
                Some(json!({ "events": [old, recent] })),
            )
            .await;
        assert_eq!(code, StatusCode::ACCEPTED);
        let stored = || async {
            let project = capstan_model::ProjectKey::parse("default").unwrap();
            let production = capstan_model::EnvironmentKey::parse("production").unwrap();
            let events = app
                .state()
                .core
                .store
                .list_events(&project, &production, 0, 100)
                .await
                .unwrap();
            events
                .into_iter()
                .map(|(_, e)| e.targeting_key)
                .collect::<Vec<_>>()
        };
        let mut driver = RolloutDriver::new(3_600_000);
        driver.tick(&app.state().flags).await.unwrap();
        assert_eq!(
            stored().await,
            vec!["recent"],
            "kept for 168 hours by default"
        );

        // An active rollout keeps its events however long it runs.
        start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on"}),
        )
        .await;
        let during = event(now + 60_000, "during");
        app.request(
            Method::POST,
            "/api/v1/events",
            Some(&sdk),
            Some(json!({ "events": [during] })),
        )
        .await;
        app.clock.advance(300 * 3_600_000);
        driver.tick(&app.state().flags).await.unwrap();
        assert_eq!(stored().await, vec!["recent", "during"]);
    });
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_backoff() {
    each_backend!(|app| {
        enabled_flag(&app).await;
        // A receiver that fails its first call.
        let calls = Arc::new(Mutex::new(0));
        let counted = calls.clone();
        let receiver = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let counted = counted.clone();
                async move {
                    let mut calls = counted.lock().unwrap();
                    *calls += 1;
                    if *calls == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, receiver).await });
        let (_, webhook) = app
            .admin(
                Method::POST,
                "/api/v1/projects/default/webhooks",
                Some(json!({ "url": url, "events": ["rollout.started"] })),
            )
            .await;
        start(
            &app,
            json!({"flag": "checkout", "environment": "production", "to": "on"}),
        )
        .await;
        let deliverer = Deliverer::new(3_600_000);
        assert_eq!(deliverer.tick(&app.state().core).await.unwrap(), 0);
        let deliveries = format!(
            "/api/v1/projects/default/webhooks/{}/deliveries",
            webhook["id"].as_str().unwrap()
        );
        let (_, listed) = app.admin(Method::GET, &deliveries, None).await;
        let delivery = &listed["deliveries"][0];
        assert_eq!(
            (delivery["status"].as_str(), delivery["attempts"].as_i64()),
            (Some("pending"), Some(1)),
            "{listed}"
        );
        assert_eq!(
            delivery["lastError"],
            "the receiver answered 503 Service Unavailable"
        );
        // Not before its backoff has passed.
        assert_eq!(deliverer.tick(&app.state().core).await.unwrap(), 0);
        assert_eq!(*calls.lock().unwrap(), 1);
        app.clock.advance(1_000);
        assert_eq!(deliverer.tick(&app.state().core).await.unwrap(), 1);
        let (_, listed) = app.admin(Method::GET, &deliveries, None).await;
        assert_eq!(listed["deliveries"][0]["status"], "delivered");
        let metrics = app.metrics().await;
        for line in [
            "capstan_webhook_attempts_total{outcome=\"delivered\"} 1",
            "capstan_webhook_attempts_total{outcome=\"retry\"} 1",
        ] {
            assert!(metrics.contains(line), "{line} missing from {metrics}");
        }
    });
}
