//! Kasa's durable journal: checksummed, hash-chained frames in segment files, plus snapshots.
//!
//! The sequencer gathers commands into batches and the core encodes each batch into an opaque
//! payload. This crate makes those payloads durable and gives them back on recovery. It knows
//! nothing about what the payloads mean, and it decides no policy: when to sync (group commit)
//! and when to snapshot are the engine's calls.
//!
//! # How the pieces fit
//!
//! - [`Storage`] is the only way to the disk: a flat directory of named files with a handful
//!   of methods. [`FileStorage`] is the real one; [`FaultStorage`] is an in-memory one that
//!   crashes, tears writes, fails syncs, fills up and flips bits, deterministically from a seed.
//! - [`Journal`] appends frames to `journal-{first_seq}.seg` segment files, syncs them, rolls
//!   to a new segment when one is full, and writes `snapshot-{seq}.snap` files atomically.
//!   Every frame records the blake3 hash of the one before, so the journal is one chain from
//!   frame 1 and tampering anywhere shows.
//! - [`Journal::open`] is recovery: it checks every frame from frame 1, cuts a torn last frame
//!   (a crash during an append) and stops with a [`JournalError`] naming segment, offset and
//!   seq on anything else. It returns the newest valid snapshot and the frames after it.
//! - [`verify`] is the same walk, offline and read-only, for `kasa verify`.
//!
//! The byte layouts and the recovery rules are in `docs/journal-format.md`.
//!
//! # Example
//!
//! ```
//! use kasa_journal::{FaultStorage, Journal, Options};
//!
//! let (mut journal, recovered) = Journal::open(FaultStorage::new(7), Options::default())?;
//! assert!(recovered.frames.is_empty());
//! journal.append(1, 1_000, b"batch one")?;
//! journal.append(2, 1_001, b"batch two")?;
//! journal.sync()?; // Only now may the batches be acknowledged.
//! journal.write_snapshot(1, 1_000, b"state after batch one")?;
//!
//! // Power loss and restart: the snapshot plus the frames after it come back.
//! let storage = journal.into_storage().restart();
//! let (_journal, recovered) = Journal::open(storage, Options::default())?;
//! assert_eq!(recovered.snapshot.unwrap().payload, b"state after batch one");
//! assert_eq!(recovered.frames.len(), 1);
//! assert_eq!(recovered.frames[0].payload, b"batch two");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod fault;
mod format;
mod journal;
mod scan;
mod storage;
mod verify;

pub use error::{AppendError, Corruption, JournalError};
pub use fault::FaultStorage;
pub use format::{
    parse_snapshot_name, segment_name, snapshot_name, Hash, FORMAT_VERSION, FRAME_HEADER_BYTES, HASH_ZERO,
    SNAPSHOT_HEADER_BYTES,
};
pub use journal::{
    Frame, Journal, Options, Recovered, Snapshot, TornTail, FRAME_PAYLOAD_BYTES_LIMIT, FRAME_PAYLOAD_BYTES_MAX_DEFAULT,
    SEGMENT_BYTES_MAX_DEFAULT, SNAPSHOT_PAYLOAD_BYTES_MAX_DEFAULT,
};
pub use storage::{FileStorage, Storage};
pub use verify::{read_snapshot, verify, SnapshotInfo, VerifyReport};
