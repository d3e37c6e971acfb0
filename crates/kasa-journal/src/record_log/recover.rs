//! Opening the record log: walk every segment, rebuild the sparse index, and cut from the first
//! bad byte to the end.
//!
//! Unlike the journal, the record log never refuses to start over damaged bytes: everything in
//! it is derived from the journal, so the engine can write what was cut again. Recovery cuts
//! from the first bad record (a torn tail in the last segment, or corruption anywhere) to the
//! end, removes the segments after it, reports the cut, and warns loudly. It does not decide
//! what to write again; the report says where the log now ends.

use crate::error::{Corruption, RecordLogError};
use crate::record_log::format::{self, RECORD_SEGMENT_HEADER_BYTES};
use crate::record_log::reader::{IndexCursor, IndexEntry, LogSegment, RecordCursor};
use crate::record_log::RecordLogOptions;
use crate::storage::Storage;

/// What recovery cut off the record log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLogCut {
    /// The segment where the first bad record is.
    pub segment: String,
    /// Where in that segment the cut starts (its new length, or 0 if it was removed).
    pub offset: u64,
    /// The key that was expected there: every record from this key on is gone and must be
    /// written again from the journal.
    pub first_key_lost: u64,
    /// Bytes removed, in all segments.
    pub bytes_cut: u64,
    /// Segment files removed (the damaged one, if no record before the damage survived, and
    /// every later one).
    pub segments_removed: u64,
    /// Whether the damage is in the last segment, where a crash during an append leaves a
    /// torn tail; anywhere else it is corruption of bytes that were synced.
    pub in_last_segment: bool,
    /// What was wrong with the first bad record.
    pub problem: Corruption,
}

/// The record log as recovery left it.
pub(crate) struct Recovery {
    pub segments: Vec<LogSegment>,
    pub index: Vec<IndexEntry>,
    pub cursor: IndexCursor,
    pub last_key: Option<u64>,
    pub records: u64,
    pub cut: Option<RecordLogCut>,
}

/// The first bad place found.
struct Bad {
    segment: usize,
    offset: u64,
    key: u64,
    problem: Corruption,
}

/// Walks the log, cuts what is bad (see the module docs), and returns what is left. I/O errors
/// stop it; bad bytes never do.
pub(crate) fn recover<S: Storage>(storage: &mut S, options: &RecordLogOptions) -> Result<Recovery, RecordLogError> {
    let mut names = Vec::new();
    for name in storage.list().map_err(|e| RecordLogError::io("list", ".", e))? {
        match format::parse_record_segment_name(&name) {
            Some(first_key) => names.push((first_key, name)),
            None => tracing::warn!(file = %name, "unknown file in record log directory, ignored"),
        }
    }
    names.sort();
    let mut lens = Vec::with_capacity(names.len());
    for (_, name) in &names {
        lens.push(storage.len(name).map_err(|e| RecordLogError::io("len", name, e))?);
    }

    let mut recovery = Recovery {
        segments: Vec::new(),
        index: Vec::new(),
        cursor: IndexCursor::default(),
        last_key: None,
        records: 0,
        cut: None,
    };
    let mut payload = Vec::new();
    let mut bad = None;
    for (position, (first_key, name)) in names.iter().enumerate() {
        let expected = recovery.last_key.map_or(*first_key, |last| last + 1);
        if *first_key != expected || *first_key == 0 {
            let expected = if *first_key == 0 { 1 } else { expected };
            let problem = Corruption::KeyMismatch { expected, found: *first_key };
            bad = Some(Bad { segment: position, offset: 0, key: expected, problem });
            break;
        }
        match walk_segment(storage, name, lens[position], *first_key, position, options, &mut recovery, &mut payload)? {
            Ok(len) => recovery.segments.push(LogSegment { name: name.clone(), first_key: *first_key, len }),
            Err(found) => {
                bad = Some(found);
                break;
            }
        }
    }
    if let Some(bad) = bad {
        recovery.cut = Some(cut(storage, &names, &lens, bad, &mut recovery)?);
    }
    Ok(recovery)
}

/// Walks one segment, adding its records to `recovery`; returns its valid length, or the
/// first bad record. A segment must hold at least one record.
#[allow(clippy::too_many_arguments)] // One caller; each argument is a different concern.
fn walk_segment<S: Storage>(
    storage: &mut S,
    name: &str,
    len: u64,
    first_key: u64,
    position: usize,
    options: &RecordLogOptions,
    recovery: &mut Recovery,
    payload: &mut Vec<u8>,
) -> Result<Result<u64, Bad>, RecordLogError> {
    let bad = |offset, key, problem| Ok(Err(Bad { segment: position, offset, key, problem }));
    let header_bytes = RECORD_SEGMENT_HEADER_BYTES as u64;
    if len < header_bytes {
        return bad(0, first_key, Corruption::TruncatedHeader { expected: header_bytes, found: len });
    }
    let mut header = [0; RECORD_SEGMENT_HEADER_BYTES];
    storage.read_at(name, 0, &mut header).map_err(|e| RecordLogError::io("read", name, e))?;
    if let Err(problem) = format::check_segment_header(&header, first_key) {
        return bad(0, first_key, problem);
    }
    let mut cursor = RecordCursor::new(storage, name, header_bytes, len, options.record_payload_bytes_max);
    let mut key = first_key;
    loop {
        let offset = cursor.offset();
        match cursor.next(key, payload).map_err(|e| RecordLogError::io("read", name, e))? {
            None => break,
            Some(Err(problem)) => return bad(offset, key, problem),
            Some(Ok(record)) => {
                let first = key == first_key;
                let (every_records, every_bytes) = (options.index_every_records, options.index_every_bytes);
                if recovery.cursor.note(first, record.bytes, every_records, every_bytes) {
                    recovery.index.push(IndexEntry { key, segment: position, offset });
                }
                recovery.last_key = Some(key);
                recovery.records += 1;
                key += 1;
            }
        }
    }
    if key == first_key {
        // Only a header: the first record's write was torn off.
        let problem = Corruption::TruncatedHeader { expected: RECORD_SEGMENT_HEADER_BYTES as u64, found: 0 };
        return bad(header_bytes, first_key, problem);
    }
    Ok(Ok(cursor.offset()))
}

/// Cuts from `bad` to the end: removes the later segments (last first), then truncates the
/// damaged segment, or removes it if none of its records survive. The caller syncs (the cut
/// segment is the new last one). An interrupted cut is finished by the next open: whatever
/// part of it survives, the keys no longer continue where it stopped.
fn cut<S: Storage>(
    storage: &mut S,
    names: &[(u64, String)],
    lens: &[u64],
    bad: Bad,
    recovery: &mut Recovery,
) -> Result<RecordLogCut, RecordLogError> {
    let (first_key, name) = &names[bad.segment];
    let keep_segment = bad.offset > RECORD_SEGMENT_HEADER_BYTES as u64;
    let mut bytes_cut = lens[bad.segment] - if keep_segment { bad.offset } else { 0 };
    let mut segments_removed = 0;
    for (position, (_, later)) in names.iter().enumerate().skip(bad.segment + 1).rev() {
        storage.remove(later).map_err(|e| RecordLogError::io("remove", later, e))?;
        bytes_cut += lens[position];
        segments_removed += 1;
    }
    if keep_segment {
        storage.truncate(name, bad.offset).map_err(|e| RecordLogError::io("truncate", name, e))?;
        recovery.segments.push(LogSegment { name: name.clone(), first_key: *first_key, len: bad.offset });
    } else {
        storage.remove(name).map_err(|e| RecordLogError::io("remove", name, e))?;
        segments_removed += 1;
    }

    let cut = RecordLogCut {
        segment: name.clone(),
        offset: if keep_segment { bad.offset } else { 0 },
        first_key_lost: bad.key,
        bytes_cut,
        segments_removed,
        in_last_segment: bad.segment + 1 == names.len(),
        problem: bad.problem,
    };
    if cut.in_last_segment {
        tracing::warn!(?cut, "record log: bad tail cut off (a crash during an append); derive the records again");
    } else {
        tracing::error!(
            ?cut,
            "record log: CORRUPTION before the last segment; cut from there to the end, derive the records again"
        );
    }
    Ok(cut)
}
