//! Errors as HTTP problem details (RFC 9457): every 4xx and 5xx body is
//! `application/problem+json` with a stable machine-readable `code`. Clients branch on
//! `code`; `title` and `detail` are for people and may change wording.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type; relative, resolved against the API's origin.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short, human-readable summary of the problem type.
    pub title: &'static str,
    /// The HTTP status code, repeated for clients that lose it.
    pub status: u16,
    /// The stable error code.
    pub code: &'static str,
    /// What exactly went wrong with this request.
    pub detail: String,
    /// For errors about one item of a batch: its index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// Seconds to wait before retrying (also sent as a Retry-After header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// For `limit_exceeded`: which limit, its value and what is left.
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    #[schema(inline)]
    pub limit: Option<Box<LimitDetail>>,
}

/// Which limit a request would pass, in the problem body.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitDetail {
    /// `balance_cap`, `daily_outgoing` or `recipient_balance_cap`.
    pub limit: &'static str,
    /// The limit's value, in won.
    #[serde(serialize_with = "as_decimal")]
    #[schema(value_type = String)]
    pub value: u64,
    /// What is left of it, in won; absent for another user's limit (the recipient's room is
    /// theirs to know).
    #[serde(serialize_with = "as_optional_decimal", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub remaining: Option<u64>,
}

fn as_decimal<S: serde::Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn as_optional_decimal<S: serde::Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

impl Problem {
    /// A problem with the given status, code, title and detail.
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            type_uri: format!("/docs/problems#{code}"),
            title,
            status: status.as_u16(),
            code,
            detail: detail.into(),
            index: None,
            retry_after: None,
            limit: None,
        }
    }

    /// 400: the body is not JSON.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", "The body is not valid JSON", detail)
    }

    /// 422: the body is JSON but a field is missing, unknown, of the wrong type or out of range.
    pub fn invalid_field(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "A field is invalid", detail)
    }

    /// 400: a path or query parameter is invalid.
    pub fn invalid_parameter(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", "A parameter is invalid", detail)
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    /// 401: the operator key is missing or wrong.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            "send the operator key as 'Authorization: Bearer <key>'",
        )
    }

    /// 503: the engine's queue is full.
    pub fn busy() -> Self {
        let mut p = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "The server is busy",
            "the request queue is full; retry after the given delay",
        );
        p.retry_after = Some(1);
        p
    }

    /// 507: the disk is full.
    pub fn storage_full() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "The disk is full",
            "the journal could not be written; nothing was changed",
        )
    }

    /// 503: the engine stopped.
    pub fn unavailable() -> Self {
        let mut p = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The engine is not available",
            "the engine is stopping or stopped after a disk error",
        );
        p.retry_after = Some(5);
        p
    }

    /// Attaches the index of the batch item the problem is about.
    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl From<kasa_engine::SubmitError> for Problem {
    fn from(error: kasa_engine::SubmitError) -> Self {
        match error {
            kasa_engine::SubmitError::Busy => Problem::busy(),
            kasa_engine::SubmitError::StorageFull => Problem::storage_full(),
            kasa_engine::SubmitError::Unavailable => Problem::unavailable(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
