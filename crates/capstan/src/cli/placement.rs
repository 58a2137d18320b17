//! `capstan placement`: surfaces, items, and offline evaluation of policies from the
//! decision log.

use std::io::Write;

use anyhow::{Context, anyhow};
use capstan_bandit::offline::{Estimate, LoggedDecision, TargetPolicy, evaluate};
use capstan_bandit::{Candidate, Learner};
use capstan_server::placements::features::parse_features;
use capstan_server::placements::wire::{
    Decision, DecisionPage, ItemList, SurfaceDetail, SurfaceList,
};
use clap::Subcommand;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Global, segment, with_query};
use crate::client::ApiClient;
use crate::output::{decode, json_cell, print_answer, print_json, print_rows};

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
            print_answer(global.json, &value, |list: SurfaceList| {
                print_rows(
                    &["SURFACE", "DESCRIPTION", "UPDATED"],
                    list.surfaces,
                    |surface| vec![surface.key, surface.description, surface.updated_at],
                );
            })?;
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
            print_answer(global.json, &value, print_surface)?;
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
                    print_answer(global.json, &value, |list: ItemList| {
                        print_rows(&["ITEM", "STATUS", "FEATURES"], list.items, |item| {
                            vec![item.id, json_cell(&item.status), json_cell(&item.features)]
                        });
                    })?;
                }
            }
        }
        PlacementCommand::Evaluate { key, exploration } => {
            let evaluation = offline_evaluation(client, &base, &key, &exploration).await?;
            if global.json {
                print_json(&serde_json::to_value(&evaluation)?);
            } else {
                print_evaluation(&evaluation);
            }
        }
    }
    Ok(())
}

fn print_surface(detail: SurfaceDetail) {
    println!(
        "surface: {}  {}",
        detail.surface.key, detail.surface.description
    );
    println!("model version: {}", detail.model_version);
    let lift = &detail.lift;
    println!(
        "personalised: {} decisions, mean reward {}",
        lift.personalized.decisions,
        json_cell(&lift.personalized.mean_reward)
    );
    println!(
        "holdout: {} decisions, mean reward {}",
        lift.holdout.decisions,
        json_cell(&lift.holdout.mean_reward)
    );
    match &lift.difference {
        Some(difference) => println!(
            "lift: {} [{}, {}] (95%)",
            json_cell(&difference.estimate),
            json_cell(&difference.low),
            json_cell(&difference.high)
        ),
        None => println!("lift: not enough holdout decisions yet"),
    }
    println!();
    print_rows(
        &["ITEM", "IMPRESSIONS", "REWARD SUM", "TESTING"],
        detail.items,
        |item| {
            vec![
                item.id,
                item.impressions.to_string(),
                json_cell(&item.reward_sum),
                if item.under_test { "under test" } else { "-" }.to_owned(),
            ]
        },
    );
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

fn logged_decision(decision: &Decision) -> anyhow::Result<LoggedDecision> {
    let context = parse_features("context", &decision.context).map_err(|e| anyhow!("{e}"))?;
    let candidates = decision
        .candidates
        .iter()
        .map(|candidate| {
            Ok(Candidate {
                id: candidate.id.clone(),
                features: parse_features("features", &candidate.features)
                    .map_err(|e| anyhow!("{e}"))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(LoggedDecision {
        context,
        candidates,
        shown: decision.shown,
        probability: decision.probability.unwrap_or(0.0),
        reward: decision.reward,
    })
}

/// What `placement evaluate` finds. The CLI computes it from the decision log and the
/// saved model; the server has no such answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Evaluation {
    surface: String,
    decisions: usize,
    /// The mean reward of the policy that made the logged decisions.
    logged: Option<FiniteEstimate>,
    /// Whether there was a saved model to evaluate.
    model: bool,
    policies: Vec<PolicyEvaluation>,
}

/// How one policy would have done, by three estimators.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyEvaluation {
    policy: String,
    ips: FiniteEstimate,
    snips: FiniteEstimate,
    doubly_robust: FiniteEstimate,
    /// Logged decisions the policy could not be evaluated on.
    skipped: u64,
}

/// An estimate with a 95% interval; a bound that is not finite is null.
#[derive(Serialize)]
struct FiniteEstimate {
    value: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
    samples: u64,
}

impl From<&Estimate> for FiniteEstimate {
    fn from(estimate: &Estimate) -> FiniteEstimate {
        let finite = |value: f64| value.is_finite().then_some(value);
        FiniteEstimate {
            value: finite(estimate.value),
            low: finite(estimate.low),
            high: finite(estimate.high),
            samples: estimate.samples,
        }
    }
}

async fn offline_evaluation(
    client: &ApiClient,
    base: &str,
    key: &str,
    exploration: &[f64],
) -> anyhow::Result<Evaluation> {
    let surface = format!("{base}/{}", segment(key));
    let mut log = Vec::new();
    let mut cursor: Option<String> = None;
    let mut reading = Progress::new("reading decisions");
    loop {
        let path = with_query(
            &format!("{surface}/decisions"),
            &[("limit", Some("5000")), ("after", cursor.as_deref())],
        );
        let page: DecisionPage = decode(client.get(&path).await?)?;
        for decision in &page.decisions {
            log.push(logged_decision(decision)?);
        }
        reading.update(log.len() as u64, None);
        match page.next {
            Some(next) => cursor = Some(next),
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
        logged.get_or_insert_with(|| FiniteEstimate::from(&evaluation.logged));
        rows.push(PolicyEvaluation {
            policy: name,
            ips: FiniteEstimate::from(&evaluation.ips),
            snips: FiniteEstimate::from(&evaluation.snips),
            doubly_robust: FiniteEstimate::from(&evaluation.doubly_robust),
            skipped: evaluation.skipped,
        });
    }
    Ok(Evaluation {
        surface: key.to_owned(),
        decisions: log.len(),
        logged,
        model: learner.is_some(),
        policies: rows,
    })
}

fn print_evaluation(evaluation: &Evaluation) {
    let show = |estimate: &FiniteEstimate| match (estimate.value, estimate.low, estimate.high) {
        (Some(value), Some(low), Some(high)) => format!("{value:.4} [{low:.4}, {high:.4}]"),
        (Some(value), _, _) => format!("{value:.4}"),
        _ => "-".to_owned(),
    };
    println!(
        "{} decisions; logged mean reward {}",
        evaluation.decisions,
        evaluation.logged.as_ref().map_or("-".to_owned(), show)
    );
    if !evaluation.model {
        println!("no saved model yet: only the model-free policies are evaluated");
    }
    print_rows(
        &["POLICY", "IPS (95%)", "SNIPS (95%)", "DOUBLY ROBUST (95%)"],
        evaluation.policies.iter(),
        |row| {
            vec![
                row.policy.clone(),
                show(&row.ips),
                show(&row.snips),
                show(&row.doubly_robust),
            ]
        },
    );
}
