//! Hash tables for the state: persistent, so that a snapshot's view copies one in constant
//! time, and hashed with a fixed function, so that the order a table iterates in (and so a
//! snapshot's bytes) depends on its keys alone, on every machine.
//!
//! Looked up on every request (sessions, what a user has used of their limits, keyed
//! answers), a table of 100,000 entries answers in about 0.1 µs where a persistent ordered
//! map takes 0.1 µs for integer keys and 0.6 µs for 32-byte ones. Tables that are walked in
//! key order (expiries) stay ordered maps.

use std::hash::{BuildHasher, Hasher};

/// A persistent hash table with [`Fixed`] hashing.
pub type Table<K, V> = imbl::GenericHashMap<K, V, Fixed, imbl::shared_ptr::DefaultSharedPtr>;

/// The fixed hash function of [`Table`]s: no random seed, the same on every platform (bytes
/// are read little-endian), and mixed well enough that keys which are counters (user ids)
/// spread as evenly as keys which are already hashes (session tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fixed;

impl BuildHasher for Fixed {
    type Hasher = FixedHasher;

    fn build_hasher(&self) -> FixedHasher {
        FixedHasher(0)
    }
}

/// The state of one [`Fixed`] hash.
#[derive(Clone, Copy, Debug)]
pub struct FixedHasher(u64);

/// An odd constant with bits spread over the word (the golden ratio's).
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl FixedHasher {
    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        // MurmurHash3's finaliser: every input bit reaches the low bits a table uses first.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.word(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut last = [0u8; 8];
            last[..tail.len()].copy_from_slice(tail);
            self.word(u64::from_le_bytes(last) ^ ((tail.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }

    fn write_u128(&mut self, i: u128) {
        self.word(i as u64);
        self.word((i >> 64) as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(value: impl std::hash::Hash) -> u64 {
        Fixed.hash_one(value)
    }

    #[test]
    fn hashes_are_fixed_values() {
        // Pinned: a change of the function changes the order of every snapshot's tables.
        let pinned = [hash(0u64), hash(1u64), hash([0u8; 32]), hash("key")];
        assert_eq!(
            pinned.map(|h| format!("{h:016x}")),
            ["0000000000000000", "9ca066f1a4ab2eea", "2344ac19ad2cb65c", "2391c21fcaf4f5b0"]
        );
    }

    #[test]
    fn counters_spread_over_the_low_bits() {
        // The first level of a table uses the low five bits: user ids 1..=3,200 fill its 32
        // slots about evenly.
        let mut slots = [0u32; 32];
        for id in 1..=3_200u64 {
            slots[(hash(id) & 31) as usize] += 1;
        }
        assert!(slots.iter().all(|&n| (60..=140).contains(&n)), "{slots:?}");
    }

    #[test]
    fn iteration_order_depends_on_the_keys_alone() {
        let keys: Vec<u64> = (1..=2_000).map(|i| i * 7_919).collect();
        let forwards: Table<u64, u64> = keys.iter().map(|&k| (k, k)).collect();
        let mut backwards: Table<u64, u64> = keys.iter().rev().map(|&k| (k, k)).collect();
        for k in 5_000..6_000u64 {
            backwards.insert(k * 104_729, 0);
        }
        for k in 5_000..6_000u64 {
            backwards.remove(&(k * 104_729));
        }
        let order = |t: &Table<u64, u64>| t.keys().copied().collect::<Vec<_>>();
        assert_eq!(order(&forwards), order(&backwards));
    }
}
