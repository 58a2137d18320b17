//! What flag operations report. Routes turn it into the API's answer; the scheduler and
//! other capabilities match on it directly.

use capstan_store::StoreError;

use crate::core::error::{ApiError, ErrorCode, Failure};

#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error(transparent)]
    Failure(#[from] Failure),

    /// A definition the engine refused; the message names the path of the bad field.
    #[error("{0}")]
    InvalidDefinition(String),

    /// A scheduled change someone else already carried out or cancelled.
    #[error("scheduled change {id} was already carried out or cancelled")]
    AlreadySettled { id: i64 },
}

impl FlagError {
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> FlagError {
        Failure::field(field, message).into()
    }

    pub fn not_found(kind: &'static str, key: impl ToString) -> FlagError {
        Failure::not_found(kind, key).into()
    }
}

impl From<StoreError> for FlagError {
    fn from(error: StoreError) -> FlagError {
        match error {
            StoreError::AlreadySettled { id } => FlagError::AlreadySettled { id },
            other => FlagError::Failure(other.into()),
        }
    }
}

impl From<FlagError> for ApiError {
    fn from(error: FlagError) -> ApiError {
        match error {
            FlagError::Failure(failure) => failure.into(),
            FlagError::InvalidDefinition(message) => ApiError::InvalidDefinition(message),
            error @ FlagError::AlreadySettled { .. } => ApiError::Conflict {
                code: ErrorCode::AlreadySettled,
                message: error.to_string(),
            },
        }
    }
}
