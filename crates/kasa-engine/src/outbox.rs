//! The outbox's event log: the domain events of every committed batch, in order, numbered by
//! the core, readable by sequence number, with a notification when new events arrive.
//!
//! Events are derived from committed batches: the writer appends a batch's events right after
//! the batch is durable and applied, and recovery appends the events of the frames it replays
//! (skipping those the log already has), so the log never holds an event whose batch could
//! still be lost, and a crash at any moment loses none that a replay cannot give back.
//! Consumers (the bank rail, next webhooks and the read model) read from here with cursors
//! that the core keeps (`kasa_core::outbox`); a slow consumer only lags, it never slows the
//! writer, which never waits for a reader.

use kasa_core::event::Event;
use std::sync::Mutex;
use tokio::sync::watch;

/// The most events one read returns.
pub const EVENTS_PER_READ_MAX: usize = 1_000;

/// The event log. See the module documentation.
pub struct EventLog {
    events: Mutex<Vec<Event>>,
    last: watch::Sender<u64>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog { events: Mutex::new(Vec::new()), last: watch::channel(0).0 }
    }
}

impl EventLog {
    /// The seq of the last event in the log (0: none).
    pub fn last_seq(&self) -> u64 {
        *self.last.borrow()
    }

    /// Appends the events of a committed batch; events the log has already (a replay after a
    /// restart) are skipped. Their seqs must continue the log without a gap.
    pub(crate) fn append(&self, events: &[Event]) {
        let mut log = self.events.lock().expect("event log lock");
        let mut last = log.last().map_or(0, |e| e.seq);
        for event in events {
            if event.seq <= last {
                continue;
            }
            assert_eq!(event.seq, last + 1, "events continue the log without a gap");
            log.push(event.clone());
            last = event.seq;
        }
        drop(log);
        self.last.send_if_modified(|at| {
            let changed = *at != last;
            *at = last;
            changed
        });
    }

    /// Up to `limit` (at most [`EVENTS_PER_READ_MAX`]) events after `after`, in order.
    pub fn read(&self, after: u64, limit: usize) -> Vec<Event> {
        let log = self.events.lock().expect("event log lock");
        let start = log.partition_point(|e| e.seq <= after);
        log[start..].iter().take(limit.min(EVENTS_PER_READ_MAX)).cloned().collect()
    }

    /// A receiver of the last seq, which changes when events arrive.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.last.subscribe()
    }
}
