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
use std::io::Write;
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
    /// Body text (for text search).
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

    fn read(&self) -> HashMap<String, (Oid, Entry)> {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return HashMap::new();
        };
        match serde_json::from_slice::<IndexFile>(&bytes) {
            Ok(f) if f.version == INDEX_VERSION => f
                .rows
                .into_iter()
                .filter_map(|(name, tip, entry)| {
                    Some((name, (Oid::from_hex(tip.as_bytes()).ok()?, entry)))
                })
                .collect(),
            _ => HashMap::new(),
        }
    }

    fn write(&self, rows: &[(&IssueRef, &Entry)]) -> Result<(), StoreError> {
        let err = |source| StoreError::Index {
            path: self.path.display().to_string(),
            source,
        };
        let dir = self.path.parent().expect("BUG: index path has a parent");
        std::fs::create_dir_all(dir).map_err(err)?;
        let file = IndexFile {
            version: INDEX_VERSION,
            rows: rows
                .iter()
                .map(|(r, e)| (r.refname.clone(), r.tip.to_string(), (*e).clone()))
                .collect(),
        };
        let bytes = serde_json::to_vec(&file).expect("BUG: the index always serializes");
        let tmp = dir.join(format!(
            "index-v1.tmp.{}.{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let result = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(err)
    }

    /// List every issue, refreshing stale entries; `rebuild` ignores the
    /// cache entirely.
    pub fn list(&self, rebuild: bool) -> Result<Listing, StoreError> {
        let refs = self.store.list_refs()?;
        let mut cached = if rebuild { HashMap::new() } else { self.read() };
        let mut listing = Listing::default();
        let mut rows: Vec<(&IssueRef, Entry)> = Vec::with_capacity(refs.len());
        let mut changed = cached.len() != refs.len();
        for r in &refs {
            let entry = match cached.remove(&r.refname) {
                Some((tip, entry)) if tip == r.tip => entry,
                _ => {
                    changed = true;
                    listing.refreshed += 1;
                    summarize(self.store, r)
                }
            };
            rows.push((r, entry));
        }
        if changed {
            let view: Vec<_> = rows.iter().map(|(r, e)| (*r, e)).collect();
            // A failed write only costs speed next time; the listing stands.
            let _ = self.write(&view);
        }
        for (r, entry) in rows {
            match entry {
                Entry::Issue(s) => listing.issues.push(s),
                Entry::Damaged(why) => listing.damaged.push((r.refname.clone(), why)),
            }
        }
        Ok(listing)
    }
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
