//! Memory layout of the ledger: append-only chunked arrays of records addressed by a `u32`
//! position, and an open-addressing hash index from a 128-bit id to a position.
//!
//! Why not `HashMap<u128, Transfer>`: a std map of 144-byte entries with its power-of-two growth
//! costs up to 300 bytes per transfer, and its growth copies everything at once. Here a transfer
//! costs its 128 bytes, plus 4 to 9 bytes of index, and growing the array never moves records.
//! Positions are also what the history links and the pending-transfer table store, which keeps
//! them small. This module knows nothing of ledger rules.

/// Records per chunk. 65,536 records of 128 bytes is 8 MiB: large enough that the chunk list is
/// short, small enough that the last, partly used chunk wastes little.
const CHUNK_RECORDS: usize = 1 << 16;

/// The most records one array holds; positions are `u32` and `u32::MAX` means "none".
pub const RECORDS_MAX: usize = u32::MAX as usize - 1;

/// Marks the absence of a position in links and heads.
pub const NONE: u32 = u32::MAX;

/// An append-only array in fixed-size chunks, so that growing it never copies records.
#[derive(Clone, Debug, Default)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T: Copy> Chunked<T> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends a record and returns its position.
    pub fn push(&mut self, value: T) -> u32 {
        assert!(self.len < RECORDS_MAX, "ledger array is full");
        if self.len.is_multiple_of(CHUNK_RECORDS) && self.chunks.len() == self.len / CHUNK_RECORDS {
            self.chunks.push(Vec::with_capacity(CHUNK_RECORDS));
        }
        self.chunks[self.len / CHUNK_RECORDS].push(value);
        self.len += 1;
        (self.len - 1) as u32
    }

    /// Removes the last record; used only to roll back a failed linked chain.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        self.chunks[self.len / CHUNK_RECORDS].pop()
    }

    /// The record at `position`, which must exist.
    pub fn get(&self, position: u32) -> &T {
        let p = position as usize;
        debug_assert!(p < self.len);
        &self.chunks[p / CHUNK_RECORDS][p % CHUNK_RECORDS]
    }

    /// The record at `position`, which must exist.
    pub fn get_mut(&mut self, position: u32) -> &mut T {
        let p = position as usize;
        debug_assert!(p < self.len);
        &mut self.chunks[p / CHUNK_RECORDS][p % CHUNK_RECORDS]
    }

    /// All records in position order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// Bytes of memory held, for the memory benchmark.
    pub fn bytes_allocated(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity() * std::mem::size_of::<T>()).sum()
    }
}

/// An open-addressing hash index (linear probing) from a 128-bit id to a `u32` position. The
/// ids themselves live in the records, so a slot is just `position + 1` (0 is empty); the caller
/// passes `id_of` to read a record's id.
#[derive(Clone, Debug)]
pub struct IdIndex {
    slots: Vec<u32>,
    len: usize,
}

/// The index grows before it is this full (7/8): linear probing stays short below that.
const LOAD_NUMERATOR: usize = 7;
const LOAD_DENOMINATOR: usize = 8;
const SLOTS_MIN: usize = 1024;

impl Default for IdIndex {
    fn default() -> Self {
        IdIndex { slots: vec![0; SLOTS_MIN], len: 0 }
    }
}

/// Mixes a client-chosen id into a slot hash. Ids are often sequential, so fold both halves
/// and multiply by an odd constant (Fibonacci hashing) to spread neighbours apart.
fn hash(id: u128) -> u64 {
    let folded = (id as u64) ^ ((id >> 64) as u64).rotate_left(32);
    let mixed = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed ^ (mixed >> 29)
}

impl IdIndex {
    /// Number of ids indexed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The position of `id`, if indexed.
    pub fn find(&self, id: u128, id_of: impl Fn(u32) -> u128) -> Option<u32> {
        let mask = self.mask();
        let mut slot = hash(id) as usize & mask;
        loop {
            let value = self.slots[slot];
            if value == 0 {
                return None;
            }
            if id_of(value - 1) == id {
                return Some(value - 1);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Indexes `position` under `id`, which must not be indexed yet.
    pub fn insert(&mut self, id: u128, position: u32, id_of: impl Fn(u32) -> u128) {
        debug_assert!(position < u32::MAX);
        if (self.len + 1) * LOAD_DENOMINATOR > self.slots.len() * LOAD_NUMERATOR {
            self.grow(&id_of);
        }
        let mask = self.mask();
        let mut slot = hash(id) as usize & mask;
        while self.slots[slot] != 0 {
            debug_assert_ne!(id_of(self.slots[slot] - 1), id, "id indexed twice");
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = position + 1;
        self.len += 1;
    }

    /// Removes `id` (backward-shift deletion, so probes stay correct without tombstones).
    pub fn remove(&mut self, id: u128, id_of: impl Fn(u32) -> u128) {
        let mask = self.mask();
        let mut slot = hash(id) as usize & mask;
        loop {
            let value = self.slots[slot];
            assert!(value != 0, "removing an id that is not indexed");
            if id_of(value - 1) == id {
                break;
            }
            slot = (slot + 1) & mask;
        }
        let mut hole = slot;
        let mut next = (hole + 1) & mask;
        while self.slots[next] != 0 {
            let home = hash(id_of(self.slots[next] - 1)) as usize & mask;
            // Move the entry back into the hole unless its home lies cyclically in (hole, next].
            let distance_to_next = next.wrapping_sub(home) & mask;
            let distance_to_hole = hole.wrapping_sub(home) & mask;
            if distance_to_hole < distance_to_next {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = 0;
        self.len -= 1;
    }

    fn grow(&mut self, id_of: &impl Fn(u32) -> u128) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.mask();
        for value in old.into_iter().filter(|&v| v != 0) {
            let mut slot = hash(id_of(value - 1)) as usize & mask;
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = value;
        }
    }

    /// Bytes of memory held, for the memory benchmark.
    pub fn bytes_allocated(&self) -> usize {
        self.slots.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The index agrees with a HashMap under random inserts and removals, including the
    /// wrap-around at the end of the slot array that backward-shift deletion must handle.
    #[test]
    fn index_matches_a_hash_map() {
        let mut ids: Vec<u128> = Vec::new();
        let mut index = IdIndex::default();
        let mut model: HashMap<u128, u32> = HashMap::new();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..200_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let id = (state % 5_000) as u128 * 0x1_0000_0001;
            if state.is_multiple_of(3) {
                if let Some(&position) = model.get(&id) {
                    index.remove(id, |p| ids[p as usize]);
                    model.remove(&id);
                    ids[position as usize] = u128::MAX;
                }
            } else if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(id) {
                ids.push(id);
                let position = (ids.len() - 1) as u32;
                index.insert(id, position, |p| ids[p as usize]);
                slot.insert(position);
            }
            if step % 997 == 0 {
                for (&id, &position) in &model {
                    assert_eq!(index.find(id, |p| ids[p as usize]), Some(position));
                }
                assert_eq!(index.len(), model.len());
            }
        }
    }

    #[test]
    fn chunked_push_pop_get() {
        let mut c = Chunked::default();
        for i in 0..(CHUNK_RECORDS as u64 * 2 + 5) {
            assert_eq!(c.push(i) as u64, i);
        }
        assert_eq!(*c.get(CHUNK_RECORDS as u32), CHUNK_RECORDS as u64);
        for _ in 0..10 {
            c.pop();
        }
        assert_eq!(c.len(), CHUNK_RECORDS * 2 - 5);
        assert_eq!(c.push(7), (CHUNK_RECORDS * 2 - 5) as u32);
        assert_eq!(c.iter().count(), c.len());
    }
}
