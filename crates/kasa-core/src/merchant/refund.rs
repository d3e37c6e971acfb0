//! Refunds: a merchant gives back part or all of a captured payment, in as many refunds as it
//! likes up to what was captured (at most [`REFUNDS_PER_PAYMENT_MAX`]). Each is one transfer
//! from the merchant's balance to the wallet the payment came from, linked with the return of
//! the fee's share: the fee returned so far is always `fee × refunded ÷ captured` rounded
//! down, so the shares add up to the whole fee when everything is refunded, whatever the
//! steps. The merchant's balance may go negative (a refund after a payout); the next payouts
//! make it up first.
//!
//! A refund goes to the wallet even when that takes it over its tier's balance cap: it gives
//! back the user's own money, which the cap allowed in when it was first spent, and a refund
//! refused for the cap would leave the user with neither the goods nor the money.

use super::payment::{Payment, PaymentError, PaymentStatus};
use super::{Event, Merchants};
use crate::chart;
use crate::ledger::Transfer;
use crate::ledger::TransferFlags;
use crate::money::Amount;
use crate::text::{label, text_rule};
use crate::wallet::WALLET_CURRENCY;
use serde::{Deserialize, Serialize};

/// The most refunds one payment may have.
pub const REFUNDS_PER_PAYMENT_MAX: u16 = 100;

text_rule!(
    /// Why a merchant refunded: 1 to 200 characters, no control characters.
    RefundReason, RefundReasonRule, 800, "a refund reason", true,
    |v| label(v, 200, "a refund reason")
);

/// A refund, as the state keeps it and a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The payment it refunds.
    pub payment_id: u64,
    /// Whose payment.
    pub merchant_id: u64,
    /// How much went back to the user.
    pub amount: Amount,
    /// The part of the payment's fee returned to the merchant.
    pub fee_returned: Amount,
    /// Why.
    pub reason: RefundReason,
    /// When.
    pub created_at: u64,
}

impl Merchants {
    /// The refund with this id.
    pub fn refund(&self, id: u64) -> Option<&Refund> {
        id.checked_sub(1).and_then(|i| self.refunds.get(i as usize))
    }

    /// A payment's refunds, oldest first.
    pub fn refunds_of(&self, payment_id: u64) -> impl Iterator<Item = &Refund> + '_ {
        self.refunds_of.get(&payment_id).into_iter().flatten().filter_map(|&id| self.refund(id))
    }

    /// Adds a refund to the derived index.
    pub(super) fn index_refund(&mut self, r: &Refund) {
        self.refunds_of.entry(r.payment_id).or_default().push(r.id);
    }

    /// Refunds `amount` of a captured payment. See the module documentation.
    pub(crate) fn refund_payment(
        &mut self,
        merchant_id: u64,
        payment_id: u64,
        amount: Amount,
        reason: &RefundReason,
        ctx: &mut super::Ctx,
    ) -> Result<(Refund, Payment), PaymentError> {
        let p =
            self.payment(payment_id).filter(|p| p.merchant_id == merchant_id).ok_or(PaymentError::UnknownPayment)?;
        if p.status != PaymentStatus::Succeeded {
            return Err(PaymentError::WrongStatus { status: p.status });
        }
        if amount.is_zero() {
            return Err(PaymentError::InvalidAmount);
        }
        if amount > p.refundable() {
            return Err(PaymentError::AmountTooLarge { max: p.refundable() });
        }
        if p.refunds >= REFUNDS_PER_PAYMENT_MAX {
            return Err(PaymentError::TooManyRefunds);
        }
        // The legal maximum holds for every wallet, refunds included (the snapshot decoder
        // checks it).
        if let super::Payer::User { user_id, .. } = p.payer() {
            let legal_max = crate::limits::Tier::Verified.legal_maxima().balance_cap;
            let wallet = ctx.books.account(crate::wallet::wallet_account_id(user_id)).expect("every user has a wallet");
            if crate::limits::balance(wallet).saturating_add(amount.ledger()) > legal_max.ledger() {
                return Err(PaymentError::WalletFull);
            }
        }
        let now = ctx.now();
        let refunded = p.refunded.saturating_add(amount);
        // fee × refunded ÷ captured, rounded down: at most the fee, since refunded ≤ captured.
        let fee_due = u128::from(p.fee.minor()) * u128::from(refunded.minor()) / u128::from(p.captured.minor());
        let fee_returned = Amount::new(fee_due as u64).saturating_sub(p.fee_refunded);
        let refund = Refund {
            id: self.refunds.len() as u64 + 1,
            payment_id,
            merchant_id,
            amount,
            fee_returned,
            reason: reason.clone(),
            created_at: now,
        };
        let balance = chart::MERCHANT_BALANCE.id(merchant_id);
        let back = Transfer {
            id: chart::REFUND.id(refund.id),
            debit_account_id: balance,
            credit_account_id: p.payer().account(),
            amount: amount.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code: chart::REFUND.code,
            user_data_64: payment_id,
            flags: TransferFlags(TransferFlags::LINKED),
            ..Default::default()
        };
        let fee_back = Transfer {
            id: chart::REFUND_FEE.id(refund.id),
            debit_account_id: chart::FEE_INCOME.system_id(WALLET_CURRENCY),
            credit_account_id: balance,
            amount: fee_returned.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code: chart::REFUND_FEE.code,
            user_data_64: payment_id,
            ..Default::default()
        };
        // Both accounts exist since the capture, and neither has a balance limit.
        let outcomes = ctx.transfers(&[back, fee_back]);
        assert!(outcomes.iter().all(|o| o.result.is_success()), "the books refused refund {}: {outcomes:?}", refund.id);
        let payment = self.payment_mut(payment_id).expect("found above");
        payment.refunded = refunded;
        payment.fee_refunded = payment.fee_refunded.saturating_add(fee_returned);
        payment.refunds += 1;
        let payment = payment.clone();
        self.index_refund(&refund);
        self.refunds.push_back(refund.clone());
        ctx.emit(Event::RefundSucceeded { merchant_id, payment_id, refund_id: refund.id });
        Ok((refund, payment))
    }
}
