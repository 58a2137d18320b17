//! Deterministic simulation of guarded rollouts: synthetic traffic on a simulated clock
//! drives the real rollout judge (`capstan-judge`), next to a fixed-horizon baseline.

pub mod baseline;
pub mod report;
pub mod world;
