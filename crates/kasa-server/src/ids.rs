//! The ids of objects the API shows with a type prefix (`mch_12`, `str_3`, `key_7`): the
//! prefix says what an id names, so that one kind of id is never taken for another.

use crate::problem::Problem;

/// `{prefix}_{n}`, in one allocation of the right size (every answer makes a few).
pub fn format(prefix: &str, n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut id = String::with_capacity(prefix.len() + 1 + digits.len() - at);
    id.push_str(prefix);
    id.push('_');
    id.extend(digits[at..].iter().map(|&d| char::from(d)));
    id
}

/// The number of an id `{prefix}_{n}` that this API made; anything else is `404 not_found`
/// (an id of another kind, or no id at all, names nothing).
pub fn parse(prefix: &str, id: &str, what: &str) -> Result<u64, Problem> {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .filter(|digits| !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .filter(|digits| !digits.starts_with('0'))
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| Problem::not_found(what))
}

/// The number of a `next_cursor` this API returned for a list of `prefix` ids.
pub fn parse_cursor(prefix: &str, cursor: &str) -> Result<u64, Problem> {
    parse(prefix, cursor, "").map_err(|_| Problem::invalid_parameter("the cursor is not one this API returned"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_a_fixed_point() {
        assert_eq!(super::format("mch", 12), "mch_12");
        for n in [0, 1, 9, 10, 99, 100, 12_345_678_901, u64::MAX - 1, u64::MAX] {
            assert_eq!(super::format("pay", n), format!("pay_{n}"));
        }
        assert_eq!(super::parse("mch", "mch_12", "merchant").ok(), Some(12));
        for bad in ["str_12", "mch12", "mch_", "mch_012", "mch_1a", "mch_-1", "mch_99999999999999999999999"] {
            assert!(super::parse("mch", bad, "merchant").is_err(), "{bad}");
        }
    }
}
