//! `capstan env`: the project's environments.

use clap::Subcommand;
use serde_json::json;

use super::Global;
use crate::client::ApiClient;
use crate::output::{cell, print_json, print_table};

#[derive(Subcommand)]
pub(crate) enum EnvCommand {
    /// List the project's environments.
    List,
    /// Create an environment; every flag is copied into it, disabled.
    Create {
        key: String,
        #[arg(long)]
        name: Option<String>,
    },
}

pub(crate) async fn run(
    client: &ApiClient,
    global: &Global,
    project: &str,
    command: EnvCommand,
) -> anyhow::Result<()> {
    match command {
        EnvCommand::List => {
            let value = client.get(&format!("{project}/environments")).await?;
            if global.json {
                print_json(&value);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = value["environments"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|env| {
                    vec![
                        cell(env.get("key")),
                        cell(env.get("name")),
                        cell(env.get("revision")),
                    ]
                })
                .collect();
            print_table(&["KEY", "NAME", "REVISION"], &rows);
        }
        EnvCommand::Create { key, name } => {
            let mut body = json!({ "key": key });
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            let value = client
                .post(&format!("{project}/environments"), &body)
                .await?;
            if global.json {
                print_json(&value)
            } else {
                println!("created environment {key}")
            }
        }
    }
    Ok(())
}
