//! PIN hashing with Argon2id (OWASP's parameters: 19 MiB, 2 iterations, 1 lane) and a
//! server-side pepper, off the async threads and never on the sequencer: each hash takes tens
//! of milliseconds of CPU, so it runs on tokio's blocking pool, at most
//! [`PIN_HASHES_IN_FLIGHT_MAX`] at a time, so that a flood of logins cannot starve the rest of
//! the server. Also session tokens: 256 random bits, stored only as their BLAKE3 hash.

use crate::problem::Problem;
use crate::Secret;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// PIN hashes computed at once: one per core of the 2-core machine; the rest wait.
pub const PIN_HASHES_IN_FLIGHT_MAX: usize = 2;
/// Argon2id memory in KiB (OWASP: 19 MiB).
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id iterations (OWASP: 2).
const ARGON2_ITERATIONS: u32 = 2;
/// Bytes of random salt per hash.
const SALT_BYTES: usize = 16;

/// Hashes and checks PINs. Cheap to clone.
#[derive(Clone)]
pub struct PinHasher {
    pepper: Arc<Vec<u8>>,
    permits: Arc<Semaphore>,
    /// A hash of a PIN nobody knows, checked when a phone number has no user, so that the
    /// answer takes as long as for a real user and does not tell whether the number is
    /// registered.
    decoy: Arc<String>,
}

impl PinHasher {
    /// A hasher with this pepper (at least 16 bytes).
    pub fn new(pepper: &Secret) -> Self {
        let pepper = Arc::new(pepper.expose().as_bytes().to_vec());
        let decoy = hash_blocking(&pepper, "decoy-pin-no-one-has").expect("argon2 with fixed parameters hashes");
        PinHasher { pepper, permits: Arc::new(Semaphore::new(PIN_HASHES_IN_FLIGHT_MAX)), decoy: Arc::new(decoy) }
    }

    /// Hashes a PIN into a PHC string.
    pub async fn hash(&self, pin: String) -> Result<String, Problem> {
        let _permit = self.permits.acquire().await.map_err(|_| Problem::unavailable())?;
        let pepper = self.pepper.clone();
        tokio::task::spawn_blocking(move || hash_blocking(&pepper, &pin))
            .await
            .map_err(|_| Problem::unavailable())?
            .ok_or_else(Problem::unavailable)
    }

    /// Whether `pin` matches `hash`; with no hash, checks the decoy (and answers false).
    pub async fn verify(&self, pin: String, hash: Option<String>) -> Result<bool, Problem> {
        let _permit = self.permits.acquire().await.map_err(|_| Problem::unavailable())?;
        let pepper = self.pepper.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.as_str().to_string());
        let matched = tokio::task::spawn_blocking(move || {
            let argon = argon2(&pepper)?;
            let parsed = PasswordHash::new(&hash).ok()?;
            Some(argon.verify_password(pin.as_bytes(), &parsed).is_ok())
        })
        .await
        .map_err(|_| Problem::unavailable())?
        .unwrap_or(false);
        Ok(known && matched)
    }
}

fn argon2(pepper: &[u8]) -> Option<Argon2<'_>> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, 1, None).ok()?;
    Argon2::new_with_secret(pepper, Algorithm::Argon2id, Version::V0x13, params).ok()
}

fn hash_blocking(pepper: &[u8], pin: &str) -> Option<String> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::getrandom(&mut salt).ok()?;
    let salt = SaltString::encode_b64(&salt).ok()?;
    Some(argon2(pepper)?.hash_password(pin.as_bytes(), &salt).ok()?.to_string())
}

/// Draws a new session token: `kasa_s_` and 64 hex digits (256 random bits).
pub fn new_session_token() -> Result<Secret, Problem> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|_| Problem::unavailable())?;
    Ok(Secret::new(format!("kasa_s_{}", kasa_engine::hex(&bytes))))
}

/// The hash under which a token is stored.
pub fn token_hash(token: &[u8]) -> [u8; 32] {
    *blake3::hash(token).as_bytes()
}
