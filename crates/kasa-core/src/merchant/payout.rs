//! Payouts: once a KST day, every merchant's balance (captures less refunds and fees, less
//! what earlier payouts took) is paid to its settlement bank account. It happens by engine
//! time, with no request: at the first batch of a new KST day the domain starts a **payout
//! run**, which walks the merchants in id order, at most a slice per batch, and gives each
//! merchant with a positive available balance a payout: a pending transfer from its balance
//! to the bank omnibus account, and a `payout.started` event. The bank rail (in the HTTP
//! crate) drives the event to the bank and records the answer with [`super::Command::SettlePayout`]:
//! paid posts the transfer, failed voids it and the money stays owed, for the next day's run.
//! Suspended and closed merchants are paid out too; a merchant without a settlement bank
//! account (one a partner's import created) is not, and its money stays owed.
//!
//! A payout covers the merchant balance's movements in a few time ranges (`covers`): from
//! the merchant's last payout to its own start, and the ranges of payouts that failed since
//! the merchant's last payout was made (their money comes with this one). `items.csv` lists them; their amounts add up to the payout's.

use super::{Event, Merchants};
use crate::chart;
use crate::ledger::{PendingStatus, Transfer, TransferFlags};
use crate::money::Amount;
use crate::time::{kst_day, NANOS_PER_SECOND};
use crate::wallet::{BankResult, WALLET_CURRENCY};
use serde::{Deserialize, Serialize};

/// Where a payout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayoutStatus {
    /// Sent to the bank, waiting for its answer.
    Pending,
    /// The bank paid the merchant.
    Paid,
    /// The bank refused it, or never took it: the money stays owed.
    Failed,
}

impl PayoutStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "pending",
            PayoutStatus::Paid => "paid",
            PayoutStatus::Failed => "failed",
        }
    }
}

/// A payout, as the state keeps it and a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose.
    pub merchant_id: u64,
    /// Won.
    pub amount: Amount,
    /// The KST day whose run made it.
    pub day: u64,
    /// Where it stands.
    pub status: PayoutStatus,
    /// When it was made.
    pub created_at: u64,
    /// When the bank's answer was recorded (0 while pending).
    pub settled_at: u64,
    /// It pays for the merchant balance's movements with timestamps in these ranges, each
    /// `(after, up to)`, oldest first.
    pub covers: crate::text::BoundedVec<(u64, u64), COVERS_MAX>,
}

/// The most ranges one payout covers: failed payouts' ranges beyond it are merged into one
/// wider range (whose items then also list what other payouts paid).
pub const COVERS_MAX: usize = 32;

impl Payout {
    /// The id of its pending transfer in the books.
    pub fn transfer_id(&self) -> u128 {
        chart::PAYOUT.id(self.id)
    }
}

/// Where the current KST day's payout run stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRun {
    /// The KST day of the last run started (0: none yet).
    pub day: u64,
    /// The next merchant id the run looks at (past the last merchant: the run is done).
    pub next_merchant: u64,
}

/// The start of KST day `day`, in engine time.
pub fn kst_day_start(day: u64) -> u64 {
    (day * 86_400).saturating_sub(9 * 3600).saturating_mul(NANOS_PER_SECOND)
}

impl Merchants {
    /// The payout with this id.
    pub fn payout(&self, id: u64) -> Option<&Payout> {
        id.checked_sub(1).and_then(|i| self.payouts.get(i as usize))
    }

    /// Payouts with ids below `before`, newest first, of `merchant_id` (or every merchant's),
    /// at most `limit`.
    pub fn payouts_before(&self, merchant_id: Option<u64>, before: u64, limit: usize) -> Vec<&Payout> {
        match merchant_id {
            Some(m) => {
                let Some(ids) = self.payouts_of.get(&m) else { return Vec::new() };
                let end = ids.partition_point(|&id| id < before);
                ids[..end].iter().rev().filter_map(|&id| self.payout(id)).take(limit).collect()
            }
            None => {
                let end = (before.saturating_sub(1)).min(self.payouts.len() as u64) as usize;
                (0..end).rev().filter_map(|i| self.payouts.get(i)).take(limit).collect()
            }
        }
    }

    /// Payouts waiting for the bank's answer.
    pub fn pending_payouts(&self) -> impl Iterator<Item = &Payout> + '_ {
        self.pending_payouts.iter().filter_map(|&id| self.payout(id))
    }

    /// Rebuilds which failed payouts' ranges wait for a merchant's next payout (after a
    /// snapshot's payouts are read): those of payouts that failed after the merchant's last
    /// payout was made.
    pub(super) fn rebuild_reclaim(&mut self) {
        self.reclaim.clear();
        for (&merchant_id, ids) in &self.payouts_of {
            let last_made = ids.last().and_then(|&id| self.payout(id)).map_or(0, |p| p.created_at);
            let ranges: Vec<(u64, u64)> = ids
                .iter()
                .filter_map(|&id| self.payout(id))
                .filter(|p| p.status == PayoutStatus::Failed && p.settled_at > last_made)
                .flat_map(|p| p.covers.as_slice().iter().copied())
                .collect();
            if !ranges.is_empty() {
                self.reclaim.insert(merchant_id, ranges);
            }
        }
    }

    /// Adds a payout to the derived indexes.
    pub(super) fn index_payout(&mut self, p: &Payout) {
        self.payouts_of.entry(p.merchant_id).or_default().push(p.id);
        if p.status == PayoutStatus::Pending {
            self.pending_payouts.insert(p.id);
        }
    }

    /// When the payout run has work: at once while a run is unfinished, else at the next
    /// KST midnight; never without merchants.
    pub(super) fn next_payout_due(&self) -> Option<u64> {
        if self.merchants.is_empty() {
            return None;
        }
        if self.payout_run.day != 0 && self.payout_run.next_merchant <= self.merchants.len() as u64 {
            return Some(kst_day_start(self.payout_run.day));
        }
        Some(kst_day_start(self.payout_run.day + 1))
    }

    /// Starts a new day's run when the day turned, and pays out up to `slice` merchants.
    pub(super) fn run_payouts(&mut self, now: u64, slice: usize, ctx: &mut super::Ctx) {
        let today = kst_day(now);
        if self.payout_run.day < today {
            self.payout_run = PayoutRun { day: today, next_merchant: 1 };
        }
        for _ in 0..slice {
            let merchant_id = self.payout_run.next_merchant;
            if merchant_id > self.merchants.len() as u64 {
                break;
            }
            self.payout_run.next_merchant += 1;
            self.pay_out(merchant_id, today, ctx);
        }
    }

    /// Gives `merchant_id` a payout of its available balance, if it is positive.
    fn pay_out(&mut self, merchant_id: u64, day: u64, ctx: &mut super::Ctx) {
        // A merchant without a settlement account (one an import created) is passed by: its
        // money stays owed, and goes with the first run after it has one.
        if self.merchant(merchant_id).is_none_or(|m| m.settlement.is_none()) {
            return;
        }
        let balance = chart::MERCHANT_BALANCE.id(merchant_id);
        let Some(account) = ctx.books.account(balance) else { return };
        let owed = account.credits_posted.saturating_sub(account.debits_posted.saturating_add(account.debits_pending));
        let Some(amount) = Amount::from_ledger(owed).filter(|a| !a.is_zero()) else { return };
        let now = ctx.now();
        chart::ensure_system_account(ctx.books, chart::BANK_OMNIBUS, WALLET_CURRENCY, now);
        // Its own range starts where the merchant's last payout ended (what a failed one
        // covered waits in `reclaim`, and comes with this one).
        let own_from = self
            .payouts_of
            .get(&merchant_id)
            .and_then(|ids| ids.last())
            .and_then(|&id| self.payout(id))
            .map_or(0, |p| p.created_at);
        let mut ranges = self.reclaim.remove(&merchant_id).unwrap_or_default();
        ranges.push((own_from, now));
        let covers = crate::text::BoundedVec::new(bounded_ranges(ranges)).expect("at most COVERS_MAX ranges");
        let payout = Payout {
            id: self.payouts.len() as u64 + 1,
            merchant_id,
            amount,
            day,
            status: PayoutStatus::Pending,
            created_at: now,
            settled_at: 0,
            covers,
        };
        let transfer = Transfer {
            id: payout.transfer_id(),
            debit_account_id: balance,
            credit_account_id: chart::BANK_OMNIBUS.system_id(WALLET_CURRENCY),
            amount: amount.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code: chart::PAYOUT.code,
            flags: TransferFlags(TransferFlags::PENDING),
            user_data_64: merchant_id,
            ..Default::default()
        };
        let outcome = ctx.transfer(&transfer);
        assert!(outcome.result.is_success(), "the books refused payout {}: {outcome:?}", payout.id);
        self.index_payout(&payout);
        self.payouts.push_back(payout.clone());
        ctx.emit(Event::PayoutStarted { merchant_id, payout_id: payout.id, amount });
    }

    /// Records the bank's answer to a payout: paid posts it, anything else voids it (the money
    /// stays owed). `None` if there is no such payout; an answer to a settled one changes
    /// nothing (the bank rail may ask twice).
    pub(super) fn settle_payout(&mut self, payout_id: u64, result: BankResult, ctx: &mut super::Ctx) -> Option<Payout> {
        let p = self.payout(payout_id)?.clone();
        if p.status != PayoutStatus::Pending {
            return Some(p);
        }
        let paid = result == BankResult::Approved;
        let flag = if paid { TransferFlags::POST_PENDING_TRANSFER } else { TransferFlags::VOID_PENDING_TRANSFER };
        let resolve = Transfer {
            id: chart::PAYOUT_RESOLVE.id(payout_id),
            pending_id: p.transfer_id(),
            amount: if paid { crate::ledger::AMOUNT_MAX } else { 0 },
            flags: TransferFlags(flag),
            ..Default::default()
        };
        let outcome = ctx.transfer(&resolve);
        assert!(outcome.result.is_success(), "the books refused to settle payout {payout_id}: {outcome:?}");
        let now = ctx.now();
        let payout = self.payouts.get_mut((payout_id - 1) as usize).expect("found above");
        payout.status = if paid { PayoutStatus::Paid } else { PayoutStatus::Failed };
        payout.settled_at = now;
        let payout = payout.clone();
        self.pending_payouts.remove(&payout_id);
        if !paid {
            self.reclaim.entry(payout.merchant_id).or_default().extend_from_slice(payout.covers.as_slice());
        }
        let (merchant_id, amount) = (payout.merchant_id, payout.amount);
        ctx.emit(if paid {
            Event::PayoutPaid { merchant_id, payout_id, amount }
        } else {
            Event::PayoutFailed { merchant_id, payout_id, amount }
        });
        Some(payout)
    }

    /// Checks every payout against its transfer in the books.
    pub(super) fn check_payouts(&self, books: &crate::ledger::Ledger) -> Result<(), String> {
        for p in &self.payouts {
            let want = match p.status {
                PayoutStatus::Pending => PendingStatus::Pending,
                PayoutStatus::Paid => PendingStatus::Posted,
                PayoutStatus::Failed => PendingStatus::Voided,
            };
            if books.pending_status(p.transfer_id()) != Some(want) {
                return Err(format!("payout {} is {} but its transfer is not", p.id, p.status.name()));
            }
            if self.pending_payouts.contains(&p.id) != (p.status == PayoutStatus::Pending) {
                return Err(format!("payout {} is {} but the pending index says otherwise", p.id, p.status.name()));
            }
        }
        if self.payout_run.next_merchant > self.merchants.len() as u64 + 1 {
            return Err("the payout run is past the last merchant".into());
        }
        Ok(())
    }
}

/// Sorts ranges and merges the oldest together until at most [`COVERS_MAX`] are left.
fn bounded_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    while ranges.len() > COVERS_MAX {
        let (second_from, second_to) = ranges.remove(1);
        let first = &mut ranges[0];
        first.0 = first.0.min(second_from);
        first.1 = first.1.max(second_to);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::NANOS_PER_DAY;

    #[test]
    fn a_kst_day_starts_at_midnight_in_seoul() {
        let t = 1_795_964_400 * NANOS_PER_SECOND; // 2026-11-29T15:00:00Z, midnight KST
        assert_eq!(kst_day_start(kst_day(t)), t);
        assert_eq!(kst_day_start(kst_day(t) + 1), t + NANOS_PER_DAY);
        assert_eq!(kst_day(t - 1), kst_day(t) - 1);
    }
}
