//! What goes in comes back out: frames across segment rolls, snapshots, snapshot pruning.

use kasa_journal::{segment_name, snapshot_name, Journal, Options, Storage};

use crate::common::*;

#[test]
fn frames_round_trip_across_segment_rolls() {
    let journal = journal_with(1, 60, small_options());
    assert_eq!(journal.last_seq(), 60);
    assert_eq!(journal.last_timestamp(), timestamp(60));
    assert!(journal.segment_count() >= 4, "expected several segments");
    let bytes = journal.bytes();

    let mut storage = journal.into_storage().restart();
    let names = segment_names(&mut storage);
    assert_eq!(names.len() as u64, {
        let (j, _) = open(storage.clone(), small_options());
        j.segment_count() as u64
    });
    assert_eq!(names[0], segment_name(1));
    let on_disk: u64 = names.iter().map(|n| storage.file_bytes(n).unwrap().len() as u64).sum();
    assert_eq!(on_disk, bytes);
    // Every segment but the last stopped at the first frame that reached the limit.
    for name in &names[..names.len() - 1] {
        let len = storage.file_bytes(name).unwrap().len() as u64;
        assert!((1024..1024 + 72 + 301).contains(&len), "{name} has {len} bytes");
    }

    let (mut journal, recovered) = open(storage, small_options());
    assert_eq!(recovered.snapshot, None);
    assert_eq!(recovered.torn_tail, None);
    assert_frames(&recovered, 1, 60, "reopen");
    assert_eq!(journal.bytes(), bytes);

    // The journal carries on where it stopped.
    append(&mut journal, 61..=70);
    journal.sync().unwrap();
    let (_, recovered) = open(journal.into_storage().restart(), small_options());
    assert_frames(&recovered, 1, 70, "second reopen");
}

#[test]
fn snapshot_plus_later_frames_is_what_recovery_returns() {
    let mut journal = journal_with(2, 30, small_options());
    // Behind the tip: the anchor is read back from disk.
    journal.write_snapshot(20, 555, &snapshot_payload(20)).unwrap();
    append(&mut journal, 31..=40);
    journal.sync().unwrap();

    let (mut journal, recovered) = open(journal.into_storage().restart(), small_options());
    let expected = Snapshot { seq: 20, timestamp: 555, payload: snapshot_payload(20) };
    assert_eq!(recovered.snapshot, Some(expected));
    assert_frames(&recovered, 21, 40, "after snapshot 20");

    // At the tip: nothing left to replay.
    journal.write_snapshot(40, 556, &snapshot_payload(40)).unwrap();
    let (_, recovered) = open(journal.into_storage().restart(), small_options());
    assert_eq!(recovered.snapshot.unwrap().seq, 40);
    assert!(recovered.frames.is_empty());
}

#[test]
fn only_the_newest_two_snapshots_are_kept() {
    let mut journal = journal_with(3, 30, small_options());
    for seq in [10, 20, 30] {
        journal.write_snapshot(seq, seq, &snapshot_payload(seq)).unwrap();
    }
    let mut storage = journal.into_storage();
    let mut snapshots: Vec<String> = storage.list().unwrap().into_iter().filter(|n| n.ends_with(".snap")).collect();
    snapshots.sort();
    assert_eq!(snapshots, vec![snapshot_name(20), snapshot_name(30)]);
}

#[test]
fn empty_journal_opens_and_starts_at_frame_one() {
    let (mut journal, recovered) = open(FaultStorage::new(4), Options::default());
    assert_eq!(recovered.frames, vec![]);
    assert_eq!((journal.last_seq(), journal.bytes()), (0, 0));
    append(&mut journal, 1..=1);
    journal.sync().unwrap();
    let mut storage = journal.into_storage().restart();
    assert_eq!(segment_names(&mut storage), vec![segment_name(1)]);
}

/// A crash right after a roll created the next segment file leaves it empty; that is fine, and
/// the next append goes into it.
#[test]
fn empty_last_segment_is_fine_and_reused() {
    let journal = journal_with(5, 10, Options::default());
    let storage = journal.into_storage().restart();
    storage.set_file_bytes(&segment_name(11), Vec::new());
    let (mut journal, recovered) = open(storage, Options::default());
    assert_frames(&recovered, 1, 10, "with empty last segment");
    append(&mut journal, 11..=12);
    journal.sync().unwrap();
    let mut storage = journal.into_storage().restart();
    assert_eq!(segment_names(&mut storage).len(), 2);
    let bytes = storage.file_bytes(&segment_name(11)).unwrap();
    assert_eq!(frame_spans(&bytes).len(), 2);
    let (_, recovered) = open(storage, Options::default());
    assert_frames(&recovered, 1, 12, "after appending into it");
}

#[test]
fn leftover_temp_files_are_removed_on_open() {
    let journal = journal_with(6, 3, Options::default());
    let storage = journal.into_storage();
    let temp = format!("{}.tmp", snapshot_name(3));
    storage.set_file_bytes(&temp, b"half a snapshot".to_vec());
    let (journal, recovered) = Journal::open(storage, Options::default()).unwrap();
    assert_eq!(recovered.snapshot, None);
    assert_eq!(journal.into_storage().file_bytes(&temp), None);
}
