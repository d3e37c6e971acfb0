//! Payouts: once a KST day every merchant's balance goes to its settlement bank account (see
//! `kasa_core::merchant::payout`). A merchant lists its own with a `payouts:read` key, and
//! downloads what each pays for as CSV; operators list everyone's.

use super::merchants::page_query;
use super::payments::{api_key_hash, read_as_key};
use crate::ids;
use crate::json::{amount, Page, Rfc3339};
use crate::problem::Problem;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::chart;
use kasa_core::merchant::{Payout, Scopes};
use kasa_core::wallet::WALLET_CURRENCY;
use serde::Serialize;
use utoipa::ToSchema;

/// A payout.
#[derive(Serialize, ToSchema)]
pub(crate) struct PayoutOutput {
    /// `po_` and a number.
    id: String,
    object: &'static str,
    merchant_id: String,
    /// Won, a decimal string.
    amount: String,
    currency: &'static str,
    /// `pending` (at the bank), `paid` or `failed` (the money stays owed and goes with the
    /// next day's payout).
    status: &'static str,
    /// The settlement account it goes to: bank and last four digits.
    bank_code: String,
    account_last4: String,
    /// The KST date whose run made it.
    date: String,
    created_at: Rfc3339,
    settled_at: Option<Rfc3339>,
}

impl PayoutOutput {
    pub(crate) fn new(p: &Payout, s: &kasa_core::State) -> Self {
        let account = s.merchants().merchant(p.merchant_id).and_then(|m| m.settlement.as_ref());
        PayoutOutput {
            id: ids::format("po", p.id),
            object: "payout",
            merchant_id: ids::format("mch", p.merchant_id),
            amount: amount(p.amount),
            currency: WALLET_CURRENCY.code(),
            status: p.status.name(),
            bank_code: account.map(|a| a.bank_code.as_str().to_string()).unwrap_or_default(),
            account_last4: account.map(|a| a.account_number.last4.as_str().to_string()).unwrap_or_default(),
            date: kst_date(p.day),
            created_at: Rfc3339(p.created_at),
            settled_at: (p.settled_at != 0).then_some(Rfc3339(p.settled_at)),
        }
    }
}

/// A KST day number as `YYYY-MM-DD`.
fn kst_date(day: u64) -> String {
    let (y, m, d) = crate::json::civil_date(day);
    format!("{y:04}-{m:02}-{d:02}")
}

fn payouts_read() -> Scopes {
    Scopes::named("payouts:read").expect("a known scope")
}

/// Your payouts, newest first. Scope `payouts:read`.
#[utoipa::path(get, path = "/v1/payouts", tag = "payouts",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of payouts", body = Page<PayoutOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payouts:read"])))]
pub async fn list_payouts(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let (limit, before) = page_query(query.as_deref(), "po")?;
    let payouts = read_as_key(&app, key_hash, payouts_read(), move |s, merchant_id| {
        s.merchants()
            .payouts_before(Some(merchant_id), before, limit + 1)
            .into_iter()
            .map(|p| PayoutOutput::new(p, s))
            .collect()
    })
    .await?;
    Ok(Json(Page::from_lookahead(payouts, limit, |p: &PayoutOutput| p.id.clone())).into_response())
}

/// One of your payouts. Scope `payouts:read`.
#[utoipa::path(get, path = "/v1/payouts/{id}", tag = "payouts", params(("id" = String, Path, description = "the payout's id, po_...")),
    responses((status = 200, description = "the payout", body = PayoutOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payouts:read"])))]
pub async fn get_payout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let id = ids::parse("po", &raw, "no such payout")?;
    let payout = read_as_key(&app, key_hash, payouts_read(), move |s, merchant_id| {
        s.merchants().payout(id).filter(|p| p.merchant_id == merchant_id).map(|p| PayoutOutput::new(p, s))
    })
    .await?;
    payout.map(|p| Json(p).into_response()).ok_or_else(|| Problem::not_found("no such payout"))
}

/// The most lines `items.csv` holds (a merchant's day of movements beyond it is cut, and
/// the last line says so).
const ITEMS_MAX: usize = 100_000;

/// What a payout pays for, as CSV: one line per movement of the merchant's balance it covers
/// (captures and refunds, with Kasa's fees and the fees refunds returned), oldest first. The
/// amounts add up to the payout's. Scope `payouts:read`.
#[utoipa::path(get, path = "/v1/payouts/{id}/items.csv", tag = "payouts", params(("id" = String, Path, description = "the payout's id, po_...")),
    responses((status = 200, description = "the payout's items: type,payment_id,refund_id,amount,currency,created_at", body = String, content_type = "text/csv"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payouts:read"])))]
pub async fn payout_items(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let id = ids::parse("po", &raw, "no such payout")?;
    let csv = read_as_key(&app, key_hash, payouts_read(), move |s, merchant_id| {
        let p = s.merchants().payout(id).filter(|p| p.merchant_id == merchant_id)?;
        Some(items_csv(s, p))
    })
    .await?
    .ok_or_else(|| Problem::not_found("no such payout"))?;
    let disposition = format!("attachment; filename=\"{}-items.csv\"", ids::format("po", id));
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        csv,
    )
        .into_response())
}

/// The lines of a payout's items.
fn items_csv(s: &kasa_core::State, p: &Payout) -> String {
    let books = s.books();
    let balance = chart::MERCHANT_BALANCE.id(p.merchant_id);
    let mut out = String::from("type,payment_id,refund_id,amount,currency,created_at\n");
    let mut rows = Vec::new();
    // Ranges newest first, each read newest first; reversed at the end.
    'ranges: for &(after, up_to) in p.covers.as_slice().iter().rev() {
        let mut max = up_to;
        loop {
            let page = books.account_transfers(balance, after.saturating_add(1), max, 1_000);
            let Some(last) = page.last().map(|t| t.timestamp) else { break };
            for t in page {
                let (kind, n) = chart::id_parts(t.id);
                let credit = t.credit_account_id == balance;
                let (what, payment, refund) = if kind == chart::PAYMENT_RESOLVE.number {
                    ("capture", n, None)
                } else if kind == chart::PAYMENT_FEE.number {
                    ("fee", n, None)
                } else if kind == chart::REFUND.number {
                    ("refund", t.user_data_64, Some(n))
                } else if kind == chart::REFUND_FEE.number {
                    ("fee_returned", t.user_data_64, Some(n))
                } else {
                    continue;
                };
                if t.amount == 0 {
                    continue;
                }
                rows.push((t.timestamp, what, payment, refund, credit, t.amount));
                if rows.len() >= ITEMS_MAX {
                    break 'ranges;
                }
            }
            if last <= after.saturating_add(1) {
                break;
            }
            max = last - 1;
        }
    }
    rows.reverse();
    for (at, what, payment, refund, credit, amount) in &rows {
        let sign = if *credit { "" } else { "-" };
        let refund = refund.map(|r| ids::format("rfd", r)).unwrap_or_default();
        let when =
            serde_json::to_value(Rfc3339(*at)).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        out += &format!("{what},{},{refund},{sign}{amount},KRW,{when}\n", ids::format("pay", *payment));
    }
    if rows.len() >= ITEMS_MAX {
        out += "# cut at 100000 lines\n";
    }
    out
}

/// Every merchant's payouts, newest first.
#[utoipa::path(get, path = "/v1/admin/payouts", tag = "payouts",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of payouts", body = Page<PayoutOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn list_all_payouts(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let (limit, before) = page_query(query.as_deref(), "po")?;
    let payouts = app
        .engine
        .read(move |s| {
            s.merchants().payouts_before(None, before, limit + 1).into_iter().map(|p| PayoutOutput::new(p, s)).collect()
        })
        .await?;
    Ok(Json(Page::from_lookahead(payouts, limit, |p: &PayoutOutput| p.id.clone())).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn kst_dates_are_civil_dates() {
        assert_eq!(super::kst_date(0), "1970-01-01");
        assert_eq!(super::kst_date(20_787), "2026-11-30");
        assert_eq!(super::kst_date(11_016), "2000-02-29");
    }
}
