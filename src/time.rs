//! Time: the one place timestamps are parsed and formatted, with `jiff`.
//!
//! - Formatting for machines is RFC 3339 in UTC (`2026-04-13T00:00:00Z`,
//!   the sim's wire form; `--json` output uses it too).
//! - Parsing is lenient about what trackers actually send: fractional
//!   seconds, `Z`, `±HH:MM` and `±HHMM` offsets (JIRA), `T`, `t` or a
//!   space between date and time; HTTP dates (`Retry-After`). Parsing never
//!   panics; anything else is `None`.
//! - For people, [`relative`] says "3 hours ago".

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::fmt::temporal::Pieces;

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_secs() -> i64 {
    now_millis().div_euclid(1000)
}

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (the whole civil
/// range jiff has, years -9999..=9999, beyond which it clamps; jiff's
/// `Timestamp` stops a day short of year 9999's end, so civil arithmetic
/// is used: trackers and the sim use `9999-12-31T23:59:59Z` as "never").
pub fn format_secs(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    let (year, month, day) = if year < -9999 {
        (-9999, 1, 1)
    } else if year > 9999 {
        (9999, 12, 31)
    } else {
        (year, month, day)
    };
    // Digits written directly (one time per comment of a deep issue).
    let mut out = String::with_capacity(21);
    let two = |out: &mut String, v: i64| {
        out.push(char::from(b'0' + (v / 10) as u8));
        out.push(char::from(b'0' + (v % 10) as u8));
    };
    if year < 0 {
        // `{:04}`: the sign counts toward the width.
        out.push_str(&format!("{year:04}"));
    } else {
        two(&mut out, year / 100);
        two(&mut out, year % 100);
    }
    for (sep, v) in [
        ('-', month),
        ('-', day),
        ('T', rem / 3600),
        (':', rem % 3600 / 60),
        (':', rem % 60),
    ] {
        out.push(sep);
        two(&mut out, v);
    }
    out.push('Z');
    out
}

/// The proleptic Gregorian (year, month, day) of a day count since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`; `issue show` formats one
/// time per comment, and civil arithmetic through jiff was most of its
/// cost). Exact for any `i64` day count that does not overflow; the
/// caller clamps to jiff's range, as before (`format_secs_matches_jiff`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A timestamp as a tracker wrote it, parsed once: the text is kept
/// byte for byte (events record it, so clones that import the same
/// revision write the same event), the instant is read from it when the
/// value is made ([`parse_millis`]; `None` when the tracker sent something
/// that is not RFC 3339).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    text: String,
    ms: Option<i64>,
}

impl Stamp {
    /// Parse `text` once.
    pub fn new(text: impl Into<String>) -> Stamp {
        let text = text.into();
        let ms = parse_millis(&text);
        Stamp { text, ms }
    }

    /// The text as the tracker wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Milliseconds since the epoch, if the text is a timestamp.
    pub fn millis(&self) -> Option<i64> {
        self.ms
    }

    /// Whether the tracker sent no text at all.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

impl From<String> for Stamp {
    fn from(text: String) -> Stamp {
        Stamp::new(text)
    }
}

impl From<&str> for Stamp {
    fn from(text: &str) -> Stamp {
        Stamp::new(text)
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The one backoff: how long to wait before retry `attempt + 1` (0-based):
/// `base` doubled per attempt, capped at `max`, with jitter in
/// `[capped / 2, capped]` so that writers that collided spread out. Used by
/// the HTTP client, git pushes, claims and the store's compare-and-swap
/// appends.
pub fn backoff(
    attempt: u32,
    base: std::time::Duration,
    max: std::time::Duration,
) -> std::time::Duration {
    let capped = base.saturating_mul(1u32 << attempt.min(10)).min(max);
    let half = capped / 2;
    let jitter = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + std::time::Duration::from_nanos(fastrand::u64(0..=jitter))
}

const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

/// [`format_secs`] of milliseconds (rounded down to the second).
pub fn format_millis(ms: i64) -> String {
    format_secs(ms.div_euclid(1000))
}

/// An instant and the UTC offset it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Milliseconds since the epoch (sub-millisecond digits dropped).
    pub ms: i64,
    /// The offset it was written in, minutes east of UTC.
    pub offset_minutes: i32,
}

/// Parse an RFC 3339 timestamp with its offset (see the module header).
pub fn parse(s: &str) -> Option<Parsed> {
    // RFC 3339 needs a full time with seconds and an offset; jiff's
    // Temporal grammar is wider (week dates, hour-only offsets, 5+ digit
    // years), so the shape is checked first.
    let b = s.as_bytes();
    if b.len() < 20
        || !b[..4].iter().all(u8::is_ascii_digit)
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
        || !b[17..19].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset_ok = match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] | [b'+' | b'-', h1, h2, m1, m2] => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    if !offset_ok {
        return None;
    }
    // jiff reads `T`/space separators and both offset forms; a leap second
    // (`:60`) is taken as the last second of its minute.
    let normal = s.replacen(' ', "T", 1).replace('t', "T").replace('z', "Z");
    let pieces = Pieces::parse(normal.as_str()).ok()?;
    let offset = pieces.to_numeric_offset()?;
    let time = pieces.time()?;
    let days = EPOCH
        .until((jiff::Unit::Day, pieces.date()))
        .ok()?
        .get_days();
    let secs = i64::from(days) * 86_400
        + i64::from(time.hour()) * 3600
        + i64::from(time.minute()) * 60
        + i64::from(time.second().min(59))
        - i64::from(offset.seconds());
    Some(Parsed {
        ms: secs * 1000 + i64::from(time.millisecond()),
        offset_minutes: offset.seconds() / 60,
    })
}

/// Milliseconds since the epoch of an RFC 3339 timestamp, or `None`.
pub fn parse_millis(s: &str) -> Option<i64> {
    parse(s).map(|p| p.ms)
}

/// Whole seconds since the epoch of an RFC 3339 timestamp (rounded down).
pub fn parse_secs(s: &str) -> Option<i64> {
    parse_millis(s).map(|ms| ms.div_euclid(1000))
}

/// Milliseconds since the epoch of an HTTP date (RFC 9110 IMF-fixdate,
/// `Wed, 21 Oct 2015 07:28:00 GMT`), or `None`.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.ends_with(" GMT") {
        return None;
    }
    jiff::fmt::rfc2822::parse(s)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

/// A date or instant a person types in a query: `2026-11-01` (midnight
/// UTC), an RFC 3339 timestamp, or a span back from `now_ms` such as `7d`,
/// `12h`, `30m`, `2w`.
pub fn parse_query_date(s: &str, now_ms: i64) -> Option<i64> {
    if let Some(p) = parse(s) {
        return Some(p.ms);
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        if s.len() == 10 {
            return d
                .to_zoned(jiff::tz::TimeZone::UTC)
                .ok()
                .map(|z| z.timestamp().as_millisecond());
        }
    }
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    Some(now_ms - n.checked_mul(unit_ms)?)
}

/// `ms` relative to `now_ms` for people: "just now", "5 minutes ago",
/// "3 hours ago", "yesterday", "4 days ago"; from 30 days on, the date
/// (`2026-04-13`). Future instants (clock skew) read "in …".
pub fn relative(ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - ms) / 1000;
    let (ahead, secs) = if secs < 0 {
        (true, -secs)
    } else {
        (false, secs)
    };
    let plural = |n: i64, unit: &str| {
        let s = if n == 1 { "" } else { "s" };
        if ahead {
            format!("in {n} {unit}{s}")
        } else {
            format!("{n} {unit}{s} ago")
        }
    };
    match secs {
        0..=44 => "just now".into(),
        45..=3_599 => plural((secs / 60).max(1), "minute"),
        3_600..=86_399 => plural(secs / 3_600, "hour"),
        86_400..=172_799 if !ahead => "yesterday".into(),
        86_400..=2_591_999 => plural(secs / 86_400, "day"),
        _ => format_millis(ms)[..10].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The civil arithmetic agrees with jiff's over its whole range, and
    /// clamps beyond it as jiff's checked arithmetic did.
    #[test]
    fn format_secs_matches_jiff() {
        let by_jiff = |secs: i64| {
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
        };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut samples: Vec<i64> = vec![
            0,
            -1,
            86_399,
            86_400,
            951_782_400,
            253_402_300_799,
            253_402_300_800,
            -377_705_116_800,
            -377_705_116_801,
            i64::MIN,
            i64::MAX,
        ];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly within jiff's range (about ±3.2e11 s), some beyond.
            samples.push((x as i64) % 400_000_000_000);
        }
        for d in -3_700_000..3_700_000i64 {
            if d % 97 == 0 {
                samples.push(d * 86_400 + 3_661);
            }
        }
        for secs in samples {
            assert_eq!(format_secs(secs), by_jiff(secs), "{secs}");
        }
    }

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
        assert_eq!(
            parse_millis("2026-04-13 00:00:00Z"),
            Some(1_776_038_400_000)
        );
        assert_eq!(parse_secs("1969-12-31T23:59:59.5Z"), Some(-1));
        let p = parse("2021-01-19T10:45:00.000+1100").expect("JIRA form");
        assert_eq!((p.ms, p.offset_minutes), (1_611_013_500_000, 660));
        for bad in [
            "",
            "2026-04-13",
            "2026-04-13T00:00:00",
            "2026-02-30T00:00:00Z",
            "2026-04-13T24:00:00Z",
            "2026-04-13T00:00:00.Z",
            "2026-04-13T00:00:00+2:00",
            "2026-04-13T00:00:00+00",
            "2026-04-13T00:00:00Zjunk",
            "２026-04-13T00:00:00Z",
            "+026-04-13T00:00:00Z",
            "2021-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trips_across_the_civil_range() {
        for secs in [
            0,
            -1,
            951_782_400,
            1_776_038_400,
            253_402_300_799, // 9999-12-31T23:59:59Z, the sim's "never"
            -62_135_596_800, // 0001-01-01
        ] {
            assert_eq!(parse_secs(&format_secs(secs)), Some(secs), "{secs}");
        }
        assert_eq!(format_secs(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(parse_secs("9999-12-31T23:59:59Z"), Some(253_402_300_799));
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480_000)
        );
        assert_eq!(parse_http_date("Wed, 21 Oct 2015 07:28:00 +0000"), None);
        assert_eq!(parse_http_date("soon"), None);
    }

    #[test]
    fn relative_times_for_people() {
        let now = 1_776_038_400_000;
        assert_eq!(relative(now - 10_000, now), "just now");
        assert_eq!(relative(now - 60_000, now), "1 minute ago");
        assert_eq!(relative(now - 3 * 3_600_000, now), "3 hours ago");
        assert_eq!(relative(now - 30 * 3_600_000, now), "yesterday");
        assert_eq!(relative(now - 4 * 86_400_000, now), "4 days ago");
        assert_eq!(relative(now - 40 * 86_400_000, now), "2026-03-04");
        assert_eq!(relative(now + 2 * 3_600_000, now), "in 2 hours");
    }

    #[test]
    fn query_dates() {
        let now = 1_776_038_400_000;
        assert_eq!(parse_query_date("2026-04-13", now), Some(now));
        assert_eq!(parse_query_date("7d", now), Some(now - 7 * 86_400_000));
        assert_eq!(parse_query_date("2026-04-13T00:00:00Z", now), Some(now));
        assert_eq!(parse_query_date("yesterday-ish", now), None);
    }

    #[test]
    fn backoff_doubles_within_its_cap_with_jitter() {
        use std::time::Duration;
        let (base, max) = (Duration::from_millis(50), Duration::from_secs(2));
        for attempt in 0..20 {
            let capped = (base * (1u32 << attempt.min(10))).min(max);
            for _ in 0..20 {
                let d = backoff(attempt, base, max);
                assert!(
                    d >= capped / 2 && d <= capped,
                    "attempt {attempt}: {d:?} outside [{:?}, {capped:?}]",
                    capped / 2
                );
            }
        }
    }
}
