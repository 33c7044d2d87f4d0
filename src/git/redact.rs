//! Redaction of secrets from every message reposix prints or returns: the
//! one function for HTTP and git ([`redact`]).
//!
//! Two kinds of secrets are hidden:
//! - credentials written into URLs (`scheme://user:password@host`): the
//!   whole userinfo is masked, up to the last `@` of the URL, so a password
//!   holding `/`, `:` or `@` is hidden too;
//! - *known* secrets: every credential reposix holds (registered with
//!   [`register_secret`] when it is read, e.g. by the HTTP client) and the
//!   values of the environment variables that carry them
//!   ([`SECRET_ENV_VARS`]), wherever they appear (a tracker echoing a token
//!   in an error body, git printing an askpass answer), plus anything that
//!   follows an `Authorization` scheme word (`Bearer …`, `Basic …`).
//!
//! Secrets shorter than [`MIN_SECRET_LEN`] bytes are not searched for as
//! text (every short word would be masked); they are still masked inside
//! URLs and after `Bearer`/`Basic`.

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock};

/// Environment variables whose values are credentials.
pub const SECRET_ENV_VARS: &[&str] = &["GITHUB_TOKEN", "ATLASSIAN_API_KEY", "REPOSIX_MIRROR_TOKEN"];

/// Shortest secret searched for as plain text.
pub const MIN_SECRET_LEN: usize = 4;

/// What a secret is replaced with.
pub const MASK: &str = "***";

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Remember a credential so that [`redact`] hides it from every message
/// from now on (in this process).
pub fn register_secret(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut all = registry().lock().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|s| s == secret) {
        all.push(secret.to_owned());
    }
}

/// Every known secret, longest first (so a secret containing another is
/// masked whole).
fn known_secrets() -> Vec<String> {
    let mut all: Vec<String> = registry().lock().unwrap_or_else(|p| p.into_inner()).clone();
    for var in SECRET_ENV_VARS {
        if let Ok(v) = std::env::var(var) {
            let v = v.trim();
            if v.len() >= MIN_SECRET_LEN && !all.iter().any(|s| s == v) {
                all.push(v.to_owned());
            }
        }
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all
}

/// `text` with every credential hidden (see the module docs): for
/// messages (errors, warnings, git's and trackers' output).
pub fn redact(text: &str) -> String {
    mask_auth_schemes(&redact_known(&mask_url_userinfo(text)))
}

/// `text` with only the known secrets masked, everything else exact: for
/// stored content on its way out (issue text may quote URLs or the word
/// `Bearer`; it must never show a credential this process holds).
pub fn redact_known(text: &str) -> Cow<'_, str> {
    let mut out = None::<String>;
    for secret in known_secrets() {
        let current = out.as_deref().unwrap_or(text);
        if current.contains(&secret) {
            out = Some(current.replace(&secret, MASK));
        }
    }
    out.map_or(Cow::Borrowed(text), Cow::Owned)
}

/// Mask the userinfo of every `scheme://userinfo@host`. Conservative: a
/// segment (up to whitespace or a quote) holding an `@` after `://` is
/// masked up to its last `@`.
fn mask_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        let segment = &tail[..end];
        match segment.rfind('@') {
            Some(at) => {
                out.push_str(MASK);
                out.push_str(&segment[at..]);
            }
            None => out.push_str(segment),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Mask the credential after `Bearer`, `Basic` or `token` when a header
/// value is echoed (`Authorization: Bearer ghp_…`).
fn mask_auth_schemes(text: &str) -> String {
    const SCHEMES: &[&str] = &["bearer ", "basic ", "token "];
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let hit = SCHEMES
            .iter()
            .filter_map(|s| lower[at..].find(s).map(|i| (at + i, s.len())))
            .min();
        let Some((start, len)) = hit else { break };
        let value_start = start + len;
        let value_end = text[value_start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '}'))
            .map_or(text.len(), |i| value_start + i);
        let value = &text[value_start..value_end];
        // Only credential-looking values: long, no spaces, base64/token
        // characters, so that prose like "token expired" stays readable.
        let looks_secret = value.len() >= 8
            && value.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'+' | b'/')
            })
            && !value.bytes().all(|b| b.is_ascii_alphabetic());
        out.push_str(&text[at..value_start]);
        if looks_secret {
            out.push_str(MASK);
        } else {
            out.push_str(value);
        }
        at = value_end;
    }
    if at < text.len() {
        out.push_str(&text[at..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_userinfo_is_masked_whatever_it_holds() {
        assert_eq!(
            redact("fatal: unable to access 'http://user:s3cret@127.0.0.1:9/x.git/': refused"),
            "fatal: unable to access 'http://***@127.0.0.1:9/x.git/': refused"
        );
        assert_eq!(
            redact("https://tok3n@github.com/a/b and ssh://git@h/x"),
            "https://***@github.com/a/b and ssh://***@h/x"
        );
        // Regression (issue 10, defect 10): the HTTP copy cut the userinfo
        // at the first `/` and printed the rest of the password.
        assert_eq!(
            redact("error sending to http://bob:pa/ss@127.0.0.1:9/x"),
            "error sending to http://***@127.0.0.1:9/x"
        );
        assert_eq!(redact("git://h:9/x no creds"), "git://h:9/x no creds");
        assert_eq!(redact("git@host:path"), "git@host:path");
    }

    #[test]
    fn registered_secrets_are_masked_anywhere() {
        register_secret("zq-unit-secret-48151623");
        assert_eq!(
            redact("HTTP 401: {\"message\":\"bad token zq-unit-secret-48151623\"}"),
            "HTTP 401: {\"message\":\"bad token ***\"}"
        );
        register_secret("ab"); // too short to search for as text
        assert_eq!(redact("abc"), "abc");
    }

    #[test]
    fn authorization_values_are_masked_but_prose_is_kept() {
        assert_eq!(
            redact("echo: Authorization: Bearer ghp_abcdefghijklmnop"),
            "echo: Authorization: Bearer ***"
        );
        assert_eq!(
            redact("authorization: basic Ym9iOmh1bnRlcjI="),
            "authorization: basic ***"
        );
        assert_eq!(redact("the token expired"), "the token expired");
        assert_eq!(
            redact("bearer authentication failed"),
            "bearer authentication failed"
        );
    }

    #[test]
    fn sanitize_masks_userinfo_in_urls() {
        assert_eq!(
            redact("fatal: unable to access 'http://user:s3cret@127.0.0.1:9/x.git/': refused"),
            "fatal: unable to access 'http://***@127.0.0.1:9/x.git/': refused"
        );
        assert_eq!(
            redact("https://tok3n@github.com/a/b and ssh://git@h/x"),
            "https://***@github.com/a/b and ssh://***@h/x"
        );
        // A password holding `/` is still hidden.
        assert_eq!(redact("http://u:p/w@h/x"), "http://***@h/x");
        assert_eq!(redact("git://h:9/x no creds"), "git://h:9/x no creds");
        assert_eq!(redact("git@host:path"), "git@host:path");
    }
}
