//! The `Idempotency-Key` header on every POST, Stripe's way, exactly once across crashes.
//!
//! The same key with the same request (method, path, body) gets the first answer again, with
//! `Idempotent-Replayed: true`; the same key with another request is `422
//! idempotency_key_reused`. Keys are scoped to the caller (a session's user, the operator,
//! or for requests without credentials the request itself) and kept 24 hours.
//!
//! How: the front middleware checks the key and hashes the request ([`prepare`]); the handler
//! runs as usual, and its one state-changing command goes through [`AppState::submit`], which
//! wraps it in `Command::Keyed`. The core records the key **with the command's outcome, in the
//! same atomic step as the effect**, and for a retry returns that stored outcome instead of
//! applying anything; the handler renders a response from an outcome the same way whether it
//! is new or replayed. So a retry after any crash either replays the first answer or runs for
//! the first time: there is no window in which an effect is durable but its answer is not, and
//! no key can be stuck "in use". Two concurrent requests with one key are ordered by the
//! sequencer: the second replays the first.
//!
//! Logins are never keyed: their answer holds a session token, which is never stored. Moving
//! the test clock refuses a key (it is not a command with an outcome to store).

use crate::problem::Problem;
use crate::AppState;
use axum::extract::Request;
use axum::http::{request::Parts, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use kasa_core::idempotency::{IdempotencyKey, KeyScope};
use kasa_core::{Command, Inner, InnerOutcome, Keyed, KeyedOutcome, Outcome};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The key of the request being handled.
#[derive(Debug)]
pub struct KeyContext {
    key: IdempotencyKey,
    request_hash: [u8; 32],
    /// Set once a command used the key (one command per keyed request).
    used: AtomicBool,
    /// Set when the core answered with the stored outcome of an earlier request.
    replayed: AtomicBool,
}

impl KeyContext {
    /// The request's key.
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// The hash of the request (method, path, body).
    pub fn request_hash(&self) -> [u8; 32] {
        self.request_hash
    }

    /// Whether the core answered with the stored outcome of an earlier request (so effects
    /// outside the core, such as sending a code, must not happen again).
    pub fn was_replayed(&self) -> bool {
        self.replayed.load(Ordering::Acquire)
    }

    /// The scope of a request without credentials: its own hash, so that only an exact retry
    /// matches and two clients' keys never collide.
    pub fn anonymous_scope(&self) -> KeyScope {
        KeyScope::Anonymous(self.request_hash[..16].try_into().expect("16 bytes"))
    }
}

tokio::task_local! {
    static KEY: Arc<KeyContext>;
}

/// The key context of a request, if it has a valid `Idempotency-Key` (400 if invalid).
pub(crate) fn prepare(parts: &Parts, body: &[u8]) -> Result<Option<Arc<KeyContext>>, Problem> {
    // Logins answer a token that is never stored; the approval page's forms come from
    // browsers, which send no key (its answers are one-shot in the core: a second is refused).
    if parts.method != Method::POST || parts.uri.path() == "/v1/sessions" || crate::pay_page::is_page(parts.uri.path())
    {
        return Ok(None);
    }
    let Some(raw) = parts.headers.get("idempotency-key") else { return Ok(None) };
    let key = raw.to_str().ok().and_then(|k| IdempotencyKey::new(k).ok()).ok_or_else(|| {
        Problem::of("invalid_idempotency_key", "an Idempotency-Key is 1 to 255 printable ASCII characters")
    })?;
    if parts.uri.path() == "/v1/admin/test-clock/advance" {
        // Moving time is not a command with a stored outcome: a retry would move it again.
        return Err(Problem::of(
            "idempotency_key_not_supported",
            "moving the test clock takes no Idempotency-Key: read the clock's time before a retry",
        ));
    }
    let path = parts.uri.path();
    let shows_a_secret = (path.starts_with("/v1/admin/merchants/") && path.ends_with("/api-keys"))
        || path == "/v1/webhook-endpoints"
        || (path.starts_with("/v1/webhook-endpoints/") && path.ends_with("/rotate-secret"));
    if shows_a_secret {
        // The answer holds the key, shown once: a stored answer could not show it again.
        return Err(Problem::of(
            "idempotency_key_not_supported",
            "this request takes no Idempotency-Key: its answer holds a secret (an API key or a \
             webhook signing secret), shown once; list what exists before a retry",
        ));
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    let request_hash = *hasher.finalize().as_bytes();
    Ok(Some(Arc::new(KeyContext { key, request_hash, used: AtomicBool::new(false), replayed: AtomicBool::new(false) })))
}

/// Runs the handler with the key (if any) and marks a replayed answer.
pub(crate) async fn run(context: Option<Arc<KeyContext>>, next: Next, request: Request) -> Response {
    let Some(context) = context else { return next.run(request).await };
    let mut response = KEY.scope(context.clone(), next.run(request)).await;
    if context.replayed.load(Ordering::Acquire) {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The key context of the request being handled, if it has one.
pub fn current() -> Option<Arc<KeyContext>> {
    KEY.try_with(Arc::clone).ok()
}

fn plain(inner: Inner) -> Command {
    match inner {
        Inner::Ledger(c) => Command::Ledger(c),
        Inner::Wallet(c) => Command::Wallet(c),
        Inner::Merchant(c) => Command::Merchant(c),
        Inner::Partner(c) => Command::Partner(c),
        Inner::AsSession(s) => Command::AsSession(s),
    }
}

fn unwrap_plain(outcome: Outcome) -> Result<InnerOutcome, Problem> {
    match outcome {
        Outcome::Ledger(o) => Ok(InnerOutcome::Ledger(o)),
        Outcome::Wallet(o) => Ok(InnerOutcome::Wallet(o)),
        Outcome::Merchant(o) => Ok(InnerOutcome::Merchant(o)),
        Outcome::Partner(o) => Ok(InnerOutcome::Partner(o)),
        Outcome::AsSession(o) => Ok(InnerOutcome::AsSession(o)),
        other => Err(Problem::internal(format!("a plain command answered {other:?}"))),
    }
}

impl AppState {
    /// Submits a state-changing command, under the request's idempotency key if it has one
    /// (scoped to `scope`, the caller the handler authenticated), and returns its outcome: new,
    /// or the stored one of an earlier request with the same key.
    pub async fn submit(&self, scope: KeyScope, inner: Inner) -> Result<InnerOutcome, Problem> {
        let context = current().filter(|c| !c.used.swap(true, Ordering::AcqRel));
        let Some(context) = context else {
            return unwrap_plain(self.engine.submit(plain(inner)).await?);
        };
        let keyed = Keyed { scope, key: context.key.clone(), request_hash: context.request_hash, command: inner };
        match self.engine.submit(Command::Keyed(Box::new(keyed))).await? {
            Outcome::Keyed(KeyedOutcome::Applied(outcome)) => Ok(outcome),
            Outcome::Keyed(KeyedOutcome::Replayed(outcome)) => {
                context.replayed.store(true, Ordering::Release);
                Ok(outcome)
            }
            Outcome::Keyed(KeyedOutcome::Reused) => Err(Problem::of(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request (method, path or body); use a new key",
            )),
            Outcome::Keyed(KeyedOutcome::TooManyKeys) => {
                let mut p = Problem::of(
                    "too_many_idempotency_keys",
                    "you hold as many live Idempotency-Keys as allowed; retry later or without a key",
                );
                p.retry_after = Some(3600);
                Err(p)
            }
            Outcome::Keyed(KeyedOutcome::NotKeyable) => Err(Problem::of(
                "idempotency_key_not_supported",
                "a request of more than 64 items takes no Idempotency-Key: a ledger batch is idempotent by its ids",
            )),
            Outcome::Keyed(KeyedOutcome::SessionInvalid) => Err(Problem::session_required()),
            other => Err(Problem::internal(format!("a keyed command answered {other:?}"))),
        }
    }

    /// Submits a wallet command (see [`AppState::submit`]).
    pub async fn wallet(
        &self,
        scope: KeyScope,
        command: kasa_core::wallet::Command,
    ) -> Result<kasa_core::wallet::Outcome, Problem> {
        match self.submit(scope, Inner::Wallet(command)).await? {
            InnerOutcome::Wallet(outcome) => Ok(outcome),
            other => Err(Problem::internal(format!("a wallet command answered {other:?}"))),
        }
    }

    /// Submits a merchant command, keyed as [`AppState::submit`] says.
    pub async fn merchant(
        &self,
        scope: KeyScope,
        command: kasa_core::merchant::Command,
    ) -> Result<kasa_core::merchant::Outcome, Problem> {
        match self.submit(scope, Inner::Merchant(command)).await? {
            InnerOutcome::Merchant(outcome) => Ok(outcome),
            other => Err(Problem::internal(format!("a merchant command answered {other:?}"))),
        }
    }

    /// Submits a partner command, keyed as [`AppState::submit`] says.
    pub async fn partner(
        &self,
        scope: KeyScope,
        command: kasa_core::partner::Command,
    ) -> Result<kasa_core::partner::Outcome, Problem> {
        match self.submit(scope, Inner::Partner(command)).await? {
            InnerOutcome::Partner(outcome) => Ok(outcome),
            other => Err(Problem::internal(format!("a partner command answered {other:?}"))),
        }
    }

    /// Submits a partner's command without an idempotency key (one the request carries is
    /// ignored): a partner's requests are idempotent by its own request ids in the core, and
    /// its keys must not share the operator's scope.
    pub async fn partner_unkeyed(
        &self,
        command: kasa_core::partner::Command,
    ) -> Result<kasa_core::partner::Outcome, Problem> {
        match self.engine.submit(Command::Partner(command)).await? {
            Outcome::Partner(outcome) => Ok(outcome),
            other => Err(Problem::internal(format!("a partner command answered {other:?}"))),
        }
    }

    /// Submits a wallet command as the user of the session `token_hash`, resolved in the same
    /// step (one trip to the sequencer); 401 if the session is not valid.
    pub async fn as_session(
        &self,
        token_hash: [u8; 32],
        command: kasa_core::wallet::Command,
    ) -> Result<kasa_core::wallet::Outcome, Problem> {
        let inner = Inner::AsSession(kasa_core::SessionCommand { token_hash, command });
        match self.submit(KeyScope::Session(token_hash), inner).await? {
            InnerOutcome::AsSession(Some(outcome)) => Ok(outcome),
            InnerOutcome::AsSession(None) => Err(Problem::session_required()),
            other => Err(Problem::internal(format!("a session command answered {other:?}"))),
        }
    }

    /// Submits a ledger command of the operator.
    pub async fn ledger(&self, command: kasa_core::ledger::Command) -> Result<kasa_core::ledger::Outcome, Problem> {
        match self.submit(KeyScope::Operator, Inner::Ledger(command)).await? {
            InnerOutcome::Ledger(outcome) => Ok(outcome),
            other => Err(Problem::internal(format!("a ledger command answered {other:?}"))),
        }
    }
}
