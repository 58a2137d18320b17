//! Benchmark 3b: latency of `POST /api/v1/placements/{surface}/rank` on loopback.
//!
//! Starts `capstan serve` on 127.0.0.1:0 with a fresh SQLite file and a bootstrap token,
//! creates a placement token, one surface per candidate count with that many items (the
//! throughput benchmark's shapes: 15 features per item, 15 per context), then ranks with
//! one keep-alive connection, one request at a time, so a figure is one request's latency
//! and not queueing; then with `connections` connections at once (a thread each, one
//! request at a time on each), for the rate a busy server sustains. Bounded: at most
//! `requests` per surface and phase, and `seconds` each. The client is a few lines over
//! `std::net::TcpStream`, so it adds little to the figures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use capstan_bandit::{Feature, FeatureValue, Features};
use serde_json::{Map, Value, json};

use crate::random::Random;
use crate::throughput::{CANDIDATE_COUNTS, candidate, context};

#[derive(clap::Args, Debug)]
pub(crate) struct HttpArgs {
    /// The `capstan` binary to start.
    #[arg(long, default_value = "target/release/capstan")]
    capstan: PathBuf,
    /// Most rank requests per surface (after 200 to warm up).
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Most seconds of rank requests per surface.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Connections for the concurrent phase (each with one request at a time).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Where to write the figures (JSON).
    #[arg(long)]
    out: PathBuf,
}

const ADMIN_TOKEN: &str = "cps_placementbenchadmin0123456789abcdefghij";

/// Kills the server when the benchmark ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Connection {
    address: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(address: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(address).context("failed to connect to the server")?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Connection {
            address,
            reader: BufReader::new(stream),
        })
    }

    /// One request; the status and the JSON body of the answer.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let body = body.to_string();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("not an HTTP status line: {line:?}"))?;
        let mut length = None;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>()?);
            }
        }
        let length = length.context("an answer without Content-Length")?;
        let mut bytes = vec![0; length];
        self.reader.read_exact(&mut bytes)?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).context("an answer that is not JSON")?
        };
        Ok((status, value))
    }

    fn expect(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.request(method, path, token, body)?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: {status} {value}");
        }
        Ok(value)
    }
}

/// Features as the API takes them: `{"namespace": {"name": value}}`.
fn features_json(features: &Features) -> Value {
    let mut namespaces = Map::new();
    for Feature {
        namespace,
        name,
        value,
    } in &features.0
    {
        let entry = namespaces
            .entry(namespace.clone())
            .or_insert_with(|| json!({}));
        entry[name] = match value {
            FeatureValue::Text(text) => json!(text),
            FeatureValue::Number(number) => json!(number),
        };
    }
    Value::Object(namespaces)
}

fn start(args: &HttpArgs, database: &std::path::Path) -> anyhow::Result<(Server, SocketAddr)> {
    let mut child = Command::new(&args.capstan)
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(database)
        .env("CAPSTAN_BOOTSTRAP_TOKEN", ADMIN_TOKEN)
        .env("CAPSTAN_LOG", "warn")
        .env("CAPSTAN_RATE_LIMIT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to start {}", args.capstan.display()))?;
    let stdout = child.stdout.take().context("the server's output")?;
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines
            .next()
            .context("the server stopped before listening")??;
        if let Some(url) = line.strip_prefix("Listening on ") {
            let address: SocketAddr = url
                .trim()
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .parse()?;
            if !address.ip().is_loopback() {
                bail!("{address} is not loopback");
            }
            break address;
        }
    };
    // Keep draining the server's output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((server, address))
}

fn percentile(sorted: &[f64], share: f64) -> f64 {
    let index = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

pub(crate) fn run(args: &HttpArgs) -> anyhow::Result<()> {
    let folder =
        std::env::temp_dir().join(format!("capstan-placement-bench-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    let outcome = measure(args, &folder.join("capstan.db"));
    let _ = std::fs::remove_dir_all(&folder);
    let results = outcome?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    Ok(())
}

fn measure(args: &HttpArgs, database: &std::path::Path) -> anyhow::Result<Value> {
    let (_server, address) = start(args, database)?;
    let mut connection = Connection::open(address)?;
    let created = connection.expect(
        "POST",
        "/api/v1/tokens",
        ADMIN_TOKEN,
        &json!({ "name": "bench", "role": "placement" }),
    )?;
    let placement_token = created["token"]
        .as_str()
        .context("a token in the answer")?
        .to_owned();

    let mut random = Random::new(7);
    let mut results = Map::new();
    for count in CANDIDATE_COUNTS {
        let surface = format!("bench-{count}");
        connection.expect(
            "PUT",
            &format!("/api/v1/projects/default/surfaces/{surface}"),
            ADMIN_TOKEN,
            &json!({ "description": "placement benchmark" }),
        )?;
        let items: Vec<Value> = (0..count)
            .map(|id| {
                let item = candidate(&mut random, id);
                json!({ "id": item.id, "features": features_json(&item.features) })
            })
            .collect();
        connection.expect(
            "POST",
            &format!("/api/v1/projects/default/surfaces/{surface}/items"),
            ADMIN_TOKEN,
            &json!({ "items": items }),
        )?;
        let contexts: Vec<Value> = (0..256)
            .map(|_| json!({ "context": features_json(&context(&mut random)) }))
            .collect();
        let path = format!("/api/v1/placements/{surface}/rank");
        for body in contexts.iter().take(200) {
            connection.expect("POST", &path, &placement_token, body)?;
        }
        let mut latencies = Vec::with_capacity(args.requests);
        let deadline = Instant::now() + Duration::from_secs(args.seconds);
        let started = Instant::now();
        while latencies.len() < args.requests && Instant::now() < deadline {
            let body = &contexts[latencies.len() % contexts.len()];
            let sent = Instant::now();
            let answer = connection.expect("POST", &path, &placement_token, body)?;
            latencies.push(sent.elapsed().as_secs_f64() * 1e3);
            if answer["items"].as_array().map(Vec::len) != Some(count) {
                bail!("rank answered {answer}");
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let concurrent = concurrently(args, address, &path, &placement_token, &contexts, count)?;
        latencies.sort_by(f64::total_cmp);
        let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
        eprintln!(
            "{count} candidates: p50 {:.3} ms, p99 {:.3} ms over {} requests",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.len()
        );
        results.insert(
            count.to_string(),
            json!({
                "requests": latencies.len(),
                "p50_ms": percentile(&latencies, 0.5),
                "p99_ms": percentile(&latencies, 0.99),
                "mean_ms": mean,
                "per_second": latencies.len() as f64 / elapsed,
                "concurrent": concurrent,
            }),
        );
    }
    Ok(Value::Object(results))
}

/// Ranks on `args.connections` connections at once until `args.requests` are answered or
/// `args.seconds` pass: requests per second and the latencies' p50 and p99.
fn concurrently(
    args: &HttpArgs,
    address: SocketAddr,
    path: &str,
    token: &str,
    contexts: &[Value],
    count: usize,
) -> anyhow::Result<Value> {
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let per_connection: Vec<anyhow::Result<Vec<f64>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.connections)
            .map(|worker| {
                let answered = &answered;
                scope.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let mut connection = Connection::open(address)?;
                    let mut latencies = Vec::new();
                    let mut next = worker;
                    while Instant::now() < deadline
                        && answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                            < args.requests
                    {
                        let body = &contexts[next % contexts.len()];
                        next += args.connections;
                        let sent = Instant::now();
                        let answer = connection.expect("POST", path, token, body)?;
                        latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                        if answer["items"].as_array().map(Vec::len) != Some(count) {
                            bail!("rank answered {answer}");
                        }
                    }
                    Ok(latencies)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for worker in per_connection {
        latencies.extend(worker?);
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "{count} candidates, {} connections: {:.0} requests/s, p50 {:.3} ms, p99 {:.3} ms",
        args.connections,
        latencies.len() as f64 / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    Ok(json!({
        "connections": args.connections,
        "requests": latencies.len(),
        "p50_ms": percentile(&latencies, 0.5),
        "p99_ms": percentile(&latencies, 0.99),
        "per_second": latencies.len() as f64 / elapsed,
    }))
}
