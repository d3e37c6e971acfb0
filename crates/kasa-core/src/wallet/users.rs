//! Users: verification codes that prove a phone number, sign-up, PINs with lockout and
//! reset, sessions, KYC tiers and the PIN-free budget.
//!
//! A sign-up creates the user and their won wallet (an account in Kasa's books that can never
//! go negative) in one command, so a crash can never leave one without the other, and claims
//! the money held for the number in the same step. The phone must be proven first: the HTTP
//! layer sends a 6-digit code and passes its keyed hash; the sign-up (or a PIN reset) passes
//! the hash of what the user typed, and the state compares them and counts wrong tries in the
//! same atomic step, so neither concurrency nor a restart resets the count.

use super::command::{
    CodeProof, Name, PinHash, PinResetError, SessionError, SignUpError, UserError, UserView, VerificationError,
    VerificationView,
};
use super::Ctx;
use super::{Event, Phone, Wallets, WALLET_CURRENCY};
use crate::chart;
use crate::limits::{Tier, PIN_FREE_DEFAULT};
use crate::money::Amount;
use crate::time::{after_seconds, NANOS_PER_MINUTE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Wrong PINs in a row that lock PIN use.
pub const PIN_ATTEMPTS_MAX: u8 = 5;
/// How long a PIN lock lasts unless the owner resets the PIN or an operator lifts it: 30
/// minutes.
pub const PIN_LOCK_NANOS: u64 = 30 * NANOS_PER_MINUTE;
/// Sessions one user may hold at once; the oldest is closed to make room.
pub const SESSIONS_PER_USER_MAX: usize = 16;
/// How long a verification code works: 3 minutes.
pub const VERIFICATION_TTL_SECONDS: u64 = 180;
/// Wrong codes that spend a verification.
pub const VERIFICATION_ATTEMPTS_MAX: u8 = 5;
/// Live verifications one phone number may have; a new one replaces the oldest. The HTTP
/// layer's rate limit is the first guard; this one holds across restarts.
pub const VERIFICATIONS_PER_PHONE_MAX: usize = 3;

/// A wallet user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The normalised phone number; one user per number.
    pub phone: Phone,
    /// The display name.
    pub name: Name,
    /// The Argon2id PHC string of the PIN (hashed with the server's pepper).
    pub pin_hash: PinHash,
    /// The KYC tier.
    pub tier: Tier,
    /// Wrong PINs in a row.
    pub pin_failures: u8,
    /// PIN use is locked until this time (0: not locked).
    pub pin_locked_until: u64,
    /// When the user signed up.
    pub created_at: u64,
    /// What the user may move without the PIN in 24 hours.
    pub pin_free_amount: Amount,
}

impl User {
    /// The account of the user's wallet in Kasa's books.
    pub fn wallet_account_id(&self) -> u128 {
        super::wallet_account_id(self.id)
    }

    /// Whether PIN use is locked at `now`.
    pub fn pin_locked_at(&self, now: u64) -> bool {
        self.pin_locked_until > now
    }

    /// The user as a response shows it at `now`.
    pub fn view(&self, now: u64) -> UserView {
        UserView {
            id: self.id,
            phone: self.phone.clone(),
            name: self.name.clone(),
            tier: self.tier,
            pin_locked_until: self.pin_locked_until,
            pin_free_amount: self.pin_free_amount,
            created_at: self.created_at,
            as_of: now,
        }
    }
}

/// A logged-in session, known by the hash of its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Whose session.
    pub user_id: u64,
    /// When it was opened.
    pub created_at: u64,
    /// When it stops being valid.
    pub expires_at: u64,
}

/// A verification code sent to a phone, waiting to be typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Where the code went.
    pub phone: Phone,
    /// The keyed hash of the phone and the code.
    pub code_hash: [u8; 32],
    /// When it was sent.
    pub created_at: u64,
    /// When it stops working.
    pub expires_at: u64,
    /// Wrong codes left before it is spent.
    pub attempts_left: u8,
}

impl Wallets {
    pub(super) fn start_verification(
        &mut self,
        id: [u8; 16],
        phone: &Phone,
        code_hash: [u8; 32],
        ctx: &mut Ctx,
    ) -> Result<VerificationView, VerificationError> {
        let now = ctx.now();
        if self.verifications.contains_key(&id) {
            return Err(VerificationError::Exists);
        }
        // Bound the live codes of one number: the oldest goes.
        while self.verifications_by_phone.get(phone).map_or(0, BTreeSet::len) >= VERIFICATIONS_PER_PHONE_MAX {
            let (_, oldest) = *self.verifications_by_phone[phone].first().expect("a phone with verifications");
            self.forget_verification(&oldest);
        }
        let expires_at = after_seconds(now, VERIFICATION_TTL_SECONDS);
        self.verifications.insert(
            id,
            Verification {
                phone: phone.clone(),
                code_hash,
                created_at: now,
                expires_at,
                attempts_left: VERIFICATION_ATTEMPTS_MAX,
            },
        );
        self.verification_expiries.insert((expires_at, id));
        self.verifications_by_phone.entry(phone.clone()).or_default().insert((now, id));
        Ok(VerificationView { id, expires_at })
    }

    fn forget_verification(&mut self, id: &[u8; 16]) {
        let Some(v) = self.verifications.remove(id) else { return };
        self.verification_expiries.remove(&(v.expires_at, *id));
        if let Some(own) = self.verifications_by_phone.get_mut(&v.phone) {
            own.remove(&(v.created_at, *id));
            if own.is_empty() {
                self.verifications_by_phone.remove(&v.phone);
            }
        }
    }

    /// Checks a code against a verification of `phone`. A match leaves the verification for
    /// the caller to spend once its command succeeds (a code works once); a miss counts, and
    /// the last miss spends it.
    fn check_code(&mut self, phone: &Phone, proof: CodeProof, now: u64) -> Result<(), VerificationError> {
        let id = proof.verification_id;
        let Some(v) = self.verifications.get_mut(&id) else { return Err(VerificationError::Invalid) };
        if v.phone != *phone || v.expires_at <= now {
            return Err(VerificationError::Invalid);
        }
        if v.code_hash == proof.code_hash {
            // Used up by the caller once its command succeeds, so that a sign-up refused for a
            // registered number leaves the code for a PIN reset, and the other way round.
            return Ok(());
        }
        v.attempts_left = v.attempts_left.saturating_sub(1);
        let attempts_left = v.attempts_left;
        if attempts_left == 0 {
            self.forget_verification(&id);
        }
        Err(VerificationError::WrongCode { attempts_left })
    }

    /// Drops verifications that expired at or before `now`, at most `slice` of them.
    pub(super) fn expire_verifications(&mut self, now: u64, slice: usize) {
        for _ in 0..slice {
            match self.verification_expiries.first() {
                Some(&(at, id)) if at <= now => self.forget_verification(&id),
                _ => break,
            }
        }
    }

    /// A verification by id, for queries.
    pub fn verification(&self, id: &[u8; 16]) -> Option<&Verification> {
        self.verifications.get(id)
    }

    pub(super) fn sign_up(
        &mut self,
        phone: &Phone,
        name: &Name,
        pin_hash: &PinHash,
        proof: CodeProof,
        ctx: &mut Ctx,
    ) -> Result<UserView, SignUpError> {
        let now = ctx.now();
        // The code first: only whoever holds the number learns whether it is registered.
        self.check_code(phone, proof, now).map_err(SignUpError::Verification)?;
        if self.by_phone.contains_key(phone) {
            return Err(SignUpError::PhoneTaken);
        }
        self.forget_verification(&proof.verification_id);
        let id = self.users.len() as u64 + 1;
        let wallet = chart::WALLET.account(id, WALLET_CURRENCY, id);
        let at = ctx.stamp();
        let created = ctx.books.create_accounts(&[wallet], at);
        // The books are Kasa's own: the next wallet id is always free.
        assert!(created[0].result.is_success(), "the books refused wallet {id}: {:?}", created[0]);
        self.by_phone.insert(phone.clone(), id);
        self.users.push_back(User {
            id,
            phone: phone.clone(),
            name: name.clone(),
            pin_hash: pin_hash.clone(),
            tier: Tier::Basic,
            pin_failures: 0,
            pin_locked_until: 0,
            created_at: now,
            pin_free_amount: PIN_FREE_DEFAULT,
        });
        ctx.emit(Event::UserSignedUp { user_id: id });
        self.claim_held(id, ctx);
        Ok(self.users[(id - 1) as usize].view(now))
    }

    pub(super) fn reset_pin(
        &mut self,
        phone: &Phone,
        proof: CodeProof,
        pin_hash: &PinHash,
        ctx: &mut Ctx,
    ) -> Result<UserView, PinResetError> {
        let now = ctx.now();
        // The code first, as at sign-up: a stranger learns nothing about the number.
        self.check_code(phone, proof, now).map_err(PinResetError::Verification)?;
        let Some(&user_id) = self.by_phone.get(phone) else { return Err(PinResetError::UnknownPhone) };
        self.forget_verification(&proof.verification_id);
        let user = self.user_mut(user_id).expect("indexed users exist");
        user.pin_hash = pin_hash.clone();
        user.pin_failures = 0;
        user.pin_locked_until = 0;
        let view = user.view(now);
        // Whoever knew the old PIN is logged out.
        let own: Vec<[u8; 32]> = self.sessions_of(user_id).map(|(_, h)| h).collect();
        for hash in own {
            self.close_session(&hash);
        }
        ctx.emit(Event::PinReset { user_id });
        Ok(view)
    }

    /// Records a login attempt whose PIN the HTTP layer checked: a matching PIN opens a
    /// session (and clears the failure count), a wrong one counts towards the lock. The lock
    /// is checked here, in the same step, so concurrent attempts cannot slip past it.
    pub(super) fn open_session(
        &mut self,
        user_id: u64,
        token_hash: [u8; 32],
        pin_ok: bool,
        ttl_seconds: u32,
        ctx: &mut Ctx,
    ) -> Result<u64, SessionError> {
        let now = ctx.now();
        let Some(user) = self.user_mut(user_id) else { return Err(SessionError::UnknownUser) };
        if user.pin_locked_at(now) {
            return Err(SessionError::Locked { until: user.pin_locked_until });
        }
        if let Err(e) = record_pin_attempt(user, pin_ok, now) {
            if let SessionError::WrongPin { locked_until, .. } = e {
                if locked_until != 0 {
                    ctx.emit(Event::PinLocked { user_id, until: locked_until });
                }
            }
            return Err(e);
        }
        let expires_at = after_seconds(now, u64::from(ttl_seconds));
        if let Some(existing) = self.sessions.get(&token_hash) {
            // A 256-bit random token never repeats; a repeat is a replayed command. Keep the
            // first session as it was.
            return Ok(existing.expires_at);
        }
        while self.sessions_of(user_id).count() >= SESSIONS_PER_USER_MAX {
            let (_, oldest) = self.sessions_of(user_id).next().expect("a user with sessions");
            self.close_session(&oldest);
        }
        self.sessions.insert(token_hash, Session { user_id, created_at: now, expires_at });
        self.session_expiries.insert((expires_at, token_hash));
        self.user_sessions.insert((user_id, now, token_hash));
        Ok(expires_at)
    }

    /// Closes a session; returns whether it existed.
    pub(super) fn close_session(&mut self, token_hash: &[u8; 32]) -> bool {
        let Some(session) = self.sessions.remove(token_hash) else { return false };
        self.session_expiries.remove(&(session.expires_at, *token_hash));
        self.user_sessions.remove(&(session.user_id, session.created_at, *token_hash));
        true
    }

    /// (created_at, token hash) of a user's sessions, oldest first (at most
    /// `SESSIONS_PER_USER_MAX`).
    fn sessions_of(&self, user_id: u64) -> impl Iterator<Item = (u64, [u8; 32])> + '_ {
        self.user_sessions.range((user_id, 0, [0; 32])..=(user_id, u64::MAX, [u8::MAX; 32])).map(|&(_, at, h)| (at, h))
    }

    /// Drops sessions that expired at or before `now`, at most `slice` of them.
    pub(super) fn expire_sessions(&mut self, now: u64, slice: usize) {
        for _ in 0..slice {
            match self.session_expiries.first() {
                Some(&(at, hash)) if at <= now => {
                    self.close_session(&hash);
                }
                _ => break,
            }
        }
    }

    pub(super) fn set_tier(&mut self, user_id: u64, tier: Tier, ctx: &mut Ctx) -> Result<UserView, UserError> {
        let now = ctx.now();
        let user = self.user_mut(user_id).ok_or(UserError::UnknownUser)?;
        let changed = user.tier != tier;
        user.tier = tier;
        let view = user.view(now);
        if changed {
            ctx.emit(Event::TierChanged { user_id, tier });
        }
        Ok(view)
    }

    pub(super) fn unlock_pin(&mut self, user_id: u64, now: u64) -> Result<UserView, UserError> {
        let user = self.user_mut(user_id).ok_or(UserError::UnknownUser)?;
        user.pin_locked_until = 0;
        user.pin_failures = 0;
        Ok(user.view(now))
    }

    /// Lowers (or restores, up to the default) a user's PIN-free budget.
    pub(super) fn set_pin_free_amount(
        &mut self,
        user_id: u64,
        amount: Amount,
        now: u64,
    ) -> Result<UserView, UserError> {
        if amount > PIN_FREE_DEFAULT {
            return Err(UserError::AmountTooHigh { max: PIN_FREE_DEFAULT });
        }
        let user = self.user_mut(user_id).ok_or(UserError::UnknownUser)?;
        user.pin_free_amount = amount;
        Ok(user.view(now))
    }

    /// Authorises a money movement of `amount` out of `user_id`'s wallet: with a PIN (`pin_ok`
    /// is the HTTP layer's verdict on it), which a wrong one counts towards the lock; without
    /// one, only within what is left of the user's PIN-free budget for 24 hours; and either way
    /// within the daily outgoing limit. Returns whether the movement spends the PIN-free budget
    /// (the caller records the spend with `Limits::record_spend` once the money moved).
    pub(crate) fn authorize(
        &mut self,
        user_id: u64,
        amount: Amount,
        pin_ok: Option<bool>,
        ctx: &mut Ctx,
    ) -> Result<bool, super::FundingError> {
        use super::FundingError;
        use crate::limits::SpendRefusal;
        let now = ctx.now();
        let user = self.user(user_id).ok_or(FundingError::UnknownUser)?;
        match pin_ok {
            None => match ctx.limits.check_spend(user_id, user.tier, Some(user.pin_free_amount), amount, now) {
                Ok(()) => Ok(true),
                Err(SpendRefusal::PinRequired) => Err(FundingError::PinRequired),
                Err(SpendRefusal::Limit(e)) => Err(FundingError::LimitExceeded(e)),
            },
            Some(ok) => {
                let tier = user.tier;
                self.check_pin(user_id, ok, ctx)?;
                ctx.limits.check_outgoing(user_id, tier, amount, now).map_err(FundingError::LimitExceeded)?;
                Ok(false)
            }
        }
    }

    /// Counts a PIN sent with a request (`ok`: the HTTP layer's verdict on it): refused while
    /// PIN use is locked; a wrong one counts towards the lock, and the attempt that locks it
    /// emits `user.pin_locked`.
    pub(crate) fn check_pin(&mut self, user_id: u64, ok: bool, ctx: &mut Ctx) -> Result<(), super::FundingError> {
        use super::FundingError;
        let now = ctx.now();
        let user = self.user_mut(user_id).ok_or(FundingError::UnknownUser)?;
        if user.pin_locked_at(now) {
            return Err(FundingError::PinLocked { until: user.pin_locked_until });
        }
        match record_pin_attempt(user, ok, now) {
            Ok(()) => Ok(()),
            Err(SessionError::WrongPin { locked_until, .. }) if locked_until != 0 => {
                ctx.emit(Event::PinLocked { user_id, until: locked_until });
                Err(FundingError::PinLocked { until: locked_until })
            }
            Err(SessionError::WrongPin { attempts_left, .. }) => Err(FundingError::WrongPin { attempts_left }),
            Err(_) => unreachable!("record_pin_attempt only reports wrong pins"),
        }
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
