//! The record log: an append-only log of opaque records keyed by a contiguous `u64`, in its
//! own directory, for data derived from the journal (the engine's outbox of domain events,
//! keyed by event sequence number).
//!
//! One appender ([`RecordLog`], on the engine's writer thread) appends records into a buffer,
//! writes them to `records-{first_key}.log` segment files, and [`sync`](RecordLog::sync)s; any
//! number of [`RecordReader`]s, each on its own thread and storage handle, read by key what the
//! last sync made durable, finding their start through a sparse in-memory index. Nothing is
//! shared but a small published state under a mutex that is never held across I/O (see
//! `reader.rs`).
//!
//! What it deliberately does not do: it is not a second journal. Records carry a checksum but
//! no hash chain, and recovery cuts damage instead of refusing to start, because the engine can
//! always derive the records again from the journal (see `recover.rs`). It never interprets
//! payloads, never deletes old segments, and does not wake readers up (the engine notifies its
//! consumers after a sync).

mod format;
mod reader;
mod recover;

use std::sync::{Arc, Mutex};

use crate::error::{Corruption, RecordLogError};
use crate::storage::Storage;
pub use format::{record_segment_name, RECORD_HEADER_BYTES, RECORD_LOG_FORMAT_VERSION, RECORD_SEGMENT_HEADER_BYTES};
pub use reader::RecordReader;
use reader::{lock, IndexCursor, IndexEntry, LogSegment, Published, RecordCursor, SharedPublished};
pub use recover::RecordLogCut;

/// Default for [`RecordLogOptions::segment_bytes_max`]: small enough that a segment copies and
/// checks quickly, large enough that rolls (each a sync) are rare.
pub const RECORD_SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 * 1024 * 1024;

/// Default for [`RecordLogOptions::record_payload_bytes_max`]: far above any domain event, and
/// a bound on what recovery and a read allocate for one record.
pub const RECORD_PAYLOAD_BYTES_MAX_DEFAULT: u32 = 16 * 1024 * 1024;

/// Hard ceiling for [`RecordLogOptions::record_payload_bytes_max`].
pub const RECORD_PAYLOAD_BYTES_LIMIT: u32 = 1024 * 1024 * 1024;

/// Default for [`RecordLogOptions::index_every_records`]: a read skips at most this many
/// records to reach its start (about 100 KiB of small events, microseconds from the page
/// cache), and the index costs about 24 bytes per this many records.
pub const INDEX_EVERY_RECORDS_DEFAULT: u64 = 1024;

/// Default for [`RecordLogOptions::index_every_bytes`]: bounds the skip for large records.
pub const INDEX_EVERY_BYTES_DEFAULT: u64 = 256 * 1024;

/// Appended records are written to storage once this many bytes are buffered (or at `sync`):
/// one storage call for many small records.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// The name errors use for the directory itself.
const DIR_NAME: &str = ".";

/// Limits and tuning of a record log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLogOptions {
    /// Roll to a new segment file once the current one reaches this size (it can exceed it by
    /// at most one record).
    pub segment_bytes_max: u64,
    /// Largest record payload. Appending a larger one is a programmer error; a record on disk
    /// claiming more is damage.
    pub record_payload_bytes_max: u32,
    /// The sparse index gets an entry at least every this many records...
    pub index_every_records: u64,
    /// ...and at least every this many bytes of records.
    pub index_every_bytes: u64,
}

impl Default for RecordLogOptions {
    fn default() -> Self {
        RecordLogOptions {
            segment_bytes_max: RECORD_SEGMENT_BYTES_MAX_DEFAULT,
            record_payload_bytes_max: RECORD_PAYLOAD_BYTES_MAX_DEFAULT,
            index_every_records: INDEX_EVERY_RECORDS_DEFAULT,
            index_every_bytes: INDEX_EVERY_BYTES_DEFAULT,
        }
    }
}

/// What [`RecordLog::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLogReport {
    /// The last key in the log after recovery, if any: the engine derives and appends the
    /// records after it.
    pub last_key: Option<u64>,
    /// Records in the log.
    pub records: u64,
    /// Segment files in the log.
    pub segments: u64,
    /// What recovery cut, if anything.
    pub cut: Option<RecordLogCut>,
}

/// The appending end of a record log. See the module docs.
pub struct RecordLog<S: Storage> {
    storage: S,
    options: RecordLogOptions,
    /// All segments in order, each `len` the bytes written to storage; the last is appended to.
    segments: Vec<LogSegment>,
    /// Records appended but not yet written, which belong at the end of the last segment
    /// (starting with its header if that segment is new).
    buffer: Vec<u8>,
    /// The last key appended (buffered or written).
    last_key: Option<u64>,
    /// Index entries of records appended since the last publish.
    pending_index: Vec<IndexEntry>,
    index_cursor: IndexCursor,
    /// The last segment has writes not yet synced.
    segment_dirty: bool,
    /// A segment file was created or removed since the last directory sync.
    dir_dirty: bool,
    /// A sync or a cut failed: refuse everything, never retry.
    poisoned: bool,
    /// What readers see: updated at every sync.
    published: SharedPublished,
    /// The log's own reader, for [`read`](Self::read).
    reader: RecordReader<S>,
}

impl<S: Storage> RecordLog<S> {
    /// Opens (creating if empty) the record log in `storage`: walks every segment, checks every
    /// record (checksum, length, contiguous keys), rebuilds the sparse index, and cuts from the
    /// first bad record to the end, reporting the cut (see [`RecordLogCut`]). Then syncs the
    /// last segment and the directory, so everything readers will see is durable.
    pub fn open(mut storage: S, options: RecordLogOptions) -> Result<(Self, RecordLogReport), RecordLogError> {
        assert!(options.segment_bytes_max > 0, "segment_bytes_max must be positive");
        assert!(
            options.record_payload_bytes_max <= RECORD_PAYLOAD_BYTES_LIMIT,
            "record_payload_bytes_max {} is over the limit {RECORD_PAYLOAD_BYTES_LIMIT}",
            options.record_payload_bytes_max
        );
        assert!(options.index_every_records > 0 && options.index_every_bytes > 0, "index spacing must be positive");
        let recovery = recover::recover(&mut storage, &options)?;
        // What we read may be only in the page cache (the previous process may have died
        // before syncing); readers must see only durable records.
        if let Some(last) = recovery.segments.last() {
            storage
                .sync(&last.name)
                .map_err(|source| RecordLogError::SyncFailed { name: last.name.clone(), source })?;
        }
        storage.sync_dir().map_err(|source| RecordLogError::SyncFailed { name: DIR_NAME.to_string(), source })?;

        let report = RecordLogReport {
            last_key: recovery.last_key,
            records: recovery.records,
            segments: recovery.segments.len() as u64,
            cut: recovery.cut,
        };
        let published = Arc::new(Mutex::new(Published {
            generation: 0,
            segments: recovery.segments.clone(),
            index: recovery.index,
            last_key: recovery.last_key,
        }));
        let reader_storage = storage.try_clone().map_err(|e| RecordLogError::io("clone", DIR_NAME, e))?;
        let reader = RecordReader::new(reader_storage, Arc::clone(&published), options.record_payload_bytes_max);
        let log = RecordLog {
            storage,
            options,
            segments: recovery.segments,
            buffer: Vec::new(),
            last_key: recovery.last_key,
            pending_index: Vec::new(),
            index_cursor: recovery.cursor,
            segment_dirty: false,
            dir_dirty: false,
            poisoned: false,
            published,
            reader,
        };
        Ok((log, report))
    }

    /// Appends one record. Buffered: it reaches storage when the buffer fills or at
    /// [`sync`](Self::sync), and readers see it after the next sync.
    ///
    /// `key` must be `last_key() + 1` (any key from 1 on an empty log) and the payload at most
    /// `record_payload_bytes_max`: anything else is a programmer error and panics. If writing
    /// the buffer fails (a full disk: the source's kind is `StorageFull`), the record is not
    /// appended, earlier buffered records stay buffered, the partial write is cut off, and the
    /// log stays usable: append the same key again later. If that cut fails, the log is
    /// poisoned.
    pub fn append(&mut self, key: u64, payload: &[u8]) -> Result<(), RecordLogError> {
        if self.poisoned {
            return Err(RecordLogError::Poisoned);
        }
        match self.last_key {
            Some(last) => assert_eq!(key, last + 1, "append: expected the key after {last}"),
            None => assert!(key > 0, "append: expected a key from 1 on, found 0"),
        }
        assert!(
            payload.len() <= self.options.record_payload_bytes_max as usize,
            "append: payload of {} bytes is over the limit {}",
            payload.len(),
            self.options.record_payload_bytes_max
        );
        self.roll_if_full(key)?;
        let undo = (self.buffer.len(), self.pending_index.len(), self.index_cursor, self.last_key);

        let segment = self.segments.len() - 1;
        let offset = self.segments[segment].len + self.buffer.len() as u64;
        let first_in_segment = offset == RECORD_SEGMENT_HEADER_BYTES as u64;
        let bytes = (RECORD_HEADER_BYTES + payload.len()) as u64;
        let (every_records, every_bytes) = (self.options.index_every_records, self.options.index_every_bytes);
        if self.index_cursor.note(first_in_segment, bytes, every_records, every_bytes) {
            self.pending_index.push(IndexEntry { key, segment, offset });
        }
        format::encode_record(key, payload, &mut self.buffer);
        self.last_key = Some(key);
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            if let Err(error) = self.write_buffer() {
                if !self.poisoned {
                    (_, _, self.index_cursor, self.last_key) = undo;
                    self.buffer.truncate(undo.0);
                    self.pending_index.truncate(undo.1);
                    self.drop_empty_new_segment();
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// After an append was undone: a segment that holds nothing but its header in the buffer
    /// is forgotten, so no header-only file is ever written; the next append rolls again.
    fn drop_empty_new_segment(&mut self) {
        let header_only = self.buffer.len() == RECORD_SEGMENT_HEADER_BYTES;
        if header_only && self.segments.last().is_some_and(|s| s.len == 0) {
            self.segments.pop();
            self.buffer.clear();
        }
    }

    /// Makes sure the last segment has room, starting the segment for `key` if not. The full
    /// segment is synced (and published) first, so every segment but the last is complete and
    /// durable before its successor exists: only the last one can have a torn tail.
    fn roll_if_full(&mut self, key: u64) -> Result<(), RecordLogError> {
        let full = match self.segments.last() {
            None => true,
            Some(segment) => segment.len + self.buffer.len() as u64 >= self.options.segment_bytes_max,
        };
        if !full {
            return Ok(());
        }
        if !self.segments.is_empty() {
            self.sync()?;
        }
        self.segments.push(LogSegment { name: format::record_segment_name(key), first_key: key, len: 0 });
        self.buffer.extend_from_slice(&format::encode_segment_header(key));
        self.dir_dirty = true;
        Ok(())
    }

    /// Writes the buffer to the last segment. On failure, cuts the partial write off (or
    /// removes a file this write created) and keeps the buffer.
    fn write_buffer(&mut self) -> Result<(), RecordLogError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let segment = self.segments.last_mut().expect("a buffer belongs to a segment");
        self.segment_dirty = true;
        let Err(source) = self.storage.write_at(&segment.name, segment.len, &self.buffer) else {
            segment.len += self.buffer.len() as u64;
            self.buffer.clear();
            return Ok(());
        };
        let name = segment.name.clone();
        let undone = if segment.len == 0 {
            match self.storage.remove(&name) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(("remove", e)),
                _ => Ok(()),
            }
        } else {
            self.storage.truncate(&name, segment.len).map_err(|e| ("truncate", e))
        };
        if let Err((op, e)) = undone {
            self.poisoned = true;
            return Err(RecordLogError::fatal(op, &name, e));
        }
        Err(RecordLogError::io("write", &name, source))
    }

    /// Makes every appended record durable and visible to readers: writes the buffer,
    /// fdatasyncs the last segment, and syncs the directory if a segment was created since
    /// the last sync. A failed write is not fatal (see [`append`](Self::append)); a failed sync
    /// poisons the log and is never retried, as in [`Journal::sync`](crate::Journal::sync).
    pub fn sync(&mut self) -> Result<(), RecordLogError> {
        if self.poisoned {
            return Err(RecordLogError::Poisoned);
        }
        self.write_buffer()?;
        if self.segment_dirty {
            let name = &self.segments.last().expect("dirty implies a segment").name;
            if let Err(source) = self.storage.sync(name) {
                self.poisoned = true;
                return Err(RecordLogError::SyncFailed { name: name.clone(), source });
            }
            self.segment_dirty = false;
        }
        if self.dir_dirty {
            if let Err(source) = self.storage.sync_dir() {
                self.poisoned = true;
                return Err(RecordLogError::SyncFailed { name: DIR_NAME.to_string(), source });
            }
            self.dir_dirty = false;
        }
        self.publish();
        Ok(())
    }

    /// Shows readers everything written so far (the caller has just synced it).
    fn publish(&mut self) {
        let mut published = lock(&self.published);
        let unchanged = published.segments.len().saturating_sub(1);
        published.segments.truncate(unchanged);
        published.segments.extend_from_slice(&self.segments[unchanged..]);
        published.index.append(&mut self.pending_index);
        published.last_key = self.last_key;
    }

    /// Removes every record after `key`, durably: for records derived from journal frames that
    /// recovery no longer has (the one frame the journal may cut as a torn tail). Readers stop
    /// seeing them at once. A no-op if `key` is at or after the last key; a `key` before the
    /// first record empties the log.
    ///
    /// Any storage failure here poisons the log (its files and its view of them may differ);
    /// the next open sorts them out. A crash before this returns may leave the records, so the
    /// engine checks again after each start.
    pub fn truncate_after(&mut self, key: u64) -> Result<(), RecordLogError> {
        if self.poisoned {
            return Err(RecordLogError::Poisoned);
        }
        let Some(last) = self.last_key else { return Ok(()) };
        if key >= last {
            return Ok(());
        }
        self.write_buffer()?;
        let first_cut = key + 1;
        // The segment holding the first record cut, and where that record starts.
        let segment = self.segments.partition_point(|s| s.first_key <= first_cut).saturating_sub(1);
        let offset =
            if self.segments[segment].first_key >= first_cut { 0 } else { self.offset_of(segment, first_cut)? };
        let keep = if offset == 0 { segment } else { segment + 1 };

        // Readers first: from now on no read returns a cut record, and reads in flight are
        // done again (the generation changed).
        let last_key = (key >= self.segments[0].first_key).then_some(key);
        {
            let mut published = lock(&self.published);
            published.generation += 1;
            published.segments.truncate(keep);
            if let Some(segment) = published.segments.get_mut(segment) {
                segment.len = segment.len.min(offset);
            }
            published.index.retain(|entry| entry.key <= key);
            published.last_key = published.last_key.min(last_key);
        }
        self.pending_index.retain(|entry| entry.key <= key);
        self.index_cursor.force_next();
        self.last_key = last_key;

        let result = self.cut_files(segment, offset, keep);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// The storage half of `truncate_after`: later segments removed (last first), the segment
    /// truncated at `offset` or removed, all synced.
    fn cut_files(&mut self, segment: usize, offset: u64, keep: usize) -> Result<(), RecordLogError> {
        for removed in self.segments.drain(keep..).rev().collect::<Vec<_>>() {
            self.storage.remove(&removed.name).map_err(|e| RecordLogError::fatal("remove", &removed.name, e))?;
        }
        if offset > 0 {
            let cut = &mut self.segments[segment];
            self.storage.truncate(&cut.name, offset).map_err(|e| RecordLogError::fatal("truncate", &cut.name, e))?;
            self.storage
                .sync(&cut.name)
                .map_err(|source| RecordLogError::SyncFailed { name: cut.name.clone(), source })?;
            cut.len = offset;
        }
        self.storage.sync_dir().map_err(|source| RecordLogError::SyncFailed { name: DIR_NAME.to_string(), source })?;
        self.segment_dirty = false;
        self.dir_dirty = false;
        Ok(())
    }

    /// Where the record with key `key` starts in segment `segment` (which holds it, written).
    fn offset_of(&mut self, segment: usize, key: u64) -> Result<u64, RecordLogError> {
        let published = lock(&self.published);
        let in_segment = |entry: &&IndexEntry| entry.segment == segment && entry.key <= key;
        let start =
            self.pending_index.iter().rev().find(in_segment).or_else(|| published.index.iter().rev().find(in_segment));
        let start = *start.expect("the first record of every segment has an index entry");
        drop(published);
        let name = &self.segments[segment].name;
        let len = self.segments[segment].len;
        let mut cursor =
            RecordCursor::new(&mut self.storage, name, start.offset, len, self.options.record_payload_bytes_max);
        let mut payload = Vec::new();
        for expected in start.key..key {
            let at = cursor.offset();
            match cursor.next(expected, &mut payload).map_err(|e| RecordLogError::io("read", name, e))? {
                Some(Ok(_)) => {}
                Some(Err(problem)) => {
                    return Err(RecordLogError::Corrupt { segment: name.clone(), offset: at, key: expected, problem })
                }
                None => {
                    let problem = Corruption::TruncatedHeader { expected: RECORD_HEADER_BYTES as u64, found: 0 };
                    return Err(RecordLogError::Corrupt { segment: name.clone(), offset: at, key: expected, problem });
                }
            }
        }
        Ok(cursor.offset())
    }

    /// Reads durable records after `after_key`; see [`RecordReader::read`].
    pub fn read(
        &mut self,
        after_key: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, RecordLogError> {
        self.reader.read(after_key, records_max, bytes_max)
    }

    /// A reader for another thread, with its own storage handle.
    pub fn reader(&self) -> Result<RecordReader<S>, RecordLogError> {
        self.reader.try_clone()
    }

    /// The last key appended (buffered, written or durable), if any.
    pub fn last_key(&self) -> Option<u64> {
        self.last_key
    }

    /// The last key readers can see (durable at the last sync), if any.
    pub fn synced_key(&self) -> Option<u64> {
        lock(&self.published).last_key
    }

    /// Whether a failed sync or cut has poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Number of segment files, for metrics.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The storage, for tests that inject faults. Writing to the log's files through it voids
    /// every guarantee.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Gives back the storage, for example so a test can crash and reopen it.
    pub fn into_storage(self) -> S {
        self.storage
    }
}
