//! The record log: records by contiguous key, read back through the sparse index across
//! segment rolls, read while being appended to, and recovered by cutting from the first bad
//! byte (a torn tail at any byte, a flipped bit anywhere) with the cut reported.

use kasa_journal::{
    record_segment_name, Corruption, FileStorage, RecordLog, RecordLogError, RecordLogOptions, RecordLogReport,
    Storage, RECORD_HEADER_BYTES, RECORD_SEGMENT_HEADER_BYTES,
};

use crate::common::{fixture_copy, fixture_dir, FaultStorage};

/// Payload of record `key`: from empty to a few hundred bytes, contents depend on the key.
fn record(key: u64) -> Vec<u8> {
    let len = (key * 53 % 211) as usize;
    (0..len).map(|i| (key as usize * 17 + i * 5) as u8).collect()
}

fn records(keys: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
    keys.map(|key| (key, record(key))).collect()
}

/// Small segments and a dense index, so a few hundred records exercise rolls and index
/// entries of both kinds (by count and by bytes).
fn small() -> RecordLogOptions {
    RecordLogOptions { segment_bytes_max: 2048, index_every_records: 7, index_every_bytes: 600, ..Default::default() }
}

fn open_log<S: Storage>(storage: S, options: RecordLogOptions) -> (RecordLog<S>, RecordLogReport) {
    RecordLog::open(storage, options).unwrap_or_else(|e| panic!("open failed: {e}"))
}

fn append_all<S: Storage>(log: &mut RecordLog<S>, keys: std::ops::RangeInclusive<u64>) {
    for key in keys {
        log.append(key, &record(key)).unwrap_or_else(|e| panic!("append {key}: {e}"));
    }
}

/// A synced log of records `1..=n`.
fn log_with(seed: u64, n: u64, options: RecordLogOptions) -> RecordLog<FaultStorage> {
    let (mut log, _) = open_log(FaultStorage::new(seed), options);
    append_all(&mut log, 1..=n);
    log.sync().unwrap();
    log
}

fn segment_files(storage: &mut FaultStorage) -> Vec<String> {
    let mut names: Vec<String> = storage.list().unwrap().into_iter().filter(|n| n.starts_with("records-")).collect();
    names.sort();
    names
}

/// Every read the log can be asked for, against the model `1..=last`.
fn check_reads<S: Storage>(log: &mut RecordLog<S>, last: u64, context: &str) {
    for after in 0..=last + 1 {
        for records_max in [1, 3, 40] {
            let expected = records(after + 1..=(after + records_max as u64).min(last));
            let found = log.read(after, records_max, usize::MAX).unwrap_or_else(|e| panic!("{context}: read: {e}"));
            assert_eq!(found, expected, "{context}: read after {after}, {records_max} records");
        }
    }
}

#[test]
fn append_and_read_by_key() {
    let mut log = log_with(90, 200, RecordLogOptions::default());
    assert_eq!((log.last_key(), log.synced_key()), (Some(200), Some(200)));
    check_reads(&mut log, 200, "one segment");

    // The byte limit: stop before exceeding it, but always return the first record.
    let found = log.read(10, 100, 500).unwrap();
    let bytes: usize = found.iter().map(|(_, p)| p.len()).sum();
    assert!(bytes <= 500, "{bytes} bytes");
    let next = record(found.last().unwrap().0 + 1).len();
    assert!(bytes + next > 500, "stopped early");
    assert_eq!(found, records(11..=found.last().unwrap().0));
    assert_eq!(log.read(10, 100, 0).unwrap(), records(11..=11));

    // Appended but not synced: not visible yet.
    append_all(&mut log, 201..=205);
    assert_eq!((log.last_key(), log.synced_key()), (Some(205), Some(200)));
    assert_eq!(log.read(200, 10, usize::MAX).unwrap(), vec![]);
    log.sync().unwrap();
    assert_eq!(log.read(200, 10, usize::MAX).unwrap(), records(201..=205));
}

#[test]
fn an_empty_log_starts_at_any_key() {
    let (mut log, report) = open_log(FaultStorage::new(91), small());
    assert_eq!(report, RecordLogReport { last_key: None, records: 0, segments: 0, cut: None });
    assert_eq!(log.read(0, 10, usize::MAX).unwrap(), vec![]);
    append_all(&mut log, 1_000..=1_002);
    log.sync().unwrap();
    assert_eq!(log.read(0, 10, usize::MAX).unwrap(), records(1_000..=1_002));
    assert_eq!(log.read(1_000, 10, usize::MAX).unwrap(), records(1_001..=1_002));
    let (_, report) = open_log(log.into_storage().restart(), small());
    assert_eq!((report.last_key, report.records), (Some(1_002), 3));
}

#[test]
fn reads_across_segment_rolls_before_and_after_reopen() {
    let mut log = log_with(92, 400, small());
    assert!(log.segment_count() >= 10, "{} segments", log.segment_count());
    check_reads(&mut log, 400, "while appending");

    let mut storage = log.into_storage().restart();
    let names = segment_files(&mut storage);
    assert_eq!(names[0], record_segment_name(1));
    let (mut log, report) = open_log(storage, small());
    assert_eq!(report, RecordLogReport { last_key: Some(400), records: 400, segments: names.len() as u64, cut: None });
    check_reads(&mut log, 400, "after reopen (index rebuilt)");
    append_all(&mut log, 401..=450);
    log.sync().unwrap();
    check_reads(&mut log, 450, "appending after reopen");
}

#[test]
#[should_panic(expected = "append: expected the key after 5")]
fn keys_must_be_contiguous() {
    let mut log = log_with(93, 5, small());
    let _ = log.append(7, b"a gap");
}

#[test]
#[should_panic(expected = "append: expected the key after 5")]
fn keys_must_increase() {
    let mut log = log_with(93, 5, small());
    let _ = log.append(5, b"again");
}

/// Bytes garbled at the end of a torn write, as `FaultStorage::restart` may.
const GARBLED_BYTES: usize = 3;

/// Tears the last segment at every byte, plain and garbled: recovery cuts exactly the torn
/// record and reports it, keeps every record before it, and the log carries on.
#[test]
fn torn_tail_at_every_byte_is_cut_and_reported() {
    let options = small();
    let log = log_with(94, 120, options);
    let mut storage = log.into_storage();
    let names = segment_files(&mut storage);
    let last = names.last().unwrap().clone();
    let bytes = storage.file_bytes(&last).unwrap();
    let first_key: u64 = last["records-".len()..last.len() - ".log".len()].parse().unwrap();
    // Where each record of the last segment ends, from the length fields.
    let mut ends = vec![];
    let mut offset = RECORD_SEGMENT_HEADER_BYTES;
    while offset < bytes.len() {
        offset += RECORD_HEADER_BYTES + u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        ends.push(offset);
    }
    assert!(ends.len() >= 3, "several records in the last segment");
    let mut cuts_seen = 0;
    for cut in 0..bytes.len() {
        for garbled in [false, true] {
            let mut torn = bytes[..cut].to_vec();
            if garbled {
                for byte in torn.iter_mut().rev().take(GARBLED_BYTES) {
                    *byte ^= 0x5a;
                }
            }
            let context = format!("cut at {cut} of {}, garbled {garbled}", bytes.len());
            let damaged = storage.fork();
            damaged.set_file_bytes(&last, torn);
            let (mut log, report) = open_log(damaged.clone(), options);

            // The model: records kept are those wholly before the first damaged byte; a segment
            // whose header is damaged, or that keeps no record, is removed.
            let intact_to = if garbled { cut.saturating_sub(GARBLED_BYTES) } else { cut };
            let header_intact = RECORD_SEGMENT_HEADER_BYTES <= intact_to;
            let kept = if header_intact { ends.iter().take_while(|&&end| end <= intact_to).count() } else { 0 };
            let kept_end = if kept == 0 { 0 } else { ends[kept - 1] };
            let last_key = first_key + kept as u64 - 1;
            assert_eq!(report.last_key, Some(last_key), "{context}");
            match &report.cut {
                None => assert!(kept > 0 && kept_end == cut, "{context}: expected a cut"),
                Some(found) => {
                    cuts_seen += 1;
                    assert!(!(kept > 0 && kept_end == cut), "{context}: nothing to cut, found {found:?}");
                    assert!(found.in_last_segment, "{context}");
                    assert_eq!(found.segment, last, "{context}");
                    assert_eq!(found.first_key_lost, last_key + 1, "{context}");
                    assert_eq!(found.offset, kept_end as u64, "{context}");
                    assert_eq!(found.segments_removed, (kept == 0) as u64, "{context}");
                    assert_eq!(found.bytes_cut, (cut - kept_end) as u64, "{context}");
                }
            }
            let on_disk = damaged.file_bytes(&last);
            if kept == 0 {
                assert_eq!(on_disk, None, "{context}: a segment with no record left is removed");
            } else {
                assert_eq!(on_disk.unwrap(), bytes[..kept_end], "{context}");
            }
            assert_eq!(log.read(last_key - 3, 10, usize::MAX).unwrap(), records(last_key - 2..=last_key), "{context}");

            // The log continues from the cut, durably.
            append_all(&mut log, last_key + 1..=121);
            log.sync().unwrap();
            let (mut log, report) = open_log(log.into_storage().restart(), options);
            assert_eq!((report.last_key, report.cut), (Some(121), None), "{context}");
            assert_eq!(log.read(last_key - 1, 200, usize::MAX).unwrap(), records(last_key..=121), "{context}");
        }
    }
    assert!(cuts_seen > bytes.len(), "{cuts_seen} cuts");
}

/// Damage before the last segment is corruption of synced bytes; the record log cuts from
/// there anyway (it can be derived again), reports it, and keeps everything before.
#[test]
fn flipped_bit_mid_log_cuts_from_there_and_reports_it() {
    let options = small();
    let mut storage = log_with(95, 300, options).into_storage();
    let names = segment_files(&mut storage);
    assert!(names.len() >= 6);
    let damaged_segment = names[2].clone();
    let bytes = storage.file_bytes(&damaged_segment).unwrap();
    let first_key: u64 = damaged_segment["records-".len()..damaged_segment.len() - ".log".len()].parse().unwrap();
    // The third record of that segment: skip two.
    let mut offset = RECORD_SEGMENT_HEADER_BYTES;
    for _ in 0..2 {
        offset += RECORD_HEADER_BYTES + u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
    }
    let lost = first_key + 2;
    let later_bytes: u64 = names[3..].iter().map(|n| storage.file_bytes(n).unwrap().len() as u64).sum();

    for (position, what) in [(0, "length"), (5, "checksum"), (9, "key"), (RECORD_HEADER_BYTES, "payload")] {
        if position == RECORD_HEADER_BYTES && record(lost).is_empty() {
            continue;
        }
        let damaged = storage.fork();
        damaged.flip_bit(&damaged_segment, (offset + position) as u64, 3);
        let (mut log, report) = open_log(damaged.clone(), options);
        let cut = report.cut.unwrap_or_else(|| panic!("{what}: nothing cut"));
        assert!(!cut.in_last_segment, "{what}");
        assert_eq!(
            (cut.segment.as_str(), cut.offset, cut.first_key_lost),
            (damaged_segment.as_str(), offset as u64, lost)
        );
        assert_eq!(cut.segments_removed, (names.len() - 3) as u64, "{what}");
        assert_eq!(cut.bytes_cut, bytes.len() as u64 - offset as u64 + later_bytes, "{what}");
        assert_eq!(report.last_key, Some(lost - 1), "{what}");
        let mut left = damaged.clone();
        assert_eq!(segment_files(&mut left), names[..3].to_vec(), "{what}");
        check_reads(&mut log, lost - 1, what);

        // Derived again from the journal, the records go back in.
        append_all(&mut log, lost..=300);
        log.sync().unwrap();
        let (mut log, report) = open_log(log.into_storage().restart(), options);
        assert_eq!((report.last_key, report.cut), (Some(300), None), "{what}");
        check_reads(&mut log, 300, what);
    }

    // A damaged segment header (or a gap in the names) cuts the whole segment.
    let damaged = storage.fork();
    damaged.flip_bit(&damaged_segment, 1, 0);
    let (_, report) = open_log(damaged, options);
    let cut = report.cut.unwrap();
    assert_eq!((cut.offset, cut.first_key_lost), (0, first_key));
    assert!(matches!(cut.problem, Corruption::BadMagic { .. }), "{:?}", cut.problem);
    let gap = storage.fork();
    let mut handle = gap.clone();
    handle.remove(&names[4]).unwrap();
    let (_, report) = open_log(gap, options);
    assert_eq!(report.cut.unwrap().segment, names[5]);
}

/// Crash at every mutating call of a workload of appends, syncs and rolls: recovery keeps
/// every synced record, invents none, and the log carries on.
#[test]
fn crash_at_every_call_keeps_every_synced_record() {
    let options = RecordLogOptions { segment_bytes_max: 700, ..small() };
    let workload = |storage: FaultStorage| -> (u64, u64) {
        let (mut synced, mut appended) = (0, 0);
        let Ok((mut log, _)) = RecordLog::open(storage, options) else { return (0, 0) };
        for key in 1..=40 {
            if log.append(key, &record(key)).is_err() {
                break;
            }
            appended = key;
            if key % 4 == 0 {
                if log.sync().is_err() {
                    break;
                }
                synced = key;
            }
        }
        (synced, appended)
    };
    let clean = FaultStorage::new(0);
    assert_eq!(workload(clean.clone()), (40, 40));
    let calls = clean.calls();
    let mut lost_unsynced = 0;
    for crash_at in 1..=calls {
        for seed in 0..8 {
            let storage = FaultStorage::new(seed * 7_919 + crash_at);
            storage.crash_after_calls(crash_at);
            let (synced, appended) = workload(storage.clone());
            assert!(storage.is_crashed());
            let context = format!("crash at call {crash_at} of {calls}, seed {seed}, synced {synced}");
            let (mut log, report) = open_log(storage.restart(), options);
            let last = report.last_key.unwrap_or(0);
            assert!(last >= synced && last <= appended, "{context}: last key {last}");
            lost_unsynced += (last < appended) as u64;
            check_reads(&mut log, last, &context);
            append_all(&mut log, last + 1..=last + 1);
            log.sync().unwrap();
            let (_, report) = open_log(log.into_storage().restart(), options);
            assert_eq!(report.last_key, Some(last + 1), "{context}");
        }
    }
    assert!(lost_unsynced > 0, "some crash must drop unsynced records");
}

/// Readers on other threads, on real files, while the appender appends, rolls and syncs:
/// every read is a contiguous run of exactly what was appended.
#[test]
fn read_while_appending() {
    let dir = tempfile::tempdir().unwrap();
    let options = RecordLogOptions { segment_bytes_max: 64 * 1024, index_every_records: 64, ..Default::default() };
    let (mut log, _) = open_log(FileStorage::open(dir.path()).unwrap(), options);
    const LAST: u64 = 20_000;
    let readers: Vec<_> = (0..2)
        .map(|n| {
            let mut reader = log.reader().unwrap();
            std::thread::spawn(move || {
                let (mut after, mut reads) = (0, 0);
                while after < LAST {
                    let batch = reader.read(after, 100 + n * 37, 64 * 1024).unwrap();
                    if batch.is_empty() {
                        std::thread::yield_now();
                        continue;
                    }
                    reads += 1;
                    assert!(batch.len() <= 100 + n * 37);
                    for (key, payload) in batch {
                        assert_eq!((key, payload), (after + 1, record(after + 1)));
                        after = key;
                    }
                }
                reads
            })
        })
        .collect();
    for key in 1..=LAST {
        log.append(key, &record(key)).unwrap();
        if key % 50 == 0 {
            log.sync().unwrap();
        }
    }
    for reader in readers {
        let reads = reader.join().unwrap();
        assert!(reads > 0);
    }
    assert!(log.segment_count() > 20);
}

/// `truncate_after` hides the records at once and removes them durably. Records written again
/// under the same keys, with the same sizes (so into files of the same names) but other bytes,
/// are what a reader that had read the old ones reads next: it does not keep reading removed
/// files through handles it opened before.
#[test]
fn truncate_after_removes_records_and_readers_follow() {
    let dir = tempfile::tempdir().unwrap();
    let options = small();
    let (mut log, _) = open_log(FileStorage::open(dir.path()).unwrap(), options);
    append_all(&mut log, 1..=300);
    log.sync().unwrap();
    let mut reader = log.reader().unwrap();
    assert_eq!(reader.read(150, 150, usize::MAX).unwrap(), records(151..=300));
    let names_before = FileStorage::open(dir.path()).unwrap().list().unwrap();

    log.truncate_after(150).unwrap();
    assert_eq!((log.last_key(), log.synced_key(), reader.last_key()), (Some(150), Some(150), Some(150)));
    assert_eq!(reader.read(140, 100, usize::MAX).unwrap(), records(141..=150));
    let other = |key: u64| -> Vec<u8> { record(key).iter().map(|b| !b).collect() };
    for key in 151..=300 {
        log.append(key, &other(key)).unwrap();
    }
    log.sync().unwrap();
    let mut names_after = FileStorage::open(dir.path()).unwrap().list().unwrap();
    names_after.sort();
    let mut names_before = names_before;
    names_before.sort();
    assert_eq!(names_after, names_before, "the same file names, made again");
    let found = reader.read(150, 150, usize::MAX).unwrap();
    let expected: Vec<(u64, Vec<u8>)> = (151..=300).map(|k| (k, other(k))).collect();
    assert!(found == expected, "the reader read the removed files");
    drop(log);

    let (mut log, report) = open_log(FileStorage::open(dir.path()).unwrap(), options);
    assert_eq!((report.last_key, report.cut), (Some(300), None));
    assert_eq!(log.read(149, 2, usize::MAX).unwrap()[0], (150, record(150)));

    // Before the first record: the log is empty, and starts again anywhere.
    log.truncate_after(0).unwrap();
    assert_eq!((log.last_key(), log.read(0, 10, usize::MAX).unwrap()), (None, vec![]));
    log.append(77, b"a new start").unwrap();
    log.sync().unwrap();
    let (mut log, report) = open_log(FileStorage::open(dir.path()).unwrap(), options);
    assert_eq!(report.records, 1);
    assert_eq!(log.read(0, 10, usize::MAX).unwrap(), vec![(77, b"a new start".to_vec())]);
}

#[test]
fn full_disk_rejects_the_write_and_the_log_stays_usable() {
    let (mut log, _) = open_log(FaultStorage::new(96), RecordLogOptions::default());
    append_all(&mut log, 1..=10);
    log.sync().unwrap();
    let used: u64 = segment_files(log.storage_mut()).iter().map(|n| log.storage_mut().len(n).unwrap()).sum();
    log.storage_mut().disk_full_after_bytes(used + 100);

    // At sync: the buffered records stay buffered, nothing is poisoned.
    append_all(&mut log, 11..=20);
    match log.sync() {
        Err(RecordLogError::Io { op: "write", source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull)
        }
        other => panic!("expected a full disk, found {other:?}"),
    }
    assert!(!log.is_poisoned());
    assert_eq!(log.synced_key(), Some(10));

    // At append, when the buffer fills: that record is not appended.
    let big = vec![9; 200 * 1024];
    let mut key = 21;
    let error = loop {
        match log.append(key, &big) {
            Ok(()) => key += 1,
            Err(error) => break error,
        }
    };
    assert!(!error.is_fatal(), "{error}");
    assert_eq!(log.last_key(), Some(key - 1));

    log.storage_mut().clear_disk_full();
    log.append(key, &big).unwrap();
    log.sync().unwrap();
    let (mut log, report) = open_log(log.into_storage().restart(), RecordLogOptions::default());
    assert_eq!((report.last_key, report.cut), (Some(key), None));
    assert_eq!(log.read(0, 20, usize::MAX).unwrap(), records(1..=20));
    assert_eq!(log.read(key - 1, 1, usize::MAX).unwrap(), vec![(key, big)]);
}

#[test]
fn failed_sync_poisons_the_log() {
    let mut log = log_with(97, 10, small());
    append_all(&mut log, 11..=12);
    log.storage_mut().fail_next_sync();
    let error = log.sync().unwrap_err();
    assert!(matches!(error, RecordLogError::SyncFailed { .. }) && error.is_fatal(), "{error}");
    let calls = log.storage_mut().calls();
    assert!(matches!(log.append(13, b"x"), Err(RecordLogError::Poisoned)));
    assert!(matches!(log.sync(), Err(RecordLogError::Poisoned)));
    assert!(matches!(log.truncate_after(5), Err(RecordLogError::Poisoned)));
    assert_eq!(log.storage_mut().calls(), calls, "no retried sync");
    assert_eq!(log.read(0, 100, usize::MAX).unwrap(), records(1..=10), "readers keep what was durable");
}

/// Written by `examples/write_record_fixture.rs` with record log format version 1. If this
/// fails, the format changed: bump `RECORD_LOG_FORMAT_VERSION` and add a new fixture.
#[test]
fn fixture_records_v1_reads_back_and_is_what_the_log_writes() {
    let copy = fixture_copy("records-v1");
    let options = RecordLogOptions { segment_bytes_max: 100, ..Default::default() };
    let (mut log, report) = open_log(FileStorage::open(copy.path()).unwrap(), options);
    assert_eq!(report, RecordLogReport { last_key: Some(9), records: 9, segments: 3, cut: None });
    let expected: Vec<(u64, Vec<u8>)> = (1..=9).map(|k| (k, format!("fixture record {k}").into_bytes())).collect();
    assert_eq!(log.read(0, 100, usize::MAX).unwrap(), expected);

    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open_log(FileStorage::open(dir.path()).unwrap(), options);
    for (key, payload) in &expected {
        log.append(*key, payload).unwrap();
    }
    log.sync().unwrap();
    for first_key in [1, 4, 7] {
        let name = record_segment_name(first_key);
        let written = std::fs::read(dir.path().join(&name)).unwrap();
        assert_eq!(written, std::fs::read(fixture_dir("records-v1").join(&name)).unwrap(), "{name}");
    }
}
