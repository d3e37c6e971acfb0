//! Liveness, readiness and Prometheus metrics. These need no authentication and take no
//! request permit: they reveal counts, never data, and answer during any flood.

use crate::problem::Problem;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use kasa_engine::Health;

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", operation_id = "check_liveness", tag = "operations",
    responses((status = 200, description = "the process serves HTTP: {\"status\": \"ok\"}"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn healthz() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#).into_response()
}

/// Recovered and accepting requests (503 while stopping or after a disk error).
#[utoipa::path(get, path = "/readyz", operation_id = "check_readiness", tag = "operations",
    responses((status = 200, description = "recovered and accepting: {\"status\": \"ready\"}"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.engine.health() {
        Health::Ready => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], r#"{"status":"ready"}"#).into_response()
        }
        Health::Stopping | Health::Failed => Problem::unavailable().into_response(),
    }
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", operation_id = "get_metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    let mut body = app.engine.metrics().render();
    if let Some(read_model) = app.read_model.get() {
        body.push_str(&read_model.render_metrics(app.engine.events().last_seq(), app.engine.now()));
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
