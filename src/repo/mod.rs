//! The local issue repository: turns a user's intent into events against
//! the current state of an issue and appends them; reads, lists, checks.
//!
//! This is what the CLI (and any library user) calls. It owns no state of
//! its own beyond the git repository: actors live in `.git/reposix/`, the
//! listing index is a cache, everything else is in the refs.

pub mod query;
pub mod ready;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::crdt::body::BodyDoc;
use crate::crdt::incremental::Folded;
use crate::crdt::{BodyView, EventSet, FoldError, IssueState, Link};
use crate::event::{
    check_len, check_name, ActorId, DecodeError, Event, EventId, IssueId, Op, Status,
    EVENT_FORMAT_VERSION, MAX_BODY_BYTES, MAX_COMMENT_BYTES, MAX_FIELD_VALUE_BYTES,
    MAX_TITLE_BYTES,
};
use crate::store::cache::{Cached, StateCache, TipInfo};
use crate::store::index::{Index, Listing};
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

/// A problem `fsck` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The ref (or file) concerned.
    pub at: String,
    /// What is wrong.
    pub what: String,
}

/// What `fsck` found.
#[derive(Debug, Default, serde::Serialize)]
pub struct FsckReport {
    /// Issue refs checked.
    pub refs: usize,
    /// Commits checked.
    pub commits: usize,
    /// Events checked.
    pub events: usize,
    /// Damage found.
    pub problems: Vec<Problem>,
    /// Findings that are not damage: ref lock files (a running writer, or a
    /// killed one whose lock is cleared automatically once stale).
    pub warnings: Vec<Problem>,
    /// Issue refs by the tree layout version of their tip (`format`
    /// marker): layout-1 tips are upgraded by their next write.
    pub layouts: std::collections::BTreeMap<u32, usize>,
}

impl FsckReport {
    /// The layout mix in words, e.g. `tree layouts: 3 refs at 1, 7 at 2`.
    pub fn layout_summary(&self) -> String {
        let parts: Vec<String> = self
            .layouts
            .iter()
            .map(|(v, n)| format!("{n} at {v}"))
            .collect();
        format!("tree layouts (format marker): {}", parts.join(", "))
    }
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

/// A local reposix repository.
pub struct Repo {
    store: GitEventStore,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
        self.store.git_dir().join("reposix")
    }

    fn io<T>(&self, path: &Path, r: std::io::Result<T>) -> Result<T, RepoError> {
        r.map_err(|source| RepoError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Known actors (from `.git/reposix/actors`), sorted.
    pub fn actors(&self) -> Result<Vec<ActorId>, RepoError> {
        let path = self.reposix_dir().join("actors");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return self.io(&path, Err(e)),
        };
        let mut out: Vec<ActorId> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| ActorId::new(l.trim()))
            .collect::<Result<_, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Register an actor. Returns false if it already existed.
    pub fn add_actor(&self, actor: &ActorId) -> Result<bool, RepoError> {
        let mut all = self.actors()?;
        if all.contains(actor) {
            return Ok(false);
        }
        all.push(actor.clone());
        all.sort();
        let text: String = all.iter().map(|a| format!("{a}\n")).collect();
        self.write_file("actors", &text)?;
        Ok(true)
    }

    /// The default actor (`.git/reposix/actor`), if set.
    pub fn default_actor(&self) -> Result<Option<ActorId>, RepoError> {
        let path = self.reposix_dir().join("actor");
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(ActorId::new(t.trim())?)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => self.io(&path, Err(e)),
        }
    }

    /// Make `actor` the default (registering it if needed).
    pub fn use_actor(&self, actor: &ActorId) -> Result<(), RepoError> {
        self.add_actor(actor)?;
        self.write_file("actor", &format!("{actor}\n"))
    }

    /// The human each agent acts for (`.git/reposix/on-behalf-of`, one
    /// `AGENT HUMAN` per line): local configuration, written into an
    /// issue's log as an `on_behalf_of` event by the agent's first write
    /// there (see [`Repo::apply`]).
    pub fn attributions(&self) -> Result<BTreeMap<ActorId, ActorId>, RepoError> {
        let path = self.reposix_dir().join("on-behalf-of");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return self.io(&path, Err(e)),
        };
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad =
                || RepoError::Rejected(format!("{}: malformed line {line:?}", path.display()));
            let (agent, human) = line.trim().split_once(' ').ok_or_else(bad)?;
            out.insert(
                ActorId::new(agent).map_err(|_| bad())?,
                ActorId::new(human.trim()).map_err(|_| bad())?,
            );
        }
        Ok(out)
    }

    /// The human `agent` acts for, if any.
    pub fn on_behalf_of(&self, agent: &ActorId) -> Result<Option<ActorId>, RepoError> {
        Ok(self.attributions()?.remove(agent))
    }

    /// Record that `agent` acts for `human` (registering the agent).
    /// Returns false if it already did.
    pub fn set_on_behalf_of(&self, agent: &ActorId, human: &ActorId) -> Result<bool, RepoError> {
        if agent == human {
            return Err(RepoError::Rejected(format!(
                "{agent} cannot act on behalf of itself"
            )));
        }
        self.add_actor(agent)?;
        let mut all = self.attributions()?;
        if all.get(agent) == Some(human) {
            return Ok(false);
        }
        all.insert(agent.clone(), human.clone());
        let text: String = all.iter().map(|(a, h)| format!("{a} {h}\n")).collect();
        self.write_file("on-behalf-of", &text)?;
        Ok(true)
    }

    fn write_file(&self, name: &str, text: &str) -> Result<(), RepoError> {
        let path = self.reposix_dir().join(name);
        self.io(
            &path,
            crate::store::fs::write_atomic(
                &path,
                text.as_bytes(),
                crate::store::fs::Durability::Durable,
            ),
        )
    }

    /// Configured tracker backends: name -> spec (`.git/reposix/backends`,
    /// one `NAME SPEC` per line; local configuration like git remotes).
    pub fn backends(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::tracker::BackendSpec>, RepoError> {
        let path = self.reposix_dir().join("backends");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return self.io(&path, Err(e)),
        };
        let mut out = std::collections::BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (name, spec) = line.trim().split_once(' ').ok_or_else(|| {
                RepoError::Rejected(format!("{}: malformed line {line:?}", path.display()))
            })?;
            let spec = crate::tracker::BackendSpec::parse(spec.trim())
                .map_err(|e| RepoError::Rejected(format!("{}: {e}", path.display())))?;
            out.insert(name.to_owned(), spec);
        }
        Ok(out)
    }

    /// Add (or replace) a backend.
    pub fn add_backend(
        &self,
        name: &str,
        spec: &crate::tracker::BackendSpec,
    ) -> Result<(), RepoError> {
        check_name("backend name", name)?;
        let mut all = self.backends()?;
        all.insert(name.to_owned(), spec.clone());
        self.write_backends(&all)
    }

    /// Remove a backend; false if there was none by that name.
    pub fn remove_backend(&self, name: &str) -> Result<bool, RepoError> {
        let mut all = self.backends()?;
        let had = all.remove(name).is_some();
        self.write_backends(&all)?;
        Ok(had)
    }

    fn write_backends(
        &self,
        all: &std::collections::BTreeMap<String, crate::tracker::BackendSpec>,
    ) -> Result<(), RepoError> {
        let text: String = all
            .iter()
            .map(|(n, s)| format!("{n} {}\n", s.to_spec_string()))
            .collect();
        self.write_file("backends", &text)
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
        let body = if new.body.is_empty() {
            None
        } else {
            BodyDoc::load(issue, [])
                .map_err(|e| RepoError::Rejected(e.to_string()))?
                .edit(&new.body)
        };
        let wall_ms = now_ms();
        let mut ops = Vec::new();
        // An agent's first event says whom it acts for, so every replica
        // sees the attribution of the create.
        if let Some(human) = self.on_behalf_of(actor)? {
            ops.push(Op::OnBehalfOf { human });
        }
        ops.push(Op::Create {
            title: new.title.trim().to_owned(),
            body,
            status: new.status.unwrap_or(Status::Open),
            labels: sorted_unique(&new.labels),
            assignees: sorted_unique(&new.assignees),
        });
        let mut sealed = Vec::with_capacity(ops.len());
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
            sealed.push((id, bytes));
        }
        let summary = if sealed.len() > 1 {
            "on_behalf_of, create"
        } else {
            "create"
        };
        let ids = sealed.iter().map(|(id, _)| *id).collect();
        let appended = self.store.append(issue, &sealed, summary)?;
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

    /// The folded state of an issue at its ref's tip, through the cache.
    fn folded(&self, issue: IssueId) -> Result<Cached, RepoError> {
        let repo = self.store.repo();
        let refname = layout::issue_ref(issue);
        let tip = self
            .store
            .read_ref(&repo, &refname)?
            .ok_or_else(|| StoreError::NotFound(issue.to_string()))?;
        Ok(StateCache::for_reading(&self.store).get(&repo, &refname, issue, tip)?)
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
        let (ops, base) = match cache.tip_info(issue, tip).filter(|_| comments_only) {
            Some(info) => {
                let mut ops = Vec::new();
                for change in changes {
                    if let Change::Comment(text) = change {
                        ops.push(comment_op(text)?);
                    }
                }
                (ops, info)
            }
            None => {
                let cached = cache.get(&repo, &refname, issue, tip)?;
                let loaded;
                let basis = match (&cached.events, &cached.folded) {
                    (Some(set), _) => Basis::Set(set),
                    (None, Some(f)) => Basis::Folded(f),
                    (None, None) => {
                        loaded = self.store.load_commit(&repo, &refname, issue, tip)?;
                        Basis::Set(&loaded)
                    }
                };
                let mut ops = ops_for(issue, &cached.state, &basis, changes)?;
                if let Some(human) = acts_for {
                    if !ops.is_empty() && cached.state.on_behalf_of.get(actor) != Some(&human) {
                        ops.insert(0, Op::OnBehalfOf { human });
                    }
                }
                (ops, basis.tip_info())
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
        let wall_ms = now_ms();
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
        let summary = sealed
            .iter()
            .map(|(_, _, k)| *k)
            .collect::<Vec<_>>()
            .join(", ");
        let pairs: Vec<_> = sealed.iter().map(|(id, b, _)| (*id, b.clone())).collect();
        let appended = self.store.append(issue, &pairs, &summary)?;
        if !appended.already_present && self.store.parents_of(&repo, appended.commit) == [tip] {
            let after = TipInfo {
                heads: parents,
                lamport,
            };
            let bytes: Vec<Vec<u8>> = pairs.into_iter().map(|(_, b)| b).collect();
            cache.record_append(issue, tip, appended.commit, &after, &bytes);
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

    /// Check every issue ref, every commit in its history, and every event.
    pub fn fsck(&self) -> Result<FsckReport, RepoError> {
        let mut report = FsckReport::default();
        let repo = self.store.repo();
        for r in self.store.list_refs()? {
            report.refs += 1;
            let Some(issue) = r.issue else {
                report.problems.push(Problem {
                    at: r.refname.clone(),
                    what: "ref under refs/reposix/issues/ whose name is not an issue id".into(),
                });
                continue;
            };
            match self.fsck_issue(&repo, &r.refname, issue, r.tip, &mut report) {
                Ok(()) => {}
                Err(e) => report.problems.push(Problem {
                    at: r.refname.clone(),
                    what: crate::error_chain(&e),
                }),
            }
        }
        let locks = self.store.git_dir().join(layout::ISSUE_REF_PREFIX);
        if let Ok(dir) = std::fs::read_dir(&locks) {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".lock") {
                    // Not damage: git renames a lock into place atomically,
                    // so the ref beside it is intact either way.
                    report.warnings.push(Problem {
                        at: entry.path().display().to_string(),
                        what: "ref lock file present (a writer is running, or one was killed: it is cleared automatically after 10 s)".into(),
                    });
                }
            }
        }
        // Dependency cycles closed by concurrent writes: not damage (the
        // fold breaks them deterministically), but worth a look.
        if let Ok(listing) = self.list() {
            for b in crate::repo::ready::dep_graphs(&listing.issues).broken {
                let cycle: Vec<String> = b.cycle.iter().map(IssueId::short).collect();
                report.warnings.push(Problem {
                    at: layout::issue_ref(b.edge.from),
                    what: format!(
                        "{} cycle {}: edge {} → {} ignored",
                        b.graph.as_str(),
                        cycle.join(" → "),
                        b.edge.from.short(),
                        b.edge.to.short()
                    ),
                });
            }
        }
        Ok(report)
    }

    fn fsck_issue(
        &self,
        repo: &gix::Repository,
        refname: &str,
        issue: IssueId,
        tip: Oid,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        let events = self.store.load_commit(repo, refname, issue, tip)?;
        // Events that break the clock rule: damage, one problem each.
        for (id, why) in events.invalid() {
            report.problems.push(Problem {
                at: refname.to_owned(),
                what: format!("invalid event {id}: {why}"),
            });
        }
        events.fold(issue).map_err(|source| StoreError::Fold {
            refname: refname.to_owned(),
            source,
        })?;
        report.events += events.len();
        *report
            .layouts
            .entry(self.store.layout_of(repo, refname, tip)?)
            .or_default() += 1;
        // Walk the history: every commit must have a valid layout and hold
        // a superset of its parents' events (same blobs), which makes every
        // commit's events a subset of the tip's, verified above. Each pair
        // is compared by a tree diff that reads (and layout-checks) only
        // the subtrees that differ; a commit without parents is read whole.
        let mut visited = std::collections::HashSet::new();
        let mut stack = vec![tip];
        while let Some(c) = stack.pop() {
            if !visited.insert(c) {
                continue;
            }
            report.commits += 1;
            let commit = repo.find_commit(c).map_err(|source| StoreError::Git {
                refname: refname.to_owned(),
                what: format!("reading commit {c}"),
                source,
            })?;
            let parents: Vec<Oid> = commit.parent_ids().map(|p| p.detach()).collect();
            if parents.is_empty() {
                self.store.event_ids(repo, refname, c)?;
            }
            for p in parents {
                let diff = self.store.diff_commits(repo, refname, p, c)?;
                if let Some(id) = diff.lost {
                    return Err(StoreError::Damaged {
                        refname: refname.to_owned(),
                        object: c.to_string(),
                        why: format!("commit drops event {} its parent {p} has", id.short()),
                    });
                }
                stack.push(p);
            }
        }
        Ok(())
    }
}

/// What writers read besides the state: the whole event set, or the open
/// fold of a local issue (the same answers, without the events).
enum Basis<'a> {
    Set(&'a EventSet),
    Folded(&'a Folded),
}

impl Basis<'_> {
    fn label_tags(&self) -> std::collections::BTreeMap<String, Vec<EventId>> {
        match self {
            Basis::Set(s) => s.label_tags(),
            Basis::Folded(f) => f.label_tags(),
        }
    }
    fn assignee_tags(&self) -> std::collections::BTreeMap<String, Vec<EventId>> {
        match self {
            Basis::Set(s) => s.assignee_tags(),
            Basis::Folded(f) => f.assignee_tags(),
        }
    }
    fn link_tags(&self) -> std::collections::BTreeMap<Link, Vec<EventId>> {
        match self {
            Basis::Set(s) => s.link_tags(),
            Basis::Folded(f) => f.link_tags(),
        }
    }
    fn body(&self, issue: IssueId) -> Result<BodyView, FoldError> {
        match self {
            Basis::Set(s) => s.body(issue),
            Basis::Folded(f) => f.body_set().body(issue),
        }
    }
    fn tip_info(&self) -> TipInfo {
        match self {
            Basis::Set(s) => TipInfo {
                heads: s.heads(),
                lamport: s.max_lamport(),
            },
            Basis::Folded(f) => TipInfo {
                heads: f.heads(),
                lamport: f.max_lamport(),
            },
        }
    }
}

fn comment_op(text: &str) -> Result<Op, RepoError> {
    if text.trim().is_empty() {
        return Err(RepoError::Rejected("a comment cannot be empty".into()));
    }
    check_len("comment", text, MAX_COMMENT_BYTES)?;
    Ok(Op::AddComment {
        body: text.to_owned(),
    })
}

/// Turn intended changes into operations against the current state.
fn ops_for(
    issue: IssueId,
    state: &IssueState,
    basis: &Basis<'_>,
    changes: &[Change],
) -> Result<Vec<Op>, RepoError> {
    let mut ops = Vec::new();
    let labels = basis.label_tags();
    let assignees = basis.assignee_tags();
    let links = basis.link_tags();
    let mut body: Option<BodyView> = None;
    for change in changes {
        match change {
            Change::Title(t) => {
                let t = t.trim();
                check_len("title", t, MAX_TITLE_BYTES)?;
                if t != state.title {
                    ops.push(Op::SetTitle {
                        title: t.to_owned(),
                    });
                }
            }
            Change::Body(text) => {
                check_len("body", text, MAX_BODY_BYTES)?;
                let view = match &mut body {
                    Some(v) => v,
                    None => body.insert(
                        basis
                            .body(issue)
                            .map_err(|e| RepoError::Rejected(crate::error_chain(&e)))?,
                    ),
                };
                if view.awaiting_create() {
                    if *text == view.text() {
                        continue;
                    }
                    return Err(RepoError::Rejected(format!(
                        "the body of {issue} cannot be edited in this clone yet: the issue was \
                         created in another clone and imported here from the tracker before \
                         its history arrived; run `reposix sync` (or `git fetch` its refs) first"
                    )));
                }
                ops.extend(view.edit(text));
            }
            Change::Status(s) => {
                if *s != state.status {
                    ops.push(Op::SetStatus { status: *s });
                }
            }
            Change::AddLabel(l) => {
                check_name("label", l)?;
                if !labels.contains_key(l) {
                    ops.push(Op::AddLabel { label: l.clone() });
                }
            }
            Change::RemoveLabel(l) => {
                if let Some(tags) = labels.get(l) {
                    ops.push(Op::RemoveLabel {
                        label: l.clone(),
                        observed: tags.clone(),
                    });
                }
            }
            Change::AddAssignee(a) => {
                check_name("assignee", a)?;
                if !assignees.contains_key(a) {
                    ops.push(Op::AddAssignee {
                        assignee: a.clone(),
                    });
                }
            }
            Change::RemoveAssignee(a) => {
                if let Some(tags) = assignees.get(a) {
                    ops.push(Op::RemoveAssignee {
                        assignee: a.clone(),
                        observed: tags.clone(),
                    });
                }
            }
            Change::Comment(text) => ops.push(comment_op(text)?),
            Change::EditComment(id, text) => {
                check_len("comment", text, MAX_COMMENT_BYTES)?;
                let Some(c) = state.comments.iter().find(|c| c.id == *id) else {
                    return Err(RepoError::Rejected(format!(
                        "no live comment {}",
                        id.short()
                    )));
                };
                if c.body != *text {
                    ops.push(Op::EditComment {
                        comment: *id,
                        body: text.clone(),
                    });
                }
            }
            Change::DeleteComment(id) => {
                if !state.comments.iter().any(|c| c.id == *id) {
                    return Err(RepoError::Rejected(format!(
                        "no live comment {}",
                        id.short()
                    )));
                }
                ops.push(Op::DeleteComment { comment: *id });
            }
            Change::Link(link) => {
                check_name("link kind", &link.kind)?;
                if link.target == issue {
                    return Err(RepoError::Rejected("an issue cannot link to itself".into()));
                }
                if !links.contains_key(link) {
                    ops.push(Op::AddLink {
                        kind: link.kind.clone(),
                        target: link.target,
                    });
                }
            }
            Change::Unlink(link) => {
                if let Some(tags) = links.get(link) {
                    ops.push(Op::RemoveLink {
                        kind: link.kind.clone(),
                        target: link.target,
                        observed: tags.clone(),
                    });
                }
            }
            Change::Field(name, value) => {
                check_name("field name", name)?;
                if let Some(v) = value {
                    check_len("field value", v, MAX_FIELD_VALUE_BYTES)?;
                }
                if state.fields.get(name) != value.as_ref() {
                    ops.push(Op::SetField {
                        name: name.clone(),
                        value: value.clone(),
                    });
                }
            }
        }
    }
    Ok(ops)
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
