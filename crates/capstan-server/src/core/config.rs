//! The server's configuration: one struct, from flags, `CAPSTAN_*` environment variables
//! or a TOML file (`--config`), in that order of precedence.

use secrecy::SecretString;

#[derive(clap::Args, Debug, Clone)]
pub struct ServeConfig {
    /// A TOML file of these settings, keyed by their long names (`listen = "0.0.0.0:8470"`,
    /// `rate_limit_per_second = 500`); a flag or `CAPSTAN_*` variable overrides it.
    #[arg(long, env = "CAPSTAN_CONFIG")]
    pub config: Option<std::path::PathBuf>,

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

/// The settings a `--config` file gives that neither a flag nor a variable gave, as
/// command-line arguments (`--name value`) to parse after the ones given. `given` is
/// the `serve` command's parsed arguments.
pub fn file_arguments(
    path: &std::path::Path,
    given: &clap::ArgMatches,
) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("failed to read config file {}: {error}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|error| format!("config file {} is not valid TOML: {error}", path.display()))?;
    let known = <ServeConfig as clap::Args>::augment_args(clap::Command::new("serve"));
    let mut arguments = Vec::new();
    for (key, value) in table {
        let id = key.replace('-', "_");
        let Some(argument) = known
            .get_arguments()
            .find(|argument| argument.get_id() == id.as_str() && id != "config")
        else {
            return Err(format!(
                "config file {}: unknown setting {key:?}",
                path.display()
            ));
        };
        let text = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Float(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            _ => {
                return Err(format!(
                    "config file {}: {key} must be a string, number or boolean",
                    path.display()
                ));
            }
        };
        let from_file = matches!(
            given.value_source(&id),
            None | Some(clap::parser::ValueSource::DefaultValue)
        );
        if from_file {
            let long = argument.get_long().unwrap_or(id.as_str()).to_owned();
            arguments.push(format!("--{long}"));
            arguments.push(text);
        }
    }
    Ok(arguments)
}
