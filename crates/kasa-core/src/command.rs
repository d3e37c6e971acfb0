//! Commands and batches, and the journal payload.
//!
//! A command is one request's worth of work (8,190 transfers, a sign-up, a send). The
//! top-level [`Command`] is a thin sum: the core's own commands (the operators' ledger, the
//! outbox's cursors), the two wrappers any command can wear (a session that names the acting
//! user, an idempotency key), and one variant per registered domain, dispatched by domain and
//! then by the domain's kind. **The registry** below is the one place a domain is added (see
//! [`crate::domain`]). A batch is the commands the sequencer gathered from many connections,
//! stamped with one timestamp.
//!
//! **Payload** (the bytes of a journal frame): the 4-byte magic `KSP2` (Kasa payload,
//! version 2), then the postcard encoding of the commands (see [`crate::codec`]). Payloads of
//! version 1 (Kasa 0.1, before domains and currencies) are recognised and refused with an
//! error that says so, never misread. Every command has a byte bound
//! ([`Command::encoded_bytes_max`]), so the sequencer can keep a batch under the frame limit
//! before it encodes anything.

use crate::codec::{self, DecodeError};
use crate::idempotency::{IdempotencyKey, KeyScope};
use crate::text::BoundedVec;
use crate::{ledger, wallet};
use serde::{Deserialize, Serialize};

// The registry of domains: one line each (variant, the state's field and its type, the
// snapshot section id). Append only.
crate::domain::domains! {
    /// Wallets: users, sessions, verifications, bank accounts, fundings, remittances, money
    /// requests, adjustments.
    Wallet(wallets: crate::wallet::Wallets) = 3,
    /// Merchants: onboarding, stores, API keys.
    Merchant(merchants: crate::merchant::Merchants) = 7,
    /// Partners: foreign wallet networks, FX rates and quotes, their payments at Kasa's
    /// stores, settlement windows.
    Partner(partners: crate::partner::Partners) = 8,
}

/// The magic at the start of every payload this version writes.
pub const PAYLOAD_MAGIC: [u8; 4] = *b"KSP2";

/// The most commands one batch may hold (the sequencer's default is 1,024).
pub const COMMANDS_PER_BATCH_MAX: usize = 4096;

/// The bytes of a payload besides its commands: the magic and the number of commands, a
/// varint of at most 3 bytes (up to 2^21 commands). With the commands' bounds
/// ([`Command::encoded_bytes_max`]) it bounds a payload before it is encoded.
pub const PAYLOAD_HEADER_BYTES_MAX: usize = PAYLOAD_MAGIC.len() + 3;
const _: () = assert!(COMMANDS_PER_BATCH_MAX < 1 << 21, "the count of commands takes at most 3 bytes");

pub use crate::domain::SMALL_COMMAND_BYTES_MAX;

/// A wallet command run as the user of a session, resolved at the command's own event time,
/// so that a request needs one trip to the sequencer instead of a read and a write. The
/// command's acting user is filled in from the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCommand {
    /// The hash of the session token.
    pub token_hash: [u8; 32],
    /// The command, with its user field still 0.
    pub command: wallet::Command,
}

/// A command guarded by an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyed {
    /// Who made the request.
    pub scope: KeyScope,
    /// The key.
    pub key: IdempotencyKey,
    /// The hash of the HTTP request, to tell a retry from a different request.
    pub request_hash: [u8; 32],
    /// The guarded command.
    pub command: Inner,
}

impl Command {
    /// A ledger command creating `accounts` (at most [`crate::ITEMS_PER_COMMAND_MAX`]).
    pub fn create_accounts(accounts: Vec<ledger::Account>) -> Command {
        Command::Ledger(ledger::Command::CreateAccounts(
            ledger::Records::new(accounts).expect("a batch within the limit"),
        ))
    }

    /// A ledger command creating `transfers` (at most [`crate::ITEMS_PER_COMMAND_MAX`]).
    pub fn create_transfers(transfers: Vec<ledger::Transfer>) -> Command {
        Command::Ledger(ledger::Command::CreateTransfers(
            ledger::Records::new(transfers).expect("a batch within the limit"),
        ))
    }

    /// Events in the sense of the sequencer's batch budget: ledger items, or 1.
    pub fn events(&self) -> usize {
        match self {
            Command::Ledger(c) => c.events(),
            Command::Keyed(k) => match &k.command {
                Inner::Ledger(c) => c.events(),
                _ => 1,
            },
            _ => 1,
        }
    }
}

/// What happened to a keyed command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyedOutcome {
    /// The key was new: the command was applied, with this outcome (stored with the key).
    Applied(InnerOutcome),
    /// The caller used the key before for the same request: nothing was applied, and this
    /// is the first outcome.
    Replayed(InnerOutcome),
    /// The caller used the key before for a different request: nothing was applied.
    Reused,
    /// The caller holds as many live keys as allowed: nothing was applied.
    TooManyKeys,
    /// The command has too many items to be keyed: nothing was applied.
    NotKeyable,
    /// The key's session (or API key) is not valid: nothing was applied.
    SessionInvalid,
}

/// Commands applied together with one timestamp.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Nanoseconds since the Unix epoch, assigned by the sequencer; strictly greater than the
    /// last event timestamp of the previous batch.
    pub timestamp: u64,
    /// The commands, applied in order.
    pub commands: Vec<Command>,
}

/// Appends the payload of `commands` to `out`.
pub fn encode_commands(commands: &[Command], out: &mut Vec<u8>) {
    assert!(commands.len() <= COMMANDS_PER_BATCH_MAX, "a batch of {} commands", commands.len());
    out.extend_from_slice(&PAYLOAD_MAGIC);
    // The postcard encoding of `commands`, written a command at a time (a sequence is its
    // length, then its items), so that a ledger command's records go straight into `out`.
    // Through serde they would first be encoded into a buffer of their own, a megabyte per
    // batch that `serialize_bytes` then copies: twice the memory traffic just before the
    // batch is applied, which pushed the accounts out of cache (apply_bench: encoding 18 ns
    // per transfer against 12, and account lookups twice as costly).
    codec::encode_into(&commands.len(), out);
    for command in commands {
        match command {
            Command::Ledger(ledger) => {
                // The tags of both enums, from postcard itself: the same command without
                // records, less its last byte (the length, 0, of the empty byte string).
                codec::encode_into(&Command::Ledger(ledger.without_records()), out);
                assert_eq!(out.pop(), Some(0), "the encoding ends with the empty records");
                ledger.encode_records(out);
            }
            _ => codec::encode_into(command, out),
        }
    }
}

/// Decodes a payload written by [`encode_commands`]. Never panics on bad bytes.
pub fn decode_commands(bytes: &[u8]) -> Result<Vec<Command>, DecodeError> {
    let Some(body) = bytes.strip_prefix(&PAYLOAD_MAGIC) else {
        // Version 1 payloads began with a u32 command count, never above 1,024.
        if bytes.len() >= 4 && u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) <= 1024 {
            return Err(DecodeError::invalid(
                "a payload of Kasa 0.1 (before domains and currencies); this version reads only payloads it wrote",
            ));
        }
        return Err(DecodeError::invalid("the payload does not start with the magic KSP2"));
    };
    let commands: BoundedVec<Command, COMMANDS_PER_BATCH_MAX> = codec::decode(body)?;
    Ok(commands.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox;

    /// A payload is exactly the postcard encoding of its commands after the magic, although
    /// `encode_commands` writes ledger records itself: lengths of one, two and three varint
    /// bytes, both ledger commands, and commands of other domains around them.
    #[test]
    fn the_payload_is_the_postcard_encoding_of_the_commands() {
        let transfers = |n: usize| {
            let t =
                |i: usize| ledger::Transfer { id: i as u128 + 1, amount: 7, ledger: 1, code: 1, ..Default::default() };
            Command::create_transfers((0..n).map(t).collect())
        };
        let account = ledger::Account { id: 5, ledger: 1, code: 1, ..Default::default() };
        let commands = vec![
            transfers(0),
            transfers(1),
            Command::Outbox(outbox::Command::AdvanceCursor {
                consumer: outbox::ConsumerName::new("mailer").expect("a valid name"),
                to: 9,
            }),
            transfers(crate::ITEMS_PER_COMMAND_MAX),
            Command::create_accounts(vec![account; 3]),
            transfers(200),
        ];
        let mut payload = Vec::new();
        encode_commands(&commands, &mut payload);
        let mut expected = PAYLOAD_MAGIC.to_vec();
        expected.extend_from_slice(&codec::encode(&commands));
        assert!(payload == expected, "the payload differs from postcard's encoding");
        assert_eq!(decode_commands(&payload), Ok(commands));
    }
}
