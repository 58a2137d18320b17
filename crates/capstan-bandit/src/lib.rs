//! Capstan's contextual-bandit learner for personalised content placement.
//!
//! Pure, like the flag engine and the rollout judge: features and rewards in, decisions
//! out. Randomness comes in as a seed per decision and time as an argument, so a decision
//! is reproducible and simulations are exact. The server keeps one [`Learner`] per
//! surface, persists it with [`Learner::save`], logs every decision with its probability
//! and replays logs through [`offline::evaluate`].
//!
//! Vowpal Wabbit's `--cb_explore_adf --squarecb -q ::` is the reference:
//! - [`features`]: hashed features; text is an indicator, a number scales its weight.
//!   Numbers can be sent raw (an age of 63, a price of 199): the updates are normalised
//!   per weight, so a feature's scale does not matter (a count spanning orders of
//!   magnitude may still be better as its logarithm, which makes its effect less linear).
//! - the reward model (private `model`): linear over the context, the item, the item's id
//!   and every context × item cross, learned online with squared loss by normalised
//!   per-coordinate updates (Vowpal Wabbit's normalisation: each weight's rate divided by
//!   the largest `|x|` it has seen; and by the root of its own number of updates).
//! - memory: `2^hash_bits` weights of 12 bytes each (the weight, its update count and its
//!   scale), 12 MiB by default, plus a small record per item id.
//! - [`learner`]: SquareCB exploration, content testing under a budget, a holdout served by
//!   the global ranking to measure lift, and the marginal probabilities to log.
//! - saving (private `persistence`): a versioned, little-endian, checksummed binary, sparse
//!   while few weights are touched.
//! - [`offline`]: IPS, self-normalised IPS and doubly robust estimates of other policies.
//!
//! Rewards can be in any unit (a click, a share of a video watched, a revenue): learning
//! moves by shares of the error and SquareCB weighs gaps in units of the rewards' standard
//! deviation, so multiplying every reward by a constant changes no decision.
//!
//! Learning is immediate: [`Learner::learn`] takes microseconds and the next
//! [`Learner::rank`] sees it. `rank` takes `&self` and `learn` `&mut self`, so a server
//! shares a learner behind a lock or feeds rewards to a single writer.
//!
//! ```
//! use capstan_bandit::{Candidate, Feature, Features, Learner, LearnerSettings};
//!
//! let mut learner = Learner::new(LearnerSettings::default()).expect("default settings");
//! let context = Features(vec![Feature::text("user", "country", "FR")]);
//! let candidates: Vec<Candidate> = ["summer-sale", "new-arrivals"]
//!     .iter()
//!     .map(|id| Candidate {
//!         id: id.to_string(),
//!         features: Features(vec![Feature::text("item", "kind", "banner")]),
//!     })
//!     .collect();
//! let ranking = learner.rank(&context, &candidates, 42).expect("some candidates");
//! let shown = ranking.order[0];
//! learner.record_impression(&candidates[shown].id, 1_700_000_000_000);
//! // Later, the user clicked: reward 1 (0 when no reward came in time).
//! learner
//!     .learn(&context, &candidates, shown, ranking.probabilities[shown], 1.0, ranking.policy)
//!     .expect("a valid decision");
//! let restored = Learner::load(&learner.save()).expect("a saved learner");
//! assert_eq!(restored.rank(&context, &candidates, 7), learner.rank(&context, &candidates, 7));
//! ```

pub mod features;
pub mod learner;
mod model;
pub mod offline;
mod persistence;
mod random;
pub mod settings;
mod statistics;

pub use features::{Candidate, Feature, FeatureValue, Features};
pub use learner::{
    ArmSummary, Difference, ItemStats, LearnError, Learner, Lift, Policy, RankError, Ranking,
};
pub use persistence::LoadError;
pub use settings::{LearnerSettings, SettingsError};

#[cfg(test)]
mod test_world;
