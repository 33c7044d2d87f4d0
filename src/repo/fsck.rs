//! `fsck`: every issue ref, every commit in its history and every event
//! checked; damage reported per issue, healthy issues untouched.

use super::*;

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

impl Repo {
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
