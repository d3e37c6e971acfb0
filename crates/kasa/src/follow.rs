//! `kasa serve --follow URL`: the follower's side of a warm standby. One task polls the
//! primary's `GET /v1/admin/journal/frames?after=<our last frame>` (long polling, see
//! `kasa_server::routes::replication`) and hands what comes to [`Engine::replicate`], which
//! checks every frame against our own journal, appends, syncs and applies it as recovery
//! does. Our position is our own journal's last frame, so a restart resumes where the disk
//! says, never where memory said.
//!
//! When the primary goes away (refused connection, broken answer, timeout) the task tries
//! again with exponential backoff, for ever. When the primary sends something that does not
//! continue our journal, or says our position is past its journal, the task stops for good
//! and says why (the server keeps serving reads): following another journal would diverge.
//! It stops too when an operator promotes this server. It does not decide anything about
//! failover: promotion is the operator's call (`docs/standby.md`).

use anyhow::{bail, Context};
use kasa::client::AsyncClient;
use kasa_engine::{Engine, FollowState, ReplicateError, Role};
use kasa_server::Secret;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// How long a poll may wait at the primary for a new frame: under the primary's 10-second
/// keep-alive, so that the connection never sits idle long enough to be closed under us.
const POLL_WAIT: Duration = Duration::from_secs(5);

/// How long an answer may take beyond the poll's wait before the primary counts as gone: a
/// 16 MiB answer over a slow link, or a primary that stopped answering without closing.
const ANSWER_SLACK: Duration = Duration::from_secs(20);

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The first wait after a failure, and the longest: a restarting primary is picked up within
/// a second or two, and a dead one costs one attempt every 5 seconds.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The primary to follow.
pub struct Primary {
    /// The URL as given, for the status and the logs.
    pub url: String,
    /// `host:port`, resolved at every connection.
    authority: String,
    /// The primary's operator key.
    key: Secret,
}

impl Primary {
    /// Parses `http://host:port` (a trailing `/` is fine; no path, no TLS: see
    /// `docs/standby.md`).
    pub fn parse(url: &str, key: Secret) -> anyhow::Result<Primary> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("--follow takes an http:// URL (the primary's listen address), found '{url}'");
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
            bail!("--follow takes http://HOST:PORT with no path, found '{url}'");
        }
        Ok(Primary { url: url.to_string(), authority: authority.to_string(), key })
    }
}

/// How one connection to the primary ended.
enum End {
    /// The primary went away or answered oddly: try again later.
    Retry(String),
    /// The primary's journal is not ours to follow: stop for good.
    Stop(String),
    /// This server was promoted.
    Promoted,
    /// The engine stopped taking requests (the server is stopping, or failed).
    EngineStopped(String),
}

/// Follows `primary` until this server is promoted or a frame is refused.
pub async fn run(engine: Arc<Engine>, primary: Primary) {
    let mut backoff = BACKOFF_MIN;
    let mut promoted = engine.role_changes();
    let state = |phase: &'static str, error: Option<String>| FollowState { primary: primary.url.clone(), phase, error };
    engine.set_follow_state(state("connecting", None));
    loop {
        let mut answered = false;
        let ended = tokio::select! {
            ended = session(&engine, &primary, &mut answered) => ended,
            // An `Err` is the engine gone (its sender dropped), not a promotion: that branch
            // is then disabled and the session's own end tells.
            Ok(_) = promoted.wait_for(|r| *r == Role::Primary) => End::Promoted,
        };
        engine.metrics().follower_connected.store(0, Relaxed);
        match ended {
            End::Promoted => {
                tracing::info!(seq = engine.committed_seq(), "promoted: following stopped");
                engine.set_follow_state(state("stopped", Some("promoted".into())));
                return;
            }
            End::Stop(why) => {
                tracing::error!(error = %why, seq = engine.committed_seq(), "following stopped for good; reads go on, nothing more is taken");
                engine.set_follow_state(state("stopped", Some(why)));
                return;
            }
            End::EngineStopped(why) => {
                tracing::info!(reason = %why, "following stopped with the engine");
                engine.set_follow_state(state("stopped", Some(why)));
                return;
            }
            End::Retry(why) => {
                if answered {
                    backoff = BACKOFF_MIN;
                }
                engine.metrics().follower_reconnects_total.fetch_add(1, Relaxed);
                tracing::warn!(error = %why, retry_ms = backoff.as_millis() as u64, "the primary is not reachable; retrying");
                engine.set_follow_state(state("retrying", Some(why)));
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    Ok(_) = promoted.wait_for(|r| *r == Role::Primary) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One connection: polls until it fails. Sets `answered` once the primary answered a poll.
async fn session(engine: &Engine, primary: &Primary, answered: &mut bool) -> End {
    let mut client = match connect(primary).await {
        Ok(client) => client,
        Err(error) => return End::Retry(format!("{error:#}")),
    };
    // The most one answer holds: the frames' budget and one whole frame past it.
    client.set_body_max(
        kasa_server::routes::replication::FRAMES_BYTES_MAX
            + kasa_journal::FRAME_HEADER_BYTES
            + kasa_journal::FRAME_PAYLOAD_BYTES_MAX_DEFAULT as usize,
    );
    loop {
        let after = engine.committed_seq();
        let path = format!("/v1/admin/journal/frames?after={after}&wait_ms={}", POLL_WAIT.as_millis());
        let response =
            match tokio::time::timeout(POLL_WAIT + ANSWER_SLACK, client.send("GET", &path, "application/json", b""))
                .await
            {
                Ok(Ok(response)) => response,
                Ok(Err(error)) => return End::Retry(format!("{}: {error:#}", primary.url)),
                Err(_) => return End::Retry(format!("{}: no answer in {:?}", primary.url, POLL_WAIT + ANSWER_SLACK)),
            };
        if response.status != 200 {
            let problem = response.json();
            let what = format!(
                "{} answered {} {}: {}",
                primary.url,
                response.status,
                problem["code"].as_str().unwrap_or("?"),
                problem["detail"].as_str().unwrap_or("")
            );
            // A wrong key or a position past the primary's journal will not get better by
            // asking again; anything else (busy, stopping) may.
            return match response.status {
                401 | 404 | 409 => End::Stop(what),
                _ => End::Retry(what),
            };
        }
        *answered = true;
        let metrics = engine.metrics();
        metrics.follower_connected.store(1, Relaxed);
        if let Some(seq) = response.header("kasa-committed-seq").and_then(|v| v.parse().ok()) {
            metrics.follower_primary_seq.store(seq, Relaxed);
        }
        engine.set_follow_state(FollowState { primary: primary.url.clone(), phase: "streaming", error: None });
        if response.body.is_empty() {
            continue;
        }
        // Poll again at once: the next poll's `after` is the frame just synced (the engine
        // publishes it before it answers), and with a synchronous standby that poll is what
        // releases the primary's held answers, so it must not wait for anything else.
        match engine.replicate(response.body).await {
            Ok(seq) => debug_assert!(engine.committed_seq() >= seq),
            Err(ReplicateError::Refused(why)) => return End::Stop(why),
            Err(ReplicateError::NotFollowing) => return End::Promoted,
            Err(error @ (ReplicateError::StorageFull | ReplicateError::Busy)) => return End::Retry(error.to_string()),
            // The engine stopped (the server is exiting): nothing more to do.
            Err(error @ ReplicateError::Unavailable(_)) => return End::EngineStopped(error.to_string()),
        }
    }
}

async fn connect(primary: &Primary) -> anyhow::Result<AsyncClient> {
    let addr = tokio::net::lookup_host(&primary.authority)
        .await
        .with_context(|| format!("resolving {}", primary.authority))?
        .next()
        .with_context(|| format!("{} has no address", primary.authority))?;
    tokio::time::timeout(CONNECT_TIMEOUT, AsyncClient::connect(addr, primary.key.expose()))
        .await
        .with_context(|| format!("connecting to {}: no answer in {CONNECT_TIMEOUT:?}", primary.url))?
}
