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
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let date = i32::try_from(days)
        .ok()
        .and_then(|d| EPOCH.checked_add(jiff::Span::new().days(d)).ok())
        .unwrap_or(if days < 0 {
            jiff::civil::Date::MIN
        } else {
            jiff::civil::Date::MAX
        });
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        date.year(),
        date.month(),
        date.day(),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
