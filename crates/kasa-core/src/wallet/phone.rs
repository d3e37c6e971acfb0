//! Phone numbers in E.164 (`+` and up to 15 digits), the key of a wallet user.
//!
//! What is accepted, and why: a wallet number must receive a verification SMS, so it is a
//! **Korean mobile number** or an **international E.164 number**.
//! - Korean national input (`010-1234-5678`, `01012345678`) becomes `+821012345678`, as
//!   libphonenumber's KR metadata says: `+82` and the national number without its trunk `0`.
//!   Korean mobile numbers are `01X` then 7 or 8 digits, X one of 0, 1, 6, 7, 8, 9 (010 is
//!   today's range; the others are older carriers' numbers still in service).
//! - International input is `+`, a country code that does not start with 0, and 8 to 15
//!   digits in all. A `+82` number must be a Korean mobile number as above (a trunk `0`
//!   written after `+82` is dropped, as people write `+82 010-...`).
//!
//! Parsing is a **fixed point**: the stored form parses back to itself, byte for byte
//! ([`Phone::from_e164`] is the decoder's check, and a property test holds parse against
//! it), so whatever sign-up accepts, a snapshot or the journal can always read back.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The most digits of an E.164 number (ITU-T E.164).
const E164_DIGITS_MAX: usize = 15;
/// The fewest digits accepted: shorter numbers are service codes, not subscribers.
const E164_DIGITS_MIN: usize = 8;
/// Longest raw input looked at, so that a megabyte of hyphens is refused at once.
const INPUT_BYTES_MAX: usize = 32;
/// Korea's country calling code.
const KOREA: &str = "82";

/// A normalised phone number, `+` and 8 to 15 digits. Personal data: its `Debug` masks all
/// but the last two digits, so it never reaches a log whole. Kept inline (16 bytes at most),
/// with no allocation of its own.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phone(compact_str::CompactString);

/// Why a phone number was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PhoneError {
    /// Empty or too long input.
    #[error("expected a phone number of 8 to 15 digits, found {0} characters")]
    Length(usize),
    /// A character other than digits, a leading `+`, spaces, hyphens, dots or parentheses.
    #[error("expected digits, found '{0}'")]
    Character(char),
    /// Too few or too many digits, or a country code starting with 0.
    #[error("expected + and a country code, 8 to 15 digits in all, found {0} digits")]
    Digits(usize),
    /// A national number (leading `0`) or a `+82` number that is not a Korean mobile number.
    #[error("a Korean number must be a mobile number, 01X and 7 or 8 digits (010-1234-5678); use + and the country code for other countries")]
    NotKoreanMobile,
}

/// Whether `national` (the digits after +82, without a trunk 0) is a Korean mobile number:
/// `10` and 8 digits, or `1X` (X one of 1, 6, 7, 8, 9, the older carriers' ranges) and 7 or 8
/// digits, as libphonenumber's KR metadata has them.
fn korean_mobile(national: &str) -> bool {
    let b = national.as_bytes();
    if b.len() < 3 || b[0] != b'1' {
        return false;
    }
    match b[1] {
        b'0' => b.len() == 10,
        b'1' | b'6' | b'7' | b'8' | b'9' => (9..=10).contains(&b.len()),
        _ => false,
    }
}

impl Phone {
    /// Parses and normalises `input`.
    pub fn parse(input: &str) -> Result<Phone, PhoneError> {
        if input.is_empty() || input.len() > INPUT_BYTES_MAX {
            return Err(PhoneError::Length(input.chars().count()));
        }
        let trimmed = input.trim();
        let (international, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                other => return Err(PhoneError::Character(other)),
            }
        }
        let national = if !international {
            // The Korean national form: a trunk 0 and the national number.
            match digits.strip_prefix('0') {
                Some(national) => Some(national.to_string()),
                None => return Err(PhoneError::NotKoreanMobile),
            }
        } else {
            // `+82 010-...`: the trunk 0 does not belong after the country code.
            digits.strip_prefix(KOREA).map(|after| after.strip_prefix('0').unwrap_or(after).to_string())
        };
        let e164 = match national {
            Some(national) => {
                if !korean_mobile(&national) {
                    return Err(PhoneError::NotKoreanMobile);
                }
                format!("{KOREA}{national}")
            }
            None => digits,
        };
        if !(E164_DIGITS_MIN..=E164_DIGITS_MAX).contains(&e164.len()) || e164.starts_with('0') {
            return Err(PhoneError::Digits(e164.len()));
        }
        Ok(Phone(compact_str::format_compact!("+{e164}")))
    }

    /// The E.164 string, `+821012345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a phone from its stored E.164 form: it must parse, and parse to itself.
    pub fn from_e164(stored: &str) -> Result<Phone, PhoneError> {
        let phone = Phone::parse(stored)?;
        if phone.0 != stored {
            return Err(PhoneError::Digits(stored.len()));
        }
        Ok(phone)
    }

    /// The number with all but its last two digits masked, for logs and other users' eyes.
    pub fn masked(&self) -> String {
        let visible = &self.0[self.0.len() - 2..];
        format!("+{}{visible}", "*".repeat(self.0.len() - 3))
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for Phone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Phone;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a phone number in E.164")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Phone, E> {
                if v.len() > INPUT_BYTES_MAX {
                    return Err(E::custom("a phone number of more than 32 bytes"));
                }
                Phone::from_e164(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_inputs_normalise_to_one_e164_number() {
        for input in [
            "010-1234-5678",
            "01012345678",
            "+82 10-1234-5678",
            "+821012345678",
            "+82 010 1234 5678",
            " 010.1234.5678 ",
        ] {
            assert_eq!(Phone::parse(input).map(|p| p.0.to_string()), Ok("+821012345678".to_string()), "{input}");
        }
        assert_eq!(Phone::parse("+1 (415) 555-0100").unwrap().as_str(), "+14155550100");
        assert_eq!(Phone::parse("011-234-5678").unwrap().as_str(), "+82112345678", "an older carrier's number");
        assert_eq!(Phone::parse("+86 138 0013 8000").unwrap().as_str(), "+8613800138000");
    }

    /// Regression (issue 7): `00012345678` and `000-1234-5678` used to be stored as
    /// `+82012345678`, which the snapshot decoder refused, so the server could not start.
    #[test]
    fn numbers_that_are_not_korean_mobiles_or_e164_are_refused() {
        assert_eq!(Phone::parse("00012345678"), Err(PhoneError::NotKoreanMobile));
        assert_eq!(Phone::parse("000-1234-5678"), Err(PhoneError::NotKoreanMobile));
        assert_eq!(Phone::parse("02-123-4567"), Err(PhoneError::NotKoreanMobile), "a Seoul landline");
        assert_eq!(Phone::parse("+82 2 123 4567"), Err(PhoneError::NotKoreanMobile));
        assert_eq!(Phone::parse("010-123-4567"), Err(PhoneError::NotKoreanMobile), "010 numbers are 010-XXXX-XXXX");
        assert_eq!(Phone::parse(""), Err(PhoneError::Length(0)));
        assert_eq!(Phone::parse("010-1234-567a"), Err(PhoneError::Character('a')));
        assert_eq!(Phone::parse("+12345"), Err(PhoneError::Digits(5)));
        assert_eq!(Phone::parse("+1234567890123456"), Err(PhoneError::Digits(16)));
        assert_eq!(Phone::parse("+0123456789"), Err(PhoneError::Digits(10)), "no country code starts with 0");
        assert_eq!(Phone::parse("12345678"), Err(PhoneError::NotKoreanMobile));
        assert!(Phone::parse(&"1".repeat(100)).is_err());
        assert_eq!(format!("{:?}", Phone::parse("01012345678").unwrap()), "+**********78");
    }

    #[test]
    fn the_stored_form_reads_back() {
        for input in ["010-1234-5678", "+1 415 555 0100", "011 234 5678", "+44 7700 900123"] {
            let phone = Phone::parse(input).unwrap();
            assert_eq!(Phone::from_e164(phone.as_str()), Ok(phone.clone()));
            assert_eq!(crate::codec::decode::<Phone>(&crate::codec::encode(&phone)), Ok(phone));
        }
        assert!(Phone::from_e164("01012345678").is_err(), "not the stored form");
    }
}
