//! The digits of a one-time payment code: what the user's app shows as a barcode and the
//! cashier's scanner reads.
//!
//! A code is 20 digits: [`PREFIX`] (`97`, Kasa's), then 18 digits holding a number below
//! 2^59: the user's id (28 bits) masked, and a 31-bit tag.
//!
//! - **The tag** is a keyed BLAKE3 hash of the user, the counter of the user's codes and
//!   the issue time (the state's `wallet::PaymentCode`), with a key derived from the data
//!   key that the state never sees. Nothing else is stored: the server reads the user's
//!   current counter and issue time and computes the code again.
//! - **The mask** hides the user's id: it is a keyed hash of the tag, so the same user's codes
//!   share no visible digits, and a cashier cannot link two of a user's codes.
//!
//! **What guessing costs.** Any 18 digits name some user, but only that user's current code
//! (one per user, 60 seconds) has the right tag: a guess succeeds with probability at most
//! 2^-31 (one in 2.1 billion), however many users hold live codes. Only merchants' keys can
//! charge a code, and a merchant that tries [`WRONG_CODES_PER_MINUTE`] codes that are not
//! valid is refused for a while; at that rate a merchant needs about 200 years of guessing for
//! an even chance of one hit.

use kasa_core::wallet::PaymentCode;

/// The first two digits of every Kasa payment code.
pub const PREFIX: &str = "97";
/// The digits of a code.
pub const DIGITS: usize = 20;
/// The highest user id a code can carry: 2^28 - 1 (268 million users).
pub const USER_ID_MAX: u64 = (1 << USER_BITS) - 1;
/// Codes that are not valid a merchant may try a minute (and at once), before it is refused.
pub const WRONG_CODES_PER_MINUTE: u32 = 10;

const USER_BITS: u32 = 28;
const TAG_BITS: u32 = 31;

fn hash_bits(key: &[u8; 32], input: &[u8], bits: u32) -> u64 {
    let hash = blake3::keyed_hash(key, input);
    let word = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"));
    word & ((1 << bits) - 1)
}

fn tag(key: &[u8; 32], code: &PaymentCode) -> u64 {
    let mut input = [0u8; 21];
    input[0] = b't';
    input[1..9].copy_from_slice(&code.user_id.to_le_bytes());
    input[9..13].copy_from_slice(&code.counter.to_le_bytes());
    input[13..21].copy_from_slice(&code.issued_at.to_le_bytes());
    hash_bits(key, &input, TAG_BITS)
}

fn mask(key: &[u8; 32], tag: u64) -> u64 {
    let mut input = [0u8; 9];
    input[0] = b'm';
    input[1..9].copy_from_slice(&tag.to_le_bytes());
    hash_bits(key, &input, USER_BITS)
}

/// The digits of `code`; `None` if the user's id is above [`USER_ID_MAX`].
pub fn digits(key: &[u8; 32], code: &PaymentCode) -> Option<String> {
    if code.user_id > USER_ID_MAX {
        return None;
    }
    let tag = tag(key, code);
    let number = ((code.user_id ^ mask(key, tag)) << TAG_BITS) | tag;
    Some(format!("{PREFIX}{number:018}"))
}

/// The user that `text` names, if it is shaped as a Kasa code (20 digits, [`PREFIX`] first,
/// a number in range); whether it is that user's current code is [`matches`]'s to say.
pub fn user_of(key: &[u8; 32], text: &str) -> Option<u64> {
    let rest = text.strip_prefix(PREFIX).filter(|_| text.len() == DIGITS)?;
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = rest.parse().ok()?;
    if number >> (USER_BITS + TAG_BITS) != 0 {
        return None;
    }
    let tag = number & ((1 << TAG_BITS) - 1);
    Some((number >> TAG_BITS) ^ mask(key, tag))
}

/// Whether `text` is exactly `code`'s digits (compared in constant time).
pub fn matches(key: &[u8; 32], text: &str, code: &PaymentCode) -> bool {
    let Some(want) = digits(key, code) else { return false };
    want.len() == text.len() && want.bytes().zip(text.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn code(user_id: u64, counter: u32) -> PaymentCode {
        PaymentCode { user_id, counter, issued_at: 1_700_000_000_000_000_000, with_pin: false, used: false }
    }

    #[test]
    fn a_code_is_20_digits_that_name_its_user_and_match_only_itself() {
        for user_id in [1, 2, 12_345, USER_ID_MAX] {
            let c = code(user_id, 1);
            let text = digits(&KEY, &c).unwrap();
            assert_eq!((text.len(), &text[..2]), (20, PREFIX), "{text}");
            assert!(text.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(user_of(&KEY, &text), Some(user_id));
            assert!(matches(&KEY, &text, &c));
            assert!(!matches(&KEY, &text, &code(user_id, 2)), "another counter");
            assert!(!matches(&KEY, &text, &PaymentCode { issued_at: c.issued_at + 1, ..c }), "another issue");
            assert!(!matches(&[8; 32], &text, &c), "another key");
        }
        assert_eq!(digits(&KEY, &code(USER_ID_MAX + 1, 1)), None);
    }

    #[test]
    fn the_same_user_s_codes_share_no_visible_user_digits() {
        let a = digits(&KEY, &code(42, 1)).unwrap();
        let b = digits(&KEY, &code(42, 2)).unwrap();
        let high = |t: &str| t[2..].parse::<u64>().unwrap() >> TAG_BITS;
        assert_ne!(high(&a), high(&b), "the masked ids differ");
    }

    #[test]
    fn anything_not_shaped_as_a_code_names_nobody() {
        for bad in
            ["", "97", "9712345678901234567", "971234567890123456789", "96123456789012345678", "97a2345678901234567x"]
        {
            assert_eq!(user_of(&KEY, bad), None, "{bad}");
        }
        // 18 digits at or above 2^59 are out of range.
        let over = format!("97{:018}", 1u64 << 59);
        assert_eq!(user_of(&KEY, &over), None);
    }

    #[test]
    fn a_random_guess_almost_never_matches() {
        // 200,000 guesses at one user's live code: the tag alone makes a hit a 2^-31 event.
        let c = code(7, 3);
        let mut hits = 0;
        for i in 0..200_000u64 {
            let guess = format!("{PREFIX}{:018}", (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 5) % (1 << 59));
            if user_of(&KEY, &guess) == Some(7) && matches(&KEY, &guess, &c) {
                hits += 1;
            }
        }
        assert_eq!(hits, 0);
    }
}
