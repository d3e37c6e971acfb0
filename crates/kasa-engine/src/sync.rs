//! A synchronous standby's gate (`kasa serve --sync-followers 1`): the answers of a committed
//! batch are held until a follower says it has the batch's frame durably, then sent in
//! commit order. The batch itself is not held back: it is synced on the primary and applied
//! before it reaches the gate, reads see it, and the sequencer goes on committing the next
//! batches while earlier answers wait. Only the acknowledgement waits: like PostgreSQL's
//! `synchronous_commit = remote_apply` with one synchronous standby (the follower's position
//! is synced and applied), except that PostgreSQL hides the waiting commit from other
//! sessions and Kasa does not (`docs/standby.md`).
//!
//! A follower's position comes from its polls (`after=N`: "I have frames 1..N synced"), which
//! the frames route reports with [`Engine::follower_has`](crate::Engine::follower_has); the
//! gate keeps the highest, which only grows. It does not decide which follower counts (one
//! position, the highest, so one synchronous follower), and it has no timeout: with no
//! follower, answers wait until an operator restarts the primary without the flag. Nothing
//! here touches the journal or the state.
//!
//! Answers that may leave go out through `deliver`: straight to their waiting tasks, or, once
//! the server has called [`Engine::answer_on`](crate::Engine::answer_on), as one message a
//! batch to a task on its HTTP runtime, which wakes them there. Both the sequencer's batches
//! and the ones a follower's position releases take that one queue, so they keep commit order.

use crate::metrics::Metrics;
use crate::sequencer::SubmitError;
use kasa_core::Outcome;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The most answers held at once (or the queue depth, if smaller); past it new commands get
/// `Busy`. Each held answer keeps its HTTP request open, and the server lets 512 requests in
/// at once: holding at most half of them keeps reads, `/v1/admin/replication` and the
/// follower's own polls answered while a follower is away.
pub const HELD_MAX: usize = 256;

/// One answer of a committed batch.
// Nearly every answer is a command's: boxing its outcome to shrink the rare tick would cost
// an allocation per command.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Answer {
    /// A command's outcome.
    Command(oneshot::Sender<Result<Outcome, SubmitError>>, Outcome),
    /// A test clock's move, committed.
    Tick(oneshot::Sender<Result<(), SubmitError>>),
}

impl Answer {
    fn send(self) {
        match self {
            Answer::Command(reply, outcome) => {
                let _ = reply.send(Ok(outcome));
            }
            Answer::Tick(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }
}

/// The answers of one committed batch, waiting for a follower to have its frame.
struct HeldBatch {
    seq: u64,
    /// When the batch was committed, in Unix nanoseconds (for the oldest answer's age).
    committed_at_ns: u64,
    answers: Vec<Answer>,
}

#[derive(Default)]
struct Inner {
    /// The highest frame a follower said it has synced; only grows.
    follower_seq: u64,
    /// Held batches in commit (so seq) order.
    batches: VecDeque<HeldBatch>,
    /// Answers in `batches`.
    answers: usize,
    /// The engine stopped accepting: nothing more is held (an answer dropped is a 503).
    closed: bool,
}

/// The gate between committed batches and their answers.
pub(crate) struct SyncGate {
    /// Whether answers wait for a follower at all (`--sync-followers 1`).
    enabled: bool,
    /// Answers held at which new commands are refused as busy: with the commands already
    /// queued, at most twice the queue's depth are ever held.
    held_max: usize,
    inner: Mutex<Inner>,
    metrics: Arc<Metrics>,
    /// A task on the server's runtime that hands each batch's answers to their waiting tasks
    /// ([`SyncGate::dispatch_on`]), if one was started.
    dispatch: Mutex<Option<mpsc::UnboundedSender<Vec<Answer>>>>,
}

impl SyncGate {
    pub(crate) fn new(enabled: bool, held_max: usize, metrics: Arc<Metrics>) -> SyncGate {
        metrics.sync_followers.store(enabled as u64, Relaxed);
        SyncGate { enabled, held_max, inner: Mutex::new(Inner::default()), metrics, dispatch: Mutex::new(None) }
    }

    /// From now on the answers of each committed batch go, all at once, to a task on the
    /// runtime of `handle`, which wakes the requests waiting for them there. Without it the
    /// sequencer wakes each waiting task itself, and a wake-up from outside a runtime costs a
    /// lock and a system call to rouse the runtime's thread: a quarter of the sequencer's
    /// time when it answers a few thousand commands a second. With it, that is one wake-up a
    /// batch. If the runtime is gone, answers go straight to their tasks again.
    pub(crate) fn dispatch_on(&self, handle: &tokio::runtime::Handle) {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Vec<Answer>>();
        handle.spawn(async move {
            while let Some(answers) = receiver.recv().await {
                answers.into_iter().for_each(Answer::send);
            }
        });
        *self.dispatch.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
    }

    /// Sends answers in commit order: through the dispatching task if there is one (one
    /// queue for every batch, held or not, so none overtakes an earlier one).
    fn deliver(&self, answers: Vec<Answer>) {
        if answers.is_empty() {
            return; // An expiry of the primary's own: nobody waits, nothing to wake.
        }
        let mut dispatch = self.dispatch.lock().unwrap_or_else(|p| p.into_inner());
        let answers = match dispatch.as_ref() {
            None => answers,
            Some(sender) => match sender.send(answers) {
                Ok(()) => return,
                Err(mpsc::error::SendError(answers)) => {
                    *dispatch = None;
                    answers
                }
            },
        };
        drop(dispatch);
        answers.into_iter().for_each(Answer::send);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether new commands should be refused: too many answers are held already.
    pub(crate) fn full(&self) -> bool {
        self.enabled && self.lock().answers >= self.held_max
    }

    /// Answers the committed batch `seq`: at once if no follower is waited for or one has
    /// the frame already, otherwise once one has (after every earlier batch's answers).
    pub(crate) fn answer(&self, seq: u64, answers: impl Iterator<Item = Answer>) {
        if !self.enabled {
            self.deliver(answers.collect());
            return;
        }
        let mut inner = self.lock();
        if inner.closed {
            return; // Dropped: the clients hear that the engine is not accepting.
        }
        if seq <= inner.follower_seq {
            // Under the lock: batches a follower's poll releases go first or after, never
            // between (the lock order is always the gate's, then the dispatcher's).
            self.deliver(answers.collect());
            return;
        }
        assert!(inner.batches.back().is_none_or(|b| b.seq < seq), "held batches in commit order");
        let answers: Vec<Answer> = answers.collect();
        if answers.is_empty() {
            return; // An expiry of the primary's own: nobody waits.
        }
        inner.answers += answers.len();
        inner.batches.push_back(HeldBatch { seq, committed_at_ns: crate::sequencer::now_nanos(), answers });
        self.publish(&inner);
    }

    /// A follower has frames 1..=`seq` synced: answers every held batch up to it.
    pub(crate) fn follower_has(&self, seq: u64) {
        let mut released = Vec::new();
        let mut inner = self.lock();
        inner.follower_seq = inner.follower_seq.max(seq);
        while inner.batches.front().is_some_and(|b| b.seq <= inner.follower_seq) {
            let batch = inner.batches.pop_front().expect("a front batch");
            inner.answers -= batch.answers.len();
            released.extend(batch.answers);
        }
        self.publish(&inner);
        // Under the lock, so that a later batch the sequencer answers at once (the follower
        // has it already) cannot leave before these.
        self.deliver(released);
    }

    /// The engine stops accepting: held answers are dropped (their clients get
    /// `Unavailable`: the write is in doubt, as after a timeout) and none are held from now
    /// on, so that a stop never waits for a follower that is gone.
    pub(crate) fn close(&self) {
        let dropped = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.answers = 0;
            let dropped = std::mem::take(&mut inner.batches);
            self.publish(&inner);
            dropped
        };
        if !dropped.is_empty() {
            tracing::warn!(
                batches = dropped.len(),
                last_seq = dropped.back().map(|b| b.seq),
                "stopping with answers no follower acknowledged: answered as unavailable"
            );
        }
    }

    fn publish(&self, inner: &Inner) {
        self.metrics.sync_follower_seq.store(inner.follower_seq, Relaxed);
        self.metrics.sync_held_answers.store(inner.answers as u64, Relaxed);
        let oldest = inner.batches.front().map_or(0, |b| b.committed_at_ns);
        self.metrics.sync_oldest_held_at_ns.store(oldest, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot::error::TryRecvError;

    type Waiting = oneshot::Receiver<Result<(), SubmitError>>;

    /// `n` answers (test-clock ticks: the simplest answer to make) and their receivers.
    fn answers(n: usize) -> (Vec<Answer>, Vec<Waiting>) {
        (0..n).map(|_| oneshot::channel()).map(|(tx, rx)| (Answer::Tick(tx), rx)).unzip()
    }

    fn answered(waiting: &mut [Waiting]) -> Vec<bool> {
        waiting.iter_mut().map(|rx| matches!(rx.try_recv(), Ok(Ok(())))).collect()
    }

    #[test]
    fn without_a_synchronous_follower_answers_go_at_once() {
        let gate = SyncGate::new(false, 1, Arc::new(Metrics::default()));
        let (a, mut rx) = answers(3);
        gate.answer(7, a.into_iter());
        assert_eq!(answered(&mut rx), [true, true, true]);
        assert!(!gate.full(), "nothing is ever held");
    }

    /// A gate whose answers go through a task on a runtime of its own, which runs only when
    /// the test blocks on it.
    fn dispatched(enabled: bool, held_max: usize) -> (SyncGate, tokio::runtime::Runtime) {
        let gate = SyncGate::new(enabled, held_max, Arc::new(Metrics::default()));
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        gate.dispatch_on(runtime.handle());
        (gate, runtime)
    }

    #[test]
    fn answers_go_through_the_runtimes_task_and_straight_once_it_is_gone() {
        let (gate, runtime) = dispatched(false, 1);
        let (a, mut rx) = answers(3);
        gate.answer(1, a.into_iter());
        assert_eq!(answered(&mut rx), [false, false, false], "the task runs when its runtime does");
        runtime.block_on(async {
            for rx in rx {
                assert!(matches!(rx.await, Ok(Ok(()))));
            }
        });
        drop(runtime);
        let (a, mut rx) = answers(2);
        gate.answer(2, a.into_iter());
        assert_eq!(answered(&mut rx), [true, true], "no runtime: answered on the spot");
    }

    /// With a synchronous follower, a batch the follower already has and the batches its poll
    /// releases take the same queue as every other answer, so none overtakes another.
    #[test]
    fn released_answers_take_the_dispatchers_queue_too() {
        let (gate, runtime) = dispatched(true, 8);
        let (a1, mut rx1) = answers(2);
        gate.answer(1, a1.into_iter());
        gate.follower_has(1);
        let (a2, mut rx2) = answers(1);
        gate.answer(1, a2.into_iter()); // the follower has it: not held
        assert_eq!((answered(&mut rx1), answered(&mut rx2)), (vec![false, false], vec![false]), "queued");
        runtime.block_on(async {
            for rx in rx1.into_iter().chain(rx2) {
                assert!(matches!(rx.await, Ok(Ok(()))));
            }
        });
    }

    #[test]
    fn answers_wait_for_the_follower_and_leave_in_commit_order() {
        let metrics = Arc::new(Metrics::default());
        let gate = SyncGate::new(true, 4, metrics.clone());
        let (a1, mut rx1) = answers(2);
        let (a2, mut rx2) = answers(1);
        gate.answer(1, a1.into_iter());
        gate.answer(2, std::iter::empty()); // the primary's own batch: nobody waits
        gate.answer(3, a2.into_iter());
        assert_eq!((answered(&mut rx1), answered(&mut rx2)), (vec![false, false], vec![false]));
        assert_eq!(metrics.sync_held_answers.load(Relaxed), 3);
        gate.follower_has(2);
        assert_eq!((answered(&mut rx1), answered(&mut rx2)), (vec![true, true], vec![false]), "up to frame 2");
        gate.follower_has(1);
        assert_eq!(answered(&mut rx2), [false], "a lower position changes nothing");
        gate.follower_has(3);
        assert_eq!(answered(&mut rx2), [true]);
        // A batch the follower already has is answered at once.
        let (a4, mut rx4) = answers(1);
        gate.answer(3, a4.into_iter());
        assert_eq!(answered(&mut rx4), [true]);
        assert_eq!(metrics.sync_held_answers.load(Relaxed), 0);
    }

    #[test]
    fn a_full_gate_refuses_and_a_closed_one_drops_what_it_held() {
        let gate = SyncGate::new(true, 3, Arc::new(Metrics::default()));
        let (a, mut held) = answers(3);
        gate.answer(1, a.into_iter());
        assert!(gate.full(), "3 held of 3");
        gate.close();
        assert!(held.iter_mut().all(|rx| matches!(rx.try_recv(), Err(TryRecvError::Closed))), "dropped");
        assert!(!gate.full());
        let (a, mut later) = answers(1);
        gate.answer(2, a.into_iter());
        assert!(matches!(later[0].try_recv(), Err(TryRecvError::Closed)), "nothing is held after a stop");
    }
}
