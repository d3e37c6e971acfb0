//! Memory layout of the ledger: append-only chunked arrays of records addressed by a `u32`
//! position, and an open-addressing hash index from a 128-bit id to a position.
//!
//! Why not `HashMap<u128, Transfer>`: a std map of 144-byte entries with its power-of-two growth
//! costs up to 300 bytes per transfer, and its growth copies everything at once. Here a transfer
//! costs its 128 bytes, plus 7 to 14 bytes of index, and growing the array never moves records.
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
/// ids themselves live in the records, so a slot is just `position + 1` (0 is empty) plus one
/// byte of the id's hash (the tag) in a parallel array: a probe reads the record, a likely
/// cache miss, only when the tag matches, so even a miss at high load costs a few adjacent
/// slot reads. Five bytes a slot keeps the index at 7 to 14 bytes per record.
#[derive(Clone, Debug)]
pub struct IdIndex {
    slots: Vec<u32>,
    tags: Vec<u8>,
    len: usize,
}

/// The index grows before it is this full (3/4): a miss (every new transfer id is one) then
/// probes 8.5 slots on average, mostly within one cache line, and tags skip the records.
const LOAD_NUMERATOR: usize = 3;
const LOAD_DENOMINATOR: usize = 4;
const SLOTS_MIN: usize = 1024;

impl Default for IdIndex {
    fn default() -> Self {
        IdIndex { slots: vec![0; SLOTS_MIN], tags: vec![0; SLOTS_MIN], len: 0 }
    }
}

/// An empty slot found by [`IdIndex::probe`].
#[derive(Clone, Copy, Debug)]
pub struct Vacant {
    slot: usize,
    tag: u8,
}

/// Mixes a client-chosen id into a 64-bit hash with full avalanche (the murmur3 finaliser
/// over both halves). Ids are often sequential or share their high bits, so every output bit
/// must depend on every input bit: the slot comes from the low bits, the tag from the high.
fn hash(id: u128) -> u64 {
    let mut h = (id as u64) ^ ((id >> 64) as u64).rotate_left(32);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn tag(h: u64) -> u8 {
    (h >> 56) as u8
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
        self.probe(id, id_of).ok()
    }

    /// The position of `id`, or the empty slot where it would go. The slot stays valid for
    /// [`IdIndex::insert_vacant`] until the index next changes.
    pub fn probe(&self, id: u128, id_of: impl Fn(u32) -> u128) -> Result<u32, Vacant> {
        let mask = self.mask();
        let h = hash(id);
        let t = tag(h);
        let mut slot = h as usize & mask;
        loop {
            let value = self.slots[slot];
            if value == 0 {
                return Err(Vacant { slot, tag: t });
            }
            if self.tags[slot] == t && id_of(value - 1) == id {
                return Ok(value - 1);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Fills the slot a [`IdIndex::probe`] found empty, with no change to the index in
    /// between. The caller must have [`IdIndex::reserve`]d room, so that no growth is needed.
    pub fn insert_vacant(&mut self, vacant: Vacant, position: u32) {
        assert!(self.slots[vacant.slot] == 0, "the vacant slot was taken");
        assert!((self.len + 1) * LOAD_DENOMINATOR <= self.slots.len() * LOAD_NUMERATOR, "insert without reserve");
        self.slots[vacant.slot] = position + 1;
        self.tags[vacant.slot] = vacant.tag;
        self.len += 1;
    }

    /// Grows the index now, if needed, so that `additional` more ids fit without growing.
    /// `id_of` must answer for positions `0..len`, which are exactly the indexed ones.
    pub fn reserve(&mut self, additional: usize, id_of: impl Fn(u32) -> u128) {
        let needed = (self.len + additional) * LOAD_DENOMINATOR / LOAD_NUMERATOR + 1;
        if needed > self.slots.len() {
            self.rebuild(needed.next_power_of_two(), &id_of);
        }
    }

    /// Touches the slot where a probe for `id` starts and returns a value derived from it.
    /// Called for a whole batch before the batch is applied: the loads are independent, so the
    /// CPU overlaps their cache misses instead of taking them one by one inside `find`.
    pub fn warm(&self, id: u128) -> u32 {
        let slot = hash(id) as usize & self.mask();
        self.slots[slot] ^ self.tags[slot] as u32
    }

    /// Indexes `position` under `id`, which must not be indexed yet.
    pub fn insert(&mut self, id: u128, position: u32, id_of: impl Fn(u32) -> u128) {
        debug_assert!(position < u32::MAX);
        if (self.len + 1) * LOAD_DENOMINATOR > self.slots.len() * LOAD_NUMERATOR {
            self.rebuild(self.slots.len() * 2, &id_of);
        }
        let h = hash(id);
        self.place(h, position + 1);
        self.len += 1;
    }

    fn place(&mut self, h: u64, value: u32) {
        let mask = self.mask();
        let mut slot = h as usize & mask;
        while self.slots[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = value;
        self.tags[slot] = tag(h);
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
                self.tags[hole] = self.tags[next];
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = 0;
        self.len -= 1;
    }

    /// Rebuilds the index with `slots` slots. It walks positions `0..len` in order rather than
    /// the old slots, so the records are read as one sequential stream, not one cache miss
    /// each: the index always holds exactly the positions `0..len`.
    fn rebuild(&mut self, slots: usize, id_of: &impl Fn(u32) -> u128) {
        debug_assert!(slots.is_power_of_two() && slots * LOAD_NUMERATOR >= self.len * LOAD_DENOMINATOR);
        self.slots = vec![0; slots];
        self.tags = vec![0; slots];
        for position in 0..self.len as u32 {
            self.place(hash(id_of(position)), position + 1);
        }
    }

    /// Bytes of memory held, for the memory benchmark.
    pub fn bytes_allocated(&self) -> usize {
        self.slots.capacity() * 4 + self.tags.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The index agrees with a HashMap under random inserts and removals of the newest
    /// entry (the only removal the ledger makes, rolling back a chain), through many growths
    /// and the wrap-around at the end of the slot array that backward-shift deletion handles.
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
            let id = (state % 50_000) as u128 * 0x1_0000_0001;
            if state.is_multiple_of(4) {
                if let Some(last) = ids.pop() {
                    let len = ids.len() as u32;
                    index.remove(last, |p| if p == len { last } else { ids[p as usize] });
                    model.remove(&last);
                }
            } else if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(id) {
                ids.push(id);
                let position = (ids.len() - 1) as u32;
                if state.is_multiple_of(3) {
                    index.insert(id, position, |p| ids[p as usize]);
                } else {
                    index.reserve(1, |p| ids[p as usize]);
                    let vacant = index.probe(id, |p| ids[p as usize]).expect_err("a new id is vacant");
                    index.insert_vacant(vacant, position);
                }
                slot.insert(position);
            } else {
                assert_eq!(index.probe(id, |p| ids[p as usize]).ok(), model.get(&id).copied());
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
