//! `kasa bench payments`: merchants take online payments from wallet users, over HTTP to a
//! real `kasa serve` with its journal on disk. Each payment is two requests: the merchant
//! creates it with its API key (`POST /v1/payments`) and a user approves it with a session
//! (`POST /v1/me/payments/{id}/approve`, within the PIN-free budget), so the money moves. With
//! `--webhooks` every merchant also has an endpoint for `payment.succeeded` on a receiver in
//! this process, and the deliveries are counted and timed.

use crate::bench::{percentile, progress, seeded_server, stop, CpuMeter, PaymentsArgs, Rng};
use anyhow::{bail, Context};
use kasa::client::{AsyncClient, Client};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// What the webhook receiver counted: deliveries, and the first and last arrival times.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    first: std::sync::Mutex<Option<Instant>>,
    last: std::sync::Mutex<Option<Instant>>,
}

/// A minimal HTTP/1.1 receiver that answers every request 200 on kept-alive connections.
async fn receive(listener: tokio::net::TcpListener, received: Arc<Received>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { return };
        let received = received.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let mut stream = tokio::io::BufStream::new(stream);
            let mut line = String::new();
            loop {
                let mut length = 0usize;
                loop {
                    line.clear();
                    match stream.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let header = line.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if stream.read_exact(&mut body).await.is_err() {
                    return;
                }
                let now = Instant::now();
                received.first.lock().expect("lock").get_or_insert(now);
                *received.last.lock().expect("lock") = Some(now);
                received.count.fetch_add(1, Ordering::Relaxed);
                if stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.is_err()
                    || stream.flush().await.is_err()
                {
                    return;
                }
            }
        });
    }
}

/// Onboards `n` merchants (fee 1 %), each with a key that reads and creates payments (and
/// manages webhooks); their ids and keys.
pub(crate) fn onboard(
    addr: std::net::SocketAddr,
    key: &str,
    n: u64,
    hook: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut c = Client::connect(addr, key)?;
    let mut keys = Vec::new();
    for i in 0..n {
        let brn = valid_brn(i);
        let body = serde_json::json!({
            "business_name": format!("벤치 상점 {i}"), "display_name": format!("상점 {i}"), "brn": brn, "mcc": "5812",
            "fee_bps": 100,
            "settlement_bank_account": {"bank_code": "088", "account_number": format!("1100{i:08}"), "holder_name": "상점"}
        });
        let r = c.send("POST", "/v1/admin/merchants", "application/json", body.to_string().as_bytes())?;
        if r.status != 201 {
            bail!("onboarding merchant {i}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        let merchant = r.json()["id"].as_str().context("a merchant id")?.to_string();
        let scopes =
            serde_json::json!({"name": "bench", "scopes": ["payments:read", "payments:write", "webhooks:manage"]});
        let path = format!("/v1/admin/merchants/{merchant}/api-keys");
        let r = c.send("POST", &path, "application/json", scopes.to_string().as_bytes())?;
        let api_key = r.json()["key"].as_str().context("an API key")?.to_string();
        if let Some(url) = hook {
            let mut mc = Client::connect(addr, "")?;
            let body = serde_json::json!({"url": url, "events": ["payment.succeeded"]});
            let head = format!(
                "POST /v1/webhook-endpoints HTTP/1.1\r\nAuthorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
            );
            let r = mc.send_raw(&head, body.to_string().as_bytes())?;
            if r.status != 201 {
                bail!("a webhook endpoint: {} {}", r.status, String::from_utf8_lossy(&r.body));
            }
        }
        keys.push((merchant, api_key));
    }
    Ok(keys)
}

/// The `i`th business registration number with a valid check digit.
pub(crate) fn valid_brn(i: u64) -> String {
    with_check_digit(120_810_001 + i * 7)
}

/// A business registration number of nine digits `head` and their check digit.
pub(crate) fn with_check_digit(head: u64) -> String {
    let digits: Vec<u32> = head.to_string().chars().map(|c| c.to_digit(10).unwrap_or(0)).collect();
    let weights = [1, 3, 7, 1, 3, 7, 1, 3, 5];
    let mut sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
    sum += digits[8] * 5 / 10;
    let check = (10 - sum % 10) % 10;
    format!("{head}{check}")
}

pub(crate) fn run(args: PaymentsArgs) -> anyhow::Result<()> {
    if args.users < 2 || args.clients == 0 || args.merchants == 0 {
        bail!("need at least 2 users, 1 merchant and 1 client");
    }
    let what = format!(
        "kasa bench payments: {} users (seeded, each with a top-up and a session), {} merchants, {} payments \
         (a create and an approval each) from {} connections{}",
        args.users,
        args.merchants,
        args.payments,
        args.clients,
        if args.webhooks { ", webhooks for payment.succeeded to a receiver in this process" } else { "" }
    );
    let seeded = seeded_server(args.users, args.users * 3 * 1024 + args.payments * 1500 + (64 << 20), &what)?;
    let (server, key, tokens) = (seeded.server, seeded.key, seeded.tokens);
    let addr = server.addr;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let received = Arc::new(Received::default());
    let hook = if args.webhooks {
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://127.0.0.1:{}/hooks", listener.local_addr()?.port());
        runtime.spawn(receive(listener, received.clone()));
        Some(url)
    } else {
        None
    };
    let merchant_keys: Vec<String> =
        onboard(addr, &key, args.merchants, hook.as_deref())?.into_iter().map(|(_, k)| k).collect();
    let merchant_keys = Arc::new(merchant_keys);
    let next = Arc::new(AtomicU64::new(0));
    let ticker = progress("payments", next.clone(), args.payments);
    let cpu = CpuMeter::start(Some(server.child.id()));
    let started = Instant::now();
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.clients)
            .map(|c| {
                let (tokens, keys, next, args) = (tokens.clone(), merchant_keys.clone(), next.clone(), args.clone());
                tokio::spawn(async move {
                    let mut client = AsyncClient::connect(addr, "").await?;
                    let mut rng = Rng(args.seed.wrapping_mul(c as u64 + 11) | 1);
                    let (mut creates, mut approvals) = (Vec::new(), Vec::new());
                    let mut other = 0u64;
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= args.payments {
                            break;
                        }
                        let merchant = (rng.next() % args.merchants) as usize;
                        // User 1 holds its cap; the others 10,000 won and more.
                        let user = 2 + rng.next() % (args.users - 1);
                        let amount = 1 + rng.next() % 100;
                        let body =
                            format!(r#"{{"amount":"{amount}","currency":"KRW","order_id":"b{n}","item_name":"커피"}}"#);
                        client.set_key(&keys[merchant]);
                        let sent = Instant::now();
                        let r = client.send("POST", "/v1/payments", "application/json", body.as_bytes()).await?;
                        creates.push(sent.elapsed());
                        if r.status != 201 {
                            other += 1;
                            if other <= 3 {
                                eprintln!("create: {} {}", r.status, String::from_utf8_lossy(&r.body));
                            }
                            continue;
                        }
                        let p: serde_json::Value = serde_json::from_slice(&r.body)?;
                        let id = p["id"].as_str().context("a payment id")?;
                        let token =
                            p["approval_url"].as_str().and_then(|u| u.split("token=").nth(1)).context("a token")?;
                        let path = format!("/v1/me/payments/{id}/approve");
                        let body = format!(r#"{{"token":"{token}"}}"#);
                        client.set_key(&tokens[(user - 1) as usize]);
                        let sent = Instant::now();
                        let r = client.send("POST", &path, "application/json", body.as_bytes()).await?;
                        approvals.push(sent.elapsed());
                        if r.status != 200 {
                            other += 1;
                            if other <= 3 {
                                eprintln!("approve: {} {}", r.status, String::from_utf8_lossy(&r.body));
                            }
                        }
                    }
                    Ok::<_, anyhow::Error>((creates, approvals, other))
                })
            })
            .collect();
        let (mut creates, mut approvals, mut other) = (Vec::new(), Vec::new(), 0);
        for task in tasks {
            let (c, a, o) = task.await??;
            creates.extend(c);
            approvals.extend(a);
            other += o;
        }
        Ok::<_, anyhow::Error>((creates, approvals, other))
    })?;
    let elapsed = started.elapsed();
    let _ = ticker.join();
    let (mut creates, mut approvals, other) = results;
    let approved = approvals.len() as u64 - other.min(approvals.len() as u64);
    println!(
        "payments: {} approved in {elapsed:.2?}: {:.0} approved payments/s ({} requests/s; {other} refused)",
        approved,
        approved as f64 / elapsed.as_secs_f64(),
        ((creates.len() + approvals.len()) as f64 / elapsed.as_secs_f64()) as u64
    );
    creates.sort();
    approvals.sort();
    let mut all: Vec<Duration> = creates.iter().chain(&approvals).copied().collect();
    all.sort();
    for (what, l) in [("create", &creates), ("approve", &approvals), ("any request", &all)] {
        println!(
            "{what} latency: p50 {:.2?}  p99 {:.2?}  p100 {:.2?}",
            percentile(l, 0.50),
            percentile(l, 0.99),
            percentile(l, 1.0)
        );
    }
    println!("{}", cpu.report(approved, "approved payment (both requests)"));
    if args.webhooks {
        // Wait for the deliveries to finish (each approved payment gives one).
        let waited = Instant::now();
        while received.count.load(Ordering::Relaxed) < approved && waited.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let count = received.count.load(Ordering::Relaxed);
        let first = *received.first.lock().expect("lock");
        let last = *received.last.lock().expect("lock");
        let span = match (first, last) {
            (Some(a), Some(b)) => b.duration_since(a),
            _ => Duration::ZERO,
        };
        let behind = last.map_or(Duration::ZERO, |l| l.saturating_duration_since(started + elapsed));
        println!(
            "webhooks: {count} deliveries of {approved} in {span:.2?}: {:.0} deliveries/s; the last came {behind:.2?} \
             after the last payment",
            count as f64 / span.as_secs_f64().max(1e-9)
        );
        if count < approved {
            bail!("{} deliveries did not arrive within 2 minutes", approved - count);
        }
    }
    stop(server)?;
    if other != 0 {
        bail!("{other} requests were refused");
    }
    Ok(())
}
