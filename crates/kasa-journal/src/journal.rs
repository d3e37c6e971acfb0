//! The journal: recovery on open, streaming replay, appends, syncs, segment rolls and the
//! writer-thread half of snapshots.
//!
//! The journal is owned by the one writer thread. It keeps the durability rules (what is
//! acknowledged is never lost, a failed sync is fatal, a full disk is not) and leaves every
//! policy to the caller: when to sync (group commit), when to snapshot, what to do with a
//! rejected batch. It does not interpret payloads, never deletes segments, and never holds more
//! than one frame in memory: recovery hands back metadata, and the caller streams the snapshot
//! ([`Journal::open_snapshot`]) and the frames after it ([`Journal::replay`]).

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::error::{AppendError, JournalError};
use crate::format::{self, frame_hash, hex, FrameHeader, Hash, SnapshotHeader, FRAME_HEADER_BYTES, HASH_ZERO};
use crate::scan::{self, ChainEnd, Listing, SegmentFile};
use crate::snapshot::{self, Shared, SnapshotDone, SnapshotInfo, SnapshotReader, SnapshotWriter, DIR_NAME};
use crate::storage::Storage;

/// Default for [`Options::segment_bytes_max`]: large enough that rolls (each costs a sync and a
/// directory sync) are rare, small enough that a segment copies and checks quickly.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 256 * 1024 * 1024;

/// Default for [`Options::frame_payload_bytes_max`]: far above any batch the engine builds, and
/// a bound on what recovery allocates for one frame.
pub const FRAME_PAYLOAD_BYTES_MAX_DEFAULT: u32 = 64 * 1024 * 1024;

/// Hard ceiling for [`Options::frame_payload_bytes_max`]: the torn-tail check may read one
/// whole frame into memory, and 1 GiB is as much as we let it take.
pub const FRAME_PAYLOAD_BYTES_LIMIT: u32 = 1024 * 1024 * 1024;

/// How many snapshots to keep. Two, so that if the newest is damaged the one before it still
/// spares a full replay.
const SNAPSHOTS_KEPT: usize = 2;

/// Limits of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Roll to a new segment file once the current one reaches this size. A segment can exceed
    /// it by at most one frame.
    pub segment_bytes_max: u64,
    /// Largest frame payload. Appending a larger one is a programmer error; a frame header on
    /// disk claiming more is corruption. Recovery and replay hold one frame of at most this
    /// size in memory. (Snapshots have no size limit: they are only ever streamed.)
    pub frame_payload_bytes_max: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            frame_payload_bytes_max: FRAME_PAYLOAD_BYTES_MAX_DEFAULT,
        }
    }
}

/// One journal entry: an opaque payload with its place in the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Sequence number, from 1, without gaps.
    pub seq: u64,
    /// Caller's timestamp, strictly increasing.
    pub timestamp: u64,
    /// The opaque payload.
    pub payload: Vec<u8>,
}

/// What recovery cut off the end of the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file name.
    pub segment: String,
    /// Where the torn frame started (the new end of the file).
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes_cut: u64,
}

/// What [`Journal::open`] found. It holds no payloads: read the snapshot with
/// [`Journal::open_snapshot`], then replay the frames after it with [`Journal::replay`] from
/// [`replay_after`](Self::replay_after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The newest valid snapshot (header, length and payload checksum checked, anchored in the
    /// chain), if any.
    pub snapshot: Option<SnapshotInfo>,
    /// Number of frames after the snapshot (or of all frames, without one).
    pub frames_after_snapshot: u64,
    /// Total payload bytes of those frames, for sizing the state before the replay.
    pub payload_bytes_after_snapshot: u64,
    /// What was cut off the end, if anything.
    pub torn_tail: Option<TornTail>,
}

impl Recovered {
    /// The seq to pass to [`Journal::replay`]: the snapshot's, or 0 without one.
    pub fn replay_after(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.seq)
    }
}

/// The durable, hash-chained log of opaque frames. See the crate docs.
pub struct Journal<S: Storage> {
    storage: S,
    options: Options,
    /// All segments in order; the last is the one appended to. Empty until the first append.
    segments: Vec<SegmentFile>,
    last_seq: u64,
    last_timestamp: u64,
    last_hash: Hash,
    /// The last frame known durable, and its hash (the cheap anchor for a snapshot at the tip).
    synced_seq: u64,
    synced_hash: Hash,
    /// The current segment has writes or truncates not yet synced.
    segment_dirty: bool,
    /// A segment file was created since the last directory sync.
    dir_dirty: bool,
    /// The poison flag (a failed sync: refuse everything, never retry; see `sync`) and the
    /// snapshot-in-progress flag, shared with the snapshot writer, which may fail a sync on
    /// another thread.
    shared: Arc<Shared>,
    /// Reused for every append so the hot path does not allocate.
    frame_buffer: Vec<u8>,
}

impl<S: Storage> Journal<S> {
    /// Opens (creating if empty) the journal in `storage`, validates it, cuts a torn tail, and
    /// says what the caller must load: a snapshot and the frames after it.
    ///
    /// Removes leftover `.tmp` files, picks the newest valid snapshot (reading it through once
    /// to check its payload checksum, and warning about and skipping invalid ones), reads and
    /// checks every frame from frame 1, cuts a torn last frame, and syncs the last segment so
    /// that everything it reports is durable. Memory stays bounded by one frame and one
    /// snapshot chunk: nothing is kept but metadata.
    pub fn open(mut storage: S, options: Options) -> Result<(Self, Recovered), JournalError> {
        assert!(options.segment_bytes_max > 0, "segment_bytes_max must be positive");
        assert!(
            options.frame_payload_bytes_max <= FRAME_PAYLOAD_BYTES_LIMIT,
            "frame_payload_bytes_max {} is over the limit {FRAME_PAYLOAD_BYTES_LIMIT}",
            options.frame_payload_bytes_max
        );
        let listing = Listing::read(&mut storage)?;
        // A temp file is a snapshot whose write never finished; its removal is made durable
        // by the directory sync at the end of open.
        for name in &listing.temps {
            storage.remove(name).map_err(|e| JournalError::io("remove", name, e))?;
        }

        // The checksum pass is what lets recovery fall back to an older snapshot before the
        // caller has consumed a byte of a damaged one.
        let mut snapshot = None;
        for (seq, name) in listing.snapshots.iter().rev() {
            match scan::check_snapshot(&mut storage, name, *seq)? {
                Ok(header) => {
                    snapshot = Some((name.clone(), header));
                    break;
                }
                Err(problem) => {
                    tracing::warn!(snapshot = %name, %problem, "invalid snapshot skipped");
                }
            }
        }
        if snapshot.is_none() && !listing.snapshots.is_empty() {
            tracing::warn!("no valid snapshot, replaying the journal from frame 1");
        }

        let snapshot_seq = snapshot.as_ref().map_or(0, |(_, header)| header.seq);
        let (mut frames_after_snapshot, mut payload_bytes_after_snapshot) = (0, 0);
        let mut on_frame = |frame: &Frame, hash: &Hash| {
            if let Some((name, header)) = &snapshot {
                if frame.seq == header.seq && *hash != header.anchor {
                    return Err(anchor_mismatch(name, frame.seq, hash, &header.anchor));
                }
            }
            if frame.seq > snapshot_seq {
                frames_after_snapshot += 1;
                payload_bytes_after_snapshot += frame.payload.len() as u64;
            }
            Ok(())
        };
        let scan = scan::scan(&mut storage, &listing.segments, options.frame_payload_bytes_max, &mut on_frame)?;
        if let Some((name, header)) = &snapshot {
            check_snapshot_reached(name, header, scan.end.seq)?;
        }

        if let Some(torn) = &scan.torn_tail {
            tracing::warn!(
                segment = %torn.segment,
                offset = torn.offset,
                bytes_cut = torn.bytes_cut,
                seq = scan.end.seq + 1,
                "torn last frame cut off"
            );
            storage.truncate(&torn.segment, torn.offset).map_err(|e| JournalError::io("truncate", &torn.segment, e))?;
        }
        // What we read may still be only in the page cache, file bytes and directory entries
        // alike (the previous process may have died without syncing). Sync both now so that
        // everything handed back, and anything later anchored on it, is durable. Earlier
        // segments were synced before their successor was created.
        if let Some(segment) = scan.segments.last() {
            storage
                .sync(&segment.name)
                .map_err(|source| JournalError::SyncFailed { name: segment.name.clone(), source })?;
        }
        storage.sync_dir().map_err(|source| JournalError::SyncFailed { name: DIR_NAME.to_string(), source })?;

        let journal = Journal {
            storage,
            options,
            segments: scan.segments,
            last_seq: scan.end.seq,
            last_timestamp: scan.end.timestamp,
            last_hash: scan.end.hash,
            synced_seq: scan.end.seq,
            synced_hash: scan.end.hash,
            segment_dirty: false,
            dir_dirty: false,
            shared: Arc::new(Shared::default()),
            frame_buffer: Vec::new(),
        };
        let recovered = Recovered {
            snapshot: snapshot.map(|(name, header)| SnapshotInfo::new(&name, &header)),
            frames_after_snapshot,
            payload_bytes_after_snapshot,
            torn_tail: scan.torn_tail,
        };
        Ok((journal, recovered))
    }

    /// Opens the snapshot of frame `seq` for streaming, on a storage handle of its own; pass
    /// the seq of `Recovered::snapshot` after [`open`](Self::open). The reader checks the
    /// payload checksum again as it reads (see [`SnapshotReader`]).
    pub fn open_snapshot(&self, seq: u64) -> Result<SnapshotReader<S>, JournalError> {
        let storage = self.storage.try_clone().map_err(|e| JournalError::io("clone", DIR_NAME, e))?;
        snapshot::open_snapshot(storage, seq)
    }

    /// Calls `on_frame` with every frame after `after_seq` up to [`last_seq`](Self::last_seq),
    /// in order, reading them back from storage one at a time into one reused buffer (at most
    /// `frame_payload_bytes_max`). Returns how many frames it replayed. Pass
    /// [`Recovered::replay_after`] after a snapshot, or 0 to replay everything from frame 1
    /// (to rebuild something derived from the frames, say).
    ///
    /// Every frame read is checked again (checksums, seq, timestamp and hash chain, from the
    /// start of the segment that holds frame `after_seq + 1`): a byte that changed since
    /// [`open`](Self::open) is a [`JournalError::Corrupt`], never a wrong frame. An error of
    /// `on_frame` stops the replay and is returned as is. `after_seq` beyond the last frame is
    /// a programmer error and panics.
    pub fn replay<E: From<JournalError>>(
        &mut self,
        after_seq: u64,
        mut on_frame: impl FnMut(&Frame) -> Result<(), E>,
    ) -> Result<u64, E> {
        if self.shared.is_poisoned() {
            return Err(JournalError::Poisoned.into());
        }
        assert!(
            after_seq <= self.last_seq,
            "replay: expected a seq at most the last frame {}, found {after_seq}",
            self.last_seq
        );
        if after_seq == self.last_seq {
            return Ok(0);
        }
        let first = self.segments.iter().rposition(|s| s.first_seq <= after_seq + 1).expect("frame 1 is in a segment");
        let mut frame = Frame { seq: 0, timestamp: 0, payload: Vec::new() };
        let mut replayed = 0;
        let mut visit = |frame: &Frame, _: &Hash| -> Result<ControlFlow<()>, E> {
            if frame.seq > after_seq {
                on_frame(frame)?;
                replayed += 1;
            }
            Ok(ControlFlow::Continue(()))
        };
        let payload_max = self.options.frame_payload_bytes_max;
        let mut end = self.segments[first].prev;
        for segment in &self.segments[first..] {
            let storage = &mut self.storage;
            let walk = scan::walk_segment(
                storage,
                &segment.name,
                segment.len,
                end,
                false,
                payload_max,
                &mut frame,
                &mut visit,
            )?;
            end = walk.end;
        }
        assert_eq!(end.seq, self.last_seq, "replay: expected the segments to end at the last frame");
        Ok(replayed)
    }

    /// Appends one frame. Does not sync (except the finished segment when rolling to a new one).
    ///
    /// `seq` must be `last_seq() + 1`, `timestamp` must be greater than `last_timestamp()`, and
    /// the payload at most `frame_payload_bytes_max`: anything else is a programmer error and
    /// panics. On a write error the partial frame is cut off, so the journal stays readable and
    /// the frame is as if never written: [`AppendError::NoSpace`] for a full disk,
    /// [`AppendError::Io`] otherwise. If that cut fails too, or the journal is poisoned, the
    /// error is [`AppendError::Fatal`].
    pub fn append(&mut self, seq: u64, timestamp: u64, payload: &[u8]) -> Result<(), AppendError> {
        if self.shared.is_poisoned() {
            return Err(JournalError::Poisoned.into());
        }
        assert_eq!(seq, self.last_seq + 1, "append: expected the next seq");
        assert!(
            timestamp > self.last_timestamp,
            "append: expected a timestamp after {}, found {timestamp}",
            self.last_timestamp
        );
        assert!(
            payload.len() <= self.options.frame_payload_bytes_max as usize,
            "append: payload of {} bytes is over the limit {}",
            payload.len(),
            self.options.frame_payload_bytes_max
        );
        self.roll_if_full(seq)?;

        let header = FrameHeader {
            seq,
            timestamp,
            payload_len: payload.len() as u32,
            payload_checksum: crc32c::crc32c(payload),
            prev_hash: self.last_hash,
        };
        let header_bytes = header.encode();
        let hash = frame_hash(&header_bytes, payload);
        // One write per frame: a torn write then leaves a prefix of this one frame, which is
        // exactly what recovery knows how to cut.
        self.frame_buffer.clear();
        self.frame_buffer.extend_from_slice(&header_bytes);
        self.frame_buffer.extend_from_slice(payload);

        let segment = self.segments.last_mut().expect("roll_if_full made a segment");
        let start = segment.len;
        self.segment_dirty = true;
        match self.storage.write_at(&segment.name, start, &self.frame_buffer) {
            Ok(()) => {
                segment.len += self.frame_buffer.len() as u64;
                self.last_seq = seq;
                self.last_timestamp = timestamp;
                self.last_hash = hash;
                Ok(())
            }
            Err(source) => {
                let name = segment.name.clone();
                match self.storage.truncate(&name, start) {
                    Ok(()) => {}
                    // The write failed before the file existed; there is nothing to cut, and
                    // the segment is made again by the next append.
                    Err(e) if start == 0 && e.kind() == std::io::ErrorKind::NotFound => {
                        self.segments.pop();
                        self.segment_dirty = false;
                    }
                    Err(e) => {
                        self.shared.poison();
                        return Err(JournalError::TruncateFailed { segment: name, offset: start, source: e }.into());
                    }
                }
                if source.kind() == std::io::ErrorKind::StorageFull {
                    Err(AppendError::NoSpace { seq, segment: name, source })
                } else {
                    Err(AppendError::Io { seq, segment: name, source })
                }
            }
        }
    }

    /// Makes sure there is a current segment with room, creating the segment for `seq` if not.
    fn roll_if_full(&mut self, seq: u64) -> Result<(), JournalError> {
        let full = match self.segments.last() {
            None => true,
            Some(segment) => segment.len >= self.options.segment_bytes_max,
        };
        if !full {
            return Ok(());
        }
        if !self.segments.is_empty() {
            // Sync the finished segment before its successor exists, so that every segment but
            // the last is always complete and durable: recovery can then treat any bad frame
            // in an earlier segment as corruption, never as a torn write.
            self.sync()?;
        }
        let prev = ChainEnd { seq: self.last_seq, timestamp: self.last_timestamp, hash: self.last_hash };
        self.segments.push(SegmentFile { name: format::segment_name(seq), first_seq: seq, len: 0, prev });
        self.dir_dirty = true;
        Ok(())
    }

    /// Makes every appended frame durable: fdatasync of the current segment, and a directory
    /// sync if a segment file was created since the last sync.
    ///
    /// A failed sync is fatal. The journal is poisoned, every later call returns
    /// [`JournalError::Poisoned`], and the sync is never retried: after a failed fsync the
    /// kernel may have dropped the dirty pages and a retry can report success for data that is
    /// gone (PostgreSQL's fsync lesson). Restart and recover instead. A failed sync in a
    /// [`SnapshotWriter`] this journal handed out poisons it the same way, from whatever thread.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.shared.is_poisoned() {
            return Err(JournalError::Poisoned);
        }
        if self.segment_dirty {
            let name = &self.segments.last().expect("dirty implies a segment").name;
            if let Err(source) = self.storage.sync(name) {
                self.shared.poison();
                return Err(JournalError::SyncFailed { name: name.clone(), source });
            }
            self.segment_dirty = false;
        }
        if self.dir_dirty {
            if let Err(source) = self.storage.sync_dir() {
                self.shared.poison();
                return Err(JournalError::SyncFailed { name: DIR_NAME.to_string(), source });
            }
            self.dir_dirty = false;
        }
        self.synced_seq = self.last_seq;
        self.synced_hash = self.last_hash;
        Ok(())
    }

    /// Starts a snapshot of the state as of frame `seq`, on the writer thread: checks the
    /// journal, takes the chain anchor (the hash of frame `seq`), and returns a
    /// [`SnapshotWriter`] with its own storage handle, to be filled (on any thread) and
    /// [finished](SnapshotWriter::finish); give the token that returns to
    /// [`snapshot_done`](Self::snapshot_done). Appends may go on meanwhile.
    ///
    /// Does no I/O when `seq` is the last synced frame (the usual case); a `seq` behind it reads
    /// that frame's segment up to it, to compute the anchor. `seq` must be at most the last
    /// synced frame, so a durable snapshot never anchors on a frame that could still be lost,
    /// and only one snapshot may be in progress at a time (see
    /// [`snapshot_in_progress`](Self::snapshot_in_progress)): both are programmer errors, which
    /// panic.
    pub fn begin_snapshot(&mut self, seq: u64, timestamp: u64) -> Result<SnapshotWriter<S>, JournalError> {
        if self.shared.is_poisoned() {
            return Err(JournalError::Poisoned);
        }
        assert!(
            seq <= self.synced_seq,
            "begin_snapshot: expected a synced seq (at most {}), found {seq}",
            self.synced_seq
        );
        assert!(!self.shared.snapshot_in_flight(), "begin_snapshot: expected no snapshot in progress, found one");
        let anchor = self.frame_hash(seq)?;
        let storage = self.storage.try_clone().map_err(|e| JournalError::io("clone", DIR_NAME, e))?;
        self.shared.start_snapshot();
        Ok(SnapshotWriter::new(storage, Arc::clone(&self.shared), seq, timestamp, anchor))
    }

    /// Back on the writer thread after [`SnapshotWriter::finish`]: removes all but the newest
    /// two snapshots. Removal failures only warn; an old snapshot left behind costs disk space,
    /// not correctness. The removals are not synced; one that does not survive a crash is
    /// redone after the next snapshot. (Unlinking a large file can take the file system a few
    /// milliseconds; call this when a pause of that size is fine.)
    pub fn snapshot_done(&mut self, done: SnapshotDone) -> Result<(), JournalError> {
        if self.shared.is_poisoned() {
            return Err(JournalError::Poisoned);
        }
        tracing::debug!(snapshot = %done.info.name, "snapshot durable, removing old ones");
        self.remove_old_snapshots();
        Ok(())
    }

    /// Whether a [`SnapshotWriter`] from [`begin_snapshot`](Self::begin_snapshot) is still
    /// alive (finishing or dropping it ends the snapshot).
    pub fn snapshot_in_progress(&self) -> bool {
        self.shared.snapshot_in_flight()
    }

    /// Writes a whole snapshot from one buffer, on this thread: [`begin_snapshot`],
    /// `write_all`, [`finish`](SnapshotWriter::finish) and [`snapshot_done`]. Errors are those
    /// of the streaming path: a failed write (a full disk, say) or rename leaves the journal
    /// usable and no temp file; a failed sync poisons the journal.
    ///
    /// [`begin_snapshot`]: Self::begin_snapshot
    /// [`snapshot_done`]: Self::snapshot_done
    pub fn write_snapshot(&mut self, seq: u64, timestamp: u64, payload: &[u8]) -> Result<(), JournalError> {
        use std::io::Write;

        let mut writer = self.begin_snapshot(seq, timestamp)?;
        if let Err(source) = writer.write_all(payload) {
            return Err(JournalError::io("write", writer.temp_name(), source));
        }
        let done = writer.finish()?;
        self.snapshot_done(done)
    }

    /// Removes all but the newest snapshots; see [`snapshot_done`](Self::snapshot_done).
    fn remove_old_snapshots(&mut self) {
        let listing = match Listing::read(&mut self.storage) {
            Ok(listing) => listing,
            Err(error) => {
                tracing::warn!(%error, "listing snapshots to remove failed");
                return;
            }
        };
        let old = listing.snapshots.len().saturating_sub(SNAPSHOTS_KEPT);
        for (_, name) in &listing.snapshots[..old] {
            if let Err(error) = self.storage.remove(name) {
                tracing::warn!(snapshot = %name, %error, "removing old snapshot failed");
            }
        }
    }

    /// The hash of frame `seq` (zero for seq 0), read back from disk unless it is the tip.
    fn frame_hash(&mut self, seq: u64) -> Result<Hash, JournalError> {
        if seq == 0 {
            return Ok(HASH_ZERO);
        }
        if seq == self.synced_seq {
            return Ok(self.synced_hash);
        }
        let segment =
            self.segments.iter().rev().find(|s| s.first_seq <= seq).expect("seq <= synced seq lies in a segment");
        scan::frame_hash_at(&mut self.storage, segment, seq, self.options.frame_payload_bytes_max)
    }

    /// The seq of the last frame appended (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The timestamp of the last frame appended (0 if none).
    pub fn last_timestamp(&self) -> u64 {
        self.last_timestamp
    }

    /// The hash of the last frame appended ([`HASH_ZERO`] if none): what the next frame must
    /// record as its previous hash (a follower checks a shipped frame against it).
    pub fn last_hash(&self) -> Hash {
        self.last_hash
    }

    /// The seq of the last frame known durable.
    pub fn synced_seq(&self) -> u64 {
        self.synced_seq
    }

    /// Whether a failed sync has poisoned the journal.
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_poisoned()
    }

    /// Total bytes of all segments, for metrics.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Number of segment files, for metrics.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The options the journal was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The storage, for tests that inject faults into a running journal. Writing to the
    /// journal's files through it voids every guarantee.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Gives back the storage, for example so a test can crash and reopen it.
    pub fn into_storage(self) -> S {
        self.storage
    }
}

pub(crate) fn anchor_mismatch(snapshot: &str, seq: u64, hash: &Hash, anchor: &Hash) -> JournalError {
    JournalError::SnapshotAnchorMismatch {
        snapshot: snapshot.to_string(),
        seq,
        expected: hex(anchor),
        found: hex(hash),
    }
}

/// A valid snapshot proves its frames were acknowledged, so the journal must reach it; a
/// snapshot at seq 0 has no frame to anchor on and must carry the zero hash.
pub(crate) fn check_snapshot_reached(name: &str, header: &SnapshotHeader, last_seq: u64) -> Result<(), JournalError> {
    if header.seq > last_seq {
        return Err(JournalError::SnapshotBeyondJournal { snapshot: name.to_string(), seq: header.seq, last_seq });
    }
    if header.seq == 0 && header.anchor != HASH_ZERO {
        return Err(anchor_mismatch(name, 0, &HASH_ZERO, &header.anchor));
    }
    Ok(())
}

const _: () = assert!(FRAME_HEADER_BYTES == 72, "docs/journal-format.md documents 72 bytes");
