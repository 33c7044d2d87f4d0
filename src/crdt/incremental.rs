//! The fold of a purely local event set, kept open so that more events can
//! be added without folding the old ones again ([`Folded`]), and a compact
//! byte encoding of it and of [`IssueState`] for the state cache.
//!
//! Every rule of the fold (`refs-format.md`, section 6) is a join over the
//! set when no tracker operation is present: registers keep the value of the
//! greatest stamp, the observed-remove sets keep their add and remove tags,
//! comments their add order, edits and tombstones; the body is the automerge
//! text of the body changes. [`Folded`] keeps exactly what those joins need,
//! so `Folded::from_set(a).add(b)` gives the same [`IssueState`] as the fold
//! of `a ∪ b`, byte for byte (property-tested in `tests/it/scale.rs`). Sets
//! with tracker operations (observations, bindings, sync points) are folded
//! whole: their rules depend on causality across the whole set.
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use super::body::BodyDoc;
use super::{Comment, CommentRemote, EventSet, FoldError, IssueState, Link, RemoteState, Stamp};
use crate::event::{ActorId, Event, EventId, IssueId, Op, Status};

/// Whether an operation's fold rule is a local join (see the module docs).
pub fn is_local(op: &Op) -> bool {
    match op {
        Op::Create { .. }
        | Op::SetTitle { .. }
        | Op::EditBody { .. }
        | Op::SetStatus { .. }
        | Op::AddLabel { .. }
        | Op::RemoveLabel { .. }
        | Op::AddAssignee { .. }
        | Op::RemoveAssignee { .. }
        | Op::AddComment { .. }
        | Op::EditComment { .. }
        | Op::DeleteComment { .. }
        | Op::AddLink { .. }
        | Op::RemoveLink { .. }
        | Op::SetField { .. } => true,
        Op::Observe { .. }
        | Op::ObserveComment { .. }
        | Op::Bind { .. }
        | Op::BindComment { .. }
        | Op::Exported { .. }
        | Op::SyncBody { .. }
        | Op::ObserveCreated { .. }
        | Op::ObserveGone { .. }
        | Op::MergedInto { .. }
        // Claim resolution asks causal questions of the whole set.
        | Op::Claim { .. }
        | Op::Release {}
        // Attributions are few (one per agent and issue): folded whole
        // rather than kept in the compact fold and its cache encoding.
        | Op::OnBehalfOf { .. } => false,
    }
}

/// An added comment as the fold keeps it before edits and tombstones.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Added {
    author: ActorId,
    body: String,
    created_ms: i64,
}

/// Observed-remove set state: add tags and cancelled tags per element.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OrSet<K: Ord> {
    added: BTreeMap<K, BTreeSet<EventId>>,
    removed: BTreeSet<(K, EventId)>,
}

impl<K: Ord> Default for OrSet<K> {
    fn default() -> Self {
        OrSet {
            added: BTreeMap::new(),
            removed: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> OrSet<K> {
    fn add(&mut self, k: K, tag: EventId) {
        self.added.entry(k).or_default().insert(tag);
    }

    fn remove(&mut self, k: &K, observed: &[EventId]) {
        self.removed
            .extend(observed.iter().map(|tag| (k.clone(), *tag)));
    }

    /// Element -> live tags (sorted), elements with at least one.
    fn tags(&self) -> BTreeMap<K, Vec<EventId>> {
        self.added
            .iter()
            .filter_map(|(k, tags)| {
                let live: Vec<EventId> = tags
                    .iter()
                    .filter(|t| !self.removed.contains(&(k.clone(), **t)))
                    .copied()
                    .collect();
                (!live.is_empty()).then(|| (k.clone(), live))
            })
            .collect()
    }
}

/// The open fold of a local event set (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    issue: IssueId,
    title: Option<(Stamp, String)>,
    status: Option<(Stamp, Status)>,
    fields: BTreeMap<String, (Stamp, Option<String>)>,
    first_create: Option<(Stamp, ActorId, i64)>,
    comments: Vec<(Stamp, Added)>,
    edits: BTreeMap<EventId, (Stamp, String)>,
    deleted: BTreeSet<EventId>,
    labels: OrSet<String>,
    assignees: OrSet<String>,
    links: OrSet<Link>,
    /// The events carrying body changes (`create` with a body, `edit_body`).
    body_events: BTreeMap<EventId, Event>,
    body: String,
    updated_ms: i64,
    lamport: u64,
    count: usize,
    heads: BTreeSet<EventId>,
    /// Ids named as parents that were not in the set when named.
    dangling: BTreeSet<EventId>,
    /// Listings only: do not build the body document.
    skip_body: bool,
    /// The body document of `body_events` saved in compact form when the
    /// body is large ([`SAVED_DOC_MIN_BODY`]): the next [`Folded::add`]
    /// with body changes starts from it instead of applying every change
    /// again. Kept in the state cache.
    saved: Option<Vec<u8>>,
    /// The body document the last [`Folded::add`] built, for a writer that
    /// needs it next (see [`Folded::take_body_doc`]).
    doc: DocMemo,
}

/// Bodies of at least this many bytes keep their document saved (see
/// `Folded::saved`); below, applying the changes again costs little.
const SAVED_DOC_MIN_BODY: usize = 32 * 1024;

/// A body document kept for one later use in the same process; not part
/// of the fold's value (clones and comparisons ignore it).
#[derive(Default)]
struct DocMemo(std::cell::RefCell<Option<(Vec<EventId>, BodyDoc)>>);

impl Clone for DocMemo {
    fn clone(&self) -> DocMemo {
        DocMemo::default()
    }
}

impl PartialEq for DocMemo {
    fn eq(&self, _: &DocMemo) -> bool {
        true
    }
}

impl Eq for DocMemo {}

/// The automerge change an event carries for the body, if any.
fn body_change(e: &Event) -> Option<&crate::event::Bytes> {
    match &e.op {
        Op::Create { body: Some(b), .. } => Some(b),
        Op::EditBody { change } => Some(change),
        _ => None,
    }
}

impl std::fmt::Debug for DocMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocMemo")
    }
}

impl Folded {
    /// The fold of no events of `issue` (a writer creating it folds its
    /// first events into this with [`Folded::add`]).
    pub fn empty(issue: IssueId) -> Folded {
        Folded {
            issue,
            title: None,
            status: None,
            fields: BTreeMap::new(),
            first_create: None,
            comments: Vec::new(),
            edits: BTreeMap::new(),
            deleted: BTreeSet::new(),
            labels: OrSet::default(),
            assignees: OrSet::default(),
            links: OrSet::default(),
            body_events: BTreeMap::new(),
            body: String::new(),
            updated_ms: i64::MIN,
            lamport: 0,
            count: 0,
            heads: BTreeSet::new(),
            dangling: BTreeSet::new(),
            skip_body: false,
            saved: None,
            doc: DocMemo::default(),
        }
    }

    /// The open fold of `set`, if every event in it is local (else the set
    /// must be folded whole) and the fold succeeds.
    pub fn from_set(set: &EventSet, issue: IssueId) -> Option<Folded> {
        let events: Vec<(EventId, &Event)> = set.iter().map(|(id, e)| (*id, e)).collect();
        let mut f = Folded::empty(issue);
        f.add(&events).ok()?.then_some(f)
    }

    /// The state of a local `set` without its body (left empty, and its
    /// changes not applied: no automerge document is built), for listings.
    /// `None` when the set is not local or has no create.
    pub fn state_without_body(set: &EventSet, issue: IssueId) -> Option<IssueState> {
        let events: Vec<(EventId, &Event)> = set.iter().map(|(id, e)| (*id, e)).collect();
        let mut f = Folded::empty(issue);
        f.skip_body = true;
        f.add(&events).ok()?.then_some(())?;
        f.state().ok()
    }

    /// Add events that are not in the set yet (the caller guarantees it:
    /// they come from a tree diff). Returns `Ok(false)`, leaving `self`
    /// unchanged, when one of them is not local or belongs to another
    /// issue: fold the whole set instead. An error means the body changes
    /// do not apply (the whole fold fails the same way).
    pub fn add(&mut self, events: &[(EventId, &Event)]) -> Result<bool, FoldError> {
        self.add_with(events, None)
    }

    /// [`Folded::add`] of events a writer just appended, with the body
    /// document its edit built (`doc`: this fold's body changes and those
    /// of `events`), which the fold takes as is instead of loading the
    /// saved document and applying the new changes again.
    pub fn add_with_body_doc(
        &mut self,
        events: &[(EventId, &Event)],
        doc: BodyDoc,
    ) -> Result<bool, FoldError> {
        self.add_with(events, Some(doc))
    }

    fn add_with(
        &mut self,
        events: &[(EventId, &Event)],
        offered: Option<BodyDoc>,
    ) -> Result<bool, FoldError> {
        if events
            .iter()
            .any(|(_, e)| !is_local(&e.op) || e.issue != self.issue)
        {
            return Ok(false);
        }
        // The only step that can fail comes first, so that a failure
        // leaves `self` as it was.
        let carries_body =
            |e: &Event| matches!(e.op, Op::Create { body: Some(_), .. } | Op::EditBody { .. });
        let body = if !self.skip_body && events.iter().any(|(_, e)| carries_body(e)) {
            let changes: Vec<&crate::event::Bytes> = self
                .body_events
                .values()
                .chain(events.iter().map(|(_, e)| *e).filter(|e| carries_body(e)))
                .filter_map(body_change)
                .collect();
            // The writer's own document (`Folded::add_with_body_doc`):
            // nothing to load or apply.
            let from_saved = || {
                self.saved
                    .as_deref()
                    .and_then(|saved| BodyDoc::load_saved(self.issue, saved, changes.clone()).ok())
            };
            let mut doc = match offered.or_else(from_saved) {
                Some(doc) => doc,
                None => BodyDoc::load(self.issue, changes).map_err(|source| FoldError::Body {
                    issue: self.issue,
                    source,
                })?,
            };
            let text = doc.text();
            let saved = (text.len() >= SAVED_DOC_MIN_BODY).then(|| doc.save());
            Some((text, doc, saved))
        } else {
            None
        };
        let batch: BTreeSet<EventId> = events.iter().map(|(id, _)| *id).collect();
        let mut named_in_batch: BTreeSet<EventId> = BTreeSet::new();
        for (id, e) in events {
            let stamp = Stamp {
                lamport: e.lamport,
                actor: e.actor.clone(),
                id: *id,
            };
            self.count += 1;
            self.updated_ms = self.updated_ms.max(e.wall_ms);
            self.lamport = self.lamport.max(e.lamport);
            for p in &e.parents {
                if self.heads.remove(p) {
                    continue;
                }
                if batch.contains(p) {
                    named_in_batch.insert(*p);
                } else {
                    self.dangling.insert(*p);
                }
            }
            self.apply(stamp, e);
        }
        for id in &batch {
            if !self.dangling.remove(id) && !named_in_batch.contains(id) {
                self.heads.insert(*id);
            }
        }
        if let Some((body, doc, saved)) = body {
            self.body = body;
            self.saved = saved;
            let ids = self.body_events.keys().copied().collect();
            *self.doc.0.borrow_mut() = Some((ids, doc));
        }
        Ok(true)
    }

    /// Whether the body document is kept saved (a body of 32 KiB or more
    /// whose changes the last [`Folded::add`] applied).
    pub fn has_saved_body(&self) -> bool {
        self.saved.is_some()
    }

    /// The body document of [`Folded::body_set`] when the last
    /// [`Folded::add`] built it (and the body events have not changed
    /// since), once: a writer editing the body after an incremental fold
    /// does not load the document a second time.
    ///
    /// Else the saved document (a large body), checked against the body
    /// changes: loading it costs a fraction of applying every change again.
    pub fn take_body_doc(&self) -> Option<BodyDoc> {
        let memo = self.doc.0.borrow_mut().take();
        if let Some((ids, doc)) = memo {
            if ids.iter().copied().eq(self.body_events.keys().copied()) {
                return Some(doc);
            }
        }
        let saved = self.saved.as_deref()?;
        let changes: Vec<&crate::event::Bytes> =
            self.body_events.values().filter_map(body_change).collect();
        BodyDoc::load_saved(self.issue, saved, changes).ok()
    }

    fn apply(&mut self, stamp: Stamp, e: &Event) {
        fn lww<T>(slot: &mut Option<(Stamp, T)>, stamp: &Stamp, value: T) {
            if slot.as_ref().is_none_or(|(s, _)| s < stamp) {
                *slot = Some((stamp.clone(), value));
            }
        }
        let id = stamp.id;
        match &e.op {
            Op::Create {
                title,
                body,
                status,
                labels,
                assignees,
            } => {
                lww(&mut self.title, &stamp, title.clone());
                lww(&mut self.status, &stamp, *status);
                if self
                    .first_create
                    .as_ref()
                    .is_none_or(|(s, _, _)| stamp < *s)
                {
                    self.first_create = Some((stamp.clone(), e.actor.clone(), e.wall_ms));
                }
                for l in labels {
                    self.labels.add(l.clone(), id);
                }
                for a in assignees {
                    self.assignees.add(a.clone(), id);
                }
                if body.is_some() {
                    self.body_events.insert(id, e.clone());
                }
            }
            Op::SetTitle { title } => lww(&mut self.title, &stamp, title.clone()),
            Op::SetStatus { status } => lww(&mut self.status, &stamp, *status),
            Op::SetField { name, value } => {
                let slot = self
                    .fields
                    .entry(name.clone())
                    .or_insert((stamp.clone(), None));
                if slot.0 <= stamp {
                    *slot = (stamp, value.clone());
                }
            }
            Op::EditBody { .. } => {
                self.body_events.insert(id, e.clone());
            }
            Op::AddLabel { label } => self.labels.add(label.clone(), id),
            Op::RemoveLabel { label, observed } => self.labels.remove(label, observed),
            Op::AddAssignee { assignee } => self.assignees.add(assignee.clone(), id),
            Op::RemoveAssignee { assignee, observed } => self.assignees.remove(assignee, observed),
            Op::AddLink { kind, target } => self.links.add(
                Link {
                    kind: kind.clone(),
                    target: *target,
                },
                id,
            ),
            Op::RemoveLink {
                kind,
                target,
                observed,
            } => self.links.remove(
                &Link {
                    kind: kind.clone(),
                    target: *target,
                },
                observed,
            ),
            Op::AddComment { body } => {
                let at = self.comments.partition_point(|(s, _)| *s < stamp);
                self.comments.insert(
                    at,
                    (
                        stamp,
                        Added {
                            author: e.actor.clone(),
                            body: body.clone(),
                            created_ms: e.wall_ms,
                        },
                    ),
                );
            }
            Op::EditComment { comment, body } => {
                let slot = self
                    .edits
                    .entry(*comment)
                    .or_insert((stamp.clone(), body.clone()));
                if slot.0 < stamp {
                    *slot = (stamp, body.clone());
                }
            }
            Op::DeleteComment { comment } => {
                self.deleted.insert(*comment);
            }
            Op::Observe { .. }
            | Op::ObserveComment { .. }
            | Op::Bind { .. }
            | Op::BindComment { .. }
            | Op::Exported { .. }
            | Op::SyncBody { .. }
            | Op::ObserveCreated { .. }
            | Op::ObserveGone { .. }
            | Op::MergedInto { .. }
            | Op::Claim { .. }
            | Op::Release {}
            | Op::OnBehalfOf { .. } => {
                unreachable!("BUG: Folded::add checks that every operation is local")
            }
        }
    }

    /// The folded state (what [`EventSet::fold`] gives for the same set).
    pub fn state(&self) -> Result<IssueState, FoldError> {
        let Some((_, created_by, created_ms)) = &self.first_create else {
            return Err(FoldError::NoCreate {
                issue: self.issue,
                events: self.count,
            });
        };
        let mut deleted_comments = 0;
        let mut comments = Vec::with_capacity(self.comments.len());
        for (stamp, c) in &self.comments {
            if self.deleted.contains(&stamp.id) {
                deleted_comments += 1;
                continue;
            }
            let edit = self.edits.get(&stamp.id);
            comments.push(Comment {
                id: stamp.id,
                author: c.author.clone(),
                body: edit.map_or_else(|| c.body.clone(), |(_, b)| b.clone()),
                edited: edit.is_some(),
                created_ms: c.created_ms,
                remote: None,
                on_behalf_of: None,
            });
        }
        Ok(IssueState {
            id: self.issue,
            title: self
                .title
                .as_ref()
                .map(|(_, t)| t.clone())
                .unwrap_or_default(),
            body: self.body.clone(),
            status: self.status.as_ref().map_or(Status::Open, |(_, s)| *s),
            labels: self.labels.tags().into_keys().collect(),
            assignees: self.assignees.tags().into_keys().collect(),
            links: self.links.tags().into_keys().collect(),
            fields: self
                .fields
                .iter()
                .filter_map(|(k, (_, v))| v.as_ref().map(|v| (k.clone(), v.clone())))
                .collect(),
            comments,
            deleted_comments,
            created_by: created_by.clone(),
            created_ms: *created_ms,
            updated_ms: if self.count == 0 { 0 } else { self.updated_ms },
            lamport: self.lamport,
            event_count: self.count,
            heads: self.heads.iter().copied().collect(),
            remotes: Vec::new(),
            merged_into: None,
            claims: super::claims::Claims::default(),
            created_on_behalf_of: None,
            on_behalf_of: BTreeMap::new(),
        })
    }

    /// [`Folded::state`], consuming the fold (no copies of the comments).
    pub fn into_state(mut self) -> Result<IssueState, FoldError> {
        let Some((_, created_by, created_ms)) = self.first_create.take() else {
            return Err(FoldError::NoCreate {
                issue: self.issue,
                events: self.count,
            });
        };
        let mut deleted_comments = 0;
        let mut comments = Vec::with_capacity(self.comments.len());
        for (stamp, c) in std::mem::take(&mut self.comments) {
            if self.deleted.contains(&stamp.id) {
                deleted_comments += 1;
                continue;
            }
            let edit = self.edits.remove(&stamp.id);
            comments.push(Comment {
                id: stamp.id,
                author: c.author,
                edited: edit.is_some(),
                body: edit.map_or(c.body, |(_, b)| b),
                created_ms: c.created_ms,
                remote: None,
                on_behalf_of: None,
            });
        }
        Ok(IssueState {
            id: self.issue,
            title: self.title.take().map(|(_, t)| t).unwrap_or_default(),
            status: self.status.as_ref().map_or(Status::Open, |(_, s)| *s),
            labels: self.labels.tags().into_keys().collect(),
            assignees: self.assignees.tags().into_keys().collect(),
            links: self.links.tags().into_keys().collect(),
            fields: std::mem::take(&mut self.fields)
                .into_iter()
                .filter_map(|(k, (_, v))| v.map(|v| (k, v)))
                .collect(),
            body: std::mem::take(&mut self.body),
            comments,
            deleted_comments,
            created_by,
            created_ms,
            updated_ms: if self.count == 0 { 0 } else { self.updated_ms },
            lamport: self.lamport,
            event_count: self.count,
            heads: self.heads.iter().copied().collect(),
            remotes: Vec::new(),
            merged_into: None,
            claims: super::claims::Claims::default(),
            created_on_behalf_of: None,
            on_behalf_of: BTreeMap::new(),
        })
    }

    /// The live add tags of each label ([`EventSet::label_tags`]).
    pub fn label_tags(&self) -> BTreeMap<String, Vec<EventId>> {
        self.labels.tags()
    }

    /// The live add tags of each assignee ([`EventSet::assignee_tags`]).
    pub fn assignee_tags(&self) -> BTreeMap<String, Vec<EventId>> {
        self.assignees.tags()
    }

    /// The live add tags of each link ([`EventSet::link_tags`]).
    pub fn link_tags(&self) -> BTreeMap<Link, Vec<EventId>> {
        self.links.tags()
    }

    /// The events that carry body changes: their set has the same body
    /// document as the whole set ([`EventSet::body`]).
    pub fn body_set(&self) -> EventSet {
        self.body_events
            .iter()
            .map(|(id, e)| (*id, e.clone()))
            .collect()
    }

    /// Whether `events`, whose parents are all folded already or in the
    /// batch, keep within the clock rule (`refs-format.md`, section 5) as
    /// far as it can be told without the clocks of the events already
    /// folded: their greatest clock stands in for the ancestors' (an upper
    /// bound, so nothing valid is refused). Events from elsewhere (a ref
    /// moved by `git fetch`) are checked with this before [`Folded::add`];
    /// a batch that fails goes to a whole fold, which judges exactly, and
    /// no batch that passes can carry a clock past `max + batch length`.
    pub fn clock_plausible(&self, events: &[(EventId, &Event)]) -> bool {
        let batch: BTreeMap<EventId, &Event> = events.iter().map(|(id, e)| (*id, *e)).collect();
        // Greatest clock among each batch event and its ancestors, by an
        // iterative post-order walk (no recursion on long chains).
        let mut reach: BTreeMap<EventId, u64> = BTreeMap::new();
        let mut on_stack: BTreeSet<EventId> = BTreeSet::new();
        for root in batch.keys() {
            let mut stack = vec![(*root, false)];
            while let Some((id, expanded)) = stack.pop() {
                if reach.contains_key(&id) {
                    continue;
                }
                let e = batch[&id];
                if !expanded {
                    if !on_stack.insert(id) {
                        return false; // a cycle: no content-addressed set has one
                    }
                    stack.push((id, true));
                    for p in &e.parents {
                        if batch.contains_key(p) && !reach.contains_key(p) {
                            stack.push((*p, false));
                        }
                    }
                    continue;
                }
                let below = e
                    .parents
                    .iter()
                    .map(|p| reach.get(p).copied().unwrap_or(self.lamport))
                    .max();
                let bound = match below {
                    Some(b) => b.saturating_add(1),
                    None => 1,
                };
                if e.lamport > bound {
                    return false;
                }
                reach.insert(id, below.unwrap_or(0).max(e.lamport));
            }
        }
        true
    }

    /// Event heads ([`EventSet::heads`]).
    pub fn heads(&self) -> Vec<EventId> {
        self.heads.iter().copied().collect()
    }

    /// Largest Lamport clock ([`EventSet::max_lamport`]).
    pub fn max_lamport(&self) -> u64 {
        self.lamport
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no event was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

// ---------------------------------------------------------------------------
// Encoding: varints and length-prefixed strings, in a fixed field order. The
// cache that stores these bytes names its version and checksums them; any
// decoding failure means "not cached".

/// Decoding failed: the bytes are not an encoding of this version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cached state does not decode")]
pub struct CacheDecodeError;

/// Encoder of the cache formats (varints, length-prefixed strings).
pub(crate) struct Enc(pub(crate) Vec<u8>);

impl Enc {
    pub(crate) fn u(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    pub(crate) fn i(&mut self, v: i64) {
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    pub(crate) fn s(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    pub(crate) fn id(&mut self, id: &EventId) {
        self.0.extend_from_slice(&id.0);
    }
    pub(crate) fn stamp(&mut self, s: &Stamp) {
        self.u(s.lamport);
        self.s(s.actor.as_str());
        self.id(&s.id);
    }
    pub(crate) fn status(&mut self, s: Status) {
        self.s(s.as_str());
    }
    pub(crate) fn opt_s(&mut self, v: Option<&str>) {
        match v {
            None => self.u(0),
            Some(s) => {
                self.u(1);
                self.s(s);
            }
        }
    }
    pub(crate) fn link(&mut self, l: &Link) {
        self.s(&l.kind);
        self.0.extend_from_slice(l.target.0.as_bytes());
    }
    fn or_set<K: Ord>(&mut self, set: &OrSet<K>, key: impl Fn(&mut Self, &K)) {
        self.u(set.added.len() as u64);
        for (k, tags) in &set.added {
            key(self, k);
            self.u(tags.len() as u64);
            tags.iter().for_each(|t| self.id(t));
        }
        self.u(set.removed.len() as u64);
        for (k, t) in &set.removed {
            key(self, k);
            self.id(t);
        }
    }
}

/// Decoder of [`Enc`]'s output.
pub(crate) struct Dec<'a>(pub(crate) &'a [u8]);

pub(crate) type D<T> = Result<T, CacheDecodeError>;

impl<'a> Dec<'a> {
    pub(crate) fn u(&mut self) -> D<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first().ok_or(CacheDecodeError)?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(CacheDecodeError)
    }
    pub(crate) fn len(&mut self) -> D<usize> {
        let n = usize::try_from(self.u()?).map_err(|_| CacheDecodeError)?;
        // Every element takes at least one byte: a length past the end is
        // damage, not a reason to allocate.
        if n > self.0.len() {
            return Err(CacheDecodeError);
        }
        Ok(n)
    }
    pub(crate) fn count(&mut self) -> D<usize> {
        usize::try_from(self.u()?).map_err(|_| CacheDecodeError)
    }
    pub(crate) fn i(&mut self) -> D<i64> {
        let v = self.u()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    pub(crate) fn take(&mut self, n: usize) -> D<&'a [u8]> {
        if n > self.0.len() {
            return Err(CacheDecodeError);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(crate) fn bytes(&mut self) -> D<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }
    pub(crate) fn s(&mut self) -> D<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| CacheDecodeError)
    }
    pub(crate) fn id(&mut self) -> D<EventId> {
        Ok(EventId(
            self.take(32)?.try_into().map_err(|_| CacheDecodeError)?,
        ))
    }
    fn str_ref(&mut self) -> D<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| CacheDecodeError)
    }
    /// Check one comment of [`Folded::to_bytes`] (stamp, author, text,
    /// time) without copying it; its id and whether it is well-formed.
    fn check_comment(&mut self) -> D<EventId> {
        self.u()?;
        let actor = self.bytes()?;
        let id = self.id()?;
        let author = self.bytes()?;
        // The author is nearly always the stamp's actor: one check.
        if !ActorId::is_valid_bytes(actor) || (author != actor && !ActorId::is_valid_bytes(author))
        {
            return Err(CacheDecodeError);
        }
        self.str_ref()?;
        self.i()?;
        Ok(id)
    }
    /// One comment [`Dec::check_comment`] checked, in place: its id,
    /// author, text and time.
    fn comment_ref(&mut self) -> D<(EventId, &'a str, &'a str, i64)> {
        self.u()?;
        self.bytes()?;
        let id = self.id()?;
        Ok((id, self.str_ref()?, self.str_ref()?, self.i()?))
    }
    pub(crate) fn actor(&mut self) -> D<ActorId> {
        // Checked in place: one allocation (a deep issue decodes two
        // actors per comment).
        let name = std::str::from_utf8(self.bytes()?).map_err(|_| CacheDecodeError)?;
        ActorId::new(name).map_err(|_| CacheDecodeError)
    }
    pub(crate) fn stamp(&mut self) -> D<Stamp> {
        Ok(Stamp {
            lamport: self.u()?,
            actor: self.actor()?,
            id: self.id()?,
        })
    }
    pub(crate) fn status(&mut self) -> D<Status> {
        self.s()?.parse().map_err(|_| CacheDecodeError)
    }
    pub(crate) fn opt_s(&mut self) -> D<Option<String>> {
        match self.u()? {
            0 => Ok(None),
            1 => Ok(Some(self.s()?)),
            _ => Err(CacheDecodeError),
        }
    }
    pub(crate) fn issue(&mut self) -> D<IssueId> {
        let b: [u8; 16] = self.take(16)?.try_into().map_err(|_| CacheDecodeError)?;
        Ok(IssueId(uuid::Uuid::from_bytes(b)))
    }
    pub(crate) fn link(&mut self) -> D<Link> {
        Ok(Link {
            kind: self.s()?,
            target: self.issue()?,
        })
    }
    fn or_set<K: Ord + Clone>(&mut self, key: impl Fn(&mut Self) -> D<K>) -> D<OrSet<K>> {
        let mut set = OrSet::default();
        for _ in 0..self.len()? {
            let k = key(self)?;
            let mut tags = BTreeSet::new();
            for _ in 0..self.len()? {
                tags.insert(self.id()?);
            }
            set.added.insert(k, tags);
        }
        for _ in 0..self.len()? {
            let k = key(self)?;
            set.removed.insert((k, self.id()?));
        }
        Ok(set)
    }
}

impl Folded {
    /// The encoding the state cache stores.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(256 + self.comments.len() * 128));
        e.0.extend_from_slice(self.issue.0.as_bytes());
        match &self.title {
            None => e.u(0),
            Some((s, t)) => {
                e.u(1);
                e.stamp(s);
                e.s(t);
            }
        }
        match &self.status {
            None => e.u(0),
            Some((s, st)) => {
                e.u(1);
                e.stamp(s);
                e.status(*st);
            }
        }
        e.u(self.fields.len() as u64);
        for (k, (s, v)) in &self.fields {
            e.s(k);
            e.stamp(s);
            e.opt_s(v.as_deref());
        }
        match &self.first_create {
            None => e.u(0),
            Some((s, a, ms)) => {
                e.u(1);
                e.stamp(s);
                e.s(a.as_str());
                e.i(*ms);
            }
        }
        e.u(self.comments.len() as u64);
        for (s, c) in &self.comments {
            e.stamp(s);
            e.s(c.author.as_str());
            e.s(&c.body);
            e.i(c.created_ms);
        }
        e.u(self.edits.len() as u64);
        for (id, (s, b)) in &self.edits {
            e.id(id);
            e.stamp(s);
            e.s(b);
        }
        e.u(self.deleted.len() as u64);
        self.deleted.iter().for_each(|id| e.id(id));
        e.or_set(&self.labels, |e, k| e.s(k));
        e.or_set(&self.assignees, |e, k| e.s(k));
        e.or_set(&self.links, |e, k| e.link(k));
        e.u(self.body_events.len() as u64);
        for (id, ev) in &self.body_events {
            e.id(id);
            e.bytes(&ev.seal().1);
        }
        e.s(&self.body);
        match &self.saved {
            None => e.u(0),
            Some(saved) => {
                e.u(1);
                e.bytes(saved);
            }
        }
        e.i(self.updated_ms);
        e.u(self.lamport);
        e.u(self.count as u64);
        e.u(self.heads.len() as u64);
        self.heads.iter().for_each(|id| e.id(id));
        e.u(self.dangling.len() as u64);
        self.dangling.iter().for_each(|id| e.id(id));
        e.0
    }

    /// Decode [`Folded::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Folded, CacheDecodeError> {
        Ok(Folded::decode(bytes, false)?.0)
    }

    /// Decode [`Folded::to_bytes`]; when `lazy`, the comments are checked
    /// but left in place: the fold has none, and the range of their
    /// encoding in `bytes` and their number come with it.
    fn decode(
        bytes: &[u8],
        lazy: bool,
    ) -> Result<(Folded, std::ops::Range<usize>, usize), CacheDecodeError> {
        let mut d = Dec(bytes);
        let issue = d.issue()?;
        let mut f = Folded::empty(issue);
        f.title = match d.u()? {
            0 => None,
            1 => Some((d.stamp()?, d.s()?)),
            _ => return Err(CacheDecodeError),
        };
        f.status = match d.u()? {
            0 => None,
            1 => Some((d.stamp()?, d.status()?)),
            _ => return Err(CacheDecodeError),
        };
        for _ in 0..d.len()? {
            let k = d.s()?;
            let s = d.stamp()?;
            f.fields.insert(k, (s, d.opt_s()?));
        }
        f.first_create = match d.u()? {
            0 => None,
            1 => Some((d.stamp()?, d.actor()?, d.i()?)),
            _ => return Err(CacheDecodeError),
        };
        let n = d.len()?;
        let start = bytes.len() - d.0.len();
        if lazy {
            for _ in 0..n {
                d.check_comment()?;
            }
        } else {
            f.comments.reserve(n);
        }
        let end = bytes.len() - d.0.len();
        for _ in 0..if lazy { 0 } else { n } {
            let s = d.stamp()?;
            f.comments.push((
                s,
                Added {
                    author: d.actor()?,
                    body: d.s()?,
                    created_ms: d.i()?,
                },
            ));
        }
        for _ in 0..d.len()? {
            let id = d.id()?;
            let s = d.stamp()?;
            f.edits.insert(id, (s, d.s()?));
        }
        for _ in 0..d.len()? {
            f.deleted.insert(d.id()?);
        }
        f.labels = d.or_set(|d| d.s())?;
        f.assignees = d.or_set(|d| d.s())?;
        f.links = d.or_set(|d| d.link())?;
        for _ in 0..d.len()? {
            let id = d.id()?;
            let ev = Event::decode(d.bytes()?).map_err(|_| CacheDecodeError)?;
            f.body_events.insert(id, ev);
        }
        f.body = d.s()?;
        f.saved = match d.u()? {
            0 => None,
            1 => Some(d.bytes()?.to_vec()),
            _ => return Err(CacheDecodeError),
        };
        f.updated_ms = d.i()?;
        f.lamport = d.u()?;
        f.count = d.count()?;
        for _ in 0..d.len()? {
            f.heads.insert(d.id()?);
        }
        for _ in 0..d.len()? {
            f.dangling.insert(d.id()?);
        }
        if !d.0.is_empty() {
            return Err(CacheDecodeError);
        }
        Ok((f, start..end, n))
    }
}

/// A comment read in place ([`IssueView::comments`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommentRef<'a> {
    /// The comment's id (its `add_comment` event id).
    pub id: EventId,
    /// Author.
    pub author: &'a str,
    /// Current text.
    pub body: &'a str,
    /// Whether an edit replaced the original text.
    pub edited: bool,
    /// Wall time of the add.
    pub created_ms: i64,
    /// The human the author (an agent) wrote it for.
    pub on_behalf_of: Option<&'a str>,
}

impl<'a> CommentRef<'a> {
    fn of(c: &'a Comment) -> CommentRef<'a> {
        CommentRef {
            id: c.id,
            author: c.author.as_str(),
            body: &c.body,
            edited: c.edited,
            created_ms: c.created_ms,
            on_behalf_of: c.on_behalf_of.as_ref().map(ActorId::as_str),
        }
    }
}

/// An issue's state for reading through: its fields, and its comments
/// read in place from the state cache's bytes when the cache holds the
/// issue's open fold at its tip. A deep issue's comments are then neither
/// copied into strings of their own nor kept twice: `show` of 100,000
/// comments reads one file and prints.
pub struct IssueView {
    header: IssueState,
    comments: ViewComments,
}

enum ViewComments {
    Owned(Vec<Comment>),
    Encoded {
        bytes: Vec<u8>,
        range: std::ops::Range<usize>,
        n: usize,
        edits: BTreeMap<EventId, String>,
        deleted: BTreeSet<EventId>,
    },
}

impl IssueView {
    /// The view of a folded state.
    pub fn from_state(mut state: IssueState) -> IssueView {
        let comments = std::mem::take(&mut state.comments);
        IssueView {
            header: state,
            comments: ViewComments::Owned(comments),
        }
    }

    /// The view of the open fold encoded ([`Folded::to_bytes`]) in
    /// `bytes[payload]`, its comments left in place. `None` if the
    /// encoding is damaged or the fold has no state (no `create`).
    pub fn from_folded_bytes(bytes: Vec<u8>, payload: std::ops::Range<usize>) -> Option<IssueView> {
        let (mut folded, range, n) = Folded::decode(bytes.get(payload.clone())?, true).ok()?;
        if folded.is_empty() {
            return None;
        }
        let edits: BTreeMap<EventId, String> = std::mem::take(&mut folded.edits)
            .into_iter()
            .map(|(id, (_, b))| (id, b))
            .collect();
        let deleted = folded.deleted.clone();
        let mut header = folded.into_state().ok()?;
        let range = payload.start + range.start..payload.start + range.end;
        if !deleted.is_empty() {
            let mut d = Dec(&bytes[range.clone()]);
            for _ in 0..n {
                if deleted.contains(&d.check_comment().ok()?) {
                    header.deleted_comments += 1;
                }
            }
        }
        Some(IssueView {
            header,
            comments: ViewComments::Encoded {
                bytes,
                range,
                n,
                edits,
                deleted,
            },
        })
    }

    /// Everything but the comments (its `comments` is empty: see
    /// [`IssueView::comments`]).
    pub fn header(&self) -> &IssueState {
        &self.header
    }

    /// Whether the comments are read in place from the cache's bytes.
    pub fn in_place(&self) -> bool {
        matches!(self.comments, ViewComments::Encoded { .. })
    }

    /// About how many bytes the comments hold (to size a buffer).
    pub fn comments_size_hint(&self) -> usize {
        match &self.comments {
            ViewComments::Owned(v) => v.iter().map(|c| c.body.len() + 40).sum(),
            ViewComments::Encoded { range, .. } => range.len(),
        }
    }

    /// The live comments, in order.
    pub fn comments(&self) -> Box<dyn Iterator<Item = CommentRef<'_>> + '_> {
        self.comments.iter()
    }

    /// The whole state, comments included.
    pub fn into_state(self) -> IssueState {
        let mut state = self.header;
        state.comments = match self.comments {
            ViewComments::Owned(v) => v,
            encoded => encoded
                .iter()
                .map(|c| Comment {
                    id: c.id,
                    author: ActorId::new(c.author).expect("BUG: checked actor name"),
                    body: c.body.to_owned(),
                    edited: c.edited,
                    created_ms: c.created_ms,
                    remote: None,
                    on_behalf_of: None,
                })
                .collect(),
        };
        state
    }
}

impl ViewComments {
    fn iter(&self) -> Box<dyn Iterator<Item = CommentRef<'_>> + '_> {
        match self {
            ViewComments::Owned(v) => Box::new(v.iter().map(CommentRef::of)),
            ViewComments::Encoded {
                bytes,
                range,
                n,
                edits,
                deleted,
            } => {
                let mut d = Dec(&bytes[range.clone()]);
                Box::new((0..*n).filter_map(move |_| {
                    let (id, author, body, created_ms) = d
                        .comment_ref()
                        .expect("BUG: the comments were checked when the view was made");
                    if deleted.contains(&id) {
                        return None;
                    }
                    let edit = edits.get(&id);
                    Some(CommentRef {
                        id,
                        author,
                        body: edit.map_or(body, String::as_str),
                        edited: edit.is_some(),
                        created_ms,
                        on_behalf_of: None,
                    })
                }))
            }
        }
    }
}

/// Encode a folded state (of any set, tracker operations included) for the
/// state cache.
pub fn state_to_bytes(s: &IssueState) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(256 + s.comments.len() * 128));
    e.0.extend_from_slice(s.id.0.as_bytes());
    e.s(&s.title);
    e.s(&s.body);
    e.status(s.status);
    let strs = |e: &mut Enc, v: &[String]| {
        e.u(v.len() as u64);
        v.iter().for_each(|x| e.s(x));
    };
    strs(&mut e, &s.labels);
    strs(&mut e, &s.assignees);
    e.u(s.links.len() as u64);
    s.links.iter().for_each(|l| e.link(l));
    e.u(s.fields.len() as u64);
    for (k, v) in &s.fields {
        e.s(k);
        e.s(v);
    }
    e.u(s.comments.len() as u64);
    for c in &s.comments {
        e.id(&c.id);
        e.s(c.author.as_str());
        e.s(&c.body);
        e.u(u64::from(c.edited));
        e.i(c.created_ms);
        match &c.remote {
            None => e.u(0),
            Some(r) => {
                e.u(1);
                e.s(&r.backend);
                e.s(&r.remote_id);
                e.s(&r.author);
            }
        }
        e.opt_s(c.on_behalf_of.as_ref().map(ActorId::as_str));
    }
    e.u(s.deleted_comments as u64);
    e.s(s.created_by.as_str());
    e.i(s.created_ms);
    e.i(s.updated_ms);
    e.u(s.lamport);
    e.u(s.event_count as u64);
    e.u(s.heads.len() as u64);
    s.heads.iter().for_each(|id| e.id(id));
    e.u(s.remotes.len() as u64);
    for r in &s.remotes {
        e.s(&r.backend);
        e.s(&r.remote_id);
        match r.revision {
            None => e.u(0),
            Some(v) => {
                e.u(1);
                e.u(v);
            }
        }
        e.opt_s(r.created_at.as_deref());
        e.opt_s(r.updated_at.as_deref());
        e.u(u64::from(r.gone));
    }
    e.opt_s(s.merged_into.map(|i| i.to_string()).as_deref());
    match &s.claims.lease {
        None => e.u(0),
        Some(l) => {
            e.u(1);
            e.s(l.actor.as_str());
            e.id(&l.claim);
            e.i(l.since_ms);
            e.i(l.until_ms);
            e.u(u64::from(l.online));
        }
    }
    e.u(s.claims.lost.len() as u64);
    for l in &s.claims.lost {
        e.s(l.actor.as_str());
        e.id(&l.claim);
        e.s(l.winner.as_str());
        e.id(&l.winner_claim);
        e.u(u64::from(l.knew));
        e.u(u64::from(l.acknowledged));
    }
    e.opt_s(s.created_on_behalf_of.as_ref().map(ActorId::as_str));
    e.u(s.on_behalf_of.len() as u64);
    for (agent, human) in &s.on_behalf_of {
        e.s(agent.as_str());
        e.s(human.as_str());
    }
    e.0
}

fn opt_actor(d: &mut Dec<'_>) -> D<Option<ActorId>> {
    d.opt_s()?
        .map(|a| ActorId::new(&a).map_err(|_| CacheDecodeError))
        .transpose()
}

/// Decode [`state_to_bytes`].
pub fn state_from_bytes(bytes: &[u8]) -> Result<IssueState, CacheDecodeError> {
    let mut d = Dec(bytes);
    let strs = |d: &mut Dec<'_>| -> D<Vec<String>> { (0..d.len()?).map(|_| d.s()).collect() };
    let bool_of = |v: u64| match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CacheDecodeError),
    };
    let id = d.issue()?;
    let title = d.s()?;
    let body = d.s()?;
    let status = d.status()?;
    let labels = strs(&mut d)?;
    let assignees = strs(&mut d)?;
    let links = (0..d.len()?).map(|_| d.link()).collect::<D<Vec<_>>>()?;
    let mut fields = BTreeMap::new();
    for _ in 0..d.len()? {
        let k = d.s()?;
        fields.insert(k, d.s()?);
    }
    let n = d.len()?;
    let mut comments = Vec::with_capacity(n);
    for _ in 0..n {
        comments.push(Comment {
            id: d.id()?,
            author: d.actor()?,
            body: d.s()?,
            edited: bool_of(d.u()?)?,
            created_ms: d.i()?,
            remote: match d.u()? {
                0 => None,
                1 => Some(CommentRemote {
                    backend: d.s()?,
                    remote_id: d.s()?,
                    author: d.s()?,
                }),
                _ => return Err(CacheDecodeError),
            },
            on_behalf_of: opt_actor(&mut d)?,
        });
    }
    let deleted_comments = d.count()?;
    let created_by = d.actor()?;
    let created_ms = d.i()?;
    let updated_ms = d.i()?;
    let lamport = d.u()?;
    let event_count = d.count()?;
    let heads = (0..d.len()?).map(|_| d.id()).collect::<D<Vec<_>>>()?;
    let mut remotes = Vec::new();
    for _ in 0..d.len()? {
        remotes.push(RemoteState {
            backend: d.s()?,
            remote_id: d.s()?,
            revision: match d.u()? {
                0 => None,
                1 => Some(d.u()?),
                _ => return Err(CacheDecodeError),
            },
            created_at: d.opt_s()?,
            updated_at: d.opt_s()?,
            gone: bool_of(d.u()?)?,
        });
    }
    let merged_into = match d.opt_s()? {
        Some(t) => Some(t.parse().map_err(|_| CacheDecodeError)?),
        None => None,
    };
    let lease = match d.u()? {
        0 => None,
        1 => Some(super::claims::Lease {
            actor: d.actor()?,
            claim: d.id()?,
            since_ms: d.i()?,
            until_ms: d.i()?,
            online: bool_of(d.u()?)?,
        }),
        _ => return Err(CacheDecodeError),
    };
    let mut lost = Vec::new();
    for _ in 0..d.len()? {
        lost.push(super::claims::LostClaim {
            actor: d.actor()?,
            claim: d.id()?,
            winner: d.actor()?,
            winner_claim: d.id()?,
            knew: bool_of(d.u()?)?,
            acknowledged: bool_of(d.u()?)?,
        });
    }
    let created_on_behalf_of = opt_actor(&mut d)?;
    let mut on_behalf_of = BTreeMap::new();
    for _ in 0..d.len()? {
        let agent = d.actor()?;
        on_behalf_of.insert(agent, d.actor()?);
    }
    if !d.0.is_empty() {
        return Err(CacheDecodeError);
    }
    Ok(IssueState {
        id,
        title,
        body,
        status,
        labels,
        assignees,
        links,
        fields,
        comments,
        deleted_comments,
        created_by,
        created_ms,
        updated_ms,
        lamport,
        event_count,
        heads,
        remotes,
        merged_into,
        claims: super::claims::Claims { lease, lost },
        created_on_behalf_of,
        on_behalf_of,
    })
}
