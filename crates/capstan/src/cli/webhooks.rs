//! `capstan webhooks`: where the news of rollouts goes (Slack-compatible, signed).

use clap::Subcommand;
use serde_json::json;

use super::{Global, segment};
use crate::client::ApiClient;
use crate::output::{cell, print_objects, print_response};

#[derive(Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Add a webhook; prints its signing secret once.
    Create {
        #[arg(long)]
        url: String,
        /// Events to send, e.g. rollout.reverted,rollout.paused (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// The signing secret (generated when omitted).
        #[arg(long)]
        secret: Option<String>,
    },
    /// List the project's webhooks.
    List,
    /// Remove a webhook.
    Delete { id: String },
    /// Show a webhook's deliveries.
    Deliveries { id: String },
}

pub(crate) async fn run(
    client: &ApiClient,
    global: &Global,
    project: &str,
    command: WebhooksCommand,
) -> anyhow::Result<()> {
    let base = format!("{project}/webhooks");
    match command {
        WebhooksCommand::Create {
            url,
            events,
            secret,
        } => {
            let mut body = json!({ "url": url });
            if let Some(events) = events {
                body["events"] = json!(events);
            }
            if let Some(secret) = secret {
                body["secret"] = json!(secret);
            }
            let value = client.post(&base, &body).await?;
            print_response(global.json, &value, |value| {
                println!("{}", cell(value.get("id")));
                println!("signing secret (shown once): {}", cell(value.get("secret")));
            });
        }
        WebhooksCommand::List => {
            let value = client.get(&base).await?;
            print_response(global.json, &value, |value| {
                print_objects(
                    value,
                    "webhooks",
                    &[
                        ("ID", "id"),
                        ("URL", "url"),
                        ("EVENTS", "events"),
                        ("CREATED", "createdAt"),
                    ],
                )
            });
        }
        WebhooksCommand::Delete { id } => {
            client.delete(&format!("{base}/{}", segment(&id))).await?;
            print_response(global.json, &json!({ "deleted": id }), |_| {
                println!("deleted webhook {id}")
            });
        }
        WebhooksCommand::Deliveries { id } => {
            let value = client
                .get(&format!("{base}/{}/deliveries", segment(&id)))
                .await?;
            print_response(global.json, &value, |value| {
                print_objects(
                    value,
                    "deliveries",
                    &[
                        ("ID", "id"),
                        ("EVENT", "event"),
                        ("STATUS", "status"),
                        ("ATTEMPTS", "attempts"),
                        ("LAST ERROR", "lastError"),
                    ],
                )
            });
        }
    }
    Ok(())
}
