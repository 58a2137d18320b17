//! The client: configuration, live updates, typed evaluation and event sending.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use capstan_flags::{EvaluationContext, Reason, ValueType};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config::LoadedConfig;
use crate::details::{ErrorCode, EvaluationDetails};
use crate::events::{Event, EventQueue};
use crate::sse::SseParser;

/// Where the client's current configuration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Nothing yet: evaluations answer the caller's defaults with `PROVIDER_NOT_READY`.
    None,
    /// The on-disk cache, while the server could not be reached.
    Cache,
    Server,
}

/// How the client is doing, for health checks and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientStatus {
    pub source: ConfigSource,
    pub revision: Option<i64>,
    /// Whether the live stream is connected now.
    pub connected: bool,
    /// The most recent problem: a refused or broken configuration, a failed connection,
    /// an unreadable cache. The client keeps its last good configuration through all of them.
    pub last_error: Option<String>,
    /// Events dropped because the buffer was full while the server was away.
    pub dropped_events: u64,
    pub buffered_events: usize,
}

/// Settings of a [`Client`], with defaults for everything but the server and key.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    server: String,
    sdk_key: String,
    cache_path: Option<PathBuf>,
    initial_timeout: Duration,
    reconnect_min: Duration,
    reconnect_max: Duration,
    flush_interval: Duration,
    batch_size: usize,
    event_buffer: usize,
    track_exposures: bool,
}

impl ClientBuilder {
    /// Keeps the last configuration seen in this file, and starts from it when the
    /// server cannot be reached.
    pub fn cache_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache_path = Some(path.into());
        self
    }

    /// How long `build` waits for the server before falling back on the cache (2 s).
    pub fn initial_timeout(mut self, timeout: Duration) -> Self {
        self.initial_timeout = timeout;
        self
    }

    /// The shortest and longest pause between reconnection attempts (0.1 s and 30 s);
    /// each pause is drawn at random up to an exponentially growing bound.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// How often buffered events are sent (1 s), and how many at most per request (500).
    pub fn event_batching(mut self, interval: Duration, batch_size: usize) -> Self {
        self.flush_interval = interval;
        self.batch_size = batch_size.max(1);
        self
    }

    /// How many events may wait while the server is away (10,000); past it the oldest
    /// are dropped and counted.
    pub fn event_buffer(mut self, limit: usize) -> Self {
        self.event_buffer = limit;
        self
    }

    /// Whether evaluations record exposures (on by default).
    pub fn track_exposures(mut self, track: bool) -> Self {
        self.track_exposures = track;
        self
    }

    /// Starts the client: fetches the configuration (or reads the cache), then follows
    /// the live stream and sends events in the background. Never fails: without the
    /// server or a cache the client answers defaults and keeps trying. Needs a Tokio
    /// runtime.
    pub async fn build(self) -> Client {
        let http = reqwest::Client::builder()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let inner = Arc::new(Inner {
            config: ArcSwapOption::empty(),
            revisions: watch::Sender::new(None),
            status: Mutex::new(StatusState {
                source: ConfigSource::None,
                connected: false,
                last_error: None,
            }),
            status_changes: watch::Sender::new(0),
            clock_ms: AtomicI64::new(now_ms()),
            events: EventQueue::new(self.event_buffer),
            shutdown: watch::Sender::new(false),
            http,
            settings: self,
        });
        match tokio::time::timeout(inner.settings.initial_timeout, inner.fetch_config()).await {
            Ok(Ok(config)) => inner.install(config, ConfigSource::Server),
            Ok(Err(error)) => inner.fail(error),
            Err(_) => inner.fail("timed out waiting for the server".to_owned()),
        }
        if inner.current().is_none() {
            inner.load_cache();
        }
        tokio::spawn(inner.clone().follow_stream());
        tokio::spawn(inner.clone().send_events());
        tokio::spawn(inner.clone().keep_time());
        Client {
            inner: inner.clone(),
            _guard: Arc::new(StopOnDrop(inner)),
        }
    }
}

struct StatusState {
    source: ConfigSource,
    connected: bool,
    last_error: Option<String>,
}

struct Inner {
    config: ArcSwapOption<LoadedConfig>,
    /// The revision held, for waiting on changes.
    revisions: watch::Sender<Option<i64>>,
    status: Mutex<StatusState>,
    /// Counts changes of status, so callers can wait for the next one.
    status_changes: watch::Sender<u64>,
    /// Unix milliseconds, refreshed every [`CLOCK_TICK`] by a background task: evaluation
    /// reads the time without a system call. `$flagd.timestamp` is in whole seconds and
    /// exposures need no finer time, so the coarse clock loses nothing.
    clock_ms: AtomicI64,
    events: EventQueue,
    shutdown: watch::Sender<bool>,
    http: reqwest::Client,
    settings: ClientBuilder,
}

/// Stops the background tasks when the last handle to the client goes.
struct StopOnDrop(Arc<Inner>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// A handle to the SDK; clone it freely, it is cheap.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    _guard: Arc<StopOnDrop>,
}

/// What an evaluation came to: the value with its variant and reason, or the caller's
/// default with the error.
type Outcome<'a, T> = Result<(T, Option<&'a str>, Reason), (T, ErrorCode, String)>;

/// How often the coarse clock is refreshed.
const CLOCK_TICK: Duration = Duration::from_millis(50);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or_default()
}

impl Inner {
    fn current(&self) -> Option<i64> {
        *self.revisions.borrow()
    }

    fn status(&self) -> std::sync::MutexGuard<'_, StatusState> {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fail(&self, error: String) {
        tracing::warn!(error = %error, "capstan sdk");
        self.status().last_error = Some(error);
        self.status_changed();
    }

    fn status_changed(&self) {
        self.status_changes
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    fn set_connected(&self, connected: bool) {
        self.status().connected = connected;
        self.status_changed();
    }

    /// Makes a configuration current, unless it is older than the one held.
    fn install(&self, config: LoadedConfig, source: ConfigSource) {
        if self.current().is_some_and(|held| held > config.revision) {
            return;
        }
        if source == ConfigSource::Server
            && let Some(path) = &self.settings.cache_path
            && let Err(error) = config.write_cache(path)
        {
            self.fail(format!(
                "failed to write the cache {}: {error}",
                path.display()
            ));
        }
        let revision = config.revision;
        self.config.store(Some(Arc::new(config)));
        self.status().source = source;
        self.revisions.send_replace(Some(revision));
        self.status_changed();
    }

    fn load_cache(&self) {
        let Some(path) = &self.settings.cache_path else {
            return;
        };
        match LoadedConfig::read_cache(path) {
            Ok(config) => self.install(config, ConfigSource::Cache),
            Err(error) => self.fail(format!("ignored the cache {}: {error}", path.display())),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.server.trim_end_matches('/'))
    }

    async fn fetch_config(&self) -> Result<LoadedConfig, String> {
        let response = self
            .http
            .get(self.url("/api/v1/sdk/config"))
            .bearer_auth(&self.settings.sdk_key)
            .send()
            .await
            .map_err(|error| format!("failed to reach Capstan: {error}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "Capstan refused the configuration request: HTTP {}",
                response.status()
            ));
        }
        let text = response
            .text()
            .await
            .map_err(|error| format!("failed to read the configuration: {error}"))?;
        LoadedConfig::parse(&text).map_err(|error| error.to_string())
    }

    /// Follows the live stream, reconnecting with backoff and jitter, until shutdown.
    async fn follow_stream(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut attempt = 0u32;
        loop {
            let outcome = tokio::select! {
                outcome = self.stream_once(&mut attempt) => outcome,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            self.set_connected(false);
            if let Err(error) = outcome {
                self.fail(error);
            }
            let pause = self.backoff(attempt);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Full jitter: a random pause up to min × 2^attempt, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let min = self.settings.reconnect_min.as_secs_f64();
        let bound = (min * 2f64.powi(attempt.min(20) as i32))
            .min(self.settings.reconnect_max.as_secs_f64());
        Duration::from_secs_f64(rand::rng().random_range(min.min(bound)..=bound))
    }

    /// One connection to the stream, until it ends. Resets `attempt` once connected.
    async fn stream_once(&self, attempt: &mut u32) -> Result<(), String> {
        let mut request = self
            .http
            .get(self.url("/api/v1/sdk/stream"))
            .bearer_auth(&self.settings.sdk_key);
        if let Some(revision) = self.current() {
            request = request.header("last-event-id", revision.to_string());
        }
        let mut response = request
            .send()
            .await
            .map_err(|error| format!("failed to reach Capstan: {error}"))?;
        if response.status() != StatusCode::OK {
            return Err(format!(
                "Capstan refused the stream: HTTP {}",
                response.status()
            ));
        }
        *attempt = 0;
        self.set_connected(true);
        let mut parser = SseParser::default();
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|error| format!("stream failed: {error}"))?;
            let Some(chunk) = chunk else {
                return Err("the stream ended".to_owned());
            };
            for event in parser.push(&chunk) {
                if event.event != "snapshot" {
                    continue;
                }
                // A broken message is reported and skipped; the last good
                // configuration stays.
                match LoadedConfig::parse(&event.data) {
                    Ok(config) => self.install(config, ConfigSource::Server),
                    Err(error) => self.fail(format!("ignored a stream message: {error}")),
                }
            }
        }
    }

    /// Refreshes the coarse clock until shutdown.
    async fn keep_time(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut ticker = tokio::time::interval(CLOCK_TICK);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.clock_ms.store(now_ms(), Ordering::Relaxed),
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Sends buffered events every flush interval, until shutdown, then once more.
    async fn send_events(self: Arc<Self>) {
        let mut shutdown = self.shutdown.subscribe();
        let mut ticker = tokio::time::interval(self.settings.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = ticker.tick() => false,
                _ = shutdown.wait_for(|stop| *stop) => true,
            };
            // Failures keep the events buffered for the next round, and are in the status.
            if let Err(error) = self.flush().await {
                tracing::debug!(error = %error, "capstan sdk: events not sent yet");
            }
            if stopping {
                return;
            }
        }
    }

    /// Sends what is buffered, a batch at a time; stops at the first failure and keeps
    /// the unsent events.
    async fn flush(&self) -> Result<(), String> {
        loop {
            let batch = self.events.take(self.settings.batch_size);
            if batch.is_empty() {
                return Ok(());
            }
            let body =
                json!({ "events": batch.iter().map(Event::to_json).collect::<Vec<Value>>() });
            let sent = self
                .http
                .post(self.url("/api/v1/events"))
                .bearer_auth(&self.settings.sdk_key)
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {}
                // The server refused the batch as such: sending it again cannot help.
                Ok(response) if response.status() == StatusCode::BAD_REQUEST => {
                    let error = format!(
                        "Capstan refused {} events: {}",
                        batch.len(),
                        response.text().await.unwrap_or_default()
                    );
                    self.fail(error.clone());
                    return Err(error);
                }
                Ok(response) => {
                    self.events.put_back(batch);
                    return Err(format!("failed to send events: HTTP {}", response.status()));
                }
                Err(error) => {
                    self.events.put_back(batch);
                    return Err(format!("failed to send events: {error}"));
                }
            }
        }
    }
}

impl Client {
    pub fn builder(server: impl Into<String>, sdk_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            server: server.into(),
            sdk_key: sdk_key.into(),
            cache_path: None,
            initial_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(30),
            flush_interval: Duration::from_secs(1),
            batch_size: 500,
            event_buffer: 10_000,
            track_exposures: true,
        }
    }

    /// The one evaluation path. `finish` shapes the answer: `*_value` keeps only the
    /// value (no allocation), `*_details` builds the details. Time comes from the
    /// client's coarse clock, so the hot path makes no system call.
    fn evaluate<T, R>(
        &self,
        key: &str,
        context: &EvaluationContext,
        default: T,
        value_type: ValueType,
        convert: impl FnOnce(&Value) -> Option<T>,
        finish: impl FnOnce(Outcome<'_, T>) -> R,
    ) -> R {
        let config = self.inner.config.load();
        let Some(config) = config.as_ref() else {
            return finish(Err((
                default,
                ErrorCode::ProviderNotReady,
                "no configuration yet".to_owned(),
            )));
        };
        let now_ms = self.inner.clock_ms.load(Ordering::Relaxed);
        let resolution = config
            .engine
            .evaluate(key, context, now_ms.div_euclid(1000))
            .expect_type(value_type);
        if let Some(error) = resolution.error {
            return finish(Err((
                default,
                ErrorCode::from_engine(error.code),
                error.message,
            )));
        }
        let value = match resolution.value {
            None => default,
            Some(value) => match convert(value) {
                Some(value) => value,
                None => {
                    return finish(Err((
                        default,
                        ErrorCode::TypeMismatch,
                        "the value does not fit the type".to_owned(),
                    )));
                }
            },
        };
        if self.inner.settings.track_exposures
            && let (Some(variant), Some(targeting_key)) =
                (resolution.variant, context.targeting_key())
        {
            self.inner.events.push(Event::Exposure {
                flag: key.into(),
                variant: variant.into(),
                targeting_key: targeting_key.into(),
                at_ms: now_ms,
            });
        }
        finish(Ok((value, resolution.variant, resolution.reason)))
    }

    fn details<T>(outcome: Outcome<'_, T>) -> EvaluationDetails<T> {
        match outcome {
            Ok((value, variant, reason)) => EvaluationDetails {
                value,
                variant: variant.map(str::to_owned),
                reason,
                error_code: None,
                error_message: None,
            },
            Err((default, code, message)) => EvaluationDetails::error(default, code, message),
        }
    }

    fn value<T>(outcome: Outcome<'_, T>) -> T {
        match outcome {
            Ok((value, _, _)) | Err((value, _, _)) => value,
        }
    }

    pub fn bool_details(
        &self,
        key: &str,
        context: &EvaluationContext,
        default: bool,
    ) -> EvaluationDetails<bool> {
        self.evaluate(
            key,
            context,
            default,
            ValueType::Boolean,
            Value::as_bool,
            Self::details,
        )
    }

    pub fn bool_value(&self, key: &str, context: &EvaluationContext, default: bool) -> bool {
        self.evaluate(
            key,
            context,
            default,
            ValueType::Boolean,
            Value::as_bool,
            Self::value,
        )
    }

    pub fn string_details(
        &self,
        key: &str,
        context: &EvaluationContext,
        default: &str,
    ) -> EvaluationDetails<String> {
        self.evaluate(
            key,
            context,
            default.to_owned(),
            ValueType::String,
            |value| value.as_str().map(str::to_owned),
            Self::details,
        )
    }

    pub fn string_value(&self, key: &str, context: &EvaluationContext, default: &str) -> String {
        self.evaluate(
            key,
            context,
            default.to_owned(),
            ValueType::String,
            |value| value.as_str().map(str::to_owned),
            Self::value,
        )
    }

    pub fn number_details(
        &self,
        key: &str,
        context: &EvaluationContext,
        default: f64,
    ) -> EvaluationDetails<f64> {
        self.evaluate(
            key,
            context,
            default,
            ValueType::Float,
            Value::as_f64,
            Self::details,
        )
    }

    pub fn number_value(&self, key: &str, context: &EvaluationContext, default: f64) -> f64 {
        self.evaluate(
            key,
            context,
            default,
            ValueType::Float,
            Value::as_f64,
            Self::value,
        )
    }

    pub fn json_details(
        &self,
        key: &str,
        context: &EvaluationContext,
        default: Value,
    ) -> EvaluationDetails<Value> {
        self.evaluate(
            key,
            context,
            default,
            ValueType::Object,
            |value| Some(value.clone()),
            Self::details,
        )
    }

    pub fn json_value(&self, key: &str, context: &EvaluationContext, default: Value) -> Value {
        self.evaluate(
            key,
            context,
            default,
            ValueType::Object,
            |value| Some(value.clone()),
            Self::value,
        )
    }

    /// Records a metric about someone (`checkout_error`, 1.0), sent in the background.
    pub fn track(&self, metric: &str, targeting_key: &str, value: f64) {
        self.inner.events.push(Event::Metric {
            metric: metric.into(),
            value,
            targeting_key: targeting_key.into(),
            at_ms: self.inner.clock_ms.load(Ordering::Relaxed),
        });
    }

    /// Sends buffered events now, rather than at the next interval.
    pub async fn flush(&self) -> Result<(), String> {
        self.inner.flush().await
    }

    pub fn status(&self) -> ClientStatus {
        let state = self.inner.status();
        ClientStatus {
            source: state.source,
            revision: self.inner.current(),
            connected: state.connected,
            last_error: state.last_error.clone(),
            dropped_events: self.inner.events.dropped(),
            buffered_events: self.inner.events.len(),
        }
    }

    /// Waits until the client holds at least `revision`, for at most `timeout`; returns
    /// whether it got there. Useful for applications (and tests) that made a change and
    /// want to see it.
    pub async fn wait_for_revision(&self, revision: i64, timeout: Duration) -> bool {
        let mut revisions = self.inner.revisions.subscribe();
        tokio::time::timeout(
            timeout,
            revisions.wait_for(|held| held.is_some_and(|held| held >= revision)),
        )
        .await
        .is_ok_and(|waited| waited.is_ok())
    }

    /// Waits for the next change of [`Client::status`]: a new configuration, a
    /// connection made or lost, an error. Subscribes when called, so a change between
    /// creating this future and awaiting it is not missed.
    pub fn status_changed(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut changes = self.inner.status_changes.subscribe();
        changes.borrow_and_update();
        async move {
            let _ = changes.changed().await;
        }
    }

    /// Waits for the next configuration change after the one held when this is called,
    /// and returns its revision. Listens from the call, so a change between creating
    /// this future and awaiting it is not missed.
    pub fn changed(&self) -> impl std::future::Future<Output = Option<i64>> + use<> {
        let mut revisions = self.inner.revisions.subscribe();
        revisions.borrow_and_update();
        async move {
            revisions.changed().await.ok()?;
            *revisions.borrow()
        }
    }

    /// Stops the background tasks after sending what is buffered.
    pub async fn close(self) {
        let _ = self.inner.flush().await;
        self.inner.shutdown.send_replace(true);
    }
}
