//! A warm standby end to end, against the real binary: `kasa serve --follow` takes a primary's
//! committed journal, reaches the same state hash, serves reads and refuses writes, drives no
//! effects, resumes after a restart without gaps or repeats, refuses a journal that does not
//! continue its own, and is promoted by `kasa promote` after the primary's `kill -9`, losing
//! nothing the primary acknowledged up to the follower's position (docs/standby.md).

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// Starts a follower of `primary` on `data`, with the primary's PIN pepper and data key (a
/// promoted follower must check the same PINs and open the same sealed account numbers).
fn follower(primary: &Server, data: &Path) -> Server {
    std::fs::create_dir_all(data).unwrap();
    for file in ["pin.pepper", "data.key"] {
        std::fs::copy(primary.data.join(file), data.join(file)).unwrap();
    }
    follow(primary, data)
}

/// Starts a follower of `primary` on `data` as it is.
fn follow(primary: &Server, data: &Path) -> Server {
    Server::start_with(data, &["--follow", &format!("http://{}", primary.addr)])
}

/// `GET /v1/admin/replication`.
#[track_caller]
fn status(server: &Server) -> Value {
    let r = get(&mut server.client(), "/v1/admin/replication");
    assert_eq!(r.status, 200, "{}", r.json());
    r.json()
}

/// Waits (bounded) until the follower has every frame the primary committed; the primary's
/// status then. The primary must have no writes in flight.
#[track_caller]
fn caught_up(primary: &Server, follower: &Server) -> Value {
    let deadline = Instant::now() + BACKGROUND_WAIT;
    loop {
        let (p, f) = (status(primary), status(follower));
        if p["seq"] == f["seq"] {
            assert_eq!(p["state_hash"], f["state_hash"], "same seq, same state:\nprimary {p}\nfollower {f}");
            return p;
        }
        assert!(Instant::now() < deadline, "the follower never caught up:\nprimary {p}\nfollower {f}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) until the follower's status satisfies `done`; the status then.
#[track_caller]
fn follower_when(follower: &Server, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + BACKGROUND_WAIT;
    loop {
        let s = status(follower);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "the follower never got there: {s}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One metric's value from `/metrics`.
fn metric(server: &Server, name: &str) -> u64 {
    metric_text(server, name).parse().unwrap()
}

/// One metric's value from `/metrics`, as a float (for gauges in seconds).
fn metric_f64(server: &Server, name: &str) -> f64 {
    metric_text(server, name).parse().unwrap()
}

/// One metric's value from `/metrics`, as written.
fn metric_text(server: &Server, name: &str) -> String {
    let r = get(&mut server.client(), "/metrics");
    let text = String::from_utf8(r.body).unwrap();
    let line = text.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("no {name}"));
    line.split(' ').nth(1).unwrap().to_string()
}

/// Credits of 1 won to `user` from a thread until `stop` (or the first failure): how many
/// were acknowledged.
fn credit_until(server: &Server, user: User, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let mut c = server.client();
    std::thread::spawn(move || {
        let mut acknowledged = 0;
        let body = json!({"amount": "1", "currency": "KRW", "direction": "credit", "reason": "standby test"});
        while !stop.load(Ordering::Relaxed) {
            match c.send(
                "POST",
                &format!("/v1/admin/users/{}/adjustments", user.id),
                "application/json",
                body.to_string().as_bytes(),
            ) {
                Ok(r) if r.status == 201 => acknowledged += 1,
                _ => break,
            }
        }
        acknowledged
    })
}

/// The journal's segment files, concatenated in order.
fn journal_bytes(data: &Path) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(data.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names.iter().flat_map(|n| std::fs::read(data.join("journal").join(n)).unwrap()).collect()
}

/// A follower started on an empty directory while the primary has history, and kept up while
/// the primary takes writes, reaches the primary's seq with the same state hash, serves reads
/// of what was written on the primary (a wallet by its session, a user to operators), shows
/// its position in `/metrics`, refuses writes with `read_only_follower` (changing nothing),
/// and drives no effects: the sandbox bank hears only from the primary.
#[test]
fn a_follower_reaches_the_primarys_state_and_serves_reads_only() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Server::start(&dir.path().join("primary"));
    let mut c = primary.client();
    let alice = sign_up(&primary, "010-5100-0001");
    let bob = sign_up(&primary, "010-5100-0002");
    credit(&mut c, &alice, 50_000);
    let bank = link_bank(&mut c, &alice, "110555000111");
    let follower = follower(&primary, &dir.path().join("follower"));
    // Writes while the follower catches up and follows: money sent, a top-up through the bank.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = credit_until(&primary, bob.clone(), stop.clone());
    for i in 0..20 {
        let r =
            alice.keyed(&mut c, "/v1/transfers", &format!("send-{i}"), &json!({"to_user_id": bob.id, "amount": "100"}));
        assert_eq!(r.status, 201, "{}", r.json());
    }
    let top_up = funding(&mut c, &alice, "top-ups", &bank, 7_000, None);
    assert_eq!(top_up["status"], "succeeded", "{top_up}");
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);

    let primary_status = caught_up(&primary, &follower);
    let f = status(&follower);
    assert_eq!((f["role"].as_str(), primary_status["role"].as_str()), (Some("follower"), Some("primary")));
    assert_eq!(f["following"]["primary"], format!("http://{}", primary.addr));
    assert_eq!(f["following"]["lag_frames"], 0, "{f}");
    let seq = f["seq"].as_u64().unwrap();
    assert!(seq > 20, "{f}");
    assert_eq!(metric(&follower, "kasa_follower"), 1);
    assert_eq!(metric(&follower, "kasa_committed_seq"), seq);
    assert_eq!(metric(&follower, "kasa_follower_lag_frames"), 0);
    assert_eq!(metric(&primary, "kasa_follower"), 0);

    // Reads on the follower see the primary's writes.
    let mut fc = follower.client();
    assert_eq!(alice.wallet(&mut fc), alice.wallet(&mut c));
    assert_eq!(bob.wallet(&mut fc)["balance"], bob.wallet(&mut c)["balance"]);
    let r = get(&mut fc, &format!("/v1/admin/users/{}", alice.id));
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["phone"], get(&mut c, &format!("/v1/admin/users/{}", alice.id)).json()["phone"]);

    // Writes are refused with the stable code, operators' and users' alike, and change nothing.
    let r = post(
        &mut fc,
        &format!("/v1/admin/users/{}/adjustments", alice.id),
        &json!({"amount": "1", "currency": "KRW", "direction": "credit", "reason": "no"}),
    );
    assert_problem(&r, 503, "read_only_follower");
    let r = alice.keyed(&mut fc, "/v1/transfers", "on-follower", &json!({"to_user_id": bob.id, "amount": "100"}));
    assert_problem(&r, 503, "read_only_follower");
    let r = call(
        &mut follower.client_from(next_address()),
        "POST",
        "/v1/phone-verifications",
        None,
        Some(&json!({"phone": "010-5100-0003"})),
    );
    assert_problem(&r, 503, "read_only_follower");
    assert_eq!(status(&follower)["seq"], seq);

    // Effects are the primary's alone: the follower's sandbox bank never heard of the top-up.
    let primary_bank = std::fs::read_to_string(primary.data.join("sandbox-bank.log")).unwrap();
    assert!(!primary_bank.is_empty());
    let follower_bank = std::fs::read_to_string(follower.data.join("sandbox-bank.log")).unwrap();
    assert!(follower_bank.is_empty(), "the follower called the bank: {follower_bank}");

    let follower_data = follower.data.clone();
    stop_and_verify(follower);
    stop_and_verify(primary);
    let (ok, report) = verify(&follower_data);
    assert!(ok && report.contains(&format!("state hash: {}", f["state_hash"].as_str().unwrap())), "{report}");
}

/// The primary is killed with `kill -9` while clients write; the follower is promoted with
/// `kasa promote`. Replication is asynchronous, so what the follower had not received is
/// lost with the primary; but every credit that was acknowledged before the primary's
/// committed seq (read right after the answer) was at or below the follower's final
/// position is there, nothing that was never sent appears, the promoted follower takes
/// writes, runs the bank rail, and `kasa verify` passes on its directory.
#[test]
fn the_primary_is_killed_and_the_promoted_follower_lost_nothing_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Server::start(&dir.path().join("primary"));
    let users: Vec<User> = (0..3).map(|i| sign_up(&primary, &format!("010-5200-000{i}"))).collect();
    let follower = follower(&primary, &dir.path().join("follower"));
    caught_up(&primary, &follower);

    // Each writer credits its user 1 won at a time, and after each answer reads the primary's
    // committed seq: an upper bound of that credit's frame.
    let stop = Arc::new(AtomicBool::new(false));
    let bounds: Arc<Mutex<Vec<Vec<u64>>>> = Arc::new(Mutex::new(vec![Vec::new(); users.len()]));
    let workers: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let (mut c, mut m) = (primary.client(), primary.client());
            let (user, stop, bounds) = (user.clone(), stop.clone(), bounds.clone());
            std::thread::spawn(move || {
                let body = json!({"amount": "1", "currency": "KRW", "direction": "credit", "reason": "standby test"});
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/v1/admin/users/{}/adjustments", user.id);
                    match c.send("POST", &path, "application/json", body.to_string().as_bytes()) {
                        Ok(r) if r.status == 201 => {}
                        _ => return,
                    }
                    let Ok(r) = m.send("GET", "/metrics", "text/plain", b"") else { return };
                    let text = String::from_utf8_lossy(&r.body).to_string();
                    let Some(seq) = text.lines().find_map(|l| l.strip_prefix("kasa_committed_seq ")) else { return };
                    bounds.lock().unwrap()[i].push(seq.trim().parse().unwrap());
                }
            })
        })
        .collect();
    kill_mid_write(primary, &stop, workers, || bounds.lock().unwrap().iter().map(Vec::len).sum());
    let bounds = bounds.lock().unwrap().clone();

    // The follower notices, and is promoted by the operator's command.
    follower_when(&follower, |s| s["following"]["phase"] == "retrying");
    let out = promote(&follower);
    let s = status(&follower);
    assert_eq!((s["role"].as_str(), &s["following"]), (Some("primary"), &Value::Null), "{s}");
    let position = s["seq"].as_u64().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("frame {position}")));

    let mut fc = follower.client();
    for (user, bounds) in users.iter().zip(&bounds) {
        let (balance, _) = user.balance(&mut fc);
        let sure = bounds.iter().filter(|&&b| b <= position).count() as u64;
        assert!(
            balance >= sure,
            "user {}: {balance} credits kept, {sure} were acknowledged at or below frame {position}",
            user.id
        );
        assert!(
            balance <= bounds.len() as u64 + 1,
            "user {}: {balance} credits kept, only {} were sent",
            user.id,
            bounds.len()
        );
    }
    assert!(bounds.iter().flatten().any(|&b| b <= position), "the follower had none of the writes: nothing was tested");

    // An ordinary primary now: writes, sessions made on the old primary, the bank rail.
    let before = users[0].balance(&mut fc).0;
    credit(&mut fc, &users[0], 10);
    assert_eq!(users[0].balance(&mut fc).0, before + 10);
    let bank = link_bank(&mut fc, &users[0], "110555000222");
    let top_up = funding(&mut fc, &users[0], "top-ups", &bank, 5_000, None);
    assert_eq!(top_up["status"], "succeeded", "{top_up}");
    assert_eq!(metric(&follower, "kasa_follower"), 0);
    stop_and_verify(follower);
    // Promoted for good: the same command line with `--follow` does not make it a follower
    // again.
    let again = serve_follower(&dir.path().join("follower"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("was promoted to a primary"), "{again:?}");
}

/// `kill -9` of `primary` once its writers have 300 writes acknowledged (`acknowledged`), so
/// that some are in flight at the kill; then stops and waits for the writers.
fn kill_mid_write(
    primary: Server,
    stop: &AtomicBool,
    workers: Vec<std::thread::JoinHandle<()>>,
    acknowledged: impl Fn() -> usize,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged() < 300 {
        assert!(Instant::now() < deadline, "the writers got too little acknowledged");
        std::thread::sleep(Duration::from_millis(5));
    }
    primary.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

/// `kasa promote` of `follower`, which must succeed; its output.
#[track_caller]
fn promote(follower: &Server) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["promote", "--addr", &follower.addr.to_string()])
        .env("KASA_OPERATOR_KEY", KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `kasa serve --follow` (of a primary that is not there) on `data`, to its exit.
fn serve_follower(data: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["serve", "--listen", "127.0.0.1:0", "--follow", "http://127.0.0.1:9", "--data"])
        .arg(data)
        .env("KASA_OPERATOR_KEY", KEY)
        .env_remove("KASA_PIN_PEPPER")
        .env_remove("KASA_DATA_KEY")
        .output()
        .unwrap()
}

/// A follower never makes a PIN pepper or a data key of its own: with them it would match
/// the primary's state hash and, once promoted, check no PIN and open no sealed account.
#[test]
fn a_follower_without_the_primarys_keys_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_follower(dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--follow needs the primary's pin.pepper"), "{stderr}");
    assert!(!dir.path().join("pin.pepper").exists() && !dir.path().join("data.key").exists());
    std::fs::write(dir.path().join("pin.pepper"), "0123456789abcdef0123456789abcdef").unwrap();
    let stderr = String::from_utf8_lossy(&serve_follower(dir.path()).stderr).to_string();
    assert!(stderr.contains("--follow needs the primary's data.key"), "{stderr}");
}

/// A follower killed mid-stream and started again resumes from its own journal: it ends with
/// the primary's frames byte for byte, none twice and none missing, and the same state hash.
#[test]
fn a_restarted_follower_resumes_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Server::start(&dir.path().join("primary"));
    let user = sign_up(&primary, "010-5300-0001");
    let follower_dir = dir.path().join("follower");
    let first = follower(&primary, &follower_dir);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = credit_until(&primary, user.clone(), stop.clone());
    follower_when(&first, |s| s["seq"].as_u64().unwrap() > 50);
    first.kill9();
    let second = follow(&primary, &follower_dir);
    let seq_at_start = status(&second)["seq"].as_u64().unwrap();
    follower_when(&second, |s| s["seq"].as_u64().unwrap() > seq_at_start + 50);
    stop.store(true, Ordering::Relaxed);
    let credits = writer.join().unwrap();
    let p = caught_up(&primary, &second);
    assert_eq!(user.balance(&mut second.client()).0, credits);
    stop_and_verify(second);
    let primary_dir = primary.data.clone();
    stop_and_verify(primary);
    let (primary_journal, follower_journal) = (journal_bytes(&primary_dir), journal_bytes(&follower_dir));
    assert!(
        primary_journal.starts_with(&follower_journal) && follower_journal.len() > 1000,
        "the follower's journal ({} bytes) is not the primary's ({} bytes) up to frame {}",
        follower_journal.len(),
        primary_journal.len(),
        p["seq"]
    );
}

/// A follower pointed at another primary stops rather than diverge: at a journal with more
/// frames, the first one does not chain onto its own last frame; at one with fewer, the
/// primary says its position is past its journal. Either way it keeps its frames and its
/// state, says why in its status, and goes on serving reads.
#[test]
fn a_follower_refuses_a_journal_that_does_not_continue_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Server::start(&dir.path().join("primary"));
    sign_up(&primary, "010-5400-0001");
    let follower_dir = dir.path().join("follower");
    let first = follower(&primary, &follower_dir);
    let before = caught_up(&primary, &first);
    let seq = before["seq"].as_u64().unwrap();
    stop_and_verify(first);

    // Another primary, with more frames than the follower has.
    let other = Server::start(&dir.path().join("other"));
    let other_user = sign_up(&other, "010-5400-0002");
    let mut oc = other.client();
    while status(&other)["seq"].as_u64().unwrap() <= seq + 2 {
        credit(&mut oc, &other_user, 1);
    }
    let second = follow(&other, &follower_dir);
    let s = follower_when(&second, |s| s["following"]["phase"] == "stopped");
    let error = s["following"]["error"].as_str().unwrap();
    assert!(error.contains(&format!("frame {}: does not chain onto this journal's frame {seq}", seq + 1)), "{error}");
    assert_eq!((s["seq"].as_u64(), &s["state_hash"]), (Some(seq), &before["state_hash"]), "{s}");
    assert_eq!(s["role"], "follower");
    assert_eq!(get(&mut second.client(), "/v1/admin/replication").status, 200);
    stop_and_verify(second);

    // A fresh primary: the follower's position is past its journal.
    let empty = Server::start(&dir.path().join("empty"));
    let third = follow(&empty, &follower_dir);
    let s = follower_when(&third, |s| s["following"]["phase"] == "stopped");
    let error = s["following"]["error"].as_str().unwrap();
    assert!(error.contains("journal_position_ahead"), "{error}");
    assert_eq!(s["seq"].as_u64(), Some(seq));
    stop_and_verify(third);
    drop((other, empty));
}

/// The property of a synchronous standby (`--sync-followers 1`): the primary is killed
/// with `kill -9` while clients write, the follower is promoted, and EVERY credit the primary
/// acknowledged is on the promoted follower (nothing more than was sent, either), which then
/// passes `kasa verify`.
#[test]
fn with_a_synchronous_follower_nothing_acknowledged_is_lost_on_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Server::start_with(&dir.path().join("primary"), &["--sync-followers", "1"]);
    let follower = follower(&primary, &dir.path().join("follower"));
    let users: Vec<User> = (0..3).map(|i| sign_up(&primary, &format!("010-5500-000{i}"))).collect();
    assert_eq!(metric(&primary, "kasa_sync_followers"), 1);

    // Each writer counts the credits the primary acknowledged; the test kills the primary
    // once they have a few hundred between them, so that some are in flight at the kill.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Vec<std::sync::atomic::AtomicU64>> = Arc::new((0..users.len()).map(|_| 0.into()).collect());
    let workers: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let mut c = primary.client();
            let (user, stop, acknowledged) = (user.clone(), stop.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                let body = json!({"amount": "1", "currency": "KRW", "direction": "credit", "reason": "sync test"});
                let path = format!("/v1/admin/users/{}/adjustments", user.id);
                while !stop.load(Ordering::Relaxed) {
                    match c.send("POST", &path, "application/json", body.to_string().as_bytes()) {
                        Ok(r) if r.status == 201 => acknowledged[i].fetch_add(1, Ordering::SeqCst),
                        _ => return,
                    };
                }
            })
        })
        .collect();
    kill_mid_write(primary, &stop, workers, || acknowledged.iter().map(|a| a.load(Ordering::SeqCst) as usize).sum());

    follower_when(&follower, |s| s["following"]["phase"] == "retrying");
    promote(&follower);
    let mut fc = follower.client();
    for (user, acknowledged) in users.iter().zip(acknowledged.iter()) {
        let acknowledged = acknowledged.load(Ordering::SeqCst);
        let (balance, _) = user.balance(&mut fc);
        // At most one credit per writer was in flight at the kill: committed, maybe even on
        // the follower, but never answered.
        assert!(
            (acknowledged..=acknowledged + 1).contains(&balance),
            "user {}: the primary acknowledged {acknowledged} credits, the promoted follower has {balance}",
            user.id
        );
    }
    stop_and_verify(follower);
}

/// With `--sync-followers 1` and no follower, a write is committed (a read on the primary
/// sees it) but not answered: the client times out, `/metrics` shows the held answers and
/// their age. A follower that starts takes the frames, and the answers arrive.
#[test]
fn a_synchronous_primary_answers_only_once_a_follower_has_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("primary");
    // The user is made without the option (there is no follower to wait for yet).
    let plain = Server::start(&data);
    let user = sign_up(&plain, "010-5600-0001");
    stop_and_verify(plain);
    let primary = Server::start_with(&data, &["--sync-followers", "1"]);
    let path = format!("/v1/admin/users/{}/adjustments", user.id);
    let body = json!({"amount": "1", "currency": "KRW", "direction": "credit", "reason": "sync test"}).to_string();

    let mut impatient = primary.client();
    impatient.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let answer = impatient.send("POST", &path, "application/json", body.as_bytes());
    assert!(answer.is_err(), "answered with no follower: {:?}", answer.map(|r| r.status));
    let mut patient = primary.client();
    let (path2, body2) = (path.clone(), body.clone());
    let waiting =
        std::thread::spawn(move || patient.send("POST", &path2, "application/json", body2.as_bytes()).unwrap());
    let deadline = Instant::now() + BACKGROUND_WAIT;
    while metric(&primary, "kasa_sync_held_answers") < 2 {
        assert!(Instant::now() < deadline, "the second answer was never held");
        std::thread::sleep(Duration::from_millis(10));
    }
    let oldest = metric_f64(&primary, "kasa_sync_held_oldest_seconds");
    assert!(oldest > 1.0, "the oldest held answer waited {oldest} s");
    assert_eq!(metric(&primary, "kasa_sync_follower_seq"), 0);
    assert!(!waiting.is_finished(), "answered with no follower");
    // The batches are durable and applied on the primary: its reads see them already.
    assert_eq!(user.balance(&mut primary.client()).0, 2);

    let follower = follower(&primary, &dir.path().join("follower"));
    let answer = waiting.join().unwrap();
    assert_eq!(answer.status, 201, "{}", answer.json());
    assert_eq!(user.balance(&mut follower.client()).0, 2, "answered before the follower had it");
    assert_eq!(metric(&primary, "kasa_sync_held_answers"), 0);
    assert_eq!(metric_f64(&primary, "kasa_sync_held_oldest_seconds"), 0.0);
    assert!(metric(&primary, "kasa_sync_follower_seq") >= status(&follower)["seq"].as_u64().unwrap());
    // From now on a write is answered in about one round trip to the follower.
    credit(&mut primary.client(), &user, 1);
    assert!(user.balance(&mut follower.client()).0 >= 3);
    stop_and_verify(follower);
    stop_and_verify(primary);
}
