//! Kasa's HTTP API: routes, JSON shapes, problem+json errors, authentication, rate limits,
//! the outbox consumers that call banks, and the Prometheus endpoint, on axum and hyper.
//!
//! How the pieces fit: [`serve`] accepts connections (`listener.rs`: a connection cap and
//! header and body timeouts) and hands requests to the router ([`router`]), whose routes and
//! OpenAPI document come from one list (`routes/mod.rs`), so a route cannot be missing from
//! the document. Every request first goes through `front.rs` (operator key, body read within
//! its size and time bounds, content type, the in-flight permit, the `Idempotency-Key`, one
//! log line), then a handler in `routes/` parses its input into the core's bounded types,
//! submits one command or read to the [`Engine`], and renders the outcome. Only this crate
//! knows HTTP and JSON; it holds no domain state of its own. Effects outside Kasa (the bank)
//! run in `consumers/`, driven by the engine's event log.

pub mod bank;
pub mod body;
pub mod consumers;
pub mod crypto;
pub mod demo;
pub mod docs;
mod front;
pub mod html;
pub mod idempotency;
pub mod ids;
pub mod images;
pub mod import_file;
pub mod json;
pub mod listener;
pub mod openapi;
pub mod partner_signature;
pub mod pay_page;
pub mod paycode;
pub mod pin;
pub mod problem;
pub mod ratelimit;
pub mod read_model;
pub mod reconcile;
pub mod render;
pub mod routes;
pub mod settlement_file;
pub mod sms;
pub mod webhook_client;
pub mod webhook_signature;

use axum::Router;
use kasa_engine::Engine;
pub use listener::{serve, ServeOptions};
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
    /// The operator key that the ledger and admin APIs require.
    pub operator_key: Secret,
    /// Permits for requests in progress; see [`REQUESTS_IN_FLIGHT_MAX`].
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// PIN hashing with the server's pepper.
    pub pins: pin::PinHasher,
    /// Keys derived from the data key: sealed account numbers, code hashes.
    pub keys: crypto::DataKeys,
    /// The bank rail for top-ups and withdrawals.
    pub bank: Arc<dyn bank::BankRail>,
    /// The SMS gateway for verification codes.
    pub sms: Arc<dyn sms::SmsGateway>,
    /// The sandbox gateway, when it is the one in use (operators may read its messages).
    pub sandbox_sms: Option<Arc<sms::SandboxSms>>,
    /// Rate limits at the door.
    pub limits: ratelimit::Limits,
    /// The minute each API key was last recorded as used in.
    pub key_uses: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
    /// Whether webhooks may go to private addresses (`--webhooks-allow-private`).
    pub webhooks_allow_private: bool,
    /// Partners' request signatures seen recently (the replay check).
    pub partner_replays: partner_signature::ReplayGuard,
    /// Partners' live keys, so that a signed request needs no read of the state first.
    pub partner_keys: partner_signature::KeyCache,
    /// Kasa's key for signing its answers to partners, derived from the data key.
    pub kasa_signer: partner_signature::Signer,
    /// Partners' merchant imports this server runs, with their files.
    pub imports: routes::imports::Imports,
    /// The journal's directory, from which followers are shipped frames (`None`: not shipped).
    pub journal_dir: Option<std::path::PathBuf>,
    /// Frame readers kept between a follower's polls, so that each poll reads on from where
    /// the last stopped instead of finding its place again.
    pub frame_readers: routes::replication::Readers,
    /// The PostgreSQL read model, when the server runs with one (`--read-model`): set once,
    /// before the server listens.
    pub read_model: std::sync::OnceLock<Arc<read_model::ReadModel>>,
}

/// Requests the server works on at once; beyond it a request gets 503 `busy` at once. It
/// bounds memory: a request holds a permit only once its body is read, and a body is at most
/// 8 MiB (operators' ledger batches; 64 KiB for everyone else), so 512 stay under 6 GiB even
/// if every one were a full ledger batch.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 512;

/// What a server needs besides its engine.
pub struct Config {
    /// The operator key.
    pub operator_key: Secret,
    /// The PIN pepper.
    pub pin_pepper: Secret,
    /// The data key.
    pub data_key: Secret,
    /// The bank rail.
    pub bank: Arc<dyn bank::BankRail>,
    /// The sandbox SMS gateway (the only one shipped).
    pub sms: Arc<sms::SandboxSms>,
    /// Whether webhooks may go to private addresses.
    pub webhooks_allow_private: bool,
    /// The journal's directory, to ship frames to followers (`None`: no follower can follow).
    pub journal_dir: Option<std::path::PathBuf>,
}

impl AppState {
    /// The state for `engine` and `config`.
    pub fn new(engine: Arc<Engine>, config: Config) -> Self {
        AppState(Arc::new(Shared {
            engine,
            operator_key: config.operator_key,
            in_flight: Arc::new(tokio::sync::Semaphore::new(REQUESTS_IN_FLIGHT_MAX)),
            pins: pin::PinHasher::new(&config.pin_pepper),
            keys: crypto::DataKeys::new(&config.data_key),
            bank: config.bank,
            sms: config.sms.clone(),
            sandbox_sms: Some(config.sms),
            limits: ratelimit::Limits::default(),
            key_uses: std::sync::Mutex::new(std::collections::HashMap::new()),
            webhooks_allow_private: config.webhooks_allow_private,
            partner_replays: partner_signature::ReplayGuard::default(),
            partner_keys: partner_signature::KeyCache::default(),
            kasa_signer: partner_signature::Signer::from_seed(&blake3::derive_key(
                "kasa 2026-11-30 partner answer signing key",
                config.data_key.expose().as_bytes(),
            )),
            imports: routes::imports::Imports::new(),
            journal_dir: config.journal_dir,
            frame_readers: routes::replication::Readers::default(),
            read_model: std::sync::OnceLock::new(),
        }))
    }
}

/// The token of an `Authorization: Bearer ...` header, if the request has one.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&[u8]> {
    headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
}

/// Builds the router: the API's routes (with their OpenAPI document), the documentation
/// pages, the hosted approval page (not part of the API, so not in the document), and the
/// front middleware around everything.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = routes::api().split_for_parts();
    let openapi = openapi::complete(openapi);
    api.merge(docs::router(openapi))
        .merge(pay_page::router())
        .fallback(front::fallback)
        .method_not_allowed_fallback(front::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), front::front))
        .with_state(state)
}
