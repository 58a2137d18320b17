//! The server under test: where it is, and what the load generator may ask of the
//! operating system to reach it with many connections.

use std::net::SocketAddr;

use anyhow::{Context, bail};

/// The options every measurement shares.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ServerArgs {
    /// The server, on loopback: http://127.0.0.1:PORT (as `capstan serve` prints it).
    #[arg(long, env = "CAPSTAN_SERVER")]
    pub(crate) server: String,

    /// An sdk key of the environment the flag lives in.
    #[arg(long, env = "CAPSTAN_SDK_KEY", hide_env_values = true)]
    pub(crate) sdk_key: String,
}

/// The socket address of a loopback URL such as `http://127.0.0.1:8470`. Anything that
/// is not loopback is refused: this tool opens thousands of connections and must not
/// point them at a machine by accident.
pub(crate) fn loopback_address(url: &str) -> anyhow::Result<SocketAddr> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("{url}: expected http://127.0.0.1:PORT");
    };
    let address: SocketAddr = rest
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("{url}: expected http://127.0.0.1:PORT"))?;
    if !address.ip().is_loopback() {
        bail!("{url}: only loopback servers may be load tested");
    }
    Ok(address)
}

/// Raises this process's open-file limit to what `connections` need (each is a file
/// descriptor), up to the hard limit; fails with advice when the hard limit is too low.
pub(crate) fn allow_connections(connections: usize) -> anyhow::Result<()> {
    // Room for the runtime, the HTTP client and standard streams.
    let needed = connections as u64 + 256;
    let limit = rlimit::increase_nofile_limit(needed.max(65_536))
        .context("failed to raise the open-file limit")?;
    if limit < needed {
        bail!(
            "the open-file limit is {limit}, below the {needed} this run needs; \
             raise the hard limit (ulimit -Hn) or open fewer connections"
        );
    }
    Ok(())
}

/// `VmRSS` and `VmHWM` (peak) of a process, in KiB, from `/proc/PID/status`.
pub(crate) fn memory_kib(pid: &str) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("failed to read /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// KiB as MiB for reports.
pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(
            loopback_address("http://127.0.0.1:8470/")
                .expect("loopback")
                .port(),
            8470
        );
        assert!(loopback_address("http://[::1]:8470").is_ok());
        assert!(loopback_address("http://10.0.0.1:8470").is_err());
        assert!(loopback_address("https://127.0.0.1:8470").is_err());
        assert!(loopback_address("http://localhost:8470").is_err());
    }

    #[test]
    fn reads_this_process_memory() {
        let (rss, peak) = memory_kib("self").expect("own status");
        assert!(rss > 0 && peak >= rss);
    }
}
