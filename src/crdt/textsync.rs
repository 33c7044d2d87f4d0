//! The tracker's body text inside the body document (format 2).
//!
//! A tracker holds one text per revision; the body document holds every
//! writer's edits. The two meet through *sync points*: a `sync_body` event
//! says "the document at these heads has exactly the tracker's text of
//! revision r". Sync points are written
//! - by an export: the text sent *is* the document at the heads the export
//!   folded, so no tracker text is ever diffed back in;
//! - by an import of revision r: the change from the newest sync point the
//!   importer knows to the tracker's new text, *derived* (deterministic
//!   actor, time 0, see [`BodyDoc::derived_change`]) so that every clone
//!   importing r from the same point writes the same bytes, which automerge
//!   keeps once.
//!
//! Clones that imported from different points (or exported and imported the
//! same revision without seeing each other) leave several sync points of one
//! chain that no single one covers: the union of their histories may hold
//! the same tracker edit twice. The fold then *joins* them: the derived
//! change, from the union of their heads, to the text of the newest revision
//! among them. The tracker is linear and every write to it was made by
//! someone who had the previous revision (conditional writes), so that text
//! is the correct successor of all of them; local edits outside the sync
//! points merge with the join as with any concurrent edit. A join is a pure
//! function of the event set; writers store it (as a `sync_body`) with
//! their next write so later edits can build on it.
//!
//! Logs written before format 2 have observations but no sync points
//! (*legacy chains*); their displayed body was a three-way merge computed
//! at every fold. The first fold bootstraps them deterministically: one
//! derived change to the newest observed tracker text (the sync point),
//! one back to the displayed body.
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};

use super::body::{change_hash, last_of_write, BodyDoc, BodyError, Element};
use super::textdiff;
use super::EventSet;
use crate::event::{Bytes, EventId, IssueId, Op};

/// How many uncovered body changes an import tries as the state that
/// already holds the tracker's text.
const STATE_SEARCH: usize = 64;

/// How many of a chain's derived sync points the fold checks for a second
/// copy of edits made elsewhere ([`BodyView::held_elsewhere`]), newest first.
const HELD_SEARCH: usize = 4;

/// How many changes since the base an import checks one by one (see
/// `BodyView::holds`).
const HELD_CHANGES: usize = 16;

/// A join tries the runs of a derived change one by one only up to this
/// many runs (beyond, whole changes only).
const JOIN_RUNS: usize = 64;

/// How many pairs of sync points of one revision a join compares for twin
/// deletions ([`BodyView::twin_deletions`]), newest revision first.
const TWIN_PAIRS: usize = 8;

/// How many of a chain's newest sync points the fold checks for points
/// that missed the tracker's deletions ([`BodyView::missed_deletions`]).
const STALE_SEARCH: usize = 32;

/// Per body change, whether a tracker text holds its deletions and its
/// whole edit, and the tokens it inserted (see `BodyView::holds`).
type HeldMemo = HashMap<Bytes, (bool, bool, Vec<String>)>;

/// Chain key: (backend key, remote id).
pub type ChainKey = (String, String);

/// The newest sync point of one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncPoint {
    /// Tracker revision whose text the document has at `heads`.
    pub revision: u64,
    /// Automerge heads (sorted).
    pub heads: Vec<Bytes>,
}

/// The body document of an issue with its tracker sync points.
pub struct BodyView {
    /// The document: every stored change, plus the joins and bootstraps the
    /// fold derived.
    pub doc: BodyDoc,
    /// `sync_body` operations derived by the fold and not stored yet; a
    /// writer stores them before (or with) anything built on this view.
    pub pending: Vec<Op>,
    /// The newest sync point of each chain that has one.
    pub points: BTreeMap<ChainKey, SyncPoint>,
    issue: IssueId,
    /// Heads of the `create` body (the oldest state a tracker text of a
    /// locally created issue can derive from), else genesis.
    origin: Vec<Bytes>,
    /// The tracker's newest text, shown while the issue's `create` has not
    /// reached this replica (an issue created in another clone, imported
    /// here before git brought its log): no text can be derived until then,
    /// so the body cannot be edited here either.
    awaiting: Option<String>,
    /// The derived changes every chain's records hold (imports, joins):
    /// with the pending ones, the changes that are no writer's.
    derived_all: Vec<Bytes>,
}

/// Which derived copies a join drops (refs-format.md 6b, "Joins"): each
/// change of `order` in turn (the index in `chars`' third field) is
/// dropped whole when the text of `chars` without its characters (and
/// those dropped before) still has everything `text` has; else, with
/// `runs`, each of its runs of consecutive characters that can be (2 to
/// [`JOIN_RUNS`] runs), so that a change holding a copy and a tracker edit
/// loses only the copy. Returns the dropped characters, the changes
/// dropped whole, and whether any run was dropped on its own.
fn drop_copies(
    chars: &[(Element, char, Option<usize>)],
    order: &[Bytes],
    text: &str,
    runs: bool,
) -> (Vec<bool>, Vec<Bytes>, bool) {
    let mut dropped = vec![false; chars.len()];
    let adds_nothing = |dropped: &[bool]| {
        let without: String = chars
            .iter()
            .zip(dropped)
            .filter(|(_, d)| !**d)
            .map(|((_, c, _), _)| *c)
            .collect();
        textdiff::adds_nothing(&without, text)
    };
    let mut whole: Vec<Bytes> = Vec::new();
    let mut partial = false;
    for (k, h) in order.iter().enumerate() {
        let mine: Vec<usize> = (0..chars.len())
            .filter(|&i| chars[i].2 == Some(k) && !dropped[i])
            .collect();
        for &i in &mine {
            dropped[i] = true;
        }
        if adds_nothing(&dropped) {
            whole.push(h.clone());
            continue;
        }
        for &i in &mine {
            dropped[i] = false;
        }
        let pieces: Vec<&[usize]> = mine.chunk_by(|a, b| a + 1 == *b).collect();
        if !runs || pieces.len() < 2 || pieces.len() > JOIN_RUNS {
            continue;
        }
        for run in pieces {
            for &i in run {
                dropped[i] = true;
            }
            if adds_nothing(&dropped) {
                partial = true;
            } else {
                for &i in run {
                    dropped[i] = false;
                }
            }
        }
    }
    (dropped, whole, partial)
}

fn seed(purpose: &str, key: &ChainKey, revision: u64) -> Vec<u8> {
    let mut s = Vec::new();
    for part in [purpose, &key.0, &key.1] {
        s.extend_from_slice(&(part.len() as u64).to_le_bytes());
        s.extend_from_slice(part.as_bytes());
    }
    s.extend_from_slice(&revision.to_le_bytes());
    s
}

/// What an import found in the document (see `BodyView::state_with_text`).
enum Found {
    /// A state with exactly the tracker's text.
    Exact(Vec<Bytes>),
    /// A state whose edits the tracker's text already holds, once the
    /// characters the listed derived changes of its history inserted are
    /// gone (none, usually; else they are second copies of edits the state
    /// holds otherwise, which the exporter's join removed, and that join
    /// has not arrived).
    Holding(Vec<Bytes>, Vec<Bytes>),
    /// Neither: derive from the sync point.
    None,
}

/// What a `sync_body` record says, with its event id for ties.
#[derive(Clone)]
struct Record {
    revision: u64,
    heads: Vec<Bytes>,
    /// Hashes of the changes the record carries.
    changes: Vec<Bytes>,
    id: EventId,
}

impl EventSet {
    /// Every automerge change the set carries (create bodies, edits, sync
    /// points), in event id order.
    pub fn body_changes(&self) -> Vec<&Bytes> {
        let mut out = Vec::new();
        for (_, e) in self.iter() {
            match &e.op {
                Op::Create { body: Some(b), .. } => out.push(b),
                Op::EditBody { change } => out.push(change),
                Op::SyncBody { changes, .. } => out.extend(changes.iter()),
                _ => {}
            }
        }
        out
    }

    /// Every observation of `key`: ((revision, event id), text).
    fn observations<'a>(
        &'a self,
        key: &ChainKey,
    ) -> impl Iterator<Item = ((u64, EventId), &'a str)> + use<'a> {
        let key = key.clone();
        self.iter().filter_map(move |(id, e)| match &e.op {
            Op::Observe {
                backend,
                remote_id,
                revision,
                body,
                ..
            } if *backend == key.0 && *remote_id == key.1 => {
                Some(((*revision, *id), body.as_str()))
            }
            _ => None,
        })
    }

    /// The newest observation of `key` older than `revision`: (revision,
    /// text).
    fn observed_before(&self, key: &ChainKey, revision: u64) -> Option<(u64, &str)> {
        self.observations(key)
            .filter(|((r, _), _)| *r < revision)
            .max_by_key(|(k, _)| *k)
            .map(|((r, _), b)| (r, b))
    }

    /// The text of the newest observation of `key` at `revision` (greatest
    /// event id among equal revisions).
    fn observed_text(&self, key: &ChainKey, revision: u64) -> Option<&str> {
        self.observations(key)
            .filter(|((r, _), _)| *r == revision)
            .max_by_key(|(k, _)| *k)
            .map(|(_, b)| b)
    }

    /// The newest observation of `key`: (revision, text).
    fn newest_observed(&self, key: &ChainKey) -> Option<(u64, &str)> {
        self.observations(key)
            .max_by_key(|(k, _)| *k)
            .map(|((r, _), b)| (r, b))
    }

    /// The body document with its sync points, joins and bootstraps.
    /// `legacy_text` computes the pre-format-2 displayed body from the
    /// document's text; it is called only when a legacy chain exists.
    pub(crate) fn body_view_with(
        &self,
        issue: IssueId,
        legacy_text: impl FnOnce(&str) -> String,
    ) -> Result<BodyView, BodyError> {
        let doc = BodyDoc::load(issue, self.body_changes())?;
        self.body_view_on(issue, doc, legacy_text)
    }

    /// The body view of this set on `doc`, which must be the document of
    /// the set's body changes (loaded by [`BodyDoc::load`]).
    pub(crate) fn body_view_on(
        &self,
        issue: IssueId,
        mut doc: BodyDoc,
        legacy_text: impl FnOnce(&str) -> String,
    ) -> Result<BodyView, BodyError> {
        // The state the create's write left: its body change, or the last
        // of the changes a large body was written as (`edit_body` events of
        // the same write: same writer and clock, same automerge actor).
        let origin = match self.iter().find_map(|(_, e)| match &e.op {
            Op::Create { body: Some(b), .. } => Some((e, b)),
            _ => None,
        }) {
            Some((create, b)) => {
                let rest = self.iter().filter_map(|(_, e)| match &e.op {
                    Op::EditBody { change }
                        if e.actor == create.actor && e.wall_ms == create.wall_ms =>
                    {
                        Some(change)
                    }
                    _ => None,
                });
                last_of_write(b, rest).into_iter().collect()
            }
            None => BodyDoc::load(issue, [])?.heads(),
        };
        let mut records: BTreeMap<ChainKey, Vec<Record>> = BTreeMap::new();
        let mut observed: BTreeMap<ChainKey, ()> = BTreeMap::new();
        for (id, e) in self.iter() {
            match &e.op {
                // A point whose heads this document lacks says nothing
                // usable (damage, or a hostile event): skip it.
                Op::SyncBody {
                    backend,
                    remote_id,
                    revision,
                    heads,
                    changes,
                } if !heads.is_empty() && heads.iter().all(|h| doc.has(h)) => {
                    records
                        .entry((backend.clone(), remote_id.clone()))
                        .or_default()
                        .push(Record {
                            revision: *revision,
                            heads: heads.clone(),
                            changes: changes.iter().filter_map(change_hash).collect(),
                            id: *id,
                        });
                }
                Op::Observe {
                    backend, remote_id, ..
                } => {
                    observed.insert((backend.clone(), remote_id.clone()), ());
                }
                _ => {}
            }
        }
        let has_create = self.iter().any(|(_, e)| matches!(e.op, Op::Create { .. }));
        // A copy of a local issue's text derived here would be a second
        // copy of the one its `create` holds (refs-format.md, section 6a).
        let awaiting = (!issue.is_derived() && !has_create)
            .then(|| {
                observed
                    .keys()
                    .filter_map(|k| self.newest_observed(k))
                    .max_by_key(|(r, _)| *r)
                    .map(|(_, text)| text.to_owned())
            })
            .flatten();
        let mut view = BodyView {
            doc,
            pending: Vec::new(),
            points: BTreeMap::new(),
            issue,
            origin,
            awaiting,
            derived_all: records
                .values()
                .flatten()
                .flat_map(|r| r.changes.iter().cloned())
                .collect(),
        };
        // Format 1 wrote neither operation; a format-2 importer writes
        // `observe_created` with a chain's first observation.
        let format_1 = !self
            .iter()
            .any(|(_, e)| matches!(e.op, Op::SyncBody { .. } | Op::ObserveCreated { .. }));
        for (key, recs) in &records {
            let mut recs = recs.clone();
            let held = view.held_elsewhere(self, key, &recs)?;
            recs.extend(held);
            let point = view.join(self, key, &recs)?;
            view.points.insert(key.clone(), point);
        }
        if view.awaiting.is_none() {
            for (key, recs) in &records {
                view.missed_deletions(self, key, recs)?;
            }
        }
        view.carry_deletions(&records)?;
        // Chains observed and never synced.
        let legacy: Vec<ChainKey> = observed
            .keys()
            .filter(|k| !records.contains_key(*k))
            .cloned()
            .collect();
        if !format_1 && view.awaiting.is_none() {
            // Revisions imported before the issue's `create` reached this
            // replica (nothing could be derived then) are synced now, as
            // the importer would have done with the `create` at hand: an
            // import of the chain's newest revision from its sync point,
            // else from the `create` (section 6b).
            for key in observed.keys() {
                let Some((revision, tracker_text)) = self.newest_observed(key) else {
                    continue;
                };
                if view.points.get(key).is_some_and(|p| p.revision >= revision) {
                    continue;
                }
                let tracker_text = tracker_text.to_owned();
                view.pending = view.import(self, key, revision, &tracker_text)?;
            }
        } else if !legacy.is_empty() && view.awaiting.is_none() {
            // Legacy chains, in a set written entirely before format 2.
            let displayed = legacy_text(&view.doc.text());
            for key in legacy {
                let Some((revision, tracker_text)) = self.newest_observed(&key) else {
                    continue;
                };
                let at = view.doc.heads();
                let c1 = view.doc.derived_change(
                    &at,
                    tracker_text,
                    &seed("bootstrap tracker", &key, revision),
                )?;
                let point_heads = match &c1 {
                    Some(c) => vec![change_hash(c).expect("BUG: a derived change parses")],
                    None => at,
                };
                let now = view.doc.heads();
                let c2 = view.doc.derived_change(
                    &now,
                    &displayed,
                    &seed("bootstrap display", &key, revision),
                )?;
                view.pending.push(Op::SyncBody {
                    backend: key.0.clone(),
                    remote_id: key.1.clone(),
                    revision,
                    heads: point_heads.clone(),
                    changes: c1.into_iter().chain(c2).collect(),
                });
                view.points.insert(
                    key,
                    SyncPoint {
                        revision,
                        heads: point_heads,
                    },
                );
            }
        }
        Ok(view)
    }

    /// The body view of a set without legacy chains to bootstrap (or where
    /// the legacy display is the document text).
    pub fn body_view(&self, issue: IssueId) -> Result<BodyView, BodyError> {
        self.body_view_with(issue, str::to_owned)
    }
}

impl BodyView {
    /// The current text.
    pub fn text(&self) -> String {
        match &self.awaiting {
            Some(t) => t.clone(),
            None => self.doc.text(),
        }
    }

    /// Whether the body waits for the issue's `create` (see `awaiting`):
    /// shown from the tracker, not editable here yet.
    pub fn awaiting_create(&self) -> bool {
        self.awaiting.is_some()
    }

    /// Facts the fold can add to a chain's records: a state of the
    /// document, outside every sync point, whose text is exactly the
    /// tracker's text of a revision this replica *derived* (imported).
    ///
    /// That happens when another replica exported its own edits (the
    /// original changes) and this one imported the tracker's text before
    /// git brought it those edits: the derived change is a second copy of
    /// them. The exporter's record says exactly this (the state at its
    /// heads is the tracker's text) and the join then drops the copy; until
    /// that record arrives, the state found here says the same thing, so
    /// the text is never shown, edited or exported twice in between. The
    /// state is the base the derivation started from plus the history of
    /// one body change the points lack, as an import searches it
    /// ([`BodyView::state_with_text`]); a text equal by chance (two people
    /// making the same edit) is merged as one, as a three-way merge would.
    /// When no state has the text exactly but one's edits are held in it
    /// (a tracker user wrote after the exporter), the fact added is the
    /// import made from that state: a derived change to the tracker's text,
    /// queued in `pending` for the next writer to store.
    fn held_elsewhere(
        &mut self,
        set: &EventSet,
        key: &ChainKey,
        recs: &[Record],
    ) -> Result<Vec<Record>, BodyError> {
        let tips: Vec<Bytes> = recs.iter().flat_map(|r| r.heads.clone()).collect();
        // One walk of the document, not one per change: this runs in every
        // fold of an issue with a tracker chain.
        let all: Vec<Bytes> = set
            .body_changes()
            .into_iter()
            .filter_map(change_hash)
            .collect();
        if self.doc.covers(&tips, &all) {
            return Ok(Vec::new());
        }
        let mut derived: Vec<&Record> = recs.iter().filter(|r| !r.changes.is_empty()).collect();
        derived.sort_by_key(|r| std::cmp::Reverse((r.revision, r.id)));
        derived.truncate(HELD_SEARCH);
        // Oldest first: a state found for an older import stands in for
        // that import's point as the base of the newer ones derived from
        // it (seed 1258: a clone without frank's and dave's edits imported
        // revision 1 from the `create`, then revision 2 from that import;
        // from the import's own heads no state holds revision 2's text,
        // since frank's word is there twice).
        derived.reverse();
        let mut found_for: Vec<(Vec<Bytes>, Vec<Bytes>)> = Vec::new();
        let sorted = |v: &[Bytes]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        let mut out = Vec::new();
        for rec in derived {
            let Some(text) = set.observed_text(key, rec.revision) else {
                continue;
            };
            let mut base: Vec<Bytes> = Vec::new();
            for c in &rec.changes {
                base.extend(self.doc.deps(c).unwrap_or_default());
            }
            base.retain(|h| !rec.changes.contains(h));
            base.sort();
            base.dedup();
            if base.is_empty() {
                continue;
            }
            let base = sorted(&self.minimal(&base));
            let base = found_for
                .iter()
                .find(|(point, _)| *point == base)
                .map_or(base, |(_, state)| state.clone());
            match self.state_with_text(set, &base, text, &rec.changes)? {
                Found::Exact(heads) => {
                    if !self.doc.covers(&rec.heads, &heads) {
                        found_for.push((sorted(&rec.heads), sorted(&heads)));
                        out.push(Record {
                            revision: rec.revision,
                            heads,
                            changes: Vec::new(),
                            id: rec.id,
                        });
                    }
                }
                // The tracker's text holds the state's edits and more (a
                // tracker user wrote after the exporter): the import its
                // writer would have made with those edits at hand.
                Found::Holding(heads, drop) => {
                    let covered = recs
                        .iter()
                        .chain(out.iter())
                        .filter(|r| r.revision == rec.revision)
                        .any(|r| self.doc.covers(&r.heads, &heads));
                    if covered {
                        continue;
                    }
                    let (heads, Some(change)) = self.derive_import(key, heads, &drop, text)? else {
                        continue;
                    };
                    found_for.push((sorted(&rec.heads), sorted(&heads)));
                    self.pending.push(Op::SyncBody {
                        backend: key.0.clone(),
                        remote_id: key.1.clone(),
                        revision: rec.revision,
                        heads: heads.clone(),
                        changes: vec![change],
                    });
                    out.push(Record {
                        revision: rec.revision,
                        changes: heads.clone(),
                        heads,
                        id: rec.id,
                    });
                }
                Found::None => {}
            }
        }
        Ok(out)
    }

    /// Deletions an import from a stale point missed (section 6b): a sync
    /// point of revision r that does not descend from a point of an older
    /// revision p was derived from a point older than p, so the words the
    /// tracker deleted between p and r that its importer never had are
    /// still live (its clone kept them as edits the tracker had not seen,
    /// and may have exported them again). Each such pair among the chain's
    /// newest [`STALE_SEARCH`] points gets one derived change deleting
    /// them ([`BodyDoc::missed_deletions`]), stored by the next writer as
    /// an `edit_body`: a deletion made outside every sync point, which a
    /// later revision's writer that had not seen it does not undo.
    fn missed_deletions(
        &mut self,
        set: &EventSet,
        key: &ChainKey,
        recs: &[Record],
    ) -> Result<(), BodyError> {
        if recs.len() < 2 {
            return Ok(());
        }
        let mut recent: Vec<&Record> = recs.iter().collect();
        recent.sort_by_key(|r| std::cmp::Reverse((r.revision, r.id)));
        recent.truncate(STALE_SEARCH);
        for r in &recent {
            // The newest older point `r` does not descend from, unless a
            // point of `r`'s revision descends from both (a join, which
            // derived the tracker's text from their union).
            let older: Vec<&Record> = recent
                .iter()
                .filter(|p| p.revision < r.revision)
                .copied()
                .collect();
            let heads: Vec<&[Bytes]> = older.iter().map(|p| p.heads.as_slice()).collect();
            let covered = self.doc.covers_each(&r.heads, &heads);
            let Some(p) = older
                .iter()
                .zip(covered)
                .filter(|(_, c)| !c)
                .map(|(p, _)| *p)
                .max_by_key(|p| (p.revision, p.id))
            else {
                continue;
            };
            if recent.iter().any(|q| {
                q.revision == r.revision
                    && self.doc.covers(&q.heads, &r.heads)
                    && self.doc.covers(&q.heads, &p.heads)
            }) {
                continue;
            }
            let text = match set.observed_text(key, r.revision) {
                Some(t) => t.to_owned(),
                None => continue,
            };
            let mut s = seed("missed", key, r.revision);
            s.extend_from_slice(&p.revision.to_le_bytes());
            if let Some(change) = self.doc.missed_deletions(&p.heads, &r.heads, &text, &s)? {
                self.pending.push(Op::EditBody { change });
            }
        }
        Ok(())
    }

    /// Deletions made in a copy that a join dropped, carried to the copy it
    /// kept (section 6b): one derived change per such join, stored by the
    /// next writer like the joins themselves.
    fn carry_deletions(
        &mut self,
        records: &BTreeMap<ChainKey, Vec<Record>>,
    ) -> Result<(), BodyError> {
        // Nothing is concurrent with a join in a document with one head.
        if self.doc.heads().len() < 2 {
            return Ok(());
        }
        let mut derived: Vec<Bytes> = records
            .values()
            .flatten()
            .flat_map(|r| r.changes.iter().cloned())
            .collect();
        for op in &self.pending {
            if let Op::SyncBody { changes, .. } = op {
                derived.extend(changes.iter().filter_map(change_hash));
            }
        }
        derived.sort();
        derived.dedup();
        for r in &derived {
            if let Some(change) = self.doc.carried_deletions(r, &derived)? {
                self.pending.push(Op::EditBody { change });
            }
        }
        Ok(())
    }

    /// The tracker's deletions the canonical point's writer had not seen
    /// (section 6b, "Deletions the tracker's writer had not seen"): an
    /// import of an older revision outside the point's history deleted
    /// whole words the tracker's text lost at that revision (a tracker user
    /// deleted them, having seen them), and the point still shows them. Its
    /// writer exported them again only because it had not seen that
    /// import: they stay deleted. Only words the tracker lost count, so
    /// that text an import moved (deleted here, inserted there) or a copy
    /// a join dropped is not taken for a deletion. Draw 91: a stale clone
    /// exported a word a tracker user had deleted, and the join took it
    /// back.
    fn unseen_tracker_deletions(
        &mut self,
        set: &EventSet,
        key: &ChainKey,
        recs: &[Record],
        newest: u64,
        canonical: &[Bytes],
        gone: &mut crate::crdt::body::Elements,
    ) -> Result<(), BodyError> {
        let older: Vec<&Record> = recs
            .iter()
            .filter(|r| !r.changes.is_empty() && r.revision < newest)
            .collect();
        let changes: Vec<&[Bytes]> = older.iter().map(|r| r.changes.as_slice()).collect();
        let seen = self.doc.covers_each(canonical, &changes);
        let mut imports = Vec::new();
        for (r, _) in older.into_iter().zip(seen).filter(|(_, seen)| !seen) {
            let (Some(text), Some((_, before))) = (
                set.observed_text(key, r.revision),
                set.observed_before(key, r.revision),
            ) else {
                continue;
            };
            let deleted = self.doc.deleted_by(&r.changes)?;
            if !deleted.is_empty() {
                imports.push((deleted, before, text));
            }
        }
        if imports.is_empty() {
            return Ok(());
        }
        // Runs of the point's text, side by side, that one such import
        // deleted and whose every word the tracker's text lost then.
        let chars = self.doc.owned_chars(canonical, &[])?;
        for (deleted, before, text) in imports {
            let mut i = 0;
            while i < chars.len() {
                if !deleted.contains(&chars[i].0) {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < chars.len() && deleted.contains(&chars[i].0) {
                    i += 1;
                }
                let run: String = chars[start..i].iter().map(|(_, c, _)| *c).collect();
                if textdiff::run_lost_between(&run, before, text) {
                    gone.extend(chars[start..i].iter().map(|(e, _, _)| e.clone()));
                }
            }
        }
        Ok(())
    }

    /// Deletions of twins (section 6b, "Deletions the tracker's writer had
    /// not seen"): two sync points of one revision with the same text hold
    /// the same tracker characters, position by position, even when two
    /// writers derived or sent them as two copies; and a join outside the
    /// canonical point's history dropped words as copies of words it kept.
    /// A writer the canonical point has not seen (its change is outside
    /// the point's history) that deleted a character of one of them deleted
    /// that tracker character: its twin in the other is deleted too.
    /// Without this, a writer that never saw the deletion sends its own
    /// copy back to the tracker, and the join would take it.
    ///
    /// The same holds for a writer the canonical point has seen, when the
    /// deleted character is one an *export* of the revision sent (a state
    /// that had not seen the deletion: its writer put the character on
    /// the tracker, and the other point's twin is only the importer's copy
    /// of it). Seed 1207: carol deleted frank's word in one clone and
    /// created the issue, alice exported her older state with the word as
    /// revision 2, carol's clone imported it as new text; with carol's
    /// import of the next revision canonical, her deletion was inside its
    /// history and the copy stayed.
    ///
    /// The newest [`TWIN_PAIRS`] pairs are compared (each costs two states
    /// of the document, and only a join with such deletions, or with an
    /// export paired with another point of its revision, looks).
    fn twin_deletions(
        &mut self,
        recs: &[Record],
        canonical: &[Bytes],
        derived: &[Bytes],
        not_writers: &[Bytes],
        gone: &mut crate::crdt::body::Elements,
    ) -> Result<(), BodyError> {
        let mut points: Vec<(u64, &[Bytes])> = recs
            .iter()
            .filter(|r| !r.heads.is_empty())
            .map(|r| (r.revision, r.heads.as_slice()))
            .collect();
        points.sort_by(|a, b| b.cmp(a));
        points.dedup();
        let mut pairs: Vec<(&[Bytes], &[Bytes])> = Vec::new();
        for (i, p) in points.iter().enumerate() {
            for q in points[i + 1..].iter().take_while(|q| q.0 == p.0) {
                pairs.push((p.1, q.1));
            }
        }
        pairs.truncate(TWIN_PAIRS);
        let is_export = |heads: &[Bytes]| {
            recs.iter()
                .any(|r| r.changes.is_empty() && r.heads.as_slice() == heads)
        };
        if gone.is_empty() && !pairs.iter().any(|(p, q)| is_export(p) || is_export(q)) {
            return Ok(());
        }
        // Per export point of a pair: the characters writers it had not
        // seen deleted.
        let mut unseen: HashMap<&[Bytes], crate::crdt::body::Elements> = HashMap::new();
        for (p, q) in &pairs {
            for side in [*p, *q] {
                if is_export(side) && !unseen.contains_key(side) {
                    let deleted = self.doc.deleted_outside(side, not_writers)?;
                    unseen.insert(side, deleted);
                }
            }
        }
        // Runs of twins: consecutive positions whose character in one
        // state a writer deleted and, in the other, is not that same character
        // nor one the first state also has (a character both states hold
        // is its own twin).
        let mut runs: Vec<Vec<crate::crdt::body::Element>> = Vec::new();
        for (p, q) in pairs {
            let Some(aligned) = self.doc.twins(p, q)? else {
                continue;
            };
            let in_p: std::collections::HashSet<&crate::crdt::body::Element> =
                aligned.iter().map(|(x, _)| x).collect();
            let in_q: std::collections::HashSet<&crate::crdt::body::Element> =
                aligned.iter().map(|(_, y)| y).collect();
            for flip in [false, true] {
                let unseen_here = unseen.get(if flip { q } else { p });
                let mut run = Vec::new();
                for (x, y) in &aligned {
                    let (deleted, twin) = if flip { (y, x) } else { (x, y) };
                    let copy = x != y && !in_q.contains(x) && !in_p.contains(y);
                    let deleted_unseen =
                        gone.contains(deleted) || unseen_here.is_some_and(|u| u.contains(deleted));
                    if copy && deleted_unseen && !gone.contains(twin) {
                        run.push(twin.clone());
                    } else if !run.is_empty() {
                        runs.push(std::mem::take(&mut run));
                    }
                }
                if !run.is_empty() {
                    runs.push(run);
                }
            }
        }
        let mut derived = derived.to_vec();
        derived.sort();
        derived.dedup();
        runs.extend(self.doc.dropped_twins(canonical, &derived, gone)?);
        if runs.is_empty() {
            return Ok(());
        }
        // A run counts only while it is still side by side in the
        // canonical state: a diff that reused some of its characters in
        // another word (`[b1]` read as a typo of `[t11]`) has made them
        // part of that word, not the deleted one.
        // A run that text inserted since has split (draw 92: a tracker
        // word written between two deleted ones) still counts when each of
        // its pieces is whole words of that text, as a reused character,
        // inside another word, is not.
        let order = self.doc.owned_chars(canonical, &[])?;
        let chars: Vec<char> = order.iter().map(|(_, c, _)| *c).collect();
        let at: HashMap<Element, usize> = order
            .into_iter()
            .enumerate()
            .map(|(i, (e, _, _))| (e, i))
            .collect();
        let mut twins = Vec::new();
        for run in runs {
            let live: Vec<usize> = run.iter().filter_map(|e| at.get(e).copied()).collect();
            if live.is_empty() || live.windows(2).any(|w| w[0] >= w[1]) {
                continue;
            }
            let pieces: Vec<&[usize]> = live.chunk_by(|a, b| a + 1 == *b).collect();
            if pieces.len() > 1 && !pieces.iter().all(|p| whole_words(&chars, p)) {
                continue;
            }
            twins.extend(run);
        }
        gone.extend(twins);
        Ok(())
    }

    /// The newest sync point of one chain, joining concurrent ones.
    fn join(
        &mut self,
        set: &EventSet,
        key: &ChainKey,
        recs: &[Record],
    ) -> Result<SyncPoint, BodyError> {
        let newest = recs
            .iter()
            .map(|r| r.revision)
            .max()
            .expect("BUG: a chain with records has a newest one");
        // A join recorded at the canonical point (not the tracker's text)
        // is part of the chain's history: later joins start from it.
        let mut union: Vec<Bytes> = recs
            .iter()
            .flat_map(|r| r.heads.iter().chain(&r.changes).cloned())
            .collect();
        union.sort();
        union.dedup();
        let mut candidates: Vec<&Record> = recs.iter().filter(|r| r.revision == newest).collect();
        candidates.sort_by(|a, b| (&a.heads, a.id).cmp(&(&b.heads, b.id)));
        let mut covering = None;
        for c in &candidates {
            if self.doc.covers(&c.heads, &union) {
                // An import whose history holds an export of its revision
                // made from other heads: that export was written from a
                // state older than the import's base (a stale export), and
                // the import read its text as new. Deletions its writer had
                // not seen decide (below).
                let stale = !c.changes.is_empty()
                    && candidates
                        .iter()
                        .any(|e| e.changes.is_empty() && e.heads != c.heads);
                if !stale {
                    return Ok(SyncPoint {
                        revision: newest,
                        heads: c.heads.clone(),
                    });
                }
                covering = Some(c.heads.clone());
                break;
            }
        }
        // Keep only the maximal heads of the union.
        let union: Vec<Bytes> = union
            .iter()
            .filter(|h| {
                !union
                    .iter()
                    .any(|o| o != *h && self.doc.covers(std::slice::from_ref(o), &[(*h).clone()]))
            })
            .cloned()
            .collect();
        let Some(text) = set.observed_text(key, newest) else {
            // No observation of that revision: the union is the point.
            return Ok(SyncPoint {
                revision: newest,
                heads: union,
            });
        };
        let text = text.to_owned();
        // The canonical point: an export (the exact state sent) before an
        // import, then the one whose history holds the most other points
        // (derived from the newest base). The changes of points outside its
        // history are the redundant derivations: their copies go first.
        let canonical = candidates
            .iter()
            .max_by_key(|c| {
                let covered: Vec<&Record> = recs
                    .iter()
                    .filter(|r| self.doc.covers(&c.heads, &r.heads))
                    .collect();
                // The revision an import was derived from: the newest
                // point at its change's parents. Heads say nothing of
                // order (seed 1207: a stale export's heads are in the
                // history of an older revision's point).
                let base = match c.changes.as_slice() {
                    // `deps` are sorted.
                    [h] if c.heads == c.changes => self.doc.deps(h).and_then(|deps| {
                        recs.iter()
                            .filter(|r| {
                                let mut heads = r.heads.clone();
                                heads.sort();
                                heads == deps
                            })
                            .map(|r| r.revision)
                            .max()
                    }),
                    _ => None,
                };
                (
                    c.changes.is_empty(),
                    base,
                    covered.len(),
                    std::cmp::Reverse((c.heads.clone(), c.id)),
                )
            })
            .map(|c| c.heads.clone())
            .unwrap_or_default();
        // Characters of the canonical point that writers it has not seen
        // deleted (an edit, a carried deletion): the tracker's text still
        // has them only because its writer had not seen the deletion. The
        // join leaves them deleted; it is then not the tracker's text, and
        // the chain's point stays the canonical one (below).
        // No derived change, of this chain or another, is a writer's: an
        // import moves the tracker's text, and a join deletes a second
        // copy of a word it keeps. Seed 1017: the join of one tracker
        // object's chain dropped a clone's copy of a word; counted as a
        // deletion in the join of the issue's other object (whose point
        // held that copy, or its twin), it took the kept word too.
        let derived: Vec<Bytes> = recs.iter().flat_map(|r| r.changes.clone()).collect();
        let mut not_writers = derived.clone();
        not_writers.extend(self.derived_all.iter().cloned());
        for op in &self.pending {
            if let Op::SyncBody { changes, .. } = op {
                not_writers.extend(changes.iter().filter_map(change_hash));
            }
        }
        not_writers.sort();
        not_writers.dedup();
        let mut gone = self.doc.deleted_outside(&canonical, &not_writers)?;
        self.unseen_tracker_deletions(set, key, recs, newest, &canonical, &mut gone)?;
        self.twin_deletions(recs, &canonical, &derived, &not_writers, &mut gone)?;
        let target = if gone.is_empty() {
            text.clone()
        } else {
            self.doc.text_without(&canonical, &gone)?
        };
        let honest = target == text;
        if let Some(heads) = covering.filter(|_| honest) {
            // Nothing the stale export's writer had not seen was deleted
            // from the canonical point's text (deletions of characters it
            // does not show change nothing): the covering import is the
            // point. Draw 90: requiring no such deletion at all made every
            // fold derive a join, which the next fold's covering import
            // was again, without end.
            return Ok(SyncPoint {
                revision: newest,
                heads,
            });
        }
        let text = target;
        // The derived changes some point does not hold are the candidates
        // for dropping: those outside the canonical point's history first,
        // then the others, newest revision first. One is dropped when the
        // union's text without it (and without those dropped before) still
        // has everything the tracker's text has (the join then inserts
        // nothing but whitespace): its text is a second copy of edits the
        // union holds otherwise, for instance a replica's original edit
        // that another replica derived from the tracker without having it.
        // Dropping the derived copy keeps the original, which later edits
        // (a deletion) may target.
        let mut candidates: Vec<(bool, bool, std::cmp::Reverse<u64>, Bytes)> = Vec::new();
        // This chain's derived changes, then those of the issue's other
        // tracker objects the union holds (a copy derived from a twin's
        // text is as redundant here; seed 1017: left out, this join's diff
        // dropped the original instead, and the twin's join the copy).
        let own = recs
            .iter()
            .flat_map(|r| r.changes.iter().map(|h| (false, r.revision, h)));
        let others = not_writers
            .iter()
            .filter(|h| !derived.contains(h))
            .map(|h| (true, 0, h));
        for (other, revision, h) in own.chain(others) {
            let one = std::slice::from_ref(h);
            // Only what the union holds can be dropped from it (a join
            // recorded at the canonical point is outside it).
            if recs.iter().all(|p| self.doc.covers(&p.heads, one)) || !self.doc.covers(&union, one)
            {
                continue;
            }
            let inside = self.doc.covers(&canonical, one);
            candidates.push((inside, other, std::cmp::Reverse(revision), h.clone()));
        }
        candidates.sort();
        let mut order: Vec<Bytes> = Vec::new();
        for (_, _, _, h) in candidates {
            if !order.contains(&h) {
                order.push(h);
            }
        }
        // Each candidate is dropped whole when it can be; else each of its
        // runs (consecutive characters) that can be, so that a derived
        // change holding a copy and a tracker edit loses only the copy.
        let chars = self.doc.owned_chars(&union, &order)?;
        let (dropped, mut whole, partial) = drop_copies(&chars, &order, &text, true);
        // Characters a writer the tracker's writer had not seen deleted
        // are deleted as those very characters, not by the diff to the
        // target: the diff may pick another copy of the same text (a space,
        // a bracket), which then goes too once the writer's change merges
        // (draw 124: an edit that rewrote `[b3][t2] [t6]` as `[b3] [t6]`
        // lost the `[` of `[t6]`).
        // (Not honest: the target left some out.)
        let change = if partial || !honest {
            let mut gone: Vec<Element> = chars
                .iter()
                .zip(&dropped)
                .filter(|(_, d)| **d)
                .map(|((e, _, _), _)| e.clone())
                .chain(gone.iter().cloned())
                .collect();
            gone.sort();
            gone.dedup();
            self.doc
                .derived_change_removing(&union, &gone, &text, &seed("join", key, newest))?
        } else {
            whole.sort();
            self.doc
                .derived_change_dropping(&union, &whole, &text, &seed("join", key, newest))?
        };
        if !honest {
            // The join carries no sync point: the canonical point stays the
            // chain's, and the join is recorded with it (so that it counts
            // as derived), once.
            if let Some((c, true)) = change {
                self.pending.push(Op::SyncBody {
                    backend: key.0.clone(),
                    remote_id: key.1.clone(),
                    revision: newest,
                    heads: canonical.clone(),
                    changes: vec![c],
                });
            }
            return Ok(SyncPoint {
                revision: newest,
                heads: canonical,
            });
        }
        let change = change.map(|(c, _)| c);
        let heads = match &change {
            Some(c) => vec![change_hash(c).expect("BUG: a derived change parses")],
            None => union,
        };
        self.pending.push(Op::SyncBody {
            backend: key.0.clone(),
            remote_id: key.1.clone(),
            revision: newest,
            heads: heads.clone(),
            changes: change.into_iter().collect(),
        });
        Ok(SyncPoint {
            revision: newest,
            heads,
        })
    }

    /// The operations recording that the tracker's text of `revision` of
    /// `key` is `text`: the pending joins and, when the revision is newer
    /// than the chain's sync point, a sync point deriving that text from
    /// it. Older or already synced revisions add nothing but the joins.
    ///
    /// Before deriving anything, the importer looks for a state of its own
    /// document that already has the tracker's text: the point plus the
    /// history of one of the body changes the point does not cover. That is
    /// the case when another replica exported edits this one already has,
    /// and its record of the export has not arrived yet; deriving the text
    /// from the older point would put those edits in twice (the join would
    /// remove them once both records meet, but an export in between would
    /// send the doubled text).
    pub fn import(
        &mut self,
        set: &EventSet,
        key: &ChainKey,
        revision: u64,
        text: &str,
    ) -> Result<Vec<Op>, BodyError> {
        let base = match self.points.get(key) {
            Some(p) if p.revision >= revision => return Ok(std::mem::take(&mut self.pending)),
            Some(p) => p.heads.clone(),
            None => self.origin.clone(),
        };
        let found = self.state_with_text(set, &base, text, &[])?;
        let (heads, change) = match found {
            Found::Exact(heads) => (heads, None),
            Found::Holding(heads, drop) => self.derive_import(key, heads, &drop, text)?,
            Found::None => self.derive_import(key, base, &[], text)?,
        };
        self.points.insert(
            key.clone(),
            SyncPoint {
                revision,
                heads: heads.clone(),
            },
        );
        let mut ops = std::mem::take(&mut self.pending);
        ops.push(Op::SyncBody {
            backend: key.0.clone(),
            remote_id: key.1.clone(),
            revision,
            heads,
            changes: change.into_iter().collect(),
        });
        Ok(ops)
    }

    /// The import of `text` into chain `key` derived from the document at
    /// `from` (section 6b): the heads after it (`from` when its text is
    /// `text` already) and the derived change. The revision is not part
    /// of an import's seed: the same text derived from the same heads is
    /// the same change whichever revision carried it, so two replicas
    /// importing two revisions with one text (a tracker write that left
    /// the body alone) write one change, not two insertions.
    ///
    /// With `drop`, the change first deletes the characters those derived
    /// changes inserted ([`Found::Holding`]), as the exporter's join did.
    fn derive_import(
        &mut self,
        key: &ChainKey,
        from: Vec<Bytes>,
        drop: &[Bytes],
        text: &str,
    ) -> Result<(Vec<Bytes>, Option<Bytes>), BodyError> {
        let seed = seed("import", key, 0);
        let change = if drop.is_empty() {
            self.doc.derived_change(&from, text, &seed)?
        } else {
            self.doc
                .derived_change_dropping(&from, drop, text, &seed)?
                .map(|(c, _)| c)
        };
        let heads = match &change {
            Some(c) => vec![change_hash(c).expect("BUG: a derived change parses")],
            None => from,
        };
        Ok((heads, change))
    }

    /// A state of the document between `base` and now whose text is
    /// `text` ([`Found::Exact`]), else the largest one whose changes since
    /// `base` the text already holds ([`Found::Holding`]: the tracker has
    /// those edits, exported by a replica whose record has not arrived,
    /// plus edits of its own). The states tried are the whole document and
    /// `base` plus the history of one body change `base` does not cover
    /// (newest first, at most [`STATE_SEARCH`] of them); one of the latter
    /// whose text is `text` once copies made by its history's derived
    /// changes are dropped ([`BodyView::copies_to_drop`]) is taken as
    /// holding, with them.
    fn state_with_text(
        &mut self,
        set: &EventSet,
        base: &[Bytes],
        text: &str,
        exclude: &[Bytes],
    ) -> Result<Found, BodyError> {
        let base_text = self.doc.text_at(base)?;
        if base_text == text {
            return Ok(Found::None);
        }
        // Body changes per event, and the events whose changes the base
        // does not cover.
        let mut carriers: Vec<(u64, EventId, Vec<Bytes>)> = Vec::new();
        for (id, e) in set.iter() {
            let changes: Vec<&Bytes> = match &e.op {
                Op::Create { body: Some(b), .. } => vec![b],
                Op::EditBody { change } => vec![change],
                Op::SyncBody { changes, .. } => changes.iter().collect(),
                _ => continue,
            };
            let hashes: Vec<Bytes> = changes.into_iter().filter_map(change_hash).collect();
            if hashes.is_empty() || self.doc.covers(base, &hashes) {
                continue;
            }
            carriers.push((e.lamport, *id, hashes));
        }
        if carriers.is_empty() {
            return Ok(Found::None);
        }
        // Per change: (its deletions held, its whole edit held). The
        // candidate states share most of their changes.
        let mut held: HeldMemo = HashMap::new();
        if exclude.is_empty() {
            let whole = self.doc.heads();
            let whole_text = self.doc.text();
            if whole_text == text {
                return Ok(Found::Exact(whole));
            }
            if self.holds(&mut held, base, &base_text, &whole, &whole_text, text)? {
                return Ok(Found::Holding(whole, Vec::new()));
            }
        }
        carriers.sort_by_key(|c| std::cmp::Reverse((c.0, c.1)));
        let by_id: BTreeMap<EventId, Vec<Bytes>> =
            carriers.iter().map(|(_, id, h)| (*id, h.clone())).collect();
        // Every candidate state whose edits the text holds; their union is
        // tried last (the tracker usually has all of them).
        let mut holding: Vec<Bytes> = Vec::new();
        let mut first_holding: Option<Vec<Bytes>> = None;
        for (_, id, _) in carriers.iter().take(STATE_SEARCH) {
            // The body changes of the event's history.
            let mut stack = vec![*id];
            let mut seen = std::collections::BTreeSet::new();
            let mut heads: Vec<Bytes> = base.to_vec();
            // The derived changes of the history (imports, joins), newest
            // first.
            let mut history_derived: Vec<(u64, EventId, Bytes)> = Vec::new();
            while let Some(x) = stack.pop() {
                if !seen.insert(x) {
                    continue;
                }
                let event = set.get(&x);
                if let Some(h) = by_id.get(&x) {
                    heads.extend(h.iter().cloned());
                    if let Some(e) = event.filter(|e| matches!(e.op, Op::SyncBody { .. })) {
                        history_derived.extend(h.iter().map(|h| (e.lamport, x, h.clone())));
                    }
                }
                if let Some(e) = event {
                    stack.extend(e.parents.iter().copied());
                }
            }
            heads.sort();
            heads.dedup();
            history_derived.sort_by_key(|d| std::cmp::Reverse((d.0, d.1)));
            let history_derived: Vec<Bytes> = history_derived.into_iter().map(|d| d.2).collect();
            if exclude
                .iter()
                .any(|x| self.doc.covers(&heads, std::slice::from_ref(x)))
            {
                continue;
            }
            let state_text = self.doc.text_at(&heads)?;
            if state_text == text {
                return Ok(Found::Exact(self.minimal(&heads)));
            }
            if self.holds(&mut held, base, &base_text, &heads, &state_text, text)? {
                if first_holding.is_none() {
                    first_holding = Some(self.minimal(&heads));
                }
                holding.extend(heads);
            } else if let Some(drop) =
                self.copies_to_drop(&heads, &state_text, &history_derived, text)?
            {
                return Ok(Found::Holding(self.minimal(&heads), drop));
            }
        }
        let Some(first_holding) = first_holding else {
            return Ok(Found::None);
        };
        holding.sort();
        holding.dedup();
        // No state here covers an excluded change, so neither does their
        // union.
        let union = self.minimal(&holding);
        let union_text = self.doc.text_at(&union)?;
        if union_text == text {
            return Ok(Found::Exact(union));
        }
        if self.holds(&mut held, base, &base_text, &union, &union_text, text)? {
            return Ok(Found::Holding(union, Vec::new()));
        }
        Ok(Found::Holding(first_holding, Vec::new()))
    }

    /// The derived changes among `derived` (in the history of `state`,
    /// newest first) whose inserted characters are second copies: each is
    /// dropped, as a join drops a copy, when the state's text without it
    /// (and those dropped before) still has everything `text` has; `Some`
    /// when something was dropped and the rest is exactly `text`. Seed
    /// 1304: an exporter's edit was made on its own import of the older
    /// revision, a copy of edits the importer here had as originals; the
    /// exporter's join dropped the copy before the export, and without
    /// that join no state here has the tracker's text.
    fn copies_to_drop(
        &mut self,
        state: &[Bytes],
        state_text: &str,
        derived: &[Bytes],
        text: &str,
    ) -> Result<Option<Vec<Bytes>>, BodyError> {
        // Dropping only removes characters.
        if derived.is_empty() || state_text.chars().count() <= text.chars().count() {
            return Ok(None);
        }
        let chars = self.doc.owned_chars(state, derived)?;
        let (dropped, drop, _) = drop_copies(&chars, derived, text, false);
        let rest: String = chars
            .iter()
            .zip(&dropped)
            .filter(|(_, d)| !**d)
            .map(|((_, c, _), _)| *c)
            .collect();
        if !dropped.contains(&true) || rest != text {
            return Ok(None);
        }
        // Copies, not the tracker's deletions: every token of letters and
        // digits the dropped characters held (per run of them) is still in
        // the text. Dropping all it has is "adding nothing" to a text a
        // tracker user emptied.
        let runs: Vec<String> = chars
            .iter()
            .zip(&dropped)
            .collect::<Vec<_>>()
            .chunk_by(|a, b| a.1 == b.1)
            .filter(|run| *run[0].1)
            .map(|run| run.iter().map(|((_, c, _), _)| *c).collect())
            .collect();
        let mut tokens = runs
            .iter()
            .flat_map(|r| r.split(|c: char| !c.is_alphanumeric()))
            .filter(|t| !t.is_empty())
            .peekable();
        if tokens.peek().is_none() {
            return Ok(None);
        }
        Ok(tokens.all(|t| text.contains(t)).then_some(drop))
    }

    /// Whether `text` holds the edits of `state` since `base`. With at
    /// most [`HELD_CHANGES`] changes since `base`, each one's deletions
    /// must be made in `text` (a whole-text check misses a deletion that
    /// undoes an insertion made since `base`: the tracker, written by a
    /// replica that had the insertion and not the deletion, still has the
    /// text, and deriving from that state would put it back as new text);
    /// and then either each change's edit is held on its own (a merge can
    /// glue two concurrent insertions into one word the tracker holds
    /// apart, which fails the whole-text check) or the state's text is (a
    /// join can move an insertion away from where its change put it).
    /// Either way the state may not have more copies of what its changes
    /// inserted than the text ([`textdiff::no_extra_copies`]).
    fn holds(
        &mut self,
        memo: &mut HeldMemo,
        base: &[Bytes],
        base_text: &str,
        state: &[Bytes],
        state_text: &str,
        text: &str,
    ) -> Result<bool, BodyError> {
        let changes = self.doc.changes_between(base, state);
        if changes.len() > HELD_CHANGES {
            let inserted = textdiff::inserted_tokens(base_text, state_text);
            return Ok(textdiff::holds_changes(base_text, state_text, text)
                && textdiff::no_extra_copies(base_text, state_text, text, &inserted));
        }
        let mut each = true;
        let mut inserted: Vec<String> = Vec::new();
        // Changes whose edit the text holds on its own and that wrote a
        // token (edits only: a derived change holds tracker text by
        // construction), and the ones whose edit it does not hold, with
        // their tokens.
        let mut vouchers: Vec<Bytes> = Vec::new();
        let mut unheld: Vec<(Bytes, Vec<String>)> = Vec::new();
        for c in changes {
            if !memo.contains_key(&c) {
                let v = match self.doc.deps(&c).filter(|d| !d.is_empty()) {
                    None => (true, true, Vec::new()),
                    Some(deps) => {
                        let before = self.doc.text_at(&deps)?;
                        let after = self.doc.text_at(std::slice::from_ref(&c))?;
                        // A derived change's deletions are the tracker's
                        // or a join's dropped copies: which copy went is
                        // the diff's choice, so they are counted by token
                        // (the text has fewer copies of each deleted token
                        // than the text before the change), not by place.
                        let deletions = if self.doc.is_edit(&c) {
                            textdiff::deletions_held(&before, &after, text)
                        } else {
                            textdiff::tokens_gone(&before, &after, text)
                        };
                        (
                            deletions,
                            textdiff::holds_changes(&before, &after, text),
                            textdiff::inserted_tokens(&before, &after),
                        )
                    }
                };
                memo.insert(c.clone(), v);
            }
            let (deletions, edit, tokens) = memo[&c].clone();
            if !deletions {
                return Ok(false);
            }
            each = each && edit;
            if edit {
                if !tokens.is_empty() && self.doc.is_edit(&c) {
                    vouchers.push(c);
                }
                inserted.extend(tokens);
            } else {
                unheld.push((c, tokens));
            }
        }
        if each || textdiff::holds_changes(base_text, state_text, text) {
            let all: Vec<String> = inserted
                .into_iter()
                .chain(unheld.into_iter().flat_map(|(_, t)| t))
                .collect();
            return Ok(textdiff::no_extra_copies(base_text, state_text, text, &all));
        }
        // A change whose edit the text holds was seen by the text's writer,
        // and so was its history (automerge changes travel with their
        // dependencies): an earlier change of that history that the text
        // does not hold was deleted by that writer, not missed.
        let vouched = unheld.iter().all(|(u, _)| {
            vouchers.iter().any(|v| {
                self.doc
                    .covers(std::slice::from_ref(v), std::slice::from_ref(u))
            })
        });
        Ok(vouched && textdiff::no_extra_copies(base_text, state_text, text, &inserted))
    }

    /// The maximal hashes of `heads` (those no other one descends from).
    fn minimal(&mut self, heads: &[Bytes]) -> Vec<Bytes> {
        heads
            .iter()
            .filter(|h| {
                !heads
                    .iter()
                    .any(|o| o != *h && self.doc.covers(std::slice::from_ref(o), &[(*h).clone()]))
            })
            .cloned()
            .collect()
    }

    /// The operations recording that an export from this view produced
    /// `revision` of `key`, whose text the tracker answers with `returned`
    /// (the view's text was sent; a tracker that normalises it, e.g. line
    /// endings, gets a derived change to its form).
    pub fn exported(
        &mut self,
        key: &ChainKey,
        revision: u64,
        returned: &str,
    ) -> Result<Vec<Op>, BodyError> {
        let at = self.doc.heads();
        let change = if self.doc.text() == returned {
            None
        } else {
            self.doc
                .derived_change(&at, returned, &seed("export", key, revision))?
        };
        let heads = match &change {
            Some(c) => vec![change_hash(c).expect("BUG: a derived change parses")],
            None => at,
        };
        self.points.insert(
            key.clone(),
            SyncPoint {
                revision,
                heads: heads.clone(),
            },
        );
        let mut ops = std::mem::take(&mut self.pending);
        ops.push(Op::SyncBody {
            backend: key.0.clone(),
            remote_id: key.1.clone(),
            revision,
            heads,
            changes: change.into_iter().collect(),
        });
        Ok(ops)
    }

    /// The operations of a local edit to `new_text`: the pending joins,
    /// then the edit, one `edit_body` per change of it (none when the text
    /// is already `new_text`; several for a large edit).
    pub fn edit(&mut self, new_text: &str) -> Vec<Op> {
        let changes = self.doc.edit_in_changes(new_text);
        if changes.is_empty() {
            return Vec::new();
        }
        let mut ops = std::mem::take(&mut self.pending);
        ops.extend(changes.into_iter().map(|change| Op::EditBody { change }));
        ops
    }

    /// The issue this view belongs to.
    pub fn issue(&self) -> IssueId {
        self.issue
    }
}

/// Whether the consecutive positions `piece` of `chars` start and end at
/// word boundaries: each end is whitespace, or has whitespace (or the
/// text's edge) beside it.
fn whole_words(chars: &[char], piece: &[usize]) -> bool {
    let (Some(&first), Some(&last)) = (piece.first(), piece.last()) else {
        return false;
    };
    let space = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_none_or(|c| c.is_whitespace())
    };
    let starts = chars[first].is_whitespace() || space(first.checked_sub(1));
    let ends = chars[last].is_whitespace() || space(Some(last + 1));
    starts && ends
}
