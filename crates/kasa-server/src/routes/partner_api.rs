//! The partner API (`/v1/partner/...`): a partner wallet network pays Kasa's stores for its
//! users, inquires, cancels and refunds, in Alipay+'s message model (`paymentRequestId`,
//! `paymentAmount {currency, value}` with `value` a string of minor units, and
//! `result {resultStatus, resultCode, resultMessage}`). Every request is signed (see
//! `partner_signature.rs`), and every answer is signed with Kasa's key and names the
//! `paymentRequestId` it answers (`F` answers too), as Kasa asks of partners' answers to its
//! own calls (`consumers/partner_answer.rs`).
//!
//! **What is an error and what is a result.** A request Kasa cannot read or whose signature
//! fails is an HTTP error with a problem+json body, as everywhere in the API. A request Kasa
//! read and decided is HTTP 200 with a `result`: `S` (done), or `F` with a stable
//! `resultCode` (`QUOTE_EXPIRED`, `ORDER_NOT_EXIST`, ...). Kasa never answers `U`: a
//! request is committed with its answer, so an inquiry (or the same request again, which is
//! idempotent by its request id) always finds the outcome.
//!
//! Also here: `POST /v1/fx/quotes`, for partners (signed) and operators.

use super::partners::{currency, fx_refused};
use crate::body::object;
use crate::ids;
use crate::json::Rfc3339;
use crate::partner_signature::{self as sig, SKEW_NANOS};
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::fx::Side;
use kasa_core::idempotency::KeyScope;
use kasa_core::merchant::{DisplayName, ItemName, PaymentError};
use kasa_core::money::{Amount, Currency};
use kasa_core::partner::{
    Command, CustomerId, Outcome, PartnerPayment, PartnerRefund, PayError, PayRequest, Quote, RequestId,
    QUOTE_SECONDS_DEFAULT, QUOTE_SECONDS_MAX,
};
use kasa_core::qr::kasa as kasa_qr;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The partner a signed request comes from, checked: its `Client-Id`, the signature with one
/// of its live keys, the request time within 5 minutes, and no replay. Every refusal is 401
/// with a code that says which check failed, and nothing else about the keys.
pub(crate) async fn authenticate(
    app: &AppState,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<u64, Problem> {
    let invalid =
        || Problem::of("invalid_signature", "the request's signature does not verify with a live key of the client");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let client_id = header("client-id").ok_or_else(invalid)?;
    let request_time =
        header("request-time").ok_or_else(|| Problem::of("request_time_skew", "Request-Time is missing"))?;
    let signature = header("signature").and_then(sig::parse_header).ok_or_else(invalid)?;
    let partner_id = ids::parse("ptn", client_id, "").map_err(|_| invalid())?;
    let now = app.engine.now();
    let at = kasa_core::fx::parse_rfc3339(request_time)
        .ok_or_else(|| Problem::of("request_time_skew", "Request-Time is not an RFC 3339 time with an offset"))?;
    if at.abs_diff(now) > SKEW_NANOS {
        return Err(Problem::of("request_time_skew", "Request-Time is more than 5 minutes from Kasa's clock"));
    }
    let key = live_key(app, partner_id, signature.key_version).await?.ok_or_else(invalid)?;
    let message = sig::message(method, path, client_id, request_time, body);
    if !sig::verify(&key, &message, &signature.signature) {
        return Err(invalid());
    }
    if !app.partner_replays.first_time(&signature.signature, now) {
        return Err(Problem::of("replayed_request", "this signature was used already: sign each request anew"));
    }
    Ok(partner_id)
}

/// Partner `partner_id`'s live public key `version`, if it has one: from
/// [`sig::KeyCache`], or read from the state (and cached). A partner's requests and its
/// answers to Kasa's calls are checked with it.
pub(crate) async fn live_key(
    app: &AppState,
    partner_id: u64,
    version: u32,
) -> Result<Option<[u8; 32]>, kasa_engine::SubmitError> {
    match app.partner_keys.get(partner_id, version) {
        Ok(key) => Ok(Some(key)),
        Err(generation) => {
            let key = app
                .engine
                .read(move |s| s.partners().partner(partner_id).and_then(|p| p.live_key(version)).map(|k| k.public_key))
                .await?;
            if let Some(key) = key {
                app.partner_keys.keep(partner_id, version, key, generation);
            }
            Ok(key)
        }
    }
}

/// A JSON answer signed with Kasa's key over the same layout the partner signs.
pub(crate) fn signed(
    app: &AppState,
    path: &str,
    partner_id: u64,
    status: StatusCode,
    body: &impl Serialize,
) -> Response {
    let body = serde_json::to_vec(body).expect("an answer serializes");
    let client_id = ids::format("ptn", partner_id);
    let time = Rfc3339(app.engine.now()).to_string();
    let signature = sig::kasa_signature(&app.kasa_signer, path, &client_id, &time, &body);
    let mut response = (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [("client-id", client_id), ("response-time", time), ("signature", signature)] {
        headers.insert(name, HeaderValue::from_str(&value).expect("ASCII header values"));
    }
    response
}

/// Alipay+'s `result`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResultOutput {
    /// `S` or `F`.
    result_status: &'static str,
    /// `SUCCESS`, or why not (stable).
    result_code: &'static str,
    result_message: String,
}

impl ResultOutput {
    fn success() -> Self {
        ResultOutput { result_status: "S", result_code: "SUCCESS", result_message: "success".into() }
    }

    fn failed(code: &'static str, message: impl Into<String>) -> Self {
        ResultOutput { result_status: "F", result_code: code, result_message: message.into() }
    }
}

/// An amount: `value` is a string of minor units.
#[derive(Serialize, Deserialize, ToSchema)]
pub(crate) struct MoneyIo {
    /// ISO 4217 code.
    pub(crate) currency: String,
    /// Minor units, as a string of digits.
    pub(crate) value: String,
}

impl MoneyIo {
    pub(crate) fn of(currency: Currency, amount: Amount) -> Self {
        MoneyIo { currency: currency.code().into(), value: amount.minor().to_string() }
    }

    /// A won amount from a request.
    fn won(&self, field: &str) -> Result<Amount, Problem> {
        if self.currency != "KRW" {
            return Err(Problem::of("currency_not_supported", format!("{field}: Kasa's stores are paid in KRW")));
        }
        Amount::parse_minor(&self.value).filter(|a| !a.is_zero()).ok_or_else(|| {
            Problem::invalid_field(format!("{field}.value: a positive number of minor units as a string"))
        })
    }
}

/// The rate a payment used.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QuoteUsedOutput {
    /// `qt_...`, or null for the rate in force.
    quote_id: Option<String>,
    /// `CNY/KRW`: the settlement currency against won.
    quote_currency_pair: String,
    /// Won per unit of the settlement currency, spread included.
    quote_price: String,
}

/// A partner's payment.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentOutput {
    result: ResultOutput,
    /// `ppay_` and a number.
    payment_id: String,
    payment_request_id: String,
    /// `SUCCESS` or `CANCELLED`.
    payment_status: &'static str,
    payment_amount: MoneyIo,
    /// What the partner owes for it, before its fee.
    settlement_amount: MoneyIo,
    /// Kasa's fee to the partner.
    partner_fee: MoneyIo,
    settlement_quote: Option<QuoteUsedOutput>,
    /// Won refunded so far.
    refunded_amount: MoneyIo,
    payment_time: Rfc3339,
    /// The merchant, its store and its payment (`pay_...`, channel `partner`).
    merchant_id: String,
    store_id: String,
    merchant_payment_id: String,
    /// The settlement window it is in.
    settlement_window_id: String,
}

impl PaymentOutput {
    pub(crate) fn of(p: &PartnerPayment) -> Self {
        PaymentOutput {
            result: ResultOutput::success(),
            payment_id: ids::format("ppay", p.id),
            payment_request_id: p.request_id.as_str().into(),
            payment_status: match p.status {
                kasa_core::partner::PartnerPaymentStatus::Succeeded => "SUCCESS",
                kasa_core::partner::PartnerPaymentStatus::Canceled => "CANCELLED",
            },
            payment_amount: MoneyIo::of(Currency::KRW, p.amount),
            settlement_amount: MoneyIo::of(p.settlement_currency, p.settlement_amount),
            partner_fee: MoneyIo::of(p.settlement_currency, p.fee),
            settlement_quote: p.rate.map(|r| QuoteUsedOutput {
                quote_id: (p.quote_id != 0).then(|| ids::format("qt", p.quote_id)),
                quote_currency_pair: format!("{}/{}", p.settlement_currency, Currency::KRW),
                quote_price: r.customer_rate().to_string(),
            }),
            refunded_amount: MoneyIo::of(Currency::KRW, p.refunded),
            payment_time: Rfc3339(p.created_at),
            merchant_id: ids::format("mch", p.merchant_id),
            store_id: ids::format("str", p.store_id),
            merchant_payment_id: ids::format("pay", p.merchant_payment_id),
            settlement_window_id: ids::format("sw", p.window_id),
        }
    }
}

/// A refund or cancel.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundOutput {
    result: ResultOutput,
    /// `prfd_` and a number.
    refund_id: String,
    /// The partner's `refundRequestId` (null for a cancel).
    refund_request_id: Option<String>,
    payment_id: String,
    payment_request_id: String,
    refund_amount: MoneyIo,
    /// What goes back to the partner, at the payment's rate.
    settlement_amount: MoneyIo,
    /// The part of Kasa's fee it takes back.
    partner_fee_returned: MoneyIo,
    refund_time: Rfc3339,
    settlement_window_id: String,
}

impl RefundOutput {
    fn of(r: &PartnerRefund, p: &PartnerPayment) -> Self {
        RefundOutput {
            result: ResultOutput::success(),
            refund_id: ids::format("prfd", r.id),
            refund_request_id: (!r.cancel).then(|| r.request_id.as_str().into()),
            payment_id: ids::format("ppay", p.id),
            payment_request_id: p.request_id.as_str().into(),
            refund_amount: MoneyIo::of(Currency::KRW, r.amount),
            settlement_amount: MoneyIo::of(p.settlement_currency, r.settlement_amount),
            partner_fee_returned: MoneyIo::of(p.settlement_currency, r.fee_returned),
            refund_time: Rfc3339(r.created_at),
            settlement_window_id: ids::format("sw", r.window_id),
        }
    }
}

/// An answer that is only a result, and the request it answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FailedOutput {
    result: ResultOutput,
    /// The request's `paymentRequestId`: every answer names the request it answers (and Kasa
    /// asks the same of partners' answers to its calls).
    payment_request_id: String,
}

/// The result code and message of a refusal of the request about `payment_request_id`.
fn failed(e: PayError, payment_request_id: &RequestId) -> FailedOutput {
    let (code, message): (&'static str, String) = match e {
        PayError::UnknownPartner => ("UNKNOWN_PARTNER", "no such partner".into()),
        PayError::PartnerSuspended => ("PARTNER_SUSPENDED", "the partner is suspended: no new payments".into()),
        PayError::Merchant(PaymentError::UnknownStore) => ("MERCHANT_NOT_FOUND", "no such store".into()),
        PayError::Merchant(PaymentError::MerchantNotActive { status }) => {
            ("MERCHANT_NOT_ACTIVE", format!("the merchant is {}", status.name()))
        }
        PayError::Merchant(PaymentError::InvalidAmount) => {
            ("INVALID_AMOUNT", format!("a payment is 1 to {} won", kasa_core::merchant::PAYMENT_AMOUNT_MAX.minor()))
        }
        PayError::Merchant(other) => ("MERCHANT_REFUSED", format!("the merchant's side refused: {other:?}")),
        PayError::MerchantMismatch => {
            ("QR_CODE_MISMATCH", "the code names another merchant than the one it pays".into())
        }
        PayError::RequestIdReused => {
            ("REPEAT_REQ_INCONSISTENT", "the request id was used for a different request".into())
        }
        PayError::UnknownPayment => ("ORDER_NOT_EXIST", "no payment of yours has this paymentRequestId".into()),
        PayError::UnknownQuote => ("UNKNOWN_QUOTE", "no quote of yours has this id".into()),
        PayError::QuoteExpired => ("QUOTE_EXPIRED", "the quote expired: ask for a new one".into()),
        PayError::QuoteMismatch => {
            ("QUOTE_MISMATCH", "the quote is not for your settlement currency against KRW".into())
        }
        PayError::Fx(f) => ("FX_REFUSED", format!("the conversion was refused: {}", f.code())),
        PayError::PaymentCanceled => ("ORDER_IS_CLOSED", "the payment was canceled".into()),
        PayError::CancelWindowClosed => {
            ("CANCEL_WINDOW_EXCEED", "the payment's settlement window closed: refund it instead".into())
        }
        PayError::AlreadyRefunded => ("ORDER_IS_REFUNDED", "the payment was refunded in part: refund the rest".into()),
        PayError::AmountTooLarge { max } => {
            ("REFUND_AMOUNT_EXCEED", format!("at most {} won is left to refund", max.minor()))
        }
        PayError::InvalidAmount => ("INVALID_AMOUNT", "the amount is zero".into()),
        PayError::RefundPeriodOver => ("REFUND_WINDOW_EXCEED", "a payment is refunded within 365 days".into()),
        PayError::TooManyRefunds => ("TOO_MANY_REFUNDS", "a payment has at most 100 refunds".into()),
        PayError::RefundIdReused => {
            ("REPEAT_REQ_INCONSISTENT", "the refund request id was used for a different refund".into())
        }
    };
    FailedOutput { result: ResultOutput::failed(code, message), payment_request_id: payment_request_id.as_str().into() }
}

fn request_id(value: String, field: &str) -> Result<RequestId, Problem> {
    RequestId::new(value).map_err(|e| Problem::invalid_field(format!("{field}: {e}")))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderInput {
    /// What is bought, as the merchant's till shows it (1 to 100 characters).
    order_description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QuoteRefInput {
    /// `qt_...`, from `POST /v1/fx/quotes`.
    quote_id: String,
}

/// A partner's `pay`. Fields Kasa does not know are ignored, as Alipay+ adds fields over time.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayInput {
    /// The partner's id of the payment: a repeat is answered with the first result.
    payment_request_id: String,
    /// In KRW.
    payment_amount: MoneyIo,
    order: Option<OrderInput>,
    /// The quote to convert at; the rate in force if absent.
    payment_quote: Option<QuoteRefInput>,
    /// The partner's reference of its user (opaque to Kasa).
    customer_id: String,
    /// The store's code as the user's app scanned it (an EMV payload of the Kasa scheme).
    code_value: Option<String>,
    /// Or the store's id (`str_...`), for codes read another way.
    store_id: Option<String>,
}

/// The store and the merchant name a request names: from the scanned code, or the store id.
fn store_of(code_value: Option<&str>, store_id: Option<&str>) -> Result<(u64, Option<DisplayName>), Problem> {
    match (code_value, store_id) {
        (Some(code), None) => match kasa_qr::read_text(code) {
            Err(e) => {
                let field = e.field.map(|f| format!(" at field {f}")).unwrap_or_default();
                Err(Problem::of("invalid_qr", format!("codeValue is not a valid code: {}{field}", e.reason.name())))
            }
            Ok(Err(scheme)) => Err(Problem::of(
                "unsupported_scheme",
                format!("codeValue is a {} code; Kasa takes Kasa codes", scheme.name()),
            )),
            Ok(Ok(code)) if code.sale.is_some() => {
                Err(Problem::of("unsupported_scheme", "codeValue is a code for one sale, which a Kasa wallet pays"))
            }
            Ok(Ok(code)) => Ok((code.store_id, code.merchant_name.and_then(|n| DisplayName::new(n).ok()))),
        },
        (None, Some(id)) => {
            Ok((ids::parse("str", id, "").map_err(|_| Problem::invalid_field("storeId: str_..."))?, None))
        }
        _ => Err(Problem::invalid_field("give codeValue (the scanned code) or storeId, one of them")),
    }
}

/// Pays a Kasa store for the partner's user: the merchant is paid in won, the partner owes its
/// settlement currency at the quote (or the rate in force).
#[utoipa::path(post, path = "/v1/partner/payments/pay", tag = "partner API", request_body = PayInput,
    responses((status = 200, description = "the payment (result S), or result F with a resultCode", body = PaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("partner_signature" = [])))]
pub async fn partner_pay(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let partner_id = authenticate(&app, "POST", uri.path(), &headers, &body).await?;
    let input: PayInput = object(&body)?;
    let amount = input.payment_amount.won("paymentAmount")?;
    let (store_id, merchant_name) = store_of(input.code_value.as_deref(), input.store_id.as_deref())?;
    let item_name = match input.order.and_then(|o| o.order_description) {
        Some(d) => Some(ItemName::new(d).map_err(|e| Problem::invalid_field(format!("order.orderDescription: {e}")))?),
        None => None,
    };
    let quote_id = match input.payment_quote {
        Some(q) => Some(
            ids::parse("qt", &q.quote_id, "").map_err(|_| Problem::invalid_field("paymentQuote.quoteId: qt_..."))?,
        ),
        None => None,
    };
    let request = PayRequest {
        partner_id,
        request_id: request_id(input.payment_request_id, "paymentRequestId")?,
        customer_id: CustomerId::new(input.customer_id)
            .map_err(|e| Problem::invalid_field(format!("customerId: {e}")))?,
        store_id,
        merchant_name,
        amount,
        item_name,
        quote_id,
    };
    let path = uri.path();
    let asked = request.request_id.clone();
    match app.partner_unkeyed(Command::Pay(Box::new(request))).await? {
        Outcome::Paid(Ok(paid)) => {
            Ok(signed(&app, path, partner_id, StatusCode::OK, &PaymentOutput::of(&paid.payment)))
        }
        Outcome::Paid(Err(e)) => Ok(signed(&app, path, partner_id, StatusCode::OK, &failed(e, &asked))),
        other => Err(Problem::internal(format!("a partner's payment answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentRefInput {
    /// The payment's `paymentRequestId`.
    payment_request_id: String,
}

/// What became of a payment: its status and amounts (result F `ORDER_NOT_EXIST` if Kasa never
/// took it: then it was not paid, and may be sent again).
#[utoipa::path(post, path = "/v1/partner/payments/inquiryPayment", tag = "partner API", request_body = PaymentRefInput,
    responses((status = 200, description = "the payment, or result F", body = PaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("partner_signature" = [])))]
pub async fn partner_inquiry_payment(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let partner_id = authenticate(&app, "POST", uri.path(), &headers, &body).await?;
    let input: PaymentRefInput = object(&body)?;
    let id = request_id(input.payment_request_id, "paymentRequestId")?;
    let asked = id.clone();
    let payment = app.engine.read(move |s| s.partners().payment_by_request(partner_id, &id).cloned()).await?;
    Ok(match payment {
        Some(p) => signed(&app, uri.path(), partner_id, StatusCode::OK, &PaymentOutput::of(&p)),
        None => signed(&app, uri.path(), partner_id, StatusCode::OK, &failed(PayError::UnknownPayment, &asked)),
    })
}

/// Cancels a payment in full, free, while its settlement window is open (until midnight KST
/// of its day, or until an operator closes the window); after that, refund it.
#[utoipa::path(post, path = "/v1/partner/payments/cancelPayment", tag = "partner API", request_body = PaymentRefInput,
    responses((status = 200, description = "the cancel, or result F", body = RefundOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("partner_signature" = [])))]
pub async fn partner_cancel_payment(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let partner_id = authenticate(&app, "POST", uri.path(), &headers, &body).await?;
    let input: PaymentRefInput = object(&body)?;
    let request_id = request_id(input.payment_request_id, "paymentRequestId")?;
    let path = uri.path();
    let asked = request_id.clone();
    match app.partner_unkeyed(Command::CancelPayment { partner_id, request_id }).await? {
        Outcome::Canceled(Ok(r)) => {
            Ok(signed(&app, path, partner_id, StatusCode::OK, &RefundOutput::of(&r.refund, &r.payment)))
        }
        Outcome::Canceled(Err(e)) => Ok(signed(&app, path, partner_id, StatusCode::OK, &failed(e, &asked))),
        other => Err(Problem::internal(format!("a partner's cancel answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefundInput {
    /// The partner's id of the refund: a repeat is answered with the first result.
    refund_request_id: String,
    /// The payment's `paymentRequestId`.
    payment_request_id: String,
    /// In KRW: at most what is left to refund.
    refund_amount: MoneyIo,
    /// Why (ignored by Kasa, kept by the partner).
    refund_reason: Option<String>,
}

/// Refunds part or all of a payment, up to 365 days after it, at the payment's own rate.
#[utoipa::path(post, path = "/v1/partner/payments/refund", tag = "partner API", request_body = RefundInput,
    responses((status = 200, description = "the refund, or result F", body = RefundOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("partner_signature" = [])))]
pub async fn partner_refund(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let partner_id = authenticate(&app, "POST", uri.path(), &headers, &body).await?;
    let input: RefundInput = object(&body)?;
    let _ = input.refund_reason;
    let refund_request_id = request_id(input.refund_request_id, "refundRequestId")?;
    let asked = request_id(input.payment_request_id, "paymentRequestId")?;
    let command = Command::Refund {
        partner_id,
        refund_request_id,
        request_id: asked.clone(),
        amount: input.refund_amount.won("refundAmount")?,
    };
    let path = uri.path();
    match app.partner_unkeyed(command).await? {
        Outcome::Refunded(Ok(r)) => {
            Ok(signed(&app, path, partner_id, StatusCode::OK, &RefundOutput::of(&r.refund, &r.payment)))
        }
        Outcome::Refunded(Err(e)) => Ok(signed(&app, path, partner_id, StatusCode::OK, &failed(e, &asked))),
        other => Err(Problem::internal(format!("a partner's refund answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuoteInput {
    /// ISO 4217 code of the currency sold.
    sell_currency: String,
    /// ISO 4217 code of the currency bought.
    buy_currency: String,
    /// Minor units sold (give this or `buy_amount`).
    sell_amount: Option<crate::json::AmountInput>,
    /// Minor units bought.
    buy_amount: Option<crate::json::AmountInput>,
    /// Seconds it holds: 1 to 86,400, default 600.
    expires_in: Option<u32>,
}

/// A quote.
#[derive(Serialize, ToSchema)]
pub(crate) struct QuoteOutput {
    /// `qt_` and a number: name it as `paymentQuote.quoteId`.
    quote_id: String,
    object: &'static str,
    sell_currency: &'static str,
    buy_currency: &'static str,
    /// Minor units.
    sell_amount: String,
    /// Minor units.
    buy_amount: String,
    /// Units of the currency bought per unit sold, spread included (for reading: amounts are
    /// computed from the exact rate, rounded in Kasa's favour).
    rate: String,
    /// The mid rate, in the same direction.
    mid_rate: String,
    spread_bps: u16,
    created_at: Rfc3339,
    /// A payment that names it later is refused (`QUOTE_EXPIRED`).
    expires_at: Rfc3339,
    /// Whether the rate is held until `expires_at`: always true.
    guaranteed: bool,
    /// The partner it is for; null for an operator's (usable by no partner).
    partner_id: Option<String>,
}

impl From<&Quote> for QuoteOutput {
    fn from(q: &Quote) -> Self {
        QuoteOutput {
            quote_id: ids::format("qt", q.id),
            object: "fx_quote",
            sell_currency: q.sell().code(),
            buy_currency: q.buy().code(),
            sell_amount: q.sell_amount.minor().to_string(),
            buy_amount: q.buy_amount.minor().to_string(),
            rate: q.rate.customer_rate().to_string(),
            mid_rate: q.rate.mid().to_string(),
            spread_bps: q.rate.rate.spread_bps(),
            created_at: Rfc3339(q.created_at),
            expires_at: Rfc3339(q.expires_at),
            guaranteed: true,
            partner_id: (q.partner_id != 0).then(|| ids::format("ptn", q.partner_id)),
        }
    }
}

/// A quote from the rate in force, held until it expires. A partner signs the request (the
/// quote is then its own); an operator uses the operator key.
#[utoipa::path(post, path = "/v1/fx/quotes", tag = "fx", request_body = QuoteInput,
    responses((status = 201, description = "the quote", body = QuoteOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("partner_signature" = []), ("operator" = [])))]
pub async fn create_quote(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let partner_id = if headers.contains_key("client-id") {
        authenticate(&app, "POST", uri.path(), &headers, &body).await?
    } else if crate::bearer_token(&headers).is_some_and(|t| app.operator_key.matches(t)) {
        0
    } else {
        return Err(Problem::unauthorized());
    };
    let input: QuoteInput = object(&body)?;
    let sell = currency(&input.sell_currency, "sell_currency")?;
    let buy = currency(&input.buy_currency, "buy_currency")?;
    let side = match (input.sell_amount, input.buy_amount) {
        (Some(a), None) => Side::Sell(a.0),
        (None, Some(a)) => Side::Buy(a.0),
        _ => return Err(Problem::invalid_field("give sell_amount or buy_amount, one of them")),
    };
    let expires_in_seconds = input.expires_in.unwrap_or(QUOTE_SECONDS_DEFAULT);
    if expires_in_seconds == 0 || expires_in_seconds > QUOTE_SECONDS_MAX {
        return Err(Problem::invalid_field(format!("expires_in is 1 to {QUOTE_SECONDS_MAX} seconds")));
    }
    let command = Command::CreateQuote { partner_id, sell, buy, side, expires_in_seconds };
    let outcome = if partner_id == 0 {
        app.partner(KeyScope::Operator, command).await?
    } else {
        app.partner_unkeyed(command).await?
    };
    match outcome {
        Outcome::QuoteCreated(Ok(q)) => {
            let output = QuoteOutput::from(&q);
            Ok(if partner_id == 0 {
                (StatusCode::CREATED, Json(output)).into_response()
            } else {
                signed(&app, uri.path(), partner_id, StatusCode::CREATED, &output)
            })
        }
        Outcome::QuoteCreated(Err(e)) => Err(fx_refused(e)),
        other => Err(Problem::internal(format!("a quote answered {other:?}"))),
    }
}
