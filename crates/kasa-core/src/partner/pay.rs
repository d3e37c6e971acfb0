//! A partner's payments at Kasa stores, their cancels and refunds: flows of the partner and
//! merchant domains, as an in-store payment is a flow of the wallet and merchant domains.
//!
//! **A payment** (Alipay+'s `pay`): the partner's user scanned a Kasa store's code with the
//! partner's app, and the partner pays the store in won. The merchant gets a payment like any
//! other (channel `partner`, captured at once, with its fee, webhooks and payouts), paid from
//! the partner's won account. If the partner settles in another currency, the won are bought
//! from it at the quote it names or the rate in force: a linked pair of transfers through
//! Kasa's FX positions, never one transfer across currencies. Kasa's fee to the partner is in
//! the settlement currency. Everything is checked first and money moves last.
//!
//! **A refund** (up to a year after, partial, idempotent by `refundRequestId`) goes back at
//! the payment's own rate, whatever the rates did since: of the settlement amount, the share
//! of the won refunded so far, rounded down, less what earlier refunds gave back, so that the
//! refunds of a whole payment give back exactly its settlement amount. Kasa's fee to the
//! partner (rounded down) is taken back in the same way, its share rounded up. **A cancel** is a refund of everything, free, while the payment's
//! settlement window is open; after the cutoff the partner refunds instead.

use super::command::{
    Paid, PartnerPayment, PartnerPaymentStatus, PartnerRefund, PartnerStatus, PayError, PayRequest, Refunded,
    RequestId, REFUNDS_PER_PAYMENT_MAX, REFUND_SECONDS_MAX,
};
use super::window::WindowStatus;
use super::{Event, Partners};
use crate::chart;
use crate::context::Ctx;
use crate::fees::Fees;
use crate::fx::{convert, Directed, Side};
use crate::ledger::{Ledger, Transfer, TransferFlags};
use crate::limits::Limits;
use crate::merchant::instore::{names, pay_now, payable_store};
use crate::merchant::{Channel, Merchants, OrderId, Payer, RefundReason, KASA_ORDER_PREFIX};
use crate::money::{Amount, Currency};
use crate::time::after_seconds;
use crate::wallet::WALLET_CURRENCY;

/// The tables and services a flow of the partner and merchant domains reaches, each
/// domain's events apart.
pub(crate) struct PartnerFlow<'a> {
    pub partners: &'a mut Partners,
    pub merchants: &'a mut Merchants,
    pub books: &'a mut Ledger,
    pub limits: &'a mut Limits,
    pub fees: &'a mut Fees,
    pub merchant_events: &'a mut Vec<crate::merchant::Event>,
    pub events: &'a mut Vec<Event>,
    pub first: u64,
}

/// A partner pays a store; returns the outcome and the timestamps used.
pub(crate) fn pay(f: PartnerFlow, request: &PayRequest) -> (Result<Paid, PayError>, u64) {
    let now = f.first;
    let refused = |e| (Err(e), 1);
    let Some(partner) = f.partners.partner(request.partner_id) else { return refused(PayError::UnknownPartner) };
    if let Some(&id) = f.partners.payment_by_request.get(&(request.partner_id, request.request_id.clone())) {
        let payment = f.partners.payment(id).expect("an indexed payment").clone();
        let same = payment.store_id == request.store_id
            && payment.amount == request.amount
            && payment.customer_id == request.customer_id;
        return if same { (Ok(Paid { payment, replayed: true }), 1) } else { refused(PayError::RequestIdReused) };
    }
    if partner.status != PartnerStatus::Active {
        return refused(PayError::PartnerSuspended);
    }
    let (partner_id, currency, fee_bps) = (partner.id, partner.settlement_currency, partner.fee_bps);
    let merchant_id = match payable_store(f.merchants, request.store_id, request.amount) {
        Ok(merchant_id) => merchant_id,
        Err(e) => return refused(PayError::Merchant(e)),
    };
    if request.merchant_name.as_ref().is_some_and(|shown| !names(f.merchants, merchant_id, shown)) {
        return refused(PayError::MerchantMismatch);
    }
    let (settlement_amount, rate, quote_id) = match f.partners.conversion(partner_id, currency, request, now) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    // Kasa pays the fee: rounded down, in Kasa's favour, as every rounding here.
    let fee = Amount::new((u128::from(settlement_amount.minor()) * u128::from(fee_bps) / 10_000) as u64);

    // The merchant's payment, paid from the partner's won account.
    let id = f.partners.payments.len() as u64 + 1;
    let mut merchant_ctx = Ctx::new(&mut *f.books, &mut *f.limits, &mut *f.fees, f.merchant_events, now);
    let order_id = OrderId::new(format!("{KASA_ORDER_PREFIX}ptn_{id}")).expect("a generated order id is valid");
    let payer = Payer::Partner(partner_id);
    f.partners.partner_account(partner_id, WALLET_CURRENCY, &mut merchant_ctx);
    let merchant_payment = match pay_now(
        f.merchants,
        merchant_id,
        request.store_id,
        &order_id,
        request.item_name.as_ref(),
        request.amount,
        Channel::Partner,
        payer,
        &mut merchant_ctx,
    ) {
        Ok(p) => p,
        Err(e) => return refused(PayError::Merchant(in_store_to_payment(e))),
    };
    let used = merchant_ctx.stamps_used();

    // The partner's side: the conversion and the fee.
    let mut ctx = Ctx::new(&mut *f.books, &mut *f.limits, &mut *f.fees, f.events, now + used);
    let mut transfers = Vec::with_capacity(3);
    if currency != WALLET_CURRENCY {
        transfers.extend(conversion_pair(
            f.partners,
            partner_id,
            (currency, settlement_amount),
            (WALLET_CURRENCY, request.amount),
            (chart::CONVERSION_SELL.id(id), chart::CONVERSION_BUY.id(id)),
            &mut ctx,
        ));
    }
    transfers.push(fee_transfer(f.partners, partner_id, currency, fee, chart::PARTNER_FEE.id(id), false, &mut ctx));
    let outcomes = ctx.transfers(&transfers);
    assert!(outcomes.iter().all(|o| o.result.is_success()), "the books refused partner payment {id}: {outcomes:?}");

    let window_id = f.partners.open_window(partner_id, currency, now);
    f.partners.add_payment_to_window(window_id, settlement_amount, fee);
    let payment = PartnerPayment {
        id,
        partner_id,
        request_id: request.request_id.clone(),
        customer_id: request.customer_id.clone(),
        merchant_id,
        store_id: request.store_id,
        merchant_payment_id: merchant_payment.id,
        amount: request.amount,
        settlement_currency: currency,
        settlement_amount,
        fee,
        rate,
        quote_id,
        status: PartnerPaymentStatus::Succeeded,
        refunded: Amount::ZERO,
        settlement_refunded: Amount::ZERO,
        fee_returned: Amount::ZERO,
        refunds: 0,
        created_at: now,
        canceled_at: 0,
        window_id,
    };
    f.partners.index_payment(&payment);
    f.partners.payments.push_back(payment.clone());
    ctx.emit(Event::PaymentSucceeded { partner_id, payment_id: id });
    (Ok(Paid { payment, replayed: false }), (used + ctx.stamps_used()).max(1))
}

/// What the merchant side's refusal of a partner's payment was.
fn in_store_to_payment(e: crate::merchant::InStoreError) -> crate::merchant::PaymentError {
    match e {
        crate::merchant::InStoreError::Payment(p) => p,
        other => unreachable!("a partner's payment was checked before it was made: {other:?}"),
    }
}

impl Partners {
    /// The settlement amount of a payment, its rate and quote: none if the partner settles in
    /// won; else the quote it names (for this partner, unexpired, selling its settlement
    /// currency for won) or the rate in force.
    fn conversion(
        &self,
        partner_id: u64,
        currency: Currency,
        request: &PayRequest,
        now: u64,
    ) -> Result<(Amount, Option<Directed>, u64), PayError> {
        if currency == WALLET_CURRENCY {
            return match request.quote_id {
                Some(_) => Err(PayError::QuoteMismatch),
                None => Ok((request.amount, None, 0)),
            };
        }
        let (directed, quoted, quote_id) = match request.quote_id {
            Some(quote_id) => {
                let q =
                    self.quotes.get(&quote_id).filter(|q| q.partner_id == partner_id).ok_or(PayError::UnknownQuote)?;
                if q.expires_at <= now {
                    return Err(PayError::QuoteExpired);
                }
                if (q.sell(), q.buy()) != (currency, WALLET_CURRENCY) {
                    return Err(PayError::QuoteMismatch);
                }
                // The quote's own amounts, when the payment is for them.
                let quoted = (q.buy_amount == request.amount).then_some(q.sell_amount);
                (q.rate, quoted, quote_id)
            }
            None => {
                let directed = self
                    .rates
                    .at(currency, WALLET_CURRENCY, now)
                    .ok_or(PayError::Fx(super::command::FxRefusal::NoRate))?;
                (directed, None, 0)
            }
        };
        let settlement = match quoted {
            Some(amount) => amount,
            None => convert(&directed, Side::Buy(request.amount)).map_err(|e| PayError::Fx(e.into()))?.sell_amount,
        };
        Ok((settlement, Some(directed), quote_id))
    }

    /// The partner's account in `currency`, created the first time it is needed.
    pub(super) fn partner_account<E>(&self, partner_id: u64, currency: Currency, ctx: &mut Ctx<E>) -> u128 {
        let n = chart::partner_account_number(partner_id, currency);
        let id = chart::PARTNER.id(n);
        if ctx.books.account(id).is_none() {
            let at = ctx.now();
            let outcome = ctx.books.create_accounts(&[chart::PARTNER.account(n, currency, partner_id)], at);
            assert!(outcome[0].result.is_success(), "the books refused partner {partner_id}'s account: {outcome:?}");
        }
        id
    }
}

/// The linked pair of a conversion: `sold` from the partner's account to the FX position of
/// its currency, and `bought` from the FX position of its currency to the partner's account.
/// For a refund, the partner sells won and buys back its settlement currency.
fn conversion_pair(
    partners: &Partners,
    partner_id: u64,
    sold: (Currency, Amount),
    bought: (Currency, Amount),
    (sell_id, buy_id): (u128, u128),
    ctx: &mut Ctx<Event>,
) -> [Transfer; 2] {
    let now = ctx.now();
    for currency in [sold.0, bought.0] {
        chart::ensure_system_account(ctx.books, chart::FX_POSITION, currency, now);
        partners.partner_account(partner_id, currency, ctx);
    }
    let account = |c| chart::PARTNER.id(chart::partner_account_number(partner_id, c));
    let (sell_code, buy_code) = if sold.0 == WALLET_CURRENCY {
        (chart::REFUND_CONVERSION_SELL.code, chart::REFUND_CONVERSION_BUY.code)
    } else {
        (chart::CONVERSION_SELL.code, chart::CONVERSION_BUY.code)
    };
    [
        Transfer {
            id: sell_id,
            debit_account_id: account(sold.0),
            credit_account_id: chart::FX_POSITION.system_id(sold.0),
            amount: sold.1.ledger(),
            ledger: sold.0.ledger(),
            code: sell_code,
            flags: TransferFlags(TransferFlags::LINKED),
            user_data_64: partner_id,
            ..Default::default()
        },
        Transfer {
            id: buy_id,
            debit_account_id: chart::FX_POSITION.system_id(bought.0),
            credit_account_id: account(bought.0),
            amount: bought.1.ledger(),
            ledger: bought.0.ledger(),
            code: buy_code,
            user_data_64: partner_id,
            ..Default::default()
        },
    ]
}

/// Kasa's fee to the partner (`back`: a refund taking part of it back).
fn fee_transfer(
    partners: &Partners,
    partner_id: u64,
    currency: Currency,
    fee: Amount,
    id: u128,
    back: bool,
    ctx: &mut Ctx<Event>,
) -> Transfer {
    let now = ctx.now();
    chart::ensure_system_account(ctx.books, chart::PARTNER_FEES, currency, now);
    let partner = partners.partner_account(partner_id, currency, ctx);
    let fees = chart::PARTNER_FEES.system_id(currency);
    let (debit, credit, code) =
        if back { (partner, fees, chart::PARTNER_FEE_RETURN.code) } else { (fees, partner, chart::PARTNER_FEE.code) };
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount: fee.ledger(),
        ledger: currency.ledger(),
        code,
        user_data_64: partner_id,
        ..Default::default()
    }
}

/// A partner cancels a payment in full while its window is open.
pub(crate) fn cancel(f: PartnerFlow, partner_id: u64, request_id: &RequestId) -> (Result<Refunded, PayError>, u64) {
    let refused = |e| (Err(e), 1);
    if f.partners.partner(partner_id).is_none() {
        return refused(PayError::UnknownPartner);
    }
    let Some(&payment_id) = f.partners.payment_by_request.get(&(partner_id, request_id.clone())) else {
        return refused(PayError::UnknownPayment);
    };
    let payment = f.partners.payment(payment_id).expect("an indexed payment").clone();
    if let Some(&refund_id) = f.partners.cancel_of.get(&payment_id) {
        let refund = f.partners.refund(refund_id).expect("an indexed refund").clone();
        return (Ok(Refunded { refund, payment, replayed: true }), 1);
    }
    let window = f.partners.window(payment.window_id).expect("a payment's window");
    if window.status != WindowStatus::Open {
        return refused(PayError::CancelWindowClosed);
    }
    if !payment.refunded.is_zero() {
        return refused(PayError::AlreadyRefunded);
    }
    refund_now(f, &payment, request_id, payment.amount, true)
}

/// A partner refunds part or all of a payment.
pub(crate) fn refund(
    f: PartnerFlow,
    partner_id: u64,
    refund_request_id: &RequestId,
    request_id: &RequestId,
    amount: Amount,
) -> (Result<Refunded, PayError>, u64) {
    let now = f.first;
    let refused = |e| (Err(e), 1);
    if f.partners.partner(partner_id).is_none() {
        return refused(PayError::UnknownPartner);
    }
    let payment_id = f.partners.payment_by_request.get(&(partner_id, request_id.clone())).copied();
    if let Some(&refund_id) = f.partners.refund_by_request.get(&(partner_id, refund_request_id.clone())) {
        let refund = f.partners.refund(refund_id).expect("an indexed refund").clone();
        if Some(refund.payment_id) != payment_id || refund.amount != amount {
            return refused(PayError::RefundIdReused);
        }
        let payment = f.partners.payment(refund.payment_id).expect("a refund's payment").clone();
        return (Ok(Refunded { refund, payment, replayed: true }), 1);
    }
    let Some(payment_id) = payment_id else { return refused(PayError::UnknownPayment) };
    let payment = f.partners.payment(payment_id).expect("an indexed payment").clone();
    if payment.status == PartnerPaymentStatus::Canceled {
        return refused(PayError::PaymentCanceled);
    }
    if now >= after_seconds(payment.created_at, REFUND_SECONDS_MAX) {
        return refused(PayError::RefundPeriodOver);
    }
    if amount.is_zero() {
        return refused(PayError::InvalidAmount);
    }
    let left = payment.amount.saturating_sub(payment.refunded);
    if amount > left {
        return refused(PayError::AmountTooLarge { max: left });
    }
    if payment.refunds >= REFUNDS_PER_PAYMENT_MAX {
        return refused(PayError::TooManyRefunds);
    }
    refund_now(f, &payment, refund_request_id, amount, false)
}

/// `part` of `whole` in the share `refunded / amount`, rounded down: what a refund of a
/// payment gives back in total, so far.
fn share(whole: Amount, refunded: Amount, amount: Amount) -> Amount {
    let due = u128::from(whole.minor()) * u128::from(refunded.minor()) / u128::from(amount.minor());
    Amount::new(due as u64)
}

/// [`share`] rounded up.
fn share_up(whole: Amount, refunded: Amount, amount: Amount) -> Amount {
    let due = (u128::from(whole.minor()) * u128::from(refunded.minor())).div_ceil(u128::from(amount.minor()));
    Amount::new(due as u64)
}

/// Refunds `amount` won of a payment the caller checked: the merchant's refund (to the
/// partner's won account), the conversion back at the payment's rate, the fee's share back.
fn refund_now(
    f: PartnerFlow,
    payment: &PartnerPayment,
    request_id: &RequestId,
    amount: Amount,
    cancel: bool,
) -> (Result<Refunded, PayError>, u64) {
    let now = f.first;
    let id = f.partners.refunds.len() as u64 + 1;
    let reason = RefundReason::new(if cancel { "canceled by the partner" } else { "refunded by the partner" })
        .expect("a valid reason");
    let mut merchant_ctx = Ctx::new(&mut *f.books, &mut *f.limits, &mut *f.fees, f.merchant_events, now);
    let merchant_refund = match f.merchants.refund_payment(
        payment.merchant_id,
        payment.merchant_payment_id,
        amount,
        &reason,
        &mut merchant_ctx,
    ) {
        Ok((refund, _)) => refund,
        Err(e) => return (Err(PayError::Merchant(e)), 1),
    };
    let used = merchant_ctx.stamps_used();

    let refunded = payment.refunded.saturating_add(amount);
    let settlement_back =
        share(payment.settlement_amount, refunded, payment.amount).saturating_sub(payment.settlement_refunded);
    // The fee Kasa takes back: its share rounded up (at most the whole fee).
    let fee_back = share_up(payment.fee, refunded, payment.amount).saturating_sub(payment.fee_returned);
    let currency = payment.settlement_currency;
    let partner_id = payment.partner_id;
    let mut ctx = Ctx::new(&mut *f.books, &mut *f.limits, &mut *f.fees, f.events, now + used);
    let mut transfers = Vec::with_capacity(3);
    if currency != WALLET_CURRENCY {
        transfers.extend(conversion_pair(
            f.partners,
            partner_id,
            (WALLET_CURRENCY, amount),
            (currency, settlement_back),
            (chart::REFUND_CONVERSION_SELL.id(id), chart::REFUND_CONVERSION_BUY.id(id)),
            &mut ctx,
        ));
    }
    transfers.push(fee_transfer(
        f.partners,
        partner_id,
        currency,
        fee_back,
        chart::PARTNER_FEE_RETURN.id(id),
        true,
        &mut ctx,
    ));
    let outcomes = ctx.transfers(&transfers);
    assert!(outcomes.iter().all(|o| o.result.is_success()), "the books refused partner refund {id}: {outcomes:?}");

    let window_id = f.partners.open_window(partner_id, currency, now);
    f.partners.add_refund_to_window(window_id, settlement_back, fee_back);
    let refund = PartnerRefund {
        id,
        partner_id,
        request_id: request_id.clone(),
        payment_id: payment.id,
        merchant_refund_id: merchant_refund.id,
        amount,
        settlement_amount: settlement_back,
        fee_returned: fee_back,
        cancel,
        created_at: now,
        window_id,
    };
    f.partners.index_refund(&refund);
    f.partners.refunds.push_back(refund.clone());
    let p = f.partners.payment_mut(payment.id);
    p.refunded = refunded;
    p.settlement_refunded = p.settlement_refunded.saturating_add(settlement_back);
    p.fee_returned = p.fee_returned.saturating_add(fee_back);
    p.refunds += 1;
    if cancel {
        p.status = PartnerPaymentStatus::Canceled;
        p.canceled_at = now;
    }
    let payment = p.clone();
    ctx.emit(if cancel {
        Event::PaymentCanceled { partner_id, payment_id: payment.id }
    } else {
        Event::RefundSucceeded { partner_id, refund_id: id }
    });
    (Ok(Refunded { refund, payment, replayed: false }), (used + ctx.stamps_used()).max(1))
}
