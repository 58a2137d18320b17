//! `idle`: opens many SDK streams, waits until each has its snapshot, holds them, and
//! reports the server's resident memory before and after (from /proc, so the server
//! must run on this machine; it does, loopback only).

use std::time::Duration;

use anyhow::Context;

use crate::fleet::{Fleet, FleetPlan};
use crate::flips::{FlipArgs, Flipper, run_flips};
use crate::server::{ServerArgs, allow_connections, loopback_address, memory_kib, mib};
use crate::stats::describe;

#[derive(clap::Args, Debug)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// How many idle SDK streams to open.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,

    /// The server's process id, to read its memory from /proc/PID/status.
    #[arg(long, env = "CAPSTAN_SERVER_PID")]
    server_pid: Option<u32>,

    /// How long to hold the streams after every one has its snapshot, before reading
    /// the server's memory again.
    #[arg(long, default_value_t = 5)]
    hold_seconds: u64,

    /// How many streams may be connecting at once.
    #[arg(long, default_value_t = 200)]
    connecting_at_once: usize,

    /// Flips to time while the streams are held (needs an admin token); none by default.
    #[arg(long, default_value_t = 0)]
    flips: usize,

    #[command(flatten)]
    flip: FlipArgs,
}

pub(crate) async fn run(args: IdleArgs) -> anyhow::Result<()> {
    allow_connections(args.connections)?;
    let address = loopback_address(&args.server.server)?;
    let flipper = if args.flips > 0 {
        let flipper = Flipper::new(&args.server.server, &args.flip)?;
        flipper.set(false).await?;
        Some(flipper)
    } else {
        None
    };
    let pid = args.server_pid.map(|pid| pid.to_string());
    let server_memory = || -> anyhow::Result<Option<(u64, u64)>> {
        pid.as_deref()
            .map(memory_kib)
            .transpose()
            .context("failed to read the server's memory")
    };

    let before = server_memory()?;
    let (mut fleet, opened_in) = Fleet::open(FleetPlan {
        servers: &[address],
        sdk_key: &args.server.sdk_key,
        streams: args.connections,
        connecting_at_once: args.connecting_at_once,
        open_timeout: Duration::from_secs(300),
    })
    .await?;
    let opened = server_memory()?;
    println!("idle: {} streams on {}", fleet.len(), args.server.server);
    println!(
        "  every stream had its first snapshot after {:.2} s",
        opened_in.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(args.hold_seconds)).await;
    let held = server_memory()?;

    let flips = match &flipper {
        Some(flipper) => Some(run_flips(&mut fleet, flipper, args.flips, &args.flip, 1).await),
        None => None,
    };
    let (own_rss, _) = memory_kib("self")?;
    fleet.close().await;

    if let (Some((before, _)), Some((opened, _)), Some((held, peak))) = (before, opened, held) {
        let streams = args.connections.max(1) as f64;
        println!("  server RSS before: {}", mib(before));
        println!(
            "  server RSS with every stream open: {} (+{}, {:.1} KiB per stream)",
            mib(opened),
            mib(opened.saturating_sub(before)),
            opened.saturating_sub(before) as f64 / streams
        );
        println!(
            "  server RSS after holding them {} s: {} (+{}, {:.1} KiB per stream); peak (VmHWM) {}",
            args.hold_seconds,
            mib(held),
            mib(held.saturating_sub(before)),
            held.saturating_sub(before) as f64 / streams,
            mib(peak)
        );
    } else {
        println!("  (no --server-pid: the server's memory was not read)");
    }
    println!("  load generator RSS: {}", mib(own_rss));
    if let Some(timings) = flips {
        let every_stream: Vec<Duration> =
            timings?.iter().map(|timing| timing.every_stream).collect();
        println!(
            "  flip -> every one of the {} streams saw it: {}",
            args.connections,
            describe(&every_stream)
        );
    }
    Ok(())
}
