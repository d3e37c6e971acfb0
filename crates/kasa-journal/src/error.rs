//! Typed errors of the journal and the record log.
//!
//! [`JournalError`] says what went wrong and where (file, byte offset, sequence number), so an
//! operator can find the bad bytes. [`Corruption`] is the "what" of a bad frame, snapshot or
//! record. [`AppendError`] separates the one error an engine may survive (a full disk rejects a
//! batch) from the ones it must stop on. [`RecordLogError`] is the record log's. Nothing here
//! decides policy such as retrying.

use std::io;

/// What is wrong with a frame, a snapshot file or a record. Messages read after "frame N",
/// "snapshot NAME:" or "record N".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// The header does not start with the magic bytes.
    #[error("bad magic (expected 0x{expected:08x}, found 0x{found:08x})")]
    BadMagic {
        /// The magic of this file kind, as a little-endian u32.
        expected: u32,
        /// What the header holds.
        found: u32,
    },
    /// The header was written by a format version this code does not read.
    #[error("unsupported format version (expected {expected}, found {found})")]
    UnsupportedVersion {
        /// The version this code reads and writes.
        expected: u16,
        /// What the header holds.
        found: u16,
    },
    /// The header's checksum does not match its bytes.
    #[error("header checksum mismatch (expected 0x{expected:08x}, found 0x{found:08x})")]
    HeaderChecksum {
        /// The checksum stored in the header.
        expected: u32,
        /// The checksum of the bytes read.
        found: u32,
    },
    /// Reserved header bytes are not zero.
    #[error("reserved header bytes not zero (expected 0, found 0x{found:x})")]
    ReservedNotZero {
        /// The reserved bytes, or-ed together.
        found: u32,
    },
    /// The payload's checksum does not match its bytes.
    #[error("payload checksum mismatch (expected 0x{expected:08x}, found 0x{found:08x})")]
    PayloadChecksum {
        /// The checksum stored in the header.
        expected: u32,
        /// The checksum of the bytes read.
        found: u32,
    },
    /// The header claims a payload larger than the configured limit.
    #[error("payload length over the limit (expected at most {max} bytes, found {found})")]
    PayloadTooLong {
        /// The limit from [`Options`](crate::Options).
        max: u64,
        /// The length the header claims.
        found: u64,
    },
    /// The file ends inside the header.
    #[error("header truncated (expected {expected} bytes, found {found})")]
    TruncatedHeader {
        /// Size of a header.
        expected: u64,
        /// Bytes left in the file.
        found: u64,
    },
    /// The file ends inside the payload.
    #[error("payload truncated (expected {expected} bytes, found {found})")]
    TruncatedPayload {
        /// The length the header claims.
        expected: u64,
        /// Bytes left in the file.
        found: u64,
    },
    /// The frame has a different sequence number than the one after its predecessor, or a
    /// snapshot header disagrees with its file name.
    #[error("seq mismatch (expected {expected}, found {found})")]
    SeqMismatch {
        /// The seq that must come next.
        expected: u64,
        /// The seq the header holds.
        found: u64,
    },
    /// The frame's timestamp is not after its predecessor's.
    #[error("timestamp not increasing (expected more than {previous}, found {found})")]
    TimestampNotIncreasing {
        /// The predecessor's timestamp.
        previous: u64,
        /// The timestamp the header holds.
        found: u64,
    },
    /// The hash chain is broken: the frame does not record its predecessor's hash.
    #[error("hash chain broken (expected previous hash {expected}, found {found})")]
    PrevHashMismatch {
        /// The predecessor's hash, in hex.
        expected: String,
        /// The previous hash the header holds, in hex.
        found: String,
    },
    /// A record has a different key than the one after its predecessor, or a record log
    /// segment's header or first record disagrees with its file name.
    #[error("key mismatch (expected {expected}, found {found})")]
    KeyMismatch {
        /// The key that must come next.
        expected: u64,
        /// The key the record or header holds.
        found: u64,
    },
    /// A record's checksum (over its length, key and payload) does not match.
    #[error("record checksum mismatch (expected 0x{expected:08x}, found 0x{found:08x})")]
    RecordChecksum {
        /// The checksum stored in the record header.
        expected: u32,
        /// The checksum of the bytes read.
        found: u32,
    },
    /// A segment other than the last is empty, so frames are missing.
    #[error("missing: the segment is empty but is not the last segment")]
    EmptySegment,
    /// A snapshot file's length disagrees with its header.
    #[error("file length mismatch (expected {expected} bytes, found {found})")]
    FileLength {
        /// Header size plus the payload length the header claims.
        expected: u64,
        /// The file's length.
        found: u64,
    },
}

/// An error of the journal. Corruption errors name the file, the byte offset and the sequence
/// number expected there.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A frame is invalid somewhere other than a torn tail.
    #[error("segment {segment} offset {offset}: frame {seq} {problem}")]
    Corrupt {
        /// The segment file name.
        segment: String,
        /// Byte offset of the frame in the segment.
        offset: u64,
        /// The sequence number expected at that offset.
        seq: u64,
        /// What is wrong.
        problem: Corruption,
    },
    /// Segment files do not continue each other.
    #[error("segment {segment}: expected a segment starting at frame {expected}, found one starting at frame {found}")]
    SegmentOutOfOrder {
        /// The segment file name.
        segment: String,
        /// The first seq the next segment must have.
        expected: u64,
        /// The first seq its name says.
        found: u64,
    },
    /// A snapshot file is invalid (reported by [`verify`](crate::verify); recovery falls back
    /// to an older snapshot instead).
    #[error("snapshot {snapshot}: {problem}")]
    SnapshotCorrupt {
        /// The snapshot file name.
        snapshot: String,
        /// What is wrong.
        problem: Corruption,
    },
    /// A valid snapshot's chain anchor differs from the hash of the frame it claims to follow.
    #[error("snapshot {snapshot}: anchor mismatch for frame {seq} (expected {expected}, found {found})")]
    SnapshotAnchorMismatch {
        /// The snapshot file name.
        snapshot: String,
        /// The snapshot's seq.
        seq: u64,
        /// The anchor the snapshot records, in hex.
        expected: String,
        /// The hash of frame `seq` in the journal, in hex.
        found: String,
    },
    /// A valid snapshot is newer than the end of the journal: acknowledged frames are missing.
    #[error("snapshot {snapshot}: journal too short (expected frames up to {seq}, found frames up to {last_seq})")]
    SnapshotBeyondJournal {
        /// The snapshot file name.
        snapshot: String,
        /// The snapshot's seq.
        seq: u64,
        /// The last frame in the journal.
        last_seq: u64,
    },
    /// An earlier sync failed; the journal refuses all work until a restart recovers it.
    #[error("journal poisoned by an earlier failed sync (expected a restart, found another call)")]
    Poisoned,
    /// A sync failed. The journal is now poisoned and never retries the sync.
    #[error("sync of {name} failed: {source}")]
    SyncFailed {
        /// The file synced, or "." for the directory.
        name: String,
        /// The storage error.
        source: io::Error,
    },
    /// After a failed append, cutting the partial frame off failed too. The journal is poisoned.
    #[error("truncate of {segment} to offset {offset} after a failed append failed: {source}")]
    TruncateFailed {
        /// The segment file name.
        segment: String,
        /// Where the failed frame started.
        offset: u64,
        /// The storage error.
        source: io::Error,
    },
    /// A storage call failed.
    #[error("{op} {name} failed: {source}")]
    Io {
        /// The storage method.
        op: &'static str,
        /// The file name, or "." for the directory.
        name: String,
        /// The storage error.
        source: io::Error,
    },
    /// The `on_frame` callback of [`verify`](crate::verify) rejected a frame.
    #[error("replay of frame {seq} failed: {message}")]
    Replay {
        /// The frame rejected.
        seq: u64,
        /// The callback's message.
        message: String,
    },
}

impl JournalError {
    /// Whether the journal is poisoned by this error (a failed sync, or a failed cut after a
    /// failed write), so the process must stop acknowledging and restart. Every other error
    /// leaves the journal usable: a corrupt file found on open, a snapshot that could not be
    /// written, a read that failed.
    pub fn is_fatal(&self) -> bool {
        matches!(self, JournalError::Poisoned | JournalError::SyncFailed { .. } | JournalError::TruncateFailed { .. })
    }

    pub(crate) fn io(op: &'static str, name: &str, source: io::Error) -> Self {
        JournalError::Io { op, name: name.to_string(), source }
    }
}

/// An error of [`Journal::append`](crate::Journal::append).
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The disk is full. The partial frame was cut off: the journal is readable and usable,
    /// and the frame is as if never written. The caller may reject the batch and carry on.
    #[error("no space for frame {seq} in {segment}: {source}")]
    NoSpace {
        /// The frame's seq.
        seq: u64,
        /// The segment file name.
        segment: String,
        /// The storage error.
        source: io::Error,
    },
    /// A write failed for another reason. The partial frame was cut off as for `NoSpace`.
    #[error("write of frame {seq} to {segment} failed: {source}")]
    Io {
        /// The frame's seq.
        seq: u64,
        /// The segment file name.
        segment: String,
        /// The storage error.
        source: io::Error,
    },
    /// A fatal error: the journal is poisoned (an earlier failed sync, a failed sync while
    /// rolling to a new segment, or a failed truncate after a failed write).
    #[error(transparent)]
    Fatal(#[from] JournalError),
}

/// An error of the [`RecordLog`](crate::RecordLog) or a [`RecordReader`](crate::RecordReader).
#[derive(Debug, thiserror::Error)]
pub enum RecordLogError {
    /// A read found a bad record below the durable end. Recovery cuts such damage on the next
    /// open; until then the records from here on cannot be read.
    #[error("record log segment {segment} offset {offset}: record {key} {problem}")]
    Corrupt {
        /// The segment file name.
        segment: String,
        /// Byte offset of the record in the segment.
        offset: u64,
        /// The key expected there.
        key: u64,
        /// What is wrong.
        problem: Corruption,
    },
    /// An earlier failure poisoned the record log; it refuses all work until a restart.
    #[error("record log poisoned by an earlier failure (expected a restart, found another call)")]
    Poisoned,
    /// A sync failed. The record log is now poisoned and never retries the sync.
    #[error("sync of record log {name} failed: {source}")]
    SyncFailed {
        /// The file synced, or "." for the directory.
        name: String,
        /// The storage error.
        source: io::Error,
    },
    /// A storage call whose failure leaves the files and the log's view of them apart (the cut
    /// after a failed write, or a step of `truncate_after`). The record log is poisoned.
    #[error("{op} of record log {name} failed, the log is poisoned: {source}")]
    Fatal {
        /// The storage method.
        op: &'static str,
        /// The file name, or "." for the directory.
        name: String,
        /// The storage error.
        source: io::Error,
    },
    /// A storage call failed and nothing changed; a write that failed this way (a full disk,
    /// `source.kind()` is `StorageFull`) may be tried again.
    #[error("{op} of record log {name} failed: {source}")]
    Io {
        /// The storage method.
        op: &'static str,
        /// The file name, or "." for the directory.
        name: String,
        /// The storage error.
        source: io::Error,
    },
    /// A read kept overlapping `truncate_after` on another thread.
    #[error("read after key {after_key} raced a truncation {attempts} times (expected a quiet log)")]
    ReadRaced {
        /// Where the read started.
        after_key: u64,
        /// How many times it tried.
        attempts: u32,
    },
}

impl RecordLogError {
    /// Whether this error poisoned the record log (a failed sync or a failed cut), so the
    /// process must restart it. The log's contents can always be derived again from the
    /// journal; whether that means stopping the engine is the engine's call.
    pub fn is_fatal(&self) -> bool {
        matches!(self, RecordLogError::Poisoned | RecordLogError::SyncFailed { .. } | RecordLogError::Fatal { .. })
    }

    pub(crate) fn io(op: &'static str, name: &str, source: io::Error) -> Self {
        RecordLogError::Io { op, name: name.to_string(), source }
    }

    pub(crate) fn fatal(op: &'static str, name: &str, source: io::Error) -> Self {
        RecordLogError::Fatal { op, name: name.to_string(), source }
    }
}
