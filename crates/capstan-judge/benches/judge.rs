//! One controller tick over 1,000 active rollouts, each with the three default guardrails
//! (error mean, latency mean, latency p95) and thousands of units folded into its
//! aggregate: the data each rollout's guardrails read, then `decide`.
//!
//! `cargo bench -p capstan-judge --bench judge`; the target is under 100 ms a tick.

use std::hint::black_box;

use capstan_judge::{Observation, Progress, RolloutAggregate, RolloutPlan, decide};
use criterion::{Criterion, criterion_group, criterion_main};

const ROLLOUTS: usize = 1_000;
const MINUTE: i64 = 60_000;

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

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

struct Rollout {
    plan: RolloutPlan,
    progress: Progress,
    aggregate: RolloutAggregate,
}

/// Rollout `index`: at one of the first four steps, with 2,000 to 5,000 units (the step's
/// share of them in treatment, at least 5% so that every rollout has data to judge), four
/// requests each: 1% errors, lognormal latency around 80 ms.
fn rollout(index: usize, generator: &mut Generator) -> Rollout {
    let plan = RolloutPlan::new("off".to_owned(), "on".to_owned());
    let step = index % 4;
    let share = plan.steps[step].percent / 100.0;
    let mut progress = Progress::start(0);
    progress.step = step;
    let mut aggregate = RolloutAggregate::new(&plan);
    let units = 2_000 + (index % 4) * 1_000;
    // A tenth of the rollouts carry a regression, so every path of `decide` is timed.
    let slower = if index % 10 == 9 { 1.2 } else { 1.0 };
    for unit in 0..units {
        let key = format!("rollout-{index}-user-{unit}");
        let at = (unit as i64 * 30 * MINUTE) / units as i64;
        let treated = generator.uniform() < share.max(0.05);
        let variant = if treated { "on" } else { "off" };
        aggregate.observe(&key, at, Observation::Exposure { variant });
        for _ in 0..4 {
            let error = if generator.uniform() < 0.01 { 1.0 } else { 0.0 };
            let factor = if treated { slower } else { 1.0 };
            let latency = 80.0 * factor * (0.6 * generator.normal()).exp();
            aggregate.observe(
                &key,
                at,
                Observation::Metric {
                    name: "error",
                    value: error,
                },
            );
            aggregate.observe(
                &key,
                at,
                Observation::Metric {
                    name: "latency_ms",
                    value: latency,
                },
            );
        }
    }
    Rollout {
        plan,
        progress,
        aggregate,
    }
}

fn tick(rollouts: &[Rollout], now: i64) -> usize {
    let mut acted = 0;
    for rollout in rollouts {
        let data = rollout.aggregate.guardrail_data(&rollout.plan);
        let decision = decide(
            &rollout.plan,
            &rollout.progress,
            rollout.aggregate.units(),
            &data,
            now,
        );
        acted += usize::from(decision.action != capstan_judge::Action::Hold);
        black_box(decision);
    }
    acted
}

fn judge(c: &mut Criterion) {
    let mut generator = Generator(2024);
    let rollouts: Vec<Rollout> = (0..ROLLOUTS).map(|i| rollout(i, &mut generator)).collect();
    let now = 30 * MINUTE;
    // Not a benchmark of nothing: some rollouts advance or revert, others hold.
    let acted = tick(&rollouts, now);
    assert!(acted > 0 && acted < ROLLOUTS, "{acted} of {ROLLOUTS} acted");
    let mut group = c.benchmark_group("judge");
    group.sample_size(20);
    group.bench_function("tick: decide 1000 rollouts x 3 guardrails", |b| {
        b.iter(|| tick(black_box(&rollouts), now))
    });
    group.finish();
}

criterion_group!(benches, judge);
criterion_main!(benches);
