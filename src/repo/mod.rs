//! The local issue repository: turns a user's intent into events against
//! the current state of an issue and appends them; reads, lists, checks.
//!
//! This is what the CLI (and any library user) calls. It owns no state of
//! its own beyond the git repository: actors live in `.git/reposix/`, the
//! listing index is a cache, everything else is in the refs.
//!
//! Files: this one holds the API's entry points (open, create, apply, show,
//! list); `intent.rs` turns a change into operations, `config.rs` holds
//! actors and attributions, `fsck.rs` the checks, [`query`] the list
//! query, [`ready`] the ready queue and the cycle check, [`trackers`] the
//! attached trackers' configuration.

mod config;
mod fsck;
mod intent;
pub mod query;
pub mod ready;
pub mod trackers;

pub use fsck::{FsckReport, Problem};
use intent::{comment_op, ops_for, Basis};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::crdt::body::BodyDoc;
use crate::crdt::incremental::{Folded, IssueView};
use crate::crdt::{BodyView, EventSet, FoldError, IssueState, Link};
use crate::event::{
    check_len, check_name, ActorId, DecodeError, Event, EventId, IssueId, Op, Status,
    EVENT_FORMAT_VERSION, MAX_BODY_BYTES, MAX_COMMENT_BYTES, MAX_FIELD_VALUE_BYTES,
    MAX_TITLE_BYTES,
};
use crate::store::cache::{Cached, StateCache, TipInfo, CACHE_MIN_BODY};
use crate::store::index::{Index, IssueSummary, Listing};
use crate::store::layout;
use crate::store::{EventStore, GitEventStore, IssueLog, MergeOutcome, Oid, StoreError};

/// Errors from repository operations.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Input that is not valid.
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// No actor is configured.
    #[error("no actor: pass --actor NAME, set REPOSIX_ACTOR, or run `reposix actor new NAME`")]
    NoActor,
    /// A request that makes no sense against the current state.
    #[error("{0}")]
    Rejected(String),
    /// Reading or writing reposix's own files under `.git/reposix/`.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value that does not parse.
    #[error(transparent)]
    Config(#[from] trackers::ConfigError),
    /// `reposix init` outside a git repository failed to create one.
    #[error("cannot create a git repository at {path}")]
    Init {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: gix::Error,
    },
}

/// The outcome of merging one fetched issue ref.
pub type MergeResult = (IssueId, Result<MergeOutcome, StoreError>);

/// One intended change to an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set the title.
    Title(String),
    /// Replace the body text (merged character-wise with concurrent edits).
    Body(String),
    /// Set the status.
    Status(Status),
    /// Add a label.
    AddLabel(String),
    /// Remove a label.
    RemoveLabel(String),
    /// Add an assignee.
    AddAssignee(String),
    /// Remove an assignee.
    RemoveAssignee(String),
    /// Add a comment.
    Comment(String),
    /// Edit a comment.
    EditComment(EventId, String),
    /// Delete a comment.
    DeleteComment(EventId),
    /// Add a link.
    Link(Link),
    /// Remove a link.
    Unlink(Link),
    /// Set or clear a custom field.
    Field(String, Option<String>),
}

/// Fields of a new issue.
#[derive(Debug, Clone, Default)]
pub struct NewIssue {
    /// Title (required).
    pub title: String,
    /// Body.
    pub body: String,
    /// Initial status (default open).
    pub status: Option<Status>,
    /// Labels.
    pub labels: Vec<String>,
    /// Assignees.
    pub assignees: Vec<String>,
}

/// The result of writing events.
#[derive(Debug, Clone)]
pub struct Written {
    /// The issue.
    pub issue: IssueId,
    /// The events written (empty when every change was a no-op).
    pub events: Vec<EventId>,
    /// Compare-and-swap races lost and retried.
    pub retries: u32,
}

/// What a query selected ([`Repo::select`]).
#[derive(Debug)]
pub struct Selection {
    /// The issues kept, in the query's order.
    pub rows: Vec<IssueSummary>,
    /// How many matched before the limit.
    pub total: usize,
    /// Refs that could not be read: (ref name, why).
    pub damaged: Vec<(String, String)>,
    /// How many issues the store lists in all.
    pub issues: usize,
}

/// A local reposix repository.
pub struct Repo {
    store: GitEventStore,
}

/// The op kinds of a write for its commit message, a run of one kind
/// counted (`edit_body x61` for a large edit written as 61 changes).
fn op_summary(kinds: &[&str]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < kinds.len() {
        let run = kinds[i..].iter().take_while(|k| **k == kinds[i]).count();
        out.push(if run > 1 {
            format!("{} x{run}", kinds[i])
        } else {
            kinds[i].to_owned()
        });
        i += run;
    }
    out.join(", ")
}

fn sorted_unique(v: &[String]) -> Vec<String> {
    v.iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

impl Repo {
    /// Open the repository containing `path`.
    pub fn open(path: &Path) -> Result<Repo, RepoError> {
        Ok(Repo {
            store: GitEventStore::open(path)?,
        })
    }

    /// Create a git repository at `path` if there is none, and set up
    /// reposix's directory in it. Idempotent.
    pub fn init(path: &Path) -> Result<Repo, RepoError> {
        if gix::discover(path).is_err() {
            std::fs::create_dir_all(path).map_err(|source| RepoError::Io {
                path: path.display().to_string(),
                source,
            })?;
            gix::init(path).map_err(|source| RepoError::Init {
                path: path.display().to_string(),
                source,
            })?;
        }
        let repo = Repo::open(path)?;
        let dir = repo.reposix_dir();
        std::fs::create_dir_all(&dir).map_err(|source| RepoError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(repo)
    }

    /// The underlying store.
    pub fn store(&self) -> &GitEventStore {
        &self.store
    }

    /// `.git/reposix/`.
    pub fn reposix_dir(&self) -> PathBuf {
        self.store.reposix_dir()
    }

    fn io<T>(&self, path: &Path, r: std::io::Result<T>) -> Result<T, RepoError> {
        r.map_err(|source| RepoError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Resolve an issue id or unambiguous prefix (of the hyphenated or the
    /// plain hex form).
    pub fn resolve(&self, prefix: &str) -> Result<IssueId, RepoError> {
        if let Ok(id) = prefix.parse::<IssueId>() {
            return Ok(id);
        }
        let want = prefix.to_ascii_lowercase();
        let plain = want.replace('-', "");
        if plain.is_empty() || !plain.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::NotFound(prefix.to_owned()).into());
        }
        let matches: Vec<IssueId> = self
            .store
            .list_refs()?
            .into_iter()
            .filter_map(|r| r.issue)
            .filter(|id| {
                id.to_hyphenated().starts_with(&want)
                    || id.0.simple().to_string().starts_with(&plain)
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(StoreError::NotFound(prefix.to_owned()).into()),
            many => Err(StoreError::Ambiguous {
                prefix: prefix.to_owned(),
                candidates: many.iter().map(|i| i.to_string()).collect(),
            }
            .into()),
        }
    }

    /// Create an issue.
    pub fn create(&self, actor: &ActorId, new: NewIssue) -> Result<Written, RepoError> {
        let issue = IssueId::new_random();
        check_len("title", new.title.trim(), MAX_TITLE_BYTES)?;
        check_len("body", &new.body, MAX_BODY_BYTES)?;
        // A large body is written as several changes (`edit_in_changes`):
        // the first is the create's, the others follow as `edit_body`
        // events of the same write.
        let (changes, doc) = if new.body.is_empty() {
            (Vec::new(), None)
        } else {
            let mut doc =
                BodyDoc::load(issue, []).map_err(|e| RepoError::Rejected(e.to_string()))?;
            (doc.edit_in_changes(&new.body), Some(doc))
        };
        let mut changes = changes.into_iter();
        let wall_ms = crate::time::now_millis();
        let mut ops = Vec::new();
        // An agent's first event says whom it acts for, so every replica
        // sees the attribution of the create.
        if let Some(human) = self.on_behalf_of(actor)? {
            ops.push(Op::OnBehalfOf { human });
        }
        ops.push(Op::Create {
            title: new.title.trim().to_owned(),
            body: changes.next(),
            status: new.status.unwrap_or(Status::Open),
            labels: sorted_unique(&new.labels),
            assignees: sorted_unique(&new.assignees),
        });
        ops.extend(changes.map(|change| Op::EditBody { change }));
        let mut sealed = Vec::with_capacity(ops.len());
        let mut kinds = Vec::with_capacity(ops.len());
        let mut parents = vec![];
        for (lamport, op) in (1..).zip(ops) {
            let event = Event {
                v: op.since_version().max(EVENT_FORMAT_VERSION),
                issue,
                actor: actor.clone(),
                lamport,
                wall_ms,
                parents: std::mem::take(&mut parents),
                op,
            };
            event.validate()?;
            let (id, bytes) = event.seal();
            parents = vec![id];
            kinds.push(event.op.kind());
            sealed.push((id, bytes));
        }
        let summary = op_summary(&kinds);
        let ids = sealed.iter().map(|(id, _)| *id).collect();
        let appended = self.store.append(issue, &sealed, &summary)?;
        // A large body's state is cached from the document just made: the
        // first reader or writer loads the saved document instead of
        // applying the create's change (every character an operation).
        if let Some(doc) = doc.filter(|_| new.body.len() >= CACHE_MIN_BODY) {
            let cache = StateCache::new(&self.store);
            cache.snapshot_after_edit(issue, appended.commit, Folded::empty(issue), doc, &sealed);
        }
        Ok(Written {
            issue,
            events: ids,
            retries: appended.retries,
        })
    }

    /// Load an issue's log.
    pub fn load(&self, issue: IssueId) -> Result<IssueLog, RepoError> {
        Ok(self.store.load(issue)?)
    }

    /// The folded state of an issue (through the state cache: a deep
    /// issue costs what a short one does).
    pub fn show(&self, issue: IssueId) -> Result<IssueState, RepoError> {
        Ok(self.folded(issue)?.state)
    }

    /// The folded state of an issue for reading through: a deep issue's
    /// comments are read in place from the state cache ([`IssueView`]).
    pub fn show_view(&self, issue: IssueId) -> Result<IssueView, RepoError> {
        let (repo, refname, tip) = self.tip(issue)?;
        Ok(StateCache::for_reading(&self.store).view(&repo, &refname, issue, tip)?)
    }

    /// The folded state of an issue at its ref's tip, through the cache.
    fn folded(&self, issue: IssueId) -> Result<Cached, RepoError> {
        let (repo, refname, tip) = self.tip(issue)?;
        Ok(StateCache::for_reading(&self.store).get(&repo, &refname, issue, tip)?)
    }

    /// An issue's ref and its tip.
    fn tip(&self, issue: IssueId) -> Result<(gix::Repository, String, Oid), RepoError> {
        let repo = self.store.repo();
        let refname = layout::issue_ref(issue);
        let tip = self
            .store
            .read_ref(&repo, &refname)?
            .ok_or_else(|| StoreError::NotFound(issue.to_string()))?;
        Ok((repo, refname, tip))
    }

    /// Apply changes to an issue as `actor`. Changes that would not change
    /// anything (a label already present, the same title) write nothing.
    pub fn apply(
        &self,
        issue: IssueId,
        actor: &ActorId,
        changes: &[Change],
    ) -> Result<Written, RepoError> {
        // A `blocks` or `parent` link that would close a cycle is refused
        // (checked against every issue known here, through the index).
        let typed: Vec<&Link> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Link(l) => crate::crdt::deps::edge_of(issue, l).map(|_| l),
                _ => None,
            })
            .collect();
        if !typed.is_empty() {
            let listing = self.list()?;
            for link in typed {
                crate::repo::ready::check_link(&listing.issues, issue, link)?;
            }
        }
        let cache = StateCache::new(&self.store);
        let repo = self.store.repo();
        let refname = layout::issue_ref(issue);
        let tip = self
            .store
            .read_ref(&repo, &refname)?
            .ok_or_else(|| StoreError::NotFound(issue.to_string()))?;
        // An agent acting for someone says so in the issue before its
        // first write there (and when the human changes).
        let acts_for = self.on_behalf_of(actor)?;
        // Comments need no state: only the heads and clock, which the
        // cache's append records hold (no fold, no snapshot decoded).
        let comments_only =
            acts_for.is_none() && changes.iter().all(|c| matches!(c, Change::Comment(_)));
        // A body edit on an open fold keeps the document it made, so that
        // the state after the append is cached without loading the
        // document and applying the change again (a large body's next
        // reader then loads the saved document alone).
        let (ops, base, edited) = match cache.tip_info(issue, tip).filter(|_| comments_only) {
            Some(info) => {
                let mut ops = Vec::new();
                for change in changes {
                    if let Change::Comment(text) = change {
                        ops.push(comment_op(text)?);
                    }
                }
                (ops, info, None)
            }
            None => {
                let mut cached = cache.get(&repo, &refname, issue, tip)?;
                let loaded;
                let basis = match (&cached.events, &cached.folded) {
                    (Some(set), _) => Basis::Set(set),
                    (None, Some(f)) => Basis::Folded(f),
                    (None, None) => {
                        loaded = self.store.load_commit(&repo, &refname, issue, tip)?;
                        Basis::Set(&loaded)
                    }
                };
                let (mut ops, doc) = ops_for(issue, &cached.state, &basis, changes)?;
                if let Some(human) = acts_for {
                    if !ops.is_empty() && cached.state.on_behalf_of.get(actor) != Some(&human) {
                        ops.insert(0, Op::OnBehalfOf { human });
                    }
                }
                let base = basis.tip_info();
                let on_fold = matches!(basis, Basis::Folded(_));
                let edited = doc
                    .filter(|_| on_fold)
                    .and_then(|doc| cached.folded.take().map(|f| (f, doc)));
                (ops, base, edited)
            }
        };
        if ops.is_empty() {
            return Ok(Written {
                issue,
                events: vec![],
                retries: 0,
            });
        }
        let mut parents = base.heads.clone();
        let wall_ms = crate::time::now_millis();
        let mut sealed = Vec::with_capacity(ops.len());
        let mut lamport = base.lamport;
        for op in ops {
            // Valid clocks are bounded by the length of the longest causal
            // chain (refs-format.md, section 5), so this cannot overflow;
            // checked all the same.
            lamport = lamport.checked_add(1).ok_or_else(|| {
                RepoError::Rejected("the issue's Lamport clock is exhausted".into())
            })?;
            let event = Event {
                v: op.since_version(),
                issue,
                actor: actor.clone(),
                lamport,
                wall_ms,
                parents: std::mem::take(&mut parents),
                op,
            };
            event.validate()?;
            let (id, bytes) = event.seal();
            parents = vec![id];
            sealed.push((id, bytes, event.op.kind()));
        }
        let summary = op_summary(&sealed.iter().map(|(_, _, k)| *k).collect::<Vec<_>>());
        let pairs: Vec<_> = sealed.iter().map(|(id, b, _)| (*id, b.clone())).collect();
        let appended = self.store.append(issue, &pairs, &summary)?;
        if !appended.already_present && self.store.parents_of(&repo, appended.commit) == [tip] {
            let after = TipInfo {
                heads: parents,
                lamport,
            };
            let snapshot = match edited {
                Some((folded, doc)) => {
                    cache.snapshot_after_edit(issue, appended.commit, folded, doc, &pairs)
                }
                None => false,
            };
            let bytes: Vec<Vec<u8>> = pairs.into_iter().map(|(_, b)| b).collect();
            if !snapshot && cache.record_append(issue, tip, appended.commit, &after, &bytes) {
                // Best effort, as the record: a failure costs a fold later.
                let _ = cache.get(&repo, &refname, issue, appended.commit);
            }
        }
        crate::store::maintenance::after_write(&self.store);
        Ok(Written {
            issue,
            events: sealed.iter().map(|(id, _, _)| *id).collect(),
            retries: appended.retries,
        })
    }

    /// Merge every issue ref found under `prefix` (e.g. refs fetched by
    /// plain git into a side namespace) into the local issue refs. Damaged
    /// foreign logs are reported per issue and leave the local ref as it was.
    pub fn merge_refs_under(&self, prefix: &str) -> Result<Vec<MergeResult>, RepoError> {
        Ok(self
            .store
            .list_refs_under(prefix)?
            .into_iter()
            .filter_map(|r| Some((r.issue?, r.tip)))
            .map(|(issue, tip)| (issue, self.store.merge_tip(issue, tip)))
            .collect())
    }

    /// List issues through the index.
    pub fn list(&self) -> Result<Listing, RepoError> {
        Ok(Index::new(&self.store).list(false)?)
    }

    /// [`Repo::list`] with bodies filled in, for text search.
    pub fn list_with_text(&self) -> Result<Listing, RepoError> {
        Ok(Index::new(&self.store).list_with_text(false)?)
    }
}

/// What the command line reads through a repository: listings for a
/// query, and git's configuration.
impl Repo {
    /// The index's listing for `query`: with bodies when it searches text.
    pub fn list_for(&self, query: &query::Query) -> Result<Listing, RepoError> {
        if query.needs_text() {
            self.list_with_text()
        } else {
            self.list()
        }
    }

    /// The issues `query` selects, in its order, at most its limit. A query
    /// that filters by status alone and sorts by time or status is
    /// answered from the index's key table when no ref moved since the
    /// index was written (only the rows shown are decoded); any other
    /// through a full listing.
    pub fn select(
        &self,
        query: &query::Query,
        env: &query::Env<'_>,
    ) -> Result<Selection, RepoError> {
        if query.by_keys() {
            if let Some(keyed) = Index::new(&self.store).keyed() {
                let page = query.select_keys(&keyed.keys);
                let rows: Result<Vec<_>, _> = page.rows.iter().map(|k| keyed.summary(k)).collect();
                match rows {
                    Ok(rows) => {
                        return Ok(Selection {
                            rows,
                            total: page.total,
                            damaged: keyed.damaged(),
                            issues: keyed.keys.len(),
                        });
                    }
                    // A key that names another row: the index is damaged;
                    // rebuilt from the refs (and rewritten) below.
                    Err(_) => {
                        Index::new(&self.store).list(true)?;
                    }
                }
            }
        }
        let listing = self.list_for(query)?;
        let issues = listing.issues.len();
        let page = query.select_owned(listing.issues, env);
        Ok(Selection {
            rows: page.rows,
            total: page.total,
            damaged: listing.damaged,
            issues,
        })
    }

    /// The actor git's identity names, as git-bug and grite do:
    /// `user.email`, else `user.name` (spaces become `-`), when it is a
    /// valid actor name.
    pub fn git_identity(&self) -> Option<ActorId> {
        let git = self.store.repo();
        let config = git.config_snapshot();
        ["user.email", "user.name"].iter().find_map(|key| {
            let v = config.string(*key)?.to_string();
            let v = v.trim().replace(' ', "-");
            ActorId::new(&v).ok()
        })
    }

    /// git's `core.editor`, when set and not blank.
    pub fn git_editor(&self) -> Option<String> {
        let git = self.store.repo();
        let v = git.config_snapshot().string("core.editor")?.to_string();
        Some(v).filter(|v| !v.trim().is_empty())
    }
}
