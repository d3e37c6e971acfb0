//! The `kasa` command: `serve` runs the engine and the HTTP API on a data directory,
//! `verify` checks a data directory offline, `bench` measures a real server over loopback,
//! `qr` decodes and encodes EMV QR payloads, `fx` checks rates files, quotes from them and loads
//! them, `reconcile` compares a partner's settlement file with Kasa's, `merchants import` merges
//! a partner's merchant network into a running server, `read-model rebuild` makes the
//! PostgreSQL read model again from a data directory.

mod bench;
mod bench_import;
mod bench_partner;
mod bench_payments;
mod bench_qr;
mod bench_read_model;
mod bench_scale;
mod follow;
mod fx;
mod import;
mod qr;
mod read_model;
mod reconcile;
mod remote;
mod serve;
mod verify;

/// The version and the commit it was built from, for `kasa --version` and the logs.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("KASA_COMMIT"), ")");

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Kasa: a mobile payments and wallet platform on a durable double-entry ledger.
#[derive(Parser)]
#[command(name = "kasa", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the engine and the HTTP API.
    Serve(serve::ServeArgs),
    /// Check a data directory offline: every frame's checksum, the hash chain, a full replay
    /// and the ledger invariants. Exits non-zero on any problem.
    Verify {
        /// The data directory.
        #[arg(long, default_value = "./kasa-data")]
        data: PathBuf,
    },
    /// Print the OpenAPI 3.1 document of the API.
    Openapi,
    /// Benchmarks against a real server over loopback.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// EMV merchant-presented QR codes: decode, encode, bench.
    #[command(subcommand)]
    Qr(qr::QrCommand),
    /// Foreign exchange: check a rates file, quote from it (offline), load it into a server.
    #[command(subcommand)]
    Fx(fx::FxCommand),
    /// Compare a partner's settlement file with Kasa's for its window (changes nothing).
    /// Exits 0 if they agree, 1 if they differ.
    Reconcile(reconcile::ReconcileArgs),
    /// Merchants: import a partner's merchant network into a running server.
    #[command(subcommand)]
    Merchants(import::MerchantsCommand),
    /// Promote a follower (`kasa serve --follow`) to primary: it stops following and takes
    /// writes. Make sure the old primary is stopped for good first: there is no fencing
    /// (docs/standby.md). Needs KASA_OPERATOR_KEY.
    Promote(remote::Remote),
    /// The PostgreSQL read model: rebuild it from a data directory (server stopped).
    #[command(subcommand)]
    ReadModel(read_model::ReadModelCommand),
}

/// `kasa promote --addr FOLLOWER`.
fn promote(remote: &remote::Remote) -> anyhow::Result<()> {
    let mut client = remote.connect()?;
    let response = client.send("POST", "/v1/admin/promote", "application/json", b"")?;
    let answer = remote::expect_ok(response, "promote")?;
    println!("{} is a primary, its journal going on from frame {}", remote.addr, answer["seq"]);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Serve(args) => serve::run(args),
        Commands::Verify { data } => verify::run(&data),
        Commands::Bench(command) => bench::run(command),
        Commands::Qr(command) => return qr::run(command),
        Commands::Fx(command) => return fx::run(command),
        Commands::Reconcile(args) => return reconcile::run(args),
        Commands::Merchants(command) => import::run(command),
        Commands::Promote(remote) => promote(&remote),
        Commands::ReadModel(command) => read_model::run(command),
        Commands::Openapi => {
            println!("{}", kasa_server::openapi::json());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
