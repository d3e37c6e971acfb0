//! In-store payments: a payment object like an online one (the same states, refunds, fees,
//! webhooks and payouts), made and approved in one command.
//!
//! - **A store's static QR code**: the user scans it and enters the amount; the payment is
//!   made for the store and approved by the user's session at once ([`Scan::Static`]).
//! - **A QR code for one sale**: the merchant made a payment of a fixed amount that waits
//!   for approval (`KeyCommand::CreateStoreQr`); the code carries its reference, and the
//!   user who scans it approves it ([`Scan::Dynamic`]). The payment's own states make the
//!   code single-use and expiring.
//! - **A payment code the user shows**: the merchant's key charges it ([`CodeCharge`]); the
//!   code names the user (the HTTP layer reads and checks it), and the wallet's
//!   `paycode.rs` says whether it is the user's current, unused, unexpired code.
//!
//! Each is a flow of the wallet and merchant domains, as an online approval is
//! (`approval.rs`): everything on both sides is checked first, and only then does money
//! move, so a refusal changes nothing (but a wrong PIN's count).

use super::approval::{answer_payment, funded, AnswerError, AnsweredPayment, Flow};
use super::payment::{
    item_of_store, CaptureMethod, Channel, ItemName, KeyRefusal, NewPayment, OrderId, Payer, Payment, PaymentError,
    PaymentStatus, PAYMENT_AMOUNT_MAX,
};
use super::{MerchantStatus, Merchants, Scopes};
use crate::context::Ctx;
use crate::money::Amount;
use crate::wallet::{CodeError, FundingError};
use serde::{Deserialize, Serialize};

/// The order ids Kasa gives payments that no merchant asked for (a static QR code's) start
/// with this; the HTTP layer refuses merchants' order ids that do.
pub const KASA_ORDER_PREFIX: &str = "kasa_";

/// What a user scanned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scan {
    /// A store's static code, with the amount the user entered.
    Static {
        /// The store.
        store_id: u64,
        /// How much.
        amount: Amount,
        /// The merchant's name as the code shows it (field 59), which the user saw: it must
        /// be the store's merchant's, so that a code that names one shop and pays another
        /// (a sticker over the real one) is refused.
        merchant_name: super::DisplayName,
    },
    /// A code the merchant made for one sale.
    Dynamic {
        /// The payment it stands for (its reference's token was checked by the HTTP layer).
        payment_id: u64,
        /// The store the code names.
        store_id: u64,
        /// The amount the user's app showed, if it sent one: it must be the payment's.
        amount: Option<Amount>,
        /// The merchant's name as the code shows it: it must be the payment's merchant's.
        merchant_name: super::DisplayName,
    },
}

/// A merchant's charge of a payment code that a user showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeCharge {
    /// The user the code names (the HTTP layer checked the code's digits).
    pub user_id: u64,
    /// The code's counter (see `wallet::paycode`).
    pub counter: u32,
    /// The store where it is charged (one of the merchant's).
    pub store_id: u64,
    /// The merchant's order id.
    pub order_id: OrderId,
    /// What is bought (`None`: the store's name).
    pub item_name: Option<ItemName>,
    /// How much.
    pub amount: Amount,
}

/// Why an in-store payment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InStoreError {
    /// The user's session is not valid.
    SessionInvalid,
    /// The merchant's key is unknown, revoked or lacks `payments:write`.
    Key(KeyRefusal),
    /// The merchant's side: the store, the merchant's status, the order, the amount.
    Payment(PaymentError),
    /// The user's side: the PIN, the limits, the funds.
    Funding(FundingError),
    /// The payment code is not the user's current one, is used or has expired.
    Code(CodeError),
    /// The one-sale QR code was paid already.
    QrUsed,
    /// The one-sale QR code expired (or the merchant canceled its sale).
    QrExpired,
    /// The code names a merchant other than the one it pays.
    QrMismatch,
    /// The amount the user's app showed is not the code's.
    AmountMismatch {
        /// The code's amount.
        expected: Amount,
    },
}

impl From<AnswerError> for InStoreError {
    fn from(e: AnswerError) -> InStoreError {
        match e {
            AnswerError::SessionInvalid => InStoreError::SessionInvalid,
            AnswerError::Payment(p) => InStoreError::Payment(p),
            AnswerError::Funding(f) => InStoreError::Funding(f),
        }
    }
}

/// A user pays at a store with a scanned QR code; returns the outcome and the timestamps used.
pub(crate) fn pay_by_qr(
    mut f: Flow,
    token_hash: &[u8; 32],
    scan: &Scan,
    pin_ok: Option<bool>,
) -> (Result<AnsweredPayment, InStoreError>, u64) {
    let Some(session) = f.wallets.session(token_hash, f.first) else {
        return (Err(InStoreError::SessionInvalid), 1);
    };
    let user_id = session.user_id;
    match scan {
        Scan::Dynamic { payment_id, store_id, amount, merchant_name } => {
            if let Err(e) = one_sale_code(f.merchants, *payment_id, *store_id, *amount, merchant_name, f.first) {
                return (Err(e), 1);
            }
            let (outcome, used) = answer_payment(&mut f, (token_hash, *payment_id, true, pin_ok), Channel::DynamicQr);
            (outcome.map(|p| f.merchants.answered(p)).map_err(InStoreError::from), used)
        }
        Scan::Static { store_id, amount, merchant_name } => {
            let merchant_id = match payable_store(f.merchants, *store_id, *amount) {
                Ok(merchant_id) => merchant_id,
                Err(e) => return (Err(InStoreError::Payment(e)), 1),
            };
            if !names(f.merchants, merchant_id, merchant_name) {
                return (Err(InStoreError::QrMismatch), 1);
            }
            let mut wallet_ctx = Ctx::new(&mut *f.books, &mut *f.limits, &mut *f.fees, f.wallet_events, f.first);
            let pin_free = match f.wallets.authorize(user_id, *amount, pin_ok, &mut wallet_ctx) {
                Ok(pin_free) => pin_free,
                Err(e) => return (Err(InStoreError::Funding(e)), 1),
            };
            if let Err(e) = funded(f.books, user_id, *amount) {
                return (Err(InStoreError::Funding(e)), 1);
            }
            let mut ctx = Ctx::new(f.books, f.limits, f.fees, f.events, f.first);
            let order_id = OrderId::new(format!("{KASA_ORDER_PREFIX}qr_{}", f.merchants.payments.len() + 1))
                .expect("a generated order id is valid");
            let outcome = pay_now(
                f.merchants,
                merchant_id,
                *store_id,
                &order_id,
                None,
                *amount,
                Channel::StaticQr,
                Payer::User { user_id, pin_free },
                &mut ctx,
            );
            (outcome.map(|p| f.merchants.answered(p)), ctx.used())
        }
    }
}

/// Whether `shown` is merchant `merchant_id`'s display name.
pub(crate) fn names(merchants: &Merchants, merchant_id: u64, shown: &super::DisplayName) -> bool {
    merchants.merchant(merchant_id).is_some_and(|m| &m.display_name == shown)
}

/// A merchant's key charges a payment code; returns the key's id (0 if unknown), the outcome
/// and the timestamps used.
pub(crate) fn charge_code(
    f: Flow,
    key_hash: &[u8; 32],
    charge: &CodeCharge,
) -> (u64, Result<Payment, InStoreError>, u64) {
    let Some((key, _)) = f.merchants.live_key(key_hash) else {
        return (0, Err(InStoreError::Key(KeyRefusal::UnknownKey)), 1);
    };
    let (key_id, merchant_id) = (key.id, key.merchant_id);
    let needed = Scopes::named("payments:write").expect("a known scope");
    if !key.scopes.contains(needed) {
        return (key_id, Err(InStoreError::Key(KeyRefusal::Scope { needed })), 1);
    }
    let refused = |e| (key_id, Err(e), 1);
    match payable_store(f.merchants, charge.store_id, charge.amount) {
        Ok(m) if m == merchant_id => {}
        Ok(_) => return refused(InStoreError::Payment(PaymentError::UnknownStore)),
        Err(e) => return refused(InStoreError::Payment(e)),
    }
    if let Some(&payment_id) = f.merchants.by_order.get(&(merchant_id, charge.order_id.clone())) {
        return refused(InStoreError::Payment(PaymentError::OrderExists { payment_id }));
    }
    let code = match f.wallets.chargeable_code(charge.user_id, charge.counter, f.first) {
        Ok(code) => code,
        Err(e) => return refused(InStoreError::Code(e)),
    };
    let wallet_ctx = Ctx::new(&mut *f.books, &mut *f.limits, &mut *f.fees, f.wallet_events, f.first);
    let pin_free = match f.wallets.authorize_code(charge.user_id, charge.amount, code.with_pin, &wallet_ctx) {
        Ok(pin_free) => pin_free,
        Err(e) => return refused(InStoreError::Funding(e)),
    };
    if let Err(e) = funded(f.books, charge.user_id, charge.amount) {
        return refused(InStoreError::Funding(e));
    }
    let mut ctx = Ctx::new(f.books, f.limits, f.fees, f.events, f.first);
    let outcome = pay_now(
        f.merchants,
        merchant_id,
        charge.store_id,
        &charge.order_id,
        charge.item_name.as_ref(),
        charge.amount,
        Channel::PaymentCode,
        Payer::User { user_id: charge.user_id, pin_free },
        &mut ctx,
    );
    if outcome.is_ok() {
        f.wallets.use_code(charge.user_id);
    }
    (key_id, outcome, ctx.used())
}

/// Checks a one-sale code's payment before its approval: it was made as a code for the store
/// the code names, is unpaid and in time, and has the amount the user saw.
fn one_sale_code(
    merchants: &Merchants,
    payment_id: u64,
    store_id: u64,
    amount: Option<Amount>,
    merchant_name: &super::DisplayName,
    now: u64,
) -> Result<(), InStoreError> {
    let payment = merchants
        .payment(payment_id)
        .filter(|p| p.channel == Channel::DynamicQr && p.store_id == Some(store_id))
        .ok_or(InStoreError::Payment(PaymentError::UnknownPayment))?;
    match payment.status {
        PaymentStatus::RequiresApproval if payment.expires_at <= now => return Err(InStoreError::QrExpired),
        PaymentStatus::RequiresApproval => {}
        PaymentStatus::RequiresCapture | PaymentStatus::Succeeded => return Err(InStoreError::QrUsed),
        // Canceled after it was paid (a capture that never came cannot happen: one-sale codes
        // are captured at once) is used; canceled before, it expired or the merchant
        // withdrew it.
        PaymentStatus::Canceled if payment.user_id != 0 => return Err(InStoreError::QrUsed),
        PaymentStatus::Canceled => return Err(InStoreError::QrExpired),
    }
    // After the status, so that a paid or expired code says so even if the merchant renamed
    // itself since (which makes its open codes read as another merchant's).
    if !names(merchants, payment.merchant_id, merchant_name) {
        return Err(InStoreError::QrMismatch);
    }
    match amount {
        Some(a) if a != payment.amount => Err(InStoreError::AmountMismatch { expected: payment.amount }),
        _ => Ok(()),
    }
}

/// Checks that a store can take a payment of `amount` now: it exists, its merchant is
/// active, the amount is in bounds. Returns the merchant's id.
pub(crate) fn payable_store(merchants: &Merchants, store_id: u64, amount: Amount) -> Result<u64, PaymentError> {
    let store = merchants.store(store_id).ok_or(PaymentError::UnknownStore)?;
    let merchant = merchants.merchant(store.merchant_id).expect("a store's merchant exists");
    if merchant.status != MerchantStatus::Active {
        return Err(PaymentError::MerchantNotActive { status: merchant.status });
    }
    if amount.is_zero() || amount > PAYMENT_AMOUNT_MAX {
        return Err(PaymentError::InvalidAmount);
    }
    Ok(merchant.id)
}

/// Makes a payment of the store's that the caller checked on both sides, and approves and
/// captures it at once.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pay_now(
    merchants: &mut Merchants,
    merchant_id: u64,
    store_id: u64,
    order_id: &OrderId,
    item_name: Option<&ItemName>,
    amount: Amount,
    channel: Channel,
    payer: Payer,
    ctx: &mut super::Ctx,
) -> Result<Payment, InStoreError> {
    let store_item;
    let item_name = match item_name {
        Some(item) => item,
        None => {
            store_item = item_of_store(&merchants.store(store_id).expect("checked by the caller").name);
            &store_item
        }
    };
    let new = NewPayment {
        store_id: Some(store_id),
        order_id,
        item_name,
        amount,
        capture_method: CaptureMethod::Automatic,
        expires_in_seconds: super::payment::APPROVAL_SECONDS_MIN,
        return_url: None,
        channel,
    };
    let payment = merchants.create_payment(merchant_id, new, ctx).map_err(InStoreError::Payment)?;
    merchants.approve(payment.id, payer, ctx).map_err(InStoreError::Funding)
}
