//! Merchants manage their webhook endpoints with an API key that has `webhooks:manage`: the
//! signing secret is shown once (at creation and at each rotation) and is never on disk in
//! clear; URLs into private networks are refused; another merchant's endpoint is not found;
//! a rotation keeps the old secret valid for 24 hours; deleting stops an endpoint.

mod support;

use serde_json::json;
use support::*;

fn onboard_with_key(c: &mut kasa::client::Client, brn: &str, scopes: &[&str]) -> String {
    let body = json!({
        "business_name": "주식회사 카사상점", "display_name": "카사상점", "brn": brn, "mcc": "5812", "fee_bps": 250,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110123456789", "holder_name": "카사상점"}
    });
    let merchant = post(c, "/v1/admin/merchants", &body).json()["id"].as_str().unwrap().to_string();
    let r = post(c, &format!("/v1/admin/merchants/{merchant}/api-keys"), &json!({"name": "s", "scopes": scopes}));
    r.json()["key"].as_str().unwrap().to_string()
}

#[test]
fn endpoints_show_their_secret_once_refuse_private_urls_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let key = onboard_with_key(&mut c, "120-81-47521", &["webhooks:manage"]);
    let payments_only = {
        let r = post(&mut c, "/v1/admin/merchants/mch_1/api-keys", &json!({"name": "p", "scopes": ["payments:write"]}));
        r.json()["key"].as_str().unwrap().to_string()
    };
    let other = onboard_with_key(&mut c, "220-81-62517", &["webhooks:manage"]);

    let body = json!({"url": "https://shop.example/hooks/kasa", "events": ["payment.succeeded", "refund.succeeded"]});
    let r = call(&mut c, "POST", "/v1/webhook-endpoints", Some(&key), Some(&body));
    assert_eq!(r.status, 201, "{}", r.json());
    let e = r.json();
    let secret = e["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64, "{secret}");
    assert_eq!((e["id"].as_str(), e["object"].as_str()), (Some("we_1"), Some("webhook_endpoint")));
    assert_eq!(e["events"], json!(["payment.succeeded", "refund.succeeded"]));
    let listed = call(&mut c, "GET", "/v1/webhook-endpoints", Some(&key), None);
    assert!(listed.json()["data"][0]["secret"].is_null() && !String::from_utf8_lossy(&listed.body).contains(&secret));

    // Refused: private and plain-http URLs, unknown events, none, the wrong scope, a key header.
    for url in [
        "https://10.0.0.8/h",
        "https://169.254.169.254/latest",
        "http://shop.example/h",
        "https://[::1]/h",
        "https://metadata.internal/h",
    ] {
        let r = call(
            &mut c,
            "POST",
            "/v1/webhook-endpoints",
            Some(&key),
            Some(&json!({"url": url, "events": ["payout.paid"]})),
        );
        assert_problem(&r, 422, "invalid_field");
    }
    let r = call(
        &mut c,
        "POST",
        "/v1/webhook-endpoints",
        Some(&key),
        Some(&json!({"url": "https://a.example/", "events": ["payment.everything"]})),
    );
    assert_problem(&r, 422, "invalid_field");
    let r = call(
        &mut c,
        "POST",
        "/v1/webhook-endpoints",
        Some(&key),
        Some(&json!({"url": "https://a.example/", "events": []})),
    );
    assert_problem(&r, 422, "invalid_field");
    let r = call(&mut c, "POST", "/v1/webhook-endpoints", Some(&payments_only), Some(&body));
    assert_problem(&r, 403, "insufficient_scope");
    assert_problem(
        &keyed(&mut c, "POST", "/v1/webhook-endpoints", Some(&key), "k1", &body),
        400,
        "idempotency_key_not_supported",
    );
    // Another merchant sees and touches nothing of it.
    assert!(call(&mut c, "GET", "/v1/webhook-endpoints", Some(&other), None).json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_problem(&call(&mut c, "DELETE", "/v1/webhook-endpoints/we_1", Some(&other), None), 404, "not_found");
    assert_problem(
        &call(&mut c, "POST", "/v1/webhook-endpoints/we_1/rotate-secret", Some(&other), None),
        404,
        "not_found",
    );

    // Rotation: a new secret, shown once; the old one signs for 24 hours more.
    let r = call(&mut c, "POST", "/v1/webhook-endpoints/we_1/rotate-secret", Some(&key), None);
    assert_eq!(r.status, 200, "{}", r.json());
    let rotated = r.json();
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert!(rotated["old_secret_expires_at"].is_string());

    // Neither secret is on disk in clear, after a restart as before.
    let data = server.data.clone();
    server.terminate();
    let server = Server::start(&data);
    let mut c = server.client();
    assert_eq!(call(&mut c, "GET", "/v1/webhook-endpoints", Some(&key), None).json()["data"][0]["id"], "we_1");
    let r = call(&mut c, "DELETE", "/v1/webhook-endpoints/we_1", Some(&key), None);
    assert_eq!(r.status, 200);
    assert_problem(&call(&mut c, "DELETE", "/v1/webhook-endpoints/we_1", Some(&key), None), 404, "not_found");
    assert!(call(&mut c, "GET", "/v1/webhook-endpoints", Some(&key), None).json()["data"]
        .as_array()
        .unwrap()
        .is_empty());
    stop_and_verify(server);
    for s in [&secret, &new_secret] {
        assert_eq!(containing(&data, s.as_bytes()), Vec::<std::path::PathBuf>::new(), "a secret on disk");
    }
}
