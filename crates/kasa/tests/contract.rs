//! The API's one contract, checked on every response of a tour through the whole API: money
//! is a decimal string of minor units next to `"currency": "KRW"`, times in `*_at` fields are
//! RFC 3339 UTC strings with nanoseconds, ids are strings, every list is `{data, has_more,
//! next_cursor}`, every error is problem+json whose `type` resolves to an anchor of
//! `/docs/problems`; the OpenAPI document describes every route the server answers; and the
//! outbox's events tell the tour in order, page by page.

mod support;

use kasa::client::{Client, Response};
use serde_json::{json, Value};
use support::*;

/// Fields that hold money in the wallet API.
const MONEY: &[&str] = &[
    "amount",
    "fee",
    "total",
    "balance",
    "available_balance",
    "pin_free_amount",
    "withdrawal_fee",
    "balance_after",
    "value",
    "remaining",
    "used",
];
/// Fields of the wallet that are a limit with what is used and left of it.
const LIMITS: &[&str] = &["balance_cap", "daily_outgoing", "pin_free"];

/// Every response of the tour, with what it was.
#[derive(Default)]
struct Tour {
    responses: Vec<(String, Response)>,
    /// The ids the events test looks for: user, top-up, transfer.
    user_id: String,
    top_up_id: String,
    transfer_id: String,
}

impl Tour {
    fn keep(&mut self, what: &str, r: Response) -> Value {
        let v = r.json();
        self.responses.push((what.to_string(), r));
        v
    }
}

/// What the contract checker counted, so that a tour that checked nothing fails.
#[derive(Default, Debug)]
struct Seen {
    money: usize,
    times: usize,
    lists: usize,
    ids: usize,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `2026-11-30T05:27:21.123456789Z`.
fn is_rfc3339_nanos(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() == 30
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..29)
        && b[29] == b'Z'
}

/// A list is `{data, has_more, next_cursor}` (a lookup by ids, `{data, not_found}`, is not
/// a list: it answers exactly the ids asked).
fn check_list(what: &str, map: &serde_json::Map<String, Value>, seen: &mut Seen) {
    if map.contains_key("not_found") {
        return;
    }
    let (has_more, next) = (&map["has_more"], &map["next_cursor"]);
    assert!(has_more.is_boolean(), "{what}: a list without has_more");
    assert!(next.is_string() || next.is_null(), "{what}: next_cursor is {next}");
    assert_eq!(has_more.as_bool(), Some(next.is_string()), "{what}: has_more and next_cursor disagree");
    seen.lists += 1;
}

/// Checks one JSON value of the wallet API against the contract; `currency` says whether an
/// enclosing object has `"currency": "KRW"`.
fn check(what: &str, path: &str, v: &Value, currency: bool, seen: &mut Seen) {
    match v {
        Value::Object(map) => {
            let currency = currency || map.get("currency") == Some(&json!("KRW"));
            if let Some(currency) = map.get("currency") {
                assert_eq!(currency, "KRW", "{what}: {path}");
            }
            for (key, value) in map {
                let at = format!("{path}.{key}");
                if MONEY.contains(&key.as_str()) && !value.is_null() {
                    let ok = value.as_str().is_some_and(is_digits);
                    assert!(ok, "{what}: {at} is money, found {value}");
                    assert!(currency, "{what}: {at} has no currency next to it");
                    seen.money += 1;
                }
                if LIMITS.contains(&key.as_str()) && value.is_string() {
                    // A tier's limits, as operators set them.
                    assert!(value.as_str().is_some_and(is_digits), "{what}: {at} is money, found {value}");
                    assert!(currency, "{what}: {at} has no currency next to it");
                    seen.money += 1;
                }
                if LIMITS.contains(&key.as_str()) && value.is_object() {
                    for part in ["limit", "used", "remaining"] {
                        assert!(value[part].as_str().is_some_and(is_digits), "{what}: {at}.{part} is {}", value[part]);
                    }
                    assert!(currency, "{what}: {at} has no currency next to it");
                }
                if key.ends_with("_at") {
                    assert!(value.as_str().is_some_and(is_rfc3339_nanos), "{what}: {at} is {value}");
                    seen.times += 1;
                }
                if key.ends_with("_until") && !value.is_null() {
                    assert!(value.as_str().is_some_and(is_rfc3339_nanos), "{what}: {at} is {value}");
                }
                if key == "id" || key.ends_with("_id") {
                    assert!(value.is_string() || value.is_null(), "{what}: {at} is {value}");
                    seen.ids += 1;
                }
                if key == "data" && value.is_array() && path.is_empty() {
                    check_list(what, map, seen);
                }
                check(what, &at, value, currency, seen);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(what, &format!("{path}[{i}]"), item, currency, seen);
            }
        }
        _ => {}
    }
}

/// A tour through every part of the API, keeping every response: sign-ups, sessions, the
/// wallet, bank accounts, a top-up and a withdrawal settled by the sandbox bank, transfers,
/// a hold and its cancel, money requests, a split bill, settings, history pages, the
/// operators' endpoints and ledger, and a set of refusals.
fn tour(server: &Server) -> Tour {
    let mut t = Tour::default();
    let mut c = server.client();
    let mut anon = server.client_from(next_address());
    let mut users = Vec::new();
    for phone in ["010-9100-0001", "010-9100-0002"] {
        let v = t.keep(
            "verification",
            call(&mut anon, "POST", "/v1/phone-verifications", None, Some(&json!({"phone": phone}))),
        );
        let sms = t.keep("sandbox sms", get(&mut c, &format!("/v1/admin/sandbox/sms?phone={}", query_value(phone))));
        let body = json!({"phone": phone, "name": "Tour", "pin": PIN, "verification_id": v["id"], "code": sms["data"][0]["code"]});
        let user = t.keep("sign-up", call(&mut anon, "POST", "/v1/users", None, Some(&body)));
        let s =
            t.keep("login", call(&mut anon, "POST", "/v1/sessions", None, Some(&json!({"phone": phone, "pin": PIN}))));
        users.push(User {
            id: user["id"].as_str().unwrap().into(),
            phone: phone.into(),
            token: s["token"].as_str().unwrap().into(),
        });
    }
    let (a, b) = (users[0].clone(), users[1].clone());
    t.user_id = a.id.clone();
    t.keep("me", a.get(&mut c, "/v1/me"));
    t.keep("wallet", a.get(&mut c, "/v1/me/wallet"));
    let bank = t.keep(
        "link",
        a.post(
            &mut c,
            "/v1/me/bank-accounts",
            &json!({"bank_code": "088", "account_number": "9100910001", "holder_name": "Tour"}),
        ),
    );
    let bank = bank["id"].as_str().unwrap().to_string();
    t.keep("bank accounts", a.get(&mut c, "/v1/me/bank-accounts"));
    let top_up = t.keep(
        "top-up",
        a.post(&mut c, "/v1/me/top-ups", &json!({"bank_account_id": bank, "amount": "100000", "currency": "KRW"})),
    );
    t.top_up_id = top_up["id"].as_str().unwrap().to_string();
    let path = format!("/v1/me/top-ups/{}", t.top_up_id);
    settled(&mut c, &a, &path);
    t.keep("top-up settled", a.get(&mut c, &path));
    let w =
        t.keep("withdrawal", a.post(&mut c, "/v1/me/withdrawals", &json!({"bank_account_id": bank, "amount": 10000})));
    let path = format!("/v1/me/withdrawals/{}", w["id"].as_str().unwrap());
    settled(&mut c, &a, &path);
    t.keep("withdrawal settled", a.get(&mut c, &path));
    let sent = t
        .keep("send", a.post(&mut c, "/v1/transfers", &json!({"to_user_id": b.id, "amount": "20000", "memo": "tour"})));
    t.transfer_id = sent["id"].as_str().unwrap().to_string();
    t.keep("transfer", b.get(&mut c, &format!("/v1/transfers/{}", t.transfer_id)));
    let held = t.keep("hold", a.post(&mut c, "/v1/transfers", &json!({"to_phone": "010-9100-0099", "amount": "1000"})));
    t.keep("cancel", a.post_empty(&mut c, &format!("/v1/transfers/{}/cancel", held["id"].as_str().unwrap())));
    let request =
        t.keep("request", a.post(&mut c, "/v1/money-requests", &json!({"from_user_id": b.id, "amount": "3000"})));
    let request = request["id"].as_str().unwrap().to_string();
    t.keep("pay", b.post(&mut c, &format!("/v1/money-requests/{request}/pay"), &json!({})));
    t.keep("request read", a.get(&mut c, &format!("/v1/money-requests/{request}")));
    t.keep("requests", a.get(&mut c, "/v1/money-requests?role=requester&limit=1"));
    let bill = t.keep(
        "split bill",
        a.post(&mut c, "/v1/split-bills", &json!({"total": "9000", "shares": [{"user_id": b.id}], "memo": "tour"})),
    );
    t.keep("split bill read", b.get(&mut c, &format!("/v1/split-bills/{}", bill["id"].as_str().unwrap())));
    t.keep("settings", a.post(&mut c, "/v1/me/settings", &json!({"pin_free_amount": "40000"})));
    let page = t.keep("history", a.get(&mut c, "/v1/me/transactions?limit=2"));
    let cursor = page["next_cursor"].as_str().expect("more history").to_string();
    t.keep("history page 2", a.get(&mut c, &format!("/v1/me/transactions?limit=2&cursor={cursor}")));
    t.keep("history of b", b.get(&mut c, "/v1/me/transactions"));

    t.keep("admin user", get(&mut c, &format!("/v1/admin/users/{}", b.id)));
    let adjust = json!({"amount": "500", "direction": "credit", "reason": "tour"});
    t.keep("adjustment", post(&mut c, &format!("/v1/admin/users/{}/adjustments", b.id), &adjust));
    t.keep("tier", post(&mut c, &format!("/v1/admin/users/{}/tier", b.id), &json!({"tier": "verified"})));
    t.keep(
        "tier limits",
        post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": "500000", "daily_outgoing": "500000"})),
    );
    t.keep("fees", post(&mut c, "/v1/admin/fees", &json!({"withdrawal_fee": "0"})));
    t.keep("events", get(&mut c, "/v1/admin/events?limit=5"));
    t.keep("all sms", get(&mut c, "/v1/admin/sandbox/sms?limit=1"));
    t.keep(
        "ledger accounts",
        post(&mut c, "/v1/ledger/accounts", &json!([account(1, 1, &["history"]), account(2, 1, &[])])),
    );
    t.keep("ledger transfer", post(&mut c, "/v1/ledger/transfers", &transfer(10, 2, 1, 5)));
    t.keep("ledger account", get(&mut c, "/v1/ledger/accounts/1"));
    t.keep("ledger transfers", get(&mut c, "/v1/ledger/accounts/1/transfers"));
    t.keep("ledger balances", get(&mut c, "/v1/ledger/accounts/1/balances"));
    t.keep("ledger lookup", post(&mut c, "/v1/ledger/transfers/lookup", &json!({"ids": ["10", "11"]})));

    // Refusals of many kinds.
    t.keep("no session", call(&mut c, "GET", "/v1/me", None, None));
    t.keep("no operator key", call(&mut anon, "GET", "/v1/admin/users/1", None, None));
    t.keep("unknown route", get(&mut c, "/v1/nothing"));
    t.keep("wrong method", call(&mut c, "PUT", "/v1/me", Some(&a.token), None));
    t.keep("malformed", a.post(&mut c, "/v1/transfers", &json!([1])));
    t.keep("unknown field", a.post(&mut c, "/v1/transfers", &json!({"to_user_id": b.id, "amount": "1", "x": 1})));
    t.keep("currency", a.post(&mut c, "/v1/transfers", &json!({"to_user_id": b.id, "amount": "1", "currency": "USD"})));
    t.keep(
        "insufficient",
        a.post(&mut c, "/v1/transfers", &json!({"to_user_id": b.id, "amount": "400000", "pin": PIN})),
    );
    t.keep("limit", a.post(&mut c, "/v1/me/top-ups", &json!({"bank_account_id": bank, "amount": "499000"})));
    t.keep("pin required", a.post(&mut c, "/v1/transfers", &json!({"to_user_id": b.id, "amount": "45000"})));
    t.keep(
        "wrong pin",
        a.post(&mut c, "/v1/transfers", &json!({"to_user_id": b.id, "amount": "45000", "pin": "975310"})),
    );
    t.keep("to self", a.post(&mut c, "/v1/transfers", &json!({"to_user_id": a.id, "amount": "1"})));
    t.keep("not held", a.post_empty(&mut c, &format!("/v1/transfers/{}/cancel", t.transfer_id)));
    t.keep("not pending", b.post(&mut c, &format!("/v1/money-requests/{request}/pay"), &json!({})));
    t.keep("invalid shares", a.post(&mut c, "/v1/split-bills", &json!({"total": "1", "shares": []})));
    t.keep(
        "already linked",
        a.post(
            &mut c,
            "/v1/me/bank-accounts",
            &json!({"bank_code": "088", "account_number": "9100910001", "holder_name": "Tour"}),
        ),
    );
    t.keep("weak pin", call(&mut anon, "POST", "/v1/users", None, Some(&json!({"phone": "010-9100-0003", "name": "x", "pin": "111111", "verification_id": "vrf_x", "code": "123456"}))));
    t.keep(
        "invalid phone",
        call(&mut anon, "POST", "/v1/phone-verifications", None, Some(&json!({"phone": "00012345678"}))),
    );
    t.keep("invalid parameter", a.get(&mut c, "/v1/me/transactions?limit=0"));
    t.keep(
        "legal maxima",
        post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": "500001", "daily_outgoing": "1"})),
    );
    t.keep("ledger refusal", post(&mut c, "/v1/ledger/transfers", &transfer(11, 99, 1, 1)));
    t.keep("ledger exists", post(&mut c, "/v1/ledger/transfers", &transfer(10, 2, 1, 6)));
    t.keep("key reused", a.keyed(&mut c, "/v1/transfers", "k", &json!({"to_user_id": b.id, "amount": "1"})));
    t.keep("key reused", a.keyed(&mut c, "/v1/transfers", "k", &json!({"to_user_id": b.id, "amount": "2"})));
    let r = c
        .request(
            "POST",
            "/v1/transfers",
            &[("Authorization", &format!("Bearer {}", a.token)), ("Content-Type", "text/plain")],
            b"{}",
        )
        .unwrap();
    t.keep("media type", r);
    t.keep("logout", call(&mut c, "DELETE", "/v1/sessions/current", Some(&b.token), None));
    t
}

/// Every response of the tour keeps the contract, and every problem's `type` resolves.
#[test]
fn every_response_of_a_tour_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let tour = tour(&server);
    let mut c = server.client();
    let problems = get(&mut c, "/docs/problems");
    assert_eq!(problems.status, 200);
    assert!(problems.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    let problems = String::from_utf8(problems.body).unwrap();

    let mut seen = Seen::default();
    let mut codes = std::collections::BTreeSet::new();
    for (what, r) in &tour.responses {
        let content_type = r.header("content-type").unwrap_or("");
        if r.status == 204 {
            assert!(r.body.is_empty(), "{what}");
            continue;
        }
        let v = r.json();
        assert!(!v.is_null(), "{what}: the body is not JSON: {}", String::from_utf8_lossy(&r.body));
        if r.status < 400 {
            assert!((200..300).contains(&r.status), "{what}: {}", r.status);
            assert_eq!(content_type, "application/json", "{what}");
            if what.starts_with("ledger") {
                // The ledger API keeps TigerBeetle's shapes: ids, amounts and nanosecond
                // timestamps as decimal strings, and no currency.
                let objects = v["data"].as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
                for object in &objects {
                    for field in ["id", "amount", "timestamp", "credits_posted", "debit_account_id"] {
                        if let Some(value) = object.get(field) {
                            assert!(value.as_str().is_some_and(is_digits), "{what}: {field} is {value}");
                        }
                    }
                }
                if let Some(map) = v.as_object().filter(|m| m.contains_key("data")) {
                    check_list(what, map, &mut seen);
                }
                continue;
            }
            check(what, "", &v, false, &mut seen);
        } else {
            assert!(r.status < 500, "{what}: {v}");
            assert_eq!(content_type, "application/problem+json", "{what}");
            let code = v["code"].as_str().unwrap_or_else(|| panic!("{what}: no code in {v}"));
            assert_eq!(v["type"], format!("/docs/problems#{code}"), "{what}");
            assert_eq!(v["status"], r.status, "{what}");
            assert!(v["title"].is_string() && v["detail"].is_string(), "{what}: {v}");
            assert!(problems.contains(&format!("id=\"{code}\"")), "{what}: /docs/problems has no anchor for {code}");
            if code == "limit_exceeded" {
                check(what, "", &v, false, &mut seen);
            }
            codes.insert(code.to_string());
        }
    }
    eprintln!("{seen:?}; problem codes: {codes:?}");
    assert!(seen.money >= 50 && seen.times >= 40 && seen.lists >= 10 && seen.ids >= 80, "{seen:?}");
    for expected in [
        "unauthorized",
        "not_found",
        "method_not_allowed",
        "malformed_json",
        "invalid_field",
        "currency_not_supported",
        "insufficient_funds",
        "limit_exceeded",
        "pin_required",
        "wrong_pin",
        "to_self",
        "not_held",
        "not_pending",
        "invalid_shares",
        "already_linked",
        "weak_pin",
        "invalid_phone",
        "invalid_parameter",
        "above_legal_maxima",
        "debit_account_not_found",
        "exists_with_different_amount",
        "idempotency_key_reused",
        "unsupported_media_type",
    ] {
        assert!(codes.contains(expected), "the tour met no {expected}: {codes:?}");
    }
    stop_and_verify(server);
}

/// Routes a client might try: every documented one, and plausible ones that are not part of
/// the API. Path parameters are filled in with something of the right shape.
const CANDIDATES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/ledger/accounts"),
    ("GET", "/v1/ledger/accounts"),
    ("POST", "/v1/ledger/transfers"),
    ("GET", "/v1/ledger/transfers"),
    ("POST", "/v1/ledger/accounts/lookup"),
    ("POST", "/v1/ledger/transfers/lookup"),
    ("GET", "/v1/ledger/accounts/{id}"),
    ("DELETE", "/v1/ledger/accounts/{id}"),
    ("GET", "/v1/ledger/transfers/{id}"),
    ("GET", "/v1/ledger/accounts/{id}/transfers"),
    ("GET", "/v1/ledger/accounts/{id}/balances"),
    ("POST", "/v1/phone-verifications"),
    ("GET", "/v1/phone-verifications/{id}"),
    ("POST", "/v1/users"),
    ("GET", "/v1/users"),
    ("GET", "/v1/users/{id}"),
    ("POST", "/v1/pin-resets"),
    ("POST", "/v1/sessions"),
    ("GET", "/v1/sessions"),
    ("DELETE", "/v1/sessions/current"),
    ("GET", "/v1/sessions/current"),
    ("GET", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("DELETE", "/v1/me"),
    ("GET", "/v1/me/wallet"),
    ("GET", "/v1/me/transactions"),
    ("POST", "/v1/me/settings"),
    ("GET", "/v1/me/settings"),
    ("POST", "/v1/me/bank-accounts"),
    ("GET", "/v1/me/bank-accounts"),
    ("DELETE", "/v1/me/bank-accounts/{id}"),
    ("POST", "/v1/me/top-ups"),
    ("GET", "/v1/me/top-ups"),
    ("GET", "/v1/me/top-ups/{id}"),
    ("POST", "/v1/me/withdrawals"),
    ("GET", "/v1/me/withdrawals"),
    ("GET", "/v1/me/withdrawals/{id}"),
    ("POST", "/v1/transfers"),
    ("GET", "/v1/transfers"),
    ("GET", "/v1/transfers/{id}"),
    ("POST", "/v1/transfers/{id}/cancel"),
    ("POST", "/v1/money-requests"),
    ("GET", "/v1/money-requests"),
    ("GET", "/v1/money-requests/{id}"),
    ("POST", "/v1/money-requests/{id}/pay"),
    ("POST", "/v1/money-requests/{id}/decline"),
    ("POST", "/v1/split-bills"),
    ("GET", "/v1/split-bills"),
    ("GET", "/v1/split-bills/{id}"),
    ("GET", "/v1/admin/users"),
    ("GET", "/v1/admin/users/{id}"),
    ("POST", "/v1/admin/users/{id}/tier"),
    ("POST", "/v1/admin/users/{id}/unlock"),
    ("POST", "/v1/admin/users/{id}/adjustments"),
    ("GET", "/v1/admin/users/{id}/adjustments"),
    ("POST", "/v1/admin/tiers/{tier}"),
    ("GET", "/v1/admin/tiers/{tier}"),
    ("POST", "/v1/admin/fees"),
    ("GET", "/v1/admin/fees"),
    ("GET", "/v1/admin/events"),
    ("GET", "/v1/admin/sandbox/sms"),
    ("POST", "/v1/admin/test-clock/advance"),
    ("POST", "/v1/admin/merchants"),
    ("GET", "/v1/admin/merchants"),
    ("GET", "/v1/admin/merchants/{id}"),
    ("POST", "/v1/admin/merchants/{id}/suspend"),
    ("POST", "/v1/admin/merchants/{id}/reactivate"),
    ("POST", "/v1/admin/merchants/{id}/close"),
    ("POST", "/v1/admin/merchants/{id}/stores"),
    ("GET", "/v1/admin/merchants/{id}/stores"),
    ("POST", "/v1/admin/merchants/{id}/api-keys"),
    ("GET", "/v1/admin/merchants/{id}/api-keys"),
    ("POST", "/v1/admin/merchants/{id}/api-keys/{key_id}/revoke"),
    ("POST", "/v1/payments"),
    ("GET", "/v1/payments"),
    ("GET", "/v1/payments/{id}"),
    ("POST", "/v1/payments/{id}/cancel"),
    ("POST", "/v1/payments/{id}/capture"),
    ("POST", "/v1/payments/{id}/refunds"),
    ("GET", "/v1/payments/{id}/refunds"),
    ("GET", "/v1/me/payments/{id}"),
    ("POST", "/v1/me/payments/{id}/approve"),
    ("POST", "/v1/me/payments/{id}/decline"),
    ("GET", "/v1/payouts"),
    ("GET", "/v1/payouts/{id}"),
    ("GET", "/v1/payouts/{id}/items.csv"),
    ("GET", "/v1/admin/payouts"),
    ("POST", "/v1/webhook-endpoints"),
    ("GET", "/v1/webhook-endpoints"),
    ("DELETE", "/v1/webhook-endpoints/{id}"),
    ("POST", "/v1/webhook-endpoints/{id}/rotate-secret"),
    ("GET", "/v1/events"),
    ("POST", "/v1/events/{id}/redeliver"),
    ("POST", "/v1/qr/decode"),
    ("GET", "/v1/stores/{id}/qr"),
    ("POST", "/v1/stores/{id}/qr"),
    ("GET", "/v1/stores/{id}/qr.png"),
    ("GET", "/v1/stores/{id}/qr.svg"),
    ("POST", "/v1/me/qr-payments"),
    ("POST", "/v1/me/payment-codes"),
    ("POST", "/v1/admin/partners"),
    ("GET", "/v1/admin/partners"),
    ("GET", "/v1/admin/partners/{id}"),
    ("POST", "/v1/admin/partners/{id}/suspend"),
    ("POST", "/v1/admin/partners/{id}/reactivate"),
    ("POST", "/v1/admin/partners/{id}/keys"),
    ("POST", "/v1/admin/partners/{id}/keys/{version}/revoke"),
    ("POST", "/v1/admin/fx/rates"),
    ("GET", "/v1/admin/fx/rates"),
    ("POST", "/v1/fx/quotes"),
    ("GET", "/v1/admin/settlement-windows"),
    ("GET", "/v1/admin/settlement-windows/{id}"),
    ("POST", "/v1/admin/settlement-windows/{id}/close"),
    ("GET", "/v1/admin/settlement-windows/{id}/items.csv"),
    ("GET", "/v1/admin/settlement-windows/{id}/items.json"),
    ("POST", "/v1/admin/settlement-windows/{id}/reconcile"),
    ("POST", "/v1/partner/payments/pay"),
    ("POST", "/v1/partner/payments/inquiryPayment"),
    ("POST", "/v1/partner/payments/cancelPayment"),
    ("POST", "/v1/partner/payments/refund"),
    ("GET", "/v1/partner/payments/pay"),
    ("POST", "/v1/me/overseas-payments/quote"),
    ("POST", "/v1/me/overseas-payments"),
    ("GET", "/v1/me/overseas-payments/{id}"),
    ("POST", "/v1/partner/overseas/refund"),
    ("GET", "/v1/admin/test-clock"),
    ("POST", "/v1/admin/merchant-imports"),
    ("GET", "/v1/admin/merchant-imports"),
    ("GET", "/v1/admin/merchant-imports/{id}"),
    ("GET", "/v1/admin/merchant-imports/{id}/report"),
    ("GET", "/v1/admin/journal/frames"),
    ("GET", "/v1/admin/replication"),
    ("POST", "/v1/admin/promote"),
    ("POST", "/v1/admin/demote"),
    ("GET", "/v1/read-model/me/transactions"),
    ("GET", "/v1/admin/read-model/payments"),
    ("GET", "/v1/admin/read-model/reports/daily-payments"),
    ("GET", "/v1/admin/read-model/status"),
    ("GET", "/v1/admin/read-model/rebuild"),
    ("GET", "/v2/me"),
];

/// Whether the server routes `method path` (a 404 "no route" or a 405 means it does not).
fn routed(c: &mut Client, method: &str, path: &str) -> bool {
    let concrete = path.replace("{id}", "1").replace("{tier}", "basic").replace("{version}", "1");
    let r = c.send(method, &concrete, "application/json", b"{}").unwrap();
    let no_route = r.status == 404 && r.json()["detail"].as_str().is_some_and(|d| d.starts_with("no route"));
    !no_route && r.status != 405
}

/// `/openapi.json` is the generated OpenAPI 3.1 document: it names its server, gives every
/// operation a unique `operationId` and every response a description, documents exactly the
/// routes the server answers (every documented operation is routed, and every candidate the
/// server routes is documented), and `/docs` serves the reference page. CI validates the
/// document itself with openapi-spec-validator (see `.ci/run`).
#[test]
fn the_openapi_document_describes_every_route_and_the_docs_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let r = get(&mut c, "/openapi.json");
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")));
    let doc = r.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    assert!(doc["servers"][0]["url"].as_str().is_some_and(|u| u.starts_with("http")), "{}", doc["servers"]);
    let paths = doc["paths"].as_object().unwrap();
    let mut operation_ids = std::collections::BTreeSet::new();
    let mut documented = std::collections::BTreeSet::new();
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(operation_ids.insert(id.to_string()), "operationId {id} twice");
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, response) in responses {
                let description = response["description"].as_str().unwrap_or("");
                assert!(!description.trim().is_empty(), "{method} {path} {status} has no description");
            }
            assert!(routed(&mut c, &method.to_uppercase(), path), "{method} {path} is documented but not routed");
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    assert_eq!(documented.len(), 117, "documented operations: {documented:?}");
    let mut routed_candidates = 0;
    for (method, path) in CANDIDATES {
        if routed(&mut c, method, path) {
            routed_candidates += 1;
            assert!(
                documented.contains(&(method.to_string(), path.to_string())),
                "{method} {path} is answered but not documented"
            );
        }
    }
    assert_eq!(routed_candidates, documented.len(), "every documented operation is among the candidates");

    // The reference page (Swagger UI, served from the binary) and the problem codes page.
    let r = get(&mut c, "/docs");
    let page = if r.status == 303 {
        assert_eq!(r.header("location"), Some("/docs/"));
        get(&mut c, "/docs/")
    } else {
        r
    };
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    let html = String::from_utf8_lossy(&page.body).to_lowercase();
    assert!(html.contains("<html") && html.contains("swagger"), "{html}");
    let problems = get(&mut c, "/docs/problems");
    assert!(problems.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    let problems = String::from_utf8(problems.body).unwrap();
    for code in
        ["busy", "rate_limited", "wrong_code", "verification_failed", "recipient_cannot_receive", "exceeds_credits"]
    {
        assert!(problems.contains(&format!("id=\"{code}\"")), "no anchor for {code}");
    }
    stop_and_verify(server);
}

/// The outbox tells the tour in order: the user's sign-up, the top-up started and settled,
/// the transfer completed; and paging with `after` (or `cursor`) and `next_cursor` visits
/// every event once, in order.
#[test]
fn events_tell_the_tour_in_order_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let tour = tour(&server);
    let mut c = server.client();
    // A last adjustment, whose event comes after every other (the log is in order).
    let last = json!({"amount": "777", "direction": "credit", "reason": "the last one"});
    assert_eq!(post(&mut c, &format!("/v1/admin/users/{}/adjustments", tour.user_id), &last).status, 201);
    let events = events_when(&mut c, |e| e.last().is_some_and(|e| e["data"]["amount"] == "777"));
    let all = get(&mut c, "/v1/admin/events?limit=1000").json();
    assert_eq!((&all["has_more"], &all["next_cursor"], &all["data"]), (&json!(false), &json!(null), &json!(events)));
    let seqs: Vec<u64> = events.iter().map(|e| number(&e["seq"])).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "numbered from 1 without gaps");
    let documented = [
        "user.signed_up",
        "user.pin_reset",
        "user.pin_locked",
        "user.tier_changed",
        "bank_account.linked",
        "funding.started",
        "funding.settled",
        "remittance.completed",
        "remittance.held",
        "remittance.claimed",
        "remittance.cancelled",
        "remittance.returned",
        "money_request.created",
        "money_request.paid",
        "money_request.declined",
        "wallet.adjusted",
    ];
    let types: std::collections::BTreeSet<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(types.iter().all(|t| documented.contains(t)), "{types:?}");
    for expected in [
        "user.tier_changed",
        "bank_account.linked",
        "remittance.held",
        "remittance.cancelled",
        "money_request.created",
        "money_request.paid",
        "wallet.adjusted",
    ] {
        assert!(types.contains(expected), "no {expected} in {types:?}");
    }
    for e in &events {
        assert_eq!(e["object"], "event");
        assert!(e["created_at"].as_str().is_some_and(is_rfc3339_nanos), "{e}");
    }
    let position = |kind: &str, field: &str, id: &str| {
        events
            .iter()
            .position(|e| e["type"] == kind && e["data"][field] == id)
            .unwrap_or_else(|| panic!("no {kind} with {field} {id} in {events:?}"))
    };
    let signed_up = position("user.signed_up", "user_id", &tour.user_id);
    let started = position("funding.started", "funding_id", &tour.top_up_id);
    let settled = position("funding.settled", "funding_id", &tour.top_up_id);
    let completed = position("remittance.completed", "transfer_id", &tour.transfer_id);
    assert!(
        signed_up < started && started < settled && settled < completed,
        "{signed_up} {started} {settled} {completed}"
    );
    assert_eq!(events[settled]["data"]["status"], "succeeded");
    assert_eq!(
        (&events[started]["data"]["amount"], &events[started]["data"]["currency"]),
        (&json!("100000"), &json!("KRW"))
    );
    assert_eq!(events[completed]["data"]["amount"], "20000");

    for (limit, parameter) in [(1, "after"), (3, "after"), (7, "cursor")] {
        let mut paged = Vec::new();
        let mut path = format!("/v1/admin/events?limit={limit}");
        loop {
            let page = get(&mut c, &path).json();
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= limit);
            paged.extend(data.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    assert_eq!(page["has_more"], true);
                    path = format!("/v1/admin/events?limit={limit}&{parameter}={cursor}");
                }
                None => break,
            }
        }
        assert_eq!(paged, events, "paging by {limit} with {parameter}");
    }
    let after = number(&events[completed]["seq"]);
    let rest = get(&mut c, &format!("/v1/admin/events?after={after}&limit=1000")).json();
    assert_eq!(rest["data"].as_array().unwrap()[..], events[completed + 1..]);
    for bad in ["limit=0", "limit=1001", "after=abc", "after=-1", "colour=red"] {
        assert_problem(&get(&mut c, &format!("/v1/admin/events?{bad}")), 400, "invalid_parameter");
    }
    stop_and_verify(server);
}

/// The outbox's events are durable like what made them: after a clean stop (the restart
/// starts from the snapshot, replaying no frame) and after a `kill -9` (the restart replays
/// the journal's tail), `GET /v1/admin/events` lists the same events, and new ones follow
/// them in order.
#[test]
fn events_survive_a_clean_stop_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let user = sign_up(&server, "010-9100-0101");
    credit(&mut c, &user, 1_000);
    let before = json!(events_when(&mut c, |e| e.len() >= 2));
    assert_eq!(before.as_array().unwrap().len(), 2, "{before}");
    assert_eq!(server.terminate().code(), Some(0));

    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_eq!(get(&mut c, "/v1/admin/events?limit=1000").json()["data"], before, "after a clean stop");
    credit(&mut c, &user, 1_000);
    let events = events_when(&mut c, |e| e.len() >= 3);
    assert_eq!((events.len(), &events[2]["seq"]), (3, &json!("3")), "{events:?}");
    server.kill9();

    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_eq!(get(&mut c, "/v1/admin/events?limit=1000").json()["data"], json!(events), "after kill -9");
    stop_and_verify(server);
}
