//! The JSON shapes of flags, as the API shows them and the audit trail records them.

use capstan_store::{ConfigRecord, FlagRecord, FlagVersionRecord, ScheduleRecord, SegmentRecord};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::clock::rfc3339;
use crate::flags::operations::{ConfigView, FlagView};

/// A flag's definition in one environment: a flagd flag object. Only documents the
/// fields; the API keeps a definition as it was given (field order included).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagDefinition {
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    /// Variant names and the values they serve.
    pub variants: Map<String, Value>,
    /// The variant served when no rule matches.
    pub default_variant: Option<String>,
    /// JsonLogic rules (with flagd's `fractional`, `sem_ver`, `starts_with`, `ends_with`
    /// and `$ref` to segments) choosing a variant.
    pub targeting: Option<Value>,
    pub metadata: Option<Map<String, Value>>,
    /// Flags that must serve given variants for this one to be evaluated.
    pub prerequisites: Option<Value>,
}

/// A flag's project-wide attributes.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagAttributes {
    pub key: String,
    /// `boolean`, `string`, `number` or `object`.
    #[serde(rename = "type")]
    pub flag_type: String,
    pub description: String,
    /// Whether `client` keys (browsers, mobile apps) may evaluate it.
    pub client_visible: bool,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&FlagRecord> for FlagAttributes {
    fn from(flag: &FlagRecord) -> FlagAttributes {
        FlagAttributes {
            key: flag.key.to_string(),
            flag_type: flag.flag_type.as_str().to_owned(),
            description: flag.description.clone(),
            client_visible: flag.client_visible,
            created_at: rfc3339(flag.created_at),
        }
    }
}

/// A flag's configuration in one environment, with its version (the `ETag` of
/// `If-Match` writes).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagConfig {
    #[serde(flatten)]
    #[schema(value_type = FlagDefinition)]
    pub definition: Map<String, Value>,
    pub version: i64,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&ConfigRecord> for FlagConfig {
    fn from(config: &ConfigRecord) -> FlagConfig {
        FlagConfig {
            definition: config.config.as_object().cloned().unwrap_or_default(),
            version: config.version,
            updated_at: rfc3339(config.updated_at),
        }
    }
}

/// A flag with its configuration in every environment, by environment key.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Flag {
    #[serde(flatten)]
    pub attributes: FlagAttributes,
    pub environments: IndexMap<String, FlagConfig>,
}

impl From<&FlagView> for Flag {
    fn from(view: &FlagView) -> Flag {
        Flag {
            attributes: FlagAttributes::from(&view.flag),
            environments: view
                .environments
                .iter()
                .map(|(environment, config)| (environment.to_string(), FlagConfig::from(config)))
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagList {
    pub flags: Vec<Flag>,
}

/// One flag as one environment sees it: attributes and configuration together.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentFlag {
    #[serde(flatten)]
    pub attributes: FlagAttributes,
    pub environment: String,
    #[serde(flatten)]
    pub config: FlagConfig,
}

impl From<&ConfigView> for EnvironmentFlag {
    fn from(view: &ConfigView) -> EnvironmentFlag {
        EnvironmentFlag {
            attributes: FlagAttributes::from(&view.flag),
            environment: view.environment.to_string(),
            config: FlagConfig::from(&view.config),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentFlagList {
    pub flags: Vec<EnvironmentFlag>,
}

/// One recorded version of a flag's configuration.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlagVersion {
    pub version: i64,
    /// RFC 3339.
    pub at: String,
    pub actor: String,
    pub action: String,
    /// The audit entry that made this version.
    pub audit_id: i64,
    /// The definition at this version; `null` where the version is the flag's deletion.
    #[schema(value_type = Option<FlagDefinition>)]
    pub config: Option<Value>,
}

impl From<&FlagVersionRecord> for FlagVersion {
    fn from(version: &FlagVersionRecord) -> FlagVersion {
        FlagVersion {
            version: version.version,
            at: rfc3339(version.at),
            actor: version.actor.clone(),
            action: version.action.clone(),
            audit_id: version.audit_id,
            config: version.config.clone(),
        }
    }
}

/// Every version of a flag in one environment, newest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagHistory {
    pub flag: String,
    pub environment: String,
    pub versions: Vec<FlagVersion>,
}

/// A flag's attributes as the audit trail records them.
pub fn flag_json(flag: &FlagRecord) -> Value {
    serde_json::to_value(FlagAttributes::from(flag)).unwrap_or_default()
}

/// A flag with every environment's configuration, as the audit trail records it.
pub fn full_flag_json(view: &FlagView) -> Value {
    serde_json::to_value(Flag::from(view)).unwrap_or_default()
}

/// A segment: a named, reusable targeting rule of one environment (`{"$ref": key}`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    pub key: String,
    pub description: String,
    /// A JsonLogic rule.
    pub rule: Value,
    pub version: i64,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&SegmentRecord> for Segment {
    fn from(segment: &SegmentRecord) -> Segment {
        Segment {
            key: segment.key.to_string(),
            description: segment.description.clone(),
            rule: segment.rule.clone(),
            version: segment.version,
            updated_at: rfc3339(segment.updated_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SegmentList {
    pub segments: Vec<Segment>,
}

/// A scheduled change of a flag in one environment.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub id: i64,
    pub flag: String,
    pub environment: String,
    /// When it takes effect, RFC 3339.
    pub at: String,
    /// `enable`, `disable` or `setTargeting`.
    pub action: Option<String>,
    /// The targeting `setTargeting` writes; `null` otherwise (or to remove it).
    pub targeting: Option<Value>,
    /// `pending`, `applied`, `failed` or `cancelled`.
    pub status: String,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// When it was applied, failed or was cancelled, RFC 3339.
    pub settled_at: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl From<&ScheduleRecord> for Schedule {
    fn from(schedule: &ScheduleRecord) -> Schedule {
        let action = &schedule.schedule.action;
        Schedule {
            id: schedule.id,
            flag: schedule.schedule.flag.to_string(),
            environment: schedule.schedule.environment.to_string(),
            at: rfc3339(schedule.schedule.run_at),
            action: action
                .get("kind")
                .and_then(Value::as_str)
                .map(str::to_owned),
            targeting: action.get("targeting").cloned(),
            status: schedule.status.as_str().to_owned(),
            created_by: schedule.schedule.created_by.clone(),
            created_at: rfc3339(schedule.schedule.created_at),
            settled_at: schedule.settled_at.map(rfc3339),
            error: schedule.error.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<Schedule>,
}

/// A flagd flag file: flag definitions by key, and segments as `$evaluators`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FlagdFile {
    /// flagd's JSON schema for flag files.
    #[serde(rename = "$schema")]
    pub schema: String,
    #[schema(value_type = HashMap<String, FlagDefinition>)]
    pub flags: Map<String, Value>,
    /// Segments by key, each a JsonLogic rule flags reach with `{"$ref": key}`.
    #[serde(
        rename = "$evaluators",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<HashMap<String, Object>>)]
    pub evaluators: Option<Map<String, Value>>,
}

/// What an import changed.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// Keys of the flags the file created.
    pub created: Vec<String>,
    /// Keys of the flags whose definition the file changed.
    pub updated: Vec<String>,
    /// Keys of the flags removed (with `replace=true` only).
    pub removed: Vec<String>,
    /// How many segments were created, changed or removed.
    pub segments_changed: usize,
    /// Whether anything changed (an import of what is already there changes nothing).
    pub changed: bool,
    /// The audit entry of the import, when it changed something.
    pub audit_id: Option<i64>,
}

/// An environment's whole configuration, for SDKs that evaluate locally: its flagd file,
/// with the revision it was taken at and each flag's type. Served from a document built
/// once per revision; this type describes it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SdkConfig {
    #[schema(value_type = HashMap<String, FlagDefinition>)]
    pub flags: Map<String, Value>,
    #[serde(
        rename = "$evaluators",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<HashMap<String, Object>>)]
    pub evaluators: Option<Map<String, Value>>,
    pub project: String,
    pub environment: String,
    /// Increments with every change; the stream's event ids are revisions.
    pub revision: i64,
    /// Each flag's type: `boolean`, `string`, `number` or `object`.
    pub types: IndexMap<String, String>,
}

/// How many events a batch stored.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    pub accepted: u64,
}
