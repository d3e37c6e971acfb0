//! Rate limits at the door, per client address and per phone number, on what an attacker
//! would loop: logins, sign-ups, verification codes and PIN resets. A refused request gets
//! `429 rate_limited` with `Retry-After` at once, before any PIN is hashed or command exists.
//!
//! Token buckets in memory: each key has a bucket of `burst` tokens refilled at `per_minute`;
//! a request takes one. Memory is bounded: at most [`KEYS_MAX`] keys per limiter, and when it
//! is full, buckets that are full again (idle long enough) are dropped first, then the
//! oldest. The limits restart empty after a restart, which is fine for what they guard (the
//! PIN lockout and the verification tries that matter are counted in the journaled state).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Keys one limiter remembers at most: an attacker with many addresses cannot make it grow
/// without bound.
pub const KEYS_MAX: usize = 100_000;

/// One limiter: a rate and a burst per key.
pub struct Limiter<K> {
    /// Tokens per second.
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// A limiter that allows `burst` requests at once and `per_minute` on average.
    pub fn per_minute(per_minute: u32, burst: u32) -> Self {
        Limiter { rate: f64::from(per_minute) / 60.0, burst: f64::from(burst), buckets: Mutex::new(HashMap::new()) }
    }

    /// A limiter that allows `burst` requests at once and `per_hour` on average.
    pub fn per_hour(per_hour: u32, burst: u32) -> Self {
        Limiter { rate: f64::from(per_hour) / 3600.0, burst: f64::from(burst), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key` at `now`: `Ok`, or the seconds until one is back.
    pub fn check_at(&self, key: &K, now: Instant) -> Result<(), u32> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= KEYS_MAX {
            self.evict(&mut buckets, now);
        }
        let rate = self.rate;
        let (tokens, at) = buckets.entry(key.clone()).or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u32)
        }
    }

    /// Takes a token for `key` now.
    pub fn check(&self, key: &K) -> Result<(), u32> {
        self.check_at(key, Instant::now())
    }

    /// Gives back a token taken for `key` (up to the burst): for limits on failures, whose
    /// token is taken before the attempt (so that attempts in flight at once are counted)
    /// and given back when it succeeds.
    pub fn give_back(&self, key: &K) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((tokens, _)) = buckets.get_mut(key) {
            *tokens = (*tokens + 1.0).min(self.burst);
        }
    }

    fn evict(&self, buckets: &mut HashMap<K, (f64, Instant)>, now: Instant) {
        let rate = self.rate;
        let full = |(tokens, at): &(f64, Instant)| {
            tokens + now.saturating_duration_since(*at).as_secs_f64() * rate >= self.burst
        };
        buckets.retain(|_, bucket| !full(bucket));
        if buckets.len() >= KEYS_MAX {
            // Everyone is active: forget the tenth that was seen least recently.
            let mut ages: Vec<Instant> = buckets.values().map(|(_, at)| *at).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 10];
            buckets.retain(|_, (_, at)| *at > cut);
        }
    }
}

/// The limiters of the server.
pub struct Limits {
    /// Logins per client address.
    pub logins_by_address: Limiter<std::net::IpAddr>,
    /// Logins per phone number (whoever tries it).
    pub logins_by_phone: Limiter<String>,
    /// Sign-ups and PIN resets per client address.
    pub sign_ups_by_address: Limiter<std::net::IpAddr>,
    /// Sign-ups and PIN resets per phone number (whoever tries it).
    pub sign_ups_by_phone: Limiter<String>,
    /// Verification codes per client address.
    pub codes_by_address: Limiter<std::net::IpAddr>,
    /// Verification codes per phone number.
    pub codes_by_phone: Limiter<String>,
    /// Payment codes that are not valid, per merchant (see `crate::paycode`).
    pub wrong_payment_codes: Limiter<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A person types a PIN a few times a minute at most; a script behind one address
            // gets 30 a minute. Per number: 10 a minute, well before the 5-wrong-PIN lock
            // matters, so a stranger cannot lock a number out by looping faster.
            logins_by_address: Limiter::per_minute(30, 30),
            logins_by_phone: Limiter::per_minute(10, 10),
            sign_ups_by_address: Limiter::per_minute(10, 10),
            // Per number, from any addresses, as for logins: each try makes the server hash a
            // PIN, and guesses at a number's code should not come faster from many addresses
            // than from one (the 5 tries per code, journaled, bound them in the end).
            sign_ups_by_phone: Limiter::per_minute(10, 10),
            // An SMS costs money and annoys its recipient: 5 codes an hour per number.
            codes_by_address: Limiter::per_hour(60, 20),
            codes_by_phone: Limiter::per_hour(5, 5),
            // A scanner misreads now and then; a merchant guessing codes gets 10 a minute.
            wrong_payment_codes: Limiter::per_minute(
                crate::paycode::WRONG_CODES_PER_MINUTE,
                crate::paycode::WRONG_CODES_PER_MINUTE,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_empties_and_refills() {
        let limiter: Limiter<u8> = Limiter::per_minute(60, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at(&1, t0), Ok(()));
        }
        assert_eq!(limiter.check_at(&1, t0), Err(1), "one a second comes back");
        assert_eq!(limiter.check_at(&2, t0), Ok(()), "per key");
        assert_eq!(limiter.check_at(&1, t0 + Duration::from_secs(1)), Ok(()));
        let slow: Limiter<u8> = Limiter::per_minute(5, 1);
        assert_eq!(slow.check_at(&1, t0), Ok(()));
        assert_eq!(slow.check_at(&1, t0), Err(12), "5 a minute is one every 12 seconds");
        slow.give_back(&1);
        assert_eq!(slow.check_at(&1, t0), Ok(()), "a token given back is there again");
        slow.give_back(&1);
        slow.give_back(&1);
        assert_eq!(slow.check_at(&1, t0), Ok(()));
        assert_eq!(slow.check_at(&1, t0), Err(12), "never more than the burst");
    }
}
