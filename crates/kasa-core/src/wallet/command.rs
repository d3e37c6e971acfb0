//! The wallet domain's commands, outcomes and events, and the bounded types they carry.
//!
//! Every field is bounded by its type (see [`crate::text`]): the HTTP layer builds these
//! types from a request before a command exists, so a command that can be built can always
//! be journaled and read back. Outcomes carry everything a response shows (a view of the
//! object as it was right after the command), so that the answer to a keyed request can be
//! stored with its effect and rendered again, identically, for a retry.
//!
//! Variants and fields are only ever appended (the codec numbers variants by position).

use super::funding::{FundingError, FundingKind, FundingStatus, LinkError};
use super::phone::Phone;
use super::remittance::{CancelError, RemittanceStatus, SendError};
use super::requests::RequestError;
use crate::limits::{Tier, TierLimits};
use crate::money::Amount;
use crate::text::{chars_at_most, digits, label, no_control, text_rule, BoundedVec};
use serde::{Deserialize, Serialize};

text_rule!(
    /// A display name: 1 to 50 characters, not blank, no control characters.
    Name, NameRule, 200, "a name", true,
    |v| label(v, super::NAME_CHARS_MAX, "a name")
);

text_rule!(
    /// A note for the other party: up to 100 characters, no control characters.
    Memo, MemoRule, 400, "a memo", true,
    |v| {
        chars_at_most(v, super::MEMO_CHARS_MAX, "a memo")?;
        no_control(v, "a memo")
    }
);

text_rule!(
    /// Why an operator adjusted a wallet: 1 to 200 characters, no control characters.
    Reason, ReasonRule, 800, "a reason", true,
    |v| label(v, 200, "a reason")
);

text_rule!(
    /// The Argon2id PHC string of a PIN, hashed by the HTTP layer (never the PIN itself).
    PinHash, PinHashRule, 256, "a PIN hash", false,
    |v| if v.starts_with('$') && v.is_ascii() { Ok(()) } else { Err("a PIN hash is a PHC string".into()) }
);

text_rule!(
    /// A Korean bank code: 3 digits (004 KB Kookmin, 088 Shinhan, ...).
    BankCode, BankCodeRule, 3, "a bank code", true,
    |v| digits(v, 3..=3, "a bank code")
);

text_rule!(
    /// The last four digits of a bank account number, the only part shown.
    Last4, Last4Rule, 4, "the last digits of an account number", true,
    |v| digits(v, 4..=4, "the last digits of an account number")
);

/// A bank account number as the state keeps it: only encrypted (an AEAD with the data key
/// that the HTTP layer holds), matched by a keyed hash, and shown by its last four digits.
/// The core never sees the number itself, so neither the journal nor a snapshot holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedAccountNumber {
    /// Nonce and ciphertext of the digits (XChaCha20-Poly1305: 24 + 10..16 + 16 bytes).
    pub ciphertext: BoundedVec<u8, 64>,
    /// A keyed hash of the bank code and digits: the same account links once per user.
    pub lookup: [u8; 32],
    /// The last four digits.
    pub last4: Last4,
}

/// Proof of a phone number: a verification and the keyed hash of the code the user typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeProof {
    /// The verification's id.
    pub verification_id: [u8; 16],
    /// The keyed hash of the phone number and the code typed.
    pub code_hash: [u8; 32],
}

/// Who money goes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipient {
    /// A user, by id.
    User(u64),
    /// A phone number, with or without a wallet.
    Phone(Phone),
}

/// One friend's share of a split bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// Who.
    pub payer: Recipient,
    /// Their share, in won.
    pub amount: Amount,
}

/// The most shares in one split bill.
pub const SHARES_MAX: usize = 50;

/// Credit (money into the wallet) or debit (out of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Into the wallet.
    Credit,
    /// Out of the wallet.
    Debit,
}

impl Direction {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Credit => "credit",
            Direction::Debit => "debit",
        }
    }
}

/// A bank's answer to a top-up or withdrawal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankResult {
    /// The bank moved the money.
    Approved,
    /// The bank refused.
    Declined,
    /// The bank says it never took the request, or did not answer within its timeout.
    Expired,
}

/// A command of the wallet domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A verification code was sent to a phone (the HTTP layer drew the id and the code and
    /// hashed the code with its key).
    StartVerification {
        /// A random id.
        id: [u8; 16],
        /// Where the code went.
        phone: Phone,
        /// The keyed hash of the phone number and the code.
        code_hash: [u8; 32],
    },
    /// Sign a user up: the user and their wallet account, both or neither, once the phone is
    /// proven by a verification code.
    SignUp {
        /// The phone number.
        phone: Phone,
        /// The display name.
        name: Name,
        /// The PIN's hash.
        pin_hash: PinHash,
        /// The verification of the phone.
        proof: CodeProof,
    },
    /// A login attempt whose PIN the HTTP layer checked.
    OpenSession {
        /// Who (0: no such user; refused like a wrong PIN).
        user_id: u64,
        /// The hash of the new session's token (the token itself is never stored).
        token_hash: [u8; 32],
        /// Whether the PIN matched.
        pin_ok: bool,
        /// How long the session lasts, in seconds.
        ttl_seconds: u32,
    },
    /// Log out.
    CloseSession {
        /// The session's token hash.
        token_hash: [u8; 32],
    },
    /// The owner of a phone sets a new PIN with a fresh verification code: it lifts a lock
    /// and closes every session.
    ResetPin {
        /// The user's phone number.
        phone: Phone,
        /// The verification of the phone.
        proof: CodeProof,
        /// The new PIN's hash.
        pin_hash: PinHash,
    },
    /// An operator sets a user's KYC tier.
    SetTier {
        /// Who.
        user_id: u64,
        /// The new tier.
        tier: Tier,
    },
    /// An operator sets a tier's limits (at most the legal maxima).
    SetTierLimits {
        /// Which tier.
        tier: Tier,
        /// The limits.
        limits: TierLimits,
    },
    /// An operator sets the withdrawal fee (at most [`crate::fees::WITHDRAWAL_FEE_MAX`]).
    SetWithdrawalFee {
        /// Won per withdrawal.
        fee: Amount,
    },
    /// An operator lifts a user's PIN lock.
    UnlockPin {
        /// Who.
        user_id: u64,
    },
    /// A user sets their PIN-free budget for 24 hours (at most the default).
    SetPinFreeAmount {
        /// Who.
        user_id: u64,
        /// Won.
        amount: Amount,
    },
    /// A user links a bank account.
    LinkBankAccount {
        /// Who.
        user_id: u64,
        /// The bank.
        bank_code: BankCode,
        /// The account number, sealed.
        account_number: SealedAccountNumber,
        /// The name on the account.
        holder_name: Name,
    },
    /// A user starts a top-up or a withdrawal.
    StartFunding {
        /// Who.
        user_id: u64,
        /// From or to which bank account.
        bank_account_id: u64,
        /// Top-up or withdrawal.
        kind: FundingKind,
        /// Won.
        amount: Amount,
        /// The HTTP layer's verdict on a PIN sent with the request (`None`: no PIN sent).
        pin_ok: Option<bool>,
    },
    /// A bank's answer to a top-up or withdrawal.
    SettleFunding {
        /// Which.
        funding_id: u64,
        /// What the bank said.
        result: BankResult,
    },
    /// A user sends money to another user or to a phone number.
    Send {
        /// The sender.
        from_user: u64,
        /// The recipient.
        to: Recipient,
        /// Won.
        amount: Amount,
        /// A note for the recipient.
        memo: Memo,
        /// The HTTP layer's verdict on a PIN sent with the request.
        pin_ok: Option<bool>,
    },
    /// The sender cancels a held remittance.
    CancelRemittance {
        /// The sender.
        user_id: u64,
        /// Which.
        remittance_id: u64,
    },
    /// A user asks another for money.
    RequestMoney {
        /// Who asks.
        requester: u64,
        /// Who is asked.
        from: Recipient,
        /// Won.
        amount: Amount,
        /// A note.
        memo: Memo,
    },
    /// A user asks several friends for their shares of a bill.
    SplitBill {
        /// Who asks.
        requester: u64,
        /// The whole bill.
        total: Amount,
        /// The shares.
        shares: BoundedVec<Share, SHARES_MAX>,
        /// A note.
        memo: Memo,
    },
    /// The payer pays or declines a money request.
    AnswerRequest {
        /// The payer.
        payer: u64,
        /// Which request.
        request_id: u64,
        /// Pay (true) or decline.
        pay: bool,
        /// The HTTP layer's verdict on a PIN sent with the request.
        pin_ok: Option<bool>,
    },
    /// An operator credits or debits a wallet, within its caps, with a reason on record.
    Adjust {
        /// Whose wallet.
        user_id: u64,
        /// Won.
        amount: Amount,
        /// Into or out of the wallet.
        direction: Direction,
        /// Why.
        reason: Reason,
    },
    /// A user is issued a new one-time payment code (see `paycode.rs`).
    IssuePaymentCode {
        /// Who.
        user_id: u64,
        /// The HTTP layer's verdict on a PIN sent with the request (`None`: no PIN, the code
        /// is good up to the PIN-free budget).
        pin_ok: Option<bool>,
    },
}

impl Command {
    /// The command with its acting user set to `user_id`, for the commands a session may run
    /// in one trip (see `Command::AsSession`); `None` for the others.
    pub fn with_user(&self, user_id: u64) -> Option<Command> {
        match self {
            Command::Send { to, amount, memo, pin_ok, .. } => Some(Command::Send {
                from_user: user_id,
                to: to.clone(),
                amount: *amount,
                memo: memo.clone(),
                pin_ok: *pin_ok,
            }),
            Command::IssuePaymentCode { pin_ok, .. } => Some(Command::IssuePaymentCode { user_id, pin_ok: *pin_ok }),
            _ => None,
        }
    }

    /// The most event timestamps the command can use (the sequencer checks that a batch's
    /// timestamps cannot overflow).
    pub fn events_max(&self) -> usize {
        match self {
            // The wallet account, and a post and a payout per claimed hold.
            Command::SignUp { .. } => 1 + 2 * super::remittance::HOLDS_PER_PHONE_MAX,
            // A post and the fee linked with it.
            Command::SettleFunding { .. } => 2,
            _ => 1,
        }
    }
}

/// A user as a response shows it (never the PIN hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// The user id.
    pub id: u64,
    /// The phone number.
    pub phone: Phone,
    /// The display name.
    pub name: Name,
    /// The KYC tier.
    pub tier: Tier,
    /// PIN use is locked until then, if later than `as_of`.
    pub pin_locked_until: u64,
    /// The PIN-free budget for 24 hours.
    pub pin_free_amount: Amount,
    /// When the user signed up.
    pub created_at: u64,
    /// The time this view is of.
    pub as_of: u64,
}

impl UserView {
    /// Whether PIN use was locked at the time of the view.
    pub fn pin_locked(&self) -> bool {
        self.pin_locked_until > self.as_of
    }
}

/// A started verification as a response shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationView {
    /// Its id.
    pub id: [u8; 16],
    /// When the code stops working.
    pub expires_at: u64,
}

/// A linked bank account as a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccountView {
    /// Its id.
    pub id: u64,
    /// The bank.
    pub bank_code: BankCode,
    /// The last four digits of the number.
    pub last4: Last4,
    /// The name on the account.
    pub holder_name: Name,
    /// When it was linked.
    pub created_at: u64,
}

/// A top-up or withdrawal as a response shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingView {
    /// Its id.
    pub id: u64,
    /// Top-up or withdrawal.
    pub kind: FundingKind,
    /// The user.
    pub user_id: u64,
    /// The bank account.
    pub bank_account_id: u64,
    /// Won.
    pub amount: Amount,
    /// Kasa's fee on top (withdrawals): reserved while pending, charged once paid out, 0 once
    /// declined or expired.
    pub fee: Amount,
    /// Where it stands.
    pub status: FundingStatus,
    /// When it started.
    pub created_at: u64,
    /// The id of its pending transfer in Kasa's books.
    pub transfer_id: u128,
}

/// A remittance as a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittanceView {
    /// Its id.
    pub id: u64,
    /// Where it stands.
    pub status: RemittanceStatus,
    /// Won.
    pub amount: Amount,
    /// The note.
    pub memo: Memo,
    /// The sender.
    pub from_user: u64,
    /// The recipient, once known.
    pub to_user: Option<u64>,
    /// The number it is held for, if any.
    pub to_phone: Option<Phone>,
    /// When it was sent.
    pub created_at: u64,
    /// The id of its transfer in Kasa's books.
    pub transfer_id: u128,
}

/// Where a money request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    /// Waiting for the payer.
    Pending,
    /// Paid.
    Paid,
    /// Declined by the payer.
    Declined,
}

/// A money request as a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    /// Its id.
    pub id: u64,
    /// Who asks.
    pub requester: u64,
    /// Who is asked.
    pub payer: u64,
    /// Won.
    pub amount: Amount,
    /// The note.
    pub memo: Memo,
    /// Answered or not.
    pub status: RequestStatus,
    /// The remittance that paid it (0: none).
    pub remittance_id: u64,
    /// The split bill it belongs to (0: none).
    pub split_bill_id: u64,
    /// When it was made.
    pub created_at: u64,
    /// When it stops being payable.
    pub expires_at: u64,
    /// The time this view is of.
    pub as_of: u64,
}

impl RequestView {
    /// The status name at the time of the view: a pending request past its time is `expired`.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            RequestStatus::Pending if self.as_of >= self.expires_at => "expired",
            RequestStatus::Pending => "pending",
            RequestStatus::Paid => "paid",
            RequestStatus::Declined => "declined",
        }
    }
}

/// A split bill as a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitBillView {
    /// Its id.
    pub id: u64,
    /// Who paid the bill.
    pub requester: u64,
    /// The whole bill.
    pub total: Amount,
    /// The note.
    pub memo: Memo,
    /// The requests for the shares.
    pub requests: BoundedVec<RequestView, SHARES_MAX>,
    /// When it was made.
    pub created_at: u64,
}

/// An operator's adjustment as a response shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentView {
    /// Its id.
    pub id: u64,
    /// Whose wallet.
    pub user_id: u64,
    /// Won.
    pub amount: Amount,
    /// Into or out of the wallet.
    pub direction: Direction,
    /// Why.
    pub reason: Reason,
    /// When.
    pub created_at: u64,
    /// The id of its transfer in Kasa's books.
    pub transfer_id: u128,
}

/// Why a user-level operation (tier, unlock, settings) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum UserError {
    /// No such user.
    #[error("no such user")]
    UnknownUser,
    /// An amount above what is allowed.
    #[error("the amount may be at most {max} won")]
    AmountTooHigh {
        /// The most allowed.
        max: Amount,
    },
}

/// Why a verification code was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum VerificationError {
    /// No such verification for this phone, or it was used or expired.
    #[error("the verification is unknown, used or expired; request a new code")]
    Invalid,
    /// The code was wrong.
    #[error("the code is wrong; {attempts_left} attempts left")]
    WrongCode {
        /// Tries before the verification is spent.
        attempts_left: u8,
    },
    /// A verification with this id exists (a replayed request).
    #[error("a verification with this id exists")]
    Exists,
}

/// Why a sign-up was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SignUpError {
    /// Another user has this phone number.
    #[error("the phone number is already registered")]
    PhoneTaken,
    /// The phone was not proven.
    #[error("{0}")]
    Verification(VerificationError),
}

/// Why a PIN reset was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PinResetError {
    /// No wallet has this phone number.
    #[error("no wallet has this phone number")]
    UnknownPhone,
    /// The phone was not proven.
    #[error("{0}")]
    Verification(VerificationError),
}

/// Why a session was not opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
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

/// Why an adjustment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AdjustError {
    /// No such user.
    #[error("no such user")]
    UnknownUser,
    /// The amount is zero.
    #[error("the amount must be positive")]
    InvalidAmount,
    /// A credit would pass the wallet's balance cap.
    #[error("the wallet's balance cap of {cap} won has {remaining} won left")]
    BalanceCap {
        /// The cap.
        cap: Amount,
        /// What is left of it.
        remaining: Amount,
    },
    /// A debit of more than the wallet has available.
    #[error("the wallet has {available} won available")]
    InsufficientFunds {
        /// What it has available.
        available: Amount,
    },
}

/// Why a tier's limits were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("the tier's limits may not exceed its legal maxima (balance cap {}, daily outgoing {})", .0.balance_cap, .0.daily_outgoing)]
pub struct AboveLegalMaxima(pub TierLimits);

/// The outcome of a wallet command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// `StartVerification`.
    VerificationStarted(Result<VerificationView, VerificationError>),
    /// `SignUp`: the new user, or why not.
    SignedUp(Result<UserView, SignUpError>),
    /// `OpenSession`: when the session expires, or why not.
    SessionOpened(Result<u64, SessionError>),
    /// `CloseSession`: whether there was such a session.
    SessionClosed(bool),
    /// `ResetPin`.
    PinReset(Result<UserView, PinResetError>),
    /// `SetTier`, `UnlockPin`, `SetPinFreeAmount`: the user after the change.
    UserChanged(Result<UserView, UserError>),
    /// `SetTierLimits`: the limits now in force.
    TierLimitsSet(Result<TierLimits, AboveLegalMaxima>),
    /// `SetWithdrawalFee`: the fee now in force.
    WithdrawalFeeSet(Result<Amount, UserError>),
    /// `LinkBankAccount`.
    BankAccountLinked(Result<BankAccountView, LinkError>),
    /// `StartFunding`.
    FundingStarted(Result<FundingView, FundingError>),
    /// `SettleFunding`: the funding after the answer (`None`: no such funding).
    FundingSettled(Option<FundingView>),
    /// `Send`.
    Sent(Result<RemittanceView, SendError>),
    /// `CancelRemittance`.
    RemittanceCancelled(Result<RemittanceView, CancelError>),
    /// `RequestMoney`.
    MoneyRequested(Result<RequestView, RequestError>),
    /// `SplitBill`.
    BillSplit(Result<SplitBillView, RequestError>),
    /// `AnswerRequest`: the request after the answer.
    RequestAnswered(Result<RequestView, RequestError>),
    /// `Adjust`.
    Adjusted(Result<AdjustmentView, AdjustError>),
    /// `IssuePaymentCode`: the user's new code (the HTTP layer derives its digits).
    PaymentCodeIssued(Result<super::PaymentCode, super::FundingError>),
}

/// Something that happened in the wallet domain, for the outbox (see `crate::event`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A user signed up.
    UserSignedUp {
        /// Who.
        user_id: u64,
    },
    /// Too many wrong PINs locked PIN use.
    PinLocked {
        /// Whose.
        user_id: u64,
        /// Until when.
        until: u64,
    },
    /// The owner reset the PIN with a verification code.
    PinReset {
        /// Whose.
        user_id: u64,
    },
    /// An operator changed a user's tier.
    TierChanged {
        /// Whose.
        user_id: u64,
        /// The new tier.
        tier: Tier,
    },
    /// A user linked a bank account.
    BankAccountLinked {
        /// Whose.
        user_id: u64,
        /// Which.
        bank_account_id: u64,
    },
    /// A top-up or withdrawal was reserved and waits for the bank: the bank rail consumer
    /// asks the bank.
    FundingStarted {
        /// Which.
        funding_id: u64,
        /// Whose.
        user_id: u64,
        /// Top-up or withdrawal.
        kind: FundingKind,
        /// Won.
        amount: Amount,
    },
    /// The bank's answer was recorded.
    FundingSettled {
        /// Which.
        funding_id: u64,
        /// Whose.
        user_id: u64,
        /// How it ended.
        status: FundingStatus,
    },
    /// Money went from one wallet to another.
    RemittanceCompleted {
        /// Which.
        remittance_id: u64,
        /// The sender.
        from_user: u64,
        /// The recipient.
        to_user: u64,
        /// Won.
        amount: Amount,
    },
    /// Money was held for a number without a wallet.
    RemittanceHeld {
        /// Which.
        remittance_id: u64,
        /// The sender.
        from_user: u64,
        /// Won.
        amount: Amount,
    },
    /// A held remittance was claimed by the number's new wallet.
    RemittanceClaimed {
        /// Which.
        remittance_id: u64,
        /// The new user.
        to_user: u64,
    },
    /// The sender cancelled a held remittance.
    RemittanceCancelled {
        /// Which.
        remittance_id: u64,
    },
    /// A hold nobody claimed went back to its sender.
    RemittanceReturned {
        /// Which.
        remittance_id: u64,
    },
    /// A user asked another for money.
    MoneyRequested {
        /// Which.
        request_id: u64,
        /// Who asks.
        requester: u64,
        /// Who is asked.
        payer: u64,
        /// Won.
        amount: Amount,
    },
    /// A request was paid.
    RequestPaid {
        /// Which.
        request_id: u64,
        /// The remittance that paid it.
        remittance_id: u64,
    },
    /// A request was declined.
    RequestDeclined {
        /// Which.
        request_id: u64,
    },
    /// An operator adjusted a wallet.
    WalletAdjusted {
        /// Which adjustment.
        adjustment_id: u64,
        /// Whose wallet.
        user_id: u64,
        /// Into or out of it.
        direction: Direction,
        /// Won.
        amount: Amount,
    },
}

impl Event {
    /// The event's stable type name (`funding.settled`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::UserSignedUp { .. } => "user.signed_up",
            Event::PinLocked { .. } => "user.pin_locked",
            Event::PinReset { .. } => "user.pin_reset",
            Event::TierChanged { .. } => "user.tier_changed",
            Event::BankAccountLinked { .. } => "bank_account.linked",
            Event::FundingStarted { .. } => "funding.started",
            Event::FundingSettled { .. } => "funding.settled",
            Event::RemittanceCompleted { .. } => "remittance.completed",
            Event::RemittanceHeld { .. } => "remittance.held",
            Event::RemittanceClaimed { .. } => "remittance.claimed",
            Event::RemittanceCancelled { .. } => "remittance.cancelled",
            Event::RemittanceReturned { .. } => "remittance.returned",
            Event::MoneyRequested { .. } => "money_request.created",
            Event::RequestPaid { .. } => "money_request.paid",
            Event::RequestDeclined { .. } => "money_request.declined",
            Event::WalletAdjusted { .. } => "wallet.adjusted",
        }
    }
}
