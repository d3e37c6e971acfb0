//! One round of the feed, written to PostgreSQL: the rows it derived and the cursor that covers
//! them, in one transaction. The cursor is updated only from the value this feed read
//! (`WHERE event_seq = old ...`), so a second feeder on the same database fails its round
//! instead of writing over the first: exactly once, whatever crashes in between.
//!
//! Each table is written with one multi-row upsert (`INSERT ... SELECT FROM UNNEST(arrays) ON
//! CONFLICT DO UPDATE`), so a round costs a handful of round trips however many rows it has.
//! A row names each object once per round (the feed deduplicates), as an upsert requires.

use super::{Cursor, ReadModelError};
use tokio_postgres::Client;

/// A merchant's row.
#[allow(missing_docs)] // The fields are the columns of `migrations/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantRow {
    pub id: i64,
    pub business_name: String,
    pub display_name: String,
    pub brn: String,
    pub mcc: String,
    pub fee_bps: i32,
    pub status: &'static str,
    pub created_at: i64,
    pub status_changed_at: i64,
}

/// A payment's row.
#[allow(missing_docs)] // The fields are the columns of `migrations/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRow {
    pub id: i64,
    pub merchant_id: i64,
    pub store_id: Option<i64>,
    pub order_id: String,
    pub item_name: String,
    pub currency: &'static str,
    pub amount_minor: i64,
    pub captured_minor: i64,
    pub fee_minor: i64,
    pub refunded_minor: i64,
    pub fee_refunded_minor: i64,
    pub refunds: i32,
    pub status: &'static str,
    pub cancel_reason: Option<&'static str>,
    pub capture_method: &'static str,
    pub channel: &'static str,
    pub created_at: i64,
    pub approved_at: i64,
    pub status_changed_at: i64,
    pub day_kst: i32,
}

/// An entry of a user's history.
#[allow(missing_docs)] // The fields are the columns of `migrations/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRow {
    pub user_id: i64,
    pub kind: &'static str,
    pub object_id: i64,
    pub ts: i64,
    pub rank: i16,
    pub status: &'static str,
    pub amount_minor: i64,
    pub credit: bool,
    /// The entry as the API renders it.
    pub body: String,
}

/// Everything one round writes.
#[allow(missing_docs)] // The fields are the columns of `migrations/`.
#[derive(Debug, Default)]
pub struct Rows {
    pub merchants: Vec<MerchantRow>,
    pub payments: Vec<PaymentRow>,
    pub entries: Vec<EntryRow>,
    pub accounts: Vec<kasa_core::ledger::Account>,
    pub transfers: Vec<kasa_core::ledger::Transfer>,
}

impl Rows {
    /// Whether the round has no row.
    pub fn is_empty(&self) -> bool {
        self.merchants.is_empty()
            && self.payments.is_empty()
            && self.entries.is_empty()
            && self.accounts.is_empty()
            && self.transfers.is_empty()
    }

    /// Rows in all.
    pub fn len(&self) -> usize {
        self.merchants.len() + self.payments.len() + self.entries.len() + self.accounts.len() + self.transfers.len()
    }
}

/// A `u64` as a `BIGINT`.
pub fn big(value: u64, what: &'static str) -> Result<i64, ReadModelError> {
    i64::try_from(value).map_err(|_| ReadModelError::OutOfRange(what))
}

/// The read model's cursor.
pub async fn read_cursor(client: &Client) -> Result<Cursor, ReadModelError> {
    let row = client
        .query_one(
            "SELECT event_seq, ledger_accounts, ledger_transfers, event_time FROM read_model_cursor WHERE id = 1",
            &[],
        )
        .await?;
    let get = |i: usize| -> u64 { u64::try_from(row.get::<_, i64>(i)).unwrap_or(0) };
    Ok(Cursor { event_seq: get(0), ledger_accounts: get(1), ledger_transfers: get(2), event_time: get(3) })
}

/// The pending transfers with a timeout of the operators' ledger, as (expiry time, id): the
/// feed's [`crate::consumers::read_model::Expiring`] when a session starts.
pub async fn pending_with_timeout(client: &Client) -> Result<Vec<(u64, u128)>, ReadModelError> {
    let rows = client
        .query(
            "SELECT id::TEXT, \"timestamp\", timeout FROM ledger_transfers WHERE timeout > 0 AND (flags & 2) <> 0",
            &[],
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let id: u128 = r.get::<_, String>(0).parse().ok()?;
            let (timestamp, timeout): (i64, i64) = (r.get(1), r.get(2));
            let at = u64::try_from(timestamp)
                .ok()?
                .saturating_add(u64::try_from(timeout).ok()?.saturating_mul(kasa_core::time::NANOS_PER_SECOND));
            Some((at, id))
        })
        .collect())
}

/// Empties the read model (for a rebuild): every row, and the cursor back to the start.
pub async fn truncate(client: &mut Client) -> Result<(), ReadModelError> {
    let tx = client.transaction().await?;
    for table in ["merchants", "payments", "user_transactions", "ledger_accounts", "ledger_transfers"] {
        tx.execute(&format!("DELETE FROM {table}"), &[]).await?;
    }
    tx.execute(
        "UPDATE read_model_cursor SET event_seq = 0, ledger_accounts = 0, ledger_transfers = 0, event_time = 0 WHERE id = 1",
        &[],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

const UPSERT_MERCHANTS: &str = "INSERT INTO merchants (id, business_name, display_name, brn, mcc, fee_bps, status, created_at, status_changed_at)
    SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::INT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[])
    ON CONFLICT (id) DO UPDATE SET business_name = excluded.business_name, display_name = excluded.display_name,
        brn = excluded.brn, mcc = excluded.mcc, fee_bps = excluded.fee_bps, status = excluded.status,
        created_at = excluded.created_at, status_changed_at = excluded.status_changed_at";

const UPSERT_PAYMENTS: &str =
    "INSERT INTO payments (id, merchant_id, store_id, order_id, item_name, currency, amount_minor,
        captured_minor, fee_minor, refunded_minor, fee_refunded_minor, refunds, status, cancel_reason, capture_method,
        channel, created_at, approved_at, status_changed_at, day_kst)
    SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::BIGINT[],
        $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::BIGINT[], $12::INT[], $13::TEXT[], $14::TEXT[], $15::TEXT[],
        $16::TEXT[], $17::BIGINT[], $18::BIGINT[], $19::BIGINT[], $20::INT[])
    ON CONFLICT (id) DO UPDATE SET merchant_id = excluded.merchant_id, store_id = excluded.store_id,
        order_id = excluded.order_id, item_name = excluded.item_name, currency = excluded.currency,
        amount_minor = excluded.amount_minor, captured_minor = excluded.captured_minor, fee_minor = excluded.fee_minor,
        refunded_minor = excluded.refunded_minor, fee_refunded_minor = excluded.fee_refunded_minor,
        refunds = excluded.refunds, status = excluded.status, cancel_reason = excluded.cancel_reason,
        capture_method = excluded.capture_method, channel = excluded.channel, created_at = excluded.created_at,
        approved_at = excluded.approved_at, status_changed_at = excluded.status_changed_at, day_kst = excluded.day_kst";

const UPSERT_ENTRIES: &str = "INSERT INTO user_transactions (user_id, ts, rank, object_id, kind, status, amount_minor, credit, body)
    SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::SMALLINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::BIGINT[], $8::BOOLEAN[], $9::TEXT[])
    ON CONFLICT (user_id, ts, rank, object_id) DO UPDATE SET kind = excluded.kind, status = excluded.status,
        amount_minor = excluded.amount_minor, credit = excluded.credit, body = excluded.body";

const UPSERT_ACCOUNTS: &str = "INSERT INTO ledger_accounts (id, debits_pending, debits_posted, credits_pending, credits_posted,
        user_data_128, user_data_64, user_data_32, ledger, code, flags, \"timestamp\")
    SELECT a::NUMERIC, b::NUMERIC, c::NUMERIC, d::NUMERIC, e::NUMERIC, f::NUMERIC, g::NUMERIC, h, i, j, k, l
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::INT[], $11::INT[], $12::BIGINT[])
        AS t(a, b, c, d, e, f, g, h, i, j, k, l)
    ON CONFLICT (id) DO UPDATE SET debits_pending = excluded.debits_pending, debits_posted = excluded.debits_posted,
        credits_pending = excluded.credits_pending, credits_posted = excluded.credits_posted,
        user_data_128 = excluded.user_data_128, user_data_64 = excluded.user_data_64, user_data_32 = excluded.user_data_32,
        ledger = excluded.ledger, code = excluded.code, flags = excluded.flags, \"timestamp\" = excluded.\"timestamp\"";

const UPSERT_TRANSFERS: &str = "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, pending_id,
        user_data_128, user_data_64, user_data_32, timeout, ledger, code, flags, \"timestamp\")
    SELECT a::NUMERIC, b::NUMERIC, c::NUMERIC, d::NUMERIC, e::NUMERIC, f::NUMERIC, g::NUMERIC, h, i, j, k, l, m
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $11::INT[], $12::INT[], $13::BIGINT[])
        AS t(a, b, c, d, e, f, g, h, i, j, k, l, m)
    ON CONFLICT (id) DO NOTHING";

/// Writes one round: the rows, and the cursor moved from `from` to `to`, in one transaction.
pub async fn write_round(client: &mut Client, rows: &Rows, from: Cursor, to: Cursor) -> Result<(), ReadModelError> {
    let tx = client.transaction().await?;
    let moved = tx
        .execute(
            "UPDATE read_model_cursor SET event_seq = $1, ledger_accounts = $2, ledger_transfers = $3, event_time = $4
             WHERE id = 1 AND event_seq = $5 AND ledger_accounts = $6 AND ledger_transfers = $7",
            &[
                &big(to.event_seq, "event seq")?,
                &big(to.ledger_accounts, "ledger accounts")?,
                &big(to.ledger_transfers, "ledger transfers")?,
                &big(to.event_time, "event time")?,
                &big(from.event_seq, "event seq")?,
                &big(from.ledger_accounts, "ledger accounts")?,
                &big(from.ledger_transfers, "ledger transfers")?,
            ],
        )
        .await?;
    if moved != 1 {
        return Err(ReadModelError::CursorMoved);
    }
    if !rows.merchants.is_empty() {
        let m = &rows.merchants;
        tx.execute(
            UPSERT_MERCHANTS,
            &[
                &m.iter().map(|r| r.id).collect::<Vec<_>>(),
                &m.iter().map(|r| r.business_name.as_str()).collect::<Vec<_>>(),
                &m.iter().map(|r| r.display_name.as_str()).collect::<Vec<_>>(),
                &m.iter().map(|r| r.brn.as_str()).collect::<Vec<_>>(),
                &m.iter().map(|r| r.mcc.as_str()).collect::<Vec<_>>(),
                &m.iter().map(|r| r.fee_bps).collect::<Vec<_>>(),
                &m.iter().map(|r| r.status).collect::<Vec<_>>(),
                &m.iter().map(|r| r.created_at).collect::<Vec<_>>(),
                &m.iter().map(|r| r.status_changed_at).collect::<Vec<_>>(),
            ],
        )
        .await?;
    }
    if !rows.payments.is_empty() {
        let p = &rows.payments;
        tx.execute(
            UPSERT_PAYMENTS,
            &[
                &p.iter().map(|r| r.id).collect::<Vec<_>>(),
                &p.iter().map(|r| r.merchant_id).collect::<Vec<_>>(),
                &p.iter().map(|r| r.store_id).collect::<Vec<_>>(),
                &p.iter().map(|r| r.order_id.as_str()).collect::<Vec<_>>(),
                &p.iter().map(|r| r.item_name.as_str()).collect::<Vec<_>>(),
                &p.iter().map(|r| r.currency).collect::<Vec<_>>(),
                &p.iter().map(|r| r.amount_minor).collect::<Vec<_>>(),
                &p.iter().map(|r| r.captured_minor).collect::<Vec<_>>(),
                &p.iter().map(|r| r.fee_minor).collect::<Vec<_>>(),
                &p.iter().map(|r| r.refunded_minor).collect::<Vec<_>>(),
                &p.iter().map(|r| r.fee_refunded_minor).collect::<Vec<_>>(),
                &p.iter().map(|r| r.refunds).collect::<Vec<_>>(),
                &p.iter().map(|r| r.status).collect::<Vec<_>>(),
                &p.iter().map(|r| r.cancel_reason).collect::<Vec<_>>(),
                &p.iter().map(|r| r.capture_method).collect::<Vec<_>>(),
                &p.iter().map(|r| r.channel).collect::<Vec<_>>(),
                &p.iter().map(|r| r.created_at).collect::<Vec<_>>(),
                &p.iter().map(|r| r.approved_at).collect::<Vec<_>>(),
                &p.iter().map(|r| r.status_changed_at).collect::<Vec<_>>(),
                &p.iter().map(|r| r.day_kst).collect::<Vec<_>>(),
            ],
        )
        .await?;
    }
    if !rows.entries.is_empty() {
        let e = &rows.entries;
        tx.execute(
            UPSERT_ENTRIES,
            &[
                &e.iter().map(|r| r.user_id).collect::<Vec<_>>(),
                &e.iter().map(|r| r.ts).collect::<Vec<_>>(),
                &e.iter().map(|r| r.rank).collect::<Vec<_>>(),
                &e.iter().map(|r| r.object_id).collect::<Vec<_>>(),
                &e.iter().map(|r| r.kind).collect::<Vec<_>>(),
                &e.iter().map(|r| r.status).collect::<Vec<_>>(),
                &e.iter().map(|r| r.amount_minor).collect::<Vec<_>>(),
                &e.iter().map(|r| r.credit).collect::<Vec<_>>(),
                &e.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
            ],
        )
        .await?;
    }
    if !rows.accounts.is_empty() {
        let a = &rows.accounts;
        let text = |f: fn(&kasa_core::ledger::Account) -> u128| a.iter().map(|r| f(r).to_string()).collect::<Vec<_>>();
        tx.execute(
            UPSERT_ACCOUNTS,
            &[
                &text(|r| r.id),
                &text(|r| r.debits_pending),
                &text(|r| r.debits_posted),
                &text(|r| r.credits_pending),
                &text(|r| r.credits_posted),
                &text(|r| r.user_data_128),
                &text(|r| u128::from(r.user_data_64)),
                &a.iter().map(|r| i64::from(r.user_data_32)).collect::<Vec<_>>(),
                &a.iter().map(|r| i64::from(r.ledger)).collect::<Vec<_>>(),
                &a.iter().map(|r| i32::from(r.code)).collect::<Vec<_>>(),
                &a.iter().map(|r| i32::from(r.flags.0)).collect::<Vec<_>>(),
                &a.iter().map(|r| big(r.timestamp, "timestamp")).collect::<Result<Vec<_>, _>>()?,
            ],
        )
        .await?;
    }
    if !rows.transfers.is_empty() {
        let t = &rows.transfers;
        let text = |f: fn(&kasa_core::ledger::Transfer) -> u128| t.iter().map(|r| f(r).to_string()).collect::<Vec<_>>();
        tx.execute(
            UPSERT_TRANSFERS,
            &[
                &text(|r| r.id),
                &text(|r| r.debit_account_id),
                &text(|r| r.credit_account_id),
                &text(|r| r.amount),
                &text(|r| r.pending_id),
                &text(|r| r.user_data_128),
                &text(|r| u128::from(r.user_data_64)),
                &t.iter().map(|r| i64::from(r.user_data_32)).collect::<Vec<_>>(),
                &t.iter().map(|r| i64::from(r.timeout)).collect::<Vec<_>>(),
                &t.iter().map(|r| i64::from(r.ledger)).collect::<Vec<_>>(),
                &t.iter().map(|r| i32::from(r.code)).collect::<Vec<_>>(),
                &t.iter().map(|r| i32::from(r.flags.0)).collect::<Vec<_>>(),
                &t.iter().map(|r| big(r.timestamp, "timestamp")).collect::<Result<Vec<_>, _>>()?,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
