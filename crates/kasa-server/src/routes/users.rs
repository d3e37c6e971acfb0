//! Wallet users: phone verification codes, sign-up, PIN reset, sessions, `me`, the wallet and
//! its history, and the user's settings.
//!
//! A phone number is proven before it gets a wallet: `POST /v1/phone-verifications` sends a
//! 6-digit code (valid 3 minutes, 5 tries) through the SMS gateway, and the sign-up (or a PIN
//! reset) carries the verification's id and the code. The code itself is never stored: the
//! core keeps its keyed hash and counts wrong tries in the same step as the check.
//!
//! PINs are checked here, off the sequencer (see `pin.rs`), and the core gets the verdict as
//! part of the command that opens the session, so the lockout counter moves in the same
//! atomic step. A login for a number with no user costs the same Argon2 time and gets the
//! same answer as a wrong PIN: the response does not say whether a number is registered.

use super::errors;
use super::{authenticate, client_address, parse_limit, query_pairs};
use crate::body::object;
use crate::json::{amount, check_currency, AmountInput, Page, Rfc3339};
use crate::listener::Peer;
use crate::pin::{check_pin, new_session_token, token_hash};
use crate::problem::Problem;
use crate::render::{EntryOutput, UserOutput};
use crate::{AppState, Secret};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kasa_core::idempotency::KeyScope;
use kasa_core::limits;
use kasa_core::money::Amount;
use kasa_core::wallet::{
    CodeProof, Command, HistoryCursor, Name, Outcome, Phone, PinHash, SessionError, WALLET_CURRENCY,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a session lasts: 30 days, as mobile wallets keep users logged in.
pub const SESSION_TTL_SECONDS: u32 = 30 * 24 * 3600;

/// The text of the SMS that carries a code.
fn code_message(code: &str) -> String {
    format!("[Kasa] 인증번호 {code} (3분 안에 입력하세요). Your Kasa code is {code}.")
}

pub(crate) fn parse_phone(raw: &str) -> Result<Phone, Problem> {
    Phone::parse(raw).map_err(|e| Problem::of("invalid_phone", e.to_string()))
}

fn parse_name(raw: &str) -> Result<Name, Problem> {
    Name::new(raw).map_err(|e| Problem::of("invalid_name", e))
}

/// `vrf_` and 32 hex digits.
fn parse_verification_id(raw: &str) -> Result<[u8; 16], Problem> {
    let hex = raw.strip_prefix("vrf_").filter(|h| h.len() == 32).ok_or_else(|| {
        Problem::of("verification_failed", "verification_id is the id from POST /v1/phone-verifications")
    })?;
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| Problem::of("verification_failed", "verification_id is not one this API gave"))?;
    }
    Ok(id)
}

fn verification_id_text(id: &[u8; 16]) -> String {
    format!("vrf_{}", kasa_engine::hex(id))
}

/// The proof of a phone from what the user typed.
fn proof(app: &AppState, phone: &Phone, verification_id: &str, code: &str) -> Result<CodeProof, Problem> {
    let verification_id = parse_verification_id(verification_id)?;
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::of("wrong_code", "a verification code is 6 digits"));
    }
    Ok(CodeProof { verification_id, code_hash: app.keys.code_hash(phone, code) })
}

/// Six random digits, drawn without bias.
fn new_code() -> Result<String, Problem> {
    loop {
        let mut bytes = [0u8; 4];
        getrandom::getrandom(&mut bytes).map_err(Problem::internal)?;
        let n = u32::from_le_bytes(bytes);
        // 4,294,000,000 is the largest multiple of 10^6 under 2^32.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

fn rate(result: Result<(), u32>, what: &str) -> Result<(), Problem> {
    result.map_err(|seconds| Problem::rate_limited(what, seconds))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerificationInput {
    /// A Korean mobile number (010-1234-5678) or + and a country code.
    phone: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct VerificationOutput {
    /// Pass it, with the code the SMS brought, to sign up or to reset the PIN.
    id: String,
    object: &'static str,
    expires_at: Rfc3339,
}

/// Sends a 6-digit code to a phone number, to prove it before a sign-up or a PIN reset. Rate
/// limited per number (5 an hour) and per client.
#[utoipa::path(post, path = "/v1/phone-verifications", tag = "users", request_body = VerificationInput,
    responses((status = 201, description = "the code was sent", body = VerificationOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn start_verification(
    State(app): State<AppState>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: VerificationInput = object(&body)?;
    let phone = parse_phone(&input.phone)?;
    rate(app.limits.codes_by_address.check(&client_address(peer)), "verification codes from this address")?;
    rate(app.limits.codes_by_phone.check(&phone.as_str().to_string()), "verification codes for this number")?;
    let code = new_code()?;
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).map_err(Problem::internal)?;
    let command = Command::StartVerification { id, phone: phone.clone(), code_hash: app.keys.code_hash(&phone, &code) };
    // Keyed, the scope is the request itself (as for a sign-up): a retry replays the first
    // verification and sends no second code.
    let key = crate::idempotency::current();
    let scope = key.as_ref().map_or(KeyScope::Anonymous(id), |k| k.anonymous_scope());
    let view = match app.wallet(scope, command).await? {
        Outcome::VerificationStarted(Ok(view)) => view,
        Outcome::VerificationStarted(Err(e)) => return Err(errors::verification(e)),
        other => return Err(Problem::internal(format!("a verification answered {other:?}"))),
    };
    // The verification is committed before the code leaves: a code the state does not know
    // is never sent. If the gateway refuses, the verification expires unused.
    let replayed = key.is_some_and(|k| k.was_replayed());
    let sent = if replayed { Ok(()) } else { app.sms.send(&phone, code_message(&code), &code).await };
    if let Err(error) = sent {
        tracing::warn!(%error, "a verification code was not sent");
        return Err(Problem::of("sms_failed", "the code could not be sent; request a new one"));
    }
    let output = VerificationOutput {
        id: verification_id_text(&view.id),
        object: "phone_verification",
        expires_at: Rfc3339(view.expires_at),
    };
    Ok((StatusCode::CREATED, Json(output)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignUpInput {
    phone: String,
    /// 1 to 50 characters.
    name: String,
    /// Six digits, not easy to guess.
    pin: String,
    /// From `POST /v1/phone-verifications`.
    verification_id: String,
    /// The 6-digit code the SMS brought.
    code: String,
}

/// Signs up with a proven phone number, a display name and a 6-digit PIN; money held for the
/// number is claimed in the same step. Rate limited per number and per client (with PIN
/// resets: 10 a minute each).
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = SignUpInput,
    responses((status = 201, description = "the new user", body = UserOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn sign_up(
    State(app): State<AppState>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: SignUpInput = object(&body)?;
    let phone = parse_phone(&input.phone)?;
    let name = parse_name(&input.name)?;
    check_pin(&input.pin)?;
    let proof = proof(&app, &phone, &input.verification_id, &input.code)?;
    rate(app.limits.sign_ups_by_address.check(&client_address(peer)), "sign-ups from this address")?;
    rate(app.limits.sign_ups_by_phone.check(&phone.as_str().to_string()), "sign-ups for this number")?;
    let pin_hash = PinHash::new(app.pins.hash(input.pin).await?).map_err(Problem::internal)?;
    let scope = crate::idempotency::current().map_or(KeyScope::Operator, |c| c.anonymous_scope());
    match app.wallet(scope, Command::SignUp { phone, name, pin_hash, proof }).await? {
        Outcome::SignedUp(Ok(user)) => Ok((StatusCode::CREATED, Json(UserOutput::from(&user))).into_response()),
        Outcome::SignedUp(Err(e)) => Err(errors::sign_up(e)),
        other => Err(Problem::internal(format!("a sign-up answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PinResetInput {
    phone: String,
    verification_id: String,
    code: String,
    /// The new PIN: six digits, not easy to guess.
    new_pin: String,
}

/// The owner of a phone sets a new PIN with a fresh verification code: it lifts a lock and
/// logs out every session, so a stranger who locked the number cannot keep its owner out.
/// Rate limited per number and per client (with sign-ups: 10 a minute each).
#[utoipa::path(post, path = "/v1/pin-resets", tag = "users", request_body = PinResetInput,
    responses((status = 200, description = "the user, with the new PIN in force", body = UserOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn reset_pin(
    State(app): State<AppState>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: PinResetInput = object(&body)?;
    let phone = parse_phone(&input.phone)?;
    check_pin(&input.new_pin)?;
    let proof = proof(&app, &phone, &input.verification_id, &input.code)?;
    rate(app.limits.sign_ups_by_address.check(&client_address(peer)), "PIN resets from this address")?;
    rate(app.limits.sign_ups_by_phone.check(&phone.as_str().to_string()), "PIN resets for this number")?;
    let pin_hash = PinHash::new(app.pins.hash(input.new_pin).await?).map_err(Problem::internal)?;
    let scope = crate::idempotency::current().map_or(KeyScope::Operator, |c| c.anonymous_scope());
    match app.wallet(scope, Command::ResetPin { phone, proof, pin_hash }).await? {
        Outcome::PinReset(Ok(user)) => Ok(Json(UserOutput::from(&user)).into_response()),
        Outcome::PinReset(Err(e)) => Err(errors::pin_reset(e)),
        other => Err(Problem::internal(format!("a PIN reset answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginInput {
    phone: String,
    pin: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SessionOutput {
    object: &'static str,
    /// The bearer token: `Authorization: Bearer <token>`. Shown only here.
    token: String,
    user_id: String,
    expires_at: Rfc3339,
}

fn invalid_credentials() -> Problem {
    Problem::of(
        "invalid_credentials",
        "check the phone number and the PIN; five wrong PINs in a row lock PIN use for 30 minutes (a locked PIN is refused the same way)",
    )
}

/// A session that a login opened.
pub(crate) struct Login {
    /// The bearer token (`kasa_s_...`); the state keeps only its hash.
    pub token: Secret,
    /// Whose session.
    pub user_id: u64,
    /// When it ends, in engine time.
    pub expires_at: u64,
}

/// Logs in with a phone number and PIN from client `address`, for `ttl_seconds`: the one
/// login of the API (`POST /v1/sessions`) and the approval page, so both have the same rate
/// limits, the same work whatever the number, and the same answer to every failure
/// (`invalid_credentials`).
pub(crate) async fn open_session(
    app: &AppState,
    address: std::net::IpAddr,
    phone: &str,
    pin: String,
    ttl_seconds: u32,
) -> Result<Login, Problem> {
    let phone = parse_phone(phone)?;
    rate(app.limits.logins_by_address.check(&address), "logins from this address")?;
    rate(app.limits.logins_by_phone.check(&phone.as_str().to_string()), "logins for this number")?;
    let found = app
        .engine
        .read(move |s| s.wallets().user_by_phone(&phone).map(|u| (u.id, u.pin_hash.as_str().to_string())))
        .await?;
    let (user_id, hash) = match found {
        Some((id, hash)) => (id, Some(hash)),
        // User 0 does not exist: the command below is refused like a wrong PIN.
        None => (0, None),
    };
    // Every login does the same work and gets the same answer, whether the number is
    // registered, locked or neither: one Argon2 check (against a decoy hash when there is no
    // such user) and one command through the journal, which refuses unknown users and locked
    // PINs as it does wrong PINs. The owner sees a lock in /v1/me.
    let pin_ok = app.pins.verify(pin, hash).await?;
    let token = new_session_token()?;
    let command =
        Command::OpenSession { user_id, token_hash: token_hash(token.expose().as_bytes()), pin_ok, ttl_seconds };
    match app.wallet(KeyScope::Operator, command).await? {
        Outcome::SessionOpened(Ok(expires_at)) => Ok(Login { token, user_id, expires_at }),
        Outcome::SessionOpened(Err(
            SessionError::Locked { .. } | SessionError::WrongPin { .. } | SessionError::UnknownUser,
        )) => Err(invalid_credentials()),
        other => Err(Problem::internal(format!("a login answered {other:?}"))),
    }
}

/// Logs in with a phone number and PIN; answers a bearer token. Takes no Idempotency-Key.
#[utoipa::path(post, path = "/v1/sessions", tag = "users", request_body = LoginInput,
    responses((status = 201, description = "a new session", body = SessionOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn log_in(
    State(app): State<AppState>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Result<Response, Problem> {
    let input: LoginInput = object(&body)?;
    let login = open_session(&app, client_address(peer), &input.phone, input.pin, SESSION_TTL_SECONDS).await?;
    let output = SessionOutput {
        object: "session",
        token: login.token.expose().to_string(),
        user_id: login.user_id.to_string(),
        expires_at: Rfc3339(login.expires_at),
    };
    Ok((StatusCode::CREATED, Json(output)).into_response())
}

/// Logs out: the session's token stops working.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "users",
    responses((status = 204, description = "logged out"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn log_out(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let (_, hash) = authenticate(&app, &headers).await?;
    app.wallet(KeyScope::Session(hash), Command::CloseSession { token_hash: hash }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The logged-in user.
#[utoipa::path(get, path = "/v1/me", operation_id = "get_me", tag = "users",
    responses((status = 200, description = "the user", body = UserOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn me(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let now = app.engine.now();
    let user = app.engine.read(move |s| s.wallets().user(user_id).map(|u| u.view(now))).await?;
    Ok(Json(UserOutput::from(&user.ok_or_else(Problem::session_required)?)).into_response())
}

#[derive(Serialize, ToSchema)]
pub(crate) struct LimitOutput {
    limit: String,
    used: String,
    remaining: String,
}

fn limit_output(limit: Amount, used: Amount) -> LimitOutput {
    LimitOutput { limit: amount(limit), used: amount(used), remaining: amount(limit.saturating_sub(used)) }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct WalletOutput {
    object: &'static str,
    account_id: crate::json::Dec128,
    currency: &'static str,
    /// Posted balance.
    balance: String,
    /// What can be spent: the balance less money on its way out.
    available_balance: String,
    /// `basic` or `verified`.
    tier: &'static str,
    /// Counts money on its way in.
    balance_cap: LimitOutput,
    /// This KST day's outgoing total against its limit.
    daily_outgoing: LimitOutput,
    /// What may still move without the PIN in the rolling 24 hours.
    pin_free: LimitOutput,
    /// What a withdrawal costs now (it counts against the daily outgoing limit).
    withdrawal_fee: String,
}

/// The wallet: balance, available balance, and every limit with what is left of it.
#[utoipa::path(get, path = "/v1/me/wallet", operation_id = "get_wallet", tag = "users",
    responses((status = 200, description = "the wallet", body = WalletOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn my_wallet(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let now = app.engine.now();
    let wallet = app
        .engine
        .read(move |s| {
            let user = s.wallets().user(user_id)?;
            let account = s.books().account(user.wallet_account_id())?;
            let as_amount = |v: u128| Amount::from_ledger(v).unwrap_or(Amount::MAX);
            let tier = s.limits().tier(user.tier);
            Some(WalletOutput {
                object: "wallet",
                account_id: crate::json::Dec128(account.id),
                currency: WALLET_CURRENCY.code(),
                balance: amount(as_amount(limits::balance(account))),
                available_balance: amount(as_amount(limits::available(account))),
                tier: user.tier.name(),
                balance_cap: limit_output(tier.balance_cap, as_amount(limits::held(account))),
                daily_outgoing: limit_output(tier.daily_outgoing, s.limits().outgoing_today(user_id, now)),
                pin_free: limit_output(user.pin_free_amount, s.limits().pin_free_used(user_id, now)),
                withdrawal_fee: amount(s.fees().withdrawal.fixed),
            })
        })
        .await?;
    Ok(Json(wallet.ok_or_else(Problem::session_required)?).into_response())
}

/// The history: one entry per top-up, withdrawal, transfer sent, received, held or returned,
/// and adjustment, newest first; `limit` (1 to 100, default 20) and `cursor`.
#[utoipa::path(get, path = "/v1/me/transactions", operation_id = "list_transactions", tag = "users",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the previous page's next_cursor")),
    responses((status = 200, description = "a page of history entries", body = Page<EntryOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn transactions(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let mut limit = 20usize;
    let mut cursor = HistoryCursor::default();
    for (key, value) in query_pairs(query.as_deref(), &["limit", "cursor"])? {
        match key {
            "limit" => limit = parse_limit(value, 100)?,
            _ => {
                // `h_{before}_{returned_before}`, as `next_cursor` gives it.
                let parsed = value.strip_prefix("h_").and_then(|v| v.split_once('_')).and_then(|(a, b)| {
                    let (before, returned_before) = (a.parse().ok()?, b.parse().ok()?);
                    (before > 0 && returned_before > 0).then_some(HistoryCursor { before, returned_before })
                });
                cursor = parsed.ok_or_else(|| Problem::invalid_parameter("the cursor is not one this API returned"))?;
            }
        }
    }
    let entries = app.engine.read(move |s| s.history(user_id, cursor, limit + 1)).await?;
    let next = (entries.len() > limit)
        .then(|| {
            entries.get(limit - 1).map(|e| e.cursor_after()).map(|c| format!("h_{}_{}", c.before, c.returned_before))
        })
        .flatten();
    let data: Vec<EntryOutput> = entries.into_iter().take(limit).map(EntryOutput::from).collect();
    Ok(Json(Page::new(data, next)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsInput {
    /// What may move without the PIN in 24 hours: 0 to 50,000 won.
    pin_free_amount: AmountInput,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SettingsOutput {
    object: &'static str,
    pin_free_amount: String,
    currency: &'static str,
}

/// The user's settings: the PIN-free budget for 24 hours (0 to 50,000 won; 0 asks for the PIN
/// every time).
#[utoipa::path(post, path = "/v1/me/settings", operation_id = "update_settings", tag = "users", request_body = SettingsInput,
    responses((status = 200, description = "the settings now", body = SettingsOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn settings(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let (user_id, hash) = authenticate(&app, &headers).await?;
    let input: SettingsInput = object(&body)?;
    check_currency(input.currency.as_deref(), WALLET_CURRENCY)?;
    let command = Command::SetPinFreeAmount { user_id, amount: input.pin_free_amount.0 };
    match app.wallet(KeyScope::Session(hash), command).await? {
        Outcome::UserChanged(Ok(user)) => Ok(Json(SettingsOutput {
            object: "settings",
            pin_free_amount: amount(user.pin_free_amount),
            currency: WALLET_CURRENCY.code(),
        })
        .into_response()),
        Outcome::UserChanged(Err(e)) => Err(errors::user(e)),
        other => Err(Problem::internal(format!("settings answered {other:?}"))),
    }
}
