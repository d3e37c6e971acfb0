//! The bank rail: the outbox consumer that asks banks to move the money of top-ups,
//! withdrawals, merchants' payouts and partners' settlements, and turns their answers into
//! `SettleFunding`, `SettlePayout` and `SettleWindow` commands.
//!
//! For each `funding.started`, `payout.created` and `settlement_window.closed` event (and, at
//! start, for every funding, payout and settlement the state still has pending: the safety
//! net that makes a lost event log harmless) it drives the job:
//! - a job started by this process is **requested** from the bank by its reference
//!   (`kasa-f-<id>` for a funding, `kasa-p-<id>` for a payout, `kasa-s-<id>` for a window's
//!   settlement; requests are idempotent by reference), and settled by the answer;
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
use kasa_core::merchant::{Event as MerchantEvent, PayoutStatus};
use kasa_core::outbox::ConsumerName;
use kasa_core::partner::{Event as PartnerEvent, WindowStatus};
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

/// What the rail drives to the bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    /// A top-up or a withdrawal.
    Funding(u64),
    /// A merchant's payout.
    Payout(u64),
    /// A partner's settlement of a closed window.
    Settlement(u64),
}

/// Jobs being driven, with the event seqs that wait for each.
#[derive(Default)]
struct Drives {
    running: BTreeMap<Job, Vec<u64>>,
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
            let mut pending: Vec<Job> = s.wallets().pending_fundings().map(|f| Job::Funding(f.id)).collect();
            pending.extend(s.merchants().pending_payouts().map(|p| Job::Payout(p.id)));
            pending.extend(s.partners().pending_settlements().map(|w| Job::Settlement(w.id)));
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
    for job in pending {
        start_drive(&app, &drives, job, None, true, &done_tx);
    }
    // Woken only by the events of jobs; told up to where there is nothing for the rail, so
    // that it passes remittances and the like without reading them.
    let mut interest = app.engine.events().interest(is_job_started);
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
            let started: Vec<(u64, Job)> =
                events.iter().filter_map(|event| job_of(&event.kind).map(|job| (event.seq, job))).collect();
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
            for ((seq, job), pending) in started.into_iter().zip(pending) {
                if pending {
                    open.insert(seq);
                    start_drive(&app, &drives, job, Some(seq), seq <= recovered_up_to, &done_tx);
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

/// Which of the `(seq, job)` pairs name jobs that are still pending.
async fn still_pending(app: &AppState, started: &[(u64, Job)]) -> Result<Vec<bool>, kasa_engine::SubmitError> {
    if started.is_empty() {
        return Ok(Vec::new());
    }
    let jobs: Vec<Job> = started.iter().map(|&(_, job)| job).collect();
    app.engine
        .read(move |s| {
            let (w, m) = (s.wallets(), s.merchants());
            jobs.iter()
                .map(|job| match *job {
                    Job::Funding(id) => w.funding(id).is_some_and(|f| f.status == FundingStatus::Pending),
                    Job::Payout(id) => m.payout(id).is_some_and(|p| p.status == PayoutStatus::Pending),
                    Job::Settlement(id) => s.partners().window(id).is_some_and(|w| w.status == WindowStatus::Closed),
                })
                .collect()
        })
        .await
}

/// The job an event starts, if it starts one.
fn job_of(kind: &EventKind) -> Option<Job> {
    match kind {
        EventKind::Wallet(Event::FundingStarted { funding_id, .. }) => Some(Job::Funding(*funding_id)),
        EventKind::Merchant(MerchantEvent::PayoutStarted { payout_id, .. }) => Some(Job::Payout(*payout_id)),
        EventKind::Partner(PartnerEvent::WindowClosed { window_id, .. }) => Some(Job::Settlement(*window_id)),
        _ => None,
    }
}

fn is_job_started(kind: &EventKind) -> bool {
    job_of(kind).is_some()
}

/// Drives a job unless a drive for it runs already (then `seq` waits for that one).
fn start_drive(
    app: &AppState,
    drives: &Arc<Mutex<Drives>>,
    job: Job,
    seq: Option<u64>,
    restarted: bool,
    done: &mpsc::UnboundedSender<Vec<u64>>,
) {
    {
        let mut d = drives.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiting) = d.running.get_mut(&job) {
            waiting.extend(seq);
            return;
        }
        d.running.insert(job, seq.into_iter().collect());
    }
    let (app, drives, done) = (app.clone(), drives.clone(), done.clone());
    tokio::spawn(async move {
        let finished = drive(&app, job, restarted).await;
        let seqs = drives.lock().unwrap_or_else(|p| p.into_inner()).running.remove(&job).unwrap_or_default();
        // A drive that stopped (the engine stopping) leaves its events for the next start.
        if finished {
            let _ = done.send(seqs);
        }
    });
}

/// What the bank rail needs of a job.
struct Pending {
    top_up: bool,
    amount: u64,
    currency: kasa_core::money::Currency,
    bank_code: kasa_core::wallet::BankCode,
    sealed: kasa_core::wallet::SealedAccountNumber,
    deadline: u64,
}

/// What the rail needs of a pending job, from the state (`None`: settled already).
fn pending_job(s: &kasa_core::State, job: Job) -> Option<Pending> {
    let deadline = |created_at: u64| created_at.saturating_add(BANK_ANSWER_TIMEOUT_SECONDS * NANOS_PER_SECOND);
    match job {
        Job::Funding(id) => {
            let w = s.wallets();
            let f = w.funding(id).filter(|f| f.status == FundingStatus::Pending)?;
            let bank = w.bank_account(f.bank_account_id)?;
            Some(Pending {
                top_up: f.kind == FundingKind::TopUp,
                amount: f.amount.minor(),
                currency: kasa_core::wallet::WALLET_CURRENCY,
                bank_code: bank.bank_code.clone(),
                sealed: bank.account_number.clone(),
                deadline: deadline(f.created_at),
            })
        }
        Job::Payout(id) => {
            let m = s.merchants();
            let p = m.payout(id).filter(|p| p.status == PayoutStatus::Pending)?;
            // The payout run makes no payout for a merchant without a settlement account.
            let account = m.merchant(p.merchant_id)?.settlement.as_ref()?;
            Some(Pending {
                top_up: false,
                amount: p.amount.minor(),
                currency: kasa_core::wallet::WALLET_CURRENCY,
                bank_code: account.bank_code.clone(),
                sealed: account.account_number.clone(),
                deadline: deadline(p.created_at),
            })
        }
        Job::Settlement(id) => {
            let partners = s.partners();
            let w = partners.window(id).filter(|w| w.status == WindowStatus::Closed)?;
            let account = &partners.partner(w.partner_id)?.settlement;
            let net = w.net();
            Some(Pending {
                // The partner pays Kasa (the bank draws it) when it owes the net.
                top_up: net > 0,
                amount: u64::try_from(net.unsigned_abs()).ok()?,
                currency: w.currency,
                bank_code: account.bank_code.clone(),
                sealed: account.account_number.clone(),
                deadline: deadline(w.closed_at),
            })
        }
    }
}

/// Drives one job to its settlement; false if it had to stop (the engine is stopping).
async fn drive(app: &AppState, job: Job, restarted: bool) -> bool {
    let funding = match app.engine.read(move |s| pending_job(s, job)).await {
        Ok(Some(funding)) => funding,
        Ok(None) => return true,
        Err(_) => return false,
    };
    let reference = match job {
        Job::Funding(id) => format!("kasa-f-{id}"),
        Job::Payout(id) => format!("kasa-p-{id}"),
        Job::Settlement(id) => format!("kasa-s-{id}"),
    };
    if restarted {
        match inquire(app, &reference).await {
            Some(Inquiry::Decided(decision)) => return settle(app, job, result_of(decision)).await,
            Some(Inquiry::NotFound) if app.engine.now() >= funding.deadline => {
                return settle(app, job, BankResult::Expired).await
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
            tracing::error!(?job, %error, "a bank account number does not open; the job stays pending");
            return false;
        }
    };
    let request = BankRequest {
        reference: reference.clone(),
        top_up: funding.top_up,
        amount: funding.amount,
        currency: funding.currency,
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
    settle(app, job, result).await
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
async fn settle(app: &AppState, job: Job, result: BankResult) -> bool {
    let command = match job {
        Job::Funding(funding_id) => kasa_core::Command::Wallet(Command::SettleFunding { funding_id, result }),
        Job::Payout(payout_id) => {
            kasa_core::Command::Merchant(kasa_core::merchant::Command::SettlePayout { payout_id, result })
        }
        Job::Settlement(window_id) => kasa_core::Command::Partner(kasa_core::partner::Command::SettleWindow {
            window_id,
            succeeded: result == BankResult::Approved,
        }),
    };
    loop {
        match app.engine.submit(command.clone()).await {
            Ok(_) => return true,
            Err(kasa_engine::SubmitError::Unavailable) => return false,
            // Busy or a full disk: the answer must not be lost; try again shortly.
            Err(_) => tokio::time::sleep(SETTLE_RETRY).await,
        }
    }
}
