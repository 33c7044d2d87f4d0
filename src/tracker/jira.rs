//! JIRA Cloud (REST v3) adapter: `jira::https://<site>.atlassian.net/<PROJECT>`,
//! or through the API gateway for scoped tokens
//! (`jira::https://api.atlassian.com/ex/jira/<cloudId>/<PROJECT>`, see
//! [`super::atlassian`]). `?issuetype=Bug` after the key chooses the type
//! of new issues.
//!
//! Wire facts are in `api-facts.md` ("JIRA Cloud REST v3"); every request
//! goes through [`HttpClient`](super::http::HttpClient) (allowlist, retries honouring `Retry-After`,
//! credentials only in the `Authorization` header).
//!
//! # Identity
//!
//! `remote_id` is the issue **key** (`P-1`). Keys change when an issue is
//! moved to another project: JIRA still answers the old key (it redirects
//! lookups), and [`JiraBackend::get`] then returns the issue under its new
//! key, so a caller that sees a different `remote_id` come back should
//! re-map it. Issues moved out of the project disappear from listings.
//!
//! # Revisions and the cursor
//!
//! `Revision.order` is `fields.updated` in ms since the epoch (parsed by
//! hand: JIRA writes `2021-01-18T23:45:00.000+0000`, not RFC 3339);
//! `Revision.token` is the raw `updated` string. The listing cursor is the
//! largest raw `updated` seen. A JQL date literal (`"yyyy/MM/dd HH:mm"`) is
//! read in the *calling user's profile time zone*, whatever offset
//! `updated` is rendered in, so a cursor written as a wall-clock minute
//! skipped hours of updates for users in other zones. The adapter sends an
//! epoch-milliseconds literal instead, which has no zone:
//! `updated >= <cursor − 60 000>`; issues written up to a minute before the
//! cursor (e.g. still being indexed last time) come back again and the
//! caller dedupes by revision. Within one listing, issues are deduplicated
//! by key, keeping the newest `updated`.
//!
//! Search is a read sent as `POST /rest/api/3/search/jql`: it is retried
//! after 5xx and timeouts like a GET.
//!
//! A `nextPageToken` may stand for a position in a result that shifts when
//! an issue already served is edited mid-walk (it moves to the end of
//! `ORDER BY updated ASC`), which would skip an issue for good if it is
//! older than the cursor. So the listing follows a token only while a page
//! stays within one minute, and otherwise restarts the query from the
//! minute of the last issue served (a keyset walk at JQL's precision).
//!
//! # Fields
//!
//! | reposix | JIRA |
//! |---|---|
//! | title | `summary` |
//! | body | `description`: markdown as ADF and back ([`super::adf`]); an empty body is `null` |
//! | labels | `labels`; JIRA labels cannot contain whitespace, so such a label is refused before anything is sent |
//! | assignees | `assignee.accountId` (at most one). JIRA accepts account ids only: local names are mapped through the [`IdentityMap`] (`git config --add reposix.identity "alice jira:<accountId>"`), and a name that is neither mapped nor shaped like an account id is refused ([`BackendError::Refused`]) before anything is sent |
//! | marker | issue property `reposix` = `{"id": marker}` |
//!
//! # Status
//!
//! Read from the status category, refined by the status name (and the
//! resolution, for `done`), case-insensitively:
//!
//! | `statusCategory.key` | name / resolution | reposix |
//! |---|---|---|
//! | `new` (or unknown) | | `open` |
//! | `indeterminate` | name contains `review` | `in_review` |
//! | `indeterminate` | otherwise | `in_progress` |
//! | `done` | name or resolution contains `won't`, `wont`, `not do`, `declined`, `rejected`, `cancel`, `duplicate`, `cannot reproduce` | `wont_fix` |
//! | `done` | otherwise | `done` |
//!
//! Statuses are written only through workflow transitions, listed with
//! `expand=transitions.fields`. In the default Jira Software workflows the
//! done category holds one status, "Done", and "Won't Do" is a
//! *resolution*: `wont_fix` is exported as a transition to Done with
//! `fields.resolution = {"name": <a won't-do resolution the screen
//! offers>}`, and `done` with a resolution that reads as done. A transition
//! whose screen requires other fields that have no default is refused with
//! a message naming them. When no transition leads to the wanted status
//! directly (classic workflows), the adapter walks: it takes the
//! transition to an unvisited status nearest the wanted category, reads
//! the next transitions, and so on (at most [`MAX_TRANSITION_STEPS`]).
//! Without any path the write fails with a [`BackendError::Spec`] naming the
//! transitions seen; it never stops at a near miss, which would read back
//! as a different status and make sync oscillate.
//!
//! # Limits
//!
//! A summary longer than 255 characters or holding a line break, and a
//! description or comment longer than 32,767 characters, are refused
//! ([`BackendError::Refused`]) before anything is sent. New issues use the
//! issue type named by the address (`?issuetype=`), else `Task` when the
//! project has it, else the project's first standard type, read from
//! `GET /rest/api/3/issue/createmeta/{project}/issuetypes`; only fields on
//! that type's create screen are sent with the create (empty ones never),
//! and the rest follow in an edit.
//!
//! # Updates without If-Match
//!
//! JIRA has no conditional writes. [`JiraBackend::update`] re-reads the
//! issue and fails with [`BackendError::Conflict`] if `fields.updated` is
//! no longer `expected.token`; otherwise it sends one `PUT` carrying only
//! the fields that differ from what it just read (labels as
//! `update.labels` add/remove operations, which leave labels that a third
//! party adds concurrently alone), then a transition if the status
//! changed, then reads the result back. A third-party write landing
//! between the re-read and the `PUT` (one round trip) is not detected.
//!
//! # Sync markers
//!
//! The marker travels in the create request itself, as the issue property
//! `reposix` (`"properties":[{"key":"reposix","value":{"id":…}}]`), so an
//! issue never exists without it. [`JiraBackend::find_by_marker`] searches
//! `project = "P" AND issue.property[reposix].id = "<marker>"`. JIRA Cloud
//! only answers property clauses for properties it indexes (declared by an
//! app); where it refuses the clause (HTTP 400) the adapter scans the
//! issues updated since `since`, or without it the [`MARKER_SCAN_ISSUES`]
//! most recently created, with the `reposix` property requested.
//!
//! Search is eventually consistent: an issue created a moment ago may be
//! missing from it. So when search finds nothing, the adapter reads the
//! keys after the newest one search knows (`P-<n+1>`, `P-<n+2>`, …) with
//! `GET /issue/{key}`, which is consistent, and then searches again after
//! a pause ([`MARKER_RETRY_WAITS`]) before answering "not found".
//!
//! Comments carry no marker: their identity is the JIRA comment id, which
//! the caller maps. Comment authors are account ids.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::adapter::{applied, cursor_millis, malformed, refuse_unsent};
use super::adf;
use super::atlassian::{enc, Api, TokenForm};
use super::http::{self, AllowList, Auth, Clock, Notice, Stats};
use super::{
    normalize_newlines, Backend, BackendError, BackendKind, Capabilities, IdentityMap, IssuePatch,
    LinkKind, NewRemoteIssue, Refusal, RemoteComment, RemoteIssue, RemoteLink, RemoteLinks,
    Revision,
};
use crate::event::Status;
use crate::time;

/// The issue fields every read asks for.
const FIELDS: [&str; 9] = [
    "issuelinks",
    "summary",
    "description",
    "status",
    "labels",
    "assignee",
    "created",
    "updated",
    "resolution",
];

/// The issue property holding the sync marker.
pub const MARKER_PROPERTY: &str = "reposix";
/// The longest summary JIRA takes.
pub const MAX_SUMMARY_CHARS: usize = 255;
/// The longest description or comment JIRA takes.
pub const MAX_TEXT_CHARS: usize = 32_767;
/// The most transitions walked to reach one status.
pub const MAX_TRANSITION_STEPS: usize = 6;
/// How many of the newest-created issues marker recovery scans when
/// property search is unavailable and no `since` bounds it.
pub const MARKER_SCAN_ISSUES: usize = 500;
/// The pauses before searching for a marker again (search lags writes).
pub const MARKER_RETRY_WAITS: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(5)];

/// Status-name (and resolution) fragments that mean "closed without doing it".
const WONT_FIX_WORDS: [&str; 9] = [
    "won't",
    "won\u{2019}t",
    "wont",
    "not do",
    "declined",
    "rejected",
    "cancel",
    "duplicate",
    "cannot reproduce",
];

/// A JIRA Cloud project as a [`Backend`].
pub struct JiraBackend {
    api: Api,
    project: String,
    /// The issue type asked for (`?issuetype=`), if any.
    issue_type: Option<String>,
    page_size: u32,
    ids: IdentityMap,
    /// What the create screen takes: (issue type id, field ids).
    create_meta: RefCell<Option<(String, Vec<String>)>>,
    /// The relations each issue had in the last read that carried
    /// `issuelinks` (search or GET), by key; dropped for both ends of a
    /// relation this client writes.
    links_seen: RefCell<HashMap<String, Vec<RemoteLink>>>,
}

impl fmt::Debug for JiraBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraBackend")
            .field("site", &self.api.site)
            .field("project", &self.project)
            .field("issue_type", &self.issue_type)
            .field("form", &self.api.form)
            .finish_non_exhaustive()
    }
}

impl JiraBackend {
    /// The backend for `https://<site>/<PROJECT>`, with credentials from
    /// `ATLASSIAN_EMAIL` + `ATLASSIAN_API_KEY` or git's credential helpers
    /// and the allowlist from `REPOSIX_ALLOWED_ORIGINS`.
    pub fn from_address(address: &str) -> Result<JiraBackend, BackendError> {
        JiraBackend::from_vars(
            address,
            &|name| std::env::var(name).ok(),
            AllowList::from_env()?,
        )
    }

    /// Like [`JiraBackend::from_address`], reading variables through `var`
    /// (`ATLASSIAN_EMAIL`, `ATLASSIAN_API_KEY`, `ATLASSIAN_SCOPED_TOKEN`,
    /// `ATLASSIAN_CLOUD_ID`, `REPOSIX_ATLASSIAN_GATEWAY`).
    pub fn from_vars(
        address: &str,
        var: &dyn Fn(&str) -> Option<String>,
        allow: AllowList,
    ) -> Result<JiraBackend, BackendError> {
        let (api, route) = Api::from_vars("jira", address, var, allow)?;
        let mut b = JiraBackend::on(api, &route.key)?;
        for (k, v) in route.params {
            match k.as_str() {
                "issuetype" => b.issue_type = Some(v),
                other => {
                    return Err(BackendError::Spec(format!(
                        "jira address parameter {other:?}: only issuetype is known"
                    )))
                }
            }
        }
        Ok(b)
    }

    /// The backend for project `project` on `site` (`https://x.atlassian.net`,
    /// no trailing path) with explicit credentials and allowlist.
    pub fn new(
        site: &str,
        project: &str,
        auth: Auth,
        allow: AllowList,
    ) -> Result<JiraBackend, BackendError> {
        JiraBackend::on(Api::new("jira", site, auth, allow)?, project)
    }

    fn on(api: Api, project: &str) -> Result<JiraBackend, BackendError> {
        if project.is_empty() || project.contains(['/', '"', ' ']) {
            return Err(BackendError::Spec(format!(
                "JIRA project key {project:?}: expected a key such as PROJ"
            )));
        }
        Ok(JiraBackend {
            api,
            project: project.to_owned(),
            issue_type: None,
            page_size: 100,
            ids: IdentityMap::new(),
            create_meta: RefCell::new(None),
            links_seen: RefCell::new(HashMap::new()),
        })
    }

    /// How requests authenticate and where they go.
    pub fn token_form(&self) -> &TokenForm {
        &self.api.form
    }

    /// Read time and sleep through `clock` (tests pass a virtual one).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.api.http.set_clock(clock);
    }

    /// Request counters so far.
    pub fn stats(&self) -> Stats {
        self.api.http.stats()
    }

    /// One page of a JQL search: the issues and the token of the next page
    /// (`None` on the last page).
    fn search_page(
        &self,
        jql: &str,
        token: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), BackendError> {
        self.search_page_sized(jql, token, self.page_size)
    }

    fn search_page_sized(
        &self,
        jql: &str,
        token: Option<&str>,
        size: u32,
    ) -> Result<(Vec<Value>, Option<String>), BackendError> {
        let what = format!("JIRA search in {}", self.project);
        let mut body = json!({
            "jql": jql,
            "fields": FIELDS,
            "properties": [MARKER_PROPERTY],
            "maxResults": size,
        });
        if let Some(t) = token {
            body["nextPageToken"] = json!(t);
        }
        let mut page: Value = self
            .api
            .read(&what, Method::POST, "/rest/api/3/search/jql", Some(&body))?
            .json(&what)?;
        let issues = match page.get_mut("issues").map(Value::take) {
            Some(Value::Array(issues)) => issues,
            _ => return Err(malformed(&what, "no `issues` array")),
        };
        let next = page
            .get("nextPageToken")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let last = page
            .get("isLast")
            .and_then(Value::as_bool)
            .unwrap_or(next.is_none());
        match next {
            Some(n) if !last => {
                if token == Some(n.as_str()) {
                    return Err(malformed(&what, "nextPageToken did not advance"));
                }
                Ok((issues, Some(n)))
            }
            _ => Ok((issues, None)),
        }
    }

    /// All issues a JQL query matches, following `nextPageToken`.
    fn search(&self, jql: &str) -> Result<Vec<Value>, BackendError> {
        self.search_while(jql, |_, _| true)
    }

    /// The issues a JQL query matches, following `nextPageToken` while
    /// `more(page, issues so far)` says so after a page.
    fn search_while(
        &self,
        jql: &str,
        mut more: impl FnMut(&[Value], usize) -> bool,
    ) -> Result<Vec<Value>, BackendError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (issues, next) = self.search_page(jql, token.as_deref())?;
            let go_on = more(&issues, out.len() + issues.len());
            out.extend(issues);
            match next {
                Some(n) if go_on => token = Some(n),
                _ => return Ok(out),
            }
        }
    }

    /// Issues of the project updated at or after the JQL minute `from`,
    /// oldest first, possibly with repeats.
    ///
    /// A page token may be a position in a result that shifts when an
    /// issue already served is edited (it moves to the end) or deleted;
    /// following tokens would then skip an issue, and if that issue is older
    /// than the cursor it would never be listed again. So after every page
    /// that reaches a later minute the query is restarted from the minute
    /// of the last issue served (the overlap is deduplicated by the
    /// caller); tokens are followed only through a minute holding more than
    /// a page of issues.
    fn search_changed(&self, mut from: Option<i64>) -> Result<Vec<Value>, BackendError> {
        let what = format!("JIRA search in {}", self.project);
        let project = jql_string(&self.project);
        let mut out = Vec::new();
        loop {
            let jql = match from {
                None => format!("project = {project} ORDER BY updated ASC"),
                // Epoch milliseconds: no time zone to misread.
                Some(ms) => format!(
                    "project = {project} AND updated >= {} ORDER BY updated ASC",
                    ms.max(0)
                ),
            };
            let mut token: Option<String> = None;
            loop {
                let (issues, next) = self.search_page(&jql, token.as_deref())?;
                let last_minute = match issues.last() {
                    Some(raw) => {
                        let updated = raw
                            .pointer("/fields/updated")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let ms = time::parse_millis(updated).ok_or_else(|| {
                            malformed(&what, &format!("unparsable `updated` {updated:?}"))
                        })?;
                        Some(ms.div_euclid(60_000) * 60_000)
                    }
                    None => None,
                };
                out.extend(issues);
                let Some(next) = next else {
                    return Ok(out);
                };
                if last_minute.is_some() && last_minute > from {
                    from = last_minute;
                    break;
                }
                token = Some(next);
            }
        }
    }

    fn fetch(&self, key: &str) -> Result<Option<RemoteIssue>, BackendError> {
        let what = format!("JIRA issue {key}");
        let path = format!(
            "/rest/api/3/issue/{}?fields={}&properties={MARKER_PROPERTY}",
            enc(key),
            FIELDS.join(",")
        );
        match self.api.send(&what, Method::GET, &path, None) {
            Ok(resp) => {
                let v: Value = resp.json(&what)?;
                let issue = parse_issue(&v, &what, &self.ids)?;
                self.note_links(&v);
                Ok(Some(issue))
            }
            Err(BackendError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Remember the relations an issue object carries (`fields.issuelinks`).
    fn note_links(&self, v: &Value) {
        if let (Some(key), Some(list)) = (
            v.get("key").and_then(Value::as_str),
            v.pointer("/fields/issuelinks").and_then(Value::as_array),
        ) {
            self.links_seen
                .borrow_mut()
                .insert(key.to_owned(), parse_links(key, list));
        }
    }

    /// The status object (`{id, name, statusCategory}`) of an issue now.
    fn status_now(&self, key: &str) -> Result<Value, BackendError> {
        let what = format!("JIRA status of {key}");
        let path = format!("/rest/api/3/issue/{}?fields=status", enc(key));
        let v: Value = self
            .api
            .send(&what, Method::GET, &path, None)?
            .json(&what)?;
        v.pointer("/fields/status")
            .cloned()
            .ok_or_else(|| malformed(&what, "no status"))
    }

    /// Move issue `key` to a status that reads back as `want`, filling the
    /// transition screens' required fields (the resolution) and walking
    /// several transitions where the workflow has no direct one.
    fn transition(&self, key: &str, want: Status) -> Result<(), BackendError> {
        let mut visited: Vec<String> = Vec::new();
        if let Some(id) = self.status_now(key)?.get("id").and_then(Value::as_str) {
            visited.push(id.to_owned());
        }
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..MAX_TRANSITION_STEPS {
            let what = format!("JIRA transitions of {key}");
            let path = format!(
                "/rest/api/3/issue/{}/transitions?expand=transitions.fields",
                enc(key)
            );
            let list: Value = self
                .api
                .send(&what, Method::GET, &path, None)?
                .json(&what)?;
            let transitions: Vec<&Value> = list
                .get("transitions")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(&what, "no `transitions` array"))?
                .iter()
                .filter(|t| t.get("isAvailable").and_then(Value::as_bool) != Some(false))
                .collect();
            for t in &transitions {
                seen.push(describe_transition(t));
            }
            // A transition straight to `want`.
            let direct = transitions
                .iter()
                .find_map(|t| plan_transition(t, Some(want)).ok().map(|f| (*t, f)));
            if let Some((t, fields)) = direct {
                return self.do_transition(key, want, t, fields);
            }
            // Else one step towards it, to a status not visited yet.
            let step = transitions
                .iter()
                .filter(|t| {
                    t.pointer("/to/id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| !visited.iter().any(|v| v == id))
                })
                .filter_map(|t| plan_transition(t, None).ok().map(|f| (*t, f)))
                .min_by_key(|(t, _)| {
                    let cat = t
                        .pointer("/to/statusCategory/key")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    (category_rank(cat) - want_rank(want)).abs()
                });
            let Some((t, fields)) = step else {
                self.walk_back(key, &visited, &transitions)?;
                break;
            };
            if let Some(id) = t.pointer("/to/id").and_then(Value::as_str) {
                visited.push(id.to_owned());
            }
            self.do_transition(key, want, t, fields)?;
        }
        seen.sort();
        seen.dedup();
        Err(BackendError::Spec(format!(
            "JIRA issue {key}: no workflow transitions lead to a status that reads back as \
             {want} (seen: {}); add one to the workflow or pick another status",
            if seen.is_empty() {
                "none".to_owned()
            } else {
                seen.join(", ")
            }
        )))
    }

    /// After a walk that found no way on: return to where it started, if a
    /// transition leads there, so no near miss is left behind.
    fn walk_back(
        &self,
        key: &str,
        visited: &[String],
        transitions: &[&Value],
    ) -> Result<(), BackendError> {
        let (Some(start), true) = (visited.first(), visited.len() > 1) else {
            return Ok(());
        };
        let back = transitions.iter().find_map(|t| {
            (t.pointer("/to/id").and_then(Value::as_str) == Some(start.as_str()))
                .then(|| plan_transition(t, None).ok().map(|f| (*t, f)))
                .flatten()
        });
        match back {
            Some((t, fields)) => self.do_transition(key, Status::Open, t, fields),
            None => Ok(()),
        }
    }

    fn do_transition(
        &self,
        key: &str,
        want: Status,
        t: &Value,
        fields: Map<String, Value>,
    ) -> Result<(), BackendError> {
        let id = t
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(key, "a transition without an id"))?;
        let what = format!("JIRA transition {key} towards {want}");
        let path = format!("/rest/api/3/issue/{}/transitions", enc(key));
        let mut body = json!({"transition": {"id": id}});
        if !fields.is_empty() {
            body["fields"] = Value::Object(fields);
        }
        self.api.send(&what, Method::POST, &path, Some(&body))?;
        Ok(())
    }

    /// The create screen of the issue type new issues get: (type id, field
    /// ids on the screen). Read once.
    fn create_screen(&self) -> Result<(String, Vec<String>), BackendError> {
        if let Some(meta) = self.create_meta.borrow().clone() {
            return Ok(meta);
        }
        let what = format!("JIRA create metadata of {}", self.project);
        let path = format!(
            "/rest/api/3/issue/createmeta/{}/issuetypes?maxResults=200",
            enc(&self.project)
        );
        let v: Value = self
            .api
            .send(&what, Method::GET, &path, None)?
            .json(&what)?;
        let types: Vec<&Value> = v
            .get("issueTypes")
            .or_else(|| v.get("createMetaIssueType"))
            .or_else(|| v.get("values"))
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&what, "no `issueTypes` array"))?
            .iter()
            .collect();
        let name_of = |t: &Value| {
            t.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let standard = |t: &&&Value| t.get("subtask").and_then(Value::as_bool) != Some(true);
        let chosen = match &self.issue_type {
            Some(want) => types.iter().find(|t| name_of(t).eq_ignore_ascii_case(want)),
            None => types
                .iter()
                .find(|t| name_of(t) == "Task")
                .or_else(|| types.iter().find(standard)),
        };
        let Some(chosen) = chosen else {
            let names: Vec<String> = types.iter().map(|t| name_of(t)).collect();
            return Err(BackendError::Spec(format!(
                "JIRA project {}: no issue type {} (it has: {}); choose one with \
                 jira::<site>/{}?issuetype=<name>",
                self.project,
                self.issue_type
                    .as_deref()
                    .map_or_else(|| "to create issues with".to_owned(), |t| format!("{t:?}")),
                names.join(", "),
                self.project
            )));
        };
        let type_id = chosen
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&what, "an issue type without an id"))?
            .to_owned();
        let path = format!(
            "/rest/api/3/issue/createmeta/{}/issuetypes/{}?maxResults=200",
            enc(&self.project),
            enc(&type_id)
        );
        let v: Value = self
            .api
            .send(&what, Method::GET, &path, None)?
            .json(&what)?;
        let fields = v
            .get("fields")
            .or_else(|| v.get("results"))
            .or_else(|| v.get("values"))
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&what, "no `fields` array"))?;
        let mut on_screen = Vec::new();
        let mut unfillable = Vec::new();
        for f in fields {
            let Some(id) = f
                .get("fieldId")
                .or_else(|| f.get("key"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            on_screen.push(id.to_owned());
            let required = f.get("required").and_then(Value::as_bool) == Some(true);
            let default = f.get("hasDefaultValue").and_then(Value::as_bool) == Some(true);
            let known = matches!(
                id,
                "summary"
                    | "project"
                    | "issuetype"
                    | "description"
                    | "reporter"
                    | "assignee"
                    | "labels"
            );
            if required && !default && !known {
                unfillable.push(id.to_owned());
            }
        }
        if !unfillable.is_empty() {
            return Err(BackendError::Spec(format!(
                "JIRA project {}: issue type {} requires fields reposix cannot fill ({}); \
                 pick another type with ?issuetype=",
                self.project,
                name_of(chosen),
                unfillable.join(", ")
            )));
        }
        let meta = (type_id, on_screen);
        self.create_meta.replace(Some(meta.clone()));
        Ok(meta)
    }

    /// The account id to send for a local assignee name, or why not.
    fn account_for(&self, name: &str) -> Result<String, Refusal> {
        let id = self.ids.outgoing(BackendKind::Jira, name);
        if looks_like_account_id(id) {
            Ok(id.to_owned())
        } else {
            Err(Refusal {
                field: "assignees".into(),
                value: name.to_owned(),
                reason: format!(
                    "JIRA assigns by account id only; map the name with `git config --add \
                     reposix.identity \"{name} jira:<accountId>\"`"
                ),
            })
        }
    }

    /// Keys after the newest one search knows, read one by one (a GET is
    /// consistent where search lags): the issue carrying `marker`, if any.
    fn probe_new_keys(&self, marker: &str) -> Result<Option<RemoteIssue>, BackendError> {
        let project = jql_string(&self.project);
        let (newest, _) = self.search_page_sized(
            &format!("project = {project} ORDER BY created DESC"),
            None,
            1,
        )?;
        let prefix = format!("{}-", self.project);
        let n: u64 = newest
            .first()
            .and_then(|v| v.get("key"))
            .and_then(Value::as_str)
            .and_then(|k| k.strip_prefix(&prefix))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for k in n + 1..=n + 20 {
            match self.fetch(&format!("{prefix}{k}"))? {
                Some(issue) if issue.marker.as_deref() == Some(marker) => return Ok(Some(issue)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    /// One search for the marker: by property where JIRA indexes it, else
    /// through the issues changed since `since` or the newest created.
    fn search_marker(
        &self,
        marker: &str,
        since: Option<&str>,
    ) -> Result<Option<RemoteIssue>, BackendError> {
        let what = format!("JIRA search in {}", self.project);
        let project = jql_string(&self.project);
        let jql = format!(
            "project = {project} AND issue.property[{MARKER_PROPERTY}].id = {}",
            jql_string(marker)
        );
        let candidates = match self.search(&jql) {
            Ok(found) => found,
            // The property is not searchable on this site: scan instead.
            Err(BackendError::Http { status: 400, .. }) => match since.and_then(time::parse_millis)
            {
                Some(ms) => self.search_changed(Some(ms - 60_000))?,
                None => {
                    // Newest first, a page at a time, stopping at a match.
                    let jql = format!("project = {project} ORDER BY created DESC");
                    self.search_while(&jql, |page, so_far| {
                        let hit = page.iter().any(|raw| {
                            raw.pointer(&format!("/properties/{MARKER_PROPERTY}/id"))
                                .and_then(Value::as_str)
                                == Some(marker)
                        });
                        !hit && so_far < MARKER_SCAN_ISSUES
                    })?
                }
            },
            Err(e) => return Err(e),
        };
        let mut found: Option<RemoteIssue> = None;
        for raw in &candidates {
            let issue = parse_issue(raw, &what, &self.ids)?;
            if issue.marker.as_deref() == Some(marker) {
                // Two with one marker: keep the first created.
                let older = found
                    .as_ref()
                    .is_none_or(|f| key_number(&issue.remote_id) < key_number(&f.remote_id));
                if older {
                    found = Some(issue);
                }
            }
        }
        Ok(found)
    }
}

fn key_number(key: &str) -> u64 {
    key.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Whether `s` has the shape of a JIRA account id (`557058:<uuid>` or 24
/// hex digits), not a display name or an email.
pub fn looks_like_account_id(s: &str) -> bool {
    let ok_chars = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-');
    ok_chars && (s.contains(':') || (s.len() >= 24 && s.bytes().all(|b| b.is_ascii_hexdigit())))
}

fn category_rank(key: &str) -> i32 {
    match key {
        "done" => 2,
        "indeterminate" => 1,
        _ => 0,
    }
}

fn want_rank(want: Status) -> i32 {
    match want {
        Status::Open => 0,
        Status::InProgress | Status::InReview => 1,
        Status::Done | Status::WontFix => 2,
    }
}

fn describe_transition(t: &Value) -> String {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_owned();
    format!(
        "{:?} -> {:?} ({})",
        s(t.get("name")),
        s(t.pointer("/to/name")),
        s(t.pointer("/to/statusCategory/key"))
    )
}

/// The `fields` to send with transition `t` so that the issue reads back as
/// `want` (or, with `None`, any status: a step of a walk); `Err` if the
/// transition cannot get there or needs fields reposix cannot fill.
fn plan_transition(t: &Value, want: Option<Status>) -> Result<Map<String, Value>, ()> {
    let to = t.get("to").ok_or(())?;
    let name = to.get("name").and_then(Value::as_str).ok_or(())?;
    let category = to
        .pointer("/statusCategory/key")
        .and_then(Value::as_str)
        .unwrap_or("");
    let screen = t.get("fields").and_then(Value::as_object);
    let mut fields = Map::new();
    let mut resolution: Option<String> = None;
    if let Some(screen) = screen {
        for (id, f) in screen {
            let required = f.get("required").and_then(Value::as_bool) == Some(true);
            let default = f.get("hasDefaultValue").and_then(Value::as_bool) == Some(true);
            if id == "resolution" && category == "done" {
                let allowed: Vec<&str> = f
                    .get("allowedValues")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.get("name").and_then(Value::as_str))
                            .collect()
                    })
                    .unwrap_or_default();
                let wont = |n: &str| {
                    let n = n.to_lowercase();
                    WONT_FIX_WORDS.iter().any(|w| n.contains(w))
                };
                let pick = match want {
                    Some(Status::WontFix) => allowed
                        .iter()
                        .find(|n| n.eq_ignore_ascii_case("won't do"))
                        .or_else(|| allowed.iter().find(|n| wont(n))),
                    _ => allowed
                        .iter()
                        .find(|n| n.eq_ignore_ascii_case("done"))
                        .or_else(|| allowed.iter().find(|n| !wont(n))),
                };
                if let Some(r) = pick {
                    fields.insert("resolution".into(), json!({"name": r}));
                    resolution = Some((*r).to_owned());
                } else if required && !default {
                    return Err(());
                }
            } else if required && !default {
                return Err(());
            }
        }
    }
    match want {
        None => Ok(fields),
        Some(w) if map_status(name, category, resolution.as_deref()) == w => Ok(fields),
        Some(_) => Err(()),
    }
}

/// Refusals for a summary or text JIRA would refuse.
fn check_sizes(title: Option<&str>, body: Option<&str>, body_field: &str) -> Vec<Refusal> {
    let mut out = Vec::new();
    if let Some(t) = title {
        let n = t.chars().count();
        if n > MAX_SUMMARY_CHARS || t.contains(['\n', '\r']) {
            out.push(Refusal {
                field: "title".into(),
                value: format!("{n} characters"),
                reason: format!(
                    "a JIRA summary holds at most {MAX_SUMMARY_CHARS} characters on one line"
                ),
            });
        }
    }
    if let Some(b) = body {
        let n = b.chars().count();
        if n > MAX_TEXT_CHARS {
            out.push(Refusal {
                field: body_field.into(),
                value: format!("{n} characters"),
                reason: format!("JIRA keeps at most {MAX_TEXT_CHARS} characters"),
            });
        }
    }
    out
}

/// A JQL string literal.
fn jql_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The reposix status of a JIRA status (`{name, statusCategory{key}}`) with
/// an optional resolution name; `None` if it is not a status object.
fn status_of(status: &Value, resolution: Option<&str>) -> Option<Status> {
    let name = status.get("name").and_then(Value::as_str)?;
    let category = status
        .pointer("/statusCategory/key")
        .and_then(Value::as_str)
        .unwrap_or("");
    Some(map_status(name, category, resolution))
}

/// The status mapping table of the module documentation.
pub fn map_status(name: &str, category: &str, resolution: Option<&str>) -> Status {
    let name = name.to_lowercase();
    match category {
        "indeterminate" if name.contains("review") => Status::InReview,
        "indeterminate" => Status::InProgress,
        "done" => {
            let resolution = resolution.unwrap_or("").to_lowercase();
            if WONT_FIX_WORDS
                .iter()
                .any(|w| name.contains(w) || resolution.contains(w))
            {
                Status::WontFix
            } else {
                Status::Done
            }
        }
        _ => Status::Open,
    }
}

/// A search or GET issue object as a [`RemoteIssue`].
fn parse_issue(v: &Value, what: &str, ids: &IdentityMap) -> Result<RemoteIssue, BackendError> {
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(what, "issue without a key"))?;
    let fields = v
        .get("fields")
        .filter(|f| f.is_object())
        .ok_or_else(|| malformed(what, &format!("issue {key} without fields")))?;
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let updated = text("updated");
    let ms = time::parse_millis(&updated).ok_or_else(|| {
        malformed(
            what,
            &format!("issue {key}: unparsable `updated` {updated:?}"),
        )
    })?;
    let resolution = fields.pointer("/resolution/name").and_then(Value::as_str);
    let status = fields
        .get("status")
        .and_then(|s| status_of(s, resolution))
        .ok_or_else(|| malformed(what, &format!("issue {key} without a status")))?;
    let mut labels: Vec<String> = fields
        .get("labels")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    labels.dedup();
    let assignees = fields
        .pointer("/assignee/accountId")
        .and_then(Value::as_str)
        .map(|a| vec![ids.incoming(BackendKind::Jira, a).to_owned()])
        .unwrap_or_default();
    let marker = v
        .pointer(&format!("/properties/{MARKER_PROPERTY}/id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(RemoteIssue {
        remote_id: key.to_owned(),
        title: text("summary"),
        body: normalize_newlines(&adf::to_markdown(
            fields.get("description").unwrap_or(&Value::Null),
        )),
        status,
        labels,
        assignees,
        revision: Revision {
            // 0 before 1970.
            order: u64::try_from(ms).unwrap_or(0),
            token: updated.clone(),
        },
        created_at: text("created").into(),
        updated_at: updated.into(),
        marker,
    })
}

fn parse_comment(v: &Value, what: &str, ids: &IdentityMap) -> Result<RemoteComment, BackendError> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(what, "comment without an id"))?;
    let text = |name: &str| v.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
    let author = v
        .pointer("/author/accountId")
        .or_else(|| v.pointer("/author/displayName"))
        .and_then(Value::as_str)
        .map(|a| ids.incoming(BackendKind::Jira, a))
        .unwrap_or("")
        .to_owned();
    Ok(RemoteComment {
        remote_id: id.to_owned(),
        author,
        body: normalize_newlines(&adf::to_markdown(v.get("body").unwrap_or(&Value::Null))),
        created_at: text("created").into(),
        updated_at: text("updated").into(),
        marker: None,
    })
}

/// Refuse what JIRA cannot hold before anything is sent.
fn validate(labels: Option<&[String]>, assignees: Option<&[String]>) -> Result<(), BackendError> {
    if let Some(bad) = labels.and_then(|l| {
        l.iter()
            .find(|l| l.is_empty() || l.contains(char::is_whitespace))
    }) {
        return Err(BackendError::Spec(format!(
            "JIRA labels cannot be empty or contain whitespace: {bad:?} (rename the label, \
             e.g. with dashes)"
        )));
    }
    if let Some(a) = assignees.filter(|a| a.len() > 1) {
        return Err(BackendError::Spec(format!(
            "JIRA issues have one assignee, not {} ({})",
            a.len(),
            a.join(", ")
        )));
    }
    Ok(())
}

impl Backend for JiraBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Jira
    }

    fn instance(&self) -> String {
        format!("{}/{}", self.api.site, self.project)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            comments: true,
            conditional_update: false,
            closed_state: true,
            multiple_assignees: false,
            hidden_marker: true,
            links: &[LinkKind::Blocks, LinkKind::Duplicates, LinkKind::Relates],
        }
    }

    fn list_changed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<RemoteIssue>, Option<String>), BackendError> {
        let cursor_ms = cursor_millis("JIRA", cursor)?;
        let from = cursor_ms.map(|ms| ms - 60_000);
        let what = format!("JIRA search in {}", self.project);
        let mut newest: BTreeMap<String, RemoteIssue> = BTreeMap::new();
        for raw in self.search_changed(from)? {
            let issue = parse_issue(&raw, &what, &self.ids)?;
            match newest.get(&issue.remote_id) {
                Some(seen) if seen.revision.order >= issue.revision.order => {}
                _ => {
                    self.note_links(&raw);
                    newest.insert(issue.remote_id.clone(), issue);
                }
            }
        }
        let mut issues: Vec<RemoteIssue> = newest.into_values().collect();
        issues.sort_by(|a, b| {
            a.revision
                .cmp(&b.revision)
                .then(a.remote_id.cmp(&b.remote_id))
        });
        let cursor_order = cursor_ms.map(|ms| u64::try_from(ms).unwrap_or(0));
        let next = match issues.last() {
            Some(i) if cursor_order.is_none_or(|c| i.revision.order >= c) => {
                Some(i.updated_at.to_string())
            }
            _ => cursor.map(str::to_owned),
        };
        Ok((issues, next))
    }

    fn get(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError> {
        self.fetch(remote_id)
    }

    fn create(&self, new: &NewRemoteIssue) -> Result<RemoteIssue, BackendError> {
        let what = format!("JIRA create issue in {}", self.project);
        validate(Some(&new.labels), Some(&new.assignees))?;
        refuse_unsent(
            &what,
            check_sizes(Some(&new.title), Some(&new.body), "body"),
        )?;
        let mut refused = Vec::new();
        let account = match new.assignees.first().map(|a| self.account_for(a)) {
            Some(Ok(id)) => Some(id),
            Some(Err(r)) => {
                refused.push(r);
                None
            }
            None => None,
        };
        let (type_id, screen) = self.create_screen()?;
        let on_screen = |f: &str| screen.iter().any(|s| s == f);
        let mut fields = json!({
            "project": {"key": self.project},
            "issuetype": {"id": type_id},
            "summary": new.title,
        });
        // Only fields on the create screen, and never empty ones; the rest
        // follow in an edit.
        let mut later = Map::new();
        let mut put = |name: &str, value: Value| {
            if on_screen(name) {
                fields[name] = value;
            } else {
                later.insert(name.to_owned(), value);
            }
        };
        if !new.body.is_empty() {
            put("description", adf::from_markdown(&new.body));
        }
        if !new.labels.is_empty() {
            put("labels", json!(new.labels));
        }
        if let Some(a) = &account {
            put("assignee", json!({"accountId": a}));
        }
        let body = json!({
            "fields": fields,
            "properties": [{"key": MARKER_PROPERTY, "value": {"id": new.marker}}],
        });
        let created: Value = self
            .api
            .send(&what, Method::POST, "/rest/api/3/issue", Some(&body))?
            .json(&what)?;
        let key = created
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&what, "no key in the response"))?
            .to_owned();
        let not_found = || BackendError::NotFound {
            what: format!("JIRA issue {key} right after creating it"),
        };
        if !later.is_empty() {
            let path = format!("/rest/api/3/issue/{}", enc(&key));
            self.api.send(
                &format!("JIRA edit new issue {key}"),
                Method::PUT,
                &path,
                Some(&json!({ "fields": later })),
            )?;
        }
        let mut issue = self.fetch(&key)?.ok_or_else(not_found)?;
        if issue.status != new.status {
            self.transition(&key, new.status)?;
            issue = self.fetch(&key)?.ok_or_else(not_found)?;
        }
        applied(what, issue, refused)
    }

    fn update(
        &self,
        remote_id: &str,
        patch: &IssuePatch,
        expected: &Revision,
    ) -> Result<RemoteIssue, BackendError> {
        validate(patch.labels.as_deref(), patch.assignees.as_deref())?;
        let what = format!("JIRA issue {remote_id}");
        refuse_unsent(
            &what,
            check_sizes(patch.title.as_deref(), patch.body.as_deref(), "body"),
        )?;
        let mut refused = Vec::new();
        let current = self
            .fetch(remote_id)?
            .ok_or_else(|| BackendError::NotFound { what: what.clone() })?;
        if current.revision.token != expected.token {
            return Err(BackendError::Conflict { what });
        }
        let mut fields = Map::new();
        let mut update = Map::new();
        if let Some(title) = patch.title.as_ref().filter(|t| **t != current.title) {
            fields.insert("summary".into(), json!(title));
        }
        if let Some(body) = patch.body.as_ref().filter(|b| **b != current.body) {
            let adf = if body.is_empty() {
                Value::Null
            } else {
                adf::from_markdown(body)
            };
            fields.insert("description".into(), adf);
        }
        if let Some(want) = &patch.labels {
            let mut ops: Vec<Value> = Vec::new();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            want_sorted.dedup();
            for l in want_sorted.iter().filter(|l| !current.labels.contains(l)) {
                ops.push(json!({"add": l}));
            }
            for l in current.labels.iter().filter(|l| !want_sorted.contains(l)) {
                ops.push(json!({"remove": l}));
            }
            if !ops.is_empty() {
                update.insert("labels".into(), Value::Array(ops));
            }
        }
        if let Some(want) = &patch.assignees {
            if want.first() != current.assignees.first() {
                match want.first().map(|a| self.account_for(a)) {
                    None => {
                        fields.insert("assignee".into(), Value::Null);
                    }
                    Some(Ok(id)) => {
                        fields.insert("assignee".into(), json!({"accountId": id}));
                    }
                    Some(Err(r)) => refused.push(r),
                }
            }
        }
        if !fields.is_empty() || !update.is_empty() {
            let mut body = Map::new();
            if !fields.is_empty() {
                body.insert("fields".into(), Value::Object(fields));
            }
            if !update.is_empty() {
                body.insert("update".into(), Value::Object(update));
            }
            let path = format!("/rest/api/3/issue/{}", enc(remote_id));
            self.api.send(
                &format!("JIRA edit {remote_id}"),
                Method::PUT,
                &path,
                Some(&Value::Object(body)),
            )?;
        }
        if let Some(status) = patch.status.filter(|s| *s != current.status) {
            self.transition(remote_id, status)?;
        }
        let after = self
            .fetch(remote_id)?
            .ok_or_else(|| BackendError::NotFound { what: what.clone() })?;
        applied(what, after, refused)
    }

    fn find_by_marker(
        &self,
        marker: &str,
        since: Option<&str>,
    ) -> Result<Option<RemoteIssue>, BackendError> {
        if let Some(found) = self.search_marker(marker, since)? {
            return Ok(Some(found));
        }
        // Search lags writes: read the newest keys directly, then search
        // again after a pause, before saying "not there".
        if let Some(found) = self.probe_new_keys(marker)? {
            return Ok(Some(found));
        }
        for wait in MARKER_RETRY_WAITS {
            self.api.http.pause(wait);
            if let Some(found) = self.search_marker(marker, since)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn comments(&self, remote_id: &str) -> Result<Vec<RemoteComment>, BackendError> {
        let what = format!("JIRA comments of {remote_id}");
        let mut out = Vec::new();
        loop {
            let path = format!(
                "/rest/api/3/issue/{}/comment?startAt={}&maxResults={}&orderBy=created",
                enc(remote_id),
                out.len(),
                self.page_size
            );
            let page: Value = self
                .api
                .send(&what, Method::GET, &path, None)?
                .json(&what)?;
            let comments = page
                .get("comments")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(&what, "no `comments` array"))?;
            for c in comments {
                out.push(parse_comment(c, &what, &self.ids)?);
            }
            let total = page.get("total").and_then(Value::as_u64).unwrap_or(0);
            if comments.is_empty() || out.len() as u64 >= total {
                return Ok(out);
            }
        }
    }

    /// Adds a comment. `marker` is not stored: JIRA comment ids are the
    /// identity the caller maps (see the module documentation).
    fn add_comment(
        &self,
        remote_id: &str,
        body: &str,
        _marker: &str,
    ) -> Result<RemoteComment, BackendError> {
        let what = format!("JIRA add comment to {remote_id}");
        refuse_unsent(&what, check_sizes(None, Some(body), "comment"))?;
        let path = format!("/rest/api/3/issue/{}/comment", enc(remote_id));
        let v: Value = self
            .api
            .send(
                &what,
                Method::POST,
                &path,
                Some(&json!({"body": adf::from_markdown(body)})),
            )?
            .json(&what)?;
        parse_comment(&v, &what, &self.ids)
    }

    fn edit_comment(
        &self,
        remote_id: &str,
        comment_id: &str,
        body: &str,
    ) -> Result<RemoteComment, BackendError> {
        let what = format!("JIRA edit comment {comment_id} of {remote_id}");
        refuse_unsent(&what, check_sizes(None, Some(body), "comment"))?;
        let path = format!(
            "/rest/api/3/issue/{}/comment/{}",
            enc(remote_id),
            enc(comment_id)
        );
        let v: Value = self
            .api
            .send(
                &what,
                Method::PUT,
                &path,
                Some(&json!({"body": adf::from_markdown(body)})),
            )?
            .json(&what)?;
        parse_comment(&v, &what, &self.ids)
    }

    fn set_notice(&mut self, notice: Notice) {
        self.api.http.set_notice(notice);
    }

    fn set_identities(&mut self, ids: IdentityMap) {
        self.ids = ids;
    }

    /// From `fields.issuelinks` of the issue: the last search's copy unless
    /// `fresh`, else `GET /issue/{key}?fields=issuelinks`. Link types other
    /// than Blocks, Duplicate and Relates (matched by name, whatever the
    /// case), and links to issues of other projects, are left out.
    fn links(&self, remote_id: &str, fresh: bool) -> Result<RemoteLinks, BackendError> {
        if !fresh {
            if let Some(seen) = self.links_seen.borrow().get(remote_id) {
                return Ok(RemoteLinks {
                    links: seen.clone(),
                    unavailable: Vec::new(),
                });
            }
        }
        let what = format!("JIRA links of {remote_id}");
        let path = format!("/rest/api/3/issue/{}?fields=issuelinks", enc(remote_id));
        let v: Value = self
            .api
            .send(&what, Method::GET, &path, None)?
            .json(&what)?;
        let list = v
            .pointer("/fields/issuelinks")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&what, "no `fields.issuelinks` array"))?;
        let links = parse_links(remote_id, list);
        self.links_seen
            .borrow_mut()
            .insert(remote_id.to_owned(), links.clone());
        Ok(RemoteLinks {
            links,
            unavailable: Vec::new(),
        })
    }

    /// `POST /rest/api/3/issueLink`. The request's `inwardIssue` is the
    /// end that reads with the type's *outward* phrase ("blocks",
    /// "duplicates"): it is the blocker (see [`link_request`]). JIRA answers
    /// 201 with no body, also for a link it already has (it keeps one), so
    /// the link's id is only learnt by listing. A 404 (linking disabled on
    /// the site, a link type the site does not have) is
    /// [`BackendError::Unsupported`].
    fn add_link(&self, link: &RemoteLink) -> Result<(), BackendError> {
        let what = format!("JIRA link {} {} {}", link.from, link.kind.as_str(), link.to);
        let body =
            link_request(link).ok_or_else(|| BackendError::Unsupported { what: what.clone() })?;
        self.forget_links(link);
        match self
            .api
            .send(&what, Method::POST, "/rest/api/3/issueLink", Some(&body))
        {
            Ok(_) => Ok(()),
            Err(BackendError::NotFound { .. }) => Err(BackendError::Unsupported { what }),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /rest/api/3/issueLink/{id}`; a 404 means it is gone already.
    fn remove_link(&self, link: &RemoteLink) -> Result<(), BackendError> {
        let what = format!(
            "JIRA unlink {} {} {}",
            link.from,
            link.kind.as_str(),
            link.to
        );
        let id = link.id.as_deref().ok_or_else(|| BackendError::Malformed {
            what: what.clone(),
            why: "a relation without its JIRA link id (list it first)".into(),
        })?;
        self.forget_links(link);
        let path = format!("/rest/api/3/issueLink/{}", enc(id));
        match self.api.send(&what, Method::DELETE, &path, None) {
            Ok(_) | Err(BackendError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl JiraBackend {
    /// Drop what the last reads said about the relations of both ends.
    fn forget_links(&self, link: &RemoteLink) {
        let mut seen = self.links_seen.borrow_mut();
        seen.remove(&link.from);
        seen.remove(&link.to);
    }
}

/// The JIRA link type a relation is written as.
fn link_type(kind: LinkKind) -> Option<&'static str> {
    match kind {
        LinkKind::Blocks => Some("Blocks"),
        LinkKind::Duplicates => Some("Duplicate"),
        LinkKind::Relates => Some("Relates"),
        LinkKind::Parent => None,
    }
}

/// The body of `POST /rest/api/3/issueLink` for `link`.
///
/// Direction, as JIRA Cloud behaves (the OpenAPI text calls the outward
/// issue the "from" issue, which is not what happens): the request's
/// `inwardIssue` is the issue that reads with the type's outward phrase,
/// so `{"type":{"name":"Blocks"},"inwardIssue":{"key":"A"},
/// "outwardIssue":{"key":"B"}}` makes "A blocks B"; reading A back then
/// shows `{"outwardIssue":{"key":"B"}}` ("A blocks B") and B shows
/// `{"inwardIssue":{"key":"A"}}` ("B is blocked by A"). Sources: the
/// Atlassian developer guide "Jira issue linking model" (the read side),
/// mozilla/jira-bugzilla-integration#1285, atlassian/atlassian-mcp-server#112
/// and b1ff/atlassian-dc-mcp#74 (the write side, checked against Jira
/// Cloud).
pub fn link_request(link: &RemoteLink) -> Option<Value> {
    Some(json!({
        "type": {"name": link_type(link.kind)?},
        "inwardIssue": {"key": link.from},
        "outwardIssue": {"key": link.to},
    }))
}

/// The relations in `fields.issuelinks` of issue `key`: an entry with
/// `outwardIssue: Y` reads "key <outward phrase> Y" (key is the blocker),
/// one with `inwardIssue: Y` reads "key <inward phrase> Y" (Y is).
fn parse_links(key: &str, list: &[Value]) -> Vec<RemoteLink> {
    let mut out: Vec<RemoteLink> = Vec::new();
    let project = key.rsplit_once('-').map(|(p, _)| p);
    for entry in list {
        let name = entry
            .pointer("/type/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = [LinkKind::Blocks, LinkKind::Duplicates, LinkKind::Relates]
            .into_iter()
            .find(|k| link_type(*k).is_some_and(|t| t.eq_ignore_ascii_case(name)));
        let Some(kind) = kind else { continue };
        let outward = entry.pointer("/outwardIssue/key").and_then(Value::as_str);
        let inward = entry.pointer("/inwardIssue/key").and_then(Value::as_str);
        let (from, to) = match (outward, inward) {
            (Some(other), None) => (key, other),
            (None, Some(other)) => (other, key),
            _ => continue,
        };
        let other = if from == key { to } else { from };
        if other.rsplit_once('-').map(|(p, _)| p) != project {
            continue;
        }
        let mut link = RemoteLink::new(kind, from, to);
        link.id = entry.get("id").and_then(Value::as_str).map(str::to_owned);
        if !out.iter().any(|l| l.same(&link)) {
            out.push(link);
        }
    }
    out
}

/// Decode a response body as this adapter does: a search page (`issues`)
/// or one issue, then a comment page (`comments`). The entry point of the
/// fuzz target `tracker_json`; never panics.
pub fn parse_wire(
    body: &[u8],
) -> (
    Result<Vec<RemoteIssue>, BackendError>,
    Result<Vec<RemoteComment>, BackendError>,
) {
    let what = "parsing a JIRA response";
    let ids = IdentityMap::new();
    let issues = http::decode_json::<Value>(body, what).and_then(|v| {
        match v.get("issues").and_then(Value::as_array) {
            Some(list) => list.iter().map(|i| parse_issue(i, what, &ids)).collect(),
            None => parse_issue(&v, what, &ids).map(|i| vec![i]),
        }
    });
    // Issue links, as `links` reads them from each issue object.
    if let Ok(v) = http::decode_json::<Value>(body, what) {
        let all = match v.get("issues").and_then(Value::as_array) {
            Some(list) => list.iter().collect::<Vec<_>>(),
            None => vec![&v],
        };
        for i in all {
            if let (Some(key), Some(list)) = (
                i.get("key").and_then(Value::as_str),
                i.pointer("/fields/issuelinks").and_then(Value::as_array),
            ) {
                let _ = parse_links(key, list);
            }
        }
    }
    let comments = http::decode_json::<Value>(body, what).and_then(|v| {
        v.get("comments")
            .and_then(Value::as_array)
            .map_or(Ok(Vec::new()), |list| {
                list.iter().map(|c| parse_comment(c, what, &ids)).collect()
            })
    });
    (issues, comments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        assert_eq!(map_status("To Do", "new", None), Status::Open);
        assert_eq!(map_status("Backlog", "undefined", None), Status::Open);
        assert_eq!(
            map_status("In Progress", "indeterminate", None),
            Status::InProgress
        );
        assert_eq!(
            map_status("Code REVIEW", "indeterminate", None),
            Status::InReview
        );
        assert_eq!(map_status("Done", "done", None), Status::Done);
        assert_eq!(map_status("Done", "done", Some("Done")), Status::Done);
        assert_eq!(
            map_status("Done", "done", Some("Won't Do")),
            Status::WontFix
        );
        assert_eq!(
            map_status("Won\u{2019}t Fix", "done", None),
            Status::WontFix
        );
        assert_eq!(map_status("Declined", "done", None), Status::WontFix);
        assert_eq!(map_status("Rejected", "done", None), Status::WontFix);
        assert_eq!(
            map_status("Closed", "done", Some("Cannot Reproduce")),
            Status::WontFix
        );
        // Names only refine within a category.
        assert_eq!(
            map_status("Rejected", "indeterminate", None),
            Status::InProgress
        );
    }

    #[test]
    fn jql_strings_escape() {
        assert_eq!(jql_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn labels_and_assignees_are_checked_before_sending() {
        assert!(validate(Some(&["ok-label".into()]), Some(&["acc1".into()])).is_ok());
        let err = validate(Some(&["needs review".into()]), None).expect_err("space refused");
        assert!(err.to_string().contains("\"needs review\""), "{err}");
        assert!(validate(None, Some(&["a".into(), "b".into()])).is_err());
    }

    #[test]
    fn issues_parse_from_wire_shape() {
        let v = json!({
            "id": "10002", "key": "P-1",
            "fields": {
                "summary": "S",
                "description": adf::from_markdown("x\n<y>"),
                "status": {"id": "3", "name": "In Progress", "statusCategory": {"key": "indeterminate"}},
                "labels": ["b", "a", "a"],
                "assignee": {"accountId": "acc-1", "displayName": "Ann"},
                "created": "2021-01-18T23:45:00.000+0000",
                "updated": "2021-01-18T23:46:00.001+0000",
                "resolution": null
            },
            "properties": {"reposix": {"id": "abc-1"}}
        });
        let i = parse_issue(&v, "t", &IdentityMap::new()).expect("parses");
        assert_eq!(i.remote_id, "P-1");
        assert_eq!(i.body, "x\n<y>");
        assert_eq!(i.status, Status::InProgress);
        assert_eq!(i.labels, ["a", "b"]);
        assert_eq!(i.assignees, ["acc-1"]);
        assert_eq!(i.revision.order, 1_611_013_560_001);
        assert_eq!(i.revision.token, "2021-01-18T23:46:00.001+0000");
        assert_eq!(i.marker.as_deref(), Some("abc-1"));
        let mut bad = v.clone();
        bad["fields"]["updated"] = json!("yesterday");
        assert!(matches!(
            parse_issue(&bad, "t", &IdentityMap::new()),
            Err(BackendError::Malformed { .. })
        ));
    }
}
