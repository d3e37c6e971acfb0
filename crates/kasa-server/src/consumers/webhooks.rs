//! Webhook deliveries: the outbox consumer that sends merchants' events to their endpoints,
//! signed (`Kasa-Signature`, see `webhook_signature`), **at least once and in order per
//! endpoint** (so in order per payment), from committed state.
//!
//! - **One lane per endpoint**: a task with its own kept-alive connection that delivers the
//!   endpoint's events one at a time, in seq order, retrying the head until it is accepted (a
//!   2xx answer). A slow or dead endpoint holds up only its own lane: payments never wait
//!   for a delivery.
//! - **A dispatcher** reads the event log once (woken by an `EventLog::interest` in merchant
//!   events) and hands each event, rendered once, to the lanes that want it, through bounded
//!   queues. A lane whose queue is full (its endpoint is slow or down) leaves the live feed
//!   and later **catches up from the event log** from its own position, then rejoins.
//! - **Durable progress**: each endpoint's position (`delivered_through`) and since when it
//!   fails are recorded in the core with `RecordDeliveries` commands, every 200 ms and at once
//!   when an endpoint starts failing. A restart goes on from the recorded positions: events
//!   after them are delivered again (at least once; receivers deduplicate by the event id).
//! - **Back-off**: 1 s, 2 s, 4 s, ... up to an hour between tries, by engine time, for 3 days
//!   from the first failure (across restarts: the failure's start is recorded); then the core
//!   disables the endpoint and its lane stops. Rotating the secret enables it again.

use crate::ids;
use crate::json::Rfc3339;
use crate::routes::payments::{PaymentOutput, RefundOutput};
use crate::routes::payouts::PayoutOutput;
use crate::webhook_client::{Connection, Delivered, Target};
use crate::{AppState, Secret};
use bytes::Bytes;
use kasa_core::event::{Event, EventKind};
use kasa_core::merchant::{
    Command as MerchantCommand, DeliveryProgress, Event as MerchantEvent, EventTypes, WebhookEndpoint,
    FAILING_NANOS_MAX,
};
use kasa_core::text::BoundedVec;
use kasa_core::time::NANOS_PER_SECOND;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

/// Events a lane's queue holds before the lane leaves the live feed.
const LANE_QUEUE: usize = 4_096;
/// Events read from the log at a time.
const EVENTS_PER_READ: usize = 1_000;
/// How often progress is recorded, at most (failures are recorded at once).
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// The longest wait between two tries.
const BACKOFF_MAX_SECONDS: u64 = 3_600;
/// How often engine time is looked at while backing off (a test clock can jump).
const TIME_POLL: Duration = Duration::from_millis(50);

/// An event ready to deliver: its seq, type and signed-over body.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The event's seq (`evt_<seq>`).
    pub seq: u64,
    /// Whose event.
    pub merchant_id: u64,
    /// Its type (`payment.succeeded`).
    pub type_name: &'static str,
    /// The JSON body.
    pub body: Bytes,
}

/// The merchant an event is delivered to, if it is of a type webhooks carry.
pub fn deliverable(kind: &EventKind) -> Option<(u64, &'static str)> {
    let EventKind::Merchant(m) = kind else { return None };
    let merchant_id = match m {
        MerchantEvent::PaymentApproved { merchant_id, .. }
        | MerchantEvent::PaymentSucceeded { merchant_id, .. }
        | MerchantEvent::PaymentCanceled { merchant_id, .. }
        | MerchantEvent::PaymentExpired { merchant_id, .. }
        | MerchantEvent::RefundSucceeded { merchant_id, .. }
        | MerchantEvent::PayoutPaid { merchant_id, .. }
        | MerchantEvent::PayoutFailed { merchant_id, .. } => *merchant_id,
        _ => return None,
    };
    Some((merchant_id, kind.name()))
}

/// The object of a deliverable event, as it is now: taken on the sequencer (a clone), turned
/// into JSON off it by [`Taken::render`].
pub struct Taken {
    seq: u64,
    timestamp: u64,
    merchant_id: u64,
    type_name: &'static str,
    object: Object,
}

enum Object {
    Payment(kasa_core::merchant::Payment),
    Refund(kasa_core::merchant::Refund),
    Payout(PayoutOutput),
}

/// Takes the object of a deliverable event from the state (cheap: no JSON here).
pub fn take(s: &kasa_core::State, event: &Event) -> Option<Taken> {
    let (merchant_id, type_name) = deliverable(&event.kind)?;
    let EventKind::Merchant(m) = &event.kind else { return None };
    let merchants = s.merchants();
    let object = match m {
        MerchantEvent::PaymentApproved { payment_id, .. }
        | MerchantEvent::PaymentSucceeded { payment_id, .. }
        | MerchantEvent::PaymentCanceled { payment_id, .. }
        | MerchantEvent::PaymentExpired { payment_id, .. } => Object::Payment(merchants.payment(*payment_id)?.clone()),
        MerchantEvent::RefundSucceeded { refund_id, .. } => Object::Refund(merchants.refund(*refund_id)?.clone()),
        MerchantEvent::PayoutPaid { payout_id, .. } | MerchantEvent::PayoutFailed { payout_id, .. } => {
            Object::Payout(PayoutOutput::new(merchants.payout(*payout_id)?, s))
        }
        _ => return None,
    };
    Some(Taken { seq: event.seq, timestamp: event.timestamp, merchant_id, type_name, object })
}

impl Taken {
    /// The delivery body: `{"id": "evt_..", "object": "event", "type", "created_at", "data":
    /// {the object as it was taken}}`.
    pub fn render(&self, keys: &crate::crypto::DataKeys) -> Rendered {
        #[derive(serde::Serialize)]
        struct Envelope<'a, T> {
            id: String,
            object: &'static str,
            #[serde(rename = "type")]
            type_name: &'a str,
            created_at: Rfc3339,
            data: T,
        }
        fn bytes<T: serde::Serialize>(t: &Taken, data: T) -> Vec<u8> {
            let envelope = Envelope {
                id: ids::format("evt", t.seq),
                object: "event",
                type_name: t.type_name,
                created_at: Rfc3339(t.timestamp),
                data,
            };
            serde_json::to_vec(&envelope).unwrap_or_default()
        }
        let body = match &self.object {
            Object::Payment(p) => bytes(self, PaymentOutput::new(p, keys)),
            Object::Refund(r) => bytes(self, RefundOutput::from(r)),
            Object::Payout(p) => bytes(self, p),
        };
        Rendered { seq: self.seq, merchant_id: self.merchant_id, type_name: self.type_name, body: Bytes::from(body) }
    }
}

/// What a lane needs of its endpoint, refreshed when the endpoint changes.
#[derive(Clone)]
struct Config {
    live: bool,
    merchant_id: u64,
    events: EventTypes,
    url: String,
    /// The secret, and the one before a rotation with the engine time it stops signing.
    secret: Option<Arc<Secret>>,
    old_secret: Option<(Arc<Secret>, u64)>,
}

impl Config {
    fn of(app: &AppState, e: &WebhookEndpoint) -> Config {
        let open = |sealed| app.keys.open_secret(e.merchant_id, sealed).ok().map(Arc::new);
        Config {
            live: e.is_live(),
            merchant_id: e.merchant_id,
            events: e.events,
            url: e.url.as_str().to_string(),
            secret: open(&e.secret),
            old_secret: e.old_secret.as_ref().and_then(|(sealed, until)| open(sealed).map(|s| (s, *until))),
        }
    }

    fn wants(&self, r: &Rendered) -> bool {
        self.wants_type(r.merchant_id, r.type_name)
    }

    fn wants_type(&self, merchant_id: u64, type_name: &str) -> bool {
        self.live && merchant_id == self.merchant_id && self.events.has(type_name)
    }
}

/// The dispatcher's side of a lane.
struct LaneHandle {
    queue: mpsc::Sender<Arc<Rendered>>,
    /// In the live feed (else catching up from the log).
    live: bool,
    config: watch::Sender<Config>,
}

/// What the dispatcher and the lanes share.
#[derive(Default)]
struct Hub {
    lanes: HashMap<u64, LaneHandle>,
    /// Every event up to here was handed to the live lanes that want it.
    dispatched_through: u64,
}

/// Each endpoint's progress not yet recorded, and a bell for the urgent ones.
#[derive(Default)]
struct Progress {
    pending: Mutex<BTreeMap<u64, (u64, u64)>>,
    urgent: Notify,
}

impl Progress {
    fn report(&self, endpoint_id: u64, delivered_through: u64, failing_since: u64, urgent: bool) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(endpoint_id, (delivered_through, failing_since));
        if urgent {
            self.urgent.notify_one();
        }
    }
}

/// Starts the consumer on a thread of its own (`kasa-webhooks`), with a runtime of its own,
/// at a lower scheduling priority than the threads that serve requests and the sequencer:
/// deliveries use the CPU that payments leave, so that they never slow payments down. The
/// thread ends when the engine stops.
pub fn spawn(app: AppState) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("kasa-webhooks".into()).spawn(move || {
        lower_priority();
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(run(app)),
            Err(error) => tracing::error!(%error, "webhooks: no runtime; nothing is delivered"),
        }
    })
}

/// Lowers the calling thread's priority (a nice value of 10; Linux schedules threads
/// separately). Best effort: where it fails, the consumer runs at the normal priority.
pub(crate) fn lower_priority() {
    let tid = rustix::thread::gettid();
    if rustix::process::setpriority_process(Some(tid), 10).is_err() {
        tracing::warn!("could not lower a consumer thread's priority");
    }
}

async fn run(app: AppState) {
    // Two interests: endpoint changes, and events webhooks carry. While no endpoint has a
    // lane, only a change is worth reading the log for. Registered before the endpoints are
    // read, so that an endpoint made meanwhile is seen as a change.
    let mut interest = app.engine.events().interest(is_merchant_event);
    let changes = app.engine.events().interest(|kind| endpoint_changed(kind).is_some());
    let mut read_up_to = interest.borrow().last_seq;
    let Ok(live_endpoints) =
        app.engine.read(|s| s.merchants().all_endpoints().filter(|e| e.is_live()).cloned().collect::<Vec<_>>()).await
    else {
        return;
    };
    let hub = Arc::new(Mutex::new(Hub::default()));
    let progress = Arc::new(Progress::default());
    lock(&hub).dispatched_through = read_up_to;
    for e in &live_endpoints {
        start_lane(&app, &hub, &progress, e, false);
    }
    tokio::spawn(record_progress(app.clone(), progress.clone()));
    loop {
        let matched = *interest.borrow_and_update();
        // (Its own `last_seq`: up to there it has seen every change, whatever the other
        // interest was told first.)
        let seen = *changes.borrow();
        if lock(&hub).lanes.is_empty() && seen.last_match <= read_up_to {
            // Nothing to deliver to, and no endpoint made since: pass what came unread.
            read_up_to = read_up_to.max(seen.last_seq);
            lock(&hub).dispatched_through = read_up_to;
        }
        while read_up_to < matched.last_match {
            let events = match app.engine.events().read(read_up_to, EVENTS_PER_READ) {
                Ok(events) => events,
                Err(error) => {
                    // Try again shortly (the log is derived again from the journal at the
                    // next start if it stays unreadable).
                    tracing::error!(%error, "webhooks: the event log could not be read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.seq) else { break };
            // Each changed endpoint with the seq of its last change in this page.
            let mut changed_at: BTreeMap<u64, u64> = BTreeMap::new();
            for e in &events {
                if let Some(id) = endpoint_changed(&e.kind) {
                    changed_at.insert(id, e.seq);
                }
            }
            let changed: Vec<u64> = changed_at.keys().copied().collect();
            // Only what a lane wants (live or catching up: it may rejoin before this page is
            // handed out), or may want once a changed endpoint is read, is looked up: without
            // endpoints, the dispatcher costs the sequencer nothing.
            let wanted: Vec<Event> = {
                let h = lock(&hub);
                events
                    .into_iter()
                    .filter(|e| {
                        deliverable(&e.kind).is_some_and(|(m, t)| {
                            !changed.is_empty() || h.lanes.values().any(|l| l.config.borrow().wants_type(m, t))
                        })
                    })
                    .collect()
            };
            let (rendered, endpoints) = if wanted.is_empty() && changed.is_empty() {
                (Vec::new(), Vec::new())
            } else {
                let read = app
                    .engine
                    .read(move |s| {
                        let taken: Vec<Taken> = wanted.iter().filter_map(|e| take(s, e)).collect();
                        let endpoints: Vec<WebhookEndpoint> =
                            changed.iter().filter_map(|&id| s.merchants().endpoint(id).cloned()).collect();
                        (taken, endpoints)
                    })
                    .await;
                let Ok((taken, endpoints)) = read else { return };
                (taken.iter().map(|t| t.render(&app.keys)).collect::<Vec<Rendered>>(), endpoints)
            };
            // Endpoint changes first: a new (or newly enabled) endpoint starts right before the
            // event that made it, in the live feed. One whose position is older (its lane
            // stopped, say) catches up from the log first.
            for e in &endpoints {
                let existing = lock(&hub).lanes.get(&e.id).map(|lane| lane.config.send(Config::of(&app, e)));
                if existing.is_none() && e.is_live() {
                    let live = changed_at.get(&e.id).is_some_and(|&seq| e.delivered_through + 1 >= seq);
                    start_lane(&app, &hub, &progress, e, live);
                }
            }
            {
                let mut h = lock(&hub);
                for r in rendered {
                    let r = Arc::new(r);
                    for lane in h.lanes.values_mut().filter(|l| l.live && l.config.borrow().wants(&r)) {
                        if lane.queue.try_send(r.clone()).is_err() {
                            // Full (or the lane is gone): it catches up from the log later.
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

fn lock(hub: &Mutex<Hub>) -> std::sync::MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_merchant_event(kind: &EventKind) -> bool {
    deliverable(kind).is_some() || endpoint_changed(kind).is_some()
}

fn endpoint_changed(kind: &EventKind) -> Option<u64> {
    match kind {
        EventKind::Merchant(
            MerchantEvent::WebhookEndpointChanged { endpoint_id, .. }
            | MerchantEvent::WebhookEndpointDisabled { endpoint_id, .. },
        ) => Some(*endpoint_id),
        _ => None,
    }
}

/// Starts the lane of endpoint `e`: in the live feed if it was made just now (`live`), else
/// catching up from its recorded position first.
fn start_lane(app: &AppState, hub: &Arc<Mutex<Hub>>, progress: &Arc<Progress>, e: &WebhookEndpoint, live: bool) {
    let (queue, receiver) = mpsc::channel(LANE_QUEUE);
    let (config, config_rx) = watch::channel(Config::of(app, e));
    lock(hub).lanes.insert(e.id, LaneHandle { queue, live, config });
    let lane = Lane {
        app: app.clone(),
        hub: hub.clone(),
        progress: progress.clone(),
        endpoint_id: e.id,
        position: e.delivered_through,
        failing_since: e.failing_since,
        config: config_rx,
        connection: None,
    };
    tokio::spawn(lane.run(receiver));
}

/// One endpoint's deliveries. See the module documentation.
struct Lane {
    app: AppState,
    hub: Arc<Mutex<Hub>>,
    progress: Arc<Progress>,
    endpoint_id: u64,
    /// Every event up to here was delivered or is not for this endpoint.
    position: u64,
    failing_since: u64,
    config: watch::Receiver<Config>,
    connection: Option<(String, Connection)>,
}

impl Lane {
    async fn run(mut self, mut queue: mpsc::Receiver<Arc<Rendered>>) {
        loop {
            let live = lock(&self.hub).lanes.get(&self.endpoint_id).is_some_and(|l| l.live);
            let delivered = if live { self.live_feed(&mut queue).await } else { self.catch_up(&mut queue).await };
            if !delivered {
                lock(&self.hub).lanes.remove(&self.endpoint_id);
                return;
            }
        }
    }

    /// Delivers what the dispatcher handed over; false when the lane should stop.
    async fn live_feed(&mut self, queue: &mut mpsc::Receiver<Arc<Rendered>>) -> bool {
        let next = tokio::select! {
            next = queue.recv() => next,
            () = tokio::time::sleep(PROGRESS_EVERY) => {
                // Idle: everything the dispatcher passed is delivered or not for this lane.
                let h = lock(&self.hub);
                if queue.is_empty() && h.lanes.get(&self.endpoint_id).is_some_and(|l| l.live) && h.dispatched_through > self.position {
                    self.position = h.dispatched_through;
                    drop(h);
                    self.progress.report(self.endpoint_id, self.position, self.failing_since, false);
                }
                return self.config.borrow().live;
            }
            _ = self.config.changed() => return self.config.borrow().live,
        };
        let Some(r) = next else { return false };
        if r.seq <= self.position {
            return true;
        }
        self.deliver(&r).await
    }

    /// Delivers this endpoint's events from the log after its position, up to where the
    /// dispatcher is, then rejoins the live feed; false when the lane should stop.
    async fn catch_up(&mut self, queue: &mut mpsc::Receiver<Arc<Rendered>>) -> bool {
        let through = lock(&self.hub).dispatched_through;
        while self.position < through {
            let events = match self.app.engine.events().read(self.position, EVENTS_PER_READ) {
                Ok(events) => events,
                Err(error) => {
                    // Try again shortly: stopping here would leave the endpoint without a lane.
                    tracing::error!(%error, endpoint_id = self.endpoint_id, "webhooks: the event log could not be read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if !self.config.borrow().live {
                        return false;
                    }
                    continue;
                }
            };
            let Some(last) = events.last().map(|e| e.seq) else { break };
            let config = self.config.borrow().clone();
            let wanted: Vec<Event> = events
                .into_iter()
                .filter(|e| e.seq <= through)
                .filter(|e| deliverable(&e.kind).is_some_and(|(m, t)| m == config.merchant_id && config.events.has(t)))
                .collect();
            let Ok(taken) =
                self.app.engine.read(move |s| wanted.iter().filter_map(|e| take(s, e)).collect::<Vec<_>>()).await
            else {
                return false;
            };
            let rendered: Vec<Rendered> = taken.iter().map(|t| t.render(&self.app.keys)).collect();
            for r in &rendered {
                if !self.deliver(r).await {
                    return false;
                }
            }
            self.position = self.position.max(last.min(through));
            self.progress.report(self.endpoint_id, self.position, self.failing_since, false);
        }
        let mut h = lock(&self.hub);
        if h.dispatched_through == through {
            // Nothing was dispatched meanwhile: what the queue holds is old; rejoin.
            while queue.try_recv().is_ok() {}
            if let Some(lane) = h.lanes.get_mut(&self.endpoint_id) {
                lane.live = true;
            }
        }
        self.config.borrow().live
    }

    /// Delivers one event until it is accepted; false if the endpoint was deleted or
    /// disabled meanwhile.
    async fn deliver(&mut self, r: &Rendered) -> bool {
        let mut attempt = 0u32;
        loop {
            let config = self.config.borrow().clone();
            if !config.live {
                return false;
            }
            let outcome = self.attempt(&config, r, attempt + 1).await;
            if outcome.ok() {
                self.position = r.seq;
                let was_failing = self.failing_since != 0;
                self.failing_since = 0;
                self.progress.report(self.endpoint_id, self.position, 0, was_failing);
                return true;
            }
            let now = self.app.engine.now();
            if self.failing_since == 0 {
                self.failing_since = now;
                tracing::info!(endpoint_id = self.endpoint_id, ?outcome, "webhooks: an endpoint started failing");
                self.progress.report(self.endpoint_id, self.position, self.failing_since, true);
            }
            if now.saturating_sub(self.failing_since) >= FAILING_NANOS_MAX {
                // The core disables it when it records this; the lane waits for that.
                self.progress.report(self.endpoint_id, self.position, self.failing_since, true);
                let _ = tokio::time::timeout(Duration::from_secs(5), self.config.changed()).await;
                continue;
            }
            let delay = (1u64 << attempt.min(12)).min(BACKOFF_MAX_SECONDS);
            attempt += 1;
            let at = now.saturating_add(delay * NANOS_PER_SECOND);
            loop {
                if self.app.engine.now() >= at {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(TIME_POLL.min(Duration::from_secs(delay))) => {}
                    // A new URL or secret: try at once.
                    _ = self.config.changed() => break,
                }
            }
        }
    }

    async fn attempt(&mut self, config: &Config, r: &Rendered, attempt: u32) -> Delivered {
        if self.connection.as_ref().is_none_or(|(url, _)| *url != config.url) {
            let target = match Target::parse(&config.url) {
                Ok(target) => target,
                Err(why) => return Delivered::Failed(why),
            };
            self.connection = Some((config.url.clone(), Connection::new(target, self.app.webhooks_allow_private)));
        }
        let now = self.app.engine.now();
        let mut secrets: Vec<&[u8]> = config.secret.iter().map(|s| s.expose().as_bytes()).collect();
        if let Some((old, until)) = &config.old_secret {
            if *until > now {
                secrets.push(old.expose().as_bytes());
            }
        }
        if secrets.is_empty() {
            return Delivered::Failed("the signing secret does not open with this data key".into());
        }
        let signature = crate::webhook_signature::sign(&secrets, now / NANOS_PER_SECOND, &r.body);
        let headers = [
            ("kasa-signature", signature),
            ("kasa-event-id", ids::format("evt", r.seq)),
            ("kasa-delivery-attempt", attempt.to_string()),
        ];
        let (_, connection) = self.connection.as_mut().expect("made above");
        connection.deliver(r.body.clone(), &headers).await
    }
}

/// Records lanes' progress in the core, every [`PROGRESS_EVERY`] or at once when urgent.
async fn record_progress(app: AppState, lanes: Arc<Progress>) {
    let progress = lanes;
    loop {
        tokio::select! {
            () = tokio::time::sleep(PROGRESS_EVERY) => {}
            () = progress.urgent.notified() => {}
        }
        let pending = std::mem::take(&mut *progress.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let all: Vec<DeliveryProgress> = pending
            .into_iter()
            .map(|(endpoint_id, (delivered_through, failing_since))| DeliveryProgress {
                endpoint_id,
                delivered_through,
                failing_since,
            })
            .collect();
        for chunk in all.chunks(64) {
            let Ok(items) = BoundedVec::new(chunk.to_vec()) else { continue };
            let command = kasa_core::Command::Merchant(MerchantCommand::RecordDeliveries { progress: items });
            match app.engine.submit(command).await {
                Ok(_) => {}
                Err(kasa_engine::SubmitError::Unavailable) => return,
                // Busy or a full disk: keep them for the next round, unless newer came.
                Err(_) => {
                    let mut pending = progress.pending.lock().unwrap_or_else(|p| p.into_inner());
                    for p in chunk {
                        pending.entry(p.endpoint_id).or_insert((p.delivered_through, p.failing_since));
                    }
                }
            }
        }
    }
}
