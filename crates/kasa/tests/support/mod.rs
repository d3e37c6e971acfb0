//! Starts the real `kasa` binary on a temporary data directory and talks HTTP to it, as the
//! API's clients do: users sign up through a phone verification whose code an operator reads
//! from the sandbox SMS gateway, log in, and get money by an operator's adjustment or a
//! top-up through the sandbox bank.
//!
//! Rate limits are per client address, and every test talks from loopback: helpers that
//! stand for many different people (sign-ups, logins) connect from addresses of their own in
//! 127.0.0.0/8 ([`next_address`]), so that only the tests of rate limits meet them.

#![allow(dead_code)]

pub mod postgres;
pub mod receiver;
pub mod webdriver;

use kasa::client::{wait_for_listening, Client, Response};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const KEY: &str = "e2e-operator-key-0123456789";
/// The PIN of the users the helpers sign up: six digits, not a weak one.
pub const PIN: &str = "481627";
/// The PIN of `kasa serve --demo`'s users.
pub const DEMO_PIN: &str = "135790";
/// How long a helper waits for something the server does in the background (the bank rail).
pub const BACKGROUND_WAIT: Duration = Duration::from_secs(20);

/// A running `kasa serve`; killed with SIGKILL if dropped without `terminate`.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data: PathBuf,
    /// The operator key: [`KEY`], or the one the server generated into `operator.key`.
    pub key: String,
}

/// How to start a server besides its arguments.
#[derive(Default)]
pub struct Launch<'a> {
    /// Append every log line (`info` and up) to this file.
    pub log: Option<&'a Path>,
    /// Give no `KASA_OPERATOR_KEY`: the server generates `operator.key` (or reads it).
    pub generated_key: bool,
    /// More environment variables for the server.
    pub env: &'a [(&'a str, &'a str)],
}

impl Server {
    /// A server on `data` with the sandbox bank answering at once.
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    /// A server on `data` with extra `kasa serve` arguments. Unless they say otherwise, the
    /// sandbox bank answers at once (its default 200 ms would only slow the tests down).
    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        Server::launch(data, extra, Launch::default())
    }

    /// Starts a server as `launch` says.
    pub fn launch(data: &Path, extra: &[&str], launch: Launch) -> Server {
        raise_open_file_limit();
        let mut command = Command::new(env!("CARGO_BIN_EXE_kasa"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(data).args(extra);
        if !extra.contains(&"--sandbox-bank-latency-ms") {
            command.args(["--sandbox-bank-latency-ms", "0"]);
        }
        if launch.generated_key {
            command.env_remove("KASA_OPERATOR_KEY");
        } else {
            command.env("KASA_OPERATOR_KEY", KEY);
        }
        command.envs(launch.env.iter().copied());
        command.stdout(Stdio::piped());
        match launch.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("open the log");
                command.env("RUST_LOG", "info").stderr(file);
            }
            None => {
                command.env("RUST_LOG", "warn");
            }
        }
        let mut child = command.spawn().expect("start kasa serve");
        let addr = wait_for_listening(child.stdout.take().unwrap()).expect("kasa serve listens");
        let key = if launch.generated_key {
            std::fs::read_to_string(data.join("operator.key")).expect("the generated operator key").trim().to_string()
        } else {
            KEY.to_string()
        };
        Server { child: Some(child), addr, data: data.to_path_buf(), key }
    }

    /// A connection that sends the operator key with [`post`] and [`get`].
    pub fn client(&self) -> Client {
        let c = Client::connect(self.addr, &self.key).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        c
    }

    /// A connection from another client address (see [`next_address`]).
    pub fn client_from(&self, from: IpAddr) -> Client {
        let c = Client::connect_from(self.addr, from, &self.key).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        c
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `kill -9`: no chance to flush or snapshot.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback address no other helper call of this test process used: 127.0.1.1, 127.0.1.2...
pub fn next_address() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    IpAddr::V4(Ipv4Addr::new(127, 0, 1 + (n / 250) as u8, 1 + (n % 250) as u8))
}

/// Runs `kasa verify` on a data directory: (success, stdout + stderr).
pub fn verify(data: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kasa")).args(["verify", "--data"]).arg(data).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Stops the server cleanly (exit 0) and checks the data directory with `kasa verify`.
#[track_caller]
pub fn stop_and_verify(server: Server) -> String {
    let data = server.data.clone();
    assert_eq!(server.terminate().code(), Some(0), "SIGTERM exits 0");
    let (ok, report) = verify(&data);
    assert!(ok, "kasa verify failed:\n{report}");
    report
}

/// An operator's POST (the operator key rides on every request of [`Server::client`]).
pub fn post(client: &mut Client, path: &str, body: &Value) -> Response {
    client.send("POST", path, "application/json", body.to_string().as_bytes()).unwrap()
}

/// An operator's GET.
pub fn get(client: &mut Client, path: &str) -> Response {
    client.send("GET", path, "application/json", b"").unwrap()
}

/// A request with a session token (or no credentials), and a JSON body if any.
pub fn call(c: &mut Client, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Response {
    call_with(c, method, path, token, None, body)
}

/// A request with an `Idempotency-Key`.
pub fn keyed(c: &mut Client, method: &str, path: &str, token: Option<&str>, key: &str, body: &Value) -> Response {
    call_with(c, method, path, token, Some(key), Some(body))
}

fn call_with(
    c: &mut Client,
    method: &str,
    path: &str,
    token: Option<&str>,
    key: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer));
    }
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    c.request(method, path, &headers, body.as_bytes()).expect("the server answers")
}

/// A logged-in wallet user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub phone: String,
    pub token: String,
}

impl User {
    pub fn get(&self, c: &mut Client, path: &str) -> Response {
        call(c, "GET", path, Some(&self.token), None)
    }

    pub fn post(&self, c: &mut Client, path: &str, body: &Value) -> Response {
        call(c, "POST", path, Some(&self.token), Some(body))
    }

    /// A POST without a body.
    pub fn post_empty(&self, c: &mut Client, path: &str) -> Response {
        call(c, "POST", path, Some(&self.token), None)
    }

    pub fn keyed(&self, c: &mut Client, path: &str, key: &str, body: &Value) -> Response {
        keyed(c, "POST", path, Some(&self.token), key, body)
    }

    /// `GET /v1/me/wallet`.
    pub fn wallet(&self, c: &mut Client) -> Value {
        let r = self.get(c, "/v1/me/wallet");
        assert_eq!(r.status, 200, "{}", r.json());
        r.json()
    }

    /// The wallet's (balance, available balance) in won.
    pub fn balance(&self, c: &mut Client) -> (u64, u64) {
        let w = self.wallet(c);
        (number(&w["balance"]), number(&w["available_balance"]))
    }
}

/// A decimal string of an amount as a number.
#[track_caller]
pub fn number(v: &Value) -> u64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("expected a decimal string, found {v}"))
}

/// Percent-encodes a query value.
pub fn query_value(raw: &str) -> String {
    raw.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Starts a phone verification (from a fresh client address) and reads its code from the
/// sandbox SMS gateway: (verification id, code).
pub fn verification(server: &Server, phone: &str) -> (String, String) {
    let mut c = server.client_from(next_address());
    let r = call(&mut c, "POST", "/v1/phone-verifications", None, Some(&json!({"phone": phone})));
    assert_eq!(r.status, 201, "verification of {phone}: {}", r.json());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("vrf_"), "{id}");
    (id, sms_code(server, phone))
}

/// The newest code the sandbox SMS gateway sent to `phone`.
pub fn sms_code(server: &Server, phone: &str) -> String {
    let r = get(&mut server.client(), &format!("/v1/admin/sandbox/sms?phone={}", query_value(phone)));
    assert_eq!(r.status, 200, "{}", r.json());
    let code = r.json()["data"][0]["code"].as_str().expect("a message was sent").to_string();
    assert_eq!(code.len(), 6);
    code
}

/// Signs `phone` up with [`PIN`] through a verification; the new user as the API shows it.
pub fn sign_up_only(server: &Server, phone: &str, name: &str) -> Value {
    let (verification_id, code) = verification(server, phone);
    let body = json!({"phone": phone, "name": name, "pin": PIN, "verification_id": verification_id, "code": code});
    let r = call(&mut server.client_from(next_address()), "POST", "/v1/users", None, Some(&body));
    assert_eq!(r.status, 201, "sign-up of {phone}: {}", r.json());
    r.json()
}

/// Logs in from a fresh client address.
pub fn log_in(server: &Server, phone: &str, pin: &str) -> Response {
    let mut c = server.client_from(next_address());
    call(&mut c, "POST", "/v1/sessions", None, Some(&json!({"phone": phone, "pin": pin})))
}

/// Logs in and returns the user.
#[track_caller]
pub fn session(server: &Server, phone: &str, pin: &str) -> User {
    let r = log_in(server, phone, pin);
    assert_eq!(r.status, 201, "login of {phone}: {}", r.json());
    let v = r.json();
    User {
        id: v["user_id"].as_str().unwrap().to_string(),
        phone: phone.to_string(),
        token: v["token"].as_str().unwrap().to_string(),
    }
}

/// Signs `phone` up with [`PIN`] and logs in.
pub fn sign_up(server: &Server, phone: &str) -> User {
    let user = sign_up_only(server, phone, "Test");
    let logged_in = session(server, phone, PIN);
    assert_eq!(logged_in.id, user["id"].as_str().unwrap());
    logged_in
}

/// An operator's adjustment: credits `amount` won to the user's wallet, synchronously.
#[track_caller]
pub fn credit(c: &mut Client, user: &User, amount: u64) -> Value {
    let body = json!({"amount": amount.to_string(), "currency": "KRW", "direction": "credit", "reason": "test funds"});
    let r = post(c, &format!("/v1/admin/users/{}/adjustments", user.id), &body);
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()
}

/// Links a bank account (Shinhan, `number`) for the user; its id.
#[track_caller]
pub fn link_bank(c: &mut Client, user: &User, number: &str) -> String {
    let body = json!({"bank_code": "088", "account_number": number, "holder_name": "Test"});
    let r = user.post(c, "/v1/me/bank-accounts", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()["id"].as_str().unwrap().to_string()
}

/// Waits (bounded) until the bank rail settled the funding at `path`; the funding then.
#[track_caller]
pub fn settled(c: &mut Client, user: &User, path: &str) -> Value {
    let deadline = Instant::now() + BACKGROUND_WAIT;
    loop {
        let r = user.get(c, path);
        assert_eq!(r.status, 200, "{path}: {}", r.json());
        if r.json()["status"] != "pending" {
            return r.json();
        }
        assert!(Instant::now() < deadline, "{path} stayed pending for {BACKGROUND_WAIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts a top-up or withdrawal (`kind`: "top-ups" or "withdrawals") and waits until the
/// bank settled it; the funding then.
#[track_caller]
pub fn funding(c: &mut Client, user: &User, kind: &str, bank: &str, amount: u64, pin: Option<&str>) -> Value {
    let mut body = json!({"bank_account_id": bank, "amount": amount.to_string(), "currency": "KRW"});
    if let Some(pin) = pin {
        body["pin"] = json!(pin);
    }
    let r = user.post(c, &format!("/v1/me/{kind}"), &body);
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["status"], "pending");
    settled(c, user, &format!("/v1/me/{kind}/{}", r.json()["id"].as_str().unwrap()))
}

/// Moves a `--test-clock` server's engine time forward.
#[track_caller]
pub fn advance(c: &mut Client, seconds: u64) {
    let r = post(c, "/v1/admin/test-clock/advance", &json!({"seconds": seconds}));
    assert_eq!(r.status, 200, "{}", r.json());
}

/// Asserts the response is a problem+json with this status and code, whose `type` points
/// at the code's anchor on `/docs/problems`.
#[track_caller]
pub fn assert_problem(r: &Response, status: u16, code: &str) {
    let body = r.json();
    assert_eq!(r.status, status, "body: {body}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["type"], format!("/docs/problems#{code}"), "body: {body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "body: {body}");
}

pub fn account(id: u128, ledger: u32, flags: &[&str]) -> Value {
    json!({"id": id.to_string(), "ledger": ledger, "code": 1, "flags": flags})
}

pub fn transfer(id: u128, debit: u128, credit: u128, amount: u128) -> Value {
    json!({
        "id": id.to_string(),
        "debit_account_id": debit.to_string(),
        "credit_account_id": credit.to_string(),
        "amount": amount.to_string(),
        "ledger": 1,
        "code": 1,
    })
}

/// Waits until load `workers` have `at_least` acknowledged operations, kills the server with
/// SIGKILL mid-load, stops and joins the workers, and returns what was acknowledged.
pub fn kill_9_under_load<T: Clone>(
    server: Server,
    acknowledged: &std::sync::Mutex<Vec<T>>,
    at_least: usize,
    stop: &std::sync::atomic::AtomicBool,
    workers: Vec<std::thread::JoinHandle<()>>,
) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < at_least {
        assert!(
            Instant::now() < deadline,
            "the load got {} of {at_least} operations acknowledged in 120 s",
            acknowledged.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    acknowledged
}

/// A small deterministic generator (xorshift64*), seeded per run and printed, so that a
/// failing run can be repeated with `KASA_TEST_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn from_env_or_time() -> Rng {
        let seed = std::env::var("KASA_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("seed {seed} (KASA_TEST_SEED={seed} repeats this run)");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The outbox's events (`GET /v1/admin/events`), once `ready` holds for them: events are
/// derived from committed batches just after their answers go out, so a read right after an
/// answer may not see its events yet (bounded wait).
#[track_caller]
pub fn events_when(c: &mut Client, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + BACKGROUND_WAIT;
    loop {
        let r = get(c, "/v1/admin/events?limit=1000");
        assert_eq!(r.status, 200, "{}", r.json());
        let events = r.json()["data"].as_array().unwrap().clone();
        if ready(&events) {
            return events;
        }
        assert!(Instant::now() < deadline, "the events never got there: {events:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Raises this process's open-file limit to its hard limit, once (servers started from here
/// inherit it): the flood tests hold hundreds of connections at a time, which a machine with
/// the common default of 1,024 would refuse.
fn raise_open_file_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        if let Some(hard) = limit.maximum {
            if limit.current.is_some_and(|current| current < hard) {
                let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) });
            }
        }
    });
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The files under `dir` that contain `needle` (a secret that must never be on disk).
pub fn containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files(dir).into_iter().filter(|f| std::fs::read(f).unwrap().windows(needle.len()).any(|w| w == needle)).collect()
}

/// An operator onboards a merchant (fee 2.5 %) with registration number `brn`; its id.
#[track_caller]
pub fn onboard(c: &mut Client, brn: &str) -> String {
    let body = json!({
        "business_name": "주식회사 카사상점", "display_name": "카사상점", "brn": brn, "mcc": "5812", "fee_bps": 250,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110123456789", "holder_name": "카사상점"}
    });
    let r = post(c, "/v1/admin/merchants", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()["id"].as_str().unwrap().to_string()
}

/// An operator issues `merchant` an API key with `scopes`; the key.
#[track_caller]
pub fn api_key(c: &mut Client, merchant: &str, scopes: &[&str]) -> String {
    let r = post(c, &format!("/v1/admin/merchants/{merchant}/api-keys"), &json!({"name": "server", "scopes": scopes}));
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()["key"].as_str().unwrap().to_string()
}

/// Every payment of the merchant of API key `key`, newest first, read page by page.
pub fn all_payments(c: &mut Client, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cur) => format!("/v1/payments?limit=100&cursor={cur}"),
            None => "/v1/payments?limit=100".to_string(),
        };
        let page = call(c, "GET", &path, Some(key), None).json();
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return all,
        }
    }
}

/// An operator registers partner `name` (settling in CNY, no endpoint); its id.
#[track_caller]
pub fn register_partner(c: &mut Client, name: &str) -> String {
    let body = json!({
        "name": name, "home_currency": "CNY", "settlement_currency": "CNY", "fee_bps": 0,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110987654321", "holder_name": "Partner"}
    });
    let r = post(c, "/v1/admin/partners", &body);
    assert_eq!(r.status, 201, "{}", r.json());
    r.json()["id"].as_str().unwrap().to_string()
}

/// The headers of a partner's answer `body` to Kasa's call to `path`, signed with `signer` as
/// key `version`, as Alipay+ signs answers: `Client-Id`, `Response-Time` and `Signature` over
/// `POST <path>\n<Client-Id>.<Response-Time>.<body>`.
pub fn partner_answer_headers(
    (signer, version): (&kasa_server::partner_signature::Signer, u32),
    path: &str,
    client_id: &str,
    time: &str,
    body: &str,
) -> Vec<(String, String)> {
    let message = kasa_server::partner_signature::message("POST", path, client_id, time, body.as_bytes());
    vec![
        ("Client-Id".into(), client_id.into()),
        ("Response-Time".into(), time.into()),
        ("Signature".into(), signer.header(version, &message)),
    ]
}
