//! Benchmark 2: the Open Bandit Dataset's small sample (ZOZOTOWN, "men" campaign, 34
//! items, three positions) as shipped in the PyPI package `obp`.
//!
//! The log of the uniformly random policy is the data. Each row is one impression: the
//! context is the four user features and the position (a slot changes click rates), the
//! candidates are the 34 items with their item features, plus the user's affinity to
//! each item (a count, given as `ln(1 + count)` as the learner's docs ask of counts).
//!
//! Two estimates of Capstan's click rate:
//! - **Progressive IPS** over the whole log, in time order: before learning row `t`, the
//!   learner's probability `π_t(logged item)` of showing the item the log showed gives the
//!   term `π_t / p · click`, `p` the logged propensity (1/34); then the learner learns the
//!   row (a uniform log is unbiased for the regression). The mean of the terms estimates
//!   the click rate of the policy as it learned along the log; its 95% interval is a
//!   normal one over the terms. Self-normalised IPS (`Σ w·click / Σ w`) alongside.
//! - **Train then evaluate**: learn the first half, then `capstan_bandit::offline::evaluate`
//!   (IPS, SNIPS, doubly robust) on the second half with the learner frozen.
//!
//! Replay in the strict sense (keep only rows where the policy picks the logged item)
//! would keep 1 row in 34, about 290 impressions and one or two clicks: too few to say
//! anything, so it is not used.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use capstan_bandit::offline::{self, LoggedDecision, TargetPolicy};
use capstan_bandit::{Candidate, Feature, Features, Learner, LearnerSettings, Policy};
use serde_json::json;

use crate::random::mean_and_half_width;

#[derive(clap::Args, Debug)]
pub(crate) struct ObdArgs {
    /// The folder `obp/dataset/obd` from the obp package.
    #[arg(long)]
    dataset: PathBuf,
    /// Where to write the figures (JSON).
    #[arg(long)]
    out: PathBuf,
}

struct Table {
    columns: HashMap<String, usize>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(path: &std::path::Path) -> anyhow::Result<Table> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        let mut lines = text.lines();
        let header = lines
            .next()
            .with_context(|| format!("{} is empty", path.display()))?;
        let columns = header
            .split(',')
            .enumerate()
            .map(|(index, name)| (name.to_owned(), index))
            .collect();
        let rows = lines
            .map(|line| line.split(',').map(str::to_owned).collect())
            .collect();
        Ok(Table { columns, rows })
    }

    fn column(&self, name: &str) -> anyhow::Result<usize> {
        self.columns
            .get(name)
            .copied()
            .with_context(|| format!("no column {name}"))
    }
}

struct Log {
    decisions: Vec<LoggedDecision>,
}

fn read_log(dataset: &std::path::Path, policy: &str) -> anyhow::Result<Log> {
    let folder = dataset.join(policy).join("men");
    let log = Table::read(&folder.join("men.csv"))?;
    let items = Table::read(&folder.join("item_context.csv"))?;

    let item_id = items.column("item_id")?;
    let mut catalogue: Vec<(usize, Features)> = items
        .rows
        .iter()
        .map(|row| {
            let id: usize = row[item_id].parse().context("an item id")?;
            let number: f64 = row[items.column("item_feature_0")?]
                .parse()
                .context("item_feature_0")?;
            let mut features = vec![Feature::number("item", "feature_0", number)];
            for name in ["item_feature_1", "item_feature_2", "item_feature_3"] {
                features.push(Feature::text(
                    "item",
                    name,
                    row[items.column(name)?].clone(),
                ));
            }
            Ok((id, Features(features)))
        })
        .collect::<anyhow::Result<_>>()?;
    catalogue.sort_by_key(|(id, _)| *id);
    if catalogue
        .iter()
        .enumerate()
        .any(|(index, (id, _))| index != *id)
    {
        bail!("item ids are not 0..{}", catalogue.len());
    }

    let (item, position, click, propensity) = (
        log.column("item_id")?,
        log.column("position")?,
        log.column("click")?,
        log.column("propensity_score")?,
    );
    let users: Vec<usize> = (0..4)
        .map(|k| log.column(&format!("user_feature_{k}")))
        .collect::<anyhow::Result<_>>()?;
    let affinities: Vec<usize> = (0..catalogue.len())
        .map(|k| log.column(&format!("user-item_affinity_{k}")))
        .collect::<anyhow::Result<_>>()?;
    let decisions = log
        .rows
        .iter()
        .map(|row| {
            let mut context: Vec<Feature> = users
                .iter()
                .enumerate()
                .map(|(k, column)| {
                    Feature::text("user", format!("feature_{k}"), row[*column].clone())
                })
                .collect();
            context.push(Feature::text("page", "position", row[position].clone()));
            let candidates = catalogue
                .iter()
                .zip(&affinities)
                .map(|((id, features), column)| {
                    let count: f64 = row[*column].parse().context("an affinity")?;
                    let mut features = features.clone();
                    features
                        .0
                        .push(Feature::number("item", "affinity", count.max(0.0).ln_1p()));
                    Ok(Candidate {
                        id: id.to_string(),
                        features,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(LoggedDecision {
                context: Features(context),
                candidates,
                shown: row[item].parse().context("item_id")?,
                probability: row[propensity].parse().context("propensity_score")?,
                reward: row[click].parse().context("click")?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Log { decisions })
}

fn interval(values: &[f64]) -> serde_json::Value {
    let (mean, half) = mean_and_half_width(values);
    json!({ "value": mean, "low": mean - half, "high": mean + half, "samples": values.len() })
}

fn estimate(estimate: &offline::Estimate) -> serde_json::Value {
    json!({ "value": estimate.value, "low": estimate.low, "high": estimate.high, "samples": estimate.samples })
}

/// Progressive IPS and SNIPS of a learner that learns the log as it goes.
fn progressive(
    log: &[LoggedDecision],
    settings: LearnerSettings,
) -> anyhow::Result<serde_json::Value> {
    let mut learner = Learner::new(settings)?;
    let mut terms = Vec::with_capacity(log.len());
    let (mut weighted_clicks, mut weights) = (0.0, 0.0);
    let mut weight_terms = Vec::with_capacity(log.len());
    for (index, decision) in log.iter().enumerate() {
        let ranking = learner.rank(&decision.context, &decision.candidates, index as u64)?;
        let weight = ranking.probabilities[decision.shown] / decision.probability;
        terms.push(weight * decision.reward);
        weight_terms.push(weight);
        weighted_clicks += weight * decision.reward;
        weights += weight;
        learner.record_impression(&decision.candidates[decision.shown].id, index as i64);
        learner.learn(
            &decision.context,
            &decision.candidates,
            decision.shown,
            decision.probability,
            decision.reward,
            Policy::Personalized,
        )?;
    }
    // The delta method's interval for the ratio Σ w·r / Σ w.
    let snips = weighted_clicks / weights;
    let count = terms.len() as f64;
    let mean_weight = weights / count;
    let variance = terms
        .iter()
        .zip(&weight_terms)
        .map(|(term, weight)| (term - snips * weight).powi(2))
        .sum::<f64>()
        / (count - 1.0)
        / mean_weight.powi(2);
    let half = 1.96 * (variance / count).sqrt();
    Ok(json!({
        "ips": interval(&terms),
        "snips": { "value": snips, "low": snips - half, "high": snips + half, "samples": terms.len() },
    }))
}

/// Learns the first half of the log, then evaluates the frozen learner on the second.
fn train_then_evaluate(
    log: &[LoggedDecision],
    settings: LearnerSettings,
) -> anyhow::Result<serde_json::Value> {
    let (train, test) = log.split_at(log.len() / 2);
    let mut learner = Learner::new(settings)?;
    for (index, decision) in train.iter().enumerate() {
        learner.record_impression(&decision.candidates[decision.shown].id, index as i64);
        learner.learn(
            &decision.context,
            &decision.candidates,
            decision.shown,
            decision.probability,
            decision.reward,
            Policy::Personalized,
        )?;
    }
    let evaluation = offline::evaluate(test, TargetPolicy::Learner(&learner), &mut |_, _| {})?;
    Ok(json!({
        "ips": estimate(&evaluation.ips),
        "snips": estimate(&evaluation.snips),
        "doubly_robust": estimate(&evaluation.doubly_robust),
        "logged": estimate(&evaluation.logged),
    }))
}

pub(crate) fn run(args: &ObdArgs) -> anyhow::Result<()> {
    let random = read_log(&args.dataset, "random")?;
    let thompson = read_log(&args.dataset, "bts")?;
    let clicks = |log: &Log| {
        log.decisions
            .iter()
            .map(|decision| decision.reward)
            .collect::<Vec<f64>>()
    };
    let defaults = LearnerSettings::default();
    let personalised_only = LearnerSettings {
        testing_budget: 0.0,
        holdout: 0.0,
        ..defaults.clone()
    };
    let report = json!({
        "rows": random.decisions.len(),
        "items": random.decisions.first().map_or(0, |decision| decision.candidates.len()),
        "random_logged": interval(&clicks(&random)),
        "thompson_logged": interval(&clicks(&thompson)),
        "thompson_rows": thompson.decisions.len(),
        "capstan_progressive": progressive(&random.decisions, defaults.clone())?,
        "capstan_personalised_only_progressive": progressive(&random.decisions, personalised_only.clone())?,
        "capstan_train_then_evaluate": train_then_evaluate(&random.decisions, defaults)?,
        "capstan_personalised_only_train_then_evaluate": train_then_evaluate(&random.decisions, personalised_only)?,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    Ok(())
}
