//! The library half of the `kasa` package: what the binary and its end-to-end tests share.
//! Today that is the minimal HTTP client that the benchmark and the tests use to talk to a
//! real `kasa serve`.

pub mod client;

/// Parses 64 hex digits into 32 bytes (the bench secret shared by `kasa bench wallet` and the
/// server it seeds).
pub fn parse_hex32(hex: &str) -> anyhow::Result<[u8; 32]> {
    use anyhow::Context;
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<_>>()
        .context("KASA_BENCH_SECRET must be 64 hex digits")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("KASA_BENCH_SECRET must be 64 hex digits"))
}
