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
//! writer, which never waits for a reader.

use kasa_core::event::Event;
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

/// The reading end of the event log, shared by every consumer. See the module documentation.
pub struct EventLog {
    reader: Mutex<Box<ReadFn>>,
    last: watch::Sender<u64>,
}

impl EventLog {
    pub(crate) fn new<S: Storage>(mut reader: RecordReader<S>) -> EventLog {
        let last = reader.last_key().unwrap_or(0);
        let read: Box<ReadFn> = Box::new(move |after, records, bytes| reader.read(after, records, bytes));
        EventLog { reader: Mutex::new(read), last: watch::channel(last).0 }
    }

    /// The seq of the last event readers can see (0: none).
    pub fn last_seq(&self) -> u64 {
        *self.last.borrow()
    }

    /// Called by the writer after a sync made events up to `last` durable.
    pub(crate) fn published(&self, last: u64) {
        self.last.send_if_modified(|at| {
            let changed = *at != last;
            *at = last;
            changed
        });
    }

    /// Up to `limit` (at most [`EVENTS_PER_READ_MAX`] plus one, to look ahead) events after
    /// `after`, in order; fewer if they are large (4 MiB a read).
    pub fn read(&self, after: u64, limit: usize) -> Result<Vec<Event>, EventLogError> {
        let limit = limit.clamp(1, READ_RECORDS_MAX);
        let records = {
            let mut read = self.reader.lock().expect("event log reader lock");
            read(after, limit, READ_BYTES_MAX)?
        };
        records
            .into_iter()
            .map(|(seq, bytes)| {
                postcard::from_bytes::<Event>(&bytes)
                    .map_err(|error| EventLogError::Decode { seq, error: error.to_string() })
                    .and_then(|event| {
                        if event.seq == seq {
                            Ok(event)
                        } else {
                            Err(EventLogError::Decode { seq, error: format!("the record holds event {}", event.seq) })
                        }
                    })
            })
            .collect()
    }

    /// A receiver of the last seq, which changes when events arrive.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.last.subscribe()
    }
}

/// The bytes of one event in the log.
pub(crate) fn encode_event(event: &Event) -> Vec<u8> {
    postcard::to_allocvec(event).expect("an event encodes")
}
