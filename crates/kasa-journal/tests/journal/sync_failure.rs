//! A failed sync is fatal: the journal is poisoned, never retries, and a restart recovers what
//! was synced before.

use kasa_journal::{AppendError, Journal, JournalError};

use crate::common::*;

/// Seeds to restart with: each keeps a different amount of the unsynced frames.
const SEEDS: u64 = 24;

#[test]
fn failed_sync_poisons_and_restart_recovers_the_synced_frames() {
    let mut exactly_synced = 0;
    for seed in 0..SEEDS {
        let mut journal = journal_with(seed, 3, small_options());
        append(&mut journal, 4..=5);
        journal.storage_mut().fail_next_sync();
        match journal.sync() {
            Err(JournalError::SyncFailed { .. }) => {}
            other => panic!("seed {seed}: expected a failed sync, found {other:?}"),
        }
        assert!(journal.is_poisoned());

        // Everything refuses, and nothing touches the storage again: no retried fsync.
        let calls = journal.storage_mut().calls();
        assert!(matches!(
            journal.append(6, timestamp(6), &payload(6)),
            Err(AppendError::Fatal(JournalError::Poisoned))
        ));
        assert!(matches!(journal.sync(), Err(JournalError::Poisoned)));
        assert!(matches!(journal.write_snapshot(3, 3, b"state"), Err(JournalError::Poisoned)));
        assert_eq!(journal.storage_mut().calls(), calls, "seed {seed}");
        assert_eq!(journal.synced_seq(), 3);

        let (_, recovered) = open(journal.into_storage().restart(), small_options());
        let last = recovered.frames.last().map_or(0, |f| f.seq);
        // Frames 1..=3 were synced; 4 and 5 may survive in the page cache, or not.
        assert!((3..=5).contains(&last), "seed {seed}: recovered up to {last}");
        assert_frames(&recovered, 1, last, &format!("seed {seed}"));
        if last == 3 {
            exactly_synced += 1;
        }
    }
    assert!(exactly_synced > 0, "some seed must drop the unsynced frames");
}

/// Rolling to a new segment syncs the finished one; if that fails the append is fatal.
#[test]
fn failed_sync_while_rolling_poisons() {
    let (mut journal, _) = open(FaultStorage::new(40), small_options());
    let mut seq = 0;
    let segments = loop {
        seq += 1;
        // Arm the failure just before the append that rolls.
        if journal.segment_count() == 1 && journal.bytes() >= small_options().segment_bytes_max {
            journal.storage_mut().fail_next_sync();
            break journal.append(seq, timestamp(seq), &payload(seq));
        }
        journal.append(seq, timestamp(seq), &payload(seq)).unwrap();
    };
    assert!(matches!(segments, Err(AppendError::Fatal(JournalError::SyncFailed { .. }))));
    assert!(journal.is_poisoned());
    assert_eq!(journal.segment_count(), 1, "no new segment after a failed sync");
    assert_eq!(journal.last_seq(), seq - 1);
}

/// Syncing an already-synced journal touches nothing and succeeds.
#[test]
fn sync_with_nothing_new_is_free() {
    let mut journal = journal_with(41, 3, small_options());
    let calls = journal.storage_mut().calls();
    journal.sync().unwrap();
    assert_eq!(journal.storage_mut().calls(), calls);
    let storage = journal.into_storage();
    let (journal, _) = Journal::open(storage, small_options()).unwrap();
    assert_eq!(journal.last_seq(), 3);
}
