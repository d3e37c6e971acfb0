//! The synchronous heart of the engine: recovery, and committing one batch at a time
//! (encode, append to the journal, sync, apply). The sequencer thread drives a `Writer`;
//! crash tests drive one directly on fault-injecting storage, so every rule of durability
//! is tested without threads or clocks.
//!
//! Order of a commit, and why: the frame is appended and synced *before* the batch is
//! applied, so that a batch the disk refused (full) never reaches the state, and a result is
//! never computed for a batch that could still be lost. The caller answers requests only
//! after `commit` returns.

use crate::outbox::EventLog;
use kasa_core::{decode_commands, encode_commands, ApplyError, Batch, Command, DecodeError, Outcome, State};
use kasa_journal::{AppendError, Journal, JournalError, Options, Storage};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Batches with at least this many events apply while the disk syncs, on a second thread:
/// below it, starting the thread costs more than the overlap saves.
const PARALLEL_SYNC_EVENTS_MIN: usize = 1024;

/// Why the engine could not start or must stop.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The journal is unreadable, corrupt, or the disk failed.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// A frame whose checksum is valid but whose payload does not decode.
    #[error("frame {seq}: payload does not decode: {error}")]
    Decode {
        /// The frame's sequence number.
        seq: u64,
        /// What was wrong.
        error: DecodeError,
    },
    /// A snapshot whose checksum is valid but whose payload does not decode.
    #[error("snapshot at frame {seq}: {error}")]
    Snapshot {
        /// The snapshot's sequence number.
        seq: u64,
        /// What was wrong.
        error: DecodeError,
    },
    /// A frame the state refused (its timestamp did not increase).
    #[error("frame {seq}: {error}")]
    Apply {
        /// The frame's sequence number.
        seq: u64,
        /// What was wrong.
        error: ApplyError,
    },
}

/// Why one batch was not committed.
#[derive(Debug, Error)]
pub enum CommitError {
    /// The disk is full: the batch was not written and nothing changed; later batches may
    /// succeed once space is freed.
    #[error("the disk is full; the batch was not written")]
    StorageFull,
    /// The journal failed (a write that could not be undone, or a failed sync). The engine
    /// must stop acknowledging and exit; recovery on restart decides what was durable.
    #[error("fatal journal error: {0}")]
    Fatal(String),
}

/// Tuning of the writer.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Options of the journal (segment size, frame size limit).
    pub journal: Options,
    /// Write a snapshot once the journal has grown by this many bytes since the last one, so
    /// that recovery replays at most this much. 0 disables periodic snapshots.
    pub snapshot_interval_bytes: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        // 2 GiB of journal is about 16 million transfers: a few seconds of replay.
        WriterOptions { journal: Options::default(), snapshot_interval_bytes: 2 << 30 }
    }
}

/// What recovery found and did, for the startup log and `kasa verify`.
#[derive(Clone, Debug)]
pub struct RecoveryReport {
    /// The sequence number of the snapshot that was loaded, if any.
    pub snapshot_seq: Option<u64>,
    /// Frames replayed after the snapshot.
    pub frames_replayed: u64,
    /// The last sequence number in the journal.
    pub last_seq: u64,
    /// A description of the torn tail that was cut off, if any.
    pub torn_tail: Option<String>,
    /// The BLAKE3 hash of the recovered state.
    pub state_hash: [u8; 32],
    /// How long recovery took.
    pub duration: Duration,
}

/// Owns the state and the journal. See the module documentation.
pub struct Writer<S: Storage> {
    state: State,
    journal: Journal<S>,
    options: WriterOptions,
    journal_bytes_at_snapshot: u64,
    /// Reused encoding buffer: a batch of 8,190 transfers is a megabyte.
    payload: Vec<u8>,
    /// Set by a fatal commit error: the state may then hold a batch that is not durable, so
    /// the writer refuses all further work.
    failed: bool,
    /// Where the events of committed batches go.
    events: Arc<EventLog>,
}

impl<S: Storage> Writer<S> {
    /// Opens the journal, loads the newest snapshot and replays the frames after it.
    pub fn recover(
        storage: S,
        options: WriterOptions,
        events: Arc<EventLog>,
    ) -> Result<(Self, RecoveryReport), EngineError> {
        let started = Instant::now();
        let (journal, recovered) = Journal::open(storage, options.journal)?;
        let (mut state, snapshot_seq) = match &recovered.snapshot {
            Some(snapshot) => {
                let state = State::decode_snapshot(&snapshot.payload)
                    .map_err(|error| EngineError::Snapshot { seq: snapshot.seq, error })?;
                (state, Some(snapshot.seq))
            }
            None => (State::default(), None),
        };
        // Every 128 bytes of payload is at most one transfer: size the index once.
        let payload_bytes: usize = recovered.frames.iter().map(|f| f.payload.len()).sum();
        state.reserve_transfers(payload_bytes / kasa_core::ledger::RECORD_BYTES);
        let mut frames_replayed = 0;
        for frame in &recovered.frames {
            apply_frame(&mut state, frame.seq, frame.timestamp, &frame.payload)?;
            events.append(&state.take_events());
            frames_replayed += 1;
        }
        let report = RecoveryReport {
            snapshot_seq,
            frames_replayed,
            last_seq: journal.last_seq(),
            torn_tail: recovered.torn_tail.as_ref().map(|t| format!("{t:?}")),
            state_hash: state.hash(),
            duration: started.elapsed(),
        };
        let journal_bytes_at_snapshot = journal.bytes();
        let writer =
            Writer { state, journal, options, journal_bytes_at_snapshot, payload: Vec::new(), failed: false, events };
        Ok((writer, report))
    }

    /// The state as of the last committed batch. Panics after a fatal commit error, when the
    /// state may hold a batch that is not durable: nobody may read it.
    pub fn state(&self) -> &State {
        assert!(!self.failed, "the writer failed: its state may not be durable");
        &self.state
    }

    /// Whether a fatal error stopped the writer.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// The last committed sequence number.
    pub fn last_seq(&self) -> u64 {
        self.journal.last_seq()
    }

    /// Bytes in the journal.
    pub fn journal_bytes(&self) -> u64 {
        self.journal.bytes()
    }

    /// The timestamp the next batch gets if the clock says `now`: never behind the last event.
    pub fn next_timestamp(&self, now: u64) -> u64 {
        now.max(self.state.last_timestamp() + 1)
    }

    /// Whether an empty batch at `now` would expire a pending transfer.
    pub fn expiry_due(&self, now: u64) -> bool {
        self.state.next_expiry().is_some_and(|at| at <= self.next_timestamp(now))
    }

    /// Commits one batch: append, sync, apply. `now` is the wall clock in nanoseconds.
    pub fn commit(&mut self, commands: Vec<Command>, now: u64) -> Result<Vec<Outcome>, CommitError> {
        if self.failed {
            return Err(CommitError::Fatal("the writer stopped after an earlier fatal error".into()));
        }
        let result = self.commit_inner(commands, now);
        if let Err(CommitError::Fatal(_)) = &result {
            self.failed = true;
        }
        result
    }

    fn commit_inner(&mut self, commands: Vec<Command>, now: u64) -> Result<Vec<Outcome>, CommitError> {
        let batch = Batch { timestamp: self.next_timestamp(now), commands };
        self.payload.clear();
        encode_commands(&batch.commands, &mut self.payload);
        let seq = self.journal.last_seq() + 1;
        match self.journal.append(seq, batch.timestamp, &self.payload) {
            Ok(()) => {}
            Err(AppendError::NoSpace { .. }) => return Err(CommitError::StorageFull),
            // Any other write error is taken as a failing disk: stop, and let recovery decide.
            Err(other) => return Err(CommitError::Fatal(other.to_string())),
        }
        // The frame is written; make it durable. For a large batch, apply it to the state while
        // the disk syncs, on two threads: nothing is answered before both are done, and if the
        // sync fails the engine stops (the applied state is never used again), so this is as
        // safe as applying afterwards. A small batch is not worth a thread.
        let journal = &mut self.journal;
        let state = &mut self.state;
        let (synced, outcomes) =
            if batch.commands.iter().map(Command::events).sum::<usize>() >= PARALLEL_SYNC_EVENTS_MIN {
                std::thread::scope(|scope| {
                    let sync = scope.spawn(|| journal.sync());
                    let outcomes = state.apply(&batch);
                    (sync.join().expect("the sync thread panicked"), outcomes)
                })
            } else {
                let synced = journal.sync();
                let outcomes = if synced.is_ok() { state.apply(&batch) } else { Ok(Vec::new()) };
                (synced, outcomes)
            };
        synced.map_err(|error| CommitError::Fatal(error.to_string()))?;
        let outcomes = outcomes.expect("the sequencer stamps batches after the last event");
        self.events.append(&self.state.take_events());
        Ok(outcomes)
    }

    /// Whether the journal has grown enough since the last snapshot to take another.
    pub fn snapshot_due(&self) -> bool {
        !self.failed
            && self.options.snapshot_interval_bytes != 0
            && self.journal.bytes() - self.journal_bytes_at_snapshot >= self.options.snapshot_interval_bytes
    }

    /// Writes a snapshot of the state as of the last committed batch.
    pub fn snapshot(&mut self) -> Result<(), JournalError> {
        if self.failed {
            return Err(JournalError::Poisoned);
        }
        let seq = self.journal.last_seq();
        if seq == 0 {
            return Ok(());
        }
        let payload = self.state.encode_snapshot();
        self.journal.write_snapshot(seq, self.state.last_timestamp(), &payload)?;
        self.journal_bytes_at_snapshot = self.journal.bytes();
        Ok(())
    }

    /// Gives back the storage (tests use it to crash and recover).
    pub fn into_storage(self) -> S {
        self.journal.into_storage()
    }
}

/// Decodes and applies one journal frame to `state`.
pub fn apply_frame(state: &mut State, seq: u64, timestamp: u64, payload: &[u8]) -> Result<Vec<Outcome>, EngineError> {
    let commands = decode_commands(payload).map_err(|error| EngineError::Decode { seq, error })?;
    state.apply(&Batch { timestamp, commands }).map_err(|error| EngineError::Apply { seq, error })
}
