//! Kasa's HTTP API: routes, JSON shapes, problem+json errors, operator authentication and
//! the Prometheus endpoint, on axum.
//!
//! How the pieces fit: [`router`] builds the axum router over an [`AppState`] that holds the
//! [`Engine`]. Handlers in `routes` parse requests (`json`), submit commands or reads to the
//! engine, and map results to responses; every error is a [`Problem`]. Only this crate knows
//! HTTP and JSON; it holds no ledger state of its own.

pub mod bank;
pub mod demo;
pub mod idempotency;
pub mod json;
pub mod openapi;
pub mod pin;
pub mod problem;
pub mod routes;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kasa_engine::Engine;
pub use problem::Problem;
use std::fmt;
use std::sync::Arc;

/// A secret string whose `Debug` and `Display` print `***`, so it never reaches a log.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `candidate` in time that does not depend on where they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        if expected.len() != candidate.len() {
            return false;
        }
        expected.iter().zip(candidate).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What every handler shares: one pointer, because axum clones it for every extractor and
/// middleware of every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields behind [`AppState`].
pub struct Shared {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The operator key that the ledger API requires.
    pub operator_key: Secret,
    /// Permits for requests in progress; see [`REQUESTS_IN_FLIGHT_MAX`].
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// PIN hashing with the server's pepper.
    pub pins: pin::PinHasher,
    /// The bank rail for top-ups and withdrawals.
    pub bank: Arc<dyn bank::BankRail>,
    /// Idempotency keys whose requests are running.
    pub in_flight_keys: Arc<idempotency::InFlight>,
}

/// Requests the server works on at once; beyond it a request gets 503 `busy` at once. It
/// bounds memory: each may hold an 8 MiB body and its parsed batch (about 2 MiB more), so 512
/// of them stay under 6 GiB even if every one is a full batch.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 512;

impl AppState {
    /// The state for `engine`, authenticating operators with `operator_key` and peppering
    /// PIN hashes with `pin_pepper`.
    pub fn new(engine: Arc<Engine>, operator_key: Secret, pin_pepper: &Secret, bank: Arc<dyn bank::BankRail>) -> Self {
        AppState(Arc::new(Shared {
            engine,
            operator_key,
            in_flight: Arc::new(tokio::sync::Semaphore::new(REQUESTS_IN_FLIGHT_MAX)),
            pins: pin::PinHasher::new(pin_pepper),
            bank,
            in_flight_keys: Arc::new(idempotency::InFlight::default()),
        }))
    }
}

/// What every request goes through, as one middleware (each layer costs an allocation and a
/// clone of the routes per request): the in-flight limit, then `Idempotency-Key`, and every
/// error answer made problem+json on the way out.
async fn front(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(permit) = app.in_flight.clone().try_acquire_owned() else {
        return Problem::busy().into_response();
    };
    if needs_operator(request.uri().path()) && !is_operator(&app, request.headers()) {
        return Problem::unauthorized().into_response();
    }
    // The permit goes with the request, also into the task of a keyed request that outlives
    // its client: work nobody waits for still counts against the limit.
    let response = idempotency::middleware(app.clone(), request, next, permit).await;
    ensure_problem(response).await
}

/// Turns any error response that is not already a problem (axum's own rejections, such as a
/// path that is not valid UTF-8) into problem+json, so that every 4xx and 5xx has one shape.
async fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&body).trim().to_string();
    let (code, title) = match status.as_u16() {
        400 => ("invalid_request", "The request is invalid"),
        404 => ("not_found", "Not found"),
        405 => ("method_not_allowed", "Method not allowed"),
        413 => ("body_too_large", "The body is too large"),
        415 => ("unsupported_media_type", "Unsupported content type"),
        422 => ("invalid_field", "A field is invalid"),
        s if s >= 500 => ("internal_error", "Internal error"),
        _ => ("invalid_request", "The request is invalid"),
    };
    let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { detail };
    Problem::new(status, code, title, detail).into_response()
}

/// The ledger API and the admin API are for operators only: every path under them, routed or
/// not, answers 401 without the operator key, so that nobody learns which routes exist.
fn needs_operator(path: &str) -> bool {
    ["/v1/ledger", "/v1/admin"]
        .iter()
        .any(|prefix| path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

fn is_operator(app: &AppState, headers: &axum::http::HeaderMap) -> bool {
    bearer_token(headers).is_some_and(|token| app.operator_key.matches(token))
}

/// The token of an `Authorization: Bearer ...` header, if the request has one.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&[u8]> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
}

async fn fallback(request: Request) -> Response {
    Problem::not_found(format!("no route for {} {}", request.method(), request.uri().path())).into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed",
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
    .into_response()
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    use routes::{funding, ledger, ops, remittance, requests, users};
    let api = Router::new()
        .route("/v1/ledger/accounts", post(ledger::create_accounts))
        .route("/v1/ledger/accounts/lookup", post(ledger::lookup_accounts))
        .route("/v1/ledger/accounts/{id}", get(ledger::get_account))
        .route("/v1/ledger/accounts/{id}/transfers", get(ledger::account_transfers))
        .route("/v1/ledger/accounts/{id}/balances", get(ledger::account_balances))
        .route("/v1/ledger/transfers", post(ledger::create_transfers))
        .route("/v1/ledger/transfers/lookup", post(ledger::lookup_transfers))
        .route("/v1/ledger/transfers/{id}", get(ledger::get_transfer))
        .route("/v1/admin/users/{id}/tier", post(users::set_tier))
        .route("/v1/admin/users/{id}/unlock", post(users::unlock))
        .route("/v1/admin/tiers/{tier}", post(users::set_tier_limits))
        .route("/v1/admin/fees", post(users::set_fees))
        .route("/v1/admin/test-clock/advance", post(ops::advance_test_clock));
    // Operators are checked in `front`, by path. Wallet users authenticate with their own
    // session tokens, checked in the handlers.
    let wallet = Router::new()
        .route("/v1/users", post(users::sign_up))
        .route("/v1/sessions", post(users::log_in))
        .route("/v1/sessions/current", axum::routing::delete(users::log_out))
        .route("/v1/me", get(users::me))
        .route("/v1/me/wallet", get(users::my_wallet))
        .route("/v1/me/transactions", get(users::transactions))
        .route("/v1/me/settings", post(users::settings))
        .route("/v1/me/bank-accounts", post(funding::link).get(funding::list_bank_accounts))
        .route("/v1/me/top-ups", post(funding::top_up))
        .route("/v1/me/top-ups/{id}", get(funding::get_top_up))
        .route("/v1/me/withdrawals", post(funding::withdraw))
        .route("/v1/me/withdrawals/{id}", get(funding::get_withdrawal))
        .route("/v1/transfers", post(remittance::send))
        .route("/v1/transfers/{id}", get(remittance::get))
        .route("/v1/transfers/{id}/cancel", post(remittance::cancel))
        .route("/v1/money-requests", post(requests::create).get(requests::list))
        .route("/v1/money-requests/{id}", get(requests::get))
        .route("/v1/money-requests/{id}/pay", post(requests::pay))
        .route("/v1/money-requests/{id}/decline", post(requests::decline))
        .route("/v1/split-bills", post(requests::split))
        .route("/v1/split-bills/{id}", get(requests::get_split));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .merge(api)
        .merge(wallet)
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), front))
        .with_state(state)
}

/// Serves HTTP on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Answers go out at once: Nagle's algorithm would hold a small response back waiting for
    // an ACK that the client delays.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
