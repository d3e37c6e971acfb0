//! Imports of a partner's merchant network (issue 11), for operators:
//! `POST /v1/admin/merchant-imports` takes the whole file (CSV or NDJSON, by
//! `Content-Type`, up to [`IMPORT_BODY_BYTES_MAX`]) and starts or resumes the job in the
//! background; `GET /v1/admin/merchant-imports/{id}` says how far it is;
//! `GET .../{id}/report` lists every row's result as NDJSON. `?dry_run=true` answers what
//! each row would become and changes nothing.
//!
//! How it runs: the file is hashed with the partner's name into the job's key, so that the
//! same file uploaded again finds its job (`StartImport`) and goes on from the job's next row
//! (after a `kill -9` of the server, or of the client: the job runs here, not in the client).
//! Rows are checked into the core's types a chunk of 1,000 at a time on the blocking pool,
//! the next chunk while the sequencer commits the one before, and each chunk is one
//! `ImportRows` command. The report is made from the job's per-row codes in the state and
//! the file (for the merchant and store each row went to), so it is whole after a resume;
//! the file is kept in memory for the last [`FILES_KEPT`] jobs only.

use crate::import_file::{Checked, FileFormat, ImportFile};
use crate::problem::Problem;
use crate::{ids, AppState};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::merchant::{
    self, code_names, ImportChunk, ImportEntry, ImportError, ImportJob, PartnerName, RowResult, ROWS_PER_CHUNK_MAX,
};
use kasa_core::text::BoundedVec;
use kasa_core::Outcome;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use utoipa::ToSchema;

/// The largest upload: a million rows of a partner's file are 150 to 360 MB (the bench's,
/// with the EMVCo sample's 230-character QR payload, are 359 MB). One upload is read at a
/// time ([`Imports::uploads`]), so this bounds the memory an upload takes.
pub const IMPORT_BODY_BYTES_MAX: usize = 512 << 20;
/// How long an upload may take to arrive: 512 MiB at 10 MB/s.
pub const IMPORT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Jobs whose files stay in memory for their reports (and the running ones).
pub const FILES_KEPT: usize = 4;
/// How long a chunk waits before it is sent again to an engine that was busy.
const BUSY_BACKOFF: Duration = Duration::from_millis(20);

/// The imports this server runs or ran, with their files.
pub struct Imports {
    /// Uploads read at once: one, so that at most one big body is in memory besides the
    /// files kept.
    pub uploads: Arc<tokio::sync::Semaphore>,
    jobs: Mutex<HashMap<u64, Running>>,
}

impl Default for Imports {
    fn default() -> Self {
        Imports::new()
    }
}

impl Imports {
    /// The registry, with one upload at a time.
    pub fn new() -> Imports {
        Imports { uploads: Arc::new(tokio::sync::Semaphore::new(1)), jobs: Mutex::default() }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Running>> {
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A job's file and whether a task of this server drives it.
struct Running {
    file: Arc<ImportFile>,
    running: bool,
    /// Why it stopped before its end, if it did.
    error: Option<String>,
    /// When it was last uploaded, to keep the latest files.
    uploaded: std::time::Instant,
}

/// The path of the upload, which has its own body limit and content types (`front.rs`).
pub(crate) fn is_upload(path: &str) -> bool {
    path == "/v1/admin/merchant-imports"
}

/// An import job.
#[derive(Serialize, ToSchema)]
pub(crate) struct ImportOutput {
    /// `imp_` and a number.
    id: String,
    object: &'static str,
    /// The partner whose network it merges.
    partner: String,
    /// `running` (this server drives it), `interrupted` (not finished and not running: upload
    /// the same file again to resume) or `done`.
    status: &'static str,
    rows_total: u32,
    /// Rows committed so far, from the first.
    rows_done: u32,
    /// Merchants created.
    created: u32,
    /// Rows merged into an existing merchant (its partner id or a store added).
    merged: u32,
    /// Rows whose merchant and store were there already.
    unchanged: u32,
    /// Rows refused (see the report for why).
    refused: u32,
    created_at: crate::json::Rfc3339,
    finished_at: Option<crate::json::Rfc3339>,
    /// Why this server stopped driving it, if it did before its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Where the per-row report is.
    report_url: String,
}

fn output(job: &ImportJob, imports: &Imports) -> ImportOutput {
    let jobs = imports.jobs();
    let running = jobs.get(&job.id);
    let status = match running {
        _ if job.is_done() => "done",
        Some(r) if r.running => "running",
        _ => "interrupted",
    };
    let id = ids::format("imp", job.id);
    ImportOutput {
        report_url: format!("/v1/admin/merchant-imports/{id}/report"),
        id,
        object: "merchant_import",
        partner: job.partner.as_str().to_string(),
        status,
        rows_total: job.rows_total,
        rows_done: job.rows_done,
        created: job.created,
        merged: job.merged,
        unchanged: job.unchanged,
        refused: job.refused,
        created_at: crate::json::Rfc3339(job.created_at),
        finished_at: (job.finished_at != 0).then_some(crate::json::Rfc3339(job.finished_at)),
        error: running.and_then(|r| r.error.clone()),
    }
}

/// What a dry run found.
#[derive(Serialize, ToSchema)]
pub(crate) struct DryRunOutput {
    object: &'static str,
    partner: String,
    rows_total: u32,
    created: u32,
    merged: u32,
    unchanged: u32,
    refused: u32,
    /// One per row, as in the report (ids of merchants and stores a dry run would create are
    /// those they would get now).
    #[schema(value_type = Vec<Object>)]
    rows: Vec<serde_json::Value>,
}

/// One row of a report: `{"row", "result", "merchant_id", "store_id"}` or, refused,
/// `{"row", "result": "refused", "reason", "detail"}`. Rows count from 1, the header not
/// included.
fn report_line(row: usize, result: &str, ids: Option<(u64, u64)>, reason: Option<(&str, String)>) -> serde_json::Value {
    let mut line = serde_json::json!({ "row": row + 1, "result": result });
    if let Some((merchant_id, store_id)) = ids {
        line["merchant_id"] = ids::format("mch", merchant_id).into();
        line["store_id"] = ids::format("str", store_id).into();
    }
    if let Some((reason, detail)) = reason {
        line["reason"] = reason.into();
        line["detail"] = detail.into();
    }
    line
}

/// What a refusal the core decided means, for people (the HTTP layer's own refusals say
/// which field and why).
fn reason_detail(reason: &str) -> &'static str {
    match reason {
        "partner_id_taken" => {
            "the partner merchant id is another registration number's merchant (in this file or before)"
        }
        "partner_id_conflict" => "the merchant with this registration number has another merchant id of this partner",
        "store_taken" => "the store id is a store of another merchant",
        "merchant_closed" => "the merchant with this registration number is closed",
        "too_many_stores" => "the merchant has the most stores a merchant may have",
        "too_many_partners" => "the merchant has ids of the most partners a merchant may have",
        _ => "the row is not valid",
    }
}

/// Checks rows `from..to` of `file` on the blocking pool.
async fn check_rows(file: Arc<ImportFile>, from: usize, to: usize) -> Result<Vec<Checked>, Problem> {
    tokio::task::spawn_blocking(move || (from..to).map(|i| file.check(i)).collect())
        .await
        .map_err(|e| Problem::internal(format!("checking rows: {e}")))
}

fn query(query: Option<&str>) -> Result<(PartnerName, bool), Problem> {
    let (mut partner, mut dry_run) = (None, false);
    for (key, value) in super::query_pairs(query, &["partner", "dry_run"])? {
        match key {
            "partner" => {
                partner =
                    Some(PartnerName::new(value).map_err(|e| Problem::invalid_parameter(format!("partner: {e}")))?)
            }
            _ => {
                dry_run = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(Problem::invalid_parameter("dry_run is true or false")),
                }
            }
        }
    }
    let partner = partner.ok_or_else(|| Problem::invalid_parameter("partner is required: ?partner=alipay"))?;
    Ok((partner, dry_run))
}

/// Uploads a partner's merchant file and starts its import in the background, or resumes
/// the one of the same file (its rows already committed are skipped), or, with
/// `dry_run=true`, answers what each row would become without changing anything.
#[utoipa::path(post, path = "/v1/admin/merchant-imports", tag = "merchants",
    params(("partner" = String, Query, description = "the partner network's name: 1 to 64 of a-z, 0-9, _ and -"),
        ("dry_run" = Option<bool>, Query, description = "true: answer every row's result and change nothing")),
    request_body(content = String, description = "CSV with the header row partner_merchant_id,business_name,display_name,brn,mcc,country,city,store_id,store_name,qr_payload, or NDJSON objects with those names; at most 512 MiB", content_type = "text/csv"),
    responses((status = 202, description = "the job, started or resumed", body = ImportOutput),
        (status = 200, description = "the job, done already (the same file again); or a dry run's results", body = DryRunOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn create_import(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
    request: Request,
) -> Result<Response, Problem> {
    let (partner, dry_run) = query(raw.as_deref())?;
    let name = partner.as_str().to_string();
    if !app.engine.read(move |s| s.partners().partner_named(&name).is_some()).await? {
        return Err(Problem::not_found("no partner has this name: register it first (POST /v1/admin/partners)"));
    }
    let (parts, body) = request.into_parts();
    // The front read the body within its bound already (axum's `Bytes` would apply its own
    // 2 MB default).
    let body: Bytes = axum::body::to_bytes(body, IMPORT_BODY_BYTES_MAX).await.map_err(|_| {
        Problem::of("body_too_large", format!("the file must be at most {IMPORT_BODY_BYTES_MAX} bytes"))
    })?;
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let format = FileFormat::of(content_type)
        .ok_or_else(|| Problem::of("unsupported_media_type", "send the file as text/csv or application/x-ndjson"))?;
    let key_partner = partner.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let file = ImportFile::parse(body, format)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(key_partner.as_str().as_bytes());
        hasher.update(&[0]);
        hasher.update(file.body());
        Ok::<_, String>((file, *hasher.finalize().as_bytes()))
    })
    .await
    .map_err(|e| Problem::internal(format!("reading an import: {e}")))?;
    let (file, key) = parsed.map_err(|e| Problem::of("invalid_import_file", e))?;
    let file = Arc::new(file);
    if dry_run {
        return dry(&app, partner, file).await;
    }
    let rows = file.rows() as u32;
    let command = merchant::Command::StartImport { partner, key, rows };
    let job = match app.engine.submit(command.into()).await? {
        Outcome::Merchant(merchant::Outcome::ImportStarted(Ok(job))) => job,
        Outcome::Merchant(merchant::Outcome::ImportStarted(Err(e))) => return Err(refused(e)),
        other => return Err(Problem::internal(format!("an import's start answered {other:?}"))),
    };
    let start = {
        let mut jobs = app.imports.jobs();
        let running = jobs.get(&job.id).is_some_and(|r| r.running);
        jobs.insert(
            job.id,
            Running {
                file: file.clone(),
                running: running || !job.is_done(),
                error: None,
                uploaded: std::time::Instant::now(),
            },
        );
        forget_old_files(&mut jobs);
        !running && !job.is_done()
    };
    if start {
        let (app, id, from) = (app.clone(), job.id, job.rows_done as usize);
        tokio::spawn(async move {
            let error = drive(&app, id, file, from).await.err();
            if let Some(error) = &error {
                tracing::warn!(import = id, error = %error, "an import stopped before its end");
            }
            if let Some(r) = app.imports.jobs().get_mut(&id) {
                r.running = false;
                r.error = error;
            }
        });
    }
    let status = if job.is_done() { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok((status, Json(output(&job, &app.imports))).into_response())
}

/// Keeps the files of the [`FILES_KEPT`] latest uploads, and of every running job.
fn forget_old_files(jobs: &mut HashMap<u64, Running>) {
    while jobs.len() > FILES_KEPT {
        let oldest = jobs.iter().filter(|(_, r)| !r.running).min_by_key(|(_, r)| r.uploaded).map(|(&id, _)| id);
        match oldest {
            Some(id) => jobs.remove(&id),
            None => return,
        };
    }
}

/// Sends the rows of `file` from `from` in chunks until the job is done: the next chunk is
/// checked while the engine commits this one.
async fn drive(app: &AppState, import_id: u64, file: Arc<ImportFile>, mut from: usize) -> Result<(), String> {
    let total = file.rows();
    let chunk_end = |from: usize| (from + ROWS_PER_CHUNK_MAX).min(total);
    let mut next = Some(tokio::spawn(check_rows(file.clone(), from, chunk_end(from))));
    while from < total {
        let checked = match next.take() {
            Some(task) => task.await.map_err(|e| e.to_string())?.map_err(|p| p.detail)?,
            None => check_rows(file.clone(), from, chunk_end(from)).await.map_err(|p| p.detail)?,
        };
        let end = from + checked.len();
        if end < total {
            next = Some(tokio::spawn(check_rows(file.clone(), end, chunk_end(end))));
        }
        let entries: Vec<ImportEntry> = checked.into_iter().map(|c| c.entry).collect();
        let chunk = ImportChunk {
            import_id,
            first_row: from as u32,
            entries: BoundedVec::new(entries).map_err(|e| format!("a chunk: {e}"))?,
        };
        let command = kasa_core::Command::from(merchant::Command::ImportRows(Box::new(chunk)));
        let outcome = loop {
            match app.engine.submit(command.clone()).await {
                Err(kasa_engine::SubmitError::Busy) => tokio::time::sleep(BUSY_BACKOFF).await,
                other => break other.map_err(|e| e.to_string())?,
            }
        };
        match outcome {
            Outcome::Merchant(merchant::Outcome::RowsImported(Ok(applied))) => from = applied.job.rows_done as usize,
            // Another upload of the same file drives it too: go on from where it is.
            Outcome::Merchant(merchant::Outcome::RowsImported(Err(ImportError::OutOfOrder { rows_done }))) => {
                from = rows_done as usize;
                next = None;
            }
            other => return Err(format!("a chunk answered {other:?}")),
        }
    }
    Ok(())
}

fn refused(e: ImportError) -> Problem {
    match e {
        ImportError::KeyMismatch => {
            Problem::of("invalid_import_file", "an import of this file exists with another number of rows")
        }
        ImportError::RowsOutOfRange => Problem::of(
            "invalid_import_file",
            format!("a file has 1 to {} rows", kasa_core::merchant::ROWS_PER_IMPORT_MAX),
        ),
        other => Problem::internal(format!("an import's start answered {other:?}")),
    }
}

/// A dry run: the rows applied to a copy of the merchants' tables, here, not on the
/// sequencer (the copy is taken in one read).
async fn dry(app: &AppState, partner: PartnerName, file: Arc<ImportFile>) -> Result<Response, Problem> {
    let mut tables = app.engine.read(|s| s.merchants().clone()).await?;
    let now = app.engine.now();
    let output = tokio::task::spawn_blocking(move || {
        let checked: Vec<Checked> = (0..file.rows()).map(|i| file.check(i)).collect();
        let entries: Vec<ImportEntry> = checked.iter().map(|c| c.entry.clone()).collect();
        let results = tables.dry_run(&partner, &entries, now);
        let mut counts = [0u32; 4];
        let rows = results
            .iter()
            .zip(&checked)
            .enumerate()
            .map(|(i, (result, checked))| {
                let (n, ids) = match *result {
                    RowResult::Created { merchant_id, store_id } => (0, Some((merchant_id, store_id))),
                    RowResult::Merged { merchant_id, store_id } => (1, Some((merchant_id, store_id))),
                    RowResult::Unchanged { merchant_id, store_id } => (2, Some((merchant_id, store_id))),
                    RowResult::Refused(_) => (3, None),
                };
                counts[n] += 1;
                let reason = match result {
                    RowResult::Refused(r) => {
                        Some((r.name(), checked.detail.clone().unwrap_or_else(|| reason_detail(r.name()).to_string())))
                    }
                    _ => None,
                };
                report_line(i, result.name(), ids, reason)
            })
            .collect();
        DryRunOutput {
            object: "merchant_import_dry_run",
            partner: partner.as_str().to_string(),
            rows_total: results.len() as u32,
            created: counts[0],
            merged: counts[1],
            unchanged: counts[2],
            refused: counts[3],
            rows,
        }
    })
    .await
    .map_err(|e| Problem::internal(format!("a dry run: {e}")))?;
    Ok(Json(output).into_response())
}

/// One import: how far it is.
#[utoipa::path(get, path = "/v1/admin/merchant-imports/{id}", tag = "merchants",
    params(("id" = String, Path, description = "the import's id, imp_...")),
    responses((status = 200, description = "the job", body = ImportOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn get_import(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = ids::parse("imp", &raw, "no such import")?;
    let job = app.engine.read(move |s| s.merchants().import(id).map(ImportJob::without_results)).await?;
    let job = job.ok_or_else(|| Problem::not_found("no such import"))?;
    Ok(Json(output(&job, &app.imports)).into_response())
}

/// A committed row as the state tells it: its position, its result code, and the merchant
/// and store it went to (if the file's row names them).
type ReportRow = (usize, u8, Option<(u64, u64)>);

/// Rows read from the state per trip to the sequencer while a report is made.
const REPORT_ROWS_PER_READ: usize = 20_000;

/// Every committed row's result, as NDJSON (`{"row": 1, "result": "created", "merchant_id",
/// "store_id"}`, or `"refused"` with `reason` and `detail`), in file order. It needs the
/// file, which this server keeps for the latest jobs: after a restart, upload it again.
#[utoipa::path(get, path = "/v1/admin/merchant-imports/{id}/report", tag = "merchants",
    params(("id" = String, Path, description = "the import's id, imp_...")),
    responses((status = 200, description = "one JSON object per committed row", body = String, content_type = "application/x-ndjson"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn import_report(State(app): State<AppState>, Path(raw): Path<String>) -> Result<Response, Problem> {
    let id = ids::parse("imp", &raw, "no such import")?;
    let partner = app.engine.read(move |s| s.merchants().import(id).map(|j| j.partner.clone())).await?;
    let partner = partner.ok_or_else(|| Problem::not_found("no such import"))?;
    let file = app.imports.jobs().get(&id).map(|r| r.file.clone()).ok_or_else(|| {
        Problem::of("import_file_needed", "this server does not hold the import's file: upload the same file again")
    })?;
    let mut out = String::new();
    let mut row = 0;
    loop {
        let (shared, partner) = (file.clone(), partner.clone());
        let (part, done) = app
            .engine
            .read(move |s| {
                let m = s.merchants();
                let job = m.import(id).expect("imports are never removed");
                let codes = job.results.as_slice();
                let end = (row + REPORT_ROWS_PER_READ).min(codes.len());
                let lines: Vec<ReportRow> = (row..end)
                    .map(|i| {
                        let ids = shared.keys(i).and_then(|(brn, store_id)| {
                            let merchant = m.merchant_by_brn(&brn)?;
                            let store = m.store_by_partner_id(&partner, &store_id)?;
                            Some((merchant.id, store.id))
                        });
                        (i, codes[i], ids)
                    })
                    .collect();
                (lines, end == codes.len())
            })
            .await?;
        for (i, code, ids) in part {
            let (result, reason) = code_names(code).unwrap_or(("refused", None));
            let line = match reason {
                Some(reason) => {
                    let detail = file.check(i).detail.unwrap_or_else(|| reason_detail(reason).to_string());
                    report_line(i, result, None, Some((reason, detail)))
                }
                None => report_line(i, result, ids, None),
            };
            out.push_str(&line.to_string());
            out.push('\n');
            row = i + 1;
        }
        if done {
            break;
        }
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response())
}
