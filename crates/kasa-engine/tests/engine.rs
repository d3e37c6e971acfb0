//! The threaded engine: a full queue answers `Busy`, reads see committed state, pending
//! transfers expire by engine time without any request, events reach subscribers and survive
//! a restart, shutdown drains the queue, and batches keep their byte budget.

use kasa_core::ledger::{self, Account, Transfer, TransferFlags};
use kasa_core::{Command, Outcome};
use kasa_engine::{Engine, EngineOptions, SubmitError};
use kasa_journal::FaultStorage;
use std::time::{Duration, Instant};

fn accounts() -> Command {
    Command::create_accounts(vec![
        Account { id: 1, ledger: 1, code: 1, ..Default::default() },
        Account { id: 2, ledger: 1, code: 1, ..Default::default() },
    ])
}

fn pending(id: u128) -> Command {
    Command::create_transfers(vec![Transfer {
        id,
        debit_account_id: 1,
        credit_account_id: 2,
        amount: 5,
        ledger: 1,
        code: 1,
        timeout: 1,
        flags: TransferFlags(TransferFlags::PENDING),
        ..Default::default()
    }])
}

/// Signs a user up (a verification, then the sign-up that proves it): two events.
async fn sign_up(engine: &Engine, phone: &str, verification: u8) {
    use kasa_core::wallet;
    let phone = wallet::Phone::parse(phone).unwrap();
    let id = [verification; 16];
    let verify = wallet::Command::StartVerification { id, phone: phone.clone(), code_hash: [9; 32] };
    engine.submit(Command::Wallet(verify)).await.unwrap();
    let sign_up = wallet::Command::SignUp {
        phone,
        name: wallet::Name::new("김민지").unwrap(),
        pin_hash: wallet::PinHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").unwrap(),
        proof: wallet::CodeProof { verification_id: id, code_hash: [9; 32] },
    };
    engine.submit(Command::Wallet(sign_up)).await.unwrap();
}

fn start(seed: u64, options: EngineOptions) -> Engine {
    let disk = FaultStorage::new(seed);
    Engine::start(disk.clone(), disk, options).unwrap().0
}

/// Parks the sequencer inside a read, so that requests queue up behind it, until the test
/// sends on the returned channel; the read's task, to await after.
fn park(
    engine: &std::sync::Arc<Engine>,
) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<(), SubmitError>>) {
    let (release, parked) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let engine = engine.clone();
    let blocker = tokio::spawn(async move {
        engine
            .read(move |_| {
                entered_tx.send(()).unwrap();
                parked.recv().unwrap();
            })
            .await
    });
    entered.recv().unwrap();
    (release, blocker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_and_nothing_is_lost() {
    let options = EngineOptions { queue_depth_max: 2, ..EngineOptions::default() };
    let engine = std::sync::Arc::new(start(1, options));
    let (release, blocker) = park(&engine);
    // Two requests fill the queue; the third is refused at once.
    let first = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.submit(accounts()).await })
    };
    let second = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.read(|s| s.ledger().accounts_count()).await })
    };
    while engine.metrics().queue_depth.load(std::sync::atomic::Ordering::Relaxed) < 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(engine.submit(accounts()).await, Err(SubmitError::Busy));
    assert_eq!(engine.metrics().rejected_busy_total.load(std::sync::atomic::Ordering::Relaxed), 1);
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    let Outcome::Ledger(ledger::Outcome::Accounts(created)) = first.await.unwrap().unwrap() else { panic!() };
    assert!(created.iter().all(|o| o.result.name() == "ok"));
    // The read queued after the command sees it.
    assert_eq!(second.await.unwrap().unwrap(), 2);
    engine.shutdown().unwrap();
    assert_eq!(engine.submit(accounts()).await, Err(SubmitError::Unavailable));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_transfer_expires_without_any_request() {
    let engine = start(2, EngineOptions::default());
    engine.submit(accounts()).await.unwrap();
    engine.submit(pending(10)).await.unwrap();
    let batches = || engine.metrics().batches_total.load(std::sync::atomic::Ordering::Relaxed);
    let batches_before = batches();
    // The timeout is one second of engine time. Watch the batch counter only, sending no
    // request: the expiry must come from the sequencer's own tick, as an empty batch.
    let deadline = Instant::now() + Duration::from_secs(10);
    while batches() == batches_before {
        assert!(Instant::now() < deadline, "the sequencer committed no expiry batch by itself");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = engine.read(|s| s.ledger().pending_status(10)).await.unwrap();
    assert_eq!(status.map(|s| s.name()), Some("expired"));
    let debits_pending = engine.read(|s| s.ledger().account(1).unwrap().debits_pending).await.unwrap();
    assert_eq!(debits_pending, 0);
    engine.shutdown().unwrap();
}

/// Regression (review): a panic on the sequencer thread left the engine reporting `Ready`
/// while it answered nothing, so the server never exited. It now turns `Failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_on_the_sequencer_marks_the_engine_failed() {
    let engine = start(3, EngineOptions::default());
    let mut health = engine.health_changes();
    let result = engine.read(|_| -> () { panic!("a bug in a query") }).await;
    assert_eq!(result, Err(SubmitError::Unavailable));
    health.wait_for(|h| *h == kasa_engine::Health::Failed).await.unwrap();
    assert_eq!(engine.health(), kasa_engine::Health::Failed);
    assert_eq!(engine.submit(accounts()).await, Err(SubmitError::Unavailable));
    assert!(engine.shutdown().is_err());
}

/// Regression (review): with the disk full and a pending transfer due to expire, the
/// sequencer retried the expiry batch in a tight loop, millions of times a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_does_not_make_the_expiry_tick_spin() {
    let disk = FaultStorage::new(4);
    let (engine, _) = Engine::start(disk.clone(), disk.clone(), EngineOptions::default()).unwrap();
    engine.submit(accounts()).await.unwrap();
    engine.submit(pending(10)).await.unwrap();
    disk.disk_full_after_bytes(0);
    let calls_before = disk.calls();
    // Past the expiry time, then one more second of retries at most.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let calls = disk.calls() - calls_before;
    assert!(calls <= 20, "{calls} storage calls while the disk was full");
    assert_eq!(engine.submit(accounts()).await, Err(SubmitError::StorageFull));
    let status = engine.read(|s| s.ledger().pending_status(10)).await.unwrap();
    assert_eq!(status.map(|s| s.name()), Some("pending"), "not expired while nothing could be written");
    disk.clear_disk_full();
    engine.shutdown().unwrap();
}

/// After `stop_accepting`, new work is refused; what was queued is still committed.
#[tokio::test]
async fn a_stopping_engine_refuses_new_work() {
    let engine = start(4, EngineOptions::default());
    engine.submit(accounts()).await.unwrap();
    engine.stop_accepting();
    assert_eq!(engine.health(), kasa_engine::Health::Stopping);
    assert!(matches!(engine.submit(accounts()).await, Err(SubmitError::Unavailable)));
    let engine = std::sync::Arc::new(engine);
    let stopping = engine.clone();
    tokio::task::spawn_blocking(move || stopping.shutdown()).await.unwrap().unwrap();
}

/// A test clock moves engine time forward and commits a batch at the new time; it refuses
/// to pass the year 2262, and an engine on the wall clock refuses to move at all.
#[tokio::test]
async fn a_test_clock_moves_forward_within_bounds() {
    use kasa_engine::ClockError;
    let wall = start(5, EngineOptions::default());
    assert_eq!(wall.advance_clock(Duration::from_secs(1)).await, Err(ClockError::NotATestClock));
    let engine = start(6, EngineOptions { test_clock: true, ..EngineOptions::default() });
    let before = engine.now();
    let after = engine.advance_clock(Duration::from_secs(3600)).await.unwrap();
    assert!(after >= before + 3600 * 1_000_000_000);
    let last = engine.read(|s| s.last_timestamp()).await.unwrap();
    assert!(last >= before + 3600 * 1_000_000_000, "a batch at the new time was committed");
    let far = Duration::from_secs(300 * 365 * 24 * 3600);
    assert_eq!(engine.advance_clock(far).await, Err(ClockError::TooFar));
    assert!(engine.now() < after + 60 * 1_000_000_000, "a refused move moves nothing");
}

/// The events of committed batches reach a subscriber without any further request, and are
/// still there, the same, after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_subscribers_and_survive_a_restart() {
    use kasa_core::money::Amount;
    use kasa_core::wallet::{self, Direction, Reason};
    let disk = FaultStorage::new(7);
    let options = EngineOptions { test_clock: true, ..EngineOptions::default() };
    let (engine, _) = Engine::start(disk.clone(), disk.clone(), options.clone()).unwrap();
    let mut subscription = engine.events().subscribe();
    sign_up(&engine, "010-1234-5678", 1).await;
    let adjust = wallet::Command::Adjust {
        user_id: 1,
        amount: Amount::new(1_000),
        direction: Direction::Credit,
        reason: Reason::new("welcome").unwrap(),
    };
    engine.submit(Command::Wallet(adjust)).await.unwrap();
    let emitted = engine.read(|s| s.outbox().last_seq()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), subscription.wait_for(|&last| last >= emitted))
        .await
        .expect("the events became visible without another request")
        .unwrap();
    let events = engine.events().read(0, 100).unwrap();
    assert_eq!(events.len() as u64, emitted);
    assert_eq!(emitted, 2, "a sign-up and an adjustment");
    engine.shutdown().unwrap();
    drop(engine);
    let restarted = disk.restart();
    let (engine, report) = Engine::start(restarted.clone(), restarted, options).unwrap();
    assert_eq!(report.events_derived, 0, "the log had them all");
    assert!(engine.events().read(0, 100).unwrap() == events);
    assert_eq!(engine.events().last_seq(), emitted);
    engine.shutdown().unwrap();
}

/// An interest wakes its consumer only for the events it wants, and tells it up to where
/// there is nothing for it: after an adjustment it does not want, `last_seq` has moved on
/// without a wake-up; after a sign-up it wants, it wakes with `last_match` at that event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interest_wakes_only_for_the_events_it_wants() {
    use kasa_core::event::EventKind;
    use kasa_core::money::Amount;
    use kasa_core::wallet::{self, Direction, Event, Reason};
    let disk = FaultStorage::new(8);
    let (engine, _) = Engine::start(disk.clone(), disk, EngineOptions::default()).unwrap();
    let mut all = engine.events().subscribe();
    let mut interest = engine.events().interest(|kind| matches!(kind, EventKind::Wallet(Event::UserSignedUp { .. })));
    assert_eq!(*interest.borrow_and_update(), kasa_engine::Matched { last_match: 0, last_seq: 0 });
    sign_up(&engine, "010-1234-5679", 2).await;
    tokio::time::timeout(Duration::from_secs(10), interest.changed()).await.expect("woken by the sign-up").unwrap();
    assert_eq!(*interest.borrow_and_update(), kasa_engine::Matched { last_match: 1, last_seq: 1 });
    let adjust = |amount| wallet::Command::Adjust {
        user_id: 1,
        amount: Amount::new(amount),
        direction: Direction::Credit,
        reason: Reason::new("welcome").unwrap(),
    };
    engine.submit(Command::Wallet(adjust(1_000))).await.unwrap();
    engine.submit(Command::Wallet(adjust(2_000))).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), all.wait_for(|&last| last >= 3))
        .await
        .expect("the adjustments were published")
        .unwrap();
    assert!(!interest.has_changed().unwrap(), "not woken by events it does not want");
    assert_eq!(*interest.borrow(), kasa_engine::Matched { last_match: 1, last_seq: 3 }, "nothing for it up to 3");
    // One registered now starts at the last event: what came before is read from a cursor.
    let late = engine.events().interest(|_| true);
    assert_eq!(*late.borrow(), kasa_engine::Matched { last_match: 3, last_seq: 3 });
    drop(interest);
    engine.submit(Command::Wallet(adjust(3_000))).await.unwrap();
    engine.shutdown().unwrap();
}

/// Regression (issue 7's audit: no test reached the batch byte budget, so removing its check
/// failed nothing): commands queued together are cut into batches at the payload byte budget,
/// counted by the commands' type bounds, and no frame passes the journal's frame limit. The
/// budget and the frame limit are made small (three ledger commands of ten accounts fit,
/// four do not, and four would not fit in a frame either: the journal refuses such a frame
/// as a programmer error and the engine stops), and nothing else cuts these batches (1,024
/// commands, 32,760 events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_cut_at_its_byte_budget_and_no_frame_passes_the_frame_limit() {
    use kasa_core::command::decode_commands;
    use kasa_journal::Journal;
    let ten = |first: u128| {
        Command::create_accounts(
            (first..first + 10).map(|id| Account { id, ledger: 1, code: 1, ..Default::default() }).collect(),
        )
    };
    let bound = ten(1).encoded_bytes_max();
    let mut options = EngineOptions { batch_payload_bytes_max: 3 * bound, ..EngineOptions::default() };
    options.writer.journal.frame_payload_bytes_max = (3 * bound + kasa_core::command::PAYLOAD_HEADER_BYTES_MAX) as u32;
    assert!(4 * (bound - 16) > options.writer.journal.frame_payload_bytes_max as usize, "four would not fit a frame");
    let disk = FaultStorage::new(9);
    let (engine, _) = Engine::start(disk.clone(), disk.clone(), options.clone()).unwrap();
    let engine = std::sync::Arc::new(engine);
    // The ten commands queue up behind a parked sequencer.
    let (release, blocker) = park(&engine);
    let submits: Vec<_> = (0..10u128)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.submit(ten(1 + 10 * i)).await })
        })
        .collect();
    while engine.metrics().queue_depth.load(std::sync::atomic::Ordering::Relaxed) < 10 {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    for submit in submits {
        let Outcome::Ledger(ledger::Outcome::Accounts(created)) = submit.await.unwrap().unwrap() else { panic!() };
        assert!(created.iter().all(|o| o.result.name() == "ok"));
    }
    assert_eq!(engine.read(|s| s.ledger().accounts_count()).await.unwrap(), 100);
    engine.shutdown().unwrap();
    drop(engine);

    let (mut journal, _) = Journal::open(disk.restart(), options.writer.journal).unwrap();
    let mut frames = Vec::new();
    journal
        .replay(0, |frame| {
            frames.push((decode_commands(&frame.payload).unwrap().len(), frame.payload.len()));
            Ok::<(), kasa_journal::JournalError>(())
        })
        .unwrap();
    let commands: Vec<usize> = frames.iter().map(|f| f.0).collect();
    assert_eq!(commands, [3, 3, 3, 1], "commands per frame");
    for (_, bytes) in frames {
        assert!(bytes <= options.batch_payload_bytes_max + kasa_core::command::PAYLOAD_HEADER_BYTES_MAX, "{bytes}");
    }
}

/// A byte budget that, with the payload's header, would not fit the journal's frame limit is
/// refused at start: a batch the budget lets through must never be one the journal refuses.
#[test]
#[should_panic(expected = "batch_payload_bytes_max over the journal's frame limit")]
fn a_byte_budget_over_the_frame_limit_is_refused_at_start() {
    let defaults = EngineOptions::default();
    let options =
        EngineOptions { batch_payload_bytes_max: defaults.writer.journal.frame_payload_bytes_max as usize, ..defaults };
    let _ = start(10, options);
}
