//! Wallet users end to end against the real binary: sign-up, login, `me`, the PIN lock that
//! survives `kill -9`, the operator's unlock and tier, logout, and bad input.

mod support;

use serde_json::{json, Value};
use support::*;

fn with_token(client: &mut kasa::client::Client, method: &str, path: &str, token: &str) -> kasa::client::Response {
    client.send_raw(&format!("{method} {path} HTTP/1.1\r\nAuthorization: Bearer {token}\r\n"), b"").unwrap()
}

fn login(client: &mut kasa::client::Client, phone: &str, pin: &str) -> kasa::client::Response {
    post(client, "/v1/sessions", &json!({"phone": phone, "pin": pin}))
}

#[test]
fn sign_up_log_in_and_see_my_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let r = post(&mut c, "/v1/users", &json!({"phone": "010-1234-5678", "name": "김민지", "pin": "123456"}));
    assert_eq!(r.status, 201, "{}", r.json());
    let user = r.json();
    assert_eq!(user["phone"], "+821012345678");
    assert_eq!(user["tier"], "basic");
    assert_eq!(user["status"], "active");
    assert_eq!(user["object"], "user");
    // One account per phone number, however it is written.
    let r = post(&mut c, "/v1/users", &json!({"phone": "+82 10 1234 5678", "name": "x", "pin": "654321"}));
    assert_problem(&r, 409, "phone_taken");
    for (body, code) in [
        (json!({"phone": "010-1234-5679", "name": "a", "pin": "12345"}), "invalid_pin"),
        (json!({"phone": "010-1234-5679", "name": "a", "pin": "12345a"}), "invalid_pin"),
        (json!({"phone": "12345", "name": "a", "pin": "123456"}), "invalid_phone"),
        (json!({"phone": "010-1234-5679", "name": "", "pin": "123456"}), "invalid_name"),
        (json!({"phone": "010-1234-5679", "name": "a", "pin": "123456", "admin": true}), "invalid_field"),
    ] {
        assert_problem(&post(&mut c, "/v1/users", &body), 422, code);
    }

    // Wrong PIN and unknown number get the same answer.
    let wrong = login(&mut c, "01012345678", "000000");
    assert_problem(&wrong, 401, "invalid_credentials");
    let unknown = login(&mut c, "01099999999", "123456");
    assert_problem(&unknown, 401, "invalid_credentials");
    assert_eq!(wrong.json()["detail"], unknown.json()["detail"]);

    let r = login(&mut c, "010 1234 5678", "123456");
    assert_eq!(r.status, 201, "{}", r.json());
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("kasa_s_") && token.len() == 7 + 64);
    let me = with_token(&mut c, "GET", "/v1/me", &token).json();
    assert_eq!(me["id"], user["id"]);
    let wallet = with_token(&mut c, "GET", "/v1/me/wallet", &token).json();
    assert_eq!(wallet["currency"], "KRW");
    assert_eq!(wallet["balance"], "0");
    assert_eq!(wallet["balance_cap"]["limit"], "500000");
    // The wallet is a ledger account that can never go negative.
    let account = get(&mut c, &format!("/v1/ledger/accounts/{}", wallet["account_id"].as_str().unwrap())).json();
    assert_eq!(account["ledger"], 410);
    assert_eq!(account["flags"], json!(["debits_must_not_exceed_credits", "history"]));

    // The operator verifies the user: the cap rises.
    let r =
        post(&mut c, &format!("/v1/admin/users/{}/tier", user["id"].as_str().unwrap()), &json!({"tier": "verified"}));
    assert_eq!(r.json()["tier"], "verified");
    let wallet = with_token(&mut c, "GET", "/v1/me/wallet", &token).json();
    assert_eq!(wallet["balance_cap"]["limit"], "2000000");
    assert_problem(&post(&mut c, "/v1/admin/users/99/tier", &json!({"tier": "verified"})), 404, "not_found");
    assert_problem(&post(&mut c, "/v1/admin/users/1/tier", &json!({"tier": "gold"})), 422, "invalid_field");
    let r = c
        .send_raw("POST /v1/admin/users/1/tier HTTP/1.1\r\nContent-Type: application/json\r\n", br#"{"tier":"basic"}"#)
        .unwrap();
    assert_problem(&r, 401, "unauthorized");

    // Logout ends the session.
    assert_eq!(with_token(&mut c, "DELETE", "/v1/sessions/current", &token).status, 204);
    assert_problem(&with_token(&mut c, "GET", "/v1/me", &token), 401, "unauthorized");
    assert_problem(&with_token(&mut c, "GET", "/v1/me", "kasa_s_nonsense"), 401, "unauthorized");
    assert_problem(&get(&mut c, "/v1/me"), 401, "unauthorized");
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}

#[test]
fn five_wrong_pins_lock_even_across_a_kill_9_until_an_operator_unlocks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let r = post(&mut c, "/v1/users", &json!({"phone": "01055556666", "name": "Jun", "pin": "246810"}));
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    for _ in 0..5 {
        assert_problem(&login(&mut c, "01055556666", "111111"), 401, "invalid_credentials");
    }
    // Locked: even the right PIN is refused, with the same answer as a wrong PIN or an
    // unknown number, so the lock does not reveal that the number is registered.
    let locked = login(&mut c, "01055556666", "246810");
    assert_problem(&locked, 401, "invalid_credentials");
    let unknown = login(&mut c, "01055550000", "246810");
    assert_eq!(locked.json(), unknown.json());
    server.kill9();

    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_problem(&login(&mut c, "01055556666", "246810"), 401, "invalid_credentials");
    let user: Value = post(&mut c, &format!("/v1/admin/users/{id}/unlock"), &json!({})).json();
    assert_eq!(user["status"], "active");
    assert_eq!(login(&mut c, "01055556666", "246810").status, 201);
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
}

/// `kasa serve --demo` seeds three users with money once; the README's tour relies on it.
#[test]
fn the_demo_seeds_users_with_money_once() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let server = Server::start_with(dir.path(), &["--demo"]);
        let mut c = server.client();
        let r = login(&mut c, "010-0000-0001", "123456");
        assert_eq!(r.status, 201, "{}", r.json());
        let token = r.json()["token"].as_str().unwrap().to_string();
        let wallet = with_token(&mut c, "GET", "/v1/me/wallet", &token).json();
        assert_eq!((wallet["balance"].clone(), wallet["tier"].clone()), (json!("300000"), json!("verified")));
        assert_eq!(server.terminate().code(), Some(0));
    }
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
    // Three wallets and the bank omnibus, seeded once: 450,000 won held.
    assert!(report.contains("ledger 410: 4 accounts, debits posted 450000 = credits posted 450000"), "{report}");
}

/// The wallet benchmark's program works end to end on a small run (its numbers are measured
/// in release builds and recorded in BENCHMARKS.md; this only checks that every answer is one
/// it expects: completed, insufficient funds or a limit).
#[test]
fn the_wallet_benchmark_runs_on_a_small_workload() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["bench", "wallet", "--users", "40", "--sends", "400", "--clients", "4"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("sends: 400 in"), "{text}");
    assert!(text.contains(", 0 other)"), "{text}");
    // Some of each kind of answer: the workload mixes in rejections on purpose.
    assert!(!text.contains("(0 completed") && !text.contains(" 0 limit exceeded"), "{text}");
}
