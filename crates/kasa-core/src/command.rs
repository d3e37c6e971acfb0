//! Commands and batches, and their binary encoding (the payload of a journal frame).
//!
//! A command is one request's worth of work (for example, 8,189 transfers). A batch is the
//! commands that the sequencer gathered from many connections, stamped with one timestamp.
//! The journal stores the encoded commands; the frame header carries the timestamp and the
//! sequence number, so they are not repeated here.
//!
//! Encoding (little-endian): `u32 command_count`, then per command `u8 kind`, `u32 len`,
//! `len` bytes. Accounts and transfers are arrays of 128-byte records. New command kinds get
//! new `kind` numbers; existing numbers never change meaning.

use crate::idempotency::StoredResponse;
use crate::ledger::{Account, AccountOutcome, Transfer, TransferOutcome, RECORD_BYTES};
use crate::wallet::{get_str, put_str, AccountNumber, FundingKind, Recipient, Tier, WalletOutcome};
use thiserror::Error;

/// The most items in one command, as in TigerBeetle (a 1 MiB message of 128-byte records
/// less its header). Larger requests must be split by the client.
pub const ITEMS_PER_COMMAND_MAX: usize = 8190;

const KIND_CREATE_ACCOUNTS: u8 = 1;
const KIND_CREATE_TRANSFERS: u8 = 2;
const KIND_SIGN_UP: u8 = 3;
const KIND_OPEN_SESSION: u8 = 4;
const KIND_CLOSE_SESSION: u8 = 5;
const KIND_SET_TIER: u8 = 6;
const KIND_UNLOCK_PIN: u8 = 7;
const KIND_SET_PIN_FREE_AMOUNT: u8 = 8;
const KIND_LINK_BANK_ACCOUNT: u8 = 9;
const KIND_START_FUNDING: u8 = 10;
const KIND_SETTLE_FUNDING: u8 = 11;
const KIND_SEND: u8 = 12;
const KIND_CANCEL_REMITTANCE: u8 = 13;
const KIND_REQUEST_MONEY: u8 = 14;
const KIND_SPLIT_BILL: u8 = 15;
const KIND_ANSWER_REQUEST: u8 = 16;
const KIND_KEYED: u8 = 17;
const KIND_STORE_RESPONSE: u8 = 18;
const KIND_AS_SESSION: u8 = 19;
const KIND_SET_TIER_LIMITS: u8 = 20;
const KIND_SET_FEES: u8 = 21;

/// One state change requested by a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Create accounts; one result per account.
    CreateAccounts(Vec<Account>),
    /// Create transfers; one result per transfer.
    CreateTransfers(Vec<Transfer>),
    /// Sign a wallet user up: the user and their wallet account, both or neither.
    SignUp {
        /// The phone number (normalised again by the state).
        phone: String,
        /// The display name.
        name: String,
        /// The Argon2id PHC string of the PIN, hashed by the HTTP layer.
        pin_hash: String,
    },
    /// A login attempt whose PIN the HTTP layer checked.
    OpenSession {
        /// Who.
        user_id: u64,
        /// The hash of the new session's token (the token itself is never stored).
        token_hash: [u8; 32],
        /// Whether the PIN matched.
        pin_ok: bool,
        /// How long the session lasts, in seconds.
        ttl_seconds: u32,
    },
    /// Log out.
    CloseSession {
        /// The session's token hash.
        token_hash: [u8; 32],
    },
    /// An operator sets a user's KYC tier.
    SetTier {
        /// Who.
        user_id: u64,
        /// The new tier.
        tier: Tier,
    },
    /// An operator sets a tier's limits (at most the legal maxima).
    SetTierLimits {
        /// Which tier.
        tier: Tier,
        /// Balance cap, won.
        balance_cap: u64,
        /// Daily outgoing limit, won.
        daily_outgoing: u64,
    },
    /// An operator sets the fees Kasa charges (at most their maxima).
    SetFees {
        /// Won charged per withdrawal to a bank account (0: free).
        withdrawal_fee: u64,
    },
    /// An operator lifts a user's PIN lock.
    UnlockPin {
        /// Who.
        user_id: u64,
    },
    /// A user sets the amount they may move without the PIN (at most the default).
    SetPinFreeAmount {
        /// Who.
        user_id: u64,
        /// Won.
        amount: u64,
    },
    /// A user links a bank account.
    LinkBankAccount {
        /// Who.
        user_id: u64,
        /// The 3-digit bank code.
        bank_code: String,
        /// The account number, digits only (masked when printed).
        account_number: AccountNumber,
        /// The name on the account.
        holder_name: String,
    },
    /// A user starts a top-up or a withdrawal.
    StartFunding {
        /// Who.
        user_id: u64,
        /// From or to which bank account.
        bank_account_id: u64,
        /// Top-up or withdrawal.
        kind: FundingKind,
        /// Won.
        amount: u64,
        /// The HTTP layer's verdict on a PIN sent with the request (`None`: no PIN sent).
        pin_ok: Option<bool>,
    },
    /// A bank's answer to a top-up or withdrawal.
    SettleFunding {
        /// Which.
        funding_id: u64,
        /// Approved (post) or declined (void).
        approved: bool,
    },
    /// A user sends money to another user or to a phone number.
    Send {
        /// The sender.
        from_user: u64,
        /// The recipient.
        to: Recipient,
        /// Won.
        amount: u64,
        /// A note for the recipient.
        memo: String,
        /// The HTTP layer's verdict on a PIN sent with the request (`None`: no PIN sent).
        pin_ok: Option<bool>,
    },
    /// The sender cancels a held remittance.
    CancelRemittance {
        /// The sender.
        user_id: u64,
        /// Which.
        remittance_id: u64,
    },
    /// A user asks another for money.
    RequestMoney {
        /// Who asks.
        requester: u64,
        /// Who is asked.
        from: Recipient,
        /// Won.
        amount: u64,
        /// A note.
        memo: String,
    },
    /// A user asks several friends for their shares of a bill.
    SplitBill {
        /// Who asks.
        requester: u64,
        /// The whole bill.
        total: u64,
        /// (friend, share) pairs.
        shares: Vec<(Recipient, u64)>,
        /// A note.
        memo: String,
    },
    /// A command guarded by an idempotency key: applied only if the caller has not used the
    /// key before (see `idempotency`).
    Keyed {
        /// The caller (a user id, or 0 for the operator).
        scope: u64,
        /// The key.
        key: String,
        /// The hash of the HTTP request, to tell a retry from a different request.
        request_hash: [u8; 32],
        /// The guarded command (never itself `Keyed`).
        command: Box<Command>,
    },
    /// A user's command authenticated by their session, resolved at the command's own event
    /// time, so that a request needs one trip to the sequencer instead of a read and a write.
    /// The inner command's user is filled in from the session.
    AsSession {
        /// The hash of the session token.
        token_hash: [u8; 32],
        /// The command, with its user field still 0.
        command: Box<Command>,
    },
    /// The answer to a keyed request, stored for retries.
    StoreResponse {
        /// The caller.
        scope: u64,
        /// The key.
        key: String,
        /// HTTP status.
        status: u16,
        /// Body.
        body: Vec<u8>,
    },
    /// The payer pays or declines a money request.
    AnswerRequest {
        /// The payer.
        payer: u64,
        /// Which request.
        request_id: u64,
        /// Pay (true) or decline.
        pay: bool,
        /// The HTTP layer's verdict on a PIN sent with the request.
        pin_ok: Option<bool>,
    },
}

impl Command {
    /// The command with its acting user set to `user_id`, for the commands a session may
    /// run; `None` for the others.
    pub fn with_user(&self, user_id: u64) -> Option<Command> {
        match self {
            Command::Send { to, amount, memo, pin_ok, .. } => Some(Command::Send {
                from_user: user_id,
                to: to.clone(),
                amount: *amount,
                memo: memo.clone(),
                pin_ok: *pin_ok,
            }),
            _ => None,
        }
    }

    /// How many events (timestamps) the command uses.
    pub fn events(&self) -> usize {
        match self {
            Command::CreateAccounts(a) => a.len(),
            Command::CreateTransfers(t) => t.len(),
            Command::SignUp { .. }
            | Command::OpenSession { .. }
            | Command::CloseSession { .. }
            | Command::SetTier { .. }
            | Command::UnlockPin { .. }
            | Command::SetTierLimits { .. }
            | Command::SetFees { .. }
            | Command::SetPinFreeAmount { .. }
            | Command::LinkBankAccount { .. }
            | Command::StartFunding { .. } => 1,
            // A settlement resolves a pending transfer: one event.
            Command::SettleFunding { .. }
            | Command::Send { .. }
            | Command::CancelRemittance { .. }
            | Command::RequestMoney { .. }
            | Command::SplitBill { .. }
            | Command::AnswerRequest { .. }
            | Command::StoreResponse { .. } => 1,
            Command::Keyed { command, .. } | Command::AsSession { command, .. } => command.events(),
        }
    }
}

/// The result of one command, in the same order as its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Results of `CreateAccounts`.
    CreateAccounts(Vec<AccountOutcome>),
    /// Results of `CreateTransfers`.
    CreateTransfers(Vec<TransferOutcome>),
    /// The result of a wallet command.
    Wallet(WalletOutcome),
    /// The result of a keyed command.
    Keyed(KeyedOutcome),
    /// `StoreResponse`: whether the answer was stored.
    ResponseStored(bool),
    /// `AsSession`: the inner command's outcome, or `None` if the session is not valid (or
    /// the command cannot be run as a session's user).
    AsSession(Option<Box<Outcome>>),
}

/// What happened to a keyed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyedOutcome {
    /// The key was new: the command was applied, with this outcome.
    Applied(Box<Outcome>),
    /// The caller used the key before; nothing was applied.
    Exists {
        /// Whether the earlier request was the same (method, path, body).
        same_request: bool,
        /// The earlier answer, if it was stored.
        response: Option<StoredResponse>,
    },
    /// The key is empty or too long; nothing was applied.
    InvalidKey,
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

/// A journal payload that cannot be decoded. Carries where it went wrong.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The payload ended early.
    #[error("payload truncated: needed {needed} bytes at offset {offset}, found {found}")]
    Truncated {
        /// Where the read started.
        offset: usize,
        /// How many bytes it needed.
        needed: usize,
        /// How many were left.
        found: usize,
    },
    /// An unknown command kind.
    #[error("unknown command kind {kind} at offset {offset}")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
        /// Where it was.
        offset: usize,
    },
    /// A command whose length is not a whole number of records, or too many items.
    #[error("command at offset {offset} has {len} bytes, expected a multiple of 128 up to {max} records")]
    BadLength {
        /// Where the command started.
        offset: usize,
        /// Its length.
        len: usize,
        /// The item limit.
        max: usize,
    },
    /// Bytes after the last command.
    #[error("{extra} bytes after the last command")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A snapshot that is not a snapshot of this version.
    #[error("snapshot {0}")]
    Snapshot(String),
}

/// Reads a byte slice front to back with bounds checks that name the offset.
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, at: 0 }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let left = self.bytes.len() - self.at;
        if n > left {
            return Err(DecodeError::Truncated { offset: self.at, needed: n, found: left });
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    pub(crate) fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.take(16)?.try_into().expect("16 bytes")))
    }
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
}

fn put_recipient(out: &mut Vec<u8>, to: &Recipient) {
    match to {
        Recipient::User(id) => {
            out.push(1);
            out.extend_from_slice(&id.to_le_bytes());
        }
        Recipient::Phone(phone) => {
            out.push(2);
            put_str(out, phone);
        }
    }
}

fn get_recipient(b: &mut Cursor) -> Result<Recipient, String> {
    match b.u8().map_err(|e| e.to_string())? {
        1 => Ok(Recipient::User(b.u64().map_err(|e| e.to_string())?)),
        2 => Ok(Recipient::Phone(get_str(b)?)),
        other => Err(format!("recipient byte {other}")),
    }
}

fn pin_byte(pin_ok: Option<bool>) -> u8 {
    match pin_ok {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

fn get_pin(b: &mut Cursor) -> Result<Option<bool>, String> {
    match b.u8().map_err(|e| e.to_string())? {
        0 => Ok(None),
        1 => Ok(Some(false)),
        2 => Ok(Some(true)),
        other => Err(format!("pin byte {other}")),
    }
}

/// Appends the encoding of `commands` to `out`.
pub fn encode_commands(commands: &[Command], out: &mut Vec<u8>) {
    out.extend_from_slice(&(commands.len() as u32).to_le_bytes());
    for command in commands {
        let kind = match command {
            Command::CreateAccounts(_) => KIND_CREATE_ACCOUNTS,
            Command::CreateTransfers(_) => KIND_CREATE_TRANSFERS,
            Command::SignUp { .. } => KIND_SIGN_UP,
            Command::OpenSession { .. } => KIND_OPEN_SESSION,
            Command::CloseSession { .. } => KIND_CLOSE_SESSION,
            Command::SetTier { .. } => KIND_SET_TIER,
            Command::UnlockPin { .. } => KIND_UNLOCK_PIN,
            Command::SetTierLimits { .. } => KIND_SET_TIER_LIMITS,
            Command::SetFees { .. } => KIND_SET_FEES,
            Command::SetPinFreeAmount { .. } => KIND_SET_PIN_FREE_AMOUNT,
            Command::LinkBankAccount { .. } => KIND_LINK_BANK_ACCOUNT,
            Command::StartFunding { .. } => KIND_START_FUNDING,
            Command::SettleFunding { .. } => KIND_SETTLE_FUNDING,
            Command::Send { .. } => KIND_SEND,
            Command::CancelRemittance { .. } => KIND_CANCEL_REMITTANCE,
            Command::RequestMoney { .. } => KIND_REQUEST_MONEY,
            Command::SplitBill { .. } => KIND_SPLIT_BILL,
            Command::AnswerRequest { .. } => KIND_ANSWER_REQUEST,
            Command::Keyed { .. } => KIND_KEYED,
            Command::StoreResponse { .. } => KIND_STORE_RESPONSE,
            Command::AsSession { .. } => KIND_AS_SESSION,
        };
        out.push(kind);
        let len_at = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        match command {
            Command::CreateAccounts(accounts) => {
                out.reserve(accounts.len() * RECORD_BYTES);
                accounts.iter().for_each(|a| a.encode(out));
            }
            Command::CreateTransfers(transfers) => {
                out.reserve(transfers.len() * RECORD_BYTES);
                transfers.iter().for_each(|t| t.encode(out));
            }
            Command::SignUp { phone, name, pin_hash } => {
                put_str(out, phone);
                put_str(out, name);
                put_str(out, pin_hash);
            }
            Command::OpenSession { user_id, token_hash, pin_ok, ttl_seconds } => {
                out.extend_from_slice(&user_id.to_le_bytes());
                out.extend_from_slice(token_hash);
                out.push(*pin_ok as u8);
                out.extend_from_slice(&ttl_seconds.to_le_bytes());
            }
            Command::CloseSession { token_hash } => out.extend_from_slice(token_hash),
            Command::SetTier { user_id, tier } => {
                out.extend_from_slice(&user_id.to_le_bytes());
                out.push(*tier as u8);
            }
            Command::UnlockPin { user_id } => out.extend_from_slice(&user_id.to_le_bytes()),
            Command::SetTierLimits { tier, balance_cap, daily_outgoing } => {
                out.push(*tier as u8);
                out.extend_from_slice(&balance_cap.to_le_bytes());
                out.extend_from_slice(&daily_outgoing.to_le_bytes());
            }
            Command::SetFees { withdrawal_fee } => out.extend_from_slice(&withdrawal_fee.to_le_bytes()),
            Command::SetPinFreeAmount { user_id, amount } => {
                out.extend_from_slice(&user_id.to_le_bytes());
                out.extend_from_slice(&amount.to_le_bytes());
            }
            Command::LinkBankAccount { user_id, bank_code, account_number, holder_name } => {
                out.extend_from_slice(&user_id.to_le_bytes());
                put_str(out, bank_code);
                put_str(out, account_number.as_str());
                put_str(out, holder_name);
            }
            Command::StartFunding { user_id, bank_account_id, kind, amount, pin_ok } => {
                out.extend_from_slice(&user_id.to_le_bytes());
                out.extend_from_slice(&bank_account_id.to_le_bytes());
                out.push(*kind as u8);
                out.extend_from_slice(&amount.to_le_bytes());
                out.push(pin_byte(*pin_ok));
            }
            Command::SettleFunding { funding_id, approved } => {
                out.extend_from_slice(&funding_id.to_le_bytes());
                out.push(*approved as u8);
            }
            Command::Send { from_user, to, amount, memo, pin_ok } => {
                out.extend_from_slice(&from_user.to_le_bytes());
                put_recipient(out, to);
                out.extend_from_slice(&amount.to_le_bytes());
                put_str(out, memo);
                out.push(pin_byte(*pin_ok));
            }
            Command::RequestMoney { requester, from, amount, memo } => {
                out.extend_from_slice(&requester.to_le_bytes());
                put_recipient(out, from);
                out.extend_from_slice(&amount.to_le_bytes());
                put_str(out, memo);
            }
            Command::SplitBill { requester, total, shares, memo } => {
                out.extend_from_slice(&requester.to_le_bytes());
                out.extend_from_slice(&total.to_le_bytes());
                out.extend_from_slice(&(shares.len() as u32).to_le_bytes());
                for (who, amount) in shares {
                    put_recipient(out, who);
                    out.extend_from_slice(&amount.to_le_bytes());
                }
                put_str(out, memo);
            }
            Command::Keyed { scope, key, request_hash, command } => {
                out.extend_from_slice(&scope.to_le_bytes());
                put_str(out, key);
                out.extend_from_slice(request_hash);
                encode_commands(std::slice::from_ref(command.as_ref()), out);
            }
            Command::AsSession { token_hash, command } => {
                out.extend_from_slice(token_hash);
                encode_commands(std::slice::from_ref(command.as_ref()), out);
            }
            Command::StoreResponse { scope, key, status, body } => {
                out.extend_from_slice(&scope.to_le_bytes());
                put_str(out, key);
                out.extend_from_slice(&status.to_le_bytes());
                out.extend_from_slice(&(body.len() as u32).to_le_bytes());
                out.extend_from_slice(body);
            }
            Command::AnswerRequest { payer, request_id, pay, pin_ok } => {
                out.extend_from_slice(&payer.to_le_bytes());
                out.extend_from_slice(&request_id.to_le_bytes());
                out.push(*pay as u8);
                out.push(pin_byte(*pin_ok));
            }
            Command::CancelRemittance { user_id, remittance_id } => {
                out.extend_from_slice(&user_id.to_le_bytes());
                out.extend_from_slice(&remittance_id.to_le_bytes());
            }
        }
        let len = (out.len() - len_at - 4) as u32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Decodes commands written by [`encode_commands`]. Never panics on bad bytes.
pub fn decode_commands(bytes: &[u8]) -> Result<Vec<Command>, DecodeError> {
    let mut c = Cursor::new(bytes);
    let count = c.u32()? as usize;
    let mut commands = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let offset = c.at;
        let kind = c.u8()?;
        let len = c.u32()? as usize;
        let body = c.take(len)?;
        let records = || {
            if !len.is_multiple_of(RECORD_BYTES) || len / RECORD_BYTES > ITEMS_PER_COMMAND_MAX {
                return Err(DecodeError::BadLength { offset, len, max: ITEMS_PER_COMMAND_MAX });
            }
            Ok(body.chunks_exact(RECORD_BYTES).map(|r| r.try_into().expect("128-byte chunk")))
        };
        let mut b = Cursor::new(body);
        let bad = |what: String| DecodeError::Snapshot(format!("command at offset {offset}: {what}"));
        let command = match kind {
            KIND_CREATE_ACCOUNTS => Command::CreateAccounts(records()?.map(Account::decode).collect()),
            KIND_CREATE_TRANSFERS => Command::CreateTransfers(records()?.map(Transfer::decode).collect()),
            KIND_SIGN_UP => Command::SignUp {
                phone: get_str(&mut b).map_err(bad)?,
                name: get_str(&mut b).map_err(bad)?,
                pin_hash: get_str(&mut b).map_err(bad)?,
            },
            KIND_OPEN_SESSION => Command::OpenSession {
                user_id: b.u64()?,
                token_hash: b.take(32)?.try_into().expect("32 bytes"),
                pin_ok: match b.u8()? {
                    0 => false,
                    1 => true,
                    other => return Err(bad(format!("pin_ok byte {other}"))),
                },
                ttl_seconds: b.u32()?,
            },
            KIND_CLOSE_SESSION => Command::CloseSession { token_hash: b.take(32)?.try_into().expect("32 bytes") },
            KIND_SET_TIER => {
                let user_id = b.u64()?;
                let byte = b.u8()?;
                let tier = match byte {
                    1 => Tier::Basic,
                    2 => Tier::Verified,
                    other => return Err(bad(format!("tier byte {other}"))),
                };
                Command::SetTier { user_id, tier }
            }
            KIND_UNLOCK_PIN => Command::UnlockPin { user_id: b.u64()? },
            KIND_SET_TIER_LIMITS => {
                let tier = match b.u8()? {
                    1 => Tier::Basic,
                    2 => Tier::Verified,
                    other => return Err(bad(format!("tier byte {other}"))),
                };
                Command::SetTierLimits { tier, balance_cap: b.u64()?, daily_outgoing: b.u64()? }
            }
            KIND_SET_FEES => Command::SetFees { withdrawal_fee: b.u64()? },
            KIND_SET_PIN_FREE_AMOUNT => Command::SetPinFreeAmount { user_id: b.u64()?, amount: b.u64()? },
            KIND_LINK_BANK_ACCOUNT => Command::LinkBankAccount {
                user_id: b.u64()?,
                bank_code: get_str(&mut b).map_err(bad)?,
                account_number: AccountNumber(get_str(&mut b).map_err(bad)?),
                holder_name: get_str(&mut b).map_err(bad)?,
            },
            KIND_START_FUNDING => {
                let user_id = b.u64()?;
                let bank_account_id = b.u64()?;
                let kind = match b.u8()? {
                    1 => FundingKind::TopUp,
                    2 => FundingKind::Withdrawal,
                    other => return Err(bad(format!("funding kind byte {other}"))),
                };
                let amount = b.u64()?;
                let pin_ok = get_pin(&mut b).map_err(bad)?;
                Command::StartFunding { user_id, bank_account_id, kind, amount, pin_ok }
            }
            KIND_SEND => {
                let from_user = b.u64()?;
                let to = get_recipient(&mut b).map_err(bad)?;
                let amount = b.u64()?;
                let memo = get_str(&mut b).map_err(bad)?;
                let pin_ok = get_pin(&mut b).map_err(bad)?;
                Command::Send { from_user, to, amount, memo, pin_ok }
            }
            KIND_REQUEST_MONEY => Command::RequestMoney {
                requester: b.u64()?,
                from: get_recipient(&mut b).map_err(bad)?,
                amount: b.u64()?,
                memo: get_str(&mut b).map_err(bad)?,
            },
            KIND_SPLIT_BILL => {
                let requester = b.u64()?;
                let total = b.u64()?;
                let n = b.u32()? as usize;
                if n > crate::wallet::requests::SHARES_MAX {
                    return Err(bad(format!("{n} shares")));
                }
                let mut shares = Vec::with_capacity(n);
                for _ in 0..n {
                    shares.push((get_recipient(&mut b).map_err(bad)?, b.u64()?));
                }
                Command::SplitBill { requester, total, shares, memo: get_str(&mut b).map_err(bad)? }
            }
            KIND_KEYED => {
                let scope = b.u64()?;
                let key = get_str(&mut b).map_err(bad)?;
                let request_hash: [u8; 32] = b.take(32)?.try_into().expect("32 bytes");
                let nested = b.take(b.remaining())?;
                let mut inner = decode_commands(nested)?;
                if inner.len() != 1 || matches!(inner[0], Command::Keyed { .. }) {
                    return Err(bad("a keyed command holds exactly one command that is not keyed".into()));
                }
                if let Command::AsSession { command: nested, .. } = &inner[0] {
                    if matches!(nested.as_ref(), Command::Keyed { .. } | Command::AsSession { .. }) {
                        return Err(bad("a session command holds exactly one plain command".into()));
                    }
                }
                Command::Keyed { scope, key, request_hash, command: Box::new(inner.remove(0)) }
            }
            KIND_AS_SESSION => {
                let token_hash: [u8; 32] = b.take(32)?.try_into().expect("32 bytes");
                let nested = b.take(b.remaining())?;
                let mut inner = decode_commands(nested)?;
                if inner.len() != 1 || matches!(inner[0], Command::Keyed { .. } | Command::AsSession { .. }) {
                    return Err(bad("a session command holds exactly one plain command".into()));
                }
                Command::AsSession { token_hash, command: Box::new(inner.remove(0)) }
            }
            KIND_STORE_RESPONSE => {
                let scope = b.u64()?;
                let key = get_str(&mut b).map_err(bad)?;
                let status = u16::from_le_bytes(b.take(2)?.try_into().expect("2 bytes"));
                let len = b.u32()? as usize;
                if len > crate::idempotency::RESPONSE_BYTES_MAX {
                    return Err(bad(format!("a stored answer of {len} bytes")));
                }
                Command::StoreResponse { scope, key, status, body: b.take(len)?.to_vec() }
            }
            KIND_ANSWER_REQUEST => Command::AnswerRequest {
                payer: b.u64()?,
                request_id: b.u64()?,
                pay: match b.u8()? {
                    0 => false,
                    1 => true,
                    other => return Err(bad(format!("pay byte {other}"))),
                },
                pin_ok: get_pin(&mut b).map_err(bad)?,
            },
            KIND_CANCEL_REMITTANCE => Command::CancelRemittance { user_id: b.u64()?, remittance_id: b.u64()? },
            KIND_SETTLE_FUNDING => Command::SettleFunding {
                funding_id: b.u64()?,
                approved: match b.u8()? {
                    0 => false,
                    1 => true,
                    other => return Err(bad(format!("approved byte {other}"))),
                },
            },
            kind => return Err(DecodeError::UnknownKind { kind, offset }),
        };
        if !matches!(kind, KIND_CREATE_ACCOUNTS | KIND_CREATE_TRANSFERS) && b.remaining() != 0 {
            return Err(bad(format!("{} bytes after the fields", b.remaining())));
        }
        commands.push(command);
    }
    if c.remaining() != 0 {
        return Err(DecodeError::TrailingBytes { extra: c.remaining() });
    }
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::TransferFlags;

    #[test]
    fn commands_round_trip() {
        let commands = vec![
            Command::CreateAccounts(vec![Account { id: 1, ledger: 1, code: 1, ..Default::default() }]),
            Command::CreateTransfers(vec![Transfer {
                id: 2,
                amount: 5,
                flags: TransferFlags(TransferFlags::LINKED),
                ..Default::default()
            }]),
            Command::CreateTransfers(vec![]),
            Command::SignUp { phone: "+821012345678".into(), name: "민지".into(), pin_hash: "$argon2id$x".into() },
            Command::OpenSession { user_id: 7, token_hash: [3; 32], pin_ok: true, ttl_seconds: 60 },
            Command::CloseSession { token_hash: [4; 32] },
            Command::SetTier { user_id: 7, tier: Tier::Verified },
            Command::UnlockPin { user_id: 7 },
            Command::SetTierLimits { tier: Tier::Basic, balance_cap: 300_000, daily_outgoing: 100_000 },
            Command::SetPinFreeAmount { user_id: 7, amount: 0 },
            Command::SetFees { withdrawal_fee: 500 },
            Command::LinkBankAccount {
                user_id: 7,
                bank_code: "004".into(),
                account_number: "1234567890".into(),
                holder_name: "김민지".into(),
            },
            Command::StartFunding {
                user_id: 7,
                bank_account_id: 1,
                kind: FundingKind::Withdrawal,
                amount: 10_000,
                pin_ok: Some(true),
            },
            Command::SettleFunding { funding_id: 1, approved: false },
            Command::Send {
                from_user: 7,
                to: Recipient::Phone("+821099998888".into()),
                amount: 5_000,
                memo: "점심".into(),
                pin_ok: None,
            },
            Command::Send { from_user: 7, to: Recipient::User(8), amount: 1, memo: String::new(), pin_ok: Some(false) },
            Command::CancelRemittance { user_id: 7, remittance_id: 1 },
            Command::RequestMoney { requester: 7, from: Recipient::User(8), amount: 9, memo: "커피".into() },
            Command::SplitBill {
                requester: 7,
                total: 30_000,
                shares: vec![(Recipient::User(8), 10_000), (Recipient::Phone("01012345678".into()), 10_000)],
                memo: "회식".into(),
            },
            Command::AnswerRequest { payer: 8, request_id: 1, pay: true, pin_ok: None },
            Command::Keyed {
                scope: 8,
                key: "order-42".into(),
                request_hash: [9; 32],
                command: Box::new(Command::CancelRemittance { user_id: 8, remittance_id: 2 }),
            },
            Command::StoreResponse { scope: 8, key: "order-42".into(), status: 201, body: b"{}".to_vec() },
            Command::AsSession {
                token_hash: [5; 32],
                command: Box::new(Command::Send {
                    from_user: 0,
                    to: Recipient::User(3),
                    amount: 10,
                    memo: String::new(),
                    pin_ok: None,
                }),
            },
        ];
        let mut bytes = Vec::new();
        encode_commands(&commands, &mut bytes);
        assert_eq!(decode_commands(&bytes).unwrap(), commands);
    }

    #[test]
    fn a_bank_account_number_never_prints_whole() {
        let link = Command::LinkBankAccount {
            user_id: 7,
            bank_code: "004".into(),
            account_number: "110123456789".into(),
            holder_name: "김민지".into(),
        };
        let printed = format!("{link:?}");
        assert!(!printed.contains("110123456789") && printed.contains("********6789"), "{printed}");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let commands = vec![Command::CreateTransfers(vec![Transfer::default(); 3])];
        let mut bytes = Vec::new();
        encode_commands(&commands, &mut bytes);
        for len in 0..bytes.len() {
            assert!(decode_commands(&bytes[..len]).is_err(), "prefix of {len} bytes decoded");
        }
        let mut bad_kind = bytes.clone();
        bad_kind[4] = 99;
        assert_eq!(decode_commands(&bad_kind), Err(DecodeError::UnknownKind { kind: 99, offset: 4 }));
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(decode_commands(&extra), Err(DecodeError::TrailingBytes { extra: 1 }));
    }
}
