//! Operators' adjustments of a wallet: a credit or a debit with a reason on record, between
//! the wallet and the operator adjustments account in Kasa's books. It keeps every rule a
//! wallet has (a credit stays within the tier's balance cap, a debit within what the wallet
//! has available) and shows in the user's history. It is the only way an operator moves a
//! wallet's money: the operators' ledger API cannot reach Kasa's books.

use super::command::{AdjustError, AdjustmentView, Direction, Reason};
use super::Ctx;
use super::{Event, Wallets, WALLET_CURRENCY};
use crate::chart;
use crate::ledger::Transfer;
use crate::limits;
use crate::money::Amount;
use serde::{Deserialize, Serialize};

/// An adjustment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    /// Assigned by the engine, from 1.
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
}

impl Adjustment {
    /// The id of its transfer in the books.
    pub fn transfer_id(&self) -> u128 {
        chart::ADJUSTMENT.id(self.id)
    }

    /// The adjustment as a response shows it.
    pub fn view(&self) -> AdjustmentView {
        AdjustmentView {
            id: self.id,
            user_id: self.user_id,
            amount: self.amount,
            direction: self.direction,
            reason: self.reason.clone(),
            created_at: self.created_at,
            transfer_id: self.transfer_id(),
        }
    }
}

impl Wallets {
    /// An adjustment by id.
    pub fn adjustment(&self, id: u64) -> Option<&Adjustment> {
        id.checked_sub(1).and_then(|i| self.adjustments.get(i as usize))
    }

    pub(super) fn adjust(
        &mut self,
        user_id: u64,
        amount: Amount,
        direction: Direction,
        reason: &Reason,
        ctx: &mut Ctx,
    ) -> Result<AdjustmentView, AdjustError> {
        let now = ctx.now();
        let user = self.user(user_id).cloned().ok_or(AdjustError::UnknownUser)?;
        if amount.is_zero() {
            return Err(AdjustError::InvalidAmount);
        }
        let wallet = *ctx.books.account(user.wallet_account_id()).expect("every user has a wallet");
        match direction {
            Direction::Credit => {
                if let Err(e) = ctx.limits.check_balance_cap(user.tier, &wallet, amount) {
                    return Err(AdjustError::BalanceCap { cap: e.value, remaining: e.remaining });
                }
            }
            Direction::Debit => {
                let available = limits::available(&wallet);
                if available < amount.ledger() {
                    let available = Amount::from_ledger(available).unwrap_or(Amount::MAX);
                    return Err(AdjustError::InsufficientFunds { available });
                }
            }
        }
        chart::ensure_system_account(ctx.books, chart::ADJUSTMENTS, WALLET_CURRENCY, now);
        let id = self.adjustments.len() as u64 + 1;
        let adjustment = Adjustment { id, user_id, amount, direction, reason: reason.clone(), created_at: now };
        let (debit, credit) = match direction {
            Direction::Credit => (chart::ADJUSTMENTS.system_id(WALLET_CURRENCY), user.wallet_account_id()),
            Direction::Debit => (user.wallet_account_id(), chart::ADJUSTMENTS.system_id(WALLET_CURRENCY)),
        };
        let transfer = Transfer {
            id: adjustment.transfer_id(),
            debit_account_id: debit,
            credit_account_id: credit,
            amount: amount.ledger(),
            ledger: WALLET_CURRENCY.ledger(),
            code: chart::ADJUSTMENT.code,
            user_data_64: user_id,
            ..Default::default()
        };
        // Checked above: the cap for a credit, the funds for a debit.
        let outcome = ctx.transfer(&transfer);
        assert!(outcome.result.is_success(), "the books refused adjustment {id}: {outcome:?}");
        let view = adjustment.view();
        self.adjustments.push_back(adjustment);
        ctx.emit(Event::WalletAdjusted { adjustment_id: id, user_id, direction, amount });
        Ok(view)
    }
}
