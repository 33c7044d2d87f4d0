//! The simulator's clock and its wire form of time: RFC 3339, UTC, whole
//! seconds (`2026-04-13T00:00:00Z`), as reposix-sim writes it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

/// `YYYY-MM-DDTHH:MM:SSZ` (civil arithmetic, so `9999-12-31T23:59:59Z`,
/// the "never" trackers use, is written too; beyond jiff's range it clamps).
pub fn format_secs(secs: i64) -> String {
    let midnight = EPOCH.to_datetime(jiff::civil::Time::midnight());
    let at = midnight
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(if secs < 0 {
            jiff::civil::DateTime::MIN
        } else {
            jiff::civil::DateTime::MAX
        });
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whole seconds since the epoch of an RFC 3339 timestamp with an offset
/// (fractions rounded down), or `None`.
pub fn parse_secs(s: &str) -> Option<i64> {
    let pieces = jiff::fmt::temporal::Pieces::parse(s.trim()).ok()?;
    let offset = pieces.to_numeric_offset()?;
    let time = pieces.time()?;
    let days = EPOCH
        .until((jiff::Unit::Day, pieces.date()))
        .ok()?
        .get_days();
    Some(
        i64::from(days) * 86_400
            + i64::from(time.hour()) * 3600
            + i64::from(time.minute()) * 60
            + i64::from(time.second().min(59))
            - i64::from(offset.seconds()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_wire_form() {
        assert_eq!(format_secs(1_776_038_400), "2026-04-13T00:00:00Z");
        assert_eq!(parse_secs("2026-04-13T00:00:00Z"), Some(1_776_038_400));
        assert_eq!(parse_secs("2026-04-13T02:00:00+02:00"), Some(1_776_038_400));
        assert_eq!(parse_secs("2026-04-13T00:00:00.900Z"), Some(1_776_038_400));
        assert_eq!(parse_secs("yesterday"), None);
        let never = parse_secs("9999-12-31T23:59:59Z").expect("the end of time parses");
        assert_eq!(format_secs(never), "9999-12-31T23:59:59Z");
    }
}
