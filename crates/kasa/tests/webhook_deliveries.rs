//! Webhook deliveries end to end, to a receiver in the test: signed events in order, retried
//! while the receiver fails, delivered after a restart (at least once), an endpoint disabled
//! after 3 days of failures (by the test clock) and enabled again by a rotation, the
//! merchant's event list, and a redelivery on demand.

mod support;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// One request the receiver got.
type Received = support::receiver::Request;

trait Json {
    fn json(&self) -> Value;
}

impl Json for Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on 127.0.0.1 that answers every request with `status`.
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let status = Arc::new(AtomicU16::new(200));
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (s, g) = (status.clone(), got.clone());
        let port = support::receiver::listen(move |r| {
            g.lock().unwrap().push(r);
            (s.load(Ordering::SeqCst), "ok".into())
        });
        Receiver { port, status, got }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/kasa", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until the receiver got what `ready` wants.
    fn wait(&self, ready: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.received();
            if ready(&got) {
                return got;
            }
            assert!(started.elapsed() < BACKGROUND_WAIT, "the receiver got {} requests: {got:?}", got.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Types of the events the receiver accepted or was sent, in order.
fn types(got: &[Received]) -> Vec<String> {
    got.iter().map(|r| r.json()["type"].as_str().unwrap().to_string()).collect()
}

fn endpoint(c: &mut kasa::client::Client, key: &str) -> Value {
    call(c, "GET", "/v1/webhook-endpoints", Some(key), None).json()["data"][0].clone()
}

#[test]
fn deliveries_are_signed_in_order_retried_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let receiver = Receiver::start();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(
        &mut c,
        &shop,
        &["payments:read", "payments:write", "refunds:write", "webhooks:manage", "payouts:read"],
    );
    let events = ["payment.approved", "payment.succeeded", "payment.canceled", "refund.succeeded"];
    let r = call(
        &mut c,
        "POST",
        "/v1/webhook-endpoints",
        Some(&key),
        Some(&json!({"url": receiver.url(), "events": events})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let secret = r.json()["secret"].as_str().unwrap().to_string();
    let alice = sign_up(&server, "010-7703-0001");
    credit(&mut c, &alice, 100_000);
    let pay = |c: &mut kasa::client::Client, order: &str| -> String {
        let body = json!({"amount": "5000", "currency": "KRW", "order_id": order, "item_name": "커피"});
        let p = call(c, "POST", "/v1/payments", Some(&key), Some(&body)).json();
        let id = p["id"].as_str().unwrap().to_string();
        let token = p["approval_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
        let r = alice.post(c, &format!("/v1/me/payments/{id}/approve"), &json!({"token": token}));
        assert_eq!(r.status, 200, "{}", r.json());
        id
    };

    // Signed, in order, each once while the receiver accepts.
    let p1 = pay(&mut c, "o-1");
    let r = call(
        &mut c,
        "POST",
        &format!("/v1/payments/{p1}/refunds"),
        Some(&key),
        Some(&json!({"amount": "1000", "reason": "x"})),
    );
    assert_eq!(r.status, 201);
    let got = receiver.wait(|g| g.len() >= 3);
    assert_eq!(types(&got), ["payment.approved", "payment.succeeded", "refund.succeeded"]);
    let mut verifier = kasa_server::webhook_signature::Verifier::new(vec![secret.as_bytes().to_vec()]);
    for r in &got {
        let header = r.header("kasa-signature");
        let t: u64 = header.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
        verifier.verify(header, &r.body, t).unwrap_or_else(|e| panic!("{e}: {header}"));
        assert!(r.header("kasa-event-id").starts_with("evt_"));
        assert_eq!(r.json()["id"].as_str(), Some(r.header("kasa-event-id")));
    }
    assert_eq!(got[1].json()["data"]["id"].as_str(), Some(p1.as_str()));
    assert_eq!(got[2].json()["data"]["object"], "refund");
    let tampered = got[0].body.iter().map(|b| if *b == b'5' { b'6' } else { *b }).collect::<Vec<u8>>();
    let header = got[0].header("kasa-signature");
    let t: u64 = header.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
    assert!(verifier.verify(header, &tampered, t).is_err(), "a changed body does not verify");
    assert!(verifier.verify(header, &got[0].body, t).is_err(), "a replay does not verify");

    // The receiver fails: the head is retried (with back-off), nothing after it overtakes it.
    receiver.status.store(500, Ordering::SeqCst);
    let p2 = pay(&mut c, "o-2");
    receiver.wait(|g| g.len() >= 5);
    let e = endpoint(&mut c, &key);
    let started = Instant::now();
    while endpoint(&mut c, &key)["failing_since"].is_null() {
        assert!(started.elapsed() < BACKGROUND_WAIT, "the failure was not recorded: {e}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let failing = receiver.received();
    assert!(failing[3..].iter().all(|r| r.json()["type"] == "payment.approved"), "{:?}", types(&failing));
    assert!(failing.last().unwrap().header("kasa-delivery-attempt").parse::<u32>().unwrap() >= 2);
    // A restart while it fails: the deliveries go on from the recorded position.
    let server = {
        let data = server.data.clone();
        server.terminate();
        Server::start_with(&data, &["--test-clock"])
    };
    let mut c = server.client();
    receiver.status.store(200, Ordering::SeqCst);
    let got = receiver.wait(|g| types(g).iter().filter(|t| *t == "payment.succeeded").count() >= 2);
    let accepted_order: Vec<String> =
        got.iter().skip(3).map(|r| r.json()["type"].as_str().unwrap().to_string()).collect();
    let first_succeeded = accepted_order.iter().position(|t| t == "payment.succeeded").unwrap();
    assert!(accepted_order[..first_succeeded].iter().all(|t| t == "payment.approved"), "in order: {accepted_order:?}");
    assert_eq!(got.last().unwrap().json()["data"]["id"].as_str(), Some(p2.as_str()));
    let started = Instant::now();
    while !endpoint(&mut c, &key)["failing_since"].is_null() {
        assert!(started.elapsed() < BACKGROUND_WAIT, "the recovery was not recorded");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Failing for 3 days disables the endpoint; a rotation enables it again.
    receiver.status.store(503, Ordering::SeqCst);
    let _p3 = pay(&mut c, "o-3");
    let started = Instant::now();
    while endpoint(&mut c, &key)["failing_since"].is_null() {
        assert!(started.elapsed() < BACKGROUND_WAIT, "the failure was not recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    advance(&mut c, 3 * 24 * 3600 + 60);
    let started = Instant::now();
    while endpoint(&mut c, &key)["status"] != "disabled" {
        assert!(started.elapsed() < BACKGROUND_WAIT, "not disabled: {}", endpoint(&mut c, &key));
        std::thread::sleep(Duration::from_millis(50));
    }
    let disabled = events_when(&mut c, |e| e.iter().any(|e| e["type"] == "webhook_endpoint.disabled"));
    assert!(!disabled.is_empty());

    // The merchant's events list what happened, newest first; a redelivery sends one again.
    // (The 3 days also paid the merchant out: payout.paid is among them.)
    let listed = call(&mut c, "GET", "/v1/events?limit=2", Some(&key), None).json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    let cursor = listed["next_cursor"].as_str().unwrap().to_string();
    let more = call(&mut c, "GET", &format!("/v1/events?limit=100&cursor={cursor}"), Some(&key), None).json();
    let all: Vec<Value> =
        listed["data"].as_array().unwrap().iter().chain(more["data"].as_array().unwrap()).cloned().collect();
    let seqs: Vec<u64> = all.iter().map(|e| e["id"].as_str().unwrap()[4..].parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
    let all_types: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(all_types.iter().filter(|t| **t == "payment.succeeded").count(), 3, "{all_types:?}");
    assert!(all_types.contains(&"payout.paid"), "{all_types:?}");
    // A key without payouts:read sees no payout events.
    let reader = api_key(&mut c, &shop, &["payments:read"]);
    let seen = call(&mut c, "GET", "/v1/events?limit=100", Some(&reader), None).json();
    assert!(seen["data"].as_array().unwrap().iter().all(|e| !e["type"].as_str().unwrap().starts_with("payout.")));
    assert!(!seen["data"].as_array().unwrap().is_empty());
    let newest_payment = all.iter().find(|e| e["type"] == "payment.succeeded").unwrap();
    let last_id = newest_payment["id"].as_str().unwrap().to_string();
    let none = call(&mut c, "POST", &format!("/v1/events/{last_id}/redeliver"), Some(&key), None).json();
    assert_eq!(none["deliveries"], json!([]), "a disabled endpoint gets nothing");
    let rotated = call(&mut c, "POST", "/v1/webhook-endpoints/we_1/rotate-secret", Some(&key), None);
    assert_eq!(rotated.status, 200, "{}", rotated.json());
    assert_eq!(rotated.json()["status"], "enabled");
    receiver.status.store(200, Ordering::SeqCst);
    let before = receiver.received().len();
    let again = call(&mut c, "POST", &format!("/v1/events/{last_id}/redeliver"), Some(&key), None).json();
    assert_eq!(again["deliveries"][0]["status"], "delivered", "{again}");
    let got = receiver.wait(|g| g.len() > before);
    assert_eq!(got.last().unwrap().json()["id"].as_str(), Some(last_id.as_str()));
    // Another merchant cannot see or redeliver these.
    let other = onboard(&mut c, "220-81-62517");
    let others = api_key(&mut c, &other, &["payments:read", "webhooks:manage"]);
    assert_problem(
        &call(&mut c, "POST", &format!("/v1/events/{last_id}/redeliver"), Some(&others), None),
        404,
        "not_found",
    );
    assert!(call(&mut c, "GET", "/v1/events", Some(&others), None).json()["data"].as_array().unwrap().is_empty());
    stop_and_verify(server);
}
