//! `propagation`: opens many SDK streams, flips a flag again and again, and reports how
//! long each flip took to reach every stream.
//!
//! A flip's latency is measured from just before its API request is sent to the moment
//! the last stream parsed the `snapshot` event carrying the new revision. With a second
//! server (a replica on the same PostgreSQL database), half the streams connect to it
//! while flips go through the first, so the figure includes the hop between replicas.

use std::time::Duration;

use crate::fleet::{Fleet, FleetPlan};
use crate::flips::{FlipArgs, FlipTiming, Flipper, run_flips};
use crate::server::{ServerArgs, allow_connections, loopback_address};
use crate::stats::describe;

#[derive(clap::Args, Debug)]
pub(crate) struct PropagationArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// A second replica on the same database: every other stream connects to it. Flips
    /// still go through --server.
    #[arg(long, env = "CAPSTAN_SECOND_SERVER")]
    second_server: Option<String>,

    /// How many SDK streams to hold open.
    #[arg(long, default_value_t = 1_000)]
    streams: usize,

    /// How many times to flip the flag.
    #[arg(long, default_value_t = 50)]
    flips: usize,

    /// How many streams may be connecting at once.
    #[arg(long, default_value_t = 200)]
    connecting_at_once: usize,

    #[command(flatten)]
    flip: FlipArgs,
}

pub(crate) async fn run(args: PropagationArgs) -> anyhow::Result<()> {
    allow_connections(args.streams)?;
    let mut urls = vec![args.server.server.clone()];
    urls.extend(args.second_server.clone());
    let servers = urls
        .iter()
        .map(|url| loopback_address(url))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let flipper = Flipper::new(&args.server.server, &args.flip)?;
    // The flag starts off, so the first flip turns it on; this also opens the API
    // connection the flips reuse.
    flipper.set(false).await?;

    let (mut fleet, opened_in) = Fleet::open(FleetPlan {
        servers: &servers,
        sdk_key: &args.server.sdk_key,
        streams: args.streams,
        connecting_at_once: args.connecting_at_once,
        open_timeout: Duration::from_secs(120),
    })
    .await?;
    let (oldest, newest) = fleet.revision_range();
    println!(
        "propagation: {} streams on {} ({}), {} flips of {:?}",
        fleet.len(),
        if servers.len() == 1 {
            "one server".to_owned()
        } else {
            format!("{} servers, flips through the first", servers.len())
        },
        urls.join(", "),
        args.flips,
        args.flip.flag,
    );
    println!(
        "  every stream had its first snapshot after {:.2} s (revisions {oldest}..={newest})",
        opened_in.as_secs_f64()
    );
    let timings = run_flips(&mut fleet, &flipper, args.flips, &args.flip, servers.len()).await;
    fleet.close().await;
    report(&timings?, &urls);
    Ok(())
}

fn report(timings: &[FlipTiming], urls: &[String]) {
    let column = |pick: &dyn Fn(&FlipTiming) -> Duration| -> Vec<Duration> {
        timings.iter().map(pick).collect()
    };
    println!(
        "  flip -> every stream saw it: {}",
        describe(&column(&|timing| timing.every_stream))
    );
    println!(
        "  flip -> first stream saw it: {}",
        describe(&column(&|timing| timing.first_stream))
    );
    println!(
        "  flip -> API answered:        {}",
        describe(&column(&|timing| timing.answered))
    );
    if urls.len() > 1 {
        for (index, url) in urls.iter().enumerate() {
            println!(
                "  flip -> every stream on {url} saw it: {}",
                describe(&column(&|timing| timing.per_server[index]))
            );
        }
    }
}
