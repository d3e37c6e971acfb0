//! The core's refusals as problems, in one place: the same refusal gets the same code and
//! status from every endpoint that can meet it. Only the caller's own limits are detailed;
//! about another user, nothing is said but that they cannot receive.

use crate::problem::{LimitDetail, Problem};
use kasa_core::limits::LimitExceeded;
use kasa_core::wallet::{
    AdjustError, CancelError, FundingError, LinkError, PinResetError, RequestError, SendError, SignUpError, UserError,
    VerificationError, WALLET_CURRENCY,
};

/// The problem for one of the caller's limits.
pub fn limit_exceeded(limit: LimitExceeded) -> Problem {
    let mut p = Problem::of(
        "limit_exceeded",
        format!("the {} limit of {} won has {} won left", limit.limit.name(), limit.value, limit.remaining),
    );
    p.limit = Some(Box::new(LimitDetail {
        limit: limit.limit.name(),
        value: limit.value.to_string(),
        remaining: limit.remaining.to_string(),
        currency: WALLET_CURRENCY.code(),
    }));
    p
}

/// A refused top-up, withdrawal or the sender's side of a transfer.
pub fn funding(error: FundingError) -> Problem {
    let detail = error.to_string();
    match error {
        FundingError::LimitExceeded(limit) => limit_exceeded(limit),
        FundingError::InsufficientFunds => Problem::of("insufficient_funds", detail),
        FundingError::PinRequired => Problem::of("pin_required", detail),
        FundingError::WrongPin { .. } => Problem::of("wrong_pin", detail),
        FundingError::PinLocked { .. } => Problem::of(
            "pin_locked",
            "PIN use is locked for 30 minutes after five wrong PINs; reset the PIN to unlock it now",
        ),
        FundingError::UnknownBankAccount => Problem::not_found("no such bank account of yours"),
        FundingError::InvalidAmount => Problem::invalid_field("the amount must be a positive number of won"),
        FundingError::UnknownUser => Problem::session_required(),
        FundingError::Ledger(_) => Problem::of("ledger_refused", detail),
    }
}

/// A refused transfer between users (also when paying a money request).
pub fn send(error: SendError) -> Problem {
    let detail = error.to_string();
    match error {
        SendError::Funding(e) => funding(e),
        SendError::UnknownRecipient => Problem::not_found("no user has this id"),
        SendError::ToSelf => Problem::of("to_self", detail),
        SendError::RecipientCannotReceive => Problem::of("recipient_cannot_receive", detail),
        SendError::UnknownUser => Problem::session_required(),
    }
}

/// A refused cancel.
pub fn cancel(error: CancelError) -> Problem {
    match error {
        CancelError::NotFound => Problem::not_found("no such transfer of yours"),
        CancelError::NotHeld => Problem::of("not_held", "this transfer was delivered, returned or cancelled already"),
    }
}

/// A refused money request or split bill, or a refused answer to one.
pub fn request(error: RequestError) -> Problem {
    let detail = error.to_string();
    match error {
        RequestError::UnknownUser => Problem::session_required(),
        RequestError::UnknownPayer => Problem::not_found(detail),
        RequestError::ToSelf => Problem::of("to_self", detail),
        RequestError::InvalidAmount => Problem::invalid_field(detail),
        RequestError::InvalidShares | RequestError::SharesExceedTotal => Problem::of("invalid_shares", detail),
        RequestError::NotFound => Problem::not_found("no such money request of yours"),
        RequestError::NotPending(_) => Problem::of("not_pending", detail),
        RequestError::Payment(e) => send(e),
    }
}

/// A refused link of a bank account.
pub fn link(error: LinkError) -> Problem {
    let detail = error.to_string();
    match error {
        LinkError::AlreadyLinked => Problem::of("already_linked", detail),
        LinkError::TooMany => Problem::of("too_many_bank_accounts", detail),
        LinkError::UnknownUser => Problem::session_required(),
    }
}

/// A refused verification code.
pub fn verification(error: VerificationError) -> Problem {
    let detail = error.to_string();
    match error {
        VerificationError::WrongCode { .. } => Problem::of("wrong_code", detail),
        VerificationError::Invalid | VerificationError::Exists => Problem::of("verification_failed", detail),
    }
}

/// A refused sign-up.
pub fn sign_up(error: SignUpError) -> Problem {
    match error {
        SignUpError::PhoneTaken => {
            Problem::of("phone_taken", "a wallet exists for this phone number; log in, or reset the PIN")
        }
        SignUpError::Verification(e) => verification(e),
    }
}

/// A refused PIN reset.
pub fn pin_reset(error: PinResetError) -> Problem {
    match error {
        PinResetError::UnknownPhone => Problem::not_found("no wallet has this phone number"),
        PinResetError::Verification(e) => verification(e),
    }
}

/// A refused change to a user.
pub fn user(error: UserError) -> Problem {
    match error {
        UserError::UnknownUser => Problem::not_found("no such user"),
        UserError::AmountTooHigh { max } => Problem::invalid_field(format!("the amount may be at most {max} won")),
    }
}

/// A refused adjustment.
pub fn adjust(error: AdjustError) -> Problem {
    let detail = error.to_string();
    match error {
        AdjustError::UnknownUser => Problem::not_found("no such user"),
        AdjustError::InvalidAmount => Problem::invalid_field(detail),
        AdjustError::BalanceCap { cap, remaining } => {
            limit_exceeded(LimitExceeded { limit: kasa_core::limits::LimitKind::BalanceCap, value: cap, remaining })
        }
        AdjustError::InsufficientFunds { .. } => Problem::of("insufficient_funds", detail),
    }
}
