//! `capstan env`: the project's environments.

use clap::Subcommand;
use serde_json::json;

use super::Global;
use crate::client::ApiClient;
use crate::output::{print_objects, print_response};

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
    let environments = format!("{project}/environments");
    match command {
        EnvCommand::List => {
            let value = client.get(&environments).await?;
            print_response(global.json, &value, |value| {
                print_objects(
                    value,
                    "environments",
                    &[("KEY", "key"), ("NAME", "name"), ("REVISION", "revision")],
                )
            });
        }
        EnvCommand::Create { key, name } => {
            let mut body = json!({ "key": key });
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            let value = client.post(&environments, &body).await?;
            print_response(global.json, &value, |_| {
                println!("created environment {key}")
            });
        }
    }
    Ok(())
}
