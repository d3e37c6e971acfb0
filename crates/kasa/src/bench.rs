//! `kasa bench ledger`: the workload of TigerBeetle's `tigerbeetle benchmark`. Create
//! accounts, then transfers between random pairs in batches, sent by client threads over
//! loopback to a real `kasa serve` with its journal on disk; print throughput and batch
//! latency percentiles. When it starts the server itself, it also measures the server's
//! resident memory and how long recovery takes after `kill -9` (journal replay) and after a
//! clean stop (snapshot load).

use anyhow::{bail, Context};
use kasa::client::{AsyncClient, Client};
use kasa_core::{Account, Transfer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Benchmarks.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Accounts, then transfers between random pairs, over HTTP to a real server.
    Ledger(LedgerArgs),
    /// Wallet users sending each other money as single HTTP requests with sessions.
    Wallet(WalletArgs),
    /// Merchants' payments, each created with an API key and approved by a wallet user.
    Payments(PaymentsArgs),
    /// In-store payments: static and one-sale QR codes scanned by users, payment codes
    /// charged by merchants.
    Qr(QrArgs),
    /// A partner's merchant network imported from a generated file, end to end.
    Import(crate::bench_import::ImportArgs),
    /// A partner wallet network's signed payments at Kasa's stores, then the close of its
    /// settlement window and the download of the window's file.
    Partner(PartnerArgs),
    /// What sign-up, link, top-up, send and history cost at two sizes ten times apart (the
    /// engine in process, no HTTP), with the seeding rate and memory per member.
    Scale(crate::bench_scale::ScaleArgs),
    /// The PostgreSQL read model: its lag under full-speed wallet sends, and history reads
    /// from PostgreSQL against the in-memory endpoint.
    ReadModel(crate::bench_read_model::ReadModelArgs),
}

/// Arguments of `kasa bench partner`.
#[derive(clap::Args, Clone)]
pub struct PartnerArgs {
    /// Merchants, each with an API key.
    #[arg(long, default_value_t = 16)]
    pub(crate) merchants: u64,
    /// Stores per merchant.
    #[arg(long, default_value_t = 8)]
    pub(crate) stores: u64,
    /// Signed payments to make; the window closed afterwards holds them all.
    #[arg(long, default_value_t = 200_000)]
    pub(crate) payments: u64,
    /// Concurrent connections, each sending one request at a time.
    #[arg(long, default_value_t = 64)]
    pub(crate) connections: usize,
    /// Seed of the random stores and amounts.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
    /// The server's HTTP threads (`kasa serve --http-threads`).
    #[arg(long, default_value_t = 1)]
    pub(crate) http_threads: usize,
}

/// Arguments of `kasa bench qr`.
#[derive(clap::Args, Clone)]
pub struct QrArgs {
    /// Wallet users, each topped up once and logged in.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u64,
    /// Merchants, each with an API key.
    #[arg(long, default_value_t = 16)]
    pub(crate) merchants: u64,
    /// Stores per merchant.
    #[arg(long, default_value_t = 8)]
    pub(crate) stores: u64,
    /// In-store payments to make.
    #[arg(long, default_value_t = 500_000)]
    pub(crate) payments: u64,
    /// Concurrent connections, each sending one request at a time.
    #[arg(long, default_value_t = 64)]
    pub(crate) clients: usize,
    /// Which kinds of payment to make, in turn: `static`, `dynamic`, `code` (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = ["static".to_string(), "dynamic".to_string(), "code".to_string()])]
    pub(crate) kinds: Vec<String>,
    /// Seed of the random users, stores and amounts.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
}

/// Arguments of `kasa bench payments`.
#[derive(clap::Args, Clone)]
pub struct PaymentsArgs {
    /// Wallet users, each topped up once and logged in.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) users: u64,
    /// Merchants, each with an API key.
    #[arg(long, default_value_t = 16)]
    pub(crate) merchants: u64,
    /// Payments to create and approve.
    #[arg(long, default_value_t = 500_000)]
    pub(crate) payments: u64,
    /// Concurrent connections, each sending one request at a time.
    #[arg(long, default_value_t = 64)]
    pub(crate) clients: usize,
    /// Give each merchant a webhook endpoint for `payment.succeeded` on a receiver in this
    /// process, and measure the deliveries too.
    #[arg(long)]
    pub(crate) webhooks: bool,
    /// Seed of the random users and amounts.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
}

/// Arguments of `kasa bench wallet`.
#[derive(clap::Args, Clone)]
pub struct WalletArgs {
    /// Users, each topped up once and logged in.
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// Remittance requests to send.
    #[arg(long, default_value_t = 1_000_000)]
    sends: u64,
    /// Concurrent connections, each sending one request at a time.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seed of the random pairs and amounts.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// A running server to use instead of starting one: it must have been started with
    /// `--bench-seed USERS` and the same `KASA_BENCH_SECRET` (64 hex digits) as this process,
    /// and `--users` must be that number.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The server's `--snapshot-interval-mib` (0: a snapshot only at a clean stop). At 14
    /// million members a snapshot is about 13 GB and takes minutes, which the sends share
    /// the 2 cores with.
    #[arg(long)]
    snapshot_interval_mib: Option<u64>,
}

/// Arguments of `kasa bench ledger`.
#[derive(clap::Args, Clone)]
pub struct LedgerArgs {
    /// Accounts to create.
    #[arg(long, default_value_t = 10_000)]
    accounts: u64,
    /// Transfers to create.
    #[arg(long, default_value_t = 10_000_000)]
    transfers: u64,
    /// Transfers per request.
    #[arg(long, default_value_t = 8_189)]
    batch_size: usize,
    /// Concurrent connections, each sending one request at a time.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// A running server to use instead of starting one (needs KASA_OPERATOR_KEY).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Request encoding: `binary` (128-byte records) or `json`.
    #[arg(long, default_value = "binary")]
    format: String,
    /// Data directory for the server the benchmark starts (default: a new temporary one).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Skip the recovery measurements.
    #[arg(long)]
    no_recovery: bool,
    /// Seed of the random account pairs.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The server's `--hot-transfers` (transfers kept in memory; 0 keeps all).
    #[arg(long)]
    hot_transfers: Option<u64>,
    /// The server's `--snapshot-interval-mib` (0: a snapshot only at a clean stop).
    #[arg(long)]
    snapshot_interval_mib: Option<u64>,
    /// History reads to time after the transfers: an account's 20 transfers before a random
    /// moment of the run (`GET /v1/ledger/accounts/{id}/transfers?timestamp_max=`), which
    /// with a hot window smaller than the run reads the embedded store.
    #[arg(long, default_value_t = 2_000)]
    history_reads: u64,
}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    clean_up_on_interrupt();
    match command {
        BenchCommand::Ledger(args) => ledger(args),
        BenchCommand::Wallet(args) => wallet(args),
        BenchCommand::Payments(args) => crate::bench_payments::run(args),
        BenchCommand::Qr(args) => crate::bench_qr::run(args),
        BenchCommand::Import(args) => crate::bench_import::run(args),
        BenchCommand::Partner(args) => crate::bench_partner::run(args),
        BenchCommand::Scale(args) => crate::bench_scale::run(args),
        BenchCommand::ReadModel(args) => crate::bench_read_model::run(args),
    }
}

/// What a Ctrl-C must clean up: the temporary data directory and the server it started.
pub(crate) static CLEANUP: std::sync::Mutex<(Option<PathBuf>, Option<u32>)> = std::sync::Mutex::new((None, None));

/// Removes the benchmark's temporary data (and stops its server) on Ctrl-C, so that an
/// interrupted run leaves nothing behind. The server, in the same process group, gets the
/// SIGINT too; it is killed outright here, since its data is being removed.
fn clean_up_on_interrupt() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let (dir, pid) = CLEANUP.lock().map(|c| c.clone()).unwrap_or_default();
            if let Some(pid) = pid {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
            if let Some(dir) = dir {
                let _ = std::fs::remove_dir_all(&dir);
                eprintln!("interrupted: removed {}", dir.display());
            }
            std::process::exit(130);
        });
    });
}

/// Prints how far a run is, every two seconds, until `done` reaches `total`.
pub(crate) fn progress(what: &'static str, done: Arc<AtomicU64>, total: u64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = Instant::now();
        loop {
            std::thread::sleep(Duration::from_secs(2));
            let n = done.load(Ordering::Relaxed).min(total);
            if n >= total {
                return;
            }
            let rate = n as f64 / started.elapsed().as_secs_f64();
            eprintln!("  ... {n} of {total} {what} ({:.0}%, {rate:.0}/s)", n as f64 * 100.0 / total.max(1) as f64);
        }
    })
}

/// Free bytes on the file system of `dir` (from `df`), if it can tell.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let out = Command::new("df").args(["-Pk"]).arg(dir).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

/// Says how much disk a run will use where, and refuses to start without room for it.
pub(crate) fn check_disk(dir: &std::path::Path, bytes: u64) -> anyhow::Result<()> {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    match free_bytes(dir) {
        Some(free) => {
            println!(
                "disk: about {:.1} GiB in {} ({:.1} GiB free); removed at the end",
                gib(bytes),
                dir.display(),
                gib(free)
            );
            if free < bytes {
                bail!("not enough disk: the run needs about {:.1} GiB in {}", gib(bytes), dir.display());
            }
        }
        None => println!("disk: about {:.1} GiB in {}; removed at the end", gib(bytes), dir.display()),
    }
    Ok(())
}

/// The server the benchmark started, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_server(data: &std::path::Path, key: &str) -> anyhow::Result<(Server, Duration)> {
    start_server_with(data, key, &[], &[])
}

pub(crate) fn start_server_with(
    data: &std::path::Path,
    key: &str,
    extra: &[String],
    env: &[(&str, String)],
) -> anyhow::Result<(Server, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("KASA_OPERATOR_KEY", key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .context("starting kasa serve")?;
    let addr = kasa::client::wait_for_listening(child.stdout.take().context("stdout")?)?;
    Ok((Server { child, addr }, started.elapsed()))
}

pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// The most memory process `pid` has had resident (its high-water mark).
pub(crate) fn rss_peak_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM:")
}

fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time (user plus system) that process `pid` has used so far, from `/proc/PID/stat`
/// (clock ticks of `USER_HZ`, which Linux fixes at 100 per second for user space).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces; the fields after it are fixed.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU used by the server and by this benchmark between two readings.
pub(crate) struct CpuMeter {
    server: Option<u32>,
    start: (Option<f64>, Option<f64>),
}

impl CpuMeter {
    pub(crate) fn start(server: Option<u32>) -> CpuMeter {
        CpuMeter { server, start: (server.and_then(cpu_seconds), cpu_seconds(std::process::id())) }
    }

    /// One line: CPU microseconds per operation in the server and in the load generator.
    pub(crate) fn report(&self, operations: u64, what: &str) -> String {
        let per_op = |start: Option<f64>, pid: Option<u32>| match (start, pid.and_then(cpu_seconds)) {
            (Some(a), Some(b)) => format!("{:.1} µs", (b - a) * 1e6 / operations.max(1) as f64),
            _ => "unknown".to_string(),
        };
        format!(
            "CPU per {what}: server {}, load generator {}",
            per_op(self.start.0, self.server),
            per_op(self.start.1, Some(std::process::id()))
        )
    }
}

/// xorshift64*: the benchmark's only randomness, seeded, so runs are repeatable.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn encode_accounts(accounts: &[Account], json: bool) -> Vec<u8> {
    if json {
        let items: Vec<String> = accounts
            .iter()
            .map(|a| format!(r#"{{"id":"{}","ledger":{},"code":{}}}"#, a.id, a.ledger, a.code))
            .collect();
        format!("[{}]", items.join(",")).into_bytes()
    } else {
        let mut out = Vec::with_capacity(accounts.len() * 128);
        accounts.iter().for_each(|a| a.encode(&mut out));
        out
    }
}

fn encode_transfers(transfers: &[Transfer], json: bool, out: &mut Vec<u8>) {
    out.clear();
    if json {
        use std::io::Write;
        out.push(b'[');
        for (i, t) in transfers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let _ = write!(
                out,
                r#"{{"id":"{}","debit_account_id":"{}","credit_account_id":"{}","amount":"{}","ledger":{},"code":{}}}"#,
                t.id, t.debit_account_id, t.credit_account_id, t.amount, t.ledger, t.code
            );
        }
        out.push(b']');
    } else {
        transfers.iter().for_each(|t| t.encode(out));
    }
}

/// Counts non-ok results in a response body.
fn failures(body: &[u8], json: bool) -> anyhow::Result<u64> {
    if json {
        let parsed: serde_json::Value = serde_json::from_slice(body)?;
        let results = parsed["results"].as_array().context("no results array")?;
        Ok(results.iter().filter(|r| r["result"] != "ok").count() as u64)
    } else {
        Ok(body.chunks_exact(32).filter(|r| u32::from_le_bytes(r[0..4].try_into().expect("4")) != 0).count() as u64)
    }
}

/// What a connection's task measured: its latencies, and one count (failures, refusals).
pub(crate) type Measured = (Vec<Duration>, u64);

/// Waits for the connections' tasks and sums what they measured.
pub(crate) async fn join_tasks(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Measured>>>,
) -> anyhow::Result<Measured> {
    let mut latencies = Vec::new();
    let mut count = 0;
    for task in tasks {
        let (l, c) = task.await??;
        latencies.extend(l);
        count += c;
    }
    Ok((latencies, count))
}

/// Prints p1, p50, p99 and p100 of the `sorted` latencies of single requests.
pub(crate) fn print_request_latency(sorted: &[Duration]) {
    println!(
        "request latency: p1 {:.2?}  p50 {:.2?}  p99 {:.2?}  p100 {:.2?}",
        percentile(sorted, 0.01),
        percentile(sorted, 0.50),
        percentile(sorted, 0.99),
        percentile(sorted, 1.0)
    );
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ledger(args: LedgerArgs) -> anyhow::Result<()> {
    let json = match args.format.as_str() {
        "json" => true,
        "binary" => false,
        other => bail!("--format must be binary or json, found {other}"),
    };
    if args.batch_size == 0 || args.batch_size > kasa_core::ITEMS_PER_COMMAND_MAX {
        bail!("--batch-size must be between 1 and {}", kasa_core::ITEMS_PER_COMMAND_MAX);
    }
    if args.accounts < 2 || args.clients == 0 {
        bail!("need at least 2 accounts and 1 client");
    }
    let content_type = if json { "application/json" } else { "application/octet-stream" };
    let temp;
    let mut server = None;
    let key;
    let addr = match args.addr {
        Some(addr) => {
            key = std::env::var("KASA_OPERATOR_KEY").context("--addr needs KASA_OPERATOR_KEY")?;
            addr
        }
        None => {
            key = "bench-operator-key-0123456789".to_string();
            let data = match &args.data {
                Some(d) => d.clone(),
                None => {
                    temp = tempfile::Builder::new().prefix("kasa-bench-").tempdir_in(".")?;
                    CLEANUP.lock().expect("cleanup lock").0 = Some(temp.path().to_path_buf());
                    temp.path().to_path_buf()
                }
            };
            // The journal (128 bytes and a frame share per transfer), the embedded store of
            // cold transfers (about 1.2 times their records), and up to three snapshots (the
            // last two kept, one being written), each about the state's size: two with
            // snapshots only at a clean stop, none if there is no clean stop either.
            let snapshots = match (args.snapshot_interval_mib, args.no_recovery) {
                (Some(0), true) => 0,
                (Some(0), false) => 2,
                _ => 3,
            };
            let store = if args.hot_transfers == Some(0) { 0 } else { 12 };
            let tenths = 10 + store + 10 * snapshots;
            check_disk(&data, (args.transfers + args.accounts) * 128 * tenths / 10 + (64 << 20))?;
            let (s, _) = start_server_with(&data, &key, &ledger_serve_args(&args), &[])?;
            CLEANUP.lock().expect("cleanup lock").1 = Some(s.child.id());
            let addr = s.addr;
            server = Some((s, data));
            addr
        }
    };
    println!(
        "kasa bench ledger: {} accounts, {} transfers, batch size {}, {} client(s), {} over loopback to {addr}",
        args.accounts, args.transfers, args.batch_size, args.clients, args.format
    );
    // Ids start at a random-ish base so that reruns against a running server do not collide.
    let base = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos()) << 32;
    let mut client = Client::connect(addr, &key)?;
    let rss_empty = server.as_ref().and_then(|(s, _)| rss_bytes(s.child.id()));
    let accounts: Vec<Account> = (0..args.accounts)
        .map(|i| Account { id: base + i as u128 + 1, ledger: 1, code: 1, ..Default::default() })
        .collect();
    let started = Instant::now();
    for chunk in accounts.chunks(kasa_core::ITEMS_PER_COMMAND_MAX) {
        let r = client.send("POST", "/v1/ledger/accounts", content_type, &encode_accounts(chunk, json))?;
        if r.status != 200 || failures(&r.body, json)? != 0 {
            bail!("creating accounts failed: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
    }
    println!("accounts created in {:.2?}", started.elapsed());
    let rss_before = server.as_ref().and_then(|(s, _)| rss_bytes(s.child.id()));

    let started_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    let batches_total = args.transfers.div_ceil(args.batch_size as u64);
    let next_batch = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let ticker = progress("transfers", done.clone(), args.transfers);
    // The connections run as tasks on one thread: the machine under test keeps its cores for
    // the server, and the client costs no context switch per request.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cpu = CpuMeter::start(server.as_ref().map(|(s, _)| s.child.id()));
    let started = Instant::now();
    let (latencies, failed) = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.clients)
            .map(|c| {
                let next_batch = next_batch.clone();
                let done = done.clone();
                let key = key.clone();
                let args = args.clone();
                tokio::spawn(async move {
                    let mut client = AsyncClient::connect(addr, &key).await?;
                    let mut rng = Rng(args.seed.wrapping_mul(c as u64 + 1) | 1);
                    let mut latencies = Vec::new();
                    let mut failed = 0;
                    let mut body = Vec::with_capacity(args.batch_size * 256);
                    let mut transfers = Vec::with_capacity(args.batch_size);
                    loop {
                        let b = next_batch.fetch_add(1, Ordering::Relaxed);
                        if b >= batches_total {
                            break;
                        }
                        let first = b * args.batch_size as u64;
                        let count = (args.transfers - first).min(args.batch_size as u64);
                        transfers.clear();
                        for i in 0..count {
                            let debit = rng.next() % args.accounts;
                            let mut credit = rng.next() % args.accounts;
                            if credit == debit {
                                credit = (credit + 1) % args.accounts;
                            }
                            transfers.push(Transfer {
                                id: base + (first + i) as u128 + 1,
                                debit_account_id: base + debit as u128 + 1,
                                credit_account_id: base + credit as u128 + 1,
                                amount: 1 + rng.next() as u128 % 100,
                                ledger: 1,
                                code: 1,
                                ..Default::default()
                            });
                        }
                        encode_transfers(&transfers, json, &mut body);
                        let sent = Instant::now();
                        let r = client.send("POST", "/v1/ledger/transfers", content_type, &body).await?;
                        latencies.push(sent.elapsed());
                        if r.status != 200 {
                            bail!("transfers failed: {} {}", r.status, String::from_utf8_lossy(&r.body));
                        }
                        failed += failures(&r.body, json)?;
                        done.fetch_add(count, Ordering::Relaxed);
                    }
                    Ok::<_, anyhow::Error>((latencies, failed))
                })
            })
            .collect();
        join_tasks(tasks).await
    })?;
    let mut latencies = latencies;
    let elapsed = started.elapsed();
    let _ = ticker.join();
    latencies.sort();
    let rate = args.transfers as f64 / elapsed.as_secs_f64();
    println!("transfers: {} in {:.2?}: {:.0} transfers/s ({} not ok)", args.transfers, elapsed, rate, failed);
    println!(
        "batch latency: p1 {:.2?}  p50 {:.2?}  p99 {:.2?}  p100 {:.2?}  ({} requests)",
        percentile(&latencies, 0.01),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    );
    println!("{}", cpu.report(args.transfers, "transfer"));
    if failed != 0 {
        bail!("{failed} transfers were not ok");
    }
    history_reads(&mut client, &args, base, started_ns)?;
    let Some((server, data)) = server else { return Ok(()) };
    if let (Some(empty), Some(before), Some(after)) = (rss_empty, rss_before, rss_bytes(server.child.id())) {
        println!(
            "server memory: {:.1} MiB resident at start, {:.1} MiB after accounts, {:.1} MiB after transfers \
             (peak {:.1} MiB): {:.1} bytes per account, {:.1} bytes per transfer",
            empty as f64 / 1048576.0,
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            rss_peak_bytes(server.child.id()).unwrap_or(0) as f64 / 1048576.0,
            before.saturating_sub(empty) as f64 / args.accounts as f64,
            after.saturating_sub(before) as f64 / args.transfers as f64
        );
    }
    if args.no_recovery {
        return Ok(());
    }
    // kill -9: the next start replays the journal after the last snapshot.
    drop(server);
    let serve_args = ledger_serve_args(&args);
    let (server, took) = start_server_with(&data, &key, &serve_args, &[])?;
    CLEANUP.lock().expect("cleanup lock").1 = Some(server.child.id());
    println!("recovery after kill -9 (journal replay): ready in {took:.2?}, {}", memory_line(server.child.id()));
    // A clean stop writes a snapshot; the next start loads it.
    stop(server)?;
    let (server, took) = start_server_with(&data, &key, &serve_args, &[])?;
    CLEANUP.lock().expect("cleanup lock").1 = Some(server.child.id());
    println!("recovery after a clean stop (snapshot load): ready in {took:.2?}, {}", memory_line(server.child.id()));
    stop(server)?;
    Ok(())
}

/// Times `--history-reads` reads of 20 transfers of a random account before a random moment of
/// the run, one at a time, and checks each answer is a full page in time order.
fn history_reads(client: &mut Client, args: &LedgerArgs, base: u128, started_ns: u64) -> anyhow::Result<()> {
    if args.history_reads == 0 {
        return Ok(());
    }
    let ended_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    let mut rng = Rng(args.seed ^ 0x5EED);
    let mut latencies = Vec::with_capacity(args.history_reads as usize);
    let mut short = 0;
    for _ in 0..args.history_reads {
        let account = base + (rng.next() % args.accounts) as u128 + 1;
        let before = started_ns + rng.next() % ended_ns.saturating_sub(started_ns).max(1);
        let path = format!("/v1/ledger/accounts/{account}/transfers?limit=20&timestamp_max={before}");
        let sent = Instant::now();
        let r = client.send("GET", &path, "application/json", b"")?;
        latencies.push(sent.elapsed());
        if r.status != 200 {
            bail!("history read failed: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        let page: serde_json::Value = serde_json::from_slice(&r.body)?;
        let items = page["data"].as_array().map_or(0, Vec::len);
        if items < 20 {
            short += 1;
        }
    }
    latencies.sort();
    println!(
        "history reads (20 transfers before a random moment, one connection): p50 {:.2?}  p99 {:.2?}  p100 {:.2?}  \
         ({} reads, {short} shorter than 20)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    );
    Ok(())
}

/// The `kasa serve` flags a ledger benchmark passes on.
fn ledger_serve_args(args: &LedgerArgs) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(hot) = args.hot_transfers {
        out.extend(["--hot-transfers".to_string(), hot.to_string()]);
    }
    if let Some(mib) = args.snapshot_interval_mib {
        out.extend(["--snapshot-interval-mib".to_string(), mib.to_string()]);
    }
    out
}

/// The server's resident memory now and at its peak.
fn memory_line(pid: u32) -> String {
    format!(
        "{:.1} MiB resident (peak {:.1} MiB)",
        rss_bytes(pid).unwrap_or(0) as f64 / 1048576.0,
        rss_peak_bytes(pid).unwrap_or(0) as f64 / 1048576.0
    )
}

/// Stops a server with SIGTERM and waits for it.
/// A server started by a benchmark on a fresh data directory, with `users` seeded (each
/// topped up and logged in), and what the benchmark needs to act as them.
pub(crate) struct Seeded {
    /// The data directory (removed when dropped).
    pub(crate) _temp: tempfile::TempDir,
    pub(crate) server: Server,
    /// The operator key.
    pub(crate) key: String,
    /// The seeded users' session tokens, user 1 first (user 1 is at its balance cap).
    pub(crate) tokens: Arc<Vec<String>>,
}

/// Starts a server with `users` seeded, after checking that `disk_bytes` are free; prints
/// `what` (the benchmark's description) first.
pub(crate) fn seeded_server(users: u64, disk_bytes: u64, what: &str) -> anyhow::Result<Seeded> {
    seeded_server_with(users, disk_bytes, what, &[])
}

/// [`seeded_server`] with more `kasa serve` arguments.
pub(crate) fn seeded_server_with(users: u64, disk_bytes: u64, what: &str, serve: &[String]) -> anyhow::Result<Seeded> {
    let key = std::env::var("KASA_OPERATOR_KEY").unwrap_or_else(|_| "bench-operator-key-0123456789".to_string());
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).context("randomness for the bench secret")?;
    let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let temp = tempfile::Builder::new().prefix("kasa-bench-").tempdir_in(".")?;
    CLEANUP.lock().expect("cleanup lock").0 = Some(temp.path().to_path_buf());
    check_disk(temp.path(), disk_bytes)?;
    println!("{what}");
    let mut extra = vec!["--bench-seed".to_string(), users.to_string()];
    extra.extend_from_slice(serve);
    let (server, took) = start_server_with(temp.path(), &key, &extra, &[("KASA_BENCH_SECRET", secret_hex)])?;
    CLEANUP.lock().expect("cleanup lock").1 = Some(server.child.id());
    println!("server ready with seeded users in {took:.2?}");
    let tokens = Arc::new((1..=users).map(|id| kasa_server::demo::bench_token(&secret, id)).collect());
    Ok(Seeded { _temp: temp, server, key, tokens })
}

pub(crate) fn stop(mut server: Server) -> anyhow::Result<()> {
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status()?;
    if !status.success() {
        bail!("kill -TERM failed");
    }
    let exit = server.child.wait()?;
    if !exit.success() {
        bail!("the server exited with {exit} after SIGTERM");
    }
    Ok(())
}

fn wallet(args: WalletArgs) -> anyhow::Result<()> {
    if args.users < 3 || args.clients == 0 {
        bail!("need at least 3 users and 1 client");
    }
    let key = std::env::var("KASA_OPERATOR_KEY").unwrap_or_else(|_| "bench-operator-key-0123456789".to_string());
    let temp;
    let (server, addr, secret) = match args.addr {
        Some(addr) => {
            let hex = std::env::var("KASA_BENCH_SECRET")
                .context("--addr needs the KASA_BENCH_SECRET the server was seeded with")?;
            println!(
                "kasa bench wallet: {} users seeded by the server at {addr}, {} sends from {} connections",
                args.users, args.sends, args.clients
            );
            (None, addr, kasa::parse_hex32(&hex)?)
        }
        None => {
            let mut secret = [0u8; 32];
            getrandom::getrandom(&mut secret).context("randomness for the bench secret")?;
            let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            temp = tempfile::Builder::new().prefix("kasa-bench-").tempdir_in(".")?;
            CLEANUP.lock().expect("cleanup lock").0 = Some(temp.path().to_path_buf());
            // About 500 bytes of journal and 400 of event log per seeded user (verification,
            // sign-up, link, top-up and its answer, a session), 200 of the store (the top-up's
            // two transfers), 300 bytes per send, and snapshots of about 1 KB a member: up to
            // three (the last two kept, one being written), one if only at the stop.
            let snapshots = if args.snapshot_interval_mib == Some(0) { 1 } else { 3 };
            check_disk(temp.path(), args.users * (1100 + snapshots * 1000) + args.sends * 300 + (64 << 20))?;
            println!(
                "kasa bench wallet: {} users (seeded through the engine, each with a top-up and a session), {} sends from {} connections",
                args.users, args.sends, args.clients
            );
            let mut serve = vec!["--bench-seed".to_string(), args.users.to_string()];
            if let Some(mib) = args.snapshot_interval_mib {
                serve.extend(["--snapshot-interval-mib".to_string(), mib.to_string()]);
            }
            let (server, took) = start_server_with(temp.path(), &key, &serve, &[("KASA_BENCH_SECRET", secret_hex)])?;
            CLEANUP.lock().expect("cleanup lock").1 = Some(server.child.id());
            println!(
                "server ready with seeded users in {took:.2?} ({:.0} members/s, start included); {}",
                args.users as f64 / took.as_secs_f64(),
                memory_line(server.child.id())
            );
            if let Some(rss) = rss_bytes(server.child.id()) {
                println!("memory: {:.0} bytes of RSS per member", rss as f64 / args.users as f64);
            }
            let addr = server.addr;
            (Some(server), addr, secret)
        }
    };
    let next = Arc::new(AtomicU64::new(0));
    let ticker = progress("sends", next.clone(), args.sends);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cpu = CpuMeter::start(server.as_ref().map(|s| s.child.id()));
    let started = Instant::now();
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.clients)
            .map(|c| {
                let (next, args, key) = (next.clone(), args.clone(), key.clone());
                tokio::spawn(async move {
                    let mut client = AsyncClient::connect(addr, &key).await?;
                    let mut rng = Rng(args.seed.wrapping_mul(c as u64 + 11) | 1);
                    let mut latencies = Vec::new();
                    let mut tally = [0u64; 5]; // ok, insufficient funds, recipient, PIN needed, other
                    while next.fetch_add(1, Ordering::Relaxed) < args.sends {
                        let roll = rng.next() % 100;
                        let from = 1 + rng.next() % (args.users - 1) + 1; // never user 1, the full one
                        let from = from.min(args.users);
                        let (to, amount) = if roll < 5 {
                            (1, 1 + rng.next() % 1_000) // to the full wallet: the recipient's cap
                        } else if roll < 10 {
                            (2 + (from % (args.users - 1)), 50_000) // more than most hold
                        } else {
                            (2 + rng.next() % (args.users - 1), 1 + rng.next() % 5_000)
                        };
                        let to = if to == from {
                            if from == args.users {
                                2
                            } else {
                                from + 1
                            }
                        } else {
                            to
                        };
                        let body = format!(r#"{{"to_user_id":"{to}","amount":"{amount}","currency":"KRW"}}"#);
                        // User ids are 1..=users in seeding order; user 1 is at its balance cap.
                        // Tokens are derived as needed: 14 million of them would take 1.5 GB.
                        client.set_key(&kasa_server::demo::bench_token(&secret, from));
                        let sent = Instant::now();
                        let r = client.send("POST", "/v1/transfers", "application/json", body.as_bytes()).await?;
                        latencies.push(sent.elapsed());
                        let code = serde_json::from_slice::<serde_json::Value>(&r.body)
                            .ok()
                            .and_then(|v| v["code"].as_str().map(String::from));
                        match (r.status, code.as_deref()) {
                            (201, _) => tally[0] += 1,
                            (422, Some("insufficient_funds")) => tally[1] += 1,
                            (422, Some("recipient_cannot_receive" | "limit_exceeded")) => tally[2] += 1,
                            (403, Some("pin_required")) => tally[3] += 1,
                            _ => {
                                tally[4] += 1;
                                if tally[4] <= 3 {
                                    eprintln!("unexpected answer {}: {}", r.status, String::from_utf8_lossy(&r.body));
                                }
                            }
                        }
                    }
                    Ok::<_, anyhow::Error>((latencies, tally))
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut tally = [0u64; 5];
        for task in tasks {
            let (l, t) = task.await??;
            latencies.extend(l);
            for (a, b) in tally.iter_mut().zip(t) {
                *a += b;
            }
        }
        Ok::<_, anyhow::Error>((latencies, tally))
    })?;
    let elapsed = started.elapsed();
    let _ = ticker.join();
    let (mut latencies, tally) = results;
    latencies.sort();
    let total = latencies.len() as f64;
    println!(
        "sends: {} in {:.2?}: {:.0} remittances/s ({} completed, {} insufficient funds, {} recipient cannot receive, \
         {} PIN needed, {} other)",
        latencies.len(),
        elapsed,
        total / elapsed.as_secs_f64(),
        tally[0],
        tally[1],
        tally[2],
        tally[3],
        tally[4]
    );
    print_request_latency(&latencies);
    println!("{}", cpu.report(latencies.len() as u64, "send"));
    if let Some(server) = server {
        println!("after the sends: {}", memory_line(server.child.id()));
        stop(server)?;
    }
    if tally[4] != 0 {
        bail!("{} requests got an unexpected answer", tally[4]);
    }
    Ok(())
}
