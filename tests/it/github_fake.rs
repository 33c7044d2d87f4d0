//! A local fake of GitHub's REST API (2022-11-28) for the adapter tests.
//!
//! A tiny_http server on `127.0.0.1:0`, answering on one thread, stopped on
//! drop. It reproduces the wire shapes of `fixtures/github/*.json`: issue and
//! comment objects with every field, pull requests mixed into issue lists,
//! `Link` pagination whose pages after the first live under
//! `/repositories/{id}/…`, inclusive second-precision `since`, ETags with 304,
//! `x-ratelimit-*` on every response, 400 on conditional headers in a PATCH,
//! 422 `Validation Failed` bodies, auto-created labels. It is stricter than
//! GitHub about headers: no `User-Agent` -> 403, a missing or unknown token ->
//! 401, a missing `Accept`/`X-GitHub-Api-Version` -> 400.
//!
//! It is as unkind as GitHub (`api-facts.md`, "How the real services
//! differ"): bodies saved through the web editor ([`FakeGithub::web_edit`])
//! come back with CRLF; content creation (POSTs of issues and comments) is
//! limited to 80 a minute, answered with a 403 secondary limit and
//! `retry-after` while `x-ratelimit-remaining` is still high, without
//! applying the write; labels match the repository's labels
//! case-insensitively and come back in the repository's spelling; a login
//! that cannot be assigned is a 422; a token without push access
//! ([`READER_TOKEN`]) gets its labels and assignees dropped silently; a
//! body over 65,536 characters is a 422; a renamed repository redirects
//! every `/repos/{old}/…` request (301 for GET, 307 otherwise) to
//! `/repositories/{id}/…`, and a transferred issue answers 301.
//!
//! Relations follow the REST reference (checked 2026 against the
//! `issues/*-sub-issue*` and `issues/*-dependenc*` operations): sub-issues
//! (`GET|POST /repos/{o}/{r}/issues/{n}/sub_issues`, POST body
//! `{"sub_issue_id": <database id>}` -> 201; `DELETE …/{n}/sub_issue`,
//! singular, same body -> 200) and issue dependencies (`GET|POST
//! …/{n}/dependencies/blocked_by`, POST `{"issue_id": <database id>}` ->
//! 201; `GET …/{n}/dependencies/blocking`; `DELETE
//! …/{n}/dependencies/blocked_by/{issue_id}` -> 200). Issue objects carry
//! `sub_issues_summary`, `issue_dependencies_summary` and, on a sub-issue,
//! `parent_issue_url`. Unkind habits: ids are not numbers (an issue's `id`
//! is [`ISSUE_ID_BASE`] + its number); a sub-issue has one parent (a
//! second is a 422), a relation already there is a 422; relation changes
//! do not move `updated_at`; a repository without the features
//! ([`FakeGithub::disable_relations`]) answers the relation endpoints with
//! 404, 410 or 422 and its issue objects lack the summaries.
//!
//! Time: issue and comment timestamps come from a logical clock (each
//! mutation advances it by `tick` seconds, 1 by default) so tests are
//! deterministic. Rate-limit windows, `x-ratelimit-reset` and `Recorded::at`
//! use a [`VirtualClock`] shared with the adapter ([`FakeGithub::backend`]
//! installs it), so a client that waits advances it instead of sleeping.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reposix::tracker::github::GithubBackend;
use reposix::tracker::http::{AllowList, Auth, Clock, HttpClient, Secret};

/// A clock that moves only when someone sleeps on it: tests run rate-limit
/// waits and write pacing in no real time, and can read what was waited.
#[derive(Debug)]
pub struct VirtualClock {
    start: SystemTime,
    state: Mutex<(Duration, Vec<Duration>)>,
}

impl VirtualClock {
    /// A clock starting at the real now.
    pub fn new() -> Arc<VirtualClock> {
        Arc::new(VirtualClock {
            start: SystemTime::now(),
            state: Mutex::new((Duration::ZERO, Vec::new())),
        })
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.state.lock().expect("clock lock").1.clone()
    }

    /// The total slept.
    pub fn slept(&self) -> Duration {
        self.state.lock().expect("clock lock").0
    }

    /// Seconds since the epoch, now.
    pub fn now_secs(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> SystemTime {
        self.start + self.state.lock().expect("clock lock").0
    }
    fn sleep(&self, d: Duration) {
        let mut st = self.state.lock().expect("clock lock");
        st.0 += d;
        st.1.push(d);
    }
}
use serde_json::{json, Value};

/// The token of the user the adapter acts as.
pub const TOKEN: &str = "ghp_reposixTestTokenDoNotLeak0000000001";
/// Its login.
pub const BOT: &str = "reposix-bot";
/// A third party's token.
pub const OTHER_TOKEN: &str = "ghp_thirdPartyTokenDoNotLeak00000000002";
/// A token of a user who can read and open issues but has no push access.
pub const READER_TOKEN: &str = "ghp_readOnlyTokenDoNotLeak000000000003";
/// Its login.
pub const READER: &str = "reader";
/// Where transferred issues go: this repository id…
pub const ARCHIVE_ID: u64 = 2000;
/// …named `octo-org/archive`.
pub const ARCHIVE: &str = "octo-org/archive";
/// The most characters GitHub keeps in a body.
pub const MAX_BODY: usize = 65_536;
/// The third party's login.
pub const OTHER: &str = "octocat";
/// The repository.
pub const OWNER: &str = "octo-org";
/// The repository.
pub const REPO: &str = "widgets";
/// The repository's numeric id (the `/repositories/{id}` in `Link`s).
pub const REPO_ID: u64 = 1000;
/// Where the logical clock starts: 2023-11-14T22:13:20Z.
pub const CLOCK_START: u64 = 1_700_000_000;
/// An issue's database `id` is this plus its number.
pub const ISSUE_ID_BASE: u64 = 5_000_000_000;

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// Path and query, as sent.
    pub url: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The authenticated login, if the token was valid.
    pub user: Option<String>,
    /// The status answered.
    pub status: u16,
    /// `x-ratelimit-reset` answered.
    pub reset: u64,
    /// Wall-clock arrival.
    pub at: SystemTime,
    /// The body answered.
    pub response: Vec<u8>,
}

impl Recorded {
    /// A request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or("")
    }
}

/// An issue (or pull request) to put straight into the fake's state.
#[derive(Clone, Debug)]
pub struct Seed {
    /// Title.
    pub title: String,
    /// Body (`None` is JSON null).
    pub body: Option<String>,
    /// Label names.
    pub labels: Vec<String>,
    /// `open` or `closed`.
    pub state: &'static str,
    /// `completed`, `not_planned`, `duplicate`, `reopened` or none.
    pub state_reason: Option<&'static str>,
    /// Assignee logins.
    pub assignees: Vec<String>,
    /// `updated_at` (and `created_at`) in epoch seconds; default: a tick.
    pub updated_at: Option<u64>,
    /// A pull request instead of an issue.
    pub pull_request: bool,
    /// The author.
    pub user: &'static str,
}

impl Default for Seed {
    fn default() -> Seed {
        Seed {
            title: "seeded".into(),
            body: None,
            labels: Vec::new(),
            state: "open",
            state_reason: None,
            assignees: Vec::new(),
            updated_at: None,
            pull_request: false,
            user: OTHER,
        }
    }
}

struct Issue {
    number: u64,
    title: String,
    body: Option<String>,
    user: String,
    labels: Vec<String>,
    state: String,
    state_reason: Option<String>,
    assignees: Vec<String>,
    created_at: u64,
    updated_at: u64,
    closed_at: Option<u64>,
    closed_by: Option<String>,
    pull_request: bool,
    deleted: bool,
    /// Transferred to [`ARCHIVE`] under this number.
    transferred: Option<u64>,
}

struct Comment {
    id: u64,
    issue: u64,
    user: String,
    body: String,
    created_at: u64,
    updated_at: u64,
}

struct State {
    base: String,
    clock: u64,
    tick: u64,
    issues: Vec<Issue>,
    comments: Vec<Comment>,
    labels: Vec<String>,
    next_comment: u64,
    remaining: u64,
    rate_limited: u32,
    too_many: u32,
    link_base: Option<String>,
    /// After serving issue-list page `.0`, a third party touches issue `.1`.
    touch_after_page: Option<(u64, u64)>,
    requests: Vec<Recorded>,
    vclock: Arc<VirtualClock>,
    /// Content-creation limit: (requests, per seconds).
    content_limit: (usize, u64),
    content_created: VecDeque<u64>,
    /// The next `.0` requests get a 403 secondary limit, `retry-after: .1`.
    secondary_403: (u32, Option<u64>),
    /// The repository's name now, and names it had.
    name: (String, String),
    old_names: Vec<(String, String)>,
    assignable: Vec<String>,
    /// Sub-issues: (parent number, child number).
    sub_issues: Vec<(u64, u64)>,
    /// Dependencies: (blocked number, blocker number).
    blocked_by: Vec<(u64, u64)>,
    /// The relation features are off: their endpoints answer this status.
    relations_off: Option<u16>,
}

/// The running fake.
pub struct FakeGithub {
    base: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FakeGithub {
    /// Start a fake on a free loopback port.
    pub fn start() -> FakeGithub {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("an IP listener has an IP address");
        let base = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State {
            base: base.clone(),
            clock: CLOCK_START,
            tick: 1,
            issues: Vec::new(),
            comments: Vec::new(),
            labels: Vec::new(),
            next_comment: 1,
            remaining: 5000,
            rate_limited: 0,
            too_many: 0,
            link_base: None,
            touch_after_page: None,
            requests: Vec::new(),
            vclock: VirtualClock::new(),
            content_limit: (80, 60),
            content_created: VecDeque::new(),
            secondary_403: (0, None),
            name: (OWNER.to_owned(), REPO.to_owned()),
            old_names: Vec::new(),
            assignable: ["reposix-bot", "octocat", "alice", "bob"]
                .map(str::to_owned)
                .to_vec(),
            sub_issues: Vec::new(),
            blocked_by: Vec::new(),
            relations_off: None,
        }));
        let thread = {
            let server = Arc::clone(&server);
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                // `recv` fails only once `unblock` was called (on drop).
                while let Ok(rq) = server.recv() {
                    serve(&state, rq);
                }
            })
        };
        FakeGithub {
            base,
            state,
            server,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `owner/repo`.
    pub fn address(&self) -> String {
        format!("{OWNER}/{REPO}")
    }

    /// An adapter for this fake, acting as [`BOT`].
    pub fn backend(&self) -> GithubBackend {
        self.backend_with_token(TOKEN)
    }

    /// An adapter for this fake with another token, on the fake's
    /// virtual clock.
    pub fn backend_with_token(&self, token: &str) -> GithubBackend {
        let mut b = GithubBackend::with_api(
            &self.address(),
            &self.base,
            Auth::Bearer(Secret::new(token)),
            loopback(),
        )
        .expect("valid test configuration");
        b.set_clock(self.clock());
        b
    }

    /// The virtual clock the fake and its adapters share.
    pub fn clock(&self) -> Arc<VirtualClock> {
        Arc::clone(&self.lock().vclock)
    }

    /// Save an issue body through the web editor: GitHub stores it with
    /// CRLF line endings (the sync marker's line breaks included).
    pub fn web_edit(&self, number: u64, body: &str) {
        let mut st = self.lock();
        let at = st.tick();
        let issue = st.issue_mut(number).expect("issue exists");
        issue.body = Some(body.replace("\r\n", "\n").replace('\n', "\r\n"));
        issue.updated_at = at;
    }

    /// Save a comment through the web editor (CRLF line endings).
    pub fn web_edit_comment(&self, id: u64, body: &str) {
        let mut st = self.lock();
        let at = st.tick();
        let c = st
            .comments
            .iter_mut()
            .find(|c| c.id == id)
            .expect("comment exists");
        c.body = body.replace("\r\n", "\n").replace('\n', "\r\n");
        c.updated_at = at;
    }

    /// The next `k` requests get a secondary rate limit as a 403 (quota
    /// remaining), with `retry-after` if given.
    pub fn secondary_403_next(&self, k: u32, retry_after: Option<u64>) {
        self.lock().secondary_403 = (k, retry_after);
    }

    /// Create a label in the repository with this spelling.
    pub fn create_label(&self, name: &str) {
        self.lock().ensure_label(name);
    }

    /// Rename the repository (old names redirect).
    pub fn rename_repo(&self, owner: &str, repo: &str) {
        let mut st = self.lock();
        let old = std::mem::replace(&mut st.name, (owner.to_owned(), repo.to_owned()));
        st.old_names.push(old);
    }

    /// Transfer issue `number` to [`ARCHIVE`]; returns its number there.
    pub fn transfer_issue(&self, number: u64) -> u64 {
        let mut st = self.lock();
        let new = 700 + number;
        st.issue_mut(number).expect("issue exists").transferred = Some(new);
        new
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state lock")
    }

    /// Insert an issue or pull request directly; returns its number.
    pub fn seed(&self, seed: Seed) -> u64 {
        let mut st = self.lock();
        let at = match seed.updated_at {
            Some(t) => {
                // Later mutations must not go back in time.
                st.clock = st.clock.max(t);
                t
            }
            None => st.tick(),
        };
        for l in &seed.labels {
            st.ensure_label(l);
        }
        let number = st.issues.len() as u64 + 1;
        let closed = seed.state == "closed";
        st.issues.push(Issue {
            number,
            title: seed.title,
            body: seed.body,
            user: seed.user.to_owned(),
            labels: seed.labels,
            state: seed.state.to_owned(),
            state_reason: seed.state_reason.map(str::to_owned),
            assignees: seed.assignees,
            created_at: at,
            updated_at: at,
            closed_at: closed.then_some(at),
            closed_by: closed.then(|| seed.user.to_owned()),
            pull_request: seed.pull_request,
            deleted: false,
            transferred: None,
        });
        number
    }

    /// Insert `count` comments by [`OTHER`] on issue `number`, one tick apart.
    pub fn seed_comments(&self, number: u64, count: usize) {
        let mut st = self.lock();
        for i in 0..count {
            let at = st.tick();
            let id = st.next_comment_id();
            st.comments.push(Comment {
                id,
                issue: number,
                user: OTHER.into(),
                body: format!("seeded comment {i}"),
                created_at: at,
                updated_at: at,
            });
        }
    }

    /// Mark an issue deleted (GitHub then answers 410).
    pub fn delete_issue(&self, number: u64) {
        let mut st = self.lock();
        if let Some(i) = st.issue_mut(number) {
            i.deleted = true;
        }
    }

    /// Seconds the clock advances per mutation (0: same-second edits).
    pub fn set_tick(&self, secs: u64) {
        self.lock().tick = secs;
    }

    /// Answer the next `k` requests with a primary rate limit (403).
    pub fn rate_limit_next(&self, k: u32) {
        self.lock().rate_limited = k;
    }

    /// Answer the next `k` requests with a secondary rate limit (429).
    pub fn too_many_requests_next(&self, k: u32) {
        self.lock().too_many = k;
    }

    /// Write `Link` URLs with this base instead of the fake's own.
    pub fn set_link_base(&self, base: &str) {
        self.lock().link_base = Some(base.to_owned());
    }

    /// After serving issue-list page `page`, bump issue `number` as a third
    /// party would, so later pages shift.
    pub fn touch_after_page(&self, page: u64, number: u64) {
        self.lock().touch_after_page = Some((page, number));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Forget recorded requests.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// The issue as the fake would serve it (raw body, marker included).
    pub fn issue_json(&self, number: u64) -> Value {
        let st = self.lock();
        let issue = st
            .issues
            .iter()
            .find(|i| i.number == number)
            .expect("issue exists in the fake");
        st.issue_json(issue)
    }

    /// The raw body of a comment.
    pub fn comment_body(&self, id: u64) -> String {
        let st = self.lock();
        st.comments
            .iter()
            .find(|c| c.id == id)
            .expect("comment exists in the fake")
            .body
            .clone()
    }

    /// A repository without sub-issues and issue dependencies: their
    /// endpoints answer `status` (404, 410 or 422), issue objects lack the
    /// summaries.
    pub fn disable_relations(&self, status: u16) {
        self.lock().relations_off = Some(status);
    }

    /// A user makes `child` a sub-issue of `parent` (on the web).
    pub fn add_sub_issue(&self, parent: u64, child: u64) {
        self.lock().sub_issues.push((parent, child));
    }

    /// A user records that `blocker` blocks `blocked` (on the web).
    pub fn add_blocked_by(&self, blocked: u64, blocker: u64) {
        self.lock().blocked_by.push((blocked, blocker));
    }

    /// Sub-issues as (parent, child) numbers.
    pub fn sub_issues(&self) -> Vec<(u64, u64)> {
        self.lock().sub_issues.clone()
    }

    /// Dependencies as (blocked, blocker) numbers.
    pub fn dependencies(&self) -> Vec<(u64, u64)> {
        self.lock().blocked_by.clone()
    }

    /// A client acting as [`OTHER`] over HTTP.
    pub fn third_party(&self) -> ThirdParty {
        let mut http = HttpClient::with_allowlist(
            Auth::Bearer(Secret::new(OTHER_TOKEN)),
            "third-party",
            loopback(),
        )
        .expect("HTTP client");
        http.add_header("Accept", "application/vnd.github+json");
        http.add_header("X-GitHub-Api-Version", "2022-11-28");
        ThirdParty {
            http,
            repo_url: format!("{}/repos/{OWNER}/{REPO}", self.base),
        }
    }
}

/// The loopback-only allowlist.
pub fn loopback() -> AllowList {
    AllowList::parse("http://127.0.0.1,http://localhost").expect("valid allowlist")
}

/// Another GitHub user, editing through the API.
pub struct ThirdParty {
    http: HttpClient,
    repo_url: String,
}

impl ThirdParty {
    fn send(&self, method: reqwest::Method, url: &str, body: &Value, want: u16) -> Value {
        let resp = self
            .http
            .send("third party", method, url, &[], Some(body))
            .expect("third-party request reaches the fake");
        assert_eq!(resp.status, want, "third party: {}", resp.excerpt());
        resp.json("third party").expect("JSON answer")
    }

    /// PATCH an issue with arbitrary fields.
    pub fn patch_issue(&self, number: u64, fields: Value) -> Value {
        let url = format!("{}/issues/{number}", self.repo_url);
        self.send(reqwest::Method::PATCH, &url, &fields, 200)
    }

    /// Change an issue's title.
    pub fn edit_title(&self, number: u64, title: &str) -> Value {
        self.patch_issue(number, json!({ "title": title }))
    }

    /// Comment on an issue.
    pub fn comment(&self, number: u64, body: &str) -> Value {
        let url = format!("{}/issues/{number}/comments", self.repo_url);
        self.send(reqwest::Method::POST, &url, &json!({ "body": body }), 201)
    }

    /// Create an issue.
    pub fn create_issue(&self, fields: Value) -> Value {
        let url = format!("{}/issues", self.repo_url);
        self.send(reqwest::Method::POST, &url, &fields, 201)
    }
}

// ---- the server ----

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: serde_json::to_vec(value).expect("JSON serializes"),
        }
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            &json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }),
        )
    }

    fn validation(resource: &str, field: &str, code: &str) -> Reply {
        Reply::json(
            422,
            &json!({
                "message": "Validation Failed",
                "errors": [{ "resource": resource, "code": code, "field": field }],
                "documentation_url": "https://docs.github.com/rest/issues/issues#update-an-issue",
            }),
        )
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Add an ETag and answer 304 if the client already has it.
    fn with_etag(self, if_none_match: Option<&str>) -> Reply {
        let mut h = DefaultHasher::new();
        self.body.hash(&mut h);
        let etag = format!("W/\"{:016x}\"", h.finish());
        let matches = if_none_match
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        if matches {
            return Reply {
                status: 304,
                headers: vec![("etag".into(), etag)],
                body: Vec::new(),
            };
        }
        self.header("etag", etag)
    }
}

fn serve(state: &Mutex<State>, mut rq: tiny_http::Request) {
    let method = rq.method().to_string().to_ascii_uppercase();
    let url = rq.url().to_owned();
    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let mut raw = Vec::new();
    let read_ok = rq.as_reader().read_to_end(&mut raw).is_ok();
    let body: Option<Value> = if raw.is_empty() {
        None
    } else {
        serde_json::from_slice(&raw).ok()
    };
    let mut st = state.lock().expect("fake state lock");
    let at = st.vclock.now();
    let now = st.vclock.now_secs();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let user = match header("authorization") {
        Some(v) => {
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "));
            match token {
                Some(TOKEN) => Some(BOT.to_owned()),
                Some(OTHER_TOKEN) => Some(OTHER.to_owned()),
                Some(READER_TOKEN) => Some(READER.to_owned()),
                _ => None,
            }
        }
        None => None,
    };
    let mut reset = now + 3600;
    let mut remaining_override = None;
    let reply = if !read_ok || (!raw.is_empty() && body.is_none()) {
        Reply::error(400, "Problems parsing JSON")
    } else if header("user-agent").is_none_or(str::is_empty) {
        Reply::error(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.",
        )
    } else if header("authorization").is_none() {
        Reply::error(401, "Requires authentication")
    } else if user.is_none() {
        Reply::error(401, "Bad credentials")
    } else if header("accept") != Some("application/vnd.github+json") {
        Reply::error(400, "Accept must be application/vnd.github+json")
    } else if header("x-github-api-version") != Some("2022-11-28") {
        Reply::error(
            400,
            &format!(
                "Invalid API version provided: {:?}. Supported: 2022-11-28",
                header("x-github-api-version").unwrap_or("")
            ),
        )
    } else if st.rate_limited > 0 {
        st.rate_limited -= 1;
        reset = now + 1;
        remaining_override = Some(0);
        Reply::json(
            403,
            &json!({
                "message": format!("API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID."),
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            }),
        )
    } else if st.secondary_403.0 > 0 {
        st.secondary_403.0 -= 1;
        let reply = Reply::json(
            403,
            &json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            }),
        );
        match st.secondary_403.1 {
            Some(secs) => reply.header("retry-after", secs.to_string()),
            None => reply,
        }
    } else if let Some(wait) = st.content_refusal(&method, &url) {
        Reply::json(
            403,
            &json!({
                "message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later. If you reach out to GitHub Support for help, please include the request ID.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            }),
        )
        .header("retry-after", wait.to_string())
    } else if st.too_many > 0 {
        st.too_many -= 1;
        Reply::json(
            429,
            &json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            }),
        )
        .header("retry-after", "1")
    } else {
        let user = user.clone().expect("checked above");
        st.route(&method, &url, &headers, body.as_ref(), &user)
    };
    if reply.status != 304 {
        st.remaining = st.remaining.saturating_sub(1);
    }
    let remaining = remaining_override.unwrap_or(st.remaining);
    st.requests.push(Recorded {
        method,
        url,
        headers,
        body,
        user,
        status: reply.status,
        reset,
        at,
        response: reply.body.clone(),
    });
    drop(st);
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    let common = [
        ("content-type", "application/json; charset=utf-8".to_owned()),
        ("x-github-media-type", "github.v3; format=json".to_owned()),
        ("x-github-api-version-selected", "2022-11-28".to_owned()),
        ("x-ratelimit-limit", "5000".to_owned()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-used", (5000 - remaining.min(5000)).to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-resource", "core".to_owned()),
    ];
    let extra = reply.headers.iter().map(|(k, v)| (k.as_str(), v.clone()));
    for (k, v) in common.into_iter().chain(extra) {
        response.add_header(
            tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header"),
        );
    }
    // One write for status, headers and body: tiny_http's own `respond`
    // writes the body separately, and Nagle plus delayed ACKs then cost
    // ~40 ms per keep-alive request.
    let mut wire = Vec::new();
    let version = rq.http_version().clone();
    let request_headers = rq.headers().to_vec();
    if response
        .raw_print(&mut wire, version, &request_headers, false, None)
        .is_ok()
    {
        let mut out = rq.into_writer();
        let _ = out.write_all(&wire).and_then(|()| out.flush());
    }
}

/// Query parameters, decoded, in order.
fn query_pairs(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://fake{url}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn query_get<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `2023-11-14T22:13:20Z` from epoch seconds.
pub fn iso(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += self.tick;
        self.clock
    }

    fn next_comment_id(&mut self) -> u64 {
        let id = 9_000_000_000 + self.next_comment;
        self.next_comment += 1;
        id
    }

    fn ensure_label(&mut self, name: &str) {
        if !self.labels.iter().any(|l| l.eq_ignore_ascii_case(name)) {
            self.labels.push(name.to_owned());
        }
    }

    /// The repository's spelling of a label (GitHub matches names
    /// case-insensitively), creating it if new.
    fn spelling(&mut self, name: &str) -> String {
        self.ensure_label(name);
        self.labels
            .iter()
            .find(|l| l.eq_ignore_ascii_case(name))
            .cloned()
            .expect("just ensured")
    }

    /// For a content-creating request over the limit: the seconds to wait.
    /// Otherwise counts it (a refused request is not counted: not applied).
    fn content_refusal(&mut self, method: &str, url: &str) -> Option<u64> {
        let path = url.split('?').next().unwrap_or("");
        let creates = method == "POST"
            && (path.ends_with("/issues")
                || path.ends_with("/comments")
                || path.ends_with("/sub_issues")
                || path.ends_with("/blocked_by"));
        if !creates {
            return None;
        }
        let now = self.vclock.now_secs();
        let (n, secs) = self.content_limit;
        while self
            .content_created
            .front()
            .is_some_and(|t| t + secs <= now)
        {
            self.content_created.pop_front();
        }
        if self.content_created.len() >= n {
            let oldest = *self.content_created.front().expect("non-empty");
            return Some((oldest + secs).saturating_sub(now).max(1));
        }
        self.content_created.push_back(now);
        None
    }

    fn issue_mut(&mut self, number: u64) -> Option<&mut Issue> {
        self.issues.iter_mut().find(|i| i.number == number)
    }

    fn repo_url(&self) -> String {
        format!("{}/repos/{}/{}", self.base, self.name.0, self.name.1)
    }

    fn repo_json(&self, user: &str) -> Value {
        json!({
            "id": REPO_ID,
            "node_id": "R_kgDOfake",
            "name": self.name.1,
            "full_name": format!("{}/{}", self.name.0, self.name.1),
            "private": false,
            "url": self.repo_url(),
            "permissions": {"admin": false, "maintain": false, "push": user != READER, "triage": user != READER, "pull": true},
        })
    }

    fn user_json(&self, login: &str) -> Value {
        let id = if login == BOT { 1001 } else { 1002 };
        let api = format!("{}/users/{login}", self.base);
        json!({
            "login": login,
            "id": id,
            "node_id": "MDQ6VXNlcjE=",
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
            "gravatar_id": "",
            "url": api,
            "html_url": format!("https://github.com/{login}"),
            "followers_url": format!("{api}/followers"),
            "following_url": format!("{api}/following{{/other_user}}"),
            "gists_url": format!("{api}/gists{{/gist_id}}"),
            "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{api}/subscriptions"),
            "organizations_url": format!("{api}/orgs"),
            "repos_url": format!("{api}/repos"),
            "events_url": format!("{api}/events{{/privacy}}"),
            "received_events_url": format!("{api}/received_events"),
            "type": "User",
            "site_admin": false,
        })
    }

    fn label_json(&self, name: &str) -> Value {
        let index = self
            .labels
            .iter()
            .position(|l| l.eq_ignore_ascii_case(name))
            .unwrap_or(0) as u64;
        json!({
            "id": 2000 + index,
            "node_id": "MDU6TGFiZWwx",
            "url": format!("{}/labels/{}", self.repo_url(), name.replace(' ', "%20")),
            "name": name,
            "color": "ededed",
            "default": false,
            "description": null,
        })
    }

    fn issue_json(&self, i: &Issue) -> Value {
        let url = format!("{}/issues/{}", self.repo_url(), i.number);
        let html = format!("https://github.com/{OWNER}/{REPO}/issues/{}", i.number);
        let comments = self.comments.iter().filter(|c| c.issue == i.number).count();
        let assignees: Vec<Value> = i.assignees.iter().map(|a| self.user_json(a)).collect();
        let mut v = json!({
            "url": url,
            "repository_url": self.repo_url(),
            "labels_url": format!("{url}/labels{{/name}}"),
            "comments_url": format!("{url}/comments"),
            "events_url": format!("{url}/events"),
            "html_url": html,
            "id": ISSUE_ID_BASE + i.number,
            "node_id": format!("I_kwDOfake{}", i.number),
            "number": i.number,
            "title": i.title,
            "user": self.user_json(&i.user),
            "labels": i.labels.iter().map(|l| self.label_json(l)).collect::<Vec<_>>(),
            "state": i.state,
            "locked": false,
            "assignee": assignees.first().cloned().unwrap_or(Value::Null),
            "assignees": assignees,
            "milestone": null,
            "comments": comments,
            "created_at": iso(i.created_at),
            "updated_at": iso(i.updated_at),
            "closed_at": i.closed_at.map(iso),
            "author_association": "MEMBER",
            "active_lock_reason": null,
            "body": i.body,
            "closed_by": i.closed_by.as_deref().map(|u| self.user_json(u)),
            "reactions": {
                "url": format!("{url}/reactions"),
                "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
                "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
            },
            "timeline_url": format!("{url}/timeline"),
            "performed_via_github_app": null,
            "state_reason": i.state_reason,
        });
        if self.relations_off.is_none() && !i.pull_request {
            let open = |n: u64| {
                self.issues
                    .iter()
                    .any(|x| x.number == n && x.state == "open")
            };
            let children: Vec<u64> = self
                .sub_issues
                .iter()
                .filter(|(p, _)| *p == i.number)
                .map(|(_, c)| *c)
                .collect();
            let done = children.iter().filter(|c| !open(**c)).count();
            v["sub_issues_summary"] = json!({
                "total": children.len(),
                "completed": done,
                "percent_completed": (done * 100).checked_div(children.len()).unwrap_or(0),
            });
            let by: Vec<u64> = self
                .blocked_by
                .iter()
                .filter(|(b, _)| *b == i.number)
                .map(|(_, x)| *x)
                .collect();
            let blocking: Vec<u64> = self
                .blocked_by
                .iter()
                .filter(|(_, x)| *x == i.number)
                .map(|(b, _)| *b)
                .collect();
            v["issue_dependencies_summary"] = json!({
                "blocked_by": by.iter().filter(|n| open(**n)).count(),
                "total_blocked_by": by.len(),
                "blocking": blocking.iter().filter(|n| open(**n)).count(),
                "total_blocking": blocking.len(),
            });
            if let Some((p, _)) = self.sub_issues.iter().find(|(_, c)| *c == i.number) {
                v["parent_issue_url"] = json!(format!("{}/issues/{p}", self.repo_url()));
            }
        }
        if i.pull_request {
            let pr = format!("{}/pulls/{}", self.repo_url(), i.number);
            let html_pr = format!("https://github.com/{OWNER}/{REPO}/pull/{}", i.number);
            v["pull_request"] = json!({
                "url": pr,
                "html_url": html_pr,
                "diff_url": format!("{html_pr}.diff"),
                "patch_url": format!("{html_pr}.patch"),
                "merged_at": null,
            });
        }
        v
    }

    fn comment_json(&self, c: &Comment) -> Value {
        json!({
            "url": format!("{}/issues/comments/{}", self.repo_url(), c.id),
            "html_url": format!("https://github.com/{OWNER}/{REPO}/issues/{}#issuecomment-{}", c.issue, c.id),
            "issue_url": format!("{}/issues/{}", self.repo_url(), c.issue),
            "id": c.id,
            "node_id": format!("IC_kwDOfake{}", c.id),
            "user": self.user_json(&c.user),
            "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at),
            "author_association": "MEMBER",
            "body": c.body,
            "reactions": {
                "url": format!("{}/issues/comments/{}/reactions", self.repo_url(), c.id),
                "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
                "confused": 0, "heart": 0, "rocket": 0, "eyes": 0,
            },
            "performed_via_github_app": null,
        })
    }

    /// `Link` for page `page` of `pages`, pointing at `path` on the
    /// `/repositories/{id}` form with the request's other parameters.
    fn link(
        &self,
        path: &str,
        query: &[(String, String)],
        page: u64,
        pages: u64,
    ) -> Option<String> {
        if pages <= 1 {
            return None;
        }
        let base = self.link_base.as_deref().unwrap_or(&self.base);
        let to = |n: u64| {
            let mut u = reqwest::Url::parse(&format!("{base}/repositories/{REPO_ID}{path}"))
                .expect("valid link URL");
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in query.iter().filter(|(k, _)| k != "page") {
                    q.append_pair(k, v);
                }
                q.append_pair("page", &n.to_string());
            }
            u.to_string()
        };
        let mut parts = Vec::new();
        if page > 1 {
            parts.push(format!("<{}>; rel=\"prev\"", to(page - 1)));
        }
        if page < pages {
            parts.push(format!("<{}>; rel=\"next\"", to(page + 1)));
            parts.push(format!("<{}>; rel=\"last\"", to(pages)));
        }
        if page > 1 {
            parts.push(format!("<{}>; rel=\"first\"", to(1)));
        }
        Some(parts.join(", "))
    }

    fn route(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&Value>,
        user: &str,
    ) -> Reply {
        let path = url.split('?').next().unwrap_or("");
        let query = query_pairs(url);
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let if_none_match = headers
            .iter()
            .find(|(k, _)| k == "if-none-match")
            .map(|(_, v)| v.as_str());
        let is = |name: &(String, String), o: &str, r: &str| {
            name.0.eq_ignore_ascii_case(o) && name.1.eq_ignore_ascii_case(r)
        };
        // `/repos/{o}/{r}/rest…` or `/repositories/{id}/rest…`; an old name
        // redirects (301 for GET, 307 for the rest), as GitHub does.
        let rest: &[&str] = match segs.as_slice() {
            ["repos", o, r, rest @ ..] if is(&self.name, o, r) => rest,
            ["repos", o, r, rest @ ..] if self.old_names.iter().any(|n| is(n, o, r)) => {
                let mut location = format!("{}/repositories/{REPO_ID}", self.base);
                for seg in rest {
                    location.push('/');
                    location.push_str(seg);
                }
                if let Some((_, q)) = url.split_once('?') {
                    location.push('?');
                    location.push_str(q);
                }
                let status = if method == "GET" { 301 } else { 307 };
                return Reply::error(status, "Moved Permanently").header("location", location);
            }
            ["repositories", id, "issues", n]
                if *id == ARCHIVE_ID.to_string() && method == "GET" =>
            {
                return match self
                    .issues
                    .iter()
                    .find(|i| i.transferred.is_some_and(|t| t.to_string() == *n))
                {
                    Some(i) => {
                        let mut v = self.issue_json(i);
                        v["number"] = json!(i.transferred);
                        v["repository_url"] = json!(format!("{}/repos/{ARCHIVE}", self.base));
                        v["url"] = json!(format!("{}/repos/{ARCHIVE}/issues/{n}", self.base));
                        Reply::json(200, &v)
                    }
                    None => Reply::error(404, "Not Found"),
                };
            }
            ["repositories", id, rest @ ..] if *id == REPO_ID.to_string() => rest,
            _ => return Reply::error(404, "Not Found"),
        };
        let conditional = headers.iter().any(|(k, _)| {
            matches!(
                k.as_str(),
                "if-match" | "if-none-match" | "if-unmodified-since" | "if-modified-since"
            )
        });
        if method != "GET" && conditional {
            return Reply::error(
                400,
                "Conditional request headers are not allowed in unsafe requests unless supported by the endpoint",
            );
        }
        if let ["issues", n, ..] = rest {
            let moved = n
                .parse::<u64>()
                .ok()
                .and_then(|n| self.issues.iter().find(|i| i.number == n))
                .and_then(|i| i.transferred);
            if let Some(to) = moved {
                let location = format!("{}/repositories/{ARCHIVE_ID}/issues/{to}", self.base);
                let status = if method == "GET" { 301 } else { 307 };
                return Reply::error(status, "Moved Permanently").header("location", location);
            }
        }
        match (method, rest) {
            ("GET", []) => Reply::json(200, &self.repo_json(user)),
            ("GET", ["assignees", login]) => {
                if self
                    .assignable
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(login))
                {
                    Reply {
                        status: 204,
                        headers: Vec::new(),
                        body: Vec::new(),
                    }
                } else {
                    Reply::error(404, "Not Found")
                }
            }
            ("GET", ["issues"]) => self.list_issues(&query).with_etag(if_none_match),
            ("POST", ["issues"]) => self.create_issue(body, user),
            ("GET", ["issues", "comments", id]) => match self.find_comment(id) {
                Some(c) => Reply::json(200, &self.comment_json(c)).with_etag(if_none_match),
                None => Reply::error(404, "Not Found"),
            },
            ("PATCH", ["issues", "comments", id]) => self.edit_comment(id, body),
            ("GET", ["issues", n]) => match self.live_issue(n) {
                Ok(i) => Reply::json(200, &self.issue_json(i)).with_etag(if_none_match),
                Err(r) => r,
            },
            ("PATCH", ["issues", n]) => self.patch_issue(n, body, user),
            ("GET", ["issues", n, "comments"]) => match self.live_issue(n) {
                Ok(i) => {
                    let number = i.number;
                    self.list_comments(number, &query).with_etag(if_none_match)
                }
                Err(r) => r,
            },
            ("POST", ["issues", n, "comments"]) => self.add_comment(n, body, user),
            ("POST", ["issues", n, "labels"]) => self.add_labels(n, body),
            (_, ["issues", n, "sub_issues" | "sub_issue" | "dependencies", ..]) => {
                self.relation(method, n, &rest[2..], body)
            }
            _ => Reply::error(404, "Not Found"),
        }
    }

    /// The sub-issue and dependency endpoints of issue `n`.
    fn relation(&mut self, method: &str, n: &str, rest: &[&str], body: Option<&Value>) -> Reply {
        if let Some(status) = self.relations_off {
            return Reply::error(status, "Not Found");
        }
        let number = match self.live_issue(n) {
            Ok(i) => i.number,
            Err(r) => return r,
        };
        let list = |st: &State, numbers: Vec<u64>| {
            let items: Vec<Value> = numbers
                .iter()
                .filter_map(|m| st.issues.iter().find(|i| i.number == *m))
                .map(|i| st.issue_json(i))
                .collect();
            Reply::json(200, &json!(items))
        };
        let by_id = |st: &State, field: &str| -> Result<u64, Reply> {
            let id = body
                .and_then(|b| b.get(field))
                .and_then(Value::as_u64)
                .ok_or_else(|| Reply::validation("Issue", field, "missing_field"))?;
            st.issues
                .iter()
                .find(|i| ISSUE_ID_BASE + i.number == id && !i.deleted && !i.pull_request)
                .map(|i| i.number)
                .ok_or_else(|| Reply::validation("Issue", field, "invalid"))
        };
        match (method, rest) {
            ("GET", ["sub_issues"]) => {
                let children = self
                    .sub_issues
                    .iter()
                    .filter(|(p, _)| *p == number)
                    .map(|(_, c)| *c)
                    .collect();
                list(self, children)
            }
            ("POST", ["sub_issues"]) => {
                let child = match by_id(self, "sub_issue_id") {
                    Ok(c) => c,
                    Err(r) => return r,
                };
                let replace = body
                    .and_then(|b| b.get("replace_parent"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if child == number {
                    return Reply::validation("Issue", "sub_issue_id", "invalid");
                }
                if let Some(pos) = self.sub_issues.iter().position(|(_, c)| *c == child) {
                    // One parent per sub-issue (this one included).
                    if !replace || self.sub_issues[pos].0 == number {
                        return Reply::validation("Issue", "sub_issue_id", "already_exists");
                    }
                    self.sub_issues.remove(pos);
                }
                self.sub_issues.push((number, child));
                let issue = self
                    .issues
                    .iter()
                    .find(|i| i.number == number)
                    .expect("live");
                Reply::json(201, &self.issue_json(issue))
            }
            ("DELETE", ["sub_issue"]) => {
                let child = match by_id(self, "sub_issue_id") {
                    Ok(c) => c,
                    Err(r) => return r,
                };
                let Some(pos) = self.sub_issues.iter().position(|x| *x == (number, child)) else {
                    return Reply::error(404, "Not Found");
                };
                self.sub_issues.remove(pos);
                let issue = self
                    .issues
                    .iter()
                    .find(|i| i.number == child)
                    .expect("live");
                Reply::json(200, &self.issue_json(issue))
            }
            ("GET", ["dependencies", "blocked_by"]) => {
                let blockers = self
                    .blocked_by
                    .iter()
                    .filter(|(b, _)| *b == number)
                    .map(|(_, x)| *x)
                    .collect();
                list(self, blockers)
            }
            ("GET", ["dependencies", "blocking"]) => {
                let blocked = self
                    .blocked_by
                    .iter()
                    .filter(|(_, x)| *x == number)
                    .map(|(b, _)| *b)
                    .collect();
                list(self, blocked)
            }
            ("POST", ["dependencies", "blocked_by"]) => {
                let blocker = match by_id(self, "issue_id") {
                    Ok(x) => x,
                    Err(r) => return r,
                };
                if blocker == number || self.blocked_by.contains(&(number, blocker)) {
                    return Reply::validation("Issue", "issue_id", "already_exists");
                }
                self.blocked_by.push((number, blocker));
                let issue = self
                    .issues
                    .iter()
                    .find(|i| i.number == blocker)
                    .expect("live");
                Reply::json(201, &self.issue_json(issue))
            }
            ("DELETE", ["dependencies", "blocked_by", id]) => {
                let blocker = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|id| id.checked_sub(ISSUE_ID_BASE));
                let Some(pos) =
                    blocker.and_then(|x| self.blocked_by.iter().position(|d| *d == (number, x)))
                else {
                    return Reply::error(404, "Not Found");
                };
                let (_, x) = self.blocked_by.remove(pos);
                let issue = self.issues.iter().find(|i| i.number == x).expect("exists");
                Reply::json(200, &self.issue_json(issue))
            }
            _ => Reply::error(404, "Not Found"),
        }
    }

    fn live_issue(&self, n: &str) -> Result<&Issue, Reply> {
        let issue = n
            .parse::<u64>()
            .ok()
            .and_then(|n| self.issues.iter().find(|i| i.number == n));
        match issue {
            None => Err(Reply::error(404, "Not Found")),
            Some(i) if i.deleted => Err(Reply::error(410, "This issue was deleted")),
            Some(i) => Ok(i),
        }
    }

    fn find_comment(&self, id: &str) -> Option<&Comment> {
        let id = id.parse::<u64>().ok()?;
        self.comments.iter().find(|c| c.id == id)
    }

    fn paging(query: &[(String, String)]) -> Result<(u64, u64), Reply> {
        let per_page = match query_get(query, "per_page") {
            None => 30,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| Reply::error(400, "per_page"))?
                .clamp(1, 100),
        };
        let page = match query_get(query, "page") {
            None => 1,
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| Reply::error(400, "page"))?
                .max(1),
        };
        Ok((per_page, page))
    }

    fn since(query: &[(String, String)]) -> Result<Option<u64>, Reply> {
        match query_get(query, "since") {
            None => Ok(None),
            // Second precision: a fractional `since` matches its whole second.
            Some(v) => millis(v)
                .map(|ms| Some(ms / 1000))
                .ok_or_else(|| Reply::validation("Issue", "since", "invalid")),
        }
    }

    fn list_issues(&mut self, query: &[(String, String)]) -> Reply {
        let (per_page, page) = match State::paging(query) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let since = match State::since(query) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let state = query_get(query, "state").unwrap_or("open");
        if !matches!(state, "open" | "closed" | "all") {
            return Reply::validation("Issue", "state", "invalid");
        }
        let sort = query_get(query, "sort").unwrap_or("created");
        let desc = query_get(query, "direction").unwrap_or("desc") == "desc";
        let mut items: Vec<&Issue> = self
            .issues
            .iter()
            .filter(|i| !i.deleted && i.transferred.is_none())
            .filter(|i| state == "all" || i.state == state)
            .filter(|i| since.is_none_or(|s| i.updated_at >= s))
            .collect();
        items.sort_by_key(|i| {
            let key = if sort == "updated" {
                i.updated_at
            } else {
                i.created_at
            };
            (key, i.number)
        });
        if desc {
            items.reverse();
        }
        let pages = (items.len() as u64).div_ceil(per_page).max(1);
        let start = ((page - 1) * per_page) as usize;
        let chunk: Vec<Value> = items
            .iter()
            .skip(start)
            .take(per_page as usize)
            .map(|i| self.issue_json(i))
            .collect();
        let link = self.link("/issues", query, page, pages);
        if let Some((after, number)) = self.touch_after_page {
            if after == page {
                self.touch_after_page = None;
                let at = self.tick();
                if let Some(i) = self.issue_mut(number) {
                    i.title.push_str(" (touched)");
                    i.updated_at = at;
                }
            }
        }
        let mut reply = Reply::json(200, &Value::Array(chunk));
        if let Some(l) = link {
            reply = reply.header("link", l);
        }
        reply
    }

    fn list_comments(&self, number: u64, query: &[(String, String)]) -> Reply {
        let (per_page, page) = match State::paging(query) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let since = match State::since(query) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let items: Vec<&Comment> = self
            .comments
            .iter()
            .filter(|c| c.issue == number)
            .filter(|c| since.is_none_or(|s| c.updated_at >= s))
            .collect();
        let pages = (items.len() as u64).div_ceil(per_page).max(1);
        let start = ((page - 1) * per_page) as usize;
        let chunk: Vec<Value> = items
            .iter()
            .skip(start)
            .take(per_page as usize)
            .map(|c| self.comment_json(c))
            .collect();
        let mut reply = Reply::json(200, &Value::Array(chunk));
        if let Some(l) = self.link(&format!("/issues/{number}/comments"), query, page, pages) {
            reply = reply.header("link", l);
        }
        reply
    }

    fn create_issue(&mut self, body: Option<&Value>, user: &str) -> Reply {
        let Some(body) = body.and_then(Value::as_object) else {
            return Reply::error(400, "Problems parsing JSON");
        };
        let title = match body.get("title").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => return Reply::validation("Issue", "title", "missing_field"),
        };
        let text = match body.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() > MAX_BODY => return body_too_long(),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Reply::validation("Issue", "body", "invalid"),
        };
        let labels = match label_names(body.get("labels")) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let assignees = match string_list(body.get("assignees"), "assignees") {
            Ok(a) => a,
            Err(r) => return r,
        };
        if let Err(r) = self.check_assignable(&assignees) {
            return r;
        }
        // Without push access GitHub drops labels and assignees silently.
        let (labels, assignees) = if user == READER {
            (Vec::new(), Vec::new())
        } else {
            (labels.iter().map(|l| self.spelling(l)).collect(), assignees)
        };
        // Create takes no `state`: GitHub ignores it, and so does the fake.
        let number = self.seed_raw(title, text, labels, assignees, user);
        let issue = self
            .issues
            .iter()
            .find(|i| i.number == number)
            .expect("just created");
        let location = format!("{}/issues/{number}", self.repo_url());
        Reply::json(201, &self.issue_json(issue))
            .with_etag(None)
            .header("location", location)
    }

    fn check_assignable(&self, logins: &[String]) -> Result<(), Reply> {
        if logins
            .iter()
            .all(|l| self.assignable.iter().any(|a| a.eq_ignore_ascii_case(l)))
        {
            Ok(())
        } else {
            Err(Reply::validation("Issue", "assignees", "invalid"))
        }
    }

    fn seed_raw(
        &mut self,
        title: String,
        body: Option<String>,
        labels: Vec<String>,
        assignees: Vec<String>,
        user: &str,
    ) -> u64 {
        let at = self.tick();
        for l in &labels {
            self.ensure_label(l);
        }
        let number = self.issues.len() as u64 + 1;
        self.issues.push(Issue {
            number,
            title,
            body,
            user: user.to_owned(),
            labels,
            state: "open".into(),
            state_reason: None,
            assignees,
            created_at: at,
            updated_at: at,
            closed_at: None,
            closed_by: None,
            pull_request: false,
            deleted: false,
            transferred: None,
        });
        number
    }

    fn patch_issue(&mut self, n: &str, body: Option<&Value>, user: &str) -> Reply {
        let number = match self.live_issue(n) {
            Ok(i) => i.number,
            Err(r) => return r,
        };
        let Some(body) = body.and_then(Value::as_object) else {
            return Reply::error(400, "Problems parsing JSON");
        };
        let title = match body.get("title") {
            None => None,
            Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
            Some(_) => return Reply::validation("Issue", "title", "missing_field"),
        };
        let text = match body.get("body") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.chars().count() > MAX_BODY => return body_too_long(),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => return Reply::validation("Issue", "body", "invalid"),
        };
        let state = match body.get("state") {
            None => None,
            Some(Value::String(s)) if s == "open" || s == "closed" => Some(s.clone()),
            Some(_) => return Reply::validation("Issue", "state", "invalid"),
        };
        let reason = match body.get("state_reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s))
                if matches!(
                    s.as_str(),
                    "completed" | "not_planned" | "duplicate" | "reopened"
                ) =>
            {
                Some(s.clone())
            }
            Some(_) => return Reply::validation("Issue", "state_reason", "invalid"),
        };
        let labels = match body.get("labels") {
            None => None,
            v => match label_names(v) {
                Ok(l) => Some(l),
                Err(r) => return r,
            },
        };
        let assignees = match body.get("assignees") {
            None => None,
            v => match string_list(v, "assignees") {
                Ok(a) => Some(a),
                Err(r) => return r,
            },
        };
        if let Err(r) = self.check_assignable(assignees.as_deref().unwrap_or(&[])) {
            return r;
        }
        let (labels, assignees) = if user == READER {
            (None, None)
        } else {
            (
                labels.map(|ls| ls.iter().map(|l| self.spelling(l)).collect::<Vec<_>>()),
                assignees,
            )
        };
        let at = self.tick();
        let issue = self.issue_mut(number).expect("checked live above");
        if let Some(t) = title {
            issue.title = t;
        }
        if let Some(b) = text {
            issue.body = b;
        }
        match state.as_deref() {
            Some("closed") => {
                if issue.state != "closed" {
                    issue.closed_at = Some(at);
                    issue.closed_by = Some(user.to_owned());
                }
                issue.state = "closed".into();
                issue.state_reason = Some(reason.unwrap_or_else(|| "completed".into()));
            }
            Some(_) => {
                if issue.state == "closed" {
                    issue.state_reason = Some("reopened".into());
                }
                issue.state = "open".into();
                issue.closed_at = None;
                issue.closed_by = None;
            }
            None => {
                if let (Some(r), "closed") = (reason, issue.state.as_str()) {
                    issue.state_reason = Some(r);
                }
            }
        }
        if let Some(ls) = labels {
            issue.labels = ls;
        }
        if let Some(a) = assignees {
            issue.assignees = a;
        }
        issue.updated_at = at;
        let issue = self
            .issues
            .iter()
            .find(|i| i.number == number)
            .expect("exists");
        Reply::json(200, &self.issue_json(issue)).with_etag(None)
    }

    fn add_comment(&mut self, n: &str, body: Option<&Value>, user: &str) -> Reply {
        let number = match self.live_issue(n) {
            Ok(i) => i.number,
            Err(r) => return r,
        };
        let text = match body.and_then(|b| b.get("body")).and_then(Value::as_str) {
            Some(t) if t.chars().count() > MAX_BODY => return body_too_long(),
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => return Reply::validation("IssueComment", "body", "missing_field"),
        };
        let at = self.tick();
        let id = self.next_comment_id();
        self.comments.push(Comment {
            id,
            issue: number,
            user: user.to_owned(),
            body: text,
            created_at: at,
            updated_at: at,
        });
        // A comment bumps the issue's updated_at.
        if let Some(i) = self.issue_mut(number) {
            i.updated_at = at;
        }
        let c = self.comments.last().expect("just pushed");
        let location = format!("{}/issues/comments/{id}", self.repo_url());
        Reply::json(201, &self.comment_json(c)).header("location", location)
    }

    fn edit_comment(&mut self, id: &str, body: Option<&Value>) -> Reply {
        let Some(id) = self.find_comment(id).map(|c| c.id) else {
            return Reply::error(404, "Not Found");
        };
        let text = match body.and_then(|b| b.get("body")).and_then(Value::as_str) {
            Some(t) if t.chars().count() > MAX_BODY => return body_too_long(),
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => return Reply::validation("IssueComment", "body", "missing_field"),
        };
        let at = self.tick();
        let c = self
            .comments
            .iter_mut()
            .find(|c| c.id == id)
            .expect("found above");
        c.body = text;
        c.updated_at = at;
        let c = self.comments.iter().find(|c| c.id == id).expect("exists");
        Reply::json(200, &self.comment_json(c))
    }

    fn add_labels(&mut self, n: &str, body: Option<&Value>) -> Reply {
        let number = match self.live_issue(n) {
            Ok(i) => i.number,
            Err(r) => return r,
        };
        let names = match label_names(body.and_then(|b| b.get("labels"))) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let names: Vec<String> = names.iter().map(|l| self.spelling(l)).collect();
        let at = self.tick();
        let issue = self.issue_mut(number).expect("checked live above");
        for l in names {
            if !issue.labels.iter().any(|x| x.eq_ignore_ascii_case(&l)) {
                issue.labels.push(l);
            }
        }
        issue.updated_at = at;
        let names = issue.labels.clone();
        let labels: Vec<Value> = names.iter().map(|l| self.label_json(l)).collect();
        Reply::json(200, &Value::Array(labels))
    }
}

fn body_too_long() -> Reply {
    Reply::json(
        422,
        &json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Issue", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}],
            "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
        }),
    )
}

/// Label names from `["a", {"name": "b"}]`.
fn label_names(v: Option<&Value>) -> Result<Vec<String>, Reply> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let Some(items) = v.as_array() else {
        return Err(Reply::validation("Issue", "labels", "invalid"));
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let name = match item {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.get("name").and_then(Value::as_str) {
                Some(n) => n.to_owned(),
                None => return Err(Reply::validation("Label", "name", "missing_field")),
            },
            _ => return Err(Reply::validation("Issue", "labels", "invalid")),
        };
        if name.is_empty() {
            return Err(Reply::validation("Label", "name", "missing_field"));
        }
        if !out.iter().any(|x| x.eq_ignore_ascii_case(&name)) {
            out.push(name);
        }
    }
    Ok(out)
}

fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, Reply> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Reply::validation("Issue", field, "invalid"))
            })
            .collect(),
        Some(_) => Err(Reply::validation("Issue", field, "invalid")),
    }
}

/// Milliseconds since the epoch of a GitHub timestamp (none before 1970).
fn millis(s: &str) -> Option<u64> {
    reposix::time::parse_millis(s).and_then(|ms| u64::try_from(ms).ok())
}

#[test]
fn iso_formats_known_instants() {
    assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    assert_eq!(iso(1_507_651_200), "2017-10-10T16:00:00Z");
    assert_eq!(iso(951_868_799), "2000-02-29T23:59:59Z");
    assert_eq!(iso(CLOCK_START), "2023-11-14T22:13:20Z");
    for secs in [0, 59, 86_399, 951_868_800, CLOCK_START, 4_102_444_800] {
        assert_eq!(millis(&iso(secs)), Some(secs * 1000), "{secs}");
    }
}
