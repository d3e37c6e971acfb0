//! The front of every request, as one middleware (each layer costs an allocation and a clone
//! of the routes per request). In order:
//!
//! 1. Operations endpoints (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`) go
//!    straight through: they take no permit, so they answer during any flood.
//! 2. The ledger and admin APIs need the operator key, checked before a byte of the body is
//!    read; every path under them, routed or not, answers 401 without it.
//! 3. The body is read whole, within its size bound and [`BODY_READ_TIMEOUT`] (see
//!    `body.rs`), and its content type checked (415): JSON for the API, a form for the
//!    approval page (`/pay/...`). A merchant import's file (`routes/imports.rs`) has its
//!    own bounds (512 MiB, 60 seconds, one upload read at a time) and content types.
//!    On a follower every write but a promotion is refused first (503 `read_only_follower`).
//! 4. Only then does the request take one of the in-flight permits (503 `busy` when none is
//!    left): a slow client holds a connection, never a permit. A follower's poll of the
//!    journal's frames takes none (see `routes/replication.rs`).
//! 5. An `Idempotency-Key` is checked and set up for the handler (`idempotency.rs`).
//! 6. Any error response that is not problem+json yet (axum's own rejections) becomes one,
//!    except the approval page's HTML.
//! 7. One log line: method, route template, status, problem code, latency; never a query
//!    string, a header or a body, so never a token, PIN or account number.

use crate::body::{form_of, format_of, BODY_BYTES_MAX, BODY_READ_TIMEOUT, LEDGER_BODY_BYTES_MAX};
use crate::problem::{Problem, ProblemCode};
use crate::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Paths that need no credentials and take no permit.
fn is_operations(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json")
        || path == "/docs"
        || path.starts_with("/docs/")
}

/// The ledger API and the admin API are for operators only.
fn needs_operator(path: &str) -> bool {
    ["/v1/ledger", "/v1/admin"]
        .iter()
        .any(|prefix| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// The ledger's create endpoints take operators' batches: larger bodies, and binary records.
fn is_ledger_create(path: &str) -> bool {
    matches!(path, "/v1/ledger/accounts" | "/v1/ledger/transfers")
}

/// The largest body `path` takes: ledger batches and lookups carry up to 8,190 items, a
/// merchant import's file a million rows; everything else is small.
fn body_limit(path: &str) -> usize {
    let lookup = matches!(path, "/v1/ledger/accounts/lookup" | "/v1/ledger/transfers/lookup");
    if crate::routes::imports::is_upload(path) {
        crate::routes::imports::IMPORT_BODY_BYTES_MAX
    } else if is_ledger_create(path) || lookup {
        LEDGER_BODY_BYTES_MAX
    } else {
        BODY_BYTES_MAX
    }
}

/// The middleware. See the module documentation.
pub(crate) async fn front(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = handle(app, request, next).await;
    let response = ensure_problem(response).await;
    let code = response.extensions().get::<ProblemCode>().map_or("", |c| c.0);
    tracing::info!(
        target: "kasa::request",
        method = %method,
        route = route.as_deref().unwrap_or("(unrouted)"),
        status = response.status().as_u16(),
        code,
        latency_us = started.elapsed().as_micros() as u64,
    );
    response
}

async fn handle(app: AppState, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if is_operations(path) {
        return next.run(request).await;
    }
    if needs_operator(path) && !crate::bearer_token(request.headers()).is_some_and(|t| app.operator_key.matches(t)) {
        return Problem::unauthorized().into_response();
    }
    // A follower takes its changes from its primary's journal only: every write is refused
    // here, before its body is read or anything (a PIN check, an SMS) is done for it. The
    // engine refuses commands as well, for whatever gets past (a read with a side effect).
    if app.engine.role() == kasa_engine::Role::Follower
        && !matches!(*request.method(), Method::GET | Method::HEAD)
        && path != "/v1/admin/promote"
    {
        return Problem::read_only_follower().into_response();
    }
    let ledger_create = is_ledger_create(path);
    let limit = body_limit(path);
    // A follower's poll takes no in-flight permit (its reads have their own bound,
    // `replication::READERS_KEPT`): on a synchronous primary, writes waiting for the
    // follower hold permits, and a poll refused for want of one would never release them.
    let needs_permit = path != crate::routes::replication::FRAMES_PATH;
    // A merchant import's file: one read at a time, before a byte of it is read, with its own
    // time bound; its handler checks its content type (CSV or NDJSON).
    let upload = crate::routes::imports::is_upload(path);
    let _upload_permit = if upload {
        match app.imports.uploads.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return Problem::busy().into_response(),
        }
    } else {
        None
    };
    let timeout = if upload { crate::routes::imports::IMPORT_READ_TIMEOUT } else { BODY_READ_TIMEOUT };
    let (parts, body) = request.into_parts();
    let bytes = match read(&parts.headers, body, limit, timeout).await {
        Ok(bytes) => bytes,
        Err(problem) => return problem.into_response(),
    };
    if !bytes.is_empty() && !upload {
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let checked = if crate::pay_page::is_page(parts.uri.path()) {
            form_of(content_type)
        } else {
            format_of(content_type, ledger_create).map(|_| ())
        };
        if let Err(problem) = checked {
            return problem.into_response();
        }
    }
    let permit = match needs_permit.then(|| app.in_flight.clone().try_acquire_owned()) {
        Some(Err(_)) => return Problem::busy().into_response(),
        permit => permit,
    };
    let context = match crate::idempotency::prepare(&parts, &bytes) {
        Ok(context) => context,
        Err(problem) => return problem.into_response(),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let response = crate::idempotency::run(context, next, request).await;
    drop(permit);
    response
}

/// Reads the whole body within `limit` bytes and `timeout` ([`BODY_READ_TIMEOUT`] but for
/// an import's file). A declared length over the limit is refused before a byte is read.
async fn read(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<bytes::Bytes, Problem> {
    let too_large = || Problem::of("body_too_large", format!("the body must be at most {limit} bytes"));
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => {
            Err(Problem::of("request_timeout", format!("the body did not arrive within {} seconds", timeout.as_secs())))
        }
    }
}

/// Turns any error response that is not already a problem (axum's own rejections) into
/// problem+json, so that every 4xx and 5xx has one shape.
async fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    // The approval page's errors are pages of their own, for people.
    let is_page = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_page {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
    let detail = crate::body::reword(String::from_utf8_lossy(&body).trim());
    let code = match status.as_u16() {
        400 => "invalid_parameter",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        413 => "body_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_field",
        503 => "busy",
        s if s >= 500 => "internal_error",
        _ => "invalid_parameter",
    };
    let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { detail };
    Problem::of(code, detail).into_response()
}

/// Answers paths no route matches.
pub(crate) async fn fallback(request: Request) -> Response {
    let path: String = request.uri().path().chars().take(200).collect();
    Problem::not_found(format!("no route for {} {path}", request.method())).into_response()
}

/// Answers a method a path does not allow.
pub(crate) async fn method_not_allowed(request: Request) -> Response {
    let path: String = request.uri().path().chars().take(200).collect();
    let mut response =
        Problem::of("method_not_allowed", format!("{} is not allowed on {path}", request.method())).into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}
