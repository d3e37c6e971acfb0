//! The ledger domain's commands and outcomes: the operators' TigerBeetle-compatible API
//! (`create_accounts`, `create_transfers`). Accounts and transfers travel as TigerBeetle's
//! 128-byte records, at most [`ITEMS_PER_COMMAND_MAX`] per command, so the hot path is a copy,
//! not a field-by-field encoding. The ledger domain emits no events: its clients have their
//! own ids and read their results directly (TigerBeetle has no outbox either).

use super::{
    Account, AccountOutcome, CreateAccountResult, CreateTransferResult, Transfer, TransferOutcome, RECORD_BYTES,
};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// The most items in one command, as in TigerBeetle (a 1 MiB message of 128-byte records
/// less its header). Larger requests must be split by the client.
pub const ITEMS_PER_COMMAND_MAX: usize = 8190;

/// A record type that travels as 128 bytes.
pub trait Record: Copy {
    /// Appends the 128-byte encoding.
    fn encode_record(&self, out: &mut Vec<u8>);
    /// Decodes one record.
    fn decode_record(bytes: &[u8; RECORD_BYTES]) -> Self;
}

impl Record for Account {
    fn encode_record(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
    fn decode_record(bytes: &[u8; RECORD_BYTES]) -> Self {
        Account::decode(bytes)
    }
}

impl Record for Transfer {
    fn encode_record(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
    fn decode_record(bytes: &[u8; RECORD_BYTES]) -> Self {
        Transfer::decode(bytes)
    }
}

/// At most [`ITEMS_PER_COMMAND_MAX`] records, encoded as one byte string of 128-byte records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records<T>(Vec<T>);

impl<T: Record> Records<T> {
    /// Checks the count.
    pub fn new(items: Vec<T>) -> Result<Self, String> {
        if items.len() > ITEMS_PER_COMMAND_MAX {
            return Err(format!("a batch holds at most {ITEMS_PER_COMMAND_MAX} items, found {}", items.len()));
        }
        Ok(Records(items))
    }

    /// The records.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Record> Records<T> {
    /// Appends what `Serialize` writes, postcard's byte string (its length as a varint, then
    /// the bytes), with the records encoded straight into `out` rather than into a buffer of
    /// their own that `serialize_bytes` then copies.
    fn encode_into(&self, out: &mut Vec<u8>) {
        let bytes = self.0.len() * RECORD_BYTES;
        crate::codec::encode_into(&bytes, out);
        out.reserve(bytes);
        for item in &self.0 {
            item.encode_record(out);
        }
    }
}

impl<T: Record> Serialize for Records<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.len() * RECORD_BYTES);
        for item in &self.0 {
            item.encode_record(&mut bytes);
        }
        s.serialize_bytes(&bytes)
    }
}

impl<'de, T: Record> Deserialize<'de> for Records<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: Record> Visitor<'_> for V<T> {
            type Value = Records<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "up to {ITEMS_PER_COMMAND_MAX} records of {RECORD_BYTES} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Records<T>, E> {
                if !v.len().is_multiple_of(RECORD_BYTES) || v.len() / RECORD_BYTES > ITEMS_PER_COMMAND_MAX {
                    return Err(E::custom(format!(
                        "{} bytes is not a whole number of up to {ITEMS_PER_COMMAND_MAX} records",
                        v.len()
                    )));
                }
                Ok(Records(
                    v.chunks_exact(RECORD_BYTES).map(|r| T::decode_record(r.try_into().expect("a record"))).collect(),
                ))
            }
        }
        d.deserialize_bytes(V(std::marker::PhantomData))
    }
}

/// A command of the ledger domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create accounts; one result per account.
    CreateAccounts(Records<Account>),
    /// Create transfers; one result per transfer.
    CreateTransfers(Records<Transfer>),
}

impl Command {
    /// How many events (timestamps) the command uses.
    pub fn events(&self) -> usize {
        match self {
            Command::CreateAccounts(a) => a.len(),
            Command::CreateTransfers(t) => t.len(),
        }
    }

    /// The same command with no records: its encoding is the command's own, up to the
    /// records' byte string (see `crate::command::encode_commands`).
    pub(crate) fn without_records(&self) -> Command {
        match self {
            Command::CreateAccounts(_) => Command::CreateAccounts(Records::default()),
            Command::CreateTransfers(_) => Command::CreateTransfers(Records::default()),
        }
    }

    /// Appends the records' byte string as `Serialize` writes it, encoding them straight
    /// into `out`.
    pub(crate) fn encode_records(&self, out: &mut Vec<u8>) {
        match self {
            Command::CreateAccounts(a) => a.encode_into(out),
            Command::CreateTransfers(t) => t.encode_into(out),
        }
    }
}

/// The outcome of a ledger command: one result per item, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Results of `CreateAccounts`.
    Accounts(Vec<AccountOutcome>),
    /// Results of `CreateTransfers`.
    Transfers(Vec<TransferOutcome>),
}

/// Result codes travel as their position (their public number).
fn result_index<'de, D: Deserializer<'de>, R: Copy>(d: D, all: &[R]) -> Result<R, D::Error> {
    let index = u8::deserialize(d)?;
    all.get(usize::from(index)).copied().ok_or_else(|| de::Error::custom(format!("result code {index} is unknown")))
}

impl Serialize for CreateTransferResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

impl<'de> Deserialize<'de> for CreateTransferResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        result_index(d, CreateTransferResult::ALL)
    }
}

impl Serialize for AccountOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.result as u8, self.timestamp).serialize(s)
    }
}

impl<'de> Deserialize<'de> for AccountOutcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (index, timestamp) = <(u8, u64)>::deserialize(d)?;
        let result = CreateAccountResult::ALL
            .get(usize::from(index))
            .copied()
            .ok_or_else(|| de::Error::custom(format!("result code {index} is unknown")))?;
        Ok(AccountOutcome { result, timestamp })
    }
}

impl Serialize for TransferOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.result, self.timestamp, self.amount).serialize(s)
    }
}

impl<'de> Deserialize<'de> for TransferOutcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (result, timestamp, amount) = <(CreateTransferResult, u64, u128)>::deserialize(d)?;
        Ok(TransferOutcome { result, timestamp, amount })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn records_travel_as_128_byte_records() {
        let transfers = Records::new(vec![Transfer { id: 7, amount: 9, ..Default::default() }; 3]).unwrap();
        let command = Command::CreateTransfers(transfers);
        let bytes = encode(&command);
        assert!(bytes.len() < 3 * RECORD_BYTES + 8, "no per-field overhead");
        assert_eq!(decode::<Command>(&bytes), Ok(command));
        assert!(Records::new(vec![Account::default(); ITEMS_PER_COMMAND_MAX + 1]).is_err());
    }

    #[test]
    fn outcomes_round_trip() {
        let outcome = Outcome::Transfers(vec![TransferOutcome {
            result: CreateTransferResult::ExceedsCredits,
            timestamp: 0,
            amount: 0,
        }]);
        assert_eq!(decode::<Outcome>(&encode(&outcome)), Ok(outcome));
        assert!(decode::<Outcome>(&[1, 1, 250, 0, 0]).is_err(), "an unknown result code");
    }
}
