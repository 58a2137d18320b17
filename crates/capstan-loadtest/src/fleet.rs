//! Many SDK streams at once, one task each, reporting every snapshot they see with the
//! moment they saw it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::sse::{SnapshotStream, stream_request};

/// What a stream task tells the fleet.
enum Report {
    /// The stream parsed a snapshot with this revision, at this moment.
    Seen {
        stream: usize,
        revision: i64,
        at: Instant,
    },
    Failed {
        stream: usize,
        error: anyhow::Error,
    },
}

/// How to open a fleet.
pub(crate) struct FleetPlan<'a> {
    /// The servers; stream `i` goes to server `i % servers.len()`.
    pub(crate) servers: &'a [SocketAddr],
    pub(crate) sdk_key: &'a str,
    pub(crate) streams: usize,
    /// How many streams may be connecting at once, so the server's listen backlog does
    /// not overflow (an overflow costs a SYN retry, a whole second).
    pub(crate) connecting_at_once: usize,
    /// How long every stream may take to connect and receive its first snapshot.
    pub(crate) open_timeout: Duration,
}

pub(crate) struct Fleet {
    reports: mpsc::UnboundedReceiver<Report>,
    /// The newest revision each stream has seen.
    latest: Vec<i64>,
    /// The server index of each stream.
    server_of: Vec<usize>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// When each stream first saw a revision, in stream order.
pub(crate) struct Arrivals {
    pub(crate) at: Vec<Instant>,
}

impl Arrivals {
    pub(crate) fn last(&self) -> Option<Instant> {
        self.at.iter().max().copied()
    }

    pub(crate) fn first(&self) -> Option<Instant> {
        self.at.iter().min().copied()
    }
}

impl Fleet {
    /// Opens every stream and waits until each has received its first snapshot.
    /// Returns the fleet and how long opening took.
    pub(crate) async fn open(plan: FleetPlan<'_>) -> anyhow::Result<(Fleet, Duration)> {
        if plan.servers.is_empty() {
            bail!("no server to connect to");
        }
        let started = Instant::now();
        let (sender, reports) = mpsc::unbounded_channel();
        let (stop, stopped) = watch::channel(false);
        let connecting = Arc::new(Semaphore::new(plan.connecting_at_once.max(1)));
        let requests: Vec<Arc<[u8]>> = plan
            .servers
            .iter()
            .map(|&address| Arc::from(stream_request(address, plan.sdk_key)))
            .collect();
        let mut tasks = JoinSet::new();
        let mut server_of = Vec::with_capacity(plan.streams);
        for stream in 0..plan.streams {
            let server = stream % plan.servers.len();
            server_of.push(server);
            tasks.spawn(follow(
                stream,
                plan.servers[server],
                requests[server].clone(),
                connecting.clone(),
                sender.clone(),
                stopped.clone(),
            ));
        }
        let mut fleet = Fleet {
            reports,
            latest: vec![i64::MIN; plan.streams],
            server_of,
            stop,
            tasks,
        };
        fleet
            .wait_for(i64::MIN + 1, plan.open_timeout)
            .await
            .context("not every stream got its first snapshot")?;
        Ok((fleet, started.elapsed()))
    }

    pub(crate) fn len(&self) -> usize {
        self.latest.len()
    }

    /// The server index of each stream, in stream order.
    pub(crate) fn server_of(&self) -> &[usize] {
        &self.server_of
    }

    /// The oldest and the newest revision the streams hold.
    pub(crate) fn revision_range(&self) -> (i64, i64) {
        let oldest = self.latest.iter().copied().min().unwrap_or(i64::MIN);
        let newest = self.latest.iter().copied().max().unwrap_or(i64::MIN);
        (oldest, newest)
    }

    /// Waits until every stream has seen `revision` or a later one, and returns when each
    /// first did. A stream that already had it counts as arriving now.
    pub(crate) async fn wait_for(
        &mut self,
        revision: i64,
        timeout: Duration,
    ) -> anyhow::Result<Arrivals> {
        let now = Instant::now();
        let mut at: Vec<Option<Instant>> = self
            .latest
            .iter()
            .map(|&held| (held >= revision).then_some(now))
            .collect();
        let mut missing = at.iter().filter(|arrival| arrival.is_none()).count();
        let deadline = tokio::time::Instant::now() + timeout;
        while missing > 0 {
            let report = match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(report)) => report,
                Ok(None) => bail!("every stream task has ended"),
                Err(_) => bail!(
                    "{missing} of {} streams had not seen revision {revision} after {timeout:?}",
                    self.latest.len()
                ),
            };
            match report {
                Report::Seen {
                    stream,
                    revision: seen,
                    at: seen_at,
                } => {
                    self.latest[stream] = self.latest[stream].max(seen);
                    if seen >= revision && at[stream].is_none() {
                        at[stream] = Some(seen_at);
                        missing -= 1;
                    }
                }
                Report::Failed { stream, error } => {
                    return Err(error.context(format!("stream {stream} failed")));
                }
            }
        }
        Ok(Arrivals {
            at: at
                .into_iter()
                .map(|arrival| arrival.unwrap_or(now))
                .collect(),
        })
    }

    /// Closes every stream and waits for their tasks.
    pub(crate) async fn close(mut self) {
        self.stop.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// One stream: connects (holding a permit until the first snapshot), then reports every
/// snapshot until told to stop.
async fn follow(
    stream: usize,
    address: SocketAddr,
    request: Arc<[u8]>,
    connecting: Arc<Semaphore>,
    reports: mpsc::UnboundedSender<Report>,
    mut stop: watch::Receiver<bool>,
) {
    let outcome = async {
        let permit = connecting
            .acquire()
            .await
            .context("the connection limiter closed")?;
        let mut snapshots = SnapshotStream::open(address, &request).await?;
        let mut permit = Some(permit);
        loop {
            tokio::select! {
                revision = snapshots.next_snapshot() => {
                    let at = Instant::now();
                    let revision = revision?;
                    // The fleet may be gone already; then nobody listens and that is fine.
                    let _ = reports.send(Report::Seen { stream, revision, at });
                    permit.take();
                }
                _ = stop.wait_for(|stop| *stop) => return Ok(()),
            }
        }
    }
    .await;
    if let Err(error) = outcome {
        let _ = reports.send(Report::Failed { stream, error });
    }
}
