//! Sending money to another user, by user id or phone number (`POST /v1/transfers`), or to a
//! number without a wallet (held for 48 hours), and cancelling a held one.

use super::errors;
use super::{authenticate, parse_object_id, pin_verdict, session_token_hash};
use crate::body::object;
use crate::json::{check_currency, AmountInput};
use crate::problem::Problem;
use crate::render::RemittanceOutput;
use crate::routes::users::parse_phone;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::idempotency::KeyScope;
use kasa_core::wallet::{Command, Memo, Outcome, Recipient, WALLET_CURRENCY};
use serde::Deserialize;
use utoipa::ToSchema;

/// A recipient from a request's `*_phone` or `*_user_id`, exactly one of them.
pub(crate) fn recipient(phone: Option<String>, user_id: Option<String>) -> Result<Recipient, Problem> {
    match (phone, user_id) {
        (Some(p), None) => Ok(Recipient::Phone(parse_phone(&p)?)),
        (None, Some(id)) => Ok(Recipient::User(
            parse_object_id(&id).map_err(|_| Problem::invalid_field("a user id is a decimal number"))?,
        )),
        _ => Err(Problem::invalid_field("give exactly one of a phone number and a user id")),
    }
}

/// A memo from a request (empty when absent).
pub(crate) fn memo(raw: Option<String>) -> Result<Memo, Problem> {
    Memo::new(raw.unwrap_or_default()).map_err(Problem::invalid_field)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendInput {
    #[serde(default)]
    to_phone: Option<String>,
    #[serde(default)]
    to_user_id: Option<String>,
    /// Won, a decimal string.
    amount: AmountInput,
    /// `KRW` (the default).
    #[serde(default)]
    currency: Option<String>,
    /// Up to 100 characters for the recipient.
    #[serde(default)]
    memo: Option<String>,
    /// Needed beyond the PIN-free budget of the last 24 hours.
    #[serde(default)]
    pin: Option<String>,
}

/// Sends money to a user (by id or phone) or to a number without a wallet (held 48 hours
/// for it). Without a PIN it is one trip to the sequencer: the session is resolved inside the
/// command, at its own event time.
#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", request_body = SendInput,
    responses((status = 201, description = "the transfer", body = RemittanceOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn send_money(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let token_hash = session_token_hash(&headers).ok_or_else(Problem::session_required)?;
    let input: SendInput = object(&body)?;
    let to = recipient(input.to_phone, input.to_user_id)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    let memo = memo(input.memo)?;
    let pin_ok = match input.pin {
        Some(pin) => pin_verdict(&app, authenticate(&app, &headers).await?.0, Some(pin)).await?,
        None => None,
    };
    let send = Command::Send { from_user: 0, to, amount: input.amount.0, memo, pin_ok };
    match app.as_session(token_hash, send).await? {
        Outcome::Sent(Ok(view)) => Ok((StatusCode::CREATED, Json(RemittanceOutput::from(&view))).into_response()),
        Outcome::Sent(Err(e)) => Err(errors::send(e)),
        other => Err(Problem::internal(format!("a send answered {other:?}"))),
    }
}

/// One transfer, for its sender or its recipient.
#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", params(("id" = String, Path, description = "the transfer's id")),
    responses((status = 200, description = "the transfer", body = RemittanceOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get_money_transfer(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let found = app
        .engine
        .read(move |s| {
            let r = s.wallets().remittance(id)?;
            (r.from_user == user_id || r.to_user == Some(user_id)).then(|| RemittanceOutput::from(&r.view(s.books())))
        })
        .await?;
    found.map(|r| Json(r).into_response()).ok_or_else(|| Problem::not_found("no such transfer of yours"))
}

/// The sender takes back a held transfer before the number signs up.
#[utoipa::path(post, path = "/v1/transfers/{id}/cancel", tag = "transfers", params(("id" = String, Path, description = "the transfer's id")),
    responses((status = 200, description = "the cancelled transfer", body = RemittanceOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn cancel_money_transfer(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let (user_id, hash) = authenticate(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    match app.wallet(KeyScope::Session(hash), Command::CancelRemittance { user_id, remittance_id: id }).await? {
        Outcome::RemittanceCancelled(Ok(view)) => Ok(Json(RemittanceOutput::from(&view)).into_response()),
        Outcome::RemittanceCancelled(Err(e)) => Err(errors::cancel(e)),
        other => Err(Problem::internal(format!("a cancel answered {other:?}"))),
    }
}
