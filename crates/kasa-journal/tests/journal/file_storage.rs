//! The real file backend, and the checked-in fixture that pins format version 1.

use kasa_journal::{segment_name, snapshot_name, verify, FileStorage, Frame, Journal, Options, Storage};

use crate::common::*;

#[test]
fn file_storage_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let options = small_options();
    {
        let (mut journal, recovered) = Journal::open(FileStorage::open(&path).unwrap(), options).unwrap();
        assert_eq!((recovered.snapshot, recovered.frames_after_snapshot), (None, 0));
        for seq in 1..=40 {
            journal.append(seq, timestamp(seq), &payload(seq)).unwrap();
            if seq % 7 == 0 {
                journal.sync().unwrap();
            }
        }
        journal.sync().unwrap();
        journal.write_snapshot(21, 21, &snapshot_payload(21)).unwrap();
        assert!(journal.segment_count() >= 3);
    }
    let (mut journal, recovered) = Journal::open(FileStorage::open(&path).unwrap(), options).unwrap();
    let recovered = load(&mut journal, &recovered);
    assert_eq!(recovered.snapshot.as_ref().unwrap().payload, snapshot_payload(21));
    assert_frames(&recovered, 22, 40, "file storage reopen");
    assert_eq!(recovered.torn_tail, None);

    // A torn tail on a real file is cut for real.
    journal.append(41, timestamp(41), &payload(41)).unwrap();
    let bytes = journal.bytes();
    let mut storage = journal.into_storage();
    let last = {
        let mut names: Vec<String> = storage.list().unwrap();
        names.retain(|n| n.ends_with(".seg"));
        names.sort();
        names.pop().unwrap()
    };
    let len = storage.len(&last).unwrap();
    storage.truncate(&last, len - 5).unwrap();
    storage.sync(&last).unwrap();
    drop(storage);
    let (journal, recovered) = Journal::open(FileStorage::open(&path).unwrap(), options).unwrap();
    assert_eq!(recovered.torn_tail.unwrap().segment, last);
    assert_eq!(journal.last_seq(), 40);
    assert_eq!(journal.bytes(), bytes - payload(41).len() as u64 - 72);
    let on_disk = std::fs::metadata(path.join(&last)).unwrap().len();
    assert_eq!(on_disk, len - payload(41).len() as u64 - 72);
}

#[test]
fn file_storage_rejects_names_outside_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::open(dir.path()).unwrap();
    for name in ["../escape", "a/b", "", ".."] {
        let error = storage.write_at(name, 0, b"x").unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{name:?}");
    }
    assert!(storage.list().unwrap().is_empty());
}

fn fixture_frame(seq: u64) -> Frame {
    Frame { seq, timestamp: 1_700_000_000_000 + seq, payload: format!("fixture frame {seq}").into_bytes() }
}

/// Written by `examples/write_fixture.rs` with format version 1. If this fails, the format
/// changed: bump `FORMAT_VERSION`, keep reading version 1, and add a `v2` fixture.
#[test]
fn fixture_v1_decodes_to_the_expected_frames() {
    let copy = fixture_copy("v1");
    let mut names: Vec<String> = FileStorage::open(copy.path()).unwrap().list().unwrap();
    names.sort();
    assert_eq!(names, vec![segment_name(1), segment_name(4), snapshot_name(3)]);

    let (mut journal, recovered) = Journal::open(FileStorage::open(copy.path()).unwrap(), Options::default()).unwrap();
    let recovered = load(&mut journal, &recovered);
    let expected_snapshot =
        Snapshot { seq: 3, timestamp: 1_700_000_000_003, payload: b"fixture state as of frame 3".to_vec() };
    assert_eq!(recovered.snapshot, Some(expected_snapshot));
    assert_eq!(recovered.frames, (4..=6).map(fixture_frame).collect::<Vec<_>>());
    assert_eq!(recovered.torn_tail, None);
    assert_eq!(journal.bytes(), 522);

    let mut replayed = Vec::new();
    let report = verify(&mut FileStorage::open(copy.path()).unwrap(), |frame| {
        replayed.push(frame.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(replayed, (1..=6).map(fixture_frame).collect::<Vec<_>>());
    assert_eq!(report.last_hash, FIXTURE_V1_LAST_HASH);
}

/// The layout of a streamed snapshot is the one version 1 wrote from a single buffer (header
/// last instead of first, same bytes): doing what `examples/write_fixture.rs` does, with the
/// streaming writer, gives the fixture byte for byte. If this fails, the format changed.
#[test]
fn streaming_writer_writes_the_v1_fixture_byte_for_byte() {
    use std::io::Write;

    let dir = tempfile::tempdir().unwrap();
    let options = Options { segment_bytes_max: 200, ..Options::default() };
    let (mut journal, _) = Journal::open(FileStorage::open(dir.path()).unwrap(), options).unwrap();
    for seq in 1..=6 {
        journal.append(seq, 1_700_000_000_000 + seq, format!("fixture frame {seq}").as_bytes()).unwrap();
        journal.sync().unwrap();
        if seq == 3 {
            let mut writer = journal.begin_snapshot(3, 1_700_000_000_003).unwrap();
            for piece in b"fixture state as of frame 3".chunks(5) {
                writer.write_all(piece).unwrap();
                writer.flush().unwrap();
            }
            let done = writer.finish().unwrap();
            journal.snapshot_done(done).unwrap();
        }
    }
    drop(journal);
    let mut names: Vec<String> = FileStorage::open(dir.path()).unwrap().list().unwrap();
    names.sort();
    assert_eq!(names, vec![segment_name(1), segment_name(4), snapshot_name(3)]);
    for name in names {
        let written = std::fs::read(dir.path().join(&name)).unwrap();
        assert_eq!(written, std::fs::read(fixture_dir("v1").join(&name)).unwrap(), "{name}");
    }
}

/// The hash of frame 6 of the v1 fixture: pins the hash definition, not just its consistency.
const FIXTURE_V1_LAST_HASH: &str = "efc61de266062461aceea2b7e222f7924a66e89617822a4982d0046e0499bbb3";
