//! Errors as HTTP problem details (RFC 9457): every 4xx and 5xx body is
//! `application/problem+json` with a stable machine-readable `code`. Clients branch on `code`;
//! `title` and `detail` are for people and may change wording.
//!
//! [`CODES`] is the one registry of codes: each has its HTTP status, title and meaning, a
//! problem is made from a registered code ([`Problem::of`]), and `GET /docs/problems` (where
//! every problem's `type` URI points) is rendered from it. The ledger's result codes, which
//! single-object creates answer with, are listed there from the ledger's own tables.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A registered problem code.
#[derive(Clone, Copy, Debug)]
pub struct Code {
    /// The stable code.
    pub code: &'static str,
    /// Its HTTP status.
    pub status: u16,
    /// A short summary.
    pub title: &'static str,
    /// What it means and what to do about it.
    pub meaning: &'static str,
}

macro_rules! codes {
    ($($code:literal, $status:literal, $title:literal, $meaning:literal;)*) => {
        /// Every problem code the API answers with (besides the ledger's result codes).
        pub const CODES: &[Code] = &[$(Code { code: $code, status: $status, title: $title, meaning: $meaning },)*];
    };
}

codes! {
    "malformed_json", 400, "The body is not valid JSON", "The body could not be parsed as JSON, or is not the JSON object the endpoint expects.";
    "invalid_parameter", 400, "A parameter is invalid", "A path or query parameter is malformed or out of range; `detail` names it.";
    "invalid_idempotency_key", 400, "The Idempotency-Key is invalid", "An Idempotency-Key is 1 to 255 printable ASCII characters.";
    "idempotency_key_not_supported", 400, "This request cannot be keyed", "Batches of more than 64 items (and logins) take no Idempotency-Key: a ledger batch is idempotent by its ids.";
    "unauthorized", 401, "Authentication required", "The operator key or session token is missing, malformed, expired or wrong.";
    "invalid_credentials", 401, "The phone number or PIN is wrong", "A login failed. It does not say whether the number is registered or its PIN locked.";
    "insufficient_scope", 403, "The API key lacks a scope", "The key may not do this: `detail` names the scope it needs. Ask an operator for a key with it.";
    "pin_required", 403, "The PIN is required", "The amount is more than what is left of the PIN-free budget for 24 hours: send `pin`.";
    "wrong_pin", 403, "The PIN is wrong", "The PIN sent with the request is wrong; five wrong PINs in a row lock PIN use for 30 minutes.";
    "pin_locked", 403, "PIN use is locked", "Too many wrong PINs: wait 30 minutes, reset the PIN with a verification code, or ask an operator.";
    "not_found", 404, "Not found", "No such object, or not one of yours: another user's objects are as good as absent.";
    "method_not_allowed", 405, "Method not allowed", "The path exists, with other methods.";
    "request_timeout", 408, "The request took too long to send", "The body did not arrive in time; send it at once.";
    "phone_taken", 409, "The phone number is registered", "A wallet exists for this phone number: log in, or reset the PIN.";
    "already_linked", 409, "The bank account is linked already", "This bank account is one of yours already.";
    "merchant_exists", 409, "A merchant has this business registration number", "One merchant per business registration number: `detail` names it.";
    "merchant_closed", 409, "The merchant is closed", "A closed merchant gets no new payments, stores or keys; refunds and payouts go on.";
    "order_exists", 409, "The order has a payment", "A merchant's order id has one payment: `detail` names it. Retry with the same Idempotency-Key to get the first answer.";
    "merchant_not_active", 409, "The merchant takes no new payments", "The merchant is suspended or closed; refunds and payouts go on.";
    "invalid_state", 409, "Not possible in the object's state", "The object is past the point where this can happen; `detail` says where it stands.";
    "qr_code_used", 409, "The QR code was paid already", "A code made for one sale is paid once: ask the store for a new one.";
    "qr_code_expired", 409, "The QR code expired", "A code made for one sale can be scanned until its `expires_at` (5 minutes by default): ask the store for a new one.";
    "payment_code_used", 409, "The payment code was charged already", "A payment code is charged once: the user shows a new one.";
    "payment_code_expired", 409, "The payment code expired", "A payment code can be charged for 60 seconds after its issue: the user shows a new one.";
    "refund_through_partner", 409, "Refunded through the partner", "A payment a partner wallet network made for its user is refunded by the partner (its `refund` call), which pays its user back.";
    "invalid_signature", 401, "The request's signature does not verify", "A partner's request is signed with one of its live keys over `<METHOD> <path>\\n<Client-Id>.<Request-Time>.<body>` (`Signature: algorithm=Ed25519,keyVersion=N,signature=...`); the client, the key version or the signature is wrong.";
    "request_time_skew", 401, "The request's time is off", "`Request-Time` (RFC 3339 with an offset) must be within 5 minutes of Kasa's clock.";
    "replayed_request", 401, "The request was sent before", "A signature is accepted once: sign each request anew (a retry gets a new `Request-Time` and signature; it is idempotent by its request id).";
    "partner_exists", 409, "A partner has this name", "Partner names are unique.";
    "key_exists", 409, "The public key is registered", "A public key is registered once, to one partner, and never again after its revocation.";
    "too_many_keys", 409, "The partner has too many keys", "A partner holds at most 16 keys, revoked ones included.";
    "too_many_partners", 409, "No more partners", "The partner table is full.";
    "no_rate", 409, "No rate is in force", "No FX rate for the pair (in either direction) is in force now: an operator loads one.";
    "too_many_rates", 409, "The rate table is full", "The FX rate table holds at most 1,000,000 rates.";
    "unknown_currency", 400, "Not an ISO 4217 currency", "A currency is written as its ISO 4217 alpha code, with minor units (KRW, CNY, USD, JPY, BHD, ...).";
    "quote_expired", 409, "The quote expired", "A quote holds until its `expires_at`: ask for a new one.";
    "repeat_request_inconsistent", 409, "The request id was used for another request", "A partner's request id names one request: the same id with other content is refused.";
    "not_held", 409, "Only a held transfer can be cancelled", "The transfer was delivered, returned or cancelled already.";
    "not_pending", 409, "The request was answered or expired", "A money request can be answered once, within 7 days.";
    "import_file_needed", 409, "Upload the import's file again", "The server keeps the files of the latest imports only (and none across a restart): upload the same file again, which changes nothing, then ask for the report.";
    "journal_position_ahead", 409, "The position is past this journal", "A follower asked for frames after a seq this server's journal has not reached: it followed another primary, or this primary lost frames. The follower stops; see docs/standby.md.";
    "ledger_refused", 409, "The books refused the movement", "An internal limit of Kasa's books (an overflow no real balance reaches).";
    "body_too_large", 413, "The body is too large", "Bodies are at most 64 KiB (8 MiB for ledger batches, 512 MiB for a merchant import's file).";
    "unsupported_media_type", 415, "Unsupported content type", "Send bodies as application/json (ledger batches also as application/octet-stream; the approval page's forms as application/x-www-form-urlencoded; a merchant import's file as text/csv or application/x-ndjson).";
    "invalid_field", 422, "A field is invalid", "A field is missing, unknown, of the wrong type or out of range; `detail` says which.";
    "invalid_phone", 422, "The phone number is invalid", "Phone numbers are Korean mobile numbers (010-1234-5678) or + and a country code.";
    "invalid_pin", 422, "The PIN is invalid", "A PIN is exactly 6 digits.";
    "weak_pin", 422, "The PIN is too easy to guess", "One digit repeated, a run up or down, or one of the most common PINs: choose another.";
    "invalid_name", 422, "The name is invalid", "A name is 1 to 50 characters without control characters.";
    "verification_failed", 422, "The verification code is not valid", "The verification is unknown, used or expired, or for another number: request a new code.";
    "wrong_code", 422, "The verification code is wrong", "The code does not match; `detail` says how many tries are left (5 in all).";
    "idempotency_key_reused", 422, "The Idempotency-Key was used for another request", "The same key was sent with a different method, path or body: use a new key.";
    "invalid_qr", 422, "The QR code is not a valid EMV payload", "The scanned payload breaks the EMV layout: `detail` names the decoder's reason and the field.";
    "unsupported_scheme", 422, "The QR code is of another payment scheme", "A valid code of a scheme Kasa does not pay (PIX, PayNow, ...): `detail` names it.";
    "qr_code_mismatch", 422, "The QR code names another merchant", "The name the code shows is not the merchant it pays (a sticker over a shop's code?): do not pay it.";
    "amount_mismatch", 422, "The amount is not the code's", "A code made for one sale has its own amount: `detail` says it.";
    "payment_code_invalid", 422, "The payment code is not valid", "Not a code Kasa issued, or a newer code of the user replaced it. Too many of these from one merchant are `rate_limited`.";
    "invalid_import_file", 422, "The import file is not valid", "Not UTF-8, without the CSV header row, without rows or with more than 2,000,000: `detail` says which. Rows that are not valid are reported one by one instead.";
    "too_many_items", 422, "Too many items in one batch", "A batch holds at most 8,190 items.";
    "limit_exceeded", 422, "A limit would be exceeded", "The movement would pass one of your limits; `limit`, `value` and `remaining` say which.";
    "insufficient_funds", 422, "Insufficient funds", "The wallet does not have that much available.";
    "recipient_cannot_receive", 422, "The recipient cannot receive this transfer", "The recipient's wallet cannot take this amount now. It says nothing about their balance.";
    "to_self", 422, "The other party is you", "Transfers and requests go to someone else.";
    "invalid_brn", 422, "The business registration number is invalid", "Ten digits, XXX-XX-XXXXX or without hyphens, with a valid check digit; `detail` says what is wrong.";
    "amount_too_large", 422, "The amount is more than the payment allows", "A capture is at most what was approved, a refund at most what is left to refund: `detail` says how much.";
    "too_many_refunds", 422, "Too many refunds", "A payment has at most 100 refunds.";
    "too_many_api_keys", 422, "Too many API keys", "A merchant has at most 20 keys that are not revoked: revoke one first.";
    "too_many_webhook_endpoints", 422, "Too many webhook endpoints", "A merchant has at most 16 webhook endpoints: delete one first.";
    "too_many_stores", 422, "Too many stores", "A merchant has at most 10,000 stores.";
    "too_many_bank_accounts", 422, "Too many bank accounts", "A user links at most 5 bank accounts.";
    "invalid_shares", 422, "The shares are invalid", "A split bill has 1 to 50 shares, one per friend, adding up to at most the total.";
    "currency_not_supported", 422, "The currency is not supported here", "Wallets hold won: amounts are in KRW.";
    "above_legal_maxima", 422, "Above the legal maxima", "Operators may lower a tier's limits, never raise them above what the law allows.";
    "rate_limited", 429, "Too many requests", "Slow down: `Retry-After` says when to try again.";
    "too_many_idempotency_keys", 429, "Too many idempotency keys", "A caller holds at most 1,000 live keys (24 hours each).";
    "internal_error", 500, "Internal error", "A bug: the request may or may not have taken effect; retry with the same Idempotency-Key.";
    "sms_failed", 502, "The code could not be sent", "The SMS gateway refused the message; request a new code.";
    "busy", 503, "The server is busy", "Too much at once: retry after `Retry-After` seconds. Nothing happened.";
    "unavailable", 503, "The engine is not available", "The engine is stopping, or stopped after a disk error.";
    "read_only_follower", 503, "This server is a read-only follower", "A follower serves reads only until an operator promotes it (`kasa promote`): send writes to the primary. Nothing happened.";
    "read_model_not_configured", 501, "This server has no read model", "History, search and reports from PostgreSQL need a server started with `--read-model postgres://...` (docs/read-model.md); the in-memory endpoints answer meanwhile.";
    "read_model_unavailable", 503, "The read model cannot be reached", "The read model's PostgreSQL is down or unreachable: retry later. The engine goes on, and the read model catches up when PostgreSQL is back.";
    "storage_full", 507, "The disk is full", "The journal could not be written; nothing was changed.";
}

/// The registered code, if it is one.
pub fn code(code: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

/// A problem response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type: `/docs/problems#<code>`, served by the API.
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

/// Which of the caller's own limits a request would pass, in the problem body.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitDetail {
    /// `balance_cap` or `daily_outgoing`.
    pub limit: &'static str,
    /// The limit's value, a decimal string of minor units.
    pub value: String,
    /// What is left of it, a decimal string of minor units.
    pub remaining: String,
    /// The currency of both.
    pub currency: &'static str,
}

/// The code a response carries, for the request log (set by [`Problem::into_response`]).
#[derive(Clone, Copy, Debug)]
pub struct ProblemCode(pub &'static str);

impl Problem {
    /// A problem of a registered `code`.
    pub fn of(code: &'static str, detail: impl Into<String>) -> Self {
        let (status, title) = match self::code(code) {
            Some(c) => (c.status, c.title),
            None => {
                debug_assert!(false, "problem code {code} is not registered");
                (500, "Internal error")
            }
        };
        Problem {
            type_uri: format!("/docs/problems#{code}"),
            title,
            status,
            code,
            detail: detail.into(),
            index: None,
            retry_after: None,
            limit: None,
        }
    }

    /// A problem of one of the ledger's result codes (a single-object create): `409` for
    /// `exists_with_*`, `422` for the rest.
    pub fn ledger(name: &'static str) -> Self {
        let exists = name.starts_with("exists_with");
        let (status, title) = if exists {
            (409, "An object with this id exists with different fields")
        } else {
            (422, "The ledger refused the request")
        };
        let detail = if exists {
            format!("{name}: the id is taken by an object with other fields; use a new id")
        } else {
            name.replace('_', " ")
        };
        Problem {
            type_uri: format!("/docs/problems#{name}"),
            title,
            status,
            code: name,
            detail,
            index: None,
            retry_after: None,
            limit: None,
        }
    }

    /// 400: the body is not JSON.
    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::of("malformed_json", detail)
    }

    /// 422: the body is JSON but a field is missing, unknown, of the wrong type or out of range.
    pub fn invalid_field(detail: impl Into<String>) -> Self {
        Self::of("invalid_field", detail)
    }

    /// 400: a path or query parameter is invalid.
    pub fn invalid_parameter(detail: impl Into<String>) -> Self {
        Self::of("invalid_parameter", detail)
    }

    /// 404: no such resource.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::of("not_found", detail)
    }

    /// 401: the operator key is missing or wrong.
    pub fn unauthorized() -> Self {
        Self::of("unauthorized", "send the operator key as 'Authorization: Bearer <key>'")
    }

    /// 401: the session token is missing or wrong.
    pub fn session_required() -> Self {
        Self::of("unauthorized", "send a session token from POST /v1/sessions as 'Authorization: Bearer <token>'")
    }

    /// 503: too much at once.
    pub fn busy() -> Self {
        let mut p = Self::of("busy", "too many requests at once; retry after the given delay");
        p.retry_after = Some(1);
        p
    }

    /// 429: a rate limit, with the seconds to wait.
    pub fn rate_limited(what: &str, retry_after: u32) -> Self {
        let mut p = Self::of("rate_limited", format!("too many {what}; retry in {retry_after} seconds"));
        p.retry_after = Some(retry_after.max(1));
        p
    }

    /// 507: the disk is full.
    pub fn storage_full() -> Self {
        Self::of("storage_full", "the journal could not be written; nothing was changed")
    }

    /// 503: the engine stopped.
    pub fn unavailable() -> Self {
        let mut p = Self::of("unavailable", "the engine is stopping or stopped after a disk error");
        p.retry_after = Some(5);
        p
    }

    /// 503: a follower refuses every write until it is promoted.
    pub fn read_only_follower() -> Self {
        Self::of(
            "read_only_follower",
            "this server follows a primary and serves reads only: send writes to the primary",
        )
    }

    /// 500: a bug; the detail is logged, not shown.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::of("internal_error", "the request failed inside the server; retry with the same Idempotency-Key")
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
            kasa_engine::SubmitError::ReadOnly => Problem::read_only_follower(),
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
        response.extensions_mut().insert(ProblemCode(self.code));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_their_statuses_are_errors() {
        let mut seen = std::collections::BTreeSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!((400..600).contains(&c.status), "{} has status {}", c.code, c.status);
            assert!(c.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", c.code);
        }
        let p = Problem::of("wrong_pin", "x");
        assert_eq!((p.status, p.type_uri.as_str()), (403, "/docs/problems#wrong_pin"));
    }
}
