//! Operators onboard merchants over HTTP: the business registration number is checked as
//! `shared/testdata/kr_brn.md` says (every invalid example refused with `invalid_brn`, one
//! merchant per number), stores and API keys (the key shown once, then only its prefix;
//! scopes by name; revocation; no Idempotency-Key, since a stored answer could not show the
//! key again), suspension and closing, pages newest first, and a restart that keeps it all.

mod support;

use serde_json::{json, Value};
use support::*;

fn merchant(brn: &str) -> Value {
    json!({
        "business_name": "주식회사 카사상점",
        "display_name": "카사상점",
        "brn": brn,
        "mcc": "5812",
        "fee_bps": 250,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110-123-456789", "holder_name": "(주)카사상점"}
    })
}

#[test]
fn merchants_are_onboarded_with_a_checked_registration_number_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let r = post(&mut c, "/v1/admin/merchants", &merchant("1208147521"));
    assert_eq!(r.status, 201, "{}", r.json());
    let m = r.json();
    assert_eq!(m["id"], "mch_1");
    assert_eq!(m["object"], "merchant");
    assert_eq!(m["brn"], "120-81-47521", "kept in canonical form");
    assert_eq!(
        (m["status"].as_str(), m["mcc"].as_str(), m["fee_bps"].as_u64()),
        (Some("active"), Some("5812"), Some(250))
    );
    assert_eq!(m["settlement_bank_account"]["account_number_last4"], "6789");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("110123456789")
            && !String::from_utf8_lossy(&r.body).contains("110-123-456789"),
        "never the number"
    );
    // The same number again, typed either way.
    for again in ["120-81-47521", "1208147521"] {
        let r = post(&mut c, "/v1/admin/merchants", &merchant(again));
        assert_problem(&r, 409, "merchant_exists");
        assert!(r.json()["detail"].as_str().unwrap().contains("mch_1"));
    }
    // Every invalid example of the test data, and a few more.
    for bad in [
        "111-11-11111",
        "1234567890",
        "220-81-62518",
        "120-81-47522",
        "123456789",
        "120-81-4752",
        "80123456785",
        "FF34567890",
        "100-86-08983",
        "211-00-08983",
        "211-86-00003",
        "12-081-47521",
        "1208-147-521",
        "",
        "120 81 47521",
    ] {
        assert_problem(&post(&mut c, "/v1/admin/merchants", &merchant(bad)), 422, "invalid_brn");
    }
    let mut bad_fee = merchant("220-81-62517");
    bad_fee["fee_bps"] = json!(1001);
    assert_problem(&post(&mut c, "/v1/admin/merchants", &bad_fee), 422, "invalid_field");
    let mut bad_mcc = merchant("220-81-62517");
    bad_mcc["mcc"] = json!("581");
    assert_problem(&post(&mut c, "/v1/admin/merchants", &bad_mcc), 422, "invalid_field");
    let mut unknown = merchant("220-81-62517");
    unknown["website"] = json!("https://example.com");
    assert_problem(&post(&mut c, "/v1/admin/merchants", &unknown), 422, "invalid_field");
    // Only operators onboard.
    let r = call(&mut c, "POST", "/v1/admin/merchants", None, Some(&merchant("220-81-62517")));
    assert_problem(&r, 401, "unauthorized");
    // Every valid example onboards; pages are newest first.
    for brn in ["220-81-62517", "304-87-00790", "116-82-00276", "134-86-72683"] {
        assert_eq!(post(&mut c, "/v1/admin/merchants", &merchant(brn)).status, 201);
    }
    let page = get(&mut c, "/v1/admin/merchants?limit=2").json();
    let ids: Vec<&str> = page["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!((ids, page["has_more"].as_bool()), (vec!["mch_5", "mch_4"], Some(true)));
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let rest = get(&mut c, &format!("/v1/admin/merchants?limit=10&cursor={cursor}")).json();
    let ids: Vec<&str> = rest["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!((ids, rest["next_cursor"].is_null()), (vec!["mch_3", "mch_2", "mch_1"], true));
    assert_problem(&get(&mut c, "/v1/admin/merchants/mch_9"), 404, "not_found");
    assert_problem(&get(&mut c, "/v1/admin/merchants/1"), 404, "not_found");
    assert_problem(&get(&mut c, "/v1/admin/merchants/str_1"), 404, "not_found");
    stop_and_verify(server);
}

#[test]
fn keys_are_shown_once_scoped_revocable_and_merchants_can_be_suspended_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_eq!(post(&mut c, "/v1/admin/merchants", &merchant("120-81-47521")).status, 201);
    assert_eq!(post(&mut c, "/v1/admin/merchants", &merchant("220-81-62517")).status, 201);
    let r = post(&mut c, "/v1/admin/merchants/mch_1/stores", &json!({"name": "강남점"}));
    assert_eq!(
        (r.status, r.json()["id"].as_str(), r.json()["merchant_id"].as_str()),
        (201, Some("str_1"), Some("mch_1"))
    );

    let r = post(
        &mut c,
        "/v1/admin/merchants/mch_1/api-keys",
        &json!({"name": "server", "scopes": ["payments:write", "payments:read"]}),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let key = r.json();
    let secret = key["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("kasa_sk_") && secret.len() == 8 + 64, "{secret}");
    assert_eq!(key["prefix"].as_str(), Some(&secret[..16]));
    assert_eq!(key["scopes"], json!(["payments:read", "payments:write"]));
    assert!(key["revoked_at"].is_null() && key["last_used_at"].is_null());
    // Listed without the key; the data directory never holds it.
    let listed = get(&mut c, "/v1/admin/merchants/mch_1/api-keys");
    assert!(!String::from_utf8_lossy(&listed.body).contains(&secret) && listed.json()["data"][0]["key"].is_null());
    // Refused: unknown scopes, none, an Idempotency-Key (the answer could not show the key again).
    let r =
        post(&mut c, "/v1/admin/merchants/mch_1/api-keys", &json!({"name": "x", "scopes": ["payments:everything"]}));
    assert_problem(&r, 422, "invalid_field");
    assert_problem(
        &post(&mut c, "/v1/admin/merchants/mch_1/api-keys", &json!({"name": "x", "scopes": []})),
        422,
        "invalid_field",
    );
    let body = json!({"name": "x", "scopes": ["payments:read"]});
    let r = keyed(&mut c, "POST", "/v1/admin/merchants/mch_1/api-keys", Some(&server.key), "k-1", &body);
    assert_problem(&r, 400, "idempotency_key_not_supported");
    // Another merchant's key is not found under this one; revocation is at once and idempotent.
    assert_problem(&post(&mut c, "/v1/admin/merchants/mch_2/api-keys/key_1/revoke", &json!({})), 404, "not_found");
    let revoked = post(&mut c, "/v1/admin/merchants/mch_1/api-keys/key_1/revoke", &json!({}));
    assert_eq!(revoked.status, 200);
    assert!(revoked.json()["revoked_at"].is_string());
    let again = post(&mut c, "/v1/admin/merchants/mch_1/api-keys/key_1/revoke", &json!({}));
    assert_eq!(again.json()["revoked_at"], revoked.json()["revoked_at"]);

    // Suspended: still gets stores; reactivated; closed for good.
    let r = post(&mut c, "/v1/admin/merchants/mch_1/suspend", &json!({}));
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("suspended")));
    assert_eq!(post(&mut c, "/v1/admin/merchants/mch_1/stores", &json!({"name": "홍대점"})).status, 201);
    assert_eq!(post(&mut c, "/v1/admin/merchants/mch_1/reactivate", &json!({})).json()["status"], "active");
    assert_eq!(post(&mut c, "/v1/admin/merchants/mch_1/close", &json!({})).json()["status"], "closed");
    assert_problem(&post(&mut c, "/v1/admin/merchants/mch_1/reactivate", &json!({})), 409, "merchant_closed");
    assert_problem(&post(&mut c, "/v1/admin/merchants/mch_1/stores", &json!({"name": "x"})), 409, "merchant_closed");
    let r = post(&mut c, "/v1/admin/merchants/mch_1/api-keys", &json!({"name": "x", "scopes": ["payments:read"]}));
    assert_problem(&r, 409, "merchant_closed");
    let stores = get(&mut c, "/v1/admin/merchants/mch_1/stores").json();
    let names: Vec<&str> = stores["data"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["홍대점", "강남점"], "newest first");

    // A restart keeps all of it, and the key never reached the disk.
    let server = {
        let data = server.data.clone();
        server.terminate();
        Server::start(&data)
    };
    let mut c = server.client();
    assert_eq!(get(&mut c, "/v1/admin/merchants/mch_1").json()["status"], "closed");
    assert!(get(&mut c, "/v1/admin/merchants/mch_1/api-keys").json()["data"][0]["revoked_at"].is_string());
    let data = server.data.clone();
    stop_and_verify(server);
    assert_eq!(containing(&data, secret.as_bytes()), Vec::<std::path::PathBuf>::new(), "the key on disk");
}
