//! An emulation of reposix 0.14's bus push against a sim: what its
//! `git push` does in a clone of a mirror (we do not have its binary).
//! Built from its source (reubenjohn/reposix at version 0.14.0):
//!
//! - records are the tree paths `issues/<digits>.md` or `pages/<digits>.md`
//!   (`reposix_core::path::record_id_from_path`); every other path
//!   (`comments/…`, a README, `issues/PROJ-1.md`, nested paths) is ignored;
//! - each record file is parsed by `frontmatter::parse`: it must start with
//!   `---\n`; the frontmatter ends at the first `\n---\n` (or `\n---` at the
//!   end); the YAML must hold `id` (an integer), `title`, `status` (one of
//!   the five), `created_at`, `updated_at` (RFC 3339), and may hold
//!   `assignee`, `labels`, `version`; other keys are ignored; **the body is
//!   everything after the closing fence**. Any record that fails to parse
//!   rejects the whole push; two paths with one id too;
//! - `diff::plan` against the tracker's records (its cache, here the live
//!   list: the same when nothing moved): a record whose writable projection
//!   (title, status, assignee, labels, body; compared after `\r\n` → `\n`
//!   and trimming trailing whitespace) differs is PATCHed, a record the
//!   tracker lacks is POSTed, a tracker record missing from the tree is
//!   DELETEd (refused above 5 without `[allow-bulk-delete]` in the commit
//!   message);
//! - `SimBackend::update_record`: `PATCH /projects/{p}/issues/{id}` with
//!   `If-Match: "<prior version>"` and the body
//!   `{title, body, status, assignee (null when none), labels}`; creates
//!   POST the same fields; every request carries `X-Reposix-Agent`;
//! - SoT first, then the same commit is pushed to the mirror.
//!
//! Its precheck (reject when the tracker moved since the clone's cache) is
//! not emulated: the scenarios here push onto a quiet tracker.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::TestRepo;

/// What one bus push sent to the tracker.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BusPush {
    /// Ids PATCHed.
    pub patched: Vec<u64>,
    /// Titles POSTed.
    pub created: Vec<String>,
    /// Ids DELETEd.
    pub deleted: Vec<u64>,
}

/// `reposix_core::path::record_id_from_path`.
fn record_id_from_path(path: &str) -> Option<u64> {
    let (bucket, name) = path.split_once('/')?;
    if !["issues", "pages"].contains(&bucket) {
        return None;
    }
    let stem = name.strip_suffix(".md")?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The frontmatter as reposix 0.14's `Frontmatter` struct reads it.
#[derive(Debug, Deserialize)]
struct Frontmatter {
    id: u64,
    title: String,
    status: String,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    created_at: String,
    updated_at: String,
}

/// A record as 0.14 holds it: the writable fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: u64,
    pub title: String,
    pub status: String,
    pub assignee: Option<String>,
    pub labels: Vec<String>,
    pub body: String,
}

impl Record {
    /// `render_writable_for_compare` + `normalize_for_compare`.
    fn writable(&self) -> (&str, &str, Option<&str>, &[String], String) {
        (
            &self.title,
            &self.status,
            self.assignee.as_deref(),
            &self.labels,
            self.body.replace("\r\n", "\n").trim_end().to_owned(),
        )
    }

    fn from_sim(v: &Value) -> Record {
        Record {
            id: v["id"].as_u64().expect("a sim id"),
            title: v["title"].as_str().expect("a title").to_owned(),
            status: v["status"].as_str().expect("a status").to_owned(),
            assignee: v["assignee"].as_str().map(str::to_owned),
            labels: v["labels"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|l| l.as_str().expect("a label").to_owned())
                        .collect()
                })
                .unwrap_or_default(),
            body: v["body"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

/// `reposix_core::record::frontmatter::parse`.
pub fn parse_record(text: &str) -> Result<Record, String> {
    let rest = text
        .strip_prefix("---\n")
        .ok_or("missing frontmatter open fence")?;
    let (yaml, body) = match rest.find("\n---\n") {
        Some(end) => (&rest[..end], &rest[end + 5..]),
        None => match rest.find("\n---") {
            Some(end) if rest[end + 4..].is_empty() => (&rest[..end], ""),
            Some(_) => return Err("frontmatter close fence not followed by newline".into()),
            None => return Err("frontmatter open without close fence".into()),
        },
    };
    let fm: Frontmatter = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    const STATUSES: [&str; 5] = ["open", "in_progress", "in_review", "done", "wont_fix"];
    if !STATUSES.contains(&fm.status.as_str()) {
        return Err(format!("unknown status {:?}", fm.status));
    }
    for t in [&fm.created_at, &fm.updated_at] {
        if reposix::time::parse_millis(t).is_none() {
            return Err(format!("not a timestamp: {t:?}"));
        }
    }
    Ok(Record {
        id: fm.id,
        title: fm.title,
        status: fm.status,
        assignee: fm.assignee,
        labels: fm.labels,
        body: body.to_owned(),
    })
}

/// One HTTP/1.1 exchange with the sim on a fresh loopback connection.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect to the sim");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let payload = body.map(|b| serde_json::to_vec(b).expect("JSON"));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         X-Reposix-Agent: reposix-core-simbackend-{}\r\n",
        std::process::id()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(p) = &payload {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            p.len()
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send");
    if let Some(p) = &payload {
        s.write_all(p).expect("send");
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let body = &raw[split + 4..];
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    };
    (status, value)
}

/// The sim's records of project `slug`.
pub fn sim_records(addr: SocketAddr, slug: &str) -> BTreeMap<u64, (Record, u64)> {
    let (status, list) = call(addr, "GET", &format!("/projects/{slug}/issues"), &[], None);
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .expect("a list")
        .iter()
        .map(|v| {
            let r = Record::from_sim(v);
            (r.id, (r, v["version"].as_u64().expect("a version")))
        })
        .collect()
}

/// `git push` through reposix 0.14's bus in `clone` (a clone of the
/// mirror `mirror`): plan from `HEAD`'s tree against the sim at `addr`
/// (project `slug`), write the tracker, then push `HEAD` to the mirror's
/// `main`. `Err` is a push 0.14 refuses (nothing written).
pub fn bus_push(
    t: &TestRepo,
    clone: &Path,
    mirror: &Path,
    addr: SocketAddr,
    slug: &str,
) -> Result<BusPush, String> {
    let git = |args: &[&str]| -> String {
        let mut c = t.command("git");
        c.current_dir(clone).args(args);
        t.run(c).ok().stdout
    };
    let message = git(&["log", "-1", "--format=%B"]);
    let mut tree: BTreeMap<u64, (String, Record)> = BTreeMap::new();
    for line in git(&["ls-tree", "-r", "HEAD"]).lines() {
        let (meta, path) = line.split_once('\t').expect("ls-tree line");
        let Some(id) = record_id_from_path(path) else {
            continue;
        };
        let oid = meta.split(' ').nth(2).expect("an object id");
        let text = git(&["cat-file", "blob", oid]);
        let record =
            parse_record(&text).map_err(|e| format!("invalid issue blob at path {path}: {e}"))?;
        if let Some((first, _)) = tree.get(&id) {
            return Err(format!(
                "two paths resolve to record id {id} ({first} and {path})"
            ));
        }
        tree.insert(id, (path.to_owned(), record));
    }
    let prior = sim_records(addr, slug);
    let mut plan = BusPush::default();
    let mut updates = Vec::new();
    let mut creates = Vec::new();
    for (id, (_, new)) in &tree {
        match prior.get(id) {
            Some((old, version)) if old.writable() != new.writable() => {
                updates.push((*id, *version, new.clone()));
            }
            Some(_) => {}
            None => creates.push(new.clone()),
        }
    }
    let deletes: Vec<u64> = prior
        .keys()
        .filter(|id| !tree.contains_key(id))
        .copied()
        .collect();
    if deletes.len() > 5 && !message.contains("[allow-bulk-delete]") {
        return Err(format!(
            "refusing to push (would delete {} issues; cap is 5)",
            deletes.len()
        ));
    }
    let fields = |r: &Record| {
        json!({
            "title": r.title,
            "body": r.body,
            "status": r.status,
            "assignee": r.assignee,
            "labels": r.labels,
        })
    };
    for r in creates {
        let (status, v) = call(
            addr,
            "POST",
            &format!("/projects/{slug}/issues"),
            &[],
            Some(&fields(&r)),
        );
        assert_eq!(status, 201, "create: {v}");
        plan.created.push(r.title);
    }
    for (id, version, r) in updates {
        let if_match = format!("\"{version}\"");
        let (status, v) = call(
            addr,
            "PATCH",
            &format!("/projects/{slug}/issues/{id}"),
            &[("If-Match", &if_match)],
            Some(&fields(&r)),
        );
        assert_eq!(status, 200, "patch {id}: {v}");
        plan.patched.push(id);
    }
    for id in deletes {
        let (status, v) = call(
            addr,
            "DELETE",
            &format!("/projects/{slug}/issues/{id}"),
            &[],
            None,
        );
        assert_eq!(status, 204, "delete {id}: {v}");
        plan.deleted.push(id);
    }
    git(&[
        "push",
        "-q",
        &mirror.to_string_lossy(),
        "HEAD:refs/heads/main",
    ]);
    Ok(plan)
}
