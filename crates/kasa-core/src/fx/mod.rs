//! Foreign exchange: the rates operators load and the quotes computed from them, in exact
//! decimal arithmetic with one rounding rule that never gives away a minor unit.
//!
//! An operator loads a [`Rate`] per pair (`CNY/KRW`: one yuan is `mid` won), with a spread in
//! basis points and the engine time from which it is in force; [`Rates`] keeps them and finds
//! the one in force for a pair in either direction ([`Rates::at`]). [`quote`] turns an amount
//! to sell or to buy into both amounts, and [`parse_rates_csv`] reads an operator's file.
//!
//! **The rounding rule**, the only one: everything rounds in Kasa's favour, once, at the end.
//! The customer's rate is `mid(sell→buy) × (1 − spread_bps / 10,000)`, where `mid(sell→buy)`
//! is the loaded mid or, for the pair loaded the other way round, exactly `1 / mid`. It is kept
//! as an exact fraction, never rounded: given the amount sold, the amount bought is the exact
//! product rounded DOWN to the buy currency's minor units; given the amount bought, the amount
//! sold is the exact quotient rounded UP to the sell currency's minor units. So selling X buys
//! Y, and buying Y never costs more than X. The decimal [`Quoted::customer_rate`] is for people
//! to read: exact when it fits in a [`Decimal`], else rounded down to the 28 digits it holds.
//!
//! What it does not do: it moves no money (a conversion is a linked pair of transfers through
//! the FX position accounts, see [`crate::money`], made by a domain later), keeps no state in
//! the journal yet, reads no clock (`now` comes in) and uses no floats. It imports only
//! `money` from the crate (checked by `tests/layers.rs`).
//!
//! ```
//! use kasa_core::fx::{quote, Rate, Rates, Side};
//! use kasa_core::money::{Amount, Currency};
//!
//! let mut rates = Rates::default();
//! // One yuan is 190.50 won, with a 1% spread, in force from engine time 1,000.
//! rates.insert(Rate::parse("CNY/KRW", "190.50", 100, 1_000).unwrap()).unwrap();
//! // Selling 100.00 yuan: 100 × 190.50 × 0.99 = 18,859.5 won, rounded down.
//! let quoted = quote(&rates, Currency::CNY, Currency::KRW, Side::Sell(Amount::new(10_000)), 2_000).unwrap();
//! assert_eq!(quoted.buy_amount, Amount::new(18_859));
//! assert_eq!(quoted.customer_rate.to_string(), "188.595");
//! ```

mod csv;
mod quote;
mod rate;

pub use csv::{parse_rates_csv, parse_rfc3339, CSV_HEADER, CSV_LINE_BYTES_MAX, CSV_ROWS_MAX};
pub use quote::{convert, quote, Quoted, Side, AMOUNT_MINOR_MAX};
pub use rate::{
    Directed, Rate, RateWire, Rates, MID_FRACTION_DIGITS_MAX, MID_INTEGER_DIGITS_MAX, RATES_MAX, SPREAD_BPS_MAX,
};
pub use rust_decimal::Decimal;

use crate::money::Currency;

/// Why a rate, a quote or a line of a rates file was refused. [`FxError::code`] is the stable
/// name; the messages quote no free text from the input, only counts and currency codes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    /// The pair is not written `BASE/QUOTE` with two three-letter codes.
    #[error("expected a pair written BASE/QUOTE with two three-letter codes, like CNY/KRW")]
    InvalidPair,
    /// A three-letter code that is not an ISO 4217 currency with minor units.
    #[error("expected an ISO 4217 currency code, found {code}")]
    UnknownCurrency {
        /// The code, three upper-case ASCII letters (anything else is an [`FxError::InvalidPair`]).
        code: String,
    },
    /// A pair or a quote of a currency against itself.
    #[error("expected two different currencies, found {currency} twice")]
    SameCurrency {
        /// The currency named twice.
        currency: Currency,
    },
    /// The mid rate is not a plain decimal above zero within the digit limits.
    #[error(
        "expected a mid rate as a plain decimal above zero with at most {MID_INTEGER_DIGITS_MAX} integer and \
         {MID_FRACTION_DIGITS_MAX} fractional digits, found {found}"
    )]
    InvalidRate {
        /// What was found instead, in words (`"a sign or exponent"`, `"zero"`).
        found: &'static str,
    },
    /// The spread is over [`SPREAD_BPS_MAX`], or not a number.
    #[error("expected a spread of 0 to {SPREAD_BPS_MAX} basis points, found {found}")]
    InvalidSpread {
        /// What was found, in words or digits.
        found: String,
    },
    /// The table holds [`RATES_MAX`] rates already.
    #[error("expected at most {RATES_MAX} rates in the table")]
    TooManyRates,
    /// No rate for the pair, in either direction, is in force at that time.
    #[error("no rate for {sell}/{buy} is in force at {now}")]
    NoRate {
        /// The currency sold.
        sell: Currency,
        /// The currency bought.
        buy: Currency,
        /// The engine time of the quote.
        now: u64,
    },
    /// An amount of zero to sell or to buy.
    #[error("expected an amount above zero")]
    ZeroAmount,
    /// The other side of the quote comes to less than one minor unit.
    #[error("the amount converts to less than one minor unit of {currency}")]
    AmountTooSmall {
        /// The currency whose amount would be zero.
        currency: Currency,
    },
    /// An amount, given or computed, over [`AMOUNT_MINOR_MAX`] minor units.
    #[error("expected at most {AMOUNT_MINOR_MAX} minor units of {currency}")]
    AmountTooLarge {
        /// The currency whose amount is too large.
        currency: Currency,
    },
    /// The first line of a rates file is not [`CSV_HEADER`].
    #[error("expected the header {CSV_HEADER} on the first line")]
    InvalidHeader,
    /// A line of a rates file is not four comma-separated fields, or is too long.
    #[error("expected four comma-separated fields in at most {CSV_LINE_BYTES_MAX} bytes, found {found}")]
    InvalidLine {
        /// What was found, in words.
        found: String,
    },
    /// A `valid_from` that is not an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ` from 1970 on.
    #[error("expected valid_from as an RFC 3339 UTC time like 2026-12-01T00:00:00Z, from 1970 to 2554")]
    InvalidTime,
    /// The same pair, in either direction, and `valid_from` twice in one file (two rates for
    /// one moment could cross, and a round trip through them would pay the customer).
    #[error("the same pair (in either direction) and valid_from as line {first}")]
    DuplicateRate {
        /// The line that had them first.
        first: usize,
    },
    /// A rates file of more than [`CSV_ROWS_MAX`] rows.
    #[error("expected at most {CSV_ROWS_MAX} rows")]
    TooManyRows,
    /// A refusal on one line of a rates file (1 is the header).
    #[error("line {line}: {error}")]
    Line {
        /// The line number, counting from 1.
        line: usize,
        /// What is wrong with it.
        error: Box<FxError>,
    },
}

impl FxError {
    /// The stable name of the refusal; for a refused line, the name of what is wrong with it.
    pub fn code(&self) -> &'static str {
        match self {
            FxError::InvalidPair => "invalid_pair",
            FxError::UnknownCurrency { .. } => "unknown_currency",
            FxError::SameCurrency { .. } => "same_currency",
            FxError::InvalidRate { .. } => "invalid_rate",
            FxError::InvalidSpread { .. } => "invalid_spread",
            FxError::TooManyRates => "too_many_rates",
            FxError::NoRate { .. } => "no_rate",
            FxError::ZeroAmount => "zero_amount",
            FxError::AmountTooSmall { .. } => "amount_too_small",
            FxError::AmountTooLarge { .. } => "amount_too_large",
            FxError::InvalidHeader => "invalid_header",
            FxError::InvalidLine { .. } => "invalid_line",
            FxError::InvalidTime => "invalid_time",
            FxError::DuplicateRate { .. } => "duplicate_rate",
            FxError::TooManyRows => "too_many_rows",
            FxError::Line { error, .. } => error.code(),
        }
    }

    /// The line number of a refusal in a rates file.
    pub fn line(&self) -> Option<usize> {
        match self {
            FxError::Line { line, .. } => Some(*line),
            _ => None,
        }
    }
}
