//! One-time payment codes: the barcode a user shows at a till, which the merchant's system
//! charges (`merchant::instore`).
//!
//! The state keeps one row per user, never a code: a counter that each issue moves, when the
//! current code was issued, whether the PIN was given for it, and whether it was used. The
//! HTTP layer derives the digits from the user, the counter and the issue time with a key
//! the state never sees, and checks a code it is shown against the same; the state then
//! checks that the code is the user's current one, unused and in time. A new code replaces
//! the one before it.
//!
//! **Consent.** Showing a code is the user's consent up to the PIN-free budget. A code
//! issued with the PIN may be charged above it, up to the daily limit; a code issued
//! without it may not (`PinRequired` at the charge). A locked PIN issues no code, and a
//! lock that comes after the issue stops the code's charge.

use super::{FundingError, Wallets};
use crate::context::Ctx;
use serde::{Deserialize, Serialize};

/// How long a payment code may be charged after its issue: 60 seconds.
pub const PAYMENT_CODE_SECONDS: u32 = 60;

/// A user's current payment code, as the state keeps it (the digits are derived, not kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCode {
    /// Whose.
    pub user_id: u64,
    /// How many codes the user was issued, this one included.
    pub counter: u32,
    /// When it was issued.
    pub issued_at: u64,
    /// Whether the PIN was given for it: it may be charged above the PIN-free budget.
    pub with_pin: bool,
    /// Whether a merchant charged it.
    pub used: bool,
}

impl PaymentCode {
    /// When it stops being chargeable.
    pub fn expires_at(&self) -> u64 {
        crate::time::after_seconds(self.issued_at, u64::from(PAYMENT_CODE_SECONDS))
    }
}

/// Why a payment code could not be charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodeError {
    /// Not the user's current code (never issued, or replaced by a newer one).
    Invalid,
    /// Its 60 seconds are over.
    Expired,
    /// A merchant charged it already.
    Used,
}

impl Wallets {
    /// Issues the user a new payment code, replacing the one before. `pin_ok` is the HTTP
    /// layer's verdict on a PIN sent with the request (`None`: no PIN, the code is good up to
    /// the PIN-free budget).
    pub(super) fn issue_payment_code(
        &mut self,
        user_id: u64,
        pin_ok: Option<bool>,
        ctx: &mut Ctx<super::Event>,
    ) -> Result<PaymentCode, FundingError> {
        let now = ctx.now();
        let user = self.user(user_id).ok_or(FundingError::UnknownUser)?;
        if user.pin_locked_at(now) {
            return Err(FundingError::PinLocked { until: user.pin_locked_until });
        }
        if let Some(ok) = pin_ok {
            self.check_pin(user_id, ok, ctx)?;
        }
        let counter = self.payment_codes.get(&user_id).map_or(0, |c| c.counter).saturating_add(1);
        let code = PaymentCode { user_id, counter, issued_at: now, with_pin: pin_ok == Some(true), used: false };
        self.payment_codes.insert(user_id, code);
        Ok(code)
    }

    /// The user's current payment code, if one was ever issued.
    pub fn payment_code(&self, user_id: u64) -> Option<&PaymentCode> {
        self.payment_codes.get(&user_id)
    }

    /// Checks that `counter` names the user's current code and that it can be charged at
    /// `now`.
    pub(crate) fn chargeable_code(&self, user_id: u64, counter: u32, now: u64) -> Result<PaymentCode, CodeError> {
        let code = self.payment_codes.get(&user_id).filter(|c| c.counter == counter).ok_or(CodeError::Invalid)?;
        if code.used {
            return Err(CodeError::Used);
        }
        if code.expires_at() <= now {
            return Err(CodeError::Expired);
        }
        Ok(*code)
    }

    /// Marks the user's current code used.
    pub(crate) fn use_code(&mut self, user_id: u64) {
        let mut code = *self.payment_codes.get(&user_id).expect("the caller checked the code");
        code.used = true;
        self.payment_codes.insert(user_id, code);
    }

    /// Checks that the user may pay `amount` with a code issued with or without the PIN, as
    /// [`Wallets::authorize`] does for a request: the lock, then the PIN-free budget (for a
    /// code without the PIN) or the daily limit. Returns whether the payment is PIN-free.
    pub(crate) fn authorize_code(
        &self,
        user_id: u64,
        amount: crate::money::Amount,
        with_pin: bool,
        ctx: &Ctx<super::Event>,
    ) -> Result<bool, FundingError> {
        use crate::limits::SpendRefusal;
        let now = ctx.now();
        let user = self.user(user_id).ok_or(FundingError::UnknownUser)?;
        if user.pin_locked_at(now) {
            return Err(FundingError::PinLocked { until: user.pin_locked_until });
        }
        let budget = if with_pin { None } else { Some(user.pin_free_amount) };
        match ctx.limits.check_spend(user_id, user.tier, budget, amount, now) {
            Ok(()) => Ok(!with_pin),
            Err(SpendRefusal::PinRequired) => Err(FundingError::PinRequired),
            Err(SpendRefusal::Limit(e)) => Err(FundingError::LimitExceeded(e)),
        }
    }
}
