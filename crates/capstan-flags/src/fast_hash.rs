//! A small unseeded hasher for short string keys.
//!
//! Flag keys and context attribute names are short and not chosen by an attacker who could
//! profit from collisions (a request can only slow down its own lookups), so the engine
//! trades SipHash's flooding resistance for a multiply-rotate hash that costs a few
//! nanoseconds. Being unseeded also lets the compiler hash attribute names once and the
//! context compare those hashes at evaluation time.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

const MULTIPLIER: u64 = 0xf135_7aea_2e62_a9c5;

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher {
    hash: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(MULTIPLIER).rotate_left(26);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The table picks buckets from the low bits, which a multiply alone leaves weak
        // for keys that differ only in their last bytes; one more mix spreads them.
        let hash = self.hash;
        (hash ^ (hash >> 32)).wrapping_mul(MULTIPLIER) ^ (hash >> 29)
    }
}

pub(crate) type FastBuildHasher = BuildHasherDefault<FastHasher>;
pub(crate) type FastHashMap<K, V> = HashMap<K, V, FastBuildHasher>;
pub(crate) type FastHashSet<K> = HashSet<K, FastBuildHasher>;

/// The hash a [`FastHashMap`] would compute for `key`, for tables the engine builds itself.
#[inline]
pub(crate) fn hash_str(key: &str) -> u64 {
    FastBuildHasher::default().hash_one(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_keys_land_in_different_low_bits() {
        let buckets: HashSet<u64> = (0..64)
            .map(|i| hash_str(&format!("flag-{i}")) & 63)
            .collect();
        assert!(
            buckets.len() > 32,
            "only {} distinct buckets of 64",
            buckets.len()
        );
    }

    #[test]
    fn equal_keys_hash_equal() {
        assert_eq!(hash_str("userId"), hash_str(&String::from("userId")));
        assert_ne!(hash_str("userId"), hash_str("userid"));
    }
}
