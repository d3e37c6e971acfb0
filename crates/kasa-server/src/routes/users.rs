//! Wallet users: sign-up, sessions, `me`, and the operator's tier and unlock endpoints.
//!
//! PINs are checked here, off the sequencer (see `pin`), and the state machine gets the
//! verdict as part of the command that opens the session, so the lockout counter moves in the
//! same atomic step. A login for a number with no user costs the same Argon2 time and gets the
//! same answer as a wrong PIN: the response does not say whether a number is registered.

use crate::json::{Dec128, Dec64};
use crate::pin::{new_session_token, token_hash};
use crate::problem::Problem;
use crate::routes::ledger::read_body;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::wallet::{HistoryCursor, Phone, SessionError, SignUpError, Tier, User, WalletOutcome};
use kasa_core::{Command, Outcome};
use serde::{Deserialize, Serialize};

/// How long a session lasts: 30 days, as mobile wallets keep users logged in.
pub const SESSION_TTL_SECONDS: u32 = 30 * 24 * 3600;

/// Engine time (the wall clock, or a test clock), for reads that ask "valid now?" (never for
/// state changes, which take their time from the batch).
pub(crate) fn now_nanos(app: &AppState) -> u64 {
    app.engine.now()
}

/// A user as the API returns it. The phone number is the user's own; other users would see
/// it masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserOutput {
    id: String,
    object: &'static str,
    status: &'static str,
    phone: String,
    name: String,
    tier: &'static str,
    pin_locked_until: Option<Dec64>,
    wallet_account_id: Dec128,
    created_at: Dec64,
}

impl UserOutput {
    fn new(user: &User, now: u64) -> Self {
        UserOutput {
            id: user.id.to_string(),
            object: "user",
            status: if user.pin_locked_at(now) { "pin_locked" } else { "active" },
            phone: user.phone.as_str().to_string(),
            name: user.name.clone(),
            tier: user.tier.name(),
            pin_locked_until: user.pin_locked_at(now).then_some(Dec64(user.pin_locked_until)),
            wallet_account_id: Dec128(user.wallet_account_id()),
            created_at: Dec64(user.created_at),
        }
    }
}

/// Parses a JSON body into `T`, mapping errors to problems.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => Problem::invalid_field(e.to_string()),
        _ => Problem::malformed_json(e.to_string()),
    })
}

fn check_pin(pin: &str) -> Result<(), Problem> {
    if pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_pin",
            "The PIN is invalid",
            "a PIN is exactly 6 digits",
        ))
    }
}

fn parse_phone(raw: &str) -> Result<Phone, Problem> {
    Phone::parse(raw).map_err(|e| {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone", "The phone number is invalid", e.to_string())
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignUpInput {
    phone: String,
    name: String,
    pin: String,
}

/// `POST /v1/users`: sign up with a phone number, a display name and a 6-digit PIN.
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = SignUpInput, responses((status = 201, body = UserOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn sign_up(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let input: SignUpInput = parse_json(&read_body(&headers, body).await?)?;
    let phone = parse_phone(&input.phone)?;
    check_pin(&input.pin)?;
    let pin_hash = app.pins.hash(input.pin).await?;
    let command = Command::SignUp { phone: phone.as_str().to_string(), name: input.name, pin_hash };
    let now = now_nanos(&app);
    let phone_key = phone.clone();
    let (outcome, user) = app
        .submit_then_read(command, move |s, _| s.wallets().user_by_phone(&phone_key).map(|u| UserOutput::new(u, now)))
        .await?;
    match outcome {
        Outcome::Wallet(WalletOutcome::SignedUp(Ok(_))) => {
            Ok((StatusCode::CREATED, Json(user.expect("a user that just signed up exists"))).into_response())
        }
        Outcome::Wallet(WalletOutcome::SignedUp(Err(error))) => Err(match error {
            SignUpError::PhoneTaken => Problem::new(
                StatusCode::CONFLICT,
                "phone_taken",
                "The phone number is registered",
                "a wallet exists for this phone number; log in instead",
            ),
            SignUpError::InvalidName => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_name", "The name is invalid", error.to_string())
            }
            SignUpError::InvalidPhone(e) => parse_phone_error(e),
            SignUpError::InvalidPinHash | SignUpError::WalletAccountTaken(_) => {
                tracing::error!(%error, "sign-up refused by the state");
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error", error.to_string())
            }
        }),
        other => unreachable!("a sign-up answers with SignedUp, found {other:?}"),
    }
}

fn parse_phone_error(e: kasa_core::wallet::PhoneError) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone", "The phone number is invalid", e.to_string())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginInput {
    phone: String,
    pin: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SessionOutput {
    object: &'static str,
    token: String,
    user_id: String,
    expires_at: Dec64,
}

fn invalid_credentials() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "The phone number or PIN is wrong",
        "check the phone number and the PIN; five wrong PINs in a row lock PIN use for 30 minutes (a locked PIN is refused the same way)",
    )
}

/// `POST /v1/sessions`: phone and PIN in, a bearer token out.
#[utoipa::path(post, path = "/v1/sessions", tag = "users", request_body = LoginInput, responses((status = 201, body = SessionOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn log_in(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let input: LoginInput = parse_json(&read_body(&headers, body).await?)?;
    let phone = parse_phone(&input.phone)?;
    let found = app.engine.read(move |s| s.wallets().user_by_phone(&phone).map(|u| (u.id, u.pin_hash.clone()))).await?;
    let (user_id, hash) = match found {
        Some((id, hash)) => (id, Some(hash)),
        // User 0 does not exist: the command below is refused like a wrong PIN.
        None => (0, None),
    };
    // Every login does the same work and gets the same answer, whether the number is
    // registered, locked or neither, so that neither the answer nor its time tells: one
    // Argon2 check (against a decoy hash when there is no such user) and one command through
    // the journal, which refuses unknown users and locked PINs as it does wrong PINs. The
    // owner sees a lock in /v1/me.
    let pin_ok = input.pin.len() <= 64 && app.pins.verify(input.pin, hash).await?;
    let token = new_session_token()?;
    let command = Command::OpenSession {
        user_id,
        token_hash: token_hash(token.expose().as_bytes()),
        pin_ok,
        ttl_seconds: SESSION_TTL_SECONDS,
    };
    match app.submit(command).await? {
        Outcome::Wallet(WalletOutcome::SessionOpened(Ok(expires_at))) => {
            let output = SessionOutput {
                object: "session",
                token: token.expose().to_string(),
                user_id: user_id.to_string(),
                expires_at: Dec64(expires_at),
            };
            Ok((StatusCode::CREATED, Json(output)).into_response())
        }
        Outcome::Wallet(WalletOutcome::SessionOpened(Err(error))) => Err(match error {
            // A lock looks like a wrong PIN: see above.
            SessionError::Locked { .. } | SessionError::WrongPin { .. } | SessionError::UnknownUser => {
                invalid_credentials()
            }
        }),
        other => unreachable!("a login answers with SessionOpened, found {other:?}"),
    }
}

/// The hash of the request's session token, if it carries one of the right shape.
pub(crate) fn session_token_hash(headers: &HeaderMap) -> Option<[u8; 32]> {
    crate::bearer_token(headers).filter(|t| t.starts_with(b"kasa_s_") && t.len() <= 128).map(token_hash)
}

/// The user a request's session token belongs to, with the token's hash.
async fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<(u64, [u8; 32]), Problem> {
    let hash = session_token_hash(headers).ok_or_else(session_required)?;
    let now = now_nanos(app);
    let session = app.engine.read(move |s| s.wallets().session(&hash, now)).await?;
    session.map(|s| (s.user_id, hash)).ok_or_else(session_required)
}

/// The user a request's session token belongs to.
pub(crate) async fn authenticate_user(app: &AppState, headers: &HeaderMap) -> Result<u64, Problem> {
    authenticate(app, headers).await.map(|(user_id, _)| user_id)
}

/// The 401 for a missing or invalid session.
pub(crate) fn session_required() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authentication required",
        "send a session token from POST /v1/sessions as 'Authorization: Bearer <token>'",
    )
}

/// `DELETE /v1/sessions/current`: log out.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "users", responses((status = 204, description = "logged out"), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn log_out(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let (_, hash) = authenticate(&app, &headers).await?;
    app.submit(Command::CloseSession { token_hash: hash }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/me`.
#[utoipa::path(get, path = "/v1/me", tag = "users", responses((status = 200, body = UserOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn me(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let now = now_nanos(&app);
    let user = app.engine.read(move |s| s.wallets().user(user_id).map(|u| UserOutput::new(u, now))).await?;
    Ok(Json(user.ok_or_else(session_required)?).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Limit {
    limit: Dec64,
    used: Dec64,
    remaining: Dec64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct WalletOutput {
    object: &'static str,
    account_id: Dec128,
    currency: &'static str,
    balance: Dec64,
    available_balance: Dec64,
    tier: &'static str,
    balance_cap: Limit,
    daily_outgoing: Limit,
    /// What a withdrawal costs now, in won (it counts against the daily outgoing limit).
    withdrawal_fee: Dec64,
}

/// `GET /v1/me/wallet`: balance, available balance (less pending debits) and limits.
#[utoipa::path(get, path = "/v1/me/wallet", tag = "users", responses((status = 200, body = WalletOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn my_wallet(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let now = now_nanos(&app);
    let wallet = app
        .engine
        .read(move |s| {
            let user = s.wallets().user(user_id)?;
            let account = s.ledger().account(user.wallet_account_id())?;
            // KRW has no minor units and a wallet never exceeds its cap, so u64 holds it.
            let balance = account.credits_posted.saturating_sub(account.debits_posted).min(u64::MAX as u128) as u64;
            // The cap counts pending top-ups too, as the check when money comes in does.
            let held = account
                .credits_posted
                .saturating_add(account.credits_pending)
                .saturating_sub(account.debits_posted)
                .min(u64::MAX as u128) as u64;
            let sent_today = s.wallets().funding().outgoing_today(user_id, now);
            let available = account
                .credits_posted
                .saturating_sub(account.debits_posted.saturating_add(account.debits_pending))
                .min(u64::MAX as u128) as u64;
            let (cap, daily) = s.wallets().limits(user.tier);
            Some(WalletOutput {
                object: "wallet",
                account_id: Dec128(account.id),
                currency: "KRW",
                balance: Dec64(balance),
                available_balance: Dec64(available),
                tier: user.tier.name(),
                balance_cap: Limit { limit: Dec64(cap), used: Dec64(held), remaining: Dec64(cap.saturating_sub(held)) },
                daily_outgoing: Limit {
                    limit: Dec64(daily),
                    used: Dec64(sent_today),
                    remaining: Dec64(daily.saturating_sub(sent_today)),
                },
                withdrawal_fee: Dec64(s.wallets().withdrawal_fee()),
            })
        })
        .await?;
    Ok(Json(wallet.ok_or_else(session_required)?).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TierInput {
    tier: String,
}

/// Parses a decimal object id (user, funding, transfer, request) from a path segment.
pub(crate) fn parse_object_id(raw: &str) -> Result<u64, Problem> {
    raw.parse::<u64>().map_err(|_| Problem::invalid_parameter(format!("an id is a decimal number, found '{raw}'")))
}

/// The verdict on a PIN sent with a money movement, checked with Argon2 off the sequencer:
/// `None` when no PIN was sent (the state machine decides whether one was needed).
pub(crate) async fn pin_verdict(app: &AppState, user_id: u64, pin: Option<String>) -> Result<Option<bool>, Problem> {
    let Some(pin) = pin else { return Ok(None) };
    let hash = app.engine.read(move |s| s.wallets().user(user_id).map(|u| u.pin_hash.clone())).await?;
    Ok(Some(pin.len() <= 64 && app.pins.verify(pin, hash).await?))
}

/// Checks an amount of won from a request: positive and at most
/// [`kasa_core::wallet::requests::AMOUNT_MAX_KRW`], which only keeps nonsense out.
pub(crate) fn check_amount(amount: u64) -> Result<(), Problem> {
    let max = kasa_core::wallet::requests::AMOUNT_MAX_KRW;
    if amount == 0 || amount > max {
        return Err(Problem::invalid_field(format!("amount must be 1 to {max} won, found {amount}")));
    }
    Ok(())
}

async fn user_or_404(app: &AppState, user_id: u64) -> Result<Response, Problem> {
    let now = now_nanos(app);
    let user = app.engine.read(move |s| s.wallets().user(user_id).map(|u| UserOutput::new(u, now))).await?;
    match user {
        Some(user) => Ok(Json(user).into_response()),
        None => Err(Problem::not_found(format!("no user has id {user_id}"))),
    }
}

/// `POST /v1/admin/users/{id}/tier` (operator key): `{"tier": "basic" | "verified"}`.
#[utoipa::path(post, path = "/v1/admin/users/{id}/tier", tag = "admin", request_body = TierInput, params(("id" = String, Path, description = "the object id")), responses((status = 200, body = UserOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn set_tier(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let user_id = parse_object_id(&raw)?;
    let input: TierInput = parse_json(&read_body(&headers, body).await?)?;
    let tier = Tier::from_name(&input.tier)
        .ok_or_else(|| Problem::invalid_field(format!("tier must be 'basic' or 'verified', found '{}'", input.tier)))?;
    app.submit(Command::SetTier { user_id, tier }).await?;
    user_or_404(&app, user_id).await
}

/// `POST /v1/admin/users/{id}/unlock` (operator key): lifts a PIN lock.
#[utoipa::path(post, path = "/v1/admin/users/{id}/unlock", tag = "admin", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = UserOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn unlock(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let user_id = parse_object_id(&raw)?;
    app.submit(Command::UnlockPin { user_id }).await?;
    user_or_404(&app, user_id).await
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct EntryOutput {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    amount: Dec64,
    fee: Dec64,
    currency: &'static str,
    status: &'static str,
    counterparty_user_id: Option<String>,
    counterparty_phone: Option<String>,
    bank_account_id: Option<String>,
    memo: String,
    balance_after: Option<Dec64>,
    created_at: Dec64,
}

/// Parses a page's `limit` (1 to 100) or `cursor` (`prefix` and a positive number) query
/// parameter into `limit` or `before`.
pub(crate) fn page_parameter(
    key: &str,
    value: &str,
    prefix: &str,
    limit: &mut usize,
    before: &mut u64,
) -> Result<(), Problem> {
    if key == "limit" {
        *limit =
            value.parse().ok().filter(|l| (1..=100).contains(l)).ok_or_else(|| {
                Problem::invalid_parameter(format!("limit must be between 1 and 100, found '{value}'"))
            })?;
    } else {
        *before = value
            .strip_prefix(prefix)
            .and_then(|v| v.parse().ok())
            .filter(|&t| t > 0)
            .ok_or_else(|| Problem::invalid_parameter(format!("cursor '{value}' is not one this API returned")))?;
    }
    Ok(())
}

/// `GET /v1/me/transactions`: one entry per top-up, withdrawal, transfer sent, received,
/// held or returned, newest first; `limit` (1 to 100, default 20) and `cursor` (the previous page's
/// `next_cursor`).
#[utoipa::path(get, path = "/v1/me/transactions", tag = "users", params(("limit" = Option<u32>, Query, description = "1 to 100"), ("cursor" = Option<String>, Query)), responses((status = 200, description = "a list of EntryOutput", body = Vec<EntryOutput>), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn transactions(
    State(app): State<AppState>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let mut limit = 20usize;
    let mut cursor = HistoryCursor::default();
    for pair in query.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "limit" => page_parameter(key, value, "", &mut limit, &mut 0)?,
            // `h_{before}_{returned_before}`, as `next_cursor` gives it.
            "cursor" => {
                let parsed = value.strip_prefix("h_").and_then(|v| v.split_once('_')).and_then(|(a, b)| {
                    let (before, returned_before) = (a.parse().ok()?, b.parse().ok()?);
                    (before > 0 && returned_before > 0).then_some(HistoryCursor { before, returned_before })
                });
                cursor = parsed.ok_or_else(|| {
                    Problem::invalid_parameter(format!("cursor '{value}' is not one this API returned"))
                })?;
            }
            other => {
                return Err(Problem::invalid_parameter(format!(
                    "unknown parameter '{other}'; expected limit or cursor"
                )))
            }
        }
    }
    let entries = app.engine.read(move |s| s.wallets().history(s.ledger(), user_id, cursor, limit + 1)).await?;
    let has_more = entries.len() > limit;
    let next_cursor = if has_more {
        entries.get(limit - 1).map(|e| e.cursor_after()).map(|c| format!("h_{}_{}", c.before, c.returned_before))
    } else {
        None
    };
    let data: Vec<EntryOutput> = entries
        .into_iter()
        .take(limit)
        .map(|e| EntryOutput {
            kind: e.kind.name(),
            id: e.object_id.to_string(),
            amount: Dec64(e.amount),
            fee: Dec64(e.fee),
            currency: "KRW",
            status: e.status,
            counterparty_user_id: e.counterparty_user.map(|u| u.to_string()),
            counterparty_phone: e.counterparty_phone,
            bank_account_id: e.bank_account_id.map(|b| b.to_string()),
            memo: e.memo,
            balance_after: e.balance_after.map(Dec64),
            created_at: Dec64(e.timestamp),
        })
        .collect();
    Ok(Json(serde_json::json!({"object": "list", "data": data, "has_more": has_more, "next_cursor": next_cursor}))
        .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsInput {
    pin_free_amount: u64,
}

/// `POST /v1/me/settings` `{"pin_free_amount"}`: the amount a user may send or withdraw
/// without the PIN, from 0 up to the default 50,000 won.
#[utoipa::path(post, path = "/v1/me/settings", tag = "users", request_body = SettingsInput, responses((status = 200, description = "the settings"), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("session" = [])))]
pub async fn settings(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let user_id = authenticate_user(&app, &headers).await?;
    let input: SettingsInput = parse_json(&read_body(&headers, body).await?)?;
    let max = kasa_core::wallet::funding::PIN_FREE_KRW_DEFAULT;
    if input.pin_free_amount > max {
        return Err(Problem::invalid_field(format!(
            "pin_free_amount must be 0 to {max} won, found {}",
            input.pin_free_amount
        )));
    }
    let command = Command::SetPinFreeAmount { user_id, amount: input.pin_free_amount };
    let (_, amount) =
        app.submit_then_read(command, move |s, _| s.wallets().user(user_id).map(|u| u.pin_free_krw)).await?;
    let amount = amount.ok_or_else(session_required)?;
    Ok(Json(serde_json::json!({"object": "settings", "pin_free_amount": amount.to_string()})).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TierLimitsInput {
    balance_cap: u64,
    daily_outgoing: u64,
}

/// `POST /v1/admin/tiers/{tier}` (operator key): `{"balance_cap", "daily_outgoing"}` in won,
/// at most the legal maxima (500,000 for `basic`, 2,000,000 for `verified`).
#[utoipa::path(post, path = "/v1/admin/tiers/{tier}", tag = "admin", request_body = TierLimitsInput, params(("tier" = String, Path, description = "basic or verified")), responses((status = 200, description = "the tier's limits now"), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn set_tier_limits(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let tier = Tier::from_name(&raw)
        .ok_or_else(|| Problem::invalid_parameter(format!("tier must be 'basic' or 'verified', found '{raw}'")))?;
    let input: TierLimitsInput = parse_json(&read_body(&headers, body).await?)?;
    let command = Command::SetTierLimits { tier, balance_cap: input.balance_cap, daily_outgoing: input.daily_outgoing };
    let (outcome, limits) = app.submit_then_read(command, move |s, _| s.wallets().limits(tier)).await?;
    if outcome != Outcome::Wallet(WalletOutcome::TierSet(true)) {
        let (cap, daily) = tier.limits_krw();
        return Err(Problem::invalid_field(format!(
            "the {} tier's limits may not exceed the legal maxima: balance cap {cap}, daily outgoing {daily} won",
            tier.name()
        )));
    }
    Ok(Json(serde_json::json!({
        "object": "tier_limits",
        "tier": tier.name(),
        "balance_cap": limits.0.to_string(),
        "daily_outgoing": limits.1.to_string(),
    }))
    .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeesInput {
    /// Won per withdrawal, 0 to 10,000.
    withdrawal_fee: u64,
}

/// `POST /v1/admin/fees` `{"withdrawal_fee"}` (operator key): what Kasa charges per
/// withdrawal from now on; withdrawals already reserved keep the fee of their time.
#[utoipa::path(post, path = "/v1/admin/fees", tag = "admin", request_body = FeesInput, responses((status = 200, description = "the fees"), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn set_fees(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let input: FeesInput = parse_json(&read_body(&headers, body).await?)?;
    let max = kasa_core::wallet::funding::WITHDRAWAL_FEE_MAX_KRW;
    match app.submit(Command::SetFees { withdrawal_fee: input.withdrawal_fee }).await? {
        Outcome::Wallet(WalletOutcome::TierSet(true)) => {
            Ok(Json(serde_json::json!({"object": "fees", "withdrawal_fee": input.withdrawal_fee.to_string()}))
                .into_response())
        }
        Outcome::Wallet(WalletOutcome::TierSet(false)) => Err(Problem::invalid_field(format!(
            "withdrawal_fee must be 0 to {max} won, found {}",
            input.withdrawal_fee
        ))),
        other => unreachable!("setting fees answers with TierSet, found {other:?}"),
    }
}
