//! Offline evaluation: how another policy would have done on the decisions logged.
//!
//! Every logged decision carries the probability its shown item had under the policy that
//! served it (the learner logs the marginal probability of its whole mixture, so this is
//! exact). For a target policy `π` giving the shown item probability `π(shown)`, with
//! weight `w = π(shown) / probability`:
//! - **IPS**: the mean of `w · reward`. Unbiased; its variance grows with the weights.
//! - **Self-normalised IPS**: `Σ w·reward / Σ w`. Slightly biased, much steadier when the
//!   weights are large; its interval is the delta method's.
//! - **Doubly robust**: the mean of `Σₐ π(a)·r̂(a) + w·(reward - r̂(shown))` with a reward
//!   model `r̂`: unbiased like IPS when the probabilities are right, and with less variance
//!   the better `r̂` is. The reward model is the target learner's own predictions when the
//!   target is a learner, else each item's mean reward in the log shrunk towards the log's
//!   mean (the global ranking's estimate).
//!
//! Intervals are 95% normal intervals over decisions. A learner target is evaluated as the
//! snapshot given (its weights and item statistics now), not as it would have learned along
//! the log.

use std::collections::HashMap;

use crate::features::{Candidate, Features};
use crate::learner::{Learner, shrunk_mean};
use crate::settings::{LearnerSettings, SettingsError};
use crate::statistics::{NORMAL_95, RunningMean};

/// One decision as logged: what was ranked, what was shown with which probability, and the
/// reward it earned.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedDecision {
    pub context: Features,
    pub candidates: Vec<Candidate>,
    pub shown: usize,
    pub probability: f64,
    pub reward: f64,
}

/// The policy to evaluate.
#[derive(Debug, Clone, Copy)]
pub enum TargetPolicy<'a> {
    /// Every candidate equally likely.
    Uniform,
    /// The candidate with the highest mean reward in the log (shrunk towards the log's
    /// mean), for every context: what the global ranking would show.
    Global,
    /// The learner's own probabilities, holdout and testing included.
    Learner(&'a Learner),
    /// The same weights and item statistics under other settings (exploration, SquareCB's
    /// gamma, testing budget, holdout).
    LearnerWith(&'a Learner, &'a LearnerSettings),
}

/// A value with its 95% interval; unbounded below two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub samples: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    pub ips: Estimate,
    pub snips: Estimate,
    pub doubly_robust: Estimate,
    /// The mean reward actually logged, for comparison.
    pub logged: Estimate,
    /// Decisions left out: shown out of range, a probability not in (0, 1], or a reward
    /// that is not finite.
    pub skipped: u64,
}

/// How often progress is reported, in decisions.
const PROGRESS_EVERY: u64 = 1_024;

/// Estimates the target's mean reward from the log. `progress(done, total)` is called every
/// 1,024 decisions and once at the end. Fails only for [`TargetPolicy::LearnerWith`] with
/// settings that do not validate.
pub fn evaluate(
    log: &[LoggedDecision],
    target: TargetPolicy<'_>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Evaluation, SettingsError> {
    if let TargetPolicy::LearnerWith(_, settings) = target {
        settings.validate()?;
    }
    let total = log.len() as u64;
    let usable = |decision: &&LoggedDecision| {
        decision.shown < decision.candidates.len()
            && decision.probability > 0.0
            && decision.probability <= 1.0
            && decision.reward.is_finite()
    };

    // Each item's rewards in the log: the global target's ranking and the reward model of
    // targets that have none of their own.
    let mut item_rewards: HashMap<&str, (u64, f64)> = HashMap::new();
    let mut logged = RunningMean::default();
    for decision in log.iter().filter(usable) {
        let entry = item_rewards
            .entry(decision.candidates[decision.shown].id.as_str())
            .or_default();
        entry.0 += 1;
        entry.1 += decision.reward;
        logged.add(decision.reward);
    }
    let log_mean = logged.mean;
    let global_estimate = |candidate: &Candidate| {
        item_rewards
            .get(candidate.id.as_str())
            .map_or(log_mean, |(count, sum)| shrunk_mean(*sum, *count, log_mean))
    };

    let mut ips = RunningMean::default();
    let mut doubly_robust = RunningMean::default();
    let mut snips = SelfNormalisedSums::default();
    let mut target_probabilities = Vec::new();
    let mut reward_model = Vec::new();
    let mut next_report = PROGRESS_EVERY;
    for (done, decision) in log.iter().enumerate() {
        let done = done as u64;
        if done == next_report {
            progress(done, total);
            next_report += PROGRESS_EVERY;
        }
        if !usable(&decision) {
            continue;
        }
        let candidates = &decision.candidates;
        target_probabilities.clear();
        reward_model.clear();
        match target {
            TargetPolicy::Uniform => {
                target_probabilities.resize(candidates.len(), 1.0 / candidates.len() as f64);
                reward_model.extend(candidates.iter().map(global_estimate));
            }
            TargetPolicy::Global => {
                reward_model.extend(candidates.iter().map(global_estimate));
                let mut best = 0;
                for (index, estimate) in reward_model.iter().enumerate() {
                    if estimate.total_cmp(&reward_model[best]).is_gt() {
                        best = index;
                    }
                }
                target_probabilities.resize(candidates.len(), 0.0);
                target_probabilities[best] = 1.0;
            }
            TargetPolicy::Learner(learner) => {
                let plan = learner.plan(learner.settings(), &decision.context, candidates);
                target_probabilities.extend_from_slice(&plan.probabilities);
                reward_model.extend(plan.scores.iter().map(|score| f64::from(*score)));
            }
            TargetPolicy::LearnerWith(learner, settings) => {
                let plan = learner.plan(settings, &decision.context, candidates);
                target_probabilities.extend_from_slice(&plan.probabilities);
                reward_model.extend(plan.scores.iter().map(|score| f64::from(*score)));
            }
        }

        let weight = target_probabilities[decision.shown] / decision.probability;
        let reward = decision.reward;
        ips.add(weight * reward);
        snips.add(weight, reward);
        let direct: f64 = target_probabilities
            .iter()
            .zip(&reward_model)
            .map(|(probability, estimate)| probability * estimate)
            .sum();
        doubly_robust.add(direct + weight * (reward - reward_model[decision.shown]));
    }
    progress(total, total);

    let estimate = |summary: &RunningMean| {
        let (low, high) = summary.normal_interval();
        Estimate {
            value: summary.mean,
            low,
            high,
            samples: summary.count,
        }
    };
    Ok(Evaluation {
        ips: estimate(&ips),
        snips: snips.estimate(),
        doubly_robust: estimate(&doubly_robust),
        logged: estimate(&logged),
        skipped: total - logged.count,
    })
}

/// The sums self-normalised IPS and its delta-method variance need.
#[derive(Default)]
struct SelfNormalisedSums {
    count: u64,
    weights: f64,
    weighted_rewards: f64,
    squared_weights: f64,
    squared_weights_rewards: f64,
    squared_weights_squared_rewards: f64,
}

impl SelfNormalisedSums {
    fn add(&mut self, weight: f64, reward: f64) {
        let squared_weight = weight * weight;
        self.count += 1;
        self.weights += weight;
        self.weighted_rewards += weight * reward;
        self.squared_weights += squared_weight;
        self.squared_weights_rewards += squared_weight * reward;
        self.squared_weights_squared_rewards += squared_weight * reward * reward;
    }

    fn estimate(&self) -> Estimate {
        if self.weights <= 0.0 {
            // The target never picks what was shown: nothing to normalise by.
            return Estimate {
                value: 0.0,
                low: f64::NEG_INFINITY,
                high: f64::INFINITY,
                samples: self.count,
            };
        }
        let value = self.weighted_rewards / self.weights;
        if self.count < 2 {
            return Estimate {
                value,
                low: f64::NEG_INFINITY,
                high: f64::INFINITY,
                samples: self.count,
            };
        }
        // Delta method: Var ≈ Σ w²(r - V)² / (Σ w)².
        let squared_residuals = (self.squared_weights_squared_rewards
            - 2.0 * value * self.squared_weights_rewards
            + value * value * self.squared_weights)
            .max(0.0);
        let half_width = NORMAL_95 * squared_residuals.sqrt() / self.weights;
        Estimate {
            value,
            low: value - half_width,
            high: value + half_width,
            samples: self.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_world::{self, World, candidates, click_rate, context};

    fn trained_learner(decisions: usize) -> Learner {
        let mut learner = Learner::new(LearnerSettings {
            hash_bits: 16,
            ..LearnerSettings::default()
        })
        .expect("valid");
        let mut world = World::new(1234);
        let candidates = candidates();
        for step in 0..decisions {
            world.step(&mut learner, &candidates, step as i64);
        }
        learner
    }

    /// A log served by `choose` (which returns the shown index and its probability).
    fn log(
        decisions: usize,
        seed: u64,
        mut choose: impl FnMut(&Features, &[Candidate], u64) -> (usize, f64),
    ) -> Vec<LoggedDecision> {
        let mut world = World::new(seed);
        let candidates = candidates();
        (0..decisions)
            .map(|_| {
                let (taste, context) = world.next_context();
                let (shown, probability) = choose(&context, &candidates, world.random.next_u64());
                let reward = world.click(click_rate(taste, &candidates[shown].id));
                LoggedDecision {
                    context,
                    candidates: candidates.clone(),
                    shown,
                    probability,
                    reward,
                }
            })
            .collect()
    }

    fn uniform_log(decisions: usize, seed: u64) -> Vec<LoggedDecision> {
        log(decisions, seed, |_, candidates, draw| {
            (
                (draw % candidates.len() as u64) as usize,
                1.0 / candidates.len() as f64,
            )
        })
    }

    fn learner_log(learner: &Learner, decisions: usize, seed: u64) -> Vec<LoggedDecision> {
        log(decisions, seed, |context, candidates, draw| {
            let ranking = learner.rank(context, candidates, draw).expect("candidates");
            (ranking.order[0], ranking.probabilities[ranking.order[0]])
        })
    }

    fn quiet(log: &[LoggedDecision], target: TargetPolicy<'_>) -> Evaluation {
        evaluate(log, target, &mut |_, _| {}).expect("valid target")
    }

    fn contains(estimate: &Estimate, truth: f64) -> bool {
        estimate.low <= truth && truth <= estimate.high && estimate.low < estimate.high
    }

    /// The exact value of a learner's policy in the test world: every context is equally
    /// likely.
    fn true_value(learner: &Learner, settings: &LearnerSettings) -> f64 {
        let candidates = candidates();
        let mut total = 0.0;
        for taste in test_world::TASTES {
            for device in ["phone", "desktop", "tablet"] {
                let plan = learner.plan(settings, &context(taste, device), &candidates);
                total += plan
                    .probabilities
                    .iter()
                    .zip(&candidates)
                    .map(|(probability, candidate)| probability * click_rate(taste, &candidate.id))
                    .sum::<f64>();
            }
        }
        total / 6.0
    }

    #[test]
    fn ips_of_the_logging_policy_is_its_observed_mean() {
        let learner = trained_learner(1_000);
        let log = learner_log(&learner, 5_000, 8);
        let evaluation = quiet(&log, TargetPolicy::Learner(&learner));
        assert_eq!(evaluation.ips.samples, 5_000);
        assert!((evaluation.ips.value - evaluation.logged.value).abs() < 1e-9);
        assert!((evaluation.snips.value - evaluation.logged.value).abs() < 1e-9);
        assert!(contains(&evaluation.doubly_robust, evaluation.logged.value));
        assert!(contains(
            &evaluation.ips,
            true_value(&learner, learner.settings())
        ));
    }

    #[test]
    fn uniform_target_on_a_uniform_log_is_the_mean() {
        let log = uniform_log(20_000, 3);
        let evaluation = quiet(&log, TargetPolicy::Uniform);
        assert!((evaluation.ips.value - evaluation.logged.value).abs() < 1e-9);
        // The uniform policy's true value: the mean of every (taste, item) click rate.
        let truth = (1.4 + 1.3) / 8.0;
        for estimate in [evaluation.ips, evaluation.snips, evaluation.doubly_robust] {
            assert!(contains(&estimate, truth), "{estimate:?}");
        }
    }

    #[test]
    fn estimates_of_other_policies_contain_the_truth() {
        let uniform = uniform_log(20_000, 5);
        // The global ranking shows football or politics (both 0.4 on average) to everyone.
        let global = quiet(&uniform, TargetPolicy::Global);
        for estimate in [global.ips, global.snips, global.doubly_robust] {
            assert!(contains(&estimate, 0.4), "global: {estimate:?}");
        }

        let learner = trained_learner(3_000);
        let greedy = LearnerSettings {
            exploration: 0.0,
            holdout: 0.0,
            testing_budget: 0.0,
            ..learner.settings().clone()
        };
        for (target, truth) in [
            (
                TargetPolicy::Learner(&learner),
                true_value(&learner, learner.settings()),
            ),
            (
                TargetPolicy::LearnerWith(&learner, &greedy),
                true_value(&learner, &greedy),
            ),
        ] {
            let evaluation = quiet(&uniform, target);
            for estimate in [evaluation.ips, evaluation.snips, evaluation.doubly_robust] {
                assert!(contains(&estimate, truth), "truth {truth}: {estimate:?}");
            }
            // The learner's predictions as reward model make doubly robust the tightest.
            let width = |estimate: Estimate| estimate.high - estimate.low;
            assert!(width(evaluation.doubly_robust) < width(evaluation.ips));
        }

        // From a log the learner served (not uniform), uniform random is still estimated.
        let served = learner_log(&learner, 30_000, 6);
        let evaluation = quiet(&served, TargetPolicy::Uniform);
        for estimate in [evaluation.ips, evaluation.snips, evaluation.doubly_robust] {
            assert!(contains(&estimate, (1.4 + 1.3) / 8.0), "{estimate:?}");
        }
    }

    #[test]
    fn invalid_decisions_are_skipped_and_progress_is_reported() {
        let mut log = uniform_log(3_000, 2);
        log[10].shown = 99;
        log[11].probability = 0.0;
        log[12].reward = f64::NAN;
        let mut reports = Vec::new();
        let evaluation = evaluate(&log, TargetPolicy::Uniform, &mut |done, total| {
            reports.push((done, total))
        })
        .expect("valid target");
        assert_eq!(evaluation.skipped, 3);
        assert_eq!(evaluation.ips.samples, 2_997);
        assert_eq!(
            reports,
            vec![(1_024, 3_000), (2_048, 3_000), (3_000, 3_000)]
        );

        let empty = quiet(&[], TargetPolicy::Uniform);
        assert_eq!(empty.ips.samples, 0);
        assert_eq!(empty.ips.low, f64::NEG_INFINITY);
    }

    #[test]
    fn other_settings_are_validated() {
        let learner = trained_learner(0);
        let bad = LearnerSettings {
            holdout: 0.9,
            ..LearnerSettings::default()
        };
        let error = evaluate(
            &[],
            TargetPolicy::LearnerWith(&learner, &bad),
            &mut |_, _| {},
        )
        .expect_err("invalid");
        assert_eq!(error.field, "holdout");
    }
}
