//! Benchmarks of personalised placement, each driven by a script in `bench/placement/`
//! that also runs Vowpal Wabbit and writes the figures into `docs/benchmarks.md`:
//!
//! - `synthetic`: a seeded world played by Capstan and the baselines, written out as a
//!   stream file that Vowpal Wabbit then plays, event for event.
//! - `obd`: the Open Bandit Dataset's uniformly random log, learned online with
//!   progressive inverse-propensity estimates.
//! - `throughput`: learn-and-predict examples per second in process, and the same
//!   examples written in Vowpal Wabbit's format.
//! - `http`: p50/p99 latency of the rank endpoint of a `capstan serve` on loopback.

use clap::Parser;

mod http;
mod obd;
mod random;
mod synthetic;
mod throughput;
mod world;

#[derive(clap::Parser, Debug)]
#[command(about = "Benchmarks of Capstan's personalised placement")]
enum Command {
    /// Play the synthetic world with Capstan and the baselines; write the stream files.
    Synthetic(synthetic::SyntheticArgs),
    /// Learn the Open Bandit Dataset's random log online; progressive IPS estimates.
    Obd(obd::ObdArgs),
    /// Learn-and-predict examples per second in process; write the examples for VW.
    Throughput(throughput::ThroughputArgs),
    /// Latency of the HTTP rank endpoint of a `capstan serve` on loopback.
    Http(http::HttpArgs),
}

fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Synthetic(args) => synthetic::run(&args),
        Command::Obd(args) => obd::run(&args),
        Command::Throughput(args) => throughput::run(&args),
        Command::Http(args) => http::run(&args),
    }
}
