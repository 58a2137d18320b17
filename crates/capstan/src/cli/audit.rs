//! `capstan audit`: the audit trail.

use clap::Args;

use super::{Global, segment};
use crate::client::ApiClient;
use crate::output::{cell, print_json, print_table};

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
    let mut path = format!(
        "/api/v1/audit?project={}&limit={}",
        segment(&global.project),
        args.limit
    );
    if let Some(env) = &args.env {
        path.push_str(&format!("&environment={}", segment(env)));
    }
    if let Some(key) = &args.key {
        path.push_str(&format!("&key={}", segment(key)));
    }
    let value = client.get(&path).await?;
    if global.json {
        print_json(&value);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = value["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            vec![
                cell(entry.get("id")),
                cell(entry.get("at")),
                cell(entry.get("actor")),
                cell(entry.get("action")),
                cell(entry.get("environment")),
                cell(entry.get("key")),
            ]
        })
        .collect();
    print_table(
        &["ID", "AT", "ACTOR", "ACTION", "ENVIRONMENT", "KEY"],
        &rows,
    );
    Ok(())
}
