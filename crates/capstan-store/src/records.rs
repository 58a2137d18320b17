//! Plain records the store reads and writes. JSON columns are carried as
//! `serde_json::Value`; their shape belongs to the layer above.

use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey, Role, SegmentKey, TokenName};
use serde_json::Value;

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
}

/// What happened, for the audit trail. `before` and `after` are JSON snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub project: Option<ProjectKey>,
    pub environment: Option<EnvironmentKey>,
    pub resource_kind: String,
    pub resource_key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: AuditEntry,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project: Option<ProjectKey>,
    pub environment: Option<EnvironmentKey>,
    pub resource_kind: Option<String>,
    pub resource_key: Option<String>,
    pub limit: Option<i64>,
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

#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub name: TokenName,
    pub role: Role,
    pub project: Option<ProjectKey>,
    pub environment: Option<EnvironmentKey>,
    /// Hex SHA-256 of the secret; the secret itself is never stored.
    pub hash: String,
    /// The first characters of the secret, so a person can tell tokens apart.
    pub hint: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_by: String,
}

impl TokenRecord {
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub project: ProjectKey,
    pub environment: EnvironmentKey,
    pub flag: FlagKey,
    pub run_at: i64,
    pub action: Value,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleStatus {
    Pending,
    Applied,
    Failed,
    Cancelled,
}

impl ScheduleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Pending => "pending",
            ScheduleStatus::Applied => "applied",
            ScheduleStatus::Failed => "failed",
            ScheduleStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<ScheduleStatus> {
        match text {
            "pending" => Some(ScheduleStatus::Pending),
            "applied" => Some(ScheduleStatus::Applied),
            "failed" => Some(ScheduleStatus::Failed),
            "cancelled" => Some(ScheduleStatus::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleOutcome {
    Applied,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    pub id: i64,
    pub schedule: NewSchedule,
    pub status: ScheduleStatus,
    pub settled_at: Option<i64>,
    pub error: Option<String>,
}

/// What an SDK saw or measured: an exposure (a flag served a variant to someone) or a
/// metric (a named number about someone), as guarded rollouts read them.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    Exposure { flag: FlagKey, variant: String },
    Metric { metric: String, value: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub project: ProjectKey,
    pub environment: EnvironmentKey,
    pub kind: EventKind,
    pub targeting_key: String,
    /// When it happened, by the SDK's clock.
    pub at: i64,
    /// When the server took it.
    pub received_at: i64,
}
