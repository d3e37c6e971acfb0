//! Bank accounts, top-ups and withdrawals end to end through the sandbox bank: approve,
//! decline (amounts ending in 13), limits, PIN above the PIN-free amount, and other users'
//! resources.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

fn call(
    c: &mut kasa::client::Client,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> kasa::client::Response {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head =
        format!("{method} {path} HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n");
    c.send_raw(&head, body.as_bytes()).unwrap()
}

fn user(c: &mut kasa::client::Client, phone: &str) -> String {
    let r = post(c, "/v1/users", &json!({"phone": phone, "name": "Test", "pin": "135790"}));
    assert_eq!(r.status, 201, "{}", r.json());
    let r = post(c, "/v1/sessions", &json!({"phone": phone, "pin": "135790"}));
    assert_eq!(r.status, 201);
    r.json()["token"].as_str().unwrap().to_string()
}

/// Waits (bounded) for the sandbox bank's answer to settle a funding.
fn settled(c: &mut kasa::client::Client, path: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let f = call(c, "GET", path, token, None).json();
        if f["status"] != "pending" {
            return f;
        }
        assert!(Instant::now() < deadline, "{path} stayed pending");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Links a bank account for `token`'s user and tops up `amount` through the sandbox bank.
fn fund(c: &mut kasa::client::Client, token: &str, account_number: &str, amount: u64) {
    let body = json!({"bank_code": "088", "account_number": account_number, "holder_name": "Test"});
    let r = call(c, "POST", "/v1/me/bank-accounts", token, Some(body));
    let bank = r.json()["id"].as_str().unwrap().to_string();
    let r = call(c, "POST", "/v1/me/top-ups", token, Some(json!({"bank_account_id": bank, "amount": amount})));
    let path = format!("/v1/me/top-ups/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(settled(c, &path, token)["status"], "succeeded");
}

fn balance(c: &mut kasa::client::Client, token: &str) -> (String, String) {
    let w = call(c, "GET", "/v1/me/wallet", token, None).json();
    (w["balance"].as_str().unwrap().to_string(), w["available_balance"].as_str().unwrap().to_string())
}

#[test]
fn top_up_and_withdraw_through_the_sandbox_bank() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let token = user(&mut c, "010-2222-3333");

    let r = call(
        &mut c,
        "POST",
        "/v1/me/bank-accounts",
        &token,
        Some(json!({"bank_code": "004", "account_number": "123-456-789012", "holder_name": "Test"})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["account_number"], "********9012", "account numbers are masked");
    let bank = r.json()["id"].as_str().unwrap().to_string();
    let r = call(
        &mut c,
        "POST",
        "/v1/me/bank-accounts",
        &token,
        Some(json!({"bank_code": "004", "account_number": "123456789012", "holder_name": "Test"})),
    );
    assert_problem(&r, 409, "already_linked");
    let list = call(&mut c, "GET", "/v1/me/bank-accounts", &token, None).json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(!String::from_utf8_lossy(&call(&mut c, "GET", "/v1/me/bank-accounts", &token, None).body)
        .contains("123456789012"));

    // A top-up is pending at once, then the bank approves it.
    let r = call(&mut c, "POST", "/v1/me/top-ups", &token, Some(json!({"bank_account_id": bank, "amount": 300000})));
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["status"], "pending");
    let path = format!("/v1/me/top-ups/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(settled(&mut c, &path, &token)["status"], "succeeded");
    assert_eq!(balance(&mut c, &token), ("300000".into(), "300000".into()));

    // Amounts ending in 13 are declined by the sandbox: nothing arrives.
    let r = call(&mut c, "POST", "/v1/me/top-ups", &token, Some(json!({"bank_account_id": bank, "amount": 1013})));
    let path = format!("/v1/me/top-ups/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(settled(&mut c, &path, &token)["status"], "declined");
    assert_eq!(balance(&mut c, &token).0, "300000");

    // Operators may lower a tier's limits, never raise them past the law's.
    let r = post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": 500001, "daily_outgoing": 1}));
    assert_problem(&r, 422, "invalid_field");
    let r = post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": 400000, "daily_outgoing": 500000}));
    assert_eq!(r.json()["balance_cap"], "400000");
    let r = call(&mut c, "POST", "/v1/me/top-ups", &token, Some(json!({"bank_account_id": bank, "amount": 100001})));
    assert_eq!(r.json()["remaining"], "100000", "the lowered cap applies at once");
    post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": 500000, "daily_outgoing": 500000}));

    // The balance cap of a basic wallet (500,000), exactly at the boundary.
    let r = call(&mut c, "POST", "/v1/me/top-ups", &token, Some(json!({"bank_account_id": bank, "amount": 200001})));
    assert_problem(&r, 422, "limit_exceeded");
    assert_eq!(r.json()["limit"], "balance_cap");
    assert_eq!(r.json()["remaining"], "200000");
    let r = call(&mut c, "POST", "/v1/me/top-ups", &token, Some(json!({"bank_account_id": bank, "amount": 200000})));
    assert_eq!(r.status, 201);
    let path = format!("/v1/me/top-ups/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(settled(&mut c, &path, &token)["status"], "succeeded");

    // The user may lower the PIN-free amount (not raise it past 50,000).
    let r = call(&mut c, "POST", "/v1/me/settings", &token, Some(json!({"pin_free_amount": 50001})));
    assert_problem(&r, 422, "invalid_field");
    let r = call(&mut c, "POST", "/v1/me/settings", &token, Some(json!({"pin_free_amount": 0})));
    assert_eq!(r.json()["pin_free_amount"], "0");
    assert_problem(
        &call(&mut c, "POST", "/v1/me/withdrawals", &token, Some(json!({"bank_account_id": bank, "amount": 1}))),
        401,
        "pin_required",
    );
    let r = call(&mut c, "POST", "/v1/me/settings", &token, Some(json!({"pin_free_amount": 50000})));
    assert_eq!(r.json()["pin_free_amount"], "50000");

    // Withdrawals above 50,000 need the PIN.
    let w = |amount: u64, pin: Option<&str>| {
        let mut body = json!({"bank_account_id": bank, "amount": amount});
        if let Some(pin) = pin {
            body["pin"] = json!(pin);
        }
        body
    };
    assert_problem(&call(&mut c, "POST", "/v1/me/withdrawals", &token, Some(w(60000, None))), 401, "pin_required");
    assert_problem(
        &call(&mut c, "POST", "/v1/me/withdrawals", &token, Some(w(60000, Some("000000")))),
        401,
        "wrong_pin",
    );
    let r = call(&mut c, "POST", "/v1/me/withdrawals", &token, Some(w(60000, Some("135790"))));
    assert_eq!(r.status, 201, "{}", r.json());
    let path = format!("/v1/me/withdrawals/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(settled(&mut c, &path, &token)["status"], "succeeded");
    assert_eq!(balance(&mut c, &token).0, "440000");
    let w_now = call(&mut c, "GET", "/v1/me/wallet", &token, None).json();
    assert_eq!(w_now["daily_outgoing"]["used"], "60000");
    assert_eq!(w_now["daily_outgoing"]["remaining"], "440000");
    // The daily outgoing limit (500,000) counts the 60,000 already sent today.
    let r = call(&mut c, "POST", "/v1/me/withdrawals", &token, Some(w(440001, Some("135790"))));
    assert_problem(&r, 422, "limit_exceeded");
    assert_eq!((r.json()["limit"].clone(), r.json()["remaining"].clone()), (json!("daily_outgoing"), json!("440000")));
    assert_eq!(r.json()["value"], "500000");
    // Exactly what is left of the day passes, and then nothing more does.
    let r = call(&mut c, "POST", "/v1/me/withdrawals", &token, Some(w(440000, Some("135790"))));
    assert_eq!(r.status, 201, "{}", r.json());
    let path = format!("/v1/me/withdrawals/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(settled(&mut c, &path, &token)["status"], "succeeded");
    assert_eq!(balance(&mut c, &token).0, "0");
    let w_now = call(&mut c, "GET", "/v1/me/wallet", &token, None).json();
    assert_eq!(w_now["daily_outgoing"]["remaining"], "0");

    // Bad amounts, malformed bodies and another user's resources: 4xx, nothing changes.
    let overflowing = serde_json::from_str::<Value>("18446744073709551616").unwrap();
    for amount in [json!(0), json!(-5), json!(1.5), json!("100"), json!(1_000_000_001u64), overflowing] {
        let r =
            call(&mut c, "POST", "/v1/me/top-ups", &token, Some(json!({"bank_account_id": bank, "amount": amount})));
        assert!(r.status == 422 || r.status == 400, "amount {amount}: {}", r.json());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    for raw in
        ["{\"bank_account_id\": \"1\", \"amount\": ", "[]", "", "{\"bank_account_id\": \"1\", \"amount\": 5, \"x\": 1}"]
    {
        let head = format!(
            "POST /v1/me/top-ups HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        );
        let r = c.send_raw(&head, raw.as_bytes()).unwrap();
        assert!(r.status == 400 || r.status == 422, "{raw}: {}", r.json());
        assert!(r.json()["code"].is_string(), "{raw}: {}", r.json());
    }
    // Fundings are numbered together: 3 top-ups and 2 withdrawals so far, and no sixth.
    assert_eq!(call(&mut c, "GET", "/v1/me/withdrawals/5", &token, None).status, 200);
    assert_eq!(call(&mut c, "GET", "/v1/me/top-ups/6", &token, None).status, 404, "no top-up was made");
    assert_eq!(balance(&mut c, &token).0, "0");
    let other = user(&mut c, "010-4444-5555");
    assert_problem(&call(&mut c, "GET", &path, &other, None), 404, "not_found");
    let r = call(&mut c, "POST", "/v1/me/top-ups", &other, Some(json!({"bank_account_id": bank, "amount": 1000})));
    assert_problem(&r, 404, "not_found");
    assert_problem(&call(&mut c, "GET", "/v1/me/top-ups/1", "kasa_s_bad", None), 401, "unauthorized");

    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}

/// Remittance end to end: to a user by phone, to a number without a wallet (held, then
/// claimed by signing up), cancel, PIN and limits, and who may see a transfer.
#[test]
fn send_money_to_users_and_to_numbers_without_a_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = user(&mut c, "010-1000-0001");
    let bob = user(&mut c, "010-1000-0002");
    fund(&mut c, &alice, "1002003004", 200000);

    let r = call(
        &mut c,
        "POST",
        "/v1/transfers",
        &alice,
        Some(json!({"to_phone": "01010000002", "amount": 30000, "memo": "점심"})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["status"], "completed");
    let sent = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(balance(&mut c, &bob).0, "30000");
    // Both ends see it; a third user does not.
    assert_eq!(call(&mut c, "GET", &format!("/v1/transfers/{sent}"), &bob, None).json()["memo"], "점심");
    let carol = user(&mut c, "010-1000-0003");
    assert_problem(&call(&mut c, "GET", &format!("/v1/transfers/{sent}"), &carol, None), 404, "not_found");

    // Above 50,000 the PIN is needed.
    let big = json!({"to_phone": "01010000002", "amount": 60000});
    assert_problem(&call(&mut c, "POST", "/v1/transfers", &alice, Some(big.clone())), 401, "pin_required");
    let mut with_pin = big.clone();
    with_pin["pin"] = json!("135790");
    assert_eq!(call(&mut c, "POST", "/v1/transfers", &alice, Some(with_pin)).status, 201);

    // The recipient's cap: with basic wallets capped at 100,000, Bob (at 90,000) cannot take
    // 10,001. The refusal names the limit and its value, not Bob's room.
    post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": 100000, "daily_outgoing": 500000}));
    let r = call(&mut c, "POST", "/v1/transfers", &alice, Some(json!({"to_user_id": "2", "amount": 10001})));
    assert_problem(&r, 422, "limit_exceeded");
    assert_eq!(
        (r.json()["limit"].clone(), r.json()["value"].clone()),
        (json!("recipient_balance_cap"), json!("100000"))
    );
    assert!(r.json().get("remaining").is_none(), "{}", r.json());
    post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": 500000, "daily_outgoing": 500000}));
    assert_eq!(balance(&mut c, &bob).0, "90000");

    // To a number with no wallet: held, cancellable, claimed when the number signs up.
    let r = call(&mut c, "POST", "/v1/transfers", &alice, Some(json!({"to_phone": "010-9000-0001", "amount": 10000})));
    assert_eq!(r.json()["status"], "held");
    assert_eq!(r.json()["to_phone"], "+**********01");
    let held = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(balance(&mut c, &alice), ("110000".into(), "100000".into()));
    let r = call(&mut c, "POST", "/v1/transfers", &alice, Some(json!({"to_phone": "010-9000-0002", "amount": 5000})));
    let cancelled = r.json()["id"].as_str().unwrap().to_string();
    let r = call(&mut c, "POST", &format!("/v1/transfers/{cancelled}/cancel"), &alice, None);
    assert_eq!(r.json()["status"], "cancelled");
    assert_problem(&call(&mut c, "POST", &format!("/v1/transfers/{cancelled}/cancel"), &alice, None), 409, "not_held");
    assert_problem(&call(&mut c, "POST", &format!("/v1/transfers/{held}/cancel"), &bob, None), 404, "not_found");
    let dave = user(&mut c, "+82 10 9000 0001");
    assert_eq!(balance(&mut c, &dave).0, "10000", "the held money arrived at sign-up");
    assert_eq!(call(&mut c, "GET", &format!("/v1/transfers/{held}"), &alice, None).json()["status"], "completed");
    assert_eq!(balance(&mut c, &alice), ("100000".into(), "100000".into()));

    // Alice's history, newest first: the cancelled hold back with her, the hold itself, the
    // claimed hold, 60,000 and 30,000 sent, the top-up.
    let history = call(&mut c, "GET", "/v1/me/transactions", &alice, None).json();
    let rows: Vec<(String, String, String, Value)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["status"].as_str().unwrap().into(),
                e["amount"].as_str().unwrap().into(),
                e["balance_after"].clone(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, Value)> = vec![
        // Cancelled while the 10,000 was still held (not yet posted): 110,000 then.
        ("returned".into(), "cancelled".into(), "5000".into(), json!("110000")),
        ("held".into(), "cancelled".into(), "5000".into(), json!("110000")),
        ("sent".into(), "completed".into(), "10000".into(), json!("100000")),
        ("sent".into(), "completed".into(), "60000".into(), json!("110000")),
        ("sent".into(), "completed".into(), "30000".into(), json!("170000")),
        ("top_up".into(), "succeeded".into(), "200000".into(), json!("200000")),
    ];
    assert_eq!(rows, expected);
    let page = call(&mut c, "GET", "/v1/me/transactions?limit=3", &alice, None).json();
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let next = call(&mut c, "GET", &format!("/v1/me/transactions?limit=10&cursor={cursor}"), &alice, None).json();
    assert_eq!(next["data"].as_array().unwrap().len(), 3);
    assert_eq!(next["data"][0]["amount"], "60000");
    let bobs = call(&mut c, "GET", "/v1/me/transactions", &bob, None).json();
    assert_eq!(bobs["data"][0]["type"], "received");
    assert_eq!(bobs["data"][0]["counterparty_user_id"], "1");
    let daves = call(&mut c, "GET", "/v1/me/transactions", &dave, None).json();
    assert_eq!(
        (daves["data"][0]["type"].clone(), daves["data"][0]["balance_after"].clone()),
        (json!("received"), json!("10000"))
    );

    // Bad requests.
    for (body, status, code) in [
        (json!({"to_phone": "01010000002", "to_user_id": "2", "amount": 1}), 422, "invalid_field"),
        (json!({"amount": 1}), 422, "invalid_field"),
        (json!({"to_phone": "01010000001", "amount": 1}), 422, "to_self"),
        (json!({"to_user_id": "999", "amount": 1}), 404, "not_found"),
        (json!({"to_phone": "01010000002", "amount": 0}), 422, "invalid_field"),
        (json!({"to_phone": "01010000002", "amount": 150000}), 422, "insufficient_funds"),
    ] {
        let mut body = body;
        if body["amount"] == 150000 {
            body["pin"] = json!("135790");
        }
        assert_problem(&call(&mut c, "POST", "/v1/transfers", &alice, Some(body.clone())), status, code);
    }
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}

/// 50 concurrent sends that together exceed the balance: exactly the affordable ones
/// succeed, because the funds check and the transfer are one step in the state machine.
#[test]
fn fifty_concurrent_sends_exactly_the_affordable_ones_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = user(&mut c, "010-3000-0001");
    let _bob = user(&mut c, "010-3000-0002");
    fund(&mut c, &alice, "3003003003", 100000);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let mut client = server.client();
            let alice = alice.clone();
            std::thread::spawn(move || {
                let r = call(
                    &mut client,
                    "POST",
                    "/v1/transfers",
                    &alice,
                    Some(json!({"to_phone": "01030000002", "amount": 3000})),
                );
                (r.status, r.json()["code"].clone())
            })
        })
        .collect();
    let results: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results.iter().filter(|(s, code)| *s == 422 && code == "insufficient_funds").count();
    assert_eq!((ok, refused), (33, 17), "{results:?}");
    assert_eq!(balance(&mut c, &alice).0, "1000");
    assert_eq!(server.terminate().code(), Some(0));
    let (verified, report) = verify(dir.path());
    assert!(verified, "{report}");
}

/// Money requests and split bills end to end.
#[test]
fn request_money_and_split_a_bill() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = user(&mut c, "010-5000-0001");
    let bob = user(&mut c, "010-5000-0002");
    let carol = user(&mut c, "010-5000-0003");
    for (token, number) in [(&bob, "5005005002"), (&carol, "5005005003")] {
        let r = call(
            &mut c,
            "POST",
            "/v1/me/bank-accounts",
            token,
            Some(json!({"bank_code": "088", "account_number": number, "holder_name": "x"})),
        );
        let bank = r.json()["id"].as_str().unwrap().to_string();
        let r = call(&mut c, "POST", "/v1/me/top-ups", token, Some(json!({"bank_account_id": bank, "amount": 100000})));
        let path = format!("/v1/me/top-ups/{}", r.json()["id"].as_str().unwrap());
        assert_eq!(settled(&mut c, &path, token)["status"], "succeeded");
    }
    // Alice asks Bob for 12,000; Bob pays; a second request Bob declines.
    let r = call(
        &mut c,
        "POST",
        "/v1/money-requests",
        &alice,
        Some(json!({"from_phone": "01050000002", "amount": 12000, "memo": "티켓"})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["status"], "pending");
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_problem(&call(&mut c, "POST", &format!("/v1/money-requests/{id}/pay"), &carol, None), 404, "not_found");
    let r = call(&mut c, "POST", &format!("/v1/money-requests/{id}/pay"), &bob, None);
    assert_eq!(r.json()["status"], "paid", "{}", r.json());
    assert!(r.json()["transfer_id"].is_string());
    assert_problem(&call(&mut c, "POST", &format!("/v1/money-requests/{id}/pay"), &bob, None), 409, "not_pending");
    assert_eq!(balance(&mut c, &alice).0, "12000");
    // Paying more than the PIN-free amount (50,000) needs the PIN, checked like a login; a
    // refused payment leaves the request pending and the money where it was.
    let r = call(&mut c, "POST", "/v1/money-requests", &alice, Some(json!({"from_user_id": "2", "amount": 60000})));
    let big = r.json()["id"].as_str().unwrap().to_string();
    let pay_big = format!("/v1/money-requests/{big}/pay");
    assert_problem(&call(&mut c, "POST", &pay_big, &bob, None), 401, "pin_required");
    assert_problem(&call(&mut c, "POST", &pay_big, &bob, Some(json!({"pin": "000000"}))), 401, "wrong_pin");
    assert_eq!(call(&mut c, "GET", &format!("/v1/money-requests/{big}"), &alice, None).json()["status"], "pending");
    assert_eq!(balance(&mut c, &bob).0, "88000");
    let r = call(&mut c, "POST", &pay_big, &bob, Some(json!({"pin": "135790"})));
    assert_eq!(r.json()["status"], "paid", "{}", r.json());
    assert_eq!(balance(&mut c, &alice).0, "72000");
    assert_eq!(balance(&mut c, &bob).0, "28000");
    let r = call(&mut c, "POST", "/v1/money-requests", &alice, Some(json!({"from_user_id": "2", "amount": 5000})));
    let declined = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(&mut c, "POST", &format!("/v1/money-requests/{declined}/decline"), &bob, None).json()["status"],
        "declined"
    );
    assert_eq!(
        call(&mut c, "GET", &format!("/v1/money-requests/{declined}"), &alice, None).json()["status"],
        "declined"
    );
    assert_problem(
        &call(&mut c, "POST", "/v1/money-requests", &alice, Some(json!({"from_phone": "01099999999", "amount": 1}))),
        404,
        "not_found",
    );

    // A 30,001 won dinner split equally among three: Bob and Carol owe 10,000 each.
    let r = call(
        &mut c,
        "POST",
        "/v1/split-bills",
        &alice,
        Some(json!({"total": 30001, "shares": [{"phone": "01050000002"}, {"user_id": "3"}], "memo": "저녁"})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let bill = r.json();
    assert_eq!(bill["shares"][0]["amount"], "10000");
    assert_eq!(bill["paid"], 0);
    let share = bill["shares"][1]["id"].as_str().unwrap().to_string();
    call(&mut c, "POST", &format!("/v1/money-requests/{share}/pay"), &carol, None);
    let bill_now =
        call(&mut c, "GET", &format!("/v1/split-bills/{}", bill["id"].as_str().unwrap()), &alice, None).json();
    assert_eq!(bill_now["paid"], 1);
    assert_eq!(bill_now["shares"][1]["status"], "paid");

    // Payers find what they were asked for; requesters what they asked; newest first.
    let ids = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    };
    let pending = call(&mut c, "GET", "/v1/money-requests?status=pending", &bob, None).json();
    assert_eq!(ids(&pending), vec![bill["shares"][0]["id"].as_str().unwrap().to_string()], "{pending}");
    assert_eq!(pending["data"][0]["amount"], "10000");
    let page = call(&mut c, "GET", "/v1/money-requests?role=payer&limit=2", &bob, None).json();
    assert_eq!(ids(&page), vec!["4", "3"]);
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = call(&mut c, "GET", &format!("/v1/money-requests?limit=2&cursor={cursor}"), &bob, None).json();
    assert_eq!((ids(&rest), rest["has_more"].clone()), (vec!["2".to_string(), "1".to_string()], json!(false)));
    let asked = call(&mut c, "GET", "/v1/money-requests?role=requester", &alice, None).json();
    assert_eq!(ids(&asked), vec!["5", "4", "3", "2", "1"]);
    assert_eq!(ids(&call(&mut c, "GET", "/v1/money-requests?role=requester", &bob, None).json()), Vec::<String>::new());
    let carols = call(&mut c, "GET", "/v1/money-requests?status=paid", &carol, None).json();
    assert_eq!(ids(&carols), vec!["5"]);
    for bad in ["role=boss", "status=lost", "limit=0", "cursor=4", "colour=red"] {
        let r = call(&mut c, "GET", &format!("/v1/money-requests?{bad}"), &bob, None);
        assert_problem(&r, 400, "invalid_parameter");
    }
    assert_problem(
        &call(&mut c, "GET", &format!("/v1/split-bills/{}", bill["id"].as_str().unwrap()), &bob, None),
        404,
        "not_found",
    );
    let r = call(
        &mut c,
        "POST",
        "/v1/split-bills",
        &alice,
        Some(json!({"total": 100, "shares": [{"user_id": "2", "amount": 60}, {"user_id": "3", "amount": 60}]})),
    );
    assert_problem(&r, 422, "invalid_field");
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}

/// Idempotency-Key end to end: a retried send moves money once and replays the answer; the
/// same key with another body is 422; keys are per caller; and the key survives a kill -9.
#[test]
fn idempotency_keys_make_retries_safe_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = user(&mut c, "010-6000-0001");
    let bob = user(&mut c, "010-6000-0002");
    fund(&mut c, &alice, "6006006001", 100000);

    let keyed = |c: &mut kasa::client::Client, token: &str, key: &str, body: &Value| {
        let head = format!("POST /v1/transfers HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\n");
        c.send_raw(&head, body.to_string().as_bytes()).unwrap()
    };
    let send = json!({"to_phone": "01060000002", "amount": 7000, "memo": "retry me"});
    let first = keyed(&mut c, &alice, "pay-1", &send);
    assert_eq!(first.status, 201, "{}", first.json());
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = keyed(&mut c, &alice, "pay-1", &send);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the stored answer is replayed byte for byte");
    assert_eq!(balance(&mut c, &bob).0, "7000", "the money moved once");
    let other = json!({"to_phone": "01060000002", "amount": 8000});
    assert_problem(&keyed(&mut c, &alice, "pay-1", &other), 422, "idempotency_key_reused");
    // Another caller's key space: Bob may use "pay-1" too.
    let back = json!({"to_phone": "01060000001", "amount": 1000});
    assert_eq!(keyed(&mut c, &bob, "pay-1", &back).status, 201);
    // Refusals are stored and replayed as well.
    let too_much = json!({"to_phone": "01060000002", "amount": 95000, "pin": "135790"});
    assert_problem(&keyed(&mut c, &alice, "pay-2", &too_much), 422, "insufficient_funds");
    let replayed = keyed(&mut c, &alice, "pay-2", &too_much);
    assert_eq!((replayed.status, replayed.header("idempotent-replayed")), (422, Some("true")));
    assert_problem(&keyed(&mut c, &alice, "", &send), 400, "invalid_idempotency_key");

    // The key is in the journaled state: after kill -9 the retry still moves nothing.
    server.kill9();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let after = keyed(&mut c, &alice, "pay-1", &send);
    assert_eq!((after.status, after.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(balance(&mut c, &bob).0, "6000");
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}

/// A keyed request whose first try is still running answers `409 idempotency_key_in_use` to
/// a retry; and a client that hangs up before its answer does not stop the request: it
/// finishes, its answer is stored, and the next retry gets it (the money moves once).
#[test]
fn a_keyed_request_in_progress_is_409_and_finishes_after_its_client_hangs_up() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = user(&mut c, "010-6100-0001");
    let bob = user(&mut c, "010-6100-0002");
    fund(&mut c, &alice, "6106106001", 100000);

    let raw = |token: &str, key: &str, body: &Value| {
        let body = body.to_string();
        format!(
            "POST /v1/transfers HTTP/1.1\r\nHost: kasa\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Eight logins of unknown numbers take both PIN-hashing permits for a while (each checks
    // a decoy hash at full Argon2 cost, four rounds of two), so the keyed send below, which
    // needs its PIN checked too, is still running 50 ms later when its retry comes.
    let mut busy: Vec<std::net::TcpStream> = (0..8)
        .map(|i| {
            let body = json!({"phone": format!("0106199000{i}"), "pin": "000000"}).to_string();
            let mut s = std::net::TcpStream::connect(server.addr).unwrap();
            let request = format!(
                "POST /v1/sessions HTTP/1.1\r\nHost: kasa\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(request.as_bytes()).unwrap();
            s
        })
        .collect();
    let send = json!({"to_user_id": "2", "amount": 60000, "pin": "135790"});
    let mut first = std::net::TcpStream::connect(server.addr).unwrap();
    first.write_all(raw(&alice, "hang-up", &send).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let mut retry = server.client();
    let r = retry.send_bytes(raw(&alice, "hang-up", &send).as_bytes()).unwrap();
    assert_problem(&r, 409, "idempotency_key_in_use");
    // The first client hangs up before its answer.
    drop(first);
    busy.clear();
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let r = retry.send_bytes(raw(&alice, "hang-up", &send).as_bytes()).unwrap();
        if r.status != 409 {
            break r;
        }
        assert!(Instant::now() < deadline, "the key stayed in use: {}", r.json());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((answer.status, answer.header("idempotent-replayed")), (201, Some("true")), "{}", answer.json());
    assert_eq!(answer.json()["status"], "completed");
    assert_eq!(balance(&mut c, &bob).0, "60000", "the money moved once");
    assert_eq!(balance(&mut c, &alice).0, "40000");
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}

/// `kill -9` in the middle of a wallet load (sends, holds, sign-ups and top-ups): after the
/// restart every acknowledged send is there with its amount and status, every acknowledged
/// sign-up can log in, every acknowledged top-up is there, no won was created or lost (the
/// users' balances sum to what they were funded with and the top-ups the bank approved; held
/// money is still in its sender's balance, as a pending debit), and `kasa verify` passes.
#[test]
fn kill_9_during_remittances_loses_no_acknowledged_send() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    const USERS: usize = 6;
    const FUNDED: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let tokens: Vec<String> = (0..USERS)
        .map(|i| {
            let token = user(&mut c, &format!("010-6200-000{i}"));
            fund(&mut c, &token, &format!("620620600{i}"), FUNDED);
            token
        })
        .collect();
    let tokens = Arc::new(tokens);
    let stop = Arc::new(AtomicBool::new(false));
    // (sender index, remittance id, amount, status) of every acknowledged send.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4usize)
        .map(|worker| {
            let (tokens, stop, acknowledged) = (tokens.clone(), stop.clone(), acknowledged.clone());
            let mut client = server.client();
            std::thread::spawn(move || {
                let mut n = worker;
                while !stop.load(Ordering::Relaxed) {
                    n += 7;
                    let from = n % USERS;
                    // Every fifth send goes to a number without a wallet and is held.
                    let body = if n % 5 == 0 {
                        json!({"to_phone": "010-6299-0000", "amount": 1 + n % 3000})
                    } else {
                        json!({"to_user_id": ((from + 1 + n % (USERS - 1)) % USERS + 1).to_string(), "amount": 1 + n % 3000})
                    };
                    let head = format!(
                        "POST /v1/transfers HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n",
                        tokens[from]
                    );
                    // After the kill the connection fails: that send was not acknowledged.
                    let Ok(r) = client.send_raw(&head, body.to_string().as_bytes()) else { return };
                    if r.status == 201 {
                        let v = r.json();
                        let record = (
                            from,
                            v["id"].as_str().unwrap().to_string(),
                            v["amount"].as_str().unwrap().to_string(),
                            v["status"].as_str().unwrap().to_string(),
                        );
                        acknowledged.lock().unwrap().push(record);
                    }
                }
            })
        })
        .collect();
    // Sign-ups of new numbers, and small top-ups for the first user, at the same time.
    let signed_up = Arc::new(Mutex::new(Vec::new()));
    let topped_up = Arc::new(Mutex::new(Vec::new()));
    let bank = call(&mut c, "GET", "/v1/me/bank-accounts", &tokens[0], None).json()["data"][0]["id"].clone();
    let mut workers = workers;
    {
        let (stop, signed_up, mut client) = (stop.clone(), signed_up.clone(), server.client());
        workers.push(std::thread::spawn(move || {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let phone = format!("010-6210-{i:04}");
                let body = json!({"phone": phone, "name": "New", "pin": "135790"});
                let Ok(r) = client.send("POST", "/v1/users", "application/json", body.to_string().as_bytes()) else {
                    return;
                };
                if r.status == 201 {
                    signed_up.lock().unwrap().push((phone, r.json()["id"].as_str().unwrap().to_string()));
                }
            }
        }));
    }
    {
        let (stop, topped_up, token, mut client) =
            (stop.clone(), topped_up.clone(), tokens[0].clone(), server.client());
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"bank_account_id": bank, "amount": 100});
                let head = format!(
                    "POST /v1/me/top-ups HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                );
                let Ok(r) = client.send_raw(&head, body.to_string().as_bytes()) else { return };
                if r.status == 201 {
                    topped_up.lock().unwrap().push(r.json()["id"].as_str().unwrap().to_string());
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while signed_up.lock().unwrap().len() < 3 || topped_up.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "sign-ups and top-ups did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    let acknowledged = kill_9_under_load(server, &acknowledged, 400, &stop, workers);
    let signed_up = signed_up.lock().unwrap().clone();
    let topped_up = topped_up.lock().unwrap().clone();

    let server = Server::start(dir.path());
    let mut c = server.client();
    for (from, id, amount, status) in &acknowledged {
        let r = call(&mut c, "GET", &format!("/v1/transfers/{id}"), &tokens[*from], None);
        assert_eq!(r.status, 200, "acknowledged send {id} lost after kill -9: {}", r.json());
        assert_eq!(r.json()["amount"], amount.as_str());
        assert_eq!(r.json()["status"], status.as_str());
    }
    for (phone, id) in &signed_up {
        let r = post(&mut c, "/v1/sessions", &json!({"phone": phone, "pin": "135790"}));
        assert_eq!((r.status, r.json()["user_id"].as_str()), (201, Some(id.as_str())), "sign-up {phone} lost");
    }
    let mut approved = 0;
    for id in &topped_up {
        let r = call(&mut c, "GET", &format!("/v1/me/top-ups/{id}"), &tokens[0], None);
        assert_eq!(r.status, 200, "acknowledged top-up {id} lost after kill -9: {}", r.json());
        approved += u64::from(r.json()["status"] == "succeeded") * 100;
    }
    let total: u64 = tokens.iter().map(|t| balance(&mut c, t).0.parse::<u64>().unwrap()).sum();
    assert_eq!(total, USERS as u64 * FUNDED + approved, "no won created or lost");
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}

/// On a test clock (`kasa serve --test-clock`) the timeouts happen end to end through HTTP: a
/// bank that never answers (amounts ending in 99) leaves a top-up and a withdrawal to expire
/// after 60 s, giving the money and the daily limit back; money held for a number that signs
/// up within 48 hours is claimed, and money held past 48 hours returns to its sender (a later
/// sign-up claims nothing); a money request expires after 7 days. Without the flag the
/// clock cannot be moved.
#[test]
fn timeouts_happen_by_engine_time_on_a_test_clock() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let advance = |c: &mut kasa::client::Client, seconds: u64| {
        let r = post(c, "/v1/admin/test-clock/advance", &json!({"seconds": seconds}));
        assert_eq!(r.status, 200, "{}", r.json());
    };
    let alice = user(&mut c, "010-6300-0001");
    fund(&mut c, &alice, "6306306001", 100000);
    let bank = call(&mut c, "GET", "/v1/me/bank-accounts", &alice, None).json()["data"][0]["id"].clone();

    // The bank never answers: both reservations expire after 60 s.
    let r = call(&mut c, "POST", "/v1/me/top-ups", &alice, Some(json!({"bank_account_id": bank, "amount": 10099})));
    let top_up = format!("/v1/me/top-ups/{}", r.json()["id"].as_str().unwrap());
    let r = call(&mut c, "POST", "/v1/me/withdrawals", &alice, Some(json!({"bank_account_id": bank, "amount": 20099})));
    let withdrawal = format!("/v1/me/withdrawals/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(balance(&mut c, &alice), ("100000".into(), "79901".into()));
    advance(&mut c, 30);
    assert_eq!(call(&mut c, "GET", &top_up, &alice, None).json()["status"], "pending");
    advance(&mut c, 31);
    assert_eq!(call(&mut c, "GET", &top_up, &alice, None).json()["status"], "expired");
    assert_eq!(call(&mut c, "GET", &withdrawal, &alice, None).json()["status"], "expired");
    assert_eq!(balance(&mut c, &alice), ("100000".into(), "100000".into()));
    let w = call(&mut c, "GET", "/v1/me/wallet", &alice, None).json();
    assert_eq!(w["daily_outgoing"]["used"], "0", "an expired withdrawal gives the daily limit back");

    // Held for two numbers: one signs up after 47 hours and gets it; the other never does.
    let send = |c: &mut kasa::client::Client, phone: &str, amount: u64| {
        let r = call(c, "POST", "/v1/transfers", &alice, Some(json!({"to_phone": phone, "amount": amount})));
        assert_eq!(r.json()["status"], "held", "{}", r.json());
        format!("/v1/transfers/{}", r.json()["id"].as_str().unwrap())
    };
    let unclaimed = send(&mut c, "010-6300-0009", 5000);
    let claimed = send(&mut c, "010-6300-0008", 7000);
    advance(&mut c, 47 * 3600);
    let bob = user(&mut c, "010-6300-0008");
    assert_eq!(balance(&mut c, &bob).0, "7000", "claimed within 48 hours");
    assert_eq!(call(&mut c, "GET", &claimed, &alice, None).json()["status"], "completed");
    assert_eq!(call(&mut c, "GET", &unclaimed, &alice, None).json()["status"], "held");
    advance(&mut c, 3601);
    assert_eq!(call(&mut c, "GET", &unclaimed, &alice, None).json()["status"], "returned");
    assert_eq!(balance(&mut c, &alice), ("93000".into(), "93000".into()));
    let history = call(&mut c, "GET", "/v1/me/transactions?limit=1", &alice, None).json();
    assert_eq!(
        (history["data"][0]["type"].clone(), history["data"][0]["status"].clone()),
        (json!("returned"), json!("returned"))
    );
    let late = user(&mut c, "010-6300-0009");
    assert_eq!(balance(&mut c, &late).0, "0", "a sign-up after 48 hours claims nothing");

    // A money request expires after 7 days; paying it then is refused.
    let r = call(&mut c, "POST", "/v1/money-requests", &alice, Some(json!({"from_user_id": "2", "amount": 1000})));
    let request = r.json()["id"].as_str().unwrap().to_string();
    advance(&mut c, 7 * 24 * 3600);
    assert_eq!(call(&mut c, "GET", &format!("/v1/money-requests/{request}"), &bob, None).json()["status"], "expired");
    // The moved time is in the journal: a restart (with the flag) goes on from it.
    assert_eq!(server.terminate().code(), Some(0));
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    assert_eq!(call(&mut c, "GET", &format!("/v1/money-requests/{request}"), &bob, None).json()["status"], "expired");
    let r = call(&mut c, "POST", &format!("/v1/money-requests/{request}/pay"), &bob, None);
    assert_problem(&r, 409, "not_pending");
    assert_problem(&post(&mut c, "/v1/admin/test-clock/advance", &json!({"seconds": 0})), 422, "invalid_field");
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");

    // A server without --test-clock refuses to move time, and also goes on from the
    // journal's time rather than going back to the wall clock's.
    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_problem(&post(&mut c, "/v1/admin/test-clock/advance", &json!({"seconds": 60})), 404, "not_found");
    assert_eq!(call(&mut c, "GET", &format!("/v1/money-requests/{request}"), &bob, None).json()["status"], "expired");
    assert_eq!(balance(&mut c, &alice).0, "93000");
    assert_eq!(server.terminate().code(), Some(0));
}

/// An operator's withdrawal fee: shown in the wallet, reserved with the amount (so the funds
/// must cover both), charged to Kasa's fee income account when the bank pays out, shown on
/// the withdrawal and in the history; out-of-range fees are refused.
#[test]
fn a_withdrawal_fee_is_charged_when_the_bank_pays_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let token = user(&mut c, "010-6400-0001");
    fund(&mut c, &token, "6406406001", 100000);
    let bank = call(&mut c, "GET", "/v1/me/bank-accounts", &token, None).json()["data"][0]["id"].clone();
    assert_problem(&post(&mut c, "/v1/admin/fees", &json!({"withdrawal_fee": 10001})), 422, "invalid_field");
    let r = call(&mut c, "POST", "/v1/admin/fees", &token, Some(json!({"withdrawal_fee": 500})));
    assert_problem(&r, 401, "unauthorized");
    let r = post(&mut c, "/v1/admin/fees", &json!({"withdrawal_fee": 500}));
    assert_eq!(r.json()["withdrawal_fee"], "500", "{}", r.json());
    assert_eq!(call(&mut c, "GET", "/v1/me/wallet", &token, None).json()["withdrawal_fee"], "500");

    let withdraw = |c: &mut kasa::client::Client, amount: u64| {
        call(
            c,
            "POST",
            "/v1/me/withdrawals",
            &token,
            Some(json!({"bank_account_id": bank, "amount": amount, "pin": "135790"})),
        )
    };
    assert_problem(&withdraw(&mut c, 99501), 422, "insufficient_funds");
    let r = withdraw(&mut c, 9500);
    assert_eq!((r.status, r.json()["fee"].clone()), (201, json!("500")), "{}", r.json());
    let path = format!("/v1/me/withdrawals/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(settled(&mut c, &path, &token)["status"], "succeeded");
    assert_eq!(balance(&mut c, &token).0, "90000");
    let entry = call(&mut c, "GET", "/v1/me/transactions?limit=1", &token, None).json()["data"][0].clone();
    assert_eq!(
        (entry["type"].as_str(), entry["amount"].as_str(), entry["fee"].as_str()),
        (Some("withdrawal"), Some("9500"), Some("500"))
    );
    assert_eq!(entry["balance_after"], "90000");
    let fee_income = ((1u128 << 127) | (9u128 << 64)).to_string();
    let account = get(&mut c, &format!("/v1/ledger/accounts/{fee_income}")).json();
    assert_eq!((account["code"].clone(), account["credits_posted"].clone()), (json!(2003), json!("500")));
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}
