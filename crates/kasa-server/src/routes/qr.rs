//! `POST /v1/qr/decode`: any logged-in wallet user or merchant (an API key with any scope)
//! checks and reads an EMV merchant-presented QR payload, as `kasa qr decode` does offline.
//! The codec is `kasa_core::qr`; the JSON shape is [`describe`] and [`refusal`], shared with
//! the command line.

use super::payments::api_key_hash;
use crate::body::object;
use crate::problem::Problem;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::qr::{self, Payload, QrError};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// A valid payload as JSON: `{"valid": true, "scheme", "fields", "merchant_name",
/// "currency", "amount"}`.
pub fn describe(payload: &Payload<'_>) -> serde_json::Value {
    let currency = match payload.currency() {
        Some(currency) => currency.code().to_string(),
        None => format!("{:03}", payload.currency_numeric()),
    };
    json!({
        "valid": true,
        "scheme": payload.scheme().name(),
        "fields": payload.fields_map(),
        "merchant_name": payload.merchant_name(),
        "currency": currency,
        "amount": payload.amount(),
    })
}

/// A refused payload as JSON: `{"valid": false, "reason", "field"}`.
pub fn refusal(error: QrError) -> serde_json::Value {
    json!({ "valid": false, "reason": error.reason.name(), "field": error.field.map(|tag| tag.to_string()) })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecodeInput {
    /// The payload as scanned (at most 4,096 characters).
    payload: String,
}

/// Checks and reads an EMV merchant-presented QR payload: `200` with `valid: true` and its
/// scheme, fields (two-digit ids to strings, templates to objects), merchant name, currency
/// and amount; or `200` with `valid: false`, the `reason` (`bad_crc`, `bad_length`,
/// `missing_field`, ...) and the `field` it concerns. For a wallet user's session or a
/// merchant's API key (any scope). Nothing is stored.
#[utoipa::path(post, path = "/v1/qr/decode", tag = "payments", request_body = DecodeInput,
    responses((status = 200, description = "the payload read, or why it is refused", body = Object),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("session" = []), ("api_key" = [])))]
pub async fn decode_qr(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    if super::session_token_hash(&headers).is_some() {
        super::authenticate(&app, &headers).await?;
    } else {
        let key_hash = api_key_hash(&headers)?;
        let live = app.engine.read(move |s| s.merchants().live_key(&key_hash).is_some()).await?;
        if !live {
            return Err(Problem::of("unauthorized", "the API key is unknown or revoked"));
        }
    }
    let input: DecodeInput = object(&body)?;
    let answer = match qr::decode(&input.payload) {
        Ok(payload) => describe(&payload),
        Err(error) => refusal(error),
    };
    Ok(Json(answer).into_response())
}
