//! Reading the journal back: the directory listing, the frame-by-frame walk over segments that
//! checks checksums and the hash chain, the torn-tail classification, and snapshot checks.
//!
//! [`Journal::open`](crate::Journal::open), [`Journal::replay`](crate::Journal::replay) and
//! [`verify`](crate::verify) all use [`walk_segment`], so the rules are written once. Memory is
//! bounded by one frame: payloads are read into one reused buffer and handed to a callback,
//! never collected. The walk never modifies storage: cutting a torn tail is the caller's
//! decision (recovery cuts it, `verify` only reports it).

use std::ops::ControlFlow;

use crate::error::{Corruption, JournalError};
use crate::format::{
    self, frame_hash, hex, FrameHeader, Hash, SnapshotHeader, FRAME_HEADER_BYTES, FRAME_MAGIC, HASH_ZERO,
    SNAPSHOT_HEADER_BYTES,
};
use crate::storage::Storage;
use crate::{Frame, TornTail};

/// Bytes of a snapshot payload read or written per storage call: large enough that a
/// multi-gigabyte snapshot costs few calls, small enough that streaming one costs no memory
/// worth counting.
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// The journal directory, sorted.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// (first seq, name), by first seq.
    pub segments: Vec<(u64, String)>,
    /// (seq, name), by seq.
    pub snapshots: Vec<(u64, String)>,
    /// Files ending in `.tmp`: writes that never completed.
    pub temps: Vec<String>,
}

impl Listing {
    pub fn read<S: Storage>(storage: &mut S) -> Result<Self, JournalError> {
        let names = storage.list().map_err(|e| JournalError::io("list", ".", e))?;
        let mut listing = Listing::default();
        for name in names {
            if let Some(seq) = format::parse_segment_name(&name) {
                listing.segments.push((seq, name));
            } else if let Some(seq) = format::parse_snapshot_name(&name) {
                listing.snapshots.push((seq, name));
            } else if name.ends_with(format::TEMP_SUFFIX) {
                listing.temps.push(name);
            } else {
                // Not ours; leave it alone rather than guess what it is.
                tracing::warn!(file = %name, "unknown file in journal directory, ignored");
            }
        }
        listing.segments.sort();
        listing.snapshots.sort();
        Ok(listing)
    }
}

/// A segment as recovery found it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFile {
    pub name: String,
    pub first_seq: u64,
    /// Length of the valid frames (a torn tail is not counted).
    pub len: u64,
    /// The end of the chain just before this segment's first frame, as recovery checked it:
    /// where a replay that starts in this segment picks up the chain.
    pub prev: ChainEnd,
}

/// The end of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainEnd {
    pub seq: u64,
    pub timestamp: u64,
    pub hash: Hash,
}

impl ChainEnd {
    /// Before frame 1.
    pub const START: ChainEnd = ChainEnd { seq: 0, timestamp: 0, hash: HASH_ZERO };
}

/// What a walk over all segments found.
#[derive(Debug)]
pub(crate) struct Scan {
    pub segments: Vec<SegmentFile>,
    pub end: ChainEnd,
    pub frames: u64,
    pub payload_bytes: u64,
    pub torn_tail: Option<TornTail>,
}

/// A frame that could not be read whole, and how it failed (which decides torn vs corrupt).
struct BadFrame {
    problem: Corruption,
    kind: BadKind,
}

enum BadKind {
    /// Fewer than a header's bytes are left.
    HeaderIncomplete,
    /// A whole header's bytes are there but they are not a valid header.
    HeaderInvalid,
    /// The header is valid but claims more than the limit.
    TooLong,
    /// The header is valid but the file ends inside the payload.
    PayloadIncomplete,
    /// Header and payload are there but the payload checksum fails; `end` is where the frame ends.
    PayloadChecksum { end: u64 },
}

/// A frame read whole with valid checksums (its place in the chain is not checked yet). Its
/// payload is in the buffer the caller passed.
struct GoodFrame {
    header: FrameHeader,
    hash: Hash,
}

impl GoodFrame {
    fn len(&self) -> u64 {
        FRAME_HEADER_BYTES as u64 + self.header.payload_len as u64
    }
}

/// Reads the frame at `offset` of a segment of `file_len` bytes, its payload into `payload`.
fn read_frame<S: Storage>(
    storage: &mut S,
    segment: &str,
    offset: u64,
    file_len: u64,
    payload_max: u32,
    payload: &mut Vec<u8>,
) -> Result<Result<GoodFrame, BadFrame>, JournalError> {
    let remaining = file_len - offset;
    if remaining < FRAME_HEADER_BYTES as u64 {
        return Ok(Err(BadFrame {
            problem: Corruption::TruncatedHeader { expected: FRAME_HEADER_BYTES as u64, found: remaining },
            kind: BadKind::HeaderIncomplete,
        }));
    }
    let mut header_bytes = [0; FRAME_HEADER_BYTES];
    storage.read_at(segment, offset, &mut header_bytes).map_err(|e| JournalError::io("read", segment, e))?;
    let header = match FrameHeader::decode(&header_bytes) {
        Ok(header) => header,
        Err(problem) => return Ok(Err(BadFrame { problem, kind: BadKind::HeaderInvalid })),
    };
    if header.payload_len > payload_max {
        return Ok(Err(BadFrame {
            problem: Corruption::PayloadTooLong { max: payload_max as u64, found: header.payload_len as u64 },
            kind: BadKind::TooLong,
        }));
    }
    let payload_remaining = remaining - FRAME_HEADER_BYTES as u64;
    if (header.payload_len as u64) > payload_remaining {
        return Ok(Err(BadFrame {
            problem: Corruption::TruncatedPayload { expected: header.payload_len as u64, found: payload_remaining },
            kind: BadKind::PayloadIncomplete,
        }));
    }
    // The buffer grows to the largest frame seen, bounded by both the configured limit and the
    // file length, checked above.
    payload.resize(header.payload_len as usize, 0);
    storage
        .read_at(segment, offset + FRAME_HEADER_BYTES as u64, payload)
        .map_err(|e| JournalError::io("read", segment, e))?;
    let found = crc32c::crc32c(payload);
    if found != header.payload_checksum {
        let end = offset + FRAME_HEADER_BYTES as u64 + payload.len() as u64;
        return Ok(Err(BadFrame {
            problem: Corruption::PayloadChecksum { expected: header.payload_checksum, found },
            kind: BadKind::PayloadChecksum { end },
        }));
    }
    let hash = frame_hash(&header_bytes, payload);
    Ok(Ok(GoodFrame { header, hash }))
}
/// Whether the bad frame at `offset` of the last segment is a torn append: bytes that could be
/// a prefix of one frame write and nothing more. See `docs/journal-format.md`, "Recovery".
fn is_torn<S: Storage>(
    storage: &mut S,
    segment: &str,
    offset: u64,
    file_len: u64,
    payload_max: u32,
    bad: &BadFrame,
) -> Result<bool, JournalError> {
    match bad.kind {
        BadKind::HeaderIncomplete | BadKind::PayloadIncomplete => Ok(true),
        BadKind::TooLong => Ok(false),
        BadKind::PayloadChecksum { end } => Ok(end == file_len),
        BadKind::HeaderInvalid => {
            // The length field cannot be trusted, so bound the tail by the largest frame and
            // look for any valid frame header after this one: if there is one, acknowledged
            // frames may follow and cutting would lose them.
            let remaining = file_len - offset;
            if remaining > FRAME_HEADER_BYTES as u64 + payload_max as u64 {
                return Ok(false);
            }
            let mut rest = vec![0; remaining as usize];
            storage.read_at(segment, offset, &mut rest).map_err(|e| JournalError::io("read", segment, e))?;
            Ok(!contains_frame_header(&rest[1..]))
        }
    }
}

/// Whether a valid frame header starts at any byte of `bytes`.
fn contains_frame_header(bytes: &[u8]) -> bool {
    if bytes.len() < FRAME_HEADER_BYTES {
        return false;
    }
    (0..=bytes.len() - FRAME_HEADER_BYTES).any(|at| {
        bytes[at..at + 4] == FRAME_MAGIC
            && FrameHeader::decode(bytes[at..at + FRAME_HEADER_BYTES].try_into().expect("header-sized slice")).is_ok()
    })
}

/// What [`walk_segment`] calls for each good frame, with its hash; `Break` stops the walk.
pub(crate) type Visit<'a, E> = dyn FnMut(&Frame, &Hash) -> Result<ControlFlow<()>, E> + 'a;

/// What [`walk_segment`] found.
pub(crate) struct SegmentWalk {
    /// The chain after the last good frame walked.
    pub end: ChainEnd,
    /// Where the walk stopped: the end of the last good frame walked.
    pub offset: u64,
    /// The torn last frame, if the walk was allowed to find one.
    pub torn_tail: Option<TornTail>,
}

/// Walks the frames of one segment from offset 0 to `file_len`, checking checksums, seq
/// contiguity, strictly increasing timestamps and the hash chain from `start` (the chain just
/// before the segment's first frame), and hands each good frame and its hash to `visit`, which
/// may stop the walk. `frame` is the reused buffer the frames are read into.
///
/// A bad frame is corruption, except in the last segment (`last`) where one that could be a
/// torn append ends the walk and is reported (see `docs/journal-format.md`, "Recovery").
#[allow(clippy::too_many_arguments)] // One call per use, each argument a different concern.
pub(crate) fn walk_segment<S: Storage, E: From<JournalError>>(
    storage: &mut S,
    name: &str,
    file_len: u64,
    start: ChainEnd,
    last: bool,
    payload_max: u32,
    frame: &mut Frame,
    visit: &mut Visit<'_, E>,
) -> Result<SegmentWalk, E> {
    let mut end = start;
    let mut offset = 0;
    while offset < file_len {
        let expected = end.seq + 1;
        let corrupt = |problem| JournalError::Corrupt { segment: name.to_string(), offset, seq: expected, problem };
        let good = match read_frame(storage, name, offset, file_len, payload_max, &mut frame.payload)? {
            Ok(good) => good,
            Err(bad) => {
                if last && is_torn(storage, name, offset, file_len, payload_max, &bad)? {
                    let torn_tail = TornTail { segment: name.to_string(), offset, bytes_cut: file_len - offset };
                    return Ok(SegmentWalk { end, offset, torn_tail: Some(torn_tail) });
                }
                return Err(corrupt(bad.problem).into());
            }
        };
        let header = &good.header;
        if header.seq != expected {
            return Err(corrupt(Corruption::SeqMismatch { expected, found: header.seq }).into());
        }
        if header.timestamp <= end.timestamp {
            let problem = Corruption::TimestampNotIncreasing { previous: end.timestamp, found: header.timestamp };
            return Err(corrupt(problem).into());
        }
        if header.prev_hash != end.hash {
            let problem = Corruption::PrevHashMismatch { expected: hex(&end.hash), found: hex(&header.prev_hash) };
            return Err(corrupt(problem).into());
        }
        offset += good.len();
        end = ChainEnd { seq: header.seq, timestamp: header.timestamp, hash: good.hash };
        frame.seq = header.seq;
        frame.timestamp = header.timestamp;
        if visit(frame, &good.hash)?.is_break() {
            break;
        }
    }
    Ok(SegmentWalk { end, offset, torn_tail: None })
}

/// Walks every frame of every segment in order from frame 1 (see [`walk_segment`]) and hands
/// each valid frame and its hash to `on_frame`. A torn tail of the last segment is reported,
/// not cut.
pub(crate) fn scan<S: Storage>(
    storage: &mut S,
    segments: &[(u64, String)],
    payload_max: u32,
    on_frame: &mut dyn FnMut(&Frame, &Hash) -> Result<(), JournalError>,
) -> Result<Scan, JournalError> {
    let mut result = Scan {
        segments: Vec::with_capacity(segments.len()),
        end: ChainEnd::START,
        frames: 0,
        payload_bytes: 0,
        torn_tail: None,
    };
    let mut frame = Frame { seq: 0, timestamp: 0, payload: Vec::new() };
    for (index, (first_seq, name)) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        let prev = result.end;
        if *first_seq != prev.seq + 1 {
            return Err(JournalError::SegmentOutOfOrder {
                segment: name.clone(),
                expected: prev.seq + 1,
                found: *first_seq,
            });
        }
        let file_len = storage.len(name).map_err(|e| JournalError::io("len", name, e))?;
        if file_len == 0 && !last {
            return Err(JournalError::Corrupt {
                segment: name.clone(),
                offset: 0,
                seq: prev.seq + 1,
                problem: Corruption::EmptySegment,
            });
        }
        let (frames, payload_bytes) = (&mut result.frames, &mut result.payload_bytes);
        let mut visit = |frame: &Frame, hash: &Hash| {
            *frames += 1;
            *payload_bytes += frame.payload.len() as u64;
            on_frame(frame, hash).map(|()| ControlFlow::Continue(()))
        };
        let walk = walk_segment(storage, name, file_len, prev, last, payload_max, &mut frame, &mut visit)?;
        result.end = walk.end;
        result.torn_tail = walk.torn_tail;
        result.segments.push(SegmentFile { name: name.clone(), first_seq: *first_seq, len: walk.offset, prev });
    }
    Ok(result)
}

/// Reads the frames of `segment` (which must hold `seq`) up to frame `seq` and returns its hash,
/// checking checksums and the chain on the way. Used to anchor a snapshot taken behind the tip.
pub(crate) fn frame_hash_at<S: Storage>(
    storage: &mut S,
    segment: &SegmentFile,
    seq: u64,
    payload_max: u32,
) -> Result<Hash, JournalError> {
    let mut frame = Frame { seq: 0, timestamp: 0, payload: Vec::new() };
    let mut found = None;
    let mut visit = |frame: &Frame, hash: &Hash| -> Result<_, JournalError> {
        if frame.seq == seq {
            found = Some(*hash);
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    };
    walk_segment(storage, &segment.name, segment.len, segment.prev, false, payload_max, &mut frame, &mut visit)?;
    Ok(found.expect("the segment holds the frame"))
}

/// Reads and checks a snapshot file's header against its name and its length. The outer error
/// is an I/O failure; the inner one says why the file is invalid. The payload is not read.
pub(crate) fn read_snapshot_header<S: Storage>(
    storage: &mut S,
    name: &str,
    seq_from_name: u64,
) -> Result<Result<SnapshotHeader, Corruption>, JournalError> {
    let file_len = storage.len(name).map_err(|e| JournalError::io("len", name, e))?;
    if file_len < SNAPSHOT_HEADER_BYTES as u64 {
        return Ok(Err(Corruption::TruncatedHeader { expected: SNAPSHOT_HEADER_BYTES as u64, found: file_len }));
    }
    let mut header_bytes = [0; SNAPSHOT_HEADER_BYTES];
    storage.read_at(name, 0, &mut header_bytes).map_err(|e| JournalError::io("read", name, e))?;
    let header = match SnapshotHeader::decode(&header_bytes) {
        Ok(header) => header,
        Err(problem) => return Ok(Err(problem)),
    };
    if header.seq != seq_from_name {
        return Ok(Err(Corruption::SeqMismatch { expected: seq_from_name, found: header.seq }));
    }
    // Nothing holds a snapshot in memory, so there is no size limit; the length must only
    // agree with the file (and a header claiming more than the file has is caught here).
    let expected_len = (SNAPSHOT_HEADER_BYTES as u64).checked_add(header.payload_len);
    if expected_len != Some(file_len) {
        let expected = expected_len.unwrap_or(u64::MAX);
        return Ok(Err(Corruption::FileLength { expected, found: file_len }));
    }
    Ok(Ok(header))
}

/// Checks a whole snapshot file: header, length, and the payload checksum, streaming the
/// payload through a buffer of [`SNAPSHOT_CHUNK_BYTES`].
pub(crate) fn check_snapshot<S: Storage>(
    storage: &mut S,
    name: &str,
    seq_from_name: u64,
) -> Result<Result<SnapshotHeader, Corruption>, JournalError> {
    let header = match read_snapshot_header(storage, name, seq_from_name)? {
        Ok(header) => header,
        Err(problem) => return Ok(Err(problem)),
    };
    let mut chunk = vec![0; header.payload_len.min(SNAPSHOT_CHUNK_BYTES as u64) as usize];
    let mut checksum = 0;
    let mut offset = 0;
    while offset < header.payload_len {
        let len = (header.payload_len - offset).min(chunk.len() as u64) as usize;
        let at = SNAPSHOT_HEADER_BYTES as u64 + offset;
        storage.read_at(name, at, &mut chunk[..len]).map_err(|e| JournalError::io("read", name, e))?;
        checksum = crc32c::crc32c_append(checksum, &chunk[..len]);
        offset += len as u64;
    }
    if checksum != header.payload_checksum {
        return Ok(Err(Corruption::PayloadChecksum { expected: header.payload_checksum, found: checksum }));
    }
    Ok(Ok(header))
}
