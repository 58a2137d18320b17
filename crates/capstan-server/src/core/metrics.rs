//! Prometheus metrics, rendered in the text exposition format at `/metrics`.
//!
//! Evaluation counters sit on the hot path, so each flag's counters are a fixed array of
//! atomics that the compiled environment holds directly: counting an evaluation is one
//! atomic add, with no label building or map lookup.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use capstan_flags::Reason;
use capstan_model::{EnvironmentKey, FlagKey, ProjectKey};

const REASONS: [Reason; 7] = [
    Reason::Static,
    Reason::TargetingMatch,
    Reason::Split,
    Reason::Disabled,
    Reason::Default,
    Reason::PrerequisiteFailed,
    Reason::Error,
];

fn reason_index(reason: Reason) -> usize {
    REASONS
        .iter()
        .position(|candidate| *candidate == reason)
        .unwrap_or(REASONS.len() - 1)
}

/// Evaluations of one flag in one environment, by reason.
#[derive(Default)]
pub struct FlagCounters([AtomicU64; REASONS.len()]);

impl FlagCounters {
    pub fn record(&self, reason: Reason) {
        self.0[reason_index(reason)].fetch_add(1, Ordering::Relaxed);
    }
}

/// Upper bounds of the request latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// Requests to one route: counts by method and status, and a latency histogram.
#[derive(Default)]
struct RouteMetrics {
    statuses: RwLock<HashMap<(&'static str, u16), Arc<AtomicU64>>>,
    latency: Histogram,
}

#[derive(Default)]
pub struct Metrics {
    flags: RwLock<HashMap<(ProjectKey, EnvironmentKey, FlagKey), Arc<FlagCounters>>>,
    routes: RwLock<HashMap<String, Arc<RouteMetrics>>>,
    /// Whether this replica drives rollouts (1) or not (0), and how many it drives.
    rollout_leader: AtomicU64,
    rollouts_active: AtomicU64,
    /// Rollout transitions made by this replica's driver, by kind.
    rollout_transitions: RwLock<HashMap<String, Arc<AtomicU64>>>,
    /// Webhook delivery attempts by outcome: delivered, retry, failed.
    webhook_attempts: RwLock<HashMap<&'static str, Arc<AtomicU64>>>,
    /// Answers that failed on the server's side (internal errors, an unreachable store).
    store_errors: AtomicU64,
}

/// Reads a map entry, creating it under the write lock only when it is missing, so the
/// common path takes a shared lock and allocates nothing.
fn get_or_insert<K, Q, V>(
    map: &RwLock<HashMap<K, Arc<V>>>,
    key: &Q,
    make_key: impl FnOnce() -> K,
) -> Arc<V>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
    V: Default,
{
    if let Some(found) = map.read().unwrap_or_else(|p| p.into_inner()).get(key) {
        return found.clone();
    }
    map.write()
        .unwrap_or_else(|p| p.into_inner())
        .entry(make_key())
        .or_default()
        .clone()
}

impl Metrics {
    /// The counters of one flag, created on first use and kept across recompilations.
    pub fn flag_counters(
        &self,
        project: &ProjectKey,
        environment: &EnvironmentKey,
        flag: &FlagKey,
    ) -> Arc<FlagCounters> {
        let key = (project.clone(), environment.clone(), flag.clone());
        get_or_insert(&self.flags, &key, || key.clone())
    }

    /// What the rollout driver saw on its last tick.
    pub fn record_rollout_tick(&self, leading: bool, active: usize) {
        self.rollout_leader.store(leading as u64, Ordering::Relaxed);
        self.rollouts_active.store(active as u64, Ordering::Relaxed);
    }

    pub fn record_rollout_transition(&self, kind: &str) {
        get_or_insert(&self.rollout_transitions, kind, || kind.to_owned())
            .fetch_add(1, Ordering::Relaxed);
    }

    /// `outcome`: `delivered`, `retry` or `failed`.
    pub fn record_webhook_attempt(&self, outcome: &'static str) {
        get_or_insert(&self.webhook_attempts, outcome, || outcome).fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one served request. `route` is the router's pattern, not the raw path, so
    /// the number of series stays fixed. An answer that failed on the server's side (500,
    /// or 503 from an unreachable store) also counts as a store error.
    pub fn record_request(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        if status == 500 || status == 503 {
            self.store_errors.fetch_add(1, Ordering::Relaxed);
        }
        let metrics = get_or_insert(&self.routes, route, || route.to_owned());
        get_or_insert(&metrics.statuses, &(method, status), || (method, status))
            .fetch_add(1, Ordering::Relaxed);
        let histogram = &metrics.latency;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&histogram.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        histogram.count.fetch_add(1, Ordering::Relaxed);
        histogram
            .sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP capstan_http_requests_total HTTP requests served, by route, method and status."
        );
        let _ = writeln!(out, "# TYPE capstan_http_requests_total counter");
        let mut routes: Vec<_> = self
            .routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(route, metrics)| (route.clone(), metrics.clone()))
            .collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        for (route, metrics) in &routes {
            let mut statuses: Vec<_> = metrics
                .statuses
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(key, counter)| (*key, counter.load(Ordering::Relaxed)))
                .collect();
            statuses.sort();
            for ((method, status), count) in statuses {
                let _ = writeln!(
                    out,
                    "capstan_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP capstan_http_request_duration_seconds HTTP request latency, by route."
        );
        let _ = writeln!(
            out,
            "# TYPE capstan_http_request_duration_seconds histogram"
        );
        for (route, metrics) in &routes {
            let route = escape(route);
            let histogram = &metrics.latency;
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&histogram.buckets) {
                let _ = writeln!(
                    out,
                    "capstan_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    bucket.load(Ordering::Relaxed)
                );
            }
            let count = histogram.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "capstan_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "capstan_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "capstan_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP capstan_flag_evaluations_total Flag evaluations, by flag and reason."
        );
        let _ = writeln!(out, "# TYPE capstan_flag_evaluations_total counter");
        let mut flags: Vec<_> = self
            .flags
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(key, counters)| (key.clone(), counters.clone()))
            .collect();
        flags.sort_by(|a, b| a.0.cmp(&b.0));
        for ((project, environment, flag), counters) in flags {
            for (reason, counter) in REASONS.iter().zip(&counters.0) {
                let count = counter.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "capstan_flag_evaluations_total{{project=\"{project}\",environment=\"{environment}\",flag=\"{}\",reason=\"{}\"}} {count}",
                        escape(flag.as_str()),
                        reason.as_str()
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP capstan_store_errors_total Answers that failed on the server's side (500, or 503 with the store unreachable)."
        );
        let _ = writeln!(out, "# TYPE capstan_store_errors_total counter");
        let _ = writeln!(
            out,
            "capstan_store_errors_total {}",
            self.store_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP capstan_rollout_driver_leader Whether this replica drives guarded rollouts."
        );
        let _ = writeln!(out, "# TYPE capstan_rollout_driver_leader gauge");
        let _ = writeln!(
            out,
            "capstan_rollout_driver_leader {}",
            self.rollout_leader.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP capstan_rollouts_active Running and paused rollouts this replica drives."
        );
        let _ = writeln!(out, "# TYPE capstan_rollouts_active gauge");
        let _ = writeln!(
            out,
            "capstan_rollouts_active {}",
            self.rollouts_active.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP capstan_rollout_transitions_total Automatic rollout transitions, by kind."
        );
        let _ = writeln!(out, "# TYPE capstan_rollout_transitions_total counter");
        let mut transitions: Vec<(String, u64)> = self
            .rollout_transitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(kind, count)| (kind.clone(), count.load(Ordering::Relaxed)))
            .collect();
        transitions.sort();
        for (kind, count) in transitions {
            let _ = writeln!(
                out,
                "capstan_rollout_transitions_total{{kind=\"{}\"}} {count}",
                escape(&kind)
            );
        }
        let _ = writeln!(
            out,
            "# HELP capstan_webhook_attempts_total Webhook delivery attempts, by outcome."
        );
        let _ = writeln!(out, "# TYPE capstan_webhook_attempts_total counter");
        let mut attempts: Vec<(&str, u64)> = self
            .webhook_attempts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(outcome, count)| (*outcome, count.load(Ordering::Relaxed)))
            .collect();
        attempts.sort();
        for (outcome, count) in attempts {
            let _ = writeln!(
                out,
                "capstan_webhook_attempts_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        out
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
