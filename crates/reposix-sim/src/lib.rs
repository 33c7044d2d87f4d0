//! A tracker simulator: an in-memory HTTP server wire-compatible with
//! reposix-sim 0.14, plus a comments extension and fault injection.
//!
//! It plays a third-party tracker in tests and demos, so it knows nothing
//! about events or refs and depends on nothing of `reposix`: clients talk
//! to it over HTTP only. The `reposix-sim` binary runs one in the
//! foreground; `reposix sim` does the same from the main command line.
//!
//! Guarantees:
//! - it listens on loopback only ([`start`] refuses anything else) and
//!   [`start`] returns once the listener is bound;
//! - records are flat JSON as reposix-sim writes them, fields in its order
//!   (`id, title, status, assignee, labels, created_at, updated_at,
//!   version, body`; `assignee` omitted when null; timestamps RFC 3339,
//!   second precision, `Z`). Same-second writes share an `updated_at` on
//!   purpose: clients must cope with an exclusive, second-granular `since`;
//! - seeded issues are stamped `2026-04-13T00:00:00Z`, version 1, as
//!   reposix-sim 0.14 stamps them (any timestamps or version in the seed
//!   file are ignored, as there);
//! - timestamps never go backwards, even if the system clock does;
//! - ids are `max(existing) + 1` like reposix-sim, so deleting the newest
//!   issue makes its id come back (clients must not treat ids as forever);
//! - writes are serialized (one lock), so `If-Match` checks are atomic.
//!
//! Routes (`{p}` = `/projects/{slug}`):
//! `GET /healthz`; `GET|POST {p}/issues`; `GET|PATCH|DELETE {p}/issues/{id}`;
//! `GET {p}/issues/{id}/transitions`; and, unless comments are turned off
//! (reposix-sim 0.14 has none): `GET|POST {p}/issues/{id}/comments`,
//! `GET {p}/comments[?since=]` (every comment of the project) and
//! `PATCH|DELETE {p}/comments/{cid}`. Adding, editing or deleting a comment
//! bumps the issue's `version` and `updated_at`, as GitHub and JIRA bump
//! `updated` on a comment: an importer that lists issues by `since` or
//! compares versions sees the change.
//!
//! Wire habits of reposix-sim 0.14 reproduced here (each one bit or could
//! bite a client): `If-Match` is the quoted version and nothing else (`*`
//! and weak tags get 409); `DELETE` ignores `If-Match`; a `POST` whose
//! `Content-Type` is not JSON gets 415, one that is JSON of the wrong shape
//! 422; a `PATCH` with no `Content-Type` at all is read as an empty patch
//! (its body is ignored, the version still moves); the 429 body carries
//! `retry_after_secs`; bodies over 1 MiB get 413 `body_too_large` before
//! anything else looks at the request; `/healthz` is rate-limited too. The
//! README lists what still differs, and why.
//!
//! Fault injection ([`SimConfig`]): a per-agent token bucket answering 429
//! with `Retry-After` (whole seconds, at least 1), and every n-th request
//! answering 500. Both are decided before a request touches any state, so
//! a refused request never has a side effect; injected 500s spare
//! `/healthz`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

mod time;

/// The statuses reposix-sim knows, in workflow order.
pub const STATUSES: [&str; 5] = ["open", "in_progress", "in_review", "done", "wont_fix"];

/// Request bodies larger than this answer 413 by default (reposix-sim
/// 0.14's limit).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// reposix-sim 0.14's built-in seed (project `demo`, six issues, hostile
/// bodies on purpose), served when no seed file is given.
pub const DEMO_SEED: &str = include_str!("../seed.json");

/// When seeded issues were created and last updated, as reposix-sim 0.14
/// stamps every seeded row: `2026-04-13T00:00:00Z`.
pub const SEED_TIME: i64 = 1_776_038_400;

/// How a simulator starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; must be a loopback address (port 0 picks one).
    pub bind: SocketAddr,
    /// A seed in the shape of reposix-sim's seed file (one project and its
    /// issues); `None` starts with [`DEMO_SEED`] if `builtin_seed`, else
    /// empty.
    pub seed_file: Option<PathBuf>,
    /// Without a seed file, start with [`DEMO_SEED`] (reposix-sim's
    /// default) instead of no issues.
    pub builtin_seed: bool,
    /// Persist the whole state to this JSON file after every write, and
    /// load it at start when it exists (then the seed is not used).
    pub state_file: Option<PathBuf>,
    /// Requests per second per `X-Reposix-Agent` (burst of the same size);
    /// 0 = unlimited.
    pub rate_limit: u32,
    /// Answer every n-th request with 500 `internal`; 0 = never.
    pub fail_every_n: u64,
    /// Serve the comments extension (false = answer 404 there, like
    /// reposix-sim 0.14).
    pub accept_comments: bool,
    /// Largest request body accepted (413 above).
    pub body_limit: usize,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed_file: None,
            builtin_seed: false,
            state_file: None,
            rate_limit: 100,
            fail_every_n: 0,
            accept_comments: true,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// Errors starting a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The bind address is not loopback.
    #[error("refusing to listen on {addr}: the simulator binds loopback addresses only")]
    NotLoopback {
        /// The refused address.
        addr: SocketAddr,
    },
    /// Binding failed.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server could not start on the bound socket.
    #[error("starting the HTTP server on {addr}: {why}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// Why.
        why: String,
    },
    /// A seed or state file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A seed or state file is not valid JSON of the expected shape.
    #[error("decoding {path}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A seed or state file decodes but holds invalid data.
    #[error("{path}: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// A running simulator. Dropping it stops the server and joins its threads.
#[must_use = "the simulator stops when its handle is dropped"]
pub struct SimHandle {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The backend address of a project: `http://host:port/<slug>`.
    pub fn project_url(&self, slug: &str) -> String {
        format!("{}/{slug}", self.base_url())
    }

    /// Serve until the process ends (the CLI's foreground mode).
    pub fn wait(mut self) {
        for w in std::mem::take(&mut self.workers) {
            let _ = w.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // Each unblock wakes one worker out of `recv`; it is queued, so a
        // worker busy with a request sees it on its next `recv`.
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

const WORKERS: usize = 4;

/// Start a simulator; returns once it accepts connections.
pub fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    if !config.bind.ip().is_loopback() {
        return Err(SimError::NotLoopback { addr: config.bind });
    }
    let state = initial_state(&config)?;
    let listener = TcpListener::bind(config.bind).map_err(|source| SimError::Bind {
        addr: config.bind,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.bind,
        source,
    })?;
    let server = tiny_http::Server::from_listener(listener, None).map_err(|e| SimError::Serve {
        addr,
        why: e.to_string(),
    })?;
    let server = Arc::new(server);
    // New writes never get a timestamp older than loaded data, even if the
    // system clock is behind it.
    let clock = state
        .projects
        .values()
        .flat_map(|p| p.issues.values().map(|i| i.updated_at.max(i.created_at)))
        .max()
        .unwrap_or(0);
    let shared = Arc::new(Shared {
        config,
        inner: Mutex::new(Inner {
            state,
            clock,
            requests: 0,
            buckets: HashMap::new(),
        }),
    });
    let workers = (0..WORKERS)
        .map(|_| {
            let server = Arc::clone(&server);
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                while let Ok(mut request) = server.recv() {
                    let reply = shared.handle(&mut request);
                    let _ = request.respond(reply.into_response());
                }
            })
        })
        .collect();
    Ok(SimHandle {
        addr,
        server,
        workers,
    })
}

// ---------------------------------------------------------------- state

/// Everything the simulator stores (also the `--state-file` format).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    /// Format of the state file.
    schema: u32,
    projects: BTreeMap<String, Project>,
}

const STATE_SCHEMA: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Project {
    issues: BTreeMap<u64, Issue>,
    comments: BTreeMap<u64, Comment>,
    /// Comment ids are never reused (unlike issue ids).
    next_comment: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Issue {
    id: u64,
    title: String,
    status: String,
    assignee: Option<String>,
    labels: Vec<String>,
    created_at: i64,
    updated_at: i64,
    version: u64,
    body: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Comment {
    id: u64,
    issue: u64,
    author: String,
    body: String,
    created_at: i64,
    updated_at: i64,
}

/// An issue on the wire: reposix-sim's fields, in its order.
#[derive(Serialize)]
struct WireIssue<'a> {
    id: u64,
    title: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee: Option<&'a str>,
    labels: &'a [String],
    created_at: String,
    updated_at: String,
    version: u64,
    body: &'a str,
}

impl Issue {
    /// The wire record.
    fn wire(&self) -> WireIssue<'_> {
        WireIssue {
            id: self.id,
            title: &self.title,
            status: &self.status,
            assignee: self.assignee.as_deref(),
            labels: &self.labels,
            created_at: time::format_secs(self.created_at),
            updated_at: time::format_secs(self.updated_at),
            version: self.version,
            body: &self.body,
        }
    }
}

/// A comment on the wire (our extension; `issue_id` only in the
/// project-wide listing).
#[derive(Serialize)]
struct WireComment<'a> {
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    issue_id: Option<u64>,
    author: &'a str,
    body: &'a str,
    created_at: String,
    updated_at: String,
}

impl Comment {
    fn wire(&self, with_issue: bool) -> WireComment<'_> {
        WireComment {
            id: self.id,
            issue_id: with_issue.then_some(self.issue),
            author: &self.author,
            body: &self.body,
            created_at: time::format_secs(self.created_at),
            updated_at: time::format_secs(self.updated_at),
        }
    }
}

#[derive(Deserialize)]
struct SeedFile {
    project: SeedProject,
    #[serde(default)]
    issues: Vec<SeedIssue>,
}

#[derive(Deserialize)]
struct SeedProject {
    slug: String,
}

/// reposix-sim's seed entry: the writable fields only. Unknown keys
/// (`version`, `created_at`, …) are ignored, as reposix-sim ignores them.
#[derive(Deserialize)]
struct SeedIssue {
    id: u64,
    title: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    body: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, SimError> {
    let bytes = std::fs::read(path).map_err(|source| SimError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| SimError::Decode {
        path: path.to_owned(),
        source,
    })
}

fn initial_state(config: &SimConfig) -> Result<State, SimError> {
    if let Some(path) = &config.state_file {
        if path.exists() {
            let state: State = read_json(path)?;
            if state.schema != STATE_SCHEMA {
                return Err(SimError::Invalid {
                    path: path.clone(),
                    why: format!(
                        "state file schema {} (this build reads {STATE_SCHEMA})",
                        state.schema
                    ),
                });
            }
            return Ok(state);
        }
    }
    let mut state = State {
        schema: STATE_SCHEMA,
        projects: BTreeMap::new(),
    };
    let (seed, path): (SeedFile, PathBuf) = match &config.seed_file {
        Some(path) => (read_json(path)?, path.clone()),
        None if config.builtin_seed => {
            let path = PathBuf::from("<built-in demo seed>");
            let seed = serde_json::from_str(DEMO_SEED).map_err(|source| SimError::Decode {
                path: path.clone(),
                source,
            })?;
            (seed, path)
        }
        None => return Ok(state),
    };
    let invalid = |why: String| SimError::Invalid {
        path: path.clone(),
        why,
    };
    if !valid_slug(&seed.project.slug) {
        return Err(invalid(format!("bad project slug {:?}", seed.project.slug)));
    }
    let mut project = Project {
        next_comment: 1,
        ..Project::default()
    };
    for s in seed.issues {
        let status = s.status.unwrap_or_else(|| "open".into());
        if !STATUSES.contains(&status.as_str()) {
            return Err(invalid(format!(
                "issue {}: unknown status {status:?}",
                s.id
            )));
        }
        if s.id == 0 || project.issues.contains_key(&s.id) {
            return Err(invalid(format!("issue id {} is zero or repeated", s.id)));
        }
        let issue = Issue {
            id: s.id,
            title: s.title,
            status,
            assignee: s.assignee,
            labels: s.labels,
            created_at: SEED_TIME,
            updated_at: SEED_TIME,
            version: 1,
            body: s.body,
        };
        project.issues.insert(issue.id, issue);
    }
    state.projects.insert(seed.project.slug, project);
    Ok(state)
}

fn valid_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s != "."
        && s != ".."
}

// ---------------------------------------------------------------- serving

struct Shared {
    config: SimConfig,
    inner: Mutex<Inner>,
}

struct Inner {
    state: State,
    /// The last timestamp handed out, so time never goes backwards.
    clock: i64,
    /// Requests seen (for `fail_every_n`).
    requests: u64,
    buckets: HashMap<String, Bucket>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Inner {
    fn now(&mut self) -> i64 {
        self.clock = self.clock.max(time::now_secs());
        self.clock
    }

    /// Take a token for `agent`, or say how many seconds until one exists.
    fn take_token(&mut self, agent: &str, rate: u32) -> Result<(), u64> {
        let rate = f64::from(rate);
        let now = Instant::now();
        let bucket = self.buckets.entry(agent.to_owned()).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // Whole seconds (HTTP's unit), never 0.
            Err((((1.0 - bucket.tokens) / rate).ceil() as u64).max(1))
        }
    }
}

/// A reply before it becomes a tiny_http response.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &impl Serialize) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: serde_json::to_vec(value)
                .expect("wire values are strings, numbers and lists: they always serialize"),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
        }
    }

    fn error(status: u16, kind: &str, message: impl Into<String>, details: Value) -> Reply {
        Reply::json(
            status,
            &json!({"error": kind, "message": message.into(), "details": details}),
        )
    }

    fn not_found(what: impl Into<String>, details: Value) -> Reply {
        Reply::error(404, "not_found", what, details)
    }

    fn invalid(field: &str, message: impl Into<String>) -> Reply {
        Reply::error(400, "invalid_body", message, json!({ "field": field }))
    }

    fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }

    fn into_response(self) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
        let mut r = tiny_http::Response::from_data(self.body)
            .with_status_code(self.status)
            // Always Content-Length, never chunked: simpler clients.
            .with_chunked_threshold(usize::MAX);
        let ct = tiny_http::Header::from_bytes(&b"Content-Type"[..], self.content_type.as_bytes())
            .expect("static header is valid");
        r.add_header(ct);
        for (name, value) in self.headers {
            if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                r.add_header(h);
            }
        }
        r
    }
}

/// A parsed request, with its body read (bounded).
struct Call {
    method: tiny_http::Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    agent: String,
    if_match: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// What a request's `Content-Type` says about its body.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyType {
    Absent,
    Json,
    Other,
}

impl Call {
    fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `application/json` or `application/*+json`, parameters allowed.
    fn body_type(&self) -> BodyType {
        let Some(ct) = &self.content_type else {
            return BodyType::Absent;
        };
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let json = mime == "application/json"
            || (mime.starts_with("application/") && mime.ends_with("+json"));
        if json {
            BodyType::Json
        } else {
            BodyType::Other
        }
    }

    /// The body as a JSON object, read as reposix-sim's extractor reads
    /// it: 415 unless the `Content-Type` is JSON, 400 if the bytes are not
    /// JSON, 422 if they are JSON but not an object.
    fn json_object(&self) -> Result<Map<String, Value>, Reply> {
        if self.body_type() != BodyType::Json {
            return Err(Reply::error(
                415,
                "unsupported_media_type",
                "expected a request with `Content-Type: application/json`",
                json!({"content_type": self.content_type}),
            ));
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Reply::error(
                422,
                "invalid_body",
                "the body must be a JSON object",
                json!({"field": ""}),
            )),
            Err(e) => Err(Reply::invalid("", format!("the body is not JSON: {e}"))),
        }
    }
}

fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_owned())
}

/// A resource the sim serves (the path without the method).
enum Route<'a> {
    Issues(&'a str),
    Issue(&'a str, u64),
    Transitions(&'a str, u64),
    IssueComments(&'a str, u64),
    Comments(&'a str),
    Comment(&'a str, u64),
}

impl Route<'_> {
    fn allowed(&self) -> &'static [&'static str] {
        match self {
            Route::Issues(_) | Route::IssueComments(..) => &["GET", "POST"],
            Route::Issue(..) => &["GET", "PATCH", "DELETE"],
            Route::Transitions(..) | Route::Comments(_) => &["GET"],
            Route::Comment(..) => &["PATCH", "DELETE"],
        }
    }

    fn is_comments(&self) -> bool {
        matches!(
            self,
            Route::IssueComments(..) | Route::Comments(_) | Route::Comment(..)
        )
    }
}

/// The resource a path names: 404 for none, 400 for an id that is not a
/// number (reposix-sim's path extractor refuses it before any lookup).
fn parse_route(segments: &[String]) -> Result<Route<'_>, Reply> {
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let missing = || {
        Reply::not_found(
            "no such route",
            json!({"path": format!("/{}", segs.join("/"))}),
        )
    };
    let id = |s: &str| {
        s.parse::<u64>().map_err(|_| {
            Reply::error(
                400,
                "invalid_body",
                format!("cannot parse {s:?} as an id"),
                json!({"field": "id"}),
            )
        })
    };
    let (slug, rest) = match segs.as_slice() {
        ["projects", slug, rest @ ..] if valid_slug(slug) => (*slug, rest),
        _ => return Err(missing()),
    };
    Ok(match rest {
        ["issues"] => Route::Issues(slug),
        ["issues", n] => Route::Issue(slug, id(n)?),
        ["issues", n, "transitions"] => Route::Transitions(slug, id(n)?),
        ["issues", n, "comments"] => Route::IssueComments(slug, id(n)?),
        ["comments"] => Route::Comments(slug),
        ["comments", c] => Route::Comment(slug, id(c)?),
        _ => return Err(missing()),
    })
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A worker that panicked mid-request leaves consistent data: every
        // write is a single insert/remove after validation.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&self, request: &mut tiny_http::Request) -> Reply {
        let url = request.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let limit = self.config.body_limit;
        let mut body = Vec::new();
        let read = request
            .as_reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut body);
        if read.is_err() {
            return Reply::invalid("", "the request body could not be read");
        }
        // reposix-sim's outermost layer buffers the body and refuses an
        // oversized one before the rate limiter or any route sees it.
        if body.len() > limit {
            return Reply::json(
                413,
                &json!({
                    "error": "body_too_large",
                    "limit": limit,
                    "message": format!("request bodies are limited to {limit} bytes"),
                    "details": { "limit": limit },
                }),
            );
        }
        let agent = header(request, "X-Reposix-Agent").unwrap_or_else(|| "anonymous".into());
        let mut inner = self.lock();
        // The token bucket guards every route, `/healthz` included, as in
        // reposix-sim.
        if self.config.rate_limit > 0 {
            if let Err(secs) = inner.take_token(&agent, self.config.rate_limit) {
                return Reply::json(
                    429,
                    &json!({
                        "error": "rate_limited",
                        "retry_after_secs": secs,
                        "message": format!(
                            "agent {agent:?} is over {} requests/s",
                            self.config.rate_limit
                        ),
                        "details": {"agent": agent, "retry_after": secs},
                    }),
                )
                .with_header("Retry-After", secs.to_string());
            }
        }
        if path == "/healthz" && *request.method() == tiny_http::Method::Get {
            return Reply {
                status: 200,
                headers: Vec::new(),
                content_type: "text/plain; charset=utf-8",
                body: b"ok".to_vec(),
            };
        }
        inner.requests += 1;
        let n = self.config.fail_every_n;
        if n > 0 && inner.requests.is_multiple_of(n) {
            return Reply::error(
                500,
                "internal",
                "injected failure (fail_every_n)",
                json!({"injected": true, "request": inner.requests}),
            );
        }
        let segments = path
            .strip_prefix('/')
            .unwrap_or(path)
            .split('/')
            .map(|seg| percent_decode(seg, false))
            .collect::<Option<Vec<_>>>();
        let query = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                Some((percent_decode(k, true)?, percent_decode(v, true)?))
            })
            .collect::<Option<Vec<_>>>();
        let Some(query) = query else {
            return Reply::error(
                400,
                "invalid_body",
                "the query string is not valid percent-encoded UTF-8",
                json!({"field": "query"}),
            );
        };
        let call = Call {
            method: request.method().clone(),
            segments: segments.unwrap_or_default(),
            query,
            agent,
            if_match: header(request, "If-Match"),
            content_type: header(request, "Content-Type"),
            body,
        };
        let reply = self.route(&mut inner, &call);
        let wrote = call.method != tiny_http::Method::Get && (200..300).contains(&reply.status);
        if let (Some(path), true) = (&self.config.state_file, wrote) {
            // The write is already visible to clients; a failed save is
            // reported and retried with the next write.
            if let Err(e) = persist(path, &inner.state) {
                eprintln!("reposix sim: warning: saving {}: {e}", path.display());
            }
        }
        reply
    }

    fn route(&self, inner: &mut Inner, call: &Call) -> Reply {
        use tiny_http::Method::{Delete, Get, Patch, Post};
        let route = match parse_route(&call.segments) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        if route.is_comments() && !self.config.accept_comments {
            return Reply::not_found(
                "no such route (this sim has no comments API, like reposix-sim 0.14)",
                json!({"path": format!("/{}", call.segments.join("/"))}),
            );
        }
        match (&call.method, route) {
            (Get, Route::Issues(slug)) => list_issues(inner, slug, call),
            (Post, Route::Issues(slug)) => create_issue(inner, slug, call),
            (Get, Route::Issue(slug, n)) => {
                with_issue(inner, slug, n, |_, i| Reply::json(200, &i.wire()))
            }
            (Patch, Route::Issue(slug, n)) => patch_issue(inner, slug, n, call),
            (Delete, Route::Issue(slug, n)) => delete_issue(inner, slug, n),
            (Get, Route::Transitions(slug, n)) => with_issue(inner, slug, n, |_, i| {
                Reply::json(
                    200,
                    &Transitions {
                        current_state: &i.status,
                        available: STATUSES.into_iter().filter(|s| *s != i.status).collect(),
                    },
                )
            }),
            (Get, Route::IssueComments(slug, n)) => with_issue(inner, slug, n, |p, _| {
                let list: Vec<WireComment<'_>> = p
                    .comments
                    .values()
                    .filter(|c| c.issue == n)
                    .map(|c| c.wire(false))
                    .collect();
                Reply::json(200, &list)
            }),
            (Post, Route::IssueComments(slug, n)) => add_comment(inner, slug, n, call),
            (Get, Route::Comments(slug)) => list_comments(inner, slug, call),
            (Patch, Route::Comment(slug, c)) => edit_comment(inner, slug, c, call),
            (Delete, Route::Comment(slug, c)) => delete_comment(inner, slug, c),
            (_, route) => {
                // Like reposix-sim's router: 405, empty body, `Allow`.
                let allow = route.allowed().join(",");
                Reply::empty(405).with_header("Allow", allow)
            }
        }
    }
}

/// reposix-sim's transitions answer.
#[derive(Serialize)]
struct Transitions<'a> {
    current_state: &'a str,
    available: Vec<&'a str>,
}

fn persist(path: &Path, state: &State) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// `%XX` escapes; `+` means a space in query strings only.
fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn issue_not_found(slug: &str, id: u64) -> Reply {
    Reply::not_found(
        format!("issue {id} not found in project {slug}"),
        json!({"project": slug, "id": id}),
    )
}

fn with_issue(
    inner: &Inner,
    slug: &str,
    id: u64,
    f: impl FnOnce(&Project, &Issue) -> Reply,
) -> Reply {
    match inner.state.projects.get(slug) {
        Some(p) => match p.issues.get(&id) {
            Some(i) => f(p, i),
            None => issue_not_found(slug, id),
        },
        None => issue_not_found(slug, id),
    }
}

/// `since`: absent or empty = everything (as reposix-sim reads it).
fn parse_since(call: &Call) -> Result<Option<i64>, Reply> {
    match call.query("since") {
        None | Some("") => Ok(None),
        Some(s) => match time::parse_secs(s) {
            Some(t) => Ok(Some(t)),
            None => Err(Reply::error(
                400,
                "invalid_body",
                format!("since={s:?} is not an RFC 3339 timestamp"),
                json!({"field": "since"}),
            )),
        },
    }
}

fn list_issues(inner: &Inner, slug: &str, call: &Call) -> Reply {
    let since = match parse_since(call) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Unknown projects are empty (reposix-sim creates them lazily).
    let list: Vec<WireIssue<'_>> = inner
        .state
        .projects
        .get(slug)
        .into_iter()
        .flat_map(|p| p.issues.values())
        .filter(|i| since.is_none_or(|s| i.updated_at > s))
        .map(Issue::wire)
        .collect();
    Reply::json(200, &list)
}

fn list_comments(inner: &Inner, slug: &str, call: &Call) -> Reply {
    let since = match parse_since(call) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let list: Vec<WireComment<'_>> = inner
        .state
        .projects
        .get(slug)
        .into_iter()
        .flat_map(|p| p.comments.values())
        .filter(|c| since.is_none_or(|s| c.updated_at > s))
        .map(|c| c.wire(true))
        .collect();
    Reply::json(200, &list)
}

/// A request field that failed validation. `shape` = missing or of the
/// wrong JSON type, which reposix-sim's `POST` extractor answers with 422;
/// a well-typed but refused value is 400.
struct Bad {
    field: &'static str,
    message: String,
    shape: bool,
}

impl Bad {
    fn shape(field: &'static str, message: impl Into<String>) -> Bad {
        Bad {
            field,
            message: message.into(),
            shape: true,
        }
    }

    fn value(field: &'static str, message: impl Into<String>) -> Bad {
        Bad {
            field,
            message: message.into(),
            shape: false,
        }
    }

    fn reply(self, shape_status: u16) -> Reply {
        let status = if self.shape { shape_status } else { 400 };
        Reply::error(
            status,
            "invalid_body",
            self.message,
            json!({ "field": self.field }),
        )
    }
}

fn string_of(field: &'static str, v: &Value) -> Result<String, Bad> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| Bad::shape(field, format!("{field} must be a string")))
}

fn status_of(v: &Value) -> Result<String, Bad> {
    let s = string_of("status", v)?;
    if STATUSES.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(Bad::value(
            "status",
            format!("status must be one of {}", STATUSES.join(", ")),
        ))
    }
}

fn assignee_of(v: &Value) -> Result<Option<String>, Bad> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(Bad::shape("assignee", "assignee must be a string or null")),
    }
}

fn labels_of(v: &Value) -> Result<Vec<String>, Bad> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|l| l.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| Bad::shape("labels", "labels must be an array of strings"))
}

/// `None` for an absent or `null` field (reposix-sim reads both as "not
/// given"), else the validated value.
fn optional<T>(
    m: &Map<String, Value>,
    key: &str,
    f: impl FnOnce(&Value) -> Result<T, Bad>,
) -> Result<Option<T>, Bad> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => f(v).map(Some),
    }
}

fn create_issue(inner: &mut Inner, slug: &str, call: &Call) -> Reply {
    let m = match call.json_object() {
        Ok(m) => m,
        Err(r) => return r,
    };
    // Client-sent id, version and timestamps are ignored, as are unknown
    // fields (reposix-sim is lenient on create, strict on PATCH).
    let fields = (|| {
        let title = match m.get("title") {
            Some(Value::String(t)) => t.trim().to_owned(),
            _ => {
                return Err(Bad::shape(
                    "title",
                    "title is required and must be a string",
                ))
            }
        };
        if title.is_empty() {
            return Err(Bad::value("title", "title must be non-empty"));
        }
        let body = match m.get("body") {
            None => String::new(),
            Some(v) => string_of("body", v)?,
        };
        let status = optional(&m, "status", status_of)?.unwrap_or_else(|| "open".to_owned());
        let assignee = m.get("assignee").map_or(Ok(None), assignee_of)?;
        let labels = optional(&m, "labels", labels_of)?.unwrap_or_default();
        Ok::<_, Bad>((title, body, status, assignee, labels))
    })();
    let (title, body, status, assignee, labels) = match fields {
        Ok(f) => f,
        Err(bad) => return bad.reply(422),
    };
    let now = inner.now();
    let project = inner
        .state
        .projects
        .entry(slug.to_owned())
        .or_insert_with(|| Project {
            next_comment: 1,
            ..Project::default()
        });
    let id = project.issues.keys().next_back().map_or(1, |max| max + 1);
    let issue = Issue {
        id,
        title,
        status,
        assignee,
        labels,
        created_at: now,
        updated_at: now,
        version: 1,
        body,
    };
    let reply = Reply::json(201, &issue.wire())
        .with_header("Location", format!("/projects/{slug}/issues/{id}"));
    project.issues.insert(id, issue);
    reply
}

/// `Err(reply)` unless `If-Match` is absent (a wildcard) or names
/// `current`. Like reposix-sim, the value is the version, with or without
/// surrounding quotes, and nothing else: `*`, weak tags and lists are
/// mismatches.
fn check_if_match(call: &Call, current: u64) -> Result<(), Reply> {
    let Some(raw) = &call.if_match else {
        return Ok(());
    };
    let raw = raw.trim();
    let sent = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(raw);
    if sent.parse::<u64>().ok() == Some(current) {
        return Ok(());
    }
    Err(Reply::json(
        409,
        &json!({
            "error": "version_mismatch",
            "message": format!("issue is at version {current}, If-Match sent {sent:?}"),
            "current": current,
            "sent": sent,
            "details": {"current": current, "sent": sent},
        }),
    ))
}

fn patch_issue(inner: &mut Inner, slug: &str, id: u64, call: &Call) -> Reply {
    let exists = inner
        .state
        .projects
        .get(slug)
        .and_then(|p| p.issues.get(&id))
        .map(|i| i.version);
    let Some(version) = exists else {
        return issue_not_found(slug, id);
    };
    // reposix-sim reads a PATCH without any Content-Type as no body at
    // all: an empty patch, which still moves the version.
    let m = if call.body_type() == BodyType::Absent {
        Map::new()
    } else {
        match call.json_object() {
            Ok(m) => m,
            Err(r) => return r,
        }
    };
    if let Some(k) = m.keys().find(|k| {
        !matches!(
            k.as_str(),
            "title" | "body" | "status" | "assignee" | "labels"
        )
    }) {
        return Reply::invalid(k, format!("unknown field {k:?}"));
    }
    type Changes = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<Option<String>>,
        Option<Vec<String>>,
    );
    // `null` leaves a field as it is, except `assignee`, where it clears.
    let changes = (|| -> Result<Changes, Bad> {
        Ok((
            optional(&m, "title", |v| string_of("title", v))?,
            optional(&m, "body", |v| string_of("body", v))?,
            optional(&m, "status", status_of)?,
            m.get("assignee").map(assignee_of).transpose()?,
            optional(&m, "labels", labels_of)?,
        ))
    })();
    let (title, body, status, assignee, labels) = match changes {
        Ok(c) => c,
        Err(bad) => return bad.reply(400),
    };
    if let Err(r) = check_if_match(call, version) {
        return r;
    }
    let now = inner.now();
    let issue = inner
        .state
        .projects
        .get_mut(slug)
        .and_then(|p| p.issues.get_mut(&id))
        .expect("checked above under the same lock");
    if let Some(t) = title {
        issue.title = t;
    }
    if let Some(b) = body {
        issue.body = b;
    }
    if let Some(s) = status {
        issue.status = s;
    }
    if let Some(a) = assignee {
        issue.assignee = a;
    }
    if let Some(l) = labels {
        issue.labels = l;
    }
    issue.version += 1;
    issue.updated_at = now;
    Reply::json(200, &issue.wire())
}

/// reposix-sim deletes unconditionally: `If-Match` is not read here.
fn delete_issue(inner: &mut Inner, slug: &str, id: u64) -> Reply {
    let Some(project) = inner.state.projects.get_mut(slug) else {
        return issue_not_found(slug, id);
    };
    if project.issues.remove(&id).is_none() {
        return issue_not_found(slug, id);
    }
    project.comments.retain(|_, c| c.issue != id);
    Reply::empty(204)
}

fn comment_body(call: &Call, strict: bool) -> Result<String, Reply> {
    let m = call.json_object()?;
    if strict {
        if let Some(k) = m.keys().find(|k| k.as_str() != "body") {
            return Err(Reply::invalid(k, format!("unknown field {k:?}")));
        }
    }
    match m.get("body") {
        Some(Value::String(b)) => Ok(b.clone()),
        _ => Err(Bad::shape("body", "body is required and must be a string").reply(422)),
    }
}

/// A comment changed: its issue moves on (`version` and `updated_at`), so
/// importers that list by `since` or compare versions see it.
fn touch_issue(project: &mut Project, issue: u64, now: i64) {
    if let Some(i) = project.issues.get_mut(&issue) {
        i.version += 1;
        i.updated_at = now;
    }
}

fn add_comment(inner: &mut Inner, slug: &str, id: u64, call: &Call) -> Reply {
    if inner
        .state
        .projects
        .get(slug)
        .is_none_or(|p| !p.issues.contains_key(&id))
    {
        return issue_not_found(slug, id);
    }
    let body = match comment_body(call, false) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = inner.now();
    let project = inner
        .state
        .projects
        .get_mut(slug)
        .expect("checked above under the same lock");
    touch_issue(project, id, now);
    let cid = project.next_comment.max(1);
    project.next_comment = cid + 1;
    let comment = Comment {
        id: cid,
        issue: id,
        author: call.agent.clone(),
        body,
        created_at: now,
        updated_at: now,
    };
    let reply = Reply::json(201, &comment.wire(false))
        .with_header("Location", format!("/projects/{slug}/comments/{cid}"));
    project.comments.insert(cid, comment);
    reply
}

fn comment_not_found(slug: &str, cid: u64) -> Reply {
    Reply::not_found(
        format!("comment {cid} not found in project {slug}"),
        json!({"project": slug, "comment_id": cid}),
    )
}

fn edit_comment(inner: &mut Inner, slug: &str, cid: u64, call: &Call) -> Reply {
    if !inner
        .state
        .projects
        .get(slug)
        .is_some_and(|p| p.comments.contains_key(&cid))
    {
        return comment_not_found(slug, cid);
    }
    let body = match comment_body(call, true) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = inner.now();
    let project = inner
        .state
        .projects
        .get_mut(slug)
        .expect("checked above under the same lock");
    let Some(comment) = project.comments.get_mut(&cid) else {
        return comment_not_found(slug, cid);
    };
    comment.body = body;
    comment.updated_at = now;
    let issue = comment.issue;
    let reply = Reply::json(200, &comment.wire(false));
    touch_issue(project, issue, now);
    reply
}

fn delete_comment(inner: &mut Inner, slug: &str, cid: u64) -> Reply {
    let now = inner.now();
    let Some(project) = inner.state.projects.get_mut(slug) else {
        return comment_not_found(slug, cid);
    };
    let Some(comment) = project.comments.remove(&cid) else {
        return comment_not_found(slug, cid);
    };
    touch_issue(project, comment.issue, now);
    Reply::empty(204)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback_binds() {
        for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:7878", "10.0.0.1:0"] {
            let config = SimConfig {
                bind: addr.parse().expect("test address"),
                ..SimConfig::default()
            };
            match start(config) {
                Err(SimError::NotLoopback { addr: a }) => assert_eq!(a.to_string(), addr),
                Err(e) => panic!("{addr}: wrong error {e}"),
                Ok(_) => panic!("{addr}: a non-loopback bind was accepted"),
            }
        }
    }

    #[test]
    fn token_bucket_refuses_then_names_whole_seconds() {
        let mut inner = Inner {
            state: State::default(),
            clock: 0,
            requests: 0,
            buckets: HashMap::new(),
        };
        assert_eq!(inner.take_token("a", 2), Ok(()));
        assert_eq!(inner.take_token("a", 2), Ok(()));
        assert_eq!(inner.take_token("a", 2), Err(1));
        assert_eq!(inner.take_token("b", 2), Ok(()), "buckets are per agent");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("2026-04-13T00%3A00%3A00%2B02%3A00", true).as_deref(),
            Some("2026-04-13T00:00:00+02:00")
        );
        assert_eq!(percent_decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz", true), None);
        assert_eq!(percent_decode("%4", true), None);
        assert_eq!(percent_decode("%ff", true), None, "not UTF-8");
    }
}
