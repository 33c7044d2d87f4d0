//! The listing index: a derived cache of issue summaries keyed by ref tips.
//!
//! Lives at `.git/reposix/index-v4` (compact binary rows, checksummed,
//! then a table of fixed-size sort keys, one per row, with each row's
//! offset: [`Index::keyed`] answers a listing filtered by status and
//! sorted by time or status from the table, decoding only the rows it
//! shows), with the bodies for text search beside it in `index-v4-text`. A read
//! first compares a *stamp* of the ref storage (size, mtime and inode of
//! `packed-refs` and of the loose ref directories of the issue namespace)
//! with the stamp recorded when the index was written: git changes a loose
//! ref by renaming a lock file over it and rewrites `packed-refs` the same
//! way, so no ref of the namespace moved while the stamp is unchanged, and
//! the listing is answered from the index alone, without reading 100,000
//! refs. A stamp is trusted only when its newest mtime is older than
//! [`STAMP_SETTLE`] at the time it was taken (a change in the same clock
//! tick as the last one cannot hide; git's "racy" rule), and never on a
//! reftable repository. Otherwise the refs are listed and each tip compared
//! with the cached one, re-folding only issues whose tip moved, by whatever
//! means (another process, `git fetch`, `git update-ref`).
//! It is written to a temporary file and renamed into place, never locked:
//! readers never wait, concurrent refreshers race harmlessly (each writes a
//! complete snapshot keyed by tips), and deleting the file at any time only
//! costs a rebuild. A file that does not decode is ignored and rebuilt.
//! Summaries of local issues are folded without their body (no automerge
//! document); bodies are folded when a text search first needs them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::cache::{StateCache, CACHE_MIN_EVENTS};
use super::{layout, EventStore, GitEventStore, IssueRef, Oid, StoreError};
use crate::crdt::incremental::{CacheDecodeError, Dec, Enc, Folded, D};
use crate::crdt::{IssueState, Link};
use crate::event::{ActorId, IssueId, Op, Status};

const INDEX_MAGIC: &[u8; 8] = b"rxindx4e";
const TEXT_MAGIC: &[u8; 8] = b"rxtext03";

/// A ref-storage stamp is trusted once its newest mtime is this old.
pub const STAMP_SETTLE: Duration = Duration::from_secs(2);

/// What the index remembers about one healthy issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSummary {
    /// The issue.
    pub id: IssueId,
    /// Title.
    pub title: String,
    /// Status.
    pub status: Status,
    /// Labels (sorted).
    pub labels: Vec<String>,
    /// Assignees (sorted).
    pub assignees: Vec<String>,
    /// Creator.
    pub created_by: ActorId,
    /// Created (wall, ms).
    pub created_ms: i64,
    /// Last event (wall, ms).
    pub updated_ms: i64,
    /// Live comments.
    pub comments: usize,
    /// Body text, for text search: filled only by [`Index::list_with_text`]
    /// (kept in a second file so that plain listings stay small).
    #[serde(skip)]
    pub body: String,
    /// Largest Lamport clock.
    pub lamport: u64,
    /// Tracker issues it is bound to: (backend key, remote id).
    #[serde(default)]
    pub remotes: Vec<(String, String)>,
    /// Bound tracker issues the tracker reported gone: (backend key,
    /// remote id).
    #[serde(default)]
    pub gone: Vec<(String, String)>,
    /// The tracker's creation time of each bound tracker issue that has
    /// one: (backend key, remote id, created_at).
    #[serde(default)]
    pub remote_created: Vec<(String, String, String)>,
    /// Folded into another issue (a second local copy of one tracker
    /// issue): kept in the index, left out of listings.
    #[serde(default)]
    pub merged: bool,
    /// Links (sorted), for the dependency graphs of `ready` and `blocked`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// The `priority` field, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The last lease taken and not released: (holder, expiry ms). It may
    /// have expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<(ActorId, i64)>,
    /// Claims that lost without the loser knowing and are not acknowledged:
    /// (loser, winner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<(ActorId, ActorId)>,
}

impl IssueSummary {
    /// Summarize a folded state.
    pub fn of(state: &IssueState) -> IssueSummary {
        IssueSummary {
            id: state.id,
            title: state.title.clone(),
            status: state.status,
            labels: state.labels.clone(),
            assignees: state.assignees.clone(),
            created_by: state.created_by.clone(),
            created_ms: state.created_ms,
            updated_ms: state.updated_ms,
            comments: state.comments.len(),
            body: state.body.clone(),
            lamport: state.lamport,
            remotes: state
                .remotes
                .iter()
                .filter(|r| !r.gone)
                .map(|r| (r.backend.clone(), r.remote_id.clone()))
                .collect(),
            gone: state
                .remotes
                .iter()
                .filter(|r| r.gone)
                .map(|r| (r.backend.clone(), r.remote_id.clone()))
                .collect(),
            remote_created: state
                .remotes
                .iter()
                .filter_map(|r| {
                    r.created_at
                        .clone()
                        .map(|c| (r.backend.clone(), r.remote_id.clone(), c))
                })
                .collect(),
            merged: state.merged_into.is_some(),
            links: state.links.clone(),
            priority: state.fields.get("priority").cloned(),
            lease: state
                .claims
                .lease
                .as_ref()
                .map(|l| (l.actor.clone(), l.until_ms)),
            lost: state
                .claims
                .lost
                .iter()
                .filter(|l| !l.knew && !l.acknowledged)
                .map(|l| (l.actor.clone(), l.winner.clone()))
                .collect(),
        }
    }
}

/// One ref's cached result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Entry {
    /// A healthy issue.
    Issue(Box<IssueSummary>),
    /// A ref that could not be read; the message says why.
    Damaged(String),
}

/// One row: a ref, its tip, what it holds.
struct Row {
    refname: String,
    issue: Option<IssueId>,
    tip: Oid,
    entry: Entry,
}

/// A stamp of the ref storage of the issue namespace (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    /// (path relative to the common git dir, size, mtime ns, inode); zeros
    /// for an absent path.
    files: Vec<(String, u64, u64, u64)>,
    /// Whether it can vouch for the refs (settled, not reftable).
    trusted: bool,
}

fn stat(path: &Path) -> (u64, u64, u64) {
    let Ok(m) = std::fs::metadata(path) else {
        return (0, 0, 0);
    };
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    (m.len(), mtime, ino)
}

impl Stamp {
    /// Stat `packed-refs`, the namespace directory and `subdirs` of it.
    fn take(common: &Path, subdirs: &[String]) -> Stamp {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let namespace = layout::ISSUE_REF_PREFIX.trim_end_matches('/');
        let mut names = vec!["packed-refs".to_owned(), namespace.to_owned()];
        names.extend(subdirs.iter().map(|d| format!("{namespace}/{d}")));
        let files: Vec<(String, u64, u64, u64)> = names
            .into_iter()
            .map(|n| {
                let (size, mtime, ino) = stat(&common.join(&n));
                (n, size, mtime, ino)
            })
            .collect();
        let newest = files.iter().map(|f| f.2).max().unwrap_or(0);
        let settled = now.saturating_sub(newest) > STAMP_SETTLE.as_nanos() as u64;
        let reftable = common.join("reftable").exists();
        Stamp {
            files,
            trusted: settled && !reftable,
        }
    }

    /// The subdirectories of the namespace it covers.
    fn subdirs(&self) -> Vec<String> {
        let namespace = layout::ISSUE_REF_PREFIX;
        self.files
            .iter()
            .filter_map(|(n, ..)| format!("{n}/").strip_prefix(namespace).map(str::to_owned))
            .map(|d| d.trim_end_matches('/').to_owned())
            .filter(|d| !d.is_empty())
            .collect()
    }

    fn encode(&self, e: &mut Enc) {
        e.u(u64::from(self.trusted));
        e.u(self.files.len() as u64);
        for (n, size, mtime, ino) in &self.files {
            e.s(n);
            e.u(*size);
            e.u(*mtime);
            e.u(*ino);
        }
    }

    fn decode(d: &mut Dec<'_>) -> D<Stamp> {
        let trusted = d.u()? == 1;
        let mut files = Vec::new();
        for _ in 0..d.len()? {
            files.push((d.s()?, d.u()?, d.u()?, d.u()?));
        }
        Ok(Stamp { files, trusted })
    }
}

/// The directories (relative to the namespace) that hold the refs.
fn subdirs_of(refs: &[IssueRef]) -> Vec<String> {
    let mut out: Vec<String> = refs
        .iter()
        .filter_map(|r| r.refname.strip_prefix(layout::ISSUE_REF_PREFIX))
        .filter_map(|rest| rest.rsplit_once('/').map(|(dir, _)| dir.to_owned()))
        .flat_map(|dir| {
            // Every ancestor directory too.
            let parts: Vec<&str> = dir.split('/').collect();
            (1..=parts.len())
                .map(|i| parts[..i].join("/"))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn put_name(e: &mut Enc, refname: &str, issue: Option<IssueId>) {
    match issue.filter(|i| layout::issue_ref(*i) == refname) {
        Some(i) => {
            e.u(0);
            e.0.extend_from_slice(i.0.as_bytes());
        }
        None => {
            e.u(1);
            e.s(refname);
        }
    }
}

fn get_name(d: &mut Dec<'_>) -> D<(String, Option<IssueId>)> {
    match d.u()? {
        0 => {
            let b: [u8; 16] = d.take(16)?.try_into().map_err(|_| CacheDecodeError)?;
            let issue = IssueId(uuid::Uuid::from_bytes(b));
            Ok((layout::issue_ref(issue), Some(issue)))
        }
        1 => {
            let name = d.s()?;
            let issue = layout::issue_of_ref(&name);
            Ok((name, issue))
        }
        _ => Err(CacheDecodeError),
    }
}

fn put_tip(e: &mut Enc, tip: &Oid) {
    e.bytes(tip.as_bytes());
}

fn get_tip(d: &mut Dec<'_>) -> D<Oid> {
    Oid::try_from(d.bytes()?).map_err(|_| CacheDecodeError)
}

fn put_summary(e: &mut Enc, s: &IssueSummary) {
    e.0.extend_from_slice(s.id.0.as_bytes());
    e.s(&s.title);
    e.u(Status::ALL.iter().position(|x| *x == s.status).unwrap_or(0) as u64);
    for list in [&s.labels, &s.assignees] {
        e.u(list.len() as u64);
        list.iter().for_each(|x| e.s(x));
    }
    e.s(s.created_by.as_str());
    e.i(s.created_ms);
    e.i(s.updated_ms);
    e.u(s.comments as u64);
    e.u(s.lamport);
    for pairs in [&s.remotes, &s.gone] {
        e.u(pairs.len() as u64);
        for (a, b) in pairs {
            e.s(a);
            e.s(b);
        }
    }
    e.u(s.remote_created.len() as u64);
    for (a, b, c) in &s.remote_created {
        e.s(a);
        e.s(b);
        e.s(c);
    }
    e.u(u64::from(s.merged));
    e.u(s.links.len() as u64);
    s.links.iter().for_each(|l| e.link(l));
    e.opt_s(s.priority.as_deref());
    match &s.lease {
        None => e.u(0),
        Some((a, until)) => {
            e.u(1);
            e.s(a.as_str());
            e.i(*until);
        }
    }
    e.u(s.lost.len() as u64);
    for (a, b) in &s.lost {
        e.s(a.as_str());
        e.s(b.as_str());
    }
}

fn get_summary(d: &mut Dec<'_>) -> D<IssueSummary> {
    let b: [u8; 16] = d.take(16)?.try_into().map_err(|_| CacheDecodeError)?;
    let strs = |d: &mut Dec<'_>| -> D<Vec<String>> { (0..d.len()?).map(|_| d.s()).collect() };
    let pairs = |d: &mut Dec<'_>| -> D<Vec<(String, String)>> {
        (0..d.len()?).map(|_| Ok((d.s()?, d.s()?))).collect()
    };
    Ok(IssueSummary {
        id: IssueId(uuid::Uuid::from_bytes(b)),
        title: d.s()?,
        status: *Status::ALL
            .get(usize::try_from(d.u()?).map_err(|_| CacheDecodeError)?)
            .ok_or(CacheDecodeError)?,
        labels: strs(d)?,
        assignees: strs(d)?,
        created_by: ActorId::new(&d.s()?).map_err(|_| CacheDecodeError)?,
        created_ms: d.i()?,
        updated_ms: d.i()?,
        comments: d.count()?,
        body: String::new(),
        lamport: d.u()?,
        remotes: pairs(d)?,
        gone: pairs(d)?,
        remote_created: (0..d.len()?)
            .map(|_| Ok((d.s()?, d.s()?, d.s()?)))
            .collect::<D<_>>()?,
        merged: d.u()? != 0,
        links: (0..d.len()?).map(|_| d.link()).collect::<D<_>>()?,
        priority: d.opt_s()?,
        lease: match d.u()? {
            0 => None,
            1 => Some((d.actor()?, d.i()?)),
            _ => return Err(CacheDecodeError),
        },
        lost: (0..d.len()?)
            .map(|_| Ok((d.actor()?, d.actor()?)))
            .collect::<D<_>>()?,
    })
}

/// A file: magic, payload, 8 bytes of blake3 of the payload.
fn seal(magic: &[u8; 8], payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(magic);
    let sum = blake3::hash(&payload);
    out.extend_from_slice(&payload);
    out.extend_from_slice(&sum.as_bytes()[..8]);
    out
}

fn unseal<'b>(magic: &[u8; 8], bytes: &'b [u8]) -> Option<&'b [u8]> {
    let rest = bytes.strip_prefix(magic)?;
    let (payload, sum) = rest.split_at(rest.len().checked_sub(8)?);
    (blake3::hash(payload).as_bytes()[..8] == *sum).then_some(payload)
}

/// The result of reading the index.
#[derive(Debug, Default)]
pub struct Listing {
    /// Healthy issues.
    pub issues: Vec<IssueSummary>,
    /// Refs that could not be read: (ref name, why).
    pub damaged: Vec<(String, String)>,
    /// How many refs had to be (re)read because their tip moved.
    pub refreshed: usize,
    /// Whether the refs were listed (false: the ref-storage stamp vouched
    /// for the index).
    pub refs_listed: bool,
}

/// Bytes of one row's entry in the key table: kind (0 issue, 1 damaged,
/// 2 merged), status (its place in [`Status::ALL`]), created and updated
/// ms (little-endian), the issue id, the row's offset in the payload.
const KEY_LEN: usize = 1 + 1 + 8 + 8 + 16 + 8;

/// Where the key table of a payload of `rows` rows starts, and its bytes:
/// the payload's last 8 bytes give its offset, one key a row runs to them.
fn key_table(payload: &[u8], rows: usize) -> Option<(usize, &[u8])> {
    let at = payload.len().checked_sub(8)?;
    let table = usize::try_from(u64::from_le_bytes(payload[at..].try_into().ok()?)).ok()?;
    let raw = payload.get(table..at)?;
    (raw.len() == rows.checked_mul(KEY_LEN)?).then_some((table, raw))
}

fn put_key(out: &mut Vec<u8>, offset: usize, entry: &Entry) {
    let (kind, status, created, updated, id) = match entry {
        Entry::Issue(s) => (
            if s.merged { 2 } else { 0 },
            Status::ALL.iter().position(|x| *x == s.status).unwrap_or(0) as u8,
            s.created_ms,
            s.updated_ms,
            *s.id.0.as_bytes(),
        ),
        Entry::Damaged(_) => (1, 0, 0, 0, [0; 16]),
    };
    out.push(kind);
    out.push(status);
    out.extend_from_slice(&created.to_le_bytes());
    out.extend_from_slice(&updated.to_le_bytes());
    out.extend_from_slice(&id);
    out.extend_from_slice(&(offset as u64).to_le_bytes());
}

/// The sort keys of one listed issue (see [`Keyed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKeys {
    /// The issue.
    pub id: IssueId,
    /// Status.
    pub status: Status,
    /// Created (wall, ms).
    pub created_ms: i64,
    /// Last event (wall, ms).
    pub updated_ms: i64,
    /// Where its row starts in the payload.
    offset: usize,
}

impl SortKeys {
    /// The keys of a summary (with no row behind them: for comparing
    /// orders).
    #[cfg(test)]
    pub(crate) fn of(s: &IssueSummary) -> SortKeys {
        SortKeys {
            id: s.id,
            status: s.status,
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
            offset: 0,
        }
    }
}

/// The index as its key table: the sort keys of every listed issue, and
/// each issue's summary decoded on demand. Valid only while the ref
/// storage stamp vouches for the index (see [`Index::keyed`]).
#[derive(Debug)]
pub struct Keyed {
    bytes: Vec<u8>,
    /// Listed issues (healthy, not merged), in ref order.
    pub keys: Vec<SortKeys>,
    damaged: Vec<usize>,
}

impl Keyed {
    fn payload(&self) -> &[u8] {
        &self.bytes[INDEX_MAGIC.len()..self.bytes.len() - 8]
    }

    fn row_at(&self, offset: usize) -> Option<Row> {
        let mut d = Dec(self.payload().get(offset..)?);
        let (refname, issue) = get_name(&mut d).ok()?;
        let tip = get_tip(&mut d).ok()?;
        let entry = match d.u().ok()? {
            0 => Entry::Issue(Box::new(get_summary(&mut d).ok()?)),
            1 => Entry::Damaged(d.s().ok()?),
            _ => return None,
        };
        Some(Row {
            refname,
            issue,
            tip,
            entry,
        })
    }

    /// The summary of a listed issue (body empty).
    pub fn summary(&self, k: &SortKeys) -> Result<IssueSummary, StoreError> {
        match self.row_at(k.offset).map(|r| r.entry) {
            Some(Entry::Issue(s)) if s.id == k.id => Ok(*s),
            _ => Err(StoreError::Index {
                path: "index".into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the index row of {} does not decode", k.id),
                ),
            }),
        }
    }

    /// Refs that could not be read: (ref name, why).
    pub fn damaged(&self) -> Vec<(String, String)> {
        self.damaged
            .iter()
            .filter_map(|o| self.row_at(*o))
            .filter_map(|r| match r.entry {
                Entry::Damaged(why) => Some((r.refname, why)),
                Entry::Issue(_) => None,
            })
            .collect()
    }
}

/// The index of one store.
pub struct Index<'a> {
    store: &'a GitEventStore,
    path: PathBuf,
    common: PathBuf,
}

impl<'a> Index<'a> {
    /// The index of `store`.
    pub fn new(store: &'a GitEventStore) -> Index<'a> {
        Index {
            path: store.reposix_dir().join("index-v4"),
            common: store.repo().common_dir().to_path_buf(),
            store,
        }
    }

    /// Where the index file lives.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn text_path(&self) -> PathBuf {
        self.path.with_file_name("index-v4-text")
    }

    /// The cached stamp and rows, sorted by ref name (as written).
    fn read(&self) -> Option<(Stamp, Vec<Row>)> {
        let bytes = std::fs::read(&self.path).ok()?;
        let payload = unseal(INDEX_MAGIC, &bytes)?;
        let mut d = Dec(payload);
        let decode = |d: &mut Dec<'_>| -> D<(Stamp, Vec<Row>)> {
            let stamp = Stamp::decode(d)?;
            let n = d.len()?;
            let mut rows = Vec::with_capacity(n);
            for _ in 0..n {
                let (refname, issue) = get_name(d)?;
                let tip = get_tip(d)?;
                let entry = match d.u()? {
                    0 => Entry::Issue(Box::new(get_summary(d)?)),
                    1 => Entry::Damaged(d.s()?),
                    _ => return Err(CacheDecodeError),
                };
                rows.push(Row {
                    refname,
                    issue,
                    tip,
                    entry,
                });
            }
            Ok((stamp, rows))
        };
        let (stamp, mut rows) = decode(&mut d).ok()?;
        // The key table must follow the rows, one key a row: an index
        // whose table does not is rebuilt (and rewritten), not trusted.
        let (table, _) = key_table(payload, rows.len())?;
        if table != payload.len() - d.0.len() {
            return None;
        }
        if !rows.windows(2).all(|w| w[0].refname < w[1].refname) {
            rows.sort_by(|a, b| a.refname.cmp(&b.refname));
            rows.dedup_by(|a, b| a.refname == b.refname);
        }
        Some((stamp, rows))
    }

    /// Bodies by ref name, with the tip each is the body of.
    fn read_text(&self) -> HashMap<String, (Oid, String)> {
        let Ok(bytes) = std::fs::read(self.text_path()) else {
            return HashMap::new();
        };
        let Some(payload) = unseal(TEXT_MAGIC, &bytes) else {
            return HashMap::new();
        };
        let mut d = Dec(payload);
        let decode = |d: &mut Dec<'_>| -> D<HashMap<String, (Oid, String)>> {
            let mut out = HashMap::new();
            for _ in 0..d.len()? {
                let (name, _) = get_name(d)?;
                let tip = get_tip(d)?;
                out.insert(name, (tip, d.s()?));
            }
            Ok(out)
        };
        decode(&mut d).unwrap_or_default()
    }

    /// List every issue, refreshing stale entries; `rebuild` ignores the
    /// cache entirely. Bodies are left empty (see [`Index::list_with_text`]).
    pub fn list(&self, rebuild: bool) -> Result<Listing, StoreError> {
        self.list_opts(rebuild, false)
    }

    /// [`Index::list`] with every summary's body filled in, for text search.
    pub fn list_with_text(&self, rebuild: bool) -> Result<Listing, StoreError> {
        self.list_opts(rebuild, true)
    }

    /// The key table, when the ref-storage stamp vouches for the index
    /// (no ref of the namespace moved since it was written): a listing
    /// that filters by status and sorts by time or status reads it and
    /// decodes only the rows it shows. `None`: list through
    /// [`Index::list`], which refreshes the index.
    pub fn keyed(&self) -> Option<Keyed> {
        let bytes = std::fs::read(&self.path).ok()?;
        let payload = unseal(INDEX_MAGIC, &bytes)?;
        let mut d = Dec(payload);
        let stamp = Stamp::decode(&mut d).ok()?;
        if !stamp.trusted || stamp != Stamp::take(&self.common, &stamp.subdirs()) {
            return None;
        }
        let n = d.count().ok()?;
        let (table, raw) = key_table(payload, n)?;
        let mut keys = Vec::with_capacity(n);
        let mut damaged = Vec::new();
        for k in raw.chunks_exact(KEY_LEN) {
            let le = |r: std::ops::Range<usize>| -> [u8; 8] {
                k[r].try_into().expect("BUG: eight bytes")
            };
            let offset = usize::try_from(u64::from_le_bytes(le(34..42))).ok()?;
            if offset >= table {
                return None;
            }
            match k[0] {
                0 => keys.push(SortKeys {
                    id: IssueId(uuid::Uuid::from_bytes(k[18..34].try_into().ok()?)),
                    status: *Status::ALL.get(usize::from(k[1]))?,
                    created_ms: i64::from_le_bytes(le(2..10)),
                    updated_ms: i64::from_le_bytes(le(10..18)),
                    offset,
                }),
                1 => damaged.push(offset),
                2 => {}
                _ => return None,
            }
        }
        Some(Keyed {
            bytes,
            keys,
            damaged,
        })
    }

    fn list_opts(&self, rebuild: bool, with_text: bool) -> Result<Listing, StoreError> {
        let cached = if rebuild { None } else { self.read() };
        // Taken before the refs are listed: a ref moved meanwhile changes
        // the stamp the next read takes.
        let subdirs = cached
            .as_ref()
            .map(|(s, _)| s.subdirs())
            .unwrap_or_default();
        let stamp = Stamp::take(&self.common, &subdirs);
        let mut refs_listed = true;
        let (mut rows, refreshed, changed) = match cached {
            Some((old, rows)) if old.trusted && old == stamp => {
                refs_listed = false;
                (rows, 0, false)
            }
            cached => {
                let old_stamp = cached.as_ref().map(|(s, _)| s.clone());
                let (rows, refreshed) = self.refresh(cached.map(|(_, r)| r).unwrap_or_default())?;
                let changed = refreshed > 0 || old_stamp.as_ref() != Some(&stamp);
                (rows, refreshed, changed)
            }
        };
        // The stamp to record: the directories of the refs now listed.
        let stamp = if changed {
            let refs: Vec<IssueRef> = rows
                .iter()
                .map(|r| IssueRef {
                    refname: r.refname.clone(),
                    issue: r.issue,
                    tip: r.tip,
                })
                .collect();
            let dirs = subdirs_of(&refs);
            if dirs == subdirs {
                stamp
            } else {
                // New directories: not covered by the stamp just taken.
                let mut s = Stamp::take(&self.common, &dirs);
                s.trusted = false;
                s
            }
        } else {
            stamp
        };
        let mut text_changed = false;
        if with_text {
            text_changed = self.fill_bodies(&mut rows, rebuild);
        }
        if changed {
            // A failed write only costs speed next time.
            let _ = self.write(&stamp, &rows);
        }
        if text_changed || (changed && with_text) {
            let _ = self.write_text(&rows);
        }
        let mut listing = Listing {
            refreshed,
            refs_listed,
            ..Listing::default()
        };
        for r in rows {
            match r.entry {
                Entry::Issue(s) if s.merged => {}
                Entry::Issue(mut s) => {
                    if !with_text {
                        s.body.clear();
                    }
                    listing.issues.push(*s)
                }
                Entry::Damaged(why) => listing.damaged.push((r.refname, why)),
            }
        }
        Ok(listing)
    }

    /// List the refs and re-read those whose tip is not the cached one
    /// (several threads when there are many). Returns the rows in ref
    /// order and how many were re-read.
    fn refresh(&self, cached: Vec<Row>) -> Result<(Vec<Row>, usize), StoreError> {
        let refs = self.store.list_refs()?;
        let mut rows: Vec<Row> = Vec::with_capacity(refs.len());
        let mut stale: Vec<usize> = Vec::new();
        // Both lists are sorted by ref name: walk them together.
        let mut cached = cached.into_iter().peekable();
        for r in refs {
            while cached.next_if(|c| c.refname < r.refname).is_some() {}
            let hit = cached
                .next_if(|c| c.refname == r.refname)
                .filter(|c| c.tip == r.tip);
            match hit {
                Some(c) => rows.push(c),
                None => {
                    stale.push(rows.len());
                    rows.push(Row {
                        refname: r.refname,
                        issue: r.issue,
                        tip: r.tip,
                        entry: Entry::Damaged(String::new()),
                    });
                }
            }
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(if stale.len() >= 256 { 4 } else { 1 });
        let chunk = stale.len().div_ceil(threads.max(1)).max(1);
        let summarize = |store: &GitEventStore, part: &[usize]| -> Vec<(usize, Entry)> {
            part.iter()
                .map(|&i| {
                    let r = &rows[i];
                    (i, summarize_row(store, &r.refname, r.issue, r.tip))
                })
                .collect()
        };
        let entries: Vec<(usize, Entry)> = if threads <= 1 {
            summarize(self.store, &stale)
        } else {
            // gix handles are per thread (built without its `parallel`
            // feature): each thread opens the repository itself.
            let git_dir = self.store.git_dir();
            std::thread::scope(|scope| {
                let handles: Vec<_> = stale
                    .chunks(chunk)
                    .map(|part| {
                        let summarize = &summarize;
                        scope.spawn(move || match GitEventStore::open(git_dir) {
                            Ok(store) => summarize(&store, part),
                            Err(e) => part
                                .iter()
                                .map(|&i| (i, Entry::Damaged(crate::error_chain(&e))))
                                .collect(),
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("BUG: summarizing does not panic"))
                    .collect()
            })
        };
        for (i, entry) in entries {
            rows[i].entry = entry;
        }
        Ok((rows, stale.len()))
    }

    /// Fill every summary's body: from the text file when its tip matches,
    /// else by a fold. Returns whether any body had to be folded.
    fn fill_bodies(&self, rows: &mut [Row], rebuild: bool) -> bool {
        let mut old_text = if rebuild {
            HashMap::new()
        } else {
            self.read_text()
        };
        let mut folded = false;
        for r in rows.iter_mut() {
            let Entry::Issue(s) = &mut r.entry else {
                continue;
            };
            match old_text.remove(&r.refname) {
                Some((tip, body)) if tip == r.tip => s.body = body,
                _ => {
                    folded = true;
                    if let Some(issue) = r.issue {
                        if let Ok(c) = StateCache::new(self.store).get(
                            &self.store.repo(),
                            &r.refname,
                            issue,
                            r.tip,
                        ) {
                            s.body = c.state.body;
                        }
                    }
                }
            }
        }
        folded
    }

    fn write(&self, stamp: &Stamp, rows: &[Row]) -> Result<(), StoreError> {
        let mut e = Enc(Vec::with_capacity(64 + rows.len() * (128 + KEY_LEN)));
        stamp.encode(&mut e);
        e.u(rows.len() as u64);
        let mut keys = Vec::with_capacity(rows.len() * KEY_LEN);
        for r in rows {
            put_key(&mut keys, e.0.len(), &r.entry);
            put_name(&mut e, &r.refname, r.issue);
            put_tip(&mut e, &r.tip);
            match &r.entry {
                Entry::Issue(s) => {
                    e.u(0);
                    put_summary(&mut e, s);
                }
                Entry::Damaged(why) => {
                    e.u(1);
                    e.s(why);
                }
            }
        }
        let table = e.0.len() as u64;
        e.0.extend_from_slice(&keys);
        e.0.extend_from_slice(&table.to_le_bytes());
        write_file(&self.path, &seal(INDEX_MAGIC, e.0))?;
        // Files of earlier index versions are dead weight now.
        for old in ["index-v1", "index-v1-text", "index-v3", "index-v3-text"] {
            let _ = std::fs::remove_file(self.path.with_file_name(old));
        }
        Ok(())
    }

    fn write_text(&self, rows: &[Row]) -> Result<(), StoreError> {
        let mut e = Enc(Vec::new());
        let with_body: Vec<(&Row, &str)> = rows
            .iter()
            .filter_map(|r| match &r.entry {
                Entry::Issue(s) => Some((r, s.body.as_str())),
                Entry::Damaged(_) => None,
            })
            .collect();
        e.u(with_body.len() as u64);
        for (r, body) in with_body {
            put_name(&mut e, &r.refname, r.issue);
            put_tip(&mut e, &r.tip);
            e.s(body);
        }
        write_file(&self.text_path(), &seal(TEXT_MAGIC, e.0))
    }
}

/// Write `bytes` atomically (a cache: not fsynced).
fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), StoreError> {
    super::fs::write_atomic(path, bytes, super::fs::Durability::Cache).map_err(|source| {
        StoreError::Index {
            path: path.display().to_string(),
            source,
        }
    })
}

/// The summary of one ref. Deep issues go through the state cache; short
/// local ones are folded without their body (no automerge document).
fn summarize_row(store: &GitEventStore, refname: &str, issue: Option<IssueId>, tip: Oid) -> Entry {
    let Some(issue) = issue else {
        return Entry::Damaged("not a reposix issue ref (name is not an issue id)".into());
    };
    let repo = store.repo();
    let cache = StateCache::new(store);
    let state = match store.load_commit(&repo, refname, issue, tip) {
        // Body edits do not count: a fold without the body skips them (a
        // large body is written as many `edit_body` events).
        Ok(events)
            if events
                .iter()
                .filter(|(_, e)| !matches!(e.op, Op::EditBody { .. }))
                .count()
                < CACHE_MIN_EVENTS =>
        {
            match Folded::state_without_body(&events.valid_subset(), issue) {
                Some(state) => Ok(state),
                None => events.fold(issue).map_err(|source| StoreError::Fold {
                    refname: refname.to_owned(),
                    source,
                }),
            }
        }
        Ok(_) => cache.get(&repo, refname, issue, tip).map(|c| c.state),
        Err(e) => Err(e),
    };
    match state {
        Ok(state) => Entry::Issue(Box::new(IssueSummary::of(&state))),
        Err(e) => Entry::Damaged(crate::error_chain(&e)),
    }
}
