//! `capstan-loadtest`: measures Capstan's SDK endpoints against running servers on
//! loopback. `bench/sdk.sh` starts the servers, creates the flag and keys, and runs
//! every measurement; docs/benchmarks.md holds the figures.
//!
//! - `propagation`: how long a flag change takes to reach every connected SDK stream.
//! - `idle`: what holding many idle streams costs the server (its RSS).
//! - `events`: how many events per second `POST /api/v1/events` stores.

mod events;
mod fleet;
mod flips;
mod idle;
mod propagation;
mod server;
mod sse;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "capstan-loadtest",
    about = "Load generator for Capstan's SDK endpoints (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time from a flag change to the moment every connected SDK stream has seen it.
    Propagation(propagation::PropagationArgs),
    /// Hold many idle SDK streams and report the server's memory before and after.
    Idle(idle::IdleArgs),
    /// Send batches of events from several connections and report events per second.
    Events(events::EventsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Propagation(args) => propagation::run(args).await,
            Command::Idle(args) => idle::run(args).await,
            Command::Events(args) => events::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
