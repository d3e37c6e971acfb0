//! The operators' endpoints (`/v1/admin`, operator key): users and their tiers and locks,
//! audited wallet adjustments, tier limits and fees, the outbox's events, the sandbox SMS
//! gateway's messages, and the test clock.

use super::errors;
use super::{parse_limit, parse_object_id, query_pairs};
use crate::body::{object, object_or_default};
use crate::json::{amount, check_currency, AmountInput, Page, Rfc3339};
use crate::problem::Problem;
use crate::render::{AdjustmentOutput, EventOutput, UserOutput};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::idempotency::KeyScope;
use kasa_core::limits::{Tier, TierLimits};
use kasa_core::wallet::{Command, Direction, Outcome, Reason, WALLET_CURRENCY};
use kasa_engine::ClockError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn user_answer(outcome: Outcome) -> Result<Response, Problem> {
    match outcome {
        Outcome::UserChanged(Ok(user)) => Ok(Json(UserOutput::from(&user)).into_response()),
        Outcome::UserChanged(Err(e)) => Err(errors::user(e)),
        other => Err(Problem::internal(format!("a user change answered {other:?}"))),
    }
}

/// One user, as operators see them.
#[utoipa::path(get, path = "/v1/admin/users/{id}", tag = "admin", params(("id" = String, Path, description = "the user's id")),
    responses((status = 200, description = "the user", body = UserOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn get_user(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let user_id = parse_object_id(&raw)?;
    let now = app.engine.now();
    let user = app.engine.read(move |s| s.wallets().user(user_id).map(|u| u.view(now))).await?;
    user.map(|u| Json(UserOutput::from(&u)).into_response()).ok_or_else(|| Problem::not_found("no such user"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TierInput {
    /// `basic` or `verified`.
    tier: String,
}

fn parse_tier(raw: &str) -> Result<Tier, Problem> {
    Tier::from_name(raw).ok_or_else(|| Problem::invalid_field("tier must be 'basic' or 'verified'"))
}

/// Sets a user's KYC tier.
#[utoipa::path(post, path = "/v1/admin/users/{id}/tier", tag = "admin", request_body = TierInput, params(("id" = String, Path, description = "the user's id")),
    responses((status = 200, description = "the user", body = UserOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn set_tier(State(app): State<AppState>, Path(raw): Path<String>, body: Bytes) -> Result<Response, Problem> {
    let user_id = parse_object_id(&raw)?;
    let input: TierInput = object(&body)?;
    let tier = parse_tier(&input.tier)?;
    user_answer(app.wallet(KeyScope::Operator, Command::SetTier { user_id, tier }).await?)
}

/// Lifts a user's PIN lock.
#[utoipa::path(post, path = "/v1/admin/users/{id}/unlock", tag = "admin", params(("id" = String, Path, description = "the user's id")),
    responses((status = 200, description = "the user", body = UserOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn unlock_pin(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let user_id = parse_object_id(&raw)?;
    user_answer(app.wallet(KeyScope::Operator, Command::UnlockPin { user_id }).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjustmentInput {
    /// Won, a decimal string.
    amount: AmountInput,
    #[serde(default)]
    currency: Option<String>,
    /// `credit` (into the wallet) or `debit`.
    direction: String,
    /// Why, for the audit trail and the user's history: 1 to 200 characters.
    reason: String,
}

/// Credits or debits a wallet, within its caps, with a reason on record: the one way an
/// operator moves a wallet's money. It shows in the user's history.
#[utoipa::path(post, path = "/v1/admin/users/{id}/adjustments", tag = "admin", request_body = AdjustmentInput, params(("id" = String, Path, description = "the user's id")),
    responses((status = 201, description = "the adjustment", body = AdjustmentOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn adjust_wallet(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let user_id = parse_object_id(&raw)?;
    let input: AdjustmentInput = object(&body)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    let direction = match input.direction.as_str() {
        "credit" => Direction::Credit,
        "debit" => Direction::Debit,
        _ => return Err(Problem::invalid_field("direction must be 'credit' or 'debit'")),
    };
    let reason = Reason::new(input.reason).map_err(Problem::invalid_field)?;
    let command = Command::Adjust { user_id, amount: input.amount.0, direction, reason };
    match app.wallet(KeyScope::Operator, command).await? {
        Outcome::Adjusted(Ok(view)) => Ok((StatusCode::CREATED, Json(AdjustmentOutput::from(&view))).into_response()),
        Outcome::Adjusted(Err(e)) => Err(errors::adjust(e)),
        other => Err(Problem::internal(format!("an adjustment answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TierLimitsInput {
    /// Won, at most the legal maximum.
    balance_cap: AmountInput,
    /// Won per KST day, at most the legal maximum.
    daily_outgoing: AmountInput,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TierLimitsOutput {
    object: &'static str,
    tier: &'static str,
    balance_cap: String,
    daily_outgoing: String,
    currency: &'static str,
}

/// Sets a tier's limits, at most the legal maxima (500,000 won for `basic`, 2,000,000 for
/// `verified`).
#[utoipa::path(post, path = "/v1/admin/tiers/{tier}", tag = "admin", request_body = TierLimitsInput, params(("tier" = String, Path, description = "basic or verified")),
    responses((status = 200, description = "the tier's limits now", body = TierLimitsOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn set_tier_limits(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let tier = Tier::from_name(&raw).ok_or_else(|| Problem::invalid_parameter("tier must be 'basic' or 'verified'"))?;
    let input: TierLimitsInput = object(&body)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    let limits = TierLimits { balance_cap: input.balance_cap.0, daily_outgoing: input.daily_outgoing.0 };
    match app.wallet(KeyScope::Operator, Command::SetTierLimits { tier, limits }).await? {
        Outcome::TierLimitsSet(Ok(limits)) => Ok(Json(TierLimitsOutput {
            object: "tier_limits",
            tier: tier.name(),
            balance_cap: amount(limits.balance_cap),
            daily_outgoing: amount(limits.daily_outgoing),
            currency: WALLET_CURRENCY.code(),
        })
        .into_response()),
        Outcome::TierLimitsSet(Err(e)) => Err(Problem::of("above_legal_maxima", e.to_string())),
        other => Err(Problem::internal(format!("tier limits answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeesInput {
    /// Won per withdrawal, 0 to 10,000.
    withdrawal_fee: AmountInput,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct FeesOutput {
    object: &'static str,
    withdrawal_fee: String,
    currency: &'static str,
}

/// Sets what Kasa charges per withdrawal from now on; withdrawals already reserved keep the
/// fee of their time.
#[utoipa::path(post, path = "/v1/admin/fees", tag = "admin", request_body = FeesInput,
    responses((status = 200, description = "the fees now", body = FeesOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn set_fees(State(app): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let input: FeesInput = object(&body)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    match app.wallet(KeyScope::Operator, Command::SetWithdrawalFee { fee: input.withdrawal_fee.0 }).await? {
        Outcome::WithdrawalFeeSet(Ok(fee)) => {
            Ok(Json(FeesOutput { object: "fees", withdrawal_fee: amount(fee), currency: WALLET_CURRENCY.code() })
                .into_response())
        }
        Outcome::WithdrawalFeeSet(Err(e)) => Err(errors::user(e)),
        other => Err(Problem::internal(format!("fees answered {other:?}"))),
    }
}

/// The outbox's events in order: `after` (the last `seq` seen, default 0) and `limit` (1 to
/// 1,000, default 100). `next_cursor` is the `after` of the next page.
#[utoipa::path(get, path = "/v1/admin/events", tag = "admin",
    params(("after" = Option<String>, Query, description = "the last seq seen"), ("limit" = Option<u32>, Query, description = "1 to 1,000, default 100")),
    responses((status = 200, description = "a page of events", body = Page<EventOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_events(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let (mut after, mut limit) = (0u64, 100usize);
    for (key, value) in query_pairs(query.as_deref(), &["after", "limit", "cursor"])? {
        match key {
            "limit" => limit = parse_limit(value, kasa_engine::EVENTS_PER_READ_MAX)?,
            _ => after = value.parse().map_err(|_| Problem::invalid_parameter("after is an event's seq"))?,
        }
    }
    let events = app.engine.events().read(after, limit + 1).map_err(Problem::internal)?;
    let page = Page::from_lookahead(events, limit, |e: &kasa_core::event::Event| e.seq.to_string());
    let data: Vec<EventOutput> = page.data.iter().map(EventOutput::from).collect();
    Ok(Json(Page::new(data, page.next_cursor)).into_response())
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SmsOutput {
    object: &'static str,
    phone: String,
    text: String,
    /// The verification code in it.
    code: String,
    sent_at: Rfc3339,
}

/// The sandbox SMS gateway's messages, newest first (with their codes), optionally for one
/// `phone`: how to complete a sign-up without a real phone.
#[utoipa::path(get, path = "/v1/admin/sandbox/sms", operation_id = "list_sandbox_sms", tag = "admin",
    params(("phone" = Option<String>, Query, description = "only messages to this number"), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of messages", body = Page<SmsOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn sandbox_sms(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let Some(sandbox) = &app.sandbox_sms else { return Err(Problem::not_found("the SMS gateway is not the sandbox")) };
    let (mut phone, mut limit, mut before) = (None, 20usize, 0u64);
    for (key, value) in query_pairs(query.as_deref(), &["phone", "limit", "cursor"])? {
        match key {
            "limit" => limit = parse_limit(value, 100)?,
            "cursor" => {
                before =
                    value.parse().map_err(|_| Problem::invalid_parameter("cursor is a next_cursor of this list"))?
            }
            _ => {
                let decoded = super::percent_decode(value);
                let parsed = crate::routes::users::parse_phone(&decoded);
                phone = Some(parsed.map_err(|_| Problem::invalid_parameter("phone is not a valid number"))?);
            }
        }
    }
    let messages = sandbox.messages(phone.as_ref(), before, limit + 1);
    let page = Page::from_lookahead(messages, limit, |m| m.seq.to_string());
    let data: Vec<SmsOutput> = page
        .data
        .into_iter()
        .map(|m| SmsOutput {
            object: "sms",
            phone: m.phone.as_str().to_string(),
            text: m.text,
            code: m.code,
            sent_at: Rfc3339(m.sent_at),
        })
        .collect();
    Ok(Json(Page::new(data, page.next_cursor)).into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdvanceInput {
    /// Seconds to move engine time forward: 1 to 31,536,000 (a year).
    seconds: u64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ClockOutput {
    object: &'static str,
    now: Rfc3339,
}

/// Longest single move of a test clock: a year.
const ADVANCE_SECONDS_MAX: u64 = 365 * 24 * 3600;

/// Moves engine time forward (only on a server started with `--test-clock`), and whatever
/// fell due in between (bank answers that never came, 48-hour holds, 7-day money requests,
/// sessions) happens at once.
#[utoipa::path(post, path = "/v1/admin/test-clock/advance", tag = "admin", request_body = AdvanceInput,
    responses((status = 200, description = "the new engine time", body = ClockOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn advance_test_clock(State(app): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let input: AdvanceInput = object_or_default(&body)?;
    if input.seconds == 0 || input.seconds > ADVANCE_SECONDS_MAX {
        return Err(Problem::invalid_field(format!("seconds must be 1 to {ADVANCE_SECONDS_MAX}")));
    }
    // The engine commits a batch at the new time, with the expiries now due, before it
    // answers: what follows sees them, and a restart keeps the moved time.
    let now = match app.engine.advance_clock(std::time::Duration::from_secs(input.seconds)).await {
        Ok(now) => now,
        Err(e @ ClockError::NotATestClock) => return Err(Problem::not_found(e.to_string())),
        Err(e @ ClockError::TooFar) => return Err(Problem::invalid_field(e.to_string())),
        Err(ClockError::NotCommitted(e)) => return Err(Problem::from(e)),
    };
    Ok(Json(ClockOutput { object: "test_clock", now: Rfc3339(now) }).into_response())
}
