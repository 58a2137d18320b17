//! The regression oracle: a linear model of the reward over hashed features and their
//! interactions, learned online with squared loss.
//!
//! The features of one (context, candidate) pair, as Vowpal Wabbit's ADF with `-q ::`
//! and the action's id as a feature would build them:
//! - a constant (the surface's base reward) and the context's own features;
//! - the candidate's own features and an indicator of its id (each item's own bias);
//! - every context feature crossed with every item feature and with the item's id
//!   (`-q ::` crosses every namespace pair; context × context crosses are left out, as
//!   they are the same for every candidate and cannot change a ranking).
//!
//! A cross's value is the product of its two values; its weight index mixes the two
//! hashes with a multiply, so `(a, b)` and `(b, a)` land apart.
//!
//! Updates are normalised per-coordinate updates (Vowpal Wabbit's `--normalized`, Ross,
//! Mineiro and Langford, "Normalized online learning", 2013, algorithm NAG), with rates
//! that fall with each weight's own number of updates, and the importance-invariant step
//! of Karampatziakis and Langford for squared loss:
//! - **Normalised**: every weight keeps the largest `|x|` it has been updated with, its
//!   scale `s`. Its rate is divided by `s`, and the example's squared norm that divides
//!   every rate counts each value as `(x / s)²`, at most 1. Numbers are used as
//!   applications send them (an age of 63, a price of 199, a length of 45): multiplying a
//!   feature by any constant leaves the predictions unchanged, as if every feature had
//!   been scaled to at most 1 beforehand. Without it, one raw number of 45 crossed with
//!   the item's features made the squared norm thousands of times larger and stalled
//!   every other weight. When a larger `|x|` comes, the weight is first shrunk by
//!   `s / |x|`, as NAG does: that keeps `w·s`, the weight in normalised units, where it
//!   was.
//! - **Per-coordinate**: each weight's rate is over the root of its own number of
//!   updates `n` (counted in normalised units, `Σ (x/s)²`): a weight seen often settles, a
//!   new one learns fast. This is AdaGrad with the gradients' sizes left out, as McMahan
//!   et al. do with counts in "Ad click prediction" (2013). AdaGrad's sum of squared
//!   gradients made the rates depend on the size of the errors: the large errors of a
//!   young model shrank every rate for good, and an item clicked more often learned more
//!   slowly than one clicked less. On the synthetic world the counts gave about 2.5% more
//!   clicks after warm-up (docs/benchmarks.md).
//! - **Invariant**: the prediction moves a share `1 - exp(-Σ rate·x²)` of the way to the
//!   label and never past it, however many features an example has. Plain AdaGrad would
//!   overshoot by a factor of the number of active features on a new example (about 250
//!   here).
//!
//! For indicator features (value 1) the scale is 1 and each weight moves by
//! `rate / √n` of the error, with the invariant step, divided by the number of active
//! features.
//!
//! Every step is a share of the error, so multiplying every reward by a constant
//! multiplies every weight and prediction by it and changes no ranking: the learning rate
//! is a pure number, whatever the rewards' units.

use crate::features::HashedFeature;

/// Odd multipliers for weight indices: the first turns a context feature's hash into its
/// "left side of a cross" form, the second mixes a cross into an index.
const CROSS_LEFT: u64 = 0xc2b2_ae3d_27d4_eb4f;
const CROSS_MIX: u64 = 0x9e37_79b9_7f4a_7c15;
/// The constant feature's hash.
const CONSTANT_HASH: u64 = 0x7f4a_7c15_9e37_79b9;

/// The context's features, hashed once per decision and shared by every candidate.
#[derive(Debug, Clone, Default)]
pub(crate) struct PreparedContext {
    /// Weight indices and values of the constant and the context's own features.
    linear: Vec<(u32, f32)>,
    /// The context's features as left sides of crosses: a premixed hash and a value.
    cross: Vec<(u64, f32)>,
    /// The sum of the linear part's weighted values, the same for every candidate.
    base_score: f32,
}

/// What a weight's update needs besides the weight: kept apart from the weights, which
/// are all a ranking reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct WeightState {
    /// The weight's number of updates, each counted as `(x/s)²` (1 for an indicator), at
    /// most `f32::MAX`.
    pub(crate) updates: f32,
    /// The largest `|x|` the weight was updated with; 0 until its first update.
    pub(crate) scale: f32,
}

/// Weights and their update state, `2^bits` of each: 12 bytes per weight.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    bits: u8,
    pub(crate) weights: Vec<f32>,
    pub(crate) states: Vec<WeightState>,
}

impl Model {
    pub(crate) fn new(bits: u8) -> Model {
        let size = 1usize << bits;
        Model {
            bits,
            weights: vec![0.0; size],
            states: vec![WeightState::default(); size],
        }
    }

    /// A model from saved tables; the caller checks both have `2^bits` entries.
    pub(crate) fn from_tables(bits: u8, weights: Vec<f32>, states: Vec<WeightState>) -> Model {
        Model {
            bits,
            weights,
            states,
        }
    }

    fn index(&self, hash: u64) -> u32 {
        // The top bits of a mixed hash: a multiply is cheaper than a full finaliser on the
        // hot path, and its high bits depend on every input bit.
        (hash.wrapping_mul(CROSS_MIX) >> (64 - u32::from(self.bits))) as u32
    }

    /// Hashes the context's features into `prepared`, reusing its buffers.
    pub(crate) fn prepare_context(
        &self,
        context: &[HashedFeature],
        prepared: &mut PreparedContext,
    ) {
        prepared.linear.clear();
        prepared.cross.clear();
        prepared.linear.push((self.index(CONSTANT_HASH), 1.0));
        for feature in context {
            prepared
                .linear
                .push((self.index(feature.hash), feature.value));
            prepared
                .cross
                .push((feature.hash.wrapping_mul(CROSS_LEFT), feature.value));
        }
        prepared.base_score = prepared
            .linear
            .iter()
            .map(|(index, value)| self.weights[*index as usize] * value)
            .sum();
    }

    /// The predicted reward of one candidate, whose features (its own and its id) are
    /// `item`.
    pub(crate) fn score(&self, context: &PreparedContext, item: &[HashedFeature]) -> f32 {
        let shift = 64 - u32::from(self.bits);
        let weights = &self.weights[..];
        let mut score = context.base_score;
        for feature in item {
            score += weights[self.index(feature.hash) as usize] * feature.value;
            let mut crossed = 0.0f32;
            for (left, value) in &context.cross {
                let index = ((left ^ feature.hash).wrapping_mul(CROSS_MIX) >> shift) as usize;
                crossed += weights[index] * value;
            }
            score += crossed * feature.value;
        }
        score
    }

    /// Every (index, value) of one example, into `into` (cleared first).
    fn example(
        &self,
        context: &PreparedContext,
        item: &[HashedFeature],
        into: &mut Vec<(u32, f32)>,
    ) {
        let shift = 64 - u32::from(self.bits);
        into.clear();
        into.extend_from_slice(&context.linear);
        for feature in item {
            into.push((self.index(feature.hash), feature.value));
            for (left, value) in &context.cross {
                let index = ((left ^ feature.hash).wrapping_mul(CROSS_MIX) >> shift) as u32;
                into.push((index, value * feature.value));
            }
        }
    }

    /// One online update towards `reward` for the shown candidate, with reusable buffers.
    pub(crate) fn learn(
        &mut self,
        context: &PreparedContext,
        item: &[HashedFeature],
        reward: f32,
        learning_rate: f32,
        buffers: &mut LearnBuffers,
    ) {
        let LearnBuffers { example, rates } = buffers;
        self.example(context, item, example);
        // New scales first, shrinking the weights they grow (NAG's `w·s/|x|`), then the
        // prediction the update moves. A value of 0 has no gradient and sets no scale.
        let mut prediction = 0.0f32;
        for (index, value) in example.iter() {
            let magnitude = value.abs();
            let state = &mut self.states[*index as usize];
            let weight = &mut self.weights[*index as usize];
            if magnitude > state.scale {
                if state.scale > 0.0 {
                    *weight *= state.scale / magnitude;
                }
                state.scale = magnitude;
            }
            prediction += *weight * value;
        }
        let error = prediction - reward;
        if error == 0.0 || !error.is_finite() {
            return;
        }
        // Each weight's rate is `base_rate / (s·√n)`: the root of its updates `n`, over
        // its scale `s`, with the base rate divided by the example's normalised squared
        // norm `Σ (x/s)²` so that an example of 250 features moves the prediction no
        // faster than one of 5 (Vowpal Wabbit divides by a running average of that norm).
        // `Σ rate·x²` is how fast the prediction moves. `rates` keeps each entry's
        // `rate·x / base_rate = (x/s)/(s·√n)`, the weight's step per unit of base rate and
        // error; one that is not finite (a scale near f32's smallest) is left at 0.
        let mut norm = 0.0f32;
        let mut speed = 0.0f32;
        rates.clear();
        for (index, value) in example.iter() {
            let state = &mut self.states[*index as usize];
            if *value == 0.0 {
                rates.push(0.0);
                continue;
            }
            let normalised = value / state.scale;
            let squared = normalised * normalised;
            state.updates = (state.updates + squared).min(f32::MAX);
            norm += squared;
            let root = state.updates.sqrt();
            let rate = normalised / (state.scale * root);
            let rate = if rate.is_finite() { rate } else { 0.0 };
            speed += rate * value;
            rates.push(rate);
        }
        let base_rate = learning_rate / norm;
        speed *= base_rate;
        if speed <= 0.0 || !speed.is_finite() {
            return;
        }
        // The invariant step: scaled so the prediction ends at `reward + error·exp(-speed)`.
        let step = (1.0 - (-speed).exp()) / speed;
        let factor = step * base_rate * error;
        for ((index, _), rate) in example.iter().zip(rates.iter()) {
            let weight = &mut self.weights[*index as usize];
            let updated = *weight - factor * rate;
            if updated.is_finite() {
                *weight = updated;
            }
        }
    }
}

/// Reusable buffers for [`Model::learn`]: the example's (index, value) entries and each
/// entry's rate.
#[derive(Debug, Clone, Default)]
pub(crate) struct LearnBuffers {
    example: Vec<(u32, f32)>,
    rates: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{Feature, hash_feature, hash_item_id};

    fn hashed(features: &[Feature]) -> Vec<HashedFeature> {
        features.iter().filter_map(hash_feature).collect()
    }

    #[test]
    fn an_update_moves_the_prediction_towards_the_label_and_never_past_it() {
        let mut model = Model::new(12);
        let context = hashed(&[
            Feature::text("user", "taste", "sports"),
            Feature::number("user", "age", 40.0),
        ]);
        let mut item = hashed(&[Feature::text("item", "topic", "football")]);
        item.push(hash_item_id("a"));
        let mut prepared = PreparedContext::default();
        let mut scratch = LearnBuffers::default();
        for _ in 0..20 {
            model.prepare_context(&context, &mut prepared);
            let before = model.score(&prepared, &item);
            model.learn(&prepared, &item, 1.0, 0.5, &mut scratch);
            model.prepare_context(&context, &mut prepared);
            let after = model.score(&prepared, &item);
            assert!(after > before || after >= 0.999, "{before} -> {after}");
            assert!(after <= 1.0 + 1e-5, "overshot: {after}");
        }
    }

    /// Trains a model on a world where the reward is `0.2 + 0.6·[taste = sports]` for item
    /// "a" and the context has an age that does not matter and a number scaled by `scale`
    /// that does: the same reward with a different feature scale.
    fn trained_with_scale(scale: f64) -> (Model, Vec<f32>) {
        let mut model = Model::new(14);
        let mut prepared = PreparedContext::default();
        let mut scratch = LearnBuffers::default();
        let mut item = hashed(&[
            Feature::text("item", "topic", "football"),
            Feature::number("item", "length", 45.0 * scale),
        ]);
        item.push(hash_item_id("a"));
        let context = |step: u64| {
            let taste = if step.is_multiple_of(3) {
                "sports"
            } else {
                "news"
            };
            hashed(&[
                Feature::text("user", "taste", taste),
                Feature::number("user", "age", (18 + step * 7 % 63) as f64 * scale),
            ])
        };
        for step in 0..300u64 {
            let reward = if step.is_multiple_of(3) { 0.8 } else { 0.2 };
            model.prepare_context(&context(step), &mut prepared);
            model.learn(&prepared, &item, reward, 0.5, &mut scratch);
        }
        let predictions = (0..6)
            .map(|step| {
                model.prepare_context(&context(step), &mut prepared);
                model.score(&prepared, &item)
            })
            .collect();
        (model, predictions)
    }

    #[test]
    fn predictions_do_not_depend_on_the_scale_of_numbers() {
        let (_, unit) = trained_with_scale(1.0);
        for (prediction, step) in unit.iter().zip(0u64..) {
            let expected = if step.is_multiple_of(3) { 0.8 } else { 0.2 };
            assert!((prediction - expected).abs() < 0.05, "{unit:?}");
        }
        for scale in [1e-6, 0.01, 100.0, 1e6] {
            let (_, scaled) = trained_with_scale(scale);
            for (left, right) in unit.iter().zip(&scaled) {
                assert!(
                    (left - right).abs() < 1e-3,
                    "scale {scale}: {scaled:?} against {unit:?}"
                );
            }
        }
    }

    #[test]
    fn extreme_numbers_leave_every_weight_and_accumulator_finite() {
        let mut model = Model::new(10);
        let mut prepared = PreparedContext::default();
        let mut scratch = LearnBuffers::default();
        let item = vec![hash_item_id("a")];
        for (step, value) in [
            1e30,
            1e-30,
            0.0,
            -1e38,
            3.0,
            f32::MIN_POSITIVE as f64,
            1e-45,
        ]
        .into_iter()
        .cycle()
        .take(200)
        .enumerate()
        {
            let context = hashed(&[Feature::number("user", "x", value)]);
            model.prepare_context(&context, &mut prepared);
            model.learn(&prepared, &item, (step % 2) as f32, 0.5, &mut scratch);
        }
        assert!(model.weights.iter().all(|weight| weight.is_finite()));
        assert!(model.states.iter().all(|state| {
            state.updates.is_finite()
                && state.updates >= 0.0
                && state.scale.is_finite()
                && state.scale >= 0.0
        }));
        // The weight, then its state: 12 bytes, as settings and the crate docs say.
        assert_eq!(
            std::mem::size_of::<f32>() + std::mem::size_of::<WeightState>(),
            12
        );
    }
}
