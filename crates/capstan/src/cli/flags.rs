//! `capstan flags`: create, change, inspect, schedule, import and export feature flags.

use anyhow::{Context, anyhow};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{EnvArg, Global, json_option, segment};
use crate::client::ApiClient;
use capstan_server::flags::wire::{
    EnvironmentFlag, EnvironmentFlagList, Flag, FlagHistory, FlagList, ImportSummary, Schedule,
};

use crate::output::{cell, print_answer, print_json, print_response, print_rows};

#[derive(Subcommand)]
pub(crate) enum FlagsCommand {
    /// List flags (with their configuration in one environment when --env is given).
    List {
        #[arg(long = "env", short = 'e')]
        env: Option<String>,
    },
    /// Show one flag (in one environment when --env is given).
    Get {
        key: String,
        #[arg(long = "env", short = 'e')]
        env: Option<String>,
    },
    /// Create a flag in every environment, disabled.
    Create {
        key: String,
        /// boolean, string, number or object (inferred from --variants when omitted).
        #[arg(long = "type")]
        flag_type: Option<String>,
        /// Variants as a JSON object, e.g. '{"on": true, "off": false}'.
        #[arg(long)]
        variants: Option<String>,
        #[arg(long)]
        default_variant: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Let client (browser/mobile) keys evaluate this flag.
        #[arg(long)]
        client_visible: bool,
    },
    /// Change a flag: its configuration in one environment (--env), or its description
    /// and visibility.
    Update {
        key: String,
        #[arg(long = "env", short = 'e')]
        env: Option<String>,
        /// Targeting as JsonLogic JSON, @FILE to read it from a file, or "null" to remove it.
        #[arg(long)]
        targeting: Option<String>,
        #[arg(long)]
        variants: Option<String>,
        #[arg(long)]
        default_variant: Option<String>,
        /// Prerequisites as JSON, e.g. '[{"flag": "new-api", "variants": ["on"]}]'.
        #[arg(long)]
        prerequisites: Option<String>,
        /// Only change the flag if it is still at this version (optimistic concurrency).
        #[arg(long)]
        if_version: Option<i64>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        client_visible: Option<bool>,
    },
    /// Turn a flag on in an environment.
    Enable {
        key: String,
        #[command(flatten)]
        env: EnvArg,
    },
    /// Turn a flag off in an environment.
    Disable {
        key: String,
        #[command(flatten)]
        env: EnvArg,
    },
    /// Delete a flag from every environment.
    Delete { key: String },
    /// Show every change to a flag in an environment.
    History {
        key: String,
        #[command(flatten)]
        env: EnvArg,
    },
    /// Restore an earlier version of a flag in an environment, as a new change.
    Revert {
        key: String,
        #[command(flatten)]
        env: EnvArg,
        /// The version to restore (see `capstan flags history`).
        #[arg(long = "to")]
        version: i64,
    },
    /// Schedule a change: enable, disable or setTargeting at a time.
    Schedule {
        key: String,
        #[command(flatten)]
        env: EnvArg,
        /// When, as RFC 3339 (e.g. 2026-12-01T09:00:00Z).
        #[arg(long)]
        at: String,
        /// enable, disable or setTargeting.
        #[arg(long)]
        action: String,
        /// The targeting for setTargeting (JSON or @FILE).
        #[arg(long)]
        targeting: Option<String>,
    },
    /// Create or update the flags of a flagd file in an environment, as one change.
    Import {
        file: String,
        #[command(flatten)]
        env: EnvArg,
        /// Make the environment exactly the file: remove flags and segments not in it.
        #[arg(long)]
        replace: bool,
    },
    /// Print an environment's flags as a flagd file.
    Export {
        #[command(flatten)]
        env: EnvArg,
    },
}

fn environment_path(project: &str, env: &str) -> String {
    format!("{project}/environments/{}", segment(env))
}

/// A flag in one environment: its configuration there.
fn flag_path(project: &str, env: &str, key: &str) -> String {
    format!("{}/flags/{}", environment_path(project, env), segment(key))
}

/// A flag in the project, across every environment: its type, description, visibility.
fn project_flag_path(project: &str, key: &str) -> String {
    format!("{project}/flags/{}", segment(key))
}

/// A flag across its project: attributes, then its state in every environment.
fn print_flag(flag: Flag) {
    let attributes = &flag.attributes;
    println!(
        "{} ({})  {}",
        attributes.key, attributes.flag_type, attributes.description
    );
    print_rows(
        &["ENVIRONMENT", "STATE", "DEFAULT", "VERSION"],
        flag.environments.iter(),
        |(env, config)| {
            vec![
                env.clone(),
                cell(config.definition.get("state")),
                cell(config.definition.get("defaultVariant")),
                config.version.to_string(),
            ]
        },
    );
}

/// A flag in one environment, a field a line.
fn print_flag_in(flag: EnvironmentFlag) {
    let definition = &flag.config.definition;
    println!("key: {}", flag.attributes.key);
    println!("type: {}", flag.attributes.flag_type);
    println!("environment: {}", flag.environment);
    println!("state: {}", cell(definition.get("state")));
    println!("defaultVariant: {}", cell(definition.get("defaultVariant")));
    println!("version: {}", flag.config.version);
    println!("clientVisible: {}", flag.attributes.client_visible);
    println!("updatedAt: {}", flag.config.updated_at);
    println!("variants: {}", cell(definition.get("variants")));
    if let Some(targeting) = definition.get("targeting") {
        println!("targeting: {targeting}");
    }
    if let Some(prerequisites) = definition.get("prerequisites") {
        println!("prerequisites: {prerequisites}");
    }
}

/// Flags with their state in every environment, one line a flag.
fn print_flags_everywhere(list: FlagList) {
    print_rows(
        &["KEY", "TYPE", "ENVIRONMENTS"],
        list.flags.iter(),
        |flag| {
            let states: Vec<String> = flag
                .environments
                .iter()
                .map(|(env, config)| format!("{env}={}", cell(config.definition.get("state"))))
                .collect();
            vec![
                flag.attributes.key.clone(),
                flag.attributes.flag_type.clone(),
                states.join(" "),
            ]
        },
    );
}

/// Flags of one environment, one line a flag.
fn print_flags_in(list: EnvironmentFlagList) {
    print_rows(
        &["KEY", "TYPE", "STATE", "DEFAULT", "VERSION"],
        list.flags.iter(),
        |flag| {
            vec![
                flag.attributes.key.clone(),
                flag.attributes.flag_type.clone(),
                cell(flag.config.definition.get("state")),
                cell(flag.config.definition.get("defaultVariant")),
                flag.config.version.to_string(),
            ]
        },
    );
}

fn print_history(history: FlagHistory) {
    print_rows(
        &["VERSION", "AT", "ACTOR", "ACTION", "STATE"],
        history.versions.iter(),
        |version| {
            let state = version.config.as_ref().and_then(|c| c.get("state"));
            vec![
                version.version.to_string(),
                version.at.clone(),
                version.actor.clone(),
                version.action.clone(),
                cell(state),
            ]
        },
    );
}

pub(crate) async fn run(
    client: &ApiClient,
    global: &Global,
    project: &str,
    command: FlagsCommand,
) -> anyhow::Result<()> {
    match command {
        FlagsCommand::List { env } => {
            let path = match &env {
                Some(env) => format!("{}/flags", environment_path(project, env)),
                None => format!("{project}/flags"),
            };
            let value = client.get(&path).await?;
            match env {
                Some(_) => print_answer(global.json, &value, print_flags_in)?,
                None => print_answer(global.json, &value, print_flags_everywhere)?,
            }
        }
        FlagsCommand::Get { key, env } => {
            let path = match &env {
                Some(env) => flag_path(project, env, &key),
                None => project_flag_path(project, &key),
            };
            let value = client.get(&path).await?;
            match env {
                Some(_) => print_answer(global.json, &value, print_flag_in)?,
                None => print_answer(global.json, &value, print_flag)?,
            }
        }
        FlagsCommand::Create {
            key,
            flag_type,
            variants,
            default_variant,
            description,
            client_visible,
        } => {
            let mut body = json!({ "key": key, "clientVisible": client_visible });
            if let Some(flag_type) = flag_type {
                body["type"] = json!(flag_type);
            }
            if let Some(variants) = variants {
                body["variants"] = json_option("variants", &variants)?;
            }
            if let Some(default_variant) = default_variant {
                body["defaultVariant"] = json!(default_variant);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let value = client.post(&format!("{project}/flags"), &body).await?;
            print_response(global.json, &value, |_| {
                println!("created flag {key} (disabled in every environment)")
            });
        }
        FlagsCommand::Update {
            key,
            env,
            targeting,
            variants,
            default_variant,
            prerequisites,
            if_version,
            description,
            client_visible,
        } => {
            let mut changed = false;
            let mut config = Map::new();
            if let Some(targeting) = targeting {
                config.insert("targeting".into(), json_option("targeting", &targeting)?);
            }
            if let Some(variants) = variants {
                config.insert("variants".into(), json_option("variants", &variants)?);
            }
            if let Some(default_variant) = default_variant {
                config.insert("defaultVariant".into(), json!(default_variant));
            }
            if let Some(prerequisites) = prerequisites {
                config.insert(
                    "prerequisites".into(),
                    json_option("prerequisites", &prerequisites)?,
                );
            }
            let mut last = Value::Null;
            if !config.is_empty() {
                let env = env
                    .ok_or_else(|| anyhow!("--env is required to change a flag's configuration"))?;
                let headers: Vec<(&str, String)> = if_version
                    .map(|version| vec![("if-match", format!("\"{version}\""))])
                    .unwrap_or_default();
                last = client
                    .send(
                        Method::PATCH,
                        &flag_path(project, &env, &key),
                        Some(&Value::Object(config)),
                        &headers,
                    )
                    .await?;
                changed = true;
            }
            let mut attributes = Map::new();
            if let Some(description) = description {
                attributes.insert("description".into(), json!(description));
            }
            if let Some(client_visible) = client_visible {
                attributes.insert("clientVisible".into(), json!(client_visible));
            }
            if !attributes.is_empty() {
                last = client
                    .send(
                        Method::PATCH,
                        &project_flag_path(project, &key),
                        Some(&Value::Object(attributes)),
                        &[],
                    )
                    .await?;
                changed = true;
            }
            if !changed {
                return Err(anyhow!(
                    "nothing to change; see `capstan flags update --help`"
                ));
            }
            print_response(global.json, &last, |_| println!("updated flag {key}"));
        }
        FlagsCommand::Enable { key, env } => {
            toggle(client, global, project, &key, &env.env, "enable").await?
        }
        FlagsCommand::Disable { key, env } => {
            toggle(client, global, project, &key, &env.env, "disable").await?
        }
        FlagsCommand::Delete { key } => {
            client.delete(&project_flag_path(project, &key)).await?;
            print_response(global.json, &json!({ "deleted": key }), |_| {
                println!("deleted flag {key}")
            });
        }
        FlagsCommand::History { key, env } => {
            let path = flag_path(project, &env.env, &key);
            let value = client.get(&format!("{path}/history")).await?;
            print_answer(global.json, &value, print_history)?;
        }
        FlagsCommand::Revert { key, env, version } => {
            let path = flag_path(project, &env.env, &key);
            let value = client
                .post(&format!("{path}/revert"), &json!({ "version": version }))
                .await?;
            print_answer(global.json, &value, |flag: EnvironmentFlag| {
                println!(
                    "reverted flag {key} in {} to version {version} (now version {})",
                    env.env, flag.config.version
                )
            })?;
        }
        FlagsCommand::Schedule {
            key,
            env,
            at,
            action,
            targeting,
        } => {
            let mut body = json!({ "at": at, "action": action });
            if let Some(targeting) = targeting {
                body["targeting"] = json_option("targeting", &targeting)?;
            }
            let path = flag_path(project, &env.env, &key);
            let value = client.post(&format!("{path}/schedules"), &body).await?;
            print_answer(global.json, &value, |schedule: Schedule| {
                println!(
                    "scheduled {action} of {key} in {} at {at} (id {})",
                    env.env, schedule.id
                )
            })?;
        }
        FlagsCommand::Import { file, env, replace } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("failed to read {file}"))?;
            let document: Value =
                serde_json::from_str(&text).with_context(|| format!("{file} is not valid JSON"))?;
            let path = format!(
                "{}/flagd?replace={replace}",
                environment_path(project, &env.env)
            );
            let value = client.post(&path, &document).await?;
            print_answer(global.json, &value, |summary: ImportSummary| {
                println!(
                    "imported {file} into {}: {} created, {} updated, {} removed",
                    env.env,
                    summary.created.len(),
                    summary.updated.len(),
                    summary.removed.len()
                );
            })?;
        }
        FlagsCommand::Export { env } => {
            let path = format!("{}/flagd", environment_path(project, &env.env));
            print_json(&client.get(&path).await?);
        }
    }
    Ok(())
}

async fn toggle(
    client: &ApiClient,
    global: &Global,
    project: &str,
    key: &str,
    env: &str,
    action: &str,
) -> anyhow::Result<()> {
    let path = flag_path(project, env, key);
    let value = client.post(&format!("{path}/{action}"), &json!({})).await?;
    print_answer(global.json, &value, |flag: EnvironmentFlag| {
        println!(
            "{key} is {} in {env} (version {})",
            cell(flag.config.definition.get("state")).to_lowercase(),
            flag.config.version
        )
    })
}
