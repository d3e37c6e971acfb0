//! Quotes: an amount to sell or to buy, and the rate in force, into both amounts, rounded by
//! the one rule of the module (see `fx/mod.rs`): the amount bought down, the amount sold up.

use super::{Directed, FxError, Rates};
use crate::money::{Amount, Currency};
use rust_decimal::Decimal;

/// The largest amount quoted, given or computed, in minor units: 10^15 (a trillion dollars in
/// cents, a quadrillion won), far beyond any payment, and small enough that every product in
/// the arithmetic below fits in 128 bits or is known to be larger than this.
pub const AMOUNT_MINOR_MAX: u64 = 1_000_000_000_000_000;

/// Which amount the customer fixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// This many minor units of the currency sold; the amount bought follows.
    Sell(Amount),
    /// This many minor units of the currency bought; the amount sold follows.
    Buy(Amount),
}

/// A quote: both amounts in minor units, and the rate they came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// Units (major) of the currency bought per unit (major) sold, spread included; for
    /// reading (the amounts are computed from the exact rate, see the module's rounding rule).
    pub customer_rate: Decimal,
    /// Minor units sold.
    pub sell_amount: Amount,
    /// Minor units bought.
    pub buy_amount: Amount,
}

/// Quotes selling `sell` for `buy` at the rate in force at `now`, with the amount on `side`
/// fixed: given the amount sold, the amount bought is rounded down; given the amount bought,
/// the amount sold is rounded up. Refuses the same currency twice, a zero amount, a pair with
/// no rate in force, and amounts that come to zero or over [`AMOUNT_MINOR_MAX`].
pub fn quote(rates: &Rates, sell: Currency, buy: Currency, side: Side, now: u64) -> Result<Quoted, FxError> {
    if sell == buy {
        return Err(FxError::SameCurrency { currency: sell });
    }
    check_given(side, sell, buy)?;
    let directed = rates.at(sell, buy, now).ok_or(FxError::NoRate { sell, buy, now })?;
    convert(&directed, side)
}

/// Refuses a given amount of zero or over [`AMOUNT_MINOR_MAX`].
fn check_given(side: Side, sell: Currency, buy: Currency) -> Result<(), FxError> {
    let (given, given_currency) = match side {
        Side::Sell(amount) => (amount.minor(), sell),
        Side::Buy(amount) => (amount.minor(), buy),
    };
    if given == 0 {
        return Err(FxError::ZeroAmount);
    }
    if given > AMOUNT_MINOR_MAX {
        return Err(FxError::AmountTooLarge { currency: given_currency });
    }
    Ok(())
}

/// Converts at a rate already chosen (a quote's, kept so that a payment made with it, or a
/// refund of one, gets the same rate later): the amounts by the rounding rule of [`quote`].
pub fn convert(directed: &Directed, side: Side) -> Result<Quoted, FxError> {
    let (sell, buy) = (directed.sell(), directed.buy());
    check_given(side, sell, buy)?;
    let (given, given_currency) = match side {
        Side::Sell(amount) => (amount.minor(), sell),
        Side::Buy(amount) => (amount.minor(), buy),
    };
    debug_assert!(given > 0 && given <= AMOUNT_MINOR_MAX && given_currency.numeric() > 0);
    let ratio = directed.customer_ratio();
    let (sell_unit, buy_unit) = (minor_per_major(sell), minor_per_major(buy));
    // In minor units, bought = sold × (num / den) × buy_unit / sell_unit. A ratio's terms are
    // below 10^26 and a unit at most 10^4, so the denominators below fit; a numerator can
    // overflow only when its denominator is at most 10^18 (a direct rate's den is at most
    // 10^14, an inverse one's num at most 10^14), so an overflow means a result of at least
    // 2^128 / 10^18, over the maximum.
    let (sell_amount, buy_amount) = match side {
        Side::Sell(sold) => {
            let numerator = u128::from(sold.minor()).checked_mul(ratio.num).and_then(|n| n.checked_mul(buy_unit));
            let denominator = ratio.den * sell_unit;
            let bought = numerator.map(|n| n / denominator);
            (sold.minor(), checked_result(bought, buy)?)
        }
        Side::Buy(bought) => {
            let numerator = u128::from(bought.minor()).checked_mul(ratio.den).and_then(|n| n.checked_mul(sell_unit));
            let denominator = ratio.num * buy_unit;
            let sold = numerator.map(|n| n.div_ceil(denominator));
            (checked_result(sold, sell)?, bought.minor())
        }
    };
    Ok(Quoted {
        customer_rate: directed.customer_rate(),
        sell_amount: Amount::new(sell_amount),
        buy_amount: Amount::new(buy_amount),
    })
}

/// Minor units in one major unit: 10^minor_units (1 for KRW, 100 for CNY, 1,000 for BHD).
fn minor_per_major(currency: Currency) -> u128 {
    10u128.pow(u32::from(currency.minor_units()))
}

/// A computed amount, refused if it is zero or over the maximum (`None` is an overflow).
fn checked_result(amount: Option<u128>, currency: Currency) -> Result<u64, FxError> {
    match amount {
        Some(0) => Err(FxError::AmountTooSmall { currency }),
        Some(amount) if amount <= u128::from(AMOUNT_MINOR_MAX) => Ok(amount as u64),
        _ => Err(FxError::AmountTooLarge { currency }),
    }
}
