//! Liveness, readiness and Prometheus metrics. These need no authentication: they reveal
//! counts, never data.

use crate::problem::Problem;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use kasa_engine::{ClockError, Health};

/// `GET /healthz`: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the process serves HTTP"), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn healthz() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#).into_response()
}

/// `GET /readyz`: recovered and accepting requests.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "recovered and accepting"), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.engine.health() {
        Health::Ready => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"status":"ready"}"#).into_response()
        }
        Health::Stopping | Health::Failed => Problem::unavailable().into_response(),
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    let body = app.engine.metrics().render();
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// `GET /openapi.json`: the OpenAPI 3.1 document of the whole API.
pub async fn openapi() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], crate::openapi::json()).into_response()
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdvanceInput {
    /// Seconds to move engine time forward: 1 to 31,536,000 (a year).
    seconds: u64,
}

/// Longest single move of a test clock: a year.
const ADVANCE_SECONDS_MAX: u64 = 365 * 24 * 3600;

/// `POST /v1/admin/test-clock/advance` `{"seconds"}` (operator key; only on a server started
/// with `--test-clock`): moves engine time forward, and whatever fell due in between (bank
/// answers that never came, 48-hour holds, 7-day money requests, sessions) expires at once.
#[utoipa::path(post, path = "/v1/admin/test-clock/advance", tag = "admin", request_body = AdvanceInput, responses((status = 200, description = "the new engine time"), (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")), security(("operator" = [])))]
pub async fn advance_test_clock(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, Problem> {
    let input: AdvanceInput =
        crate::routes::users::parse_json(&crate::routes::ledger::read_body(&headers, body).await?)?;
    if input.seconds == 0 || input.seconds > ADVANCE_SECONDS_MAX {
        return Err(Problem::invalid_field(format!(
            "seconds must be 1 to {ADVANCE_SECONDS_MAX}, found {}",
            input.seconds
        )));
    }
    // The engine commits a batch at the new time, with the expiries now due, before it
    // answers: what follows sees them, and a restart keeps the moved time.
    let now = match app.engine.advance_clock(std::time::Duration::from_secs(input.seconds)).await {
        Ok(now) => now,
        Err(e @ ClockError::NotATestClock) => return Err(Problem::not_found(e.to_string())),
        Err(e @ ClockError::TooFar) => return Err(Problem::invalid_field(e.to_string())),
        Err(ClockError::NotCommitted(e)) => return Err(Problem::from(e)),
    };
    Ok(axum::Json(serde_json::json!({"object": "test_clock", "now": now.to_string()})).into_response())
}
