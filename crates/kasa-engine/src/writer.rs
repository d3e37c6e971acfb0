//! The synchronous heart of the engine: recovery, and committing one batch at a time
//! (encode, append to the journal, sync, apply). The sequencer thread drives a `Writer`;
//! crash tests drive one directly on fault-injecting storage, so every rule of durability
//! is tested without threads or clocks.
//!
//! Order of a commit, and why: the frame is appended and synced *before* the batch is
//! applied, so that a batch the disk refused (full) never reaches the state, and a result is
//! never computed for a batch that could still be lost. The caller answers requests only
//! after `commit` returns.

use crate::cold::{ColdOptions, ColdStats, ColdTier};
use crate::outbox::{encode_event, EventLog};
use kasa_core::codec::Sink;
use kasa_core::event::Event;
use kasa_core::{decode_commands, encode_commands, ApplyError, Batch, Command, DecodeError, Outcome, State};
use kasa_journal::{
    parse_frame, AppendError, Journal, JournalError, Options, RecordLog, RecordLogError, RecordLogOptions,
    SnapshotDone, Storage,
};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
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
    /// The event log could not be opened, written or synced.
    #[error("event log: {0}")]
    Events(#[from] RecordLogError),
    /// The embedded store of cold transfers could not be opened or created.
    #[error("cold store: {0}")]
    Cold(String),
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

/// Why frames shipped from a primary were not taken (see [`Writer::replicate`]).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ReplicateError {
    /// The frames are damaged, do not continue this journal (another primary's, or a
    /// journal that went its own way) or do not decode: nothing was written, and following
    /// must stop rather than diverge.
    #[error("{0}")]
    Refused(String),
    /// The disk is full: nothing was written; try again later.
    #[error("the disk is full; the frames were not written")]
    StorageFull,
    /// The engine's queue is full: nothing was taken; try again shortly.
    #[error("the engine's queue is full; try again")]
    Busy,
    /// This server is not following (it was promoted): it takes no more frames.
    #[error("this server is a primary: it takes no frames")]
    NotFollowing,
    /// The journal failed, or the engine stopped: stop, and let recovery decide on restart.
    #[error("the engine is not available: {0}")]
    Unavailable(String),
}

/// Tuning of the writer.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Options of the journal (segment size, frame size limit).
    pub journal: Options,
    /// Write a snapshot once the journal has grown by this many bytes since the last one, so
    /// that recovery replays at most this much. 0 disables periodic snapshots.
    pub snapshot_interval_bytes: u64,
    /// Where transfers beyond the hot window go (`cold.rs`); `None` keeps them all in memory.
    pub cold: Option<ColdOptions>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        // 2 GiB of journal is about 16 million transfers: a few seconds of replay.
        WriterOptions { journal: Options::default(), snapshot_interval_bytes: 2 << 30, cold: None }
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
    /// The seq of the last event in the event log after recovery.
    pub events_logged: u64,
    /// Events derived again from the journal and appended to the event log.
    pub events_derived: u64,
    /// What the event log's recovery cut (damage, or events of frames the journal lost).
    pub events_cut: Option<String>,
    /// The BLAKE3 hash of the recovered state.
    pub state_hash: [u8; 32],
    /// Transfers (both ledgers) in the embedded store once recovered, not in memory.
    pub cold_transfers: u64,
    /// How long recovery took.
    pub duration: Duration,
}

/// A snapshot being written on its own thread.
struct SnapshotInFlight {
    seq: u64,
    started: Instant,
    thread: JoinHandle<Result<SnapshotDone, JournalError>>,
}

/// A snapshot that finished, for the log and the metrics.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotReport {
    /// The last frame the snapshot includes.
    pub seq: u64,
    /// Payload bytes written.
    pub bytes: u64,
    /// From the start to durable, on the snapshot thread.
    pub duration: Duration,
}

/// Owns the state, the journal and the event log. See the module documentation.
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
    /// The durable log of events, derived from committed batches.
    events: RecordLog<S>,
    /// Events of committed batches not yet appended to `events`.
    unlogged: VecDeque<Event>,
    /// Events appended to `events` since its last sync.
    events_unsynced: bool,
    /// The events appended since the last sync, for the consumers' interests once synced.
    unpublished: Vec<Event>,
    /// The reading end of `events`, shared with consumers.
    event_log: Arc<EventLog>,
    snapshot: Option<SnapshotInFlight>,
    /// The embedded store of cold transfers, if configured.
    cold: Option<ColdTier>,
    cold_stats: Arc<ColdStats>,
}

impl<S: Storage> Writer<S> {
    /// Opens the journal (in `storage`) and the event log (in `event_storage`), loads the
    /// newest snapshot, replays the frames after it, and brings the event log level with the
    /// state: it appends the events of replayed frames the log lacks, cuts events of frames the
    /// journal no longer has, and, if the log lost events older than the snapshot, replays the
    /// journal from its first frame to derive them again.
    pub fn recover(
        storage: S,
        event_storage: S,
        options: WriterOptions,
    ) -> Result<(Self, RecoveryReport), EngineError> {
        let started = Instant::now();
        let (mut journal, recovered) = Journal::open(storage, options.journal)?;
        let (mut events, events_report) = RecordLog::open(event_storage, RecordLogOptions::default())?;
        let logged = events_report.last_key.unwrap_or(0);
        let mut events_cut = events_report.cut.as_ref().map(|cut| format!("{cut:?}"));
        let cold_stats = Arc::new(ColdStats::default());
        let mut cold = match &options.cold {
            Some(cold_options) => Some(ColdTier::open(cold_options, cold_stats.clone())?),
            None => None,
        };
        let (mut state, after, snapshot_seq) = match &recovered.snapshot {
            Some(info) => {
                let reader = journal.open_snapshot(info.seq)?;
                let spill = cold.as_ref().map(|c| c as &dyn kasa_core::ledger::ColdSpill);
                let state = State::decode_snapshot_spilling(reader, info.payload_bytes, spill)
                    .map_err(|error| EngineError::Snapshot { seq: info.seq, error })?;
                if state.outbox().last_seq() <= logged {
                    (state, info.seq, Some(info.seq))
                } else {
                    tracing::warn!(
                        snapshot_events = state.outbox().last_seq(),
                        logged,
                        "the event log lost events older than the snapshot: replaying the journal from frame 1"
                    );
                    (State::default(), 0, None)
                }
            }
            None => (State::default(), 0, None),
        };
        // Every 128 bytes of payload is at most one transfer: size the index once.
        state.reserve_transfers(recovered.payload_bytes_after_snapshot as usize / kasa_core::ledger::RECORD_BYTES);
        if let Some(cold) = cold.as_mut() {
            cold.attach(&mut state);
            cold.tick(&mut state);
        }
        let mut events_derived = 0;
        let mut buffer = Vec::new();
        let frames_replayed = journal.replay(after, |frame| -> Result<(), EngineError> {
            apply_frame(&mut state, frame.seq, frame.timestamp, &frame.payload)?;
            if let Some(cold) = cold.as_mut() {
                cold.tick(&mut state);
            }
            for event in state.take_events() {
                if event.seq > logged {
                    buffer.clear();
                    buffer.extend_from_slice(&encode_event(&event));
                    events.append(event.seq, &buffer)?;
                    events_derived += 1;
                }
            }
            Ok(())
        })?;
        let last_event = state.outbox().last_seq();
        if logged > last_event {
            // Events of frames the journal cut (a torn tail) or of a newer copy of the data.
            events.truncate_after(last_event)?;
            events_cut = Some(format!("events {}..={logged}: their frames are not in the journal", last_event + 1));
        }
        events.sync()?;
        let event_log = Arc::new(EventLog::new(events.reader()?));
        event_log.published(last_event, &[]);
        let report = RecoveryReport {
            snapshot_seq,
            frames_replayed,
            last_seq: journal.last_seq(),
            torn_tail: recovered.torn_tail.as_ref().map(|t| format!("{t:?}")),
            events_logged: last_event,
            events_derived,
            events_cut,
            state_hash: state.hash(),
            cold_transfers: (0..State::COLD_LEDGERS)
                .map(|which| {
                    let (_, cold) = state.cold_chunks(which, kasa_core::ledger::ColdKind::Transfers);
                    (cold * kasa_core::ledger::TRANSFERS_PER_CHUNK) as u64
                })
                .sum(),
            duration: started.elapsed(),
        };
        let journal_bytes_at_snapshot = journal.bytes();
        let writer = Writer {
            state,
            journal,
            options,
            journal_bytes_at_snapshot,
            payload: Vec::new(),
            failed: false,
            events,
            unlogged: VecDeque::new(),
            unpublished: Vec::new(),
            events_unsynced: false,
            event_log,
            snapshot: None,
            cold,
            cold_stats,
        };
        Ok((writer, report))
    }

    /// The state as of the last committed batch. Panics after a fatal commit error, when the
    /// state may hold a batch that is not durable: nobody may read it.
    pub fn state(&self) -> &State {
        assert!(!self.failed, "the writer failed: its state may not be durable");
        &self.state
    }

    /// Between batches with nothing to commit: drops the chunks the store now holds (see
    /// `cold.rs`).
    pub fn cold_tick(&mut self) {
        if self.failed {
            return;
        }
        if let Some(cold) = self.cold.as_mut() {
            cold.tick(&mut self.state);
        }
    }

    /// The cold store's counters.
    pub fn cold_stats(&self) -> &Arc<ColdStats> {
        &self.cold_stats
    }

    /// The reading end of the event log.
    pub fn event_log(&self) -> &Arc<EventLog> {
        &self.event_log
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

    /// Commits one batch: append, sync, apply. `now` is the wall clock in nanoseconds. The
    /// batch's events wait in memory for [`flush_events`](Self::flush_events).
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
        self.unlogged.extend(self.state.take_events());
        if let Some(cold) = self.cold.as_mut() {
            cold.tick(&mut self.state);
        }
        Ok(outcomes)
    }

    /// Takes frames shipped from a primary (`bytes`: whole frames as stored, back to back):
    /// checks every one first (checksums, seq, timestamp and that it chains onto this journal's
    /// last frame, and that its payload decodes), so that a refused shipment writes nothing;
    /// then appends them, syncs once, and applies them exactly as recovery does. Returns the
    /// last seq now committed. A full disk part way keeps (and applies) the frames written
    /// before it.
    pub fn replicate(&mut self, bytes: &[u8]) -> Result<u64, ReplicateError> {
        if self.failed {
            return Err(ReplicateError::Unavailable("the writer stopped after an earlier fatal error".into()));
        }
        let payload_max = self.journal.options().frame_payload_bytes_max;
        let (mut seq, mut timestamp, mut hash) =
            (self.journal.last_seq(), self.journal.last_timestamp(), self.journal.last_hash());
        let mut checked = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let expected = seq + 1;
            let refused = |why: String| ReplicateError::Refused(format!("frame {expected}: {why}"));
            let (frame, len) = parse_frame(rest, payload_max).map_err(|problem| refused(problem.to_string()))?;
            if frame.seq != expected {
                return Err(refused(format!("expected seq {expected}, found {}", frame.seq)));
            }
            if frame.prev_hash != hash {
                return Err(refused(format!(
                    "does not chain onto this journal's frame {seq} (expected previous hash {}, found {}): \
                     the primary's journal is not the one this data directory follows",
                    crate::hex(&hash),
                    crate::hex(&frame.prev_hash)
                )));
            }
            if frame.timestamp <= timestamp {
                return Err(refused(format!("timestamp {} is not after {timestamp}", frame.timestamp)));
            }
            let commands = decode_commands(frame.payload).map_err(|error| refused(error.to_string()))?;
            (seq, timestamp, hash) = (frame.seq, frame.timestamp, frame.hash);
            checked.push((frame, commands));
            rest = &rest[len..];
        }
        let mut appended = 0;
        let mut full = false;
        for (frame, _) in &checked {
            match self.journal.append(frame.seq, frame.timestamp, frame.payload) {
                Ok(()) => {}
                Err(AppendError::NoSpace { .. }) => {
                    full = true;
                    break;
                }
                Err(other) => {
                    self.failed = true;
                    return Err(ReplicateError::Unavailable(other.to_string()));
                }
            }
            // The header is a function of seq, timestamp, payload and previous hash: the
            // frame written here is the primary's, byte for byte.
            assert_eq!(self.journal.last_hash(), frame.hash, "a replicated frame must hash as on the primary");
            // Synced frame by frame, as the primary syncs its batches: recovery cuts only a
            // torn *last* frame, so frames written together and synced once could, after a
            // power loss that kept a later frame's pages and lost an earlier one's, leave a
            // journal that recovery refuses.
            if let Err(error) = self.journal.sync() {
                self.failed = true;
                return Err(ReplicateError::Unavailable(error.to_string()));
            }
            appended += 1;
        }
        if appended == 0 {
            return if full { Err(ReplicateError::StorageFull) } else { Ok(self.journal.last_seq()) };
        }
        for (frame, commands) in checked.into_iter().take(appended) {
            let batch = Batch { timestamp: frame.timestamp, commands };
            if let Err(error) = self.state.apply(&batch) {
                // The primary applied this batch: a state that refuses it is not the state
                // of the frames before it. Stop; recovery on restart replays the journal.
                self.failed = true;
                return Err(ReplicateError::Unavailable(format!("frame {}: {error}", frame.seq)));
            }
            self.unlogged.extend(self.state.take_events());
            if let Some(cold) = self.cold.as_mut() {
                cold.tick(&mut self.state);
            }
        }
        Ok(self.journal.last_seq())
    }

    /// Whether committed batches have events that readers cannot see yet.
    pub fn events_pending(&self) -> bool {
        !self.unlogged.is_empty() || self.events_unsynced
    }

    /// Appends the events of committed batches to the event log and syncs it, so that
    /// consumers see them. A full disk is not fatal: what was not written waits for the next
    /// call. Any error that poisons the event log is returned (the engine must stop; a restart
    /// derives the events again from the journal).
    pub fn flush_events(&mut self) -> Result<(), RecordLogError> {
        while let Some(event) = self.unlogged.front() {
            match self.events.append(event.seq, &encode_event(event)) {
                Ok(()) => {
                    let event = self.unlogged.pop_front().expect("looked at above");
                    self.unpublished.push(event);
                    self.events_unsynced = true;
                }
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, waiting = self.unlogged.len(), "events not written yet; retrying later");
                    break;
                }
            }
        }
        if self.events_unsynced {
            match self.events.sync() {
                Ok(()) => {
                    self.events_unsynced = false;
                    self.event_log.published(self.events.synced_key().unwrap_or(0), &self.unpublished);
                    self.unpublished.clear();
                }
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => tracing::warn!(%error, "events not synced yet; retrying later"),
            }
        }
        Ok(())
    }

    /// Whether the journal has grown enough since the last snapshot to take another (and none
    /// is being written).
    pub fn snapshot_due(&self) -> bool {
        !self.failed
            && self.snapshot.is_none()
            && self.options.snapshot_interval_bytes != 0
            && self.journal.bytes() - self.journal_bytes_at_snapshot >= self.options.snapshot_interval_bytes
    }

    /// Whether a snapshot is being written.
    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Starts a snapshot of the state as of the last committed batch, written on its own
    /// thread while the writer goes on: the writer's pause is taking a [`State::view`] (a
    /// reference per chunk of the arrays and per table) and flushing the event log, which the
    /// snapshot must not be ahead of. Returns whether one started (not when nothing was
    /// committed yet, one is in progress, or events could not be made durable).
    pub fn start_snapshot(&mut self) -> Result<bool, JournalError> {
        if self.failed {
            return Err(JournalError::Poisoned);
        }
        let seq = self.journal.last_seq();
        if seq == 0 || self.snapshot.is_some() {
            return Ok(false);
        }
        if let Err(error) = self.flush_events() {
            tracing::warn!(%error, "snapshot postponed: the event log failed");
            return Ok(false);
        }
        if self.events_pending() {
            return Ok(false);
        }
        let view = self.state.view();
        let mut out = self.journal.begin_snapshot(seq, view.last_timestamp())?;
        self.journal_bytes_at_snapshot = self.journal.bytes();
        let thread = std::thread::Builder::new()
            .name("kasa-snapshot".into())
            .spawn(move || {
                let mut sink = WriteSink { out: &mut out, error: None };
                view.write_canonical(&mut sink);
                if let Some(source) = sink.error {
                    return Err(JournalError::Io { op: "write", name: kasa_journal::snapshot_name(seq), source });
                }
                drop(view);
                out.finish()
            })
            .expect("spawn the snapshot thread");
        self.snapshot = Some(SnapshotInFlight { seq, started: Instant::now(), thread });
        Ok(true)
    }

    /// If the snapshot in progress has finished (or, with `wait`, once it has), completes it
    /// on this thread and reports it. `None` when there is none, or it is still being written.
    pub fn poll_snapshot(&mut self, wait: bool) -> Option<Result<SnapshotReport, JournalError>> {
        let in_flight = self.snapshot.as_ref()?;
        if !wait && !in_flight.thread.is_finished() {
            return None;
        }
        let SnapshotInFlight { seq, started, thread } = self.snapshot.take().expect("checked above");
        let done = thread.join().unwrap_or_else(|_| {
            Err(JournalError::Io {
                op: "write",
                name: kasa_journal::snapshot_name(seq),
                source: std::io::Error::other("the snapshot thread panicked"),
            })
        });
        Some(done.and_then(|done| {
            let bytes = done.info().payload_bytes;
            self.journal.snapshot_done(done)?;
            Ok(SnapshotReport { seq, bytes, duration: started.elapsed() })
        }))
    }

    /// Writes a snapshot of the state as of the last committed batch and waits for it (after
    /// one in progress, if any): for a stop, and for tests. `None` if there was nothing to do.
    pub fn snapshot(&mut self) -> Result<Option<SnapshotReport>, JournalError> {
        if let Some(result) = self.poll_snapshot(true) {
            result?;
        }
        if !self.start_snapshot()? {
            return Ok(None);
        }
        self.poll_snapshot(true).transpose()
    }

    /// Gives back the storage of the journal and of the event log (tests use them to crash and
    /// recover). A snapshot in progress is waited for.
    pub fn into_storage(mut self) -> (S, S) {
        let _ = self.poll_snapshot(true);
        (self.journal.into_storage(), self.events.into_storage())
    }
}

/// Writes the canonical state into a snapshot, keeping the first error (a [`Sink`] cannot fail).
struct WriteSink<'a, W: Write> {
    out: &'a mut W,
    error: Option<std::io::Error>,
}

impl<W: Write> Sink for WriteSink<'_, W> {
    fn put(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            if let Err(error) = self.out.write_all(bytes) {
                self.error = Some(error);
            }
        }
    }
}

/// Decodes and applies one journal frame to `state`.
pub fn apply_frame(state: &mut State, seq: u64, timestamp: u64, payload: &[u8]) -> Result<Vec<Outcome>, EngineError> {
    let commands = decode_commands(payload).map_err(|error| EngineError::Decode { seq, error })?;
    state.apply(&Batch { timestamp, commands }).map_err(|error| EngineError::Apply { seq, error })
}
