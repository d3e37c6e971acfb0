//! Webhook signatures, signed as Stripe signs its webhooks:
//!
//! ```text
//! Kasa-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
//! ```
//!
//! [`sign`] makes the header for a delivery (with one `v1` per secret of the endpoint: two
//! while a rotated secret is still valid). [`Verifier`] checks one as a receiver should:
//! a `v1` that matches one of its secrets over the exact raw body (compared in constant time),
//! a timestamp within [`TOLERANCE_SECONDS`] of its clock, and a signature it has not accepted
//! before (a captured delivery sent again within the tolerance is a replay). `docs/webhooks.md`
//! shows the same check in other languages.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Kasa-Signature";
/// How far a delivery's timestamp may be from the receiver's clock: 5 minutes.
pub const TOLERANCE_SECONDS: u64 = 300;
/// The longest header a verifier reads (a timestamp and a few signatures).
const HEADER_BYTES_MAX: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Kasa-Signature` header of a delivery of `body` at `timestamp` (Unix seconds), with one
/// `v1` per secret, the newest first.
pub fn sign(secrets: &[&[u8]], timestamp: u64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let tag = mac(secret, timestamp, body).finalize().into_bytes();
        header.push_str(",v1=");
        header.push_str(&kasa_engine::hex(&tag));
    }
    header
}

/// Why a delivery was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is missing parts or is not `t=...,v1=...`.
    #[error("the signature header is malformed")]
    Malformed,
    /// No `v1` matches any secret: forged, or the body was changed.
    #[error("no signature matches")]
    NoMatch,
    /// The timestamp is more than the tolerance away from the receiver's clock.
    #[error("the delivery is {seconds} s away from this clock, more than the tolerance")]
    OutsideTolerance {
        /// How far.
        seconds: u64,
    },
    /// This exact signed delivery was accepted before.
    #[error("the delivery was accepted before: a replay")]
    Replayed,
}

/// A receiver's check of deliveries. See the module documentation.
pub struct Verifier {
    secrets: Vec<Vec<u8>>,
    tolerance: u64,
    /// Accepted signatures (timestamp, tag) until they leave the tolerance.
    accepted: BTreeMap<(u64, Vec<u8>), ()>,
}

impl Verifier {
    /// A verifier for an endpoint's secrets (two while one is being rotated out).
    pub fn new(secrets: Vec<Vec<u8>>) -> Verifier {
        Verifier { secrets, tolerance: TOLERANCE_SECONDS, accepted: BTreeMap::new() }
    }

    /// Checks a delivery of `body` with `header`, at `now` (Unix seconds).
    pub fn verify(&mut self, header: &str, body: &[u8], now: u64) -> Result<(), VerifyError> {
        if header.len() > HEADER_BYTES_MAX {
            return Err(VerifyError::Malformed);
        }
        let mut timestamp = None;
        let mut tags = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) if timestamp.is_none() && !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                    timestamp = Some(t.parse::<u64>().map_err(|_| VerifyError::Malformed)?)
                }
                Some(("v1", v)) => tags.push(decode_hex(v).ok_or(VerifyError::Malformed)?),
                // Other schemes (a future v2) are skipped, as Stripe's clients do.
                Some((scheme, _)) if scheme != "t" => {}
                _ => return Err(VerifyError::Malformed),
            }
        }
        let (Some(timestamp), false) = (timestamp, tags.is_empty()) else { return Err(VerifyError::Malformed) };
        let matched = tags
            .iter()
            .find(|tag| self.secrets.iter().any(|secret| mac(secret, timestamp, body).verify_slice(tag).is_ok()));
        let Some(tag) = matched else { return Err(VerifyError::NoMatch) };
        let seconds = now.abs_diff(timestamp);
        if seconds > self.tolerance {
            return Err(VerifyError::OutsideTolerance { seconds });
        }
        // Forget what can no longer pass the tolerance, then refuse a second acceptance.
        let oldest = now.saturating_sub(self.tolerance);
        self.accepted.retain(|(t, _), ()| *t >= oldest);
        if self.accepted.insert((timestamp, tag.clone()), ()).is_some() {
            return Err(VerifyError::Replayed);
        }
        Ok(())
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded","data":{"id":"pay_1"}}"#;

    #[test]
    fn the_mac_is_hmac_sha256() {
        // The primitive against RFC 4231, test case 2; then the header is that MAC over
        // "<t>.<body>".
        let mut m = HmacSha256::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            kasa_engine::hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let header = sign(&[b"whsec_test"], 1, b"{}");
        let mut direct = HmacSha256::new_from_slice(b"whsec_test").unwrap();
        direct.update(b"1.{}");
        assert_eq!(header, format!("t=1,v1={}", kasa_engine::hex(&direct.finalize().into_bytes())));
    }

    #[test]
    fn a_signed_delivery_is_accepted_once() {
        let mut verifier = Verifier::new(vec![b"whsec_a".to_vec()]);
        let header = sign(&[b"whsec_a"], NOW, BODY);
        assert_eq!(verifier.verify(&header, BODY, NOW + 3), Ok(()));
        assert_eq!(verifier.verify(&header, BODY, NOW + 4), Err(VerifyError::Replayed), "the same delivery again");
        // A new delivery of the same event (a retry) has a new timestamp: accepted.
        let retry = sign(&[b"whsec_a"], NOW + 60, BODY);
        assert_eq!(verifier.verify(&retry, BODY, NOW + 61), Ok(()));
    }

    #[test]
    fn forged_deliveries_are_refused() {
        let mut verifier = Verifier::new(vec![b"whsec_a".to_vec()]);
        let header = sign(&[b"whsec_a"], NOW, BODY);
        let tampered = br#"{"id":"evt_1","type":"payment.succeeded","data":{"id":"pay_2"}}"#;
        assert_eq!(verifier.verify(&header, tampered, NOW), Err(VerifyError::NoMatch), "another body");
        let moved = header.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 1), 1);
        assert_eq!(verifier.verify(&moved, BODY, NOW), Err(VerifyError::NoMatch), "another timestamp");
        let other_secret = sign(&[b"whsec_b"], NOW, BODY);
        assert_eq!(verifier.verify(&other_secret, BODY, NOW), Err(VerifyError::NoMatch), "another secret");
        for malformed in [
            "",
            "t=1",
            &format!("v1={}", "0".repeat(64)),
            &format!("t=x,v1={}", "0".repeat(64)),
            &format!("t={NOW},v1=zz"),
            &format!("t={NOW},t={NOW},v1={}", "0".repeat(64)),
            &"v1=0,".repeat(200),
        ] {
            assert_eq!(verifier.verify(malformed, BODY, NOW), Err(VerifyError::Malformed), "{malformed}");
        }
    }

    #[test]
    fn stale_and_future_deliveries_are_refused() {
        let mut verifier = Verifier::new(vec![b"whsec_a".to_vec()]);
        let old = sign(&[b"whsec_a"], NOW - TOLERANCE_SECONDS - 1, BODY);
        assert_eq!(verifier.verify(&old, BODY, NOW), Err(VerifyError::OutsideTolerance { seconds: 301 }));
        let future = sign(&[b"whsec_a"], NOW + TOLERANCE_SECONDS + 10, BODY);
        assert_eq!(verifier.verify(&future, BODY, NOW), Err(VerifyError::OutsideTolerance { seconds: 310 }));
        let edge = sign(&[b"whsec_a"], NOW - TOLERANCE_SECONDS, BODY);
        assert_eq!(verifier.verify(&edge, BODY, NOW), Ok(()));
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        // Kasa signs with the new and the old secret while the old one is still valid.
        let header = sign(&[b"whsec_new", b"whsec_old"], NOW, BODY);
        assert_eq!(Verifier::new(vec![b"whsec_old".to_vec()]).verify(&header, BODY, NOW), Ok(()));
        assert_eq!(Verifier::new(vec![b"whsec_new".to_vec()]).verify(&header, BODY, NOW), Ok(()));
        assert_eq!(Verifier::new(vec![b"whsec_gone".to_vec()]).verify(&header, BODY, NOW), Err(VerifyError::NoMatch));
        // Unknown schemes are skipped.
        let with_v2 = format!("{header},v2=abc");
        assert_eq!(Verifier::new(vec![b"whsec_new".to_vec()]).verify(&with_v2, BODY, NOW), Ok(()));
    }
}
