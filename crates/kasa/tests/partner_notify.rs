//! Kasa's `notifyPayment` to a partner's endpoint, end to end: a receiver in the test checks
//! Kasa's signature with the key the partner object shows, answers `F`, 500 and garbage
//! before `S`; each payment is notified, retried until `S` (by the test clock's back-off), in
//! order per partner; a `kill -9` before the partner answered `S` loses nothing (the
//! notification comes after the restart); `kasa verify` at the end. The receiver signs its
//! answers as the partner; an `S` it did not sign for the notification is not taken.

mod support;

use kasa::client::Client;
use kasa_server::partner_signature::{self as sig, encode_base64, Signer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// How the receiver answers.
const ANSWER_S: u8 = 0;
const ANSWER_F: u8 = 1;
const ANSWER_500: u8 = 2;
const ANSWER_GARBAGE: u8 = 3;
/// `S` without the partner's signature.
const ANSWER_UNSIGNED_S: u8 = 4;
/// A signed `S` that names another payment (an answer played back).
const ANSWER_OTHER_REQUEST_S: u8 = 5;

/// One notification the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Received {
    request: support::receiver::Request,
    answered: u8,
}

impl std::ops::Deref for Received {
    type Target = support::receiver::Request;

    fn deref(&self) -> &support::receiver::Request {
        &self.request
    }
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn request_id(&self) -> String {
        self.json()["paymentRequestId"].as_str().unwrap().to_string()
    }
}

/// A partner's endpoint on 127.0.0.1 that answers as `answer` says, signed with the partner's
/// key 1 of `seed` (see [`register`]) unless told otherwise.
struct Receiver {
    port: u16,
    answer: Arc<AtomicU8>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(seed: u8) -> Receiver {
        let answer = Arc::new(AtomicU8::new(ANSWER_S));
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (a, g) = (answer.clone(), got.clone());
        let signer = Signer::from_seed(&[seed; 32]);
        let port = support::receiver::listen_with_headers(move |request| {
            let answered = a.load(Ordering::SeqCst);
            let received = Received { request, answered };
            let named = if answered == ANSWER_OTHER_REQUEST_S { "r-other".to_string() } else { received.request_id() };
            let result = |status: &str, code: &str| {
                json!({"result": {"resultStatus": status, "resultCode": code, "resultMessage": "ok"}, "paymentRequestId": named})
                    .to_string()
            };
            let (status, body) = match answered {
                ANSWER_S | ANSWER_UNSIGNED_S | ANSWER_OTHER_REQUEST_S => (200, result("S", "SUCCESS")),
                ANSWER_F => (200, result("F", "PROCESS_FAIL")),
                ANSWER_500 => (500, result("S", "SUCCESS")),
                _ => (200, "S".to_string()),
            };
            // Signed at Kasa's time (its clock is a test clock, ahead of this one).
            let headers = if answered == ANSWER_UNSIGNED_S {
                Vec::new()
            } else {
                let (r, time) = (&received.request, received.header("request-time"));
                partner_answer_headers((&signer, 1), &r.path, r.header("client-id"), time, &body)
            };
            g.lock().unwrap().push(received);
            (status, headers, body)
        });
        Receiver { port, answer, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn wait(&self, what: &str, ready: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.received();
            if ready(&got) {
                return got;
            }
            assert!(started.elapsed() < BACKGROUND_WAIT, "waiting for {what}: got {got:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A partner settling in won with an endpoint at the receiver, and its key.
fn register(c: &mut Client, name: &str, endpoint: Option<&str>, seed: u8) -> (String, Signer) {
    let body = json!({
        "name": name, "home_currency": "KRW", "settlement_currency": "KRW", "fee_bps": 100,
        "endpoint": endpoint,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110987654321", "holder_name": "Partner Ltd"}
    });
    let r = post(c, "/v1/admin/partners", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let signer = Signer::from_seed(&[seed; 32]);
    let r =
        post(c, &format!("/v1/admin/partners/{id}/keys"), &json!({"public_key": encode_base64(&signer.public_key())}));
    assert_eq!(r.status, 201, "{}", r.json());
    (id, signer)
}

/// A store's code payload.
fn store_code(c: &mut Client) -> String {
    let merchant = onboard(c, "120-81-47521");
    let r = post(c, &format!("/v1/admin/merchants/{merchant}/stores"), &json!({"name": "강남점"}));
    assert_eq!(r.status, 201, "{}", r.json());
    let store = r.json()["id"].as_str().unwrap().to_string();
    let key = api_key(c, &merchant, &["payments:read"]);
    let qr = call(c, "GET", &format!("/v1/stores/{store}/qr"), Some(&key), None).json();
    qr["payload"].as_str().unwrap().to_string()
}

/// The partner pays `won` at the store; its request is timed by the server's clock.
fn pay(c: &mut Client, partner: &(String, Signer), clock_ahead: u64, request: &str, code: &str) {
    let body = json!({
        "paymentRequestId": request,
        "paymentAmount": {"currency": "KRW", "value": "12000"},
        "order": {"orderDescription": "Coffee"},
        "customerId": "2088101122334455",
        "codeValue": code,
        "env": {"terminalType": "APP"},
    });
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let time = kasa_server::json::Rfc3339(nanos + clock_ahead * 1_000_000_000).to_string();
    let body = serde_json::to_vec(&body).unwrap();
    let r = c.send_signed("/v1/partner/payments/pay", &partner.0, (&partner.1, 1), &time, &body).unwrap();
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["result"]["resultStatus"], "S", "{}", r.json());
}

/// Checks a notification: the path, the headers and Kasa's signature over Alipay+'s layout.
#[track_caller]
fn assert_signed(r: &Received, kasa_key: &[u8; 32], client_id: &str) {
    assert_eq!(r.path, "/partner/payments/notifyPayment");
    assert_eq!(r.header("client-id"), client_id);
    let header = sig::parse_header(r.header("signature")).expect("a signature header");
    assert_eq!(header.key_version, 1);
    let message = sig::message("POST", &r.path, client_id, r.header("request-time"), &r.body);
    assert!(sig::verify(kasa_key, &message, &header.signature), "Kasa's signature verifies");
    let mut tampered = r.body.to_vec();
    tampered.push(b' ');
    let message = sig::message("POST", &r.path, client_id, r.header("request-time"), &tampered);
    assert!(!sig::verify(kasa_key, &message, &header.signature), "a changed body does not");
    let body = r.json();
    assert_eq!(body["notifyType"], "PAYMENT_RESULT");
    assert_eq!(body["result"]["resultStatus"], "S");
    assert_eq!(body["paymentAmount"], json!({"currency": "KRW", "value": "12000"}));
    assert!(body["paymentId"].as_str().unwrap().starts_with("ppay_"));
    assert!(body["settlementAmount"]["value"].is_string());
    assert!(body["paymentTime"].is_string());
}

/// The paymentRequestIds in the order they were notified, repeats folded.
fn order(got: &[Received]) -> Vec<String> {
    let mut ids: Vec<String> = got.iter().map(Received::request_id).collect();
    ids.dedup();
    ids
}

/// A server on a test clock with a store, its code, a receiver, and partner `alipay_plus` (key
/// seed 1) with its endpoint at the receiver.
fn start() -> (tempfile::TempDir, Server, Client, String, Receiver, (String, Signer)) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let receiver = Receiver::start(1);
    let code = store_code(&mut c);
    let endpoint = format!("http://127.0.0.1:{}/partner", receiver.port);
    let partner = register(&mut c, "alipay_plus", Some(&endpoint), 1);
    (dir, server, c, code, receiver, partner)
}

#[test]
fn payments_are_notified_signed_in_order_until_s_and_after_a_kill_9() {
    let (_dir, server, mut c, code, receiver, partner) = start();
    // A partner without an endpoint pays too: it is skipped, and holds up nothing.
    let silent = register(&mut c, "silent", None, 2);
    let p = get(&mut c, &format!("/v1/admin/partners/{}", partner.0)).json();
    let kasa_key: [u8; 32] = sig::decode_base64(p["kasa_public_key"].as_str().unwrap()).unwrap().try_into().unwrap();
    let mut clock_ahead = 0;

    // Answered S at once: one notification each, in order.
    pay(&mut c, &silent, clock_ahead, "silent-1", &code);
    pay(&mut c, &partner, clock_ahead, "r-1", &code);
    let got = receiver.wait("r-1", |g| !g.is_empty());
    assert_eq!(order(&got), ["r-1"]);
    assert_signed(&got[0], &kasa_key, &partner.0);

    // F, then 500, then garbage: r-2 is retried (back-off by the test clock), r-3 waits.
    let mut answers = [ANSWER_F, ANSWER_500, ANSWER_GARBAGE].into_iter();
    receiver.answer.store(answers.next().unwrap(), Ordering::SeqCst);
    pay(&mut c, &partner, clock_ahead, "r-2", &code);
    pay(&mut c, &partner, clock_ahead, "r-3", &code);
    let mut seen = 1;
    for next in answers.chain([ANSWER_S]) {
        let got = receiver.wait("a retry", |g| g.len() > seen);
        seen = got.len();
        assert_eq!(got.last().unwrap().request_id(), "r-2", "the head is retried: {:?}", order(&got));
        receiver.answer.store(next, Ordering::SeqCst);
        // Past the longest back-off (10 minutes).
        advance(&mut c, 601);
        clock_ahead += 601;
    }
    let got = receiver.wait("r-3", |g| g.iter().any(|r| r.request_id() == "r-3" && r.answered == ANSWER_S));
    assert_eq!(order(&got), ["r-1", "r-2", "r-3"], "in order, each until S");
    assert!(got.iter().filter(|r| r.request_id() == "r-2").count() >= 4, "F, 500, garbage, then S");
    for r in &got {
        assert_signed(r, &kasa_key, &partner.0);
    }

    // Not answered S when the server dies: after the restart it is notified until S.
    receiver.answer.store(ANSWER_F, Ordering::SeqCst);
    pay(&mut c, &partner, clock_ahead, "r-4", &code);
    receiver.wait("r-4", |g| g.iter().any(|r| r.request_id() == "r-4"));
    let data = server.data.clone();
    server.kill9();
    let before = receiver.received().len();
    receiver.answer.store(ANSWER_S, Ordering::SeqCst);
    let server = Server::start_with(&data, &["--test-clock"]);
    let got = receiver.wait("r-4 after the restart", |g| {
        g[before..].iter().any(|r| r.request_id() == "r-4" && r.answered == ANSWER_S)
    });
    // At least once: what was answered S before the kill may come again, never out of order.
    let after: Vec<String> = order(&got[before..]);
    assert_eq!(after.last().map(String::as_str), Some("r-4"), "{after:?}");
    assert!(got.iter().all(|r| r.request_id() != "silent-1"));
    for r in &got[before..] {
        assert_signed(r, &kasa_key, &partner.0);
    }
    stop_and_verify(server);
}

/// Regression: Kasa took any `S` from the partner's endpoint as the partner's, so whoever could
/// answer in its place (a man in the middle, a misrouted name) could stop its notifications.
/// An unsigned `S`, or a signed `S` that names another payment, is not delivered: the head is
/// sent again (by the back-off), and the next waits behind it.
#[test]
fn an_s_the_partner_did_not_sign_for_the_notification_is_not_taken() {
    let (_dir, server, mut c, code, receiver, partner) = start();
    receiver.answer.store(ANSWER_UNSIGNED_S, Ordering::SeqCst);
    pay(&mut c, &partner, 0, "r-1", &code);
    pay(&mut c, &partner, 0, "r-2", &code);
    let mut seen = 0;
    for next in [ANSWER_OTHER_REQUEST_S, ANSWER_S] {
        let got = receiver.wait("a retry", |g| g.len() > seen);
        seen = got.len();
        assert_eq!(order(&got), ["r-1"], "r-1 is the head until a signed S for it");
        receiver.answer.store(next, Ordering::SeqCst);
        advance(&mut c, 601);
    }
    let got = receiver.wait("r-2", |g| g.iter().any(|r| r.request_id() == "r-2" && r.answered == ANSWER_S));
    assert_eq!(order(&got), ["r-1", "r-2"]);
    // Each answer at least once (a slow test may see a back-off's retry before it changes it).
    let mut answers: Vec<u8> = got.iter().filter(|r| r.request_id() == "r-1").map(|r| r.answered).collect();
    answers.dedup();
    assert_eq!(answers, [ANSWER_UNSIGNED_S, ANSWER_OTHER_REQUEST_S, ANSWER_S], "sent until a signed S for it");
    stop_and_verify(server);
}
