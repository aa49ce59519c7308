//! A fast, non-cryptographic hasher for the id index.
//!
//! The index is keyed by worker ids the runner's own users choose, and it
//! is consulted on every request; SipHash (std's default, built to resist
//! hash flooding from untrusted input) costs more than the rest of a
//! lookup. This is the multiply-rotate hash of Firefox and rustc (FxHash),
//! which is a few instructions per word.
//!
//! Its last step is a multiplication, which mixes well into the high bits
//! of the result only: bit `k` of a product depends on bits `0..=k` of its
//! factors. `std`'s `HashMap` picks the bucket from the *low* bits, so
//! [`finish`](FxHasher::finish) rotates the well-mixed high bits down (the
//! current rustc-hash also finishes with a rotation). Without that, ids
//! that differ only after their first few bytes (`w0` .. `w99999`) crowd
//! into a few hundred buckets (256 of 65,536), and indexing a million of
//! them takes seconds instead of a fraction of one
//! (`ids_that_share_a_prefix_spread_over_the_buckets`).

use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's multiplier (from the golden ratio).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// How far [`FxHasher::finish`] rotates: it brings bits 38..64, the best
/// mixed, down to where the map takes its bucket index.
const ROTATE: u32 = 26;

/// The hasher; see the [module docs](self).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
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

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash.rotate_left(ROTATE)
    }
}

/// Builds [`FxHasher`]s, for `HashMap`.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_differ() {
        let b = FxBuild::default();
        assert_eq!(b.hash_one("w123"), b.hash_one(String::from("w123")));
        assert_ne!(b.hash_one("w123"), b.hash_one("w124"));
        assert_ne!(b.hash_one("abcdefgh1"), b.hash_one("abcdefgh2"));
        let mut m: HashMap<String, usize, FxBuild> = HashMap::default();
        for i in 0..10_000 {
            m.insert(format!("w{i}"), i);
        }
        assert!((0..10_000).all(|i| m[&format!("w{i}")] == i));
    }

    #[test]
    fn ids_that_share_a_prefix_spread_over_the_buckets() {
        // The map takes the bucket from the low bits: 100,000 ids that
        // differ only in their last digits must land in about as many
        // distinct buckets of a 2^16 table as random hashes would (about
        // 51,000; this hash gives 53,825). Without the final rotation
        // they took 256.
        let b = FxBuild::default();
        let buckets: std::collections::HashSet<u64> = (0..100_000)
            .map(|i| b.hash_one(format!("w{i}")) & 0xffff)
            .collect();
        assert!(buckets.len() > 45_000, "{} buckets", buckets.len());
    }
}
