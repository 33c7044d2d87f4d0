//! The one place HTTP requests are made.
//!
//! Guarantees:
//! - egress only to origins allowed by `REPOSIX_ALLOWED_ORIGINS` (default:
//!   loopback only); anything else fails closed before a byte is sent;
//! - redirects are never followed (a 3xx is an error naming the status);
//! - 429 and 5xx and transport failures are retried with jittered
//!   exponential backoff, honouring `Retry-After` and GitHub's
//!   `x-ratelimit-remaining: 0` + `x-ratelimit-reset`, within a bound;
//! - credentials live in [`Secret`] (redacted in `Debug`), travel only in
//!   the `Authorization` header, and never appear in URLs or errors.

use std::fmt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::BackendError;

/// An allowed origin pattern: `scheme://host[:port]`; a host may start with
/// `*.` to allow subdomains; a missing port allows any port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OriginPattern {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// Which origins HTTP may reach.
#[derive(Clone, Debug)]
pub struct AllowList {
    patterns: Vec<OriginPattern>,
    text: String,
}

const LOOPBACK_DEFAULT: &str = "http://127.0.0.1,http://localhost,http://[::1]";

impl AllowList {
    /// From `REPOSIX_ALLOWED_ORIGINS` (comma or space separated), defaulting
    /// to loopback only. An unparsable entry is an error (fail closed).
    pub fn from_env() -> Result<AllowList, BackendError> {
        match std::env::var("REPOSIX_ALLOWED_ORIGINS") {
            Ok(v) if !v.trim().is_empty() => AllowList::parse(&v),
            _ => AllowList::parse(LOOPBACK_DEFAULT),
        }
    }

    /// Parse a list of origin patterns.
    pub fn parse(text: &str) -> Result<AllowList, BackendError> {
        let mut patterns = Vec::new();
        for item in text
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let bad = || {
                BackendError::Spec(format!(
                    "REPOSIX_ALLOWED_ORIGINS entry {item:?}: expected scheme://host[:port]"
                ))
            };
            let (scheme, rest) = item.split_once("://").ok_or_else(bad)?;
            if !(scheme == "http" || scheme == "https") || rest.contains('/') || rest.contains('@')
            {
                return Err(bad());
            }
            let (host, port) = split_host_port(rest).ok_or_else(bad)?;
            patterns.push(OriginPattern {
                scheme: scheme.to_owned(),
                host: host.to_ascii_lowercase(),
                port,
            });
        }
        Ok(AllowList {
            patterns,
            text: text.to_owned(),
        })
    }

    /// Whether `url` may be reached.
    pub fn allows(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let port = url.port_or_known_default();
        self.patterns.iter().any(|p| {
            p.scheme == url.scheme()
                && (p.host == host
                    || p.host
                        .strip_prefix("*.")
                        .is_some_and(|suffix| host.ends_with(&format!(".{suffix}"))))
                && p.port.is_none_or(|want| Some(want) == port)
        })
    }
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((s.get(..host.len() + 2)?, port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

/// A credential. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(s: impl Into<String>) -> Secret {
        let s = s.into();
        crate::redact::register_secret(&s);
        Secret(s)
    }

    /// The value, for building the Authorization header only.
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How requests authenticate.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No credentials (the sim).
    None,
    /// `Authorization: Bearer <token>` (GitHub).
    Bearer(Secret),
    /// `Authorization: Basic base64(user:secret)` (Atlassian).
    Basic {
        /// The user (email).
        user: String,
        /// The API token.
        secret: Secret,
    },
}

/// Ask git's credential helpers for a credential for `url` (no prompt).
/// The secret travels over the helper's stdin/stdout only.
pub fn git_credential(url: &reqwest::Url) -> Option<(String, Secret)> {
    let mut child = Command::new("git")
        .args(["credential", "fill"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let input = format!("protocol={}\nhost={}\n\n", url.scheme(), url.host_str()?);
    {
        use std::io::Write;
        let mut stdin = child.stdin.take()?;
        stdin.write_all(input.as_bytes()).ok()?;
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut user = None;
    let mut pass = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("username=") {
            user = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("password=") {
            pass = Some(Secret::new(v));
        }
    }
    Some((user.unwrap_or_default(), pass?))
}

/// Install the process-wide rustls crypto provider (ring). Any reqwest
/// client built without it panics on first use; a second call is a no-op.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Retry bounds.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all (first try included).
    pub max_attempts: u32,
    /// First backoff.
    pub base: Duration,
    /// Largest single wait (also caps `Retry-After`).
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// A response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parse the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, BackendError> {
        serde_json::from_slice(&self.body).map_err(|e| BackendError::Malformed {
            what: what.to_owned(),
            why: e.to_string(),
        })
    }

    /// The body as text, truncated for messages.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut s: String = text.chars().take(200).collect();
        if text.chars().count() > 200 {
            s.push('…');
        }
        s
    }
}

/// Counters for progress and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Requests sent (including retries).
    pub requests: u64,
    /// Retries after 429/5xx/transport failures.
    pub retries: u64,
}

/// The HTTP client every adapter uses.
pub struct HttpClient {
    client: reqwest::blocking::Client,
    allow: AllowList,
    auth: Auth,
    agent: String,
    retry: RetryPolicy,
    extra_headers: Vec<(String, String)>,
    stats: std::cell::Cell<Stats>,
}

impl HttpClient {
    /// A client with the environment's allowlist.
    pub fn new(auth: Auth, agent: &str) -> Result<HttpClient, BackendError> {
        HttpClient::with_allowlist(auth, agent, AllowList::from_env()?)
    }

    /// A client with an explicit allowlist.
    pub fn with_allowlist(
        auth: Auth,
        agent: &str,
        allow: AllowList,
    ) -> Result<HttpClient, BackendError> {
        install_crypto_provider();
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(format!("reposix/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BackendError::Transport {
                what: "building the HTTP client".into(),
                why: e.to_string(),
            })?;
        Ok(HttpClient {
            client,
            allow,
            auth,
            agent: agent.to_owned(),
            retry: RetryPolicy::default(),
            extra_headers: Vec::new(),
            stats: std::cell::Cell::new(Stats::default()),
        })
    }

    /// Replace the retry policy.
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    /// Add a header sent with every request (e.g. API version).
    pub fn add_header(&mut self, name: &str, value: &str) {
        self.extra_headers.push((name.to_owned(), value.to_owned()));
    }

    /// Request counters so far.
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    /// Send a request, retrying 429/5xx/transport failures. Other statuses
    /// (2xx, 304, 4xx) are returned for the adapter to interpret; 3xx is an
    /// error because redirects are never followed.
    pub fn send(
        &self,
        what: &str,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<Response, BackendError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| BackendError::Spec(format!("{what}: invalid URL: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(BackendError::Spec(format!(
                "{what}: refusing a URL with credentials in it"
            )));
        }
        if !self.allow.allows(&parsed) {
            return Err(BackendError::Egress {
                origin: parsed.origin().ascii_serialization(),
                allowed: self.allow.text.clone(),
            });
        }
        let idempotent = method != reqwest::Method::POST;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .client
                .request(method.clone(), parsed.clone())
                .header("X-Reposix-Agent", &self.agent);
            for (k, v) in &self.extra_headers {
                req = req.header(k.as_str(), v.as_str());
            }
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req = match &self.auth {
                Auth::None => req,
                Auth::Bearer(t) => req.bearer_auth(t.expose()),
                Auth::Basic { user, secret } => req.basic_auth(user, Some(secret.expose())),
            };
            if let Some(b) = body {
                req = req.json(b);
            }
            let mut stats = self.stats.get();
            stats.requests += 1;
            self.stats.set(stats);
            let (wait, last) = match req.send() {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers: Vec<(String, String)> = resp
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_ascii_lowercase(),
                                v.to_str().unwrap_or("").to_owned(),
                            )
                        })
                        .collect();
                    let body = resp
                        .bytes()
                        .map_err(|e| BackendError::Transport {
                            what: what.to_owned(),
                            why: sanitize(&e.to_string()),
                        })?
                        .to_vec();
                    let r = Response {
                        status,
                        headers,
                        body,
                    };
                    // A POST that failed with 5xx may have been applied:
                    // resending could create twice. Only 429 (refused
                    // before any work) is retried; callers recover from
                    // the rest by looking for their marker.
                    let wait = retry_wait(&r, attempt, &self.retry)
                        .filter(|_| idempotent || status == 429);
                    match wait {
                        Some(w) => (w, format!("HTTP {status}")),
                        None if (300..400).contains(&status) && status != 304 => {
                            return Err(BackendError::Http {
                                what: what.to_owned(),
                                status,
                                message: format!(
                                    "redirect to {} not followed",
                                    sanitize(r.header("location").unwrap_or("?"))
                                ),
                            });
                        }
                        None => return Ok(r),
                    }
                }
                // A connection that was never made is safe to retry for
                // any method; a timeout after sending is not, for a POST.
                Err(e) if idempotent || e.is_connect() => {
                    (backoff(attempt, &self.retry), sanitize(&e.to_string()))
                }
                Err(e) => {
                    return Err(BackendError::Transport {
                        what: what.to_owned(),
                        why: sanitize(&e.to_string()),
                    })
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(BackendError::Exhausted {
                    what: what.to_owned(),
                    attempts: attempt,
                    last,
                });
            }
            let mut stats = self.stats.get();
            stats.retries += 1;
            self.stats.set(stats);
            std::thread::sleep(wait);
        }
    }
}

fn backoff(attempt: u32, policy: &RetryPolicy) -> Duration {
    let exp = policy.base.saturating_mul(1u32 << attempt.min(10));
    let capped = exp.min(policy.max_wait);
    // Full jitter in [capped/2, capped].
    let half = capped / 2;
    half + Duration::from_millis(fastrand::u64(0..=half.as_millis() as u64))
}

/// How long to wait before retrying `r`, or `None` if it is final.
fn retry_wait(r: &Response, attempt: u32, policy: &RetryPolicy) -> Option<Duration> {
    let rate_limited_403 = r.status == 403 && r.header("x-ratelimit-remaining") == Some("0");
    if !(r.status == 429 || rate_limited_403 || r.status >= 500) {
        return None;
    }
    if let Some(secs) = r
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(secs).min(policy.max_wait));
    }
    if r.header("x-ratelimit-remaining") == Some("0") {
        if let Some(reset) = r
            .header("x-ratelimit-reset")
            .and_then(|v| v.parse::<u64>().ok())
        {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Some(
                Duration::from_secs(reset.saturating_sub(now).max(1)).min(policy.max_wait),
            );
        }
    }
    Some(backoff(attempt, policy))
}

/// Hide credentials in a message: the one redaction function,
/// [`crate::redact::redact`] (URL userinfo and every known secret).
pub fn sanitize(message: &str) -> String {
    crate::redact::redact(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("test URL")
    }

    #[test]
    fn default_allows_loopback_only() {
        let a = AllowList::parse(LOOPBACK_DEFAULT).expect("parses");
        assert!(a.allows(&url("http://127.0.0.1:7878/x")));
        assert!(a.allows(&url("http://localhost:1/x")));
        assert!(a.allows(&url("http://[::1]:8080/x")));
        assert!(!a.allows(&url("https://api.github.com/repos")));
        assert!(!a.allows(&url("http://127.0.0.2/x")));
    }

    #[test]
    fn wildcards_and_ports() {
        let a = AllowList::parse("https://*.atlassian.net, https://api.github.com:443")
            .expect("parses");
        assert!(a.allows(&url("https://acme.atlassian.net/rest")));
        assert!(!a.allows(&url("https://atlassian.net.evil.com/")));
        assert!(!a.allows(&url("http://acme.atlassian.net/")));
        assert!(a.allows(&url("https://api.github.com/")));
        assert!(AllowList::parse("ftp://x").is_err());
        assert!(AllowList::parse("https://u:p@x").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let auth = Auth::Basic {
            user: "me@x".into(),
            secret: s,
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }

    #[test]
    fn sanitize_strips_userinfo() {
        assert_eq!(
            sanitize("error sending to http://bob:s3cret@127.0.0.1:9/x.git: refused"),
            "error sending to http://***@127.0.0.1:9/x.git: refused"
        );
        assert_eq!(sanitize("no urls here"), "no urls here");
    }
}
