//! The outbox's event log: the domain events of every committed batch, in order, numbered by
//! the core, readable by sequence number from any thread, with a notification when new events
//! arrive.
//!
//! Events are derived from committed batches. The writer keeps them in a [`RecordLog`] of their
//! own (`events/` next to the journal), appending a batch's events right after the batch is
//! durable and applied, and syncing them soon after (when the queue runs dry, or every few
//! milliseconds under load): the log never holds an event whose batch could still be lost.
//! Recovery appends the events of the frames it replays that the log lacks, and before each
//! snapshot the writer syncs the log, so a snapshot never covers an event the log could lose;
//! if the log was damaged further back, recovery replays the journal from its first frame to
//! derive them again. A crash at any moment loses no event for good.
//!
//! Consumers (the bank rail, next webhooks and the read model) read from here with cursors
//! that the core keeps (`kasa_core::outbox`); a slow consumer only lags, it never slows the
//! writer, which never waits for a reader. A consumer that needs few of the events (the bank
//! rail needs fundings, not remittances) registers an [`EventLog::interest`]: it is woken
//! only when an event it wants is published, and learns up to which seq there is nothing for
//! it, so that it moves its cursor past the rest without reading them.

use kasa_core::event::{Event, EventKind};
use kasa_journal::{RecordLogError, RecordReader, Storage};
use std::sync::Mutex;
use tokio::sync::watch;

/// The most events one read returns.
pub const EVENTS_PER_READ_MAX: usize = 1_000;

/// The most events one read returns, with one to look ahead for a page of the maximum.
const READ_RECORDS_MAX: usize = EVENTS_PER_READ_MAX + 1;

/// The most payload bytes one read returns (the first event is returned whatever its size).
const READ_BYTES_MAX: usize = 4 << 20;

/// Why events could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// The log on disk could not be read (an I/O error or damage the next start cuts).
    #[error("the event log could not be read: {0}")]
    Read(#[from] RecordLogError),
    /// A record that does not decode as an event.
    #[error("event {seq} in the event log does not decode: {error}")]
    Decode {
        /// The event's seq.
        seq: u64,
        /// What was wrong.
        error: String,
    },
}

type ReadFn = dyn FnMut(u64, usize, usize) -> Result<Vec<(u64, Vec<u8>)>, RecordLogError> + Send;

/// Which events a consumer wants.
pub type EventFilter = fn(&EventKind) -> bool;

/// What an [`EventLog::interest`] knows: every wanted event up to `last_seq` has a seq of at
/// most `last_match`. Both move together, when events are published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Matched {
    /// The seq of the last wanted event published (or, for events published before the
    /// interest was registered, the last event then: those were not looked at).
    pub last_match: u64,
    /// The seq of the last event published.
    pub last_seq: u64,
}

/// The reading end of the event log, shared by every consumer. See the module documentation.
pub struct EventLog {
    reader: Mutex<Box<ReadFn>>,
    last: watch::Sender<u64>,
    /// Registered interests; published to under this lock, so that one registered between
    /// two publications misses nothing.
    interests: Mutex<Vec<(EventFilter, watch::Sender<Matched>)>>,
}

impl EventLog {
    pub(crate) fn new<S: Storage>(mut reader: RecordReader<S>) -> EventLog {
        let last = reader.last_key().unwrap_or(0);
        let read: Box<ReadFn> = Box::new(move |after, records, bytes| reader.read(after, records, bytes));
        EventLog { reader: Mutex::new(read), last: watch::channel(last).0, interests: Mutex::new(Vec::new()) }
    }

    /// The seq of the last event readers can see (0: none).
    pub fn last_seq(&self) -> u64 {
        *self.last.borrow()
    }

    /// Called by the writer after a sync made events up to `last` durable; `events` are the
    /// events published since the last call (empty after recovery: interests registered later
    /// start from the last event).
    pub(crate) fn published(&self, last: u64, events: &[Event]) {
        let mut interests = self.interests.lock().expect("event log interests lock");
        interests.retain(|(_, sender)| !sender.is_closed());
        for (filter, sender) in interests.iter() {
            let matched = events.iter().rev().find(|e| filter(&e.kind)).map(|e| e.seq);
            // Always moves `last_seq`; wakes the consumer only for an event it wants.
            sender.send_if_modified(|m| {
                m.last_seq = last;
                match matched {
                    Some(seq) if seq > m.last_match => {
                        m.last_match = seq;
                        true
                    }
                    _ => false,
                }
            });
        }
        // Last: whoever sees `last` move finds every interest moved with it.
        self.last.send_if_modified(|at| {
            let changed = *at != last;
            *at = last;
            changed
        });
    }

    /// Registers a consumer's interest in the events `filter` accepts: the receiver changes
    /// when such an event is published. It starts at the last event published: the consumer
    /// reads what came before from its cursor.
    pub fn interest(&self, filter: EventFilter) -> watch::Receiver<Matched> {
        let mut interests = self.interests.lock().expect("event log interests lock");
        let last = self.last_seq();
        let (sender, receiver) = watch::channel(Matched { last_match: last, last_seq: last });
        interests.push((filter, sender));
        receiver
    }

    /// Up to `limit` (at most [`EVENTS_PER_READ_MAX`] plus one, to look ahead) events after
    /// `after`, in order; fewer if they are large (4 MiB a read).
    pub fn read(&self, after: u64, limit: usize) -> Result<Vec<Event>, EventLogError> {
        let limit = limit.clamp(1, READ_RECORDS_MAX);
        let records = {
            let mut read = self.reader.lock().expect("event log reader lock");
            read(after, limit, READ_BYTES_MAX)?
        };
        records.into_iter().map(|(seq, bytes)| decode_event(seq, &bytes)).collect()
    }

    /// A receiver of the last seq, which changes when events arrive.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.last.subscribe()
    }
}

/// The event of the record keyed `seq`; an error if it does not decode or holds another seq.
pub fn decode_event(seq: u64, bytes: &[u8]) -> Result<Event, EventLogError> {
    let event = postcard::from_bytes::<Event>(bytes)
        .map_err(|error| EventLogError::Decode { seq, error: error.to_string() })?;
    if event.seq != seq {
        return Err(EventLogError::Decode { seq, error: format!("the record holds event {}", event.seq) });
    }
    Ok(event)
}

/// The bytes of one event in the log.
pub(crate) fn encode_event(event: &Event) -> Vec<u8> {
    postcard::to_allocvec(event).expect("an event encodes")
}
