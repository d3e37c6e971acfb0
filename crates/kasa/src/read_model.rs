//! `kasa read-model rebuild --data DIR --read-model URL`: empties the PostgreSQL read model
//! and feeds it again from a data directory, with the server stopped. The engine is opened as
//! a follower (it recovers the state and the event log, and commits nothing of its own: no
//! expiry runs), and the read model's feed runs its rounds until it has every event and every
//! ledger record, so it ends at the rows the live feed would have.

use anyhow::{bail, Context};
use kasa_engine::{Engine, EngineOptions};
use kasa_journal::FileStorage;
use kasa_server::read_model::ReadModel;
use kasa_server::Secret;
use std::path::PathBuf;

/// `kasa read-model ...`.
#[derive(clap::Subcommand)]
pub enum ReadModelCommand {
    /// Empty the read model and replay it from the data directory's journal and event log.
    /// Stop the server first: the data directory is locked while it runs.
    Rebuild {
        /// The data directory.
        #[arg(long, default_value = "./kasa-data")]
        data: PathBuf,
        /// The read model: postgres://USER[:PASSWORD]@HOST:PORT/DB (never logged).
        #[arg(long, value_name = "URL")]
        read_model: String,
    },
}

/// Runs a `kasa read-model` command.
pub fn run(command: ReadModelCommand) -> anyhow::Result<()> {
    let ReadModelCommand::Rebuild { data, read_model } = command;
    let read_model = ReadModel::new(&Secret::new(read_model))?;
    if !data.join("journal").is_dir() {
        bail!("{} has no journal/: not a kasa data directory", data.display());
    }
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(data.join("LOCK"))
        .with_context(|| format!("opening {}", data.join("LOCK").display()))?;
    if lock.try_lock().is_err() {
        bail!("{} is in use by a running kasa server: stop it first", data.display());
    }
    let storage = FileStorage::open(&data.join("journal")).context("opening the journal directory")?;
    let events = FileStorage::open(&data.join("events")).context("opening the event log directory")?;
    // A follower recovers and serves reads, and commits nothing of its own.
    let options = EngineOptions { follower: true, ..EngineOptions::default() };
    let started = std::time::Instant::now();
    let (engine, report) = Engine::start(storage, events, options).context("recovering the journal")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(kasa_server::consumers::read_model::rebuild(&engine, &read_model));
    let stopped = engine.shutdown();
    let (cursor, rows) = result.with_context(|| format!("rebuilding the read model at {}", read_model.target()))?;
    if let Err(error) = stopped {
        bail!("the engine stopped with an error: {error}");
    }
    println!(
        "read model at {} rebuilt: {} rows, up to event {} and {} ledger transfers (journal frame {}), in {} ms",
        read_model.target(),
        rows,
        cursor.event_seq,
        cursor.ledger_transfers,
        report.last_seq,
        started.elapsed().as_millis()
    );
    drop(lock);
    Ok(())
}
