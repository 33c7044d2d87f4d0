//! Twins: one local issue bound to two remote issues of one tracker.
//!
//! Two replicas create the same issue on the tracker when neither has the
//! other's `bind` record and the tracker no longer carries the marker that
//! would have led the second one to the first (a tracker user deleted it).
//! Neither could have avoided the second create. Once the bindings meet,
//! every replica keeps the same one (the remote issue created first) and
//! an exporter retires the others: their comments move to the one kept,
//! then the twin is deleted on the tracker (refs-format.md, section 6a).

use super::*;

impl Projection<'_> {
    /// The remote issues `set` is bound to on this backend (bound or
    /// observed): the live ones first, the one to keep leading (the
    /// tracker's creation time, then the id), then the ones the tracker
    /// reported gone.
    pub(super) fn bindings_of(&self, set: &EventSet) -> Vec<String> {
        let mut bound: BTreeSet<String> = BTreeSet::new();
        let mut gone: BTreeSet<String> = BTreeSet::new();
        let mut created: HashMap<String, i64> = HashMap::new();
        for (_, e) in set.iter() {
            match &e.op {
                Op::Observe {
                    backend, remote_id, ..
                }
                | Op::Bind {
                    backend,
                    remote_id: Some(remote_id),
                } if *backend == self.key => {
                    bound.insert(remote_id.clone());
                }
                Op::ObserveGone { backend, remote_id } if *backend == self.key => {
                    gone.insert(remote_id.clone());
                }
                Op::ObserveCreated {
                    backend,
                    remote_id,
                    created_at,
                } if *backend == self.key => {
                    if let Some(ms) = time::parse_millis(created_at) {
                        let slot = created.entry(remote_id.clone()).or_insert(ms);
                        *slot = (*slot).min(ms);
                    }
                }
                _ => {}
            }
        }
        let mut live: Vec<String> = bound
            .iter()
            .filter(|r| !gone.contains(*r))
            .cloned()
            .collect();
        live.sort_by_key(|r| {
            (
                created.get(r).copied().unwrap_or(i64::MAX),
                r.parse::<u64>().unwrap_or(u64::MAX),
                r.clone(),
            )
        });
        live.extend(bound.into_iter().filter(|r| gone.contains(r)));
        live
    }

    /// Retire every live remote issue bound to `issue` other than `keep`:
    /// comments `keep` lacks are posted to it (with the marker of the local
    /// comment each one is, so this happens once however many replicas do
    /// it), then the twin is deleted and recorded gone. A tracker that
    /// cannot delete issues keeps the twin; the report names it.
    pub(super) fn retire_twins(
        &self,
        issue: IssueId,
        keep: &str,
        set: &mut EventSet,
        report: &mut ExportReport,
    ) -> Result<(), ProjectError> {
        let twins: Vec<String> = self
            .bindings_of(set)
            .into_iter()
            .filter(|r| r != keep && !self.is_gone(set, r))
            .collect();
        if twins.is_empty() {
            return Ok(());
        }
        let state = self.fold(issue, set)?;
        let mut kept: Vec<RemoteComment> = if self.backend.capabilities().comments {
            self.backend.comments(keep)?
        } else {
            Vec::new()
        };
        let bound_comments = self.named_comments(set);
        let deleted: HashSet<EventId> = set
            .iter()
            .filter_map(|(_, e)| match &e.op {
                Op::DeleteComment { comment } => Some(*comment),
                _ => None,
            })
            .collect();
        for twin in twins {
            // The twin may be gone already (its creator deleted it), and a
            // tracker that reuses ids may have given its id to another
            // issue since: that one is not deleted (nor its comments moved).
            let stale = match self.backend.get(&twin)? {
                None => true,
                Some(r) => {
                    let named = r.marker.as_deref().and_then(|m| m.parse::<IssueId>().ok());
                    named != Some(issue)
                        && (self.is_reused(issue, &r)? || self.revision_differs(issue, &r))
                }
            };
            if stale {
                let gone = self.observe_gone(issue, &twin);
                self.record(issue, set, vec![gone], "retire twin: gone")?;
                continue;
            }
            let theirs = if self.backend.capabilities().comments {
                match self.backend.comments(&twin) {
                    Ok(c) => c,
                    Err(BackendError::NotFound { .. }) => Vec::new(),
                    Err(e) => return Err(e.into()),
                }
            } else {
                Vec::new()
            };
            for c in theirs {
                // The local comment this one is: bound to it, else named by
                // its marker, else the id an import derives for it.
                let local = bound_comments
                    .get(&c.remote_id)
                    .copied()
                    .or_else(|| c.marker.as_deref().and_then(|m| m.parse().ok()))
                    .unwrap_or_else(|| remote_comment_id(&self.key, &c.remote_id));
                if deleted.contains(&local) {
                    continue;
                }
                let marker = local.to_hex();
                if kept
                    .iter()
                    .any(|k| k.marker.as_deref() == Some(marker.as_str()))
                {
                    continue;
                }
                let text = state
                    .comments
                    .iter()
                    .find(|x| x.id == local)
                    .map_or(c.body.clone(), super::comments::comment_text);
                let moved = self.add_comment_once(keep, &text, &marker)?;
                self.record_comment_export(issue, set, local, &moved, "retire twin: comment")?;
                report.comments += 1;
                kept.push(moved);
            }
            match self.backend.delete_issue(&twin) {
                Ok(()) | Err(BackendError::NotFound { .. }) => {
                    let gone = self.observe_gone(issue, &twin);
                    self.record(issue, set, vec![gone], "retire twin")?;
                    report.twins_retired += 1;
                }
                Err(BackendError::Unsupported { .. }) => {
                    report
                        .twins_left
                        .push((issue, twin.clone(), keep.to_owned()));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Whether `remote_id`, bound to `issue`, now names another local
    /// issue's remote object: a tracker that reuses the id of a deleted
    /// issue (the sim) gave it to another issue's create, within the same
    /// second as the first (so the creation times match) and at the same
    /// version (so a conditional write would land on it). Asked only when
    /// another created-here issue is bound to the id too; the tracker's
    /// marker then says whose it is. An issue imported from the tracker
    /// (a derived id) may also be a copy of the marked issue, made while a
    /// tracker user had deleted the marker: it is another object only when
    /// the tracker's creation time differs from the one `set` recorded for
    /// the id (CLI model seed 1121: an imported issue deleted on the
    /// tracker, its id given to a clone's create, and its comment then
    /// exported onto that issue).
    pub(super) fn reused_elsewhere(
        &self,
        issue: IssueId,
        set: &EventSet,
        remote_id: &str,
    ) -> Result<bool, ProjectError> {
        if self.shared.borrow().is_none() {
            let mut map: HashMap<String, BTreeSet<IssueId>> = HashMap::new();
            for (rid, issues) in self.bindings()?.live {
                map.insert(
                    rid,
                    issues.into_iter().filter(|i| !i.is_derived()).collect(),
                );
            }
            *self.shared.borrow_mut() = Some(map);
        }
        let others = self
            .shared
            .borrow()
            .as_ref()
            .and_then(|m| m.get(remote_id))
            .is_some_and(|s| s.iter().any(|i| *i != issue));
        if !others {
            return Ok(false);
        }
        let Some(remote) = self.backend.get(remote_id)? else {
            return Ok(false);
        };
        if !super::import::marked_for_another(issue, &remote) {
            return Ok(false);
        }
        if !issue.is_derived() {
            return Ok(true);
        }
        // An imported issue: another object only when the tracker's
        // creation time is none of those it recorded for the id.
        let theirs = remote.created_at.to_string();
        let mut recorded = set
            .iter()
            .filter_map(|(_, e)| match &e.op {
                Op::ObserveCreated {
                    backend,
                    remote_id: r,
                    created_at,
                } if *backend == self.key && r == remote_id => Some(created_at),
                _ => None,
            })
            .peekable();
        Ok(!theirs.is_empty() && recorded.peek().is_some() && recorded.all(|c| *c != theirs))
    }

    /// Note that this run bound `issue` to `remote_id` (a create).
    pub(super) fn note_bound(&self, issue: IssueId, remote_id: &str) {
        if let Some(map) = self.shared.borrow_mut().as_mut() {
            map.entry(remote_id.to_owned()).or_default().insert(issue);
        }
    }
}
