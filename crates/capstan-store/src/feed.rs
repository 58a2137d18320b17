//! Changes made through other replicas, as PostgreSQL notifications.
//!
//! Every change set increments its environments' revisions and, in the same transaction,
//! notifies the channel below with `project/environment/revision`. PostgreSQL delivers a
//! notification only if the transaction commits, to every session listening, in commit
//! order. A replica that loses its listening connection may miss notifications; it is
//! told to resynchronise instead.

use capstan_model::{EnvironmentKey, ProjectKey};
use sqlx::postgres::PgListener;

use crate::Result;

pub(crate) const CHANNEL: &str = "capstan_changes";

/// What the feed reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An environment reached this revision.
    Environment {
        project: ProjectKey,
        environment: EnvironmentKey,
        revision: i64,
    },
    /// Notifications may have been missed (the connection was lost and is back): compare
    /// every environment you hold with the store.
    Resync,
}

/// A dedicated connection listening for changes.
pub struct ChangeFeed {
    listener: PgListener,
}

impl ChangeFeed {
    pub(crate) async fn listen(url: &str) -> Result<ChangeFeed> {
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok(ChangeFeed { listener })
    }

    /// The next change. Reconnects by itself after the connection drops, and then
    /// reports [`Change::Resync`].
    pub async fn next(&mut self) -> Result<Change> {
        loop {
            let Some(notification) = self.listener.try_recv().await? else {
                return Ok(Change::Resync);
            };
            match parse(notification.payload()) {
                Some(change) => return Ok(change),
                None => tracing::warn!(
                    payload = notification.payload(),
                    "ignored a malformed change notice"
                ),
            }
        }
    }
}

fn parse(payload: &str) -> Option<Change> {
    let mut parts = payload.split('/');
    let project = ProjectKey::parse(parts.next()?).ok()?;
    let environment = EnvironmentKey::parse(parts.next()?).ok()?;
    let revision = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(Change::Environment {
        project,
        environment,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_notices() {
        assert_eq!(
            parse("default/production/12"),
            Some(Change::Environment {
                project: ProjectKey::parse("default").unwrap(),
                environment: EnvironmentKey::parse("production").unwrap(),
                revision: 12,
            })
        );
        assert_eq!(parse("default/production"), None);
        assert_eq!(parse("default/production/x"), None);
        assert_eq!(parse("default/production/1/2"), None);
        assert_eq!(parse("bad key/production/1"), None);
    }
}
