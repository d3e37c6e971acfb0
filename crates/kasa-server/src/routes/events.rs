//! A merchant's events: what its webhooks carry (`GET /v1/events`), and a delivery again on
//! demand (`POST /v1/events/{id}/redeliver`), for an endpoint that was down, disabled or
//! added later. The events come from the outbox; each is the one body the webhooks send.

use super::payments::{api_key_hash, read_as_key};
use super::{parse_limit, query_pairs};
use crate::consumers::webhooks::{deliverable, take, Rendered, Taken};
use crate::ids;
use crate::problem::Problem;
use crate::webhook_client::{Connection, Delivered, Target};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_core::event::Event;
use kasa_core::merchant::Scopes;
use kasa_core::time::NANOS_PER_SECOND;
use serde::Serialize;
use utoipa::ToSchema;

/// The most events one page of `GET /v1/events` looks through (newest first) for the
/// merchant's: a page may come back short, with a cursor to go on.
const SCAN_MAX: u64 = 20_000;

/// A page of events: each the body a webhook carries.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventsPage {
    /// Events, newest first: `{"id": "evt_..", "object": "event", "type", "created_at", "data"}`.
    #[schema(value_type = Vec<Object>)]
    data: Vec<serde_json::Value>,
    has_more: bool,
    next_cursor: Option<String>,
}

/// Reads the events with seqs below `before` backwards, at most [`SCAN_MAX`] of them, and
/// keeps the merchant's deliverable ones (up to `limit + 1`); also where the scan stopped.
fn scan(app: &AppState, merchant_id: u64, before: u64, limit: usize) -> Result<(Vec<Event>, u64), Problem> {
    let log = app.engine.events();
    let mut end = before.min(log.last_seq().saturating_add(1));
    let floor = end.saturating_sub(SCAN_MAX);
    let mut found = Vec::new();
    while end > floor.max(1) && found.len() <= limit {
        let from = end.saturating_sub(1_000).max(floor).max(1) - 1;
        let events = log.read(from, (end - 1 - from) as usize).map_err(|e| Problem::internal(e.to_string()))?;
        for e in events.into_iter().rev().filter(|e| e.seq < end) {
            if deliverable(&e.kind).is_some_and(|(m, _)| m == merchant_id) {
                found.push(e);
            }
        }
        end = from + 1;
    }
    Ok((found, end))
}

/// Your events, newest first, as your webhooks carry them (what was delivered, and what an
/// endpoint missed). Scope `payments:read`; payout events also need `payouts:read`.
#[utoipa::path(get, path = "/v1/events", tag = "webhooks",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "the next_cursor of the previous page")),
    responses((status = 200, description = "a page of events", body = EventsPage),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["payments:read"])))]
pub async fn list_merchant_events(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let (mut limit, mut before) = (20usize, u64::MAX);
    for (key, value) in query_pairs(query.as_deref(), &["limit", "cursor"])? {
        match key {
            "limit" => limit = parse_limit(value, 100)?,
            _ => before = ids::parse_cursor("evt", value)?,
        }
    }
    let read = Scopes::named("payments:read").expect("a known scope");
    let payouts = Scopes::named("payouts:read").expect("a known scope");
    // Payout events only for a key that may read payouts.
    let (merchant_id, sees_payouts) = read_as_key(&app, key_hash, read, move |s, merchant_id| {
        let sees = s.merchants().live_key(&key_hash).is_some_and(|(k, _)| k.scopes.contains(payouts));
        (merchant_id, sees)
    })
    .await?;
    let (mut events, stopped_at) = scan(&app, merchant_id, before, limit)?;
    if !sees_payouts {
        events.retain(|e| deliverable(&e.kind).is_some_and(|(_, t)| !t.starts_with("payout.")));
    }
    let taken: Vec<Taken> = app.engine.read(move |s| events.iter().filter_map(|e| take(s, e)).collect()).await?;
    let rendered: Vec<Rendered> = taken.iter().map(|t| t.render(&app.keys)).collect();
    let has_more = rendered.len() > limit || stopped_at > 1;
    let data: Vec<serde_json::Value> =
        rendered.iter().take(limit).filter_map(|r| serde_json::from_slice(&r.body).ok()).collect();
    let next_cursor = if rendered.len() > limit {
        rendered.get(limit - 1).map(|r| ids::format("evt", r.seq))
    } else if stopped_at > 1 {
        Some(ids::format("evt", stopped_at))
    } else {
        None
    };
    Ok(Json(EventsPage { data, has_more, next_cursor }).into_response())
}

/// One delivery made on demand.
#[derive(Serialize, ToSchema)]
pub(crate) struct RedeliveryOutput {
    /// The endpoint, `we_...`.
    endpoint_id: String,
    /// `delivered` (a 2xx answer) or `failed`.
    status: &'static str,
    /// The endpoint's HTTP status, if it answered.
    response_status: Option<u16>,
    /// Why it failed, if it did not answer.
    error: Option<String>,
}

/// The answer to a redelivery.
#[derive(Serialize, ToSchema)]
pub(crate) struct RedeliveriesOutput {
    /// The event, `evt_...`.
    id: String,
    /// One delivery per enabled endpoint that takes the event's type.
    deliveries: Vec<RedeliveryOutput>,
}

/// Delivers one of your events again, now, once, to each of your enabled endpoints that
/// takes its type (signed as usual), and says how each went. The regular deliveries are
/// not affected. Scope `webhooks:manage`.
#[utoipa::path(post, path = "/v1/events/{id}/redeliver", tag = "webhooks", params(("id" = String, Path, description = "the event's id, evt_...")),
    responses((status = 200, description = "how each delivery went", body = RedeliveriesOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("api_key" = ["webhooks:manage"])))]
pub async fn redeliver_event(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    let key_hash = api_key_hash(&headers)?;
    let seq = ids::parse("evt", &raw, "no such event")?;
    let manage = Scopes::named("webhooks:manage").expect("a known scope");
    let merchant_id = read_as_key(&app, key_hash, manage, |_, merchant_id| merchant_id).await?;
    let event = app
        .engine
        .events()
        .read(seq - 1, 1)
        .map_err(|e| Problem::internal(e.to_string()))?
        .into_iter()
        .find(|e| e.seq == seq)
        .filter(|e| deliverable(&e.kind).is_some_and(|(m, _)| m == merchant_id))
        .ok_or_else(|| Problem::not_found("no such event"))?;
    let type_name = deliverable(&event.kind).map(|(_, t)| t).unwrap_or_default();
    let (taken, endpoints) = app
        .engine
        .read(move |s| {
            let endpoints: Vec<_> = s
                .merchants()
                .endpoints_of(merchant_id)
                .filter(|e| e.is_live() && e.events.has(type_name))
                .cloned()
                .collect();
            (take(s, &event), endpoints)
        })
        .await?;
    let rendered = taken.ok_or_else(|| Problem::not_found("no such event"))?.render(&app.keys);
    let mut deliveries = Vec::new();
    for e in endpoints {
        let outcome = match (Target::parse(e.url.as_str()), app.keys.open_secret(merchant_id, &e.secret)) {
            (Ok(target), Ok(secret)) => {
                let now = app.engine.now() / NANOS_PER_SECOND;
                let signature = crate::webhook_signature::sign(&[secret.expose().as_bytes()], now, &rendered.body);
                let headers = [
                    ("kasa-signature", signature),
                    ("kasa-event-id", ids::format("evt", seq)),
                    ("kasa-delivery-attempt", "redelivery".to_string()),
                ];
                Connection::new(target, app.webhooks_allow_private).deliver(rendered.body.clone(), &headers).await
            }
            (Err(why), _) => Delivered::Failed(why),
            (_, Err(_)) => Delivered::Failed("the signing secret does not open with this data key".into()),
        };
        deliveries.push(RedeliveryOutput {
            endpoint_id: ids::format("we", e.id),
            status: if outcome.ok() { "delivered" } else { "failed" },
            response_status: match &outcome {
                Delivered::Status(s) => Some(*s),
                Delivered::Failed(_) => None,
            },
            error: match outcome {
                Delivered::Failed(why) => Some(why),
                Delivered::Status(_) => None,
            },
        });
    }
    Ok(Json(RedeliveriesOutput { id: ids::format("evt", seq), deliveries }).into_response())
}
