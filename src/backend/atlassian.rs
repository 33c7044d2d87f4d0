//! What the JIRA and Confluence adapters share: Atlassian Cloud credentials,
//! error bodies, timestamps and URL pieces.
//!
//! Guarantees: credentials are read from `ATLASSIAN_EMAIL` +
//! `ATLASSIAN_API_KEY` or git's credential helpers only, and travel inside
//! [`Auth::Basic`] (redacted in `Debug`); error messages are built from the
//! tracker's error body, sanitized and truncated, never from request
//! headers. Timestamps are parsed by hand (no date crate): both
//! `2021-01-18T23:45:00.000+0000` (JIRA, no colon in the offset) and
//! `2024-01-05T14:30:00.123Z` (Confluence) are accepted.

use serde_json::Value;

use super::http::{git_credential, sanitize, Auth, Response, Secret};
use super::BackendError;

/// Basic auth for an Atlassian site: `ATLASSIAN_EMAIL` + `ATLASSIAN_API_KEY`
/// from the environment, else git's credential helpers for `site`.
pub fn auth_for_site(site: &str) -> Result<Auth, BackendError> {
    let email = std::env::var("ATLASSIAN_EMAIL")
        .ok()
        .filter(|v| !v.is_empty());
    let key = std::env::var("ATLASSIAN_API_KEY")
        .ok()
        .filter(|v| !v.is_empty());
    if let (Some(user), Some(key)) = (email, key) {
        return Ok(Auth::Basic {
            user,
            secret: Secret::new(key),
        });
    }
    let url = reqwest::Url::parse(site)
        .map_err(|e| BackendError::Spec(format!("site {site:?}: invalid URL: {e}")))?;
    match git_credential(&url) {
        Some((user, secret)) if !user.is_empty() => Ok(Auth::Basic { user, secret }),
        _ => Err(BackendError::Spec(format!(
            "no Atlassian credentials for {}: set ATLASSIAN_EMAIL and ATLASSIAN_API_KEY, \
             or store the email and API token in a git credential helper",
            url.origin().ascii_serialization()
        ))),
    }
}

/// Split `https://site.atlassian.net/KEY` into (`https://site.atlassian.net`, `KEY`).
pub fn split_address(kind: &str, address: &str) -> Result<(String, String), BackendError> {
    let address = address.trim().trim_end_matches('/');
    let bad = || {
        BackendError::Spec(format!(
            "{kind} address {address:?}: expected https://<site>/<key>"
        ))
    };
    let rest = address
        .strip_prefix("https://")
        .or_else(|| address.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let (host, key) = rest.split_once('/').ok_or_else(bad)?;
    if host.is_empty() || key.is_empty() || key.contains('/') || host.contains('@') {
        return Err(bad());
    }
    let site = &address[..address.len() - key.len() - 1];
    Ok((site.to_owned(), key.to_owned()))
}

/// Percent-encode one URL path segment or query value (RFC 3986 unreserved
/// characters stay as they are).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Map a response to an error unless it is 2xx: 401/403 -> `Auth`, 404 ->
/// `NotFound`, 409 -> `Conflict`, else `Http` with the tracker's message.
pub fn check(resp: Response, what: &str) -> Result<Response, BackendError> {
    match resp.status {
        200..=299 => Ok(resp),
        401 | 403 => Err(BackendError::Auth {
            what: what.to_owned(),
            status: resp.status,
        }),
        404 => Err(BackendError::NotFound {
            what: what.to_owned(),
        }),
        409 => Err(BackendError::Conflict {
            what: what.to_owned(),
        }),
        status => Err(BackendError::Http {
            what: what.to_owned(),
            status,
            message: error_message(&resp),
        }),
    }
}

/// A readable message from an Atlassian error body: JIRA's
/// `{"errorMessages":[…],"errors":{"field":"msg"}}`, Confluence v2's
/// `{"errors":[{"title","detail"}]}` and v1's `{"message"}`; the raw
/// excerpt otherwise. Sanitized and truncated.
pub fn error_message(resp: &Response) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(&resp.body) {
        if let Some(list) = v.get("errorMessages").and_then(Value::as_array) {
            parts.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        match v.get("errors") {
            Some(Value::Object(map)) => {
                for (field, msg) in map {
                    let msg = msg.as_str().map_or_else(|| msg.to_string(), str::to_owned);
                    parts.push(format!("{field}: {msg}"));
                }
            }
            Some(Value::Array(list)) => {
                for e in list {
                    let text: Vec<&str> = ["title", "detail", "message"]
                        .iter()
                        .filter_map(|k| e.get(*k).and_then(Value::as_str))
                        .filter(|s| !s.is_empty())
                        .collect();
                    if !text.is_empty() {
                        parts.push(text.join(": "));
                    }
                }
            }
            _ => {}
        }
        if parts.is_empty() {
            if let Some(m) = v.get("message").and_then(Value::as_str) {
                parts.push(m.to_owned());
            }
        }
    }
    let text = if parts.is_empty() {
        resp.excerpt()
    } else {
        parts.join("; ")
    };
    let mut text = sanitize(&text);
    if text.chars().count() > 300 {
        text = text.chars().take(300).collect::<String>() + "…";
    }
    text
}

/// A parsed timestamp: the instant and the UTC offset it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch (UTC).
    pub ms: i64,
    /// The offset the timestamp was written in, in minutes east of UTC.
    pub offset_minutes: i32,
}

impl Timestamp {
    /// Parse `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HHMM|±HH:MM]`.
    pub fn parse(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(range)?;
            if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
            return None;
        }
        if b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        if second > 60 {
            return None;
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
            // Keep milliseconds; finer digits are dropped, shorter ones padded.
            let digits = &s[start..i];
            let mut ms_text: String = digits.chars().take(3).collect();
            while ms_text.len() < 3 {
                ms_text.push('0');
            }
            millis = ms_text.parse().ok()?;
        }
        let offset_minutes = match &s[i..] {
            "Z" | "z" => 0,
            rest => {
                let sign = match rest.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
                let colon_ok = rest.len() == 5 || (rest.len() == 6 && rest.as_bytes()[3] == b':');
                if digits.len() != 4 || !colon_ok || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let h: i32 = digits[..2].parse().ok()?;
                let m: i32 = digits[2..].parse().ok()?;
                sign * (h * 60 + m)
            }
        };
        let days = days_from_civil(year, month, day);
        let local_secs = days * 86_400 + hour * 3600 + minute * 60 + second;
        let utc_secs = local_secs - i64::from(offset_minutes) * 60;
        Some(Timestamp {
            ms: utc_secs * 1000 + millis,
            offset_minutes,
        })
    }

    /// Milliseconds since the epoch as a revision order (0 before 1970).
    pub fn order(self) -> u64 {
        u64::try_from(self.ms).unwrap_or(0)
    }

    /// The wall-clock minute `minutes_back` minutes earlier, in this
    /// timestamp's own offset, as JQL wants it: `yyyy-MM-dd HH:mm`.
    pub fn jql_minute(self, minutes_back: i64) -> String {
        let local_ms = self.ms + i64::from(self.offset_minutes) * 60_000 - minutes_back * 60_000;
        let secs = local_ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}",
            of_day / 3600,
            (of_day % 3600) / 60
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_and_confluence_timestamps_parse() {
        let t = Timestamp::parse("2021-01-18T23:45:00.000+0000").expect("jira form");
        assert_eq!(t.ms, 1_611_013_500_000);
        assert_eq!(t.offset_minutes, 0);
        let t2 = Timestamp::parse("2021-01-19T10:45:00.000+1100").expect("positive offset");
        assert_eq!(t2.ms, t.ms);
        let t3 = Timestamp::parse("2021-01-18T18:15:00.000-05:30").expect("colon offset");
        assert_eq!(t3.ms, t.ms);
        let c = Timestamp::parse("2024-01-05T14:30:00.123Z").expect("confluence form");
        assert_eq!(c.ms, 1_704_465_000_123);
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00Z").map(|t| t.ms),
            Some(0)
        );
        assert_eq!(
            Timestamp::parse("2024-02-29T00:00:00.5Z").map(|t| t.ms % 1000),
            Some(500)
        );
        for bad in [
            "",
            "2021-01-18",
            "2021-01-18T23:45:00.000+00",
            "2021-13-01T00:00:00Z",
            "x021-01-18T23:45:00Z",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn jql_minute_is_local_wall_clock_minus_slack() {
        let t = Timestamp::parse("2026-01-05T14:30:59.999+0000").expect("parses");
        assert_eq!(t.jql_minute(1), "2026-01-05 14:29");
        assert_eq!(t.jql_minute(0), "2026-01-05 14:30");
        let t = Timestamp::parse("2026-01-01T00:00:10.000+1000").expect("parses");
        assert_eq!(t.jql_minute(1), "2025-12-31 23:59");
    }

    #[test]
    fn civil_round_trips() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 19_000, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn addresses_split_and_encode() {
        assert_eq!(
            split_address("jira", "https://acme.atlassian.net/PROJ/").expect("valid"),
            ("https://acme.atlassian.net".to_owned(), "PROJ".to_owned())
        );
        assert!(split_address("jira", "acme.atlassian.net/PROJ").is_err());
        assert!(split_address("jira", "https://acme.atlassian.net").is_err());
        assert!(split_address("jira", "https://acme.atlassian.net/a/b").is_err());
        assert_eq!(enc("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
    }

    #[test]
    fn error_bodies_become_readable() {
        let resp = |body: &str| Response {
            url: String::new(),
            status: 400,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            error_message(&resp(
                r#"{"errorMessages":["bad jql"],"errors":{"labels":"no spaces"}}"#
            )),
            "bad jql; labels: no spaces"
        );
        assert_eq!(
            error_message(&resp(
                r#"{"errors":[{"status":409,"title":"Version conflict","detail":"x"}]}"#
            )),
            "Version conflict: x"
        );
        assert_eq!(error_message(&resp("plain text")), "plain text");
        assert_eq!(
            error_message(&resp(r#"{"message":"see http://u:p@h/x"}"#)),
            "see http://***@h/x"
        );
    }
}
