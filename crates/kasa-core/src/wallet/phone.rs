//! Phone numbers in E.164 (`+` and up to 15 digits), the key of a wallet user. Korean
//! national input (`010-1234-5678`, `01012345678`) becomes `+821012345678`, as
//! libphonenumber's KR metadata says: `+82` and the national number without its leading `0`.
//!
//! This is deliberately not a full numbering plan: it accepts any `+` number of 8 to 15
//! digits, and national (leading `0`) numbers only in the Korean form.

use std::fmt;

/// The most digits of an E.164 number (ITU-T E.164).
const E164_DIGITS_MAX: usize = 15;
/// The fewest digits we accept: shorter numbers are service codes, not subscribers.
const E164_DIGITS_MIN: usize = 8;
/// Longest raw input we look at, so that a megabyte of hyphens is refused at once.
const INPUT_BYTES_MAX: usize = 32;

/// A normalised phone number, `+` and 8 to 15 digits. Personal data: its `Debug` masks all
/// but the last two digits, so it never reaches a log whole.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phone(String);

/// Why a phone number was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Empty or too long input.
    #[error("expected a phone number of 8 to 15 digits, found {0} characters")]
    Length(usize),
    /// A character other than digits, a leading `+`, spaces, hyphens, dots or parentheses.
    #[error("expected digits, found '{0}'")]
    Character(char),
    /// Too few or too many digits.
    #[error("expected 8 to 15 digits, found {0}")]
    Digits(usize),
    /// A national number (leading `0`) that is not a Korean one.
    #[error(
        "a national number must be Korean (0 and 8 to 10 digits, such as 010-1234-5678); use +country code otherwise"
    )]
    National,
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
        if !international {
            // Korean national form: 0 followed by an 8- to 10-digit national number
            // (02-123-4567 in Seoul, 010-1234-5678 for mobiles).
            if !digits.starts_with('0') || !(9..=11).contains(&digits.len()) {
                return Err(PhoneError::National);
            }
            digits = format!("82{}", &digits[1..]);
        } else if let Some(national) = digits.strip_prefix("820") {
            // `+82 010-...`: the trunk 0 does not belong after the country code.
            digits = format!("82{national}");
        }
        if !(E164_DIGITS_MIN..=E164_DIGITS_MAX).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneError::Digits(digits.len()));
        }
        Ok(Phone(format!("+{digits}")))
    }

    /// The E.164 string, `+821012345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a phone from its stored E.164 form, checking it again.
    pub fn from_e164(stored: &str) -> Result<Phone, PhoneError> {
        let phone = Phone::parse(stored)?;
        if phone.0 != stored {
            return Err(PhoneError::National);
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
            assert_eq!(Phone::parse(input).map(|p| p.0), Ok("+821012345678".to_string()), "{input}");
        }
        assert_eq!(Phone::parse("+1 (415) 555-0100").unwrap().as_str(), "+14155550100");
        assert_eq!(Phone::parse("02-123-4567").unwrap().as_str(), "+8221234567");
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert_eq!(Phone::parse(""), Err(PhoneError::Length(0)));
        assert_eq!(Phone::parse("010-1234-567a"), Err(PhoneError::Character('a')));
        assert_eq!(Phone::parse("+12345"), Err(PhoneError::Digits(5)));
        assert_eq!(Phone::parse("+1234567890123456"), Err(PhoneError::Digits(16)));
        assert_eq!(Phone::parse("12345678"), Err(PhoneError::National));
        assert_eq!(Phone::parse("0101234"), Err(PhoneError::National));
        assert!(Phone::parse(&"1".repeat(100)).is_err());
        assert_eq!(format!("{:?}", Phone::parse("01012345678").unwrap()), "+**********78");
    }
}
