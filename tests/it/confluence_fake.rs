//! A local fake of Confluence Cloud (REST v2 pages, v1 label writes) for the
//! adapter tests; the server plumbing is shared with `jira_fake`.
//!
//! It reproduces the wire facts of `api-facts.md` and the vendor OpenAPI:
//! `GET /spaces?keys=`; `GET /spaces/{id}/pages` sorted by
//! `-modified-date` with opaque cursors in a relative `_links.next` (and a
//! `Link` header) that, as on the real service at times, drops
//! `body-format` (without it a page carries no body); pages with string
//! ids, `version{number,createdAt,message,authorId}` and timestamps like
//! `2026-01-05T14:30:00.123Z`; create answering **200**; update requiring
//! `version.number` = current + 1 (409 on stale or equal); titles unique
//! among a space's current pages (400); storage bodies that must be
//! well-formed XML 1.0 (400 otherwise; character references to C0 controls
//! other than tab, LF and CR are refused as XML 1.0 demands); labels read
//! through v2 and written through the v1 `content/{id}/label` endpoints,
//! lower-cased, no whitespace; footer comments with their own versions;
//! Basic auth required (401 otherwise); a 429 + `Retry-After` switch.
//!
//! Unkind as the real service (`api-facts.md`, "How the real services
//! differ"): POST/PUT responses of pages and footer comments carry no
//! `body` (the v2 spec does not promise one); labels holding
//! `: ; . , ? & [ ] ( ) # ^ * @ ! '` (or a backquote) or whitespace are a
//! 400; a scoped token works only through `/ex/confluence/{cloudId}/…`; a
//! 403 switch answers a permission refusal.
//!
//! Time is a logical clock advanced by `tick` ms per mutation (1 s by
//! default), so tests decide what shares a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use reposix::tracker::confluence::ConfluenceBackend;
use reposix::tracker::http::Auth;
use serde_json::{json, Value};

use super::jira_fake::{
    atlassian_auth, basic_auth, gateway_rest, iso_local, loopback, FakeServer, Incoming, Outgoing,
    Recorded, CLOUD_ID, TOKEN,
};

/// The space key.
pub const SPACE_KEY: &str = "ENG";
/// The space id.
pub const SPACE_ID: &str = "98304";
/// The account id the adapter acts as.
pub const BOT_ACCOUNT: &str = "557058:0000-bot";
/// A third party's account id.
pub const OTHER_ACCOUNT: &str = "5b10ac8d82e05b22cc7d4ef5";
/// Where the logical clock starts: 2026-01-05T14:30:00.000Z.
pub const CLOCK_START: i64 = 1_767_623_400_000;

/// Confluence's form: `2026-01-05T14:30:00.000Z`.
pub fn confluence_time(ms: i64) -> String {
    format!("{}Z", iso_local(ms))
}

/// A page in the fake.
#[derive(Clone, Debug)]
pub struct Page {
    /// Id.
    pub id: u64,
    /// Title.
    pub title: String,
    /// Storage-format body.
    pub body: String,
    /// `current` or `trashed`.
    pub status: String,
    /// Version number.
    pub version: u64,
    /// When the current version was made (ms).
    pub version_at: i64,
    /// The current version's message.
    pub message: String,
    /// Who made the current version.
    pub version_author: String,
    /// Created (ms).
    pub created: i64,
    /// Global labels.
    pub labels: Vec<String>,
}

/// A footer comment in the fake.
#[derive(Clone, Debug)]
pub struct FooterComment {
    /// Id.
    pub id: u64,
    /// The page.
    pub page_id: u64,
    /// Storage-format body.
    pub body: String,
    /// Version number.
    pub version: u64,
    /// When the current version was made (ms).
    pub version_at: i64,
    /// Who made the current version.
    pub author: String,
}

struct State {
    base: String,
    clock: i64,
    tick: i64,
    next_id: u64,
    pages: Vec<Page>,
    comments: Vec<FooterComment>,
    page_cap: usize,
    throttle: u32,
    retry_after: u64,
    garble_next_create: bool,
    garble_next_update: bool,
    edit_after_next_get: Option<u64>,
    edit_after_listing_page: Option<u64>,
    link_header_only: bool,
    tokens: HashMap<String, usize>,
    requests: Vec<Recorded>,
    forbid: u32,
}

impl State {
    fn tick(&mut self) -> i64 {
        self.clock += self.tick;
        self.clock
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn page_idx(&self, id: &str) -> Option<usize> {
        self.pages.iter().position(|p| p.id.to_string() == id)
    }

    fn page_json(&self, p: &Page, with_body: bool) -> Value {
        let mut v = json!({
            "id": p.id.to_string(),
            "status": p.status,
            "title": p.title,
            "spaceId": SPACE_ID,
            "parentId": "65537",
            "parentType": "page",
            "position": 0,
            "authorId": OTHER_ACCOUNT,
            "ownerId": OTHER_ACCOUNT,
            "lastOwnerId": null,
            "createdAt": confluence_time(p.created),
            "version": {
                "createdAt": confluence_time(p.version_at),
                "message": p.message,
                "number": p.version,
                "minorEdit": false,
                "authorId": p.version_author,
            },
            "body": {},
            "_links": {
                "webui": format!("/spaces/{SPACE_KEY}/pages/{}", p.id),
                "editui": format!("/pages/resumedraft.action?draftId={}", p.id),
                "tinyui": "/x/AbCd",
            },
        });
        if with_body {
            v["body"] = json!({"storage": {"representation": "storage", "value": p.body}});
        }
        v
    }

    fn comment_json(&self, c: &FooterComment, with_body: bool) -> Value {
        let mut v = json!({
            "id": c.id.to_string(),
            "status": "current",
            "title": format!("Re: page {}", c.page_id),
            "pageId": c.page_id.to_string(),
            "version": {
                "createdAt": confluence_time(c.version_at),
                "message": "",
                "number": c.version,
                "minorEdit": false,
                "authorId": c.author,
            },
            "body": {},
            "_links": {"webui": format!("/spaces/{SPACE_KEY}/pages/{}?focusedCommentId={}", c.page_id, c.id)},
        });
        if with_body {
            v["body"] = json!({"storage": {"representation": "storage", "value": c.body}});
        }
        v
    }

    /// A paged listing: results from `offset`, `_links.next` (and `Link`).
    fn paged(&mut self, results: Vec<Value>, rq: &Incoming, next_path: &str) -> Outgoing {
        let offset = match rq.query("cursor") {
            None => 0,
            Some(c) => match self.tokens.get(&c) {
                Some(o) => *o,
                None => return v2_err(400, "INVALID_REQUEST_PARAMETER", "Invalid cursor"),
            },
        };
        let limit = rq
            .query("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(25)
            .clamp(1, 250)
            .min(self.page_cap);
        let end = (offset + limit).min(results.len());
        let page: Vec<Value> = results[offset.min(end)..end].to_vec();
        let mut links = json!({"base": format!("{}/wiki", self.base)});
        let mut out_link = None;
        if end < results.len() {
            let token = format!("eyJpZCI6{}", self.tokens.len() + 1);
            self.tokens.insert(token.clone(), end);
            // The real service has been seen to drop `body-format` here.
            let next = format!("{next_path}&limit={limit}&cursor={token}");
            out_link = Some(format!(
                "<{next}>; rel=\"next\", <{}/wiki>; rel=\"base\"",
                self.base
            ));
            if !self.link_header_only {
                links["next"] = json!(next);
            }
        }
        let out = Outgoing::json(200, &json!({"results": page, "_links": links}));
        match out_link {
            Some(l) => out.with_header("Link", &l),
            None => out,
        }
    }
}

fn v2_err(status: u16, code: &str, title: &str) -> Outgoing {
    Outgoing::json(
        status,
        &json!({"errors": [{"status": status, "code": code, "title": title, "detail": null}]}),
    )
}

/// What a seeded page starts with.
#[derive(Clone, Debug)]
pub struct Seed {
    /// Title.
    pub title: String,
    /// Storage body, verbatim.
    pub storage: String,
    /// Labels.
    pub labels: Vec<String>,
}

impl Default for Seed {
    fn default() -> Seed {
        Seed {
            title: String::new(),
            storage: "<p>seeded</p>".into(),
            labels: Vec::new(),
        }
    }
}

/// The running fake.
pub struct FakeConfluence {
    state: Arc<Mutex<State>>,
    server: FakeServer,
}

impl FakeConfluence {
    /// Start a fake on a free loopback port.
    pub fn start() -> FakeConfluence {
        let state = Arc::new(Mutex::new(State {
            base: String::new(),
            clock: CLOCK_START,
            tick: 1000,
            next_id: 65_537,
            pages: Vec::new(),
            comments: Vec::new(),
            page_cap: 250,
            throttle: 0,
            retry_after: 1,
            garble_next_create: false,
            garble_next_update: false,
            edit_after_next_get: None,
            edit_after_listing_page: None,
            link_header_only: false,
            tokens: HashMap::new(),
            forbid: 0,
            requests: Vec::new(),
        }));
        let server = {
            let state = Arc::clone(&state);
            FakeServer::start(move |rq| {
                let mut st = state.lock().expect("fake state lock");
                let body = rq.json();
                let out = serve(&mut st, &rq);
                st.requests.push(Recorded {
                    method: rq.method.clone(),
                    url: rq.url.clone(),
                    body,
                    status: out.status,
                });
                out
            })
        };
        state.lock().expect("fake state lock").base = server.base().to_owned();
        FakeConfluence { state, server }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        self.server.base()
    }

    /// An adapter for this fake with the right credentials.
    pub fn backend(&self) -> ConfluenceBackend {
        self.backend_with(basic_auth(TOKEN))
    }

    /// An adapter for this fake with other credentials.
    pub fn backend_with(&self, auth: Auth) -> ConfluenceBackend {
        ConfluenceBackend::new(self.url(), SPACE_KEY, auth, loopback())
            .expect("valid test configuration")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state lock")
    }

    /// Insert a page directly (a third party); returns its id.
    pub fn seed(&self, seed: Seed) -> String {
        let mut st = self.lock();
        let at = st.tick();
        let id = st.new_id();
        let title = if seed.title.is_empty() {
            format!("Seeded page {id}")
        } else {
            seed.title
        };
        st.pages.push(Page {
            id,
            title,
            body: seed.storage,
            status: "current".into(),
            version: 1,
            version_at: at,
            message: String::new(),
            version_author: OTHER_ACCOUNT.into(),
            created: at,
            labels: seed.labels,
        });
        id.to_string()
    }

    /// Edit a page as a third party (a new version).
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut Page)) {
        let mut st = self.lock();
        let at = st.tick();
        let idx = st.page_idx(id).expect("page exists");
        let p = &mut st.pages[idx];
        f(p);
        p.version += 1;
        p.version_at = at;
        p.message = String::new();
        p.version_author = OTHER_ACCOUNT.into();
    }

    /// Set a page's labels as a third party (no new version, as on Confluence).
    pub fn set_labels(&self, id: &str, labels: &[&str]) {
        let mut st = self.lock();
        let idx = st.page_idx(id).expect("page exists");
        st.pages[idx].labels = labels.iter().map(|l| (*l).to_owned()).collect();
    }

    /// Add `n` footer comments by a third party.
    pub fn seed_comments(&self, id: &str, n: usize) {
        let mut st = self.lock();
        let page_id: u64 = id.parse().expect("numeric page id");
        for i in 0..n {
            let at = st.tick();
            let cid = st.new_id();
            st.comments.push(FooterComment {
                id: cid,
                page_id,
                body: format!("<p>comment {i}</p>"),
                version: 1,
                version_at: at,
                author: OTHER_ACCOUNT.into(),
            });
        }
    }

    /// A snapshot of a page.
    pub fn page(&self, id: &str) -> Page {
        let st = self.lock();
        let idx = st.page_idx(id).expect("page exists");
        st.pages[idx].clone()
    }

    /// How many pages exist.
    pub fn page_count(&self) -> usize {
        self.lock().pages.len()
    }

    /// Milliseconds the clock advances per mutation.
    pub fn set_tick(&self, ms: i64) {
        self.lock().tick = ms;
    }

    /// Most results per listing page.
    pub fn set_page_cap(&self, n: usize) {
        self.lock().page_cap = n;
    }

    /// Put the next link only in the `Link` header, not in `_links`.
    pub fn set_link_header_only(&self, on: bool) {
        self.lock().link_header_only = on;
    }

    /// Answer the next `n` requests with 429 and `Retry-After: secs`.
    pub fn throttle_next(&self, n: u32, secs: u64) {
        let mut st = self.lock();
        st.throttle = n;
        st.retry_after = secs;
    }

    /// Create the next page, then answer with a body that is not JSON.
    pub fn garble_next_create(&self) {
        self.lock().garble_next_create = true;
    }

    /// Apply the next page update, then answer with a body that is not JSON.
    pub fn garble_next_update(&self) {
        self.lock().garble_next_update = true;
    }

    /// Right after serving the next page of a page listing, a third party
    /// edits page `id` (it jumps to the front of `-modified-date`).
    pub fn edit_after_listing_page(&self, id: &str) {
        self.lock().edit_after_listing_page = Some(id.parse().expect("numeric page id"));
    }

    /// Right after serving the next `GET /pages/{id}`, a third party edits
    /// that page (a race the adapter can only see as a 409).
    pub fn edit_after_next_get(&self, id: &str) {
        self.lock().edit_after_next_get = Some(id.parse().expect("numeric page id"));
    }

    /// Answer the next `n` requests with a permission 403.
    pub fn forbid_next(&self, n: u32) {
        self.lock().forbid = n;
    }

    /// Requests seen so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Forget the requests seen so far.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}

/// Check that a storage body is well-formed XML 1.0 content (a fragment):
/// balanced tags, quoted attributes, known entities, legal characters.
pub fn check_storage(s: &str) -> Result<(), String> {
    let legal = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    };
    if let Some(c) = s.chars().find(|c| !legal(*c)) {
        return Err(format!("illegal character U+{:04X}", c as u32));
    }
    let mut stack: Vec<String> = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(['<', '&']) {
        let (_, tail) = rest.split_at(i);
        if let Some(after) = tail.strip_prefix('&') {
            let semi = after.find(';').ok_or("unterminated entity")?;
            let name = &after[..semi];
            let ok = if let Some(num) = name.strip_prefix('#') {
                let code = match num.strip_prefix('x') {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => num.parse().ok(),
                };
                code.and_then(char::from_u32).is_some_and(legal)
            } else {
                matches!(name, "amp" | "lt" | "gt" | "quot" | "apos" | "nbsp")
            };
            if !ok {
                return Err(format!("bad entity &{name};"));
            }
            rest = &after[semi + 1..];
            continue;
        }
        let after = &tail[1..];
        if let Some(c) = after.strip_prefix("![CDATA[") {
            rest = &c[c.find("]]>").ok_or("unterminated CDATA")? + 3..];
            continue;
        }
        let gt = after.find('>').ok_or("unterminated tag")?;
        let inner = &after[..gt];
        if let Some(name) = inner.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name.trim()) {
                return Err(format!("mismatched </{name}>"));
            }
        } else {
            let self_closing = inner.ends_with('/');
            let inner = inner.trim_end_matches('/');
            let name = inner.split_whitespace().next().ok_or("empty tag")?;
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-')
                || name.is_empty()
            {
                return Err(format!("bad tag name {name:?}"));
            }
            if inner.contains('<') {
                return Err("'<' inside a tag".into());
            }
            if !self_closing {
                stack.push(name.to_owned());
            }
        }
        rest = &after[gt + 1..];
    }
    if let Some(open) = stack.pop() {
        return Err(format!("unclosed <{open}>"));
    }
    Ok(())
}

fn storage_body(body: &Value) -> Result<String, Outgoing> {
    if body.pointer("/body/representation").and_then(Value::as_str) != Some("storage") {
        return Err(v2_err(
            400,
            "INVALID_REQUEST_PARAMETER",
            "body.representation must be storage",
        ));
    }
    let value = body
        .pointer("/body/value")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Err(e) = check_storage(value) {
        return Err(v2_err(
            400,
            "INVALID_REQUEST_PARAMETER",
            &format!("Error parsing xhtml: {e}"),
        ));
    }
    Ok(value.to_owned())
}

fn serve(st: &mut State, rq: &Incoming) -> Outgoing {
    if rq.path() == "/_edge/tenant_info" {
        return Outgoing::json(200, &json!({"cloudId": CLOUD_ID}));
    }
    let gateway = gateway_rest(rq, "confluence");
    if let Err(e) = atlassian_auth(rq, gateway.is_some()) {
        return v2_err(401, "UNAUTHORIZED", e);
    }
    let rq = gateway.as_ref().unwrap_or(rq);
    if st.forbid > 0 {
        st.forbid -= 1;
        return v2_err(
            403,
            "FORBIDDEN",
            "You do not have permission to edit this page",
        );
    }
    if st.throttle > 0 {
        st.throttle -= 1;
        return v2_err(429, "TOO_MANY_REQUESTS", "Rate limited")
            .with_header("Retry-After", &st.retry_after.to_string());
    }
    let with_body = rq.query("body-format").as_deref() == Some("storage");
    if let Some(seg) = rq.segments_after("/wiki/rest/api/content/") {
        return v1_labels(st, rq, &seg);
    }
    let Some(seg) = rq.segments_after("/wiki/api/v2/") else {
        return v2_err(404, "NOT_FOUND", "No such endpoint in the fake");
    };
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (rq.method.as_str(), seg.as_slice()) {
        ("GET", ["spaces"]) => {
            let keys = rq.query("keys").unwrap_or_default();
            let results: Vec<Value> = keys
                .split(',')
                .filter(|k| *k == SPACE_KEY)
                .map(|_| json!({"id": SPACE_ID, "key": SPACE_KEY, "name": "Engineering", "type": "global", "status": "current", "authorId": OTHER_ACCOUNT, "createdAt": confluence_time(CLOCK_START), "homepageId": "65537"}))
                .collect();
            Outgoing::json(
                200,
                &json!({"results": results, "_links": {"base": format!("{}/wiki", st.base)}}),
            )
        }
        ("GET", ["spaces", id, "pages"]) => {
            if *id != SPACE_ID {
                return v2_err(404, "NOT_FOUND", "Space not found");
            }
            let sort = rq.query("sort").unwrap_or_else(|| "id".into());
            if sort != "-modified-date" {
                return v2_err(
                    400,
                    "INVALID_REQUEST_PARAMETER",
                    "the fake sorts by -modified-date only",
                );
            }
            let mut pages: Vec<&Page> = st.pages.iter().filter(|p| p.status == "current").collect();
            pages.sort_by_key(|p| std::cmp::Reverse((p.version_at, p.id)));
            let results: Vec<Value> = pages.iter().map(|p| st.page_json(p, with_body)).collect();
            let next_path = format!("/wiki/api/v2/spaces/{SPACE_ID}/pages?sort=-modified-date");
            let out = st.paged(results, rq, &next_path);
            if let Some(id) = st.edit_after_listing_page.take() {
                let at = st.tick();
                let idx = st.page_idx(&id.to_string()).expect("armed with a page");
                let p = &mut st.pages[idx];
                p.body = "<p>edited during the walk</p>".into();
                p.version += 1;
                p.version_at = at;
                p.message = String::new();
                p.version_author = OTHER_ACCOUNT.into();
            }
            out
        }
        ("POST", ["pages"]) => create_page(st, rq),
        ("GET", ["pages", id]) => {
            let Some(idx) = st.page_idx(id) else {
                return v2_err(404, "NOT_FOUND", "Page not found");
            };
            let out = Outgoing::json(200, &st.page_json(&st.pages[idx], with_body));
            if st
                .edit_after_next_get
                .take_if(|p| p.to_string() == *id)
                .is_some()
            {
                let at = st.tick();
                let p = &mut st.pages[idx];
                p.title.push_str(" (theirs)");
                p.version += 1;
                p.version_at = at;
                p.message = String::new();
                p.version_author = OTHER_ACCOUNT.into();
            }
            out
        }
        ("PUT", ["pages", id]) => update_page(st, rq, id),
        ("GET", ["pages", id, "labels"]) => {
            let Some(idx) = st.page_idx(id) else {
                return v2_err(404, "NOT_FOUND", "Page not found");
            };
            let results: Vec<Value> = st.pages[idx]
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| json!({"id": (1000 + i).to_string(), "name": l, "prefix": "global"}))
                .collect();
            Outgoing::json(
                200,
                &json!({"results": results, "_links": {"base": format!("{}/wiki", st.base)}}),
            )
        }
        ("GET", ["pages", id, "footer-comments"]) => {
            let Some(page_id) = st.page_idx(id).map(|i| st.pages[i].id) else {
                return v2_err(404, "NOT_FOUND", "Page not found");
            };
            let results: Vec<Value> = st
                .comments
                .iter()
                .filter(|c| c.page_id == page_id)
                .map(|c| st.comment_json(c, with_body))
                .collect();
            let next_path =
                format!("/wiki/api/v2/pages/{page_id}/footer-comments?sort=created-date");
            st.paged(results, rq, &next_path)
        }
        ("POST", ["footer-comments"]) => {
            let Some(body) = rq.json() else {
                return v2_err(400, "INVALID_REQUEST_PARAMETER", "body must be JSON");
            };
            let page_id = body.get("pageId").and_then(Value::as_str).unwrap_or("");
            let Some(page_id) = st.page_idx(page_id).map(|i| st.pages[i].id) else {
                return v2_err(404, "NOT_FOUND", "Page not found");
            };
            let value = match storage_body(&body) {
                Ok(v) => v,
                Err(o) => return o,
            };
            let at = st.tick();
            let id = st.new_id();
            let c = FooterComment {
                id,
                page_id,
                body: value,
                version: 1,
                version_at: at,
                author: BOT_ACCOUNT.into(),
            };
            let out = st.comment_json(&c, false);
            st.comments.push(c);
            Outgoing::json(201, &out)
        }
        ("GET", ["footer-comments", id]) => {
            match st.comments.iter().find(|c| c.id.to_string() == *id) {
                Some(c) => Outgoing::json(200, &st.comment_json(c, with_body)),
                None => v2_err(404, "NOT_FOUND", "Comment not found"),
            }
        }
        ("PUT", ["footer-comments", id]) => {
            let Some(body) = rq.json() else {
                return v2_err(400, "INVALID_REQUEST_PARAMETER", "body must be JSON");
            };
            let Some(ci) = st.comments.iter().position(|c| c.id.to_string() == *id) else {
                return v2_err(404, "NOT_FOUND", "Comment not found");
            };
            let number = body.pointer("/version/number").and_then(Value::as_u64);
            if number != Some(st.comments[ci].version + 1) {
                return v2_err(409, "CONFLICT", "Version must be incremented on update");
            }
            let value = match storage_body(&body) {
                Ok(v) => v,
                Err(o) => return o,
            };
            let at = st.tick();
            let c = &mut st.comments[ci];
            c.body = value;
            c.version += 1;
            c.version_at = at;
            c.author = BOT_ACCOUNT.into();
            let c = c.clone();
            Outgoing::json(200, &st.comment_json(&c, false))
        }
        _ => v2_err(404, "NOT_FOUND", "No such endpoint in the fake"),
    }
}

fn title_taken(st: &State, title: &str, except: Option<u64>) -> bool {
    st.pages
        .iter()
        .any(|p| p.status == "current" && p.title == title && Some(p.id) != except)
}

fn create_page(st: &mut State, rq: &Incoming) -> Outgoing {
    let Some(body) = rq.json() else {
        return v2_err(400, "INVALID_REQUEST_PARAMETER", "body must be JSON");
    };
    if body.get("spaceId").and_then(Value::as_str) != Some(SPACE_ID) {
        return v2_err(404, "NOT_FOUND", "Space not found");
    }
    if body
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("current")
        != "current"
    {
        return v2_err(
            400,
            "INVALID_REQUEST_PARAMETER",
            "the fake makes current pages only",
        );
    }
    let title = body.get("title").and_then(Value::as_str).unwrap_or("");
    if title.trim().is_empty() {
        return v2_err(
            400,
            "INVALID_REQUEST_PARAMETER",
            "Title is required for a current page",
        );
    }
    if title_taken(st, title, None) {
        return v2_err(
            400,
            "BAD_REQUEST",
            "A page with this title already exists: A page already exists with the same TITLE in this space",
        );
    }
    let value = match storage_body(&body) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let at = st.tick();
    let id = st.new_id();
    let page = Page {
        id,
        title: title.to_owned(),
        body: value,
        status: "current".into(),
        version: 1,
        version_at: at,
        message: String::new(),
        version_author: BOT_ACCOUNT.into(),
        created: at,
        labels: Vec::new(),
    };
    let out = st.page_json(&page, false);
    st.pages.push(page);
    if std::mem::take(&mut st.garble_next_create) {
        return Outgoing::text(200, "<html>502 Bad Gateway</html>");
    }
    Outgoing::json(200, &out)
}

fn update_page(st: &mut State, rq: &Incoming, id: &str) -> Outgoing {
    let Some(body) = rq.json() else {
        return v2_err(400, "INVALID_REQUEST_PARAMETER", "body must be JSON");
    };
    let Some(idx) = st.page_idx(id) else {
        return v2_err(404, "NOT_FOUND", "Page not found");
    };
    for required in ["id", "status", "title", "body", "version"] {
        if body.get(required).is_none() {
            return v2_err(
                400,
                "INVALID_REQUEST_PARAMETER",
                &format!("{required} is required"),
            );
        }
    }
    if body["id"].as_str() != Some(id) {
        return v2_err(
            400,
            "INVALID_REQUEST_PARAMETER",
            "id does not match the path",
        );
    }
    let current = st.pages[idx].version;
    let number = body.pointer("/version/number").and_then(Value::as_u64);
    if number != Some(current + 1) {
        return v2_err(
            409,
            "CONFLICT",
            &format!("Version must be incremented on update. Current version is: {current}"),
        );
    }
    let title = body["title"].as_str().unwrap_or("");
    if title.trim().is_empty() {
        return v2_err(
            400,
            "INVALID_REQUEST_PARAMETER",
            "Title is required for a current page",
        );
    }
    if title_taken(st, title, Some(st.pages[idx].id)) {
        return v2_err(400, "BAD_REQUEST", "A page with this title already exists");
    }
    let value = match storage_body(&body) {
        Ok(v) => v,
        Err(o) => return o,
    };
    let at = st.tick();
    let p = &mut st.pages[idx];
    p.title = title.to_owned();
    p.body = value;
    p.version += 1;
    p.version_at = at;
    p.message = body
        .pointer("/version/message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    p.version_author = BOT_ACCOUNT.into();
    let p = p.clone();
    if std::mem::take(&mut st.garble_next_update) {
        return Outgoing::text(200, "<html>502 Bad Gateway</html>");
    }
    Outgoing::json(200, &st.page_json(&p, false))
}

fn v1_labels(st: &mut State, rq: &Incoming, seg: &[String]) -> Outgoing {
    let v1_err = |status: u16, message: &str| {
        Outgoing::json(status, &json!({"statusCode": status, "message": message}))
    };
    let Some(idx) = seg.first().and_then(|id| st.page_idx(id)) else {
        return v1_err(404, "No content found with id");
    };
    match (rq.method.as_str(), &seg[1..]) {
        ("POST", [l]) if l == "label" => {
            let Some(Value::Array(items)) = rq.json() else {
                return v1_err(400, "Expected a JSON array of labels");
            };
            for item in &items {
                let prefix = item
                    .get("prefix")
                    .and_then(Value::as_str)
                    .unwrap_or("global");
                let name = item.get("name").and_then(Value::as_str).unwrap_or("");
                if prefix != "global" {
                    return v1_err(400, "the fake takes global labels only");
                }
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return v1_err(
                        400,
                        &format!("Label '{name}' is not valid: labels cannot contain spaces"),
                    );
                }
                if let Some(c) = name.chars().find(|c| ":;.,?&[]()#^*@!'`".contains(*c)) {
                    return v1_err(
                        400,
                        &format!("Label '{name}' contains an invalid character: '{c}'"),
                    );
                }
                let name = name.to_lowercase();
                if !st.pages[idx].labels.contains(&name) {
                    st.pages[idx].labels.push(name);
                }
            }
            let results: Vec<Value> = st.pages[idx]
                .labels
                .iter()
                .map(|l| json!({"prefix": "global", "name": l, "id": "1", "label": l}))
                .collect();
            let n = results.len();
            Outgoing::json(
                200,
                &json!({"results": results, "start": 0, "limit": 200, "size": n, "_links": {}}),
            )
        }
        ("DELETE", [l, name]) if l == "label" => {
            let before = st.pages[idx].labels.len();
            st.pages[idx].labels.retain(|x| x != name);
            if st.pages[idx].labels.len() == before {
                return v1_err(404, "Label not found on this content");
            }
            Outgoing::empty(204)
        }
        _ => v1_err(404, "No such endpoint in the fake"),
    }
}

#[test]
fn storage_checker_is_strict_xml() {
    assert_eq!(check_storage("<p>a &amp; b</p><p></p><br/>"), Ok(()));
    assert_eq!(check_storage("<p>&#13;&#9;</p>"), Ok(()));
    assert!(check_storage("<p>a < b</p>").is_err());
    assert!(check_storage("<p>&bogus;</p>").is_err());
    assert!(check_storage("<p>&#1;</p>").is_err());
    assert!(check_storage("<p>x").is_err());
    assert!(check_storage("<p>x</b>").is_err());
    assert!(check_storage("a & b").is_err());
    assert_eq!(
        confluence_time(CLOCK_START + 123),
        "2026-01-05T14:30:00.123Z"
    );
}
