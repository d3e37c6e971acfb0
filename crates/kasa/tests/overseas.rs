//! Kasa users paying at partners' merchants abroad, over HTTP against a partner played by the
//! test (a small HTTP server): the code is decoded and quoted in both currencies, the money is
//! reserved, and Kasa calls the partner from committed state. An answer `S` pays, `F` fails;
//! a lost answer is inquired by the partner's policy, then canceled, and failed only once the
//! cancel is confirmed; every step is in the payment's timeline. A refund from abroad comes
//! back at the payment's rate. `kill -9` during the inquiries resumes them. The partner signs
//! its answers; an answer it did not sign for the payment decides nothing.

mod support;

use kasa::client::Client;
use kasa_server::partner_signature::{encode_base64, Signer};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// EMVCo's sample code (scheme `emvco`): 23.72 yuan at BEST TRANSPORT, Beijing.
const QR: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

/// How the played partner answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pay {
    Succeed,
    Fail,
    /// Close the connection without an answer.
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Inquiry {
    NotFound,
    Success,
}

/// How the answers to `pay` are signed (the answers to the other calls are the partner's own).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Signing {
    /// With the partner's key 1, naming the call's `paymentRequestId`: the partner's answer.
    Partner,
    /// With the partner's key 2 (live or not, as the test made it).
    Key2,
    /// Without `Client-Id`, `Response-Time` and `Signature`.
    Unsigned,
    /// With a key the partner does not have, as its key 1.
    StrangersKey,
    /// With key 1, but naming another payment's `paymentRequestId` (an answer played back).
    OtherRequest,
}

/// The partner's key 1, its key 2 (which a test revokes), and a stranger's.
fn partner_key() -> Signer {
    Signer::from_seed(&[3; 32])
}

fn partner_key_2() -> Signer {
    Signer::from_seed(&[5; 32])
}

fn strangers_key() -> Signer {
    Signer::from_seed(&[9; 32])
}

struct Played {
    pay: Pay,
    inquiry: Inquiry,
    pay_signing: Signing,
    /// (path, body) of every call.
    calls: Vec<(String, Value)>,
}

impl Played {
    fn new(pay: Pay, inquiry: Inquiry) -> Arc<Mutex<Played>> {
        Arc::new(Mutex::new(Played { pay, inquiry, pay_signing: Signing::Partner, calls: Vec::new() }))
    }
}

/// Waits until the played partner got `pay` for `payment` (`op_N`).
fn wait_for_pay(played: &Mutex<Played>, payment: &str) {
    let request = format!("kasa-op-{}", &payment[3..]);
    let deadline = Instant::now() + BACKGROUND_WAIT;
    while !played
        .lock()
        .unwrap()
        .calls
        .iter()
        .any(|(path, body)| path.ends_with("/payments/pay") && body["paymentRequestId"] == request.as_str())
    {
        assert!(Instant::now() < deadline, "no pay for {payment}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Plays a partner on a local port; its URL.
fn partner(state: Arc<Mutex<Played>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/kasa", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let state = state.clone();
            std::thread::spawn(move || serve(stream, &state));
        }
    });
    url
}

fn serve(stream: std::net::TcpStream, state: &Mutex<Played>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let (mut length, mut client_id) = (0, String::new());
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                } else if k.eq_ignore_ascii_case("client-id") {
                    client_id = v.trim().to_string();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let request = body["paymentRequestId"].clone();
        let mut s = state.lock().unwrap();
        s.calls.push((path.clone(), body));
        let (mut answer, signing) = if path.ends_with("/payments/pay") {
            let answer = match s.pay {
                Pay::Succeed => json!({"result": {"resultStatus": "S", "resultCode": "SUCCESS"}}),
                Pay::Fail => json!({"result": {"resultStatus": "F", "resultCode": "USER_BALANCE_NOT_ENOUGH"}}),
                Pay::Drop => return,
            };
            (answer, s.pay_signing)
        } else if path.ends_with("/payments/inquiryPayment") {
            let answer = match s.inquiry {
                Inquiry::NotFound => json!({"result": {"resultStatus": "F", "resultCode": "ORDER_NOT_EXIST"}}),
                Inquiry::Success => json!({"result": {"resultStatus": "S"}, "paymentStatus": "SUCCESS"}),
            };
            (answer, Signing::Partner)
        } else {
            (json!({"result": {"resultStatus": "S", "resultCode": "SUCCESS"}}), Signing::Partner)
        };
        drop(s);
        // Every answer names the request it answers, and is signed at the partner's time.
        answer["paymentRequestId"] = if signing == Signing::OtherRequest { json!("kasa-op-999999") } else { request };
        let body = answer.to_string();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        let time = kasa_server::json::Rfc3339(nanos).to_string();
        let headers = match signing {
            Signing::Partner | Signing::OtherRequest => {
                partner_answer_headers((&partner_key(), 1), &path, &client_id, &time, &body)
            }
            Signing::Key2 => partner_answer_headers((&partner_key_2(), 2), &path, &client_id, &time, &body),
            Signing::StrangersKey => partner_answer_headers((&strangers_key(), 1), &path, &client_id, &time, &body),
            Signing::Unsigned => Vec::new(),
        };
        let headers: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
        let _ = write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
    }
}

/// An operator registers the partner with a short policy (inquire every second for 3 s), and
/// its key 1.
fn register(c: &mut Client, endpoint: &str) {
    let body = json!({
        "name": "unionpay_intl", "home_currency": "CNY", "settlement_currency": "CNY", "fee_bps": 0,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110987654321", "holder_name": "UnionPay Intl"},
        "endpoint": endpoint, "accepts": ["unionpay", "emvco"], "policy": {"inquire_every_seconds": 1, "inquire_for_seconds": 3}
    });
    let r = post(c, "/v1/admin/partners", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    let key = json!({"public_key": encode_base64(&partner_key().public_key())});
    assert_eq!(post(c, "/v1/admin/partners/ptn_1/keys", &key).status, 201);
    let r = post(c, "/v1/admin/fx/rates", &json!({"rates": [{"pair": "CNY/KRW", "mid": "190.50", "spread_bps": 100}]}));
    assert_eq!(r.status, 201, "{}", r.json());
}

/// A server with the played partner registered, answering as `pay` and `inquiry` say, and a
/// user of `phone` with `won` in the wallet.
fn start(pay: Pay, inquiry: Inquiry, phone: &str, won: u64) -> (tempfile::TempDir, Server, Arc<Mutex<Played>>, User) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let played = Played::new(pay, inquiry);
    register(&mut c, &partner(played.clone()));
    let user = sign_up(&server, phone);
    credit(&mut c, &user, won);
    (dir, server, played, user)
}

fn pay(c: &mut Client, user: &User) -> Value {
    let q = user.post(c, "/v1/me/overseas-payments/quote", &json!({"payload": QR}));
    assert_eq!(q.status, 201, "{}", q.json());
    let q = q.json();
    let r = user.post(c, "/v1/me/overseas-payments", &json!({"payload": QR, "quote_id": q["quote_id"], "pin": PIN}));
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["status"], "pending");
    r.json()
}

/// Waits until the payment is no longer pending.
fn ended(c: &mut Client, user: &User, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = user.get(c, &format!("/v1/me/overseas-payments/{id}")).json();
        if p["status"] != "pending" {
            return p;
        }
        assert!(Instant::now() < deadline, "still pending: {p}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn timeline(p: &Value) -> Vec<String> {
    p["timeline"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_payment_abroad_is_paid_refused_inquired_or_canceled_by_the_partners_answers() {
    let (_dir, server, played, user) = start(Pay::Succeed, Inquiry::NotFound, "010-5555-0001", 300_000);
    let mut c = server.client();

    // The quote: 23.72 yuan at 190.50 less 1 %: 23.72 × 190.5 / 0.99 = 4,564.24 won, rounded up.
    let q = user.post(&mut c, "/v1/me/overseas-payments/quote", &json!({"payload": QR})).json();
    assert_eq!((q["amount"]["currency"].as_str(), q["amount"]["value"].as_str()), (Some("CNY"), Some("2372")), "{q}");
    assert_eq!(q["krw_amount"]["value"], "4565");
    assert_eq!(
        (q["scheme"].as_str(), q["merchant_name"].as_str(), q["merchant_city"].as_str()),
        (Some("emvco"), Some("BEST TRANSPORT"), Some("BEIJING"))
    );

    // S: paid.
    let paid = pay(&mut c, &user);
    let paid = ended(&mut c, &user, paid["id"].as_str().unwrap());
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(timeline(&paid), ["created", "pay_requested", "pay_succeeded"]);
    assert_eq!(user.balance(&mut c).0, 300_000 - 4_565);
    let (path, body) = played.lock().unwrap().calls[0].clone();
    assert_eq!(path, "/kasa/payments/pay");
    assert_eq!(
        (body["paymentAmount"]["currency"].as_str(), body["paymentAmount"]["value"].as_str()),
        (Some("CNY"), Some("2372"))
    );
    assert_eq!(body["codeValue"], QR);

    // F: failed, the money back.
    played.lock().unwrap().pay = Pay::Fail;
    let refused = pay(&mut c, &user);
    let refused = ended(&mut c, &user, refused["id"].as_str().unwrap());
    assert_eq!(
        (refused["status"].as_str(), timeline(&refused).last().map(String::as_str)),
        (Some("failed"), Some("pay_refused"))
    );
    assert_eq!(user.balance(&mut c).0, 300_000 - 4_565);

    // No answer, and the partner never heard of it: inquired for 3 s, then canceled.
    played.lock().unwrap().pay = Pay::Drop;
    let lost = pay(&mut c, &user);
    let lost = ended(&mut c, &user, lost["id"].as_str().unwrap());
    let steps = timeline(&lost);
    assert_eq!(lost["status"], "failed", "{lost}");
    assert_eq!(&steps[..3], ["created", "pay_requested", "no_answer"]);
    assert!(steps.iter().filter(|s| *s == "inquiry_unknown").count() >= 2, "{steps:?}");
    assert_eq!(&steps[steps.len() - 2..], ["cancel_requested", "canceled"]);
    assert_eq!(user.balance(&mut c).0, 300_000 - 4_565);

    // No answer, but the partner did pay: the inquiry finds it.
    played.lock().unwrap().inquiry = Inquiry::Success;
    let found = pay(&mut c, &user);
    let found = ended(&mut c, &user, found["id"].as_str().unwrap());
    assert_eq!(
        (found["status"].as_str(), timeline(&found).last().map(String::as_str)),
        (Some("succeeded"), Some("inquiry_paid"))
    );
    assert_eq!(user.balance(&mut c).0, 300_000 - 2 * 4_565);

    // A refund from abroad of 10 yuan of the first: 4,565 × 1000 / 2372 = 1,924.5 won, rounded
    // down; signed by the partner.
    let signer = partner_key();
    let refund = json!({"refundRequestId": "r-1", "paymentRequestId": format!("kasa-op-{}", &paid["id"].as_str().unwrap()[3..]),
        "refundAmount": {"currency": "CNY", "value": "1000"}});
    let body = serde_json::to_vec(&refund).unwrap();
    let now = kasa_server::json::Rfc3339(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    )
    .to_string();
    let r = c.send_signed("/v1/partner/overseas/refund", "ptn_1", (&signer, 1), &now, &body).unwrap();
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(
        (r.json()["result"]["resultStatus"].as_str(), r.json()["krwAmount"]["value"].as_str()),
        (Some("S"), Some("1924")),
        "{}",
        r.json()
    );
    assert_eq!(user.balance(&mut c).0, 300_000 - 2 * 4_565 + 1_924);
    // The user's transaction list shows each payment abroad with its merchant, and the refund.
    let tx = user.get(&mut c, "/v1/me/transactions?limit=10").json();
    let entries: Vec<(String, String, String)> = tx["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["status"].as_str().unwrap().into(),
                e["amount"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = |t: &str, s: &str, a: &str| (t.to_string(), s.to_string(), a.to_string());
    assert_eq!(entries[0], want("overseas_refund", "succeeded", "1924"), "{tx}");
    assert!(entries.contains(&want("overseas_payment", "failed", "4565")), "{tx}");
    assert_eq!(entries.iter().filter(|e| **e == want("overseas_payment", "succeeded", "4565")).count(), 2, "{tx}");
    assert!(tx["data"].as_array().unwrap().iter().any(|e| e["memo"] == "BEST TRANSPORT"), "{tx}");
    // The settlement window in yuan holds what Kasa owes the partner.
    let windows = get(&mut c, "/v1/admin/settlement-windows?partner_id=ptn_1").json();
    let w = &windows["data"][0];
    assert_eq!((w["currency"].as_str(), w["net"].as_str()), (Some("CNY"), Some("-3744")), "{windows}");
    stop_and_verify(server);
}

/// Regression: Kasa took any answer from the partner's endpoint, signed or not, so whoever
/// could answer in the partner's place (a man in the middle, a misrouted name) could fail a
/// payment the partner made, and the user got the won back while the merchant was paid. An
/// `S` or `F` to `pay` that is unsigned, signed with a key the partner does not have or with a
/// revoked one, or that names another payment is no answer: the payment stays pending, is
/// inquired by the policy and ends by the partner's own answers (here: canceled).
#[test]
fn an_answer_the_partner_did_not_sign_for_this_payment_decides_nothing() {
    let (_dir, server, played, user) = start(Pay::Succeed, Inquiry::NotFound, "010-5555-0003", 100_000);
    let mut c = server.client();

    // The partner's key 2 signs answers that count while it is live.
    let key = json!({"public_key": encode_base64(&partner_key_2().public_key())});
    assert_eq!(post(&mut c, "/v1/admin/partners/ptn_1/keys", &key).status, 201);
    played.lock().unwrap().pay_signing = Signing::Key2;
    let paid = pay(&mut c, &user);
    let paid = ended(&mut c, &user, paid["id"].as_str().unwrap());
    assert_eq!(timeline(&paid), ["created", "pay_requested", "pay_succeeded"], "{paid}");
    let r = post(&mut c, "/v1/admin/partners/ptn_1/keys/2/revoke", &json!({}));
    assert_eq!(r.status, 200, "{}", r.json());

    let cases = [
        (Pay::Succeed, Signing::Unsigned),
        (Pay::Fail, Signing::Unsigned),
        (Pay::Succeed, Signing::StrangersKey),
        (Pay::Succeed, Signing::Key2),
        (Pay::Fail, Signing::Key2),
        (Pay::Succeed, Signing::OtherRequest),
        (Pay::Fail, Signing::OtherRequest),
    ];
    // One at a time to the partner (each answered as its case says), then all inquired at once.
    let mut payments = Vec::new();
    for (answer, signing) in cases {
        {
            let mut p = played.lock().unwrap();
            (p.pay, p.pay_signing) = (answer, signing);
        }
        let p = pay(&mut c, &user);
        let id = p["id"].as_str().unwrap().to_string();
        wait_for_pay(&played, &id);
        payments.push((id, answer, signing));
    }
    for (id, answer, signing) in &payments {
        let p = ended(&mut c, &user, id);
        let steps = timeline(&p);
        assert_eq!(p["status"], "failed", "{answer:?} {signing:?}: {p}");
        assert_eq!(&steps[..3], ["created", "pay_requested", "no_answer"], "{answer:?} {signing:?}: {steps:?}");
        assert!(steps.contains(&"inquiry_unknown".to_string()), "{answer:?} {signing:?}: {steps:?}");
        assert_eq!(&steps[steps.len() - 2..], ["cancel_requested", "canceled"], "{answer:?} {signing:?}: {steps:?}");
    }
    assert_eq!(user.balance(&mut c), (100_000 - 4_565, 100_000 - 4_565), "only the partner's S took money");
    stop_and_verify(server);
}

#[test]
fn kill_9_while_a_payment_abroad_is_inquired_resumes_the_inquiry_and_the_cancel() {
    let (dir, server, played, user) = start(Pay::Drop, Inquiry::NotFound, "010-5555-0002", 100_000);
    let mut c = server.client();
    let p = pay(&mut c, &user);
    let id = p["id"].as_str().unwrap().to_string();
    // Wait for the first inquiry, then kill.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !played.lock().unwrap().calls.iter().any(|(path, _)| path.ends_with("inquiryPayment")) {
        assert!(Instant::now() < deadline, "no inquiry");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let user = session(&server, "010-5555-0002", PIN);
    let ended = ended(&mut c, &user, &id);
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(timeline(&ended).last().map(String::as_str), Some("canceled"));
    assert_eq!(user.balance(&mut c), (100_000, 100_000), "every won is back, and available");
    stop_and_verify(server);
}
