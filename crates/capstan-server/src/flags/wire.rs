//! The JSON shapes of flags, as the API shows them and the audit trail records them.

use capstan_store::{ConfigRecord, FlagRecord, FlagVersionRecord};
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
