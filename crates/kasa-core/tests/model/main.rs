//! The ledger against a reference model: random sequences of batches run through the real
//! [`State`] and through `Model`, a second ledger written from the semantics alone, and after
//! every batch every result, account, transfer, pending status, account history and balance
//! history must agree and the invariants must hold. At the end of each sequence the snapshot
//! must round-trip and a replay must give the same hash.
//!
//! The model shares no code and no data structures with the ledger: accounts in a `BTreeMap`,
//! transfers in a `Vec` with a `BTreeMap` from id to index, pending statuses by transfer id,
//! and linked chains undone by restoring a clone of the whole model taken before the chain
//! rather than by an undo log. Its checks are written as tables in precedence order, so that a
//! reader can hold them against the list of result codes. It is slow and plain on purpose.
//!
//! The workload is tuned to reach most result codes: eight account ids (one more that is never
//! created), two ledgers, every account flag, transfer ids from a small range so that retries,
//! `exists_with_different_*` and `id_already_failed` happen, amounts that are zero, small or
//! near `u128::MAX`, pending transfers with timeouts of 0 to 3 seconds, posts and voids of
//! earlier pending transfers with zero, partial, whole, `u128::MAX` or excessive amounts,
//! balancing and closing transfers, linked chains of one to four events (some left open at
//! the end of a batch), empty batches, and batch timestamps that sometimes land just before an
//! expiry so that it falls mid-batch, or near 2^63, where timeouts overflow.
//!
//! A failure prints the seed and a shrunk sequence of batches that still fails. To run one
//! seed: `KASA_MODEL_SEED=123 cargo test -p kasa-core --test model`; to run more sequences:
//! `KASA_MODEL_SEQUENCES=5000`.
//!
//! The semantics are TigerBeetle's (0.16 and later), except that an `exists` inside a linked
//! chain counts as a success (see `Model::run_chains`); `tests/tigerbeetle.rs` holds the
//! scenarios with TigerBeetle's own answers. Besides agreement with the model, the comparison
//! asks that every balance history run forward in time. The two regression tests at the end
//! pin down two disagreements found (and fixed) earlier, in a few lines each.
//!
//! Not covered: the `timestamp_max` scan of `account_transfers` past 4,096 transfers, and
//! batches refused as a whole (non-increasing or overflowing timestamps), which
//! `tests/results.rs` covers.

#[path = "../support/mod.rs"]
mod support;

mod check;
mod reference;
mod shape;
mod workload;

use kasa_core::{
    Account, AccountBalance, AccountFlags, AccountFlags as AF, AccountOutcome, CreateAccountResult as AR,
    CreateTransferResult as TR, PendingStatus, State, Transfer, TransferFlags, TransferFlags as TF, TransferOutcome,
};
use shape::{Batch, Command, Outcome};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use support::SECOND;

use check::*;
use reference::*;
use workload::*;

const MAX: u128 = u128::MAX;

/// No id is reserved any more: Kasa's own accounts live in books of their own, so the ledger
/// API takes any id but 0 and 2^128-1, as TigerBeetle does.
fn reserved(_id: u128) -> bool {
    false
}

/// Result codes the ledger no longer returns (kept in the enums, whose positions are public).
const NO_LONGER_RETURNED: [TR; 3] = [TR::IdReserved, TR::PendingIdReserved, TR::AmountMustNotBeZero];
/// Sequences per run: about four seconds in a debug build on two cores.
const SEQUENCES: u64 = 1000;
/// Batches per sequence: enough for pending transfers to be created, resolved and expired.
const BATCHES_PER_SEQUENCE: usize = 30;
/// Accounts 1..=8 are created by the workload; 9 and 10 only ever by invalid requests, so
/// transfers naming them find no account.
const ACCOUNT_IDS: u128 = 8;
/// The most commands in one batch and items in one command: small, so that shrunk
/// counterexamples stay readable.
const COMMANDS_PER_BATCH_MAX: u64 = 3;
const TRANSFERS_PER_COMMAND_MAX: u64 = 8;
const ACCOUNTS_PER_COMMAND_MAX: u64 = 4;
/// Passes of the shrinker over a failing sequence; each pass tries to drop every batch,
/// command and item once.
const SHRINK_PASSES_MAX: usize = 8;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

#[test]
fn ledger_agrees_with_the_model_on_random_batches() {
    let seeds: Vec<u64> = match env_u64("KASA_MODEL_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("KASA_MODEL_SEQUENCES").unwrap_or(SEQUENCES)).collect(),
    };
    let seeds_count = seeds.len() as u64;
    let mut seen_transfer = std::collections::BTreeSet::new();
    let mut seen_account = std::collections::BTreeSet::new();
    for seed in seeds {
        let batches = Workload::new(seed).sequence(BATCHES_PER_SEQUENCE);
        if let Some(message) = fails(&batches, seed) {
            let hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let small = shrink(batches, seed);
            std::panic::set_hook(hook);
            let small_message = fails(&small, seed).unwrap_or_default();
            panic!(
                "seed {seed} (rerun with KASA_MODEL_SEED={seed}): {message}\n\
                 shrunk to {} batches: {small_message}\n{}",
                small.len(),
                describe(&small)
            );
        }
        // Count the result codes the workload reached, to keep it honest.
        let mut model = Model::default();
        for batch in &batches {
            for outcome in model.apply(batch) {
                match outcome {
                    Outcome::CreateAccounts(r) => seen_account.extend(r.iter().map(|o| o.result)),
                    Outcome::CreateTransfers(r) => seen_transfer.extend(r.iter().map(|o| o.result)),
                }
            }
        }
    }
    // The workload must keep reaching every result code, or the comparison proves less than
    // it seems to. Only a full run is large enough to promise that.
    if seeds_count >= SEQUENCES {
        let missing: Vec<&str> = TR::ALL
            .iter()
            .filter(|r| !seen_transfer.contains(r) && !NO_LONGER_RETURNED.contains(r))
            .map(|r| r.name())
            .chain(AR::ALL.iter().filter(|r| !seen_account.contains(r) && **r != AR::IdReserved).map(|r| r.name()))
            .collect();
        assert!(missing.is_empty(), "result codes the workload never reached: {missing:?}");
    }
}

/// Regression: the last event of a linked chain left open at the end of a command must get
/// `linked_event_chain_open` even when an earlier event of the chain failed first, as in
/// TigerBeetle (which checks for the open chain before anything else) and as the ledger's
/// `run_chains` doc comment says. The ledger gives it `linked_event_failed` instead, so a
/// client is not told that its chain was never closed.
#[test]
fn open_chain_is_reported_even_after_an_earlier_failure() {
    let mut h = support::Harness::default();
    assert_eq!(h.accounts(vec![support::account(1, 1, 0), support::account(2, 1, 0)]), ["ok", "ok"]);
    let linked = |t| support::with_flags(t, TF::LINKED);
    let results = h.transfers(vec![linked(support::transfer(10, 1, 9, 1)), linked(support::transfer(11, 1, 2, 1))]);
    assert_eq!(results, ["credit_account_not_found", "linked_event_chain_open"]);
    let results = h.accounts(vec![
        Account { flags: AccountFlags(AF::LINKED), ..support::account(3, 0, 0) },
        support::account(4, 1, AF::LINKED),
    ]);
    assert_eq!(results, ["ledger_must_not_be_zero", "linked_event_chain_open"]);
}

/// Regression: an expiry records the account's balance at the expiry time, which can be
/// earlier than balances the account already recorded, when the batch before the expiry
/// started before the expiry time and ran past it. The history then goes back in time, and
/// its entry for the expiry claims a balance "as of" a moment that already includes later
/// transfers.
#[test]
fn balance_history_never_goes_back_in_time() {
    let mut h = support::Harness::default();
    assert_eq!(h.accounts(vec![support::account(1, 1, 0), support::account(2, 1, AF::HISTORY)]), ["ok", "ok"]);
    assert_eq!(h.transfers(vec![support::pending(10, 1, 2, 5, 1)]), ["ok"]);
    let expires_at = h.state.ledger().transfer(10).unwrap().timestamp + SECOND;
    // Events at expires_at - 1, expires_at and expires_at + 1; the expiry runs in the next batch.
    h.now = expires_at - 1;
    let plain = |id| support::transfer(id, 1, 2, 1);
    assert_eq!(h.transfers(vec![plain(11), plain(12), plain(13)]), ["ok", "ok", "ok"]);
    h.apply(vec![]);
    assert_eq!(h.state.ledger().pending_status(10), Some(PendingStatus::Expired));
    let timestamps: Vec<u64> = h.state.ledger().account_balances(2).iter().map(|b| b.timestamp).collect();
    assert!(timestamps.windows(2).all(|w| w[0] <= w[1]), "history timestamps {timestamps:?} go back in time");
}
