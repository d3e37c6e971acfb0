//! A user's transaction history: one entry per user-visible event (top-up, withdrawal,
//! sent, received, held, returned), newest first. It is read from the ledger, not stored
//! twice: the wallet account's own transfer history (newest first, indexed per account) gives
//! the events in order, each transfer's domain id says what it was, and the wallet's balance
//! history (wallets have the `history` flag) gives the balance after it.

use super::funding::{FundingKind, FundingStatus};
use super::remittance::{Remittance, RemittanceStatus};
use super::Wallets;
use crate::chart;
use crate::ledger::{Ledger, TransferFlags};
use crate::money::Amount;

/// Transfers of the wallet's account read from the ledger at a time.
const HISTORY_PAGE: usize = 256;

/// What kind of event an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Money in from the user's bank account.
    TopUp,
    /// Money out to the user's bank account.
    Withdrawal,
    /// Money sent to another user (or to a number, once its new wallet claimed it).
    Sent,
    /// Money received from another user.
    Received,
    /// Money sent to a number without a wallet, while held for it (status `held`), and when
    /// it never arrived (`cancelled`, `returned`).
    Held,
    /// Held money back with its sender: cancelled (status `cancelled`) or returned by the 48-hour
    /// timeout (`returned`), at the moment it came back.
    Returned,
    /// An operator's audited adjustment (its reason is the memo).
    Adjustment,
    /// A payment to a merchant (its item is the memo), from its approval on.
    Payment,
    /// A merchant's refund of a payment.
    Refund,
    /// A payment at a partner's merchant abroad (the merchant's name is the memo), from the
    /// moment the money was reserved.
    OverseasPayment,
    /// A partner's refund of a payment abroad.
    OverseasRefund,
}

impl EntryKind {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::TopUp => "top_up",
            EntryKind::Withdrawal => "withdrawal",
            EntryKind::Sent => "sent",
            EntryKind::Received => "received",
            EntryKind::Held => "held",
            EntryKind::Returned => "returned",
            EntryKind::Adjustment => "adjustment",
            EntryKind::Payment => "payment",
            EntryKind::Refund => "refund",
            EntryKind::OverseasPayment => "overseas_payment",
            EntryKind::OverseasRefund => "overseas_refund",
        }
    }
}

/// One entry of a user's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What happened.
    pub kind: EntryKind,
    /// The domain object's id (funding, remittance or adjustment).
    pub object_id: u64,
    /// Won; positive.
    pub amount: Amount,
    /// Kasa's fee on top of the amount (withdrawals), else 0.
    pub fee: Amount,
    /// Into (true) or out of the wallet.
    pub credit: bool,
    /// The status name of the object (`succeeded`, `pending`, `held`, `returned`, ...).
    pub status: &'static str,
    /// The other party: a user id for remittances between users.
    pub counterparty_user: Option<u64>,
    /// For remittances held for a number: the number, masked.
    pub counterparty_phone: Option<String>,
    /// For fundings: the bank account id.
    pub bank_account_id: Option<u64>,
    /// For payments and refunds: the merchant's id and display name.
    pub counterparty_merchant: Option<(u64, String)>,
    /// For payments and refunds at a store: the store's name.
    pub store_name: Option<String>,
    /// The memo of a remittance, or the reason of an adjustment.
    pub memo: String,
    /// The wallet's balance right after the money moved (absent while it is pending).
    pub balance_after: Option<Amount>,
    /// When it happened: the timestamp of its first ledger transfer (also the cursor).
    pub timestamp: u64,
}

/// The wallet's balance at a timestamp.
pub type BalanceAt<'a> = dyn Fn(u64) -> Option<Amount> + 'a;
/// Another domain's entry for a wallet transfer of its own kinds (a payment, a refund).
pub type OtherEntries<'a> = dyn Fn(&crate::ledger::Transfer, &BalanceAt<'_>) -> Option<Entry> + 'a;

/// Where a page of history starts. Entries come from two sources: the wallet's transfers and
/// the holds their timeout returned, whose time can equal a transfer's. At equal times the
/// transfer's entry comes first, so a page boundary between the two needs both bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryCursor {
    /// Entries from transfers with timestamps below this (0: no bound).
    pub before: u64,
    /// Returned-by-timeout entries with times below this (0: no bound).
    pub returned_before: u64,
}

impl Entry {
    /// The cursor for the entries after this one.
    pub fn cursor_after(&self) -> HistoryCursor {
        if self.is_timeout_return() {
            HistoryCursor { before: self.timestamp, returned_before: self.timestamp }
        } else {
            HistoryCursor { before: self.timestamp, returned_before: self.timestamp.saturating_add(1) }
        }
    }

    /// Whether it is a hold returned by its timeout (which has no transfer of its own).
    fn is_timeout_return(&self) -> bool {
        self.kind == EntryKind::Returned && self.status == "returned"
    }
}

impl Wallets {
    /// Up to `limit` entries of `user_id`'s history from `cursor` on, newest first: the
    /// wallet's own entries only (`State::history` adds other domains').
    pub fn history(&self, ledger: &Ledger, user_id: u64, cursor: HistoryCursor, limit: usize) -> Vec<Entry> {
        self.history_with(ledger, user_id, cursor, limit, &|_, _| None)
    }

    /// [`Wallets::history`] with `other` giving the entry of a transfer of another domain
    /// (a payment, a refund), given the transfer and the wallet's balance at a timestamp.
    pub fn history_with(
        &self,
        ledger: &Ledger,
        user_id: u64,
        cursor: HistoryCursor,
        limit: usize,
        other: &OtherEntries<'_>,
    ) -> Vec<Entry> {
        let before = cursor.before;
        let Some(user) = self.user(user_id) else { return Vec::new() };
        let account = user.wallet_account_id();
        let balances = ledger.account_balances(account);
        let balance_at = |timestamp: u64| -> Option<Amount> {
            let i = balances.partition_point(|b| b.timestamp <= timestamp);
            let b = balances.get(i.checked_sub(1)?)?;
            Amount::from_ledger(b.credits_posted.saturating_sub(b.debits_posted))
        };
        let timestamp_of = |id: u128| ledger.transfer(id).map(|t| t.timestamp);
        let mut out = Vec::new();
        let mut max = before.saturating_sub(1);
        // Walk the wallet's transfers in pages; resolutions are folded into their event.
        'pages: while out.len() < limit {
            if before != 0 && max == 0 {
                break;
            }
            let page = ledger.account_transfers(account, 0, max, HISTORY_PAGE);
            let Some(last) = page.last() else { break };
            // A short page is the account's oldest: asking again below it would only search
            // the ledger for transfers the account does not have (a cost that grows with
            // everyone's history, not the user's).
            max = if page.len() < HISTORY_PAGE { 0 } else { last.timestamp.saturating_sub(1) };
            let oldest = max == 0;
            for t in &page {
                let (kind, n) = chart::id_parts(t.id);
                let entry = if kind == chart::FUNDING_RESERVE.number {
                    let Some(f) = self.funding(n) else { continue };
                    let settled = timestamp_of(chart::FUNDING_RESOLVE.id(n));
                    Entry {
                        kind: if f.kind == FundingKind::TopUp { EntryKind::TopUp } else { EntryKind::Withdrawal },
                        object_id: n,
                        amount: f.amount,
                        fee: f.fee_charged(),
                        credit: f.kind == FundingKind::TopUp,
                        status: f.status.name(),
                        counterparty_user: None,
                        counterparty_phone: None,
                        bank_account_id: Some(f.bank_account_id),
                        counterparty_merchant: None,
                        store_name: None,
                        memo: String::new(),
                        balance_after: if f.status == FundingStatus::Pending {
                            None
                        } else {
                            settled.and_then(balance_at)
                        },
                        timestamp: t.timestamp,
                    }
                } else if kind == chart::REMITTANCE.number || kind == chart::REMITTANCE_PAYOUT.number {
                    let Some(r) = self.remittance(n) else { continue };
                    let status = r.status(ledger);
                    let sent = r.from_user == user_id;
                    let moved = if status == RemittanceStatus::Held {
                        None
                    } else if status == RemittanceStatus::Completed && r.to_phone.is_some() && sent {
                        timestamp_of(chart::REMITTANCE_RESOLVE.id(n))
                    } else if status == RemittanceStatus::Completed {
                        Some(t.timestamp)
                    } else {
                        // Cancelled: the void's time. Returned by the timeout: no transfer
                        // marks the moment, so no balance is claimed for it.
                        timestamp_of(chart::REMITTANCE_RESOLVE.id(n))
                    };
                    let kind = match (sent, r.to_phone.is_some() && status != RemittanceStatus::Completed) {
                        (true, true) => EntryKind::Held,
                        (true, false) => EntryKind::Sent,
                        (false, _) => EntryKind::Received,
                    };
                    Entry {
                        kind,
                        object_id: n,
                        amount: r.amount,
                        fee: Amount::ZERO,
                        credit: !sent,
                        status: status.name(),
                        counterparty_user: if sent { r.to_user } else { Some(r.from_user) },
                        counterparty_phone: if sent && r.to_user.is_none() {
                            r.to_phone.as_ref().map(|p| p.masked())
                        } else {
                            None
                        },
                        bank_account_id: None,
                        counterparty_merchant: None,
                        store_name: None,
                        memo: r.memo.as_str().to_string(),
                        balance_after: moved.and_then(balance_at),
                        timestamp: t.timestamp,
                    }
                } else if kind == chart::REMITTANCE_RESOLVE.number && t.flags.has(TransferFlags::VOID_PENDING_TRANSFER)
                {
                    // A cancelled hold: the money is back at the void's time.
                    let Some(r) = self.remittance(n) else { continue };
                    if r.from_user != user_id {
                        continue;
                    }
                    self.returned_entry(r, "cancelled", balance_at(t.timestamp), t.timestamp)
                } else if kind == chart::ADJUSTMENT.number {
                    let Some(a) = self.adjustment(n) else { continue };
                    Entry {
                        kind: EntryKind::Adjustment,
                        object_id: n,
                        amount: a.amount,
                        fee: Amount::ZERO,
                        credit: a.direction == super::Direction::Credit,
                        status: "completed",
                        counterparty_user: None,
                        counterparty_phone: None,
                        bank_account_id: None,
                        counterparty_merchant: None,
                        store_name: None,
                        memo: a.reason.as_str().to_string(),
                        balance_after: balance_at(t.timestamp),
                        timestamp: t.timestamp,
                    }
                } else if let Some(entry) = other(t, &balance_at) {
                    entry
                } else {
                    // Other resolutions and settlements belong to the entries above.
                    continue;
                };
                out.push(entry);
                if out.len() == limit {
                    break 'pages;
                }
            }
            if oldest {
                break;
            }
        }
        // Holds returned by their timeout have no transfer of their own in the wallet's
        // history: merge them in from the remittances' index, by time.
        let returned = self.returned_before(user_id, cursor.returned_before, limit);
        if !returned.is_empty() {
            for (at, id) in returned {
                let r = self.remittance(id).expect("indexed remittances exist");
                out.push(self.returned_entry(r, "returned", balance_at(at), at));
            }
            out.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
            out.truncate(limit);
        }
        out
    }

    /// The entry for held money back with its sender.
    fn returned_entry(&self, r: &Remittance, status: &'static str, balance_after: Option<Amount>, at: u64) -> Entry {
        Entry {
            kind: EntryKind::Returned,
            object_id: r.id,
            amount: r.amount,
            fee: Amount::ZERO,
            credit: true,
            status,
            counterparty_user: None,
            counterparty_phone: r.to_phone.as_ref().map(|p| p.masked()),
            bank_account_id: None,
            counterparty_merchant: None,
            store_name: None,
            memo: r.memo.as_str().to_string(),
            balance_after,
            timestamp: at,
        }
    }
}
