//! The edges of the server end to end: slow and half-sent requests, the connection cap, a
//! flood of logins, bodies of the wrong size, shape or type, and phone numbers that are not
//! numbers. What a client does wrong costs that client, never the users already logged in.

mod support;

use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::*;

/// How long the server gives a client for its headers, and for its body once the headers are
/// in (`HEADER_READ_TIMEOUT`, `BODY_READ_TIMEOUT`).
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// What a request of a logged-in user may take while others misbehave: far below the read
/// timeout, so that an answer that had to wait for the slow clients to be cut off fails.
const PROMPT: Duration = Duration::from_secs(3);

/// Reads until the server closes the connection (or `limit` passes); what it sent and when
/// the connection closed, if it did.
fn read_until_closed(stream: &mut TcpStream, started: Instant, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (received, None);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (received, Some(started.elapsed())),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (received, Some(started.elapsed())),
            Err(_) => return (received, None),
        }
    }
}

/// Asserts that a logged-in user's request answers `status` promptly.
#[track_caller]
fn prompt(r: impl FnOnce() -> kasa::client::Response, status: u16, what: &str) {
    let started = Instant::now();
    let r = r();
    let took = started.elapsed();
    assert_eq!(r.status, status, "{what}: {}", r.json());
    assert!(took < PROMPT, "{what} took {took:?} while slow clients hung");
}

/// 520 connections that send their headers and one byte of a 1,000-byte body (more than the
/// 512 request permits), and 20 that never finish their headers: while they hang, health,
/// readiness, a logged-in user's wallet and a send still answer at once (a slow client holds
/// a connection, never a permit); after the read timeout the server answers the half-sent
/// bodies `408 request_timeout` and closes every one of those connections.
#[test]
fn slow_clients_hold_connections_never_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-8100-0001");
    let bob = sign_up(&server, "010-8100-0002");
    credit(&mut c, &alice, 10_000);

    let started = Instant::now();
    let head =
        "POST /v1/users HTTP/1.1\r\nHost: kasa\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    let mut slow_bodies: Vec<TcpStream> = (0..520)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    let mut slow_heads: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.write_all(b"POST /v1/users HTTP/1.1\r\nHost: kasa\r\n").unwrap();
            s
        })
        .collect();
    // A request after all of them, on a connection of its own (accepted after theirs: the
    // server accepts in order). That each slow one was being read as a request all along
    // shows at the end: each gets a 408 for its body, not a close for its headers.
    let mut fresh = server.client();
    prompt(|| get(&mut fresh, "/healthz"), 200, "/healthz");
    prompt(|| get(&mut fresh, "/readyz"), 200, "/readyz");
    for i in 0..5 {
        prompt(|| alice.get(&mut c, "/v1/me/wallet"), 200, "GET /v1/me/wallet");
        let send = json!({"to_user_id": bob.id, "amount": (100 + i).to_string()});
        prompt(|| alice.post(&mut c, "/v1/transfers", &send), 201, "a send");
    }
    assert!(started.elapsed() < READ_TIMEOUT, "the checks ran after the slow clients timed out");
    assert_eq!(bob.balance(&mut c).0, 100 + 101 + 102 + 103 + 104);

    let limit = READ_TIMEOUT + Duration::from_secs(10);
    for s in &mut slow_bodies {
        let (received, closed) = read_until_closed(s, started, limit);
        let closed = closed.expect("a half-sent body's connection is closed");
        assert!(closed >= READ_TIMEOUT - Duration::from_millis(500), "closed after {closed:?}");
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("request_timeout") && text.contains("application/problem+json"), "{text}");
    }
    for s in &mut slow_heads {
        let (_, closed) = read_until_closed(s, started, limit);
        assert!(closed.is_some(), "a connection without whole headers is closed");
    }
    // And the server is as good as new, on a new connection: `c` has been idle for longer
    // than the header timeout, which also bounds an idle keep-alive connection, so the server
    // may have closed it (as a client pool would, the test connects again).
    let mut c = server.client();
    prompt(|| alice.get(&mut c, "/v1/me/wallet"), 200, "GET /v1/me/wallet after the timeouts");
    stop_and_verify(server);
}

/// The connection cap (`--connections-max`, 4,096 by default; 4 here): with four
/// connections open, a fifth is not served (it waits in the kernel's backlog, taking no
/// memory in the server) while the four keep answering at once, a logged-in user's wallet and
/// `/healthz` and `/readyz` among them; when one of the four closes, the fifth is served.
#[test]
fn connections_past_the_cap_wait_while_open_ones_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["--connections-max", "4"]);
    let alice = sign_up(&server, "010-8150-0001");
    // Four connections, each served once, so each holds one of the four places.
    let mut open: Vec<kasa::client::Client> = (0..4).map(|_| server.client()).collect();
    for c in &mut open {
        assert_eq!(get(c, "/healthz").status, 200);
    }
    let mut fifth = TcpStream::connect(server.addr).expect("the kernel takes the connection into its backlog");
    fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: kasa\r\n\r\n").unwrap();
    let waited = Instant::now();
    let (received, closed) = read_until_closed(&mut fifth, waited, Duration::from_secs(1));
    assert!(received.is_empty() && closed.is_none(), "served past the cap: {}", String::from_utf8_lossy(&received));
    for _ in 0..3 {
        prompt(|| alice.get(&mut open[0], "/v1/me/wallet"), 200, "a user's wallet at the cap");
        prompt(|| call(&mut open[1], "GET", "/healthz", None, None), 200, "/healthz at the cap");
        prompt(|| call(&mut open[2], "GET", "/readyz", None, None), 200, "/readyz at the cap");
    }
    drop(open.pop());
    let freed = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    fifth.set_read_timeout(Some(PROMPT)).unwrap();
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = fifth.read(&mut buffer).expect("the fifth is served once a place is free");
        assert!(n > 0, "closed instead of served: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    assert!(freed.elapsed() < PROMPT, "served {:?} after a place was freed", freed.elapsed());
    drop(open);
    drop(fifth);
    stop_and_verify(server);
}

/// A flood of 600 logins of unknown numbers from one address, and then 200 from as many
/// addresses (past every per-address limit, so that they queue for the PIN hasher): the
/// logins are refused at once with `429 rate_limited` or `503 busy` beyond what the limits
/// and the hasher's queue allow, and a logged-in user's requests, which need no PIN hash,
/// and a monitor's `/healthz` and `/readyz` keep answering promptly the whole time.
#[test]
fn a_flood_of_bad_logins_never_starves_logged_in_users() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-8200-0001");
    let bob = sign_up(&server, "010-8200-0002");
    credit(&mut c, &alice, 10_000);

    let flooding = Arc::new(AtomicBool::new(true));
    let user_load = {
        let (flooding, alice, bob, mut c) = (flooding.clone(), alice.clone(), bob.clone(), server.client());
        std::thread::spawn(move || {
            let mut requests = 0;
            while flooding.load(Ordering::Relaxed) || requests < 10 {
                prompt(|| alice.get(&mut c, "/v1/me/wallet"), 200, "GET /v1/me/wallet");
                prompt(
                    || alice.post(&mut c, "/v1/transfers", &json!({"to_user_id": bob.id, "amount": "1"})),
                    201,
                    "a send",
                );
                requests += 1;
            }
            requests
        })
    };
    // A monitor's health and readiness checks, on a connection of their own, without
    // credentials, the whole time.
    let health_load = {
        let (flooding, mut c) = (flooding.clone(), server.client_from(next_address()));
        std::thread::spawn(move || {
            let mut checks = 0;
            while flooding.load(Ordering::Relaxed) || checks < 10 {
                prompt(|| call(&mut c, "GET", "/healthz", None, None), 200, "GET /healthz");
                prompt(|| call(&mut c, "GET", "/readyz", None, None), 200, "GET /readyz");
                checks += 1;
            }
            checks
        })
    };
    let login = |client: &mut kasa::client::Client, i: usize| {
        let body = json!({"phone": format!("010-83{:02}-{:04}", i / 10_000, i % 10_000), "pin": "975310"});
        call(client, "POST", "/v1/sessions", None, Some(&body))
    };
    let started = Instant::now();
    // 600 from one address: 50 connections of 12 logins each.
    let same_address: Vec<_> = (0..50)
        .map(|t| {
            let mut client = server.client();
            std::thread::spawn(move || (0..12).map(|i| login(&mut client, t * 12 + i).status).collect::<Vec<u16>>())
        })
        .collect();
    let statuses: Vec<u16> = same_address.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let tried = statuses.iter().filter(|&&s| s == 401).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    let busy = statuses.iter().filter(|&&s| s == 503).count();
    assert_eq!(tried + limited + busy, 600, "only 401, 429 and 503: {statuses:?}");
    // 30 at once, and one more every two seconds.
    assert!(tried as f64 <= 30.0 + elapsed / 2.0 + 1.0, "{tried} logins from one address were tried in {elapsed:.1} s");
    assert!(limited >= 500, "{limited} of 600 were rate limited");

    // 200 from 200 addresses at once: the hasher takes 2 at a time and 32 waiting; the rest
    // are refused `503 busy` at once.
    let together = Arc::new(std::sync::Barrier::new(200));
    let many_addresses: Vec<_> = (0..200)
        .map(|i| {
            let (mut client, together) = (server.client_from(next_address()), together.clone());
            std::thread::spawn(move || {
                together.wait();
                let r = login(&mut client, 1_000 + i);
                (r.status, r.json()["code"].as_str().map(str::to_string), r.header("retry-after").map(str::to_string))
            })
        })
        .collect();
    let answers: Vec<_> = many_addresses.into_iter().map(|t| t.join().unwrap()).collect();
    flooding.store(false, Ordering::Relaxed);
    let served = user_load.join().unwrap();
    let checked = health_load.join().unwrap();
    let busy: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert!(answers.iter().all(|a| a.0 == 401 || a.0 == 503), "{answers:?}");
    assert!(!busy.is_empty(), "200 logins at once all waited for the PIN hasher");
    assert!(busy.iter().all(|a| a.1.as_deref() == Some("busy") && a.2.is_some()), "{busy:?}");
    eprintln!(
        "{served} rounds of user requests and {checked} of health checks during the flood; {} of 200 logins busy",
        busy.len()
    );
    assert!(served >= 10 && checked >= 10);
    stop_and_verify(server);
}

/// A JSON array where an object belongs is `400 malformed_json`; a body that is not JSON by
/// its type is `415` (an empty one needs no type); a body over 64 KiB is `413` before it is
/// read, except an operator's ledger batch (8 MiB); and no refusal names a Rust type.
#[test]
fn bodies_of_the_wrong_shape_type_or_size_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-8300-0001");
    let bob = sign_up(&server, "010-8300-0002");
    credit(&mut c, &alice, 10_000);
    let auth = format!("Bearer {}", alice.token);
    let send = |c: &mut kasa::client::Client, content_type: Option<&str>, body: &[u8]| {
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(t) = content_type {
            headers.push(("Content-Type", t));
        }
        c.request("POST", "/v1/transfers", &headers, body).unwrap()
    };
    let good = json!({"to_user_id": bob.id, "amount": "100"}).to_string();

    assert_problem(&send(&mut c, Some("application/json"), b"[1, 2]"), 400, "malformed_json");
    assert_problem(&send(&mut c, Some("application/json"), format!("[{good}]").as_bytes()), 400, "malformed_json");
    assert_problem(&send(&mut c, Some("application/json"), b"\"to_user_id\""), 400, "malformed_json");
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/octet-stream"),
        Some("application/jsonp"),
    ] {
        let r = send(&mut c, content_type, good.as_bytes());
        assert_problem(&r, 415, "unsupported_media_type");
    }
    for content_type in ["application/json; charset=utf-8", "Application/JSON", "application/vnd.kasa+json"] {
        assert_eq!(send(&mut c, Some(content_type), good.as_bytes()).status, 201, "{content_type}");
    }
    // An empty body with no type: the endpoints without a body take it.
    let r = alice.post(&mut c, "/v1/money-requests", &json!({"from_user_id": bob.id, "amount": "5"}));
    let decline = format!("/v1/money-requests/{}/decline", r.json()["id"].as_str().unwrap());
    assert_eq!(bob.post_empty(&mut c, &decline).json()["status"], "declined");

    // Over 64 KiB: refused from the declared length, before a byte of it is read.
    let declared = format!(
        "POST /v1/transfers HTTP/1.1\r\nHost: kasa\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{",
        (64 << 10) + 1
    );
    assert_problem(&server.client().send_bytes(declared.as_bytes()).unwrap(), 413, "body_too_large");
    let memo = "가".repeat(30_000);
    let big = json!({"to_user_id": bob.id, "amount": "100", "memo": memo}).to_string();
    assert!(big.len() > 64 << 10);
    // (The server closes a connection whose body it did not read.)
    assert_problem(&send(&mut server.client(), Some("application/json"), big.as_bytes()), 413, "body_too_large");
    // An operator's ledger batch may be larger.
    let accounts: Vec<_> = (1..=2000u128).map(|id| account(id, 1, &["history"])).collect();
    let batch = json!(accounts).to_string();
    assert!(batch.len() > 64 << 10);
    let r = post(&mut c, "/v1/ledger/accounts", &json!(accounts));
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 2000);

    // The refusals speak JSON, not Rust.
    for body in [
        json!({"to_user_id": 5, "amount": "1"}),
        json!({"to_user_id": bob.id, "amount": {"x": 1}}),
        json!({"to_user_id": bob.id, "amount": [1]}),
        json!({"to_user_id": bob.id, "amount": true}),
        json!({"to_user_id": bob.id, "amount": "1", "memo": 7}),
        json!({"to_user_id": bob.id, "amount": "1", "pin": ["1"]}),
        json!({"to_user_id": bob.id, "amount": "1", "colour": "red"}),
        json!({"to_user_id": bob.id}),
    ] {
        let r = send(&mut c, Some("application/json"), body.to_string().as_bytes());
        assert_problem(&r, 422, "invalid_field");
        let detail = r.json()["detail"].as_str().unwrap().to_string();
        for rust in ["struct", "u64", "u128", "Input", "Dec128", "Dec64", "Option", "String", "usize", "Vec<", "enum"] {
            assert!(!detail.contains(rust), "'{rust}' in {detail}");
        }
    }
    // One send of 100 with each accepted content type went through, and nothing else.
    assert_eq!(bob.balance(&mut c).0, 300);
    stop_and_verify(server);
}

/// Regression (phone parsing that was not a fixed point): a number like `00012345678` was
/// accepted at sign-up although its stored form does not parse back to itself, so the
/// snapshot written at a clean stop could not be read and the server did not start again.
/// Now such numbers are refused `invalid_phone` everywhere a phone enters, every accepted
/// form is stored as the E.164 number it means, and the server restarts from its journal
/// and from its snapshot.
#[test]
fn phone_numbers_are_a_fixed_point_and_restarts_work() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let alice = sign_up(&server, "010-8400-0001");
    credit(&mut c, &alice, 10_000);
    let mut anon = server.client_from(next_address());
    let bad =
        ["00012345678", "000-1234-5678", "+0012345678", "0", "+", "010-1234-567", "02-123-4567", "+82 02 123 4567"];
    for phone in bad {
        let r = call(&mut anon, "POST", "/v1/phone-verifications", None, Some(&json!({"phone": phone})));
        assert_problem(&r, 422, "invalid_phone");
        let body = json!({"phone": phone, "name": "x", "pin": PIN, "verification_id": "vrf_00000000000000000000000000000000", "code": "123456"});
        assert_problem(&call(&mut anon, "POST", "/v1/users", None, Some(&body)), 422, "invalid_phone");
        let body = json!({"phone": phone, "verification_id": "vrf_00000000000000000000000000000000", "code": "123456", "new_pin": PIN});
        assert_problem(&call(&mut anon, "POST", "/v1/pin-resets", None, Some(&body)), 422, "invalid_phone");
        assert_problem(&log_in(&server, phone, PIN), 422, "invalid_phone");
        assert_problem(
            &alice.post(&mut c, "/v1/transfers", &json!({"to_phone": phone, "amount": "1"})),
            422,
            "invalid_phone",
        );
    }
    // Odd ways of writing real numbers: each stored as its E.164 form, which money sent to
    // the number written yet another way reaches.
    let mut ids = Vec::new();
    for (written, stored) in [
        ("+82 010-8400-0002", "+821084000002"),
        ("+82-10-8400-0003", "+821084000003"),
        ("(010) 8400 0004", "+821084000004"),
        ("010.8400.0005", "+821084000005"),
        ("011-234-5678", "+82112345678"),
        ("+1 (415) 555-2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
    ] {
        let user = sign_up_only(&server, written, "Odd");
        assert_eq!(user["phone"], stored, "{written}");
        let sent =
            alice.post(&mut c, "/v1/transfers", &json!({"to_phone": stored.replace("+82", "+82 0"), "amount": "1"}));
        assert_eq!((sent.status, &sent.json()["to_user_id"]), (201, &user["id"]), "{}", sent.json());
        ids.push((stored, user["id"].as_str().unwrap().to_string()));
    }
    let before = alice.balance(&mut c);
    assert_eq!(before, (10_000 - 7, 10_000 - 7));
    assert_eq!(server.terminate().code(), Some(0));

    // From the snapshot of the clean stop, then from the journal after a kill -9: the same
    // users under the same numbers.
    for restart in 0..2 {
        let server = Server::start(dir.path());
        let mut c = server.client();
        assert_eq!(alice.balance(&mut c), before);
        for (stored, id) in &ids {
            assert_eq!(&session(&server, stored, PIN).id, id, "{stored} after restart {restart}");
        }
        if restart == 0 {
            server.kill9();
        } else {
            stop_and_verify(server);
        }
    }
}
