//! Nothing refused breaks the journal, and nothing accepted either: arbitrary and odd JSON,
//! odd forms, paths, query strings, content types and keys are thrown at every route the
//! server has, as an anonymous client, a logged-in user, a merchant's API key, the operator
//! and the approval page's cookie, next to inputs that are valid but sit on every bound
//! (names of 50 four-byte characters, memos of 100, odd phone forms, ledger records with odd
//! flags). The routes come from the OpenAPI document the server serves, which is made from
//! the router's own route list, plus the few outside it (the documentation and the approval
//! page): a new route is fuzzed without a change here, and one that takes a body or has an
//! id of a new kind fails the test until it gets a template. Every answer is well formed
//! (2xx JSON, a page, or problem+json with a registered shape, never a 5xx, never a Rust
//! type name), every route answers from itself at least once, and afterwards the state
//! comes back the same from the journal after `kill -9`, from the snapshot of a clean stop,
//! and `kasa verify` passes.

mod support;

use kasa::client::{Client, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::*;

/// Rust that must never reach a client.
const RUST: &[&str] = &[
    "struct", "u64", "u128", "u32", "u16", "i64", "usize", "Input", "Dec128", "Dec64", "Option<", "Vec<", "String",
    "serde", "::",
];

/// Odd JSON values, as JSON text (some are not valid JSON on purpose).
fn odd_values() -> Vec<String> {
    let mut v: Vec<String> = [
        "0",
        "1",
        "13",
        "99",
        "50000",
        "500001",
        "-1",
        "-0",
        "1.5",
        "1e3",
        "1E400",
        "-1e400",
        "0.0000001",
        "18446744073709551615",
        "18446744073709551616",
        "340282366920938463463374607431768211455",
        "340282366920938463463374607431768211456",
        "99999999999999999999999999999999999999999999999999",
        "007",
        "NaN",
        "Infinity",
        "null",
        "true",
        "false",
        "[]",
        "{}",
        "[1,2,3]",
        "{\"a\":1}",
        "\"\\ud800\"",
        "\"\\udfff\"",
        "\"\\u0000\"",
        "\"a\\u0000b\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let strings: Vec<String> = vec![
        String::new(),
        " ".into(),
        "0".into(),
        "1".into(),
        "-1".into(),
        "1.5".into(),
        "0x10".into(),
        "１２３".into(),
        "١٢٣".into(),
        "1000".into(),
        "1013".into(),
        "1099".into(),
        "KRW".into(),
        "USD".into(),
        "krw".into(),
        "basic".into(),
        "verified".into(),
        "credit".into(),
        "debit".into(),
        "gold".into(),
        "\u{1b}[31mred".into(),
        "line\nbreak".into(),
        "tab\there".into(),
        "\u{200b}".into(),
        "\u{202e}evil".into(),
        "e\u{301}".repeat(25),
        "🎉".repeat(50),
        "🎉".repeat(51),
        "가".repeat(100),
        "𝄞".repeat(100),
        "𝄞".repeat(101),
        "a".repeat(1_100),
        "m".repeat(2_000),
        "010-1234-5678".into(),
        "+82 10 1234 5678".into(),
        "+82 010 9999 0000".into(),
        "00012345678".into(),
        "000-1234-5678".into(),
        "+0012345678".into(),
        "+1 415 555 2671".into(),
        "+999999999999999".into(),
        "+9999999999999999".into(),
        "(010)1234.5678".into(),
        "010-1234-567".into(),
        "vrf_00000000000000000000000000000000".into(),
        "vrf_zz".into(),
        "135790".into(),
        "975310".into(),
        PIN.into(),
        "004".into(),
        "0888".into(),
        "110-123-456789".into(),
        "1234567890123456".into(),
        "12345678901234567".into(),
        "18446744073709551616".into(),
        "340282366920938463463374607431768211455".into(),
    ];
    v.extend(strings.iter().map(|s| serde_json::to_string(s).unwrap()));
    v.push(format!("{}1{}", "[".repeat(200), "]".repeat(200)));
    v.push(format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100)));
    v
}

/// Who sends a request: what its `Authorization` (or, on the approval page, its cookie) is.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Anonymous,
    /// A wallet user's session (Alice's).
    User,
    /// A merchant's API key with every scope (the first merchant's).
    Merchant,
    Operator,
    /// A session in the approval page's cookie (Bob's).
    Page,
    /// A partner's signed request (`ptn_1`'s key, over the body as sent).
    Partner,
}

/// What an operation's requests carry.
enum Template {
    /// Nothing (GET, DELETE).
    Empty,
    /// JSON bodies to mutate: the valid-looking ones of [`bodies`], or `{}` where the
    /// document names no body.
    Json(Vec<Value>),
    /// The approval page's form fields.
    Form(Vec<(&'static str, String)>),
}

/// One route to fuzz: an operation of the OpenAPI document, or a route outside it.
struct Operation {
    method: String,
    /// The template, `{id}` and all.
    path: String,
    /// Who the document says may call it (its security requirements).
    callers: Vec<Who>,
    /// Its query parameters.
    query: Vec<String>,
    template: Template,
}

/// What the setup made for the fuzz to aim at.
struct World {
    alice: User,
    bob: User,
    /// The first merchant's API key, with every scope.
    key: String,
    /// Each payment's approval token, by id (`pay_1`).
    tokens: BTreeMap<String, String>,
    /// The first merchant's events (`evt_12`).
    events: Vec<String>,
    /// Engine time less the machine's, in nanoseconds (the test clock moves ahead): partners
    /// sign their requests with engine time.
    clock_offset: i64,
}

/// The seed of partner `ptn_1`'s key.
const PARTNER_SEED: [u8; 32] = [5; 32];

/// Now on the machine's clock, in nanoseconds.
fn machine_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// Learns the test clock's lead from an advance's answer.
fn learn_clock(w: &mut World, answer: &Value) {
    let now = kasa_core::fx::parse_rfc3339(answer["now"].as_str().unwrap()).unwrap();
    w.clock_offset = now as i64 - machine_now();
}

/// A partner's headers for a request of `body` to `target`, signed at engine time.
fn partner_headers(w: &World, method: &str, target: &str, body: &[u8]) -> (String, String) {
    let time = kasa_server::json::Rfc3339((machine_now() + w.clock_offset) as u64).to_string();
    let path = target.split('?').next().unwrap();
    let message = kasa_server::partner_signature::message(method, path, "ptn_1", &time, body);
    let signer = kasa_server::partner_signature::Signer::from_seed(&PARTNER_SEED);
    (time, signer.header(1, &message))
}

/// A valid EMV merchant-presented QR payload (EMVCo's sample).
const QR: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

/// A valid-looking body for every operation that takes one (some have two), by method and
/// path as the document names them. `{token}` becomes the approval token of the payment in
/// the path. The test fails for an operation that takes a body and has none here, and for a
/// body here whose operation the document does not have.
fn bodies(w: &World) -> Vec<(&'static str, &'static str, Value)> {
    let bob = &w.bob.id;
    let vrf = "vrf_00000000000000000000000000000000";
    let account = json!({"bank_code": "088", "account_number": "9800980001", "holder_name": "Fuzz"});
    vec![
        // An NDJSON row, sent as JSON (the fuzz's content type): refused as a whole (415).
        (
            "POST",
            "/v1/admin/merchant-imports",
            json!({"partner_merchant_id": "AP-1", "business_name": "Fuzz", "display_name": "Fuzz", "brn": "2208162517",
                "mcc": "4111", "country": "KR", "city": "서울", "store_id": "S-1", "store_name": "Fuzz",
                "qr_payload": "00020101021152044111530341058021KR5904Fuzz6005Seoul6304A13A"}),
        ),
        ("POST", "/v1/phone-verifications", json!({"phone": "010-9800-0001"})),
        (
            "POST",
            "/v1/users",
            json!({"phone": "010-9800-0002", "name": "Fuzz", "pin": "975310", "verification_id": vrf, "code": "123456"}),
        ),
        (
            "POST",
            "/v1/pin-resets",
            json!({"phone": "010-9800-0001", "verification_id": vrf, "code": "123456", "new_pin": "582914"}),
        ),
        ("POST", "/v1/sessions", json!({"phone": "010-9800-0003", "pin": "975310"})),
        ("POST", "/v1/me/settings", json!({"pin_free_amount": "50000", "currency": "KRW"})),
        ("POST", "/v1/me/bank-accounts", account.clone()),
        ("POST", "/v1/me/top-ups", json!({"bank_account_id": "1", "amount": "1000", "currency": "KRW"})),
        (
            "POST",
            "/v1/me/withdrawals",
            json!({"bank_account_id": "1", "amount": "1000", "currency": "KRW", "pin": PIN}),
        ),
        (
            "POST",
            "/v1/transfers",
            json!({"to_user_id": bob, "amount": "10", "currency": "KRW", "memo": "fuzz", "pin": PIN}),
        ),
        ("POST", "/v1/transfers", json!({"to_phone": "010-9899-0000", "amount": "10", "memo": "held"})),
        ("POST", "/v1/money-requests", json!({"from_user_id": bob, "amount": "10", "currency": "KRW", "memo": "fuzz"})),
        ("POST", "/v1/money-requests/{id}/pay", json!({"pin": PIN})),
        (
            "POST",
            "/v1/split-bills",
            json!({"total": "100", "currency": "KRW", "shares": [{"user_id": bob, "amount": "10"}, {"phone": "+1 415 555 2671"}], "memo": "fuzz"}),
        ),
        ("POST", "/v1/ledger/accounts", json!({"id": "100", "ledger": 1, "code": 1, "flags": ["history"]})),
        (
            "POST",
            "/v1/ledger/transfers",
            json!({"id": "100", "debit_account_id": "2", "credit_account_id": "1", "amount": "5", "ledger": 1, "code": 1}),
        ),
        ("POST", "/v1/ledger/accounts/lookup", json!({"ids": ["1", "2"]})),
        ("POST", "/v1/ledger/transfers/lookup", json!({"ids": ["1"]})),
        ("POST", "/v1/admin/users/{id}/tier", json!({"tier": "verified"})),
        (
            "POST",
            "/v1/admin/users/{id}/adjustments",
            json!({"amount": "10", "currency": "KRW", "direction": "credit", "reason": "fuzz"}),
        ),
        (
            "POST",
            "/v1/admin/tiers/{tier}",
            json!({"balance_cap": "500000", "daily_outgoing": "500000", "currency": "KRW"}),
        ),
        ("POST", "/v1/admin/fees", json!({"withdrawal_fee": "0", "currency": "KRW"})),
        ("POST", "/v1/admin/test-clock/advance", json!({"seconds": 1})),
        (
            "POST",
            "/v1/admin/merchants",
            json!({"business_name": "주식회사 퍼즈", "display_name": "퍼즈", "brn": "134-86-72683", "mcc": "5812",
                "fee_bps": 250, "settlement_bank_account": account}),
        ),
        ("POST", "/v1/admin/merchants/{id}/stores", json!({"name": "퍼즈점"})),
        ("POST", "/v1/admin/merchants/{id}/api-keys", json!({"name": "fuzz", "scopes": ["payments:read"]})),
        (
            "POST",
            "/v1/payments",
            json!({"amount": "1000", "currency": "KRW", "order_id": "fuzz-1", "item_name": "퍼즈", "capture_method": "manual",
                "store_id": "str_1", "expires_in": 86400, "return_url": "https://shop.example/back"}),
        ),
        ("POST", "/v1/payments/{id}/capture", json!({"amount": "500"})),
        ("POST", "/v1/payments/{id}/refunds", json!({"amount": "100", "currency": "KRW", "reason": "fuzz"})),
        ("POST", "/v1/me/payments/{id}/approve", json!({"token": "{token}", "pin": PIN})),
        ("POST", "/v1/me/payments/{id}/decline", json!({"token": "{token}"})),
        ("POST", "/v1/webhook-endpoints", json!({"url": "http://localhost:9/kasa", "events": ["payment.approved"]})),
        ("POST", "/v1/qr/decode", json!({ "payload": QR })),
        (
            "POST",
            "/v1/stores/{id}/qr",
            json!({"amount": "1000", "order_id": "fuzz-qr-1", "item_name": "퍼즈", "expires_in": 300}),
        ),
        ("POST", "/v1/me/qr-payments", json!({"payload": store_payload(1), "amount": "1000"})),
        ("POST", "/v1/me/qr-payments", json!({"payload": QR, "amount": "1000", "pin": PIN})),
        ("POST", "/v1/me/payment-codes", json!({"pin": PIN})),
        (
            "POST",
            "/v1/payments",
            json!({"payment_code": "97000000000000000000", "amount": "100", "currency": "KRW", "order_id": "fuzz-code",
                "store_id": "str_1"}),
        ),
        (
            "POST",
            "/v1/admin/partners",
            json!({"name": "fuzz_ptn", "home_currency": "CNY", "settlement_currency": "CNY", "fee_bps": 100,
                "settlement_bank_account": account}),
        ),
        ("POST", "/v1/admin/partners/{id}/keys", json!({"public_key": "A".repeat(43)})),
        ("POST", "/v1/admin/fx/rates", json!({"rates": [{"pair": "CNY/KRW", "mid": "190.5", "spread_bps": 100}]})),
        (
            "POST",
            "/v1/admin/settlement-windows/{id}/reconcile",
            json!({"csv": "item_type,payment_request_id,refund_request_id,amount,settlement_amount,status\npayment,setup-p1,,1000,531,succeeded\n"}),
        ),
        (
            "POST",
            "/v1/fx/quotes",
            json!({"sell_currency": "CNY", "buy_currency": "KRW", "buy_amount": "1000", "expires_in": 600}),
        ),
        (
            "POST",
            "/v1/partner/payments/pay",
            json!({"paymentRequestId": "fuzz-p1", "paymentAmount": {"currency": "KRW", "value": "1000"},
                "customerId": "c-1", "codeValue": store_payload(1), "order": {"orderDescription": "퍼즈"}}),
        ),
        (
            "POST",
            "/v1/partner/payments/pay",
            json!({"paymentRequestId": "fuzz-p2", "paymentAmount": {"currency": "KRW", "value": "1000"},
                "customerId": "c-1", "storeId": "str_1", "paymentQuote": {"quoteId": "qt_1"}}),
        ),
        ("POST", "/v1/partner/payments/inquiryPayment", json!({"paymentRequestId": "setup-p1"})),
        ("POST", "/v1/me/overseas-payments/quote", json!({"payload": QR})),
        ("POST", "/v1/me/overseas-payments", json!({"payload": QR, "quote_id": "qt_1", "pin": PIN})),
        (
            "POST",
            "/v1/partner/overseas/refund",
            json!({"refundRequestId": "fuzz-or1", "paymentRequestId": "kasa-op-1",
                "refundAmount": {"currency": "CNY", "value": "100"}}),
        ),
        ("POST", "/v1/partner/payments/cancelPayment", json!({"paymentRequestId": "fuzz-p1"})),
        (
            "POST",
            "/v1/partner/payments/refund",
            json!({"refundRequestId": "fuzz-r1", "paymentRequestId": "setup-p1",
                "refundAmount": {"currency": "KRW", "value": "100"}}),
        ),
    ]
}

/// A store's static Kasa code, as `GET /v1/stores/{id}/qr` gives it.
fn store_payload(store_id: u64) -> String {
    let store = kasa_core::qr::kasa::StoreCode { store_id, merchant_name: "퍼즈", mcc: "5812" };
    kasa_core::qr::kasa::payload(store, None).unwrap()
}

/// Routes the router serves outside the API's document: the documentation, and the hosted
/// approval page (`pay_page::router`), whose forms are fuzzed as forms.
fn outside(w: &World) -> Vec<Operation> {
    let form =
        |fields: &[(&'static str, &str)]| Template::Form(fields.iter().map(|(k, v)| (*k, v.to_string())).collect());
    let op = |method: &str, path: &str, callers: Vec<Who>, query: &[&str], template| Operation {
        method: method.into(),
        path: path.into(),
        callers,
        query: query.iter().map(|q| q.to_string()).collect(),
        template,
    };
    let page = || vec![Who::Page, Who::Anonymous];
    vec![
        op("GET", "/openapi.json", vec![Who::Anonymous], &[], Template::Empty),
        op("GET", "/docs/", vec![Who::Anonymous], &[], Template::Empty),
        op("GET", "/docs/problems", vec![Who::Anonymous], &[], Template::Empty),
        op("GET", "/pay/{id}", page(), &["token"], Template::Empty),
        op(
            "POST",
            "/pay/{id}/login",
            page(),
            &[],
            form(&[("token", "{token}"), ("phone", &w.bob.phone), ("pin", PIN)]),
        ),
        op("POST", "/pay/{id}/approve", page(), &[], form(&[("token", "{token}"), ("pin", PIN)])),
        op("POST", "/pay/{id}/decline", page(), &[], form(&[("token", "{token}")])),
        op("POST", "/pay/{id}/logout", page(), &[], form(&[("token", "{token}")])),
    ]
}

/// Every operation of the document the server serves (`/openapi.json`, made from the
/// router's own route list), with who may call it, its query parameters and its bodies, and
/// the routes outside the document. The ones that end what others aim at (cancel, close,
/// decline, delete, revoke, suspend, log out), and moving engine time (which could end
/// sessions and payments), come last; ending Alice's session, which every user's request
/// carries, comes at the very end.
fn operations(c: &mut Client, w: &World) -> Vec<Operation> {
    let doc = get(c, "/openapi.json").json();
    let bodies = bodies(w);
    let mut ops = Vec::new();
    for (path, methods) in doc["paths"].as_object().expect("the document has paths") {
        for (method, operation) in methods.as_object().unwrap() {
            let method = method.to_uppercase();
            let callers: Vec<Who> = match operation["security"].as_array() {
                None => vec![Who::Anonymous],
                Some(requirements) => requirements
                    .iter()
                    .map(|r| match r.as_object().and_then(|r| r.keys().next()).map(String::as_str) {
                        Some("operator") => Who::Operator,
                        Some("session") => Who::User,
                        Some("api_key") => Who::Merchant,
                        Some("partner_signature") => Who::Partner,
                        other => panic!("{method} {path}: a security scheme the fuzz does not know: {other:?}"),
                    })
                    .collect(),
            };
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            let query = parameters.iter().filter(|p| p["in"] == "query").map(|p| p["name"].as_str().unwrap().into());
            let templates: Vec<Value> =
                bodies.iter().filter(|(m, p, _)| *m == method && p == path).map(|(_, _, b)| b.clone()).collect();
            let template = if !operation["requestBody"].is_null() {
                assert!(!templates.is_empty(), "{method} {path} takes a body: give it one in bodies()");
                Template::Json(templates)
            } else if method == "POST" {
                Template::Json(vec![json!({})])
            } else {
                Template::Empty
            };
            ops.push(Operation { method, path: path.clone(), callers, query: query.collect(), template });
        }
    }
    for (method, path, _) in &bodies {
        assert!(
            ops.iter().any(|o| o.method == *method && o.path == *path),
            "bodies() has {method} {path}, which the document does not"
        );
    }
    ops.extend(outside(w));
    let ends = ["cancel", "close", "decline", "logout", "revoke", "suspend"];
    let last = |o: &Operation| match (o.method.as_str(), o.path.as_str()) {
        ("DELETE", "/v1/sessions/current") => 3,
        ("POST", "/v1/admin/test-clock/advance") => 2,
        ("DELETE", _) => 1,
        (_, path) if ends.iter().any(|end| path.ends_with(end)) => 1,
        _ => 0,
    };
    ops.sort_by_key(|o| (last(o), o.path.clone(), o.method.clone()));
    ops
}

/// Good values of a path parameter, by the collection it follows (`/merchants/{id}`). The
/// merchant whose status, stores and keys are fuzzed is the second: the first keeps taking
/// payments. A parameter after a collection not listed fails the test: add it here.
fn good_ids(w: &World, path: &str, collection: &str) -> Vec<String> {
    let some = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect();
    match collection {
        "users" | "top-ups" | "withdrawals" | "money-requests" | "split-bills" => some(&["1", "2", "3"]),
        "accounts" | "transfers" => some(&["1", "2", "3", "100"]),
        "tiers" => some(&["basic", "verified"]),
        "merchants" => some(&["mch_2"]),
        "api-keys" => some(&["key_2", "key_3"]),
        "payments" | "pay" => w.tokens.keys().cloned().collect(),
        "payouts" => some(&["po_1", "po_2"]),
        "webhook-endpoints" => some(&["we_1", "we_2"]),
        "stores" => some(&["str_1", "str_2"]),
        "merchant-imports" => some(&["imp_1", "imp_2"]),
        "events" => w.events.clone(),
        "partners" => some(&["ptn_1", "ptn_2"]),
        "keys" => some(&["1", "2"]),
        "settlement-windows" => some(&["sw_1", "sw_2"]),
        "overseas-payments" => some(&["op_1", "op_2"]),
        other => panic!("{path}: no ids for a parameter after /{other}/: add some to good_ids()"),
    }
}

/// Odd ids: of another kind, out of range, not ids at all.
const ODD_IDS: &[&str] = &[
    "1",
    "0",
    "999",
    "18446744073709551616",
    "abc",
    "%FF",
    "-1",
    "1.0",
    "%31",
    "mch_0",
    "pay_0",
    "pay_99999999999999999999",
    "pay_",
    "PAY_1",
    "we_1x",
    "key_-1",
    "evt_%00",
    "po_1e3",
    "str_1",
    "verified%00",
];

/// `template` with its parameters filled in, and the approval token that goes with the
/// payment in it (mostly its own, sometimes another's or none).
fn fill(rng: &mut Rng, template: &str, w: &World) -> (String, String) {
    let mut path = String::new();
    let mut token = "0".repeat(32);
    let mut collection = "";
    for segment in template.split('/').skip(1) {
        path.push('/');
        if segment.starts_with('{') {
            let value = if rng.below(4) == 0 {
                rng.pick(ODD_IDS).to_string()
            } else {
                rng.pick(&good_ids(w, template, collection)).clone()
            };
            if let Some(t) = w.tokens.get(&value) {
                token = t.clone();
            }
            if rng.below(6) == 0 {
                token = rng.pick(&w.tokens.values().cloned().collect::<Vec<_>>()).clone();
            }
            path.push_str(&value);
        } else {
            path.push_str(segment);
            collection = segment;
        }
    }
    (path, token)
}

/// Values of query parameters: good ones by name, and odd ones for any.
fn query_pick(rng: &mut Rng, name: &str, token: &str) -> String {
    let good: &[&str] = match name {
        "limit" => &["1", "10", "100", "1000"],
        "cursor" => &["1", "pay_1", "zz"],
        "after" | "timestamp_min" | "timestamp_max" => &["0", "1", "5"],
        "order_id" => &["fuzz-1", "order-1"],
        "status" => &["requires_approval", "succeeded", "pending", "declined"],
        "role" => &["payer", "requester"],
        "phone" => &["010-9800-0101", "%2B82%2010%209800%200101"],
        "token" => &[token],
        _ => &[],
    };
    if !good.is_empty() && rng.below(4) != 0 {
        return rng.pick(good).to_string();
    }
    rng.pick(&["", "0", "-1", "1001", "18446744073709551616", "%FF", "%00", "a%20b", "%EA%B0%80", "x&y", "%26"])
        .to_string()
}

/// A query string for `op`: none, some of its parameters, or unknown and repeated ones.
fn query(rng: &mut Rng, op: &Operation, token: &str) -> String {
    let mut pairs: Vec<String> = Vec::new();
    for name in &op.query {
        if rng.below(3) == 0 {
            pairs.push(format!("{name}={}", query_pick(rng, name, token)));
        }
    }
    match rng.below(15) {
        0 => pairs.push(format!("colour={}", query_pick(rng, "colour", token))),
        1 if !pairs.is_empty() => pairs.push(pairs[0].clone()),
        2 => pairs.push("x".repeat(1_000)),
        _ => {}
    }
    pairs.join("&")
}

/// A form body for the approval page: its fields, mutated.
fn form(rng: &mut Rng, fields: &[(&'static str, String)], token: &str, odd: &[String]) -> Vec<u8> {
    let mut fields: Vec<(String, String)> =
        fields.iter().map(|(k, v)| (k.to_string(), query_value(&v.replace("{token}", token)))).collect();
    match rng.below(8) {
        0 if !fields.is_empty() => {
            fields.remove(rng.below(fields.len() as u64) as usize);
        }
        1 if !fields.is_empty() => {
            let i = rng.below(fields.len() as u64) as usize;
            fields[i].1 = query_value(rng.pick(odd).trim_matches('"'));
        }
        2 => fields.push(("token".into(), "0".repeat(300))),
        3 => return (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        4 => fields.push(("%FF".into(), "%".into())),
        _ => {}
    }
    fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&").into_bytes()
}
const CONTENT_TYPES: &[&str] = &[
    "application/json; charset=utf-8",
    "application/merge-patch+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=zz",
    "application/octet-stream",
    "text/json",
    "",
];

/// A JSON body: `template`, mutated one of many ways.
fn body(rng: &mut Rng, template: &Value, odd: &[String]) -> Vec<u8> {
    let template = template.as_object().unwrap();
    let fields: Vec<(String, String)> = template.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    let render = |fields: &[(String, String)]| {
        format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let mut fields = fields;
    match rng.below(20) {
        // The template itself: the request may go through.
        0..=3 => render(&fields).into_bytes(),
        4..=10 if !fields.is_empty() => {
            // One field, or two, odd.
            for _ in 0..1 + rng.below(2) {
                let i = rng.below(fields.len() as u64) as usize;
                fields[i].1 = rng.pick(odd).clone();
            }
            render(&fields).into_bytes()
        }
        11 if !fields.is_empty() => {
            fields.remove(rng.below(fields.len() as u64) as usize);
            render(&fields).into_bytes()
        }
        12 => {
            let name = rng.pick(&["colour", "admin", "id", "amount", "", "\u{0}"]).to_string();
            fields.push((name, rng.pick(odd).clone()));
            render(&fields).into_bytes()
        }
        13 => format!("[{}]", render(&fields)).into_bytes(),
        14 => rng.pick(odd).clone().into_bytes(),
        15 => {
            let whole = render(&fields).into_bytes();
            whole[..rng.below(whole.len() as u64) as usize].to_vec()
        }
        16 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        17 => {
            let mut whole = render(&fields).into_bytes();
            let at = rng.below(whole.len() as u64) as usize;
            whole.insert(at, *rng.pick(&[0xff, 0xfe, 0xc3, 0x00, b'"', b'\\', b'{', b']']));
            whole
        }
        18 => format!("\u{feff}{}", render(&fields)).into_bytes(),
        _ => {
            // Values on every field from the odd list: many refusals at once.
            for field in &mut fields {
                field.1 = rng.pick(odd).clone();
            }
            render(&fields).into_bytes()
        }
    }
}

/// Up to four 128-byte ledger records, mostly zero with random ids, amounts, ledgers, codes
/// and flags, so that some are accepted with odd values and most are refused for a reason.
fn records(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let mut record = [0u8; 128];
        for (range, chance) in
            [(0..16, 1), (16..32, 3), (32..48, 3), (48..64, 3), (112..116, 2), (116..118, 2), (118..120, 2)]
        {
            if rng.below(chance) == 0 {
                for byte in &mut record[range] {
                    *byte = rng.next() as u8;
                }
            }
        }
        if rng.below(2) == 0 {
            record[112..116].copy_from_slice(&1u32.to_le_bytes());
            record[116..118].copy_from_slice(&1u16.to_le_bytes());
        }
        if rng.below(4) == 0 {
            // Random bytes anywhere: reserved fields, timestamps.
            let at = rng.below(128) as usize;
            record[at] = rng.next() as u8;
        }
        out.extend_from_slice(&record);
    }
    if rng.below(8) == 0 {
        out.truncate(rng.below(out.len() as u64) as usize);
    }
    out
}

/// Checks one answer: 2xx JSON (binary results for a binary ledger batch; text for the
/// metrics, a payout's CSV and the documentation), a redirect with its `Location`, or a 4xx
/// problem+json of the registered shape (or, on the approval page, a page); never a 5xx or a
/// Rust name.
#[track_caller]
fn well_formed(r: &Response, page: bool, what: &str) {
    let content_type = r.header("content-type").unwrap_or("");
    assert!(r.status < 500, "{what}: {} {}", r.status, String::from_utf8_lossy(&r.body));
    if (300..400).contains(&r.status) {
        assert!(r.header("location").is_some_and(|l| l.starts_with('/') || l.starts_with("https://")), "{what}");
        return;
    }
    if r.status < 300 {
        assert!((200..300).contains(&r.status), "{what}: {}", r.status);
        match content_type {
            _ if r.status == 204 => assert!(r.body.is_empty(), "{what}"),
            "application/octet-stream" => assert_eq!(r.body.len() % 32, 0, "{what}"),
            // Journal frames as stored: each at least its 72-byte header.
            "application/vnd.kasa.journal-frames" => {
                let frames: usize = r.header("kasa-frames").and_then(|n| n.parse().ok()).expect("Kasa-Frames");
                assert!(r.body.len() >= 72 * frames && (frames == 0) == r.body.is_empty(), "{what}");
            }
            "application/json" => assert!(!r.json().is_null(), "{what}: {}", String::from_utf8_lossy(&r.body)),
            text if text.starts_with("text/") => assert!(std::str::from_utf8(&r.body).is_ok(), "{what}"),
            "image/png" => assert!(r.body.starts_with(b"\x89PNG\r\n\x1a\n"), "{what}: not a PNG"),
            "image/svg+xml" => assert!(r.body.starts_with(b"<svg"), "{what}: not an SVG"),
            other => panic!("{what}: answered {other}"),
        }
        return;
    }
    if page && content_type.starts_with("text/html") {
        return;
    }
    assert_eq!(content_type, "application/problem+json", "{what}: {} {}", r.status, String::from_utf8_lossy(&r.body));
    let v = r.json();
    let code = v["code"].as_str().unwrap_or_else(|| panic!("{what}: no code in {v}"));
    assert_eq!((&v["status"], &v["type"]), (&json!(r.status), &json!(format!("/docs/problems#{code}"))), "{what}: {v}");
    let detail = v["detail"].as_str().unwrap_or_else(|| panic!("{what}: no detail in {v}"));
    assert!(!detail.is_empty() && v["title"].is_string(), "{what}: {v}");
    for rust in RUST {
        assert!(!detail.contains(rust), "{what}: '{rust}' in {v}");
    }
}

/// Whether an answer came from no route at all (the fallback's 404, or a 405).
fn unrouted(r: &Response) -> bool {
    r.status == 405 || (r.status == 404 && r.json()["detail"].as_str().is_some_and(|d| d.starts_with("no route")))
}

/// What must come back the same after a restart: every user as operators see them, the
/// merchants, the operators' ledger's first accounts and transfers, and the events (of which a
/// restart may only add: the bank rail settles what was pending, payments expire).
fn state(c: &mut Client) -> (Vec<Value>, Value, Value, Value, Vec<Value>) {
    let mut users = Vec::new();
    for id in 1.. {
        let r = get(c, &format!("/v1/admin/users/{id}"));
        if r.status == 404 {
            break;
        }
        users.push(r.json());
    }
    let merchants = get(c, "/v1/admin/merchants?limit=100").json()["data"].clone();
    let ids: Vec<String> = (1..=120).map(|i| i.to_string()).collect();
    let accounts = post(c, "/v1/ledger/accounts/lookup", &json!({ "ids": ids }));
    let transfers = post(c, "/v1/ledger/transfers/lookup", &json!({ "ids": ids }));
    let mut events = Vec::new();
    loop {
        let page = get(c, &format!("/v1/admin/events?limit=1000&after={}", events.len())).json();
        let data = page["data"].as_array().unwrap();
        events.extend(data.iter().cloned());
        if data.is_empty() || page["next_cursor"].is_null() {
            break;
        }
    }
    (users, merchants, accounts.json(), transfers.json(), events)
}

/// Merchants, payments in each state, a refund, a payout and a webhook endpoint, so that the
/// fuzz's ids name real objects: the first merchant (with every scope) and the second (whose
/// status the fuzz changes); payments 1 (paid, a refund), 2 (approved, to capture), 3 to 10
/// (waiting for approval), payout 1 (the day after payment 1).
fn merchants(server: &Server, op: &mut Client, w: &mut World) {
    let scopes = ["payments:read", "payments:write", "refunds:write", "webhooks:manage", "payouts:read"];
    let shop = onboard(op, "120-81-47521");
    w.key = api_key(op, &shop, &scopes);
    let second = onboard(op, "220-81-62517");
    api_key(op, &second, &["payments:read"]);
    assert_eq!(post(op, &format!("/v1/admin/merchants/{shop}/stores"), &json!({"name": "본점"})).status, 201);
    let mut c = server.client();
    let endpoint = json!({"url": "http://localhost:9/kasa", "events": ["payment.succeeded"]});
    assert_eq!(call(&mut c, "POST", "/v1/webhook-endpoints", Some(&w.key), Some(&endpoint)).status, 201);
    let paid = pay(&mut c, w, "setup-1", "10000", "automatic", true);
    let refund = json!({"amount": "1000", "reason": "setup"});
    let r = call(&mut c, "POST", &format!("/v1/payments/{paid}/refunds"), Some(&w.key), Some(&refund));
    assert_eq!(r.status, 201, "{}", r.json());
    // The next day's payout run pays out payment 1.
    let r = post(op, "/v1/admin/test-clock/advance", &json!({"seconds": 24 * 3600}));
    assert_eq!(r.status, 200, "{}", r.json());
    learn_clock(w, &r.json());
    // A partner with its key and a rate, and one payment of its at the first store.
    let partner = json!({"name": "alipay_plus", "home_currency": "CNY", "settlement_currency": "CNY", "fee_bps": 100,
        "settlement_bank_account": {"bank_code": "088", "account_number": "9800980002", "holder_name": "Partner"}});
    assert_eq!(post(op, "/v1/admin/partners", &partner).status, 201);
    let public_key = kasa_server::partner_signature::Signer::from_seed(&PARTNER_SEED).public_key();
    let key = json!({"public_key": kasa_server::partner_signature::encode_base64(&public_key)});
    assert_eq!(post(op, "/v1/admin/partners/ptn_1/keys", &key).status, 201);
    let rates = json!({"rates": [{"pair": "CNY/KRW", "mid": "190.5", "spread_bps": 100}]});
    assert_eq!(post(op, "/v1/admin/fx/rates", &rates).status, 201);
    let body = serde_json::to_vec(
        &json!({"paymentRequestId": "setup-p1", "paymentAmount": {"currency": "KRW", "value": "1000"},
        "customerId": "c-1", "storeId": "str_1"}),
    )
    .unwrap();
    let (time, signature) = partner_headers(w, "POST", "/v1/partner/payments/pay", &body);
    let headers = [
        ("Content-Type", "application/json"),
        ("Client-Id", "ptn_1"),
        ("Request-Time", time.as_str()),
        ("Signature", signature.as_str()),
    ];
    let r = c.request("POST", "/v1/partner/payments/pay", &headers, &body).unwrap();
    assert_eq!((r.status, &r.json()["result"]["resultStatus"]), (200, &json!("S")), "{}", r.json());
    pay(&mut c, w, "setup-2", "5000", "manual", true);
    for (i, capture) in ["automatic", "manual"].iter().cycle().take(8).enumerate() {
        pay(&mut c, w, &format!("setup-{}", i + 3), &(300 + 100 * i).to_string(), capture, false);
    }
    let events = call(&mut c, "GET", "/v1/events?limit=100", Some(&w.key), None).json();
    w.events = events["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert!(w.events.len() >= 3, "{events}");
}

/// A payment of the first merchant (waiting a day for approval), approved by Alice if
/// `approve`; its id, its token kept in `w`.
fn pay(c: &mut Client, w: &mut World, order: &str, amount: &str, capture: &str, approve: bool) -> String {
    let body = json!({"amount": amount, "currency": "KRW", "order_id": order, "item_name": "아메리카노",
        "capture_method": capture, "expires_in": 86400});
    let r = call(c, "POST", "/v1/payments", Some(&w.key), Some(&body));
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let token = r.json()["approval_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
    if approve {
        let r = w.alice.post(c, &format!("/v1/me/payments/{id}/approve"), &json!({"token": token, "pin": PIN}));
        assert_eq!(r.status, 200, "{}", r.json());
    }
    w.tokens.insert(id.clone(), token);
    id
}

#[test]
fn nothing_refused_or_accepted_breaks_the_journal() {
    let mut rng = Rng::from_env_or_time();
    let dir = tempfile::tempdir().unwrap();
    // With a read model, so that its routes answer from PostgreSQL as in production.
    let pg = support::postgres::Postgres::start();
    let url = pg.url();
    let server = Server::start_with(dir.path(), &["--test-clock", "--read-model", &url]);
    let mut op = server.client();
    let alice = sign_up(&server, "010-9800-0101");
    let bob = sign_up(&server, "010-9800-0102");
    credit(&mut op, &alice, 300_000);
    credit(&mut op, &bob, 10_000);
    link_bank(&mut op, &alice, "9800980101");
    assert_eq!(post(&mut op, "/v1/ledger/accounts", &json!([account(1, 1, &[]), account(2, 1, &[])])).status, 200);
    let mut c = server.client();
    for _ in 0..3 {
        let request = bob.post(&mut c, "/v1/money-requests", &json!({"from_user_id": alice.id, "amount": "10"}));
        assert_eq!(request.status, 201);
    }
    assert_eq!(alice.post(&mut c, "/v1/transfers", &json!({"to_phone": "010-9899-0002", "amount": "10"})).status, 201);
    let mut w = World { alice, bob, key: String::new(), tokens: BTreeMap::new(), events: Vec::new(), clock_offset: 0 };
    merchants(&server, &mut op, &mut w);
    let (alice, bob) = (w.alice.clone(), w.bob.clone());
    // Valid inputs on every bound: accepted, and so journaled.
    let mut anon = server.client_from(next_address());
    for (phone, name) in [
        ("+82 010-9800-0201", "🎉".repeat(50)),
        ("(010) 9800.0202", "e\u{301}".repeat(25)),
        ("+1 415 555 2671", "\u{202e}evil\u{200b}".to_string()),
        ("+999 99999 99999", "가".repeat(50)),
    ] {
        let (verification_id, code) = verification(&server, phone);
        let body = json!({"phone": phone, "name": name, "pin": PIN, "verification_id": verification_id, "code": code});
        let r = call(&mut anon, "POST", "/v1/users", None, Some(&body));
        assert_eq!((r.status, &r.json()["name"]), (201, &json!(name)), "{}", r.json());
    }
    let memo = "𝄞".repeat(100);
    let r = alice.post(&mut c, "/v1/transfers", &json!({"to_user_id": bob.id, "amount": "1", "memo": memo}));
    assert_eq!((r.status, &r.json()["memo"]), (201, &json!(memo)), "{}", r.json());
    let r = alice.post(&mut c, "/v1/transfers", &json!({"to_phone": "+999 99999 99998", "amount": "1", "memo": memo}));
    assert_eq!(r.json()["status"], "held", "{}", r.json());
    let reason = "🎉".repeat(200);
    let r = post(
        &mut op,
        &format!("/v1/admin/users/{}/adjustments", bob.id),
        &json!({"amount": "1", "direction": "credit", "reason": reason}),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let r = alice.post(
        &mut c,
        "/v1/me/bank-accounts",
        &json!({"bank_code": "004", "account_number": "1234-5678-9012-3456", "holder_name": "🎉".repeat(50)}),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let r = alice.post(
        &mut c,
        "/v1/split-bills",
        &json!({"total": "18446744073709551615", "shares": [{"user_id": bob.id, "amount": "1"}], "memo": memo}),
    );
    assert!(r.status == 201 || r.status == 422, "{}", r.json());
    let odd_accounts: Vec<Value> = [
        json!({"id": "340282366920938463463374607431768211454", "ledger": 4294967295u64, "code": 65535, "flags": ["linked", "debits_must_not_exceed_credits", "history"]}),
        json!({"id": "3", "ledger": 1, "code": 1, "flags": ["credits_must_not_exceed_debits", "closed"], "user_data_128": "340282366920938463463374607431768211455", "user_data_64": "18446744073709551615", "user_data_32": 4294967295u64}),
        json!({"id": "4", "ledger": 1, "code": 1, "flags": ["imported"], "timestamp": "1"}),
    ]
    .to_vec();
    well_formed(&post(&mut op, "/v1/ledger/accounts", &json!(odd_accounts)), false, "odd accounts");
    let r = post(
        &mut op,
        "/v1/ledger/transfers",
        &json!({"id": "340282366920938463463374607431768211454", "debit_account_id": "2", "credit_account_id": "1", "amount": "340282366920938463463374607431768211455", "ledger": 1, "code": 1, "flags": ["pending"], "timeout": 4294967295u64}),
    );
    well_formed(&r, false, "an odd transfer");

    // The fuzz: each route, as its callers and as the others.
    let odd = odd_values();
    let mut statuses: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let operations = operations(&mut op, &w);
    let mut routed: BTreeMap<String, usize> = BTreeMap::new();
    for operation in &operations {
        let name = format!("{} {}", operation.method, operation.path);
        let page = operation.path.starts_with("/pay/");
        let rounds = match &operation.template {
            Template::Json(bodies) if bodies != &[json!({})] => 48,
            Template::Form(_) => 48,
            Template::Json(_) => 24,
            Template::Empty => 16,
        };
        for round in 0..rounds {
            let who = if round % 6 == 5 {
                *rng.pick(&[Who::Anonymous, Who::User, Who::Merchant, Who::Operator, Who::Page, Who::Partner])
            } else {
                *rng.pick(&operation.callers)
            };
            let (path, token) = fill(&mut rng, &operation.path, &w);
            let query = query(&mut rng, operation, &token);
            let target = if query.is_empty() { path } else { format!("{path}?{query}") };
            let binary =
                operation.path.starts_with("/v1/ledger/") && !operation.path.ends_with("lookup") && rng.below(3) == 0;
            let (body, content_type) = match &operation.template {
                Template::Empty => (Vec::new(), ""),
                Template::Json(_) if binary => (records(&mut rng), "application/octet-stream"),
                Template::Json(bodies) => {
                    let template: Value =
                        serde_json::from_str(&rng.pick(bodies).to_string().replace("{token}", &token)).unwrap();
                    let content_type = if rng.below(8) == 0 { *rng.pick(CONTENT_TYPES) } else { "application/json" };
                    (body(&mut rng, &template, &odd), content_type)
                }
                Template::Form(fields) => {
                    let content_type =
                        if rng.below(8) == 0 { *rng.pick(CONTENT_TYPES) } else { "application/x-www-form-urlencoded" };
                    (form(&mut rng, fields, &token, &odd), content_type)
                }
            };
            let credential = match who {
                Who::Anonymous => None,
                Who::User => Some(("Authorization", format!("Bearer {}", w.alice.token))),
                Who::Merchant => Some(("Authorization", format!("Bearer {}", w.key))),
                Who::Operator => Some(("Authorization", format!("Bearer {KEY}"))),
                Who::Page => Some(("Cookie", format!("kasa_pay={}", w.bob.token))),
                Who::Partner => None,
            };
            let signed = (who == Who::Partner).then(|| partner_headers(&w, &operation.method, &target, &body));
            let key = format!("fuzz-{}", rng.next());
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if let Some((name, value)) = &credential {
                headers.push((name, value));
            }
            if let Some((time, signature)) = &signed {
                headers.extend([
                    ("Client-Id", "ptn_1"),
                    ("Request-Time", time.as_str()),
                    ("Signature", signature.as_str()),
                ]);
            }
            if !content_type.is_empty() {
                headers.push(("Content-Type", content_type));
            }
            let keys = [key.as_str(), "", "fixed-key", "ключ"];
            if operation.method == "POST" && rng.below(8) == 0 {
                headers.push(("Idempotency-Key", *rng.pick(&keys)));
            }
            // Now and then a method no route has.
            let method = if rng.below(32) == 0 { *rng.pick(&["PUT", "PATCH"]) } else { operation.method.as_str() };
            // A connection the server may close (after a refused body) is replaced.
            let r = match c.request(method, &target, &headers, &body) {
                Ok(r) => r,
                Err(_) => {
                    c = server.client();
                    c.request(method, &target, &headers, &body).expect("the server answers")
                }
            };
            let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).to_string();
            let what = format!("{who:?} {method} {target} ({content_type}) {shown}");
            well_formed(&r, page, &what);
            if operation.path == "/v1/admin/test-clock/advance" && r.status == 200 {
                learn_clock(&mut w, &r.json());
            }
            *statuses.entry((r.status, r.json()["code"].as_str().unwrap_or("").to_string())).or_default() += 1;
            *routed.entry(name.clone()).or_default() += usize::from(!unrouted(&r));
            if r.header("connection") == Some("close") {
                c = server.client();
            }
        }
    }
    eprintln!("answers: {statuses:?}");
    // Every route was reached, not only asked for: some answer came from the route itself.
    for operation in &operations {
        let name = format!("{} {}", operation.method, operation.path);
        assert!(routed.get(&name).is_some_and(|&n| n > 0), "the fuzz never reached {name}");
    }
    let accepted: usize = statuses.iter().filter(|((s, _), _)| *s < 300).map(|(_, n)| n).sum();
    assert!(accepted >= 200, "the fuzz reached too few accepting paths: {statuses:?}");
    assert!(statuses.len() >= 30, "too few kinds of answers: {statuses:?}");
    // The same state from the journal after kill -9, and from the snapshot of a clean stop.
    let before = state(&mut server.client());
    assert!(before.0.len() >= 6 && before.1.as_array().is_some_and(|m| m.len() >= 2), "{before:?}");
    server.kill9();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let after_kill = state(&mut server.client());
    let same = |s: &(Vec<Value>, Value, Value, Value, Vec<Value>)| (s.0.clone(), s.1.clone(), s.2.clone(), s.3.clone());
    assert_eq!(same(&after_kill), same(&before), "after kill -9");
    assert_eq!(after_kill.4[..before.4.len()], before.4[..], "the events after kill -9");
    let report = stop_and_verify(server);
    assert!(!report.contains("snapshots: 0 valid"), "{report}");
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let after_stop = state(&mut server.client());
    assert_eq!(same(&after_stop), same(&after_kill), "after a clean stop");
    assert_eq!(after_stop.4[..after_kill.4.len()], after_kill.4[..], "the events after a clean stop");
    stop_and_verify(server);
}
