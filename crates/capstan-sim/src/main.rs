//! `capstan-sim`: runs the rollout simulation and prints its tables, or writes them into
//! `docs/benchmarks.md` between the rollout-simulation markers.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use capstan_sim::report::{Provenance, ScenarioRuns, render, replace_between, run_scenario};
use capstan_sim::world::{Expected, World, scenarios};
use clap::Parser;

const START: &str = "<!-- rollout-simulation:start -->";
const END: &str = "<!-- rollout-simulation:end -->";

/// Simulates guarded rollouts against the real judge and reports how they end.
#[derive(Debug, Parser)]
struct Options {
    /// Runs of the A/A scenario and of each regression.
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    /// Runs of each improvement (these run longest, so fewer by default).
    #[arg(long, default_value_t = 200)]
    promotion_runs: usize,
    /// The seed every run's seed derives from.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads to run on (default: the machine's cores).
    #[arg(long)]
    threads: Option<usize>,
    /// New units a simulated minute.
    #[arg(long, default_value_t = World::standard().units_per_minute)]
    units_per_minute: u64,
    /// Write the tables into this Markdown file between the markers
    /// `<!-- rollout-simulation:start -->` and `<!-- rollout-simulation:end -->`,
    /// instead of printing them.
    #[arg(long)]
    write: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let threads = options.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let world = World {
        units_per_minute: options.units_per_minute,
        ..World::standard()
    };
    let started = Instant::now();
    let mut results: Vec<ScenarioRuns> = Vec::new();
    for (index, scenario) in scenarios().iter().enumerate() {
        let runs = if scenario.expected == Expected::Promote && index > 0 {
            options.promotion_runs
        } else {
            options.runs
        };
        let scenario_started = Instant::now();
        let result = run_scenario(&world, scenario, index, runs, options.seed, threads);
        let ends = result.ends();
        eprintln!(
            "{}: {} runs, {} promoted, {} reverted, {} paused, {} undecided ({:.1} s)",
            scenario.key,
            ends.runs,
            ends.promoted,
            ends.reverted,
            ends.paused,
            ends.undecided,
            scenario_started.elapsed().as_secs_f64()
        );
        results.push(result);
    }
    let mut command = "cargo run --release -p capstan-sim --".to_owned();
    for arg in std::env::args().skip(1) {
        command.push(' ');
        command.push_str(&arg);
    }
    let provenance = Provenance {
        command,
        seed: options.seed,
        threads,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    };
    let body = render(&world, &results, &provenance);
    let Some(path) = options.write else {
        print!("{body}");
        return Ok(());
    };
    let document = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let Some(updated) = replace_between(&document, START, END, &body) else {
        bail!("{} has no {START} ... {END} markers", path.display());
    };
    std::fs::write(&path, updated)
        .with_context(|| format!("failed to write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
