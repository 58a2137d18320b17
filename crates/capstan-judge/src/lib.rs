//! Capstan's rollout judge.
//!
//! Three layers, all pure (time is an argument, nothing here does IO):
//! - [`judge`]: anytime-valid comparisons of treatment with control on one metric.
//! - [`aggregate`]: events folded into the sufficient statistics the judge reads.
//! - [`rollout`]: the step-by-step controller: hold, advance, promote, pause or revert.
//!
//! The server drives it for flag rollouts; fleet deploys reuse the same judge.

pub mod aggregate;
pub mod judge;
pub mod rollout;
pub mod stats;

pub use aggregate::{Arm, Observation, RolloutAggregate};
pub use judge::{ArmMetric, Confidence, Direction, Estimate, Statistic, Tolerance, Verdict};
pub use rollout::{
    Action, Decision, Guardrail, GuardrailReading, PlanError, Progress, Response, RolloutPlan,
    Status, Step, Units, apply, decide,
};
