//! Durability end to end against the real binary: `kill -9` under load loses no acknowledged
//! transfer, SIGTERM drains and exits 0, restarts keep the state, and `kasa verify` passes on
//! good data and names the damage on bad data.

mod support;

use kasa_core::Transfer;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::*;

const ACCOUNTS: u128 = 20;

fn create_accounts(server: &Server) {
    let mut c = server.client();
    let accounts: Vec<_> = (1..=ACCOUNTS).map(|id| account(id, 1, &[])).collect();
    let r = post(&mut c, "/v1/ledger/accounts", &json!(accounts));
    assert_eq!(r.status, 200);
}

/// Sends binary batches of transfers from several connections until `stop`; records the ids
/// of every transfer whose batch was acknowledged with `ok`.
fn load(
    server: &Server,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<u128>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..4u128)
        .map(|worker| {
            let mut client = server.client();
            let stop = stop.clone();
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                let mut next = worker << 64;
                while !stop.load(Ordering::Relaxed) {
                    let mut body = Vec::new();
                    let ids: Vec<u128> = (0..50).map(|i| next + i + 1).collect();
                    next += 50;
                    for (i, &id) in ids.iter().enumerate() {
                        let debit = 1 + (id + i as u128) % ACCOUNTS;
                        let credit = 1 + (debit % ACCOUNTS);
                        Transfer {
                            id,
                            debit_account_id: debit,
                            credit_account_id: credit,
                            amount: 1 + id % 7,
                            ledger: 1,
                            code: 1,
                            ..Default::default()
                        }
                        .encode(&mut body);
                    }
                    // After the kill the connection fails: that batch was not acknowledged.
                    let Ok(r) = client.send("POST", "/v1/ledger/transfers", "application/octet-stream", &body) else {
                        return;
                    };
                    if r.status != 200 {
                        return;
                    }
                    let all_ok = r.body.chunks_exact(32).all(|res| res[..4] == [0, 0, 0, 0]);
                    assert!(all_ok, "a transfer of a fresh batch failed");
                    acknowledged.lock().unwrap().extend(ids);
                }
            })
        })
        .collect()
}

type Load = (Server, Arc<AtomicBool>, Arc<Mutex<Vec<u128>>>, Vec<std::thread::JoinHandle<()>>);

/// A server on `data` with accounts, and the load of [`load`] running against it.
fn start_under_load(data: &std::path::Path) -> Load {
    let server = Server::start(data);
    create_accounts(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let workers = load(&server, stop.clone(), acknowledged.clone());
    (server, stop, acknowledged, workers)
}

/// Looks every acknowledged transfer up, in batches; none may be missing.
fn assert_all_present(c: &mut kasa::client::Client, acknowledged: &[u128], after: &str) {
    for chunk in acknowledged.chunks(8000) {
        let ids: Vec<String> = chunk.iter().map(|id| id.to_string()).collect();
        let r = post(c, "/v1/ledger/transfers/lookup", &json!({ "ids": ids }));
        assert_eq!(r.status, 200);
        let missing = r.json()["not_found"].as_array().unwrap().len();
        assert_eq!(missing, 0, "acknowledged transfers lost after {after}: {}", r.json()["not_found"]);
    }
}

#[test]
fn kill_9_under_load_loses_no_acknowledged_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let (server, stop, acknowledged, workers) = start_under_load(dir.path());
    // Let the load run until a good number of batches were acknowledged, then kill -9.
    let acknowledged = kill_9_under_load(server, &acknowledged, 20_000, &stop, workers);

    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_all_present(&mut c, &acknowledged, "kill -9");
    // The server works after recovery, and a clean stop exits 0.
    let r = post(&mut c, "/v1/ledger/transfers", &transfer((100 << 64) | 1, 1, 2, 1));
    assert_eq!(r.status, 201);
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "kasa verify failed after kill -9 and restart:\n{report}");
    assert!(report.contains("invariants: every ledger balances"), "{report}");
}

#[test]
fn restart_keeps_state_and_verify_names_a_flipped_bit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    create_accounts(&server);
    let mut c = server.client();
    for id in 100..110u128 {
        assert_eq!(post(&mut c, "/v1/ledger/transfers", &transfer(id, 1, 2, 5)).status, 201);
    }
    let before = get(&mut c, "/v1/ledger/accounts/2").json();
    assert_eq!(server.terminate().code(), Some(0));

    // A clean restart (from the snapshot written at shutdown) sees the same balances.
    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_eq!(get(&mut c, "/v1/ledger/accounts/2").json(), before);
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");

    // Flip one bit in the payload of the second frame: verify and the server both refuse,
    // naming the segment, the offset and the frame.
    let journal = dir.path().join("journal");
    let segment = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let first_len = 72 + u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    bytes[first_len + 72 + 3] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let (ok, report) = verify(dir.path());
    assert!(!ok, "verify passed a corrupt journal:\n{report}");
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(
        report.contains(name) && report.contains(&format!("offset {first_len}")) && report.contains("frame 2"),
        "{report}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("KASA_OPERATOR_KEY", KEY)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server started on a corrupt journal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(name) && stderr.contains("frame 2"), "{stderr}");
}

/// A snapshot whose checksums are valid but whose state is not what the journal replays to
/// (a bug in snapshotting, or tampering with a recomputed checksum) is caught by `kasa verify`.
#[test]
fn verify_compares_each_snapshot_with_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    create_accounts(&server);
    let mut c = server.client();
    assert_eq!(post(&mut c, "/v1/ledger/transfers", &transfer(100, 1, 2, 5)).status, 201);
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok && report.contains("each equal to the replay"), "{report}");

    // Rewrite the newest snapshot with the state of an empty ledger, through the journal's
    // own writer so that every checksum and the chain anchor are valid.
    let storage = kasa_journal::FileStorage::open(&dir.path().join("journal")).unwrap();
    let (mut journal, _) = kasa_journal::Journal::open(storage, kasa_journal::Options::default()).unwrap();
    let seq = journal.last_seq();
    let wrong = kasa_core::State::default().encode_snapshot();
    journal.write_snapshot(seq, journal.last_timestamp(), &wrong).unwrap();
    drop(journal);
    let (ok, report) = verify(dir.path());
    assert!(!ok, "verify accepted a snapshot that differs from the replay:\n{report}");
    assert!(report.contains("differs from the replay"), "{report}");
}

/// Regression: SIGTERM sent the moment the server announced its port arrived before the
/// handler was installed and killed the process instead of stopping it cleanly.
#[test]
fn sigterm_right_after_listening_stops_cleanly() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path());
        assert_eq!(server.terminate().code(), Some(0));
    }
}

/// SIGTERM under load: the server lets what is in flight finish, never acknowledges what is
/// not durable, writes a snapshot and exits 0; after a restart every acknowledged transfer
/// is there and `kasa verify` passes.
#[test]
fn sigterm_under_load_drains_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (server, stop, acknowledged, workers) = start_under_load(dir.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < 10_000 {
        assert!(std::time::Instant::now() < deadline, "the load did not get going");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let status = server.terminate();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(status.code(), Some(0), "SIGTERM under load exits 0");
    let acknowledged = acknowledged.lock().unwrap().clone();
    let server = Server::start(dir.path());
    let mut c = server.client();
    assert_all_present(&mut c, &acknowledged, "SIGTERM");
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "{report}");
    assert!(!report.contains("snapshots: 0 valid"), "the drain wrote a snapshot: {report}");
}
