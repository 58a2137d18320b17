//! `capstan placement`: surfaces, items, and offline evaluation of policies from the
//! decision log.

use std::io::Write;

use anyhow::{Context, anyhow};
use capstan_bandit::offline::{Estimate, LoggedDecision, TargetPolicy, evaluate};
use capstan_bandit::{Candidate, Learner};
use capstan_server::placements::features::parse_features;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Global, segment, with_query};
use crate::client::ApiClient;
use crate::output::{cell, elements, print_json, print_objects, print_response, print_table};

#[derive(Subcommand)]
pub(crate) enum PlacementCommand {
    /// List the project's surfaces.
    Surfaces,
    /// Create a surface or change its description and settings.
    Surface {
        key: String,
        #[arg(long)]
        description: Option<String>,
        /// Settings to merge in, as JSON, e.g. '{"learner": {"holdout": 0.1}}'.
        #[arg(long)]
        settings: Option<String>,
    },
    /// Show a surface: settings, the lift of personalisation, items' impressions.
    Show { key: String },
    /// List a surface's items, or put items from a JSON file ([{"id", "features", "status"}]).
    Items {
        key: String,
        #[arg(long)]
        put: Option<String>,
    },
    /// Estimate from the decision log how other policies would have done (IPS,
    /// self-normalised IPS, doubly robust, with 95% intervals).
    Evaluate {
        key: String,
        /// Exploration shares to evaluate the current model with (besides its own).
        #[arg(long, value_delimiter = ',', default_values_t = vec![0.0, 0.1])]
        exploration: Vec<f64>,
    },
}

pub(crate) async fn run(
    client: &ApiClient,
    global: &Global,
    project: &str,
    command: PlacementCommand,
) -> anyhow::Result<()> {
    let base = format!("{project}/surfaces");
    match command {
        PlacementCommand::Surfaces => {
            let value = client.get(&base).await?;
            print_response(global.json, &value, |value| {
                print_objects(
                    value,
                    "surfaces",
                    &[
                        ("SURFACE", "key"),
                        ("DESCRIPTION", "description"),
                        ("UPDATED", "updatedAt"),
                    ],
                )
            });
        }
        PlacementCommand::Surface {
            key,
            description,
            settings,
        } => {
            let mut body = json!({});
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            if let Some(settings) = settings {
                body["settings"] =
                    serde_json::from_str(&settings).context("--settings is not valid JSON")?;
            }
            let path = format!("{base}/{}", segment(&key));
            print_json(&client.send(Method::PUT, &path, Some(&body), &[]).await?);
        }
        PlacementCommand::Show { key } => {
            let value = client.get(&format!("{base}/{}", segment(&key))).await?;
            print_response(global.json, &value, print_surface);
        }
        PlacementCommand::Items { key, put } => {
            let path = format!("{base}/{}/items", segment(&key));
            match put {
                Some(file) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("failed to read {file}"))?;
                    let items: Value = serde_json::from_str(&text)
                        .with_context(|| format!("{file} is not JSON"))?;
                    print_json(&client.post(&path, &json!({ "items": items })).await?);
                }
                None => {
                    let value = client.get(&path).await?;
                    print_response(global.json, &value, |value| {
                        print_objects(
                            value,
                            "items",
                            &[
                                ("ITEM", "id"),
                                ("STATUS", "status"),
                                ("FEATURES", "features"),
                            ],
                        )
                    });
                }
            }
        }
        PlacementCommand::Evaluate { key, exploration } => {
            let value = offline_evaluation(client, &base, &key, &exploration).await?;
            print_response(global.json, &value, print_evaluation);
        }
    }
    Ok(())
}

fn print_surface(surface: &Value) {
    println!(
        "surface: {}  {}",
        cell(surface.get("key")),
        cell(surface.get("description"))
    );
    println!("model version: {}", cell(surface.get("modelVersion")));
    let lift = &surface["lift"];
    println!(
        "personalised: {} decisions, mean reward {}",
        cell(lift["personalized"].get("decisions")),
        cell(lift["personalized"].get("meanReward"))
    );
    println!(
        "holdout: {} decisions, mean reward {}",
        cell(lift["holdout"].get("decisions")),
        cell(lift["holdout"].get("meanReward"))
    );
    match lift.get("difference").filter(|d| !d.is_null()) {
        Some(difference) => println!(
            "lift: {} [{}, {}] (95%)",
            cell(difference.get("estimate")),
            cell(difference.get("low")),
            cell(difference.get("high"))
        ),
        None => println!("lift: not enough holdout decisions yet"),
    }
    let rows: Vec<Vec<String>> = elements(surface, "items")
        .map(|item| {
            vec![
                cell(item.get("id")),
                cell(item.get("impressions")),
                cell(item.get("rewardSum")),
                if item["underTest"] == true {
                    "under test"
                } else {
                    "-"
                }
                .to_owned(),
            ]
        })
        .collect();
    println!();
    print_table(&["ITEM", "IMPRESSIONS", "REWARD SUM", "TESTING"], &rows);
}

/// Draws a progress bar on stderr (only when it is a terminal).
struct Progress {
    label: &'static str,
    shown: bool,
}

impl Progress {
    fn new(label: &'static str) -> Progress {
        use std::io::IsTerminal;
        Progress {
            label,
            shown: std::io::stderr().is_terminal(),
        }
    }

    fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.shown {
            return;
        }
        let mut stderr = std::io::stderr();
        let _ = match total {
            Some(total) if total > 0 => {
                let filled = (done * 30 / total) as usize;
                write!(
                    stderr,
                    "\r{} [{}{}] {done}/{total}",
                    self.label,
                    "#".repeat(filled),
                    " ".repeat(30 - filled.min(30))
                )
            }
            _ => write!(stderr, "\r{} {done}", self.label),
        };
        let _ = stderr.flush();
    }

    fn finish(&mut self) {
        if self.shown {
            let _ = writeln!(std::io::stderr());
        }
    }
}

fn logged_decision(decision: &Value) -> anyhow::Result<LoggedDecision> {
    let context = parse_features("context", &decision["context"]).map_err(|e| anyhow!("{e}"))?;
    let candidates = elements(decision, "candidates")
        .map(|candidate| {
            Ok(Candidate {
                id: cell(candidate.get("id")),
                features: parse_features("features", &candidate["features"])
                    .map_err(|e| anyhow!("{e}"))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(LoggedDecision {
        context,
        candidates,
        shown: decision["shown"].as_u64().unwrap_or(0) as usize,
        probability: decision["probability"].as_f64().unwrap_or(0.0),
        reward: decision["reward"].as_f64().unwrap_or(0.0),
    })
}

fn estimate_json(estimate: &Estimate) -> Value {
    let finite = |value: f64| value.is_finite().then_some(value);
    json!({
        "value": finite(estimate.value),
        "low": finite(estimate.low),
        "high": finite(estimate.high),
        "samples": estimate.samples,
    })
}

async fn offline_evaluation(
    client: &ApiClient,
    base: &str,
    key: &str,
    exploration: &[f64],
) -> anyhow::Result<Value> {
    let surface = format!("{base}/{}", segment(key));
    let mut log = Vec::new();
    let mut cursor: Option<String> = None;
    let mut reading = Progress::new("reading decisions");
    loop {
        let path = with_query(
            &format!("{surface}/decisions"),
            &[("limit", Some("5000")), ("after", cursor.as_deref())],
        );
        let page = client.get(&path).await?;
        for decision in elements(&page, "decisions") {
            log.push(logged_decision(decision)?);
        }
        reading.update(log.len() as u64, None);
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    reading.finish();
    let model = client.bytes(&format!("{surface}/model")).await?;
    let learner = model
        .map(|bytes| {
            Learner::load(&bytes).map_err(|error| anyhow!("the saved model is not valid: {error}"))
        })
        .transpose()?;
    let mut policies: Vec<(String, TargetPolicy<'_>)> = vec![
        ("uniform random".to_owned(), TargetPolicy::Uniform),
        ("global ranking".to_owned(), TargetPolicy::Global),
    ];
    let mut variants = Vec::new();
    if let Some(learner) = &learner {
        for share in exploration {
            let mut settings = learner.settings().clone();
            settings.exploration = *share;
            variants.push((format!("current model, exploration {share}"), settings));
        }
    }
    if let Some(learner) = &learner {
        policies.push(("current model".to_owned(), TargetPolicy::Learner(learner)));
        for (name, settings) in &variants {
            policies.push((name.clone(), TargetPolicy::LearnerWith(learner, settings)));
        }
    }
    let mut rows = Vec::new();
    let mut logged = None;
    for (name, policy) in policies {
        let mut progress = Progress::new("evaluating");
        let evaluation = evaluate(&log, policy, &mut |done, total| {
            progress.update(done, Some(total))
        })
        .map_err(|error| anyhow!("{name}: {error}"))?;
        progress.finish();
        logged.get_or_insert_with(|| estimate_json(&evaluation.logged));
        rows.push(json!({
            "policy": name,
            "ips": estimate_json(&evaluation.ips),
            "snips": estimate_json(&evaluation.snips),
            "doublyRobust": estimate_json(&evaluation.doubly_robust),
            "skipped": evaluation.skipped,
        }));
    }
    Ok(json!({
        "surface": key,
        "decisions": log.len(),
        "logged": logged,
        "model": learner.is_some(),
        "policies": rows,
    }))
}

fn print_evaluation(value: &Value) {
    let show = |estimate: &Value| match (
        estimate["value"].as_f64(),
        estimate["low"].as_f64(),
        estimate["high"].as_f64(),
    ) {
        (Some(value), Some(low), Some(high)) => format!("{value:.4} [{low:.4}, {high:.4}]"),
        (Some(value), _, _) => format!("{value:.4}"),
        _ => "-".to_owned(),
    };
    println!(
        "{} decisions; logged mean reward {}",
        cell(value.get("decisions")),
        show(&value["logged"])
    );
    if value["model"] == false {
        println!("no saved model yet: only the model-free policies are evaluated");
    }
    let rows: Vec<Vec<String>> = elements(value, "policies")
        .map(|row| {
            vec![
                cell(row.get("policy")),
                show(&row["ips"]),
                show(&row["snips"]),
                show(&row["doublyRobust"]),
            ]
        })
        .collect();
    print_table(
        &["POLICY", "IPS (95%)", "SNIPS (95%)", "DOUBLY ROBUST (95%)"],
        &rows,
    );
}
