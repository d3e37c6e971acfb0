//! Merchant imports end to end against the real binary (issue 11): `kasa merchants import`
//! with bad rows and duplicates (every row reported, nothing stops), a dry run that changes
//! nothing, the same file again changing nothing, the HTTP errors, and resumes after
//! `kill -9` of the server mid-import and of the command, each ending with the totals of an
//! uninterrupted run and a data directory that `kasa verify` passes.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{assert_problem, get, onboard, stop_and_verify, Server, KEY};

const HEADER: &str =
    "partner_merchant_id,business_name,display_name,brn,mcc,country,city,store_id,store_name,qr_payload";
const QR: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

fn line(id: &str, brn: &str, mcc: &str, store: &str, qr: &str) -> String {
    format!("{id},\"Best Transport Co., Ltd.\",最佳运输,{brn},{mcc},KR,서울,{store},명동점,{qr}")
}

/// Runs `kasa merchants import` against `server`: (success, stdout, stderr).
fn import(server: &Server, file: &Path, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["merchants", "import"])
        .arg(file)
        .args(["--partner", "alipay", "--addr", &server.addr.to_string()])
        .args(extra)
        .env("KASA_OPERATOR_KEY", KEY)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn last_line(stdout: &str) -> &str {
    stdout.lines().last().unwrap_or("")
}

fn merchants(c: &mut kasa::client::Client) -> Vec<Value> {
    get(c, "/v1/admin/merchants?limit=100").json()["data"].as_array().unwrap().clone()
}

#[test]
fn bad_rows_and_duplicates_are_reported_a_dry_run_changes_nothing_and_a_rerun_neither() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut c = server.client();
    support::register_partner(&mut c, "alipay");
    let kasa_merchant = onboard(&mut c, "120-81-47521");
    let bad_qr = format!("{}FFFF", &QR[..QR.len() - 4]);
    let rows = [
        line("AP-1", "220-81-62517", "4111", "S-1", QR),      // created
        line("AP-2", "120-81-47521", "4111", "S-2", QR),      // merged into Kasa's merchant
        line("AP-2", "120-81-47521", "4111", "S-2", QR),      // the same row again: unchanged
        line("AP-1", "304-87-00790", "4111", "S-4", QR),      // AP-1 with another number: refused
        line("AP-5", "120-81-47522", "4111", "S-5", QR),      // a wrong check digit
        line("AP-6", "116-82-00276", "41x1", "S-6", QR),      // not an MCC
        line("AP-7", "134-86-72683", "4111", "S-7", &bad_qr), // a QR payload whose CRC is wrong
        "AP-8,too,few".to_string(),                           // not a row
        line("AP-9", "211-86-08983", "4111", "S-1", QR),      // another merchant's store
    ];
    let file = dir.path().join("alipay.csv");
    std::fs::write(&file, format!("{HEADER}\n{}\n", rows.join("\n"))).unwrap();
    let expected = "created 1, merged 1, unchanged 1, refused 6";

    // The dry run prints every row and the totals, and changes nothing.
    let (ok, stdout, stderr) = import(&server, &file, &["--dry-run"]);
    assert!(ok, "{stderr}");
    assert_eq!(last_line(&stdout), expected);
    let dry: Vec<Value> =
        stdout.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    let results: Vec<&str> =
        dry.iter().map(|r| r["reason"].as_str().unwrap_or(r["result"].as_str().unwrap())).collect();
    let reasons = [
        "created",
        "merged",
        "unchanged",
        "partner_id_taken",
        "invalid_brn",
        "invalid_mcc",
        "invalid_qr_payload",
        "invalid_line",
        "store_taken",
    ];
    assert_eq!(results, reasons);
    assert_eq!(merchants(&mut c).len(), 1, "a dry run creates nothing");

    // The import: the same results, and a report of every row.
    let report = dir.path().join("report.ndjson");
    let (ok, stdout, stderr) = import(&server, &file, &["--report", report.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(last_line(&stdout), expected);
    let lines: Vec<Value> =
        std::fs::read_to_string(&report).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let results: Vec<&str> =
        lines.iter().map(|r| r["reason"].as_str().unwrap_or(r["result"].as_str().unwrap())).collect();
    assert_eq!(results, reasons);
    assert_eq!((lines[0]["row"].as_u64(), lines[0]["merchant_id"].as_str()), (Some(1), Some("mch_2")));
    assert_eq!(lines[1]["merchant_id"].as_str(), Some(kasa_merchant.as_str()));
    assert!(lines[4]["detail"].as_str().unwrap().contains("check digit"), "{}", lines[4]);
    assert!(lines[6]["detail"].as_str().unwrap().starts_with("qr_payload: "), "{}", lines[6]);
    assert!(lines[3]["detail"].as_str().unwrap().contains("partner merchant id"), "{}", lines[3]);

    // The created merchant has no settlement account and the partner's id; Kasa's merchant
    // keeps its account and gains the partner's id and store.
    let all = merchants(&mut c);
    assert_eq!(all.len(), 2, "refused rows made no merchant");
    let created = get(&mut c, "/v1/admin/merchants/mch_2").json();
    assert!(created["settlement_bank_account"].is_null());
    assert_eq!(created["partner_ids"][0]["partner_merchant_id"], "AP-1");
    let merged = get(&mut c, &format!("/v1/admin/merchants/{kasa_merchant}")).json();
    assert_eq!(merged["settlement_bank_account"]["account_number_last4"], "6789");
    assert_eq!(merged["partner_ids"][0]["partner"], "alipay");
    let stores = get(&mut c, &format!("/v1/admin/merchants/{kasa_merchant}/stores")).json();
    let store = &stores["data"][0];
    assert_eq!(
        (store["partner"]["partner_store_id"].as_str(), store["partner"]["qr_payload"].as_str()),
        (Some("S-2"), Some(QR))
    );

    // The same file again: the job is found done; nothing changes.
    let (ok, stdout, stderr) = import(&server, &file, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(last_line(&stdout), expected);
    assert_eq!(merchants(&mut c).len(), 2);

    // Errors are problems, and change nothing.
    let csv = |c: &mut kasa::client::Client, path: &str, body: &str| {
        c.send("POST", path, "text/csv", body.as_bytes()).unwrap()
    };
    assert_problem(&csv(&mut c, "/v1/admin/merchant-imports", &rows[0]), 400, "invalid_parameter");
    assert_problem(&csv(&mut c, "/v1/admin/merchant-imports?partner=Ali%20Pay", &rows[0]), 400, "invalid_parameter");
    assert_problem(&csv(&mut c, "/v1/admin/merchant-imports?partner=alipay", &rows[0]), 422, "invalid_import_file");
    assert_problem(&csv(&mut c, "/v1/admin/merchant-imports?partner=alipay", HEADER), 422, "invalid_import_file");
    let json = c.send("POST", "/v1/admin/merchant-imports?partner=alipay", "application/json", b"{}").unwrap();
    assert_problem(&json, 415, "unsupported_media_type");
    assert_problem(&get(&mut c, "/v1/admin/merchant-imports/imp_9"), 404, "not_found");
    assert_problem(&get(&mut c, "/v1/admin/merchant-imports/mch_1"), 404, "not_found");
    let anonymous =
        c.request("POST", "/v1/admin/merchant-imports?partner=alipay", &[("Content-Type", "text/csv")], b"x").unwrap();
    assert_problem(&anonymous, 401, "unauthorized");
    assert_eq!(merchants(&mut c).len(), 2);
    stop_and_verify(server);
}

/// A registration number of nine digits and their check digit.
fn brn(head: u64) -> String {
    let digits: Vec<u32> = head.to_string().chars().map(|c| c.to_digit(10).unwrap()).collect();
    let sum: u32 = digits.iter().zip([1, 3, 7, 1, 3, 7, 1, 3, 5]).map(|(d, w)| d * w).sum::<u32>() + digits[8] * 5 / 10;
    format!("{head}{}", (10 - sum % 10) % 10)
}

/// A file of `rows` new merchants (one in 500 with a wrong check digit); the totals line of
/// its import.
fn big_file(path: &Path, rows: u64, office: u64) -> String {
    let mut out = format!("{HEADER}\n");
    let mut refused = 0;
    for i in 0..rows {
        let mut number = brn(office * 1_000_000 + (i / 9_999 + 1) * 10_000 + i % 9_999 + 1);
        if i % 500 == 3 {
            let last = number.pop().unwrap().to_digit(10).unwrap();
            number.push(char::from_digit((last + 1) % 10, 10).unwrap());
            refused += 1;
        }
        out.push_str(&line(&format!("P{office}-{i}"), &number, "5812", &format!("S{office}-{i}"), QR));
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
    format!("created {}, merged 0, unchanged 0, refused {refused}", rows - refused)
}

/// Polls the job of the latest import until it has committed some rows but not all; false if
/// it finished first.
fn wait_mid_import(c: &mut kasa::client::Client, id: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let job = get(c, &format!("/v1/admin/merchant-imports/{id}")).json();
        let (done, total) = (job["rows_done"].as_u64().unwrap_or(0), job["rows_total"].as_u64().unwrap_or(0));
        if done > 0 && done < total {
            return true;
        }
        if job["status"] == "done" {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn an_import_resumes_after_kill_9_of_the_server_and_of_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    let file = dir.path().join("big.csv");
    let expected = big_file(&file, 60_000, 300);

    // The server killed mid-import: the job stops where its last chunk was committed.
    let mut c = server.client();
    support::register_partner(&mut c, "alipay");
    let body = std::fs::read(&file).unwrap();
    let r = c.send("POST", "/v1/admin/merchant-imports?partner=alipay", "text/csv", &body).unwrap();
    assert_eq!(r.status, 202, "{}", r.json());
    assert_eq!(r.json()["id"], "imp_1");
    assert!(wait_mid_import(&mut c, "imp_1"), "the import finished before the test could kill the server");
    server.kill9();
    server = Server::start(&data);
    let mut c = server.client();
    let job = get(&mut c, "/v1/admin/merchant-imports/imp_1").json();
    let committed = job["rows_done"].as_u64().unwrap();
    assert!(committed > 0 && committed < 60_000 && job["status"] == "interrupted", "{job}");
    // The command with the same file resumes the job and ends with the uninterrupted totals.
    let report = dir.path().join("report.ndjson");
    let (ok, stdout, stderr) = import(&server, &file, &["--report", report.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_eq!(last_line(&stdout), expected);
    let report = std::fs::read_to_string(&report).unwrap();
    assert_eq!(report.lines().count(), 60_000, "the report covers the rows committed before the kill too");
    assert_eq!(report.lines().filter(|l| l.contains("\"created\"")).count(), 60_000 - 120);
    let job = get(&mut c, "/v1/admin/merchant-imports/imp_1").json();
    assert_eq!((job["status"].as_str(), job["created_at"].is_string()), (Some("done"), true));

    // The command killed mid-import: the job goes on in the server; the command run again
    // follows it to the same totals.
    let second = dir.path().join("second.csv");
    let expected = big_file(&second, 60_000, 400);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kasa"))
        .args(["merchants", "import"])
        .arg(&second)
        .args(["--partner", "alipay", "--addr", &server.addr.to_string()])
        .env("KASA_OPERATOR_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while get(&mut c, "/v1/admin/merchant-imports/imp_2").status != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "the command never started its import");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (ok, stdout, stderr) = import(&server, &second, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(last_line(&stdout), expected);
    stop_and_verify(server);
}
