//! The outbox's state in the core: how many events were emitted, and per consumer how far it
//! has handled them (its cursor). Cursors move by journaled commands, so they survive any
//! restart exactly, and a consumer that restarts goes on from its cursor: every event after
//! it is delivered again (at least once), and consumers are idempotent.
//!
//! The events themselves are not kept here: they are derived from committed batches and
//! written to the event log by the engine.

use crate::text::text_rule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

text_rule!(
    /// A consumer's name: 1 to 32 characters of `a-z`, `0-9` and `_`.
    ConsumerName, ConsumerNameRule, 32, "a consumer name", true,
    |v| if !v.is_empty() && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        Ok(())
    } else {
        Err("a consumer name is 1 to 32 of a-z, 0-9 and _".into())
    }
);

/// Consumers one state keeps cursors for: a handful of effects (the bank rail, webhooks, the
/// read model), never one per client.
pub const CONSUMERS_MAX: usize = 64;

/// A command of the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A consumer handled every event up to and including `to`.
    AdvanceCursor {
        /// Which consumer.
        consumer: ConsumerName,
        /// The last event handled.
        to: u64,
    },
}

/// The outcome of an outbox command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The cursor now (a cursor never moves back; an older position leaves it where it is).
    CursorAdvanced(Result<u64, CursorError>),
}

/// Why a cursor did not move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CursorError {
    /// Past the last event emitted.
    #[error("event {to} has not been emitted (the last is {last})")]
    BeyondLast {
        /// Asked.
        to: u64,
        /// The last event.
        last: u64,
    },
    /// Too many consumers.
    #[error("at most {CONSUMERS_MAX} consumers")]
    TooManyConsumers,
}

/// Event count and cursors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    /// Events emitted so far: the last event's seq.
    pub(crate) last_seq: u64,
    cursors: BTreeMap<ConsumerName, u64>,
}

impl Outbox {
    /// The seq of the last event emitted (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// A consumer's cursor (0: it handled nothing yet).
    pub fn cursor(&self, consumer: &str) -> u64 {
        self.cursors.iter().find(|(name, _)| name.as_str() == consumer).map_or(0, |(_, &at)| at)
    }

    /// Every consumer's cursor.
    pub fn cursors(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.cursors.iter().map(|(name, &at)| (name.as_str(), at))
    }

    /// Applies an outbox command.
    pub fn apply(&mut self, command: &Command) -> Outcome {
        match command {
            Command::AdvanceCursor { consumer, to } => Outcome::CursorAdvanced(self.advance(consumer, *to)),
        }
    }

    fn advance(&mut self, consumer: &ConsumerName, to: u64) -> Result<u64, CursorError> {
        if to > self.last_seq {
            return Err(CursorError::BeyondLast { to, last: self.last_seq });
        }
        if !self.cursors.contains_key(consumer) && self.cursors.len() >= CONSUMERS_MAX {
            return Err(CursorError::TooManyConsumers);
        }
        let at = self.cursors.entry(consumer.clone()).or_insert(0);
        *at = (*at).max(to);
        Ok(*at)
    }
}
