//! In-store payments over HTTP: a store's static QR code (JSON, PNG and SVG, read back), a
//! code for one sale (once, for its amount, before it expires, unguessable), payment codes
//! that users show and merchants charge (once, within 60 seconds, within the user's consent;
//! guessing is rate-limited), two merchants racing one code, and `kill -9` during QR and code
//! payments (nothing lost, nothing paid twice).

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::*;

const ALL: &[&str] = &["payments:read", "payments:write", "refunds:write"];

/// An operator adds a store; its id.
fn add_store(c: &mut kasa::client::Client, merchant: &str, name: &str) -> String {
    let r = post(c, &format!("/v1/admin/merchants/{merchant}/stores"), &json!({"name": name}));
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()["id"].as_str().unwrap().to_string()
}

fn scan(
    c: &mut kasa::client::Client,
    user: &User,
    payload: &str,
    amount: Option<&str>,
    pin: Option<&str>,
) -> kasa::client::Response {
    let mut body = json!({"payload": payload});
    if let Some(a) = amount {
        body["amount"] = json!(a);
    }
    if let Some(p) = pin {
        body["pin"] = json!(p);
    }
    user.post(c, "/v1/me/qr-payments", &body)
}

fn one_sale(
    c: &mut kasa::client::Client,
    key: &str,
    store: &str,
    order: &str,
    amount: &str,
    expires_in: Option<u32>,
) -> Value {
    let mut body = json!({"amount": amount, "order_id": order});
    if let Some(s) = expires_in {
        body["expires_in"] = json!(s);
    }
    let r = call(c, "POST", &format!("/v1/stores/{store}/qr"), Some(key), Some(&body));
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()
}

fn payment_code(c: &mut kasa::client::Client, user: &User, pin: Option<&str>) -> String {
    let body = match pin {
        Some(p) => json!({"pin": p}),
        None => json!({}),
    };
    let r = user.post(c, "/v1/me/payment-codes", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()["code"].as_str().unwrap().to_string()
}

fn charge(
    c: &mut kasa::client::Client,
    key: &str,
    store: &str,
    code: &str,
    order: &str,
    amount: &str,
) -> kasa::client::Response {
    let body = json!({"payment_code": code, "amount": amount, "currency": "KRW", "order_id": order, "store_id": store});
    call(c, "POST", "/v1/payments", Some(key), Some(&body))
}

/// A payload with one field of a template replaced, its checksum made good again (what a
/// forger who read a real code would send).
fn with_sub(payload: &str, id: u8, sub: u8, value: &str) -> String {
    let decoded = kasa_core::qr::decode(payload).unwrap();
    let mut fields: BTreeMap<u8, kasa_core::qr::Value> = decoded.to_values();
    if let Some(kasa_core::qr::Value::Template(t)) = fields.get_mut(&id) {
        t.insert(sub, value.to_string());
    }
    kasa_core::qr::encode(&fields).unwrap()
}

/// A payload with top-level field `id` replaced, its checksum made good again.
fn with_field(payload: &str, id: u8, value: &str) -> String {
    let mut fields = kasa_core::qr::decode(payload).unwrap().to_values();
    fields.insert(id, kasa_core::qr::Value::Text(value.to_string()));
    kasa_core::qr::encode(&fields).unwrap()
}

/// The text of the QR code in a PNG image, read by a QR reader.
fn read_png(png: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let bits = info.bit_depth as usize;
    let grey = |x: usize, y: usize| -> u8 {
        if bits == 8 {
            pixels[(y * w + x) * channels]
        } else {
            // 1-bit greyscale, rows padded to whole bytes.
            let row = (w * bits).div_ceil(8);
            let byte = pixels[y * row + x * bits / 8];
            if (byte >> (7 - (x * bits) % 8)) & 1 == 1 {
                255
            } else {
                0
            }
        }
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

#[test]
fn store_codes_and_payment_codes_make_payments_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let other = onboard(&mut c, "220-81-62517");
    let key = api_key(&mut c, &shop, ALL);
    let other_key = api_key(&mut c, &other, ALL);
    let store = add_store(&mut c, &shop, "강남점");
    let alice = sign_up(&server, "010-7710-0001");
    let bob = sign_up(&server, "010-7710-0002");
    credit(&mut c, &alice, 300_000);
    credit(&mut c, &bob, 5_000);

    // The store's static code: JSON, and images that read back to the same payload.
    let qr = call(&mut c, "GET", &format!("/v1/stores/{store}/qr"), Some(&key), None).json();
    let payload = qr["payload"].as_str().unwrap().to_string();
    assert_eq!(qr["type"], "static");
    let decoded = call(&mut c, "POST", "/v1/qr/decode", Some(&key), Some(&json!({"payload": payload}))).json();
    assert_eq!(
        (decoded["scheme"].as_str(), decoded["fields"]["26"]["01"].as_str()),
        (Some("kasa"), Some(store.as_str()))
    );
    assert_eq!((decoded["merchant_name"].as_str(), decoded["fields"]["01"].as_str()), (Some("카사상점"), Some("11")));
    let png = call(&mut c, "GET", &format!("/v1/stores/{store}/qr.png"), Some(&key), None);
    assert_eq!((png.status, png.header("content-type")), (200, Some("image/png")));
    assert_eq!(read_png(&png.body), payload);
    let svg = call(&mut c, "GET", &format!("/v1/stores/{store}/qr.svg"), Some(&key), None);
    assert_eq!((svg.status, svg.header("content-type")), (200, Some("image/svg+xml")));
    assert_eq!(String::from_utf8(svg.body.clone()).unwrap(), kasa_server::images::qr_svg(&payload).unwrap());
    assert_problem(&call(&mut c, "GET", &format!("/v1/stores/{store}/qr"), Some(&other_key), None), 404, "not_found");

    // A user scans it and enters the amount: made and paid at once.
    assert_problem(&scan(&mut c, &alice, &payload, None, None), 422, "invalid_field");
    let paid = scan(&mut c, &alice, &payload, Some("8000"), None);
    assert_eq!(paid.status, 201, "{}", paid.json());
    let paid = paid.json();
    assert_eq!((paid["status"].as_str(), paid["store_name"].as_str()), (Some("succeeded"), Some("강남점")));
    let p = call(&mut c, "GET", &format!("/v1/payments/{}", paid["id"].as_str().unwrap()), Some(&key), None).json();
    assert_eq!(
        (p["channel"].as_str(), p["store_id"].as_str(), p["fee"].as_str()),
        (Some("static_qr"), Some(store.as_str()), Some("200"))
    );
    assert_eq!(alice.balance(&mut c).0, 292_000);
    assert_problem(&scan(&mut c, &alice, &payload, Some("60000"), None), 403, "pin_required");
    assert_problem(&scan(&mut c, &bob, &payload, Some("6000"), None), 422, "insufficient_funds");
    // Other schemes are named; broken payloads are refused with the decoder's reason.
    let paynow = "00020101021126400009SG.PAYNOW010120213200002150HWCF030115204000053037025802SG5923NATIONAL HEALTHCARE GRO6009Singapore6304DF3F";
    let r = scan(&mut c, &alice, paynow, Some("1000"), None);
    assert_problem(&r, 422, "unsupported_scheme");
    assert!(r.json()["detail"].as_str().unwrap().contains("paynow"), "{}", r.json());
    assert_problem(&scan(&mut c, &alice, &payload.replace("6304", "6305"), Some("1000"), None), 422, "invalid_qr");
    let elsewhere = with_sub(&payload, 26, 1, "str_999");
    assert_problem(&scan(&mut c, &alice, &elsewhere, Some("1000"), None), 404, "not_found");
    // A sticker that shows another shop's name over this store's reference is refused.
    let sticker = with_field(&payload, 59, "스타벅스");
    assert_problem(&scan(&mut c, &alice, &sticker, Some("1000"), None), 422, "qr_code_mismatch");

    // A code for one sale: its amount, once, by whoever scans first.
    let sale = one_sale(&mut c, &key, &store, "till-1", "4500", None);
    let sale_payload = sale["payload"].as_str().unwrap();
    assert_eq!((sale["type"].as_str(), sale["amount"].as_str()), (Some("dynamic"), Some("4500")));
    assert_problem(&scan(&mut c, &alice, sale_payload, Some("450"), None), 422, "amount_mismatch");
    // Its reference cannot be guessed: another token, even with a good checksum, names nothing.
    let sale_id = sale["payment_id"].as_str().unwrap();
    let forged = with_sub(sale_payload, 26, 2, &format!("{sale_id}.{}", "0".repeat(32)));
    assert_problem(&scan(&mut c, &alice, &forged, None, None), 404, "not_found");
    // Its token cannot decline it through the online approval link.
    let token = &sale_payload[sale_payload.find(".").unwrap() + 1..][..32];
    let declined = bob.post(&mut c, &format!("/v1/me/payments/{sale_id}/decline"), &json!({"token": token}));
    assert_problem(&declined, 404, "not_found");
    let page = call(&mut c, "GET", &format!("/pay/{sale_id}?token={token}"), None, None);
    assert_eq!(page.status, 404, "the hosted page does not answer a one-sale code");
    let made = call(&mut c, "GET", &format!("/v1/payments/{sale_id}"), Some(&key), None).json();
    assert!(made["approval_url"].is_null(), "{made}");
    let r = scan(&mut c, &alice, sale_payload, None, None);
    assert_eq!((r.status, r.json()["amount"].as_str()), (201, Some("4500")), "{}", r.json());
    assert_problem(&scan(&mut c, &bob, sale_payload, None, None), 409, "qr_code_used");
    let got = call(&mut c, "GET", &format!("/v1/payments/{sale_id}"), Some(&key), None).json();
    assert_eq!((got["status"].as_str(), got["channel"].as_str()), (Some("succeeded"), Some("dynamic_qr")));
    // Unscanned, it expires.
    let late = one_sale(&mut c, &key, &store, "till-2", "1000", Some(60));
    advance(&mut c, 61);
    assert_problem(&scan(&mut c, &bob, late["payload"].as_str().unwrap(), None, None), 409, "qr_code_expired");
    let r = call(
        &mut c,
        "POST",
        &format!("/v1/stores/{store}/qr"),
        Some(&key),
        Some(&json!({"amount": "1", "order_id": "kasa_1"})),
    );
    assert_problem(&r, 422, "invalid_field");

    // A payment code: charged once, within the user's consent.
    let code = payment_code(&mut c, &alice, None);
    assert_eq!((code.len(), &code[..2]), (20, "97"));
    let r = charge(&mut c, &key, &store, &code, "pos-1", "3000");
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!((r.json()["status"].as_str(), r.json()["channel"].as_str()), (Some("succeeded"), Some("payment_code")));
    assert_problem(&charge(&mut c, &key, &store, &code, "pos-2", "3000"), 409, "payment_code_used");
    let code = payment_code(&mut c, &alice, None);
    assert_problem(&charge(&mut c, &key, &store, &code, "pos-2", "60000"), 403, "pin_required");
    assert_problem(&charge(&mut c, &other_key, &store, &code, "pos-2", "1000"), 422, "invalid_field");
    let with_pin = payment_code(&mut c, &alice, Some(PIN));
    assert_problem(&charge(&mut c, &key, &store, &code, "pos-2", "1000"), 422, "payment_code_invalid");
    assert_eq!(charge(&mut c, &key, &store, &with_pin, "pos-2", "60000").status, 201, "issued with the PIN");
    let stale = payment_code(&mut c, &alice, None);
    advance(&mut c, 60);
    assert_problem(&charge(&mut c, &key, &store, &stale, "pos-3", "1000"), 409, "payment_code_expired");
    // The issued code carries its barcode and QR code.
    let issued = alice.post(&mut c, "/v1/me/payment-codes", &json!({})).json();
    assert!(issued["barcode_svg"].as_str().unwrap().starts_with("<svg"), "{issued}");
    assert_eq!(
        issued["qr_svg"].as_str().unwrap(),
        kasa_server::images::digits_qr_svg(issued["code"].as_str().unwrap()).unwrap()
    );

    // Guessing: a merchant that sends codes that are not valid is slowed down, even when it
    // sends them all at once (each attempt holds a token while its code is checked).
    let guesses: Vec<_> = (0..24u64)
        .map(|i| {
            let (mut c, key) = (server.client(), other_key.clone());
            std::thread::spawn(move || {
                let guess = format!("97{:018}", 123_456_789_000u64 + i);
                charge(&mut c, &key, "str_1", &guess, &format!("g-{i}"), "1000").json()["code"].clone()
            })
        })
        .collect();
    let statuses: Vec<Value> = guesses.into_iter().map(|t| t.join().unwrap()).collect();
    // The burst is 10; one more if the 24 took over the 6 seconds a token takes to come back.
    let invalid = statuses.iter().filter(|s| *s == "payment_code_invalid").count();
    assert!((10..=11).contains(&invalid), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "rate_limited").count(), 24 - invalid, "{statuses:?}");
    // A valid code still goes through for a merchant that was not guessing.
    let fresh = payment_code(&mut c, &alice, None);
    assert_eq!(charge(&mut c, &key, &store, &fresh, "pos-9", "100").status, 201);

    // The user's list shows the store; the merchant gets the same events as online.
    let list = alice.get(&mut c, "/v1/me/transactions?limit=3").json();
    assert_eq!(list["data"][0]["store_name"], "강남점", "{list}");
    let events = events_when(&mut c, |e| e.iter().filter(|e| e["type"] == "payment.succeeded").count() >= 4);
    assert!(events.iter().any(|e| e["type"] == "payment.created"));
    stop_and_verify(server);
}

#[test]
fn two_merchants_charging_one_code_at_once_make_one_payment() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let shops: Vec<(String, String)> = ["120-81-47521", "220-81-62517"]
        .iter()
        .map(|brn| {
            let shop = onboard(&mut c, brn);
            let key = api_key(&mut c, &shop, ALL);
            let store = add_store(&mut c, &shop, "till");
            (key, store)
        })
        .collect();
    let alice = sign_up(&server, "010-7711-0001");
    credit(&mut c, &alice, 100_000);
    for round in 0..5 {
        let code = payment_code(&mut c, &alice, None);
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = shops
            .iter()
            .cloned()
            .map(|(key, store)| {
                let (mut c, code, barrier) = (server.client(), code.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    charge(&mut c, &key, &store, &code, &format!("race-{round}"), "1000").json()
                })
            })
            .collect();
        let mut outcomes: Vec<String> = racers
            .into_iter()
            .map(|t| {
                let v = t.join().unwrap();
                v["status"].as_str().map(String::from).unwrap_or_else(|| v["code"].as_str().unwrap().to_string())
            })
            .collect();
        outcomes.sort();
        assert_eq!(outcomes, ["payment_code_used", "succeeded"], "round {round}");
    }
    assert_eq!(alice.balance(&mut c).0, 95_000);
    stop_and_verify(server);
}

#[test]
fn kill_9_during_qr_and_code_payments_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, ALL);
    let store = add_store(&mut c, &shop, "강남점");
    let payload = call(&mut c, "GET", &format!("/v1/stores/{store}/qr"), Some(&key), None).json()["payload"]
        .as_str()
        .unwrap()
        .to_string();
    let users: Vec<User> = (0..4).map(|i| sign_up(&server, &format!("010-7712-{i:04}"))).collect();
    for u in &users {
        credit(&mut c, u, 400_000);
    }
    // Each worker pays by the static code (keyed), or shows a code that the merchant charges
    // (keyed): what was acknowledged is (payment id, request path, key, body) to retry later.
    type Ack = (String, String, String, String, Value);
    let acknowledged: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (w, user) in users.iter().cloned().enumerate() {
        let (mut c, key, store, payload) = (server.client(), key.clone(), store.clone(), payload.clone());
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let idem = format!("w{w}-{i}");
                let (path, token, body) = if i % 2 == 0 {
                    ("/v1/me/qr-payments".to_string(), user.token.clone(), json!({"payload": payload, "amount": "100"}))
                } else {
                    let auth = format!("Bearer {}", user.token);
                    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
                    let Ok(r) = c.request("POST", "/v1/me/payment-codes", &headers, b"{}") else { return };
                    if r.status != 201 {
                        return;
                    }
                    let code = r.json()["code"].as_str().unwrap().to_string();
                    let body = json!({"payment_code": code, "amount": "100", "currency": "KRW", "order_id": idem, "store_id": store});
                    ("/v1/payments".to_string(), key.clone(), body)
                };
                let auth = format!("Bearer {token}");
                let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Idempotency-Key", idem.as_str())];
                let Ok(r) = c.request("POST", &path, &headers, body.to_string().as_bytes()) else { return };
                if r.status != 201 {
                    return;
                }
                let id = r.json()["id"].as_str().unwrap().to_string();
                acknowledged.lock().unwrap().push((id, path, token, idem, body));
            }
        }));
    }
    let acked = kill_9_under_load(server, &acknowledged, 60, &stop, workers);
    let server = Server::start(dir.path());
    let mut c = server.client();
    for (id, path, token, idem, body) in &acked {
        let p = call(&mut c, "GET", &format!("/v1/payments/{id}"), Some(&key), None).json();
        assert_eq!(p["status"], "succeeded", "an acknowledged payment was lost: {p}");
        // A retry after the crash answers the first payment; it pays nothing again.
        let retry = keyed(&mut c, "POST", path, Some(token), idem, body);
        assert_eq!((retry.status, retry.json()["id"].as_str()), (201, Some(id.as_str())), "{}", retry.json());
    }
    let paid_by_users: u64 = users.iter().map(|u| 400_000 - u.balance(&mut c).0).sum();
    let captured: u64 = all_payments(&mut c, &key).iter().map(|p| number(&p["amount_captured"])).sum();
    assert_eq!(paid_by_users, captured, "what users paid is what the merchant captured");
    stop_and_verify(server);
}
