//! What the commands that talk to a running server share: `--addr`, and the operator key from
//! `KASA_OPERATOR_KEY` (never from an argument, which other users of the machine can see).

use anyhow::Context;
use kasa::client::Client;
use std::net::SocketAddr;

/// Where the server listens, and how to reach it.
#[derive(clap::Args, Clone, Debug)]
pub struct Remote {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:7300")]
    pub addr: SocketAddr,
}

impl Remote {
    /// A connection with the operator key of `KASA_OPERATOR_KEY`.
    pub fn connect(&self) -> anyhow::Result<Client> {
        let key = std::env::var("KASA_OPERATOR_KEY")
            .context("set KASA_OPERATOR_KEY to the server's operator key (its data directory's operator.key)")?;
        Client::connect(self.addr, &key).with_context(|| format!("connecting to kasa serve at {}", self.addr))
    }
}

/// The body of a successful response as JSON, or an error with the server's problem.
pub fn expect_ok(response: kasa::client::Response, what: &str) -> anyhow::Result<serde_json::Value> {
    if (200..300).contains(&response.status) {
        return Ok(response.json());
    }
    let problem = response.json();
    anyhow::bail!(
        "{what}: the server answered {} {}: {}",
        response.status,
        problem["code"].as_str().unwrap_or("?"),
        problem["detail"].as_str().unwrap_or("")
    )
}
