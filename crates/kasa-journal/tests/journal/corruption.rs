//! Damage anywhere before the tail stops recovery with an error naming segment, offset and seq;
//! a damaged snapshot makes recovery fall back to an older one.

use kasa_journal::{segment_name, snapshot_name, Journal, JournalError, Storage};

use crate::common::*;

/// Byte positions to damage in a frame of `payload_len` bytes: magic, version, seq, timestamp,
/// length, payload checksum, previous hash, header checksum, first and last payload byte.
fn positions(payload_len: u64) -> Vec<u64> {
    let mut positions = vec![0, 4, 8, 16, 24, 28, 40, 63, 68];
    if payload_len > 0 {
        positions.push(72);
        positions.push(72 + payload_len - 1);
    }
    positions
}

/// Flips bits at every position of frame number `index` of the segment `segment_from_end`
/// places before the last, and expects a corruption error naming that frame.
fn flip_and_expect_error(seed: u64, segment_from_end: usize, index: usize) {
    let journal = journal_with(seed, 60, small_options());
    let mut storage = journal.into_storage().restart();
    let names = segment_names(&mut storage);
    assert!(names.len() >= 3);
    let segment = names[names.len() - 1 - segment_from_end].clone();
    let bytes = storage.file_bytes(&segment).unwrap();
    let spans = frame_spans(&bytes);
    assert!(index + 1 < spans.len() || segment_from_end > 0, "not a middle frame");
    let (offset, len) = spans[index];
    let seq = seq_at(&bytes, offset);
    for position in positions(len - 72) {
        for bit in [0, 5] {
            let damaged = storage.fork();
            damaged.flip_bit(&segment, offset + position, bit);
            let context = format!("{segment} frame {seq} at {offset}, byte {position} bit {bit}");
            let result = Journal::open(damaged, small_options());
            if let Err(error) = &result {
                let prefix = format!("segment {segment} offset {offset}: frame {seq} ");
                assert!(error.to_string().starts_with(&prefix), "{context}: {error}");
            }
            assert_corrupt(result, &segment, offset, seq, &context);
        }
    }
}

#[test]
fn bit_flip_in_a_middle_frame_of_the_last_segment_is_named() {
    flip_and_expect_error(20, 0, 0);
}

#[test]
fn bit_flip_in_an_earlier_segment_is_named() {
    flip_and_expect_error(21, 2, 1);
}

/// Even the last frame of an earlier segment is not a "tail": that segment was complete and
/// synced before the next one existed.
#[test]
fn bit_flip_in_the_last_frame_of_an_earlier_segment_is_named() {
    let journal = journal_with(22, 60, small_options());
    let mut storage = journal.into_storage();
    let names = segment_names(&mut storage);
    let last_index = frame_spans(&storage.file_bytes(&names[1]).unwrap()).len() - 1;
    flip_and_expect_error(22, names.len() - 2, last_index);
}

/// The one ambiguity of the format: damage to the very last frame looks exactly like a torn
/// append, so it is cut (and reported) rather than stopping the engine. Redundant headers
/// (as TigerBeetle keeps) would tell the two apart; we accept the ambiguity for one frame.
#[test]
fn bit_flip_in_the_very_last_frame_reads_as_a_torn_tail() {
    let journal = journal_with(23, 5, small_options());
    let mut storage = journal.into_storage();
    let segment = segment_names(&mut storage).pop().unwrap();
    let bytes = storage.file_bytes(&segment).unwrap();
    let (offset, len) = *frame_spans(&bytes).last().unwrap();
    storage.flip_bit(&segment, offset + len - 1, 0);
    let (_, recovered) = open(storage, small_options());
    assert_frames(&recovered, 1, 4, "damaged last frame");
    assert_eq!(recovered.torn_tail.unwrap().offset, offset);
}

#[test]
fn missing_middle_segment_is_named() {
    let journal = journal_with(24, 60, small_options());
    let mut storage = journal.into_storage();
    let names = segment_names(&mut storage);
    storage.remove(&names[1]).unwrap();
    let expected_first = kasa_journal::verify(&mut storage.fork(), |_| Ok(()));
    assert!(expected_first.is_err());
    match Journal::open(storage, small_options()) {
        Err(JournalError::SegmentOutOfOrder { segment, .. }) => assert_eq!(segment, names[2]),
        other => panic!("expected a segment gap, found {:?}", other.map(|_| ())),
    }
}

fn journal_with_two_snapshots(seed: u64) -> FaultStorage {
    let mut journal = journal_with(seed, 30, small_options());
    journal.write_snapshot(10, 10, &snapshot_payload(10)).unwrap();
    journal.write_snapshot(20, 20, &snapshot_payload(20)).unwrap();
    journal.into_storage()
}

#[test]
fn damaged_newest_snapshot_falls_back_to_the_older_one() {
    for position in [0, 8, 40, 70, 72, 80] {
        let storage = journal_with_two_snapshots(25);
        storage.flip_bit(&snapshot_name(20), position, 1);
        let (_, recovered) = open(storage, small_options());
        let snapshot = recovered.snapshot.clone().expect("older snapshot");
        assert_eq!((snapshot.seq, snapshot.payload), (10, snapshot_payload(10)));
        assert_frames(&recovered, 11, 30, &format!("byte {position} of snapshot 20"));
    }
}

#[test]
fn damaged_snapshots_fall_back_to_a_full_replay() {
    let storage = journal_with_two_snapshots(26);
    storage.flip_bit(&snapshot_name(20), 75, 1);
    storage.flip_bit(&snapshot_name(10), 12, 1);
    let (_, recovered) = open(storage, small_options());
    assert_eq!(recovered.snapshot, None);
    assert_frames(&recovered, 1, 30, "both snapshots damaged");
}

#[test]
fn truncated_snapshot_falls_back() {
    let storage = journal_with_two_snapshots(27);
    let bytes = storage.file_bytes(&snapshot_name(20)).unwrap();
    storage.set_file_bytes(&snapshot_name(20), bytes[..bytes.len() - 1].to_vec());
    let (_, recovered) = open(storage, small_options());
    assert_eq!(recovered.snapshot.unwrap().seq, 10);
}

/// A valid snapshot from another history does not continue this chain.
#[test]
fn snapshot_from_another_history_is_an_anchor_mismatch() {
    let storage = journal_with(28, 30, small_options()).into_storage();
    let (mut other, _) = open(FaultStorage::new(29), small_options());
    for seq in 1..=10 {
        other.append(seq, timestamp(seq), b"another history").unwrap();
    }
    other.sync().unwrap();
    other.write_snapshot(10, 10, b"other state").unwrap();
    let foreign = other.into_storage().file_bytes(&snapshot_name(10)).unwrap();
    storage.set_file_bytes(&snapshot_name(10), foreign);
    match Journal::open(storage, small_options()) {
        Err(JournalError::SnapshotAnchorMismatch { snapshot, seq, .. }) => {
            assert_eq!((snapshot, seq), (snapshot_name(10), 10));
        }
        other => panic!("expected an anchor mismatch, found {:?}", other.map(|_| ())),
    }
}

/// A valid snapshot proves its frames were acknowledged; a journal that ends before it lost them.
#[test]
fn journal_ending_before_the_snapshot_is_an_error() {
    let storage = journal_with_two_snapshots(30);
    let snapshot = storage.file_bytes(&snapshot_name(20)).unwrap();
    let short = journal_with(30, 15, small_options()).into_storage();
    short.set_file_bytes(&snapshot_name(20), snapshot);
    match Journal::open(short, small_options()) {
        Err(JournalError::SnapshotBeyondJournal { seq, last_seq, .. }) => {
            assert_eq!((seq, last_seq), (20, 15));
        }
        other => panic!("expected a short journal error, found {:?}", other.map(|_| ())),
    }
}

/// Frames before the snapshot are still checked: the chain must hold from frame 1.
#[test]
fn damage_before_the_snapshot_is_still_an_error() {
    let storage = journal_with_two_snapshots(31);
    let segment = segment_name(1);
    storage.flip_bit(&segment, 72, 2); // First payload byte of frame 1.
    let result = Journal::open(storage, small_options());
    assert_corrupt(result, &segment, 0, 1, "frame 1 behind two snapshots");
}
