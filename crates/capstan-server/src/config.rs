//! The server's configuration: one struct, from flags or `CAPSTAN_*` environment variables.

use secrecy::SecretString;

#[derive(clap::Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "CAPSTAN_LISTEN", default_value = "127.0.0.1:8470")]
    pub listen: String,

    /// Where to store everything: a file path (SQLite, created if missing), a sqlite: URL,
    /// or a postgres:// URL.
    #[arg(long, env = "CAPSTAN_DATABASE_URL", default_value = "./capstan.db")]
    pub database: String,

    /// The admin token an empty store is bootstrapped with; a token is generated and
    /// printed once when this is not set.
    #[arg(long, env = "CAPSTAN_BOOTSTRAP_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub bootstrap_token: Option<SecretString>,

    /// Requests per second each token may make on average (0 turns limiting off).
    #[arg(long, env = "CAPSTAN_RATE_LIMIT", default_value_t = 10_000)]
    pub rate_limit_per_second: u32,

    /// Requests a token may make at once after being idle.
    #[arg(long, env = "CAPSTAN_RATE_LIMIT_BURST", default_value_t = 20_000)]
    pub rate_limit_burst: u32,

    /// Seconds a rotated token keeps working beside its replacement, unless the rotation
    /// says otherwise.
    #[arg(long, env = "CAPSTAN_ROTATION_GRACE_SECONDS", default_value_t = 3_600)]
    pub rotation_grace_seconds: i64,

    /// Seconds between keep-alive comments on an idle SDK or OFREP event stream.
    #[arg(long, env = "CAPSTAN_SSE_KEEP_ALIVE_SECONDS", default_value_t = 15)]
    pub sse_keep_alive_seconds: u64,

    /// How often scheduled changes are checked, in milliseconds (0 turns the scheduler off).
    #[arg(long, env = "CAPSTAN_SCHEDULER_INTERVAL_MS", default_value_t = 1_000)]
    pub scheduler_interval_ms: u64,

    /// How often guarded rollouts are judged and webhooks delivered, in milliseconds
    /// (0 turns the rollout driver and webhook deliveries off on this replica).
    #[arg(long, env = "CAPSTAN_ROLLOUT_INTERVAL_MS", default_value_t = 1_000)]
    pub rollout_interval_ms: u64,

    /// Hours raw SDK events are kept; rollouts keep per-minute summaries for ever, and an
    /// active rollout's events are kept until it finishes.
    #[arg(long, env = "CAPSTAN_EVENT_RETENTION_HOURS", default_value_t = 168)]
    pub event_retention_hours: i64,

    /// How often placement rewards are learned from, in milliseconds (0 turns learning
    /// off on this replica). A reward changes the next decisions within about this long.
    #[arg(long, env = "CAPSTAN_PLACEMENT_INTERVAL_MS", default_value_t = 250)]
    pub placement_interval_ms: u64,
}

fn parse_secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text.to_owned()))
}
