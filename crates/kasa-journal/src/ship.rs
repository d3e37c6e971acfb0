//! Shipping frames to a follower, byte for byte as they are on disk.
//!
//! The primary's side is [`FrameReader`]: on a storage handle of its own, it reads frames from
//! a position up to a seq the caller says is committed (synced), never further, so it never
//! ships a frame a crash could take back. The follower's side is [`parse_frame`]: it checks a
//! shipped frame as recovery checks one on disk (header, checksums, payload bound) and hands
//! back its fields and its hash; whether the frame continues the follower's own chain (seq,
//! timestamp, previous hash) is checked against the follower's journal by its caller, before
//! anything is appended.
//!
//! Frames travel as they are stored: the 72-byte header and the payload, back to back, so the
//! checksums and the hash chain that protect the disk protect the wire too, and the follower's
//! journal ends up holding the same bytes (its own `append` writes the same header, since the
//! header is a function of seq, timestamp, payload and previous hash). It does not decide
//! when to read, how much to ship or what to do with a bad frame: that is the engine's and the
//! server's business.

use crate::error::{Corruption, JournalError};
use crate::format::{self, frame_hash, FrameHeader, Hash, FRAME_HEADER_BYTES};
use crate::storage::Storage;

/// One frame as shipped: its header's fields, its payload (borrowed from the bytes it came in)
/// and its hash, which the next frame must record as its previous hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedFrame<'a> {
    /// Sequence number.
    pub seq: u64,
    /// The batch's timestamp.
    pub timestamp: u64,
    /// The hash of the frame before it.
    pub prev_hash: Hash,
    /// The hash of this frame (header and payload).
    pub hash: Hash,
    /// The opaque payload.
    pub payload: &'a [u8],
}

/// Checks the frame at the start of `bytes` (header magic, version, reserved bytes and
/// checksum, a payload of at most `payload_max` bytes, all there, with a valid checksum) and
/// returns it with its length in bytes. Its place in a chain is the caller's to check.
pub fn parse_frame(bytes: &[u8], payload_max: u32) -> Result<(ShippedFrame<'_>, usize), Corruption> {
    let Some(header_bytes) = bytes.first_chunk::<FRAME_HEADER_BYTES>() else {
        return Err(Corruption::TruncatedHeader { expected: FRAME_HEADER_BYTES as u64, found: bytes.len() as u64 });
    };
    let header = FrameHeader::decode(header_bytes)?;
    if header.payload_len > payload_max {
        return Err(Corruption::PayloadTooLong { max: payload_max as u64, found: header.payload_len as u64 });
    }
    let rest = &bytes[FRAME_HEADER_BYTES..];
    let Some(payload) = rest.get(..header.payload_len as usize) else {
        return Err(Corruption::TruncatedPayload { expected: header.payload_len as u64, found: rest.len() as u64 });
    };
    let found = crc32c::crc32c(payload);
    if found != header.payload_checksum {
        return Err(Corruption::PayloadChecksum { expected: header.payload_checksum, found });
    }
    let frame = ShippedFrame {
        seq: header.seq,
        timestamp: header.timestamp,
        prev_hash: header.prev_hash,
        hash: frame_hash(header_bytes, payload),
        payload,
    };
    Ok((frame, FRAME_HEADER_BYTES + payload.len()))
}

/// Reads committed frames from a position, as stored, for a follower. See the module docs.
///
/// It keeps where the next frame starts (segment and offset), so that reading on from where
/// it stopped costs only the frames read; finding the position the first time walks the
/// headers of one segment from its start.
pub struct FrameReader<S: Storage> {
    storage: S,
    payload_max: u32,
    /// The seq of the next frame to read.
    next_seq: u64,
    /// The segment and offset where frame `next_seq` starts, once found.
    at: Option<(String, u64)>,
    header: [u8; FRAME_HEADER_BYTES],
}

impl<S: Storage> FrameReader<S> {
    /// A reader of the frames after `after_seq`, on `storage` (a handle of its own, from
    /// [`Storage::try_clone`]); frames claiming more than `payload_max` bytes are corruption.
    pub fn new(storage: S, after_seq: u64, payload_max: u32) -> Self {
        FrameReader { storage, payload_max, next_seq: after_seq + 1, at: None, header: [0; FRAME_HEADER_BYTES] }
    }

    /// The seq of the next frame [`read`](Self::read) returns.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends to `out` the frames from [`next_seq`](Self::next_seq) up to `committed`, as
    /// stored, while `out` stays within `bytes_max` (the first frame always goes, whatever
    /// its size, so that no frame can stall a follower). Returns how many it appended.
    ///
    /// `committed` must be a seq the journal has synced: frames up to it are whole and never
    /// change. Every frame read is checked (header, checksums, its seq); a bad one is
    /// [`JournalError::Corrupt`], and the reader must not be used again.
    pub fn read(&mut self, committed: u64, bytes_max: usize, out: &mut Vec<u8>) -> Result<u64, JournalError> {
        let start = out.len();
        let mut frames = 0;
        while self.next_seq <= committed {
            let (segment, offset) = self.position()?;
            let seq = self.next_seq;
            let corrupt = |problem| JournalError::Corrupt { segment: segment.clone(), offset, seq, problem };
            self.storage
                .read_at(&segment, offset, &mut self.header)
                .map_err(|e| JournalError::io("read", &segment, e))?;
            let header = FrameHeader::decode(&self.header).map_err(corrupt)?;
            if header.seq != seq {
                return Err(corrupt(Corruption::SeqMismatch { expected: seq, found: header.seq }));
            }
            if header.payload_len > self.payload_max {
                let found = header.payload_len as u64;
                return Err(corrupt(Corruption::PayloadTooLong { max: self.payload_max as u64, found }));
            }
            let len = FRAME_HEADER_BYTES + header.payload_len as usize;
            if frames > 0 && out.len() - start + len > bytes_max {
                break;
            }
            let frame_start = out.len();
            out.extend_from_slice(&self.header);
            out.resize(frame_start + len, 0);
            self.storage
                .read_at(&segment, offset + FRAME_HEADER_BYTES as u64, &mut out[frame_start + FRAME_HEADER_BYTES..])
                .map_err(|e| JournalError::io("read", &segment, e))?;
            let found = crc32c::crc32c(&out[frame_start + FRAME_HEADER_BYTES..]);
            if found != header.payload_checksum {
                out.truncate(start);
                return Err(corrupt(Corruption::PayloadChecksum { expected: header.payload_checksum, found }));
            }
            self.at = Some((segment, offset + len as u64));
            self.next_seq += 1;
            frames += 1;
        }
        Ok(frames)
    }

    /// Where frame `next_seq` (committed, so whole) starts. Past the end of the current
    /// segment it is the first frame of the next one: the journal syncs a segment before it
    /// creates the next, and names the next after its first frame.
    fn position(&mut self) -> Result<(String, u64), JournalError> {
        if let Some((segment, offset)) = &self.at {
            let len = self.storage.len(segment).map_err(|e| JournalError::io("len", segment, e))?;
            if *offset < len {
                return Ok((segment.clone(), *offset));
            }
            let next = format::segment_name(self.next_seq);
            self.at = Some((next.clone(), 0));
            return Ok((next, 0));
        }
        // The first read: the segment that holds `next_seq`, and its frames' headers from its
        // start up to that frame.
        let listing = crate::scan::Listing::read(&mut self.storage)?;
        let Some((first_seq, segment)) = listing.segments.iter().rev().find(|(first, _)| *first <= self.next_seq)
        else {
            return Err(JournalError::SegmentOutOfOrder {
                segment: String::from("(none)"),
                expected: self.next_seq,
                found: listing.segments.first().map_or(0, |(first, _)| *first),
            });
        };
        let (mut seq, mut offset) = (*first_seq, 0);
        while seq < self.next_seq {
            let corrupt = |problem| JournalError::Corrupt { segment: segment.clone(), offset, seq, problem };
            self.storage
                .read_at(segment, offset, &mut self.header)
                .map_err(|e| JournalError::io("read", segment, e))?;
            let header = FrameHeader::decode(&self.header).map_err(corrupt)?;
            if header.seq != seq {
                return Err(corrupt(Corruption::SeqMismatch { expected: seq, found: header.seq }));
            }
            offset += FRAME_HEADER_BYTES as u64 + header.payload_len as u64;
            seq += 1;
        }
        self.at = Some((segment.clone(), offset));
        Ok((segment.clone(), offset))
    }
}
