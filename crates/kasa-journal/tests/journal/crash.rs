//! Crash at every mutating storage call of a workload (appends, syncs, segment rolls, a
//! snapshot), then again at every call of the recovery that follows, and check that nothing
//! acknowledged is lost and nothing unacknowledged is invented.

use kasa_journal::{Journal, Options};

use crate::common::*;

/// Frames appended by the workload.
const WORKLOAD_FRAMES: u64 = 24;
/// The workload syncs after every this many frames.
const SYNC_EVERY: u64 = 3;
/// After syncing this frame, the workload snapshots `SNAPSHOT_SEQ` (behind the tip, so the
/// anchor is read back from disk).
const SNAPSHOT_AFTER: u64 = 12;
const SNAPSHOT_SEQ: u64 = 9;
/// Seeds per crash point: each decides differently what unsynced state survives.
const SEEDS: u64 = 16;

fn options() -> Options {
    Options { segment_bytes_max: 512, ..small_options() }
}

/// What the workload got acknowledged before it stopped.
#[derive(Debug, Default)]
struct Acked {
    /// Last frame whose sync returned Ok.
    synced_seq: u64,
    /// Last frame whose append returned Ok.
    appended_seq: u64,
    /// Whether `write_snapshot` returned Ok.
    snapshot: bool,
}

/// Runs the workload until a storage call fails; returns what was acknowledged.
fn workload(storage: FaultStorage) -> (FaultStorage, Acked) {
    let mut acked = Acked::default();
    let handle = storage.clone();
    // Opening the empty journal syncs the directory, so the crash may hit already there.
    let Ok((mut journal, _)) = Journal::open(storage, options()) else {
        return (handle, acked);
    };
    for seq in 1..=WORKLOAD_FRAMES {
        if journal.append(seq, timestamp(seq), &payload(seq)).is_err() {
            break;
        }
        acked.appended_seq = seq;
        if seq % SYNC_EVERY == 0 {
            if journal.sync().is_err() {
                break;
            }
            acked.synced_seq = seq;
            if seq == SNAPSHOT_AFTER {
                let state = snapshot_payload(SNAPSHOT_SEQ);
                if journal.write_snapshot(SNAPSHOT_SEQ, 77, &state).is_err() {
                    break;
                }
                acked.snapshot = true;
            }
        }
    }
    drop(journal);
    (handle, acked)
}

/// Which interesting cases the recoveries hit, so the test knows the faults were not too tame.
#[derive(Debug, Default)]
struct Seen {
    torn_tails: u64,
    snapshots: u64,
    unacknowledged_frames_kept: u64,
    unacknowledged_frames_lost: u64,
}

/// Checks a recovery against what was acknowledged, then appends and reopens once more.
fn check_recovery(storage: FaultStorage, acked: &Acked, context: &str, seen: &mut Seen) {
    let (mut journal, recovered) = match Journal::open(storage, options()) {
        Ok(opened) => opened,
        Err(error) => panic!("{context}: open failed: {error}"),
    };
    let recovered = load(&mut journal, &recovered);
    let first = match &recovered.snapshot {
        Some(snapshot) => {
            assert_eq!(snapshot.seq, SNAPSHOT_SEQ, "{context}");
            assert_eq!(snapshot.payload, snapshot_payload(SNAPSHOT_SEQ), "{context}");
            SNAPSHOT_SEQ + 1
        }
        None => {
            assert!(!acked.snapshot, "{context}: acknowledged snapshot lost");
            1
        }
    };
    let last = journal.last_seq();
    assert!(last >= acked.synced_seq, "{context}: lost synced frames ({last} < {})", acked.synced_seq);
    // A frame may survive without being acknowledged, but only one that was really appended
    // (the one being written when the crash hit included).
    assert!(last <= acked.appended_seq + 1, "{context}: invented frames up to {last}");
    assert_frames(&recovered, first, last, context);
    seen.torn_tails += recovered.torn_tail.is_some() as u64;
    seen.snapshots += recovered.snapshot.is_some() as u64;
    if last > acked.synced_seq {
        seen.unacknowledged_frames_kept += 1;
    } else if acked.appended_seq > acked.synced_seq {
        seen.unacknowledged_frames_lost += 1;
    }

    // The recovered journal takes new frames and keeps them.
    let next = last + 1;
    append(&mut journal, next..=next);
    journal.sync().unwrap_or_else(|e| panic!("{context}: sync after recovery: {e}"));
    let (mut journal, _) = Journal::open(journal.into_storage().restart(), options())
        .unwrap_or_else(|e| panic!("{context}: reopen after recovery: {e}"));
    assert_eq!(journal.last_seq(), next, "{context}");
    assert_eq!(replayed(&mut journal, next - 1), vec![frame(next)], "{context}");
}

#[test]
fn crash_at_every_call_loses_nothing_acknowledged() {
    let (clean, acked) = workload(FaultStorage::new(0));
    assert_eq!(acked.synced_seq, WORKLOAD_FRAMES, "the clean run finishes");
    let total_calls = clean.calls();
    assert!(total_calls > 40, "workload too small: {total_calls} calls");

    let mut recoveries = 0;
    let mut seen = Seen::default();
    for crash_at in 1..=total_calls {
        for seed in 0..SEEDS {
            let storage = FaultStorage::new(seed * 1_000_003 + crash_at);
            storage.crash_after_calls(crash_at);
            let (storage, acked) = workload(storage);
            assert!(storage.is_crashed(), "call {crash_at} was reached");
            let restarted = storage.restart();
            let context = format!("crash at call {crash_at}, seed {seed}, {acked:?}");
            check_recovery(restarted.fork(), &acked, &context, &mut seen);
            recoveries += 1;

            // Crash again at each call of the recovery itself, then recover from that.
            let recovery_calls = {
                let probe = restarted.fork();
                let before = probe.calls();
                let (journal, _) = Journal::open(probe, options()).unwrap();
                journal.into_storage().calls() - before
            };
            assert!(recovery_calls >= 1, "{context}: recovery syncs");
            for crash_in_open in 1..=recovery_calls {
                let storage = restarted.fork();
                storage.crash_after_calls(crash_in_open);
                let handle = storage.clone();
                let context = format!("{context}, then crash in recovery at call {crash_in_open}");
                if Journal::open(storage, options()).is_ok() {
                    panic!("{context}: open survived the crash");
                }
                check_recovery(handle.restart(), &acked, &context, &mut seen);
                recoveries += 1;
            }
        }
    }
    assert!(recoveries > total_calls * SEEDS);
    println!("{total_calls} calls, {recoveries} recoveries, {seen:?}");
    assert!(seen.torn_tails > 0, "{seen:?}");
    assert!(seen.snapshots > 0, "{seen:?}");
    assert!(seen.unacknowledged_frames_kept > 0, "{seen:?}");
    assert!(seen.unacknowledged_frames_lost > 0, "{seen:?}");
}
