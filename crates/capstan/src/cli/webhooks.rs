//! `capstan webhooks`: where the news of rollouts goes (Slack-compatible, signed).

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::{Global, segment};
use crate::client::ApiClient;
use crate::output::{cell, print_json, print_table};

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
    let value = match command {
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
            if !global.json {
                println!("{}", cell(value.get("id")));
                println!("signing secret (shown once): {}", cell(value.get("secret")));
                return Ok(());
            }
            value
        }
        WebhooksCommand::List => {
            let value = client.get(&base).await?;
            if !global.json {
                let rows: Vec<Vec<String>> = value["webhooks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|webhook| {
                        vec![
                            cell(webhook.get("id")),
                            cell(webhook.get("url")),
                            cell(webhook.get("events")),
                            cell(webhook.get("createdAt")),
                        ]
                    })
                    .collect();
                print_table(&["ID", "URL", "EVENTS", "CREATED"], &rows);
                return Ok(());
            }
            value
        }
        WebhooksCommand::Delete { id } => {
            client
                .send(
                    Method::DELETE,
                    &format!("{base}/{}", segment(&id)),
                    None,
                    &[],
                )
                .await?;
            if !global.json {
                println!("deleted webhook {id}");
                return Ok(());
            }
            json!({ "deleted": id })
        }
        WebhooksCommand::Deliveries { id } => {
            let value = client
                .get(&format!("{base}/{}/deliveries", segment(&id)))
                .await?;
            if !global.json {
                let rows: Vec<Vec<String>> = value["deliveries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|delivery| {
                        vec![
                            cell(delivery.get("id")),
                            cell(delivery.get("event")),
                            cell(delivery.get("status")),
                            cell(delivery.get("attempts")),
                            cell(delivery.get("lastError")),
                        ]
                    })
                    .collect();
                print_table(&["ID", "EVENT", "STATUS", "ATTEMPTS", "LAST ERROR"], &rows);
                return Ok(());
            }
            value
        }
    };
    print_json(&value);
    Ok(())
}
