//! `events`: sends batches of events to `POST /api/v1/events` from several connections
//! for a while, and reports how many the server accepted per second.
//!
//! The batches are built before timing starts (half exposures of the flag, half
//! `checkout_error` metrics, each event for a different targeting key), so the load
//! generator spends its time sending, not serialising.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::server::{ServerArgs, loopback_address};
use crate::stats::describe;

#[derive(clap::Args, Debug)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// Events per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,

    /// How long to send for.
    #[arg(long, default_value_t = 10)]
    seconds: u64,

    /// How many connections send at once, each one request at a time.
    #[arg(long, default_value_t = 8)]
    connections: usize,

    /// How many different batches to cycle through.
    #[arg(long, default_value_t = 16)]
    distinct_batches: usize,

    /// The flag the exposures name.
    #[arg(long, env = "CAPSTAN_LOADTEST_FLAG", default_value = "loadtest")]
    flag: String,
}

/// What one connection did.
#[derive(Default)]
struct Sent {
    accepted: u64,
    latencies: Vec<Duration>,
}

pub(crate) async fn run(args: EventsArgs) -> anyhow::Result<()> {
    loopback_address(&args.server.server)?;
    let url = format!("{}/api/v1/events", args.server.server.trim_end_matches('/'));
    let bodies = Arc::new(batches(&args)?);
    let body_bytes = bodies.first().map(Vec::len).unwrap_or_default();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..args.connections.max(1) {
        // One client per connection, so each holds its own keep-alive connection.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .context("failed to build the HTTP client")?;
        let url = url.clone();
        let sdk_key = args.server.sdk_key.clone();
        let bodies = Arc::clone(&bodies);
        tasks.spawn(async move {
            let mut sent = Sent::default();
            let mut next = connection;
            while Instant::now() < deadline {
                let body = bodies[next % bodies.len()].clone();
                next += 1;
                let request_started = Instant::now();
                let response = http
                    .post(&url)
                    .bearer_auth(&sdk_key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .context("failed to send events")?;
                let status = response.status();
                let text = response.text().await.context("failed to read the answer")?;
                sent.latencies.push(request_started.elapsed());
                if status.as_u16() != 202 {
                    bail!("the server refused a batch: HTTP {status}: {text}");
                }
                let answer: Value = serde_json::from_str(&text)
                    .with_context(|| format!("the answer is not JSON: {text}"))?;
                sent.accepted += answer
                    .get("accepted")
                    .and_then(Value::as_u64)
                    .with_context(|| format!("the answer has no count: {text}"))?;
            }
            Ok::<_, anyhow::Error>(sent)
        });
    }
    let mut accepted = 0;
    let mut latencies = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        let sent = outcome.context("a sending task panicked")??;
        accepted += sent.accepted;
        latencies.extend(sent.latencies);
    }
    let elapsed = started.elapsed().as_secs_f64();

    println!(
        "events: batches of {} ({} KiB each), {} connections, {:.1} s, to {}",
        args.batch,
        body_bytes / 1024,
        args.connections,
        elapsed,
        args.server.server
    );
    println!(
        "  accepted {accepted} events in {} requests: {:.0} events/s ({:.0} requests/s)",
        latencies.len(),
        accepted as f64 / elapsed,
        latencies.len() as f64 / elapsed
    );
    println!("  request latency: {}", describe(&latencies));
    Ok(())
}

/// The request bodies, serialised once.
fn batches(args: &EventsArgs) -> anyhow::Result<Vec<Vec<u8>>> {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .context("failed to format the time")?;
    let mut user = 0u64;
    let mut bodies = Vec::with_capacity(args.distinct_batches.max(1));
    for _ in 0..args.distinct_batches.max(1) {
        let events: Vec<Value> = (0..args.batch)
            .map(|index| {
                user += 1;
                let targeting_key = format!("user-{user}");
                if index.is_multiple_of(2) {
                    json!({"kind": "exposure", "flag": args.flag, "variant": if user.is_multiple_of(4) { "on" } else { "off" },
                           "targetingKey": targeting_key, "timestamp": timestamp})
                } else {
                    json!({"kind": "metric", "metric": "checkout_error", "value": 1.0,
                           "targetingKey": targeting_key, "timestamp": timestamp})
                }
            })
            .collect();
        bodies.push(serde_json::to_vec(&json!({ "events": events }))?);
    }
    Ok(bodies)
}
