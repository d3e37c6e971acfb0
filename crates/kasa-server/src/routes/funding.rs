//! Linked bank accounts, top-ups and withdrawals for the logged-in user. A top-up or
//! withdrawal answers `201` with status `pending` as soon as the money is reserved; the bank
//! rail (an outbox consumer) asks the bank and settles it (`GET` then shows `succeeded`,
//! `declined` or `expired`).
//!
//! Account numbers are sealed here, before a command exists (see `crypto.rs`): the core, the
//! journal and snapshots only ever see the ciphertext, its keyed hash and the last four digits.

use super::errors;
use super::{authenticate, parse_object_id, pin_verdict};
use crate::body::object;
use crate::json::{check_currency, AmountInput, Page};
use crate::problem::Problem;
use crate::render::{BankAccountOutput, FundingOutput};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::idempotency::KeyScope;
use kasa_core::wallet::{BankCode, Command, FundingKind, Name, Outcome, SealedAccountNumber, WALLET_CURRENCY};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkInput {
    /// The 3-digit Korean bank code (004 KB Kookmin, 088 Shinhan, ...).
    bank_code: String,
    /// 10 to 16 digits; hyphens and spaces are ignored.
    account_number: String,
    /// The name on the account.
    holder_name: String,
}

/// A bank account as a request gives it, checked, with its number sealed at once.
pub(crate) fn bank_account(app: &AppState, input: LinkInput) -> Result<(BankCode, SealedAccountNumber, Name), Problem> {
    let bank_code = BankCode::new(input.bank_code).map_err(|e| Problem::of("invalid_field", e))?;
    let digits: String = input.account_number.chars().filter(|c| *c != '-' && *c != ' ').collect();
    if !(10..=16).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::invalid_field("an account number is 10 to 16 digits"));
    }
    let holder_name = Name::new(input.holder_name).map_err(|e| Problem::of("invalid_name", e))?;
    let account_number = app.keys.seal(&bank_code, &digits).map_err(Problem::internal)?;
    Ok((bank_code, account_number, holder_name))
}

/// Links a bank account (at most 5 per user).
#[utoipa::path(post, path = "/v1/me/bank-accounts", tag = "funding", request_body = LinkInput,
    responses((status = 201, description = "the linked account", body = BankAccountOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn link_bank_account(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let (user_id, hash) = authenticate(&app, &headers).await?;
    let input: LinkInput = object(&body)?;
    let (bank_code, account_number, holder_name) = bank_account(&app, input)?;
    let command = Command::LinkBankAccount { user_id, bank_code, account_number, holder_name };
    match app.wallet(KeyScope::Session(hash), command).await? {
        Outcome::BankAccountLinked(Ok(view)) => {
            Ok((StatusCode::CREATED, Json(BankAccountOutput::from(&view))).into_response())
        }
        Outcome::BankAccountLinked(Err(e)) => Err(errors::link(e)),
        other => Err(Problem::internal(format!("a link answered {other:?}"))),
    }
}

/// The user's bank accounts, oldest first (at most 5: one page).
#[utoipa::path(get, path = "/v1/me/bank-accounts", tag = "funding",
    responses((status = 200, description = "the user's bank accounts", body = Page<BankAccountOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn list_bank_accounts(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let data = app
        .engine
        .read(move |s| {
            s.wallets().bank_accounts_of(user_id).map(|b| BankAccountOutput::from(&b.view())).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(Page::new(data, None)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FundingInput {
    bank_account_id: String,
    /// Won, a decimal string.
    amount: AmountInput,
    /// `KRW` (the default).
    #[serde(default)]
    currency: Option<String>,
    /// For a withdrawal beyond the PIN-free budget.
    #[serde(default)]
    pin: Option<String>,
}

async fn start(app: AppState, headers: HeaderMap, body: Bytes, kind: FundingKind) -> Result<Response, Problem> {
    let (user_id, hash) = authenticate(&app, &headers).await?;
    let input: FundingInput = object(&body)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    let bank_account_id = parse_object_id(&input.bank_account_id)
        .map_err(|_| Problem::invalid_field("bank_account_id is the id of one of your bank accounts"))?;
    let pin_ok = pin_verdict(&app, user_id, input.pin).await?;
    let command = Command::StartFunding { user_id, bank_account_id, kind, amount: input.amount.0, pin_ok };
    match app.wallet(KeyScope::Session(hash), command).await? {
        Outcome::FundingStarted(Ok(view)) => {
            Ok((StatusCode::CREATED, Json(FundingOutput::from(&view))).into_response())
        }
        Outcome::FundingStarted(Err(e)) => Err(errors::funding(e)),
        other => Err(Problem::internal(format!("a funding answered {other:?}"))),
    }
}

/// Tops the wallet up from a linked bank account: reserved at once, settled by the bank.
#[utoipa::path(post, path = "/v1/me/top-ups", operation_id = "create_top_up", tag = "funding", request_body = FundingInput,
    responses((status = 201, description = "the top-up, pending", body = FundingOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn top_up(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    start(app, headers, body, FundingKind::TopUp).await
}

/// Withdraws to a linked bank account (with the fee in force): reserved at once, settled by
/// the bank.
#[utoipa::path(post, path = "/v1/me/withdrawals", operation_id = "create_withdrawal", tag = "funding", request_body = FundingInput,
    responses((status = 201, description = "the withdrawal, pending", body = FundingOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn withdraw(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    start(app, headers, body, FundingKind::Withdrawal).await
}

async fn get_funding(app: AppState, headers: HeaderMap, raw: String, kind: FundingKind) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let found = app
        .engine
        .read(move |s| {
            let f = s.wallets().funding(id)?;
            // Another user's funding is as good as absent.
            (f.user_id == user_id && f.kind == kind).then(|| FundingOutput::from(&f.view()))
        })
        .await?;
    found
        .map(|f| Json(f).into_response())
        .ok_or_else(|| Problem::not_found(format!("no such {} of yours", kind.name().replace('_', "-"))))
}

/// One of the user's top-ups.
#[utoipa::path(get, path = "/v1/me/top-ups/{id}", tag = "funding", params(("id" = String, Path, description = "the top-up's id")),
    responses((status = 200, description = "the top-up", body = FundingOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get_top_up(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    get_funding(app, headers, raw, FundingKind::TopUp).await
}

/// One of the user's withdrawals.
#[utoipa::path(get, path = "/v1/me/withdrawals/{id}", tag = "funding", params(("id" = String, Path, description = "the withdrawal's id")),
    responses((status = 200, description = "the withdrawal", body = FundingOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get_withdrawal(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    get_funding(app, headers, raw, FundingKind::Withdrawal).await
}
