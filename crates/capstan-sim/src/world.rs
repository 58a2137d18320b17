//! One simulated rollout: units arrive at a fixed rate, the flag's split sends each to
//! control or treatment, each sends an exposure and a few requests, and every tick the
//! real judge decides and the controller applies its decision, on a simulated clock.

use capstan_judge::{
    Action, Observation, Progress, RolloutAggregate, RolloutPlan, Status, apply, decide,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::baseline::{Bins, mann_whitney_higher, welch_higher};

/// How one variant behaves: each request fails with `error_rate`, and takes a lognormal
/// time with median `latency_median_ms` and log-scale spread `latency_sigma`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub error_rate: f64,
    pub latency_median_ms: f64,
    pub latency_sigma: f64,
}

impl Behaviour {
    /// The service before the change: 1% errors, latency median 80 ms, mean 95.8 ms,
    /// p95 214 ms.
    pub const BASELINE: Behaviour = Behaviour {
        error_rate: 0.01,
        latency_median_ms: 80.0,
        latency_sigma: 0.6,
    };

    pub fn mean_latency_ms(&self) -> f64 {
        self.latency_median_ms * (self.latency_sigma * self.latency_sigma / 2.0).exp()
    }

    /// The same service with every latency multiplied by `factor` (so its mean, median
    /// and p95 all move by that factor).
    pub fn with_latency_factor(self, factor: f64) -> Behaviour {
        Behaviour {
            latency_median_ms: self.latency_median_ms * factor,
            ..self
        }
    }

    pub fn with_error_rate(self, error_rate: f64) -> Behaviour {
        Behaviour { error_rate, ..self }
    }

    fn request(&self, rng: &mut SmallRng) -> (f64, f64) {
        let error = if rng.random::<f64>() < self.error_rate {
            1.0
        } else {
            0.0
        };
        let latency = self.latency_median_ms * (self.latency_sigma * standard_normal(rng)).exp();
        (error, latency)
    }
}

/// A standard normal draw (Box-Muller; one of the pair is thrown away for simplicity).
fn standard_normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: the logarithm stays finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// What the rollout should end in, if the judge is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Promote,
    Revert,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub key: &'static str,
    pub description: &'static str,
    pub control: Behaviour,
    pub treatment: Behaviour,
    pub expected: Expected,
}

/// The scenarios of the benchmark, A/A first.
pub fn scenarios() -> Vec<Scenario> {
    let base = Behaviour::BASELINE;
    vec![
        Scenario {
            key: "a/a",
            description: "A/A (a neutral change): treatment identical to control",
            control: base,
            treatment: base,
            expected: Expected::Promote,
        },
        Scenario {
            key: "errors-doubled",
            description: "regression: errors 1% to 2%",
            control: base,
            treatment: base.with_error_rate(0.02),
            expected: Expected::Revert,
        },
        Scenario {
            key: "latency-up-20",
            description: "regression: latency +20% (mean 95.8 to 115 ms)",
            control: base,
            treatment: base.with_latency_factor(1.2),
            expected: Expected::Revert,
        },
        Scenario {
            key: "errors-halved",
            description: "improvement: errors 1% to 0.5%",
            control: base,
            treatment: base.with_error_rate(0.005),
            expected: Expected::Promote,
        },
        Scenario {
            key: "latency-down-10",
            description: "improvement: latency -10%",
            control: base,
            treatment: base.with_latency_factor(0.9),
            expected: Expected::Promote,
        },
    ]
}

/// The traffic and the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// New units (users, sessions) arriving per simulated minute, across both arms.
    pub units_per_minute: u64,
    /// Requests each unit sends, each with an `error` and a `latency_ms` event.
    pub requests_per_unit: u32,
    /// How often the controller looks, in simulated milliseconds.
    pub tick_ms: i64,
    /// A run still undecided at this simulated time stops and counts as undecided.
    pub max_ms: i64,
    /// The rollout's plan; `RolloutPlan::new` unless a test wants a faster one.
    pub plan: RolloutPlan,
}

impl World {
    pub fn standard() -> World {
        World {
            units_per_minute: 2_000,
            requests_per_unit: 8,
            tick_ms: 30_000,
            max_ms: 12 * 3_600_000,
            plan: RolloutPlan::new("off".to_owned(), "on".to_owned()),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Promoted,
    Reverted {
        guardrail: String,
    },
    Paused,
    /// Still running at [`World::max_ms`].
    Undecided,
}

/// The per-look significance levels of the fixed-horizon baseline: 1% per guardrail as a
/// canary analysis would use it, and 1%/3 per guardrail (the judge's own budget).
pub const BASELINE_LEVELS: [f64; 2] = [0.01, 0.01 / 3.0];

/// The baseline's three tests, one per default guardrail.
pub const BASELINE_TESTS: [&str; 3] = [
    "Welch t on error per unit",
    "Welch t on latency per unit",
    "Mann-Whitney U on request latencies",
];

/// When the fixed-horizon baseline, looking at every tick with the same data, would first
/// have called the treatment worse.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BaselineOutcome {
    /// Per level of [`BASELINE_LEVELS`]: the first tick at which any test rejected.
    pub first_rejection_ms: [Option<i64>; 2],
    /// Per test of [`BASELINE_TESTS`] at the 1% level.
    pub first_rejection_by_test_ms: [Option<i64>; 3],
    /// Per level: whether any test rejected at the run's last tick only (one look at the
    /// sample the run ended with, the way a fixed-horizon test is meant to be used).
    pub rejected_at_last_look: [bool; 2],
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub end: End,
    pub ended_at_ms: i64,
    /// The step the rollout was at when it ended (index into the plan's steps).
    pub step: usize,
    pub step_started_at_ms: i64,
    /// When each step reached was entered, in order (the first at 0).
    pub steps_entered_at_ms: Vec<i64>,
    pub treatment_units: u64,
    pub control_units: u64,
    pub baseline: BaselineOutcome,
}

/// Latencies above this many milliseconds share the last bin of the rank test.
const LATENCY_BINS: usize = 10_000;

/// The flag's split: a unit's bucket in 0..10,000 from a hash of its key (and the
/// rollout's salt), in treatment while the bucket is below the share in basis points, so
/// a unit in treatment stays there as the share grows.
fn bucket_of(salt: u64, unit: u64) -> u32 {
    (splitmix64(salt ^ unit.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 10_000) as u32
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The seed of run `run` of scenario `scenario`, from the benchmark's seed.
pub fn run_seed(seed: u64, scenario: usize, run: usize) -> u64 {
    splitmix64(splitmix64(seed ^ ((scenario as u64) << 32)) ^ run as u64)
}

/// Simulates one rollout from start to end.
pub fn simulate(world: &World, scenario: &Scenario, seed: u64) -> RunOutcome {
    let plan = &world.plan;
    let mut rng = SmallRng::seed_from_u64(seed);
    let salt: u64 = rng.random();
    let mut aggregate = RolloutAggregate::new(plan);
    let mut progress = Progress::start(0);
    let mut latencies = [Bins::new(LATENCY_BINS), Bins::new(LATENCY_BINS)];
    let mut baseline = BaselineOutcome::default();
    let units_per_tick = (world.units_per_minute * world.tick_ms as u64 / 60_000).max(1);
    let mut next_unit: u64 = 0;
    let mut key = String::new();
    let mut now: i64 = 0;
    let mut steps_entered_at_ms = vec![0];
    loop {
        let share = plan.steps[progress.step].basis_points();
        for index in 0..units_per_tick {
            let unit = next_unit;
            next_unit += 1;
            let at = now + (index * world.tick_ms as u64 / units_per_tick) as i64;
            let treated = bucket_of(salt, unit) < share;
            let (variant, behaviour, arm) = if treated {
                (plan.treatment.as_str(), &scenario.treatment, 1)
            } else {
                (plan.control.as_str(), &scenario.control, 0)
            };
            key.clear();
            push_unit_key(&mut key, unit);
            aggregate.observe(&key, at, Observation::Exposure { variant });
            for _ in 0..world.requests_per_unit {
                let (error, latency) = behaviour.request(&mut rng);
                let metric = |name, value| Observation::Metric { name, value };
                aggregate.observe(&key, at, metric("error", error));
                aggregate.observe(&key, at, metric("latency_ms", latency));
                latencies[arm].add(latency);
            }
        }
        now += world.tick_ms;

        look_with_baseline(&aggregate, &latencies, plan, now, &mut baseline);
        let units = aggregate.units();
        let decision = decide(plan, &progress, units, &aggregate.guardrail_data(plan), now);
        let step = progress.step;
        let step_started_at_ms = progress.step_started_at;
        progress = apply(&progress, &decision, units, now);
        if let Action::Advance { .. } = decision.action {
            steps_entered_at_ms.push(now);
        }
        let end = match (&decision.action, progress.status) {
            (Action::Revert { guardrail }, _) => Some(End::Reverted {
                guardrail: guardrail.clone(),
            }),
            (_, Status::Promoted) => Some(End::Promoted),
            (_, Status::Paused) => Some(End::Paused),
            _ if now >= world.max_ms => Some(End::Undecided),
            _ => None,
        };
        if let Some(end) = end {
            baseline.rejected_at_last_look = last_look(&aggregate, &latencies, plan);
            break RunOutcome {
                end,
                ended_at_ms: now,
                step,
                step_started_at_ms,
                steps_entered_at_ms,
                treatment_units: units.treatment,
                control_units: units.control,
                baseline,
            };
        }
    }
}

fn push_unit_key(key: &mut String, unit: u64) {
    use std::fmt::Write;
    let _ = write!(key, "user-{unit}");
}

/// The baseline's three one-sided p-values on the data so far, `None` for a test with
/// fewer than the plan's minimum samples in an arm (the judge waits as long).
fn baseline_p_values(
    aggregate: &RolloutAggregate,
    latencies: &[Bins; 2],
    plan: &RolloutPlan,
) -> [Option<f64>; 3] {
    let minimum = plan.min_samples.max(2);
    let per_unit = |metric: &str| {
        let (control, treatment) = aggregate.arm_metrics(metric)?;
        if control.per_unit.count < minimum || treatment.per_unit.count < minimum {
            return None;
        }
        welch_higher(&control.per_unit, &treatment.per_unit)
    };
    let ranks = if latencies[0].total() < minimum || latencies[1].total() < minimum {
        None
    } else {
        mann_whitney_higher(&latencies[0], &latencies[1])
    };
    [per_unit("error"), per_unit("latency_ms"), ranks]
}

fn look_with_baseline(
    aggregate: &RolloutAggregate,
    latencies: &[Bins; 2],
    plan: &RolloutPlan,
    now: i64,
    baseline: &mut BaselineOutcome,
) {
    let p_values = baseline_p_values(aggregate, latencies, plan);
    for (level, first) in BASELINE_LEVELS.iter().zip(&mut baseline.first_rejection_ms) {
        if first.is_none() && p_values.iter().flatten().any(|p| p < level) {
            *first = Some(now);
        }
    }
    for (p, first) in p_values
        .iter()
        .zip(&mut baseline.first_rejection_by_test_ms)
    {
        if first.is_none() && p.is_some_and(|p| p < BASELINE_LEVELS[0]) {
            *first = Some(now);
        }
    }
}

fn last_look(aggregate: &RolloutAggregate, latencies: &[Bins; 2], plan: &RolloutPlan) -> [bool; 2] {
    let p_values = baseline_p_values(aggregate, latencies, plan);
    BASELINE_LEVELS.map(|level| p_values.iter().flatten().any(|p| *p < level))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_even_and_units_stay_in_treatment_as_it_grows() {
        let buckets: Vec<u32> = (0..100_000).map(|unit| bucket_of(7, unit)).collect();
        let share = |basis_points| buckets.iter().filter(|b| **b < basis_points).count();
        assert!((share(100) as i64 - 1_000).abs() < 150, "{}", share(100));
        assert!((share(5_000) as i64 - 50_000).abs() < 1_000);
        assert_eq!(bucket_of(7, 42), buckets[42]);
    }

    #[test]
    fn behaviours_have_the_stated_means() {
        let mut rng = SmallRng::seed_from_u64(1);
        let base = Behaviour::BASELINE;
        let n = 200_000;
        let (errors, latency) = (0..n).fold((0.0, 0.0), |(e, l), _| {
            let (error, latency) = base.request(&mut rng);
            (e + error, l + latency)
        });
        assert!((errors / n as f64 - 0.01).abs() < 0.001);
        let mean = latency / n as f64;
        assert!((mean - base.mean_latency_ms()).abs() < 1.0, "{mean}");
    }
}
