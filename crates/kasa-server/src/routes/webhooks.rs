//! Merchants' webhook endpoints (`/v1/webhook-endpoints`, API key with `webhooks:manage`):
//! add one (its signing secret is in that answer only), list, delete, rotate the secret (the
//! old one keeps signing for 24 hours). Secrets are sealed with the data key before they reach
//! the core, so the journal and snapshots never hold them in clear.

use super::payments::{api_key_hash, as_key, read_as_key};
use crate::body::object;
use crate::ids;
use crate::json::{Page, Rfc3339};
use crate::problem::Problem;
use crate::{AppState, Secret};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::merchant::{
    EventTypes, KeyCommand, KeyOutcome, Scopes, WebhookCommand, WebhookEndpoint, WebhookError, WebhookUrl,
    ENDPOINTS_PER_MERCHANT_MAX, EVENT_TYPES,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A webhook endpoint. Its secret is in the answers that make one only.
#[derive(Serialize, ToSchema)]
pub(crate) struct EndpointOutput {
    /// `we_` and a number.
    id: String,
    object: &'static str,
    url: String,
    /// The event types delivered to it.
    events: Vec<&'static str>,
    /// The signing secret (`whsec_...`): in the answer to a create or a rotation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Until when the secret before the last rotation still signs; null if none.
    old_secret_expires_at: Option<Rfc3339>,
    /// `enabled`, or `disabled` after 3 days of failed deliveries (rotating the secret
    /// enables it again).
    status: &'static str,
    /// Since when deliveries fail; null while they succeed.
    failing_since: Option<Rfc3339>,
    created_at: Rfc3339,
}

impl EndpointOutput {
    fn of(e: &WebhookEndpoint, secret: Option<&Secret>) -> Self {
        EndpointOutput {
            id: ids::format("we", e.id),
            object: "webhook_endpoint",
            url: e.url.as_str().to_string(),
            events: e.events.names(),
            secret: secret.map(|s| s.expose().to_string()),
            old_secret_expires_at: e.old_secret.as_ref().map(|(_, until)| Rfc3339(*until)),
            status: if e.disabled_at == 0 { "enabled" } else { "disabled" },
            failing_since: (e.failing_since != 0).then_some(Rfc3339(e.failing_since)),
            created_at: Rfc3339(e.created_at),
        }
    }
}

fn refused(e: WebhookError) -> Problem {
    match e {
        WebhookError::UnknownEndpoint => Problem::not_found("no such webhook endpoint"),
        WebhookError::TooManyEndpoints => Problem::of(
            "too_many_webhook_endpoints",
            format!("a merchant has at most {ENDPOINTS_PER_MERCHANT_MAX} webhook endpoints"),
        ),
        WebhookError::NoEvents => Problem::invalid_field("events must name at least one event type"),
    }
}

/// The merchant of a key, for sealing a secret to it (the key's scope is checked again, with
/// the effect).
async fn merchant_of(app: &AppState, key_hash: [u8; 32]) -> Result<u64, Problem> {
    read_as_key(app, key_hash, Scopes::named("webhooks:manage").expect("a known scope"), |_, merchant_id| merchant_id)
        .await
}

/// Draws a secret and seals it to the merchant.
fn new_secret(app: &AppState, merchant_id: u64) -> Result<(Secret, kasa_core::merchant::SealedSecret), Problem> {
    let secret = crate::pin::new_secret_token("whsec_")?;
    let sealed = app.keys.seal_secret(merchant_id, secret.expose()).map_err(Problem::internal)?;
    Ok((secret, sealed))
}

async fn run(app: &AppState, key_hash: [u8; 32], command: WebhookCommand) -> Result<WebhookEndpoint, Problem> {
    match as_key(app, key_hash, KeyCommand::Webhook(command)).await? {
        KeyOutcome::Webhook(result) => result.map_err(refused),
        other => Err(Problem::internal(format!("a webhook command answered {other:?}"))),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointInput {
    /// Where deliveries go: `https://` (or `http://localhost` for development), not a private address.
    url: String,
    /// Event types: `payment.approved`, `payment.succeeded`, `payment.canceled`,
    /// `payment.expired`, `refund.succeeded`, `payout.paid`, `payout.failed`.
    events: Vec<String>,
}

/// Adds a webhook endpoint (at most 16). The answer holds its signing secret, once. Scope
/// `webhooks:manage`.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", request_body = EndpointInput,
    responses((status = 201, description = "the endpoint, with `secret` shown this once", body = EndpointOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"])))]
pub async fn create_endpoint(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let input: EndpointInput = object(&body)?;
    let url = WebhookUrl::new(input.url).map_err(|e| Problem::invalid_field(format!("url: {e}")))?;
    if input.events.len() > EVENT_TYPES.len() * 2 {
        return Err(Problem::invalid_field("events lists each event type at most once"));
    }
    let events = EventTypes::named(input.events.iter().map(String::as_str))
        .ok_or_else(|| Problem::invalid_field(format!("events are among {}", EVENT_TYPES.join(", "))))?;
    let merchant_id = merchant_of(&app, key_hash).await?;
    let (secret, sealed) = new_secret(&app, merchant_id)?;
    let endpoint = run(&app, key_hash, WebhookCommand::Create { url, events, secret: sealed }).await?;
    Ok((StatusCode::CREATED, Json(EndpointOutput::of(&endpoint, Some(&secret)))).into_response())
}

/// Your webhook endpoints, oldest first (at most 16: one page). Scope `webhooks:manage`.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses((status = 200, description = "the endpoints", body = Page<EndpointOutput>),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"])))]
pub async fn list_endpoints(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let scope = Scopes::named("webhooks:manage").expect("a known scope");
    let data = read_as_key(&app, key_hash, scope, |s, merchant_id| {
        s.merchants().endpoints_of(merchant_id).map(|e| EndpointOutput::of(e, None)).collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(Page::new(data, None)).into_response())
}

/// Deletes a webhook endpoint: no more deliveries to it. Scope `webhooks:manage`.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path, description = "the endpoint's id, we_...")),
    responses((status = 200, description = "the deleted endpoint", body = EndpointOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"])))]
pub async fn delete_endpoint(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let endpoint_id = ids::parse("we", &raw, "no such webhook endpoint")?;
    let endpoint = run(&app, key_hash, WebhookCommand::Delete { endpoint_id }).await?;
    Ok(Json(EndpointOutput::of(&endpoint, None)).into_response())
}

/// Gives a webhook endpoint a new signing secret (in this answer, once); the old one keeps
/// signing for 24 hours, so deliveries carry both signatures meanwhile. Scope `webhooks:manage`.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path, description = "the endpoint's id, we_...")),
    responses((status = 200, description = "the endpoint, with the new `secret` shown this once", body = EndpointOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"])))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let endpoint_id = ids::parse("we", &raw, "no such webhook endpoint")?;
    let merchant_id = merchant_of(&app, key_hash).await?;
    let (secret, sealed) = new_secret(&app, merchant_id)?;
    let endpoint = run(&app, key_hash, WebhookCommand::RotateSecret { endpoint_id, secret: sealed }).await?;
    Ok(Json(EndpointOutput::of(&endpoint, Some(&secret))).into_response())
}
