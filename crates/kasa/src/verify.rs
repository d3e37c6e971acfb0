//! `kasa verify --data DIR`: an offline audit of a data directory. It checks every frame's
//! checksum and the hash chain from frame 1 (through `kasa_journal::verify`), replays every
//! frame from an empty state, checks that each snapshot holds exactly the state the replay
//! reached at its frame, checks that every event in the event log (`events/`) is the event the
//! replay emitted with its number, checks the ledger invariants, checks that every page of the
//! embedded store of cold transfers (`cold.redb`) equals the replay's transfers, and prints a summary. Any
//! problem is an error and a non-zero exit. It only reads: it is safe on a copy of production
//! data, and it does not cut a torn tail (it reports it; a damaged event log is reported too,
//! since the server derives its events again from the journal).

use anyhow::{bail, Context};
use kasa_core::State;
use kasa_engine::{apply_frame, hex};
use kasa_journal::{parse_snapshot_name, FileStorage, RecordLog, RecordLogOptions, Storage};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Runs the check and prints the summary.
pub fn run(data: &Path) -> anyhow::Result<()> {
    let dir = data.join("journal");
    if !dir.is_dir() {
        bail!("{} has no journal directory; expected a kasa data directory", data.display());
    }
    let started = Instant::now();
    let mut storage = FileStorage::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
    // The replay's state hash at each frame a snapshot claims to hold.
    let snapshot_seqs: Vec<u64> =
        storage.list().context("listing the journal")?.iter().filter_map(|n| parse_snapshot_name(n)).collect();
    let mut replay_hashes: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    let mut state = State::default();
    state.audit_limits(true);
    let mut events = EventCheck::open(&data.join("events"))?;
    let report = kasa_journal::verify(&mut storage, |frame| {
        apply_frame(&mut state, frame.seq, frame.timestamp, &frame.payload).map_err(|e| e.to_string())?;
        if let Some(violation) = state.take_limit_violation() {
            return Err(format!("frame {}: a per-user limit was broken: {violation}", frame.seq));
        }
        for event in state.take_events() {
            events.check(&event).map_err(|e| format!("frame {}: {e}", frame.seq))?;
        }
        if snapshot_seqs.contains(&frame.seq) {
            replay_hashes.insert(frame.seq, state.hash());
        }
        Ok(())
    })
    .context("journal check failed")?;
    println!("journal: {} segments, {} frames, {} bytes", report.segments, report.frames, report.bytes);
    println!(
        "frames: seq {} to {}, every checksum valid, hash chain intact (head {})",
        report.first_seq.unwrap_or(0),
        report.last_seq.unwrap_or(0),
        report.last_hash
    );
    for info in &report.snapshots {
        let handle = storage.try_clone().context("opening the journal again")?;
        let reader = kasa_journal::open_snapshot(handle, info.seq)?;
        let restored = State::decode_snapshot_from(reader, info.payload_bytes)
            .map_err(|e| anyhow::anyhow!("snapshot {}: does not decode: {e}", info.name))?;
        let replayed = replay_hashes
            .get(&info.seq)
            .with_context(|| format!("snapshot {}: frame {} was never replayed", info.name, info.seq))?;
        if restored.hash() != *replayed {
            bail!(
                "snapshot {}: state hash {} differs from the replay's {} at frame {}",
                info.name,
                hex(&restored.hash()),
                hex(replayed),
                info.seq
            );
        }
    }
    println!(
        "snapshots: {} valid, anchored in the chain, each equal to the replay at its frame",
        report.snapshots.len()
    );
    if let Some(torn) = &report.torn_tail {
        println!("torn tail: {torn:?} (an unacknowledged append; the server cuts it on start)");
    }
    println!(
        "replay: {} batches, last timestamp {}, {} events emitted",
        state.batches(),
        state.last_timestamp(),
        state.outbox().last_seq()
    );
    println!("{}", events.summary());
    for (name, ledger) in [("operators' ledger", state.ledger()), ("Kasa's books", state.books())] {
        println!("{name}: {} accounts, {} transfers", ledger.accounts_count(), ledger.transfers_count());
        let totals = ledger.totals().map_err(|e| anyhow::anyhow!("invariant broken in the {name}: {e}"))?;
        for (id, t) in &totals {
            let currency = kasa_core::Currency::of_ledger(*id).map_or(String::new(), |c| format!(" ({c})"));
            println!(
                "  ledger {id}{currency}: {} accounts, debits posted {} = credits posted {}, debits pending {} = credits pending {}",
                t.accounts, t.debits_posted, t.credits_posted, t.debits_pending, t.credits_pending
            );
        }
    }
    state.check_invariants().map_err(|e| anyhow::anyhow!("invariant broken: {e}"))?;
    let cold = data.join("cold.redb");
    if cold.exists() {
        let line = kasa_engine::check_cold_store(&cold, &state).map_err(|e| anyhow::anyhow!("cold store: {e}"))?;
        println!("cold store: {line}");
    }
    println!("invariants: every ledger balances, no account breaks its flags, no pending transfer resolved twice");
    println!(
        "wallets: {} users, each with a KRW wallet that cannot go negative and holds at most the legal maximum; \
         every pending funding has its reservation open, every settled one has not",
        state.wallets().users_count()
    );
    println!(
        "limits: every wallet credit within the tier's balance cap and every debit within the daily \
         outgoing limit, at the command that made it"
    );
    println!("state hash: {}", hex(&state.hash()));
    println!("ok: verified in {:.2?}", started.elapsed());
    Ok(())
}

/// The event log against the replay: each record must be the event the replay emitted with
/// its seq, in order; the log may end early (events not yet synced at a crash, which the
/// server derives again), never differ.
struct EventCheck {
    log: Option<RecordLog<ReadOnly>>,
    /// Why the log could not be opened as it is, if it could not.
    unopened: Option<String>,
    page: std::collections::VecDeque<(u64, Vec<u8>)>,
    read_up_to: u64,
    exhausted: bool,
    matched: u64,
    missing: u64,
}

impl EventCheck {
    fn open(dir: &Path) -> anyhow::Result<EventCheck> {
        let mut check = EventCheck {
            log: None,
            unopened: None,
            page: Default::default(),
            read_up_to: 0,
            exhausted: false,
            matched: 0,
            missing: 0,
        };
        if !dir.is_dir() {
            check.unopened = Some("there is no events directory".into());
            return Ok(check);
        }
        let storage = FileStorage::open(dir).with_context(|| format!("opening {}", dir.display()))?;
        match RecordLog::open(ReadOnly(storage), RecordLogOptions::default()) {
            Ok((log, _)) => check.log = Some(log),
            Err(e) => check.unopened = Some(format!("it needs a repair that the server makes on start ({e})")),
        }
        Ok(check)
    }

    fn check(&mut self, event: &kasa_core::event::Event) -> Result<(), String> {
        let Some(log) = &mut self.log else {
            self.missing += 1;
            return Ok(());
        };
        if self.page.is_empty() && !self.exhausted {
            let records = log.read(self.read_up_to, 1_000, 4 << 20).map_err(|e| format!("the event log: {e}"))?;
            self.exhausted = records.is_empty();
            self.read_up_to = records.last().map_or(self.read_up_to, |(seq, _)| *seq);
            self.page.extend(records);
        }
        match self.page.pop_front() {
            None => self.missing += 1,
            Some((seq, bytes)) => {
                let logged = kasa_engine::decode_event(seq, &bytes).map_err(|e| format!("the event log: {e}"))?;
                if logged != *event {
                    return Err(format!(
                        "event {seq} in the event log is {logged:?}, but the replay emitted {event:?} there"
                    ));
                }
                self.matched += 1;
            }
        }
        Ok(())
    }

    fn summary(&self) -> String {
        match &self.unopened {
            Some(why) => format!("event log: not checked: {why}; the server derives its events from the journal"),
            None if self.missing == 0 => format!("event log: {} events, each the replay's", self.matched),
            None => format!(
                "event log: {} events, each the replay's; the last {} are not in it yet (the server derives them on start)",
                self.matched, self.missing
            ),
        }
    }
}

/// A storage that refuses every change (a sync is not one): `kasa verify` only reads.
struct ReadOnly(FileStorage);

fn refused() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, "kasa verify only reads")
}

impl Storage for ReadOnly {
    fn list(&mut self) -> std::io::Result<Vec<String>> {
        self.0.list()
    }
    fn len(&mut self, name: &str) -> std::io::Result<u64> {
        self.0.len(name)
    }
    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_at(name, offset, buf)
    }
    fn write_at(&mut self, _name: &str, _offset: u64, _data: &[u8]) -> std::io::Result<()> {
        Err(refused())
    }
    // A sync changes nothing a reader sees: allowed (recovery syncs what it found).
    fn sync(&mut self, name: &str) -> std::io::Result<()> {
        self.0.sync(name)
    }
    fn truncate(&mut self, _name: &str, _len: u64) -> std::io::Result<()> {
        Err(refused())
    }
    fn rename(&mut self, _from: &str, _to: &str) -> std::io::Result<()> {
        Err(refused())
    }
    fn remove(&mut self, _name: &str) -> std::io::Result<()> {
        Err(refused())
    }
    fn sync_dir(&mut self) -> std::io::Result<()> {
        self.0.sync_dir()
    }
    fn try_clone(&self) -> std::io::Result<Self> {
        Ok(ReadOnly(self.0.try_clone()?))
    }
}
