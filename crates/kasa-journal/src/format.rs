//! Byte layouts of frames and snapshots, and the file names of the journal directory.
//!
//! This module is the only place that knows where a field sits; `docs/journal-format.md`
//! describes the same layouts in prose and must change with it. It encodes and decodes
//! headers and checks what a header can check about itself (magic, version, reserved bytes,
//! checksum). It does not read files or judge how a frame fits the chain: that is recovery's job.

use crate::error::Corruption;

/// A blake3 hash: a frame's identity in the chain.
pub type Hash = [u8; 32];

/// The hash a first frame records as its predecessor.
pub const HASH_ZERO: Hash = [0; 32];

/// Format version written into every frame and snapshot header. Bump it on any layout change,
/// and keep a fixture written by the old version.
pub const FORMAT_VERSION: u16 = 1;

/// "KSJF": Kasa journal frame.
pub(crate) const FRAME_MAGIC: [u8; 4] = *b"KSJF";
/// "KSJS": Kasa journal snapshot.
pub(crate) const SNAPSHOT_MAGIC: [u8; 4] = *b"KSJS";

/// Size of a frame header. Fixed, so a reader can always find the payload length without
/// trusting anything variable-length.
pub const FRAME_HEADER_BYTES: usize = 72;

/// Size of a snapshot header.
pub const SNAPSHOT_HEADER_BYTES: usize = 72;

/// Bytes of a frame header covered by its header checksum (everything before the checksum).
const FRAME_HEADER_CHECKED_BYTES: usize = 68;
/// Bytes of a snapshot header covered by its header checksum.
const SNAPSHOT_HEADER_CHECKED_BYTES: usize = 68;

/// Digits of the sequence number in file names: enough for `u64::MAX`, zero padded so that
/// names sort in sequence order.
const NAME_SEQ_DIGITS: usize = 20;

const SEGMENT_PREFIX: &str = "journal-";
const SEGMENT_SUFFIX: &str = ".seg";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";
/// Suffix of files being written; such files are incomplete by definition.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// The name of the segment whose first frame is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_seq:020}{SEGMENT_SUFFIX}")
}

/// The name of the snapshot as of `seq`.
pub fn snapshot_name(seq: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{seq:020}{SNAPSHOT_SUFFIX}")
}

/// The first seq of a segment file name, or `None` if `name` is not a segment name.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    parse_seq_name(name, SEGMENT_PREFIX, SEGMENT_SUFFIX)
}

/// The seq of a snapshot file name, or `None` if `name` is not a snapshot name.
pub fn parse_snapshot_name(name: &str) -> Option<u64> {
    parse_seq_name(name, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX)
}

/// The number in a name `{prefix}{20 digits}{suffix}`, or `None` if `name` is not one.
pub(crate) fn parse_seq_name(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != NAME_SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The decoded, self-consistent header of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub seq: u64,
    pub timestamp: u64,
    pub payload_len: u32,
    /// crc32c of the payload.
    pub payload_checksum: u32,
    /// Hash of the previous frame; [`HASH_ZERO`] for frame 1.
    pub prev_hash: Hash,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut bytes = [0; FRAME_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&FRAME_MAGIC);
        bytes[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // 6..8 reserved, zero.
        bytes[8..16].copy_from_slice(&self.seq.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.timestamp.to_le_bytes());
        bytes[24..28].copy_from_slice(&self.payload_len.to_le_bytes());
        bytes[28..32].copy_from_slice(&self.payload_checksum.to_le_bytes());
        bytes[32..64].copy_from_slice(&self.prev_hash);
        // 64..68 reserved, zero.
        let checksum = crc32c::crc32c(&bytes[..FRAME_HEADER_CHECKED_BYTES]);
        bytes[68..72].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Decodes a header, checking everything it can check about itself.
    pub fn decode(bytes: &[u8; FRAME_HEADER_BYTES]) -> Result<Self, Corruption> {
        check_magic_version(bytes, FRAME_MAGIC, FORMAT_VERSION)?;
        check_header_checksum(bytes, FRAME_HEADER_CHECKED_BYTES)?;
        let reserved = u16_at(bytes, 6) as u32 | u32_at(bytes, 64);
        if reserved != 0 {
            return Err(Corruption::ReservedNotZero { found: reserved });
        }
        Ok(FrameHeader {
            seq: u64_at(bytes, 8),
            timestamp: u64_at(bytes, 16),
            payload_len: u32_at(bytes, 24),
            payload_checksum: u32_at(bytes, 28),
            prev_hash: bytes[32..64].try_into().expect("32 bytes"),
        })
    }
}

/// The frame's own hash, which the next frame records: blake3 over the encoded header (which
/// holds the previous hash and the payload checksum) and the payload.
pub(crate) fn frame_hash(header: &[u8; FRAME_HEADER_BYTES], payload: &[u8]) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    *hasher.finalize().as_bytes()
}

/// The decoded, self-consistent header of a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotHeader {
    pub seq: u64,
    pub timestamp: u64,
    pub payload_len: u64,
    /// Hash of frame `seq`, the chain anchor.
    pub anchor: Hash,
    /// crc32c of the payload.
    pub payload_checksum: u32,
}

impl SnapshotHeader {
    pub fn encode(&self) -> [u8; SNAPSHOT_HEADER_BYTES] {
        let mut bytes = [0; SNAPSHOT_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&SNAPSHOT_MAGIC);
        bytes[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // 6..8 reserved, zero.
        bytes[8..16].copy_from_slice(&self.seq.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.timestamp.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.payload_len.to_le_bytes());
        bytes[32..64].copy_from_slice(&self.anchor);
        bytes[64..68].copy_from_slice(&self.payload_checksum.to_le_bytes());
        let checksum = crc32c::crc32c(&bytes[..SNAPSHOT_HEADER_CHECKED_BYTES]);
        bytes[68..72].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; SNAPSHOT_HEADER_BYTES]) -> Result<Self, Corruption> {
        check_magic_version(bytes, SNAPSHOT_MAGIC, FORMAT_VERSION)?;
        check_header_checksum(bytes, SNAPSHOT_HEADER_CHECKED_BYTES)?;
        let reserved = u16_at(bytes, 6);
        if reserved != 0 {
            return Err(Corruption::ReservedNotZero { found: reserved as u32 });
        }
        Ok(SnapshotHeader {
            seq: u64_at(bytes, 8),
            timestamp: u64_at(bytes, 16),
            payload_len: u64_at(bytes, 24),
            anchor: bytes[32..64].try_into().expect("32 bytes"),
            payload_checksum: u32_at(bytes, 64),
        })
    }
}

/// Checks the magic at bytes 0..4 and the version at 4..6, where every header of this crate
/// keeps them.
pub(crate) fn check_magic_version(bytes: &[u8], magic: [u8; 4], version: u16) -> Result<(), Corruption> {
    let found = u32_at(bytes, 0);
    let expected = u32::from_le_bytes(magic);
    if found != expected {
        return Err(Corruption::BadMagic { expected, found });
    }
    let found = u16_at(bytes, 4);
    if found != version {
        return Err(Corruption::UnsupportedVersion { expected: version, found });
    }
    Ok(())
}

fn check_header_checksum(bytes: &[u8], checked: usize) -> Result<(), Corruption> {
    let expected = u32_at(bytes, checked);
    let found = crc32c::crc32c(&bytes[..checked]);
    if expected != found {
        return Err(Corruption::HeaderChecksum { expected, found });
    }
    Ok(())
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Lower-case hex of bytes (a hash, a token), for tokens, error messages and logs: one
/// allocation, two table lookups a byte (it runs on every payment's approval token).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_round_trips_and_rejects_any_flipped_bit() {
        let header = FrameHeader {
            seq: 17,
            timestamp: 1_700_000_000_123,
            payload_len: 4096,
            payload_checksum: 0xdead_beef,
            prev_hash: [7; 32],
        };
        let bytes = header.encode();
        assert_eq!(FrameHeader::decode(&bytes), Ok(header));
        for bit in 0..FRAME_HEADER_BYTES * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(FrameHeader::decode(&damaged).is_err(), "bit {bit} undetected");
        }
    }

    #[test]
    fn names_round_trip_and_reject_near_misses() {
        assert_eq!(segment_name(1), "journal-00000000000000000001.seg");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_snapshot_name(&snapshot_name(42)), Some(42));
        assert_eq!(parse_segment_name("journal-1.seg"), None);
        assert_eq!(parse_segment_name("journal-0000000000000000000x.seg"), None);
        assert_eq!(parse_snapshot_name("snapshot-00000000000000000042.snap.tmp"), None);
    }
}
