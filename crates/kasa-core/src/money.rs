//! Money: an [`Amount`] of integer minor units in a [`Currency`] of ISO 4217, with checked
//! arithmetic and no floats anywhere.
//!
//! Each currency has its own ledger, numbered by its ISO 4217 numeric code (410 for KRW, 156
//! for CNY, 840 for USD): value never moves between ledgers inside one transfer, so a
//! conversion is always a linked pair of transfers through Kasa's FX position accounts, and
//! per ledger the books balance on their own. The table is the ISO maintenance agency's list
//! of active currencies (`tests/data/iso4217.csv`, checked by a test); units of account with
//! no minor unit (gold, SDR, the testing code XTS) are not money here.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// (alpha code, numeric code, minor units) of every active ISO 4217 currency that has minor
/// units, sorted by alpha code.
const TABLE: &[(&str, u16, u8)] = &[
    ("AED", 784, 2),
    ("AFN", 971, 2),
    ("ALL", 8, 2),
    ("AMD", 51, 2),
    ("AOA", 973, 2),
    ("ARS", 32, 2),
    ("AUD", 36, 2),
    ("AWG", 533, 2),
    ("AZN", 944, 2),
    ("BAM", 977, 2),
    ("BBD", 52, 2),
    ("BDT", 50, 2),
    ("BHD", 48, 3),
    ("BIF", 108, 0),
    ("BMD", 60, 2),
    ("BND", 96, 2),
    ("BOB", 68, 2),
    ("BOV", 984, 2),
    ("BRL", 986, 2),
    ("BSD", 44, 2),
    ("BTN", 64, 2),
    ("BWP", 72, 2),
    ("BYN", 933, 2),
    ("BZD", 84, 2),
    ("CAD", 124, 2),
    ("CDF", 976, 2),
    ("CHE", 947, 2),
    ("CHF", 756, 2),
    ("CHW", 948, 2),
    ("CLF", 990, 4),
    ("CLP", 152, 0),
    ("CNY", 156, 2),
    ("COP", 170, 2),
    ("COU", 970, 2),
    ("CRC", 188, 2),
    ("CUP", 192, 2),
    ("CVE", 132, 2),
    ("CZK", 203, 2),
    ("DJF", 262, 0),
    ("DKK", 208, 2),
    ("DOP", 214, 2),
    ("DZD", 12, 2),
    ("EGP", 818, 2),
    ("ERN", 232, 2),
    ("ETB", 230, 2),
    ("EUR", 978, 2),
    ("FJD", 242, 2),
    ("FKP", 238, 2),
    ("GBP", 826, 2),
    ("GEL", 981, 2),
    ("GHS", 936, 2),
    ("GIP", 292, 2),
    ("GMD", 270, 2),
    ("GNF", 324, 0),
    ("GTQ", 320, 2),
    ("GYD", 328, 2),
    ("HKD", 344, 2),
    ("HNL", 340, 2),
    ("HTG", 332, 2),
    ("HUF", 348, 2),
    ("IDR", 360, 2),
    ("ILS", 376, 2),
    ("INR", 356, 2),
    ("IQD", 368, 3),
    ("IRR", 364, 2),
    ("ISK", 352, 0),
    ("JMD", 388, 2),
    ("JOD", 400, 3),
    ("JPY", 392, 0),
    ("KES", 404, 2),
    ("KGS", 417, 2),
    ("KHR", 116, 2),
    ("KMF", 174, 0),
    ("KPW", 408, 2),
    ("KRW", 410, 0),
    ("KWD", 414, 3),
    ("KYD", 136, 2),
    ("KZT", 398, 2),
    ("LAK", 418, 2),
    ("LBP", 422, 2),
    ("LKR", 144, 2),
    ("LRD", 430, 2),
    ("LSL", 426, 2),
    ("LYD", 434, 3),
    ("MAD", 504, 2),
    ("MDL", 498, 2),
    ("MGA", 969, 2),
    ("MKD", 807, 2),
    ("MMK", 104, 2),
    ("MNT", 496, 2),
    ("MOP", 446, 2),
    ("MRU", 929, 2),
    ("MUR", 480, 2),
    ("MVR", 462, 2),
    ("MWK", 454, 2),
    ("MXN", 484, 2),
    ("MXV", 979, 2),
    ("MYR", 458, 2),
    ("MZN", 943, 2),
    ("NAD", 516, 2),
    ("NGN", 566, 2),
    ("NIO", 558, 2),
    ("NOK", 578, 2),
    ("NPR", 524, 2),
    ("NZD", 554, 2),
    ("OMR", 512, 3),
    ("PAB", 590, 2),
    ("PEN", 604, 2),
    ("PGK", 598, 2),
    ("PHP", 608, 2),
    ("PKR", 586, 2),
    ("PLN", 985, 2),
    ("PYG", 600, 0),
    ("QAR", 634, 2),
    ("RON", 946, 2),
    ("RSD", 941, 2),
    ("RUB", 643, 2),
    ("RWF", 646, 0),
    ("SAR", 682, 2),
    ("SBD", 90, 2),
    ("SCR", 690, 2),
    ("SDG", 938, 2),
    ("SEK", 752, 2),
    ("SGD", 702, 2),
    ("SHP", 654, 2),
    ("SLE", 925, 2),
    ("SOS", 706, 2),
    ("SRD", 968, 2),
    ("SSP", 728, 2),
    ("STN", 930, 2),
    ("SVC", 222, 2),
    ("SYP", 760, 2),
    ("SZL", 748, 2),
    ("THB", 764, 2),
    ("TJS", 972, 2),
    ("TMT", 934, 2),
    ("TND", 788, 3),
    ("TOP", 776, 2),
    ("TRY", 949, 2),
    ("TTD", 780, 2),
    ("TWD", 901, 2),
    ("TZS", 834, 2),
    ("UAH", 980, 2),
    ("UGX", 800, 0),
    ("USD", 840, 2),
    ("USN", 997, 2),
    ("UYI", 940, 0),
    ("UYU", 858, 2),
    ("UYW", 927, 4),
    ("UZS", 860, 2),
    ("VED", 926, 2),
    ("VES", 928, 2),
    ("VND", 704, 0),
    ("VUV", 548, 0),
    ("WST", 882, 2),
    ("XAD", 396, 2),
    ("XAF", 950, 0),
    ("XCD", 951, 2),
    ("XCG", 532, 2),
    ("XOF", 952, 0),
    ("XPF", 953, 0),
    ("YER", 886, 2),
    ("ZAR", 710, 2),
    ("ZMW", 967, 2),
    ("ZWG", 924, 2),
];

/// A currency of ISO 4217, stored as its numeric code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(u16);

impl Currency {
    /// South Korean won: no minor units.
    pub const KRW: Currency = Currency(410);
    /// US dollar: 2 decimals.
    pub const USD: Currency = Currency(840);
    /// Chinese yuan: 2 decimals.
    pub const CNY: Currency = Currency(156);
    /// Japanese yen: no minor units.
    pub const JPY: Currency = Currency(392);

    fn entry(self) -> &'static (&'static str, u16, u8) {
        TABLE.iter().find(|(_, numeric, _)| *numeric == self.0).expect("a Currency is always in the table")
    }

    /// The currency with this alpha code (`"KRW"`); upper case only, as ISO writes it.
    pub fn from_code(code: &str) -> Option<Currency> {
        TABLE.binary_search_by(|(alpha, _, _)| (*alpha).cmp(code)).ok().map(|i| Currency(TABLE[i].1))
    }

    /// The currency with this numeric code (410).
    pub fn from_numeric(numeric: u16) -> Option<Currency> {
        TABLE.iter().any(|(_, n, _)| *n == numeric).then_some(Currency(numeric))
    }

    /// The alpha code, `"KRW"`.
    pub fn code(self) -> &'static str {
        self.entry().0
    }

    /// The numeric code, 410.
    pub fn numeric(self) -> u16 {
        self.0
    }

    /// Decimal places of its minor unit: 0 for KRW and JPY, 2 for USD and CNY, 3 for BHD.
    pub fn minor_units(self) -> u8 {
        self.entry().2
    }

    /// The ledger its accounts and transfers live on: its numeric code.
    pub fn ledger(self) -> u32 {
        u32::from(self.0)
    }

    /// The currency of a ledger number, if it is one.
    pub fn of_ledger(ledger: u32) -> Option<Currency> {
        u16::try_from(ledger).ok().and_then(Currency::from_numeric)
    }

    /// Every currency, in alpha order.
    pub fn all() -> impl Iterator<Item = Currency> {
        TABLE.iter().map(|(_, numeric, _)| Currency(*numeric))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let numeric = u16::deserialize(d)?;
        Currency::from_numeric(numeric)
            .ok_or_else(|| serde::de::Error::custom(format!("{numeric} is not an ISO 4217 currency with minor units")))
    }
}

/// A non-negative amount of minor units (won, cents, fen). Arithmetic is checked: an
/// overflow is a `None`, never a wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(u64);

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);
    /// The largest amount: 2^64-1 minor units (18 quintillion won), far beyond any balance.
    pub const MAX: Amount = Amount(u64::MAX);

    /// `minor` minor units.
    pub const fn new(minor: u64) -> Amount {
        Amount(minor)
    }

    /// The number of minor units.
    pub const fn minor(self) -> u64 {
        self.0
    }

    /// As a ledger amount (ledger amounts are u128, as TigerBeetle's).
    pub fn ledger(self) -> u128 {
        u128::from(self.0)
    }

    /// A ledger amount, if it fits.
    pub fn from_ledger(amount: u128) -> Option<Amount> {
        u64::try_from(amount).ok().map(Amount)
    }

    /// Whether it is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` below zero.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self - other`, or zero below zero (what is left of a limit).
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }

    /// `self + other`, or [`Amount::MAX`] on overflow (totals that are only compared).
    pub fn saturating_add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }

    /// Parses a decimal string of minor units (`"12000"`): digits only, no sign, no point.
    pub fn parse_minor(text: &str) -> Option<Amount> {
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An amount with its currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units.
    pub amount: Amount,
    /// Which currency.
    pub currency: Currency,
}

impl Money {
    /// `minor` minor units of `currency`.
    pub const fn new(minor: u64, currency: Currency) -> Money {
        Money { amount: Amount(minor), currency }
    }

    /// Won.
    pub const fn krw(won: u64) -> Money {
        Money::new(won, Currency::KRW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_minor_units() {
        assert_eq!(Currency::from_code("KRW"), Some(Currency::KRW));
        assert_eq!(Currency::KRW.minor_units(), 0);
        assert_eq!(Currency::from_code("BHD").map(Currency::minor_units), Some(3));
        assert_eq!(Currency::CNY.minor_units(), 2);
        assert_eq!(Currency::from_code("krw"), None, "ISO codes are upper case");
        assert_eq!(Currency::from_code("XAU"), None, "gold has no minor unit");
        assert_eq!(Currency::of_ledger(410), Some(Currency::KRW));
        assert_eq!(Currency::of_ledger(1), None);
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0), "the table is sorted by alpha code");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Amount::MAX.checked_add(Amount::new(1)), None);
        assert_eq!(Amount::ZERO.checked_sub(Amount::new(1)), None);
        assert_eq!(Amount::parse_minor("12000"), Some(Amount::new(12_000)));
        for bad in ["", "-1", "1.5", "1e3", " 1", "18446744073709551616"] {
            assert_eq!(Amount::parse_minor(bad), None, "{bad}");
        }
        assert_eq!(crate::codec::decode::<Currency>(&crate::codec::encode(&999u16)).ok(), None, "XXX is refused");
    }
}
