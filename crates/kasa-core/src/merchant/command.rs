//! The merchant domain's commands, outcomes and events, and the bounded types they carry.
//!
//! As in the wallet: every field is bounded by its type, built by the HTTP layer before a
//! command exists; outcomes carry what a response shows; variants and fields are only ever
//! appended.

use super::brn::Brn;
use super::payment::{CancelReason, KeyCommand, KeyOutcome, KeyRefusal};
use crate::text::{label, text_rule};
use crate::wallet::{BankCode, Name, SealedAccountNumber};
use serde::{Deserialize, Serialize};

text_rule!(
    /// A merchant's registered business name: 1 to 100 characters, no control characters.
    BusinessName, BusinessNameRule, 400, "a business name", true,
    |v| label(v, 100, "a business name")
);

text_rule!(
    /// What users see, on the approval page and in their transactions: 1 to 50 characters.
    DisplayName, DisplayNameRule, 200, "a display name", true,
    |v| label(v, 50, "a display name")
);

text_rule!(
    /// The visible start of an API key (`kasa_sk_` and 8 more characters), to tell keys apart.
    KeyPrefix, KeyPrefixRule, 16, "a key prefix", true,
    |v| {
        let tail = v.strip_prefix("kasa_sk_").ok_or("a key prefix starts with kasa_sk_")?;
        if tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(())
        } else {
            Err("a key prefix is kasa_sk_ and 8 letters or digits".into())
        }
    }
);

/// The highest fee an operator may set for a merchant: 10% (Korean online payment fees are
/// 2 to 4%).
pub const FEE_BPS_MAX: u16 = 1_000;
/// The most stores a merchant may have.
pub const STORES_PER_MERCHANT_MAX: usize = 10_000;
/// The most API keys a merchant may have that are not revoked.
pub const LIVE_KEYS_PER_MERCHANT_MAX: usize = 20;

/// A merchant category code (ISO 18245): four digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Mcc(u16);

impl Mcc {
    /// Parses four digits (`"5812"`, restaurants).
    pub fn parse(value: &str) -> Result<Mcc, String> {
        if value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Mcc(value.parse().expect("four digits")))
        } else {
            Err("an MCC is four digits".into())
        }
    }

    /// The four digits.
    pub fn digits(self) -> String {
        format!("{:04}", self.0)
    }
}

impl TryFrom<u16> for Mcc {
    type Error = String;
    fn try_from(value: u16) -> Result<Mcc, String> {
        if value <= 9999 {
            Ok(Mcc(value))
        } else {
            Err(format!("an MCC is four digits, not {value}"))
        }
    }
}

impl From<Mcc> for u16 {
    fn from(mcc: Mcc) -> u16 {
        mcc.0
    }
}

/// What an API key may do, as a set of named scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope, by name, in display order.
    pub const NAMES: [(&'static str, Scopes); 5] = [
        ("payments:read", Scopes(1)),
        ("payments:write", Scopes(2)),
        ("refunds:write", Scopes(4)),
        ("webhooks:manage", Scopes(8)),
        ("payouts:read", Scopes(16)),
    ];
    const ALL: u8 = 31;

    /// The scope named `name`.
    pub fn named(name: &str) -> Option<Scopes> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|&(_, s)| s)
    }

    /// The union of two sets.
    pub fn with(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    /// Whether every scope of `needed` is in this set.
    pub fn contains(self, needed: Scopes) -> bool {
        self.0 & needed.0 == needed.0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names of the scopes in this set.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES.iter().filter(|(_, s)| self.contains(*s)).map(|&(n, _)| n).collect()
    }
}

impl TryFrom<u8> for Scopes {
    type Error = String;
    fn try_from(value: u8) -> Result<Scopes, String> {
        if value & !Self::ALL == 0 {
            Ok(Scopes(value))
        } else {
            Err(format!("scopes {value:#x} name an unknown scope"))
        }
    }
}

impl From<Scopes> for u8 {
    fn from(scopes: Scopes) -> u8 {
        scopes.0
    }
}

/// Where a merchant's payouts go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementAccount {
    /// The bank.
    pub bank_code: BankCode,
    /// The account number, sealed by the HTTP layer.
    pub account_number: SealedAccountNumber,
    /// The name on the account.
    pub holder_name: Name,
}

/// Where a merchant stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MerchantStatus {
    /// Takes payments.
    Active,
    /// Takes no new payments for now; refunds and payouts go on.
    Suspended,
    /// For good: no new payments, keys or stores; refunds and payouts go on.
    Closed,
}

impl MerchantStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            MerchantStatus::Active => "active",
            MerchantStatus::Suspended => "suspended",
            MerchantStatus::Closed => "closed",
        }
    }
}

/// A merchant, as the state keeps it and a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The registered business name.
    pub business_name: BusinessName,
    /// What users see.
    pub display_name: DisplayName,
    /// The business registration number; one merchant per number.
    pub brn: Brn,
    /// The merchant category code.
    pub mcc: Mcc,
    /// Kasa's fee on each captured payment, in basis points.
    pub fee_bps: u16,
    /// Where payouts go (`None` for a merchant a partner's import created: the payout run
    /// passes it by and its money stays owed until it has one).
    pub settlement: Option<SettlementAccount>,
    /// Where it stands.
    pub status: MerchantStatus,
    /// When it was onboarded.
    pub created_at: u64,
    /// When its status last changed (its creation, at first).
    pub status_changed_at: u64,
    /// Its ids in partner networks (one per partner), from imports.
    pub acceptance: crate::text::BoundedVec<Acceptance, { super::import::PARTNERS_PER_MERCHANT_MAX }>,
}

/// A merchant's id in a partner's network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acceptance {
    /// The partner.
    pub partner: super::import::PartnerName,
    /// The partner's id of the merchant.
    pub partner_merchant_id: super::import::PartnerId,
}

/// A store as a partner's network knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreAcceptance {
    /// The partner.
    pub partner: super::import::PartnerName,
    /// The partner's id of the store.
    pub partner_store_id: super::import::PartnerId,
    /// The store's QR payload in the partner's network.
    pub qr_payload: super::import::QrPayload,
    /// Where the store is.
    pub country: super::import::CountryCode,
    /// Its city.
    pub city: super::import::City,
}

/// A merchant's store (a shop, a branch, a web site).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose store.
    pub merchant_id: u64,
    /// Its name.
    pub name: DisplayName,
    /// When it was added.
    pub created_at: u64,
    /// Its id, QR payload and place in a partner's network, for a store an import added.
    pub partner: Option<Box<StoreAcceptance>>,
}

/// A merchant's API key, as the state keeps it: its hash, never the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Whose key.
    pub merchant_id: u64,
    /// What the merchant calls it.
    pub name: DisplayName,
    /// Its visible start.
    pub prefix: KeyPrefix,
    /// The keyed hash of the whole key.
    pub key_hash: [u8; 32],
    /// What it may do.
    pub scopes: Scopes,
    /// When it was issued.
    pub created_at: u64,
    /// When it was revoked (0: it was not).
    pub revoked_at: u64,
    /// When it was last used, to the minute (0: never).
    pub last_used_at: u64,
}

/// What operators (and, for keys, the HTTP layer) ask of the merchant domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Onboards a merchant.
    CreateMerchant {
        /// The registered business name.
        business_name: BusinessName,
        /// What users see.
        display_name: DisplayName,
        /// The business registration number.
        brn: Brn,
        /// The merchant category code.
        mcc: Mcc,
        /// Kasa's fee, at most [`FEE_BPS_MAX`].
        fee_bps: u16,
        /// Where payouts go (boxed: the largest field of any command).
        settlement: Box<SettlementAccount>,
    },
    /// Suspends, reactivates or closes a merchant.
    SetMerchantStatus {
        /// Which merchant.
        merchant_id: u64,
        /// Its new status.
        status: MerchantStatus,
    },
    /// Adds a store.
    CreateStore {
        /// Whose store.
        merchant_id: u64,
        /// Its name.
        name: DisplayName,
    },
    /// Issues an API key (the HTTP layer drew it and hashed it).
    CreateApiKey {
        /// Whose key.
        merchant_id: u64,
        /// What the merchant calls it.
        name: DisplayName,
        /// What it may do (not empty).
        scopes: Scopes,
        /// Its visible start.
        prefix: KeyPrefix,
        /// The keyed hash of the key.
        key_hash: [u8; 32],
    },
    /// Revokes an API key at once.
    RevokeApiKey {
        /// Whose key.
        merchant_id: u64,
        /// Which key.
        key_id: u64,
    },
    /// Records that keys were used (the HTTP layer records each key at most once a minute).
    KeysUsed {
        /// The keys, each with the minute it was used in (in nanoseconds).
        uses: crate::text::BoundedVec<(u64, u64), 64>,
    },
    /// A command of a merchant's API key, which is resolved and its scope checked in the same
    /// step (so a revoked key's command never applies).
    AsKey {
        /// The hash of the key.
        key_hash: [u8; 32],
        /// What the key asks.
        command: KeyCommand,
    },
    /// A wallet user approves or declines a payment that waits for approval, as the user of
    /// a session (resolved in the same step). It reaches into the wallet domain (the user's
    /// PIN, limits and wallet), so the state applies it as a flow of both domains (see
    /// `approval.rs`).
    AnswerPayment {
        /// The hash of the session token.
        token_hash: [u8; 32],
        /// Which payment.
        payment_id: u64,
        /// Approve (true) or decline.
        approve: bool,
        /// The HTTP layer's verdict on a PIN sent with the approval (`None`: no PIN sent).
        pin_ok: Option<bool>,
    },
    /// The webhook consumer's progress per endpoint (at most 64).
    RecordDeliveries {
        /// Each endpoint's position and health.
        progress: crate::text::BoundedVec<super::webhook::DeliveryProgress, 64>,
    },
    /// A bank's answer to a payout.
    SettlePayout {
        /// Which payout.
        payout_id: u64,
        /// What the bank said.
        result: crate::wallet::BankResult,
    },
    /// A wallet user pays at a store with a scanned QR code, as the user of a session: a flow
    /// of both domains, as an answer is (see `instore.rs`).
    PayByQr {
        /// The hash of the session token.
        token_hash: [u8; 32],
        /// What was scanned.
        scan: super::Scan,
        /// The HTTP layer's verdict on a PIN sent with the payment (`None`: no PIN sent).
        pin_ok: Option<bool>,
    },
    /// A merchant's key charges a payment code that a user showed: a flow of both domains.
    ChargeCode {
        /// The hash of the key.
        key_hash: [u8; 32],
        /// The charge (boxed: the order id and item name are long).
        charge: Box<super::CodeCharge>,
    },
    /// Starts an import of a partner's merchants, or finds the one with this key again.
    StartImport {
        /// The partner.
        partner: super::import::PartnerName,
        /// The HTTP layer's hash of the partner and the file.
        key: [u8; 32],
        /// Rows in the file.
        rows: u32,
    },
    /// Applies a chunk of an import's rows at the job's next row (see `import.rs`).
    ImportRows(Box<super::import::ImportChunk>),
}

impl Command {
    /// Whether the command reaches into the wallet domain too, so that the state applies it
    /// as a flow of both domains.
    pub fn is_flow(&self) -> bool {
        matches!(self, Command::AnswerPayment { .. } | Command::PayByQr { .. } | Command::ChargeCode { .. })
    }

    /// The most event timestamps the command uses.
    pub fn events_max(&self) -> usize {
        match self {
            // The pending transfer, its post and the fee linked with it.
            Command::AnswerPayment { .. } | Command::PayByQr { .. } | Command::ChargeCode { .. } => 3,
            Command::AsKey { command, .. } => command.events_max(),
            _ => 1,
        }
    }

    /// The most bytes the command encodes to: an import's chunk by its rows' bounds, every
    /// other command within [`crate::domain::SMALL_COMMAND_BYTES_MAX`].
    pub fn encoded_bytes_max(&self) -> usize {
        match self {
            Command::ImportRows(chunk) => super::import::chunk_bytes_max(chunk.entries.len()),
            _ => crate::domain::SMALL_COMMAND_BYTES_MAX,
        }
    }
}

/// Why a merchant could not be onboarded or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MerchantError {
    /// Another merchant has this business registration number.
    Exists {
        /// That merchant.
        merchant_id: u64,
    },
    /// The fee is above [`FEE_BPS_MAX`].
    FeeTooHigh,
    /// No such merchant.
    UnknownMerchant,
    /// The merchant is closed: nothing about it changes any more.
    Closed,
    /// No such key (or not this merchant's).
    UnknownKey,
    /// The merchant has [`STORES_PER_MERCHANT_MAX`] stores.
    TooManyStores,
    /// The merchant has [`LIVE_KEYS_PER_MERCHANT_MAX`] keys that are not revoked.
    TooManyKeys,
    /// A key needs at least one scope.
    NoScopes,
    /// A key with this hash exists (a replayed command: keys are random).
    KeyExists,
}

/// What applying a merchant command gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// `CreateMerchant`.
    MerchantCreated(Result<Merchant, MerchantError>),
    /// `SetMerchantStatus`.
    MerchantChanged(Result<Merchant, MerchantError>),
    /// `CreateStore`.
    StoreCreated(Result<Store, MerchantError>),
    /// `CreateApiKey`.
    ApiKeyCreated(Result<ApiKey, MerchantError>),
    /// `RevokeApiKey`.
    ApiKeyRevoked(Result<ApiKey, MerchantError>),
    /// `KeysUsed`: how many keys' last use moved.
    KeysUsed(u32),
    /// `AsKey`: the key's id (0 if no live key has the hash) and what its command gave.
    AsKey {
        /// The key.
        key_id: u64,
        /// The command's outcome, or why it was not applied.
        outcome: Result<KeyOutcome, KeyRefusal>,
    },
    /// `AnswerPayment`: the payment after the answer.
    PaymentAnswered(Result<super::approval::AnsweredPayment, super::approval::AnswerError>),
    /// `SettlePayout`: the payout after the answer (`None`: no such payout).
    PayoutSettled(Option<super::Payout>),
    /// `RecordDeliveries`: how many endpoints it moved.
    DeliveriesRecorded(u32),
    /// `PayByQr`: the payment, paid.
    QrPaid(Result<super::approval::AnsweredPayment, super::InStoreError>),
    /// `ChargeCode`: the key's id (0 if no live key has the hash) and the payment, paid.
    CodeCharged {
        /// The key.
        key_id: u64,
        /// The payment, or why not.
        outcome: Result<super::Payment, super::InStoreError>,
    },
    /// `StartImport`: the job (without its per-row codes).
    ImportStarted(Result<super::import::ImportJob, super::import::ImportError>),
    /// `ImportRows`: the job after the chunk and each row's result.
    RowsImported(Result<super::import::ChunkApplied, super::import::ImportError>),
}

/// What happened in the merchant domain, for the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A merchant was onboarded.
    MerchantCreated {
        /// The merchant.
        merchant_id: u64,
    },
    /// A merchant's status changed.
    MerchantStatusChanged {
        /// The merchant.
        merchant_id: u64,
        /// Its new status.
        status: MerchantStatus,
    },
    /// A store was added.
    StoreCreated {
        /// The merchant.
        merchant_id: u64,
        /// The store.
        store_id: u64,
    },
    /// An API key was issued.
    ApiKeyCreated {
        /// The merchant.
        merchant_id: u64,
        /// The key.
        key_id: u64,
    },
    /// An API key was revoked.
    ApiKeyRevoked {
        /// The merchant.
        merchant_id: u64,
        /// The key.
        key_id: u64,
    },
    /// A payment was created and waits for approval.
    PaymentCreated {
        /// The merchant.
        merchant_id: u64,
        /// The payment.
        payment_id: u64,
        /// How much.
        amount: crate::money::Amount,
    },
    /// A payment was canceled before any money moved.
    PaymentCanceled {
        /// The merchant.
        merchant_id: u64,
        /// The payment.
        payment_id: u64,
        /// Why.
        reason: CancelReason,
    },
    /// Nobody approved a payment in time.
    PaymentExpired {
        /// The merchant.
        merchant_id: u64,
        /// The payment.
        payment_id: u64,
    },
    /// A webhook endpoint was added, deleted or given a new secret.
    WebhookEndpointChanged {
        /// The merchant.
        merchant_id: u64,
        /// The endpoint.
        endpoint_id: u64,
    },
    /// A user approved a payment: the money is reserved for the merchant.
    PaymentApproved {
        /// The merchant.
        merchant_id: u64,
        /// The payment.
        payment_id: u64,
    },
    /// A payment was captured: the merchant is paid (less the fee).
    PaymentSucceeded {
        /// The merchant.
        merchant_id: u64,
        /// The payment.
        payment_id: u64,
        /// What was captured.
        amount: crate::money::Amount,
    },
    /// A refund went back to the user's wallet.
    RefundSucceeded {
        /// The merchant.
        merchant_id: u64,
        /// The payment.
        payment_id: u64,
        /// The refund.
        refund_id: u64,
    },
    /// An endpoint whose deliveries failed for 3 days was disabled.
    WebhookEndpointDisabled {
        /// The merchant.
        merchant_id: u64,
        /// The endpoint.
        endpoint_id: u64,
    },
    /// A payout was made and goes to the bank.
    PayoutStarted {
        /// The merchant.
        merchant_id: u64,
        /// The payout.
        payout_id: u64,
        /// How much.
        amount: crate::money::Amount,
    },
    /// The bank paid a payout.
    PayoutPaid {
        /// The merchant.
        merchant_id: u64,
        /// The payout.
        payout_id: u64,
        /// How much.
        amount: crate::money::Amount,
    },
    /// A payout failed; the money stays owed.
    PayoutFailed {
        /// The merchant.
        merchant_id: u64,
        /// The payout.
        payout_id: u64,
        /// How much.
        amount: crate::money::Amount,
    },
}

impl Event {
    /// The event's stable type name (`merchant.created`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::MerchantCreated { .. } => "merchant.created",
            Event::MerchantStatusChanged { .. } => "merchant.status_changed",
            Event::StoreCreated { .. } => "store.created",
            Event::ApiKeyCreated { .. } => "api_key.created",
            Event::ApiKeyRevoked { .. } => "api_key.revoked",
            Event::PaymentCreated { .. } => "payment.created",
            Event::PaymentCanceled { .. } => "payment.canceled",
            Event::PaymentExpired { .. } => "payment.expired",
            Event::WebhookEndpointChanged { .. } => "webhook_endpoint.updated",
            Event::PaymentApproved { .. } => "payment.approved",
            Event::PaymentSucceeded { .. } => "payment.succeeded",
            Event::RefundSucceeded { .. } => "refund.succeeded",
            Event::WebhookEndpointDisabled { .. } => "webhook_endpoint.disabled",
            Event::PayoutStarted { .. } => "payout.created",
            Event::PayoutPaid { .. } => "payout.paid",
            Event::PayoutFailed { .. } => "payout.failed",
        }
    }
}
