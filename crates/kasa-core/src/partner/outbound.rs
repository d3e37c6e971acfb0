//! A Kasa user pays at a partner's merchant abroad: the user's app scanned the merchant's
//! EMV code (currency 156, say); the HTTP layer decoded it, found the partner that accepts
//! its scheme and made a quote (won sold for the merchant's currency). Paying is a flow of the
//! wallet and partner domains: the session, the PIN or PIN-free budget and the daily limit
//! are the wallet's, checked first; then the money is **reserved** as a linked pair of
//! pending transfers through the FX positions (the wallet's won to the won position, the
//! position in the merchant's currency to the partner's account: what Kasa will owe it),
//! and the payment waits, `pending`, for the partner's answer.
//!
//! Kasa calls the partner from committed state (`consumers/partner_calls.rs`), and records
//! every step in the payment's **timeline** with [`Command::ResolveOverseas`]: the call, its
//! answer or the lack of one, each inquiry, the cancel. An `S` posts the pair (the payment
//! counts in the partner's settlement window, in the merchant's currency); an `F`, or a
//! cancel the partner confirmed, voids it (the user's day gets the amount back). An unknown
//! outcome is never left: the partner's policy says how long to inquire before cancelling,
//! and the payment is failed only once the cancel succeeded.
//!
//! **Refunds from abroad** (the partner's `refund` of Kasa's payment, idempotent by its
//! `refundRequestId`) come back at the payment's own rate: of the won paid, the share of the
//! foreign amount refunded so far, rounded down, less what earlier refunds gave back; so the
//! refunds of a whole payment give back exactly the won paid.

use super::command::{Command, OverseasRefundRequest, PayOverseasRequest, RequestId};
use super::{Event, Partners};
use crate::chart;
use crate::context::Ctx;
use crate::fx::Directed;
use crate::ledger::{CreateTransferResult, Transfer, TransferFlags, AMOUNT_MAX};
use crate::money::{Amount, Currency};
use crate::text::{label, text_rule};
use crate::wallet::{FundingError, WALLET_CURRENCY};
use serde::{Deserialize, Serialize};

text_rule!(
    /// A foreign merchant's name or city as its code shows it: 1 to 100 characters, no
    /// control characters.
    ForeignText, ForeignTextRule, 400, "a merchant's name or city", true,
    |v| label(v, 100, "a merchant's name or city")
);

text_rule!(
    /// A scanned code as the user's app read it: 1 to 512 printable characters (an EMV
    /// payload is at most 512).
    CodeText, CodeTextRule, 2048, "a scanned code", true,
    |v| label(v, 512, "a scanned code")
);

/// The most steps a payment's timeline keeps (the policy's inquiries are bounded by it: the
/// oldest inquiries are folded into a count past it).
pub const STEPS_MAX: usize = 64;
/// The most refunds of one overseas payment.
pub const OVERSEAS_REFUNDS_MAX: u16 = 100;

/// Where an overseas payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverseasStatus {
    /// Reserved, waiting for the partner's answer (or its inquiry, or its cancel).
    Pending,
    /// The partner paid its merchant.
    Succeeded,
    /// The partner refused, or the payment was canceled: the money went back.
    Failed,
}

impl OverseasStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            OverseasStatus::Pending => "pending",
            OverseasStatus::Succeeded => "succeeded",
            OverseasStatus::Failed => "failed",
        }
    }
}

/// One step of an overseas payment's timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// The user paid; the money is reserved.
    Created,
    /// Kasa sent the partner its `pay`.
    Requested,
    /// The partner answered `S`.
    Succeeded,
    /// The partner answered `F`.
    Refused,
    /// No answer could be read (a timeout, a lost connection, an unreadable answer).
    NoAnswer,
    /// An inquiry found the payment paid.
    InquiredPaid,
    /// An inquiry found the payment failed.
    InquiredFailed,
    /// An inquiry found no such payment at the partner, or got no answer.
    InquiredUnknown,
    /// Kasa asked the partner to cancel.
    CancelRequested,
    /// The partner confirmed the cancel.
    Canceled,
    /// The cancel got no confirmation (it is asked again).
    CancelUnanswered,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 11] = [
        Step::Created,
        Step::Requested,
        Step::Succeeded,
        Step::Refused,
        Step::NoAnswer,
        Step::InquiredPaid,
        Step::InquiredFailed,
        Step::InquiredUnknown,
        Step::CancelRequested,
        Step::Canceled,
        Step::CancelUnanswered,
    ];

    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Step::Created => "created",
            Step::Requested => "pay_requested",
            Step::Succeeded => "pay_succeeded",
            Step::Refused => "pay_refused",
            Step::NoAnswer => "no_answer",
            Step::InquiredPaid => "inquiry_paid",
            Step::InquiredFailed => "inquiry_failed",
            Step::InquiredUnknown => "inquiry_unknown",
            Step::CancelRequested => "cancel_requested",
            Step::Canceled => "canceled",
            Step::CancelUnanswered => "cancel_unanswered",
        }
    }

    /// What the step settles: paid (`Some(true)`), failed (`Some(false)`) or nothing yet.
    fn ends(self) -> Option<bool> {
        match self {
            Step::Succeeded | Step::InquiredPaid => Some(true),
            Step::Refused | Step::InquiredFailed | Step::Canceled => Some(false),
            _ => None,
        }
    }
}

/// A user's payment at a partner's merchant abroad.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverseasPayment {
    /// Assigned by the engine, from 1; Kasa's `paymentRequestId` to the partner is
    /// `kasa-op-{id}`.
    pub id: u64,
    /// The payer.
    pub user_id: u64,
    /// The partner that pays its merchant.
    pub partner_id: u64,
    /// The code the user scanned (the partner reads its merchant from it).
    pub code: CodeText,
    /// The merchant's name as the code shows it.
    pub merchant_name: ForeignText,
    /// Its city, if the code has one.
    pub merchant_city: Option<ForeignText>,
    /// The merchant's currency.
    pub currency: Currency,
    /// How much, in its minor units.
    pub amount: Amount,
    /// What the user pays, in won.
    pub krw_amount: Amount,
    /// The rate (won sold for the merchant's currency), from the quote.
    pub rate: Directed,
    /// The quote.
    pub quote_id: u64,
    /// Where it stands.
    pub status: OverseasStatus,
    /// Its timeline: (engine time, step), oldest first, at most [`STEPS_MAX`].
    pub steps: Vec<(u64, Step)>,
    /// Of the foreign amount, refunded so far.
    pub refunded: Amount,
    /// Of the won, given back so far.
    pub krw_refunded: Amount,
    /// How many refunds.
    pub refunds: u16,
    /// When the user paid.
    pub created_at: u64,
    /// When it succeeded or failed (0: pending).
    pub resolved_at: u64,
    /// The KST day it counts against the user's daily limit.
    pub day: u64,
    /// The settlement window it counts in, once it succeeded (0 until then).
    pub window_id: u64,
}

impl OverseasPayment {
    /// Kasa's `paymentRequestId` for it.
    pub fn request_id(&self) -> String {
        format!("kasa-op-{}", self.id)
    }
}

/// A refund from abroad.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverseasRefund {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The partner that refunded.
    pub partner_id: u64,
    /// Its `refundRequestId`.
    pub request_id: RequestId,
    /// The overseas payment.
    pub payment_id: u64,
    /// In the merchant's currency.
    pub amount: Amount,
    /// What went back to the wallet, in won.
    pub krw_amount: Amount,
    /// When.
    pub created_at: u64,
    /// The settlement window it counts in.
    pub window_id: u64,
}

/// Why an overseas payment, a step or a refund from abroad was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OverseasError {
    /// The session is not valid.
    SessionInvalid,
    /// No such partner, or it is suspended, takes no calls or does not accept the code.
    PartnerUnavailable,
    /// No such quote, or not for this partner, these currencies or this amount.
    UnknownQuote,
    /// The quote expired: quote again.
    QuoteExpired,
    /// The user's side: the PIN, the limits, the funds.
    Funding(FundingError),
    /// No such overseas payment (of this partner).
    UnknownPayment,
    /// The payment is not pending (a step) or did not succeed (a refund).
    WrongStatus {
        /// Where it stands.
        status: OverseasStatus,
    },
    /// More than is left to refund.
    AmountTooLarge {
        /// What is left.
        max: Amount,
    },
    /// Zero, or another currency than the payment's.
    InvalidAmount,
    /// [`OVERSEAS_REFUNDS_MAX`] refunds already.
    TooManyRefunds,
    /// The `refundRequestId` was used for a different refund.
    RefundIdReused,
    /// The wallet would hold more than the legal maximum of any wallet: the refund waits
    /// until the user spends or withdraws (the partner tries again).
    WalletFull,
}

/// An overseas payment, and for a refund the refund and whether it was a repeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverseasRefunded {
    /// The refund.
    pub refund: OverseasRefund,
    /// Its payment after it.
    pub payment: OverseasPayment,
    /// A repeat of the same `refundRequestId`: the first answer.
    pub replayed: bool,
}

/// The flow's tables: the partner and wallet domains and the services.
pub(crate) struct OverseasFlow<'a> {
    pub partners: &'a mut Partners,
    pub wallets: &'a mut crate::wallet::Wallets,
    pub books: &'a mut crate::ledger::Ledger,
    pub limits: &'a mut crate::limits::Limits,
    pub fees: &'a mut crate::fees::Fees,
    pub wallet_events: &'a mut Vec<crate::wallet::Event>,
    pub events: &'a mut Vec<Event>,
    pub first: u64,
}

/// A user pays abroad; returns the outcome and the timestamps used.
pub(crate) fn pay_overseas(
    f: OverseasFlow,
    token_hash: &[u8; 32],
    request: &PayOverseasRequest,
    pin_ok: Option<bool>,
) -> (Result<OverseasPayment, OverseasError>, u64) {
    let now = f.first;
    let refused = |e| (Err(e), 1);
    let Some(session) = f.wallets.session(token_hash, now) else { return refused(OverseasError::SessionInvalid) };
    let user_id = session.user_id;
    let available = f.partners.partner(request.partner_id).filter(|p| {
        p.status == super::PartnerStatus::Active && p.endpoint.is_some() && p.accepts.0 & request.scheme_bit != 0
    });
    if available.is_none() {
        return refused(OverseasError::PartnerUnavailable);
    }
    let Some(q) = f.partners.quotes.get(&request.quote_id).filter(|q| {
        q.partner_id == request.partner_id
            && (q.sell(), q.buy()) == (WALLET_CURRENCY, request.currency)
            && q.buy_amount == request.amount
    }) else {
        return refused(OverseasError::UnknownQuote);
    };
    if q.expires_at <= now {
        return refused(OverseasError::QuoteExpired);
    }
    let (krw_amount, rate) = (q.sell_amount, q.rate);
    let mut wallet_ctx = Ctx::new(&mut *f.books, &mut *f.limits, &mut *f.fees, f.wallet_events, now);
    let pin_free = match f.wallets.authorize(user_id, krw_amount, pin_ok, &mut wallet_ctx) {
        Ok(pin_free) => pin_free,
        Err(e) => return refused(OverseasError::Funding(e)),
    };
    if let Err(e) = crate::merchant::approval::funded(f.books, user_id, krw_amount) {
        return refused(OverseasError::Funding(e));
    }
    let mut ctx = Ctx::new(&mut *f.books, &mut *f.limits, &mut *f.fees, f.events, now);
    let id = f.partners.overseas.len() as u64 + 1;
    for currency in [WALLET_CURRENCY, request.currency] {
        chart::ensure_system_account(ctx.books, chart::FX_POSITION, currency, now);
    }
    let partner_account = f.partners.partner_account(request.partner_id, request.currency, &mut ctx);
    let pair = [
        Transfer {
            id: chart::OVERSEAS_PAYMENT.id(id),
            debit_account_id: crate::wallet::wallet_account_id(user_id),
            credit_account_id: chart::FX_POSITION.system_id(WALLET_CURRENCY),
            amount: krw_amount.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code: chart::OVERSEAS_PAYMENT.code,
            flags: TransferFlags(TransferFlags::PENDING | TransferFlags::LINKED),
            user_data_64: user_id,
            ..Default::default()
        },
        Transfer {
            id: chart::OVERSEAS_CONVERSION.id(id),
            debit_account_id: chart::FX_POSITION.system_id(request.currency),
            credit_account_id: partner_account,
            amount: request.amount.ledger(),
            ledger: request.currency.ledger(),
            code: chart::OVERSEAS_CONVERSION.code,
            flags: TransferFlags(TransferFlags::PENDING),
            user_data_64: request.partner_id,
            ..Default::default()
        },
    ];
    let outcomes = ctx.transfers(&pair);
    match outcomes[0].result {
        CreateTransferResult::Ok => {}
        CreateTransferResult::ExceedsCredits => {
            return refused(OverseasError::Funding(FundingError::InsufficientFunds))
        }
        other => return refused(OverseasError::Funding(FundingError::Ledger(other))),
    }
    assert!(outcomes.iter().all(|o| o.result.is_success()), "the books refused overseas payment {id}: {outcomes:?}");
    let day = ctx.limits.record_spend(user_id, krw_amount, pin_free, now);
    let payment = OverseasPayment {
        id,
        user_id,
        partner_id: request.partner_id,
        code: request.code.clone(),
        merchant_name: request.merchant_name.clone(),
        merchant_city: request.merchant_city.clone(),
        currency: request.currency,
        amount: request.amount,
        krw_amount,
        rate,
        quote_id: request.quote_id,
        status: OverseasStatus::Pending,
        steps: vec![(now, Step::Created)],
        refunded: Amount::ZERO,
        krw_refunded: Amount::ZERO,
        refunds: 0,
        created_at: now,
        resolved_at: 0,
        day,
        window_id: 0,
    };
    f.partners.overseas.push_back(payment.clone());
    f.partners.pending_overseas.insert(id);
    ctx.emit(Event::OverseasCreated { partner_id: request.partner_id, payment_id: id });
    (Ok(payment), ctx.used())
}

impl Partners {
    /// An overseas payment.
    pub fn overseas_payment(&self, id: u64) -> Option<&OverseasPayment> {
        id.checked_sub(1).and_then(|i| self.overseas.get(i as usize))
    }

    /// Overseas payments waiting for their partner.
    pub fn pending_overseas(&self) -> impl Iterator<Item = &OverseasPayment> + '_ {
        self.pending_overseas.iter().filter_map(|&id| self.overseas_payment(id))
    }

    /// A refund from abroad.
    pub fn overseas_refund(&self, id: u64) -> Option<&OverseasRefund> {
        id.checked_sub(1).and_then(|i| self.overseas_refunds.get(i as usize))
    }

    /// Records a step of a pending payment; a step that ends it posts or voids its money.
    pub(super) fn resolve_overseas(
        &mut self,
        payment_id: u64,
        step: Step,
        ctx: &mut Ctx<Event>,
    ) -> Result<OverseasPayment, OverseasError> {
        let now = ctx.now();
        let p = self.overseas_payment(payment_id).ok_or(OverseasError::UnknownPayment)?.clone();
        if p.status != OverseasStatus::Pending {
            return Err(OverseasError::WrongStatus { status: p.status });
        }
        if let Some(paid) = step.ends() {
            let flag = if paid { TransferFlags::POST_PENDING_TRANSFER } else { TransferFlags::VOID_PENDING_TRANSFER };
            let resolve = |id: u128, pending_id: u128, linked: bool| Transfer {
                id,
                pending_id,
                amount: if paid { AMOUNT_MAX } else { 0 },
                flags: TransferFlags(flag | if linked { TransferFlags::LINKED } else { 0 }),
                ..Default::default()
            };
            let outcomes = ctx.transfers(&[
                resolve(chart::OVERSEAS_RESOLVE.id(payment_id), chart::OVERSEAS_PAYMENT.id(payment_id), true),
                resolve(
                    chart::OVERSEAS_CONVERSION_RESOLVE.id(payment_id),
                    chart::OVERSEAS_CONVERSION.id(payment_id),
                    false,
                ),
            ]);
            assert!(
                outcomes.iter().all(|o| o.result.is_success()),
                "the books refused to resolve overseas payment {payment_id}: {outcomes:?}"
            );
            if !paid {
                ctx.limits.uncount_outgoing(p.user_id, p.day, p.krw_amount);
            }
        }
        let window_id = match step.ends() {
            Some(true) => {
                let w = self.open_window(p.partner_id, p.currency, now);
                self.window_mut(w).outbound += u128::from(p.amount.minor());
                self.window_mut(w).overseas += 1;
                w
            }
            _ => 0,
        };
        let payment = self.overseas_mut(payment_id);
        if payment.steps.len() >= STEPS_MAX {
            // Keep the first steps and the latest: drop the oldest inquiry in between.
            payment.steps.remove(STEPS_MAX / 2);
        }
        payment.steps.push((now, step));
        if let Some(paid) = step.ends() {
            payment.status = if paid { OverseasStatus::Succeeded } else { OverseasStatus::Failed };
            payment.resolved_at = now;
            payment.window_id = window_id;
        }
        let payment = payment.clone();
        if let Some(paid) = step.ends() {
            self.pending_overseas.remove(&payment_id);
            ctx.emit(if paid {
                Event::OverseasSucceeded { partner_id: p.partner_id, payment_id }
            } else {
                Event::OverseasFailed { partner_id: p.partner_id, payment_id }
            });
        }
        Ok(payment)
    }

    fn overseas_mut(&mut self, id: u64) -> &mut OverseasPayment {
        self.overseas.get_mut(id as usize - 1).expect("an overseas payment id the state gave")
    }

    /// A partner refunds part or all of an overseas payment, in the merchant's currency.
    pub(super) fn refund_overseas(
        &mut self,
        request: &OverseasRefundRequest,
        ctx: &mut Ctx<Event>,
    ) -> Result<OverseasRefunded, OverseasError> {
        let now = ctx.now();
        let key = (request.partner_id, request.refund_request_id.clone());
        if let Some(&id) = self.overseas_refund_by_request.get(&key) {
            let refund = self.overseas_refund(id).expect("an indexed refund").clone();
            if refund.payment_id != request.payment_id || refund.amount != request.amount {
                return Err(OverseasError::RefundIdReused);
            }
            let payment = self.overseas_payment(refund.payment_id).expect("a refund's payment").clone();
            return Ok(OverseasRefunded { refund, payment, replayed: true });
        }
        let p = self
            .overseas_payment(request.payment_id)
            .filter(|p| p.partner_id == request.partner_id)
            .ok_or(OverseasError::UnknownPayment)?
            .clone();
        if p.status != OverseasStatus::Succeeded {
            return Err(OverseasError::WrongStatus { status: p.status });
        }
        if request.amount.is_zero() || request.currency != p.currency {
            return Err(OverseasError::InvalidAmount);
        }
        let left = p.amount.saturating_sub(p.refunded);
        if request.amount > left {
            return Err(OverseasError::AmountTooLarge { max: left });
        }
        if p.refunds >= OVERSEAS_REFUNDS_MAX {
            return Err(OverseasError::TooManyRefunds);
        }
        let refunded = p.refunded.saturating_add(request.amount);
        let due = u128::from(p.krw_amount.minor()) * u128::from(refunded.minor()) / u128::from(p.amount.minor());
        let krw_back = Amount::new(due as u64).saturating_sub(p.krw_refunded);
        // The legal maximum holds for every wallet, refunds included (the snapshot decoder
        // checks it): a refund that would pass it is refused, and the partner retries it.
        let legal_max = crate::limits::Tier::Verified.legal_maxima().balance_cap;
        let wallet = ctx.books.account(crate::wallet::wallet_account_id(p.user_id)).expect("every user has a wallet");
        if crate::limits::balance(wallet).saturating_add(krw_back.ledger()) > legal_max.ledger() {
            return Err(OverseasError::WalletFull);
        }
        let id = self.overseas_refunds.len() as u64 + 1;
        let partner_account = self.partner_account(p.partner_id, p.currency, ctx);
        let pair = [
            Transfer {
                id: chart::OVERSEAS_REFUND_CONVERSION.id(id),
                debit_account_id: partner_account,
                credit_account_id: chart::FX_POSITION.system_id(p.currency),
                amount: request.amount.ledger(),
                ledger: p.currency.ledger(),
                code: chart::OVERSEAS_REFUND_CONVERSION.code,
                flags: TransferFlags(TransferFlags::LINKED),
                user_data_64: p.partner_id,
                ..Default::default()
            },
            Transfer {
                id: chart::OVERSEAS_REFUND.id(id),
                debit_account_id: chart::FX_POSITION.system_id(WALLET_CURRENCY),
                credit_account_id: crate::wallet::wallet_account_id(p.user_id),
                amount: krw_back.ledger(),
                ledger: WALLET_CURRENCY.ledger(),
                code: chart::OVERSEAS_REFUND.code,
                user_data_64: p.id,
                ..Default::default()
            },
        ];
        let outcomes = ctx.transfers(&pair);
        assert!(outcomes.iter().all(|o| o.result.is_success()), "the books refused overseas refund {id}: {outcomes:?}");
        let window_id = self.open_window(p.partner_id, p.currency, now);
        let w = self.window_mut(window_id);
        w.outbound_refunded += u128::from(request.amount.minor());
        w.overseas_refunds += 1;
        let refund = OverseasRefund {
            id,
            partner_id: p.partner_id,
            request_id: request.refund_request_id.clone(),
            payment_id: p.id,
            amount: request.amount,
            krw_amount: krw_back,
            created_at: now,
            window_id,
        };
        self.overseas_refund_by_request.insert(key, id);
        self.overseas_refunds.push_back(refund.clone());
        let payment = self.overseas_mut(p.id);
        payment.refunded = refunded;
        payment.krw_refunded = payment.krw_refunded.saturating_add(krw_back);
        payment.refunds += 1;
        let payment = payment.clone();
        ctx.emit(Event::OverseasRefunded { partner_id: p.partner_id, refund_id: id });
        Ok(OverseasRefunded { refund, payment, replayed: false })
    }
}

impl Partners {
    /// The entry in a user's transaction list of a wallet's transfer `t`, if it is a payment
    /// abroad (its reservation) or a refund from abroad; `balance_at` gives the wallet's
    /// balance at a timestamp.
    pub fn history_entry(
        &self,
        t: &Transfer,
        balance_at: &dyn Fn(u64) -> Option<Amount>,
    ) -> Option<crate::wallet::Entry> {
        use crate::wallet::{Entry, EntryKind};
        let (kind, n) = chart::id_parts(t.id);
        let (entry_kind, p, refund) = if kind == chart::OVERSEAS_PAYMENT.number {
            (EntryKind::OverseasPayment, self.overseas_payment(n)?, None)
        } else if kind == chart::OVERSEAS_REFUND.number {
            let r = self.overseas_refund(n)?;
            (EntryKind::OverseasRefund, self.overseas_payment(r.payment_id)?, Some(r))
        } else {
            return None;
        };
        // The money moved at the payment's end (the refund's own time for a refund); a failed
        // payment's won came back then, a pending one has not moved yet.
        let moved = match (refund, p.status) {
            (Some(_), _) => Some(t.timestamp),
            (None, OverseasStatus::Pending) => None,
            (None, _) => Some(p.resolved_at),
        };
        Some(Entry {
            kind: entry_kind,
            object_id: refund.map_or(p.id, |r| r.id),
            amount: refund.map_or(p.krw_amount, |r| r.krw_amount),
            fee: Amount::ZERO,
            credit: refund.is_some(),
            status: if refund.is_some() { "succeeded" } else { p.status.name() },
            counterparty_user: None,
            counterparty_phone: None,
            bank_account_id: None,
            counterparty_merchant: None,
            store_name: None,
            memo: p.merchant_name.as_str().to_string(),
            balance_after: moved.and_then(balance_at),
            timestamp: t.timestamp,
        })
    }
}

/// The command that records a step, for the consumer that drives the calls.
pub fn step_command(payment_id: u64, step: Step) -> Command {
    Command::ResolveOverseas { payment_id, step }
}
