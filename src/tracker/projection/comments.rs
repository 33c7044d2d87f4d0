//! Comments: which local comment is which tracker comment, and their
//! export.
//!
//! **Attribution** (`refs-format.md` 6f): no tracker has a field for "an
//! agent wrote this for a person", so a comment whose author acted for a
//! human is sent with a first line `_<agent> on behalf of <human>_` and a
//! blank line (markdown emphasis: an italic paragraph in JIRA's ADF and
//! Confluence's storage format, which read back as `*…*`). Every
//! observation of a tracker comment drops exactly such a first line
//! ([`strip_attribution`]), a function of the tracker's text alone, so
//! replicas observe the same bytes, the line never enters the local text,
//! and the exporter's comparison (observed text against local text) sees
//! no difference to send again.

use super::*;

/// The order of tracker comment ids: numeric ids by value (the older
/// first), then others by text.
fn comment_order(id: &str) -> (u64, &str) {
    (id.parse::<u64>().unwrap_or(u64::MAX), id)
}

/// The text sent for a local comment: its attribution line first when
/// its author acted for someone.
pub(super) fn comment_text(c: &crate::crdt::Comment) -> String {
    match &c.on_behalf_of {
        Some(human) => format!("_{} on behalf of {human}_\n\n{}", c.author, c.body),
        None => c.body.clone(),
    }
}

/// A tracker comment's text without its attribution line: a first line
/// `_A on behalf of H_` (or `*A on behalf of H*`, as Atlassian markdown
/// reads back) where A and H are actor names, followed by a blank line.
/// Anything else is left as it is.
pub(super) fn strip_attribution(text: &str) -> &str {
    let Some((line, rest)) = text.split_once("\n\n") else {
        return text;
    };
    let inner = ['_', '*']
        .into_iter()
        .find_map(|m| line.strip_prefix(m).and_then(|l| l.strip_suffix(m)));
    let named = inner
        .and_then(|i| i.split_once(" on behalf of "))
        .is_some_and(|(a, h)| ActorId::new(a).is_ok() && ActorId::new(h).is_ok());
    if named {
        rest
    } else {
        text
    }
}

impl Projection<'_> {
    /// Write the local comments of `copy` (a merged copy, refs-format.md
    /// 6a) on `target`, the issue it was merged into, when the tracker
    /// cannot carry them there (no comments API): each `add_comment`
    /// without a `bind_comment`, then its edits and its deletion in the
    /// copy's (lamport, id) order, each derived from the copy's event
    /// alone (its actor, time and operation; the parent is the target's
    /// `create` for an add, else the previous event derived for the same
    /// comment), so every replica writes the same bytes and a second move
    /// adds nothing. The number of events written.
    pub(super) fn move_comments(
        &self,
        copy: &EventSet,
        target: IssueId,
    ) -> Result<usize, ProjectError> {
        let bound: std::collections::HashSet<EventId> = copy
            .iter()
            .filter_map(|(_, e)| match &e.op {
                Op::BindComment { comment, .. } => Some(*comment),
                _ => None,
            })
            .collect();
        let mut events: Vec<(&EventId, &Event)> = copy
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e.op,
                    Op::AddComment { .. } | Op::EditComment { .. } | Op::DeleteComment { .. }
                )
            })
            .collect();
        if events.is_empty() {
            return Ok(0);
        }
        events.sort_by_key(|(id, e)| (e.lamport, **id));
        let mut set = self.load_or_empty(target)?;
        let Some((create, create_lamport)) = set
            .iter()
            .find(|(_, e)| matches!(e.op, Op::Create { .. }))
            .map(|(id, e)| (*id, e.lamport))
        else {
            return Ok(0);
        };
        // Per comment of the copy: its id on the target, and the last event
        // derived for it (id, lamport).
        let mut moved: BTreeMap<EventId, (EventId, EventId, u64)> = BTreeMap::new();
        let mut out = Vec::new();
        for (id, e) in events {
            let (comment, op) = match &e.op {
                Op::AddComment { body } if !bound.contains(id) => {
                    (*id, Op::AddComment { body: body.clone() })
                }
                Op::EditComment { comment, body } => match moved.get(comment) {
                    Some(&(on_target, _, _)) => (
                        *comment,
                        Op::EditComment {
                            comment: on_target,
                            body: body.clone(),
                        },
                    ),
                    None => continue,
                },
                Op::DeleteComment { comment } => match moved.get(comment) {
                    Some(&(on_target, _, _)) => {
                        (*comment, Op::DeleteComment { comment: on_target })
                    }
                    None => continue,
                },
                _ => continue,
            };
            let (parent, lamport) = match moved.get(&comment) {
                Some(&(_, last, lamport)) => (last, lamport),
                None => (create, create_lamport),
            };
            let d = Event {
                v: op.since_version(),
                issue: target,
                actor: e.actor.clone(),
                lamport: lamport.saturating_add(1),
                wall_ms: e.wall_ms,
                parents: vec![parent],
                op,
            };
            let did = d.seal().0;
            let on_target = match moved.get(&comment) {
                Some(&(t, _, _)) => t,
                None => did,
            };
            moved.insert(comment, (on_target, did, d.lamport));
            out.push(d);
        }
        self.record(target, &mut set, out, "merged copy: comments moved")
    }

    /// `add_comment`, recovering by marker when the outcome is uncertain.
    pub(super) fn add_comment_once(
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

    /// Local comment id -> remote comment id on this backend, for every
    /// comment (live or deleted) bound to one.
    ///
    /// A comment bound more than once is the one its newest binding names
    /// (moved from a retired twin, see `twins.rs`: the move is written
    /// after, and causally after, the binding it replaces), unless several
    /// of its bound copies are still on the tracker (exported twice: a
    /// clone found no marker on the first copy) on an issue with one live
    /// remote object: then the oldest of those (smallest id), the one no
    /// replica retires.
    pub(super) fn comment_remotes(&self, set: &EventSet) -> BTreeMap<EventId, String> {
        let mut newest: BTreeMap<EventId, ((u64, EventId), String)> = BTreeMap::new();
        let mut bound: BTreeMap<EventId, BTreeSet<String>> = BTreeMap::new();
        let mut observed: BTreeSet<String> = BTreeSet::new();
        for (id, e) in set.iter() {
            match &e.op {
                Op::BindComment {
                    backend,
                    comment,
                    remote_id: Some(r),
                } if *backend == self.key => {
                    bound.entry(*comment).or_default().insert(r.clone());
                    let key = (e.lamport, *id);
                    let slot = newest.entry(*comment).or_insert((key, r.clone()));
                    if key > slot.0 {
                        *slot = (key, r.clone());
                    }
                }
                Op::ObserveComment {
                    backend, remote_id, ..
                } if *backend == self.key => {
                    observed.insert(remote_id.clone());
                }
                _ => {}
            }
        }
        let on_tracker = self.observed_comments(set);
        let one_object = self.one_remote_object(set);
        let mut out: BTreeMap<EventId, String> = newest
            .into_iter()
            .map(|(comment, (_, rid))| {
                let live: Vec<&String> = bound
                    .get(&comment)
                    .into_iter()
                    .flatten()
                    .filter(|r| on_tracker.contains(*r))
                    .collect();
                let rid = if one_object && live.len() > 1 {
                    live.into_iter()
                        .min_by_key(|r| comment_order(r))
                        .cloned()
                        .unwrap_or(rid)
                } else {
                    rid
                };
                (comment, rid)
            })
            .collect();
        let named = self.named_comments(set);
        for rid in observed {
            let id = named
                .get(&rid)
                .copied()
                .unwrap_or_else(|| remote_comment_id(&self.key, &rid));
            out.entry(id).or_insert(rid);
        }
        out
    }

    /// Whether the issue has at most one live remote object here. Comment
    /// bindings do not say which of two twin issues a copy is on: a
    /// comment's copies are told apart (`comment_remotes`) and retired
    /// (`export_comments`) only then.
    fn one_remote_object(&self, set: &EventSet) -> bool {
        self.bindings_of(set)
            .into_iter()
            .filter(|r| !self.is_gone(set, r))
            .count()
            <= 1
    }

    /// Local comment id -> the tracker comments bound to it.
    fn bound_copies(&self, set: &EventSet) -> BTreeMap<EventId, BTreeSet<String>> {
        let mut out: BTreeMap<EventId, BTreeSet<String>> = BTreeMap::new();
        for (_, e) in set.iter() {
            if let Op::BindComment {
                backend,
                comment,
                remote_id: Some(r),
            } = &e.op
            {
                if *backend == self.key {
                    out.entry(*comment).or_default().insert(r.clone());
                }
            }
        }
        out
    }

    /// Local comment id -> every tracker comment that is a copy of it: all
    /// its bindings and the observed comments named after it. A comment has
    /// two copies when a clone exported it again after the first copy was
    /// deleted on the tracker, before it had the first binding (the
    /// marker search found nothing): both are the same comment.
    pub(super) fn comment_copies(&self, set: &EventSet) -> BTreeMap<EventId, BTreeSet<String>> {
        let mut out = self.bound_copies(set);
        for (rid, id) in self.named_comments(set) {
            out.entry(id).or_default().insert(rid);
        }
        out
    }

    /// Remote comment id -> the local comment the set says it is: named by
    /// its marker (an observation's `local`), else by its first
    /// `bind_comment`. Comments in neither are the derived id of section 6a.
    pub(super) fn named_comments(&self, set: &EventSet) -> HashMap<String, EventId> {
        let mut marked: HashMap<String, EventId> = HashMap::new();
        let mut bound: HashMap<String, EventId> = HashMap::new();
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
                    local: Some(l),
                    ..
                } if *backend == self.key => {
                    marked.entry(remote_id.clone()).or_insert(*l);
                }
                _ => {}
            }
        }
        for (rid, id) in bound {
            marked.entry(rid).or_insert(id);
        }
        marked
    }

    /// Record that local comment `local` is tracker comment `remote`, which
    /// this run wrote: its observation, and `exported` plus `bind_comment`
    /// on the heads before the write.
    pub(super) fn record_comment_export(
        &self,
        issue: IssueId,
        set: &mut EventSet,
        local: EventId,
        remote: &RemoteComment,
        why: &str,
    ) -> Result<(), ProjectError> {
        let heads = set.heads();
        let ms = remote.updated_at.millis().unwrap_or(0).max(0) as u64;
        let seen = self.newest_comment_observations(set);
        let mut events = self.comment_events(issue, seen.get(&remote.remote_id), remote);
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
                    comment: local,
                    remote_id: Some(remote.remote_id.clone()),
                },
            ],
        ));
        self.record(issue, set, events, why)?;
        Ok(())
    }

    /// Delete the tracker comments `doomed` of remote issue `remote_id`
    /// (where the tracker can) and record each one gone. `true` when the
    /// whole issue is gone (the caller records that; nothing is recorded
    /// for the comment).
    fn delete_copies<'r>(
        &self,
        issue: IssueId,
        remote_id: &str,
        set: &mut EventSet,
        doomed: impl IntoIterator<Item = &'r String>,
        why: &str,
        report: &mut ExportReport,
    ) -> Result<bool, ProjectError> {
        for rid in doomed {
            match self.backend.delete_comment(remote_id, rid) {
                Err(BackendError::NotFound { .. }) if self.backend.get(remote_id)?.is_none() => {
                    return Ok(true);
                }
                Ok(()) | Err(BackendError::NotFound { .. }) => {
                    let ev = self.observe_gone(issue, &format!("comment:{rid}"));
                    self.record(issue, set, vec![ev], why)?;
                    report.comments += 1;
                }
                Err(BackendError::Unsupported { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }

    /// Create local comments the tracker lacks (intent, marker, binding),
    /// send local edits and deletions of bound comments.
    /// [`CommentsSent::IssueGone`] when a comment's 404 was confirmed on
    /// the issue itself (the caller records the issue gone).
    pub(super) fn export_comments(
        &self,
        issue: IssueId,
        remote_id: &str,
        set: &mut EventSet,
        report: &mut ExportReport,
    ) -> Result<CommentsSent, ProjectError> {
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
                    self.add_comment_once(remote_id, &comment_text(&c), &marker)?
                }
            };
            self.record_comment_export(issue, set, c.id, &remote, "export comment")?;
            report.comments += 1;
        }
        // Local edits and deletions of comments the tracker has.
        let state = self.fold(issue, set)?;
        let remotes = self.comment_remotes(set);
        // Tracker comments observed and not gone (a retired twin's
        // comments are gone: its copies are left alone).
        let on_tracker = self.observed_comments(set);
        let live: BTreeMap<EventId, &crate::crdt::Comment> =
            state.comments.iter().map(|c| (c.id, c)).collect();
        let copies = self.comment_copies(set);
        let bound_copies = self.bound_copies(set);
        let one_object = self.one_remote_object(set);
        // One pass over the log for every comment's newest observation.
        let seen = self.newest_comment_observations(set);
        for (id, rid) in &remotes {
            let Some(c) = live.get(id) else {
                // Deleted here: delete there (where the tracker can), every
                // copy of it.
                let all = copies.get(id).into_iter().flatten().chain([rid]);
                let doomed: BTreeSet<&String> = all.filter(|r| on_tracker.contains(*r)).collect();
                let why = "export comment delete";
                if self.delete_copies(issue, remote_id, set, doomed, why, report)? {
                    return Ok(CommentsSent::IssueGone);
                }
                continue;
            };
            // A comment exported twice (a clone that had it before the
            // first export's record found no marker on the first copy: a
            // tracker user had dropped it): the fold reads every copy's
            // edits, and the copies the binding does not name go.
            if one_object {
                let others =
                    bound_copies.get(id).into_iter().flatten().filter(|r| {
                        comment_order(r) > comment_order(rid) && on_tracker.contains(*r)
                    });
                let why = "export: comment copy retired";
                if self.delete_copies(issue, remote_id, set, others, why, report)? {
                    return Ok(CommentsSent::IssueGone);
                }
            }
            if !on_tracker.contains(rid) {
                continue;
            }
            let last = seen.get(rid).and_then(|e| match &e.op {
                Op::ObserveComment { body, .. } => Some(body),
                _ => None,
            });
            if last.is_some_and(|body| *body != c.body) {
                let heads = set.heads();
                let remote = match self.backend.edit_comment(remote_id, rid, &comment_text(c)) {
                    Ok(r) => r,
                    // A 404 for the whole issue (deleted on the tracker) is
                    // not the comment's: recorded as the comment's, the
                    // fold would delete it here (seed 1216: an edit of a
                    // comment on a deleted issue lost the comment). The
                    // caller records the issue gone; the comment stays.
                    Err(BackendError::NotFound { .. })
                        if self.backend.get(remote_id)?.is_none() =>
                    {
                        return Ok(CommentsSent::IssueGone);
                    }
                    Err(BackendError::NotFound { .. }) => {
                        let ev = self.observe_gone(issue, &format!("comment:{rid}"));
                        self.record(issue, set, vec![ev], "export comment gone")?;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let ms = remote.updated_at.millis().unwrap_or(0).max(0) as u64;
                let mut events = vec![self.observe_comment(issue, seen.get(rid), &remote)];
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
        Ok(CommentsSent::Sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribution_lines_are_stripped_exactly() {
        assert_eq!(
            strip_attribution("_agent-7 on behalf of alice_\n\nDone."),
            "Done."
        );
        assert_eq!(
            strip_attribution("*agent-7 on behalf of alice*\n\nDone."),
            "Done."
        );
        assert_eq!(
            strip_attribution("_agent-7 on behalf of alice_\n\n_agent-7 on behalf of alice_\n\nx"),
            "_agent-7 on behalf of alice_\n\nx",
            "one line only"
        );
        for kept in [
            "Done.",
            "_agent-7 on behalf of alice_",
            "_agent-7 on behalf of alice_\nDone.",
            "_agent 7 on behalf of alice_\n\nDone.",
            "_agent-7 on behalf of alice*\n\nDone.",
            "_agent-7 for alice_\n\nDone.",
        ] {
            assert_eq!(strip_attribution(kept), kept);
        }
    }
}

/// How an export of an issue's comments ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CommentsSent {
    /// Everything there was to send was sent.
    Sent,
    /// A comment endpoint answered 404 and the issue itself is gone.
    IssueGone,
}
