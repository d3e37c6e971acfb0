//! The bank rail: the outbox consumer that asks banks to move the money of top-ups and
//! withdrawals, and turns their answers into `SettleFunding` commands.
//!
//! For each `funding.started` event (and, at start, for every funding the state still has
//! pending: the safety net that makes a lost event log harmless) it drives the funding:
//! - a funding started by this process is **requested** from the bank by its reference
//!   (`kasa-f-<id>`; requests are idempotent by reference), and settled by the answer;
//! - a funding left pending by an earlier process (a crash, a stop) is **inquired** first:
//!   the bank may have decided already; if it never took the request and the funding's
//!   time is not up, it is requested now;
//! - if no answer comes within [`BANK_ANSWER_TIMEOUT_SECONDS`] of engine time after the
//!   funding started, the bank is inquired once more, and the funding expires only if the
//!   bank says it never took it, or does not answer.
//!
//! So a crash at any instant neither loses an approved top-up nor returns a paid-out
//! withdrawal. The consumer's cursor (in the core) moves past an event once its funding is
//! settled; after a restart every event after the cursor is looked at again.

use crate::bank::{BankDecision, BankRequest, Inquiry};
use crate::AppState;
use kasa_core::event::EventKind;
use kasa_core::outbox::ConsumerName;
use kasa_core::time::NANOS_PER_SECOND;
use kasa_core::wallet::funding::BANK_ANSWER_TIMEOUT_SECONDS;
use kasa_core::wallet::{BankResult, Command, Event, FundingKind, FundingStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The consumer's name, under which the core keeps its cursor.
pub const CONSUMER: &str = "bank_rail";
/// How often engine time is looked at while waiting for a bank (a test clock can jump).
const TIME_POLL: Duration = Duration::from_millis(50);
/// How long an inquiry may take before it counts as no answer.
const INQUIRY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the cursor is committed, at most.
const CURSOR_COMMIT_EVERY: Duration = Duration::from_millis(200);
/// Events read at a time.
const EVENTS_PER_READ: usize = 1_000;
/// How long a settlement waits for a busy engine between tries.
const SETTLE_RETRY: Duration = Duration::from_millis(50);

/// Fundings being driven, with the event seqs that wait for each.
#[derive(Default)]
struct Drives {
    running: BTreeMap<u64, Vec<u64>>,
}

/// Starts the consumer on the current runtime.
pub fn spawn(app: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(app))
}

async fn run(app: AppState) {
    let consumer = ConsumerName::new(CONSUMER).expect("a valid consumer name");
    let Ok((cursor, pending)) = app
        .engine
        .read(|s| {
            let pending: Vec<u64> = s.wallets().pending_fundings().map(|f| f.id).collect();
            (s.outbox().cursor(CONSUMER), pending)
        })
        .await
    else {
        return;
    };
    // Events up to here were derived again from the journal on recovery: their fundings may
    // have been requested by an earlier process.
    let recovered_up_to = app.engine.events().last_seq();
    let drives = Arc::new(Mutex::new(Drives::default()));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<u64>>();
    for funding_id in pending {
        start_drive(&app, &drives, funding_id, None, true, &done_tx);
    }
    // Woken only by `funding.started` events; told up to where there is nothing for the rail,
    // so that it passes remittances and the like without reading them.
    let mut interest = app.engine.events().interest(is_funding_started);
    let mut read_up_to = cursor;
    let mut committed = cursor;
    // The `funding.started` events whose funding is still being driven: the cursor may pass
    // every event before the first of them (all others need nothing of the rail).
    let mut open: BTreeSet<u64> = BTreeSet::new();
    let mut last_commit = tokio::time::Instant::now();
    loop {
        let matched = *interest.borrow_and_update();
        let mut caught_up = true;
        while read_up_to < matched.last_match {
            let events = match app.engine.events().read(read_up_to, EVENTS_PER_READ) {
                Ok(events) => events,
                Err(error) => {
                    // The log is derived again from the journal at the next start; until then
                    // the rail waits (fundings already started still finish by expiry).
                    tracing::error!(%error, "bank rail: the event log could not be read");
                    caught_up = false;
                    break;
                }
            };
            let Some(last) = events.last().map(|e| e.seq) else { break };
            let started: Vec<(u64, u64)> = events
                .iter()
                .filter_map(|event| match &event.kind {
                    EventKind::Wallet(Event::FundingStarted { funding_id, .. }) => Some((event.seq, *funding_id)),
                    _ => None,
                })
                .collect();
            // One look at the state for the page, not one per funding: after a restart (or
            // behind a burst) most of them are settled already and need nothing.
            let pending = loop {
                match still_pending(&app, &started).await {
                    Ok(pending) => break pending,
                    Err(kasa_engine::SubmitError::Unavailable) => return,
                    // A full queue: look again shortly.
                    Err(_) => tokio::time::sleep(SETTLE_RETRY).await,
                }
            };
            for ((seq, funding_id), pending) in started.into_iter().zip(pending) {
                if pending {
                    open.insert(seq);
                    start_drive(&app, &drives, funding_id, Some(seq), seq <= recovered_up_to, &done_tx);
                }
            }
            read_up_to = last;
            // The rail shares the HTTP runtime: a long catch-up must not hold it.
            tokio::task::yield_now().await;
        }
        if caught_up && read_up_to >= matched.last_match {
            read_up_to = read_up_to.max(matched.last_seq);
        }
        while let Ok(seqs) = done_rx.try_recv() {
            for seq in seqs {
                open.remove(&seq);
            }
        }
        let next = open.first().map_or(read_up_to, |first| first - 1).max(committed);
        if next > committed && last_commit.elapsed() >= CURSOR_COMMIT_EVERY {
            let command = kasa_core::outbox::Command::AdvanceCursor { consumer: consumer.clone(), to: next };
            match app.engine.submit(kasa_core::Command::Outbox(command)).await {
                Ok(_) => {
                    committed = next;
                    last_commit = tokio::time::Instant::now();
                }
                Err(kasa_engine::SubmitError::Unavailable) => return,
                // Busy or a full disk: the cursor is only an optimisation; try later.
                Err(_) => {}
            }
        }
        tokio::select! {
            changed = interest.changed() => if changed.is_err() { return },
            Some(seqs) = done_rx.recv() => for seq in seqs { open.remove(&seq); },
            () = tokio::time::sleep(CURSOR_COMMIT_EVERY) => {}
        }
    }
}

/// Which of the `(seq, funding id)` pairs name fundings that are still pending.
async fn still_pending(app: &AppState, started: &[(u64, u64)]) -> Result<Vec<bool>, kasa_engine::SubmitError> {
    if started.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<u64> = started.iter().map(|&(_, id)| id).collect();
    app.engine
        .read(move |s| {
            let w = s.wallets();
            ids.iter().map(|&id| w.funding(id).is_some_and(|f| f.status == FundingStatus::Pending)).collect()
        })
        .await
}

fn is_funding_started(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Wallet(Event::FundingStarted { .. }))
}

/// Drives a funding unless a drive for it runs already (then `seq` waits for that one).
fn start_drive(
    app: &AppState,
    drives: &Arc<Mutex<Drives>>,
    funding_id: u64,
    seq: Option<u64>,
    restarted: bool,
    done: &mpsc::UnboundedSender<Vec<u64>>,
) {
    {
        let mut d = drives.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiting) = d.running.get_mut(&funding_id) {
            waiting.extend(seq);
            return;
        }
        d.running.insert(funding_id, seq.into_iter().collect());
    }
    let (app, drives, done) = (app.clone(), drives.clone(), done.clone());
    tokio::spawn(async move {
        let finished = drive(&app, funding_id, restarted).await;
        let seqs = drives.lock().unwrap_or_else(|p| p.into_inner()).running.remove(&funding_id).unwrap_or_default();
        // A drive that stopped (the engine stopping) leaves its events for the next start.
        if finished {
            let _ = done.send(seqs);
        }
    });
}

/// What the bank rail needs of a funding.
struct Pending {
    top_up: bool,
    amount: u64,
    bank_code: kasa_core::wallet::BankCode,
    sealed: kasa_core::wallet::SealedAccountNumber,
    deadline: u64,
}

/// Drives one funding to its settlement; false if it had to stop (the engine is stopping).
async fn drive(app: &AppState, funding_id: u64, restarted: bool) -> bool {
    let read = app
        .engine
        .read(move |s| {
            let w = s.wallets();
            let f = w.funding(funding_id)?;
            if f.status != FundingStatus::Pending {
                return None;
            }
            let bank = w.bank_account(f.bank_account_id)?;
            Some(Pending {
                top_up: f.kind == FundingKind::TopUp,
                amount: f.amount.minor(),
                bank_code: bank.bank_code.clone(),
                sealed: bank.account_number.clone(),
                deadline: f.created_at.saturating_add(BANK_ANSWER_TIMEOUT_SECONDS * NANOS_PER_SECOND),
            })
        })
        .await;
    let funding = match read {
        Ok(Some(funding)) => funding,
        Ok(None) => return true,
        Err(_) => return false,
    };
    let reference = format!("kasa-f-{funding_id}");
    if restarted {
        match inquire(app, &reference).await {
            Some(Inquiry::Decided(decision)) => return settle(app, funding_id, result_of(decision)).await,
            Some(Inquiry::NotFound) if app.engine.now() >= funding.deadline => {
                return settle(app, funding_id, BankResult::Expired).await
            }
            // Never taken, and there is still time; or no answer: ask (idempotent).
            _ => {}
        }
    }
    let account_number = match app.keys.open(&funding.bank_code, &funding.sealed) {
        Ok(number) => number,
        Err(error) => {
            // Another data key than the one that sealed it: nothing can be paid; an operator
            // must restore the key. The funding stays pending, visible, until then.
            tracing::error!(funding_id, %error, "a bank account number does not open; the funding stays pending");
            return false;
        }
    };
    let request = BankRequest {
        reference: reference.clone(),
        top_up: funding.top_up,
        amount: funding.amount,
        bank_code: funding.bank_code.as_str().to_string(),
        account_number,
    };
    let answer = tokio::select! {
        answer = app.bank.request(request) => answer,
        () = until(app, funding.deadline) => None,
    };
    let result = match answer {
        Some(decision) => result_of(decision),
        None => {
            // No answer in time (or at all): ask whether the bank took it. Only "never took
            // it" or silence expires the funding.
            until(app, funding.deadline).await;
            match inquire(app, &reference).await {
                Some(Inquiry::Decided(decision)) => result_of(decision),
                Some(Inquiry::NotFound) | None => BankResult::Expired,
            }
        }
    };
    settle(app, funding_id, result).await
}

fn result_of(decision: BankDecision) -> BankResult {
    match decision {
        BankDecision::Approved => BankResult::Approved,
        BankDecision::Declined => BankResult::Declined,
    }
}

async fn inquire(app: &AppState, reference: &str) -> Option<Inquiry> {
    tokio::time::timeout(INQUIRY_TIMEOUT, app.bank.inquire(reference)).await.ok().flatten()
}

/// Waits until engine time reaches `deadline` (a test clock may jump there at once).
async fn until(app: &AppState, deadline: u64) {
    loop {
        let now = app.engine.now();
        if now >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_nanos(deadline - now).min(TIME_POLL)).await;
    }
}

/// Records the bank's answer; false if the engine stopped first (the next start re-drives).
async fn settle(app: &AppState, funding_id: u64, result: BankResult) -> bool {
    let command = kasa_core::Command::Wallet(Command::SettleFunding { funding_id, result });
    loop {
        match app.engine.submit(command.clone()).await {
            Ok(_) => return true,
            Err(kasa_engine::SubmitError::Unavailable) => return false,
            // Busy or a full disk: the answer must not be lost; try again shortly.
            Err(_) => tokio::time::sleep(SETTLE_RETRY).await,
        }
    }
}
