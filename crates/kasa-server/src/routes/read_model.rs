//! The routes served from the PostgreSQL read model (`kasa serve --read-model URL`): a user's
//! history, operators' search of a merchant's payments, a daily payments report, and the read
//! model's status. Every answer says how far the read model is (`as_of`: the last event it
//! reflects), since it lags the engine. Without `--read-model` they answer `501
//! read_model_not_configured`; with PostgreSQL unreachable, `503 read_model_unavailable`.

use super::{authenticate, parse_limit, query_pairs};
use crate::json::{civil_date, Page, Rfc3339};
use crate::problem::Problem;
use crate::read_model::queries::{self, EntryKey, PaymentSearch};
use crate::read_model::{ReadModel, ReadModelError};
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::merchant::PaymentStatus;
use serde::Serialize;
use std::sync::Arc;
use tokio_postgres::Client;
use utoipa::ToSchema;

/// How far the read model's answer is.
#[derive(Serialize, ToSchema)]
pub(crate) struct AsOf {
    /// Every event up to this seq is reflected (later ones may be too).
    event_seq: u64,
    /// Transfers of the operators' ledger copied.
    ledger_transfers: u64,
}

/// A page from the read model.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReadModelPage<T> {
    #[serde(flatten)]
    page: Page<T>,
    as_of: AsOf,
}

/// The read model and a connection to it, or the problem to answer.
async fn connected(app: &AppState) -> Result<(Arc<ReadModel>, Arc<Client>), Problem> {
    let read_model = app.read_model.get().cloned().ok_or_else(|| {
        Problem::of("read_model_not_configured", "this server runs without a read model (kasa serve --read-model URL)")
    })?;
    let client = read_model.query_client().await.map_err(unavailable)?;
    Ok((read_model, client))
}

fn unavailable(error: ReadModelError) -> Problem {
    // The error names PostgreSQL's complaint, never the URL.
    tracing::warn!(%error, "read model query failed");
    Problem::of("read_model_unavailable", "the read model's PostgreSQL cannot be reached now; retry later")
}

async fn as_of(client: &Client) -> Result<AsOf, Problem> {
    let cursor = queries::cursor(client).await.map_err(unavailable)?;
    Ok(AsOf { event_seq: cursor.event_seq, ledger_transfers: cursor.ledger_transfers })
}

/// A user's history from the read model: the entries `/v1/me/transactions` shows, newest
/// first, `limit` (1 to 100, default 20) and `cursor`.
#[utoipa::path(get, path = "/v1/read-model/me/transactions", operation_id = "read_model_transactions", tag = "read model",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the previous page's next_cursor")),
    responses((status = 200, description = "a page of history entries, with the event seq it reflects", body = ReadModelPage<crate::render::EntryOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = [])))]
pub async fn transactions(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let (user_id, _) = authenticate(&app, &headers).await?;
    let mut limit = 20usize;
    let mut after = None;
    for (key, value) in query_pairs(query.as_deref(), &["limit", "cursor"])? {
        match key {
            "limit" => limit = parse_limit(value, 100)?,
            _ => after = Some(parse_entry_cursor(value)?),
        }
    }
    let (_, client) = connected(&app).await?;
    let as_of = as_of(&client).await?;
    let user_id = i64::try_from(user_id).map_err(|_| Problem::session_required())?;
    let rows = queries::history(&client, user_id, after.as_ref(), limit as i64 + 1).await.map_err(unavailable)?;
    let rows: Vec<(EntryKey, serde_json::Value)> =
        rows.into_iter().filter_map(|(key, body)| Some((key, serde_json::from_str(&body).ok()?))).collect();
    let page = Page::from_lookahead(rows, limit, |(k, _)| format!("r.{}.{}.{}", k.ts, k.rank, k.object_id));
    let page = Page {
        data: page.data.into_iter().map(|(_, body)| body).collect(),
        has_more: page.has_more,
        next_cursor: page.next_cursor,
    };
    Ok(Json(ReadModelPage { page, as_of }).into_response())
}

/// `r.{ts}.{rank}.{object_id}`, as `next_cursor` gives it.
fn parse_entry_cursor(value: &str) -> Result<EntryKey, Problem> {
    let refused = || Problem::invalid_parameter("the cursor is not one this API returned");
    let mut parts = value.strip_prefix("r.").ok_or_else(refused)?.split('.');
    let (Some(ts), Some(rank), Some(object_id), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(refused());
    };
    Ok(EntryKey {
        ts: ts.parse().map_err(|_| refused())?,
        rank: rank.parse().map_err(|_| refused())?,
        object_id: object_id.parse().map_err(|_| refused())?,
    })
}

/// A payment in the read model.
#[derive(Serialize, ToSchema)]
pub(crate) struct PaymentRowOutput {
    id: String,
    object: &'static str,
    merchant_id: String,
    store_id: Option<String>,
    order_id: String,
    item_name: String,
    currency: String,
    /// Minor units (won), decimal strings.
    amount: String,
    amount_captured: String,
    fee: String,
    amount_refunded: String,
    status: String,
    cancel_reason: Option<String>,
    channel: String,
    created_at: Rfc3339,
    status_changed_at: Rfc3339,
}

/// Operators' search of a merchant's payments in the read model, newest first: by `status`,
/// `order_id`, and creation time (`created_from` inclusive, `created_to` exclusive, RFC 3339).
#[utoipa::path(get, path = "/v1/admin/read-model/payments", operation_id = "read_model_payments", tag = "read model",
    params(("merchant_id" = String, Query, description = "the merchant, mch_..."), ("status" = Option<String>, Query, description = "requires_approval, requires_capture, succeeded or canceled"),
        ("order_id" = Option<String>, Query, description = "the merchant's order id"), ("created_from" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("created_to" = Option<String>, Query, description = "RFC 3339, exclusive"), ("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
        ("cursor" = Option<String>, Query, description = "the previous page's next_cursor")),
    responses((status = 200, description = "a page of payments, with the event seq it reflects", body = ReadModelPage<PaymentRowOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn payments(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let mut search = PaymentSearch { limit: 20, ..PaymentSearch::default() };
    let mut merchant = None;
    let time = |value: &str, name: &str| -> Result<i64, Problem> {
        let decoded = super::percent_decode(value);
        kasa_core::fx::parse_rfc3339(&decoded)
            .and_then(|t| i64::try_from(t).ok())
            .ok_or_else(|| Problem::invalid_parameter(format!("{name} is an RFC 3339 time")))
    };
    for (key, value) in query_pairs(
        query.as_deref(),
        &["merchant_id", "status", "order_id", "created_from", "created_to", "limit", "cursor"],
    )? {
        match key {
            "merchant_id" => merchant = Some(crate::ids::parse("mch", value, "no such merchant")?),
            "status" => {
                search.status = Some(PaymentStatus::from_name(value).map(|s| s.name()).ok_or_else(|| {
                    Problem::invalid_parameter("status is requires_approval, requires_capture, succeeded or canceled")
                })?)
            }
            "order_id" => {
                let decoded = super::percent_decode(value);
                let order = kasa_core::merchant::OrderId::new(decoded)
                    .map_err(|e| Problem::invalid_parameter(format!("order_id: {e}")))?;
                search.order_id = Some(order.as_str().to_string());
            }
            "created_from" => search.from = Some(time(value, "created_from")?),
            "created_to" => search.to = Some(time(value, "created_to")?),
            "limit" => search.limit = parse_limit(value, 100)? as i64,
            _ => {
                let refused = || Problem::invalid_parameter("the cursor is not one this API returned");
                let (t, id) = value.strip_prefix("p.").and_then(|v| v.split_once('.')).ok_or_else(refused)?;
                search.after = Some((t.parse().map_err(|_| refused())?, id.parse().map_err(|_| refused())?));
            }
        }
    }
    let merchant = merchant.ok_or_else(|| Problem::invalid_parameter("merchant_id is required"))?;
    search.merchant_id = i64::try_from(merchant).map_err(|_| Problem::not_found("no such merchant"))?;
    let limit = search.limit as usize;
    search.limit += 1;
    let (_, client) = connected(&app).await?;
    let as_of = as_of(&client).await?;
    let hits = queries::payments(&client, &search).await.map_err(unavailable)?;
    let page = Page::from_lookahead(hits, limit, |p| format!("p.{}.{}", p.created_at, p.id));
    let id = |prefix: &str, n: i64| crate::ids::format(prefix, u64::try_from(n).unwrap_or(0));
    let time = |t: i64| Rfc3339(u64::try_from(t).unwrap_or(0));
    let data = page
        .data
        .into_iter()
        .map(|p| PaymentRowOutput {
            id: id("pay", p.id),
            object: "payment",
            merchant_id: id("mch", p.merchant_id),
            store_id: p.store_id.map(|s| id("str", s)),
            order_id: p.order_id,
            item_name: p.item_name,
            currency: p.currency,
            amount: p.amount_minor.to_string(),
            amount_captured: p.captured_minor.to_string(),
            fee: p.fee_minor.to_string(),
            amount_refunded: p.refunded_minor.to_string(),
            status: p.status,
            cancel_reason: p.cancel_reason,
            channel: p.channel,
            created_at: time(p.created_at),
            status_changed_at: time(p.status_changed_at),
        })
        .collect();
    let page = Page { data, has_more: page.has_more, next_cursor: page.next_cursor };
    Ok(Json(ReadModelPage { page, as_of }).into_response())
}

/// A line of the daily payments report.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReportLineOutput {
    /// The KST day, `YYYY-MM-DD`.
    day: String,
    merchant_id: String,
    currency: String,
    /// Payments created that day, and those of them that succeeded.
    payments: i64,
    succeeded: i64,
    /// Sums in minor units, decimal strings.
    amount: String,
    amount_captured: String,
    amount_refunded: String,
    /// Kasa's fees less those refunds returned.
    fees: String,
}

/// The daily report.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReportOutput {
    object: &'static str,
    data: Vec<ReportLineOutput>,
    as_of: AsOf,
}

/// Operators' report of payment volume per merchant, KST day and currency, for the days `from`
/// to `to` (`YYYY-MM-DD`, both included, at most 366 days), optionally of one `merchant_id`.
#[utoipa::path(get, path = "/v1/admin/read-model/reports/daily-payments", operation_id = "read_model_daily_payments", tag = "read model",
    params(("from" = String, Query, description = "the first KST day, YYYY-MM-DD"), ("to" = String, Query, description = "the last KST day, YYYY-MM-DD"),
        ("merchant_id" = Option<String>, Query, description = "only this merchant, mch_...")),
    responses((status = 200, description = "the report's lines, with the event seq it reflects", body = ReportOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn daily_payments(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let (mut from, mut to, mut merchant) = (None, None, None);
    for (key, value) in query_pairs(query.as_deref(), &["from", "to", "merchant_id"])? {
        match key {
            "from" => {
                from = Some(parse_day(value).ok_or_else(|| Problem::invalid_parameter("from is a day, YYYY-MM-DD"))?)
            }
            "to" => to = Some(parse_day(value).ok_or_else(|| Problem::invalid_parameter("to is a day, YYYY-MM-DD"))?),
            _ => {
                let id = crate::ids::parse("mch", value, "no such merchant")?;
                merchant = Some(i64::try_from(id).map_err(|_| Problem::not_found("no such merchant"))?);
            }
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(Problem::invalid_parameter("from and to are required"));
    };
    if to < from || to - from > 365 {
        return Err(Problem::invalid_parameter("to is from to 365 days after from"));
    }
    let (_, client) = connected(&app).await?;
    let as_of = as_of(&client).await?;
    let lines = queries::daily_payments(&client, from, to, merchant).await.map_err(unavailable)?;
    let data = lines
        .into_iter()
        .map(|l| ReportLineOutput {
            day: format_day(l.day_kst),
            merchant_id: crate::ids::format("mch", u64::try_from(l.merchant_id).unwrap_or(0)),
            currency: l.currency,
            payments: l.payments,
            succeeded: l.succeeded,
            amount: l.amount_minor,
            amount_captured: l.captured_minor,
            amount_refunded: l.refunded_minor,
            fees: l.fees_minor,
        })
        .collect();
    Ok(Json(ReportOutput { object: "daily_payments_report", data, as_of }).into_response())
}

/// `YYYY-MM-DD` as a day number from 1970-01-01 (the inverse of [`civil_date`]).
fn parse_day(value: &str) -> Option<i32> {
    let b = value.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |s: &str| -> Option<i64> { s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok()).flatten() };
    let (y, m, d) = (number(value.get(0..4)?)?, number(value.get(5..7)?)?, number(value.get(8..10)?)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // A day that does not exist (February 30) does not come back the same.
    let (yy, mm, dd) = civil_date(u64::try_from(days).ok()?);
    let back = format!("{yy:04}-{mm:02}-{dd:02}");
    (back == value).then(|| i32::try_from(days).ok()).flatten()
}

fn format_day(day: i32) -> String {
    let (y, m, d) = civil_date(u64::try_from(day).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The read model's state.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusOutput {
    object: &'static str,
    /// Where it is: host, port and database (never the credentials).
    target: String,
    as_of: AsOf,
    /// The event log's last seq now, and how many events the read model lacks.
    head_event_seq: u64,
    lag_events: u64,
    /// Rows per table.
    rows: std::collections::BTreeMap<&'static str, i64>,
}

/// The read model's status: how far it is and how many rows each table holds.
#[utoipa::path(get, path = "/v1/admin/read-model/status", operation_id = "read_model_status", tag = "read model",
    responses((status = 200, description = "the read model's status", body = StatusOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn status(State(app): State<AppState>) -> Result<Response, Problem> {
    let (read_model, client) = connected(&app).await?;
    let as_of = as_of(&client).await?;
    let rows = queries::counts(&client).await.map_err(unavailable)?.into_iter().collect();
    let head = app.engine.events().last_seq();
    Ok(Json(StatusOutput {
        object: "read_model_status",
        target: read_model.target().to_string(),
        lag_events: head.saturating_sub(as_of.event_seq),
        head_event_seq: head,
        as_of,
        rows,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_read_back_as_written() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2026-11-30"), Some(20787));
        assert_eq!(format_day(20787), "2026-11-30");
        assert_eq!(parse_day("2024-02-29").map(format_day).as_deref(), Some("2024-02-29"));
        for refused in ["2026-02-30", "2026-13-01", "26-11-30", "2026/11/30", "1969-12-31", "2026-1-301", "+026-11-30"]
        {
            assert_eq!(parse_day(refused), None, "{refused}");
        }
    }

    #[test]
    fn entry_cursors_read_back() {
        let key = parse_entry_cursor("r.123.1.7").expect("a cursor");
        assert_eq!(key, EntryKey { ts: 123, rank: 1, object_id: 7 });
        for refused in
            ["123.1.7", "r.123.1", "r.123.1.7.8", "r.x.1.7", "r.1.1.top_up", "r.1..7", "r.99999999999999999999.1.7"]
        {
            assert!(parse_entry_cursor(refused).is_err(), "{refused}");
        }
    }
}
