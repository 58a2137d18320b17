//! The JSON shapes of flags, as the API shows them and the audit trail records them.

use capstan_model::EnvironmentKey;
use capstan_store::{ConfigRecord, FlagRecord};
use serde_json::{Map, Value, json};

use crate::core::clock::rfc3339;
use crate::flags::operations::{ConfigView, FlagView};

fn flag_fields(flag: &FlagRecord) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("key".into(), json!(flag.key.as_str()));
    out.insert("type".into(), json!(flag.flag_type.as_str()));
    out.insert("description".into(), json!(flag.description));
    out.insert("clientVisible".into(), json!(flag.client_visible));
    out.insert("createdAt".into(), json!(rfc3339(flag.created_at)));
    out
}

/// A flag's project-wide attributes.
pub(super) fn flag_json(flag: &FlagRecord) -> Value {
    Value::Object(flag_fields(flag))
}

/// A flag's configuration in one environment, with its version.
fn config_fields(config: &ConfigRecord) -> Map<String, Value> {
    let mut out = config.config.as_object().cloned().unwrap_or_default();
    out.insert("version".into(), json!(config.version));
    out.insert("updatedAt".into(), json!(rfc3339(config.updated_at)));
    out
}

/// One flag as seen in one environment: attributes and configuration together.
pub(super) fn config_json(view: &ConfigView) -> Value {
    let mut out = flag_fields(&view.flag);
    out.insert("environment".into(), json!(view.environment.as_str()));
    out.extend(config_fields(&view.config));
    Value::Object(out)
}

/// A flag with its configuration in every environment.
pub(super) fn full_flag_json(view: &FlagView) -> Value {
    let mut out = flag_fields(&view.flag);
    let environments: Map<String, Value> = view
        .environments
        .iter()
        .map(|(environment, config): &(EnvironmentKey, ConfigRecord)| {
            (
                environment.to_string(),
                Value::Object(config_fields(config)),
            )
        })
        .collect();
    out.insert("environments".into(), Value::Object(environments));
    Value::Object(out)
}
