//! The listing index: a derived cache of issue summaries keyed by ref tips.
//!
//! Lives at `.git/reposix/index-v1`. Every read lists the refs (cheap) and
//! compares each tip with the cached one, re-folding only issues whose tip
//! moved, by whatever means (another process, `git fetch`, `git update-ref`).
//! It is written to a temporary file and renamed into place, never locked:
//! readers never wait, concurrent refreshers race harmlessly (each writes a
//! complete snapshot keyed by tips), and deleting the file at any time only
//! costs a rebuild. A file that does not decode is ignored and rebuilt.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{EventStore, GitEventStore, IssueRef, Oid, StoreError};
use crate::crdt::IssueState;
use crate::event::{ActorId, IssueId, Status};

const INDEX_VERSION: u32 = 1;

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
        }
    }
}

/// One ref's cached result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Entry {
    /// A healthy issue.
    Issue(IssueSummary),
    /// A ref that could not be read; the message says why.
    Damaged(String),
}

/// On disk: JSON (decodes several times faster than CBOR here, and the
/// file is a cache nobody else reads). Rows are (ref name, tip hex, entry).
#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    rows: Vec<(String, String, Entry)>,
}

/// The bodies, beside the index: rows are (ref name, tip hex, body).
#[derive(Serialize, Deserialize)]
struct TextFile {
    version: u32,
    rows: Vec<(String, String, String)>,
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
}

/// The index of one store.
pub struct Index<'a> {
    store: &'a GitEventStore,
    path: PathBuf,
}

impl<'a> Index<'a> {
    /// The index of `store`.
    pub fn new(store: &'a GitEventStore) -> Index<'a> {
        Index {
            path: store.git_dir().join("reposix").join("index-v1"),
            store,
        }
    }

    /// Where the index file lives.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn text_path(&self) -> PathBuf {
        self.path.with_file_name("index-v1-text")
    }

    /// The cached rows, sorted by ref name (as written).
    fn read(&self) -> Vec<(String, String, Entry)> {
        match read_json::<IndexFile>(&self.path) {
            Some(f) if f.version == INDEX_VERSION => {
                let mut rows = f.rows;
                if !rows.windows(2).all(|w| w[0].0 < w[1].0) {
                    rows.sort_by(|a, b| a.0.cmp(&b.0));
                    rows.dedup_by(|a, b| a.0 == b.0);
                }
                rows
            }
            _ => Vec::new(),
        }
    }

    fn read_text(&self) -> HashMap<String, (Oid, String)> {
        match read_json::<TextFile>(&self.text_path()) {
            Some(f) if f.version == INDEX_VERSION => f
                .rows
                .into_iter()
                .filter_map(|(name, tip, body)| {
                    Some((name, (Oid::from_hex(tip.as_bytes()).ok()?, body)))
                })
                .collect(),
            _ => HashMap::new(),
        }
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

    fn list_opts(&self, rebuild: bool, with_text: bool) -> Result<Listing, StoreError> {
        let refs = self.store.list_refs()?;
        let cached = if rebuild { Vec::new() } else { self.read() };
        let mut listing = Listing::default();
        let mut rows: Vec<(&IssueRef, Entry, bool)> = Vec::with_capacity(refs.len());
        let mut changed = cached.len() != refs.len();
        // Both lists are sorted by ref name: walk them together.
        let mut cached = cached.into_iter().peekable();
        for r in &refs {
            while cached.next_if(|(name, _, _)| *name < r.refname).is_some() {}
            let hit =
                cached
                    .next_if(|(name, _, _)| *name == r.refname)
                    .and_then(|(_, tip, entry)| {
                        (Oid::from_hex(tip.as_bytes()).ok() == Some(r.tip)).then_some(entry)
                    });
            let (entry, fresh) = match hit {
                Some(entry) => (entry, false),
                None => {
                    changed = true;
                    listing.refreshed += 1;
                    (summarize(self.store, r), true)
                }
            };
            rows.push((r, entry, fresh));
        }
        if changed || with_text {
            // Bodies: fresh summaries carry theirs; the others come from the
            // text file when its tip matches, else from a fold.
            let mut old_text = if rebuild {
                HashMap::new()
            } else {
                self.read_text()
            };
            let mut text_stale = changed;
            for (r, entry, fresh) in rows.iter_mut() {
                let Entry::Issue(s) = entry else { continue };
                if *fresh {
                    continue;
                }
                match old_text.remove(&r.refname) {
                    Some((tip, body)) if tip == r.tip => s.body = body,
                    _ => {
                        text_stale = true;
                        if let Entry::Issue(again) = summarize(self.store, r) {
                            s.body = again.body;
                        }
                    }
                }
            }
            if changed || text_stale {
                // A failed write only costs speed next time.
                let _ = self.write(&rows);
            }
        }
        for (r, entry, _) in rows {
            match entry {
                Entry::Issue(mut s) => {
                    if !with_text {
                        s.body.clear();
                    }
                    listing.issues.push(s)
                }
                Entry::Damaged(why) => listing.damaged.push((r.refname.clone(), why)),
            }
        }
        Ok(listing)
    }

    fn write(&self, rows: &[(&IssueRef, Entry, bool)]) -> Result<(), StoreError> {
        let index = IndexFile {
            version: INDEX_VERSION,
            rows: rows
                .iter()
                .map(|(r, e, _)| (r.refname.clone(), r.tip.to_string(), e.clone()))
                .collect(),
        };
        let text = TextFile {
            version: INDEX_VERSION,
            rows: rows
                .iter()
                .filter_map(|(r, e, _)| match e {
                    Entry::Issue(s) => Some((r.refname.clone(), r.tip.to_string(), s.body.clone())),
                    Entry::Damaged(_) => None,
                })
                .collect(),
        };
        // Text first: a reader that sees the new index also finds bodies
        // for its tips (or folds the few that are missing).
        write_json(&self.text_path(), &text)?;
        write_json(&self.path, &index)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Write `value` atomically (a cache: not fsynced).
fn write_json<T: Serialize>(path: &std::path::Path, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).expect("BUG: the index always serializes");
    super::fs::write_atomic(path, &bytes, super::fs::Durability::Cache).map_err(|source| {
        StoreError::Index {
            path: path.display().to_string(),
            source,
        }
    })
}

fn summarize(store: &GitEventStore, r: &IssueRef) -> Entry {
    let Some(issue) = r.issue else {
        return Entry::Damaged("not a reposix issue ref (name is not an issue id)".into());
    };
    let repo = store.repo();
    let state = store
        .load_commit(&repo, &r.refname, issue, r.tip)
        .and_then(|events| {
            events.fold(issue).map_err(|source| StoreError::Fold {
                refname: r.refname.clone(),
                source,
            })
        });
    match state {
        Ok(state) => Entry::Issue(IssueSummary::of(&state)),
        Err(e) => Entry::Damaged(crate::error_chain(&e)),
    }
}
