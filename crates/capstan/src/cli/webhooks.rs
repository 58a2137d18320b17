//! `capstan webhooks`: where the news of rollouts goes (Slack-compatible, signed).

use clap::Subcommand;
use serde_json::json;

use super::{Global, segment};
use crate::client::ApiClient;
use capstan_server::webhooks::wire::{CreatedWebhook, DeliveryList, WebhookList};

use crate::output::{json_cell, print_answer, print_response, print_rows, text_cell};

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
            print_answer(global.json, &value, |created: CreatedWebhook| {
                println!("{}", created.webhook.id);
                println!("signing secret (shown once): {}", created.secret);
            })?;
        }
        WebhooksCommand::List => {
            let value = client.get(&base).await?;
            print_answer(global.json, &value, |list: WebhookList| {
                print_rows(
                    &["ID", "URL", "EVENTS", "CREATED"],
                    list.webhooks,
                    |webhook| {
                        vec![
                            webhook.id,
                            webhook.url,
                            json_cell(&webhook.events),
                            webhook.created_at,
                        ]
                    },
                );
            })?;
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
            print_answer(global.json, &value, |list: DeliveryList| {
                print_rows(
                    &["ID", "EVENT", "STATUS", "ATTEMPTS", "LAST ERROR"],
                    list.deliveries,
                    |delivery| {
                        vec![
                            delivery.id.to_string(),
                            delivery.event,
                            json_cell(&delivery.status),
                            delivery.attempts.to_string(),
                            text_cell(delivery.last_error.as_deref()),
                        ]
                    },
                );
            })?;
        }
    }
    Ok(())
}
