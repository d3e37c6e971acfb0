//! A warm standby's endpoints (operator key): the journal's committed frames for a follower
//! (long polling), the replication status of this server, and the promotion of a follower.
//! `docs/standby.md` says how to run one and what is guaranteed.
//!
//! **Why long polling** and not one endless streamed response: every answer is a plain,
//! bounded `Content-Length` response, so both sides use their ordinary HTTP code, a dead
//! primary shows as a failed or timed-out request (no heartbeat of our own to design), each
//! answer carries the primary's committed seq (the follower's lag), and each poll's `after` is
//! the follower's durable position, which a synchronous standby waits for
//! ([`kasa_engine::Engine::follower_has`]). The cost,
//! one request per poll, is small: a poll takes every committed frame up to
//! [`FRAMES_BYTES_MAX`], and an idle one waits for the next commit.
//!
//! This module ships frames and reports; following (the client side) is `kasa serve
//! --follow`, in the binary.

use super::query_pairs;
use crate::problem::Problem;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kasa_engine::{hex, Health, Role};
use kasa_journal::{FileStorage, FrameReader};
use serde::Serialize;
use std::sync::Mutex;
use std::time::Duration;
use utoipa::ToSchema;

/// Bytes of frames in one answer (the first frame always goes whole, whatever its size): a
/// few full batches, so a follower far behind catches up in large steps, and the answer is
/// bounded in memory.
pub const FRAMES_BYTES_MAX: usize = 16 << 20;

/// The media type of the frames route's answers: journal frames as stored, back to back
/// (its own type, so nothing takes them for a ledger batch's `application/octet-stream`).
pub const FRAMES_MEDIA_TYPE: &str = "application/vnd.kasa.journal-frames";

/// The longest a poll waits for a new commit: under the follower's request timeout, and
/// short enough that a stopping server is not held up long by a poll.
pub const POLL_WAIT_MAX: Duration = Duration::from_secs(30);

/// How long a poll waits without `wait_ms`.
const POLL_WAIT_DEFAULT: Duration = Duration::from_secs(10);

/// The frames route: a follower's poll takes no in-flight permit (`front.rs`), since on a
/// synchronous primary the writes it would release may hold them all.
pub const FRAMES_PATH: &str = "/v1/admin/journal/frames";

/// Frame readers kept between polls: one per follower covers every sane deployment; past it
/// the oldest is dropped and its follower's next poll finds its place again.
const READERS_KEPT: usize = 4;

/// Frame reads running at once (the rest wait their turn).
static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(READERS_KEPT);

/// The frame readers kept between polls, each where its follower will ask next.
#[derive(Default)]
pub struct Readers(Mutex<Vec<Kept>>);

/// A frame reader, and whether it shipped a frame (then its last one is `next_seq - 1`).
struct Kept {
    reader: FrameReader<FileStorage>,
    shipped: bool,
}

impl Readers {
    fn take(&self, next_seq: u64) -> Option<Kept> {
        let mut readers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let i = readers.iter().position(|k| k.reader.next_seq() == next_seq)?;
        Some(readers.remove(i))
    }

    fn put(&self, kept: Kept) {
        let mut readers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() >= READERS_KEPT {
            readers.remove(0);
        }
        readers.push(kept);
    }

    /// Whether frame `seq` was shipped by a kept reader that now waits at `seq + 1`: a poll
    /// with `after=seq` then comes from a follower that took that frame, and a follower
    /// takes a frame only if it chains onto its own last one, so its frames 1..=seq are
    /// this journal's. (A bare `after` could come from a follower of another journal, whose
    /// frames up to it are not ours: it must not release an answer.)
    fn shipped_through(&self, seq: u64) -> bool {
        let readers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        readers.iter().any(|k| k.shipped && k.reader.next_seq() == seq + 1)
    }
}

/// The committed journal frames after `after`, as stored (72-byte header and payload, back to
/// back: `docs/journal-format.md`), up to 16 MiB (at least one frame). If there is none yet,
/// waits up to `wait_ms` (default 10,000, at most 30,000) for a commit and answers what it
/// brought, or nothing. `Kasa-Committed-Seq` is this server's last committed frame.
#[utoipa::path(get, path = "/v1/admin/journal/frames", tag = "replication",
    params(("after" = u64, Query, description = "the last frame the follower has (0 for none)"),
        ("wait_ms" = Option<u64>, Query, description = "how long to wait for a new frame: 0 to 30,000 ms (default 10,000)")),
    responses((status = 200, description = "committed frames, possibly none, as application/vnd.kasa.journal-frames (72-byte headers and payloads back to back, as stored); `Kasa-Committed-Seq` and `Kasa-Frames` headers", content_type = "application/vnd.kasa.journal-frames"),
        (status = "default", description = "an error as application/problem+json, with a stable code (`journal_position_ahead`)", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn journal_frames(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, Problem> {
    let (after, wait) = frames_query(query.as_deref())?;
    let Some(dir) = app.journal_dir.clone() else {
        return Err(Problem::not_found("this server ships no frames"));
    };
    let mut committed = app.engine.committed();
    let now = *committed.borrow();
    if after > now {
        return Err(Problem::of(
            "journal_position_ahead",
            format!(
                "the follower has frame {after}, and this journal ends at frame {now}: \
                 it follows another primary's journal, or this one lost frames"
            ),
        ));
    }
    // `after` is the follower's synced position: with a synchronous standby, the answers
    // held for frames up to it go now, before this poll waits for the next commit, so a
    // write's answer costs about one round trip to the follower and its sync.
    if after > 0 && app.frame_readers.shipped_through(after) {
        app.engine.follower_has(after);
    }
    if now == after && !wait.is_zero() {
        let mut health = app.engine.health_changes();
        tokio::select! {
            _ = tokio::time::timeout(wait, committed.wait_for(|c| *c > after)) => {}
            _ = health.wait_for(|h| *h != Health::Ready) => {}
        }
    }
    // At most READERS_KEPT reads at once: each holds up to FRAMES_BYTES_MAX and a frame.
    let _reading = READS.acquire().await.map_err(Problem::internal)?;
    let up_to = *committed.borrow();
    let cached = app.frame_readers.take(after + 1);
    let read = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let mut kept = match cached {
            Some(kept) => kept,
            None => {
                let storage = FileStorage::open(&dir).map_err(|e| format!("opening the journal: {e}"))?;
                let reader = FrameReader::new(storage, after, kasa_journal::FRAME_PAYLOAD_BYTES_MAX_DEFAULT);
                Kept { reader, shipped: false }
            }
        };
        let mut out = Vec::new();
        let frames = kept.reader.read(up_to, FRAMES_BYTES_MAX, &mut out).map_err(|e| e.to_string())?;
        kept.shipped |= frames > 0;
        Ok((kept, frames, out))
    })
    .await
    .map_err(Problem::internal)?;
    let (reader, frames, body) = read.map_err(Problem::internal)?;
    app.frame_readers.put(reader);
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FRAMES_MEDIA_TYPE));
    headers.insert("kasa-committed-seq", HeaderValue::from(up_to));
    headers.insert("kasa-frames", HeaderValue::from(frames));
    Ok(response)
}

/// `after` (required) and `wait_ms`.
fn frames_query(query: Option<&str>) -> Result<(u64, Duration), Problem> {
    let mut after = None;
    let mut wait = POLL_WAIT_DEFAULT;
    for (key, value) in query_pairs(query, &["after", "wait_ms"])? {
        let number = value.parse::<u64>().map_err(|_| Problem::invalid_parameter(format!("{key} is a number")))?;
        match key {
            "after" => after = Some(number),
            _ => {
                wait = Duration::from_millis(number);
                if wait > POLL_WAIT_MAX {
                    return Err(Problem::invalid_parameter(format!("wait_ms is 0 to {}", POLL_WAIT_MAX.as_millis())));
                }
            }
        }
    }
    let after = after.ok_or_else(|| Problem::invalid_parameter("after is required: the last frame you have"))?;
    Ok((after, wait))
}

/// This server's place in replication.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReplicationOutput {
    object: &'static str,
    /// `primary` or `follower`.
    role: &'static str,
    /// The last journal frame applied to the state.
    seq: u64,
    /// The BLAKE3 hash of the state as of `seq` (the `state hash` of `kasa verify`): equal on
    /// a primary and its follower at the same seq.
    state_hash: String,
    /// A follower's connection to its primary; `null` on a primary.
    following: Option<FollowingOutput>,
}

/// A follower's connection to its primary.
#[derive(Serialize, ToSchema)]
pub(crate) struct FollowingOutput {
    /// The primary's URL.
    primary: String,
    /// `connecting`, `streaming`, `retrying` or `stopped` (a refused frame: see `error`).
    phase: &'static str,
    /// Whether the last request to the primary succeeded.
    connected: bool,
    /// The primary's committed seq, as of its last answer.
    primary_seq: u64,
    /// Frames the primary had committed that this server has not.
    lag_frames: u64,
    /// Why it is retrying or stopped.
    error: Option<String>,
}

/// This server's role, its position in the journal with the state hash there, and, on a
/// follower, its primary and its lag.
#[utoipa::path(get, path = "/v1/admin/replication", tag = "replication",
    responses((status = 200, description = "the replication status", body = ReplicationOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn replication_status(State(app): State<AppState>) -> Result<Response, Problem> {
    // A view is a reference per table, taken on the sequencer; the hash is computed off it.
    let (seq, view) = app.engine.read(|s| (s.batches(), s.view())).await?;
    let state_hash = tokio::task::spawn_blocking(move || hex(&view.hash())).await.map_err(Problem::internal)?;
    let role = app.engine.role();
    let following = (role == Role::Follower).then(|| {
        let metrics = app.engine.metrics();
        let state = app.engine.follow_state();
        let primary_seq = metrics.follower_primary_seq.load(std::sync::atomic::Ordering::Relaxed);
        FollowingOutput {
            primary: state.primary,
            phase: if state.phase.is_empty() { "connecting" } else { state.phase },
            connected: metrics.follower_connected.load(std::sync::atomic::Ordering::Relaxed) == 1,
            primary_seq,
            lag_frames: primary_seq.saturating_sub(app.engine.committed_seq()),
            error: state.error,
        }
    });
    let role = if role == Role::Follower { "follower" } else { "primary" };
    Ok(Json(ReplicationOutput { object: "replication", role, seq, state_hash, following }).into_response())
}

/// What a promotion did.
#[derive(Serialize, ToSchema)]
pub(crate) struct PromotionOutput {
    object: &'static str,
    /// `primary`.
    role: &'static str,
    /// The last frame taken from the old primary: the new primary's journal goes on from it.
    seq: u64,
}

/// Promotes a follower: it stops following, keeps every frame it took, and from now on takes
/// writes and drives the effects (bank rail, webhooks, partner calls) as a primary. On a
/// primary it changes nothing. There is no fencing: the operator makes sure the old primary
/// is stopped for good first (`docs/standby.md`).
#[utoipa::path(post, path = "/v1/admin/promote", tag = "replication",
    responses((status = 200, description = "this server is a primary", body = PromotionOutput),
        (status = "default", description = "an error as application/problem+json, with a stable code", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("operator" = [])))]
pub async fn promote(State(app): State<AppState>) -> Result<Response, Problem> {
    let seq = app.engine.promote().await?;
    Ok(Json(PromotionOutput { object: "replication", role: "primary", seq }).into_response())
}
