//! Remittance: a user sends money to another user (by id or phone number), or to a phone
//! number that has no wallet yet.
//!
//! To a user, it is one posted transfer between the two wallets. To a number with no wallet,
//! the money is held: a pending transfer from the sender's wallet to the holding account with
//! a 48-hour timeout. If the number signs up in time, the sign-up claims it (post, then
//! holding to the new wallet, in the same step as the sign-up); if not, the timeout voids it
//! and the money is back with the sender, by engine time. The sender can cancel a held
//! remittance before it is claimed.
//!
//! **Checks, in order, and why that order:** the sender's PIN (or PIN-free budget), the
//! sender's daily limit and the sender's funds come before anything about the recipient, and a
//! refusal on the recipient's side says only `recipient_cannot_receive`: a sender learns
//! nothing about another user's balance from a refused send, and a sender with an empty
//! wallet learns nothing at all.

use super::command::{Memo, Recipient, RemittanceView};
use super::Ctx;
use super::{Event, FundingError, Phone, Wallets, WALLET_CURRENCY};
use crate::chart;
use crate::ledger::{expiry_of, CreateTransferResult, Ledger, PendingStatus, Transfer, TransferFlags};
use crate::limits;
use crate::money::Amount;
use crate::time::kst_day;
use serde::{Deserialize, Serialize};

/// How long money for a number without a wallet is held: 48 hours.
pub const HOLD_SECONDS: u32 = 48 * 3600;
/// Held remittances one number may wait for at once: it bounds the claims a sign-up makes in
/// one step (two transfers each), and a number flooded with holds refuses more.
pub const HOLDS_PER_PHONE_MAX: usize = 20;

/// A remittance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remittance {
    /// Assigned by the engine, from 1.
    pub id: u64,
    /// The sender.
    pub from_user: u64,
    /// The recipient, once known (at once, or when a held remittance is claimed).
    pub to_user: Option<u64>,
    /// For a remittance to a number without a wallet: the number.
    pub to_phone: Option<Phone>,
    /// Won.
    pub amount: Amount,
    /// A note from the sender.
    pub memo: Memo,
    /// When it was sent.
    pub created_at: u64,
    /// The KST day it counts against the sender's daily limit.
    pub day: u64,
}

impl Remittance {
    /// The id of its transfer in the books (direct, or the pending hold).
    pub fn transfer_id(&self) -> u128 {
        chart::REMITTANCE.id(self.id)
    }

    /// Where it stands, from its transfer in the books.
    pub fn status(&self, books: &Ledger) -> RemittanceStatus {
        match books.pending_status(self.transfer_id()) {
            None | Some(PendingStatus::Posted) => RemittanceStatus::Completed,
            Some(PendingStatus::Pending) => RemittanceStatus::Held,
            Some(PendingStatus::Voided) => RemittanceStatus::Cancelled,
            Some(PendingStatus::Expired) => RemittanceStatus::Returned,
        }
    }

    /// The remittance as a response shows it.
    pub fn view(&self, books: &Ledger) -> RemittanceView {
        RemittanceView {
            id: self.id,
            status: self.status(books),
            amount: self.amount,
            memo: self.memo.clone(),
            from_user: self.from_user,
            to_user: self.to_user,
            to_phone: self.to_phone.clone(),
            created_at: self.created_at,
            transfer_id: self.transfer_id(),
        }
    }
}

/// Where a remittance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemittanceStatus {
    /// Delivered to a wallet.
    Completed,
    /// Held for a number without a wallet.
    Held,
    /// Cancelled by the sender while held.
    Cancelled,
    /// Not claimed in time; back with the sender.
    Returned,
}

impl RemittanceStatus {
    /// The stable name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            RemittanceStatus::Completed => "completed",
            RemittanceStatus::Held => "held",
            RemittanceStatus::Cancelled => "cancelled",
            RemittanceStatus::Returned => "returned",
        }
    }
}

/// Why a cancel failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CancelError {
    /// No such remittance of this sender.
    #[error("no such remittance")]
    NotFound,
    /// Only a held remittance can be cancelled.
    #[error("only a held remittance can be cancelled")]
    NotHeld,
}

/// Why a remittance was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SendError {
    /// No such sender.
    #[error("no such user")]
    UnknownUser,
    /// No user has this id.
    #[error("no such recipient")]
    UnknownRecipient,
    /// Sending to oneself.
    #[error("a remittance goes to someone else")]
    ToSelf,
    /// The recipient cannot take this money now (their wallet's limits, or too many holds
    /// waiting for the number). Says nothing about amounts: that is the recipient's business.
    #[error("the recipient cannot receive this transfer")]
    RecipientCannotReceive,
    /// The sender's PIN, limits or funds, as for withdrawals.
    #[error("{0}")]
    Funding(FundingError),
}

impl Wallets {
    /// A remittance by id.
    pub fn remittance(&self, id: u64) -> Option<&Remittance> {
        id.checked_sub(1).and_then(|i| self.remittances.get(i as usize))
    }

    /// Number of remittances.
    pub fn remittances_count(&self) -> usize {
        self.remittances.len()
    }

    /// Up to `limit` of `user_id`'s held remittances that returned by timeout before `before`
    /// (0: no bound), newest first: (when, remittance id).
    pub fn returned_before(&self, user_id: u64, before: u64, limit: usize) -> Vec<(u64, u64)> {
        let Some(list) = self.returned.get(&user_id) else { return Vec::new() };
        let end = if before == 0 { list.len() } else { list.partition_point(|&(at, _)| at < before) };
        list[..end].iter().rev().take(limit).copied().collect()
    }

    /// Sends money. See the module documentation for the order of the checks.
    pub(super) fn send(
        &mut self,
        from_user: u64,
        to: &Recipient,
        amount: Amount,
        memo: &Memo,
        pin_ok: Option<bool>,
        ctx: &mut Ctx,
    ) -> Result<RemittanceView, SendError> {
        let now = ctx.now();
        let sender_wallet = super::wallet_account_id(from_user);
        if amount.is_zero() {
            return Err(SendError::Funding(FundingError::InvalidAmount));
        }
        // The sender's side first: PIN, daily limit, funds.
        let pin_free = self.authorize(from_user, amount, pin_ok, ctx).map_err(|e| match e {
            FundingError::UnknownUser => SendError::UnknownUser,
            e => SendError::Funding(e),
        })?;
        let wallet = ctx.books.account(sender_wallet).expect("every user has a wallet");
        if limits::available(wallet) < amount.ledger() {
            return Err(SendError::Funding(FundingError::InsufficientFunds));
        }
        // Then the recipient.
        let (recipient, to_phone) = match to {
            Recipient::User(id) => match self.user(*id) {
                Some(u) => (Some((u.id, u.tier)), None),
                None => return Err(SendError::UnknownRecipient),
            },
            Recipient::Phone(phone) => match self.user_by_phone(phone) {
                Some(u) => (Some((u.id, u.tier)), None),
                None => (None, Some(phone.clone())),
            },
        };
        let to_user = recipient.map(|(id, _)| id);
        if to_user == Some(from_user) {
            return Err(SendError::ToSelf);
        }
        if let Some((id, tier)) = recipient {
            let wallet = ctx.books.account(super::wallet_account_id(id)).expect("every user has a wallet");
            if ctx.limits.check_balance_cap(tier, wallet, amount).is_err() {
                return Err(SendError::RecipientCannotReceive);
            }
        }
        if let Some(phone) = &to_phone {
            if self.held_for.get(phone).map_or(0, Vec::len) >= HOLDS_PER_PHONE_MAX {
                return Err(SendError::RecipientCannotReceive);
            }
        }
        let id = self.remittances.len() as u64 + 1;
        let day = kst_day(now);
        let r = Remittance {
            id,
            from_user,
            to_user,
            to_phone: to_phone.clone(),
            amount,
            memo: memo.clone(),
            created_at: now,
            day,
        };
        let mut transfer = Transfer {
            id: r.transfer_id(),
            debit_account_id: sender_wallet,
            amount: amount.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code: chart::REMITTANCE.code,
            user_data_64: id,
            ..Default::default()
        };
        match to_user {
            Some(u) => transfer.credit_account_id = super::wallet_account_id(u),
            None => {
                chart::ensure_system_account(ctx.books, chart::REMITTANCE_HOLDING, WALLET_CURRENCY, now);
                transfer.credit_account_id = chart::REMITTANCE_HOLDING.system_id(WALLET_CURRENCY);
                transfer.flags = TransferFlags(TransferFlags::PENDING);
                transfer.timeout = HOLD_SECONDS;
            }
        }
        match ctx.transfer(&transfer).result {
            CreateTransferResult::Ok => {}
            CreateTransferResult::ExceedsCredits => return Err(SendError::Funding(FundingError::InsufficientFunds)),
            other => return Err(SendError::Funding(FundingError::Ledger(other))),
        }
        ctx.limits.record_spend(from_user, amount, pin_free, now);
        match (to_user, to_phone) {
            (Some(to_user), _) => {
                ctx.emit(Event::RemittanceCompleted { remittance_id: id, from_user, to_user, amount })
            }
            (None, Some(phone)) => {
                self.held_for.entry(phone).or_default().push(id);
                ctx.emit(Event::RemittanceHeld { remittance_id: id, from_user, amount });
            }
            (None, None) => unreachable!("a remittance goes to a user or a number"),
        }
        let view = r.view(ctx.books);
        self.remittances.push_back(r);
        Ok(view)
    }

    /// The sender cancels a held remittance: the hold is voided and the money is back.
    pub(super) fn cancel_remittance(
        &mut self,
        user_id: u64,
        id: u64,
        ctx: &mut Ctx,
    ) -> Result<RemittanceView, CancelError> {
        let r = self.remittance(id).filter(|r| r.from_user == user_id).cloned().ok_or(CancelError::NotFound)?;
        if r.status(ctx.books) != RemittanceStatus::Held {
            return Err(CancelError::NotHeld);
        }
        let void = Transfer {
            id: chart::REMITTANCE_RESOLVE.id(id),
            pending_id: r.transfer_id(),
            amount: r.amount.ledger(),
            flags: TransferFlags(TransferFlags::VOID_PENDING_TRANSFER),
            ..Default::default()
        };
        // The hold is open (checked above) and the books are Kasa's own: the void succeeds,
        // unless its 48 hours end within this batch after its start (or expiries wait their
        // slice): then the next batch returns it.
        let outcome = ctx.transfer(&void);
        if outcome.result == CreateTransferResult::PendingTransferExpired {
            return Err(CancelError::NotHeld);
        }
        assert!(outcome.result.is_success(), "the books refused to void hold {id}: {outcome:?}");
        ctx.limits.uncount_outgoing(r.from_user, r.day, r.amount);
        self.forget_held(&r);
        ctx.emit(Event::RemittanceCancelled { remittance_id: id });
        Ok(r.view(ctx.books))
    }

    fn forget_held(&mut self, r: &Remittance) {
        if let Some(phone) = &r.to_phone {
            if let Some(ids) = self.held_for.get_mut(phone) {
                ids.retain(|&x| x != r.id);
                if ids.is_empty() {
                    self.held_for.remove(phone);
                }
            }
        }
    }

    /// Pays out the remittances held for `user_id`'s phone number, oldest first, as far as the
    /// new wallet's cap allows (the rest stay held and return if never claimed). Called in the
    /// same step as the sign-up; at most [`HOLDS_PER_PHONE_MAX`] holds wait for a number. Each
    /// claim is a linked pair: post the hold, pay out from holding.
    pub(super) fn claim_held(&mut self, user_id: u64, ctx: &mut Ctx) {
        let user = self.user(user_id).expect("a user that just signed up").clone();
        let Some(ids) = self.held_for.get(&user.phone).cloned() else { return };
        for id in ids {
            let r = self.remittance(id).expect("held ids are remittances").clone();
            if r.status(ctx.books) != RemittanceStatus::Held {
                continue;
            }
            let wallet = ctx.books.account(user.wallet_account_id()).expect("the new wallet");
            if ctx.limits.check_balance_cap(user.tier, wallet, r.amount).is_err() {
                continue;
            }
            let post = Transfer {
                id: chart::REMITTANCE_RESOLVE.id(id),
                pending_id: r.transfer_id(),
                amount: r.amount.ledger(),
                flags: TransferFlags(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::LINKED),
                ..Default::default()
            };
            let payout = Transfer {
                id: chart::REMITTANCE_PAYOUT.id(id),
                debit_account_id: chart::REMITTANCE_HOLDING.system_id(WALLET_CURRENCY),
                credit_account_id: user.wallet_account_id(),
                amount: r.amount.ledger(),
                ledger: WALLET_CURRENCY.ledger(),
                code: chart::REMITTANCE_PAYOUT.code,
                user_data_64: id,
                ..Default::default()
            };
            let outcomes = ctx.transfers(&[post, payout]);
            // Its 48 hours may end within this batch after its start: the next batch returns it.
            if outcomes[0].result == CreateTransferResult::PendingTransferExpired {
                continue;
            }
            assert!(outcomes.iter().all(|o| o.result.is_success()), "the books refused claim {id}: {outcomes:?}");
            self.remittances[(id - 1) as usize].to_user = Some(user_id);
            self.forget_held(&r);
            ctx.emit(Event::RemittanceClaimed { remittance_id: id, to_user: user_id });
        }
    }

    /// Holds the books expired by their timeout: their money is back with the sender, who gets
    /// the daily limit back.
    pub(super) fn on_holds_expired(&mut self, expired: &[Transfer], ctx: &mut Ctx) {
        for t in expired {
            let Some(id) = chart::REMITTANCE.number_of(t.id) else { continue };
            let Some(r) = self.remittance(id).cloned() else { continue };
            ctx.limits.uncount_outgoing(r.from_user, r.day, r.amount);
            self.forget_held(&r);
            let at = expiry_of(t).expect("a hold has a timeout");
            self.returned.entry(r.from_user).or_default().push((at, id));
            ctx.emit(Event::RemittanceReturned { remittance_id: id });
        }
    }
}
