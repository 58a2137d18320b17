//! `capstan audit`: the audit trail.

use clap::Args;

use super::{Global, with_query};
use crate::client::ApiClient;
use capstan_server::core::wire::AuditLog;

use crate::output::{print_answer, print_rows, text_cell};

#[derive(Args)]
pub(crate) struct AuditArgs {
    #[arg(long = "env", short = 'e')]
    env: Option<String>,
    /// Only entries about this resource key (a flag key, a token id...).
    #[arg(long)]
    key: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

pub(crate) async fn run(
    client: &ApiClient,
    global: &Global,
    args: AuditArgs,
) -> anyhow::Result<()> {
    let path = with_query(
        "/api/v1/audit",
        &[
            ("project", Some(global.project.as_str())),
            ("limit", Some(args.limit.to_string().as_str())),
            ("environment", args.env.as_deref()),
            ("key", args.key.as_deref()),
        ],
    );
    let value = client.get(&path).await?;
    print_answer(global.json, &value, |log: AuditLog| {
        print_rows(
            &["ID", "AT", "ACTOR", "ACTION", "ENVIRONMENT", "KEY"],
            log.entries,
            |entry| {
                vec![
                    entry.id.to_string(),
                    entry.at,
                    entry.actor,
                    entry.action,
                    text_cell(entry.environment.as_deref()),
                    entry.key,
                ]
            },
        );
    })
}
