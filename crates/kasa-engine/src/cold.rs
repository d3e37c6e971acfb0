//! The embedded store of cold transfers, and the thread that fills it.
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
//! numbers (32 transfers, 4 KiB), one table per ledger.
//!
//! **What a crash does.** Nothing in this store is needed to recover: the snapshot and the
//! journal hold every transfer, and which chunks are cold is not state. After a restart the
//! chunks beyond the hot window go cold again; a chunk the store already holds with the same
//! bytes is not written again, and one that differs (a data directory restored from another
//! copy) is overwritten, so a chunk goes cold only once this store holds it as the state has it.

use crate::EngineError;
use kasa_core::ledger::{ColdSpill, ColdStore, Record, Transfer, RECORD_BYTES, TRANSFERS_PER_CHUNK};
use kasa_core::State;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Transfers per page of the store.
const PAGE_RECORDS: usize = 32;
const PAGE_BYTES: usize = PAGE_RECORDS * RECORD_BYTES;
const PAGES_PER_CHUNK: usize = TRANSFERS_PER_CHUNK / PAGE_RECORDS;
/// Chunks the spill thread writes in one transaction at most (one sync each transaction).
const CHUNKS_PER_COMMIT: usize = 16;

const TABLES: [TableDefinition<u64, &[u8]>; State::COLD_LEDGERS] =
    [TableDefinition::new("transfers.operators"), TableDefinition::new("transfers.books")];
const LEDGER_NAMES: [&str; State::COLD_LEDGERS] = ["the operators' ledger", "Kasa's books"];

/// Where cold transfers go, and how many stay hot.
#[derive(Clone, Debug)]
pub struct ColdOptions {
    /// The store's file.
    pub path: PathBuf,
    /// Transfers per ledger kept in memory at least (rounded up to whole chunks of 16,384).
    pub hot_transfers: usize,
    /// Bytes of the store's own page cache.
    pub cache_bytes: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ColdStats {
    /// Chunks written to the store (or found there already) this run.
    pub chunks_stored: AtomicU64,
    /// Chunks dropped from memory this run.
    pub chunks_cold: AtomicU64,
    /// Reads of cold transfers (calls, each one page or more).
    pub reads: AtomicU64,
}

struct Job {
    ledger: usize,
    chunk: usize,
    records: Arc<Vec<Transfer>>,
}

/// The writer's side: sends chunks to the spill thread and drops the ones it stored.
pub(crate) struct ColdTier {
    db: Arc<Database>,
    hot_chunks: usize,
    /// Per ledger, the next chunk to send.
    sent: [usize; State::COLD_LEDGERS],
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Result<(usize, usize), String>>,
    thread: Option<JoinHandle<()>>,
    /// Set when the spill thread failed: nothing more goes cold (memory grows, nothing is lost).
    broken: bool,
    stats: Arc<ColdStats>,
}

impl ColdTier {
    /// Opens (or creates) the store and starts the spill thread. A file that is not a
    /// readable store is set aside and replaced: it holds nothing recovery needs.
    pub(crate) fn open(options: &ColdOptions, stats: Arc<ColdStats>) -> Result<Self, EngineError> {
        let open = || Database::builder().set_cache_size(options.cache_bytes).create(&options.path);
        let db = match open() {
            Ok(db) => db,
            Err(error) => {
                let aside = options.path.with_extension("unreadable");
                tracing::warn!(path = %options.path.display(), %error, "the cold store cannot be opened: set aside, starting an empty one");
                std::fs::rename(&options.path, &aside)
                    .map_err(|e| EngineError::Cold(format!("cannot set the cold store aside: {e}")))?;
                open().map_err(|e| EngineError::Cold(format!("cannot create the cold store: {e}")))?
            }
        };
        let db = Arc::new(db);
        let (jobs, receive_jobs) = mpsc::channel::<Job>();
        let (send_done, done) = mpsc::channel();
        let spill_db = db.clone();
        let spill_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("kasa-spill".into())
            .spawn(move || spill(&spill_db, receive_jobs, send_done, &spill_stats))
            .map_err(|e| EngineError::Cold(format!("cannot start the spill thread: {e}")))?;
        Ok(ColdTier {
            db,
            hot_chunks: options.hot_transfers.div_ceil(TRANSFERS_PER_CHUNK).max(1),
            sent: [0; State::COLD_LEDGERS],
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            broken: false,
            stats,
        })
    }

    fn reader(&self, ledger: usize) -> Arc<ColdReader> {
        Arc::new(ColdReader { db: self.db.clone(), ledger, last: Mutex::new(None), stats: self.stats.clone() })
    }

    /// Gives `state` a reader of each ledger's cold transfers.
    pub(crate) fn attach(&mut self, state: &mut State) {
        for ledger in 0..State::COLD_LEDGERS {
            state.set_cold_store(ledger, self.reader(ledger));
            self.sent[ledger] = state.transfer_chunks(ledger).1;
        }
    }

    /// Between batches: drops the chunks the store now holds, and sends the next ones beyond
    /// the hot window. Cheap when there is nothing to do.
    pub(crate) fn tick(&mut self, state: &mut State) {
        while let Ok(result) = self.done.try_recv() {
            match result {
                Ok((ledger, chunk)) => {
                    let (_, cold) = state.transfer_chunks(ledger);
                    assert_eq!(chunk, cold, "chunks go cold oldest first");
                    state.make_transfer_chunk_cold(ledger);
                    self.stats.chunks_cold.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::error!(%error, "the cold store failed: transfers stay in memory from now on");
                    self.broken = true;
                    self.jobs = None;
                }
            }
        }
        let Some(jobs) = self.jobs.as_ref().filter(|_| !self.broken) else { return };
        for ledger in 0..State::COLD_LEDGERS {
            let (chunks, _) = state.transfer_chunks(ledger);
            while self.sent[ledger] + self.hot_chunks < chunks {
                let chunk = self.sent[ledger];
                let Some(records) = state.sealed_transfer_chunk(ledger, chunk) else { break };
                if jobs.send(Job { ledger, chunk, records }).is_err() {
                    return;
                }
                self.sent[ledger] += 1;
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

    fn write(&self, which: usize, chunk: usize, records: &[Transfer]) -> Result<(), String> {
        write_chunks(&self.db, &[(which, chunk, records)], &mut Vec::with_capacity(PAGE_BYTES))?;
        self.stats.chunks_stored.fetch_add(1, Ordering::Relaxed);
        Ok(())
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
fn spill(
    db: &Database,
    jobs: mpsc::Receiver<Job>,
    done: mpsc::Sender<Result<(usize, usize), String>>,
    stats: &ColdStats,
) {
    let mut page = Vec::with_capacity(PAGE_BYTES);
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < CHUNKS_PER_COMMIT {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let items: Vec<_> = batch.iter().map(|job| (job.ledger, job.chunk, job.records.as_slice())).collect();
        let result = write_chunks(db, &items, &mut page);
        match result {
            Ok(()) => {
                for job in &batch {
                    stats.chunks_stored.fetch_add(1, Ordering::Relaxed);
                    if done.send(Ok((job.ledger, job.chunk))).is_err() {
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

/// Writes chunks, each `(ledger, chunk, records)`, in one transaction, durable on return.
fn write_chunks(db: &Database, items: &[(usize, usize, &[Transfer])], page: &mut Vec<u8>) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| format!("begin: {e}"))?;
    for &(ledger, chunk, records) in items {
        let mut table = txn.open_table(TABLES[ledger]).map_err(|e| format!("open table: {e}"))?;
        for (i, records) in records.chunks(PAGE_RECORDS).enumerate() {
            page.clear();
            for t in records {
                t.encode_record(page);
            }
            let key = (chunk * PAGES_PER_CHUNK + i) as u64;
            let same = table
                .get(key)
                .map_err(|e| format!("read page {key}: {e}"))?
                .is_some_and(|v| v.value() == page.as_slice());
            if !same {
                table.insert(key, page.as_slice()).map_err(|e| format!("write page {key}: {e}"))?;
            }
        }
    }
    txn.commit().map_err(|e| format!("commit: {e}"))
}

/// A ledger's reader of its cold transfers. It keeps the last page it read, since reads come
/// in position order (a growth of the id index, a history) more often than not.
struct ColdReader {
    db: Arc<Database>,
    ledger: usize,
    last: Mutex<Option<(u64, Box<[Transfer; PAGE_RECORDS]>)>>,
    stats: Arc<ColdStats>,
}

impl std::fmt::Debug for ColdReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ColdReader({})", LEDGER_NAMES[self.ledger])
    }
}

impl ColdReader {
    fn fail(&self, what: &str, error: impl std::fmt::Display) -> ! {
        // A store that cannot give back a transfer it took is a failed disk: stop, and let
        // recovery rebuild from the snapshot and the journal, which hold every transfer.
        panic!("the cold store of {} cannot {what}: {error}", LEDGER_NAMES[self.ledger])
    }
}

impl ColdStore for ColdReader {
    fn read(&self, first: u32, out: &mut [Transfer]) {
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        let first = first as usize;
        if let Some((key, records)) = self.last.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let start = *key as usize * PAGE_RECORDS;
            if first >= start && first + out.len() <= start + PAGE_RECORDS {
                out.copy_from_slice(&records[first - start..first - start + out.len()]);
                return;
            }
        }
        let txn = self.db.begin_read().unwrap_or_else(|e| self.fail("begin a read", e));
        let table = txn.open_table(TABLES[self.ledger]).unwrap_or_else(|e| self.fail("open its table", e));
        let mut position = first;
        let end = first + out.len();
        while position < end {
            let key = (position / PAGE_RECORDS) as u64;
            let value = table
                .get(key)
                .unwrap_or_else(|e| self.fail(&format!("read page {key}"), e))
                .unwrap_or_else(|| self.fail(&format!("find page {key}"), "missing"));
            let bytes = value.value();
            if bytes.len() != PAGE_BYTES {
                self.fail(&format!("read page {key}"), format!("{} bytes, not {PAGE_BYTES}", bytes.len()));
            }
            let mut records = Box::new([Transfer::default(); PAGE_RECORDS]);
            for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
                records[i] = Transfer::decode_record(record.try_into().expect("a record's bytes"));
            }
            let start = key as usize * PAGE_RECORDS;
            let from = position - start;
            let count = (PAGE_RECORDS - from).min(end - position);
            out[position - first..position - first + count].copy_from_slice(&records[from..from + count]);
            position += count;
            if position == end {
                *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, records));
            }
        }
    }
}

/// `kasa verify`'s check of a cold store against the state a replay reached: every page it
/// holds must equal the replay's transfers at its positions. Pages past the replay's last
/// transfer (a store kept from a longer history) are counted, not compared: the server
/// rewrites a page before any chunk of it goes cold. Returns a line for the report.
pub fn check_cold_store(path: &std::path::Path, state: &State) -> Result<String, String> {
    let db = Database::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let txn = db.begin_read().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut line = String::new();
    for (which, table) in TABLES.iter().enumerate() {
        let ledger = if which == 0 { state.ledger() } else { state.books() };
        let table = match txn.open_table(*table) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => return Err(format!("{}: {e}", LEDGER_NAMES[which])),
        };
        let mut transfers = ledger.transfers();
        let (mut compared, mut beyond, mut expected) = (0u64, 0u64, 0u64);
        let mut page = Vec::with_capacity(PAGE_BYTES);
        for entry in table.iter().map_err(|e| format!("{}: {e}", LEDGER_NAMES[which]))? {
            let (key, value) = entry.map_err(|e| format!("{}: {e}", LEDGER_NAMES[which]))?;
            let key = key.value();
            if key != expected {
                return Err(format!("{}: page {expected} is missing (the next is {key})", LEDGER_NAMES[which]));
            }
            expected += 1;
            if (key as usize + 1) * PAGE_RECORDS > ledger.transfers_count() {
                beyond += 1;
                continue;
            }
            page.clear();
            for t in transfers.by_ref().take(PAGE_RECORDS) {
                t.encode_record(&mut page);
            }
            if value.value() != page.as_slice() {
                return Err(format!(
                    "{}: page {key} (transfers {} to {}) differs from the replay",
                    LEDGER_NAMES[which],
                    key as usize * PAGE_RECORDS,
                    (key as usize + 1) * PAGE_RECORDS - 1
                ));
            }
            compared += 1;
        }
        line.push_str(&format!(
            "{}{}: {compared} pages ({} transfers) equal to the replay{}",
            if line.is_empty() { "" } else { "; " },
            LEDGER_NAMES[which],
            compared as usize * PAGE_RECORDS,
            if beyond > 0 { format!(", {beyond} past its last transfer") } else { String::new() }
        ));
    }
    Ok(if line.is_empty() { "empty".into() } else { line })
}
