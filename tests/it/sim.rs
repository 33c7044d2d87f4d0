//! The tracker simulator and its adapter.
//!
//! The server is checked on the wire (a raw HTTP/1.1 client over a TCP
//! socket, so status lines, headers and bodies are seen exactly as sent)
//! against the reposix-sim 0.14 facts; the adapter is checked against the
//! server like any third-party tracker client, including hostile bodies,
//! conflicts, a server without comments, and a 429/500 storm.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reposix::event::Status;
use reposix::time;
use reposix::tracker::http::{AllowList, Auth, HttpClient};
use reposix::tracker::sim::SimBackend;
use reposix::tracker::{
    body_marker, Backend, BackendError, BackendSpec, IssuePatch, NewRemoteIssue, Revision,
};
use reposix_sim::{self as sim, SimConfig, SimHandle};
use serde_json::{json, Value};

use crate::support::BIN;

fn seed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crates/reposix-sim/seed.json")
}

fn seed() -> Value {
    let bytes = std::fs::read(seed_path()).expect("read the seed fixture");
    serde_json::from_slice(&bytes).expect("the seed fixture is JSON")
}

/// A sim seeded with the fixture, configured by `tweak`.
fn start(tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig {
        seed_file: Some(seed_path()),
        ..SimConfig::default()
    };
    tweak(&mut config);
    sim::start(config).expect("start the sim")
}

/// A response as it came off the socket.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Assert the status and the error envelope's kind; return the envelope.
    #[track_caller]
    fn error(&self, status: u16, kind: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&self.body)
        );
        let v = self.json();
        assert_eq!(v["error"], kind, "{v}");
        assert!(v["message"].is_string(), "envelope has a message: {v}");
        assert!(v["details"].is_object(), "envelope has details: {v}");
        v
    }
}

/// One HTTP/1.1 exchange on a fresh connection; a body goes as JSON.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    let ct = body.map(|_| "application/json");
    call_typed(addr, method, path, headers, body, ct)
}

/// One HTTP/1.1 exchange with the body's `Content-Type` as given (`None`:
/// no `Content-Type` header at all).
fn call_typed(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    content_type: Option<&str>,
) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to the sim");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send the head");
    if let Some(b) = body {
        s.write_all(b).expect("send the body");
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).expect("the head is UTF-8");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let body = raw[split + 4..].to_vec();
    let reply = Reply {
        status,
        headers,
        body,
    };
    assert!(
        reply.header("Transfer-Encoding").is_none(),
        "the sim never chunks"
    );
    if let Some(len) = reply.header("Content-Length") {
        assert_eq!(len.parse::<usize>().ok(), Some(reply.body.len()));
    }
    reply
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    call(addr, "GET", path, &[("X-Reposix-Agent", "wire")], None)
}

fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], v: &Value) -> Reply {
    let mut all = vec![("X-Reposix-Agent", "wire")];
    all.extend_from_slice(headers);
    call(addr, method, path, &all, Some(v.to_string().as_bytes()))
}

fn is_second_precision_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
        && time::parse_secs(s).is_some()
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

// ------------------------------------------------------------ the server

#[test]
fn sim_serves_the_seed_as_flat_records() {
    let sim = start(|_| {});
    let addr = sim.addr();

    let health = call(addr, "GET", "/healthz", &[], None);
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok"[..]));

    let list = get(addr, "/projects/demo/issues");
    assert_eq!(list.status, 200);
    assert!(list
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("application/json")));
    let list = list.json();
    let records = list.as_array().expect("an array");
    let seeded = seed();
    let seeded = seeded["issues"].as_array().expect("seed issues");
    assert_eq!(records.len(), seeded.len());
    let full: BTreeSet<&str> = [
        "id",
        "title",
        "status",
        "assignee",
        "labels",
        "created_at",
        "updated_at",
        "version",
        "body",
    ]
    .into();
    for (r, s) in records.iter().zip(seeded) {
        assert_eq!(r["id"], s["id"], "ordered by id");
        for field in ["title", "status", "labels", "body"] {
            assert_eq!(r[field], s[field], "issue {} {field}", s["id"]);
        }
        assert_eq!(r["version"], 1);
        assert!(is_second_precision_utc(
            r["created_at"].as_str().expect("created_at")
        ));
        assert!(is_second_precision_utc(
            r["updated_at"].as_str().expect("updated_at")
        ));
        if s["assignee"].is_null() {
            let mut want = full.clone();
            want.remove("assignee");
            assert_eq!(keys(r), want, "assignee omitted when null: {r}");
        } else {
            assert_eq!(keys(r), full);
            assert_eq!(r["assignee"], s["assignee"]);
        }
    }

    let three = get(addr, "/projects/demo/issues/3");
    assert_eq!(three.status, 200);
    let three = three.json();
    assert!(three["body"]
        .as_str()
        .expect("body")
        .contains("\nversion: 999\n"));
    assert_eq!(three["version"], 1, "a body line is not the version");

    let empty = get(addr, "/projects/nobody/issues");
    assert_eq!((empty.status, empty.json()), (200, json!([])));
    let v = get(addr, "/projects/demo/issues/99").error(404, "not_found");
    assert_eq!(v["details"]["id"], 99);
    get(addr, "/projects/nobody/issues/1").error(404, "not_found");
    get(addr, "/projects/demo/issues/abc").error(400, "invalid_body");
    get(addr, "/nowhere").error(404, "not_found");
}

#[test]
fn sim_post_assigns_ids_and_ignores_client_values() {
    let sim = start(|_| {});
    let addr = sim.addr();
    let r = send(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        &json!({
            "id": 99, "version": 7, "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z", "title": "new one",
            "labels": ["x"], "assignee": null, "whatever": true,
        }),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("Location"), Some("/projects/demo/issues/7"));
    let v = r.json();
    assert_eq!(
        (v["id"].clone(), v["version"].clone()),
        (json!(7), json!(1))
    );
    assert_eq!(v["status"], "open");
    assert_eq!(v["body"], "");
    assert!(v.get("assignee").is_none());
    assert_ne!(v["created_at"], "2000-01-01T00:00:00Z");
    assert_eq!(v["created_at"], v["updated_at"]);
    assert_eq!(get(addr, "/projects/demo/issues/7").json(), v);

    // A refused value is 400; a missing field or a wrong JSON type is 422,
    // as reposix-sim's extractor answers.
    for (bad, status) in [
        (json!({"body": "no title"}), 422),
        (json!({"title": ""}), 400),
        (json!({"title": "  "}), 400),
        (json!({"title": 5}), 422),
        (json!({"title": "t", "status": "closed"}), 400),
        (json!({"title": "t", "labels": "bug"}), 422),
        (json!({"title": "t", "assignee": 3}), 422),
        (json!({"title": "t", "body": null}), 422),
        (json!(["not", "an", "object"]), 422),
    ] {
        send(addr, "POST", "/projects/demo/issues", &[], &bad).error(status, "invalid_body");
    }
    let r = call(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        Some(&b"{not json"[..]),
    );
    r.error(400, "invalid_body");

    // POST creates a project lazily.
    let r = send(
        addr,
        "POST",
        "/projects/fresh/issues",
        &[],
        &json!({"title": "first"}),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("Location"), Some("/projects/fresh/issues/1"));
    assert_eq!(
        get(addr, "/projects/fresh/issues").json()[0]["title"],
        "first"
    );
}

#[test]
fn sim_patch_honours_if_match() {
    let sim = start(|_| {});
    let addr = sim.addr();
    let path = "/projects/demo/issues/2";
    let before = get(addr, path).json();
    assert_eq!(before["assignee"], "agent-alpha");

    let r = send(
        addr,
        "PATCH",
        path,
        &[("If-Match", "\"1\"")],
        &json!({"title": "renamed", "assignee": null}),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["version"], 2);
    assert_eq!(v["title"], "renamed");
    assert!(v.get("assignee").is_none(), "null clears: {v}");
    assert_eq!(v["body"], before["body"], "untouched fields stay");
    assert!(
        time::parse_secs(v["updated_at"].as_str().expect("updated_at"))
            >= time::parse_secs(before["updated_at"].as_str().expect("updated_at"))
    );

    let stale = send(
        addr,
        "PATCH",
        path,
        &[("If-Match", "\"1\"")],
        &json!({"title": "x"}),
    );
    assert_eq!(stale.status, 409);
    let v = stale.json();
    assert_eq!(v["error"], "version_mismatch");
    assert_eq!(v["current"], 2);
    assert_eq!(v["sent"], json!("1"), "sent comes back as a string");
    assert_eq!(
        get(addr, path).json()["title"],
        "renamed",
        "nothing applied"
    );

    // Absent If-Match is a wildcard; an unquoted version is accepted too.
    let r = send(addr, "PATCH", path, &[], &json!({"status": "done"}));
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(3)));
    let r = send(
        addr,
        "PATCH",
        path,
        &[("If-Match", "3")],
        &json!({"labels": []}),
    );
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(4)));
    let r = send(
        addr,
        "PATCH",
        path,
        &[("If-Match", "\"4\"")],
        &json!({"assignee": "bob"}),
    );
    assert_eq!(r.json()["assignee"], "bob");

    for (bad, field) in [
        (json!({"version": 9}), "version"),
        (json!({"priority": "high"}), "priority"),
        (json!({"title": 7}), "title"),
        (json!({"status": "closed"}), "status"),
        (json!({"body": 1}), "body"),
        (json!({"labels": [1]}), "labels"),
    ] {
        let v = send(addr, "PATCH", path, &[], &bad).error(400, "invalid_body");
        assert_eq!(v["details"]["field"], field, "{bad}");
    }
    assert_eq!(
        get(addr, path).json()["version"],
        5,
        "rejected patches apply nothing"
    );
    send(
        addr,
        "PATCH",
        "/projects/demo/issues/77",
        &[],
        &json!({"title": "x"}),
    )
    .error(404, "not_found");
}

#[test]
fn sim_since_is_exclusive_and_validated() {
    let sim = start(|_| {});
    let addr = sim.addr();
    let all = get(addr, "/projects/demo/issues").json();
    // The seed is stamped with one fixed time.
    let t = all[0]["updated_at"]
        .as_str()
        .expect("updated_at")
        .to_owned();
    assert!(all
        .as_array()
        .expect("array")
        .iter()
        .all(|i| i["updated_at"] == t.as_str()));
    let secs = time::parse_secs(&t).expect("RFC 3339");

    let r = get(addr, &format!("/projects/demo/issues?since={t}"));
    assert_eq!(r.json(), json!([]), "since is exclusive");
    let earlier = time::format_secs(secs - 1);
    let r = get(addr, &format!("/projects/demo/issues?since={earlier}"));
    assert_eq!(r.json().as_array().map(Vec::len), Some(6));
    // The same instant with an offset, percent-encoded.
    let local = format!("{}%2B01%3A00", &time::format_secs(secs + 3600 - 1)[..19]);
    let r = get(addr, &format!("/projects/demo/issues?since={local}"));
    assert_eq!(r.json().as_array().map(Vec::len), Some(6));

    for bad in ["yesterday", "2026-13-01T00:00:00Z", "%ff"] {
        let v = get(addr, &format!("/projects/demo/issues?since={bad}")).error(400, "invalid_body");
        assert_eq!(
            v["details"]["field"]
                .as_str()
                .map(|f| f == "since" || f == "query"),
            Some(true)
        );
    }

    let patched = send(
        addr,
        "PATCH",
        "/projects/demo/issues/4",
        &[],
        &json!({"title": "moved"}),
    );
    let u = patched.json()["updated_at"]
        .as_str()
        .expect("updated_at")
        .to_owned();
    let before_u = time::format_secs(time::parse_secs(&u).expect("RFC 3339") - 1);
    let r = get(addr, &format!("/projects/demo/issues?since={before_u}")).json();
    assert!(r
        .as_array()
        .expect("array")
        .iter()
        .any(|i| i["id"] == 4 && i["title"] == "moved"));
}

#[test]
fn sim_delete_and_transitions() {
    let sim = start(|_| {});
    let addr = sim.addr();
    let t = get(addr, "/projects/demo/issues/2/transitions");
    assert_eq!(t.status, 200);
    assert_eq!(
        t.json()["available"],
        json!(["open", "in_review", "done", "wont_fix"]),
        "every status but the current one"
    );
    get(addr, "/projects/demo/issues/42/transitions").error(404, "not_found");

    let r = call(addr, "DELETE", "/projects/demo/issues/5", &[], None);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    get(addr, "/projects/demo/issues/5").error(404, "not_found");
    call(addr, "DELETE", "/projects/demo/issues/5", &[], None).error(404, "not_found");

    // Ids are max + 1, like reposix-sim: the newest id comes back after a
    // delete, so clients must not assume ids are never reused.
    call(addr, "DELETE", "/projects/demo/issues/6", &[], None);
    let r = send(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        &json!({"title": "again"}),
    );
    assert_eq!(r.json()["id"], 5);
}

#[test]
fn sim_rejects_bodies_over_the_limit() {
    let sim = start(|_| {});
    let addr = sim.addr();
    let limit = sim::DEFAULT_BODY_LIMIT;
    let frame = json!({"title": "big", "body": ""}).to_string().len();
    let fits = json!({"title": "big", "body": "x".repeat(limit - frame)}).to_string();
    assert_eq!(fits.len(), limit);
    let r = call(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        Some(fits.as_bytes()),
    );
    assert_eq!(r.status, 201, "exactly the limit is accepted");
    let over = json!({"title": "big", "body": "x".repeat(limit - frame + 1)}).to_string();
    let v = call(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        Some(over.as_bytes()),
    )
    .error(413, "body_too_large");
    assert_eq!(v["details"]["limit"], limit);
    assert_eq!(
        get(addr, "/projects/demo/issues")
            .json()
            .as_array()
            .map(Vec::len),
        Some(7),
        "the refused body created nothing"
    );
}

#[test]
fn sim_rate_limits_per_agent_with_retry_after() {
    let sim = start(|c| c.rate_limit = 3);
    let addr = sim.addr();
    let as_agent = |agent: &str| {
        call(
            addr,
            "GET",
            "/projects/demo/issues/1",
            &[("X-Reposix-Agent", agent)],
            None,
        )
    };
    for _ in 0..3 {
        assert_eq!(as_agent("alice").status, 200);
    }
    let r = as_agent("alice");
    let v = r.error(429, "rate_limited");
    let wait: u64 = r
        .header("Retry-After")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!(wait >= 1, "HTTP's unit is the second");
    assert_eq!(v["details"]["agent"], "alice");
    assert_eq!(as_agent("bob").status, 200, "buckets are per agent");
}

#[test]
fn sim_injects_every_nth_failure() {
    let sim = start(|c| c.fail_every_n = 3);
    let addr = sim.addr();
    let statuses: Vec<u16> = (0..6)
        .map(|_| get(addr, "/projects/demo/issues/1").status)
        .collect();
    assert_eq!(statuses, [200, 200, 500, 200, 200, 500]);
    let r = get(addr, "/projects/demo/issues/1");
    assert_eq!(r.status, 200);
    get(addr, "/projects/demo/issues/1");
    let v = get(addr, "/projects/demo/issues/1").error(500, "internal");
    assert_eq!(v["details"]["injected"], true);
    // An injected failure has no side effect.
    let s = send(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        &json!({"title": "a"}),
    );
    let t = send(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        &json!({"title": "b"}),
    );
    let u = send(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        &json!({"title": "c"}),
    );
    assert_eq!([s.status, t.status, u.status], [201, 201, 500]);
    assert_eq!(t.json()["id"], 8);
}

#[test]
fn sim_comments_extension() {
    let sim = start(|_| {});
    let addr = sim.addr();
    assert_eq!(get(addr, "/projects/demo/issues/1").json()["version"], 1);
    let r = call(
        addr,
        "POST",
        "/projects/demo/issues/1/comments",
        &[("X-Reposix-Agent", "alice")],
        Some(&br#"{"body":"first <b>look</b>","author":"mallory","id":50}"#[..]),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("Location"), Some("/projects/demo/comments/1"));
    let c = r.json();
    assert_eq!(
        keys(&c),
        ["author", "body", "created_at", "id", "updated_at"].into()
    );
    assert_eq!(c["id"], 1);
    assert_eq!(
        c["author"], "alice",
        "the author is the agent, not the body"
    );
    assert_eq!(c["body"], "first <b>look</b>");
    assert!(is_second_precision_utc(
        c["created_at"].as_str().expect("created_at")
    ));

    let after = get(addr, "/projects/demo/issues/1").json();
    assert_eq!(
        after["updated_at"], c["created_at"],
        "a comment bumps updated_at"
    );

    let list = get(addr, "/projects/demo/issues/1/comments").json();
    assert_eq!(list, json!([c]));
    assert_eq!(
        get(addr, "/projects/demo/issues/2/comments").json(),
        json!([])
    );

    let r = send(
        addr,
        "PATCH",
        "/projects/demo/comments/1",
        &[],
        &json!({"body": "edited"}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"], "edited");
    assert_eq!(r.json()["author"], "alice");
    send(
        addr,
        "PATCH",
        "/projects/demo/comments/1",
        &[],
        &json!({"body": "x", "author": "m"}),
    )
    .error(400, "invalid_body");
    send(
        addr,
        "PATCH",
        "/projects/demo/comments/9",
        &[],
        &json!({"body": "x"}),
    )
    .error(404, "not_found");
    send(
        addr,
        "POST",
        "/projects/demo/issues/99/comments",
        &[],
        &json!({"body": "x"}),
    )
    .error(404, "not_found");
    send(
        addr,
        "POST",
        "/projects/demo/issues/1/comments",
        &[],
        &json!({}),
    )
    .error(422, "invalid_body");

    let all = get(addr, "/projects/demo/comments").json();
    assert_eq!(all[0]["issue_id"], 1);
    assert_eq!(all[0]["body"], "edited");
}

#[test]
fn sim_without_comments_answers_404_there() {
    let sim = start(|c| c.accept_comments = false);
    let addr = sim.addr();
    get(addr, "/projects/demo/issues/1/comments").error(404, "not_found");
    send(
        addr,
        "POST",
        "/projects/demo/issues/1/comments",
        &[],
        &json!({"body": "x"}),
    )
    .error(404, "not_found");
    send(
        addr,
        "PATCH",
        "/projects/demo/comments/1",
        &[],
        &json!({"body": "x"}),
    )
    .error(404, "not_found");
    get(addr, "/projects/demo/comments").error(404, "not_found");
    assert_eq!(get(addr, "/projects/demo/issues/1").status, 200);
}

#[test]
fn sim_state_file_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("sim-state.json");
    {
        let sim = start(|c| c.state_file = Some(state.clone()));
        let r = send(
            sim.addr(),
            "POST",
            "/projects/demo/issues",
            &[],
            &json!({"title": "kept"}),
        );
        assert_eq!(r.status, 201);
    }
    let sim = sim::start(SimConfig {
        state_file: Some(state),
        ..SimConfig::default()
    })
    .expect("restart from the state file");
    let list = get(sim.addr(), "/projects/demo/issues").json();
    assert_eq!(list.as_array().map(Vec::len), Some(7));
    assert_eq!(list[6]["title"], "kept");
}

#[test]
fn sim_cli_prints_its_url_and_refuses_other_interfaces() {
    let mut child = Command::new(BIN)
        .args(["sim", "--bind", "127.0.0.1:0", "--json", "--seed-file"])
        .arg(seed_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reposix sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the first line");
    let env: Value = serde_json::from_str(&line).expect("a JSON envelope");
    let url = env["data"]["base_url"]
        .as_str()
        .expect("base_url")
        .to_owned();
    let addr: SocketAddr = url
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .expect("http://ip:port");
    let listed = get(addr, "/projects/demo/issues").json();
    child.kill().expect("stop the sim we started");
    let _ = child.wait();
    assert_eq!(listed.as_array().map(Vec::len), Some(6));

    let out = Command::new(BIN)
        .args(["sim", "--bind", "0.0.0.0:0"])
        .output()
        .expect("run reposix sim");
    assert_eq!(out.status.code(), Some(7));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}

// ------------------------------------------- parity with reposix-sim 0.14
//
// Issue 8, deliverable 6: each test below pins one wire habit of
// reposix-sim 0.14 where this sim used to answer differently, so a client
// tested here would have been surprised there. Each failed before the sim
// matched it.

/// Byte offsets of `"key":` in a raw JSON object, to check key order.
fn key_offsets(raw: &[u8], keys: &[&str]) -> Vec<usize> {
    let text = String::from_utf8(raw.to_vec()).expect("UTF-8 JSON");
    keys.iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("no key {k} in {text}"))
        })
        .collect()
}

const RECORD_ORDER: [&str; 9] = [
    "id",
    "title",
    "status",
    "assignee",
    "labels",
    "created_at",
    "updated_at",
    "version",
    "body",
];

#[test]
fn sim_parity_seeded_issues_are_stamped_2026_04_13_version_1() {
    // A seed that also carries a timestamp and a version: reposix-sim
    // ignores both and stamps every seeded row alike.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("seed.json");
    let mut s = seed();
    s["issues"][0]["created_at"] = json!("2020-01-01T00:00:00Z");
    s["issues"][0]["updated_at"] = json!("2020-01-02T00:00:00Z");
    s["issues"][0]["version"] = json!(9);
    std::fs::write(&path, s.to_string()).expect("write the seed");
    let sim = sim::start(SimConfig {
        seed_file: Some(path),
        ..SimConfig::default()
    })
    .expect("start the sim");
    assert_eq!(time::format_secs(sim::SEED_TIME), "2026-04-13T00:00:00Z");
    let list = get(sim.addr(), "/projects/demo/issues").json();
    for r in list.as_array().expect("an array") {
        assert_eq!(r["created_at"], "2026-04-13T00:00:00Z", "{r}");
        assert_eq!(r["updated_at"], "2026-04-13T00:00:00Z", "{r}");
        assert_eq!(r["version"], 1, "{r}");
    }
    // Writes are stamped with the present, after the seed time.
    let w = send(
        sim.addr(),
        "PATCH",
        "/projects/demo/issues/1",
        &[],
        &json!({"title": "now"}),
    )
    .json();
    let stamped = time::parse_secs(w["updated_at"].as_str().expect("updated_at"));
    assert!(stamped > Some(sim::SEED_TIME), "{w}");
    assert_eq!(w["created_at"], "2026-04-13T00:00:00Z");
}

#[test]
fn sim_parity_transitions_name_the_current_state_and_the_rest() {
    let sim = start(|_| {});
    let r = get(sim.addr(), "/projects/demo/issues/3/transitions");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({
            "current_state": "in_review",
            "available": ["open", "in_progress", "done", "wont_fix"],
        })
    );
    let at = key_offsets(&r.body, &["current_state", "available"]);
    assert!(at[0] < at[1], "reposix-sim's key order");
}

#[test]
fn sim_parity_if_match_is_the_version_and_nothing_else() {
    let sim = start(|_| {});
    let addr = sim.addr();
    let path = "/projects/demo/issues/1";
    // `*` and weak tags are not versions: reposix-sim answers 409.
    for tag in ["*", "W/\"1\"", "\"1\", \"2\""] {
        let r = send(
            addr,
            "PATCH",
            path,
            &[("If-Match", tag)],
            &json!({"title": "x"}),
        );
        let v = r.error(409, "version_mismatch");
        assert_eq!(v["current"], 1, "{tag}: {v}");
        assert!(v["sent"].is_string(), "{tag}: sent is a string: {v}");
    }
    assert_eq!(
        send(addr, "PATCH", path, &[("If-Match", "*")], &json!({})).json()["sent"],
        "*"
    );
    assert_eq!(get(addr, path).json()["version"], 1, "nothing applied");
    // The bare number is the version, quoted or not.
    let r = send(
        addr,
        "PATCH",
        path,
        &[("If-Match", "1")],
        &json!({"title": "y"}),
    );
    assert_eq!((r.status, r.json()["version"].clone()), (200, json!(2)));
    // DELETE does not read If-Match at all.
    let r = call(
        addr,
        "DELETE",
        "/projects/demo/issues/2",
        &[("If-Match", "\"77\"")],
        None,
    );
    assert_eq!(r.status, 204);
    get(addr, "/projects/demo/issues/2").error(404, "not_found");
}

#[test]
fn sim_parity_429_body_carries_retry_after_secs() {
    let sim = start(|c| c.rate_limit = 1);
    let addr = sim.addr();
    let agent = [("X-Reposix-Agent", "hasty")];
    assert_eq!(
        call(addr, "GET", "/projects/demo/issues/1", &agent, None).status,
        200
    );
    let r = call(addr, "GET", "/projects/demo/issues/1", &agent, None);
    let v = r.error(429, "rate_limited");
    let header: u64 = r
        .header("Retry-After")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After in seconds");
    assert_eq!(v["retry_after_secs"], json!(header), "{v}");
    assert!(header >= 1);
    // reposix-sim's limiter guards every route, the health check too.
    call(addr, "GET", "/healthz", &agent, None).error(429, "rate_limited");
}

#[test]
fn sim_parity_writes_need_a_json_content_type() {
    let sim = start(|_| {});
    let addr = sim.addr();
    let body = json!({"title": "typed"}).to_string();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let r = call_typed(
            addr,
            "POST",
            "/projects/demo/issues",
            &[],
            Some(body.as_bytes()),
            ct,
        );
        r.error(415, "unsupported_media_type");
        let r = call_typed(
            addr,
            "POST",
            "/projects/demo/issues/1/comments",
            &[],
            Some(br#"{"body":"c"}"#),
            ct,
        );
        r.error(415, "unsupported_media_type");
    }
    assert_eq!(
        get(addr, "/projects/demo/issues")
            .json()
            .as_array()
            .map(Vec::len),
        Some(6),
        "refused creates created nothing"
    );
    for ct in [
        "application/json; charset=utf-8",
        "application/vnd.api+json",
    ] {
        let r = call_typed(
            addr,
            "POST",
            "/projects/demo/issues",
            &[],
            Some(body.as_bytes()),
            Some(ct),
        );
        assert_eq!(r.status, 201, "{ct}");
    }
    let path = "/projects/demo/issues/4";
    call_typed(
        addr,
        "PATCH",
        path,
        &[],
        Some(br#"{"title":"plain"}"#),
        Some("text/plain"),
    )
    .error(415, "unsupported_media_type");
    assert_eq!(get(addr, path).json()["version"], 1);
    // reposix-sim's unkind habit: a PATCH with no Content-Type at all is
    // read as an empty patch. The body is dropped, the version still moves.
    let r = call_typed(addr, "PATCH", path, &[], Some(br#"{"title":"lost"}"#), None);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        v["title"], "flaky integration test on CI",
        "the body was ignored"
    );
    assert_eq!(v["version"], 2, "but the version moved");
}

#[test]
fn sim_parity_records_keep_reposix_sims_field_order() {
    let sim = start(|_| {});
    let addr = sim.addr();
    let one = get(addr, "/projects/demo/issues/2");
    let at = key_offsets(&one.body, &RECORD_ORDER);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
    let created = send(
        addr,
        "POST",
        "/projects/demo/issues",
        &[],
        &json!({"title": "ordered", "assignee": "amy"}),
    );
    let at = key_offsets(&created.body, &RECORD_ORDER);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
    let list = get(addr, "/projects/demo/issues");
    let text = String::from_utf8(list.body.clone()).expect("UTF-8");
    assert!(text.starts_with("[{\"id\":1,\"title\":"), "{text}");
}

#[test]
fn sim_parity_oversized_bodies_are_refused_first_as_body_too_large() {
    let sim = start(|c| c.rate_limit = 1);
    let addr = sim.addr();
    let agent = [("X-Reposix-Agent", "big")];
    let over = json!({"title": "big", "body": "x".repeat(sim::DEFAULT_BODY_LIMIT)}).to_string();
    let r = call(
        addr,
        "POST",
        "/projects/demo/issues",
        &agent,
        Some(over.as_bytes()),
    );
    let v = r.error(413, "body_too_large");
    assert_eq!(v["limit"], sim::DEFAULT_BODY_LIMIT, "{v}");
    // Refused before the rate limiter: the agent's one token is still there.
    let r = call(addr, "GET", "/projects/demo/issues/1", &agent, None);
    assert_eq!(r.status, 200);
}

#[test]
fn sim_parity_bad_ids_are_400_and_wrong_methods_405() {
    let sim = start(|_| {});
    let addr = sim.addr();
    get(addr, "/projects/demo/issues/abc").error(400, "invalid_body");
    get(addr, "/projects/demo/issues/1x/transitions").error(400, "invalid_body");
    get(addr, "/projects/demo/issues/0").error(404, "not_found");
    for (method, path, allow) in [
        ("PUT", "/projects/demo/issues/1", "GET,PATCH,DELETE"),
        ("DELETE", "/projects/demo/issues", "GET,POST"),
        ("POST", "/projects/demo/issues/1/transitions", "GET"),
    ] {
        let r = call(addr, method, path, &[], Some(b"{}"));
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("Allow"), Some(allow), "{method} {path}");
    }
    assert_eq!(get(addr, "/projects/demo/issues/1").json()["version"], 1);
}

#[test]
fn sim_comment_writes_bump_the_issue_version_and_updated_at() {
    // Issue 8, case 5: a comment posted in the same second as the issue's
    // last-seen revision changed neither its version nor (second-granular)
    // its updated_at, so an importer comparing either never saw it. As
    // GitHub and JIRA bump `updated` on a comment, every comment write now
    // moves the issue on.
    let sim = start(|_| {});
    let addr = sim.addr();
    let path = "/projects/demo/issues/1";
    let before = get(addr, path).json();
    assert_eq!(before["version"], 1);

    let c = send(
        addr,
        "POST",
        &format!("{path}/comments"),
        &[],
        &json!({"body": "a"}),
    )
    .json();
    let after = get(addr, path).json();
    assert_eq!(after["version"], 2, "adding a comment");
    assert_eq!(after["updated_at"], c["updated_at"]);
    let since = before["updated_at"].as_str().expect("updated_at");
    let listed = get(addr, &format!("/projects/demo/issues?since={since}")).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], 1);

    let cpath = format!("/projects/demo/comments/{}", c["id"]);
    assert_eq!(
        send(addr, "PATCH", &cpath, &[], &json!({"body": "b"})).status,
        200
    );
    assert_eq!(get(addr, path).json()["version"], 3, "editing a comment");
    // A writer holding the version from before the comment is stale now,
    // as it would be after any concurrent change.
    send(
        addr,
        "PATCH",
        path,
        &[("If-Match", "\"2\"")],
        &json!({"title": "x"}),
    )
    .error(409, "version_mismatch");

    let r = call(addr, "DELETE", &cpath, &[], None);
    assert_eq!(r.status, 204);
    assert_eq!(get(addr, path).json()["version"], 4, "deleting a comment");
    assert_eq!(get(addr, &format!("{path}/comments")).json(), json!([]));
    call(addr, "DELETE", &cpath, &[], None).error(404, "not_found");
    assert_eq!(get(addr, path).json()["version"], 4);
}

/// `reposix sim ARGS --bind 127.0.0.1:0 --json`: the child and its address.
fn cli_sim(args: &[&str]) -> (std::process::Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["sim", "--bind", "127.0.0.1:0", "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn reposix sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the first line");
    let env: Value = serde_json::from_str(&line).expect("a JSON envelope");
    let addr = env["data"]["base_url"]
        .as_str()
        .and_then(|u| u.strip_prefix("http://"))
        .and_then(|a| a.parse().ok())
        .expect("http://ip:port");
    (child, addr)
}

#[test]
fn sim_parity_cli_serves_the_demo_seed_unless_told_not_to() {
    // reposix-sim starts with its built-in `demo` project.
    let (mut child, addr) = cli_sim(&[]);
    let listed = get(addr, "/projects/demo/issues").json();
    child.kill().expect("stop the sim we started");
    let _ = child.wait();
    assert_eq!(listed.as_array().map(Vec::len), Some(6), "{listed}");
    assert_eq!(listed[0]["created_at"], "2026-04-13T00:00:00Z");

    let (mut child, addr) = cli_sim(&["--no-seed"]);
    let listed = get(addr, "/projects/demo/issues").json();
    child.kill().expect("stop the sim we started");
    let _ = child.wait();
    assert_eq!(listed, json!([]));
}

// ------------------------------------------------------------ the adapter

/// An adapter for `slug` on `sim`, with the loopback allowlist (whatever
/// the environment says).
fn adapter(sim: &SimHandle, slug: &str, agent: &str) -> SimBackend {
    let spec = BackendSpec::parse(&format!("sim::{}", sim.project_url(slug))).expect("spec");
    let allow = AllowList::parse("http://127.0.0.1,http://localhost,http://[::1]")
        .expect("the loopback allowlist parses");
    let http = HttpClient::with_allowlist(Auth::None, agent, allow).expect("client");
    SimBackend::with_client(&spec, http).expect("adapter")
}

const HOSTILE: [&str; 8] = [
    "<script>alert('x')</script>",
    "---\ntitle: fake\nversion: 999\nstatus: done\n---\nthe real text\n",
    "version: 999",
    "ends like a marker\n\n<!-- reposix:abc -->",
    "",
    "trailing blank lines\n\n\n",
    "crlf\r\nand unicode: héllo 🦀 \u{0}\u{202e}",
    "<!-- reposix:0000 -->\n\nmarker-looking text first",
];

fn new_issue(body: &str, marker: &str) -> NewRemoteIssue {
    NewRemoteIssue {
        title: "hostile".into(),
        body: body.into(),
        status: Status::InReview,
        labels: vec!["b".into(), "a".into()],
        assignees: vec!["zed".into(), "amy".into()],
        marker: marker.into(),
    }
}

#[test]
fn adapter_reads_the_hostile_seed_byte_for_byte() {
    let sim = start(|_| {});
    let be = adapter(&sim, "demo", "tester");
    let (issues, cursor) = be.list_changed(None).expect("list");
    let seeded = seed();
    let seeded = seeded["issues"].as_array().expect("seed issues");
    assert_eq!(issues.len(), seeded.len());
    for (i, s) in issues.iter().zip(seeded) {
        assert_eq!(i.remote_id, s["id"].to_string());
        assert_eq!(i.body, s["body"].as_str().expect("body"), "byte for byte");
        assert_eq!(i.title, s["title"].as_str().expect("title"));
        assert_eq!(i.status.as_str(), s["status"].as_str().expect("status"));
        assert_eq!(
            i.assignees,
            s["assignee"]
                .as_str()
                .map(str::to_owned)
                .into_iter()
                .collect::<Vec<_>>()
        );
        assert_eq!(
            i.revision,
            Revision {
                order: 1,
                token: "1".into()
            }
        );
        assert_eq!(i.marker, None);
    }
    assert_eq!(cursor.as_deref(), Some(issues[0].updated_at.as_str()));
    assert_eq!(be.get("3").expect("get"), Some(issues[2].clone()));
    assert_eq!(be.get("42").expect("get"), None);
    assert!(matches!(be.get("3/../4"), Err(BackendError::Spec(_))));
}

#[test]
fn adapter_round_trips_hostile_bodies_through_create_and_update() {
    let sim = start(|_| {});
    let be = adapter(&sim, "demo", "tester");
    for (n, body) in HOSTILE.iter().enumerate() {
        let marker = format!("0f3a{n:04x}");
        let created = be.create(&new_issue(body, &marker)).expect("create");
        assert_eq!(
            created.body,
            body.replace("\r\n", "\n"),
            "create returns the body as given (CRLF read back as LF)"
        );
        assert_eq!(created.marker.as_deref(), Some(marker.as_str()));
        assert_eq!(created.labels, ["a", "b"]);
        assert_eq!(created.assignees, ["amy"], "the first sorted assignee");
        assert_eq!(created.status, Status::InReview);
        let raw = get(
            sim.addr(),
            &format!("/projects/demo/issues/{}", created.remote_id),
        )
        .json();
        assert_eq!(
            raw["body"].as_str().expect("body"),
            format!("{body}{}", body_marker(&marker)),
            "the marker sits at the end on the tracker"
        );
        let read = be.get(&created.remote_id).expect("get").expect("exists");
        assert_eq!(read, created);

        // A body edit keeps the marker, and the new body round-trips too.
        let other = HOSTILE[(n + 1) % HOSTILE.len()];
        let patch = IssuePatch {
            body: Some(other.into()),
            ..IssuePatch::default()
        };
        let updated = be
            .update(&created.remote_id, &patch, &created.revision)
            .expect("update");
        // CRLF reads back as LF (issue 9: every adapter normalises on import).
        assert_eq!(updated.body, other.replace("\r\n", "\n"));
        assert_eq!(updated.marker.as_deref(), Some(marker.as_str()));
        assert_eq!(updated.revision.order, 2);
        assert_eq!(be.get(&created.remote_id).expect("get"), Some(updated));
    }
}

#[test]
fn adapter_update_conflicts_on_a_stale_revision() {
    let sim = start(|_| {});
    let be = adapter(&sim, "demo", "tester");
    let v1 = be.get("2").expect("get").expect("exists");
    let v2 = be
        .update(
            "2",
            &IssuePatch {
                title: Some("renamed".into()),
                status: Some(Status::Done),
                labels: Some(vec!["z".into(), "a".into()]),
                assignees: Some(vec![]),
                ..IssuePatch::default()
            },
            &v1.revision,
        )
        .expect("update at the current revision");
    assert_eq!(v2.revision.order, 2);
    assert_eq!(v2.title, "renamed");
    assert_eq!(v2.status, Status::Done);
    assert_eq!(v2.labels, ["a", "z"]);
    assert!(v2.assignees.is_empty());
    assert_eq!(v2.body, v1.body);

    let title = IssuePatch {
        title: Some("late".into()),
        ..IssuePatch::default()
    };
    let body = IssuePatch {
        body: Some("late".into()),
        ..IssuePatch::default()
    };
    for patch in [&title, &body, &IssuePatch::default()] {
        match be.update("2", patch, &v1.revision) {
            Err(BackendError::Conflict { .. }) => {}
            other => panic!("stale update {patch:?}: expected a conflict, got {other:?}"),
        }
    }
    // Someone else writes; our fresh revision goes stale.
    let r = send(
        sim.addr(),
        "PATCH",
        "/projects/demo/issues/2",
        &[],
        &json!({"title": "theirs"}),
    );
    assert_eq!(r.status, 200);
    assert!(matches!(
        be.update("2", &title, &v2.revision),
        Err(BackendError::Conflict { .. })
    ));
    let v3 = be.get("2").expect("get").expect("exists");
    assert_eq!(v3.title, "theirs");
    assert_eq!(
        be.update("2", &IssuePatch::default(), &v3.revision)
            .expect("an empty patch reports the state"),
        v3
    );
    assert!(matches!(
        be.update("99", &title, &v3.revision),
        Err(BackendError::NotFound { .. })
    ));
}

#[test]
fn adapter_list_changed_sees_writes_in_the_cursor_second() {
    let sim = start(|_| {});
    let be = adapter(&sim, "demo", "tester");
    let (all, cursor) = be.list_changed(None).expect("list");
    assert_eq!(all.len(), 6);
    let cursor = cursor.expect("a cursor");
    // A write after the listing, quite possibly within the same second as
    // the cursor: an exclusive `since=cursor` would miss it.
    let r = send(
        sim.addr(),
        "PATCH",
        "/projects/demo/issues/1",
        &[],
        &json!({"title": "late"}),
    );
    assert_eq!(r.status, 200);
    let (changed, next) = be.list_changed(Some(&cursor)).expect("list since");
    let one = changed
        .iter()
        .find(|i| i.remote_id == "1")
        .expect("the write is seen");
    assert_eq!(one.title, "late");
    assert_eq!(one.revision.order, 2);
    let next = next.expect("a cursor");
    assert!(
        next >= cursor && next.as_str() >= one.updated_at.as_str(),
        "{next} {cursor}"
    );
    // Nothing new: the cursor stays, the same-second records come again.
    let (again, same) = be.list_changed(Some(&next)).expect("list again");
    assert_eq!(same.as_deref(), Some(next.as_str()));
    assert!(again.iter().any(|i| i.remote_id == "1"));
    assert!(matches!(
        be.list_changed(Some("last tuesday")),
        Err(BackendError::Spec(_))
    ));
}

#[test]
fn adapter_comments_round_trip_with_markers() {
    let sim = start(|_| {});
    let be = adapter(&sim, "demo", "carol");
    assert!(be.capabilities().comments);
    assert!(be.comments("2").expect("comments").is_empty());
    let text = "<script>x</script>\nversion: 999\n---\nfoo: bar\n";
    let c = be.add_comment("2", text, "c0ffee").expect("add");
    assert_eq!(c.body, text);
    assert_eq!(c.marker.as_deref(), Some("c0ffee"));
    assert_eq!(c.author, "carol");
    assert_eq!(be.comments("2").expect("comments"), vec![c.clone()]);

    let edited = be
        .edit_comment("2", &c.remote_id, "edited <b>")
        .expect("edit");
    assert_eq!(edited.body, "edited <b>");
    assert_eq!(edited.marker.as_deref(), Some("c0ffee"), "the marker stays");
    let raw = get(sim.addr(), "/projects/demo/issues/2/comments").json();
    assert_eq!(
        raw[0]["body"],
        format!("edited <b>{}", body_marker("c0ffee"))
    );

    assert!(matches!(
        be.comments("99"),
        Err(BackendError::NotFound { .. })
    ));
    assert!(matches!(
        be.edit_comment("2", "77", "x"),
        Err(BackendError::NotFound { .. })
    ));
    assert!(matches!(
        be.add_comment("99", "x", "aa"),
        Err(BackendError::NotFound { .. })
    ));
}

#[test]
fn adapter_find_by_marker_after_an_interrupted_create() {
    let sim = start(|_| {});
    let be = adapter(&sim, "demo", "tester");
    let (_, cursor) = be.list_changed(None).expect("list");
    // The create reached the tracker but its answer was lost.
    let body = format!("half done{}", body_marker("beef-01"));
    let r = send(
        sim.addr(),
        "POST",
        "/projects/demo/issues",
        &[],
        &json!({"title": "orphan", "body": body}),
    );
    assert_eq!(r.status, 201);
    let found = be
        .find_by_marker("beef-01", cursor.as_deref())
        .expect("search")
        .expect("found");
    assert_eq!(found.remote_id, "7");
    assert_eq!(found.body, "half done");
    assert_eq!(
        be.find_by_marker("beef-01", None).expect("search"),
        Some(found)
    );
    assert_eq!(be.find_by_marker("beef-02", None).expect("search"), None);
}

#[test]
fn adapter_without_comments_capability() {
    let sim = start(|c| c.accept_comments = false);
    let be = adapter(&sim, "demo", "tester");
    assert!(!be.capabilities().comments);
    let sent = be.http_stats().requests;
    assert!(be.comments("1").expect("comments").is_empty());
    assert!(be.comments("2").expect("comments").is_empty());
    assert_eq!(be.http_stats().requests, sent, "detected once, then cached");
    match be.add_comment("1", "x", "aa") {
        Err(BackendError::Http {
            status: 404,
            message,
            ..
        }) => {
            assert!(message.contains("no comments"), "{message}")
        }
        other => panic!("expected a 404 error, got {other:?}"),
    }
    let created = be.create(&new_issue("still works", "ab")).expect("create");
    assert_eq!(created.body, "still works");
}

#[test]
fn adapter_completes_under_a_429_storm_and_injected_500s() {
    let sim = start(|c| {
        c.rate_limit = 5;
        c.fail_every_n = 3;
    });
    let be = adapter(&sim, "demo", "stormy");
    let started = Instant::now();
    let mut ops = 0;
    for n in 0..10 {
        // A POST answered 500 is not resent by the client (it may have
        // been applied); like the projection, look for the marker first.
        let marker = format!("{n:02x}");
        let created = loop {
            match be.create(&new_issue(&format!("storm {n}\nversion: 999"), &marker)) {
                Ok(c) => break c,
                Err(BackendError::Http { status: 500, .. }) => {
                    if let Some(found) = be.find_by_marker(&marker, None).expect("search") {
                        break found;
                    }
                }
                Err(e) => panic!("create: {e}"),
            }
        };
        let patch = IssuePatch {
            title: Some(format!("storm {n}")),
            ..IssuePatch::default()
        };
        let updated = be
            .update(&created.remote_id, &patch, &created.revision)
            .expect("update");
        let read = be.get(&created.remote_id).expect("get").expect("exists");
        assert_eq!(read, updated);
        assert_eq!(read.body, format!("storm {n}\nversion: 999"));
        ops += 3;
    }
    let elapsed = started.elapsed();
    let stats = be.http_stats();
    assert_eq!(ops, 30);
    assert!(
        stats.retries >= 10,
        "every third request failed and 429s came: {stats:?}"
    );
    assert!(stats.requests >= 30 + stats.retries, "{stats:?}");
    eprintln!("30 operations under 429s and 500s: {elapsed:?}, {stats:?}");
    let (all, _) = be.list_changed(None).expect("list");
    assert_eq!(all.len(), 16, "no create was duplicated by a retry");
}

#[test]
fn adapter_sees_a_new_revision_when_a_comment_lands_in_the_same_second() {
    // Issue 8, case 5 (sim side): the comment bumps the version, so the
    // issue comes back from `list_changed` with a revision the importer has
    // not seen, however quickly it followed the last one.
    let sim = start(|_| {});
    let be = adapter(&sim, "demo", "tester");
    let seen = be.get("1").expect("get").expect("issue 1");
    let (_, cursor) = be.list_changed(None).expect("list");
    let cursor = cursor.expect("a cursor");
    let r = send(
        sim.addr(),
        "POST",
        "/projects/demo/issues/1/comments",
        &[],
        &json!({"body": "same second"}),
    );
    assert_eq!(r.status, 201);
    let (changed, _) = be.list_changed(Some(&cursor)).expect("list since");
    let one = changed
        .iter()
        .find(|i| i.remote_id == "1")
        .expect("the commented issue is listed");
    assert!(
        one.revision.order > seen.revision.order,
        "{:?} after {:?}",
        one.revision,
        seen.revision
    );
    assert_ne!(one.revision.token, seen.revision.token);
}
