//! GitHub Issues adapter (REST API version 2022-11-28).
//!
//! Guarantees:
//! - every request goes through [`HttpClient`] (allowlist, retries
//!   honouring `retry-after` and `x-ratelimit-reset` on 403 and 429 for
//!   every method), one at a time, so writes are serial, and paced one
//!   second apart (GitHub's secondary limit allows about 80
//!   content-creating requests a minute);
//! - reads follow redirects within the API's origin: a renamed repository
//!   is followed (requests then go to its new name, a notice says so, and
//!   [`Backend::relocated`] reports it; [`Backend::instance`] keeps the
//!   original identity), and a transferred issue is reported as
//!   [`BackendError::Moved`];
//! - bodies and comments are read with CRLF normalised to LF (the web
//!   editor saves CRLF), and a body over GitHub's 65,536 characters is
//!   refused before sending ([`BackendError::Refused`]);
//! - labels are compared as GitHub compares them, case-insensitively, and
//!   the repository's spelling is kept, so `bug` against `Bug` sends
//!   nothing;
//! - a login GitHub cannot assign is refused before writing (checked with
//!   `GET /repos/{o}/{r}/assignees/{login}`); labels or assignees GitHub
//!   drops silently (a token without push access) are reported as
//!   [`BackendError::Refused`] with the issue as it was written; local
//!   names are mapped to logins through the [`IdentityMap`];
//! - the token travels only in the `Authorization` header: never in argv,
//!   URLs, `Debug` output or errors;
//! - listing follows only the `Link: rel="next"` URL, verbatim, and only
//!   while it stays on the API's origin (the token is never sent elsewhere);
//!   pull requests are skipped; `since` is inclusive; each issue is returned
//!   once, at the newest revision seen;
//! - bodies round-trip byte for byte: the sync marker is appended as an HTML
//!   comment ([`body_marker`]) and stripped on every read;
//! - GitHub has no `If-Match` on issue writes, so [`Backend::update`]
//!   re-reads first (a conditional GET with the cached ETag when there is
//!   one) and fails with [`BackendError::Conflict`] if `updated_at` (or,
//!   within the same second, the content) moved. A window between that read
//!   and the PATCH remains; GitHub offers nothing to close it.
//!
//! # Status mapping
//!
//! | reposix       | written to GitHub                            | read back from GitHub                              |
//! |---------------|----------------------------------------------|----------------------------------------------------|
//! | `open`        | `state: open`, no `status:` label            | `open`, no `status:` label                         |
//! | `in_progress` | `state: open` + label `status:in_progress`   | `open` + `status:in_progress` (no `status:in_review`) |
//! | `in_review`   | `state: open` + label `status:in_review`     | `open` + `status:in_review`                        |
//! | `done`        | `state: closed`, `state_reason: completed`   | `closed`, reason `completed`, `reopened` or null   |
//! | `wont_fix`    | `state: closed`, `state_reason: not_planned` | `closed`, reason `not_planned` or `duplicate`      |
//!
//! The two `status:` labels (compared case-insensitively) are reserved: they
//! are stripped from imported labels, dropped from exported label sets, and
//! added or removed only by status changes. A `status:` label on a closed
//! issue is ignored. Every reposix status survives export then import.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::adapter::{applied, cursor_millis, refuse_unsent};
use super::http::{
    self, AllowList, Auth, Clock, HttpClient, Notice, Response, RetryPolicy, Secret, Stats,
};
use super::{
    body_marker, normalize_newlines, strip_body_marker, Backend, BackendError, BackendKind,
    BackendSpec, Capabilities, IdentityMap, IssuePatch, LinkKind, NewRemoteIssue, Refusal,
    RemoteComment, RemoteIssue, RemoteLink, RemoteLinks, Revision,
};
use crate::event::Status;

/// The public API, used unless `REPOSIX_GITHUB_API` says otherwise.
pub const DEFAULT_API: &str = "https://api.github.com";
/// The REST API version requested with `X-GitHub-Api-Version`.
pub const API_VERSION: &str = "2022-11-28";
/// The label carrying [`Status::InProgress`] on an open issue.
pub const IN_PROGRESS_LABEL: &str = "status:in_progress";
/// The label carrying [`Status::InReview`] on an open issue.
pub const IN_REVIEW_LABEL: &str = "status:in_review";

/// The longest body or comment GitHub stores, in characters.
pub const MAX_BODY_CHARS: usize = 65_536;
/// How many of the newest-created issues marker recovery looks through
/// when no `since` bounds it.
pub const MARKER_SCAN_ISSUES: usize = 500;
/// The pause between two writes.
pub const WRITE_INTERVAL: Duration = Duration::from_secs(1);

const PER_PAGE: &str = "100";

/// GitHub Issues of one repository.
pub struct GithubBackend {
    /// The repository as configured: the identity ([`Backend::instance`]).
    owner: String,
    repo: String,
    /// The repository as GitHub now names it (after a rename).
    current: RefCell<(String, String)>,
    /// Whether the name was checked after a redirect already.
    rename_checked: std::cell::Cell<bool>,
    ids: IdentityMap,
    /// Logins checked with `GET /assignees/{login}`: assignable or not.
    assignable: RefCell<HashMap<String, bool>>,
    /// API base without a trailing `/` (`https://api.github.com`, or
    /// `https://ghe.example.com/api/v3`).
    api: String,
    /// `scheme://host[:port]` of the API: pagination never leaves it.
    api_origin: String,
    http: HttpClient,
    /// Last seen state per issue number, with its ETag: lets `get` and the
    /// pre-update check revalidate with `If-None-Match` (a 304 is free).
    cache: RefCell<HashMap<u64, Cached>>,
    /// What the last issue object read said about each issue's relations
    /// (its database id, parent, and how many sub-issues and dependencies
    /// it has), by number; dropped for both ends of a relation written.
    relations: RefCell<HashMap<u64, Relations>>,
    /// Database id by issue number (they never change).
    db_ids: RefCell<HashMap<u64, u64>>,
    /// Relation kinds this repository turned out not to offer (its
    /// endpoints answered 404, 410 or 422): not asked again in this run.
    no_relations: RefCell<HashSet<LinkKind>>,
}

/// The relation fields of an issue object.
#[derive(Clone, Debug, Default)]
struct Relations {
    /// The parent's number, from `parent_issue_url` (same repository only).
    parent: Option<u64>,
    /// `sub_issues_summary.total` (absent: the object did not say).
    sub_issues: Option<u64>,
    /// `issue_dependencies_summary` `total_blocked_by` and `total_blocking`.
    dependencies: Option<(u64, u64)>,
}

struct Cached {
    etag: Option<String>,
    issue: RemoteIssue,
}

impl fmt::Debug for GithubBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubBackend")
            .field("repo", &format_args!("{}/{}", self.owner, self.repo))
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl GithubBackend {
    /// The repository `owner/repo`, configured from the process environment:
    /// `REPOSIX_GITHUB_API` (default [`DEFAULT_API`]), `GITHUB_TOKEN` (else
    /// git's credential helper), `REPOSIX_ALLOWED_ORIGINS`.
    pub fn new(address: &str) -> Result<GithubBackend, BackendError> {
        GithubBackend::from_vars(
            address,
            |name| std::env::var(name).ok(),
            AllowList::from_env()?,
        )
    }

    /// Like [`GithubBackend::new`], reading variables through `var` instead
    /// of the process environment.
    ///
    /// Credentials: a non-empty `GITHUB_TOKEN`; else git's credential helper
    /// for the API's host (and, for `api.github.com`, for `github.com`,
    /// where helpers such as `gh auth setup-git` store it); else none
    /// (public repositories can still be read).
    pub fn from_vars(
        address: &str,
        var: impl Fn(&str) -> Option<String>,
        allow: AllowList,
    ) -> Result<GithubBackend, BackendError> {
        let api = var("REPOSIX_GITHUB_API")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_API.to_owned());
        let api_url = parse_api_base(&api)?;
        let token = var("GITHUB_TOKEN")
            .filter(|t| !t.trim().is_empty())
            .map(|t| Secret::new(t.trim()))
            .or_else(|| helper_token(&api_url));
        let auth = token.map_or(Auth::None, Auth::Bearer);
        GithubBackend::with_api(address, &api, auth, allow)
    }

    /// The repository `owner/repo` behind the API at `api_base`, with
    /// explicit credentials and allowlist (what tests use).
    pub fn with_api(
        address: &str,
        api_base: &str,
        auth: Auth,
        allow: AllowList,
    ) -> Result<GithubBackend, BackendError> {
        let (owner, repo) = parse_address(address)?;
        let api_url = parse_api_base(api_base)?;
        let mut http = HttpClient::with_allowlist(auth, "reposix-github", allow)?;
        http.add_header("Accept", "application/vnd.github+json");
        http.add_header("X-GitHub-Api-Version", API_VERSION);
        http.set_service("github");
        http.set_write_interval(WRITE_INTERVAL);
        Ok(GithubBackend {
            current: RefCell::new((owner.clone(), repo.clone())),
            rename_checked: std::cell::Cell::new(false),
            ids: IdentityMap::new(),
            assignable: RefCell::new(HashMap::new()),
            owner,
            repo,
            api: api_url.as_str().trim_end_matches('/').to_owned(),
            api_origin: api_url.origin().ascii_serialization(),
            http,
            cache: RefCell::new(HashMap::new()),
            relations: RefCell::new(HashMap::new()),
            db_ids: RefCell::new(HashMap::new()),
            no_relations: RefCell::new(HashSet::new()),
        })
    }

    /// Replace the HTTP retry policy.
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.http.set_retry(retry);
    }

    /// Request counters so far.
    pub fn stats(&self) -> Stats {
        self.http.stats()
    }

    /// Read time and sleep through `clock` (tests pass a virtual one).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.http.set_clock(clock);
    }

    /// `owner/repo` as GitHub names it now.
    fn full_name(&self) -> String {
        let cur = self.current.borrow();
        format!("{}/{}", cur.0, cur.1)
    }

    fn repo_url(&self) -> String {
        format!("{}/repos/{}", self.api, self.full_name())
    }

    /// After a read was redirected: ask GitHub what the repository is
    /// called now (once per run) and follow a rename.
    fn follow_rename(&self, what: &str) -> Result<(), BackendError> {
        if self.rename_checked.replace(true) {
            return Ok(());
        }
        let resp = self
            .http
            .send(what, Method::GET, &self.repo_url(), &[], None)?;
        if resp.status != 200 {
            return Err(error_for(what, &resp));
        }
        #[derive(Deserialize)]
        struct Repo {
            full_name: String,
        }
        let repo: Repo = resp.json(what)?;
        let (owner, name) = parse_address(&repo.full_name)?;
        if !repo.full_name.eq_ignore_ascii_case(&self.full_name()) {
            let old = self.full_name();
            *self.current.borrow_mut() = (owner, name);
            self.http.notify(&format!(
                "github: {old} is now {} (renamed on GitHub); following it. Its reposix \
                 identity stays {old}",
                repo.full_name
            ));
        }
        Ok(())
    }

    /// Notice a read that was redirected.
    fn after_read(&self, what: &str, requested: &str, resp: &Response) -> Result<(), BackendError> {
        if resp.url != requested {
            self.follow_rename(what)?;
        }
        Ok(())
    }

    fn issue_url(&self, number: u64) -> String {
        format!("{}/issues/{number}", self.repo_url())
    }

    fn what(&self, action: &str) -> String {
        format!("GitHub {}: {action}", self.full_name())
    }

    fn what_issue(&self, number: u64, action: &str) -> String {
        format!("GitHub {}#{number}: {action}", self.full_name())
    }

    /// GET every page from `first`, following `Link: rel="next"` verbatim
    /// as long as it stays on the API origin.
    fn get_pages(
        &self,
        what: &str,
        first: String,
        mut page: impl FnMut(&Response) -> Result<bool, BackendError>,
    ) -> Result<(), BackendError> {
        let mut first_page = true;
        http::follow_pages(what, first, |url| {
            let resp = self.http.send(what, Method::GET, url, &[], None)?;
            if resp.status != 200 {
                return Err(error_for(what, &resp));
            }
            if std::mem::take(&mut first_page) {
                self.after_read(what, url, &resp)?;
            }
            if !page(&resp)? {
                return Ok(None);
            }
            let Some(next) = resp.header("link").and_then(http::link_next) else {
                return Ok(None);
            };
            let next_url = Url::parse(next).map_err(|e| BackendError::Malformed {
                what: what.to_owned(),
                why: format!("Link next URL: {e}"),
            })?;
            let next_origin = next_url.origin().ascii_serialization();
            if next_origin != self.api_origin {
                // The token goes with every request: never to another origin,
                // even one the allowlist would admit.
                return Err(BackendError::Malformed {
                    what: what.to_owned(),
                    why: format!(
                        "Link next URL leaves the API origin ({next_origin} instead of {})",
                        self.api_origin
                    ),
                });
            }
            Ok(Some(next_url.into()))
        })
    }

    /// Parse an issue response; `None` for a pull request. Caches it.
    fn take_issue(&self, what: &str, resp: &Response) -> Result<Option<RemoteIssue>, BackendError> {
        let wire: WireIssue = resp.json(what)?;
        self.note_relations(&wire);
        let number = wire.number;
        let Some(issue) = wire.into_remote(what, &self.ids)? else {
            return Ok(None);
        };
        self.cache.borrow_mut().insert(
            number,
            Cached {
                etag: resp.header("etag").map(str::to_owned),
                issue: issue.clone(),
            },
        );
        Ok(Some(issue))
    }

    /// The current state of issue `number`, failing with `Conflict` unless
    /// it is still at `expected`.
    fn read_unchanged(
        &self,
        number: u64,
        expected: &Revision,
        what: &str,
    ) -> Result<RemoteIssue, BackendError> {
        let known = self
            .cache
            .borrow()
            .get(&number)
            .filter(|c| c.issue.revision.token == expected.token)
            .map(|c| (c.etag.clone(), c.issue.clone()));
        let etag = known.as_ref().and_then(|(etag, _)| etag.clone());
        let headers: Vec<(&str, &str)> = etag
            .as_deref()
            .map(|e| vec![("If-None-Match", e)])
            .unwrap_or_default();
        let url = self.issue_url(number);
        let resp = self.http.send(what, Method::GET, &url, &headers, None)?;
        self.check_moved(what, number, &url, &resp)?;
        match resp.status {
            304 => match known {
                Some((_, issue)) => Ok(issue),
                None => Err(BackendError::Malformed {
                    what: what.to_owned(),
                    why: "304 Not Modified to an unconditional GET".into(),
                }),
            },
            200 => {
                let current = self
                    .take_issue(what, &resp)?
                    .ok_or_else(|| not_an_issue(what))?;
                let moved = current.revision.token != expected.token
                    // Same second, different content: updated_at has only
                    // second precision.
                    || known.is_some_and(|(_, seen)| !same_content(&seen, &current));
                if moved {
                    return Err(BackendError::Conflict {
                        what: what.to_owned(),
                    });
                }
                Ok(current)
            }
            _ => Err(error_for(what, &resp)),
        }
    }

    /// After a GET of issue `number` at `requested`: if the answer came
    /// from elsewhere, either the repository was renamed (followed) or the
    /// issue was transferred ([`BackendError::Moved`]).
    fn check_moved(
        &self,
        what: &str,
        number: u64,
        requested: &str,
        resp: &Response,
    ) -> Result<(), BackendError> {
        if resp.url == requested || resp.status != 200 {
            return Ok(());
        }
        self.follow_rename(what)?;
        #[derive(Deserialize)]
        struct Where {
            number: u64,
            #[serde(default)]
            repository_url: Option<String>,
        }
        let w: Where = resp.json(what)?;
        let repo = w
            .repository_url
            .as_deref()
            .and_then(|u| u.split("/repos/").nth(1))
            .map(str::to_owned);
        let same_repo = repo
            .as_deref()
            .is_none_or(|r| r.eq_ignore_ascii_case(&self.full_name()));
        if w.number == number && same_repo {
            return Ok(());
        }
        self.cache.borrow_mut().remove(&number);
        let repo = repo.unwrap_or_else(|| "?".into());
        Err(BackendError::Moved {
            what: what.to_owned(),
            to: format!("github::{repo}#{}", w.number),
        })
    }

    fn send_patch(
        &self,
        number: u64,
        what: &str,
        fields: Map<String, Value>,
    ) -> Result<RemoteIssue, BackendError> {
        let resp = self.http.send(
            what,
            Method::PATCH,
            &self.issue_url(number),
            &[],
            Some(&Value::Object(fields)),
        )?;
        if resp.status != 200 {
            return Err(error_for(what, &resp));
        }
        self.take_issue(what, &resp)?
            .ok_or_else(|| not_an_issue(what))
    }

    /// Whether GitHub can assign `login` in this repository (cached).
    fn can_assign(&self, login: &str) -> Result<bool, BackendError> {
        if let Some(ok) = self.assignable.borrow().get(login) {
            return Ok(*ok);
        }
        let what = self.what(&format!("check assignee {login}"));
        let url = format!("{}/assignees/{}", self.repo_url(), path_segment(login));
        let resp = self.http.send(&what, Method::GET, &url, &[], None)?;
        let ok = match resp.status {
            204 => true,
            404 => false,
            _ => return Err(error_for(&what, &resp)),
        };
        self.assignable.borrow_mut().insert(login.to_owned(), ok);
        Ok(ok)
    }

    /// The logins to send for local `names`, and refusals for those GitHub
    /// cannot assign (only names not already assigned are checked).
    fn outgoing_assignees(
        &self,
        names: &[String],
        already: &[String],
    ) -> Result<(Vec<String>, Vec<Refusal>), BackendError> {
        let mut send = Vec::new();
        let mut refused = Vec::new();
        for name in sorted_unique(names) {
            let login = self.ids.outgoing(BackendKind::Github, &name).to_owned();
            if already.contains(&name) || self.can_assign(&login)? {
                send.push(login);
            } else {
                refused.push(Refusal {
                    field: "assignees".into(),
                    value: name.clone(),
                    reason: format!(
                        "GitHub cannot assign {login:?} in {} (not a collaborator, or no such \
                         login; map the name with `git config --add reposix.identity \"{name} \
                         github:<login>\"`)",
                        self.full_name()
                    ),
                });
            }
        }
        Ok((send, refused))
    }

    fn comment_url(&self, comment_id: u64) -> String {
        format!("{}/issues/comments/{comment_id}", self.repo_url())
    }
}

impl Backend for GithubBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Github
    }

    /// `owner/repo`, lower-cased (GitHub names are case-insensitive),
    /// prefixed with the API's host and port when it is not the public API.
    fn instance(&self) -> String {
        let name = format!("{}/{}", self.owner, self.repo).to_ascii_lowercase();
        if self.api == DEFAULT_API {
            return name;
        }
        match Url::parse(&self.api) {
            Ok(u) => {
                let host = u.host_str().unwrap_or("").to_ascii_lowercase();
                match u.port() {
                    Some(p) => format!("{host}:{p}/{name}"),
                    None => format!("{host}/{name}"),
                }
            }
            Err(_) => name,
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            comments: true,
            // `update` re-reads and compares, but cannot make it atomic.
            conditional_update: false,
            closed_state: true,
            multiple_assignees: true,
            hidden_marker: false,
            links: &[LinkKind::Blocks, LinkKind::Parent],
        }
    }

    fn list_changed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<RemoteIssue>, Option<String>), BackendError> {
        let what = self.what("list issues");
        let cursor_ms = cursor_millis("GitHub", cursor)?;
        let mut first = Url::parse(&format!("{}/issues", self.repo_url()))
            .map_err(|e| BackendError::Spec(format!("{what}: invalid URL: {e}")))?;
        {
            let mut q = first.query_pairs_mut();
            q.append_pair("state", "all")
                .append_pair("sort", "updated")
                .append_pair("direction", "desc");
            if let Some(since) = cursor {
                q.append_pair("since", since);
            }
            q.append_pair("per_page", PER_PAGE);
        }
        // Newest revision per issue number, in first-seen order.
        let mut order: Vec<u64> = Vec::new();
        let mut newest: HashMap<u64, RemoteIssue> = HashMap::new();
        let mut max_seen: Option<(u64, String)> = None;
        self.get_pages(&what, first.into(), |resp| {
            let items: Vec<WireIssue> = resp.json(&what)?;
            for wire in items {
                let updated =
                    order_of(&wire.updated_at).ok_or_else(|| bad_time(&what, &wire.updated_at))?;
                if max_seen.as_ref().is_none_or(|(ms, _)| updated > *ms) {
                    max_seen = Some((updated, wire.updated_at.clone()));
                }
                let number = wire.number;
                self.note_relations(&wire);
                let Some(issue) = wire.into_remote(&what, &self.ids)? else {
                    continue;
                };
                match newest.get(&number) {
                    None => {
                        order.push(number);
                        newest.insert(number, issue);
                    }
                    Some(seen) if issue.revision.order > seen.revision.order => {
                        newest.insert(number, issue);
                    }
                    Some(_) => {}
                }
            }
            Ok(true)
        })?;
        let issues: Vec<RemoteIssue> = order.iter().filter_map(|n| newest.remove(n)).collect();
        // Remember what was listed (without an ETag: lists carry none per
        // item) so `update` can compare content within one second.
        let mut cache = self.cache.borrow_mut();
        for issue in &issues {
            let number = parse_number(&issue.remote_id)?;
            // Only newer: a lagging list must not evict a fresher read's ETag.
            let newer = cache
                .get(&number)
                .is_none_or(|c| issue.revision.order > c.issue.revision.order);
            if newer {
                cache.insert(
                    number,
                    Cached {
                        etag: None,
                        issue: issue.clone(),
                    },
                );
            }
        }
        drop(cache);
        let next = match (max_seen, cursor) {
            // Never move a cursor backwards (a server ignoring `since`).
            (Some((ms, _)), Some(c))
                if cursor_ms.is_some_and(|old| u64::try_from(old).is_ok_and(|old| old > ms)) =>
            {
                Some(c.to_owned())
            }
            (Some((_, raw)), _) => Some(raw),
            (None, c) => c.map(str::to_owned),
        };
        Ok((issues, next))
    }

    fn get(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError> {
        let number = parse_number(remote_id)?;
        let what = self.what_issue(number, "get");
        let known = self
            .cache
            .borrow()
            .get(&number)
            .and_then(|c| Some((c.etag.clone()?, c.issue.clone())));
        let headers: Vec<(&str, &str)> = known
            .as_ref()
            .map(|(etag, _)| vec![("If-None-Match", etag.as_str())])
            .unwrap_or_default();
        let url = self.issue_url(number);
        let resp = self.http.send(&what, Method::GET, &url, &headers, None)?;
        self.check_moved(&what, number, &url, &resp)?;
        match resp.status {
            304 => match known {
                Some((_, issue)) => Ok(Some(issue)),
                None => Err(BackendError::Malformed {
                    what,
                    why: "304 Not Modified to an unconditional GET".into(),
                }),
            },
            200 => self.take_issue(&what, &resp),
            404 | 410 => {
                self.cache.borrow_mut().remove(&number);
                Ok(None)
            }
            _ => Err(error_for(&what, &resp)),
        }
    }

    fn create(&self, new: &NewRemoteIssue) -> Result<RemoteIssue, BackendError> {
        let what = self.what("create issue");
        let marker = checked_marker(&what, &new.marker)?;
        let body = format!("{}{marker}", new.body);
        // Refused before any request: an oversized body costs no
        // assignee lookups.
        refuse_unsent(&what, check_body_size("body", &body))?;
        let (assignees, mut refused) = self.outgoing_assignees(&new.assignees, &[])?;
        let mut fields = Map::new();
        fields.insert("title".into(), Value::from(new.title.as_str()));
        fields.insert("body".into(), Value::from(body));
        let labels = wire_labels(&new.labels, new.status);
        if !labels.is_empty() {
            fields.insert("labels".into(), Value::from(labels.clone()));
        }
        if !assignees.is_empty() {
            fields.insert("assignees".into(), Value::from(assignees.clone()));
        }
        let create_url = format!("{}/issues", self.repo_url());
        let mut resp = self.http.send(
            &what,
            Method::POST,
            &create_url,
            &[],
            Some(&Value::Object(fields.clone())),
        )?;
        if is_redirect(resp.status) {
            // A renamed repository redirects writes too: learn its name and
            // send the create once more (a redirect is not a create).
            self.follow_rename(&what)?;
            resp = self.http.send(
                &what,
                Method::POST,
                &format!("{}/issues", self.repo_url()),
                &[],
                Some(&Value::Object(fields)),
            )?;
        }
        if resp.status != 201 {
            return Err(error_for(&what, &resp));
        }
        let created = self
            .take_issue(&what, &resp)?
            .ok_or_else(|| not_an_issue(&what))?;
        // Create takes no state: close in a second request. If that fails,
        // the issue exists with its marker and a retry finds it.
        let (state, reason, _) = export_status(new.status);
        let result = if state == "open" {
            created
        } else {
            let number = parse_number(&created.remote_id)?;
            let mut close = Map::new();
            close.insert("state".into(), Value::from(state));
            if let Some(r) = reason {
                close.insert("state_reason".into(), Value::from(r));
            }
            self.send_patch(number, &self.what_issue(number, "close new issue"), close)?
        };
        refused.extend(self.dropped(&labels, &assignees, &result));
        applied(what, result, refused)
    }

    fn update(
        &self,
        remote_id: &str,
        patch: &IssuePatch,
        expected: &Revision,
    ) -> Result<RemoteIssue, BackendError> {
        let number = parse_number(remote_id)?;
        let what = self.what_issue(number, "update");
        let current = self.read_unchanged(number, expected, &what)?;
        let mut fields = patch_fields(&current, patch);
        let mut refused = Vec::new();
        if let Some(Value::String(body)) = fields.get("body") {
            refuse_unsent(&what, check_body_size("body", body))?;
        }
        if let Some(names) = &patch.assignees {
            let (send, unassignable) = self.outgoing_assignees(names, &current.assignees)?;
            let current_logins: Vec<String> = current
                .assignees
                .iter()
                .map(|a| self.ids.outgoing(BackendKind::Github, a).to_owned())
                .collect();
            if sorted_unique(&send) == sorted_unique(&current_logins) {
                fields.remove("assignees");
            } else {
                fields.insert("assignees".into(), Value::from(send));
            }
            refused = unassignable;
        }
        if fields.is_empty() {
            return applied(what, current, refused);
        }
        let sent = |name: &str| -> Vec<String> {
            let list = fields.get(name).and_then(Value::as_array);
            list.into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let (sent_labels, sent_assignees) = (sent("labels"), sent("assignees"));
        let after = self.send_patch(number, &what, fields)?;
        refused.extend(self.dropped(&sent_labels, &sent_assignees, &after));
        applied(what, after, refused)
    }

    /// Looks through the issues changed since `since`, or without it the
    /// [`MARKER_SCAN_ISSUES`] most recently created (newest first, stopping
    /// at the first match), never the whole repository.
    fn find_by_marker(
        &self,
        marker: &str,
        since: Option<&str>,
    ) -> Result<Option<RemoteIssue>, BackendError> {
        if since.is_some() {
            let (issues, _) = self.list_changed(since)?;
            // Two issues with one marker come from a create retried after a
            // lost response: the first one created is the one to keep.
            return Ok(issues
                .into_iter()
                .filter(|i| i.marker.as_deref() == Some(marker))
                .min_by_key(|i| i.remote_id.parse::<u64>().unwrap_or(u64::MAX)));
        }
        let what = self.what("find marker");
        let first = format!(
            "{}/issues?state=all&sort=created&direction=desc&per_page={PER_PAGE}",
            self.repo_url()
        );
        let mut seen = 0usize;
        let mut found: Option<RemoteIssue> = None;
        self.get_pages(&what, first, |resp| {
            let items: Vec<WireIssue> = resp.json(&what)?;
            for wire in items {
                seen += 1;
                if let Some(issue) = wire.into_remote(&what, &self.ids)? {
                    if issue.marker.as_deref() == Some(marker) {
                        // Newest first: keep going to the oldest duplicate
                        // on this page, then stop.
                        found = Some(issue);
                    }
                }
            }
            Ok(found.is_none() && seen < MARKER_SCAN_ISSUES)
        })?;
        Ok(found)
    }

    fn comments(&self, remote_id: &str) -> Result<Vec<RemoteComment>, BackendError> {
        let number = parse_number(remote_id)?;
        let what = self.what_issue(number, "list comments");
        let first = format!("{}/comments?per_page={PER_PAGE}", self.issue_url(number));
        let mut out = Vec::new();
        self.get_pages(&what, first, |resp| {
            let items: Vec<WireComment> = resp.json(&what)?;
            for c in items {
                out.push(c.into_remote(&what, &self.ids)?);
            }
            Ok(true)
        })?;
        let mut seen = HashSet::new();
        out.retain(|c| seen.insert(c.remote_id.clone()));
        out.sort_by_cached_key(|c| {
            (
                order_of(c.created_at.as_str()).unwrap_or(0),
                c.remote_id.parse::<u64>().unwrap_or(u64::MAX),
            )
        });
        Ok(out)
    }

    fn add_comment(
        &self,
        remote_id: &str,
        body: &str,
        marker: &str,
    ) -> Result<RemoteComment, BackendError> {
        let number = parse_number(remote_id)?;
        let what = self.what_issue(number, "add comment");
        let marker = checked_marker(&what, marker)?;
        let full = format!("{body}{marker}");
        refuse_unsent(&what, check_body_size("comment", &full))?;
        let resp = self.http.send(
            &what,
            Method::POST,
            &format!("{}/comments", self.issue_url(number)),
            &[],
            Some(&serde_json::json!({ "body": full })),
        )?;
        if resp.status != 201 {
            return Err(error_for(&what, &resp));
        }
        resp.json::<WireComment>(&what)?
            .into_remote(&what, &self.ids)
    }

    fn edit_comment(
        &self,
        remote_id: &str,
        comment_id: &str,
        body: &str,
    ) -> Result<RemoteComment, BackendError> {
        let number = parse_number(remote_id)?;
        let id = parse_number(comment_id)?;
        let what = self.what_issue(number, &format!("edit comment {id}"));
        // PATCH replaces the whole text: read the marker first to keep it.
        let resp = self
            .http
            .send(&what, Method::GET, &self.comment_url(id), &[], None)?;
        if resp.status != 200 {
            return Err(error_for(&what, &resp));
        }
        let wire: WireComment = resp.json(&what)?;
        if wire
            .issue_url
            .as_deref()
            .is_some_and(|u| !u.ends_with(&format!("/issues/{number}")))
        {
            return Err(BackendError::NotFound {
                what: format!("{what}: the comment belongs to another issue"),
            });
        }
        let current = wire.into_remote(&what, &self.ids)?;
        if current.body == body {
            return Ok(current);
        }
        let full = match &current.marker {
            Some(m) => format!("{body}{}", body_marker(m)),
            None => body.to_owned(),
        };
        refuse_unsent(&what, check_body_size("comment", &full))?;
        let resp = self.http.send(
            &what,
            Method::PATCH,
            &self.comment_url(id),
            &[],
            Some(&serde_json::json!({ "body": full })),
        )?;
        if resp.status != 200 {
            return Err(error_for(&what, &resp));
        }
        resp.json::<WireComment>(&what)?
            .into_remote(&what, &self.ids)
    }

    fn set_notice(&mut self, notice: Notice) {
        self.http.set_notice(notice);
    }

    fn set_identities(&mut self, ids: IdentityMap) {
        self.ids = ids;
    }

    /// GitHub matches labels case-insensitively.
    fn labels_equal(&self, a: &[String], b: &[String]) -> bool {
        folded(a) == folded(b)
    }

    /// Issue dependencies (`…/dependencies/blocked_by` and `…/blocking`)
    /// and sub-issues (`…/sub_issues`, the parent from `parent_issue_url`).
    /// The issue object's `issue_dependencies_summary` and
    /// `sub_issues_summary` say whether there is anything to list: an issue
    /// with none costs no request beyond the issue itself (none at all
    /// when the last listing carried it and `fresh` is false). A listing
    /// answered 404, 410 or 422 means the repository does not offer the
    /// feature: that kind is reported unavailable (and not asked again).
    fn links(&self, remote_id: &str, fresh: bool) -> Result<RemoteLinks, BackendError> {
        let n = parse_number(remote_id)?;
        let known = if fresh {
            None
        } else {
            self.relations.borrow().get(&n).cloned()
        };
        let rel = match known {
            Some(r) => r,
            None => self.read_relations(n)?,
        };
        let mut out = RemoteLinks::default();
        let off = |kind: LinkKind, out: &mut RemoteLinks| {
            self.no_relations.borrow_mut().insert(kind);
            out.links.retain(|l| l.kind != kind);
            out.unavailable.push(kind);
        };
        if self.no_relations.borrow().contains(&LinkKind::Blocks) {
            out.unavailable.push(LinkKind::Blocks);
        } else {
            // Without a summary (an object that does not say), only a fresh
            // read asks the endpoints: an import of a whole repository must
            // not cost requests for every issue.
            let (by, blocking) = rel
                .dependencies
                .map_or((fresh, fresh), |(a, b)| (a > 0, b > 0));
            let mut on = true;
            if by {
                match self.related(n, "dependencies/blocked_by")? {
                    Some(list) => out.links.extend(
                        list.iter()
                            .map(|m| RemoteLink::new(LinkKind::Blocks, &m.to_string(), remote_id)),
                    ),
                    None => on = false,
                }
            }
            if on && blocking {
                match self.related(n, "dependencies/blocking")? {
                    Some(list) => out.links.extend(
                        list.iter()
                            .map(|m| RemoteLink::new(LinkKind::Blocks, remote_id, &m.to_string())),
                    ),
                    None => on = false,
                }
            }
            if !on {
                off(LinkKind::Blocks, &mut out);
            }
        }
        if self.no_relations.borrow().contains(&LinkKind::Parent) {
            out.unavailable.push(LinkKind::Parent);
        } else {
            if let Some(p) = rel.parent {
                out.links
                    .push(RemoteLink::new(LinkKind::Parent, &p.to_string(), remote_id));
            }
            if rel.sub_issues.map_or(fresh, |t| t > 0) {
                match self.related(n, "sub_issues")? {
                    Some(list) => out.links.extend(
                        list.iter()
                            .map(|m| RemoteLink::new(LinkKind::Parent, remote_id, &m.to_string())),
                    ),
                    None => off(LinkKind::Parent, &mut out),
                }
            }
        }
        Ok(out)
    }

    /// `POST /repos/{o}/{r}/issues/{blocked}/dependencies/blocked_by`
    /// `{"issue_id": <blocker's id>}`, or `POST …/issues/{parent}/sub_issues`
    /// `{"sub_issue_id": <child's id>}`: ids are the issues' database ids,
    /// not their numbers. 201 on success. 404 or 410: the repository does
    /// not offer the feature ([`BackendError::Unsupported`]); 422 (the
    /// relation exists already, a sub-issue has a parent already, a cycle,
    /// or the feature is off) is returned as it is, for the caller to look.
    fn add_link(&self, link: &RemoteLink) -> Result<(), BackendError> {
        let (url, body) = match link.kind {
            LinkKind::Blocks => {
                let blocked = parse_number(&link.to)?;
                let id = self.id_of(parse_number(&link.from)?)?;
                (
                    format!("{}/dependencies/blocked_by", self.issue_url(blocked)),
                    serde_json::json!({ "issue_id": id }),
                )
            }
            LinkKind::Parent => {
                let parent = parse_number(&link.from)?;
                let id = self.id_of(parse_number(&link.to)?)?;
                (
                    format!("{}/sub_issues", self.issue_url(parent)),
                    serde_json::json!({ "sub_issue_id": id }),
                )
            }
            LinkKind::Duplicates | LinkKind::Relates => {
                return Err(BackendError::Unsupported {
                    what: self.what(&format!("relation {}", link.kind.as_str())),
                })
            }
        };
        let what = self.what(&format!(
            "add relation #{} {} #{}",
            link.from,
            link.kind.as_str(),
            link.to
        ));
        self.forget_relations(link);
        let resp = self
            .http
            .send(&what, Method::POST, &url, &[], Some(&body))?;
        match resp.status {
            200 | 201 => Ok(()),
            404 | 410 => {
                self.no_relations.borrow_mut().insert(link.kind);
                Err(BackendError::Unsupported { what })
            }
            _ => Err(error_for(&what, &resp)),
        }
    }

    /// `DELETE …/issues/{blocked}/dependencies/blocked_by/{blocker's id}`,
    /// or `DELETE …/issues/{parent}/sub_issue` `{"sub_issue_id": <id>}`
    /// (singular path). 200 on success; 404 or 410: gone already.
    fn remove_link(&self, link: &RemoteLink) -> Result<(), BackendError> {
        let (url, body) = match link.kind {
            LinkKind::Blocks => {
                let blocked = parse_number(&link.to)?;
                let id = self.id_of(parse_number(&link.from)?)?;
                (
                    format!("{}/dependencies/blocked_by/{id}", self.issue_url(blocked)),
                    None,
                )
            }
            LinkKind::Parent => {
                let parent = parse_number(&link.from)?;
                let id = self.id_of(parse_number(&link.to)?)?;
                (
                    format!("{}/sub_issue", self.issue_url(parent)),
                    Some(serde_json::json!({ "sub_issue_id": id })),
                )
            }
            LinkKind::Duplicates | LinkKind::Relates => return Ok(()),
        };
        let what = self.what(&format!(
            "remove relation #{} {} #{}",
            link.from,
            link.kind.as_str(),
            link.to
        ));
        self.forget_relations(link);
        let resp = self
            .http
            .send(&what, Method::DELETE, &url, &[], body.as_ref())?;
        match resp.status {
            200 | 204 | 404 | 410 => Ok(()),
            _ => Err(error_for(&what, &resp)),
        }
    }

    fn relocated(&self) -> Option<BackendSpec> {
        let now = self.full_name();
        let was = format!("{}/{}", self.owner, self.repo);
        (!now.eq_ignore_ascii_case(&was)).then_some(BackendSpec {
            kind: BackendKind::Github,
            address: now,
        })
    }
}

impl GithubBackend {
    /// Remember what an issue object says about its relations.
    fn note_relations(&self, wire: &WireIssue) {
        if let Some(id) = wire.id {
            self.db_ids.borrow_mut().insert(wire.number, id);
        }
        let rel = Relations {
            parent: wire
                .parent_issue_url
                .as_deref()
                .and_then(|u| self.same_repo_issue(u)),
            sub_issues: wire.sub_issues_summary.as_ref().map(|s| s.total),
            dependencies: wire
                .issue_dependencies_summary
                .as_ref()
                .map(|d| (d.total_blocked_by, d.total_blocking)),
        };
        self.relations.borrow_mut().insert(wire.number, rel);
    }

    /// The number in an issue API URL of this repository
    /// (`…/repos/{o}/{r}/issues/{n}`, under its configured or current
    /// name); `None` for another repository's issue.
    fn same_repo_issue(&self, url: &str) -> Option<u64> {
        let (repo, n) = url.rsplit_once("/issues/")?;
        self.is_this_repo(repo).then(|| n.parse().ok()).flatten()
    }

    /// Whether a `repository_url` names this repository.
    fn is_this_repo(&self, repo_url: &str) -> bool {
        let Some((_, name)) = repo_url.rsplit_once("/repos/") else {
            return false;
        };
        name.eq_ignore_ascii_case(&self.full_name())
            || name.eq_ignore_ascii_case(&format!("{}/{}", self.owner, self.repo))
    }

    /// Numbers of the issues in a relation listing of issue `n`
    /// (`sub_issues`, `dependencies/blocked_by`, `dependencies/blocking`),
    /// other repositories' left out; `None` when the repository does not
    /// offer it (404, 410 or 422).
    fn related(&self, n: u64, path: &str) -> Result<Option<Vec<u64>>, BackendError> {
        let what = self.what_issue(n, &format!("list {path}"));
        let first = format!("{}/{path}?per_page={PER_PAGE}", self.issue_url(n));
        let mut out = Vec::new();
        let listed = self.get_pages(&what, first, |resp| {
            let items: Vec<WireRelated> = resp.json(&what)?;
            for item in items {
                if item
                    .repository_url
                    .as_deref()
                    .is_none_or(|u| self.is_this_repo(u))
                {
                    out.push(item.number);
                }
            }
            Ok(true)
        });
        match listed {
            Ok(()) => {
                out.sort_unstable();
                out.dedup();
                Ok(Some(out))
            }
            Err(BackendError::NotFound { .. }) | Err(BackendError::Http { status: 422, .. }) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Read issue `n` (unconditionally: a 304 would not carry the relation
    /// fields) and what it says about its relations.
    fn read_relations(&self, n: u64) -> Result<Relations, BackendError> {
        let what = self.what_issue(n, "relations");
        let url = self.issue_url(n);
        let resp = self.http.send(&what, Method::GET, &url, &[], None)?;
        self.check_moved(&what, n, &url, &resp)?;
        if resp.status != 200 {
            return Err(error_for(&what, &resp));
        }
        let wire: WireIssue = resp.json(&what)?;
        self.note_relations(&wire);
        Ok(self.relations.borrow().get(&n).cloned().unwrap_or_default())
    }

    /// The database id of issue `n` (what relation endpoints take).
    fn id_of(&self, n: u64) -> Result<u64, BackendError> {
        if let Some(id) = self.db_ids.borrow().get(&n) {
            return Ok(*id);
        }
        self.read_relations(n)?;
        self.db_ids
            .borrow()
            .get(&n)
            .copied()
            .ok_or_else(|| BackendError::NotFound {
                what: self.what_issue(n, "database id"),
            })
    }

    /// Drop what the last reads said about the relations of both ends of
    /// `link`: the next [`Backend::links`] reads them again.
    fn forget_relations(&self, link: &RemoteLink) {
        let mut rel = self.relations.borrow_mut();
        for end in [&link.from, &link.to] {
            if let Ok(n) = end.parse::<u64>() {
                rel.remove(&n);
            }
        }
    }

    /// Labels and assignees that were sent but are missing from what GitHub
    /// answered: it drops them silently for a token without push access.
    fn dropped(
        &self,
        labels: &[String],
        assignees: &[String],
        after: &RemoteIssue,
    ) -> Vec<Refusal> {
        let have = folded(&after.labels);
        let mut out: Vec<Refusal> = labels
            .iter()
            .filter(|l| !is_status_label(l) && !have.contains(&l.to_lowercase()))
            .map(|l| Refusal {
                field: "labels".into(),
                value: l.clone(),
                reason: DROPPED.into(),
            })
            .collect();
        let (_, _, status_label) = export_status(after.status);
        for l in labels.iter().filter(|l| is_status_label(l)) {
            if status_label.is_none_or(|s| !s.eq_ignore_ascii_case(l)) {
                out.push(Refusal {
                    field: "labels".into(),
                    value: l.clone(),
                    reason: DROPPED.into(),
                });
            }
        }
        let have: Vec<&str> = after
            .assignees
            .iter()
            .map(|a| self.ids.outgoing(BackendKind::Github, a))
            .collect();
        for login in assignees {
            if !have.iter().any(|h| h.eq_ignore_ascii_case(login)) {
                out.push(Refusal {
                    field: "assignees".into(),
                    value: self.ids.incoming(BackendKind::Github, login).to_owned(),
                    reason: DROPPED.into(),
                });
            }
        }
        out
    }
}

const DROPPED: &str = "GitHub dropped it silently: the token has no push access to the repository";

/// A refusal if `text` is over GitHub's body limit.
fn check_body_size(field: &str, text: &str) -> Vec<Refusal> {
    let n = text.chars().count();
    if n <= MAX_BODY_CHARS {
        return Vec::new();
    }
    vec![Refusal {
        field: field.into(),
        value: format!("{n} characters"),
        reason: format!(
            "GitHub stores at most {MAX_BODY_CHARS} characters (the sync marker included)"
        ),
    }]
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 307 | 308)
}

/// Labels lower-cased, sorted, unique: how GitHub compares them.
fn folded(labels: &[String]) -> Vec<String> {
    let mut v: Vec<String> = labels.iter().map(|l| l.to_lowercase()).collect();
    v.sort();
    v.dedup();
    v
}

/// Percent-encode a path segment (logins are `[A-Za-z0-9-]`, but names
/// from config are not trusted).
fn path_segment(s: &str) -> String {
    super::atlassian::enc(s)
}

// ---- wire shapes ----

#[derive(Deserialize)]
struct WireIssue {
    number: u64,
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    labels: Option<Vec<WireLabel>>,
    state: String,
    #[serde(default)]
    state_reason: Option<String>,
    #[serde(default)]
    assignees: Option<Vec<WireUser>>,
    created_at: String,
    updated_at: String,
    #[serde(default)]
    pull_request: Option<Value>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    parent_issue_url: Option<String>,
    #[serde(default)]
    sub_issues_summary: Option<WireSubIssues>,
    #[serde(default)]
    issue_dependencies_summary: Option<WireDependencies>,
}

#[derive(Deserialize)]
struct WireSubIssues {
    #[serde(default)]
    total: u64,
}

#[derive(Deserialize)]
struct WireDependencies {
    #[serde(default)]
    total_blocked_by: u64,
    #[serde(default)]
    total_blocking: u64,
}

/// An issue in a relation listing (sub-issues, dependencies).
#[derive(Deserialize)]
struct WireRelated {
    number: u64,
    #[serde(default)]
    repository_url: Option<String>,
}

/// Issue labels come as objects; the schema also allows bare names.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireLabel {
    Name(String),
    Object { name: String },
}

#[derive(Deserialize)]
struct WireUser {
    login: String,
}

#[derive(Deserialize)]
struct WireComment {
    id: u64,
    #[serde(default)]
    user: Option<WireUser>,
    #[serde(default)]
    body: Option<String>,
    created_at: String,
    updated_at: String,
    #[serde(default)]
    issue_url: Option<String>,
}

impl WireIssue {
    /// `None` for a pull request.
    fn into_remote(
        self,
        what: &str,
        ids: &IdentityMap,
    ) -> Result<Option<RemoteIssue>, BackendError> {
        if self.pull_request.is_some() {
            return Ok(None);
        }
        let order = order_of(&self.updated_at).ok_or_else(|| bad_time(what, &self.updated_at))?;
        let raw_labels: Vec<String> = self
            .labels
            .unwrap_or_default()
            .into_iter()
            .map(|l| match l {
                WireLabel::Name(n) | WireLabel::Object { name: n } => n,
            })
            .collect();
        let status = import_status(&self.state, self.state_reason.as_deref(), &raw_labels)
            .ok_or_else(|| BackendError::Malformed {
                what: what.to_owned(),
                why: format!("issue #{} has unknown state {:?}", self.number, self.state),
            })?;
        let labels: Vec<String> = raw_labels
            .into_iter()
            .filter(|l| !is_status_label(l))
            .collect();
        let assignees: Vec<String> = self
            .assignees
            .unwrap_or_default()
            .into_iter()
            .map(|u| ids.incoming(BackendKind::Github, &u.login).to_owned())
            .collect();
        let (body, marker) =
            strip_body_marker(&normalize_newlines(self.body.as_deref().unwrap_or("")));
        Ok(Some(RemoteIssue {
            remote_id: self.number.to_string(),
            title: self.title,
            body,
            status,
            labels: sorted_unique(&labels),
            assignees: sorted_unique(&assignees),
            revision: Revision {
                order,
                token: self.updated_at.clone(),
            },
            created_at: self.created_at.into(),
            updated_at: self.updated_at.into(),
            marker,
        }))
    }
}

impl WireComment {
    fn into_remote(self, what: &str, ids: &IdentityMap) -> Result<RemoteComment, BackendError> {
        if order_of(&self.updated_at).is_none() {
            return Err(bad_time(what, &self.updated_at));
        }
        let (body, marker) =
            strip_body_marker(&normalize_newlines(self.body.as_deref().unwrap_or("")));
        Ok(RemoteComment {
            remote_id: self.id.to_string(),
            // A deleted account shows as `null`; GitHub renders it "ghost".
            author: self.user.map_or_else(
                || "ghost".to_owned(),
                |u| ids.incoming(BackendKind::Github, &u.login).to_owned(),
            ),
            body,
            created_at: self.created_at.into(),
            updated_at: self.updated_at.into(),
            marker,
        })
    }
}

// ---- status mapping ----

/// GitHub's side of a status: `state`, `state_reason` when closed, and the
/// reserved label, if any.
fn export_status(status: Status) -> (&'static str, Option<&'static str>, Option<&'static str>) {
    match status {
        Status::Open => ("open", None, None),
        Status::InProgress => ("open", None, Some(IN_PROGRESS_LABEL)),
        Status::InReview => ("open", None, Some(IN_REVIEW_LABEL)),
        Status::Done => ("closed", Some("completed"), None),
        Status::WontFix => ("closed", Some("not_planned"), None),
    }
}

/// reposix's status of a GitHub issue; `None` for an unknown `state`.
fn import_status(state: &str, reason: Option<&str>, labels: &[String]) -> Option<Status> {
    let has = |want: &str| labels.iter().any(|l| l.eq_ignore_ascii_case(want));
    match state {
        "closed" => Some(match reason {
            Some("not_planned") | Some("duplicate") => Status::WontFix,
            _ => Status::Done,
        }),
        "open" if has(IN_REVIEW_LABEL) => Some(Status::InReview),
        "open" if has(IN_PROGRESS_LABEL) => Some(Status::InProgress),
        "open" => Some(Status::Open),
        _ => None,
    }
}

fn is_status_label(label: &str) -> bool {
    label.eq_ignore_ascii_case(IN_PROGRESS_LABEL) || label.eq_ignore_ascii_case(IN_REVIEW_LABEL)
}

/// The full label set to send: the user's labels (reserved ones dropped,
/// duplicates by case dropped: GitHub compares labels case-insensitively)
/// plus the status label.
fn wire_labels(labels: &[String], status: Status) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in sorted_unique(labels) {
        if !is_status_label(&l) && !out.iter().any(|o| o.eq_ignore_ascii_case(&l)) {
            out.push(l);
        }
    }
    if let (_, _, Some(label)) = export_status(status) {
        out.push(label.to_owned());
    }
    out
}

/// The PATCH fields that move `current` to `current + patch`; fields that
/// would not change are left out (`labels`/`assignees` replace whole sets).
fn patch_fields(current: &RemoteIssue, patch: &IssuePatch) -> Map<String, Value> {
    let mut fields = Map::new();
    if let Some(title) = patch.title.as_ref().filter(|t| **t != current.title) {
        fields.insert("title".into(), Value::from(title.as_str()));
    }
    if let Some(body) = patch.body.as_ref().filter(|b| **b != current.body) {
        let full = match &current.marker {
            Some(m) => format!("{body}{}", body_marker(m)),
            None => body.clone(),
        };
        fields.insert("body".into(), Value::from(full));
    }
    let status = patch.status.unwrap_or(current.status);
    let (state, reason, _) = export_status(status);
    let (old_state, old_reason, _) = export_status(current.status);
    if status != current.status && (state, reason) != (old_state, old_reason) {
        fields.insert("state".into(), Value::from(state));
        if let Some(r) = reason {
            fields.insert("state_reason".into(), Value::from(r));
        }
    }
    let user_labels = patch.labels.as_ref().unwrap_or(&current.labels);
    // Keep the repository's spelling of labels the issue already has.
    let respelled: Vec<String> = user_labels
        .iter()
        .map(|l| {
            current
                .labels
                .iter()
                .find(|c| c.eq_ignore_ascii_case(l))
                .unwrap_or(l)
                .clone()
        })
        .collect();
    let labels = wire_labels(&respelled, status);
    if folded(&labels) != folded(&wire_labels(&current.labels, current.status)) {
        fields.insert("labels".into(), Value::from(labels));
    }
    fields
}

/// Whether two reads of an issue agree on everything reposix tracks.
fn same_content(a: &RemoteIssue, b: &RemoteIssue) -> bool {
    a.title == b.title
        && a.body == b.body
        && a.status == b.status
        && a.labels == b.labels
        && a.assignees == b.assignees
        && a.marker == b.marker
}

fn sorted_unique(items: &[String]) -> Vec<String> {
    let mut v = items.to_vec();
    v.sort();
    v.dedup();
    v
}

// ---- errors ----

/// The `BackendError` for a response the adapter did not expect.
fn error_for(what: &str, resp: &Response) -> BackendError {
    match resp.status {
        401 => BackendError::Auth {
            what: what.to_owned(),
            status: 401,
        },
        404 | 410 => BackendError::NotFound {
            what: what.to_owned(),
        },
        status => BackendError::Http {
            what: what.to_owned(),
            status,
            message: error_message(resp),
        },
    }
}

/// `message` from GitHub's error body, with the `errors` details of a 422.
fn error_message(resp: &Response) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
        #[serde(default)]
        errors: Vec<Value>,
    }
    let text = match serde_json::from_slice::<ErrorBody>(&resp.body) {
        Ok(e) if e.errors.is_empty() => e.message,
        Ok(e) => {
            let details: Vec<String> = e.errors.iter().map(describe_error).collect();
            format!("{} ({})", e.message, details.join("; "))
        }
        Err(_) => resp.excerpt(),
    };
    http::truncate(&http::sanitize(&text), 300)
}

fn describe_error(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            if let Some(m) = o.get("message").and_then(Value::as_str) {
                return m.to_owned();
            }
            let get = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("?");
            format!("{}.{}: {}", get("resource"), get("field"), get("code"))
        }
        other => other.to_string(),
    }
}

fn not_an_issue(what: &str) -> BackendError {
    BackendError::NotFound {
        what: format!("{what}: a pull request, not an issue"),
    }
}

fn bad_time(what: &str, raw: &str) -> BackendError {
    BackendError::Malformed {
        what: what.to_owned(),
        why: format!("{raw:?} is not a timestamp like 2017-10-10T16:00:00Z"),
    }
}

// ---- parsing ----

fn parse_address(address: &str) -> Result<(String, String), BackendError> {
    let bad = || {
        BackendError::Spec(format!(
            "github address {address:?}: expected owner/repo (letters, digits, '-', '_', '.')"
        ))
    };
    let (owner, repo) = address.trim().split_once('/').ok_or_else(bad)?;
    let valid = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !valid(owner) || !valid(repo) {
        return Err(bad());
    }
    Ok((owner.to_owned(), repo.to_owned()))
}

fn parse_api_base(base: &str) -> Result<Url, BackendError> {
    let bad = |why: &str| BackendError::Spec(format!("GitHub API base: {why}"));
    let url = Url::parse(base.trim().trim_end_matches('/')).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("expected http(s)://host[/path]"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials do not belong in the URL: use GITHUB_TOKEN",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("expected no query or fragment"));
    }
    Ok(url)
}

fn parse_number(remote_id: &str) -> Result<u64, BackendError> {
    remote_id
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && remote_id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            BackendError::Spec(format!(
                "{remote_id:?} is not a GitHub issue or comment number"
            ))
        })
}

/// The marker text for `id`, refusing ids that reads would not recognise
/// (the marker would then show up in the body).
fn checked_marker(what: &str, id: &str) -> Result<String, BackendError> {
    let marker = body_marker(id);
    if strip_body_marker(&marker).1.as_deref() != Some(id) {
        return Err(BackendError::Spec(format!(
            "{what}: marker {id:?} must be hex digits and '-'"
        )));
    }
    Ok(marker)
}

fn helper_token(api: &Url) -> Option<Secret> {
    let ask = |url: &Url| {
        http::git_credential(url)
            .map(|(_, secret)| secret)
            .filter(|s| *s != Secret::new(""))
    };
    ask(api).or_else(|| {
        if api.host_str() == Some("api.github.com") {
            ask(&Url::parse("https://github.com/").expect("a constant URL parses"))
        } else {
            None
        }
    })
}

/// The revision order of a GitHub timestamp (`2017-10-10T16:00:00Z`):
/// milliseconds since the epoch as [`crate::time`] parses it, `None`
/// before 1970 (GitHub has nothing older: such a value is malformed) or if
/// it does not parse.
fn order_of(s: &str) -> Option<u64> {
    crate::time::parse_millis(s).and_then(|ms| u64::try_from(ms).ok())
}

/// Decode a response body as this adapter does: an issue listing (pull
/// requests dropped), then a comment listing. The entry point of the fuzz
/// target `tracker_json`; never panics.
pub fn parse_wire(
    body: &[u8],
) -> (
    Result<Vec<RemoteIssue>, BackendError>,
    Result<Vec<RemoteComment>, BackendError>,
) {
    let what = "parsing a GitHub response";
    let ids = IdentityMap::new();
    let issues = http::decode_json::<Vec<WireIssue>>(body, what).and_then(|v| {
        v.into_iter()
            .filter_map(|w| w.into_remote(what, &ids).transpose())
            .collect()
    });
    let comments = http::decode_json::<Vec<WireComment>>(body, what)
        .and_then(|v| v.into_iter().map(|c| c.into_remote(what, &ids)).collect());
    // Relation listings (sub-issues, dependencies), as `related` reads them.
    let _ = http::decode_json::<Vec<WireRelated>>(body, what);
    (issues, comments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_orders_from_1970_on() {
        assert_eq!(order_of("1970-01-01T00:00:00Z"), Some(0));
        // The fixtures' x-ratelimit-reset is this instant in ms.
        assert_eq!(order_of("2017-10-10T16:00:00Z"), Some(1_507_651_200_000));
        assert_eq!(order_of("2000-02-29T23:59:59Z"), Some(951_868_799_000));
        assert_eq!(order_of("2024-03-01T00:00:00Z"), Some(1_709_251_200_000));
        assert_eq!(order_of("2017-10-10T16:00:00.25Z"), Some(1_507_651_200_250));
        assert_eq!(
            order_of("2017-10-10T18:00:00+02:00"),
            Some(1_507_651_200_000)
        );
        assert_eq!(
            order_of("2017-10-10T14:30:00-01:30"),
            Some(1_507_651_200_000)
        );
        for bad in [
            "",
            "2017-10-10",
            "2017-10-10T16:00:00",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2017-13-01T00:00:00Z",
            "2017-10-10T24:00:00Z",
            "2017-10-10T16:00:00.Z",
            "+017-10-10T16:00:00Z",
            "1969-12-31T23:59:59Z",
            "2017-10-10T16:00:00Zjunk",
        ] {
            assert_eq!(order_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_status_survives_export_then_import() {
        for status in Status::ALL {
            let (state, reason, label) = export_status(status);
            let labels: Vec<String> = label.into_iter().map(str::to_owned).collect();
            assert_eq!(
                import_status(state, reason, &labels),
                Some(status),
                "{status}"
            );
            let mut with_user =
                wire_labels(&["bug".to_owned(), IN_REVIEW_LABEL.to_owned()], status);
            with_user.retain(|l| !is_status_label(l));
            assert_eq!(with_user, ["bug"], "reserved labels never leak: {status}");
        }
        assert_eq!(
            import_status("closed", Some("duplicate"), &[]),
            Some(Status::WontFix)
        );
        assert_eq!(import_status("closed", None, &[]), Some(Status::Done));
        assert_eq!(
            import_status("closed", Some("reopened"), &[]),
            Some(Status::Done)
        );
        assert_eq!(
            import_status("closed", Some("completed"), &[IN_PROGRESS_LABEL.to_owned()]),
            Some(Status::Done)
        );
        assert_eq!(
            import_status("open", Some("reopened"), &[]),
            Some(Status::Open)
        );
        assert_eq!(
            import_status("open", None, &["Status:In_Review".to_owned()]),
            Some(Status::InReview)
        );
        assert_eq!(import_status("merged", None, &[]), None);
    }

    #[test]
    fn validation_errors_are_described() {
        // The body of fixtures/github/errors.json.
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"Label","code":"invalid","field":"color"}],"documentation_url":"https://docs.github.com/rest/reference/issues#create-a-label"}"#;
        let resp = Response {
            url: String::new(),
            status: 422,
            headers: Vec::new(),
            body: body.to_vec(),
        };
        match error_for("create label", &resp) {
            BackendError::Http {
                status, message, ..
            } => {
                assert_eq!(status, 422);
                assert_eq!(message, "Validation Failed (Label.color: invalid)");
            }
            other => panic!("expected Http, got {other:?}"),
        }
        let not_found = Response {
            url: String::new(),
            status: 404,
            headers: Vec::new(),
            body: br#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}"#
                .to_vec(),
        };
        assert!(matches!(
            error_for("get", &not_found),
            BackendError::NotFound { .. }
        ));
    }

    #[test]
    fn addresses_and_api_bases_are_validated() {
        assert!(parse_address("octo-org/widgets.rs").is_ok());
        for bad in ["octo", "a/b/c", "../x", "a/..", "a/b?x", "a /b", "/b"] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
        assert!(parse_api_base("https://ghe.example.com/api/v3/").is_ok());
        assert!(parse_api_base("https://user:pw@api.github.com").is_err());
        assert!(parse_api_base("ftp://api.github.com").is_err());
        assert!(parse_api_base("https://api.github.com/?x=1").is_err());
        assert!(parse_number("0").is_err());
        assert!(parse_number("+5").is_err());
        assert_eq!(parse_number("42").ok(), Some(42));
    }
}
