//! A Kasa user pays at a partner's merchant abroad (`/v1/me/overseas-payments`, session): the
//! app sends the scanned code; Kasa decodes it, finds the partner that accepts its scheme and
//! quotes the amount in both currencies; the user pays the quote in won (PIN rules and the
//! daily limit apply), and the payment waits for the partner's answer, which Kasa asks for
//! from committed state (`consumers/partner_calls.rs`). And the partner's refund of such a
//! payment (`POST /v1/partner/overseas/refund`, signed), at the payment's rate.

use super::partner_api::{authenticate as partner, MoneyIo};
use crate::body::object;
use crate::ids;
use crate::json::Rfc3339;
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::fx::Side;
use kasa_core::idempotency::KeyScope;
use kasa_core::money::{Amount, Currency};
use kasa_core::partner::{
    CodeText, Command, ForeignText, Outcome, OverseasError, OverseasPayment, OverseasRefundRequest, PayOverseasRequest,
    RequestId,
};
use kasa_core::qr::Scheme;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a quote for a payment abroad holds: two minutes, the time to confirm it.
const QUOTE_SECONDS: u32 = 120;

/// A foreign code read: its scheme, currency, amount (if it states one), merchant.
struct Foreign {
    scheme: Scheme,
    currency: Currency,
    amount: Option<Amount>,
    name: ForeignText,
    city: Option<ForeignText>,
    code: CodeText,
}

/// `23.72` in `currency`'s minor units (at most its decimals, at most 13 characters).
fn minor_of(text: &str, currency: Currency) -> Option<Amount> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let places = usize::from(currency.minor_units());
    if text.len() > 13 || whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > places {
        return None;
    }
    let padded = format!("{whole}{fraction:0<places$}");
    padded.parse::<u64>().ok().filter(|m| *m > 0).map(Amount::new)
}

/// Reads a foreign merchant's code: a valid EMV payload of a scheme other than Kasa's, in a
/// known currency other than won.
fn read(payload: &str) -> Result<Foreign, Problem> {
    let decoded = kasa_core::qr::decode(payload).map_err(|e| {
        let field = e.field.map(|f| format!(" at field {f}")).unwrap_or_default();
        Problem::of("invalid_qr", format!("the code is not valid: {}{field}", e.reason.name()))
    })?;
    let scheme = decoded.scheme();
    if scheme == Scheme::Kasa {
        return Err(Problem::of(
            "unsupported_scheme",
            "this is a Kasa store's code: pay it with POST /v1/me/qr-payments",
        ));
    }
    let currency = decoded
        .currency()
        .filter(|c| *c != Currency::KRW)
        .ok_or_else(|| Problem::of("unsupported_scheme", "the code is in won or in a currency Kasa does not know"))?;
    let amount = match decoded.amount() {
        Some(text) => {
            Some(minor_of(text, currency).ok_or_else(|| Problem::of("invalid_qr", "the code's amount is not valid"))?)
        }
        None => None,
    };
    let name = decoded
        .merchant_name()
        .and_then(|n| ForeignText::new(n).ok())
        .ok_or_else(|| Problem::of("invalid_qr", "the code names no merchant"))?;
    Ok(Foreign {
        scheme,
        currency,
        amount,
        name,
        city: decoded.text(60).and_then(|c| ForeignText::new(c).ok()),
        code: CodeText::new(payload).map_err(|e| Problem::of("invalid_qr", e))?,
    })
}

/// The partner that accepts `scheme` and takes calls (the first registered).
async fn partner_for(app: &AppState, scheme: Scheme) -> Result<u64, Problem> {
    app.engine
        .read(move |s| {
            s.partners()
                .partners()
                .find(|p| {
                    p.status == kasa_core::partner::PartnerStatus::Active
                        && p.endpoint.is_some()
                        && p.accepts.contains(scheme)
                })
                .map(|p| p.id)
        })
        .await?
        .ok_or_else(|| Problem::of("unsupported_scheme", format!("no partner network takes {} codes", scheme.name())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverseasQuoteInput {
    /// The code as scanned.
    payload: String,
    /// The amount in the merchant's currency, as a decimal (`"23.72"`), if the code states
    /// none.
    amount: Option<String>,
}

/// What the user is shown before paying abroad.
#[derive(Serialize, ToSchema)]
pub(crate) struct OverseasQuoteOutput {
    object: &'static str,
    /// Name it in the payment.
    quote_id: String,
    /// The partner network that pays the merchant.
    partner_id: String,
    /// The code's scheme (`unionpay`, ...).
    scheme: &'static str,
    merchant_name: String,
    merchant_city: Option<String>,
    /// In the merchant's currency.
    amount: MoneyIo,
    /// What the user pays.
    krw_amount: MoneyIo,
    /// Won per unit of the merchant's currency, spread included.
    rate: String,
    expires_at: Rfc3339,
}

/// Quotes a payment at a partner's merchant abroad: both amounts, for two minutes.
#[utoipa::path(post, path = "/v1/me/overseas-payments/quote", tag = "overseas", request_body = OverseasQuoteInput,
    responses((status = 201, description = "the quote", body = OverseasQuoteOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn quote_overseas(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let (_, token_hash) = super::authenticate(&app, &headers).await?;
    let input: OverseasQuoteInput = object(&body)?;
    let code = read(&input.payload)?;
    let amount = match (code.amount, input.amount) {
        (Some(a), _) => a,
        (None, Some(text)) => minor_of(&text, code.currency).ok_or_else(|| {
            Problem::invalid_field(format!(
                "amount: a decimal in {} with at most {} decimals",
                code.currency,
                code.currency.minor_units()
            ))
        })?,
        (None, None) => return Err(Problem::invalid_field("amount: the code states none: give it")),
    };
    let partner_id = partner_for(&app, code.scheme).await?;
    let command = Command::CreateQuote {
        partner_id,
        sell: Currency::KRW,
        buy: code.currency,
        side: Side::Buy(amount),
        expires_in_seconds: QUOTE_SECONDS,
    };
    match app.partner(KeyScope::Session(token_hash), command).await? {
        Outcome::QuoteCreated(Ok(q)) => Ok((
            StatusCode::CREATED,
            Json(OverseasQuoteOutput {
                object: "overseas_quote",
                quote_id: ids::format("qt", q.id),
                partner_id: ids::format("ptn", partner_id),
                scheme: code.scheme.name(),
                merchant_name: code.name.as_str().into(),
                merchant_city: code.city.map(|c| c.as_str().into()),
                amount: MoneyIo::of(code.currency, q.buy_amount),
                krw_amount: MoneyIo::of(Currency::KRW, q.sell_amount),
                // Won per unit bought: the inverse of the quote's (won sold per unit).
                rate: won_per_unit(q.sell_amount, q.buy_amount, code.currency),
                expires_at: Rfc3339(q.expires_at),
            }),
        )
            .into_response()),
        Outcome::QuoteCreated(Err(e)) => Err(super::partners::fx_refused(e)),
        other => Err(Problem::internal(format!("a quote answered {other:?}"))),
    }
}

/// Won per major unit of `currency`, as the two amounts say, to 4 decimals (for reading).
fn won_per_unit(won: Amount, foreign: Amount, currency: Currency) -> String {
    let scale = 10u128.pow(u32::from(currency.minor_units()));
    let ten_thousandths = u128::from(won.minor()) * scale * 10_000 / u128::from(foreign.minor().max(1));
    format!("{}.{:04}", ten_thousandths / 10_000, ten_thousandths % 10_000)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverseasPayInput {
    /// The code as scanned (again: what the partner is asked to pay).
    payload: String,
    /// The quote the user was shown.
    quote_id: String,
    /// The amount in the merchant's currency, as quoted, if the code states none.
    amount: Option<String>,
    /// The PIN, when the amount is over the PIN-free budget.
    pin: Option<String>,
}

/// A payment abroad.
#[derive(Serialize, ToSchema)]
pub(crate) struct OverseasPaymentOutput {
    /// `op_` and a number.
    id: String,
    object: &'static str,
    /// `pending` (the partner is asked), `succeeded` or `failed` (the money went back).
    status: &'static str,
    partner_id: String,
    merchant_name: String,
    merchant_city: Option<String>,
    amount: MoneyIo,
    krw_amount: MoneyIo,
    /// Refunded from abroad so far, in the merchant's currency, and in won.
    refunded: MoneyIo,
    krw_refunded: MoneyIo,
    /// Every step of the call to the partner: `{step, at}`.
    #[schema(value_type = Vec<Object>)]
    timeline: Vec<serde_json::Value>,
    created_at: Rfc3339,
}

impl From<&OverseasPayment> for OverseasPaymentOutput {
    fn from(p: &OverseasPayment) -> Self {
        OverseasPaymentOutput {
            id: ids::format("op", p.id),
            object: "overseas_payment",
            status: p.status.name(),
            partner_id: ids::format("ptn", p.partner_id),
            merchant_name: p.merchant_name.as_str().into(),
            merchant_city: p.merchant_city.as_ref().map(|c| c.as_str().into()),
            amount: MoneyIo::of(p.currency, p.amount),
            krw_amount: MoneyIo::of(Currency::KRW, p.krw_amount),
            refunded: MoneyIo::of(p.currency, p.refunded),
            krw_refunded: MoneyIo::of(Currency::KRW, p.krw_refunded),
            timeline: p
                .steps
                .iter()
                .map(|(at, step)| serde_json::json!({"step": step.name(), "at": Rfc3339(*at).to_string()}))
                .collect(),
            created_at: Rfc3339(p.created_at),
        }
    }
}

fn refused(e: OverseasError) -> Problem {
    match e {
        OverseasError::SessionInvalid => Problem::session_required(),
        OverseasError::PartnerUnavailable => {
            Problem::of("unsupported_scheme", "no partner network takes this code now")
        }
        OverseasError::UnknownQuote => Problem::invalid_field("quote_id: no such quote for this code and amount"),
        OverseasError::QuoteExpired => Problem::of("quote_expired", "the quote expired: quote again"),
        OverseasError::Funding(f) => super::errors::funding(f),
        OverseasError::UnknownPayment => Problem::not_found("no such payment abroad"),
        OverseasError::WrongStatus { status } => {
            Problem::of("invalid_state", format!("the payment abroad is {}", status.name()))
        }
        OverseasError::AmountTooLarge { max } => {
            Problem::of("amount_too_large", format!("at most {} is left to refund", max.minor()))
        }
        OverseasError::InvalidAmount => Problem::invalid_field("the amount is zero or in another currency"),
        OverseasError::TooManyRefunds => Problem::of("too_many_refunds", "a payment has at most 100 refunds"),
        OverseasError::WalletFull => Problem::of(
            "recipient_cannot_receive",
            "the user's wallet is at the legal maximum: try the refund again later",
        ),
        OverseasError::RefundIdReused => {
            Problem::of("repeat_request_inconsistent", "the refund request id was used for another refund")
        }
    }
}

/// Pays a quote at a partner's merchant abroad. The money is reserved at once; the payment is
/// `pending` until the partner answers (see its `timeline`).
#[utoipa::path(post, path = "/v1/me/overseas-payments", tag = "overseas", request_body = OverseasPayInput,
    responses((status = 201, description = "the payment, pending", body = OverseasPaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn pay_overseas(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let token_hash = super::session_token_hash(&headers).ok_or_else(Problem::session_required)?;
    let input: OverseasPayInput = object(&body)?;
    let code = read(&input.payload)?;
    let quote_id = ids::parse("qt", &input.quote_id, "").map_err(|_| Problem::invalid_field("quote_id: qt_..."))?;
    let amount = match (code.amount, input.amount) {
        (Some(a), _) => a,
        (None, Some(text)) => {
            minor_of(&text, code.currency).ok_or_else(|| Problem::invalid_field("amount: as quoted"))?
        }
        (None, None) => return Err(Problem::invalid_field("amount: the code states none: give it as quoted")),
    };
    let partner_id = partner_for(&app, code.scheme).await?;
    let pin_ok = super::session_pin_verdict(&app, &headers, input.pin).await?;
    let request = PayOverseasRequest {
        partner_id,
        scheme_bit: code.scheme.bit(),
        code: code.code,
        merchant_name: code.name,
        merchant_city: code.city,
        currency: code.currency,
        amount,
        quote_id,
    };
    let command = Command::PayOverseas { token_hash, request: Box::new(request), pin_ok };
    match app.partner(KeyScope::Session(token_hash), command).await? {
        Outcome::OverseasPaid(Ok(p)) => {
            Ok((StatusCode::CREATED, Json(OverseasPaymentOutput::from(&p))).into_response())
        }
        Outcome::OverseasPaid(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a payment abroad answered {other:?}"))),
    }
}

/// One of the user's payments abroad, with its timeline.
#[utoipa::path(get, path = "/v1/me/overseas-payments/{id}", tag = "overseas", params(("id" = String, Path, description = "op_...")),
    responses((status = 200, description = "the payment", body = OverseasPaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get_overseas(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let (user_id, _) = super::authenticate(&app, &headers).await?;
    let id = ids::parse("op", &raw, "no such payment abroad")?;
    let payment = app
        .engine
        .read(move |s| {
            s.partners().overseas_payment(id).filter(|p| p.user_id == user_id).map(OverseasPaymentOutput::from)
        })
        .await?;
    payment.map(|p| Json(p).into_response()).ok_or_else(|| Problem::not_found("no such payment abroad"))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OverseasRefundInput {
    /// The partner's id of the refund: a repeat is answered with the first result.
    refund_request_id: String,
    /// Kasa's `paymentRequestId` of the payment (`kasa-op-...`).
    payment_request_id: String,
    /// In the merchant's currency.
    refund_amount: MoneyIo,
}

/// The partner refunds a Kasa user's payment abroad: the won go back to the wallet at the
/// payment's rate.
#[utoipa::path(post, path = "/v1/partner/overseas/refund", tag = "partner API", request_body = OverseasRefundInput,
    responses((status = 200, description = "the refund (result S) or result F", body = Object),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("partner_signature" = [])))]
pub async fn partner_overseas_refund(
    State(app): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let partner_id = partner(&app, "POST", uri.path(), &headers, &body).await?;
    let input: OverseasRefundInput = object(&body)?;
    let payment_id = input
        .payment_request_id
        .strip_prefix("kasa-op-")
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| Problem::invalid_field("paymentRequestId: Kasa's kasa-op-..."))?;
    let currency = super::partners::currency(&input.refund_amount.currency, "refundAmount.currency")?;
    let amount = Amount::parse_minor(&input.refund_amount.value)
        .ok_or_else(|| Problem::invalid_field("refundAmount.value: minor units as a string"))?;
    let refund_request_id =
        RequestId::new(input.refund_request_id).map_err(|e| Problem::invalid_field(format!("refundRequestId: {e}")))?;
    let request = OverseasRefundRequest { partner_id, refund_request_id, payment_id, currency, amount };
    let answer = match app.partner_unkeyed(Command::RefundOverseas(Box::new(request))).await? {
        Outcome::OverseasRefunded(Ok(r)) => serde_json::json!({
            "result": {"resultStatus": "S", "resultCode": "SUCCESS", "resultMessage": "success"},
            "refundId": ids::format("orf", r.refund.id),
            "paymentRequestId": r.payment.request_id(),
            "refundAmount": MoneyIo::of(r.payment.currency, r.refund.amount),
            "krwAmount": MoneyIo::of(Currency::KRW, r.refund.krw_amount),
            "refundTime": Rfc3339(r.refund.created_at).to_string(),
        }),
        Outcome::OverseasRefunded(Err(e)) => {
            let problem = refused(e);
            serde_json::json!({"result": {"resultStatus": "F", "resultCode": problem.code.to_ascii_uppercase(), "resultMessage": problem.detail},
                "paymentRequestId": input.payment_request_id})
        }
        other => return Err(Problem::internal(format!("a refund from abroad answered {other:?}"))),
    };
    Ok(super::partner_api::signed(&app, uri.path(), partner_id, StatusCode::OK, &answer))
}
