//! Memory layout of the ledger: chunked arrays of records addressed by a `u32` position, with
//! copy-on-write chunks, and a sharded open-addressing hash index from a 128-bit id to a
//! position.
//!
//! Why not `HashMap<u128, Transfer>`: a std map of 144-byte entries with its power-of-two growth
//! costs up to 300 bytes per transfer, and its growth copies everything at once. Here a transfer
//! costs its 128 bytes, plus 7 to 14 bytes of index, and growing the array never moves records.
//! Positions are also what the history links and the pending-transfer table store, which keeps
//! them small.
//!
//! Two properties keep the writer from ever stopping for long, which the snapshot and the
//! benchmark's worst batch depend on:
//! - **Copy-on-write chunks.** A [`Chunked`] array is a list of chunks, reference-counted
//!   between batches ([`Chunked::seal`]). A snapshot takes a [`ChunkedView`] (one reference per
//!   chunk, a few hundred pointers for ten million transfers) and encodes it on another thread
//!   while the writer goes on; the writer copies a chunk only if it writes to one the snapshot
//!   still holds, so memory grows only by the chunks touched during the snapshot. Transfers
//!   are append-only: only the last chunk is ever copied.
//! - **A sharded index.** [`IdIndex`] is [`SHARDS`] independent tables chosen by bits of the
//!   id's hash; a table that fills up doubles alone, so a growth rehashes 1/64 of the ids (about
//!   150,000 at ten million transfers, a few milliseconds), never all of them at once.
//!
//! This module knows nothing of ledger rules.

use std::sync::Arc;

/// Records per chunk. 16,384 records of 128 bytes is 2 MiB: a copy-on-write of a whole chunk
/// takes well under a millisecond, and the chunk list stays short (600 chunks for ten
/// million transfers).
const CHUNK_RECORDS: usize = 1 << 14;

/// The most records one array holds; positions are `u32` and `u32::MAX` means "none".
pub const RECORDS_MAX: usize = u32::MAX as usize - 1;

/// Marks the absence of a position in links and heads.
pub const NONE: u32 = u32::MAX;

/// An array in fixed-size chunks: growing it never copies records, and a [`ChunkedView`] of it
/// costs one reference per chunk.
///
/// A chunk is either the writer's own (`Owned`) or reference-counted (`Shared`). Writes go to
/// owned chunks with no atomic operation; [`Chunked::seal`], called after each batch, turns
/// the chunks the batch wrote back into shared ones, so that a view taken between batches
/// only clones references. The first write to a shared chunk takes it back, copying it only
/// if a view still holds it. (An `Arc::make_mut` on every write instead costs two atomic
/// operations per access, and a locked instruction also waits for every cache miss in
/// flight: 40 to 60 ns per transfer in `apply_bench`.)
#[derive(Clone, Debug)]
pub struct Chunked<T> {
    chunks: Vec<Chunk<T>>,
    len: usize,
    /// Indexes of the chunks made owned since the last seal (some may have been popped since).
    owned: Vec<u32>,
}

#[derive(Clone, Debug)]
enum Chunk<T> {
    Owned(Vec<T>),
    Shared(Arc<Vec<T>>),
}

impl<T> Chunk<T> {
    fn as_vec(&self) -> &Vec<T> {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(v) => v,
        }
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0, owned: Vec::new() }
    }
}

/// A frozen view of a [`Chunked`] array as it was when taken: what a snapshot encodes while
/// the writer goes on.
#[derive(Clone, Debug)]
pub struct ChunkedView<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T: Clone> Chunked<T> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The chunk `index`, made the writer's own.
    #[inline]
    fn chunk_mut(&mut self, index: usize) -> &mut Vec<T> {
        if let Chunk::Shared(_) = self.chunks[index] {
            self.take_back(index);
        }
        match &mut self.chunks[index] {
            Chunk::Owned(v) => v,
            Chunk::Shared(_) => unreachable!("the chunk was taken back"),
        }
    }

    /// Makes a shared chunk owned: without a copy unless a view holds it.
    #[cold]
    #[inline(never)]
    fn take_back(&mut self, index: usize) {
        let Chunk::Shared(shared) = std::mem::replace(&mut self.chunks[index], Chunk::Owned(Vec::new())) else {
            unreachable!("only a shared chunk is taken back");
        };
        let owned = Arc::try_unwrap(shared).unwrap_or_else(|shared| {
            // Room for a whole chunk: the last one is still pushed to.
            let mut copy = Vec::with_capacity(CHUNK_RECORDS);
            copy.extend_from_slice(&shared);
            copy
        });
        self.chunks[index] = Chunk::Owned(owned);
        self.owned.push(index as u32);
    }

    /// Appends a record and returns its position.
    pub fn push(&mut self, value: T) -> u32 {
        assert!(self.len < RECORDS_MAX, "ledger array is full");
        if self.len.is_multiple_of(CHUNK_RECORDS) && self.chunks.len() == self.len / CHUNK_RECORDS {
            self.owned.push(self.chunks.len() as u32);
            self.chunks.push(Chunk::Owned(Vec::with_capacity(CHUNK_RECORDS)));
        }
        self.chunk_mut(self.len / CHUNK_RECORDS).push(value);
        self.len += 1;
        (self.len - 1) as u32
    }

    /// Removes the last record; used only to roll back a failed linked chain.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let value = self.chunk_mut(self.len / CHUNK_RECORDS).pop();
        if self.len.is_multiple_of(CHUNK_RECORDS) {
            self.chunks.truncate(self.len / CHUNK_RECORDS);
        }
        value
    }

    /// The record at `position`, which must exist.
    #[inline]
    pub fn get(&self, position: u32) -> &T {
        let p = position as usize;
        debug_assert!(p < self.len);
        &self.chunks[p / CHUNK_RECORDS].as_vec()[p % CHUNK_RECORDS]
    }

    /// The record at `position`, which must exist; copies its chunk first if a view holds it.
    #[inline]
    pub fn get_mut(&mut self, position: u32) -> &mut T {
        let p = position as usize;
        debug_assert!(p < self.len);
        &mut self.chunk_mut(p / CHUNK_RECORDS)[p % CHUNK_RECORDS]
    }

    /// All records in position order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.as_vec().iter())
    }

    /// Shares the chunks written since the last seal, so that the next [`Chunked::view`]
    /// costs a reference per chunk. Moves no record.
    pub fn seal(&mut self) {
        for index in self.owned.drain(..) {
            if let Some(chunk) = self.chunks.get_mut(index as usize) {
                if let Chunk::Owned(records) = chunk {
                    *chunk = Chunk::Shared(Arc::new(std::mem::take(records)));
                }
            }
        }
    }

    /// A frozen view of the array as it is now: a reference per chunk once sealed (a chunk
    /// written since the last [`Chunked::seal`] is copied).
    pub fn view(&self) -> ChunkedView<T> {
        let chunks = self
            .chunks
            .iter()
            .map(|chunk| match chunk {
                Chunk::Shared(shared) => shared.clone(),
                Chunk::Owned(owned) => Arc::new(owned.clone()),
            })
            .collect();
        ChunkedView { chunks, len: self.len }
    }

    /// Bytes of memory held, for the memory benchmark.
    pub fn bytes_allocated(&self) -> usize {
        self.chunks.iter().map(|c| c.as_vec().capacity() * std::mem::size_of::<T>()).sum()
    }
}

impl<T> ChunkedView<T> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// All records in position order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        // A view's chunks hold exactly its records: the writer takes a chunk back (copying it
        // while the view holds it) before it pushes to it or pops from it.
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }
}

/// Independent tables of an [`IdIndex`]: a power of two. 64 keeps a growth to 1/64 of the ids
/// while the tables of a small ledger stay tiny.
pub const SHARDS: usize = 64;

/// One table of the index: open addressing (linear probing). The ids themselves live in the
/// records, so a slot is just `position + 1` (0 is empty) plus one byte of the id's hash (the
/// tag) in a parallel array: a probe reads the record, a likely cache miss, only when the tag
/// matches. Five bytes a slot keeps the index at 7 to 14 bytes per record.
#[derive(Clone, Debug)]
struct Shard {
    slots: Vec<u32>,
    tags: Vec<u8>,
    len: usize,
}

/// The index grows before a table is this full (3/4): a miss (every new transfer id is one)
/// then probes 8.5 slots on average, mostly within one cache line, and tags skip the records.
const LOAD_NUMERATOR: usize = 3;
const LOAD_DENOMINATOR: usize = 4;
const SHARD_SLOTS_MIN: usize = 64;

impl Default for Shard {
    fn default() -> Self {
        Shard { slots: vec![0; SHARD_SLOTS_MIN], tags: vec![0; SHARD_SLOTS_MIN], len: 0 }
    }
}

/// A hash index from a 128-bit id to a `u32` position, in [`SHARDS`] tables. See the module
/// documentation.
#[derive(Clone, Debug)]
pub struct IdIndex {
    shards: Vec<Shard>,
}

impl Default for IdIndex {
    fn default() -> Self {
        IdIndex { shards: vec![Shard::default(); SHARDS] }
    }
}

/// An empty slot found by [`IdIndex::probe`].
#[derive(Clone, Copy, Debug)]
pub struct Vacant {
    shard: usize,
    slot: usize,
    tag: u8,
}

/// Mixes a client-chosen id into a 64-bit hash with full avalanche (the murmur3 finaliser
/// over both halves). Ids are often sequential or share their high bits, so every output bit
/// must depend on every input bit: the slot comes from the low bits, the shard from bits 50 to
/// 55, the tag from the top eight.
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

fn shard_of(h: u64) -> usize {
    (h >> 50) as usize & (SHARDS - 1)
}

impl Shard {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn probe(&self, h: u64, id: u128, id_of: &impl Fn(u32) -> u128) -> Result<u32, (usize, u8)> {
        let mask = self.mask();
        let t = tag(h);
        let mut slot = h as usize & mask;
        loop {
            let value = self.slots[slot];
            if value == 0 {
                return Err((slot, t));
            }
            if self.tags[slot] == t && id_of(value - 1) == id {
                return Ok(value - 1);
            }
            slot = (slot + 1) & mask;
        }
    }

    fn has_room(&self, additional: usize) -> bool {
        (self.len + additional) * LOAD_DENOMINATOR <= self.slots.len() * LOAD_NUMERATOR
    }

    /// Makes room for `additional` more ids, rehashing this table alone into a larger one.
    fn reserve(&mut self, additional: usize, id_of: &impl Fn(u32) -> u128) {
        if self.has_room(additional) {
            return;
        }
        let needed = ((self.len + additional) * LOAD_DENOMINATOR / LOAD_NUMERATOR + 1).next_power_of_two();
        let old_slots = std::mem::replace(&mut self.slots, vec![0; needed]);
        self.tags = vec![0; needed];
        // A shard holds positions scattered over the whole records array, so reading each id
        // is a cache miss. Read them in groups first, with no dependency between the loads, so
        // that the CPU overlaps the misses; then place the group. (One load at a time inside
        // the placing loop made growth a quarter of the ledger benchmark's CPU.)
        const GROUP: usize = 32;
        let mut hashes = [0u64; GROUP];
        let mut values = [0u32; GROUP];
        let mut filled = 0;
        for value in old_slots.into_iter().filter(|&v| v != 0) {
            values[filled] = value;
            filled += 1;
            if filled == GROUP {
                self.place_group(&mut hashes, &values, id_of);
                filled = 0;
            }
        }
        self.place_group(&mut hashes[..filled], &values[..filled], id_of);
    }

    /// Hashes the ids of `values` (all loads first), then places them.
    fn place_group(&mut self, hashes: &mut [u64], values: &[u32], id_of: &impl Fn(u32) -> u128) {
        for (h, &value) in hashes.iter_mut().zip(values) {
            *h = hash(id_of(value - 1));
        }
        for (&h, &value) in hashes.iter().zip(values) {
            self.place(h, value);
        }
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
    fn remove(&mut self, h: u64, id: u128, id_of: &impl Fn(u32) -> u128) {
        let mask = self.mask();
        let mut slot = h as usize & mask;
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
}

impl IdIndex {
    /// Number of ids indexed.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len).sum()
    }

    /// The position of `id`, if indexed.
    pub fn find(&self, id: u128, id_of: impl Fn(u32) -> u128) -> Option<u32> {
        let h = hash(id);
        self.shards[shard_of(h)].probe(h, id, &id_of).ok()
    }

    /// The position of `id`, or the empty slot where it would go, with room made for it: the
    /// slot stays valid for [`IdIndex::insert_vacant`] until the index next changes.
    pub fn probe(&mut self, id: u128, id_of: impl Fn(u32) -> u128) -> Result<u32, Vacant> {
        let h = hash(id);
        let shard = shard_of(h);
        self.shards[shard].reserve(1, &id_of);
        self.shards[shard].probe(h, id, &id_of).map_err(|(slot, tag)| Vacant { shard, slot, tag })
    }

    /// Fills the slot a [`IdIndex::probe`] found empty, with no change to the index in
    /// between.
    pub fn insert_vacant(&mut self, vacant: Vacant, position: u32) {
        let shard = &mut self.shards[vacant.shard];
        assert!(shard.slots[vacant.slot] == 0, "the vacant slot was taken");
        assert!(shard.has_room(1), "insert without room");
        shard.slots[vacant.slot] = position + 1;
        shard.tags[vacant.slot] = vacant.tag;
        shard.len += 1;
    }

    /// Grows the tables now, if needed, so that `additional` more ids spread evenly fit: a
    /// hint for a replay whose size is known, so that it does not grow step by step.
    pub fn reserve(&mut self, additional: usize, id_of: impl Fn(u32) -> u128) {
        // Hashing spreads ids evenly; leave a margin for the tables that get more than their share.
        let per_shard = additional / SHARDS + additional / SHARDS / 8 + 16;
        for shard in &mut self.shards {
            shard.reserve(per_shard, &id_of);
        }
    }

    /// Touches the slot where a probe for `id` starts and returns a value derived from it.
    /// Called for a whole batch before the batch is applied: the loads are independent, so the
    /// CPU overlaps their cache misses instead of taking them one by one inside `find`.
    pub fn warm(&self, id: u128) -> u32 {
        let h = hash(id);
        let shard = &self.shards[shard_of(h)];
        let slot = h as usize & shard.mask();
        shard.slots[slot] ^ shard.tags[slot] as u32
    }

    /// Indexes `position` under `id`, which must not be indexed yet.
    pub fn insert(&mut self, id: u128, position: u32, id_of: impl Fn(u32) -> u128) {
        debug_assert!(position < u32::MAX);
        let h = hash(id);
        let shard = &mut self.shards[shard_of(h)];
        shard.reserve(1, &id_of);
        shard.place(h, position + 1);
        shard.len += 1;
    }

    /// Removes `id`, which must be indexed.
    pub fn remove(&mut self, id: u128, id_of: impl Fn(u32) -> u128) {
        let h = hash(id);
        self.shards[shard_of(h)].remove(h, id, &id_of);
    }

    /// Bytes of memory held, for the memory benchmark.
    pub fn bytes_allocated(&self) -> usize {
        self.shards.iter().map(|s| s.slots.capacity() * 4 + s.tags.capacity()).sum()
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
                    let vacant = index.probe(id, |p| ids[p as usize]).expect_err("a new id is vacant");
                    index.insert_vacant(vacant, position);
                }
                slot.insert(position);
            } else {
                assert_eq!(index.find(id, |p| ids[p as usize]), model.get(&id).copied());
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

    /// A view keeps what it saw while the array changes: writes copy the chunks it holds, and
    /// pushes past it stay out of it; whether the view was taken after a seal (sharing the
    /// chunks) or before (copying the ones written since).
    #[test]
    fn a_view_is_frozen_while_the_array_changes() {
        for seal in [true, false] {
            let mut c = Chunked::default();
            for i in 0..(CHUNK_RECORDS as u64 + 10) {
                c.push(i);
            }
            if seal {
                c.seal();
            }
            let view = c.view();
            if seal {
                assert!(c
                    .chunks
                    .iter()
                    .zip(&view.chunks)
                    .all(|(c, v)| matches!(c, Chunk::Shared(s) if Arc::ptr_eq(s, v))));
            }
            *c.get_mut(3) = 1_000_000;
            *c.get_mut(CHUNK_RECORDS as u32 + 2) = 2_000_000;
            c.push(99);
            c.pop();
            c.pop();
            c.push(98);
            c.seal();
            *c.get_mut(4) = 3_000_000;
            let seen: Vec<u64> = view.iter().copied().collect();
            assert_eq!(seen, (0..CHUNK_RECORDS as u64 + 10).collect::<Vec<_>>());
            assert_eq!(*c.get(3), 1_000_000);
            assert_eq!(*c.get(4), 3_000_000);
            assert_eq!(*c.get(CHUNK_RECORDS as u32 + 9), 98);
            assert_eq!(c.iter().count(), CHUNK_RECORDS + 10);
        }
    }

    /// A chunk taken back from a seal with no view holding it is the same memory, not a copy.
    #[test]
    fn a_sealed_chunk_without_views_is_taken_back_without_a_copy() {
        let mut c = Chunked::default();
        c.push(1u64);
        let before = c.get(0) as *const u64;
        c.seal();
        *c.get_mut(0) = 2;
        assert_eq!(c.get(0) as *const u64, before);
        assert_eq!(*c.get(0), 2);
    }
}
