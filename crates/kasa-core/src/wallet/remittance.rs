//! Remittance: a user sends money to another user (by id or phone number), or to a phone
//! number that has no wallet yet.
//!
//! To a user, it is one posted transfer between the two wallets, checked against the
//! sender's PIN-free amount and daily outgoing limit and the recipient's balance cap in the
//! same step. To a number with no wallet, the money is held: a pending transfer from the
//! sender's wallet to the holding account with a 48-hour timeout. If the number signs up in
//! time, the sign-up claims it (post, then holding to the new wallet, in the same step as the
//! sign-up); if not, the timeout voids it and the money is back with the sender, by engine
//! time. The sender can cancel a held remittance before it is claimed.

use super::funding::{ensure_system_account, FundingError, LimitExceeded};
use super::{domain_id, domain_id_parts, get_str, put_str, Phone, Wallets, KRW_LEDGER};
use crate::ledger::{expiry_of, Ledger, PendingStatus, Transfer, TransferFlags};
use std::collections::BTreeMap;

/// Account code of the holding account for remittances waiting to be claimed.
pub const CODE_REMITTANCE_HOLDING: u16 = 2002;
/// Transfer code of a remittance between wallets (or into holding).
pub const CODE_REMITTANCE: u16 = 3003;
/// Transfer code of a held remittance paid out to the newly signed-up recipient.
pub const CODE_REMITTANCE_CLAIM: u16 = 3004;
/// How long money for a number without a wallet is held: 48 hours.
pub const HOLD_SECONDS: u32 = 48 * 3600;
/// Longest memo, in characters.
pub const MEMO_CHARS_MAX: usize = 100;

pub(crate) const KIND_HOLDING: u64 = 3;
/// The remittance's own transfer (direct, or the pending hold).
pub(crate) const KIND_REMITTANCE_TRANSFER: u64 = 6;
/// The post or void that resolves a hold.
pub(crate) const KIND_REMITTANCE_RESOLVE: u64 = 7;
/// The payout from holding to the claimant's wallet.
pub(crate) const KIND_REMITTANCE_PAYOUT: u64 = 8;

/// The holding account for remittances waiting to be claimed.
pub fn holding_account_id() -> u128 {
    domain_id(KIND_HOLDING, 0)
}

/// Who the money goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// A user, by id.
    User(u64),
    /// A phone number, with or without a wallet.
    Phone(String),
}

/// A remittance.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    pub amount: u64,
    /// A note from the sender.
    pub memo: String,
    /// When it was sent.
    pub created_at: u64,
    /// The KST day it counts against the sender's daily limit.
    pub day: u64,
}

impl Remittance {
    /// The id of its ledger transfer (direct, or the pending hold).
    pub fn transfer_id(&self) -> u128 {
        domain_id(KIND_REMITTANCE_TRANSFER, self.id)
    }
}

/// Where a remittance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    /// No such remittance of this sender.
    #[error("no such remittance")]
    NotFound,
    /// Only a held remittance can be cancelled.
    #[error("only a held remittance can be cancelled")]
    NotHeld,
}

/// Remittances, and which held ones wait for which number.
#[derive(Clone, Debug, Default)]
pub struct RemittanceBook {
    pub(crate) remittances: Vec<Remittance>,
    /// Held remittances by recipient number, in order.
    pub(crate) held_for: BTreeMap<Phone, Vec<u64>>,
    /// Per sender, held remittances that their timeout returned: (when, remittance id), in
    /// time order. Derived from the ledger (rebuilt on decode, not in the canonical encoding),
    /// for the history's `returned` entries.
    returned: BTreeMap<u64, Vec<(u64, u64)>>,
}

impl RemittanceBook {
    /// A remittance by id.
    pub fn remittance(&self, id: u64) -> Option<&Remittance> {
        id.checked_sub(1).and_then(|i| self.remittances.get(i as usize))
    }

    /// Where a remittance stands, from its ledger transfer.
    pub fn status(&self, ledger: &Ledger, r: &Remittance) -> RemittanceStatus {
        match ledger.pending_status(r.transfer_id()) {
            None | Some(PendingStatus::Posted) => RemittanceStatus::Completed,
            Some(PendingStatus::Pending) => RemittanceStatus::Held,
            Some(PendingStatus::Voided) => RemittanceStatus::Cancelled,
            Some(PendingStatus::Expired) => RemittanceStatus::Returned,
        }
    }

    /// Up to `limit` of `user_id`'s held remittances that returned by timeout before `before`
    /// (0: no bound), newest first: (when, remittance id).
    pub fn returned_before(&self, user_id: u64, before: u64, limit: usize) -> Vec<(u64, u64)> {
        let Some(list) = self.returned.get(&user_id) else { return Vec::new() };
        let end = if before == 0 { list.len() } else { list.partition_point(|&(at, _)| at < before) };
        list[..end].iter().rev().take(limit).copied().collect()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.remittances.len() as u64).to_le_bytes());
        for r in &self.remittances {
            out.extend_from_slice(&r.from_user.to_le_bytes());
            out.extend_from_slice(&r.to_user.unwrap_or(0).to_le_bytes());
            put_str(out, r.to_phone.as_ref().map_or("", |p| p.as_str()));
            out.extend_from_slice(&r.amount.to_le_bytes());
            put_str(out, &r.memo);
            out.extend_from_slice(&r.created_at.to_le_bytes());
            out.extend_from_slice(&r.day.to_le_bytes());
        }
    }

    pub(crate) fn decode(
        c: &mut crate::command::Cursor,
        users: u64,
        ledger: &Ledger,
    ) -> Result<RemittanceBook, String> {
        let e = |e: crate::DecodeError| e.to_string();
        let mut book = RemittanceBook::default();
        for i in 0..c.u64().map_err(e)? {
            let id = i + 1;
            let from_user = c.u64().map_err(e)?;
            let to_user = Some(c.u64().map_err(e)?).filter(|&u| u != 0);
            let phone = get_str(c)?;
            let to_phone = if phone.is_empty() {
                None
            } else {
                Some(Phone::from_e164(&phone).map_err(|e| format!("remittance {id}: {e}"))?)
            };
            let amount = c.u64().map_err(e)?;
            let memo = get_str(c)?;
            let created_at = c.u64().map_err(e)?;
            let day = c.u64().map_err(e)?;
            let known = |u: u64| u >= 1 && u <= users;
            if !known(from_user) || to_user.is_some_and(|u| !known(u)) || (to_user.is_none() && to_phone.is_none()) {
                return Err(format!("remittance {id} names unknown users"));
            }
            let r = Remittance { id, from_user, to_user, to_phone, amount, memo, created_at, day };
            match ledger.pending_status(r.transfer_id()) {
                Some(PendingStatus::Pending) if to_user.is_none() => {
                    book.held_for.entry(r.to_phone.clone().expect("checked above")).or_default().push(id);
                }
                Some(PendingStatus::Expired) => {
                    let hold = ledger.transfer(r.transfer_id()).expect("a pending status has its transfer");
                    let at = expiry_of(hold).expect("a hold has a timeout");
                    book.returned.entry(from_user).or_default().push((at, id));
                }
                _ => {}
            }
            book.remittances.push(r);
        }
        Ok(book)
    }
}

fn valid_memo(memo: &str) -> bool {
    memo.chars().count() <= MEMO_CHARS_MAX && !memo.chars().any(char::is_control)
}

impl Wallets {
    /// Sends money. Checks the sender's PIN (above the PIN-free amount), daily limit and
    /// funds, and the recipient's balance cap, all in the same step as the transfer.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        ledger: &mut Ledger,
        from_user: u64,
        to: &Recipient,
        amount: u64,
        memo: &str,
        pin_ok: Option<bool>,
        now: u64,
    ) -> Result<u64, SendError> {
        let Some(sender) = self.user(from_user).map(super::User::actor) else { return Err(SendError::UnknownUser) };
        if amount == 0 {
            return Err(SendError::Funding(FundingError::InvalidAmount));
        }
        if !valid_memo(memo) {
            return Err(SendError::InvalidMemo);
        }
        let (to_user, to_phone) = match to {
            Recipient::User(id) => match self.user(*id) {
                Some(u) => (Some(u.id), None),
                None => return Err(SendError::UnknownRecipient),
            },
            Recipient::Phone(raw) => {
                let phone = Phone::parse(raw).map_err(|_| SendError::InvalidPhone)?;
                match self.user_by_phone(&phone) {
                    Some(u) => (Some(u.id), None),
                    None => (None, Some(phone)),
                }
            }
        };
        if to_user == Some(from_user) {
            return Err(SendError::ToSelf);
        }
        if amount > sender.pin_free_krw {
            match pin_ok {
                None => return Err(SendError::Funding(FundingError::PinRequired)),
                Some(ok) => self.check_pin(from_user, ok, now).map_err(SendError::Funding)?,
            }
        }
        let (_, daily) = self.limits(sender.tier);
        let used = self.funding.outgoing_today(from_user, now);
        if used.saturating_add(amount) > daily {
            return Err(SendError::Funding(FundingError::LimitExceeded(LimitExceeded {
                limit: "daily_outgoing",
                value: daily,
                remaining: daily.saturating_sub(used),
            })));
        }
        if let Some(recipient) = to_user.and_then(|u| self.user(u)) {
            let (cap, _) = self.limits(recipient.tier);
            let wallet = ledger.account(recipient.wallet_account_id()).expect("every user has a wallet");
            let held =
                wallet.credits_posted.saturating_add(wallet.credits_pending).saturating_sub(wallet.debits_posted);
            if held.saturating_add(amount as u128) > cap as u128 {
                // The recipient's room is theirs to know: say which limit, not how much is left.
                return Err(SendError::RecipientLimit { value: cap });
            }
        }
        let id = self.remittances.remittances.len() as u64 + 1;
        let day = super::funding::kst_day(now);
        let r = Remittance {
            id,
            from_user,
            to_user,
            to_phone: to_phone.clone(),
            amount,
            memo: memo.to_string(),
            created_at: now,
            day,
        };
        let mut transfer = Transfer {
            id: r.transfer_id(),
            debit_account_id: sender.wallet_account_id(),
            amount: amount as u128,
            ledger: KRW_LEDGER,
            code: CODE_REMITTANCE,
            user_data_64: id,
            ..Default::default()
        };
        match to_user {
            Some(u) => transfer.credit_account_id = super::wallet_account_id(u),
            None => {
                ensure_system_account(ledger, holding_account_id(), CODE_REMITTANCE_HOLDING, now)
                    .map_err(|e| SendError::Funding(FundingError::Ledger(e)))?;
                transfer.credit_account_id = holding_account_id();
                transfer.flags = TransferFlags(TransferFlags::PENDING);
                transfer.timeout = HOLD_SECONDS;
            }
        }
        let outcome = ledger.create_transfer(&transfer, now);
        match outcome.result {
            crate::CreateTransferResult::Ok => {}
            crate::CreateTransferResult::ExceedsCredits => {
                return Err(SendError::Funding(FundingError::InsufficientFunds))
            }
            other => return Err(SendError::Funding(FundingError::Ledger(other.name()))),
        }
        self.funding.count_outgoing(from_user, day, amount);
        if let Some(phone) = to_phone {
            self.remittances.held_for.entry(phone).or_default().push(id);
        }
        self.remittances.remittances.push(r);
        Ok(id)
    }

    /// The sender cancels a held remittance: the hold is voided and the money is back.
    pub fn cancel_remittance(
        &mut self,
        ledger: &mut Ledger,
        user_id: u64,
        id: u64,
        now: u64,
    ) -> Result<(), CancelError> {
        let r =
            self.remittances.remittance(id).filter(|r| r.from_user == user_id).cloned().ok_or(CancelError::NotFound)?;
        if self.remittances.status(ledger, &r) != RemittanceStatus::Held {
            return Err(CancelError::NotHeld);
        }
        let void = Transfer {
            id: domain_id(KIND_REMITTANCE_RESOLVE, id),
            pending_id: r.transfer_id(),
            flags: TransferFlags(TransferFlags::VOID_PENDING_TRANSFER),
            ..Default::default()
        };
        let outcome = ledger.create_transfer(&void, now);
        if !outcome.result.is_success() {
            // A void is refused only if the hold resolved in between, which the status check
            // above rules out; report it rather than pretend.
            return Err(CancelError::NotHeld);
        }
        self.funding.uncount_outgoing(r.from_user, r.day, r.amount);
        self.forget_held(&r);
        Ok(())
    }

    fn forget_held(&mut self, r: &Remittance) {
        if let Some(phone) = &r.to_phone {
            if let Some(ids) = self.remittances.held_for.get_mut(phone) {
                ids.retain(|&x| x != r.id);
                if ids.is_empty() {
                    self.remittances.held_for.remove(phone);
                }
            }
        }
    }

    /// Pays out the remittances held for `user_id`'s phone number, oldest first, as far as the
    /// new wallet's cap allows (the rest stay held and return if never claimed). Called in the
    /// same step as the sign-up. Each claim is a linked pair: post the hold, pay out from holding.
    pub(crate) fn claim_held(&mut self, ledger: &mut Ledger, user_id: u64, now: &mut u64) {
        let user = self.user(user_id).expect("a user that just signed up").clone();
        let Some(ids) = self.remittances.held_for.get(&user.phone).cloned() else { return };
        let (cap, _) = self.limits(user.tier);
        for id in ids {
            let r = self.remittances.remittance(id).expect("held ids are remittances").clone();
            if self.remittances.status(ledger, &r) != RemittanceStatus::Held {
                continue;
            }
            let wallet = ledger.account(user.wallet_account_id()).expect("the new wallet");
            if wallet.credits_posted.saturating_sub(wallet.debits_posted).saturating_add(r.amount as u128) > cap as u128
            {
                continue;
            }
            let post = Transfer {
                id: domain_id(KIND_REMITTANCE_RESOLVE, id),
                pending_id: r.transfer_id(),
                amount: crate::ledger::AMOUNT_MAX,
                flags: TransferFlags(TransferFlags::POST_PENDING_TRANSFER | TransferFlags::LINKED),
                ..Default::default()
            };
            let payout = Transfer {
                id: domain_id(KIND_REMITTANCE_PAYOUT, id),
                debit_account_id: holding_account_id(),
                credit_account_id: user.wallet_account_id(),
                amount: r.amount as u128,
                ledger: KRW_LEDGER,
                code: CODE_REMITTANCE_CLAIM,
                user_data_64: id,
                ..Default::default()
            };
            let outcomes = ledger.create_transfers(&[post, payout], *now);
            *now += 2;
            // The pair is linked: if the ledger refused either (an operator closed the holding
            // account, say), neither happened and the money stays held, to return in time.
            if outcomes.iter().all(|o| o.result.is_success()) {
                self.remittances.remittances[(id - 1) as usize].to_user = Some(user_id);
                self.forget_held(&r);
            }
        }
    }

    /// Gives back the daily limit of held remittances that returned to their senders, and
    /// forgets them as held (the ledger's expiry reports which transfers expired).
    pub(crate) fn on_remittances_expired(&mut self, expired: &[Transfer]) {
        for t in expired {
            let Some((KIND_REMITTANCE_TRANSFER, id)) = domain_id_parts(t.id) else { continue };
            if let Some(r) = self.remittances.remittance(id).cloned() {
                self.funding.uncount_outgoing(r.from_user, r.day, r.amount);
                self.forget_held(&r);
                let at = expiry_of(t).expect("a hold has a timeout");
                self.remittances.returned.entry(r.from_user).or_default().push((at, id));
            }
        }
    }
}

/// Why a remittance was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such sender.
    #[error("no such user")]
    UnknownUser,
    /// No user has this id.
    #[error("no such recipient")]
    UnknownRecipient,
    /// The phone number is invalid.
    #[error("invalid phone number")]
    InvalidPhone,
    /// Sending to oneself.
    #[error("a remittance goes to someone else")]
    ToSelf,
    /// The memo is too long or has control characters.
    #[error("the memo must be at most {MEMO_CHARS_MAX} characters without control characters")]
    InvalidMemo,
    /// The recipient's wallet would pass its cap.
    #[error("the recipient's wallet cannot hold this much (balance cap {value} won)")]
    RecipientLimit {
        /// The recipient's cap.
        value: u64,
    },
    /// Amount, PIN, limit or funds, as for withdrawals.
    #[error("{0}")]
    Funding(FundingError),
}
