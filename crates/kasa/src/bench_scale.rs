//! `kasa bench scale`: what one request costs as the platform grows. The engine, its journal
//! on disk (every batch synced before it is answered) and the server's state run in this
//! process, without the HTTP layer (whose work per request does not depend on how many
//! members there are); the commands are the ones the routes submit, through the same
//! `AppState` functions. At the first size (`--users`) and at ten times it, the same
//! operations are measured from `--concurrency` tasks:
//!
//! - **sign-up**: a phone verification and the sign-up (two commands);
//! - **link**: a bank account linked (its number sealed, as the route does);
//! - **top-up**: a funding started and settled by the bank's answer (two commands);
//! - **send**: a remittance between two seeded members, as their session;
//! - **history**: the first page (20 entries) of a seeded member's `/v1/me/transactions`.
//!
//! Between the sizes the members are seeded as `kasa bench wallet` seeds them (each with a bank
//! account, a top-up and a session), and the seeding rate and the process's memory are
//! printed. Per-request costs that do not grow with the number of members are the aim
//! (issue 12): the last table gives each operation's cost at both sizes and their ratio.

use crate::bench::{check_disk, percentile, CLEANUP};
use anyhow::{bail, Context};
use kasa_core::money::Amount;
use kasa_core::wallet::{Command, HistoryCursor, Memo, Outcome, Recipient};
use kasa_server::{demo, AppState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `kasa bench scale`.
#[derive(clap::Args, Clone)]
pub struct ScaleArgs {
    /// Members at the first size; the second size is ten times as many.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u64,
    /// Operations of each kind measured at each size.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) ops: u64,
    /// Operations in flight at once.
    #[arg(long, default_value_t = 512)]
    pub(crate) concurrency: u64,
}

/// The operations measured.
#[derive(Clone, Copy, Debug)]
enum Op {
    SignUp,
    Link,
    TopUp,
    Send,
    History,
}

impl Op {
    const ALL: [Op; 5] = [Op::SignUp, Op::Link, Op::TopUp, Op::Send, Op::History];

    fn name(self) -> &'static str {
        match self {
            Op::SignUp => "sign-up",
            Op::Link => "link",
            Op::TopUp => "top-up",
            Op::Send => "send",
            Op::History => "history",
        }
    }
}

/// What one operation kind cost at one size.
#[derive(Clone, Copy)]
struct Cost {
    /// Wall time over the operations (with `--concurrency` in flight).
    per_op: Duration,
    /// CPU time of the whole process (engine, journal, this runtime) per operation.
    cpu_per_op: Duration,
    p50: Duration,
    p99: Duration,
    refused: u64,
}

/// The members measured at one size, and those the operations made.
struct Members {
    /// Seeded members' ids and session token hashes.
    seeded: Vec<(u64, [u8; 32])>,
    /// Members signed up by the `sign-up` operation at this size, and their linked accounts.
    fresh: Vec<u64>,
    accounts: Vec<u64>,
    /// The next phone index free.
    next_index: u64,
}

/// Runs `kasa bench scale`.
pub fn run(args: ScaleArgs) -> anyhow::Result<()> {
    if args.users < 2 || args.ops == 0 || args.concurrency == 0 {
        bail!("need at least 2 users, 1 op and a concurrency of 1");
    }
    let big = args.users.checked_mul(10).context("--users is too large")?;
    if big + 2 * args.ops > 79_000_000 {
        bail!("bench phone numbers run out past 79 million members");
    }
    let temp = tempfile::Builder::new().prefix("kasa-bench-").tempdir_in(".")?;
    CLEANUP.lock().expect("cleanup lock").0 = Some(temp.path().to_path_buf());
    // About 4 KiB of journal per seeded member, and as much per measured operation.
    check_disk(temp.path(), (big + 10 * args.ops) * 4096)?;
    println!(
        "kasa bench scale: the cost of sign-up, link, top-up, send and history at {} and {} members \
         ({} of each, {} in flight; the engine in this process, journal synced, no HTTP)",
        args.users, big, args.ops, args.concurrency
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (engine, app) = start(temp.path())?;
    engine.answer_on(runtime.handle());
    let result = runtime.block_on(measure_sizes(&app, &args, big));
    drop(app);
    let stopped = engine.shutdown();
    let costs = result?;
    stopped.map_err(|e| anyhow::anyhow!("the engine stopped with an error: {e}"))?;
    println!();
    println!(
        "| operation | {} members | {} members | ratio (wall) | CPU at {} | CPU at {} |",
        args.users, big, args.users, big
    );
    println!("|---|---|---|---|---|---|");
    for (i, op) in Op::ALL.iter().enumerate() {
        let (small, large) = (costs[0][i], costs[1][i]);
        println!(
            "| {} | {:.1} µs | {:.1} µs | {:.2} | {:.1} µs | {:.1} µs |",
            op.name(),
            micros(small.per_op),
            micros(large.per_op),
            micros(large.per_op) / micros(small.per_op).max(0.001),
            micros(small.cpu_per_op),
            micros(large.cpu_per_op),
        );
    }
    Ok(())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The engine on `dir` and the server's state over it, with the sandbox bank and SMS gateway.
fn start(dir: &std::path::Path) -> anyhow::Result<(Arc<kasa_engine::Engine>, AppState)> {
    let (journal, events) = (dir.join("journal"), dir.join("events"));
    std::fs::create_dir_all(&journal)?;
    std::fs::create_dir_all(&events)?;
    let storage = kasa_journal::FileStorage::open(&journal).context("the journal directory")?;
    let events = kasa_journal::FileStorage::open(&events).context("the event log directory")?;
    let (engine, _) = kasa_engine::Engine::start(storage, events, kasa_engine::EngineOptions::default())
        .context("starting the engine")?;
    let engine = Arc::new(engine);
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).context("randomness")?;
    let secret = |label: &str| kasa_server::Secret::new(format!("{label}{}", kasa_engine::hex(&key)));
    let bank = kasa_server::bank::SandboxBank::open(None, Duration::ZERO, "", "", false)?;
    let config = kasa_server::Config {
        operator_key: secret("kasa_op_"),
        pin_pepper: secret("pepper"),
        data_key: secret("data"),
        bank: Arc::new(bank),
        sms: Arc::new(kasa_server::sms::SandboxSms::default()),
        webhooks_allow_private: false,
        journal_dir: None,
    };
    let app = AppState::new(engine.clone(), config);
    Ok((engine, app))
}

async fn measure_sizes(app: &AppState, args: &ScaleArgs, big: u64) -> anyhow::Result<Vec<Vec<Cost>>> {
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).context("randomness")?;
    let mut members = Members { seeded: Vec::new(), fresh: Vec::new(), accounts: Vec::new(), next_index: 0 };
    let mut costs = Vec::new();
    let mut rss_before: Option<(u64, u64)> = None;
    for size in [args.users, big] {
        let start = members.next_index;
        let seed_count = size - members.seeded.len() as u64;
        let started = Instant::now();
        let ids = demo::seed_bench_users(app, start..start + seed_count, &secret).await.map_err(anyhow::Error::msg)?;
        let took = started.elapsed();
        members.next_index = start + seed_count;
        members.seeded.extend(
            ids.into_iter().map(|id| (id, kasa_server::pin::token_hash(demo::bench_token(&secret, id).as_bytes()))),
        );
        let rss = crate::bench::rss_bytes(std::process::id()).unwrap_or(0);
        let users = app.engine.read(|s| s.wallets().users_count()).await? as u64;
        println!();
        println!(
            "{size} members seeded: {seed_count} more in {took:.2?} ({:.0} members/s, each sign-up, link, top-up \
             and session: 6 commands); {users} users in the state; process RSS {:.0} MiB",
            seed_count as f64 / took.as_secs_f64(),
            rss as f64 / (1u64 << 20) as f64
        );
        if let Some((rss0, users0)) = rss_before {
            if users > users0 {
                println!(
                    "memory: {:.0} bytes per member added between the sizes (RSS {:.0} MiB to {:.0} MiB)",
                    rss.saturating_sub(rss0) as f64 / (users - users0) as f64,
                    rss0 as f64 / (1u64 << 20) as f64,
                    rss as f64 / (1u64 << 20) as f64
                );
            }
        }
        rss_before = Some((rss, users));
        let mut at_size = Vec::new();
        for op in Op::ALL {
            let cost = measure(app, op, args, &mut members).await?;
            println!(
                "  {:<8} {} in {:.2?}: {:.1} µs each, CPU {:.1} µs each; latency p50 {:.2?} p99 {:.2?}{}",
                op.name(),
                args.ops,
                cost.per_op * args.ops as u32,
                micros(cost.per_op),
                micros(cost.cpu_per_op),
                cost.p50,
                cost.p99,
                if cost.refused > 0 { format!(" ({} refused)", cost.refused) } else { String::new() }
            );
            at_size.push(cost);
        }
        costs.push(at_size);
    }
    Ok(costs)
}

/// Runs `args.ops` operations `op` from `args.concurrency` tasks.
async fn measure(app: &AppState, op: Op, args: &ScaleArgs, members: &mut Members) -> anyhow::Result<Cost> {
    if matches!(op, Op::SignUp) {
        members.fresh.clear();
        members.accounts.clear();
    }
    let shared = Arc::new(Shared {
        seeded: std::mem::take(&mut members.seeded),
        fresh: std::mem::take(&mut members.fresh),
        accounts: std::mem::take(&mut members.accounts),
        first_index: members.next_index,
        pin_hash: demo::bench_pin_hash(app).await.map_err(anyhow::Error::msg)?,
        next: AtomicU64::new(0),
        ops: args.ops,
    });
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency.min(args.ops))
        .map(|_| {
            let (app, shared) = (app.clone(), shared.clone());
            tokio::spawn(async move { worker(&app, op, &shared).await })
        })
        .collect();
    let mut latencies = Vec::with_capacity(args.ops as usize);
    let mut refused = 0;
    let mut made = Vec::new();
    for task in tasks {
        let (l, r, m) = task.await??;
        latencies.extend(l);
        refused += r;
        made.extend(m);
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    latencies.sort_unstable();
    let mut shared = Arc::try_unwrap(shared).map_err(|_| anyhow::anyhow!("a worker outlived the run"))?;
    members.seeded = std::mem::take(&mut shared.seeded);
    members.fresh = std::mem::take(&mut shared.fresh);
    members.accounts = std::mem::take(&mut shared.accounts);
    match op {
        Op::SignUp => {
            made.sort_unstable();
            members.fresh = made.into_iter().map(|(_, id)| id).collect();
            members.next_index += args.ops;
        }
        Op::Link => {
            made.sort_unstable();
            members.accounts = made.into_iter().map(|(_, id)| id).collect();
        }
        _ => {}
    }
    Ok(Cost {
        per_op: elapsed / args.ops as u32,
        cpu_per_op: Duration::from_secs_f64(cpu.max(0.0) / args.ops as f64),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        refused,
    })
}

struct Shared {
    seeded: Vec<(u64, [u8; 32])>,
    fresh: Vec<u64>,
    accounts: Vec<u64>,
    first_index: u64,
    pin_hash: kasa_core::wallet::PinHash,
    next: AtomicU64,
    ops: u64,
}

/// Latencies, refusals, and (operation number, id made) for sign-ups and links.
type Worked = (Vec<Duration>, u64, Vec<(u64, u64)>);

async fn worker(app: &AppState, op: Op, shared: &Shared) -> anyhow::Result<Worked> {
    let (mut latencies, mut refused, mut made) = (Vec::new(), 0, Vec::new());
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        if k >= shared.ops {
            return Ok((latencies, refused, made));
        }
        let started = Instant::now();
        // A cheap, fixed spread over the seeded members (splitmix64 of the operation number).
        let pick = |salt: u64| {
            let mut z = k.wrapping_mul(2).wrapping_add(salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            shared.seeded[((z ^ (z >> 31)) % shared.seeded.len() as u64) as usize]
        };
        match op {
            Op::SignUp => {
                let index = shared.first_index + k;
                let phone = kasa_core::wallet::Phone::parse(&demo::bench_phone(index)).map_err(anyhow::Error::msg)?;
                let id = demo::sign_up(app, &phone, "scale", &shared.pin_hash, 1_000 + index)
                    .await
                    .map_err(anyhow::Error::msg)?;
                made.push((k, id));
            }
            Op::Link => {
                let user = *shared.fresh.get(k as usize).context("link needs the sign-ups first")?;
                let id = demo::link(app, user, &format!("{user:012}"), "scale").await.map_err(anyhow::Error::msg)?;
                made.push((k, id));
            }
            Op::TopUp => {
                let user = *shared.fresh.get(k as usize).context("top-up needs the sign-ups first")?;
                let account = *shared.accounts.get(k as usize).context("top-up needs the links first")?;
                demo::top_up(app, user, account, 10_000).await.map_err(anyhow::Error::msg)?;
            }
            Op::Send => {
                let (_, token_hash) = pick(0);
                let (mut to, _) = pick(1);
                if to == pick(0).0 {
                    to = pick(2).0;
                }
                let send = Command::Send {
                    from_user: 0,
                    to: Recipient::User(to),
                    amount: Amount::new(1_000),
                    memo: Memo::new("").map_err(anyhow::Error::msg)?,
                    pin_ok: None,
                };
                match app.as_session(token_hash, send).await {
                    Ok(Outcome::Sent(Ok(_))) => {}
                    Ok(Outcome::Sent(Err(_))) => refused += 1,
                    Ok(other) => bail!("a send answered {other:?}"),
                    Err(problem) => bail!("a send failed: {}", problem.detail),
                }
            }
            Op::History => {
                let (user, _) = pick(3);
                let entries = app.engine.read(move |s| s.history(user, HistoryCursor::default(), 21).len()).await?;
                if entries == 0 {
                    bail!("member {user} has no history");
                }
            }
        }
        latencies.push(started.elapsed());
    }
}

/// This process's CPU time so far (user and system).
fn cpu_seconds() -> f64 {
    crate::bench::cpu_seconds(std::process::id()).unwrap_or(0.0)
}
