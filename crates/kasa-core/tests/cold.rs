//! Transfers beyond RAM: a state whose oldest chunks of transfers are cold (read through a
//! `ColdStore`) answers every request exactly as the same state with everything in memory,
//! hashes the same and writes the same snapshot. The requests aim at the cold chunks: re-sent
//! ids (`exists` and its differences), ids that failed before (`id_already_failed`), posts and
//! voids of old pending transfers, lookups and account histories. The balance log goes cold
//! the same way, and its histories read the same.

use kasa_core::ledger::{
    Account, AccountFlags, ColdChunk, ColdKind, ColdStore, CreateTransferResult, LoggedBalance, Transfer,
    TransferFlags, TRANSFERS_PER_CHUNK,
};
use kasa_core::{Batch, Command, Outcome, State};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The cold chunks of one ledger, in memory, counting reads.
#[derive(Debug, Default)]
struct MemoryStore {
    records: Mutex<Vec<Transfer>>,
    links: Mutex<Vec<[u32; 2]>>,
    balances: Mutex<Vec<LoggedBalance>>,
    reads: AtomicU64,
}

impl ColdStore for MemoryStore {
    fn read(&self, first: u32, out: &mut [Transfer]) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let records = self.records.lock().unwrap();
        let first = first as usize;
        out.copy_from_slice(&records[first..first + out.len()]);
    }

    fn read_links(&self, position: u32) -> [u32; 2] {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.links.lock().unwrap()[position as usize]
    }

    fn read_balances(&self, first: u32, out: &mut [LoggedBalance]) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let first = first as usize;
        out.copy_from_slice(&self.balances.lock().unwrap()[first..first + out.len()]);
    }
}

const ACCOUNTS: u128 = 64;
/// The wallet-like account that cannot go negative: transfers from it fail for good.
const POOR: u128 = ACCOUNTS + 1;

fn transfer(id: u128, debit: u128, credit: u128, amount: u128, flags: u16) -> Transfer {
    Transfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: 1,
        code: 1,
        flags: TransferFlags(flags),
        ..Transfer::default()
    }
}

/// The account that cannot go negative.
fn poor_account() -> Account {
    Account {
        id: POOR,
        ledger: 1,
        code: 1,
        flags: AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
        ..Account::default()
    }
}

/// Moves every chunk of either kind that may go cold (all but `hot` after it) into `store`
/// and drops it.
fn spill(state: &mut State, store: &MemoryStore, hot: usize) -> usize {
    let mut moved = 0;
    for kind in ColdKind::ALL {
        loop {
            let (chunks, cold) = state.cold_chunks(0, kind);
            if cold + hot >= chunks {
                break;
            }
            let Some(chunk) = state.sealed_chunk(0, kind, cold) else { break };
            match chunk {
                ColdChunk::Transfers { records, links } => {
                    store.records.lock().unwrap().extend_from_slice(&records);
                    store.links.lock().unwrap().extend_from_slice(&links);
                }
                ColdChunk::Balances(entries) => store.balances.lock().unwrap().extend_from_slice(&entries),
            }
            state.make_chunk_cold(0, kind);
            moved += 1;
        }
    }
    moved
}

struct Pair {
    hot: State,
    cold: State,
    store: Arc<MemoryStore>,
    timestamp: u64,
}

impl Pair {
    fn new() -> Pair {
        let store = Arc::new(MemoryStore::default());
        let mut cold = State::default();
        cold.set_cold_store(0, store.clone());
        Pair { hot: State::default(), cold, store, timestamp: 1_000_000_000 }
    }

    fn apply(&mut self, command: Command) -> Outcome {
        self.timestamp += 1_000_000;
        let batch = Batch { timestamp: self.timestamp, commands: vec![command] };
        let a = self.hot.apply(&batch).unwrap();
        let b = self.cold.apply(&batch).unwrap();
        assert_eq!(a, b, "a cold state answers as a hot one");
        spill(&mut self.cold, &self.store, 1);
        a.into_iter().next().unwrap()
    }
}

fn results(outcome: &Outcome) -> Vec<CreateTransferResult> {
    match outcome {
        Outcome::Ledger(kasa_core::ledger::Outcome::Transfers(items)) => items.iter().map(|o| o.result).collect(),
        other => panic!("not a transfers outcome: {other:?}"),
    }
}

#[test]
fn a_state_with_cold_chunks_answers_hashes_and_snapshots_as_one_without() {
    let mut pair = Pair::new();
    let mut accounts: Vec<Account> =
        (1..=ACCOUNTS).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
    accounts[0].flags = AccountFlags(AccountFlags::HISTORY);
    accounts.push(poor_account());
    pair.apply(Command::create_accounts(accounts));

    // Four chunks and a bit: plain transfers between pseudo-random pairs, every 97th a
    // pending one, every 1,001st from the account that cannot pay (failed for good).
    let total = 4 * TRANSFERS_PER_CHUNK as u128 + 1_000;
    let mut next = 1u128;
    let mut seed = 7u64;
    while next <= total {
        let batch: Vec<Transfer> = (0..8_000.min(total + 1 - next))
            .map(|i| {
                let id = next + i;
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let debit = (seed >> 33) as u128 % ACCOUNTS + 1;
                let credit = debit % ACCOUNTS + 1;
                if id.is_multiple_of(1_001) {
                    transfer(id, POOR, credit, 5, 0)
                } else if id.is_multiple_of(97) {
                    transfer(id, debit, credit, 10, TransferFlags::PENDING)
                } else {
                    transfer(id, debit, credit, 1 + id % 50, 0)
                }
            })
            .collect();
        next += batch.len() as u128;
        pair.apply(Command::create_transfers(batch));
    }
    let (chunks, cold) = pair.cold.cold_chunks(0, ColdKind::Transfers);
    assert!(cold >= 3, "{cold} of {chunks} chunks went cold");
    let reads_before = pair.store.reads.load(Ordering::Relaxed);

    // Requests aimed at the cold chunks.
    let old = 5u128; // in chunk 0
    let stored = pair.hot.ledger().transfer(old).unwrap();
    let mut again = stored;
    again.timestamp = 0;
    let mut different = again;
    different.amount += 1;
    let batch = vec![
        again,                                                              // exists
        different,                                                          // exists_with_different_amount
        transfer(1_001, POOR, 2, 5, 0),                                     // id_already_failed
        transfer(total + 1, 1, 2, 1, TransferFlags::POST_PENDING_TRANSFER), // posts pending 97
        transfer(total + 2, 1, 2, 0, TransferFlags::VOID_PENDING_TRANSFER), // voids pending 194
        transfer(total + 3, 3, 4, 1, 0),                                    // new
    ];
    let mut batch = batch;
    batch[3] = Transfer { pending_id: 97, debit_account_id: 0, credit_account_id: 0, amount: 10, ..batch[3] };
    batch[4] = Transfer { pending_id: 194, debit_account_id: 0, credit_account_id: 0, ..batch[4] };
    let outcome = pair.apply(Command::create_transfers(batch));
    use CreateTransferResult as R;
    assert_eq!(
        results(&outcome),
        vec![R::Exists, R::ExistsWithDifferentAmount, R::IdAlreadyFailed, R::Ok, R::Ok, R::Ok],
        "{outcome:?}"
    );
    assert!(pair.store.reads.load(Ordering::Relaxed) > reads_before, "the cold chunks were read");

    // Reads: lookups and an account's history through the cold chunks.
    for id in [1, 2, 97, 16_384, 16_385, 40_000, total] {
        assert_eq!(pair.hot.ledger().transfer(id), pair.cold.ledger().transfer(id), "transfer {id}");
        assert_eq!(pair.hot.ledger().pending_status(id), pair.cold.ledger().pending_status(id));
    }
    assert_eq!(pair.cold.ledger().transfer(total + 10), None);
    let history = |s: &State| s.ledger().account_transfers(1, 0, 0, 100_000);
    assert!(history(&pair.hot).len() > 1_000);
    assert_eq!(history(&pair.hot), history(&pair.cold));
    let middle = pair.hot.ledger().transfer(30_000).unwrap().timestamp;
    let bounded = |s: &State| s.ledger().account_transfers(2, 0, middle, 50);
    assert_eq!(bounded(&pair.hot), bounded(&pair.cold));
    assert_eq!(pair.hot.ledger().transfers().collect::<Vec<_>>(), pair.cold.ledger().transfers().collect::<Vec<_>>());
    // A history from any moment is the account's transfers at or before it, newest first
    // (the marks that shorten the walk skip nothing).
    let all: Vec<Transfer> = pair.hot.ledger().transfers().collect();
    for (k, account) in [1u128, 2, 7, POOR, 40].into_iter().enumerate() {
        for max in
            [all[100].timestamp, all[20_000].timestamp, all[50_000].timestamp + k as u64, all[all.len() - 5].timestamp]
        {
            let expected: Vec<Transfer> = all
                .iter()
                .rev()
                .filter(|t| t.timestamp <= max && (t.debit_account_id == account || t.credit_account_id == account))
                .take(30)
                .copied()
                .collect();
            assert_eq!(
                pair.cold.ledger().account_transfers(account, 0, max, 30),
                expected,
                "account {account} before {max}"
            );
            assert_eq!(pair.hot.ledger().account_transfers(account, 0, max, 30), expected);
        }
    }

    // The same hash and the same snapshot, which decodes to an equal state.
    assert_eq!(pair.hot.hash(), pair.cold.hash());
    let snapshot = pair.cold.encode_snapshot();
    assert_eq!(snapshot, pair.hot.encode_snapshot());
    let decoded = State::decode_snapshot(&snapshot).unwrap();
    assert_eq!(decoded.hash(), pair.hot.hash());
    pair.cold.check_invariants().unwrap();
}

#[test]
fn kept_hashes_spare_the_store_for_new_ids() {
    let mut pair = Pair::new();
    let accounts = (1..=2).map(|id| Account { id, ledger: 1, code: 1, ..Account::default() }).collect();
    pair.apply(Command::create_accounts(accounts));
    let mut next = 1u128;
    while next <= 3 * TRANSFERS_PER_CHUNK as u128 {
        let batch: Vec<Transfer> = (next..next + 8_000).map(|id| transfer(id, 1, 2, 1, 0)).collect();
        next += 8_000;
        pair.apply(Command::create_transfers(batch));
    }
    assert!(pair.cold.cold_chunks(0, ColdKind::Transfers).1 >= 1);
    let reads = pair.store.reads.load(Ordering::Relaxed);
    // 8,000 new ids with random bits probe an index whose older slots are cold: the kept
    // hashes answer every one (a read per tag match would be dozens).
    let batch: Vec<Transfer> = (0..8_000u128)
        .map(|i| transfer((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) | 1 << 100, 1, 2, 1, 0))
        .collect();
    pair.apply(Command::create_transfers(batch));
    let extra = pair.store.reads.load(Ordering::Relaxed) - reads;
    assert_eq!(extra, 0, "reads of the store for new ids");
}

#[test]
fn a_rolled_back_chain_takes_its_history_marks_with_it() {
    let mut pair = Pair::new();
    let accounts = vec![
        Account { id: 1, ledger: 1, code: 1, ..Account::default() },
        Account { id: 2, ledger: 1, code: 1, ..Account::default() },
        poor_account(),
    ];
    pair.apply(Command::create_accounts(accounts));
    // 63 transfers between 1 and 2: the next one of each is its 64th, a marked one.
    pair.apply(Command::create_transfers((1..=63).map(|id| transfer(id, 1, 2, 1, 0)).collect()));
    // A linked chain whose first item is that 64th transfer and whose last fails: rolled back.
    let chain = vec![transfer(64, 1, 2, 1, TransferFlags::LINKED), transfer(65, POOR, 2, 1, 0)];
    let outcome = pair.apply(Command::create_transfers(chain));
    assert_eq!(results(&outcome), vec![CreateTransferResult::LinkedEventFailed, CreateTransferResult::ExceedsCredits]);
    // The position of the rolled-back transfer goes to one that is not account 1's (a mark
    // left behind would send account 1's walk down another account's chain), then 200 more:
    // every history from the past is exact.
    pair.apply(Command::create_transfers(vec![transfer(99, 2, POOR, 1, 0)]));
    pair.apply(Command::create_transfers((100..300).map(|id| transfer(id, 2, 1, 1, 0)).collect()));
    let all: Vec<Transfer> = pair.hot.ledger().transfers().collect();
    for max in all.iter().step_by(7).map(|t| t.timestamp) {
        let expected: Vec<Transfer> = all
            .iter()
            .rev()
            .filter(|t| t.timestamp <= max && (t.debit_account_id == 1 || t.credit_account_id == 1))
            .take(10)
            .copied()
            .collect();
        assert_eq!(pair.hot.ledger().account_transfers(1, 0, max, 10), expected, "before {max}");
    }
}

#[test]
fn cold_balances_read_back_as_hot_ones_through_rollbacks_snapshots_and_decoding() {
    let mut pair = Pair::new();
    let mut accounts: Vec<Account> = (1..=4)
        .map(|id| Account { id, ledger: 1, code: 1, flags: AccountFlags(AccountFlags::HISTORY), ..Account::default() })
        .collect();
    accounts.push(poor_account());
    pair.apply(Command::create_accounts(accounts));
    // Two balances a transfer: three chunks of the log and more, every 89th transfer pending.
    let total = 3 * TRANSFERS_PER_CHUNK as u128 / 2 + 3_000;
    let mut next = 1u128;
    while next <= total {
        let batch: Vec<Transfer> = (next..(next + 8_000).min(total + 1))
            .map(|id| {
                let flags = if id.is_multiple_of(89) { TransferFlags::PENDING } else { 0 };
                transfer(id, id % 4 + 1, (id + 1) % 4 + 1, 1 + id % 9, flags)
            })
            .collect();
        next += batch.len() as u128;
        pair.apply(Command::create_transfers(batch));
    }
    let (chunks, cold) = pair.cold.cold_chunks(0, ColdKind::Balances);
    assert!(cold >= 2, "{cold} of {chunks} chunks of balances went cold");
    // A linked chain that fails after its first item pushed balances: rolled back, the cold
    // chunks untouched.
    let chain = vec![transfer(total + 1, 1, 2, 1, TransferFlags::LINKED), transfer(total + 2, POOR, 2, 1, 0)];
    pair.apply(Command::create_transfers(chain));
    pair.apply(Command::create_transfers(vec![transfer(total + 3, 3, 4, 1, 0)]));
    let reads = pair.store.reads.load(Ordering::Relaxed);
    for account in 1..=4u128 {
        let all = |s: &State| s.ledger().account_balances(account).to_vec();
        assert!(all(&pair.hot).len() > 10_000);
        assert_eq!(all(&pair.cold), all(&pair.hot), "account {account}");
        for at in [1_000u128, 10_000, 25_000] {
            let moment = pair.hot.ledger().transfer(at).unwrap().timestamp;
            let before = |s: &State| s.ledger().account_balances(account).partition_point(|b| b.timestamp <= moment);
            assert_eq!(before(&pair.cold), before(&pair.hot), "account {account} at {moment}");
        }
    }
    assert!(pair.store.reads.load(Ordering::Relaxed) > reads, "the cold balances were read");
    // The search by time finds what counting finds, at every kind of moment; one for a recent
    // moment reads nothing from the store (it starts from the newest).
    let history = pair.cold.ledger().account_balances(1).to_vec();
    let moments = (0..history.len()).step_by(997).map(|i| history[i].timestamp).chain([0, u64::MAX]);
    for moment in moments.chain(history.iter().rev().take(40).map(|b| b.timestamp - 1)) {
        let counted = history.iter().filter(|b| b.timestamp <= moment).count();
        let found = pair.cold.ledger().account_balances(1).partition_point(|b| b.timestamp <= moment);
        assert_eq!(found, counted, "at {moment}");
    }
    let reads = pair.store.reads.load(Ordering::Relaxed);
    let recent = history[history.len() - 100].timestamp;
    pair.cold.ledger().account_balances(1).partition_point(|b| b.timestamp <= recent);
    assert_eq!(pair.store.reads.load(Ordering::Relaxed), reads, "a recent moment read the store");
    for position in [0, 16_383, 16_384, 40_000, pair.hot.ledger().balance_log_len() - 1] {
        assert_eq!(pair.cold.ledger().logged_balance(position), pair.hot.ledger().logged_balance(position));
    }
    assert_eq!(pair.cold.ledger().logged_balance(pair.hot.ledger().balance_log_len()), None);
    // The same hash and snapshot; decoded, the same state.
    assert_eq!(pair.hot.hash(), pair.cold.hash());
    let snapshot = pair.cold.encode_snapshot();
    assert_eq!(snapshot, pair.hot.encode_snapshot());
    assert_eq!(State::decode_snapshot(&snapshot).unwrap().hash(), pair.hot.hash());
}
