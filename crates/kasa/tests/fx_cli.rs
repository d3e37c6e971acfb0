//! `kasa fx` on the command line: a rates file checked (a bad line named by its number) and
//! quotes computed from it by the one rounding rule, in both directions and at a time.

use std::process::Command;

fn kasa(args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_kasa")).args(args).output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn a_rates_file_is_checked_and_quoted_from() {
    let dir = tempfile::tempdir().unwrap();
    let rates = dir.path().join("rates.csv");
    std::fs::write(
        &rates,
        "pair,mid,spread_bps,valid_from\nCNY/KRW,190.50,100,2026-12-01T00:00:00Z\nCNY/KRW,200,100,2026-12-02T00:00:00Z\n",
    )
    .unwrap();
    let rates = rates.to_str().unwrap();
    assert_eq!(kasa(&["fx", "check", rates]), (0, serde_json::json!({"valid": true, "rates": 2})));
    // On 2026-12-01 (1796083200 is its midnight, UTC): 100.00 CNY × 190.50 × 0.99 = 18,859.5 won,
    // rounded down; buying 100.00 CNY costs 10,000 / (0.99 / 190.5) = 19,242.42 won, rounded up.
    let at = "1796090000";
    let (code, q) =
        kasa(&["fx", "quote", "--rates", rates, "--sell", "CNY", "--buy", "KRW", "--sell-amount", "10000", "--at", at]);
    assert_eq!((code, q["buy_amount"].as_str(), q["rate"].as_str()), (0, Some("18859"), Some("188.595")));
    let (code, q) =
        kasa(&["fx", "quote", "--rates", rates, "--sell", "KRW", "--buy", "CNY", "--buy-amount", "10000", "--at", at]);
    assert_eq!((code, q["sell_amount"].as_str()), (0, Some("19243")));
    // The next day's rate (from 1796169600): 100.00 CNY × 200 × 0.99 = 19,800 won.
    let next = "1796170000";
    let (_, q) = kasa(&[
        "fx",
        "quote",
        "--rates",
        rates,
        "--sell",
        "CNY",
        "--buy",
        "KRW",
        "--sell-amount",
        "10000",
        "--at",
        next,
    ]);
    assert_eq!(q["buy_amount"], "19800");
    // Before any rate: refused, exit 1.
    let (code, q) =
        kasa(&["fx", "quote", "--rates", rates, "--sell", "CNY", "--buy", "KRW", "--sell-amount", "1", "--at", "1"]);
    assert_eq!((code, q["reason"].as_str()), (1, Some("no_rate")));
    // A bad line is named by its number.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "pair,mid,spread_bps,valid_from\nCNY/KRW,190.50,100,2026-12-01T00:00:00Z\nCNY/KRW,-1,100,2026-12-01T00:00:00Z\n")
        .unwrap();
    let (code, r) = kasa(&["fx", "check", bad.to_str().unwrap()]);
    assert_eq!((code, r["reason"].as_str(), r["line"].as_u64()), (1, Some("invalid_rate"), Some(3)));
}
