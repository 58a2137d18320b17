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
//!   Numbers are used as given, so scale them to about 1 (a share, a logarithm of a count).
//! - the reward model (private `model`): linear over the context, the item, the item's id
//!   and every context × item cross, learned online by AdaGrad with squared loss.
//! - [`learner`]: SquareCB exploration, content testing under a budget, a holdout served by
//!   the global ranking to measure lift, and the marginal probabilities to log.
//! - saving (private `persistence`): a versioned, little-endian, checksummed binary.
//! - [`offline`]: IPS, self-normalised IPS and doubly robust estimates of other policies.
//!
//! Rewards are best kept within [0, 1] (a click, a share of a video watched): SquareCB's
//! gamma weighs gaps between predicted rewards, so its defaults assume that scale.
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
