//! The command line: the arguments every command shares, and `run`, which hands each
//! client command to its capability's module (one module per top-level command).

mod audit;
mod flags;
mod placement;
mod projects;
mod rollouts;
mod tokens;
mod webhooks;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use crate::client::ApiClient;

/// Capstan: feature flags, guarded rollouts and more, in one control plane.
#[derive(Parser)]
#[command(name = "capstan", version, about)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Args)]
pub(crate) struct Global {
    /// The Capstan server the client commands talk to.
    #[arg(
        long,
        global = true,
        env = "CAPSTAN_SERVER",
        default_value = "http://127.0.0.1:8470"
    )]
    pub(crate) server: String,

    /// The API token client commands authenticate with.
    #[arg(long, global = true, env = "CAPSTAN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,

    /// The project client commands work in.
    #[arg(
        long,
        global = true,
        env = "CAPSTAN_PROJECT",
        default_value = "default"
    )]
    pub(crate) project: String,

    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the control plane.
    Serve(capstan_server::ServeConfig),
    /// Create, change, inspect and evaluate feature flags.
    #[command(subcommand)]
    Flags(flags::FlagsCommand),
    /// List and create environments.
    #[command(subcommand)]
    Env(projects::EnvCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Show the audit trail.
    Audit(audit::AuditArgs),
    /// Guarded rollouts: roll a flag out step by step; it promotes or reverts itself.
    #[command(subcommand)]
    Rollouts(rollouts::RolloutsCommand),
    /// Webhooks that hear about rollouts (Slack-compatible, signed).
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Personalised placement: surfaces, items, offline evaluation.
    #[command(subcommand)]
    Placement(placement::PlacementCommand),
}

#[derive(Args)]
pub(crate) struct EnvArg {
    /// The environment.
    #[arg(long = "env", short = 'e')]
    pub(crate) env: String,
}

/// Reads a JSON option: inline JSON, or `@path` for a file.
pub(crate) fn json_option(name: &str, text: &str) -> anyhow::Result<Value> {
    let text = match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("failed to read {path}"))?
        }
        None => text.to_owned(),
    };
    serde_json::from_str(&text).with_context(|| format!("--{name} is not valid JSON"))
}

/// Text as one path segment or query value, percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    // Keys are restricted to URL-safe characters by the server; encode the rest anyway.
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `path?name=value&...` with the parameters that have a value, each value encoded;
/// `path` alone when none has one.
pub(crate) fn with_query(path: &str, parameters: &[(&str, Option<&str>)]) -> String {
    let query: Vec<String> = parameters
        .iter()
        .filter_map(|(name, value)| value.map(|value| format!("{name}={}", segment(value))))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

pub(crate) async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let client = ApiClient::new(&global.server, global.token.clone());
    let project = format!("/api/v1/projects/{}", segment(&global.project));
    match command {
        Command::Serve(_) => unreachable!("serve is handled by main"),
        Command::Flags(command) => flags::run(&client, global, &project, command).await,
        Command::Env(command) => projects::run(&client, global, &project, command).await,
        Command::Tokens(command) => tokens::run(&client, global, command).await,
        Command::Audit(args) => audit::run(&client, global, args).await,
        Command::Rollouts(command) => rollouts::run(&client, global, &project, command).await,
        Command::Webhooks(command) => webhooks::run(&client, global, &project, command).await,
        Command::Placement(command) => placement::run(&client, global, &project, command).await,
    }
}
