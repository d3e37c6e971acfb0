//! Rates as operators load them, checked where they enter, and the table that finds the one
//! in force for a pair at a time, in either direction.

use super::FxError;
use crate::money::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most integer digits of a mid rate as written: a trillion units of the quote currency
/// per unit of the base is beyond any currency in use (1 USD is about 10^6 IRR at worst).
pub const MID_INTEGER_DIGITS_MAX: usize = 12;

/// The most fractional digits of a mid rate as written: ten, as many as any rate feed gives.
/// With [`MID_INTEGER_DIGITS_MAX`] a mid is below 10^22, which keeps every product of the
/// quote arithmetic inside 128 bits (see `quote.rs`).
pub const MID_FRACTION_DIGITS_MAX: usize = 10;

/// The widest spread, in basis points: 10%. A wider one is a typo, not a price.
pub const SPREAD_BPS_MAX: u32 = 1_000;

/// The most rates a table holds: a hundred pairs changing every minute for a week, so that
/// memory stays bounded until old rates are pruned.
pub const RATES_MAX: usize = 1_000_000;

/// Basis points in one.
pub(super) const BPS_PER_ONE: u128 = 10_000;

/// A rate as an operator loads it: one unit (major) of `base` is `mid` units (major) of
/// `quote`, and customers pay a spread on it, from engine time `valid_from` on. Fields are
/// private so that every `Rate` has passed the checks of [`Rate::new`].
///
/// In the journal and snapshots it is its parts ([`RateWire`]), checked again by [`Rate::new`]
/// when decoded: what the decoder accepts, the constructor accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RateWire", into = "RateWire")]
pub struct Rate {
    base: Currency,
    quote: Currency,
    mid: Decimal,
    spread_bps: u16,
    valid_from: u64,
}

impl Rate {
    /// A rate from its parts, checked: two different currencies, a mid above zero below
    /// 10^[`MID_INTEGER_DIGITS_MAX`] with at most [`MID_FRACTION_DIGITS_MAX`] fractional
    /// digits (trailing zeros do not count), a spread of at most [`SPREAD_BPS_MAX`].
    pub fn new(
        base: Currency,
        quote: Currency,
        mid: Decimal,
        spread_bps: u32,
        valid_from: u64,
    ) -> Result<Rate, FxError> {
        if base == quote {
            return Err(FxError::SameCurrency { currency: base });
        }
        let mid = mid.normalize();
        if mid <= Decimal::ZERO {
            return Err(FxError::InvalidRate { found: "zero or less" });
        }
        if mid.scale() as usize > MID_FRACTION_DIGITS_MAX {
            return Err(FxError::InvalidRate { found: "too many fractional digits" });
        }
        if mid.trunc().mantissa() >= 10i128.pow(MID_INTEGER_DIGITS_MAX as u32) {
            return Err(FxError::InvalidRate { found: "too many integer digits" });
        }
        let spread_bps = u16::try_from(spread_bps)
            .ok()
            .filter(|bps| u32::from(*bps) <= SPREAD_BPS_MAX)
            .ok_or_else(|| FxError::InvalidSpread { found: spread_bps.to_string() })?;
        Ok(Rate { base, quote, mid, spread_bps, valid_from })
    }

    /// A rate from an operator's text: `pair` as `"CNY/KRW"` (base first), `mid` as a plain
    /// decimal (`"190.5"`: digits and at most one point with digits on both sides; no sign,
    /// exponent, spaces or separators), then the checks of [`Rate::new`].
    pub fn parse(pair: &str, mid: &str, spread_bps: u32, valid_from: u64) -> Result<Rate, FxError> {
        let (base, quote) = parse_pair(pair)?;
        Rate::new(base, quote, parse_mid(mid)?, spread_bps, valid_from)
    }

    /// The currency of which one unit is priced.
    pub fn base(&self) -> Currency {
        self.base
    }

    /// The currency it is priced in.
    pub fn quote(&self) -> Currency {
        self.quote
    }

    /// Units (major) of `quote` per unit (major) of `base`, without trailing zeros.
    pub fn mid(&self) -> Decimal {
        self.mid
    }

    /// The customer's spread, in basis points of the mid.
    pub fn spread_bps(&self) -> u16 {
        self.spread_bps
    }

    /// The engine time (nanoseconds since the epoch) from which it is in force.
    pub fn valid_from(&self) -> u64 {
        self.valid_from
    }
}

/// A [`Rate`] as encoded: its parts, the mid as a mantissa and a scale.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct RateWire {
    base: Currency,
    quote: Currency,
    mid_mantissa: u128,
    mid_scale: u8,
    spread_bps: u16,
    valid_from: u64,
}

impl From<Rate> for RateWire {
    fn from(r: Rate) -> RateWire {
        RateWire {
            base: r.base,
            quote: r.quote,
            mid_mantissa: r.mid.mantissa() as u128,
            mid_scale: r.mid.scale() as u8,
            spread_bps: r.spread_bps,
            valid_from: r.valid_from,
        }
    }
}

impl TryFrom<RateWire> for Rate {
    type Error = String;

    fn try_from(w: RateWire) -> Result<Rate, String> {
        let too_big = || "a mid rate out of bounds".to_string();
        if u32::from(w.mid_scale) > MID_FRACTION_DIGITS_MAX as u32 {
            return Err(too_big());
        }
        let mantissa = i128::try_from(w.mid_mantissa).ok().filter(|m| *m < 10i128.pow(22)).ok_or_else(too_big)?;
        let mid = Decimal::from_i128_with_scale(mantissa, u32::from(w.mid_scale));
        Rate::new(w.base, w.quote, mid, u32::from(w.spread_bps), w.valid_from).map_err(|e| e.to_string())
    }
}

/// `"CNY/KRW"` as two currencies, different ones.
fn parse_pair(pair: &str) -> Result<(Currency, Currency), FxError> {
    let bytes = pair.as_bytes();
    let is_code = |code: &[u8]| code.iter().all(u8::is_ascii_uppercase);
    if bytes.len() != 7 || bytes[3] != b'/' || !is_code(&bytes[..3]) || !is_code(&bytes[4..]) {
        return Err(FxError::InvalidPair);
    }
    let currency = |code: &str| Currency::from_code(code).ok_or_else(|| FxError::UnknownCurrency { code: code.into() });
    let (base, quote) = (currency(&pair[..3])?, currency(&pair[4..])?);
    if base == quote {
        return Err(FxError::SameCurrency { currency: base });
    }
    Ok((base, quote))
}

/// A plain decimal string as a [`Decimal`], its digits counted before anything is converted.
fn parse_mid(text: &str) -> Result<Decimal, FxError> {
    let (integer, fraction) = match text.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (text, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(integer) || !fraction.is_none_or(digits) {
        return Err(FxError::InvalidRate { found: "something other than digits with at most one point" });
    }
    let fraction = fraction.unwrap_or("");
    if integer.len() > MID_INTEGER_DIGITS_MAX {
        return Err(FxError::InvalidRate { found: "too many integer digits" });
    }
    if fraction.len() > MID_FRACTION_DIGITS_MAX {
        return Err(FxError::InvalidRate { found: "too many fractional digits" });
    }
    // At most 22 digits: below 10^22, well inside an i128 and a Decimal's 96-bit mantissa.
    let mantissa = integer.bytes().chain(fraction.bytes()).fold(0i128, |n, b| n * 10 + i128::from(b - b'0'));
    Ok(Decimal::from_i128_with_scale(mantissa, fraction.len() as u32))
}

/// A non-negative exact fraction, `num / den`, both below 10^27 (see [`Directed::ratio`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ratio {
    pub(super) num: u128,
    pub(super) den: u128,
}

impl Ratio {
    /// The fraction as a decimal, exact when it fits in a [`Decimal`] (28 fractional digits,
    /// a 96-bit mantissa), else rounded down to the digits it holds: a rate for people to read.
    pub(super) fn to_decimal(self) -> Decimal {
        assert!(self.den > 0 && self.den < 10u128.pow(27), "a ratio's denominator is bounded: {self:?}");
        let mantissa_max = Decimal::MAX.mantissa() as u128;
        let (mut q, mut r, mut scale) = (self.num / self.den, self.num % self.den, 0u32);
        assert!(q <= mantissa_max, "a rate's integer part fits a Decimal: {self:?}");
        // Long division, one digit at a time, so nothing is rounded up and nothing overflows.
        while r != 0 && scale < 28 {
            let next = q * 10 + r * 10 / self.den;
            if next > mantissa_max {
                break;
            }
            (q, r, scale) = (next, r * 10 % self.den, scale + 1);
        }
        Decimal::from_i128_with_scale(q as i128, scale).normalize()
    }
}

/// The rate in force for a pair in the direction of a quote: a loaded [`Rate`], read as it
/// was loaded or the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directed {
    /// The rate as loaded.
    pub rate: Rate,
    /// Whether the quote sells the rate's quote currency for its base (then the mid is
    /// `1 / mid`).
    pub inverse: bool,
}

impl Directed {
    /// The currency sold.
    pub fn sell(&self) -> Currency {
        if self.inverse {
            self.rate.quote
        } else {
            self.rate.base
        }
    }

    /// The currency bought.
    pub fn buy(&self) -> Currency {
        if self.inverse {
            self.rate.base
        } else {
            self.rate.quote
        }
    }

    /// Units of the currency bought per unit of the currency sold, before the spread (for an
    /// inverse, `1 / mid`, see [`Ratio::to_decimal`] for its digits).
    pub fn mid(&self) -> Decimal {
        self.ratio(0).to_decimal()
    }

    /// The customer's rate: [`Directed::mid`] × (1 − spread_bps / 10,000).
    pub fn customer_rate(&self) -> Decimal {
        self.customer_ratio().to_decimal()
    }

    /// The customer's rate as an exact fraction, what quotes are computed from.
    pub(super) fn customer_ratio(&self) -> Ratio {
        self.ratio(u32::from(self.rate.spread_bps))
    }

    /// `mid × (10,000 − bps) / 10,000` in the quote's direction, exactly. With a mid of
    /// `m / 10^s` (m < 10^22, s ≤ 10): directly `m × (10,000 − bps) / 10^(s+4)`, a numerator
    /// below 10^26 over at most 10^14; inversely `(10,000 − bps) × 10^s / (m × 10,000)`, at
    /// most 10^14 over below 10^26.
    fn ratio(&self, bps: u32) -> Ratio {
        let m = self.rate.mid.mantissa() as u128;
        let scale = 10u128.pow(self.rate.mid.scale());
        let kept = BPS_PER_ONE - u128::from(bps);
        assert!(m > 0 && m < 10u128.pow(22) && scale <= 10u128.pow(10), "a Rate is checked: {:?}", self.rate);
        if self.inverse {
            Ratio { num: kept * scale, den: m * BPS_PER_ONE }
        } else {
            Ratio { num: m * kept, den: scale * BPS_PER_ONE }
        }
    }
}

/// Loaded rates by pair (as loaded, base first) and by `valid_from`. BTreeMaps, so iteration
/// and so everything built on it is the same on every machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    by_pair: BTreeMap<(Currency, Currency), BTreeMap<u64, Rate>>,
    len: usize,
}

impl Rates {
    /// Adds a rate; one of the same pair (as loaded) and `valid_from` is replaced and
    /// returned, an operator's correction. Refused when the table is full.
    pub fn insert(&mut self, rate: Rate) -> Result<Option<Rate>, FxError> {
        let by_time = self.by_pair.entry((rate.base, rate.quote)).or_default();
        if !by_time.contains_key(&rate.valid_from) && self.len >= RATES_MAX {
            return Err(FxError::TooManyRates);
        }
        let replaced = by_time.insert(rate.valid_from, rate);
        if replaced.is_none() {
            self.len += 1;
        }
        Ok(replaced)
    }

    /// Every rate, by pair as loaded and then by `valid_from`.
    pub fn iter(&self) -> impl Iterator<Item = &Rate> + '_ {
        self.by_pair.values().flat_map(|by_time| by_time.values())
    }

    /// Whether a rate of the same pair (as loaded) and `valid_from` is in the table.
    pub fn contains(&self, rate: &Rate) -> bool {
        self.by_pair.get(&(rate.base, rate.quote)).is_some_and(|by_time| by_time.contains_key(&rate.valid_from))
    }

    /// How many rates the table holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The rate in force at `now` to sell `sell` for `buy`: of the rates loaded for the pair
    /// either way round, the one with the latest `valid_from` not after `now`. If both
    /// directions have a rate from the same time, the one loaded as `sell/buy` wins.
    pub fn at(&self, sell: Currency, buy: Currency, now: u64) -> Option<Directed> {
        let latest = |base, quote| {
            self.by_pair.get(&(base, quote)).and_then(|by_time| by_time.range(..=now).next_back()).map(|(_, r)| *r)
        };
        let direct = latest(sell, buy).map(|rate| Directed { rate, inverse: false });
        let inverse = latest(buy, sell).map(|rate| Directed { rate, inverse: true });
        match (direct, inverse) {
            (Some(d), Some(i)) if i.rate.valid_from > d.rate.valid_from => Some(i),
            (Some(d), _) => Some(d),
            (None, i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mid_is_a_plain_decimal_within_its_digits() {
        for good in ["1", "190.5", "0.0000000001", "999999999999.9999999999", "001.10"] {
            assert!(Rate::parse("CNY/KRW", good, 0, 0).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "1.",
            ".5",
            "-1",
            "+1",
            "1e3",
            "1,000",
            " 1",
            "1.2.3",
            "0",
            "0.000",
            "1000000000000",
            "0.00000000001",
        ] {
            let error = Rate::parse("CNY/KRW", bad, 0, 0).unwrap_err();
            assert_eq!(error.code(), "invalid_rate", "{bad}: {error}");
        }
        assert_eq!(Rate::parse("CNY/KRW", "190.50", 0, 0).unwrap().mid().to_string(), "190.5");
    }

    #[test]
    fn a_pair_is_two_known_different_codes() {
        assert_eq!(Rate::parse("CNYKRW", "1", 0, 0).unwrap_err(), FxError::InvalidPair);
        assert_eq!(Rate::parse("cny/krw", "1", 0, 0).unwrap_err(), FxError::InvalidPair);
        assert_eq!(Rate::parse("CNY/XAU", "1", 0, 0).unwrap_err(), FxError::UnknownCurrency { code: "XAU".into() });
        assert_eq!(Rate::parse("KRW/KRW", "1", 0, 0).unwrap_err(), FxError::SameCurrency { currency: Currency::KRW });
        assert_eq!(Rate::parse("CNY/KRW", "1", 1_001, 0).unwrap_err().code(), "invalid_spread");
        assert_eq!(Rate::parse("CNY/KRW", "1", 70_000, 0).unwrap_err().code(), "invalid_spread");
    }

    #[test]
    fn the_latest_rate_not_after_now_is_in_force_either_way_round() {
        let mut rates = Rates::default();
        rates.insert(Rate::parse("CNY/KRW", "190", 0, 100).unwrap()).unwrap();
        rates.insert(Rate::parse("KRW/CNY", "0.005", 0, 200).unwrap()).unwrap();
        assert_eq!(rates.at(Currency::CNY, Currency::KRW, 99), None);
        let at_150 = rates.at(Currency::CNY, Currency::KRW, 150).unwrap();
        assert_eq!((at_150.inverse, at_150.mid().to_string()), (false, "190".into()));
        let at_200 = rates.at(Currency::CNY, Currency::KRW, 200).unwrap();
        assert_eq!((at_200.inverse, at_200.mid().to_string()), (true, "200".into()));
        assert_eq!(
            rates.at(Currency::KRW, Currency::CNY, 150).unwrap().mid().to_string(),
            "0.0052631578947368421052631578"
        );
        let replaced = rates.insert(Rate::parse("CNY/KRW", "191", 0, 100).unwrap()).unwrap();
        assert_eq!(replaced.map(|r| r.mid().to_string()), Some("190".into()));
        assert_eq!(rates.len(), 2);
    }

    #[test]
    fn a_full_table_refuses_new_rates_but_takes_corrections() {
        let mut rates = Rates::default();
        let rate = |valid_from| Rate::parse("USD/KRW", "1385.5", 0, valid_from).unwrap();
        for valid_from in 0..RATES_MAX as u64 {
            rates.insert(rate(valid_from)).unwrap();
        }
        assert_eq!(rates.insert(rate(RATES_MAX as u64)), Err(FxError::TooManyRates));
        assert_eq!(rates.insert(rate(7)), Ok(Some(rate(7))));
        assert_eq!(rates.len(), RATES_MAX);
    }

    #[test]
    fn a_rate_that_does_not_fit_a_decimal_is_rounded_down_for_reading() {
        // 1/3 has no end; 2/3 would round up to ...667, and must show ...666.
        assert_eq!(Ratio { num: 1, den: 3 }.to_decimal().to_string(), "0.3333333333333333333333333333");
        assert_eq!(Ratio { num: 2, den: 3 }.to_decimal().to_string(), "0.6666666666666666666666666666");
        assert_eq!(Ratio { num: 7, den: 4 }.to_decimal().to_string(), "1.75");
    }
}
