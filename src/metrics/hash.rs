//! The hasher of the metrics' n-gram tables: the Fx hash of rustc and Firefox (rotate, xor,
//! multiply by an odd constant per 8-byte word, and a final rotation). The keys are token ids from our own vocabulary,
//! not attacker-chosen, so SipHash's flooding resistance buys nothing here and cost most of the
//! run time of corpus metrics. For keys of one 8-byte word (a bigram of `u32` ids) the hash is a
//! bijection of the word, so such keys never collide.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
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
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits depending only on low input bits, and hash tables index
        // buckets by the low bits: bigrams sharing a first token would pile up. Rotating brings
        // the well-mixed high bits down (as rustc-hash 2 does).
        self.hash.rotate_left(26)
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxMap<K, V> = HashMap<K, V, FxBuild>;
pub(crate) type FxSet<K> = HashSet<K, FxBuild>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn bigrams_of_ids_do_not_collide() {
        let build = FxBuild::default();
        let mut seen = FxSet::default();
        for a in 0u32..300 {
            for b in 0u32..300 {
                assert!(seen.insert(build.hash_one([a, b].as_slice())));
            }
        }
        assert_ne!(build.hash_one("ab"), build.hash_one("ba"));
    }
}
