//! Projection between the event logs and a tracker: import and export.
//!
//! Import lists what changed since the backend's cursor (kept in
//! `refs/reposix/backends/<key>`), and records each remote revision as an
//! `observe` event with fixed envelope values, so the same revision imported
//! by any clone is the same event. The CRDT orders observations against
//! local events by causality (`crate::crdt`), which is what lets a later
//! local edit win over an older tracker value however the clones' clocks
//! compare.
//!
//! Export computes, per issue, the patch between the folded state and the
//! last observation of the tracker, sends it with the tracker's concurrency
//! token, and records the result (`observe` of the new revision plus an
//! `exported` record whose ancestors are the events the write carried).
//! A conflict re-imports that issue, re-folds and retries; only when the
//! retries run out is it reported, per issue. Creating a remote issue (or
//! comment) is preceded by an intent record and carries a marker, so a run
//! killed between the remote write and the local record finds the remote
//! object by its marker instead of creating it twice.

use std::collections::BTreeSet;

use crate::backend::{
    Backend, BackendError, BackendSpec, IssuePatch, NewRemoteIssue, RemoteComment, RemoteIssue,
};
use crate::crdt::{EventSet, IssueState};
use crate::event::{ActorId, Event, EventId, IssueId, Op, EVENT_FORMAT_VERSION};
use crate::store::bulk::BulkWriter;
use crate::store::{EventStore, GitEventStore, StoreError};
use crate::timestamp;

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
    /// Comments created or edited.
    pub comments: usize,
    /// Conflicts answered by re-import and retry.
    pub conflicts_retried: usize,
    /// Issues skipped because their log has not moved since they were last
    /// exported in step with the tracker.
    pub unchanged: usize,
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
        Projection {
            store,
            backend,
            key,
            backend_actor,
            actor,
            progress,
        }
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

    /// The local issue a remote issue maps to: its marker when it carries
    /// one of ours, else an id derived from the remote identity.
    pub fn issue_for(&self, remote: &RemoteIssue) -> IssueId {
        remote
            .marker
            .as_deref()
            .and_then(|m| m.parse::<IssueId>().ok())
            .unwrap_or_else(|| IssueId::derived(&format!("{}|{}", self.key, remote.remote_id)))
    }

    /// The observation event of a remote revision: same bytes on every
    /// replica that sees this revision.
    fn observe(&self, issue: IssueId, r: &RemoteIssue) -> Event {
        Event {
            v: EVENT_FORMAT_VERSION,
            issue,
            actor: self.backend_actor.clone(),
            lamport: 0,
            wall_ms: timestamp::parse_millis(&r.updated_at).unwrap_or(0),
            parents: vec![],
            op: Op::Observe {
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
        }
    }

    fn observe_comment(&self, issue: IssueId, c: &RemoteComment) -> Event {
        let ms = timestamp::parse_millis(&c.updated_at).unwrap_or(0);
        Event {
            v: EVENT_FORMAT_VERSION,
            issue,
            actor: self.backend_actor.clone(),
            lamport: 0,
            wall_ms: ms,
            parents: vec![],
            op: Op::ObserveComment {
                backend: self.key.clone(),
                remote_id: c.remote_id.clone(),
                local: c.marker.as_deref().and_then(|m| m.parse().ok()),
                author: c.author.clone(),
                body: c.body.clone(),
                revision: ms.max(0) as u64,
                updated_at: c.updated_at.clone(),
            },
        }
    }

    /// A local event by the running actor on top of `set`.
    fn local(&self, issue: IssueId, set: &EventSet, parents: Vec<EventId>, op: Op) -> Event {
        let mut parents = parents;
        parents.sort();
        parents.dedup();
        Event {
            v: EVENT_FORMAT_VERSION,
            issue,
            actor: self.actor.clone(),
            lamport: set.max_lamport() + 1,
            wall_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            parents,
            op,
        }
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

    /// Import what changed since the cursor (everything with `reconcile`).
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
        // Issues new to this repository go into one pack through
        // fast-import; the rest are appended one by one.
        let mut fresh: Vec<(IssueId, Vec<Event>)> = Vec::new();
        let mut fresh_ids = std::collections::HashSet::new();
        let existing: std::collections::HashSet<IssueId> = self
            .store
            .list_refs()?
            .into_iter()
            .filter_map(|r| r.issue)
            .collect();
        for (n, r) in remotes.iter().enumerate() {
            if n > 0 && n % 500 == 0 {
                (self.progress)(&format!("  {n}/{} issues", remotes.len()));
            }
            let issue = self.issue_for(r);
            if existing.contains(&issue) || !fresh_ids.insert(issue) {
                self.import_one(r, &mut report)?;
            } else {
                let events = self.observation_events(issue, r)?;
                report.observed += 1;
                report.new_issues += 1;
                report.comments += events.len() - 1;
                fresh.push((issue, events));
            }
        }
        if !fresh.is_empty() {
            self.write_fresh(fresh)?;
        }
        if let Some(c) = next.or(cursor) {
            self.save_cursor(&c)?;
            report.cursor = Some(c);
        }
        Ok(report)
    }

    /// The observation of a remote revision and of its comments.
    fn observation_events(
        &self,
        issue: IssueId,
        r: &RemoteIssue,
    ) -> Result<Vec<Event>, ProjectError> {
        let mut events = vec![self.observe(issue, r)];
        if self.backend.capabilities().comments {
            for c in self.backend.comments(&r.remote_id)? {
                events.push(self.observe_comment(issue, &c));
            }
        }
        Ok(events)
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

    /// Record one remote issue (and its comments when it changed).
    fn import_one(&self, r: &RemoteIssue, report: &mut ImportReport) -> Result<(), ProjectError> {
        let issue = self.issue_for(r);
        let mut set = self.load_or_empty(issue)?;
        let is_new = set.is_empty();
        let obs = self.observe(issue, r);
        let (obs_id, _) = obs.seal();
        if set.contains(&obs_id) {
            return Ok(());
        }
        let events = self.observation_events(issue, r)?;
        let before = set.len();
        self.record(issue, &mut set, events, "import")?;
        let added = set.len() - before;
        report.observed += 1;
        report.comments += added.saturating_sub(1);
        if is_new {
            report.new_issues += 1;
        }
        Ok(())
    }

    /// Re-read one remote issue after a conflict and record it.
    fn reimport(&self, remote_id: &str) -> Result<(), ProjectError> {
        let Some(r) = self.backend.get(remote_id)? else {
            return Err(BackendError::NotFound {
                what: format!("{} issue {remote_id}", self.key),
            }
            .into());
        };
        self.import_one(&r, &mut ImportReport::default())
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

    /// The newest observation of `remote_id` in `set`.
    fn last_seen(&self, set: &EventSet, remote_id: &str) -> Option<(EventId, RemoteIssue)> {
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
                        revision: crate::backend::Revision {
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
            .map(|((_, id), r)| (id, r))
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
        let mut cache: std::collections::BTreeMap<String, String> = if full {
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
        // Best effort: without the cache the next export walks everything.
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let written = serde_json::to_vec(&cache)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                std::fs::create_dir_all(path.parent().expect("BUG: cache path has a parent"))?;
                std::fs::write(&tmp, bytes)
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(report)
    }

    fn export_one(&self, issue: IssueId, report: &mut ExportReport) -> Result<(), ProjectError> {
        let mut set = self.load_or_empty(issue)?;
        let remote_id = match self.binding(&set) {
            Some(id) => id,
            None if self.exportable(&set) => match self.create_remote(issue, &mut set, report)? {
                Some(id) => id,
                None => return Ok(()),
            },
            None => return Ok(()),
        };
        self.patch_remote(issue, &remote_id, &mut set, report)?;
        if self.backend.capabilities().comments {
            self.export_comments(issue, &remote_id, &mut set, report)?;
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
        let (intent_id, remote) = match intent {
            Some(intent_id) => match self.backend.find_by_marker(&marker, None)? {
                Some(found) => {
                    report.recovered += 1;
                    (intent_id, found)
                }
                None => {
                    report.created += 1;
                    (intent_id, self.create_with_marker(issue, set, &marker)?)
                }
            },
            None => {
                let bind = self.local(
                    issue,
                    set,
                    set.heads(),
                    Op::Bind {
                        backend: self.key.clone(),
                        remote_id: None,
                    },
                );
                let (intent_id, _) = bind.seal();
                self.record(issue, set, vec![bind], "export intent")?;
                report.created += 1;
                (intent_id, self.create_with_marker(issue, set, &marker)?)
            }
        };
        let bound = self.local(
            issue,
            set,
            vec![intent_id],
            Op::Bind {
                backend: self.key.clone(),
                remote_id: Some(remote.remote_id.clone()),
            },
        );
        let exported = self.local(
            issue,
            set,
            vec![intent_id],
            Op::Exported {
                backend: self.key.clone(),
                remote_id: remote.remote_id.clone(),
                revision: remote.revision.order,
            },
        );
        let obs = self.observe(issue, &remote);
        self.record(issue, set, vec![bound, exported, obs], "export create")?;
        Ok(Some(remote.remote_id))
    }

    fn create_with_marker(
        &self,
        issue: IssueId,
        set: &EventSet,
        marker: &str,
    ) -> Result<RemoteIssue, ProjectError> {
        let state = self.fold(issue, set)?;
        let new = NewRemoteIssue {
            title: state.title,
            body: state.body,
            status: state.status,
            labels: state.labels,
            assignees: state.assignees,
            marker: marker.to_owned(),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.backend.create(&new) {
                Ok(r) => return Ok(r),
                // The create may or may not have happened: look for it
                // by marker before trying again.
                Err(e) if attempt < CREATE_ATTEMPTS && uncertain(&e) => {
                    if let Some(found) = self.backend.find_by_marker(marker, None)? {
                        return Ok(found);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
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
                Ok(c) => return Ok(c),
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
    fn patch_remote(
        &self,
        issue: IssueId,
        remote_id: &str,
        set: &mut EventSet,
        report: &mut ExportReport,
    ) -> Result<(), ProjectError> {
        for attempt in 0..EXPORT_RETRIES {
            let state = self.fold(issue, set)?;
            let Some((_, seen)) = self.last_seen(set, remote_id) else {
                // Bound but never observed (a recovered create): read it.
                self.reimport(remote_id)?;
                *set = self.load_or_empty(issue)?;
                continue;
            };
            let patch = self.patch(&state, &seen);
            if patch.is_empty() {
                return Ok(());
            }
            let heads = set.heads();
            match self.backend.update(remote_id, &patch, &seen.revision) {
                Ok(after) => {
                    let exported = self.local(
                        issue,
                        set,
                        heads,
                        Op::Exported {
                            backend: self.key.clone(),
                            remote_id: remote_id.to_owned(),
                            revision: after.revision.order,
                        },
                    );
                    let obs = self.observe(issue, &after);
                    self.record(issue, set, vec![exported, obs], "export")?;
                    report.updated += 1;
                    // The tracker may not hold everything (e.g. one
                    // assignee): loop once more to settle on what it took.
                    if attempt + 1 < EXPORT_RETRIES {
                        continue;
                    }
                    return Ok(());
                }
                Err(BackendError::Conflict { .. }) => {
                    report.conflicts_retried += 1;
                    self.reimport(remote_id)?;
                    *set = self.load_or_empty(issue)?;
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

    /// Only the fields whose folded value differs from the last observation.
    fn patch(&self, state: &IssueState, seen: &RemoteIssue) -> IssuePatch {
        let caps = self.backend.capabilities();
        let mut assignees = state.assignees.clone();
        if !caps.multiple_assignees {
            assignees.truncate(1);
        }
        IssuePatch {
            title: (state.title != seen.title).then(|| state.title.clone()),
            body: (state.body != seen.body).then(|| state.body.clone()),
            status: (state.status != seen.status).then_some(state.status),
            labels: (state.labels != seen.labels).then(|| state.labels.clone()),
            assignees: (assignees != seen.assignees).then_some(assignees),
        }
    }

    /// Create local comments the tracker lacks (intent, marker, binding)
    /// and send local edits of bound comments.
    fn export_comments(
        &self,
        issue: IssueId,
        remote_id: &str,
        set: &mut EventSet,
        report: &mut ExportReport,
    ) -> Result<(), ProjectError> {
        let state = self.fold(issue, set)?;
        let mut bound: BTreeSet<EventId> = BTreeSet::new();
        let mut intents: BTreeSet<EventId> = BTreeSet::new();
        let mut remote_of = std::collections::BTreeMap::new();
        for (_, e) in set.iter() {
            match &e.op {
                Op::BindComment {
                    backend,
                    comment,
                    remote_id,
                } if *backend == self.key => match remote_id {
                    Some(r) => {
                        bound.insert(*comment);
                        remote_of.insert(*comment, r.clone());
                    }
                    None => {
                        intents.insert(*comment);
                    }
                },
                Op::ObserveComment {
                    backend,
                    local: Some(c),
                    remote_id,
                    ..
                } if *backend == self.key => {
                    bound.insert(*c);
                    remote_of.insert(*c, remote_id.clone());
                }
                _ => {}
            }
        }
        let local_comments: Vec<_> = state
            .comments
            .iter()
            .filter(|c| matches!(set.iter().find(|(id, _)| **id == c.id), Some((_, e)) if matches!(e.op, Op::AddComment { .. })))
            .cloned()
            .collect();
        let mut remote_cache: Option<Vec<RemoteComment>> = None;
        for c in local_comments {
            if bound.contains(&c.id) {
                continue;
            }
            let marker = c.id.to_hex();
            let found = if intents.contains(&c.id) {
                let list = match &remote_cache {
                    Some(l) => l.clone(),
                    None => {
                        let l = self.backend.comments(remote_id)?;
                        remote_cache = Some(l.clone());
                        l
                    }
                };
                list.into_iter()
                    .find(|rc| rc.marker.as_deref() == Some(marker.as_str()))
            } else {
                let intent = self.local(
                    issue,
                    set,
                    set.heads(),
                    Op::BindComment {
                        backend: self.key.clone(),
                        comment: c.id,
                        remote_id: None,
                    },
                );
                self.record(issue, set, vec![intent], "export comment intent")?;
                None
            };
            let remote = match found {
                Some(r) => r,
                None => self.add_comment_once(remote_id, &c.body, &marker)?,
            };
            let ms = timestamp::parse_millis(&remote.updated_at)
                .unwrap_or(0)
                .max(0) as u64;
            let events = vec![
                self.local(
                    issue,
                    set,
                    set.heads(),
                    Op::BindComment {
                        backend: self.key.clone(),
                        comment: c.id,
                        remote_id: Some(remote.remote_id.clone()),
                    },
                ),
                self.local(
                    issue,
                    set,
                    set.heads(),
                    Op::Exported {
                        backend: self.key.clone(),
                        remote_id: format!("comment:{}", remote.remote_id),
                        revision: ms,
                    },
                ),
                self.observe_comment(issue, &remote),
            ];
            self.record(issue, set, events, "export comment")?;
            report.comments += 1;
        }
        // Local edits of comments the tracker already has.
        let state = self.fold(issue, set)?;
        for c in &state.comments {
            let Some(rid) = remote_of.get(&c.id) else {
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
                let remote = self.backend.edit_comment(remote_id, rid, &c.body)?;
                let ms = timestamp::parse_millis(&remote.updated_at)
                    .unwrap_or(0)
                    .max(0) as u64;
                let events = vec![
                    self.local(
                        issue,
                        set,
                        set.heads(),
                        Op::Exported {
                            backend: self.key.clone(),
                            remote_id: format!("comment:{rid}"),
                            revision: ms,
                        },
                    ),
                    self.observe_comment(issue, &remote),
                ];
                self.record(issue, set, events, "export comment edit")?;
                report.comments += 1;
            }
        }
        Ok(())
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
