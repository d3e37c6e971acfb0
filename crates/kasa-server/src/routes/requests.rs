//! Money requests and split bills (Dutch pay).

use super::errors;
use super::remittance::{memo, recipient};
use super::{authenticate, parse_cursor, parse_limit, parse_object_id, pin_verdict, query_pairs};
use crate::body::{object, object_or_default};
use crate::json::{check_currency, AmountInput, Page};
use crate::problem::Problem;
use crate::render::{RequestOutput, SplitBillOutput};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::idempotency::KeyScope;
use kasa_core::text::BoundedVec;
use kasa_core::wallet::{Command, MoneyRequest, Outcome, RequestRole, Share, SHARES_MAX, WALLET_CURRENCY};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestInput {
    #[serde(default)]
    from_phone: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    /// Won, a decimal string.
    amount: AmountInput,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    memo: Option<String>,
}

fn answer(outcome: Outcome) -> Result<Response, Problem> {
    match outcome {
        Outcome::MoneyRequested(Ok(view)) => {
            Ok((StatusCode::CREATED, Json(RequestOutput::from(&view))).into_response())
        }
        Outcome::RequestAnswered(Ok(view)) => Ok(Json(RequestOutput::from(&view)).into_response()),
        Outcome::MoneyRequested(Err(e)) | Outcome::RequestAnswered(Err(e)) => Err(errors::request(e)),
        other => Err(Problem::internal(format!("a money request answered {other:?}"))),
    }
}

/// Asks another user (by phone or id) for money.
#[utoipa::path(post, path = "/v1/money-requests", tag = "requests", request_body = RequestInput,
    responses((status = 201, description = "the request", body = RequestOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn create_money_request(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let (user_id, hash) = authenticate(&app, &headers).await?;
    let input: RequestInput = object(&body)?;
    let from = recipient(input.from_phone, input.from_user_id)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    let command = Command::RequestMoney { requester: user_id, from, amount: input.amount.0, memo: memo(input.memo)? };
    answer(app.wallet(KeyScope::Session(hash), command).await?)
}

/// The caller's money requests, newest first. `role` is `payer` (the default: requests the
/// caller was asked to pay) or `requester`; `status` keeps one status; a page may be short
/// when a status filter matches little (keep paging while `has_more`).
#[utoipa::path(get, path = "/v1/money-requests", tag = "requests",
    params(("role" = Option<String>, Query, description = "payer (default) or requester"),
        ("status" = Option<String>, Query, description = "pending, paid, declined or expired"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "the previous page's next_cursor")),
    responses((status = 200, description = "a page of money requests", body = Page<RequestOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn list_money_requests(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let (mut role, mut status, mut limit, mut before) = (RequestRole::Payer, None, 20usize, 0u64);
    for (key, value) in query_pairs(query.as_deref(), &["role", "status", "limit", "cursor"])? {
        match key {
            "role" => {
                role = match value {
                    "payer" => RequestRole::Payer,
                    "requester" => RequestRole::Requester,
                    _ => return Err(Problem::invalid_parameter("role must be payer or requester")),
                }
            }
            "status" => {
                status = Some(match value {
                    "pending" => "pending",
                    "paid" => "paid",
                    "declined" => "declined",
                    "expired" => "expired",
                    _ => return Err(Problem::invalid_parameter("status must be pending, paid, declined or expired")),
                })
            }
            "limit" => limit = parse_limit(value, 100)?,
            _ => before = parse_cursor(value, "mr_")?,
        }
    }
    let now = app.engine.now();
    let (data, next_before) = app
        .engine
        .read(move |s| {
            let keep = |r: &MoneyRequest| status.is_none_or(|wanted| r.view(now).status_name() == wanted);
            let page = s.wallets().list_requests(user_id, role, before, limit, keep);
            (page.items.into_iter().map(|r| RequestOutput::from(&r.view(now))).collect::<Vec<_>>(), page.next_before)
        })
        .await?;
    Ok(Json(Page::new(data, next_before.map(|b| format!("mr_{b}")))).into_response())
}

/// One money request, for its requester or its payer.
#[utoipa::path(get, path = "/v1/money-requests/{id}", tag = "requests", params(("id" = String, Path, description = "the request's id")),
    responses((status = 200, description = "the request", body = RequestOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get_money_request(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let now = app.engine.now();
    let found = app
        .engine
        .read(move |s| {
            let r = s.wallets().request(id)?;
            (r.requester == user_id || r.payer == user_id).then(|| RequestOutput::from(&r.view(now)))
        })
        .await?;
    found.map(|r| Json(r).into_response()).ok_or_else(|| Problem::not_found("no such money request of yours"))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayInput {
    /// Needed beyond the PIN-free budget of the last 24 hours.
    #[serde(default)]
    pin: Option<String>,
}

async fn respond(app: AppState, headers: HeaderMap, raw: String, body: Bytes, pay: bool) -> Result<Response, Problem> {
    let (user_id, hash) = authenticate(&app, &headers).await?;
    let request_id = parse_object_id(&raw)?;
    let input: PayInput = object_or_default(&body)?;
    let pin_ok = if pay { pin_verdict(&app, user_id, input.pin).await? } else { None };
    let command = Command::AnswerRequest { payer: user_id, request_id, pay, pin_ok };
    answer(app.wallet(KeyScope::Session(hash), command).await?)
}

/// The payer pays a money request: a transfer to the requester, under the usual PIN, limit
/// and funds rules.
#[utoipa::path(post, path = "/v1/money-requests/{id}/pay", tag = "requests", request_body(content = Option<PayInput>),
    params(("id" = String, Path, description = "the request's id")),
    responses((status = 200, description = "the paid request", body = RequestOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn pay_money_request(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    respond(app, headers, raw, body, true).await
}

/// The payer declines a money request.
#[utoipa::path(post, path = "/v1/money-requests/{id}/decline", tag = "requests", params(("id" = String, Path, description = "the request's id")),
    responses((status = 200, description = "the declined request", body = RequestOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn decline_money_request(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    respond(app, headers, raw, body, false).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareInput {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    /// This friend's share in won; absent: an equal share of the total (the requester's own
    /// share counted), rounded down.
    #[serde(default)]
    amount: Option<AmountInput>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SplitInput {
    /// The whole bill in won.
    total: AmountInput,
    #[serde(default)]
    currency: Option<String>,
    /// 1 to 50 friends.
    shares: Vec<ShareInput>,
    #[serde(default)]
    memo: Option<String>,
}

/// Splits a bill: one money request per friend for their share.
#[utoipa::path(post, path = "/v1/split-bills", tag = "requests", request_body = SplitInput,
    responses((status = 201, description = "the split bill", body = SplitBillOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn split_bill(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let (user_id, hash) = authenticate(&app, &headers).await?;
    let input: SplitInput = object(&body)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    if input.shares.is_empty() || input.shares.len() > SHARES_MAX {
        return Err(Problem::of("invalid_shares", format!("a split bill has 1 to {SHARES_MAX} shares")));
    }
    // An equal share counts the requester too: a bill of 30,000 for two friends is 10,000 each.
    let equal = input.total.0.minor() / (input.shares.len() as u64 + 1);
    let mut shares = Vec::with_capacity(input.shares.len());
    for share in input.shares {
        let amount = share.amount.map_or(kasa_core::money::Amount::new(equal), |a| a.0);
        shares.push(Share { payer: recipient(share.phone, share.user_id)?, amount });
    }
    let shares = BoundedVec::new(shares).map_err(|e| Problem::of("invalid_shares", e))?;
    let command = Command::SplitBill { requester: user_id, total: input.total.0, shares, memo: memo(input.memo)? };
    match app.wallet(KeyScope::Session(hash), command).await? {
        Outcome::BillSplit(Ok(view)) => Ok((StatusCode::CREATED, Json(SplitBillOutput::from(&view))).into_response()),
        Outcome::BillSplit(Err(e)) => Err(errors::request(e)),
        other => Err(Problem::internal(format!("a split bill answered {other:?}"))),
    }
}

/// One split bill, for its requester or one of its payers.
#[utoipa::path(get, path = "/v1/split-bills/{id}", tag = "requests", params(("id" = String, Path, description = "the split bill's id")),
    responses((status = 200, description = "the split bill", body = SplitBillOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn get_split_bill(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let id = parse_object_id(&raw)?;
    let now = app.engine.now();
    let found = app
        .engine
        .read(move |s| {
            let wallets = s.wallets();
            let bill = wallets.bill(id)?;
            let involved = bill.requester == user_id
                || bill.request_ids.as_slice().iter().any(|&r| wallets.request(r).is_some_and(|r| r.payer == user_id));
            involved.then(|| SplitBillOutput::from(&wallets.bill_view(bill, now)))
        })
        .await?;
    found.map(|b| Json(b).into_response()).ok_or_else(|| Problem::not_found("no such split bill of yours"))
}
