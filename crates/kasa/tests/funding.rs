//! Bank accounts, top-ups and withdrawals end to end through the sandbox bank (approve,
//! decline for amounts ending in 13, expire for amounts ending in 99), limits, the PIN beyond
//! the PIN-free budget, remittances, money requests and split bills, idempotency keys, and
//! other users' resources.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

/// A user with a linked bank account (Shinhan, a number made from `seed`) and `amount` won
/// topped up through the sandbox bank; the bank account's id.
fn fund(c: &mut kasa::client::Client, user: &User, seed: &str, amount: u64) -> String {
    let bank = link_bank(c, user, &format!("10{seed:0>10}"));
    assert_eq!(funding(c, user, "top-ups", &bank, amount, None)["status"], "succeeded");
    bank
}

#[test]
fn top_up_and_withdraw_through_the_sandbox_bank() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let user = sign_up(&server, "010-2222-3333");

    let body = json!({"bank_code": "004", "account_number": "123-456-789012", "holder_name": "Test"});
    let r = user.post(&mut c, "/v1/me/bank-accounts", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["account_number"], "******9012", "account numbers are masked");
    let bank = r.json()["id"].as_str().unwrap().to_string();
    let body = json!({"bank_code": "004", "account_number": "123456789012", "holder_name": "Test"});
    assert_problem(&user.post(&mut c, "/v1/me/bank-accounts", &body), 409, "already_linked");
    let r = user.get(&mut c, "/v1/me/bank-accounts");
    assert_eq!((r.json()["data"].as_array().unwrap().len(), &r.json()["has_more"]), (1, &json!(false)));
    assert!(!String::from_utf8_lossy(&r.body).contains("123456789012"));

    // A top-up is pending at once, then the bank approves it.
    let top_up = funding(&mut c, &user, "top-ups", &bank, 300_000, None);
    assert_eq!(
        (&top_up["status"], &top_up["amount"], &top_up["currency"]),
        (&json!("succeeded"), &json!("300000"), &json!("KRW"))
    );
    assert_eq!(user.balance(&mut c), (300_000, 300_000));

    // Amounts ending in 13 are declined by the sandbox: nothing arrives.
    assert_eq!(funding(&mut c, &user, "top-ups", &bank, 1013, None)["status"], "declined");
    assert_eq!(user.balance(&mut c).0, 300_000);

    // Operators may lower a tier's limits, never raise them past the law's.
    let r = post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": "500001", "daily_outgoing": "1"}));
    assert_problem(&r, 422, "above_legal_maxima");
    let r = post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": "400000", "daily_outgoing": "500000"}));
    assert_eq!((&r.json()["balance_cap"], &r.json()["currency"]), (&json!("400000"), &json!("KRW")));
    let r = user.post(&mut c, "/v1/me/top-ups", &json!({"bank_account_id": bank, "amount": "100001"}));
    assert_problem(&r, 422, "limit_exceeded");
    assert_eq!(r.json()["remaining"], "100000", "the lowered cap applies at once");
    post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": 500000, "daily_outgoing": 500000}));

    // The balance cap of a basic wallet (500,000), exactly at the boundary.
    let r = user.post(&mut c, "/v1/me/top-ups", &json!({"bank_account_id": bank, "amount": "200001"}));
    assert_problem(&r, 422, "limit_exceeded");
    assert_eq!(
        (&r.json()["limit"], &r.json()["remaining"], &r.json()["currency"]),
        (&json!("balance_cap"), &json!("200000"), &json!("KRW"))
    );
    assert_eq!(funding(&mut c, &user, "top-ups", &bank, 200_000, None)["status"], "succeeded");

    // The user may lower the PIN-free amount (not raise it past 50,000).
    assert_problem(&user.post(&mut c, "/v1/me/settings", &json!({"pin_free_amount": "50001"})), 422, "invalid_field");
    let r = user.post(&mut c, "/v1/me/settings", &json!({"pin_free_amount": "0", "currency": "KRW"}));
    assert_eq!((&r.json()["pin_free_amount"], &r.json()["currency"]), (&json!("0"), &json!("KRW")));
    let r = user.post(&mut c, "/v1/me/withdrawals", &json!({"bank_account_id": bank, "amount": "1"}));
    assert_problem(&r, 403, "pin_required");
    let r = user.post(&mut c, "/v1/me/settings", &json!({"pin_free_amount": 50000}));
    assert_eq!(r.json()["pin_free_amount"], "50000");

    // Withdrawals beyond the PIN-free budget need the PIN; a wrong PIN is 403, not 401.
    let w = |amount: u64, pin: Option<&str>| {
        let mut body = json!({"bank_account_id": bank, "amount": amount.to_string()});
        if let Some(pin) = pin {
            body["pin"] = json!(pin);
        }
        body
    };
    assert_problem(&user.post(&mut c, "/v1/me/withdrawals", &w(60000, None)), 403, "pin_required");
    let r = user.post(&mut c, "/v1/me/withdrawals", &w(60000, Some("975310")));
    assert_problem(&r, 403, "wrong_pin");
    assert_eq!(funding(&mut c, &user, "withdrawals", &bank, 60_000, Some(PIN))["status"], "succeeded");
    assert_eq!(user.balance(&mut c).0, 440_000);
    let wallet = user.wallet(&mut c);
    assert_eq!(
        (&wallet["daily_outgoing"]["used"], &wallet["daily_outgoing"]["remaining"]),
        (&json!("60000"), &json!("440000"))
    );
    // The daily outgoing limit (500,000) counts the 60,000 already sent today.
    let r = user.post(&mut c, "/v1/me/withdrawals", &w(440_001, Some(PIN)));
    assert_problem(&r, 422, "limit_exceeded");
    assert_eq!(
        (&r.json()["limit"], &r.json()["remaining"], &r.json()["value"]),
        (&json!("daily_outgoing"), &json!("440000"), &json!("500000"))
    );
    // Exactly what is left of the day passes, and then nothing more does.
    assert_eq!(funding(&mut c, &user, "withdrawals", &bank, 440_000, Some(PIN))["status"], "succeeded");
    assert_eq!(user.balance(&mut c).0, 0);
    assert_eq!(user.wallet(&mut c)["daily_outgoing"]["remaining"], "0");

    // Bad amounts, malformed bodies and another user's resources: 4xx, nothing changes.
    let overflowing = serde_json::from_str::<Value>("18446744073709551616").unwrap();
    for amount in [
        json!(0),
        json!("0"),
        json!(-5),
        json!("-5"),
        json!(1.5),
        json!("1.5"),
        json!("1e3"),
        json!(" 100"),
        json!(null),
        json!([100]),
        overflowing,
    ] {
        let r = user.post(&mut c, "/v1/me/top-ups", &json!({"bank_account_id": bank, "amount": amount}));
        assert!(r.status == 422 || r.status == 400, "amount {amount}: {}", r.json());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    let r = user.post(&mut c, "/v1/me/top-ups", &json!({"bank_account_id": bank, "amount": "100", "currency": "USD"}));
    assert_problem(&r, 422, "currency_not_supported");
    let auth = format!("Bearer {}", user.token);
    for raw in
        ["{\"bank_account_id\": \"1\", \"amount\": ", "[]", "", "{\"bank_account_id\": \"1\", \"amount\": 5, \"x\": 1}"]
    {
        let r = c
            .request(
                "POST",
                "/v1/me/top-ups",
                &[("Authorization", &auth), ("Content-Type", "application/json")],
                raw.as_bytes(),
            )
            .unwrap();
        assert!(r.status == 400 || r.status == 422, "{raw}: {}", r.json());
        assert!(r.json()["code"].is_string(), "{raw}: {}", r.json());
    }
    // Fundings are numbered together: 3 top-ups and 2 withdrawals so far, and no sixth.
    assert_eq!(user.get(&mut c, "/v1/me/withdrawals/5").status, 200);
    assert_problem(&user.get(&mut c, "/v1/me/top-ups/5"), 404, "not_found");
    assert_problem(&user.get(&mut c, "/v1/me/top-ups/6"), 404, "not_found");
    assert_eq!(user.balance(&mut c).0, 0);
    let other = sign_up(&server, "010-4444-5555");
    assert_problem(&other.get(&mut c, "/v1/me/withdrawals/5"), 404, "not_found");
    let r = other.post(&mut c, "/v1/me/top-ups", &json!({"bank_account_id": bank, "amount": "1000"}));
    assert_problem(&r, 404, "not_found");
    assert_problem(&call(&mut c, "GET", "/v1/me/top-ups/1", Some("kasa_s_bad"), None), 401, "unauthorized");
    stop_and_verify(server);
}

/// Remittance end to end: to a user by phone, to a number without a wallet (held, then
/// claimed by signing up), cancel, the PIN and limits, and who may see a transfer.
#[test]
fn send_money_to_users_and_to_numbers_without_a_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-1000-0001");
    let bob = sign_up(&server, "010-1000-0002");
    fund(&mut c, &alice, "1002003004", 200_000);

    let r = alice.post(&mut c, "/v1/transfers", &json!({"to_phone": "01010000002", "amount": "30000", "memo": "점심"}));
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!((&r.json()["status"], &r.json()["currency"]), (&json!("completed"), &json!("KRW")));
    let sent = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(bob.balance(&mut c).0, 30_000);
    // Both ends see it; a third user does not.
    assert_eq!(bob.get(&mut c, &format!("/v1/transfers/{sent}")).json()["memo"], "점심");
    let carol = sign_up(&server, "010-1000-0003");
    assert_problem(&carol.get(&mut c, &format!("/v1/transfers/{sent}")), 404, "not_found");

    // 30,000 of the 50,000 PIN-free budget is spent: 60,000 needs the PIN.
    let big = json!({"to_phone": "01010000002", "amount": "60000"});
    assert_problem(&alice.post(&mut c, "/v1/transfers", &big), 403, "pin_required");
    let mut with_pin = big.clone();
    with_pin["pin"] = json!(PIN);
    assert_eq!(alice.post(&mut c, "/v1/transfers", &with_pin).status, 201);

    // The recipient's cap: with basic wallets capped at 100,000, Bob (at 90,000) cannot take
    // 10,001. The refusal says only that: not the cap, not Bob's room, not his balance.
    post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": "100000", "daily_outgoing": "500000"}));
    let r = alice.post(&mut c, "/v1/transfers", &json!({"to_user_id": bob.id, "amount": "10001"}));
    assert_problem(&r, 422, "recipient_cannot_receive");
    for field in ["limit", "value", "remaining", "currency"] {
        assert!(r.json().get(field).is_none(), "{field} in {}", r.json());
    }
    assert!(!r.json()["detail"].as_str().unwrap().chars().any(|c| c.is_ascii_digit()), "{}", r.json());
    post(&mut c, "/v1/admin/tiers/basic", &json!({"balance_cap": "500000", "daily_outgoing": "500000"}));
    assert_eq!(bob.balance(&mut c).0, 90_000);

    // To a number with no wallet: held, cancellable, claimed when the number signs up.
    let r = alice.post(&mut c, "/v1/transfers", &json!({"to_phone": "010-9000-0001", "amount": "10000"}));
    assert_eq!((&r.json()["status"], &r.json()["to_phone"]), (&json!("held"), &json!("+**********01")), "{}", r.json());
    let held = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(alice.balance(&mut c), (110_000, 100_000));
    let r = alice.post(&mut c, "/v1/transfers", &json!({"to_phone": "010-9000-0002", "amount": "5000"}));
    let cancelled = r.json()["id"].as_str().unwrap().to_string();
    let r = alice.post_empty(&mut c, &format!("/v1/transfers/{cancelled}/cancel"));
    assert_eq!(r.json()["status"], "cancelled");
    assert_problem(&alice.post_empty(&mut c, &format!("/v1/transfers/{cancelled}/cancel")), 409, "not_held");
    assert_problem(&bob.post_empty(&mut c, &format!("/v1/transfers/{held}/cancel")), 404, "not_found");
    let dave = sign_up(&server, "+82 10 9000 0001");
    assert_eq!(dave.balance(&mut c).0, 10_000, "the held money arrived at sign-up");
    assert_eq!(alice.get(&mut c, &format!("/v1/transfers/{held}")).json()["status"], "completed");
    assert_eq!(alice.balance(&mut c), (100_000, 100_000));

    // Alice's history, newest first: the cancelled hold back with her, the hold itself, the
    // claimed hold, 60,000 and 30,000 sent, the top-up.
    let history = alice.get(&mut c, "/v1/me/transactions").json();
    let rows: Vec<(String, String, String, Value)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["currency"], "KRW");
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
    let page = alice.get(&mut c, "/v1/me/transactions?limit=3").json();
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let next = alice.get(&mut c, &format!("/v1/me/transactions?limit=10&cursor={cursor}")).json();
    assert_eq!(
        (next["data"].as_array().unwrap().len(), &next["has_more"], &next["next_cursor"]),
        (3, &json!(false), &json!(null))
    );
    assert_eq!(next["data"][0]["amount"], "60000");
    let bobs = bob.get(&mut c, "/v1/me/transactions").json();
    assert_eq!(
        (&bobs["data"][0]["type"], &bobs["data"][0]["counterparty_user_id"]),
        (&json!("received"), &json!(alice.id))
    );
    let daves = dave.get(&mut c, "/v1/me/transactions").json();
    assert_eq!((&daves["data"][0]["type"], &daves["data"][0]["balance_after"]), (&json!("received"), &json!("10000")));

    // Bad requests.
    for (body, status, code) in [
        (json!({"to_phone": "01010000002", "to_user_id": bob.id, "amount": "1"}), 422, "invalid_field"),
        (json!({"amount": "1"}), 422, "invalid_field"),
        (json!({"to_phone": "01010000001", "amount": "1"}), 422, "to_self"),
        (json!({"to_user_id": "999", "amount": "1"}), 404, "not_found"),
        (json!({"to_phone": "01010000002", "amount": "0"}), 422, "invalid_field"),
        (json!({"to_phone": "01010000002", "amount": "1", "memo": "x".repeat(101)}), 422, "invalid_field"),
        (json!({"to_phone": "01010000002", "amount": "1", "currency": "JPY"}), 422, "currency_not_supported"),
        (json!({"to_phone": "01010000002", "amount": "150000", "pin": PIN}), 422, "insufficient_funds"),
    ] {
        assert_problem(&alice.post(&mut c, "/v1/transfers", &body), status, code);
    }
    assert_eq!(alice.balance(&mut c), (100_000, 100_000));
    stop_and_verify(server);
}

/// 50 concurrent sends that together exceed the balance: exactly the affordable ones
/// succeed, because the funds check and the transfer are one step in the state machine.
#[test]
fn fifty_concurrent_sends_exactly_the_affordable_ones_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-3000-0001");
    let bob = sign_up(&server, "010-3000-0002");
    // 10,000 won, sends of 300 (all within the PIN-free budget of 50,000): 33 fit.
    credit(&mut c, &alice, 10_000);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let mut client = server.client();
            let (alice, to) = (alice.clone(), bob.id.clone());
            std::thread::spawn(move || {
                let r = alice.post(&mut client, "/v1/transfers", &json!({"to_user_id": to, "amount": "300"}));
                (r.status, r.json()["code"].clone())
            })
        })
        .collect();
    let results: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results.iter().filter(|(s, code)| *s == 422 && code == "insufficient_funds").count();
    assert_eq!((ok, refused), (33, 17), "{results:?}");
    assert_eq!(alice.balance(&mut c).0, 100);
    assert_eq!(bob.balance(&mut c).0, 9_900);
    stop_and_verify(server);
}

/// Money requests and split bills end to end.
#[test]
fn request_money_and_split_a_bill() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-5000-0001");
    let bob = sign_up(&server, "010-5000-0002");
    let carol = sign_up(&server, "010-5000-0003");
    fund(&mut c, &bob, "5005005002", 100_000);
    fund(&mut c, &carol, "5005005003", 100_000);
    // Alice asks Bob for 12,000; Bob pays; a second request Bob declines.
    let r = alice.post(
        &mut c,
        "/v1/money-requests",
        &json!({"from_phone": "01050000002", "amount": "12000", "memo": "티켓"}),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!((&r.json()["status"], &r.json()["currency"]), (&json!("pending"), &json!("KRW")));
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_problem(&carol.post_empty(&mut c, &format!("/v1/money-requests/{id}/pay")), 404, "not_found");
    let r = bob.post_empty(&mut c, &format!("/v1/money-requests/{id}/pay"));
    assert_eq!(r.json()["status"], "paid", "{}", r.json());
    assert!(r.json()["transfer_id"].is_string());
    assert_problem(&bob.post_empty(&mut c, &format!("/v1/money-requests/{id}/pay")), 409, "not_pending");
    assert_eq!(alice.balance(&mut c).0, 12_000);
    // Paying more than what is left of the PIN-free budget needs the PIN; a refused payment
    // leaves the request pending and the money where it was.
    let r = alice.post(&mut c, "/v1/money-requests", &json!({"from_user_id": bob.id, "amount": "60000"}));
    let big = r.json()["id"].as_str().unwrap().to_string();
    let pay_big = format!("/v1/money-requests/{big}/pay");
    assert_problem(&bob.post_empty(&mut c, &pay_big), 403, "pin_required");
    assert_problem(&bob.post(&mut c, &pay_big, &json!({"pin": "975310"})), 403, "wrong_pin");
    assert_eq!(alice.get(&mut c, &format!("/v1/money-requests/{big}")).json()["status"], "pending");
    assert_eq!(bob.balance(&mut c).0, 88_000);
    let r = bob.post(&mut c, &pay_big, &json!({"pin": PIN}));
    assert_eq!(r.json()["status"], "paid", "{}", r.json());
    assert_eq!(alice.balance(&mut c).0, 72_000);
    assert_eq!(bob.balance(&mut c).0, 28_000);
    let r = alice.post(&mut c, "/v1/money-requests", &json!({"from_user_id": bob.id, "amount": "5000"}));
    let declined = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(bob.post_empty(&mut c, &format!("/v1/money-requests/{declined}/decline")).json()["status"], "declined");
    assert_eq!(alice.get(&mut c, &format!("/v1/money-requests/{declined}")).json()["status"], "declined");
    let r = alice.post(&mut c, "/v1/money-requests", &json!({"from_phone": "01099999999", "amount": "1"}));
    assert_problem(&r, 404, "not_found");

    // A 30,001 won dinner split equally among three: Bob and Carol owe 10,000 each.
    let body = json!({"total": "30001", "shares": [{"phone": "01050000002"}, {"user_id": carol.id}], "memo": "저녁"});
    let r = alice.post(&mut c, "/v1/split-bills", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    let bill = r.json();
    assert_eq!(
        (&bill["shares"][0]["amount"], &bill["total"], &bill["currency"], &bill["paid"]),
        (&json!("10000"), &json!("30001"), &json!("KRW"), &json!(0))
    );
    let share = bill["shares"][1]["id"].as_str().unwrap().to_string();
    assert_eq!(carol.post_empty(&mut c, &format!("/v1/money-requests/{share}/pay")).status, 200);
    let bill_now = alice.get(&mut c, &format!("/v1/split-bills/{}", bill["id"].as_str().unwrap())).json();
    assert_eq!((&bill_now["paid"], &bill_now["shares"][1]["status"]), (&json!(1), &json!("paid")));

    // Payers find what they were asked for; requesters what they asked; newest first.
    let ids = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    };
    let pending = bob.get(&mut c, "/v1/money-requests?status=pending").json();
    assert_eq!(ids(&pending), vec![bill["shares"][0]["id"].as_str().unwrap().to_string()], "{pending}");
    assert_eq!(pending["data"][0]["amount"], "10000");
    let page = bob.get(&mut c, "/v1/money-requests?role=payer&limit=2").json();
    assert_eq!((ids(&page), &page["has_more"]), (vec!["4".to_string(), "3".to_string()], &json!(true)));
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = bob.get(&mut c, &format!("/v1/money-requests?limit=2&cursor={cursor}")).json();
    assert_eq!((ids(&rest), rest["has_more"].clone()), (vec!["2".to_string(), "1".to_string()], json!(false)));
    let asked = alice.get(&mut c, "/v1/money-requests?role=requester").json();
    assert_eq!(ids(&asked), vec!["5", "4", "3", "2", "1"]);
    assert_eq!(ids(&bob.get(&mut c, "/v1/money-requests?role=requester").json()), Vec::<String>::new());
    assert_eq!(ids(&carol.get(&mut c, "/v1/money-requests?status=paid").json()), vec!["5"]);
    for bad in ["role=boss", "status=lost", "limit=0", "cursor=4", "colour=red"] {
        assert_problem(&bob.get(&mut c, &format!("/v1/money-requests?{bad}")), 400, "invalid_parameter");
    }
    // A payer of one of its shares sees the bill; nobody else does.
    let bill_path = format!("/v1/split-bills/{}", bill["id"].as_str().unwrap());
    assert_eq!(bob.get(&mut c, &bill_path).json()["paid"], 1);
    let dave = sign_up(&server, "010-5000-0004");
    assert_problem(&dave.get(&mut c, &bill_path), 404, "not_found");
    let body =
        json!({"total": "100", "shares": [{"user_id": bob.id, "amount": "60"}, {"user_id": carol.id, "amount": "60"}]});
    assert_problem(&alice.post(&mut c, "/v1/split-bills", &body), 422, "invalid_shares");
    assert_problem(
        &alice.post(&mut c, "/v1/split-bills", &json!({"total": "100", "shares": []})),
        422,
        "invalid_shares",
    );
    stop_and_verify(server);
}

/// Idempotency-Key end to end: a retried send moves money once and replays the answer; the
/// same key with another body is 422; keys are per caller; refusals are replayed too; and the
/// key survives a kill -9.
#[test]
fn idempotency_keys_make_retries_safe_even_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-6000-0001");
    let bob = sign_up(&server, "010-6000-0002");
    credit(&mut c, &alice, 100_000);

    let send = json!({"to_phone": "01060000002", "amount": "7000", "memo": "retry me"});
    let first = alice.keyed(&mut c, "/v1/transfers", "pay-1", &send);
    assert_eq!(first.status, 201, "{}", first.json());
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = alice.keyed(&mut c, "/v1/transfers", "pay-1", &send);
    assert_eq!((again.status, again.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(again.body, first.body, "the stored answer is replayed byte for byte");
    assert_eq!(bob.balance(&mut c).0, 7_000, "the money moved once");
    let other = json!({"to_phone": "01060000002", "amount": "8000"});
    assert_problem(&alice.keyed(&mut c, "/v1/transfers", "pay-1", &other), 422, "idempotency_key_reused");
    // The same key on another path is another request too.
    let r = alice.keyed(&mut c, "/v1/money-requests", "pay-1", &json!({"from_user_id": bob.id, "amount": "1"}));
    assert_problem(&r, 422, "idempotency_key_reused");
    // Another caller's key space: Bob may use "pay-1" too.
    assert_eq!(
        bob.keyed(&mut c, "/v1/transfers", "pay-1", &json!({"to_phone": "01060000001", "amount": "1000"})).status,
        201
    );
    // Refusals are stored and replayed as well.
    let too_much = json!({"to_phone": "01060000002", "amount": "95000", "pin": PIN});
    assert_problem(&alice.keyed(&mut c, "/v1/transfers", "pay-2", &too_much), 422, "insufficient_funds");
    let replayed = alice.keyed(&mut c, "/v1/transfers", "pay-2", &too_much);
    assert_eq!((replayed.status, replayed.header("idempotent-replayed")), (422, Some("true")));
    assert_problem(&alice.keyed(&mut c, "/v1/transfers", "", &send), 400, "invalid_idempotency_key");
    assert_problem(&alice.keyed(&mut c, "/v1/transfers", &"k".repeat(256), &send), 400, "invalid_idempotency_key");

    // The key is in the journaled state: after kill -9 the retry still moves nothing.
    server.kill9();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let after = alice.keyed(&mut c, "/v1/transfers", "pay-1", &send);
    assert_eq!((after.status, after.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(after.body, first.body);
    assert_eq!(bob.balance(&mut c).0, 6_000);
    stop_and_verify(server);
}

/// Several requests with one key at once move money once (the sequencer orders them: one
/// runs, the others replay it; no 409 "in use" exists any more), and a keyed request whose
/// client hangs up right after sending it leaves a key that a retry either replays or runs
/// for the first time: never twice, never stuck.
#[test]
fn concurrent_and_abandoned_keyed_requests_move_money_once() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-6100-0001");
    let bob = sign_up(&server, "010-6100-0002");
    credit(&mut c, &alice, 100_000);

    let send = json!({"to_user_id": bob.id, "amount": "60000", "pin": PIN});
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (mut client, alice, send) = (server.client(), alice.clone(), send.clone());
            std::thread::spawn(move || {
                let r = alice.keyed(&mut client, "/v1/transfers", "together", &send);
                (r.status, r.header("idempotent-replayed").map(str::to_string), r.json()["id"].clone())
            })
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answers.iter().all(|(status, _, id)| *status == 201 && *id == answers[0].2), "{answers:?}");
    assert_eq!(answers.iter().filter(|(_, replayed, _)| replayed.is_none()).count(), 1, "{answers:?}");
    assert_eq!((alice.balance(&mut c).0, bob.balance(&mut c).0), (40_000, 60_000));

    let body = json!({"to_user_id": bob.id, "amount": "1000"}).to_string();
    let raw = format!(
        "POST /v1/transfers HTTP/1.1\r\nHost: kasa\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nIdempotency-Key: hang-up\r\nContent-Length: {}\r\n\r\n{body}",
        alice.token,
        body.len()
    );
    let mut first = std::net::TcpStream::connect(server.addr).unwrap();
    first.write_all(raw.as_bytes()).unwrap();
    drop(first);
    let retry = alice.keyed(&mut c, "/v1/transfers", "hang-up", &serde_json::from_str(&body).unwrap());
    assert_eq!(retry.status, 201, "{}", retry.json());
    let again = alice.keyed(&mut c, "/v1/transfers", "hang-up", &serde_json::from_str(&body).unwrap());
    assert_eq!((again.status, again.header("idempotent-replayed")), (201, Some("true")));
    assert_eq!(again.body, retry.body);
    assert_eq!((alice.balance(&mut c).0, bob.balance(&mut c).0), (39_000, 61_000), "the money moved once");
    stop_and_verify(server);
}

/// `kill -9` in the middle of a wallet load (sends, holds, sign-ups and top-ups): after the
/// restart every acknowledged send is there with its amount and status, every acknowledged
/// sign-up can log in, every acknowledged top-up is there and settles, no won was created or
/// lost (the users' balances sum to what they were credited and the top-ups the bank
/// approved; held money is still in its sender's balance, as a pending debit), and `kasa
/// verify` passes.
#[test]
fn kill_9_during_remittances_loses_no_acknowledged_send() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    const USERS: usize = 6;
    const FUNDED: u64 = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let users: Vec<User> = (0..USERS)
        .map(|i| {
            let user = sign_up(&server, &format!("010-6200-000{i}"));
            credit(&mut c, &user, FUNDED);
            user
        })
        .collect();
    let bank = link_bank(&mut c, &users[0], "6206206000");
    let users = Arc::new(users);
    let stop = Arc::new(AtomicBool::new(false));
    // (sender index, remittance id, amount, status) of every acknowledged send.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut workers: Vec<_> = (0..4usize)
        .map(|worker| {
            let (users, stop, acknowledged) = (users.clone(), stop.clone(), acknowledged.clone());
            let mut client = server.client();
            std::thread::spawn(move || {
                let mut n = worker;
                while !stop.load(Ordering::Relaxed) {
                    n += 7;
                    let from = n % USERS;
                    // Small amounts, so that the PIN-free budget lasts; every fifth send goes
                    // to a number without a wallet and is held.
                    let amount = (1 + n % 300).to_string();
                    let body = if n % 5 == 0 {
                        json!({"to_phone": "010-6299-0000", "amount": amount})
                    } else {
                        json!({"to_user_id": users[(from + 1 + n % (USERS - 1)) % USERS].id, "amount": amount})
                    };
                    let auth = format!("Bearer {}", users[from].token);
                    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
                    // After the kill the connection fails: that send was not acknowledged.
                    let Ok(r) = client.request("POST", "/v1/transfers", &headers, body.to_string().as_bytes()) else {
                        return;
                    };
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
    {
        let (stop, signed_up, addr) = (stop.clone(), signed_up.clone(), server.addr);
        workers.push(std::thread::spawn(move || {
            let mut op = kasa::client::Client::connect(addr, KEY).unwrap();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let phone = format!("010-6210-{i:04}");
                // Each sign-up from its own address, as different people's phones are.
                let Ok(mut anon) = kasa::client::Client::connect_from(addr, next_address(), "") else { return };
                let json_type = [("Content-Type", "application/json")];
                let body = json!({"phone": phone}).to_string();
                let Ok(r) = anon.request("POST", "/v1/phone-verifications", &json_type, body.as_bytes()) else {
                    return;
                };
                assert_eq!(r.status, 201, "{}", r.json());
                let Ok(sms) = op.send(
                    "GET",
                    &format!("/v1/admin/sandbox/sms?phone={}", query_value(&phone)),
                    "application/json",
                    b"",
                ) else {
                    return;
                };
                let body = json!({"phone": phone, "name": "New", "pin": PIN,
                    "verification_id": r.json()["id"], "code": sms.json()["data"][0]["code"]});
                let Ok(r) = anon.request("POST", "/v1/users", &json_type, body.to_string().as_bytes()) else { return };
                if r.status == 201 {
                    signed_up.lock().unwrap().push((phone, r.json()["id"].as_str().unwrap().to_string()));
                }
            }
        }));
    }
    {
        let (stop, topped_up, user, mut client) = (stop.clone(), topped_up.clone(), users[0].clone(), server.client());
        workers.push(std::thread::spawn(move || {
            let auth = format!("Bearer {}", user.token);
            let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"bank_account_id": bank, "amount": "100"}).to_string();
                let Ok(r) = client.request("POST", "/v1/me/top-ups", &headers, body.as_bytes()) else { return };
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
        let r = users[*from].get(&mut c, &format!("/v1/transfers/{id}"));
        assert_eq!(r.status, 200, "acknowledged send {id} lost after kill -9: {}", r.json());
        assert_eq!(
            (r.json()["amount"].as_str(), r.json()["status"].as_str()),
            (Some(amount.as_str()), Some(status.as_str()))
        );
    }
    for (phone, id) in &signed_up {
        let r = log_in(&server, phone, PIN);
        assert_eq!((r.status, r.json()["user_id"].as_str()), (201, Some(id.as_str())), "sign-up {phone} lost");
    }
    // Every acknowledged top-up is there. Fundings are numbered from 1 and the first user has
    // them all: a top-up the crash cut off before its answer may be there too. Those the
    // crash left pending, the bank rail settles after the restart by asking the bank.
    let mut found = Vec::new();
    let mut approved = 0;
    for id in 1.. {
        let path = format!("/v1/me/top-ups/{id}");
        if users[0].get(&mut c, &path).status == 404 {
            break;
        }
        let f = settled(&mut c, &users[0], &path);
        assert_eq!(f["status"], "succeeded", "{f}");
        approved += number(&f["amount"]);
        found.push(id.to_string());
    }
    for id in &topped_up {
        assert!(found.contains(id), "acknowledged top-up {id} lost after kill -9");
    }
    assert!(found.len() <= topped_up.len() + 1, "one top-up at most was cut off: {found:?} {topped_up:?}");
    eprintln!("top-ups: {} acknowledged, {} there", topped_up.len(), found.len());
    let total: u64 = users.iter().map(|u| u.balance(&mut c).0).sum();
    assert_eq!(total, USERS as u64 * FUNDED + approved, "no won created or lost");
    stop_and_verify(server);
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
    let alice = sign_up(&server, "010-6300-0001");
    let bank = fund(&mut c, &alice, "6306306001", 100_000);

    // The bank never answers: both reservations expire after 60 s.
    let r = alice.post(&mut c, "/v1/me/top-ups", &json!({"bank_account_id": bank, "amount": "10099"}));
    let top_up = format!("/v1/me/top-ups/{}", r.json()["id"].as_str().unwrap());
    let r = alice.post(&mut c, "/v1/me/withdrawals", &json!({"bank_account_id": bank, "amount": "20099"}));
    let withdrawal = format!("/v1/me/withdrawals/{}", r.json()["id"].as_str().unwrap());
    assert_eq!(alice.balance(&mut c), (100_000, 79_901));
    advance(&mut c, 30);
    assert_eq!(alice.get(&mut c, &top_up).json()["status"], "pending");
    advance(&mut c, 31);
    assert_eq!(settled(&mut c, &alice, &top_up)["status"], "expired");
    assert_eq!(settled(&mut c, &alice, &withdrawal)["status"], "expired");
    assert_eq!(alice.balance(&mut c), (100_000, 100_000));
    assert_eq!(alice.wallet(&mut c)["daily_outgoing"]["used"], "0", "an expired withdrawal gives the daily limit back");

    // Held for two numbers: one signs up after 47 hours and gets it; the other never does.
    let send = |c: &mut kasa::client::Client, phone: &str, amount: u64| {
        let r = alice.post(c, "/v1/transfers", &json!({"to_phone": phone, "amount": amount.to_string()}));
        assert_eq!(r.json()["status"], "held", "{}", r.json());
        format!("/v1/transfers/{}", r.json()["id"].as_str().unwrap())
    };
    let unclaimed = send(&mut c, "010-6300-0009", 5000);
    let claimed = send(&mut c, "010-6300-0008", 7000);
    advance(&mut c, 47 * 3600);
    let bob = sign_up(&server, "010-6300-0008");
    assert_eq!(bob.balance(&mut c).0, 7_000, "claimed within 48 hours");
    assert_eq!(alice.get(&mut c, &claimed).json()["status"], "completed");
    assert_eq!(alice.get(&mut c, &unclaimed).json()["status"], "held");
    advance(&mut c, 3601);
    assert_eq!(alice.get(&mut c, &unclaimed).json()["status"], "returned");
    assert_eq!(alice.balance(&mut c), (93_000, 93_000));
    let history = alice.get(&mut c, "/v1/me/transactions?limit=1").json();
    assert_eq!((&history["data"][0]["type"], &history["data"][0]["status"]), (&json!("returned"), &json!("returned")));
    let late = sign_up(&server, "010-6300-0009");
    assert_eq!(late.balance(&mut c).0, 0, "a sign-up after 48 hours claims nothing");

    // A money request expires after 7 days; paying it then is refused.
    let r = alice.post(&mut c, "/v1/money-requests", &json!({"from_user_id": bob.id, "amount": "1000"}));
    let request = format!("/v1/money-requests/{}", r.json()["id"].as_str().unwrap());
    advance(&mut c, 7 * 24 * 3600);
    assert_eq!(bob.get(&mut c, &request).json()["status"], "expired");
    // The moved time is in the journal: a restart (with the flag) goes on from it.
    assert_eq!(server.terminate().code(), Some(0));
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    assert_eq!(bob.get(&mut c, &request).json()["status"], "expired");
    assert_problem(&bob.post_empty(&mut c, &format!("{request}/pay")), 409, "not_pending");
    assert_problem(&post(&mut c, "/v1/admin/test-clock/advance", &json!({"seconds": 0})), 422, "invalid_field");
    stop_and_verify(server);

    // A server without --test-clock refuses to move time, and also goes on from the
    // journal's time rather than going back to the wall clock's.
    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_problem(&post(&mut c, "/v1/admin/test-clock/advance", &json!({"seconds": 60})), 404, "not_found");
    assert_eq!(bob.get(&mut c, &request).json()["status"], "expired");
    assert_eq!(alice.balance(&mut c).0, 93_000);
    stop_and_verify(server);
}

/// An operator's withdrawal fee: shown in the wallet, reserved with the amount (so the funds
/// must cover both), charged when the bank pays out, shown on the withdrawal and in the
/// history; out-of-range fees are refused, and only operators set them.
#[test]
fn a_withdrawal_fee_is_charged_when_the_bank_pays_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let user = sign_up(&server, "010-6400-0001");
    let bank = fund(&mut c, &user, "6406406001", 100_000);
    assert_problem(&post(&mut c, "/v1/admin/fees", &json!({"withdrawal_fee": "10001"})), 422, "invalid_field");
    assert_problem(&user.post(&mut c, "/v1/admin/fees", &json!({"withdrawal_fee": "500"})), 401, "unauthorized");
    let r = post(&mut c, "/v1/admin/fees", &json!({"withdrawal_fee": "500", "currency": "KRW"}));
    assert_eq!((&r.json()["withdrawal_fee"], &r.json()["currency"]), (&json!("500"), &json!("KRW")), "{}", r.json());
    assert_eq!(user.wallet(&mut c)["withdrawal_fee"], "500");

    let r = user.post(&mut c, "/v1/me/withdrawals", &json!({"bank_account_id": bank, "amount": "99501", "pin": PIN}));
    assert_problem(&r, 422, "insufficient_funds");
    let w = funding(&mut c, &user, "withdrawals", &bank, 9_500, Some(PIN));
    assert_eq!((&w["status"], &w["fee"], &w["amount"]), (&json!("succeeded"), &json!("500"), &json!("9500")));
    assert_eq!(user.balance(&mut c).0, 90_000);
    let entry = user.get(&mut c, "/v1/me/transactions?limit=1").json()["data"][0].clone();
    assert_eq!(
        (entry["type"].as_str(), entry["amount"].as_str(), entry["fee"].as_str(), entry["balance_after"].as_str()),
        (Some("withdrawal"), Some("9500"), Some("500"), Some("90000"))
    );
    stop_and_verify(server);
}

/// A caller holds at most 1,000 live keys (each kept 24 hours): the 1,001st keyed request is
/// `429 too_many_idempotency_keys` with `Retry-After` and changes nothing, a request without
/// a key still goes through, an old key still replays, and a day later keys are free again.
#[test]
fn a_caller_holds_at_most_a_thousand_live_keys() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let user = sign_up(&server, "010-9900-0001");
    let settings = |amount: u64| json!({"pin_free_amount": amount.to_string()});
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (mut client, user) = (server.client(), user.clone());
            std::thread::spawn(move || {
                for i in 0..125 {
                    let r = user.keyed(&mut client, "/v1/me/settings", &format!("k-{t}-{i}"), &settings(40_000));
                    assert_eq!(r.status, 200, "{}", r.json());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = user.keyed(&mut c, "/v1/me/settings", "one-too-many", &settings(30_000));
    assert_problem(&r, 429, "too_many_idempotency_keys");
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert_eq!(user.get(&mut c, "/v1/me").json()["pin_free_amount"], "40000", "the refused request changed nothing");
    let old = user.keyed(&mut c, "/v1/me/settings", "k-0-0", &settings(40_000));
    assert_eq!((old.status, old.header("idempotent-replayed")), (200, Some("true")));
    assert_eq!(user.post(&mut c, "/v1/me/settings", &settings(30_000)).json()["pin_free_amount"], "30000");
    advance(&mut c, 24 * 3600 + 1);
    let r = user.keyed(&mut c, "/v1/me/settings", "one-too-many", &settings(20_000));
    assert_eq!((r.status, &r.json()["pin_free_amount"]), (200, &json!("20000")), "{}", r.json());
    stop_and_verify(server);
}
