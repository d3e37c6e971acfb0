//! The partner domain's commands, outcomes, events, errors and records. Every string is a
//! bounded type, checked where it enters.

use super::window::{Window, WindowError};
use crate::fx::{Directed, FxError, Rate, Side};
use crate::merchant::{DisplayName, ItemName, SettlementAccount, WebhookUrl};
use crate::money::{Amount, Currency};
use crate::text::{text_rule, BoundedVec};
use serde::{Deserialize, Serialize};

text_rule!(
    /// A partner's name, as operators and the command line name it (`alipay_plus`): 1 to 64
    /// lower-case ASCII letters, digits, `_` and `-`, starting with a letter or digit.
    PartnerName, PartnerNameRule, 64, "a partner name", true,
    |v| {
        let ok = v.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(())
        } else {
            Err("a partner name is 1 to 64 lower-case letters, digits, _ and -, starting with a letter or digit".into())
        }
    }
);

text_rule!(
    /// A partner's id of a request (`paymentRequestId`, `refundRequestId`): 1 to 64 printable
    /// ASCII characters without spaces, unique per partner.
    RequestId, RequestIdRule, 64, "a request id", true,
    |v| {
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(())
        } else {
            Err("a request id is 1 to 64 printable ASCII characters without spaces".into())
        }
    }
);

text_rule!(
    /// The partner's reference of its user (`customerId`): 1 to 64 printable ASCII characters.
    /// Opaque to Kasa, and not shown in logs.
    CustomerId, CustomerIdRule, 64, "a customer id", false,
    |v| {
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(())
        } else {
            Err("a customer id is 1 to 64 printable ASCII characters without spaces".into())
        }
    }
);

/// How Kasa resolves a call to the partner that got no answer: it inquires every
/// `inquire_every_seconds` for `inquire_for_seconds`, then cancels (and marks the payment
/// failed only once the cancel succeeded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPolicy {
    /// Seconds between inquiries: 1 to 600.
    pub inquire_every_seconds: u16,
    /// Seconds of inquiries before the cancel: 1 to 86,400.
    pub inquire_for_seconds: u32,
}

impl Default for CallPolicy {
    fn default() -> Self {
        CallPolicy { inquire_every_seconds: 3, inquire_for_seconds: 60 }
    }
}

impl CallPolicy {
    /// Whether both are within their bounds.
    pub fn is_valid(&self) -> bool {
        (1..=600).contains(&self.inquire_every_seconds) && (1..=86_400).contains(&self.inquire_for_seconds)
    }
}

/// The QR code schemes a partner accepts abroad (Kasa's users' payments at its merchants), as
/// a set of [`crate::qr::Scheme`] bits; never Kasa's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schemes(pub u16);

impl Schemes {
    /// Whether it holds `scheme`.
    pub fn contains(self, scheme: crate::qr::Scheme) -> bool {
        self.0 & scheme.bit() != 0
    }

    /// The schemes' names.
    pub fn names(self) -> Vec<&'static str> {
        crate::qr::Scheme::ALL.into_iter().filter(|s| self.contains(*s)).map(|s| s.name()).collect()
    }

    /// The set of the schemes named, if every name is a scheme other than Kasa's.
    pub fn named(names: &[&str]) -> Option<Schemes> {
        names.iter().try_fold(Schemes(0), |set, name| {
            crate::qr::Scheme::from_name(name)
                .filter(|s| *s != crate::qr::Scheme::Kasa)
                .map(|s| Schemes(set.0 | s.bit()))
        })
    }
}

/// The highest fee Kasa pays a partner on its payments: 10%.
pub const PARTNER_FEE_BPS_MAX: u16 = 1_000;
/// The most keys a partner holds, revoked ones included (a rotation adds one at a time).
pub const KEYS_PER_PARTNER_MAX: usize = 16;
/// The most partners.
pub const PARTNERS_MAX: usize = 10_000;
/// The most rates one command loads: 500, so that a request of them (about 100 bytes each
/// as JSON) stays under the API's 64 KiB body limit.
pub const RATES_PER_COMMAND_MAX: usize = 500;
/// How long a quote lasts unless its maker says otherwise: 10 minutes.
pub const QUOTE_SECONDS_DEFAULT: u32 = 600;
/// The longest a quote may last: a day.
pub const QUOTE_SECONDS_MAX: u32 = 24 * 3600;
/// How long a quote is kept after it expired, so that a payment that names it is told
/// `quote_expired` rather than `unknown_quote`: an hour.
pub const QUOTE_KEPT_SECONDS: u64 = 3600;
/// The most quotes kept at once.
pub const QUOTES_MAX: usize = 1_000_000;
/// How long after a payment its partner may refund it: 365 days.
pub const REFUND_SECONDS_MAX: u64 = 365 * 24 * 3600;
/// The most refunds of one partner payment.
pub const REFUNDS_PER_PAYMENT_MAX: u16 = 100;

/// Whether a partner may send payments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartnerStatus {
    /// It may.
    Active,
    /// It may not pay; refunds, cancels and settlement go on.
    Suspended,
}

impl PartnerStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PartnerStatus::Active => "active",
            PartnerStatus::Suspended => "suspended",
        }
    }
}

/// A partner's public key for signed requests: its version (`keyVersion`, from 1) and the
/// Ed25519 key. The private key never reaches Kasa.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerKey {
    /// The key's version, from 1 per partner.
    pub version: u32,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
    /// When it was registered.
    pub created_at: u64,
    /// When it was revoked (0: it was not).
    pub revoked_at: u64,
}

/// A partner wallet network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Its unique name.
    pub name: PartnerName,
    /// The currency its users hold.
    pub home_currency: Currency,
    /// The currency it settles with Kasa in.
    pub settlement_currency: Currency,
    /// What Kasa pays it per payment, in basis points of the settlement amount.
    pub fee_bps: u16,
    /// Where settlements are paid and drawn: its bank account (the number sealed).
    pub settlement: SettlementAccount,
    /// Where Kasa calls the partner (`{endpoint}/payments/notifyPayment`, `/payments/pay`, ...),
    /// if it takes calls.
    pub endpoint: Option<WebhookUrl>,
    /// The QR schemes it accepts abroad.
    pub accepts: Schemes,
    /// How Kasa resolves a call that got no answer.
    pub policy: CallPolicy,
    /// Where it stands.
    pub status: PartnerStatus,
    /// Its keys, oldest first.
    pub keys: Vec<PartnerKey>,
    /// When it was registered.
    pub created_at: u64,
}

impl Partner {
    /// Its live key of `version`.
    pub fn live_key(&self, version: u32) -> Option<&PartnerKey> {
        self.keys.iter().find(|k| k.version == version && k.revoked_at == 0)
    }
}

/// A quote: a rate held for a while, for an amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The partner it was made for (0: an operator's).
    pub partner_id: u64,
    /// The rate, as in force when it was made, in the quote's direction.
    pub rate: Directed,
    /// Minor units sold.
    pub sell_amount: Amount,
    /// Minor units bought.
    pub buy_amount: Amount,
    /// When it was made.
    pub created_at: u64,
    /// Until when it holds (a payment that names it later is refused).
    pub expires_at: u64,
}

impl Quote {
    /// The currency sold.
    pub fn sell(&self) -> Currency {
        self.rate.sell()
    }

    /// The currency bought.
    pub fn buy(&self) -> Currency {
        self.rate.buy()
    }
}

/// Where a partner's payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartnerPaymentStatus {
    /// Paid (refunds may follow).
    Succeeded,
    /// Canceled by the partner the same day: all the money went back.
    Canceled,
}

impl PartnerPaymentStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PartnerPaymentStatus::Succeeded => "succeeded",
            PartnerPaymentStatus::Canceled => "canceled",
        }
    }
}

/// A payment a partner made at a Kasa store for one of its users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerPayment {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose.
    pub partner_id: u64,
    /// The partner's `paymentRequestId`, unique per partner.
    pub request_id: RequestId,
    /// The partner's reference of its user.
    pub customer_id: CustomerId,
    /// The merchant paid.
    pub merchant_id: u64,
    /// The store paid at.
    pub store_id: u64,
    /// The merchant's payment (channel `partner`).
    pub merchant_payment_id: u64,
    /// How much, in won.
    pub amount: Amount,
    /// The partner's settlement currency.
    pub settlement_currency: Currency,
    /// What the partner owes for it, in the settlement currency (before its fee).
    pub settlement_amount: Amount,
    /// Kasa's fee to the partner, in the settlement currency.
    pub fee: Amount,
    /// The rate the won were bought at (settlement currency sold); `None` if the partner
    /// settles in won.
    pub rate: Option<Directed>,
    /// The quote used (0: the rate in force).
    pub quote_id: u64,
    /// Where it stands.
    pub status: PartnerPaymentStatus,
    /// Won refunded so far (a cancel refunds all).
    pub refunded: Amount,
    /// Of the settlement amount, what went back with the refunds.
    pub settlement_refunded: Amount,
    /// Of the fee, what the refunds took back.
    pub fee_returned: Amount,
    /// How many refunds.
    pub refunds: u16,
    /// When it was paid.
    pub created_at: u64,
    /// When it was canceled (0: it was not).
    pub canceled_at: u64,
    /// The settlement window it belongs to.
    pub window_id: u64,
}

/// A refund (or the cancel) of a partner's payment, in won and at the payment's rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerRefund {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose.
    pub partner_id: u64,
    /// The partner's `refundRequestId` (a cancel's is the payment's `paymentRequestId`).
    pub request_id: RequestId,
    /// The partner payment refunded.
    pub payment_id: u64,
    /// The merchant's refund.
    pub merchant_refund_id: u64,
    /// How much, in won.
    pub amount: Amount,
    /// What goes back to the partner, in the settlement currency.
    pub settlement_amount: Amount,
    /// The part of the partner's fee it takes back.
    pub fee_returned: Amount,
    /// Whether it is the payment's cancel.
    pub cancel: bool,
    /// When.
    pub created_at: u64,
    /// The settlement window it belongs to.
    pub window_id: u64,
}

/// A partner's payment, as its request says (the HTTP layer checked the signature and read
/// the store from the scanned code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayRequest {
    /// The partner (from the signed request's client id).
    pub partner_id: u64,
    /// `paymentRequestId`.
    pub request_id: RequestId,
    /// `customerId`.
    pub customer_id: CustomerId,
    /// The store whose code was scanned.
    pub store_id: u64,
    /// The merchant's name as the code shows it (field 59): it must be the store's merchant's.
    pub merchant_name: Option<DisplayName>,
    /// How much, in won.
    pub amount: Amount,
    /// `order.orderDescription` (`None`: the store's name).
    pub item_name: Option<ItemName>,
    /// The quote to use (`paymentQuote.quoteId`), if any.
    pub quote_id: Option<u64>,
}

/// A user's payment abroad, as the HTTP layer read it from the scanned code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayOverseasRequest {
    /// The partner that accepts the code's scheme.
    pub partner_id: u64,
    /// The code's scheme, as its bit in [`Schemes`].
    pub scheme_bit: u16,
    /// The code as scanned.
    pub code: super::outbound::CodeText,
    /// The merchant's name (field 59).
    pub merchant_name: super::outbound::ForeignText,
    /// Its city (field 60).
    pub merchant_city: Option<super::outbound::ForeignText>,
    /// The merchant's currency (field 53).
    pub currency: Currency,
    /// How much, in its minor units (the quote's amount bought).
    pub amount: Amount,
    /// The quote the user saw.
    pub quote_id: u64,
}

/// A partner's refund of a Kasa user's payment abroad.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverseasRefundRequest {
    /// The partner (from the signed request).
    pub partner_id: u64,
    /// Its `refundRequestId`.
    pub refund_request_id: RequestId,
    /// The overseas payment (Kasa's `paymentRequestId` `kasa-op-{id}`).
    pub payment_id: u64,
    /// The currency of the amount: the payment's.
    pub currency: Currency,
    /// In the merchant's currency.
    pub amount: Amount,
}

/// What operators, partners and the settlement cycle ask of the partner domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Registers a partner.
    CreatePartner {
        /// Its unique name.
        name: PartnerName,
        /// Its users' currency.
        home_currency: Currency,
        /// The currency it settles in.
        settlement_currency: Currency,
        /// Kasa's fee to it, in basis points.
        fee_bps: u16,
        /// Its bank account for settlements.
        settlement: Box<SettlementAccount>,
        /// Where Kasa calls it.
        endpoint: Option<WebhookUrl>,
        /// The QR schemes it accepts abroad.
        accepts: Schemes,
        /// How Kasa resolves a call that got no answer.
        policy: CallPolicy,
    },
    /// Suspends or reactivates a partner.
    SetPartnerStatus {
        /// Which.
        partner_id: u64,
        /// The new status.
        status: PartnerStatus,
    },
    /// Registers a partner's public key (the next version).
    AddKey {
        /// Whose.
        partner_id: u64,
        /// The Ed25519 public key.
        public_key: [u8; 32],
    },
    /// Revokes a partner's key at once.
    RevokeKey {
        /// Whose.
        partner_id: u64,
        /// Which version.
        version: u32,
    },
    /// Loads FX rates (each replaces one of the same pair and time).
    LoadRates {
        /// The rates.
        rates: BoundedVec<Rate, RATES_PER_COMMAND_MAX>,
    },
    /// Makes a quote from the rate in force.
    CreateQuote {
        /// For a partner (0: an operator's, usable by none).
        partner_id: u64,
        /// The currency sold.
        sell: Currency,
        /// The currency bought.
        buy: Currency,
        /// The amount fixed.
        side: Side,
        /// How long it holds.
        expires_in_seconds: u32,
    },
    /// A partner pays a store for its user (a flow with the merchant domain).
    Pay(Box<PayRequest>),
    /// A partner cancels a payment of its own, in full, while its settlement window is open.
    CancelPayment {
        /// Whose.
        partner_id: u64,
        /// The payment's `paymentRequestId`.
        request_id: RequestId,
    },
    /// A partner refunds part or all of a payment, at its rate.
    Refund {
        /// Whose.
        partner_id: u64,
        /// `refundRequestId`, unique per partner: a repeat gives the first refund.
        refund_request_id: RequestId,
        /// The payment's `paymentRequestId`.
        request_id: RequestId,
        /// How much, in won.
        amount: Amount,
    },
    /// Closes a settlement window now (an operator's; windows also close at the daily cutoff).
    CloseWindow {
        /// Which.
        window_id: u64,
    },
    /// The bank's answer for a closed window's settlement.
    SettleWindow {
        /// Which.
        window_id: u64,
        /// Whether the money moved.
        succeeded: bool,
    },
    /// A user pays at a partner's merchant abroad (a flow with the wallet domain).
    PayOverseas {
        /// The hash of the user's session token.
        token_hash: [u8; 32],
        /// What was scanned and quoted.
        request: Box<PayOverseasRequest>,
        /// The PIN's verdict, if the user sent one.
        pin_ok: Option<bool>,
    },
    /// A step of an overseas payment's call to its partner, recorded by the consumer that
    /// drives it; an answer, a found inquiry or a confirmed cancel ends it.
    ResolveOverseas {
        /// Which.
        payment_id: u64,
        /// What happened.
        step: super::outbound::Step,
    },
    /// A partner refunds a user's payment abroad.
    RefundOverseas(Box<OverseasRefundRequest>),
    /// The notification consumer's positions (see `notify.rs`).
    RecordNotified {
        /// Per partner, the last event notified.
        progress: BoundedVec<super::notify::NotifyProgress, { super::notify::NOTIFY_PROGRESS_MAX }>,
    },
}

impl Command {
    /// Whether the state applies it as a flow with the merchant domain.
    pub fn is_flow(&self) -> bool {
        matches!(
            self,
            Command::Pay(_) | Command::CancelPayment { .. } | Command::Refund { .. } | Command::PayOverseas { .. }
        )
    }

    /// The most event timestamps it uses.
    pub fn events_max(&self) -> usize {
        match self {
            // The merchant's pending transfer, post and fee; the conversion's pair; the
            // partner's fee.
            Command::Pay(_) => 6,
            // The merchant's refund and fee back (2); the conversion back (2) and the fee
            // return (1).
            Command::CancelPayment { .. } | Command::Refund { .. } => 5,
            // A linked pair each.
            Command::PayOverseas { .. } | Command::ResolveOverseas { .. } | Command::RefundOverseas(_) => 2,
            _ => 1,
        }
    }
}

/// Why a partner command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartnerError {
    /// No such partner.
    UnknownPartner,
    /// A partner has that name.
    NameTaken,
    /// A fee over [`PARTNER_FEE_BPS_MAX`].
    InvalidFee,
    /// [`PARTNERS_MAX`] partners exist.
    TooManyPartners,
    /// The partner holds [`KEYS_PER_PARTNER_MAX`] keys.
    TooManyKeys,
    /// The key is registered already (to this or another partner).
    KeyExists,
    /// No live key of that version.
    UnknownKey,
    /// A call policy out of its bounds, or Kasa's own scheme among those accepted.
    InvalidSetup,
}

/// Why an FX command was refused, by the stable code of [`FxError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FxRefusal {
    /// No rate for the pair is in force.
    NoRate,
    /// A currency against itself.
    SameCurrency,
    /// Zero to sell or to buy.
    ZeroAmount,
    /// The other side comes to less than one minor unit.
    AmountTooSmall,
    /// An amount over the maximum.
    AmountTooLarge,
    /// The rate table is full.
    TooManyRates,
    /// Too many quotes are kept.
    TooManyQuotes,
    /// A quote's time out of bounds.
    InvalidExpiry,
    /// No such partner.
    UnknownPartner,
}

impl FxRefusal {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            FxRefusal::NoRate => "no_rate",
            FxRefusal::SameCurrency => "same_currency",
            FxRefusal::ZeroAmount => "zero_amount",
            FxRefusal::AmountTooSmall => "amount_too_small",
            FxRefusal::AmountTooLarge => "amount_too_large",
            FxRefusal::TooManyRates => "too_many_rates",
            FxRefusal::TooManyQuotes => "too_many_quotes",
            FxRefusal::InvalidExpiry => "invalid_expiry",
            FxRefusal::UnknownPartner => "unknown_partner",
        }
    }
}

impl From<FxError> for FxRefusal {
    fn from(e: FxError) -> FxRefusal {
        match e {
            FxError::NoRate { .. } => FxRefusal::NoRate,
            FxError::SameCurrency { .. } => FxRefusal::SameCurrency,
            FxError::ZeroAmount => FxRefusal::ZeroAmount,
            FxError::AmountTooSmall { .. } => FxRefusal::AmountTooSmall,
            FxError::TooManyRates => FxRefusal::TooManyRates,
            // The rest are refused where text enters, before a command exists.
            _ => FxRefusal::AmountTooLarge,
        }
    }
}

/// Why a partner's payment, cancel or refund was refused. Each is Alipay+'s result `F`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayError {
    /// The partner is unknown.
    UnknownPartner,
    /// The partner is suspended.
    PartnerSuspended,
    /// The merchant's side: the store, the merchant's status, the amount.
    Merchant(crate::merchant::PaymentError),
    /// The code names a merchant other than the one it pays.
    MerchantMismatch,
    /// The `paymentRequestId` was used for a different payment.
    RequestIdReused,
    /// No such payment of the partner's.
    UnknownPayment,
    /// No such quote for the partner.
    UnknownQuote,
    /// The quote expired.
    QuoteExpired,
    /// The quote is for other currencies.
    QuoteMismatch,
    /// The conversion was refused.
    Fx(FxRefusal),
    /// The payment was canceled.
    PaymentCanceled,
    /// The payment's settlement window closed: refund it instead.
    CancelWindowClosed,
    /// A cancel after a refund: refund the rest instead.
    AlreadyRefunded,
    /// More than is left to refund.
    AmountTooLarge {
        /// What is left.
        max: Amount,
    },
    /// Zero.
    InvalidAmount,
    /// The payment is older than [`REFUND_SECONDS_MAX`].
    RefundPeriodOver,
    /// [`REFUNDS_PER_PAYMENT_MAX`] refunds already.
    TooManyRefunds,
    /// The `refundRequestId` was used for a different refund.
    RefundIdReused,
}

/// A payment and whether the request was a repeat (nothing applied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paid {
    /// The payment.
    pub payment: PartnerPayment,
    /// A repeat of the same `paymentRequestId`: the first answer.
    pub replayed: bool,
}

/// A refund with its payment, and whether the request was a repeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refunded {
    /// The refund.
    pub refund: PartnerRefund,
    /// Its payment after it.
    pub payment: PartnerPayment,
    /// A repeat of the same `refundRequestId`: the first answer.
    pub replayed: bool,
}

/// What applying a partner command gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Of [`Command::CreatePartner`].
    PartnerCreated(Result<Partner, PartnerError>),
    /// Of [`Command::SetPartnerStatus`].
    PartnerChanged(Result<Partner, PartnerError>),
    /// Of [`Command::AddKey`].
    KeyAdded(Result<PartnerKey, PartnerError>),
    /// Of [`Command::RevokeKey`].
    KeyRevoked(Result<PartnerKey, PartnerError>),
    /// Of [`Command::LoadRates`]: how many rates were new (the rest replaced one).
    RatesLoaded(Result<u32, FxRefusal>),
    /// Of [`Command::CreateQuote`].
    QuoteCreated(Result<Quote, FxRefusal>),
    /// Of [`Command::Pay`].
    Paid(Result<Paid, PayError>),
    /// Of [`Command::CancelPayment`].
    Canceled(Result<Refunded, PayError>),
    /// Of [`Command::Refund`].
    Refunded(Result<Refunded, PayError>),
    /// Of [`Command::CloseWindow`].
    WindowClosed(Result<Window, WindowError>),
    /// Of [`Command::SettleWindow`].
    WindowSettled(Result<Window, WindowError>),
    /// Of [`Command::PayOverseas`].
    OverseasPaid(Result<super::outbound::OverseasPayment, super::outbound::OverseasError>),
    /// Of [`Command::ResolveOverseas`].
    OverseasResolved(Result<super::outbound::OverseasPayment, super::outbound::OverseasError>),
    /// Of [`Command::RefundOverseas`].
    OverseasRefunded(Result<super::outbound::OverseasRefunded, super::outbound::OverseasError>),
    /// Of [`Command::RecordNotified`]: how many partners' positions moved.
    NotifiedRecorded(u32),
}

/// What happened in the partner domain, for the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A partner paid a store.
    PaymentSucceeded {
        /// Whose.
        partner_id: u64,
        /// The partner payment.
        payment_id: u64,
    },
    /// A partner canceled a payment.
    PaymentCanceled {
        /// Whose.
        partner_id: u64,
        /// The partner payment.
        payment_id: u64,
    },
    /// A partner refunded a payment.
    RefundSucceeded {
        /// Whose.
        partner_id: u64,
        /// The partner refund.
        refund_id: u64,
    },
    /// A settlement window closed; its settlement waits for the bank.
    WindowClosed {
        /// Whose.
        partner_id: u64,
        /// The window.
        window_id: u64,
    },
    /// A window's settlement moved (or failed to).
    WindowSettled {
        /// Whose.
        partner_id: u64,
        /// The window.
        window_id: u64,
        /// Whether the money moved.
        succeeded: bool,
    },
    /// Rates were loaded.
    RatesLoaded {
        /// How many.
        count: u32,
    },
    /// A user paid abroad; the partner is to be called.
    OverseasCreated {
        /// The partner.
        partner_id: u64,
        /// The overseas payment.
        payment_id: u64,
    },
    /// The partner paid its merchant.
    OverseasSucceeded {
        /// The partner.
        partner_id: u64,
        /// The overseas payment.
        payment_id: u64,
    },
    /// The payment failed or was canceled; the money went back.
    OverseasFailed {
        /// The partner.
        partner_id: u64,
        /// The overseas payment.
        payment_id: u64,
    },
    /// A partner refunded a payment abroad.
    OverseasRefunded {
        /// The partner.
        partner_id: u64,
        /// The refund.
        refund_id: u64,
    },
}

impl Event {
    /// The stable name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::PaymentSucceeded { .. } => "partner_payment.succeeded",
            Event::PaymentCanceled { .. } => "partner_payment.canceled",
            Event::RefundSucceeded { .. } => "partner_refund.succeeded",
            Event::WindowClosed { .. } => "settlement_window.closed",
            Event::WindowSettled { succeeded: true, .. } => "settlement_window.settled",
            Event::WindowSettled { succeeded: false, .. } => "settlement_window.failed",
            Event::RatesLoaded { .. } => "fx.rates_loaded",
            Event::OverseasCreated { .. } => "overseas_payment.created",
            Event::OverseasSucceeded { .. } => "overseas_payment.succeeded",
            Event::OverseasFailed { .. } => "overseas_payment.failed",
            Event::OverseasRefunded { .. } => "overseas_refund.succeeded",
        }
    }
}
