//! The reference model: a second ledger written from the semantics alone, with no code or
//! data structure shared with `kasa_core::ledger` (see `main.rs`).

use super::*;

#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    pub(crate) accounts: BTreeMap<u128, Account>,
    /// Every transfer in creation order.
    pub(crate) transfers: Vec<Transfer>,
    /// Transfer id to index in `transfers`.
    pub(crate) index: BTreeMap<u128, usize>,
    /// Status of every pending transfer, by its id.
    pub(crate) pending: BTreeMap<u128, PendingStatus>,
    /// Balances after every change, for accounts with the `history` flag.
    pub(crate) history: BTreeMap<u128, Vec<AccountBalance>>,
    /// Ids of transfers that failed with a transient result, in the order they failed.
    pub(crate) failed: Vec<u128>,
    pub(crate) last_timestamp: u64,
    pub(crate) batches: u64,
}

pub(crate) fn expires_at(p: &Transfer) -> Option<u64> {
    (p.timeout != 0).then(|| p.timestamp + u64::from(p.timeout) * SECOND)
}

/// TigerBeetle keeps timestamps, expiries included, below 2^63.
pub(crate) const EXPIRY_LAST: u64 = (1 << 63) - 1;

/// Results that depend on the state at the time, so that the same transfer might succeed
/// later: an id that fails with one of them is spent.
pub(crate) const TRANSIENT: [TR; 7] = [
    TR::DebitAccountNotFound,
    TR::CreditAccountNotFound,
    TR::PendingTransferNotFound,
    TR::ExceedsCredits,
    TR::ExceedsDebits,
    TR::DebitAccountAlreadyClosed,
    TR::CreditAccountAlreadyClosed,
];

/// The result of the first check that fails, in table order.
pub(crate) fn first_failure<R: Copy>(checks: &[(bool, R)]) -> Option<R> {
    checks.iter().find(|(failed, _)| *failed).map(|&(_, result)| result)
}

pub(crate) fn overflows(a: u128, b: u128) -> bool {
    a.checked_add(b).is_none()
}

pub(crate) fn failed(result: TR) -> TransferOutcome {
    TransferOutcome { result, timestamp: 0, amount: 0 }
}

/// One event of a command, so that chains of accounts and of transfers run the same way.
pub(crate) trait Event: Copy {
    type Outcome: Copy;
    fn linked(&self) -> bool;
    fn create(&self, model: &mut Model, timestamp: u64) -> Self::Outcome;
    fn succeeded(outcome: &Self::Outcome) -> bool;
    /// The id to remember as spent if this event failed with `outcome`.
    fn spent_id(&self, outcome: &Self::Outcome) -> Option<u128>;
    fn linked_event_failed() -> Self::Outcome;
    fn linked_event_chain_open() -> Self::Outcome;
}

impl Event for Account {
    type Outcome = AccountOutcome;
    fn linked(&self) -> bool {
        self.flags.has(AF::LINKED)
    }
    fn create(&self, model: &mut Model, timestamp: u64) -> AccountOutcome {
        model.create_account(self, timestamp)
    }
    fn succeeded(outcome: &AccountOutcome) -> bool {
        // `exists` keeps a chain going (a retried chain succeeds again), as in the ledger.
        matches!(outcome.result, AR::Ok | AR::Exists)
    }
    fn spent_id(&self, _: &AccountOutcome) -> Option<u128> {
        // Account results never depend on the moment, so no account id is ever spent.
        None
    }
    fn linked_event_failed() -> AccountOutcome {
        AccountOutcome { result: AR::LinkedEventFailed, timestamp: 0 }
    }
    fn linked_event_chain_open() -> AccountOutcome {
        AccountOutcome { result: AR::LinkedEventChainOpen, timestamp: 0 }
    }
}

impl Event for Transfer {
    type Outcome = TransferOutcome;
    fn linked(&self) -> bool {
        self.flags.has(TF::LINKED)
    }
    fn create(&self, model: &mut Model, timestamp: u64) -> TransferOutcome {
        model.create_transfer(self, timestamp)
    }
    fn succeeded(outcome: &TransferOutcome) -> bool {
        matches!(outcome.result, TR::Ok | TR::Exists)
    }
    fn spent_id(&self, outcome: &TransferOutcome) -> Option<u128> {
        TRANSIENT.contains(&outcome.result).then_some(self.id)
    }
    fn linked_event_failed() -> TransferOutcome {
        failed(TR::LinkedEventFailed)
    }
    fn linked_event_chain_open() -> TransferOutcome {
        failed(TR::LinkedEventChainOpen)
    }
}

impl Model {
    pub(crate) fn transfer(&self, id: u128) -> Option<Transfer> {
        self.index.get(&id).map(|&i| self.transfers[i])
    }

    pub(crate) fn open_pending(&self) -> Vec<Transfer> {
        self.transfers.iter().filter(|t| self.pending.get(&t.id) == Some(&PendingStatus::Pending)).copied().collect()
    }

    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.open_pending().iter().filter_map(expires_at).min()
    }

    pub(crate) fn apply(&mut self, batch: &Batch) -> Vec<Outcome> {
        self.expire(batch.timestamp);
        let mut next = batch.timestamp;
        let mut outcomes = Vec::new();
        for command in &batch.commands {
            outcomes.push(match command {
                Command::CreateAccounts(accounts) => Outcome::CreateAccounts(self.run_chains(accounts, next)),
                Command::CreateTransfers(transfers) => Outcome::CreateTransfers(self.run_chains(transfers, next)),
            });
            next += command.events() as u64;
        }
        self.last_timestamp = if next == batch.timestamp { batch.timestamp } else { next - 1 };
        self.batches += 1;
        outcomes
    }

    /// A chain is a run of linked events and the first unlinked one after them. If any event
    /// fails, the model goes back to its clone from before the chain; the failing event keeps
    /// its result and the others get `linked_event_failed`, except the last event of a chain
    /// left open at the end of the command, which always gets `linked_event_chain_open` (as in
    /// TigerBeetle, which checks for the open chain before anything else). A transfer that
    /// failed with a transient result is remembered after the roll-back, so the roll-back does
    /// not forget it. An event that answers `exists` counts as a success (TigerBeetle would
    /// fail the chain there; Kasa keeps retried chains answering `exists` throughout).
    pub(crate) fn run_chains<E: Event>(&mut self, events: &[E], first_timestamp: u64) -> Vec<E::Outcome> {
        let mut out = Vec::with_capacity(events.len());
        let mut start = 0;
        while start < events.len() {
            let mut end = start;
            while events[end].linked() && end + 1 < events.len() {
                end += 1;
            }
            let open = events[end].linked();
            // A lone event changes nothing when it fails (checks come first), so only real
            // chains pay for the clone.
            let before = (end > start || open).then(|| self.clone());
            let mut failure = None;
            let mut results = Vec::new();
            for (i, event) in events.iter().enumerate().take(end + 1).skip(start) {
                let outcome = if open && i == end {
                    E::linked_event_chain_open()
                } else if failure.is_some() {
                    E::linked_event_failed()
                } else {
                    event.create(self, first_timestamp + i as u64)
                };
                if failure.is_none() && !E::succeeded(&outcome) {
                    failure = Some(i);
                }
                results.push(outcome);
            }
            if let Some(failed_at) = failure {
                if let Some(before) = before {
                    *self = before;
                }
                if let Some(id) = events[failed_at].spent_id(&results[failed_at - start]) {
                    self.failed.push(id);
                }
                for (i, result) in (start..=end).zip(results.iter_mut()) {
                    if i != failed_at && !(open && i == end) {
                        *result = E::linked_event_failed();
                    }
                }
            }
            out.extend(results);
            start = end + 1;
        }
        out
    }

    pub(crate) fn create_account(&mut self, a: &Account, timestamp: u64) -> AccountOutcome {
        let fail = |result| AccountOutcome { result, timestamp: 0 };
        let shape = [
            (a.timestamp != 0, AR::TimestampMustBeZero),
            (a.reserved != 0, AR::ReservedField),
            (a.flags.0 & !AF::KNOWN != 0, AR::ReservedFlag),
            (a.id == 0, AR::IdMustNotBeZero),
            (a.id == MAX, AR::IdMustNotBeIntMax),
            (reserved(a.id), AR::IdReserved),
        ];
        if let Some(result) = first_failure(&shape) {
            return fail(result);
        }
        if let Some(e) = self.accounts.get(&a.id) {
            // Every flag counts, even `closed` that a closing transfer may have set since.
            let differences = [
                (e.flags != a.flags, AR::ExistsWithDifferentFlags),
                (e.user_data_128 != a.user_data_128, AR::ExistsWithDifferentUserData128),
                (e.user_data_64 != a.user_data_64, AR::ExistsWithDifferentUserData64),
                (e.user_data_32 != a.user_data_32, AR::ExistsWithDifferentUserData32),
                (e.ledger != a.ledger, AR::ExistsWithDifferentLedger),
                (e.code != a.code, AR::ExistsWithDifferentCode),
            ];
            return match first_failure(&differences) {
                Some(result) => fail(result),
                None => AccountOutcome { result: AR::Exists, timestamp: e.timestamp },
            };
        }
        let has = |flag| a.flags.has(flag);
        let fields = [
            (
                has(AF::DEBITS_MUST_NOT_EXCEED_CREDITS) && has(AF::CREDITS_MUST_NOT_EXCEED_DEBITS),
                AR::FlagsAreMutuallyExclusive,
            ),
            (a.debits_pending != 0, AR::DebitsPendingMustBeZero),
            (a.debits_posted != 0, AR::DebitsPostedMustBeZero),
            (a.credits_pending != 0, AR::CreditsPendingMustBeZero),
            (a.credits_posted != 0, AR::CreditsPostedMustBeZero),
            (a.ledger == 0, AR::LedgerMustNotBeZero),
            (a.code == 0, AR::CodeMustNotBeZero),
        ];
        if let Some(result) = first_failure(&fields) {
            return fail(result);
        }
        self.accounts.insert(a.id, Account { timestamp, ..*a });
        AccountOutcome { result: AR::Ok, timestamp }
    }

    pub(crate) fn create_transfer(&mut self, t: &Transfer, timestamp: u64) -> TransferOutcome {
        let has = |flag| t.flags.has(flag);
        let shape = [
            (t.timestamp != 0, TR::TimestampMustBeZero),
            (t.flags.0 & !TF::KNOWN != 0, TR::ReservedFlag),
            (t.id == 0, TR::IdMustNotBeZero),
            (t.id == MAX, TR::IdMustNotBeIntMax),
            (reserved(t.id), TR::IdReserved),
            (reserved(t.pending_id), TR::PendingIdReserved),
        ];
        if let Some(result) = first_failure(&shape) {
            return failed(result);
        }
        if let Some(e) = self.transfer(t.id) {
            let p = self.transfer(e.pending_id);
            return transfer_exists(t, &e, p.as_ref());
        }
        if self.failed.contains(&t.id) {
            return failed(TR::IdAlreadyFailed);
        }
        let (pending, post, void) = (has(TF::PENDING), has(TF::POST_PENDING_TRANSFER), has(TF::VOID_PENDING_TRANSFER));
        let balancing = has(TF::BALANCING_DEBIT) || has(TF::BALANCING_CREDIT);
        let closing = has(TF::CLOSING_DEBIT) || has(TF::CLOSING_CREDIT);
        let kinds = [pending, post, void].iter().filter(|&&k| k).count();
        if kinds > 1 || ((post || void) && (balancing || closing)) {
            return failed(TR::FlagsAreMutuallyExclusive);
        }
        if post || void {
            return self.resolve(t, timestamp);
        }
        let fields = [
            (t.debit_account_id == 0, TR::DebitAccountIdMustNotBeZero),
            (t.debit_account_id == MAX, TR::DebitAccountIdMustNotBeIntMax),
            (t.credit_account_id == 0, TR::CreditAccountIdMustNotBeZero),
            (t.credit_account_id == MAX, TR::CreditAccountIdMustNotBeIntMax),
            (t.debit_account_id == t.credit_account_id, TR::AccountsMustBeDifferent),
            (t.pending_id != 0, TR::PendingIdMustBeZero),
            (!pending && t.timeout != 0, TR::TimeoutReservedForPendingTransfer),
            (closing && !pending, TR::ClosingTransferMustBePending),
            (t.ledger == 0, TR::LedgerMustNotBeZero),
            (t.code == 0, TR::CodeMustNotBeZero),
        ];
        if let Some(result) = first_failure(&fields) {
            return failed(result);
        }
        let Some(dr) = self.accounts.get(&t.debit_account_id).copied() else {
            return failed(TR::DebitAccountNotFound);
        };
        let Some(cr) = self.accounts.get(&t.credit_account_id).copied() else {
            return failed(TR::CreditAccountNotFound);
        };
        // Closed accounts are checked before balancing, overflows and limits, as in
        // TigerBeetle (the result enum lists them last, but the ledger checks them here).
        let accounts = [
            (dr.ledger != cr.ledger, TR::AccountsMustHaveTheSameLedger),
            (t.ledger != dr.ledger, TR::TransferMustHaveTheSameLedgerAsAccounts),
            (dr.flags.has(AF::CLOSED), TR::DebitAccountAlreadyClosed),
            (cr.flags.has(AF::CLOSED), TR::CreditAccountAlreadyClosed),
        ];
        if let Some(result) = first_failure(&accounts) {
            return failed(result);
        }
        // Neither sum can overflow: `overflows_debits` and `overflows_credits` keep them in range.
        let debits = dr.debits_pending + dr.debits_posted;
        let credits = cr.credits_pending + cr.credits_posted;
        // Balancing moves what is available, possibly nothing (amount 0, still created).
        let mut amount = t.amount;
        if has(TF::BALANCING_DEBIT) {
            amount = amount.min(dr.credits_posted.saturating_sub(debits));
        }
        if has(TF::BALANCING_CREDIT) {
            amount = amount.min(cr.debits_posted.saturating_sub(credits));
        }
        // The table is evaluated whole, so sums saturate; an overflow is caught above anyway.
        let expiry = timestamp.checked_add(u64::from(t.timeout) * SECOND).filter(|&at| at <= EXPIRY_LAST);
        let limits = [
            (pending && overflows(dr.debits_pending, amount), TR::OverflowsDebitsPending),
            (pending && overflows(cr.credits_pending, amount), TR::OverflowsCreditsPending),
            (overflows(dr.debits_posted, amount), TR::OverflowsDebitsPosted),
            (overflows(cr.credits_posted, amount), TR::OverflowsCreditsPosted),
            (overflows(debits, amount), TR::OverflowsDebits),
            (overflows(credits, amount), TR::OverflowsCredits),
            (t.timeout != 0 && expiry.is_none(), TR::OverflowsTimeout),
            (
                dr.flags.has(AF::DEBITS_MUST_NOT_EXCEED_CREDITS) && debits.saturating_add(amount) > dr.credits_posted,
                TR::ExceedsCredits,
            ),
            (
                cr.flags.has(AF::CREDITS_MUST_NOT_EXCEED_DEBITS) && credits.saturating_add(amount) > cr.debits_posted,
                TR::ExceedsDebits,
            ),
        ];
        if let Some(result) = first_failure(&limits) {
            return failed(result);
        }
        let dr = self.accounts.get_mut(&t.debit_account_id).expect("debit account");
        if pending {
            dr.debits_pending += amount;
            if has(TF::CLOSING_DEBIT) {
                dr.flags.0 |= AF::CLOSED;
            }
        } else {
            dr.debits_posted += amount;
        }
        let cr = self.accounts.get_mut(&t.credit_account_id).expect("credit account");
        if pending {
            cr.credits_pending += amount;
            if has(TF::CLOSING_CREDIT) {
                cr.flags.0 |= AF::CLOSED;
            }
        } else {
            cr.credits_posted += amount;
        }
        if pending {
            self.pending.insert(t.id, PendingStatus::Pending);
        }
        self.insert(Transfer { amount, timestamp, ..*t });
        TransferOutcome { result: TR::Ok, timestamp, amount }
    }

    /// Posts or voids the pending transfer named by `t.pending_id`.
    pub(crate) fn resolve(&mut self, t: &Transfer, timestamp: u64) -> TransferOutcome {
        let post = t.flags.has(TF::POST_PENDING_TRANSFER);
        let shape = [
            (t.pending_id == 0, TR::PendingIdMustNotBeZero),
            (t.pending_id == MAX, TR::PendingIdMustNotBeIntMax),
            (t.pending_id == t.id, TR::PendingIdMustBeDifferent),
            (t.timeout != 0, TR::TimeoutReservedForPendingTransfer),
        ];
        if let Some(result) = first_failure(&shape) {
            return failed(result);
        }
        let Some(p) = self.transfer(t.pending_id) else {
            return failed(TR::PendingTransferNotFound);
        };
        if !p.flags.has(TF::PENDING) {
            return failed(TR::PendingTransferNotPending);
        }
        // Zero means "inherit from the pending transfer". For the amount, "all of it" is the
        // maximum for a post (which may post 0) and 0 for a void.
        let differs = |asked: u128, pending: u128| asked != 0 && asked != pending;
        let all = if post { t.amount == MAX } else { t.amount == 0 };
        let amount = if all { p.amount } else { t.amount };
        let status = self.pending[&p.id];
        let dr = self.accounts[&p.debit_account_id];
        let cr = self.accounts[&p.credit_account_id];
        let checks = [
            (differs(t.debit_account_id, p.debit_account_id), TR::PendingTransferHasDifferentDebitAccountId),
            (differs(t.credit_account_id, p.credit_account_id), TR::PendingTransferHasDifferentCreditAccountId),
            (differs(t.ledger.into(), p.ledger.into()), TR::PendingTransferHasDifferentLedger),
            (differs(t.code.into(), p.code.into()), TR::PendingTransferHasDifferentCode),
            (amount > p.amount, TR::ExceedsPendingTransferAmount),
            (!post && amount < p.amount, TR::PendingTransferHasDifferentAmount),
            (status == PendingStatus::Posted, TR::PendingTransferAlreadyPosted),
            (status == PendingStatus::Voided, TR::PendingTransferAlreadyVoided),
            (status == PendingStatus::Expired, TR::PendingTransferExpired),
            // Expired by time but not yet released: its expiry falls inside this batch.
            (expires_at(&p).is_some_and(|at| at <= timestamp), TR::PendingTransferExpired),
            // Only a void may touch a closed account, even the one its closing transfer closed.
            (post && dr.flags.has(AF::CLOSED), TR::DebitAccountAlreadyClosed),
            (post && cr.flags.has(AF::CLOSED), TR::CreditAccountAlreadyClosed),
        ];
        if let Some(result) = first_failure(&checks) {
            return failed(result);
        }
        if post {
            self.pending.insert(p.id, PendingStatus::Posted);
            let dr = self.accounts.get_mut(&p.debit_account_id).expect("debit account");
            dr.debits_pending -= p.amount;
            dr.debits_posted += amount;
            let cr = self.accounts.get_mut(&p.credit_account_id).expect("credit account");
            cr.credits_pending -= p.amount;
            cr.credits_posted += amount;
        } else {
            self.pending.insert(p.id, PendingStatus::Voided);
            self.release(&p);
        }
        let inherit = |asked: u128, pending: u128| if asked != 0 { asked } else { pending };
        self.insert(Transfer {
            id: t.id,
            debit_account_id: p.debit_account_id,
            credit_account_id: p.credit_account_id,
            amount,
            pending_id: p.id,
            user_data_128: inherit(t.user_data_128, p.user_data_128),
            user_data_64: inherit(t.user_data_64.into(), p.user_data_64.into()) as u64,
            user_data_32: inherit(t.user_data_32.into(), p.user_data_32.into()) as u32,
            timeout: 0,
            ledger: p.ledger,
            code: p.code,
            flags: t.flags,
            timestamp,
        });
        TransferOutcome { result: TR::Ok, timestamp, amount }
    }

    /// Gives back a reservation (a void or an expiry), and reopens an account it closed.
    pub(crate) fn release(&mut self, p: &Transfer) {
        let dr = self.accounts.get_mut(&p.debit_account_id).expect("debit account");
        dr.debits_pending -= p.amount;
        if p.flags.has(TF::CLOSING_DEBIT) {
            dr.flags.0 &= !AF::CLOSED;
        }
        let cr = self.accounts.get_mut(&p.credit_account_id).expect("credit account");
        cr.credits_pending -= p.amount;
        if p.flags.has(TF::CLOSING_CREDIT) {
            cr.flags.0 &= !AF::CLOSED;
        }
    }

    /// Releases, oldest expiry first, every open pending transfer whose time has come.
    pub(crate) fn expire(&mut self, now: u64) {
        let mut due: Vec<(u64, usize, Transfer)> = self
            .open_pending()
            .into_iter()
            .filter_map(|p| expires_at(&p).filter(|&at| at <= now).map(|at| (at, self.index[&p.id], p)))
            .collect();
        due.sort_by_key(|&(at, index, _)| (at, index));
        for (_, _, p) in due {
            self.pending.insert(p.id, PendingStatus::Expired);
            self.release(&p);
            // Recorded at the batch's timestamp, when the release happens.
            self.record_history(&p, now);
        }
    }

    pub(crate) fn insert(&mut self, t: Transfer) {
        self.index.insert(t.id, self.transfers.len());
        self.transfers.push(t);
        self.record_history(&t, t.timestamp);
    }

    pub(crate) fn record_history(&mut self, t: &Transfer, timestamp: u64) {
        for id in [t.debit_account_id, t.credit_account_id] {
            let a = self.accounts[&id];
            if a.flags.has(AF::HISTORY) {
                self.history.entry(id).or_default().push(AccountBalance {
                    timestamp,
                    debits_pending: a.debits_pending,
                    debits_posted: a.debits_posted,
                    credits_pending: a.credits_pending,
                    credits_posted: a.credits_posted,
                });
            }
        }
    }
}

/// The result of a transfer whose id is taken by `e`; `p` is the transfer named by `e`'s
/// pending id, if any.
pub(crate) fn transfer_exists(t: &Transfer, e: &Transfer, p: Option<&Transfer>) -> TransferOutcome {
    let void = t.flags.has(TF::VOID_PENDING_TRANSFER);
    let resolving = t.flags.has(TF::POST_PENDING_TRANSFER) || void;
    let balancing = t.flags.has(TF::BALANCING_DEBIT) || t.flags.has(TF::BALANCING_CREDIT);
    // A post or void may leave accounts, ledger and code out (as zero): they are the pending
    // transfer's whatever it asks. A user data field left out means "inherited", so it matches
    // only a stored value that is the pending transfer's.
    let same = |asked: u128, stored: u128| asked == stored || (resolving && asked == 0);
    let pending_value = |field: fn(&Transfer) -> u128| p.map(field);
    let same_user_data = |field: fn(&Transfer) -> u128| {
        if resolving && field(t) == 0 {
            pending_value(field) == Some(field(e))
        } else {
            field(t) == field(e)
        }
    };
    let same_amount = if balancing {
        // The amount of a balancing transfer is an upper bound.
        t.amount >= e.amount
    } else if resolving {
        // "All of it" (the maximum for a post, 0 for a void) matches only if all of it moved.
        let all = if void { t.amount == 0 } else { t.amount == MAX };
        if all {
            pending_value(|p| p.amount) == Some(e.amount)
        } else {
            t.amount == e.amount
        }
    } else {
        t.amount == e.amount
    };
    let differences = [
        (t.flags != e.flags, TR::ExistsWithDifferentFlags),
        (t.pending_id != e.pending_id, TR::ExistsWithDifferentPendingId),
        (t.timeout != e.timeout, TR::ExistsWithDifferentTimeout),
        (!same(t.debit_account_id, e.debit_account_id), TR::ExistsWithDifferentDebitAccountId),
        (!same(t.credit_account_id, e.credit_account_id), TR::ExistsWithDifferentCreditAccountId),
        (!same_amount, TR::ExistsWithDifferentAmount),
        (!same_user_data(|x| x.user_data_128), TR::ExistsWithDifferentUserData128),
        (!same_user_data(|x| x.user_data_64.into()), TR::ExistsWithDifferentUserData64),
        (!same_user_data(|x| x.user_data_32.into()), TR::ExistsWithDifferentUserData32),
        (!same(t.ledger.into(), e.ledger.into()), TR::ExistsWithDifferentLedger),
        (!same(t.code.into(), e.code.into()), TR::ExistsWithDifferentCode),
    ];
    match first_failure(&differences) {
        Some(result) => failed(result),
        None => TransferOutcome { result: TR::Exists, timestamp: e.timestamp, amount: e.amount },
    }
}

// -------------------------------------------------------------------------------------------
// The workload.
