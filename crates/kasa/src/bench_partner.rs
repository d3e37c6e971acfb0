//! `kasa bench partner`: a partner wallet network pays Kasa's stores over HTTP, to a real
//! `kasa serve` with its journal on disk, then its settlement window is closed and its file
//! downloaded.
//!
//! - **Payments.** An operator registers a partner settling in CNY (fee 1 %), its Ed25519 key
//!   and a CNY/KRW rate; merchants get stores. Then every connection sends signed
//!   `POST /v1/partner/payments/pay` requests, one at a time, each with its own
//!   `paymentRequestId`, signed here with the time to the nanosecond (so no two signatures
//!   are alike and the server's replay check passes). Payments alternate between naming the
//!   store by its static code (`codeValue`, which the server decodes) and by its id
//!   (`storeId`). Every answer must be 200 with result `S`.
//! - **The window.** All those payments are in the partner's one open window: the operator
//!   closes it (`POST /v1/admin/settlement-windows/{id}/close`), and downloads its CSV file
//!   (`GET .../items.csv`, streamed in chunks), whose lines are counted against the payments.
//!
//! The signing is the load generator's cost; the server verifies every signature (Ed25519
//! with `ring`), checks the time and the replay, and signs every answer with Kasa's key.
//! Answers' signatures are not verified here: that is the partner's work, not the server's.

use crate::bench::{join_tasks, print_request_latency, progress, seeded_server_with, stop, CpuMeter, PartnerArgs, Rng};
use crate::bench_payments::onboard;
use crate::bench_qr::{stores, Store};
use anyhow::{bail, Context};
use kasa::client::{AsyncClient, Client};
use kasa_server::partner_signature::{encode_base64, Signer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const PAY_PATH: &str = "/v1/partner/payments/pay";

/// What the benchmark reads of an answer.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    #[serde(borrow)]
    result: AnswerResult<'a>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerResult<'a> {
    result_status: &'a str,
}

/// The partner as this process signs for it.
struct Partner {
    id: String,
    signer: Signer,
    version: u32,
}

/// Registers a partner settling in CNY with a fee of 1 %, its key and a CNY/KRW rate.
fn register(client: &mut Client) -> anyhow::Result<Partner> {
    let post = |client: &mut Client, path: &str, body: serde_json::Value| -> anyhow::Result<serde_json::Value> {
        let r = client.send("POST", path, "application/json", body.to_string().as_bytes())?;
        if r.status != 201 {
            bail!("{path}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        Ok(r.json())
    };
    let partner = post(
        client,
        "/v1/admin/partners",
        serde_json::json!({
            "name": "bench_partner", "home_currency": "CNY", "settlement_currency": "CNY", "fee_bps": 100,
            "settlement_bank_account": {"bank_code": "088", "account_number": "110987654321", "holder_name": "Partner Ltd"}
        }),
    )?;
    let id = partner["id"].as_str().context("a partner id")?.to_string();
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).context("randomness for the partner's key")?;
    let signer = Signer::from_seed(&seed);
    let key = post(
        client,
        &format!("/v1/admin/partners/{id}/keys"),
        serde_json::json!({"public_key": encode_base64(&signer.public_key())}),
    )?;
    let version = key["key_version"].as_u64().context("a key version")? as u32;
    post(
        client,
        "/v1/admin/fx/rates",
        serde_json::json!({"rates": [{"pair": "CNY/KRW", "mid": "190.50", "spread_bps": 100}]}),
    )?;
    Ok(Partner { id, signer, version })
}

/// Now, as a partner's `Request-Time`: to the nanosecond, so that every signature differs.
fn request_time() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    kasa_server::json::Rfc3339(nanos).to_string()
}

/// Payment `n`'s body: at a store by its static code when `n` is even, by its id when odd.
fn pay_body(n: u64, store: &Store, won: u64) -> String {
    let at = if n.is_multiple_of(2) {
        format!(r#""codeValue":{}"#, serde_json::Value::from(store.payload.as_str()))
    } else {
        format!(r#""storeId":"{}""#, store.id)
    };
    format!(
        r#"{{"paymentRequestId":"bench-{n}","paymentAmount":{{"currency":"KRW","value":"{won}"}},"order":{{"orderDescription":"Coffee"}},"customerId":"2088{n:012}",{at},"env":{{"terminalType":"APP"}}}}"#
    )
}

pub(crate) fn run(args: PartnerArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.merchants == 0 || args.stores == 0 || args.payments == 0 {
        bail!("need 1 connection, 1 merchant with 1 store, and 1 payment");
    }
    let what = format!(
        "kasa bench partner: {} merchants with {} stores each, one partner settling in CNY, {} signed payments \
         (by static code and by store id in turn) from {} connections; then the window is closed and its CSV file read",
        args.merchants, args.stores, args.payments, args.connections
    );
    // About 1 KiB of journal per payment, plus a snapshot at the stop.
    let serve = ["--http-threads".to_string(), args.http_threads.to_string()];
    let seeded = seeded_server_with(0, args.payments * 1024 + (64 << 20), &what, &serve)?;
    let (server, key) = (seeded.server, seeded.key);
    let addr = server.addr;
    let merchants = onboard(addr, &key, args.merchants, None)?;
    let stores = Arc::new(stores(addr, &key, &merchants, args.stores)?);
    let mut operator = Client::connect(addr, &key)?;
    let partner = Arc::new(register(&mut operator)?);

    // The connections run as tasks on one thread, as in the other benchmarks.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let next = Arc::new(AtomicU64::new(0));
    let ticker = progress("partner payments", next.clone(), args.payments);
    let cpu = CpuMeter::start(Some(server.child.id()));
    let started = Instant::now();
    let (mut latencies, refused) = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.connections)
            .map(|c| {
                let (stores, next, partner, seed) = (stores.clone(), next.clone(), partner.clone(), args.seed);
                let payments = args.payments;
                tokio::spawn(async move {
                    let mut client = AsyncClient::connect(addr, "").await?;
                    let mut rng = Rng(seed.wrapping_mul(c as u64 + 11) | 1);
                    let mut latencies = Vec::new();
                    let mut refused = 0u64;
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= payments {
                            break;
                        }
                        let store = &stores[(rng.next() % stores.len() as u64) as usize];
                        let body = pay_body(n, store, 1_000 + rng.next() % 99_000);
                        let sent = Instant::now();
                        let r = client
                            .send_signed(
                                PAY_PATH,
                                &partner.id,
                                (&partner.signer, partner.version),
                                &request_time(),
                                body.as_bytes(),
                            )
                            .await?;
                        let took = sent.elapsed();
                        let paid = r.status == 200
                            && serde_json::from_slice::<Answer>(&r.body).is_ok_and(|a| a.result.result_status == "S");
                        if paid {
                            latencies.push(took);
                        } else {
                            refused += 1;
                            if refused <= 3 {
                                eprintln!("payment {n}: {} {}", r.status, String::from_utf8_lossy(&r.body));
                            }
                        }
                    }
                    Ok::<_, anyhow::Error>((latencies, refused))
                })
            })
            .collect();
        join_tasks(tasks).await
    })?;
    let elapsed = started.elapsed();
    let _ = ticker.join();
    let paid = latencies.len() as u64;
    latencies.sort();
    println!(
        "partner payments: {paid} paid in {elapsed:.2?}: {:.0} payments/s ({refused} refused)",
        paid as f64 / elapsed.as_secs_f64()
    );
    print_request_latency(&latencies);
    println!("{}", cpu.report(paid, "partner payment"));
    if refused != 0 {
        bail!("{refused} payments were refused");
    }
    close_and_read(&mut operator, &partner.id, paid)?;
    stop(server)?;
    Ok(())
}

/// Closes the partner's one window, which must hold the `paid` payments, and reads its CSV
/// file, checking that it has a line for each; prints how long each took.
fn close_and_read(operator: &mut Client, partner_id: &str, paid: u64) -> anyhow::Result<()> {
    let r = operator.send("GET", &format!("/v1/admin/settlement-windows?partner_id={partner_id}"), "", b"")?;
    let windows = r.json()["data"].as_array().cloned().unwrap_or_default();
    let [window] = windows.as_slice() else {
        bail!(
            "the partner has {} windows, not one: did the run cross midnight KST, when windows close? Run it again",
            windows.len()
        );
    };
    let id = window["id"].as_str().context("a window id")?;
    if window["status"] != "open" || window["payments"].as_u64() != Some(paid) {
        bail!("the window is not open with {paid} payments: {window}");
    }
    let started = Instant::now();
    let r = operator.send("POST", &format!("/v1/admin/settlement-windows/{id}/close"), "application/json", b"{}")?;
    let close_took = started.elapsed();
    let closed = r.json();
    if r.status != 200 || closed["status"] != "closed" || closed["payments"].as_u64() != Some(paid) {
        bail!("closing {id}: {} {closed}", r.status);
    }
    println!("window {id} of {paid} payments closed in {close_took:.2?} (net {} CNY minor units)", closed["net"]);
    let started = Instant::now();
    let r = operator.send("GET", &format!("/v1/admin/settlement-windows/{id}/items.csv"), "", b"")?;
    let file_took = started.elapsed();
    if r.status != 200 || r.header("transfer-encoding") != Some("chunked") {
        bail!("the file of {id}: {} (transfer-encoding {:?})", r.status, r.header("transfer-encoding"));
    }
    let lines = r.body.iter().filter(|&&b| b == b'\n').count() as u64;
    if lines != 1 + paid {
        bail!("the file of {id} has {lines} lines, not a header and {paid} payments");
    }
    let mib = r.body.len() as f64 / (1 << 20) as f64;
    println!(
        "settlement file: {lines} lines ({mib:.1} MiB, streamed) read in {file_took:.2?}: {:.0} lines/s, {:.0} MiB/s; \
         close and file together {:.2?}",
        lines as f64 / file_took.as_secs_f64(),
        mib / file_took.as_secs_f64(),
        close_took + file_took
    );
    Ok(())
}
