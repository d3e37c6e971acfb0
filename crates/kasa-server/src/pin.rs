//! PINs and session tokens.
//!
//! PINs are hashed with Argon2id (OWASP's parameters: 19 MiB, 2 iterations, 1 lane) and a
//! server-side pepper, off the async threads and never on the sequencer: each hash takes tens
//! of milliseconds of CPU, so at most [`PIN_HASHES_RUNNING_MAX`] run at a time and at most
//! [`PIN_HASHES_WAITING_MAX`] wait; beyond that a request is answered `503 busy` at once
//! rather than queue up, so a flood of logins cannot hold every request slot of the server
//! or starve users who are already logged in (they need no hash).
//!
//! A PIN must not be easy to guess: six digits, not one digit repeated, not a run up or down,
//! not one of the most common PINs. Session tokens are 256 random bits, stored only as their
//! BLAKE3 hash.

use crate::problem::Problem;
use crate::Secret;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// PIN hashes computed at once: one per core of the 2-core machine.
pub const PIN_HASHES_RUNNING_MAX: usize = 2;
/// PIN hashes that may wait for a turn: at 50 ms each, two at a time, the last one waits
/// about a second; more would only hold requests longer.
pub const PIN_HASHES_WAITING_MAX: usize = 32;
/// Argon2id memory in KiB (OWASP: 19 MiB).
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id iterations (OWASP: 2).
const ARGON2_ITERATIONS: u32 = 2;
/// Bytes of random salt per hash.
const SALT_BYTES: usize = 16;

/// The most common six-digit PINs after the repeated digits and runs (which are refused by
/// rule): dates-like, keypad patterns and pairs, from published analyses of leaked PINs.
const COMMON_PINS: &[&str] = &[
    "123123", "112233", "121212", "123321", "654456", "111222", "131313", "159753", "147258", "258369", "789456",
    "456789", "147852", "963852", "102030", "101010", "202020", "112211", "520520", "520131", "121314", "696969",
    "252525", "010203", "000123", "123000", "111000", "100200", "123654", "159357", "147369", "741852", "951753",
    "232323", "212121", "998877", "778899", "135790", "246810", "142536", "456123", "321321", "332211", "001122",
];

/// Checks that a PIN is six digits and not easy to guess.
pub fn check_pin(pin: &str) -> Result<(), Problem> {
    if pin.len() != 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::of("invalid_pin", "a PIN is exactly 6 digits"));
    }
    let d: Vec<i8> = pin.bytes().map(|b| (b - b'0') as i8).collect();
    let repeated = d.iter().all(|&x| x == d[0]);
    let step = |by: i8| {
        d.windows(2)
            .all(|w| w[1] - w[0] == by || (w[0] == 9 && w[1] == 0 && by == 1) || (w[0] == 0 && w[1] == 9 && by == -1))
    };
    if repeated || step(1) || step(-1) || COMMON_PINS.contains(&pin) {
        return Err(Problem::of(
            "weak_pin",
            "this PIN is too easy to guess (one digit repeated, a run, or a common PIN); choose another",
        ));
    }
    Ok(())
}

/// Hashes and checks PINs. Cheap to clone.
#[derive(Clone)]
pub struct PinHasher {
    pepper: Arc<Vec<u8>>,
    running: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    /// A hash of a PIN nobody knows, checked when a phone number has no user, so that the
    /// answer takes as long as for a real user and does not tell whether the number is
    /// registered.
    decoy: Arc<String>,
}

/// A place in the hashing queue, given back when dropped.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PinHasher {
    /// A hasher with this pepper (at least 16 bytes).
    pub fn new(pepper: &Secret) -> Self {
        let pepper = Arc::new(pepper.expose().as_bytes().to_vec());
        let decoy = hash_blocking(&pepper, "decoy-pin-no-one-has").expect("argon2 with fixed parameters hashes");
        PinHasher {
            pepper,
            running: Arc::new(Semaphore::new(PIN_HASHES_RUNNING_MAX)),
            waiting: Arc::new(AtomicUsize::new(0)),
            decoy: Arc::new(decoy),
        }
    }

    /// Runs `work` on the blocking pool when a turn comes, or answers `busy` at once if the
    /// queue is full.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&[u8]) -> T + Send + 'static) -> Result<T, Problem> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= PIN_HASHES_RUNNING_MAX + PIN_HASHES_WAITING_MAX {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Problem::busy());
        }
        let _place = Place(self.waiting.clone());
        let _turn = self.running.acquire().await.map_err(|_| Problem::unavailable())?;
        let pepper = self.pepper.clone();
        tokio::task::spawn_blocking(move || work(&pepper)).await.map_err(|_| Problem::unavailable())
    }

    /// Hashes a PIN into a PHC string.
    pub async fn hash(&self, pin: String) -> Result<String, Problem> {
        self.run(move |pepper| hash_blocking(pepper, &pin)).await?.ok_or_else(Problem::unavailable)
    }

    /// Whether `pin` matches `hash`; with no hash, checks the decoy (and answers false).
    pub async fn verify(&self, pin: String, hash: Option<String>) -> Result<bool, Problem> {
        if pin.len() > 64 {
            return Ok(false);
        }
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.as_str().to_string());
        let matched = self
            .run(move |pepper| {
                let argon = argon2(pepper)?;
                let parsed = PasswordHash::new(&hash).ok()?;
                Some(argon.verify_password(pin.as_bytes(), &parsed).is_ok())
            })
            .await?
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
    new_secret_token("kasa_s_")
}

/// Draws a new secret token: `prefix` and 64 hex digits (256 random bits).
pub fn new_secret_token(prefix: &str) -> Result<Secret, Problem> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(Problem::internal)?;
    Ok(Secret::new(format!("{prefix}{}", kasa_engine::hex(&bytes))))
}

/// The hash under which a token is stored.
pub fn token_hash(token: &[u8]) -> [u8; 32] {
    *blake3::hash(token).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn easy_pins_are_refused() {
        for weak in ["111111", "000000", "123456", "654321", "234567", "890123", "987654", "210987", "123123", "112233"]
        {
            assert_eq!(check_pin(weak).unwrap_err().code, "weak_pin", "{weak}");
        }
        for bad in ["12345", "1234567", "12a456", ""] {
            assert_eq!(check_pin(bad).unwrap_err().code, "invalid_pin", "{bad}");
        }
        for fine in ["246813", "130597", "582914", "907264"] {
            assert!(check_pin(fine).is_ok(), "{fine}");
        }
    }
}
