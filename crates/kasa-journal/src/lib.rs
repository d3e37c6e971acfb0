//! Kasa's durable journal: checksummed, hash-chained frames in segment files, plus snapshots,
//! and a record log for what is derived from it.
//!
//! The sequencer gathers commands into batches and the core encodes each batch into an opaque
//! payload. This crate makes those payloads durable and gives them back on recovery. It knows
//! nothing about what the payloads mean, and it decides no policy: when to sync (group commit)
//! and when to snapshot are the engine's calls.
//!
//! # How the pieces fit
//!
//! - [`Storage`] is the only way to the disk: a flat directory of named files with a handful
//!   of methods. [`FileStorage`] is the real one (its directory private, mode 0700, and every
//!   file 0600); [`FaultStorage`] is an in-memory one that crashes, tears writes, fails syncs,
//!   fills up and flips bits, deterministically from a seed. [`Storage::try_clone`] gives
//!   work on another thread its own handle.
//! - [`Journal`] appends frames to `journal-{first_seq}.seg` segment files, syncs them, and
//!   rolls to a new segment when one is full. Every frame records the blake3 hash of the one
//!   before, so the journal is one chain from frame 1 and tampering anywhere shows.
//! - Snapshots never stall the writer: [`Journal::begin_snapshot`] (on the writer thread, no
//!   I/O at the tip) hands out a [`SnapshotWriter`], an [`std::io::Write`] with its own storage
//!   handle that the state is encoded into, on any thread, while appends go on.
//!   [`SnapshotWriter::finish`] makes `snapshot-{seq}.snap` durable and atomic, and
//!   [`Journal::snapshot_done`] takes the token back on the writer thread and prunes old
//!   snapshots. A failed sync there poisons the journal like any failed sync.
//! - [`Journal::open`] is recovery: it checks every frame from frame 1 and the newest valid
//!   snapshot's checksum, cuts a torn last frame (a crash during an append), and stops with a
//!   [`JournalError`] naming segment, offset and seq on anything else. It keeps no payloads:
//!   [`Recovered`] says which snapshot to load and how much follows it. The caller streams the
//!   snapshot with [`Journal::open_snapshot`] (a [`SnapshotReader`]) and then the frames after
//!   it with [`Journal::replay`], one at a time; memory is bounded by one frame, whatever the
//!   size of the state or of the journal tail.
//! - [`FrameReader`] reads committed frames from a position, as stored, to ship them to a
//!   follower; [`parse_frame`] checks a shipped frame on arrival (a warm standby,
//!   `docs/standby.md`).
//! - [`verify`] is the same walk, offline and read-only, for `kasa verify`.
//! - [`RecordLog`] is a separate, simpler log in its own directory for data derived from the
//!   journal (the engine's outbox of events): records keyed by a contiguous `u64`, appended in
//!   a buffer, synced, and read by key from other threads through [`RecordReader`]s that see
//!   only what the last sync made durable, via a sparse in-memory index. Its recovery cuts
//!   damage instead of stopping, because the engine can derive the records again.
//!
//! The byte layouts and the recovery rules are in `docs/journal-format.md`.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//!
//! use kasa_journal::{FaultStorage, Journal, JournalError, Options, RecordLog, RecordLogOptions};
//!
//! let (mut journal, recovered) = Journal::open(FaultStorage::new(7), Options::default())?;
//! assert_eq!((recovered.snapshot, recovered.frames_after_snapshot), (None, 0));
//! journal.append(1, 1_000, b"batch one")?;
//! journal.append(2, 1_001, b"batch two")?;
//! journal.sync()?; // Only now may the batches be acknowledged.
//!
//! // A snapshot as of frame 1, streamed on another thread while the journal goes on.
//! let mut writer = journal.begin_snapshot(1, 1_000)?;
//! let snapshotter = std::thread::spawn(move || {
//!     writer.write_all(b"state after ")?; // An encoder writes piece by piece.
//!     writer.write_all(b"batch one")?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(writer.finish()?)
//! });
//! journal.append(3, 1_002, b"batch three")?;
//! journal.sync()?;
//! let done = snapshotter.join().expect("the snapshot thread panicked")?;
//! journal.snapshot_done(done)?;
//!
//! // Power loss and restart: stream the snapshot, then replay the frames after it.
//! let storage = journal.into_storage().restart();
//! let (mut journal, recovered) = Journal::open(storage, Options::default())?;
//! let snapshot = recovered.snapshot.as_ref().expect("a snapshot");
//! let mut state = Vec::new();
//! journal.open_snapshot(snapshot.seq)?.read_to_end(&mut state)?;
//! assert_eq!(state, b"state after batch one");
//! let mut replayed = Vec::new();
//! journal.replay(recovered.replay_after(), |frame| {
//!     replayed.push(frame.seq);
//!     Ok::<(), JournalError>(())
//! })?;
//! assert_eq!(replayed, [2, 3]);
//!
//! // Events derived from the batches go to a record log in another directory, keyed by
//! // event number; readers on other threads see them once synced.
//! let (mut events, report) = RecordLog::open(FaultStorage::new(8), RecordLogOptions::default())?;
//! assert_eq!(report.last_key, None);
//! events.append(1, b"event of batch two")?;
//! events.append(2, b"event of batch three")?;
//! events.sync()?;
//! let mut reader = events.reader()?;
//! let read = std::thread::spawn(move || reader.read(1, 100, 64 * 1024)).join().unwrap()?;
//! assert_eq!(read, [(2, b"event of batch three".to_vec())]);
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod fault;
mod format;
mod journal;
mod record_log;
mod scan;
mod ship;
mod snapshot;
mod storage;
mod verify;

pub use error::{AppendError, Corruption, JournalError, RecordLogError};
pub use fault::FaultStorage;
pub use format::{
    hex, parse_snapshot_name, segment_name, snapshot_name, Hash, FORMAT_VERSION, FRAME_HEADER_BYTES, HASH_ZERO,
    SNAPSHOT_HEADER_BYTES,
};
pub use journal::{
    Frame, Journal, Options, Recovered, TornTail, FRAME_PAYLOAD_BYTES_LIMIT, FRAME_PAYLOAD_BYTES_MAX_DEFAULT,
    SEGMENT_BYTES_MAX_DEFAULT,
};
pub use record_log::{
    record_segment_name, RecordLog, RecordLogCut, RecordLogOptions, RecordLogReport, RecordReader,
    INDEX_EVERY_BYTES_DEFAULT, INDEX_EVERY_RECORDS_DEFAULT, RECORD_HEADER_BYTES, RECORD_LOG_FORMAT_VERSION,
    RECORD_PAYLOAD_BYTES_LIMIT, RECORD_PAYLOAD_BYTES_MAX_DEFAULT, RECORD_SEGMENT_BYTES_MAX_DEFAULT,
    RECORD_SEGMENT_HEADER_BYTES,
};
pub use ship::{parse_frame, FrameReader, ShippedFrame};
pub use snapshot::{open_snapshot, SnapshotDone, SnapshotInfo, SnapshotReader, SnapshotWriter};
pub use storage::{FileStorage, Storage};
pub use verify::{verify, VerifyReport};
