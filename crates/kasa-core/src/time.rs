//! Engine time helpers. The core never reads a clock: every batch carries its timestamp
//! (nanoseconds since the Unix epoch, chosen by the sequencer), and these functions only do
//! arithmetic on such timestamps.

/// Nanoseconds per second.
pub const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Nanoseconds per minute.
pub const NANOS_PER_MINUTE: u64 = 60 * NANOS_PER_SECOND;
/// Nanoseconds per hour.
pub const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MINUTE;
/// Nanoseconds per day.
pub const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;

/// Seconds east of UTC of Korea Standard Time (no daylight saving since 1988).
const KST_OFFSET_SECONDS: u64 = 9 * 3600;

/// The KST calendar day of a timestamp (days since 1970-01-01 in Korea): daily limits reset
/// at midnight in Seoul, whatever the server's time zone.
pub fn kst_day(timestamp: u64) -> u64 {
    (timestamp / NANOS_PER_SECOND + KST_OFFSET_SECONDS) / 86_400
}

/// `timestamp` plus `seconds`, saturating at the end of time rather than wrapping.
pub fn after_seconds(timestamp: u64, seconds: u64) -> u64 {
    timestamp.saturating_add(seconds.saturating_mul(NANOS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kst_day_turns_at_midnight_in_seoul() {
        // 2026-11-29T14:59:59Z is 23:59:59 KST; one second later it is the next day there.
        let before = 1_795_964_399 * NANOS_PER_SECOND;
        assert_eq!(kst_day(before) + 1, kst_day(before + NANOS_PER_SECOND));
        assert_eq!(kst_day(before), kst_day(before - 23 * NANOS_PER_HOUR));
    }
}
