//! Online payments, the merchant's side: a merchant (with an API key) creates a payment for
//! an order, which waits for a wallet user's approval until it expires (15 minutes unless the
//! merchant says otherwise), and may cancel it before then. The user's approval, capture and
//! cancel after approval are in `approval.rs`, refunds in `refund.rs`.
//!
//! A payment's order id is unique per merchant, so that a merchant's retry of the same order
//! finds the first payment instead of making a second.

use super::command::{MerchantStatus, Scopes};
use super::webhook::{WebhookCommand, WebhookEndpoint, WebhookError};
use super::Merchants;
use crate::money::Amount;
use crate::text::{label, text_rule};
use serde::{Deserialize, Serialize};

text_rule!(
    /// The merchant's id of the order: 1 to 100 printable ASCII characters, no spaces.
    OrderId, OrderIdRule, 100, "an order id", true,
    |v| {
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(())
        } else {
            Err("an order id is 1 to 100 printable ASCII characters without spaces".into())
        }
    }
);

text_rule!(
    /// What is bought, as the user sees it: 1 to 100 characters, no control characters.
    ItemName, ItemNameRule, 400, "an item name", true,
    |v| label(v, 100, "an item name")
);

text_rule!(
    /// Where the approval page sends the user back: an `https://` URL (or `http://` on the
    /// local machine, for development), up to 2,048 characters.
    ReturnUrl, ReturnUrlRule, 2048, "a return URL", true,
    |v| {
        // `http://` only to the local machine itself: the host must be exactly `localhost`
        // or `127.0.0.1` (not `localhost.evil.example`).
        let local = v.strip_prefix("http://").is_some_and(|rest| {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            !authority.contains('@') && (host == "localhost" || host == "127.0.0.1")
        });
        if !(v.starts_with("https://") || local) {
            return Err("a return URL starts with https:// (or http://localhost for development)".into());
        }
        if v.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(())
        } else {
            Err("a return URL is printable ASCII without spaces".into())
        }
    }
);

/// The largest payment: 100,000,000 won (more than any wallet may hold).
pub const PAYMENT_AMOUNT_MAX: Amount = Amount::new(100_000_000);
/// How long an unapproved payment waits, unless the merchant says otherwise.
pub const APPROVAL_SECONDS_DEFAULT: u32 = 15 * 60;
/// The longest a merchant may let a payment wait for approval: a day.
pub const APPROVAL_SECONDS_MAX: u32 = 24 * 3600;
/// The shortest: a minute.
pub const APPROVAL_SECONDS_MIN: u32 = 60;

/// When a payment's money moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaptureMethod {
    /// At approval.
    Automatic,
    /// When the merchant captures (within 7 days of approval).
    Manual,
}

impl CaptureMethod {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
        }
    }
}

/// Where a payment was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    /// Online: the merchant created it, a user approved it through its link.
    Online,
    /// A user scanned a store's static QR code and entered the amount.
    StaticQr,
    /// A user scanned a QR code that the merchant made for this one sale.
    DynamicQr,
    /// The merchant charged a one-time payment code that a user showed.
    PaymentCode,
    /// A partner wallet network paid it for one of its users (a visitor), who scanned the
    /// store's code with the partner's app (`partner/`).
    Partner,
}

impl Channel {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::StaticQr => "static_qr",
            Channel::DynamicQr => "dynamic_qr",
            Channel::PaymentCode => "payment_code",
            Channel::Partner => "partner",
        }
    }
}

/// Who pays a payment, and so whose account its money comes from and its refunds go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payer {
    /// A wallet user (whether the approval used the PIN-free budget counts for its limits).
    User {
        /// The user.
        user_id: u64,
        /// Approved without the PIN.
        pin_free: bool,
    },
    /// A partner wallet network, from its won account (its users' limits are the partner's
    /// business).
    Partner(u64),
}

impl Payer {
    /// The account in the books the payment's money comes from.
    pub fn account(self) -> u128 {
        match self {
            Payer::User { user_id, .. } => crate::wallet::wallet_account_id(user_id),
            Payer::Partner(partner_id) => crate::chart::PARTNER
                .id(crate::chart::partner_account_number(partner_id, crate::wallet::WALLET_CURRENCY)),
        }
    }

    /// The id kept in the payment's `user_id`.
    pub(super) fn id(self) -> u64 {
        match self {
            Payer::User { user_id, .. } | Payer::Partner(user_id) => user_id,
        }
    }
}

/// Where a payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    /// Waiting for the user's approval.
    RequiresApproval,
    /// Approved, the money reserved, waiting for the merchant's capture.
    RequiresCapture,
    /// Paid.
    Succeeded,
    /// Ended without payment; `cancel_reason` says why.
    Canceled,
}

impl PaymentStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PaymentStatus::RequiresApproval => "requires_approval",
            PaymentStatus::RequiresCapture => "requires_capture",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Canceled => "canceled",
        }
    }

    /// The status named `name`.
    pub fn from_name(name: &str) -> Option<PaymentStatus> {
        [Self::RequiresApproval, Self::RequiresCapture, Self::Succeeded, Self::Canceled]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// Why a payment was canceled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelReason {
    /// The merchant canceled it.
    Merchant,
    /// Nobody approved it in time.
    Expired,
    /// The user declined it.
    Declined,
    /// The merchant did not capture it in time.
    CaptureExpired,
}

impl CancelReason {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            CancelReason::Merchant => "merchant",
            CancelReason::Expired => "expired",
            CancelReason::Declined => "declined",
            CancelReason::CaptureExpired => "capture_expired",
        }
    }
}

/// A payment, as the state keeps it and a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose payment.
    pub merchant_id: u64,
    /// The store it is for, if any.
    pub store_id: Option<u64>,
    /// The merchant's order id, unique per merchant.
    pub order_id: OrderId,
    /// What is bought.
    pub item_name: ItemName,
    /// How much, in won.
    pub amount: Amount,
    /// When the money moves.
    pub capture_method: CaptureMethod,
    /// Where it stands.
    pub status: PaymentStatus,
    /// Why it was canceled, if it was.
    pub cancel_reason: Option<CancelReason>,
    /// Where the approval page sends the user back.
    pub return_url: Option<ReturnUrl>,
    /// When it was created.
    pub created_at: u64,
    /// When an unapproved payment expires.
    pub expires_at: u64,
    /// When its status last changed (its creation, at first).
    pub status_changed_at: u64,
    /// The user who approved it (0 until then); for a partner's payment
    /// ([`Channel::Partner`]), the partner.
    pub user_id: u64,
    /// When it was approved (0 until then).
    pub approved_at: u64,
    /// The KST day its approval counts against the user's daily limit.
    pub day: u64,
    /// What was captured (0 until the capture).
    pub captured: Amount,
    /// Kasa's fee on the capture.
    pub fee: Amount,
    /// What refunds gave back so far.
    pub refunded: Amount,
    /// The part of the fee those refunds returned to the merchant.
    pub fee_refunded: Amount,
    /// Number of refunds.
    pub refunds: u16,
    /// Where it was made.
    pub channel: Channel,
}

impl Payment {
    /// The id of its pending transfer in the books.
    pub fn transfer_id(&self) -> u128 {
        crate::chart::PAYMENT.id(self.id)
    }

    /// Who paid it, once approved.
    pub fn payer(&self) -> Payer {
        if self.channel == Channel::Partner {
            Payer::Partner(self.user_id)
        } else {
            Payer::User { user_id: self.user_id, pin_free: false }
        }
    }

    /// When an approved payment must be captured by (0 unless it waits for a capture).
    pub fn capture_before(&self) -> u64 {
        if self.status == PaymentStatus::RequiresCapture {
            crate::time::after_seconds(self.approved_at, u64::from(super::approval::CAPTURE_SECONDS))
        } else {
            0
        }
    }

    /// What can still be refunded.
    pub fn refundable(&self) -> Amount {
        self.captured.saturating_sub(self.refunded)
    }
}

/// What a merchant's API key asks of the merchant domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyCommand {
    /// Creates a payment that waits for a user's approval.
    CreatePayment {
        /// The store it is for, if any (one of the merchant's).
        store_id: Option<u64>,
        /// The merchant's order id.
        order_id: OrderId,
        /// What is bought.
        item_name: ItemName,
        /// How much, 1 to [`PAYMENT_AMOUNT_MAX`] won.
        amount: Amount,
        /// When the money moves.
        capture_method: CaptureMethod,
        /// How long it waits for approval, [`APPROVAL_SECONDS_MIN`] to [`APPROVAL_SECONDS_MAX`].
        expires_in_seconds: u32,
        /// Where the approval page sends the user back.
        return_url: Option<ReturnUrl>,
    },
    /// Cancels a payment that nobody approved yet.
    CancelPayment {
        /// Which payment (one of the merchant's).
        payment_id: u64,
    },
    /// Manages the merchant's webhook endpoints.
    Webhook(WebhookCommand),
    /// Captures an approved payment: all of it, or `amount` and the rest released.
    CapturePayment {
        /// Which payment.
        payment_id: u64,
        /// How much (`None`: all that was approved).
        amount: Option<Amount>,
    },
    /// Refunds part or all of a captured payment to the user's wallet.
    RefundPayment {
        /// Which payment.
        payment_id: u64,
        /// How much (at most what is left to refund).
        amount: Amount,
        /// Why, as the merchant says.
        reason: super::refund::RefundReason,
    },
    /// Makes a store's QR code for one sale: a payment of a fixed amount that waits for the
    /// user who scans it (its link's token is the code's reference), automatically captured.
    CreateStoreQr {
        /// Which store (one of the merchant's).
        store_id: u64,
        /// The merchant's order id.
        order_id: OrderId,
        /// What is bought (`None`: the store's name).
        item_name: Option<ItemName>,
        /// How much.
        amount: Amount,
        /// How long the code may be scanned.
        expires_in_seconds: u32,
    },
}

impl KeyCommand {
    /// The scope a key needs for this command.
    pub fn scope(&self) -> Scopes {
        match self {
            KeyCommand::Webhook(w) => w.scope(),
            KeyCommand::RefundPayment { .. } => Scopes::named("refunds:write").expect("a known scope"),
            _ => Scopes::named("payments:write").expect("a known scope"),
        }
    }

    /// The most event timestamps the command uses: a capture posts and takes the fee, a
    /// refund pays back and returns part of the fee.
    pub fn events_max(&self) -> usize {
        match self {
            KeyCommand::CapturePayment { .. } | KeyCommand::RefundPayment { .. } => 2,
            _ => 1,
        }
    }
}

/// Why a payment command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentError {
    /// The merchant has a payment for this order id.
    OrderExists {
        /// That payment.
        payment_id: u64,
    },
    /// The amount is 0 or above [`PAYMENT_AMOUNT_MAX`].
    InvalidAmount,
    /// The approval time is out of bounds.
    InvalidExpiry,
    /// No such store of this merchant.
    UnknownStore,
    /// No such payment of this merchant.
    UnknownPayment,
    /// The merchant is suspended or closed: no new payments.
    MerchantNotActive {
        /// Its status.
        status: MerchantStatus,
    },
    /// The payment is past the point where this can happen.
    WrongStatus {
        /// Where it stands.
        status: PaymentStatus,
    },
    /// The amount is more than the payment allows (a capture above what was approved, a
    /// refund above what is left to refund).
    AmountTooLarge {
        /// The most it allows.
        max: Amount,
    },
    /// The payment has [`super::refund::REFUNDS_PER_PAYMENT_MAX`] refunds.
    TooManyRefunds,
    /// Nobody approved the payment in time.
    Expired,
    /// The order id starts with [`super::KASA_ORDER_PREFIX`], which names Kasa's own.
    ReservedOrderId,
    /// A partner's payment is refunded through the partner, which pays its user back.
    PartnerPayment,
    /// The refund would put the user's wallet over the legal maximum of any wallet: it waits
    /// until the user spends or withdraws.
    WalletFull,
}

/// What a key command gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOutcome {
    /// `CreatePayment`.
    PaymentCreated(Result<Payment, PaymentError>),
    /// `CancelPayment`.
    PaymentCanceled(Result<Payment, PaymentError>),
    /// `Webhook`: the endpoint as it is now.
    Webhook(Result<WebhookEndpoint, WebhookError>),
    /// `CapturePayment`: the payment after the capture.
    PaymentCaptured(Result<Payment, PaymentError>),
    /// `RefundPayment`: the refund and the payment after it.
    Refunded(Result<(super::refund::Refund, Payment), PaymentError>),
    /// `CreateStoreQr`: the payment the code stands for, and what its payload shows of the
    /// merchant (display name, category code).
    StoreQrCreated(Result<(Payment, super::DisplayName, super::Mcc), PaymentError>),
}

/// Why a key's command was not applied at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyRefusal {
    /// No live key has this hash (never issued, or revoked).
    UnknownKey,
    /// The key lacks the scope the command needs.
    Scope {
        /// The scope it needs.
        needed: Scopes,
    },
}

impl Merchants {
    /// Applies a key's command: the key is resolved and its scope checked in the same step,
    /// so a revoked key's command never applies. Returns the key's id (0 if unknown).
    pub(super) fn apply_as_key(
        &mut self,
        key_hash: &[u8; 32],
        command: &KeyCommand,
        ctx: &mut super::Ctx,
    ) -> (u64, Result<KeyOutcome, KeyRefusal>) {
        let Some((key, _)) = self.live_key(key_hash) else { return (0, Err(KeyRefusal::UnknownKey)) };
        let (key_id, merchant_id) = (key.id, key.merchant_id);
        if !key.scopes.contains(command.scope()) {
            return (key_id, Err(KeyRefusal::Scope { needed: command.scope() }));
        }
        let outcome = match command {
            KeyCommand::CreatePayment {
                store_id,
                order_id,
                item_name,
                amount,
                capture_method,
                expires_in_seconds,
                return_url,
            } => KeyOutcome::PaymentCreated(self.create_payment(
                merchant_id,
                NewPayment {
                    store_id: *store_id,
                    order_id,
                    item_name,
                    amount: *amount,
                    capture_method: *capture_method,
                    expires_in_seconds: *expires_in_seconds,
                    return_url: return_url.as_ref(),
                    channel: Channel::Online,
                },
                ctx,
            )),
            KeyCommand::CreateStoreQr { store_id, order_id, item_name, amount, expires_in_seconds } => {
                let store_name = self.store(*store_id).filter(|s| s.merchant_id == merchant_id).map(|s| s.name.clone());
                let merchant = self.merchant(merchant_id).expect("a live key's merchant exists");
                let shown = (merchant.display_name.clone(), merchant.mcc);
                KeyOutcome::StoreQrCreated(match store_name {
                    None => Err(PaymentError::UnknownStore),
                    Some(name) => {
                        let item_name = item_name.clone().unwrap_or_else(|| item_of_store(&name));
                        self.create_payment(
                            merchant_id,
                            NewPayment {
                                store_id: Some(*store_id),
                                order_id,
                                item_name: &item_name,
                                amount: *amount,
                                capture_method: CaptureMethod::Automatic,
                                expires_in_seconds: *expires_in_seconds,
                                return_url: None,
                                channel: Channel::DynamicQr,
                            },
                            ctx,
                        )
                        .map(|payment| (payment, shown.0, shown.1))
                    }
                })
            }
            KeyCommand::CancelPayment { payment_id } => {
                KeyOutcome::PaymentCanceled(self.cancel_payment(merchant_id, *payment_id, ctx))
            }
            KeyCommand::Webhook(w) => KeyOutcome::Webhook(self.apply_webhook(merchant_id, w, ctx)),
            KeyCommand::CapturePayment { payment_id, amount } => {
                KeyOutcome::PaymentCaptured(self.capture_payment(merchant_id, *payment_id, *amount, ctx))
            }
            KeyCommand::RefundPayment { payment_id, amount, reason } => {
                KeyOutcome::Refunded(match self.payment(*payment_id) {
                    Some(p) if p.merchant_id == merchant_id && p.channel == Channel::Partner => {
                        Err(PaymentError::PartnerPayment)
                    }
                    _ => self.refund_payment(merchant_id, *payment_id, *amount, reason, ctx),
                })
            }
        };
        (key_id, Ok(outcome))
    }

    pub(super) fn create_payment(
        &mut self,
        merchant_id: u64,
        new: NewPayment,
        ctx: &mut super::Ctx,
    ) -> Result<Payment, PaymentError> {
        let merchant = self.merchant(merchant_id).expect("a live key's merchant exists");
        if merchant.status != MerchantStatus::Active {
            return Err(PaymentError::MerchantNotActive { status: merchant.status });
        }
        let kasa_named = matches!(new.channel, Channel::StaticQr | Channel::Partner);
        if new.order_id.as_str().starts_with(super::KASA_ORDER_PREFIX) != kasa_named {
            return Err(PaymentError::ReservedOrderId);
        }
        if let Some(&payment_id) = self.by_order.get(&(merchant_id, new.order_id.clone())) {
            return Err(PaymentError::OrderExists { payment_id });
        }
        if new.amount.is_zero() || new.amount > PAYMENT_AMOUNT_MAX {
            return Err(PaymentError::InvalidAmount);
        }
        if !(APPROVAL_SECONDS_MIN..=APPROVAL_SECONDS_MAX).contains(&new.expires_in_seconds) {
            return Err(PaymentError::InvalidExpiry);
        }
        if new.store_id.is_some_and(|id| self.store(id).is_none_or(|s| s.merchant_id != merchant_id)) {
            return Err(PaymentError::UnknownStore);
        }
        let now = ctx.now();
        let payment = Payment {
            id: self.payments.len() as u64 + 1,
            merchant_id,
            store_id: new.store_id,
            order_id: new.order_id.clone(),
            item_name: new.item_name.clone(),
            amount: new.amount,
            capture_method: new.capture_method,
            status: PaymentStatus::RequiresApproval,
            cancel_reason: None,
            return_url: new.return_url.cloned(),
            created_at: now,
            expires_at: crate::time::after_seconds(now, u64::from(new.expires_in_seconds)),
            status_changed_at: now,
            user_id: 0,
            approved_at: 0,
            day: 0,
            captured: Amount::ZERO,
            fee: Amount::ZERO,
            refunded: Amount::ZERO,
            fee_refunded: Amount::ZERO,
            refunds: 0,
            channel: new.channel,
        };
        self.index_payment(&payment);
        self.payments.push_back(payment.clone());
        ctx.emit(super::Event::PaymentCreated { merchant_id, payment_id: payment.id, amount: payment.amount });
        Ok(payment)
    }

    fn cancel_payment(
        &mut self,
        merchant_id: u64,
        payment_id: u64,
        ctx: &mut super::Ctx,
    ) -> Result<Payment, PaymentError> {
        let payment =
            self.payment(payment_id).filter(|p| p.merchant_id == merchant_id).ok_or(PaymentError::UnknownPayment)?;
        match payment.status {
            PaymentStatus::RequiresApproval => Ok(self.end_unapproved(payment_id, CancelReason::Merchant, ctx)),
            PaymentStatus::RequiresCapture => self.void_approved(payment_id, ctx).ok_or(PaymentError::Expired),
            status => Err(PaymentError::WrongStatus { status }),
        }
    }

    /// Ends an unapproved payment: canceled for `reason`, out of the expiry order.
    pub(super) fn end_unapproved(&mut self, payment_id: u64, reason: CancelReason, ctx: &mut super::Ctx) -> Payment {
        let now = ctx.now();
        let payment = self.payment_to(payment_id, PaymentStatus::Canceled);
        let expires_at = payment.expires_at;
        payment.cancel_reason = Some(reason);
        payment.status_changed_at = now;
        let payment = payment.clone();
        self.payment_expiries.remove(&(expires_at, payment_id));
        let event = match reason {
            CancelReason::Expired => super::Event::PaymentExpired { merchant_id: payment.merchant_id, payment_id },
            _ => super::Event::PaymentCanceled { merchant_id: payment.merchant_id, payment_id, reason },
        };
        ctx.emit(event);
        payment
    }

    /// Expires unapproved payments whose time is up at `now`, at most `slice` of them.
    pub(super) fn expire_payments(&mut self, now: u64, slice: usize, ctx: &mut super::Ctx) {
        for _ in 0..slice {
            match self.payment_expiries.first() {
                Some(&(at, id)) if at <= now => {
                    self.end_unapproved(id, CancelReason::Expired, ctx);
                }
                _ => break,
            }
        }
    }

    /// Adds a payment to the derived indexes.
    pub(super) fn index_payment(&mut self, p: &Payment) {
        self.by_order.insert((p.merchant_id, p.order_id.clone()), p.id);
        self.payments_of.entry(p.merchant_id).or_default().push(p.id);
        self.by_status.insert((p.merchant_id, p.status as u8, p.id));
        if p.status == PaymentStatus::RequiresApproval {
            self.payment_expiries.insert((p.expires_at, p.id));
        }
    }

    /// The payment with this id.
    pub fn payment(&self, id: u64) -> Option<&Payment> {
        id.checked_sub(1).and_then(|i| self.payments.get(i as usize))
    }

    pub(super) fn payment_mut(&mut self, id: u64) -> Option<&mut Payment> {
        id.checked_sub(1).and_then(|i| self.payments.get_mut(i as usize))
    }

    /// Moves payment `id` (which the caller found) to status `to`, in the status index too:
    /// the only way a payment's status changes.
    pub(super) fn payment_to(&mut self, id: u64, to: PaymentStatus) -> &mut Payment {
        let payment = id.checked_sub(1).and_then(|i| self.payments.get_mut(i as usize)).expect("the caller found it");
        self.by_status.remove(&(payment.merchant_id, payment.status as u8, id));
        self.by_status.insert((payment.merchant_id, to as u8, id));
        payment.status = to;
        payment
    }

    /// The merchant's payment for `order_id`.
    pub fn payment_by_order(&self, merchant_id: u64, order_id: &OrderId) -> Option<&Payment> {
        self.by_order.get(&(merchant_id, order_id.clone())).and_then(|&id| self.payment(id))
    }

    /// A merchant's payments with ids below `before`, newest first, with `status` if given,
    /// at most `limit`.
    pub fn payments_of(
        &self,
        merchant_id: u64,
        before: u64,
        status: Option<PaymentStatus>,
        limit: usize,
    ) -> Vec<&Payment> {
        if let Some(status) = status {
            let ids = self.by_status.range((merchant_id, status as u8, 0)..(merchant_id, status as u8, before.max(1)));
            return ids.rev().filter_map(|&(_, _, id)| self.payment(id)).take(limit).collect();
        }
        let Some(ids) = self.payments_of.get(&merchant_id) else { return Vec::new() };
        let end = ids.partition_point(|&id| id < before);
        ids[..end].iter().rev().filter_map(|&id| self.payment(id)).take(limit).collect()
    }

    /// The earliest expiry of an unapproved payment.
    pub fn next_payment_expiry(&self) -> Option<u64> {
        self.payment_expiries.first().map(|&(at, _)| at)
    }
}

/// A store's name as the item of a payment that names none (a display name is always a
/// valid item name: fewer characters, the same rule).
pub(super) fn item_of_store(name: &super::DisplayName) -> ItemName {
    ItemName::new(name.as_str()).expect("a display name is a valid item name")
}

/// The fields of a new payment.
pub(super) struct NewPayment<'a> {
    pub store_id: Option<u64>,
    pub order_id: &'a OrderId,
    pub item_name: &'a ItemName,
    pub amount: Amount,
    pub capture_method: CaptureMethod,
    pub expires_in_seconds: u32,
    pub return_url: Option<&'a ReturnUrl>,
    pub channel: Channel,
}

#[cfg(test)]
mod tests {
    use super::ReturnUrl;

    #[test]
    fn a_return_url_is_https_or_the_local_machine_itself() {
        for ok in
            ["https://shop.example/done?o=1", "http://localhost:8080/done", "http://127.0.0.1/done", "http://localhost"]
        {
            assert!(ReturnUrl::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://localhost.evil.example/done",
            "http://127.0.0.1.evil.example/",
            "http://localhost@evil.example/",
            "http://evil.example/",
            "javascript:alert(1)",
            "https://shop.example/a b",
        ] {
            assert!(ReturnUrl::new(bad).is_err(), "{bad}");
        }
    }
}
