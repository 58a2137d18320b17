//! A small unseeded hasher for short string keys.
//!
//! Flag keys and context attribute names are short and not chosen by an attacker who could
//! profit from collisions (a request can only slow down its own lookups), so the engine
//! trades SipHash's flooding resistance for a multiply-rotate hash that costs a few
//! nanoseconds. Being unseeded also lets the compiler hash attribute names once and the
//! context compare those hashes at evaluation time.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

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
        // Tables pick buckets from the low bits, which a multiply leaves depending only
        // on the low bits of its input; folding the high half down spreads every byte.
        let hash = (self.hash ^ (self.hash >> 32)).wrapping_mul(MULTIPLIER);
        hash ^ (hash >> 29)
    }
}

pub(crate) type FastBuildHasher = BuildHasherDefault<FastHasher>;
pub(crate) type FastHashMap<K, V> = HashMap<K, V, FastBuildHasher>;
pub(crate) type FastHashSet<K> = HashSet<K, FastBuildHasher>;

/// The hash of a key for a [`HashIndex`]. Starting from the length spares the terminator
/// byte that `Hash for str` adds to tell "ab" + "c" from "a" + "bc".
#[inline(always)]
pub(crate) fn hash_str(key: &str) -> u64 {
    let mut hasher = FastHasher {
        hash: key.len() as u64,
    };
    hasher.write(key.as_bytes());
    hasher.finish()
}

/// String equality that compares short strings inline with a few overlapping word
/// loads. Keys and variant names are short, and for them a library `memcmp` call, or a
/// byte loop with a data-dependent exit, costs more than the comparison itself.
#[inline(always)]
pub(crate) fn same_str(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    let length = left.len();
    if length != right.len() {
        return false;
    }
    match length {
        0 => true,
        1..=3 => {
            // Positions 0, middle and last cover every byte of up to three.
            let middle = length / 2;
            left[0] == right[0]
                && left[middle] == right[middle]
                && left[length - 1] == right[length - 1]
        }
        4..=7 => {
            word32(left, 0) == word32(right, 0)
                && word32(left, length - 4) == word32(right, length - 4)
        }
        8..=16 => {
            word64(left, 0) == word64(right, 0)
                && word64(left, length - 8) == word64(right, length - 8)
        }
        _ => left == right,
    }
}

#[inline(always)]
fn word32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(word)
}

#[inline(always)]
fn word64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(word)
}

/// An open-addressing table from precomputed hashes to positions in a slice the caller
/// owns. Lookups compare the stored hash before asking the caller to compare keys, so a
/// miss rarely touches a key at all.
#[derive(Debug, Clone)]
pub(crate) struct HashIndex {
    slots: Box<[Slot]>,
    mask: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    position: u32,
}

const EMPTY: u32 = u32::MAX;

impl HashIndex {
    /// Indexes `hashes`, whose positions are the positions of the keys they hash.
    pub(crate) fn new(hashes: &[u64]) -> HashIndex {
        // At most half full, so that probes stay short.
        let capacity = (hashes.len() * 2).next_power_of_two().max(8);
        let mut slots = vec![
            Slot {
                hash: 0,
                position: EMPTY
            };
            capacity
        ]
        .into_boxed_slice();
        let mask = capacity - 1;
        for (position, &hash) in hashes.iter().enumerate() {
            let mut slot = hash as usize & mask;
            while slots[slot].position != EMPTY {
                slot = (slot + 1) & mask;
            }
            slots[slot] = Slot {
                hash,
                position: u32::try_from(position).expect("fewer than 2^32 keys"),
            };
        }
        HashIndex { slots, mask }
    }

    /// The position of the key with `hash` for which `is_key` holds.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, mut is_key: impl FnMut(usize) -> bool) -> Option<usize> {
        let mut slot = hash as usize & self.mask;
        loop {
            let candidate = self.slots[slot];
            if candidate.position == EMPTY {
                return None;
            }
            if candidate.hash == hash && is_key(candidate.position as usize) {
                return Some(candidate.position as usize);
            }
            slot = (slot + 1) & self.mask;
        }
    }
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
    fn the_index_finds_every_key_and_no_other() {
        let keys: Vec<String> = (0..100).map(|i| format!("key-{i}")).collect();
        let hashes: Vec<u64> = keys.iter().map(|key| hash_str(key)).collect();
        let index = HashIndex::new(&hashes);
        for (position, key) in keys.iter().enumerate() {
            assert_eq!(
                index.find(hash_str(key), |found| same_str(&keys[found], key)),
                Some(position)
            );
        }
        assert_eq!(
            index.find(hash_str("key-100"), |found| same_str(
                &keys[found],
                "key-100"
            )),
            None
        );
        let empty = HashIndex::new(&[]);
        assert_eq!(empty.find(hash_str("x"), |_| true), None);
    }

    #[test]
    fn short_and_long_strings_compare_correctly() {
        let samples = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcdefg",
            "abcdefgh",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        for sample in samples {
            assert!(same_str(sample, sample));
            for position in 0..sample.len() {
                let mut changed = sample.as_bytes().to_vec();
                changed[position] = b'_';
                assert!(
                    !same_str(sample, std::str::from_utf8(&changed).unwrap()),
                    "{sample} at {position}"
                );
            }
        }
        assert!(same_str("userId", "userId"));
        assert!(!same_str("userId", "userid"));
        assert!(!same_str("a", "ab"));
        let long = "a-rather-long-attribute-name";
        assert!(same_str(long, long));
        assert!(!same_str(long, "a-rather-long-attribute-namE"));
    }

    #[test]
    fn equal_keys_hash_equal() {
        assert_eq!(hash_str("userId"), hash_str(&String::from("userId")));
        assert_ne!(hash_str("userId"), hash_str("userid"));
    }
}
