//! Writes the format fixture that `tests/journal/file_storage.rs` checks:
//! `cargo run -p kasa-journal --example write_fixture -- crates/kasa-journal/tests/fixtures/v1`.
//!
//! Run it only when the format version changes, into a new directory (`v2`, ...), and keep the
//! old fixtures: they are how a format change that forgot to bump the version gets caught.
//!
//! The snapshot is streamed in two writes; the file is byte for byte the one version 1 wrote
//! from a single buffer (`file_storage.rs` checks that), which is why the version is still 1.

use std::io::Write;
use std::path::PathBuf;

use kasa_journal::{FileStorage, Journal, Options};

/// Frames in the fixture: enough for three segments at the segment size below.
const FRAMES: u64 = 6;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os().nth(1).ok_or("expected the fixture directory as the first argument")?.into();
    let options = Options { segment_bytes_max: 200, ..Options::default() };
    let (mut journal, recovered) = Journal::open(FileStorage::open(&dir)?, options)?;
    if recovered.frames_after_snapshot != 0 {
        return Err("expected an empty directory".into());
    }
    for seq in 1..=FRAMES {
        let payload = format!("fixture frame {seq}");
        journal.append(seq, 1_700_000_000_000 + seq, payload.as_bytes())?;
        journal.sync()?;
        if seq == 3 {
            let mut writer = journal.begin_snapshot(3, 1_700_000_000_003)?;
            writer.write_all(b"fixture state ")?;
            writer.write_all(b"as of frame 3")?;
            let done = writer.finish()?;
            journal.snapshot_done(done)?;
        }
    }
    println!("wrote {} bytes of journal to {}", journal.bytes(), dir.display());
    Ok(())
}
