//! What rollout operations and the rollout driver report.

use capstan_store::StoreError;

use crate::core::error::{ApiError, Failure};
use crate::flags::error::FlagError;

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(transparent)]
    Failure(#[from] Failure),

    /// A change to the rollout's flag, through the flag write path, failed.
    #[error(transparent)]
    Flags(#[from] FlagError),
}

impl From<StoreError> for RolloutError {
    fn from(error: StoreError) -> RolloutError {
        RolloutError::Failure(error.into())
    }
}

impl RolloutError {
    /// Whether another writer moved the rollout (or its flag) on first.
    pub fn is_version_conflict(&self) -> bool {
        matches!(
            self,
            RolloutError::Failure(Failure::VersionConflict { .. })
                | RolloutError::Flags(FlagError::Failure(Failure::VersionConflict { .. }))
        )
    }
}

impl From<RolloutError> for ApiError {
    fn from(error: RolloutError) -> ApiError {
        match error {
            RolloutError::Failure(failure) => failure.into(),
            RolloutError::Flags(error) => error.into(),
        }
    }
}
