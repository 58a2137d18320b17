//! What flag operations report. Routes turn it into the API's answer; the scheduler and
//! other capabilities match on it directly.

use capstan_store::StoreError;

use crate::core::error::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// A field of the request is wrong; `field` names it.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },

    /// A definition the engine refused; the message names the path of the bad field.
    #[error("{0}")]
    InvalidDefinition(String),

    #[error("{kind} {key:?} not found")]
    NotFound { kind: &'static str, key: String },

    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: &'static str, key: String },

    #[error("{kind} {key:?} was changed by someone else; its current version is {current_version}")]
    VersionConflict {
        kind: &'static str,
        key: String,
        current_version: i64,
    },

    /// A scheduled change someone else already carried out or cancelled.
    #[error("scheduled change {id} was already carried out or cancelled")]
    AlreadySettled { id: i64 },

    #[error("the store is unavailable")]
    Unavailable,

    #[error("something went wrong")]
    Internal(#[source] anyhow::Error),
}

impl FlagError {
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> FlagError {
        FlagError::InvalidField {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn not_found(kind: &'static str, key: impl ToString) -> FlagError {
        FlagError::NotFound {
            kind,
            key: key.to_string(),
        }
    }
}

impl From<StoreError> for FlagError {
    fn from(error: StoreError) -> FlagError {
        match error {
            StoreError::NotFound { kind, key } => FlagError::NotFound { kind, key },
            StoreError::AlreadyExists { kind, key } => FlagError::AlreadyExists { kind, key },
            StoreError::VersionConflict {
                kind,
                key,
                current_version,
            } => FlagError::VersionConflict {
                kind,
                key,
                current_version,
            },
            StoreError::AlreadySettled { id } => FlagError::AlreadySettled { id },
            error if error.is_unavailable() => FlagError::Unavailable,
            other => FlagError::Internal(other.into()),
        }
    }
}

impl From<FlagError> for ApiError {
    fn from(error: FlagError) -> ApiError {
        match error {
            FlagError::InvalidField { field, message } => ApiError::InvalidField { field, message },
            FlagError::InvalidDefinition(message) => ApiError::InvalidDefinition(message),
            FlagError::NotFound { kind, key } => ApiError::NotFound { kind, key },
            FlagError::AlreadyExists { kind, key } => ApiError::AlreadyExists { kind, key },
            FlagError::VersionConflict {
                kind,
                key,
                current_version,
            } => ApiError::VersionConflict {
                kind,
                key,
                current_version,
            },
            error @ FlagError::AlreadySettled { .. } => ApiError::Conflict {
                code: ErrorCode::AlreadySettled,
                message: error.to_string(),
            },
            FlagError::Unavailable => ApiError::Unavailable,
            FlagError::Internal(error) => ApiError::Internal(error),
        }
    }
}
