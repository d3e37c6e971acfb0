//! Starts the real `kasa` binary on a temporary data directory and talks HTTP to it.

#![allow(dead_code)]

use kasa::client::{wait_for_listening, Client, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

pub const KEY: &str = "e2e-operator-key-0123456789";

/// A running `kasa serve`; killed with SIGKILL if dropped without `terminate`.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data: PathBuf,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kasa"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("KASA_OPERATOR_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start kasa serve");
        let addr = wait_for_listening(child.stdout.take().unwrap()).expect("kasa serve listens");
        Server { child: Some(child), addr, data: data.to_path_buf() }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr, KEY).expect("connect")
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

/// Runs `kasa verify` on a data directory: (success, stdout + stderr).
pub fn verify(data: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kasa")).args(["verify", "--data"]).arg(data).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

pub fn post(client: &mut Client, path: &str, body: &Value) -> Response {
    client.send("POST", path, "application/json", body.to_string().as_bytes()).unwrap()
}

pub fn get(client: &mut Client, path: &str) -> Response {
    client.send("GET", path, "application/json", b"").unwrap()
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

/// Asserts the response is a problem+json with this status and code.
#[track_caller]
pub fn assert_problem(r: &Response, status: u16, code: &str) {
    let body = r.json();
    assert_eq!(r.status, status, "body: {body}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"), "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < at_least {
        assert!(
            std::time::Instant::now() < deadline,
            "the load got {} of {at_least} operations acknowledged in 120 s",
            acknowledged.lock().unwrap().len()
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    server.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    acknowledged
}
