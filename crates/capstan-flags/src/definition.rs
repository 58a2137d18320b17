//! The domain types of a flag definition, plain data, and their structural checks.

use serde_json::{Map, Value};

use crate::error::DefinitionError;

/// Whether a flag is served at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagState {
    Enabled,
    Disabled,
}

impl FlagState {
    /// The spelling flagd uses in its documents.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagState::Enabled => "ENABLED",
            FlagState::Disabled => "DISABLED",
        }
    }

    pub fn parse(text: &str) -> Option<FlagState> {
        match text {
            "ENABLED" => Some(FlagState::Enabled),
            "DISABLED" => Some(FlagState::Disabled),
            _ => None,
        }
    }
}

/// A flag that must be enabled and resolve to one of `variants` for the dependent flag to
/// be served normally (a Capstan extension of the flagd format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    pub flag: String,
    pub variants: Vec<String>,
}

/// One flag as written in a flagd document.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagDefinition {
    pub key: String,
    pub state: FlagState,
    /// Variant name to value, in the order the document lists them.
    pub variants: Map<String, Value>,
    pub default_variant: Option<String>,
    /// JsonLogic; `None` or an empty JSON object means the flag has no targeting.
    pub targeting: Option<Value>,
    pub metadata: Map<String, Value>,
    pub prerequisites: Vec<Prerequisite>,
}

impl FlagDefinition {
    /// The path of this flag in a flagd document, the prefix of every error about it.
    pub(crate) fn path(&self) -> String {
        format!("flags.{}", self.key)
    }

    /// Whether the flag has targeting rules to evaluate.
    pub(crate) fn has_targeting(&self) -> bool {
        match &self.targeting {
            None | Some(Value::Null) => false,
            Some(Value::Object(rules)) => !rules.is_empty(),
            Some(_) => true,
        }
    }

    /// Checks what can be checked about the flag alone, without other flags or evaluators.
    pub(crate) fn check_structure(&self) -> Result<(), DefinitionError> {
        let path = self.path();
        if self.key.is_empty() {
            return Err(DefinitionError::new(
                "flags",
                "a flag key must not be empty",
            ));
        }
        if self.variants.is_empty() {
            return Err(DefinitionError::new(
                format!("{path}.variants"),
                "a flag needs at least one variant",
            ));
        }
        if let Some(default) = &self.default_variant
            && !self.variants.contains_key(default)
        {
            return Err(DefinitionError::new(
                format!("{path}.defaultVariant"),
                format!("\"{default}\" is not one of the flag's variants"),
            ));
        }
        check_metadata(&self.metadata, &format!("{path}.metadata"))?;
        for (index, prerequisite) in self.prerequisites.iter().enumerate() {
            let prerequisite_path = format!("{path}.prerequisites[{index}]");
            if prerequisite.flag.is_empty() {
                return Err(DefinitionError::new(
                    format!("{prerequisite_path}.flag"),
                    "a prerequisite must name a flag",
                ));
            }
            if prerequisite.variants.is_empty() {
                return Err(DefinitionError::new(
                    format!("{prerequisite_path}.variants"),
                    "a prerequisite must list at least one variant",
                ));
            }
        }
        Ok(())
    }
}

/// flagd metadata holds only strings, numbers and booleans, so that every SDK can carry it.
pub(crate) fn check_metadata(
    metadata: &Map<String, Value>,
    path: &str,
) -> Result<(), DefinitionError> {
    for (key, value) in metadata {
        if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Err(DefinitionError::new(
                format!("{path}.{key}"),
                "metadata values must be strings, numbers or booleans",
            ));
        }
    }
    Ok(())
}
