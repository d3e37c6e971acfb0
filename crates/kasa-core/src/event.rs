//! Domain events: what applying a command changed, for everything outside the core that must
//! act on it (the bank rail, and next webhooks, partners and the PostgreSQL read model).
//!
//! Applying a batch emits events in order; the state numbers them with a global sequence
//! number and the batch's time. They are derived from committed batches, so replaying the
//! journal emits the same events with the same numbers: the engine writes them to the event
//! log after each commit, and consumers read them from there with durable cursors
//! ([`crate::outbox`]). [`EventKind`] is a thin sum of the domains' own events, generated from
//! the registry in [`crate::command`]; variants are only appended.

use serde::{Deserialize, Serialize};

pub use crate::command::EventKind;

/// One event, numbered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its place in the log: 1, 2, 3, ... without gaps, in the order commands were applied.
    pub seq: u64,
    /// The time of the command (or the batch) that emitted it.
    pub timestamp: u64,
    /// What happened.
    pub kind: EventKind,
}
