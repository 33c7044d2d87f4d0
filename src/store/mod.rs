//! Issue logs stored in git refs.
//!
//! One ref per issue (`refs/reposix/issues/<uuid>`) points at a commit DAG;
//! each commit's tree holds *every* event reachable from it (cumulative,
//! content-addressed, so trees of concurrent writers merge by union). See
//! `refs-format.md` for the normative layout and [`layout`] for its parser.
//!
//! Guarantees:
//! - appends are compare-and-swap ref updates; a lost race re-reads the tip,
//!   re-parents onto it and retries; it never errors out and never drops an
//!   event;
//! - the store never moves a ref to a commit whose events are not a superset
//!   of the events the old commit had;
//! - a damaged ref (malformed object, unknown format version, foreign data)
//!   is reported naming the ref and object, and does not stop other issues
//!   from being read;
//! - readers take no locks.

pub mod bulk;
pub mod cache;
pub mod fs;
pub mod git;
pub mod index;
pub mod layout;
pub mod maintenance;
pub mod tree;

use crate::crdt::{EventSet, FoldError};
use crate::event::{DecodeError, EventId, IssueId};

pub use git::GitEventStore;
pub use layout::LayoutError;

/// A git object id.
pub type Oid = gix::hash::ObjectId;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The repository cannot be opened.
    #[error("cannot open a git repository at {path}")]
    Open {
        /// Where we looked.
        path: String,
        /// Why it failed.
        #[source]
        source: gix::Error,
    },
    /// Git failed to read or write an object or ref.
    #[error("{refname}: git failed on {what}")]
    Git {
        /// The ref being worked on.
        refname: String,
        /// What was being done (names the object where there is one).
        what: String,
        /// The git error.
        #[source]
        source: gix::Error,
    },
    /// An object in a ref's history is damaged: it decodes to nothing valid.
    #[error("{refname}: damaged object {object}: {why}")]
    Damaged {
        /// The ref.
        refname: String,
        /// The object id.
        object: String,
        /// What is wrong.
        why: String,
    },
    /// An event blob that does not decode.
    #[error("{refname}: event blob {object} does not decode")]
    BadEvent {
        /// The ref.
        refname: String,
        /// The blob id.
        object: String,
        /// The decode error.
        #[source]
        source: DecodeError,
    },
    /// A tree or marker that does not follow the layout (includes unknown
    /// format versions).
    #[error("{refname}: tree {object} is not a reposix issue log")]
    Layout {
        /// The ref.
        refname: String,
        /// The tree or blob id.
        object: String,
        /// What is wrong.
        #[source]
        source: LayoutError,
    },
    /// The events do not fold into an issue.
    #[error("{refname}: events do not form an issue")]
    Fold {
        /// The ref.
        refname: String,
        /// Why.
        #[source]
        source: FoldError,
    },
    /// No issue has this id.
    #[error("no issue {0}")]
    NotFound(String),
    /// A prefix matches several issues.
    #[error("issue id prefix {prefix:?} is ambiguous: {}", candidates.join(", "))]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// Matching ids.
        candidates: Vec<String>,
    },
    /// A ref stayed locked by another writer for too long.
    #[error("{refname}: ref is locked ({lock}) and the lock did not clear")]
    Locked {
        /// The ref.
        refname: String,
        /// The lock file.
        lock: String,
    },
    /// Writing the index file failed.
    #[error("cannot write the index at {path}")]
    Index {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Running `git` failed.
    #[error("running `git {command}` failed: {detail}")]
    GitCommand {
        /// The subcommand.
        command: String,
        /// What happened (stderr excerpt).
        detail: String,
    },
    /// A writer handed over an event that readers would reject (too large,
    /// not canonical, another issue's): nothing was written.
    #[error("{refname}: event {event} refused, nothing written")]
    Refused {
        /// The ref.
        refname: String,
        /// The event id (short).
        event: String,
        /// Why a reader would reject it.
        #[source]
        source: DecodeError,
    },
    /// The log holds events that break the clock rule (`refs-format.md`,
    /// section 5): damage that is not merged or pushed.
    #[error("{refname}: {} invalid event(s): {}", invalid.len(), describe_invalid(invalid))]
    InvalidEvents {
        /// The ref.
        refname: String,
        /// Each invalid event and why.
        invalid: Vec<(EventId, crate::crdt::Invalid)>,
    },
}

fn describe_invalid(invalid: &[(EventId, crate::crdt::Invalid)]) -> String {
    let mut parts: Vec<String> = invalid
        .iter()
        .take(3)
        .map(|(id, why)| format!("{} ({why})", id.short()))
        .collect();
    if invalid.len() > 3 {
        parts.push(format!("and {} more", invalid.len() - 3));
    }
    parts.join(", ")
}

impl StoreError {
    /// Whether this error means stored data is damaged or unreadable by
    /// this version (as opposed to a missing issue or an I/O failure).
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Damaged { .. }
                | StoreError::BadEvent { .. }
                | StoreError::Layout { .. }
                | StoreError::Fold { .. }
                | StoreError::Git { .. }
                | StoreError::InvalidEvents { .. }
        )
    }

    /// Whether this is an unsupported-format-version error.
    pub fn is_unsupported_version(&self) -> bool {
        matches!(
            self,
            StoreError::Layout {
                source: LayoutError::UnsupportedVersion { .. },
                ..
            } | StoreError::BadEvent {
                source: DecodeError::UnsupportedVersion { .. },
                ..
            }
        )
    }
}

/// A loaded issue log: the ref's tip and every event in it.
#[derive(Debug, Clone)]
pub struct IssueLog {
    /// The issue.
    pub issue: IssueId,
    /// Its ref name.
    pub refname: String,
    /// The commit the ref pointed at when read.
    pub tip: Oid,
    /// Every event.
    pub events: EventSet,
}

/// An issue ref as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRef {
    /// The ref name.
    pub refname: String,
    /// The issue (`None` for a ref under our namespace that is not ours).
    pub issue: Option<IssueId>,
    /// Where it points.
    pub tip: Oid,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The commit the ref now points at (or already pointed at).
    pub commit: Oid,
    /// How many compare-and-swap races were lost and retried.
    pub retries: u32,
    /// Whether every event was already present (nothing written).
    pub already_present: bool,
}

/// What merging a foreign tip did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The ref did not exist and now points at the foreign tip.
    Created,
    /// The foreign tip was already contained.
    UpToDate,
    /// The ref moved forward to the foreign tip.
    FastForward,
    /// A merge commit joins both.
    Merged,
}

/// The role: a store of per-issue event logs.
pub trait EventStore {
    /// Every ref under the issue namespace.
    fn list_refs(&self) -> Result<Vec<IssueRef>, StoreError>;
    /// Load one issue's log (every event, decoded and verified).
    fn load(&self, issue: IssueId) -> Result<IssueLog, StoreError>;
    /// Append sealed events to an issue's log (compare-and-swap, retried).
    fn append(
        &self,
        issue: IssueId,
        events: &[(EventId, Vec<u8>)],
        summary: &str,
    ) -> Result<Appended, StoreError>;
    /// Merge a commit (e.g. fetched from a remote) into an issue's ref.
    fn merge_tip(&self, issue: IssueId, other: Oid) -> Result<MergeOutcome, StoreError>;
}

/// Object writes that survive `git gc` running beside them.
///
/// `git gc --auto` (which writers start, see [`maintenance`]) removes empty
/// loose-object directories; a write whose directory vanishes between its
/// creation and the rename of the object into it fails with "not found".
/// Git retries such writes; so does reposix.
pub(crate) trait WriteRetrying {
    /// [`gix::Repository::write_blob`], retried when its directory vanished.
    fn write_blob_retrying(&self, bytes: &[u8]) -> Result<gix::Id<'_>, gix::Error>;
    /// [`gix::Repository::write_object`], retried likewise.
    fn write_object_retrying(
        &self,
        object: &impl gix::objs::WriteTo,
    ) -> Result<gix::Id<'_>, gix::Error>;
}

impl WriteRetrying for gix::Repository {
    fn write_blob_retrying(&self, bytes: &[u8]) -> Result<gix::Id<'_>, gix::Error> {
        retry_vanished(|| self.write_blob(bytes))
    }

    fn write_object_retrying(
        &self,
        object: &impl gix::objs::WriteTo,
    ) -> Result<gix::Id<'_>, gix::Error> {
        retry_vanished(|| self.write_object(object))
    }
}

fn retry_vanished<T, E: std::error::Error + 'static>(
    mut write: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut attempts = 0;
    loop {
        match write() {
            Err(e) if attempts < 8 && vanished(&e) => attempts += 1,
            other => return other,
        }
    }
}

/// Whether an io "not found" is somewhere in the error's chain.
fn vanished(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
            // Wrappers that keep only the message (ENOENT is 2 on every
            // platform git runs on).
            || err.to_string().contains("(os error 2)")
        {
            return true;
        }
        cur = err.source();
    }
    false
}
