//! Durability end to end against the real binary: `kill -9` under load loses no acknowledged
//! transfer, SIGTERM drains and exits 0, restarts keep the state, and `kasa verify` passes on
//! good data and names the damage on bad data; keyed requests killed at random moments take
//! effect exactly once, and the bank rail killed between a reservation and the bank's answer
//! settles by what the bank decided.

mod support;

use kasa_core::Transfer;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    // A lookup body is at most 64 KiB: 2,000 ids of 20 digits fit.
    for chunk in acknowledged.chunks(2000) {
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

/// One keyed request, and the answer it got (none if the server died first).
#[derive(Clone, Debug)]
struct Op {
    /// The index of the user who sends it.
    user: usize,
    path: &'static str,
    key: String,
    body: Value,
    amount: u64,
    answer: Option<(u16, Vec<u8>)>,
}

const SENDERS: usize = 4;
const FUNDED: u64 = 100_000;
const ROUNDS: usize = 4;

/// Keyed sends (4 senders to one recipient) and keyed top-ups (a fifth user), with `kill -9`
/// after a random number of answers in each of 4 rounds. After every restart, each request
/// that was in flight is retried with its key: it either replays (the first try took effect)
/// or runs now; and a sample of the answered ones is retried too: each replays its first
/// answer byte for byte with `Idempotent-Replayed: true`. No answer is ever 409 or
/// `idempotency_key_reused`. In the end every wallet holds exactly what the answers say
/// moved, and each sender's history has one entry per successful key.
#[test]
fn keyed_requests_take_effect_once_across_kill_9_at_random_moments() {
    let mut rng = Rng::from_env_or_time();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let senders: Vec<User> = (0..SENDERS).map(|i| sign_up(&server, &format!("010-9600-000{i}"))).collect();
    let recipient = sign_up(&server, "010-9600-0009");
    let topper = sign_up(&server, "010-9600-0008");
    for s in &senders {
        credit(&mut c, s, FUNDED);
    }
    let bank = link_bank(&mut c, &topper, "9600960008");
    let mut users = senders.clone();
    users.push(topper.clone());
    let users = Arc::new(users);
    let ops: Arc<Mutex<Vec<Op>>> = Arc::new(Mutex::new(Vec::new()));
    let mut server = Some(server);

    let retry = |c: &mut kasa::client::Client, op: &Op| users[op.user].keyed(c, op.path, &op.key, &op.body);
    for round in 0..ROUNDS {
        let server_now = server.take().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let answered_before = ops.lock().unwrap().iter().filter(|o| o.answer.is_some()).count();
        let workers: Vec<_> = (0..=SENDERS)
            .map(|worker| {
                let (ops, stop, users, bank, to) =
                    (ops.clone(), stop.clone(), users.clone(), bank.clone(), recipient.id.clone());
                let mut client = server_now.client();
                std::thread::spawn(move || {
                    for n in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let key = format!("r{round}-w{worker}-{n}");
                        let op = if worker < SENDERS {
                            let amount = 1 + (n * 7 + worker as u64 * 13) % 200;
                            let body = json!({"to_user_id": to, "amount": amount.to_string(), "memo": key});
                            Op { user: worker, path: "/v1/transfers", key, body, amount, answer: None }
                        } else {
                            // No amount the sandbox declines (…13) or never takes (…99).
                            let mut amount = 1_000 + (n * 37) % 900;
                            if amount % 100 == 13 || amount % 100 == 99 {
                                amount += 1;
                            }
                            let body = json!({"bank_account_id": bank, "amount": amount.to_string()});
                            Op { user: worker, path: "/v1/me/top-ups", key, body, amount, answer: None }
                        };
                        let index = {
                            let mut ops = ops.lock().unwrap();
                            ops.push(op.clone());
                            ops.len() - 1
                        };
                        // After the kill the connection fails: the request stays unanswered.
                        let auth = format!("Bearer {}", users[op.user].token);
                        let headers = [
                            ("Authorization", auth.as_str()),
                            ("Content-Type", "application/json"),
                            ("Idempotency-Key", op.key.as_str()),
                        ];
                        let Ok(r) = client.request("POST", op.path, &headers, op.body.to_string().as_bytes()) else {
                            return;
                        };
                        assert_eq!(r.status, 201, "{}: {}", op.key, r.json());
                        ops.lock().unwrap()[index].answer = Some((r.status, r.body));
                    }
                })
            })
            .collect();
        let target = answered_before + 20 + rng.below(150) as usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        while ops.lock().unwrap().iter().filter(|o| o.answer.is_some()).count() < target {
            assert!(Instant::now() < deadline, "the load stalled in round {round}");
            std::thread::sleep(Duration::from_millis(1));
        }
        server_now.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }

        let restarted = Server::start(dir.path());
        let mut c = restarted.client();
        let mut ops = ops.lock().unwrap();
        let (mut replayed, mut first_runs) = (0, 0);
        for op in ops.iter_mut() {
            match &op.answer {
                None => {
                    let r = retry(&mut c, op);
                    assert_eq!(r.status, 201, "retry of {} in flight at the kill: {}", op.key, r.json());
                    match r.header("idempotent-replayed") {
                        Some("true") => replayed += 1,
                        None => first_runs += 1,
                        other => panic!("Idempotent-Replayed: {other:?}"),
                    }
                    op.answer = Some((r.status, r.body));
                }
                Some((status, body)) if rng.below(8) == 0 => {
                    let r = retry(&mut c, op);
                    assert_eq!(
                        (r.status, r.header("idempotent-replayed")),
                        (*status, Some("true")),
                        "{}: {}",
                        op.key,
                        r.json()
                    );
                    assert_eq!(&r.body, body, "{}: the replay differs from the first answer", op.key);
                }
                Some(_) => {}
            }
        }
        eprintln!(
            "round {round}: {} keys so far; in flight at the kill: {replayed} had run, {first_runs} ran now",
            ops.len()
        );
        server = Some(restarted);
    }

    let server = server.unwrap();
    let mut c = server.client();
    let ops = ops.lock().unwrap().clone();
    let mut expected = [FUNDED; SENDERS];
    let mut received = 0;
    let mut topped_up = 0;
    let mut sends_of = [0usize; SENDERS];
    for op in &ops {
        let (status, body) = op.answer.as_ref().unwrap();
        assert_eq!(*status, 201);
        let v: Value = serde_json::from_slice(body).unwrap();
        if op.user < SENDERS {
            assert_eq!(
                (v["amount"].as_str(), v["memo"].as_str()),
                (Some(op.amount.to_string().as_str()), Some(op.key.as_str()))
            );
            expected[op.user] -= op.amount;
            received += op.amount;
            sends_of[op.user] += 1;
        } else {
            let f = settled(&mut c, &topper, &format!("/v1/me/top-ups/{}", v["id"].as_str().unwrap()));
            assert_eq!(
                (f["status"].as_str(), f["amount"].as_str()),
                (Some("succeeded"), Some(op.amount.to_string().as_str()))
            );
            topped_up += op.amount;
        }
    }
    for (i, sender) in senders.iter().enumerate() {
        assert_eq!(sender.balance(&mut c), (expected[i], expected[i]), "sender {i}");
        // One history entry per key that moved money.
        let mut sent = 0;
        let mut path = "/v1/me/transactions?limit=100".to_string();
        loop {
            let page = sender.get(&mut c, &path).json();
            sent += page["data"].as_array().unwrap().iter().filter(|e| e["type"] == "sent").count();
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/me/transactions?limit=100&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(sent, sends_of[i], "sender {i}'s sends");
    }
    assert_eq!(recipient.balance(&mut c).0, received);
    assert_eq!(topper.balance(&mut c).0, topped_up);
    eprintln!("{} keys, {received} won sent, {topped_up} won topped up", ops.len());
    stop_and_verify(server);
}

/// The sandbox bank's decisions, from its log: (reference, decision) in order.
fn bank_log(data: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(data.join("sandbox-bank.log"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(r, d)| (r.to_string(), d.to_string())))
        .collect()
}

/// `kill -9` between the reservation and the bank's answer (the sandbox bank decides at
/// once, records its decision, and answers 3 s later): after the restart the bank rail
/// inquires by reference and settles by the answer. Approved top-ups land, approved
/// withdrawals stay paid, declined ones are declined (the money back), and those the bank
/// never took (amounts ending in 99) expire once 60 s of engine time pass (a test clock
/// moves it). The bank is never asked to move money twice.
///
/// Regression (issue 7's audit: this passed without the inquiry, since the sandbox answered
/// a repeated request with its remembered decision): the sandbox now refuses repeats
/// (declines them), so an approved funding lands only if the rail inquired.
#[test]
fn the_bank_rail_settles_by_the_bank_s_answer_after_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let slow = ["--test-clock", "--sandbox-bank-refuse-repeats", "--sandbox-bank-latency-ms", "3000"];
    let server = Server::start_with(dir.path(), &slow);
    let mut c = server.client();
    let user = sign_up(&server, "010-9700-0001");
    credit(&mut c, &user, 200_000);
    let bank = link_bank(&mut c, &user, "9700970001");
    let start = |c: &mut kasa::client::Client, kind: &str, amount: u64| {
        let r =
            user.post(c, &format!("/v1/me/{kind}"), &json!({"bank_account_id": bank, "amount": amount.to_string()}));
        assert_eq!((r.status, &r.json()["status"]), (201, &json!("pending")), "{}", r.json());
        format!("/v1/me/{kind}/{}", r.json()["id"].as_str().unwrap())
    };
    let approved_top_up = start(&mut c, "top-ups", 10_000);
    let declined_top_up = start(&mut c, "top-ups", 1_013);
    let lost_top_up = start(&mut c, "top-ups", 5_099);
    let approved_withdrawal = start(&mut c, "withdrawals", 20_000);
    let declined_withdrawal = start(&mut c, "withdrawals", 3_013);
    let lost_withdrawal = start(&mut c, "withdrawals", 4_099);
    assert_eq!(user.balance(&mut c), (200_000, 200_000 - 20_000 - 3_013 - 4_099));
    // The bank has decided the four it took, and answers in 3 s; kill before it does.
    let deadline = Instant::now() + Duration::from_secs(2);
    while bank_log(dir.path()).len() < 4 {
        assert!(Instant::now() < deadline, "the bank decided {:?}", bank_log(dir.path()));
        std::thread::sleep(Duration::from_millis(1));
    }
    for path in [&approved_top_up, &declined_top_up, &approved_withdrawal, &declined_withdrawal] {
        assert_eq!(user.get(&mut c, path).json()["status"], "pending", "{path} settled before the kill");
    }
    server.kill9();
    let decided = bank_log(dir.path());
    assert_eq!(decided.len(), 4, "{decided:?}");

    let server = Server::start_with(
        dir.path(),
        &["--test-clock", "--sandbox-bank-refuse-repeats", "--sandbox-bank-latency-ms", "50"],
    );
    let mut c = server.client();
    assert_eq!(settled(&mut c, &user, &approved_top_up)["status"], "succeeded");
    assert_eq!(settled(&mut c, &user, &declined_top_up)["status"], "declined");
    assert_eq!(settled(&mut c, &user, &approved_withdrawal)["status"], "succeeded");
    assert_eq!(settled(&mut c, &user, &declined_withdrawal)["status"], "declined");
    for path in [&lost_top_up, &lost_withdrawal] {
        assert_eq!(user.get(&mut c, path).json()["status"], "pending", "{path}: 60 s have not passed");
    }
    assert_eq!(user.balance(&mut c), (190_000, 190_000 - 4_099));
    advance(&mut c, 61);
    assert_eq!(settled(&mut c, &user, &lost_top_up)["status"], "expired");
    assert_eq!(settled(&mut c, &user, &lost_withdrawal)["status"], "expired");
    assert_eq!(user.balance(&mut c), (190_000, 190_000));
    assert_eq!(bank_log(dir.path()), decided, "the bank was asked to move money once per funding");
    let history = user.get(&mut c, "/v1/me/transactions").json();
    let statuses: Vec<(&str, &str)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] != "adjustment")
        .map(|e| (e["type"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses.len(), 6, "{history}");
    assert_eq!(statuses.iter().filter(|s| s.1 == "succeeded").count(), 2, "{statuses:?}");
    stop_and_verify(server);
}

/// `kasa verify` compares the event log with the replay's events: the same events pass (and
/// say so), a log that ends early passes with the missing tail named (the server derives it
/// again), and an event that differs from the replay's fails, naming it.
#[test]
fn verify_compares_the_event_log_with_the_replay() {
    use kasa_core::event::{Event, EventKind};
    use kasa_journal::{RecordLog, RecordLogOptions};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    let merchant = serde_json::json!({
        "business_name": "카사", "display_name": "카사", "brn": "120-81-47521", "mcc": "5812", "fee_bps": 250,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110123456789", "holder_name": "카사"}
    });
    assert_eq!(post(&mut c, "/v1/admin/merchants", &merchant).status, 201);
    assert_eq!(post(&mut c, "/v1/admin/merchants/mch_1/stores", &serde_json::json!({"name": "본점"})).status, 201);
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok && report.contains("event log: 2 events, each the replay's"), "{report}");

    let open = || {
        let storage = kasa_journal::FileStorage::open(&dir.path().join("events")).unwrap();
        RecordLog::open(storage, RecordLogOptions::default()).unwrap().0
    };
    // Event 2 replaced by another, well-formed one.
    let mut log = open();
    log.truncate_after(1).unwrap();
    let forged = Event {
        seq: 2,
        timestamp: 1,
        kind: EventKind::Merchant(kasa_core::merchant::Event::MerchantCreated { merchant_id: 99 }),
    };
    log.append(2, &kasa_core::codec::encode(&forged)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (ok, report) = verify(dir.path());
    assert!(!ok && report.contains("event 2 in the event log"), "{report}");

    // Event 2 missing: what a crash before the log's sync leaves; the server derives it.
    let mut log = open();
    log.truncate_after(1).unwrap();
    log.sync().unwrap();
    drop(log);
    let (ok, report) = verify(dir.path());
    assert!(ok && report.contains("event log: 1 events, each the replay's; the last 1 are not in it yet"), "{report}");
}

/// A gauge of `/metrics`.
fn gauge(c: &mut kasa::client::Client, name: &str) -> u64 {
    let metrics = String::from_utf8(get(c, "/metrics").body).unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// The kasa_cold_transfers gauge of `/metrics`.
fn cold_transfers(c: &mut kasa::client::Client) -> u64 {
    gauge(c, "kasa_cold_transfers")
}

#[test]
fn transfers_in_the_embedded_store_survive_kill_9_and_answer_as_before() {
    // One chunk of 16,384 transfers stays in memory; older ones go to cold.redb.
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--hot-transfers", "16384"];
    let server = Server::start_with(dir.path(), &flags);
    create_accounts(&server);
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let workers = load(&server, stop.clone(), acknowledged.clone());
    let acknowledged = kill_9_under_load(server, &acknowledged, 70_000, &stop, workers);

    let server = Server::start_with(dir.path(), &flags);
    let mut c = server.client();
    // Recovery replays the journal and the oldest chunks go cold again.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cold_transfers(&mut c) < 2 * 16_384 {
        assert!(Instant::now() < deadline, "no chunk went cold after recovery");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dir.path().join("cold.redb").exists());
    assert_all_present(&mut c, &acknowledged, "kill -9 with cold transfers");
    // The oldest transfer, read from the store, and sent again: it exists.
    let oldest = get(&mut c, &format!("/v1/ledger/transfers/{}", acknowledged[0]));
    assert_eq!(oldest.status, 200);
    let stored = oldest.json();
    let again = json!({
        "id": stored["id"], "debit_account_id": stored["debit_account_id"],
        "credit_account_id": stored["credit_account_id"], "amount": stored["amount"],
        "ledger": stored["ledger"], "code": stored["code"],
    });
    let r = post(&mut c, "/v1/ledger/transfers", &again);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["timestamp"], stored["timestamp"]);
    let mut different = again.clone();
    different["amount"] = json!("1000");
    assert_problem(&post(&mut c, "/v1/ledger/transfers", &different), 409, "exists_with_different_amount");
    // A clean stop writes a snapshot with the cold chunks in it; a restart from it answers
    // the same, and verify replays and compares.
    assert_eq!(server.terminate().code(), Some(0));
    let server = Server::start_with(dir.path(), &flags);
    let mut c = server.client();
    let r = get(&mut c, &format!("/v1/ledger/transfers/{}", acknowledged[0]));
    assert_eq!(r.json(), stored);
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "kasa verify failed with cold transfers:\n{report}");
    let checked = report
        .lines()
        .find_map(|l| l.strip_prefix("cold store: the operators' ledger: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no count of checked transfers in:\n{report}"));
    assert!(checked >= 2 * 16_384, "{checked} cold transfers checked:\n{report}");
}

#[test]
fn wallets_whose_books_transfers_went_cold_answer_as_before() {
    // 20,000 seeded members (sign-up, bank account, top-up, session): their top-ups are
    // 40,000 transfers in Kasa's books and as many balances in the wallets' balance log, so
    // with one chunk hot the oldest of both go cold.
    let dir = tempfile::tempdir().unwrap();
    let secret = [7u8; 32];
    let secret_hex = "07".repeat(32);
    let env = [("KASA_BENCH_SECRET", secret_hex.as_str())];
    let hot = ["--hot-transfers", "16384"];
    let seeded = ["--hot-transfers", "16384", "--bench-seed", "20000"];
    let server = Server::launch(dir.path(), &seeded, Launch { env: &env, ..Launch::default() });
    let mut c = server.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cold_transfers(&mut c) < 16_384 || gauge(&mut c, "kasa_cold_balances") < 16_384 {
        assert!(Instant::now() < deadline, "no chunk of the books or of their balances went cold");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The first members' top-ups and balances are in the store: their wallets and histories
    // (with the balance after each entry) read them.
    let read = |c: &mut kasa::client::Client| -> Vec<(Value, Value)> {
        (1..=3u64)
            .map(|user| {
                let token = kasa_server::demo::bench_token(&secret, user);
                let wallet = call(c, "GET", "/v1/me/wallet", Some(&token), None);
                assert_eq!(wallet.status, 200, "{}", String::from_utf8_lossy(&wallet.body));
                let history = call(c, "GET", "/v1/me/transactions", Some(&token), None);
                assert_eq!(history.status, 200, "{}", String::from_utf8_lossy(&history.body));
                let entries = history.json()["data"].as_array().cloned().unwrap_or_default();
                assert!(!entries.is_empty(), "user {user} has no history");
                // The newest entry's balance, read from the (cold) balance log, is the wallet's.
                assert_eq!(entries[0]["balance_after"], wallet.json()["balance"], "user {user}");
                (wallet.json(), history.json())
            })
            .collect()
    };
    let before = read(&mut c);
    // A clean stop and a start from the snapshot, whose wallet section reads the books'
    // cold transfers back: the same answers, and verify agrees with the replay.
    assert_eq!(server.terminate().code(), Some(0));
    let server = Server::start_with(dir.path(), &hot);
    let mut c = server.client();
    assert_eq!(read(&mut c), before);
    assert_eq!(server.terminate().code(), Some(0));
    let (ok, report) = verify(dir.path());
    assert!(ok, "kasa verify failed:\n{report}");
    let line = report.lines().find(|l| l.starts_with("cold store: ")).unwrap_or_default();
    let checked = line
        .split("Kasa's books: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(checked >= 16_384, "the books' cold pages were checked:\n{report}");
    let balances = line
        .split("; ")
        .filter(|part| part.starts_with("Kasa's books: ") && part.contains(" balances equal to the replay"))
        .find_map(|part| part.strip_prefix("Kasa's books: ")?.split(' ').next()?.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(balances >= 16_384, "the books' cold balances were checked:\n{report}");
}
