//! What placement operations and the learning loop report.

use capstan_store::StoreError;

use crate::core::error::{ApiError, ErrorCode, Failure};

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error(transparent)]
    Failure(#[from] Failure),

    /// A surface's `hashBits` cannot change once it has a trained model.
    #[error(
        "surface {surface} has a trained model, whose weights are addressed by hashBits; it cannot change"
    )]
    ModelExists { surface: String },

    /// A second reward for a decision whose first reward is the one that counts.
    #[error("event {event_id:?} already has its reward (rewards combine as first)")]
    DuplicateReward { event_id: String },

    /// A reward after the decision's reward window closed (or it was learned from).
    #[error("event {event_id:?} is past its reward window")]
    RewardTooLate { event_id: String },
}

impl From<StoreError> for PlacementError {
    fn from(error: StoreError) -> PlacementError {
        PlacementError::Failure(error.into())
    }
}

impl PlacementError {
    /// The stable code of the API's answer.
    pub fn code(&self) -> ErrorCode {
        match self {
            PlacementError::Failure(failure) => failure.code(),
            PlacementError::ModelExists { .. } => ErrorCode::ModelExists,
            PlacementError::DuplicateReward { .. } => ErrorCode::DuplicateReward,
            PlacementError::RewardTooLate { .. } => ErrorCode::RewardTooLate,
        }
    }
}

impl From<PlacementError> for ApiError {
    fn from(error: PlacementError) -> ApiError {
        match error {
            PlacementError::Failure(failure) => failure.into(),
            conflict => ApiError::Conflict {
                code: conflict.code(),
                message: conflict.to_string(),
            },
        }
    }
}
