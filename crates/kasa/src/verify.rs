//! `kasa verify --data DIR`: an offline audit of a data directory. It checks every frame's
//! checksum and the hash chain from frame 1 (through `kasa_journal::verify`), replays every
//! frame from an empty state, checks that each snapshot holds exactly the state the replay
//! reached at its frame, checks the ledger invariants, and prints a summary. Any problem is an
//! error and a non-zero exit. It only reads: it is safe on a copy of production data, and it
//! does not cut a torn tail (it reports it).

use anyhow::{bail, Context};
use kasa_core::State;
use kasa_engine::{apply_frame, hex};
use kasa_journal::{parse_snapshot_name, FileStorage, Storage};
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
    let report = kasa_journal::verify(&mut storage, |frame| {
        apply_frame(&mut state, frame.seq, frame.timestamp, &frame.payload).map_err(|e| e.to_string())?;
        if let Some(violation) = state.take_limit_violation() {
            return Err(format!("frame {}: a per-user limit was broken: {violation}", frame.seq));
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
