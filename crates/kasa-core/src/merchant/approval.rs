//! A payment's money: the user's approval (a pending transfer from the wallet to the
//! merchant's balance), the merchant's capture (its post, all or part, with Kasa's fee linked
//! to it) or cancel (its void), and the 7-day limit on a capture (the pending transfer's
//! timeout: the books void it, and the payment is `canceled` with `capture_expired`).
//!
//! **The approval is a flow of two domains.** The user's side (the session, the PIN or the
//! PIN-free budget, the daily limit, the wallet's funds) is the wallet's; the payment is the
//! merchant's. The state calls [`answer_payment`] with both domains' tables and one set of
//! services: it checks everything on both sides first (the payment, then the user's PIN and
//! limits, then the funds) and only then moves money and writes both changes, so a refusal
//! changes nothing but the PIN's failure count, as a refused send does.
//!
//! **Limits.** An approval counts against the user's daily outgoing limit (and, without the
//! PIN, the PIN-free budget) on its KST day; a void, a capture's released rest and a capture
//! that expired give the day's count back, as a returned hold does. Refunds do not: the money
//! was spent.

use super::payment::{CancelReason, CaptureMethod, Payer, Payment, PaymentError, PaymentStatus};
use super::{Event, MerchantStatus, Merchants};
use crate::chart;
use crate::context::Ctx;
use crate::fees::Fees;
use crate::ledger::{CreateTransferResult, Ledger, Transfer, TransferFlags, AMOUNT_MAX};
use crate::limits::{self, Limits};
use crate::money::Amount;
use crate::wallet::{FundingError, Wallets, WALLET_CURRENCY};
use serde::{Deserialize, Serialize};

/// How long a merchant has to capture an approved payment: 7 days.
pub const CAPTURE_SECONDS: u32 = 7 * 24 * 3600;

/// Why a user's answer to a payment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnswerError {
    /// The session is not valid (expired, closed or never opened).
    SessionInvalid,
    /// The payment's side: no such payment, not waiting for approval, expired, the merchant
    /// not active.
    Payment(PaymentError),
    /// The user's side: the PIN, the limits, the funds.
    Funding(FundingError),
}

/// A payment after a user's answer, with what the user is shown of its merchant (so that the
/// answer needs no second read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnsweredPayment {
    /// The payment.
    pub payment: Payment,
    /// The merchant's display name.
    pub merchant_name: super::DisplayName,
    /// The store's name, if the payment is for one.
    pub store_name: Option<super::DisplayName>,
}

/// Kasa's fee on `amount` at `fee_bps` basis points, rounded half up.
pub fn fee_of(amount: Amount, fee_bps: u16) -> Amount {
    let fee = (u128::from(amount.minor()) * u128::from(fee_bps) + 5_000) / 10_000;
    Amount::new(fee as u64)
}

/// The tables and services a flow of the wallet and merchant domains reaches, each domain's
/// events apart.
pub(crate) struct Flow<'a> {
    pub merchants: &'a mut Merchants,
    pub wallets: &'a mut Wallets,
    pub books: &'a mut Ledger,
    pub limits: &'a mut Limits,
    pub fees: &'a mut Fees,
    pub wallet_events: &'a mut Vec<crate::wallet::Event>,
    pub events: &'a mut Vec<Event>,
    pub first: u64,
}

/// Checks that the user's wallet holds `amount` available.
pub(crate) fn funded(books: &Ledger, user_id: u64, amount: Amount) -> Result<(), FundingError> {
    let wallet = books.account(crate::wallet::wallet_account_id(user_id)).expect("every user has a wallet");
    if limits::available(wallet) < amount.ledger() {
        return Err(FundingError::InsufficientFunds);
    }
    Ok(())
}

/// Applies a user's answer to a payment made through `channel`: see the module
/// documentation. `wallet_events` and `events` receive each domain's events; returns the
/// outcome and the timestamps used.
pub(crate) fn answer_payment(
    f: &mut Flow,
    (token_hash, payment_id, approve, pin_ok): (&[u8; 32], u64, bool, Option<bool>),
    channel: super::Channel,
) -> (Result<Payment, AnswerError>, u64) {
    let first = f.first;
    let Flow { merchants, wallets, books, limits, fees, wallet_events, events, .. } = f;
    let Some(session) = wallets.session(token_hash, first) else { return (Err(AnswerError::SessionInvalid), 1) };
    let user_id = session.user_id;
    // A one-sale QR code is answered by scanning it (`instore.rs`), never through the online
    // approval link that shares its token: whoever saw the till's screen cannot decline it.
    if merchants.payment(payment_id).is_some_and(|p| p.channel != channel) {
        return (Err(AnswerError::Payment(PaymentError::UnknownPayment)), 1);
    }
    if let Err(e) = merchants.approvable(payment_id, first) {
        return (Err(AnswerError::Payment(e)), 1);
    }
    let mut ctx = Ctx::new(books, limits, fees, events, first);
    if !approve {
        let payment = merchants.end_unapproved(payment_id, CancelReason::Declined, &mut ctx);
        return (Ok(payment), ctx.used());
    }
    let amount = merchants.payment(payment_id).expect("checked above").amount;
    // The user's side: PIN (or PIN-free budget) and daily limit, then funds. A wrong PIN
    // counts towards the lock even though the approval is refused.
    let mut wallet_ctx = Ctx::new(&mut *ctx.books, &mut *ctx.limits, &mut *ctx.fees, wallet_events, first);
    let authorized = wallets.authorize(user_id, amount, pin_ok, &mut wallet_ctx);
    debug_assert_eq!(wallet_ctx.stamps_used(), 0, "authorizing moves no money");
    let pin_free = match authorized {
        Ok(pin_free) => pin_free,
        Err(e) => return (Err(AnswerError::Funding(e)), 1),
    };
    if let Err(e) = funded(ctx.books, user_id, amount) {
        return (Err(AnswerError::Funding(e)), 1);
    }
    let payment = merchants.approve(payment_id, Payer::User { user_id, pin_free }, &mut ctx);
    (payment.map_err(AnswerError::Funding), ctx.used())
}

impl Merchants {
    /// A payment with what its user is shown of its merchant.
    pub fn answered(&self, payment: Payment) -> AnsweredPayment {
        let merchant_name = self.merchant(payment.merchant_id).expect("a payment's merchant").display_name.clone();
        let store_name = payment.store_id.and_then(|id| self.store(id)).map(|s| s.name.clone());
        AnsweredPayment { payment, merchant_name, store_name }
    }

    /// Checks that a payment can be answered at `now`: it exists, waits for approval, has
    /// not expired, and its merchant takes payments.
    pub(crate) fn approvable(&self, payment_id: u64, now: u64) -> Result<&Payment, PaymentError> {
        let payment = self.payment(payment_id).ok_or(PaymentError::UnknownPayment)?;
        if payment.status != PaymentStatus::RequiresApproval {
            return Err(PaymentError::WrongStatus { status: payment.status });
        }
        if payment.expires_at <= now {
            return Err(PaymentError::Expired);
        }
        let merchant = self.merchant(payment.merchant_id).expect("a payment's merchant exists");
        if merchant.status != MerchantStatus::Active {
            return Err(PaymentError::MerchantNotActive { status: merchant.status });
        }
        Ok(payment)
    }

    /// Moves the money of an approval the caller checked (see [`answer_payment`]): the pending
    /// transfer, counted against the user's limits, and for automatic capture the capture.
    pub(crate) fn approve(
        &mut self,
        payment_id: u64,
        payer: Payer,
        ctx: &mut super::Ctx,
    ) -> Result<Payment, FundingError> {
        let now = ctx.now();
        let p = self.payment(payment_id).expect("checked by the caller").clone();
        let merchant_account = self.balance_account(p.merchant_id, ctx);
        let pending = Transfer {
            id: p.transfer_id(),
            debit_account_id: payer.account(),
            credit_account_id: merchant_account,
            amount: p.amount.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code: chart::PAYMENT.code,
            flags: TransferFlags(TransferFlags::PENDING),
            timeout: if p.capture_method == CaptureMethod::Manual { CAPTURE_SECONDS } else { 0 },
            user_data_64: p.id,
            ..Default::default()
        };
        match ctx.transfer(&pending).result {
            CreateTransferResult::Ok => {}
            CreateTransferResult::ExceedsCredits => return Err(FundingError::InsufficientFunds),
            other => return Err(FundingError::Ledger(other)),
        }
        let day = match payer {
            Payer::User { user_id, pin_free } => ctx.limits.record_spend(user_id, p.amount, pin_free, now),
            Payer::Partner(_) => 0,
        };
        self.payment_expiries.remove(&(p.expires_at, payment_id));
        let payment = self.payment_to(payment_id, PaymentStatus::RequiresCapture);
        payment.user_id = payer.id();
        payment.approved_at = now;
        payment.day = day;
        payment.status_changed_at = now;
        ctx.emit(Event::PaymentApproved { merchant_id: p.merchant_id, payment_id });
        if p.capture_method == CaptureMethod::Automatic {
            // Its reservation has no timeout: the capture cannot meet an expired one.
            return Ok(self.capture(payment_id, p.amount, ctx).expect("a reservation without a timeout"));
        }
        Ok(self.payment(payment_id).expect("found above").clone())
    }

    /// The merchant's balance account in the books, created the first time it is needed.
    fn balance_account(&self, merchant_id: u64, ctx: &mut super::Ctx) -> u128 {
        let id = chart::MERCHANT_BALANCE.id(merchant_id);
        if ctx.books.account(id).is_none() {
            let at = ctx.now();
            let account = chart::MERCHANT_BALANCE.account(merchant_id, WALLET_CURRENCY, 0);
            let outcome = ctx.books.create_accounts(&[account], at);
            assert!(outcome[0].result.is_success(), "the books refused merchant {merchant_id}'s account: {outcome:?}");
        }
        id
    }

    /// The merchant captures an approved payment: all of it, or `amount` with the rest
    /// released back to the user.
    pub(super) fn capture_payment(
        &mut self,
        merchant_id: u64,
        payment_id: u64,
        amount: Option<Amount>,
        ctx: &mut super::Ctx,
    ) -> Result<Payment, PaymentError> {
        let p =
            self.payment(payment_id).filter(|p| p.merchant_id == merchant_id).ok_or(PaymentError::UnknownPayment)?;
        if p.status != PaymentStatus::RequiresCapture {
            return Err(PaymentError::WrongStatus { status: p.status });
        }
        let amount = amount.unwrap_or(p.amount);
        if amount.is_zero() {
            return Err(PaymentError::InvalidAmount);
        }
        if amount > p.amount {
            return Err(PaymentError::AmountTooLarge { max: p.amount });
        }
        // The 7 days may end within this batch after its start (or expiries may wait their
        // slice): the books then refuse the post, and the payment is past its capture.
        self.capture(payment_id, amount, ctx).ok_or(PaymentError::Expired)
    }

    /// Posts `amount` of an approved payment with the fee linked to it; the books release
    /// the rest, and the user's day gets it back. `None` if the reservation's time is up (the
    /// books refuse the post; nothing changes, and the next batch expires it).
    fn capture(&mut self, payment_id: u64, amount: Amount, ctx: &mut super::Ctx) -> Option<Payment> {
        let now = ctx.now();
        let p = self.payment(payment_id).expect("the caller found it").clone();
        let fee_bps = self.merchant(p.merchant_id).expect("a payment's merchant exists").fee_bps;
        let fee = fee_of(amount, fee_bps);
        let post = Transfer {
            id: chart::PAYMENT_RESOLVE.id(payment_id),
            pending_id: p.transfer_id(),
            amount: if amount == p.amount { AMOUNT_MAX } else { amount.ledger() },
            flags: TransferFlags(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::LINKED),
            ..Default::default()
        };
        let fee_transfer = Transfer {
            id: chart::PAYMENT_FEE.id(payment_id),
            debit_account_id: chart::MERCHANT_BALANCE.id(p.merchant_id),
            credit_account_id: {
                chart::ensure_system_account(ctx.books, chart::FEE_INCOME, WALLET_CURRENCY, now);
                chart::FEE_INCOME.system_id(WALLET_CURRENCY)
            },
            amount: fee.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code: chart::PAYMENT_FEE.code,
            user_data_64: payment_id,
            ..Default::default()
        };
        // A zero fee is a zero transfer (allowed in the books): every capture has the same shape.
        let outcomes = ctx.transfers(&[post, fee_transfer]);
        if outcomes[0].result == CreateTransferResult::PendingTransferExpired {
            return None;
        }
        assert!(outcomes.iter().all(|o| o.result.is_success()), "the books refused capture {payment_id}: {outcomes:?}");
        if let (true, Payer::User { user_id, .. }) = (amount < p.amount, p.payer()) {
            ctx.limits.uncount_outgoing(user_id, p.day, p.amount.saturating_sub(amount));
        }
        let payment = self.payment_to(payment_id, PaymentStatus::Succeeded);
        payment.captured = amount;
        payment.fee = fee;
        payment.status_changed_at = now;
        let payment = payment.clone();
        ctx.emit(Event::PaymentSucceeded { merchant_id: p.merchant_id, payment_id, amount });
        Some(payment)
    }

    /// Cancels an approved payment before its capture: the reservation is voided and the
    /// user's day gets the amount back. `None` if the reservation's time is up (as for a
    /// capture: the next batch expires it).
    pub(super) fn void_approved(&mut self, payment_id: u64, ctx: &mut super::Ctx) -> Option<Payment> {
        let p = self.payment(payment_id).expect("the caller found it").clone();
        let void = Transfer {
            id: chart::PAYMENT_RESOLVE.id(payment_id),
            pending_id: p.transfer_id(),
            flags: TransferFlags(TransferFlags::VOID_PENDING_TRANSFER),
            ..Default::default()
        };
        let outcome = ctx.transfer(&void);
        if outcome.result == CreateTransferResult::PendingTransferExpired {
            return None;
        }
        assert!(outcome.result.is_success(), "the books refused to void payment {payment_id}: {outcome:?}");
        Some(self.end_approved(&p, CancelReason::Merchant, ctx))
    }

    fn end_approved(&mut self, p: &Payment, reason: CancelReason, ctx: &mut super::Ctx) -> Payment {
        let now = ctx.now();
        if let Payer::User { user_id, .. } = p.payer() {
            ctx.limits.uncount_outgoing(user_id, p.day, p.amount);
        }
        let payment = self.payment_to(p.id, PaymentStatus::Canceled);
        payment.cancel_reason = Some(reason);
        payment.status_changed_at = now;
        let payment = payment.clone();
        ctx.emit(Event::PaymentCanceled { merchant_id: p.merchant_id, payment_id: p.id, reason });
        payment
    }

    /// Approved payments whose 7 days ran out: the books voided their reservations.
    pub(super) fn on_captures_expired(&mut self, expired: &[Transfer], ctx: &mut super::Ctx) {
        for t in expired {
            let Some(id) = chart::PAYMENT.number_of(t.id) else { continue };
            let Some(p) = self.payment(id).cloned() else { continue };
            self.end_approved(&p, CancelReason::CaptureExpired, ctx);
        }
    }

    /// Checks every payment's money against the books: its reservation's state matches its
    /// status, its capture and fee are in the books, and every merchant's balance equals its
    /// captures less refunds, fees and payouts.
    pub(crate) fn check_money(&self, books: &Ledger) -> Result<(), String> {
        use crate::ledger::PendingStatus;
        let mut expected: std::collections::BTreeMap<u64, i128> = std::collections::BTreeMap::new();
        for p in &self.payments {
            let reservation = books.pending_status(p.transfer_id());
            let ok = match p.status {
                PaymentStatus::RequiresApproval => reservation.is_none(),
                PaymentStatus::RequiresCapture => reservation == Some(PendingStatus::Pending),
                PaymentStatus::Succeeded => reservation == Some(PendingStatus::Posted),
                PaymentStatus::Canceled => matches!(
                    (p.cancel_reason, reservation),
                    (Some(CancelReason::Merchant), None | Some(PendingStatus::Voided))
                        | (Some(CancelReason::Expired | CancelReason::Declined), None)
                        | (Some(CancelReason::CaptureExpired), Some(PendingStatus::Expired))
                ),
            };
            if !ok {
                return Err(format!("payment {} is {} but its reservation is {reservation:?}", p.id, p.status.name()));
            }
            if p.status == PaymentStatus::Succeeded {
                let posted = books.transfer(chart::PAYMENT_RESOLVE.id(p.id)).map(|t| t.amount);
                let fee = books.transfer(chart::PAYMENT_FEE.id(p.id)).map(|t| t.amount);
                if posted != Some(p.captured.ledger()) || fee != Some(p.fee.ledger()) {
                    return Err(format!(
                        "payment {} captured {} with a fee of {}, the books say {posted:?} and {fee:?}",
                        p.id, p.captured, p.fee
                    ));
                }
                if p.refunded > p.captured || p.fee_refunded > p.fee {
                    return Err(format!("payment {} refunded more than it captured", p.id));
                }
            }
            let net = i128::from(p.captured.minor()) - i128::from(p.refunded.minor()) - i128::from(p.fee.minor())
                + i128::from(p.fee_refunded.minor());
            *expected.entry(p.merchant_id).or_default() += net;
        }
        for r in &self.refunds {
            let t = books.transfer(chart::REFUND.id(r.id)).map(|t| t.amount);
            let fee = books.transfer(chart::REFUND_FEE.id(r.id)).map(|t| t.amount);
            if t != Some(r.amount.ledger()) || fee != Some(r.fee_returned.ledger()) {
                return Err(format!("refund {} of {} is {t:?} in the books, its fee {fee:?}", r.id, r.amount));
            }
        }
        for po in &self.payouts {
            if po.status == super::PayoutStatus::Paid {
                *expected.entry(po.merchant_id).or_default() -= i128::from(po.amount.minor());
            }
        }
        for m in &self.merchants {
            let want = expected.get(&m.id).copied().unwrap_or(0);
            let have = books.account(chart::MERCHANT_BALANCE.id(m.id)).map_or(0, |a| {
                i128::try_from(a.credits_posted).unwrap_or(i128::MAX) - i128::try_from(a.debits_posted).unwrap_or(0)
            });
            if want != have {
                return Err(format!(
                    "merchant {}'s balance is {have} won in the books, but captures - refunds - fees - payouts \
                     is {want}",
                    m.id
                ));
            }
        }
        Ok(())
    }
}
