//! `kasa fx`: check an operator's rates file and compute quotes from it, offline, with the
//! arithmetic the server uses (`kasa_core::fx`), and load it into a running server
//! (`kasa fx load`, through `POST /v1/admin/fx/rates`, 500 rates a request).

use anyhow::Context;
use kasa_core::fx::{self, Rates, Side};
use kasa_core::money::{Amount, Currency};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// The largest rates file read: its row bound times its line bound, and the header.
const FILE_BYTES_MAX: u64 = (fx::CSV_ROWS_MAX as u64 + 1) * (fx::CSV_LINE_BYTES_MAX as u64 + 1);

/// Foreign exchange rates and quotes.
#[derive(clap::Subcommand)]
pub enum FxCommand {
    /// Check a rates file (`pair,mid,spread_bps,valid_from`); print how many rates it holds,
    /// or the first bad line's number and why. Exits 1 if refused.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Quote from a rates file: one JSON object with both amounts in minor units and the
    /// customer's rate. Exits 1 if refused.
    Quote {
        /// The rates file.
        #[arg(long)]
        rates: PathBuf,
        /// The currency the customer sells (ISO 4217 code).
        #[arg(long)]
        sell: String,
        /// The currency the customer buys.
        #[arg(long)]
        buy: String,
        /// Minor units sold (the amount bought follows, rounded down).
        #[arg(long, conflicts_with = "buy_amount", required_unless_present = "buy_amount")]
        sell_amount: Option<u64>,
        /// Minor units bought (the amount sold follows, rounded up).
        #[arg(long)]
        buy_amount: Option<u64>,
        /// The time of the quote, in seconds since 1970 (default: now).
        #[arg(long)]
        at: Option<u64>,
    },
    /// Load a rates file into a running server (the operator key from KASA_OPERATOR_KEY): the
    /// whole file is checked first, then sent 500 rates a request. Prints one line:
    /// `loaded N new, M replaced`.
    Load {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        remote: crate::remote::Remote,
    },
}

/// Runs a `kasa fx` command and returns the process's exit status.
pub fn run(command: FxCommand) -> ExitCode {
    let result = match command {
        FxCommand::Check { file } => check(&file),
        FxCommand::Quote { rates, sell, buy, sell_amount, buy_amount, at } => {
            let side = match (sell_amount, buy_amount) {
                (Some(a), _) => Side::Sell(Amount::new(a)),
                (None, Some(a)) => Side::Buy(Amount::new(a)),
                (None, None) => unreachable!("clap requires one of the amounts"),
            };
            quote(&rates, &sell, &buy, side, at)
        }
        FxCommand::Load { file, remote } => load(&file, &remote),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

fn read_rates(file: &PathBuf) -> anyhow::Result<Result<Vec<fx::Rate>, fx::FxError>> {
    let mut text = String::new();
    std::fs::File::open(file)
        .with_context(|| format!("opening {}", file.display()))?
        .take(FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {} (UTF-8 text)", file.display()))?;
    if text.len() as u64 > FILE_BYTES_MAX {
        anyhow::bail!("{} is over {FILE_BYTES_MAX} bytes: no rates file is that long", file.display());
    }
    Ok(fx::parse_rates_csv(&text))
}

/// A refusal as one JSON object: its code, its line if it has one, and its message.
fn refusal(error: &fx::FxError) -> serde_json::Value {
    serde_json::json!({"valid": false, "reason": error.code(), "line": error.line(), "message": error.to_string()})
}

fn check(file: &PathBuf) -> anyhow::Result<ExitCode> {
    match read_rates(file)? {
        Ok(rates) => {
            println!("{}", serde_json::json!({"valid": true, "rates": rates.len()}));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}", refusal(&e));
            Ok(ExitCode::FAILURE)
        }
    }
}

fn quote(file: &PathBuf, sell: &str, buy: &str, side: Side, at: Option<u64>) -> anyhow::Result<ExitCode> {
    let currency = |code: &str| Currency::from_code(code).with_context(|| format!("{code:?} is no ISO 4217 currency"));
    let (sell, buy) = (currency(sell)?, currency(buy)?);
    let loaded = match read_rates(file)? {
        Ok(loaded) => loaded,
        Err(e) => {
            println!("{}", refusal(&e));
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut rates = Rates::default();
    for rate in loaded {
        if let Err(e) = rates.insert(rate) {
            println!("{}", refusal(&e));
            return Ok(ExitCode::FAILURE);
        }
    }
    let seconds = match at {
        Some(seconds) => seconds,
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).context("the clock")?.as_secs(),
    };
    let now = seconds.saturating_mul(1_000_000_000);
    match fx::quote(&rates, sell, buy, side, now) {
        Ok(q) => {
            println!(
                "{}",
                serde_json::json!({
                    "valid": true,
                    "sell_currency": sell.code(),
                    "buy_currency": buy.code(),
                    "rate": q.customer_rate.to_string(),
                    "sell_amount": q.sell_amount.minor().to_string(),
                    "buy_amount": q.buy_amount.minor().to_string(),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{}", refusal(&e));
            Ok(ExitCode::FAILURE)
        }
    }
}

fn load(file: &PathBuf, remote: &crate::remote::Remote) -> anyhow::Result<ExitCode> {
    let rates = match read_rates(file)? {
        Ok(rates) => rates,
        Err(e) => {
            println!("{}", refusal(&e));
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut client = remote.connect()?;
    let (mut new, mut sent) = (0u64, 0usize);
    for chunk in rates.chunks(kasa_core::partner::RATES_PER_COMMAND_MAX) {
        let rates: Vec<serde_json::Value> = chunk
            .iter()
            .map(|r| {
                serde_json::json!({
                    "pair": format!("{}/{}", r.base(), r.quote()),
                    "mid": r.mid().to_string(),
                    "spread_bps": r.spread_bps(),
                    "valid_from": kasa_server::json::Rfc3339(r.valid_from()).to_string(),
                })
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "rates": rates }))?;
        let answer = client.send("POST", "/v1/admin/fx/rates", "application/json", &body)?;
        let answer =
            crate::remote::expect_ok(answer, &format!("loading rates {} to {}", sent + 1, sent + chunk.len()))?;
        new += answer["loaded"].as_u64().unwrap_or(0);
        sent += chunk.len();
    }
    println!("loaded {new} new, {} replaced", sent as u64 - new);
    Ok(ExitCode::SUCCESS)
}
