//! JIRA Cloud (REST v3) adapter: `jira::https://<site>.atlassian.net/<PROJECT>`.
//!
//! Wire facts are in `api-facts.md` ("JIRA Cloud REST v3"); every request
//! goes through [`HttpClient`] (allowlist, retries honouring `Retry-After`,
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
//! largest raw `updated` seen. JQL dates have minute precision and are read
//! in the user's profile time zone (the zone JIRA also renders `updated`
//! in), so [`JiraBackend::list_changed`] asks for
//! `updated >= "<cursor's wall-clock minute − 1>"` and returns everything
//! JIRA answers: issues written in the same minute as the cursor (or up to
//! a minute before it, e.g. still being indexed last time) come back again
//! and the caller dedupes by revision. Within one listing, issues are
//! deduplicated by key, keeping the newest `updated`.
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
//! | body | `description`, through ADF ([`super::adf`]); an empty body is `null` |
//! | labels | `labels`; JIRA labels cannot contain whitespace, so such a label is refused before anything is sent |
//! | assignees | `assignee.accountId` (at most one; account ids, not display names, because names change and are not unique) |
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
//! Statuses are written only through workflow transitions: the adapter
//! lists the issue's transitions and takes the first whose target status
//! reads back (by the table above) as the wanted status. Without one, the
//! write fails with a [`BackendError::Spec`] naming the available
//! transitions; it never picks a near miss, which would read back as a
//! different status and make sync oscillate.
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
//! app); where it refuses the clause (HTTP 400) the adapter falls back to
//! scanning the issues updated since `since` (the whole project without
//! it) with the `reposix` property requested in the search. Property
//! search is as fresh as JIRA's search index (seconds).
//!
//! Comments carry no marker: their identity is the JIRA comment id, which
//! the caller maps. Comment authors are account ids.

use std::collections::BTreeMap;
use std::fmt;

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::adf;
use super::atlassian::{self, check, enc, Timestamp};
use super::http::{AllowList, Auth, HttpClient, Response, Stats};
use super::{
    Backend, BackendError, BackendKind, Capabilities, IssuePatch, NewRemoteIssue, RemoteComment,
    RemoteIssue, Revision,
};
use crate::event::Status;

/// The issue fields every read asks for.
const FIELDS: [&str; 8] = [
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
    http: HttpClient,
    site: String,
    project: String,
    issue_type: String,
    page_size: u32,
}

impl fmt::Debug for JiraBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraBackend")
            .field("site", &self.site)
            .field("project", &self.project)
            .field("issue_type", &self.issue_type)
            .finish_non_exhaustive()
    }
}

impl JiraBackend {
    /// The backend for `https://<site>/<PROJECT>`, with credentials from
    /// `ATLASSIAN_EMAIL` + `ATLASSIAN_API_KEY` or git's credential helpers
    /// and the allowlist from `REPOSIX_ALLOWED_ORIGINS`.
    pub fn from_address(address: &str) -> Result<JiraBackend, BackendError> {
        let (site, project) = atlassian::split_address("jira", address)?;
        let auth = atlassian::auth_for_site(&site)?;
        JiraBackend::new(&site, &project, auth, AllowList::from_env()?)
    }

    /// The backend for project `project` on `site` (`https://x.atlassian.net`,
    /// no trailing path) with explicit credentials and allowlist.
    pub fn new(
        site: &str,
        project: &str,
        auth: Auth,
        allow: AllowList,
    ) -> Result<JiraBackend, BackendError> {
        if project.is_empty() || project.contains(['/', '"', ' ']) {
            return Err(BackendError::Spec(format!(
                "JIRA project key {project:?}: expected a key such as PROJ"
            )));
        }
        let mut http = HttpClient::with_allowlist(auth, "jira", allow)?;
        http.add_header("Accept", "application/json");
        Ok(JiraBackend {
            http,
            site: site.trim_end_matches('/').to_owned(),
            project: project.to_owned(),
            issue_type: "Task".to_owned(),
            page_size: 100,
        })
    }

    /// The issue type used for new issues (default `Task`).
    pub fn set_issue_type(&mut self, name: &str) {
        name.clone_into(&mut self.issue_type);
    }

    /// The HTTP client, e.g. to tune retries.
    pub fn http_mut(&mut self) -> &mut HttpClient {
        &mut self.http
    }

    /// Request counters so far.
    pub fn stats(&self) -> Stats {
        self.http.stats()
    }

    fn send(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, BackendError> {
        let url = format!("{}{path}", self.site);
        check(self.http.send(what, method, &url, &[], body)?, what)
    }

    /// One page of a JQL search: the issues and the token of the next page
    /// (`None` on the last page).
    fn search_page(
        &self,
        jql: &str,
        token: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), BackendError> {
        let what = format!("JIRA search in {}", self.project);
        let mut body = json!({
            "jql": jql,
            "fields": FIELDS,
            "properties": [MARKER_PROPERTY],
            "maxResults": self.page_size,
        });
        if let Some(t) = token {
            body["nextPageToken"] = json!(t);
        }
        let mut page: Value = self
            .send(&what, Method::POST, "/rest/api/3/search/jql", Some(&body))?
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
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (issues, next) = self.search_page(jql, token.as_deref())?;
            out.extend(issues);
            match next {
                Some(n) => token = Some(n),
                None => return Ok(out),
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
    fn search_changed(&self, mut from: Option<String>) -> Result<Vec<Value>, BackendError> {
        let what = format!("JIRA search in {}", self.project);
        let project = jql_string(&self.project);
        let mut out = Vec::new();
        loop {
            let jql = match &from {
                None => format!("project = {project} ORDER BY updated ASC"),
                Some(m) => format!(
                    "project = {project} AND updated >= {} ORDER BY updated ASC",
                    jql_string(m)
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
                        let ts = Timestamp::parse(updated).ok_or_else(|| {
                            malformed(&what, &format!("unparsable `updated` {updated:?}"))
                        })?;
                        Some(ts.jql_minute(0))
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
        match self.send(&what, Method::GET, &path, None) {
            Ok(resp) => parse_issue(&resp.json(&what)?, &what).map(Some),
            Err(BackendError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn transition(&self, key: &str, want: Status) -> Result<(), BackendError> {
        let what = format!("JIRA transitions of {key}");
        let path = format!("/rest/api/3/issue/{}/transitions", enc(key));
        let list: Value = self.send(&what, Method::GET, &path, None)?.json(&what)?;
        let transitions = list
            .get("transitions")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed(&what, "no `transitions` array"))?;
        let chosen = transitions.iter().find(|t| {
            t.get("isAvailable").and_then(Value::as_bool) != Some(false)
                && status_of(t.get("to").unwrap_or(&Value::Null), None) == Some(want)
        });
        let Some(id) = chosen.and_then(|t| t.get("id")).and_then(Value::as_str) else {
            let available: Vec<String> = transitions
                .iter()
                .map(|t| {
                    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_owned();
                    format!(
                        "{:?} -> {:?} ({})",
                        s(t.get("name")),
                        s(t.pointer("/to/name")),
                        s(t.pointer("/to/statusCategory/key"))
                    )
                })
                .collect();
            return Err(BackendError::Spec(format!(
                "JIRA issue {key}: no workflow transition leads to a status that reads back as \
                 {want} (available: {}); add one to the workflow or pick another status",
                if available.is_empty() {
                    "none".to_owned()
                } else {
                    available.join(", ")
                }
            )));
        };
        let what = format!("JIRA transition {key} to {want}");
        self.send(
            &what,
            Method::POST,
            &path,
            Some(&json!({"transition": {"id": id}})),
        )?;
        Ok(())
    }
}

fn malformed(what: &str, why: &str) -> BackendError {
    BackendError::Malformed {
        what: what.to_owned(),
        why: why.to_owned(),
    }
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
fn parse_issue(v: &Value, what: &str) -> Result<RemoteIssue, BackendError> {
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
    let ts = Timestamp::parse(&updated).ok_or_else(|| {
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
        .map(|a| vec![a.to_owned()])
        .unwrap_or_default();
    let marker = v
        .pointer(&format!("/properties/{MARKER_PROPERTY}/id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(RemoteIssue {
        remote_id: key.to_owned(),
        title: text("summary"),
        body: adf::to_text(fields.get("description").unwrap_or(&Value::Null)),
        status,
        labels,
        assignees,
        revision: Revision {
            order: ts.order(),
            token: updated.clone(),
        },
        created_at: text("created"),
        updated_at: updated,
        marker,
    })
}

fn parse_comment(v: &Value, what: &str) -> Result<RemoteComment, BackendError> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(what, "comment without an id"))?;
    let text = |name: &str| v.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
    let author = v
        .pointer("/author/accountId")
        .or_else(|| v.pointer("/author/displayName"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Ok(RemoteComment {
        remote_id: id.to_owned(),
        author,
        body: adf::to_text(v.get("body").unwrap_or(&Value::Null)),
        created_at: text("created"),
        updated_at: text("updated"),
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
        format!("{}/{}", self.site, self.project)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            comments: true,
            conditional_update: false,
            closed_state: true,
            multiple_assignees: false,
            hidden_marker: true,
        }
    }

    fn list_changed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<RemoteIssue>, Option<String>), BackendError> {
        let from = match cursor {
            None => None,
            Some(c) => Some(
                Timestamp::parse(c)
                    .ok_or_else(|| {
                        BackendError::Spec(format!("JIRA cursor {c:?} is not a JIRA timestamp"))
                    })?
                    .jql_minute(1),
            ),
        };
        let what = format!("JIRA search in {}", self.project);
        let mut newest: BTreeMap<String, RemoteIssue> = BTreeMap::new();
        for raw in self.search_changed(from)? {
            let issue = parse_issue(&raw, &what)?;
            match newest.get(&issue.remote_id) {
                Some(seen) if seen.revision.order >= issue.revision.order => {}
                _ => {
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
        let cursor_order = cursor.and_then(Timestamp::parse).map(Timestamp::order);
        let next = match issues.last() {
            Some(i) if cursor_order.is_none_or(|c| i.revision.order >= c) => {
                Some(i.updated_at.clone())
            }
            _ => cursor.map(str::to_owned),
        };
        Ok((issues, next))
    }

    fn get(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError> {
        self.fetch(remote_id)
    }

    fn create(&self, new: &NewRemoteIssue) -> Result<RemoteIssue, BackendError> {
        validate(Some(&new.labels), Some(&new.assignees))?;
        let mut fields = json!({
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": new.title,
            "labels": new.labels,
        });
        if !new.body.is_empty() {
            fields["description"] = adf::from_text(&new.body);
        }
        if let Some(a) = new.assignees.first() {
            fields["assignee"] = json!({"accountId": a});
        }
        let body = json!({
            "fields": fields,
            "properties": [{"key": MARKER_PROPERTY, "value": {"id": new.marker}}],
        });
        let what = format!("JIRA create issue in {}", self.project);
        let created: Value = self
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
        let issue = self.fetch(&key)?.ok_or_else(not_found)?;
        if issue.status == new.status {
            return Ok(issue);
        }
        self.transition(&key, new.status)?;
        self.fetch(&key)?.ok_or_else(not_found)
    }

    fn update(
        &self,
        remote_id: &str,
        patch: &IssuePatch,
        expected: &Revision,
    ) -> Result<RemoteIssue, BackendError> {
        validate(patch.labels.as_deref(), patch.assignees.as_deref())?;
        let what = format!("JIRA issue {remote_id}");
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
                adf::from_text(body)
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
                let v = want
                    .first()
                    .map_or(Value::Null, |a| json!({"accountId": a}));
                fields.insert("assignee".into(), v);
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
            self.send(
                &format!("JIRA edit {remote_id}"),
                Method::PUT,
                &path,
                Some(&Value::Object(body)),
            )?;
        }
        if let Some(status) = patch.status.filter(|s| *s != current.status) {
            self.transition(remote_id, status)?;
        }
        self.fetch(remote_id)?
            .ok_or(BackendError::NotFound { what })
    }

    fn find_by_marker(
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
            Err(BackendError::Http { status: 400, .. }) => {
                self.search_changed(since.and_then(Timestamp::parse).map(|t| t.jql_minute(1)))?
            }
            Err(e) => return Err(e),
        };
        for raw in &candidates {
            let issue = parse_issue(raw, &what)?;
            if issue.marker.as_deref() == Some(marker) {
                return Ok(Some(issue));
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
            let page: Value = self.send(&what, Method::GET, &path, None)?.json(&what)?;
            let comments = page
                .get("comments")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(&what, "no `comments` array"))?;
            for c in comments {
                out.push(parse_comment(c, &what)?);
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
        let path = format!("/rest/api/3/issue/{}/comment", enc(remote_id));
        let v: Value = self
            .send(
                &what,
                Method::POST,
                &path,
                Some(&json!({"body": adf::from_text(body)})),
            )?
            .json(&what)?;
        parse_comment(&v, &what)
    }

    fn edit_comment(
        &self,
        remote_id: &str,
        comment_id: &str,
        body: &str,
    ) -> Result<RemoteComment, BackendError> {
        let what = format!("JIRA edit comment {comment_id} of {remote_id}");
        let path = format!(
            "/rest/api/3/issue/{}/comment/{}",
            enc(remote_id),
            enc(comment_id)
        );
        let v: Value = self
            .send(
                &what,
                Method::PUT,
                &path,
                Some(&json!({"body": adf::from_text(body)})),
            )?
            .json(&what)?;
        parse_comment(&v, &what)
    }
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
    let v = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(e) => {
            let err = || BackendError::Malformed {
                what: what.to_owned(),
                why: e.to_string(),
            };
            return (Err(err()), Err(err()));
        }
    };
    let issues = match v.get("issues").and_then(Value::as_array) {
        Some(list) => list.iter().map(|i| parse_issue(i, what)).collect(),
        None => parse_issue(&v, what).map(|i| vec![i]),
    };
    let comments = v
        .get("comments")
        .and_then(Value::as_array)
        .map_or(Ok(Vec::new()), |list| {
            list.iter().map(|c| parse_comment(c, what)).collect()
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
                "description": adf::from_text("x\n<y>"),
                "status": {"id": "3", "name": "In Progress", "statusCategory": {"key": "indeterminate"}},
                "labels": ["b", "a", "a"],
                "assignee": {"accountId": "acc-1", "displayName": "Ann"},
                "created": "2021-01-18T23:45:00.000+0000",
                "updated": "2021-01-18T23:46:00.001+0000",
                "resolution": null
            },
            "properties": {"reposix": {"id": "abc-1"}}
        });
        let i = parse_issue(&v, "t").expect("parses");
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
            parse_issue(&bad, "t"),
            Err(BackendError::Malformed { .. })
        ));
    }
}
