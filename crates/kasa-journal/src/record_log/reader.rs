//! Reading the record log: the record cursor every walk uses (recovery, reads, truncation),
//! the sparse index, the state the appender publishes, and [`RecordReader`].
//!
//! Readers and the appender share only [`Published`], behind a mutex held for a binary search
//! or a push, never across I/O. A reader reads through its own storage handle, only below the
//! durable end the appender published at its last sync, so it never sees a record a crash
//! could take back and never waits for a write. A truncation bumps the published generation;
//! a read that overlapped one is done again on fresh handles (see [`RecordReader::read`]).

use std::io::{self, BufReader, Read};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Corruption, RecordLogError};
use crate::record_log::format::{RecordHeader, RECORD_HEADER_BYTES, RECORD_SEGMENT_HEADER_BYTES};
use crate::storage::{FileRange, Storage};

/// Bytes per storage call when walking records: one call brings in many small records.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// How many times a read is tried when `truncate_after` keeps changing the log under it. A
/// truncation is rare (recovery-time repair), so two in a row already means something odd.
const READ_ATTEMPTS_MAX: u32 = 8;

/// A segment file: its name, first key, and how many of its bytes count (written, for the
/// appender; durable, in [`Published`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogSegment {
    pub name: String,
    pub first_key: u64,
    pub len: u64,
}

/// Where one record starts. The sparse index holds one for the first record of every segment
/// and then one every `index_every_records` records or `index_every_bytes` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub key: u64,
    /// Position of the segment in the list of segments.
    pub segment: usize,
    pub offset: u64,
}

/// Decides which records get an index entry.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct IndexCursor {
    records_since: u64,
    bytes_since: u64,
    /// Set after a truncation: the next record gets an entry whatever the counts say.
    force: bool,
}

impl IndexCursor {
    /// Accounts for one record of `bytes` (header included) and says whether it gets an entry.
    pub fn note(&mut self, first_in_segment: bool, bytes: u64, every_records: u64, every_bytes: u64) -> bool {
        let due =
            first_in_segment || self.force || self.records_since >= every_records || self.bytes_since >= every_bytes;
        if due {
            *self = IndexCursor::default();
        }
        self.records_since += 1;
        self.bytes_since += bytes;
        due
    }

    pub fn force_next(&mut self) {
        self.force = true;
    }
}

/// What the appender has made durable, as readers see it.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Bumped by every truncation: a reader whose read overlapped a change reads again.
    pub generation: u64,
    /// Segments with durable records, each `len` the durable end.
    pub segments: Vec<LogSegment>,
    /// The sparse index over those records, by key.
    pub index: Vec<IndexEntry>,
    /// The last durable key.
    pub last_key: Option<u64>,
}

pub(crate) type SharedPublished = Arc<Mutex<Published>>;

pub(crate) fn lock(published: &SharedPublished) -> MutexGuard<'_, Published> {
    // The data is plain numbers and names, each update leaves it whole: a panic elsewhere while
    // holding the lock does not make it wrong.
    published.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A record read whole and checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordAt {
    pub key: u64,
    /// Header and payload.
    pub bytes: u64,
}

/// Walks the records of one segment from `offset` to `end`, checking each one.
pub(crate) struct RecordCursor<'a, S: Storage> {
    reader: BufReader<FileRange<'a, S>>,
    offset: u64,
    end: u64,
    payload_max: u32,
}

impl<'a, S: Storage> RecordCursor<'a, S> {
    pub fn new(storage: &'a mut S, name: &'a str, offset: u64, end: u64, payload_max: u32) -> Self {
        let range = FileRange { storage, name, position: offset, end };
        RecordCursor { reader: BufReader::with_capacity(READ_CHUNK_BYTES, range), offset, end, payload_max }
    }

    /// Where the next record starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record, its payload into `payload`, and checks it is whole, its checksum
    /// and that its key is `key`. `None` at the end. After a bad record the cursor is spent.
    pub fn next(&mut self, key: u64, payload: &mut Vec<u8>) -> io::Result<Option<Result<RecordAt, Corruption>>> {
        let remaining = self.end - self.offset;
        if remaining == 0 {
            return Ok(None);
        }
        let header_bytes = RECORD_HEADER_BYTES as u64;
        if remaining < header_bytes {
            return Ok(Some(Err(Corruption::TruncatedHeader { expected: header_bytes, found: remaining })));
        }
        let mut bytes = [0; RECORD_HEADER_BYTES];
        self.reader.read_exact(&mut bytes)?;
        let header = RecordHeader::decode(&bytes);
        if header.payload_len > self.payload_max {
            let problem = Corruption::PayloadTooLong { max: self.payload_max as u64, found: header.payload_len as u64 };
            return Ok(Some(Err(problem)));
        }
        if header.payload_len as u64 > remaining - header_bytes {
            let problem =
                Corruption::TruncatedPayload { expected: header.payload_len as u64, found: remaining - header_bytes };
            return Ok(Some(Err(problem)));
        }
        payload.resize(header.payload_len as usize, 0);
        self.reader.read_exact(payload)?;
        if let Err(problem) = header.check(payload) {
            return Ok(Some(Err(problem)));
        }
        if header.key != key {
            return Ok(Some(Err(Corruption::KeyMismatch { expected: key, found: header.key })));
        }
        let record = RecordAt { key, bytes: header_bytes + header.payload_len as u64 };
        self.offset += record.bytes;
        Ok(Some(Ok(record)))
    }
}

/// Reads records of a [`RecordLog`](crate::RecordLog) by key, on any thread, while it is being
/// appended to. Get one from [`RecordLog::reader`](crate::RecordLog::reader); it has its own
/// storage handle. It sees the records the log had made durable at its last
/// [`sync`](crate::RecordLog::sync).
pub struct RecordReader<S: Storage> {
    storage: S,
    published: SharedPublished,
    payload_max: u32,
    /// The generation this reader's storage handles were opened in.
    generation: u64,
}

/// What a read needs from [`Published`], copied under the lock.
struct Plan {
    generation: u64,
    /// The index entry to start from.
    start: IndexEntry,
    /// The segments from the entry's to the one holding the last key wanted.
    segments: Vec<LogSegment>,
}

impl<S: Storage> RecordReader<S> {
    pub(crate) fn new(storage: S, published: SharedPublished, payload_max: u32) -> Self {
        let generation = lock(&published).generation;
        RecordReader { storage, published, payload_max, generation }
    }

    /// Another reader on its own storage handle, for another thread.
    pub fn try_clone(&self) -> Result<Self, RecordLogError> {
        let storage = self.storage.try_clone().map_err(|e| RecordLogError::io("clone", ".", e))?;
        Ok(RecordReader::new(storage, Arc::clone(&self.published), self.payload_max))
    }

    /// The last key a read can return now (the log's last durable key), if any.
    pub fn last_key(&self) -> Option<u64> {
        lock(&self.published).last_key
    }

    /// The records with keys after `after_key`, in key order: at most `records_max` of them and
    /// at most `bytes_max` payload bytes, except that the first record is returned whatever its
    /// size (so a large record cannot stall a reader). Empty if there are none yet. Pass 0 to
    /// read from the first record; `records_max` must be positive.
    ///
    /// Cost: a binary search of the sparse index, then the records from the index entry before
    /// `after_key + 1` (at most `index_every_records` records or `index_every_bytes` bytes
    /// ahead of it) to the last one returned, each checked (checksum and key). If
    /// [`truncate_after`](crate::RecordLog::truncate_after) changed the log during the read,
    /// the read is done again on fresh storage handles, so it never returns a record that was
    /// cut.
    pub fn read(
        &mut self,
        after_key: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, RecordLogError> {
        assert!(records_max > 0, "read: expected a positive records_max, found 0");
        for _ in 0..READ_ATTEMPTS_MAX {
            let Some(plan) = self.plan(after_key, records_max) else { return Ok(Vec::new()) };
            if plan.generation != self.generation {
                // Files may have been removed and made again under the same names; handles
                // opened before would still read the old ones.
                self.storage = self.storage.try_clone().map_err(|e| RecordLogError::io("clone", ".", e))?;
                self.generation = plan.generation;
            }
            let result = self.read_plan(&plan, after_key, records_max, bytes_max);
            if lock(&self.published).generation == plan.generation {
                return result;
            }
        }
        Err(RecordLogError::ReadRaced { after_key, attempts: READ_ATTEMPTS_MAX })
    }

    fn plan(&self, after_key: u64, records_max: usize) -> Option<Plan> {
        let published = lock(&self.published);
        let last_key = published.last_key?;
        if after_key >= last_key {
            return None;
        }
        let first_key = published.segments[0].first_key;
        let from = (after_key + 1).max(first_key);
        let to = from.saturating_add(records_max as u64 - 1).min(last_key);
        let entry = published.index.partition_point(|e| e.key <= from) - 1;
        let start = published.index[entry];
        let segments_end = published.segments.partition_point(|s| s.first_key <= to);
        let segments = published.segments[start.segment..segments_end].to_vec();
        Some(Plan { generation: published.generation, start, segments })
    }

    fn read_plan(
        &mut self,
        plan: &Plan,
        after_key: u64,
        records_max: usize,
        bytes_max: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, RecordLogError> {
        let mut records = Vec::new();
        let mut bytes = 0;
        let mut key = plan.start.key;
        let mut payload = Vec::new();
        for (position, segment) in plan.segments.iter().enumerate() {
            let offset = if position == 0 { plan.start.offset } else { RECORD_SEGMENT_HEADER_BYTES as u64 };
            let corrupt =
                |offset, key, problem| RecordLogError::Corrupt { segment: segment.name.clone(), offset, key, problem };
            if position > 0 && segment.first_key != key {
                let problem = Corruption::KeyMismatch { expected: key, found: segment.first_key };
                return Err(corrupt(0, key, problem));
            }
            let mut cursor = RecordCursor::new(&mut self.storage, &segment.name, offset, segment.len, self.payload_max);
            loop {
                let at = cursor.offset();
                let record = match cursor.next(key, &mut payload) {
                    Ok(None) => break,
                    Ok(Some(Ok(record))) => record,
                    Ok(Some(Err(problem))) => return Err(corrupt(at, key, problem)),
                    Err(error) => return Err(RecordLogError::io("read", &segment.name, error)),
                };
                key += 1;
                if record.key <= after_key {
                    continue;
                }
                if !records.is_empty() && bytes + payload.len() > bytes_max {
                    return Ok(records);
                }
                bytes += payload.len();
                records.push((record.key, std::mem::take(&mut payload)));
                if records.len() == records_max {
                    return Ok(records);
                }
            }
        }
        Ok(records)
    }
}
