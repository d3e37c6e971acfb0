//! Idempotency keys (the `Idempotency-Key` header): a request carrying a key is applied at
//! most once per caller and key. The key is recorded in the same step as the command it
//! guards, so a crash between the commit and the answer can never lead to a second effect;
//! the answer is stored by a later command once the HTTP layer has it, and replayed to
//! retries. Keys are kept 24 hours by engine time.

use crate::command::Cursor;
use crate::wallet::{get_str, put_str};
use std::collections::{BTreeMap, BTreeSet};

/// How long a key is remembered: 24 hours.
pub const KEY_TTL_NANOS: u64 = 24 * 3600 * 1_000_000_000;
/// Longest key, in bytes (Stripe allows 255).
pub const KEY_BYTES_MAX: usize = 255;
/// Largest stored answer; a larger one is not stored (retries then get `409`).
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024;

/// A stored answer: HTTP status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// What is remembered for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// The hash of the request (method, path, body) that used the key first.
    pub request_hash: [u8; 32],
    /// When.
    pub created_at: u64,
    /// Its answer, once stored.
    pub response: Option<StoredResponse>,
}

/// Keys by (caller scope, key).
#[derive(Clone, Debug, Default)]
pub struct IdempotencyKeys {
    entries: BTreeMap<(u64, String), KeyEntry>,
    expiries: BTreeSet<(u64, u64, String)>,
}

impl IdempotencyKeys {
    /// The entry for a key.
    pub fn get(&self, scope: u64, key: &str) -> Option<&KeyEntry> {
        self.entries.get(&(scope, key.to_string()))
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a key that is new (the caller checked); returns false for an invalid key.
    pub(crate) fn insert(&mut self, scope: u64, key: &str, request_hash: [u8; 32], now: u64) -> bool {
        if key.is_empty() || key.len() > KEY_BYTES_MAX {
            return false;
        }
        self.entries.insert((scope, key.to_string()), KeyEntry { request_hash, created_at: now, response: None });
        self.expiries.insert((now.saturating_add(KEY_TTL_NANOS), scope, key.to_string()));
        true
    }

    /// Stores the answer of a key that has none yet; returns whether it did.
    pub(crate) fn store_response(&mut self, scope: u64, key: &str, status: u16, body: &[u8]) -> bool {
        match self.entries.get_mut(&(scope, key.to_string())) {
            Some(entry) if entry.response.is_none() && body.len() <= RESPONSE_BYTES_MAX => {
                entry.response = Some(StoredResponse { status, body: body.to_vec() });
                true
            }
            _ => false,
        }
    }

    /// Forgets keys older than 24 hours at `now` (called at the start of every batch).
    pub(crate) fn expire(&mut self, now: u64) {
        while let Some((at, scope, key)) = self.expiries.first().cloned() {
            if at > now {
                break;
            }
            self.expiries.pop_first();
            self.entries.remove(&(scope, key));
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for ((scope, key), e) in &self.entries {
            out.extend_from_slice(&scope.to_le_bytes());
            put_str(out, key);
            out.extend_from_slice(&e.request_hash);
            out.extend_from_slice(&e.created_at.to_le_bytes());
            match &e.response {
                None => out.push(0),
                Some(r) => {
                    out.push(1);
                    out.extend_from_slice(&r.status.to_le_bytes());
                    out.extend_from_slice(&(r.body.len() as u32).to_le_bytes());
                    out.extend_from_slice(&r.body);
                }
            }
        }
    }

    pub(crate) fn decode(c: &mut Cursor) -> Result<IdempotencyKeys, String> {
        let e = |e: crate::DecodeError| e.to_string();
        let mut keys = IdempotencyKeys::default();
        for _ in 0..c.u64().map_err(e)? {
            let scope = c.u64().map_err(e)?;
            let key = get_str(c)?;
            let request_hash: [u8; 32] = c.take(32).map_err(e)?.try_into().expect("32 bytes");
            let created_at = c.u64().map_err(e)?;
            let response = match c.u8().map_err(e)? {
                0 => None,
                1 => {
                    let status = u16::from_le_bytes(c.take(2).map_err(e)?.try_into().expect("2 bytes"));
                    let len = c.u32().map_err(e)? as usize;
                    if len > RESPONSE_BYTES_MAX {
                        return Err(format!("a stored answer of {len} bytes"));
                    }
                    Some(StoredResponse { status, body: c.take(len).map_err(e)?.to_vec() })
                }
                other => return Err(format!("idempotency response tag {other}")),
            };
            if key.is_empty() || key.len() > KEY_BYTES_MAX {
                return Err("an idempotency key of invalid length".into());
            }
            keys.expiries.insert((created_at.saturating_add(KEY_TTL_NANOS), scope, key.clone()));
            keys.entries.insert((scope, key), KeyEntry { request_hash, created_at, response });
        }
        Ok(keys)
    }
}
