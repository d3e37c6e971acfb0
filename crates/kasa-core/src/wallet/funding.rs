//! Funding: linked bank accounts, top-ups (bank to wallet) and withdrawals (wallet to bank).
//!
//! Both are two-phase: starting one reserves the money as a pending transfer in Kasa's books
//! between the user's wallet and the bank omnibus account (the mirror of what Kasa holds at
//! partner banks), and emits `funding.started`. The bank is never called from here: the bank
//! rail consumer of the outbox asks the bank, by the funding's reference, and turns its
//! answer into a `SettleFunding` command that posts or voids the reservation. The
//! reservation has no timeout of its own: only the bank's answer settles it, or the bank
//! saying it never took the request (or not answering within its timeout), so a restart at
//! any moment neither loses an approved top-up nor returns a paid-out withdrawal.
//!
//! Limits are checked here, in the same step as the reservation: the balance cap counts
//! pending top-ups, and the daily outgoing limit counts withdrawals (with their fee) from the
//! moment they start; a declined or expired one gives its amount back.

use super::command::{BankAccountView, BankCode, BankResult, FundingView, Name, SealedAccountNumber};
use super::Ctx;
use super::{Event, Wallets, WALLET_CURRENCY};
use crate::chart;
use crate::ledger::{CreateTransferResult, Transfer, TransferFlags};
use crate::limits::LimitExceeded;
use crate::money::Amount;
use crate::time::kst_day;
use serde::{Deserialize, Serialize};

/// Bank accounts one user may link.
pub const BANK_ACCOUNTS_PER_USER_MAX: usize = 5;
/// Seconds a bank has to answer before the bank rail asks whether it took the request at
/// all, and settles the funding as expired if it did not.
pub const BANK_ANSWER_TIMEOUT_SECONDS: u64 = 60;

/// A user's linked bank account. Its number is sealed (see [`SealedAccountNumber`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankAccount {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The owner.
    pub user_id: u64,
    /// The bank.
    pub bank_code: BankCode,
    /// The account number, sealed.
    pub account_number: SealedAccountNumber,
    /// The name on the account.
    pub holder_name: Name,
    /// When it was linked.
    pub created_at: u64,
}

impl BankAccount {
    /// The account as a response shows it.
    pub fn view(&self) -> BankAccountView {
        BankAccountView {
            id: self.id,
            bank_code: self.bank_code.clone(),
            last4: self.account_number.last4.clone(),
            holder_name: self.holder_name.clone(),
            created_at: self.created_at,
        }
    }
}

/// Top-up or withdrawal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FundingKind {
    /// Bank to wallet.
    TopUp,
    /// Wallet to bank.
    Withdrawal,
}

impl FundingKind {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            FundingKind::TopUp => "top_up",
            FundingKind::Withdrawal => "withdrawal",
        }
    }
}

/// Where a funding stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FundingStatus {
    /// Waiting for the bank.
    Pending,
    /// The bank approved; the money moved.
    Succeeded,
    /// The bank declined; the reservation was released.
    Declined,
    /// The bank never took it or did not answer in time; the reservation was released.
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

/// A top-up or withdrawal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    pub amount: Amount,
    /// Kasa's fee on top of the amount (withdrawals), reserved with it.
    pub fee: Amount,
    /// When it started.
    pub created_at: u64,
    /// The KST day its amount counts against (withdrawals).
    pub day: u64,
    /// Where it stands.
    pub status: FundingStatus,
    /// When the bank's answer was recorded (0 while pending).
    pub settled_at: u64,
}

impl Funding {
    /// The id of its pending transfer in the books.
    pub fn transfer_id(&self) -> u128 {
        chart::FUNDING_RESERVE.id(self.id)
    }

    /// The fee to show: the one reserved while pending or once paid out, 0 when declined or
    /// expired (nothing was charged).
    pub fn fee_charged(&self) -> Amount {
        match self.status {
            FundingStatus::Pending | FundingStatus::Succeeded => self.fee,
            FundingStatus::Declined | FundingStatus::Expired => Amount::ZERO,
        }
    }

    /// The funding as a response shows it.
    pub fn view(&self) -> FundingView {
        FundingView {
            id: self.id,
            kind: self.kind,
            user_id: self.user_id,
            bank_account_id: self.bank_account_id,
            amount: self.amount,
            fee: self.fee_charged(),
            status: self.status,
            created_at: self.created_at,
            transfer_id: self.transfer_id(),
        }
    }
}

/// Why linking a bank account failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum LinkError {
    /// No such user.
    #[error("no such user")]
    UnknownUser,
    /// The user linked this account already.
    #[error("this bank account is linked already")]
    AlreadyLinked,
    /// The user has as many bank accounts as allowed.
    #[error("at most {BANK_ACCOUNTS_PER_USER_MAX} bank accounts")]
    TooMany,
}

/// Why a top-up, withdrawal or remittance did not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum FundingError {
    /// No such user.
    #[error("no such user")]
    UnknownUser,
    /// No such bank account of this user.
    #[error("no such bank account")]
    UnknownBankAccount,
    /// The amount is zero, or the amount and its fee overflow.
    #[error("the amount must be positive")]
    InvalidAmount,
    /// A limit of the user's would be passed.
    #[error("the {} limit of {} won has {} won left", .0.limit.name(), .0.value, .0.remaining)]
    LimitExceeded(LimitExceeded),
    /// The wallet does not hold enough.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// The PIN-free budget does not cover this amount, and no PIN was given.
    #[error("this amount needs the PIN: the PIN-free budget for 24 hours does not cover it")]
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
    /// The books refused the transfer (an overflow no real balance reaches).
    #[error("the books refused the transfer: {}", .0.name())]
    Ledger(CreateTransferResult),
}

impl Wallets {
    /// A bank account by id.
    pub fn bank_account(&self, id: u64) -> Option<&BankAccount> {
        id.checked_sub(1).and_then(|i| self.bank_accounts.get(i as usize))
    }

    /// A user's bank accounts, oldest first.
    pub fn bank_accounts_of(&self, user_id: u64) -> impl Iterator<Item = &BankAccount> + '_ {
        self.bank_accounts_of.range((user_id, 0)..=(user_id, u64::MAX)).filter_map(|&(_, id)| self.bank_account(id))
    }

    /// A funding by id.
    pub fn funding(&self, id: u64) -> Option<&Funding> {
        id.checked_sub(1).and_then(|i| self.fundings.get(i as usize))
    }

    /// Fundings still waiting for the bank, oldest first.
    pub fn pending_fundings(&self) -> impl Iterator<Item = &Funding> + '_ {
        self.pending_fundings.iter().filter_map(|&id| self.funding(id))
    }

    /// Number of fundings.
    pub fn fundings_count(&self) -> usize {
        self.fundings.len()
    }

    pub(super) fn link_bank_account(
        &mut self,
        user_id: u64,
        bank_code: &BankCode,
        account_number: &SealedAccountNumber,
        holder_name: &Name,
        ctx: &mut Ctx,
    ) -> Result<BankAccountView, LinkError> {
        if self.user(user_id).is_none() {
            return Err(LinkError::UnknownUser);
        }
        let own: Vec<&BankAccount> = self.bank_accounts_of(user_id).collect();
        if own.iter().any(|b| b.account_number.lookup == account_number.lookup) {
            return Err(LinkError::AlreadyLinked);
        }
        if own.len() >= BANK_ACCOUNTS_PER_USER_MAX {
            return Err(LinkError::TooMany);
        }
        let id = self.bank_accounts.len() as u64 + 1;
        let account = BankAccount {
            id,
            user_id,
            bank_code: bank_code.clone(),
            account_number: account_number.clone(),
            holder_name: holder_name.clone(),
            created_at: ctx.now(),
        };
        let view = account.view();
        self.bank_accounts.push_back(account);
        self.bank_accounts_of.insert((user_id, id));
        ctx.emit(Event::BankAccountLinked { user_id, bank_account_id: id });
        Ok(view)
    }

    /// Starts a top-up or withdrawal: checks ownership, PIN, limits and funds, and reserves the
    /// money as a pending transfer, all in one step.
    pub(super) fn start_funding(
        &mut self,
        user_id: u64,
        bank_account_id: u64,
        kind: FundingKind,
        amount: Amount,
        pin_ok: Option<bool>,
        ctx: &mut Ctx,
    ) -> Result<FundingView, FundingError> {
        let now = ctx.now();
        // The two things needed of the user, not a copy of it (its name and phone).
        let Some((tier, wallet_account_id)) = self.user(user_id).map(|u| (u.tier, u.wallet_account_id())) else {
            return Err(FundingError::UnknownUser);
        };
        if self.bank_account(bank_account_id).is_none_or(|b| b.user_id != user_id) {
            return Err(FundingError::UnknownBankAccount);
        }
        if amount.is_zero() {
            return Err(FundingError::InvalidAmount);
        }
        let wallet = *ctx.books.account(wallet_account_id).expect("every user has a wallet account");
        let day = kst_day(now);
        // A withdrawal reserves its fee with its amount: one pending transfer, so that a decline
        // or an expiry gives both back at once.
        let fee = match kind {
            FundingKind::TopUp => Amount::ZERO,
            FundingKind::Withdrawal => ctx.fees.withdrawal.fee_for(amount).ok_or(FundingError::InvalidAmount)?,
        };
        let reserved = amount.checked_add(fee).ok_or(FundingError::InvalidAmount)?;
        let mut pin_free = false;
        match kind {
            FundingKind::TopUp => {
                ctx.limits.check_balance_cap(tier, &wallet, amount).map_err(FundingError::LimitExceeded)?
            }
            FundingKind::Withdrawal => {
                pin_free = self.authorize(user_id, reserved, pin_ok, ctx)?;
                if crate::limits::available(&wallet) < reserved.ledger() {
                    return Err(FundingError::InsufficientFunds);
                }
            }
        }
        chart::ensure_system_account(ctx.books, chart::BANK_OMNIBUS, WALLET_CURRENCY, now);
        let id = self.fundings.len() as u64 + 1;
        let funding = Funding {
            id,
            kind,
            user_id,
            bank_account_id,
            amount,
            fee,
            created_at: now,
            day,
            status: FundingStatus::Pending,
            settled_at: 0,
        };
        let omnibus = chart::BANK_OMNIBUS.system_id(WALLET_CURRENCY);
        let (debit, credit, code) = match kind {
            FundingKind::TopUp => (omnibus, wallet_account_id, chart::FUNDING_RESERVE.code),
            FundingKind::Withdrawal => (wallet_account_id, omnibus, chart::CODE_WITHDRAWAL),
        };
        let reserve = Transfer {
            id: funding.transfer_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: reserved.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code,
            user_data_64: user_id,
            flags: TransferFlags(TransferFlags::PENDING),
            ..Default::default()
        };
        match ctx.transfer(&reserve).result {
            CreateTransferResult::Ok => {}
            CreateTransferResult::ExceedsCredits => return Err(FundingError::InsufficientFunds),
            other => return Err(FundingError::Ledger(other)),
        }
        if kind == FundingKind::Withdrawal {
            ctx.limits.record_spend(user_id, reserved, pin_free, now);
        }
        self.fundings.push_back(funding);
        self.pending_fundings.insert(id);
        ctx.emit(Event::FundingStarted { funding_id: id, user_id, kind, amount });
        Ok(funding.view())
    }

    /// The bank's answer to a funding: posts or voids its reservation. An answer for a
    /// funding that is no longer pending changes nothing (the bank rail may deliver one twice).
    pub(super) fn settle_funding(&mut self, funding_id: u64, result: BankResult, ctx: &mut Ctx) -> Option<FundingView> {
        let funding = *self.funding(funding_id)?;
        if funding.status != FundingStatus::Pending {
            return Some(funding.view());
        }
        let approved = result == BankResult::Approved;
        // The whole reservation: the amount and the fee (posts and voids name it exactly).
        let reserved = funding.amount.saturating_add(funding.fee);
        let flag = if approved { TransferFlags::POST_PENDING_TRANSFER } else { TransferFlags::VOID_PENDING_TRANSFER };
        let resolve = Transfer {
            id: chart::FUNDING_RESOLVE.id(funding_id),
            pending_id: funding.transfer_id(),
            amount: reserved.ledger(),
            flags: TransferFlags(flag),
            ..Default::default()
        };
        let settled = if approved && !funding.fee.is_zero() {
            // The bank paid out the amount; the fee stays with Kasa: from the omnibus (where
            // the whole reservation went) to fee income, linked with the post.
            chart::ensure_system_account(ctx.books, chart::FEE_INCOME, WALLET_CURRENCY, ctx.now());
            let charge = Transfer {
                id: chart::WITHDRAWAL_FEE.id(funding_id),
                debit_account_id: chart::BANK_OMNIBUS.system_id(WALLET_CURRENCY),
                credit_account_id: chart::FEE_INCOME.system_id(WALLET_CURRENCY),
                amount: funding.fee.ledger(),
                ledger: WALLET_CURRENCY.ledger(),
                code: chart::WITHDRAWAL_FEE.code,
                user_data_64: funding.user_id,
                ..Default::default()
            };
            let linked = Transfer { flags: TransferFlags(flag | TransferFlags::LINKED), ..resolve };
            ctx.transfers(&[linked, charge]).iter().all(|o| o.result.is_success())
        } else {
            ctx.transfer(&resolve).result.is_success()
        };
        // The books are Kasa's own and the reservation is open: its post or void cannot fail.
        assert!(settled, "the books refused to settle funding {funding_id}");
        let status = match result {
            BankResult::Approved => FundingStatus::Succeeded,
            BankResult::Declined => FundingStatus::Declined,
            BankResult::Expired => FundingStatus::Expired,
        };
        if !approved && funding.kind == FundingKind::Withdrawal {
            // The reservation counted against the daily limit: give it back.
            ctx.limits.uncount_outgoing(funding.user_id, funding.day, reserved);
        }
        let stored = &mut self.fundings[(funding_id - 1) as usize];
        stored.status = status;
        stored.settled_at = ctx.now();
        let view = stored.view();
        self.pending_fundings.remove(&funding_id);
        ctx.emit(Event::FundingSettled { funding_id, user_id: funding.user_id, status });
        Some(view)
    }
}
