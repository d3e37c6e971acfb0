//! Writes the record log fixture that `tests/journal/record_log.rs` checks:
//! `cargo run -p kasa-journal --example write_record_fixture -- crates/kasa-journal/tests/fixtures/records-v1`.
//!
//! Run it only when the record log format version changes, into a new directory, and keep the
//! old fixture: it is how a format change that forgot to bump the version gets caught.

use std::path::PathBuf;

use kasa_journal::{FileStorage, RecordLog, RecordLogOptions};

/// Records in the fixture: enough for three segments at the segment size below.
const RECORDS: u64 = 9;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os().nth(1).ok_or("expected the fixture directory as the first argument")?.into();
    let options = RecordLogOptions { segment_bytes_max: 100, ..RecordLogOptions::default() };
    let (mut log, report) = RecordLog::open(FileStorage::open(&dir)?, options)?;
    if report.last_key.is_some() {
        return Err("expected an empty directory".into());
    }
    for key in 1..=RECORDS {
        log.append(key, format!("fixture record {key}").as_bytes())?;
    }
    log.sync()?;
    println!("wrote {} records in {} segments to {}", RECORDS, log.segment_count(), dir.display());
    Ok(())
}
