//! Fees, in one place for every domain: a fee is basis points of the amount plus a fixed
//! part, computed in integers with one rounding rule.
//!
//! **Rounding:** the proportional part is rounded half up to the currency's minor unit
//! (`amount × bps / 10,000`, and a remainder of half a minor unit or more rounds up), the
//! rule Korean card and easy-payment fees use. Amounts are integers of minor units, so this
//! is the only rounding there is; a fee never exceeds the amount it is charged on plus its
//! fixed part, and `fee_for` says `None` rather than overflow.

use crate::money::Amount;
use serde::{Deserialize, Serialize};

/// Basis points in a whole: 10,000 bps = 100%.
pub const BPS_WHOLE: u64 = 10_000;

/// The highest withdrawal fee an operator may set, in won.
pub const WITHDRAWAL_FEE_MAX: Amount = Amount::new(10_000);

/// A fee: `bps` basis points of the amount (rounded half up) plus `fixed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    /// Basis points of the amount, 0 to 10,000.
    pub bps: u16,
    /// A fixed part in minor units.
    pub fixed: Amount,
}

impl FeeSchedule {
    /// A fixed fee only.
    pub const fn fixed(fixed: Amount) -> FeeSchedule {
        FeeSchedule { bps: 0, fixed }
    }

    /// The fee on `amount`, or `None` if it would overflow.
    pub fn fee_for(&self, amount: Amount) -> Option<Amount> {
        let scaled = u128::from(amount.minor()) * u128::from(self.bps);
        let whole = BPS_WHOLE as u128;
        let proportional = scaled / whole + u128::from(scaled % whole * 2 >= whole);
        Amount::from_ledger(proportional)?.checked_add(self.fixed)
    }
}

/// The fees Kasa charges, set by operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fees {
    /// Charged per withdrawal to a bank account, on top of the amount (0 by default).
    pub withdrawal: FeeSchedule,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_fees_round_half_up() {
        let card = FeeSchedule { bps: 250, fixed: Amount::ZERO }; // 2.5%
        assert_eq!(card.fee_for(Amount::new(10_000)), Some(Amount::new(250)));
        assert_eq!(card.fee_for(Amount::new(100)), Some(Amount::new(3)), "2.5 rounds up");
        assert_eq!(card.fee_for(Amount::new(99)), Some(Amount::new(2)), "2.475 rounds down");
        assert_eq!(card.fee_for(Amount::new(20)), Some(Amount::new(1)), "0.5 rounds up");
        assert_eq!(card.fee_for(Amount::new(19)), Some(Amount::new(0)), "0.475 rounds down");
        let both = FeeSchedule { bps: 100, fixed: Amount::new(50) };
        assert_eq!(both.fee_for(Amount::new(1_000)), Some(Amount::new(60)));
        let all = FeeSchedule { bps: 10_000, fixed: Amount::new(1) };
        assert_eq!(all.fee_for(Amount::MAX), None, "an overflow is refused, not wrapped");
        assert_eq!(FeeSchedule::fixed(Amount::new(500)).fee_for(Amount::new(1)), Some(Amount::new(500)));
    }
}
