//! Import: list what changed on the tracker and record it as events.

use super::*;

impl Projection<'_> {
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
                if !bindings.reused(*old, r)
                    && old.is_derived()
                    && !issue.is_derived()
                    && !self.revision_differs(*old, r)
                {
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
                } && !self.observed_apart(*other, keep, rid);
                // A derived copy goes into the issue created here; of two
                // derived copies (replicas that derived the id with and
                // without the creation time), the larger id goes into the
                // smaller, the same choice everywhere.
                if same_object && other.is_derived() && (!keep.is_derived() || keep < *other) {
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
        self.import_links(&remotes, &mut report)?;
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
    pub(super) fn merge_into(&self, copy: IssueId, target: IssueId) -> Result<(), ProjectError> {
        let mut set = self.load_or_empty(copy)?;
        if set.merged_into().is_some() {
            return Ok(());
        }
        let events = self.local(copy, &set, set.heads(), vec![Op::MergedInto { target }]);
        self.record(copy, &mut set, events, "merged into another local copy")?;
        Ok(())
    }

    /// Record a bound remote issue as gone if the tracker says it is.
    pub(super) fn check_gone(
        &self,
        issue: IssueId,
        remote_id: &str,
        report: &mut ImportReport,
    ) -> Result<(), ProjectError> {
        self.check_gone_as(issue, remote_id, false, report)
    }

    /// [`Projection::check_gone`]; `known` skips asking the tracker.
    pub(super) fn check_gone_as(
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
    pub(super) fn fresh_events(
        &self,
        issue: IssueId,
        r: &RemoteIssue,
    ) -> Result<Vec<Event>, ProjectError> {
        let mut fixed = vec![self.observe(issue, r)];
        fixed.extend(self.observe_created(issue, &r.remote_id, &r.created_at));
        if self.backend.capabilities().comments {
            for c in self.backend.comments(&r.remote_id)? {
                fixed.extend(self.comment_events(issue, None, &c));
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

    pub(super) fn comment_events(
        &self,
        issue: IssueId,
        newest: Option<&Event>,
        c: &RemoteComment,
    ) -> Vec<Event> {
        let mut out = vec![self.observe_comment(issue, newest, c)];
        out.extend(self.observe_created(issue, &format!("comment:{}", c.remote_id), &c.created_at));
        out
    }

    /// Write the logs of issues new to this repository as one pack. A ref
    /// created meanwhile by another writer fails the pack's update of that
    /// ref only; those issues are then appended one by one.
    pub(super) fn write_fresh(
        &self,
        fresh: Vec<(IssueId, Vec<Event>)>,
    ) -> Result<(), ProjectError> {
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
    pub(super) fn import_one(
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
            let seen = self.newest_comment_observations(&set);
            for c in &listed {
                fixed.extend(self.comment_events(issue, seen.get(&c.remote_id), c));
            }
            // Comments we saw on the tracker that it no longer lists. Not
            // while the issue has twins (two live remote issues here):
            // comment bindings do not say which of them a comment is on,
            // and the other's comments are not in this listing.
            let mut live: BTreeSet<String> = self
                .bindings_of(&set)
                .into_iter()
                .filter(|rid| !self.is_gone(&set, rid))
                .collect();
            live.insert(r.remote_id.clone());
            if live.len() <= 1 {
                for rid in self.observed_comments(&set) {
                    if !present.contains(rid.as_str()) {
                        fixed.push(self.observe_gone(issue, &format!("comment:{rid}")));
                    }
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
    pub(super) fn body_behind(
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
    pub(super) fn catch_up_body(
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
    pub(super) fn observed_comments(&self, set: &EventSet) -> BTreeSet<String> {
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
    pub(super) fn reimport(&self, issue: IssueId, remote_id: &str) -> Result<bool, ProjectError> {
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
    /// A marker naming another local issue says the same (the id was
    /// reused within the second the creation times are given in).
    pub(super) fn is_reused(&self, issue: IssueId, r: &RemoteIssue) -> Result<bool, ProjectError> {
        if marked_for_another(issue, r) {
            return Ok(true);
        }
        if r.created_at.is_empty() {
            return Ok(false);
        }
        let set = self.load_or_empty(issue)?;
        let reused = set.iter().any(|(_, e)| {
            matches!(&e.op, Op::ObserveCreated { backend, remote_id, created_at }
                if *backend == self.key && *remote_id == r.remote_id && *created_at != r.created_at.as_str())
        });
        Ok(reused)
    }
}

/// Whether `r`'s marker names a locally created issue other than `issue`.
pub(super) fn marked_for_another(issue: IssueId, r: &RemoteIssue) -> bool {
    r.marker
        .as_deref()
        .and_then(|m| m.parse::<IssueId>().ok())
        .is_some_and(|m| m != issue && !m.is_derived())
}
