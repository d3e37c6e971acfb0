//! Operators register partner wallet networks (`/v1/admin/partners`, operator key): a partner
//! with its currencies, its fee and its settlement bank account, its public keys for signed
//! requests (registered, rotated, revoked), the FX rates quotes and conversions use
//! (`/v1/admin/fx/rates`), and the settlement windows with their files
//! (`/v1/admin/settlement-windows`).

use super::merchants::page_query;
use super::{parse_limit, query_pairs};
use crate::body::object;
use crate::ids;
use crate::json::{Page, Rfc3339};
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::fx::Rate;
use kasa_core::idempotency::KeyScope;
use kasa_core::merchant::{SettlementAccount, WebhookUrl};
use kasa_core::money::Currency;
use kasa_core::partner::{
    CallPolicy, Command, FxRefusal, Outcome, Partner, PartnerError, PartnerKey, PartnerName, PartnerStatus, Schemes,
    Window, WindowError, WindowStatus, KEYS_PER_PARTNER_MAX, PARTNER_FEE_BPS_MAX, RATES_PER_COMMAND_MAX,
};
use kasa_core::text::BoundedVec;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A partner's public key.
#[derive(Serialize, ToSchema)]
pub(crate) struct PartnerKeyOutput {
    /// The `keyVersion` its signatures name.
    key_version: u32,
    /// `Ed25519`.
    algorithm: &'static str,
    /// The public key, base64url.
    public_key: String,
    created_at: Rfc3339,
    /// When it was revoked; null while it works.
    revoked_at: Option<Rfc3339>,
}

impl From<&PartnerKey> for PartnerKeyOutput {
    fn from(k: &PartnerKey) -> Self {
        PartnerKeyOutput {
            key_version: k.version,
            algorithm: "Ed25519",
            public_key: crate::partner_signature::encode_base64(&k.public_key),
            created_at: Rfc3339(k.created_at),
            revoked_at: (k.revoked_at != 0).then_some(Rfc3339(k.revoked_at)),
        }
    }
}

/// A partner wallet network.
#[derive(Serialize, ToSchema)]
pub(crate) struct PartnerOutput {
    /// `ptn_` and a number: the `Client-Id` of its signed requests.
    id: String,
    object: &'static str,
    name: String,
    /// The currency its users hold (ISO 4217).
    home_currency: &'static str,
    /// The currency it settles with Kasa in.
    settlement_currency: &'static str,
    /// Kasa's fee to it per payment, in basis points of the settlement amount.
    fee_bps: u16,
    settlement_bank_account: super::merchants::SettlementOutput,
    /// Where Kasa calls the partner (`{endpoint}/payments/notifyPayment`, ...); null if it
    /// takes no calls.
    endpoint: Option<String>,
    /// The QR schemes it accepts abroad (`unionpay`, `wechat_pay`, ...).
    accepts: Vec<&'static str>,
    policy: PolicyIo,
    /// `active` or `suspended` (no new payments; refunds, cancels and settlement go on).
    status: &'static str,
    keys: Vec<PartnerKeyOutput>,
    /// Kasa's public key (Ed25519, base64url), which signs Kasa's answers to the partner.
    kasa_public_key: String,
    created_at: Rfc3339,
}

impl PartnerOutput {
    fn of(p: &Partner, kasa_public_key: &[u8; 32]) -> Self {
        PartnerOutput {
            id: ids::format("ptn", p.id),
            object: "partner",
            name: p.name.as_str().to_string(),
            home_currency: p.home_currency.code(),
            settlement_currency: p.settlement_currency.code(),
            fee_bps: p.fee_bps,
            settlement_bank_account: super::merchants::SettlementOutput::from(&p.settlement),
            endpoint: p.endpoint.as_ref().map(|u| u.as_str().to_string()),
            accepts: p.accepts.names(),
            policy: PolicyIo {
                inquire_every_seconds: p.policy.inquire_every_seconds,
                inquire_for_seconds: p.policy.inquire_for_seconds,
            },
            status: p.status.name(),
            keys: p.keys.iter().map(PartnerKeyOutput::from).collect(),
            kasa_public_key: crate::partner_signature::encode_base64(kasa_public_key),
            created_at: Rfc3339(p.created_at),
        }
    }
}

fn refused(e: PartnerError) -> Problem {
    match e {
        PartnerError::UnknownPartner => Problem::not_found("no such partner"),
        PartnerError::NameTaken => Problem::of("partner_exists", "a partner has this name"),
        PartnerError::InvalidFee => Problem::invalid_field(format!("fee_bps is at most {PARTNER_FEE_BPS_MAX}")),
        PartnerError::TooManyPartners => Problem::of("too_many_partners", "no more partners can be registered"),
        PartnerError::TooManyKeys => {
            Problem::of("too_many_keys", format!("a partner has at most {KEYS_PER_PARTNER_MAX} keys, revoked ones too"))
        }
        PartnerError::KeyExists => Problem::of("key_exists", "this public key is registered already"),
        PartnerError::UnknownKey => Problem::not_found("no such live key"),
        PartnerError::InvalidSetup => Problem::invalid_field(
            "policy: inquire_every_seconds 1 to 600, inquire_for_seconds 1 to 86,400; accepts: schemes other than kasa",
        ),
    }
}

/// A currency by its ISO 4217 alpha code.
pub(crate) fn currency(code: &str, field: &str) -> Result<Currency, Problem> {
    Currency::from_code(code).ok_or_else(|| Problem::invalid_field(format!("{field}: not an ISO 4217 currency code")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartnerInput {
    /// 1 to 64 lower-case letters, digits, `_` and `-` (`alipay_plus`).
    name: String,
    /// ISO 4217 code of its users' currency.
    home_currency: String,
    /// ISO 4217 code of the currency it settles in.
    settlement_currency: String,
    /// Kasa's fee to it, 0 to 1,000 basis points.
    fee_bps: u16,
    settlement_bank_account: super::funding::LinkInput,
    /// Where Kasa calls it: an `https://` URL (or `http://localhost` for development).
    endpoint: Option<String>,
    /// The QR schemes it accepts abroad: `unionpay`, `wechat_pay`, `promptpay`, `qris`,
    /// `sgqr`, `pix`, `paynow`, `bc_card`, `emvco`.
    #[serde(default)]
    accepts: Vec<String>,
    /// How Kasa resolves a call to it that got no answer (default: inquire every 3 s for
    /// 60 s, then cancel).
    policy: Option<PolicyIo>,
}

/// How Kasa resolves a call to the partner that got no answer: it inquires every
/// `inquire_every_seconds` for `inquire_for_seconds`, then cancels, and marks the payment
/// failed only once the cancel succeeded.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyIo {
    /// 1 to 600.
    inquire_every_seconds: u16,
    /// 1 to 86,400.
    inquire_for_seconds: u32,
}

/// Registers a partner wallet network.
#[utoipa::path(post, path = "/v1/admin/partners", tag = "partners", request_body = PartnerInput,
    responses((status = 201, description = "the partner", body = PartnerOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_partner(State(app): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let input: PartnerInput = object(&body)?;
    let name = PartnerName::new(input.name).map_err(|e| Problem::invalid_field(format!("name: {e}")))?;
    let home_currency = currency(&input.home_currency, "home_currency")?;
    let settlement_currency = currency(&input.settlement_currency, "settlement_currency")?;
    if input.fee_bps > PARTNER_FEE_BPS_MAX {
        return Err(refused(PartnerError::InvalidFee));
    }
    let endpoint = match input.endpoint {
        Some(url) => Some(WebhookUrl::new(url).map_err(|e| Problem::invalid_field(format!("endpoint: {e}")))?),
        None => None,
    };
    let names: Vec<&str> = input.accepts.iter().map(String::as_str).collect();
    let accepts = Schemes::named(&names).ok_or_else(|| {
        Problem::invalid_field("accepts: scheme names as kasa qr decode prints them, other than kasa")
    })?;
    let policy = input.policy.map_or(CallPolicy::default(), |p| CallPolicy {
        inquire_every_seconds: p.inquire_every_seconds,
        inquire_for_seconds: p.inquire_for_seconds,
    });
    if !policy.is_valid() {
        return Err(refused(PartnerError::InvalidSetup));
    }
    let (bank_code, account_number, holder_name) = super::funding::bank_account(&app, input.settlement_bank_account)?;
    let settlement = Box::new(SettlementAccount { bank_code, account_number, holder_name });
    let command = Command::CreatePartner {
        name,
        home_currency,
        settlement_currency,
        fee_bps: input.fee_bps,
        settlement,
        endpoint,
        accepts,
        policy,
    };
    match app.partner(KeyScope::Operator, command).await? {
        Outcome::PartnerCreated(Ok(p)) => {
            Ok((StatusCode::CREATED, Json(PartnerOutput::of(&p, &app.kasa_signer.public_key()))).into_response())
        }
        Outcome::PartnerCreated(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a partner's registration answered {other:?}"))),
    }
}

/// Partners, newest first.
#[utoipa::path(get, path = "/v1/admin/partners", tag = "partners",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of partners", body = Page<PartnerOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_partners(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let (limit, before) = page_query(query.as_deref(), "ptn")?;
    let kasa_key = app.kasa_signer.public_key();
    let partners = app
        .engine
        .read(move |s| {
            let p = s.partners();
            let start = before.min(p.partners().count() as u64 + 1);
            (1..start)
                .rev()
                .take(limit + 1)
                .filter_map(|id| p.partner(id).map(|p| PartnerOutput::of(p, &kasa_key)))
                .collect()
        })
        .await?;
    Ok(Json(Page::from_lookahead(partners, limit, |p: &PartnerOutput| p.id.clone())).into_response())
}

/// One partner.
#[utoipa::path(get, path = "/v1/admin/partners/{id}", tag = "partners", params(("id" = String, Path, description = "the partner's id, ptn_...")),
    responses((status = 200, description = "the partner", body = PartnerOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn get_partner(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = ids::parse("ptn", &raw, "no such partner")?;
    let kasa_key = app.kasa_signer.public_key();
    let partner = app.engine.read(move |s| s.partners().partner(id).map(|p| PartnerOutput::of(p, &kasa_key))).await?;
    partner.map(|p| Json(p).into_response()).ok_or_else(|| Problem::not_found("no such partner"))
}

async fn set_status(app: &AppState, raw: &str, status: PartnerStatus) -> Result<Response, Problem> {
    let partner_id = ids::parse("ptn", raw, "no such partner")?;
    match app.partner(KeyScope::Operator, Command::SetPartnerStatus { partner_id, status }).await? {
        Outcome::PartnerChanged(Ok(p)) => {
            Ok(Json(PartnerOutput::of(&p, &app.kasa_signer.public_key())).into_response())
        }
        Outcome::PartnerChanged(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a partner's status answered {other:?}"))),
    }
}

/// Suspends a partner: no new payments; refunds, cancels and settlement go on.
#[utoipa::path(post, path = "/v1/admin/partners/{id}/suspend", tag = "partners", params(("id" = String, Path, description = "the partner's id, ptn_...")),
    responses((status = 200, description = "the partner", body = PartnerOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn suspend_partner(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    set_status(&app, &raw, PartnerStatus::Suspended).await
}

/// Reactivates a suspended partner.
#[utoipa::path(post, path = "/v1/admin/partners/{id}/reactivate", tag = "partners", params(("id" = String, Path, description = "the partner's id, ptn_...")),
    responses((status = 200, description = "the partner", body = PartnerOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn reactivate_partner(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    set_status(&app, &raw, PartnerStatus::Active).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyInput {
    /// The partner's Ed25519 public key: its 32 bytes in base64 (or base64url), or a PEM
    /// `PUBLIC KEY` (SubjectPublicKeyInfo).
    public_key: String,
}

/// The 32 bytes of an Ed25519 public key given as base64 or as a PEM SubjectPublicKeyInfo.
fn public_key(text: &str) -> Result<[u8; 32], Problem> {
    const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    let bad = || Problem::invalid_field("public_key: an Ed25519 public key, 32 bytes in base64 or a PEM PUBLIC KEY");
    let text = text.trim();
    let bytes = match text.strip_prefix("-----BEGIN PUBLIC KEY-----") {
        Some(rest) => {
            let body = rest.trim().strip_suffix("-----END PUBLIC KEY-----").ok_or_else(bad)?;
            let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let der = crate::partner_signature::decode_base64(&b64).ok_or_else(bad)?;
            der.strip_prefix(&SPKI_PREFIX[..]).ok_or_else(bad)?.to_vec()
        }
        None => crate::partner_signature::decode_base64(text).ok_or_else(bad)?,
    };
    bytes.try_into().map_err(|_| bad())
}

/// Registers a partner's public key; its `key_version` is the next one. Rotate by adding
/// the new key, switching the partner to it, then revoking the old one.
#[utoipa::path(post, path = "/v1/admin/partners/{id}/keys", tag = "partners", request_body = KeyInput, params(("id" = String, Path, description = "the partner's id, ptn_...")),
    responses((status = 201, description = "the key", body = PartnerKeyOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn add_key(State(app): State<AppState>, Path(raw): Path<String>, body: Bytes) -> Result<Response, Problem> {
    let partner_id = ids::parse("ptn", &raw, "no such partner")?;
    let input: KeyInput = object(&body)?;
    let public_key = public_key(&input.public_key)?;
    match app.partner(KeyScope::Operator, Command::AddKey { partner_id, public_key }).await? {
        Outcome::KeyAdded(Ok(k)) => Ok((StatusCode::CREATED, Json(PartnerKeyOutput::from(&k))).into_response()),
        Outcome::KeyAdded(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a key's registration answered {other:?}"))),
    }
}

/// Revokes a partner's key at once: requests signed with it are refused from then on.
#[utoipa::path(post, path = "/v1/admin/partners/{id}/keys/{version}/revoke", tag = "partners",
    params(("id" = String, Path, description = "the partner's id, ptn_..."), ("version" = u32, Path, description = "the key's version")),
    responses((status = 200, description = "the key", body = PartnerKeyOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn revoke_key(
    State(app): State<AppState>,
    Path((raw, version)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let partner_id = ids::parse("ptn", &raw, "no such partner")?;
    let version: u32 = version.parse().map_err(|_| Problem::not_found("no such live key"))?;
    let outcome = app.partner(KeyScope::Operator, Command::RevokeKey { partner_id, version }).await;
    // Committed (or refused): signed requests read the keys from the state again.
    app.partner_keys.forget_all();
    match outcome? {
        Outcome::KeyRevoked(Ok(k)) => Ok(Json(PartnerKeyOutput::from(&k)).into_response()),
        Outcome::KeyRevoked(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a key's revocation answered {other:?}"))),
    }
}

// --- FX rates ------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateInput {
    /// `BASE/QUOTE`, e.g. `CNY/KRW` (one yuan is `mid` won).
    pair: String,
    /// The mid rate as a plain decimal string (`"190.50"`).
    mid: String,
    /// The customer's spread, 0 to 1,000 basis points.
    spread_bps: u32,
    /// When it takes effect (RFC 3339); now if absent.
    valid_from: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RatesInput {
    /// 1 to 500 rates.
    rates: Vec<RateInput>,
}

/// What a load did.
#[derive(Serialize, ToSchema)]
pub(crate) struct RatesLoadedOutput {
    object: &'static str,
    /// Rates that were new (the rest replaced one of the same pair and time).
    loaded: u32,
    /// Rates in the request.
    received: usize,
}

/// Loads FX rates: each is in force from its `valid_from` until a later one of the same pair
/// (in either direction). One of the same pair and time replaces it (a correction).
#[utoipa::path(post, path = "/v1/admin/fx/rates", tag = "fx", request_body = RatesInput,
    responses((status = 201, description = "what was loaded", body = RatesLoadedOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn load_rates(State(app): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let input: RatesInput = object(&body)?;
    if input.rates.is_empty() || input.rates.len() > RATES_PER_COMMAND_MAX {
        return Err(Problem::invalid_field(format!("rates: 1 to {RATES_PER_COMMAND_MAX} rates")));
    }
    let now = app.engine.now();
    let received = input.rates.len();
    let mut rates = Vec::with_capacity(received);
    for (i, r) in input.rates.into_iter().enumerate() {
        let valid_from = match r.valid_from {
            None => now,
            Some(t) => kasa_core::fx::parse_rfc3339(&t)
                .ok_or_else(|| Problem::invalid_field(format!("rates[{i}].valid_from: an RFC 3339 time")))?,
        };
        let rate = Rate::parse(&r.pair, &r.mid, r.spread_bps, valid_from)
            .map_err(|e| Problem::of(fx_code(e.code()), format!("rates[{i}]: {e}")))?;
        rates.push(rate);
    }
    let rates = BoundedVec::new(rates).map_err(Problem::invalid_field)?;
    match app.partner(KeyScope::Operator, Command::LoadRates { rates }).await? {
        Outcome::RatesLoaded(Ok(loaded)) => {
            Ok((StatusCode::CREATED, Json(RatesLoadedOutput { object: "fx_rates_load", loaded, received }))
                .into_response())
        }
        Outcome::RatesLoaded(Err(e)) => Err(fx_refused(e)),
        other => Err(Problem::internal(format!("a rates load answered {other:?}"))),
    }
}

/// The problem code of an FX refusal's code: those the registry has, else `invalid_field`.
fn fx_code(code: &str) -> &'static str {
    match code {
        "unknown_currency" => "unknown_currency",
        "no_rate" => "no_rate",
        "too_many_rates" => "too_many_rates",
        _ => "invalid_field",
    }
}

/// The problem for an FX refusal.
pub(crate) fn fx_refused(e: FxRefusal) -> Problem {
    match e {
        FxRefusal::NoRate => Problem::of("no_rate", "no rate for the pair is in force"),
        FxRefusal::SameCurrency => Problem::invalid_field("the two currencies are the same"),
        FxRefusal::ZeroAmount => Problem::invalid_field("the amount is zero"),
        FxRefusal::AmountTooSmall => Problem::invalid_field("the amount converts to less than one minor unit"),
        FxRefusal::AmountTooLarge => Problem::invalid_field("the amount is too large"),
        FxRefusal::TooManyRates => Problem::of("too_many_rates", "the rate table is full"),
        FxRefusal::TooManyQuotes => Problem::busy(),
        FxRefusal::InvalidExpiry => Problem::invalid_field("expires_in is 1 second to 24 hours"),
        FxRefusal::UnknownPartner => Problem::not_found("no such partner"),
    }
}

/// A rate in force.
#[derive(Serialize, ToSchema)]
pub(crate) struct RateOutput {
    /// `BASE/QUOTE` as loaded.
    pair: String,
    mid: String,
    spread_bps: u16,
    valid_from: Rfc3339,
}

/// The rates loaded, newest last per pair (at most 1,000).
#[utoipa::path(get, path = "/v1/admin/fx/rates", tag = "fx",
    responses((status = 200, description = "the rates", body = Vec<RateOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_rates(State(app): State<AppState>) -> Result<Response, Problem> {
    let rates: Vec<RateOutput> = app
        .engine
        .read(|s| {
            let all: Vec<&Rate> = s.partners().rates().iter().collect();
            let skip = all.len().saturating_sub(1_000);
            all[skip..]
                .iter()
                .map(|r| RateOutput {
                    pair: format!("{}/{}", r.base(), r.quote()),
                    mid: r.mid().to_string(),
                    spread_bps: r.spread_bps(),
                    valid_from: Rfc3339(r.valid_from()),
                })
                .collect()
        })
        .await?;
    Ok(Json(rates).into_response())
}

// --- Settlement windows ---------------------------------------------------------------------

/// A settlement window: per partner and currency, the items of a day, netted.
#[derive(Serialize, ToSchema)]
pub(crate) struct WindowOutput {
    /// `sw_` and a number.
    id: String,
    object: &'static str,
    partner_id: String,
    currency: &'static str,
    /// `open`, `closed` (its settlement waits for the bank), `settled` or `failed`.
    status: &'static str,
    opened_at: Rfc3339,
    closed_at: Option<Rfc3339>,
    settled_at: Option<Rfc3339>,
    payments: u64,
    refunds: u64,
    /// Minor units: the payments' settlement amounts.
    paid: String,
    /// Minor units given back by refunds and cancels.
    refunded: String,
    /// Minor units of Kasa's fees to the partner, less those returned.
    fees: String,
    /// Kasa users' payments abroad in it, and refunds of them.
    overseas: u64,
    overseas_refunds: u64,
    /// Minor units Kasa owes for its users' payments abroad.
    outbound: String,
    /// Minor units the partner gave back of them.
    outbound_refunded: String,
    /// paid - refunded - fees - outbound + outbound_refunded: what the partner owes Kasa
    /// (negative: what Kasa owes it).
    net: String,
}

impl From<&Window> for WindowOutput {
    fn from(w: &Window) -> Self {
        let at = |t: u64| (t != 0).then_some(Rfc3339(t));
        WindowOutput {
            id: ids::format("sw", w.id),
            object: "settlement_window",
            partner_id: ids::format("ptn", w.partner_id),
            currency: w.currency.code(),
            status: w.status.name(),
            opened_at: Rfc3339(w.opened_at),
            closed_at: at(w.closed_at),
            settled_at: at(w.settled_at),
            payments: w.payments,
            refunds: w.refunds,
            paid: w.paid.to_string(),
            refunded: w.refunded.to_string(),
            fees: w.fees.to_string(),
            overseas: w.overseas,
            overseas_refunds: w.overseas_refunds,
            outbound: w.outbound.to_string(),
            outbound_refunded: w.outbound_refunded.to_string(),
            net: w.net().to_string(),
        }
    }
}

/// A window as responses show it.
pub(crate) fn window_output(w: &Window) -> WindowOutput {
    WindowOutput::from(w)
}

fn window_refused(e: WindowError) -> Problem {
    match e {
        WindowError::UnknownWindow => Problem::not_found("no such settlement window"),
        WindowError::WrongStatus { status } => Problem::of("invalid_state", format!("the window is {}", status.name())),
    }
}

/// Settlement windows, newest first, optionally of one partner or in one status.
#[utoipa::path(get, path = "/v1/admin/settlement-windows", tag = "settlement",
    params(("partner_id" = Option<String>, Query, description = "ptn_..."), ("status" = Option<String>, Query, description = "open, closed, settled or failed"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of windows", body = Page<WindowOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_windows(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let (mut limit, mut before, mut partner, mut status) = (20usize, u64::MAX, None, None);
    for (key, value) in query_pairs(query.as_deref(), &["partner_id", "status", "limit", "cursor"])? {
        match key {
            "partner_id" => {
                partner = Some(
                    ids::parse("ptn", value, "no such partner")
                        .map_err(|_| Problem::invalid_parameter("partner_id: ptn_..."))?,
                )
            }
            "status" => {
                status = Some(
                    [WindowStatus::Open, WindowStatus::Closed, WindowStatus::Settled, WindowStatus::Failed]
                        .into_iter()
                        .find(|s| s.name() == value)
                        .ok_or_else(|| Problem::invalid_parameter("status: open, closed, settled or failed"))?,
                )
            }
            "limit" => limit = parse_limit(value, 100)?,
            _ => before = ids::parse_cursor("sw", value)?,
        }
    }
    let windows = app
        .engine
        .read(move |s| {
            let all = s.partners().windows();
            let start = before.min(all.len() as u64 + 1);
            (1..start)
                .rev()
                .filter_map(|id| s.partners().window(id))
                .filter(|w| partner.is_none_or(|p| w.partner_id == p) && status.is_none_or(|st| w.status == st))
                .take(limit + 1)
                .map(WindowOutput::from)
                .collect()
        })
        .await?;
    Ok(Json(Page::from_lookahead(windows, limit, |w: &WindowOutput| w.id.clone())).into_response())
}

/// One settlement window.
#[utoipa::path(get, path = "/v1/admin/settlement-windows/{id}", tag = "settlement", params(("id" = String, Path, description = "the window's id, sw_...")),
    responses((status = 200, description = "the window", body = WindowOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn get_window(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = ids::parse("sw", &raw, "no such settlement window")?;
    let window = app.engine.read(move |s| s.partners().window(id).map(WindowOutput::from)).await?;
    window.map(|w| Json(w).into_response()).ok_or_else(|| Problem::not_found("no such settlement window"))
}

/// Closes a window now (windows also close at midnight KST): its net becomes a settlement
/// that the bank rail moves.
#[utoipa::path(post, path = "/v1/admin/settlement-windows/{id}/close", tag = "settlement", params(("id" = String, Path, description = "the window's id, sw_...")),
    responses((status = 200, description = "the window", body = WindowOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn close_window(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let window_id = ids::parse("sw", &raw, "no such settlement window")?;
    match app.partner(KeyScope::Operator, Command::CloseWindow { window_id }).await? {
        Outcome::WindowClosed(Ok(w)) => Ok(Json(WindowOutput::from(&w)).into_response()),
        Outcome::WindowClosed(Err(e)) => Err(window_refused(e)),
        other => Err(Problem::internal(format!("a window's close answered {other:?}"))),
    }
}

/// The settlement file of a window: every item in both currencies with the rate, the fee and
/// the references, as CSV (see `docs/settlement.md`). Streamed, off the writer.
#[utoipa::path(get, path = "/v1/admin/settlement-windows/{id}/items.csv", tag = "settlement", params(("id" = String, Path, description = "the window's id, sw_...")),
    responses((status = 200, description = "the items", body = String, content_type = "text/csv"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn window_items_csv(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    window_file(&app, &raw, crate::settlement_file::Format::Csv).await
}

/// The settlement file of a window as JSON: `{"window": {...}, "items": [...]}`.
#[utoipa::path(get, path = "/v1/admin/settlement-windows/{id}/items.json", tag = "settlement", params(("id" = String, Path, description = "the window's id, sw_...")),
    responses((status = 200, description = "the window and its items", body = Object),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn window_items_json(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    window_file(&app, &raw, crate::settlement_file::Format::Json).await
}

async fn window_file(app: &AppState, raw: &str, format: crate::settlement_file::Format) -> Result<Response, Problem> {
    let id = ids::parse("sw", raw, "no such settlement window")?;
    let source = app
        .engine
        .read(move |s| crate::settlement_file::Source::of(s.partners(), id))
        .await?
        .ok_or_else(|| Problem::not_found("no such settlement window"))?;
    let (content_type, extension) = match format {
        crate::settlement_file::Format::Csv => ("text/csv; charset=utf-8", "csv"),
        crate::settlement_file::Format::Json => ("application/json", "json"),
    };
    let disposition = format!("attachment; filename=\"{}-items.{extension}\"", ids::format("sw", id));
    let body = crate::settlement_file::stream(source, format);
    Ok(([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReconcileInput {
    /// The partner's settlement file as CSV text, with a header naming at least the columns
    /// `item_type`, `payment_request_id`, `refund_request_id`, `amount`, `settlement_amount`
    /// and `status`. Bodies are at most 64 KiB: reconcile larger files with `kasa reconcile`.
    csv: String,
}

/// Reconciles a partner's settlement file with Kasa's for the window: items missing on
/// either side, different amounts, different statuses. Changes nothing.
#[utoipa::path(post, path = "/v1/admin/settlement-windows/{id}/reconcile", tag = "settlement", request_body = ReconcileInput,
    params(("id" = String, Path, description = "the window's id, sw_...")),
    responses((status = 200, description = "the report", body = Object),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn reconcile_window(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = ids::parse("sw", &raw, "no such settlement window")?;
    let input: ReconcileInput = object(&body)?;
    let partner = crate::reconcile::read(&input.csv).map_err(|e| Problem::invalid_field(format!("csv: {e}")))?;
    let source = app
        .engine
        .read(move |s| crate::settlement_file::Source::of(s.partners(), id))
        .await?
        .ok_or_else(|| Problem::not_found("no such settlement window"))?;
    let report = tokio::task::spawn_blocking(move || {
        let mut ours = Vec::new();
        crate::settlement_file::write(&source, crate::settlement_file::Format::Csv, |chunk| {
            ours.extend_from_slice(&chunk);
            true
        });
        let ours = crate::reconcile::read(std::str::from_utf8(&ours).expect("Kasa's file is UTF-8"))
            .expect("Kasa's own file reads back");
        crate::reconcile::compare(&ours, &partner)
    })
    .await
    .map_err(Problem::internal)?;
    let mut output = serde_json::to_value(&report).map_err(Problem::internal)?;
    output["object"] = "settlement_reconciliation".into();
    output["window_id"] = ids::format("sw", id).into();
    output["summary"] = report.summary().into();
    output["agrees"] = report.agrees().into();
    Ok(Json(output).into_response())
}
