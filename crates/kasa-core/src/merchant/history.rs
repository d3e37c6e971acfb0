//! Payments and refunds in a wallet user's transaction list: the wallet's history
//! (`wallet::history`) walks the wallet's transfers and asks this domain for the entries of
//! its own kinds, with the merchant's display name.

use super::payment::PaymentStatus;
use super::Merchants;
use crate::chart;
use crate::ledger::{Ledger, Transfer};
use crate::money::Amount;
use crate::wallet::{Entry, EntryKind};

impl Merchants {
    /// The entry of a wallet's transfer `t` if it is a payment's reservation or a refund;
    /// `balance_at` gives the wallet's balance at a timestamp.
    pub fn history_entry(
        &self,
        books: &Ledger,
        t: &Transfer,
        balance_at: &dyn Fn(u64) -> Option<Amount>,
    ) -> Option<Entry> {
        let (kind, n) = chart::id_parts(t.id);
        let (entry_kind, payment, refund) = if kind == chart::PAYMENT.number {
            (EntryKind::Payment, self.payment(n)?, None)
        } else if kind == chart::REFUND.number {
            let r = self.refund(n)?;
            (EntryKind::Refund, self.payment(r.payment_id)?, Some(r))
        } else {
            return None;
        };
        let merchant = self.merchant(payment.merchant_id)?;
        let resolved = books.transfer(chart::PAYMENT_RESOLVE.id(payment.id)).map(|r| r.timestamp);
        let (amount, status, moved) = match refund {
            Some(r) => (r.amount, "succeeded", Some(t.timestamp)),
            None => match payment.status {
                PaymentStatus::Succeeded => (payment.captured, payment.status.name(), resolved),
                // Waiting for the capture: the money is reserved, not yet moved.
                PaymentStatus::RequiresCapture => (payment.amount, payment.status.name(), None),
                // Canceled after approval: the money is back at the void (an expired
                // reservation has no transfer of its own to mark the moment).
                _ => (payment.amount, payment.status.name(), resolved),
            },
        };
        Some(Entry {
            kind: entry_kind,
            object_id: refund.map_or(payment.id, |r| r.id),
            amount,
            fee: Amount::ZERO,
            credit: refund.is_some(),
            status,
            counterparty_user: None,
            counterparty_phone: None,
            bank_account_id: None,
            counterparty_merchant: Some((merchant.id, merchant.display_name.as_str().to_string())),
            store_name: payment.store_id.and_then(|id| self.store(id)).map(|s| s.name.as_str().to_string()),
            memo: payment.item_name.as_str().to_string(),
            balance_after: moved.and_then(balance_at),
            timestamp: t.timestamp,
        })
    }
}
