//! Shipping frames to a follower: `FrameReader` reads committed frames from any position,
//! across segment rolls, as stored, never past the committed seq; `parse_frame` gives back
//! what was appended, with the hash the next frame records; a follower's journal that appends
//! the shipped frames holds the primary's bytes.

use crate::common::*;
use kasa_journal::{parse_frame, FrameReader, Journal, Storage, FRAME_HEADER_BYTES, HASH_ZERO};

/// Frames 1..=40 on small segments (several rolls), synced; and a handle on its disk (a clone
/// of a `FaultStorage` shares its files, as a second `FileStorage` on the directory would).
fn primary() -> (Journal<FaultStorage>, FaultStorage) {
    let disk = FaultStorage::new(11);
    let (mut journal, _) = Journal::open(disk.try_clone().unwrap(), small_options()).unwrap();
    for f in frames(1..=40) {
        journal.append(f.seq, f.timestamp, &f.payload).unwrap();
    }
    journal.sync().unwrap();
    (journal, disk)
}

/// Every frame after `after` up to `committed`, in answers of at most `bytes_max` bytes, and
/// how many answers it took.
fn ship(disk: &FaultStorage, after: u64, committed: u64, bytes_max: usize) -> (Vec<u8>, usize) {
    let mut reader = FrameReader::new(disk.try_clone().unwrap(), after, small_options().frame_payload_bytes_max);
    let (mut all, mut answers) = (Vec::new(), 0);
    loop {
        let mut out = Vec::new();
        let n = reader.read(committed, bytes_max, &mut out).unwrap();
        if n == 0 {
            assert!(out.is_empty());
            return (all, answers);
        }
        assert!(out.len() <= bytes_max || n == 1, "an answer over the bound holds one frame");
        answers += 1;
        all.extend(out);
    }
}

#[test]
fn frames_come_back_as_appended_from_any_position_across_segments() {
    let (journal, disk) = primary();
    assert!(journal.segment_count() >= 5, "the workload spans several segments");
    for after in [0, 1, 7, 19, 39, 40] {
        for bytes_max in [1, 500, 1 << 20] {
            let (bytes, answers) = ship(&disk, after, 40, bytes_max);
            let mut rest = &bytes[..];
            let mut seq = after;
            let mut prev = None;
            while !rest.is_empty() {
                let (frame, len) = parse_frame(rest, 4096).unwrap();
                seq += 1;
                assert_eq!((frame.seq, frame.timestamp, frame.payload), (seq, timestamp(seq), &payload(seq)[..]));
                if let Some(prev) = prev {
                    assert_eq!(frame.prev_hash, prev, "frame {seq} chains onto the one before");
                } else if seq == 1 {
                    assert_eq!(frame.prev_hash, HASH_ZERO);
                }
                prev = Some(frame.hash);
                rest = &rest[len..];
            }
            assert_eq!(seq, 40, "after {after}, {bytes_max} bytes per answer");
            if bytes_max == 1 {
                assert_eq!(answers as u64, 40 - after, "one frame per answer when none fits");
            }
        }
    }
}

#[test]
fn nothing_past_the_committed_seq_is_read() {
    let (_journal, disk) = primary();
    let (bytes, _) = ship(&disk, 10, 25, 1 << 20);
    let (mut rest, mut last) = (&bytes[..], 0);
    while !rest.is_empty() {
        let (frame, len) = parse_frame(rest, 4096).unwrap();
        last = frame.seq;
        rest = &rest[len..];
    }
    assert_eq!(last, 25);
    assert!(ship(&disk, 25, 25, 1 << 20).0.is_empty());
}

#[test]
fn a_follower_appending_the_shipped_frames_holds_the_primarys_bytes() {
    let (primary, disk) = primary();
    let (bytes, _) = ship(&disk, 0, 40, 1 << 20);
    let (mut follower, _) = Journal::open(FaultStorage::new(12), small_options()).unwrap();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (frame, len) = parse_frame(rest, 4096).unwrap();
        assert_eq!(frame.prev_hash, follower.last_hash());
        follower.append(frame.seq, frame.timestamp, frame.payload).unwrap();
        assert_eq!(follower.last_hash(), frame.hash);
        rest = &rest[len..];
    }
    follower.sync().unwrap();
    assert_eq!(follower.last_hash(), primary.last_hash());
}

#[test]
fn a_damaged_frame_is_refused_on_both_sides() {
    let (_journal, disk) = primary();
    let (bytes, _) = ship(&disk, 0, 3, 1 << 20);
    let (_, len) = parse_frame(&bytes, 4096).unwrap();
    // A flipped payload byte, a flipped header byte, a cut frame.
    let mut payload_flip = bytes.clone();
    payload_flip[len - 1] ^= 1;
    let mut header_flip = bytes.clone();
    header_flip[9] ^= 1;
    for bad in [&payload_flip[..], &header_flip[..], &bytes[..FRAME_HEADER_BYTES - 1], &bytes[..len - 1]] {
        assert!(parse_frame(bad, 4096).is_err());
    }
    // On the primary's disk: the reader checks what it ships.
    let storage = disk.try_clone().unwrap();
    storage.flip_bit("journal-00000000000000000001.seg", FRAME_HEADER_BYTES as u64, 0);
    let mut reader = FrameReader::new(storage, 0, 4096);
    let error = reader.read(40, 1 << 20, &mut Vec::new()).unwrap_err().to_string();
    assert!(error.contains("frame 1 payload checksum mismatch"), "{error}");
}
