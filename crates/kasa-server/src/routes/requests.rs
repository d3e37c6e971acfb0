//! Money requests and split bills (Dutch pay).

use crate::json::Dec64;
use crate::problem::Problem;
use crate::routes::ledger::read_body;
use crate::routes::remittance::send_problem;
use crate::routes::users::{authenticate_user, now_nanos, page_parameter, parse_json, parse_object_id, pin_verdict};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::wallet::{MoneyRequest, Recipient, RequestError, RequestRole, WalletOutcome};
use kasa_core::{Command, Outcome};
use serde::{Deserialize, Serialize};

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RequestOutput {
    id: String,
    object: &'static str,
    status: &'static str,
    amount: Dec64,
    currency: &'static str,
    memo: String,
    requester_user_id: String,
    payer_user_id: String,
    transfer_id: Option<String>,
    split_bill_id: Option<String>,
    created_at: Dec64,
    expires_at: Dec64,
}

fn output(r: &MoneyRequest, now: u64) -> RequestOutput {
    RequestOutput {
        id: r.id.to_string(),
        object: "money_request",
        status: r.status_at(now),
        amount: Dec64(r.amount),
        currency: "KRW",
        memo: r.memo.clone(),
        requester_user_id: r.requester.to_string(),
        payer_user_id: r.payer.to_string(),
        transfer_id: (r.remittance_id != 0).then(|| r.remittance_id.to_string()),
        split_bill_id: (r.split_bill_id != 0).then(|| r.split_bill_id.to_string()),
        created_at: Dec64(r.created_at),
        expires_at: Dec64(r.expires_at()),
    }
}

fn request_problem(error: RequestError) -> Problem {
    let detail = error.to_string();
    match error {
        RequestError::UnknownUser => {
            Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required", detail)
        }
        RequestError::UnknownPayer => Problem::not_found(detail),
        RequestError::ToSelf => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "to_self", "A request goes to someone else", detail)
        }
        RequestError::InvalidAmount(_) | RequestError::InvalidMemo => Problem::invalid_field(detail),
        RequestError::NotFound => Problem::not_found("no such money request of yours"),
        RequestError::NotPending(_) => {
            Problem::new(StatusCode::CONFLICT, "not_pending", "The request was answered or expired", detail)
        }
        RequestError::Payment(e) => send_problem(e),
    }
}

fn recipient(phone: Option<String>, user_id: Option<String>) -> Result<Recipient, Problem> {
    match (phone, user_id) {
        (Some(p), None) => Ok(Recipient::Phone(p)),
        (None, Some(id)) => {
            Ok(Recipient::User(id.parse().map_err(|_| Problem::invalid_field(format!("'{id}' is not a user id")))?))
        }
        _ => Err(Problem::invalid_field("give exactly one of a phone number and a user id")),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestInput {
    #[serde(default)]
    from_phone: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    amount: u64,
    #[serde(default)]
    memo: String,
}

/// `POST /v1/money-requests`: `{"from_phone" | "from_user_id", "amount", "memo"?}`.
#[utoipa::path(post, path = "/v1/money-requests", operation_id = "create_money_request", tag = "requests", request_body = RequestInput, responses((status = 201, body = RequestOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn create(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let input: RequestInput = parse_json(&read_body(&headers, body).await?)?;
    let from = recipient(input.from_phone, input.from_user_id)?;
    let now = now_nanos(&app);
    let command = Command::RequestMoney { requester: user_id, from, amount: input.amount, memo: input.memo };
    let (outcome, found) = app
        .submit_then_read(command, move |s, outcome| {
            let Outcome::Wallet(WalletOutcome::MoneyRequested(Ok(id))) = outcome else { return None };
            s.wallets().requests().request(*id).map(|r| output(r, now))
        })
        .await?;
    match outcome {
        Outcome::Wallet(WalletOutcome::MoneyRequested(Ok(_))) => {
            Ok((StatusCode::CREATED, Json(found.expect("a request just made exists"))).into_response())
        }
        Outcome::Wallet(WalletOutcome::MoneyRequested(Err(e))) => Err(request_problem(e)),
        other => unreachable!("a money request answers with MoneyRequested, found {other:?}"),
    }
}

/// `GET /v1/money-requests`: the caller's money requests, newest first. `role` is `payer`
/// (the default: requests the caller was asked to pay) or `requester` (requests the caller
/// made); `status` keeps one status (`pending`, `paid`, `declined`, `expired`); `limit` (1 to
/// 100, default 20) and `cursor` (the previous page's `next_cursor`) page through them.
#[utoipa::path(get, path = "/v1/money-requests", operation_id = "list_money_requests", tag = "requests", params(("role" = Option<String>, Query, description = "payer (default) or requester"), ("status" = Option<String>, Query, description = "pending, paid, declined or expired"), ("limit" = Option<u32>, Query, description = "1 to 100"), ("cursor" = Option<String>, Query)), responses((status = 200, description = "a list of RequestOutput", body = Vec<RequestOutput>), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let (mut role, mut status, mut limit, mut before) = (RequestRole::Payer, None, 20usize, 0u64);
    for pair in query.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "role" => {
                role = match value {
                    "payer" => RequestRole::Payer,
                    "requester" => RequestRole::Requester,
                    _ => {
                        return Err(Problem::invalid_parameter(format!(
                            "role must be payer or requester, found '{value}'"
                        )))
                    }
                }
            }
            "status" => {
                status = Some(match value {
                    "pending" => "pending",
                    "paid" => "paid",
                    "declined" => "declined",
                    "expired" => "expired",
                    _ => {
                        return Err(Problem::invalid_parameter(format!(
                            "status must be pending, paid, declined or expired, found '{value}'"
                        )))
                    }
                })
            }
            "limit" | "cursor" => page_parameter(key, value, "mr_", &mut limit, &mut before)?,
            other => {
                return Err(Problem::invalid_parameter(format!(
                    "unknown parameter '{other}'; expected role, status, limit or cursor"
                )))
            }
        }
    }
    let now = now_nanos(&app);
    let (data, next_before) = app
        .engine
        .read(move |s| {
            let keep = |r: &MoneyRequest| status.is_none_or(|wanted| r.status_at(now) == wanted);
            let page = s.wallets().requests().list(user_id, role, before, limit, keep);
            (page.items.into_iter().map(|r| output(r, now)).collect::<Vec<_>>(), page.next_before)
        })
        .await?;
    // A filter that matches little may end a page early (the scan is bounded): keep paging
    // while `has_more`.
    let has_more = next_before.is_some();
    let next_cursor = next_before.map(|b| format!("mr_{b}"));
    Ok(Json(serde_json::json!({"object": "list", "data": data, "has_more": has_more, "next_cursor": next_cursor}))
        .into_response())
}

/// `GET /v1/money-requests/{id}`: for its requester or its payer.
#[utoipa::path(get, path = "/v1/money-requests/{id}", operation_id = "get_money_request", tag = "requests", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = RequestOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn get(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let now = now_nanos(&app);
    let found = app
        .engine
        .read(move |s| {
            let r = s.wallets().requests().request(id)?;
            (r.requester == user_id || r.payer == user_id).then(|| output(r, now))
        })
        .await?;
    found.map(|r| Json(r).into_response()).ok_or_else(|| Problem::not_found("no such money request of yours"))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayInput {
    #[serde(default)]
    pin: Option<String>,
}

async fn answer(app: AppState, headers: HeaderMap, body: Body, raw: String, pay: bool) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let body = read_body(&headers, body).await?;
    let input: PayInput =
        if body.iter().all(u8::is_ascii_whitespace) { PayInput::default() } else { parse_json(&body)? };
    let pin_ok = pin_verdict(&app, user_id, input.pin).await?;
    let now = now_nanos(&app);
    let command = Command::AnswerRequest { payer: user_id, request_id: id, pay, pin_ok };
    let (outcome, found) =
        app.submit_then_read(command, move |s, _| s.wallets().requests().request(id).map(|r| output(r, now))).await?;
    match outcome {
        Outcome::Wallet(WalletOutcome::RequestAnswered(Ok(()))) => {
            Ok(Json(found.expect("an answered request exists")).into_response())
        }
        Outcome::Wallet(WalletOutcome::RequestAnswered(Err(e))) => Err(request_problem(e)),
        other => unreachable!("an answer answers with RequestAnswered, found {other:?}"),
    }
}

/// `POST /v1/money-requests/{id}/pay`: `{"pin"?}`.
#[utoipa::path(post, path = "/v1/money-requests/{id}/pay", tag = "requests", request_body(content = Option<PayInput>), params(("id" = String, Path, description = "the object id")), responses((status = 200, body = RequestOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn pay(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    answer(app, headers, body, raw, true).await
}

/// `POST /v1/money-requests/{id}/decline`.
#[utoipa::path(post, path = "/v1/money-requests/{id}/decline", tag = "requests", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = RequestOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn decline(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    answer(app, headers, body, raw, false).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareInput {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    amount: Option<u64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SplitInput {
    total: u64,
    shares: Vec<ShareInput>,
    #[serde(default)]
    memo: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SplitOutput {
    id: String,
    object: &'static str,
    total: Dec64,
    currency: &'static str,
    memo: String,
    paid: usize,
    shares: Vec<RequestOutput>,
    created_at: Dec64,
}

fn split_output(s: &kasa_core::State, id: u64, now: u64) -> Option<SplitOutput> {
    let book = s.wallets().requests();
    let bill = book.bill(id)?;
    let shares: Vec<RequestOutput> =
        bill.request_ids.iter().filter_map(|&r| book.request(r)).map(|r| output(r, now)).collect();
    Some(SplitOutput {
        id: bill.id.to_string(),
        object: "split_bill",
        total: Dec64(bill.total),
        currency: "KRW",
        memo: bill.memo.clone(),
        paid: shares.iter().filter(|r| r.status == "paid").count(),
        shares,
        created_at: Dec64(bill.created_at),
    })
}

/// `POST /v1/split-bills`: `{"total", "shares": [{"phone" | "user_id", "amount"?}], "memo"?}`.
/// Without amounts the total is split equally among the friends and the requester (the
/// requester's own share is not requested); with amounts, they are used as given.
#[utoipa::path(post, path = "/v1/split-bills", tag = "requests", request_body = SplitInput, responses((status = 201, body = SplitOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn split(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let input: SplitInput = parse_json(&read_body(&headers, body).await?)?;
    if input.shares.is_empty() || input.shares.len() > kasa_core::wallet::requests::SHARES_MAX {
        return Err(Problem::invalid_field(format!(
            "shares must hold 1 to {} friends",
            kasa_core::wallet::requests::SHARES_MAX
        )));
    }
    let given = input.shares.iter().filter(|s| s.amount.is_some()).count();
    if given != 0 && given != input.shares.len() {
        return Err(Problem::invalid_field("give an amount for every share or for none"));
    }
    // Equal shares of a whole number of won: everyone (the requester included) owes
    // total / (n + 1), rounded down; the requester absorbs the remainder.
    let equal = input.total / (input.shares.len() as u64 + 1);
    let mut shares = Vec::with_capacity(input.shares.len());
    for share in input.shares {
        let amount = share.amount.unwrap_or(equal);
        shares.push((recipient(share.phone, share.user_id)?, amount));
    }
    let now = now_nanos(&app);
    let command = Command::SplitBill { requester: user_id, total: input.total, shares, memo: input.memo };
    let (outcome, found) = app
        .submit_then_read(command, move |s, outcome| {
            let Outcome::Wallet(WalletOutcome::BillSplit(Ok(id))) = outcome else { return None };
            split_output(s, *id, now)
        })
        .await?;
    match outcome {
        Outcome::Wallet(WalletOutcome::BillSplit(Ok(_))) => {
            Ok((StatusCode::CREATED, Json(found.expect("a split bill just made exists"))).into_response())
        }
        Outcome::Wallet(WalletOutcome::BillSplit(Err(e))) => Err(request_problem(e)),
        other => unreachable!("a split answers with BillSplit, found {other:?}"),
    }
}

/// `GET /v1/split-bills/{id}`: for its requester, with who has paid.
#[utoipa::path(get, path = "/v1/split-bills/{id}", tag = "requests", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = SplitOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn get_split(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let now = now_nanos(&app);
    let found = app
        .engine
        .read(move |s| {
            s.wallets().requests().bill(id).filter(|b| b.requester == user_id).and_then(|_| split_output(s, id, now))
        })
        .await?;
    found.map(|b| Json(b).into_response()).ok_or_else(|| Problem::not_found("no such split bill of yours"))
}
