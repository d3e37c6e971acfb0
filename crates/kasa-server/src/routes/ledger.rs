//! The ledger API: create accounts and transfers (one object, a JSON batch, or a binary
//! batch of 128-byte records), look them up, and list an account's transfers and balances.
//!
//! A JSON array gets `200` and one result per item, whatever each result is: that is the
//! batch contract, as in TigerBeetle. A single JSON object gets a Stripe-like answer: `201`
//! and the object when created, `200` when it already existed identically, and a
//! problem+json with the result code as `code` otherwise (`409` for `exists_with_*`, `422`
//! for the rest). A body that is not valid JSON, or has an unknown field, a negative or
//! overflowing number, or an unknown flag, is refused as a whole with `400`/`422` before it
//! reaches the engine, so it changes nothing.

use super::{parse_cursor, parse_limit, query_pairs};
use crate::body::{format_of, json_problem, Format};
use crate::json::{
    AccountInput, AccountOutput, BalanceOutput, BatchResults, Bounded, Dec128, Dec64, ItemResult, LookupInput,
    LookupOutput, Page, TransferInput, TransferOutput,
};
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::ledger::{Command, Outcome, Records, RECORD_BYTES};
use kasa_core::{Account, AccountOutcome, Transfer, TransferFlags, TransferOutcome, ITEMS_PER_COMMAND_MAX};
use serde::de::DeserializeOwned;

/// Most items per page of a list.
pub const PAGE_LIMIT_MAX: usize = 1000;
/// Items per page when the client does not say.
pub const PAGE_LIMIT_DEFAULT: usize = 100;

/// Parses a JSON body that is either one object or an array of them.
fn parse_one_or_many<T: DeserializeOwned>(body: &[u8]) -> Result<(Vec<T>, bool), Problem> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        Some(b'[') => {
            let items: Bounded<T> = serde_json::from_slice(body).map_err(json_problem)?;
            Ok((items.0, true))
        }
        Some(b'{') => Ok((vec![serde_json::from_slice(body).map_err(json_problem)?], false)),
        Some(_) => Err(Problem::malformed_json("expected a JSON object or an array of objects")),
        None => Err(Problem::malformed_json("the body is empty; expected a JSON object or an array of objects")),
    }
}

fn too_many_items() -> Problem {
    Problem::of("too_many_items", format!("a batch holds at most {ITEMS_PER_COMMAND_MAX} items"))
}

fn check_batch_len(len: usize) -> Result<(), Problem> {
    if len > ITEMS_PER_COMMAND_MAX {
        return Err(too_many_items());
    }
    Ok(())
}

fn parse_records<T>(body: &[u8], decode: fn(&[u8; RECORD_BYTES]) -> T) -> Result<Vec<T>, Problem> {
    if !body.len().is_multiple_of(RECORD_BYTES) {
        return Err(Problem::invalid_field(format!(
            "a binary body is a whole number of {RECORD_BYTES}-byte records, found {} bytes",
            body.len()
        )));
    }
    check_batch_len(body.len() / RECORD_BYTES)?;
    Ok(body.chunks_exact(RECORD_BYTES).map(|r| decode(r.try_into().expect("record"))).collect())
}

/// A binary result: `u32` result code (its position in the documented order), `u32` zero,
/// `u64` timestamp, `u128` amount; 32 bytes, little-endian.
pub const BINARY_RESULT_BYTES: usize = 32;

fn binary_response(results: impl Iterator<Item = (u32, u64, u128)>) -> Response {
    let mut out = Vec::new();
    for (code, timestamp, amount) in results {
        out.extend_from_slice(&code.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&timestamp.to_le_bytes());
        out.extend_from_slice(&amount.to_le_bytes());
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], out).into_response()
}

/// Per item: the result code's number and name, the timestamp and the amount.
type ItemResults = Vec<(u32, &'static str, u64, Option<u128>)>;

/// What differs between creating accounts and creating transfers; everything else about
/// the two endpoints is [`create`].
trait Create: Sized + Send + kasa_core::ledger::Record + 'static {
    /// The JSON shape of one item.
    type Input: DeserializeOwned + Into<Self>;
    /// The command that creates a batch of these.
    fn command(items: Records<Self>) -> Command;
    /// Per item of the outcome: the result code's number and name, the timestamp and the
    /// amount (for `ok` and `exists`).
    fn results(outcome: &Outcome) -> Option<ItemResults>;
    /// The object a single create answers with. `created` is true for `ok` (the object as the
    /// request made it, the same for a retry with the same key) and false for `exists` (the
    /// object as stored now).
    fn render(state: &kasa_core::State, item: &Self, created: bool, timestamp: u64) -> Option<serde_json::Value>;
}

impl Create for Account {
    type Input = AccountInput;
    fn command(items: Records<Self>) -> Command {
        Command::CreateAccounts(items)
    }
    fn results(outcome: &Outcome) -> Option<ItemResults> {
        let Outcome::Accounts(outcomes) = outcome else { return None };
        Some(outcomes.iter().map(|o: &AccountOutcome| (o.result as u32, o.result.name(), o.timestamp, None)).collect())
    }
    fn render(state: &kasa_core::State, item: &Self, created: bool, timestamp: u64) -> Option<serde_json::Value> {
        // A new account has zero balances and the flags it was created with.
        let account = if created { Account { timestamp, ..*item } } else { *state.ledger().account(item.id)? };
        serde_json::to_value(AccountOutput::from(&account)).ok()
    }
}

impl Create for Transfer {
    type Input = TransferInput;
    fn command(items: Records<Self>) -> Command {
        Command::CreateTransfers(items)
    }
    fn results(outcome: &Outcome) -> Option<ItemResults> {
        let Outcome::Transfers(outcomes) = outcome else { return None };
        Some(
            outcomes
                .iter()
                .map(|o: &TransferOutcome| (o.result as u32, o.result.name(), o.timestamp, Some(o.amount)))
                .collect(),
        )
    }
    fn render(state: &kasa_core::State, item: &Self, created: bool, _timestamp: u64) -> Option<serde_json::Value> {
        // A transfer never changes once stored; only a pending one's status does, and a new
        // one is pending by definition.
        let ledger = state.ledger();
        let stored = ledger.transfer(item.id)?;
        let status = if created {
            stored.flags.has(TransferFlags::PENDING).then_some(kasa_core::PendingStatus::Pending)
        } else {
            ledger.pending_status(item.id)
        };
        serde_json::to_value(TransferOutput::new(&stored, status)).ok()
    }
}

/// Creates accounts: one (a JSON object), a batch (an array of up to 8,190) or a binary batch
/// of 128-byte records.
#[utoipa::path(post, path = "/v1/ledger/accounts", tag = "ledger",
    request_body(description = "one account (a JSON object), a batch of up to 8,190 (an array), or application/octet-stream: up to 8,190 records of 128 bytes in TigerBeetle's account layout (little-endian)",
        content(
            (crate::openapi::AccountsBody = "application/json"),
            (crate::openapi::AccountRecords = "application/octet-stream"))),
    responses((status = 200, description = "a batch: one result per item, in order (or, for a binary batch, 32 bytes per item: u32 result, u32 zero, u64 timestamp, u128 amount)", body = BatchResults),
        (status = 201, description = "a single account, created", body = AccountOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_accounts(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    create::<Account>(app, headers, body).await
}

/// Creates transfers: one (a JSON object), a batch (an array of up to 8,190) or a binary
/// batch of 128-byte records.
#[utoipa::path(post, path = "/v1/ledger/transfers", tag = "ledger",
    request_body(description = "one transfer (a JSON object), a batch of up to 8,190 (an array), or application/octet-stream: up to 8,190 records of 128 bytes in TigerBeetle's transfer layout (little-endian)",
        content(
            (crate::openapi::TransfersBody = "application/json"),
            (crate::openapi::TransferRecords = "application/octet-stream"))),
    responses((status = 200, description = "a batch: one result per item, in order (or, for a binary batch, 32 bytes per item: u32 result, u32 zero, u64 timestamp, u128 amount)", body = BatchResults),
        (status = 201, description = "a single transfer, created", body = TransferOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_transfers(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    create::<Transfer>(app, headers, body).await
}

async fn create<T: Create>(app: AppState, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let format = if body.is_empty() { Format::Json } else { format_of(content_type, true)? };
    let (items, many): (Vec<T>, bool) = match format {
        Format::Binary => (parse_records(&body, T::decode_record)?, true),
        Format::Json => {
            let (inputs, many) = parse_one_or_many::<T::Input>(&body)?;
            check_batch_len(inputs.len())?;
            (inputs.into_iter().map(Into::into).collect(), many)
        }
    };
    if items.is_empty() {
        return Ok(match format {
            Format::Binary => binary_response(std::iter::empty()),
            Format::Json => Json(BatchResults { results: Vec::new() }).into_response(),
        });
    }
    let first = items[0];
    let records = Records::new(items).map_err(|_| too_many_items())?;
    let outcome = app.ledger(T::command(records)).await?;
    let results =
        T::results(&outcome).ok_or_else(|| Problem::internal("a ledger command answered for the other kind"))?;
    if let Format::Binary = format {
        return Ok(binary_response(
            results.iter().map(|&(code, _, timestamp, amount)| (code, timestamp, amount.unwrap_or(0))),
        ));
    }
    let success = |name: &str| name == "ok" || name == "exists";
    if many {
        let results = results
            .iter()
            .enumerate()
            .map(|(index, &(_, name, timestamp, amount))| ItemResult {
                index,
                result: name,
                timestamp: success(name).then_some(Dec64(timestamp)),
                amount: amount.filter(|_| success(name)).map(Dec128),
            })
            .collect();
        return Ok(Json(BatchResults { results }).into_response());
    }
    let (_, name, timestamp, _) = results[0];
    if !success(name) {
        return Err(Problem::ledger(name));
    }
    let created = name == "ok";
    // The item is committed: a full queue must not turn that into `503 busy` ("nothing
    // happened"), so the read that renders the answer waits for its turn.
    let object = loop {
        match app.engine.read(move |s| T::render(s, &first, created, timestamp)).await {
            Err(kasa_engine::SubmitError::Busy) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            read => break read?,
        }
    }
    .ok_or_else(|| Problem::internal("an object that was created or exists is not stored"))?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(object)).into_response())
}

/// Parses a decimal 128-bit id from a path segment.
fn parse_id(raw: &str) -> Result<u128, Problem> {
    if raw.is_empty() || raw.len() > 39 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::invalid_parameter("the id must be a decimal 128-bit integer"));
    }
    raw.parse().map_err(|_| Problem::invalid_parameter("the id must fit in 128 bits"))
}

/// One account of the operators' ledger, with its balances.
#[utoipa::path(get, path = "/v1/ledger/accounts/{id}", tag = "ledger", params(("id" = String, Path, description = "the account id, a decimal u128")),
    responses((status = 200, description = "the account", body = AccountOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn get_account(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&raw)?;
    match app.engine.read(move |s| s.ledger().account(id).map(AccountOutput::from)).await? {
        Some(account) => Ok(Json(account).into_response()),
        None => Err(Problem::not_found(format!("no account has id {id}"))),
    }
}

/// One transfer of the operators' ledger (a pending one also shows `pending_status`).
#[utoipa::path(get, path = "/v1/ledger/transfers/{id}", tag = "ledger", params(("id" = String, Path, description = "the transfer id, a decimal u128")),
    responses((status = 200, description = "the transfer", body = TransferOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn get_transfer(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&raw)?;
    let found = app
        .engine
        .read(move |s| s.ledger().transfer(id).map(|t| TransferOutput::new(&t, s.ledger().pending_status(id))));
    match found.await? {
        Some(transfer) => Ok(Json(transfer).into_response()),
        None => Err(Problem::not_found(format!("no transfer has id {id}"))),
    }
}

fn parse_lookup(body: &[u8]) -> Result<Vec<u128>, Problem> {
    let input: LookupInput = crate::body::object(body)?;
    Ok(input.ids.0.into_iter().map(|d| d.0).collect())
}

/// Many accounts at once: `{"ids": [...]}`, up to 8,190.
#[utoipa::path(post, path = "/v1/ledger/accounts/lookup", tag = "ledger", request_body = LookupInput,
    responses((status = 200, description = "the accounts found, in the order asked, and the ids not found", body = LookupOutput<AccountOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn lookup_accounts(State(app): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let ids = parse_lookup(&body)?;
    let output = app
        .engine
        .read(move |s| {
            let mut out = LookupOutput { data: Vec::new(), not_found: Vec::new() };
            for id in ids {
                match s.ledger().account(id) {
                    Some(a) => out.data.push(AccountOutput::from(a)),
                    None => out.not_found.push(Dec128(id)),
                }
            }
            out
        })
        .await?;
    Ok(Json(output).into_response())
}

/// Many transfers at once: `{"ids": [...]}`, up to 8,190.
#[utoipa::path(post, path = "/v1/ledger/transfers/lookup", tag = "ledger", request_body = LookupInput,
    responses((status = 200, description = "the transfers found, in the order asked, and the ids not found", body = LookupOutput<TransferOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn lookup_transfers(State(app): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    let ids = parse_lookup(&body)?;
    let output = app
        .engine
        .read(move |s| {
            let mut out = LookupOutput { data: Vec::new(), not_found: Vec::new() };
            for id in ids {
                match s.ledger().transfer(id) {
                    Some(t) => out.data.push(TransferOutput::new(&t, s.ledger().pending_status(id))),
                    None => out.not_found.push(Dec128(id)),
                }
            }
            out
        })
        .await?;
    Ok(Json(output).into_response())
}

/// Query parameters of a list: `limit`, `timestamp_min`, `timestamp_max` (inclusive; absent
/// means no bound) and `cursor` (from the previous page's `next_cursor`).
struct ListQuery {
    limit: usize,
    timestamp_min: u64,
    timestamp_max: Option<u64>,
    cursor: Option<String>,
}

fn parse_list_query(raw: Option<String>) -> Result<ListQuery, Problem> {
    let mut q = ListQuery { limit: PAGE_LIMIT_DEFAULT, timestamp_min: 0, timestamp_max: None, cursor: None };
    for (key, value) in query_pairs(raw.as_deref(), &["limit", "timestamp_min", "timestamp_max", "cursor"])? {
        let number = |what: &str| -> Result<u64, Problem> {
            value
                .parse::<u64>()
                .map_err(|_| Problem::invalid_parameter(format!("{what} must be a non-negative integer")))
        };
        match key {
            "limit" => q.limit = parse_limit(value, PAGE_LIMIT_MAX)?,
            "timestamp_min" => q.timestamp_min = number("timestamp_min")?,
            "timestamp_max" => q.timestamp_max = Some(number("timestamp_max")?),
            _ => q.cursor = Some(value.to_string()),
        }
    }
    Ok(q)
}

/// An account's transfers, newest first. The cursor is the timestamp of the last transfer
/// seen (`t_<timestamp>`); timestamps are unique, so the next page is everything older.
#[utoipa::path(get, path = "/v1/ledger/accounts/{id}/transfers", tag = "ledger",
    params(("id" = String, Path, description = "the account id"), ("limit" = Option<u32>, Query, description = "1 to 1,000, default 100"),
        ("cursor" = Option<String>, Query, description = "the previous page's next_cursor"),
        ("timestamp_min" = Option<String>, Query, description = "nanoseconds, inclusive"), ("timestamp_max" = Option<String>, Query, description = "nanoseconds, inclusive")),
    responses((status = 200, description = "a page of transfers", body = Page<TransferOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn account_transfers(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let id = parse_id(&raw)?;
    let q = parse_list_query(query)?;
    let mut max = q.timestamp_max;
    if let Some(cursor) = &q.cursor {
        let below = parse_cursor(cursor, "t_")?.saturating_sub(1);
        max = Some(max.map_or(below, |m| m.min(below)));
    }
    let (min, limit) = (q.timestamp_min, q.limit);
    let found = app
        .engine
        .read(move |s| {
            s.ledger().account(id)?;
            // The ledger reads 0 as "no bound", so an upper bound of 0 is an empty page.
            let empty = max.is_some_and(|m| m == 0 || m < min);
            let transfers =
                if empty { Vec::new() } else { s.ledger().account_transfers(id, min, max.unwrap_or(0), limit + 1) };
            Some(
                transfers
                    .iter()
                    .map(|t| (t.timestamp, TransferOutput::new(t, s.ledger().pending_status(t.id))))
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    let Some(items) = found else { return Err(Problem::not_found(format!("no account has id {id}"))) };
    let p = Page::from_lookahead(items, limit, |(ts, _)| format!("t_{ts}"));
    Ok(Json(Page::new(p.data.into_iter().map(|(_, t)| t).collect(), p.next_cursor)).into_response())
}

/// The balance history of an account with the `history` flag, newest first. Several entries
/// can share a timestamp (expiries at the start of one batch), so the cursor is a position in
/// the history (`b_<position>`).
#[utoipa::path(get, path = "/v1/ledger/accounts/{id}/balances", tag = "ledger",
    params(("id" = String, Path, description = "the account id"), ("limit" = Option<u32>, Query, description = "1 to 1,000, default 100"),
        ("cursor" = Option<String>, Query, description = "the previous page's next_cursor"),
        ("timestamp_min" = Option<String>, Query, description = "nanoseconds, inclusive"), ("timestamp_max" = Option<String>, Query, description = "nanoseconds, inclusive")),
    responses((status = 200, description = "a page of balances", body = Page<BalanceOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn account_balances(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let id = parse_id(&raw)?;
    let q = parse_list_query(query)?;
    let before = q.cursor.as_deref().map(|c| parse_cursor(c, "b_")).transpose()?;
    let found = app
        .engine
        .read(move |s| {
            s.ledger().account(id)?;
            let history = s.ledger().account_balances(id);
            let mut end = before.map_or(history.len(), |b| (b as usize).min(history.len()));
            // An account's balances are in time order: the newest at or before
            // `timestamp_max` is found by a search, not by walking down to it (each step of
            // which may read the cold store).
            if let Some(max) = q.timestamp_max {
                end = end.min(history.partition_point(|b| b.timestamp <= max));
            }
            let items: Vec<(usize, BalanceOutput)> = (0..end)
                .rev()
                .map_while(|i| Some((i, history.get(i)?)))
                .take_while(|(_, b)| b.timestamp >= q.timestamp_min)
                .take(q.limit + 1)
                .map(|(i, b)| (i, BalanceOutput::from(&b)))
                .collect();
            Some(items)
        })
        .await?;
    let Some(items) = found else { return Err(Problem::not_found(format!("no account has id {id}"))) };
    let p = Page::from_lookahead(items, q.limit, |(i, _)| format!("b_{i}"));
    Ok(Json(Page::new(p.data.into_iter().map(|(_, b)| b).collect(), p.next_cursor)).into_response())
}
