//! Typed links on trackers (`refs-format.md`, section 6e): local links
//! whose kind the tracker has a relation for are projected to it, and
//! relations a tracker user makes between two bound issues come back as
//! local links.
//!
//! | local kind (on A, target B) | relation | JIRA | GitHub |
//! |---|---|---|---|
//! | `blocks` / `blocked-by` | A (B) blocks B (A) | "Blocks" | issue dependencies |
//! | `parent` / `child` | A (B) is the parent of B (A) | — (local) | sub-issues |
//! | `duplicate-of` | A duplicates B | "Duplicate" | — (local) |
//! | `related` | A relates to B | "Relates" | — (local) |
//! | `discovered-from`, other texts | — (local) | | |
//!
//! The sim and Confluence hold no relations: every link stays local.
//!
//! **Records.** What reposix knows to be in step is recorded as an
//! `exported` event with `remote_id` = `link:<relation>:<from>:<to>` (the
//! remote ids; a `relates` has its ends in byte order) and `revision` 1
//! (the tracker has it and so do we) or 0 (neither has it any more), in the
//! log of the local issue bound to `<from>` (the *owner*). The record with
//! the greatest stamp is the one in force. A relation is *live* here when a
//! live local link of either end maps to it, *removed* when such a link
//! existed and none is live, else *never*. Against the tracker's list,
//! read first (never a duplicate; the trackers hold relations as a set, so
//! two clones adding one at once make one):
//!
//! | local | tracker | record | done |
//! |---|---|---|---|
//! | live | has it | not 1 | record 1 |
//! | live | lacks it | not 1 | add it there (export), record 1 |
//! | live | lacks it | 1 | a tracker user removed it: remove it here, record 0 |
//! | removed | has it | 1 | removed here: remove it there (export), record 0 |
//! | removed | has it | none | nothing (the record of an export may not have arrived yet) |
//! | removed | has it | 0 | a tracker user added it again: add it here, record 1 |
//! | never | has it | not 1 | a tracker user made it: add it here, record 1 |
//! | not live | lacks it | 1 | record 0 |
//!
//! So a relation is removed from a tracker only when reposix recorded it
//! in step (it put it there, or imported it as a local link that was then
//! removed here); a crash between the tracker write and the record only
//! means the next run finds the relation there and records it. Links
//! whose kind the tracker has no relation for, or whose other end is not
//! (yet) bound to the tracker, stay local and are counted
//! (`links_local_only`); they are projected by a later export once both
//! ends are bound. Local writes made from the tracker are ordinary
//! `add_link`/`remove_link` events by the importing actor; a relation that
//! would close a cycle of `blocks` or `parent` with the links known here is
//! not imported (counted in `links_refused`).

use super::*;
use crate::crdt::deps::{self, DepKind};
use crate::crdt::Link;
use crate::tracker::{LinkKind, RemoteLink, RemoteLinks};

/// What one run knows of the repository's links and bindings to this
/// backend (built from the listing index, kept up to date as the run
/// binds issues and writes links).
#[derive(Default)]
pub(super) struct LinkRun {
    /// Remote id -> the local issue bound to it (live, not merged).
    by_remote: HashMap<String, IssueId>,
    /// Local issue -> its remote id.
    by_issue: HashMap<IssueId, String>,
    /// Live links of every issue.
    links: HashMap<IssueId, BTreeSet<Link>>,
    /// Live links by target: target -> (holder, link).
    incoming: HashMap<IssueId, BTreeSet<(IssueId, Link)>>,
    /// Relation kinds the tracker turned out not to offer in this run.
    unavailable: BTreeSet<LinkKind>,
    /// Links counted as staying local in this run (so that one projected
    /// later in the same run is taken off the count).
    counted: BTreeSet<(IssueId, Link)>,
}

impl LinkRun {
    fn bind(&mut self, issue: IssueId, remote_id: &str) {
        self.by_issue.insert(issue, remote_id.to_owned());
        self.by_remote.insert(remote_id.to_owned(), issue);
    }

    fn add(&mut self, holder: IssueId, link: Link) {
        self.incoming
            .entry(link.target)
            .or_default()
            .insert((holder, link.clone()));
        self.links.entry(holder).or_default().insert(link);
    }

    fn remove(&mut self, holder: IssueId, link: &Link) {
        if let Some(s) = self.incoming.get_mut(&link.target) {
            s.remove(&(holder, link.clone()));
        }
        if let Some(s) = self.links.get_mut(&holder) {
            s.remove(link);
        }
    }
}

/// How one local link stands towards this tracker.
enum Maps {
    /// Its kind has no relation here.
    Local,
    /// An end is not bound to the tracker (yet).
    Pending,
    /// This relation.
    To(RemoteLink),
}

/// Whether a relation is held locally.
enum Held {
    /// By these live links (holder, link).
    Live(Vec<(IssueId, Link)>),
    /// Once, not any more.
    Removed,
    /// Never (in the logs of its two ends).
    Never,
}

/// What a run did with relations, for the reports.
#[derive(Default)]
pub(super) struct Tally {
    /// Relations added to or removed from the tracker.
    pub tracker: usize,
    /// Local links added or removed from the tracker's relations.
    pub local: usize,
    /// Tracker relations not imported: they would close a cycle.
    pub refused: usize,
}

/// The record key of a relation.
fn record_key(r: &RemoteLink) -> String {
    format!("link:{}:{}:{}", r.kind.as_str(), r.from, r.to)
}

/// The relation a record key names.
fn parse_record(key: &str) -> Option<RemoteLink> {
    let rest = key.strip_prefix("link:")?;
    let (kind, ends) = rest.split_once(':')?;
    let (from, to) = ends.split_once(':')?;
    let kind = LinkKind::parse(kind)?;
    Some(RemoteLink::new(kind, from, to))
}

/// The local link written for a relation found on the tracker (on the
/// issue bound to its `from` end).
fn local_kind(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Blocks => DepKind::Blocks.as_str(),
        LinkKind::Duplicates => DepKind::DuplicateOf.as_str(),
        LinkKind::Relates => DepKind::Related.as_str(),
        LinkKind::Parent => DepKind::Parent.as_str(),
    }
}

/// Event sets loaded during one issue's work: the issue's own (the
/// caller's, kept in step) and the others it touches.
struct Sets<'s> {
    issue: IssueId,
    own: &'s mut EventSet,
    others: HashMap<IssueId, EventSet>,
}

impl Projection<'_> {
    /// The relation a local link on `holder` maps to here.
    fn map_link(&self, run: &LinkRun, holder: IssueId, link: &Link) -> Maps {
        let Some(dep) = DepKind::parse(&link.kind) else {
            return Maps::Local;
        };
        let (kind, forward) = match dep {
            DepKind::Blocks => (LinkKind::Blocks, true),
            DepKind::BlockedBy => (LinkKind::Blocks, false),
            DepKind::Parent => (LinkKind::Parent, true),
            DepKind::Child => (LinkKind::Parent, false),
            DepKind::DuplicateOf => (LinkKind::Duplicates, true),
            DepKind::Related => (LinkKind::Relates, true),
            DepKind::DiscoveredFrom => return Maps::Local,
        };
        if !self.backend.capabilities().links.contains(&kind) || run.unavailable.contains(&kind) {
            return Maps::Local;
        }
        let (Some(h), Some(t)) = (run.by_issue.get(&holder), run.by_issue.get(&link.target)) else {
            return Maps::Pending;
        };
        let (from, to) = if forward { (h, t) } else { (t, h) };
        Maps::To(RemoteLink::new(kind, from, to))
    }

    fn maps_to(&self, run: &LinkRun, holder: IssueId, link: &Link, r: &RemoteLink) -> bool {
        matches!(self.map_link(run, holder, link), Maps::To(m) if m.same(r))
    }

    /// The records in `set`: relation key -> in step with the tracker
    /// having it (the record with the greatest stamp).
    fn link_records(&self, set: &EventSet) -> BTreeMap<String, bool> {
        let mut best: BTreeMap<String, ((u64, String, EventId), bool)> = BTreeMap::new();
        for (id, e) in set.iter() {
            if let Op::Exported {
                backend,
                remote_id,
                revision,
            } = &e.op
            {
                if *backend != self.key || !remote_id.starts_with("link:") {
                    continue;
                }
                let stamp = (e.lamport, e.actor.as_str().to_owned(), *id);
                match best.get(remote_id) {
                    Some((s, _)) if *s >= stamp => {}
                    _ => {
                        best.insert(remote_id.clone(), (stamp, *revision > 0));
                    }
                }
            }
        }
        best.into_iter().map(|(k, (_, v))| (k, v)).collect()
    }

    /// Build the run's picture of links and bindings from the listing.
    fn link_run(&self) -> Result<LinkRun, ProjectError> {
        let listing = Index::new(self.store).list(false)?;
        let mut run = LinkRun::default();
        let mut bound: HashMap<String, Vec<IssueId>> = HashMap::new();
        for s in &listing.issues {
            for link in &s.links {
                run.add(s.id, link.clone());
            }
            if s.merged {
                continue;
            }
            for (backend, rid) in &s.remotes {
                let gone = s.gone.iter().any(|(b, r)| b == backend && r == rid);
                if *backend == self.key && !gone {
                    bound.entry(rid.clone()).or_default().push(s.id);
                }
            }
        }
        for (rid, mut issues) in bound {
            // One choice everywhere (as import maps remote issues).
            issues.sort();
            let pick = issues
                .iter()
                .find(|i| !i.is_derived())
                .or_else(|| issues.first())
                .copied()
                .expect("BUG: a binding has an issue");
            run.bind(pick, &rid);
        }
        Ok(run)
    }

    /// Export the links of `issue` (bound to `remote_id`, just exported):
    /// its own links, the links of other issues that target it, and the
    /// relations it owns records of.
    pub(super) fn export_links(
        &self,
        issue: IssueId,
        remote_id: &str,
        set: &mut EventSet,
        report: &mut ExportReport,
    ) -> Result<(), ProjectError> {
        let live = set.link_tags();
        if self.backend.capabilities().links.is_empty() {
            report.links_local_only += live.len();
            return Ok(());
        }
        let mut slot = self.link_run.borrow_mut();
        if slot.is_none() {
            // One listing per run: the links of every issue (for the links
            // that target this one) and the bindings of their ends.
            *slot = Some(self.link_run()?);
        }
        let run = slot.as_mut().expect("BUG: just built");
        run.bind(issue, remote_id);
        let mut candidates: Vec<RemoteLink> = Vec::new();
        let push = |r: RemoteLink, c: &mut Vec<RemoteLink>| {
            if !c.iter().any(|x| x.same(&r)) {
                c.push(r);
            }
        };
        // Links this issue holds or held.
        let mut own: BTreeSet<Link> = BTreeSet::new();
        for (_, e) in set.iter() {
            if let Op::AddLink { kind, target } = &e.op {
                own.insert(Link {
                    kind: kind.clone(),
                    target: *target,
                });
            }
        }
        for link in &own {
            if let Maps::To(r) = self.map_link(run, issue, link) {
                push(r, &mut candidates);
            }
        }
        // Live links of other issues that target this one.
        let incoming: Vec<(IssueId, Link)> = run
            .incoming
            .get(&issue)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for (holder, link) in &incoming {
            if let Maps::To(r) = self.map_link(run, *holder, link) {
                push(r, &mut candidates);
            }
        }
        for key in self.link_records(set).keys() {
            if let Some(r) = parse_record(key) {
                push(r, &mut candidates);
            }
        }
        let mut tally = Tally::default();
        let mut sets = Sets {
            issue,
            own: set,
            others: HashMap::new(),
        };
        if !candidates.is_empty() {
            self.settle(run, &mut sets, remote_id, candidates, true, &mut tally)?;
        }
        report.links += tally.tracker;
        // What stays local: this issue's live links that map to no relation
        // here, or whose relation the tracker would not take; and the
        // incoming links counted earlier in this run that are in step now.
        let records = self.records_of(run, &mut sets)?;
        let live: Vec<Link> = sets.own.link_tags().into_keys().collect();
        for link in live {
            let local = match self.map_link(run, issue, &link) {
                Maps::Local | Maps::Pending => true,
                Maps::To(r) => records.get(&record_key(&r)) != Some(&true),
            };
            if local && run.counted.insert((issue, link)) {
                report.links_local_only += 1;
            }
        }
        for (holder, link) in incoming {
            if let Maps::To(r) = self.map_link(run, holder, &link) {
                if records.get(&record_key(&r)) == Some(&true)
                    && run.counted.remove(&(holder, link))
                {
                    report.links_local_only = report.links_local_only.saturating_sub(1);
                }
            }
        }
        Ok(())
    }

    /// The records of every owner the issue's relations have, merged.
    fn records_of(
        &self,
        run: &LinkRun,
        sets: &mut Sets<'_>,
    ) -> Result<BTreeMap<String, bool>, ProjectError> {
        let mut owners: BTreeSet<IssueId> = BTreeSet::from([sets.issue]);
        let holders: Vec<(IssueId, Link)> = sets
            .own
            .link_tags()
            .into_keys()
            .map(|l| (sets.issue, l))
            .chain(run.incoming.get(&sets.issue).into_iter().flatten().cloned())
            .collect();
        for (holder, link) in holders {
            if let Maps::To(r) = self.map_link(run, holder, &link) {
                if let Some(o) = run.by_remote.get(&r.from) {
                    owners.insert(*o);
                }
            }
        }
        let mut out = BTreeMap::new();
        for o in owners {
            out.extend(self.link_records(self.set_of(sets, o)?));
        }
        Ok(out)
    }

    fn set_of<'a>(
        &self,
        sets: &'a mut Sets<'_>,
        issue: IssueId,
    ) -> Result<&'a mut EventSet, ProjectError> {
        if issue == sets.issue {
            return Ok(&mut *sets.own);
        }
        match sets.others.entry(issue) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                Ok(e.insert(self.load_or_empty(issue)?))
            }
        }
    }

    /// Bring the relations `candidates` (all touching the issue bound to
    /// `remote_id`) in step, by the table in the module documentation.
    /// `export` allows writes to the tracker; without it (import) only
    /// local writes are made, each confirmed by a fresh read first.
    fn settle(
        &self,
        run: &mut LinkRun,
        sets: &mut Sets<'_>,
        remote_id: &str,
        candidates: Vec<RemoteLink>,
        export: bool,
        tally: &mut Tally,
    ) -> Result<(), ProjectError> {
        let mut listed = match self.listed(run, remote_id, export)? {
            Some(l) => l,
            None => return Ok(()),
        };
        if !export {
            // Local writes rest on what the tracker says now, not on what
            // a search served (JIRA's is eventually consistent).
            let mut writes = false;
            for r in &candidates {
                let step = self.step(run, sets, r, &listed, false)?;
                writes |= matches!(step, Step::AddHere | Step::RemoveHere(_));
            }
            if !writes {
                // Records only.
                for r in &candidates {
                    self.apply(run, sets, r, &listed, false, tally)?;
                }
                return Ok(());
            }
            listed = match self.listed(run, remote_id, true)? {
                Some(l) => l,
                None => return Ok(()),
            };
        }
        for r in &candidates {
            self.apply(run, sets, r, &listed, export, tally)?;
        }
        Ok(())
    }

    /// The tracker's relations of `remote_id`, kinds it turned out not to
    /// offer noted in the run; `None` when it offers none here.
    fn listed(
        &self,
        run: &mut LinkRun,
        remote_id: &str,
        fresh: bool,
    ) -> Result<Option<RemoteLinks>, ProjectError> {
        match self.backend.links(remote_id, fresh) {
            Ok(l) => {
                run.unavailable.extend(l.unavailable.iter().copied());
                Ok(Some(l))
            }
            Err(BackendError::Unsupported { .. }) => {
                run.unavailable
                    .extend(self.backend.capabilities().links.iter().copied());
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// How the relation `r` stands here.
    fn held(
        &self,
        run: &LinkRun,
        sets: &mut Sets<'_>,
        r: &RemoteLink,
    ) -> Result<Option<Held>, ProjectError> {
        let (Some(f), Some(t)) = (run.by_remote.get(&r.from), run.by_remote.get(&r.to)) else {
            return Ok(None);
        };
        // The logs of the two ends decide (the listing may be older than
        // this run's own writes).
        let mut live = Vec::new();
        let mut once = false;
        for end in [*f, *t] {
            let set = self.set_of(sets, end)?;
            for link in set.link_tags().into_keys() {
                if self.maps_to(run, end, &link, r) {
                    live.push((end, link));
                }
            }
            once |= set.iter().any(|(_, e)| match &e.op {
                Op::AddLink { kind, target } => self.maps_to(
                    run,
                    end,
                    &Link {
                        kind: kind.clone(),
                        target: *target,
                    },
                    r,
                ),
                _ => false,
            });
        }
        if !live.is_empty() {
            return Ok(Some(Held::Live(live)));
        }
        if once {
            return Ok(Some(Held::Removed));
        }
        Ok(Some(Held::Never))
    }

    /// What the table says for `r`.
    fn step(
        &self,
        run: &LinkRun,
        sets: &mut Sets<'_>,
        r: &RemoteLink,
        listed: &RemoteLinks,
        export: bool,
    ) -> Result<Step, ProjectError> {
        if run.unavailable.contains(&r.kind) || listed.unavailable.contains(&r.kind) {
            return Ok(Step::Nothing);
        }
        let Some(held) = self.held(run, sets, r)? else {
            return Ok(Step::Nothing);
        };
        let owner = run.by_remote[&r.from];
        let record = self
            .link_records(self.set_of(sets, owner)?)
            .get(&record_key(r))
            .copied();
        let there = listed.links.iter().find(|l| l.same(r)).cloned();
        Ok(match (held, there, record) {
            (Held::Live(_), Some(_), Some(true)) => Step::Nothing,
            (Held::Live(_), Some(_), _) => Step::Record(true),
            (Held::Live(holders), None, Some(true)) => Step::RemoveHere(holders),
            (Held::Live(_), None, _) if export => Step::AddThere,
            (Held::Live(_), None, _) => Step::Nothing,
            (Held::Removed, Some(l), Some(true)) if export => Step::RemoveThere(l),
            (Held::Removed, Some(_), Some(true)) | (Held::Removed, Some(_), None) => Step::Nothing,
            (Held::Removed, Some(_), Some(false)) | (Held::Never, Some(_), None | Some(false)) => {
                Step::AddHere
            }
            (Held::Never, Some(_), Some(true)) => Step::Nothing,
            (Held::Removed | Held::Never, None, Some(true)) => Step::Record(false),
            (Held::Removed | Held::Never, None, _) => Step::Nothing,
        })
    }

    /// Do what the table says for `r`.
    fn apply(
        &self,
        run: &mut LinkRun,
        sets: &mut Sets<'_>,
        r: &RemoteLink,
        listed: &RemoteLinks,
        export: bool,
        tally: &mut Tally,
    ) -> Result<(), ProjectError> {
        let step = self.step(run, sets, r, listed, export)?;
        let owner = match run.by_remote.get(&r.from) {
            Some(o) => *o,
            None => return Ok(()),
        };
        match step {
            Step::Nothing => {}
            Step::Record(present) => self.link_record(sets, owner, r, present, vec![])?,
            Step::AddThere => match self.backend.add_link(r) {
                Ok(()) => {
                    tally.tracker += 1;
                    self.link_record(sets, owner, r, true, vec![])?;
                }
                Err(BackendError::Unsupported { .. }) => {
                    run.unavailable.insert(r.kind);
                }
                // A relation the tracker would not make (GitHub 422: a
                // sub-issue has a parent already, a cycle there): it may
                // also be there already (another clone): look. Else it
                // stays local (counted).
                Err(BackendError::Http { status: 422, .. }) => {
                    let now = self.backend.links(&r.to, true)?;
                    if now.links.iter().any(|l| l.same(r)) {
                        self.link_record(sets, owner, r, true, vec![])?;
                    }
                }
                // An end the tracker no longer has: stays local.
                Err(BackendError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            },
            Step::RemoveThere(l) => {
                self.backend.remove_link(&l)?;
                tally.tracker += 1;
                self.link_record(sets, owner, r, false, vec![])?;
            }
            Step::AddHere => {
                let target = run.by_remote[&r.to];
                let link = Link {
                    kind: local_kind(r.kind).to_owned(),
                    target,
                };
                if self.closes_cycle(run, owner, &link) {
                    tally.refused += 1;
                    return Ok(());
                }
                let op = Op::AddLink {
                    kind: link.kind.clone(),
                    target,
                };
                self.link_record(sets, owner, r, true, vec![op])?;
                run.add(owner, link);
                tally.local += 1;
            }
            Step::RemoveHere(holders) => {
                for (holder, link) in holders {
                    let set = self.set_of(sets, holder)?;
                    let Some(tags) = set.link_tags().get(&link).cloned() else {
                        continue;
                    };
                    let op = Op::RemoveLink {
                        kind: link.kind.clone(),
                        target: link.target,
                        observed: tags,
                    };
                    let events = self.local(holder, set, set.heads(), vec![op]);
                    self.record(holder, set, events, "link removed on the tracker")?;
                    run.remove(holder, &link);
                    tally.local += 1;
                }
                self.link_record(sets, owner, r, false, vec![])?;
            }
        }
        Ok(())
    }

    /// Write the record of `r` on `owner`, after `before` (a link added).
    fn link_record(
        &self,
        sets: &mut Sets<'_>,
        owner: IssueId,
        r: &RemoteLink,
        present: bool,
        before: Vec<Op>,
    ) -> Result<(), ProjectError> {
        let set = self.set_of(sets, owner)?;
        let mut ops = before;
        ops.push(Op::Exported {
            backend: self.key.clone(),
            remote_id: record_key(r),
            revision: u64::from(present),
        });
        let events = self.local(owner, set, set.heads(), ops);
        self.record(owner, set, events, "link")?;
        Ok(())
    }

    /// Whether `link` on `issue` would close a cycle of `blocks` or
    /// `parent` with the live links known here.
    fn closes_cycle(&self, run: &LinkRun, issue: IssueId, link: &Link) -> bool {
        let Some((graph, edge)) = deps::edge_of(issue, link) else {
            return false;
        };
        let all: Vec<(IssueId, Vec<Link>)> = run
            .links
            .iter()
            .map(|(i, l)| (*i, l.iter().cloned().collect()))
            .collect();
        let graphs = deps::graphs(all.iter().map(|(i, l)| (*i, l.as_slice())));
        let Some(edges) = graphs.get(&graph) else {
            return false;
        };
        edge.from == edge.to || deps::path(edges, edge.to, edge.from).is_some()
    }

    /// Import the relations of the remote issues just listed: relations a
    /// tracker user made between two bound issues become local links, and
    /// relations reposix had in step that the tracker lost are removed here.
    pub(super) fn import_links(
        &self,
        remotes: &[RemoteIssue],
        report: &mut ImportReport,
    ) -> Result<(), ProjectError> {
        if self.backend.capabilities().links.is_empty() || remotes.is_empty() {
            return Ok(());
        }
        let mut run = self.link_run()?;
        for r in remotes {
            let Some(issue) = run.by_remote.get(&r.remote_id).copied() else {
                continue;
            };
            let listed = match self.listed(&mut run, &r.remote_id, false)? {
                Some(l) => l,
                None => break,
            };
            let mine = run.links.get(&issue).is_some_and(|l| !l.is_empty())
                || run.incoming.get(&issue).is_some_and(|l| !l.is_empty());
            let theirs: Vec<RemoteLink> = listed
                .links
                .iter()
                .filter(|l| {
                    run.by_remote.contains_key(&l.from) && run.by_remote.contains_key(&l.to)
                })
                .cloned()
                .collect();
            if theirs.is_empty() && !mine {
                continue;
            }
            let mut set = self.load_or_empty(issue)?;
            let mut candidates = theirs;
            for key in self.link_records(&set).keys() {
                if let Some(rel) = parse_record(key) {
                    if !candidates.iter().any(|c| c.same(&rel)) {
                        candidates.push(rel);
                    }
                }
            }
            if candidates.is_empty() {
                continue;
            }
            let mut sets = Sets {
                issue,
                own: &mut set,
                others: HashMap::new(),
            };
            let mut tally = Tally::default();
            self.settle(
                &mut run,
                &mut sets,
                &r.remote_id,
                candidates,
                false,
                &mut tally,
            )?;
            report.links += tally.local;
            report.links_refused += tally.refused;
        }
        // The export after this import sees what it wrote.
        *self.link_run.borrow_mut() = None;
        Ok(())
    }
}

/// One row of the table.
enum Step {
    Nothing,
    Record(bool),
    AddThere,
    RemoveThere(RemoteLink),
    AddHere,
    RemoveHere(Vec<(IssueId, Link)>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_round_trip() {
        for (kind, from, to) in [
            (LinkKind::Blocks, "PROJ-1", "PROJ-2"),
            (LinkKind::Parent, "12", "7"),
            (LinkKind::Relates, "P-2", "P-10"),
        ] {
            let r = RemoteLink::new(kind, from, to);
            let back = parse_record(&record_key(&r)).expect("parses");
            assert!(back.same(&r), "{r:?} -> {back:?}");
        }
        assert_eq!(
            record_key(&RemoteLink::new(LinkKind::Relates, "P-9", "P-10")),
            "link:relates:P-10:P-9",
            "relates has one form: its ends in byte order"
        );
        assert!(parse_record("comment:12").is_none());
        assert!(parse_record("link:follows:1:2").is_none());
    }
}
