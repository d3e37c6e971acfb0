//! Funding: linked bank accounts, top-ups (bank to wallet) and withdrawals (wallet to bank).
//!
//! Both are two-phase: starting one reserves the money as a pending ledger transfer between
//! the user's wallet and the bank omnibus account (the mirror of what Kasa holds at partner
//! banks) with a timeout; the bank's answer arrives later as its own command and posts or
//! voids it; no answer lets the timeout void it, by engine time. The bank is never called
//! from here: the HTTP layer asks the bank rail and turns the answer into a command, so a
//! replay never calls the bank again.
//!
//! Limits are checked here, in the same step as the reservation: the balance cap counts
//! pending top-ups, and the daily outgoing limit counts withdrawals from the moment they
//! start (a declined or expired one gives its amount back).

use super::{domain_id, domain_id_parts, get_str, put_str, Wallets, KRW_LEDGER};
use crate::ledger::{Account, Ledger, PendingStatus, Transfer, TransferFlags};
use std::collections::BTreeMap;

/// Account code of the bank omnibus account.
pub const CODE_BANK_OMNIBUS: u16 = 2001;
/// Transfer code of a top-up.
pub const CODE_TOP_UP: u16 = 3001;
/// Transfer code of a withdrawal.
pub const CODE_WITHDRAWAL: u16 = 3002;
/// Bank accounts one user may link.
pub const BANK_ACCOUNTS_PER_USER_MAX: usize = 5;
/// Seconds a bank has to answer before the reservation is voided by its timeout.
pub const BANK_ANSWER_TIMEOUT_SECONDS: u32 = 60;
/// A withdrawal above this many won needs the PIN, unless the user lowered it.
pub const PIN_FREE_KRW_DEFAULT: u64 = 50_000;
/// Seconds east of UTC of Korea Standard Time: daily limits reset at midnight KST.
const KST_OFFSET_SECONDS: u64 = 9 * 3600;

/// Kind numbers of domain ids (see `docs/accounts.md`).
pub(crate) const KIND_BANK_OMNIBUS: u64 = 2;
pub(crate) const KIND_FUNDING_TRANSFER: u64 = 4;
pub(crate) const KIND_FEE_INCOME: u64 = 9;
/// The fee of a withdrawal, moved to fee income when the bank approves it.
pub(crate) const KIND_WITHDRAWAL_FEE: u64 = 10;

/// Account code of Kasa's fee income.
pub const CODE_FEE_INCOME: u16 = 2003;
/// Transfer code of a withdrawal fee (bank omnibus to fee income).
pub const CODE_WITHDRAWAL_FEE: u16 = 3005;
/// The highest withdrawal fee an operator may set, in won.
pub const WITHDRAWAL_FEE_MAX_KRW: u64 = 10_000;

/// The ledger account of the bank omnibus.
pub fn bank_omnibus_account_id() -> u128 {
    domain_id(KIND_BANK_OMNIBUS, 0)
}

/// The ledger account of Kasa's fee income.
pub fn fee_income_account_id() -> u128 {
    domain_id(KIND_FEE_INCOME, 0)
}

/// The KST calendar day of a timestamp, for daily limits.
pub fn kst_day(timestamp: u64) -> u64 {
    (timestamp / 1_000_000_000 + KST_OFFSET_SECONDS) / 86_400
}

/// A user's linked bank account. The account number is personal data: outputs mask it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankAccount {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The owner.
    pub user_id: u64,
    /// The 3-digit Korean bank code (004 KB Kookmin, 088 Shinhan, ...).
    pub bank_code: String,
    /// The account number, digits only (masked when printed).
    pub account_number: AccountNumber,
    /// The name on the account.
    pub holder_name: String,
    /// When it was linked.
    pub created_at: u64,
}

impl BankAccount {
    /// The account number with all but the last four digits masked.
    pub fn masked_number(&self) -> String {
        self.account_number.masked()
    }
}

/// A bank account number. Its `Debug` shows only the last four digits, so that no log, panic
/// message or test failure prints a whole one.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AccountNumber(pub String);

impl AccountNumber {
    /// The number itself, for the one place that must use it (the bank, the journal).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// All but the last four characters masked.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        let keep = chars.len().saturating_sub(4);
        chars.iter().enumerate().map(|(i, &c)| if i < keep { '*' } else { c }).collect()
    }
}

impl std::fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl From<&str> for AccountNumber {
    fn from(value: &str) -> Self {
        AccountNumber(value.to_string())
    }
}

impl From<String> for AccountNumber {
    fn from(value: String) -> Self {
        AccountNumber(value)
    }
}

/// Top-up or withdrawal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FundingKind {
    /// Bank to wallet.
    TopUp = 1,
    /// Wallet to bank.
    Withdrawal = 2,
}

/// A top-up or withdrawal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Funding {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// Top-up or withdrawal.
    pub kind: FundingKind,
    /// The user.
    pub user_id: u64,
    /// The bank account.
    pub bank_account_id: u64,
    /// Won.
    pub amount: u64,
    /// When it started.
    pub created_at: u64,
    /// The KST day its amount counts against (withdrawals).
    pub day: u64,
}

impl Funding {
    /// The id of its pending ledger transfer.
    pub fn transfer_id(&self) -> u128 {
        domain_id(KIND_FUNDING_TRANSFER, self.id)
    }
}

/// Where a funding stands, read from its ledger transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FundingStatus {
    /// Waiting for the bank.
    Pending,
    /// The bank approved; the money moved.
    Succeeded,
    /// The bank declined; the reservation was released.
    Declined,
    /// No answer in time; the reservation was released.
    Expired,
}

impl FundingStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            FundingStatus::Pending => "pending",
            FundingStatus::Succeeded => "succeeded",
            FundingStatus::Declined => "declined",
            FundingStatus::Expired => "expired",
        }
    }
}

/// A limit that a request would pass, with its value and what is left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    /// `balance_cap` or `daily_outgoing`.
    pub limit: &'static str,
    /// The limit, in won.
    pub value: u64,
    /// What is left of it, in won.
    pub remaining: u64,
}

/// Why linking a bank account failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No such user.
    #[error("no such user")]
    UnknownUser,
    /// The bank code is not 3 digits.
    #[error("a bank code is 3 digits")]
    InvalidBankCode,
    /// The account number is not 10 to 16 digits.
    #[error("an account number is 10 to 16 digits")]
    InvalidAccountNumber,
    /// The holder name is empty, too long or has control characters.
    #[error("the holder name must be 1 to 50 characters without control characters")]
    InvalidHolderName,
    /// The user linked this account already.
    #[error("this bank account is linked already")]
    AlreadyLinked,
    /// The user has as many bank accounts as allowed.
    #[error("at most {BANK_ACCOUNTS_PER_USER_MAX} bank accounts")]
    TooMany,
}

/// Why a top-up or withdrawal did not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FundingError {
    /// No such user.
    #[error("no such user")]
    UnknownUser,
    /// No such bank account of this user.
    #[error("no such bank account")]
    UnknownBankAccount,
    /// The amount is zero.
    #[error("the amount must be positive")]
    InvalidAmount,
    /// A limit would be passed.
    #[error("the {} limit of {} won has {} won left", .0.limit, .0.value, .0.remaining)]
    LimitExceeded(LimitExceeded),
    /// The wallet does not hold enough.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// The amount needs the PIN and none was given.
    #[error("this amount needs the PIN")]
    PinRequired,
    /// The PIN was wrong (counted towards the lock).
    #[error("wrong pin; {attempts_left} attempts left")]
    WrongPin {
        /// Attempts before the lock.
        attempts_left: u8,
    },
    /// PIN use is locked.
    #[error("pin use is locked until {until}")]
    PinLocked {
        /// Until when.
        until: u64,
    },
    /// The ledger refused the transfer for a reason outside the user's request, such as an
    /// operator having closed the wallet account or taken a reserved account id.
    #[error("the ledger refused the transfer: {0}")]
    Ledger(&'static str),
}

/// Bank accounts, fundings and daily outgoing totals.
#[derive(Clone, Debug, Default)]
pub struct FundingBook {
    pub(crate) bank_accounts: Vec<BankAccount>,
    pub(crate) fundings: Vec<Funding>,
    /// Per user: (KST day, won sent out that day).
    pub(crate) outgoing: BTreeMap<u64, (u64, u64)>,
}

fn valid_digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

impl FundingBook {
    /// A bank account by id.
    pub fn bank_account(&self, id: u64) -> Option<&BankAccount> {
        id.checked_sub(1).and_then(|i| self.bank_accounts.get(i as usize))
    }

    /// A user's bank accounts.
    pub fn bank_accounts_of(&self, user_id: u64) -> impl Iterator<Item = &BankAccount> + '_ {
        self.bank_accounts.iter().filter(move |b| b.user_id == user_id)
    }

    /// A funding by id.
    pub fn funding(&self, id: u64) -> Option<&Funding> {
        id.checked_sub(1).and_then(|i| self.fundings.get(i as usize))
    }

    /// A user's fundings, newest first.
    pub fn fundings_of(&self, user_id: u64) -> impl Iterator<Item = &Funding> + '_ {
        self.fundings.iter().rev().filter(move |f| f.user_id == user_id)
    }

    /// Won a user sent out on the KST day of `now`.
    pub fn outgoing_today(&self, user_id: u64, now: u64) -> u64 {
        match self.outgoing.get(&user_id) {
            Some(&(day, used)) if day == kst_day(now) => used,
            _ => 0,
        }
    }

    pub(crate) fn count_outgoing(&mut self, user_id: u64, day: u64, amount: u64) {
        let entry = self.outgoing.entry(user_id).or_insert((day, 0));
        if entry.0 != day {
            *entry = (day, 0);
        }
        entry.1 = entry.1.saturating_add(amount);
    }

    pub(crate) fn uncount_outgoing(&mut self, user_id: u64, day: u64, amount: u64) {
        if let Some(entry) = self.outgoing.get_mut(&user_id) {
            if entry.0 == day {
                entry.1 = entry.1.saturating_sub(amount);
            }
        }
    }

    /// The fee a funding reserved with it (a withdrawal's, at the fee of its time): what its
    /// reservation holds beyond the amount.
    pub fn fee(&self, ledger: &Ledger, funding: &Funding) -> u64 {
        ledger.transfer(funding.transfer_id()).map_or(0, |t| (t.amount as u64).saturating_sub(funding.amount))
    }

    /// The fee to show for a funding: its fee while pending or once paid out, 0 when it was
    /// declined or expired (nothing was charged).
    pub fn fee_charged(&self, ledger: &Ledger, funding: &Funding) -> u64 {
        match self.status(ledger, funding) {
            FundingStatus::Pending | FundingStatus::Succeeded => self.fee(ledger, funding),
            FundingStatus::Declined | FundingStatus::Expired => 0,
        }
    }

    /// Where a funding stands, from its ledger transfer.
    pub fn status(&self, ledger: &Ledger, funding: &Funding) -> FundingStatus {
        match ledger.pending_status(funding.transfer_id()) {
            Some(PendingStatus::Pending) | None => FundingStatus::Pending,
            Some(PendingStatus::Posted) => FundingStatus::Succeeded,
            Some(PendingStatus::Voided) => FundingStatus::Declined,
            Some(PendingStatus::Expired) => FundingStatus::Expired,
        }
    }
}

impl Wallets {
    /// Links a bank account to a user.
    pub fn link_bank_account(
        &mut self,
        user_id: u64,
        bank_code: &str,
        account_number: &str,
        holder_name: &str,
        now: u64,
    ) -> Result<u64, LinkError> {
        if self.user(user_id).is_none() {
            return Err(LinkError::UnknownUser);
        }
        if !valid_digits(bank_code, 3..=3) {
            return Err(LinkError::InvalidBankCode);
        }
        if !valid_digits(account_number, 10..=16) {
            return Err(LinkError::InvalidAccountNumber);
        }
        if !super::valid_name(holder_name) {
            return Err(LinkError::InvalidHolderName);
        }
        let book = &mut self.funding;
        let own: Vec<&BankAccount> = book.bank_accounts_of(user_id).collect();
        if own.iter().any(|b| b.bank_code == bank_code && b.account_number.as_str() == account_number) {
            return Err(LinkError::AlreadyLinked);
        }
        if own.len() >= BANK_ACCOUNTS_PER_USER_MAX {
            return Err(LinkError::TooMany);
        }
        let id = book.bank_accounts.len() as u64 + 1;
        book.bank_accounts.push(BankAccount {
            id,
            user_id,
            bank_code: bank_code.to_string(),
            account_number: account_number.into(),
            holder_name: holder_name.to_string(),
            created_at: now,
        });
        Ok(id)
    }

    /// Starts a top-up or withdrawal: checks ownership, PIN, limits and funds, and reserves the
    /// money as a pending transfer, all in one step. `pin_ok` is the HTTP layer's verdict on a
    /// PIN sent with the request (`None`: no PIN sent).
    #[allow(clippy::too_many_arguments)]
    pub fn start_funding(
        &mut self,
        ledger: &mut Ledger,
        user_id: u64,
        bank_account_id: u64,
        kind: FundingKind,
        amount: u64,
        pin_ok: Option<bool>,
        now: u64,
    ) -> Result<u64, FundingError> {
        let Some(user) = self.user(user_id).map(super::User::actor) else { return Err(FundingError::UnknownUser) };
        if self.funding.bank_account(bank_account_id).is_none_or(|b| b.user_id != user_id) {
            return Err(FundingError::UnknownBankAccount);
        }
        if amount == 0 {
            return Err(FundingError::InvalidAmount);
        }
        let (cap, daily) = self.limits(user.tier);
        let wallet = *ledger.account(user.wallet_account_id()).expect("every user has a wallet account");
        let day = kst_day(now);
        // A withdrawal reserves its fee with its amount: one pending transfer, so that a void
        // or an expiry gives both back at once.
        let fee = if kind == FundingKind::Withdrawal { self.withdrawal_fee } else { 0 };
        let reserved = amount.checked_add(fee).ok_or(FundingError::InvalidAmount)?;
        match kind {
            FundingKind::TopUp => {
                // Pending top-ups count: two at once must not pass the cap together.
                let held =
                    wallet.credits_posted.saturating_add(wallet.credits_pending).saturating_sub(wallet.debits_posted);
                let held = held.min(u64::MAX as u128) as u64;
                if held.saturating_add(amount) > cap {
                    return Err(FundingError::LimitExceeded(LimitExceeded {
                        limit: "balance_cap",
                        value: cap,
                        remaining: cap.saturating_sub(held),
                    }));
                }
            }
            FundingKind::Withdrawal => {
                if amount > user.pin_free_krw {
                    match pin_ok {
                        None => return Err(FundingError::PinRequired),
                        Some(ok) => self.check_pin(user_id, ok, now)?,
                    }
                }
                let used = self.funding.outgoing_today(user_id, now);
                if used.saturating_add(reserved) > daily {
                    return Err(FundingError::LimitExceeded(LimitExceeded {
                        limit: "daily_outgoing",
                        value: daily,
                        remaining: daily.saturating_sub(used),
                    }));
                }
            }
        }
        ensure_system_account(ledger, bank_omnibus_account_id(), super::funding::CODE_BANK_OMNIBUS, now)
            .map_err(FundingError::Ledger)?;
        let id = self.funding.fundings.len() as u64 + 1;
        let funding = Funding { id, kind, user_id, bank_account_id, amount, created_at: now, day };
        let (debit, credit, code) = match kind {
            FundingKind::TopUp => (bank_omnibus_account_id(), user.wallet_account_id(), CODE_TOP_UP),
            FundingKind::Withdrawal => (user.wallet_account_id(), bank_omnibus_account_id(), CODE_WITHDRAWAL),
        };
        let reserve = Transfer {
            id: funding.transfer_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: reserved as u128,
            ledger: KRW_LEDGER,
            code,
            timeout: BANK_ANSWER_TIMEOUT_SECONDS,
            user_data_64: user_id,
            flags: TransferFlags(TransferFlags::PENDING),
            ..Default::default()
        };
        let outcome = ledger.create_transfer(&reserve, now);
        match outcome.result {
            crate::CreateTransferResult::Ok => {}
            crate::CreateTransferResult::ExceedsCredits => return Err(FundingError::InsufficientFunds),
            other => return Err(FundingError::Ledger(other.name())),
        }
        if kind == FundingKind::Withdrawal {
            self.funding.count_outgoing(user_id, day, reserved);
        }
        self.funding.fundings.push(funding);
        Ok(id)
    }

    /// The bank's answer to a funding: posts or voids its reservation. Returns the status
    /// after it (an answer after the timeout finds it expired and changes nothing).
    pub fn settle_funding(
        &mut self,
        ledger: &mut Ledger,
        funding_id: u64,
        approved: bool,
        now: &mut u64,
    ) -> Option<FundingStatus> {
        let funding = self.funding.funding(funding_id)?.clone();
        if self.funding.status(ledger, &funding) == FundingStatus::Pending {
            let flag =
                if approved { TransferFlags::POST_PENDING_TRANSFER } else { TransferFlags::VOID_PENDING_TRANSFER };
            // The whole reservation: `AMOUNT_MAX` for a post (0 would post nothing), 0 for a void.
            let resolve = Transfer {
                id: domain_id(KIND_FUNDING_TRANSFER + 1, funding_id),
                pending_id: funding.transfer_id(),
                amount: if approved { crate::ledger::AMOUNT_MAX } else { 0 },
                flags: TransferFlags(flag),
                ..Default::default()
            };
            let fee = self.funding.fee(ledger, &funding);
            // What the reservation counted against the daily limit: amount and fee.
            let outgoing = funding.amount.saturating_add(fee);
            let succeeded = if approved && fee > 0 {
                // The bank paid out the amount; the fee stays with Kasa: from the omnibus (where
                // the whole reservation went) to fee income, linked with the post.
                let charge = Transfer {
                    id: domain_id(KIND_WITHDRAWAL_FEE, funding_id),
                    debit_account_id: bank_omnibus_account_id(),
                    credit_account_id: fee_income_account_id(),
                    amount: fee as u128,
                    ledger: KRW_LEDGER,
                    code: CODE_WITHDRAWAL_FEE,
                    user_data_64: funding.user_id,
                    ..Default::default()
                };
                let linked = Transfer { flags: TransferFlags(flag | TransferFlags::LINKED), ..resolve };
                let ok = ensure_system_account(ledger, fee_income_account_id(), CODE_FEE_INCOME, *now).is_ok()
                    && ledger.create_transfers(&[linked, charge], *now).iter().all(|o| o.result.is_success());
                *now += 1;
                ok
            } else {
                ledger.create_transfer(&resolve, *now).result.is_success()
            };
            if succeeded && !approved && funding.kind == FundingKind::Withdrawal {
                self.funding.uncount_outgoing(funding.user_id, funding.day, outgoing);
            }
        }
        Some(self.funding.status(ledger, &funding))
    }

    /// The fee charged per withdrawal, in won.
    pub fn withdrawal_fee(&self) -> u64 {
        self.withdrawal_fee
    }

    /// Sets the withdrawal fee (an operator's decision), at most [`WITHDRAWAL_FEE_MAX_KRW`];
    /// withdrawals already reserved keep the fee of their time. Returns whether it was set.
    pub fn set_withdrawal_fee(&mut self, fee: u64) -> bool {
        if fee > WITHDRAWAL_FEE_MAX_KRW {
            return false;
        }
        self.withdrawal_fee = fee;
        true
    }

    /// Gives back the daily outgoing amount of withdrawals whose reservation expired.
    pub(crate) fn on_fundings_expired(&mut self, expired: &[Transfer]) {
        for t in expired {
            let Some(funding_id) =
                domain_id_parts(t.id).filter(|&(kind, _)| kind == KIND_FUNDING_TRANSFER).map(|(_, n)| n)
            else {
                continue;
            };
            if let Some(f) = self.funding.funding(funding_id).cloned() {
                if f.kind == FundingKind::Withdrawal {
                    // The expired reservation is `t`: the amount and the fee.
                    self.funding.uncount_outgoing(f.user_id, f.day, t.amount as u64);
                }
            }
        }
    }

    /// Records a PIN verdict for a money movement: a wrong PIN counts towards the lock.
    pub(crate) fn check_pin(&mut self, user_id: u64, ok: bool, now: u64) -> Result<(), FundingError> {
        let user = self.user_mut(user_id).expect("checked by the caller");
        if user.pin_locked_at(now) {
            return Err(FundingError::PinLocked { until: user.pin_locked_until });
        }
        match super::record_pin_attempt(user, ok, now) {
            Ok(()) => Ok(()),
            Err(super::SessionError::WrongPin { locked_until, .. }) if locked_until != 0 => {
                Err(FundingError::PinLocked { until: locked_until })
            }
            Err(super::SessionError::WrongPin { attempts_left, .. }) => Err(FundingError::WrongPin { attempts_left }),
            Err(_) => unreachable!("record_pin_attempt only reports wrong pins"),
        }
    }
}

/// Creates a system account (bank omnibus, holding) the first time it is needed. Its id is in
/// the reserved domain range; if an operator took it with other fields, the request fails
/// with the ledger's reason (and nothing changes) rather than moving money into the wrong
/// account.
pub(crate) fn ensure_system_account(ledger: &mut Ledger, id: u128, code: u16, now: u64) -> Result<(), &'static str> {
    if let Some(existing) = ledger.account(id) {
        return if existing.ledger == KRW_LEDGER && existing.code == code {
            Ok(())
        } else {
            Err("system_account_taken")
        };
    }
    let account = Account { id, ledger: KRW_LEDGER, code, ..Default::default() };
    let outcome = ledger.create_accounts(&[account], now);
    if outcome[0].result.is_success() {
        Ok(())
    } else {
        Err(outcome[0].result.name())
    }
}

impl FundingBook {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.bank_accounts.len() as u64).to_le_bytes());
        for b in &self.bank_accounts {
            out.extend_from_slice(&b.user_id.to_le_bytes());
            put_str(out, &b.bank_code);
            put_str(out, b.account_number.as_str());
            put_str(out, &b.holder_name);
            out.extend_from_slice(&b.created_at.to_le_bytes());
        }
        out.extend_from_slice(&(self.fundings.len() as u64).to_le_bytes());
        for f in &self.fundings {
            out.push(f.kind as u8);
            out.extend_from_slice(&f.user_id.to_le_bytes());
            out.extend_from_slice(&f.bank_account_id.to_le_bytes());
            out.extend_from_slice(&f.amount.to_le_bytes());
            out.extend_from_slice(&f.created_at.to_le_bytes());
            out.extend_from_slice(&f.day.to_le_bytes());
        }
        out.extend_from_slice(&(self.outgoing.len() as u64).to_le_bytes());
        for (user, (day, used)) in &self.outgoing {
            out.extend_from_slice(&user.to_le_bytes());
            out.extend_from_slice(&day.to_le_bytes());
            out.extend_from_slice(&used.to_le_bytes());
        }
    }

    pub(crate) fn decode(c: &mut crate::command::Cursor, users: u64) -> Result<FundingBook, String> {
        let e = |e: crate::DecodeError| e.to_string();
        let mut book = FundingBook::default();
        let known_user = |id: u64| id >= 1 && id <= users;
        for i in 0..c.u64().map_err(e)? {
            let user_id = c.u64().map_err(e)?;
            let bank_code = get_str(c)?;
            let account_number = get_str(c)?;
            let holder_name = get_str(c)?;
            let created_at = c.u64().map_err(e)?;
            if !known_user(user_id) || !valid_digits(&bank_code, 3..=3) || !valid_digits(&account_number, 10..=16) {
                return Err(format!("bank account {} is invalid", i + 1));
            }
            book.bank_accounts.push(BankAccount {
                id: i + 1,
                user_id,
                bank_code,
                account_number: AccountNumber(account_number),
                holder_name,
                created_at,
            });
        }
        for i in 0..c.u64().map_err(e)? {
            let kind = match c.u8().map_err(e)? {
                1 => FundingKind::TopUp,
                2 => FundingKind::Withdrawal,
                other => return Err(format!("funding {} has kind {other}", i + 1)),
            };
            let user_id = c.u64().map_err(e)?;
            let bank_account_id = c.u64().map_err(e)?;
            let amount = c.u64().map_err(e)?;
            let created_at = c.u64().map_err(e)?;
            let day = c.u64().map_err(e)?;
            if !known_user(user_id) || book.bank_account(bank_account_id).is_none_or(|b| b.user_id != user_id) {
                return Err(format!("funding {} names an unknown user or bank account", i + 1));
            }
            book.fundings.push(Funding { id: i + 1, kind, user_id, bank_account_id, amount, created_at, day });
        }
        for _ in 0..c.u64().map_err(e)? {
            let user = c.u64().map_err(e)?;
            let day = c.u64().map_err(e)?;
            let used = c.u64().map_err(e)?;
            if !known_user(user) {
                return Err(format!("outgoing total for unknown user {user}"));
            }
            book.outgoing.insert(user, (day, used));
        }
        Ok(book)
    }
}
