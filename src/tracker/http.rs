//! The one place HTTP requests are made.
//!
//! Guarantees:
//! - egress only to origins allowed by `REPOSIX_ALLOWED_ORIGINS` (default:
//!   loopback only), plus URL prefixes an adapter derives from an allowed
//!   origin (an Atlassian site's API-gateway path); anything else fails
//!   closed before a byte is sent;
//! - redirects are followed only for reads and only within the origin of
//!   the request (so credentials never travel elsewhere); any other 3xx is
//!   an error naming the status;
//! - rate-limit refusals (429, and 403 carrying `retry-after`,
//!   `x-ratelimit-remaining: 0` or a "rate limit" message) are retried for
//!   every method, because a refused request was not applied: the wait is
//!   `Retry-After` (seconds or an HTTP date), else `X-RateLimit-Reset`
//!   (epoch seconds or ISO 8601), else a minute doubling per refusal; a
//!   wait longer than [`RetryPolicy::max_rate_limit_wait`] is an error
//!   instead of a silent hour of sleep, and each wait is announced through
//!   the [`Notice`] hook;
//! - a connection refused or a name that does not resolve before anything
//!   answered fails at once ([`BackendError::Unreachable`]);
//! - 5xx and transport failures are retried with jittered exponential
//!   backoff, except for POSTs (one that failed may have been applied);
//! - writes can be paced ([`HttpClient::set_write_interval`]);
//! - time is read and slept through a [`Clock`], so tests can run the
//!   waits on a virtual clock;
//! - credentials live in [`Secret`] (redacted in `Debug`), travel only in
//!   the `Authorization` header, and never appear in URLs or errors.

use std::fmt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// URL prefixes allowed in addition (`scheme://host[:port]/path/`).
    prefixes: Vec<String>,
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
        AllowList::parse_from(text, "REPOSIX_ALLOWED_ORIGINS")
    }

    /// Also allow the origin patterns in `text` (the syntax of
    /// `REPOSIX_ALLOWED_ORIGINS`), read from `source` (named in errors):
    /// the `reposix.allowedOrigins` git config key, or the origin that
    /// `reposix backend add` recorded for an attached tracker. Adding never
    /// widens an origin beyond what `text` names.
    pub fn extend(&mut self, text: &str, source: &str) -> Result<(), BackendError> {
        let more = AllowList::parse_from(text, source)?;
        if more.patterns.is_empty() {
            return Ok(());
        }
        self.patterns.extend(more.patterns);
        self.text = format!("{},{}", self.text, more.text.trim());
        Ok(())
    }

    fn parse_from(text: &str, source: &str) -> Result<AllowList, BackendError> {
        let mut patterns = Vec::new();
        for item in text
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let bad = || {
                BackendError::Spec(format!(
                    "{source} entry {item:?}: expected scheme://host[:port]"
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
            prefixes: Vec::new(),
            text: text.to_owned(),
        })
    }

    /// Also allow every URL under `prefix` (which must end with `/`), e.g.
    /// `https://api.atlassian.com/ex/jira/<cloudId>/` for an allowed site
    /// that uses a scoped token. Only adapters call this, with a prefix
    /// derived from an origin the user allowed.
    pub fn allow_prefix(&mut self, prefix: &str) -> Result<(), BackendError> {
        let url = reqwest::Url::parse(prefix)
            .map_err(|e| BackendError::Spec(format!("allowed prefix {prefix:?}: {e}")))?;
        if !prefix.ends_with('/')
            || url.as_str() != prefix
            || url.query().is_some()
            || !matches!(url.scheme(), "http" | "https")
        {
            return Err(BackendError::Spec(format!(
                "allowed prefix {prefix:?}: expected scheme://host/path/"
            )));
        }
        self.prefixes.push(prefix.to_owned());
        Ok(())
    }

    /// Whether `origin` (`scheme://host[:port]`) itself is allowed.
    pub fn allows_origin(&self, origin: &str) -> bool {
        reqwest::Url::parse(origin).is_ok_and(|u| self.matches_pattern(&u))
    }

    /// The allowlist as configured (for messages).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `url` may be reached.
    pub fn allows(&self, url: &reqwest::Url) -> bool {
        if self.matches_pattern(url) {
            return true;
        }
        let path = url.path().to_ascii_lowercase();
        // A prefix admits a path only if nothing in it could climb out.
        let climbs = path.contains("/../") || path.contains("%2e") || path.contains("%2f");
        !climbs
            && self
                .prefixes
                .iter()
                .any(|p| url.as_str().starts_with(p.as_str()) && url.username().is_empty())
    }

    fn matches_pattern(&self, url: &reqwest::Url) -> bool {
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
        crate::git::redact::register_secret(&s);
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
    /// Attempts in all (first try included) after 5xx and transport
    /// failures; also the most rate-limit waits for one request.
    pub max_attempts: u32,
    /// The first backoff after a 5xx or transport failure, doubled per
    /// attempt (with jitter) up to `max_wait`.
    pub base: Duration,
    /// Largest single backoff after a 5xx or transport failure (also caps
    /// a `Retry-After` sent with a 5xx).
    pub max_wait: Duration,
    /// Largest wait a rate limit may ask for; a longer one fails at once
    /// with [`BackendError::RateLimited`] (GitHub's primary limit resets
    /// within the hour).
    pub max_rate_limit_wait: Duration,
    /// The wait after a rate-limit refusal that names no time (GitHub: at
    /// least a minute), doubled for each further refusal.
    pub unhinted_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            max_wait: Duration::from_secs(60),
            max_rate_limit_wait: Duration::from_secs(3600),
            unhinted_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// Where the HTTP client reads the time and sleeps: the system clock, or a
/// virtual clock that tests advance instead of sleeping.
pub trait Clock: Send + Sync {
    /// The current time on this clock.
    fn now(&self) -> SystemTime;
    /// Block for `d` on this clock (a virtual clock advances instead).
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A sink for notices a user should see while a command runs (rate-limit
/// waits, a renamed repository). The CLI prints them on stderr.
pub type Notice = Arc<dyn Fn(&str) + Send + Sync>;

/// A response.
#[derive(Debug)]
pub struct Response {
    /// The URL that answered: the request's, or where redirects led.
    pub url: String,
    /// The HTTP status code of the final answer (after redirects followed).
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as received, not decoded.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (any case), if the answer carried it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parse the body as JSON ([`decode_json`]).
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, BackendError> {
        decode_json(&self.body, what)
    }

    /// The body as text, truncated for messages.
    pub fn excerpt(&self) -> String {
        truncate(&String::from_utf8_lossy(&self.body), 200)
    }
}

/// Decode a JSON body: every adapter's one way from bytes to wire shapes,
/// so a body that does not decode is always [`BackendError::Malformed`]
/// naming `what`.
pub fn decode_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, BackendError> {
    serde_json::from_slice(body).map_err(|e| BackendError::Malformed {
        what: what.to_owned(),
        why: e.to_string(),
    })
}

/// `text` cut to at most `max_chars` characters, with `…` where it was
/// cut (tracker messages quoted in errors).
pub fn truncate(text: &str, max_chars: usize) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(max_chars).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// A listing whose next-page links never end is broken: stop instead of
/// looping.
pub const MAX_PAGES: usize = 100_000;

/// Walk a paginated listing from `first`: `page` reads one URL and returns
/// the next one, if any. Fails with [`BackendError::Malformed`] when a
/// next link returns to a page already read, or after [`MAX_PAGES`] pages,
/// instead of looping.
pub fn follow_pages(
    what: &str,
    first: String,
    mut page: impl FnMut(&str) -> Result<Option<String>, BackendError>,
) -> Result<(), BackendError> {
    let mut url = first;
    let mut visited = std::collections::HashSet::new();
    loop {
        if visited.len() >= MAX_PAGES || !visited.insert(url.clone()) {
            return Err(BackendError::Malformed {
                what: what.to_owned(),
                why: "the next-page links go in a circle".into(),
            });
        }
        match page(&url)? {
            Some(next) => url = next,
            None => return Ok(()),
        }
    }
}

/// The URL of the `rel="next"` entry of a `Link` header (RFC 8288: `rel`
/// may list several relation types, parameters may be spaced or quoted,
/// and a URL may contain commas).
pub fn link_next(header: &str) -> Option<&str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>')?;
        let url = &after[..close];
        let tail = &after[close + 1..];
        let params_end = tail.find('<').unwrap_or(tail.len());
        let is_next = tail[..params_end].split(';').any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_end_matches(',')
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(url);
        }
        rest = &tail[params_end..];
    }
    None
}

/// Counters for progress and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Requests sent (including retries).
    pub requests: u64,
    /// Retries after 429/5xx/transport failures.
    pub retries: u64,
    /// Rate-limit waits among the retries.
    pub rate_limit_waits: u64,
    /// Time spent waiting for rate limits, write pacing and other pauses
    /// ([`HttpClient::pause`]).
    pub waited: Duration,
}

/// The HTTP client every adapter uses.
pub struct HttpClient {
    client: reqwest::blocking::Client,
    allow: AllowList,
    auth: Auth,
    agent: String,
    service: String,
    retry: RetryPolicy,
    extra_headers: Vec<(String, String)>,
    stats: std::cell::Cell<Stats>,
    clock: Arc<dyn Clock>,
    notice: Option<Notice>,
    write_interval: Duration,
    last_write: std::cell::Cell<Option<SystemTime>>,
    /// Whether any request got an answer (connect failures before the
    /// first answer fail at once: the tracker is not there).
    answered: std::cell::Cell<bool>,
}

/// How a request may be retried and redirected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Safe to repeat: retried after 5xx and timeouts, redirects followed.
    Read,
    /// A write that may be repeated (PUT, PATCH, DELETE): retried after 5xx
    /// and timeouts, never redirected, paced.
    Idempotent,
    /// A write that may have been applied when it failed (POST): retried
    /// only when refused by a rate limit; never redirected; paced.
    Write,
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
            service: agent.to_owned(),
            retry: RetryPolicy::default(),
            extra_headers: Vec::new(),
            stats: std::cell::Cell::new(Stats::default()),
            clock: Arc::new(SystemClock),
            notice: None,
            write_interval: Duration::ZERO,
            last_write: std::cell::Cell::new(None),
            answered: std::cell::Cell::new(false),
        })
    }

    /// Replace the retry policy.
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// The tracker's name in notices ("rate limited by github: …").
    pub fn set_service(&mut self, name: &str) {
        name.clone_into(&mut self.service);
    }

    /// Read time and sleep through `clock` (tests pass a virtual one).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// The clock in use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Where notices go (none by default).
    pub fn set_notice(&mut self, notice: Notice) {
        self.notice = Some(notice);
    }

    /// Tell the user something through the notice hook, if any.
    pub fn notify(&self, line: &str) {
        if let Some(n) = &self.notice {
            n(line);
        }
    }

    /// Leave at least `interval` between the starts of two writes (GitHub
    /// asks for a second between content-creating requests).
    pub fn set_write_interval(&mut self, interval: Duration) {
        self.write_interval = interval;
    }

    /// The allowlist, e.g. to add a derived prefix.
    pub fn allow_mut(&mut self) -> &mut AllowList {
        &mut self.allow
    }

    /// The allowlist.
    pub fn allowlist(&self) -> &AllowList {
        &self.allow
    }

    /// Add a header sent with every request (e.g. API version).
    pub fn add_header(&mut self, name: &str, value: &str) {
        self.extra_headers.push((name.to_owned(), value.to_owned()));
    }

    /// Request counters so far.
    pub fn stats(&self) -> Stats {
        self.stats.get()
    }

    /// Send a request. GET and HEAD are reads (see [`HttpClient::send_read`]);
    /// other methods are writes: never redirected, paced, retried after a
    /// rate-limit refusal, and after 5xx or a timeout unless they are POSTs
    /// (which may have been applied). Other statuses (2xx, 304, 4xx) are
    /// returned for the adapter to interpret.
    pub fn send(
        &self,
        what: &str,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<Response, BackendError> {
        let kind = if method == reqwest::Method::GET || method == reqwest::Method::HEAD {
            Kind::Read
        } else if method == reqwest::Method::POST {
            Kind::Write
        } else {
            Kind::Idempotent
        };
        self.send_as(kind, what, method, url, headers, body)
    }

    /// Send a request that reads, whatever its method (JIRA's search is a
    /// POST): retried after 5xx and transport failures, redirects followed
    /// within the request's origin, not paced.
    pub fn send_read(
        &self,
        what: &str,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<Response, BackendError> {
        self.send_as(Kind::Read, what, method, url, headers, body)
    }

    fn check_url(&self, what: &str, url: &reqwest::Url) -> Result<(), BackendError> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BackendError::Spec(format!(
                "{what}: refusing a URL with credentials in it"
            )));
        }
        if !self.allow.allows(url) {
            return Err(BackendError::Egress {
                origin: url.origin().ascii_serialization(),
                allowed: self.allow.text.clone(),
            });
        }
        Ok(())
    }

    fn bump(&self, f: impl FnOnce(&mut Stats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }

    /// Wait `d` on the client's clock, counted in [`Stats::waited`]: the
    /// one way an adapter pauses (rate limits, pacing, and a tracker whose
    /// search lags its writes).
    pub fn pause(&self, d: Duration) {
        self.bump(|s| s.waited += d);
        self.clock.sleep(d);
    }

    /// Sleep until the write interval since the last write has passed.
    fn pace(&self) {
        if self.write_interval.is_zero() {
            return;
        }
        if let Some(last) = self.last_write.get() {
            let since = self.clock.now().duration_since(last).unwrap_or_default();
            if since < self.write_interval {
                self.pause(self.write_interval - since);
            }
        }
        self.last_write.set(Some(self.clock.now()));
    }

    fn send_as(
        &self,
        kind: Kind,
        what: &str,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<Response, BackendError> {
        let mut target = reqwest::Url::parse(url)
            .map_err(|e| BackendError::Spec(format!("{what}: invalid URL: {e}")))?;
        self.check_url(what, &target)?;
        let origin = target.origin();
        let mut attempt = 0;
        let mut refusals = 0u32;
        let mut hops = 0;
        loop {
            attempt += 1;
            if kind != Kind::Read {
                self.pace();
            }
            let mut req = self
                .client
                .request(method.clone(), target.clone())
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
            self.bump(|s| s.requests += 1);
            let started = std::time::Instant::now();
            let sent = req.send();
            // Debug log (`reposix -v`): the URL never carries credentials
            // (check_url), and the log writer redacts every line anyway.
            match &sent {
                Ok(resp) => tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "HTTP {method} {} -> {}",
                    crate::git::redact::redact(target.as_str()),
                    resp.status().as_u16()
                ),
                Err(e) => tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "HTTP {method} {} -> failed: {}",
                    crate::git::redact::redact(target.as_str()),
                    sanitize(&e.to_string())
                ),
            }
            let (wait, last) = match sent {
                Ok(resp) => {
                    self.answered.set(true);
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
                        url: target.to_string(),
                        status,
                        headers,
                        body,
                    };
                    if is_rate_limited(&r) {
                        // Refused before any work: safe to resend, even a POST.
                        refusals += 1;
                        let wait = rate_limit_wait(&r, refusals, &self.retry, self.clock.now());
                        if wait > self.retry.max_rate_limit_wait {
                            return Err(BackendError::RateLimited {
                                what: what.to_owned(),
                                wait_secs: wait.as_secs(),
                            });
                        }
                        if refusals >= self.retry.max_attempts {
                            return Err(BackendError::Exhausted {
                                what: what.to_owned(),
                                attempts: refusals,
                                last: format!("HTTP {status} (rate limited)"),
                            });
                        }
                        self.notify(&format!(
                            "rate limited by {}: waiting {} s",
                            self.service,
                            wait.as_secs_f64().ceil() as u64
                        ));
                        self.bump(|s| {
                            s.retries += 1;
                            s.rate_limit_waits += 1;
                        });
                        self.pause(wait);
                        attempt -= 1;
                        continue;
                    }
                    if (300..400).contains(&status) && status != 304 {
                        let location = r.header("location").unwrap_or("");
                        let next = target.join(location).ok();
                        match next {
                            Some(next)
                                if kind == Kind::Read
                                    && matches!(status, 301 | 302 | 303 | 307 | 308)
                                    && hops < 5
                                    && next.origin() == origin
                                    && self.check_url(what, &next).is_ok() =>
                            {
                                hops += 1;
                                target = next;
                                attempt -= 1;
                                continue;
                            }
                            _ => {
                                return Err(BackendError::Http {
                                    what: what.to_owned(),
                                    status,
                                    message: format!(
                                        "redirect to {} not followed",
                                        sanitize(if location.is_empty() { "?" } else { location })
                                    ),
                                })
                            }
                        }
                    }
                    // A write that failed with 5xx may have been applied:
                    // resending could create twice. Callers recover by
                    // looking for their marker.
                    match retry_wait(&r, attempt, &self.retry).filter(|_| kind != Kind::Write) {
                        Some(w) => (w, format!("HTTP {status}")),
                        None => return Ok(r),
                    }
                }
                // Nothing ever answered and the connection was refused or
                // the name did not resolve: the tracker is not there (no
                // network, wrong address). Retrying for a minute helps no one.
                Err(e) if e.is_connect() && !self.answered.get() => {
                    return Err(BackendError::Unreachable {
                        what: what.to_owned(),
                        why: sanitize(&error_chain_of(&e)),
                    })
                }
                // A connection that was never made is safe to retry for
                // any method; a timeout after sending is not, for a write.
                Err(e) if kind != Kind::Write || e.is_connect() => {
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
            self.bump(|s| s.retries += 1);
            self.clock.sleep(wait);
        }
    }
}

/// A reqwest error with its sources ("error sending request" alone does
/// not say "connection refused").
fn error_chain_of(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

fn backoff(attempt: u32, policy: &RetryPolicy) -> Duration {
    crate::time::backoff(attempt, policy.base, policy.max_wait)
}

/// How long to wait before retrying a read that failed with 5xx, or
/// `None` if the response is final.
fn retry_wait(r: &Response, attempt: u32, policy: &RetryPolicy) -> Option<Duration> {
    if r.status < 500 {
        return None;
    }
    match r
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(secs) => Some(Duration::from_secs(secs).min(policy.max_wait)),
        None => Some(backoff(attempt, policy)),
    }
}

/// Whether `r` is a rate-limit refusal (the request was not applied):
/// 429, or a 403 that says so (GitHub answers both for secondary limits,
/// often while `x-ratelimit-remaining` is still above zero).
pub fn is_rate_limited(r: &Response) -> bool {
    match r.status {
        429 => true,
        403 => {
            r.header("retry-after").is_some()
                || r.header("x-ratelimit-remaining").map(str::trim) == Some("0")
                || String::from_utf8_lossy(&r.body)
                    .to_ascii_lowercase()
                    .contains("rate limit")
        }
        _ => false,
    }
}

/// How long a rate-limited request should wait before its `refusals`-th
/// retry: `Retry-After` (seconds or an HTTP date), else `X-RateLimit-Reset`
/// (epoch seconds as GitHub sends it, or ISO 8601 as Atlassian does), else
/// the policy's unhinted wait doubled per refusal.
pub fn rate_limit_wait(
    r: &Response,
    refusals: u32,
    policy: &RetryPolicy,
    now: SystemTime,
) -> Duration {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let until = |ms: i64| Duration::from_millis(u64::try_from(ms - now_ms).unwrap_or(0));
    if let Some(v) = r.header("retry-after").map(str::trim) {
        if let Ok(secs) = v.parse::<u64>() {
            return Duration::from_secs(secs);
        }
        if let Some(ms) = parse_http_date(v) {
            return until(ms).max(Duration::from_secs(1));
        }
    }
    // GitHub sends a reset with every response; it names the wait only
    // when the quota is spent. Atlassian sends it with 429 alone.
    let spent = r
        .header("x-ratelimit-remaining")
        .is_none_or(|v| v.trim() == "0");
    if let Some(v) = r
        .header("x-ratelimit-reset")
        .map(str::trim)
        .filter(|_| spent)
    {
        let reset_ms = match v.parse::<i64>() {
            Ok(secs) => Some(secs.saturating_mul(1000)),
            Err(_) => crate::time::parse_millis(v),
        };
        if let Some(ms) = reset_ms {
            // One second of slack for clocks that disagree a little.
            return until(ms) + Duration::from_secs(1);
        }
    }
    let doublings = refusals.saturating_sub(1).min(16);
    policy
        .unhinted_rate_limit_wait
        .saturating_mul(1u32 << doublings)
}

/// Milliseconds since the epoch of an HTTP date (RFC 9110 IMF-fixdate,
/// `Wed, 21 Oct 2015 07:28:00 GMT`), or `None`.
pub fn parse_http_date(s: &str) -> Option<i64> {
    crate::time::parse_http_date(s)
}

/// Hide credentials in a message: the one redaction function,
/// [`crate::git::redact::redact`] (URL userinfo and every known secret).
pub fn sanitize(message: &str) -> String {
    crate::git::redact::redact(message)
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

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            url: String::new(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    // Regression (issue 9, point 3): only a 403 with zero remaining was
    // taken for a rate limit; secondary limits keep quota.
    #[test]
    fn rate_limits_are_recognised_on_403_and_429_only() {
        assert!(is_rate_limited(&resp(429, &[], "")));
        assert!(is_rate_limited(&resp(403, &[("retry-after", "5")], "")));
        assert!(is_rate_limited(&resp(
            403,
            &[("x-ratelimit-remaining", "0")],
            ""
        )));
        assert!(is_rate_limited(&resp(
            403,
            &[("x-ratelimit-remaining", "4000")],
            r#"{"message":"You have exceeded a secondary rate limit."}"#
        )));
        assert!(!is_rate_limited(&resp(
            403,
            &[("x-ratelimit-remaining", "4000")],
            r#"{"message":"Resource not accessible by integration"}"#
        )));
        assert!(!is_rate_limited(&resp(503, &[("retry-after", "5")], "")));
    }

    // Regression (issue 9, point 14): `Retry-After` as an HTTP date and
    // Atlassian's ISO `X-RateLimit-Reset` were not parsed.
    #[test]
    fn waits_come_from_retry_after_seconds_or_dates_then_resets() {
        let policy = RetryPolicy::default();
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21T07:28:00Z
        let wait =
            |headers: &[(&str, &str)], n| rate_limit_wait(&resp(429, headers, ""), n, &policy, now);
        assert_eq!(wait(&[("retry-after", "37")], 1), Duration::from_secs(37));
        assert_eq!(
            wait(&[("retry-after", "Wed, 21 Oct 2015 07:28:30 GMT")], 1),
            Duration::from_secs(30)
        );
        assert_eq!(
            wait(&[("x-ratelimit-reset", "1445412490")], 1),
            Duration::from_secs(11),
            "GitHub's epoch seconds, plus a second of slack"
        );
        assert_eq!(
            wait(&[("x-ratelimit-reset", "2015-10-21T07:29:00Z")], 1),
            Duration::from_secs(61),
            "Atlassian's ISO 8601"
        );
        assert_eq!(wait(&[], 1), Duration::from_secs(60));
        assert_eq!(wait(&[], 3), Duration::from_secs(240));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "37",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn link_next_is_found_in_fixture_headers() {
        let fixture =
            "<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"prev\", \
            <https://api.github.com/repositories/1000/issues?per_page=3&page=3>; rel=\"next\", \
            <https://api.github.com/repositories/1000/issues?per_page=3&page=5>; rel=\"last\", \
            <https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"first\"";
        assert_eq!(
            link_next(fixture),
            Some("https://api.github.com/repositories/1000/issues?per_page=3&page=3")
        );
        let last_page =
            "<https://api.github.com/repositories/1000/issues?per_page=3&page=4>; rel=\"prev\", \
            <https://api.github.com/repositories/1000/issues?per_page=3&page=1>; rel=\"first\"";
        assert_eq!(link_next(last_page), None);
        // Commas inside URLs and unusual spacing do not confuse it.
        assert_eq!(
            link_next("<https://x/i?labels=a,b&page=2>;rel = \"next last\""),
            Some("https://x/i?labels=a,b&page=2")
        );
    }

    #[test]
    fn link_headers() {
        // Confluence's relative next links.
        assert_eq!(
            link_next("</wiki/api/v2/pages?cursor=a>; rel=\"next\", <https://x.atlassian.net/wiki>; rel=\"base\""),
            Some("/wiki/api/v2/pages?cursor=a")
        );
        assert_eq!(link_next("<https://x/wiki>; rel=\"base\""), None);
    }

    #[test]
    fn page_walks_stop_at_a_circle() {
        let mut read = Vec::new();
        let e = follow_pages("walk", "a".into(), |url| {
            read.push(url.to_owned());
            Ok(Some(if url == "a" { "b" } else { "a" }.to_owned()))
        })
        .expect_err("a -> b -> a loops");
        assert!(matches!(e, BackendError::Malformed { .. }), "{e}");
        assert_eq!(read, ["a", "b"]);
        assert_eq!(truncate("abc", 2), "ab…");
        assert_eq!(truncate("ab", 2), "ab");
    }

    #[test]
    fn extending_adds_exactly_the_named_origins() {
        let mut a = AllowList::parse("http://127.0.0.1").expect("valid");
        a.extend("https://api.github.com", "reposix.allowedOrigins")
            .expect("valid");
        assert!(a.allows(&url("https://api.github.com/repos/o/r")));
        assert!(!a.allows(&url("https://uploads.github.com/")));
        assert!(!a.allows(&url("http://api.github.com/")));
        assert!(a.allows(&url("http://127.0.0.1:9/x")));
        assert_eq!(a.text(), "http://127.0.0.1,https://api.github.com");
        let e = a
            .extend("api.github.com", "reposix.allowedOrigins")
            .expect_err("no scheme");
        assert!(
            e.to_string().starts_with("reposix.allowedOrigins entry"),
            "{e}"
        );
    }

    #[test]
    fn derived_prefixes_admit_only_their_path() {
        let mut a = AllowList::parse("https://acme.atlassian.net").expect("parses");
        assert!(!a.allows(&url(
            "https://api.atlassian.com/ex/jira/c1/rest/api/3/myself"
        )));
        a.allow_prefix("https://api.atlassian.com/ex/jira/c1/")
            .expect("valid prefix");
        assert!(a.allows(&url(
            "https://api.atlassian.com/ex/jira/c1/rest/api/3/myself"
        )));
        assert!(!a.allows(&url("https://api.atlassian.com/ex/jira/c2/rest")));
        assert!(!a.allows(&url("https://api.atlassian.com/ex/jira/c1/%2e%2e/c2/rest")));
        assert!(!a.allows(&url("http://api.atlassian.com/ex/jira/c1/rest")));
        assert!(a.allow_prefix("https://api.atlassian.com/ex").is_err());
        assert!(a.allows_origin("https://acme.atlassian.net"));
    }
}
