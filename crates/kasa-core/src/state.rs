//! The whole deterministic state and the one function that changes it: [`State::apply`].
//!
//! `apply` takes a batch (commands plus a timestamp chosen by the sequencer) and returns one
//! outcome per command. It reads no clock, does no I/O and uses no randomness, so the same
//! batches applied to an empty state give the same state, byte for byte; [`State::hash`]
//! proves it. Snapshots are the same canonical byte stream that the hash is computed over.

use crate::command::{Batch, Command, Cursor, DecodeError, KeyedOutcome, Outcome};
use crate::idempotency::IdempotencyKeys;
use crate::ledger::{Account, AccountBalance, Ledger, PendingStatus, Transfer, RECORD_BYTES};
use crate::wallet::{WalletOutcome, Wallets, NANOS_PER_SECOND_WALLET};
use thiserror::Error;

const SNAPSHOT_MAGIC: &[u8; 8] = b"KASASTAT";
/// Version 2 added the wallet section after the ledger, version 3 funding, remittances,
/// requests and the PIN-free amount in it, version 4 idempotency keys after it, version 5
/// the fees after those. Versions 1 (ledger only), 3 and 4 still load, with what they lack
/// empty (no fees). Version 2 lived for one development commit and is not read.
const SNAPSHOT_VERSION: u32 = 5;

/// The most balance entries one account's history may claim in a snapshot; guards the
/// decoder's allocation against a corrupt count.
const HISTORY_ENTRIES_MAX: u64 = 1 << 32;

/// Starts the failed transfer ids (`Ledger::failed_transfer_ids`) after the balance histories:
/// the tag, a `u64` count, the ids. Written only when there are any, so that without them the
/// bytes are what version 5 always was and older snapshots load (with none). What otherwise
/// follows the histories, the wallet section's `u64` user count (or nothing, in version 1),
/// is never these bytes: no snapshot holds 5.5 * 10^18 users.
const FAILED_IDS_TAG: &[u8; 8] = b"KASAFAIL";

fn records<'a>(c: &mut Cursor<'a>, what: &str) -> Result<&'a [u8], DecodeError> {
    let count = c.u64()?;
    let bytes = count
        .checked_mul(RECORD_BYTES as u64)
        .filter(|&b| b <= c.remaining() as u64)
        .ok_or_else(|| DecodeError::Snapshot(format!("claims {count} {what}, more than its bytes hold")))?;
    c.take(bytes as usize)
}

/// A batch that the state refuses as a whole. Only a buggy sequencer or a journal that was
/// tampered with produces one; the state is unchanged.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ApplyError {
    /// Batch timestamps must move forward past every event of the previous batch.
    #[error("batch timestamp {found} is not after the last event timestamp {last}")]
    TimestampNotIncreasing {
        /// The last event timestamp in the state.
        last: u64,
        /// The batch's timestamp.
        found: u64,
    },
    /// The batch's events would run past the largest timestamp.
    #[error("batch timestamp {timestamp} with {events} events overflows")]
    TimestampOverflow {
        /// The batch's timestamp.
        timestamp: u64,
        /// Its number of events.
        events: usize,
    },
}

/// Everything Kasa knows. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct State {
    ledger: Ledger,
    wallets: Wallets,
    idempotency: IdempotencyKeys,
    /// Timestamp of the last event applied (or of the last empty batch).
    last_timestamp: u64,
    /// Number of batches applied.
    batches: u64,
    /// Whether to check the per-user limits after every command (not part of the state).
    audit_limits: bool,
    /// The first limit the audit found broken, with the command's first event timestamp.
    limit_violation: Option<String>,
}

/// Where canonical bytes go: into a snapshot buffer, or into a hasher.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for blake3::Hasher {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl State {
    /// The ledger, for queries.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Wallet users and sessions, for queries.
    pub fn wallets(&self) -> &Wallets {
        &self.wallets
    }

    /// Idempotency keys, for queries.
    pub fn idempotency(&self) -> &IdempotencyKeys {
        &self.idempotency
    }

    /// Makes room for `additional` more transfers ahead of a replay (see
    /// [`Ledger::reserve_transfers`]).
    pub fn reserve_transfers(&mut self, additional: usize) {
        self.ledger.reserve_transfers(additional);
    }

    /// The timestamp of the last event; the next batch must be stamped after it.
    pub fn last_timestamp(&self) -> u64 {
        self.last_timestamp
    }

    /// Number of batches applied since the beginning.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The earliest time at which a batch (even an empty one) would change the state by
    /// expiring a pending transfer.
    pub fn next_expiry(&self) -> Option<u64> {
        self.ledger.next_expiry()
    }

    /// Turns the per-command audit of the per-user limits on or off (off by default: the
    /// commands enforce the limits themselves; `kasa verify` and the tests audit them). See
    /// [`Wallets::check_limits_of_new_transfers`].
    pub fn audit_limits(&mut self, on: bool) {
        self.audit_limits = on;
    }

    /// The first limit the audit found broken since the last call, if any.
    pub fn take_limit_violation(&mut self) -> Option<String> {
        self.limit_violation.take()
    }

    /// Applies a batch: first expires pending transfers whose timeout has passed at the
    /// batch's timestamp, then runs each command. Event `i` of the batch (counting items
    /// across commands) gets timestamp `batch.timestamp + i`.
    pub fn apply(&mut self, batch: &Batch) -> Result<Vec<Outcome>, ApplyError> {
        if batch.timestamp <= self.last_timestamp {
            return Err(ApplyError::TimestampNotIncreasing { last: self.last_timestamp, found: batch.timestamp });
        }
        let events: usize = batch.commands.iter().map(Command::events).sum();
        if batch.timestamp.checked_add(events as u64).is_none() {
            return Err(ApplyError::TimestampOverflow { timestamp: batch.timestamp, events });
        }
        let expired = self.ledger.expire_pending(batch.timestamp);
        self.wallets.on_transfers_expired(&expired);
        self.wallets.expire_sessions(batch.timestamp);
        self.idempotency.expire(batch.timestamp);
        let mut next = batch.timestamp;
        let mut outcomes = Vec::with_capacity(batch.commands.len());
        for command in &batch.commands {
            let transfers_before = self.ledger.transfers_count();
            let (outcome, used) = self.apply_one(command, next);
            if self.audit_limits && self.limit_violation.is_none() {
                if let Err(e) = self.wallets.check_limits_of_new_transfers(&self.ledger, transfers_before) {
                    self.limit_violation = Some(format!("the command at timestamp {next}: {e}"));
                }
            }
            outcomes.push(outcome);
            next += used;
        }
        self.last_timestamp = if next == batch.timestamp { batch.timestamp } else { next - 1 };
        self.batches += 1;
        Ok(outcomes)
    }

    /// Applies one command whose first event timestamp is `next`; returns its outcome and how
    /// many timestamps it used.
    fn apply_one(&mut self, command: &Command, next: u64) -> (Outcome, u64) {
        if let Command::Keyed { scope, key, request_hash, command: inner } = command {
            let used = inner.events() as u64;
            if let Some(entry) = self.idempotency.get(*scope, key) {
                let outcome = KeyedOutcome::Exists {
                    same_request: entry.request_hash == *request_hash,
                    response: entry.response.clone(),
                };
                return (Outcome::Keyed(outcome), used);
            }
            if key.is_empty() || key.len() > crate::idempotency::KEY_BYTES_MAX {
                return (Outcome::Keyed(KeyedOutcome::InvalidKey), used);
            }
            let (outcome, used) = self.apply_one(inner, next);
            self.idempotency.insert(*scope, key, *request_hash, next);
            return (Outcome::Keyed(KeyedOutcome::Applied(Box::new(outcome))), used);
        }
        if let Command::AsSession { token_hash, command: inner } = command {
            let used = inner.events() as u64;
            let resolved = self.wallets.session(token_hash, next).and_then(|session| inner.with_user(session.user_id));
            return match resolved {
                Some(command) => {
                    let (outcome, used) = self.apply_one(&command, next);
                    (Outcome::AsSession(Some(Box::new(outcome))), used)
                }
                None => (Outcome::AsSession(None), used),
            };
        }
        if let Command::StoreResponse { scope, key, status, body } = command {
            return (Outcome::ResponseStored(self.idempotency.store_response(*scope, key, *status, body)), 1);
        }
        let (ledger, wallets) = (&mut self.ledger, &mut self.wallets);
        let mut extra = 0;
        let outcome = match command {
            Command::CreateAccounts(accounts) => {
                Outcome::CreateAccounts(ledger.create_accounts_from_api(accounts, next))
            }
            Command::CreateTransfers(transfers) => {
                Outcome::CreateTransfers(ledger.create_transfers_from_api(transfers, next))
            }
            Command::SignUp { phone, name, pin_hash } => {
                // Claims of held remittances take timestamps after the sign-up's own.
                let mut at = next;
                let outcome = wallets.sign_up(ledger, phone, name, pin_hash, &mut at);
                extra = at - next;
                Outcome::Wallet(WalletOutcome::SignedUp(outcome))
            }
            Command::Send { from_user, to, amount, memo, pin_ok } => {
                Outcome::Wallet(WalletOutcome::Sent(wallets.send(ledger, *from_user, to, *amount, memo, *pin_ok, next)))
            }
            Command::RequestMoney { requester, from, amount, memo } => Outcome::Wallet(WalletOutcome::MoneyRequested(
                wallets.request_money(*requester, from, *amount, memo, next),
            )),
            Command::SplitBill { requester, total, shares, memo } => {
                Outcome::Wallet(WalletOutcome::BillSplit(wallets.split_bill(*requester, *total, shares, memo, next)))
            }
            Command::AnswerRequest { payer, request_id, pay, pin_ok } => {
                Outcome::Wallet(WalletOutcome::RequestAnswered(wallets.answer_request(
                    ledger,
                    *payer,
                    *request_id,
                    *pay,
                    *pin_ok,
                    next,
                )))
            }
            Command::CancelRemittance { user_id, remittance_id } => Outcome::Wallet(
                WalletOutcome::RemittanceCancelled(wallets.cancel_remittance(ledger, *user_id, *remittance_id, next)),
            ),
            Command::OpenSession { user_id, token_hash, pin_ok, ttl_seconds } => {
                let ttl = *ttl_seconds as u64 * NANOS_PER_SECOND_WALLET;
                Outcome::Wallet(WalletOutcome::SessionOpened(wallets.open_session(
                    *user_id,
                    *token_hash,
                    *pin_ok,
                    ttl,
                    next,
                )))
            }
            Command::CloseSession { token_hash } => {
                Outcome::Wallet(WalletOutcome::SessionClosed(wallets.close_session(token_hash)))
            }
            Command::SetTier { user_id, tier } => {
                Outcome::Wallet(WalletOutcome::TierSet(wallets.set_tier(*user_id, *tier)))
            }
            Command::UnlockPin { user_id } => Outcome::Wallet(WalletOutcome::TierSet(wallets.unlock_pin(*user_id))),
            Command::SetTierLimits { tier, balance_cap, daily_outgoing } => {
                Outcome::Wallet(WalletOutcome::TierSet(wallets.set_tier_limits(*tier, *balance_cap, *daily_outgoing)))
            }
            Command::SetFees { withdrawal_fee } => {
                Outcome::Wallet(WalletOutcome::TierSet(wallets.set_withdrawal_fee(*withdrawal_fee)))
            }
            Command::Keyed { .. } | Command::StoreResponse { .. } | Command::AsSession { .. } => {
                unreachable!("handled above")
            }
            Command::SetPinFreeAmount { user_id, amount } => {
                Outcome::Wallet(WalletOutcome::TierSet(wallets.set_pin_free_amount(*user_id, *amount)))
            }
            Command::LinkBankAccount { user_id, bank_code, account_number, holder_name } => {
                Outcome::Wallet(WalletOutcome::BankAccountLinked(wallets.link_bank_account(
                    *user_id,
                    bank_code,
                    account_number.as_str(),
                    holder_name,
                    next,
                )))
            }
            Command::StartFunding { user_id, bank_account_id, kind, amount, pin_ok } => {
                Outcome::Wallet(WalletOutcome::FundingStarted(wallets.start_funding(
                    ledger,
                    *user_id,
                    *bank_account_id,
                    *kind,
                    *amount,
                    *pin_ok,
                    next,
                )))
            }
            Command::SettleFunding { funding_id, approved } => {
                // Posting a withdrawal with a fee also moves the fee: a second timestamp.
                let mut at = next;
                let outcome = wallets.settle_funding(ledger, *funding_id, *approved, &mut at);
                extra = at - next;
                Outcome::Wallet(WalletOutcome::FundingSettled(outcome))
            }
        };
        (outcome, command.events() as u64 + extra)
    }

    /// The BLAKE3 hash of the canonical state (the snapshot bytes).
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        self.write_canonical(&mut hasher);
        *hasher.finalize().as_bytes()
    }

    /// The snapshot: the canonical state as bytes.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let size = 64 + (self.ledger.accounts_count() + self.ledger.transfers_count()) * RECORD_BYTES;
        let mut out = Vec::with_capacity(size);
        self.write_canonical(&mut out);
        out
    }

    fn write_canonical(&self, sink: &mut impl Sink) {
        sink.put(SNAPSHOT_MAGIC);
        sink.put(&SNAPSHOT_VERSION.to_le_bytes());
        sink.put(&self.last_timestamp.to_le_bytes());
        sink.put(&self.batches.to_le_bytes());
        // Records go out in groups to keep the per-call overhead of the sink low.
        let mut buffer = Vec::with_capacity(RECORD_BYTES * 512);
        sink.put(&(self.ledger.accounts_count() as u64).to_le_bytes());
        for account in self.ledger.accounts() {
            account.encode(&mut buffer);
            if buffer.len() >= RECORD_BYTES * 512 {
                sink.put(&buffer);
                buffer.clear();
            }
        }
        sink.put(&buffer);
        buffer.clear();
        sink.put(&(self.ledger.transfers_count() as u64).to_le_bytes());
        for transfer in self.ledger.transfers() {
            transfer.encode(&mut buffer);
            if buffer.len() >= RECORD_BYTES * 512 {
                sink.put(&buffer);
                buffer.clear();
            }
        }
        sink.put(&buffer);
        buffer.clear();
        let pending: Vec<(u32, PendingStatus)> = self.ledger.pending_statuses().collect();
        sink.put(&(pending.len() as u64).to_le_bytes());
        for (position, status) in pending {
            buffer.extend_from_slice(&position.to_le_bytes());
            buffer.push(status as u8);
        }
        sink.put(&buffer);
        buffer.clear();
        let histories: Vec<(u32, &[AccountBalance])> = self.ledger.balance_histories().collect();
        sink.put(&(histories.len() as u64).to_le_bytes());
        for (position, history) in histories {
            buffer.extend_from_slice(&position.to_le_bytes());
            buffer.extend_from_slice(&(history.len() as u64).to_le_bytes());
            for b in history {
                buffer.extend_from_slice(&b.timestamp.to_le_bytes());
                buffer.extend_from_slice(&b.debits_pending.to_le_bytes());
                buffer.extend_from_slice(&b.debits_posted.to_le_bytes());
                buffer.extend_from_slice(&b.credits_pending.to_le_bytes());
                buffer.extend_from_slice(&b.credits_posted.to_le_bytes());
            }
            sink.put(&buffer);
            buffer.clear();
        }
        let failed: Vec<u128> = self.ledger.failed_transfer_ids().collect();
        if !failed.is_empty() {
            buffer.extend_from_slice(FAILED_IDS_TAG);
            buffer.extend_from_slice(&(failed.len() as u64).to_le_bytes());
            failed.iter().for_each(|id| buffer.extend_from_slice(&id.to_le_bytes()));
            sink.put(&buffer);
        }
        // The wallet section is small next to the ledger's arrays: encode it in one piece.
        buffer.clear();
        self.wallets.encode(&mut buffer);
        self.idempotency.encode(&mut buffer);
        buffer.extend_from_slice(&self.wallets.withdrawal_fee().to_le_bytes());
        sink.put(&buffer);
    }

    /// Rebuilds a state from a snapshot. Every count and position is checked; bad bytes give
    /// an error, never a panic.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<State, DecodeError> {
        let mut c = Cursor::new(bytes);
        if c.take(8)? != SNAPSHOT_MAGIC {
            return Err(DecodeError::Snapshot("does not start with the state magic".into()));
        }
        let version = c.u32()?;
        if version != SNAPSHOT_VERSION && version != 1 && version != 3 && version != 4 {
            return Err(DecodeError::Snapshot(format!("has version {version}, expected {SNAPSHOT_VERSION}")));
        }
        let last_timestamp = c.u64()?;
        let batches = c.u64()?;
        let accounts: Vec<Account> = records(&mut c, "accounts")?
            .chunks_exact(RECORD_BYTES)
            .map(|r| Account::decode(r.try_into().expect("128 bytes")))
            .collect();
        let transfer_bytes = records(&mut c, "transfers")?;
        let transfers =
            transfer_bytes.chunks_exact(RECORD_BYTES).map(|r| Transfer::decode(r.try_into().expect("128 bytes")));
        let pending_count = c.u64()?;
        if pending_count.saturating_mul(5) > c.remaining() as u64 {
            return Err(DecodeError::Snapshot(format!(
                "claims {pending_count} pending statuses, more than its bytes hold"
            )));
        }
        let mut pending = Vec::with_capacity(pending_count as usize);
        for _ in 0..pending_count {
            let position = c.u32()?;
            let byte = c.u8()?;
            let status = PendingStatus::from_u8(byte)
                .ok_or_else(|| DecodeError::Snapshot(format!("pending status byte {byte} is unknown")))?;
            pending.push((position, status));
        }
        let history_count = c.u64()?;
        let mut balances = Vec::new();
        for _ in 0..history_count {
            let position = c.u32()?;
            let n = c.u64()?;
            if n > HISTORY_ENTRIES_MAX || n.saturating_mul(72) > c.remaining() as u64 {
                return Err(DecodeError::Snapshot(format!("claims {n} balance entries, more than its bytes hold")));
            }
            let mut history = Vec::with_capacity(n as usize);
            for _ in 0..n {
                history.push(AccountBalance {
                    timestamp: c.u64()?,
                    debits_pending: c.u128()?,
                    debits_posted: c.u128()?,
                    credits_pending: c.u128()?,
                    credits_posted: c.u128()?,
                });
            }
            balances.push((position, history));
        }
        let mut failed_ids = Vec::new();
        if c.bytes[c.at..].starts_with(FAILED_IDS_TAG) {
            c.take(FAILED_IDS_TAG.len())?;
            let n = c.u64()?;
            if n == 0 || n.saturating_mul(16) > c.remaining() as u64 {
                return Err(DecodeError::Snapshot(format!(
                    "claims {n} failed transfer ids, which its bytes do not hold"
                )));
            }
            failed_ids = (0..n).map(|_| c.u128()).collect::<Result<_, _>>()?;
        }
        let ledger =
            Ledger::from_parts(accounts, transfers, pending, balances, failed_ids).map_err(DecodeError::Snapshot)?;
        let mut wallets = if version == 1 {
            Wallets::default()
        } else {
            Wallets::decode(&mut c, &ledger).map_err(DecodeError::Snapshot)?
        };
        let idempotency = if version >= 4 {
            IdempotencyKeys::decode(&mut c).map_err(DecodeError::Snapshot)?
        } else {
            IdempotencyKeys::default()
        };
        if version >= 5 {
            let fee = c.u64()?;
            if !wallets.set_withdrawal_fee(fee) {
                return Err(DecodeError::Snapshot(format!("a withdrawal fee of {fee} won, over the maximum")));
            }
        }
        if c.remaining() != 0 {
            return Err(DecodeError::TrailingBytes { extra: c.remaining() });
        }
        if ledger.transfers().next_back().is_some_and(|t| t.timestamp > last_timestamp) {
            return Err(DecodeError::Snapshot("has a transfer newer than its last timestamp".into()));
        }
        Ok(State { ledger, wallets, idempotency, last_timestamp, batches, audit_limits: false, limit_violation: None })
    }

    /// Checks every invariant of the state (see [`Ledger::check_invariants`] and
    /// [`Wallets::check_invariants`]).
    pub fn check_invariants(&self) -> Result<(), String> {
        self.ledger.check_invariants()?;
        self.wallets.check_invariants(&self.ledger)
    }
}
