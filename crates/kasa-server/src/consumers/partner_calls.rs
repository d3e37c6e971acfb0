//! Kasa's calls to partners for its users' payments abroad (`partner::outbound`), driven from
//! committed state: every pending overseas payment at start, and each new one as its
//! `overseas_payment.created` event is published. Each payment is driven to its end by the
//! partner's call policy, and every step is a command, so the timeline is in the journal and a
//! restart resumes where it stopped:
//!
//! 1. `pay` (Alipay+'s message, signed with Kasa's key; the partner dedupes by
//!    `paymentRequestId`, `kasa-op-{id}`): `S` ends it paid, `F` failed. Anything else (a
//!    timeout, a lost connection, `U`, an unreadable answer, an answer the partner did not
//!    sign or that names another request: `partner_answer.rs`) is an unknown outcome.
//! 2. An unknown outcome is **inquired** every `inquire_every_seconds` for
//!    `inquire_for_seconds`: a `SUCCESS` ends it paid, a `FAIL` failed; not found or no answer
//!    goes on.
//! 3. Then it is **canceled**, again and again until the partner confirms; only a confirmed
//!    cancel fails it (and gives the money back).
//!
//! A payment whose `pay` was never sent (a crash between its commit and the call) is sent on
//! restart; one whose `pay` may have been sent is inquired first.

use super::partner_answer::{self, Call};
use crate::partner_signature as sig;
use crate::webhook_client::Connection;
use crate::AppState;
use kasa_core::event::EventKind;
use kasa_core::partner::{Event as PartnerEvent, OverseasPayment, OverseasStatus, Step};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one call to a partner may take before its outcome is unknown.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a step waits for a busy engine between tries.
const RETRY: Duration = Duration::from_millis(50);

/// Starts the driver on the current runtime.
pub fn spawn(app: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(app))
}

fn is_created(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Partner(PartnerEvent::OverseasCreated { .. }))
}

async fn run(app: AppState) {
    let mut interest = app.engine.events().interest(is_created);
    let mut read_up_to = app.engine.events().last_seq();
    let Ok(pending) = app.engine.read(|s| s.partners().pending_overseas().map(|p| p.id).collect::<Vec<u64>>()).await
    else {
        return;
    };
    let driving: Arc<Mutex<HashSet<u64>>> = Arc::default();
    for id in pending {
        start(&app, &driving, id);
    }
    loop {
        let matched = *interest.borrow_and_update();
        while read_up_to < matched.last_match {
            let Ok(events) = app.engine.events().read(read_up_to, 1_000) else { break };
            let Some(last) = events.last().map(|e| e.seq) else { break };
            for event in &events {
                if let EventKind::Partner(PartnerEvent::OverseasCreated { payment_id, .. }) = event.kind {
                    start(&app, &driving, payment_id);
                }
            }
            read_up_to = last;
        }
        read_up_to = read_up_to.max(matched.last_seq);
        if interest.changed().await.is_err() {
            return;
        }
    }
}

/// Drives payment `id` unless it is being driven.
fn start(app: &AppState, driving: &Arc<Mutex<HashSet<u64>>>, id: u64) {
    if !driving.lock().unwrap_or_else(|p| p.into_inner()).insert(id) {
        return;
    }
    let (app, driving) = (app.clone(), driving.clone());
    tokio::spawn(async move {
        drive(&app, id).await;
        driving.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    });
}

/// What a call found.
enum Answer {
    /// The partner said it is paid.
    Paid,
    /// The partner said it failed.
    Failed,
    /// Anything else.
    Unknown,
}

/// Drives one payment to its end (or until the engine stops).
async fn drive(app: &AppState, id: u64) {
    let Some((payment, partner_id, endpoint, policy)) = look(app, id).await else { return };
    let mut client = Client { app: app.clone(), partner_id, endpoint, connection: None };
    let sent = payment.steps.iter().any(|(_, s)| *s == Step::Requested);
    let cancelling = payment.steps.iter().any(|(_, s)| *s == Step::CancelRequested);
    let every = Duration::from_secs(u64::from(policy.inquire_every_seconds));
    if !sent {
        if !record(app, id, Step::Requested).await {
            return;
        }
        match client.pay(&payment).await {
            Answer::Paid => {
                record(app, id, Step::Succeeded).await;
                return;
            }
            Answer::Failed => {
                record(app, id, Step::Refused).await;
                return;
            }
            Answer::Unknown => {
                if !record(app, id, Step::NoAnswer).await {
                    return;
                }
            }
        }
    }
    if !cancelling {
        // Inquire until the policy's time is up, counted from the first unknown outcome (or
        // from now, after a restart that finds none).
        let since = payment.steps.iter().find(|(_, s)| *s == Step::NoAnswer).map_or(app.engine.now(), |(at, _)| *at);
        let until = since.saturating_add(u64::from(policy.inquire_for_seconds) * 1_000_000_000);
        while app.engine.now() < until {
            tokio::time::sleep(every).await;
            let step = match client.inquire(&payment).await {
                Answer::Paid => Step::InquiredPaid,
                Answer::Failed => Step::InquiredFailed,
                Answer::Unknown => Step::InquiredUnknown,
            };
            if !record(app, id, step).await || step != Step::InquiredUnknown {
                return;
            }
        }
    }
    // Cancel until the partner confirms. A cancel it refuses may mean it paid after all: ask
    // again each time, and end the payment by what the partner knows. The pause doubles up to
    // [`CANCEL_PAUSE_MAX`], so a partner that never confirms costs two steps every 10 minutes.
    let mut pause = every;
    loop {
        if !record(app, id, Step::CancelRequested).await {
            return;
        }
        if client.cancel(&payment).await {
            record(app, id, Step::Canceled).await;
            return;
        }
        if !record(app, id, Step::CancelUnanswered).await {
            return;
        }
        tokio::time::sleep(pause).await;
        match client.inquire(&payment).await {
            Answer::Paid => {
                record(app, id, Step::InquiredPaid).await;
                return;
            }
            Answer::Failed => {
                record(app, id, Step::InquiredFailed).await;
                return;
            }
            Answer::Unknown => {}
        }
        pause = (pause * 2).min(CANCEL_PAUSE_MAX);
    }
}

/// The longest pause between two cancels of one payment.
const CANCEL_PAUSE_MAX: Duration = Duration::from_secs(600);

/// The payment (if still pending) and its partner's endpoint and policy.
async fn look(app: &AppState, id: u64) -> Option<(OverseasPayment, u64, String, kasa_core::partner::CallPolicy)> {
    app.engine
        .read(move |s| {
            let partners = s.partners();
            let p = partners.overseas_payment(id).filter(|p| p.status == OverseasStatus::Pending)?.clone();
            let partner = partners.partner(p.partner_id)?;
            let endpoint = partner.endpoint.as_ref()?.as_str().trim_end_matches('/').to_string();
            Some((p, partner.id, endpoint, partner.policy))
        })
        .await
        .ok()
        .flatten()
}

/// Records a step; false if the payment is no longer pending or the engine stopped.
async fn record(app: &AppState, id: u64, step: Step) -> bool {
    let command = kasa_core::Command::Partner(kasa_core::partner::outbound::step_command(id, step));
    loop {
        match app.engine.submit(command.clone()).await {
            Ok(kasa_core::Outcome::Partner(kasa_core::partner::Outcome::OverseasResolved(Ok(p)))) => {
                return p.status == OverseasStatus::Pending
            }
            Ok(_) => return false,
            Err(kasa_engine::SubmitError::Unavailable) => return false,
            // Busy or a full disk: the step must not be lost; try again shortly.
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}

/// Signed calls to one partner.
struct Client {
    app: AppState,
    partner_id: u64,
    endpoint: String,
    connection: Option<Connection>,
}

impl Client {
    /// POSTs a signed body about `request_id` to `{endpoint}{path}`; the answer's JSON, if it
    /// is the partner's signed answer to this call.
    async fn call(&mut self, path: &str, request_id: &str, body: serde_json::Value) -> Option<serde_json::Value> {
        let (target, full_path) = super::partner_notify::partner_target(&self.endpoint, path).ok()?;
        let request_path = target.path.clone();
        let connection =
            self.connection.get_or_insert_with(|| Connection::new(target, self.app.webhooks_allow_private));
        let body = serde_json::to_vec(&body).expect("a call serializes");
        let client_id = crate::ids::format("ptn", self.partner_id);
        let time = crate::json::Rfc3339(self.app.engine.now()).to_string();
        let message = sig::message("POST", &full_path, &client_id, &time, &body);
        let headers =
            [("client-id", client_id), ("request-time", time), ("signature", self.app.kasa_signer.header(1, &message))];
        let reply = connection.call(&request_path, body.into(), &headers, CALL_TIMEOUT).await;
        let call = Call { partner_id: self.partner_id, path: &full_path, payment_request_id: request_id };
        partner_answer::checked(&self.app, &call, reply).await.ok()
    }

    async fn pay(&mut self, p: &OverseasPayment) -> Answer {
        let request_id = p.request_id();
        let body = serde_json::json!({
            "paymentRequestId": request_id,
            "paymentAmount": {"currency": p.currency.code(), "value": p.amount.minor().to_string()},
            "codeValue": p.code.as_str(),
            "order": {"merchant": {"merchantName": p.merchant_name.as_str()}},
            "paymentQuote": {"quoteId": crate::ids::format("qt", p.quote_id)},
        });
        match self.call("/payments/pay", &request_id, body).await {
            Some(a) if a["result"]["resultStatus"] == "S" => Answer::Paid,
            Some(a) if a["result"]["resultStatus"] == "F" => Answer::Failed,
            _ => Answer::Unknown,
        }
    }

    async fn inquire(&mut self, p: &OverseasPayment) -> Answer {
        let request_id = p.request_id();
        let body = serde_json::json!({"paymentRequestId": request_id});
        match self.call("/payments/inquiryPayment", &request_id, body).await {
            Some(a) if a["result"]["resultStatus"] == "S" && a["paymentStatus"] == "SUCCESS" => Answer::Paid,
            Some(a) if a["result"]["resultStatus"] == "S" && a["paymentStatus"] == "FAIL" => Answer::Failed,
            _ => Answer::Unknown,
        }
    }

    /// Whether the partner confirmed the cancel.
    async fn cancel(&mut self, p: &OverseasPayment) -> bool {
        let request_id = p.request_id();
        let body = serde_json::json!({"paymentRequestId": request_id});
        matches!(self.call("/payments/cancelPayment", &request_id, body).await, Some(a) if a["result"]["resultStatus"] == "S")
    }
}
