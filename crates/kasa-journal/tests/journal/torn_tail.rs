//! A crash during an append leaves a prefix of the last frame, maybe with garbage at its end.
//! Recovery cuts exactly that frame, at every possible tear, and nothing more.

use kasa_journal::{segment_name, Options, TornTail, FRAME_HEADER_BYTES};

use crate::common::*;

/// Garbled bytes at the end of a torn prefix, as in `FaultStorage::restart`.
const GARBLE_BYTES: usize = 8;

/// Tears the last frame of a synced journal of `n` frames at every length, plain and garbled,
/// and checks recovery cuts it and keeps frames `1..n`.
fn tear_last_frame_everywhere(seed: u64, n: u64, options: Options) {
    let journal = journal_with(seed, n, options);
    let mut storage = journal.into_storage().restart();
    let segment = segment_names(&mut storage).pop().unwrap();
    let bytes = storage.file_bytes(&segment).unwrap();
    let end = bytes.len();
    let start = end - FRAME_HEADER_BYTES - payload(n).len();
    assert_eq!(seq_at(&bytes, start as u64), n);

    for cut in start + 1..=end {
        for garbled in [false, true] {
            if cut == end && !garbled {
                continue; // That is the intact frame.
            }
            let mut torn = bytes[..cut].to_vec();
            if garbled {
                let from = cut - (cut - start).min(GARBLE_BYTES);
                for byte in &mut torn[from..] {
                    *byte ^= 0xa5;
                }
            }
            let context = format!("{segment} cut at {cut} (frame at {start}), garbled {garbled}");
            let damaged = storage.fork();
            damaged.set_file_bytes(&segment, torn);
            let (mut journal, recovered) = open(damaged.clone(), options);
            assert_frames(&recovered, 1, n - 1, &context);
            let expected = TornTail { segment: segment.clone(), offset: start as u64, bytes_cut: (cut - start) as u64 };
            assert_eq!(recovered.torn_tail, Some(expected), "{context}");
            assert_eq!(damaged.file_bytes(&segment).unwrap(), bytes[..start], "{context}");

            // The cut is durable and the journal continues from it.
            append(&mut journal, n..=n);
            journal.sync().unwrap();
            let (_, recovered) = open(journal.into_storage().restart(), options);
            assert_frames(&recovered, 1, n, &context);
            assert_eq!(recovered.torn_tail, None, "{context}");
        }
    }
}

#[test]
fn torn_last_frame_in_a_single_segment() {
    // Frame 5 has a 185-byte payload.
    tear_last_frame_everywhere(10, 5, Options::default());
}

#[test]
fn torn_last_frame_after_segment_rolls() {
    let options = small_options();
    // Find an n whose last segment holds several frames, and one where it holds just one.
    let mut several = None;
    let mut single = None;
    for n in 20..60 {
        let mut storage = journal_with(11, n, options).into_storage();
        let segment = segment_names(&mut storage).pop().unwrap();
        let frames = frame_spans(&storage.file_bytes(&segment).unwrap()).len();
        if payload(n).len() < 10 {
            continue; // Keep the loop over tear points meaningful.
        }
        match frames {
            1 if single.is_none() => single = Some(n),
            f if f >= 3 && several.is_none() => several = Some(n),
            _ => {}
        }
    }
    tear_last_frame_everywhere(12, several.unwrap(), options);
    tear_last_frame_everywhere(13, single.unwrap(), options);
}

#[test]
fn torn_only_frame_leaves_an_empty_journal() {
    tear_last_frame_everywhere(14, 1, Options::default());
}

/// More garbage than one frame could be is not a torn append: acknowledged frames might be
/// hidden in it, so recovery refuses to guess.
#[test]
fn garbage_longer_than_one_frame_is_corruption() {
    let options = Options { frame_payload_bytes_max: 256, ..Options::default() };
    let journal = journal_with(15, 3, options);
    let storage = journal.into_storage();
    let segment = segment_name(1);
    let mut bytes = storage.file_bytes(&segment).unwrap();
    let end = bytes.len() as u64;
    bytes.extend(std::iter::repeat_n(0xee, FRAME_HEADER_BYTES + 257));
    storage.set_file_bytes(&segment, bytes);
    let result = kasa_journal::Journal::open(storage, options);
    assert_corrupt(result, &segment, end, 4, "long garbage tail");
}

/// A complete, checksummed frame at the tail that does not continue the chain is not torn:
/// a torn write cannot produce a valid header with the wrong seq.
#[test]
fn valid_frame_with_wrong_seq_at_the_tail_is_corruption() {
    let journal = journal_with(16, 5, Options::default());
    let storage = journal.into_storage();
    let segment = segment_name(1);
    let mut bytes = storage.file_bytes(&segment).unwrap();
    let end = bytes.len() as u64;
    let (offset, len) = frame_spans(&bytes)[2];
    let copy = bytes[offset as usize..(offset + len) as usize].to_vec();
    bytes.extend(copy);
    storage.set_file_bytes(&segment, bytes);
    let result = kasa_journal::Journal::open(storage, Options::default());
    assert_corrupt(result, &segment, end, 6, "replayed frame 3 at the tail");
}

/// A tear whose header is garbled but is followed by a valid frame header is not a tail: a
/// frame written after it may have been acknowledged.
#[test]
fn bad_header_followed_by_a_valid_frame_is_corruption() {
    let journal = journal_with(17, 6, Options::default());
    let storage = journal.into_storage();
    let segment = segment_name(1);
    let bytes = storage.file_bytes(&segment).unwrap();
    let (offset, _) = frame_spans(&bytes)[4];
    // The header checksum of frame 5; frame 6 follows it.
    storage.flip_bit(&segment, offset + 70, 3);
    let result = kasa_journal::Journal::open(storage, Options::default());
    assert_corrupt(result, &segment, offset, 5, "garbled header of frame 5");
}
