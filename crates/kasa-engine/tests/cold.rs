//! The writer with an embedded store of cold transfers and balances (redb, in a temporary
//! directory): old chunks leave memory, and the state, its hash, its snapshot and its recovery (from the
//! journal and from a snapshot, with the store kept, lost or unreadable) are those of a writer
//! that keeps everything in memory.

use kasa_core::ledger::{Account, AccountFlags, ColdKind, Transfer, TransferFlags, TRANSFERS_PER_CHUNK};
use kasa_core::{Command, State};
use kasa_engine::{ColdOptions, Writer, WriterOptions};
use kasa_journal::FaultStorage;
use std::path::Path;
use std::time::{Duration, Instant};

const SECOND: u64 = 1_000_000_000;
const START: u64 = 1_800_000_000 * SECOND;

fn options(cold: Option<&Path>) -> WriterOptions {
    WriterOptions {
        snapshot_interval_bytes: 0,
        cold: cold.map(|dir| ColdOptions {
            path: dir.join("cold.redb"),
            hot_transfers: TRANSFERS_PER_CHUNK,
            cache_bytes: 1 << 20,
        }),
        ..WriterOptions::default()
    }
}

/// Transfer `id` of the workload: between two of 16 accounts, every 101st pending.
fn workload_transfer(id: u128) -> Transfer {
    Transfer {
        id,
        debit_account_id: id % 16 + 1,
        credit_account_id: (id + 5) % 16 + 1,
        amount: 1 + id % 7,
        ledger: 1,
        code: 1,
        flags: TransferFlags(if id.is_multiple_of(101) { TransferFlags::PENDING } else { 0 }),
        ..Transfer::default()
    }
}

fn workload() -> Vec<Vec<Command>> {
    // Half the accounts keep their balance history: about a balance a transfer, whose log goes
    // cold as the transfers do.
    let accounts = (1..=16u128)
        .map(|id| Account {
            id,
            ledger: 1,
            code: 1,
            flags: AccountFlags(if id <= 8 { AccountFlags::HISTORY } else { 0 }),
            ..Account::default()
        })
        .collect();
    let mut batches = vec![vec![Command::create_accounts(accounts)]];
    let total = 4 * TRANSFERS_PER_CHUNK as u128;
    let mut id = 1;
    while id <= total {
        let batch = (id..(id + 8_000).min(total + 1)).map(workload_transfer).collect::<Vec<_>>();
        id += batch.len() as u128;
        batches.push(vec![Command::create_transfers(batch)]);
    }
    // A re-send of the oldest transfers and a post of an old pending one, once they are cold.
    let resend = (1..=100u128)
        .map(workload_transfer)
        .chain([Transfer {
            id: total + 1,
            pending_id: 101,
            amount: 1 + 101 % 7,
            ledger: 1,
            code: 1,
            flags: TransferFlags(TransferFlags::POST_PENDING_TRANSFER),
            ..Transfer::default()
        }])
        .collect();
    batches.push(vec![Command::create_transfers(resend)]);
    batches
}

/// Commits empty batches until the spill thread has made `chunks` chunks of transfers and of
/// balances cold.
fn wait_cold(writer: &mut Writer<FaultStorage>, now: &mut u64, chunks: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let cold = |w: &Writer<FaultStorage>| ColdKind::ALL.map(|kind| w.state().cold_chunks(0, kind).1);
    while cold(writer).iter().any(|&c| c < chunks) {
        assert!(Instant::now() < deadline, "chunks did not go cold: {:?}", cold(writer));
        std::thread::sleep(Duration::from_millis(5));
        *now += SECOND;
        writer.commit(vec![], *now).unwrap();
    }
}

#[test]
fn cold_chunks_leave_memory_and_change_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let batches = workload();
    let last = batches.len() - 1;

    // Everything in memory.
    let hot_disk = FaultStorage::new(0);
    let (mut hot, _) = Writer::recover(hot_disk.clone(), hot_disk.clone(), options(None)).unwrap();
    let mut now = START;
    let mut hot_outcomes = Vec::new();
    for commands in &batches {
        now += SECOND;
        hot_outcomes.push(hot.commit(commands.clone(), now).unwrap());
    }

    // With the store: the last batch runs once the oldest chunks are cold.
    let disk = FaultStorage::new(0);
    let (mut writer, _) = Writer::recover(disk.clone(), disk.clone(), options(Some(dir.path()))).unwrap();
    let mut now = START;
    let mut outcomes = Vec::new();
    for commands in &batches[..last] {
        now += SECOND;
        outcomes.push(writer.commit(commands.clone(), now).unwrap());
    }
    wait_cold(&mut writer, &mut now, 2);
    now += SECOND;
    // The empty batches moved time on, so compare the last outcome by its results.
    outcomes.push(writer.commit(batches[last].clone(), now).unwrap());
    assert_eq!(outcomes[..last], hot_outcomes[..last]);
    let results = |o: &kasa_core::Outcome| match o {
        kasa_core::Outcome::Ledger(kasa_core::ledger::Outcome::Transfers(items)) => {
            items.iter().map(|i| i.result).collect::<Vec<_>>()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(results(&outcomes[last][0]), results(&hot_outcomes[last][0]));
    assert!(writer.cold_stats().reads.load(std::sync::atomic::Ordering::Relaxed) > 0, "the store was read");
    let lookup = |s: &State, id| s.ledger().transfer(id).map(|t| (t.amount, t.debit_account_id));
    for id in [1, 101, 16_384, 30_000] {
        assert_eq!(lookup(writer.state(), id), lookup(hot.state(), id));
    }
    // Balance histories read through the store, whole and by time (those of the last batch,
    // committed later by the writer with the store, only counted).
    let middle = hot.state().ledger().transfer(20_000).unwrap().timestamp;
    let last_batch = START + (last as u64 + 1) * SECOND;
    for account in 1..=8u128 {
        let balances = |s: &State| s.ledger().account_balances(account).to_vec();
        let before_last = |s: &State| balances(s).into_iter().filter(|b| b.timestamp < last_batch).collect::<Vec<_>>();
        assert!(balances(hot.state()).len() > 5_000);
        assert_eq!(balances(writer.state()).len(), balances(hot.state()).len());
        assert!(before_last(writer.state()) == before_last(hot.state()), "account {account}'s balances differ");
        let before = |s: &State| s.ledger().account_balances(account).partition_point(|b| b.timestamp <= middle);
        assert_eq!(before(writer.state()), before(hot.state()));
    }
    let hash = writer.state().hash();
    writer.state().check_invariants().unwrap();

    // Recovery by replay, with the store kept: the same state, cold again.
    drop(writer);
    let (mut writer, report) = Writer::recover(disk.clone(), disk.clone(), options(Some(dir.path()))).unwrap();
    assert_eq!(report.state_hash, hash);
    wait_cold(&mut writer, &mut now, 2);
    let hash = writer.state().hash();

    // A snapshot written with cold chunks, and recovery from it with the store lost.
    writer.snapshot().unwrap().expect("a snapshot");
    drop(writer);
    std::fs::remove_file(dir.path().join("cold.redb")).unwrap();
    let (mut writer, report) = Writer::recover(disk.clone(), disk.clone(), options(Some(dir.path()))).unwrap();
    assert!(report.snapshot_seq.is_some());
    assert_eq!(report.state_hash, hash);
    // The decoder put the chunks beyond the hot window in the store as it read them.
    for kind in ColdKind::ALL {
        let (chunks, cold) = writer.state().cold_chunks(0, kind);
        assert_eq!(cold + 1, chunks, "all but the hot chunk of {kind:?} went cold while decoding");
    }
    wait_cold(&mut writer, &mut now, 2);
    let hash = writer.state().hash();
    drop(writer);

    // A store a failed read marked as suspect is set aside at the next start, not trusted.
    std::fs::write(dir.path().join("cold.suspect"), b"a read failed\n").unwrap();
    let (mut writer, report) = Writer::recover(disk.clone(), disk.clone(), options(Some(dir.path()))).unwrap();
    assert_eq!(report.state_hash, hash);
    assert!(dir.path().join("cold.unreadable").exists(), "the suspect store was set aside");
    assert!(!dir.path().join("cold.suspect").exists());
    std::fs::remove_file(dir.path().join("cold.unreadable")).unwrap();
    wait_cold(&mut writer, &mut now, 2);
    let hash = writer.state().hash();
    drop(writer);

    // A store that is not a store is set aside, and recovery goes on.
    std::fs::write(dir.path().join("cold.redb"), b"not a database").unwrap();
    let (writer, report) = Writer::recover(disk.clone(), disk, options(Some(dir.path()))).unwrap();
    assert_eq!(report.state_hash, hash);
    assert!(dir.path().join("cold.unreadable").exists());
    drop(writer);
}
