//! Capstan's domain types, shared by the store, the server and the CLI.
//!
//! Every name that reaches the store is parsed into one of the key types here first, so
//! code below the HTTP layer never sees an unchecked string. The types carry no IO.

mod keys;
mod role;

pub use keys::{
    EnvironmentKey, FlagKey, InvalidKey, ProjectKey, SegmentKey, SurfaceKey, TokenName,
};
pub use role::{Role, UnknownRole};

use serde_json::Value;

/// The value type a flag serves; every variant of the flag must hold a value of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagType {
    Boolean,
    String,
    Number,
    Object,
}

impl FlagType {
    pub fn parse(text: &str) -> Option<FlagType> {
        match text {
            "boolean" => Some(FlagType::Boolean),
            "string" => Some(FlagType::String),
            "number" => Some(FlagType::Number),
            "object" => Some(FlagType::Object),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FlagType::Boolean => "boolean",
            FlagType::String => "string",
            FlagType::Number => "number",
            FlagType::Object => "object",
        }
    }

    /// Whether a variant value fits this type. Objects accept JSON objects and arrays, as
    /// OpenFeature's object flags do.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            FlagType::Boolean => value.is_boolean(),
            FlagType::String => value.is_string(),
            FlagType::Number => value.is_number(),
            FlagType::Object => value.is_object() || value.is_array(),
        }
    }

    /// The type a set of variants implies, used when a flagd file (which has no types)
    /// creates a flag. Mixed variants have no single type.
    pub fn infer<'a>(mut values: impl Iterator<Item = &'a Value>) -> Option<FlagType> {
        let first = values.next()?;
        let ty = [
            FlagType::Boolean,
            FlagType::String,
            FlagType::Number,
            FlagType::Object,
        ]
        .into_iter()
        .find(|ty| ty.accepts(first))?;
        values.all(|value| ty.accepts(value)).then_some(ty)
    }
}
