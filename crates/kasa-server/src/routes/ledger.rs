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

use crate::json::{
    AccountInput, AccountOutput, BalanceOutput, BatchResults, Bounded, Dec128, Dec64, ItemResult, LookupInput,
    LookupOutput, Page, TransferInput, TransferOutput, TOO_MANY_ITEMS,
};
use crate::problem::Problem;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::ledger::RECORD_BYTES;
use kasa_core::{Account, AccountOutcome, Command, Outcome, Transfer, TransferOutcome, ITEMS_PER_COMMAND_MAX};
use serde::de::DeserializeOwned;

/// Largest request body. A full JSON batch of 8,190 transfers with every field spelled out
/// is about 3.5 MiB; 8 MiB leaves room for whitespace without inviting abuse.
pub const BODY_BYTES_MAX: usize = 8 << 20;

/// Most items per page of a list.
pub const PAGE_LIMIT_MAX: usize = 1000;
/// Items per page when the client does not say.
pub const PAGE_LIMIT_DEFAULT: usize = 100;

/// The content types the create endpoints accept.
enum Format {
    Json,
    Binary,
}

fn format_of(headers: &HeaderMap) -> Result<Format, Problem> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(Format::Json) };
    let value = value.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = value.split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" => Ok(Format::Json),
        "application/octet-stream" => Ok(Format::Binary),
        other => Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported content type",
            format!("expected application/json or application/octet-stream, found '{other}'"),
        )),
    }
}

/// Reads the whole body, refusing more than [`BODY_BYTES_MAX`] with a problem (axum's own
/// limit answers in plain text). A declared `Content-Length` over the limit is refused before
/// a byte of the body is read, so that the client hears at once instead of sending it all.
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Problem> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "The body is too large",
            format!("the body must be at most {BODY_BYTES_MAX} bytes"),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_BYTES_MAX as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, BODY_BYTES_MAX).await.map_err(|_| too_large())
}

fn json_problem(error: serde_json::Error) -> Problem {
    use serde_json::error::Category;
    if error.to_string().starts_with(TOO_MANY_ITEMS) {
        return too_many_items();
    }
    match error.classify() {
        Category::Data => Problem::invalid_field(error.to_string()),
        Category::Syntax | Category::Eof | Category::Io => Problem::malformed_json(error.to_string()),
    }
}

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
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_items",
        "Too many items in one batch",
        format!("a batch holds at most {ITEMS_PER_COMMAND_MAX} items"),
    )
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

fn single_failure(name: &'static str, exists_with: bool) -> Problem {
    if exists_with {
        Problem::new(
            StatusCode::CONFLICT,
            name,
            "An object with this id exists with different fields",
            format!("{name}: the id is taken by an object with other fields; use a new id"),
        )
    } else {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, name, "The ledger refused the request", name.replace('_', " "))
    }
}

/// What differs between creating accounts and creating transfers; everything else about
/// the two endpoints is [`create`].
trait Create: Sized + Send + 'static {
    /// The JSON shape of one item.
    type Input: DeserializeOwned + Into<Self>;
    /// Decodes one 128-byte binary record.
    fn decode(record: &[u8; RECORD_BYTES]) -> Self;
    /// The object's id.
    fn id(&self) -> u128;
    /// The command that creates a batch of these.
    fn command(items: Vec<Self>) -> Command;
    /// Per item of the outcome: the result code's number and name, the timestamp and the
    /// amount (for `ok` and `exists`).
    fn results(outcome: Outcome) -> Vec<(u32, &'static str, u64, Option<u128>)>;
    /// The stored object with this id, as JSON.
    fn fetch(state: &kasa_core::State, id: u128) -> Option<serde_json::Value>;
}

impl Create for Account {
    type Input = AccountInput;
    fn decode(record: &[u8; RECORD_BYTES]) -> Self {
        Account::decode(record)
    }
    fn id(&self) -> u128 {
        self.id
    }
    fn command(items: Vec<Self>) -> Command {
        Command::CreateAccounts(items)
    }
    fn results(outcome: Outcome) -> Vec<(u32, &'static str, u64, Option<u128>)> {
        let Outcome::CreateAccounts(outcomes) = outcome else { unreachable!("create_accounts answers for accounts") };
        outcomes.iter().map(|o: &AccountOutcome| (o.result as u32, o.result.name(), o.timestamp, None)).collect()
    }
    fn fetch(state: &kasa_core::State, id: u128) -> Option<serde_json::Value> {
        state.ledger().account(id).and_then(|a| serde_json::to_value(AccountOutput::from(a)).ok())
    }
}

impl Create for Transfer {
    type Input = TransferInput;
    fn decode(record: &[u8; RECORD_BYTES]) -> Self {
        Transfer::decode(record)
    }
    fn id(&self) -> u128 {
        self.id
    }
    fn command(items: Vec<Self>) -> Command {
        Command::CreateTransfers(items)
    }
    fn results(outcome: Outcome) -> Vec<(u32, &'static str, u64, Option<u128>)> {
        let Outcome::CreateTransfers(outcomes) = outcome else {
            unreachable!("create_transfers answers for transfers")
        };
        outcomes
            .iter()
            .map(|o: &TransferOutcome| (o.result as u32, o.result.name(), o.timestamp, Some(o.amount)))
            .collect()
    }
    fn fetch(state: &kasa_core::State, id: u128) -> Option<serde_json::Value> {
        let ledger = state.ledger();
        ledger.transfer(id).and_then(|t| serde_json::to_value(TransferOutput::new(t, ledger.pending_status(id))).ok())
    }
}

/// `POST /v1/ledger/accounts`.
#[utoipa::path(post, path = "/v1/ledger/accounts", tag = "ledger", request_body(content = Vec<crate::json::AccountInput>, description = "one account (an object) or a batch (an array) of up to 8,190; or application/octet-stream 128-byte records"), responses((status = 200, description = "one result per item of a batch", body = crate::json::BatchResults), (status = 201, description = "a single account, created", body = crate::json::AccountOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn create_accounts(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    create::<Account>(app, headers, body).await
}

/// `POST /v1/ledger/transfers`.
#[utoipa::path(post, path = "/v1/ledger/transfers", tag = "ledger", request_body(content = Vec<crate::json::TransferInput>, description = "one transfer (an object) or a batch (an array) of up to 8,190; or application/octet-stream 128-byte records"), responses((status = 200, description = "one result per item of a batch", body = crate::json::BatchResults), (status = 201, description = "a single transfer, created", body = crate::json::TransferOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn create_transfers(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    create::<Transfer>(app, headers, body).await
}

async fn create<T: Create>(app: AppState, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let format = format_of(&headers)?;
    let body = read_body(&headers, body).await?;
    let (items, many): (Vec<T>, bool) = match format {
        Format::Binary => (parse_records(&body, T::decode)?, true),
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
    let id = items[0].id();
    // A single object is answered with the stored object, read in the same turn as the commit.
    let (outcome, object) = if many {
        (app.submit(T::command(items)).await?, None)
    } else {
        let (outcome, object) = app.submit_then_read(T::command(items), move |s, _| T::fetch(s, id)).await?;
        (outcome, object)
    };
    let results = T::results(outcome);
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
    let (_, name, _, _) = results[0];
    if !success(name) {
        return Err(single_failure(name, name.starts_with("exists_with")));
    }
    let object = object.expect("an object that was just created or exists is stored");
    let status = if name == "ok" { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(object)).into_response())
}

/// Parses a decimal 128-bit id from a path segment.
fn parse_id(raw: &str) -> Result<u128, Problem> {
    if raw.is_empty() || raw.len() > 39 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::invalid_parameter(format!("the id must be a decimal 128-bit integer, found '{raw}'")));
    }
    raw.parse().map_err(|_| Problem::invalid_parameter(format!("the id must fit in 128 bits, found '{raw}'")))
}

/// `GET /v1/ledger/accounts/{id}`.
#[utoipa::path(get, path = "/v1/ledger/accounts/{id}", tag = "ledger", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = crate::json::AccountOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn get_account(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&raw)?;
    match app.engine.read(move |s| s.ledger().account(id).map(AccountOutput::from)).await? {
        Some(account) => Ok(Json(account).into_response()),
        None => Err(Problem::not_found(format!("no account has id {id}"))),
    }
}

/// `GET /v1/ledger/transfers/{id}`.
#[utoipa::path(get, path = "/v1/ledger/transfers/{id}", tag = "ledger", params(("id" = String, Path, description = "the object id")), responses((status = 200, body = crate::json::TransferOutput), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn get_transfer(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&raw)?;
    let found = app
        .engine
        .read(move |s| s.ledger().transfer(id).map(|t| TransferOutput::new(t, s.ledger().pending_status(id))));
    match found.await? {
        Some(transfer) => Ok(Json(transfer).into_response()),
        None => Err(Problem::not_found(format!("no transfer has id {id}"))),
    }
}

fn parse_lookup(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u128>, Problem> {
    if let Format::Binary = format_of(headers)? {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported content type",
            "lookups take JSON: {\"ids\": [...]}",
        ));
    }
    let input: LookupInput = serde_json::from_slice(body).map_err(json_problem)?;
    Ok(input.ids.0.into_iter().map(|d| d.0).collect())
}

/// `POST /v1/ledger/accounts/lookup`: `{"ids": [...]}`.
#[utoipa::path(post, path = "/v1/ledger/accounts/lookup", tag = "ledger", request_body = crate::json::LookupInput, responses((status = 200, body = crate::json::LookupOutput<crate::json::AccountOutput>), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn lookup_accounts(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    let ids = parse_lookup(&headers, &read_body(&headers, body).await?)?;
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

/// `POST /v1/ledger/transfers/lookup`: `{"ids": [...]}`.
#[utoipa::path(post, path = "/v1/ledger/transfers/lookup", tag = "ledger", request_body = crate::json::LookupInput, responses((status = 200, body = crate::json::LookupOutput<crate::json::TransferOutput>), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn lookup_transfers(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let ids = parse_lookup(&headers, &read_body(&headers, body).await?)?;
    let output = app
        .engine
        .read(move |s| {
            let mut out = LookupOutput { data: Vec::new(), not_found: Vec::new() };
            for id in ids {
                match s.ledger().transfer(id) {
                    Some(t) => out.data.push(TransferOutput::new(t, s.ledger().pending_status(id))),
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
    for pair in raw.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = |what: &str| -> Result<u64, Problem> {
            value.parse::<u64>().map_err(|_| {
                Problem::invalid_parameter(format!("{what} must be a non-negative integer, found '{value}'"))
            })
        };
        match key {
            "limit" => {
                let limit = number("limit")? as usize;
                if limit == 0 || limit > PAGE_LIMIT_MAX {
                    return Err(Problem::invalid_parameter(format!(
                        "limit must be between 1 and {PAGE_LIMIT_MAX}, found {limit}"
                    )));
                }
                q.limit = limit;
            }
            "timestamp_min" => q.timestamp_min = number("timestamp_min")?,
            "timestamp_max" => q.timestamp_max = Some(number("timestamp_max")?),
            "cursor" => q.cursor = Some(value.to_string()),
            other => {
                return Err(Problem::invalid_parameter(format!(
                    "unknown parameter '{other}'; expected limit, timestamp_min, timestamp_max or cursor"
                )))
            }
        }
    }
    Ok(q)
}

/// Decodes a cursor `{prefix}{number}` that this API returned.
fn parse_cursor(cursor: &str, prefix: &str) -> Result<u64, Problem> {
    cursor
        .strip_prefix(prefix)
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| Problem::invalid_parameter(format!("cursor '{cursor}' is not one this API returned")))
}

fn page<T>(mut data: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let has_more = data.len() > limit;
    data.truncate(limit);
    let next_cursor = if has_more { data.last().map(cursor_of) } else { None };
    Page { object: "list", data, has_more, next_cursor }
}

/// `GET /v1/ledger/accounts/{id}/transfers`: newest first, cursor pagination. The cursor is
/// the timestamp of the last transfer seen (`t_<timestamp>`); timestamps are unique, so the
/// next page is everything strictly older.
#[utoipa::path(get, path = "/v1/ledger/accounts/{id}/transfers", tag = "ledger", params(("id" = String, Path, description = "the account id"), ("limit" = Option<u32>, Query, description = "1 to 1,000"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("timestamp_min" = Option<String>, Query), ("timestamp_max" = Option<String>, Query)), responses((status = 200, body = crate::json::Page<crate::json::TransferOutput>), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
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
    let p = page(items, limit, |(ts, _)| format!("t_{ts}"));
    let data = p.data.into_iter().map(|(_, t)| t).collect();
    Ok(Json(Page { object: p.object, data, has_more: p.has_more, next_cursor: p.next_cursor }).into_response())
}

/// `GET /v1/ledger/accounts/{id}/balances`: balance history of an account with the
/// `history` flag, newest first, cursor pagination. Several entries can share a timestamp
/// (expiries at the start of one batch), so the cursor is a position in the history
/// (`b_<position>`), not a timestamp.
#[utoipa::path(get, path = "/v1/ledger/accounts/{id}/balances", tag = "ledger", params(("id" = String, Path, description = "the account id"), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query), ("timestamp_min" = Option<String>, Query), ("timestamp_max" = Option<String>, Query)), responses((status = 200, body = crate::json::Page<crate::json::BalanceOutput>), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
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
            let end = before.map_or(history.len(), |b| (b as usize).min(history.len()));
            let items: Vec<(usize, BalanceOutput)> = history[..end]
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, b)| q.timestamp_max.is_none_or(|m| b.timestamp <= m))
                .take_while(|(_, b)| b.timestamp >= q.timestamp_min)
                .take(q.limit + 1)
                .map(|(i, b)| (i, BalanceOutput::from(b)))
                .collect();
            Some(items)
        })
        .await?;
    let Some(items) = found else { return Err(Problem::not_found(format!("no account has id {id}"))) };
    let p = page(items, q.limit, |(i, _)| format!("b_{i}"));
    let data = p.data.into_iter().map(|(_, b)| b).collect();
    Ok(Json(Page { object: p.object, data, has_more: p.has_more, next_cursor: p.next_cursor }).into_response())
}
