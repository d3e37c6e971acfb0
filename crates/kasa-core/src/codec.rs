//! The binary encoding of everything the core writes down: commands (the journal payload),
//! outcomes (kept with idempotency keys), events (the outbox) and snapshot sections.
//!
//! Domain types derive `serde` and are encoded with postcard (a stable, documented format:
//! varints, enum variants by declaration index, no field names), so a domain adds a command
//! by adding a variant, not a hand-written encoder. Two rules keep old bytes readable:
//! variants and fields are only ever appended, never reordered or removed, and every string
//! or collection in an encoded type has a bound in its type ([`crate::text`]), which its
//! decoder checks, so that whatever can be built can be read back and a corrupt length can
//! never make the decoder allocate gigabytes. Ledger accounts and transfers, the hot path,
//! keep their fixed 128-byte records ([`crate::ledger::RECORD_BYTES`]).
//!
//! This module does no I/O: snapshots are written to and read from caller-supplied sinks and
//! sources, so the same code hashes the state, writes a file or streams to a socket.

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// Bytes that cannot be decoded. Carries where it went wrong.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes ended early.
    #[error("truncated: needed {needed} bytes at offset {offset}, found {found}")]
    Truncated {
        /// Where the read started.
        offset: usize,
        /// How many bytes it needed.
        needed: usize,
        /// How many were left.
        found: usize,
    },
    /// Bytes after the end of what was expected.
    #[error("{extra} bytes after the end")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A value that does not decode, or that its type refuses (too long, out of range).
    #[error("{0}")]
    Invalid(String),
}

impl DecodeError {
    /// An invalid value, described.
    pub fn invalid(what: impl Into<String>) -> Self {
        DecodeError::Invalid(what.into())
    }
}

/// Appends the postcard encoding of `value` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    let buffer = std::mem::take(out);
    // Serialising to a growable vector fails only for types postcard cannot represent
    // (maps with non-serialisable keys, say), none of which the core has.
    *out = postcard::to_extend(value, buffer).expect("core types serialise");
}

/// The postcard encoding of `value`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Decodes a whole value from `bytes`; bytes left over are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| DecodeError::invalid(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { extra: rest.len() });
    }
    Ok(value)
}

/// Where canonical bytes go: a buffer, a hasher, a file. Snapshots and the state hash are
/// written through it, so that both always see the same bytes.
pub trait Sink {
    /// Takes the next bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for blake3::Hasher {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Reads bytes front to back from a slice or a stream (a snapshot file is read as a stream:
/// no snapshot is ever held whole in memory), with bounds checks that name the offset. The
/// total length is known up front, so a count that the remaining bytes cannot hold is refused
/// before anything is allocated for it.
pub struct Reader<R> {
    source: R,
    at: usize,
    len: usize,
    buffer: Vec<u8>,
}

impl<'a> Reader<&'a [u8]> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { source: bytes, at: 0, len: bytes.len(), buffer: Vec::new() }
    }
}

impl<R: std::io::Read> Reader<R> {
    /// A reader of the `len` bytes `source` yields.
    pub fn from_stream(source: R, len: u64) -> Self {
        Reader { source, at: 0, len: usize::try_from(len).unwrap_or(usize::MAX), buffer: Vec::new() }
    }

    /// Where the next read starts.
    pub fn offset(&self) -> usize {
        self.at
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.len - self.at
    }

    /// The next `n` bytes (valid until the next read).
    pub fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let left = self.remaining();
        if n > left {
            return Err(DecodeError::Truncated { offset: self.at, needed: n, found: left });
        }
        self.buffer.resize(n, 0);
        self.source
            .read_exact(&mut self.buffer)
            .map_err(|e| DecodeError::invalid(format!("reading {n} bytes at offset {}: {e}", self.at)))?;
        self.at += n;
        Ok(&self.buffer)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian u128.
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    /// A count of items of `item_bytes` each, refused if the bytes left cannot hold them: a
    /// corrupt count never becomes a huge allocation.
    pub fn count(&mut self, item_bytes: usize, what: &str) -> Result<usize, DecodeError> {
        let count = self.u64()?;
        let fits = count.checked_mul(item_bytes as u64).is_some_and(|bytes| bytes <= self.remaining() as u64);
        if !fits {
            return Err(DecodeError::invalid(format!("claims {count} {what}, more than its bytes hold")));
        }
        Ok(count as usize)
    }

    /// A length-prefixed blob (u32 length, at most `max` bytes).
    pub fn blob(&mut self, max: usize) -> Result<&[u8], DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::invalid(format!("a blob of {len} bytes, more than the {max} allowed")));
        }
        self.take(len)
    }

    /// A length-prefixed blob decoded with postcard.
    pub fn value<T: DeserializeOwned>(&mut self, max: usize) -> Result<T, DecodeError> {
        decode(self.blob(max)?)
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { extra }),
        }
    }
}

/// Writes a length-prefixed blob (u32 length) of `bytes`.
pub fn put_blob(sink: &mut impl Sink, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("a blob under 4 GiB");
    sink.put(&len.to_le_bytes());
    sink.put(bytes);
}

/// Writes `value` as a length-prefixed postcard blob, using `scratch` as the buffer.
pub fn put_value<T: Serialize + ?Sized>(sink: &mut impl Sink, value: &T, scratch: &mut Vec<u8>) {
    scratch.clear();
    encode_into(value, scratch);
    put_blob(sink, scratch);
}

/// Items per blob of a table in a snapshot: small enough that a blob stays well under
/// [`TABLE_BLOB_BYTES_MAX`], large enough that the framing costs nothing.
pub const TABLE_CHUNK_ITEMS: usize = 1024;
/// The largest blob of a table a decoder accepts.
pub const TABLE_BLOB_BYTES_MAX: usize = 16 << 20;

/// Writes a table of `len` items: the count, then the items as postcard blobs of up to
/// [`TABLE_CHUNK_ITEMS`] each, so that neither side ever needs the whole table as one buffer.
pub fn put_table<T: Serialize>(
    sink: &mut impl Sink,
    items: impl Iterator<Item = T>,
    len: usize,
    scratch: &mut Vec<u8>,
) {
    sink.put(&(len as u64).to_le_bytes());
    let mut chunk: Vec<T> = Vec::with_capacity(TABLE_CHUNK_ITEMS.min(len));
    let mut written = 0;
    for item in items {
        chunk.push(item);
        if chunk.len() == TABLE_CHUNK_ITEMS {
            put_value(sink, &chunk, scratch);
            written += chunk.len();
            chunk.clear();
        }
    }
    written += chunk.len();
    if !chunk.is_empty() {
        put_value(sink, &chunk, scratch);
    }
    assert_eq!(written, len, "a table yielded another count of items than it said");
}

/// Reads a table written by [`put_table`], handing each item to `each` in order.
pub fn read_table<T: DeserializeOwned>(
    reader: &mut Reader<impl std::io::Read>,
    what: &str,
    mut each: impl FnMut(T) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let count = reader.u64()?;
    let mut left = count;
    while left > 0 {
        let chunk: Vec<T> = reader.value(TABLE_BLOB_BYTES_MAX)?;
        let expected = left.min(TABLE_CHUNK_ITEMS as u64);
        if chunk.len() as u64 != expected {
            return Err(DecodeError::invalid(format!(
                "a chunk of {what} has {} items, expected {expected}",
                chunk.len()
            )));
        }
        left -= expected;
        for item in chunk {
            each(item)?;
        }
    }
    Ok(())
}

/// Writes the header of a snapshot section: its id and version.
pub fn section_header(sink: &mut impl Sink, id: u16, version: u16) {
    sink.put(&id.to_le_bytes());
    sink.put(&version.to_le_bytes());
}

/// Reads the header of a snapshot section and checks it is section `id` (`name`) at `version`.
pub fn expect_section<R: std::io::Read>(
    reader: &mut Reader<R>,
    id: u16,
    version: u16,
    name: &str,
) -> Result<(), DecodeError> {
    let (found_id, found_version) = (reader.u16()?, reader.u16()?);
    if (found_id, found_version) != (id, version) {
        return Err(DecodeError::invalid(format!(
            "expected section {id} ({name}) version {version}, found section {found_id} version {found_version}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_names_where_it_ran_out() {
        let mut r = Reader::new(&[1, 0, 0, 0, 9]);
        assert_eq!(r.u32(), Ok(1));
        assert_eq!(r.u32(), Err(DecodeError::Truncated { offset: 4, needed: 4, found: 1 }));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { extra: 1 }));
        let mut counted = Reader::new(&[255, 255, 255, 255, 255, 255, 255, 255]);
        assert!(counted.count(8, "things").is_err(), "a count the bytes cannot hold");
    }

    #[test]
    fn values_round_trip_and_refuse_leftovers() {
        let value = (7u64, String::from("memo"), vec![1u8, 2, 3]);
        let bytes = encode(&value);
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&bytes), Ok(value));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<(u64, String, Vec<u8>)>(&longer), Err(DecodeError::TrailingBytes { extra: 1 }));
    }
}
