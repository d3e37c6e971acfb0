//! Linked bank accounts, top-ups and withdrawals for the logged-in user. A top-up or
//! withdrawal answers `201` with status `pending` as soon as the money is reserved; the bank's
//! answer settles it later (`GET` shows `succeeded`, `declined` or `expired`).

use crate::bank::BankRequest;
use crate::json::{Dec128, Dec64};
use crate::problem::Problem;
use crate::routes::ledger::read_body;
use crate::routes::users::{authenticate_user, check_amount, parse_json, parse_object_id, pin_verdict};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::wallet::{BankAccount, Funding, FundingError, FundingKind, LinkError, WalletOutcome};
use kasa_core::{Command, Outcome};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Times the answer of a bank is retried into a busy engine before it is left to time out.
const SETTLE_ATTEMPTS_MAX: u32 = 20;

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct BankAccountOutput {
    id: String,
    object: &'static str,
    bank_code: String,
    account_number: String,
    holder_name: String,
    created_at: Dec64,
}

impl From<&BankAccount> for BankAccountOutput {
    fn from(b: &BankAccount) -> Self {
        BankAccountOutput {
            id: b.id.to_string(),
            object: "bank_account",
            bank_code: b.bank_code.clone(),
            account_number: b.masked_number(),
            holder_name: b.holder_name.clone(),
            created_at: Dec64(b.created_at),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkInput {
    bank_code: String,
    account_number: String,
    holder_name: String,
}

/// `POST /v1/me/bank-accounts`.
#[utoipa::path(post, path = "/v1/me/bank-accounts", tag = "funding", request_body = LinkInput, responses((status = 201, body = BankAccountOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn link(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let input: LinkInput = parse_json(&read_body(&headers, body).await?)?;
    let command = Command::LinkBankAccount {
        user_id,
        bank_code: input.bank_code,
        account_number: input.account_number.replace('-', "").into(),
        holder_name: input.holder_name,
    };
    let (outcome, accounts) = app
        .submit_then_read(command, move |s, _| {
            s.wallets().funding().bank_accounts_of(user_id).map(BankAccountOutput::from).collect::<Vec<_>>()
        })
        .await?;
    match outcome {
        Outcome::Wallet(WalletOutcome::BankAccountLinked(Ok(id))) => {
            let account = accounts.into_iter().find(|a| a.id == id.to_string()).expect("a linked account is listed");
            Ok((StatusCode::CREATED, Json(account)).into_response())
        }
        Outcome::Wallet(WalletOutcome::BankAccountLinked(Err(error))) => {
            let (status, code) = match error {
                LinkError::AlreadyLinked => (StatusCode::CONFLICT, "already_linked"),
                LinkError::TooMany => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_bank_accounts"),
                LinkError::UnknownUser => (StatusCode::UNAUTHORIZED, "unauthorized"),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_bank_account"),
            };
            Err(Problem::new(status, code, "The bank account was not linked", error.to_string()))
        }
        other => unreachable!("linking answers with BankAccountLinked, found {other:?}"),
    }
}

/// `GET /v1/me/bank-accounts`.
#[utoipa::path(get, path = "/v1/me/bank-accounts", tag = "funding", responses((status = 200, description = "a list of BankAccountOutput", body = Vec<BankAccountOutput>), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn list_bank_accounts(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let data = app
        .engine
        .read(move |s| s.wallets().funding().bank_accounts_of(user_id).map(BankAccountOutput::from).collect::<Vec<_>>())
        .await?;
    Ok(Json(serde_json::json!({"object": "list", "data": data, "has_more": false})).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct FundingOutput {
    id: String,
    object: &'static str,
    status: &'static str,
    amount: Dec64,
    /// Kasa's fee, reserved with the amount and charged when the bank pays out (withdrawals).
    fee: Dec64,
    currency: &'static str,
    bank_account_id: String,
    transfer_id: Dec128,
    created_at: Dec64,
}

fn funding_output(state: &kasa_core::State, f: &Funding) -> FundingOutput {
    let book = state.wallets().funding();
    FundingOutput {
        id: f.id.to_string(),
        object: match f.kind {
            FundingKind::TopUp => "top_up",
            FundingKind::Withdrawal => "withdrawal",
        },
        status: book.status(state.ledger(), f).name(),
        amount: Dec64(f.amount),
        fee: Dec64(book.fee_charged(state.ledger(), f)),
        currency: "KRW",
        bank_account_id: f.bank_account_id.to_string(),
        transfer_id: Dec128(f.transfer_id()),
        created_at: Dec64(f.created_at),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FundingInput {
    bank_account_id: String,
    amount: u64,
    #[serde(default)]
    pin: Option<String>,
}

/// The problem for a refused funding (also used by remittances, which share its errors).
pub(crate) fn funding_problem(error: FundingError) -> Problem {
    let detail = error.to_string();
    match error {
        FundingError::LimitExceeded(limit) => {
            let mut p =
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", "A limit would be exceeded", detail);
            p.limit = Some(Box::new(crate::problem::LimitDetail {
                limit: limit.limit,
                value: limit.value,
                remaining: Some(limit.remaining),
            }));
            p
        }
        FundingError::InsufficientFunds => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds", "Insufficient funds", detail)
        }
        FundingError::PinRequired => {
            Problem::new(StatusCode::UNAUTHORIZED, "pin_required", "The PIN is required", detail)
        }
        FundingError::WrongPin { .. } => {
            Problem::new(StatusCode::UNAUTHORIZED, "wrong_pin", "The PIN is wrong", detail)
        }
        FundingError::PinLocked { .. } => Problem::new(StatusCode::LOCKED, "pin_locked", "PIN use is locked", detail),
        FundingError::UnknownBankAccount => Problem::not_found("no such bank account of yours"),
        FundingError::InvalidAmount => Problem::invalid_field("the amount must be a positive number of won"),
        FundingError::UnknownUser => {
            Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required", detail)
        }
        FundingError::Ledger(_) => {
            Problem::new(StatusCode::CONFLICT, "ledger_refused", "The ledger refused the movement", detail)
        }
    }
}

async fn start(app: AppState, headers: HeaderMap, body: Body, kind: FundingKind) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let input: FundingInput = parse_json(&read_body(&headers, body).await?)?;
    check_amount(input.amount)?;
    let bank_account_id: u64 = input
        .bank_account_id
        .parse()
        .map_err(|_| Problem::invalid_field(format!("bank_account_id '{}' is not an id", input.bank_account_id)))?;
    let pin_ok = pin_verdict(&app, user_id, input.pin).await?;
    let command = Command::StartFunding { user_id, bank_account_id, kind, amount: input.amount, pin_ok };
    let (outcome, found) = app
        .submit_then_read(command, move |s, outcome| {
            let Outcome::Wallet(WalletOutcome::FundingStarted(Ok(id))) = outcome else { return None };
            let book = s.wallets().funding();
            let funding = book.funding(*id)?;
            let bank_code = book.bank_account(funding.bank_account_id)?.bank_code.clone();
            Some((funding_output(s, funding), funding.id, bank_code))
        })
        .await?;
    match outcome {
        Outcome::Wallet(WalletOutcome::FundingStarted(Ok(id))) => {
            let (output, found_id, bank_code) = found.expect("a funding that just started exists");
            assert_eq!(found_id, id, "the newest funding of the user is the one just started");
            let request =
                BankRequest { funding_id: id, top_up: kind == FundingKind::TopUp, amount: input.amount, bank_code };
            tokio::spawn(ask_bank(app.clone(), request));
            Ok((StatusCode::CREATED, Json(output)).into_response())
        }
        Outcome::Wallet(WalletOutcome::FundingStarted(Err(error))) => Err(funding_problem(error)),
        other => unreachable!("a funding answers with FundingStarted, found {other:?}"),
    }
}

/// Asks the bank and turns its answer into a `SettleFunding` command. If the engine is busy,
/// tries again a few times; if it never gets through, the reservation times out.
async fn ask_bank(app: AppState, request: BankRequest) {
    let funding_id = request.funding_id;
    let Some(approved) = app.bank.request(request).await else {
        tracing::info!(funding_id, "the bank did not answer; the reservation will expire");
        return;
    };
    for attempt in 0..SETTLE_ATTEMPTS_MAX {
        match app.engine.submit(Command::SettleFunding { funding_id, approved }).await {
            Ok(_) => return,
            Err(kasa_engine::SubmitError::Busy) => {
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await
            }
            Err(error) => {
                tracing::warn!(funding_id, %error, "the bank's answer was not recorded; the reservation will expire");
                return;
            }
        }
    }
}

/// `POST /v1/me/top-ups`: `{"bank_account_id", "amount"}`.
#[utoipa::path(post, path = "/v1/me/top-ups", tag = "funding", request_body = FundingInput, responses((status = 201, body = FundingOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn top_up(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    start(app, headers, body, FundingKind::TopUp).await
}

/// `POST /v1/me/withdrawals`: `{"bank_account_id", "amount", "pin"?}`.
#[utoipa::path(post, path = "/v1/me/withdrawals", tag = "funding", request_body = FundingInput, responses((status = 201, body = FundingOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn withdraw(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    start(app, headers, body, FundingKind::Withdrawal).await
}

async fn get_funding(app: AppState, headers: HeaderMap, raw: String, kind: FundingKind) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let found = app
        .engine
        .read(move |s| {
            let f = s.wallets().funding().funding(id)?;
            // Another user's funding is as good as absent.
            (f.user_id == user_id && f.kind == kind).then(|| funding_output(s, f))
        })
        .await?;
    found.map(|f| Json(f).into_response()).ok_or_else(|| {
        Problem::not_found(format!(
            "no such {} of yours",
            match kind {
                FundingKind::TopUp => "top-up",
                FundingKind::Withdrawal => "withdrawal",
            }
        ))
    })
}

/// `GET /v1/me/top-ups/{id}`.
#[utoipa::path(get, path = "/v1/me/top-ups/{id}", tag = "funding", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = FundingOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn get_top_up(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    get_funding(app, headers, raw, FundingKind::TopUp).await
}

/// `GET /v1/me/withdrawals/{id}`.
#[utoipa::path(get, path = "/v1/me/withdrawals/{id}", tag = "funding", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = FundingOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn get_withdrawal(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    get_funding(app, headers, raw, FundingKind::Withdrawal).await
}
