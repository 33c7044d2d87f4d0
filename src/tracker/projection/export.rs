//! Export: send what changed locally to the tracker, with intent records
//! so a killed run never creates twice, and record what was sent.

use super::comments::CommentsSent;
use super::*;

impl Projection<'_> {
    /// Whether an unbound issue belongs to this repository (created here,
    /// not imported from another tracker).
    pub(super) fn exportable(&self, set: &EventSet) -> bool {
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
    pub(super) fn export_cache_path(&self) -> std::path::PathBuf {
        let hash = blake3::hash(self.key.as_bytes()).to_hex();
        self.store.reposix_dir().join(format!(
            "export-{}-{}.json",
            self.backend.kind(),
            &hash[..16]
        ))
    }

    pub(super) fn export_with(&self, full: bool) -> Result<ExportReport, ProjectError> {
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
        *self.shared.borrow_mut() = None;
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

    pub(super) fn export_one(
        &self,
        issue: IssueId,
        report: &mut ExportReport,
    ) -> Result<(), ProjectError> {
        let mut set = self.load_or_empty(issue)?;
        // A copy folded into another issue is exported only for what was
        // written on it before its writer learnt of the merge (a body edit,
        // a label, a comment): that goes to the tracker issue both are
        // bound to, and the issue it was merged into imports it from
        // there. It is patched as any bound issue (the difference from its
        // own last observation; a stale revision re-imports into the copy
        // first); it creates nothing, retires no twin and sends no links.
        let merged = set.merged_into().is_some();
        let remote_id = match self.binding(&set) {
            Some(id) => id,
            None if !merged && self.exportable(&set) => {
                match self.create_remote(issue, &mut set, report)? {
                    Some(id) => id,
                    None => return Ok(()),
                }
            }
            None => return Ok(()),
        };
        if self.is_gone(&set, &remote_id) {
            return Ok(());
        }
        if !merged && self.reused_elsewhere(issue, &set, &remote_id)? {
            let gone = self.observe_gone(issue, &remote_id);
            self.record(issue, &mut set, vec![gone], "export: id reused")?;
            report.gone += 1;
            return Ok(());
        }
        self.catch_up_body(issue, &mut set, &remote_id)?;
        if !self.patch_remote(issue, &remote_id, &mut set, report)? {
            report.gone += 1;
            return Ok(());
        }
        if !merged {
            self.retire_twins(issue, &remote_id, &mut set, report)?;
        }
        if self.backend.capabilities().comments {
            // The issue was deleted on the tracker since the last import
            // (nothing else needed a PATCH, so nothing noticed): a comment
            // endpoint answers 404. Confirmed on the issue itself (by
            // `export_comments` for edits and deletions, here for the
            // others), it is recorded gone like a 404 on PATCH, and later
            // syncs leave it alone instead of failing for good.
            let gone = match self.export_comments(issue, &remote_id, &mut set, report) {
                Ok(CommentsSent::IssueGone) => true,
                Err(ProjectError::Backend(BackendError::NotFound { .. }))
                    if self.backend.get(&remote_id)?.is_none() =>
                {
                    true
                }
                r => {
                    r?;
                    false
                }
            };
            if gone {
                let gone = self.observe_gone(issue, &remote_id);
                self.record(issue, &mut set, vec![gone], "export: gone")?;
                report.gone += 1;
                return Ok(());
            }
        } else if let Some(target) = set.merged_into() {
            report.comments_moved += self.move_comments(&set, target)?;
        } else {
            let state = self.fold(issue, &set)?;
            report.comments_local_only += state
                .comments
                .iter()
                .filter(|c| c.remote.as_ref().is_none_or(|r| r.backend != self.key))
                .count();
        }
        // Typed links last: a relation that fails leaves the comments sent.
        if !merged {
            self.export_links(issue, &remote_id, &mut set, report)?;
        }
        Ok(())
    }

    /// Intent first, then the remote create with a marker, then the
    /// binding; an intent without binding means a crash in between: find
    /// the remote issue by marker before creating anything.
    pub(super) fn create_remote(
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
            self.bind_created(issue, set, &found, set.heads(), ops, false)?;
            report.recovered += 1;
            return Ok(Some(found.remote_id));
        }
        let heads = set.heads();
        let state = self.fold(issue, set)?;
        let mut view = self.body(issue, set)?;
        let (remote, ours) = self.create_with_marker(&state, &marker, report)?;
        let chain = self.chain(&remote.remote_id);
        let ops = if ours {
            report.created += 1;
            view.exported(&chain, remote.revision.order, &remote.body)
        } else {
            // Another clone's create of the same issue (found by marker)
            // won: its text is that clone's, not this document's at
            // `heads`. Recording it as exported from here would claim this
            // text is the tracker's, and undo local edits made since the
            // `create` (a deletion came back). It is synced like an import.
            report.recovered += 1;
            view.import(set, &chain, remote.revision.order, &remote.body)
        }
        .map_err(|e| Self::body_error(issue, e))?;
        self.bind_created(issue, set, &remote, heads, ops, ours)?;
        self.note_bound(issue, &remote.remote_id);
        Ok(Some(remote.remote_id))
    }

    /// Record a remote create: binding, exported record (after `heads`,
    /// the events the create carried), observation, creation time, and the
    /// body's sync point.
    pub(super) fn bind_created(
        &self,
        issue: IssueId,
        set: &mut EventSet,
        remote: &RemoteIssue,
        heads: Vec<EventId>,
        body_ops: Vec<Op>,
        ours: bool,
    ) -> Result<(), ProjectError> {
        // `exported` only for what this call sent: a remote issue found by
        // marker holds another writer's values, and claiming the local
        // events reached it would order them before its revision.
        let mut ops: Vec<Op> = ours
            .then(|| Op::Exported {
                backend: self.key.clone(),
                remote_id: remote.remote_id.clone(),
                revision: remote.revision.order,
            })
            .into_iter()
            .collect();
        ops.push(Op::Bind {
            backend: self.key.clone(),
            remote_id: Some(remote.remote_id.clone()),
        });
        ops.extend(body_ops);
        let mut events = vec![self.observe(issue, remote)];
        events.extend(self.observe_created(issue, &remote.remote_id, &remote.created_at));
        events.extend(self.local(issue, set, heads, ops));
        self.record(issue, set, events, "export create")?;
        Ok(())
    }

    /// Create the remote issue; `true` with it when it is the one this
    /// call made (else another client's create of the same issue, found by
    /// marker, whose text may be another state of the body).
    pub(super) fn create_with_marker(
        &self,
        state: &IssueState,
        marker: &str,
        report: &mut ExportReport,
    ) -> Result<(RemoteIssue, bool), ProjectError> {
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
                Ok(r) => {
                    let id = r.remote_id.clone();
                    let kept = self.settle_twin(r, marker)?;
                    let ours = kept.remote_id == id;
                    return Ok((kept, ours));
                }
                // The create may or may not have happened: look for it
                // by marker before trying again.
                Err(e) if attempt < CREATE_ATTEMPTS && uncertain(&e) => {
                    if let Some(found) = self.backend.find_by_marker(marker, None)? {
                        // This call's create, or another client's.
                        return Ok((found, false));
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
                    return Ok((*r, true));
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
    pub(super) fn settle_twin(
        &self,
        created: RemoteIssue,
        marker: &str,
    ) -> Result<RemoteIssue, ProjectError> {
        use crate::tracker::BackendKind;
        if !matches!(self.backend.kind(), BackendKind::Sim | BackendKind::Github) {
            return Ok(created);
        }
        let Some(ms) = created.updated_at.millis() else {
            return Ok(created);
        };
        let since = time::format_secs(ms / 1000 - TWIN_WINDOW_SECS as i64);
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

    /// Send the minimal patch; on conflict re-import, re-fold, retry.
    /// Returns `false` when the tracker no longer has the issue (recorded).
    pub(super) fn patch_remote(
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
    pub(super) fn assignees_for(
        &self,
        state: &IssueState,
        seen: Option<&RemoteIssue>,
    ) -> Vec<String> {
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
    pub(super) fn patch(
        &self,
        state: &IssueState,
        seen: &RemoteIssue,
        refused: &[Refused],
    ) -> IssuePatch {
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
    pub(super) fn remember_refusals(
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
    pub(super) fn refused_path(&self) -> std::path::PathBuf {
        let hash = blake3::hash(self.key.as_bytes()).to_hex();
        self.store.reposix_dir().join(format!(
            "refused-{}-{}.json",
            self.backend.kind(),
            &hash[..16]
        ))
    }

    pub(super) fn load_refused(&self) -> BTreeMap<String, Vec<Refused>> {
        std::fs::read(self.refused_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub(super) fn save_refused(&self, all: &BTreeMap<String, Vec<Refused>>) {
        let path = self.refused_path();
        let bytes = serde_json::to_vec(all).expect("BUG: the cache always serializes");
        let _ = write_atomic(&path, &bytes, Durability::Cache);
    }
}
