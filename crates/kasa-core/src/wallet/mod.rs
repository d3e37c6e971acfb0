//! Wallet users: sign-up by phone number, PIN lockout, sessions and KYC tiers, as domain
//! commands in the same deterministic state as the ledger. A sign-up creates the user and
//! their KRW wallet account (a ledger account that can never go negative) in one command, so a
//! crash can never leave one without the other.
//!
//! What this module deliberately does not do: hash PINs or make tokens. Argon2 is slow and
//! randomness is not deterministic, so the HTTP layer hashes the PIN, verifies it against the
//! stored hash and draws session tokens, and the commands carry only the results (the PHC
//! hash string, whether the PIN matched, the token's hash). The lockout counter, by contrast,
//! lives here: it changes in the same atomic step as the session it guards, and a restart
//! cannot reset it. The chart of accounts is in `docs/accounts.md`.

pub mod funding;
pub mod history;
mod phone;
pub mod remittance;
pub mod requests;

pub use funding::{
    AccountNumber, BankAccount, Funding, FundingBook, FundingError, FundingKind, FundingStatus, LimitExceeded,
    LinkError,
};
pub use history::{Entry, EntryKind, HistoryCursor};
pub use phone::{Phone, PhoneError};
pub use remittance::{CancelError, Recipient, Remittance, RemittanceBook, RemittanceStatus, SendError};
pub use requests::{MoneyRequest, RequestBook, RequestError, RequestPage, RequestRole, RequestStatus, SplitBill};

use crate::ledger::{Account, AccountFlags, Ledger, TransferFlags};
use std::collections::{BTreeMap, BTreeSet};

/// Nanoseconds per second, for session lifetimes given in seconds.
pub const NANOS_PER_SECOND_WALLET: u64 = 1_000_000_000;

/// The KRW ledger: ISO 4217's numeric code for the won.
pub const KRW_LEDGER: u32 = 410;
/// Account code of a user's KRW wallet.
pub const CODE_WALLET: u16 = 1001;
/// Wrong PINs in a row that lock PIN use.
pub const PIN_ATTEMPTS_MAX: u8 = 5;
/// How long a PIN lock lasts unless an operator lifts it sooner: 30 minutes.
pub const PIN_LOCK_NANOS: u64 = 30 * 60 * 1_000_000_000;
/// Longest display name, in characters.
pub const NAME_CHARS_MAX: usize = 50;
/// Longest stored PIN hash (a PHC string of Argon2id is about 100 bytes).
pub const PIN_HASH_BYTES_MAX: usize = 256;
/// Sessions one user may hold at once; the oldest is closed to make room.
pub const SESSIONS_PER_USER_MAX: usize = 16;

/// Kind number of wallet accounts in domain ids.
const KIND_WALLET: u64 = 1;

/// A domain id: the top bit set, a kind in bits 64..127 and a number in bits 0..64. Domain
/// accounts and transfers live in this range, which operators must not use for their own (see
/// `docs/accounts.md`).
pub fn domain_id(kind: u64, n: u64) -> u128 {
    (1u128 << 127) | ((kind as u128) << 64) | n as u128
}

/// The (kind, number) of a domain id, or `None` for an id outside the domain range.
pub fn domain_id_parts(id: u128) -> Option<(u64, u64)> {
    (id >> 127 == 1).then_some((((id >> 64) as u64) & (u64::MAX >> 1), id as u64))
}

/// The ledger account id of user `user_id`'s wallet.
pub fn wallet_account_id(user_id: u64) -> u128 {
    domain_id(KIND_WALLET, user_id)
}

/// A KYC tier: what the law lets a wallet hold and send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Tier {
    /// A new user: 500,000 KRW of stored value.
    Basic = 1,
    /// Identity verified by an operator: 2,000,000 KRW.
    Verified = 2,
}

impl Tier {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Basic => "basic",
            Tier::Verified => "verified",
        }
    }

    /// Parses a name or a stored byte.
    pub fn from_name(name: &str) -> Option<Tier> {
        match name {
            "basic" => Some(Tier::Basic),
            "verified" => Some(Tier::Verified),
            _ => None,
        }
    }

    fn from_u8(value: u8) -> Option<Tier> {
        match value {
            1 => Some(Tier::Basic),
            2 => Some(Tier::Verified),
            _ => None,
        }
    }

    /// The default limits of the tier, in KRW: (balance cap, daily outgoing limit). These are
    /// also the legal maxima: operators may lower a tier's limits, never raise them above.
    pub fn limits_krw(self) -> (u64, u64) {
        match self {
            Tier::Basic => (500_000, 500_000),
            Tier::Verified => (2_000_000, 2_000_000),
        }
    }
}

/// A wallet user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The normalised phone number; one user per number.
    pub phone: Phone,
    /// The display name.
    pub name: String,
    /// The Argon2id PHC string of the PIN (hashed with the server's pepper).
    pub pin_hash: String,
    /// The KYC tier.
    pub tier: Tier,
    /// Wrong PINs in a row.
    pub pin_failures: u8,
    /// PIN use is locked until this time (0: not locked).
    pub pin_locked_until: u64,
    /// When the user signed up.
    pub created_at: u64,
    /// Withdrawals and transfers above this many won need the PIN.
    pub pin_free_krw: u64,
}

/// What a money movement needs to know of the user moving money: copied out of the `User`
/// so that the hot path of a send does not clone its strings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Actor {
    pub(crate) id: u64,
    pub(crate) tier: Tier,
    pub(crate) pin_free_krw: u64,
}

impl Actor {
    pub(crate) fn wallet_account_id(&self) -> u128 {
        wallet_account_id(self.id)
    }
}

impl User {
    pub(crate) fn actor(&self) -> Actor {
        Actor { id: self.id, tier: self.tier, pin_free_krw: self.pin_free_krw }
    }

    /// The ledger account of the user's wallet.
    pub fn wallet_account_id(&self) -> u128 {
        wallet_account_id(self.id)
    }

    /// Whether PIN use is locked at `now`.
    pub fn pin_locked_at(&self, now: u64) -> bool {
        self.pin_locked_until > now
    }
}

/// A logged-in session, known by the hash of its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// Whose session.
    pub user_id: u64,
    /// When it was opened.
    pub created_at: u64,
    /// When it stops being valid.
    pub expires_at: u64,
}

/// Why a sign-up was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignUpError {
    /// The phone number is not a valid one.
    #[error("invalid phone number: {0}")]
    InvalidPhone(PhoneError),
    /// The name is empty, too long or has control characters.
    #[error("the name must be 1 to {NAME_CHARS_MAX} characters without control characters")]
    InvalidName,
    /// The PIN hash is not a PHC string of reasonable length.
    #[error("the pin hash is not a PHC string of at most {PIN_HASH_BYTES_MAX} bytes")]
    InvalidPinHash,
    /// Another user has this phone number.
    #[error("the phone number is already registered")]
    PhoneTaken,
    /// The wallet's ledger account id is already taken by an account an operator made.
    #[error("ledger account {0} exists already; domain account ids are reserved")]
    WalletAccountTaken(u128),
}

/// Why a session was not opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No such user.
    #[error("no such user")]
    UnknownUser,
    /// PIN use is locked.
    #[error("pin use is locked until {until}")]
    Locked {
        /// Until when.
        until: u64,
    },
    /// The PIN was wrong.
    #[error("wrong pin; {attempts_left} attempts left")]
    WrongPin {
        /// Attempts before the lock.
        attempts_left: u8,
        /// Set when this attempt locked PIN use.
        locked_until: u64,
    },
}

/// The outcome of a wallet command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletOutcome {
    /// `SignUp`: the new user's id, or why not.
    SignedUp(Result<u64, SignUpError>),
    /// `OpenSession`: the session's expiry, or why not.
    SessionOpened(Result<u64, SessionError>),
    /// `CloseSession`: whether there was such a session.
    SessionClosed(bool),
    /// `SetTier`, `UnlockPin`, `SetPinFreeAmount`: whether the user exists (and, for the last,
    /// the amount was allowed).
    TierSet(bool),
    /// `LinkBankAccount`: the bank account's id, or why not.
    BankAccountLinked(Result<u64, LinkError>),
    /// `StartFunding`: the funding's id, or why not.
    FundingStarted(Result<u64, FundingError>),
    /// `SettleFunding`: the status after the bank's answer (`None`: no such funding).
    FundingSettled(Option<FundingStatus>),
    /// `Send`: the remittance's id, or why not.
    Sent(Result<u64, SendError>),
    /// `CancelRemittance`: done, or why not.
    RemittanceCancelled(Result<(), CancelError>),
    /// `RequestMoney`: the request's id, or why not.
    MoneyRequested(Result<u64, RequestError>),
    /// `SplitBill`: the split bill's id, or why not.
    BillSplit(Result<u64, RequestError>),
    /// `AnswerRequest`: done, or why not.
    RequestAnswered(Result<(), RequestError>),
}

/// Users and sessions. Deterministic containers only: it is hashed and snapshotted.
#[derive(Clone, Debug, Default)]
pub struct Wallets {
    /// Users by id; ids are dense from 1, so a vector indexed by `id - 1`.
    users: Vec<User>,
    by_phone: BTreeMap<Phone, u64>,
    sessions: BTreeMap<[u8; 32], Session>,
    /// (expires_at, token hash) of every session, to expire them in time order.
    session_expiries: BTreeSet<(u64, [u8; 32])>,
    /// Per user, (created_at, token hash) of their sessions: the oldest is closed when a user
    /// opens one too many. Derived from `sessions`; not part of the canonical encoding.
    user_sessions: BTreeMap<u64, BTreeSet<(u64, [u8; 32])>>,
    /// Bank accounts, top-ups and withdrawals.
    funding: FundingBook,
    /// Remittances.
    remittances: RemittanceBook,
    /// Money requests and split bills.
    requests: RequestBook,
    /// Operator-set limits per tier, (balance cap, daily outgoing); absent: the defaults.
    tier_limits: BTreeMap<u8, (u64, u64)>,
    /// Won charged per withdrawal; 0 (the default) for none. Snapshot version 5 on.
    pub(crate) withdrawal_fee: u64,
}

pub(crate) fn valid_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=NAME_CHARS_MAX).contains(&chars) && !name.chars().any(char::is_control) && !name.trim().is_empty()
}

fn valid_pin_hash(hash: &str) -> bool {
    hash.len() <= PIN_HASH_BYTES_MAX && hash.starts_with('$') && hash.is_ascii()
}

impl Wallets {
    /// Number of users.
    pub fn users_count(&self) -> usize {
        self.users.len()
    }

    /// The user with this id.
    pub fn user(&self, id: u64) -> Option<&User> {
        id.checked_sub(1).and_then(|i| self.users.get(i as usize))
    }

    fn user_mut(&mut self, id: u64) -> Option<&mut User> {
        id.checked_sub(1).and_then(|i| self.users.get_mut(i as usize))
    }

    /// The limits in force for a tier, in KRW: (balance cap, daily outgoing limit).
    pub fn limits(&self, tier: Tier) -> (u64, u64) {
        self.tier_limits.get(&(tier as u8)).copied().unwrap_or_else(|| tier.limits_krw())
    }

    /// Sets a tier's limits (an operator's decision); refused above the legal maxima (the
    /// defaults). Returns whether they were set.
    pub fn set_tier_limits(&mut self, tier: Tier, balance_cap: u64, daily_outgoing: u64) -> bool {
        let (cap_max, daily_max) = tier.limits_krw();
        if balance_cap > cap_max || daily_outgoing > daily_max {
            return false;
        }
        self.tier_limits.insert(tier as u8, (balance_cap, daily_outgoing));
        true
    }

    /// Bank accounts, top-ups and withdrawals.
    pub fn funding(&self) -> &FundingBook {
        &self.funding
    }

    /// Remittances.
    pub fn remittances(&self) -> &RemittanceBook {
        &self.remittances
    }

    /// Money requests and split bills.
    pub fn requests(&self) -> &RequestBook {
        &self.requests
    }

    /// The user with this phone number.
    pub fn user_by_phone(&self, phone: &Phone) -> Option<&User> {
        self.by_phone.get(phone).and_then(|&id| self.user(id))
    }

    /// The session with this token hash, if it is still valid at `now`.
    pub fn session(&self, token_hash: &[u8; 32], now: u64) -> Option<Session> {
        self.sessions.get(token_hash).copied().filter(|s| s.expires_at > now)
    }

    /// Updates the domain records of Kasa's pending transfers that the ledger expired at the
    /// start of a batch: withdrawals and held remittances give their daily limit back.
    pub fn on_transfers_expired(&mut self, expired: &[crate::ledger::Transfer]) {
        self.on_fundings_expired(expired);
        self.on_remittances_expired(expired);
    }

    /// Drops sessions that expired at or before `now` (called at the start of every batch).
    pub fn expire_sessions(&mut self, now: u64) {
        while let Some(&(at, hash)) = self.session_expiries.first() {
            if at > now {
                break;
            }
            self.session_expiries.pop_first();
            if let Some(session) = self.sessions.remove(&hash) {
                self.forget_user_session(session.user_id, session.created_at, &hash);
            }
        }
    }

    /// Signs a user up: validates, creates the wallet account in the ledger and the user,
    /// both or neither, and claims the remittances held for the number. `at` is the event
    /// timestamp; claims use the ones after it, and `at` is left at the last one used.
    pub fn sign_up(
        &mut self,
        ledger: &mut Ledger,
        phone: &str,
        name: &str,
        pin_hash: &str,
        at: &mut u64,
    ) -> Result<u64, SignUpError> {
        let timestamp = *at;
        let phone = Phone::parse(phone).map_err(SignUpError::InvalidPhone)?;
        if !valid_name(name) {
            return Err(SignUpError::InvalidName);
        }
        if !valid_pin_hash(pin_hash) {
            return Err(SignUpError::InvalidPinHash);
        }
        if self.by_phone.contains_key(&phone) {
            return Err(SignUpError::PhoneTaken);
        }
        let id = self.users.len() as u64 + 1;
        let wallet = Account {
            id: wallet_account_id(id),
            ledger: KRW_LEDGER,
            code: CODE_WALLET,
            user_data_64: id,
            flags: AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::HISTORY),
            ..Default::default()
        };
        let created = ledger.create_accounts(&[wallet], timestamp);
        if !matches!(created[0].result, crate::CreateAccountResult::Ok) {
            return Err(SignUpError::WalletAccountTaken(wallet.id));
        }
        self.by_phone.insert(phone.clone(), id);
        self.users.push(User {
            id,
            phone,
            name: name.to_string(),
            pin_hash: pin_hash.to_string(),
            tier: Tier::Basic,
            pin_failures: 0,
            pin_locked_until: 0,
            created_at: timestamp,
            pin_free_krw: funding::PIN_FREE_KRW_DEFAULT,
        });
        let mut next = timestamp + 1;
        self.claim_held(ledger, id, &mut next);
        *at = next - 1;
        Ok(id)
    }

    /// Records a login attempt whose PIN the HTTP layer checked: a matching PIN opens a
    /// session (and clears the failure count), a wrong one counts towards the lock. The lock is
    /// checked here, in the same step, so concurrent attempts cannot slip past it.
    pub fn open_session(
        &mut self,
        user_id: u64,
        token_hash: [u8; 32],
        pin_ok: bool,
        ttl_nanos: u64,
        now: u64,
    ) -> Result<u64, SessionError> {
        let index = user_id.checked_sub(1).filter(|&i| (i as usize) < self.users.len());
        let Some(index) = index else { return Err(SessionError::UnknownUser) };
        let user = &mut self.users[index as usize];
        if user.pin_locked_at(now) {
            return Err(SessionError::Locked { until: user.pin_locked_until });
        }
        record_pin_attempt(user, pin_ok, now)?;
        let expires_at = now.saturating_add(ttl_nanos);
        if self.sessions.contains_key(&token_hash) {
            // A 256-bit random token never repeats; a repeat is a replayed command. Keep the
            // first session as it was.
            return Ok(self.sessions[&token_hash].expires_at);
        }
        // Bound the sessions of one user: close the oldest to make room.
        while self.user_sessions.get(&user_id).map_or(0, BTreeSet::len) >= SESSIONS_PER_USER_MAX {
            let (_, oldest) = *self.user_sessions[&user_id].first().expect("a user with sessions");
            self.close_session(&oldest);
        }
        self.sessions.insert(token_hash, Session { user_id, created_at: now, expires_at });
        self.session_expiries.insert((expires_at, token_hash));
        self.user_sessions.entry(user_id).or_default().insert((now, token_hash));
        Ok(expires_at)
    }

    /// Closes a session; returns whether it existed.
    pub fn close_session(&mut self, token_hash: &[u8; 32]) -> bool {
        match self.sessions.remove(token_hash) {
            Some(session) => {
                self.session_expiries.remove(&(session.expires_at, *token_hash));
                self.forget_user_session(session.user_id, session.created_at, token_hash);
                true
            }
            None => false,
        }
    }

    fn forget_user_session(&mut self, user_id: u64, created_at: u64, token_hash: &[u8; 32]) {
        if let Some(own) = self.user_sessions.get_mut(&user_id) {
            own.remove(&(created_at, *token_hash));
            if own.is_empty() {
                self.user_sessions.remove(&user_id);
            }
        }
    }

    /// Sets a user's KYC tier (an operator's decision); returns whether the user exists.
    pub fn set_tier(&mut self, user_id: u64, tier: Tier) -> bool {
        match user_id.checked_sub(1).and_then(|i| self.users.get_mut(i as usize)) {
            Some(user) => {
                user.tier = tier;
                true
            }
            None => false,
        }
    }

    /// Lowers (or restores, up to the default) the amount a user may move without the PIN;
    /// returns false for an unknown user or an amount above the default.
    pub fn set_pin_free_amount(&mut self, user_id: u64, amount: u64) -> bool {
        match self.user_mut(user_id) {
            Some(user) if amount <= funding::PIN_FREE_KRW_DEFAULT => {
                user.pin_free_krw = amount;
                true
            }
            _ => false,
        }
    }

    /// Lifts a PIN lock (an operator's decision); returns whether the user exists.
    pub fn unlock_pin(&mut self, user_id: u64) -> bool {
        match user_id.checked_sub(1).and_then(|i| self.users.get_mut(i as usize)) {
            Some(user) => {
                user.pin_locked_until = 0;
                user.pin_failures = 0;
                true
            }
            None => false,
        }
    }

    /// Checks the wallet invariants against the ledger: every user has their wallet account,
    /// which can never go negative, and no wallet holds more than the law's highest cap
    /// (tier caps are checked when money moves in; an operator may lower a tier later, so the
    /// invariant is the statutory maximum).
    pub fn check_invariants(&self, ledger: &Ledger) -> Result<(), String> {
        let (legal_max, _) = Tier::Verified.limits_krw();
        for user in &self.users {
            let Some(wallet) = ledger.account(user.wallet_account_id()) else {
                return Err(format!("user {} has no wallet account", user.id));
            };
            if !wallet.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) || wallet.ledger != KRW_LEDGER {
                return Err(format!("user {}'s wallet account may go negative or is not in KRW", user.id));
            }
            let balance = wallet.credits_posted.saturating_sub(wallet.debits_posted);
            if balance > legal_max as u128 {
                return Err(format!(
                    "user {}'s wallet holds {balance} won, over the legal maximum of {legal_max}",
                    user.id
                ));
            }
        }
        for session in self.sessions.values() {
            if self.user(session.user_id).is_none() {
                return Err(format!("a session belongs to unknown user {}", session.user_id));
            }
        }
        Ok(())
    }

    /// Checks the per-user limits against the transfers one command created (those after the
    /// first `from` in the ledger): every new wallet credit of Kasa's own (a top-up reserved,
    /// a remittance or claim paid in) left the wallet within its tier's balance cap, counting
    /// pending credits; every new wallet debit (a withdrawal reserved, a remittance sent) left
    /// the user's outgoing total for that KST day within the tier's daily limit.
    ///
    /// Limits are a property of the moment money moves: an operator may lower a tier's limits
    /// (or a user's tier) later, and balances above the new cap are then legal. So `kasa
    /// verify` runs this after every command of its replay (see `State::audit_limits`). Posts
    /// and voids of pending transfers, and the operator's own transfers (adjustments, outside
    /// the domain id range), are not checked: a post moves no new money past the cap, a void
    /// only gives money back, and an adjustment is the operator's decision.
    pub fn check_limits_of_new_transfers(&self, ledger: &Ledger, from: usize) -> Result<(), String> {
        let created = ledger.transfers_count().saturating_sub(from);
        for t in ledger.transfers().rev().take(created) {
            if domain_id_parts(t.id).is_none()
                || t.flags.has(TransferFlags::POST_PENDING_TRANSFER)
                || t.flags.has(TransferFlags::VOID_PENDING_TRANSFER)
            {
                continue;
            }
            if let Some(user) = self.wallet_owner(t.credit_account_id) {
                let (cap, _) = self.limits(user.tier);
                let wallet = ledger.account(t.credit_account_id).expect("a transfer's accounts exist");
                let held =
                    wallet.credits_posted.saturating_add(wallet.credits_pending).saturating_sub(wallet.debits_posted);
                if held > cap as u128 {
                    return Err(format!(
                        "transfer {} put user {}'s wallet at {held} won, over the {} balance cap of {cap}",
                        t.id,
                        user.id,
                        user.tier.name()
                    ));
                }
            }
            if let Some(user) = self.wallet_owner(t.debit_account_id) {
                let (_, daily) = self.limits(user.tier);
                let used = self.funding.outgoing_today(user.id, t.timestamp);
                if used > daily || (t.amount > used as u128) {
                    return Err(format!(
                        "transfer {} took user {}'s outgoing total for the day to {used} won (the transfer is {}), \
                         over the {} daily limit of {daily} or not counted",
                        t.id,
                        user.id,
                        t.amount,
                        user.tier.name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The user whose wallet account `id` is.
    fn wallet_owner(&self, id: u128) -> Option<&User> {
        match domain_id_parts(id) {
            Some((KIND_WALLET, user_id)) => self.user(user_id),
            _ => None,
        }
    }

    /// Appends the canonical encoding (for the state hash and snapshots).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.users.len() as u64).to_le_bytes());
        for u in &self.users {
            put_str(out, u.phone.as_str());
            put_str(out, &u.name);
            put_str(out, &u.pin_hash);
            out.push(u.tier as u8);
            out.push(u.pin_failures);
            out.extend_from_slice(&u.pin_locked_until.to_le_bytes());
            out.extend_from_slice(&u.created_at.to_le_bytes());
            out.extend_from_slice(&u.pin_free_krw.to_le_bytes());
        }
        out.extend_from_slice(&(self.sessions.len() as u64).to_le_bytes());
        for (hash, s) in &self.sessions {
            out.extend_from_slice(hash);
            out.extend_from_slice(&s.user_id.to_le_bytes());
            out.extend_from_slice(&s.created_at.to_le_bytes());
            out.extend_from_slice(&s.expires_at.to_le_bytes());
        }
        self.funding.encode(out);
        self.remittances.encode(out);
        self.requests.encode(out);
        out.extend_from_slice(&(self.tier_limits.len() as u64).to_le_bytes());
        for (tier, (cap, daily)) in &self.tier_limits {
            out.push(*tier);
            out.extend_from_slice(&cap.to_le_bytes());
            out.extend_from_slice(&daily.to_le_bytes());
        }
    }

    /// Decodes what [`Wallets::encode`] wrote; checks that it fits the ledger.
    pub(crate) fn decode(c: &mut crate::command::Cursor, ledger: &Ledger) -> Result<Wallets, String> {
        let e = |e: crate::DecodeError| e.to_string();
        let mut wallets = Wallets::default();
        let users = c.u64().map_err(e)?;
        for i in 0..users {
            let id = i + 1;
            let phone = Phone::from_e164(&get_str(c)?).map_err(|e| format!("user {id}: {e}"))?;
            let name = get_str(c)?;
            let pin_hash = get_str(c)?;
            let tier = Tier::from_u8(c.u8().map_err(e)?).ok_or_else(|| format!("user {id}: unknown tier"))?;
            let pin_failures = c.u8().map_err(e)?;
            let pin_locked_until = c.u64().map_err(e)?;
            let created_at = c.u64().map_err(e)?;
            let pin_free_krw = c.u64().map_err(e)?;
            if !valid_name(&name) || !valid_pin_hash(&pin_hash) || pin_failures >= PIN_ATTEMPTS_MAX {
                return Err(format!("user {id} has an invalid name, pin hash or failure count"));
            }
            if ledger.account(wallet_account_id(id)).is_none() {
                return Err(format!("user {id} has no wallet account"));
            }
            if wallets.by_phone.insert(phone.clone(), id).is_some() {
                return Err(format!("user {id} repeats a phone number"));
            }
            wallets.users.push(User {
                id,
                phone,
                name,
                pin_hash,
                tier,
                pin_failures,
                pin_locked_until,
                created_at,
                pin_free_krw,
            });
        }
        let sessions = c.u64().map_err(e)?;
        for _ in 0..sessions {
            let hash: [u8; 32] = c.take(32).map_err(e)?.try_into().expect("32 bytes");
            let user_id = c.u64().map_err(e)?;
            let created_at = c.u64().map_err(e)?;
            let expires_at = c.u64().map_err(e)?;
            if wallets.user(user_id).is_none() {
                return Err(format!("a session names unknown user {user_id}"));
            }
            wallets.sessions.insert(hash, Session { user_id, created_at, expires_at });
            wallets.session_expiries.insert((expires_at, hash));
            wallets.user_sessions.entry(user_id).or_default().insert((created_at, hash));
        }
        wallets.funding = FundingBook::decode(c, wallets.users.len() as u64)?;
        wallets.remittances = RemittanceBook::decode(c, wallets.users.len() as u64, ledger)?;
        wallets.requests = RequestBook::decode(c, wallets.users.len() as u64)?;
        for _ in 0..c.u64().map_err(e)? {
            let tier = Tier::from_u8(c.u8().map_err(e)?).ok_or("tier limits for an unknown tier")?;
            let (cap, daily) = (c.u64().map_err(e)?, c.u64().map_err(e)?);
            if !wallets.set_tier_limits(tier, cap, daily) {
                return Err(format!("tier {} limits over the legal maxima", tier.name()));
            }
        }
        Ok(wallets)
    }
}

/// Counts one PIN attempt whose verdict the HTTP layer reached: a match clears the count, a
/// miss adds to it and locks PIN use at [`PIN_ATTEMPTS_MAX`]. The caller checks the lock first.
pub(crate) fn record_pin_attempt(user: &mut User, ok: bool, now: u64) -> Result<(), SessionError> {
    if ok {
        user.pin_failures = 0;
        return Ok(());
    }
    user.pin_failures = user.pin_failures.saturating_add(1);
    let mut locked_until = 0;
    if user.pin_failures >= PIN_ATTEMPTS_MAX {
        user.pin_failures = 0;
        user.pin_locked_until = now.saturating_add(PIN_LOCK_NANOS);
        locked_until = user.pin_locked_until;
    }
    let attempts_left = if locked_until == 0 { PIN_ATTEMPTS_MAX - user.pin_failures } else { 0 };
    Err(SessionError::WrongPin { attempts_left, locked_until })
}

/// Most bytes of one string in the canonical encoding (names, phones, hashes are far
/// shorter); guards the decoder against a corrupt length.
const STRING_BYTES_MAX: usize = 1024;

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn get_str(c: &mut crate::command::Cursor) -> Result<String, String> {
    let len = c.u32().map_err(|e| e.to_string())? as usize;
    if len > STRING_BYTES_MAX {
        return Err(format!("a string of {len} bytes is longer than {STRING_BYTES_MAX}"));
    }
    let bytes = c.take(len).map_err(|e| e.to_string())?;
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
}
