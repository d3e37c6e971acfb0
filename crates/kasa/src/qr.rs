//! `kasa qr`: decode an EMV merchant-presented QR payload to JSON, encode one from JSON
//! fields, and measure the decoder. The codec is `kasa_core::qr`; this file only reads
//! arguments and standard input and prints.

use anyhow::{bail, Context};
use kasa_core::qr::{self, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The largest JSON input `kasa qr encode` reads: a payload of 4,096 characters written out
/// as JSON with escapes fits in a few times that.
const INPUT_BYTES_MAX: u64 = 64 * 1024;

/// The test data's payloads, for `kasa qr bench`.
const TEST_DATA: &str = include_str!("../../kasa-core/tests/data/emv_qr.tsv");

/// EMV merchant-presented QR codes.
#[derive(clap::Subcommand)]
pub enum QrCommand {
    /// Decode and check a payload; print one JSON object. Exits 1 if the payload is refused.
    Decode {
        /// The payload, as scanned.
        payload: String,
    },
    /// Build a payload from a JSON object of fields (like `decode`'s `fields`: two-digit ids
    /// to strings, or to objects of two-digit ids for templates), given as the argument or
    /// on standard input. Lengths and the checksum (63) are computed. Exits 1 if refused.
    Encode {
        /// The fields as JSON; read from standard input when absent.
        json: Option<String>,
    },
    /// Decode the test data's valid payloads in a loop on one thread and print payloads/s.
    Bench {
        /// How long to run, in seconds.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
}

/// Runs a `kasa qr` command and returns the process's exit status.
pub fn run(command: QrCommand) -> ExitCode {
    let result = match command {
        QrCommand::Decode { payload } => Ok(decode(&payload)),
        QrCommand::Encode { json } => encode(json),
        QrCommand::Bench { seconds } => bench(Duration::from_secs(seconds.clamp(1, 600))).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

use kasa_server::routes::qr::{describe, refusal};

fn decode(text: &str) -> ExitCode {
    match qr::decode(text) {
        Ok(payload) => {
            println!("{}", describe(&payload));
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("{}", refusal(error));
            ExitCode::FAILURE
        }
    }
}

/// The fields of a JSON object of two-digit ids; a whole `decode` output is taken too (its
/// `fields`).
fn fields_of(json: &serde_json::Value) -> anyhow::Result<BTreeMap<u8, Value>> {
    let Some(mut object) = json.as_object() else { bail!("expected a JSON object of fields") };
    if let Some(fields) = object.get("fields").and_then(|fields| fields.as_object()) {
        object = fields;
    }
    let id = |key: &str| -> anyhow::Result<u8> {
        match key.as_bytes() {
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Ok((a - b'0') * 10 + (b - b'0')),
            _ => bail!("expected a two-digit id, found {key:?}"),
        }
    };
    let text = |key: &str, value: &serde_json::Value| -> anyhow::Result<String> {
        value.as_str().map(str::to_string).with_context(|| format!("expected a string or an object at {key}"))
    };
    let mut fields = BTreeMap::new();
    for (key, value) in object {
        let value = match value.as_object() {
            Some(subs) => {
                Value::Template(subs.iter().map(|(k, v)| Ok((id(k)?, text(k, v)?))).collect::<anyhow::Result<_>>()?)
            }
            None => Value::Text(text(key, value)?),
        };
        fields.insert(id(key)?, value);
    }
    Ok(fields)
}

fn encode(json: Option<String>) -> anyhow::Result<ExitCode> {
    let json = match json {
        Some(json) => json,
        None => {
            let mut input = String::new();
            std::io::stdin().take(INPUT_BYTES_MAX + 1).read_to_string(&mut input).context("reading standard input")?;
            if input.len() as u64 > INPUT_BYTES_MAX {
                bail!("expected at most {INPUT_BYTES_MAX} bytes of JSON, found more");
            }
            input
        }
    };
    let fields = fields_of(&serde_json::from_str(&json).context("reading the fields as JSON")?)?;
    Ok(match qr::encode(&fields) {
        Ok(payload) => {
            println!("{payload}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("{}", refusal(error));
            ExitCode::FAILURE
        }
    })
}

fn bench(duration: Duration) -> anyhow::Result<()> {
    let payloads: Vec<&str> = TEST_DATA
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').next())
        .filter(|payload| qr::decode(payload).is_ok())
        .collect();
    if payloads.is_empty() {
        bail!("expected valid payloads in the test data, found none");
    }
    let bytes: usize = payloads.iter().map(|payload| payload.len()).sum();
    let started = Instant::now();
    let (mut decoded, mut fields) = (0u64, 0usize);
    while started.elapsed() < duration {
        // Rounds of 1,000 passes, so the clock is read once per some 50,000 decodes.
        for _ in 0..1_000 {
            for payload in &payloads {
                let payload = qr::decode(std::hint::black_box(payload)).expect("decoded once already");
                fields += payload.fields().len();
                decoded += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "decoded {decoded} payloads ({} distinct, {:.0} bytes on average, {fields} fields) in {seconds:.2} s: {:.0} payloads/s on one thread",
        payloads.len(),
        bytes as f64 / payloads.len() as f64,
        decoded as f64 / seconds,
    );
    Ok(())
}
