//! `kasa serve`: recover the engine from the data directory, serve HTTP until SIGTERM or
//! SIGINT (then drain, snapshot and exit 0), or until a fatal disk error (exit 1).
//!
//! Data directory layout (the directory is mode 0700 and every file in it 0600): `journal/`
//! holds the journal segments and snapshots, `operator.key` the generated operator key,
//! `pin.pepper` the PIN pepper, `data.key` the key that seals bank account numbers (each
//! unless given by its environment variable), `sandbox-bank.log` what the sandbox bank
//! decided, and `LOCK` a lock that keeps a second server off the same directory. Losing
//! `pin.pepper` makes every PIN unverifiable; losing `data.key` makes every linked bank
//! account unusable: back them up, apart from the journal.

use anyhow::{bail, Context};
use kasa_engine::{hex, ColdOptions, Engine, EngineOptions, Health, Role};
use kasa_journal::FileStorage;
use kasa_server::{AppState, Config, Secret};
use std::fs::{self, File};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Arguments of `kasa serve`.
#[derive(clap::Args)]
#[command(after_help = "Environment variables:
  KASA_OPERATOR_KEY   the operator key (at least 16 characters); otherwise generated into DATA/operator.key
  KASA_PIN_PEPPER     the PIN pepper (at least 16 characters); otherwise generated into DATA/pin.pepper
  KASA_DATA_KEY       the key that seals bank account numbers (at least 16 characters); otherwise DATA/data.key
  KASA_BENCH_SECRET   64 hex digits; only with --bench-seed (kasa bench wallet sets it)
  KASA_PRIMARY_OPERATOR_KEY  with --follow: the primary's operator key (default: this server's own)
  RUST_LOG            log filter (default: info), e.g. RUST_LOG=kasa::request=warn")]
pub struct ServeArgs {
    /// The data directory (created if missing).
    #[arg(long, default_value = "./kasa-data")]
    data: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:7300")]
    listen: SocketAddr,
    /// Seed an empty data directory with three demo users (PIN 135790) who have money.
    #[arg(long)]
    demo: bool,
    /// For `kasa bench wallet` only: seed this many users with money and sessions whose tokens
    /// derive from KASA_BENCH_SECRET (64 hex digits). Refuses a data directory with users.
    #[arg(long, hide = true)]
    bench_seed: Option<u64>,
    /// Threads that serve HTTP (the sequencer has its own thread besides). On the 2-core
    /// machine one measured better than two: the second core stays for the sequencer.
    #[arg(long, default_value_t = 1)]
    http_threads: usize,
    /// How long the in-process sandbox bank takes to answer a top-up or withdrawal.
    #[arg(long, default_value_t = 200)]
    sandbox_bank_latency_ms: u64,
    /// The sandbox bank declines amounts ending in these digits ("" for none).
    #[arg(long, default_value = "13")]
    sandbox_bank_decline_ending: String,
    /// The sandbox bank never takes amounts ending in these digits ("" for none), so that
    /// their funding expires.
    #[arg(long, default_value = "99")]
    sandbox_bank_no_answer_ending: String,
    /// The sandbox bank declines a request whose reference it decided already, as banks that
    /// refuse a repeated transfer number do, instead of answering with its decision: only an
    /// inquiry then tells what became of a request. For tests of the bank rail.
    #[arg(long)]
    sandbox_bank_refuse_repeats: bool,
    /// Run engine time on a test clock that operators move forward with
    /// `POST /v1/admin/test-clock/advance`, to see timeouts without waiting (as Stripe's test
    /// clocks). For tests and demos only: time moved forward never comes back.
    #[arg(long)]
    test_clock: bool,
    /// Write a snapshot every this many MiB of journal (0: only at shutdown).
    #[arg(long, default_value_t = 2048)]
    snapshot_interval_mib: u64,
    /// Transfers per ledger kept in memory, and as many entries of its balance log; older ones
    /// go to the embedded store `cold.redb` in the data directory (whole chunks of 16,384).
    /// 0 keeps every transfer and balance in memory.
    #[arg(long, default_value_t = 1 << 20)]
    hot_transfers: u64,
    /// MiB of the embedded store's page cache.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    cold_cache_mib: u64,
    /// Requests that may wait for the sequencer; beyond it a request is answered 503 with
    /// Retry-After at once (backpressure instead of an unbounded queue).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    queue_depth: u32,
    /// Connections open at once; past it new ones wait in the kernel's listen backlog until
    /// one closes (each open connection costs a socket and a few KiB).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    connections_max: u32,
    /// Deliver webhooks to private addresses too (10.x, 192.168.x, loopback, ...): for
    /// endpoints inside the operator's own network. Off: only public addresses, and
    /// `http://localhost` development endpoints.
    #[arg(long)]
    webhooks_allow_private: bool,
    /// Follow the primary at this URL (http://HOST:PORT) as a warm standby: take its
    /// committed journal, serve reads, refuse writes, drive no effects, until an operator
    /// promotes this server (`kasa promote`). The data directory must be empty or a previous
    /// follow of the same primary, with the primary's PIN pepper and data key. See
    /// docs/standby.md.
    #[arg(long, value_name = "URL")]
    follow: Option<String>,
    /// Followers that must have a batch's frame synced before its answers are sent: 0
    /// (asynchronous, the default) or 1 (a synchronous standby: nothing acknowledged is lost
    /// when the primary is, if the follower is promoted). The batch is durable and applied on
    /// the primary at once; only its answers wait, with no timeout: with no follower, writes
    /// get no answer until one catches up or the primary is restarted without this option.
    /// With --follow, it applies once this server is promoted. See docs/standby.md.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    sync_followers: u8,
    /// Keep a read model in PostgreSQL at this URL (postgres://USER[:PASSWORD]@HOST:PORT/DB,
    /// a plain link without TLS) and serve history, search and reports from it: the schema
    /// is migrated at start, the feed starts with the other consumers. The URL is never
    /// logged. See docs/read-model.md.
    #[arg(long, value_name = "URL")]
    read_model: Option<String>,
    /// Log lines as text (for people) or JSON (for log collectors).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Length of generated secrets (operator key, PIN pepper, data key) in random bytes.
const SECRET_BYTES: usize = 32;

/// Creates `dir` (and parents) if missing and makes it private: mode 0700.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private (0700)", dir.display()))?;
    }
    Ok(())
}

/// Opens (creating if missing) a private file: mode 0600.
fn private_file(path: &Path, truncate: bool) -> anyhow::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).with_context(|| format!("opening {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// A secret taken from the environment variable `env` when set, otherwise from `file` in the
/// data directory, otherwise generated, written there (mode 0600, atomically) and, if
/// `announce`, printed once to the terminal (never to the log).
fn load_or_create_secret(data: &Path, file: &str, env: &str, prefix: &str, announce: bool) -> anyhow::Result<Secret> {
    if let Ok(value) = std::env::var(env) {
        if value.len() < 16 {
            bail!("{env} must be at least 16 characters, found {}", value.len());
        }
        tracing::info!("{file} taken from {env}");
        return Ok(Secret::new(value));
    }
    let path = data.join(file);
    if path.exists() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        }
        let value = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        tracing::info!(path = %path.display(), "{file} loaded");
        return Ok(Secret::new(value.trim().to_string()));
    }
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut bytes).context("reading the operating system's randomness")?;
    let value = format!("{prefix}{}", hex(&bytes));
    let tmp = data.join(format!("{file}.tmp"));
    {
        let mut out = private_file(&tmp, true)?;
        out.write_all(value.as_bytes())?;
        out.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    File::open(data)?.sync_all()?;
    tracing::info!(path = %path.display(), "{file} generated");
    if announce {
        println!("operator key (saved in {}; shown only now): {value}", path.display());
    }
    Ok(Secret::new(value))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Runs the server until it is told to stop.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    private_dir(&args.data)?;
    tracing::info!(data = %args.data.display(), version = crate::VERSION, "starting");
    let lock = private_file(&args.data.join("LOCK"), false)?;
    if lock.try_lock().is_err() {
        bail!("{} is in use by another kasa process", args.data.display());
    }
    let operator_key = load_or_create_secret(&args.data, "operator.key", "KASA_OPERATOR_KEY", "kasa_op_", true)?;
    let promoted_marker = args.data.join(PROMOTED_FILE);
    if args.follow.is_some() {
        if args.demo || args.bench_seed.is_some() {
            bail!("a follower takes its data from its primary: --follow goes without --demo and --bench-seed");
        }
        if promoted_marker.exists() {
            bail!(
                "{} was promoted to a primary ({} exists): it cannot follow again; start it without --follow",
                args.data.display(),
                promoted_marker.display()
            );
        }
        // A follower with keys of its own would match the primary's state hash and still,
        // once promoted, check no PIN and open no sealed account number: never make them.
        for (file, env) in [("pin.pepper", "KASA_PIN_PEPPER"), ("data.key", "KASA_DATA_KEY")] {
            if std::env::var_os(env).is_none() && !args.data.join(file).exists() {
                bail!(
                    "--follow needs the primary's {file}: copy it into {} or set {env} (a follower never makes its own)",
                    args.data.display()
                );
            }
        }
    }
    let pin_pepper = load_or_create_secret(&args.data, "pin.pepper", "KASA_PIN_PEPPER", "", false)?;
    let data_key = load_or_create_secret(&args.data, "data.key", "KASA_DATA_KEY", "", false)?;
    let primary = match &args.follow {
        None => None,
        Some(url) => {
            let key = match std::env::var("KASA_PRIMARY_OPERATOR_KEY") {
                Ok(key) => Secret::new(key),
                Err(_) => operator_key.clone(),
            };
            Some(crate::follow::Primary::parse(url, key)?)
        }
    };
    let journal_dir = args.data.join("journal");
    private_dir(&journal_dir)?;
    let storage = FileStorage::open(&journal_dir).context("opening the journal directory")?;
    let events_dir = args.data.join("events");
    private_dir(&events_dir)?;
    let event_storage = FileStorage::open(&events_dir).context("opening the event log directory")?;
    let mut options = EngineOptions {
        test_clock: args.test_clock,
        queue_depth_max: args.queue_depth as usize,
        follower: primary.is_some(),
        sync_follower: args.sync_followers == 1,
        ..EngineOptions::default()
    };
    options.writer.snapshot_interval_bytes = args.snapshot_interval_mib << 20;
    if args.hot_transfers > 0 {
        options.writer.cold = Some(ColdOptions {
            path: args.data.join("cold.redb"),
            hot_transfers: usize::try_from(args.hot_transfers).unwrap_or(usize::MAX),
            cache_bytes: (args.cold_cache_mib << 20) as usize,
        });
    }
    if args.sync_followers == 1 {
        tracing::info!("synchronous standby: answers wait until a follower has their batch");
    }
    if args.test_clock {
        tracing::warn!("test clock: operators can move engine time forward; not for real money");
    }
    let (engine, report) = Engine::start(storage, event_storage, options).context("recovering the journal")?;
    if let Some(torn) = &report.torn_tail {
        tracing::warn!(torn_tail = %torn, "cut a torn last frame (a crash during an append)");
    }
    if let Some(cut) = &report.events_cut {
        tracing::warn!(cut = %cut, "the event log was cut; its events are derived again from the journal");
    }
    tracing::info!(
        snapshot_seq = report.snapshot_seq.unwrap_or(0),
        frames_replayed = report.frames_replayed,
        last_seq = report.last_seq,
        events = report.events_logged,
        events_derived = report.events_derived,
        ms = report.duration.as_millis() as u64,
        state_hash = %hex(&report.state_hash),
        cold_transfers = report.cold_transfers,
        "recovered"
    );
    let engine = Arc::new(engine);
    // One HTTP thread runs tokio's current-thread scheduler: no work stealing to pay for.
    let runtime = if args.http_threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.http_threads).enable_all().build()?
    };
    engine.answer_on(runtime.handle());
    for ending in [&args.sandbox_bank_decline_ending, &args.sandbox_bank_no_answer_ending] {
        if ending.len() > 19 || !ending.bytes().all(|b| b.is_ascii_digit()) {
            bail!("a sandbox bank ending must be up to 19 digits, found '{ending}'");
        }
    }
    // The sandbox bank is the only bank rail shipped: see kasa_server::bank.
    let bank_log = args.data.join("sandbox-bank.log");
    drop(private_file(&bank_log, false)?);
    let bank = kasa_server::bank::SandboxBank::open(
        Some(bank_log),
        std::time::Duration::from_millis(args.sandbox_bank_latency_ms),
        &args.sandbox_bank_decline_ending,
        &args.sandbox_bank_no_answer_ending,
        args.sandbox_bank_refuse_repeats,
    )
    .context("opening the sandbox bank's log")?;
    tracing::info!(
        latency_ms = args.sandbox_bank_latency_ms,
        declines = %args.sandbox_bank_decline_ending,
        never_answers = %args.sandbox_bank_no_answer_ending,
        refuses_repeats = args.sandbox_bank_refuse_repeats,
        "bank rail: the in-process sandbox bank (declines and never takes amounts with these endings)"
    );
    tracing::info!("SMS gateway: the in-process sandbox (operators read codes at /v1/admin/sandbox/sms)");
    let config = Config {
        operator_key,
        pin_pepper,
        data_key,
        bank: Arc::new(bank),
        sms: Arc::new(kasa_server::sms::SandboxSms::default()),
        webhooks_allow_private: args.webhooks_allow_private,
        journal_dir: Some(journal_dir.clone()),
    };
    let app = AppState::new(engine.clone(), config);
    if let Some(url) = &args.read_model {
        let read_model = kasa_server::read_model::ReadModel::new(&Secret::new(url.clone()))?;
        tracing::info!(target = %read_model.target(), "read model: PostgreSQL (migrated and fed once the server runs)");
        let _ = app.read_model.set(Arc::new(read_model));
    }
    if args.demo {
        let seeded = runtime.block_on(kasa_server::demo::seed(&app)).map_err(anyhow::Error::msg)?;
        tracing::info!(users = seeded, "demo users seeded (PIN {})", kasa_server::demo::DEMO_PIN);
    }
    if let Some(users) = args.bench_seed {
        let secret = std::env::var("KASA_BENCH_SECRET").context("--bench-seed needs KASA_BENCH_SECRET")?;
        let secret = kasa::parse_hex32(&secret)?;
        let started = std::time::Instant::now();
        runtime.block_on(kasa_server::demo::seed_bench(&app, users, &secret)).map_err(anyhow::Error::msg)?;
        tracing::info!(users, ms = started.elapsed().as_millis() as u64, "bench users seeded");
    }
    let listening = kasa_server::ServeOptions { connections_max: args.connections_max as usize };
    if let Some(primary) = &primary {
        tracing::info!(primary = %primary.url, seq = report.last_seq, "following: reads only, no effects, until promoted");
    }
    let result = runtime.block_on(serve(args.listen, listening, engine.clone(), app, primary, promoted_marker));
    tracing::info!("draining the sequencer");
    let stopped = engine.shutdown();
    result?;
    if let Err(error) = stopped {
        bail!("the engine stopped with an error: {error}");
    }
    if engine.health() == Health::Failed {
        bail!("the engine stopped after a fatal disk error; restart to recover");
    }
    tracing::info!("stopped cleanly");
    drop(lock);
    Ok(())
}

async fn serve(
    listen: SocketAddr,
    options: kasa_server::ServeOptions,
    engine: Arc<Engine>,
    app: AppState,
    primary: Option<crate::follow::Primary>,
    promoted_marker: std::path::PathBuf,
) -> anyhow::Result<()> {
    // Handle SIGTERM before saying we listen: a supervisor may send it the moment we do, and
    // the default action would kill the process without draining.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(listen = %bound, "listening");
    // On stdout, for people and for scripts that started us with port 0 to learn the port.
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "kasa listening on http://{bound}")?;
        out.flush()?;
    }
    // Effects (the bank, webhooks, partners) are driven by the primary only: a follower
    // starts its consumers when it is promoted, from the state it then has.
    let bank_rail = Arc::new(std::sync::Mutex::new(None));
    let follower = match primary {
        None => {
            *bank_rail.lock().expect("bank rail lock") = Some(start_consumers(&app)?);
            None
        }
        Some(primary) => {
            let follower = tokio::spawn(crate::follow::run(engine.clone(), primary));
            let mut role = engine.role_changes();
            let (app, bank_rail) = (app.clone(), bank_rail.clone());
            let promoted = tokio::spawn(async move {
                if role.wait_for(|r| *r == Role::Primary).await.is_ok() {
                    // Remembered on disk, so that a restart with the same `--follow` does not
                    // make this primary a follower again.
                    if let Err(error) = write_marker(&promoted_marker, app.engine.now()) {
                        tracing::error!(error = %format!("{error:#}"), path = %promoted_marker.display(), "promoted, but the marker was not written: do not restart this server with --follow");
                    }
                    match start_consumers(&app) {
                        Ok(rail) => *bank_rail.lock().expect("bank rail lock") = Some(rail),
                        Err(error) => {
                            tracing::error!(error = %format!("{error:#}"), "promoted, but the consumers did not start")
                        }
                    }
                }
            });
            Some((follower, promoted))
        }
    };
    let mut health = engine.health_changes();
    let stopping = engine.clone();
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            _ = health.wait_for(|h| *h == Health::Failed) => tracing::error!("fatal engine error: shutting down"),
        }
        // New requests get 503 and /readyz says so; those already queued still complete.
        stopping.stop_accepting();
    };
    kasa_server::serve(listener, app, options, shutdown).await?;
    if let Some((follower, promoted)) = follower {
        follower.abort();
        promoted.abort();
    }
    // The consumers stop here; whatever they had not finished, the next start does again.
    if let Some(bank_rail) = bank_rail.lock().expect("bank rail lock").take() {
        bank_rail.abort();
    }
    Ok(())
}

/// The file that says a follower's data directory was promoted.
const PROMOTED_FILE: &str = "PROMOTED";

/// Writes and syncs the promotion marker.
fn write_marker(path: &Path, at: u64) -> anyhow::Result<()> {
    let mut out = private_file(path, true)?;
    writeln!(out, "promoted at {}", kasa_server::json::Rfc3339(at))?;
    out.sync_all()?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Starts the consumers that drive effects from the event log: the bank rail (whose task it
/// returns), partner calls and the read model's feed on this runtime; webhooks and partner notifications on threads
/// of their own, at a lower priority, which stop when the engine does.
fn start_consumers(app: &AppState) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let bank_rail = kasa_server::consumers::bank::spawn(app.clone());
    kasa_server::consumers::partner_calls::spawn(app.clone());
    kasa_server::consumers::webhooks::spawn(app.clone()).context("starting webhook deliveries")?;
    kasa_server::consumers::partner_notify::spawn(app.clone()).context("starting partner notifications")?;
    if let Some(read_model) = app.read_model.get() {
        kasa_server::consumers::read_model::spawn(app.engine.clone(), read_model.clone());
    }
    Ok(bank_rail)
}
