//! The engine: recovery, the single-writer sequencer with group commit, and snapshots.
//!
//! How the pieces fit: [`Engine::start`] recovers a [`Writer`] from the journal (newest
//! snapshot plus the frames after it) and hands it to the sequencer thread. Connections call
//! [`Engine::submit`] with a command or [`Engine::read`] with a query; both go through one
//! bounded queue. The sequencer gathers what is queued into a batch, and the writer appends
//! it to the journal, syncs, and applies it; only then are the requests answered (with a
//! synchronous standby, once a follower also has the batch: `sync.rs`). This crate
//! knows nothing of HTTP or JSON; it reads the clock only to stamp batches (and to age held
//! answers for the metrics).

mod cold;
mod metrics;
mod outbox;
mod sequencer;
mod sync;
mod writer;

pub use cold::{check_cold_store, ColdOptions, ColdStats};
pub use kasa_journal::hex;
pub use metrics::{Histogram, Metrics};
pub use outbox::{decode_event, EventFilter, EventLog, EventLogError, Matched, EVENTS_PER_READ_MAX};
pub use sequencer::{Clock, ClockError, Engine, EngineOptions, FollowState, Health, Role, SubmitError};
pub use writer::{
    apply_frame, CommitError, EngineError, RecoveryReport, ReplicateError, SnapshotReport, Writer, WriterOptions,
};
