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
    /// Issues the tracker moved elsewhere (a GitHub transfer): (issue,
    /// where to). Recorded as gone here.
    pub moved: Vec<(String, String)>,
    /// Values the tracker refused (a forbidden label, a login it will not
    /// assign, a body over its limit): (issue, what). They are not sent
    /// again until they change locally.
    pub refused: Vec<(String, String)>,
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
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
            let elsewhere = bindings
                .by_issue
                .get(&m)
                .is_some_and(|rids| rids.iter().any(|r| *r != remote.remote_id));
            if !elsewhere {
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
            time::parse_millis(&r.updated_at).unwrap_or(0),
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
                updated_at: r.updated_at.clone(),
            },
        )
    }

    /// When the tracker created a remote object (`None` if it did not say).
    fn observe_created(&self, issue: IssueId, remote_id: &str, created_at: &str) -> Option<Event> {
        (!created_at.is_empty()).then(|| {
            self.fixed(
                issue,
                time::parse_millis(created_at).unwrap_or(0),
                Op::ObserveCreated {
                    backend: self.key.clone(),
                    remote_id: remote_id.to_owned(),
                    created_at: created_at.to_owned(),
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

    fn observe_comment(&self, issue: IssueId, c: &RemoteComment) -> Event {
        let ms = time::parse_millis(&c.updated_at).unwrap_or(0);
        self.fixed(
            issue,
            ms,
            Op::ObserveComment {
                backend: self.key.clone(),
                remote_id: c.remote_id.clone(),
                local: c.marker.as_deref().and_then(|m| m.parse().ok()),
                author: c.author.clone(),
                body: c.body.clone(),
                revision: ms.max(0) as u64,
                updated_at: c.updated_at.clone(),
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
        let wall_ms = now_ms();
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

    /// Import what changed since the cursor (everything with `reconcile`,
    /// which also re-reads every comment and notices remote issues deleted
    /// on the tracker).
    pub fn import(&self, reconcile: bool) -> Result<ImportReport, ProjectError> {
        let cursor = if reconcile { None } else { self.cursor()? };
        (self.progress)(&format!(
            "importing from {} {}",
            self.key,
            cursor
                .as_deref()
                .map(|c| format!("since {c}"))
                .unwrap_or_else(|| "(everything)".into())
        ));
        let (remotes, next) = self.backend.list_changed(cursor.as_deref())?;
        let mut report = ImportReport {
            listed: remotes.len(),
            ..ImportReport::default()
        };
        let bindings = self.bindings()?;
        // Issues new to this repository go into one pack through
        // fast-import; the rest are appended one by one.
        let mut fresh: Vec<(IssueId, Vec<Event>)> = Vec::new();
        let mut fresh_ids = HashSet::new();
        let existing: HashSet<IssueId> = self
            .store
            .list_refs()?
            .into_iter()
            .filter_map(|r| r.issue)
            .collect();
        for (n, r) in remotes.iter().enumerate() {
            if n > 0 && n % 500 == 0 {
                (self.progress)(&format!("  {n}/{} issues", remotes.len()));
            }
            let issue = self.issue_for(r, &bindings);
            for old in bindings.live.get(&r.remote_id).into_iter().flatten() {
                if *old == issue {
                    continue;
                }
                if !bindings.reused(*old, r) && old.is_derived() && !issue.is_derived() {
                    // A replica imported the issue without its binding (a
                    // tracker user had deleted the marker): that copy is
                    // folded into the issue created here.
                    self.merge_into(*old, issue)?;
                } else {
                    // The object this issue was bound to is gone: the
                    // tracker gave its id to a new one.
                    self.check_gone_as(*old, &r.remote_id, true, &mut report)?;
                }
            }
            if existing.contains(&issue) || !fresh_ids.insert(issue) {
                self.import_one(issue, r, reconcile, &mut report)?;
            } else {
                let events = self.fresh_events(issue, r)?;
                report.observed += 1;
                report.new_issues += 1;
                report.comments += events
                    .iter()
                    .filter(|e| matches!(e.op, Op::ObserveComment { .. }))
                    .count();
                fresh.push((issue, events));
            }
        }
        if !fresh.is_empty() {
            self.write_fresh(fresh)?;
        }
        // Several local issues bound to one remote id that the listing did
        // not show (nothing moved on the tracker): the same resolution.
        let mut shared: Vec<(&String, &Vec<IssueId>)> = bindings
            .live
            .iter()
            .filter(|(_, issues)| issues.len() > 1)
            .collect();
        shared.sort();
        for (rid, issues) in shared {
            let keep = issues
                .iter()
                .find(|i| !i.is_derived())
                .or_else(|| issues.first())
                .copied()
                .expect("BUG: a shared binding has issues");
            let created = |i: &IssueId| bindings.created.get(&(*i, rid.clone()));
            for other in issues.iter().filter(|i| **i != keep) {
                let same_object = match (created(other), created(&keep)) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                if same_object && other.is_derived() && !keep.is_derived() {
                    self.merge_into(*other, keep)?;
                }
            }
        }
        if reconcile {
            // A full listing: bound remote issues it lacks may be gone.
            let listed: HashSet<&str> = remotes.iter().map(|r| r.remote_id.as_str()).collect();
            let mut missing: Vec<(&String, &IssueId)> = bindings
                .live
                .iter()
                .filter(|(rid, _)| !listed.contains(rid.as_str()))
                .flat_map(|(rid, issues)| issues.iter().map(move |i| (rid, i)))
                .collect();
            missing.sort();
            for (rid, issue) in missing {
                self.check_gone(*issue, rid, &mut report)?;
            }
        }
        if let Some(c) = next.or(cursor) {
            self.save_cursor(&c)?;
            report.cursor = Some(c);
        }
        Ok(report)
    }

    /// Fold `copy` (an issue a replica derived from the tracker without the
    /// binding) into `target` (the issue created locally for the same
    /// tracker issue). The copy's own writes reached the tracker, which
    /// `target` imports; it is not listed or exported any more.
    fn merge_into(&self, copy: IssueId, target: IssueId) -> Result<(), ProjectError> {
        let mut set = self.load_or_empty(copy)?;
        if set.merged_into().is_some() {
            return Ok(());
        }
        let events = self.local(copy, &set, set.heads(), vec![Op::MergedInto { target }]);
        self.record(copy, &mut set, events, "merged into another local copy")?;
        Ok(())
    }

    /// Record a bound remote issue as gone if the tracker says it is.
    fn check_gone(
        &self,
        issue: IssueId,
        remote_id: &str,
        report: &mut ImportReport,
    ) -> Result<(), ProjectError> {
        self.check_gone_as(issue, remote_id, false, report)
    }

    /// [`Projection::check_gone`]; `known` skips asking the tracker.
    fn check_gone_as(
        &self,
        issue: IssueId,
        remote_id: &str,
        known: bool,
        report: &mut ImportReport,
    ) -> Result<(), ProjectError> {
        let mut set = self.load_or_empty(issue)?;
        let gone = self.observe_gone(issue, remote_id);
        if set.contains(&gone.seal().0) {
            return Ok(());
        }
        if known || self.backend.get(remote_id)?.is_none() {
            report.gone += self.record(issue, &mut set, vec![gone], "import: gone")?;
        }
        Ok(())
    }

    /// The events of an issue new to this repository: its observation,
    /// creation time, comments, and the sync point of its body.
    fn fresh_events(&self, issue: IssueId, r: &RemoteIssue) -> Result<Vec<Event>, ProjectError> {
        let mut fixed = vec![self.observe(issue, r)];
        fixed.extend(self.observe_created(issue, &r.remote_id, &r.created_at));
        if self.backend.capabilities().comments {
            for c in self.backend.comments(&r.remote_id)? {
                fixed.extend(self.comment_events(issue, &c));
            }
        }
        let mut set = EventSet::new();
        // The body view before the observation: a chain observed without a
        // sync point would read as a format-1 log to bootstrap.
        let ops = if Self::body_syncable(issue, &set) {
            let mut view = self.body(issue, &set)?;
            view.import(&set, &self.chain(&r.remote_id), r.revision.order, &r.body)
                .map_err(|e| Self::body_error(issue, e))?
        } else {
            Vec::new()
        };
        for e in &fixed {
            let (id, _) = e.seal();
            set.insert(id, e.clone());
        }
        let mut events = fixed;
        events.extend(self.local(issue, &set, set.heads(), ops));
        Ok(events)
    }

    fn comment_events(&self, issue: IssueId, c: &RemoteComment) -> Vec<Event> {
        let mut out = vec![self.observe_comment(issue, c)];
        out.extend(self.observe_created(issue, &format!("comment:{}", c.remote_id), &c.created_at));
        out
    }

    /// Write the logs of issues new to this repository as one pack. A ref
    /// created meanwhile by another writer fails the pack's update of that
    /// ref only; those issues are then appended one by one.
    fn write_fresh(&self, fresh: Vec<(IssueId, Vec<Event>)>) -> Result<(), ProjectError> {
        let mut writer = BulkWriter::start(self.store.git_dir())?;
        writer.describe("import", &self.trailers());
        for (issue, events) in &fresh {
            let sealed: Vec<_> = events.iter().map(Event::seal).collect();
            let wall = events.first().map_or(0, |e| e.wall_ms / 1000);
            writer.issue(*issue, self.backend_actor.as_str(), wall, &[sealed])?;
        }
        if writer.finish().is_err() {
            for (issue, events) in fresh {
                let mut set = self.load_or_empty(issue)?;
                self.record(issue, &mut set, events, "import")?;
            }
        }
        Ok(())
    }

    /// Record one remote issue: its revision, creation time, body sync
    /// point and (when it changed, or on `reconcile`) its comments.
    fn import_one(
        &self,
        issue: IssueId,
        r: &RemoteIssue,
        reconcile: bool,
        report: &mut ImportReport,
    ) -> Result<(), ProjectError> {
        let mut set = self.load_or_empty(issue)?;
        let is_new = set.is_empty();
        let obs = self.observe(issue, r);
        let new_revision = !set.contains(&obs.seal().0);
        if !new_revision && !reconcile && !self.body_behind(issue, &set, &r.remote_id)? {
            return Ok(());
        }
        let mut fixed = vec![obs];
        fixed.extend(self.observe_created(issue, &r.remote_id, &r.created_at));
        if self.backend.capabilities().comments {
            let listed = self.backend.comments(&r.remote_id)?;
            let present: HashSet<&str> = listed.iter().map(|c| c.remote_id.as_str()).collect();
            for c in &listed {
                fixed.extend(self.comment_events(issue, c));
            }
            // Comments we saw on the tracker that it no longer lists.
            for rid in self.observed_comments(&set) {
                if !present.contains(rid.as_str()) {
                    fixed.push(self.observe_gone(issue, &format!("comment:{rid}")));
                }
            }
        }
        let mut work = set.clone();
        let mut fresh_fixed = Vec::new();
        for e in fixed {
            let (id, _) = e.seal();
            if work.insert(id, e.clone()) {
                fresh_fixed.push(e);
            }
        }
        // The body view of the log as it was: the new observation without
        // its sync point would read as a format-1 chain to bootstrap.
        let ops = if Self::body_syncable(issue, &set) {
            let mut view = self.body(issue, &set)?;
            view.import(&set, &self.chain(&r.remote_id), r.revision.order, &r.body)
                .map_err(|e| Self::body_error(issue, e))?
        } else {
            Vec::new()
        };
        let locals = self.local(issue, &work, work.heads(), ops);
        report.comments += fresh_fixed
            .iter()
            .filter(|e| matches!(e.op, Op::ObserveComment { .. }))
            .count();
        report.gone += fresh_fixed
            .iter()
            .filter(|e| matches!(e.op, Op::ObserveGone { .. }))
            .count();
        let mut events = fresh_fixed;
        events.extend(locals);
        if self.record(issue, &mut set, events, "import")? > 0 && new_revision {
            report.observed += 1;
            if is_new {
                report.new_issues += 1;
            }
        }
        Ok(())
    }

    /// Whether the body document has no sync point for the newest observed
    /// revision of `remote_id` (a sync that had to wait for the issue's
    /// `create`, or a log written before format 2).
    fn body_behind(
        &self,
        issue: IssueId,
        set: &EventSet,
        remote_id: &str,
    ) -> Result<bool, ProjectError> {
        let Some(seen) = self.last_seen(set, remote_id) else {
            return Ok(false);
        };
        let view = self.body(issue, set)?;
        Ok(view
            .points
            .get(&self.chain(remote_id))
            .is_none_or(|p| p.revision < seen.revision.order))
    }

    /// Sync the body to the newest observed revision when it is behind and
    /// can be synced now (no request to the tracker: the text is in the
    /// observation).
    fn catch_up_body(
        &self,
        issue: IssueId,
        set: &mut EventSet,
        remote_id: &str,
    ) -> Result<(), ProjectError> {
        if !Self::body_syncable(issue, set) || !self.body_behind(issue, set, remote_id)? {
            return Ok(());
        }
        let Some(seen) = self.last_seen(set, remote_id) else {
            return Ok(());
        };
        let mut view = self.body(issue, set)?;
        let ops = view
            .import(set, &self.chain(remote_id), seen.revision.order, &seen.body)
            .map_err(|e| Self::body_error(issue, e))?;
        if !ops.is_empty() {
            let events = self.local(issue, set, set.heads(), ops);
            self.record(issue, set, events, "body sync")?;
        }
        Ok(())
    }

    /// Remote comment ids of this backend observed in `set` and not gone.
    fn observed_comments(&self, set: &EventSet) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut gone = BTreeSet::new();
        for (_, e) in set.iter() {
            match &e.op {
                Op::ObserveComment {
                    backend, remote_id, ..
                } if *backend == self.key => {
                    seen.insert(remote_id.clone());
                }
                Op::ObserveGone { backend, remote_id } if *backend == self.key => {
                    if let Some(c) = remote_id.strip_prefix("comment:") {
                        gone.insert(c.to_owned());
                    }
                }
                _ => {}
            }
        }
        seen.retain(|c| !gone.contains(c));
        seen
    }

    /// Re-read one remote issue after a conflict and record it. Returns
    /// `false` (and records it) when the tracker no longer has it.
    fn reimport(&self, issue: IssueId, remote_id: &str) -> Result<bool, ProjectError> {
        match self.backend.get(remote_id)? {
            Some(r) if self.is_reused(issue, &r)? => {
                let mut set = self.load_or_empty(issue)?;
                let gone = self.observe_gone(issue, remote_id);
                self.record(issue, &mut set, vec![gone], "export: id reused")?;
                Ok(false)
            }
            Some(r) => {
                self.import_one(issue, &r, false, &mut ImportReport::default())?;
                Ok(true)
            }
            None => {
                let mut set = self.load_or_empty(issue)?;
                let gone = self.observe_gone(issue, remote_id);
                self.record(issue, &mut set, vec![gone], "export: gone")?;
                Ok(false)
            }
        }
    }

    /// Whether `r` is another object than the one `issue` observed under
    /// the same remote id (different creation time: the id was reused).
    fn is_reused(&self, issue: IssueId, r: &RemoteIssue) -> Result<bool, ProjectError> {
        if r.created_at.is_empty() {
            return Ok(false);
        }
        let set = self.load_or_empty(issue)?;
        let reused = set.iter().any(|(_, e)| {
            matches!(&e.op, Op::ObserveCreated { backend, remote_id, created_at }
                if *backend == self.key && *remote_id == r.remote_id && *created_at != r.created_at)
        });
        Ok(reused)
    }

    /// The remote issue `set` is bound to on this backend, if any.
    fn binding(&self, set: &EventSet) -> Option<String> {
        set.iter().find_map(|(_, e)| match &e.op {
            Op::Observe {
                backend, remote_id, ..
            }
            | Op::Bind {
                backend,
                remote_id: Some(remote_id),
            } if *backend == self.key => Some(remote_id.clone()),
            _ => None,
        })
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
                        created_at: String::new(),
                        updated_at: updated_at.clone(),
                        marker: None,
                    },
                )),
                _ => None,
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, r)| r)
    }

    /// Whether an unbound issue belongs to this repository (created here,
    /// not imported from another tracker).
    fn exportable(&self, set: &EventSet) -> bool {
        let has_create = set.iter().any(|(_, e)| matches!(e.op, Op::Create { .. }));
        let elsewhere = set.iter().any(|(_, e)| match &e.op {
            Op::Observe { backend, .. } | Op::Bind { backend, .. } => *backend != self.key,
            _ => false,
        });
        has_create && !elsewhere
    }

    /// Export every issue: create what the tracker lacks, patch what differs.
    pub fn export(&self) -> Result<ExportReport, ProjectError> {
        self.export_with(false)
    }

    /// [`Projection::export`] without the cache of issues already in step:
    /// every issue is folded and compared (`--reconcile`).
    pub fn export_all(&self) -> Result<ExportReport, ProjectError> {
        self.export_with(true)
    }

    /// `.git/reposix/export-<backend>.json`: issue -> the tip at which its
    /// last export ended in step with the tracker. An issue whose ref has not
    /// moved since has nothing to send. A cache: deleting it costs one walk.
    fn export_cache_path(&self) -> std::path::PathBuf {
        let hash = blake3::hash(self.key.as_bytes()).to_hex();
        self.store.git_dir().join("reposix").join(format!(
            "export-{}-{}.json",
            self.backend.kind(),
            &hash[..16]
        ))
    }

    fn export_with(&self, full: bool) -> Result<ExportReport, ProjectError> {
        let mut report = ExportReport::default();
        let path = self.export_cache_path();
        let mut cache: BTreeMap<String, String> = if full {
            Default::default()
        } else {
            std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        };
        let refs = self.store.list_refs()?;
        (self.progress)(&format!("exporting {} issues to {}", refs.len(), self.key));
        let repo = self.store.repo();
        for (n, r) in refs.iter().enumerate() {
            if n > 0 && n % 500 == 0 {
                (self.progress)(&format!("  {n}/{} issues", refs.len()));
            }
            let Some(issue) = r.issue else { continue };
            let key = issue.to_string();
            let cached_tip = cache
                .get(&key)
                .and_then(|t| gix::hash::ObjectId::from_hex(t.as_bytes()).ok());
            if cached_tip == Some(r.tip) {
                report.unchanged += 1;
                continue;
            }
            match self.export_one(issue, &mut report) {
                Ok(()) => {
                    if let Some(tip) = self.store.read_ref(&repo, &r.refname)? {
                        cache.insert(key, tip.to_string());
                    }
                }
                Err(e) => {
                    cache.remove(&key);
                    report.failed.push((key, crate::error_chain(&e)));
                }
            }
        }
        if self.refused_dirty.get() {
            self.save_refused(&self.refused.borrow());
        }
        // Best effort: without the cache the next export walks everything.
        let bytes = serde_json::to_vec(&cache).expect("BUG: the cache always serializes");
        let _ = write_atomic(&path, &bytes, Durability::Cache);
        Ok(report)
    }

    fn export_one(&self, issue: IssueId, report: &mut ExportReport) -> Result<(), ProjectError> {
        let mut set = self.load_or_empty(issue)?;
        if set.merged_into().is_some() {
            // A copy folded into another issue is not exported any more,
            // except comments written on it before its writer learnt of the
            // merge: they go to the tracker issue both are bound to (with
            // their marker, so once), and the issue it was merged into
            // imports them from there.
            if let Some(remote_id) = self.binding(&set) {
                if !self.is_gone(&set, &remote_id) && self.backend.capabilities().comments {
                    self.export_comments(issue, &remote_id, &mut set, report)?;
                }
            }
            return Ok(());
        }
        let remote_id = match self.binding(&set) {
            Some(id) => id,
            None if self.exportable(&set) => match self.create_remote(issue, &mut set, report)? {
                Some(id) => id,
                None => return Ok(()),
            },
            None => return Ok(()),
        };
        if self.is_gone(&set, &remote_id) {
            return Ok(());
        }
        self.catch_up_body(issue, &mut set, &remote_id)?;
        if !self.patch_remote(issue, &remote_id, &mut set, report)? {
            report.gone += 1;
            return Ok(());
        }
        if self.backend.capabilities().comments {
            self.export_comments(issue, &remote_id, &mut set, report)?;
        } else {
            let state = self.fold(issue, &set)?;
            report.comments_local_only += state
                .comments
                .iter()
                .filter(|c| c.remote.as_ref().is_none_or(|r| r.backend != self.key))
                .count();
        }
        Ok(())
    }

    /// Intent first, then the remote create with a marker, then the
    /// binding; an intent without binding means a crash in between: find
    /// the remote issue by marker before creating anything.
    fn create_remote(
        &self,
        issue: IssueId,
        set: &mut EventSet,
        report: &mut ExportReport,
    ) -> Result<Option<String>, ProjectError> {
        let intent = set.iter().find_map(|(id, e)| match &e.op {
            Op::Bind {
                backend,
                remote_id: None,
            } if *backend == self.key => Some(*id),
            _ => None,
        });
        let marker = issue.to_string();
        if intent.is_none() {
            let bind = self.local(
                issue,
                set,
                set.heads(),
                vec![Op::Bind {
                    backend: self.key.clone(),
                    remote_id: None,
                }],
            );
            self.record(issue, set, bind, "export intent")?;
        } else if let Some(found) = self.backend.find_by_marker(&marker, None)? {
            // A run killed after the remote create: bind what it made. Its
            // text is whatever that run sent: sync it like an import.
            let mut view = self.body(issue, set)?;
            let ops = view
                .import(
                    set,
                    &self.chain(&found.remote_id),
                    found.revision.order,
                    &found.body,
                )
                .map_err(|e| Self::body_error(issue, e))?;
            self.bind_created(issue, set, &found, set.heads(), ops)?;
            report.recovered += 1;
            return Ok(Some(found.remote_id));
        }
        let heads = set.heads();
        let state = self.fold(issue, set)?;
        let mut view = self.body(issue, set)?;
        let remote = self.create_with_marker(&state, &marker, report)?;
        report.created += 1;
        let ops = view
            .exported(
                &self.chain(&remote.remote_id),
                remote.revision.order,
                &remote.body,
            )
            .map_err(|e| Self::body_error(issue, e))?;
        self.bind_created(issue, set, &remote, heads, ops)?;
        Ok(Some(remote.remote_id))
    }

    /// Record a remote create: binding, exported record (after `heads`,
    /// the events the create carried), observation, creation time, and the
    /// body's sync point.
    fn bind_created(
        &self,
        issue: IssueId,
        set: &mut EventSet,
        remote: &RemoteIssue,
        heads: Vec<EventId>,
        body_ops: Vec<Op>,
    ) -> Result<(), ProjectError> {
        let mut ops = vec![
            Op::Exported {
                backend: self.key.clone(),
                remote_id: remote.remote_id.clone(),
                revision: remote.revision.order,
            },
            Op::Bind {
                backend: self.key.clone(),
                remote_id: Some(remote.remote_id.clone()),
            },
        ];
        ops.extend(body_ops);
        let mut events = vec![self.observe(issue, remote)];
        events.extend(self.observe_created(issue, &remote.remote_id, &remote.created_at));
        events.extend(self.local(issue, set, heads, ops));
        self.record(issue, set, events, "export create")?;
        Ok(())
    }

    fn create_with_marker(
        &self,
        state: &IssueState,
        marker: &str,
        report: &mut ExportReport,
    ) -> Result<RemoteIssue, ProjectError> {
        let new = NewRemoteIssue {
            title: state.title.clone(),
            body: state.body.clone(),
            status: state.status,
            labels: state.labels.clone(),
            assignees: self.assignees_for(state, None),
            marker: marker.to_owned(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.backend.create(&new) {
                Ok(r) => return self.settle_twin(r, marker),
                // The create may or may not have happened: look for it
                // by marker before trying again.
                Err(e) if attempt < CREATE_ATTEMPTS && uncertain(&e) => {
                    if let Some(found) = self.backend.find_by_marker(marker, None)? {
                        return Ok(found);
                    }
                }
                // Created without some values (labels or assignees the
                // tracker dropped): bind it, remember what was refused.
                Err(BackendError::Refused {
                    refusals,
                    applied: Some(r),
                    ..
                }) => {
                    let patch = IssuePatch {
                        title: Some(new.title.clone()),
                        body: Some(new.body.clone()),
                        ..IssuePatch::default()
                    };
                    self.remember_refusals(marker, state, &patch, &refusals, report);
                    return Ok(*r);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Two clients exporting the same new issue at once both create it (no
    /// tracker offers an idempotency key). Right after creating, look for
    /// an issue created earlier with the same marker: the first one created
    /// (smallest id) is the issue; a later twin, ours, is deleted (closed
    /// where the tracker cannot delete). The later creator always sees the
    /// earlier one, so both clients bind the same issue. Only trackers whose
    /// listing takes an RFC 3339 `since` (sim, GitHub) are checked, over the
    /// minute before the create.
    fn settle_twin(&self, created: RemoteIssue, marker: &str) -> Result<RemoteIssue, ProjectError> {
        use crate::tracker::BackendKind;
        if !matches!(self.backend.kind(), BackendKind::Sim | BackendKind::Github) {
            return Ok(created);
        }
        let Some(ms) = time::parse_millis(&created.updated_at) else {
            return Ok(created);
        };
        let since = time::format_secs(ms / 1000 - 60);
        let Some(first) = self.backend.find_by_marker(marker, Some(&since))? else {
            return Ok(created);
        };
        let order = |r: &RemoteIssue| {
            (
                r.remote_id.parse::<u64>().unwrap_or(u64::MAX),
                r.remote_id.clone(),
            )
        };
        if order(&first) >= order(&created) {
            return Ok(created);
        }
        match self.backend.delete_issue(&created.remote_id) {
            Ok(()) => {}
            Err(BackendError::Unsupported { .. }) => {
                let patch = IssuePatch {
                    status: Some(crate::event::Status::WontFix),
                    ..IssuePatch::default()
                };
                self.backend
                    .update(&created.remote_id, &patch, &created.revision)?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(first)
    }

    /// `add_comment`, recovering by marker when the outcome is uncertain.
    fn add_comment_once(
        &self,
        remote_id: &str,
        body: &str,
        marker: &str,
    ) -> Result<RemoteComment, ProjectError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.backend.add_comment(remote_id, body, marker) {
                Ok(c) => {
                    // A comment another client created at the same time:
                    // the first one (smallest id) stays, ours goes.
                    let first = self
                        .backend
                        .comments(remote_id)?
                        .into_iter()
                        .filter(|x| x.marker.as_deref() == Some(marker))
                        .min_by_key(|x| {
                            (
                                x.remote_id.parse::<u64>().unwrap_or(u64::MAX),
                                x.remote_id.clone(),
                            )
                        });
                    return match first {
                        Some(f) if f.remote_id != c.remote_id => {
                            match self.backend.delete_comment(remote_id, &c.remote_id) {
                                Ok(()) | Err(BackendError::Unsupported { .. }) => Ok(f),
                                Err(e) => Err(e.into()),
                            }
                        }
                        _ => Ok(c),
                    };
                }
                Err(e) if attempt < CREATE_ATTEMPTS && uncertain(&e) => {
                    let found = self
                        .backend
                        .comments(remote_id)?
                        .into_iter()
                        .find(|c| c.marker.as_deref() == Some(marker));
                    if let Some(c) = found {
                        return Ok(c);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Send the minimal patch; on conflict re-import, re-fold, retry.
    /// Returns `false` when the tracker no longer has the issue (recorded).
    fn patch_remote(
        &self,
        issue: IssueId,
        remote_id: &str,
        set: &mut EventSet,
        report: &mut ExportReport,
    ) -> Result<bool, ProjectError> {
        for attempt in 0..EXPORT_RETRIES {
            let state = self.fold(issue, set)?;
            let Some(seen) = self.last_seen(set, remote_id) else {
                // Bound but never observed (a recovered create): read it.
                if !self.reimport(issue, remote_id)? {
                    return Ok(false);
                }
                *set = self.load_or_empty(issue)?;
                continue;
            };
            let key = issue.to_string();
            let refused = self.refused.borrow().get(&key).cloned().unwrap_or_default();
            let mut patch = self.patch(&state, &seen, &refused);
            if patch.body.is_some() && self.body_behind(issue, set, remote_id)? {
                // The document is not in step with the tracker's text yet
                // (see `body_syncable`): sending it would overwrite that
                // text with one that lacks it.
                patch.body = None;
            }
            if patch.is_empty() {
                // Nothing to send. Joins the fold derived stay virtual (every
                // replica derives the same ones) until a write builds on them.
                return Ok(true);
            }
            let mut view = self.body(issue, set)?;
            let heads = set.heads();
            match self.backend.update(remote_id, &patch, &seen.revision) {
                Ok(after) => {
                    let mut ops = vec![Op::Exported {
                        backend: self.key.clone(),
                        remote_id: remote_id.to_owned(),
                        revision: after.revision.order,
                    }];
                    ops.extend(
                        view.exported(&self.chain(remote_id), after.revision.order, &after.body)
                            .map_err(|e| Self::body_error(issue, e))?,
                    );
                    let mut events = vec![self.observe(issue, &after)];
                    events.extend(self.local(issue, set, heads, ops));
                    self.record(issue, set, events, "export")?;
                    report.updated += 1;
                    // The tracker may not hold everything (e.g. one
                    // assignee): loop once more to settle on what it took.
                    if attempt + 1 < EXPORT_RETRIES {
                        continue;
                    }
                    return Ok(true);
                }
                Err(BackendError::Conflict { .. }) => {
                    report.conflicts_retried += 1;
                    if !self.reimport(issue, remote_id)? {
                        return Ok(false);
                    }
                    *set = self.load_or_empty(issue)?;
                }
                Err(BackendError::NotFound { .. }) => {
                    let gone = self.observe_gone(issue, remote_id);
                    self.record(issue, set, vec![gone], "export: gone")?;
                    return Ok(false);
                }
                Err(BackendError::Moved { to, .. }) => {
                    let gone = self.observe_gone(issue, remote_id);
                    self.record(issue, set, vec![gone], "export: moved")?;
                    report.moved.push((key, to));
                    return Ok(false);
                }
                Err(BackendError::Refused {
                    refusals, applied, ..
                }) => {
                    self.remember_refusals(&key, &state, &patch, &refusals, report);
                    if let Some(after) = applied {
                        // The rest of the write happened. The body, if it
                        // was refused, is not the tracker's: sync the text
                        // the tracker kept like an import.
                        let mut ops = vec![Op::Exported {
                            backend: self.key.clone(),
                            remote_id: remote_id.to_owned(),
                            revision: after.revision.order,
                        }];
                        let chain = self.chain(remote_id);
                        ops.extend(
                            if after.body == state.body {
                                view.exported(&chain, after.revision.order, &after.body)
                            } else {
                                view.import(set, &chain, after.revision.order, &after.body)
                            }
                            .map_err(|e| Self::body_error(issue, e))?,
                        );
                        let mut events = vec![self.observe(issue, &after)];
                        events.extend(self.local(issue, set, heads, ops));
                        self.record(issue, set, events, "export (partly refused)")?;
                        report.updated += 1;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(BackendError::Exhausted {
            what: format!("exporting issue {issue} to {}", self.key),
            attempts: EXPORT_RETRIES,
            last: "the tracker kept changing (conflicts)".into(),
        }
        .into())
    }

    /// The assignees to send: all of them where the tracker holds several;
    /// where it holds one, the one it has if that is still ours (a tracker
    /// user's choice among ours stands), else the first.
    fn assignees_for(&self, state: &IssueState, seen: Option<&RemoteIssue>) -> Vec<String> {
        if self.backend.capabilities().multiple_assignees {
            return state.assignees.clone();
        }
        let current = seen.and_then(|s| s.assignees.first());
        match current {
            Some(c) if state.assignees.contains(c) => vec![c.clone()],
            _ => state.assignees.iter().take(1).cloned().collect(),
        }
    }

    /// Only the fields whose folded value differs from the last observation,
    /// leaving out values the tracker refused (until they change here).
    fn patch(&self, state: &IssueState, seen: &RemoteIssue, refused: &[Refused]) -> IssuePatch {
        let refused_value = |field: &str, value: &str| {
            refused
                .iter()
                .any(|r| r.field == field && r.value_hash == text_hash(value))
        };
        let keep = |field: &str, v: &[String]| -> Vec<String> {
            v.iter()
                .filter(|x| !refused_value(field, x))
                .cloned()
                .collect()
        };
        let labels = keep("labels", &state.labels);
        let mut assignee_state = state.clone();
        assignee_state.assignees = keep("assignees", &state.assignees);
        let assignees = self.assignees_for(&assignee_state, Some(seen));
        IssuePatch {
            title: (state.title != seen.title && !refused_value("title", &state.title))
                .then(|| state.title.clone()),
            body: (state.body != seen.body && !refused_value("body", &state.body))
                .then(|| state.body.clone()),
            status: (state.status != seen.status).then_some(state.status),
            labels: (!self.backend.labels_equal(&labels, &seen.labels)).then_some(labels),
            assignees: (assignees != seen.assignees).then_some(assignees),
        }
    }

    /// Remember what the tracker refused of `patch`, so it is not resent
    /// while it stays the same here.
    fn remember_refusals(
        &self,
        key: &str,
        state: &IssueState,
        patch: &IssuePatch,
        refusals: &[crate::tracker::Refusal],
        report: &mut ExportReport,
    ) {
        let mut all = self.refused.borrow_mut();
        let list = all.entry(key.to_owned()).or_default();
        for r in refusals {
            // Title and body refusals name a length or a reason, not the
            // text: remember the text that was sent.
            let value = match r.field.as_str() {
                "title" => patch.title.clone().unwrap_or_else(|| state.title.clone()),
                "body" => patch.body.clone().unwrap_or_else(|| state.body.clone()),
                _ => r.value.clone(),
            };
            let hash = text_hash(&value);
            if !list
                .iter()
                .any(|x| x.field == r.field && x.value_hash == hash)
            {
                list.push(Refused {
                    field: r.field.clone(),
                    value_hash: hash,
                    reason: r.reason.clone(),
                });
            }
            report.refused.push((
                key.to_owned(),
                format!("{} {:?}: {}", r.field, r.value, r.reason),
            ));
        }
        self.refused_dirty.set(true);
    }

    /// `.git/reposix/refused-<backend>.json`: values the tracker refused,
    /// per issue. A cache of what not to resend: deleting it costs one
    /// refused write per value.
    fn refused_path(&self) -> std::path::PathBuf {
        let hash = blake3::hash(self.key.as_bytes()).to_hex();
        self.store.git_dir().join("reposix").join(format!(
            "refused-{}-{}.json",
            self.backend.kind(),
            &hash[..16]
        ))
    }

    fn load_refused(&self) -> BTreeMap<String, Vec<Refused>> {
        std::fs::read(self.refused_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_refused(&self, all: &BTreeMap<String, Vec<Refused>>) {
        let path = self.refused_path();
        let bytes = serde_json::to_vec(all).expect("BUG: the cache always serializes");
        let _ = write_atomic(&path, &bytes, Durability::Cache);
    }

    /// Local comment id -> remote comment id on this backend, for every
    /// comment (live or deleted) bound to one.
    fn comment_remotes(&self, set: &EventSet) -> BTreeMap<EventId, String> {
        let mut bound: BTreeMap<String, EventId> = BTreeMap::new();
        let mut observed: BTreeMap<String, Option<EventId>> = BTreeMap::new();
        for (_, e) in set.iter() {
            match &e.op {
                Op::BindComment {
                    backend,
                    comment,
                    remote_id: Some(r),
                } if *backend == self.key => {
                    bound.entry(r.clone()).or_insert(*comment);
                }
                Op::ObserveComment {
                    backend,
                    remote_id,
                    local,
                    ..
                } if *backend == self.key => {
                    let slot = observed.entry(remote_id.clone()).or_insert(None);
                    if slot.is_none() {
                        *slot = *local;
                    }
                }
                _ => {}
            }
        }
        let mut out = BTreeMap::new();
        for (rid, id) in &bound {
            out.insert(*id, rid.clone());
        }
        for (rid, local) in observed {
            let id = local
                .or_else(|| bound.get(&rid).copied())
                .unwrap_or_else(|| remote_comment_id(&self.key, &rid));
            out.entry(id).or_insert(rid);
        }
        out
    }

    /// Create local comments the tracker lacks (intent, marker, binding),
    /// send local edits and deletions of bound comments.
    fn export_comments(
        &self,
        issue: IssueId,
        remote_id: &str,
        set: &mut EventSet,
        report: &mut ExportReport,
    ) -> Result<(), ProjectError> {
        let state = self.fold(issue, set)?;
        let remotes = self.comment_remotes(set);
        let mut intents: BTreeSet<EventId> = BTreeSet::new();
        for (_, e) in set.iter() {
            if let Op::BindComment {
                backend,
                comment,
                remote_id: None,
            } = &e.op
            {
                if *backend == self.key {
                    intents.insert(*comment);
                }
            }
        }
        let unbound: Vec<_> = state
            .comments
            .iter()
            .filter(|c| !remotes.contains_key(&c.id))
            .filter(|c| matches!(set.get(&c.id), Some(e) if matches!(e.op, Op::AddComment { .. })))
            .cloned()
            .collect();
        // One listing finds comments another clone (or a killed run)
        // already created, by their marker, before anything is created.
        let listed: Vec<RemoteComment> = if unbound.is_empty() {
            Vec::new()
        } else {
            self.backend.comments(remote_id)?
        };
        for c in unbound {
            let marker = c.id.to_hex();
            let found = listed
                .iter()
                .find(|rc| rc.marker.as_deref() == Some(marker.as_str()))
                .cloned();
            let remote = match found {
                Some(r) => r,
                None => {
                    if !intents.contains(&c.id) {
                        let intent = self.local(
                            issue,
                            set,
                            set.heads(),
                            vec![Op::BindComment {
                                backend: self.key.clone(),
                                comment: c.id,
                                remote_id: None,
                            }],
                        );
                        self.record(issue, set, intent, "export comment intent")?;
                    }
                    self.add_comment_once(remote_id, &c.body, &marker)?
                }
            };
            let heads = set.heads();
            let ms = time::parse_millis(&remote.updated_at).unwrap_or(0).max(0) as u64;
            let mut events = self.comment_events(issue, &remote);
            events.extend(self.local(
                issue,
                set,
                heads,
                vec![
                    Op::Exported {
                        backend: self.key.clone(),
                        remote_id: format!("comment:{}", remote.remote_id),
                        revision: ms,
                    },
                    Op::BindComment {
                        backend: self.key.clone(),
                        comment: c.id,
                        remote_id: Some(remote.remote_id.clone()),
                    },
                ],
            ));
            self.record(issue, set, events, "export comment")?;
            report.comments += 1;
        }
        // Local edits and deletions of comments the tracker has.
        let state = self.fold(issue, set)?;
        let remotes = self.comment_remotes(set);
        let gone = {
            let live = self.observed_comments(set);
            remotes
                .values()
                .filter(|r| !live.contains(*r))
                .cloned()
                .collect::<BTreeSet<String>>()
        };
        let live: BTreeMap<EventId, &crate::crdt::Comment> =
            state.comments.iter().map(|c| (c.id, c)).collect();
        for (id, rid) in &remotes {
            if gone.contains(rid) {
                continue;
            }
            let Some(c) = live.get(id) else {
                // Deleted here: delete there (where the tracker can).
                match self.backend.delete_comment(remote_id, rid) {
                    Ok(()) | Err(BackendError::NotFound { .. }) => {
                        let ev = self.observe_gone(issue, &format!("comment:{rid}"));
                        self.record(issue, set, vec![ev], "export comment delete")?;
                        report.comments += 1;
                    }
                    Err(BackendError::Unsupported { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                continue;
            };
            let last = set
                .iter()
                .filter_map(|(_, e)| match &e.op {
                    Op::ObserveComment {
                        backend,
                        remote_id,
                        body,
                        revision,
                        ..
                    } if *backend == self.key && remote_id == rid => Some((*revision, body)),
                    _ => None,
                })
                .max();
            if last.is_some_and(|(_, body)| *body != c.body) {
                let heads = set.heads();
                let remote = match self.backend.edit_comment(remote_id, rid, &c.body) {
                    Ok(r) => r,
                    Err(BackendError::NotFound { .. }) => {
                        let ev = self.observe_gone(issue, &format!("comment:{rid}"));
                        self.record(issue, set, vec![ev], "export comment gone")?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let ms = time::parse_millis(&remote.updated_at).unwrap_or(0).max(0) as u64;
                let mut events = vec![self.observe_comment(issue, &remote)];
                events.extend(self.local(
                    issue,
                    set,
                    heads,
                    vec![Op::Exported {
                        backend: self.key.clone(),
                        remote_id: format!("comment:{rid}"),
                        revision: ms,
                    }],
                ));
                self.record(issue, set, events, "export comment edit")?;
                report.comments += 1;
            }
        }
        Ok(())
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
    /// Whether `remote` is another object than the one `issue` is bound to
    /// under the same id (the tracker reused the id of a deleted issue):
    /// the creation times differ.
    fn reused(&self, issue: IssueId, remote: &RemoteIssue) -> bool {
        !remote.created_at.is_empty()
            && self
                .created
                .get(&(issue, remote.remote_id.clone()))
                .is_some_and(|c| *c != remote.created_at)
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
