//! The embedded store of cold transfers and balances, and the thread that fills it.
//!
//! Transfers are append-only, so a full chunk of them before the last never changes again.
//! Once a ledger has more than the hot window's worth of chunks after it, such a chunk is
//! copied here by the **spill thread** (off the writer), and when the copy is durable the
//! writer drops the chunk from memory between two batches (`State::make_transfer_chunk_cold`).
//! Reads of a cold transfer (a duplicate check that its fingerprint did not rule out, a post
//! of an old pending transfer, an account's history, a snapshot) come here through
//! [`ColdStore`].
//!
//! **The store: redb**, a copy-on-write B-tree in one file, pure Rust, with checksummed pages
//! and a stable file format. Chosen over an LSM (fjall, RocksDB) because this data is written
//! once, in key order, and read by key: an LSM's strengths (absorbing random writes, merging
//! updates) buy nothing here and its compactions and level lookups cost, while a B-tree
//! appended in key order is one lookup per read with no background work. Keys are page
//! numbers, one table per ledger; a page holds 29 transfers with their history links and a
//! checksum that every read checks (redb checks its own only when it repairs a file), and a
//! second table holds each chunk's digest, so that a chunk stored as it is is not written
//! again. The balance log of accounts with the `history` flag goes cold the same way, chunk
//! by chunk, in its own tables (82 entries of 48 bytes a page). A failed read stops the process and leaves a marker (`cold.suspect`) that makes the
//! next start set the store aside.
//!
//! **What a crash does.** Nothing in this store is needed to recover: the snapshot and the
//! journal hold every transfer, and which chunks are cold is not state. After a restart the
//! chunks beyond the hot window go cold again; a chunk the store already holds with the same
//! bytes is not written again, and one that differs (a data directory restored from another
//! copy) is overwritten, so a chunk goes cold only once this store holds it as the state has it.

use crate::EngineError;
use kasa_core::ledger::{
    ColdChunk, ColdKind, ColdSpill, ColdStore, LoggedBalance, Record, Transfer, RECORD_BYTES, TRANSFERS_PER_CHUNK,
};
use kasa_core::State;
use redb::{Database, DatabaseError, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The checksum at the end of every page: the first 8 bytes of the BLAKE3 hash of the rest.
/// redb checks its pages' checksums only when it repairs a file, so a read checks this.
const CHECKSUM_BYTES: usize = 8;
/// The most bytes of a page: entries, checksum and the B-tree's own bytes fit one 4 KiB page
/// of redb's; a value past it would take two.
const PAGE_BYTES: usize = 3_952;

/// How a kind of record is laid out in the store's pages.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Bytes of an entry: a transfer's 128-byte record and its two history links; a balance's
    /// 48 bytes.
    entry_bytes: usize,
    /// Entries per page: 29 transfers (3,952 bytes with the checksum), 82 balances (3,944).
    page_records: usize,
}

impl Layout {
    fn of(kind: ColdKind) -> Layout {
        match kind {
            ColdKind::Transfers => Layout { entry_bytes: RECORD_BYTES + 8, page_records: 29 },
            ColdKind::Balances => Layout { entry_bytes: LoggedBalance::BYTES, page_records: 82 },
        }
    }

    /// Pages per chunk (the last one shorter): a page never spans two chunks.
    fn pages_per_chunk(self) -> usize {
        TRANSFERS_PER_CHUNK.div_ceil(self.page_records)
    }

    /// The page holding `position`: its key, its first position and its number of records.
    fn page_of(self, position: usize) -> (u64, usize, usize) {
        let (chunk, offset) = (position / TRANSFERS_PER_CHUNK, position % TRANSFERS_PER_CHUNK);
        let index = offset / self.page_records;
        let (key, start, len) = self.page_span((chunk * self.pages_per_chunk() + index) as u64);
        debug_assert!(start <= position && position < start + len);
        (key, start, len)
    }

    /// A page's key, first position and number of records.
    fn page_span(self, key: u64) -> (u64, usize, usize) {
        let (chunk, index) = (key as usize / self.pages_per_chunk(), key as usize % self.pages_per_chunk());
        let offset = index * self.page_records;
        (key, chunk * TRANSFERS_PER_CHUNK + offset, self.page_records.min(TRANSFERS_PER_CHUNK - offset))
    }
}

/// The file whose presence says a read of the store failed: the next start sets the store
/// aside instead of trusting it (a chunk whose digest matches is otherwise not rewritten).
fn suspect_marker(path: &std::path::Path) -> PathBuf {
    path.with_extension("suspect")
}

/// The checksum of a page's entries.
fn page_checksum(entries: &[u8]) -> [u8; CHECKSUM_BYTES] {
    blake3::hash(entries).as_bytes()[..CHECKSUM_BYTES].try_into().expect("8 bytes")
}

/// A page's entries, if its length is that of `len` entries and its checksum holds.
fn checked_entries(bytes: &[u8], len: usize, layout: Layout) -> Result<&[u8], String> {
    let entry_bytes = layout.entry_bytes;
    if bytes.len() != len * entry_bytes + CHECKSUM_BYTES {
        return Err(format!("{} bytes, not {}", bytes.len(), len * entry_bytes + CHECKSUM_BYTES));
    }
    let (entries, checksum) = bytes.split_at(len * entry_bytes);
    if page_checksum(entries) != checksum {
        return Err("its checksum does not match its bytes".into());
    }
    Ok(entries)
}
/// Chunks the decoder writes without a sync in between (see `ColdSpill for ColdTier`).
const DECODE_CHUNKS_PER_SYNC: usize = 64;
/// Chunks the spill thread writes in one transaction at most (one sync each transaction).
const CHUNKS_PER_COMMIT: usize = 16;

/// What goes cold, per ledger and kind: a stream of chunks with its own tables.
const STREAMS: usize = State::COLD_LEDGERS * ColdKind::ALL.len();

/// The stream of ledger `ledger`'s chunks of `kind`.
fn stream(ledger: usize, kind: ColdKind) -> usize {
    ledger * ColdKind::ALL.len() + ColdKind::ALL.iter().position(|&k| k == kind).expect("a kind")
}

/// Per stream, its pages by key.
const TABLES: [TableDefinition<u64, &[u8]>; STREAMS] = [
    TableDefinition::new("transfers.operators"),
    TableDefinition::new("balances.operators"),
    TableDefinition::new("transfers.books"),
    TableDefinition::new("balances.books"),
];
/// Per stream and chunk, the BLAKE3 digest of its pages: a chunk already stored as it is is
/// not written again.
const DIGESTS: [TableDefinition<u64, &[u8]>; STREAMS] = [
    TableDefinition::new("digests.operators"),
    TableDefinition::new("balance-digests.operators"),
    TableDefinition::new("digests.books"),
    TableDefinition::new("balance-digests.books"),
];

const LEDGER_NAMES: [&str; State::COLD_LEDGERS] = ["the operators' ledger", "Kasa's books"];

/// Where cold transfers go, and how many stay hot.
#[derive(Clone, Debug)]
pub struct ColdOptions {
    /// The store's file.
    pub path: PathBuf,
    /// Transfers per ledger kept in memory at least, and as many entries of its balance log
    /// (rounded up to whole chunks of 16,384).
    pub hot_transfers: usize,
    /// Bytes of the store's own page cache.
    pub cache_bytes: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ColdStats {
    /// Pages read from the store (reads the last page read answered are not counted).
    pub reads: AtomicU64,
    /// 1 once a write to the store failed: transfers and balances stay in memory from then on.
    pub failed: AtomicU64,
}

struct Job {
    ledger: usize,
    chunk: usize,
    data: ColdChunk,
}

/// The writer's side: sends chunks to the spill thread and drops the ones it stored.
pub(crate) struct ColdTier {
    db: Arc<Database>,
    hot_chunks: usize,
    /// Per stream, the next chunk to send.
    sent: [usize; STREAMS],
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Result<(usize, ColdKind, usize), String>>,
    thread: Option<JoinHandle<()>>,
    /// Set when a write to the store failed: nothing more goes cold (memory grows, nothing is
    /// lost).
    broken: AtomicBool,
    stats: Arc<ColdStats>,
    /// The marker a failed read leaves (see [`ColdReader::fail`]).
    suspect: PathBuf,
}

impl ColdTier {
    /// Opens (or creates) the store and starts the spill thread. A file that is not a
    /// readable store, or one a failed read marked as suspect, is set aside and replaced: it
    /// holds nothing recovery needs. A store in use by another process is an error.
    pub(crate) fn open(options: &ColdOptions, stats: Arc<ColdStats>) -> Result<Self, EngineError> {
        let suspect = suspect_marker(&options.path);
        let aside = options.path.with_extension("unreadable");
        let set_aside = |why: &str| -> Result<(), EngineError> {
            tracing::warn!(path = %options.path.display(), why, "the cold store is set aside; an empty one replaces it");
            std::fs::rename(&options.path, &aside)
                .map_err(|e| EngineError::Cold(format!("cannot set the cold store aside: {e}")))
        };
        if suspect.exists() {
            if options.path.exists() {
                set_aside("a read of it failed before the last stop")?;
            }
            std::fs::remove_file(&suspect)
                .map_err(|e| EngineError::Cold(format!("cannot remove {}: {e}", suspect.display())))?;
        }
        let open = || Database::builder().set_cache_size(options.cache_bytes).create(&options.path);
        let db = match open() {
            Ok(db) => db,
            Err(
                error @ (DatabaseError::DatabaseAlreadyOpen
                | DatabaseError::LockProtocolMismatch
                | DatabaseError::TransactionInProgress),
            ) => {
                return Err(EngineError::Cold(format!("cannot open {}: {error}", options.path.display())));
            }
            Err(error) => {
                set_aside(&error.to_string())?;
                open().map_err(|e| EngineError::Cold(format!("cannot create the cold store: {e}")))?
            }
        };
        let db = Arc::new(db);
        let (jobs, receive_jobs) = mpsc::channel::<Job>();
        let (send_done, done) = mpsc::channel();
        let spill_db = db.clone();
        let thread = std::thread::Builder::new()
            .name("kasa-spill".into())
            .spawn(move || spill(&spill_db, receive_jobs, send_done))
            .map_err(|e| EngineError::Cold(format!("cannot start the spill thread: {e}")))?;
        Ok(ColdTier {
            db,
            hot_chunks: options.hot_transfers.div_ceil(TRANSFERS_PER_CHUNK).max(1),
            sent: [0; STREAMS],
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            broken: AtomicBool::new(false),
            stats,
            suspect,
        })
    }

    fn reader(&self, ledger: usize) -> Arc<ColdReader> {
        Arc::new(ColdReader {
            db: self.db.clone(),
            ledger,
            last: [Mutex::new(None), Mutex::new(None)],
            stats: self.stats.clone(),
            suspect: self.suspect.clone(),
        })
    }

    /// Gives `state` a reader of each ledger's cold transfers and balances.
    pub(crate) fn attach(&mut self, state: &mut State) {
        for ledger in 0..State::COLD_LEDGERS {
            state.set_cold_store(ledger, self.reader(ledger));
            for kind in ColdKind::ALL {
                self.sent[stream(ledger, kind)] = state.cold_chunks(ledger, kind).1;
            }
        }
    }

    /// Between batches: drops the chunks the store now holds, and sends the next ones beyond
    /// the hot window. Cheap when there is nothing to do.
    pub(crate) fn tick(&mut self, state: &mut State) {
        while let Ok(result) = self.done.try_recv() {
            match result {
                Ok((ledger, kind, chunk)) => {
                    let (_, cold) = state.cold_chunks(ledger, kind);
                    assert_eq!(chunk, cold, "chunks go cold oldest first");
                    state.make_chunk_cold(ledger, kind);
                }
                Err(error) => {
                    tracing::error!(%error, "the cold store failed: records stay in memory from now on");
                    self.broken.store(true, Ordering::Relaxed);
                    self.stats.failed.store(1, Ordering::Relaxed);
                    self.jobs = None;
                }
            }
        }
        let Some(jobs) = self.jobs.as_ref().filter(|_| !self.broken.load(Ordering::Relaxed)) else { return };
        for ledger in 0..State::COLD_LEDGERS {
            for kind in ColdKind::ALL {
                let (chunks, _) = state.cold_chunks(ledger, kind);
                let sent = &mut self.sent[stream(ledger, kind)];
                while *sent + self.hot_chunks < chunks {
                    let chunk = *sent;
                    let Some(data) = state.sealed_chunk(ledger, kind, chunk) else { break };
                    if jobs.send(Job { ledger, chunk, data }).is_err() {
                        return;
                    }
                    *sent += 1;
                }
            }
        }
    }
}

/// A snapshot being decoded writes its cold chunks through the tier, on the writer's thread
/// (nothing else runs yet), so that recovery holds only the hot window in memory.
impl ColdSpill for ColdTier {
    fn store(&self, which: usize) -> Arc<dyn ColdStore> {
        self.reader(which)
    }

    fn hot_chunks(&self) -> usize {
        self.hot_chunks
    }

    fn write(&self, which: usize, chunk: usize, data: ColdChunk) -> bool {
        if self.broken.load(Ordering::Relaxed) {
            return false;
        }
        // Synced every so many chunks only: the store needs no durability (a chunk lost in a
        // crash is written again on the next start), and a sync per chunk made a recovery
        // that rebuilds the store wait for the disk.
        let durability =
            if chunk.is_multiple_of(DECODE_CHUNKS_PER_SYNC) { Durability::Immediate } else { Durability::None };
        let write = ChunkWrite { ledger: which, chunk, data: &data };
        match write_chunks(&self.db, &[write], &mut Vec::with_capacity(PAGE_BYTES), durability) {
            Ok(()) => true,
            Err(error) => {
                // Recovery goes on with the rest in memory, as the spill thread does.
                tracing::error!(%error, "the cold store failed while a snapshot was read: records stay in memory");
                self.broken.store(true, Ordering::Relaxed);
                self.stats.failed.store(1, Ordering::Relaxed);
                false
            }
        }
    }
}

impl Drop for ColdTier {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The spill thread: writes chunks, a few per transaction, skipping those the store already
/// holds as they are, and reports each once durable.
fn spill(db: &Database, jobs: mpsc::Receiver<Job>, done: mpsc::Sender<Result<(usize, ColdKind, usize), String>>) {
    let mut page = Vec::with_capacity(PAGE_BYTES);
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < CHUNKS_PER_COMMIT {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let items: Vec<_> =
            batch.iter().map(|job| ChunkWrite { ledger: job.ledger, chunk: job.chunk, data: &job.data }).collect();
        let result = write_chunks(db, &items, &mut page, Durability::Immediate);
        match result {
            Ok(()) => {
                for job in &batch {
                    if done.send(Ok((job.ledger, job.data.kind(), job.chunk))).is_err() {
                        return;
                    }
                }
            }
            Err(error) => {
                let _ = done.send(Err(error));
                return;
            }
        }
    }
}

/// A chunk to write: its ledger, its number and its records.
#[derive(Clone, Copy)]
struct ChunkWrite<'a> {
    ledger: usize,
    chunk: usize,
    data: &'a ColdChunk,
}

/// Page `index`'s bytes of a chunk: for transfers, their records, then their links; for
/// balances, the entries; then the checksum.
fn encode_page(data: &ColdChunk, index: usize, page: &mut Vec<u8>) {
    page.clear();
    let range = |len: usize, page_records: usize| index * page_records..(index * page_records + page_records).min(len);
    match data {
        ColdChunk::Transfers { records, links } => {
            let range = range(records.len(), Layout::of(ColdKind::Transfers).page_records);
            for t in &records[range.clone()] {
                t.encode_record(page);
            }
            for l in &links[range] {
                page.extend_from_slice(&l[0].to_le_bytes());
                page.extend_from_slice(&l[1].to_le_bytes());
            }
        }
        ColdChunk::Balances(entries) => {
            for b in &entries[range(entries.len(), Layout::of(ColdKind::Balances).page_records)] {
                b.encode(page);
            }
        }
    }
    let checksum = page_checksum(page);
    page.extend_from_slice(&checksum);
}

/// Entry `i` of a page of `len` transfers: the record.
fn transfer_at(entries: &[u8], i: usize) -> Transfer {
    Transfer::decode_record(entries[i * RECORD_BYTES..(i + 1) * RECORD_BYTES].try_into().expect("a record's bytes"))
}

/// Entry `i` of a page of `len` transfers: the links.
fn links_at(entries: &[u8], len: usize, i: usize) -> [u32; 2] {
    let at = len * RECORD_BYTES + i * 8;
    let word = |j: usize| u32::from_le_bytes(entries[at + j..at + j + 4].try_into().expect("4 bytes"));
    [word(0), word(4)]
}

/// Entry `i` of a page of balances.
fn balance_at(entries: &[u8], i: usize) -> LoggedBalance {
    let bytes = LoggedBalance::BYTES;
    LoggedBalance::decode(entries[i * bytes..(i + 1) * bytes].try_into().expect("an entry's bytes"))
}

/// Writes chunks in one transaction, skipping those the
/// store holds already with the same digest; with `Durability::Immediate`, durable on return.
fn write_chunks(
    db: &Database,
    items: &[ChunkWrite<'_>],
    page: &mut Vec<u8>,
    durability: Durability,
) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| format!("begin: {e}"))?;
    txn.set_durability(durability).map_err(|e| format!("durability: {e}"))?;
    // Saves the allocator's state with the commit, so that opening the file after a crash
    // does not walk the whole store to rebuild it.
    txn.set_quick_repair(true);
    let mut written = false;
    for &ChunkWrite { ledger, chunk, data } in items {
        let kind = data.kind();
        let pages = Layout::of(kind).pages_per_chunk();
        let stream = stream(ledger, kind);
        let mut hasher = blake3::Hasher::new();
        for index in 0..pages {
            encode_page(data, index, page);
            hasher.update(page);
        }
        let digest = hasher.finalize();
        let mut digests = txn.open_table(DIGESTS[stream]).map_err(|e| format!("open digests: {e}"))?;
        let key = chunk as u64;
        if digests
            .get(key)
            .map_err(|e| format!("read digest {key}: {e}"))?
            .is_some_and(|v| v.value() == digest.as_bytes())
        {
            continue;
        }
        let mut table = txn.open_table(TABLES[stream]).map_err(|e| format!("open table: {e}"))?;
        for index in 0..pages {
            encode_page(data, index, page);
            let key = (chunk * pages + index) as u64;
            table.insert(key, page.as_slice()).map_err(|e| format!("write page {key}: {e}"))?;
        }
        digests.insert(key, digest.as_bytes().as_slice()).map_err(|e| format!("write digest {key}: {e}"))?;
        written = true;
    }
    if written {
        txn.commit().map_err(|e| format!("commit: {e}"))
    } else {
        txn.abort().map_err(|e| format!("abort: {e}"))
    }
}

/// A ledger's reader of its cold transfers and balances. It keeps the last page it read of
/// each kind, since reads come in position order (a history, a snapshot) more often than not.
struct ColdReader {
    db: Arc<Database>,
    ledger: usize,
    /// The last page read, per kind.
    last: [Mutex<Option<Arc<Page>>>; 2],
    stats: Arc<ColdStats>,
    suspect: PathBuf,
}

/// A page as read: its first position, its number of entries and its checked entries' bytes.
struct Page {
    start: usize,
    len: usize,
    entries: Vec<u8>,
}

impl std::fmt::Debug for ColdReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ColdReader({})", LEDGER_NAMES[self.ledger])
    }
}

impl ColdReader {
    fn fail(&self, what: &str, error: impl std::fmt::Display) -> ! {
        // A store that cannot give back a record it took is a failed disk: stop, and let
        // recovery rebuild from the snapshot and the journal, which hold every record. The
        // marker makes the next start set this store aside rather than trust it again.
        let marked = std::fs::write(&self.suspect, b"a read failed\n");
        panic!(
            "the cold store of {} cannot {what}: {error} (marked for rebuilding at the next start: {marked:?})",
            LEDGER_NAMES[self.ledger]
        )
    }

    /// The page of `kind` holding `position`: the last one read, or read now.
    fn page(&self, kind: ColdKind, position: usize) -> Arc<Page> {
        let last = &self.last[stream(0, kind)];
        if let Some(page) = last.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if position >= page.start && position < page.start + page.len {
                return page.clone();
            }
        }
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        let layout = Layout::of(kind);
        let (key, start, len) = layout.page_of(position);
        let txn = self.db.begin_read().unwrap_or_else(|e| self.fail("begin a read", e));
        let table =
            txn.open_table(TABLES[stream(self.ledger, kind)]).unwrap_or_else(|e| self.fail("open its table", e));
        let value = table
            .get(key)
            .unwrap_or_else(|e| self.fail(&format!("read page {key}"), e))
            .unwrap_or_else(|| self.fail(&format!("find page {key}"), "missing"));
        let entries =
            checked_entries(value.value(), len, layout).unwrap_or_else(|e| self.fail(&format!("read page {key}"), e));
        let page = Arc::new(Page { start, len, entries: entries.to_vec() });
        *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(page.clone());
        page
    }

    /// Calls `put(i, entries, j)` for each position `first + i` of `first..first + count` of
    /// `kind`, with its page's checked entries and its index `j` among them.
    fn read_entries(&self, kind: ColdKind, first: usize, count: usize, mut put: impl FnMut(usize, &[u8], usize)) {
        let layout = Layout::of(kind);
        let end = first + count;
        if count > layout.page_records {
            // A chunk at a time (a snapshot, a scan): one transaction and one range.
            let txn = self.db.begin_read().unwrap_or_else(|e| self.fail("begin a read", e));
            let table =
                txn.open_table(TABLES[stream(self.ledger, kind)]).unwrap_or_else(|e| self.fail("open its table", e));
            let (first_key, ..) = layout.page_of(first);
            let (last_key, ..) = layout.page_of(end - 1);
            let pages = table.range(first_key..=last_key).unwrap_or_else(|e| self.fail("read a range of pages", e));
            let mut position = first;
            for entry in pages {
                let (key, value) = entry.unwrap_or_else(|e| self.fail("read a range of pages", e));
                let (key, start, len) = layout.page_span(key.value());
                if start + len <= position || start > position {
                    self.fail(&format!("read page {key}"), format!("found it where position {position} was expected"));
                }
                let entries = checked_entries(value.value(), len, layout)
                    .unwrap_or_else(|e| self.fail(&format!("read page {key}"), e));
                self.stats.reads.fetch_add(1, Ordering::Relaxed);
                while position < (start + len).min(end) {
                    put(position - first, entries, position - start);
                    position += 1;
                }
            }
            if position != end {
                self.fail(&format!("find the page of position {position}"), "missing");
            }
            return;
        }
        let mut position = first;
        while position < end {
            let page = self.page(kind, position);
            while position < (page.start + page.len).min(end) {
                put(position - first, &page.entries, position - page.start);
                position += 1;
            }
        }
    }
}

impl ColdStore for ColdReader {
    fn read(&self, first: u32, out: &mut [Transfer]) {
        self.read_entries(ColdKind::Transfers, first as usize, out.len(), |i, entries, j| {
            out[i] = transfer_at(entries, j)
        });
    }

    fn read_links(&self, position: u32) -> [u32; 2] {
        let page = self.page(ColdKind::Transfers, position as usize);
        links_at(&page.entries, page.len, position as usize - page.start)
    }

    fn read_balances(&self, first: u32, out: &mut [LoggedBalance]) {
        self.read_entries(ColdKind::Balances, first as usize, out.len(), |i, entries, j| {
            out[i] = balance_at(entries, j)
        });
    }
}

/// `kasa verify`'s check of a cold store against the state a replay reached: every page it
/// holds must have its length and checksum, and equal the replay's transfers and history
/// links, or balances, at its positions. Pages past the replay's last record (a store kept
/// from a longer history) are counted, not compared: the server rewrites a chunk before it
/// goes cold. Opens the file read-only: a store in use by a server, or one that needs a
/// repair, is reported as not checked. Returns a line for the report.
pub fn check_cold_store(path: &std::path::Path, state: &State) -> Result<String, String> {
    let db = match ReadOnlyDatabase::open(path) {
        Ok(db) => db,
        Err(error) => return Ok(format!("not checked ({error})")),
    };
    let txn = db.begin_read().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut line = String::new();
    for which in 0..State::COLD_LEDGERS {
        for kind in ColdKind::ALL {
            let name = LEDGER_NAMES[which];
            let ledger = if which == 0 { state.ledger() } else { state.books() };
            let table = match txn.open_table(TABLES[stream(which, kind)]) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => continue,
                Err(e) => return Err(format!("{name}: {e}")),
            };
            let layout = Layout::of(kind);
            let replayed = match kind {
                ColdKind::Transfers => ledger.transfers_count(),
                ColdKind::Balances => ledger.balance_log_len(),
            };
            let (mut compared, mut beyond, mut expected) = (0u64, 0u64, 0u64);
            for entry in table.iter().map_err(|e| format!("{name}: {e}"))? {
                let (key, value) = entry.map_err(|e| format!("{name}: {e}"))?;
                let key = key.value();
                if key != expected {
                    return Err(format!("{name}: page {expected} of {kind:?} is missing (the next is {key})"));
                }
                expected += 1;
                let (_, start, len) = layout.page_span(key);
                if start + len > replayed {
                    beyond += 1;
                    continue;
                }
                let entries =
                    checked_entries(value.value(), len, layout).map_err(|e| format!("{name}: page {key}: {e}"))?;
                for i in 0..len {
                    let same = match kind {
                        ColdKind::Transfers => {
                            ledger.transfer_at(start + i) == Some(transfer_at(entries, i))
                                && ledger.transfer_links(start + i) == Some(links_at(entries, len, i))
                        }
                        ColdKind::Balances => ledger.logged_balance(start + i) == Some(balance_at(entries, i)),
                    };
                    if !same {
                        return Err(format!(
                            "{name}: page {key} of {kind:?} differs from the replay at position {}",
                            start + i
                        ));
                    }
                }
                compared += len as u64;
            }
            let what = match kind {
                ColdKind::Transfers => "transfers and their links",
                ColdKind::Balances => "balances",
            };
            line.push_str(&format!(
                "{}{name}: {compared} {what} equal to the replay{}",
                if line.is_empty() { "" } else { "; " },
                if beyond > 0 { format!(", {beyond} pages past its last record") } else { String::new() }
            ));
        }
    }
    Ok(if line.is_empty() { "empty".into() } else { line })
}
