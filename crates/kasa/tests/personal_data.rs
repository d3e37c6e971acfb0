//! Personal data and secrets at rest and in the log: a bank account number is only ever
//! stored sealed, the data directory and its key files are private to the owner, and the log
//! (one line per request) never holds a session token, a PIN, a verification code or an
//! account number; and no error body quotes back what a client sent.

mod support;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::*;

/// Whether `text` has `digits` as a whole number (not inside a longer run of digits, such as
/// a timestamp).
fn has_number(text: &str, digits: &str) -> bool {
    text.match_indices(digits).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// After a user links `110-123-456789` and moves money through it (the bank rail opens the
/// sealed number to pay it), no file under the data directory holds `110123456789` (nor the
/// PIN or a session token) — not the journal, not the snapshot of a clean stop, not the
/// sandbox bank's log; the directory is 0700 and its key files 0600; and the server's log
/// has one line per request with its route and status, and none of the secrets.
#[test]
fn personal_data_stays_sealed_private_and_out_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("kasa.log");
    let launch = || Launch { log: Some(&log), generated_key: true, ..Launch::default() };
    let server = Server::launch(&data, &[], launch());
    let mut c = server.client();
    let phone = "010-9500-0001";
    let (verification_id, code) = verification(&server, phone);
    let body = json!({"phone": phone, "name": "Private", "pin": PIN, "verification_id": verification_id, "code": code});
    assert_eq!(call(&mut server.client_from(next_address()), "POST", "/v1/users", None, Some(&body)).status, 201);
    let user = session(&server, phone, PIN);
    let r = user.post(
        &mut c,
        "/v1/me/bank-accounts",
        &json!({"bank_code": "004", "account_number": "110-123-456789", "holder_name": "Private"}),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["account_number"], "******6789");
    let bank = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(funding(&mut c, &user, "top-ups", &bank, 100_000, None)["status"], "succeeded");
    assert_eq!(funding(&mut c, &user, "withdrawals", &bank, 60_000, Some(PIN))["status"], "succeeded");
    for _ in 0..3 {
        assert_eq!(user.get(&mut c, "/v1/me/wallet").status, 200);
    }
    assert!(!String::from_utf8_lossy(&user.get(&mut c, "/v1/me/bank-accounts").body).contains("456789"));
    assert_problem(&log_in(&server, phone, "975310"), 401, "invalid_credentials");
    assert_problem(&call(&mut c, "GET", "/v1/me", Some("kasa_s_not-a-real-token"), None), 401, "unauthorized");
    let key = server.key.clone();
    assert!(key.len() >= 32);

    // The modes, while the server runs.
    assert_eq!(mode(&data), 0o700, "the data directory");
    for file in ["operator.key", "pin.pepper", "data.key", "sandbox-bank.log", "LOCK"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert!(std::fs::read_to_string(data.join("sandbox-bank.log")).unwrap().lines().count() >= 2, "the bank decided");
    stop_and_verify(server);
    let report_files = files(&data);
    assert!(
        report_files.iter().any(|f| f.to_string_lossy().contains("snapshot")),
        "a clean stop wrote a snapshot: {report_files:?}"
    );

    for secret in ["110123456789", "110-123-456789", user.token.as_str(), PIN] {
        assert_eq!(containing(&data, secret.as_bytes()), Vec::<PathBuf>::new(), "{secret} at rest");
    }

    let log = std::fs::read_to_string(&log).unwrap();
    for secret in [user.token.as_str(), "kasa_s_", "110123456789", "110-123-456789", &key] {
        assert!(!log.contains(secret), "the log holds {secret}:\n{log}");
    }
    for number in [PIN, "975310", code.as_str(), "456789", "01095000001", "821095000001"] {
        assert!(!has_number(&log, number), "the log holds {number}:\n{log}");
    }
    let requests: Vec<&str> = log.lines().filter(|l| l.contains("kasa::request")).collect();
    let wallet_reads =
        requests.iter().filter(|l| l.contains("route=\"/v1/me/wallet\"") && l.contains("method=GET")).count();
    assert_eq!(wallet_reads, 3, "one line per request:\n{log}");
    let failed_login = requests.iter().find(|l| l.contains("route=\"/v1/sessions\"") && l.contains("status=401"));
    assert!(failed_login.is_some_and(|l| l.contains("invalid_credentials") && l.contains("latency_us=")), "{log}");
    assert!(requests.iter().any(|l| l.contains("route=\"/v1/me/bank-accounts\"") && l.contains("status=201")), "{log}");
}

/// Regression (issue 7's audit: serde's messages quote the value they refuse): an account
/// number sent as a JSON number, `{"account_number": 110123456789}`, was answered "invalid
/// type: integer `110123456789`, expected a string", so the number went back into whatever
/// logs the client keeps of errors. Now no refusal quotes a value, of any kind (a number where
/// a string belongs, a string where a number belongs, a value out of range, an unknown flag
/// or field), in the wallet's and the merchants' bank accounts and a few other fields; the
/// refusal still says which kind of value it was and what was expected.
#[test]
fn error_bodies_never_quote_what_the_client_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let user = sign_up(&server, "010-9500-0101");
    let number = "110123456789";
    let n: u64 = number.parse().unwrap();
    let account =
        |account_number: Value| json!({"bank_code": "088", "account_number": account_number, "holder_name": "Kim"});
    let merchant = |account: Value| {
        json!({"business_name": "카사", "display_name": "카사", "brn": "120-81-47521", "mcc": "5812", "fee_bps": 250,
            "settlement_bank_account": account})
    };
    let vrf = "vrf_00000000000000000000000000000000";
    let mut anon = server.client_from(next_address());
    let refusals = [
        ("an account number as a number", user.post(&mut c, "/v1/me/bank-accounts", &account(json!(n)))),
        ("as a negative number", user.post(&mut c, "/v1/me/bank-accounts", &account(json!(-(n as i64))))),
        ("as a fraction", user.post(&mut c, "/v1/me/bank-accounts", &account(json!(n as f64 + 0.5)))),
        ("as a list", user.post(&mut c, "/v1/me/bank-accounts", &account(json!([number])))),
        ("with a letter", user.post(&mut c, "/v1/me/bank-accounts", &account(json!(format!("{number}x"))))),
        ("a holder's name as a number", {
            let body = json!({"bank_code": "088", "account_number": number, "holder_name": n});
            user.post(&mut c, "/v1/me/bank-accounts", &body)
        }),
        ("a merchant's account number as a number", post(&mut c, "/v1/admin/merchants", &merchant(account(json!(n))))),
        ("as a fraction", post(&mut c, "/v1/admin/merchants", &merchant(account(json!(n as f64 + 0.5))))),
        ("a merchant's fee out of range", {
            let mut body = merchant(account(json!(number)));
            body["fee_bps"] = json!(n);
            post(&mut c, "/v1/admin/merchants", &body)
        }),
        ("a phone as a number", {
            let body = json!({"phone": n, "name": "x", "pin": PIN, "verification_id": vrf, "code": "123456"});
            call(&mut anon, "POST", "/v1/users", None, Some(&body))
        }),
        (
            "a PIN as a number",
            user.post(&mut c, "/v1/transfers", &json!({"to_phone": "010-9500-0102", "amount": "1", "pin": n})),
        ),
        ("an amount with a letter", {
            user.post(&mut c, "/v1/transfers", &json!({"to_phone": "010-9500-0102", "amount": format!("{number}x")}))
        }),
        ("an unknown field named by the number", {
            let mut body = account(json!(number));
            body[number] = json!(1);
            user.post(&mut c, "/v1/me/bank-accounts", &body)
        }),
        (
            "an unknown ledger flag",
            post(&mut c, "/v1/ledger/accounts", &json!({"id": "1", "ledger": 1, "code": 1, "flags": [number]})),
        ),
    ];
    for (what, r) in &refusals {
        let text = String::from_utf8_lossy(&r.body);
        assert!((400..500).contains(&r.status), "{what}: {} {text}", r.status);
        assert_eq!(r.json()["code"], "invalid_field", "{what}: {text}");
        assert!(!text.contains("456789"), "{what} is quoted back: {text}");
    }
    // The refusal says what kind of value came and what was expected.
    let detail = refusals[0].1.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.starts_with("invalid type: integer, expected a string"), "{detail}");
    stop_and_verify(server);
}
