//! The hosted approval page in a real browser: a headless Chromium, driven through
//! chromedriver (`support/webdriver.rs`), opens a payment's `approval_url` on the real
//! binary, logs in with phone and PIN, and approves or declines. Every scenario is checked
//! twice: on the page, and through the merchant's `GET /v1/payments/{id}` and the wallet's
//! balance. Korean for a browser that prefers `ko`, English for one that prefers `en`.
//!
//! Needs Chromium and chromedriver (`.ci/install-browser`, which the test runs when
//! chromedriver is missing).

mod support;

use kasa::client::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use support::webdriver::Browser;
use support::*;

const ALL: &[&str] = &["payments:read", "payments:write"];

/// A merchant's return page: a local listener that answers every request with a small page
/// and keeps each request's line and headers.
struct ReturnPage {
    base: String,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
}

impl ReturnPage {
    fn start() -> ReturnPage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = Vec::new();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim_end() != "" {
                    head.push(line.trim_end().to_string());
                    line.clear();
                }
                if head.first().is_some_and(|l| !l.starts_with("GET /favicon")) {
                    record.lock().unwrap().push(head);
                }
                let body = "<!doctype html><title>shop</title><p id=\"shop\">back at the shop</p>";
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        ReturnPage { base, seen }
    }

    /// The request heads it got so far (favicons aside).
    fn seen(&self) -> Vec<Vec<String>> {
        self.seen.lock().unwrap().clone()
    }
}

/// A payment created by the merchant's key: its id and its `approval_url`.
fn create(c: &mut Client, key: &str, order: &str, amount: u64, extra: Value) -> (String, String) {
    let mut body =
        json!({"amount": amount.to_string(), "currency": "KRW", "order_id": order, "item_name": "아메리카노 2잔"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let r = call(c, "POST", "/v1/payments", Some(key), Some(&body));
    assert_eq!(r.status, 201, "{}", r.json());
    let p = r.json();
    (p["id"].as_str().unwrap().to_string(), p["approval_url"].as_str().unwrap().to_string())
}

/// The merchant's view of a payment: (status, cancel_reason, amount_captured).
fn merchant_view(c: &mut Client, key: &str, id: &str) -> (String, Option<String>, String) {
    let p = call(c, "GET", &format!("/v1/payments/{id}"), Some(key), None).json();
    let text = |v: &Value| v.as_str().map(str::to_string);
    (text(&p["status"]).unwrap(), text(&p["cancel_reason"]), text(&p["amount_captured"]).unwrap())
}

fn log_in_on_page(browser: &Browser, phone: &str, pin: &str) {
    browser.type_in("#phone", phone);
    browser.type_in("#pin", pin);
    browser.click("#login button");
}

#[test]
fn a_user_pays_without_the_pin_in_korean_and_goes_back_to_the_merchant() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kasa.log");
    let server = Server::launch(&dir.path().join("data"), &[], Launch { log: Some(&log), ..Launch::default() });
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, ALL);
    let store = post(&mut c, &format!("/v1/admin/merchants/{shop}/stores"), &json!({"name": "강남점"})).json();
    let alice = sign_up(&server, "010-7700-0101");
    credit(&mut c, &alice, 100_000);
    let shop_page = ReturnPage::start();
    let done = format!("{}/done", shop_page.base);
    let item = "<script>document.title='pwned'</script> 라떼";
    let extra = json!({"return_url": done, "item_name": item, "store_id": store["id"]});
    let (id, url) = create(&mut c, &key, "o-1", 4_500, extra);
    let page = format!("http://{}{url}", server.addr);
    let token = url.split("token=").nth(1).unwrap().to_string();

    let browser = Browser::start("ko-KR");
    browser.go(&page);
    assert_eq!((browser.state(), browser.text("h1")), ("waiting".into(), "결제 요청".into()));
    assert_eq!(browser.text("#merchant"), "카사상점");
    assert_eq!(browser.text("#store"), "강남점");
    assert_eq!(browser.text("#item"), item, "the item's markup is shown as text, not run");
    assert_eq!(browser.text("#amount"), "4,500원");
    assert_eq!(browser.title(), "Kasa 결제", "the item's script did not run");
    assert!(browser.cookie("kasa_pay").is_none(), "no session before the login");

    log_in_on_page(&browser, &alice.phone, PIN);
    assert_eq!(browser.state(), "waiting");
    assert_eq!(browser.url(), page, "back on the page after the login");
    assert!(browser.text("#user").contains("님으로 로그인했습니다"), "{}", browser.text("body"));
    assert!(browser.all("#pin").is_empty(), "within the PIN-free budget the PIN is not asked again");
    assert_eq!(browser.text("#approve button"), "4,500원 결제하기");
    // WebDriver shows the cookies of the page it is on (Path=/pay): read it here.
    let cookie = browser.cookie("kasa_pay").expect("the page's session cookie");
    assert!(cookie.starts_with("kasa_s_"), "an ordinary session token");
    browser.click("#approve button");

    // A real redirect (303) to the return URL with the outcome, and no referrer: the
    // page's URL holds the token.
    let back = format!("{done}?payment_id={id}&status=succeeded");
    assert_eq!(browser.url(), back);
    assert_eq!(browser.text("#shop"), "back at the shop");
    let seen = shop_page.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0][0], format!("GET /done?payment_id={id}&status=succeeded HTTP/1.1"));
    assert!(!seen[0].iter().any(|h| h.to_ascii_lowercase().starts_with("referer")), "{seen:?}");
    assert_eq!(merchant_view(&mut c, &key, &id), ("succeeded".into(), None, "4500".into()));
    assert_eq!(alice.balance(&mut c), (95_500, 95_500));

    // The form posted again with the browser's own cookie (a double submit): refused by the
    // core, shown as paid, and paid once.
    let cookie_header = format!("kasa_pay={cookie}");
    let form = format!("token={token}");
    let headers = [
        ("Cookie", cookie_header.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept-Language", "ko-KR,ko;q=0.9"),
    ];
    let again = c.request("POST", &format!("/pay/{id}/approve"), &headers, form.as_bytes()).unwrap();
    let html = String::from_utf8_lossy(&again.body).to_string();
    assert_eq!(again.status, 409, "{html}");
    assert!(html.contains("data-state=\"paid\"") && html.contains("이미 처리된 결제입니다."), "{html}");
    assert_eq!(alice.balance(&mut c), (95_500, 95_500), "paid once");

    // The link again: the outcome, and the way back.
    browser.go(&page);
    assert_eq!((browser.state(), browser.text("h1")), ("paid".into(), "결제 완료".into()));
    assert_eq!(browser.all("#back").len(), 1);
    assert!(browser.all("form").is_empty(), "nothing left to answer");

    // A wrong token, or none, or another payment's: one page that says nothing.
    for wrong in [
        format!("/pay/{id}?token={}", "0".repeat(32)),
        format!("/pay/{id}"),
        format!("/pay/pay_99?token={token}"),
        "/pay/mch_1?token=x".to_string(),
    ] {
        browser.go(&format!("http://{}{wrong}", server.addr));
        assert_eq!((browser.state(), browser.text("h1")), ("not_found".into(), "결제를 찾을 수 없습니다".into()));
        let r = c.request("GET", &wrong, &[("Accept-Language", "en")], b"").unwrap();
        let html = String::from_utf8_lossy(&r.body).to_string();
        assert_eq!(r.status, 404, "{wrong}");
        assert!(html.contains("Payment not found"), "{html}");
        for secret in ["카사상점", "라떼", "4,500", "pay_", "token"] {
            assert!(!html.contains(secret), "{wrong} shows {secret}: {html}");
        }
    }
    let forged = c
        .request(
            "POST",
            &format!("/pay/{id}/decline"),
            &[("Cookie", cookie_header.as_str()), ("Content-Type", "application/x-www-form-urlencoded")],
            format!("token={}", "f".repeat(32)).as_bytes(),
        )
        .unwrap();
    assert_eq!(forged.status, 404, "a form with a wrong token does nothing");

    // The headers of every page.
    let r = c.request("GET", &url, &[], b"").unwrap();
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert!(r.header("content-security-policy").is_some_and(|p| p.starts_with("default-src 'none';")));
    drop(browser);
    eprintln!("browser test (Korean, PIN-free, return URL) took {:?}", started.elapsed());
    stop_and_verify(server);

    // The page's requests are logged by their route, never with the token, the phone, the
    // PIN or the session.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("route=\"/pay/{id}/approve\"") && logged.contains("route=\"/pay/{id}/login\""), "{logged}");
    for secret in [token.as_str(), cookie.as_str(), alice.phone.as_str(), "01077000101", "7700-0101", PIN] {
        assert!(!logged.contains(secret), "the log holds {secret}");
    }
}

#[test]
fn above_the_pin_free_budget_the_page_asks_for_the_pin_in_english() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, ALL);
    let alice = sign_up(&server, "010-7700-0201");
    let bob = sign_up(&server, "010-7700-0202");
    credit(&mut c, &alice, 200_000);
    credit(&mut c, &bob, 1_000);
    let (id, url) = create(&mut c, &key, "o-1", 80_000, json!({}));
    let page = format!("http://{}{url}", server.addr);

    let browser = Browser::start("en-US");
    browser.go(&page);
    assert_eq!((browser.state(), browser.text("h1")), ("waiting".into(), "Payment request".into()));
    assert_eq!(browser.text("#amount"), "₩80,000");
    log_in_on_page(&browser, &alice.phone, "000000");
    assert_eq!(browser.state(), "waiting");
    assert!(browser.text("#notice").starts_with("Check the phone number and the PIN"), "{}", browser.text("body"));
    assert!(browser.cookie("kasa_pay").is_none(), "no session after a failed login");
    log_in_on_page(&browser, "010-7700-0299", PIN);
    let unknown = browser.text("#notice");
    assert!(unknown.starts_with("Check the phone number and the PIN"), "the same words for a number without a wallet");

    log_in_on_page(&browser, &alice.phone, PIN);
    assert_eq!(browser.all("#pin").len(), 1, "above the PIN-free budget the PIN is asked again");
    browser.type_in("#pin", "000000");
    browser.click("#approve button");
    assert_eq!(browser.state(), "waiting");
    assert_eq!(browser.text("#notice"), "Wrong PIN. 4 more wrong PINs lock PIN use for 30 minutes.");
    assert_eq!(merchant_view(&mut c, &key, &id), ("requires_approval".into(), None, "0".into()));
    assert_eq!(alice.balance(&mut c), (200_000, 200_000), "a wrong PIN moves nothing");
    browser.type_in("#pin", PIN);
    browser.click("#approve button");
    assert_eq!((browser.state(), browser.text("h1")), ("paid".into(), "Payment complete".into()));
    assert_eq!(browser.url(), page, "without a return URL, back to the page (a reload posts nothing)");
    assert!(browser.all("#back").is_empty(), "no return URL, no way back");
    assert_eq!(merchant_view(&mut c, &key, &id), ("succeeded".into(), None, "80000".into()));
    assert_eq!(alice.balance(&mut c), (120_000, 120_000));

    // Decline, already logged in.
    let (declined, url) = create(&mut c, &key, "o-2", 3_000, json!({}));
    browser.go(&format!("http://{}{url}", server.addr));
    assert!(browser.all("#pin").is_empty());
    browser.click("#decline button");
    assert_eq!((browser.state(), browser.text("h1")), ("declined".into(), "Payment declined".into()));
    assert_eq!(merchant_view(&mut c, &key, &declined), ("canceled".into(), Some("declined".into()), "0".into()));
    assert_eq!(alice.balance(&mut c), (120_000, 120_000));

    // Log out, log in as someone who cannot pay it: insufficient funds, nothing moves.
    let (poor, url) = create(&mut c, &key, "o-3", 5_000, json!({}));
    browser.go(&format!("http://{}{url}", server.addr));
    browser.click("#logout button");
    assert_eq!(browser.text("#notice"), "You logged out.");
    assert!(browser.cookie("kasa_pay").is_none(), "the cookie is gone");
    log_in_on_page(&browser, &bob.phone, PIN);
    browser.click("#approve button");
    assert_eq!(browser.state(), "waiting");
    assert_eq!(browser.text("#notice"), "Your wallet does not hold enough. Top it up and try again.");
    assert_eq!(merchant_view(&mut c, &key, &poor), ("requires_approval".into(), None, "0".into()));
    assert_eq!(bob.balance(&mut c), (1_000, 1_000));
    // Alice's approved payment is hers: Bob, with its link, sees only that it was answered.
    browser.go(&page);
    assert_eq!(browser.state(), "answered");
    assert!(!browser.text("body").contains("80,000"), "{}", browser.text("body"));
    drop(browser);
    eprintln!("browser test (English, PIN, decline, funds) took {:?}", started.elapsed());
    stop_and_verify(server);
}

#[test]
fn a_payment_answered_after_its_time_shows_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, ALL);
    let alice = sign_up(&server, "010-7700-0301");
    credit(&mut c, &alice, 10_000);
    let (id, url) = create(&mut c, &key, "o-1", 1_000, json!({"expires_in": 60}));

    let browser = Browser::start("ko-KR");
    browser.go(&format!("http://{}{url}", server.addr));
    log_in_on_page(&browser, &alice.phone, PIN);
    assert_eq!(browser.all("#approve").len(), 1);
    advance(&mut c, 61);
    browser.click("#approve button");
    assert_eq!((browser.state(), browser.text("h1")), ("expired".into(), "결제 시간 만료".into()));
    assert!(browser.all("form").is_empty());
    assert_eq!(merchant_view(&mut c, &key, &id), ("canceled".into(), Some("expired".into()), "0".into()));
    assert_eq!(alice.balance(&mut c), (10_000, 10_000));

    // The page's session lasts 10 minutes of engine time.
    let (_, url) = create(&mut c, &key, "o-2", 1_000, json!({}));
    browser.go(&format!("http://{}{url}", server.addr));
    assert_eq!(browser.all("#approve").len(), 1, "still logged in");
    advance(&mut c, 601);
    browser.go(&format!("http://{}{url}", server.addr));
    assert_eq!((browser.state(), browser.all("#login").len()), ("waiting".into(), 1), "logged out after 10 minutes");
    drop(browser);
    stop_and_verify(server);
}
