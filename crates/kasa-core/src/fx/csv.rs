//! Rates files (`kasa fx check` and `kasa fx quote` read them): a header and one rate a line,
//!
//! ```text
//! pair,mid,spread_bps,valid_from
//! CNY/KRW,190.50,50,2026-12-01T00:00:00Z
//! ```
//!
//! `valid_from` is an RFC 3339 UTC time to the second, written exactly `YYYY-MM-DDTHH:MM:SSZ`
//! (what people read and write; the engine's nanoseconds follow from it). No quoting, no
//! spaces around fields; blank lines are skipped. The whole file is refused at its first bad
//! line, named by its number, so that a half-loaded set of rates never exists.

use super::{FxError, Rate};
use crate::money::Currency;
use std::collections::BTreeMap;

/// Nanoseconds per second, as engine time counts them (the same as `time.rs`'s; this module
/// names only `money` from the crate, so that it stays beside the domains).
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The first line of every rates file.
pub const CSV_HEADER: &str = "pair,mid,spread_bps,valid_from";

/// The most lines after the header, blank ones included: a day of a hundred pairs every 15
/// minutes is under 10,000, and a bound keeps a wrong file from being read for long.
pub const CSV_ROWS_MAX: usize = 10_000;

/// The longest line in bytes: the longest valid one (`AAA/BBB`, 23 characters of mid, 4 of
/// spread, 20 of time, 3 commas) is 57.
pub const CSV_LINE_BYTES_MAX: usize = 128;

/// The rates of a file, in its order, or the first refusal as an [`FxError::Line`].
pub fn parse_rates_csv(text: &str) -> Result<Vec<Rate>, FxError> {
    let at = |line: usize| move |error: FxError| FxError::Line { line, error: Box::new(error) };
    let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
    match lines.next() {
        Some((_, header)) if header == CSV_HEADER => {}
        _ => return Err(at(1)(FxError::InvalidHeader)),
    }
    let mut rates = Vec::new();
    let mut first_line_of: BTreeMap<(Currency, Currency, u64), usize> = BTreeMap::new();
    for (number, line) in lines {
        if number > CSV_ROWS_MAX + 1 {
            return Err(at(number)(FxError::TooManyRows));
        }
        if line.is_empty() {
            continue;
        }
        let rate = parse_line(line).map_err(at(number))?;
        // The pair in either direction: `CNY/KRW` and `KRW/CNY` from one moment could cross.
        let pair = (rate.base().min(rate.quote()), rate.base().max(rate.quote()));
        if let Some(first) = first_line_of.insert((pair.0, pair.1, rate.valid_from()), number) {
            return Err(at(number)(FxError::DuplicateRate { first }));
        }
        rates.push(rate);
    }
    Ok(rates)
}

/// One line of a rates file.
fn parse_line(line: &str) -> Result<Rate, FxError> {
    if line.len() > CSV_LINE_BYTES_MAX {
        return Err(FxError::InvalidLine { found: format!("{} bytes", line.len()) });
    }
    let fields: Vec<&str> = line.split(',').collect();
    let [pair, mid, spread, valid_from] = fields[..] else {
        return Err(FxError::InvalidLine { found: format!("{} fields", fields.len()) });
    };
    // Digits only, and few enough to fit a u32; Rate::new checks the value.
    if spread.is_empty() || spread.len() > 9 || !spread.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FxError::InvalidSpread { found: "something other than digits".into() });
    }
    let spread: u32 = spread.parse().map_err(|_| FxError::InvalidSpread { found: "a number too large".into() })?;
    Rate::parse(pair, mid, spread, parse_utc(valid_from)?)
}

/// `YYYY-MM-DDTHH:MM:SSZ` as nanoseconds since the Unix epoch.
/// An RFC 3339 time with its offset, `2026-11-30T21:00:00+09:00` or `2026-11-30T12:00:00Z`
/// (as Alipay+'s `Request-Time` is written), with at most nine digits of a second after a
/// point, from 1970 on, as nanoseconds since the epoch. `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    if !text.is_ascii() || text.len() < 20 {
        return None;
    }
    let (local, rest) = text.split_at(19);
    let (nanos, zone) = match rest.strip_prefix('.') {
        Some(fraction) => {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return None;
            }
            let value: u64 = fraction[..digits].parse().ok()?;
            (value * 10u64.pow(9 - digits as u32), &fraction[digits..])
        }
        None => (0, rest),
    };
    let at = parse_utc(&format!("{local}Z")).ok()?.checked_add(nanos)?;
    let zb = zone.as_bytes();
    if zone == "Z" {
        return Some(at);
    }
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if zb.len() != 6 || !matches!(zb[0], b'+' | b'-') || zb[3] != b':' || !digits(&zb[1..3]) || !digits(&zb[4..]) {
        return None;
    }
    let (hours, minutes) = (
        u64::from(zb[1] - b'0') * 10 + u64::from(zb[2] - b'0'),
        u64::from(zb[4] - b'0') * 10 + u64::from(zb[5] - b'0'),
    );
    if hours > 23 || minutes > 59 {
        return None;
    }
    let offset = (hours * 3_600 + minutes * 60) * NANOS_PER_SECOND;
    // Local time east of UTC is ahead of it: UTC is local minus the offset.
    if zb[0] == b'+' {
        at.checked_sub(offset)
    } else {
        at.checked_add(offset)
    }
}

fn parse_utc(text: &str) -> Result<u64, FxError> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 20
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'Z';
    if !shape_ok {
        return Err(FxError::InvalidTime);
    }
    let number = |from: usize, to: usize| -> Result<u64, FxError> {
        let digits = &b[from..to];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(FxError::InvalidTime);
        }
        Ok(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(FxError::InvalidTime);
    }
    // No leap seconds: the engine's clock has none.
    if hour > 23 || minute > 59 || second > 59 {
        return Err(FxError::InvalidTime);
    }
    let seconds = days_since_epoch(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    seconds.checked_mul(NANOS_PER_SECOND).ok_or(FxError::InvalidTime)
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date from 1970 on (year at most 9999).
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let leap_days = |y: u64| y / 4 - y / 100 + y / 400;
    let years_before = (year - 1970) * 365 + leap_days(year - 1) - leap_days(1969);
    let months_before: u64 = (1..month).map(|m| days_in_month(year, m)).sum();
    years_before + months_before + day - 1
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_request_time_is_rfc_3339_with_any_offset_and_up_to_nanoseconds() {
        let utc = parse_rfc3339("2026-11-30T12:00:00Z").unwrap();
        assert_eq!(utc, 1_796_040_000 * NANOS_PER_SECOND);
        assert_eq!(parse_rfc3339("2026-11-30T21:00:00+09:00"), Some(utc));
        assert_eq!(parse_rfc3339("2026-11-30T07:30:00-04:30"), Some(utc));
        assert_eq!(parse_rfc3339("2026-11-30T12:00:00.5Z"), Some(utc + 500_000_000));
        assert_eq!(parse_rfc3339("2026-11-30T12:00:00.000000001+00:00"), Some(utc + 1));
        for bad in [
            "",
            "2026-11-30T12:00:00",
            "2026-11-30T12:00:00.Z",
            "2026-11-30T12:00:00.0000000001Z",
            "2026-11-30T12:00:00+9:00",
            "2026-11-30T12:00:00+24:00",
            "2026-11-30 12:00:00Z",
            "2026-13-30T12:00:00Z",
            "1970-01-01T00:00:00+00:01",
            "２026-11-30T12:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
    use super::*;

    #[test]
    fn utc_times_are_engine_nanoseconds() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Ok(0));
        // 2026-11-29T14:59:59Z, as in time.rs.
        assert_eq!(parse_utc("2026-11-29T14:59:59Z"), Ok(1_795_964_399 * NANOS_PER_SECOND));
        assert_eq!(parse_utc("2000-03-01T00:00:00Z"), Ok(951_868_800 * NANOS_PER_SECOND));
        assert_eq!(parse_utc("2024-02-29T23:59:59Z"), Ok(1_709_251_199 * NANOS_PER_SECOND));
        for bad in [
            "2023-02-29T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-13-01T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T00:00:60Z",
            "2026-12-01 00:00:00Z",
            "2026-12-01T00:00:00+09:00",
            "2026-12-01T00:00:00.5Z",
            "9999-12-31T23:59:59Z",
            "+026-12-01T00:00:00Z",
        ] {
            assert_eq!(parse_utc(bad), Err(FxError::InvalidTime), "{bad}");
        }
    }
}
