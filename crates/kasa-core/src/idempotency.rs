//! Idempotency keys (the `Idempotency-Key` header), exactly once across crashes.
//!
//! A keyed command is applied at most once per caller and key, and its **outcome is stored
//! with the key in the same atomic step as its effect**. A retry (the same key and the same
//! request) gets that stored outcome back instead of a second effect, and the HTTP layer
//! renders the response from it exactly as it rendered the first answer. There is no window
//! in which the effect is durable but its answer is not: a retry after any crash either
//! replays the first answer or runs for the first time, and no key is ever stuck "in use".
//!
//! Keys are kept 24 hours of engine time. Each caller may hold a bounded number of live keys
//! ([`KeyScope`] says who the caller is); a key costs its bytes plus its stored outcome (a few
//! hundred bytes for a wallet command; commands with more than [`KEYED_EVENTS_MAX`] items, such
//! as large ledger batches, cannot be keyed: their ids are their idempotency).

use crate::codec::{put_table, read_table, DecodeError, Reader, Sink};
use crate::table::Table;
use crate::text::text_rule;
use crate::time::NANOS_PER_DAY;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

text_rule!(
    /// An idempotency key: 1 to 255 printable ASCII characters (Stripe allows 255).
    IdempotencyKey, IdempotencyKeyRule, 255, "an idempotency key", true,
    |v| if !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err("an Idempotency-Key is 1 to 255 printable ASCII characters".into())
    }
);

/// How long a key is remembered: 24 hours.
pub const KEY_TTL_NANOS: u64 = NANOS_PER_DAY;
/// Live keys per user: far more than a person makes in a day.
pub const KEYS_PER_USER_MAX: u32 = 1_000;
/// Live keys of the operator (integrations retry with keys too).
pub const KEYS_PER_OPERATOR_MAX: u32 = 1_000_000;
/// Live keys of anonymous requests (sign-ups) in all: sign-ups are rate limited at the edge.
pub const KEYS_ANONYMOUS_MAX: u32 = 1_000_000;
/// Live keys per merchant: a busy shop's retries for a day.
pub const KEYS_PER_MERCHANT_MAX: u32 = 1_000_000;
/// The most items a keyed command may have: its outcome is stored with the key.
pub const KEYED_EVENTS_MAX: usize = 64;

/// Who made a keyed request, as the HTTP layer knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyScope {
    /// The operator.
    Operator,
    /// The user of a session, resolved at the command's own time.
    Session([u8; 32]),
    /// A request without credentials (a sign-up): the scope is the request itself, so only an
    /// exact retry matches and two clients' keys never collide.
    Anonymous([u8; 16]),
    /// The merchant of a live API key (by the key's hash), resolved at the command's own time:
    /// a merchant's keys share their idempotency keys, as a Stripe account's do.
    ApiKey([u8; 32]),
}

/// Whose a stored key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Owner {
    /// The operator.
    Operator,
    /// A user.
    User(u64),
    /// Anonymous requests.
    Anonymous([u8; 16]),
    /// A merchant.
    Merchant(u64),
}

impl Owner {
    fn keys_max(self) -> u32 {
        match self {
            Owner::Operator => KEYS_PER_OPERATOR_MAX,
            Owner::User(_) => KEYS_PER_USER_MAX,
            Owner::Anonymous(_) => KEYS_ANONYMOUS_MAX,
            Owner::Merchant(_) => KEYS_PER_MERCHANT_MAX,
        }
    }

    /// The counter a key of this owner counts against.
    fn quota(self) -> Owner {
        match self {
            Owner::Anonymous(_) => Owner::Anonymous([0; 16]),
            other => other,
        }
    }
}

/// What is remembered for a key: `O` is the outcome of the command it guarded (the state
/// stores `crate::InnerOutcome`; this module knows no command).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry<O> {
    /// The hash of the request (method, path, body) that used the key first.
    pub request_hash: [u8; 32],
    /// When.
    pub created_at: u64,
    /// The outcome of its command, stored with the effect.
    pub outcome: O,
}

/// Keys by (owner, key), with the outcomes `O` of their commands.
#[derive(Clone, Debug)]
pub struct IdempotencyKeys<O: Clone> {
    /// A persistent collection: a snapshot copies it in constant time.
    entries: Table<(Owner, IdempotencyKey), KeyEntry<O>>,
    /// Derived: (expires at, owner, key), to forget keys in time order.
    expiries: BTreeSet<(u64, Owner, IdempotencyKey)>,
    /// Derived: live keys per quota.
    counts: BTreeMap<Owner, u32>,
}

impl<O: Clone> Default for IdempotencyKeys<O> {
    fn default() -> Self {
        IdempotencyKeys { entries: Table::default(), expiries: BTreeSet::new(), counts: BTreeMap::new() }
    }
}

impl<O: Clone + Serialize + serde::de::DeserializeOwned> IdempotencyKeys<O> {
    /// The live entry for a key at `now`.
    pub fn get(&self, owner: Owner, key: &IdempotencyKey, now: u64) -> Option<&KeyEntry<O>> {
        self.entries.get(&(owner, key.clone())).filter(|e| e.created_at.saturating_add(KEY_TTL_NANOS) > now)
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `owner` may take one more key.
    pub(crate) fn has_room(&self, owner: Owner) -> bool {
        self.counts.get(&owner.quota()).copied().unwrap_or(0) < owner.keys_max()
    }

    /// Records a new key with its outcome.
    pub(crate) fn insert(&mut self, owner: Owner, key: &IdempotencyKey, entry: KeyEntry<O>) {
        self.expiries.insert((entry.created_at.saturating_add(KEY_TTL_NANOS), owner, key.clone()));
        *self.counts.entry(owner.quota()).or_default() += 1;
        if let Some(old) = self.entries.insert((owner, key.clone()), entry) {
            // An expired key not yet forgotten, used again: drop its expiry and count.
            self.expiries.remove(&(old.created_at.saturating_add(KEY_TTL_NANOS), owner, key.clone()));
            self.uncount(owner);
        }
    }

    fn uncount(&mut self, owner: Owner) {
        if let Some(n) = self.counts.get_mut(&owner.quota()) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&owner.quota());
            }
        }
    }

    /// Forgets up to `slice` keys older than 24 hours at `now` (called at the start of every
    /// batch; a lookup also ignores expired keys, so the slice only bounds memory).
    pub(crate) fn expire(&mut self, now: u64, slice: usize) {
        for _ in 0..slice {
            let Some((at, owner, key)) = self.expiries.first().cloned() else { break };
            if at > now {
                break;
            }
            self.expiries.pop_first();
            self.entries.remove(&(owner, key));
            self.uncount(owner);
        }
    }

    /// The keys as they are now, for a snapshot written while the writer goes on.
    pub(crate) fn view(&self) -> Table<(Owner, IdempotencyKey), KeyEntry<O>> {
        self.entries.clone()
    }

    /// Writes the keys of a view (a snapshot section).
    pub(crate) fn write_section(entries: &Table<(Owner, IdempotencyKey), KeyEntry<O>>, sink: &mut impl Sink) {
        let mut scratch = Vec::new();
        put_table(sink, entries.iter(), entries.len(), &mut scratch);
    }

    /// Reads what [`IdempotencyKeys::write_section`] wrote.
    pub(crate) fn read_section(r: &mut Reader<impl std::io::Read>) -> Result<IdempotencyKeys<O>, DecodeError> {
        let mut keys = IdempotencyKeys::default();
        read_table(r, "idempotency keys", |((owner, key), entry): ((Owner, IdempotencyKey), KeyEntry<O>)| {
            keys.insert(owner, &key, entry);
            Ok(())
        })?;
        Ok(keys)
    }
}
