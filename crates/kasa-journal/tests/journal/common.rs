//! Helpers shared by the journal tests: a deterministic workload and ways to look at raw files.

use std::io::Read;
use std::path::{Path, PathBuf};

use kasa_journal::{Frame, Journal, JournalError, Options, Recovered, Storage, TornTail, FRAME_HEADER_BYTES};

pub use kasa_journal::FaultStorage;

/// Payload of frame `seq`: sizes vary from empty to a few hundred bytes, contents depend on seq.
pub fn payload(seq: u64) -> Vec<u8> {
    let len = (seq * 37 % 301) as usize;
    (0..len).map(|i| (seq as usize * 31 + i * 7) as u8).collect()
}

/// Timestamp of frame `seq`: strictly increasing, not contiguous.
pub fn timestamp(seq: u64) -> u64 {
    1_700_000_000_000 + seq * 3
}

pub fn frame(seq: u64) -> Frame {
    Frame { seq, timestamp: timestamp(seq), payload: payload(seq) }
}

pub fn frames(seqs: std::ops::RangeInclusive<u64>) -> Vec<Frame> {
    seqs.map(frame).collect()
}

pub fn snapshot_payload(seq: u64) -> Vec<u8> {
    format!("state as of frame {seq}").into_bytes()
}

/// Small segments, so a few dozen frames span several segment files.
pub fn small_options() -> Options {
    Options { segment_bytes_max: 1024, frame_payload_bytes_max: 4096 }
}

/// A snapshot read back whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: u64,
    pub timestamp: u64,
    pub payload: Vec<u8>,
}

/// What recovery gave before it streamed: the snapshot and the frames after it, in memory.
/// Tests compare this with what was written, so every workload checks the streaming path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub snapshot: Option<Snapshot>,
    pub frames: Vec<Frame>,
    pub torn_tail: Option<TornTail>,
}

/// Opens the journal and loads everything through the streaming API (see [`load`]).
pub fn open(storage: FaultStorage, options: Options) -> (Journal<FaultStorage>, Loaded) {
    let (mut journal, recovered) = match Journal::open(storage, options) {
        Ok(opened) => opened,
        Err(error) => panic!("open failed: {error}"),
    };
    let loaded = load(&mut journal, &recovered);
    (journal, loaded)
}

/// Streams the recovered snapshot and replays the frames after it, and cross-checks what
/// `open` reported: the frame count and payload bytes, and a replay from frame 1.
pub fn load<S: Storage>(journal: &mut Journal<S>, recovered: &Recovered) -> Loaded {
    let snapshot = recovered.snapshot.as_ref().map(|info| {
        let mut reader = journal.open_snapshot(info.seq).unwrap_or_else(|e| panic!("open snapshot {}: {e}", info.seq));
        assert_eq!(reader.info(), info);
        let mut payload = Vec::new();
        reader.read_to_end(&mut payload).unwrap_or_else(|e| panic!("read snapshot {}: {e}", info.seq));
        assert_eq!(payload.len() as u64, info.payload_bytes);
        Snapshot { seq: info.seq, timestamp: info.timestamp, payload }
    });
    let frames = replayed(journal, recovered.replay_after());
    assert_eq!(frames.len() as u64, recovered.frames_after_snapshot);
    let payload_bytes: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
    assert_eq!(payload_bytes, recovered.payload_bytes_after_snapshot);
    let all = replayed(journal, 0);
    assert_eq!(all.len() as u64, journal.last_seq());
    assert_eq!(all[recovered.replay_after() as usize..], frames[..], "replay from frame 1 ends the same");
    Loaded { snapshot, frames, torn_tail: recovered.torn_tail.clone() }
}

/// Every frame after `after_seq`, through `Journal::replay`.
pub fn replayed<S: Storage>(journal: &mut Journal<S>, after_seq: u64) -> Vec<Frame> {
    let mut frames = Vec::new();
    let count = journal
        .replay(after_seq, |frame| -> Result<(), JournalError> {
            frames.push(frame.clone());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("replay after {after_seq}: {e}"));
    assert_eq!(count, frames.len() as u64);
    frames
}

pub fn append(journal: &mut Journal<FaultStorage>, seqs: std::ops::RangeInclusive<u64>) {
    for seq in seqs {
        journal.append(seq, timestamp(seq), &payload(seq)).unwrap_or_else(|e| panic!("append {seq}: {e}"));
    }
}

/// A synced journal of frames `1..=n`, and its storage.
pub fn journal_with(seed: u64, n: u64, options: Options) -> Journal<FaultStorage> {
    let (mut journal, _) = open(FaultStorage::new(seed), options);
    append(&mut journal, 1..=n);
    journal.sync().unwrap();
    journal
}

/// Sorted names of the segment files.
pub fn segment_names(storage: &mut FaultStorage) -> Vec<String> {
    let mut names: Vec<String> = storage.list().unwrap().into_iter().filter(|n| n.ends_with(".seg")).collect();
    names.sort();
    names
}

/// (offset, total length) of every frame in a segment's bytes, read from the length fields.
pub fn frame_spans(bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    let mut offset = 0;
    while offset + FRAME_HEADER_BYTES <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset + 24..offset + 28].try_into().unwrap());
        let total = FRAME_HEADER_BYTES + len as usize;
        spans.push((offset as u64, total as u64));
        offset += total;
    }
    spans
}

/// The seq stored in the frame header at `offset`.
pub fn seq_at(bytes: &[u8], offset: u64) -> u64 {
    let at = offset as usize + 8;
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Asserts `result` is a corruption error at exactly this place.
pub fn assert_corrupt<T>(result: Result<T, JournalError>, segment: &str, offset: u64, seq: u64, context: &str) {
    match result {
        Err(JournalError::Corrupt { segment: found_segment, offset: found_offset, seq: found_seq, problem }) => {
            assert_eq!(
                (found_segment.as_str(), found_offset, found_seq),
                (segment, offset, seq),
                "{context}: wrong place for {problem}"
            );
        }
        Err(other) => panic!("{context}: expected a corruption error, found {other}"),
        Ok(_) => panic!("{context}: expected a corruption error, found success"),
    }
}

/// Asserts that recovered frames (after the snapshot, if any) are `from..=to` exactly as written.
pub fn assert_frames(recovered: &Loaded, from: u64, to: u64, context: &str) {
    let seqs: Vec<u64> = recovered.frames.iter().map(|f| f.seq).collect();
    let expected: Vec<u64> = (from..=to).collect();
    assert_eq!(seqs, expected, "{context}: recovered seqs");
    for found in &recovered.frames {
        assert_eq!(found, &frame(found.seq), "{context}: frame {} differs", found.seq);
    }
}

/// A checked-in fixture directory, `tests/fixtures/{name}`.
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A copy of a fixture, because opening a journal or a record log may write to it.
pub fn fixture_copy(name: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    copy
}
