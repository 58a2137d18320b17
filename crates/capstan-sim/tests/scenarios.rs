//! A small, fixed-seed version of the benchmark: the direction of every result, fast
//! enough for a debug build.
//!
//! The default plan starts at 1%, where control sees 99 units for each treatment unit, so
//! one run of it folds about 150,000 units; here the plan starts at 10% with 5-minute
//! steps and traffic is 1,000 units a minute, which keeps every run to a few thousand
//! units while the judge, its defaults (guardrails, false-revert rate, minimums) and the
//! aggregate are exactly those of `RolloutPlan::new`.

use capstan_judge::{RolloutPlan, Step};
use capstan_sim::report::{ScenarioRuns, run_scenario};
use capstan_sim::world::{End, World, scenarios};

const SEED: u64 = 20_240_601;

fn fast_world() -> World {
    let mut plan = RolloutPlan::new("off".to_owned(), "on".to_owned());
    plan.steps = [10.0, 50.0, 100.0]
        .into_iter()
        .map(|percent| Step {
            percent,
            min_duration_ms: 5 * 60_000,
            min_units: 100,
        })
        .collect();
    World {
        units_per_minute: 1_000,
        max_ms: 6 * 3_600_000,
        plan,
        ..World::standard()
    }
}

fn run(key: &str, runs: usize) -> ScenarioRuns {
    let all = scenarios();
    let index = all
        .iter()
        .position(|s| s.key == key)
        .expect("known scenario");
    run_scenario(&fast_world(), &all[index], index, runs, SEED, 2)
}

#[test]
fn a_a_rollouts_promote_and_the_fixed_test_checked_every_tick_does_not() {
    let runs = 40;
    let result = run("a/a", runs);
    let ends = result.ends();
    // With a 1% false-revert rate, 3 or more reverts in 40 runs has chance below 1%.
    assert!(ends.reverted <= 2, "{ends:?}");
    assert!(ends.promoted >= runs - 2, "{ends:?}");
    // The fixed-horizon test at 1% per guardrail, looked at every tick, cries wolf often:
    // far more than its nominal 1% and than the judge.
    let baseline = result.baseline_rejections(0);
    assert!(
        baseline >= 3 && baseline > 2 * ends.reverted,
        "{baseline} vs {ends:?}"
    );
}

#[test]
fn regressions_are_reverted_by_the_guardrail_they_break() {
    let runs = 40;
    for (key, guardrails) in [
        ("errors-doubled", &["error mean"][..]),
        ("latency-up-20", &["latency_ms mean", "latency_ms p95"][..]),
    ] {
        let result = run(key, runs);
        let ends = result.ends();
        assert!(ends.reverted >= runs - 1, "{key}: {ends:?}");
        for outcome in &result.outcomes {
            if let End::Reverted { guardrail } = &outcome.end {
                assert!(
                    guardrails.contains(&guardrail.as_str()),
                    "{key}: {guardrail}"
                );
                // Caught at the first step, before half of the traffic saw it.
                assert_eq!(outcome.step, 0, "{key}: {outcome:?}");
            }
        }
    }
}

#[test]
fn improvements_are_promoted() {
    let runs = 20;
    for key in ["errors-halved", "latency-down-10"] {
        let ends = run(key, runs).ends();
        assert!(ends.promoted >= runs - 1, "{key}: {ends:?}");
    }
}

#[test]
fn results_depend_on_the_seed_only_not_on_threads() {
    let all = scenarios();
    let world = fast_world();
    let one = run_scenario(&world, &all[1], 1, 6, SEED, 1);
    let three = run_scenario(&world, &all[1], 1, 6, SEED, 3);
    assert_eq!(one.outcomes, three.outcomes);
    let other_seed = run_scenario(&world, &all[1], 1, 6, SEED + 1, 2);
    assert_ne!(one.outcomes, other_seed.outcomes);
}
