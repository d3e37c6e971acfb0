//! The PostgreSQL read model's feed: the outbox consumer that keeps `read_model/`'s tables equal
//! to the state, a round at a time.
//!
//! A round takes up to [`EVENTS_PER_ROUND`] events after the cursor (which lives in
//! PostgreSQL, not in the core), works out which objects they name (a payment, a merchant, the
//! users whose history changed), and reads those objects' **current** views from the state in
//! one read on the sequencer (the views the API renders). It also copies the next transfers of
//! the operators' ledger by position (at most [`LEDGER_PER_ROUND`]; the ledger emits no event:
//! its transfers are an append-only array in timestamp order, so a position is a cursor) and
//! refreshes the accounts they touch. Then it writes all rows and the new cursor in **one
//! PostgreSQL transaction**: after a crash at any point the rows and the cursor agree, and the
//! next round starts where the last committed one ended (exactly once). Rows are upserts of
//! current views, so even a replay would only write the same rows again.
//!
//! Since the views are current, a row may be ahead of the cursor (a payment created at event 5
//! and refunded at event 9 is written refunded by the round that reads event 5); it is never
//! behind an event the cursor covers. A rebuild ([`rebuild`]) replays every event against the
//! final state and so ends at the same rows as the live feed.
//!
//! A user's history entries are read again from the oldest object the round names for that
//! user (a funding, a remittance, a payment, ...) down to the newest: an entry's status moves
//! with its object (a held transfer claimed 47 hours later), so the entries since then are
//! the ones that may have changed.
//!
//! The expiry of a pending transfer of the operators' ledger changes its accounts' pending
//! balances without a new transfer, so the feed keeps the pending transfers with a timeout it
//! copied ([`Expiring`], read back from PostgreSQL when a session starts) and refreshes their
//! accounts once the ledger says they expired.

use crate::read_model::store::{big, EntryRow, MerchantRow, PaymentRow, Rows};
use crate::read_model::{store, Cursor, ReadModel, ReadModelError};
use crate::render::EntryOutput;
use kasa_core::event::{Event, EventKind};
use kasa_core::wallet::{Entry, EntryKind, HistoryCursor};
use kasa_core::State;
use kasa_engine::Engine;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Events one round reads: large enough that a round's fixed cost (a read on the sequencer, a
/// transaction) is spread thin, small enough that its read holds the sequencer briefly.
pub const EVENTS_PER_ROUND: usize = 1_000;
/// Transfers of the operators' ledger one round copies (and as many new accounts): four full
/// ledger batches, so that the accounts they touch, written once a round, cost less per
/// transfer (`kasa bench ledger`'s 10,000 accounts: 8,190 a round copied about 20,000
/// transfers/s, four times that about 45,000/s; BENCHMARKS.md).
pub const LEDGER_PER_ROUND: usize = 4 * 8_190;
/// History entries read per page while a user's history is read again.
const ENTRIES_PER_PAGE: usize = 256;
/// How often the ledger is looked at while no event arrives (ledger commands emit none).
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Waits between attempts to reach PostgreSQL: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Immediate retries of a round refused for a serialization conflict (`40001`), which the
/// distributed engines answer under contention.
const SERIALIZATION_RETRIES_MAX: u32 = 8;

/// Expired pending transfers looked at per round, at most.
const EXPIRIES_PER_ROUND: usize = 8_190;

/// The operators' ledger's pending transfers with a timeout that the read model holds and
/// the ledger had not resolved when last looked at, by (expiry time, id).
#[derive(Debug, Default)]
pub struct Expiring(BTreeSet<(u64, u128)>);

/// Starts the feed on the current runtime; it runs until the engine stops.
pub fn spawn(engine: Arc<Engine>, read_model: Arc<ReadModel>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(engine, read_model))
}

async fn run(engine: Arc<Engine>, read_model: Arc<ReadModel>) {
    let mut wait = RETRY_FIRST;
    loop {
        match feed(&engine, &read_model, &mut wait).await {
            Err(ReadModelError::EngineStopped) => return,
            Err(error) => {
                read_model.failed();
                tracing::warn!(target = %read_model.target(), %error, "read model: PostgreSQL failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
            Ok(()) => return,
        }
    }
}

/// Connects, migrates, and feeds until an error.
async fn feed(engine: &Engine, read_model: &ReadModel, wait: &mut Duration) -> Result<(), ReadModelError> {
    let mut client = read_model.connect().await?;
    ReadModel::migrate(&mut client).await?;
    let mut cursor = store::read_cursor(&client).await?;
    let mut expiring = Expiring(store::pending_with_timeout(&client).await?.into_iter().collect());
    read_model.reached();
    read_model.committed(cursor);
    tracing::info!(target = %read_model.target(), event_seq = cursor.event_seq, "read model: feeding");
    *wait = RETRY_FIRST;
    let mut events = engine.events().subscribe();
    loop {
        events.borrow_and_update();
        match round(engine, &mut client, cursor, &mut expiring, read_model).await? {
            Some(next) => {
                cursor = next;
                // The feed shares the HTTP runtime: a long catch-up must not hold it.
                tokio::task::yield_now().await;
            }
            None => {
                tokio::select! {
                    changed = events.changed() => if changed.is_err() { return Err(ReadModelError::EngineStopped) },
                    () = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
        }
    }
}

/// One round: the rows of the events and ledger records after `cursor`, written with the
/// new cursor. `None` when there was nothing new.
async fn round(
    engine: &Engine,
    client: &mut tokio_postgres::Client,
    cursor: Cursor,
    expiring: &mut Expiring,
    read_model: &ReadModel,
) -> Result<Option<Cursor>, ReadModelError> {
    let head = engine.events().last_seq();
    let step = step(engine, client, cursor, expiring).await?;
    read_model.saw_head(head, step.ledger_head);
    if step.cursor == cursor {
        return Ok(None);
    }
    read_model.committed(step.cursor);
    Ok(Some(step.cursor))
}

/// What a step did.
struct Step {
    /// The cursor after it (the one before if there was nothing new).
    cursor: Cursor,
    /// Rows written.
    rows: usize,
    /// The operators' ledger's transfer count when the state was read.
    ledger_head: u64,
}

/// Reads the rows after `cursor` from the state and writes them with the new cursor, if there
/// is anything new: the one step of both the live feed and a rebuild. What `expiring` loses
/// when the write fails, the next session reads back from PostgreSQL.
async fn step(
    engine: &Engine,
    client: &mut tokio_postgres::Client,
    cursor: Cursor,
    expiring: &mut Expiring,
) -> Result<Step, ReadModelError> {
    let head = engine.events().last_seq();
    let events =
        if head > cursor.event_seq { engine.events().read(cursor.event_seq, EVENTS_PER_ROUND)? } else { Vec::new() };
    let now = engine.now();
    let mut pending = std::mem::take(expiring);
    let (collected, pending) = engine
        .read(move |s| {
            let collected = collect(s, &events, cursor, &mut pending, now);
            (collected, pending)
        })
        .await
        .map_err(|_| ReadModelError::EngineStopped)?;
    *expiring = pending;
    let (rows, next, ledger_head) = collected?;
    if next == cursor && rows.is_empty() {
        return Ok(Step { cursor, rows: 0, ledger_head });
    }
    let mut tries = 0;
    loop {
        match store::write_round(client, &rows, cursor, next).await {
            Ok(()) => return Ok(Step { cursor: next, rows: rows.len(), ledger_head }),
            Err(ReadModelError::Postgres(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE)
                    && tries < SERIALIZATION_RETRIES_MAX =>
            {
                tries += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The rows a round writes, its new cursor and the ledger's transfer count: read from the
/// state on the sequencer, at engine time `now`.
fn collect(
    s: &State,
    events: &[Event],
    cursor: Cursor,
    expiring: &mut Expiring,
    now: u64,
) -> Result<(Rows, Cursor, u64), ReadModelError> {
    let mut merchants = BTreeSet::new();
    let mut payments = BTreeSet::new();
    // Users whose history changed, with the time from which their entries are read again.
    let mut users: BTreeMap<u64, u64> = BTreeMap::new();
    for event in events {
        touched(s, &event.kind, &mut merchants, &mut payments, &mut users);
    }
    let mut rows = Rows::default();
    let m = s.merchants();
    for id in merchants {
        if let Some(merchant) = m.merchant(id) {
            rows.merchants.push(merchant_row(merchant)?);
        }
    }
    for id in payments {
        if let Some(payment) = m.payment(id) {
            rows.payments.push(payment_row(payment)?);
        }
    }
    for (user_id, since) in users {
        let mut page_cursor = HistoryCursor::default();
        'pages: loop {
            let page = s.history(user_id, page_cursor, ENTRIES_PER_PAGE);
            let full = page.len() == ENTRIES_PER_PAGE;
            for entry in page {
                if entry.timestamp < since {
                    break 'pages;
                }
                page_cursor = entry.cursor_after();
                rows.entries.push(entry_row(user_id, entry)?);
            }
            if !full {
                break;
            }
        }
    }
    // The operators' ledger, by position.
    let ledger = s.ledger();
    let mut next = cursor;
    let transfers_end = (ledger.transfers_count() as u64).min(cursor.ledger_transfers + LEDGER_PER_ROUND as u64);
    let mut accounts: BTreeMap<u128, ()> = BTreeMap::new();
    for position in cursor.ledger_transfers..transfers_end {
        let Some(t) = ledger.transfer_at(position as usize) else { break };
        accounts.insert(t.debit_account_id, ());
        accounts.insert(t.credit_account_id, ());
        if t.flags.has(kasa_core::ledger::TransferFlags::PENDING) && t.timeout != 0 {
            expiring
                .0
                .insert((t.timestamp.saturating_add(u64::from(t.timeout) * kasa_core::time::NANOS_PER_SECOND), t.id));
        }
        rows.transfers.push(t);
        next.ledger_transfers = position + 1;
    }
    // Pending transfers whose time is up: once the ledger resolved them they leave the set,
    // and an expired one's accounts are written again (nothing else would say they changed).
    for _ in 0..EXPIRIES_PER_ROUND {
        let Some(&(at, id)) = expiring.0.first() else { break };
        if at > now {
            break;
        }
        let status = ledger.pending_status(id);
        if status == Some(kasa_core::ledger::PendingStatus::Pending) {
            // Due, but the engine has not run the expiry yet: look again next round.
            break;
        }
        expiring.0.pop_first();
        if status == Some(kasa_core::ledger::PendingStatus::Expired) {
            if let Some(t) = ledger.transfer(id) {
                accounts.insert(t.debit_account_id, ());
                accounts.insert(t.credit_account_id, ());
            }
        }
    }
    let accounts_end = (ledger.accounts_count() as u64).min(cursor.ledger_accounts + LEDGER_PER_ROUND as u64);
    for position in cursor.ledger_accounts..accounts_end {
        let Some(a) = ledger.account_at(position as usize) else { break };
        accounts.insert(a.id, ());
        next.ledger_accounts = position + 1;
    }
    // Accounts created after `accounts_end` get their rows in the round that reaches their
    // position (accounts are in timestamp order); the others are written now, as they are.
    let last_copied = accounts_end.checked_sub(1).and_then(|p| ledger.account_at(p as usize)).map(|a| a.timestamp);
    for id in accounts.into_keys() {
        if let Some(a) = ledger.account(id).filter(|a| last_copied.is_some_and(|last| a.timestamp <= last)) {
            rows.accounts.push(*a);
        }
    }
    if let Some(last) = events.last() {
        next.event_seq = last.seq;
        next.event_time = last.timestamp;
    }
    Ok((rows, next, ledger.transfers_count() as u64))
}

/// What an event names: merchants, payments, and users (with the time from which their history
/// may have changed).
fn touched(
    s: &State,
    kind: &EventKind,
    merchants: &mut BTreeSet<u64>,
    payments: &mut BTreeSet<u64>,
    users: &mut BTreeMap<u64, u64>,
) {
    use kasa_core::merchant::Event as M;
    use kasa_core::partner::Event as P;
    use kasa_core::wallet::Event as W;
    let mut user = |user_id: u64, since: u64| {
        if user_id != 0 {
            let at = users.entry(user_id).or_insert(since);
            *at = (*at).min(since);
        }
    };
    let w = s.wallets();
    let mut remittance = |id: u64| {
        if let Some(r) = w.remittance(id) {
            user(r.from_user, r.created_at);
            if let Some(to) = r.to_user {
                user(to, r.created_at);
            }
        }
    };
    match kind {
        EventKind::Wallet(event) => match event {
            W::FundingStarted { funding_id, .. } | W::FundingSettled { funding_id, .. } => {
                if let Some(f) = w.funding(*funding_id) {
                    user(f.user_id, f.created_at);
                }
            }
            W::RemittanceCompleted { remittance_id, .. }
            | W::RemittanceHeld { remittance_id, .. }
            | W::RemittanceClaimed { remittance_id, .. }
            | W::RemittanceCancelled { remittance_id }
            | W::RemittanceReturned { remittance_id }
            | W::RequestPaid { remittance_id, .. } => remittance(*remittance_id),
            W::WalletAdjusted { adjustment_id, .. } => {
                if let Some(a) = w.adjustment(*adjustment_id) {
                    user(a.user_id, a.created_at);
                }
            }
            _ => {}
        },
        EventKind::Merchant(event) => {
            let payment = match event {
                M::PaymentCreated { payment_id, .. }
                | M::PaymentCanceled { payment_id, .. }
                | M::PaymentExpired { payment_id, .. }
                | M::PaymentApproved { payment_id, .. }
                | M::PaymentSucceeded { payment_id, .. }
                | M::RefundSucceeded { payment_id, .. } => Some(*payment_id),
                _ => None,
            };
            let merchant_id = match event {
                M::MerchantCreated { merchant_id } | M::MerchantStatusChanged { merchant_id, .. } => Some(*merchant_id),
                _ => None,
            };
            merchants.extend(merchant_id);
            if let Some(p) = payment.and_then(|id| s.merchants().payment(id)) {
                payments.insert(p.id);
                if p.channel != kasa_core::merchant::Channel::Partner {
                    user(p.user_id, p.created_at);
                }
            }
        }
        EventKind::Partner(event) => {
            let partners = s.partners();
            match event {
                P::PaymentSucceeded { payment_id, .. } | P::PaymentCanceled { payment_id, .. } => {
                    payments.extend(partners.payment(*payment_id).map(|p| p.merchant_payment_id));
                }
                P::RefundSucceeded { refund_id, .. } => {
                    let payment = partners.refund(*refund_id).and_then(|r| partners.payment(r.payment_id));
                    payments.extend(payment.map(|p| p.merchant_payment_id));
                }
                P::OverseasCreated { payment_id, .. }
                | P::OverseasSucceeded { payment_id, .. }
                | P::OverseasFailed { payment_id, .. } => {
                    if let Some(p) = partners.overseas_payment(*payment_id) {
                        user(p.user_id, p.created_at);
                    }
                }
                P::OverseasRefunded { refund_id, .. } => {
                    let payment =
                        partners.overseas_refund(*refund_id).and_then(|r| partners.overseas_payment(r.payment_id));
                    if let Some(p) = payment {
                        user(p.user_id, p.created_at);
                    }
                }
                _ => {}
            }
        }
    }
}

fn merchant_row(m: &kasa_core::merchant::Merchant) -> Result<MerchantRow, ReadModelError> {
    Ok(MerchantRow {
        id: big(m.id, "merchant id")?,
        business_name: m.business_name.as_str().to_string(),
        display_name: m.display_name.as_str().to_string(),
        brn: m.brn.as_str().to_string(),
        mcc: format!("{:04}", u16::from(m.mcc)),
        fee_bps: i32::from(m.fee_bps),
        status: m.status.name(),
        created_at: big(m.created_at, "time")?,
        status_changed_at: big(m.status_changed_at, "time")?,
    })
}

fn payment_row(p: &kasa_core::merchant::Payment) -> Result<PaymentRow, ReadModelError> {
    Ok(PaymentRow {
        id: big(p.id, "payment id")?,
        merchant_id: big(p.merchant_id, "merchant id")?,
        store_id: p.store_id.map(|id| big(id, "store id")).transpose()?,
        order_id: p.order_id.as_str().to_string(),
        item_name: p.item_name.as_str().to_string(),
        currency: kasa_core::wallet::WALLET_CURRENCY.code(),
        amount_minor: big(p.amount.minor(), "amount")?,
        captured_minor: big(p.captured.minor(), "amount")?,
        fee_minor: big(p.fee.minor(), "amount")?,
        refunded_minor: big(p.refunded.minor(), "amount")?,
        fee_refunded_minor: big(p.fee_refunded.minor(), "amount")?,
        refunds: i32::from(p.refunds),
        status: p.status.name(),
        cancel_reason: p.cancel_reason.map(|r| r.name()),
        capture_method: p.capture_method.name(),
        channel: p.channel.name(),
        created_at: big(p.created_at, "time")?,
        approved_at: big(p.approved_at, "time")?,
        status_changed_at: big(p.status_changed_at, "time")?,
        day_kst: i32::try_from(kasa_core::time::kst_day(p.created_at))
            .map_err(|_| ReadModelError::OutOfRange("day"))?,
    })
}

fn entry_row(user_id: u64, entry: Entry) -> Result<EntryRow, ReadModelError> {
    let timeout_return = entry.kind == EntryKind::Returned && entry.status == "returned";
    let row = EntryRow {
        user_id: big(user_id, "user id")?,
        kind: entry.kind.name(),
        object_id: big(entry.object_id, "object id")?,
        ts: big(entry.timestamp, "time")?,
        rank: if timeout_return { 0 } else { 1 },
        status: entry.status,
        amount_minor: big(entry.amount.minor(), "amount")?,
        credit: entry.credit,
        body: String::new(),
    };
    let body = serde_json::to_string(&EntryOutput::from(entry)).map_err(|_| ReadModelError::OutOfRange("entry"))?;
    Ok(EntryRow { body, ..row })
}

/// Empties the read model and feeds it again from the event log and the ledger of `engine`
/// (a server's data directory, opened by `kasa read-model rebuild` while the server is
/// stopped): the same rounds as the live feed, until it has everything. Returns the cursor
/// it ended at and the rows written.
pub async fn rebuild(engine: &Engine, read_model: &ReadModel) -> Result<(Cursor, u64), ReadModelError> {
    let mut client = read_model.connect().await?;
    ReadModel::migrate(&mut client).await?;
    store::truncate(&mut client).await?;
    let mut cursor = store::read_cursor(&client).await?;
    let mut rows = 0u64;
    let mut expiring = Expiring::default();
    loop {
        let step = step(engine, &mut client, cursor, &mut expiring).await?;
        if step.cursor == cursor {
            return Ok((cursor, rows));
        }
        rows += step.rows as u64;
        cursor = step.cursor;
    }
}
