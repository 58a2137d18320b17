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

impl From<PlacementError> for ApiError {
    fn from(error: PlacementError) -> ApiError {
        let code = match &error {
            PlacementError::Failure(_) => None,
            PlacementError::ModelExists { .. } => Some(ErrorCode::ModelExists),
            PlacementError::DuplicateReward { .. } => Some(ErrorCode::DuplicateReward),
            PlacementError::RewardTooLate { .. } => Some(ErrorCode::RewardTooLate),
        };
        match (error, code) {
            (PlacementError::Failure(failure), _) => failure.into(),
            (error, Some(code)) => ApiError::Conflict {
                code,
                message: error.to_string(),
            },
            (error, None) => ApiError::internal(anyhow::anyhow!("{error}")),
        }
    }
}
