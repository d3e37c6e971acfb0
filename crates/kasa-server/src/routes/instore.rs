//! In-store payments over HTTP: the QR codes a store shows and the payment codes a user
//! shows. Each payment is a payment object like an online one (same states, refunds, fees,
//! webhooks, payouts), made and paid in one command (`kasa_core::merchant::instore`).
//!
//! - `GET /v1/stores/{id}/qr` (and `.png`, `.svg`): a store's static code, derived from the
//!   store and its merchant (nothing is stored). `POST /v1/stores/{id}/qr`: a code for one
//!   sale, which is a payment of a fixed amount that waits for the user who scans it; its
//!   reference carries the payment's approval token, so it cannot be guessed.
//! - `POST /v1/me/qr-payments`: a logged-in user pays with a scanned code; a valid code of
//!   another scheme is `unsupported_scheme`, naming it.
//! - `POST /v1/me/payment-codes`: a user gets a one-time payment code (`crate::paycode`);
//!   the merchant charges it with `POST /v1/payments {payment_code, ...}`
//!   ([`charge_payment_code`]).

use super::approval::MyPaymentOutput;
use super::payments::{api_key_hash, as_key, payment_error, read_as_key, refused, PaymentOutput};
use super::{errors, session_pin_verdict};
use crate::body::object;
use crate::ids;
use crate::json::{amount, AmountInput, Rfc3339};
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::idempotency::KeyScope;
use kasa_core::merchant::{
    CodeCharge, Command, DisplayName, InStoreError, ItemName, KeyCommand, KeyOutcome, OrderId, Outcome, PaymentError,
    Scan, Scopes, APPROVAL_SECONDS_MAX, APPROVAL_SECONDS_MIN, KASA_ORDER_PREFIX,
};
use kasa_core::qr::kasa::{self as kasa_qr, Sale, StoreCode};
use kasa_core::wallet::{CodeError, WALLET_CURRENCY};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a one-sale code may be scanned, unless the merchant says otherwise: 5 minutes.
pub const STORE_QR_SECONDS_DEFAULT: u32 = 300;

/// The problem for a refused in-store payment.
fn instore_error(e: InStoreError) -> Problem {
    match e {
        InStoreError::SessionInvalid => Problem::session_required(),
        InStoreError::Key(k) => refused(k),
        InStoreError::Payment(PaymentError::UnknownStore) => Problem::not_found("no such store"),
        InStoreError::Payment(PaymentError::UnknownPayment) => Problem::not_found("no such sale at this store"),
        InStoreError::Payment(p) => payment_error(p),
        InStoreError::Funding(f) => errors::funding(f),
        InStoreError::Code(CodeError::Invalid) => {
            Problem::of("payment_code_invalid", "this is not a valid payment code (or a newer one replaced it)")
        }
        InStoreError::Code(CodeError::Expired) => {
            Problem::of("payment_code_expired", "the payment code is over 60 seconds old: ask for a new one")
        }
        InStoreError::Code(CodeError::Used) => Problem::of("payment_code_used", "the payment code was charged already"),
        InStoreError::QrUsed => Problem::of("qr_code_used", "this code was paid already"),
        InStoreError::QrExpired => {
            Problem::of("qr_code_expired", "this code expired or was withdrawn: ask the store for a new one")
        }
        InStoreError::QrMismatch => Problem::of(
            "qr_code_mismatch",
            "this code shows another merchant's name than the one it pays: do not pay it, tell the store",
        ),
        InStoreError::AmountMismatch { expected } => {
            Problem::of("amount_mismatch", format!("the code is for {} won", expected.minor()))
        }
    }
}

/// A store's QR code.
#[derive(Serialize, ToSchema)]
pub(crate) struct StoreQrOutput {
    object: &'static str,
    /// `static` (the user enters the amount) or `dynamic` (one sale).
    #[serde(rename = "type")]
    kind: &'static str,
    store_id: String,
    /// The EMV payload to show as a QR code.
    payload: String,
    /// For a one-sale code: its payment, `pay_...`.
    payment_id: Option<String>,
    /// For a one-sale code: won, a decimal string.
    amount: Option<String>,
    currency: &'static str,
    /// For a one-sale code: its order id.
    order_id: Option<String>,
    /// For a one-sale code: until when it can be scanned.
    expires_at: Option<Rfc3339>,
}

/// What a store's code needs to know of the store: its merchant's name and category, if the
/// store is `merchant_id`'s.
fn store_code_of(s: &kasa_core::State, merchant_id: u64, store_id: u64) -> Option<(String, String)> {
    let m = s.merchants();
    let store = m.store(store_id).filter(|st| st.merchant_id == merchant_id)?;
    let merchant = m.merchant(store.merchant_id)?;
    Some((merchant.display_name.as_str().to_string(), merchant.mcc.digits()))
}

/// The static payload of store `raw`, if it is the key's merchant's.
async fn static_payload(app: &AppState, headers: &HeaderMap, raw: &str) -> Result<String, Problem> {
    let key_hash = api_key_hash(headers)?;
    let store_id = ids::parse("str", raw, "no such store")?;
    let read = Scopes::named("payments:read").expect("a known scope");
    let found = read_as_key(app, key_hash, read, move |s, merchant_id| store_code_of(s, merchant_id, store_id)).await?;
    let (name, mcc) = found.ok_or_else(|| Problem::not_found("no such store"))?;
    let store = StoreCode { store_id, merchant_name: &name, mcc: &mcc };
    kasa_qr::payload(store, None).map_err(|e| Problem::internal(format!("a store's code does not encode: {e}")))
}

/// A store's static QR code: the user scans it and enters the amount. Derived from the store
/// and its merchant, so it never changes unless the merchant's name does. Scope
/// `payments:read`.
#[utoipa::path(get, path = "/v1/stores/{id}/qr", tag = "in-store", params(("id" = String, Path, description = "the store's id, str_...")),
    responses((status = 200, description = "the store's code", body = StoreQrOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:read"])))]
pub async fn store_qr(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let payload = static_payload(&app, &headers, &raw).await?;
    Ok(Json(StoreQrOutput {
        object: "store_qr",
        kind: "static",
        store_id: raw,
        payload,
        payment_id: None,
        amount: None,
        currency: WALLET_CURRENCY.code(),
        order_id: None,
        expires_at: None,
    })
    .into_response())
}

/// A store's static QR code as a PNG image (8 pixels a module, with the quiet zone). Scope
/// `payments:read`.
#[utoipa::path(get, path = "/v1/stores/{id}/qr.png", tag = "in-store", params(("id" = String, Path, description = "the store's id, str_...")),
    responses((status = 200, description = "the code as a PNG image", content_type = "image/png"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:read"])))]
pub async fn store_qr_png(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let payload = static_payload(&app, &headers, &raw).await?;
    let png = crate::images::qr_png(&payload, 8).map_err(|e| Problem::internal(format!("a store's code: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=300")], png).into_response())
}

/// A store's static QR code as an SVG image. Scope `payments:read`.
#[utoipa::path(get, path = "/v1/stores/{id}/qr.svg", tag = "in-store", params(("id" = String, Path, description = "the store's id, str_...")),
    responses((status = 200, description = "the code as an SVG image", content_type = "image/svg+xml"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:read"])))]
pub async fn store_qr_svg(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let payload = static_payload(&app, &headers, &raw).await?;
    let svg = crate::images::qr_svg(&payload).map_err(|e| Problem::internal(format!("a store's code: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "private, max-age=300")], svg)
        .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreQrInput {
    /// Won, a decimal string: 1 to 100,000,000.
    amount: AmountInput,
    /// Your id of the sale: 1 to 100 printable ASCII characters; one payment per order.
    order_id: String,
    /// What is bought, as the user sees it (default: the store's name).
    #[serde(default)]
    item_name: Option<String>,
    /// Seconds the code can be scanned: 60 to 86,400, default 300.
    #[serde(default)]
    expires_in: Option<u32>,
}

/// A merchant's order id, refusing the prefix Kasa keeps for the payments it names itself.
pub(crate) fn merchant_order_id(raw: String) -> Result<OrderId, Problem> {
    if raw.starts_with(KASA_ORDER_PREFIX) {
        return Err(Problem::invalid_field(format!("order_id: ids starting with {KASA_ORDER_PREFIX} are Kasa's")));
    }
    OrderId::new(raw).map_err(|e| Problem::invalid_field(format!("order_id: {e}")))
}

fn item_name(raw: Option<String>) -> Result<Option<ItemName>, Problem> {
    raw.map(ItemName::new).transpose().map_err(|e| Problem::invalid_field(format!("item_name: {e}")))
}

/// Makes a QR code for one sale at one of your stores: a payment of a fixed amount,
/// automatically captured, that the first user who scans the code pays (`payment.created`
/// now, `payment.succeeded` then); it expires unscanned after `expires_in`. The code's
/// reference cannot be guessed. Scope `payments:write`; an Idempotency-Key makes a retry
/// answer the same code.
#[utoipa::path(post, path = "/v1/stores/{id}/qr", tag = "in-store", request_body = StoreQrInput, params(("id" = String, Path, description = "the store's id, str_...")),
    responses((status = 201, description = "the code", body = StoreQrOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:write"])))]
pub async fn create_store_qr(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let store_id = ids::parse("str", &raw, "no such store")?;
    let input: StoreQrInput = object(&body)?;
    let expires_in_seconds = input.expires_in.unwrap_or(STORE_QR_SECONDS_DEFAULT);
    if !(APPROVAL_SECONDS_MIN..=APPROVAL_SECONDS_MAX).contains(&expires_in_seconds) {
        return Err(Problem::invalid_field(format!(
            "expires_in is {APPROVAL_SECONDS_MIN} to {APPROVAL_SECONDS_MAX} seconds"
        )));
    }
    let command = KeyCommand::CreateStoreQr {
        store_id,
        order_id: merchant_order_id(input.order_id)?,
        item_name: item_name(input.item_name)?,
        amount: input.amount.0,
        expires_in_seconds,
    };
    let (payment, name, mcc) = match as_key(&app, key_hash, command).await? {
        KeyOutcome::StoreQrCreated(Ok(created)) => created,
        KeyOutcome::StoreQrCreated(Err(PaymentError::UnknownStore)) => return Err(Problem::not_found("no such store")),
        KeyOutcome::StoreQrCreated(Err(e)) => return Err(payment_error(e)),
        other => return Err(Problem::internal(format!("a store code answered {other:?}"))),
    };
    let (name, mcc) = (name.as_str().to_string(), mcc.digits());
    let token = app.keys.approval_token(payment.id);
    let sale = Sale { payment_id: payment.id, token: &token, amount: payment.amount };
    let payload = kasa_qr::payload(StoreCode { store_id, merchant_name: &name, mcc: &mcc }, Some(sale))
        .map_err(|e| Problem::internal(format!("a sale's code does not encode: {e}")))?;
    let output = StoreQrOutput {
        object: "store_qr",
        kind: "dynamic",
        store_id: raw,
        payload,
        payment_id: Some(ids::format("pay", payment.id)),
        amount: Some(amount(payment.amount)),
        currency: WALLET_CURRENCY.code(),
        order_id: Some(payment.order_id.as_str().to_string()),
        expires_at: Some(Rfc3339(payment.expires_at)),
    };
    Ok((StatusCode::CREATED, Json(output)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QrPaymentInput {
    /// The payload as scanned.
    payload: String,
    /// Won, a decimal string: what the user entered for a store's static code (a one-sale
    /// code has its own amount; if given, it must be the same).
    #[serde(default)]
    amount: Option<AmountInput>,
    /// Needed beyond the PIN-free budget of the last 24 hours.
    #[serde(default)]
    pin: Option<String>,
}

/// Pays with a scanned QR code: a store's static code (with the `amount` the user entered)
/// or a code for one sale (its own amount, once, before it expires). The payment is made and
/// paid in one step; the PIN-free budget and the daily limit apply. A valid code of another
/// scheme is `unsupported_scheme`, naming it; a code that is not a valid EMV payload is
/// `invalid_qr`, with the decoder's reason and field.
#[utoipa::path(post, path = "/v1/me/qr-payments", tag = "in-store", request_body = QrPaymentInput,
    responses((status = 201, description = "the payment, paid", body = MyPaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn pay_with_qr(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let token_hash = super::session_token_hash(&headers).ok_or_else(Problem::session_required)?;
    let input: QrPaymentInput = object(&body)?;
    let code = match kasa_qr::read_text(&input.payload) {
        Err(e) => {
            let field = e.field.map(|f| format!(" at field {f}")).unwrap_or_default();
            return Err(Problem::of("invalid_qr", format!("the code is not valid: {}{field}", e.reason.name())));
        }
        Ok(Err(scheme)) => {
            return Err(Problem::of(
                "unsupported_scheme",
                format!("this is a {} code; Kasa pays Kasa codes only", scheme.name()),
            ))
        }
        Ok(Ok(code)) => code,
    };
    let entered = input.amount.map(|a| a.0);
    // The name the user was shown: the core checks it is the merchant the code pays.
    let merchant_name = code
        .merchant_name
        .and_then(|name| DisplayName::new(name).ok())
        .ok_or_else(|| Problem::of("qr_code_mismatch", "this code names no merchant Kasa knows: do not pay it"))?;
    let scan = match code.sale {
        None => Scan::Static {
            store_id: code.store_id,
            amount: entered.ok_or_else(|| Problem::invalid_field("amount: a store's code needs the amount"))?,
            merchant_name,
        },
        Some((payment_id, token)) => {
            if !app.keys.approval_token_matches(payment_id, &token) {
                return Err(Problem::not_found("no such sale at this store"));
            }
            Scan::Dynamic { payment_id, store_id: code.store_id, amount: entered.or(code.amount), merchant_name }
        }
    };
    let pin_ok = session_pin_verdict(&app, &headers, input.pin).await?;
    let command = Command::PayByQr { token_hash, scan, pin_ok };
    match app.merchant(KeyScope::Session(token_hash), command).await? {
        Outcome::QrPaid(Ok(paid)) => Ok((StatusCode::CREATED, Json(MyPaymentOutput::from(&paid))).into_response()),
        Outcome::QrPaid(Err(e)) => Err(instore_error(e)),
        other => Err(Problem::internal(format!("a QR payment answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaymentCodeInput {
    /// With the PIN, the code may be charged beyond the PIN-free budget (up to the daily
    /// limit); without it, up to what is left of the budget.
    #[serde(default)]
    pin: Option<String>,
}

/// A one-time payment code.
#[derive(Serialize, ToSchema)]
pub(crate) struct PaymentCodeOutput {
    object: &'static str,
    /// 20 digits, to show as a barcode; single use.
    code: String,
    /// 60 seconds after its issue.
    expires_at: Rfc3339,
    /// Whether it was issued with the PIN (it may be charged beyond the PIN-free budget).
    with_pin: bool,
    /// The code as a Code 128 barcode, SVG.
    barcode_svg: String,
    /// The code as a QR code, SVG.
    qr_svg: String,
}

/// Issues a one-time payment code to show at a till: valid 60 seconds, charged once by the
/// merchant (`POST /v1/payments` with `payment_code`). Showing it is consent up to the PIN-free
/// budget; issued with the PIN, up to the daily limit. A new code replaces the one before. A
/// locked PIN issues no code.
#[utoipa::path(post, path = "/v1/me/payment-codes", tag = "in-store", request_body = PaymentCodeInput,
    responses((status = 201, description = "the code", body = PaymentCodeOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn issue_payment_code(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let token_hash = super::session_token_hash(&headers).ok_or_else(Problem::session_required)?;
    let input: PaymentCodeInput = if body.is_empty() { PaymentCodeInput { pin: None } } else { object(&body)? };
    let pin_ok = session_pin_verdict(&app, &headers, input.pin).await?;
    let command = kasa_core::wallet::Command::IssuePaymentCode { user_id: 0, pin_ok };
    let code = match app.as_session(token_hash, command).await? {
        kasa_core::wallet::Outcome::PaymentCodeIssued(r) => r.map_err(errors::funding)?,
        other => return Err(Problem::internal(format!("a payment code answered {other:?}"))),
    };
    let digits = crate::paycode::digits(app.keys.payment_codes(), &code)
        .ok_or_else(|| Problem::internal("the user's id is beyond what a payment code carries"))?;
    let barcode_svg = crate::images::code128_svg(&digits).ok_or_else(|| Problem::internal("a code's barcode"))?;
    let qr_svg = crate::images::digits_qr_svg(&digits).ok_or_else(|| Problem::internal("a code's QR code"))?;
    let output = PaymentCodeOutput {
        object: "payment_code",
        code: digits,
        expires_at: Rfc3339(code.expires_at()),
        with_pin: code.with_pin,
        barcode_svg,
        qr_svg,
    };
    Ok((StatusCode::CREATED, Json(output)).into_response())
}

/// The fields of `POST /v1/payments` that charge a payment code.
pub(crate) struct CodeInput {
    pub payment_code: String,
    pub amount: kasa_core::money::Amount,
    pub order_id: String,
    pub store_id: Option<String>,
    pub item_name: Option<String>,
}

/// Charges a payment code that a user shows (`POST /v1/payments` with `payment_code`): the
/// code is read here (whose it is, whether it is that user's current one), and the core
/// checks that it is unused and in time, and the user's limits and funds, in the charge's
/// own command. A merchant that sends too many codes that are not valid is refused for a
/// while (`crate::paycode`).
pub(crate) async fn charge_payment_code(
    app: &AppState,
    headers: &HeaderMap,
    input: CodeInput,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(headers)?;
    let store_raw =
        input.store_id.ok_or_else(|| Problem::invalid_field("store_id: a payment code is charged at a store"))?;
    let store_id =
        ids::parse("str", &store_raw, "").map_err(|_| Problem::invalid_field("store_id names none of your stores"))?;
    let order_id = merchant_order_id(input.order_id)?;
    let item_name = item_name(input.item_name)?;
    let user_id = crate::paycode::user_of(app.keys.payment_codes(), &input.payment_code);
    let write = Scopes::named("payments:write").expect("a known scope");
    // A keyed retry of a charge that was applied replays it, whatever the code is now (a
    // newer code of the user's may have replaced it): it is looked up before anything else.
    let keyed = crate::idempotency::current().map(|k| (k.key().clone(), k.request_hash()));
    let now = app.engine.now();
    let (merchant_id, current, replay) = read_as_key(app, key_hash, write, move |s, merchant_id| {
        let replay = keyed.is_some_and(|(key, hash)| {
            let owner = kasa_core::idempotency::Owner::Merchant(merchant_id);
            s.idempotency().get(owner, &key, now).is_some_and(|e| e.request_hash == hash)
        });
        (merchant_id, user_id.and_then(|u| s.wallets().payment_code(u).copied()), replay)
    })
    .await?;
    let valid = current.filter(|c| crate::paycode::matches(app.keys.payment_codes(), &input.payment_code, c));
    let (user_id, counter) = match valid {
        Some(code) => (code.user_id, code.counter),
        None => (user_id.unwrap_or(0), 0),
    };
    if !replay {
        // Every attempt takes one of the merchant's tokens before its answer, and only a valid
        // code gives it back: guesses sent at once cannot outrun the limit.
        let limiter = &app.limits.wrong_payment_codes;
        limiter
            .check(&merchant_id)
            .map_err(|seconds| Problem::rate_limited("payment codes that are not valid", seconds))?;
        if valid.is_none() {
            tracing::warn!(merchant_id, "a merchant sent a payment code that is not valid");
            return Err(instore_error(InStoreError::Code(CodeError::Invalid)));
        }
        limiter.give_back(&merchant_id);
    }
    let charge = CodeCharge { user_id, counter, store_id, order_id, item_name, amount: input.amount };
    let command = Command::ChargeCode { key_hash, charge: Box::new(charge) };
    let outcome = match app.merchant(KeyScope::ApiKey(key_hash), command).await? {
        Outcome::CodeCharged { outcome, .. } => outcome,
        other => return Err(Problem::internal(format!("a charge answered {other:?}"))),
    };
    match outcome {
        Ok(p) => Ok((StatusCode::CREATED, Json(PaymentOutput::new(&p, &app.keys))).into_response()),
        // The user's next code replaced this one since it was checked: as any code that is not
        // valid, it counts against the merchant.
        Err(InStoreError::Code(CodeError::Invalid)) => {
            // A replayed refusal was counted when it was first made.
            let replayed = replay || crate::idempotency::current().is_some_and(|k| k.was_replayed());
            if !replayed {
                let _ = app.limits.wrong_payment_codes.check(&merchant_id);
            }
            Err(instore_error(InStoreError::Code(CodeError::Invalid)))
        }
        Err(InStoreError::Funding(kasa_core::wallet::FundingError::PinRequired)) => Err(Problem::of(
            "pin_required",
            "the amount is beyond the user's PIN-free budget: the user must show a code issued with the PIN",
        )),
        // The merchant's own side reads as for an online payment (store_id names none of yours).
        Err(InStoreError::Payment(p)) => Err(payment_error(p)),
        Err(e) => Err(instore_error(e)),
    }
}
