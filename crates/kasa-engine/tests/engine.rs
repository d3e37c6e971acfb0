//! The threaded engine: a full queue answers `Busy`, reads see committed state, pending
//! transfers expire by engine time without any request, and shutdown drains the queue.

use kasa_core::{Account, Command, Outcome, Transfer, TransferFlags};
use kasa_engine::{Engine, EngineOptions, SubmitError};
use kasa_journal::FaultStorage;
use std::time::{Duration, Instant};

fn accounts() -> Command {
    Command::CreateAccounts(vec![
        Account { id: 1, ledger: 1, code: 1, ..Default::default() },
        Account { id: 2, ledger: 1, code: 1, ..Default::default() },
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy_and_nothing_is_lost() {
    let options = EngineOptions { queue_depth_max: 2, ..EngineOptions::default() };
    let (engine, _) = Engine::start(FaultStorage::new(1), options).unwrap();
    let engine = std::sync::Arc::new(engine);
    // Park the sequencer inside a read until the test lets it go.
    let (release, parked) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    let blocker = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .read(move |_| {
                    entered_tx.send(()).unwrap();
                    parked.recv().unwrap();
                })
                .await
        })
    };
    entered.recv().unwrap();
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
    let Outcome::CreateAccounts(created) = first.await.unwrap().unwrap() else { panic!() };
    assert!(created.iter().all(|o| o.result.name() == "ok"));
    // The read queued after the command sees it.
    assert_eq!(second.await.unwrap().unwrap(), 2);
    engine.shutdown().unwrap();
    assert_eq!(engine.submit(accounts()).await, Err(SubmitError::Unavailable));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_transfer_expires_without_any_request() {
    let (engine, _) = Engine::start(FaultStorage::new(2), EngineOptions::default()).unwrap();
    engine.submit(accounts()).await.unwrap();
    let pending = Transfer {
        id: 10,
        debit_account_id: 1,
        credit_account_id: 2,
        amount: 5,
        ledger: 1,
        code: 1,
        timeout: 1,
        flags: TransferFlags(TransferFlags::PENDING),
        ..Default::default()
    };
    engine.submit(Command::CreateTransfers(vec![pending])).await.unwrap();
    let batches_before = engine.metrics().batches_total.load(std::sync::atomic::Ordering::Relaxed);
    // The timeout is one second of engine time: wait (bounded) for the sequencer's own tick.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = engine.read(|s| s.ledger().pending_status(10)).await.unwrap();
        if status.map(|s| s.name()) == Some("expired") {
            break;
        }
        assert!(Instant::now() < deadline, "the pending transfer did not expire");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let debits_pending = engine.read(|s| s.ledger().account(1).unwrap().debits_pending).await.unwrap();
    assert_eq!(debits_pending, 0);
    // The expiry was a journaled (empty) batch of its own.
    assert!(engine.metrics().batches_total.load(std::sync::atomic::Ordering::Relaxed) > batches_before);
    engine.shutdown().unwrap();
}
