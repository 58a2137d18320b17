//! The saved form of a learner: a versioned, little-endian binary.
//!
//! ```text
//! magic "CAPSTANB" | version u32 | body | checksum u64 (of everything before it)
//! body: settings | decisions learned u64 | 4 reward summaries (surface, personalised,
//!       holdout, testing: count u64, mean f64, squared deviations f64)
//!       | weights: encoding u8, then 0 = dense: 2^bits × (weight f32, updates f32, scale f32),
//!                                    1 = sparse: count u32, count × (index u32, weight f32,
//!                                                updates f32, scale f32)
//!       | items: count u32, count × (id length u32, id UTF-8, impressions u64,
//!                rewarded u64, reward sum f64, first impression and graduation times:
//!                each a presence byte and an i64)
//! ```
//!
//! Version 3 counts each weight's updates where versions 1 and 2 kept AdaGrad's sum of
//! squared gradients, in the same place. Version 2 added each weight's scale (the largest
//! `|x|` it was updated with, for the normalised updates). Older versions still load:
//! - a sum of squared gradients becomes a count by dividing it by the surface's mean
//!   squared reward, the size of a squared error before anything is learned: a count of
//!   the right order, so the weight's rate carries on about where it was;
//! - without scales, weights get a scale of 0, which the next update of each sets to the
//!   `|x|` it sees (Vowpal Wabbit starts every weight so).
//!
//! Saving always writes version 3.
//!
//! A young model touches few of its weights, so it is saved sparse until that stops being
//! smaller. Items are written sorted by id, so saving the same learner twice gives the same
//! bytes. Loading checks everything and never panics: a checksum catches corruption, every
//! length is checked against the bytes left before anything is allocated, and numbers
//! that would make the learner misbehave (a weight that is not finite, a negative
//! accumulator or scale) are refused.

use std::collections::HashMap;

use crate::learner::{ItemRecord, Learner};
use crate::model::{Model, WeightState};
use crate::settings::{LearnerSettings, SettingsError};
use crate::statistics::RunningMean;

const MAGIC: &[u8; 8] = b"CAPSTANB";
const VERSION: u32 = 3;
/// Weight scales, and AdaGrad's squared gradients in place of the update counts.
const VERSION_WITH_SQUARED_GRADIENTS: u32 = 2;
/// The first version: no weight scales.
const VERSION_WITHOUT_SCALES: u32 = 1;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const CHECKSUM_SEED: u64 = 0x00c0_ffee_5a1e_0001;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    #[error("not a saved Capstan bandit model")]
    NotAModel,
    #[error("saved model format version {0} is not supported (this build reads versions 1 to 3)")]
    UnsupportedVersion(u32),
    #[error("saved model is truncated")]
    Truncated,
    #[error("saved model is corrupt: checksum mismatch")]
    ChecksumMismatch,
    #[error("saved model has invalid settings: {0}")]
    InvalidSettings(#[from] SettingsError),
    #[error("saved model is invalid: {0}")]
    Invalid(&'static str),
}

impl Learner {
    /// The learner in its saved form (see the module's format); [`Learner::load`] reads it
    /// back into a learner that ranks identically.
    pub fn save(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());

        let settings = &self.settings;
        out.push(settings.hash_bits);
        for value in [
            settings.learning_rate,
            settings.exploration,
            settings.squarecb_gamma_scale,
            settings.squarecb_gamma_exponent,
            settings.testing_budget,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&settings.graduation_impressions.to_le_bytes());
        out.extend_from_slice(&settings.holdout.to_le_bytes());

        out.extend_from_slice(&self.decisions_learned.to_le_bytes());
        for summary in [
            &self.surface_rewards,
            &self.personalized_rewards,
            &self.holdout_rewards,
            &self.testing_rewards,
        ] {
            out.extend_from_slice(&summary.count.to_le_bytes());
            out.extend_from_slice(&summary.mean.to_le_bytes());
            out.extend_from_slice(&summary.squared_deviations.to_le_bytes());
        }

        let model = &self.model;
        let touched: Vec<u32> = (0..model.weights.len())
            .filter(|index| {
                model.weights[*index] != 0.0 || model.states[*index] != WeightState::default()
            })
            .map(|index| index as u32)
            .collect();
        let write = |out: &mut Vec<u8>, weight: f32, state: &WeightState| {
            out.extend_from_slice(&weight.to_le_bytes());
            out.extend_from_slice(&state.updates.to_le_bytes());
            out.extend_from_slice(&state.scale.to_le_bytes());
        };
        // Sparse entries take 16 bytes, dense ones 12.
        if touched.len() * 16 < model.weights.len() * 12 {
            out.push(SPARSE);
            out.extend_from_slice(&(touched.len() as u32).to_le_bytes());
            for index in touched {
                out.extend_from_slice(&index.to_le_bytes());
                let index = index as usize;
                write(&mut out, model.weights[index], &model.states[index]);
            }
        } else {
            out.push(DENSE);
            for (weight, state) in model.weights.iter().zip(&model.states) {
                write(&mut out, *weight, state);
            }
        }

        let mut items: Vec<(&String, &ItemRecord)> = self.items.iter().collect();
        items.sort_by(|left, right| left.0.cmp(right.0));
        out.extend_from_slice(&(items.len() as u32).to_le_bytes());
        for (id, record) in items {
            out.extend_from_slice(&(id.len() as u32).to_le_bytes());
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&record.impressions.to_le_bytes());
            out.extend_from_slice(&record.rewarded.to_le_bytes());
            out.extend_from_slice(&record.reward_sum.to_le_bytes());
            for time in [record.first_impression_ms, record.graduated_at_ms] {
                out.push(u8::from(time.is_some()));
                out.extend_from_slice(&time.unwrap_or(0).to_le_bytes());
            }
        }

        let checksum = crate::features::hash_bytes(CHECKSUM_SEED, &out);
        out.extend_from_slice(&checksum.to_le_bytes());
        out
    }

    /// Reads a learner saved by [`Learner::save`]; an error, never a panic, for anything
    /// else.
    pub fn load(bytes: &[u8]) -> Result<Learner, LoadError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(LoadError::NotAModel);
        }
        let mut header = Reader {
            bytes: &bytes[MAGIC.len()..],
        };
        let version = header.u32()?;
        if !(VERSION_WITHOUT_SCALES..=VERSION).contains(&version) {
            return Err(LoadError::UnsupportedVersion(version));
        }
        let Some(body_end) = bytes
            .len()
            .checked_sub(8)
            .filter(|end| *end >= MAGIC.len() + 4)
        else {
            return Err(LoadError::Truncated);
        };
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&bytes[body_end..]);
        if u64::from_le_bytes(checksum)
            != crate::features::hash_bytes(CHECKSUM_SEED, &bytes[..body_end])
        {
            return Err(LoadError::ChecksumMismatch);
        }
        let mut reader = Reader {
            bytes: &bytes[MAGIC.len() + 4..body_end],
        };

        let settings = LearnerSettings {
            hash_bits: reader.u8()?,
            learning_rate: reader.f64()?,
            exploration: reader.f64()?,
            squarecb_gamma_scale: reader.f64()?,
            squarecb_gamma_exponent: reader.f64()?,
            testing_budget: reader.f64()?,
            graduation_impressions: reader.u64()?,
            holdout: reader.f64()?,
        };
        settings.validate()?;

        let decisions_learned = reader.u64()?;
        let mut summaries = [RunningMean::default(); 4];
        for summary in &mut summaries {
            summary.count = reader.u64()?;
            summary.mean = reader.finite_f64("reward summary")?;
            summary.squared_deviations = reader.finite_f64("reward summary")?;
        }

        let size = 1usize << settings.hash_bits;
        let with_scales = version != VERSION_WITHOUT_SCALES;
        // What one update counted in an older version's sum of squared gradients.
        let per_update = if version <= VERSION_WITH_SQUARED_GRADIENTS {
            let surface = &summaries[0];
            let mean_square = if surface.count == 0 {
                0.0
            } else {
                surface.squared_deviations / surface.count as f64 + surface.mean * surface.mean
            };
            if mean_square.is_finite() && mean_square > 0.0 {
                mean_square as f32
            } else {
                1.0
            }
        } else {
            1.0
        };
        let state_size = if with_scales { 8 } else { 4 };
        let (weights, states) = match reader.u8()? {
            DENSE => {
                reader.require(size, 4 + state_size)?;
                let mut weights = Vec::with_capacity(size);
                let mut states = Vec::with_capacity(size);
                for _ in 0..size {
                    weights.push(reader.finite_f32("weight")?);
                    states.push(reader.weight_state(with_scales, per_update)?);
                }
                (weights, states)
            }
            SPARSE => {
                let count = reader.u32()? as usize;
                reader.require(count, 8 + state_size)?;
                let mut weights = vec![0.0; size];
                let mut states = vec![WeightState::default(); size];
                for _ in 0..count {
                    let index = reader.u32()? as usize;
                    if index >= size {
                        return Err(LoadError::Invalid("weight index out of range"));
                    }
                    weights[index] = reader.finite_f32("weight")?;
                    states[index] = reader.weight_state(with_scales, per_update)?;
                }
                (weights, states)
            }
            _ => return Err(LoadError::Invalid("unknown weight encoding")),
        };

        let item_count = reader.u32()? as usize;
        // The smallest item record is 46 bytes.
        reader.require(item_count, 46)?;
        let mut items = HashMap::with_capacity(item_count);
        for _ in 0..item_count {
            let length = reader.u32()? as usize;
            let id = std::str::from_utf8(reader.take(length)?)
                .map_err(|_| LoadError::Invalid("item id is not UTF-8"))?
                .to_owned();
            let record = ItemRecord {
                impressions: reader.u64()?,
                rewarded: reader.u64()?,
                reward_sum: reader.finite_f64("item reward sum")?,
                first_impression_ms: reader.optional_i64()?,
                graduated_at_ms: reader.optional_i64()?,
            };
            if items.insert(id, record).is_some() {
                return Err(LoadError::Invalid("item id saved twice"));
            }
        }
        if !reader.bytes.is_empty() {
            return Err(LoadError::Invalid("bytes after the end"));
        }

        let mut learner = Learner::from_parts(
            settings.clone(),
            Model::from_tables(settings.hash_bits, weights, states),
        );
        learner.decisions_learned = decisions_learned;
        let [surface, personalized, holdout, testing] = summaries;
        learner.surface_rewards = surface;
        learner.personalized_rewards = personalized;
        learner.holdout_rewards = holdout;
        learner.testing_rewards = testing;
        learner.items = items;
        Ok(learner)
    }
}

/// Reads little-endian numbers off the front of a slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], LoadError> {
        if length > self.bytes.len() {
            return Err(LoadError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(taken)
    }

    /// Fails unless `count` records of at least `size` bytes can fit in what is left:
    /// checked before allocating, so a forged count cannot ask for gigabytes.
    fn require(&self, count: usize, size: usize) -> Result<(), LoadError> {
        match count.checked_mul(size) {
            Some(needed) if needed <= self.bytes.len() => Ok(()),
            _ => Err(LoadError::Truncated),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LoadError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, LoadError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, LoadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, LoadError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, LoadError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn finite_f64(&mut self, what: &'static str) -> Result<f64, LoadError> {
        let value = self.f64()?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(LoadError::Invalid(what))
        }
    }

    fn finite_f32(&mut self, what: &'static str) -> Result<f32, LoadError> {
        let value = f32::from_le_bytes(self.array()?);
        if value.is_finite() {
            Ok(value)
        } else {
            Err(LoadError::Invalid(what))
        }
    }

    /// A weight's updates (an older version's accumulator over `per_update`) and, unless
    /// the format predates them, its scale: finite and not negative. Without one the scale
    /// is 0, unknown until the weight's next update.
    fn weight_state(
        &mut self,
        with_scale: bool,
        per_update: f32,
    ) -> Result<WeightState, LoadError> {
        let accumulator = self.finite_f32("weight")?;
        if accumulator < 0.0 {
            return Err(LoadError::Invalid("negative weight accumulator"));
        }
        let updates = (accumulator / per_update).min(f32::MAX);
        let scale = if with_scale {
            self.finite_f32("weight scale")?
        } else {
            0.0
        };
        if scale < 0.0 {
            return Err(LoadError::Invalid("negative weight scale"));
        }
        Ok(WeightState { updates, scale })
    }

    fn optional_i64(&mut self) -> Result<Option<i64>, LoadError> {
        let present = self.u8()?;
        let value = i64::from_le_bytes(self.array()?);
        match present {
            0 => Ok(None),
            1 => Ok(Some(value)),
            _ => Err(LoadError::Invalid("presence byte is neither 0 nor 1")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix64;
    use crate::test_world::{World, candidate, candidates};

    fn trained(hash_bits: u8, decisions: usize) -> Learner {
        let mut learner = Learner::new(LearnerSettings {
            hash_bits,
            graduation_impressions: 300,
            ..LearnerSettings::default()
        })
        .expect("valid");
        let mut world = World::new(21);
        let candidates = candidates();
        for step in 0..decisions {
            world.step(&mut learner, &candidates, step as i64);
        }
        learner
    }

    #[test]
    fn a_saved_and_loaded_learner_ranks_identically() {
        // 16 bits after 2,000 decisions is saved sparse; 10 bits is saved dense.
        for (hash_bits, encoding) in [(16, SPARSE), (10, DENSE)] {
            let mut learner = trained(hash_bits, 2_000);
            // Users with ids of their own touch many weights.
            let known = candidates();
            for user in 0..1_000 {
                let context = crate::features::Features(vec![crate::features::Feature::text(
                    "user",
                    "id",
                    user.to_string(),
                )]);
                learner
                    .learn(
                        &context,
                        &known,
                        user % 4,
                        0.5,
                        1.0,
                        crate::learner::Policy::Personalized,
                    )
                    .expect("valid");
            }
            let saved = learner.save();
            assert_eq!(saved[MAGIC.len() + 4 + 1 + 7 * 8 + 8 + 4 * 24], encoding);
            let loaded = Learner::load(&saved).expect("loads");
            assert_eq!(loaded.save(), saved, "saving is deterministic");
            assert_eq!(loaded.item_stats(), learner.item_stats());
            assert_eq!(loaded.lift(), learner.lift());
            assert_eq!(loaded.decisions_learned(), learner.decisions_learned());
            assert_eq!(loaded.settings(), learner.settings());

            let mut with_new = candidates();
            with_new.push(candidate("fresh", "news"));
            let mut world = World::new(99);
            for seed in 0..500 {
                let (_, context) = world.next_context();
                assert_eq!(
                    loaded.rank(&context, &with_new, seed),
                    learner.rank(&context, &with_new, seed)
                );
                for candidate in &with_new {
                    assert_eq!(
                        loaded.predict(&context, candidate),
                        learner.predict(&context, candidate)
                    );
                }
            }
        }
    }

    /// The same learner in version 1's form: the scales left out of every weight entry.
    fn as_version_1(saved: &[u8]) -> Vec<u8> {
        let encoding_at = MAGIC.len() + 4 + 1 + 7 * 8 + 8 + 4 * 24;
        let mut old = saved[..encoding_at + 1].to_vec();
        old[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&VERSION_WITHOUT_SCALES.to_le_bytes());
        let (entries, entry_size, mut at) = match saved[encoding_at] {
            SPARSE => {
                let count = &saved[encoding_at + 1..encoding_at + 5];
                old.extend_from_slice(count);
                let count = u32::from_le_bytes(count.try_into().expect("4 bytes"));
                (count as usize, 16, encoding_at + 5)
            }
            _ => (1usize << saved[MAGIC.len() + 4], 12, encoding_at + 1),
        };
        for _ in 0..entries {
            old.extend_from_slice(&saved[at..at + entry_size - 4]);
            at += entry_size;
        }
        old.extend_from_slice(&saved[at..]);
        resealed(old)
    }

    #[test]
    fn a_version_2_models_squared_gradients_become_update_counts() {
        let learner = trained(12, 1_000);
        let saved = learner.save();
        let mut old = saved.clone();
        old[MAGIC.len()..MAGIC.len() + 4]
            .copy_from_slice(&VERSION_WITH_SQUARED_GRADIENTS.to_le_bytes());
        let old = Learner::load(&resealed(old)).expect("version 2 loads");
        let rewards = &learner.surface_rewards;
        let mean_square =
            rewards.squared_deviations / rewards.count as f64 + rewards.mean * rewards.mean;
        assert!(mean_square > 0.0 && mean_square < 1.0, "{mean_square}");
        let mut converted = 0;
        for (new, old) in learner.model.states.iter().zip(&old.model.states) {
            assert_eq!(new.scale, old.scale);
            let expected = new.updates / mean_square as f32;
            assert!(
                (old.updates - expected).abs() <= 1e-5 * expected,
                "{old:?} {new:?}"
            );
            converted += usize::from(new.updates > 0.0);
        }
        assert!(converted > 10, "{converted}");
        assert_eq!(old.model.weights, learner.model.weights);
    }

    #[test]
    fn a_version_1_model_loads_and_learns_on() {
        // 16 bits is saved sparse; 10 bits, with users of their own, dense.
        for (hash_bits, users, encoding) in [(16, 0, SPARSE), (10, 1_000, DENSE)] {
            let mut learner = trained(hash_bits, 1_000);
            for user in 0..users {
                let context = crate::features::Features(vec![crate::features::Feature::text(
                    "user",
                    "id",
                    user.to_string(),
                )]);
                learner
                    .learn(
                        &context,
                        &candidates(),
                        user % 4,
                        0.5,
                        1.0,
                        crate::learner::Policy::Personalized,
                    )
                    .expect("valid");
            }
            let saved = learner.save();
            assert_eq!(saved[MAGIC.len() + 4 + 1 + 7 * 8 + 8 + 4 * 24], encoding);
            let old = Learner::load(&as_version_1(&saved)).expect("version 1 loads");
            assert!(old.model.states.iter().all(|state| state.scale == 0.0));
            assert_eq!(old.model.weights, learner.model.weights);
            assert_eq!(old.item_stats(), learner.item_stats());
            assert_eq!(old.decisions_learned(), learner.decisions_learned());
            let mut world = World::new(5);
            for seed in 0..100 {
                let (_, context) = world.next_context();
                assert_eq!(
                    old.rank(&context, &candidates(), seed),
                    learner.rank(&context, &candidates(), seed)
                );
            }
            // It learns on, and saves in the current version.
            let mut old = old;
            for step in 0..200 {
                world.step(&mut old, &candidates(), step);
            }
            let saved = old.save();
            assert_eq!(saved[MAGIC.len()..MAGIC.len() + 4], VERSION.to_le_bytes());
            assert!(old.model.states.iter().any(|state| state.scale > 0.0));
            assert!(Learner::load(&saved).is_ok());
        }
    }

    #[test]
    fn load_refuses_garbage_without_panicking() {
        let saved = trained(10, 300).save();
        assert_eq!(Learner::load(&[]).err(), Some(LoadError::NotAModel));
        assert_eq!(
            Learner::load(b"{\"weights\": []}").err(),
            Some(LoadError::NotAModel)
        );
        assert_eq!(Learner::load(MAGIC).err(), Some(LoadError::Truncated));
        // Every truncation.
        for length in 0..saved.len() {
            assert!(
                Learner::load(&saved[..length]).is_err(),
                "truncated to {length}"
            );
        }
        // Any flipped bit is caught by the checksum.
        for position in (MAGIC.len() + 4..saved.len()).step_by(7) {
            let mut corrupt = saved.clone();
            corrupt[position] ^= 0x10;
            assert!(Learner::load(&corrupt).is_err(), "flipped at {position}");
        }
        // Random bytes, with and without the magic.
        let mut random = SplitMix64::new(4);
        for length in [1usize, 13, 100, 5_000] {
            let mut bytes: Vec<u8> = (0..length).map(|_| random.next_u64() as u8).collect();
            assert!(Learner::load(&bytes).is_err());
            bytes.splice(0..0, MAGIC.iter().copied().chain(VERSION.to_le_bytes()));
            assert!(Learner::load(&bytes).is_err());
        }
        // Versions yet to come, and none.
        for version in [0u32, VERSION + 1] {
            let mut other_version = saved.clone();
            other_version[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&version.to_le_bytes());
            assert_eq!(
                Learner::load(&other_version).err(),
                Some(LoadError::UnsupportedVersion(version))
            );
        }
        // The current version's bytes labelled version 1 are refused (no panic): the weights no
        // longer line up with the items.
        let mut relabelled = saved.clone();
        relabelled[MAGIC.len()..MAGIC.len() + 4]
            .copy_from_slice(&VERSION_WITHOUT_SCALES.to_le_bytes());
        assert!(Learner::load(&resealed(relabelled)).is_err());
    }

    /// Rewrites the checksum, so the checks behind it are reached.
    fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
        let body_end = bytes.len() - 8;
        let checksum = crate::features::hash_bytes(CHECKSUM_SEED, &bytes[..body_end]);
        bytes[body_end..].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    #[test]
    fn load_checks_what_the_checksum_cannot() {
        let saved = trained(10, 300).save();
        let settings_start = MAGIC.len() + 4;

        let mut too_many_bits = saved.clone();
        too_many_bits[settings_start] = 40;
        assert!(matches!(
            Learner::load(&resealed(too_many_bits)),
            Err(LoadError::InvalidSettings(SettingsError {
                field: "hashBits",
                ..
            }))
        ));

        let mut bad_exploration = saved.clone();
        bad_exploration[settings_start + 9..settings_start + 17]
            .copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(matches!(
            Learner::load(&resealed(bad_exploration)),
            Err(LoadError::InvalidSettings(SettingsError {
                field: "exploration",
                ..
            }))
        ));

        // A negative accumulator or scale in a sparse entry (index u32, weight,
        // accumulator, scale, after the encoding byte and the count).
        let sparse = trained(16, 300).save();
        let encoding_at = settings_start + 1 + 7 * 8 + 8 + 4 * 24;
        assert_eq!(sparse[encoding_at], SPARSE);
        let entry = encoding_at + 1 + 4;
        for (offset, message) in [
            (8, "negative weight accumulator"),
            (12, "negative weight scale"),
        ] {
            let mut negative = sparse.clone();
            negative[entry + offset..entry + offset + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
            assert_eq!(
                Learner::load(&resealed(negative)).err(),
                Some(LoadError::Invalid(message))
            );
        }
        let mut infinite_scale = sparse.clone();
        infinite_scale[entry + 12..entry + 16].copy_from_slice(&f32::INFINITY.to_le_bytes());
        assert_eq!(
            Learner::load(&resealed(infinite_scale)).err(),
            Some(LoadError::Invalid("weight scale"))
        );

        // A forged item count asks for more than is there: refused before allocating.
        let mut learner = trained(10, 0);
        learner.record_impression("only", 1);
        let small = learner.save();
        let count_at = small.len() - 8 - (4 + 4 + 8 + 8 + 8 + 9 + 9) - 4;
        assert_eq!(small[count_at..count_at + 4], 1u32.to_le_bytes());
        let mut forged = small.clone();
        forged[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Learner::load(&resealed(forged)).err(),
            Some(LoadError::Truncated)
        );

        let mut extra = small[..small.len() - 8].to_vec();
        extra.push(0);
        extra.extend_from_slice(&[0; 8]);
        assert_eq!(
            Learner::load(&resealed(extra)).err(),
            Some(LoadError::Invalid("bytes after the end"))
        );
    }
}
