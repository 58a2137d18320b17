//! One surface's learner: ranks candidates, learns from rewards, tests new content and
//! holds out traffic to measure lift.
//!
//! A decision is served by one of three arms, drawn with the decision's seed:
//! - **Holdout** (share `holdout`): the global ranking, items by their mean reward shrunk
//!   towards the surface's mean. Not personalised, so the gap between the personalised
//!   arm's rewards and this arm's is the lift of personalisation.
//! - **Testing** (share `testing_budget`, only when some candidate is under test): one of
//!   the candidates under test, uniformly. Uniform rather than "least shown first" because
//!   many decisions are made before their impressions come back: least-shown would send
//!   all of them to the same item. Testing decisions are at most the budget of all
//!   decisions, and while `k` candidates are under test each gets `budget / k` of the
//!   decisions it is a candidate in, plus whatever it wins on merit.
//! - **Personalized** (the rest): SquareCB over the model's predicted rewards, each plus
//!   one standard error of the item's own mean (see [`uncertainty_bonus`]), so a new item
//!   is tried on merit as soon as it comes rather than after its id has been learned from
//!   exploration alone.
//!
//! The probabilities a [`Ranking`] reports are the marginal probabilities of each
//! candidate being shown under that mixture, not the arm's own, so a log of decisions
//! gives unbiased off-policy estimates (see [`crate::offline`]).

use std::collections::HashMap;

use crate::features::{Candidate, Features, HashedFeature, hash_features, hash_item_id};
use crate::model::{LearnBuffers, Model, PreparedContext};
use crate::random::SplitMix64;
use crate::settings::{LearnerSettings, SettingsError};
use crate::statistics::{RunningMean, student_t_95};

/// Which arm of the decision served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    Personalized,
    Holdout,
    Testing,
}

/// A decision: the candidates in the order to show them, and the probabilities to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// Indices into the candidates, best first; `order[0]` is the item to show and to
    /// reward.
    pub order: Vec<usize>,
    /// Per candidate (indexed as the candidates), the probability that it was chosen as
    /// `order[0]` under the whole decision (holdout, testing and personalised arms
    /// together). Sums to 1.
    pub probabilities: Vec<f64>,
    pub policy: Policy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RankError {
    #[error("there are no candidates to rank")]
    NoCandidates,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LearnError {
    #[error("shown candidate {shown} is not among the {candidates} candidates")]
    ShownOutOfRange { shown: usize, candidates: usize },
    #[error("probability {0} is not above 0 and at most 1")]
    InvalidProbability(f64),
    #[error("reward {0} is not a finite number")]
    InvalidReward(f64),
}

/// The rewards of one arm's decisions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmSummary {
    pub samples: u64,
    /// 0 without samples.
    pub mean: f64,
    /// The sample variance; 0 below two samples.
    pub variance: f64,
}

/// Personalised minus holdout mean reward, with Welch's 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Welch-Satterthwaite degrees of freedom of the interval's t quantile.
    pub degrees_of_freedom: f64,
}

/// The lift of personalisation on one surface: the personalised arm's rewards against the
/// holdout's. Testing decisions are shown apart: they are the bounded cost of content
/// testing, in neither arm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lift {
    pub personalized: ArmSummary,
    pub holdout: ArmSummary,
    pub testing: ArmSummary,
    /// `None` until both arms have two samples.
    pub difference: Option<Difference>,
}

/// What the learner knows of one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemStats {
    pub id: String,
    pub impressions: u64,
    /// Decisions learned with this item shown, and the sum of their rewards.
    pub rewarded: u64,
    pub reward_sum: f64,
    /// Not graduated: fewer impressions than `graduation_impressions`, and not yet
    /// clearly better or worse than the surface's average (see `known_on_merit`).
    pub under_test: bool,
    pub first_impression_ms: Option<i64>,
    /// When the impression that made it graduate was recorded.
    pub graduated_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ItemRecord {
    pub(crate) impressions: u64,
    pub(crate) rewarded: u64,
    pub(crate) reward_sum: f64,
    pub(crate) first_impression_ms: Option<i64>,
    pub(crate) graduated_at_ms: Option<i64>,
}

impl ItemRecord {
    /// Under test until it graduates: at `graduation` impressions, or earlier when known
    /// on merit (see [`known_on_merit`]).
    fn under_test(&self, graduation: u64) -> bool {
        self.impressions < graduation && self.graduated_at_ms.is_none()
    }
}

/// How many observations of the surface's mean the global ranking's prior is worth: an
/// item with one lucky click does not jump to the top of the holdout.
pub(crate) const GLOBAL_PRIOR_WEIGHT: f64 = 20.0;

/// An item's mean reward shrunk towards the surface's mean.
pub(crate) fn shrunk_mean(reward_sum: f64, rewarded: u64, prior_mean: f64) -> f64 {
    (reward_sum + GLOBAL_PRIOR_WEIGHT * prior_mean) / (rewarded as f64 + GLOBAL_PRIOR_WEIGHT)
}

/// One surface's contextual-bandit learner.
///
/// Memory: the weight tables are fixed at `2^hash_bits` entries of 12 bytes (see
/// [`LearnerSettings::hash_bits`]) whatever the number of users or features; item statistics grow by one small record per distinct item id ever
/// shown or rewarded (not per user).
#[derive(Clone)]
pub struct Learner {
    pub(crate) settings: LearnerSettings,
    pub(crate) model: Model,
    pub(crate) decisions_learned: u64,
    pub(crate) items: HashMap<String, ItemRecord>,
    /// Every learned reward, whatever the arm: the global ranking's prior.
    pub(crate) surface_rewards: RunningMean,
    pub(crate) personalized_rewards: RunningMean,
    pub(crate) holdout_rewards: RunningMean,
    pub(crate) testing_rewards: RunningMean,
    /// Reused buffers for `learn`; not part of the model.
    scratch: LearnScratch,
}

#[derive(Clone, Default)]
struct LearnScratch {
    context: Vec<HashedFeature>,
    item: Vec<HashedFeature>,
    prepared: PreparedContext,
    example: LearnBuffers,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The weight tables are millions of numbers: summarised, not printed.
        formatter
            .debug_struct("Learner")
            .field("settings", &self.settings)
            .field("decisions_learned", &self.decisions_learned)
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

/// Everything a decision's probabilities depend on, before any random draw.
pub(crate) struct DecisionPlan {
    /// The model's predicted reward per candidate.
    pub(crate) scores: Vec<f32>,
    /// SquareCB's probabilities per candidate.
    personalized: Vec<f64>,
    /// The global ranking's order of the candidates.
    global_order: Vec<usize>,
    /// Indices of the candidates under test.
    under_test: Vec<usize>,
    holdout_share: f64,
    testing_share: f64,
    /// The marginal probabilities of the whole decision.
    pub(crate) probabilities: Vec<f64>,
}

impl Learner {
    pub fn new(settings: LearnerSettings) -> Result<Learner, SettingsError> {
        settings.validate()?;
        let model = Model::new(settings.hash_bits);
        Ok(Learner::from_parts(settings, model))
    }

    /// A learner with `model` and nothing learned yet; `load` fills in the rest.
    pub(crate) fn from_parts(settings: LearnerSettings, model: Model) -> Learner {
        Learner {
            settings,
            model,
            decisions_learned: 0,
            items: HashMap::new(),
            surface_rewards: RunningMean::default(),
            personalized_rewards: RunningMean::default(),
            holdout_rewards: RunningMean::default(),
            testing_rewards: RunningMean::default(),
            scratch: LearnScratch::default(),
        }
    }

    pub fn settings(&self) -> &LearnerSettings {
        &self.settings
    }

    /// Changes the settings and keeps what was learned. `hash_bits` cannot change: the
    /// weights are addressed by it.
    pub fn update_settings(&mut self, settings: LearnerSettings) -> Result<(), SettingsError> {
        settings.validate()?;
        if settings.hash_bits != self.settings.hash_bits {
            return Err(SettingsError {
                field: "hashBits",
                message: "cannot change once a learner exists",
            });
        }
        self.settings = settings;
        Ok(())
    }

    /// Decisions learned so far: SquareCB's `t`.
    pub fn decisions_learned(&self) -> u64 {
        self.decisions_learned
    }

    /// The standard deviation of the surface's rewards: the unit of exploration's gaps,
    /// of the optimism bonus and of early graduation.
    fn spread(&self) -> f64 {
        self.surface_rewards.variance().max(0.0).sqrt()
    }

    /// Ranks candidates for a context. `seed` drives every random choice (the arm, the
    /// item under test, the exploration sample): the same learner, inputs and seed give
    /// the same ranking.
    ///
    /// Candidates are told apart by position; two with the same id share item statistics.
    pub fn rank(
        &self,
        context: &Features,
        candidates: &[Candidate],
        seed: u64,
    ) -> Result<Ranking, RankError> {
        if candidates.is_empty() {
            return Err(RankError::NoCandidates);
        }
        let plan = self.plan(&self.settings, context, candidates);
        let mut random = SplitMix64::new(seed);
        let arm_draw = random.next_unit();
        let choice_draw = random.next_unit();

        if arm_draw < plan.holdout_share {
            return Ok(Ranking {
                order: plan.global_order,
                probabilities: plan.probabilities,
                policy: Policy::Holdout,
            });
        }
        let (chosen, policy) = if arm_draw < plan.holdout_share + plan.testing_share {
            let pick = ((choice_draw * plan.under_test.len() as f64) as usize)
                .min(plan.under_test.len() - 1);
            (plan.under_test[pick], Policy::Testing)
        } else {
            (
                sample(&plan.personalized, choice_draw),
                Policy::Personalized,
            )
        };
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_unstable_by(|left, right| {
            plan.scores[*right]
                .total_cmp(&plan.scores[*left])
                .then(left.cmp(right))
        });
        if let Some(position) = order.iter().position(|index| *index == chosen) {
            order[..=position].rotate_right(1);
        }
        Ok(Ranking {
            order,
            probabilities: plan.probabilities,
            policy,
        })
    }

    /// Scores and probabilities of a decision under `settings` (the learner's own, or
    /// others for offline evaluation), with the learner's weights and item statistics.
    pub(crate) fn plan(
        &self,
        settings: &LearnerSettings,
        context: &Features,
        candidates: &[Candidate],
    ) -> DecisionPlan {
        let count = candidates.len();
        let mut hashed_context = Vec::with_capacity(context.0.len());
        hash_features(context, &mut hashed_context);
        let mut prepared = PreparedContext::default();
        self.model.prepare_context(&hashed_context, &mut prepared);

        let mut scores = Vec::with_capacity(count);
        let mut item = Vec::with_capacity(16);
        let mut global_means = Vec::with_capacity(count);
        let mut under_test = Vec::new();
        let prior_mean = self.surface_rewards.mean;
        let spread = self.spread();
        for (index, candidate) in candidates.iter().enumerate() {
            hash_features(&candidate.features, &mut item);
            item.push(hash_item_id(&candidate.id));
            let record = self.items.get(&candidate.id);
            let rewarded = record.map_or(0, |record| record.rewarded);
            let score =
                f64::from(self.model.score(&prepared, &item)) + uncertainty_bonus(spread, rewarded);
            scores.push(score.clamp(f64::from(f32::MIN), f64::from(f32::MAX)) as f32);
            let (under, mean) = match record {
                Some(record) => (
                    record.under_test(settings.graduation_impressions),
                    shrunk_mean(record.reward_sum, record.rewarded, prior_mean),
                ),
                None => (settings.graduation_impressions > 0, prior_mean),
            };
            global_means.push(mean);
            if under {
                under_test.push(index);
            }
        }

        let personalized = squarecb(&scores, settings, self.decisions_learned, spread);
        let mut global_order: Vec<usize> = (0..count).collect();
        global_order.sort_by(|left, right| {
            global_means[*right]
                .total_cmp(&global_means[*left])
                .then(left.cmp(right))
        });

        let holdout_share = settings.holdout;
        let testing_share = if under_test.is_empty() {
            0.0
        } else {
            settings.testing_budget
        };
        let personalized_share = 1.0 - holdout_share - testing_share;
        let mut probabilities: Vec<f64> = personalized
            .iter()
            .map(|p| p * personalized_share)
            .collect();
        probabilities[global_order[0]] += holdout_share;
        for index in &under_test {
            probabilities[*index] += testing_share / under_test.len() as f64;
        }
        DecisionPlan {
            scores,
            personalized,
            global_order,
            under_test,
            holdout_share,
            testing_share,
            probabilities,
        }
    }

    /// Records that an item was shown (once per decision, for the shown item): content
    /// testing counts impressions, and an item under test graduates here (see
    /// [`known_on_merit`]).
    pub fn record_impression(&mut self, item_id: &str, now_ms: i64) {
        let graduation = self.settings.graduation_impressions;
        let (surface_mean, spread) = (self.surface_rewards.mean, self.spread());
        let record = match self.items.get_mut(item_id) {
            Some(record) => record,
            None => self.items.entry(item_id.to_owned()).or_default(),
        };
        record.impressions += 1;
        record.first_impression_ms.get_or_insert(now_ms);
        if record.graduated_at_ms.is_none()
            && (record.impressions == graduation
                || (record.impressions < graduation
                    && known_on_merit(record, graduation, surface_mean, spread)))
        {
            record.graduated_at_ms = Some(now_ms);
        }
    }

    /// Learns from the reward of one decision: `candidates[shown]` was shown with
    /// `probability` by `policy`. Call it for every decision, with a default reward (say
    /// 0) for those that got none in time: the global ranking's means and the lift count
    /// only what is learned.
    ///
    /// The probability is checked but does not weight the update: SquareCB's oracle is a
    /// plain online regression on the shown item (Vowpal Wabbit's `mtr`-style), and
    /// weighting by `1/probability` would only add variance to a squared-loss fit.
    pub fn learn(
        &mut self,
        context: &Features,
        candidates: &[Candidate],
        shown: usize,
        probability: f64,
        reward: f64,
        policy: Policy,
    ) -> Result<(), LearnError> {
        let Some(candidate) = candidates.get(shown) else {
            return Err(LearnError::ShownOutOfRange {
                shown,
                candidates: candidates.len(),
            });
        };
        if !(probability > 0.0 && probability <= 1.0) {
            return Err(LearnError::InvalidProbability(probability));
        }
        if !reward.is_finite() {
            return Err(LearnError::InvalidReward(reward));
        }
        self.surface_rewards.add(reward);
        let learning_rate = self.settings.learning_rate;
        let scratch = &mut self.scratch;
        hash_features(context, &mut scratch.context);
        self.model
            .prepare_context(&scratch.context, &mut scratch.prepared);
        hash_features(&candidate.features, &mut scratch.item);
        scratch.item.push(hash_item_id(&candidate.id));
        self.model.learn(
            &scratch.prepared,
            &scratch.item,
            reward as f32,
            learning_rate.min(f64::from(f32::MAX)) as f32,
            &mut scratch.example,
        );
        self.decisions_learned += 1;

        let record = match self.items.get_mut(&candidate.id) {
            Some(record) => record,
            None => self.items.entry(candidate.id.clone()).or_default(),
        };
        record.rewarded += 1;
        record.reward_sum += reward;
        match policy {
            Policy::Personalized => self.personalized_rewards.add(reward),
            Policy::Holdout => self.holdout_rewards.add(reward),
            Policy::Testing => self.testing_rewards.add(reward),
        }
        Ok(())
    }

    /// The model's predicted reward for showing `candidate` in `context`.
    pub fn predict(&self, context: &Features, candidate: &Candidate) -> f64 {
        let mut hashed_context = Vec::with_capacity(context.0.len());
        hash_features(context, &mut hashed_context);
        let mut prepared = PreparedContext::default();
        self.model.prepare_context(&hashed_context, &mut prepared);
        let mut item = Vec::with_capacity(candidate.features.0.len() + 1);
        hash_features(&candidate.features, &mut item);
        item.push(hash_item_id(&candidate.id));
        f64::from(self.model.score(&prepared, &item))
    }

    /// Personalised against holdout mean reward, with Welch's 95% interval.
    pub fn lift(&self) -> Lift {
        let summary = |arm: &RunningMean| ArmSummary {
            samples: arm.count,
            mean: arm.mean,
            variance: arm.variance(),
        };
        let (personalized, holdout) = (&self.personalized_rewards, &self.holdout_rewards);
        let difference = (personalized.count >= 2 && holdout.count >= 2).then(|| {
            let personalized_part = personalized.variance() / personalized.count as f64;
            let holdout_part = holdout.variance() / holdout.count as f64;
            let standard_error = (personalized_part + holdout_part).sqrt();
            let degrees_of_freedom = if standard_error > 0.0 {
                (personalized_part + holdout_part).powi(2)
                    / (personalized_part.powi(2) / (personalized.count - 1) as f64
                        + holdout_part.powi(2) / (holdout.count - 1) as f64)
            } else {
                (personalized.count + holdout.count - 2) as f64
            };
            let estimate = personalized.mean - holdout.mean;
            let half_width = student_t_95(degrees_of_freedom) * standard_error;
            Difference {
                estimate,
                low: estimate - half_width,
                high: estimate + half_width,
                degrees_of_freedom,
            }
        });
        Lift {
            personalized: summary(personalized),
            holdout: summary(holdout),
            testing: summary(&self.testing_rewards),
            difference,
        }
    }

    /// Every item the learner has seen, by id.
    pub fn item_stats(&self) -> Vec<ItemStats> {
        let mut stats: Vec<ItemStats> = self
            .items
            .iter()
            .map(|(id, record)| ItemStats {
                id: id.clone(),
                impressions: record.impressions,
                rewarded: record.rewarded,
                reward_sum: record.reward_sum,
                under_test: record.under_test(self.settings.graduation_impressions),
                first_impression_ms: record.first_impression_ms,
                graduated_at_ms: record.graduated_at_ms,
            })
            .collect();
        stats.sort_by(|left, right| left.id.cmp(&right.id));
        stats
    }
}

/// Whether an item under test is already known well enough to compete on merit, before
/// its `graduation` impressions: from a tenth of them (at least 30) rewarded decisions on,
/// its mean reward is more than three standard errors (`σ/√n`, `σ` the standard deviation
/// of the surface's rewards) from the surface's mean. A clear loser would only spend the
/// testing budget on what is already known (a dud that nobody clicks graduates after
/// about a hundred impressions rather than a thousand); a clear winner is shown on merit.
/// An item near the average keeps testing until `graduation`. (On the synthetic world,
/// whose late arrivals are mostly near the average, the clicks this saved were within the
/// noise: the rule is for catalogues with many duds.)
fn known_on_merit(record: &ItemRecord, graduation: u64, surface_mean: f64, spread: f64) -> bool {
    let rewarded = record.rewarded;
    if rewarded < (graduation / 10).max(30) || spread <= 0.0 {
        return false;
    }
    let mean = record.reward_sum / rewarded as f64;
    (mean - surface_mean).abs() > 3.0 * spread / (rewarded as f64).sqrt()
}

/// The optimism a decision adds to an item's predicted reward: one standard error of the
/// item's own mean reward, `σ / √(n + 1)` for `n` rewards learned with it shown and `σ`
/// the standard deviation of the surface's rewards.
///
/// The model learns an item's own bias (its id and its id × context crosses) only from
/// the decisions that show it, so a new item's prediction is its features' average, below
/// the incumbents whose ids have learned their lead; SquareCB's exploration then gave it
/// a percent or two of the decisions, and a good new item took thousands of decisions to
/// win its share. With the bonus a new item is ranked as if one standard error better
/// than predicted: it is shown, learned, and loses the bonus as its rewards come in (a
/// dud after a few dozen), while an item with thousands of rewards keeps a bonus of a
/// couple of percent of `σ`, too small to change a ranking. In the units of the rewards,
/// so multiplying every reward by a constant still changes no ranking; 0 until the
/// surface's rewards vary. Only decisions use it: [`Learner::predict`] is the model's
/// own prediction.
pub(crate) fn uncertainty_bonus(spread: f64, rewarded: u64) -> f64 {
    spread / (rewarded as f64 + 1.0).sqrt()
}

/// SquareCB (Foster and Rakhlin, 2020) over predicted rewards: each non-greedy item gets
/// `1 / (A + gamma·(best - score) / σ)`, the greedy item the rest; then the non-greedy
/// mass is scaled down to at most `exploration`. `gamma = scale · t^exponent` grows with
/// the decisions learned, so exploration fades as the model firms up.
///
/// The gaps are in units of `spread` (`σ`, the standard deviation of the surface's
/// rewards; 1 until they vary), so that exploration, like learning, does not depend on
/// the rewards' units. In raw units a click surface's gaps of a few hundredths kept
/// `gamma·gap` small for ever and SquareCB explored at the cap all run long; a revenue
/// surface's gaps of tens would have made it greedy at once. On the synthetic world the
/// σ units gave about 7% more clicks after warm-up (docs/benchmarks.md).
fn squarecb(
    scores: &[f32],
    settings: &LearnerSettings,
    decisions_learned: u64,
    spread: f64,
) -> Vec<f64> {
    let unit = if spread > 0.0 && spread.is_finite() {
        spread
    } else {
        1.0
    };
    let count = scores.len();
    let mut greedy = 0;
    for (index, score) in scores.iter().enumerate() {
        if score.total_cmp(&scores[greedy]).is_gt() {
            greedy = index;
        }
    }
    let best = f64::from(scores[greedy]);
    let gamma = settings.squarecb_gamma_scale
        * (decisions_learned as f64).powf(settings.squarecb_gamma_exponent);
    let mut probabilities = Vec::with_capacity(count);
    let mut explored = 0.0;
    for (index, score) in scores.iter().enumerate() {
        let probability = if index == greedy {
            0.0
        } else {
            let gap = (best - f64::from(*score)).max(0.0) / unit;
            1.0 / (count as f64 + gamma * gap)
        };
        explored += probability;
        probabilities.push(probability);
    }
    if explored > settings.exploration {
        let scale = settings.exploration / explored;
        probabilities
            .iter_mut()
            .for_each(|probability| *probability *= scale);
        explored = settings.exploration;
    }
    probabilities[greedy] = 1.0 - explored;
    probabilities
}

/// The index whose cumulative probability first exceeds `draw`; the last item with any
/// probability if rounding leaves `draw` above the total.
fn sample(probabilities: &[f64], draw: f64) -> usize {
    let mut cumulative = 0.0;
    let mut last_possible = 0;
    for (index, probability) in probabilities.iter().enumerate() {
        if *probability > 0.0 {
            cumulative += probability;
            last_possible = index;
            if draw < cumulative {
                return index;
            }
        }
    }
    last_possible
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Feature;
    use crate::test_world::{self, World, best_item, candidate, candidates, context};

    fn settings() -> LearnerSettings {
        LearnerSettings {
            hash_bits: 16,
            ..LearnerSettings::default()
        }
    }

    fn trained(settings: LearnerSettings, decisions: usize) -> Learner {
        let mut learner = Learner::new(settings).expect("valid settings");
        let mut world = World::new(7);
        let candidates = candidates();
        for step in 0..decisions {
            world.step(&mut learner, &candidates, step as i64);
        }
        learner
    }

    #[test]
    fn new_refuses_invalid_settings() {
        let error = Learner::new(LearnerSettings {
            hash_bits: 40,
            ..LearnerSettings::default()
        })
        .expect_err("40 bits");
        assert_eq!(error.field, "hashBits");
    }

    #[test]
    fn empty_candidates_are_an_error() {
        let learner = Learner::new(settings()).expect("valid");
        assert_eq!(
            learner.rank(&context("sports", "phone"), &[], 1),
            Err(RankError::NoCandidates)
        );
    }

    #[test]
    fn learn_refuses_impossible_decisions() {
        let mut learner = Learner::new(settings()).expect("valid");
        let candidates = candidates();
        let context = context("news", "phone");
        let learn = |learner: &mut Learner, shown, probability, reward| {
            learner.learn(
                &context,
                &candidates,
                shown,
                probability,
                reward,
                Policy::Personalized,
            )
        };
        assert_eq!(
            learn(&mut learner, 4, 0.5, 1.0),
            Err(LearnError::ShownOutOfRange {
                shown: 4,
                candidates: 4
            })
        );
        assert!(matches!(
            learn(&mut learner, 0, 0.0, 1.0),
            Err(LearnError::InvalidProbability(_))
        ));
        assert!(matches!(
            learn(&mut learner, 0, f64::NAN, 1.0),
            Err(LearnError::InvalidProbability(_))
        ));
        assert!(matches!(
            learn(&mut learner, 0, 1.5, 1.0),
            Err(LearnError::InvalidProbability(_))
        ));
        assert!(matches!(
            learn(&mut learner, 0, 0.5, f64::INFINITY),
            Err(LearnError::InvalidReward(_))
        ));
        assert_eq!(learner.decisions_learned(), 0);
        assert_eq!(learn(&mut learner, 0, 0.5, 1.0), Ok(()));
        assert_eq!(learner.decisions_learned(), 1);
    }

    #[test]
    fn probabilities_sum_to_one_and_respect_the_exploration_bound() {
        for (exploration, decisions) in [(0.2, 0), (0.2, 300), (0.05, 300), (0.0, 300), (1.0, 50)] {
            let mut learner = trained(settings(), decisions);
            learner
                .update_settings(LearnerSettings {
                    exploration,
                    holdout: 0.0,
                    testing_budget: 0.0,
                    ..settings()
                })
                .expect("valid");
            let mut world = World::new(11);
            for seed in 0..200 {
                let (_, context) = world.next_context();
                let ranking = learner
                    .rank(&context, &candidates(), seed)
                    .expect("candidates");
                let total: f64 = ranking.probabilities.iter().sum();
                assert!((total - 1.0).abs() < 1e-9, "sum {total}");
                assert!(
                    ranking
                        .probabilities
                        .iter()
                        .all(|p| (0.0..=1.0).contains(p))
                );
                let greedy = ranking.probabilities.iter().cloned().fold(0.0, f64::max);
                assert!(
                    1.0 - greedy <= exploration + 1e-9,
                    "non-greedy mass {} > {exploration}",
                    1.0 - greedy
                );
                assert_eq!(ranking.policy, Policy::Personalized);
                let mut sorted = ranking.order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, vec![0, 1, 2, 3], "order is a permutation");
            }
        }
        // With holdout and testing on, the mixture still sums to 1.
        let learner = trained(settings(), 100);
        let mut with_new = candidates();
        with_new.push(candidate("fresh", "sports"));
        let ranking = learner
            .rank(&context("news", "phone"), &with_new, 3)
            .expect("candidates");
        assert!((ranking.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        // All five are under test (fewer than 1,000 impressions): the budget is shared.
        assert!(ranking.probabilities[4] >= settings().testing_budget / 5.0);
    }

    #[test]
    fn shown_items_follow_the_logged_probabilities() {
        // The logged probabilities are the marginal ones of the whole mixture (holdout,
        // testing, SquareCB): the frequency of each shown item over many seeds matches them.
        let mut learner = trained(
            LearnerSettings {
                holdout: 0.1,
                testing_budget: 0.1,
                graduation_impressions: 300,
                ..settings()
            },
            1_500,
        );
        learner.record_impression("tennis", 0);
        let mut with_new = candidates();
        with_new.push(candidate("fresh", "news"));
        with_new.push(candidate("newer", "sports"));
        let context = context("sports", "tablet");
        let expected = learner
            .rank(&context, &with_new, 0)
            .expect("candidates")
            .probabilities;
        let draws = 100_000;
        let mut shown = vec![0u64; with_new.len()];
        for seed in 0..draws {
            shown[learner
                .rank(&context, &with_new, seed)
                .expect("candidates")
                .order[0]] += 1;
        }
        for (index, probability) in expected.iter().enumerate() {
            let frequency = shown[index] as f64 / draws as f64;
            let tolerance = 4.0 * (probability * (1.0 - probability) / draws as f64).sqrt() + 1e-9;
            assert!(
                (frequency - probability).abs() <= tolerance,
                "candidate {index}: shown {frequency}, logged {probability}"
            );
        }
    }

    #[test]
    fn predictions_scale_with_the_rewards() {
        let candidates = candidates();
        let train = |unit: f64| {
            let mut learner = Learner::new(settings()).expect("valid");
            for step in 0..400usize {
                let taste = if step % 3 == 0 { "sports" } else { "news" };
                let shown = step % candidates.len();
                let reward = if (step / 4) % 5 < 2 { unit } else { 0.0 };
                learner
                    .learn(
                        &context(taste, "phone"),
                        &candidates,
                        shown,
                        0.5,
                        reward,
                        Policy::Personalized,
                    )
                    .expect("learns");
            }
            learner
        };
        let (clicks, revenue) = (train(1.0), train(250.0));
        for taste in ["sports", "news"] {
            for candidate in &candidates {
                let click = clicks.predict(&context(taste, "phone"), candidate);
                let money = revenue.predict(&context(taste, "phone"), candidate);
                assert!(
                    (money - 250.0 * click).abs() < 1e-3 * 250.0,
                    "{click} {money}"
                );
            }
        }
    }

    #[test]
    fn learns_a_contextual_world() {
        let learner = trained(settings(), 4_000);
        let candidates = candidates();
        for taste in test_world::TASTES {
            for device in ["phone", "desktop", "tablet"] {
                let context = context(taste, device);
                let predictions: Vec<f64> = candidates
                    .iter()
                    .map(|c| learner.predict(&context, c))
                    .collect();
                let best = (0..candidates.len())
                    .max_by(|a, b| predictions[*a].total_cmp(&predictions[*b]))
                    .expect("candidates");
                assert_eq!(
                    candidates[best].id,
                    best_item(taste),
                    "{taste} {device}: {predictions:?}"
                );
                let expected = test_world::click_rate(taste, best_item(taste));
                assert!(
                    (predictions[best] - expected).abs() < 0.15,
                    "{taste}: {predictions:?}"
                );

                let right = (0..500)
                    .filter(|seed| {
                        let ranking = learner
                            .rank(&context, &candidates, *seed)
                            .expect("candidates");
                        candidates[ranking.order[0]].id == best_item(taste)
                    })
                    .count();
                assert!(
                    right >= 400,
                    "{taste} {device}: best item first {right} times of 500"
                );
            }
        }
        assert!(learner.lift().difference.expect("both arms").estimate > 0.1);
    }

    #[test]
    fn learns_a_world_with_raw_numbers_of_very_different_scales() {
        // Ages of 18 to 80, lengths of 5 to 45 and prices of 0.99 to 199, unscaled, beside
        // the categories: per-weight normalisation makes their scale irrelevant, so the
        // learner does as well as in the plain world (`learns_a_contextual_world`).
        let mut learner = Learner::new(settings()).expect("valid");
        let candidates = test_world::raw_candidates();
        let mut world = World::raw(7);
        for step in 0..4_000 {
            world.step(&mut learner, &candidates, step);
        }
        let mut random = SplitMix64::new(13);
        let mut firsts = Vec::new();
        for taste in test_world::TASTES {
            for device in ["phone", "desktop", "tablet"] {
                let mut right = 0;
                for seed in 0..500 {
                    let age = 18 + random.next_u64() % 63;
                    let context = test_world::raw_context(taste, device, age as f64);
                    let ranking = learner
                        .rank(&context, &candidates, seed)
                        .expect("candidates");
                    right += usize::from(candidates[ranking.order[0]].id == best_item(taste));
                }
                firsts.push((taste, device, right));
            }
        }
        assert!(
            firsts.iter().all(|(_, _, right)| *right >= 400),
            "best item first, of 500: {firsts:?}"
        );
        for taste in test_world::TASTES {
            for age in [18.0, 40.0, 80.0] {
                let context = test_world::raw_context(taste, "phone", age);
                let predictions: Vec<f64> = candidates
                    .iter()
                    .map(|c| learner.predict(&context, c))
                    .collect();
                let best = (0..candidates.len())
                    .max_by(|a, b| predictions[*a].total_cmp(&predictions[*b]))
                    .expect("candidates");
                assert_eq!(
                    candidates[best].id,
                    best_item(taste),
                    "{taste} {age}: {predictions:?}"
                );
                let expected = test_world::click_rate(taste, best_item(taste));
                assert!(
                    (predictions[best] - expected).abs() < 0.15,
                    "{taste} {age}: {predictions:?}"
                );
            }
        }
        assert!(learner.lift().difference.expect("both arms").estimate > 0.1);
    }

    #[test]
    fn a_reward_changes_the_next_decision() {
        let mut learner = Learner::new(LearnerSettings {
            exploration: 0.0,
            holdout: 0.0,
            testing_budget: 0.0,
            ..settings()
        })
        .expect("valid");
        let candidates = candidates();
        let context = context("news", "phone");
        // Untrained, every score ties and the first candidate wins.
        assert_eq!(
            learner
                .rank(&context, &candidates, 1)
                .expect("candidates")
                .order[0],
            0
        );
        learner
            .learn(&context, &candidates, 2, 1.0, 1.0, Policy::Personalized)
            .expect("valid");
        let ranking = learner.rank(&context, &candidates, 1).expect("candidates");
        assert_eq!(ranking.order[0], 2);
        learner
            .learn(&context, &candidates, 2, 1.0, 0.0, Policy::Personalized)
            .expect("valid");
        learner
            .learn(&context, &candidates, 3, 1.0, 1.0, Policy::Personalized)
            .expect("valid");
        assert_eq!(
            learner
                .rank(&context, &candidates, 1)
                .expect("candidates")
                .order[0],
            3
        );
    }

    /// A learner whose four items have graduated and are known, then a new item under test
    /// whose reward is `new_reward` (given the learner's surface mean) until it
    /// graduates: the learner, the world, the candidates, and the decisions, testing
    /// decisions and impressions of the new item (index 4) it took.
    fn test_a_new_item(
        graduation: u64,
        budget: f64,
        new_reward: fn(f64) -> f64,
    ) -> (Learner, World, Vec<Candidate>, u64, u64, u64) {
        let mut learner = trained(
            LearnerSettings {
                graduation_impressions: graduation,
                testing_budget: budget,
                holdout: 0.0,
                ..settings()
            },
            0,
        );
        let mut candidates = candidates();
        // The established items have graduated and the model knows them.
        for candidate in &candidates {
            for _ in 0..graduation {
                learner.record_impression(&candidate.id, 0);
            }
        }
        let mut world = World::new(5);
        for step in 0..3_000 {
            world.step(&mut learner, &candidates, step);
        }
        assert!(learner.item_stats().iter().all(|item| !item.under_test));
        candidates.push(candidate("new", "weather"));
        let (mut decisions, mut testing, mut new_shown) = (0u64, 0u64, 0u64);
        while learner
            .item_stats()
            .iter()
            .all(|item| item.id != "new" || item.under_test)
        {
            let (taste, context) = world.next_context();
            let ranking = learner
                .rank(&context, &candidates, world.random.next_u64())
                .expect("candidates");
            let shown = ranking.order[0];
            decisions += 1;
            testing += u64::from(ranking.policy == Policy::Testing);
            if ranking.policy == Policy::Testing {
                assert_eq!(shown, 4, "testing shows only items under test");
            }
            new_shown += u64::from(shown == 4);
            learner.record_impression(&candidates[shown].id, 10_000 + decisions as i64);
            let reward = if shown == 4 {
                new_reward(learner.surface_rewards.mean)
            } else {
                world.click(test_world::click_rate(taste, &candidates[shown].id))
            };
            learner
                .learn(
                    &context,
                    &candidates,
                    shown,
                    ranking.probabilities[shown],
                    reward,
                    ranking.policy,
                )
                .expect("valid");
            assert!(decisions < 100_000, "the new item never graduated");
        }
        let graduated_at = learner
            .item_stats()
            .into_iter()
            .find(|item| item.id == "new")
            .and_then(|item| item.graduated_at_ms);
        assert_eq!(graduated_at, Some(10_000 + decisions as i64));
        (learner, world, candidates, decisions, testing, new_shown)
    }

    #[test]
    fn content_testing_gives_a_new_item_its_share_within_the_budget_until_it_graduates() {
        // An item as good as the average: nothing tells it apart early, so it is tested
        // until its graduation impressions.
        let (graduation, budget) = (150, 0.05);
        let (_, _, _, decisions, testing, new_shown) =
            test_a_new_item(graduation, budget, |surface_mean| surface_mean);
        let testing_share = testing as f64 / decisions as f64;
        let tolerance = 4.0 * (budget * (1.0 - budget) / decisions as f64).sqrt();
        assert!(
            testing_share <= budget + tolerance,
            "testing took {testing_share}"
        );
        assert!(
            testing_share >= budget - tolerance,
            "testing took only {testing_share}"
        );
        assert!(
            new_shown as f64 / decisions as f64 >= budget - tolerance,
            "the new item was starved"
        );
        assert_eq!(new_shown, graduation);
    }

    #[test]
    fn a_clear_loser_graduates_early_and_then_loses_on_merit() {
        // Nobody clicks it: after 30 rewarded impressions (a tenth of 300, at least 30)
        // it is many standard errors below the surface's mean.
        let graduation = 300;
        let (learner, mut world, candidates, _, _, new_shown) =
            test_a_new_item(graduation, 0.05, |_| 0.0);
        assert!(
            (30..graduation / 2).contains(&new_shown),
            "graduated after {new_shown} impressions"
        );
        // Graduated: no more testing decisions, and the dud competes on merit (and loses).
        let mut after = 0;
        for seed in 0..2_000 {
            let (_, context) = world.next_context();
            let ranking = learner
                .rank(&context, &candidates, seed)
                .expect("candidates");
            assert_ne!(ranking.policy, Policy::Testing);
            after += usize::from(ranking.order[0] == 4);
        }
        assert!(after < 100, "the dud still shown {after} times of 2000");
    }

    #[test]
    fn holdout_share_matches_the_setting_and_is_not_personalised() {
        let learner = trained(
            LearnerSettings {
                holdout: 0.1,
                ..settings()
            },
            2_000,
        );
        let candidates = candidates();
        let mut holdout = 0;
        let mut holdout_firsts = std::collections::HashSet::new();
        let mut world = World::new(3);
        let draws = 20_000;
        for seed in 0..draws {
            let (_, context) = world.next_context();
            let ranking = learner
                .rank(&context, &candidates, seed)
                .expect("candidates");
            if ranking.policy == Policy::Holdout {
                holdout += 1;
                holdout_firsts.insert(ranking.order.clone());
            }
        }
        let share = holdout as f64 / draws as f64;
        assert!(
            (share - 0.1).abs() < 4.0 * (0.1f64 * 0.9 / draws as f64).sqrt(),
            "holdout {share}"
        );
        // The same order for sports fans and news readers: the global ranking.
        assert_eq!(holdout_firsts.len(), 1, "{holdout_firsts:?}");
    }

    #[test]
    fn lift_has_a_welch_interval() {
        let mut learner = Learner::new(settings()).expect("valid");
        let candidates = vec![candidate("a", "x")];
        let context = Features(vec![Feature::text("user", "id", "1")]);
        let learn = |learner: &mut Learner, reward: f64, policy| {
            learner
                .learn(&context, &candidates, 0, 1.0, reward, policy)
                .expect("valid");
        };
        learn(&mut learner, 1.0, Policy::Personalized);
        learn(&mut learner, 0.0, Policy::Holdout);
        assert_eq!(
            learner.lift().difference,
            None,
            "one sample per arm says nothing"
        );

        let mut random = SplitMix64::new(9);
        for _ in 0..20_000 {
            let reward = f64::from(u8::from(random.next_unit() < 0.3));
            learn(&mut learner, reward, Policy::Personalized);
        }
        for _ in 0..2_000 {
            let reward = f64::from(u8::from(random.next_unit() < 0.2));
            learn(&mut learner, reward, Policy::Holdout);
        }
        learn(&mut learner, 1.0, Policy::Testing);
        let lift = learner.lift();
        let difference = lift.difference.expect("both arms");
        assert!(
            difference.low < 0.1 && 0.1 < difference.high,
            "{difference:?}"
        );
        assert!(
            difference.low > 0.0,
            "a 10-point lift is detected: {difference:?}"
        );
        let width = difference.high - difference.low;
        let expected_width = 2.0 * 1.96 * (0.21f64 / 20_000.0 + 0.16 / 2_000.0).sqrt();
        assert!(
            (width - expected_width).abs() < 0.1 * expected_width,
            "{width} vs {expected_width}"
        );
        assert_eq!(lift.personalized.samples, 20_001);
        assert_eq!(lift.holdout.samples, 2_001);
        assert_eq!(lift.testing.samples, 1);
    }

    #[test]
    fn update_settings_keeps_the_weights_but_not_a_new_size() {
        let mut learner = trained(settings(), 200);
        let before = learner.predict(&context("news", "phone"), &candidates()[2]);
        learner
            .update_settings(LearnerSettings {
                exploration: 0.1,
                ..settings()
            })
            .expect("valid");
        assert_eq!(learner.settings().exploration, 0.1);
        assert_eq!(
            learner.predict(&context("news", "phone"), &candidates()[2]),
            before
        );
        let error = learner
            .update_settings(LearnerSettings {
                hash_bits: 18,
                ..settings()
            })
            .expect_err("size change");
        assert_eq!(error.field, "hashBits");
    }
}
