//! The two objects of the ledger, `Account` and `Transfer`, with their flags and their fixed
//! 128-byte little-endian encoding (the same field set and sizes as TigerBeetle's).
//!
//! The encoding is used by the journal and by snapshots, so it is part of the on-disk format:
//! change it only together with a format version bump. This module does no validation; the
//! ledger decides what is a valid account or transfer and says why in its result codes.

/// The size of one encoded account or transfer, in bytes.
pub const RECORD_BYTES: usize = 128;

/// Flags of an account. Bits and names follow TigerBeetle so that its users feel at home.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccountFlags(pub u16);

impl AccountFlags {
    /// This account and the next one in the batch succeed or fail together.
    pub const LINKED: u16 = 1 << 0;
    /// Debits (pending plus posted) may never exceed posted credits: a wallet that cannot go negative.
    pub const DEBITS_MUST_NOT_EXCEED_CREDITS: u16 = 1 << 1;
    /// Credits (pending plus posted) may never exceed posted debits.
    pub const CREDITS_MUST_NOT_EXCEED_DEBITS: u16 = 1 << 2;
    /// Keep the balance after every transfer, for `account_balances` queries.
    pub const HISTORY: u16 = 1 << 3;
    /// The account accepts no new transfers (set at creation, or by a closing transfer).
    pub const CLOSED: u16 = 1 << 5;
    /// Every bit that has a meaning; any other bit set is `reserved_flag`.
    pub const KNOWN: u16 = Self::LINKED
        | Self::DEBITS_MUST_NOT_EXCEED_CREDITS
        | Self::CREDITS_MUST_NOT_EXCEED_DEBITS
        | Self::HISTORY
        | Self::CLOSED;
    /// The names used in JSON, with their bits, in bit order.
    pub const NAMES: &'static [(&'static str, u16)] = &[
        ("linked", Self::LINKED),
        ("debits_must_not_exceed_credits", Self::DEBITS_MUST_NOT_EXCEED_CREDITS),
        ("credits_must_not_exceed_debits", Self::CREDITS_MUST_NOT_EXCEED_DEBITS),
        ("history", Self::HISTORY),
        ("closed", Self::CLOSED),
    ];

    /// Whether every bit of `flag` is set.
    pub fn has(self, flag: u16) -> bool {
        self.0 & flag == flag
    }
}

/// Flags of a transfer. Bits and names follow TigerBeetle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TransferFlags(pub u16);

impl TransferFlags {
    /// This transfer and the next one in the batch succeed or fail together.
    pub const LINKED: u16 = 1 << 0;
    /// Reserve the amount (phase one of a two-phase transfer).
    pub const PENDING: u16 = 1 << 1;
    /// Post (all or part of) the pending transfer named by `pending_id`.
    pub const POST_PENDING_TRANSFER: u16 = 1 << 2;
    /// Void the pending transfer named by `pending_id`.
    pub const VOID_PENDING_TRANSFER: u16 = 1 << 3;
    /// Move at most `amount`, bounded by what the debit account has available.
    pub const BALANCING_DEBIT: u16 = 1 << 4;
    /// Move at most `amount`, bounded by what the credit account can take.
    pub const BALANCING_CREDIT: u16 = 1 << 5;
    /// A pending transfer that closes the debit account (voiding it reopens the account).
    pub const CLOSING_DEBIT: u16 = 1 << 6;
    /// A pending transfer that closes the credit account (voiding it reopens the account).
    pub const CLOSING_CREDIT: u16 = 1 << 7;
    /// Every bit that has a meaning; any other bit set is `reserved_flag`.
    pub const KNOWN: u16 = Self::LINKED
        | Self::PENDING
        | Self::POST_PENDING_TRANSFER
        | Self::VOID_PENDING_TRANSFER
        | Self::BALANCING_DEBIT
        | Self::BALANCING_CREDIT
        | Self::CLOSING_DEBIT
        | Self::CLOSING_CREDIT;
    /// The names used in JSON, with their bits, in bit order.
    pub const NAMES: &'static [(&'static str, u16)] = &[
        ("linked", Self::LINKED),
        ("pending", Self::PENDING),
        ("post_pending_transfer", Self::POST_PENDING_TRANSFER),
        ("void_pending_transfer", Self::VOID_PENDING_TRANSFER),
        ("balancing_debit", Self::BALANCING_DEBIT),
        ("balancing_credit", Self::BALANCING_CREDIT),
        ("closing_debit", Self::CLOSING_DEBIT),
        ("closing_credit", Self::CLOSING_CREDIT),
    ];

    /// Whether every bit of `flag` is set.
    pub fn has(self, flag: u16) -> bool {
        self.0 & flag == flag
    }
}

/// A ledger account: balances are kept as four monotonic counters, as in TigerBeetle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Chosen by the client; neither 0 nor 2^128-1.
    pub id: u128,
    /// Sum of pending debits.
    pub debits_pending: u128,
    /// Sum of posted debits.
    pub debits_posted: u128,
    /// Sum of pending credits.
    pub credits_pending: u128,
    /// Sum of posted credits.
    pub credits_posted: u128,
    /// Opaque to the ledger: a foreign key, for example.
    pub user_data_128: u128,
    /// Opaque to the ledger.
    pub user_data_64: u64,
    /// Opaque to the ledger.
    pub user_data_32: u32,
    /// Must be zero.
    pub reserved: u32,
    /// The ledger (one per currency or asset); transfers only move value within one ledger.
    pub ledger: u32,
    /// The account type, chosen by the application.
    pub code: u16,
    /// See [`AccountFlags`].
    pub flags: AccountFlags,
    /// Assigned by the engine when the account is created; must be zero in a request.
    pub timestamp: u64,
}

/// A transfer of `amount` from `debit_account_id` to `credit_account_id` on one ledger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Chosen by the client; the end-to-end idempotency key.
    pub id: u128,
    /// The account debited.
    pub debit_account_id: u128,
    /// The account credited.
    pub credit_account_id: u128,
    /// In minor units of the ledger's asset.
    pub amount: u128,
    /// For post and void: the pending transfer they resolve.
    pub pending_id: u128,
    /// Opaque to the ledger.
    pub user_data_128: u128,
    /// Opaque to the ledger.
    pub user_data_64: u64,
    /// Opaque to the ledger.
    pub user_data_32: u32,
    /// For pending transfers: seconds after which the reservation expires (0 = never).
    pub timeout: u32,
    /// The ledger; must match both accounts.
    pub ledger: u32,
    /// The transfer type, chosen by the application.
    pub code: u16,
    /// See [`TransferFlags`].
    pub flags: TransferFlags,
    /// Assigned by the engine; must be zero in a request.
    pub timestamp: u64,
}

/// Reads little-endian integers from a fixed record; the caller guarantees the length.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.at..self.at + N]);
        self.at += N;
        out
    }
    fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
}

impl Account {
    /// Appends the 128-byte encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.debits_pending.to_le_bytes());
        out.extend_from_slice(&self.debits_posted.to_le_bytes());
        out.extend_from_slice(&self.credits_pending.to_le_bytes());
        out.extend_from_slice(&self.credits_posted.to_le_bytes());
        out.extend_from_slice(&self.user_data_128.to_le_bytes());
        out.extend_from_slice(&self.user_data_64.to_le_bytes());
        out.extend_from_slice(&self.user_data_32.to_le_bytes());
        out.extend_from_slice(&self.reserved.to_le_bytes());
        out.extend_from_slice(&self.ledger.to_le_bytes());
        out.extend_from_slice(&self.code.to_le_bytes());
        out.extend_from_slice(&self.flags.0.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        debug_assert_eq!(out.len() - start, RECORD_BYTES);
    }

    /// Decodes one record; `bytes` must be exactly [`RECORD_BYTES`] long.
    pub fn decode(bytes: &[u8; RECORD_BYTES]) -> Account {
        let mut r = Reader { bytes, at: 0 };
        Account {
            id: r.u128(),
            debits_pending: r.u128(),
            debits_posted: r.u128(),
            credits_pending: r.u128(),
            credits_posted: r.u128(),
            user_data_128: r.u128(),
            user_data_64: r.u64(),
            user_data_32: r.u32(),
            reserved: r.u32(),
            ledger: r.u32(),
            code: r.u16(),
            flags: AccountFlags(r.u16()),
            timestamp: r.u64(),
        }
    }

    /// Debits that the account has committed to: pending plus posted.
    pub fn debits(&self) -> Option<u128> {
        self.debits_pending.checked_add(self.debits_posted)
    }

    /// Credits that the account has committed to: pending plus posted.
    pub fn credits(&self) -> Option<u128> {
        self.credits_pending.checked_add(self.credits_posted)
    }
}

impl Transfer {
    /// Appends the 128-byte encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.debit_account_id.to_le_bytes());
        out.extend_from_slice(&self.credit_account_id.to_le_bytes());
        out.extend_from_slice(&self.amount.to_le_bytes());
        out.extend_from_slice(&self.pending_id.to_le_bytes());
        out.extend_from_slice(&self.user_data_128.to_le_bytes());
        out.extend_from_slice(&self.user_data_64.to_le_bytes());
        out.extend_from_slice(&self.user_data_32.to_le_bytes());
        out.extend_from_slice(&self.timeout.to_le_bytes());
        out.extend_from_slice(&self.ledger.to_le_bytes());
        out.extend_from_slice(&self.code.to_le_bytes());
        out.extend_from_slice(&self.flags.0.to_le_bytes());
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        debug_assert_eq!(out.len() - start, RECORD_BYTES);
    }

    /// Decodes one record; `bytes` must be exactly [`RECORD_BYTES`] long.
    pub fn decode(bytes: &[u8; RECORD_BYTES]) -> Transfer {
        let mut r = Reader { bytes, at: 0 };
        Transfer {
            id: r.u128(),
            debit_account_id: r.u128(),
            credit_account_id: r.u128(),
            amount: r.u128(),
            pending_id: r.u128(),
            user_data_128: r.u128(),
            user_data_64: r.u64(),
            user_data_32: r.u32(),
            timeout: r.u32(),
            ledger: r.u32(),
            code: r.u16(),
            flags: TransferFlags(r.u16()),
            timestamp: r.u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_are_128_bytes() {
        let t = Transfer {
            id: u128::MAX - 1,
            debit_account_id: 7,
            credit_account_id: 9,
            amount: 1 << 100,
            pending_id: 3,
            user_data_128: 11,
            user_data_64: 12,
            user_data_32: 13,
            timeout: 14,
            ledger: 15,
            code: 16,
            flags: TransferFlags(TransferFlags::PENDING),
            timestamp: 17,
        };
        let mut out = Vec::new();
        t.encode(&mut out);
        assert_eq!(out.len(), RECORD_BYTES);
        assert_eq!(Transfer::decode(out.as_slice().try_into().unwrap()), t);
        let a = Account {
            id: 1,
            debits_pending: 2,
            debits_posted: 3,
            credits_pending: 4,
            credits_posted: 5,
            user_data_128: 6,
            user_data_64: 7,
            user_data_32: 8,
            reserved: 0,
            ledger: 9,
            code: 10,
            flags: AccountFlags(AccountFlags::HISTORY),
            timestamp: 11,
        };
        let mut out = Vec::new();
        a.encode(&mut out);
        assert_eq!(out.len(), RECORD_BYTES);
        assert_eq!(Account::decode(out.as_slice().try_into().unwrap()), a);
    }
}
