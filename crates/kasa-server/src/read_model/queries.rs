//! The queries the read model's routes serve: a user's history a page at a time, a merchant's
//! payments searched by status, time and order id, and daily payment reports. Every query is
//! keyset-paginated on an index (`migrations/`), bounded by a `LIMIT`, and comes with the
//! cursor it is at least as fresh as.

use super::{store, Cursor, ReadModelError};
use tokio_postgres::Client;

/// The position after an entry of a user's history, newest first.
#[allow(missing_docs)] // The fields are the columns of `migrations/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryKey {
    pub ts: i64,
    pub rank: i16,
    pub object_id: i64,
}

/// Up to `limit` entries of `user_id`'s history after `after`, newest first: each its key and
/// its body (JSON as the API renders it).
pub async fn history(
    client: &Client,
    user_id: i64,
    after: Option<&EntryKey>,
    limit: i64,
) -> Result<Vec<(EntryKey, String)>, ReadModelError> {
    let rows = match after {
        None => {
            client
                .query(
                    "SELECT ts, rank, object_id, body FROM user_transactions WHERE user_id = $1
                     ORDER BY ts DESC, rank DESC, object_id DESC LIMIT $2",
                    &[&user_id, &limit],
                )
                .await?
        }
        Some(k) => {
            client
                .query(
                    "SELECT ts, rank, object_id, body FROM user_transactions WHERE user_id = $1
                     AND (ts, rank, object_id) < ($2, $3, $4)
                     ORDER BY ts DESC, rank DESC, object_id DESC LIMIT $5",
                    &[&user_id, &k.ts, &k.rank, &k.object_id, &limit],
                )
                .await?
        }
    };
    Ok(rows.into_iter().map(|r| (EntryKey { ts: r.get(0), rank: r.get(1), object_id: r.get(2) }, r.get(3))).collect())
}

/// What a payment search asks.
#[allow(missing_docs)] // The fields are the columns of `migrations/`.
#[derive(Clone, Debug, Default)]
pub struct PaymentSearch {
    pub merchant_id: i64,
    pub status: Option<&'static str>,
    pub order_id: Option<String>,
    /// Created at or after (ns).
    pub from: Option<i64>,
    /// Created before (ns).
    pub to: Option<i64>,
    /// After this (created_at, id), newest first.
    pub after: Option<(i64, i64)>,
    pub limit: i64,
}

/// A payment as the read model has it.
#[allow(missing_docs)] // The fields are the columns of `migrations/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentHit {
    pub id: i64,
    pub merchant_id: i64,
    pub store_id: Option<i64>,
    pub order_id: String,
    pub item_name: String,
    pub currency: String,
    pub amount_minor: i64,
    pub captured_minor: i64,
    pub fee_minor: i64,
    pub refunded_minor: i64,
    pub status: String,
    pub cancel_reason: Option<String>,
    pub channel: String,
    pub created_at: i64,
    pub status_changed_at: i64,
}

/// A merchant's payments, newest first, filtered.
pub async fn payments(client: &Client, q: &PaymentSearch) -> Result<Vec<PaymentHit>, ReadModelError> {
    let (after_time, after_id) = q.after.unwrap_or((i64::MAX, i64::MAX));
    let rows = client
        .query(
            "SELECT id, merchant_id, store_id, order_id, item_name, currency, amount_minor, captured_minor, fee_minor,
                    refunded_minor, status, cancel_reason, channel, created_at, status_changed_at
             FROM payments
             WHERE merchant_id = $1
               AND ($2::TEXT IS NULL OR status = $2)
               AND ($3::TEXT IS NULL OR order_id = $3)
               AND ($4::BIGINT IS NULL OR created_at >= $4)
               AND ($5::BIGINT IS NULL OR created_at < $5)
               AND (created_at, id) < ($6, $7)
             ORDER BY created_at DESC, id DESC LIMIT $8",
            &[&q.merchant_id, &q.status, &q.order_id, &q.from, &q.to, &after_time, &after_id, &q.limit],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| PaymentHit {
            id: r.get(0),
            merchant_id: r.get(1),
            store_id: r.get(2),
            order_id: r.get(3),
            item_name: r.get(4),
            currency: r.get(5),
            amount_minor: r.get(6),
            captured_minor: r.get(7),
            fee_minor: r.get(8),
            refunded_minor: r.get(9),
            status: r.get(10),
            cancel_reason: r.get(11),
            channel: r.get(12),
            created_at: r.get(13),
            status_changed_at: r.get(14),
        })
        .collect())
}

/// One line of the daily payments report: a merchant's payments created on a KST day, in one
/// currency. Sums are decimal strings of minor units (they may pass 2^63 summed).
#[allow(missing_docs)] // The fields are the columns of `migrations/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportLine {
    pub day_kst: i32,
    pub merchant_id: i64,
    pub currency: String,
    pub payments: i64,
    pub succeeded: i64,
    pub amount_minor: String,
    pub captured_minor: String,
    pub refunded_minor: String,
    pub fees_minor: String,
}

/// The most lines one report returns.
pub const REPORT_LINES_MAX: i64 = 10_000;

/// The daily payments report for KST days `from..=to`, optionally of one merchant.
pub async fn daily_payments(
    client: &Client,
    from: i32,
    to: i32,
    merchant_id: Option<i64>,
) -> Result<Vec<ReportLine>, ReadModelError> {
    let rows = client
        .query(
            "SELECT day_kst, merchant_id, currency, count(*),
                    count(*) FILTER (WHERE status = 'succeeded'),
                    sum(amount_minor)::TEXT, sum(captured_minor)::TEXT, sum(refunded_minor)::TEXT,
                    sum(fee_minor - fee_refunded_minor)::TEXT
             FROM payments
             WHERE day_kst >= $1 AND day_kst <= $2 AND ($3::BIGINT IS NULL OR merchant_id = $3)
             GROUP BY day_kst, merchant_id, currency
             ORDER BY day_kst, merchant_id, currency LIMIT $4",
            &[&from, &to, &merchant_id, &REPORT_LINES_MAX],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ReportLine {
            day_kst: r.get(0),
            merchant_id: r.get(1),
            currency: r.get(2),
            payments: r.get(3),
            succeeded: r.get(4),
            amount_minor: r.get(5),
            captured_minor: r.get(6),
            refunded_minor: r.get(7),
            fees_minor: r.get(8),
        })
        .collect())
}

/// How far the read model is.
pub async fn cursor(client: &Client) -> Result<Cursor, ReadModelError> {
    store::read_cursor(client).await
}

/// Row counts per table, for the status route and the tests.
pub async fn counts(client: &Client) -> Result<Vec<(&'static str, i64)>, ReadModelError> {
    let mut out = Vec::new();
    for table in ["merchants", "payments", "user_transactions", "ledger_accounts", "ledger_transfers"] {
        let row = client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await?;
        out.push((table, row.get(0)));
    }
    Ok(out)
}
