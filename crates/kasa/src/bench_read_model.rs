//! `kasa bench read-model`: the PostgreSQL read model under a full-speed write load. A real
//! server with `--read-model` and seeded wallet users (their sign-ups and top-ups are the
//! first events the feed catches up on); then wallet sends at full speed from many
//! connections while a sampler reads the lag from `/metrics` every 100 ms; then how long the
//! feed takes to drain once the writes stop; then history reads, a user's latest 20 entries,
//! from PostgreSQL (`/v1/read-model/me/transactions`) against the in-memory endpoint
//! (`/v1/me/transactions`), p50 and p99. The PostgreSQL server is the operator's: pass its URL.

use crate::bench::{percentile, seeded_server_with, stop, Rng};
use anyhow::{bail, Context};
use kasa::client::{AsyncClient, Client};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `kasa bench read-model`.
#[derive(clap::Args, Clone)]
pub struct ReadModelArgs {
    /// The read model's PostgreSQL (postgres://USER@HOST:PORT/DB); its tables are emptied.
    #[arg(long, value_name = "URL")]
    pub(crate) read_model: String,
    /// Wallet users, seeded with a top-up and a session each.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) users: u64,
    /// Sends to make at full speed.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) sends: u64,
    /// Concurrent connections, each sending one request at a time.
    #[arg(long, default_value_t = 32)]
    pub(crate) clients: usize,
    /// History reads of each endpoint.
    #[arg(long, default_value_t = 5_000)]
    pub(crate) reads: u64,
    /// Seed of the random users and amounts.
    #[arg(long, default_value_t = 7)]
    pub(crate) seed: u64,
}

/// How long the feed may take to catch up before the benchmark gives up.
const CATCH_UP_MAX: Duration = Duration::from_secs(600);

/// The read model's lag in events and seconds, from `/metrics`.
fn lag(c: &mut Client) -> anyhow::Result<(u64, f64)> {
    let r = c.send("GET", "/metrics", "", b"")?;
    let text = String::from_utf8_lossy(&r.body);
    let value = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).map(str::to_string))
    };
    let events = value("kasa_read_model_lag_events").context("no kasa_read_model_lag_events in /metrics")?;
    let seconds = value("kasa_read_model_lag_seconds").unwrap_or_default();
    Ok((events.parse()?, seconds.parse().unwrap_or(0.0)))
}

/// Waits until the lag is 0; how long that took.
fn drained(c: &mut Client) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while lag(c)?.0 != 0 {
        if started.elapsed() > CATCH_UP_MAX {
            bail!("the read model did not catch up in {CATCH_UP_MAX:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(started.elapsed())
}

/// Runs the benchmark.
pub fn run(args: ReadModelArgs) -> anyhow::Result<()> {
    if args.users < 2 || args.clients == 0 {
        bail!("need at least 2 users and 1 client");
    }
    let what = format!(
        "kasa bench read-model: {} users, {} sends from {} connections at full speed, then {} history reads per endpoint",
        args.users, args.sends, args.clients, args.reads
    );
    // Empty the tables first (the rebuild path): the feed starts from the first event.
    let empty = kasa_server::read_model::ReadModel::new(&kasa_server::Secret::new(args.read_model.clone()))?;
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let mut client = empty.connect().await?;
        kasa_server::read_model::ReadModel::migrate(&mut client).await?;
        kasa_server::read_model::store::truncate(&mut client).await
    })?;
    let seeded = seeded_server_with(
        args.users,
        args.users * 3 * 1024 + args.sends * 400 + (64 << 20),
        &what,
        &["--read-model".to_string(), args.read_model.clone()],
    )?;
    let addr = seeded.server.addr;
    let mut ops = Client::connect(addr, &seeded.key)?;
    let took = drained(&mut ops)?;
    println!("caught up with the seeding's events in {took:.2?} after the server was ready");

    // Sends at full speed, the lag sampled meanwhile.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, key) = (done.clone(), seeded.key.clone());
        std::thread::spawn(move || -> anyhow::Result<Vec<(u64, f64)>> {
            let mut c = Client::connect(addr, &key)?;
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                samples.push(lag(&mut c)?);
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(samples)
        })
    };
    let next = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let started = Instant::now();
    let ok = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.clients)
            .map(|c| {
                let (tokens, next, args, key) = (seeded.tokens.clone(), next.clone(), args.clone(), seeded.key.clone());
                tokio::spawn(async move {
                    let mut client = AsyncClient::connect(addr, &key).await?;
                    let mut rng = Rng(args.seed.wrapping_mul(c as u64 + 11) | 1);
                    let mut ok = 0u64;
                    while next.fetch_add(1, Ordering::Relaxed) < args.sends {
                        // Never from user 1, whose wallet is at its cap.
                        let from = 2 + rng.next() % (args.users - 1);
                        let to = if from == args.users { 2 } else { from + 1 };
                        let body =
                            format!(r#"{{"to_user_id":"{to}","amount":"{}","currency":"KRW"}}"#, 1 + rng.next() % 500);
                        client.set_key(&tokens[(from - 1) as usize]);
                        let r = client.send("POST", "/v1/transfers", "application/json", body.as_bytes()).await?;
                        ok += u64::from(r.status == 201);
                    }
                    Ok::<_, anyhow::Error>(ok)
                })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            ok += task.await??;
        }
        Ok::<_, anyhow::Error>(ok)
    })?;
    let elapsed = started.elapsed();
    let drain = drained(&mut ops)?;
    done.store(true, Ordering::Relaxed);
    let mut samples = sampler.join().map_err(|_| anyhow::anyhow!("the lag sampler panicked"))??;
    println!(
        "sends: {} in {elapsed:.2?} ({:.0}/s, {ok} completed); the read model drained {drain:.2?} after the last",
        args.sends,
        args.sends as f64 / elapsed.as_secs_f64()
    );
    samples.sort_by_key(|s| s.0);
    let events: Vec<u64> = samples.iter().map(|s| s.0).collect();
    let at = |p: f64| events.get(((events.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
    let seconds_max = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    println!(
        "lag during the sends ({} samples, 100 ms apart): events p50 {} p99 {} max {}; seconds behind max {seconds_max:.3}",
        events.len(),
        at(0.5),
        at(0.99),
        events.last().copied().unwrap_or(0)
    );

    // History reads: a user's latest 20 entries, from each endpoint.
    for (name, path) in
        [("in memory", "/v1/me/transactions?limit=20"), ("PostgreSQL", "/v1/read-model/me/transactions?limit=20")]
    {
        let mut c = Client::connect(addr, &seeded.key)?;
        let mut rng = Rng(args.seed | 1);
        let mut latencies = Vec::with_capacity(args.reads as usize);
        let mut entries = 0usize;
        for _ in 0..args.reads {
            let user = 2 + rng.next() % (args.users - 1);
            let auth = format!("Bearer {}", seeded.tokens[(user - 1) as usize]);
            let sent = Instant::now();
            let r = c.request("GET", path, &[("Authorization", auth.as_str())], b"")?;
            latencies.push(sent.elapsed());
            if r.status != 200 {
                bail!("{path} answered {}: {}", r.status, String::from_utf8_lossy(&r.body));
            }
            entries += r.json()["data"].as_array().map_or(0, Vec::len);
        }
        latencies.sort();
        println!(
            "history from {name}: {} reads, {:.1} entries each: p50 {:.2?} p99 {:.2?} max {:.2?}",
            args.reads,
            entries as f64 / args.reads as f64,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or_default()
        );
    }
    stop(seeded.server)
}
