//! `kasa reconcile --partner NAME FILE`: compares a partner's settlement file with Kasa's for
//! the same window, read from a running server, and reports items missing on either side,
//! different amounts and different statuses (`kasa_server::reconcile`). Nothing is changed.
//! The window is `--window`, or the `window_id` of the file's first item.

use anyhow::Context;
use kasa_server::reconcile::{compare, read};
use std::path::PathBuf;
use std::process::ExitCode;

/// What `kasa reconcile` takes.
#[derive(clap::Args)]
pub struct ReconcileArgs {
    /// The partner's name, as registered (the window must be the partner's).
    #[arg(long)]
    partner: String,
    /// The settlement window (`sw_...`); by default the `window_id` column of the file.
    #[arg(long)]
    window: Option<String>,
    /// The partner's file (CSV with a header).
    file: PathBuf,
    /// Where to write the whole report as JSON (default: standard output after the summary).
    #[arg(long)]
    report: Option<PathBuf>,
    #[command(flatten)]
    remote: crate::remote::Remote,
}

/// Runs it: exit 0 if the files agree, 1 if they differ, 2 on an error.
pub fn run(args: ReconcileArgs) -> ExitCode {
    match reconcile(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn reconcile(args: &ReconcileArgs) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let theirs = read(&text).with_context(|| format!("reading {}", args.file.display()))?;
    let window = match &args.window {
        Some(w) => w.clone(),
        None => window_of(&text).context("the file has no window_id column or no item: give --window")?,
    };
    if !window.starts_with("sw_") || !window[3..].bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!("{window:?} is not a settlement window id (sw_...)");
    }
    let mut client = args.remote.connect()?;
    let w = crate::remote::expect_ok(
        client.send("GET", &format!("/v1/admin/settlement-windows/{window}"), "application/json", b"")?,
        "reading the window",
    )?;
    let partner_id = w["partner_id"].as_str().unwrap_or_default().to_string();
    let p = crate::remote::expect_ok(
        client.send("GET", &format!("/v1/admin/partners/{partner_id}"), "application/json", b"")?,
        "reading the partner",
    )?;
    if p["name"].as_str() != Some(args.partner.as_str()) {
        anyhow::bail!("window {window} is partner {}'s, not {}'s", p["name"].as_str().unwrap_or("?"), args.partner);
    }
    let ours =
        client.send("GET", &format!("/v1/admin/settlement-windows/{window}/items.csv"), "application/json", b"")?;
    if ours.status != 200 {
        crate::remote::expect_ok(ours, "reading Kasa's file")?;
        unreachable!("expect_ok fails on a status that is not 2xx");
    }
    let ours = read(std::str::from_utf8(&ours.body).context("Kasa's file is UTF-8")?).context("reading Kasa's file")?;
    let report = compare(&ours, &theirs);
    println!("{}", report.summary());
    let mut json = serde_json::to_value(&report)?;
    json["window_id"] = window.into();
    json["partner"] = args.partner.clone().into();
    match &args.report {
        Some(path) => std::fs::write(path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?,
        None if !report.agrees() => println!("{}", serde_json::to_string_pretty(&json)?),
        None => {}
    }
    Ok(report.agrees())
}

/// The `window_id` of a settlement file's first item.
fn window_of(text: &str) -> Option<String> {
    let mut lines = text.lines();
    let column = lines.next()?.split(',').position(|h| h.trim() == "window_id")?;
    lines.next()?.split(',').nth(column).map(|w| w.trim().to_string())
}
