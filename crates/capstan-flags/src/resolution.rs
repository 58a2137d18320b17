//! What an evaluation answers: the OpenFeature resolution details.

use serde_json::{Map, Value};

use crate::value::describe;

/// Why a flag resolved the way it did, as OpenFeature and OFREP name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The flag has no targeting; its default variant is served.
    Static,
    /// Targeting chose the variant.
    TargetingMatch,
    /// Targeting chose the variant through a `fractional` split.
    Split,
    /// The flag is disabled; the caller's own default applies.
    Disabled,
    /// Targeting chose nothing, so the default variant (if any) is served.
    Default,
    /// A prerequisite flag was not on the required variant; the default variant is served.
    PrerequisiteFailed,
    Error,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::Default => "DEFAULT",
            Reason::PrerequisiteFailed => "PREREQUISITE_FAILED",
            Reason::Error => "ERROR",
        }
    }
}

/// OpenFeature's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    FlagNotFound,
    ParseError,
    TypeMismatch,
    TargetingKeyMissing,
    InvalidContext,
    General,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::General => "GENERAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why an evaluation produced no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EvaluationError {
    pub code: ErrorCode,
    pub message: String,
}

impl EvaluationError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> EvaluationError {
        EvaluationError {
            code,
            message: message.into(),
        }
    }
}

/// The type a caller asks a flag's value to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Boolean,
    String,
    Integer,
    Float,
    /// A JSON object or array.
    Object,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Boolean => "boolean",
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Float => "float",
            ValueType::Object => "object",
        }
    }

    /// Whether `value` is of this type. Integers are also floats, and a float without a
    /// fraction (`10.0`) is also an integer, since JSON does not tell them apart.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            ValueType::Boolean => value.is_boolean(),
            ValueType::String => value.is_string(),
            ValueType::Integer => {
                value.is_i64()
                    || value.is_u64()
                    || value.as_f64().is_some_and(|number| number.fract() == 0.0)
            }
            ValueType::Float => value.is_number(),
            ValueType::Object => value.is_object() || value.is_array(),
        }
    }
}

/// The result of evaluating one flag, borrowing from the compiled environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution<'a> {
    /// `None` when the flag is disabled, has no default variant and nothing matched, or
    /// failed: the caller's own default applies.
    pub value: Option<&'a Value>,
    pub variant: Option<&'a str>,
    pub reason: Reason,
    pub error: Option<EvaluationError>,
    /// The flag-set metadata with the flag's own metadata over it.
    pub metadata: &'a Map<String, Value>,
}

impl Resolution<'_> {
    /// Turns a value of another type than `expected` into a TYPE_MISMATCH error, for
    /// callers that asked for a typed value.
    pub fn expect_type(self, expected: ValueType) -> Self {
        match self.value {
            Some(value) if !expected.accepts(value) => Resolution {
                value: None,
                variant: None,
                reason: Reason::Error,
                error: Some(EvaluationError::new(
                    ErrorCode::TypeMismatch,
                    format!(
                        "the flag's value is {}, not {}",
                        describe(value),
                        expected.as_str()
                    ),
                )),
                metadata: self.metadata,
            },
            _ => self,
        }
    }
}
