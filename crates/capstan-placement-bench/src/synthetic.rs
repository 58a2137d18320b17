//! Benchmark 1: the synthetic world, played by Capstan and by the baselines that need no
//! outside library, and written out as a stream file for Vowpal Wabbit
//! (`bench/placement/vw_synthetic.py`) to play the very same events.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use capstan_bandit::{Candidate, Learner, LearnerSettings};
use serde_json::{Value, json};

use crate::random::Random;
use crate::world::{ItemKind, TASTES, Visibility, World};

#[derive(clap::Args, Debug)]
pub(crate) struct SyntheticArgs {
    /// Worlds to play, seeded `first_seed..first_seed + seeds`.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first world's seed.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// How the users' features show their taste.
    #[arg(long, value_enum, default_value_t = Visibility::Hidden)]
    world: Visibility,
    /// Decisions per world.
    #[arg(long, default_value_t = 100_000)]
    decisions: usize,
    /// Decisions left out of the "after warm-up" averages.
    #[arg(long, default_value_t = 50_000)]
    warmup: usize,
    /// The trailing window, in decisions, over which a new item's share of impressions is
    /// compared with the oracle's.
    #[arg(long, default_value_t = 500)]
    window: usize,
    /// Where the stream files and `capstan.json` go.
    #[arg(long)]
    out: PathBuf,
    /// Another Capstan policy to play, `NAME=SETTINGS` with SETTINGS a JSON object of
    /// learner settings over the defaults, e.g. `low={"exploration":0.05}`. Repeatable.
    #[arg(long = "variant", value_parser = parse_variant)]
    variants: Vec<(String, LearnerSettings)>,
    /// Play only these policies (comma-separated names), e.g. `capstan,low`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn parse_variant(text: &str) -> Result<(String, LearnerSettings), String> {
    let (name, json) = text
        .split_once('=')
        .ok_or_else(|| "expected NAME=SETTINGS".to_owned())?;
    let mut settings =
        serde_json::to_value(LearnerSettings::default()).map_err(|error| error.to_string())?;
    let overrides: serde_json::Map<String, Value> =
        serde_json::from_str(json).map_err(|error| format!("settings: {error}"))?;
    for (key, value) in overrides {
        settings[key] = value;
    }
    let settings: LearnerSettings =
        serde_json::from_value(settings).map_err(|error| format!("settings: {error}"))?;
    settings.validate().map_err(|error| error.to_string())?;
    Ok((name.to_owned(), settings))
}

/// What a policy did in one world: per decision, the catalogue index it showed and
/// whether that was a click.
struct Outcome {
    shown: Vec<usize>,
    clicks: Vec<bool>,
}

enum Policy {
    Oracle,
    FeatureOracle,
    Uniform,
    /// Thompson sampling over every item's Beta(1 + clicks, 1 + misses): the best global
    /// ranking that learns, not personalised.
    GlobalThompson,
    Capstan(LearnerSettings),
}

fn policies(args: &SyntheticArgs) -> Vec<(String, Policy)> {
    let mut policies: Vec<(String, Policy)> = standard_policies()
        .into_iter()
        .map(|(name, policy)| (name.to_owned(), policy))
        .chain(
            args.variants
                .iter()
                .map(|(name, settings)| (name.clone(), Policy::Capstan(settings.clone()))),
        )
        .collect();
    if !args.only.is_empty() {
        policies.retain(|(name, _)| args.only.contains(name));
    }
    policies
}

fn standard_policies() -> Vec<(&'static str, Policy)> {
    let defaults = LearnerSettings::default();
    vec![
        ("oracle", Policy::Oracle),
        ("feature-oracle", Policy::FeatureOracle),
        ("uniform", Policy::Uniform),
        ("global-thompson", Policy::GlobalThompson),
        ("capstan", Policy::Capstan(defaults.clone())),
        (
            "capstan-no-testing",
            Policy::Capstan(LearnerSettings {
                testing_budget: 0.0,
                ..defaults.clone()
            }),
        ),
        (
            "capstan-no-testing-no-holdout",
            Policy::Capstan(LearnerSettings {
                testing_budget: 0.0,
                holdout: 0.0,
                ..defaults
            }),
        ),
    ]
}

fn play(world: &World, policy: &Policy) -> anyhow::Result<Outcome> {
    let decisions = world.events.len();
    let mut outcome = Outcome {
        shown: Vec::with_capacity(decisions),
        clicks: Vec::with_capacity(decisions),
    };
    let candidates: Vec<Candidate> = world
        .items
        .iter()
        .map(|item| item.candidate.clone())
        .collect();
    let mut learner = match policy {
        Policy::Capstan(settings) => Some(Learner::new(settings.clone())?),
        _ => None,
    };
    let mut successes = vec![0.0; world.items.len()];
    let mut failures = vec![0.0; world.items.len()];
    for (decision, event) in world.events.iter().enumerate() {
        // Items arrive in catalogue order, so the live items are a prefix of it.
        let live = &candidates[..event.live.len()];
        let mut random = Random::new(event.seed);
        let mut ranking = None;
        let position = match policy {
            Policy::Oracle => world.oracle_choice(event),
            Policy::FeatureOracle => world.feature_oracle_choice(event),
            Policy::Uniform => random.below(live.len()),
            Policy::GlobalThompson => {
                let mut best = (0, f64::NEG_INFINITY);
                for position in 0..live.len() {
                    let draw = random.beta(1.0 + successes[position], 1.0 + failures[position]);
                    if draw > best.1 {
                        best = (position, draw);
                    }
                }
                best.0
            }
            Policy::Capstan(_) => {
                let learner = learner.as_ref().context("a learner")?;
                let decision = learner.rank(&event.context, live, event.seed)?;
                let shown = decision.order[0];
                ranking = Some(decision);
                shown
            }
        };
        let item = event.live[position];
        let click = event.u < world.rate(event.taste, item);
        let reward = f64::from(u8::from(click));
        match policy {
            Policy::GlobalThompson => {
                successes[position] += reward;
                failures[position] += 1.0 - reward;
            }
            Policy::Capstan(_) => {
                let learner = learner.as_mut().context("a learner")?;
                let ranking = ranking.context("a ranking")?;
                learner.record_impression(&live[position].id, decision as i64);
                learner.learn(
                    &event.context,
                    live,
                    position,
                    ranking.probabilities[position],
                    reward,
                    ranking.policy,
                )?;
            }
            _ => {}
        }
        outcome.shown.push(item);
        outcome.clicks.push(click);
    }
    Ok(outcome)
}

/// Decisions after `arrival` until the policy's impressions of `item` over the trailing
/// `window` first reach half of the oracle's over the same decisions; `None` if never.
/// The first answer possible is `window`.
pub(crate) fn decisions_to_half_share(
    shown: &[usize],
    oracle: &[usize],
    item: usize,
    arrival: usize,
    window: usize,
) -> Option<usize> {
    let (mut policy_count, mut oracle_count) = (0usize, 0usize);
    for decision in arrival..shown.len() {
        policy_count += usize::from(shown[decision] == item);
        oracle_count += usize::from(oracle[decision] == item);
        if decision >= arrival + window {
            let leaving = decision - window;
            policy_count -= usize::from(shown[leaving] == item);
            oracle_count -= usize::from(oracle[leaving] == item);
        }
        let seen = decision + 1 - arrival;
        if seen >= window && oracle_count > 0 && 2 * policy_count >= oracle_count {
            return Some(seen);
        }
    }
    None
}

fn write_stream(world: &World, seed: u64, args: &SyntheticArgs, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let items: Vec<Value> = world
        .items
        .iter()
        .map(|item| {
            json!({
                "id": item.candidate.id,
                "features": item.features_json,
                "arrival": item.arrival,
                "good": item.kind == ItemKind::Good,
            })
        })
        .collect();
    let rates: Vec<Vec<f64>> = (0..TASTES)
        .map(|taste| {
            (0..world.items.len())
                .map(|item| world.rate(taste, item))
                .collect()
        })
        .collect();
    let header = json!({
        "seed": seed,
        "decisions": args.decisions,
        "warmup": args.warmup,
        "window": args.window,
        "items": items,
        "rates": rates,
    });
    writeln!(out, "{header}")?;
    for event in &world.events {
        let line = json!({
            "context": event.context_json,
            "live": event.live.len(),
            "taste": event.taste,
            "u": event.u,
            "seed": event.seed,
            "oracle": event.live[world.oracle_choice(event)],
        });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

pub(crate) fn run(args: &SyntheticArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))?;
    let policies = policies(args);
    let mut results: serde_json::Map<String, Value> = policies
        .iter()
        .map(|(name, _)| {
            (
                name.clone(),
                json!({ "mean_reward": [], "after_warmup": [], "quarters": [], "to_half_share": [] }),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    for seed in args.first_seed..args.first_seed + args.seeds {
        let world = World::new(seed, args.decisions, args.world);
        write_stream(
            &world,
            seed,
            args,
            &args.out.join(format!("stream-{seed}.jsonl")),
        )?;
        let oracle: Vec<usize> = world
            .events
            .iter()
            .map(|event| event.live[world.oracle_choice(event)])
            .collect();
        let good: Vec<(usize, usize)> = world
            .items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.kind == ItemKind::Good)
            .map(|(index, item)| (index, item.arrival))
            .collect();
        for (name, policy) in &policies {
            let outcome = play(&world, policy)?;
            let clicks = |from: usize| {
                outcome.clicks[from..]
                    .iter()
                    .filter(|click| **click)
                    .count() as f64
                    / (outcome.clicks.len() - from) as f64
            };
            let to_half: Vec<Option<usize>> = good
                .iter()
                .map(|(item, arrival)| {
                    decisions_to_half_share(&outcome.shown, &oracle, *item, *arrival, args.window)
                })
                .collect();
            let entry = &mut results[name.as_str()];
            push(entry, "mean_reward", json!(clicks(0)))?;
            push(entry, "after_warmup", json!(clicks(args.warmup)))?;
            push(entry, "quarters", json!(quarters(&outcome.clicks)))?;
            push(entry, "to_half_share", json!(to_half))?;
        }
        eprintln!("seed {seed}: {:.1} s", started.elapsed().as_secs_f64());
    }
    let report = json!({
        "decisions": args.decisions,
        "warmup": args.warmup,
        "window": args.window,
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "world": format!("{:?}", args.world).to_lowercase(),
        "policies": results,
    });
    let path = args.out.join("capstan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

/// The click rate in each quarter of the run: how a policy learns.
pub(crate) fn quarters(clicks: &[bool]) -> Vec<f64> {
    (0..4)
        .map(|quarter| {
            let (from, to) = (quarter * clicks.len() / 4, (quarter + 1) * clicks.len() / 4);
            let part = &clicks[from..to];
            part.iter().filter(|click| **click).count() as f64 / part.len().max(1) as f64
        })
        .collect()
}

fn push(entry: &mut Value, key: &str, value: Value) -> anyhow::Result<()> {
    entry[key].as_array_mut().context("an array")?.push(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_are_the_click_rates_of_each_quarter() {
        let clicks = [
            true, true, false, false, true, false, false, false, false, false,
        ];
        // Quarters of 10 decisions: 0..2, 2..5, 5..7, 7..10.
        assert_eq!(quarters(&clicks), vec![1.0, 1.0 / 3.0, 0.0, 0.0]);
    }

    #[test]
    fn half_share_compares_trailing_windows_from_the_arrival() {
        let oracle = vec![0, 0, 7, 7, 7, 7, 7, 7, 7, 7];
        // Shown 7 once in the first window of 4 after the arrival at 2, a quarter of the
        // oracle's four; twice in the window ending at decision 6, the fifth after it.
        let shown = vec![0, 0, 1, 7, 1, 1, 7, 7, 1, 1];
        assert_eq!(decisions_to_half_share(&shown, &oracle, 7, 2, 4), Some(5));
        assert_eq!(decisions_to_half_share(&shown, &oracle, 7, 2, 2), Some(2));
        assert_eq!(decisions_to_half_share(&[1; 10], &oracle, 7, 2, 4), None);
    }
}
