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
//! - **An index that grows a step at a time.** [`IdIndex`] is one open-addressing table. When
//!   it fills up, a table twice the size takes every insert, and the ids of the old one move
//!   over in position order, [`MOVES_PER_RESERVE`] per batch, while a lookup asks the new table
//!   and then the old. Position order reads the records as one sequential stream; a table's
//!   ids in slot order would be one cache miss each, which made growth twice as costly in the
//!   64 tables chosen by hash that this replaces, whose growths also came all in the same few
//!   batches (they fill up evenly), up to 60 ms each at four million transfers.
//!
//! This module knows nothing of ledger rules.

use std::sync::Arc;

/// Records per chunk. 16,384 records of 128 bytes is 2 MiB: a copy-on-write of a whole chunk
/// takes well under a millisecond, and the chunk list stays short (600 chunks for ten
/// million transfers).
pub const CHUNK_RECORDS: usize = 1 << 14;

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
    /// The leading chunks that are cold: their records live in the embedded store, not here
    /// (see `cold.rs`). Only transfers and balance log entries go cold.
    cold: usize,
    /// Indexes of the chunks made owned since the last seal (some may have been popped since).
    owned: Vec<u32>,
}

#[derive(Clone, Debug)]
enum Chunk<T> {
    Owned(Vec<T>),
    Shared(Arc<Vec<T>>),
    /// In the embedded store; read through the ledger's cold store, never here.
    Cold,
}

impl<T> Chunk<T> {
    fn as_vec(&self) -> &Vec<T> {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(v) => v,
            Chunk::Cold => panic!("a cold chunk is read through the cold store"),
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Chunk::Owned(v) => v.capacity(),
            Chunk::Shared(v) => v.capacity(),
            Chunk::Cold => 0,
        }
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0, cold: 0, owned: Vec::new() }
    }
}

/// A frozen view of a [`Chunked`] array as it was when taken: what a snapshot encodes while
/// the writer goes on.
#[derive(Clone, Debug)]
pub struct ChunkedView<T> {
    /// `None` for a cold chunk.
    chunks: Vec<Option<Arc<Vec<T>>>>,
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
            Chunk::Shared(_) | Chunk::Cold => unreachable!("the chunk was taken back"),
        }
    }

    /// Makes a shared chunk owned: without a copy unless a view holds it.
    #[cold]
    #[inline(never)]
    fn take_back(&mut self, index: usize) {
        let Chunk::Shared(shared) = std::mem::replace(&mut self.chunks[index], Chunk::Owned(Vec::new())) else {
            unreachable!("only a shared chunk is taken back: a cold one is never written");
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
                Chunk::Shared(shared) => Some(shared.clone()),
                Chunk::Owned(owned) => Some(Arc::new(owned.clone())),
                Chunk::Cold => None,
            })
            .collect();
        ChunkedView { chunks, len: self.len }
    }

    /// Bytes of memory held, for the memory benchmark.
    pub fn bytes_allocated(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity() * std::mem::size_of::<T>()).sum()
    }

    /// Whether the record at `position` is in memory (not in a cold chunk).
    #[inline]
    pub fn is_hot(&self, position: u32) -> bool {
        position as usize / CHUNK_RECORDS >= self.cold
    }

    /// The number of chunks, full or not.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// The number of leading chunks that are cold.
    pub fn cold_chunks(&self) -> usize {
        self.cold
    }

    /// The records of a hot chunk.
    pub fn chunk(&self, index: usize) -> &[T] {
        self.chunks[index].as_vec()
    }

    /// The chunk `index` if it is full, shared (sealed) and not the last: a chunk no write
    /// will ever touch again, which may go to the embedded store.
    pub fn sealed_full_chunk(&self, index: usize) -> Option<Arc<Vec<T>>> {
        match self.chunks.get(index) {
            Some(Chunk::Shared(records)) if records.len() == CHUNK_RECORDS && index + 1 < self.chunks.len() => {
                Some(records.clone())
            }
            _ => None,
        }
    }

    /// Drops the records of the next chunk to go cold (chunk `cold_chunks()`), which must be a
    /// full chunk before the last; the embedded store holds them now.
    pub fn make_cold(&mut self) {
        let index = self.cold;
        assert!(index + 1 < self.chunks.len(), "only a chunk before the last goes cold");
        assert_eq!(self.chunks[index].as_vec().len(), CHUNK_RECORDS, "only a full chunk goes cold");
        self.chunks[index] = Chunk::Cold;
        self.cold += 1;
    }
}

impl<T> ChunkedView<T> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// All records in position order; the view must have no cold chunk.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + '_ {
        // A view's chunks hold exactly its records: the writer takes a chunk back (copying it
        // while the view holds it) before it pushes to it or pops from it.
        self.chunks.iter().flat_map(|chunk| chunk.as_ref().expect("a view of hot chunks only").iter())
    }

    /// Its chunks in order: `None` for a cold one.
    pub fn chunks(&self) -> impl Iterator<Item = Option<&[T]>> + '_ {
        self.chunks.iter().map(|chunk| chunk.as_ref().map(|records| records.as_slice()))
    }
}

/// The index grows before its table is this full (3/4): a miss (every new transfer id is one)
/// then probes 8.5 slots on average, mostly within one cache line, and tags skip the records.
const LOAD_NUMERATOR: usize = 3;
const LOAD_DENOMINATOR: usize = 4;
const SLOTS_MIN: usize = 1024;

/// Ids moved from the old table to the new one by each [`IdIndex::reserve`] (once per batch
/// of transfers) while the index grows. At about 40 ns an id (a sequential read of the
/// record, a random write into the new table) this bounds a batch's share of a growth to a
/// few milliseconds, however large the ledger; a growth of ten million ids then spreads over
/// some 40 batches, during which a lookup that misses the new table also asks the old one.
pub const MOVES_PER_RESERVE: usize = 1 << 17;

/// Ids moved per insert while the index grows, so that single inserts (domain commands,
/// which never reserve) also finish a growth: one started at `n` ids ends within `n / 16`
/// inserts, long before the new table, twice the size, needs to grow again.
const MOVES_PER_INSERT: usize = 16;

/// Slots of the next table zeroed per insert once the table is nearly full (see [`Spare`]):
/// the next table has twice the slots, so it is ready after `slots / 32` inserts, half of the
/// last sixteenth of the load before a growth ([`SPARE_FROM`]).
const ZEROED_PER_INSERT: usize = 64;

/// The load (in sixteenths) from which the next table is zeroed ahead.
const SPARE_FROM: usize = 11;

/// Ids hashed together while moving: their table slots are loaded before any is written, so
/// that the CPU overlaps those cache misses.
const MOVE_GROUP: usize = 16;

/// One open-addressing table (linear probing). The ids themselves live in the records, so a
/// slot is just `position + 1` (0 is empty) plus one byte of the id's hash (the tag) in a
/// parallel array: a probe reads the record, a likely cache miss, only when the tag matches.
/// Five bytes a slot keeps the index at 7 to 14 bytes per record.
#[derive(Clone, Debug)]
struct Table {
    slots: Vec<u32>,
    tags: Vec<u8>,
    /// Ids placed in this table.
    len: usize,
}

/// A growth under way: the previous table, still answering for the ids not moved yet.
#[derive(Clone, Debug)]
struct Growth {
    old: Table,
    /// The next position to move; positions below it are in the new table too.
    next: u32,
    /// Positions `next..end` are in the old table only. The old table holds `0..end`.
    end: u32,
}

/// The next table, zeroed a step at a time before the growth that needs it. A fresh
/// allocation costs nothing until it is written, but then every page faults and is zeroed
/// by the kernel: moving even a few ids into a fresh table of 80 MB touches all its pages at
/// once, 50 ms at ten million transfers. Zeroing it ahead, [`ZEROED_PER_INSERT`] slots per
/// insert, spreads that cost too.
#[derive(Clone, Debug)]
struct Spare {
    slots: Vec<u32>,
    tags: Vec<u8>,
    /// Slots of the table when ready.
    size: usize,
}

impl Spare {
    fn new(size: usize) -> Self {
        Spare { slots: Vec::with_capacity(size), tags: Vec::with_capacity(size), size }
    }

    /// Zeroes up to `count` more slots.
    fn zero(&mut self, count: usize) {
        let len = (self.slots.len() + count).min(self.size);
        self.slots.resize(len, 0);
        self.tags.resize(len, 0);
    }

    /// The table, zeroing what is left first.
    fn into_table(mut self) -> Table {
        self.zero(self.size);
        Table { slots: self.slots, tags: self.tags, len: 0 }
    }
}

/// A hash index from a 128-bit id to a `u32` position. It holds exactly the positions
/// `0..len` of its array, and only the newest is ever removed. See the module documentation.
#[derive(Clone, Debug)]
pub struct IdIndex {
    /// Where every insert goes.
    table: Table,
    growth: Option<Box<Growth>>,
    spare: Option<Box<Spare>>,
}

impl Default for IdIndex {
    fn default() -> Self {
        IdIndex { table: Table::new(SLOTS_MIN), growth: None, spare: None }
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
/// The index's hash of an id (also kept for cold transfers, whose ids are not in memory).
pub fn hash(id: u128) -> u64 {
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

impl Table {
    fn new(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two());
        Table { slots: vec![0; slots], tags: vec![0; slots], len: 0 }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn probe(&self, h: u64, is: &impl Fn(u32) -> bool) -> Result<u32, (usize, u8)> {
        let mask = self.mask();
        let t = tag(h);
        let mut slot = h as usize & mask;
        loop {
            let value = self.slots[slot];
            if value == 0 {
                return Err((slot, t));
            }
            if self.tags[slot] == t && is(value - 1) {
                return Ok(value - 1);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Loads the slot where a probe for `h` starts; see [`IdIndex::warm`].
    fn touch(&self, h: u64) -> u32 {
        let slot = h as usize & self.mask();
        self.slots[slot] ^ self.tags[slot] as u32
    }

    fn place(&mut self, h: u64, value: u32) {
        let mask = self.mask();
        let mut slot = h as usize & mask;
        while self.slots[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = value;
        self.tags[slot] = tag(h);
        self.len += 1;
    }

    /// Removes `id` if present and returns its position (backward-shift deletion, so probes
    /// stay correct without tombstones).
    fn remove(&mut self, h: u64, is: &impl Fn(u32) -> bool, hash_of: &impl Fn(u32) -> u64) -> Option<u32> {
        let mask = self.mask();
        let mut slot = h as usize & mask;
        let position = loop {
            let value = self.slots[slot];
            if value == 0 {
                return None;
            }
            if self.tags[slot] == tag(h) && is(value - 1) {
                break value - 1;
            }
            slot = (slot + 1) & mask;
        };
        let mut hole = slot;
        let mut next = (hole + 1) & mask;
        while self.slots[next] != 0 {
            let home = hash_of(self.slots[next] - 1) as usize & mask;
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
        Some(position)
    }

    fn bytes_allocated(&self) -> usize {
        self.slots.capacity() * 4 + self.tags.capacity()
    }
}

impl IdIndex {
    /// Number of ids indexed.
    fn len(&self) -> usize {
        self.table.len + self.growth.as_ref().map_or(0, |g| (g.end - g.next) as usize)
    }

    /// Whether `additional` more ids fit in the table without passing the load limit. Ids
    /// still in the old table count: they all move into this one.
    fn fits(&self, additional: usize) -> bool {
        (self.len() + additional) * LOAD_DENOMINATOR <= self.table.slots.len() * LOAD_NUMERATOR
    }

    /// Moves up to `moves` ids of a growth under way into the new table, in position order:
    /// the records are read as one sequential stream.
    fn advance(&mut self, moves: usize, hash_of: &impl Fn(u32) -> u64) {
        let Some(growth) = self.growth.as_mut() else { return };
        let stop = growth.end.min(growth.next.saturating_add(moves.min(u32::MAX as usize) as u32));
        let mut hashes = [0u64; MOVE_GROUP];
        while growth.next < stop {
            let group = &mut hashes[..((stop - growth.next) as usize).min(MOVE_GROUP)];
            for (i, h) in group.iter_mut().enumerate() {
                *h = hash_of(growth.next + i as u32);
            }
            let mut touched = 0;
            for &h in group.iter() {
                touched ^= self.table.touch(h);
            }
            std::hint::black_box(touched);
            for (i, &h) in group.iter().enumerate() {
                self.table.place(h, growth.next + i as u32 + 1);
            }
            growth.next += group.len() as u32;
        }
        if growth.next == growth.end {
            self.growth = None;
        }
    }

    /// Makes room for `additional` more ids, moving up to `moves` ids of a growth under way
    /// first, and starting a growth if the table is too full.
    fn make_room(&mut self, additional: usize, moves: usize, hash_of: &impl Fn(u32) -> u64) {
        self.advance(moves, hash_of);
        if self.fits(additional) {
            self.zero_ahead(additional);
            return;
        }
        // A growth still under way ends first: only a reservation larger than the whole
        // table (a replay's) gets here before the last growth has finished.
        self.advance(usize::MAX, hash_of);
        let len = self.len();
        let slots = ((len + additional) * LOAD_DENOMINATOR / LOAD_NUMERATOR + 1)
            .next_power_of_two()
            .max(self.table.slots.len() * 2);
        let table = match self.spare.take() {
            Some(spare) if spare.size == slots => spare.into_table(),
            _ => Table::new(slots),
        };
        let old = std::mem::replace(&mut self.table, table);
        self.growth = Some(Box::new(Growth { old, next: 0, end: len as u32 }));
        self.advance(moves, hash_of);
    }

    /// Zeroes some of the next table (see [`Spare`]) if this one is nearly full.
    #[inline]
    fn zero_ahead(&mut self, additional: usize) {
        if (self.len() + additional) * 16 < self.table.slots.len() * SPARE_FROM || self.growth.is_some() {
            return;
        }
        let size = self.table.slots.len() * 2;
        let spare = self.spare.get_or_insert_with(|| Box::new(Spare::new(size)));
        spare.zero(additional * ZEROED_PER_INSERT);
    }

    /// The position of `id`, if indexed.
    pub fn find(&self, id: u128, id_of: impl Fn(u32) -> u128) -> Option<u32> {
        self.find_by(id, |p| id_of(p) == id)
    }

    /// The position of `id`, if indexed, where `is(p)` tells whether position `p` holds `id`
    /// (which can answer most mismatches without reading the record).
    pub fn find_by(&self, id: u128, is: impl Fn(u32) -> bool) -> Option<u32> {
        let h = hash(id);
        match self.table.probe(h, &is) {
            Ok(position) => Some(position),
            Err(_) => self.growth.as_ref().and_then(|g| g.old.probe(h, &is).ok()),
        }
    }

    /// The position of `id`, or the empty slot where it would go, with room made for it: the
    /// slot stays valid for [`IdIndex::insert_vacant`] until the index next changes.
    /// `is` as in [`IdIndex::find_by`]; `hash_of` gives the hashes of the ids a growth moves.
    pub fn probe_by(
        &mut self,
        id: u128,
        hash_of: impl Fn(u32) -> u64,
        is: impl Fn(u32) -> bool,
    ) -> Result<u32, Vacant> {
        self.make_room(1, MOVES_PER_INSERT, &hash_of);
        let h = hash(id);
        match self.table.probe(h, &is) {
            Ok(position) => Ok(position),
            Err((slot, tag)) => match self.growth.as_ref().and_then(|g| g.old.probe(h, &is).ok()) {
                Some(position) => Ok(position),
                None => Err(Vacant { slot, tag }),
            },
        }
    }

    /// Fills the slot a [`IdIndex::probe`] found empty, with no change to the index in
    /// between.
    pub fn insert_vacant(&mut self, vacant: Vacant, position: u32) {
        assert!(self.table.slots[vacant.slot] == 0, "the vacant slot was taken");
        assert!(self.fits(1), "insert without room");
        self.table.slots[vacant.slot] = position + 1;
        self.table.tags[vacant.slot] = vacant.tag;
        self.table.len += 1;
    }

    /// Makes room for `additional` more ids, and moves a bounded step of a growth under way:
    /// called once per batch, with the batch's size.
    pub fn reserve(&mut self, additional: usize, id_of: impl Fn(u32) -> u128) {
        self.reserve_hashed(additional, |p| hash(id_of(p)));
    }

    /// [`IdIndex::reserve`], with the hashes of the indexed ids given by position.
    pub fn reserve_hashed(&mut self, additional: usize, hash_of: impl Fn(u32) -> u64) {
        self.make_room(additional, MOVES_PER_RESERVE, &hash_of);
    }

    /// Touches the slot where a probe for `id` starts and returns a value derived from it.
    /// Called for a whole batch before the batch is applied: the loads are independent, so the
    /// CPU overlaps their cache misses instead of taking them one by one inside `find`.
    pub fn warm(&self, id: u128) -> u32 {
        let h = hash(id);
        let old = self.growth.as_ref().map_or(0, |g| g.old.touch(h));
        self.table.touch(h) ^ old
    }

    /// Indexes `position` under `id`, which must not be indexed yet.
    pub fn insert(&mut self, id: u128, position: u32, id_of: impl Fn(u32) -> u128) {
        self.insert_hashed(id, position, |p| hash(id_of(p)));
    }

    /// [`IdIndex::insert`], with the hashes of the indexed ids given by position.
    pub fn insert_hashed(&mut self, id: u128, position: u32, hash_of: impl Fn(u32) -> u64) {
        debug_assert!(position < u32::MAX);
        self.make_room(1, MOVES_PER_INSERT, &hash_of);
        self.table.place(hash(id), position + 1);
    }

    /// Removes `id`, which must be indexed at the newest position.
    pub fn remove(&mut self, id: u128, id_of: impl Fn(u32) -> u128) {
        self.remove_by(id, |p| id_of(p) == id, |p| hash(id_of(p)));
    }

    /// [`IdIndex::remove`], with `is` as in [`IdIndex::find_by`] and the hashes of the ids the
    /// deletion shifts back given by position.
    pub fn remove_by(&mut self, id: u128, is: impl Fn(u32) -> bool, hash_of: impl Fn(u32) -> u64) {
        let h = hash(id);
        let in_table = self.table.remove(h, &is, &hash_of);
        let in_old = match self.growth.as_mut() {
            Some(growth) => {
                let removed = growth.old.remove(h, &is, &hash_of);
                if let Some(position) = removed {
                    // The old table holds `0..end`, and the newest position is removed.
                    assert_eq!(position + 1, growth.end, "removing an id that is not the newest");
                    growth.end = position;
                    growth.next = growth.next.min(position);
                }
                removed
            }
            None => None,
        };
        assert!(in_table.is_some() || in_old.is_some(), "removing an id that is not indexed");
        if self.growth.as_ref().is_some_and(|g| g.next == g.end) {
            self.growth = None;
        }
    }

    /// Bytes of memory held, for the memory benchmark.
    pub fn bytes_allocated(&self) -> usize {
        let spare = self.spare.as_ref().map_or(0, |s| s.slots.capacity() * 4 + s.tags.capacity());
        self.table.bytes_allocated() + self.growth.as_ref().map_or(0, |g| g.old.bytes_allocated()) + spare
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
                // Now and then a long rollback, which reaches back past the start of a growth.
                let removals = if state.is_multiple_of(256) { 64 } else { 1 };
                for _ in 0..removals {
                    if let Some(last) = ids.pop() {
                        let len = ids.len() as u32;
                        index.remove(last, |p| if p == len { last } else { ids[p as usize] });
                        model.remove(&last);
                    }
                }
            } else if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(id) {
                ids.push(id);
                let position = (ids.len() - 1) as u32;
                if state.is_multiple_of(3) {
                    index.insert(id, position, |p| ids[p as usize]);
                } else {
                    let vacant = index
                        .probe_by(id, |p| hash(ids[p as usize]), |p| ids[p as usize] == id)
                        .expect_err("a new id is vacant");
                    index.insert_vacant(vacant, position);
                }
                slot.insert(position);
            } else {
                assert_eq!(index.find(id, |p| ids[p as usize]), model.get(&id).copied());
                // An id never inserted (all are multiples of 2^32 + 1) is found nowhere.
                assert_eq!(index.find(id + 1, |p| ids[p as usize]), None);
            }
            if step % 991 == 0 {
                index.reserve((state % 2048) as usize, |p| ids[p as usize]);
            }
            if step % 997 == 0 {
                for (&id, &position) in &model {
                    assert_eq!(index.find(id, |p| ids[p as usize]), Some(position));
                }
                assert_eq!(index.len(), model.len());
            }
        }
    }

    /// A growth larger than one step spreads over several reserves, ids stay findable in
    /// either table meanwhile (new ones are vacant, and a rollback of the newest works in
    /// both), and the old table is gone once every id has moved.
    #[test]
    fn a_growth_moves_a_bounded_step_per_reserve() {
        const BATCH: usize = 8_189;
        let id_at = |p: u32| (p as u128 + 1) * 0x9E37_79B9_7F4A_7C15;
        let mut index = IdIndex::default();
        let mut len = 0u32;
        let mut reserves_during_growth = 0;
        while len < 3 * MOVES_PER_RESERVE as u32 {
            let growing = index.growth.is_some();
            let moved_before = index.growth.as_ref().map_or(0, |g| g.next);
            index.reserve(BATCH, id_at);
            if let Some(g) = &index.growth {
                reserves_during_growth += 1;
                let moved = g.next - if growing { moved_before } else { 0 };
                assert!(moved as usize <= MOVES_PER_RESERVE, "moved {moved} ids in one reserve");
                for p in (0..len).step_by(97) {
                    assert_eq!(index.find(id_at(p), id_at), Some(p));
                }
                // Roll back the newest id and put it back.
                if len > 0 {
                    let newest = id_at(len - 1);
                    index.remove(newest, id_at);
                    assert_eq!(index.find(newest, id_at), None);
                    index.insert(newest, len - 1, id_at);
                }
            }
            for _ in 0..BATCH {
                let vacant = index
                    .probe_by(id_at(len), |p| hash(id_at(p)), |p| id_at(p) == id_at(len))
                    .expect_err("a new id is vacant");
                index.insert_vacant(vacant, len);
                len += 1;
            }
        }
        assert!(reserves_during_growth >= 2, "a growth took {reserves_during_growth} reserves");
        for p in 0..len {
            assert_eq!(index.find(id_at(p), id_at), Some(p));
        }
        assert_eq!(index.len(), len as usize);
        while index.growth.is_some() {
            index.reserve(0, id_at);
        }
        assert_eq!(index.len(), len as usize);
        assert_eq!(index.table.len, len as usize, "every id moved to the new table");
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
                    .all(|(c, v)| matches!((c, v), (Chunk::Shared(s), Some(v)) if Arc::ptr_eq(s, v))));
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
