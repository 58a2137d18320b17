//! Features as callers give them, and their hashed form as the model reads them.
//!
//! A text feature is an indicator: `namespace`, `name` and `value` are hashed together and
//! the feature's value is 1, so `user.country=FR` and `user.country=DE` get weights of
//! their own. A number keeps its value: `namespace` and `name` are hashed and the weight
//! is multiplied by the number, so `user.age=30` and `user.age=31` share one weight.
//! Numbers need no scaling: the model's updates are normalised per weight by the largest
//! `|x|` it has seen, so an age of 63 or a price of 199 learns like a share.
//! Booleans are text (`"true"` or `"false"`, see [`Feature::boolean`]): as indicators,
//! `false` gets a weight of its own, which a number 0 never would.
//!
//! The hash is part of the saved model's format: a saved model only means something to
//! the same hash, so changing `hash_parts` or the seeds needs a new format version.

/// The value of one feature.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    /// A category: hashed with the namespace and the name into an indicator feature.
    Text(String),
    /// A quantity: multiplies the weight of its namespace and name. Numbers that are not
    /// finite are ignored, as if the feature were absent, so one bad input cannot poison
    /// the weights.
    Number(f64),
}

/// One feature of a context or of an item.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub namespace: String,
    pub name: String,
    pub value: FeatureValue,
}

impl Feature {
    pub fn text(
        namespace: impl Into<String>,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Feature {
        Feature {
            namespace: namespace.into(),
            name: name.into(),
            value: FeatureValue::Text(value.into()),
        }
    }

    pub fn number(namespace: impl Into<String>, name: impl Into<String>, value: f64) -> Feature {
        Feature {
            namespace: namespace.into(),
            name: name.into(),
            value: FeatureValue::Number(value),
        }
    }

    /// A boolean is the text `"true"` or `"false"`, so each of the two has its own weight.
    pub fn boolean(namespace: impl Into<String>, name: impl Into<String>, value: bool) -> Feature {
        Feature::text(namespace, name, if value { "true" } else { "false" })
    }
}

/// The features of a context (a user, a page, a time of day) or of an item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features(pub Vec<Feature>);

/// One item that may be shown: its stable id and its features.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub features: Features,
}

/// A feature after hashing: a 64-bit hash (the model takes the bits it needs) and the
/// value that multiplies its weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HashedFeature {
    pub(crate) hash: u64,
    pub(crate) value: f32,
}

/// Seeds that keep the kinds of hashed features apart: a text feature, a number feature
/// and an item id with the same bytes never share a hash.
const TEXT_SEED: u64 = 0x5ca1_ab1e_0000_0001;
const NUMBER_SEED: u64 = 0x5ca1_ab1e_0000_0002;
const ITEM_ID_SEED: u64 = 0x5ca1_ab1e_0000_0003;

const MULTIPLIER: u64 = 0x9fb2_1c65_1e98_df25;

/// A small, fast, platform-independent 64-bit hash of several byte strings: eight bytes
/// at a time, one multiply each, then the splitmix64 finaliser once, so every output bit
/// depends on every input bit. Each part's last word carries its length in its top byte,
/// so `"ab"` then `"c"` differs from `"a"` then `"bc"`. One finaliser per feature rather
/// than one per part: hashing was half the time of a ranking.
pub(crate) fn hash_parts(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut hash = seed;
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            hash = (hash ^ u64::from_le_bytes(word))
                .wrapping_mul(MULTIPLIER)
                .rotate_left(29);
        }
        // The tail is assembled in a register: copying it into a byte array and reading
        // that back as a u64 stalls on store forwarding, a third of a ranking's hashing.
        let mut word = (part.len() as u64 & 0xff) << 56;
        for (position, byte) in chunks.remainder().iter().enumerate() {
            word |= u64::from(*byte) << (8 * position);
        }
        hash = (hash ^ word).wrapping_mul(MULTIPLIER).rotate_left(29);
    }
    finalise(hash)
}

/// [`hash_parts`] of one byte string.
pub(crate) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    hash_parts(seed, &[bytes])
}

/// The splitmix64 finaliser.
pub(crate) fn finalise(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Hashes one feature; `None` for a number that is not finite (ignored, see
/// [`FeatureValue::Number`]).
pub(crate) fn hash_feature(feature: &Feature) -> Option<HashedFeature> {
    match &feature.value {
        FeatureValue::Text(text) => {
            let parts = [
                feature.namespace.as_bytes(),
                feature.name.as_bytes(),
                text.as_bytes(),
            ];
            Some(HashedFeature {
                hash: hash_parts(TEXT_SEED, &parts),
                value: 1.0,
            })
        }
        FeatureValue::Number(number) => {
            let value = *number as f32;
            if !value.is_finite() {
                return None;
            }
            let parts = [feature.namespace.as_bytes(), feature.name.as_bytes()];
            Some(HashedFeature {
                hash: hash_parts(NUMBER_SEED, &parts),
                value,
            })
        }
    }
}

/// The indicator feature of an item's id: it gives every item a bias of its own and, crossed
/// with the context, a taste of its own per context feature.
pub(crate) fn hash_item_id(id: &str) -> HashedFeature {
    HashedFeature {
        hash: hash_bytes(ITEM_ID_SEED, id.as_bytes()),
        value: 1.0,
    }
}

/// Hashes a list of features into `into` (cleared first), skipping ignored ones.
pub(crate) fn hash_features(features: &Features, into: &mut Vec<HashedFeature>) {
    into.clear();
    into.extend(features.0.iter().filter_map(hash_feature));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_hash_deterministically_and_apart() {
        let country = Feature::text("user", "country", "FR");
        assert_eq!(hash_feature(&country), hash_feature(&country.clone()));
        // Pinned: the saved model's weights are addressed by these hashes.
        assert_eq!(
            hash_feature(&country).map(|hashed| hashed.hash),
            Some(0x28bf_3392_e631_1fa6)
        );

        let other_value = Feature::text("user", "country", "DE");
        let other_namespace = Feature::text("page", "country", "FR");
        let shifted = Feature::text("use", "rcountry", "FR");
        // Parts of eight bytes or more, and a length that is a multiple of eight.
        let long = Feature::text("a_namespace", "a_long_name_x", "12345678");
        let long_shifted = Feature::text("a_namespace", "a_long_name_", "x12345678");
        let hashes = [
            &country,
            &other_value,
            &other_namespace,
            &shifted,
            &long,
            &long_shifted,
        ]
        .map(|feature| hash_feature(feature).map(|hashed| hashed.hash));
        for (index, hash) in hashes.iter().enumerate() {
            for other in &hashes[index + 1..] {
                assert_ne!(hash, other);
            }
        }

        // A number shares one weight across values, and carries its value.
        let age_30 = hash_feature(&Feature::number("user", "age", 30.0)).expect("finite");
        let age_31 = hash_feature(&Feature::number("user", "age", 31.0)).expect("finite");
        assert_eq!(age_30.hash, age_31.hash);
        assert_eq!(age_31.value, 31.0);
        assert_eq!(
            hash_feature(&Feature::number("user", "age", f64::NAN)),
            None
        );

        // An item id never collides with a text feature of the same bytes.
        assert_ne!(
            hash_item_id("a").hash,
            hash_feature(&Feature::text("", "", "a")).map_or(0, |hashed| hashed.hash)
        );
        assert_eq!(
            Feature::boolean("user", "subscriber", true),
            Feature::text("user", "subscriber", "true")
        );
    }
}
