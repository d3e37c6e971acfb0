//! Settlement windows, after Mojaloop's: per partner and currency, one window is open at a
//! time and takes every payment, cancel and refund of the partner's; it closes at the daily
//! cutoff (midnight KST) or when an operator closes it, and its net moves through the bank.
//!
//! A window keeps its sums as items arrive, so closing one costs the same whatever it holds:
//! the net is already known, and the close makes one pending transfer for it (omnibus to the
//! partner when the partner pays Kasa, the partner to the omnibus when Kasa pays), which the
//! bank's answer posts or voids. The list of its items (the settlement file) is read from the
//! payments and refunds that name it, off the writer.

use super::{Ctx, Event, Partners};
use crate::chart;
use crate::ledger::{Transfer, TransferFlags};
use crate::money::{Amount, Currency};
use crate::time::{kst_day, NANOS_PER_DAY, NANOS_PER_HOUR};
use serde::{Deserialize, Serialize};

/// Where a window stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowStatus {
    /// Taking items.
    Open,
    /// Closed, its settlement waiting for the bank.
    Closed,
    /// Settled: the net moved (or there was none).
    Settled,
    /// The bank could not move the net; it stays owed, and operators settle it by hand.
    Failed,
}

impl WindowStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            WindowStatus::Open => "open",
            WindowStatus::Closed => "closed",
            WindowStatus::Settled => "settled",
            WindowStatus::Failed => "failed",
        }
    }
}

/// A settlement window. Sums are in minor units of its currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose.
    pub partner_id: u64,
    /// In which currency.
    pub currency: Currency,
    /// Where it stands.
    pub status: WindowStatus,
    /// When its first item came.
    pub opened_at: u64,
    /// When it closed (0: open).
    pub closed_at: u64,
    /// When its settlement was answered (0: not yet).
    pub settled_at: u64,
    /// Payments in it.
    pub payments: u64,
    /// Refunds and cancels in it.
    pub refunds: u64,
    /// The payments' settlement amounts.
    pub paid: u128,
    /// What refunds and cancels gave back.
    pub refunded: u128,
    /// Kasa's fees to the partner, less those returned.
    pub fees: i128,
    /// Kasa users' payments abroad in it.
    pub overseas: u64,
    /// Refunds from abroad in it.
    pub overseas_refunds: u64,
    /// What Kasa owes the partner for its users' payments abroad.
    pub outbound: u128,
    /// What the partner gave back of them with refunds.
    pub outbound_refunded: u128,
}

impl Window {
    /// What the partner owes Kasa for the window (negative: what Kasa owes the partner):
    /// paid - refunded - fees - outbound + outbound refunded.
    pub fn net(&self) -> i128 {
        self.paid as i128 - self.refunded as i128 - self.fees - self.outbound as i128 + self.outbound_refunded as i128
    }
}

/// Why a window command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowError {
    /// No such window.
    UnknownWindow,
    /// It is not in a state that allows it.
    WrongStatus {
        /// Where it stands.
        status: WindowStatus,
    },
}

/// The next cutoff after `now`: the next midnight KST.
pub fn next_cutoff(now: u64) -> u64 {
    // kst_day counts days from the epoch in KST (UTC+9): day d starts at d × 24 h − 9 h UTC.
    (kst_day(now) + 1) * NANOS_PER_DAY - 9 * NANOS_PER_HOUR
}

impl Partners {
    /// The partner's open window in `currency`, opened now if there is none.
    pub(super) fn open_window(&mut self, partner_id: u64, currency: Currency, now: u64) -> u64 {
        if let Some(&id) = self.open_windows.get(&(partner_id, currency)) {
            return id;
        }
        let id = self.windows.len() as u64 + 1;
        self.windows.push_back(Window {
            id,
            partner_id,
            currency,
            status: WindowStatus::Open,
            opened_at: now,
            closed_at: 0,
            settled_at: 0,
            payments: 0,
            refunds: 0,
            paid: 0,
            refunded: 0,
            fees: 0,
            overseas: 0,
            overseas_refunds: 0,
            outbound: 0,
            outbound_refunded: 0,
        });
        self.open_windows.insert((partner_id, currency), id);
        // A cutoff that passed stays due until every window opened before it is closed
        // (`close_at_cutoff`, in slices); only then does the next one count.
        if self.next_cutoff == 0 {
            self.next_cutoff = next_cutoff(now);
        }
        id
    }

    pub(super) fn window_mut(&mut self, id: u64) -> &mut Window {
        self.windows.get_mut(id as usize - 1).expect("a window id the state gave")
    }

    /// A window.
    pub fn window(&self, id: u64) -> Option<&Window> {
        id.checked_sub(1).and_then(|i| self.windows.get(i as usize))
    }

    /// Closes the windows opened before the cutoff once it passed, at most `slice` of them a
    /// batch; when none is left, the next cutoff is the next midnight (if a window is open).
    pub(super) fn close_at_cutoff(&mut self, now: u64, slice: usize, ctx: &mut Ctx) {
        let cutoff = self.next_cutoff;
        if cutoff == 0 || now < cutoff {
            return;
        }
        let before = |w: &Window| w.opened_at < cutoff;
        let due: Vec<u64> = self
            .open_windows
            .values()
            .copied()
            .filter(|&id| self.window(id).is_some_and(before))
            .take(slice + 1)
            .collect();
        let more = due.len() > slice;
        for &id in due.iter().take(slice) {
            self.close(id, ctx);
        }
        if !more {
            self.next_cutoff = if self.open_windows.is_empty() { 0 } else { next_cutoff(now) };
        }
    }

    /// When windows close next, if any is open.
    pub(super) fn next_window_due(&self) -> Option<u64> {
        (!self.open_windows.is_empty() && self.next_cutoff != 0).then_some(self.next_cutoff)
    }

    /// An operator closes a window now.
    pub(super) fn close_window(&mut self, window_id: u64, ctx: &mut Ctx) -> Result<Window, WindowError> {
        let w = self.window(window_id).ok_or(WindowError::UnknownWindow)?;
        if w.status != WindowStatus::Open {
            return Err(WindowError::WrongStatus { status: w.status });
        }
        Ok(self.close(window_id, ctx))
    }

    /// Closes an open window: its net becomes a pending settlement transfer (none if zero:
    /// the window is settled at once).
    fn close(&mut self, window_id: u64, ctx: &mut Ctx) -> Window {
        let now = ctx.now();
        let w = self.window(window_id).expect("an open window").clone();
        self.open_windows.remove(&(w.partner_id, w.currency));
        let net = w.net();
        let settled = net == 0;
        if !settled {
            chart::ensure_system_account(ctx.books, chart::BANK_OMNIBUS, w.currency, now);
            let partner = self.partner_account(w.partner_id, w.currency, ctx);
            let omnibus = chart::BANK_OMNIBUS.system_id(w.currency);
            let (debit, credit) = if net > 0 { (omnibus, partner) } else { (partner, omnibus) };
            let transfer = Transfer {
                id: chart::SETTLEMENT.id(window_id),
                debit_account_id: debit,
                credit_account_id: credit,
                amount: net.unsigned_abs(),
                ledger: w.currency.ledger(),
                code: chart::SETTLEMENT.code,
                flags: TransferFlags(TransferFlags::PENDING),
                user_data_64: window_id,
                ..Default::default()
            };
            let outcome = ctx.transfer(&transfer);
            assert!(outcome.result.is_success(), "the books refused settlement {window_id}: {outcome:?}");
        }
        let window = self.window_mut(window_id);
        window.status = if settled { WindowStatus::Settled } else { WindowStatus::Closed };
        window.closed_at = now;
        if settled {
            window.settled_at = now;
        }
        let window = window.clone();
        ctx.emit(Event::WindowClosed { partner_id: w.partner_id, window_id });
        if settled {
            ctx.emit(Event::WindowSettled { partner_id: w.partner_id, window_id, succeeded: true });
        }
        window
    }

    /// The bank's answer for a closed window: post or void its settlement.
    pub(super) fn settle_window(
        &mut self,
        window_id: u64,
        succeeded: bool,
        ctx: &mut Ctx,
    ) -> Result<Window, WindowError> {
        let w = self.window(window_id).ok_or(WindowError::UnknownWindow)?;
        if w.status != WindowStatus::Closed {
            return Err(WindowError::WrongStatus { status: w.status });
        }
        let partner_id = w.partner_id;
        let flag = if succeeded { TransferFlags::POST_PENDING_TRANSFER } else { TransferFlags::VOID_PENDING_TRANSFER };
        let resolve = Transfer {
            id: chart::SETTLEMENT_RESOLVE.id(window_id),
            pending_id: chart::SETTLEMENT.id(window_id),
            amount: if succeeded { crate::ledger::AMOUNT_MAX } else { 0 },
            flags: TransferFlags(flag),
            ..Default::default()
        };
        let outcome = ctx.transfer(&resolve);
        assert!(outcome.result.is_success(), "the books refused to resolve settlement {window_id}: {outcome:?}");
        let now = ctx.now();
        let window = self.window_mut(window_id);
        window.status = if succeeded { WindowStatus::Settled } else { WindowStatus::Failed };
        window.settled_at = now;
        let window = window.clone();
        ctx.emit(Event::WindowSettled { partner_id, window_id, succeeded });
        Ok(window)
    }

    /// Adds a payment's sums to its window.
    pub(super) fn add_payment_to_window(&mut self, window_id: u64, settlement: Amount, fee: Amount) {
        let w = self.window_mut(window_id);
        w.payments += 1;
        w.paid += u128::from(settlement.minor());
        w.fees += i128::from(fee.minor());
    }

    /// Adds a refund's sums to its window.
    pub(super) fn add_refund_to_window(&mut self, window_id: u64, settlement: Amount, fee_returned: Amount) {
        let w = self.window_mut(window_id);
        w.refunds += 1;
        w.refunded += u128::from(settlement.minor());
        w.fees -= i128::from(fee_returned.minor());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_next_midnight_in_seoul() {
        // 2026-11-30T14:59:59Z is 23:59:59 KST; the cutoff is 15:00:00Z.
        let s = |secs: u64| secs * 1_000_000_000;
        let midnight_kst = s(1_796_050_800); // 2026-11-30T15:00:00Z
        assert_eq!(next_cutoff(midnight_kst - s(1)), midnight_kst);
        assert_eq!(next_cutoff(midnight_kst), midnight_kst + NANOS_PER_DAY);
        assert_eq!(next_cutoff(midnight_kst - s(20 * 3600)), midnight_kst);
    }
}
