//! What a typed evaluation returns.

use capstan_flags::Reason;

/// OpenFeature's error codes, as the SDK reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The client has no configuration yet: neither the server nor a cache answered.
    ProviderNotReady,
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
            ErrorCode::ProviderNotReady => "PROVIDER_NOT_READY",
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::General => "GENERAL",
        }
    }

    pub(crate) fn from_engine(code: capstan_flags::ErrorCode) -> ErrorCode {
        match code {
            capstan_flags::ErrorCode::FlagNotFound => ErrorCode::FlagNotFound,
            capstan_flags::ErrorCode::ParseError => ErrorCode::ParseError,
            capstan_flags::ErrorCode::TypeMismatch => ErrorCode::TypeMismatch,
            capstan_flags::ErrorCode::TargetingKeyMissing => ErrorCode::TargetingKeyMissing,
            capstan_flags::ErrorCode::InvalidContext => ErrorCode::InvalidContext,
            capstan_flags::ErrorCode::General => ErrorCode::General,
        }
    }
}

/// A typed evaluation's value with how it was reached. On any error, `value` is the
/// caller's default and `reason` is [`Reason::Error`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationDetails<T> {
    pub value: T,
    pub variant: Option<String>,
    pub reason: Reason,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
}

impl<T> EvaluationDetails<T> {
    pub(crate) fn error(
        default: T,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> EvaluationDetails<T> {
        EvaluationDetails {
            value: default,
            variant: None,
            reason: Reason::Error,
            error_code: Some(code),
            error_message: Some(message.into()),
        }
    }
}
