//! `kasa bench import`: a partner's merchant network imported end to end into a real
//! `kasa serve` with its journal on disk. The file is generated (not timed): `--merchants`
//! rows of valid registration numbers with their check digits, one row in a hundred for a
//! merchant Kasa onboarded first (merged), and a few bad rows (a wrong check digit, a QR
//! payload whose CRC is wrong, a partner id repeated with another number). What is timed is
//! what an operator waits for: the upload, the job to its last row, and the report.

use crate::bench::{rss_bytes, start_server, stop, CLEANUP};
use crate::bench_payments::{onboard, valid_brn, with_check_digit};
use crate::import::{Totals, Upload};
use anyhow::{bail, Context};
use kasa_server::import_file::{csv_field, COLUMNS};
use std::time::Instant;

/// Arguments of `kasa bench import`.
#[derive(clap::Args, Clone)]
pub struct ImportArgs {
    /// Rows of the generated file (one merchant and store each).
    #[arg(long, default_value_t = 34_000)]
    merchants: u64,
}

/// The EMVCo specification's sample payload (a CN merchant), as every store's code.
const QR: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

/// A new merchant's number: the `j`th of tax offices 300 and up, every type and serial.
fn new_brn(j: u64) -> String {
    let serial = j % 9_999 + 1;
    let kind = (j / 9_999) % 99 + 1;
    let office = 300 + j / (9_999 * 99);
    with_check_digit(office * 1_000_000 + kind * 10_000 + serial)
}

/// What the file should give.
struct Expected {
    onboarded: u64,
    totals: Totals,
}

/// The file, and the totals it should give on a server with the first `onboarded` bench
/// merchants.
fn generate(rows: u64, onboarded: u64) -> (String, Expected) {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    let mut expected = Totals::default();
    let mut merges = 0;
    for i in 0..rows {
        let (mut brn, mut qr, mut partner_id) = (new_brn(i), QR.to_string(), format!("AP{i:08}"));
        if i % 100 == 50 && merges < onboarded {
            brn = valid_brn(merges);
            merges += 1;
            expected.merged += 1;
        } else if i % 1_000 == 7 {
            // A wrong check digit.
            let last = brn.pop().and_then(|c| c.to_digit(10)).unwrap_or(0);
            brn.push(char::from_digit((last + 1) % 10, 10).unwrap_or('0'));
            expected.refused += 1;
        } else if i % 1_000 == 507 {
            qr.replace_range(qr.len() - 4.., "FFFF");
            expected.refused += 1;
        } else if i % 2_000 == 1_001 && i > 0 {
            // The partner id of the row before, with this row's own number.
            partner_id = format!("AP{:08}", i - 1);
            expected.refused += 1;
        } else {
            expected.created += 1;
        }
        let fields = [
            partner_id.as_str(),
            "Best Transport Co., Ltd.",
            "最佳运输",
            brn.as_str(),
            "4111",
            "KR",
            "서울",
            &format!("ST{i:08}"),
            "명동점",
            qr.as_str(),
        ];
        for (n, field) in fields.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            csv_field(field, &mut out);
        }
        out.push('\n');
    }
    (out, Expected { onboarded, totals: expected })
}

pub(crate) fn run(args: ImportArgs) -> anyhow::Result<()> {
    if args.merchants == 0 {
        bail!("--merchants must be at least 1");
    }
    let onboarded = (args.merchants / 100).clamp(1, 200);
    let (file, expected) = generate(args.merchants, onboarded);
    println!(
        "kasa bench import: {} rows ({:.1} MB of CSV: {} to create, {} to merge with merchants onboarded first, {} \
         refused), sent to a real server with its journal on disk",
        args.merchants,
        file.len() as f64 / 1e6,
        expected.totals.created,
        expected.totals.merged,
        expected.totals.refused
    );
    let key = std::env::var("KASA_OPERATOR_KEY").unwrap_or_else(|_| "bench-operator-key-0123456789".to_string());
    let temp = tempfile::Builder::new().prefix("kasa-bench-").tempdir_in(".")?;
    CLEANUP.lock().expect("cleanup lock").0 = Some(temp.path().to_path_buf());
    crate::bench::check_disk(temp.path(), file.len() as u64 * 4 + (64 << 20))?;
    let (server, _) = start_server(temp.path(), &key)?;
    CLEANUP.lock().expect("cleanup lock").1 = Some(server.child.id());
    onboard(server.addr, &key, expected.onboarded, None).context("onboarding the merchants to merge with")?;
    register_partner(server.addr, &key, "benchpay")?;
    let upload = Upload { addr: server.addr, key: &key, partner: "benchpay", body: file.as_bytes(), ndjson: false };
    let started = Instant::now();
    let (totals, report) = upload.import(false)?;
    let took = started.elapsed();
    let rss = rss_bytes(server.child.id());
    println!("{totals}");
    println!(
        "import: {} rows in {:.2} s end to end (upload, job, report): {:.0} rows/s; report {} lines",
        args.merchants,
        took.as_secs_f64(),
        args.merchants as f64 / took.as_secs_f64(),
        report.iter().filter(|&&b| b == b'\n').count()
    );
    if let Some(rss) = rss {
        println!("server resident memory after the import: {:.0} MiB", rss as f64 / (1u64 << 20) as f64);
    }
    if totals != expected.totals {
        bail!("the totals differ from the file's: expected {}", expected.totals);
    }
    // The same file again changes nothing: the job is found done.
    let again = Instant::now();
    let (second, _) = upload.import(false)?;
    println!("the same file again: {second} in {:.2} s (the job is done)", again.elapsed().as_secs_f64());
    stop(server)?;
    Ok(())
}

/// Registers the partner whose network is imported.
fn register_partner(addr: std::net::SocketAddr, key: &str, name: &str) -> anyhow::Result<()> {
    let mut client = kasa::client::Client::connect(addr, key)?;
    let body = serde_json::json!({
        "name": name, "home_currency": "CNY", "settlement_currency": "CNY", "fee_bps": 0,
        "settlement_bank_account": {"bank_code": "088", "account_number": "110987654321", "holder_name": "Partner"}
    });
    let r = client.send("POST", "/v1/admin/partners", "application/json", body.to_string().as_bytes())?;
    anyhow::ensure!(r.status == 201, "registering the partner: {}", r.json());
    Ok(())
}
