//! Transfers beyond RAM: the array of transfers with its oldest chunks in an embedded store.
//! The balance log goes cold the same way (`balances.rs`), through the same store.
//!
//! A full chunk of transfers before the last never changes again (transfers are append-only;
//! a pending transfer's status is in its own array). The engine copies such chunks, oldest
//! first, to its embedded store and then tells the ledger to drop them: the chunk goes
//! **cold**. What stays in memory per cold transfer is its index slot, its history links, its
//! pending byte and the index's 64-bit hash of its id, which answers every lookup of an id that
//! is not there without reading the store, and lets the index grow without reading it. Going cold changes where a record is, never
//! what it is: the state, its hash and its snapshot are the same whether a chunk is hot or
//! cold, so which chunks are cold is not in the journal and replicas and replays decide it
//! for themselves.
//!
//! The core does no I/O: reads go through [`ColdStore`], which the engine implements over its
//! store. A store that cannot answer (a failed disk, a checksum that does not match) stops
//! the process with a message; recovery then rebuilds from the snapshot and the journal, which
//! hold every transfer.

use super::balances::LoggedBalance;
use super::store::{hash, Chunked, ChunkedView, CHUNK_RECORDS};
use super::Transfer;
use std::sync::Arc;

/// Transfers per chunk: the unit that goes cold.
pub const TRANSFERS_PER_CHUNK: usize = CHUNK_RECORDS;

/// Where a ledger reads its cold transfers.
pub trait ColdStore: Send + Sync + std::fmt::Debug {
    /// Fills `out` with the transfers at positions `first..first + out.len()`, all in cold
    /// chunks. Panics if the store cannot answer (see the module documentation).
    fn read(&self, first: u32, out: &mut [Transfer]);
    /// The history links of the cold transfer at `position`: the previous transfer of its
    /// debit account and of its credit account (`NONE` if none).
    fn read_links(&self, position: u32) -> [u32; 2];
    /// Fills `out` with the balance log's entries at positions `first..first + out.len()`, all
    /// in cold chunks. Panics if the store cannot answer.
    fn read_balances(&self, first: u32, out: &mut [LoggedBalance]);
}

/// What goes cold: a ledger's transfers, or its balance log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColdKind {
    /// The transfers with their history links.
    Transfers,
    /// The balance log of accounts with the `history` flag.
    Balances,
}

impl ColdKind {
    /// Every kind, in the order the engine numbers them.
    pub const ALL: [ColdKind; 2] = [ColdKind::Transfers, ColdKind::Balances];
}

/// A chunk that may go cold.
#[derive(Clone, Debug)]
pub enum ColdChunk {
    /// Transfers and each one's history links.
    Transfers {
        /// The transfers.
        records: Arc<Vec<Transfer>>,
        /// Each transfer's history links.
        links: Arc<Vec<[u32; 2]>>,
    },
    /// Entries of the balance log.
    Balances(Arc<Vec<LoggedBalance>>),
}

impl ColdChunk {
    /// Its kind.
    pub fn kind(&self) -> ColdKind {
        match self {
            ColdChunk::Transfers { .. } => ColdKind::Transfers,
            ColdChunk::Balances(_) => ColdKind::Balances,
        }
    }
}

/// Where a snapshot being decoded puts its transfers and balances beyond the hot window, so
/// that a recovery never holds them all in memory at once: the engine's store, written as the
/// decoder reads.
pub trait ColdSpill {
    /// The reader of ledger `which`'s cold transfers (0: the operators' ledger, 1: the books).
    fn store(&self, which: usize) -> Arc<dyn ColdStore>;
    /// Chunks kept in memory after the last cold one (at least 1).
    fn hot_chunks(&self) -> usize;
    /// Puts chunk `chunk` (of its kind) of ledger `which` in the store; `false` if it could
    /// not (the decoder then keeps the rest in memory).
    fn write(&self, which: usize, chunk: usize, data: ColdChunk) -> bool;
}

/// The ledger's transfers: hot chunks in memory, cold ones in the store.
#[derive(Clone, Debug, Default)]
pub(crate) struct Transfers {
    records: Chunked<Transfer>,
    /// Per transfer: the previous transfer of its debit account and of its credit account
    /// (`NONE` if none): with the accounts' heads, each account's history, newest first.
    /// Never changes once written, and goes cold with its chunk.
    links: Chunked<[u32; 2]>,
    store: Option<Arc<dyn ColdStore>>,
    /// Per cold chunk, the index's hash of each of its transfers' ids: a growth of the index
    /// moves ids by their hashes without reading the store, and a probe compares hashes first.
    hashes: Vec<Box<[u64]>>,
}

impl Transfers {
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn push(&mut self, t: Transfer, links: [u32; 2]) -> u32 {
        self.links.push(links);
        self.records.push(t)
    }

    pub(crate) fn pop(&mut self) -> Option<(Transfer, [u32; 2])> {
        let links = self.links.pop()?;
        self.records.pop().map(|t| (t, links))
    }

    pub(crate) fn seal(&mut self) {
        self.records.seal();
        self.links.seal();
    }

    pub(crate) fn bytes_allocated(&self) -> usize {
        self.records.bytes_allocated() + self.links.bytes_allocated() + self.hashes.len() * TRANSFERS_PER_CHUNK * 8
    }

    /// The history links of the transfer at `position`.
    #[inline]
    pub(crate) fn links_at(&self, position: u32) -> [u32; 2] {
        if self.links.is_hot(position) {
            *self.links.get(position)
        } else {
            self.store.as_ref().expect("a cold chunk without a store").read_links(position)
        }
    }

    /// The transfer at `position`, which must exist.
    #[inline]
    pub(crate) fn at(&self, position: u32) -> Transfer {
        if self.records.is_hot(position) {
            *self.records.get(position)
        } else {
            self.read_cold(position)
        }
    }

    #[cold]
    #[inline(never)]
    fn read_cold(&self, position: u32) -> Transfer {
        let mut out = [Transfer::default()];
        self.store.as_ref().expect("a cold chunk without a store").read(position, &mut out);
        out[0]
    }

    /// The index's hash of the id of the transfer at `position`, without reading the store.
    #[inline]
    pub(crate) fn id_hash(&self, position: u32) -> u64 {
        if self.records.is_hot(position) {
            return hash(self.records.get(position).id);
        }
        let p = position as usize;
        self.hashes[p / TRANSFERS_PER_CHUNK][p % TRANSFERS_PER_CHUNK]
    }

    /// Whether the transfer at `position` has this id: for a cold one, the kept hash answers a
    /// mismatch without reading the store.
    #[inline]
    pub(crate) fn is(&self, position: u32, id: u128) -> bool {
        if self.records.is_hot(position) {
            return self.records.get(position).id == id;
        }
        let p = position as usize;
        self.hashes[p / TRANSFERS_PER_CHUNK][p % TRANSFERS_PER_CHUNK] == hash(id) && self.read_cold(position).id == id
    }

    /// Every transfer in position order, a chunk at a time (a cold chunk is read whole).
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = Transfer> + '_ {
        (0..self.records.chunk_count()).flat_map(move |c| self.chunk_records(c))
    }

    fn chunk_records(&self, chunk: usize) -> ChunkRecords<'_> {
        if chunk >= self.records.cold_chunks() {
            return ChunkRecords::Hot(self.records.chunk(chunk).iter());
        }
        let mut out = Vec::new();
        read_cold_chunk(&self.store, chunk, &mut out);
        ChunkRecords::Cold(out.into_iter())
    }

    pub(crate) fn view(&self) -> TransfersView {
        TransfersView { records: self.records.view(), store: self.store.clone() }
    }

    pub(crate) fn set_store(&mut self, store: Arc<dyn ColdStore>) {
        self.store = Some(store);
    }

    pub(crate) fn chunk_count(&self) -> usize {
        self.records.chunk_count()
    }

    pub(crate) fn cold_chunks(&self) -> usize {
        self.records.cold_chunks()
    }

    pub(crate) fn sealed_full_chunk(&self, index: usize) -> Option<ColdChunk> {
        Some(ColdChunk::Transfers {
            records: self.records.sealed_full_chunk(index)?,
            links: self.links.sealed_full_chunk(index)?,
        })
    }

    /// Drops the next chunk to go cold, keeping its ids' hashes. The store must hold it.
    pub(crate) fn make_cold(&mut self) {
        assert!(self.store.is_some(), "a chunk goes cold only with a store to read it from");
        let chunk = self.records.cold_chunks();
        let hashes = self.records.chunk(chunk).iter().map(|t| hash(t.id)).collect();
        self.records.make_cold();
        self.links.make_cold();
        self.hashes.push(hashes);
    }
}

/// Reads cold chunk `index` whole into `out`.
fn read_cold_chunk(store: &Option<Arc<dyn ColdStore>>, index: usize, out: &mut Vec<Transfer>) {
    out.resize(TRANSFERS_PER_CHUNK, Transfer::default());
    store.as_ref().expect("a cold chunk without a store").read((index * TRANSFERS_PER_CHUNK) as u32, out);
}

enum ChunkRecords<'a> {
    Hot(std::slice::Iter<'a, Transfer>),
    Cold(std::vec::IntoIter<Transfer>),
}

impl Iterator for ChunkRecords<'_> {
    type Item = Transfer;

    fn next(&mut self) -> Option<Transfer> {
        match self {
            ChunkRecords::Hot(it) => it.next().copied(),
            ChunkRecords::Cold(it) => it.next(),
        }
    }
}

impl DoubleEndedIterator for ChunkRecords<'_> {
    fn next_back(&mut self) -> Option<Transfer> {
        match self {
            ChunkRecords::Hot(it) => it.next_back().copied(),
            ChunkRecords::Cold(it) => it.next_back(),
        }
    }
}

/// A frozen view of the transfers, for a snapshot: cold chunks are read from the store as the
/// snapshot is written (they never change, so any later read gives the same records).
#[derive(Clone, Debug)]
pub(crate) struct TransfersView {
    records: ChunkedView<Transfer>,
    store: Option<Arc<dyn ColdStore>>,
}

impl TransfersView {
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Calls `f` with each chunk's records in order, reading cold ones into a buffer.
    pub(crate) fn for_each_chunk(&self, mut f: impl FnMut(&[Transfer])) {
        let mut buffer = Vec::new();
        for (index, chunk) in self.records.chunks().enumerate() {
            match chunk {
                Some(records) => f(records),
                None => {
                    read_cold_chunk(&self.store, index, &mut buffer);
                    f(&buffer);
                }
            }
        }
    }
}
