//! A full disk rejects the frame cleanly: the journal stays readable and usable, and appends
//! work again once there is space.

use kasa_journal::{segment_name, AppendError, JournalError, Options, Storage};

use crate::common::*;

#[test]
fn no_space_rejects_the_frame_and_leaves_the_journal_readable() {
    let mut journal = journal_with(50, 5, Options::default());
    let bytes = journal.bytes();
    // Room for part of frame 6's header, not all of it.
    journal.storage_mut().disk_full_after_bytes(bytes + 50);
    match journal.append(6, timestamp(6), &payload(6)) {
        Err(AppendError::NoSpace { seq: 6, segment, .. }) => assert_eq!(segment, segment_name(1)),
        other => panic!("expected no space, found {other:?}"),
    }
    assert!(!journal.is_poisoned());
    assert_eq!((journal.last_seq(), journal.bytes()), (5, bytes));
    let on_disk = journal.storage_mut().file_bytes(&segment_name(1)).unwrap();
    assert_eq!(on_disk.len() as u64, bytes, "the partial frame was cut");

    // Reopening now (a crash while the disk is full) gives every earlier frame.
    let (_, recovered) = open(journal.storage_mut().restart(), Options::default());
    assert_frames(&recovered, 1, 5, "after no space");
    assert_eq!(recovered.torn_tail, None);

    // Still full: the same frame is rejected again; freed: it goes in.
    assert!(matches!(journal.append(6, timestamp(6), &payload(6)), Err(AppendError::NoSpace { .. })));
    journal.storage_mut().clear_disk_full();
    append(&mut journal, 6..=8);
    journal.sync().unwrap();
    let (_, recovered) = open(journal.into_storage().restart(), Options::default());
    assert_frames(&recovered, 1, 8, "after space was freed");
}

/// Running out of space on the first frame of a new segment leaves an empty segment file,
/// which recovery accepts and the next append reuses.
#[test]
fn no_space_on_a_new_segment() {
    let options = small_options();
    let (mut journal, _) = open(FaultStorage::new(51), options);
    let mut seq = 0;
    loop {
        seq += 1;
        if journal.bytes() >= options.segment_bytes_max {
            break;
        }
        append(&mut journal, seq..=seq);
    }
    journal.sync().unwrap();
    let bytes = journal.bytes();
    journal.storage_mut().disk_full_after_bytes(bytes + 10);
    let result = journal.append(seq, timestamp(seq), &payload(seq));
    assert!(matches!(result, Err(AppendError::NoSpace { .. })), "{result:?}");
    let new_segment = segment_name(seq);
    assert_eq!(journal.storage_mut().file_bytes(&new_segment), Some(vec![]));

    let (_, recovered) = open(journal.storage_mut().fork(), options);
    assert_frames(&recovered, 1, seq - 1, "with an empty new segment");

    journal.storage_mut().clear_disk_full();
    append(&mut journal, seq..=seq + 2);
    journal.sync().unwrap();
    let mut storage = journal.into_storage().restart();
    assert_eq!(segment_names(&mut storage).len(), 2);
    let (_, recovered) = open(storage, options);
    assert_frames(&recovered, 1, seq + 2, "after space was freed");
}

/// A snapshot that does not fit fails without poisoning the journal and leaves no temp file.
#[test]
fn no_space_for_a_snapshot_is_not_fatal() {
    let mut journal = journal_with(52, 5, Options::default());
    let bytes = journal.bytes();
    journal.storage_mut().disk_full_after_bytes(bytes + 100);
    let result = journal.write_snapshot(5, 5, &[7; 1000]);
    assert!(matches!(result, Err(JournalError::Io { op: "write", .. })), "{result:?}");
    assert!(!journal.is_poisoned());
    let names = journal.storage_mut().list().unwrap();
    assert_eq!(names, vec![segment_name(1)]);

    journal.storage_mut().clear_disk_full();
    append(&mut journal, 6..=6);
    journal.sync().unwrap();
    journal.write_snapshot(6, 6, &snapshot_payload(6)).unwrap();
    let (_, recovered) = open(journal.into_storage().restart(), Options::default());
    assert_eq!(recovered.snapshot.unwrap().seq, 6);
}
