//! `capstan env`: the project's environments.

use clap::Subcommand;
use serde_json::json;

use super::Global;
use crate::client::ApiClient;
use capstan_server::core::wire::EnvironmentList;

use crate::output::{print_answer, print_response, print_rows};

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
            print_answer(global.json, &value, |list: EnvironmentList| {
                print_rows(&["KEY", "NAME", "REVISION"], list.environments, |env| {
                    vec![env.key, env.name, env.revision.to_string()]
                });
            })?;
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
