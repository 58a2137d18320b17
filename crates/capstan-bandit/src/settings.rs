//! A surface's learner settings, and their validation.

use serde::{Deserialize, Serialize};

/// How one surface's learner learns, explores, tests new content and holds out traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearnerSettings {
    /// The weight table has `2^hash_bits` entries, whatever the number of users, items or
    /// features: hashing bounds memory, collisions are the price. Each entry is 12 bytes
    /// (the weight, its AdaGrad accumulator and its scale, the largest `|x|` it has seen,
    /// for the normalised updates), so 10 to 26 bits take 12 KiB to 768 MiB; 20 (12 MiB)
    /// by default.
    pub hash_bits: u8,
    /// The base learning rate: each weight moves by `learning_rate / √n` of the error
    /// (shared among the example's features) after `n` updates. A pure number: every step
    /// is a share of the error, so multiplying every reward by a constant changes no
    /// ranking. Positive; 0.5 by default, as Vowpal Wabbit's (0.2 to 0.5 did equally well
    /// on the synthetic world).
    pub learning_rate: f64,
    /// The most probability SquareCB may give to items other than the greedy one, 0 to 1.
    /// 0.2 by default. Content testing and the holdout come on top of it.
    pub exploration: f64,
    /// SquareCB's gamma is `scale * t^exponent` for `t` decisions learned, and weighs
    /// gaps between predicted rewards in units of the rewards' standard deviation: the
    /// larger gamma, the closer to greedy. 10 and 0.5 by default, as Vowpal Wabbit's.
    pub squarecb_gamma_scale: f64,
    pub squarecb_gamma_exponent: f64,
    /// Share of decisions that may go to items under test, 0 to 0.5; 0.05 by default. Only
    /// decisions with an item under test among their candidates spend it.
    pub testing_budget: f64,
    /// An item is under test until it has had this many impressions, or from a tenth of
    /// them on until its mean reward is more than three standard errors from the
    /// surface's mean; then it graduates and competes on merit alone. 0 disables content testing. 1,000 by default: at a
    /// click rate of 5% that is about 50 clicks, a standard error near 0.7 points.
    pub graduation_impressions: u64,
    /// Share of decisions served by the global, non-personalised ranking so that the lift
    /// of personalisation can be measured, 0 to 0.5; 0.05 by default.
    pub holdout: f64,
}

impl Default for LearnerSettings {
    fn default() -> LearnerSettings {
        LearnerSettings {
            hash_bits: 20,
            learning_rate: 0.5,
            exploration: 0.2,
            squarecb_gamma_scale: 10.0,
            squarecb_gamma_exponent: 0.5,
            testing_budget: 0.05,
            graduation_impressions: 1_000,
            holdout: 0.05,
        }
    }
}

/// A setting out of its range; `field` is its camelCase name, as in the JSON form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    pub field: &'static str,
    pub message: &'static str,
}

pub(crate) const MIN_HASH_BITS: u8 = 10;
pub(crate) const MAX_HASH_BITS: u8 = 26;

impl LearnerSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |field, message| Err(SettingsError { field, message });
        if !(MIN_HASH_BITS..=MAX_HASH_BITS).contains(&self.hash_bits) {
            return fail("hashBits", "must be between 10 and 26");
        }
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.learning_rate <= 100.0)
        {
            return fail("learningRate", "must be above 0 and at most 100");
        }
        if !(0.0..=1.0).contains(&self.exploration) {
            return fail("exploration", "must be between 0 and 1");
        }
        if !(self.squarecb_gamma_scale.is_finite() && self.squarecb_gamma_scale >= 0.0) {
            return fail("squarecbGammaScale", "must be a number of 0 or more");
        }
        if !(0.0..=1.0).contains(&self.squarecb_gamma_exponent) {
            return fail("squarecbGammaExponent", "must be between 0 and 1");
        }
        if !(0.0..=0.5).contains(&self.testing_budget) {
            return fail("testingBudget", "must be between 0 and 0.5");
        }
        if !(0.0..=0.5).contains(&self.holdout) {
            return fail("holdout", "must be between 0 and 0.5");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_bad_field() {
        assert_eq!(LearnerSettings::default().validate(), Ok(()));
        type Spoil = fn(&mut LearnerSettings);
        let cases: [(&str, Spoil); 9] = [
            ("hashBits", |settings| settings.hash_bits = 9),
            ("hashBits", |settings| settings.hash_bits = 27),
            ("learningRate", |settings| settings.learning_rate = 0.0),
            ("exploration", |settings| settings.exploration = f64::NAN),
            ("squarecbGammaScale", |settings| {
                settings.squarecb_gamma_scale = -1.0
            }),
            ("squarecbGammaExponent", |settings| {
                settings.squarecb_gamma_exponent = 2.0
            }),
            ("testingBudget", |settings| settings.testing_budget = 0.6),
            ("holdout", |settings| settings.holdout = -0.01),
            ("learningRate", |settings| {
                settings.learning_rate = f64::INFINITY
            }),
        ];
        for (field, spoil) in cases {
            let mut settings = LearnerSettings::default();
            spoil(&mut settings);
            let error = settings.validate().expect_err(field);
            assert_eq!(error.field, field);
            assert!(error.to_string().starts_with(field), "{error}");
        }
    }

    #[test]
    fn settings_read_and_write_camel_case() {
        let json = serde_json::to_value(LearnerSettings::default()).expect("serialises");
        assert_eq!(json["hashBits"], 20);
        assert_eq!(json["testingBudget"], 0.05);
        let back: LearnerSettings = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back, LearnerSettings::default());
    }
}
