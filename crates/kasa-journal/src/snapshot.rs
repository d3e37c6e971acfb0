//! Snapshots as streams: [`SnapshotWriter`] writes one without ever holding it whole, on any
//! thread, and [`SnapshotReader`] reads one back the same way.
//!
//! The journal hands out a writer from [`Journal::begin_snapshot`](crate::Journal::begin_snapshot)
//! on the writer thread (a check and, at the tip, no I/O at all); the writer owns its own
//! storage handle, so the state can be encoded straight into it on another thread while frames
//! keep being appended. [`SnapshotWriter::finish`] makes the file durable and atomic (header
//! last, sync, rename, directory sync), and the [`SnapshotDone`] token goes back to
//! [`Journal::snapshot_done`](crate::Journal::snapshot_done), which prunes old snapshots.
//!
//! This module does not decide when to snapshot or what a snapshot holds, and it never touches
//! segments. The byte layout is in `format.rs` and `docs/journal-format.md`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::JournalError;
use crate::format::{self, Hash, SnapshotHeader, SNAPSHOT_HEADER_BYTES};
use crate::scan::{self, SNAPSHOT_CHUNK_BYTES};
use crate::storage::Storage;

/// A snapshot being written is synced every this many bytes (see `write_buffer`).
const SNAPSHOT_SYNC_EVERY_BYTES: u64 = 16 << 20;

/// The name [`JournalError`] uses for the directory itself.
pub(crate) const DIR_NAME: &str = ".";

/// A snapshot file's metadata: what recovery chose, what [`verify`](crate::verify) checked,
/// what a [`SnapshotReader`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The file name.
    pub name: String,
    /// The last frame the snapshot includes.
    pub seq: u64,
    /// The timestamp the snapshot records (the caller's, given to
    /// [`Journal::begin_snapshot`](crate::Journal::begin_snapshot)).
    pub timestamp: u64,
    /// Size of the snapshot payload.
    pub payload_bytes: u64,
}

impl SnapshotInfo {
    pub(crate) fn new(name: &str, header: &SnapshotHeader) -> Self {
        SnapshotInfo {
            name: name.to_string(),
            seq: header.seq,
            timestamp: header.timestamp,
            payload_bytes: header.payload_len,
        }
    }
}

/// State a journal shares with the snapshot writers it handed out, which may live on other
/// threads.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// A sync failed, in the journal or in a snapshot writer: refuse everything, never retry.
    poisoned: AtomicBool,
    /// A [`SnapshotWriter`] exists. One at a time, so two can never write the same temp file.
    snapshot_in_flight: AtomicBool,
}

impl Shared {
    pub fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub fn snapshot_in_flight(&self) -> bool {
        self.snapshot_in_flight.load(Ordering::Acquire)
    }

    /// Marks a writer as started; panics if one already is (a programmer error).
    pub fn start_snapshot(&self) {
        let was = self.snapshot_in_flight.swap(true, Ordering::AcqRel);
        assert!(!was, "begin_snapshot: expected no snapshot in progress, found one");
    }

    fn end_snapshot(&self) {
        self.snapshot_in_flight.store(false, Ordering::Release);
    }
}

/// Where a [`SnapshotWriter`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriterState {
    /// Taking payload bytes.
    Writing,
    /// A write, the rename, or the journal (poisoned) refused; the temp file is removed on drop.
    Failed,
    /// A sync failed: the journal is poisoned and nothing touches the storage again.
    SyncFailed,
    /// The snapshot is durable under its final name.
    Finished,
}

/// A snapshot being written: an [`io::Write`] for the payload, buffered, checksummed as it
/// goes, written to `snapshot-{seq}.snap.tmp` in chunks. Get one from
/// [`Journal::begin_snapshot`](crate::Journal::begin_snapshot); it may be moved to another
/// thread. Nothing is visible to recovery until [`finish`](Self::finish) renames the file.
///
/// `write` and `flush` never sync; their errors (a full disk, say) are not fatal, and the
/// journal stays usable. Dropping an unfinished writer removes its temp file (and the next
/// [`Journal::open`](crate::Journal::open) removes any that a crash left behind).
pub struct SnapshotWriter<S: Storage> {
    storage: S,
    shared: Arc<Shared>,
    /// Seq, timestamp and anchor; length and checksum are filled in by `finish`.
    header: SnapshotHeader,
    name: String,
    temp: String,
    /// Bytes of the temp file written so far (header placeholder included).
    file_len: u64,
    /// Bytes of the temp file written since its last sync.
    unsynced: u64,
    /// Bytes not yet written. Starts with a zeroed header placeholder, so the first write of
    /// the file is one call and an unfinished file never holds a valid header.
    buffer: Vec<u8>,
    state: WriterState,
}

impl<S: Storage> SnapshotWriter<S> {
    pub(crate) fn new(storage: S, shared: Arc<Shared>, seq: u64, timestamp: u64, anchor: Hash) -> Self {
        let name = format::snapshot_name(seq);
        let temp = format!("{name}{}", format::TEMP_SUFFIX);
        let header = SnapshotHeader { seq, timestamp, payload_len: 0, anchor, payload_checksum: 0 };
        // The buffer is allocated on first write, on the thread that writes.
        SnapshotWriter {
            storage,
            shared,
            header,
            name,
            temp,
            file_len: 0,
            unsynced: 0,
            buffer: vec![0; SNAPSHOT_HEADER_BYTES],
            state: WriterState::Writing,
        }
    }

    /// The seq of the frame this snapshot is as of.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// Payload bytes taken so far.
    pub fn payload_bytes(&self) -> u64 {
        self.header.payload_len
    }

    /// The temp file's name, for error messages.
    pub(crate) fn temp_name(&self) -> &str {
        &self.temp
    }

    fn check_writing(&self) -> io::Result<()> {
        match self.state {
            WriterState::Writing if self.shared.is_poisoned() => {
                Err(io::Error::other("journal poisoned by a failed sync (expected a restart, found another write)"))
            }
            WriterState::Writing => Ok(()),
            _ => {
                Err(io::Error::other(format!("snapshot {}: expected a writer in progress, found it failed", self.name)))
            }
        }
    }

    /// Writes the buffer to the temp file.
    fn write_buffer(&mut self) -> io::Result<()> {
        self.check_writing()?;
        if self.buffer.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.storage.write_at(&self.temp, self.file_len, &self.buffer) {
            self.state = WriterState::Failed;
            return Err(error);
        }
        self.file_len += self.buffer.len() as u64;
        self.unsynced += self.buffer.len() as u64;
        self.buffer.clear();
        // Sync as we go: a large snapshot left dirty in the page cache would be written back
        // inside the journal's own fdatasync (ext4 in ordered mode flushes the data of files
        // with newly allocated blocks at every journal commit), stalling the writer for as
        // long as it takes to write it out (100 ms and more for a gigabyte).
        if self.unsynced >= SNAPSHOT_SYNC_EVERY_BYTES {
            if let Err(source) = self.storage.sync(&self.temp) {
                let name = self.temp.clone();
                let error = self.sync_failed(name, source);
                return Err(io::Error::other(error.to_string()));
            }
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Makes the snapshot durable and visible: writes what is buffered, writes the real header
    /// over the placeholder, syncs the file, renames it to `snapshot-{seq}.snap`, and syncs the
    /// directory. Give the returned token to
    /// [`Journal::snapshot_done`](crate::Journal::snapshot_done) on the writer thread.
    ///
    /// A failed write or rename returns [`JournalError::Io`]: the snapshot is abandoned, its
    /// temp file removed, and the journal stays usable. A failed sync returns
    /// [`JournalError::SyncFailed`] and **poisons the journal** this writer came from (every
    /// later journal call returns [`JournalError::Poisoned`]): the caller must treat it as fatal,
    /// exactly like a failed [`Journal::sync`](crate::Journal::sync). If the journal was
    /// poisoned meanwhile, returns [`JournalError::Poisoned`] without touching the storage.
    pub fn finish(mut self) -> Result<SnapshotDone, JournalError> {
        if self.shared.is_poisoned() {
            return Err(JournalError::Poisoned);
        }
        self.write_buffer().map_err(|e| JournalError::io("write", &self.temp, e))?;
        let header = self.header.encode();
        if let Err(source) = self.storage.write_at(&self.temp, 0, &header) {
            self.state = WriterState::Failed;
            return Err(JournalError::io("write", &self.temp, source));
        }
        if let Err(source) = self.storage.sync(&self.temp) {
            return Err(self.sync_failed(self.temp.clone(), source));
        }
        if let Err(source) = self.storage.rename(&self.temp, &self.name) {
            self.state = WriterState::Failed;
            return Err(JournalError::io("rename", &self.temp, source));
        }
        if let Err(source) = self.storage.sync_dir() {
            return Err(self.sync_failed(DIR_NAME.to_string(), source));
        }
        self.state = WriterState::Finished;
        Ok(SnapshotDone { info: SnapshotInfo::new(&self.name, &self.header) })
    }

    fn sync_failed(&mut self, name: String, source: io::Error) -> JournalError {
        self.state = WriterState::SyncFailed;
        self.shared.poison();
        JournalError::SyncFailed { name, source }
    }
}

impl<S: Storage> Write for SnapshotWriter<S> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.check_writing()?;
        if self.buffer.capacity() < SNAPSHOT_CHUNK_BYTES {
            self.buffer.reserve_exact(SNAPSHOT_CHUNK_BYTES - self.buffer.len());
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let taken = rest.len().min(SNAPSHOT_CHUNK_BYTES - self.buffer.len());
            self.buffer.extend_from_slice(&rest[..taken]);
            self.header.payload_checksum = crc32c::crc32c_append(self.header.payload_checksum, &rest[..taken]);
            self.header.payload_len += taken as u64;
            rest = &rest[taken..];
            if self.buffer.len() == SNAPSHOT_CHUNK_BYTES {
                self.write_buffer()?;
            }
        }
        Ok(bytes.len())
    }

    /// Writes the buffered bytes to the temp file. Does not sync.
    fn flush(&mut self) -> io::Result<()> {
        self.write_buffer()
    }
}

impl<S: Storage> Drop for SnapshotWriter<S> {
    fn drop(&mut self) {
        // An abandoned snapshot's temp file is removed now rather than at the next open. After
        // a failed sync (here or in the journal) nothing touches the storage again.
        let started = self.file_len > 0 || self.state == WriterState::Failed;
        let abandoned = matches!(self.state, WriterState::Writing | WriterState::Failed);
        if abandoned && started && !self.shared.is_poisoned() {
            if let Err(error) = self.storage.remove(&self.temp) {
                if error.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(file = %self.temp, %error, "removing an abandoned snapshot failed");
                }
            }
        }
        self.shared.end_snapshot();
    }
}

/// Proof that a snapshot is durable under its final name, from [`SnapshotWriter::finish`];
/// hand it to [`Journal::snapshot_done`](crate::Journal::snapshot_done).
#[derive(Debug)]
#[must_use = "give it to Journal::snapshot_done, which removes old snapshots"]
pub struct SnapshotDone {
    pub(crate) info: SnapshotInfo,
}

impl SnapshotDone {
    /// The snapshot written.
    pub fn info(&self) -> &SnapshotInfo {
        &self.info
    }
}

/// The payload of one snapshot file as a stream: [`Read`] and [`BufRead`], buffered in chunks
/// of 1 MiB, with its own storage handle (so it may be moved to another thread).
///
/// It checks the payload checksum as it reads: the read that would deliver the last bytes
/// fails with [`io::ErrorKind::InvalidData`] instead if the checksum does not match, so a
/// caller that reads to the end never accepts a damaged payload. (Recovery has already
/// checked the checksum once, in [`Journal::open`](crate::Journal::open); this catches a file
/// that changed since, and serves callers like `kasa verify` that did not open a journal.)
pub struct SnapshotReader<S: Storage> {
    inner: BufReader<PayloadSource<S>>,
}

/// Reads the payload from storage and checksums it, underneath the [`BufReader`].
struct PayloadSource<S: Storage> {
    storage: S,
    info: SnapshotInfo,
    expected_checksum: u32,
    checksum: u32,
    /// Payload bytes read so far.
    position: u64,
}

impl<S: Storage> Read for PayloadSource<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.info.payload_bytes - self.position;
        if remaining == 0 {
            // Only reachable with a good checksum, except for an empty payload.
            return self.check(self.checksum).map(|()| 0);
        }
        let len = (buf.len() as u64).min(remaining) as usize;
        if len == 0 {
            return Ok(0);
        }
        let at = SNAPSHOT_HEADER_BYTES as u64 + self.position;
        self.storage.read_at(&self.info.name, at, &mut buf[..len])?;
        let checksum = crc32c::crc32c_append(self.checksum, &buf[..len]);
        if len as u64 == remaining {
            // Not advancing on a mismatch: every later read fails the same way.
            self.check(checksum)?;
        }
        self.checksum = checksum;
        self.position += len as u64;
        Ok(len)
    }
}

impl<S: Storage> PayloadSource<S> {
    fn check(&self, checksum: u32) -> io::Result<()> {
        if checksum == self.expected_checksum {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "snapshot {}: payload checksum mismatch (expected 0x{:08x}, found 0x{checksum:08x})",
                self.info.name, self.expected_checksum
            ),
        ))
    }
}

impl<S: Storage> SnapshotReader<S> {
    /// The snapshot being read.
    pub fn info(&self) -> &SnapshotInfo {
        &self.inner.get_ref().info
    }
}

impl<S: Storage> Read for SnapshotReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<S: Storage> BufRead for SnapshotReader<S> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount)
    }
}

/// Opens the snapshot of frame `seq` (file `snapshot-{seq}.snap`) for reading, checking its
/// header and length; the payload checksum is checked as it is read (see [`SnapshotReader`]).
/// Read-only. Takes its own storage handle: pass `storage.try_clone()?` to keep yours.
pub fn open_snapshot<S: Storage>(mut storage: S, seq: u64) -> Result<SnapshotReader<S>, JournalError> {
    let name = format::snapshot_name(seq);
    let header = scan::read_snapshot_header(&mut storage, &name, seq)?
        .map_err(|problem| JournalError::SnapshotCorrupt { snapshot: name.clone(), problem })?;
    let source = PayloadSource {
        storage,
        info: SnapshotInfo::new(&name, &header),
        expected_checksum: header.payload_checksum,
        checksum: 0,
        position: 0,
    };
    let capacity = header.payload_len.clamp(1, SNAPSHOT_CHUNK_BYTES as u64) as usize;
    Ok(SnapshotReader { inner: BufReader::with_capacity(capacity, source) })
}
