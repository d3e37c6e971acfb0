//! The routes of the API, one file per area, and the helpers every handler shares. [`api`] is
//! the one list of routes: each `routes!` entry registers a handler with the router and its
//! `#[utoipa::path]` with the OpenAPI document, so a route cannot be served without being
//! documented (`tests` check the two agree).

pub mod admin;
pub mod approval;
pub mod errors;
pub mod events;
pub mod funding;
pub mod imports;
pub mod instore;
pub mod ledger;
pub mod merchants;
pub mod ops;
pub mod overseas;
pub mod partner_api;
pub mod partners;
pub mod payments;
pub mod payouts;
pub mod qr;
pub mod read_model;
pub mod remittance;
pub mod replication;
pub mod requests;
pub mod users;
pub mod webhooks;

use crate::problem::Problem;
use crate::AppState;
use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route of the API with its OpenAPI operation.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ledger::create_accounts))
        .routes(routes!(ledger::create_transfers))
        .routes(routes!(ledger::lookup_accounts))
        .routes(routes!(ledger::lookup_transfers))
        .routes(routes!(ledger::get_account))
        .routes(routes!(ledger::get_transfer))
        .routes(routes!(ledger::account_transfers))
        .routes(routes!(ledger::account_balances))
        .routes(routes!(users::start_verification))
        .routes(routes!(users::sign_up))
        .routes(routes!(users::reset_pin))
        .routes(routes!(users::log_in))
        .routes(routes!(users::log_out))
        .routes(routes!(users::me))
        .routes(routes!(users::my_wallet))
        .routes(routes!(users::transactions))
        .routes(routes!(users::settings))
        .routes(routes!(funding::link_bank_account, funding::list_bank_accounts))
        .routes(routes!(funding::top_up))
        .routes(routes!(funding::get_top_up))
        .routes(routes!(funding::withdraw))
        .routes(routes!(funding::get_withdrawal))
        .routes(routes!(remittance::send_money))
        .routes(routes!(remittance::get_money_transfer))
        .routes(routes!(remittance::cancel_money_transfer))
        .routes(routes!(requests::create_money_request, requests::list_money_requests))
        .routes(routes!(requests::get_money_request))
        .routes(routes!(requests::pay_money_request))
        .routes(routes!(requests::decline_money_request))
        .routes(routes!(requests::split_bill))
        .routes(routes!(requests::get_split_bill))
        .routes(routes!(admin::get_user))
        .routes(routes!(admin::set_tier))
        .routes(routes!(admin::unlock_pin))
        .routes(routes!(admin::adjust_wallet))
        .routes(routes!(admin::set_tier_limits))
        .routes(routes!(admin::set_fees))
        .routes(routes!(admin::list_events))
        .routes(routes!(admin::sandbox_sms))
        .routes(routes!(admin::advance_test_clock))
        .routes(routes!(merchants::create_merchant, merchants::list_merchants))
        .routes(routes!(merchants::get_merchant))
        .routes(routes!(merchants::suspend_merchant))
        .routes(routes!(merchants::reactivate_merchant))
        .routes(routes!(merchants::close_merchant))
        .routes(routes!(merchants::create_store, merchants::list_stores))
        .routes(routes!(merchants::create_api_key, merchants::list_api_keys))
        .routes(routes!(merchants::revoke_api_key))
        .routes(routes!(payments::create_payment, payments::list_payments))
        .routes(routes!(payments::get_payment))
        .routes(routes!(payments::cancel_payment))
        .routes(routes!(payments::capture_payment))
        .routes(routes!(payments::create_refund, payments::list_refunds))
        .routes(routes!(approval::get_my_payment))
        .routes(routes!(approval::approve_payment))
        .routes(routes!(approval::decline_payment))
        .routes(routes!(payouts::list_payouts))
        .routes(routes!(payouts::get_payout))
        .routes(routes!(payouts::payout_items))
        .routes(routes!(payouts::list_all_payouts))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(webhooks::delete_endpoint))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(events::list_merchant_events))
        .routes(routes!(events::redeliver_event))
        .routes(routes!(qr::decode_qr))
        .routes(routes!(instore::store_qr, instore::create_store_qr))
        .routes(routes!(instore::store_qr_png))
        .routes(routes!(instore::store_qr_svg))
        .routes(routes!(instore::pay_with_qr))
        .routes(routes!(instore::issue_payment_code))
        .routes(routes!(partners::create_partner, partners::list_partners))
        .routes(routes!(partners::get_partner))
        .routes(routes!(partners::suspend_partner))
        .routes(routes!(partners::reactivate_partner))
        .routes(routes!(partners::add_key))
        .routes(routes!(partners::revoke_key))
        .routes(routes!(partners::load_rates, partners::list_rates))
        .routes(routes!(partners::list_windows))
        .routes(routes!(partners::get_window))
        .routes(routes!(partners::close_window))
        .routes(routes!(partners::window_items_csv))
        .routes(routes!(partners::window_items_json))
        .routes(routes!(partners::reconcile_window))
        .routes(routes!(partner_api::create_quote))
        .routes(routes!(partner_api::partner_pay))
        .routes(routes!(partner_api::partner_inquiry_payment))
        .routes(routes!(partner_api::partner_cancel_payment))
        .routes(routes!(partner_api::partner_refund))
        .routes(routes!(overseas::quote_overseas))
        .routes(routes!(overseas::pay_overseas))
        .routes(routes!(overseas::get_overseas))
        .routes(routes!(overseas::partner_overseas_refund))
        .routes(routes!(imports::create_import))
        .routes(routes!(imports::get_import))
        .routes(routes!(imports::import_report))
        .routes(routes!(replication::journal_frames))
        .routes(routes!(replication::replication_status))
        .routes(routes!(replication::promote))
        .routes(routes!(read_model::transactions))
        .routes(routes!(read_model::payments))
        .routes(routes!(read_model::daily_payments))
        .routes(routes!(read_model::status))
}

/// The hash of the request's bearer token if it starts with `prefix` and is of a sane length
/// (a session token, `kasa_s_`, or a merchant's API key, `kasa_sk_`).
pub(crate) fn bearer_hash(headers: &HeaderMap, prefix: &[u8]) -> Option<[u8; 32]> {
    crate::bearer_token(headers).filter(|t| t.starts_with(prefix) && t.len() <= 128).map(crate::pin::token_hash)
}

/// The hash of the request's session token, if it carries one of the right shape.
pub(crate) fn session_token_hash(headers: &HeaderMap) -> Option<[u8; 32]> {
    bearer_hash(headers, b"kasa_s_")
}

/// The user a request's session token belongs to, with the token's hash.
pub(crate) async fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<(u64, [u8; 32]), Problem> {
    let hash = session_token_hash(headers).ok_or_else(Problem::session_required)?;
    session_user(app, hash).await?.map(|user_id| (user_id, hash)).ok_or_else(Problem::session_required)
}

/// The user of the session whose token hashes to `hash`, if it is open now.
pub(crate) async fn session_user(app: &AppState, hash: [u8; 32]) -> Result<Option<u64>, Problem> {
    let now = app.engine.now();
    let session = app.engine.read(move |s| s.wallets().session(&hash, now)).await?;
    Ok(session.map(|s| s.user_id))
}

/// Parses a decimal object id (user, funding, transfer, request) from a path segment.
pub(crate) fn parse_object_id(raw: &str) -> Result<u64, Problem> {
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::invalid_parameter("an id is a decimal number"));
    }
    raw.parse::<u64>().map_err(|_| Problem::invalid_parameter("an id is a decimal number under 2^64"))
}

/// The verdict on a PIN sent with a money movement, checked with Argon2 off the sequencer:
/// `None` when no PIN was sent (the core decides whether one was needed).
pub(crate) async fn pin_verdict(app: &AppState, user_id: u64, pin: Option<String>) -> Result<Option<bool>, Problem> {
    let Some(pin) = pin else { return Ok(None) };
    let hash = app.engine.read(move |s| s.wallets().user(user_id).map(|u| u.pin_hash.as_str().to_string())).await?;
    Ok(Some(app.pins.verify(pin, hash).await?))
}

/// The verdict on a PIN sent with a session's request (`None` without one). Only a PIN needs
/// the session's user first, to check the PIN against the user's hash off the sequencer; the
/// command resolves the session again in the same step as its effect.
pub(crate) async fn session_pin_verdict(
    app: &AppState,
    headers: &HeaderMap,
    pin: Option<String>,
) -> Result<Option<bool>, Problem> {
    match pin {
        None => Ok(None),
        Some(pin) => {
            let (user_id, _) = authenticate(app, headers).await?;
            pin_verdict(app, user_id, Some(pin)).await
        }
    }
}

/// The query parameters of a request as (key, value) pairs, each known key at most once.
pub(crate) fn query_pairs<'a>(query: Option<&'a str>, known: &[&str]) -> Result<Vec<(&'a str, &'a str)>, Problem> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !known.contains(&key) {
            let key: String = key.chars().take(40).collect();
            return Err(Problem::invalid_parameter(format!(
                "unknown parameter '{key}'; expected one of {}",
                known.join(", ")
            )));
        }
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(Problem::invalid_parameter(format!("'{key}' is given twice")));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Parses a page's `limit`: 1 to `max`.
pub(crate) fn parse_limit(value: &str, max: usize) -> Result<usize, Problem> {
    value
        .parse::<usize>()
        .ok()
        .filter(|l| (1..=max).contains(l))
        .ok_or_else(|| Problem::invalid_parameter(format!("limit must be between 1 and {max}")))
}

/// Parses a cursor `{prefix}{number}` that this API returned.
pub(crate) fn parse_cursor(cursor: &str, prefix: &str) -> Result<u64, Problem> {
    cursor
        .strip_prefix(prefix)
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| Problem::invalid_parameter("the cursor is not one this API returned"))
}

/// The client's address: the rate limits' key.
pub(crate) fn client_address(peer: Option<axum::Extension<crate::listener::Peer>>) -> std::net::IpAddr {
    peer.map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |p| p.0 .0.ip())
}

/// Decodes `%XX` escapes of a query value (a `+` stays a `+`: phone numbers start with one).
pub(crate) fn percent_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
