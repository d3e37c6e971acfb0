//! Snapshots as streams: [`SnapshotReader`] reads one back without ever holding it whole.
//!
//! This module does not decide which snapshot to load (recovery does) or what a snapshot
//! holds, and it never touches segments. The byte layout is in `format.rs` and
//! `docs/journal-format.md`.

use std::io::{self, BufRead, BufReader, Read};

use crate::error::JournalError;
use crate::format::{self, SnapshotHeader, SNAPSHOT_HEADER_BYTES};
use crate::scan::{self, SNAPSHOT_CHUNK_BYTES};
use crate::storage::Storage;

/// A snapshot file's metadata: what recovery chose, what [`verify`](crate::verify) checked,
/// what a [`SnapshotReader`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The file name.
    pub name: String,
    /// The last frame the snapshot includes.
    pub seq: u64,
    /// The timestamp the snapshot records (the caller's, given to
    /// [`Journal::write_snapshot`](crate::Journal::write_snapshot)).
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
