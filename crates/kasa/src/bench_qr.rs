//! `kasa bench qr`: in-store payments over HTTP to a real `kasa serve` with its journal on
//! disk. Each payment is one of three kinds, in turn:
//!
//! - **static**: a user scans a store's static code and enters the amount (one request,
//!   `POST /v1/me/qr-payments`);
//! - **dynamic**: the merchant makes a code for one sale (`POST /v1/stores/{id}/qr`) and a
//!   user pays it (`POST /v1/me/qr-payments`): two requests;
//! - **code**: a user gets a payment code (`POST /v1/me/payment-codes`, which also draws its
//!   barcode and QR code) and the merchant charges it (`POST /v1/payments`): two requests.
//!
//! Every payment ends `succeeded`, with the money moved, in the journal.

use crate::bench::{percentile, progress, seeded_server, stop, CpuMeter, QrArgs, Rng};
use crate::bench_payments::onboard;
use anyhow::{bail, Context};
use kasa::client::{AsyncClient, Client};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A store: its id, its merchant's key and its static payload.
pub(crate) struct Store {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) payload: String,
}

/// Adds `per_merchant` stores to each merchant and reads their static codes.
pub(crate) fn stores(
    addr: std::net::SocketAddr,
    key: &str,
    merchants: &[(String, String)],
    per_merchant: u64,
) -> anyhow::Result<Vec<Store>> {
    let mut operator = Client::connect(addr, key)?;
    let mut stores = Vec::new();
    for (merchant, api_key) in merchants {
        let mut as_merchant = Client::connect(addr, api_key)?;
        for i in 0..per_merchant {
            let body = serde_json::json!({ "name": format!("매장 {i}") });
            let r = operator.send(
                "POST",
                &format!("/v1/admin/merchants/{merchant}/stores"),
                "application/json",
                body.to_string().as_bytes(),
            )?;
            if r.status != 201 {
                bail!("a store: {} {}", r.status, String::from_utf8_lossy(&r.body));
            }
            let id = r.json()["id"].as_str().context("a store id")?.to_string();
            let r = as_merchant.send("GET", &format!("/v1/stores/{id}/qr"), "application/json", b"")?;
            let payload = r.json()["payload"].as_str().context("a store's payload")?.to_string();
            stores.push(Store { id, key: api_key.clone(), payload });
        }
    }
    Ok(stores)
}

/// Latencies of one client, by what was asked.
#[derive(Default)]
struct Timings {
    /// Per payment kind: the whole payment (one or two requests).
    payments: [Vec<Duration>; 3],
    /// Every request.
    requests: Vec<Duration>,
    refused: u64,
}

const KINDS: [&str; 3] = ["static", "dynamic", "code"];

impl Timings {
    /// Sends one request, timing it; `None` (and counted) unless it answered `want`.
    async fn send(
        &mut self,
        client: &mut AsyncClient,
        auth: &str,
        path: &str,
        body: &str,
        want: u16,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        client.set_key(auth);
        let sent = Instant::now();
        let r = client.send("POST", path, "application/json", body.as_bytes()).await?;
        self.requests.push(sent.elapsed());
        if r.status != want {
            self.refused += 1;
            if self.refused <= 3 {
                eprintln!("{path}: {} {}", r.status, String::from_utf8_lossy(&r.body));
            }
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&r.body)?))
    }
}

pub(crate) fn run(args: QrArgs) -> anyhow::Result<()> {
    if args.users <= args.clients as u64 || args.clients == 0 || args.merchants == 0 || args.stores == 0 {
        bail!("need more users than clients, 1 merchant with 1 store, and 1 client");
    }
    let kinds: Vec<usize> = args
        .kinds
        .iter()
        .map(|k| KINDS.iter().position(|known| known == k).with_context(|| format!("no payment kind {k}")))
        .collect::<anyhow::Result<_>>()?;
    if kinds.is_empty() {
        bail!("--kinds names no kind");
    }
    let kinds = Arc::new(kinds);
    let what = format!(
        "kasa bench qr: {} users (seeded, each with a top-up and a session), {} merchants with {} stores each, {} \
         in-store payments (static code, one-sale code, payment code in turn) from {} connections",
        args.users, args.merchants, args.stores, args.payments, args.clients
    );
    let seeded = seeded_server(args.users, args.users * 3 * 1024 + args.payments * 1500 + (64 << 20), &what)?;
    let (server, key, tokens) = (seeded.server, seeded.key, seeded.tokens);
    let addr = server.addr;
    let merchants = onboard(addr, &key, args.merchants, None)?;
    let stores = Arc::new(stores(addr, &key, &merchants, args.stores)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let next = Arc::new(AtomicU64::new(0));
    let ticker = progress("in-store payments", next.clone(), args.payments);
    let cpu = CpuMeter::start(Some(server.child.id()));
    let started = Instant::now();
    let timings = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.clients)
            .map(|c| {
                let (tokens, stores, next, args) = (tokens.clone(), stores.clone(), next.clone(), args.clone());
                let kinds = kinds.clone();
                tokio::spawn(async move {
                    let mut client = AsyncClient::connect(addr, "").await?;
                    let mut rng = Rng(args.seed.wrapping_mul(c as u64 + 11) | 1);
                    let mut t = Timings::default();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= args.payments {
                            break;
                        }
                        let store = &stores[(rng.next() % stores.len() as u64) as usize];
                        // User 1 holds its cap; the others 10,000 won and more. Each client has
                        // users of its own, so that no two codes of one user are in flight (a
                        // user's new code replaces the one before).
                        let clients = args.clients as u64;
                        let mine = (args.users - 1 - c as u64).div_ceil(clients);
                        let user = &tokens[(1 + c as u64 + clients * (rng.next() % mine)) as usize];
                        let amount = 1 + rng.next() % 100;
                        let kind = kinds[(n % kinds.len() as u64) as usize];
                        let began = Instant::now();
                        let paid = match kind {
                            0 => {
                                let body = serde_json::json!({"payload": store.payload, "amount": amount.to_string()});
                                t.send(&mut client, user, "/v1/me/qr-payments", &body.to_string(), 201).await?.is_some()
                            }
                            1 => {
                                let body = format!(r#"{{"amount":"{amount}","order_id":"q{n}"}}"#);
                                let path = format!("/v1/stores/{}/qr", store.id);
                                match t.send(&mut client, &store.key, &path, &body, 201).await? {
                                    None => false,
                                    Some(code) => {
                                        let body = serde_json::json!({"payload": code["payload"]});
                                        t.send(&mut client, user, "/v1/me/qr-payments", &body.to_string(), 201)
                                            .await?
                                            .is_some()
                                    }
                                }
                            }
                            _ => match t.send(&mut client, user, "/v1/me/payment-codes", "{}", 201).await? {
                                None => false,
                                Some(code) => {
                                    let body = serde_json::json!({"payment_code": code["code"], "amount": amount.to_string(),
                                        "currency": "KRW", "order_id": format!("c{n}"), "store_id": store.id});
                                    t.send(&mut client, &store.key, "/v1/payments", &body.to_string(), 201).await?.is_some()
                                }
                            },
                        };
                        if paid {
                            t.payments[kind].push(began.elapsed());
                        }
                    }
                    Ok::<_, anyhow::Error>(t)
                })
            })
            .collect();
        let mut all = Timings::default();
        for task in tasks {
            let t = task.await??;
            for (mine, theirs) in all.payments.iter_mut().zip(t.payments) {
                mine.extend(theirs);
            }
            all.requests.extend(t.requests);
            all.refused += t.refused;
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let elapsed = started.elapsed();
    let _ = ticker.join();
    let mut timings = timings;
    let paid: u64 = timings.payments.iter().map(|p| p.len() as u64).sum();
    println!(
        "in-store payments: {paid} paid in {elapsed:.2?}: {:.0} payments/s ({:.0} requests/s; {} refused)",
        paid as f64 / elapsed.as_secs_f64(),
        timings.requests.len() as f64 / elapsed.as_secs_f64(),
        timings.refused
    );
    for (kind, latencies) in KINDS.iter().zip(timings.payments.iter_mut()) {
        latencies.sort();
        println!(
            "{kind} payments ({}): p50 {:.2?}  p99 {:.2?}  p100 {:.2?}",
            latencies.len(),
            percentile(latencies, 0.50),
            percentile(latencies, 0.99),
            percentile(latencies, 1.0)
        );
    }
    timings.requests.sort();
    let r = &timings.requests;
    println!(
        "any request: p50 {:.2?}  p99 {:.2?}  p100 {:.2?}",
        percentile(r, 0.50),
        percentile(r, 0.99),
        percentile(r, 1.0)
    );
    println!("{}", cpu.report(paid, "in-store payment"));
    stop(server)?;
    if timings.refused != 0 {
        bail!("{} requests were refused", timings.refused);
    }
    Ok(())
}
