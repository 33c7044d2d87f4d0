//! Projection between the event logs and a tracker: import and export.
//!
//! The model is stated in `refs-format.md` (section 6b); in short:
//!
//! - Import lists what changed since the backend's cursor (kept in
//!   `refs/reposix/backends/<key>`) and records each remote revision as an
//!   `observe` event with fixed envelope values, so the same revision
//!   imported by any clone is the same event, plus the tracker's creation
//!   time (`observe_created`, fixed too). The tracker's *body text* enters
//!   the body document as a `sync_body` event: a change derived
//!   deterministically from the newest sync point, so clones that import
//!   the same revision write the same change, which automerge keeps once.
//! - The CRDT orders observations of title, status, labels and assignees
//!   against local events by causality (`crate::crdt`), which is what lets
//!   a later local edit win over an older tracker value however the clones'
//!   clocks compare.
//! - Export computes, per issue, the patch between the folded state and the
//!   last observation of the tracker, sends it with the tracker's
//!   concurrency token, and records the result: the new revision
//!   (`observe`), an `exported` record whose ancestors are the events the
//!   write carried, and a `sync_body` naming the document heads whose text
//!   was sent (exported text is never diffed back in). A conflict
//!   re-imports that issue, re-folds and retries; only when the retries run
//!   out is it reported, per issue.
//! - Creating a remote issue (or comment) is preceded by an intent record
//!   and carries a marker, so a run killed between the remote write and the
//!   local record finds the remote object by its marker instead of creating
//!   it twice. Remote issues map to local issues by binding first (a marker
//!   a tracker user deleted changes nothing), then by marker, then by an id
//!   derived from the remote identity.
//! - A remote issue or comment the tracker no longer has is recorded
//!   (`observe_gone`): the issue shows it, and export leaves it alone.
//!
//! Files: this one holds the projection's state and what import and
//! export share (bindings, observations, the cursor); `import.rs`,
//! `export.rs` and `comments.rs` hold the three halves of the work.

mod comments;
mod export;
mod import;
mod links;
mod twins;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::crdt::{remote_comment_id, BodyView, EventSet, IssueState};
use crate::event::{ActorId, Event, EventId, IssueId, Op};
use crate::store::bulk::BulkWriter;
use crate::store::fs::{write_atomic, Durability};
use crate::store::index::Index;
use crate::store::{EventStore, GitEventStore, StoreError};
use crate::time;
use crate::tracker::{
    Backend, BackendError, BackendSpec, IssuePatch, NewRemoteIssue, RemoteComment, RemoteIssue,
};

/// Retries of one issue's export after conflicts.
const EXPORT_RETRIES: u32 = 6;

/// Attempts at a create whose outcome was uncertain (5xx, timeout).
const CREATE_ATTEMPTS: u32 = 4;

/// Two creates of one issue this close together (seconds) are a race
/// between replicas, not a copy a tracker user made: the later creator
/// looks this far back for the earlier one, and an importer binds a
/// remote issue whose marker names an issue bound elsewhere to that issue
/// (a twin) only if the two were created this close together.
const TWIN_WINDOW_SECS: u64 = 60;

/// Whether a failed write may nevertheless have been applied.
fn uncertain(e: &BackendError) -> bool {
    match e {
        BackendError::Http { status, .. } => *status >= 500,
        BackendError::Transport { .. } | BackendError::Exhausted { .. } => true,
        _ => false,
    }
}

/// Errors from a projection run.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The tracker failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A remote issue cannot be folded together with local events.
    #[error("issue {issue}: {why}")]
    Fold {
        /// The issue.
        issue: IssueId,
        /// Why.
        why: String,
    },
}

/// What an import did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ImportReport {
    /// Remote issues listed.
    pub listed: usize,
    /// Revisions recorded (new observations).
    pub observed: usize,
    /// Local issues created from the tracker.
    pub new_issues: usize,
    /// Comment versions recorded.
    pub comments: usize,
    /// Remote issues and comments found deleted on the tracker.
    pub gone: usize,
    /// Local links added or removed because a tracker user added or
    /// removed a relation between two bound issues.
    pub links: usize,
    /// Tracker relations not imported: they would close a cycle of
    /// `blocks` or `parent` with the local links.
    pub links_refused: usize,
    /// The cursor after the run.
    pub cursor: Option<String>,
}

/// What an export did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ExportReport {
    /// Remote issues created.
    pub created: usize,
    /// Remote issues updated.
    pub updated: usize,
    /// Interrupted creates found by marker and bound.
    pub recovered: usize,
    /// Comments created, edited or deleted.
    pub comments: usize,
    /// Conflicts answered by re-import and retry.
    pub conflicts_retried: usize,
    /// Issues skipped because their log has not moved since they were last
    /// exported in step with the tracker.
    pub unchanged: usize,
    /// Issues found deleted on the tracker while exporting (recorded; they
    /// are not exported again).
    pub gone: usize,
    /// Local comments the tracker cannot hold (no comments API), which stay
    /// local.
    pub comments_local_only: usize,
    /// Events of comments written on a merged copy (refs-format.md 6a)
    /// written again on the issue it was merged into, where the tracker
    /// cannot carry them (no comments API).
    pub comments_moved: usize,
    /// Relations (typed links) added to or removed from the tracker.
    pub links: usize,
    /// Typed links of exported issues that stay local: the tracker has no
    /// relation for their kind (or does not offer it here), or their other
    /// end is not on the tracker (yet).
    pub links_local_only: usize,
    /// Issues the tracker moved elsewhere (a GitHub transfer): (issue,
    /// where to). Recorded as gone here.
    pub moved: Vec<(String, String)>,
    /// Values the tracker refused (a forbidden label, a login it will not
    /// assign, a body over its limit): (issue, what). They are not sent
    /// again until they change locally.
    pub refused: Vec<(String, String)>,
    /// Second copies of issues on the tracker (twins, refs-format.md
    /// section 6a) deleted there, their comments moved to the copy kept.
    pub twins_retired: usize,
    /// Twins a tracker that cannot delete issues keeps: (issue, the twin's
    /// remote id, the one kept). Someone has to delete them by hand.
    pub twins_left: Vec<(IssueId, String, String)>,
    /// Issues that could not be exported: (issue, why).
    pub failed: Vec<(String, String)>,
}

/// A projection of one repository onto one tracker.
pub struct Projection<'a> {
    store: &'a GitEventStore,
    backend: &'a dyn Backend,
    key: String,
    backend_actor: ActorId,
    actor: ActorId,
    progress: &'a dyn Fn(&str),
    /// Values the tracker refused, per issue (loaded on first export).
    refused: std::cell::RefCell<BTreeMap<String, Vec<Refused>>>,
    refused_dirty: std::cell::Cell<bool>,
    /// Links and bindings for projecting typed links (built by the first
    /// export that needs it, dropped by each import).
    link_run: std::cell::RefCell<Option<links::LinkRun>>,
    /// Remote id -> the created-here (not derived) local issues bound to
    /// it, built by the first export that needs it and kept up to date with
    /// the creates of the run; dropped at the start of each export.
    shared: std::cell::RefCell<Option<HashMap<String, BTreeSet<IssueId>>>>,
}

impl<'a> Projection<'a> {
    /// A projection acting as `actor` (who records exports), reporting
    /// progress lines through `progress`.
    pub fn new(
        store: &'a GitEventStore,
        backend: &'a dyn Backend,
        actor: ActorId,
        progress: &'a dyn Fn(&str),
    ) -> Projection<'a> {
        let spec = BackendSpec {
            kind: backend.kind(),
            address: backend.instance(),
        };
        let key = spec.to_spec_string();
        let hash = blake3::hash(key.as_bytes()).to_hex();
        let backend_actor = ActorId::new(&format!("{}@{}", backend.kind(), &hash[..8]))
            .expect("BUG: kind@hex is a valid actor name");
        let mut p = Projection {
            store,
            backend,
            key,
            backend_actor,
            actor,
            progress,
            refused: Default::default(),
            refused_dirty: Default::default(),
            link_run: Default::default(),
            shared: Default::default(),
        };
        *p.refused.get_mut() = p.load_refused();
        p
    }

    /// The backend instance key (`<kind>::<address>`) used in events.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The ref holding this backend's cursor.
    pub fn state_ref(&self) -> String {
        let hash = blake3::hash(self.key.as_bytes()).to_hex();
        format!(
            "refs/reposix/backends/{}-{}",
            self.backend.kind(),
            &hash[..16]
        )
    }

    fn trailers(&self) -> [(&str, &str); 1] {
        [("Reposix-Origin", self.key.as_str())]
    }

    fn chain(&self, remote_id: &str) -> (String, String) {
        (self.key.clone(), remote_id.to_owned())
    }

    /// Remote id -> local issue, for every issue bound to this backend (from
    /// the listing index, which notices refs moved by any means), and the
    /// remote ids whose issue the tracker reported gone.
    fn bindings(&self) -> Result<Bindings, ProjectError> {
        let listing = Index::new(self.store).list(false)?;
        let mut out = Bindings::default();
        for issue in listing.issues {
            for (backend, remote_id, created_at) in issue.remote_created {
                if backend == self.key {
                    out.created.insert((issue.id, remote_id), created_at);
                }
            }
            for (backend, remote_id) in issue.gone {
                if backend == self.key {
                    out.gone.insert(remote_id, issue.id);
                }
            }
            for (backend, remote_id) in issue.remotes {
                if backend == self.key {
                    out.by_issue
                        .entry(issue.id)
                        .or_default()
                        .push(remote_id.clone());
                    out.live.entry(remote_id).or_default().push(issue.id);
                }
            }
        }
        for issues in out.live.values_mut() {
            issues.sort();
        }
        Ok(out)
    }

    /// The local issue a remote issue maps to:
    /// - an issue bound to it (the one its marker names if several are,
    ///   else the smallest id, the same choice everywhere), unless the
    ///   tracker's creation time shows the id now names another object;
    /// - else the issue its marker names, unless that issue is bound to
    ///   another remote issue here;
    /// - else an id derived from the remote identity, and from the creation
    ///   time too when the id was bound before (trackers that reuse ids:
    ///   the sim gives the newest id again after a delete).
    fn issue_for(&self, remote: &RemoteIssue, bindings: &Bindings) -> IssueId {
        let marked = remote
            .marker
            .as_deref()
            .and_then(|m| m.parse::<IssueId>().ok());
        let bound: Vec<IssueId> = bindings
            .live
            .get(&remote.remote_id)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|i| !bindings.reused(*i, remote))
                    .filter(|i| marked == Some(*i) || !self.revision_differs(*i, remote))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(m) = marked.filter(|m| bound.contains(m)) {
            return m;
        }
        // A marker naming a local issue other than the bound one: the id
        // now names that issue's object (the tracker reused the id of a
        // deleted one within the same second, so the creation times could
        // not tell them apart). A deleted marker leaves the binding alone.
        if let Some(m) = marked.filter(|m| !m.is_derived() && !bound.is_empty()) {
            return m;
        }
        // The issue created locally before one a replica derived without
        // the binding (they are the same tracker issue; see `MergedInto`).
        if let Some(first) = bound
            .iter()
            .find(|i| !i.is_derived())
            .or_else(|| bound.first())
        {
            return *first;
        }
        if let Some(m) = marked {
            let elsewhere: Vec<&String> = bindings
                .by_issue
                .get(&m)
                .into_iter()
                .flatten()
                .filter(|r| **r != remote.remote_id)
                .collect();
            // Bound elsewhere: another replica's create of the same issue
            // in a race (created within the window `settle_twin` checks;
            // its creator deletes it, or an exporter retires it as a twin),
            // else a copy a tracker user made of the body, marker and all.
            if elsewhere.is_empty()
                || elsewhere
                    .iter()
                    .any(|r| bindings.created_near(m, r, &remote.created_at))
            {
                return m;
            }
        }
        if bindings.gone.contains_key(&remote.remote_id)
            || bindings.live.contains_key(&remote.remote_id)
        {
            return IssueId::derived(&format!(
                "{}|{}|{}",
                self.key, remote.remote_id, remote.created_at
            ));
        }
        IssueId::derived(&format!("{}|{}", self.key, remote.remote_id))
    }

    /// Whether `issue` observed `remote`'s id at `remote`'s revision with
    /// another title or body: a revision names one state of one object, so
    /// this is another object under a reused id (the sim restarts versions
    /// at 1 and gives a deleted issue's id to the next create, within the
    /// same second as the first, so the creation times match). Asked only
    /// when the remote's marker does not name the issue.
    fn revision_differs(&self, issue: IssueId, remote: &RemoteIssue) -> bool {
        let Ok(set) = self.load_or_empty(issue) else {
            return false;
        };
        let differs = set.iter().any(|(_, e)| {
            matches!(&e.op, Op::Observe { backend, remote_id, revision, title, body, .. }
                if *backend == self.key
                    && *remote_id == remote.remote_id
                    && *revision == remote.revision.order
                    && (*title != remote.title || *body != remote.body))
        });
        differs
    }

    /// Whether `a` and `b` observed `remote_id` at one revision with
    /// different titles or bodies: two objects under a reused id.
    fn observed_apart(&self, a: IssueId, b: IssueId, remote_id: &str) -> bool {
        let seen = |issue: IssueId| -> BTreeMap<u64, (String, String)> {
            let Ok(set) = self.load_or_empty(issue) else {
                return BTreeMap::new();
            };
            let out = set
                .iter()
                .filter_map(|(_, e)| match &e.op {
                    Op::Observe {
                        backend,
                        remote_id: r,
                        revision,
                        title,
                        body,
                        ..
                    } if *backend == self.key && r == remote_id => {
                        Some((*revision, (title.clone(), body.clone())))
                    }
                    _ => None,
                })
                .collect();
            out
        };
        let (sa, sb) = (seen(a), seen(b));
        sa.iter()
            .any(|(rev, v)| sb.get(rev).is_some_and(|w| w != v))
    }

    /// A fixed-envelope event (an observation): the same bytes on every
    /// replica that sees the same tracker fact.
    fn fixed(&self, issue: IssueId, wall_ms: i64, op: Op) -> Event {
        Event {
            v: op.since_version(),
            issue,
            actor: self.backend_actor.clone(),
            lamport: 0,
            wall_ms,
            parents: vec![],
            op,
        }
    }

    /// The observation event of a remote revision.
    fn observe(&self, issue: IssueId, r: &RemoteIssue) -> Event {
        self.fixed(
            issue,
            r.updated_at.millis().unwrap_or(0),
            Op::Observe {
                backend: self.key.clone(),
                remote_id: r.remote_id.clone(),
                revision: r.revision.order,
                token: r.revision.token.clone(),
                title: r.title.clone(),
                body: r.body.clone(),
                status: r.status,
                labels: sorted(&r.labels),
                assignees: sorted(&r.assignees),
                updated_at: r.updated_at.to_string(),
            },
        )
    }

    /// When the tracker created a remote object (`None` if it did not say).
    fn observe_created(
        &self,
        issue: IssueId,
        remote_id: &str,
        created_at: &time::Stamp,
    ) -> Option<Event> {
        (!created_at.is_empty()).then(|| {
            self.fixed(
                issue,
                created_at.millis().unwrap_or(0),
                Op::ObserveCreated {
                    backend: self.key.clone(),
                    remote_id: remote_id.to_owned(),
                    created_at: created_at.to_string(),
                },
            )
        })
    }

    fn observe_gone(&self, issue: IssueId, remote_id: &str) -> Event {
        self.fixed(
            issue,
            0,
            Op::ObserveGone {
                backend: self.key.clone(),
                remote_id: remote_id.to_owned(),
            },
        )
    }

    /// The newest observation (by revision, then event id: the chain's
    /// order) of each tracker comment of this backend in `set`, by remote id.
    fn newest_comment_observations(&self, set: &EventSet) -> HashMap<String, Event> {
        let mut out: HashMap<String, ((u64, EventId), &Event)> = HashMap::new();
        for (id, e) in set.iter() {
            if let Op::ObserveComment {
                backend,
                remote_id,
                revision,
                ..
            } = &e.op
            {
                if *backend != self.key {
                    continue;
                }
                let key = (*revision, *id);
                let slot = out.entry(remote_id.clone()).or_insert((key, e));
                if key > slot.0 {
                    *slot = (key, e);
                }
            }
        }
        out.into_iter().map(|(k, (_, e))| (k, e.clone())).collect()
    }

    /// The observation of tracker comment `c`, read now, where `newest` is
    /// the newest observation of its chain the log holds (refs-format.md,
    /// section 6a, "Comment revisions"): at its tracker time, unless
    /// `newest` is not older. Everything the log holds was recorded before
    /// this read, so what the tracker says now is newer: the same text is
    /// that observation again, another text comes one after it (a tracker
    /// with one-second times gives two writes in one second the same time).
    fn observe_comment(&self, issue: IssueId, newest: Option<&Event>, c: &RemoteComment) -> Event {
        let ms = c.updated_at.millis().unwrap_or(0);
        let body = comments::strip_attribution(&c.body).to_owned();
        let newest = newest.and_then(|e| match &e.op {
            Op::ObserveComment { revision, body, .. } => Some((*revision, body, e)),
            _ => None,
        });
        let mut revision = ms.max(0) as u64;
        if let Some((r, seen, e)) = newest {
            if r >= revision {
                if *seen == body {
                    return e.clone();
                }
                revision = r.saturating_add(1);
            }
        }
        self.fixed(
            issue,
            ms,
            Op::ObserveComment {
                backend: self.key.clone(),
                remote_id: c.remote_id.clone(),
                local: c.marker.as_deref().and_then(|m| m.parse().ok()),
                author: c.author.clone(),
                body,
                revision,
                updated_at: c.updated_at.to_string(),
            },
        )
    }

    /// Local events by the running actor: the first has `parents`, each
    /// next one the previous; each clock is one more than its parents'.
    fn local(
        &self,
        issue: IssueId,
        set: &EventSet,
        parents: Vec<EventId>,
        ops: Vec<Op>,
    ) -> Vec<Event> {
        let mut parents = parents;
        parents.sort();
        parents.dedup();
        let mut lamport = parents
            .iter()
            .filter_map(|p| set.get(p))
            .map(|e| e.lamport)
            .max()
            .unwrap_or(0);
        let wall_ms = time::now_millis();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            lamport = lamport.saturating_add(1);
            let e = Event {
                v: op.since_version(),
                issue,
                actor: self.actor.clone(),
                lamport,
                wall_ms,
                parents: std::mem::take(&mut parents),
                op,
            };
            parents = vec![e.seal().0];
            out.push(e);
        }
        out
    }

    fn load_or_empty(&self, issue: IssueId) -> Result<EventSet, ProjectError> {
        match self.store.load(issue) {
            Ok(log) => Ok(log.events),
            Err(StoreError::NotFound(_)) => Ok(EventSet::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Append events not yet in `set`; returns how many were new.
    fn record(
        &self,
        issue: IssueId,
        set: &mut EventSet,
        events: Vec<Event>,
        summary: &str,
    ) -> Result<usize, ProjectError> {
        let mut sealed = Vec::new();
        for e in events {
            let (id, bytes) = e.seal();
            if set.insert(id, e) {
                sealed.push((id, bytes));
            }
        }
        if !sealed.is_empty() {
            self.store
                .append_with_trailers(issue, &sealed, summary, &self.trailers())?;
        }
        Ok(sealed.len())
    }

    fn fold(&self, issue: IssueId, set: &EventSet) -> Result<IssueState, ProjectError> {
        set.fold(issue).map_err(|e| ProjectError::Fold {
            issue,
            why: crate::error_chain(&e),
        })
    }

    fn body(&self, issue: IssueId, set: &EventSet) -> Result<BodyView, ProjectError> {
        set.body(issue).map_err(|e| ProjectError::Fold {
            issue,
            why: crate::error_chain(&e),
        })
    }

    /// Whether the tracker's text of `issue` can be synced into its body
    /// document here: always for an issue first seen on a tracker (its text
    /// derives from nothing), but for an issue created by reposix elsewhere
    /// only once its `create` is here: the tracker's text derives from that
    /// create, and deriving it from anything else would put it in twice.
    /// Until then the revision is recorded and the body left alone (and not
    /// exported).
    fn body_syncable(issue: IssueId, set: &EventSet) -> bool {
        issue.is_derived() || set.iter().any(|(_, e)| matches!(e.op, Op::Create { .. }))
    }

    fn body_error(issue: IssueId, e: crate::crdt::body::BodyError) -> ProjectError {
        ProjectError::Fold {
            issue,
            why: crate::error_chain(&e),
        }
    }

    /// The cursor stored for this backend.
    pub fn cursor(&self) -> Result<Option<String>, ProjectError> {
        let state = self.store.read_state(&self.state_ref())?;
        Ok(state
            .get("cursor")
            .map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    fn save_cursor(&self, cursor: &str) -> Result<(), ProjectError> {
        let cursor = cursor.to_owned();
        let spec = self.key.clone();
        self.store
            .update_state(&self.state_ref(), "import cursor", |cur| {
                let mut next = cur.clone();
                // Concurrent importers: keep the furthest cursor (both imported
                // everything up to their own).
                let keep = match cur.get("cursor") {
                    Some(old) if old.as_slice() > cursor.as_bytes() => old.clone(),
                    _ => cursor.as_bytes().to_vec(),
                };
                next.insert("cursor".into(), keep);
                next.insert("backend".into(), spec.as_bytes().to_vec());
                next
            })?;
        Ok(())
    }

    /// The remote issue `set` is bound to on this backend, if any.
    fn binding(&self, set: &EventSet) -> Option<String> {
        self.bindings_of(set).into_iter().next()
    }

    /// Whether the tracker reported `remote_id` gone.
    fn is_gone(&self, set: &EventSet, remote_id: &str) -> bool {
        set.iter().any(|(_, e)| {
            matches!(&e.op, Op::ObserveGone { backend, remote_id: r }
                if *backend == self.key && r == remote_id)
        })
    }

    /// The newest observation of `remote_id` in `set`.
    fn last_seen(&self, set: &EventSet, remote_id: &str) -> Option<RemoteIssue> {
        set.iter()
            .filter_map(|(id, e)| match &e.op {
                Op::Observe {
                    backend,
                    remote_id: rid,
                    revision,
                    token,
                    title,
                    body,
                    status,
                    labels,
                    assignees,
                    updated_at,
                } if *backend == self.key && rid == remote_id => Some((
                    (*revision, *id),
                    RemoteIssue {
                        remote_id: rid.clone(),
                        title: title.clone(),
                        body: body.clone(),
                        status: *status,
                        labels: labels.clone(),
                        assignees: assignees.clone(),
                        revision: crate::tracker::Revision {
                            order: *revision,
                            token: token.clone(),
                        },
                        created_at: String::new().into(),
                        updated_at: updated_at.clone().into(),
                        marker: None,
                    },
                )),
                _ => None,
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, r)| r)
    }
}

/// A value a tracker refused, remembered so it is not resent unchanged.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Refused {
    field: String,
    /// blake3 of the refused local value (a label, a login, a title or a
    /// body), so a changed value is tried again.
    value_hash: String,
    reason: String,
}

fn text_hash(v: &str) -> String {
    blake3::hash(v.as_bytes()).to_hex().to_string()
}

/// Remote issues bound to local ones, for import.
#[derive(Default)]
struct Bindings {
    /// The tracker's creation time recorded for (issue, remote id).
    created: HashMap<(IssueId, String), String>,
    /// Remote id -> the local issues bound to it (sorted).
    live: HashMap<String, Vec<IssueId>>,
    /// Local issue -> the remote ids it is bound to.
    by_issue: HashMap<IssueId, Vec<String>>,
    /// Remote ids the tracker reported gone -> their local issue.
    gone: HashMap<String, IssueId>,
}

impl Bindings {
    /// Whether the remote object `issue` is bound to as `remote_id` was
    /// created within [`TWIN_WINDOW_SECS`] of `created_at` (unknown times
    /// are not near).
    fn created_near(&self, issue: IssueId, remote_id: &str, created_at: &time::Stamp) -> bool {
        let (Some(a), Some(b)) = (
            self.created
                .get(&(issue, remote_id.to_owned()))
                .and_then(|c| time::parse_millis(c)),
            created_at.millis(),
        ) else {
            return false;
        };
        a.abs_diff(b) <= TWIN_WINDOW_SECS * 1000
    }

    /// Whether `remote` is another object than the one `issue` is bound to
    /// under the same id (the tracker reused the id of a deleted issue):
    /// the creation times differ.
    fn reused(&self, issue: IssueId, remote: &RemoteIssue) -> bool {
        !remote.created_at.is_empty()
            && self
                .created
                .get(&(issue, remote.remote_id.clone()))
                .is_some_and(|c| c != remote.created_at.as_str())
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Ref namespace of backend state refs.
pub const BACKEND_REF_PREFIX: &str = "refs/reposix/backends/";
