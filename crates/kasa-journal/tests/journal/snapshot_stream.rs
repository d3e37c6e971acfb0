//! Snapshots written as streams: begun on the writer thread, filled in pieces (on any thread),
//! finished atomically, pruned back on the writer thread. A crash anywhere leaves the old or
//! the new snapshot; a failed write leaves the journal usable; a failed sync poisons it.

use std::io::Write;

use kasa_journal::{snapshot_name, AppendError, FileStorage, Journal, JournalError, Options, Storage};

use crate::common::*;

/// A state big enough to take many pieces, different for every seq.
fn state(seq: u64) -> Vec<u8> {
    (0..2_000 + seq * 7).map(|i| (i * 13 + seq * 101) as u8).collect()
}

/// Bytes per `write` call in the tests that write in pieces.
const PIECE_BYTES: usize = 37;

#[test]
fn snapshot_streamed_in_many_small_writes_round_trips() {
    let mut journal = journal_with(80, 20, small_options());
    let mut oracle = journal.storage_mut().fork();
    let mut writer = journal.begin_snapshot(20, 2_020).unwrap();
    assert!(journal.snapshot_in_progress());
    let calls_before = journal.storage_mut().calls();
    for (i, piece) in state(20).chunks(PIECE_BYTES).enumerate() {
        writer.write_all(piece).unwrap();
        if i % 3 == 0 {
            writer.flush().unwrap(); // Pushes the buffer to the temp file: many small writes.
        }
    }
    assert_eq!(writer.payload_bytes(), state(20).len() as u64);
    let done = writer.finish().unwrap();
    assert!(!journal.snapshot_in_progress());
    assert_eq!((done.info().seq, done.info().timestamp), (20, 2_020));
    journal.snapshot_done(done).unwrap();
    let calls = journal.storage_mut().calls() - calls_before;
    assert!(calls > 20, "expected many storage calls, found {calls}");

    // The same file, byte for byte, as one write of the whole payload.
    let streamed = journal.storage_mut().file_bytes(&snapshot_name(20)).unwrap();
    let (mut other, _) = open(std::mem::replace(&mut oracle, FaultStorage::new(0)), small_options());
    other.write_snapshot(20, 2_020, &state(20)).unwrap();
    assert_eq!(other.into_storage().file_bytes(&snapshot_name(20)).unwrap(), streamed);

    let (_, loaded) = open(journal.into_storage().restart(), small_options());
    let snapshot = loaded.snapshot.unwrap();
    assert_eq!((snapshot.seq, snapshot.timestamp, snapshot.payload), (20, 2_020, state(20)));
}

/// Frames the crash workload appends while the snapshot is written.
const FRAMES_BEFORE: u64 = 30;
/// The snapshot is of this frame, behind the tip, so `begin_snapshot` reads the anchor back.
const SNAPSHOT_SEQ: u64 = 28;
const OLD_SNAPSHOT_SEQ: u64 = 20;

#[derive(Debug, Default)]
struct Acked {
    synced_seq: u64,
    appended_seq: u64,
    /// `finish` returned Ok: the new snapshot is durable.
    finished: bool,
}

/// Writes a snapshot in flushed pieces while appending and syncing frames, until a storage
/// call fails; returns what was acknowledged.
fn snapshot_workload(journal: &mut Journal<FaultStorage>) -> Acked {
    let mut acked = Acked { synced_seq: FRAMES_BEFORE, appended_seq: FRAMES_BEFORE, finished: false };
    let Ok(mut writer) = journal.begin_snapshot(SNAPSHOT_SEQ, 77) else { return acked };
    let mut seq = FRAMES_BEFORE;
    for (i, piece) in state(SNAPSHOT_SEQ).chunks(PIECE_BYTES * 5).enumerate() {
        if writer.write_all(piece).and_then(|()| writer.flush()).is_err() {
            return acked;
        }
        if i % 3 == 0 {
            seq += 1;
            if journal.append(seq, timestamp(seq), &payload(seq)).is_err() {
                return acked;
            }
            acked.appended_seq = seq;
            if journal.sync().is_err() {
                return acked;
            }
            acked.synced_seq = seq;
        }
    }
    let Ok(done) = writer.finish() else { return acked };
    acked.finished = true;
    let _ = journal.snapshot_done(done);
    acked
}

/// Crash at every mutating storage call of a streamed snapshot (its writes, the header, the
/// sync, the rename, the directory sync, the removal of the oldest snapshot) interleaved with
/// appends: recovery finds the old or the new snapshot, never a broken one, and every
/// acknowledged frame.
#[test]
fn crash_at_every_call_of_a_streamed_snapshot_leaves_the_old_or_the_new_one() {
    let options = small_options();
    // A journal with two snapshots; the seed decides what each power loss keeps.
    let base = |seed: u64| {
        let mut journal = journal_with(seed, FRAMES_BEFORE, options);
        journal.write_snapshot(10, 10, &state(10)).unwrap();
        journal.write_snapshot(OLD_SNAPSHOT_SEQ, 20, &state(OLD_SNAPSHOT_SEQ)).unwrap();
        journal.into_storage()
    };

    let (mut journal, _) = Journal::open(base(0), options).unwrap();
    let before = journal.storage_mut().calls();
    assert!(snapshot_workload(&mut journal).finished);
    let total = journal.storage_mut().calls() - before;
    let mut names = journal.into_storage().list().unwrap();
    names.retain(|n| n.ends_with(".snap"));
    names.sort();
    assert_eq!(names, vec![snapshot_name(OLD_SNAPSHOT_SEQ), snapshot_name(SNAPSHOT_SEQ)]);

    let (mut new_seen, mut old_seen) = (0, 0);
    for seed in 0..8 {
        let base = base(seed);
        for crash_at in 1..=total {
            let (mut journal, _) = Journal::open(base.fork(), options).unwrap();
            journal.storage_mut().crash_after_calls(crash_at);
            let acked = snapshot_workload(&mut journal);
            let storage = journal.into_storage();
            assert!(storage.is_crashed(), "call {crash_at} was reached");
            let context = format!("crash at call {crash_at} of {total}, seed {seed}, {acked:?}");

            let (mut journal, loaded) = open(storage.restart(), options);
            let snapshot = loaded.snapshot.as_ref().unwrap_or_else(|| panic!("{context}: no snapshot"));
            match snapshot.seq {
                SNAPSHOT_SEQ => new_seen += 1,
                OLD_SNAPSHOT_SEQ if !acked.finished => old_seen += 1,
                other => panic!("{context}: recovered snapshot {other}"),
            }
            assert_eq!(snapshot.payload, state(snapshot.seq), "{context}");
            let last = journal.last_seq();
            assert!(last >= acked.synced_seq && last <= acked.appended_seq + 1, "{context}: last frame {last}");
            assert_frames(&loaded, snapshot.seq + 1, last, &context);
            let names = journal.storage_mut().list().unwrap();
            assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{context}: temp file left: {names:?}");

            // The journal takes frames and snapshots again.
            append(&mut journal, last + 1..=last + 1);
            journal.sync().unwrap();
            journal.write_snapshot(last + 1, 99, &state(last + 1)).unwrap();
            let (_, loaded) = open(journal.into_storage().restart(), options);
            assert_eq!(loaded.snapshot.unwrap().payload, state(last + 1), "{context}");
        }
    }
    assert!(new_seen > 0 && old_seen > 0, "new {new_seen}, old {old_seen}");
}

/// The point of streaming: the state is written on another thread while the writer thread
/// keeps appending and syncing frames, each on its own storage handle.
#[test]
fn snapshot_written_on_another_thread_while_frames_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { segment_bytes_max: 64 * 1024, ..Options::default() };
    let (mut journal, _) = Journal::open(FileStorage::open(dir.path()).unwrap(), options).unwrap();
    for seq in 1..=50 {
        journal.append(seq, timestamp(seq), &payload(seq)).unwrap();
    }
    journal.sync().unwrap();
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();

    let mut writer = journal.begin_snapshot(50, 500).unwrap();
    let expected = big.clone();
    let snapshotter = std::thread::spawn(move || {
        for piece in expected.chunks(64 * 1024) {
            writer.write_all(piece).unwrap();
        }
        writer.finish()
    });
    for seq in 51..=400 {
        journal.append(seq, timestamp(seq), &payload(seq)).unwrap();
        if seq % 10 == 0 {
            journal.sync().unwrap();
        }
    }
    journal.sync().unwrap();
    let done = snapshotter.join().unwrap().unwrap();
    assert!(!journal.snapshot_in_progress());
    journal.snapshot_done(done).unwrap();
    drop(journal);

    let (mut journal, recovered) = Journal::open(FileStorage::open(dir.path()).unwrap(), options).unwrap();
    let loaded = load(&mut journal, &recovered);
    let snapshot = loaded.snapshot.as_ref().unwrap();
    assert_eq!((snapshot.seq, snapshot.timestamp), (50, 500));
    assert!(snapshot.payload == big, "snapshot payload differs");
    assert_frames(&loaded, 51, 400, "after a snapshot from another thread");
}

#[test]
fn failed_sync_while_finishing_poisons_the_journal() {
    let mut journal = journal_with(82, 12, small_options());
    journal.write_snapshot(6, 6, &state(6)).unwrap();
    let mut writer = journal.begin_snapshot(12, 12).unwrap();
    writer.write_all(&state(12)).unwrap();
    journal.storage_mut().fail_next_sync();
    match writer.finish() {
        Err(error @ JournalError::SyncFailed { .. }) => assert!(error.is_fatal()),
        other => panic!("expected a failed sync, found {other:?}"),
    }
    // The journal on the writer thread learns it from the shared flag, and touches nothing.
    assert!(journal.is_poisoned());
    let calls = journal.storage_mut().calls();
    assert!(matches!(journal.append(13, timestamp(13), &payload(13)), Err(AppendError::Fatal(JournalError::Poisoned))));
    assert!(matches!(journal.sync(), Err(JournalError::Poisoned)));
    assert!(matches!(journal.begin_snapshot(12, 12), Err(JournalError::Poisoned)));
    assert_eq!(journal.storage_mut().calls(), calls, "no storage call after the failed sync");

    let (journal, loaded) = open(journal.into_storage().restart(), small_options());
    assert_eq!(loaded.snapshot.unwrap().seq, 6);
    assert!(!journal.into_storage().list().unwrap().iter().any(|n| n.ends_with(".tmp")));
}

/// A journal poisoned on the writer thread stops the snapshot thread at its next call.
#[test]
fn a_poisoned_journal_refuses_to_finish_a_snapshot() {
    let mut journal = journal_with(83, 12, small_options());
    let mut writer = journal.begin_snapshot(12, 12).unwrap();
    writer.write_all(&state(12)).unwrap();
    append(&mut journal, 13..=13);
    journal.storage_mut().fail_next_sync();
    assert!(journal.sync().is_err());
    let calls = journal.storage_mut().calls();
    assert!(writer.write_all(&[0; 1 << 20]).is_err(), "a write that reaches the storage is refused");
    assert!(matches!(writer.finish(), Err(JournalError::Poisoned)));
    assert_eq!(journal.storage_mut().calls(), calls);
}

#[test]
fn failed_write_abandons_the_snapshot_and_removes_its_temp_file() {
    let mut journal = journal_with(84, 12, Options::default());
    let bytes = journal.bytes();
    journal.storage_mut().disk_full_after_bytes(bytes + 3_000);
    let mut writer = journal.begin_snapshot(12, 12).unwrap();
    let error = writer.write_all(&[1; 4 << 20]).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
    assert!(writer.write_all(b"more").is_err(), "a failed writer stays failed");
    drop(writer);
    assert!(!journal.is_poisoned());
    assert!(!journal.snapshot_in_progress());
    assert_eq!(journal.storage_mut().list().unwrap().len(), 1, "only the segment is left");

    journal.storage_mut().clear_disk_full();
    append(&mut journal, 13..=13);
    journal.sync().unwrap();
    journal.write_snapshot(13, 13, &state(13)).unwrap();
    let (_, loaded) = open(journal.into_storage().restart(), Options::default());
    assert_eq!(loaded.snapshot.unwrap().payload, state(13));
}

#[test]
#[should_panic(expected = "expected no snapshot in progress")]
fn one_snapshot_at_a_time() {
    let mut journal = journal_with(85, 3, small_options());
    let first = journal.begin_snapshot(3, 3).unwrap();
    let _second = journal.begin_snapshot(3, 3);
    drop(first);
}

#[test]
fn a_dropped_writer_ends_the_snapshot() {
    let mut journal = journal_with(86, 3, small_options());
    let mut writer = journal.begin_snapshot(3, 3).unwrap();
    writer.write_all(&[7; 2 << 20]).unwrap(); // Reaches the temp file.
    drop(writer);
    assert!(!journal.snapshot_in_progress());
    assert_eq!(journal.storage_mut().list().unwrap().len(), 1, "the temp file is removed");
    journal.write_snapshot(3, 3, b"again").unwrap();
}
