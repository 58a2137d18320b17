//! `capstan tokens`: API tokens.

use clap::Subcommand;
use serde_json::json;

use super::{Global, segment};
use crate::client::ApiClient;
use capstan_server::core::wire::{CreatedToken, RotatedToken, TokenList};

use crate::output::{print_answer, print_response, print_rows, text_cell};

#[derive(Subcommand)]
pub(crate) enum TokensCommand {
    /// Create a token and print it (only now; it is stored as a hash).
    Create {
        /// admin, editor, viewer, sdk or client.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        /// The environment an sdk or client token evaluates in.
        #[arg(long = "env", short = 'e')]
        env: Option<String>,
        /// Seconds until the token expires.
        #[arg(long)]
        expires_in: Option<i64>,
    },
    /// List tokens (never their secrets).
    List,
    /// Replace a token; the old one keeps working for the grace period.
    Rotate {
        id: String,
        /// Seconds the old token keeps working (the server's default when omitted).
        #[arg(long)]
        grace: Option<i64>,
    },
    /// Revoke a token at once.
    Revoke { id: String },
}

pub(crate) async fn run(
    client: &ApiClient,
    global: &Global,
    command: TokensCommand,
) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create {
            role,
            name,
            env,
            expires_in,
        } => {
            let mut body = json!({ "role": role, "name": name, "project": global.project });
            if let Some(env) = env {
                body["environment"] = json!(env);
            }
            if let Some(seconds) = expires_in {
                body["expiresInSeconds"] = json!(seconds);
            }
            let value = client.post("/api/v1/tokens", &body).await?;
            // The token alone on stdout, so `TOKEN=$(capstan tokens create ...)` works.
            print_answer(global.json, &value, |created: CreatedToken| {
                println!("{}", created.secret)
            })?;
        }
        TokensCommand::List => {
            let value = client.get("/api/v1/tokens").await?;
            print_answer(global.json, &value, |list: TokenList| {
                print_rows(
                    &[
                        "ID",
                        "NAME",
                        "ROLE",
                        "ENVIRONMENT",
                        "HINT",
                        "STATUS",
                        "EXPIRES",
                    ],
                    list.tokens,
                    |token| {
                        vec![
                            token.id,
                            token.name,
                            token.role,
                            text_cell(token.environment.as_deref()),
                            token.hint,
                            token.status.as_str().to_owned(),
                            text_cell(token.expires_at.as_deref()),
                        ]
                    },
                );
            })?;
        }
        TokensCommand::Rotate { id, grace } => {
            let body = match grace {
                Some(seconds) => json!({ "gracePeriodSeconds": seconds }),
                None => json!({}),
            };
            let value = client
                .post(&format!("/api/v1/tokens/{}/rotate", segment(&id)), &body)
                .await?;
            print_answer(global.json, &value, |rotated: RotatedToken| {
                eprintln!("{id} keeps working until {}", rotated.replaced_expires_at);
                println!("{}", rotated.created.secret);
            })?;
        }
        TokensCommand::Revoke { id } => {
            let value = client
                .delete(&format!("/api/v1/tokens/{}", segment(&id)))
                .await?;
            print_response(global.json, &value, |_| println!("revoked {id}"));
        }
    }
    Ok(())
}
