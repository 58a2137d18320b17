//! Plain records the store reads and writes. JSON columns are carried as
//! `serde_json::Value`; their shape belongs to the layer above.

use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey, SegmentKey};
use serde_json::Value;

use crate::{AuditEntry, Notification, RolloutWrite, TokenRecord};

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRecord {
    pub key: ProjectKey,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentRecord {
    pub project: ProjectKey,
    pub key: EnvironmentKey,
    pub name: String,
    pub revision: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewEnvironment {
    pub project: ProjectKey,
    pub key: EnvironmentKey,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub project: ProjectKey,
    pub project_name: String,
    pub environments: Vec<EnvironmentKey>,
    pub admin_token: TokenRecord,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapOutcome {
    Created,
    AlreadyBootstrapped,
}

/// A flag's project-wide attributes; its per-environment configuration is a
/// [`ConfigRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlagRecord {
    pub key: FlagKey,
    pub flag_type: FlagType,
    pub description: String,
    pub client_visible: bool,
    pub created_at: i64,
}

/// A flag's configuration in one environment: a flagd flag object (state, variants,
/// defaultVariant, targeting, metadata, prerequisites), versioned.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRecord {
    pub flag: FlagKey,
    pub config: Value,
    pub version: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRecord {
    pub key: SegmentKey,
    pub description: String,
    pub rule: Value,
    pub version: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentState {
    pub environment: EnvironmentRecord,
    pub flags: Vec<FlagRecord>,
    pub configs: Vec<ConfigRecord>,
    pub segments: Vec<SegmentRecord>,
}

/// One atomic change to a project. Every write of the control plane is one of these.
#[derive(Debug, Clone)]
pub struct ChangeSet {
    pub project: ProjectKey,
    /// Environments whose revision the change increments, with the revision the writer
    /// read; a different revision in the database aborts the change.
    pub environments: Vec<(EnvironmentKey, i64)>,
    pub flags: Vec<FlagWrite>,
    pub configs: Vec<ConfigWrite>,
    pub segments: Vec<SegmentWrite>,
    pub audit: AuditEntry,
    pub at: i64,
    /// A pending scheduled change this change carries out; it is marked applied in the
    /// same transaction, so a schedule takes effect exactly once across replicas.
    pub settles_schedule: Option<i64>,
    /// Rollouts started or moved on by this change (a rollout step and the flag change
    /// that carries it out commit together).
    pub rollouts: Vec<RolloutWrite>,
    /// Messages for the project's webhooks, queued in the same transaction (an outbox),
    /// so a committed change is always announced and an aborted one never is.
    pub notifications: Vec<Notification>,
}

#[derive(Debug, Clone)]
pub enum FlagWrite {
    /// Creates the flag, or updates its project-wide attributes.
    Upsert(FlagRecord),
    /// Deletes the flag and its configuration in every environment.
    Delete(FlagKey),
}

#[derive(Debug, Clone)]
pub struct ConfigWrite {
    pub environment: EnvironmentKey,
    pub flag: FlagKey,
    /// The version the writer read, or `None` when it expects no configuration yet.
    pub expected_version: Option<i64>,
    /// The new configuration, or `None` to remove the flag from the environment.
    pub config: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct SegmentWrite {
    pub environment: EnvironmentKey,
    pub key: SegmentKey,
    pub expected_version: Option<i64>,
    /// The new `(description, rule)`, or `None` to delete the segment.
    pub segment: Option<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppliedChange {
    pub audit_id: i64,
    /// The new version of each configuration written, in the order given.
    pub config_versions: Vec<(EnvironmentKey, FlagKey, i64)>,
    /// The id of each rollout created, in the order given.
    pub rollout_ids: Vec<i64>,
}

/// One version of a flag's configuration in one environment, with the change that
/// made it. `config` is `None` for the version that deleted the flag.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagVersionRecord {
    pub version: i64,
    pub config: Option<Value>,
    pub audit_id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
}
