//! The single writer: one thread owns the [`Writer`] (state plus journal); requests from any
//! number of connections wait in one bounded queue; the thread takes everything waiting (up
//! to a limit), commits it as one batch with one disk sync (group commit), then answers every
//! request of the batch. Reads run on the same thread after the batch, so they see exactly
//! the committed state and never a result that is not yet durable.
//!
//! The thread also keeps engine time moving: when a pending transfer is due to expire and no
//! request arrives, it commits an empty batch, so that expiry is a journaled, replayable event.

use crate::metrics::Metrics;
use crate::outbox::EventLog;
use crate::sync::{Answer, SyncGate};
use crate::writer::{CommitError, EngineError, RecoveryReport, ReplicateError, Writer, WriterOptions};
use kasa_core::command::PAYLOAD_HEADER_BYTES_MAX;
use kasa_core::ledger::{ColdKind, TRANSFERS_PER_CHUNK};
use kasa_core::{Command, Outcome, State};
use kasa_journal::{hex, JournalError, Storage};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::sync::{oneshot, watch};

/// Why a request was not answered with a result.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full: try again shortly (HTTP 503 with Retry-After).
    #[error("the engine is busy: its queue is full")]
    Busy,
    /// The disk is full: the batch was not written and nothing changed (HTTP 507).
    #[error("the disk is full: nothing was written")]
    StorageFull,
    /// The engine stopped (shutting down, or a fatal disk error).
    #[error("the engine is not accepting requests")]
    Unavailable,
    /// This server follows a primary: it serves reads, and changes come only from the
    /// primary's journal until an operator promotes it.
    #[error("this server is a read-only follower: send writes to the primary")]
    ReadOnly,
}

/// Limits of the sequencer.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Requests that may wait in the queue; beyond it requests get `Busy`. 4,096 covers
    /// thousands of connections with one request each, and bounds memory to a few GiB even
    /// if every request were a full 8,190-item batch.
    pub queue_depth_max: usize,
    /// Events (accounts plus transfers) in one batch. Four full requests: enough to amortise
    /// the sync, small enough that one batch's apply stays within a few milliseconds.
    pub batch_events_max: usize,
    /// Commands in one batch, so that many tiny requests do not make one huge frame.
    pub batch_commands_max: usize,
    /// Payload bytes in one batch, counted by the commands' type bounds before anything is
    /// encoded ([`BATCH_PAYLOAD_BYTES_MAX`]). With the payload's header it must fit the
    /// journal's frame limit (`writer.journal.frame_payload_bytes_max`); tests make both small.
    pub batch_payload_bytes_max: usize,
    /// Options of the writer.
    pub writer: WriterOptions,
    /// Start as a follower ([`Role::Follower`]): take batches only from a primary's journal
    /// ([`Engine::replicate`]), refuse commands, and commit no batch of its own (no expiry)
    /// until [`Engine::promote`].
    pub follower: bool,
    /// A synchronous standby: the answers of a committed batch wait until a follower has
    /// its frame synced ([`Engine::follower_has`]); the batch itself is durable and applied
    /// at once, and later batches are not held up. No timeout: with no follower, answers
    /// wait. Held answers count against [`Self::queue_depth_max`] (new commands get `Busy`
    /// once that many are held). Batches replicated on a follower are never held; a
    /// follower with this option holds the answers of its own batches once promoted.
    pub sync_follower: bool,
    /// A test clock: operators may move engine time forward ([`Engine::advance_clock`]), as
    /// with Stripe's test clocks, to see timeouts (bank answers, 48-hour holds, 7-day money
    /// requests) happen without waiting. Never for production data: time moved forward
    /// cannot be moved back.
    pub test_clock: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            queue_depth_max: 4096,
            batch_events_max: 4 * kasa_core::ITEMS_PER_COMMAND_MAX,
            batch_commands_max: 1024,
            batch_payload_bytes_max: BATCH_PAYLOAD_BYTES_MAX,
            writer: WriterOptions::default(),
            follower: false,
            sync_follower: false,
            test_clock: false,
        }
    }
}

/// Engine time: the wall clock, plus an offset that only a test clock moves.
#[derive(Debug, Default)]
pub struct Clock {
    offset: AtomicU64,
    adjustable: bool,
}

impl Clock {
    /// Nanoseconds since the Unix epoch, in engine time.
    pub fn now(&self) -> u64 {
        now_nanos().saturating_add(self.offset.load(Ordering::Acquire))
    }
}

/// Engine time a test clock may not reach (2^63 ns, in the year 2262): far from where
/// timestamps plus a batch's events could overflow.
pub const CLOCK_NANOS_MAX: u64 = 1 << 63;

/// Why engine time could not be moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ClockError {
    /// The engine runs on the wall clock (no `--test-clock`).
    #[error("the engine runs on the wall clock; start it with a test clock to move time")]
    NotATestClock,
    /// The move would take engine time past [`CLOCK_NANOS_MAX`].
    #[error("engine time may not pass the year 2262")]
    TooFar,
    /// Time moved, but the batch that records it was not committed (yet).
    #[error("the moved time was not committed: {0}")]
    NotCommitted(SubmitError),
}

/// The engine's health, for `/readyz` and for the process to exit on a fatal error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Recovered and accepting requests.
    Ready = 1,
    /// Draining after a shutdown request.
    Stopping = 2,
    /// A fatal disk error: acknowledging nothing more; the process must exit non-zero.
    Failed = 3,
}

/// Whether this engine makes its own batches or takes a primary's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Takes commands, commits batches, drives expiry: the one writer.
    Primary = 1,
    /// Takes a primary's frames only (see [`Engine::replicate`]); answers reads.
    Follower = 2,
}

/// What a follower's connection to its primary is doing, for the status endpoint and logs.
/// The follower's loop (in the binary) sets it; the engine only keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowState {
    /// The primary's URL.
    pub primary: String,
    /// `connecting`, `streaming`, `retrying` or `stopped`.
    pub phase: &'static str,
    /// The last error, if any (the reason for `retrying` or `stopped`).
    pub error: Option<String>,
}

type ReadFn = Box<dyn FnOnce(&State) + Send>;
type ThenFn = Box<dyn FnOnce(&State, &Outcome) + Send>;
type Reply = oneshot::Sender<Result<Outcome, SubmitError>>;

enum Request {
    /// A command, and optionally a read to run on the state right after its batch, in the same
    /// turn of the sequencer (so that a client that created something can be shown it without
    /// a second trip through the queue, which could be refused after the commit).
    Command {
        command: Command,
        reply: Reply,
        then: Option<ThenFn>,
    },
    Read(ReadFn),
    /// Commit a batch now, even an empty one: to put engine time moved by a test clock in
    /// the journal.
    Tick(oneshot::Sender<Result<(), SubmitError>>),
    /// A follower's frames from its primary (whole frames as stored, back to back).
    Replicate(Vec<u8>, oneshot::Sender<Result<u64, ReplicateError>>),
    /// Stop following: from the next request on, a primary. Answers the last seq.
    Promote(oneshot::Sender<Result<u64, SubmitError>>),
}

/// A handle to the running engine, shared by every connection.
pub struct Engine {
    clock: Arc<Clock>,
    events: Arc<EventLog>,
    sender: Mutex<Option<SyncSender<Request>>>,
    metrics: Arc<Metrics>,
    health: Arc<AtomicU8>,
    health_tx: Arc<watch::Sender<Health>>,
    health_changes: watch::Receiver<Health>,
    role: Arc<AtomicU8>,
    role_changes: watch::Receiver<Role>,
    committed: watch::Receiver<u64>,
    sync: Arc<SyncGate>,
    follow_state: Mutex<FollowState>,
    thread: Mutex<Option<JoinHandle<Result<(), String>>>>,
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

impl Engine {
    /// Recovers the state from the journal in `storage` and the event log in `event_storage`
    /// (see [`Writer::recover`]) and starts the sequencer thread.
    pub fn start<S: Storage>(
        storage: S,
        event_storage: S,
        options: EngineOptions,
    ) -> Result<(Engine, RecoveryReport), EngineError> {
        assert!(
            options.batch_commands_max <= kasa_core::command::COMMANDS_PER_BATCH_MAX,
            "batch_commands_max over the payload's bound"
        );
        assert!(
            options.batch_payload_bytes_max + PAYLOAD_HEADER_BYTES_MAX
                <= options.writer.journal.frame_payload_bytes_max as usize,
            "batch_payload_bytes_max over the journal's frame limit"
        );
        let (writer, report) = Writer::recover(storage, event_storage, options.writer.clone())?;
        let events = writer.event_log().clone();
        // Engine time never goes back: after a restart it goes on from the last batch, even
        // if that is ahead of the wall clock (a test clock moved forward, or a wall clock set
        // back), and moves with the wall clock from there.
        let offset = writer.state().last_timestamp().saturating_sub(now_nanos());
        if offset > 1_000_000_000 {
            tracing::warn!(
                ahead_ms = offset / 1_000_000,
                "engine time goes on from the journal, ahead of the wall clock"
            );
        }
        let clock = Arc::new(Clock { offset: AtomicU64::new(offset), adjustable: options.test_clock });
        let metrics = Arc::new(Metrics::default());
        publish_state_metrics(&metrics, &writer);
        let (sender, receiver) = sync_channel(options.queue_depth_max);
        let health = Arc::new(AtomicU8::new(Health::Ready as u8));
        let (health_tx, health_changes) = watch::channel(Health::Ready);
        let health_tx = Arc::new(health_tx);
        let initial_role = if options.follower { Role::Follower } else { Role::Primary };
        let role = Arc::new(AtomicU8::new(initial_role as u8));
        let (role_tx, role_changes) = watch::channel(initial_role);
        let (committed_tx, committed) = watch::channel(writer.last_seq());
        metrics.committed_seq.store(writer.last_seq(), Ordering::Relaxed);
        metrics.follower.store(options.follower as u64, Ordering::Relaxed);
        let sync = Arc::new(SyncGate::new(
            options.sync_follower,
            options.queue_depth_max.min(crate::sync::HELD_MAX),
            metrics.clone(),
        ));
        let thread = {
            let sync = sync.clone();
            let role = role.clone();
            let metrics = metrics.clone();
            let health = health.clone();
            let health_tx = health_tx.clone();
            let clock = clock.clone();
            std::thread::Builder::new()
                .name("kasa-sequencer".into())
                .spawn(move || {
                    // A panic here is a bug, but the process must not linger looking healthy
                    // while it answers nothing: mark the engine failed so the server exits.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let replication = Replication { role: &role, role_tx, committed: committed_tx, sync: &sync };
                        run(writer, receiver, &metrics, &health, &health_tx, &clock, &replication, options)
                    }));
                    outcome.unwrap_or_else(|_| {
                        health.store(Health::Failed as u8, Ordering::Release);
                        let _ = health_tx.send(Health::Failed);
                        Err("the sequencer thread panicked".into())
                    })
                })
                .expect("spawn the sequencer thread")
        };
        let engine = Engine {
            clock,
            events,
            sender: Mutex::new(Some(sender)),
            metrics,
            health,
            health_tx,
            health_changes,
            role,
            role_changes,
            committed,
            sync,
            follow_state: Mutex::new(FollowState::default()),
            thread: Mutex::new(Some(thread)),
        };
        Ok((engine, report))
    }

    /// Answers committed commands through a task on the runtime of `handle`, the one whose
    /// tasks submit most of them (the HTTP server's): a wake-up a batch from the sequencer
    /// instead of one an answer (see `SyncGate::dispatch_on`). Without it every answer still
    /// arrives, each woken on its own. Answers to other threads (the consumers') pass through
    /// that task too, so they arrive only while the runtime runs; once it is dropped they go
    /// straight again.
    pub fn answer_on(&self, handle: &tokio::runtime::Handle) {
        self.sync.dispatch_on(handle);
    }

    /// Engine time now: the wall clock, or a test clock moved forward.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Moves a test clock forward by `by`, then commits a batch at the new time (with the
    /// expiries now due), so that the moved time is in the journal and survives a restart.
    /// Returns the new engine time.
    pub async fn advance_clock(&self, by: Duration) -> Result<u64, ClockError> {
        if !self.clock.adjustable {
            return Err(ClockError::NotATestClock);
        }
        if self.role() != Role::Primary {
            return Err(ClockError::NotCommitted(SubmitError::ReadOnly));
        }
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let wall = now_nanos();
        self.clock
            .offset
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |offset| {
                offset.checked_add(by).filter(|o| wall.saturating_add(*o) < CLOCK_NANOS_MAX)
            })
            .map_err(|_| ClockError::TooFar)?;
        let (reply, receiver) = oneshot::channel();
        self.enqueue(Request::Tick(reply)).map_err(ClockError::NotCommitted)?;
        receiver
            .await
            .map_err(|_| ClockError::NotCommitted(SubmitError::Unavailable))?
            .map_err(ClockError::NotCommitted)?;
        Ok(self.clock.now())
    }

    fn enqueue(&self, request: Request) -> Result<(), SubmitError> {
        let guard = self.sender.lock().expect("sender lock");
        let Some(sender) = guard.as_ref() else { return Err(SubmitError::Unavailable) };
        if self.health() != Health::Ready {
            return Err(SubmitError::Unavailable);
        }
        // The role only ever goes from follower to primary, on the sequencer, in queue order:
        // a command let in here is committed by a primary.
        if matches!(request, Request::Command { .. } | Request::Tick(_)) && self.role() != Role::Primary {
            return Err(SubmitError::ReadOnly);
        }
        // Answers held for a follower count against the queue's bound: without a follower,
        // clients hear `Busy` rather than pile up answers without end.
        if matches!(request, Request::Command { .. }) && self.sync.full() {
            self.metrics.rejected_busy_total.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::Busy);
        }
        self.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(request) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                self.metrics.rejected_busy_total.fetch_add(1, Ordering::Relaxed);
                Err(SubmitError::Busy)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                Err(SubmitError::Unavailable)
            }
        }
    }

    /// Submits a command and waits until its batch is durable and applied.
    pub async fn submit(&self, command: Command) -> Result<Outcome, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        self.enqueue(Request::Command { command, reply, then: None })?;
        receiver.await.map_err(|_| SubmitError::Unavailable)?
    }

    /// Submits a command and, once its batch is durable and applied, runs `read` on the state
    /// and the command's own outcome in the same turn: the answer never needs a second place
    /// in the queue. The state is as of the end of the batch, which may hold other requests'
    /// commands too: look objects up by what the outcome says, never by "the newest".
    pub async fn submit_then_read<R: Send + 'static>(
        &self,
        command: Command,
        read: impl FnOnce(&State, &Outcome) -> R + Send + 'static,
    ) -> Result<(Outcome, R), SubmitError> {
        let (reply, receiver) = oneshot::channel();
        let (read_reply, read_receiver) = oneshot::channel();
        let then: ThenFn = Box::new(move |state, outcome| {
            let _ = read_reply.send(read(state, outcome));
        });
        self.enqueue(Request::Command { command, reply, then: Some(then) })?;
        let outcome = receiver.await.map_err(|_| SubmitError::Unavailable)??;
        let read = read_receiver.await.map_err(|_| SubmitError::Unavailable)?;
        Ok((outcome, read))
    }

    /// Runs `read` on the committed state, after every batch queued before it.
    pub async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&State) -> R + Send + 'static,
    ) -> Result<R, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        self.enqueue(Request::Read(Box::new(move |state| {
            let _ = reply.send(read(state));
        })))?;
        receiver.await.map_err(|_| SubmitError::Unavailable)
    }

    /// Whether this engine is a primary or a follower right now.
    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Acquire) {
            2 => Role::Follower,
            _ => Role::Primary,
        }
    }

    /// A receiver that changes when the role does (a follower's consumers start, and its
    /// loop stops, on promotion).
    pub fn role_changes(&self) -> watch::Receiver<Role> {
        self.role_changes.clone()
    }

    /// A receiver of the last committed seq: a frame at or below it is synced, applied, and
    /// never taken back, so it may be shipped to a follower.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// The last committed seq.
    pub fn committed_seq(&self) -> u64 {
        *self.committed.borrow()
    }

    /// A follower has this primary's frames 1..=`seq` synced (its poll's `after`): with a
    /// synchronous standby, the held answers of batches up to `seq` are sent, in commit
    /// order. The position kept is the highest reported; a lower one changes nothing. The
    /// caller vouches that the follower's frames are this journal's (the frames route counts
    /// a position only right after it shipped the frame there).
    pub fn follower_has(&self, seq: u64) {
        assert!(seq <= self.committed_seq(), "a follower has frame {seq}, past the last committed one");
        self.sync.follower_has(seq);
    }

    /// Takes a primary's frames (whole frames as stored, back to back) on a follower: checked,
    /// appended, synced and applied (see [`Writer::replicate`]) on the sequencer, in order
    /// with the reads. Returns the last committed seq.
    pub async fn replicate(&self, frames: Vec<u8>) -> Result<u64, ReplicateError> {
        let (reply, receiver) = oneshot::channel();
        self.enqueue(Request::Replicate(frames, reply)).map_err(|e| match e {
            SubmitError::Busy => ReplicateError::Busy,
            other => ReplicateError::Unavailable(other.to_string()),
        })?;
        receiver.await.map_err(|_| ReplicateError::Unavailable("the engine stopped".into()))?
    }

    /// Promotes a follower: from the sequencer's next turn it takes commands, commits its own
    /// batches and refuses frames. Everything replicated before is kept; nothing arrives
    /// after. Returns the last committed seq. On a primary, [`SubmitError::Unavailable`] is
    /// not returned: it answers the seq as well (promotion is idempotent).
    pub async fn promote(&self) -> Result<u64, SubmitError> {
        let (reply, receiver) = oneshot::channel();
        self.enqueue(Request::Promote(reply))?;
        receiver.await.map_err(|_| SubmitError::Unavailable)?
    }

    /// What the follower's connection is doing (see [`FollowState`]).
    pub fn follow_state(&self) -> FollowState {
        self.follow_state.lock().expect("follow state lock").clone()
    }

    /// Records what the follower's connection is doing.
    pub fn set_follow_state(&self, state: FollowState) {
        *self.follow_state.lock().expect("follow state lock") = state;
    }

    /// The event log of the outbox.
    pub fn events(&self) -> &Arc<EventLog> {
        &self.events
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The engine's health right now.
    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Acquire) {
            1 => Health::Ready,
            2 => Health::Stopping,
            _ => Health::Failed,
        }
    }

    /// A receiver that changes when the health does (the server watches it to exit on a
    /// fatal error).
    pub fn health_changes(&self) -> watch::Receiver<Health> {
        self.health_changes.clone()
    }

    /// Refuses new requests from now on (`/readyz` answers 503) while those already queued
    /// are still committed and answered: the first step of a graceful stop.
    pub fn stop_accepting(&self) {
        if self.health() == Health::Ready {
            self.health.store(Health::Stopping as u8, Ordering::Release);
            let _ = self.health_tx.send(Health::Stopping);
        }
        // A stop must not wait for a follower that may never come: held answers are dropped
        // (in doubt, as after a timeout), and none are held from now on.
        self.sync.close();
    }

    /// Stops accepting requests, lets the sequencer finish everything queued, writes a
    /// snapshot, and waits for the thread. Returns the thread's error, if it failed.
    pub fn shutdown(&self) -> Result<(), String> {
        self.stop_accepting();
        drop(self.sender.lock().expect("sender lock").take());
        match self.thread.lock().expect("thread lock").take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err("the sequencer thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn publish_state_metrics<S: Storage>(metrics: &Metrics, writer: &Writer<S>) {
    let ledger = writer.state().ledger();
    metrics.accounts.store(ledger.accounts_count() as u64, Ordering::Relaxed);
    metrics.transfers.store(ledger.transfers_count() as u64, Ordering::Relaxed);
    metrics.journal_bytes.store(writer.journal_bytes(), Ordering::Relaxed);
    let cold = |kind| -> u64 {
        let chunks: usize = (0..State::COLD_LEDGERS).map(|which| writer.state().cold_chunks(which, kind).1).sum();
        (chunks * TRANSFERS_PER_CHUNK) as u64
    };
    metrics.cold_transfers.store(cold(ColdKind::Transfers), Ordering::Relaxed);
    metrics.cold_balances.store(cold(ColdKind::Balances), Ordering::Relaxed);
    metrics.cold_reads_total.store(writer.cold_stats().reads.load(Ordering::Relaxed), Ordering::Relaxed);
    metrics.cold_store_failed.store(writer.cold_stats().failed.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The most payload bytes one batch may take, counted by the commands' type bounds before
/// anything is encoded: far under the journal's 64 MiB frame limit, so that no batch a client
/// can fill is ever refused by the journal (which would stop the engine), and about 16 full
/// ledger batches.
pub const BATCH_PAYLOAD_BYTES_MAX: usize = 16 << 20;
const _: () = assert!(
    BATCH_PAYLOAD_BYTES_MAX + PAYLOAD_HEADER_BYTES_MAX <= kasa_journal::FRAME_PAYLOAD_BYTES_MAX_DEFAULT as usize
);

/// The longest the thread sleeps without a request: it bounds how late an expiry can be if
/// the clock jumps.
const IDLE_WAIT_MAX: Duration = Duration::from_secs(1);

/// After a full disk refused a batch that only expired pending transfers, wait this long
/// before trying again, instead of spinning on the full disk.
const EXPIRY_RETRY_AFTER_STORAGE_FULL: Duration = Duration::from_secs(1);

/// After a snapshot failed without poisoning the journal (a full disk, say), wait this long
/// before trying again; the journal alone still holds everything.
const SNAPSHOT_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// Events of committed batches are made durable and visible to consumers this long after they
/// were committed, at most (and no more often, so their syncs stay few).
const EVENTS_FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// Makes the events of committed batches durable and visible if the last flush was at least
/// [`EVENTS_FLUSH_INTERVAL`] ago; otherwise says how long until it is due (`None`: nothing
/// waits). An error is fatal (the event log is poisoned).
fn flush_events_if_due<S: Storage>(
    writer: &mut Writer<S>,
    flushed_at: &mut Instant,
) -> Result<Option<Duration>, String> {
    if !writer.events_pending() {
        return Ok(None);
    }
    let since = flushed_at.elapsed();
    if since < EVENTS_FLUSH_INTERVAL {
        return Ok(Some(EVENTS_FLUSH_INTERVAL - since));
    }
    writer.flush_events().map_err(|error| format!("event log: {error}"))?;
    *flushed_at = Instant::now();
    Ok(None)
}

/// Whether a snapshot error means the journal can no longer be trusted (a failed sync).
fn snapshot_error_is_fatal(error: &JournalError) -> bool {
    error.is_fatal()
}

/// The sequencer's half of replication: the role it changes and the committed seq it
/// publishes.
struct Replication<'a> {
    role: &'a AtomicU8,
    role_tx: watch::Sender<Role>,
    committed: watch::Sender<u64>,
    /// Where the answers of committed batches go (held for a follower, or sent).
    sync: &'a SyncGate,
}

impl Replication<'_> {
    fn is_primary(&self) -> bool {
        self.role.load(Ordering::Acquire) == Role::Primary as u8
    }

    /// Whether the sequencer may commit an expiry of its own now: only on a primary (a
    /// follower's expiries come in the primary's frames) and not while a full disk holds
    /// expiries back.
    fn may_expire(&self, blocked_until: Option<Instant>) -> bool {
        self.is_primary() && blocked_until.is_none_or(|until| Instant::now() >= until)
    }

    /// Publishes the last committed seq (to the frames endpoint and the metrics).
    fn committed<S: Storage>(&self, writer: &Writer<S>, metrics: &Metrics) {
        metrics.committed_seq.store(writer.last_seq(), Ordering::Relaxed);
        self.committed.send_replace(writer.last_seq());
    }

    fn promote(&self, metrics: &Metrics) {
        if !self.is_primary() {
            self.role.store(Role::Primary as u8, Ordering::Release);
            metrics.follower.store(0, Ordering::Relaxed);
            self.role_tx.send_replace(Role::Primary);
        }
    }
}

#[allow(clippy::too_many_arguments)] // One call, each argument a different concern.
fn run<S: Storage>(
    mut writer: Writer<S>,
    receiver: Receiver<Request>,
    metrics: &Metrics,
    health: &AtomicU8,
    health_tx: &watch::Sender<Health>,
    clock: &Clock,
    replication: &Replication<'_>,
    options: EngineOptions,
) -> Result<(), String> {
    let mut commands: Vec<Command> = Vec::new();
    let mut replies: Vec<(Reply, Option<ThenFn>)> = Vec::new();
    let mut reads: Vec<ReadFn> = Vec::new();
    let mut expiry_blocked_until: Option<Instant> = None;
    let mut carried: Option<Request> = None;
    let mut snapshot_blocked_until: Option<Instant> = None;
    let mut events_flushed_at = Instant::now();
    let fail = |error: String, receiver: &Receiver<Request>| -> Result<(), String> {
        tracing::error!(%error, "fatal journal error: no longer acknowledging; restart to recover");
        health.store(Health::Failed as u8, Ordering::Release);
        let _ = health_tx.send(Health::Failed);
        // Answer (with an error) everything still queued until the handles are dropped.
        while let Ok(request) = receiver.recv() {
            metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            if let Request::Command { reply, .. } = request {
                let _ = reply.send(Err(SubmitError::Unavailable));
            }
        }
        Err(error)
    };
    loop {
        let wait = match writer.state().next_expiry() {
            Some(at) if replication.may_expire(expiry_blocked_until) => {
                Duration::from_nanos(at.saturating_sub(clock.now())).min(IDLE_WAIT_MAX)
            }
            _ => IDLE_WAIT_MAX,
        };
        // A command that did not fit in the last batch goes first; otherwise take one, and if
        // none is waiting, make the events of committed batches visible before waiting.
        let first = match carried.take() {
            Some(request) => Some(request),
            None => match receiver.try_recv() {
                Ok(request) => {
                    metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                    Some(request)
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    // Events are synced at most every EVENTS_FLUSH_INTERVAL: a sync per batch
                    // would double the writer's fsyncs under a stream of small requests. Wait
                    // for a request no longer than until the next flush is due.
                    let wait = match flush_events_if_due(&mut writer, &mut events_flushed_at) {
                        Ok(Some(next_flush)) => wait.min(next_flush),
                        Ok(None) => wait,
                        Err(error) => return fail(error, &receiver),
                    };
                    match receiver.recv_timeout(wait) {
                        Ok(request) => {
                            metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                            Some(request)
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            // Idle: chunks the spill thread stored since the last batch leave
                            // memory now rather than at the next write.
                            writer.cold_tick();
                            publish_state_metrics(metrics, &writer);
                            None
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            },
        };
        let mut events = 0;
        let mut bytes = 0;
        let mut ticks = Vec::new();
        let mut next = first;
        while let Some(request) = next.take() {
            match request {
                Request::Command { command, reply, then } => {
                    // Every command has a byte bound by its type: keep the batch's payload
                    // under the budget before encoding it (a command over the budget on its own
                    // would go alone; under the default budget none exists: the largest is a
                    // full ledger batch of about 1 MiB).
                    let command_bytes = command.encoded_bytes_max();
                    if !commands.is_empty() && bytes + command_bytes > options.batch_payload_bytes_max {
                        carried = Some(Request::Command { command, reply, then });
                        break;
                    }
                    bytes += command_bytes;
                    events += command.events();
                    commands.push(command);
                    replies.push((reply, then));
                }
                Request::Read(read) => reads.push(read),
                Request::Tick(reply) => ticks.push(reply),
                // Frames and promotion go in queue order, before whatever is gathered after
                // them. Commands are never gathered on a follower (enqueue refuses them), so
                // none are waiting here but after a promotion.
                Request::Replicate(frames, reply) => {
                    let result = if replication.is_primary() {
                        Err(ReplicateError::NotFollowing)
                    } else {
                        writer.replicate(&frames)
                    };
                    match &result {
                        Ok(_) => {
                            replication.committed(&writer, metrics);
                            publish_state_metrics(metrics, &writer);
                        }
                        Err(ReplicateError::Unavailable(error)) if writer.failed() => {
                            let error = format!("replication: {error}");
                            let _ = reply.send(result);
                            return fail(error, &receiver);
                        }
                        Err(_) => {}
                    }
                    let _ = reply.send(result);
                }
                Request::Promote(reply) => {
                    replication.promote(metrics);
                    tracing::info!(seq = writer.last_seq(), "promoted: this server is a primary now");
                    let _ = reply.send(Ok(writer.last_seq()));
                }
            }
            if events >= options.batch_events_max || commands.len() >= options.batch_commands_max {
                break;
            }
            next = receiver.try_recv().ok();
            if next.is_some() {
                metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let now = clock.now();
        let expiry_allowed = replication.may_expire(expiry_blocked_until);
        let mut tick_result = Ok(());
        if !commands.is_empty() || !ticks.is_empty() || (expiry_allowed && writer.expiry_due(now)) {
            let started = Instant::now();
            let batch_commands = commands.len() as u64;
            // The next batch's vector starts at this one's size: grown from empty every batch,
            // it was reallocated a dozen times a batch under load.
            let next_commands = Vec::with_capacity(commands.len());
            match writer.commit(std::mem::replace(&mut commands, next_commands), now) {
                Ok(outcomes) => {
                    expiry_blocked_until = None;
                    metrics.commit_latency_seconds.observe(started.elapsed().as_secs_f64());
                    metrics.batch_events.observe(events as f64);
                    metrics.batches_total.fetch_add(1, Ordering::Relaxed);
                    metrics.commands_total.fetch_add(batch_commands, Ordering::Relaxed);
                    metrics.events_total.fetch_add(events as u64, Ordering::Relaxed);
                    publish_state_metrics(metrics, &writer);
                    // The committed seq is published before any answer leaves: whoever has
                    // an answer and then reads the committed seq sees its batch's frame.
                    replication.committed(&writer, metrics);
                    // A read that goes with a command runs now, on the state after the batch;
                    // the answer may wait for a follower (it carries the read with it).
                    let state = writer.state();
                    let answers = replies.drain(..).zip(outcomes).map(|((reply, then), outcome)| {
                        if let Some(then) = then {
                            then(state, &outcome);
                        }
                        Answer::Command(reply, outcome)
                    });
                    replication.sync.answer(writer.last_seq(), answers.chain(ticks.drain(..).map(Answer::Tick)));
                }
                Err(CommitError::StorageFull) => {
                    if batch_commands == 0 {
                        // Only an expiry: try again later rather than spin on a full disk.
                        expiry_blocked_until = Some(Instant::now() + EXPIRY_RETRY_AFTER_STORAGE_FULL);
                        tracing::warn!("disk full: pending-transfer expiry postponed");
                    } else {
                        tracing::warn!(commands = batch_commands, "disk full: batch rejected, nothing written");
                        metrics.rejected_storage_full_total.fetch_add(1, Ordering::Relaxed);
                    }
                    for (reply, _) in replies.drain(..) {
                        let _ = reply.send(Err(SubmitError::StorageFull));
                    }
                    tick_result = Err(SubmitError::StorageFull);
                }
                Err(CommitError::Fatal(error)) => {
                    for (reply, _) in replies.drain(..) {
                        let _ = reply.send(Err(SubmitError::Unavailable));
                    }
                    reads.clear();
                    return fail(error, &receiver);
                }
            }
        }
        for tick in ticks.drain(..) {
            let _ = tick.send(tick_result);
        }
        for read in reads.drain(..) {
            read(writer.state());
        }
        if let Err(error) = flush_events_if_due(&mut writer, &mut events_flushed_at) {
            return fail(error, &receiver);
        }
        match writer.poll_snapshot(false) {
            None => {}
            Some(Ok(report)) => {
                snapshot_blocked_until = None;
                metrics.snapshots_total.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    seq = report.seq,
                    bytes = report.bytes,
                    ms = report.duration.as_millis() as u64,
                    "snapshot written"
                );
            }
            Some(Err(error)) if snapshot_error_is_fatal(&error) => {
                return fail(format!("snapshot: {error}"), &receiver)
            }
            Some(Err(error)) => {
                snapshot_blocked_until = Some(Instant::now() + SNAPSHOT_RETRY_AFTER_FAILURE);
                tracing::warn!(%error, "snapshot failed; the journal still holds everything, retrying later");
            }
        }
        let snapshot_allowed = snapshot_blocked_until.is_none_or(|until| Instant::now() >= until);
        if snapshot_allowed && writer.snapshot_due() {
            // The writer's only pause: taking a view of the state. The bytes are written on the
            // snapshot thread while batches go on.
            let started = Instant::now();
            match writer.start_snapshot() {
                Ok(true) => {
                    metrics.snapshot_pause_seconds.observe(started.elapsed().as_secs_f64());
                    tracing::info!(
                        seq = writer.last_seq(),
                        pause_ms = started.elapsed().as_millis() as u64,
                        "snapshot started"
                    );
                }
                Ok(false) => {}
                Err(error) if snapshot_error_is_fatal(&error) => return fail(format!("snapshot: {error}"), &receiver),
                Err(error) => {
                    snapshot_blocked_until = Some(Instant::now() + SNAPSHOT_RETRY_AFTER_FAILURE);
                    tracing::warn!(%error, "snapshot failed; the journal still holds everything, retrying later");
                }
            }
        }
    }
    // Every handle is gone: the queue is drained. Make the events visible, then a snapshot
    // makes the next start fast; if it cannot be written, the journal still holds everything,
    // so the stop is still clean.
    if let Err(error) = writer.flush_events() {
        tracing::warn!(%error, "the event log failed at the stop; the next start derives its events again");
    }
    let started = Instant::now();
    match writer.snapshot() {
        Ok(_) => tracing::info!(
            seq = writer.last_seq(),
            ms = started.elapsed().as_millis() as u64,
            state_hash = %hex(&writer.state().hash()),
            "sequencer stopped after a final snapshot"
        ),
        Err(error) if snapshot_error_is_fatal(&error) => return Err(format!("final snapshot: {error}")),
        Err(error) => tracing::warn!(%error, "sequencer stopped; the final snapshot failed, the next start replays"),
    }
    Ok(())
}
