//! Merchants create, read, list and cancel online payments with their API keys, over HTTP:
//! one payment per order (a keyed retry answers as the first did), scopes (`403
//! insufficient_scope`), revoked and unknown keys (`401`), another merchant's payments
//! (`404`), a suspended merchant (`409 merchant_not_active`), expiry by engine time with its
//! event, and a key's last use.

mod support;

use serde_json::{json, Value};
use std::time::Instant;
use support::*;

fn order(id: &str, amount: &str) -> Value {
    json!({"amount": amount, "currency": "KRW", "order_id": id, "item_name": "아메리카노 2잔"})
}

#[test]
fn merchants_create_read_list_and_cancel_their_payments_with_scoped_keys() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let other = onboard(&mut c, "220-81-62517");
    let write = api_key(&mut c, &shop, &["payments:read", "payments:write"]);
    let read_only = api_key(&mut c, &shop, &["payments:read"]);
    let others = api_key(&mut c, &other, &["payments:read", "payments:write"]);
    let store = post(&mut c, &format!("/v1/admin/merchants/{shop}/stores"), &json!({"name": "강남점"})).json();

    let mut body = order("order-1001", "4500");
    body["store_id"] = store["id"].clone();
    body["return_url"] = json!("https://shop.example/orders/1001");
    let r = call(&mut c, "POST", "/v1/payments", Some(&write), Some(&body));
    assert_eq!(r.status, 201, "{}", r.json());
    let p = r.json();
    assert_eq!(
        (p["id"].as_str(), p["object"].as_str(), p["status"].as_str()),
        (Some("pay_1"), Some("payment"), Some("requires_approval"))
    );
    assert_eq!(
        (p["amount"].as_str(), p["currency"].as_str(), p["capture_method"].as_str()),
        (Some("4500"), Some("KRW"), Some("automatic"))
    );
    assert_eq!((p["store_id"].as_str(), p["merchant_id"].as_str()), (Some("str_1"), Some(shop.as_str())));
    let approval_url = p["approval_url"].as_str().unwrap().to_string();
    let token = approval_url.strip_prefix("/pay/pay_1?token=").expect("the link carries a token").to_string();
    assert_eq!(token.len(), 32);
    // One payment per order; a keyed retry answers as the first did.
    assert_problem(
        &call(&mut c, "POST", "/v1/payments", Some(&write), Some(&order("order-1001", "4500"))),
        409,
        "order_exists",
    );
    let first = keyed(&mut c, "POST", "/v1/payments", Some(&write), "order-1002-try", &order("order-1002", "9000"));
    let retry = keyed(&mut c, "POST", "/v1/payments", Some(&write), "order-1002-try", &order("order-1002", "9000"));
    assert_eq!((first.status, retry.status), (201, 201));
    assert_eq!(first.json(), retry.json());
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    // Refused before anything exists: bad fields, another currency, no key, a key without the scope.
    for (bad, code) in [
        (json!({"amount": "0", "currency": "KRW", "order_id": "x", "item_name": "x"}), "invalid_field"),
        (json!({"amount": "100000001", "currency": "KRW", "order_id": "x", "item_name": "x"}), "invalid_field"),
        (json!({"amount": "1", "currency": "USD", "order_id": "x", "item_name": "x"}), "currency_not_supported"),
        (json!({"amount": "1", "currency": "KRW", "order_id": "has space", "item_name": "x"}), "invalid_field"),
        (
            json!({"amount": "1", "currency": "KRW", "order_id": "x", "item_name": "x", "capture_method": "later"}),
            "invalid_field",
        ),
        (
            json!({"amount": "1", "currency": "KRW", "order_id": "x", "item_name": "x", "expires_in": 30}),
            "invalid_field",
        ),
        (
            json!({"amount": "1", "currency": "KRW", "order_id": "x", "item_name": "x", "return_url": "http://evil.example"}),
            "invalid_field",
        ),
        (
            json!({"amount": "1", "currency": "KRW", "order_id": "x", "item_name": "x", "store_id": "str_9"}),
            "invalid_field",
        ),
    ] {
        let r = call(&mut c, "POST", "/v1/payments", Some(&write), Some(&bad));
        assert_problem(&r, r.status, code);
        assert!(r.status == 422, "{bad}: {}", r.json());
    }
    assert_problem(&call(&mut c, "POST", "/v1/payments", None, Some(&order("x", "1"))), 401, "unauthorized");
    assert_problem(
        &call(&mut c, "POST", "/v1/payments", Some(&read_only), Some(&order("x", "1"))),
        403,
        "insufficient_scope",
    );
    let fake = format!("kasa_sk_{}", "0".repeat(64));
    assert_problem(&call(&mut c, "GET", "/v1/payments/pay_1", Some(&fake), None), 401, "unauthorized");
    // Reads: by id, by order, by status, newest first; another merchant sees nothing.
    let got = call(&mut c, "GET", "/v1/payments/pay_1", Some(&read_only), None);
    assert_eq!((got.status, got.json()["order_id"].as_str()), (200, Some("order-1001")));
    assert_problem(&call(&mut c, "GET", "/v1/payments/pay_1", Some(&others), None), 404, "not_found");
    assert_problem(&call(&mut c, "POST", "/v1/payments/pay_1/cancel", Some(&others), None), 404, "not_found");
    let by_order = call(&mut c, "GET", "/v1/payments?order_id=order-1002", Some(&read_only), None).json();
    assert_eq!(by_order["data"][0]["id"], "pay_2");
    let all = call(&mut c, "GET", "/v1/payments?limit=1", Some(&read_only), None).json();
    assert_eq!((all["data"][0]["id"].as_str(), all["has_more"].as_bool()), (Some("pay_2"), Some(true)));
    let cursor = all["next_cursor"].as_str().unwrap();
    let next = call(&mut c, "GET", &format!("/v1/payments?limit=1&cursor={cursor}"), Some(&read_only), None).json();
    assert_eq!((next["data"][0]["id"].as_str(), next["next_cursor"].is_null()), (Some("pay_1"), true));
    assert!(call(&mut c, "GET", "/v1/payments", Some(&others), None).json()["data"].as_array().unwrap().is_empty());
    // A wallet user sees a payment that waits for approval (merchant, store, item, amount),
    // with a session only.
    let user = sign_up(&server, "010-7700-0001");
    assert_problem(&user.get(&mut c, "/v1/me/payments/pay_1"), 404, "not_found");
    let wrong = format!("/v1/me/payments/pay_1?token={}", "0".repeat(32));
    assert_problem(&user.get(&mut c, &wrong), 404, "not_found");
    let other_token = first.json()["approval_url"].as_str().unwrap().split("token=").nth(1).unwrap().to_string();
    assert_problem(&user.get(&mut c, &format!("/v1/me/payments/pay_1?token={other_token}")), 404, "not_found");
    let mine = user.get(&mut c, &format!("/v1/me/payments/pay_1?token={token}"));
    assert_eq!(mine.status, 200, "{}", mine.json());
    let mine = mine.json();
    assert_eq!((mine["merchant_name"].as_str(), mine["store_name"].as_str()), (Some("카사상점"), Some("강남점")));
    assert_eq!(
        (mine["item_name"].as_str(), mine["amount"].as_str(), mine["status"].as_str()),
        (Some("아메리카노 2잔"), Some("4500"), Some("requires_approval"))
    );
    assert!(mine.get("order_id").is_none() && mine.get("merchant_id").is_none(), "only what the user needs: {mine}");
    assert_problem(&call(&mut c, "GET", "/v1/me/payments/pay_1", None, None), 401, "unauthorized");
    assert_problem(&user.get(&mut c, &format!("/v1/me/payments/pay_99?token={token}")), 404, "not_found");
    // Cancel before approval; once.
    let canceled = call(&mut c, "POST", "/v1/payments/pay_1/cancel", Some(&write), None).json();
    assert_eq!((canceled["status"].as_str(), canceled["cancel_reason"].as_str()), (Some("canceled"), Some("merchant")));
    assert_problem(&call(&mut c, "POST", "/v1/payments/pay_1/cancel", Some(&write), None), 409, "invalid_state");
    let seen = user.get(&mut c, &format!("/v1/me/payments/pay_1?token={token}")).json();
    assert_eq!((seen["status"].as_str(), seen["cancel_reason"].as_str()), (Some("canceled"), Some("merchant")));
    let waiting = call(&mut c, "GET", "/v1/payments?status=requires_approval", Some(&read_only), None).json();
    assert_eq!(waiting["data"].as_array().unwrap().len(), 1);
    // A revoked key stops at once; a suspended merchant takes no new payments.
    let keys = get(&mut c, &format!("/v1/admin/merchants/{shop}/api-keys")).json();
    let read_only_id = keys["data"][0]["id"].as_str().unwrap().to_string();
    post(&mut c, &format!("/v1/admin/merchants/{shop}/api-keys/{read_only_id}/revoke"), &json!({}));
    assert_problem(&call(&mut c, "GET", "/v1/payments/pay_1", Some(&read_only), None), 401, "unauthorized");
    post(&mut c, &format!("/v1/admin/merchants/{shop}/suspend"), &json!({}));
    assert_problem(
        &call(&mut c, "POST", "/v1/payments", Some(&write), Some(&order("o-9", "1"))),
        409,
        "merchant_not_active",
    );
    // The key's last use is recorded (to the minute), in the background.
    let started = Instant::now();
    loop {
        let keys = get(&mut c, &format!("/v1/admin/merchants/{shop}/api-keys")).json();
        let write_key = keys["data"].as_array().unwrap().iter().find(|k| k["id"] == "key_1").unwrap().clone();
        if write_key["last_used_at"].is_string() {
            break;
        }
        assert!(started.elapsed() < BACKGROUND_WAIT, "the key's last use was not recorded: {write_key}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop_and_verify(server);
}

#[test]
fn an_unapproved_payment_expires_by_engine_time_with_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--test-clock"]);
    let mut c = server.client();
    let shop = onboard(&mut c, "120-81-47521");
    let key = api_key(&mut c, &shop, &["payments:read", "payments:write"]);
    let mut body = order("o-1", "1000");
    body["expires_in"] = json!(60);
    assert_eq!(call(&mut c, "POST", "/v1/payments", Some(&key), Some(&body)).status, 201);
    assert_eq!(call(&mut c, "POST", "/v1/payments", Some(&key), Some(&order("o-2", "2000"))).status, 201);
    advance(&mut c, 61);
    let p = call(&mut c, "GET", "/v1/payments/pay_1", Some(&key), None).json();
    assert_eq!((p["status"].as_str(), p["cancel_reason"].as_str()), (Some("canceled"), Some("expired")));
    assert_eq!(call(&mut c, "GET", "/v1/payments/pay_2", Some(&key), None).json()["status"], "requires_approval");
    assert_problem(&call(&mut c, "POST", "/v1/payments/pay_1/cancel", Some(&key), None), 409, "invalid_state");
    // The event log is published a few milliseconds after the commit: wait for it.
    let started = Instant::now();
    let events = loop {
        let events = get(&mut c, "/v1/admin/events?limit=100").json();
        let types: Vec<String> =
            events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
        if types.ends_with(&["payment.created".into(), "payment.created".into(), "payment.expired".into()]) {
            break events;
        }
        assert!(started.elapsed() < BACKGROUND_WAIT, "no payment.expired event: {types:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let expired = events["data"].as_array().unwrap().last().unwrap();
    assert_eq!(expired["data"]["payment_id"], "pay_1");
    // After a restart the second one still expires on time.
    let server = {
        let data = server.data.clone();
        server.terminate();
        Server::start_with(&data, &["--test-clock"])
    };
    let mut c = server.client();
    advance(&mut c, 15 * 60);
    assert_eq!(call(&mut c, "GET", "/v1/payments/pay_2", Some(&key), None).json()["cancel_reason"], "expired");
    stop_and_verify(server);
}
