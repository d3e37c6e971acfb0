//! `verify`: the offline, read-only walk behind `kasa verify`.

use kasa_journal::{snapshot_name, verify, JournalError, Storage, FRAME_HEADER_BYTES};

use crate::common::*;

fn storage_with_snapshots() -> FaultStorage {
    let mut journal = journal_with(60, 30, small_options());
    journal.write_snapshot(10, 111, &snapshot_payload(10)).unwrap();
    journal.write_snapshot(20, 222, &snapshot_payload(20)).unwrap();
    journal.into_storage()
}

#[test]
fn verify_counts_and_replays_every_frame() {
    let mut storage = storage_with_snapshots();
    let mut replayed = Vec::new();
    let report = verify(&mut storage, |frame| {
        replayed.push(frame.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(replayed, frames(1..=30));

    let names = segment_names(&mut storage);
    let bytes: u64 = names.iter().map(|n| storage.file_bytes(n).unwrap().len() as u64).sum();
    let payload_bytes: u64 = (1..=30).map(|s| payload(s).len() as u64).sum();
    assert_eq!(report.segments, names.len() as u64);
    assert_eq!(report.frames, 30);
    assert_eq!(report.bytes, bytes);
    assert_eq!(report.payload_bytes, payload_bytes);
    assert_eq!(bytes, payload_bytes + 30 * FRAME_HEADER_BYTES as u64);
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(30)));
    assert_eq!(report.last_hash.len(), 64);
    let seqs: Vec<(String, u64, u64)> = report.snapshots.iter().map(|s| (s.name.clone(), s.seq, s.timestamp)).collect();
    assert_eq!(seqs, vec![(snapshot_name(10), 10, 111), (snapshot_name(20), 20, 222)]);
    assert_eq!(report.torn_tail, None);
}

#[test]
fn verify_names_a_flipped_bit() {
    let mut storage = storage_with_snapshots();
    let segment = segment_names(&mut storage)[0].clone();
    let bytes = storage.file_bytes(&segment).unwrap();
    let (offset, _) = frame_spans(&bytes)[2];
    storage.flip_bit(&segment, offset + 80, 4);
    let result = verify(&mut storage, |_| Ok(()));
    let message = result.as_ref().map(|_| ()).unwrap_err().to_string();
    assert!(
        message
            .starts_with(&format!("segment {segment} offset {offset}: frame 3 payload checksum mismatch (expected 0x")),
        "{message}"
    );
    assert_corrupt(result, &segment, offset, 3, "verify");
}

#[test]
fn verify_rejects_a_damaged_snapshot_that_recovery_would_skip() {
    let mut storage = storage_with_snapshots();
    storage.flip_bit(&snapshot_name(10), 90, 0);
    match verify(&mut storage, |_| Ok(())) {
        Err(JournalError::SnapshotCorrupt { snapshot, .. }) => {
            assert_eq!(snapshot, snapshot_name(10))
        }
        other => panic!("expected a snapshot error, found {other:?}"),
    }
}

#[test]
fn verify_reports_a_torn_tail_without_cutting_it() {
    let journal = journal_with(61, 5, small_options());
    let mut storage = journal.into_storage();
    let segment = segment_names(&mut storage).pop().unwrap();
    let bytes = storage.file_bytes(&segment).unwrap();
    storage.set_file_bytes(&segment, bytes[..bytes.len() - 3].to_vec());
    let report = verify(&mut storage, |_| Ok(())).unwrap();
    assert_eq!(report.frames, 4);
    assert_eq!(
        report.torn_tail.unwrap().bytes_cut,
        bytes.len() as u64 - 3 - {
            let spans = frame_spans(&bytes);
            spans.last().unwrap().0
        }
    );
    assert_eq!(storage.file_bytes(&segment).unwrap().len(), bytes.len() - 3);
    assert_eq!(storage.len(&segment).unwrap(), bytes.len() as u64 - 3);
}

#[test]
fn verify_stops_at_a_failed_replay() {
    let mut storage = storage_with_snapshots();
    let result =
        verify(&mut storage, |frame| if frame.seq == 7 { Err("balance went negative".to_string()) } else { Ok(()) });
    match result {
        Err(error @ JournalError::Replay { seq: 7, .. }) => {
            assert_eq!(error.to_string(), "replay of frame 7 failed: balance went negative")
        }
        other => panic!("expected a replay error, found {other:?}"),
    }
}
