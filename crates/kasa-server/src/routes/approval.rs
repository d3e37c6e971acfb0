//! A wallet user's side of a merchant's payment: see it (merchant, store, item, amount) and
//! approve or decline it, from the merchant's approval link (`/pay/pay_12?token=...`). The
//! token in the link is what lets a user see a payment that waits for approval: payment ids
//! are sequential, so without it any logged-in user could read or decline anyone's. Once
//! approved, the payment is the approving user's to see without it.
//!
//! An approval is one command, resolved in the same step as its effect: the session, the
//! payment, the PIN (or the PIN-free budget), the daily limit and the funds, then the money
//! (see `kasa_core::merchant::approval`). A retry with the same Idempotency-Key answers as the
//! first did.

use super::{authenticate, errors, pin_verdict, query_pairs};
use crate::body::object;
use crate::ids;
use crate::json::{amount, Rfc3339};
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::idempotency::KeyScope;
use kasa_core::merchant::{AnswerError, AnsweredPayment, Command, Outcome};
use kasa_core::wallet::WALLET_CURRENCY;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A payment as a wallet user sees it: whose, what, how much, where it stands.
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
    /// `requires_approval`, `requires_capture`, `succeeded` or `canceled`.
    status: &'static str,
    /// Why it was canceled.
    cancel_reason: Option<&'static str>,
    /// What was paid (0 until the capture).
    amount_captured: String,
    /// What the merchant refunded.
    amount_refunded: String,
    /// Until when it can be approved.
    expires_at: Rfc3339,
    /// Where the merchant asked the user to be sent back after answering.
    return_url: Option<String>,
}

impl From<&AnsweredPayment> for MyPaymentOutput {
    fn from(v: &AnsweredPayment) -> Self {
        let p = &v.payment;
        MyPaymentOutput {
            id: ids::format("pay", p.id),
            object: "payment",
            merchant_name: v.merchant_name.as_str().to_string(),
            store_name: v.store_name.as_ref().map(|s| s.as_str().to_string()),
            item_name: p.item_name.as_str().to_string(),
            amount: amount(p.amount),
            currency: WALLET_CURRENCY.code(),
            status: p.status.name(),
            cancel_reason: p.cancel_reason.map(|r| r.name()),
            amount_captured: amount(p.captured),
            amount_refunded: amount(p.refunded),
            expires_at: Rfc3339(p.expires_at),
            return_url: p.return_url.as_ref().map(|u| u.as_str().to_string()),
        }
    }
}

/// The payment `id` as user `user_id` may see it: with the link's `token` while it waits
/// for approval, or as the user who approved it. `None` otherwise (a 404 to the caller).
pub(crate) async fn payment_for_user(
    app: &AppState,
    id: u64,
    user_id: Option<u64>,
    token: Option<&str>,
) -> Result<Option<AnsweredPayment>, Problem> {
    let has_token = token.is_some_and(|t| app.keys.approval_token_matches(id, t));
    app.engine
        .read(move |s| {
            let m = s.merchants();
            // A partner's payment keeps the partner in `user_id`: it is no wallet user's.
            let p = m.payment(id).filter(|p| p.channel != kasa_core::merchant::Channel::Partner)?;
            let approver = p.user_id != 0 && Some(p.user_id) == user_id;
            let linked = has_token && (p.user_id == 0 || approver);
            if !(approver || linked) {
                return None;
            }
            Some(m.answered(p.clone()))
        })
        .await
        .map_err(Problem::from)
}

/// A payment, as a logged-in wallet user sees it: before approving it, with the `token` of
/// the merchant's approval link; after approving it, as its payer. Anything else is `404`.
#[utoipa::path(get, path = "/v1/me/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "the payment's id, pay_..."), ("token" = Option<String>, Query, description = "the token of the approval link")),
    responses((status = 200, description = "the payment", body = MyPaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get_my_payment(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let id = ids::parse("pay", &raw, "no such payment")?;
    let token = query_pairs(query.as_deref(), &["token"])?.first().map(|(_, v)| v.to_string());
    let found = payment_for_user(&app, id, Some(user_id), token.as_deref()).await?;
    found.map(|v| Json(MyPaymentOutput::from(&v)).into_response()).ok_or_else(|| Problem::not_found("no such payment"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveInput {
    /// The token of the merchant's approval link.
    token: String,
    /// Needed beyond the PIN-free budget of the last 24 hours.
    #[serde(default)]
    pin: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeclineInput {
    /// The token of the merchant's approval link.
    token: String,
}

/// The problem for a refused answer.
pub(crate) fn answer_error(e: AnswerError) -> Problem {
    match e {
        AnswerError::SessionInvalid => Problem::session_required(),
        AnswerError::Funding(f) => errors::funding(f),
        AnswerError::Payment(kasa_core::merchant::PaymentError::UnknownPayment) => {
            Problem::not_found("no such payment")
        }
        AnswerError::Payment(kasa_core::merchant::PaymentError::WrongStatus { status }) => {
            Problem::of("invalid_state", format!("the payment is {} already", status.name()))
        }
        AnswerError::Payment(kasa_core::merchant::PaymentError::Expired) => {
            Problem::of("invalid_state", "the payment expired")
        }
        AnswerError::Payment(kasa_core::merchant::PaymentError::MerchantNotActive { status }) => {
            Problem::of("merchant_not_active", format!("the merchant is {}", status.name()))
        }
        AnswerError::Payment(other) => Problem::internal(format!("an answer was refused with {other:?}")),
    }
}

/// Sends a user's answer: the payment after it, or the core's refusal.
pub(crate) async fn answer(
    app: &AppState,
    token_hash: [u8; 32],
    payment_id: u64,
    approve: bool,
    pin_ok: Option<bool>,
) -> Result<Result<AnsweredPayment, AnswerError>, Problem> {
    let command = Command::AnswerPayment { token_hash, payment_id, approve, pin_ok };
    match app.merchant(KeyScope::Session(token_hash), command).await? {
        Outcome::PaymentAnswered(r) => Ok(r),
        other => Err(Problem::internal(format!("an answer answered {other:?}"))),
    }
}

/// Answers payment `payment_id` as the user of session `token_hash`, whose link's token the
/// caller checked: approves it (with the PIN if `approve` holds one, checked here off the
/// sequencer) or, with `approve` `None`, declines it. The one way both the API and the
/// approval page answer a payment.
pub(crate) async fn answer_as(
    app: &AppState,
    user_id: u64,
    token_hash: [u8; 32],
    payment_id: u64,
    approve: Option<Option<String>>,
) -> Result<Result<AnsweredPayment, AnswerError>, Problem> {
    match approve {
        Some(pin) => {
            let pin_ok = pin_verdict(app, user_id, pin).await?;
            answer(app, token_hash, payment_id, true, pin_ok).await
        }
        None => answer(app, token_hash, payment_id, false, None).await,
    }
}

/// Answers payment `raw` from its link's `token` as the session's user: approves it (with
/// the PIN if `approve` holds one) or, with `approve` `None`, declines it.
async fn answer_from_link(
    app: &AppState,
    headers: &HeaderMap,
    raw: &str,
    token: &str,
    approve: Option<Option<String>>,
) -> Result<Response, Problem> {
    let token_hash = super::session_token_hash(headers).ok_or_else(Problem::session_required)?;
    let payment_id = ids::parse("pay", raw, "no such payment")?;
    if !app.keys.approval_token_matches(payment_id, token) {
        return Err(Problem::not_found("no such payment"));
    }
    // The session is resolved in the answer's own command (one trip to the sequencer); only
    // a PIN needs the user first, to check it against the user's hash off the sequencer.
    let user_id = match &approve {
        Some(Some(_)) => authenticate(app, headers).await?.0,
        _ => 0,
    };
    let a = answer_as(app, user_id, token_hash, payment_id, approve).await?.map_err(answer_error)?;
    Ok(Json(MyPaymentOutput::from(&a)).into_response())
}

/// Approves a payment from the merchant's approval link: the money is paid (automatic
/// capture, `succeeded`) or reserved for the merchant's capture (`requires_capture`). The PIN
/// is needed above what is left of the PIN-free budget; the daily limit applies.
#[utoipa::path(post, path = "/v1/me/payments/{id}/approve", tag = "payments", request_body = ApproveInput,
    params(("id" = String, Path, description = "the payment's id, pay_...")),
    responses((status = 200, description = "the approved payment", body = MyPaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn approve_payment(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: ApproveInput = object(&body)?;
    answer_from_link(&app, &headers, &raw, &input.token, Some(input.pin)).await
}

/// Declines a payment from the merchant's approval link: it is `canceled` (`declined`) and
/// nothing is paid. No PIN is needed.
#[utoipa::path(post, path = "/v1/me/payments/{id}/decline", tag = "payments", request_body = DeclineInput,
    params(("id" = String, Path, description = "the payment's id, pay_...")),
    responses((status = 200, description = "the declined payment", body = MyPaymentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn decline_payment(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: DeclineInput = object(&body)?;
    answer_from_link(&app, &headers, &raw, &input.token, None).await
}
