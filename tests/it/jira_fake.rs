//! A local fake of JIRA Cloud REST v3 for the adapter tests, plus the
//! plumbing it shares with `confluence_fake` (the loopback server, Basic
//! auth, timestamps, query strings).
//!
//! A tiny_http server on `127.0.0.1:0`, answering on one thread, stopped on
//! drop, state behind a mutex. It reproduces the wire facts of
//! `api-facts.md` and the vendor OpenAPI: `POST /rest/api/3/search/jql`
//! with opaque `nextPageToken`s (absent on the last page, `isLast`), the
//! `fields` and `properties` selections, and a parser for exactly the JQL
//! shapes the adapter sends (`project = "P"`, `updated >= "yyyy-MM-dd
//! HH:mm"` at minute precision in the user's zone, which is UTC here,
//! `issue.property[key].path = "v"`, `ORDER BY updated ASC`), anything else
//! being a 400 with `errorMessages`; `updated` timestamps with millisecond
//! precision and a `+0000` offset; a workflow of five statuses reachable by
//! transitions; issue properties (also settable in the create request);
//! comments paged by `startAt`/`total`; every ADF body checked against the
//! vendor's ADF JSON schema (an empty text node is a 400, as on JIRA);
//! labels with whitespace refused; Basic auth required (401 otherwise); a
//! switch answering 429 with `Retry-After`.
//!
//! It is as unkind as JIRA Cloud (`api-facts.md`, "How the real services
//! differ"): a scoped token ([`SCOPED_TOKEN`]) works only through the
//! gateway path `/ex/jira/{cloudId}/…` and gets 401 at the site, and the
//! site serves `/_edge/tenant_info`; JQL date literals are read in the
//! user's profile time zone ([`FakeJira::set_profile_offset`]) whatever
//! offset `updated` is rendered in, while epoch-millisecond literals have
//! none; search can lag creates ([`FakeJira::set_search_lag`]) and answer
//! 502 ([`FakeJira::fail_next_searches`]); the create screen may lack
//! fields and the project may lack `Task` ([`FakeJira::use_software_project`]),
//! a field not on the screen being a 400 even when empty; workflows can be
//! the default Jira Software one (Done only, "Won't Do" a resolution that
//! the Done screen requires) or a classic chain ([`Workflow`]); assignees
//! must be account ids of known users; summaries over 255 characters or
//! holding line breaks and texts over 32,767 characters are 400s; a 403
//! switch answers a permission refusal.
//!
//! Issue links follow the vendor OpenAPI and JIRA Cloud's behaviour:
//! `POST /rest/api/3/issueLink` answers 201 with no body and no id (the id
//! is learnt from `fields.issuelinks`), also for a link it already has
//! (kept once); its `inwardIssue` is the end that reads with the type's
//! outward phrase ("A blocks B" is `inwardIssue: A, outwardIssue: B`), and
//! on GET the blocker shows `{"outwardIssue": B}`, the blocked issue
//! `{"inwardIssue": A}`; `DELETE /rest/api/3/issueLink/{id}` answers 204;
//! a link type the site lacks, an unknown issue, or linking switched off
//! ([`FakeJira::disable_linking`]) is a 404; linking bumps `updated` on
//! both ends.
//!
//! Time is a logical clock: each mutation advances it by `tick` ms (1 s by
//! default) and stamps the issue, so tests decide what shares a minute.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;

use reposix::tracker::http::{AllowList, Auth, Secret};

use crate::github_fake::VirtualClock;
use reposix::tracker::jira::JiraBackend;
use serde_json::{json, Map, Value};

/// The account email the adapter authenticates with.
pub const EMAIL: &str = "bot@example.com";
/// Its API token.
pub const TOKEN: &str = "ATATT3xFfGF0-reposix-test-token-DO-NOT-LEAK-0001";
/// Its account id.
pub const BOT_ACCOUNT: &str = "557058:0000-bot";
/// A third party's account id.
pub const OTHER_ACCOUNT: &str = "5b10ac8d82e05b22cc7d4ef5";
/// The project key.
pub const PROJECT: &str = "PROJ";
/// A scoped API token: accepted only through the gateway.
pub const SCOPED_TOKEN: &str = "ATATT3xFfGF0-scoped-reposix-test-token-DO-NOT-LEAK-0002";
/// The site's cloudId.
pub const CLOUD_ID: &str = "b1a2c3d4-0000-4000-8000-00000000c10d";
/// Accounts JIRA can assign.
pub const ASSIGNABLE: [&str; 2] = [BOT_ACCOUNT, OTHER_ACCOUNT];
/// Resolutions of the default schemes.
pub const RESOLUTIONS: [&str; 4] = ["Done", "Won't Do", "Duplicate", "Cannot Reproduce"];

/// Which workflow the project runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workflow {
    /// [`STATUSES`], each reachable from every other, no screens.
    Custom,
    /// The default Jira Software workflow: To Do, In Progress, In Review,
    /// Done (global transitions); Done's screen requires a resolution.
    Software,
    /// A classic chain: To Do -> In Progress -> In Review -> Done (screen
    /// with a required resolution), back steps, Done -> To Do.
    Classic,
}
/// Where the logical clock starts: 2026-01-05T14:30:00.000Z.
pub const CLOCK_START: i64 = 1_767_623_400_000;

/// The workflow: (status id, name, category key, transition id).
pub const STATUSES: [(&str, &str, &str, &str); 5] = [
    ("10000", "To Do", "new", "11"),
    ("3", "In Progress", "indeterminate", "21"),
    ("10001", "In Review", "indeterminate", "31"),
    ("10002", "Done", "done", "41"),
    ("10003", "Won't Do", "done", "51"),
];

// ---------------------------------------------------------------------------
// Plumbing shared with `confluence_fake`.

/// One request as a fake saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `PUT`, …
    pub method: String,
    /// Path and query, as sent.
    pub url: String,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// The status answered.
    pub status: u16,
}

impl Recorded {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or("")
    }
}

/// A request handed to a fake's handler.
pub struct Incoming {
    /// Method.
    pub method: String,
    /// Path and query.
    pub url: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Incoming {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or("")
    }

    /// The path split into segments after `prefix`, percent-decoded.
    pub fn segments_after(&self, prefix: &str) -> Option<Vec<String>> {
        let rest = self.path().strip_prefix(prefix)?;
        Some(
            rest.split('/')
                .filter(|s| !s.is_empty())
                .map(pct_decode)
                .collect(),
        )
    }

    /// A decoded query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        query_params(&self.url)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`None` if absent or not JSON).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A response from a fake's handler.
pub struct Outgoing {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Outgoing {
    /// A JSON response.
    pub fn json(status: u16, v: &Value) -> Outgoing {
        Outgoing {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: v.to_string().into_bytes(),
        }
    }

    /// An empty response.
    pub fn empty(status: u16) -> Outgoing {
        Outgoing {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, s: &str) -> Outgoing {
        Outgoing {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: s.as_bytes().to_vec(),
        }
    }

    /// Add a header.
    pub fn with_header(mut self, k: &str, v: &str) -> Outgoing {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
}

/// A loopback HTTP server running `handler` on one thread until dropped.
pub struct FakeServer {
    base: String,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FakeServer {
    /// Bind `127.0.0.1:0` and serve.
    pub fn start(mut handler: impl FnMut(Incoming) -> Outgoing + Send + 'static) -> FakeServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("an IP listener has an IP address");
        let thread = {
            let server = Arc::clone(&server);
            std::thread::spawn(move || {
                // `recv` fails only once `unblock` was called (on drop).
                while let Ok(mut rq) = server.recv() {
                    let mut body = Vec::new();
                    let _ = rq.as_reader().read_to_end(&mut body);
                    let incoming = Incoming {
                        method: rq.method().as_str().to_owned(),
                        url: rq.url().to_owned(),
                        headers: rq
                            .headers()
                            .iter()
                            .map(|h| {
                                (
                                    h.field.as_str().as_str().to_ascii_lowercase(),
                                    h.value.as_str().to_owned(),
                                )
                            })
                            .collect(),
                        body,
                    };
                    let out = handler(incoming);
                    let mut resp =
                        tiny_http::Response::from_data(out.body).with_status_code(out.status);
                    for (k, v) in out.headers {
                        resp.add_header(
                            tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes())
                                .expect("valid header"),
                        );
                    }
                    let _ = rq.respond(resp);
                }
            })
        };
        FakeServer {
            base: format!("http://{addr}"),
            server,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// The loopback-only allowlist the adapters get in tests.
pub fn loopback() -> AllowList {
    AllowList::parse("http://127.0.0.1,http://localhost").expect("valid allowlist")
}

/// Basic auth as the test account.
pub fn basic_auth(token: &str) -> Auth {
    Auth::Basic {
        user: EMAIL.to_owned(),
        secret: Secret::new(token),
    }
}

/// The `Authorization` value for `user:secret`.
pub fn basic_header(user: &str, secret: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{secret}").as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decode `%XX` (and `+` as space) in a query component.
pub fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded query parameters of a URL.
pub fn query_params(url: &str) -> Vec<(String, String)> {
    let Some((_, q)) = url.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

/// (year, month, day, hour, minute, second, millisecond) of a UTC instant,
/// counted out day by day from 1970 (independent of the adapter's maths).
pub fn civil(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    assert!(ms >= 0, "the fakes live after 1970");
    let mut days = ms / 86_400_000;
    let of_day = ms % 86_400_000;
    let mut year = 1970;
    loop {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let len = if leap { 366 } else { 365 };
        if days < len {
            let months = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            let mut month = 1;
            for m in months {
                if days < m {
                    break;
                }
                days -= m;
                month += 1;
            }
            return (
                year,
                month,
                days + 1,
                of_day / 3_600_000,
                of_day / 60_000 % 60,
                of_day / 1000 % 60,
                of_day % 1000,
            );
        }
        days -= len;
        year += 1;
    }
}

/// `2026-01-05T14:30:00.000` (no zone) of a UTC instant.
pub fn iso_local(ms: i64) -> String {
    let (y, mo, d, h, mi, s, f) = civil(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:03}")
}

/// JIRA's form: `2026-01-05T14:30:00.000+0000`.
pub fn jira_time(ms: i64) -> String {
    format!("{}+0000", iso_local(ms))
}

/// The ms of a JQL minute literal `yyyy-MM-dd HH:mm` (UTC), if well formed.
fn jql_minute_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, mo, d, h, mi) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 {
        return None;
    }
    // Find the day by counting forward (small ranges only: the fake's era).
    let mut days = 0i64;
    for year in 1970..y {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        days += if leap { 366 } else { 365 };
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let months = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += months[..(mo - 1) as usize].iter().sum::<i64>() + d - 1;
    Some(days * 86_400_000 + h * 3_600_000 + mi * 60_000)
}

// ---------------------------------------------------------------------------
// ADF checked against the vendor schema.

fn adf_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/atlassian/adf-schema.json"
        );
        let mut schema: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("ADF schema fixture"))
                .expect("ADF schema is JSON");
        // The fixture references the list nodes without defining them;
        // JIRA accepts them. Their definitions as the ADF documentation
        // gives them (bulletList, orderedList, listItem): an item holds
        // one or more blocks and starts with a paragraph, a code block or
        // a media single (ProseMirror's `(paragraph | mediaSingle |
        // codeBlock) (paragraph | bulletList | orderedList | mediaSingle |
        // codeBlock)*`).
        let r = |name: &str| json!({"$ref": format!("#/definitions/{name}")});
        let first = json!({"anyOf": [
            r("paragraph_with_no_marks_node"),
            r("mediaSingle_full_node"),
            r("codeBlock_with_no_marks_node"),
        ]});
        let rest = json!({"anyOf": [
            r("paragraph_with_no_marks_node"),
            r("bulletList_node"),
            r("orderedList_node"),
            r("mediaSingle_full_node"),
            r("codeBlock_with_no_marks_node"),
        ]});
        let defs = schema["definitions"]
            .as_object_mut()
            .expect("ADF schema definitions");
        defs.insert(
            "listItem_node".into(),
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["type", "content"],
                "properties": {
                    "type": {"enum": ["listItem"]},
                    "attrs": {"type": "object", "additionalProperties": false,
                              "properties": {"localId": {"type": "string"}}},
                    "content": {"type": "array", "minItems": 1, "items": [first, rest]},
                },
            }),
        );
        defs.insert(
            "bulletList_node".into(),
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["type", "content"],
                "properties": {
                    "type": {"enum": ["bulletList"]},
                    "attrs": {"type": "object", "additionalProperties": false,
                              "properties": {"localId": {"type": "string"}}},
                    "content": {"type": "array", "minItems": 1, "items": r("listItem_node")},
                },
            }),
        );
        defs.insert(
            "orderedList_node".into(),
            json!({
                "type": "object", "additionalProperties": false,
                "required": ["type", "content"],
                "properties": {
                    "type": {"enum": ["orderedList"]},
                    "attrs": {"type": "object", "additionalProperties": false,
                              "properties": {"order": {"type": "number", "minimum": 0},
                                             "localId": {"type": "string"}}},
                    "content": {"type": "array", "minItems": 1, "items": r("listItem_node")},
                },
            }),
        );
        schema
    })
}

/// Validate an ADF document against the vendor's JSON schema (the subset
/// of JSON Schema it uses: `$ref`, `anyOf`, `allOf`, `type`, `enum`,
/// `required`, `properties`, `additionalProperties`, `items`, `minLength`,
/// `minItems`, `maxItems`, `minimum`, `maximum`). Definitions the schema
/// references but does not contain match nothing, except the list nodes,
/// added from the ADF documentation (see [`adf_schema`]).
pub fn check_adf(doc: &Value) -> Result<(), String> {
    let root = adf_schema();
    validate(root, root, doc, "$")
}

fn validate(root: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/definitions/")
            .ok_or_else(|| format!("{at}: bad ref {r}"))?;
        let def = root["definitions"]
            .get(name)
            .ok_or_else(|| format!("{at}: unknown node {name}"))?;
        return validate(root, def, v, at);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        if !any.iter().any(|s| validate(root, s, v, at).is_ok()) {
            return Err(format!(
                "{at}: matches no allowed node ({})",
                v.get("type").unwrap_or(&Value::Null)
            ));
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(root, s, v, at)?;
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}: expected {t}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let Some(s) = v.as_str() {
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if (s.chars().count() as u64) < min {
                return Err(format!("{at}: shorter than {min}"));
            }
        }
    }
    if let Some(n) = v.as_f64() {
        if schema
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
            || schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|m| n > m)
        {
            return Err(format!("{at}: {n} out of range"));
        }
    }
    if let Some(items) = v.as_array() {
        let len = items.len() as u64;
        if schema
            .get("minItems")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
            || schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| len > m)
        {
            return Err(format!("{at}: wrong number of items"));
        }
        match schema.get("items") {
            // Positional: the first schema for the first item, the last
            // one for every later item.
            Some(Value::Array(tuple)) if !tuple.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    let s = &tuple[i.min(tuple.len() - 1)];
                    validate(root, s, item, &format!("{at}[{i}]"))?;
                }
            }
            Some(item_schema) => {
                for (i, item) in items.iter().enumerate() {
                    validate(root, item_schema, item, &format!("{at}[{i}]"))?;
                }
            }
            None => {}
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    return Err(format!("{at}: missing {r}"));
                }
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(root, s, val, &format!("{at}.{k}"))?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{at}: unexpected {k}")),
                    Some(s @ Value::Object(_)) => validate(root, s, val, &format!("{at}.{k}"))?,
                    _ => {}
                },
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The JIRA fake.

/// An issue in the fake.
#[derive(Clone, Debug)]
pub struct Issue {
    /// Numeric id.
    pub id: u64,
    /// `PROJ-n`.
    pub key: String,
    /// Summary.
    pub summary: String,
    /// ADF or null.
    pub description: Value,
    /// Index into [`STATUSES`].
    pub status: usize,
    /// Labels.
    pub labels: Vec<String>,
    /// Assignee account id.
    pub assignee: Option<String>,
    /// Created (ms).
    pub created: i64,
    /// Updated (ms).
    pub updated: i64,
    /// Issue properties.
    pub properties: BTreeMap<String, Value>,
    /// Comments.
    pub comments: Vec<Comment>,
    /// Resolution name.
    pub resolution: Option<String>,
    /// Search serves it only after this many searches (index lag).
    pub visible_after: usize,
}

struct Trans {
    id: &'static str,
    name: &'static str,
    from: Option<usize>,
    to: usize,
    resolution_screen: bool,
}

/// A comment in the fake.
#[derive(Clone, Debug)]
pub struct Comment {
    /// Id.
    pub id: u64,
    /// Author account id.
    pub author: String,
    /// ADF body.
    pub body: Value,
    /// Created (ms).
    pub created: i64,
    /// Updated (ms).
    pub updated: i64,
}

/// Link types of the site: (id, name, inward phrase, outward phrase).
pub const LINK_TYPES: [(&str, &str, &str, &str); 4] = [
    ("10000", "Blocks", "is blocked by", "blocks"),
    ("10001", "Cloners", "is cloned by", "clones"),
    ("10002", "Duplicate", "is duplicated by", "duplicates"),
    ("10003", "Relates", "relates to", "relates to"),
];

/// An issue link: `source` reads "<outward phrase> `dest`" (it is the
/// request's `inwardIssue`), `dest` reads "<inward phrase> `source`".
#[derive(Clone, Debug)]
struct FakeLink {
    id: u64,
    kind: usize,
    source: usize,
    dest: usize,
}

struct State {
    base: String,
    clock: i64,
    links: Vec<FakeLink>,
    next_link: u64,
    linking: bool,
    tick: i64,
    next_id: u64,
    next_comment: u64,
    issues: Vec<Issue>,
    disabled: Vec<usize>,
    page_cap: usize,
    comment_page_cap: usize,
    throttle: u32,
    retry_after: u64,
    garble_next_create: bool,
    property_search: bool,
    touch_after_search_page: Option<(usize, String)>,
    search_pages_served: usize,
    tokens: HashMap<String, (String, usize)>,
    requests: Vec<Recorded>,
    statuses: Vec<(&'static str, &'static str, &'static str)>,
    transitions: Vec<Trans>,
    workflow: Workflow,
    profile_offset_min: i64,
    search_lag: usize,
    searches: usize,
    fail_searches: (u32, u16),
    forbid: u32,
    issue_types: Vec<(&'static str, &'static str, bool)>,
    create_screen: Vec<&'static str>,
    vclock: Arc<VirtualClock>,
}

fn workflow(w: Workflow) -> (Vec<(&'static str, &'static str, &'static str)>, Vec<Trans>) {
    let four = vec![
        ("10000", "To Do", "new"),
        ("3", "In Progress", "indeterminate"),
        ("10001", "In Review", "indeterminate"),
        ("10002", "Done", "done"),
    ];
    let t = |id, name, from, to, resolution_screen| Trans {
        id,
        name,
        from,
        to,
        resolution_screen,
    };
    match w {
        Workflow::Custom => (
            STATUSES.iter().map(|s| (s.0, s.1, s.2)).collect(),
            STATUSES
                .iter()
                .enumerate()
                .map(|(i, s)| t(s.3, s.1, None, i, false))
                .collect(),
        ),
        Workflow::Software => (
            four,
            vec![
                t("11", "To Do", None, 0, false),
                t("21", "In Progress", None, 1, false),
                t("31", "In Review", None, 2, false),
                t("41", "Done", None, 3, true),
            ],
        ),
        Workflow::Classic => (
            four,
            vec![
                t("11", "Start Progress", Some(0), 1, false),
                t("21", "Submit for Review", Some(1), 2, false),
                t("31", "Approve", Some(2), 3, true),
                t("41", "Reopen", Some(3), 0, false),
                t("51", "Back to Progress", Some(2), 1, false),
                t("61", "Stop Progress", Some(1), 0, false),
            ],
        ),
    }
}

impl State {
    fn tick(&mut self) -> i64 {
        self.clock += self.tick;
        self.clock
    }

    fn issue_idx(&self, key_or_id: &str) -> Option<usize> {
        self.issues
            .iter()
            .position(|i| i.key == key_or_id || i.id.to_string() == key_or_id)
    }

    fn status_json(&self, idx: usize) -> Value {
        let (id, name, cat) = self.statuses[idx];
        let (cat_id, cat_name, color) = match cat {
            "new" => (2, "To Do", "blue-gray"),
            "indeterminate" => (4, "In Progress", "yellow"),
            _ => (3, "Done", "green"),
        };
        json!({
            "self": format!("{}/rest/api/3/status/{id}", self.base),
            "id": id,
            "name": name,
            "description": "",
            "statusCategory": {"id": cat_id, "key": cat, "name": cat_name, "colorName": color},
        })
    }

    fn issue_json(&self, issue: &Issue, fields: &[String], properties: &[String]) -> Value {
        let all = fields.iter().any(|f| f == "*all" || f == "*navigable");
        let want = |f: &str| all || fields.iter().any(|x| x == f);
        let mut out = Map::new();
        let user = |acc: &str| json!({"accountId": acc, "displayName": format!("User {acc}"), "active": true, "accountType": "atlassian"});
        if want("summary") {
            out.insert("summary".into(), json!(issue.summary));
        }
        if want("description") {
            out.insert("description".into(), issue.description.clone());
        }
        if want("status") {
            out.insert("status".into(), self.status_json(issue.status));
        }
        if want("labels") {
            out.insert("labels".into(), json!(issue.labels));
        }
        if want("assignee") {
            out.insert(
                "assignee".into(),
                issue.assignee.as_deref().map_or(Value::Null, user),
            );
        }
        if want("issuetype") {
            out.insert("issuetype".into(), json!({"id": "10001", "name": "Task"}));
        }
        if want("created") {
            out.insert("created".into(), json!(jira_time(issue.created)));
        }
        if want("updated") {
            out.insert("updated".into(), json!(jira_time(issue.updated)));
        }
        if want("issuelinks") {
            let idx = self.issue_idx(&issue.key).expect("an issue of the fake");
            out.insert("issuelinks".into(), json!(self.links_of(idx)));
        }
        if want("resolution") {
            let res = match &issue.resolution {
                Some(r) => json!({"id": "1000", "name": r}),
                None => Value::Null,
            };
            out.insert("resolution".into(), res);
        }
        let mut v = json!({
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": issue.id.to_string(),
            "key": issue.key,
            "self": format!("{}/rest/api/3/issue/{}", self.base, issue.id),
        });
        if fields.iter().any(|f| f != "id") {
            v["fields"] = Value::Object(out);
        }
        let props: Map<String, Value> = properties
            .iter()
            .filter_map(|p| issue.properties.get(p).map(|val| (p.clone(), val.clone())))
            .collect();
        if !properties.is_empty() {
            v["properties"] = Value::Object(props);
        }
        v
    }

    /// `fields.issuelinks` of issue `idx`.
    fn links_of(&self, idx: usize) -> Vec<Value> {
        let brief = |i: usize| {
            let issue = &self.issues[i];
            json!({
                "id": issue.id.to_string(),
                "key": issue.key,
                "self": format!("{}/rest/api/3/issue/{}", self.base, issue.id),
                "fields": {"summary": issue.summary, "status": self.status_json(issue.status)},
            })
        };
        let mut out = Vec::new();
        for l in &self.links {
            let (id, name, inward, outward) = LINK_TYPES[l.kind];
            let ty = json!({
                "id": id, "name": name, "inward": inward, "outward": outward,
                "self": format!("{}/rest/api/3/issueLinkType/{id}", self.base),
            });
            let link_self = format!("{}/rest/api/3/issueLink/{}", self.base, l.id);
            if l.source == idx {
                out.push(json!({"id": l.id.to_string(), "self": link_self, "type": ty, "outwardIssue": brief(l.dest)}));
            }
            if l.dest == idx {
                out.push(json!({"id": l.id.to_string(), "self": link_self, "type": ty, "inwardIssue": brief(l.source)}));
            }
        }
        out
    }

    /// Make a link (`source` reads with the outward phrase); one already
    /// there is kept once. Bumps both ends.
    fn make_link(&mut self, kind: usize, source: usize, dest: usize) -> u64 {
        if let Some(l) = self
            .links
            .iter()
            .find(|l| l.kind == kind && l.source == source && l.dest == dest)
        {
            return l.id;
        }
        self.next_link += 1;
        let id = self.next_link;
        self.links.push(FakeLink {
            id,
            kind,
            source,
            dest,
        });
        let at = self.tick();
        self.issues[source].updated = at;
        self.issues[dest].updated = at;
        id
    }

    fn drop_link(&mut self, id: u64) -> bool {
        let Some(pos) = self.links.iter().position(|l| l.id == id) else {
            return false;
        };
        let l = self.links.remove(pos);
        let at = self.tick();
        self.issues[l.source].updated = at;
        self.issues[l.dest].updated = at;
        true
    }

    fn comment_json(&self, issue: &Issue, c: &Comment) -> Value {
        let user = json!({"accountId": c.author, "displayName": format!("User {}", c.author), "active": true});
        json!({
            "self": format!("{}/rest/api/3/issue/{}/comment/{}", self.base, issue.id, c.id),
            "id": c.id.to_string(),
            "author": user,
            "updateAuthor": user,
            "body": c.body,
            "created": jira_time(c.created),
            "updated": jira_time(c.updated),
            "jsdPublic": true,
        })
    }
}

/// What a seeded issue starts with.
#[derive(Clone, Debug)]
pub struct Seed {
    /// Summary.
    pub summary: String,
    /// Description as plain text turned into one-paragraph-per-line ADF
    /// (`None`: null).
    pub description: Option<String>,
    /// Status name.
    pub status: &'static str,
    /// Labels.
    pub labels: Vec<String>,
    /// Assignee.
    pub assignee: Option<String>,
}

impl Default for Seed {
    fn default() -> Seed {
        Seed {
            summary: "seeded".into(),
            description: None,
            status: "To Do",
            labels: Vec::new(),
            assignee: None,
        }
    }
}

/// The running fake.
pub struct FakeJira {
    state: Arc<Mutex<State>>,
    server: FakeServer,
}

impl FakeJira {
    /// Start a fake on a free loopback port.
    pub fn start() -> FakeJira {
        let state = Arc::new(Mutex::new(State {
            base: String::new(),
            clock: CLOCK_START,
            links: Vec::new(),
            next_link: 10_500,
            linking: true,
            tick: 1000,
            next_id: 10_000,
            next_comment: 10_100,
            issues: Vec::new(),
            disabled: Vec::new(),
            page_cap: 100,
            comment_page_cap: 100,
            throttle: 0,
            retry_after: 1,
            garble_next_create: false,
            property_search: true,
            touch_after_search_page: None,
            search_pages_served: 0,
            tokens: HashMap::new(),
            requests: Vec::new(),
            statuses: workflow(Workflow::Custom).0,
            transitions: workflow(Workflow::Custom).1,
            workflow: Workflow::Custom,
            profile_offset_min: 0,
            search_lag: 0,
            searches: 0,
            fail_searches: (0, 502),
            forbid: 0,
            issue_types: vec![
                ("10001", "Task", false),
                ("10002", "Bug", false),
                ("10003", "Story", false),
            ],
            create_screen: vec![
                "summary",
                "issuetype",
                "project",
                "description",
                "labels",
                "assignee",
                "reporter",
            ],
            vclock: VirtualClock::new(),
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
        FakeJira { state, server }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        self.server.base()
    }

    /// An adapter for this fake with the right credentials.
    pub fn backend(&self) -> JiraBackend {
        self.backend_with(basic_auth(TOKEN))
    }

    /// An adapter for this fake with other credentials (on the fake's
    /// virtual clock).
    pub fn backend_with(&self, auth: Auth) -> JiraBackend {
        let mut b = JiraBackend::new(self.url(), PROJECT, auth, loopback())
            .expect("valid test configuration");
        b.set_clock(self.clock());
        b
    }

    /// The virtual clock adapters made by this fake sleep on.
    pub fn clock(&self) -> Arc<VirtualClock> {
        Arc::clone(&self.lock().vclock)
    }

    /// Run `w` (issues keep their status index; seed after switching).
    pub fn set_workflow(&self, w: Workflow) {
        let mut st = self.lock();
        let (statuses, transitions) = workflow(w);
        st.statuses = statuses;
        st.transitions = transitions;
        st.workflow = w;
    }

    /// The calling user's profile time zone, minutes east of UTC: JQL date
    /// literals are read in it (`updated` is still rendered in `+0000`).
    pub fn set_profile_offset(&self, minutes: i64) {
        self.lock().profile_offset_min = minutes;
    }

    /// New issues stay out of search results for the next `n` searches.
    pub fn set_search_lag(&self, n: usize) {
        self.lock().search_lag = n;
    }

    /// Answer the next `n` searches with `status` (a 502 from the edge).
    pub fn fail_next_searches(&self, n: u32, status: u16) {
        self.lock().fail_searches = (n, status);
    }

    /// Answer the next `n` requests with a permission 403.
    pub fn forbid_next(&self, n: u32) {
        self.lock().forbid = n;
    }

    /// A Jira Software project: issue types Bug, Story, Epic, Subtask (no
    /// Task), and a create screen without labels.
    pub fn use_software_project(&self) {
        let mut st = self.lock();
        st.issue_types = vec![
            ("10004", "Bug", false),
            ("10005", "Story", false),
            ("10006", "Epic", false),
            ("10007", "Subtask", true),
        ];
        st.create_screen = vec![
            "summary",
            "issuetype",
            "project",
            "description",
            "assignee",
            "reporter",
        ];
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state lock")
    }

    /// Insert an issue directly (a third party); returns its key.
    pub fn seed(&self, seed: Seed) -> String {
        let mut st = self.lock();
        let at = st.tick();
        let status = st
            .statuses
            .iter()
            .position(|s| s.1 == seed.status)
            .expect("a status of the fake's workflow");
        let resolution = match (st.statuses[status].2, seed.status) {
            ("done", "Won't Do") => Some("Won't Do".to_owned()),
            ("done", _) => Some("Done".to_owned()),
            _ => None,
        };
        st.next_id += 1;
        let id = st.next_id;
        let key = format!("{PROJECT}-{}", st.issues.len() + 1);
        let description = seed.description.map_or(Value::Null, |d| {
            let paras: Vec<Value> = d
                .split('\n')
                .map(|l| {
                    if l.is_empty() {
                        json!({"type": "paragraph", "content": []})
                    } else {
                        json!({"type": "paragraph", "content": [{"type": "text", "text": l}]})
                    }
                })
                .collect();
            json!({"type": "doc", "version": 1, "content": paras})
        });
        st.issues.push(Issue {
            id,
            key: key.clone(),
            summary: seed.summary,
            description,
            status,
            labels: seed.labels,
            assignee: seed.assignee,
            created: at,
            updated: at,
            properties: BTreeMap::new(),
            comments: Vec::new(),
            resolution,
            visible_after: 0,
        });
        key
    }

    /// Change an issue as a third party would (stamps `updated`).
    pub fn edit(&self, key: &str, f: impl FnOnce(&mut Issue)) {
        let mut st = self.lock();
        let at = st.tick();
        let idx = st.issue_idx(key).expect("issue exists");
        let issue = &mut st.issues[idx];
        f(issue);
        issue.updated = at;
    }

    /// Add `n` comments by a third party.
    pub fn seed_comments(&self, key: &str, n: usize) {
        let mut st = self.lock();
        for i in 0..n {
            let at = st.tick();
            st.next_comment += 1;
            let id = st.next_comment;
            let idx = st.issue_idx(key).expect("issue exists");
            let issue = &mut st.issues[idx];
            issue.comments.push(Comment {
                id,
                author: OTHER_ACCOUNT.into(),
                body: json!({"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": format!("comment {i}")}]}
                ]}),
                created: at,
                updated: at,
            });
            issue.updated = at;
        }
    }

    /// A snapshot of an issue.
    pub fn issue(&self, key: &str) -> Issue {
        let st = self.lock();
        let idx = st.issue_idx(key).expect("issue exists");
        st.issues[idx].clone()
    }

    /// How many issues exist.
    pub fn issue_count(&self) -> usize {
        self.lock().issues.len()
    }

    /// Milliseconds the clock advances per mutation.
    pub fn set_tick(&self, ms: i64) {
        self.lock().tick = ms;
    }

    /// Most issues per search page (JIRA may return fewer than asked).
    pub fn set_page_cap(&self, n: usize) {
        self.lock().page_cap = n;
    }

    /// Most comments per comment page.
    pub fn set_comment_page_cap(&self, n: usize) {
        self.lock().comment_page_cap = n;
    }

    /// Answer the next `n` requests with 429 and `Retry-After: secs`.
    pub fn throttle_next(&self, n: u32, secs: u64) {
        let mut st = self.lock();
        st.throttle = n;
        st.retry_after = secs;
    }

    /// Remove every transition into a status (by name).
    pub fn disable_status(&self, name: &str) {
        let mut st = self.lock();
        let idx = st
            .statuses
            .iter()
            .position(|s| s.1 == name)
            .expect("known status");
        st.disabled.push(idx);
    }

    /// Create the next issue, then answer with a body that is not JSON
    /// (the caller loses the response).
    pub fn garble_next_create(&self) {
        self.lock().garble_next_create = true;
    }

    /// Whether `issue.property[…]` clauses are searchable (an app indexes
    /// the property); without, JQL naming them is a 400.
    pub fn set_property_search(&self, on: bool) {
        self.lock().property_search = on;
    }

    /// After serving search page `page` (1-based, counted from now), a third
    /// party edits issue `key`.
    pub fn touch_after_search_page(&self, page: usize, key: &str) {
        let mut st = self.lock();
        st.search_pages_served = 0;
        st.touch_after_search_page = Some((page, key.to_owned()));
    }

    /// Requests seen so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// A tracker user links two issues, as `POST /issueLink` with
    /// `inwardIssue: inward` (the end reading "blocks", "duplicates") and
    /// `outwardIssue: outward`; returns the link id.
    pub fn link(&self, type_name: &str, inward: &str, outward: &str) -> u64 {
        let mut st = self.lock();
        let kind = LINK_TYPES
            .iter()
            .position(|t| t.1 == type_name)
            .expect("a link type of the fake");
        let source = st.issue_idx(inward).expect("issue exists");
        let dest = st.issue_idx(outward).expect("issue exists");
        st.make_link(kind, source, dest)
    }

    /// A tracker user deletes a link.
    pub fn unlink(&self, id: u64) {
        assert!(self.lock().drop_link(id), "link {id} exists");
    }

    /// Every link as (type name, the end reading the outward phrase, the
    /// other end, link id): ("Blocks", "P-1", "P-2", _) is "P-1 blocks P-2".
    pub fn links(&self) -> Vec<(String, String, String, u64)> {
        let st = self.lock();
        st.links
            .iter()
            .map(|l| {
                (
                    LINK_TYPES[l.kind].1.to_owned(),
                    st.issues[l.source].key.clone(),
                    st.issues[l.dest].key.clone(),
                    l.id,
                )
            })
            .collect()
    }

    /// Switch issue linking off for the site: the link endpoints answer 404.
    pub fn disable_linking(&self) {
        self.lock().linking = false;
    }

    /// Forget the requests seen so far.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}

fn err(status: u16, messages: &[&str], errors: &[(&str, &str)]) -> Outgoing {
    let errors: Map<String, Value> = errors
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    Outgoing::json(
        status,
        &json!({"errorMessages": messages, "errors": errors}),
    )
}

/// The gateway side of a request: `Some(rest)` for `/ex/{product}/{CLOUD_ID}/rest…`.
pub fn gateway_rest(rq: &Incoming, product: &str) -> Option<Incoming> {
    let prefix = format!("/ex/{product}/{CLOUD_ID}");
    let rest = rq.url.strip_prefix(&prefix)?;
    Some(Incoming {
        method: rq.method.clone(),
        url: rest.to_owned(),
        headers: rq.headers.clone(),
        body: rq.body.clone(),
    })
}

/// Basic auth as Atlassian checks it: the unscoped token at the site, the
/// scoped one through the gateway only. `Err` is the 401 body.
pub fn atlassian_auth(rq: &Incoming, gateway: bool) -> Result<(), &'static str> {
    let got = rq.header("authorization");
    let unscoped = basic_header(EMAIL, TOKEN);
    let scoped = basic_header(EMAIL, SCOPED_TOKEN);
    match (got, gateway) {
        (Some(v), false) if v == unscoped => Ok(()),
        (Some(v), true) if v == scoped => Ok(()),
        (Some(v), false) if v == scoped => Err("Unauthorized; scope does not match"),
        _ => Err("Client must be authenticated to access this resource."),
    }
}

fn serve(st: &mut State, rq: &Incoming) -> Outgoing {
    if rq.path() == "/_edge/tenant_info" {
        return Outgoing::json(200, &json!({"cloudId": CLOUD_ID}));
    }
    let gateway = gateway_rest(rq, "jira");
    if let Err(e) = atlassian_auth(rq, gateway.is_some()) {
        return Outgoing::text(401, e);
    }
    let rq = gateway.as_ref().unwrap_or(rq);
    if st.forbid > 0 {
        st.forbid -= 1;
        return err(
            403,
            &["You do not have permission to edit issues in this project."],
            &[],
        );
    }
    if st.throttle > 0 {
        st.throttle -= 1;
        return err(429, &["Rate limit exceeded."], &[])
            .with_header("Retry-After", &st.retry_after.to_string());
    }
    let method = rq.method.as_str();
    if method == "POST" && rq.path() == "/rest/api/3/search/jql" {
        return search(st, rq);
    }
    if method == "POST" && rq.path() == "/rest/api/3/issue" {
        return create(st, rq);
    }
    if let Some(seg) = rq.segments_after("/rest/api/3/issueLink").filter(|_| {
        rq.path() == "/rest/api/3/issueLink" || rq.path().starts_with("/rest/api/3/issueLink/")
    }) {
        return issue_link(st, rq, &seg);
    }
    if method == "GET" {
        if let Some(seg) = rq.segments_after("/rest/api/3/issue/createmeta/") {
            return createmeta(st, &seg);
        }
    }
    let Some(seg) = rq.segments_after("/rest/api/3/issue/") else {
        return err(404, &["No such endpoint in the fake."], &[]);
    };
    let Some(idx) = seg.first().and_then(|k| st.issue_idx(k)) else {
        return err(
            404,
            &["Issue does not exist or you do not have permission to see it."],
            &[],
        );
    };
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (method, &seg[1..]) {
        ("GET", []) => {
            let fields: Vec<String> = rq
                .query("fields")
                .map(|f| f.split(',').map(str::to_owned).collect())
                .unwrap_or_else(|| vec!["*all".into()]);
            let props: Vec<String> = rq
                .query("properties")
                .map(|f| f.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            Outgoing::json(200, &st.issue_json(&st.issues[idx], &fields, &props))
        }
        ("PUT", []) => edit(st, idx, rq),
        ("GET", ["transitions"]) => {
            let expand = rq
                .query("expand")
                .is_some_and(|e| e.contains("transitions.fields"));
            let current = st.issues[idx].status;
            let list: Vec<Value> = st
                .transitions
                .iter()
                .filter(|t| t.from.is_none_or(|f| f == current))
                .filter(|t| t.to != current && !st.disabled.contains(&t.to))
                .map(|t| {
                    let mut v = json!({
                        "id": t.id,
                        "name": t.name,
                        "to": st.status_json(t.to),
                        "hasScreen": t.resolution_screen, "isGlobal": t.from.is_none(),
                        "isInitial": false, "isAvailable": true, "isConditional": false,
                        "isLooped": false,
                    });
                    if expand {
                        let mut fields = Map::new();
                        if t.resolution_screen {
                            fields.insert("resolution".into(), json!({
                                "required": true,
                                "schema": {"type": "resolution", "system": "resolution"},
                                "name": "Resolution", "key": "resolution",
                                "hasDefaultValue": false, "operations": ["set"],
                                "allowedValues": RESOLUTIONS.iter().enumerate()
                                    .map(|(i, r)| json!({"id": (10000 + i).to_string(), "name": r}))
                                    .collect::<Vec<_>>(),
                            }));
                        }
                        v["fields"] = Value::Object(fields);
                    }
                    v
                })
                .collect();
            Outgoing::json(200, &json!({"expand": "transitions", "transitions": list}))
        }
        ("POST", ["transitions"]) => {
            let body = rq.json().unwrap_or(Value::Null);
            let id = body
                .pointer("/transition/id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let current = st.issues[idx].status;
            let chosen = st.transitions.iter().find(|t| {
                Some(t.id) == id.as_deref()
                    && t.from.is_none_or(|f| f == current)
                    && t.to != current
                    && !st.disabled.contains(&t.to)
            });
            let Some(t) = chosen else {
                return err(
                    400,
                    &[&format!(
                        "Transition id '{}' is not valid for this issue.",
                        id.unwrap_or_default()
                    )],
                    &[],
                );
            };
            let (to, screen) = (t.to, t.resolution_screen);
            let sent_resolution = body
                .pointer("/fields/resolution/name")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(other) = body
                .get("fields")
                .and_then(Value::as_object)
                .and_then(|f| f.keys().find(|k| *k != "resolution" || !screen))
            {
                return err(
                    400,
                    &[],
                    &[(
                        other.as_str(),
                        &format!("Field '{other}' cannot be set. It is not on the appropriate screen, or unknown."),
                    )],
                );
            }
            let resolution = if screen {
                match sent_resolution {
                    Some(r) if RESOLUTIONS.contains(&r.as_str()) => Some(r),
                    _ => return err(400, &[], &[("resolution", "Resolution is required.")]),
                }
            } else if st.statuses[to].2 == "done" {
                // Custom workflow: the status names the resolution.
                Some(
                    if st.statuses[to].1 == "Won't Do" {
                        "Won't Do"
                    } else {
                        "Done"
                    }
                    .to_owned(),
                )
            } else {
                None
            };
            let at = st.tick();
            st.issues[idx].status = to;
            st.issues[idx].resolution = resolution;
            st.issues[idx].updated = at;
            Outgoing::empty(204)
        }
        ("PUT", ["properties", key]) => {
            let Some(v) = rq.json() else {
                return err(400, &["The property value must be valid JSON."], &[]);
            };
            let existed = st.issues[idx]
                .properties
                .insert((*key).to_owned(), v)
                .is_some();
            Outgoing::empty(if existed { 200 } else { 201 })
        }
        ("GET", ["properties", key]) => match st.issues[idx].properties.get(*key) {
            Some(v) => Outgoing::json(200, &json!({"key": key, "value": v})),
            None => err(
                404,
                &[&format!("The property with key '{key}' does not exist.")],
                &[],
            ),
        },
        ("GET", ["comment"]) => {
            let order = rq.query("orderBy").unwrap_or_else(|| "created".into());
            if !matches!(order.as_str(), "created" | "+created" | "-created") {
                return err(400, &["orderBy must be created"], &[]);
            }
            let start: usize = rq
                .query("startAt")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let max: usize = rq
                .query("maxResults")
                .and_then(|s| s.parse().ok())
                .unwrap_or(100)
                .min(st.comment_page_cap);
            let issue = &st.issues[idx];
            let mut all: Vec<&Comment> = issue.comments.iter().collect();
            if order == "-created" {
                all.reverse();
            }
            let page: Vec<Value> = all
                .iter()
                .skip(start)
                .take(max)
                .map(|c| st.comment_json(issue, c))
                .collect();
            Outgoing::json(
                200,
                &json!({"startAt": start, "maxResults": max, "total": all.len(), "comments": page}),
            )
        }
        ("POST", ["comment"]) => {
            let body = match comment_body(rq) {
                Ok(b) => b,
                Err(o) => return o,
            };
            let at = st.tick();
            st.next_comment += 1;
            let c = Comment {
                id: st.next_comment,
                author: BOT_ACCOUNT.into(),
                body,
                created: at,
                updated: at,
            };
            st.issues[idx].comments.push(c.clone());
            st.issues[idx].updated = at;
            Outgoing::json(201, &st.comment_json(&st.issues[idx], &c))
        }
        ("PUT", ["comment", cid]) => {
            let body = match comment_body(rq) {
                Ok(b) => b,
                Err(o) => return o,
            };
            let Some(ci) = st.issues[idx]
                .comments
                .iter()
                .position(|c| c.id.to_string() == *cid)
            else {
                return err(404, &["Can not find a comment for the id."], &[]);
            };
            let at = st.tick();
            st.issues[idx].comments[ci].body = body;
            st.issues[idx].comments[ci].updated = at;
            st.issues[idx].updated = at;
            let c = st.issues[idx].comments[ci].clone();
            Outgoing::json(200, &st.comment_json(&st.issues[idx], &c))
        }
        _ => err(404, &["No such endpoint in the fake."], &[]),
    }
}

/// `POST /rest/api/3/issueLink` and `DELETE /rest/api/3/issueLink/{id}`.
fn issue_link(st: &mut State, rq: &Incoming, seg: &[String]) -> Outgoing {
    if !st.linking {
        return err(404, &["Issue linking is disabled."], &[]);
    }
    match (rq.method.as_str(), seg) {
        ("POST", []) => {
            let Some(Value::Object(body)) = rq.json() else {
                return err(400, &["The request body is missing."], &[]);
            };
            if let Some(k) = body.keys().find(|k| {
                !matches!(
                    k.as_str(),
                    "type" | "inwardIssue" | "outwardIssue" | "comment"
                )
            }) {
                return err(400, &[&format!("Unrecognized field \"{k}\"")], &[]);
            }
            let ty = body.get("type");
            let by_name = ty.and_then(|t| t.get("name")).and_then(Value::as_str);
            let by_id = ty.and_then(|t| t.get("id")).and_then(Value::as_str);
            let kind = LINK_TYPES
                .iter()
                .position(|t| Some(t.1) == by_name || Some(t.0) == by_id);
            let end = |name: &str| {
                let e = body.get(name)?;
                e.get("key")
                    .or_else(|| e.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let (Some(inward), Some(outward)) = (end("inwardIssue"), end("outwardIssue")) else {
                return err(
                    400,
                    &[],
                    &[("issuelinks", "inwardIssue and outwardIssue are required")],
                );
            };
            let Some(kind) = kind else {
                return err(
                    404,
                    &[&format!(
                        "No issue link type with name '{}' found.",
                        by_name.or(by_id).unwrap_or("")
                    )],
                    &[],
                );
            };
            let (Some(source), Some(dest)) = (st.issue_idx(&inward), st.issue_idx(&outward)) else {
                return err(
                    404,
                    &["Issue does not exist or you do not have permission to see it."],
                    &[],
                );
            };
            if source == dest {
                return err(400, &["You cannot link an issue to itself."], &[]);
            }
            st.make_link(kind, source, dest);
            // JIRA answers 201 with an empty body: no link id.
            Outgoing::empty(201)
        }
        ("DELETE", [id]) => match id.parse::<u64>() {
            Ok(n) if st.drop_link(n) => Outgoing::empty(204),
            Ok(_) => err(404, &["No issue link with id exists."], &[]),
            Err(_) => err(400, &["The issue link id is invalid."], &[]),
        },
        _ => err(404, &["No such endpoint in the fake."], &[]),
    }
}

fn comment_body(rq: &Incoming) -> Result<Value, Outgoing> {
    let body = rq.json().and_then(|b| b.get("body").cloned());
    let Some(body) = body else {
        return Err(err(
            400,
            &[],
            &[("comment", "Comment body can not be empty!")],
        ));
    };
    if let Err(e) = check_adf(&body) {
        return Err(err(400, &[], &[("comment", &format!("Invalid ADF: {e}"))]));
    }
    if body["content"].as_array().is_none_or(Vec::is_empty) {
        return Err(err(
            400,
            &[],
            &[("comment", "Comment body can not be empty!")],
        ));
    }
    if adf_chars(&body) > 32_767 {
        return Err(err(400, &[], &[("comment", TOO_LONG)]));
    }
    Ok(body)
}

const TOO_LONG: &str =
    "The entered text is too long. It exceeds the allowed limit of 32,767 characters.";

/// Characters of text in an ADF document.
fn adf_chars(v: &Value) -> usize {
    let own = v
        .get("text")
        .and_then(Value::as_str)
        .map_or(0, |t| t.chars().count());
    own + v
        .get("content")
        .and_then(Value::as_array)
        .map_or(0, |c| c.iter().map(adf_chars).sum::<usize>())
        + usize::from(v.get("type").and_then(Value::as_str) == Some("paragraph"))
}

fn createmeta(st: &State, seg: &[String]) -> Outgoing {
    match seg {
        [p, it] if p == PROJECT && it == "issuetypes" => {
            let types: Vec<Value> = st
                .issue_types
                .iter()
                .map(|(id, name, sub)| json!({"id": id, "name": name, "subtask": sub, "description": ""}))
                .collect();
            let n = types.len();
            Outgoing::json(
                200,
                &json!({"issueTypes": types, "maxResults": 200, "startAt": 0, "total": n}),
            )
        }
        [p, it, id] if p == PROJECT && it == "issuetypes" => {
            if !st.issue_types.iter().any(|t| t.0 == id) {
                return err(404, &["Issue type not found."], &[]);
            }
            let fields: Vec<Value> = st
                .create_screen
                .iter()
                .map(|f| json!({"fieldId": f, "key": f, "name": f, "required": matches!(*f, "summary" | "issuetype" | "project"), "hasDefaultValue": false, "operations": ["set"]}))
                .collect();
            let n = fields.len();
            Outgoing::json(
                200,
                &json!({"fields": fields, "maxResults": 200, "startAt": 0, "total": n}),
            )
        }
        _ => err(404, &["No project could be found."], &[]),
    }
}

/// The JQL shapes the adapter sends, parsed.
#[derive(Debug, Default)]
struct Jql {
    project: Option<String>,
    updated_from: Option<i64>,
    property: Option<(String, String, String)>,
    created_desc: bool,
}

/// A date literal read in the profile zone (`offset_min` east of UTC), or
/// an epoch-milliseconds literal, which has no zone.
fn jql_date(d: &str, offset_min: i64) -> Option<i64> {
    if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) {
        return d.parse().ok();
    }
    let dashed = d.replace('/', "-");
    jql_minute_ms(&dashed).map(|ms| ms - offset_min * 60_000)
}

fn parse_jql(q: &str, property_search: bool) -> Result<Jql, String> {
    parse_jql_in(q, property_search, 0)
}

fn parse_jql_in(q: &str, property_search: bool, offset_min: i64) -> Result<Jql, String> {
    #[derive(Debug, PartialEq)]
    enum Tok {
        Word(String),
        Str(String),
        Op(&'static str),
    }
    let mut toks = Vec::new();
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => i += 1,
            b'"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => return Err("unterminated string".into()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            s.push(*b.get(i + 1).ok_or("dangling escape")? as char);
                            i += 2;
                        }
                        Some(_) => {
                            let ch = q[i..].chars().next().expect("in bounds");
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                i += 1;
                toks.push(Tok::Str(s));
            }
            b'>' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Op(">="));
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Op("="));
                i += 1;
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && b[i] != b'='
                    && b[i] != b'>'
                    && b[i] != b'"'
                {
                    i += 1;
                }
                toks.push(Tok::Word(q[start..i].to_owned()));
            }
        }
    }
    let mut jql = Jql::default();
    let mut it = toks.into_iter().peekable();
    let mut clauses = 0;
    loop {
        match it.next() {
            Some(Tok::Word(w)) if w == "project" => {
                let (Some(Tok::Op("=")), Some(Tok::Str(p))) = (it.next(), it.next()) else {
                    return Err("expected project = \"KEY\"".into());
                };
                jql.project = Some(p);
            }
            Some(Tok::Word(w)) if w == "updated" => {
                let (Some(Tok::Op(">=")), Some(Tok::Str(d) | Tok::Word(d))) =
                    (it.next(), it.next())
                else {
                    return Err("expected updated >= \"yyyy-MM-dd HH:mm\"".into());
                };
                let ms = jql_date(&d, offset_min).ok_or_else(|| {
                    format!("Date value '{d}' for field 'updated' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.")
                })?;
                jql.updated_from = Some(ms);
            }
            Some(Tok::Word(w)) if w.starts_with("issue.property[") => {
                let inner = w.strip_prefix("issue.property[").expect("checked");
                let (key, path) = inner
                    .split_once("].")
                    .ok_or("expected issue.property[key].path")?;
                if !property_search {
                    return Err(format!(
                        "Field '{w}' does not exist or you do not have permission to view it."
                    ));
                }
                let (Some(Tok::Op("=")), Some(Tok::Str(v))) = (it.next(), it.next()) else {
                    return Err("expected issue.property[key].path = \"value\"".into());
                };
                jql.property = Some((key.to_owned(), path.to_owned(), v));
            }
            Some(Tok::Word(w)) if w == "ORDER" => {
                let rest: Vec<Tok> = it.collect();
                let want = [
                    Tok::Word("BY".into()),
                    Tok::Word("updated".into()),
                    Tok::Word("ASC".into()),
                ];
                let created = [
                    Tok::Word("BY".into()),
                    Tok::Word("created".into()),
                    Tok::Word("DESC".into()),
                ];
                if rest == created {
                    jql.created_desc = true;
                } else if rest != want {
                    return Err(
                        "only ORDER BY updated ASC or created DESC is supported by the fake".into(),
                    );
                }
                break;
            }
            None => break,
            Some(t) => return Err(format!("unexpected {t:?}")),
        }
        clauses += 1;
        match it.peek() {
            Some(Tok::Word(w)) if w == "AND" => {
                it.next();
            }
            Some(Tok::Word(w)) if w == "ORDER" => {}
            None => {}
            Some(t) => return Err(format!("expected AND or ORDER BY, found {t:?}")),
        }
    }
    if clauses == 0 {
        return Err("Unbounded JQL queries are not allowed here. Please add a search restriction to your query.".into());
    }
    Ok(jql)
}

fn search(st: &mut State, rq: &Incoming) -> Outgoing {
    let Some(Value::Object(body)) = rq.json() else {
        return err(400, &["The request body must be JSON."], &[]);
    };
    const KNOWN: [&str; 8] = [
        "jql",
        "fields",
        "maxResults",
        "nextPageToken",
        "properties",
        "expand",
        "fieldsByKeys",
        "reconcileIssues",
    ];
    if let Some(k) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return err(400, &[&format!("Unrecognized field \"{k}\"")], &[]);
    }
    let Some(q) = body.get("jql").and_then(Value::as_str) else {
        return err(400, &["jql is required"], &[]);
    };
    let strings = |k: &str| -> Vec<String> {
        body.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let fields = match strings("fields") {
        f if f.is_empty() => vec!["id".to_owned()],
        f => f,
    };
    let properties = strings("properties");
    if properties.len() > 5 {
        return err(400, &["At most 5 properties can be requested."], &[]);
    }
    if st.fail_searches.0 > 0 {
        st.fail_searches.0 -= 1;
        return Outgoing::text(
            st.fail_searches.1,
            "upstream connect error or disconnect/reset before headers",
        );
    }
    let reconcile: Vec<u64> = body
        .get("reconcileIssues")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let served = st.searches;
    st.searches += 1;
    let jql = match parse_jql_in(q, st.property_search, st.profile_offset_min) {
        Ok(j) => j,
        Err(e) => return err(400, &[&format!("Error in the JQL Query: {e}")], &[]),
    };
    let offset = match body.get("nextPageToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => match st.tokens.get(t) {
            Some((tq, off)) if tq == q => *off,
            _ => {
                return err(
                    400,
                    &["The provided next page token is invalid or expired."],
                    &[],
                )
            }
        },
    };
    let max = body
        .get("maxResults")
        .and_then(Value::as_u64)
        .map_or(50, |m| m as usize)
        .min(st.page_cap)
        .max(1);
    let mut matching: Vec<&Issue> = st
        .issues
        .iter()
        .filter(|i| {
            jql.project
                .as_ref()
                .is_none_or(|p| i.key.starts_with(&format!("{p}-")))
        })
        .filter(|i| i.visible_after <= served || reconcile.contains(&i.id))
        .filter(|i| jql.updated_from.is_none_or(|from| i.updated >= from))
        .filter(|i| {
            jql.property.as_ref().is_none_or(|(key, path, v)| {
                i.properties
                    .get(key)
                    .and_then(|p| p.get(path))
                    .and_then(Value::as_str)
                    == Some(v.as_str())
            })
        })
        .collect();
    if jql.created_desc {
        matching.sort_by_key(|i| std::cmp::Reverse((i.created, i.id)));
    } else {
        matching.sort_by_key(|i| (i.updated, i.id));
    }
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(max)
        .map(|i| st.issue_json(i, &fields, &properties))
        .collect();
    let end = offset + page.len();
    let last = end >= matching.len();
    let mut out = json!({"issues": page, "isLast": last});
    if !last {
        let token = format!("CiEjU3RyaW5nJmJXRnlhMkYx{}", st.tokens.len() + 1);
        st.tokens.insert(token.clone(), (q.to_owned(), end));
        out["nextPageToken"] = json!(token);
    }
    st.search_pages_served += 1;
    if let Some((after, key)) = st.touch_after_search_page.clone() {
        if after == st.search_pages_served {
            st.touch_after_search_page = None;
            let at = st.tick();
            if let Some(idx) = st.issue_idx(&key) {
                st.issues[idx].summary.push_str(" (touched)");
                st.issues[idx].updated = at;
            }
        }
    }
    Outgoing::json(200, &out)
}

/// Check the `fields` of a create or edit; `Err` is JIRA's 400.
fn check_fields(st: &State, fields: &Map<String, Value>, creating: bool) -> Result<(), Outgoing> {
    let mut errors: Vec<(String, String)> = Vec::new();
    for (k, v) in fields {
        if creating && !st.create_screen.contains(&k.as_str()) {
            errors.push((
                k.clone(),
                format!(
                    "Field '{k}' cannot be set. It is not on the appropriate screen, or unknown."
                ),
            ));
            continue;
        }
        match k.as_str() {
            "project" if creating => {
                if v.pointer("/key").and_then(Value::as_str) != Some(PROJECT) {
                    errors.push(("project".into(), "valid project is required".into()));
                }
            }
            "issuetype" if creating => {
                let by_name = v.pointer("/name").and_then(Value::as_str);
                let by_id = v.pointer("/id").and_then(Value::as_str);
                let known = st.issue_types.iter().any(|(id, name, sub)| {
                    !sub && (Some(*name) == by_name || Some(*id) == by_id)
                });
                if !known {
                    errors.push(("issuetype".into(), "Specify a valid issue type".into()));
                }
            }
            "summary" => {
                match v.as_str() {
                    None => errors.push(("summary".into(), "You must specify a summary of the issue.".into())),
                    Some(s) if s.trim().is_empty() => errors.push(("summary".into(), "You must specify a summary of the issue.".into())),
                    Some(s) if s.chars().count() > 255 => errors.push(("summary".into(), "Summary must be less than 255 characters.".into())),
                    Some(s) if s.contains(['\n', '\r']) => errors.push(("summary".into(), "The summary is invalid because it contains newline characters.".into())),
                    Some(_) => {}
                }
            }
            "description" => {
                if !v.is_null() {
                    if let Err(e) = check_adf(v) {
                        errors.push((
                            "description".into(),
                            format!("Operation value must be an Atlassian Document (see the Atlassian Document Format): {e}"),
                        ));
                    } else if adf_chars(v) > 32_767 {
                        errors.push(("description".into(), TOO_LONG.into()));
                    }
                }
            }
            "labels" => match v.as_array() {
                Some(ls) => {
                    for l in ls {
                        match l.as_str() {
                            Some(s) if !s.is_empty() && !s.contains(char::is_whitespace) => {}
                            _ => errors.push(("labels".into(), format!("The label '{}' contains spaces which is invalid.", l.as_str().unwrap_or("?")))),
                        }
                    }
                }
                None => errors.push(("labels".into(), "labels must be an array".into())),
            },
            "assignee" => {
                match v.pointer("/accountId").and_then(Value::as_str) {
                    _ if v.is_null() => {}
                    None => errors.push(("assignee".into(), "Specify an accountId".into())),
                    Some(a) if !ASSIGNABLE.contains(&a) => errors.push((
                        "assignee".into(),
                        format!("User '{a}' cannot be assigned issues."),
                    )),
                    Some(_) => {}
                }
            }
            other => errors.push((
                other.to_owned(),
                format!("Field '{other}' cannot be set. It is not on the appropriate screen, or unknown."),
            )),
        }
    }
    if creating && !fields.contains_key("summary") {
        errors.push((
            "summary".into(),
            "You must specify a summary of the issue.".into(),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        let refs: Vec<(&str, &str)> = errors
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        Err(err(400, &[], &refs))
    }
}

fn create(st: &mut State, rq: &Incoming) -> Outgoing {
    let Some(Value::Object(body)) = rq.json() else {
        return err(400, &["The request body must be JSON."], &[]);
    };
    if let Some(k) = body.keys().find(|k| {
        !matches!(
            k.as_str(),
            "fields" | "properties" | "update" | "historyMetadata"
        )
    }) {
        return err(400, &[&format!("Unrecognized field \"{k}\"")], &[]);
    }
    let fields = match body.get("fields") {
        Some(Value::Object(f)) => f.clone(),
        _ => return err(400, &["fields are required"], &[]),
    };
    if let Err(o) = check_fields(st, &fields, true) {
        return o;
    }
    let mut properties = BTreeMap::new();
    for p in body
        .get("properties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match (p.get("key").and_then(Value::as_str), p.get("value")) {
            (Some(k), Some(v)) => {
                properties.insert(k.to_owned(), v.clone());
            }
            _ => return err(400, &["A property needs a key and a value."], &[]),
        }
    }
    let at = st.tick();
    st.next_id += 1;
    let id = st.next_id;
    let key = format!("{PROJECT}-{}", st.issues.len() + 1);
    let text = |k: &str| {
        fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    st.issues.push(Issue {
        id,
        key: key.clone(),
        summary: text("summary"),
        description: fields.get("description").cloned().unwrap_or(Value::Null),
        status: 0,
        labels: fields
            .get("labels")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        assignee: fields
            .get("assignee")
            .and_then(|a| a.get("accountId"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        created: at,
        updated: at,
        properties,
        comments: Vec::new(),
        resolution: None,
        visible_after: st.searches + st.search_lag,
    });
    if std::mem::take(&mut st.garble_next_create) {
        return Outgoing::text(201, "<html><body>upstream connect error</body></html>");
    }
    Outgoing::json(
        201,
        &json!({"id": id.to_string(), "key": key, "self": format!("{}/rest/api/3/issue/{id}", st.base)}),
    )
}

fn edit(st: &mut State, idx: usize, rq: &Incoming) -> Outgoing {
    let Some(Value::Object(body)) = rq.json() else {
        return err(400, &["The request body is missing."], &[]);
    };
    if let Some(k) = body.keys().find(|k| {
        !matches!(
            k.as_str(),
            "fields" | "update" | "historyMetadata" | "properties"
        )
    }) {
        return err(400, &[&format!("Unrecognized field \"{k}\"")], &[]);
    }
    let fields = match body.get("fields") {
        Some(Value::Object(f)) => f.clone(),
        None => Map::new(),
        _ => return err(400, &["fields must be an object"], &[]),
    };
    if let Err(o) = check_fields(st, &fields, false) {
        return o;
    }
    let before = st.issues[idx].clone();
    let issue = &mut st.issues[idx];
    for (k, v) in &fields {
        match k.as_str() {
            "summary" => issue.summary = v.as_str().unwrap_or("").to_owned(),
            "description" => issue.description = v.clone(),
            "labels" => {
                issue.labels = v
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
            }
            "assignee" => {
                issue.assignee = v
                    .pointer("/accountId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }
            _ => {}
        }
    }
    if let Some(update) = body.get("update").and_then(Value::as_object) {
        for (field, ops) in update {
            if field != "labels" {
                return err(
                    400,
                    &[],
                    &[(field, "The fake supports update operations on labels only.")],
                );
            }
            for op in ops.as_array().into_iter().flatten() {
                if let Some(l) = op.get("add").and_then(Value::as_str) {
                    if l.is_empty() || l.contains(char::is_whitespace) {
                        return err(
                            400,
                            &[],
                            &[(
                                "labels",
                                &format!("The label '{l}' contains spaces which is invalid."),
                            )],
                        );
                    }
                    if !issue.labels.iter().any(|x| x == l) {
                        issue.labels.push(l.to_owned());
                    }
                } else if let Some(l) = op.get("remove").and_then(Value::as_str) {
                    issue.labels.retain(|x| x != l);
                } else {
                    return err(400, &[], &[("labels", "Unsupported update operation")]);
                }
            }
        }
    }
    let changed = {
        let i = &st.issues[idx];
        i.summary != before.summary
            || i.description != before.description
            || i.labels != before.labels
            || i.assignee != before.assignee
    };
    if changed {
        let at = st.tick();
        st.issues[idx].updated = at;
    }
    Outgoing::empty(204)
}

#[test]
fn fake_plumbing_is_right() {
    assert_eq!(base64(b"bot@example.com:x"), "Ym90QGV4YW1wbGUuY29tOng=");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
    assert_eq!(jira_time(CLOCK_START), "2026-01-05T14:30:00.000+0000");
    assert_eq!(jira_time(1_611_013_500_000), "2021-01-18T23:45:00.000+0000");
    assert_eq!(jql_minute_ms("2026-01-05 14:30"), Some(CLOCK_START));
    assert_eq!(jql_minute_ms("2024-03-01 00:00"), Some(1_709_251_200_000));
    assert_eq!(pct_decode("a%20b%2Fc+d"), "a b/c d");
    let ok = json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"x"}]},{"type":"paragraph","content":[]}]});
    assert_eq!(check_adf(&ok), Ok(()));
    let empty_text = json!({"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":""}]}]});
    assert!(check_adf(&empty_text).is_err());
    assert!(
        check_adf(&json!({"type":"doc","content":[]})).is_err(),
        "version is required"
    );
    assert!(parse_jql("ORDER BY updated ASC", true).is_err());
    assert!(parse_jql(
        "project = \"PROJ\" OR updated >= \"2026-01-05 14:30\"",
        true
    )
    .is_err());
    assert!(parse_jql(
        "project = \"PROJ\" AND updated >= \"2026-01-05T14:30\"",
        true
    )
    .is_err());
    let j = parse_jql(
        "project = \"PROJ\" AND issue.property[reposix].id = \"a\\\"b\"",
        true,
    )
    .expect("parses");
    assert_eq!(
        j.property,
        Some(("reposix".into(), "id".into(), "a\"b".into()))
    );
    assert!(parse_jql(
        "project = \"PROJ\" AND issue.property[reposix].id = \"a\"",
        false
    )
    .is_err());
}
