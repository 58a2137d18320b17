//! `capstan audit`: the audit trail.

use clap::Args;

use super::{Global, with_query};
use crate::client::ApiClient;
use crate::output::{print_objects, print_response};

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
    print_response(global.json, &value, |value| {
        print_objects(
            value,
            "entries",
            &[
                ("ID", "id"),
                ("AT", "at"),
                ("ACTOR", "actor"),
                ("ACTION", "action"),
                ("ENVIRONMENT", "environment"),
                ("KEY", "key"),
            ],
        )
    });
    Ok(())
}
