//! Streaming recovery: `open` keeps no payloads, `replay` reads frames back one at a time from
//! any point, and the snapshot comes back as a stream. Every byte read is checked again, so
//! damage done after `open` is an error, never a wrong frame.

use std::io::{BufRead, Read};

use kasa_journal::{open_snapshot, segment_name, snapshot_name, Journal, JournalError, Storage};

use crate::common::*;

#[test]
fn replay_from_every_seq_gives_exactly_the_frames_after_it() {
    let (mut journal, _) = open(journal_with(70, 40, small_options()).into_storage().restart(), small_options());
    // Frames appended after open, across more rolls, replay too.
    append(&mut journal, 41..=60);
    journal.sync().unwrap();
    assert!(journal.segment_count() >= 4);
    for after in 0..=60 {
        assert_eq!(replayed(&mut journal, after), frames(after + 1..=60), "after {after}");
    }
}

/// A caller's own error type: `replay` only needs it to take a `JournalError`.
#[derive(Debug, PartialEq)]
enum ApplyError {
    Journal(String),
    Refused(u64),
}

impl From<JournalError> for ApplyError {
    fn from(error: JournalError) -> Self {
        ApplyError::Journal(error.to_string())
    }
}

#[test]
fn replay_stops_at_the_callback_error_and_returns_it() {
    let mut journal = journal_with(71, 20, small_options());
    let mut seen = Vec::new();
    let result = journal.replay(3, |frame| {
        seen.push(frame.seq);
        if frame.seq == 7 {
            return Err(ApplyError::Refused(frame.seq));
        }
        Ok(())
    });
    assert_eq!(result, Err(ApplyError::Refused(7)));
    assert_eq!(seen, vec![4, 5, 6, 7]);

    journal.storage_mut().flip_bit(&segment_name(1), 80, 0);
    let result = journal.replay(0, |_| Ok::<(), ApplyError>(()));
    assert!(matches!(&result, Err(ApplyError::Journal(message)) if message.contains("frame 1 payload checksum")));
}

/// Recovery checked every frame, but `replay` reads them again and trusts nothing it has not
/// checked again: a bit flipped since `open` is named like any corruption.
#[test]
fn damage_after_open_is_caught_by_replay() {
    let (mut journal, _) = open(journal_with(72, 30, small_options()).into_storage(), small_options());
    let segment = segment_names(journal.storage_mut())[1].clone();
    let bytes = journal.storage_mut().file_bytes(&segment).unwrap();
    let (offset, len) = frame_spans(&bytes)[1];
    let seq = seq_at(&bytes, offset);
    journal.storage_mut().flip_bit(&segment, offset + len - 1, 6);
    assert_corrupt(journal.replay(0, |_| Ok(())), &segment, offset, seq, "replay from frame 1");
    assert_corrupt(journal.replay(seq - 1, |_| Ok(())), &segment, offset, seq, "replay from the frame");
    // A replay that starts in a later segment does not read the damaged one.
    let later = segment_names(journal.storage_mut())[2].clone();
    let first_later = seq_at(&journal.storage_mut().file_bytes(&later).unwrap(), 0);
    assert_eq!(replayed(&mut journal, first_later - 1), frames(first_later..=30));
}

#[test]
fn large_snapshot_streams_in_chunks_and_small_reads() {
    let mut journal = journal_with(73, 5, small_options());
    // Several 1 MiB chunks and a ragged end.
    let state: Vec<u8> = (0..(5 << 19) + 13).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    journal.write_snapshot(5, 99, &state).unwrap();
    let (journal, loaded) = open(journal.into_storage().restart(), small_options());
    assert_eq!(loaded.snapshot.unwrap().payload, state);

    let mut reader = journal.open_snapshot(5).unwrap();
    assert_eq!(reader.info().payload_bytes, state.len() as u64);
    let mut read = Vec::new();
    let mut buf = [0; 4099];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        read.extend_from_slice(&buf[..n]);
    }
    assert_eq!(read, state);

    let mut reader = journal.open_snapshot(5).unwrap();
    let first = reader.fill_buf().unwrap().len();
    assert!(first > 0 && first <= 1 << 20, "one chunk at most, found {first}");
}

/// The reader checks the payload checksum as it streams: a file damaged after `open` fails
/// the read that would deliver its last bytes, so a caller reading to the end never accepts it.
#[test]
fn snapshot_damaged_after_open_fails_the_last_read() {
    let mut journal = journal_with(74, 5, small_options());
    let state = vec![0x5a; 3 << 20];
    journal.write_snapshot(5, 5, &state).unwrap();
    let storage = journal.into_storage();
    let handle = storage.clone();
    let (journal, recovered) = Journal::open(storage, small_options()).unwrap();
    assert_eq!(recovered.snapshot.unwrap().seq, 5);
    handle.flip_bit(&snapshot_name(5), 72 + (1 << 20) + 5, 0);

    let mut reader = journal.open_snapshot(5).unwrap();
    let mut first_chunks = vec![0; 2 << 20];
    reader.read_exact(&mut first_chunks).unwrap();
    let mut rest = Vec::new();
    let error = reader.read_to_end(&mut rest).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().contains("payload checksum mismatch"), "{error}");
    assert!(rest.is_empty(), "the last chunk is never delivered");
    assert!(reader.read(&mut [0; 16]).is_err(), "and it keeps failing");
}

#[test]
fn open_snapshot_reads_without_a_journal_and_rejects_a_bad_header() {
    let mut journal = journal_with(75, 12, small_options());
    journal.write_snapshot(10, 1_234, &snapshot_payload(10)).unwrap();
    let storage = journal.into_storage();

    let mut reader = open_snapshot(storage.try_clone().unwrap(), 10).unwrap();
    assert_eq!((reader.info().seq, reader.info().timestamp), (10, 1_234));
    let mut payload = Vec::new();
    reader.read_to_end(&mut payload).unwrap();
    assert_eq!(payload, snapshot_payload(10));

    storage.flip_bit(&snapshot_name(10), 20, 1);
    match open_snapshot(storage.clone(), 10) {
        Err(JournalError::SnapshotCorrupt { snapshot, .. }) => assert_eq!(snapshot, snapshot_name(10)),
        other => panic!("expected a corrupt snapshot, found {:?}", other.map(|r| r.info().clone())),
    }
    assert!(matches!(open_snapshot(storage, 11), Err(JournalError::Io { op: "len", .. })));
}

/// `open` keeps nothing but metadata; the frame count and payload bytes it reports match the
/// replay (the `load` helper checks that in every test), here against numbers written out.
#[test]
fn recovered_reports_counts_not_frames() {
    let mut journal = journal_with(76, 30, small_options());
    journal.write_snapshot(12, 12, &snapshot_payload(12)).unwrap();
    let (_, recovered) = Journal::open(journal.into_storage(), small_options()).unwrap();
    assert_eq!(recovered.replay_after(), 12);
    assert_eq!(recovered.frames_after_snapshot, 18);
    let bytes: u64 = (13..=30).map(|s| payload(s).len() as u64).sum();
    assert_eq!(recovered.payload_bytes_after_snapshot, bytes);
    assert_eq!(recovered.snapshot.unwrap().name, snapshot_name(12));
}
