//! Byte layouts of the record log: segment file names, the segment header, the record header.
//!
//! The only place that knows where a field of the record log sits; `docs/journal-format.md`
//! ("Record log") describes the same layouts and must change with it. It does not read files.

use crate::error::Corruption;
use crate::format::{check_magic_version, parse_seq_name, u16_at, u32_at, u64_at};

/// Format version in every record log segment header. Bump it on any layout change.
pub const RECORD_LOG_FORMAT_VERSION: u16 = 1;

/// "KSRL": Kasa record log.
const SEGMENT_MAGIC: [u8; 4] = *b"KSRL";

/// Size of a segment header: magic, version, reserved, first key.
pub const RECORD_SEGMENT_HEADER_BYTES: usize = 16;

/// Size of a record header: payload length, checksum, key.
pub const RECORD_HEADER_BYTES: usize = 16;

const SEGMENT_PREFIX: &str = "records-";
const SEGMENT_SUFFIX: &str = ".log";

/// The name of the record log segment whose first record has key `first_key`.
pub fn record_segment_name(first_key: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_key:020}{SEGMENT_SUFFIX}")
}

/// The first key of a record log segment file name, or `None` if `name` is not one.
pub(crate) fn parse_record_segment_name(name: &str) -> Option<u64> {
    parse_seq_name(name, SEGMENT_PREFIX, SEGMENT_SUFFIX)
}

pub(crate) fn encode_segment_header(first_key: u64) -> [u8; RECORD_SEGMENT_HEADER_BYTES] {
    let mut bytes = [0; RECORD_SEGMENT_HEADER_BYTES];
    bytes[0..4].copy_from_slice(&SEGMENT_MAGIC);
    bytes[4..6].copy_from_slice(&RECORD_LOG_FORMAT_VERSION.to_le_bytes());
    // 6..8 reserved, zero.
    bytes[8..16].copy_from_slice(&first_key.to_le_bytes());
    bytes
}

/// Checks a segment header against the first key its file name carries. Every field is
/// checked by equality, so the header needs no checksum of its own.
pub(crate) fn check_segment_header(
    bytes: &[u8; RECORD_SEGMENT_HEADER_BYTES],
    first_key: u64,
) -> Result<(), Corruption> {
    check_magic_version(bytes, SEGMENT_MAGIC, RECORD_LOG_FORMAT_VERSION)?;
    let reserved = u16_at(bytes, 6);
    if reserved != 0 {
        return Err(Corruption::ReservedNotZero { found: reserved as u32 });
    }
    let found = u64_at(bytes, 8);
    if found != first_key {
        return Err(Corruption::KeyMismatch { expected: first_key, found });
    }
    Ok(())
}

/// A decoded record header; nothing in it is trusted until the checksum over the whole record
/// is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub payload_len: u32,
    pub checksum: u32,
    pub key: u64,
}

impl RecordHeader {
    pub fn decode(bytes: &[u8; RECORD_HEADER_BYTES]) -> Self {
        RecordHeader { payload_len: u32_at(bytes, 0), checksum: u32_at(bytes, 4), key: u64_at(bytes, 8) }
    }

    /// Checks the record's checksum, which covers the length, the key and the payload: a
    /// flipped bit anywhere in the record but the checksum field itself changes it.
    pub fn check(&self, payload: &[u8]) -> Result<(), Corruption> {
        let found = record_checksum(self.payload_len, self.key, payload);
        if found != self.checksum {
            return Err(Corruption::RecordChecksum { expected: self.checksum, found });
        }
        Ok(())
    }
}

fn record_checksum(payload_len: u32, key: u64, payload: &[u8]) -> u32 {
    let checksum = crc32c::crc32c(&payload_len.to_le_bytes());
    let checksum = crc32c::crc32c_append(checksum, &key.to_le_bytes());
    crc32c::crc32c_append(checksum, payload)
}

/// Appends one encoded record (header and payload) to `out`.
pub(crate) fn encode_record(key: u64, payload: &[u8], out: &mut Vec<u8>) {
    let payload_len = u32::try_from(payload.len()).expect("payload length checked against the limit");
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&record_checksum(payload_len, key, payload).to_le_bytes());
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_bit_anywhere_in_a_record_is_caught() {
        let mut bytes = Vec::new();
        encode_record(42, b"an event", &mut bytes);
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let header = RecordHeader::decode(damaged[..RECORD_HEADER_BYTES].try_into().unwrap());
            let payload = &damaged[RECORD_HEADER_BYTES..];
            let caught =
                header.key != 42 || header.payload_len as usize != payload.len() || header.check(payload).is_err();
            assert!(caught, "bit {bit} undetected");
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_any_flipped_bit() {
        let bytes = encode_segment_header(7);
        assert_eq!(check_segment_header(&bytes, 7), Ok(()));
        assert!(check_segment_header(&bytes, 8).is_err());
        for bit in 0..RECORD_SEGMENT_HEADER_BYTES * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(check_segment_header(&damaged, 7).is_err(), "bit {bit} undetected");
        }
        assert_eq!(parse_record_segment_name(&record_segment_name(7)), Some(7));
        assert_eq!(record_segment_name(7), "records-00000000000000000007.log");
    }
}
