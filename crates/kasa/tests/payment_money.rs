//! A payment's money over HTTP: a wallet user approves from the merchant's link (PIN above
//! the PIN-free budget, keyed retries), the merchant captures (partly), cancels or refunds;
//! the user's transaction list shows payments and refunds with the merchant's name; every
//! refusal moves nothing; and `kill -9` during payment traffic loses and repeats nothing.

mod support;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::*;

/// Creates a payment; its id and its link's token.
fn create(c: &mut kasa::client::Client, key: &str, order: &str, amount: u64, capture: &str) -> (String, String) {
    let body = json!({"amount": amount.to_string(), "currency": "KRW", "order_id": order, "item_name": "아메리카노 2잔",
        "capture_method": capture});
    let r = call(c, "POST", "/v1/payments", Some(key), Some(&body));
    assert_eq!(r.status, 201, "{}", r.json());
    let p = r.json();
    let token = p["approval_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
    (p["id"].as_str().unwrap().to_string(), token)
}

fn approve(
    c: &mut kasa::client::Client,
    user: &User,
    id: &str,
    token: &str,
    pin: Option<&str>,
) -> kasa::client::Response {
    let mut body = json!({"token": token});
    if let Some(pin) = pin {
        body["pin"] = json!(pin);
    }
    user.post(c, &format!("/v1/me/payments/{id}/approve"), &body)
}

/// A request that gives `None` once the server is gone (for workers that outlive a kill).
fn try_call(
    c: &mut kasa::client::Client,
    path: &str,
    token: &str,
    idempotency_key: Option<&str>,
    body: &Value,
) -> Option<kasa::client::Response> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    if let Some(k) = idempotency_key {
        headers.push(("Idempotency-Key", k));
    }
    c.request("POST", path, &headers, body.to_string().as_bytes()).ok()
}

const ALL: &[&str] = &["payments:read", "payments:write", "refunds:write"];

#[test]
fn a_user_approves_and_the_merchant_captures_cancels_and_refunds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, ALL);
    let write_only = api_key(&mut c, &shop, &["payments:write"]);
    let alice = sign_up(&server, "010-7700-0001");
    let bob = sign_up(&server, "010-7700-0002");
    credit(&mut c, &alice, 200_000);
    credit(&mut c, &bob, 1_000);

    // Automatic capture: paid at approval, the fee taken.
    let (p1, t1) = create(&mut c, &key, "o-1", 12_000, "automatic");
    assert_problem(&approve(&mut c, &alice, &p1, &"0".repeat(32), None), 404, "not_found");
    let r = alice.keyed(&mut c, &format!("/v1/me/payments/{p1}/approve"), "approve-1", &json!({"token": t1}));
    assert_eq!(r.status, 200, "{}", r.json());
    let retry = alice.keyed(&mut c, &format!("/v1/me/payments/{p1}/approve"), "approve-1", &json!({"token": t1}));
    assert_eq!((retry.status, retry.header("idempotent-replayed")), (200, Some("true")));
    assert_eq!(alice.balance(&mut c), (188_000, 188_000), "paid once");
    let paid = call(&mut c, "GET", &format!("/v1/payments/{p1}"), Some(&key), None).json();
    assert_eq!(
        (paid["status"].as_str(), paid["amount_captured"].as_str(), paid["fee"].as_str(), paid["net"].as_str()),
        (Some("succeeded"), Some("12000"), Some("300"), Some("11700"))
    );
    // Answered once; someone else gets invalid_state, and with a wrong token nothing at all.
    assert_problem(&approve(&mut c, &bob, &p1, &t1, None), 409, "invalid_state");
    assert_problem(&bob.get(&mut c, &format!("/v1/me/payments/{p1}?token={t1}")), 404, "not_found");
    assert_eq!(alice.get(&mut c, &format!("/v1/me/payments/{p1}")).json()["status"], "succeeded", "the payer sees it");

    // Manual capture above the PIN-free budget: the PIN is asked for, a wrong one counted.
    let (p2, t2) = create(&mut c, &key, "o-2", 80_000, "manual");
    assert_problem(&approve(&mut c, &alice, &p2, &t2, None), 403, "pin_required");
    assert_problem(&approve(&mut c, &alice, &p2, &t2, Some("000000")), 403, "wrong_pin");
    assert_problem(&approve(&mut c, &bob, &p2, &t2, Some(PIN)), 422, "insufficient_funds");
    let approved = approve(&mut c, &alice, &p2, &t2, Some(PIN));
    assert_eq!((approved.status, approved.json()["status"].as_str()), (200, Some("requires_capture")));
    assert_eq!(alice.balance(&mut c), (188_000, 108_000), "reserved");
    let capture = |c: &mut kasa::client::Client, k: &str, body: Option<&Value>| {
        call(c, "POST", &format!("/v1/payments/{p2}/capture"), Some(k), body)
    };
    assert_problem(&capture(&mut c, &key, Some(&json!({"amount": "80001"}))), 422, "amount_too_large");
    assert_problem(&capture(&mut c, &key, Some(&json!({"amount": "-1"}))), 422, "invalid_field");
    let captured = capture(&mut c, &key, Some(&json!({"amount": "50000"})));
    assert_eq!(captured.status, 200, "{}", captured.json());
    assert_eq!(
        (captured.json()["amount_captured"].as_str(), captured.json()["fee"].as_str()),
        (Some("50000"), Some("1250"))
    );
    assert_eq!(alice.balance(&mut c), (138_000, 138_000), "the rest released");
    assert_problem(&capture(&mut c, &key, None), 409, "invalid_state");

    // Cancel after approval: the reservation goes back.
    let (p3, t3) = create(&mut c, &key, "o-3", 30_000, "manual");
    assert_eq!(approve(&mut c, &alice, &p3, &t3, Some(PIN)).status, 200);
    assert_eq!(alice.balance(&mut c), (138_000, 108_000));
    let canceled = call(&mut c, "POST", &format!("/v1/payments/{p3}/cancel"), Some(&key), None).json();
    assert_eq!((canceled["status"].as_str(), canceled["cancel_reason"].as_str()), (Some("canceled"), Some("merchant")));
    assert_eq!(alice.balance(&mut c), (138_000, 138_000));

    // Decline: nothing paid.
    let (p4, t4) = create(&mut c, &key, "o-4", 1_000, "automatic");
    let declined = bob.post(&mut c, &format!("/v1/me/payments/{p4}/decline"), &json!({"token": t4})).json();
    assert_eq!((declined["status"].as_str(), declined["cancel_reason"].as_str()), (Some("canceled"), Some("declined")));
    assert_eq!(bob.balance(&mut c), (1_000, 1_000));

    // Refunds: partial, several, never past the capture; the scope is refunds:write.
    let refund = |c: &mut kasa::client::Client, k: &str, amount: &str| {
        call(
            c,
            "POST",
            &format!("/v1/payments/{p2}/refunds"),
            Some(k),
            Some(&json!({"amount": amount, "reason": "품절"})),
        )
    };
    assert_problem(&refund(&mut c, &write_only, "1"), 403, "insufficient_scope");
    let r1 = refund(&mut c, &key, "20000");
    assert_eq!(r1.status, 201, "{}", r1.json());
    assert_eq!((r1.json()["id"].as_str(), r1.json()["fee_returned"].as_str()), (Some("rfd_1"), Some("500")));
    assert_problem(&refund(&mut c, &key, "30001"), 422, "amount_too_large");
    assert_eq!(refund(&mut c, &key, "30000").status, 201);
    assert_problem(&refund(&mut c, &key, "1"), 422, "amount_too_large");
    assert_problem(
        &call(
            &mut c,
            "POST",
            &format!("/v1/payments/{p3}/refunds"),
            Some(&key),
            Some(&json!({"amount": "1", "reason": "x"})),
        ),
        409,
        "invalid_state",
    );
    let refunds = call(&mut c, "GET", &format!("/v1/payments/{p2}/refunds"), Some(&key), None).json();
    let ids: Vec<&str> = refunds["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["rfd_1", "rfd_2"]);
    assert_eq!(alice.balance(&mut c), (188_000, 188_000));
    let p = call(&mut c, "GET", &format!("/v1/payments/{p2}"), Some(&key), None).json();
    assert_eq!(
        (p["amount_refunded"].as_str(), p["fee_refunded"].as_str(), p["net"].as_str()),
        (Some("50000"), Some("1250"), Some("0"))
    );

    // The user's list: payments and refunds with the merchant's name.
    let list = alice.get(&mut c, "/v1/me/transactions?limit=10").json();
    let rows: Vec<(String, String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["type"].as_str().unwrap().into(), e["id"].as_str().unwrap().into(), e["status"].as_str().unwrap().into())
        })
        .collect();
    let expect = |t: &str, id: &str, st: &str| (t.to_string(), id.to_string(), st.to_string());
    assert_eq!(
        rows[..5],
        [
            expect("refund", "rfd_2", "succeeded"),
            expect("refund", "rfd_1", "succeeded"),
            expect("payment", &p3, "canceled"),
            expect("payment", &p2, "succeeded"),
            expect("payment", &p1, "succeeded"),
        ]
    );
    let first = &list["data"][0];
    assert_eq!(
        (first["counterparty_name"].as_str(), first["counterparty_merchant_id"].as_str()),
        (Some("카사상점"), Some(shop.as_str()))
    );
    assert_eq!(list["data"][4]["memo"], "아메리카노 2잔");

    // The events of it all, for webhooks.
    let events = events_when(&mut c, |e| e.iter().filter(|e| e["type"] == "refund.succeeded").count() == 2);
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| t.starts_with("payment.") || t.starts_with("refund."))
        .collect();
    assert!(types.contains(&"payment.approved") && types.contains(&"payment.succeeded"), "{types:?}");
    stop_and_verify(server);
}

#[test]
fn kill_9_during_payment_traffic_pays_nothing_twice_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, ALL);
    let users: Vec<User> = (0..4).map(|i| sign_up(&server, &format!("010-7701-{i:04}"))).collect();
    for u in &users {
        credit(&mut c, u, 400_000);
    }
    // Each worker: create, approve (keyed), capture 90 of every other (manual), refund 1 won of
    // every third; what was acknowledged is recorded as (payment id, approved, refunded).
    let acknowledged: Arc<Mutex<Vec<(String, bool, bool)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (w, user) in users.iter().cloned().enumerate() {
        let (mut c, key, acknowledged, stop) = (server.client(), key.clone(), acknowledged.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                // Every other payment is captured by the merchant (manual), the rest at approval.
                let manual = i % 2 == 1;
                let capture_method = if manual { "manual" } else { "automatic" };
                let body = json!({"amount": "100", "currency": "KRW", "order_id": format!("w{w}-{i}"), "item_name": "물",
                    "capture_method": capture_method});
                let Some(r) = try_call(&mut c, "/v1/payments", &key, None, &body) else { return };
                if r.status != 201 {
                    return;
                }
                let p = r.json();
                let id = p["id"].as_str().unwrap().to_string();
                let token = p["approval_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
                let path = format!("/v1/me/payments/{id}/approve");
                let idem = format!("a-{id}");
                let Some(r) = try_call(&mut c, &path, &user.token, Some(&idem), &json!({"token": token})) else {
                    return;
                };
                if r.status != 200 {
                    return;
                }
                if manual {
                    let path = format!("/v1/payments/{id}/capture");
                    let Some(r) = try_call(&mut c, &path, &key, None, &json!({"amount": "90"})) else { return };
                    if r.status != 200 {
                        return;
                    }
                }
                let mut refunded = false;
                if i % 3 == 0 {
                    let body = json!({"amount": "1", "reason": "test"});
                    let Some(r) = try_call(&mut c, &format!("/v1/payments/{id}/refunds"), &key, None, &body) else {
                        acknowledged.lock().unwrap().push((id, true, false));
                        return;
                    };
                    refunded = r.status == 201;
                }
                acknowledged.lock().unwrap().push((id, true, refunded));
            }
        }));
    }
    let acked = kill_9_under_load(server, &acknowledged, 60, &stop, workers);
    let server = Server::start(dir.path());
    let mut c = server.client();
    let mut paid_by_users = 0u64;
    for (id, _, refunded) in &acked {
        let p = call(&mut c, "GET", &format!("/v1/payments/{id}"), Some(&key), None).json();
        assert_eq!(p["status"], "succeeded", "an acknowledged approval or capture was lost: {p}");
        if *refunded {
            assert_eq!(p["amount_refunded"], "1", "an acknowledged refund was lost: {p}");
        }
    }
    // Nothing paid twice: every user's spend equals the captures less refunds of their payments.
    let all = call(&mut c, "GET", "/v1/payments?limit=100&status=succeeded", Some(&key), None).json();
    assert!(all["data"].as_array().unwrap().len() >= acked.len().min(100));
    for u in &users {
        let (balance, _) = u.balance(&mut c);
        paid_by_users += 400_000 - balance;
    }
    let captured: u64 =
        all_payments(&mut c, &key).iter().map(|p| number(&p["amount_captured"]) - number(&p["amount_refunded"])).sum();
    assert_eq!(paid_by_users, captured, "what users paid is what merchants captured, less refunds");
    stop_and_verify(server);
}

/// Polls the merchant's payouts until `ready` holds of them.
fn payouts_when(c: &mut kasa::client::Client, key: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let page = call(c, "GET", "/v1/payouts", Some(key), None).json();
        let data = page["data"].as_array().cloned().unwrap_or_default();
        if ready(&data) {
            return data;
        }
        assert!(started.elapsed() < BACKGROUND_WAIT, "payouts never got there: {data:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn each_day_the_balance_is_paid_out_once_across_a_kill_9_with_its_items() {
    let dir = tempfile::tempdir().unwrap();
    // A slow bank, so that the kill lands while the payout is at the bank.
    let slow = ["--test-clock", "--sandbox-bank-refuse-repeats", "--sandbox-bank-latency-ms", "1500"];
    let server = Server::start_with(dir.path(), &slow);
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, &["payments:read", "payments:write", "refunds:write", "payouts:read"]);
    let no_payouts = api_key(&mut c, &shop, &["payments:read"]);
    let alice = sign_up(&server, "010-7702-0001");
    credit(&mut c, &alice, 100_000);
    let (p1, t1) = create(&mut c, &key, "o-1", 10_000, "automatic");
    assert_eq!(approve(&mut c, &alice, &p1, &t1, None).status, 200);
    let r = call(
        &mut c,
        "POST",
        &format!("/v1/payments/{p1}/refunds"),
        Some(&key),
        Some(&json!({"amount": "1000", "reason": "x"})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    assert!(payouts_when(&mut c, &key, |_| true).is_empty(), "nothing before the day turns");
    assert_problem(&call(&mut c, "GET", "/v1/payouts", Some(&no_payouts), None), 403, "insufficient_scope");
    // The next KST day: the run makes the payout and the rail takes it to the bank; kill -9
    // while the bank is answering.
    advance(&mut c, 24 * 3600);
    let made = payouts_when(&mut c, &key, |p| !p.is_empty());
    assert_eq!(
        (made[0]["id"].as_str(), made[0]["amount"].as_str()),
        (Some("po_1"), Some("8775")),
        "10,000 - 250 - 1,000 + 25"
    );
    server.kill9();
    let server = Server::start_with(dir.path(), &slow);
    let mut c = server.client();
    let paid = payouts_when(&mut c, &key, |p| p.first().is_some_and(|p| p["status"] == "paid"));
    assert_eq!(paid.len(), 1);
    let bank = std::fs::read_to_string(dir.path().join("sandbox-bank.log")).unwrap();
    assert_eq!(bank.lines().filter(|l| l.starts_with("kasa-p-1 ")).count(), 1, "asked the bank once: {bank}");
    // What it pays for adds up to it.
    let r = call(&mut c, "GET", "/v1/payouts/po_1/items.csv", Some(&key), None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/csv")));
    let csv = String::from_utf8(r.body.clone()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "type,payment_id,refund_id,amount,currency,created_at");
    let kinds: Vec<&str> = lines[1..].iter().map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(kinds, ["capture", "fee", "refund", "fee_returned"], "{csv}");
    let sum: i64 = lines[1..].iter().map(|l| l.split(',').nth(3).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(sum, 8_775);
    // Operators see every merchant's; another merchant sees none of these.
    let all = get(&mut c, "/v1/admin/payouts").json();
    assert_eq!(all["data"][0]["id"], "po_1");
    let other = onboard(&mut c, "220-81-62517");
    let others = api_key(&mut c, &other, &["payouts:read"]);
    assert_problem(&call(&mut c, "GET", "/v1/payouts/po_1", Some(&others), None), 404, "not_found");
    assert_problem(&call(&mut c, "GET", "/v1/payouts/po_1/items.csv", Some(&others), None), 404, "not_found");
    // Nothing more is owed: the next day pays nothing.
    advance(&mut c, 24 * 3600);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(payouts_when(&mut c, &key, |_| true).len(), 1);
    let events = events_when(&mut c, |e| e.iter().any(|e| e["type"] == "payout.paid"));
    assert!(events.iter().any(|e| e["type"] == "payout.created" && e["data"]["payout_id"] == "po_1"));
    stop_and_verify(server);
}

#[test]
fn concurrent_creates_of_one_order_make_one_payment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, ALL);
    let statuses: Arc<Mutex<Vec<u16>>> = Arc::default();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (mut c, key, statuses) = (server.client(), key.clone(), statuses.clone());
            std::thread::spawn(move || {
                let body = json!({"amount": "1000", "currency": "KRW", "order_id": "race-1", "item_name": "물"});
                let r = try_call(&mut c, "/v1/payments", &key, None, &body).expect("an answer");
                statuses.lock().unwrap().push(r.status);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut statuses = statuses.lock().unwrap().clone();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    let listed = call(&mut c, "GET", "/v1/payments?order_id=race-1", Some(&key), None).json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    stop_and_verify(server);
}

#[test]
fn users_and_merchants_read_qr_payloads_and_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, &["payments:read"]);
    let user = sign_up(&server, "010-7704-0001");
    let payload = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";
    for token in [user.token.as_str(), key.as_str()] {
        let r = call(&mut c, "POST", "/v1/qr/decode", Some(token), Some(&json!({"payload": payload})));
        assert_eq!(r.status, 200, "{}", r.json());
        let d = r.json();
        assert_eq!(
            (d["valid"].as_bool(), d["currency"].as_str(), d["amount"].as_str()),
            (Some(true), Some("CNY"), Some("23.72"))
        );
        assert_eq!(d["fields"]["64"]["01"], "最佳运输");
    }
    let bad = payload.replace("6304A13A", "6304ABCD");
    let r = call(&mut c, "POST", "/v1/qr/decode", Some(&user.token), Some(&json!({"payload": bad})));
    assert_eq!(r.json(), json!({"valid": false, "reason": "bad_crc", "field": "63"}));
    assert_problem(
        &call(&mut c, "POST", "/v1/qr/decode", None, Some(&json!({"payload": payload}))),
        401,
        "unauthorized",
    );
    let huge = "0".repeat(70_000);
    assert_eq!(call(&mut c, "POST", "/v1/qr/decode", Some(&user.token), Some(&json!({"payload": huge}))).status, 413);
    stop_and_verify(server);
}
