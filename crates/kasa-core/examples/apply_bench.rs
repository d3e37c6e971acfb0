//! The ledger's write path alone, without HTTP, journal or threads: creates accounts, then
//! applies transfers between random pairs through [`State::apply`], one command per batch, as
//! `kasa bench ledger` sends them, and prints the time per transfer and the slowest batches.
//! Only `State::apply` is timed, and apart from it the journal payload's encoding, which the
//! sequencer also does for each batch; building the commands is not. Besides wall time it reads the
//! thread's CPU time (Linux's `/proc/thread-self/schedstat`), which a busy machine inflates
//! less: time spent waiting for a core is left out.
//!
//! ```text
//! cargo run --release -p kasa-core --example apply_bench -- [transfers] [accounts] [batch] [seed] [slowest]
//! ```
//!
//! Defaults: 4,000,000 transfers, 10,000 accounts, batches of 8,189, seed 1, the 3 slowest
//! batches shown. Run it on an idle
//! machine; `perf stat` or `perf record` around it isolate the core's costs.

use kasa_core::{Account, Batch, Command, Outcome, State, Transfer};
use std::time::{Duration, Instant};

/// xorshift64*, the generator of `kasa bench ledger` (`crates/kasa/src/bench.rs`), so that both
/// draw the same pairs and amounts; copied, because an example of the core cannot depend on
/// the binary.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// How many of a batch's items succeeded.
fn successes(outcomes: &[Outcome]) -> usize {
    use kasa_core::ledger::Outcome as O;
    outcomes
        .iter()
        .map(|o| match o {
            Outcome::Ledger(O::Accounts(a)) => a.iter().filter(|a| a.result.is_success()).count(),
            Outcome::Ledger(O::Transfers(t)) => t.iter().filter(|t| t.result.is_success()).count(),
            _ => 0,
        })
        .sum()
}

/// Nanoseconds this thread has run on a CPU, or 0 where the kernel does not say.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Resident bytes of this process, or 0 where the kernel does not say.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args().nth(n).map(|a| a.replace('_', "").parse().expect("a number")).unwrap_or(default)
}

fn main() {
    let transfers = arg(1, 4_000_000);
    let accounts = arg(2, 10_000);
    let batch_size = arg(3, 8_189);
    let mut rng = Rng(arg(4, 1) | 1);
    let shown = arg(5, 3) as usize;
    // Ids start high and share their top bits, like the benchmark's time-based base.
    let base: u128 = 1_700_000_000_000_000_000u128 << 32;
    let mut state = State::default();
    let mut timestamp = 1_000_000_000u64;
    let all: Vec<Account> =
        (0..accounts).map(|i| Account { id: base + i as u128 + 1, ledger: 1, code: 1, ..Default::default() }).collect();
    for chunk in all.chunks(kasa_core::ITEMS_PER_COMMAND_MAX) {
        let batch = Batch { timestamp, commands: vec![Command::create_accounts(chunk.to_vec())] };
        let outcomes = state.apply(&batch).expect("accounts apply");
        assert_eq!(successes(&outcomes), chunk.len());
        timestamp += chunk.len() as u64 + 1;
    }

    let rss_before = rss_bytes();
    let mut applied = 0u64;
    let mut total = Duration::ZERO;
    let mut encoding = Duration::ZERO;
    let mut payload = Vec::new();
    let mut total_cpu = Duration::ZERO;
    let mut slowest: Vec<(Duration, u64)> = Vec::new();
    let mut window = (Duration::ZERO, Duration::ZERO, 0u64);
    const WINDOW: u64 = 1_000_000;
    while applied < transfers {
        let count = (transfers - applied).min(batch_size);
        let mut items = Vec::with_capacity(count as usize);
        for i in 0..count {
            let debit = rng.next() % accounts;
            let mut credit = rng.next() % accounts;
            if credit == debit {
                credit = (credit + 1) % accounts;
            }
            items.push(Transfer {
                id: base + (applied + i) as u128 + 1,
                debit_account_id: base + debit as u128 + 1,
                credit_account_id: base + credit as u128 + 1,
                amount: 1 + rng.next() as u128 % 100,
                ledger: 1,
                code: 1,
                ..Default::default()
            });
        }
        let batch = Batch { timestamp, commands: vec![Command::create_transfers(items)] };
        let started = Instant::now();
        payload.clear();
        kasa_core::encode_commands(&batch.commands, &mut payload);
        encoding += started.elapsed();
        let cpu_started = cpu_ns();
        let started = Instant::now();
        let outcomes = state.apply(&batch).expect("transfers apply");
        let took = started.elapsed();
        let took_cpu = Duration::from_nanos(cpu_ns() - cpu_started);
        assert_eq!(successes(&outcomes), count as usize, "every transfer succeeds");
        drop(outcomes);
        drop(batch);
        total += took;
        total_cpu += took_cpu;
        window.0 += took;
        window.1 += took_cpu;
        window.2 += count;
        slowest.push((took, applied));
        applied += count;
        timestamp += count + 1;
        if window.2 >= WINDOW || applied == transfers {
            println!(
                "  up to {:>9} transfers: {:6.1} ns/transfer, cpu {:6.1}",
                applied,
                window.0.as_nanos() as f64 / window.2 as f64,
                window.1.as_nanos() as f64 / window.2 as f64
            );
            window = (Duration::ZERO, Duration::ZERO, 0);
        }
    }
    slowest.sort_by(|a, b| b.cmp(a));
    let mut batch_wall: Vec<Duration> = slowest.iter().map(|s| s.0).collect();
    batch_wall.sort();
    println!("payload encoding: {:.1} ns/transfer", encoding.as_nanos() as f64 / transfers as f64);
    // As `kasa bench ledger` counts it: resident memory after the transfers less before.
    println!("memory: {:.1} bytes per transfer", rss_bytes().saturating_sub(rss_before) as f64 / transfers as f64);
    // The median batch is the steady cost without growth, and the least disturbed by other
    // work on the machine. The thread's CPU time is only as fine as the scheduler's tick, so
    // per batch only wall times are shown.
    println!(
        "{} transfers in {:.3?}: {:.1} ns/transfer, cpu {:.1}; batch median {:.2?}, slowest {}",
        transfers,
        total,
        total.as_nanos() as f64 / transfers as f64,
        total_cpu.as_nanos() as f64 / transfers as f64,
        batch_wall[batch_wall.len() / 2],
        slowest.iter().take(shown).map(|(d, at)| format!("{d:.2?} (at {at})")).collect::<Vec<_>>().join(", ")
    );
}
