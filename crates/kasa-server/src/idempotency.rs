//! The `Idempotency-Key` header on every POST, Stripe's way: the same key with the same
//! request replays the stored answer (`Idempotent-Replayed: true`), the same key with another
//! request is `422 idempotency_key_reused`, and a key whose request is still running is
//! `409 idempotency_key_in_use`. Keys are scoped to the caller (the user of a session or the
//! operator; for sign-up, the request itself) and kept 24 hours. Logins are never keyed: their
//! answer holds a session token, which is never stored.
//!
//! How: a middleware hashes the request, answers at once from the journaled state if the
//! key is known, and otherwise runs the handler with the key in a task-local context. The
//! handler's one state-changing command goes through [`AppState::submit`], which wraps it
//! in `Command::Keyed`, so the key is recorded in the same atomic step as the effect: a crash
//! between the commit and the answer can never cause a second effect. The answer is stored by
//! a second command once the handler has it.

use crate::problem::Problem;
use crate::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kasa_core::idempotency::{StoredResponse, KEY_BYTES_MAX, RESPONSE_BYTES_MAX};
use kasa_core::{Command, KeyedOutcome, Outcome, State as CoreState};
use kasa_engine::SubmitError;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;

/// Largest answer the middleware reads back to store: a full ledger batch's JSON results.
const ANSWER_BYTES_READ_MAX: usize = 16 << 20;

/// Tries at storing an answer while the queue is full (about 8 s in all).
const STORE_ATTEMPTS_MAX: u32 = 16;

/// The scope of requests without credentials (sign-up) before it is narrowed to the request.
pub const ANONYMOUS_SCOPE: u64 = u64::MAX;
/// The scope of the operator.
pub const OPERATOR_SCOPE: u64 = 0;

/// What happened to the request's key while the handler ran.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Use {
    /// No command was submitted yet.
    Unused,
    /// A keyed command was applied: store the answer.
    Applied,
    /// The state already knew the key (a concurrent retry got there first).
    Taken,
}

/// The key of the request being handled.
#[derive(Debug)]
pub struct KeyContext {
    scope: u64,
    key: String,
    request_hash: [u8; 32],
    used: Mutex<Use>,
}

tokio::task_local! {
    static KEY: Arc<KeyContext>;
}

/// Keys whose requests are running in this process, for the `409`.
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<(u64, String)>>);

fn problem(status: StatusCode, code: &'static str, title: &'static str, detail: &str) -> Response {
    Problem::new(status, code, title, detail).into_response()
}

fn in_use() -> Response {
    problem(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "The key's first request has not finished",
        "a request with this Idempotency-Key is still being processed (or its answer was lost in a restart); retry later",
    )
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
    let mut response = (status, stored.body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The middleware. See the module documentation.
pub async fn middleware(app: AppState, request: Request, next: Next, permit: OwnedSemaphorePermit) -> Response {
    // Logins are not keyed: their answer holds a session token, which must never be stored
    // (tokens are kept only as hashes) nor handed out again after a logout.
    if request.method() != Method::POST || request.uri().path() == "/v1/sessions" {
        return next.run(request).await;
    }
    let Some(raw_key) = request.headers().get("idempotency-key") else { return next.run(request).await };
    let key = match raw_key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= KEY_BYTES_MAX && k.bytes().all(|b| b.is_ascii_graphic()) => k.to_string(),
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "The Idempotency-Key is invalid",
                &format!("an Idempotency-Key is 1 to {KEY_BYTES_MAX} printable ASCII characters"),
            )
        }
    };
    let Some(scope) = scope_of(&app, request.headers()).await else {
        // Invalid credentials: the handler answers 401 without applying anything.
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let body = match crate::routes::ledger::read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(p) => return p.into_response(),
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(&body);
    let request_hash = *hasher.finalize().as_bytes();
    // Anonymous callers (sign-up) share no key space: their scope is the request itself, so
    // only an exact retry is recognised and two clients' keys never collide.
    let scope = if scope == ANONYMOUS_SCOPE {
        u64::from_le_bytes(request_hash[..8].try_into().expect("8 bytes")) | (1 << 63)
    } else {
        scope
    };

    let lookup_key = key.clone();
    let known = app.engine.read(move |s| s.idempotency().get(scope, &lookup_key).cloned()).await;
    match known {
        Err(e) => return Problem::from(e).into_response(),
        Ok(Some(entry)) if entry.request_hash != request_hash => return reused(),
        Ok(Some(entry)) => return entry.response.map(replay).unwrap_or_else(in_use),
        Ok(None) => {}
    }
    let Some(running) = Running::register(&app.in_flight_keys, scope, &key) else { return in_use() };
    let context = Arc::new(KeyContext { scope, key: key.clone(), request_hash, used: Mutex::new(Use::Unused) });
    let request = Request::from_parts(parts, Body::from(body));
    // The keyed request runs as a task of its own: a client that hangs up (which drops this
    // future) must not stop it between the commit of its effect and the storing of its
    // answer, or every retry would get a 409 instead of the answer.
    let task = tokio::spawn(async move {
        let _held = (running, permit);
        let response = KEY.scope(context.clone(), next.run(request)).await;
        let used = context.used.lock().expect("key lock").clone();
        match used {
            Use::Applied => store(&app, scope, &key, response).await,
            Use::Taken => in_use(),
            Use::Unused => response,
        }
    });
    task.await.unwrap_or_else(|_| {
        problem(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error", "the request failed")
    })
}

/// A key registered in [`InFlight`] for as long as its request runs, whatever way it ends.
struct Running {
    set: Arc<InFlight>,
    entry: Option<(u64, String)>,
}

impl Running {
    /// Registers the key, or `None` if a request with it is already running.
    fn register(set: &Arc<InFlight>, scope: u64, key: &str) -> Option<Running> {
        let entry = (scope, key.to_string());
        set.0
            .lock()
            .expect("in-flight lock")
            .insert(entry.clone())
            .then(|| Running { set: set.clone(), entry: Some(entry) })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.set.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&entry);
        }
    }
}

fn reused() -> Response {
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "The Idempotency-Key was used for another request",
        "this Idempotency-Key was used with a different request (method, path or body); use a new key",
    )
}

/// Stores the handler's answer for retries and hands it on.
async fn store(app: &AppState, scope: u64, key: &str, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ANSWER_BYTES_READ_MAX).await else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            "the answer could not be read",
        );
    };
    // Answers over the stored limit (large ledger batches) are not kept: a retry then gets a
    // 409, and ledger batches have their own idempotency in their ids.
    if bytes.len() <= RESPONSE_BYTES_MAX {
        let command =
            Command::StoreResponse { scope, key: key.to_string(), status: parts.status.as_u16(), body: bytes.to_vec() };
        // The effect is durable; a full queue must not lose its answer, so wait for room.
        let mut attempt = 0;
        loop {
            match app.engine.submit_while_draining(command.clone()).await {
                Err(SubmitError::Busy) if attempt < STORE_ATTEMPTS_MAX => {
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt.min(6))).await;
                    attempt += 1;
                }
                Err(error) => {
                    // The engine failed, or stayed full for seconds: retries get a 409 until
                    // the key expires.
                    tracing::warn!(%error, "the answer of a keyed request was not stored");
                    break;
                }
                Ok(_) => break,
            }
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The caller's scope: the user of a valid session, the operator, or anonymous. `None` for
/// credentials that are present but invalid.
async fn scope_of(app: &AppState, headers: &axum::http::HeaderMap) -> Option<u64> {
    let Some(token) = crate::bearer_token(headers) else {
        return Some(ANONYMOUS_SCOPE);
    };
    if app.operator_key.matches(token) {
        return Some(OPERATOR_SCOPE);
    }
    let hash = crate::pin::token_hash(token);
    let now = app.engine.now();
    app.engine.read(move |s| s.wallets().session(&hash, now).map(|s| s.user_id)).await.ok().flatten()
}

/// Wraps `command` in the request's key, if it has one that is still unused.
fn keyed(command: Command) -> (Command, Option<Arc<KeyContext>>) {
    match KEY.try_with(|k| k.clone()) {
        Ok(context) if *context.used.lock().expect("key lock") == Use::Unused => {
            let command = Command::Keyed {
                scope: context.scope,
                key: context.key.clone(),
                request_hash: context.request_hash,
                command: Box::new(command),
            };
            (command, Some(context))
        }
        _ => (command, None),
    }
}

/// Unwraps a keyed outcome, recording what happened to the key.
fn unkeyed(outcome: Outcome, context: Option<Arc<KeyContext>>) -> Result<Outcome, Problem> {
    let Some(context) = context else { return Ok(outcome) };
    match outcome {
        Outcome::Keyed(KeyedOutcome::Applied(inner)) => {
            *context.used.lock().expect("key lock") = Use::Applied;
            Ok(*inner)
        }
        Outcome::Keyed(KeyedOutcome::InvalidKey) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "The Idempotency-Key is invalid",
            "the key is empty or too long",
        )),
        Outcome::Keyed(KeyedOutcome::Exists { .. }) => {
            *context.used.lock().expect("key lock") = Use::Taken;
            Err(Problem::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "The key's first request has not finished",
                "another request with this Idempotency-Key got there first",
            ))
        }
        other => Ok(other),
    }
}

impl AppState {
    /// Waits (up to `timeout`) until no keyed request is running, so that a graceful stop
    /// does not drop the task of one whose client hung up before its answer was stored.
    /// Returns whether they all finished.
    pub async fn keyed_requests_finished(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.in_flight_keys.0.lock().expect("in-flight lock").is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Submits a state-changing command, under the request's idempotency key if it has one.
    pub async fn submit(&self, command: Command) -> Result<Outcome, Problem> {
        let (command, context) = keyed(command);
        let outcome = self.engine.submit(command).await.map_err(Problem::from)?;
        unkeyed(outcome, context)
    }

    /// Like [`AppState::submit`], and runs `read` on the state and the command's own outcome
    /// in the same turn (see `Engine::submit_then_read`).
    pub async fn submit_then_read<R: Send + 'static>(
        &self,
        command: Command,
        read: impl FnOnce(&CoreState, &Outcome) -> R + Send + 'static,
    ) -> Result<(Outcome, R), Problem> {
        let (command, context) = keyed(command);
        let result = self
            .engine
            .submit_then_read(command, move |s, outcome| match outcome {
                Outcome::Keyed(KeyedOutcome::Applied(inner)) => Some(read(s, inner)),
                Outcome::Keyed(_) => None,
                other => Some(read(s, other)),
            })
            .await;
        let (outcome, value) = result.map_err(|e: SubmitError| Problem::from(e))?;
        let outcome = unkeyed(outcome, context)?;
        Ok((outcome, value.expect("an applied command has its read")))
    }
}
