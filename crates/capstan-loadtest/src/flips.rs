//! Flipping a flag through the management API and timing how long each flip takes to
//! reach every stream of a fleet.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::fleet::Fleet;

/// Which flag to flip, and the admin token to flip it with.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct FlipArgs {
    /// An admin (or editor) token, for flipping the flag.
    #[arg(long, env = "CAPSTAN_TOKEN", hide_env_values = true)]
    pub(crate) admin_token: Option<String>,

    /// The flag to flip: a boolean flag in the sdk key's environment.
    #[arg(long, env = "CAPSTAN_LOADTEST_FLAG", default_value = "loadtest")]
    pub(crate) flag: String,

    #[arg(long, default_value = "default")]
    pub(crate) project: String,

    /// The sdk key's environment.
    #[arg(long, default_value = "production")]
    pub(crate) environment: String,

    /// Pause before each flip, so flips do not queue behind each other.
    #[arg(long, default_value_t = 50)]
    pub(crate) pause_ms: u64,

    /// How long a flip may take to reach every stream before the run fails.
    #[arg(long, default_value_t = 30)]
    pub(crate) flip_timeout_seconds: u64,
}

/// Turns one flag on and off through one server.
pub(crate) struct Flipper {
    http: reqwest::Client,
    flag_url: String,
    admin_token: String,
}

impl Flipper {
    pub(crate) fn new(server: &str, args: &FlipArgs) -> anyhow::Result<Flipper> {
        let Some(admin_token) = args.admin_token.clone() else {
            bail!("flipping needs an admin token (--admin-token or CAPSTAN_TOKEN)");
        };
        Ok(Flipper {
            http: reqwest::Client::new(),
            flag_url: format!(
                "{}/api/v1/projects/{}/environments/{}/flags/{}",
                server.trim_end_matches('/'),
                args.project,
                args.environment,
                args.flag
            ),
            admin_token,
        })
    }

    /// Turns the flag on or off; returns once the server has answered.
    pub(crate) async fn set(&self, enabled: bool) -> anyhow::Result<()> {
        let action = if enabled { "enable" } else { "disable" };
        let response = self
            .http
            .post(format!("{}/{action}", self.flag_url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .with_context(|| format!("failed to {action} the flag"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("the server refused to {action} the flag: HTTP {status}: {body}");
        }
        Ok(())
    }
}

/// The timings of one flip, measured from just before its request was sent.
pub(crate) struct FlipTiming {
    /// Until the last stream had seen the new revision: the flip's propagation latency.
    pub(crate) every_stream: Duration,
    /// Until the first stream had.
    pub(crate) first_stream: Duration,
    /// Until the API answered the flip.
    pub(crate) answered: Duration,
    /// Until the last stream of each server had seen it, by server index.
    pub(crate) per_server: Vec<Duration>,
}

/// Flips the flag `flips` times (on, off, on, …; it should start off) and times each.
pub(crate) async fn run_flips(
    fleet: &mut Fleet,
    flipper: &Flipper,
    flips: usize,
    args: &FlipArgs,
    servers: usize,
) -> anyhow::Result<Vec<FlipTiming>> {
    let timeout = Duration::from_secs(args.flip_timeout_seconds);
    let mut timings = Vec::with_capacity(flips);
    for flip in 0..flips {
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
        let (_, held) = fleet.revision_range();
        let sent = Instant::now();
        flipper.set(flip.is_multiple_of(2)).await?;
        let answered = sent.elapsed();
        let arrivals = fleet
            .wait_for(held + 1, timeout)
            .await
            .with_context(|| format!("flip {} did not reach every stream", flip + 1))?;
        let since_sent = |at: Option<Instant>| {
            at.map(|at| at.saturating_duration_since(sent))
                .unwrap_or_default()
        };
        let mut per_server = vec![Duration::ZERO; servers];
        for (&at, &server) in arrivals.at.iter().zip(fleet.server_of()) {
            per_server[server] = per_server[server].max(at.saturating_duration_since(sent));
        }
        timings.push(FlipTiming {
            every_stream: since_sent(arrivals.last()),
            first_stream: since_sent(arrivals.first()),
            answered,
            per_server,
        });
    }
    Ok(timings)
}
