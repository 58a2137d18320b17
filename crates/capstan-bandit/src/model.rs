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
//! Updates are AdaGrad per weight (Vowpal Wabbit's default is adaptive too) with the
//! importance-invariant step of Karampatziakis and Langford for squared loss: the
//! prediction moves a share `1 - exp(-Σ rate·x²)` of the way to the label and never
//! past it, however many features an example has. Plain AdaGrad would overshoot by a
//! factor of the number of active features on a new example (about 250 here).

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

/// Weights and their AdaGrad accumulators, `2^bits` of each.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    bits: u8,
    pub(crate) weights: Vec<f32>,
    pub(crate) squared_gradients: Vec<f32>,
}

impl Model {
    pub(crate) fn new(bits: u8) -> Model {
        let size = 1usize << bits;
        Model {
            bits,
            weights: vec![0.0; size],
            squared_gradients: vec![0.0; size],
        }
    }

    /// A model from saved tables; the caller checks both have `2^bits` entries.
    pub(crate) fn from_tables(bits: u8, weights: Vec<f32>, squared_gradients: Vec<f32>) -> Model {
        Model {
            bits,
            weights,
            squared_gradients,
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

    /// One online update towards `reward` for the shown candidate. `scratch` is a reusable
    /// buffer.
    pub(crate) fn learn(
        &mut self,
        context: &PreparedContext,
        item: &[HashedFeature],
        reward: f32,
        learning_rate: f32,
        scratch: &mut Vec<(u32, f32)>,
    ) {
        self.example(context, item, scratch);
        let prediction: f32 = scratch
            .iter()
            .map(|(index, value)| self.weights[*index as usize] * value)
            .sum();
        let error = prediction - reward;
        if error == 0.0 || !error.is_finite() {
            return;
        }
        // AdaGrad: accumulate each weight's squared gradient; its rate is the base rate
        // over the root of the sum, divided by the example's squared norm so that an
        // example of 250 features moves the prediction no faster than one of 5 (Vowpal
        // Wabbit's normalised updates divide by a running average of that norm).
        // `Σ rate·x²` is how fast the prediction moves.
        let mut norm = 0.0f32;
        let mut speed = 0.0f32;
        for (index, value) in scratch.iter() {
            let gradient = error * value;
            let accumulator = &mut self.squared_gradients[*index as usize];
            *accumulator += gradient * gradient;
            norm += value * value;
            if *accumulator > 0.0 {
                speed += value * value / accumulator.sqrt();
            }
        }
        let base_rate = learning_rate / norm;
        speed *= base_rate;
        if speed <= 0.0 || !speed.is_finite() {
            return;
        }
        // The invariant step: scaled so the prediction ends at `reward + error·exp(-speed)`.
        let step = (1.0 - (-speed).exp()) / speed;
        for (index, value) in scratch.iter() {
            let accumulator = self.squared_gradients[*index as usize];
            if accumulator > 0.0 {
                let rate = base_rate / accumulator.sqrt();
                self.weights[*index as usize] -= step * rate * error * value;
            }
        }
    }
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
        let mut scratch = Vec::new();
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
}
