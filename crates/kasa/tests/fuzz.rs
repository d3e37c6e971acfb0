//! Nothing refused breaks the journal, and nothing accepted either: arbitrary and odd JSON,
//! odd content types and odd keys are thrown at every POST endpoint as an anonymous client,
//! a logged-in user and the operator, next to inputs that are valid but sit on every bound
//! (names of 50 four-byte characters, memos of 100, odd phone forms, ledger records with odd
//! flags). Every answer is well formed (2xx JSON, or problem+json with a registered shape,
//! never a 5xx, never a Rust type name), and afterwards the state comes back the same from
//! the journal after `kill -9`, from the snapshot of a clean stop, and `kasa verify` passes.

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

/// An endpoint: who calls it, its path (ids filled in), and a valid-looking body.
struct Endpoint {
    who: Who,
    path: &'static str,
    body: Value,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Anonymous,
    User,
    Operator,
}

fn endpoints(bob: &str) -> Vec<Endpoint> {
    use Who::*;
    let e = |who, path, body| Endpoint { who, path, body };
    vec![
        e(Anonymous, "/v1/phone-verifications", json!({"phone": "010-9800-0001"})),
        e(
            Anonymous,
            "/v1/users",
            json!({"phone": "010-9800-0002", "name": "Fuzz", "pin": "975310", "verification_id": "vrf_00000000000000000000000000000000", "code": "123456"}),
        ),
        e(
            Anonymous,
            "/v1/pin-resets",
            json!({"phone": "010-9800-0001", "verification_id": "vrf_00000000000000000000000000000000", "code": "123456", "new_pin": "582914"}),
        ),
        e(Anonymous, "/v1/sessions", json!({"phone": "010-9800-0003", "pin": "975310"})),
        e(User, "/v1/me/settings", json!({"pin_free_amount": "50000", "currency": "KRW"})),
        e(
            User,
            "/v1/me/bank-accounts",
            json!({"bank_code": "088", "account_number": "9800980001", "holder_name": "Fuzz"}),
        ),
        e(User, "/v1/me/top-ups", json!({"bank_account_id": "1", "amount": "1000", "currency": "KRW"})),
        e(User, "/v1/me/withdrawals", json!({"bank_account_id": "1", "amount": "1000", "currency": "KRW", "pin": PIN})),
        e(
            User,
            "/v1/transfers",
            json!({"to_user_id": bob, "amount": "10", "currency": "KRW", "memo": "fuzz", "pin": PIN}),
        ),
        e(User, "/v1/transfers", json!({"to_phone": "010-9899-0000", "amount": "10", "memo": "held"})),
        e(User, "/v1/transfers/{id}/cancel", json!({})),
        e(User, "/v1/money-requests", json!({"from_user_id": bob, "amount": "10", "currency": "KRW", "memo": "fuzz"})),
        e(User, "/v1/money-requests/{id}/pay", json!({"pin": PIN})),
        e(User, "/v1/money-requests/{id}/decline", json!({})),
        e(
            User,
            "/v1/split-bills",
            json!({"total": "100", "currency": "KRW", "shares": [{"user_id": bob, "amount": "10"}, {"phone": "010-9899-0001"}], "memo": "fuzz"}),
        ),
        e(Operator, "/v1/ledger/accounts", json!({"id": "100", "ledger": 1, "code": 1, "flags": ["history"]})),
        e(
            Operator,
            "/v1/ledger/transfers",
            json!({"id": "100", "debit_account_id": "2", "credit_account_id": "1", "amount": "5", "ledger": 1, "code": 1}),
        ),
        e(Operator, "/v1/ledger/accounts/lookup", json!({"ids": ["1", "2"]})),
        e(Operator, "/v1/ledger/transfers/lookup", json!({"ids": ["1"]})),
        e(Operator, "/v1/admin/users/{id}/tier", json!({"tier": "verified"})),
        e(Operator, "/v1/admin/users/{id}/unlock", json!({})),
        e(
            Operator,
            "/v1/admin/users/{id}/adjustments",
            json!({"amount": "10", "currency": "KRW", "direction": "credit", "reason": "fuzz"}),
        ),
        e(
            Operator,
            "/v1/admin/tiers/{tier}",
            json!({"balance_cap": "500000", "daily_outgoing": "500000", "currency": "KRW"}),
        ),
        e(Operator, "/v1/admin/fees", json!({"withdrawal_fee": "0", "currency": "KRW"})),
        e(Operator, "/v1/admin/test-clock/advance", json!({"seconds": 1})),
    ]
}

const PATH_IDS: &[&str] = &["1", "2", "3", "0", "999", "18446744073709551616", "abc", "%FF", "-1", "1.0", "%31"];
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

/// A body for `endpoint`: its template, mutated one of many ways.
fn body(rng: &mut Rng, endpoint: &Endpoint, odd: &[String]) -> Vec<u8> {
    let template = endpoint.body.as_object().unwrap();
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

/// Checks one answer: 2xx JSON (or binary results for a binary ledger batch), or a 4xx
/// problem+json of the registered shape; never a 5xx or a Rust name.
#[track_caller]
fn well_formed(r: &Response, what: &str) {
    let content_type = r.header("content-type").unwrap_or("");
    assert!(r.status < 500, "{what}: {} {}", r.status, String::from_utf8_lossy(&r.body));
    if r.status < 300 {
        assert!((200..300).contains(&r.status), "{what}: {}", r.status);
        if content_type == "application/octet-stream" {
            assert_eq!(r.body.len() % 32, 0, "{what}");
        } else {
            assert_eq!(content_type, "application/json", "{what}");
            assert!(!r.json().is_null(), "{what}: {}", String::from_utf8_lossy(&r.body));
        }
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

/// What must come back the same after a restart: every user as operators see them, the
/// operators' ledger's first accounts and transfers, and the events (of which a restart may
/// only add: the bank rail settles what was pending).
fn state(c: &mut Client) -> (Vec<Value>, Value, Value, Vec<Value>) {
    let mut users = Vec::new();
    for id in 1.. {
        let r = get(c, &format!("/v1/admin/users/{id}"));
        if r.status == 404 {
            break;
        }
        users.push(r.json());
    }
    let ids: Vec<String> = (1..=120).map(|i| i.to_string()).collect();
    let accounts = post(c, "/v1/ledger/accounts/lookup", &json!({ "ids": ids }));
    let transfers = post(c, "/v1/ledger/transfers/lookup", &json!({ "ids": ids }));
    let events = get(c, "/v1/admin/events?limit=1000").json()["data"].as_array().unwrap().clone();
    (users, accounts.json(), transfers.json(), events)
}

#[test]
fn nothing_refused_or_accepted_breaks_the_journal() {
    let mut rng = Rng::from_env_or_time();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut op = server.client();
    let alice = sign_up(&server, "010-9800-0101");
    let bob = sign_up(&server, "010-9800-0102");
    credit(&mut op, &alice, 300_000);
    credit(&mut op, &bob, 1_000);
    link_bank(&mut op, &alice, "9800980101");
    assert_eq!(post(&mut op, "/v1/ledger/accounts", &json!([account(1, 1, &[]), account(2, 1, &[])])).status, 200);
    let mut c = server.client();
    let request = bob.post(&mut c, "/v1/money-requests", &json!({"from_user_id": alice.id, "amount": "10"}));
    assert_eq!(request.status, 201);
    assert_eq!(alice.post(&mut c, "/v1/transfers", &json!({"to_phone": "010-9899-0002", "amount": "10"})).status, 201);

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
    well_formed(&post(&mut op, "/v1/ledger/accounts", &json!(odd_accounts)), "odd accounts");
    let r = post(
        &mut op,
        "/v1/ledger/transfers",
        &json!({"id": "340282366920938463463374607431768211454", "debit_account_id": "2", "credit_account_id": "1", "amount": "340282366920938463463374607431768211455", "ledger": 1, "code": 1, "flags": ["pending"], "timeout": 4294967295u64}),
    );
    well_formed(&r, "an odd transfer");

    // The fuzz: each endpoint, as its caller and as the others.
    let odd = odd_values();
    let mut statuses: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let endpoints = endpoints(&bob.id);
    for endpoint in &endpoints {
        for round in 0..48 {
            let who =
                if round % 6 == 5 { *rng.pick(&[Who::Anonymous, Who::User, Who::Operator]) } else { endpoint.who };
            let id = if rng.below(3) == 0 { *rng.pick(PATH_IDS) } else { "1" };
            let tier = *rng.pick(&["basic", "verified", "gold", "%00"]);
            let path = endpoint.path.replace("{id}", id).replace("{tier}", tier);
            let binary =
                endpoint.path.starts_with("/v1/ledger/") && !endpoint.path.ends_with("lookup") && rng.below(3) == 0;
            let (body, content_type) = if binary {
                (records(&mut rng), "application/octet-stream")
            } else {
                let content_type = if rng.below(8) == 0 { *rng.pick(CONTENT_TYPES) } else { "application/json" };
                (body(&mut rng, endpoint, &odd), content_type)
            };
            let bearer = match who {
                Who::Anonymous => None,
                Who::User => Some(format!("Bearer {}", alice.token)),
                Who::Operator => Some(format!("Bearer {KEY}")),
            };
            let key = format!("fuzz-{}", rng.next());
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if let Some(bearer) = &bearer {
                headers.push(("Authorization", bearer));
            }
            if !content_type.is_empty() {
                headers.push(("Content-Type", content_type));
            }
            let keys = [key.as_str(), "", "fixed-key", "ключ"];
            if rng.below(8) == 0 {
                headers.push(("Idempotency-Key", *rng.pick(&keys)));
            }
            // A connection the server may close (after a refused body) is replaced.
            let r = match c.request("POST", &path, &headers, &body) {
                Ok(r) => r,
                Err(_) => {
                    c = server.client();
                    c.request("POST", &path, &headers, &body).expect("the server answers")
                }
            };
            let what = format!(
                "{who:?} POST {path} ({content_type}) {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
            well_formed(&r, &what);
            *statuses.entry((r.status, r.json()["code"].as_str().unwrap_or("").to_string())).or_default() += 1;
            if r.header("connection") == Some("close") {
                c = server.client();
            }
        }
    }
    eprintln!("answers: {statuses:?}");
    let accepted: usize = statuses.iter().filter(|((s, _), _)| *s < 300).map(|(_, n)| n).sum();
    assert!(accepted >= 20, "the fuzz reached too few accepting paths: {statuses:?}");
    assert!(statuses.len() >= 20, "too few kinds of answers: {statuses:?}");

    // The same state from the journal after kill -9, and from the snapshot of a clean stop.
    let before = state(&mut op);
    assert!(before.0.len() >= 6, "{:?}", before.0);
    server.kill9();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let after_kill = state(&mut server.client());
    assert_eq!((&after_kill.0, &after_kill.1, &after_kill.2), (&before.0, &before.1, &before.2), "after kill -9");
    assert_eq!(after_kill.3[..before.3.len()], before.3[..], "the events after kill -9");
    let report = stop_and_verify(server);
    assert!(!report.contains("snapshots: 0 valid"), "{report}");
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let after_stop = state(&mut server.client());
    assert_eq!(
        (&after_stop.0, &after_stop.1, &after_stop.2),
        (&after_kill.0, &after_kill.1, &after_kill.2),
        "after a clean stop"
    );
    assert_eq!(after_stop.3[..after_kill.3.len()], after_kill.3[..], "the events after a clean stop");
    stop_and_verify(server);
}
