//! `capstan rollouts`: guarded rollouts.

use anyhow::{Context, anyhow};
use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::{Global, with_query};
use crate::client::ApiClient;
use capstan_server::rollouts::wire::{Estimate, Rollout, RolloutDetail, RolloutList};

use crate::output::{json_cell, print_answer, print_rows, text_cell};

#[derive(Subcommand)]
pub(crate) enum RolloutsCommand {
    /// Roll a flag out to a new variant step by step, guarded by metrics.
    Start {
        #[arg(long)]
        flag: String,
        #[arg(long = "env", short = 'e')]
        env: String,
        /// The variant to roll out; the variant served now is the control.
        #[arg(long)]
        to: String,
        /// Treatment shares in percent, e.g. 1,5,25,50,100 (the default).
        #[arg(long, value_delimiter = ',')]
        steps: Option<Vec<f64>>,
        /// Least time each step is held: 30s, 10m (the default), 1h.
        #[arg(long)]
        step_duration: Option<String>,
        /// Least units newly exposed to the treatment in each step (default 100).
        #[arg(long)]
        step_units: Option<u64>,
        /// A guardrail besides the defaults, as key=value pairs: metric=NAME (required),
        /// statistic=mean|p95|..., direction=higher_is_worse|lower_is_worse,
        /// relative=0.05, absolute=0, response=revert|pause|notify. Repeatable.
        #[arg(long = "guardrail")]
        guardrails: Vec<String>,
        /// Leave out the default guardrails (error mean, latency_ms mean and p95).
        #[arg(long)]
        no_default_guardrails: bool,
        /// Chance of reverting a change that is truly no different (default 0.01).
        #[arg(long)]
        false_revert_rate: Option<f64>,
        /// A step undecided this long pauses the rollout and notifies (default 24h).
        #[arg(long)]
        deadline: Option<String>,
    },
    /// List rollouts, newest first, active and finished.
    List {
        #[arg(long = "env", short = 'e')]
        env: Option<String>,
        #[arg(long)]
        flag: Option<String>,
        /// Only running and paused rollouts.
        #[arg(long)]
        active: bool,
    },
    /// Show a rollout: where it is and exactly why, its guardrails and its timeline.
    Status { id: i64 },
    /// Pause a running rollout: it holds its step until resumed.
    Pause {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused rollout at its step.
    Resume {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Move a rollout to its next step now.
    Promote {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stop a rollout and serve the control again.
    Abort {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `30s`, `10m`, `2h`, `1d` or a number of seconds.
pub(crate) fn parse_seconds(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((index, unit)) if unit.is_ascii_alphabetic() => (&text[..index], unit),
        _ => (text, 's'),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| anyhow!("invalid duration {text:?}; expected e.g. 30s, 10m, 2h"))?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(anyhow!("invalid duration {text:?}; use s, m, h or d")),
    };
    Ok(number * scale)
}

fn parse_guardrail(text: &str) -> anyhow::Result<Value> {
    let mut guardrail = Map::new();
    let mut tolerance = Map::new();
    for pair in text.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid guardrail {text:?}: expected key=value pairs"))?;
        match key.trim() {
            "metric" | "statistic" | "direction" | "response" => {
                guardrail.insert(key.trim().to_owned(), json!(value.trim()));
            }
            "relative" | "absolute" => {
                let number: f64 = value
                    .trim()
                    .parse()
                    .with_context(|| format!("invalid {key} in guardrail {text:?}"))?;
                tolerance.insert(key.trim().to_owned(), json!(number));
            }
            other => return Err(anyhow!("unknown guardrail field {other:?} in {text:?}")),
        }
    }
    if !guardrail.contains_key("metric") {
        return Err(anyhow!("guardrail {text:?} needs metric=NAME"));
    }
    if !tolerance.is_empty() {
        guardrail.insert("tolerance".to_owned(), Value::Object(tolerance));
    }
    Ok(Value::Object(guardrail))
}

pub(crate) async fn run(
    client: &ApiClient,
    global: &Global,
    project: &str,
    command: RolloutsCommand,
) -> anyhow::Result<()> {
    let base = format!("{project}/rollouts");
    let value = match command {
        RolloutsCommand::Start {
            flag,
            env,
            to,
            steps,
            step_duration,
            step_units,
            guardrails,
            no_default_guardrails,
            false_revert_rate,
            deadline,
        } => {
            let mut body = json!({ "flag": flag, "environment": env, "to": to });
            if steps.is_some() || step_duration.is_some() || step_units.is_some() {
                let percents = steps.unwrap_or_else(|| vec![1.0, 5.0, 25.0, 50.0, 100.0]);
                let duration = step_duration.as_deref().map(parse_seconds).transpose()?;
                let steps: Vec<Value> = percents
                    .iter()
                    .map(|percent| {
                        let mut step = json!({ "percent": percent });
                        if let Some(seconds) = duration {
                            step["minDurationSeconds"] = json!(seconds);
                        }
                        if let Some(units) = step_units {
                            step["minUnits"] = json!(units);
                        }
                        step
                    })
                    .collect();
                body["steps"] = json!(steps);
            }
            if !guardrails.is_empty() {
                let parsed: Vec<Value> = guardrails
                    .iter()
                    .map(|text| parse_guardrail(text))
                    .collect::<anyhow::Result<_>>()?;
                body["guardrails"] = json!(parsed);
            }
            if no_default_guardrails {
                body["defaultGuardrails"] = json!(false);
            }
            if let Some(rate) = false_revert_rate {
                body["falseRevertRate"] = json!(rate);
            }
            if let Some(deadline) = deadline {
                body["decisionDeadlineSeconds"] = json!(parse_seconds(&deadline)?);
            }
            client.post(&base, &body).await?
        }
        RolloutsCommand::List { env, flag, active } => {
            let path = with_query(
                &base,
                &[
                    ("environment", env.as_deref()),
                    ("flag", flag.as_deref()),
                    ("active", active.then_some("true")),
                ],
            );
            let value = client.get(&path).await?;
            return print_answer(global.json, &value, print_list);
        }
        RolloutsCommand::Status { id } => {
            let value = client.get(&format!("{base}/{id}")).await?;
            return print_answer(global.json, &value, |detail: RolloutDetail| {
                print_status(&detail.rollout)
            });
        }
        RolloutsCommand::Pause { id, reason } => steer(client, &base, id, "pause", reason).await?,
        RolloutsCommand::Resume { id, reason } => {
            steer(client, &base, id, "resume", reason).await?
        }
        RolloutsCommand::Promote { id, reason } => {
            steer(client, &base, id, "promote", reason).await?
        }
        RolloutsCommand::Abort { id, reason } => steer(client, &base, id, "abort", reason).await?,
    };
    print_answer(global.json, &value, |rollout: Rollout| {
        print_status(&rollout)
    })
}

/// Pauses, resumes, promotes or aborts a rollout, with the reason when one is given.
async fn steer(
    client: &ApiClient,
    base: &str,
    id: i64,
    action: &str,
    reason: Option<String>,
) -> anyhow::Result<Value> {
    let body = match reason {
        Some(reason) => json!({ "reason": reason }),
        None => json!({}),
    };
    client.post(&format!("{base}/{id}/{action}"), &body).await
}

fn print_list(list: RolloutList) {
    print_rows(
        &[
            "ID",
            "FLAG",
            "ENVIRONMENT",
            "CHANGE",
            "STATUS",
            "SHARE",
            "UPDATED",
        ],
        list.rollouts,
        |rollout| {
            vec![
                rollout.id.to_string(),
                rollout.flag,
                rollout.environment,
                format!("{} → {}", rollout.control, rollout.treatment),
                json_cell(&rollout.status),
                percent(rollout.percent),
                rollout.updated_at,
            ]
        },
    );
}

/// `5%`, `0.5%`: a share without a needless `.0`.
fn percent(share: f64) -> String {
    if share.fract() == 0.0 {
        format!("{share:.0}%")
    } else {
        format!("{share}%")
    }
}

fn number(value: Option<f64>) -> String {
    match value {
        Some(number) if number.abs() >= 100.0 => format!("{number:.1}"),
        Some(number) => format!("{number:.4}"),
        None => "-".to_owned(),
    }
}

fn print_status(rollout: &Rollout) {
    println!(
        "rollout {}: {} in {}, {} → {}",
        rollout.id, rollout.flag, rollout.environment, rollout.control, rollout.treatment
    );
    println!(
        "status: {} at {}",
        json_cell(&rollout.status),
        percent(rollout.percent)
    );
    println!("why: {}", rollout.reason);
    if let Some(units) = &rollout.units {
        println!(
            "units: {} control, {} treatment",
            units.control, units.treatment
        );
    }
    // No guardrail table before the judge's first reading.
    let guardrails = rollout.guardrails.as_deref().unwrap_or_default();
    if !guardrails.is_empty() {
        println!();
        print_rows(
            &[
                "GUARDRAIL",
                "VERDICT",
                "CONTROL",
                "TREATMENT",
                "DIFFERENCE",
                "INTERVAL",
                "TOLERANCE",
            ],
            guardrails,
            |reading| {
                // A reading with too little data has no estimate: its numbers show as "-".
                let field = |pick: fn(&Estimate) -> Option<f64>| {
                    number(reading.estimate.as_ref().and_then(pick))
                };
                vec![
                    reading.guardrail.clone(),
                    json_cell(&reading.verdict),
                    field(|estimate| Some(estimate.control)),
                    field(|estimate| Some(estimate.treatment)),
                    field(|estimate| Some(estimate.difference)),
                    format!(
                        "[{}, {}]",
                        field(|estimate| estimate.low),
                        field(|estimate| estimate.high)
                    ),
                    field(|estimate| Some(estimate.margin)),
                ]
            },
        );
    }
    println!();
    print_rows(
        &["STEP", "STARTED", "ENDED", "UNITS C/T", "OUTCOME"],
        &rollout.timeline,
        |step| {
            // A step that has not ended shows the units of the latest reading.
            let units = step.units_at_end.or(rollout.units);
            vec![
                percent(step.percent),
                step.started_at.clone(),
                text_cell(step.ended_at.as_deref()),
                format!(
                    "{}/{}",
                    json_cell(&units.map(|units| units.control)),
                    json_cell(&units.map(|units| units.treatment))
                ),
                text_cell(step.outcome.as_deref()),
            ]
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_guardrails_parse() {
        assert_eq!(parse_seconds("30s").unwrap(), 30);
        assert_eq!(parse_seconds("10m").unwrap(), 600);
        assert_eq!(parse_seconds("2h").unwrap(), 7_200);
        assert_eq!(parse_seconds("90").unwrap(), 90);
        assert!(parse_seconds("ten").is_err());
        assert!(parse_seconds("5w").is_err());
        assert_eq!(
            parse_guardrail("metric=plays,direction=lower_is_worse,relative=0.1,response=notify")
                .unwrap(),
            json!({"metric": "plays", "direction": "lower_is_worse", "response": "notify", "tolerance": {"relative": 0.1}})
        );
        assert!(parse_guardrail("direction=lower_is_worse").is_err());
        assert!(parse_guardrail("metric=plays,speed=3").is_err());
    }
}
