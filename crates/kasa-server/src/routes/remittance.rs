//! Sending money to another user, by user id or phone number (`POST /v1/transfers`), or to a
//! number without a wallet (held for 48 hours), and cancelling a held one.

use crate::json::{Dec128, Dec64};
use crate::problem::Problem;
use crate::routes::funding::funding_problem;
use crate::routes::ledger::read_body;
use crate::routes::users::{
    authenticate_user, check_amount, parse_json, parse_object_id, pin_verdict, session_required, session_token_hash,
};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::wallet::{CancelError, Recipient, Remittance, SendError, WalletOutcome};
use kasa_core::{Command, Outcome};
use serde::{Deserialize, Serialize};

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RemittanceOutput {
    id: String,
    object: &'static str,
    status: &'static str,
    amount: Dec64,
    currency: &'static str,
    memo: String,
    from_user_id: String,
    to_user_id: Option<String>,
    to_phone: Option<String>,
    transfer_id: Dec128,
    created_at: Dec64,
}

fn output(state: &kasa_core::State, r: &Remittance) -> RemittanceOutput {
    let book = state.wallets().remittances();
    RemittanceOutput {
        id: r.id.to_string(),
        object: "transfer",
        status: book.status(state.ledger(), r).name(),
        amount: Dec64(r.amount),
        currency: "KRW",
        memo: r.memo.clone(),
        from_user_id: r.from_user.to_string(),
        to_user_id: r.to_user.map(|u| u.to_string()),
        to_phone: r.to_phone.as_ref().map(|p| p.masked()),
        transfer_id: Dec128(r.transfer_id()),
        created_at: Dec64(r.created_at),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendInput {
    #[serde(default)]
    to_phone: Option<String>,
    #[serde(default)]
    to_user_id: Option<String>,
    amount: u64,
    #[serde(default)]
    memo: String,
    #[serde(default)]
    pin: Option<String>,
}

/// The problem for a refused remittance (also used when paying a money request).
pub(crate) fn send_problem(error: SendError) -> Problem {
    let detail = error.to_string();
    match error {
        SendError::Funding(e) => funding_problem(e),
        SendError::UnknownRecipient => Problem::not_found("no user has this id"),
        SendError::InvalidPhone => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone", "The phone number is invalid", detail)
        }
        SendError::ToSelf => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "to_self", "A transfer goes to someone else", detail)
        }
        SendError::InvalidMemo => Problem::invalid_field(detail),
        SendError::RecipientLimit { value } => {
            let mut p =
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", "A limit would be exceeded", detail);
            // Which limit and its value, but not the recipient's room: that is their business.
            p.limit =
                Some(Box::new(crate::problem::LimitDetail { limit: "recipient_balance_cap", value, remaining: None }));
            p
        }
        SendError::UnknownUser => {
            Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required", detail)
        }
    }
}

/// `POST /v1/transfers`. Without a PIN (the common case) it is one trip to the sequencer: the
/// session is resolved inside the command, at its own event time. With a PIN, the user's PIN
/// hash is read first so that Argon2 can check it off the sequencer.
#[utoipa::path(post, path = "/v1/transfers", operation_id = "send_money", tag = "transfers", request_body = SendInput, responses((status = 201, body = RemittanceOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn send(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let token_hash = session_token_hash(&headers).ok_or_else(session_required)?;
    let input: SendInput = parse_json(&read_body(&headers, body).await?)?;
    let to = match (input.to_phone, input.to_user_id) {
        (Some(phone), None) => Recipient::Phone(phone),
        (None, Some(id)) => Recipient::User(
            id.parse().map_err(|_| Problem::invalid_field(format!("to_user_id '{id}' is not a user id")))?,
        ),
        _ => return Err(Problem::invalid_field("give exactly one of to_phone and to_user_id")),
    };
    check_amount(input.amount)?;
    let pin_ok = match input.pin {
        Some(pin) => pin_verdict(&app, authenticate_user(&app, &headers).await?, Some(pin)).await?,
        None => None,
    };
    let send = Command::Send { from_user: 0, to, amount: input.amount, memo: input.memo, pin_ok };
    let command = Command::AsSession { token_hash, command: Box::new(send) };
    let (outcome, rendered) = app
        .submit_then_read(command, move |s, outcome| {
            let Outcome::AsSession(Some(inner)) = outcome else { return None };
            let Outcome::Wallet(WalletOutcome::Sent(Ok(id))) = inner.as_ref() else { return None };
            s.wallets().remittances().remittance(*id).map(|r| output(s, r))
        })
        .await?;
    match outcome {
        Outcome::AsSession(None) => Err(session_required()),
        Outcome::AsSession(Some(inner)) => match *inner {
            Outcome::Wallet(WalletOutcome::Sent(Ok(_))) => {
                Ok((StatusCode::CREATED, Json(rendered.expect("a remittance that was just made exists")))
                    .into_response())
            }
            Outcome::Wallet(WalletOutcome::Sent(Err(error))) => Err(send_problem(error)),
            other => unreachable!("a send answers with Sent, found {other:?}"),
        },
        other => unreachable!("a session command answers with AsSession, found {other:?}"),
    }
}

/// `GET /v1/transfers/{id}`: for its sender or its recipient.
#[utoipa::path(get, path = "/v1/transfers/{id}", operation_id = "get_money_transfer", tag = "transfers", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = RemittanceOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn get(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let found = app
        .engine
        .read(move |s| {
            let r = s.wallets().remittances().remittance(id)?;
            (r.from_user == user_id || r.to_user == Some(user_id)).then(|| output(s, r))
        })
        .await?;
    found.map(|r| Json(r).into_response()).ok_or_else(|| Problem::not_found("no such transfer of yours"))
}

/// `POST /v1/transfers/{id}/cancel`: the sender takes back a held transfer.
#[utoipa::path(post, path = "/v1/transfers/{id}/cancel", operation_id = "cancel_money_transfer", tag = "transfers", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = RemittanceOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn cancel(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let command = Command::CancelRemittance { user_id, remittance_id: id };
    let (outcome, found) = app
        .submit_then_read(command, move |s, _| s.wallets().remittances().remittance(id).map(|r| output(s, r)))
        .await?;
    match outcome {
        Outcome::Wallet(WalletOutcome::RemittanceCancelled(Ok(()))) => {
            Ok(Json(found.expect("a cancelled remittance exists")).into_response())
        }
        Outcome::Wallet(WalletOutcome::RemittanceCancelled(Err(CancelError::NotFound))) => {
            Err(Problem::not_found("no such transfer of yours"))
        }
        Outcome::Wallet(WalletOutcome::RemittanceCancelled(Err(CancelError::NotHeld))) => Err(Problem::new(
            StatusCode::CONFLICT,
            "not_held",
            "Only a held transfer can be cancelled",
            "this transfer was delivered, returned or cancelled already",
        )),
        other => unreachable!("a cancel answers with RemittanceCancelled, found {other:?}"),
    }
}
