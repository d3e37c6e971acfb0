//! The JSON shape of every domain object, made from the core's views. A response is rendered
//! from a view whether the view came from a command's outcome (a create, or the stored
//! outcome replayed for a retry with the same `Idempotency-Key`) or from a read, so the two
//! always look alike. Money fields are decimal strings of minor units next to one `currency`;
//! times are RFC 3339 strings; ids are strings.

use crate::json::{amount, Dec128, Rfc3339};
use kasa_core::event::{Event, EventKind};
use kasa_core::money::Amount;
use kasa_core::wallet::{
    self, AdjustmentView, BankAccountView, Entry, FundingView, RemittanceView, RequestView, SplitBillView, UserView,
    WALLET_CURRENCY,
};
use serde::Serialize;
use utoipa::ToSchema;

/// A wallet user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOutput {
    id: String,
    object: &'static str,
    /// `active` or `pin_locked`.
    status: &'static str,
    /// The user's own number (other users see it masked).
    phone: String,
    name: String,
    /// `basic` or `verified`.
    tier: &'static str,
    /// Until when PIN use is locked, if it is.
    pin_locked_until: Option<Rfc3339>,
    /// What the user may move without the PIN in 24 hours.
    pin_free_amount: String,
    currency: &'static str,
    /// The wallet's account in Kasa's books.
    wallet_account_id: Dec128,
    created_at: Rfc3339,
}

impl From<&UserView> for UserOutput {
    fn from(u: &UserView) -> Self {
        UserOutput {
            id: u.id.to_string(),
            object: "user",
            status: if u.pin_locked() { "pin_locked" } else { "active" },
            phone: u.phone.as_str().to_string(),
            name: u.name.as_str().to_string(),
            tier: u.tier.name(),
            pin_locked_until: u.pin_locked().then_some(Rfc3339(u.pin_locked_until)),
            pin_free_amount: amount(u.pin_free_amount),
            currency: WALLET_CURRENCY.code(),
            wallet_account_id: Dec128(wallet::wallet_account_id(u.id)),
            created_at: Rfc3339(u.created_at),
        }
    }
}

/// A linked bank account; its number shows only its last four digits.
#[derive(Debug, Serialize, ToSchema)]
pub struct BankAccountOutput {
    id: String,
    object: &'static str,
    bank_code: String,
    /// `******6789`.
    account_number: String,
    holder_name: String,
    created_at: Rfc3339,
}

impl From<&BankAccountView> for BankAccountOutput {
    fn from(b: &BankAccountView) -> Self {
        BankAccountOutput {
            id: b.id.to_string(),
            object: "bank_account",
            bank_code: b.bank_code.as_str().to_string(),
            account_number: format!("******{}", b.last4.as_str()),
            holder_name: b.holder_name.as_str().to_string(),
            created_at: Rfc3339(b.created_at),
        }
    }
}

/// A top-up or a withdrawal.
#[derive(Debug, Serialize, ToSchema)]
pub struct FundingOutput {
    id: String,
    /// `top_up` or `withdrawal`.
    object: &'static str,
    /// `pending`, `succeeded`, `declined` or `expired`.
    status: &'static str,
    amount: String,
    /// Kasa's fee on top of the amount (withdrawals).
    fee: String,
    currency: &'static str,
    bank_account_id: String,
    /// The reservation's transfer in Kasa's books.
    transfer_id: Dec128,
    created_at: Rfc3339,
}

impl From<&FundingView> for FundingOutput {
    fn from(f: &FundingView) -> Self {
        FundingOutput {
            id: f.id.to_string(),
            object: f.kind.name(),
            status: f.status.name(),
            amount: amount(f.amount),
            fee: amount(f.fee),
            currency: WALLET_CURRENCY.code(),
            bank_account_id: f.bank_account_id.to_string(),
            transfer_id: Dec128(f.transfer_id),
            created_at: Rfc3339(f.created_at),
        }
    }
}

/// A transfer between users (or to a number without a wallet).
#[derive(Debug, Serialize, ToSchema)]
pub struct RemittanceOutput {
    id: String,
    object: &'static str,
    /// `completed`, `held`, `cancelled` or `returned`.
    status: &'static str,
    amount: String,
    currency: &'static str,
    memo: String,
    from_user_id: String,
    to_user_id: Option<String>,
    /// The number it is held for, masked.
    to_phone: Option<String>,
    /// Its transfer in Kasa's books.
    transfer_id: Dec128,
    created_at: Rfc3339,
}

impl From<&RemittanceView> for RemittanceOutput {
    fn from(r: &RemittanceView) -> Self {
        RemittanceOutput {
            id: r.id.to_string(),
            object: "transfer",
            status: r.status.name(),
            amount: amount(r.amount),
            currency: WALLET_CURRENCY.code(),
            memo: r.memo.as_str().to_string(),
            from_user_id: r.from_user.to_string(),
            to_user_id: r.to_user.map(|u| u.to_string()),
            to_phone: r.to_phone.as_ref().map(|p| p.masked()),
            transfer_id: Dec128(r.transfer_id),
            created_at: Rfc3339(r.created_at),
        }
    }
}

/// A money request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestOutput {
    id: String,
    object: &'static str,
    /// `pending`, `paid`, `declined` or `expired`.
    status: &'static str,
    amount: String,
    currency: &'static str,
    memo: String,
    requester_user_id: String,
    payer_user_id: String,
    /// The transfer that paid it.
    transfer_id: Option<String>,
    split_bill_id: Option<String>,
    created_at: Rfc3339,
    expires_at: Rfc3339,
}

impl From<&RequestView> for RequestOutput {
    fn from(r: &RequestView) -> Self {
        RequestOutput {
            id: r.id.to_string(),
            object: "money_request",
            status: r.status_name(),
            amount: amount(r.amount),
            currency: WALLET_CURRENCY.code(),
            memo: r.memo.as_str().to_string(),
            requester_user_id: r.requester.to_string(),
            payer_user_id: r.payer.to_string(),
            transfer_id: (r.remittance_id != 0).then(|| r.remittance_id.to_string()),
            split_bill_id: (r.split_bill_id != 0).then(|| r.split_bill_id.to_string()),
            created_at: Rfc3339(r.created_at),
            expires_at: Rfc3339(r.expires_at),
        }
    }
}

/// A split bill and the requests for its shares.
#[derive(Debug, Serialize, ToSchema)]
pub struct SplitBillOutput {
    id: String,
    object: &'static str,
    total: String,
    currency: &'static str,
    memo: String,
    /// How many shares are paid.
    paid: usize,
    /// The money requests for the shares.
    shares: Vec<RequestOutput>,
    created_at: Rfc3339,
}

impl From<&SplitBillView> for SplitBillOutput {
    fn from(b: &SplitBillView) -> Self {
        let shares: Vec<RequestOutput> = b.requests.as_slice().iter().map(RequestOutput::from).collect();
        SplitBillOutput {
            id: b.id.to_string(),
            object: "split_bill",
            total: amount(b.total),
            currency: WALLET_CURRENCY.code(),
            memo: b.memo.as_str().to_string(),
            paid: shares.iter().filter(|r| r.status == "paid").count(),
            shares,
            created_at: Rfc3339(b.created_at),
        }
    }
}

/// An operator's adjustment of a wallet.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdjustmentOutput {
    id: String,
    object: &'static str,
    user_id: String,
    /// `credit` (into the wallet) or `debit`.
    direction: &'static str,
    amount: String,
    currency: &'static str,
    reason: String,
    transfer_id: Dec128,
    created_at: Rfc3339,
}

impl From<&AdjustmentView> for AdjustmentOutput {
    fn from(a: &AdjustmentView) -> Self {
        AdjustmentOutput {
            id: a.id.to_string(),
            object: "adjustment",
            user_id: a.user_id.to_string(),
            direction: a.direction.name(),
            amount: amount(a.amount),
            currency: WALLET_CURRENCY.code(),
            reason: a.reason.as_str().to_string(),
            transfer_id: Dec128(a.transfer_id),
            created_at: Rfc3339(a.created_at),
        }
    }
}

/// One entry of a user's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryOutput {
    /// `top_up`, `withdrawal`, `sent`, `received`, `held`, `returned`, `adjustment`,
    /// `payment` or `refund`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The object's id (its `type` says which kind of object).
    id: String,
    amount: String,
    fee: String,
    currency: &'static str,
    /// `credit` (into the wallet) or `debit`.
    direction: &'static str,
    status: &'static str,
    counterparty_user_id: Option<String>,
    counterparty_phone: Option<String>,
    bank_account_id: Option<String>,
    /// For payments and refunds: the merchant, `mch_...`.
    counterparty_merchant_id: Option<String>,
    /// For payments and refunds: the merchant's display name.
    counterparty_name: Option<String>,
    /// For payments and refunds at a store: the store's name.
    store_name: Option<String>,
    memo: String,
    /// The wallet's balance right after the money moved (absent while it is pending).
    balance_after: Option<String>,
    created_at: Rfc3339,
}

impl From<Entry> for EntryOutput {
    fn from(e: Entry) -> Self {
        EntryOutput {
            kind: e.kind.name(),
            id: match e.kind {
                wallet::EntryKind::Payment => crate::ids::format("pay", e.object_id),
                wallet::EntryKind::Refund => crate::ids::format("rfd", e.object_id),
                wallet::EntryKind::OverseasPayment => crate::ids::format("op", e.object_id),
                wallet::EntryKind::OverseasRefund => crate::ids::format("orf", e.object_id),
                _ => e.object_id.to_string(),
            },
            amount: amount(e.amount),
            fee: amount(e.fee),
            currency: WALLET_CURRENCY.code(),
            direction: if e.credit { "credit" } else { "debit" },
            status: e.status,
            counterparty_user_id: e.counterparty_user.map(|u| u.to_string()),
            counterparty_phone: e.counterparty_phone,
            bank_account_id: e.bank_account_id.map(|b| b.to_string()),
            counterparty_merchant_id: e.counterparty_merchant.as_ref().map(|(id, _)| crate::ids::format("mch", *id)),
            counterparty_name: e.counterparty_merchant.map(|(_, name)| name),
            store_name: e.store_name,
            memo: e.memo,
            balance_after: e.balance_after.map(amount),
            created_at: Rfc3339(e.timestamp),
        }
    }
}

/// An event of the outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOutput {
    /// Its sequence number: pass the last one seen as `after`.
    seq: String,
    object: &'static str,
    /// `funding.settled`, `remittance.completed`, ...
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: Rfc3339,
    /// The ids and amounts of what happened (amounts in KRW).
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

fn ids(pairs: &[(&str, u64)]) -> serde_json::Map<String, serde_json::Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect()
}

fn with_amount(
    mut map: serde_json::Map<String, serde_json::Value>,
    a: Amount,
) -> serde_json::Map<String, serde_json::Value> {
    map.insert("amount".into(), amount(a).into());
    map.insert("currency".into(), WALLET_CURRENCY.code().into());
    map
}

impl From<&Event> for EventOutput {
    fn from(event: &Event) -> Self {
        use kasa_core::merchant::Event as M;
        use wallet::Event as W;
        let w = match &event.kind {
            EventKind::Wallet(w) => w,
            EventKind::Partner(p) => return EventOutput::of(event, partner_event_data(p)),
            EventKind::Merchant(m) => {
                let prefixed = |pairs: &[(&str, &str, u64)]| -> serde_json::Map<String, serde_json::Value> {
                    pairs.iter().map(|(k, p, v)| (k.to_string(), crate::ids::format(p, *v).into())).collect()
                };
                let data = match m {
                    M::MerchantCreated { merchant_id } => prefixed(&[("merchant_id", "mch", *merchant_id)]),
                    M::MerchantStatusChanged { merchant_id, status } => {
                        let mut m = prefixed(&[("merchant_id", "mch", *merchant_id)]);
                        m.insert("status".into(), status.name().into());
                        m
                    }
                    M::StoreCreated { merchant_id, store_id } => {
                        prefixed(&[("merchant_id", "mch", *merchant_id), ("store_id", "str", *store_id)])
                    }
                    M::ApiKeyCreated { merchant_id, key_id } | M::ApiKeyRevoked { merchant_id, key_id } => {
                        prefixed(&[("merchant_id", "mch", *merchant_id), ("api_key_id", "key", *key_id)])
                    }
                    M::PaymentCreated { merchant_id, payment_id, amount } => with_amount(
                        prefixed(&[("merchant_id", "mch", *merchant_id), ("payment_id", "pay", *payment_id)]),
                        *amount,
                    ),
                    M::PaymentCanceled { merchant_id, payment_id, reason } => {
                        let mut m =
                            prefixed(&[("merchant_id", "mch", *merchant_id), ("payment_id", "pay", *payment_id)]);
                        m.insert("cancel_reason".into(), reason.name().into());
                        m
                    }
                    M::PaymentExpired { merchant_id, payment_id } | M::PaymentApproved { merchant_id, payment_id } => {
                        prefixed(&[("merchant_id", "mch", *merchant_id), ("payment_id", "pay", *payment_id)])
                    }
                    M::PaymentSucceeded { merchant_id, payment_id, amount } => with_amount(
                        prefixed(&[("merchant_id", "mch", *merchant_id), ("payment_id", "pay", *payment_id)]),
                        *amount,
                    ),
                    M::PayoutStarted { merchant_id, payout_id, amount }
                    | M::PayoutPaid { merchant_id, payout_id, amount }
                    | M::PayoutFailed { merchant_id, payout_id, amount } => with_amount(
                        prefixed(&[("merchant_id", "mch", *merchant_id), ("payout_id", "po", *payout_id)]),
                        *amount,
                    ),
                    M::RefundSucceeded { merchant_id, payment_id, refund_id } => prefixed(&[
                        ("merchant_id", "mch", *merchant_id),
                        ("payment_id", "pay", *payment_id),
                        ("refund_id", "rfd", *refund_id),
                    ]),
                    M::WebhookEndpointChanged { merchant_id, endpoint_id }
                    | M::WebhookEndpointDisabled { merchant_id, endpoint_id } => {
                        prefixed(&[("merchant_id", "mch", *merchant_id), ("webhook_endpoint_id", "we", *endpoint_id)])
                    }
                };
                return EventOutput::of(event, data);
            }
        };
        let data = match w {
            W::UserSignedUp { user_id } | W::PinReset { user_id } => ids(&[("user_id", *user_id)]),
            W::PinLocked { user_id, until } => {
                let mut m = ids(&[("user_id", *user_id)]);
                m.insert("until".into(), Rfc3339(*until).to_string().into());
                m
            }
            W::TierChanged { user_id, tier } => {
                let mut m = ids(&[("user_id", *user_id)]);
                m.insert("tier".into(), tier.name().into());
                m
            }
            W::BankAccountLinked { user_id, bank_account_id } => {
                ids(&[("user_id", *user_id), ("bank_account_id", *bank_account_id)])
            }
            W::FundingStarted { funding_id, user_id, kind, amount } => {
                let mut m = with_amount(ids(&[("funding_id", *funding_id), ("user_id", *user_id)]), *amount);
                m.insert("kind".into(), kind.name().into());
                m
            }
            W::FundingSettled { funding_id, user_id, status } => {
                let mut m = ids(&[("funding_id", *funding_id), ("user_id", *user_id)]);
                m.insert("status".into(), status.name().into());
                m
            }
            W::RemittanceCompleted { remittance_id, from_user, to_user, amount } => with_amount(
                ids(&[("transfer_id", *remittance_id), ("from_user_id", *from_user), ("to_user_id", *to_user)]),
                *amount,
            ),
            W::RemittanceHeld { remittance_id, from_user, amount } => {
                with_amount(ids(&[("transfer_id", *remittance_id), ("from_user_id", *from_user)]), *amount)
            }
            W::RemittanceClaimed { remittance_id, to_user } => {
                ids(&[("transfer_id", *remittance_id), ("to_user_id", *to_user)])
            }
            W::RemittanceCancelled { remittance_id } | W::RemittanceReturned { remittance_id } => {
                ids(&[("transfer_id", *remittance_id)])
            }
            W::MoneyRequested { request_id, requester, payer, amount } => with_amount(
                ids(&[("money_request_id", *request_id), ("requester_user_id", *requester), ("payer_user_id", *payer)]),
                *amount,
            ),
            W::RequestPaid { request_id, remittance_id } => {
                ids(&[("money_request_id", *request_id), ("transfer_id", *remittance_id)])
            }
            W::RequestDeclined { request_id } => ids(&[("money_request_id", *request_id)]),
            W::WalletAdjusted { adjustment_id, user_id, direction, amount } => {
                let mut m = with_amount(ids(&[("adjustment_id", *adjustment_id), ("user_id", *user_id)]), *amount);
                m.insert("direction".into(), direction.name().into());
                m
            }
        };
        EventOutput::of(event, data)
    }
}

/// The data of a partner domain's event: its ids, prefixed.
fn partner_event_data(e: &kasa_core::partner::Event) -> serde_json::Map<String, serde_json::Value> {
    use kasa_core::partner::Event as P;
    let prefixed = |pairs: &[(&str, &str, u64)]| -> serde_json::Map<String, serde_json::Value> {
        pairs.iter().map(|(k, p, v)| (k.to_string(), crate::ids::format(p, *v).into())).collect()
    };
    match e {
        P::PaymentSucceeded { partner_id, payment_id } | P::PaymentCanceled { partner_id, payment_id } => {
            prefixed(&[("partner_id", "ptn", *partner_id), ("partner_payment_id", "ppay", *payment_id)])
        }
        P::RefundSucceeded { partner_id, refund_id } => {
            prefixed(&[("partner_id", "ptn", *partner_id), ("partner_refund_id", "prfd", *refund_id)])
        }
        P::WindowClosed { partner_id, window_id } | P::WindowSettled { partner_id, window_id, .. } => {
            prefixed(&[("partner_id", "ptn", *partner_id), ("settlement_window_id", "sw", *window_id)])
        }
        P::RatesLoaded { count } => ids(&[("count", u64::from(*count))]),
        P::OverseasCreated { partner_id, payment_id }
        | P::OverseasSucceeded { partner_id, payment_id }
        | P::OverseasFailed { partner_id, payment_id } => {
            prefixed(&[("partner_id", "ptn", *partner_id), ("overseas_payment_id", "op", *payment_id)])
        }
        P::OverseasRefunded { partner_id, refund_id } => {
            prefixed(&[("partner_id", "ptn", *partner_id), ("overseas_refund_id", "orf", *refund_id)])
        }
    }
}

impl EventOutput {
    fn of(event: &Event, data: serde_json::Map<String, serde_json::Value>) -> EventOutput {
        EventOutput {
            seq: event.seq.to_string(),
            object: "event",
            kind: event.kind.name(),
            created_at: Rfc3339(event.timestamp),
            data: serde_json::Value::Object(data),
        }
    }
}
