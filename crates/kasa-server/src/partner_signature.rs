//! Signed partner requests, as Alipay+ signs them: the partner signs
//!
//! ```text
//! <METHOD> <path>
//! <Client-Id>.<Request-Time>.<body>
//! ```
//!
//! with its Ed25519 key and sends `Client-Id` (`ptn_3`), `Request-Time` (RFC 3339 with an
//! offset) and `Signature: algorithm=Ed25519,keyVersion=1,signature=<base64url>`. Kasa checks,
//! before anything else is read: the client is a partner, the key version is one of its live
//! keys, the signature verifies, the request time is within 5 minutes of Kasa's clock, and the
//! signature was not seen before (a replay). Kasa signs its answers the same way with its own
//! key, so the partner can check them (`Signature` on the response).
//!
//! The replay check remembers signatures for the skew window (twice 5 minutes) in memory: a
//! restart forgets them, but every partner request that changes anything is idempotent by its
//! `paymentRequestId` or `refundRequestId`, so a replay after a restart can only repeat an
//! answer, never a payment.

use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

/// How far a request's time may be from Kasa's: 5 minutes either way.
pub const SKEW_NANOS: u64 = 5 * 60 * 1_000_000_000;
/// The most signatures the replay check remembers; past it, requests are refused as
/// replays until the oldest age out (a flood, not a partner's traffic: 10,000 a second for
/// 10 minutes is 6 million).
pub const REMEMBERED_MAX: usize = 8_000_000;

/// The bytes a partner signs.
pub fn message(method: &str, path: &str, client_id: &str, request_time: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(method.len() + path.len() + client_id.len() + request_time.len() + body.len() + 4);
    m.extend_from_slice(method.as_bytes());
    m.push(b' ');
    m.extend_from_slice(path.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(client_id.as_bytes());
    m.push(b'.');
    m.extend_from_slice(request_time.as_bytes());
    m.push(b'.');
    m.extend_from_slice(body);
    m
}

/// Kasa's `Signature` header (key version 1) over a POST to `path`, as it signs its answers
/// to partners and its calls to them.
pub fn kasa_signature(signer: &Signer, path: &str, client_id: &str, time: &str, body: &[u8]) -> String {
    signer.header(1, &message("POST", path, client_id, time, body))
}

/// A `Signature` header's parts.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    /// `keyVersion`.
    pub key_version: u32,
    /// The 64 signature bytes.
    pub signature: [u8; 64],
}

/// Reads `algorithm=Ed25519,keyVersion=1,signature=<base64url or base64>`; `None` if it is
/// not that.
pub fn parse_header(value: &str) -> Option<SignatureHeader> {
    if value.len() > 256 {
        return None;
    }
    let (mut algorithm, mut version, mut signature) = (None, None, None);
    for part in value.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "algorithm" => algorithm = Some(v),
            "keyVersion" => version = v.parse::<u32>().ok(),
            "signature" => signature = decode_base64(v),
            _ => return None,
        }
    }
    if algorithm != Some("Ed25519") {
        return None;
    }
    let signature: [u8; 64] = signature?.try_into().ok()?;
    Some(SignatureHeader { key_version: version?, signature })
}

/// Standard or URL-safe base64, padded or not (URL-encoded padding `%3D` too, as some
/// Alipay+ clients send it).
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches("%3D").trim_end_matches('=');
    let engine = if text.contains(['-', '_']) {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD
    };
    engine.decode(text).ok()
}

/// URL-safe base64 without padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `signature` is `public_key`'s over `message`, by RFC 8032's strict rules (no
/// small-order keys, canonical encodings only), with `ed25519-dalek` (a third faster than
/// `ring`'s portable verification here: 36 µs against 46 µs).
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(public_key)
        .is_ok_and(|key| key.verify_strict(message, &Signature::from_bytes(signature)).is_ok())
}

/// An Ed25519 signing key from a 32-byte seed (Kasa's own, and partners' in tests and
/// benchmarks).
pub struct Signer(SigningKey);

impl Signer {
    /// The key of `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Signer {
        Signer(SigningKey::from_bytes(seed))
    }

    /// Its public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        ed25519_dalek::Signer::sign(&self.0, message).to_bytes()
    }

    /// The `Signature` header for `message` with key version `version`.
    pub fn header(&self, version: u32, message: &[u8]) -> String {
        format!("algorithm=Ed25519,keyVersion={version},signature={}", encode_base64(&self.sign(message)))
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

/// The most partner keys [`KeyCache`] holds; past it, it starts again empty (partners have a
/// few keys each, and a key missing from the cache is read from the state).
pub const CACHED_KEYS_MAX: usize = 4_096;

/// Partners' live public keys by (partner, key version), as read from the committed state, so
/// that a signed request does not take a trip to the sequencer before its command does. A
/// key version's public key never changes; what changes is whether it is live, and the only
/// way a key stops being live is a revocation, after whose commit the revoking route calls
/// [`KeyCache::forget_all`] before it answers. A key read from the state is kept only if no
/// revocation happened while it was being read (the generation did not move), so a key
/// revoked during the read is never cached. A request that found its key just before a
/// revocation committed may still pay after it, as it could when it read the key from the
/// state: the key is checked before the command, not in the same step.
#[derive(Debug, Default)]
pub struct KeyCache {
    inner: Mutex<CachedKeys>,
}

#[derive(Debug, Default)]
struct CachedKeys {
    /// Moves at every [`KeyCache::forget_all`].
    generation: u64,
    keys: HashMap<(u64, u32), [u8; 32]>,
}

impl KeyCache {
    /// The live key `version` of `partner_id` if it is cached; otherwise the generation to
    /// give [`KeyCache::keep`] with the key read from the state.
    pub fn get(&self, partner_id: u64, version: u32) -> Result<[u8; 32], u64> {
        let cached = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        cached.keys.get(&(partner_id, version)).copied().ok_or(cached.generation)
    }

    /// Keeps a live key read from the state, unless a revocation happened since `generation`.
    pub fn keep(&self, partner_id: u64, version: u32, key: [u8; 32], generation: u64) {
        let mut cached = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if cached.generation != generation {
            return;
        }
        if cached.keys.len() >= CACHED_KEYS_MAX {
            cached.keys.clear();
        }
        cached.keys.insert((partner_id, version), key);
    }

    /// Forgets every key: called after a revocation is committed, before it is answered.
    pub fn forget_all(&self) {
        let mut cached = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        cached.generation += 1;
        cached.keys.clear();
    }
}

/// Signatures seen recently: a request whose signature is here is a replay.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    signatures: HashSet<[u8; 32]>,
    /// (forget at, signature hash), oldest first.
    by_time: BTreeSet<(u64, [u8; 32])>,
}

impl ReplayGuard {
    /// Records `signature` seen at `now` (Kasa's clock), to be forgotten after the skew
    /// window; false if it was seen already, or if the guard is full.
    pub fn first_time(&self, signature: &[u8; 64], now: u64) -> bool {
        let hash = *blake3::hash(signature).as_bytes();
        let mut seen = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(&(at, old)) = seen.by_time.first() {
            if at > now {
                break;
            }
            seen.by_time.pop_first();
            seen.signatures.remove(&old);
        }
        if seen.signatures.len() >= REMEMBERED_MAX || !seen.signatures.insert(hash) {
            return false;
        }
        seen.by_time.insert((now.saturating_add(2 * SKEW_NANOS), hash));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_over_its_own_message_and_key() {
        let signer = Signer::from_seed(&[7; 32]);
        let m = message("POST", "/v1/partner/payments/pay", "ptn_1", "2026-11-30T12:00:00Z", b"{}");
        assert_eq!(
            m,
            b"POST /v1/partner/payments/pay\nptn_1.2026-11-30T12:00:00Z.{}".to_vec(),
            "the signed bytes are Alipay+'s layout"
        );
        let header = parse_header(&signer.header(1, &m)).unwrap();
        assert_eq!(header.key_version, 1);
        assert!(verify(&signer.public_key(), &m, &header.signature));
        let mut other = m.clone();
        other.push(b' ');
        assert!(!verify(&signer.public_key(), &other, &header.signature));
        assert!(!verify(&Signer::from_seed(&[8; 32]).public_key(), &m, &header.signature));
    }

    #[test]
    fn signatures_are_rfc_8032s() {
        // RFC 8032, section 7.1, test 1: the empty message.
        let hex = |s: &str| {
            (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>()
        };
        let seed: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").try_into().unwrap();
        let signer = Signer::from_seed(&seed);
        assert_eq!(
            signer.public_key().to_vec(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let expected = hex(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        );
        assert_eq!(signer.sign(b"").to_vec(), expected);
        assert!(verify(&signer.public_key(), b"", &expected.try_into().unwrap()));
        // A small-order public key (the identity) verifies nothing under the strict rules.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[0] = 1;
        assert!(!verify(&identity, b"anything", &forged));
    }

    #[test]
    fn a_header_is_exactly_its_three_parts() {
        let sig = encode_base64(&[1; 64]);
        assert!(parse_header(&format!("algorithm=Ed25519,keyVersion=2,signature={sig}")).is_some());
        assert!(parse_header(&format!("algorithm=RSA256,keyVersion=2,signature={sig}")).is_none());
        assert!(parse_header(&format!("algorithm=Ed25519,keyVersion=x,signature={sig}")).is_none());
        assert!(parse_header("algorithm=Ed25519,keyVersion=2,signature=AAAA").is_none());
        assert!(parse_header(&format!("algorithm=Ed25519,keyVersion=2,signature={sig},extra=1")).is_none());
        assert!(parse_header("").is_none());
    }

    #[test]
    fn a_key_read_while_a_revocation_happened_is_not_cached() {
        let cache = KeyCache::default();
        let generation = cache.get(1, 1).unwrap_err();
        cache.keep(1, 1, [7; 32], generation);
        assert_eq!(cache.get(1, 1), Ok([7; 32]));
        // A read that started before a revocation keeps nothing.
        let before = cache.get(1, 2).unwrap_err();
        cache.forget_all();
        assert_eq!(cache.get(1, 1), Err(before + 1), "a revocation forgets every key");
        cache.keep(1, 2, [8; 32], before);
        assert!(cache.get(1, 2).is_err());
    }

    #[test]
    fn a_signature_is_taken_once_within_the_window() {
        let guard = ReplayGuard::default();
        assert!(guard.first_time(&[1; 64], 1_000));
        assert!(!guard.first_time(&[1; 64], 2_000));
        assert!(guard.first_time(&[2; 64], 2_000));
        // Forgotten once the skew window passed (by then its request time is too old anyway).
        assert!(guard.first_time(&[1; 64], 1_000 + 2 * SKEW_NANOS));
    }
}
