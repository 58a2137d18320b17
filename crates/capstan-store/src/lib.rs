//! Capstan's store: one [`Store`] trait, with SQLite (embedded, the default) and PostgreSQL
//! behind it.
//!
//! The store knows nothing about HTTP or the flag engine. Writes arrive as a
//! [`ChangeSet`]: every row the change touches, the versions the writer expects them to
//! have, and the audit entry that describes it. The store applies a change set in one
//! transaction or not at all, so a crash can never leave half of a change behind.
//!
//! Timestamps are Unix milliseconds chosen by the caller; the store never reads a clock.
//!
//! One module per capability holds its trait, its records and its SQL: `projects`,
//! `flags` (with change sets), `tokens`, `audit`, `schedules`, `events`, `rollouts`,
//! `leases`, `webhooks` and `placements`. [`Store`] is the sum of their traits; callers
//! bring them into scope with `use capstan_store::prelude::*;`.

/// Declares a status stored as text: an enum with `as_str` and `parse` for its column.
macro_rules! text_enum {
    ($(#[$doc:meta])* pub enum $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

mod audit;
mod error;
mod events;
mod feed;
mod flags;
mod leases;
mod migrations;
mod placements;
mod projects;
mod rollouts;
mod schedules;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod webhooks;

pub use audit::{AuditEntry, AuditFilter, AuditRecord, AuditStore};
pub use error::StoreError;
pub use events::{EventKind, EventRecord, EventStore};
pub use feed::{Change, ChangeFeed};
pub use flags::{
    AppliedChange, ChangeSet, ConfigRecord, ConfigWrite, EnvironmentState, FlagRecord, FlagStore,
    FlagVersionRecord, FlagWrite, FlagsWrite, SegmentRecord, SegmentWrite, Write,
};
pub use leases::LeaseStore;
pub use placements::{
    DecisionRecord, ItemRecord, ItemStatus, PlacementStore, RewardCombine, RewardOutcome,
    SurfaceRecord,
};
pub use projects::{
    Bootstrap, BootstrapOutcome, EnvironmentRecord, NewEnvironment, ProjectRecord, ProjectStore,
};
pub use rollouts::{
    RolloutBucketRecord, RolloutFilter, RolloutRecord, RolloutStatus, RolloutStore, RolloutWrite,
};
pub use schedules::{
    NewSchedule, ScheduleOutcome, ScheduleRecord, ScheduleStatus, ScheduleStore, ScheduleWrite,
};
pub use sql::{OpenOptions, SqlStore};
pub use tokens::{TokenRecord, TokenStore};
pub use webhooks::{
    DeliveryOutcome, DeliveryRecord, DeliveryStatus, Notification, WebhookRecord, WebhookStore,
};

use async_trait::async_trait;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Every store trait, for `use capstan_store::prelude::*;`: a capability's methods can
/// be called on a `dyn Store` only where its trait is in scope.
pub mod prelude {
    pub use crate::{
        AuditStore, EventStore, FlagStore, LeaseStore, PlacementStore, ProjectStore, RolloutStore,
        ScheduleStore, Store, TokenStore, WebhookStore,
    };
}

// `Store` is the sum of every capability's trait: this compiles only while a `dyn Store`
// can be used as each of them, as handlers holding `Arc<dyn Store>` do.
const _: fn(&dyn Store) = |store| {
    let _: &dyn ProjectStore = store;
    let _: &dyn FlagStore = store;
    let _: &dyn TokenStore = store;
    let _: &dyn AuditStore = store;
    let _: &dyn ScheduleStore = store;
    let _: &dyn EventStore = store;
    let _: &dyn RolloutStore = store;
    let _: &dyn LeaseStore = store;
    let _: &dyn WebhookStore = store;
    let _: &dyn PlacementStore = store;
};

/// The one store interface: every capability's store, and what concerns the database
/// as a whole. Handlers and controllers hold it as `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    ProjectStore
    + FlagStore
    + TokenStore
    + AuditStore
    + ScheduleStore
    + EventStore
    + RolloutStore
    + LeaseStore
    + WebhookStore
    + PlacementStore
    + Send
    + Sync
    + 'static
{
    /// Which database is behind this store, for logs and `/readyz`.
    fn backend(&self) -> Backend;

    /// Changes committed by any replica, as they commit; `None` where the backend has only
    /// one process (SQLite), so there is nobody else to hear from.
    async fn changes(&self) -> Result<Option<ChangeFeed>>;

    /// Answers when the database can be reached.
    async fn ping(&self) -> Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}
