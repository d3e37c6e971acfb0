//! Korean business registration numbers (사업자등록번호): ten digits, `XXX-XX-XXXXX` (tax
//! office, business type, serial, check digit), kept in that canonical form.
//!
//! [`parse_brn`] takes what people type (ten digits, or the three groups separated by
//! hyphens) and says why it refuses anything else; the canonical form is a fixed point: the
//! decoder accepts exactly what [`parse_brn`] produces.

use crate::text::text_rule;
use std::fmt;

text_rule!(
    /// A business registration number in canonical form, `XXX-XX-XXXXX`, with a valid check
    /// digit and no component that tax offices never issue.
    Brn, BrnRule, 12, "a business registration number", true,
    |v| {
        match canonical(v) {
            Ok(c) if c == v => Ok(()),
            Ok(_) => Err("a business registration number is kept as XXX-XX-XXXXX".into()),
            Err(e) => Err(e.to_string()),
        }
    }
);

/// Why a business registration number was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrnError {
    /// Not ten digits.
    Length,
    /// A character that is neither a digit nor a hyphen between the groups.
    NotDigits,
    /// Hyphens elsewhere than `XXX-XX-XXXXX`.
    Hyphens,
    /// A tax office below 101, business type 00 or serial 0000: never issued.
    Component,
    /// The check digit does not match.
    CheckDigit,
}

impl fmt::Display for BrnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrnError::Length => "a business registration number has ten digits",
            BrnError::NotDigits => "a business registration number is digits, optionally as XXX-XX-XXXXX",
            BrnError::Hyphens => "a business registration number is written XXX-XX-XXXXX",
            BrnError::Component => "a business registration number with a tax office, type or serial never issued",
            BrnError::CheckDigit => "the business registration number's check digit does not match",
        })
    }
}

/// The weights of the first nine digits.
const WEIGHTS: [u32; 9] = [1, 3, 7, 1, 3, 7, 1, 3, 5];

/// Parses `input` (`1208147521` or `120-81-47521`) into its canonical form.
pub fn parse_brn(input: &str) -> Result<Brn, BrnError> {
    canonical(input).map(|c| Brn::new(c).expect("a checked number is canonical"))
}

/// The canonical form of `input`, `XXX-XX-XXXXX`, if it is a valid number.
fn canonical(input: &str) -> Result<String, BrnError> {
    let bytes = input.as_bytes();
    if bytes.iter().any(|b| !b.is_ascii_digit() && *b != b'-') {
        return Err(BrnError::NotDigits);
    }
    let digits: Vec<u32> = bytes.iter().filter(|b| b.is_ascii_digit()).map(|b| u32::from(b - b'0')).collect();
    if digits.len() != 10 {
        return Err(BrnError::Length);
    }
    let hyphens: Vec<usize> = bytes.iter().enumerate().filter(|(_, b)| **b == b'-').map(|(i, _)| i).collect();
    if !(hyphens.is_empty() || hyphens == [3, 6]) {
        return Err(BrnError::Hyphens);
    }
    let number = |range: std::ops::Range<usize>| digits[range].iter().fold(0, |n, d| n * 10 + d);
    if number(0..3) < 101 || number(3..5) == 0 || number(5..9) == 0 {
        return Err(BrnError::Component);
    }
    let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum::<u32>() + (5 * digits[8]) / 10;
    if (10 - sum % 10) % 10 != digits[9] {
        return Err(BrnError::CheckDigit);
    }
    let text: String = digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
    Ok(format!("{}-{}-{}", &text[0..3], &text[3..5], &text[5..10]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number of `shared/testdata/kr_brn.md`'s valid list.
    const VALID: &str = "120-81-47521, 220-81-62517, 304-87-00790, 116-82-00276, 134-86-72683, 209-82-06382, \
        211-86-08983, 317-81-11175, 220-88-69974, 130-47-17700, 124-81-00998, 126-81-03725, 101-81-09147, \
        101-81-16293, 101-81-34928, 124-81-55381, 104-81-18121, 621-83-00678, 219-83-00359, 609-83-02356, \
        214-83-00183, 723-87-00195, 603-83-01058, 614-83-00743, 221-83-00712, 224-83-00026, 220-81-15940, \
        739-86-01417";

    #[test]
    fn the_valid_numbers_of_the_test_data_parse_with_and_without_hyphens() {
        for number in VALID.split(", ") {
            assert_eq!(parse_brn(number).map(|b| b.as_str().to_string()), Ok(number.to_string()));
            assert_eq!(parse_brn(&number.replace('-', "")).map(|b| b.as_str().to_string()), Ok(number.to_string()));
        }
    }

    #[test]
    fn the_invalid_numbers_of_the_test_data_are_refused_with_their_reason() {
        use BrnError::*;
        for (input, why) in [
            ("111-11-11111", CheckDigit),
            ("1234567890", CheckDigit),
            ("220-81-62518", CheckDigit),
            ("120-81-47522", CheckDigit),
            ("123456789", Length),
            ("120-81-4752", Length),
            ("80123456785", Length),
            ("FF34567890", NotDigits),
            ("100-86-08983", Component),
            ("211-00-08983", Component),
            ("211-86-00003", Component),
            ("12-081-47521", Hyphens),
            ("1208-147-521", Hyphens),
            ("0000000000", Component),
            ("", Length),
            ("120 81 47521", NotDigits),
            ("120--8147521", Hyphens),
        ] {
            assert_eq!(parse_brn(input).map(|b| b.as_str().to_string()), Err(why), "{input}");
        }
    }

    #[test]
    fn the_decoder_accepts_exactly_the_canonical_form() {
        assert!(Brn::new("120-81-47521").is_ok());
        assert!(Brn::new("1208147521").is_err(), "only the canonical form is kept");
        assert!(Brn::new("120-81-47522").is_err());
        let bytes = postcard::to_allocvec(&parse_brn("1208147521").unwrap()).unwrap();
        assert_eq!(postcard::from_bytes::<Brn>(&bytes).unwrap().as_str(), "120-81-47521");
        let typed = postcard::to_allocvec("1208147521").unwrap();
        assert!(postcard::from_bytes::<Brn>(&typed).is_err(), "the decoder refuses what the constructor refuses");
    }
}
