//! Kasa's `notifyPayment` to partners: the outbox consumer that tells a partner's endpoint of
//! each of its payments at Kasa's stores (`partner_payment.succeeded`), signed with Kasa's key
//! as the partner API signs its answers, and **retried until the partner answers `S`**.
//!
//! - **What is sent**: `POST {endpoint}/payments/notifyPayment` with Alipay+'s body
//!   (`notifyType: "PAYMENT_RESULT"` and the payment as `inquiryPayment` shows it, `result`
//!   included) and the headers `Client-Id` (`ptn_N`), `Request-Time` and `Signature`
//!   (Ed25519 over `POST <path>\n<Client-Id>.<Request-Time>.<body>`, the path without a query).
//!   Partners without an endpoint are skipped. Cancels and refunds are not notified: the
//!   partner asks for them itself and gets a signed, final answer, which it can ask again
//!   (both are idempotent by their request ids); a payment may be the one whose answer the
//!   partner never got.
//! - **Done means a signed `S`**: a notification is done only when the partner answers HTTP
//!   200 with a JSON body whose `result.resultStatus` is `"S"`, signed by the partner and
//!   naming the notification's `paymentRequestId` (`partner_answer.rs`). Anything else
//!   (another status, `F`, `U`, a garbage or oversized body, an unsigned or misdirected `S`, no
//!   answer within 10 s) is tried again after 1 s, 2 s, 4 s, ... up to 10 minutes between
//!   tries, by engine time, without end.
//! - **One lane per partner**, in seq order: a task that notifies one payment at a time,
//!   retrying the head. A partner that does not answer holds up only its own notifications.
//!   A dispatcher reads the event log once and hands each notification to its partner's lane
//!   through a bounded queue; a lane whose queue is full catches up from the log later, from
//!   its own position (as webhook lanes do).
//! - **Durable progress, at least once**: each partner's position (`notified_through`) is
//!   recorded in the core with `partner::Command::RecordNotified` every 200 ms. A restart goes
//!   on from the recorded positions, so a crash never loses a notification, but one may be
//!   sent again: the partner deduplicates by `paymentRequestId`.
//!
//! Deliberately not here: partner payments themselves (the partner API), and any limit on how
//! long a partner may fail (the issue asks for retries until `S`; an operator suspends a
//! partner by other means, which does not stop its notifications).

use super::partner_answer::{self, Call};
use crate::json::Rfc3339;
use crate::routes::partner_api::PaymentOutput;
use crate::webhook_client::{Connection, Target};
use crate::{ids, AppState};
use bytes::Bytes;
use kasa_core::event::{Event, EventKind};
use kasa_core::partner::{Command as PartnerCommand, Event as PartnerEvent, NotifyProgress, NOTIFY_PROGRESS_MAX};
use kasa_core::text::BoundedVec;
use kasa_core::time::NANOS_PER_SECOND;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Notifications a lane's queue holds before the lane leaves the live feed.
const LANE_QUEUE: usize = 1_024;
/// Events read from the log at a time.
const EVENTS_PER_READ: usize = 1_000;
/// How often progress is recorded, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// The longest wait between two tries: 10 minutes (a partner back up hears within that).
const BACKOFF_MAX_SECONDS: u64 = 600;
/// How often engine time is looked at while backing off (a test clock can jump).
const TIME_POLL: Duration = Duration::from_millis(50);
/// What is appended to a partner's endpoint.
pub const NOTIFY_PATH: &str = "/payments/notifyPayment";

/// A notification ready to send: its event's seq, its payment's `paymentRequestId` (which
/// the partner's answer names) and its body.
#[derive(Debug)]
struct Note {
    seq: u64,
    request_id: String,
    body: Bytes,
}

/// The partner and payment of an event that is notified.
fn notified(kind: &EventKind) -> Option<(u64, u64)> {
    match kind {
        EventKind::Partner(PartnerEvent::PaymentSucceeded { partner_id, payment_id }) => {
            Some((*partner_id, *payment_id))
        }
        _ => None,
    }
}

fn is_notified(kind: &EventKind) -> bool {
    notified(kind).is_some()
}

/// The body of `notifyPayment`: Alipay+'s `notifyType` and the payment as the partner API
/// shows it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct NotifyBody {
    notify_type: &'static str,
    #[serde(flatten)]
    payment: PaymentOutput,
}

/// Renders the notifications of `events` (already filtered) from the state; a payment the
/// state does not have (it cannot happen: payments are never removed) is skipped.
async fn render(app: &AppState, events: Vec<(u64, u64)>) -> Option<Vec<Note>> {
    if events.is_empty() {
        return Some(Vec::new());
    }
    let payments = app
        .engine
        .read(move |s| {
            events
                .iter()
                .filter_map(|&(seq, payment_id)| s.partners().payment(payment_id).map(|p| (seq, p.clone())))
                .collect::<Vec<_>>()
        })
        .await
        .ok()?;
    Some(
        payments
            .iter()
            .map(|(seq, p)| {
                let body = NotifyBody { notify_type: "PAYMENT_RESULT", payment: PaymentOutput::of(p) };
                Note {
                    seq: *seq,
                    request_id: p.request_id.as_str().to_string(),
                    body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
                }
            })
            .collect(),
    )
}

/// The URL a partner is notified at, and the path that is signed (without a query).
pub fn notify_target(endpoint: &str) -> Result<(Target, String), String> {
    partner_target(endpoint, NOTIFY_PATH)
}

/// Where Kasa calls `suffix` (`/payments/pay`) of a partner's API at `endpoint`, and the path
/// it signs: the endpoint's path with `suffix` appended, its query (if any) kept on the
/// request but out of the signed path.
pub fn partner_target(endpoint: &str, suffix: &str) -> Result<(Target, String), String> {
    let mut target = Target::parse(endpoint)?;
    let (path, query) = match target.path.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (target.path.clone(), None),
    };
    let signed = format!("{}{suffix}", path.trim_end_matches('/'));
    target.path = match query {
        Some(query) => format!("{signed}?{query}"),
        None => signed.clone(),
    };
    Ok((target, signed))
}

/// The dispatcher's side of a lane.
struct LaneHandle {
    queue: mpsc::Sender<Arc<Note>>,
    /// In the live feed (else catching up from the log).
    live: bool,
}

/// What the dispatcher and the lanes share.
#[derive(Default)]
struct Hub {
    lanes: HashMap<u64, LaneHandle>,
    /// Every event up to here was handed to the live lanes it is for.
    dispatched_through: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Each partner's position not yet recorded.
#[derive(Default)]
struct Progress {
    pending: Mutex<BTreeMap<u64, u64>>,
}

/// Starts the consumer on a thread of its own (`kasa-notify`) with a runtime of its own, at a
/// lower scheduling priority than the threads that serve requests, as webhook deliveries do.
/// The thread ends when the engine stops.
pub fn spawn(app: AppState) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("kasa-notify".into()).spawn(move || {
        super::webhooks::lower_priority();
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(run(app)),
            Err(error) => tracing::error!(%error, "partner notify: no runtime; nothing is notified"),
        }
    })
}

async fn run(app: AppState) {
    // Registered before the partners are read: a partner made meanwhile is seen in the log.
    let mut interest = app.engine.events().interest(is_notified);
    let mut read_up_to = interest.borrow().last_seq;
    let Ok(partners) = app
        .engine
        .read(|s| {
            let p = s.partners();
            p.partners()
                .map(|x| (x.id, x.endpoint.as_ref().map(|e| e.as_str().to_string()), p.notified_through(x.id)))
                .collect::<Vec<_>>()
        })
        .await
    else {
        return;
    };
    let hub = Arc::new(Mutex::new(Hub { lanes: HashMap::new(), dispatched_through: read_up_to }));
    let progress = Arc::new(Progress::default());
    let mut without_endpoint: HashSet<u64> = HashSet::new();
    for (id, endpoint, position) in partners {
        match endpoint {
            Some(endpoint) => start_lane(&app, &hub, &progress, id, &endpoint, position, false),
            None => {
                without_endpoint.insert(id);
            }
        }
    }
    tokio::spawn(record_progress(app.clone(), progress.clone()));
    loop {
        let matched = *interest.borrow_and_update();
        while read_up_to < matched.last_match {
            let events = match app.engine.events().read(read_up_to, EVENTS_PER_READ) {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(%error, "partner notify: the event log could not be read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.seq) else { break };
            let wanted: Vec<(u64, u64, u64)> = events
                .iter()
                .filter_map(|e| notified(&e.kind).map(|(partner, payment)| (e.seq, partner, payment)))
                .filter(|(_, partner, _)| !without_endpoint.contains(partner))
                .collect();
            // A partner seen for the first time was made after the start: its lane begins
            // live, right before its first event (nothing before it can be its own).
            let new: Vec<(u64, u64)> = {
                let h = lock(&hub);
                let mut seen = HashSet::new();
                wanted
                    .iter()
                    .filter(|(_, partner, _)| !h.lanes.contains_key(partner) && seen.insert(*partner))
                    .map(|&(seq, partner, _)| (partner, seq))
                    .collect()
            };
            if !new.is_empty() {
                let ids: Vec<u64> = new.iter().map(|&(p, _)| p).collect();
                let Ok(found) = app
                    .engine
                    .read(move |s| {
                        let p = s.partners();
                        ids.iter()
                            .map(|&id| {
                                let partner = p.partner(id);
                                (
                                    partner.and_then(|x| x.endpoint.as_ref()).map(|e| e.as_str().to_string()),
                                    p.notified_through(id),
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                    .await
                else {
                    return;
                };
                for ((partner, first_seq), (endpoint, position)) in new.into_iter().zip(found) {
                    match endpoint {
                        Some(e) => start_lane(&app, &hub, &progress, partner, &e, position.max(first_seq - 1), true),
                        None => {
                            without_endpoint.insert(partner);
                        }
                    }
                }
            }
            let by_partner: Vec<u64> = wanted.iter().map(|&(_, partner, _)| partner).collect();
            let Some(notes) = render(&app, wanted.iter().map(|&(seq, _, payment)| (seq, payment)).collect()).await
            else {
                return;
            };
            {
                let mut h = lock(&hub);
                for (note, partner) in notes.into_iter().zip(by_partner) {
                    if let Some(lane) = h.lanes.get_mut(&partner).filter(|l| l.live) {
                        if lane.queue.try_send(Arc::new(note)).is_err() {
                            // Full: it catches up from the log later.
                            lane.live = false;
                        }
                    }
                }
                h.dispatched_through = last;
            }
            read_up_to = last;
            tokio::task::yield_now().await;
        }
        if read_up_to >= matched.last_match && matched.last_seq > read_up_to {
            read_up_to = matched.last_seq;
            lock(&hub).dispatched_through = read_up_to;
        }
        if interest.changed().await.is_err() {
            return;
        }
    }
}

/// Starts partner `partner_id`'s lane at `position`: in the live feed, or catching up from the
/// log first.
fn start_lane(
    app: &AppState,
    hub: &Arc<Mutex<Hub>>,
    progress: &Arc<Progress>,
    partner_id: u64,
    endpoint: &str,
    position: u64,
    live: bool,
) {
    let (queue, receiver) = mpsc::channel(LANE_QUEUE);
    lock(hub).lanes.insert(partner_id, LaneHandle { queue, live });
    let target = notify_target(endpoint);
    let lane = Lane {
        app: app.clone(),
        hub: hub.clone(),
        progress: progress.clone(),
        partner_id,
        client_id: ids::format("ptn", partner_id),
        connection: target
            .as_ref()
            .ok()
            .map(|(t, path)| (Connection::new(t.clone(), app.webhooks_allow_private), path.clone())),
        bad_endpoint: target.err(),
        position,
    };
    tokio::spawn(lane.run(receiver));
}

/// One partner's notifications. See the module documentation.
struct Lane {
    app: AppState,
    hub: Arc<Mutex<Hub>>,
    progress: Arc<Progress>,
    partner_id: u64,
    client_id: String,
    /// The connection and the signed path, if the endpoint parses.
    connection: Option<(Connection, String)>,
    bad_endpoint: Option<String>,
    /// Every event up to here was notified or is not for this partner.
    position: u64,
}

impl Lane {
    async fn run(mut self, mut queue: mpsc::Receiver<Arc<Note>>) {
        loop {
            let live = lock(&self.hub).lanes.get(&self.partner_id).is_some_and(|l| l.live);
            let going = if live { self.live_feed(&mut queue).await } else { self.catch_up(&mut queue).await };
            if !going {
                return;
            }
        }
    }

    fn report(&self) {
        lock(&self.progress.pending).insert(self.partner_id, self.position);
    }

    /// Notifies what the dispatcher handed over; false when the engine stopped.
    async fn live_feed(&mut self, queue: &mut mpsc::Receiver<Arc<Note>>) -> bool {
        let next = tokio::select! {
            next = queue.recv() => next,
            () = tokio::time::sleep(PROGRESS_EVERY) => {
                // Idle: everything dispatched is notified or not for this partner.
                let h = lock(&self.hub);
                let live = h.lanes.get(&self.partner_id).is_some_and(|l| l.live);
                if live && queue.is_empty() && h.dispatched_through > self.position {
                    self.position = h.dispatched_through;
                    drop(h);
                    self.report();
                }
                return true;
            }
        };
        let Some(note) = next else { return false };
        if note.seq > self.position {
            self.notify(&note).await;
            self.position = note.seq;
            self.report();
        }
        true
    }

    /// Notifies this partner's payments from the log after its position, up to where the
    /// dispatcher is, then rejoins the live feed; false when the engine stopped.
    async fn catch_up(&mut self, queue: &mut mpsc::Receiver<Arc<Note>>) -> bool {
        let through = lock(&self.hub).dispatched_through;
        while self.position < through {
            let events = match self.app.engine.events().read(self.position, EVENTS_PER_READ) {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(%error, partner_id = self.partner_id, "partner notify: the event log could not be read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.seq) else { break };
            let mine: Vec<(u64, u64)> = events
                .iter()
                .filter(|e| e.seq <= through)
                .filter_map(|e: &Event| {
                    notified(&e.kind).filter(|&(p, _)| p == self.partner_id).map(|(_, payment)| (e.seq, payment))
                })
                .collect();
            let Some(notes) = render(&self.app, mine).await else { return false };
            for note in &notes {
                self.notify(note).await;
                self.position = note.seq;
                self.report();
            }
            self.position = self.position.max(last.min(through));
            self.report();
        }
        let mut h = lock(&self.hub);
        if h.dispatched_through == through {
            // Nothing was dispatched meanwhile: what the queue holds is old; rejoin.
            while queue.try_recv().is_ok() {}
            if let Some(lane) = h.lanes.get_mut(&self.partner_id) {
                lane.live = true;
            }
        }
        true
    }

    /// Sends one notification until the partner answers `S`.
    async fn notify(&mut self, note: &Note) {
        let mut attempt = 0u32;
        loop {
            let failure = match self.attempt(note).await {
                Ok(()) => {
                    if attempt > 0 {
                        tracing::info!(
                            partner_id = self.partner_id,
                            seq = note.seq,
                            attempt,
                            "partner notify: answered S"
                        );
                    }
                    return;
                }
                Err(why) => why,
            };
            if attempt == 0 {
                // Once per notification: what Kasa saw, never the body.
                tracing::info!(
                    partner_id = self.partner_id,
                    seq = note.seq,
                    failure,
                    "partner notify: not answered S; retrying"
                );
            }
            let delay = (1u64 << attempt.min(10)).min(BACKOFF_MAX_SECONDS);
            attempt = attempt.saturating_add(1);
            let at = self.app.engine.now().saturating_add(delay * NANOS_PER_SECOND);
            while self.app.engine.now() < at {
                tokio::time::sleep(TIME_POLL).await;
            }
        }
    }

    async fn attempt(&mut self, note: &Note) -> Result<(), String> {
        let Some((connection, path)) = self.connection.as_mut() else {
            return Err(self.bad_endpoint.clone().unwrap_or_default());
        };
        let time = Rfc3339(self.app.engine.now()).to_string();
        let signature =
            crate::partner_signature::kasa_signature(&self.app.kasa_signer, path, &self.client_id, &time, &note.body);
        let headers = [("client-id", self.client_id.clone()), ("request-time", time), ("signature", signature)];
        let reply = connection.exchange(note.body.clone(), &headers).await;
        let call = Call { partner_id: self.partner_id, path, payment_request_id: &note.request_id };
        let answer = partner_answer::checked(&self.app, &call, reply).await?;
        if answer["result"]["resultStatus"] == "S" {
            Ok(())
        } else {
            Err("HTTP 200 without result S".into())
        }
    }
}

/// Records lanes' positions in the core, every [`PROGRESS_EVERY`].
async fn record_progress(app: AppState, progress: Arc<Progress>) {
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let pending = std::mem::take(&mut *lock(&progress.pending));
        let all: Vec<NotifyProgress> = pending
            .into_iter()
            .map(|(partner_id, notified_through)| NotifyProgress { partner_id, notified_through })
            .collect();
        for chunk in all.chunks(NOTIFY_PROGRESS_MAX) {
            let Ok(items) = BoundedVec::new(chunk.to_vec()) else { continue };
            let command = kasa_core::Command::Partner(PartnerCommand::RecordNotified { progress: items });
            match app.engine.submit(command).await {
                Ok(_) => {}
                Err(kasa_engine::SubmitError::Unavailable) => return,
                // Busy or a full disk: keep them for the next round, unless newer came.
                Err(_) => {
                    let mut pending = lock(&progress.pending);
                    for p in chunk {
                        pending.entry(p.partner_id).or_insert(p.notified_through);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notify_url_is_the_endpoint_with_the_path_appended_and_the_query_unsigned() {
        let (t, signed) = notify_target("https://partner.example/aps/v1/").unwrap();
        assert_eq!(
            (t.path.as_str(), signed.as_str()),
            ("/aps/v1/payments/notifyPayment", "/aps/v1/payments/notifyPayment")
        );
        let (t, signed) = notify_target("http://localhost:8080").unwrap();
        assert_eq!((t.path.as_str(), signed.as_str()), ("/payments/notifyPayment", "/payments/notifyPayment"));
        let (t, signed) = notify_target("https://p.example/cb?k=1").unwrap();
        assert_eq!(
            (t.path.as_str(), signed.as_str()),
            ("/cb/payments/notifyPayment?k=1", "/cb/payments/notifyPayment")
        );
        // Kasa's calls for payments abroad go the same way.
        let (t, signed) = partner_target("https://p.example/aps/?k=1", "/payments/pay").unwrap();
        assert_eq!((t.path.as_str(), signed.as_str()), ("/aps/payments/pay?k=1", "/aps/payments/pay"));
    }
}
