//! Merchants take online payments with their API keys (`Authorization: Bearer kasa_sk_...`):
//! create a payment that waits for a wallet user's approval, read and list them, cancel one
//! nobody approved. Every command with a key resolves the key and checks its scope in the
//! same step as its effect, so a revoked key's request never takes effect; a merchant never
//! sees another merchant's payments (404).

use super::{parse_limit, query_pairs};
use crate::body::object;
use crate::ids;
use crate::json::{amount, check_currency, AmountInput, Page, Rfc3339};
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::idempotency::KeyScope;
use kasa_core::merchant::{
    CaptureMethod, Command, ItemName, KeyCommand, KeyOutcome, KeyRefusal, OrderId, Outcome, Payment, PaymentError,
    PaymentStatus, Refund, RefundReason, ReturnUrl, Scopes, APPROVAL_SECONDS_DEFAULT, APPROVAL_SECONDS_MAX,
    APPROVAL_SECONDS_MIN, PAYMENT_AMOUNT_MAX, REFUNDS_PER_PAYMENT_MAX,
};
use kasa_core::time::NANOS_PER_MINUTE;
use kasa_core::wallet::WALLET_CURRENCY;
use kasa_core::Inner;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The hash of the request's API key, if it carries one of the right shape.
pub(crate) fn api_key_hash(headers: &HeaderMap) -> Result<[u8; 32], Problem> {
    super::bearer_hash(headers, b"kasa_sk_")
        .ok_or_else(|| Problem::of("unauthorized", "send a merchant's API key as 'Authorization: Bearer kasa_sk_...'"))
}

/// Records that key `key_id` was used now, at most once a minute per key (the key's
/// `last_used_at` is to the minute), without holding the request up.
fn record_use(app: &AppState, key_id: u64) {
    if key_id == 0 {
        return;
    }
    let now = app.engine.now();
    let minute = now / NANOS_PER_MINUTE;
    {
        let mut uses = app.key_uses.lock().unwrap_or_else(|p| p.into_inner());
        if uses.get(&key_id).is_some_and(|&m| m >= minute) {
            return;
        }
        uses.insert(key_id, minute);
    }
    let app = app.clone();
    tokio::spawn(async move {
        let Ok(uses) = kasa_core::text::BoundedVec::new(vec![(key_id, now)]) else { return };
        // Best effort: a busy engine skips a minute of "last used", nothing else.
        let _ = app.engine.submit(kasa_core::Command::Merchant(Command::KeysUsed { uses })).await;
    });
}

pub(crate) fn refused(refusal: KeyRefusal) -> Problem {
    match refusal {
        KeyRefusal::UnknownKey => Problem::of("unauthorized", "the API key is unknown or revoked"),
        KeyRefusal::Scope { needed } => {
            Problem::of("insufficient_scope", format!("this key lacks the scope {}", needed.names().join(", ")))
        }
    }
}

pub(crate) fn payment_error(e: PaymentError) -> Problem {
    match e {
        PaymentError::OrderExists { payment_id } => Problem::of(
            "order_exists",
            format!("the order has payment {}; retry with the same Idempotency-Key", ids::format("pay", payment_id)),
        ),
        PaymentError::InvalidAmount => {
            Problem::invalid_field(format!("amount is 1 to {} won", PAYMENT_AMOUNT_MAX.minor()))
        }
        PaymentError::InvalidExpiry => {
            Problem::invalid_field(format!("expires_in is {APPROVAL_SECONDS_MIN} to {APPROVAL_SECONDS_MAX} seconds"))
        }
        PaymentError::UnknownStore => Problem::invalid_field("store_id names none of your stores"),
        PaymentError::UnknownPayment => Problem::not_found("no such payment"),
        PaymentError::MerchantNotActive { status } => {
            Problem::of("merchant_not_active", format!("the merchant is {}", status.name()))
        }
        PaymentError::WrongStatus { status } => {
            Problem::of("invalid_state", format!("the payment is {}", status.name()))
        }
        PaymentError::Expired => Problem::of("invalid_state", "the payment expired"),
        PaymentError::AmountTooLarge { max } => {
            Problem::of("amount_too_large", format!("the payment allows at most {} won here", max.minor()))
        }
        PaymentError::ReservedOrderId => Problem::invalid_field(format!(
            "order_id: ids starting with {} are Kasa's",
            kasa_core::merchant::KASA_ORDER_PREFIX
        )),
        PaymentError::WalletFull => Problem::of(
            "recipient_cannot_receive",
            "the user's wallet is at the legal maximum: refund later, or pay the user back another way",
        ),
        PaymentError::PartnerPayment => Problem::of(
            "refund_through_partner",
            "a partner's payment is refunded by the partner, which pays its user back",
        ),
        PaymentError::TooManyRefunds => {
            Problem::of("too_many_refunds", format!("a payment has at most {REFUNDS_PER_PAYMENT_MAX} refunds"))
        }
    }
}

/// Submits a key's command (keyed by the request's Idempotency-Key, scoped to the merchant).
pub(crate) async fn as_key(app: &AppState, key_hash: [u8; 32], command: KeyCommand) -> Result<KeyOutcome, Problem> {
    let inner = Inner::Merchant(Command::AsKey { key_hash, command });
    match app.submit(KeyScope::ApiKey(key_hash), inner).await? {
        kasa_core::InnerOutcome::Merchant(Outcome::AsKey { key_id, outcome }) => {
            record_use(app, key_id);
            outcome.map_err(refused)
        }
        other => Err(Problem::internal(format!("a key's command answered {other:?}"))),
    }
}

/// Reads as the merchant of a live key with `needed`: `read` gets the merchant's id.
pub(crate) async fn read_as_key<R: Send + 'static>(
    app: &AppState,
    key_hash: [u8; 32],
    needed: Scopes,
    read: impl FnOnce(&kasa_core::State, u64) -> R + Send + 'static,
) -> Result<R, Problem> {
    let answer = app
        .engine
        .read(move |s| {
            let Some((key, _)) = s.merchants().live_key(&key_hash) else { return Err(KeyRefusal::UnknownKey) };
            if !key.scopes.contains(needed) {
                return Err(KeyRefusal::Scope { needed });
            }
            Ok((key.id, read(s, key.merchant_id)))
        })
        .await?;
    let (key_id, value) = answer.map_err(refused)?;
    record_use(app, key_id);
    Ok(value)
}

/// A payment.
#[derive(Serialize, ToSchema)]
pub(crate) struct PaymentOutput {
    /// `pay_` and a number.
    id: String,
    object: &'static str,
    merchant_id: String,
    store_id: Option<String>,
    order_id: String,
    item_name: String,
    /// Won, a decimal string: what the user was asked for.
    amount: String,
    currency: &'static str,
    /// `automatic` (paid at approval) or `manual` (captured by the merchant).
    capture_method: &'static str,
    /// Where it was made: `online`, `static_qr` (a user scanned a store's code),
    /// `dynamic_qr` (a code made for one sale) or `payment_code` (a code the user showed).
    channel: &'static str,
    /// `requires_approval`, `requires_capture`, `succeeded` or `canceled`.
    status: &'static str,
    /// Why it was canceled: `merchant`, `expired`, `declined` or `capture_expired`.
    cancel_reason: Option<&'static str>,
    /// The hosted page where the user approves an online payment; give it only to the user who
    /// pays (its token is what lets them see and approve the payment). `null` for in-store
    /// payments, which are answered at the till.
    approval_url: Option<String>,
    return_url: Option<String>,
    /// What was captured, in won (0 until the capture).
    amount_captured: String,
    /// Kasa's fee on the capture.
    fee: String,
    /// What refunds gave back so far.
    amount_refunded: String,
    /// The part of the fee those refunds returned.
    fee_refunded: String,
    /// What the merchant nets: captured - refunded - (fee - fee refunded).
    net: String,
    created_at: Rfc3339,
    /// When an unapproved payment expires.
    expires_at: Rfc3339,
    /// When the user approved it.
    approved_at: Option<Rfc3339>,
    /// Until when an approved manual payment can be captured.
    capture_before: Option<Rfc3339>,
    status_changed_at: Rfc3339,
}

impl PaymentOutput {
    /// The payment as its merchant sees it; `keys` make the approval link's token.
    pub(crate) fn new(p: &Payment, keys: &crate::crypto::DataKeys) -> Self {
        let id = ids::format("pay", p.id);
        let net = p.captured.saturating_sub(p.refunded).saturating_sub(p.fee.saturating_sub(p.fee_refunded));
        PaymentOutput {
            approval_url: (p.channel == kasa_core::merchant::Channel::Online)
                .then(|| format!("/pay/{id}?token={}", keys.approval_token(p.id))),
            id,
            object: "payment",
            merchant_id: ids::format("mch", p.merchant_id),
            store_id: p.store_id.map(|s| ids::format("str", s)),
            order_id: p.order_id.as_str().to_string(),
            item_name: p.item_name.as_str().to_string(),
            amount: amount(p.amount),
            currency: WALLET_CURRENCY.code(),
            capture_method: p.capture_method.name(),
            channel: p.channel.name(),
            status: p.status.name(),
            cancel_reason: p.cancel_reason.map(|r| r.name()),
            return_url: p.return_url.as_ref().map(|u| u.as_str().to_string()),
            amount_captured: amount(p.captured),
            fee: amount(p.fee),
            amount_refunded: amount(p.refunded),
            fee_refunded: amount(p.fee_refunded),
            net: amount(net),
            created_at: Rfc3339(p.created_at),
            expires_at: Rfc3339(p.expires_at),
            approved_at: (p.approved_at != 0).then_some(Rfc3339(p.approved_at)),
            capture_before: (p.capture_before() != 0).then_some(Rfc3339(p.capture_before())),
            status_changed_at: Rfc3339(p.status_changed_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentInput {
    /// Won, a decimal string: 1 to 100,000,000.
    amount: AmountInput,
    /// `KRW`.
    currency: String,
    /// Your id of the order: 1 to 100 printable ASCII characters; one payment per order
    /// (ids starting with `kasa_` are Kasa's own).
    order_id: String,
    /// What the user buys, as they will see it: 1 to 100 characters. Needed online; at a
    /// store, the store's name by default.
    #[serde(default)]
    item_name: Option<String>,
    /// A one-time payment code the user showed at your till (20 digits): the payment is
    /// charged at once (`succeeded`), at `store_id`, or refused.
    #[serde(default)]
    payment_code: Option<String>,
    /// `automatic` (default: paid at approval) or `manual` (you capture within 7 days).
    #[serde(default)]
    capture_method: Option<String>,
    /// One of your stores, `str_...`.
    #[serde(default)]
    store_id: Option<String>,
    /// Seconds it waits for approval: 60 to 86,400, default 900.
    #[serde(default)]
    expires_in: Option<u32>,
    /// Where the approval page sends the user back: an https URL.
    #[serde(default)]
    return_url: Option<String>,
}

/// Creates a payment that waits for a wallet user's approval at `approval_url`; or, with a
/// `payment_code` the user showed at a store's till, charges it at once (`succeeded`, or
/// refused: `payment_code_invalid`, `payment_code_expired`, `payment_code_used`,
/// `insufficient_funds`, `limit_exceeded`, `pin_required`). Scope `payments:write`. A second
/// payment for the same `order_id` is `409 order_exists`, unless the request is a retry with
/// the same Idempotency-Key, which answers as the first did.
#[utoipa::path(post, path = "/v1/payments", tag = "payments", request_body = PaymentInput,
    responses((status = 201, description = "the payment", body = PaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:write"])))]
pub async fn create_payment(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let input: PaymentInput = object(&body)?;
    check_currency(Some(&input.currency), WALLET_CURRENCY)?;
    if let Some(payment_code) = input.payment_code {
        if input.capture_method.is_some() || input.expires_in.is_some() || input.return_url.is_some() {
            return Err(Problem::invalid_field(
                "a payment code is charged at once: capture_method, expires_in and return_url do not apply",
            ));
        }
        let code = super::instore::CodeInput {
            payment_code,
            amount: input.amount.0,
            order_id: input.order_id,
            store_id: input.store_id,
            item_name: input.item_name,
        };
        return super::instore::charge_payment_code(&app, &headers, code).await;
    }
    let order_id = super::instore::merchant_order_id(input.order_id)?;
    let item_name =
        input.item_name.ok_or_else(|| Problem::invalid_field("item_name is needed for an online payment"))?;
    let item_name = ItemName::new(item_name).map_err(|e| Problem::invalid_field(format!("item_name: {e}")))?;
    let capture_method = match input.capture_method.as_deref() {
        None | Some("automatic") => CaptureMethod::Automatic,
        Some("manual") => CaptureMethod::Manual,
        Some(_) => return Err(Problem::invalid_field("capture_method is 'automatic' or 'manual'")),
    };
    let store_id = match input.store_id.as_deref() {
        None => None,
        Some(raw) => {
            Some(ids::parse("str", raw, "").map_err(|_| Problem::invalid_field("store_id names none of your stores"))?)
        }
    };
    let return_url = input
        .return_url
        .map(ReturnUrl::new)
        .transpose()
        .map_err(|e| Problem::invalid_field(format!("return_url: {e}")))?;
    let command = KeyCommand::CreatePayment {
        store_id,
        order_id,
        item_name,
        amount: input.amount.0,
        capture_method,
        expires_in_seconds: input.expires_in.unwrap_or(APPROVAL_SECONDS_DEFAULT),
        return_url,
    };
    match as_key(&app, key_hash, command).await? {
        KeyOutcome::PaymentCreated(Ok(p)) => {
            Ok((StatusCode::CREATED, Json(PaymentOutput::new(&p, &app.keys))).into_response())
        }
        KeyOutcome::PaymentCreated(Err(e)) => Err(payment_error(e)),
        other => Err(Problem::internal(format!("a payment answered {other:?}"))),
    }
}

/// One of your payments. Scope `payments:read`.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments", params(("id" = String, Path, description = "the payment's id, pay_...")),
    responses((status = 200, description = "the payment", body = PaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:read"])))]
pub async fn get_payment(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let id = ids::parse("pay", &raw, "no such payment")?;
    let read = Scopes::named("payments:read").expect("a known scope");
    let payment = read_as_key(&app, key_hash, read, move |s, merchant_id| {
        s.merchants().payment(id).filter(|p| p.merchant_id == merchant_id).cloned()
    })
    .await?;
    payment
        .map(|p| Json(PaymentOutput::new(&p, &app.keys)).into_response())
        .ok_or_else(|| Problem::not_found("no such payment"))
}

/// Your payments, newest first: all, or the one of `order_id`, or those in `status`. Scope
/// `payments:read`.
#[utoipa::path(get, path = "/v1/payments", tag = "payments",
    params(("order_id" = Option<String>, Query, description = "only the payment of this order"), ("status" = Option<String>, Query, description = "only payments in this status"), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of payments", body = Page<PaymentOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:read"])))]
pub async fn list_payments(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let (mut limit, mut before, mut status, mut order_id) = (20usize, u64::MAX, None, None);
    for (key, value) in query_pairs(query.as_deref(), &["order_id", "status", "limit", "cursor"])? {
        match key {
            "limit" => limit = parse_limit(value, 100)?,
            "cursor" => before = ids::parse_cursor("pay", value)?,
            "status" => {
                status = Some(PaymentStatus::from_name(value).ok_or_else(|| {
                    Problem::invalid_parameter("status is requires_approval, requires_capture, succeeded or canceled")
                })?)
            }
            _ => {
                let decoded = super::percent_decode(value);
                order_id =
                    Some(OrderId::new(decoded).map_err(|e| Problem::invalid_parameter(format!("order_id: {e}")))?)
            }
        }
    }
    let read = Scopes::named("payments:read").expect("a known scope");
    let payments = read_as_key(&app, key_hash, read, move |s, merchant_id| {
        let m = s.merchants();
        match &order_id {
            Some(order) => m
                .payment_by_order(merchant_id, order)
                .filter(|p| p.id < before && status.is_none_or(|st| p.status == st))
                .cloned()
                .into_iter()
                .collect::<Vec<Payment>>(),
            None => m.payments_of(merchant_id, before, status, limit + 1).into_iter().cloned().collect(),
        }
    })
    .await?;
    let payments: Vec<PaymentOutput> = payments.iter().map(|p| PaymentOutput::new(p, &app.keys)).collect();
    Ok(Json(Page::from_lookahead(payments, limit, |p: &PaymentOutput| p.id.clone())).into_response())
}

/// Cancels a payment before its capture: one nobody approved yet, or an approved one whose
/// reserved money goes back to the user. Nothing was paid either way. Scope `payments:write`.
#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "payments", params(("id" = String, Path, description = "the payment's id, pay_...")),
    responses((status = 200, description = "the canceled payment", body = PaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:write"])))]
pub async fn cancel_payment(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let payment_id = ids::parse("pay", &raw, "no such payment")?;
    match as_key(&app, key_hash, KeyCommand::CancelPayment { payment_id }).await? {
        KeyOutcome::PaymentCanceled(Ok(p)) => Ok(Json(PaymentOutput::new(&p, &app.keys)).into_response()),
        KeyOutcome::PaymentCanceled(Err(e)) => Err(payment_error(e)),
        other => Err(Problem::internal(format!("a cancel answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaptureInput {
    /// Won, a decimal string: at most what was approved (default: all of it). The rest goes
    /// back to the user.
    #[serde(default)]
    amount: Option<AmountInput>,
}

/// Captures an approved payment (`requires_capture`), all of it or part: the merchant is paid
/// what is captured, less Kasa's fee, and the rest goes back to the user. Within 7 days of the
/// approval; after that the payment is `canceled` (`capture_expired`). Scope `payments:write`.
#[utoipa::path(post, path = "/v1/payments/{id}/capture", tag = "payments", request_body = CaptureInput,
    params(("id" = String, Path, description = "the payment's id, pay_...")),
    responses((status = 200, description = "the captured payment", body = PaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:write"])))]
pub async fn capture_payment(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let payment_id = ids::parse("pay", &raw, "no such payment")?;
    let input: CaptureInput = if body.is_empty() { CaptureInput { amount: None } } else { object(&body)? };
    let command = KeyCommand::CapturePayment { payment_id, amount: input.amount.map(|a| a.0) };
    match as_key(&app, key_hash, command).await? {
        KeyOutcome::PaymentCaptured(Ok(p)) => Ok(Json(PaymentOutput::new(&p, &app.keys)).into_response()),
        KeyOutcome::PaymentCaptured(Err(e)) => Err(payment_error(e)),
        other => Err(Problem::internal(format!("a capture answered {other:?}"))),
    }
}

/// A refund.
#[derive(Serialize, ToSchema)]
pub(crate) struct RefundOutput {
    /// `rfd_` and a number.
    id: String,
    object: &'static str,
    /// The payment it refunds.
    payment_id: String,
    /// Won, a decimal string.
    amount: String,
    currency: &'static str,
    /// The part of the payment's fee returned to the merchant.
    fee_returned: String,
    /// `succeeded`: a refund goes back to the wallet at once.
    status: &'static str,
    reason: String,
    created_at: Rfc3339,
}

impl From<&Refund> for RefundOutput {
    fn from(r: &Refund) -> Self {
        RefundOutput {
            id: ids::format("rfd", r.id),
            object: "refund",
            payment_id: ids::format("pay", r.payment_id),
            amount: amount(r.amount),
            currency: WALLET_CURRENCY.code(),
            fee_returned: amount(r.fee_returned),
            status: "succeeded",
            reason: r.reason.as_str().to_string(),
            created_at: Rfc3339(r.created_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundInput {
    /// Won, a decimal string: at most what is left to refund.
    amount: AmountInput,
    /// `KRW` (the default).
    #[serde(default)]
    currency: Option<String>,
    /// Why, 1 to 200 characters.
    reason: String,
}

/// Refunds part or all of a captured payment to the user's wallet, at once. Several partial
/// refunds may follow each other up to what was captured (at most 100); each gives back the
/// fee's share. Scope `refunds:write`.
#[utoipa::path(post, path = "/v1/payments/{id}/refunds", tag = "payments", request_body = RefundInput,
    params(("id" = String, Path, description = "the payment's id, pay_...")),
    responses((status = 201, description = "the refund", body = RefundOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["refunds:write"])))]
pub async fn create_refund(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let payment_id = ids::parse("pay", &raw, "no such payment")?;
    let input: RefundInput = object(&body)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    let reason = RefundReason::new(input.reason).map_err(|e| Problem::invalid_field(format!("reason: {e}")))?;
    let command = KeyCommand::RefundPayment { payment_id, amount: input.amount.0, reason };
    match as_key(&app, key_hash, command).await? {
        KeyOutcome::Refunded(Ok((r, _))) => Ok((StatusCode::CREATED, Json(RefundOutput::from(&r))).into_response()),
        KeyOutcome::Refunded(Err(e)) => Err(payment_error(e)),
        other => Err(Problem::internal(format!("a refund answered {other:?}"))),
    }
}

/// A payment's refunds, oldest first (at most 100, so one page). Scope `payments:read`.
#[utoipa::path(get, path = "/v1/payments/{id}/refunds", tag = "payments",
    params(("id" = String, Path, description = "the payment's id, pay_...")),
    responses((status = 200, description = "the payment's refunds", body = Page<RefundOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:read"])))]
pub async fn list_refunds(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let id = ids::parse("pay", &raw, "no such payment")?;
    let read = Scopes::named("payments:read").expect("a known scope");
    let refunds = read_as_key(&app, key_hash, read, move |s, merchant_id| {
        let m = s.merchants();
        m.payment(id)
            .filter(|p| p.merchant_id == merchant_id)
            .map(|_| m.refunds_of(id).map(RefundOutput::from).collect::<Vec<_>>())
    })
    .await?
    .ok_or_else(|| Problem::not_found("no such payment"))?;
    Ok(Json(Page::from_lookahead(refunds, REFUNDS_PER_PAYMENT_MAX as usize, |r: &RefundOutput| r.id.clone()))
        .into_response())
}
