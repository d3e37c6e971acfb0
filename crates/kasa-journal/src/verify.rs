//! The offline check behind `kasa verify`.
//!
//! It walks the journal with the same rules as recovery, but stricter about snapshots (every
//! snapshot file must be valid and anchored in the chain, not just the newest) and without
//! changing anything: a torn tail is reported, not cut, and temp files are left alone. It does
//! not replay; the caller does that in `on_frame`. Like recovery it streams: one frame and one
//! snapshot chunk in memory at a time.

use std::collections::BTreeMap;

use crate::error::JournalError;
use crate::format::{hex, Hash};
use crate::journal::{anchor_mismatch, check_snapshot_reached};
use crate::scan::{self, Listing};
use crate::snapshot::SnapshotInfo;
use crate::storage::Storage;
use crate::{Frame, TornTail, FRAME_PAYLOAD_BYTES_LIMIT};

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of segment files.
    pub segments: u64,
    /// Number of valid frames.
    pub frames: u64,
    /// Total bytes of all segment files, a torn tail included.
    pub bytes: u64,
    /// Total bytes of all frame payloads.
    pub payload_bytes: u64,
    /// The first frame's seq, if there are frames.
    pub first_seq: Option<u64>,
    /// The last valid frame's seq, if there are frames.
    pub last_seq: Option<u64>,
    /// Hash of the last valid frame (zero if none), in hex: the head of the chain, worth
    /// recording for an audit.
    pub last_hash: String,
    /// Valid snapshots, by seq.
    pub snapshots: Vec<SnapshotInfo>,
    /// A torn last frame, which recovery would cut.
    pub torn_tail: Option<TornTail>,
}

/// Offline check for `kasa verify`: reads every segment from the first, checks every frame's
/// checksum, the hash chain, seq contiguity and strictly increasing timestamps, and every
/// snapshot file's checksum and chain anchor; calls `on_frame` for each valid frame in order
/// (the caller replays them) and returns a report, or the first error.
///
/// The frame payload limit is the most permissive one the format allows
/// ([`FRAME_PAYLOAD_BYTES_LIMIT`]), so a journal written with any options verifies. To compare
/// a snapshot's contents with the replay, read it with [`open_snapshot`](crate::open_snapshot).
pub fn verify<S: Storage>(
    storage: &mut S,
    mut on_frame: impl FnMut(&Frame) -> Result<(), String>,
) -> Result<VerifyReport, JournalError> {
    let listing = Listing::read(storage)?;
    let mut snapshots = Vec::new();
    // seq -> (name, anchor), for checking anchors during the walk.
    let mut anchors: BTreeMap<u64, (String, Hash)> = BTreeMap::new();
    for (seq, name) in &listing.snapshots {
        let header = scan::check_snapshot(storage, name, *seq)?
            .map_err(|problem| JournalError::SnapshotCorrupt { snapshot: name.clone(), problem })?;
        anchors.insert(header.seq, (name.clone(), header.anchor));
        snapshots.push((name.clone(), header));
    }

    let mut first_seq = None;
    let mut replay = |frame: &Frame, hash: &Hash| {
        if let Some((name, anchor)) = anchors.get(&frame.seq) {
            if anchor != hash {
                return Err(anchor_mismatch(name, frame.seq, hash, anchor));
            }
        }
        first_seq.get_or_insert(frame.seq);
        on_frame(frame).map_err(|message| JournalError::Replay { seq: frame.seq, message })
    };
    let scan = scan::scan(storage, &listing.segments, FRAME_PAYLOAD_BYTES_LIMIT, &mut replay)?;
    for (name, header) in &snapshots {
        check_snapshot_reached(name, header, scan.end.seq)?;
    }

    let mut bytes = 0;
    for segment in &scan.segments {
        bytes += segment.len;
    }
    if let Some(torn) = &scan.torn_tail {
        bytes += torn.bytes_cut;
    }
    Ok(VerifyReport {
        segments: scan.segments.len() as u64,
        frames: scan.frames,
        bytes,
        payload_bytes: scan.payload_bytes,
        first_seq,
        last_seq: (scan.end.seq > 0).then_some(scan.end.seq),
        last_hash: hex(&scan.end.hash),
        snapshots: snapshots.iter().map(|(name, header)| SnapshotInfo::new(name, header)).collect(),
        torn_tail: scan.torn_tail,
    })
}
