//! Follows changes committed through other replicas (PostgreSQL notifications) and
//! brings this replica's snapshots up to date, which wakes its SDK streams.

use std::time::Duration;

use capstan_store::{Change, ChangeFeed};

use crate::flags::FlagsState;

/// Runs until the server shuts down.
pub async fn follow(state: FlagsState, mut feed: ChangeFeed) {
    let mut shutdown = state.core.shutdown.subscribe();
    loop {
        let change = tokio::select! {
            change = feed.next() => change,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match change {
            Ok(Change::Environment {
                project,
                environment,
                revision,
            }) => {
                let behind = state
                    .environments
                    .cached(project.as_str(), environment.as_str())
                    .is_some_and(|snapshot| snapshot.revision() < revision);
                // Environments this replica has not loaded are read fresh when first used.
                if behind
                    && let Err(error) = state.environments.refresh(&project, &environment).await
                {
                    tracing::warn!(%project, %environment, error = %error, "failed to follow a change");
                }
            }
            Ok(Change::Resync) => resync(&state).await,
            Err(error) => {
                tracing::warn!(error = %error, "change feed failed; retrying");
                // The feed reconnects on the next call; pausing keeps a dead database
                // from turning this loop into a busy one.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        }
    }
}

/// Compares every loaded environment with the store, after notifications may have been
/// missed.
async fn resync(state: &FlagsState) {
    for (project, environment, revision) in state.environments.loaded() {
        match state
            .core
            .store
            .environment_revision(&project, &environment)
            .await
        {
            Ok(stored) if stored > revision => {
                if let Err(error) = state.environments.refresh(&project, &environment).await {
                    tracing::warn!(%project, %environment, error = %error, "failed to resynchronise");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%project, %environment, error = %error, "failed to resynchronise")
            }
        }
    }
}
