//! Reading the journal back: the directory listing, the frame-by-frame walk over all segments
//! that checks checksums and the hash chain, the torn-tail classification, and snapshot loading.
//!
//! Both [`Journal::open`](crate::Journal::open) and [`verify`](crate::verify) use this walk, so
//! the rules are written once. The walk never modifies storage: cutting a torn tail is the
//! caller's decision (recovery cuts it, `verify` only reports it).

use crate::error::{Corruption, JournalError};
use crate::format::{
    self, frame_hash, hex, FrameHeader, Hash, SnapshotHeader, FRAME_HEADER_BYTES, FRAME_MAGIC, HASH_ZERO,
    SNAPSHOT_HEADER_BYTES,
};
use crate::storage::Storage;
use crate::{Frame, TornTail};

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
}

/// The end of the chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainEnd {
    pub seq: u64,
    pub timestamp: u64,
    pub hash: Hash,
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

/// A frame read whole with valid checksums (its place in the chain is not checked yet).
pub(crate) struct GoodFrame {
    pub header: FrameHeader,
    pub hash: Hash,
    pub payload: Vec<u8>,
}

impl GoodFrame {
    pub fn len(&self) -> u64 {
        FRAME_HEADER_BYTES as u64 + self.payload.len() as u64
    }
}

/// Reads the frame at `offset` of a segment of `file_len` bytes.
fn read_frame<S: Storage>(
    storage: &mut S,
    segment: &str,
    offset: u64,
    file_len: u64,
    payload_max: u32,
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
    // Allocation is bounded by both the configured limit and the file length, checked above.
    let mut payload = vec![0; header.payload_len as usize];
    storage
        .read_at(segment, offset + FRAME_HEADER_BYTES as u64, &mut payload)
        .map_err(|e| JournalError::io("read", segment, e))?;
    let found = crc32c::crc32c(&payload);
    if found != header.payload_checksum {
        let end = offset + FRAME_HEADER_BYTES as u64 + payload.len() as u64;
        return Ok(Err(BadFrame {
            problem: Corruption::PayloadChecksum { expected: header.payload_checksum, found },
            kind: BadKind::PayloadChecksum { end },
        }));
    }
    let hash = frame_hash(&header_bytes, &payload);
    Ok(Ok(GoodFrame { header, hash, payload }))
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

/// Walks every frame of every segment in order, checking checksums, seq contiguity, strictly
/// increasing timestamps and the hash chain, and hands each valid frame and its hash to
/// `on_frame`. A torn tail of the last segment is reported, not cut.
pub(crate) fn scan<S: Storage>(
    storage: &mut S,
    segments: &[(u64, String)],
    payload_max: u32,
    on_frame: &mut dyn FnMut(Frame, &Hash) -> Result<(), JournalError>,
) -> Result<Scan, JournalError> {
    let mut end = ChainEnd { seq: 0, timestamp: 0, hash: HASH_ZERO };
    let mut result =
        Scan { segments: Vec::with_capacity(segments.len()), end, frames: 0, payload_bytes: 0, torn_tail: None };
    for (index, (first_seq, name)) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        if *first_seq != end.seq + 1 {
            return Err(JournalError::SegmentOutOfOrder {
                segment: name.clone(),
                expected: end.seq + 1,
                found: *first_seq,
            });
        }
        let file_len = storage.len(name).map_err(|e| JournalError::io("len", name, e))?;
        if file_len == 0 && !last {
            return Err(JournalError::Corrupt {
                segment: name.clone(),
                offset: 0,
                seq: end.seq + 1,
                problem: Corruption::EmptySegment,
            });
        }
        let mut offset = 0;
        while offset < file_len {
            let expected = end.seq + 1;
            let corrupt = |problem| JournalError::Corrupt { segment: name.clone(), offset, seq: expected, problem };
            let good = match read_frame(storage, name, offset, file_len, payload_max)? {
                Ok(good) => good,
                Err(bad) => {
                    if last && is_torn(storage, name, offset, file_len, payload_max, &bad)? {
                        result.torn_tail =
                            Some(TornTail { segment: name.clone(), offset, bytes_cut: file_len - offset });
                        break;
                    }
                    return Err(corrupt(bad.problem));
                }
            };
            let header = &good.header;
            if header.seq != expected {
                return Err(corrupt(Corruption::SeqMismatch { expected, found: header.seq }));
            }
            if header.timestamp <= end.timestamp {
                return Err(corrupt(Corruption::TimestampNotIncreasing {
                    previous: end.timestamp,
                    found: header.timestamp,
                }));
            }
            if header.prev_hash != end.hash {
                return Err(corrupt(Corruption::PrevHashMismatch {
                    expected: hex(&end.hash),
                    found: hex(&header.prev_hash),
                }));
            }
            offset += good.len();
            end = ChainEnd { seq: header.seq, timestamp: header.timestamp, hash: good.hash };
            result.frames += 1;
            result.payload_bytes += good.payload.len() as u64;
            let frame = Frame { seq: good.header.seq, timestamp: good.header.timestamp, payload: good.payload };
            on_frame(frame, &good.hash)?;
        }
        result.segments.push(SegmentFile { name: name.clone(), first_seq: *first_seq, len: offset });
    }
    result.end = end;
    Ok(result)
}

/// Reads the frame with sequence number `seq` from `segment` (which must hold it) and returns
/// its hash, checking its checksums on the way. Used to anchor a snapshot taken behind the tip.
pub(crate) fn frame_hash_at<S: Storage>(
    storage: &mut S,
    segment: &SegmentFile,
    seq: u64,
    payload_max: u32,
) -> Result<Hash, JournalError> {
    let mut offset = 0;
    let mut expected = segment.first_seq;
    loop {
        let corrupt = |problem| JournalError::Corrupt { segment: segment.name.clone(), offset, seq: expected, problem };
        let good = read_frame(storage, &segment.name, offset, segment.len, payload_max)?
            .map_err(|bad| corrupt(bad.problem))?;
        if good.header.seq != expected {
            return Err(corrupt(Corruption::SeqMismatch { expected, found: good.header.seq }));
        }
        if good.header.seq == seq {
            return Ok(good.hash);
        }
        offset += good.len();
        expected += 1;
    }
}

/// A snapshot file whose checksums are valid.
#[derive(Debug)]
pub(crate) struct LoadedSnapshot {
    pub name: String,
    pub header: SnapshotHeader,
    pub payload: Vec<u8>,
}

/// Reads and checks a snapshot file. The outer error is an I/O failure; the inner one says
/// why the file is invalid.
pub(crate) fn read_snapshot<S: Storage>(
    storage: &mut S,
    name: &str,
    seq_from_name: u64,
    payload_max: u64,
) -> Result<Result<LoadedSnapshot, Corruption>, JournalError> {
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
    if header.payload_len > payload_max {
        return Ok(Err(Corruption::PayloadTooLong { max: payload_max, found: header.payload_len }));
    }
    let expected_len = SNAPSHOT_HEADER_BYTES as u64 + header.payload_len;
    if expected_len != file_len {
        return Ok(Err(Corruption::FileLength { expected: expected_len, found: file_len }));
    }
    let mut payload = vec![0; header.payload_len as usize];
    storage.read_at(name, SNAPSHOT_HEADER_BYTES as u64, &mut payload).map_err(|e| JournalError::io("read", name, e))?;
    let found = crc32c::crc32c(&payload);
    if found != header.payload_checksum {
        return Ok(Err(Corruption::PayloadChecksum { expected: header.payload_checksum, found }));
    }
    Ok(Ok(LoadedSnapshot { name: name.to_string(), header, payload }))
}
