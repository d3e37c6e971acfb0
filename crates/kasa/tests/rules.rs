//! The wallet's rules over HTTP, where a client meets them: a refused send says nothing about
//! the recipient's balance, the PIN-free budget is spent over a rolling 24 hours, and
//! operators move a wallet's money only by an audited adjustment within its caps (the
//! operators' ledger API cannot reach a wallet at all).

mod support;

use serde_json::{json, Value};
use support::*;

/// A refusal that is about the recipient carries no amount: no digits, no limit fields.
#[track_caller]
fn says_no_amount(r: &kasa::client::Response) {
    let v = r.json();
    for field in ["limit", "value", "remaining", "currency", "amount", "balance"] {
        assert!(v.get(field).is_none(), "{field} in {v}");
    }
    assert!(!v["detail"].as_str().unwrap().chars().any(|c| c.is_ascii_digit()), "{v}");
}

/// Balance privacy: the sender's side (PIN or budget, daily limit, funds) is checked before
/// anything about the recipient. A user with an empty wallet who probes amounts towards a
/// recipient near their cap (or an unknown user, or a number without a wallet) always gets
/// the same `insufficient_funds`; a funded sender whose send would pass the recipient's cap
/// gets `recipient_cannot_receive`, the same answer for any amount and recipient, with no
/// amount in it.
#[test]
fn a_refused_send_says_nothing_about_the_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let prober = sign_up(&server, "010-9200-0001");
    let rich = sign_up(&server, "010-9200-0002");
    let near = sign_up(&server, "010-9200-0003");
    let nearer = sign_up(&server, "010-9200-0004");
    credit(&mut c, &rich, 300_000);
    // Basic wallets hold at most 500,000: 1,000 of room left for one, 10 for the other.
    credit(&mut c, &near, 499_000);
    credit(&mut c, &nearer, 499_990);

    let mut answers: Vec<Value> = Vec::new();
    let probes: Vec<Value> = [1u64, 10, 11, 999, 1_000, 1_001, 49_999, 50_000]
        .iter()
        .flat_map(|amount| {
            let amount = amount.to_string();
            [
                json!({"to_user_id": near.id, "amount": amount}),
                json!({"to_phone": near.phone, "amount": amount}),
                json!({"to_user_id": nearer.id, "amount": amount}),
                json!({"to_user_id": "999", "amount": amount}),
                json!({"to_phone": "010-9299-0000", "amount": amount}),
            ]
        })
        .chain(
            [100_000u64, 499_999, 500_000]
                .iter()
                .map(|a| json!({"to_user_id": near.id, "amount": a.to_string(), "pin": PIN})),
        )
        .collect();
    for probe in &probes {
        let r = prober.post(&mut c, "/v1/transfers", probe);
        assert_problem(&r, 422, "insufficient_funds");
        answers.push(r.json());
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "the answers differ: {answers:?}");

    // A funded sender: exactly the recipient's room passes; a won more does not, and the
    // refusal is the same whatever the amount or the recipient.
    assert_eq!(rich.post(&mut c, "/v1/transfers", &json!({"to_user_id": near.id, "amount": "1000"})).status, 201);
    let mut refusals = Vec::new();
    for (to, amount) in [(&near, "1"), (&near, "40000"), (&nearer, "11"), (&nearer, "45000")] {
        let r = rich.post(&mut c, "/v1/transfers", &json!({"to_user_id": to.id, "amount": amount}));
        assert_problem(&r, 422, "recipient_cannot_receive");
        says_no_amount(&r);
        refusals.push(r.json());
    }
    let r = rich.post(&mut c, "/v1/transfers", &json!({"to_phone": nearer.phone, "amount": "200000", "pin": PIN}));
    assert_problem(&r, 422, "recipient_cannot_receive");
    refusals.push(r.json());
    assert!(refusals.iter().all(|a| *a == refusals[0]), "the refusals differ: {refusals:?}");
    assert_eq!(rich.post(&mut c, "/v1/transfers", &json!({"to_user_id": nearer.id, "amount": "10"})).status, 201);

    assert_eq!(prober.balance(&mut c), (0, 0));
    assert_eq!(rich.balance(&mut c), (300_000 - 1_010, 300_000 - 1_010));
    assert_eq!((near.balance(&mut c).0, nearer.balance(&mut c).0), (500_000, 500_000));
    stop_and_verify(server);
}

/// The PIN-free budget is 50,000 won over a rolling 24 hours: of six sends of 50,000 without
/// the PIN from a 300,000 wallet only the first goes through, the others are `403
/// pin_required` (and move nothing); with the PIN all five go through. A day and a step
/// later, the budget is back.
#[test]
fn the_pin_free_budget_is_spent_over_a_rolling_day() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let sender = sign_up(&server, "010-9300-0001");
    let recipient = sign_up(&server, "010-9300-0002");
    credit(&mut c, &sender, 301_000);
    let send = json!({"to_user_id": recipient.id, "amount": "50000"});
    let statuses: Vec<u16> = (0..6).map(|_| sender.post(&mut c, "/v1/transfers", &send).status).collect();
    assert_eq!(statuses, [201, 403, 403, 403, 403, 403]);
    assert_problem(&sender.post(&mut c, "/v1/transfers", &send), 403, "pin_required");
    assert_problem(
        &sender.post(&mut c, "/v1/transfers", &json!({"to_user_id": recipient.id, "amount": "1"})),
        403,
        "pin_required",
    );
    let wallet = sender.wallet(&mut c);
    assert_eq!(wallet["pin_free"], json!({"limit": "50000", "used": "50000", "remaining": "0"}));
    assert_eq!((sender.balance(&mut c).0, recipient.balance(&mut c).0), (251_000, 50_000));

    let mut with_pin = send.clone();
    with_pin["pin"] = json!(PIN);
    for _ in 0..5 {
        let r = sender.post(&mut c, "/v1/transfers", &with_pin);
        assert_eq!(r.status, 201, "{}", r.json());
    }
    assert_eq!((sender.balance(&mut c).0, recipient.balance(&mut c).0), (1_000, 300_000));
    assert_eq!(sender.wallet(&mut c)["pin_free"]["used"], "50000", "sends with the PIN spend no budget");

    // 23 hours on the budget is still spent; a day and a 10-minute step after the spend it
    // is back.
    advance(&mut c, 23 * 3600);
    assert_problem(
        &sender.post(&mut c, "/v1/transfers", &json!({"to_user_id": recipient.id, "amount": "1000"})),
        403,
        "pin_required",
    );
    advance(&mut c, 3600 + 11 * 60);
    assert_eq!(sender.wallet(&mut c)["pin_free"]["remaining"], "50000");
    let r = sender.post(&mut c, "/v1/transfers", &json!({"to_user_id": recipient.id, "amount": "1000"}));
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(sender.balance(&mut c).0, 0);
    stop_and_verify(server);
}

/// The operators' ledger API is a ledger of its own: a wallet's account id in Kasa's books is
/// not an account there, a transfer to it fails (`credit_account_not_found`), and an account
/// an operator creates under that id is an operators' account that the wallet never sees.
/// Operators move a wallet's money by an adjustment, which keeps the wallet's caps and
/// funds, shows in the user's history, and passes `kasa verify`.
#[test]
fn operators_reach_wallets_only_by_adjustments_within_the_caps() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let user = sign_up(&server, "010-9400-0001");
    let wallet_account = user.wallet(&mut c)["account_id"].as_str().unwrap().to_string();
    let me = user.get(&mut c, "/v1/me").json();
    assert_eq!(me["wallet_account_id"], wallet_account.as_str());

    assert_problem(&get(&mut c, &format!("/v1/ledger/accounts/{wallet_account}")), 404, "not_found");
    let r = post(&mut c, "/v1/ledger/accounts", &json!({"id": "7", "ledger": 410, "code": 1}));
    assert_eq!(r.status, 201, "{}", r.json());
    let to_wallet = json!({"id": "70", "debit_account_id": "7", "credit_account_id": wallet_account, "amount": "100000", "ledger": 410, "code": 1});
    assert_problem(&post(&mut c, "/v1/ledger/transfers", &to_wallet), 422, "credit_account_not_found");
    let r = post(&mut c, "/v1/ledger/accounts", &json!({"id": wallet_account, "ledger": 410, "code": 1001}));
    assert_eq!(r.status, 201, "any id but 0 and 2^128-1 is an operators' account id: {}", r.json());
    let mut to_wallet = to_wallet;
    to_wallet["id"] = json!("71");
    assert_eq!(post(&mut c, "/v1/ledger/transfers", &to_wallet).status, 201);
    assert_eq!(get(&mut c, &format!("/v1/ledger/accounts/{wallet_account}")).json()["credits_posted"], "100000");
    assert_eq!(user.balance(&mut c), (0, 0), "the wallet never saw the operators' transfer");
    assert_eq!(user.get(&mut c, "/v1/me/transactions").json()["data"], json!([]));

    // Adjustments, within the basic cap of 500,000 and within the funds.
    let adjust =
        |c: &mut kasa::client::Client, body: Value| post(c, &format!("/v1/admin/users/{}/adjustments", user.id), &body);
    let r = adjust(&mut c, json!({"amount": "499000", "direction": "credit", "reason": "goodwill for ticket 1"}));
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(
        (&r.json()["object"], &r.json()["direction"], &r.json()["amount"], &r.json()["currency"], &r.json()["user_id"]),
        (&json!("adjustment"), &json!("credit"), &json!("499000"), &json!("KRW"), &json!(user.id))
    );
    let r = adjust(&mut c, json!({"amount": "1001", "direction": "credit", "reason": "too much"}));
    assert_problem(&r, 422, "limit_exceeded");
    assert_eq!((&r.json()["limit"], &r.json()["remaining"]), (&json!("balance_cap"), &json!("1000")));
    assert_eq!(adjust(&mut c, json!({"amount": 1000, "direction": "credit", "reason": "to the cap"})).status, 201);
    assert_problem(
        &adjust(&mut c, json!({"amount": "500001", "direction": "debit", "reason": "more than there is"})),
        422,
        "insufficient_funds",
    );
    assert_eq!(adjust(&mut c, json!({"amount": "100000", "direction": "debit", "reason": "chargeback 2"})).status, 201);
    for (body, status, code) in [
        (json!({"amount": "0", "direction": "credit", "reason": "x"}), 422, "invalid_field"),
        (json!({"amount": "1", "direction": "sideways", "reason": "x"}), 422, "invalid_field"),
        (json!({"amount": "1", "direction": "credit", "reason": ""}), 422, "invalid_field"),
        (json!({"amount": "1", "direction": "credit", "reason": "r".repeat(201)}), 422, "invalid_field"),
        (json!({"amount": "1", "direction": "credit", "reason": "x\u{0}y"}), 422, "invalid_field"),
        (
            json!({"amount": "1", "direction": "credit", "reason": "x", "currency": "USD"}),
            422,
            "currency_not_supported",
        ),
        (json!({"amount": "-1", "direction": "credit", "reason": "x"}), 422, "invalid_field"),
    ] {
        assert_problem(&adjust(&mut c, body), status, code);
    }
    assert_problem(
        &post(&mut c, "/v1/admin/users/99/adjustments", &json!({"amount": "1", "direction": "credit", "reason": "x"})),
        404,
        "not_found",
    );
    let r = user.post(
        &mut c,
        &format!("/v1/admin/users/{}/adjustments", user.id),
        &json!({"amount": "1", "direction": "credit", "reason": "self-service"}),
    );
    assert_problem(&r, 401, "unauthorized");
    assert_eq!(user.balance(&mut c), (400_000, 400_000));

    let history = user.get(&mut c, "/v1/me/transactions").json();
    let rows: Vec<(String, String, String, String)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_string();
            (s("type"), s("direction"), s("amount"), s("balance_after"))
        })
        .collect();
    let row = |d: &str, a: &str, b: &str| ("adjustment".to_string(), d.to_string(), a.to_string(), b.to_string());
    assert_eq!(
        rows,
        [row("debit", "100000", "400000"), row("credit", "1000", "500000"), row("credit", "499000", "499000")]
    );
    let is_adjustment = |e: &&Value| e["data"]["adjustment_id"].is_string();
    let events = events_when(&mut c, |e| e.iter().filter(is_adjustment).count() >= 3);
    let adjusted: Vec<&Value> = events.iter().filter(is_adjustment).collect();
    assert_eq!(adjusted.len(), 3, "{events:?}");
    assert_eq!(
        (&adjusted[2]["data"]["direction"], &adjusted[2]["data"]["amount"]),
        (&json!("debit"), &json!("100000"))
    );
    assert_eq!(get(&mut c, &format!("/v1/admin/users/{}", user.id)).json()["phone"], "+821094000001");
    stop_and_verify(server);
    let server = Server::start(dir.path());
    assert_eq!(user.balance(&mut server.client()), (400_000, 400_000));
    assert_eq!(
        get(&mut server.client(), &format!("/v1/ledger/accounts/{wallet_account}")).json()["credits_posted"],
        "100000"
    );
    stop_and_verify(server);
}
