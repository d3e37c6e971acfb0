//! The PostgreSQL read model end to end: a real `kasa serve --read-model` against a throwaway
//! PostgreSQL server (`support/postgres.rs`). Rows appear for every kind and equal what the
//! in-memory endpoints answer; `kill -9` mid-feed loses and repeats nothing (rows and cursor
//! commit together); `kasa read-model rebuild` ends at the live feed's rows; PostgreSQL down
//! is a `503 read_model_unavailable` and the feed catches up when it is back; the lag is in
//! `/metrics`; the URL's password never reaches the log.

mod support;

use kasa::client::Client;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::postgres::{query, try_query, Postgres};
use support::*;

/// How long the feed may take to catch up in a test.
const CATCH_UP: Duration = Duration::from_secs(60);

/// Waits until the read model reflects every event and `transfers` ledger transfers.
#[track_caller]
fn caught_up(c: &mut Client, transfers: u64) -> Value {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let r = get(c, "/v1/admin/read-model/status");
        if r.status == 200 {
            let s = r.json();
            if s["lag_events"] == 0 && s["as_of"]["ledger_transfers"] == transfers {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "the read model did not catch up: {}", r.json());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every page of `path` (a list with `next_cursor`), as `user` or the operator.
fn all_pages(c: &mut Client, user: Option<&User>, path: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(cur) => format!("{path}{sep}limit=7&cursor={cur}"),
            None => format!("{path}{sep}limit=7"),
        };
        let r = match user {
            Some(u) => u.get(c, &url),
            None => get(c, &url),
        };
        assert_eq!(r.status, 200, "{url}: {}", r.json());
        let page = r.json();
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
    }
}

/// A merchant with a payment a user approved and the merchant partly refunded, and one left
/// waiting for approval: the merchant's id and API key.
fn merchant_with_payments(server: &Server, c: &mut Client, payer: &User, brn: &str) -> (String, String) {
    let merchant = onboard(c, brn);
    let key = api_key(c, &merchant, &["payments:read", "payments:write", "refunds:write"]);
    let mut ids = Vec::new();
    for (order, amount) in [("order-1", 12_000), ("order-2", 3_000)] {
        let body = json!({"amount": amount.to_string(), "currency": "KRW", "order_id": order, "item_name": "아메리카노",
            "capture_method": "automatic"});
        let r = call(c, "POST", "/v1/payments", Some(&key), Some(&body));
        assert_eq!(r.status, 201, "{}", r.json());
        let p = r.json();
        let token = p["approval_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
        ids.push((p["id"].as_str().unwrap().to_string(), token));
    }
    let (paid, token) = &ids[0];
    let r = payer.post(c, &format!("/v1/me/payments/{paid}/approve"), &json!({"token": token, "pin": PIN}));
    assert_eq!(r.status, 200, "{}", r.json());
    let r = call(
        c,
        "POST",
        &format!("/v1/payments/{paid}/refunds"),
        Some(&key),
        Some(&json!({"amount": "2000", "reason": "one cup returned"})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let _ = server;
    (merchant, key)
}

/// Users, money moving between them, a top-up, a merchant's payments and the operators'
/// ledger: something of every kind the read model holds. The users.
fn workload(server: &Server, c: &mut Client) -> (Vec<User>, String, String) {
    let a = sign_up(server, "010-5555-0001");
    let b = sign_up(server, "010-5555-0002");
    credit(c, &a, 200_000);
    for amount in ["5000", "7000", "1000"] {
        let r = a.post(c, "/v1/transfers", &json!({"to_user_id": b.id, "amount": amount, "pin": PIN}));
        assert_eq!(r.status, 201, "{}", r.json());
    }
    // Held for a number without a wallet, then claimed by its sign-up: the sender's entry
    // changes its kind (held, then sent) after the event that made it.
    let r = a.post(c, "/v1/transfers", &json!({"to_phone": "010-5555-0009", "amount": "4000", "pin": PIN}));
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["status"], "held", "{}", r.json());
    let claimer = sign_up(server, "010-5555-0009");
    let bank = link_bank(c, &b, "110222333444");
    funding(c, &b, "top-ups", &bank, 30_000, Some(PIN));
    let (merchant, key) = merchant_with_payments(server, c, &a, "220-81-62517");
    let r =
        post(c, "/v1/ledger/accounts", &json!([account(1, 1, &[]), account(2, 1, &[]), account(3, 1, &["history"])]));
    assert_eq!(r.status, 200, "{}", r.json());
    for (id, debit, credit_account, amount) in [(100, 1, 2, 700), (101, 2, 3, 300), (102, 1, 3, 50)] {
        let r = post(c, "/v1/ledger/transfers", &transfer(id, debit, credit_account, amount));
        assert_eq!(r.status, 201, "{}", r.json());
    }
    (vec![a, b, claimer], merchant, key)
}

/// Runs `kasa read-model rebuild` on `data` into `url`.
fn rebuild(data: &std::path::Path, url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["read-model", "rebuild", "--data"])
        .arg(data)
        .args(["--read-model", url])
        .output()
        .unwrap()
}

/// The read model's rows, table by table, in a fixed order: for comparing two feeds.
fn dump(url: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT * FROM merchants ORDER BY id",
        "SELECT * FROM payments ORDER BY id",
        "SELECT * FROM user_transactions ORDER BY user_id, ts, rank, object_id",
        "SELECT * FROM ledger_accounts ORDER BY id",
        "SELECT * FROM ledger_transfers ORDER BY id",
        "SELECT event_seq, ledger_accounts, ledger_transfers FROM read_model_cursor",
    ] {
        out.extend(query(url, sql));
    }
    out
}

/// Every user's history from the read model equals the in-memory one, entry for entry.
#[track_caller]
fn histories_agree(c: &mut Client, users: &[User]) {
    for user in users {
        let memory = all_pages(c, Some(user), "/v1/me/transactions");
        let read_model = all_pages(c, Some(user), "/v1/read-model/me/transactions");
        assert!(!memory.is_empty());
        assert_eq!(read_model, memory, "user {}", user.id);
    }
}

#[test]
fn rows_of_every_kind_match_the_state_and_the_lag_is_in_metrics() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    // A password in the URL (trust authentication takes any): it must never be logged.
    let url = pg.url().replace("kasa@", "kasa:pw-never-logged-7731@");
    let data = dir.path().join("data");
    let server = Server::launch(&data, &["--read-model", &url], Launch { log: Some(&log), ..Launch::default() });
    let mut c = server.client();
    let (users, merchant, key) = workload(&server, &mut c);
    let s = caught_up(&mut c, 3);

    // Every kind has its rows.
    assert_eq!(s["rows"]["merchants"], 1, "{s}");
    assert_eq!(s["rows"]["payments"], 2, "{s}");
    assert_eq!(s["rows"]["ledger_accounts"], 3, "{s}");
    assert_eq!(s["rows"]["ledger_transfers"], 3, "{s}");
    assert!(s["as_of"]["event_seq"].as_u64().unwrap() > 0);

    // History: the same entries, pages and all, as the in-memory endpoint.
    histories_agree(&mut c, &users);
    let a = &users[0];
    let entries = all_pages(&mut c, Some(a), "/v1/read-model/me/transactions");
    let kinds: Vec<&str> = entries.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["refund", "payment", "sent", "sent", "sent", "sent", "adjustment"]);
    let claimed = &entries[2];
    assert_eq!(
        (claimed["amount"].as_str(), claimed["status"].as_str()),
        (Some("4000"), Some("completed")),
        "{claimed}"
    );

    // Search: the merchant's payments as its API lists them, filtered by status and order.
    let base = format!("/v1/admin/read-model/payments?merchant_id={merchant}");
    let found = all_pages(&mut c, None, &base);
    let memory = all_payments(&mut c, &key);
    let ids = |v: &[Value]| v.iter().map(|p| (p["id"].clone(), p["status"].clone())).collect::<Vec<_>>();
    assert_eq!(ids(&found), ids(&memory));
    assert_eq!(found[1]["amount_refunded"], "2000");
    let succeeded = all_pages(&mut c, None, &format!("{base}&status=succeeded"));
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0]["order_id"], "order-1");
    let by_order = all_pages(&mut c, None, &format!("{base}&order_id=order-2"));
    assert_eq!(by_order.len(), 1);
    assert_eq!(by_order[0]["status"], "requires_approval");
    let none = all_pages(&mut c, None, &format!("{base}&created_to=2000-01-01T00:00:00Z"));
    assert!(none.is_empty());

    // Reports: the day's volume of the merchant.
    let day = found[0]["created_at"].as_str().unwrap().get(0..10).unwrap().to_string();
    let from = "2000-01-01";
    let r = get(&mut c, &format!("/v1/admin/read-model/reports/daily-payments?from={from}&to=2099-12-31"));
    assert_problem(&r, 400, "invalid_parameter");
    let r = get(&mut c, "/v1/admin/read-model/reports/daily-payments?from=2026-01-01&to=2026-13-01");
    assert_problem(&r, 400, "invalid_parameter");
    // Days are KST's, ahead of UTC's: from the UTC day to the 28th of the next month.
    let (y, m): (i32, u32) = (day[0..4].parse().unwrap(), day[5..7].parse().unwrap());
    let to = if m == 12 { format!("{}-01-28", y + 1) } else { format!("{y}-{:02}-28", m + 1) };
    let r =
        get(&mut c, &format!("/v1/admin/read-model/reports/daily-payments?from={day}&to={to}&merchant_id={merchant}"));
    assert_eq!(r.status, 200, "{}", r.json());
    let lines = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["merchant_id"], merchant.as_str());
    assert!(lines[0]["day"].as_str().unwrap() >= day.as_str());
    assert_eq!(lines[0]["payments"], 2);
    assert_eq!(lines[0]["succeeded"], 1);
    assert_eq!(lines[0]["amount"], "15000");
    assert_eq!(lines[0]["amount_captured"], "12000");
    assert_eq!(lines[0]["amount_refunded"], "2000");
    assert!(r.json()["as_of"]["event_seq"].as_u64().unwrap() > 0);

    // The ledger's rows: balances as the ledger API has them.
    let rows =
        query(&pg.url(), "SELECT id::TEXT, debits_posted::TEXT, credits_posted::TEXT FROM ledger_accounts ORDER BY id");
    for row in &rows {
        let account = get(&mut c, &format!("/v1/ledger/accounts/{}", row[0])).json();
        assert_eq!(
            (account["debits_posted"].as_str().unwrap(), account["credits_posted"].as_str().unwrap()),
            (row[1].as_str(), row[2].as_str())
        );
    }
    assert_eq!(rows[0][1], "750");

    // The lag in /metrics.
    let metrics = String::from_utf8(get(&mut c, "/metrics").body).unwrap();
    let head = s["head_event_seq"].as_u64().unwrap();
    assert!(metrics.contains("\nkasa_read_model_lag_events 0\n"), "{metrics}");
    assert!(metrics.contains(&format!("\nkasa_read_model_applied_seq {head}\n")), "{metrics}");
    assert!(metrics.contains("\nkasa_read_model_up 1\n"), "{metrics}");

    server.terminate();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("read model"), "{logged}");
    assert!(!logged.contains("pw-never-logged"), "the read model's password reached the log");
}

#[test]
fn kill_9_mid_feed_loses_and_repeats_nothing_and_a_rebuild_ends_at_the_same_rows() {
    let pg = Postgres::start();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // First without a read model: the feed has everything to catch up on when it starts.
    let server = Server::start(&data);
    let mut c = server.client();
    let (users, _, _) = workload(&server, &mut c);
    // Operators' ledger batches: tens of thousands of transfers, several rounds of the feed.
    let accounts: Vec<Value> = (10..20).map(|id| account(id, 1, &[])).collect();
    assert_eq!(post(&mut c, "/v1/ledger/accounts", &json!(accounts)).status, 200);
    let mut next_id = 1_000u128;
    for _ in 0..6 {
        let batch: Vec<Value> = (0..8_000)
            .map(|i| {
                next_id += 1;
                transfer(next_id, 10 + (i % 10), 10 + ((i + 3) % 10), 1 + (next_id % 97))
            })
            .collect();
        let r = post(&mut c, "/v1/ledger/transfers", &json!(batch));
        assert_eq!(r.status, 200, "{}", r.json());
    }
    let transfers = 3 + 48_000;
    server.terminate();

    // Started with the read model, killed while it catches up (its rounds are 8,190 transfers
    // each), in the middle of whatever round it is in.
    let server = Server::start_with(&data, &["--read-model", &url]);
    let deadline = Instant::now() + CATCH_UP;
    loop {
        // The table exists once the server migrated the schema.
        let copied: u64 = try_query(&url, "SELECT count(*) FROM ledger_transfers")
            .and_then(|rows| rows.first().map(|r| r[0].parse().unwrap()))
            .unwrap_or(0);
        if copied > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the feed never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill9();
    // Rows and cursor agree: the cursor counts exactly the transfers copied.
    let cursor = query(&url, "SELECT ledger_transfers FROM read_model_cursor");
    let copied = query(&url, "SELECT count(*) FROM ledger_transfers");
    assert_eq!(cursor[0][0], copied[0][0], "the cursor and the rows disagree after kill -9");
    eprintln!("killed with {} of {transfers} transfers copied", copied[0][0]);

    let server = Server::start_with(&data, &["--read-model", &url]);
    let mut c = server.client();
    caught_up(&mut c, transfers);
    let counts = query(&url, "SELECT count(*), count(DISTINCT id), sum(amount)::TEXT FROM ledger_transfers");
    let expected_sum: u128 = (1_001..=48_000 + 1_000).map(|id: u128| 1 + (id % 97)).sum::<u128>() + 700 + 300 + 50;
    assert_eq!(counts[0], [transfers.to_string(), transfers.to_string(), expected_sum.to_string()]);
    histories_agree(&mut c, &users);
    // Balances as the ledger has them, for every account.
    for id in 10..20 {
        let account = get(&mut c, &format!("/v1/ledger/accounts/{id}")).json();
        let row = query(
            &url,
            &format!("SELECT debits_posted::TEXT, credits_posted::TEXT FROM ledger_accounts WHERE id = {id}"),
        );
        assert_eq!(row[0], [account["debits_posted"].as_str().unwrap(), account["credits_posted"].as_str().unwrap()]);
    }
    let live = dump(&url);
    server.terminate();

    // A rebuild empties the tables and ends at the same rows.
    query(&url, "UPDATE payments SET status = 'tampered'");
    let out = rebuild(&data, &url);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rebuilt"));
    assert_eq!(dump(&url), live);

    // Not while a server runs on the data directory.
    let server = Server::start(&data);
    let out = rebuild(&data, &url);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"), "{}", String::from_utf8_lossy(&out.stderr));
    server.terminate();
}

#[test]
fn postgres_down_is_a_clear_problem_and_the_feed_resumes_when_it_is_back() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--read-model", &pg.url()]);
    let mut c = server.client();
    let a = sign_up(&server, "010-5555-0101");
    let b = sign_up(&server, "010-5555-0102");
    credit(&mut c, &a, 50_000);
    caught_up(&mut c, 0);

    pg.stop();
    let r = a.get(&mut c, "/v1/read-model/me/transactions");
    assert_problem(&r, 503, "read_model_unavailable");
    assert_problem(&get(&mut c, "/v1/admin/read-model/status"), 503, "read_model_unavailable");
    // The engine goes on: writes succeed and the in-memory history has them.
    for amount in ["1000", "2000"] {
        let r = a.post(&mut c, "/v1/transfers", &json!({"to_user_id": b.id, "amount": amount}));
        assert_eq!(r.status, 201, "{}", r.json());
    }
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let metrics = String::from_utf8(get(&mut c, "/metrics").body).unwrap();
        if metrics.contains("\nkasa_read_model_up 0\n") {
            assert!(!metrics.contains("\nkasa_read_model_lag_events 0\n"), "{metrics}");
            break;
        }
        assert!(Instant::now() < deadline, "the feed never noticed PostgreSQL was down: {metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }

    pg.start_again();
    caught_up(&mut c, 0);
    histories_agree(&mut c, &[a, b]);
    server.terminate();
}

#[test]
fn without_a_read_model_its_routes_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let a = sign_up(&server, "010-5555-0201");
    assert_problem(&a.get(&mut c, "/v1/read-model/me/transactions"), 501, "read_model_not_configured");
    assert_problem(&get(&mut c, "/v1/admin/read-model/status"), 501, "read_model_not_configured");
    // Input is checked before the read model is looked for.
    assert_problem(&a.get(&mut c, "/v1/read-model/me/transactions?cursor=nope"), 400, "invalid_parameter");
    assert_problem(&get(&mut c, "/v1/admin/read-model/payments"), 400, "invalid_parameter");
    assert!(!String::from_utf8(get(&mut c, "/metrics").body).unwrap().contains("kasa_read_model"));
    // A URL that is not PostgreSQL's stops the server at start, without repeating it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(tempfile::tempdir().unwrap().path())
        .args(["--read-model", "postgres://kasa:secret-in-url@[::1"])
        .env("KASA_OPERATOR_KEY", KEY)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a PostgreSQL URL") && !stderr.contains("secret-in-url"), "{stderr}");
    server.terminate();
}

/// A pending transfer's expiry changes its accounts' pending balances with no transfer to
/// say so: the feed writes the accounts again once the ledger expired it, also when the
/// server restarted in between (the pending transfers it watches are read back from
/// PostgreSQL).
#[test]
fn an_expired_pending_transfer_updates_its_accounts_rows() {
    let pg = Postgres::start();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--test-clock", "--read-model", &url]);
    let mut c = server.client();
    assert_eq!(post(&mut c, "/v1/ledger/accounts", &json!([account(51, 1, &[]), account(52, 1, &[])])).status, 200);
    for (id, timeout) in [(300u128, 5), (301, 3_600)] {
        let mut pending = transfer(id, 51, 52, 40);
        pending["flags"] = json!(["pending"]);
        pending["timeout"] = json!(timeout);
        let r = post(&mut c, "/v1/ledger/transfers", &pending);
        assert_eq!(r.status, 201, "{}", r.json());
    }
    caught_up(&mut c, 2);
    let pending_of = |id: u32| {
        query(&url, &format!("SELECT debits_pending::TEXT, credits_pending::TEXT FROM ledger_accounts WHERE id = {id}"))
    };
    assert_eq!(pending_of(51)[0], ["80", "0"]);
    assert_eq!(pending_of(52)[0], ["0", "80"]);

    // Restarted, so the feed must find transfer 300 again in PostgreSQL; then its time is up.
    server.terminate();
    let server = Server::start_with(&data, &["--test-clock", "--read-model", &url]);
    let mut c = server.client();
    advance(&mut c, 10);
    let deadline = Instant::now() + CATCH_UP;
    while get(&mut c, "/v1/ledger/transfers/300").json()["pending_status"] != "expired" {
        assert!(Instant::now() < deadline, "transfer 300 never expired");
        std::thread::sleep(Duration::from_millis(10));
    }
    while pending_of(51)[0] != ["40", "0"] || pending_of(52)[0] != ["0", "40"] {
        assert!(Instant::now() < deadline, "the accounts' rows kept the expired amount: {:?}", pending_of(51));
        std::thread::sleep(Duration::from_millis(10));
    }
    let account = get(&mut c, "/v1/ledger/accounts/51").json();
    assert_eq!(account["debits_pending"], "40");
    server.terminate();
}
