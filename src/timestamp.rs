//! RFC 3339 timestamps as trackers write them, without a date library.
//!
//! Formatting always yields UTC at second precision with `Z`
//! (`2026-04-13T00:00:00Z`, the sim's wire form). Parsing is lenient about
//! what trackers actually send: fractional seconds, `Z`, `±HH:MM` and
//! `±HHMM` offsets (JIRA), `T`, `t` or a space between date and time.
//! Parsing never panics; anything else is `None`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn format_secs(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Milliseconds since the epoch of an RFC 3339 timestamp (sub-millisecond
/// digits are dropped), or `None` if it is not one.
pub fn parse_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, c) in frac.bytes().take(3).enumerate() {
            if i < digits {
                millis += i64::from(c - b'0') * [100, 10, 1][i];
            }
        }
        rest = &frac[digits..];
    }
    let offset_secs = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] => {
            let hhmm = &rest[1..];
            let (h, m) = match hhmm.len() {
                5 if hhmm.as_bytes()[2] == b':' => (hhmm.get(0..2)?, hhmm.get(3..5)?),
                4 => (hhmm.get(0..2)?, hhmm.get(2..4)?),
                _ => return None,
            };
            if !h.bytes().chain(m.bytes()).all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    // A leap second (`:60`) counts as the last second of its minute.
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59)
            - offset_secs;
    Some(secs * 1000 + millis)
}

/// Whole seconds since the epoch of an RFC 3339 timestamp (rounded down).
pub fn parse_secs(s: &str) -> Option<i64> {
    parse_millis(s).map(|ms| ms.div_euclid(1000))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's algorithms (public domain), proleptic Gregorian.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_secs(1_776_038_400), "2026-04-13T00:00:00Z");
        assert_eq!(format_secs(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_secs(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_what_trackers_send() {
        assert_eq!(
            parse_millis("2026-04-13T00:00:00Z"),
            Some(1_776_038_400_000)
        );
        assert_eq!(
            parse_millis("2026-04-13T02:00:00+02:00"),
            Some(1_776_038_400_000)
        );
        assert_eq!(
            parse_millis("2026-04-12T19:00:00.250-0500"),
            Some(1_776_038_400_250)
        );
        assert_eq!(
            parse_millis("2026-04-13t00:00:00.123456z"),
            Some(1_776_038_400_123)
        );
        assert_eq!(parse_secs("1969-12-31T23:59:59.5Z"), Some(-1));
        for bad in [
            "",
            "2026-04-13",
            "2026-04-13T00:00:00",
            "2026-02-30T00:00:00Z",
            "2026-04-13T24:00:00Z",
            "2026-04-13T00:00:00.Z",
            "2026-04-13T00:00:00+2:00",
            "2026-04-13T00:00:00Zjunk",
            "２026-04-13T00:00:00Z",
            "+026-04-13T00:00:00Z",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trips_across_eras() {
        for secs in [
            0,
            86_399,
            951_868_799,
            4_102_444_800,
            -62_135_596_800,
            1_776_038_461,
        ] {
            assert_eq!(parse_secs(&format_secs(secs)), Some(secs), "{secs}");
        }
    }
}
