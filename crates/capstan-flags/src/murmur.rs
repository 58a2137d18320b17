//! MurmurHash3 x86 32-bit, fed in pieces.
//!
//! flagd buckets `fractional` splits by the hash of the flag key followed by the targeting
//! key. Feeding both slices to one running hash gives the same value as hashing their
//! concatenation, without building that string on every evaluation.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Murmur3 {
    hash: u32,
    /// Bytes that did not yet fill a 4-byte block, little-endian.
    tail: u32,
    tail_len: u32,
    total_len: u32,
}

impl Murmur3 {
    pub(crate) fn new(seed: u32) -> Murmur3 {
        Murmur3 {
            hash: seed,
            tail: 0,
            tail_len: 0,
            total_len: 0,
        }
    }

    #[inline]
    fn scramble(block: u32) -> u32 {
        block.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
    }

    #[inline]
    fn mix_block(&mut self, block: u32) {
        self.hash ^= Murmur3::scramble(block);
        self.hash = self
            .hash
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    #[inline]
    pub(crate) fn write(&mut self, mut bytes: &[u8]) {
        // The reference hashes lengths modulo 2^32, so the truncation matches it.
        self.total_len = self.total_len.wrapping_add(bytes.len() as u32);
        while self.tail_len > 0 && self.tail_len < 4 {
            let Some((&byte, rest)) = bytes.split_first() else {
                return;
            };
            self.tail |= u32::from(byte) << (8 * self.tail_len);
            self.tail_len += 1;
            bytes = rest;
        }
        if self.tail_len == 4 {
            let block = self.tail;
            self.mix_block(block);
            self.tail = 0;
            self.tail_len = 0;
        }
        let mut blocks = bytes.chunks_exact(4);
        for block in &mut blocks {
            self.mix_block(u32::from_le_bytes([block[0], block[1], block[2], block[3]]));
        }
        for (index, &byte) in blocks.remainder().iter().enumerate() {
            self.tail |= u32::from(byte) << (8 * index);
        }
        self.tail_len = blocks.remainder().len() as u32;
    }

    #[inline]
    pub(crate) fn finish(self) -> u32 {
        let mut hash = self.hash;
        if self.tail_len > 0 {
            hash ^= Murmur3::scramble(self.tail);
        }
        hash ^= self.total_len;
        hash ^= hash >> 16;
        hash = hash.wrapping_mul(0x85eb_ca6b);
        hash ^= hash >> 13;
        hash = hash.wrapping_mul(0xc2b2_ae35);
        hash ^ (hash >> 16)
    }
}

/// The hash of `first` followed by `second`, with seed 0 as flagd uses.
#[inline]
pub(crate) fn murmur3_x86_32_of_pair(first: &[u8], second: &[u8]) -> u32 {
    let mut hasher = Murmur3::new(0);
    hasher.write(first);
    hasher.write(second);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(bytes: &[u8]) -> u32 {
        murmur3::murmur3_32(&mut std::io::Cursor::new(bytes), 0).unwrap()
    }

    #[test]
    fn agrees_with_the_murmur3_crate_for_every_split_point() {
        let samples: [&[u8]; 6] = [
            b"",
            b"a",
            b"fractional-flagjon@company.com",
            b"headstails",
            "ünïcödé-ключ-🔑".as_bytes(),
            b"0123456789abcdefghijklmnopqrstuvwxyz",
        ];
        for sample in samples {
            for split in 0..=sample.len() {
                let (first, second) = sample.split_at(split);
                assert_eq!(
                    murmur3_x86_32_of_pair(first, second),
                    reference(sample),
                    "sample {sample:?} split at {split}"
                );
            }
        }
    }

    #[test]
    fn agrees_with_the_murmur3_crate_when_fed_byte_by_byte() {
        let sample = b"the quick brown fox jumps over the lazy dog";
        let mut hasher = Murmur3::new(0);
        for byte in sample {
            hasher.write(std::slice::from_ref(byte));
        }
        assert_eq!(hasher.finish(), reference(sample));
    }

    #[test]
    fn matches_published_vectors() {
        // Well-known MurmurHash3_x86_32 values with seed 0.
        assert_eq!(murmur3_x86_32_of_pair(b"", b""), 0);
        assert_eq!(murmur3_x86_32_of_pair(b"hello", b""), 0x248b_fa47);
        assert_eq!(murmur3_x86_32_of_pair(b"hello, ", b"world"), 0x149b_bb7f);
    }
}
