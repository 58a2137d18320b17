//! The `capstan` binary: `capstan serve` runs the control plane; every other command is
//! a client of a running server's API.

mod cli;
mod client;
mod output;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
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
            Command::Serve(config) => serve(config).await,
            command => cli::run(&cli.global, command).await,
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

/// Parses the command line; for `serve --config FILE`, the file's settings fill in what
/// no flag or variable gave.
fn parse() -> Result<Cli, String> {
    use clap::{CommandFactory, FromArgMatches};
    let arguments: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(&arguments);
    let cli = Cli::from_arg_matches(&matches).map_err(|error| error.to_string())?;
    let (Command::Serve(config), Some(serve)) = (&cli.command, matches.subcommand_matches("serve"))
    else {
        return Ok(cli);
    };
    let Some(path) = &config.config else {
        return Ok(cli);
    };
    let extra = capstan_server::core::config::file_arguments(path, serve)?;
    if extra.is_empty() {
        return Ok(cli);
    }
    let mut all = arguments;
    all.extend(extra.into_iter().map(std::ffi::OsString::from));
    Cli::try_parse_from(all).map_err(|error| error.to_string())
}

async fn serve(config: capstan_server::ServeConfig) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAPSTAN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Signal handlers go in before the server announces itself: a SIGTERM that follows
    // "Listening on" must shut down gracefully, never kill the process mid-request.
    let mut signals = ShutdownSignals::install()?;
    let mut server =
        capstan_server::start(&config, Arc::new(capstan_server::core::clock::SystemClock)).await?;
    if let Some(token) = &server.generated_admin_token {
        println!(
            "Created project \"default\" with environments development, staging and production."
        );
        println!("Admin token (shown once; keep it safe): {token}");
    }
    tracing::info!(address = %server.address, store = server.state.core.store.backend().as_str(), "capstan is serving");
    // One stable line on stdout, for people and for scripts that start Capstan on port 0.
    println!("Listening on http://{}", server.address);
    tokio::select! {
        result = server.wait() => return result,
        () = signals.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await
}

/// SIGTERM and SIGINT, listened for from the moment this is made.
struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<ShutdownSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignals {
            terminate: signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("failed to listen for SIGINT")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
