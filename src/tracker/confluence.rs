//! Confluence Cloud adapter (REST v2, pages as issues):
//! `confluence::https://<site>.atlassian.net/<SPACEKEY>`, or through the API
//! gateway for scoped tokens
//! (`confluence::https://api.atlassian.com/ex/confluence/<cloudId>/<SPACEKEY>`,
//! see [`super::atlassian`]).
//!
//! Wire facts are in `api-facts.md` ("Confluence Cloud REST v2"); every
//! request goes through [`HttpClient`](super::http::HttpClient). The space key is resolved to its
//! id once (`GET /wiki/api/v2/spaces?keys=KEY`).
//!
//! # Mapping
//!
//! | reposix | Confluence |
//! |---|---|
//! | `remote_id` | page id (a decimal string) |
//! | title | page title (Confluence requires titles to be unique among a space's current pages) |
//! | body | storage format: markdown as XHTML markup and back, text XML-escaped ([`storage`]) |
//! | status | a label `reposix-status-<status>` (`in_progress`, `in_review`, `done`, `wont_fix`); no label means `open`. Pages have no closed state ([`Capabilities::closed_state`] is false). If a page carries several status labels, the one latest in workflow order wins and the next write removes the others |
//! | labels | the page's other `global` labels, 1:1. Confluence lower-cases labels and forbids whitespace and ``: ; . , ? & [ ] ( ) # ^ * @ ! ' ` ``, so labels with any of these (or with the reserved `reposix-status-` prefix) are refused ([`BackendError::Refused`]) before anything is written, the page included |
//! | assignees | none: pages have no assignee; they are always empty and ignored on write (they stay local) |
//! | revision | `order` = `version.number`, `token` = the number as text |
//! | marker | `version.message` = `reposix:<marker>` |
//! | comments | footer comments; author = the account id of the latest version's author; created/updated = that version's `createdAt` (v2 exposes no separate creation time) |
//!
//! Labels are read with `GET /pages/{id}/labels` (one request per page in a
//! listing) and written with the v1 endpoints `POST
//! /wiki/rest/api/content/{id}/label` and `DELETE …/label/{name}`. Label
//! writes do not create a page version, so a label-only (thus status-only)
//! change made in Confluence is not seen by [`ConfluenceBackend::list_changed`]
//! until the page's next edit; [`ConfluenceBackend::get`] always sees it.
//!
//! # Listing and the cursor
//!
//! There is no "modified since" filter: pages are walked newest first
//! (`sort=-modified-date`, following `_links.next`, re-appending
//! `body-format=storage` when the server drops it from the link) and the
//! walk stops at the first page whose `version.createdAt` is more than one
//! second older than the cursor; the one-second slack catches writes in the
//! same second as the cursor. The cursor is the largest raw
//! `version.createdAt` seen; results are deduplicated by (id, version) and
//! then by id keeping the highest version. A page edited while the walk is
//! under way may be passed over, but its new `createdAt` is later than the
//! returned cursor, so the next listing sees it. If Confluence's cursors
//! are positions rather than keys, a page trashed during the walk shifts
//! the rest back one place and one page may be passed over until it next
//! changes; there is no filter to restart from, so this is not detected.
//!
//! # Write responses
//!
//! The v2 spec shows `body` on reads made with `body-format`, and does not
//! promise it in POST/PUT responses. The adapter takes the title, version
//! and message from the response and, when the body is absent, the storage
//! it sent (which reads back to the same text), so a write that succeeded
//! never fails afterwards and a comment is not re-edited on every sync.
//!
//! # Conditional updates
//!
//! `PUT /pages/{id}` with `version.number = expected + 1`: Confluence
//! answers 409 for a stale or an equal version, which becomes
//! [`BackendError::Conflict`]. The adapter first reads the page (the `PUT`
//! needs the current title and body anyway) and fails early if the version
//! moved. A patch that changes only labels/status sends no `PUT` at all.
//!
//! # Sync markers
//!
//! The v2 create request has no version message, so [`ConfluenceBackend::create`]
//! creates the page (version 1) and immediately stamps it with a second
//! version carrying `version.message = "reposix:<marker>"`; later updates
//! carry the marker forward. [`ConfluenceBackend::find_by_marker`] walks the
//! pages changed since `since` (without it, the [`MARKER_SCAN_PAGES`] most
//! recently modified, never the whole space) and compares the message, which the page
//! GET shows for the latest version only: enough after an interrupted
//! create, whose stamp is the latest version unless someone edited the
//! page since. If the process dies between creating and stamping (one
//! round trip), the marker is missing; retrying the create then fails
//! loudly with Confluence's duplicate-title error instead of making a
//! second page. Comments carry no marker (the caller maps comment ids).

pub mod storage;

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use reqwest::Method;
use serde_json::{json, Value};

use super::adapter::{cursor_millis, malformed, refuse_unsent};
use super::atlassian::{enc, Api, TokenForm};
use super::http::{self, AllowList, Auth, Notice, Response, Stats};
use super::{
    normalize_newlines, Backend, BackendError, BackendKind, Capabilities, IssuePatch,
    NewRemoteIssue, Refusal, RemoteComment, RemoteIssue, Revision,
};
use crate::event::Status;
use crate::time;

/// The prefix of the labels that carry a page's status.
pub const STATUS_LABEL_PREFIX: &str = "reposix-status-";

/// The prefix of a version message that carries a sync marker.
pub const MARKER_PREFIX: &str = "reposix:";

/// How many of the most recently modified pages marker recovery walks when
/// no `since` bounds it.
pub const MARKER_SCAN_PAGES: usize = 500;

/// Characters Confluence refuses in a label (besides whitespace).
pub const FORBIDDEN_LABEL_CHARS: &str = ":;.,?&[]()#^*@!'`";

/// A Confluence Cloud space as a [`Backend`].
pub struct ConfluenceBackend {
    api: Api,
    space_key: String,
    space_id: OnceCell<String>,
    page_size: u32,
}

impl fmt::Debug for ConfluenceBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfluenceBackend")
            .field("site", &self.api.site)
            .field("space_key", &self.space_key)
            .finish_non_exhaustive()
    }
}

/// The label that carries `status` (`None` for `open`).
pub fn status_label(status: Status) -> Option<String> {
    (status != Status::Open).then(|| format!("{STATUS_LABEL_PREFIX}{}", status.as_str()))
}

fn status_from_label(label: &str) -> Option<Status> {
    let name = label.strip_prefix(STATUS_LABEL_PREFIX)?;
    Status::ALL.into_iter().find(|s| s.as_str() == name)
}

/// Split labels into (status, other labels sorted and unique).
fn split_labels(all: &[String]) -> (Status, Vec<String>) {
    let status = all
        .iter()
        .filter_map(|l| status_from_label(l))
        .max_by_key(|s| Status::ALL.iter().position(|x| x == s))
        .unwrap_or(Status::Open);
    let mut labels: Vec<String> = all
        .iter()
        .filter(|l| !l.starts_with(STATUS_LABEL_PREFIX))
        .cloned()
        .collect();
    labels.sort();
    labels.dedup();
    (status, labels)
}

/// Refuse labels Confluence would refuse or alter, before any write.
fn validate_labels(what: &str, labels: &[String]) -> Result<(), BackendError> {
    let mut refusals = Vec::new();
    for l in labels {
        let why = if l.is_empty() {
            "is empty".to_owned()
        } else if l.contains(char::is_whitespace) {
            "contains whitespace".to_owned()
        } else if let Some(c) = l.chars().find(|c| FORBIDDEN_LABEL_CHARS.contains(*c)) {
            format!(
                "contains {c:?}, which Confluence labels may not hold ({FORBIDDEN_LABEL_CHARS})"
            )
        } else if l.chars().any(char::is_uppercase) {
            "has upper-case letters (Confluence stores labels in lower case)".to_owned()
        } else if l.starts_with(STATUS_LABEL_PREFIX) {
            "uses the prefix reserved for the status".to_owned()
        } else {
            continue;
        };
        refusals.push(Refusal {
            field: "labels".into(),
            value: l.clone(),
            reason: format!("{why}: rename the label"),
        });
    }
    refuse_unsent(what, refusals)
}

/// An id that may come as a string or a number.
fn id_of(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn version_number(v: &Value) -> Option<u64> {
    v.pointer("/version/number").and_then(Value::as_u64)
}

fn marker_of(v: &Value) -> Option<String> {
    v.pointer("/version/message")
        .and_then(Value::as_str)
        .and_then(|m| m.strip_prefix(MARKER_PREFIX))
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
}

fn storage_of(v: &Value) -> Option<&str> {
    v.pointer("/body/storage/value").and_then(Value::as_str)
}

/// The string at JSON pointer `p`, or `""`.
fn text_at(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// A page object plus its labels as a [`RemoteIssue`]; `sent` is the
/// storage body just written, used when a write response carries none.
fn parse_page(
    v: &Value,
    labels: &[String],
    what: &str,
    sent: Option<&str>,
) -> Result<RemoteIssue, BackendError> {
    let id = id_of(v).ok_or_else(|| malformed(what, "page without an id"))?;
    let number = version_number(v)
        .ok_or_else(|| malformed(what, &format!("page {id} without a version number")))?;
    let body = storage_of(v)
        .or(sent)
        .ok_or_else(|| malformed(what, &format!("page {id} without a storage body")))?;
    let (status, labels) = split_labels(labels);
    let text = |p: &str| text_at(v, p);
    Ok(RemoteIssue {
        remote_id: id,
        title: text("/title"),
        body: normalize_newlines(&storage::to_markdown(body)),
        status,
        labels,
        assignees: Vec::new(),
        revision: Revision {
            order: number,
            token: number.to_string(),
        },
        created_at: text("/createdAt").into(),
        updated_at: text("/version/createdAt").into(),
        marker: marker_of(v),
    })
}

fn parse_comment(v: &Value, what: &str, sent: Option<&str>) -> Result<RemoteComment, BackendError> {
    let id = id_of(v).ok_or_else(|| malformed(what, "comment without an id"))?;
    let text = |p: &str| text_at(v, p);
    Ok(RemoteComment {
        remote_id: id,
        author: text("/version/authorId"),
        body: normalize_newlines(&storage::to_markdown(storage_of(v).or(sent).unwrap_or(""))),
        created_at: text("/version/createdAt").into(),
        updated_at: text("/version/createdAt").into(),
        marker: marker_of(v),
    })
}

impl ConfluenceBackend {
    /// The backend for `https://<site>/<SPACEKEY>`, with credentials from
    /// `ATLASSIAN_EMAIL` + `ATLASSIAN_API_KEY` or git's credential helpers
    /// and the allowlist from `REPOSIX_ALLOWED_ORIGINS`.
    pub fn from_address(address: &str) -> Result<ConfluenceBackend, BackendError> {
        ConfluenceBackend::from_vars(
            address,
            &|name| std::env::var(name).ok(),
            AllowList::from_env()?,
        )
    }

    /// Like [`ConfluenceBackend::from_address`], reading variables through
    /// `var` (`ATLASSIAN_EMAIL`, `ATLASSIAN_API_KEY`,
    /// `ATLASSIAN_SCOPED_TOKEN`, `ATLASSIAN_CLOUD_ID`,
    /// `REPOSIX_ATLASSIAN_GATEWAY`).
    pub fn from_vars(
        address: &str,
        var: &dyn Fn(&str) -> Option<String>,
        allow: AllowList,
    ) -> Result<ConfluenceBackend, BackendError> {
        let (api, route) = Api::from_vars("confluence", address, var, allow)?;
        if let Some((k, _)) = route.params.first() {
            return Err(BackendError::Spec(format!(
                "confluence address parameter {k:?}: none are known"
            )));
        }
        ConfluenceBackend::on(api, &route.key)
    }

    /// How requests authenticate and where they go.
    pub fn token_form(&self) -> &TokenForm {
        &self.api.form
    }

    /// The backend for space `space_key` on `site` (`https://x.atlassian.net`,
    /// without `/wiki`) with explicit credentials and allowlist.
    pub fn new(
        site: &str,
        space_key: &str,
        auth: Auth,
        allow: AllowList,
    ) -> Result<ConfluenceBackend, BackendError> {
        ConfluenceBackend::on(Api::new("confluence", site, auth, allow)?, space_key)
    }

    fn on(api: Api, space_key: &str) -> Result<ConfluenceBackend, BackendError> {
        if space_key.is_empty() || space_key.contains(['/', ' ', '?', '&']) {
            return Err(BackendError::Spec(format!(
                "Confluence space key {space_key:?}: expected a key such as ENG"
            )));
        }
        Ok(ConfluenceBackend {
            api,
            space_key: space_key.to_owned(),
            space_id: OnceCell::new(),
            page_size: 100,
        })
    }

    /// Request counters so far.
    pub fn stats(&self) -> Stats {
        self.api.http.stats()
    }

    /// Send to a v2 REST path (`/pages/…`).
    fn v2(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, BackendError> {
        self.api
            .send(what, method, &format!("/wiki/api/v2{path}"), body)
    }

    fn space_id(&self) -> Result<&str, BackendError> {
        if let Some(id) = self.space_id.get() {
            return Ok(id);
        }
        let what = format!("Confluence space {}", self.space_key);
        let v: Value = self
            .v2(
                &what,
                Method::GET,
                &format!("/spaces?keys={}", enc(&self.space_key)),
                None,
            )?
            .json(&what)?;
        let id = v
            .get("results")
            .and_then(Value::as_array)
            .and_then(|r| {
                r.iter()
                    .find(|s| s.get("key").and_then(Value::as_str) == Some(&self.space_key))
            })
            .and_then(id_of)
            .ok_or_else(|| BackendError::NotFound { what: what.clone() })?;
        Ok(self.space_id.get_or_init(|| id))
    }

    /// The absolute URL of a `next` link, refusing other origins and
    /// restoring `body-format=storage` if the server dropped it.
    fn next_url(&self, next: &str, body_format: bool, what: &str) -> Result<String, BackendError> {
        let mut url = if next.starts_with("https://") || next.starts_with("http://") {
            if !next.starts_with(&format!("{}/", self.api.base)) {
                return Err(malformed(what, "a next link to another site"));
            }
            next.to_owned()
        } else if next.starts_with("/wiki/") {
            format!("{}{next}", self.api.base)
        } else if next.starts_with('/') {
            format!("{}/wiki{next}", self.api.base)
        } else {
            return Err(malformed(what, "an unusable next link"));
        };
        if body_format && !url.contains("body-format=") {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("body-format=storage");
        }
        Ok(url)
    }

    /// Visit every result of a paginated v2 listing until `visit` says stop.
    fn walk(
        &self,
        what: &str,
        first: String,
        body_format: bool,
        mut visit: impl FnMut(&Value) -> Result<bool, BackendError>,
    ) -> Result<(), BackendError> {
        http::follow_pages(what, first, |url| {
            let resp = self.api.send_url(what, Method::GET, url, None)?;
            let page: Value = resp.json(what)?;
            let results = page
                .get("results")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(what, "no `results` array"))?;
            for r in results {
                if !visit(r)? {
                    return Ok(None);
                }
            }
            let next = page
                .pointer("/_links/next")
                .and_then(Value::as_str)
                .or_else(|| resp.header("link").and_then(http::link_next));
            match next {
                Some(n) if !results.is_empty() => self.next_url(n, body_format, what).map(Some),
                _ => Ok(None),
            }
        })
    }

    /// Pages newest first until `visit` says stop.
    fn walk_pages(
        &self,
        visit: impl FnMut(&Value) -> Result<bool, BackendError>,
    ) -> Result<(), BackendError> {
        let what = format!("Confluence pages of {}", self.space_key);
        let first = format!(
            "{}/wiki/api/v2/spaces/{}/pages?sort=-modified-date&body-format=storage&limit={}",
            self.api.base,
            enc(self.space_id()?),
            self.page_size
        );
        self.walk(&what, first, true, visit)
    }

    /// A page's global labels.
    fn labels(&self, page_id: &str) -> Result<Vec<String>, BackendError> {
        let what = format!("Confluence labels of page {page_id}");
        let first = format!(
            "{}/wiki/api/v2/pages/{}/labels?limit=200",
            self.api.base,
            enc(page_id)
        );
        let mut out = Vec::new();
        self.walk(&what, first, false, |l| {
            let global = l
                .get("prefix")
                .and_then(Value::as_str)
                .is_none_or(|p| p == "global");
            if let (true, Some(name)) = (global, l.get("name").and_then(Value::as_str)) {
                out.push(name.to_owned());
            }
            Ok(true)
        })?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Make a page's labels exactly `want`, given that it has `have`.
    fn set_labels(
        &self,
        page_id: &str,
        have: &[String],
        want: &BTreeSet<String>,
    ) -> Result<bool, BackendError> {
        let what = format!("Confluence labels of page {page_id}");
        let mut changed = false;
        for gone in have.iter().filter(|l| !want.contains(*l)) {
            let url = format!(
                "{}/wiki/rest/api/content/{}/label/{}",
                self.api.base,
                enc(page_id),
                enc(gone)
            );
            self.api.send_url(&what, Method::DELETE, &url, None)?;
            changed = true;
        }
        let added: Vec<Value> = want
            .iter()
            .filter(|l| !have.contains(l))
            .map(|l| json!({"prefix": "global", "name": l}))
            .collect();
        if !added.is_empty() {
            let url = format!(
                "{}/wiki/rest/api/content/{}/label",
                self.api.base,
                enc(page_id)
            );
            self.api
                .send_url(&what, Method::POST, &url, Some(&Value::Array(added)))?;
            changed = true;
        }
        Ok(changed)
    }

    /// The raw page, `None` if it is gone (404, trashed, deleted).
    fn page(&self, page_id: &str) -> Result<Option<Value>, BackendError> {
        let what = format!("Confluence page {page_id}");
        let path = format!("/pages/{}?body-format=storage", enc(page_id));
        match self.v2(&what, Method::GET, &path, None) {
            Ok(resp) => {
                let v: Value = resp.json(&what)?;
                let status = v.get("status").and_then(Value::as_str).unwrap_or("current");
                Ok((!matches!(status, "trashed" | "deleted" | "purged")).then_some(v))
            }
            Err(BackendError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /pages/{id}` as version `number` (a 409 is a conflict).
    fn put_page(
        &self,
        page_id: &str,
        title: &str,
        body: &str,
        number: u64,
        message: Option<&str>,
    ) -> Result<Value, BackendError> {
        let what = format!("Confluence update page {page_id}");
        let mut version = json!({"number": number});
        if let Some(m) = message {
            version["message"] = json!(m);
        }
        let req = json!({
            "id": page_id,
            "status": "current",
            "title": title,
            "body": {"representation": "storage", "value": body},
            "version": version,
        });
        self.v2(
            &what,
            Method::PUT,
            &format!("/pages/{}", enc(page_id)),
            Some(&req),
        )?
        .json(&what)
    }

    fn desired_labels(status: Status, labels: &[String]) -> BTreeSet<String> {
        let mut want: BTreeSet<String> = labels.iter().cloned().collect();
        want.extend(status_label(status));
        want
    }
}

impl Backend for ConfluenceBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Confluence
    }

    fn instance(&self) -> String {
        format!("{}/{}", self.api.site, self.space_key)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            comments: true,
            conditional_update: true,
            closed_state: false,
            multiple_assignees: false,
            hidden_marker: true,
            links: &[],
        }
    }

    fn list_changed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<RemoteIssue>, Option<String>), BackendError> {
        let cursor_ms = cursor_millis("Confluence", cursor)?;
        let stop_before = cursor_ms.map(|ms| ms - 1000);
        let what = format!("Confluence pages of {}", self.space_key);
        let mut seen = HashSet::new();
        let mut newest: BTreeMap<String, Value> = BTreeMap::new();
        let mut max_seen: Option<(i64, String)> = None;
        self.walk_pages(|page| {
            let changed = page
                .pointer("/version/createdAt")
                .and_then(Value::as_str)
                .unwrap_or("");
            let ms = time::parse_millis(changed).ok_or_else(|| {
                malformed(&what, &format!("unparsable version.createdAt {changed:?}"))
            })?;
            if stop_before.is_some_and(|stop| ms < stop) {
                return Ok(false);
            }
            let id = id_of(page).ok_or_else(|| malformed(&what, "page without an id"))?;
            let number = version_number(page).unwrap_or(0);
            if max_seen.as_ref().is_none_or(|(m, _)| ms > *m) {
                max_seen = Some((ms, changed.to_owned()));
            }
            if seen.insert((id.clone(), number))
                && newest
                    .get(&id)
                    .and_then(version_number)
                    .is_none_or(|n| n < number)
            {
                newest.insert(id, page.clone());
            }
            Ok(true)
        })?;
        let mut issues = Vec::with_capacity(newest.len());
        for (id, page) in &newest {
            issues.push(parse_page(page, &self.labels(id)?, &what, None)?);
        }
        issues.sort_by_key(|i| (i.updated_at.millis().unwrap_or(0), i.remote_id.clone()));
        let next = match max_seen {
            Some((ms, raw)) if cursor_ms.is_none_or(|c| ms >= c) => Some(raw),
            _ => cursor.map(str::to_owned),
        };
        Ok((issues, next))
    }

    fn get(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError> {
        let what = format!("Confluence page {remote_id}");
        match self.page(remote_id)? {
            Some(v) => parse_page(&v, &self.labels(remote_id)?, &what, None).map(Some),
            None => Ok(None),
        }
    }

    fn create(&self, new: &NewRemoteIssue) -> Result<RemoteIssue, BackendError> {
        let what = format!("Confluence create page in {}", self.space_key);
        validate_labels(&what, &new.labels)?;
        let body = storage::from_markdown(&new.body);
        let req = json!({
            "spaceId": self.space_id()?,
            "status": "current",
            "title": new.title,
            "body": {"representation": "storage", "value": body},
        });
        let created: Value = self
            .v2(&what, Method::POST, "/pages", Some(&req))?
            .json(&what)?;
        let id = id_of(&created).ok_or_else(|| malformed(&what, "no page id in the response"))?;
        let number = version_number(&created).unwrap_or(1);
        let marker = format!("{MARKER_PREFIX}{}", new.marker);
        let stamped = self.put_page(&id, &new.title, &body, number + 1, Some(&marker))?;
        let want = Self::desired_labels(new.status, &new.labels);
        let labels = if self.set_labels(&id, &[], &want)? {
            self.labels(&id)?
        } else {
            Vec::new()
        };
        parse_page(&stamped, &labels, &what, Some(&body))
    }

    fn update(
        &self,
        remote_id: &str,
        patch: &IssuePatch,
        expected: &Revision,
    ) -> Result<RemoteIssue, BackendError> {
        let what = format!("Confluence page {remote_id}");
        if let Some(l) = &patch.labels {
            validate_labels(&what, l)?;
        }
        let expected_number = expected.token.parse::<u64>().unwrap_or(expected.order);
        let mut page = self
            .page(remote_id)?
            .ok_or_else(|| BackendError::NotFound { what: what.clone() })?;
        let have = self.labels(remote_id)?;
        let current = parse_page(&page, &have, &what, None)?;
        if current.revision.order != expected_number {
            return Err(BackendError::Conflict { what });
        }
        let title = patch.title.as_ref().filter(|t| **t != current.title);
        let body = patch.body.as_ref().filter(|b| **b != current.body);
        let mut sent: Option<String> = None;
        if title.is_some() || body.is_some() {
            let storage_body = match body {
                Some(b) => storage::from_markdown(b),
                // Keep the stored XHTML as it is, rich formatting included.
                None => storage_of(&page).unwrap_or("").to_owned(),
            };
            let message = marker_of(&page).map(|m| format!("{MARKER_PREFIX}{m}"));
            page = self.put_page(
                remote_id,
                title.unwrap_or(&current.title),
                &storage_body,
                expected_number + 1,
                message.as_deref(),
            )?;
            sent = Some(storage_body);
        }
        let status = patch.status.unwrap_or(current.status);
        let labels = patch.labels.as_deref().unwrap_or(&current.labels);
        let want = Self::desired_labels(status, labels);
        let final_labels = if self.set_labels(remote_id, &have, &want)? {
            self.labels(remote_id)?
        } else {
            have
        };
        parse_page(&page, &final_labels, &what, sent.as_deref())
    }

    fn find_by_marker(
        &self,
        marker: &str,
        since: Option<&str>,
    ) -> Result<Option<RemoteIssue>, BackendError> {
        let stop_before = since.and_then(time::parse_millis).map(|ms| ms - 1000);
        let mut found: Option<Value> = None;
        let mut walked = 0usize;
        self.walk_pages(|page| {
            walked += 1;
            if stop_before.is_none() && walked > MARKER_SCAN_PAGES {
                return Ok(false);
            }
            let ms = page
                .pointer("/version/createdAt")
                .and_then(Value::as_str)
                .and_then(time::parse_millis)
                .unwrap_or(i64::MAX);
            if stop_before.is_some_and(|stop| ms < stop) {
                return Ok(false);
            }
            if marker_of(page).as_deref() == Some(marker) {
                found = Some(page.clone());
                return Ok(false);
            }
            Ok(true)
        })?;
        match found.and_then(|p| id_of(&p)) {
            Some(id) => self.get(&id),
            None => Ok(None),
        }
    }

    fn comments(&self, remote_id: &str) -> Result<Vec<RemoteComment>, BackendError> {
        let what = format!("Confluence comments of page {remote_id}");
        let first = format!(
            "{}/wiki/api/v2/pages/{}/footer-comments?body-format=storage&sort=created-date&limit={}",
            self.api.base,
            enc(remote_id),
            self.page_size
        );
        let mut out = Vec::new();
        self.walk(&what, first, true, |c| {
            out.push(parse_comment(c, &what, None)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Adds a footer comment. `marker` is not stored: the v2 create request
    /// has no version message, and comment ids are the identity the caller
    /// maps.
    fn add_comment(
        &self,
        remote_id: &str,
        body: &str,
        _marker: &str,
    ) -> Result<RemoteComment, BackendError> {
        let what = format!("Confluence add comment to page {remote_id}");
        let storage_body = storage::from_markdown(body);
        let req = json!({
            "pageId": remote_id,
            "body": {"representation": "storage", "value": storage_body},
        });
        let v: Value = self
            .v2(&what, Method::POST, "/footer-comments", Some(&req))?
            .json(&what)?;
        parse_comment(&v, &what, Some(&storage_body))
    }

    fn edit_comment(
        &self,
        remote_id: &str,
        comment_id: &str,
        body: &str,
    ) -> Result<RemoteComment, BackendError> {
        let what = format!("Confluence edit comment {comment_id} of page {remote_id}");
        let path = format!("/footer-comments/{}", enc(comment_id));
        let current: Value = self
            .v2(
                &what,
                Method::GET,
                &format!("{path}?body-format=storage"),
                None,
            )?
            .json(&what)?;
        let number = version_number(&current)
            .ok_or_else(|| malformed(&what, "comment without a version"))?;
        let storage_body = storage::from_markdown(body);
        let req = json!({
            "version": {"number": number + 1},
            "body": {"representation": "storage", "value": storage_body},
        });
        let v: Value = self
            .v2(&what, Method::PUT, &path, Some(&req))?
            .json(&what)?;
        parse_comment(&v, &what, Some(&storage_body))
    }

    fn set_notice(&mut self, notice: Notice) {
        self.api.http.set_notice(notice);
    }
}

/// Decode a response body as this adapter does: a page listing
/// (`results`) or one page, then a comment listing (`results`). The entry
/// point of the fuzz target `tracker_json`; never panics.
pub fn parse_wire(
    body: &[u8],
) -> (
    Result<Vec<RemoteIssue>, BackendError>,
    Result<Vec<RemoteComment>, BackendError>,
) {
    let what = "parsing a Confluence response";
    let issues = http::decode_json::<Value>(body, what).and_then(|v| {
        match v.get("results").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .map(|p| parse_page(p, &[], what, None))
                .collect(),
            None => parse_page(&v, &[], what, None).map(|p| vec![p]),
        }
    });
    let comments = http::decode_json::<Value>(body, what).and_then(|v| {
        v.get("results")
            .and_then(Value::as_array)
            .map_or(Ok(Vec::new()), |list| {
                list.iter().map(|c| parse_comment(c, what, None)).collect()
            })
    });
    (issues, comments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels_round_trip() {
        for s in Status::ALL {
            let labels: Vec<String> = status_label(s)
                .into_iter()
                .chain(["x".to_owned()])
                .collect();
            assert_eq!(split_labels(&labels), (s, vec!["x".to_owned()]));
        }
        let both = [
            "reposix-status-done".to_owned(),
            "reposix-status-in_progress".to_owned(),
        ];
        assert_eq!(split_labels(&both).0, Status::Done);
        assert_eq!(
            split_labels(&["reposix-status-bogus".to_owned()]),
            (Status::Open, vec![])
        );
    }

    #[test]
    fn labels_confluence_would_alter_are_refused() {
        assert!(validate_labels("t", &["ok".into(), "a_b-c".into()]).is_ok());
        for bad in [
            "",
            "a b",
            "Bug",
            "reposix-status-done",
            "v1.0",
            "a:b",
            "x;",
            "q?",
            "a&b",
            "[x]",
            "(x)",
            "#1",
            "^",
            "*",
            "@me",
            "hi!",
            "it's",
            "`x`",
            "a,b",
        ] {
            assert!(
                matches!(
                    validate_labels("t", &[bad.into()]),
                    Err(BackendError::Refused { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
