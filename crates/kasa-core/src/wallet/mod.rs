//! The wallet domain: users who sign up by phone, PINs and sessions, KYC tiers, bank
//! top-ups and withdrawals, remittances, money requests and split bills, and operators'
//! audited adjustments, as commands on the same deterministic state as Kasa's books.
//!
//! How the pieces fit: [`Command`] (in `command.rs`, with its [`Outcome`] and [`Event`]) is
//! applied by [`Wallets::apply`], which dispatches to one file per area: `users.rs` (sign-up,
//! verification codes, PINs, sessions, tiers), `funding.rs`, `remittance.rs`, `requests.rs`,
//! `adjust.rs`. Money moves in Kasa's books through the [`Ctx`]; limits and fees are the
//! shared services of `crate::limits` and `crate::fees`; `history.rs` reads a user's
//! transactions back from the books; `snapshot.rs` writes and reads the domain's tables.
//!
//! What this domain deliberately does not do: hash PINs, draw tokens or codes, encrypt bank
//! account numbers or call a bank. Those need secrets, randomness or I/O, so the HTTP layer
//! does them and the commands carry only the results (a PIN hash, a verdict, a token hash,
//! a sealed account number); the bank's answer comes back as a command, driven by the outbox.

mod adjust;
pub mod command;
pub mod funding;
pub mod history;
pub mod paycode;
mod phone;
pub mod remittance;
pub mod requests;
mod snapshot;
mod users;

pub use command::{
    AdjustError, AdjustmentView, BankAccountView, BankCode, BankResult, CodeProof, Command, Direction, Event,
    FundingView, Last4, Memo, Name, Outcome, PinHash, PinResetError, Reason, Recipient, RemittanceView, RequestStatus,
    RequestView, SealedAccountNumber, SessionError, Share, SignUpError, SplitBillView, UserError, UserView,
    VerificationError, VerificationView, SHARES_MAX,
};
pub use funding::{BankAccount, Funding, FundingError, FundingKind, FundingStatus, LinkError};
pub use history::{Entry, EntryKind, HistoryCursor};
pub use paycode::{CodeError, PaymentCode, PAYMENT_CODE_SECONDS};
pub use phone::{Phone, PhoneError};
pub use remittance::{CancelError, Remittance, RemittanceStatus, SendError};
pub use requests::{MoneyRequest, RequestError, RequestPage, RequestRole, SplitBill};
pub use snapshot::WalletsView;
pub(crate) use snapshot::SECTION_VERSION;
pub use users::{
    Session, User, Verification, PIN_ATTEMPTS_MAX, PIN_LOCK_NANOS, SESSIONS_PER_USER_MAX, VERIFICATIONS_PER_PHONE_MAX,
    VERIFICATION_ATTEMPTS_MAX, VERIFICATION_TTL_SECONDS,
};

use crate::chart;
use crate::codec::{DecodeError, Reader, Sink};
use crate::domain::Domain;
use crate::ledger::{AccountFlags, Ledger, TransferFlags};
use crate::limits::{self, Tier};
use crate::money::Currency;
use crate::table::Table;
use std::collections::{BTreeMap, BTreeSet};

/// The context of a wallet command: the shared services, and wallet events.
pub type Ctx<'a> = crate::context::Ctx<'a, Event>;

/// Longest display name, in characters.
pub const NAME_CHARS_MAX: usize = 50;
/// Longest memo, in characters.
pub const MEMO_CHARS_MAX: usize = 100;

/// The ledger account id of user `user_id`'s wallet in Kasa's books.
pub fn wallet_account_id(user_id: u64) -> u128 {
    chart::WALLET.id(user_id)
}

/// Wallets are in won.
pub const WALLET_CURRENCY: Currency = Currency::KRW;

/// The wallet domain's tables. Deterministic containers only: they are hashed and
/// snapshotted. The tables a snapshot holds are persistent collections (`imbl` vectors and
/// [`Table`]s): a snapshot takes a copy of each in constant time and encodes it on another
/// thread while the writer goes on, and a write copies only the part it changes (a few nodes,
/// a page). Indexes marked *derived* are
/// rebuilt from the tables (and the books) when a snapshot is read, and are never part of the
/// canonical encoding.
#[derive(Clone, Debug, Default)]
pub struct Wallets {
    /// Users by id; ids are dense from 1, so a vector indexed by `id - 1`.
    pub(crate) users: imbl::Vector<User>,
    /// Derived: user id by phone number.
    pub(crate) by_phone: BTreeMap<Phone, u64>,
    pub(crate) sessions: Table<[u8; 32], Session>,
    /// Derived: (expires_at, token hash) of every session, to expire them in time order.
    pub(crate) session_expiries: BTreeSet<(u64, [u8; 32])>,
    /// Derived: (user id, created_at, token hash) of every session, so a user's sessions are
    /// a range (one flat set: no collection per user).
    pub(crate) user_sessions: BTreeSet<(u64, u64, [u8; 32])>,
    pub(crate) verifications: Table<[u8; 16], Verification>,
    /// Derived: (expires_at, id) of every verification.
    pub(crate) verification_expiries: BTreeSet<(u64, [u8; 16])>,
    /// Derived: per phone, (created_at, id) of its live verifications.
    pub(crate) verifications_by_phone: BTreeMap<Phone, BTreeSet<(u64, [u8; 16])>>,
    /// Bank accounts by id (dense from 1).
    pub(crate) bank_accounts: imbl::Vector<BankAccount>,
    /// Derived: (user id, bank account id) of every bank account (one flat set).
    pub(crate) bank_accounts_of: BTreeSet<(u64, u64)>,
    /// Top-ups and withdrawals by id (dense from 1).
    pub(crate) fundings: imbl::Vector<Funding>,
    /// Derived: fundings still waiting for the bank.
    pub(crate) pending_fundings: BTreeSet<u64>,
    /// Remittances by id (dense from 1).
    pub(crate) remittances: imbl::Vector<Remittance>,
    /// Derived: held remittances by recipient number, in order.
    pub(crate) held_for: BTreeMap<Phone, Vec<u64>>,
    /// Derived: per sender, holds their timeout returned: (when, remittance id).
    pub(crate) returned: BTreeMap<u64, Vec<(u64, u64)>>,
    /// Money requests by id (dense from 1).
    pub(crate) requests: imbl::Vector<MoneyRequest>,
    /// Split bills by id (dense from 1).
    pub(crate) bills: imbl::Vector<SplitBill>,
    /// Derived: per user, the requests they were asked to pay and those they made.
    pub(crate) by_payer: BTreeMap<u64, Vec<u64>>,
    pub(crate) by_requester: BTreeMap<u64, Vec<u64>>,
    /// Operators' adjustments by id (dense from 1).
    pub(crate) adjustments: imbl::Vector<adjust::Adjustment>,
    /// Each user's current payment code (`paycode.rs`), by user id.
    pub(crate) payment_codes: Table<u64, PaymentCode>,
}

impl Wallets {
    /// Applies one wallet command.
    pub fn apply(&mut self, command: &Command, ctx: &mut Ctx) -> Outcome {
        match command {
            Command::StartVerification { id, phone, code_hash } => {
                Outcome::VerificationStarted(self.start_verification(*id, phone, *code_hash, ctx))
            }
            Command::SignUp { phone, name, pin_hash, proof } => {
                Outcome::SignedUp(self.sign_up(phone, name, pin_hash, *proof, ctx))
            }
            Command::OpenSession { user_id, token_hash, pin_ok, ttl_seconds } => {
                Outcome::SessionOpened(self.open_session(*user_id, *token_hash, *pin_ok, *ttl_seconds, ctx))
            }
            Command::CloseSession { token_hash } => Outcome::SessionClosed(self.close_session(token_hash)),
            Command::ResetPin { phone, proof, pin_hash } => {
                Outcome::PinReset(self.reset_pin(phone, *proof, pin_hash, ctx))
            }
            Command::SetTier { user_id, tier } => Outcome::UserChanged(self.set_tier(*user_id, *tier, ctx)),
            Command::UnlockPin { user_id } => Outcome::UserChanged(self.unlock_pin(*user_id, ctx.now())),
            Command::SetPinFreeAmount { user_id, amount } => {
                Outcome::UserChanged(self.set_pin_free_amount(*user_id, *amount, ctx.now()))
            }
            Command::SetTierLimits { tier, limits } => Outcome::TierLimitsSet(
                ctx.limits.set_tier(*tier, *limits).map(|()| ctx.limits.tier(*tier)).map_err(command::AboveLegalMaxima),
            ),
            Command::SetWithdrawalFee { fee } => Outcome::WithdrawalFeeSet(if *fee > crate::fees::WITHDRAWAL_FEE_MAX {
                Err(UserError::AmountTooHigh { max: crate::fees::WITHDRAWAL_FEE_MAX })
            } else {
                ctx.fees.withdrawal = crate::fees::FeeSchedule::fixed(*fee);
                Ok(*fee)
            }),
            Command::LinkBankAccount { user_id, bank_code, account_number, holder_name } => Outcome::BankAccountLinked(
                self.link_bank_account(*user_id, bank_code, account_number, holder_name, ctx),
            ),
            Command::StartFunding { user_id, bank_account_id, kind, amount, pin_ok } => {
                Outcome::FundingStarted(self.start_funding(*user_id, *bank_account_id, *kind, *amount, *pin_ok, ctx))
            }
            Command::SettleFunding { funding_id, result } => {
                Outcome::FundingSettled(self.settle_funding(*funding_id, *result, ctx))
            }
            Command::Send { from_user, to, amount, memo, pin_ok } => {
                Outcome::Sent(self.send(*from_user, to, *amount, memo, *pin_ok, ctx))
            }
            Command::CancelRemittance { user_id, remittance_id } => {
                Outcome::RemittanceCancelled(self.cancel_remittance(*user_id, *remittance_id, ctx))
            }
            Command::RequestMoney { requester, from, amount, memo } => {
                Outcome::MoneyRequested(self.request_money(*requester, from, *amount, memo, ctx))
            }
            Command::SplitBill { requester, total, shares, memo } => {
                Outcome::BillSplit(self.split_bill(*requester, *total, shares.as_slice(), memo, ctx))
            }
            Command::AnswerRequest { payer, request_id, pay, pin_ok } => {
                Outcome::RequestAnswered(self.answer_request(*payer, *request_id, *pay, *pin_ok, ctx))
            }
            Command::Adjust { user_id, amount, direction, reason } => {
                Outcome::Adjusted(self.adjust(*user_id, *amount, *direction, reason, ctx))
            }
            Command::IssuePaymentCode { user_id, pin_ok } => {
                Outcome::PaymentCodeIssued(self.issue_payment_code(*user_id, *pin_ok, ctx))
            }
        }
    }

    /// Work that time makes due at the start of a batch, in bounded slices: sessions and
    /// verification codes that expired, and held remittances whose 48 hours passed (the
    /// books expired their holds; `expired` lists them).
    pub fn on_batch_start(&mut self, expired: &[crate::ledger::Transfer], now: u64, slice: usize, ctx: &mut Ctx) {
        self.on_holds_expired(expired, ctx);
        self.expire_sessions(now, slice);
        self.expire_verifications(now, slice);
    }

    /// The earliest time a batch would have wallet work to do by time alone (an expiry of a
    /// session or verification); the books' own expiries are the ledger's to say.
    pub fn next_due(&self) -> Option<u64> {
        let sessions = self.session_expiries.first().map(|&(at, _)| at);
        let verifications = self.verification_expiries.first().map(|&(at, _)| at);
        sessions.into_iter().chain(verifications).min()
    }

    /// Number of users.
    pub fn users_count(&self) -> usize {
        self.users.len()
    }

    /// The user with this id.
    pub fn user(&self, id: u64) -> Option<&User> {
        id.checked_sub(1).and_then(|i| self.users.get(i as usize))
    }

    pub(crate) fn user_mut(&mut self, id: u64) -> Option<&mut User> {
        id.checked_sub(1).and_then(|i| self.users.get_mut(i as usize))
    }

    /// The user with this phone number.
    pub fn user_by_phone(&self, phone: &Phone) -> Option<&User> {
        self.by_phone.get(phone).and_then(|&id| self.user(id))
    }

    /// The session with this token hash, if it is still valid at `now`.
    pub fn session(&self, token_hash: &[u8; 32], now: u64) -> Option<Session> {
        self.sessions.get(token_hash).copied().filter(|s| s.expires_at > now)
    }

    /// Number of open sessions.
    pub fn sessions_count(&self) -> usize {
        self.sessions.len()
    }

    /// Checks the wallet invariants against Kasa's books: every user has a won wallet that
    /// can never go negative and holds no more than the law's highest cap (tier caps are
    /// checked when money moves in; an operator may lower a tier later, so the invariant is
    /// the statutory maximum); every session belongs to a user; every pending funding's
    /// reservation is open in the books, and every settled one's is not.
    pub fn check_invariants(&self, books: &Ledger) -> Result<(), String> {
        let legal_max = Tier::Verified.legal_maxima().balance_cap;
        for user in &self.users {
            let Some(wallet) = books.account(user.wallet_account_id()) else {
                return Err(format!("user {} has no wallet account", user.id));
            };
            if !wallet.flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
                || wallet.ledger != WALLET_CURRENCY.ledger()
            {
                return Err(format!("user {}'s wallet account may go negative or is not in KRW", user.id));
            }
            let balance = limits::balance(wallet);
            if balance > legal_max.ledger() {
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
        for f in &self.fundings {
            let open = books.pending_status(f.transfer_id()) == Some(crate::ledger::PendingStatus::Pending);
            if open != (f.status == FundingStatus::Pending) {
                return Err(format!("funding {} is {} but its reservation open is {open}", f.id, f.status.name()));
            }
        }
        Ok(())
    }

    /// Checks the per-user limits against the transfers one command created in the books
    /// (those after the first `from`): every new wallet credit of Kasa's own (a top-up
    /// reserved, a remittance or claim paid in, an adjustment) left the wallet within its
    /// tier's balance cap, counting pending credits; every new wallet debit that counts as
    /// outgoing (a withdrawal reserved, a remittance sent) left the user's outgoing total for
    /// that KST day within the tier's daily limit, and was counted in it.
    ///
    /// Limits are a property of the moment money moves: an operator may lower a tier's limits
    /// (or a user's tier) later, and balances above the new cap are then legal. So `kasa
    /// verify` runs this after every command of its replay (see `State::audit_limits`). Posts
    /// and voids of pending transfers are not checked: a post moves no new money past the
    /// cap, a void only gives money back. An operator's adjustment debit is not outgoing.
    pub fn check_limits_of_new_transfers(
        &self,
        books: &Ledger,
        limits: &crate::limits::Limits,
        from: usize,
    ) -> Result<(), String> {
        let created = books.transfers_count().saturating_sub(from);
        for t in books.transfers().rev().take(created) {
            if t.flags.has(TransferFlags::POST_PENDING_TRANSFER) || t.flags.has(TransferFlags::VOID_PENDING_TRANSFER) {
                continue;
            }
            // A merchant's refund gives back the user's own money, whatever the cap (see
            // `merchant::refund`).
            let refund = chart::REFUND.number_of(t.id).is_some() || chart::OVERSEAS_REFUND.number_of(t.id).is_some();
            if let Some(user) = self.wallet_owner(t.credit_account_id).filter(|_| !refund) {
                let cap = limits.tier(user.tier).balance_cap;
                let wallet = books.account(t.credit_account_id).expect("a transfer's accounts exist");
                let held = limits::held(wallet);
                if held > cap.ledger() {
                    return Err(format!(
                        "transfer {} put user {}'s wallet at {held} won, over the {} balance cap of {cap}",
                        t.id,
                        user.id,
                        user.tier.name()
                    ));
                }
            }
            if chart::ADJUSTMENT.number_of(t.id).is_some() {
                continue;
            }
            if let Some(user) = self.wallet_owner(t.debit_account_id) {
                let daily = limits.tier(user.tier).daily_outgoing;
                let used = limits.outgoing_today(user.id, t.timestamp);
                if used > daily || t.amount > used.ledger() {
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
        chart::WALLET.number_of(id).and_then(|user_id| self.user(user_id))
    }
}

/// The wallet as a domain of the core (see [`crate::domain`]): its commands, outcomes, events
/// and section, applied through the methods above.
impl Domain for Wallets {
    type Command = Command;
    type Outcome = Outcome;
    type Event = Event;
    type View = WalletsView;

    const SECTION_VERSION: u16 = SECTION_VERSION;

    fn apply(&mut self, command: &Command, ctx: &mut Ctx<'_>) -> Outcome {
        Wallets::apply(self, command, ctx)
    }

    fn events_max(command: &Command) -> usize {
        command.events_max()
    }

    fn event_name(event: &Event) -> &'static str {
        event.name()
    }

    fn on_batch_start(&mut self, expired: &[crate::ledger::Transfer], now: u64, slice: usize, ctx: &mut Ctx<'_>) {
        Wallets::on_batch_start(self, expired, now, slice, ctx);
    }

    fn view(&self) -> WalletsView {
        Wallets::view(self)
    }

    fn write_section(view: &WalletsView, sink: &mut impl Sink) {
        view.write_section(sink);
    }

    fn read_section<R: std::io::Read>(reader: &mut Reader<R>, books: &Ledger) -> Result<Wallets, DecodeError> {
        Wallets::read_section(reader, books)
    }

    fn check_invariants(&self, books: &Ledger) -> Result<(), String> {
        Wallets::check_invariants(self, books)
    }

    fn check_limits_of_new_transfers(
        &self,
        books: &Ledger,
        limits: &crate::limits::Limits,
        from: usize,
    ) -> Result<(), String> {
        Wallets::check_limits_of_new_transfers(self, books, limits, from)
    }
}
