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
    PaymentStatus, ReturnUrl, Scopes, APPROVAL_SECONDS_DEFAULT, APPROVAL_SECONDS_MAX, APPROVAL_SECONDS_MIN,
    PAYMENT_AMOUNT_MAX,
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

fn refused(refusal: KeyRefusal) -> Problem {
    match refusal {
        KeyRefusal::UnknownKey => Problem::of("unauthorized", "the API key is unknown or revoked"),
        KeyRefusal::Scope { needed } => {
            Problem::of("insufficient_scope", format!("this key lacks the scope {}", needed.names().join(", ")))
        }
    }
}

fn payment_error(e: PaymentError) -> Problem {
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
    /// Won, a decimal string.
    amount: String,
    currency: &'static str,
    /// `automatic` (paid at approval) or `manual` (captured by the merchant).
    capture_method: &'static str,
    /// `requires_approval`, `requires_capture`, `succeeded` or `canceled`.
    status: &'static str,
    /// Why it was canceled: `merchant`, `expired`, `declined` or `capture_expired`.
    cancel_reason: Option<&'static str>,
    /// The hosted page where the user approves it.
    approval_url: String,
    return_url: Option<String>,
    created_at: Rfc3339,
    /// When an unapproved payment expires.
    expires_at: Rfc3339,
    status_changed_at: Rfc3339,
}

impl From<&Payment> for PaymentOutput {
    fn from(p: &Payment) -> Self {
        let id = ids::format("pay", p.id);
        PaymentOutput {
            approval_url: format!("/pay/{id}"),
            id,
            object: "payment",
            merchant_id: ids::format("mch", p.merchant_id),
            store_id: p.store_id.map(|s| ids::format("str", s)),
            order_id: p.order_id.as_str().to_string(),
            item_name: p.item_name.as_str().to_string(),
            amount: amount(p.amount),
            currency: WALLET_CURRENCY.code(),
            capture_method: p.capture_method.name(),
            status: p.status.name(),
            cancel_reason: p.cancel_reason.map(|r| r.name()),
            return_url: p.return_url.as_ref().map(|u| u.as_str().to_string()),
            created_at: Rfc3339(p.created_at),
            expires_at: Rfc3339(p.expires_at),
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
    /// Your id of the order: 1 to 100 printable ASCII characters; one payment per order.
    order_id: String,
    /// What the user buys, as they will see it: 1 to 100 characters.
    item_name: String,
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

/// Creates a payment that waits for a wallet user's approval at `approval_url`. Scope
/// `payments:write`. A second payment for the same `order_id` is `409 order_exists`, unless
/// the request is a retry with the same Idempotency-Key, which answers as the first did.
#[utoipa::path(post, path = "/v1/payments", tag = "payments", request_body = PaymentInput,
    responses((status = 201, description = "the payment", body = PaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:write"])))]
pub async fn create_payment(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let input: PaymentInput = object(&body)?;
    check_currency(Some(&input.currency), WALLET_CURRENCY)?;
    let order_id = OrderId::new(input.order_id).map_err(|e| Problem::invalid_field(format!("order_id: {e}")))?;
    let item_name = ItemName::new(input.item_name).map_err(|e| Problem::invalid_field(format!("item_name: {e}")))?;
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
        KeyOutcome::PaymentCreated(Ok(p)) => Ok((StatusCode::CREATED, Json(PaymentOutput::from(&p))).into_response()),
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
        s.merchants().payment(id).filter(|p| p.merchant_id == merchant_id).map(PaymentOutput::from)
    })
    .await?;
    payment.map(|p| Json(p).into_response()).ok_or_else(|| Problem::not_found("no such payment"))
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
                .map(PaymentOutput::from)
                .into_iter()
                .collect(),
            None => {
                m.payments_of(merchant_id, before, status, limit + 1).into_iter().map(PaymentOutput::from).collect()
            }
        }
    })
    .await?;
    Ok(Json(Page::from_lookahead(payments, limit, |p: &PaymentOutput| p.id.clone())).into_response())
}

/// Cancels a payment nobody approved yet (nothing was paid). Scope `payments:write`.
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
        KeyOutcome::PaymentCanceled(Ok(p)) => Ok(Json(PaymentOutput::from(&p)).into_response()),
        KeyOutcome::PaymentCanceled(Err(e)) => Err(payment_error(e)),
        other => Err(Problem::internal(format!("a cancel answered {other:?}"))),
    }
}

/// A payment as the wallet user who may approve it sees it: whose, what, how much, until when.
#[derive(Serialize, ToSchema)]
pub(crate) struct MyPaymentOutput {
    /// `pay_` and a number.
    id: String,
    object: &'static str,
    /// The merchant's display name.
    merchant_name: String,
    /// The store's name, if the payment is for one.
    store_name: Option<String>,
    item_name: String,
    /// Won, a decimal string.
    amount: String,
    currency: &'static str,
    /// `requires_approval`.
    status: &'static str,
    /// Until when it can be approved.
    expires_at: Rfc3339,
}

/// A payment waiting for approval, as a logged-in wallet user sees it before approving it
/// (from the merchant's approval link or QR code). Payments that wait for nobody any more, or
/// never existed, are `404`.
#[utoipa::path(get, path = "/v1/me/payments/{id}", tag = "payments", params(("id" = String, Path, description = "the payment's id, pay_...")),
    responses((status = 200, description = "the payment", body = MyPaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get_my_payment(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    super::authenticate(&app, &headers).await?;
    let id = ids::parse("pay", &raw, "no such payment")?;
    let now = app.engine.now();
    let payment = app
        .engine
        .read(move |s| {
            let m = s.merchants();
            let p = m.payment(id).filter(|p| p.status == PaymentStatus::RequiresApproval && p.expires_at > now)?;
            let merchant = m.merchant(p.merchant_id)?;
            Some(MyPaymentOutput {
                id: ids::format("pay", p.id),
                object: "payment",
                merchant_name: merchant.display_name.as_str().to_string(),
                store_name: p.store_id.and_then(|id| m.store(id)).map(|st| st.name.as_str().to_string()),
                item_name: p.item_name.as_str().to_string(),
                amount: amount(p.amount),
                currency: WALLET_CURRENCY.code(),
                status: p.status.name(),
                expires_at: Rfc3339(p.expires_at),
            })
        })
        .await?;
    payment.map(|p| Json(p).into_response()).ok_or_else(|| Problem::not_found("no such payment"))
}
