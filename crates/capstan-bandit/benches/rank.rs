//! Decisions per second in-process, one thread: `rank` with 20 and 100 candidates of about
//! 30 features each (15 of the context, 15 of the item, crossed as `-q ::` would), and one
//! `learn` plus one `predict`, on a learner with default settings (2^20 weights) that has
//! already learned 20,000 decisions.
//!
//! `cargo bench -p capstan-bandit --bench rank`. The reference is Vowpal Wabbit's
//! `--cb_explore_adf --squarecb -q ::` on the same shapes.

use std::hint::black_box;

use capstan_bandit::{Candidate, Feature, Features, Learner, LearnerSettings, Policy};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// A small deterministic generator (splitmix64), so the data is the same on every run.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// 15 context features: 13 categories of various cardinalities and 2 numbers.
fn context(generator: &mut Generator) -> Features {
    let mut features: Vec<Feature> = (0..13)
        .map(|index| {
            let cardinality = [2, 3, 5, 10, 50, 200, 1_000, 10_000, 4, 7, 24, 12, 100][index];
            Feature::text(
                if index < 8 { "user" } else { "page" },
                format!("attribute{index}"),
                format!("value{}", generator.below(cardinality)),
            )
        })
        .collect();
    features.push(Feature::number(
        "user",
        "visits",
        generator.below(30) as f64 / 10.0,
    ));
    features.push(Feature::number(
        "page",
        "hour",
        generator.below(24) as f64 / 24.0,
    ));
    Features(features)
}

/// An item with 15 features: 14 categories and a number.
fn candidate(generator: &mut Generator, id: u64) -> Candidate {
    let mut features: Vec<Feature> = (0..14)
        .map(|index| {
            Feature::text(
                "item",
                format!("property{index}"),
                format!("value{}", generator.below(3 + index as u64 * 5)),
            )
        })
        .collect();
    features.push(Feature::number(
        "item",
        "age_days",
        generator.below(100) as f64 / 100.0,
    ));
    Candidate {
        id: format!("item-{id}"),
        features: Features(features),
    }
}

fn bench(criterion: &mut Criterion) {
    let mut generator = Generator(42);
    let catalogue: Vec<Candidate> = (0..500).map(|id| candidate(&mut generator, id)).collect();
    let contexts: Vec<Features> = (0..256).map(|_| context(&mut generator)).collect();
    let slates: Vec<Vec<Candidate>> = [20usize, 100]
        .iter()
        .map(|size| {
            let start = generator.below(400) as usize;
            catalogue[start..start + size].to_vec()
        })
        .collect();

    let mut learner = Learner::new(LearnerSettings::default()).expect("default settings");
    for step in 0..20_000u64 {
        let context = &contexts[(step % 256) as usize];
        let slate = &slates[(step % 2) as usize];
        let ranking = learner.rank(context, slate, step).expect("candidates");
        let shown = ranking.order[0];
        learner.record_impression(&slate[shown].id, step as i64);
        let reward = (generator.below(10) < 2) as u8 as f64;
        learner
            .learn(
                context,
                slate,
                shown,
                ranking.probabilities[shown],
                reward,
                ranking.policy,
            )
            .expect("valid");
    }

    let mut group = criterion.benchmark_group("rank");
    for slate in &slates {
        let mut seed = 0u64;
        group.bench_with_input(
            BenchmarkId::from_parameter(slate.len()),
            slate,
            |bencher, slate| {
                bencher.iter(|| {
                    seed += 1;
                    let context = &contexts[(seed % 256) as usize];
                    black_box(learner.rank(context, slate, seed).expect("candidates"))
                })
            },
        );
    }
    group.finish();

    let slate = &slates[0];
    let mut step = 0u64;
    criterion.bench_function("learn_and_predict", |bencher| {
        bencher.iter(|| {
            step += 1;
            let context = &contexts[(step % 256) as usize];
            let shown = (step % slate.len() as u64) as usize;
            learner
                .learn(
                    context,
                    slate,
                    shown,
                    0.5,
                    f64::from(u8::from(step % 5 < 1)),
                    Policy::Personalized,
                )
                .expect("valid");
            black_box(learner.predict(context, &slate[shown]))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
