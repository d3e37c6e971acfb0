//! The double-entry ledger: accounts, transfers, two-phase transfers with timeouts, linked
//! chains, balancing and closing transfers, with TigerBeetle's semantics and result codes.
//!
//! Every change goes through [`Ledger::create_accounts`], [`Ledger::create_transfers`] or
//! [`Ledger::expire_pending`], and each of them keeps the invariant that, per ledger, the sum
//! of debits equals the sum of credits (pending and posted alike), because every transfer adds
//! the same amount to one account's debits and another's credits. A failed item changes nothing;
//! a failed linked chain is rolled back with an undo log. Domain commands (wallets, payments)
//! post their transfers through the same functions inside a [`Scope`], so that they can roll
//! back their own linked transfers together.
//!
//! The ledger reads no clock: the caller passes each event's timestamp.
//!
//! The rules, and which check wins when several fail, are TigerBeetle's (0.16 and later) for
//! clients of release 0.16 or later: zero amounts are allowed, `AMOUNT_MAX` asks a post for
//! the whole pending amount, and a transfer id that failed with a transient result can never
//! succeed (`id_already_failed`). What it deliberately does not do: imported events (the
//! `imported` flag is `reserved_flag` here, and a timestamp must be zero), the behaviour
//! TigerBeetle keeps for clients older than 0.16, and failing a linked chain on `exists`
//! (here an item that exists counts as success in its chain). `docs/api.md` lists these.

mod balances;
mod cold;
mod command;
mod exists;
mod results;
mod snapshot;
mod store;
mod types;

pub use balances::LoggedBalance;
pub use cold::{ColdChunk, ColdKind, ColdSpill, ColdStore, TRANSFERS_PER_CHUNK};
pub use command::{Command, Outcome, Record, Records, ITEMS_PER_COMMAND_MAX};
pub use results::{CreateAccountResult, CreateTransferResult, PendingStatus};
pub use snapshot::{LedgerBuilder, LedgerView, SECTION_VERSION};
pub use store::NONE;
pub use types::{Account, AccountFlags, Transfer, TransferFlags, RECORD_BYTES};

use balances::{BalanceIndex, BalanceLog};
use std::collections::{BTreeMap, BTreeSet};
use store::{Chunked, IdIndex, Vacant};

/// Nanoseconds per second, for pending-transfer timeouts given in seconds.
pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The amount that asks a post for the whole pending amount (TigerBeetle's `AMOUNT_MAX`). As the
/// amount of a balancing transfer it is simply the largest upper bound.
pub const AMOUNT_MAX: u128 = u128::MAX;

/// Transfers whose index slots `create_transfers` brings into cache ahead of the one it
/// applies: a group this small stays in the first-level caches until used (warming the
/// whole batch first, 8,189 ids and 1 MiB of cache lines, let most be evicted before their
/// turn), and is large enough that the wait for its loads, which overlap, is short per
/// transfer.
const WARM_AHEAD: usize = 64;

/// The latest a pending transfer may expire: TigerBeetle keeps timestamps below 2^63 (the top
/// bit marks tombstones there), so `timestamp + timeout` past it is `overflows_timeout`.
const EXPIRY_MAX: u64 = i64::MAX as u64;

/// Every this many transfers of an account, one is marked (`account_marks`): a history read
/// from a moment in the past walks at most this many steps of the account's chain.
const MARK_EVERY: u32 = 64;

/// The balance of an account with the `history` flag right after a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountBalance {
    /// The timestamp of the transfer that produced this balance.
    pub timestamp: u64,
    /// Pending debits after the transfer.
    pub debits_pending: u128,
    /// Posted debits after the transfer.
    pub debits_posted: u128,
    /// Pending credits after the transfer.
    pub credits_pending: u128,
    /// Posted credits after the transfer.
    pub credits_posted: u128,
}

/// What a successful (or already existing) transfer ended up as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferOutcome {
    /// The result code.
    pub result: CreateTransferResult,
    /// For `ok` and `exists`: the transfer's timestamp; otherwise 0.
    pub timestamp: u64,
    /// For `ok` and `exists`: the amount actually moved (balancing and post may move less than
    /// asked); otherwise 0.
    pub amount: u128,
}

impl TransferOutcome {
    fn failed(result: CreateTransferResult) -> Self {
        TransferOutcome { result, timestamp: 0, amount: 0 }
    }
}

/// What a successful (or already existing) account ended up as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountOutcome {
    /// The result code.
    pub result: CreateAccountResult,
    /// For `ok` and `exists`: the account's timestamp; otherwise 0.
    pub timestamp: u64,
}

/// One step to take back if the linked chain it belongs to fails.
#[derive(Clone, Debug)]
enum Undo {
    AccountCreated,
    TransferCreated,
    Account { position: u32, before: Account },
    Pending { position: u32, before: u8 },
    ExpiryAdded { key: (u64, u32) },
    ExpiryRemoved { key: (u64, u32) },
    BalancePushed { account: u32 },
}

/// An account's balance history, oldest first: a view into the ledger's balance log.
#[derive(Clone, Copy)]
pub struct BalanceHistory<'a> {
    log: &'a BalanceLog,
    positions: &'a [u32],
}

impl<'a> BalanceHistory<'a> {
    /// Number of balances.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are none (the account has no `history` flag, or nothing moved yet).
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The `i`-th balance, oldest first.
    pub fn get(&self, i: usize) -> Option<AccountBalance> {
        self.positions.get(i).map(|&p| self.log.get(p).1)
    }

    /// The newest balance.
    pub fn last(&self) -> Option<AccountBalance> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The balances, oldest first, copied out.
    pub fn to_vec(&self) -> Vec<AccountBalance> {
        self.iter().collect()
    }

    /// The balances, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = AccountBalance> + ExactSizeIterator + 'a {
        let log = self.log;
        self.positions.iter().map(move |&p| log.get(p).1)
    }

    /// The number of balances for which `pred` holds, when it holds for a prefix (as
    /// `slice::partition_point`). The search starts from the newest and doubles its step back
    /// before it bisects: histories ask about recent moments, whose entries are in memory,
    /// and a bisection from the middle would read old ones from the cold store.
    pub fn partition_point(&self, pred: impl Fn(&AccountBalance) -> bool) -> usize {
        let holds = |p: &u32| pred(&self.log.get(*p).1);
        let (mut lo, mut hi) = (0, self.positions.len());
        let mut step = 1;
        while lo < hi {
            let i = hi.saturating_sub(step).max(lo);
            if holds(&self.positions[i]) {
                lo = i + 1;
                break;
            }
            hi = i;
            step *= 2;
        }
        lo + self.positions[lo..hi].partition_point(holds)
    }
}

/// A mark in the undo log: everything done after it can be rolled back as one.
#[derive(Clone, Copy, Debug)]
pub struct Scope {
    undo_len: usize,
}

/// The ledger state. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    accounts: Chunked<Account>,
    account_index: IdIndex,
    /// Per account position: the position of its newest transfer (`NONE` if none). Together
    /// with the transfers' links this is each account's history, newest first, at 4 bytes an entry.
    account_heads: Chunked<u32>,
    /// Per account position: how many transfers it has. Derived.
    account_counts: Vec<u32>,
    /// (account position, transfer position) of every `MARK_EVERY`-th transfer of each
    /// account: where a walk down an account's history from a moment in the past starts, so
    /// that it never walks the whole history between now and then (each step of which may read
    /// the cold store). Derived.
    account_marks: BTreeSet<(u32, u32)>,
    transfers: cold::Transfers,
    transfer_index: IdIndex,
    /// Per transfer position: the status of a pending transfer (a [`PendingStatus`] byte), or
    /// 0 for any other transfer. One byte per transfer, copy-on-write like the transfers.
    pending: Chunked<u8>,
    /// Open pending transfers with a timeout, by (expires_at, position). Derived.
    expiries: BTreeSet<(u64, u32)>,
    /// Every balance of accounts with the `history` flag, in the order they were recorded
    /// (`balances.rs`). Append-only and copy-on-write, like the transfers.
    balance_log: BalanceLog,
    /// Per account position, its entries' positions in `balance_log`, oldest first. Derived.
    balance_index: BalanceIndex,
    /// Ids of transfers that failed with a transient result in `create_transfers`, oldest
    /// first, and an index over them: such an id answers `id_already_failed` forever. Append
    /// only and never in the undo log, because a failure is remembered even when its linked
    /// chain (or a domain command's scope) is rolled back, as in TigerBeetle.
    failed_ids: Chunked<u128>,
    failed_index: IdIndex,
    undo: Vec<Undo>,
    /// Depth of open scopes; the undo log is only kept while one is open.
    scopes: usize,
}

/// A sum of `u128` values that cannot overflow: each account's counters fit in 128 bits, but
/// their sum over a ledger may not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct WideSum {
    /// How many times the low part wrapped.
    pub carries: u64,
    /// The low 128 bits.
    pub low: u128,
}

impl WideSum {
    fn add(&mut self, value: u128) {
        let (low, carried) = self.low.overflowing_add(value);
        self.low = low;
        self.carries += carried as u64;
    }
}

impl std::fmt::Display for WideSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.carries == 0 {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}*2^128+{}", self.carries, self.low)
        }
    }
}

/// Totals of one ledger, for the conservation check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    /// Sum of pending debits over all accounts.
    pub debits_pending: WideSum,
    /// Sum of posted debits over all accounts.
    pub debits_posted: WideSum,
    /// Sum of pending credits over all accounts.
    pub credits_pending: WideSum,
    /// Sum of posted credits over all accounts.
    pub credits_posted: WideSum,
    /// Number of accounts.
    pub accounts: u64,
}

impl Ledger {
    /// Number of accounts.
    pub fn accounts_count(&self) -> usize {
        self.accounts.len()
    }

    /// Number of transfers.
    pub fn transfers_count(&self) -> usize {
        self.transfers.len()
    }

    /// Grows the transfer index now so that `additional` more transfers fit without growing:
    /// recovery calls it before a replay, whose size it knows from the journal.
    pub fn reserve_transfers(&mut self, additional: usize) {
        let records = &self.transfers;
        self.transfer_index.reserve_hashed(additional, |p| records.id_hash(p));
    }

    /// Reads this ledger's cold transfers and balances from `store` from now on (see
    /// `cold.rs`).
    pub fn set_cold_store(&mut self, store: std::sync::Arc<dyn ColdStore>) {
        self.transfers.set_store(store.clone());
        self.balance_log.set_store(store);
    }

    /// The number of chunks of a kind ([`TRANSFERS_PER_CHUNK`] records each, the last maybe
    /// not full), and how many of the oldest are cold.
    pub fn cold_chunks(&self, kind: ColdKind) -> (usize, usize) {
        match kind {
            ColdKind::Transfers => (self.transfers.chunk_count(), self.transfers.cold_chunks()),
            ColdKind::Balances => self.balance_log.chunks(),
        }
    }

    /// The chunk `index` of a kind if no write will touch it again (full, sealed, not the
    /// last): what may be copied to the embedded store.
    pub fn sealed_chunk(&self, kind: ColdKind, index: usize) -> Option<ColdChunk> {
        match kind {
            ColdKind::Transfers => self.transfers.sealed_full_chunk(index),
            ColdKind::Balances => self.balance_log.sealed_full_chunk(index).map(ColdChunk::Balances),
        }
    }

    /// Drops the oldest hot chunk of a kind from memory: the cold store must hold it.
    pub fn make_chunk_cold(&mut self, kind: ColdKind) {
        match kind {
            ColdKind::Transfers => self.transfers.make_cold(),
            ColdKind::Balances => self.balance_log.make_cold(),
        }
    }

    /// While a snapshot is decoded: writes every chunk of a kind beyond the hot window to the
    /// store and drops it, until the store fails to take one.
    pub(crate) fn spill_while_decoding(&mut self, kind: ColdKind, spill: &dyn ColdSpill, which: usize) {
        match kind {
            ColdKind::Transfers => self.transfers.seal(),
            ColdKind::Balances => self.balance_log.seal(),
        }
        loop {
            let (chunks, cold) = self.cold_chunks(kind);
            if cold + spill.hot_chunks() >= chunks {
                return;
            }
            let Some(chunk) = self.sealed_chunk(kind, cold) else { return };
            if !spill.write(which, cold, chunk) {
                return;
            }
            self.make_chunk_cold(kind);
        }
    }

    /// Shares the arrays' chunks written since the last call, so that the next
    /// [`Ledger::view`] costs a reference per chunk (see [`Chunked::seal`]). The state calls
    /// it after every batch.
    pub fn seal(&mut self) {
        self.accounts.seal();
        self.account_heads.seal();
        self.transfers.seal();
        self.pending.seal();
        self.balance_log.seal();
        self.failed_ids.seal();
    }

    /// Bytes of memory held by the ledger's arrays and indexes (an estimate that ignores the
    /// small maps), for the memory benchmark.
    pub fn bytes_allocated(&self) -> usize {
        self.accounts.bytes_allocated()
            + self.account_index.bytes_allocated()
            + self.account_heads.bytes_allocated()
            + self.transfers.bytes_allocated()
            + self.transfer_index.bytes_allocated()
            + self.failed_ids.bytes_allocated()
            + self.balance_log.bytes_allocated()
            + self.balance_index.bytes_allocated()
            + self.failed_index.bytes_allocated()
    }

    fn account_position(&self, id: u128) -> Option<u32> {
        let accounts = &self.accounts;
        self.account_index.find(id, |p| accounts.get(p).id)
    }

    fn transfer_position(&self, id: u128) -> Option<u32> {
        let transfers = &self.transfers;
        self.transfer_index.find_by(id, |p| transfers.is(p, id))
    }

    /// Whether a transfer with this id failed with a transient result before. Cheap while no
    /// transfer has: the index is not probed at all.
    fn failed_before(&self, id: u128) -> bool {
        if self.failed_ids.len() == 0 {
            return false;
        }
        let failed = &self.failed_ids;
        self.failed_index.find(id, |p| *failed.get(p)).is_some()
    }

    /// Remembers that the transfer `id` failed with a transient result. Not logged for undo:
    /// see `failed_ids`.
    fn remember_failed(&mut self, id: u128) {
        debug_assert!(self.transfer_position(id).is_none() && !self.failed_before(id));
        let position = self.failed_ids.push(id);
        let failed = &self.failed_ids;
        self.failed_index.insert(id, position, |p| *failed.get(p));
    }

    /// Ids of the transfers that failed with a transient result, oldest first: the snapshot's
    /// part for them (see [`Ledger::from_parts`]).
    pub fn failed_transfer_ids(&self) -> impl DoubleEndedIterator<Item = u128> + '_ {
        self.failed_ids.iter().copied()
    }

    /// The account with this id.
    pub fn account(&self, id: u128) -> Option<&Account> {
        self.account_position(id).map(|p| self.accounts.get(p))
    }

    /// The transfer with this id.
    pub fn transfer(&self, id: u128) -> Option<Transfer> {
        self.transfer_position(id).map(|p| self.transfers.at(p))
    }

    /// For a pending transfer: whether it is still open or how it was resolved.
    pub fn pending_status(&self, id: u128) -> Option<PendingStatus> {
        self.transfer_position(id).and_then(|p| PendingStatus::from_u8(*self.pending.get(p)))
    }

    /// The account at `position` in creation order (`None` past the last): a reader that
    /// copies the ledger elsewhere (the PostgreSQL read model) goes on from where it stopped.
    pub fn account_at(&self, position: usize) -> Option<&Account> {
        let position = u32::try_from(position).ok()?;
        (position < self.accounts.len() as u32).then(|| self.accounts.get(position))
    }

    /// The transfer at `position` in creation (and timestamp) order (`None` past the last).
    pub fn transfer_at(&self, position: usize) -> Option<Transfer> {
        let position = u32::try_from(position).ok()?;
        (position < self.transfers.len() as u32).then(|| self.transfers.at(position))
    }

    /// The history links of the transfer at `position`: the previous transfer of its debit
    /// account and of its credit account (`NONE` if none); for `kasa verify`'s check of the
    /// cold store.
    pub fn transfer_links(&self, position: usize) -> Option<[u32; 2]> {
        let position = u32::try_from(position).ok()?;
        (position < self.transfers.len() as u32).then(|| self.transfers.links_at(position))
    }

    /// The number of entries in the balance log (of every account with the `history` flag).
    pub fn balance_log_len(&self) -> usize {
        self.balance_log.len()
    }

    /// The balance log's entry at `position` as it is kept (and stored when cold), if any: for
    /// `kasa verify`'s check of the cold store.
    pub fn logged_balance(&self, position: usize) -> Option<LoggedBalance> {
        let position = u32::try_from(position).ok()?;
        (position < self.balance_log.len() as u32).then(|| self.balance_log.entry(position))
    }

    /// All accounts in creation order.
    pub fn accounts(&self) -> impl DoubleEndedIterator<Item = &Account> + '_ {
        self.accounts.iter()
    }

    /// All transfers in creation (and timestamp) order.
    pub fn transfers(&self) -> impl DoubleEndedIterator<Item = Transfer> + '_ {
        self.transfers.iter()
    }

    /// Every pending transfer's status, by transfer position, in position order.
    pub fn pending_statuses(&self) -> impl Iterator<Item = (u32, PendingStatus)> + '_ {
        self.pending.iter().enumerate().filter_map(|(p, &b)| PendingStatus::from_u8(b).map(|s| (p as u32, s)))
    }

    /// The earliest expiry time of an open pending transfer, so the sequencer knows when to
    /// send a batch that lets it expire.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiries.first().map(|&(at, _)| at)
    }

    /// Balance history of an account with the `history` flag, oldest first.
    pub fn account_balances(&self, id: u128) -> BalanceHistory<'_> {
        let positions = self.account_position(id).map_or(&[][..], |p| self.balance_index.get(p));
        BalanceHistory { log: &self.balance_log, positions }
    }

    /// The transfers of an account, newest first, with timestamps in `[min, max]` (0 = no
    /// bound), at most `limit`. Walks the account's history chain; a cursor is just `max` set
    /// to one less than the last timestamp seen.
    pub fn account_transfers(&self, id: u128, timestamp_min: u64, timestamp_max: u64, limit: usize) -> Vec<Transfer> {
        let Some(account) = self.account_position(id) else { return Vec::new() };
        let mut out = Vec::new();
        let mut position = *self.account_heads.get(account);
        // With an upper bound, start from the newest transfer at or before it: the transfers
        // before position `bound` are those at or before it (the array is sorted by
        // timestamp); the account's first mark at or after `bound` (or its head) is at most
        // MARK_EVERY of its transfers above it, so the walk down is short however old the bound.
        if timestamp_max != 0 && position != NONE && self.transfers.at(position).timestamp > timestamp_max {
            let bound = self.partition_point(timestamp_max);
            if let Some(&(_, mark)) = self.account_marks.range((account, bound)..=(account, u32::MAX)).next() {
                position = mark;
            }
            while position != NONE && position >= bound {
                position = self.next_in_history(position, id);
            }
        }
        while position != NONE && out.len() < limit {
            let t = self.transfers.at(position);
            if timestamp_min != 0 && t.timestamp < timestamp_min {
                break;
            }
            out.push(t);
            position = self.next_in_history(position, id);
        }
        out
    }

    fn next_in_history(&self, position: u32, account_id: u128) -> u32 {
        let links = self.transfers.links_at(position);
        if self.transfers.at(position).debit_account_id == account_id {
            links[0]
        } else {
            links[1]
        }
    }

    /// Number of transfers with a timestamp at or below `timestamp`.
    fn partition_point(&self, timestamp: u64) -> u32 {
        let (mut lo, mut hi) = (0u32, self.transfers.len() as u32);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.transfers.at(mid).timestamp <= timestamp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Sums balances per ledger, checking on the way that no account breaks its flags.
    /// Returns the first broken account as an error message.
    pub fn totals(&self) -> Result<BTreeMap<u32, LedgerTotals>, String> {
        let mut totals: BTreeMap<u32, LedgerTotals> = BTreeMap::new();
        for a in self.accounts.iter() {
            let t = totals.entry(a.ledger).or_default();
            t.debits_pending.add(a.debits_pending);
            t.debits_posted.add(a.debits_posted);
            t.credits_pending.add(a.credits_pending);
            t.credits_posted.add(a.credits_posted);
            t.accounts += 1;
            let debits = a.debits().ok_or_else(|| format!("account {} debits overflow", a.id))?;
            let credits = a.credits().ok_or_else(|| format!("account {} credits overflow", a.id))?;
            if a.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) && debits > a.credits_posted {
                return Err(format!(
                    "account {} has debits_must_not_exceed_credits but debits {} exceed posted credits {}",
                    a.id, debits, a.credits_posted
                ));
            }
            if a.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) && credits > a.debits_posted {
                return Err(format!(
                    "account {} has credits_must_not_exceed_debits but credits {} exceed posted debits {}",
                    a.id, credits, a.debits_posted
                ));
            }
        }
        Ok(totals)
    }

    /// Checks every invariant: per ledger debits equal credits (pending and posted), no
    /// account breaks its flags, each pending transfer is resolved at most once, open
    /// reservations add up to the accounts' pending balances, and no failed id is also a
    /// transfer's.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let Some(id) = self.failed_transfer_ids().find(|&id| self.transfer_position(id).is_some()) {
            return Err(format!("transfer {id} exists and is also remembered as failed"));
        }
        for (ledger, t) in self.totals()? {
            if t.debits_pending != t.credits_pending || t.debits_posted != t.credits_posted {
                return Err(format!(
                    "ledger {ledger} does not balance: debits pending {} posted {}, credits pending {} posted {}",
                    t.debits_pending, t.debits_posted, t.credits_pending, t.credits_posted
                ));
            }
        }
        // Each pending transfer is resolved by at most one post or void, and open ones are
        // exactly the reservations held in the accounts' pending balances.
        let mut resolutions: BTreeMap<u128, u32> = BTreeMap::new();
        let mut pending_debits: BTreeMap<u128, WideSum> = BTreeMap::new();
        let mut pending_credits: BTreeMap<u128, WideSum> = BTreeMap::new();
        for (position, t) in self.transfers.iter().enumerate() {
            if t.flags.has(TransferFlags::POST_PENDING_TRANSFER) || t.flags.has(TransferFlags::VOID_PENDING_TRANSFER) {
                *resolutions.entry(t.pending_id).or_default() += 1;
            }
            if t.flags.has(TransferFlags::PENDING) {
                let status = PendingStatus::from_u8(*self.pending.get(position as u32));
                if status == Some(PendingStatus::Pending) {
                    pending_debits.entry(t.debit_account_id).or_default().add(t.amount);
                    pending_credits.entry(t.credit_account_id).or_default().add(t.amount);
                } else if status.is_none() {
                    return Err(format!("pending transfer {} has no status", t.id));
                }
            }
        }
        if let Some((id, n)) = resolutions.iter().find(|(_, &n)| n > 1) {
            return Err(format!("pending transfer {id} was resolved {n} times"));
        }
        for a in self.accounts.iter() {
            let dp = pending_debits.get(&a.id).copied().unwrap_or_default();
            let cp = pending_credits.get(&a.id).copied().unwrap_or_default();
            if (WideSum { carries: 0, low: a.debits_pending }) != dp
                || (WideSum { carries: 0, low: a.credits_pending }) != cp
            {
                return Err(format!(
                    "account {} pending balances ({}, {}) differ from its open pending transfers ({dp}, {cp})",
                    a.id, a.debits_pending, a.credits_pending
                ));
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Scopes: all-or-nothing groups of changes.

    /// Opens a scope: until [`Ledger::commit`] or [`Ledger::rollback`], every change is logged
    /// so that it can be undone.
    pub fn begin(&mut self) -> Scope {
        self.scopes += 1;
        Scope { undo_len: self.undo.len() }
    }

    /// Keeps the changes made since `scope` began.
    pub fn commit(&mut self, scope: Scope) {
        assert!(self.scopes > 0);
        self.scopes -= 1;
        if self.scopes == 0 {
            self.undo.clear();
        } else {
            debug_assert!(self.undo.len() >= scope.undo_len);
        }
    }

    /// Undoes every change made since `scope` began, newest first.
    pub fn rollback(&mut self, scope: Scope) {
        assert!(self.scopes > 0);
        while self.undo.len() > scope.undo_len {
            let step = self.undo.pop().expect("undo log shorter than its scope");
            self.undo_step(step);
        }
        self.scopes -= 1;
    }

    fn log(&mut self, step: Undo) {
        if self.scopes > 0 {
            self.undo.push(step);
        }
    }

    fn undo_step(&mut self, step: Undo) {
        match step {
            Undo::AccountCreated => {
                let account = self.accounts.pop().expect("undo of a missing account");
                let accounts = &self.accounts;
                let popped = account.id;
                // The popped record is gone from the array, so answer its id by hand.
                let len = accounts.len() as u32;
                self.account_index.remove(popped, |p| if p == len { popped } else { accounts.get(p).id });
                self.account_heads.pop();
                self.account_counts.pop();
            }
            Undo::TransferCreated => {
                let (transfer, links) = self.transfers.pop().expect("undo of a missing transfer");
                self.pending.pop().expect("pending bytes shorter than transfers");
                let transfers = &self.transfers;
                let len = transfers.len() as u32;
                let popped = transfer.id;
                // Neither the match nor the shift reads the store: the kept hashes answer.
                self.transfer_index.remove_by(
                    popped,
                    |p| if p == len { true } else { transfers.is(p, popped) },
                    |p| if p == len { store::hash(popped) } else { transfers.id_hash(p) },
                );
                let dr = self.account_position(transfer.debit_account_id).expect("debit account of a transfer");
                let cr = self.account_position(transfer.credit_account_id).expect("credit account of a transfer");
                *self.account_heads.get_mut(dr) = links[0];
                *self.account_heads.get_mut(cr) = links[1];
                for account in [dr, cr] {
                    let count = &mut self.account_counts[account as usize];
                    if count.is_multiple_of(MARK_EVERY) {
                        self.account_marks.remove(&(account, len));
                    }
                    *count -= 1;
                }
            }
            Undo::Account { position, before } => *self.accounts.get_mut(position) = before,
            Undo::Pending { position, before } => *self.pending.get_mut(position) = before,
            Undo::ExpiryAdded { key } => {
                self.expiries.remove(&key);
            }
            Undo::ExpiryRemoved { key } => {
                self.expiries.insert(key);
            }
            Undo::BalancePushed { account } => {
                let popped = self.balance_log.pop().expect("undo of a missing balance");
                debug_assert_eq!(popped, account, "the undo log and the balance log agree");
                self.balance_index.pop(account);
            }
        }
    }

    fn set_account(&mut self, position: u32, account: Account) {
        let before = *self.accounts.get(position);
        self.log(Undo::Account { position, before });
        *self.accounts.get_mut(position) = account;
    }

    fn set_pending(&mut self, position: u32, status: PendingStatus) {
        let before = std::mem::replace(self.pending.get_mut(position), status as u8);
        self.log(Undo::Pending { position, before });
    }

    // ---------------------------------------------------------------------------------------
    // Accounts.

    /// Creates accounts; `timestamp_first` is the timestamp of the first event, and event `i`
    /// gets `timestamp_first + i`. Linked chains succeed or fail as one.
    pub fn create_accounts(&mut self, accounts: &[Account], timestamp_first: u64) -> Vec<AccountOutcome> {
        let mut out = Vec::with_capacity(accounts.len());
        run_chains(
            accounts.len(),
            |i| accounts[i].flags.has(AccountFlags::LINKED),
            self,
            |ledger, i| ledger.create_account(&accounts[i], timestamp_first + i as u64),
            |result| AccountOutcome { result, timestamp: 0 },
            CreateAccountResult::LinkedEventFailed,
            CreateAccountResult::LinkedEventChainOpen,
            &mut out,
            |o: &AccountOutcome| o.result.is_success(),
        );
        out
    }

    fn create_account(&mut self, a: &Account, timestamp: u64) -> AccountOutcome {
        use CreateAccountResult as R;
        let fail = |result| AccountOutcome { result, timestamp: 0 };
        if a.timestamp != 0 {
            return fail(R::TimestampMustBeZero);
        }
        if a.reserved != 0 {
            return fail(R::ReservedField);
        }
        if a.flags.0 & !AccountFlags::KNOWN != 0 {
            return fail(R::ReservedFlag);
        }
        if a.id == 0 {
            return fail(R::IdMustNotBeZero);
        }
        if a.id == u128::MAX {
            return fail(R::IdMustNotBeIntMax);
        }
        if let Some(position) = self.account_position(a.id) {
            let e = self.accounts.get(position);
            // Every flag bit counts, `closed` and `linked` too, as in TigerBeetle: an account
            // closed by a closing transfer since no longer matches a retry of its creation.
            let result = if e.flags != a.flags {
                R::ExistsWithDifferentFlags
            } else if e.user_data_128 != a.user_data_128 {
                R::ExistsWithDifferentUserData128
            } else if e.user_data_64 != a.user_data_64 {
                R::ExistsWithDifferentUserData64
            } else if e.user_data_32 != a.user_data_32 {
                R::ExistsWithDifferentUserData32
            } else if e.ledger != a.ledger {
                R::ExistsWithDifferentLedger
            } else if e.code != a.code {
                R::ExistsWithDifferentCode
            } else {
                return AccountOutcome { result: R::Exists, timestamp: e.timestamp };
            };
            return fail(result);
        }
        if a.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && a.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            return fail(R::FlagsAreMutuallyExclusive);
        }
        if a.debits_pending != 0 {
            return fail(R::DebitsPendingMustBeZero);
        }
        if a.debits_posted != 0 {
            return fail(R::DebitsPostedMustBeZero);
        }
        if a.credits_pending != 0 {
            return fail(R::CreditsPendingMustBeZero);
        }
        if a.credits_posted != 0 {
            return fail(R::CreditsPostedMustBeZero);
        }
        if a.ledger == 0 {
            return fail(R::LedgerMustNotBeZero);
        }
        if a.code == 0 {
            return fail(R::CodeMustNotBeZero);
        }
        let mut account = *a;
        account.timestamp = timestamp;
        let position = self.accounts.push(account);
        let accounts = &self.accounts;
        self.account_index.insert(account.id, position, |p| accounts.get(p).id);
        self.account_heads.push(NONE);
        self.account_counts.push(0);
        self.log(Undo::AccountCreated);
        AccountOutcome { result: R::Ok, timestamp }
    }

    // ---------------------------------------------------------------------------------------
    // Transfers.

    /// Creates transfers; event `i` gets timestamp `timestamp_first + i`. Linked chains succeed
    /// or fail as one. The id of a transfer that fails with a transient result (see
    /// [`CreateTransferResult::is_transient`]) is remembered, even if its chain is rolled back,
    /// and answers `id_already_failed` from then on, as in TigerBeetle, whose batch loop (not
    /// its per-transfer function) does the same.
    pub fn create_transfers(&mut self, transfers: &[Transfer], timestamp_first: u64) -> Vec<TransferOutcome> {
        // Room for the whole batch up front: `create_transfer` fills the slot its duplicate
        // check found empty, which needs the index not to grow in between.
        let records = &self.transfers;
        self.transfer_index.reserve_hashed(transfers.len(), |p| records.id_hash(p));
        // Transfers `..warmed` have had their index slots brought into cache.
        let mut warmed = 0;
        let mut out = Vec::with_capacity(transfers.len());
        run_chains(
            transfers.len(),
            |i| transfers[i].flags.has(TransferFlags::LINKED),
            self,
            |ledger, i| {
                if i + WARM_AHEAD >= warmed {
                    let end = (i + 2 * WARM_AHEAD).min(transfers.len());
                    ledger.warm(&transfers[warmed.max(i)..end]);
                    warmed = end;
                }
                let outcome = ledger.create_transfer(&transfers[i], timestamp_first + i as u64);
                if outcome.result.is_transient() {
                    ledger.remember_failed(transfers[i].id);
                }
                outcome
            },
            TransferOutcome::failed,
            CreateTransferResult::LinkedEventFailed,
            CreateTransferResult::LinkedEventChainOpen,
            &mut out,
            |o: &TransferOutcome| o.result.is_success(),
        );
        out
    }

    /// Brings the index slots of `transfers` into cache, with loads that do not depend on
    /// each other, so that the CPU overlaps their cache misses instead of taking them one by
    /// one in `create_transfer` (see `IdIndex::warm`). `black_box` keeps the loads.
    fn warm(&self, transfers: &[Transfer]) {
        let mut warmed = 0u32;
        for t in transfers {
            warmed ^= self.transfer_index.warm(t.id);
        }
        std::hint::black_box(warmed);
    }

    /// Creates one transfer at `timestamp`. Public so that domain commands can post transfers
    /// inside their own scope; they must pass strictly increasing timestamps. It answers
    /// `id_already_failed` for an id that failed before, but does not remember its own
    /// transient failures (that is [`Ledger::create_transfers`]' job): a domain command checks
    /// its preconditions itself and may try the same id again after a refusal.
    pub fn create_transfer(&mut self, t: &Transfer, timestamp: u64) -> TransferOutcome {
        use CreateTransferResult as R;
        let fail = TransferOutcome::failed;
        let flags = t.flags;
        if t.timestamp != 0 {
            return fail(R::TimestampMustBeZero);
        }
        if flags.0 & !TransferFlags::KNOWN != 0 {
            return fail(R::ReservedFlag);
        }
        if t.id == 0 {
            return fail(R::IdMustNotBeZero);
        }
        if t.id == u128::MAX {
            return fail(R::IdMustNotBeIntMax);
        }
        // `probe` makes room in the id's own table, so the slot it finds stays valid for
        // `insert_transfer`. (An `IdIndex::reserve(1)` here would visit every table per transfer.)
        let transfers = &self.transfers;
        let vacant = match self.transfer_index.probe_by(t.id, |p| transfers.id_hash(p), |p| transfers.is(p, t.id)) {
            Ok(position) => return self.transfer_exists(t, position),
            Err(vacant) => vacant,
        };
        if self.failed_before(t.id) {
            return fail(R::IdAlreadyFailed);
        }
        let post = flags.has(TransferFlags::POST_PENDING_TRANSFER);
        let void = flags.has(TransferFlags::VOID_PENDING_TRANSFER);
        let pending = flags.has(TransferFlags::PENDING);
        let balancing = flags.has(TransferFlags::BALANCING_DEBIT) || flags.has(TransferFlags::BALANCING_CREDIT);
        let closing = flags.has(TransferFlags::CLOSING_DEBIT) || flags.has(TransferFlags::CLOSING_CREDIT);
        if (pending as u8 + post as u8 + void as u8) > 1 || ((post || void) && (balancing || closing)) {
            return fail(R::FlagsAreMutuallyExclusive);
        }
        if post || void {
            return self.resolve_pending(t, timestamp, vacant);
        }
        if t.debit_account_id == 0 {
            return fail(R::DebitAccountIdMustNotBeZero);
        }
        if t.debit_account_id == u128::MAX {
            return fail(R::DebitAccountIdMustNotBeIntMax);
        }
        if t.credit_account_id == 0 {
            return fail(R::CreditAccountIdMustNotBeZero);
        }
        if t.credit_account_id == u128::MAX {
            return fail(R::CreditAccountIdMustNotBeIntMax);
        }
        if t.debit_account_id == t.credit_account_id {
            return fail(R::AccountsMustBeDifferent);
        }
        if t.pending_id != 0 {
            return fail(R::PendingIdMustBeZero);
        }
        if !pending && t.timeout != 0 {
            return fail(R::TimeoutReservedForPendingTransfer);
        }
        if closing && !pending {
            return fail(R::ClosingTransferMustBePending);
        }
        // Amount 0 is a valid transfer (TigerBeetle 0.16): it moves nothing but is recorded.
        if t.ledger == 0 {
            return fail(R::LedgerMustNotBeZero);
        }
        if t.code == 0 {
            return fail(R::CodeMustNotBeZero);
        }
        let Some(dr_position) = self.account_position(t.debit_account_id) else {
            return fail(R::DebitAccountNotFound);
        };
        let Some(cr_position) = self.account_position(t.credit_account_id) else {
            return fail(R::CreditAccountNotFound);
        };
        let mut dr = *self.accounts.get(dr_position);
        let mut cr = *self.accounts.get(cr_position);
        if dr.ledger != cr.ledger {
            return fail(R::AccountsMustHaveTheSameLedger);
        }
        if t.ledger != dr.ledger {
            return fail(R::TransferMustHaveTheSameLedgerAsAccounts);
        }
        if dr.flags.has(AccountFlags::CLOSED) {
            return fail(R::DebitAccountAlreadyClosed);
        }
        if cr.flags.has(AccountFlags::CLOSED) {
            return fail(R::CreditAccountAlreadyClosed);
        }
        // A balancing transfer moves what is available, down to nothing: with nothing
        // available it is created with amount 0, not refused.
        let mut amount = t.amount;
        if flags.has(TransferFlags::BALANCING_DEBIT) {
            let debits = dr.debits().expect("debits never overflow (overflows_debits)");
            amount = amount.min(dr.credits_posted.saturating_sub(debits));
        }
        if flags.has(TransferFlags::BALANCING_CREDIT) {
            let credits = cr.credits().expect("credits never overflow (overflows_credits)");
            amount = amount.min(cr.debits_posted.saturating_sub(credits));
        }
        if pending {
            if dr.debits_pending.checked_add(amount).is_none() {
                return fail(R::OverflowsDebitsPending);
            }
            if cr.credits_pending.checked_add(amount).is_none() {
                return fail(R::OverflowsCreditsPending);
            }
        }
        if dr.debits_posted.checked_add(amount).is_none() {
            return fail(R::OverflowsDebitsPosted);
        }
        if cr.credits_posted.checked_add(amount).is_none() {
            return fail(R::OverflowsCreditsPosted);
        }
        let Some(debits_after) = dr.debits().and_then(|d| d.checked_add(amount)) else {
            return fail(R::OverflowsDebits);
        };
        let Some(credits_after) = cr.credits().and_then(|c| c.checked_add(amount)) else {
            return fail(R::OverflowsCredits);
        };
        let expires_at = if t.timeout != 0 {
            debug_assert!(pending, "checked by timeout_reserved_for_pending_transfer");
            // u32 seconds in nanoseconds fit in a u64; the sum may pass `EXPIRY_MAX`.
            match timestamp.checked_add(t.timeout as u64 * NANOS_PER_SECOND).filter(|&at| at <= EXPIRY_MAX) {
                Some(at) => Some(at),
                None => return fail(R::OverflowsTimeout),
            }
        } else {
            None
        };
        if dr.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) && debits_after > dr.credits_posted {
            return fail(R::ExceedsCredits);
        }
        if cr.flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) && credits_after > cr.debits_posted {
            return fail(R::ExceedsDebits);
        }

        // Every check passed: from here on nothing can fail.
        if pending {
            dr.debits_pending += amount;
            cr.credits_pending += amount;
            if flags.has(TransferFlags::CLOSING_DEBIT) {
                dr.flags.0 |= AccountFlags::CLOSED;
            }
            if flags.has(TransferFlags::CLOSING_CREDIT) {
                cr.flags.0 |= AccountFlags::CLOSED;
            }
        } else {
            dr.debits_posted += amount;
            cr.credits_posted += amount;
        }
        let mut stored = *t;
        stored.amount = amount;
        stored.timestamp = timestamp;
        let position = self.insert_transfer(stored, dr_position, cr_position, Some(vacant));
        self.set_account(dr_position, dr);
        self.set_account(cr_position, cr);
        self.record_balances(dr_position, &dr, timestamp);
        self.record_balances(cr_position, &cr, timestamp);
        if pending {
            self.set_pending(position, PendingStatus::Pending);
            if let Some(at) = expires_at {
                self.expiries.insert((at, position));
                self.log(Undo::ExpiryAdded { key: (at, position) });
            }
        }
        TransferOutcome { result: R::Ok, timestamp, amount }
    }

    fn insert_transfer(
        &mut self,
        transfer: Transfer,
        dr_position: u32,
        cr_position: u32,
        vacant: Option<Vacant>,
    ) -> u32 {
        let links = [*self.account_heads.get(dr_position), *self.account_heads.get(cr_position)];
        let position = self.transfers.push(transfer, links);
        self.pending.push(0);
        match vacant {
            Some(vacant) => self.transfer_index.insert_vacant(vacant, position),
            None => {
                let transfers = &self.transfers;
                self.transfer_index.insert_hashed(transfer.id, position, |p| transfers.id_hash(p));
            }
        }
        *self.account_heads.get_mut(dr_position) = position;
        *self.account_heads.get_mut(cr_position) = position;
        for account in [dr_position, cr_position] {
            let count = &mut self.account_counts[account as usize];
            *count += 1;
            if count.is_multiple_of(MARK_EVERY) {
                self.account_marks.insert((account, position));
            }
        }
        self.log(Undo::TransferCreated);
        position
    }

    fn record_balances(&mut self, position: u32, account: &Account, timestamp: u64) {
        if !account.flags.has(AccountFlags::HISTORY) {
            return;
        }
        let entry = self.balance_log.push(
            position,
            &AccountBalance {
                timestamp,
                debits_pending: account.debits_pending,
                debits_posted: account.debits_posted,
                credits_pending: account.credits_pending,
                credits_posted: account.credits_posted,
            },
        );
        self.balance_index.push(position, entry);
        self.log(Undo::BalancePushed { account: position });
    }

    /// The answer to a transfer whose id is taken by the stored transfer at `position`:
    /// `exists` with the stored timestamp and amount, or the first field that differs.
    fn transfer_exists(&self, t: &Transfer, position: u32) -> TransferOutcome {
        use CreateTransferResult as R;
        let e = self.transfers.at(position);
        // The flags decide how the other fields compare, so they come first.
        let difference = if e.flags != t.flags {
            Some(R::ExistsWithDifferentFlags)
        } else if e.pending_id != t.pending_id {
            Some(R::ExistsWithDifferentPendingId)
        } else if e.timeout != t.timeout {
            Some(R::ExistsWithDifferentTimeout)
        } else if t.flags.has(TransferFlags::POST_PENDING_TRANSFER) || t.flags.has(TransferFlags::VOID_PENDING_TRANSFER)
        {
            let p = self.transfer(e.pending_id).expect("the pending transfer of a stored post or void");
            exists::resolution_difference(t, &e, &p)
        } else {
            exists::plain_difference(t, &e)
        };
        match difference {
            Some(result) => TransferOutcome::failed(result),
            None => TransferOutcome { result: R::Exists, timestamp: e.timestamp, amount: e.amount },
        }
    }

    fn resolve_pending(&mut self, t: &Transfer, timestamp: u64, vacant: Vacant) -> TransferOutcome {
        use CreateTransferResult as R;
        let fail = TransferOutcome::failed;
        let post = t.flags.has(TransferFlags::POST_PENDING_TRANSFER);
        if t.pending_id == 0 {
            return fail(R::PendingIdMustNotBeZero);
        }
        if t.pending_id == u128::MAX {
            return fail(R::PendingIdMustNotBeIntMax);
        }
        if t.pending_id == t.id {
            return fail(R::PendingIdMustBeDifferent);
        }
        if t.timeout != 0 {
            return fail(R::TimeoutReservedForPendingTransfer);
        }
        let Some(p_position) = self.transfer_position(t.pending_id) else {
            return fail(R::PendingTransferNotFound);
        };
        let p = self.transfers.at(p_position);
        if !p.flags.has(TransferFlags::PENDING) {
            return fail(R::PendingTransferNotPending);
        }
        if t.debit_account_id != 0 && t.debit_account_id != p.debit_account_id {
            return fail(R::PendingTransferHasDifferentDebitAccountId);
        }
        if t.credit_account_id != 0 && t.credit_account_id != p.credit_account_id {
            return fail(R::PendingTransferHasDifferentCreditAccountId);
        }
        if t.ledger != 0 && t.ledger != p.ledger {
            return fail(R::PendingTransferHasDifferentLedger);
        }
        if t.code != 0 && t.code != p.code {
            return fail(R::PendingTransferHasDifferentCode);
        }
        // "The whole pending amount" is `AMOUNT_MAX` for a post (which may post 0) and 0 for a
        // void (which must release everything).
        let whole = if post { t.amount == AMOUNT_MAX } else { t.amount == 0 };
        let amount = if whole { p.amount } else { t.amount };
        if amount > p.amount {
            return fail(R::ExceedsPendingTransferAmount);
        }
        if !post && amount < p.amount {
            return fail(R::PendingTransferHasDifferentAmount);
        }
        match PendingStatus::from_u8(*self.pending.get(p_position)) {
            Some(PendingStatus::Pending) => {}
            Some(PendingStatus::Posted) => return fail(R::PendingTransferAlreadyPosted),
            Some(PendingStatus::Voided) => return fail(R::PendingTransferAlreadyVoided),
            Some(PendingStatus::Expired) => return fail(R::PendingTransferExpired),
            None => unreachable!("pending transfer {} without a status", p.id),
        }
        let expires_at = expiry_of(&p);
        if let Some(at) = expires_at {
            if at <= timestamp {
                return fail(R::PendingTransferExpired);
            }
        }
        let dr_position = self.account_position(p.debit_account_id).expect("debit account of a pending transfer");
        let cr_position = self.account_position(p.credit_account_id).expect("credit account of a pending transfer");
        let mut dr = *self.accounts.get(dr_position);
        let mut cr = *self.accounts.get(cr_position);
        // A void is the only movement a closed account takes. A closing transfer keeps its
        // account closed while it is pending, so it can be voided (or expire) but never posted.
        if post && dr.flags.has(AccountFlags::CLOSED) {
            return fail(R::DebitAccountAlreadyClosed);
        }
        if post && cr.flags.has(AccountFlags::CLOSED) {
            return fail(R::CreditAccountAlreadyClosed);
        }
        // No overflow checks: the amount moves from pending to posted, and pending plus
        // posted was kept in range when the reservation was made (`overflows_debits`).
        debug_assert!(dr.debits().is_some() && cr.credits().is_some() && amount <= p.amount);

        dr.debits_pending -= p.amount;
        cr.credits_pending -= p.amount;
        if post {
            dr.debits_posted += amount;
            cr.credits_posted += amount;
        } else {
            if p.flags.has(TransferFlags::CLOSING_DEBIT) {
                dr.flags.0 &= !AccountFlags::CLOSED;
            }
            if p.flags.has(TransferFlags::CLOSING_CREDIT) {
                cr.flags.0 &= !AccountFlags::CLOSED;
            }
        }
        let stored = Transfer {
            id: t.id,
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            amount,
            pending_id: t.pending_id,
            user_data_128: if t.user_data_128 != 0 { t.user_data_128 } else { p.user_data_128 },
            user_data_64: if t.user_data_64 != 0 { t.user_data_64 } else { p.user_data_64 },
            user_data_32: if t.user_data_32 != 0 { t.user_data_32 } else { p.user_data_32 },
            timeout: 0,
            ledger: p.ledger,
            code: p.code,
            flags: t.flags,
            timestamp,
        };
        self.insert_transfer(stored, dr_position, cr_position, Some(vacant));
        self.set_account(dr_position, dr);
        self.set_account(cr_position, cr);
        self.record_balances(dr_position, &dr, timestamp);
        self.record_balances(cr_position, &cr, timestamp);
        self.set_pending(p_position, if post { PendingStatus::Posted } else { PendingStatus::Voided });
        if let Some(at) = expires_at {
            self.expiries.remove(&(at, p_position));
            self.log(Undo::ExpiryRemoved { key: (at, p_position) });
        }
        TransferOutcome { result: R::Ok, timestamp, amount }
    }

    /// Releases up to `max` pending transfers whose timeout has passed at `now`, oldest first,
    /// and returns them; the rest wait for the next batch (the engine commits one at once
    /// while [`next_expiry`](Self::next_expiry) is due), so no batch does unbounded work. A
    /// transfer past its timeout cannot be posted or voided even before it is released
    /// (`pending_transfer_expired`). Deterministic: it depends only on `now` and the state.
    pub fn expire_pending(&mut self, now: u64, max: usize) -> Vec<Transfer> {
        let mut expired = Vec::new();
        while let Some(&(at, position)) = self.expiries.first() {
            if at > now || expired.len() >= max {
                break;
            }
            self.expiries.pop_first();
            let p = self.transfers.at(position);
            debug_assert_eq!(PendingStatus::from_u8(*self.pending.get(position)), Some(PendingStatus::Pending));
            let dr_position = self.account_position(p.debit_account_id).expect("debit account");
            let cr_position = self.account_position(p.credit_account_id).expect("credit account");
            let mut dr = *self.accounts.get(dr_position);
            let mut cr = *self.accounts.get(cr_position);
            dr.debits_pending -= p.amount;
            cr.credits_pending -= p.amount;
            if p.flags.has(TransferFlags::CLOSING_DEBIT) {
                dr.flags.0 &= !AccountFlags::CLOSED;
            }
            if p.flags.has(TransferFlags::CLOSING_CREDIT) {
                cr.flags.0 &= !AccountFlags::CLOSED;
            }
            self.set_account(dr_position, dr);
            self.set_account(cr_position, cr);
            // Recorded at `now`, when the release is applied: `at` may be earlier than events of
            // the previous batch, and a balance history never goes back in time.
            self.record_balances(dr_position, &dr, now);
            self.record_balances(cr_position, &cr, now);
            self.set_pending(position, PendingStatus::Expired);
            expired.push(p);
        }
        expired
    }
}

/// When a pending transfer expires (`None` without a timeout).
pub(crate) fn expiry_of(p: &Transfer) -> Option<u64> {
    if p.timeout == 0 {
        None
    } else {
        // Checked when the pending transfer was created (`overflows_timeout`).
        Some(p.timestamp + p.timeout as u64 * NANOS_PER_SECOND)
    }
}

/// Runs events in linked chains: a chain is a run of events with the `linked` flag plus the
/// first event without it. If any event of a chain fails, every change of the chain is rolled
/// back, the failing event keeps its own result and the others get `linked_failed`. A chain
/// still open at the end of the batch fails with `chain_open` on its last event.
#[allow(clippy::too_many_arguments)]
fn run_chains<O: Copy, R: Copy>(
    count: usize,
    linked: impl Fn(usize) -> bool,
    ledger: &mut Ledger,
    mut apply: impl FnMut(&mut Ledger, usize) -> O,
    failed: impl Fn(R) -> O,
    linked_failed: R,
    chain_open: R,
    out: &mut Vec<O>,
    is_success: impl Fn(&O) -> bool,
) {
    let mut i = 0;
    while i < count {
        if !linked(i) {
            // The common case, a lone event: checks come before changes, so a failure changed
            // nothing and needs no undo log.
            out.push(apply(ledger, i));
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        while end < count && linked(end) {
            end += 1;
        }
        // `end` is the first unlinked event (the chain's last), or `count` if the chain is open.
        let open = end == count;
        let last = if open { count - 1 } else { end };
        let scope = ledger.begin();
        let mut failure = None;
        for j in start..=last {
            let outcome = if open && j == last { failed(chain_open) } else { apply(ledger, j) };
            out.push(outcome);
            if !is_success(&outcome) {
                failure = Some(j);
                break;
            }
        }
        match failure {
            None => ledger.commit(scope),
            Some(failed_at) => {
                ledger.rollback(scope);
                for (j, slot) in out[start..].iter_mut().enumerate() {
                    if start + j != failed_at {
                        *slot = failed(linked_failed);
                    }
                }
                for _ in failed_at + 1..=last {
                    out.push(failed(linked_failed));
                }
                // An open chain says so on its last event, whatever failed before it.
                if open {
                    out[last] = failed(chain_open);
                }
            }
        }
        i = last + 1;
    }
}
