//! `kasa merchants import FILE --partner NAME`: uploads a partner's merchant file (CSV or
//! NDJSON) to a running server (`POST /v1/admin/merchant-imports`), follows the job with a
//! progress bar on stderr, writes the per-row report (`--report FILE`, NDJSON) and ends with
//! one line: `created N, merged N, unchanged N, refused N`. `--dry-run` prints the report
//! (or writes it) and changes nothing.
//!
//! The job runs in the server: killing this command stops nothing, and running it again
//! with the same file follows the same job (or, after the server was killed, resumes it
//! from its next row). See `docs/merchant-import.md`.

use anyhow::{bail, Context};
use kasa::client::Client;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Merchants.
#[derive(clap::Subcommand)]
pub enum MerchantsCommand {
    /// Import a partner's merchant network from a file (CSV with a header row, or NDJSON).
    Import(ImportArgs),
}

/// Arguments of `kasa merchants import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The file: CSV (`partner_merchant_id,business_name,display_name,brn,mcc,country,city,
    /// store_id,store_name,qr_payload`) or NDJSON (`.ndjson`, `.jsonl`).
    file: PathBuf,
    /// The partner network's name (`alipay`).
    #[arg(long)]
    partner: String,
    /// The server, with the operator key in `KASA_OPERATOR_KEY`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Where to write the per-row report (NDJSON).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Print every row's result and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// How often the job's progress is asked for.
const POLL: Duration = Duration::from_millis(100);
/// How long a response may take (a dry run of a million rows answers in one).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(600);

/// The totals of an import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Merchants created.
    pub created: u64,
    /// Rows merged.
    pub merged: u64,
    /// Rows already there.
    pub unchanged: u64,
    /// Rows refused.
    pub refused: u64,
}

impl Totals {
    fn of(json: &serde_json::Value) -> Totals {
        let n = |name: &str| json[name].as_u64().unwrap_or(0);
        Totals { created: n("created"), merged: n("merged"), unchanged: n("unchanged"), refused: n("refused") }
    }
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "created {}, merged {}, unchanged {}, refused {}",
            self.created, self.merged, self.unchanged, self.refused
        )
    }
}

/// Runs `kasa merchants import`.
pub fn run(command: MerchantsCommand) -> anyhow::Result<()> {
    let MerchantsCommand::Import(args) = command;
    kasa_core::merchant::PartnerName::new(args.partner.as_str()).map_err(|e| anyhow::anyhow!("--partner: {e}"))?;
    let key = std::env::var("KASA_OPERATOR_KEY").context("set KASA_OPERATOR_KEY to the server's operator key")?;
    let body = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let ndjson = args.file.extension().is_some_and(|e| e == "ndjson" || e == "jsonl");
    let upload = Upload { addr: args.addr, key: &key, partner: &args.partner, body: &body, ndjson };
    let show = std::io::stderr().is_terminal();
    let (totals, report) = if args.dry_run { upload.dry_run()? } else { upload.import(show)? };
    match (&args.report, args.dry_run) {
        (Some(path), _) => write_report(path, &report)?,
        (None, true) => std::io::stdout().write_all(&report)?,
        (None, false) => {}
    }
    println!("{totals}");
    Ok(())
}

fn write_report(path: &Path, report: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, report).with_context(|| format!("writing the report to {}", path.display()))
}

/// A file to send to a server.
pub struct Upload<'a> {
    /// The server.
    pub addr: SocketAddr,
    /// The operator key.
    pub key: &'a str,
    /// The partner.
    pub partner: &'a str,
    /// The file.
    pub body: &'a [u8],
    /// NDJSON rather than CSV.
    pub ndjson: bool,
}

impl Upload<'_> {
    fn send(&self, client: &mut Client, dry_run: bool) -> anyhow::Result<serde_json::Value> {
        let content_type = if self.ndjson { "application/x-ndjson" } else { "text/csv" };
        let path = format!("/v1/admin/merchant-imports?partner={}&dry_run={dry_run}", self.partner);
        let r = client.send("POST", &path, content_type, self.body)?;
        if !matches!(r.status, 200 | 202) {
            bail!("the server refused the file: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        Ok(r.json())
    }

    fn client(&self) -> anyhow::Result<Client> {
        let client = Client::connect(self.addr, self.key)?;
        client.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
        Ok(client)
    }

    /// A dry run: the totals and the report (NDJSON).
    pub fn dry_run(&self) -> anyhow::Result<(Totals, Vec<u8>)> {
        let answer = self.send(&mut self.client()?, true)?;
        let mut report = Vec::new();
        for row in answer["rows"].as_array().into_iter().flatten() {
            writeln!(report, "{row}")?;
        }
        Ok((Totals::of(&answer), report))
    }

    /// Uploads the file, follows the job to its end (drawing a progress bar if `show`), and
    /// fetches the report.
    pub fn import(&self, show: bool) -> anyhow::Result<(Totals, Vec<u8>)> {
        let mut client = self.client()?;
        let mut job = self.send(&mut client, false)?;
        let id = job["id"].as_str().context("the job's id")?.to_string();
        let mut bar = Bar::new(show);
        loop {
            bar.draw(job["rows_done"].as_u64().unwrap_or(0), job["rows_total"].as_u64().unwrap_or(0));
            match job["status"].as_str() {
                Some("done") => break,
                Some("running") => {}
                _ => bail!(
                    "the import {id} stopped at row {}: {}; run the same command again to resume it",
                    job["rows_done"],
                    job["error"].as_str().unwrap_or("the server no longer drives it")
                ),
            }
            std::thread::sleep(POLL);
            let r = client.send("GET", &format!("/v1/admin/merchant-imports/{id}"), "application/json", b"")?;
            if r.status != 200 {
                bail!("following {id}: {} {}", r.status, String::from_utf8_lossy(&r.body));
            }
            job = r.json();
        }
        bar.finish();
        let r = client.send("GET", &format!("/v1/admin/merchant-imports/{id}/report"), "application/json", b"")?;
        if r.status != 200 {
            bail!("the report of {id}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        Ok((Totals::of(&job), r.body))
    }
}

/// A progress bar on stderr, drawn in place on a terminal, else a line every 5 seconds.
struct Bar {
    terminal: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Bar {
    fn new(terminal: bool) -> Bar {
        Bar { terminal, started: Instant::now(), last: None }
    }

    fn draw(&mut self, done: u64, total: u64) {
        const WIDTH: u64 = 40;
        let every = if self.terminal { Duration::ZERO } else { Duration::from_secs(5) };
        if self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let filled = (done * WIDTH).checked_div(total).unwrap_or(0);
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '.' }).collect();
        let end = if self.terminal { "\r" } else { "\n" };
        eprint!("[{bar}] {done}/{total} rows ({rate:.0}/s){end}");
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
