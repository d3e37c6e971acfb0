//! Partner wallet networks over HTTP: an operator registers a partner, its key and FX rates;
//! the partner, signing every request, quotes, pays a store by its scanned code, inquires,
//! refunds at the payment's rate after the rate moved, cancels until the cutoff; the window
//! closes and the bank rail settles it; the settlement file is reconciled against a partner's
//! file with a missing, an extra and a changed item (by the API and by `kasa reconcile`).
//! Signatures are attacked: forged, another key, a revoked key, a changed body, a skewed
//! clock, a replay. And `kill -9` in the middle of partner payments loses no acknowledged one.

mod support;

use kasa::client::Client;
use kasa_server::partner_signature::{encode_base64, Signer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::*;

/// A partner as the tests drive it: its id, its key, and how far the server's test clock was
/// moved (its requests are timed by the server's clock).
struct Partner {
    id: String,
    signer: Signer,
    version: u32,
    clock_ahead: u64,
}

impl Partner {
    fn now(&self) -> String {
        // To the nanosecond: a retry is signed anew with a new time, so its signature differs.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        kasa_server::json::Rfc3339(nanos + self.clock_ahead * 1_000_000_000).to_string()
    }

    fn call(&self, c: &mut Client, path: &str, body: &Value) -> kasa::client::Response {
        let body = serde_json::to_vec(body).unwrap();
        c.send_signed(path, &self.id, (&self.signer, self.version), &self.now(), &body).unwrap()
    }

    /// A call answered 200 with a result; the body.
    #[track_caller]
    fn ok(&self, c: &mut Client, path: &str, body: &Value) -> Value {
        let r = self.call(c, path, body);
        assert!(matches!(r.status, 200 | 201), "{}", r.json());
        // Kasa signs its answer over the same layout, with its own key.
        let header = r.header("signature").expect("a signed answer");
        let signature = kasa_server::partner_signature::parse_header(header).expect("a signature header");
        let time = r.header("response-time").unwrap().to_string();
        let message = kasa_server::partner_signature::message("POST", path, &self.id, &time, &r.body);
        let kasa_key = kasa_key(c);
        assert!(
            kasa_server::partner_signature::verify(&kasa_key, &message, &signature.signature),
            "Kasa's answer verifies"
        );
        r.json()
    }
}

/// Kasa's public key, as the partner object shows it.
fn kasa_key(c: &mut Client) -> [u8; 32] {
    let p = get(c, "/v1/admin/partners/ptn_1").json();
    let bytes = kasa_server::partner_signature::decode_base64(p["kasa_public_key"].as_str().unwrap()).unwrap();
    bytes.try_into().unwrap()
}

/// An operator registers a partner settling in `currency` with a fee of 1 %, and its key.
fn register(c: &mut Client, name: &str, currency: &str, seed: u8) -> Partner {
    let body = json!({
        "name": name, "home_currency": currency, "settlement_currency": currency, "fee_bps": 100,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110987654321", "holder_name": "Partner Ltd"}
    });
    let r = post(c, "/v1/admin/partners", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let signer = Signer::from_seed(&[seed; 32]);
    let r =
        post(c, &format!("/v1/admin/partners/{id}/keys"), &json!({"public_key": encode_base64(&signer.public_key())}));
    assert_eq!(r.status, 201, "{}", r.json());
    Partner { id, signer, version: r.json()["key_version"].as_u64().unwrap() as u32, clock_ahead: 0 }
}

fn load_rate(c: &mut Client, pair: &str, mid: &str, spread_bps: u32) {
    let r = post(c, "/v1/admin/fx/rates", &json!({"rates": [{"pair": pair, "mid": mid, "spread_bps": spread_bps}]}));
    assert_eq!(r.status, 201, "{}", r.json());
}

/// A merchant with a store; (the store's id, its code's payload, an API key).
fn store(c: &mut Client) -> (String, String, String) {
    let merchant = onboard(c, "120-81-47521");
    let r = post(c, &format!("/v1/admin/merchants/{merchant}/stores"), &json!({"name": "강남점"}));
    assert_eq!(r.status, 201, "{}", r.json());
    let store = r.json()["id"].as_str().unwrap().to_string();
    let key = api_key(c, &merchant, &["payments:read", "payments:write", "refunds:write"]);
    let qr = call(c, "GET", &format!("/v1/stores/{store}/qr"), Some(&key), None).json();
    (store, qr["payload"].as_str().unwrap().to_string(), key)
}

fn pay_body(request: &str, won: u64, code: &str, quote: Option<&str>) -> Value {
    let mut body = json!({
        "paymentRequestId": request,
        "paymentAmount": {"currency": "KRW", "value": won.to_string()},
        "order": {"orderDescription": "Coffee"},
        "customerId": "2088101122334455",
        "codeValue": code,
        "env": {"terminalType": "APP"},
    });
    if let Some(q) = quote {
        body["paymentQuote"] = json!({"quoteId": q});
    }
    body
}

#[test]
fn a_partner_pays_refunds_at_its_rate_cancels_until_the_cutoff_and_settles() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let (_store, code, key) = store(&mut c);
    let mut partner = register(&mut c, "alipay_plus", "CNY", 1);
    load_rate(&mut c, "CNY/KRW", "190.50", 100);

    // A quote: 10,000 won cost 53.03 yuan at 190.50 less 1 %.
    let q = partner.ok(
        &mut c,
        "/v1/fx/quotes",
        &json!({"sell_currency": "CNY", "buy_currency": "KRW", "buy_amount": "10000", "expires_in": 60}),
    );
    assert_eq!(
        (q["sell_amount"].as_str(), q["rate"].as_str(), q["guaranteed"].as_bool()),
        (Some("5303"), Some("188.595"), Some(true))
    );
    let quote_id = q["quote_id"].as_str().unwrap().to_string();

    let paid = partner.ok(&mut c, "/v1/partner/payments/pay", &pay_body("req-1", 10_000, &code, Some(&quote_id)));
    assert_eq!(paid["result"]["resultStatus"], "S", "{paid}");
    assert_eq!(paid["settlementAmount"], json!({"currency": "CNY", "value": "5303"}));
    assert_eq!(paid["partnerFee"]["value"], "53");
    assert_eq!(paid["settlementQuote"]["quotePrice"], "188.595");
    // The same request again: the same payment, nothing new.
    let again = partner.ok(&mut c, "/v1/partner/payments/pay", &pay_body("req-1", 10_000, &code, Some(&quote_id)));
    assert_eq!(again["paymentId"], paid["paymentId"]);
    let reused = partner.ok(&mut c, "/v1/partner/payments/pay", &pay_body("req-1", 9_000, &code, None));
    assert_eq!(
        (reused["result"]["resultStatus"].as_str(), reused["result"]["resultCode"].as_str()),
        (Some("F"), Some("REPEAT_REQ_INCONSISTENT"))
    );
    let inquiry = partner.ok(&mut c, "/v1/partner/payments/inquiryPayment", &json!({"paymentRequestId": "req-1"}));
    assert_eq!(inquiry["paymentStatus"], "SUCCESS");
    let none = partner.ok(&mut c, "/v1/partner/payments/inquiryPayment", &json!({"paymentRequestId": "never"}));
    assert_eq!(none["result"]["resultCode"], "ORDER_NOT_EXIST");
    // Every answer names the request it answers, an F too (as Kasa asks of partners' answers).
    assert_eq!(
        (none["paymentRequestId"].as_str(), reused["paymentRequestId"].as_str()),
        (Some("never"), Some("req-1"))
    );

    // The merchant sees a payment of the partner channel, and refunds it through the partner.
    let merchant_payment = paid["merchantPaymentId"].as_str().unwrap();
    let mp = call(&mut c, "GET", &format!("/v1/payments/{merchant_payment}"), Some(&key), None).json();
    assert_eq!(
        (mp["channel"].as_str(), mp["status"].as_str(), mp["amount"].as_str()),
        (Some("partner"), Some("succeeded"), Some("10000"))
    );
    let r = call(
        &mut c,
        "POST",
        &format!("/v1/payments/{merchant_payment}/refunds"),
        Some(&key),
        Some(&json!({"amount": "1000", "reason": "x"})),
    );
    assert_problem(&r, 409, "refund_through_partner");

    // The rate moves; a refund goes back at the payment's rate: 3,000 of 10,000 won is
    // 5,303 × 0.3 = 1,590.9 fen, rounded down.
    load_rate(&mut c, "CNY/KRW", "150", 0);
    let refund = json!({"refundRequestId": "rf-1", "paymentRequestId": "req-1", "refundAmount": {"currency": "KRW", "value": "3000"}});
    let refunded = partner.ok(&mut c, "/v1/partner/payments/refund", &refund);
    assert_eq!(refunded["settlementAmount"]["value"], "1590", "{refunded}");
    assert_eq!(partner.ok(&mut c, "/v1/partner/payments/refund", &refund)["refundId"], refunded["refundId"]);

    // A quote used after its expiry is refused.
    advance(&mut c, 61);
    partner.clock_ahead = 61;
    let late = partner.ok(&mut c, "/v1/partner/payments/pay", &pay_body("req-late", 10_000, &code, Some(&quote_id)));
    assert_eq!(late["result"]["resultCode"], "QUOTE_EXPIRED");

    // A second payment, canceled the same day: everything back.
    let second = partner.ok(&mut c, "/v1/partner/payments/pay", &pay_body("req-2", 20_000, &code, None));
    assert_eq!(second["settlementAmount"]["value"], "13334", "20,000 / 150 = 133.333 yuan, rounded up");
    let canceled = partner.ok(&mut c, "/v1/partner/payments/cancelPayment", &json!({"paymentRequestId": "req-2"}));
    assert_eq!(
        (canceled["result"]["resultStatus"].as_str(), canceled["settlementAmount"]["value"].as_str()),
        (Some("S"), Some("13334"))
    );
    let third = partner.ok(&mut c, "/v1/partner/payments/pay", &pay_body("req-3", 5_000, &code, None));

    // The operator closes the window; the bank rail settles it; a cancel is refused after.
    let window = paid["settlementWindowId"].as_str().unwrap().to_string();
    let w = post(&mut c, &format!("/v1/admin/settlement-windows/{window}/close"), &json!({})).json();
    assert_eq!(w["status"], "closed", "{w}");
    // 5,303 + 13,334 + 3,334 paid; 1,590 + 13,334 back; fees 53 + 133 + 33 - 16 - 133 (Kasa's
    // fees to the partner rounded down, taken back rounded up).
    assert_eq!(
        (w["paid"].as_str(), w["refunded"].as_str(), w["fees"].as_str(), w["net"].as_str()),
        (Some("21971"), Some("14924"), Some("70"), Some("6977"))
    );
    let settled = wait_for(|| {
        let w = get(&mut c, &format!("/v1/admin/settlement-windows/{window}")).json();
        (w["status"] != "closed").then_some(w)
    });
    assert_eq!(settled["status"], "settled", "{settled}");
    let late_cancel = partner.ok(&mut c, "/v1/partner/payments/cancelPayment", &json!({"paymentRequestId": "req-3"}));
    assert_eq!(late_cancel["result"]["resultCode"], "CANCEL_WINDOW_EXCEED");
    assert_eq!(third["settlementWindowId"], paid["settlementWindowId"]);

    // The settlement file, in both formats.
    let csv = get(&mut c, &format!("/v1/admin/settlement-windows/{window}/items.csv"));
    assert_eq!(csv.status, 200);
    let csv = String::from_utf8(csv.body).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 5, "{csv}");
    assert!(lines[1].starts_with(&format!("{window},payment,ppay_1,req-1,,")), "{csv}");
    assert!(lines[1].ends_with(",10000,KRW,5303,CNY,188.595,53,succeeded"), "{csv}");
    let json_file = get(&mut c, &format!("/v1/admin/settlement-windows/{window}/items.json")).json();
    assert_eq!(json_file["items"].as_array().unwrap().len(), 5);
    assert_eq!(json_file["window"]["net"], "6977");

    // Reconciliation: the partner's file lacks req-3, has an extra req-9, and a refund of
    // another settlement amount.
    let mut partner_file =
        String::from("item_type,payment_request_id,refund_request_id,amount,settlement_amount,status\n");
    partner_file += "payment,req-1,,10000,5303,succeeded\nrefund,req-1,rf-1,3000,1591,succeeded\n";
    partner_file +=
        "payment,req-2,,20000,13334,canceled\ncancel,req-2,,20000,13334,succeeded\npayment,req-9,,100,1,succeeded\n";
    let report =
        post(&mut c, &format!("/v1/admin/settlement-windows/{window}/reconcile"), &json!({"csv": partner_file})).json();
    assert_eq!(
        report["summary"], "matched 3, missing in Kasa 1, missing in partner 1, amounts differ 1, statuses differ 0",
        "{report}"
    );
    assert_eq!(report["missing_in_partner"][0]["payment_request_id"], "req-3");
    assert_eq!(report["missing_in_kasa"][0]["payment_request_id"], "req-9");
    assert_eq!(report["amount_mismatches"][0]["refund_request_id"], "rf-1");
    // The same with the command line.
    let file = dir.path().join("partner.csv");
    std::fs::write(&file, &partner_file).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["reconcile", "--partner", "alipay_plus", "--window", &window, "--addr", &server.addr.to_string()])
        .arg(&file)
        .env("KASA_OPERATOR_KEY", &server.key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.starts_with("matched 3, missing in Kasa 1, missing in partner 1, amounts differ 1, statuses differ 0\n"),
        "{stdout}"
    );
    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["reconcile", "--partner", "someone_else", "--window", &window, "--addr", &server.addr.to_string()])
        .arg(&file)
        .env("KASA_OPERATOR_KEY", &server.key)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "another partner's window is an error");
    let events: Vec<String> = events_when(&mut c, |e| e.iter().any(|e| e["type"] == "settlement_window.settled"))
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(events.iter().any(|t| t == "partner_refund.succeeded"), "{events:?}");
    let log = stop_and_verify(server);
    assert!(log.contains("ok"), "{log}");
}

/// Polls `f` for up to 20 seconds.
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + BACKGROUND_WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn forged_skewed_and_replayed_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let (_store, code, key) = store(&mut c);
    let partner = register(&mut c, "kakao_jp", "KRW", 1);
    let body = serde_json::to_vec(&pay_body("req-1", 1_000, &code, None)).unwrap();
    let path = "/v1/partner/payments/pay";
    let now = partner.now();
    let mut signed = |signer: &Signer, version: u32, client: &str, time: &str, body: &[u8]| {
        c.send_signed(path, client, (signer, version), time, body).unwrap()
    };
    // Another key than the partner's, a key version it does not have, another client's id.
    let stranger = Signer::from_seed(&[9; 32]);
    assert_problem(&signed(&stranger, 1, &partner.id, &now, &body), 401, "invalid_signature");
    assert_problem(&signed(&partner.signer, 2, &partner.id, &now, &body), 401, "invalid_signature");
    assert_problem(&signed(&partner.signer, 1, "ptn_2", &now, &body), 401, "invalid_signature");
    // A body changed after signing.
    let message = kasa_server::partner_signature::message("POST", path, &partner.id, &now, &body);
    let header = partner.signer.header(1, &message);
    let mut changed = body.clone();
    let at = changed.iter().position(|&b| b == b'1').unwrap();
    changed[at] = b'9';
    let headers = [
        ("Content-Type", "application/json"),
        ("Client-Id", partner.id.as_str()),
        ("Request-Time", now.as_str()),
        ("Signature", header.as_str()),
    ];
    assert_problem(&c.request("POST", path, &headers, &changed).unwrap(), 401, "invalid_signature");
    // A clock six minutes off either way, or no time at all.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for skewed in [secs - 360, secs + 360] {
        let time = kasa_server::json::Rfc3339(skewed * 1_000_000_000).to_string();
        let r = c.send_signed(path, &partner.id, (&partner.signer, 1), &time, &body).unwrap();
        assert_problem(&r, 401, "request_time_skew");
    }
    // The same time written with an offset is the same time.
    let seoul = {
        let t = kasa_server::json::Rfc3339((secs + 9 * 3600) * 1_000_000_000).to_string();
        format!("{}+09:00", t.trim_end_matches('Z'))
    };
    let r = c.send_signed(path, &partner.id, (&partner.signer, 1), &seoul, &body).unwrap();
    assert_eq!(r.status, 200, "{}", r.json());
    // The very same signed request again is a replay.
    let message = kasa_server::partner_signature::message("POST", path, &partner.id, &seoul, &body);
    let header = partner.signer.header(1, &message);
    let headers = [
        ("Content-Type", "application/json"),
        ("Client-Id", partner.id.as_str()),
        ("Request-Time", seoul.as_str()),
        ("Signature", header.as_str()),
    ];
    assert_problem(&c.request("POST", path, &headers, &body).unwrap(), 401, "replayed_request");
    // A revoked key stops working at once.
    let r = post(&mut c, &format!("/v1/admin/partners/{}/keys/1/revoke", partner.id), &json!({}));
    assert_eq!(r.status, 200, "{}", r.json());
    let r = partner.call(&mut c, "/v1/partner/payments/inquiryPayment", &json!({"paymentRequestId": "req-1"}));
    assert_problem(&r, 401, "invalid_signature");
    // Only the one good request paid.
    assert_eq!(all_payments(&mut c, &key).len(), 1);
    // Not signed at all, or an operator's key on the partner API.
    let r = post(&mut c, path, &pay_body("req-2", 1_000, &code, None));
    assert_problem(&r, 401, "invalid_signature");
    assert_eq!(all_payments(&mut c, &key).len(), 1);
    stop_and_verify(server);
}

#[test]
fn kill_9_during_partner_payments_loses_no_acknowledged_payment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let (_store, code, key) = store(&mut c);
    register(&mut c, "alipay_plus", "CNY", 1);
    load_rate(&mut c, "CNY/KRW", "190.50", 100);
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (acknowledged, stop, code, addr) = (acknowledged.clone(), stop.clone(), code.clone(), server.addr);
            std::thread::spawn(move || {
                let partner =
                    Partner { id: "ptn_1".into(), signer: Signer::from_seed(&[1; 32]), version: 1, clock_ahead: 0 };
                let Ok(mut c) = Client::connect(addr, "") else { return };
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let request = format!("w{w}-{i}");
                    let body = serde_json::to_vec(&pay_body(&request, 1_000 + i, &code, None)).unwrap();
                    match c.send_signed(
                        "/v1/partner/payments/pay",
                        &partner.id,
                        (&partner.signer, 1),
                        &partner.now(),
                        &body,
                    ) {
                        Ok(r) if r.status == 200 && r.json()["result"]["resultStatus"] == "S" => {
                            acknowledged.lock().unwrap().push(request)
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    let acknowledged = kill_9_under_load(server, &acknowledged, 200, &stop, workers);
    let server = Server::start(dir.path());
    let mut c = server.client();
    let partner = Partner { id: "ptn_1".into(), signer: Signer::from_seed(&[1; 32]), version: 1, clock_ahead: 0 };
    for request in &acknowledged {
        let r = partner.ok(&mut c, "/v1/partner/payments/inquiryPayment", &json!({"paymentRequestId": request}));
        assert_eq!(r["paymentStatus"], "SUCCESS", "{request}: {r}");
    }
    // Every merchant payment is a partner's, once.
    let partner_payments = get(&mut c, "/v1/admin/settlement-windows?limit=100").json();
    let in_windows: u64 =
        partner_payments["data"].as_array().unwrap().iter().map(|w| w["payments"].as_u64().unwrap()).sum();
    assert_eq!(in_windows as usize, all_payments(&mut c, &key).len());
    assert!(in_windows as usize >= acknowledged.len());
    stop_and_verify(server);
}

#[test]
fn kasa_fx_load_sends_a_rates_file_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let file = dir.path().join("rates.csv");
    std::fs::write(&file, "pair,mid,spread_bps,valid_from\nCNY/KRW,190.50,100,2026-01-01T00:00:00Z\nUSD/KRW,1385.5,50,2026-01-01T00:00:00Z\n").unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
            .args(["fx", "load", "--addr", &server.addr.to_string()])
            .arg(&file)
            .env("KASA_OPERATOR_KEY", &server.key)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "loaded 2 new, 0 replaced\n");
    assert_eq!(
        String::from_utf8_lossy(&run().stdout),
        "loaded 0 new, 2 replaced\n",
        "loading again corrects, adds nothing"
    );
    let mut c = server.client();
    let rates = get(&mut c, "/v1/admin/fx/rates").json();
    assert_eq!(rates.as_array().unwrap().len(), 2, "{rates}");
    let q = post(
        &mut c,
        "/v1/fx/quotes",
        &json!({"sell_currency": "KRW", "buy_currency": "USD", "sell_amount": "1000000"}),
    )
    .json();
    assert_eq!(q["buy_amount"], "71815", "1,000,000 won / 1385.5 × 0.995 = 718.152 dollars, rounded down: {q}");
    // A bad file changes nothing and names its line.
    std::fs::write(&file, "pair,mid,spread_bps,valid_from\nCNY/KRW,abc,100,2026-01-01T00:00:00Z\n").unwrap();
    let out = run();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"line\":2"));
    stop_and_verify(server);
}
