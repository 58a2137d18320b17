//! Many runs of each scenario, on all cores, summarised into the tables of
//! `docs/benchmarks.md`.

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::world::{
    BASELINE_TESTS, End, Expected, RunOutcome, Scenario, World, run_seed, simulate,
};

/// The runs of one scenario, in run order (so the summary does not depend on threads).
#[derive(Debug, Clone)]
pub struct ScenarioRuns {
    pub scenario: Scenario,
    pub outcomes: Vec<RunOutcome>,
}

/// Runs `runs` rollouts of `scenario` on `threads` threads. Run `i` always uses the same
/// seed, so the result is the same whatever the number of threads.
pub fn run_scenario(
    world: &World,
    scenario: &Scenario,
    scenario_index: usize,
    runs: usize,
    seed: u64,
    threads: usize,
) -> ScenarioRuns {
    let next = AtomicUsize::new(0);
    let mut outcomes: Vec<(usize, RunOutcome)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let run = next.fetch_add(1, Ordering::Relaxed);
                        if run >= runs {
                            break done;
                        }
                        let outcome =
                            simulate(world, scenario, run_seed(seed, scenario_index, run));
                        done.push((run, outcome));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a simulation thread panicked"))
            .collect()
    });
    outcomes.sort_by_key(|(run, _)| *run);
    ScenarioRuns {
        scenario: scenario.clone(),
        outcomes: outcomes.into_iter().map(|(_, outcome)| outcome).collect(),
    }
}

/// Counts of how runs ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ends {
    pub runs: usize,
    pub promoted: usize,
    pub reverted: usize,
    pub paused: usize,
    pub undecided: usize,
}

impl ScenarioRuns {
    pub fn ends(&self) -> Ends {
        let mut ends = Ends {
            runs: self.outcomes.len(),
            ..Ends::default()
        };
        for outcome in &self.outcomes {
            match outcome.end {
                End::Promoted => ends.promoted += 1,
                End::Reverted { .. } => ends.reverted += 1,
                End::Paused => ends.paused += 1,
                End::Undecided => ends.undecided += 1,
            }
        }
        ends
    }

    /// Runs in which the fixed-horizon baseline, looking every tick at `level_index` of
    /// [`BASELINE_LEVELS`], would have reverted (before the judge's run ended).
    pub fn baseline_rejections(&self, level_index: usize) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.baseline.first_rejection_ms[level_index].is_some())
            .count()
    }
}

/// The nearest-rank quantile `q` of `values` (sorted here), or `None` if empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

fn percent(count: usize, of: usize) -> String {
    if of == 0 {
        return "–".to_owned();
    }
    format!("{:.1}%", 100.0 * count as f64 / of as f64)
}

fn minutes(ms: Option<f64>) -> String {
    match ms {
        None => "–".to_owned(),
        Some(ms) => {
            let minutes = ms / 60_000.0;
            if minutes < 10.0 {
                format!("{minutes:.1} min")
            } else {
                format!("{minutes:.0} min")
            }
        }
    }
}

fn count(value: Option<f64>) -> String {
    match value {
        None => "–".to_owned(),
        Some(value) => {
            let value = value.round() as u64;
            if value >= 10_000 {
                let text = value.to_string();
                let (head, tail) = text.split_at(text.len() - 3);
                format!("{head},{tail}")
            } else {
                value.to_string()
            }
        }
    }
}

/// How the tables were produced, for the heading of the section.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub command: String,
    pub seed: u64,
    pub threads: usize,
    pub elapsed_seconds: f64,
}

/// The Markdown text that goes between the markers in `docs/benchmarks.md`.
pub fn render(world: &World, results: &[ScenarioRuns], provenance: &Provenance) -> String {
    let mut out = String::new();
    let plan = &world.plan;
    let steps: Vec<String> = plan
        .steps
        .iter()
        .map(|s| format!("{}%", s.percent))
        .collect();
    let guardrails: Vec<String> = plan.guardrails.iter().map(|g| g.name()).collect();
    let _ = writeln!(
        out,
        "Produced by `{}` (seed {}, {} threads, {:.0} s on this machine's 2 cores; the \
         output is the same for a given seed whatever the thread count).\n",
        provenance.command, provenance.seed, provenance.threads, provenance.elapsed_seconds
    );
    let _ = writeln!(
        out,
        "World: {} new units a minute, each sending one exposure and {} requests (each an \
         `error` event, 1% failing in control, and a `latency_ms` event, lognormal with \
         median 80 ms, mean 95.8 ms, p95 214 ms in control). A unit is in treatment when a \
         hash of its key falls below the step's share, as the flag's split does. The \
         controller looks every {} simulated seconds: `decide` on the aggregate's data, \
         then `apply`. Plan: `RolloutPlan::new` defaults (steps {}, each at least {} min \
         and {} new treatment units; guardrails {}, all revert; false-revert rate {}). A run \
         ends at promote, revert or pause, or undecided after {} simulated hours.\n",
        world.units_per_minute,
        world.requests_per_unit,
        world.tick_ms / 1000,
        steps.join(", "),
        plan.steps[0].min_duration_ms / 60_000,
        plan.steps[0].min_units,
        guardrails.join(", "),
        plan.false_revert_rate,
        world.max_ms / 3_600_000,
    );

    out.push_str("#### Outcomes\n\n");
    out.push_str(
        "| scenario | runs | promoted | reverted | paused / undecided | expected | time to decision, median (p90) | treatment units at decision, median |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for result in results {
        let ends = result.ends();
        let mut times: Vec<f64> = result
            .outcomes
            .iter()
            .map(|o| o.ended_at_ms as f64)
            .collect();
        let mut units: Vec<f64> = result
            .outcomes
            .iter()
            .map(|o| o.treatment_units as f64)
            .collect();
        let expected = match result.scenario.expected {
            Expected::Promote => "promote",
            Expected::Revert => "revert",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} / {} | {} | {} ({}) | {} |",
            result.scenario.description,
            ends.runs,
            percent(ends.promoted, ends.runs),
            percent(ends.reverted, ends.runs),
            ends.paused,
            ends.undecided,
            expected,
            minutes(quantile(&mut times.clone(), 0.5)),
            minutes(quantile(&mut times, 0.9)),
            count(quantile(&mut units, 0.5)),
        );
    }

    out.push_str("\n#### Promotions: time spent at each step\n\n");
    let mut header = "| scenario | promoted |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for step in &plan.steps[..plan.steps.len() - 1] {
        let _ = write!(header, " at {}%, median (p90) |", step.percent);
        rule.push_str("---|");
    }
    header.push_str(" total, median (p90) |");
    rule.push_str("---|");
    let _ = writeln!(out, "{header}\n{rule}");
    for result in results {
        let promoted: Vec<&RunOutcome> = result
            .outcomes
            .iter()
            .filter(|o| o.end == End::Promoted)
            .collect();
        if promoted.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "| {} | {} |",
            result.scenario.description,
            promoted.len()
        );
        for index in 0..plan.steps.len() - 1 {
            let mut spent: Vec<f64> = promoted
                .iter()
                .filter_map(|o| {
                    let entered = *o.steps_entered_at_ms.get(index)?;
                    let left = o
                        .steps_entered_at_ms
                        .get(index + 1)
                        .copied()
                        .unwrap_or(o.ended_at_ms);
                    Some((left - entered) as f64)
                })
                .collect();
            let _ = write!(
                out,
                " {} ({}) |",
                minutes(quantile(&mut spent.clone(), 0.5)),
                minutes(quantile(&mut spent, 0.9))
            );
        }
        let mut total: Vec<f64> = promoted.iter().map(|o| o.ended_at_ms as f64).collect();
        let _ = writeln!(
            out,
            " {} ({}) |",
            minutes(quantile(&mut total.clone(), 0.5)),
            minutes(quantile(&mut total, 0.9))
        );
    }

    out.push_str("\n#### Reverts by step\n\n");
    out.push_str(
        "Where reverts happened, how many treatment units had been exposed by then, and how \
         long after the rollout started (and after the step started).\n\n\
         | scenario | step | reverts | treatment units exposed, median (p90) | time since start, median (p90) | time in step, median | guardrail |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for result in results {
        for (index, step) in plan.steps.iter().enumerate() {
            let reverted: Vec<&RunOutcome> = result
                .outcomes
                .iter()
                .filter(|o| o.step == index && matches!(o.end, End::Reverted { .. }))
                .collect();
            if reverted.is_empty() {
                continue;
            }
            let mut units: Vec<f64> = reverted.iter().map(|o| o.treatment_units as f64).collect();
            let mut since: Vec<f64> = reverted.iter().map(|o| o.ended_at_ms as f64).collect();
            let mut in_step: Vec<f64> = reverted
                .iter()
                .map(|o| (o.ended_at_ms - o.step_started_at_ms) as f64)
                .collect();
            let mut names: Vec<(String, usize)> = Vec::new();
            for outcome in &reverted {
                if let End::Reverted { guardrail } = &outcome.end {
                    match names.iter_mut().find(|(name, _)| name == guardrail) {
                        Some((_, n)) => *n += 1,
                        None => names.push((guardrail.clone(), 1)),
                    }
                }
            }
            let names: Vec<String> = names
                .iter()
                .map(|(name, n)| format!("{name} ({n})"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {}% | {} | {} ({}) | {} ({}) | {} | {} |",
                result.scenario.description,
                step.percent,
                reverted.len(),
                count(quantile(&mut units.clone(), 0.5)),
                count(quantile(&mut units, 0.9)),
                minutes(quantile(&mut since.clone(), 0.5)),
                minutes(quantile(&mut since, 0.9)),
                minutes(quantile(&mut in_step, 0.5)),
                names.join(", "),
            );
        }
    }

    out.push_str("\n#### Against a fixed-horizon test checked at every tick\n\n");
    let _ = writeln!(
        out,
        "The same runs, the same data, the same looks: at every tick a Kayenta-style \
         canary analysis runs one fixed-horizon test per guardrail ({}), one-sided \
         (\"treatment worse\"), on the same minimum of {} samples per arm, and would revert \
         at the first tick where any test rejects, until the run ended. \"One look\" \
         applies the same tests once, to the data the run ended with, as a fixed-horizon \
         test is meant to be used.\n",
        BASELINE_TESTS.join(", "),
        plan.min_samples,
    );
    out.push_str(
        "| scenario | judge reverted | fixed test every tick, α = 1% per guardrail | of which Welch error / Welch latency / Mann-Whitney | every tick, α = 1%/3 per guardrail | one look at the end, α = 1% | time to its first rejection, median |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for result in results {
        let ends = result.ends();
        let by_test: Vec<String> = (0..BASELINE_TESTS.len())
            .map(|test| {
                let n = result
                    .outcomes
                    .iter()
                    .filter(|o| o.baseline.first_rejection_by_test_ms[test].is_some())
                    .count();
                percent(n, ends.runs)
            })
            .collect();
        let last_look = result
            .outcomes
            .iter()
            .filter(|o| o.baseline.rejected_at_last_look[0])
            .count();
        let mut first: Vec<f64> = result
            .outcomes
            .iter()
            .filter_map(|o| o.baseline.first_rejection_ms[0].map(|ms| ms as f64))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            result.scenario.description,
            percent(ends.reverted, ends.runs),
            percent(result.baseline_rejections(0), ends.runs),
            by_test.join(" / "),
            percent(result.baseline_rejections(1), ends.runs),
            percent(last_look, ends.runs),
            minutes(quantile(&mut first, 0.5)),
        );
    }
    out
}

/// Replaces the text between `start` and `end` markers in `document` with `body`.
pub fn replace_between(document: &str, start: &str, end: &str, body: &str) -> Option<String> {
    let start_at = document.find(start)? + start.len();
    let end_at = start_at + document[start_at..].find(end)?;
    Some(format!(
        "{}\n{}\n{}",
        &document[..start_at],
        body.trim_end(),
        &document[end_at..]
    ))
}
