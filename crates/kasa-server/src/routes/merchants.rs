//! Operators onboard merchants (`/v1/admin/merchants`, operator key): a merchant with its
//! checked business registration number and settlement bank account, its stores, and its
//! API keys (shown once, kept as hashes, revocable at once).

use super::{parse_limit, query_pairs};
use crate::body::object;
use crate::ids;
use crate::json::{Page, Rfc3339};
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::idempotency::KeyScope;
use kasa_core::merchant::{
    parse_brn, ApiKey, BusinessName, Command, DisplayName, KeyPrefix, Mcc, Merchant, MerchantError, MerchantStatus,
    Outcome, Scopes, SettlementAccount, Store, FEE_BPS_MAX, LIVE_KEYS_PER_MERCHANT_MAX, STORES_PER_MERCHANT_MAX,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most items a page of merchants, stores or keys holds.
const PAGE_MAX: usize = 100;

/// Where a merchant's payouts go, as responses show it.
#[derive(Serialize, ToSchema)]
pub(crate) struct SettlementOutput {
    bank_code: String,
    /// The last four digits; the number itself is never shown.
    account_number_last4: String,
    holder_name: String,
}

/// A merchant.
#[derive(Serialize, ToSchema)]
pub(crate) struct MerchantOutput {
    /// `mch_` and a number.
    id: String,
    object: &'static str,
    business_name: String,
    display_name: String,
    /// The business registration number, `XXX-XX-XXXXX`.
    brn: String,
    /// The merchant category code, four digits.
    mcc: String,
    /// Kasa's fee on each captured payment, in basis points (250 = 2.5%).
    fee_bps: u16,
    /// `null` for a merchant a partner's import created: its payouts wait until it has one.
    settlement_bank_account: Option<SettlementOutput>,
    /// `active`, `suspended` (no new payments for now) or `closed` (for good).
    status: &'static str,
    created_at: Rfc3339,
    status_changed_at: Rfc3339,
    /// Its ids in partner networks, from imports (empty for most merchants).
    partner_ids: Vec<PartnerIdOutput>,
}

/// A merchant's id in a partner's network.
#[derive(Serialize, ToSchema)]
pub(crate) struct PartnerIdOutput {
    /// The partner (`alipay`).
    partner: String,
    /// The partner's id of the merchant.
    partner_merchant_id: String,
}

/// A store as a partner's network knows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct StorePartnerOutput {
    /// The partner (`alipay`).
    partner: String,
    /// The partner's id of the store.
    partner_store_id: String,
    /// The store's QR payload in the partner's network.
    qr_payload: String,
    /// ISO 3166-1 alpha-2.
    country: String,
    city: String,
}

impl From<&SettlementAccount> for SettlementOutput {
    fn from(s: &SettlementAccount) -> Self {
        SettlementOutput {
            bank_code: s.bank_code.as_str().to_string(),
            account_number_last4: s.account_number.last4.as_str().to_string(),
            holder_name: s.holder_name.as_str().to_string(),
        }
    }
}

impl From<&Merchant> for MerchantOutput {
    fn from(m: &Merchant) -> Self {
        MerchantOutput {
            id: ids::format("mch", m.id),
            object: "merchant",
            business_name: m.business_name.as_str().to_string(),
            display_name: m.display_name.as_str().to_string(),
            brn: m.brn.as_str().to_string(),
            mcc: m.mcc.digits(),
            fee_bps: m.fee_bps,
            settlement_bank_account: m.settlement.as_ref().map(SettlementOutput::from),
            status: m.status.name(),
            created_at: Rfc3339(m.created_at),
            status_changed_at: Rfc3339(m.status_changed_at),
            partner_ids: m
                .acceptance
                .as_slice()
                .iter()
                .map(|a| PartnerIdOutput {
                    partner: a.partner.as_str().to_string(),
                    partner_merchant_id: a.partner_merchant_id.as_str().to_string(),
                })
                .collect(),
        }
    }
}

/// A merchant's store.
#[derive(Serialize, ToSchema)]
pub(crate) struct StoreOutput {
    /// `str_` and a number.
    id: String,
    object: &'static str,
    merchant_id: String,
    name: String,
    created_at: Rfc3339,
    /// Its id and QR payload in a partner's network, for a store an import added.
    #[serde(skip_serializing_if = "Option::is_none")]
    partner: Option<StorePartnerOutput>,
}

impl From<&Store> for StoreOutput {
    fn from(s: &Store) -> Self {
        StoreOutput {
            id: ids::format("str", s.id),
            object: "store",
            merchant_id: ids::format("mch", s.merchant_id),
            name: s.name.as_str().to_string(),
            created_at: Rfc3339(s.created_at),
            partner: s.partner.as_ref().map(|p| StorePartnerOutput {
                partner: p.partner.as_str().to_string(),
                partner_store_id: p.partner_store_id.as_str().to_string(),
                qr_payload: p.qr_payload.as_str().to_string(),
                country: p.country.as_str().to_string(),
                city: p.city.as_str().to_string(),
            }),
        }
    }
}

/// A merchant's API key. The key itself is in the answer to its creation only.
#[derive(Serialize, ToSchema)]
pub(crate) struct ApiKeyOutput {
    /// `key_` and a number.
    id: String,
    object: &'static str,
    merchant_id: String,
    name: String,
    /// The whole key (`kasa_sk_...`): in the answer to its creation only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// The key's visible start, to tell keys apart.
    prefix: String,
    /// `payments:read`, `payments:write`, `refunds:write`, `webhooks:manage`, `payouts:read`.
    scopes: Vec<&'static str>,
    created_at: Rfc3339,
    /// When it was revoked; null while it works.
    revoked_at: Option<Rfc3339>,
    /// When it was last used, to the minute; null if never.
    last_used_at: Option<Rfc3339>,
}

impl ApiKeyOutput {
    fn of(k: &ApiKey, key: Option<String>) -> Self {
        let at = |t: u64| (t != 0).then_some(Rfc3339(t));
        ApiKeyOutput {
            id: ids::format("key", k.id),
            object: "api_key",
            merchant_id: ids::format("mch", k.merchant_id),
            name: k.name.as_str().to_string(),
            key,
            prefix: k.prefix.as_str().to_string(),
            scopes: k.scopes.names(),
            created_at: Rfc3339(k.created_at),
            revoked_at: at(k.revoked_at),
            last_used_at: at(k.last_used_at),
        }
    }
}

fn refused(e: MerchantError) -> Problem {
    match e {
        MerchantError::Exists { merchant_id } => Problem::of(
            "merchant_exists",
            format!("merchant {} has this business registration number", ids::format("mch", merchant_id)),
        ),
        MerchantError::FeeTooHigh => Problem::invalid_field(format!("fee_bps is at most {FEE_BPS_MAX}")),
        MerchantError::UnknownMerchant => Problem::not_found("no such merchant"),
        MerchantError::Closed => Problem::of("merchant_closed", "the merchant is closed"),
        MerchantError::UnknownKey => Problem::not_found("no such API key"),
        MerchantError::TooManyStores => {
            Problem::of("too_many_stores", format!("a merchant has at most {STORES_PER_MERCHANT_MAX} stores"))
        }
        MerchantError::TooManyKeys => Problem::of(
            "too_many_api_keys",
            format!("a merchant has at most {LIVE_KEYS_PER_MERCHANT_MAX} keys that are not revoked"),
        ),
        MerchantError::NoScopes => Problem::invalid_field("scopes must name at least one scope"),
        MerchantError::KeyExists => Problem::internal("a drawn API key repeated one on record"),
    }
}

fn field<T>(result: Result<T, String>, name: &str) -> Result<T, Problem> {
    result.map_err(|e| Problem::invalid_field(format!("{name}: {e}")))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MerchantInput {
    /// The registered business name: 1 to 100 characters.
    business_name: String,
    /// What users see: 1 to 50 characters.
    display_name: String,
    /// The business registration number: 10 digits, `XXX-XX-XXXXX` or without hyphens.
    brn: String,
    /// The merchant category code: four digits.
    mcc: String,
    /// Kasa's fee in basis points, 0 to 1,000.
    fee_bps: u16,
    settlement_bank_account: super::funding::LinkInput,
}

/// Onboards a merchant. The registration number is checked by its check digit; one merchant
/// per number.
#[utoipa::path(post, path = "/v1/admin/merchants", tag = "merchants", request_body = MerchantInput,
    responses((status = 201, description = "the merchant", body = MerchantOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_merchant(State(app): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let input: MerchantInput = object(&body)?;
    let brn = parse_brn(&input.brn).map_err(|e| Problem::of("invalid_brn", e.to_string()))?;
    let business_name = field(BusinessName::new(input.business_name), "business_name")?;
    let display_name = field(DisplayName::new(input.display_name), "display_name")?;
    let mcc = field(Mcc::parse(&input.mcc), "mcc")?;
    if input.fee_bps > FEE_BPS_MAX {
        return Err(Problem::invalid_field(format!("fee_bps is at most {FEE_BPS_MAX}")));
    }
    let (bank_code, account_number, holder_name) = super::funding::bank_account(&app, input.settlement_bank_account)?;
    let settlement = Box::new(SettlementAccount { bank_code, account_number, holder_name });
    let command = Command::CreateMerchant { business_name, display_name, brn, mcc, fee_bps: input.fee_bps, settlement };
    match app.merchant(KeyScope::Operator, command).await? {
        Outcome::MerchantCreated(Ok(m)) => Ok((StatusCode::CREATED, Json(MerchantOutput::from(&m))).into_response()),
        Outcome::MerchantCreated(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("an onboarding answered {other:?}"))),
    }
}

/// The `limit` and `cursor` of a list, newest first: the cursor is the id of the last item
/// seen, with the list's prefix.
pub(crate) fn page_query(query: Option<&str>, prefix: &str) -> Result<(usize, u64), Problem> {
    let (mut limit, mut before) = (20usize, u64::MAX);
    for (key, value) in query_pairs(query, &["limit", "cursor"])? {
        match key {
            "limit" => limit = parse_limit(value, PAGE_MAX)?,
            _ => before = ids::parse_cursor(prefix, value)?,
        }
    }
    Ok((limit, before))
}

/// Merchants, newest first.
#[utoipa::path(get, path = "/v1/admin/merchants", tag = "merchants",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of merchants", body = Page<MerchantOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_merchants(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let (limit, before) = page_query(query.as_deref(), "mch")?;
    let merchants = app
        .engine
        .read(move |s| {
            let m = s.merchants();
            let start = before.min(m.merchants_count() as u64 + 1);
            (1..start).rev().take(limit + 1).filter_map(|id| m.merchant(id).map(MerchantOutput::from)).collect()
        })
        .await?;
    Ok(Json(Page::from_lookahead(merchants, limit, |m: &MerchantOutput| m.id.clone())).into_response())
}

/// One merchant.
#[utoipa::path(get, path = "/v1/admin/merchants/{id}", tag = "merchants", params(("id" = String, Path, description = "the merchant's id, mch_...")),
    responses((status = 200, description = "the merchant", body = MerchantOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn get_merchant(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = ids::parse("mch", &raw, "no such merchant")?;
    let merchant = app.engine.read(move |s| s.merchants().merchant(id).map(MerchantOutput::from)).await?;
    merchant.map(|m| Json(m).into_response()).ok_or_else(|| Problem::not_found("no such merchant"))
}

async fn set_status(app: &AppState, raw: &str, status: MerchantStatus) -> Result<Response, Problem> {
    let merchant_id = ids::parse("mch", raw, "no such merchant")?;
    match app.merchant(KeyScope::Operator, Command::SetMerchantStatus { merchant_id, status }).await? {
        Outcome::MerchantChanged(Ok(m)) => Ok(Json(MerchantOutput::from(&m)).into_response()),
        Outcome::MerchantChanged(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a status change answered {other:?}"))),
    }
}

/// Suspends a merchant: no new payments until it is reactivated; refunds and payouts go on.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/suspend", tag = "merchants", params(("id" = String, Path, description = "the merchant's id, mch_...")),
    responses((status = 200, description = "the merchant", body = MerchantOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn suspend_merchant(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    set_status(&app, &raw, MerchantStatus::Suspended).await
}

/// Reactivates a suspended merchant.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/reactivate", tag = "merchants", params(("id" = String, Path, description = "the merchant's id, mch_...")),
    responses((status = 200, description = "the merchant", body = MerchantOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn reactivate_merchant(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    set_status(&app, &raw, MerchantStatus::Active).await
}

/// Closes a merchant for good: no new payments, stores or keys; refunds and payouts go on.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/close", tag = "merchants", params(("id" = String, Path, description = "the merchant's id, mch_...")),
    responses((status = 200, description = "the merchant", body = MerchantOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn close_merchant(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    set_status(&app, &raw, MerchantStatus::Closed).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreInput {
    /// 1 to 50 characters.
    name: String,
}

/// Adds a store to a merchant.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/stores", tag = "merchants", request_body = StoreInput, params(("id" = String, Path, description = "the merchant's id, mch_...")),
    responses((status = 201, description = "the store", body = StoreOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_store(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let merchant_id = ids::parse("mch", &raw, "no such merchant")?;
    let input: StoreInput = object(&body)?;
    let name = field(DisplayName::new(input.name), "name")?;
    match app.merchant(KeyScope::Operator, Command::CreateStore { merchant_id, name }).await? {
        Outcome::StoreCreated(Ok(s)) => Ok((StatusCode::CREATED, Json(StoreOutput::from(&s))).into_response()),
        Outcome::StoreCreated(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a store answered {other:?}"))),
    }
}

/// A merchant's stores, newest first.
#[utoipa::path(get, path = "/v1/admin/merchants/{id}/stores", tag = "merchants", params(("id" = String, Path, description = "the merchant's id, mch_..."), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of stores", body = Page<StoreOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_stores(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let merchant_id = ids::parse("mch", &raw, "no such merchant")?;
    let (limit, before) = page_query(query.as_deref(), "str")?;
    let stores: Option<Vec<StoreOutput>> = app
        .engine
        .read(move |s| {
            let m = s.merchants();
            m.merchant(merchant_id)?;
            let stores: Vec<&Store> = m.stores_of(merchant_id).collect();
            Some(stores.iter().rev().filter(|s| s.id < before).take(limit + 1).map(|s| StoreOutput::from(*s)).collect())
        })
        .await?;
    let stores = stores.ok_or_else(|| Problem::not_found("no such merchant"))?;
    Ok(Json(Page::from_lookahead(stores, limit, |s: &StoreOutput| s.id.clone())).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyInput {
    /// What the merchant calls it: 1 to 50 characters.
    name: String,
    /// One or more of `payments:read`, `payments:write`, `refunds:write`, `webhooks:manage`,
    /// `payouts:read`.
    scopes: Vec<String>,
}

/// Issues an API key for a merchant. The answer holds the key, once: Kasa keeps only its hash.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/api-keys", tag = "merchants", request_body = ApiKeyInput, params(("id" = String, Path, description = "the merchant's id, mch_...")),
    responses((status = 201, description = "the key, with `key` shown this once", body = ApiKeyOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_api_key(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let merchant_id = ids::parse("mch", &raw, "no such merchant")?;
    let input: ApiKeyInput = object(&body)?;
    let name = field(DisplayName::new(input.name), "name")?;
    if input.scopes.len() > Scopes::NAMES.len() * 2 {
        return Err(Problem::invalid_field("scopes lists each scope at most once"));
    }
    let mut scopes = Scopes::default();
    for scope in &input.scopes {
        let named = Scopes::named(scope).ok_or_else(|| {
            let known: Vec<&str> = Scopes::NAMES.iter().map(|(n, _)| *n).collect();
            let shown: String = scope.chars().take(40).collect();
            Problem::invalid_field(format!("unknown scope '{shown}'; scopes are {}", known.join(", ")))
        })?;
        scopes = scopes.with(named);
    }
    if scopes.is_empty() {
        return Err(Problem::invalid_field("scopes must name at least one scope"));
    }
    // Keys are drawn here, never by the core: the journal holds only the hash.
    let key = crate::pin::new_secret_token("kasa_sk_")?;
    let prefix = KeyPrefix::new(&key.expose()[..16]).map_err(Problem::internal)?;
    let key_hash = crate::pin::token_hash(key.expose().as_bytes());
    let command = Command::CreateApiKey { merchant_id, name, scopes, prefix, key_hash };
    match app.merchant(KeyScope::Operator, command).await? {
        Outcome::ApiKeyCreated(Ok(k)) => {
            let shown = ApiKeyOutput::of(&k, Some(key.expose().to_string()));
            Ok((StatusCode::CREATED, Json(shown)).into_response())
        }
        Outcome::ApiKeyCreated(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a key answered {other:?}"))),
    }
}

/// A merchant's API keys, newest first, revoked ones too (never the keys themselves).
#[utoipa::path(get, path = "/v1/admin/merchants/{id}/api-keys", tag = "merchants", params(("id" = String, Path, description = "the merchant's id, mch_..."), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of keys", body = Page<ApiKeyOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_api_keys(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let merchant_id = ids::parse("mch", &raw, "no such merchant")?;
    let (limit, before) = page_query(query.as_deref(), "key")?;
    let keys: Option<Vec<ApiKeyOutput>> = app
        .engine
        .read(move |s| {
            let m = s.merchants();
            m.merchant(merchant_id)?;
            let keys: Vec<&ApiKey> = m.keys_of(merchant_id).collect();
            Some(
                keys.iter()
                    .rev()
                    .filter(|k| k.id < before)
                    .take(limit + 1)
                    .map(|k| ApiKeyOutput::of(k, None))
                    .collect(),
            )
        })
        .await?;
    let keys = keys.ok_or_else(|| Problem::not_found("no such merchant"))?;
    Ok(Json(Page::from_lookahead(keys, limit, |k: &ApiKeyOutput| k.id.clone())).into_response())
}

/// Revokes an API key, at once: the next request with it is refused.
#[utoipa::path(post, path = "/v1/admin/merchants/{id}/api-keys/{key_id}/revoke", tag = "merchants",
    params(("id" = String, Path, description = "the merchant's id, mch_..."), ("key_id" = String, Path, description = "the key's id, key_...")),
    responses((status = 200, description = "the revoked key", body = ApiKeyOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn revoke_api_key(
    State(app): State<AppState>,
    Path((raw, raw_key)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let merchant_id = ids::parse("mch", &raw, "no such merchant")?;
    let key_id = ids::parse("key", &raw_key, "no such API key")?;
    match app.merchant(KeyScope::Operator, Command::RevokeApiKey { merchant_id, key_id }).await? {
        Outcome::ApiKeyRevoked(Ok(k)) => Ok(Json(ApiKeyOutput::of(&k, None)).into_response()),
        Outcome::ApiKeyRevoked(Err(e)) => Err(refused(e)),
        other => Err(Problem::internal(format!("a revocation answered {other:?}"))),
    }
}
