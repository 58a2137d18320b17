//! Benchmark 3a: learn-and-predict examples per second in process, one thread, and the
//! same examples in Vowpal Wabbit's text format for `bench/placement/vw_throughput.py`.
//!
//! The shapes are the criterion bench's (`cargo bench -p capstan-bandit --bench rank`): a
//! context of 15 features (13 categories of 2 to 10,000 values and 2 numbers) and
//! candidates of 15 features (14 categories and a number) from a catalogue of 500. One
//! example is what Vowpal Wabbit does per line group of a labelled `cb_explore_adf` file:
//! score every candidate (`rank`), then learn the shown one (`learn`). The shown item is
//! drawn uniformly, as a log of a random policy, with a click 20% of the time.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use capstan_bandit::{Candidate, Feature, Features, Learner, LearnerSettings, Policy};
use serde_json::json;

use crate::random::Random;

#[derive(clap::Args, Debug)]
pub(crate) struct ThroughputArgs {
    /// Examples per candidate count.
    #[arg(long, default_value_t = 20_000)]
    examples: usize,
    /// Where the VW files (`examples-20.vw`, `examples-100.vw`) and `capstan.json` go.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) const CANDIDATE_COUNTS: [usize; 2] = [20, 100];
const CARDINALITIES: [usize; 13] = [2, 3, 5, 10, 50, 200, 1_000, 10_000, 4, 7, 24, 12, 100];

/// 15 context features, as the criterion bench builds them.
pub(crate) fn context(random: &mut Random) -> Features {
    let mut features: Vec<Feature> = CARDINALITIES
        .iter()
        .enumerate()
        .map(|(index, cardinality)| {
            Feature::text(
                if index < 8 { "user" } else { "page" },
                format!("attribute{index}"),
                format!("value{}", random.below(*cardinality)),
            )
        })
        .collect();
    features.push(Feature::number(
        "user",
        "visits",
        random.below(30) as f64 / 10.0,
    ));
    features.push(Feature::number(
        "page",
        "hour",
        random.below(24) as f64 / 24.0,
    ));
    Features(features)
}

/// An item of 15 features, as the criterion bench builds them.
pub(crate) fn candidate(random: &mut Random, id: usize) -> Candidate {
    let mut features: Vec<Feature> = (0..14)
        .map(|index| {
            Feature::text(
                "item",
                format!("property{index}"),
                format!("value{}", random.below(3 + index * 5)),
            )
        })
        .collect();
    features.push(Feature::number(
        "item",
        "age_days",
        random.below(100) as f64 / 100.0,
    ));
    Candidate {
        id: format!("item-{id}"),
        features: Features(features),
    }
}

/// Features in Vowpal Wabbit's text format, one `|namespace` group per namespace.
pub(crate) fn vw_features(features: &Features, extra: Option<&str>) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for feature in &features.0 {
        let token = match &feature.value {
            capstan_bandit::FeatureValue::Text(text) => format!("{}={}", feature.name, text),
            capstan_bandit::FeatureValue::Number(number) => format!("{}:{}", feature.name, number),
        };
        match groups
            .iter_mut()
            .find(|(namespace, _)| *namespace == feature.namespace)
        {
            Some((_, tokens)) => tokens.push(token),
            None => groups.push((feature.namespace.clone(), vec![token])),
        }
    }
    if let (Some(extra), Some((_, tokens))) = (extra, groups.last_mut()) {
        tokens.push(extra.to_owned());
    }
    groups
        .iter()
        .map(|(namespace, tokens)| format!("|{namespace} {}", tokens.join(" ")))
        .collect::<Vec<_>>()
        .join(" ")
}

struct Example {
    context: Features,
    slate: usize,
    shown: usize,
    reward: f64,
}

pub(crate) fn run(args: &ThroughputArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))?;
    let mut random = Random::new(42);
    let catalogue: Vec<Candidate> = (0..500).map(|id| candidate(&mut random, id)).collect();
    let mut results = serde_json::Map::new();
    for count in CANDIDATE_COUNTS {
        let slates: Vec<Vec<Candidate>> = (0..8)
            .map(|_| {
                let start = random.below(catalogue.len() - count);
                catalogue[start..start + count].to_vec()
            })
            .collect();
        let examples: Vec<Example> = (0..args.examples)
            .map(|_| Example {
                context: context(&mut random),
                slate: random.below(slates.len()),
                shown: random.below(count),
                reward: f64::from(u8::from(random.unit() < 0.2)),
            })
            .collect();

        let path = args.out.join(format!("examples-{count}.vw"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let item_lines: Vec<Vec<String>> = slates
            .iter()
            .map(|slate| {
                slate
                    .iter()
                    .map(|candidate| {
                        vw_features(&candidate.features, Some(&format!("id={}", candidate.id)))
                    })
                    .collect()
            })
            .collect();
        for example in &examples {
            writeln!(out, "shared {}", vw_features(&example.context, None))?;
            for (position, line) in item_lines[example.slate].iter().enumerate() {
                if position == example.shown {
                    write!(out, "0:{}:{} ", -example.reward, 1.0 / count as f64)?;
                }
                writeln!(out, "{line}")?;
            }
            writeln!(out)?;
        }
        out.flush()?;

        let mut learner = Learner::new(LearnerSettings::default())?;
        let started = Instant::now();
        for (index, example) in examples.iter().enumerate() {
            let slate = &slates[example.slate];
            let ranking = learner.rank(&example.context, slate, index as u64)?;
            learner.record_impression(&slate[example.shown].id, index as i64);
            learner.learn(
                &example.context,
                slate,
                example.shown,
                ranking.probabilities[example.shown],
                example.reward,
                Policy::Personalized,
            )?;
        }
        let seconds = started.elapsed().as_secs_f64();
        results.insert(
            count.to_string(),
            json!({ "examples": examples.len(), "seconds": seconds, "per_second": examples.len() as f64 / seconds }),
        );
        eprintln!(
            "{count} candidates: {:.0} examples/s",
            examples.len() as f64 / seconds
        );
    }
    let path = args.out.join("capstan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}
