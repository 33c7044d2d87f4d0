//! The CRDT: a pure fold of a set of events into an issue's state.
//!
//! The input is a *set*: duplicates are ignored and order does not matter,
//! so any permutation or duplication of the same events yields the same
//! [`IssueState`], byte for byte. Merging two replicas is the union of their
//! event sets, hence commutative, associative and idempotent.
//!
//! Rules (see `refs-format.md`, "Merge rules"):
//! - title, status, custom fields: last-writer-wins registers ordered by
//!   [`Stamp`] = (lamport, actor, event id); wall time never decides;
//! - labels, assignees, links: add-wins observed-remove sets: a remove
//!   cancels exactly the add events it names in `observed`;
//! - comments: append-only, identified by their event id, edits LWW per
//!   comment, deletes are tombstones that win over edits;
//! - body: automerge `Text`, merged character-wise ([`body`]).
//!
//! No I/O, no clock, no async.

pub mod attribution;
pub mod body;
pub mod claims;
pub mod clock;
pub mod deps;
pub mod incremental;
mod textdiff;
pub mod textsync;
mod tracker;
pub use clock::Invalid;
pub use textsync::{BodyView, ChainKey, SyncPoint};
pub use tracker::merge3;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Serialize;

use crate::event::{ActorId, Event, EventId, IssueId, Op, Status};
use tracker::{Causal, Write};

/// Errors from folding an event set.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// The set has no `create` event.
    #[error("issue {issue} has {events} events but no create event")]
    NoCreate {
        /// The issue.
        issue: IssueId,
        /// How many events it has.
        events: usize,
    },
    /// An event belongs to another issue.
    #[error("event {event} belongs to issue {found}, not {expected}")]
    WrongIssue {
        /// The event.
        event: EventId,
        /// Its issue.
        found: IssueId,
        /// The issue being folded.
        expected: IssueId,
    },
    /// The body changes do not apply.
    #[error("body of issue {issue}: {source}")]
    Body {
        /// The issue.
        issue: IssueId,
        /// What went wrong.
        #[source]
        source: body::BodyError,
    },
}

/// Total order of events for last-writer-wins: Lamport clock, then actor,
/// then event id. Never wall time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    /// Lamport clock.
    pub lamport: u64,
    /// Actor name.
    pub actor: ActorId,
    /// Event id.
    pub id: EventId,
}

/// A comment as folded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// The comment's id (its `add_comment` event id).
    pub id: EventId,
    /// Author.
    pub author: ActorId,
    /// Current text (after LWW edits).
    pub body: String,
    /// Whether an edit replaced the original text.
    pub edited: bool,
    /// Wall time of the add (display only); for a comment first seen on a
    /// tracker, the tracker's creation time when known.
    pub created_ms: i64,
    /// The tracker comment this comment is bound to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<CommentRemote>,
    /// The human the author (an agent) wrote it for ([`attribution`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<ActorId>,
}

/// Where a comment lives on a tracker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommentRemote {
    /// Backend key (`<kind>::<address>`).
    pub backend: String,
    /// The tracker's comment id.
    pub remote_id: String,
    /// The author as the tracker names them (the same on every replica).
    pub author: String,
}

/// A tracker issue this issue is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemoteState {
    /// Backend key (`<kind>::<address>`).
    pub backend: String,
    /// The tracker's id.
    pub remote_id: String,
    /// The newest revision observed (absent: bound, not observed yet).
    pub revision: Option<u64>,
    /// The tracker's creation timestamp, when observed.
    pub created_at: Option<String>,
    /// The tracker's update timestamp of the newest observed revision.
    pub updated_at: Option<String>,
    /// The tracker reported the issue gone (deleted or out of reach).
    pub gone: bool,
}

/// A link to another issue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Link {
    /// Relation kind.
    pub kind: String,
    /// Target issue.
    pub target: IssueId,
}

/// The folded state of one issue. Deterministic: a function of the event set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IssueState {
    /// The issue.
    pub id: IssueId,
    /// Title (LWW).
    pub title: String,
    /// Body (automerge text).
    pub body: String,
    /// Status (LWW).
    pub status: Status,
    /// Labels, sorted.
    pub labels: Vec<String>,
    /// Assignees, sorted.
    pub assignees: Vec<String>,
    /// Links, sorted.
    pub links: Vec<Link>,
    /// Custom fields (LWW per name; cleared fields absent).
    pub fields: BTreeMap<String, String>,
    /// Live comments in (lamport, actor, id) order of their add events.
    pub comments: Vec<Comment>,
    /// Number of deleted comments.
    pub deleted_comments: usize,
    /// Author of the earliest create event.
    pub created_by: ActorId,
    /// Wall time of the earliest create event (display only).
    pub created_ms: i64,
    /// Largest wall time of any event (display only).
    pub updated_ms: i64,
    /// Largest Lamport clock in the set.
    pub lamport: u64,
    /// Number of distinct events.
    pub event_count: usize,
    /// Event heads: events no other event names as a parent (sorted).
    pub heads: Vec<EventId>,
    /// Tracker issues this issue is bound to, by backend key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<RemoteState>,
    /// The issue this one was folded into (another local copy of the same
    /// tracker issue; the smallest target when several were recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<IssueId>,
    /// Leases and lost claims ([`claims`]).
    #[serde(skip_serializing_if = "claims::Claims::is_empty")]
    pub claims: claims::Claims,
    /// The human the creator (an agent) created the issue for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_on_behalf_of: Option<ActorId>,
    /// The human each agent that wrote here acts for, as of its last
    /// event ([`attribution`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub on_behalf_of: BTreeMap<ActorId, ActorId>,
}

/// A deduplicated set of one issue's events, with the derived data writers
/// need (observed add tags, body changes) alongside the folded state.
#[derive(Clone, Debug, Default)]
pub struct EventSet {
    events: BTreeMap<EventId, Event>,
    /// The invalid events (clock rule), computed on first use.
    invalid: OnceLock<BTreeMap<EventId, Invalid>>,
}

impl EventSet {
    /// An empty set.
    pub fn new() -> EventSet {
        EventSet::default()
    }

    /// Add one event (a duplicate is a no-op). Returns whether it was new.
    pub fn insert(&mut self, id: EventId, event: Event) -> bool {
        use std::collections::btree_map::Entry;
        match self.events.entry(id) {
            Entry::Vacant(v) => {
                v.insert(event);
                self.invalid.take();
                true
            }
            Entry::Occupied(_) => false,
        }
    }

    /// Union with another set.
    pub fn merge(&mut self, other: &EventSet) {
        for (id, e) in &other.events {
            self.insert(*id, e.clone());
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Whether the set holds `id`.
    pub fn contains(&self, id: &EventId) -> bool {
        self.events.contains_key(id)
    }

    /// The event with id `id`.
    pub fn get(&self, id: &EventId) -> Option<&Event> {
        self.events.get(id)
    }

    /// Events by id.
    pub fn iter(&self) -> impl Iterator<Item = (&EventId, &Event)> {
        self.events.iter()
    }

    /// Events in causal-compatible order: by (lamport, actor, id).
    pub fn ordered(&self) -> Vec<(Stamp, &Event)> {
        let mut v: Vec<_> = self
            .events
            .iter()
            .map(|(id, e)| {
                (
                    Stamp {
                        lamport: e.lamport,
                        actor: e.actor.clone(),
                        id: *id,
                    },
                    e,
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The events that break the clock rule (see [`clock`]), with why.
    /// They are damage: every other method here works on the valid rest.
    pub fn invalid(&self) -> &BTreeMap<EventId, Invalid> {
        self.invalid
            .get_or_init(|| clock::invalid_events(&self.events))
    }

    /// The valid events (the whole set when none is invalid).
    pub fn valid_subset(&self) -> Cow<'_, EventSet> {
        let invalid = self.invalid();
        if invalid.is_empty() {
            return Cow::Borrowed(self);
        }
        let events: BTreeMap<EventId, Event> = self
            .events
            .iter()
            .filter(|(id, _)| !invalid.contains_key(id))
            .map(|(id, e)| (*id, e.clone()))
            .collect();
        // Ancestors of a valid event are valid: the subset is all valid.
        let cache = OnceLock::new();
        let _ = cache.set(BTreeMap::new());
        Cow::Owned(EventSet {
            events,
            invalid: cache,
        })
    }

    /// The largest clock an event with these `parents` may carry under the
    /// clock rule (`refs-format.md`, section 5): 1 + the greatest clock
    /// among the events they reach, parents included (1 with no parents).
    /// `None` if a parent is not a valid event of the set, or on overflow.
    /// A writer that names other parents than [`EventSet::heads`] must stay
    /// within this.
    pub fn clock_bound(&self, parents: &[EventId]) -> Option<u64> {
        let invalid = self.invalid();
        let mut seen = BTreeSet::new();
        let mut stack: Vec<EventId> = parents.to_vec();
        let mut max: Option<u64> = None;
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let e = self
                .events
                .get(&id)
                .filter(|_| !invalid.contains_key(&id))?;
            max = Some(max.map_or(e.lamport, |m| m.max(e.lamport)));
            stack.extend(e.parents.iter().copied());
        }
        max.unwrap_or(0).checked_add(1)
    }

    /// Largest Lamport clock among the valid events (0 when none). A writer
    /// gives its next event this plus one.
    pub fn max_lamport(&self) -> u64 {
        if !self.invalid().is_empty() {
            return self.valid_subset().max_lamport();
        }
        self.events.values().map(|e| e.lamport).max().unwrap_or(0)
    }

    /// Event heads of the valid events: ids that no valid event names as a
    /// parent.
    pub fn heads(&self) -> Vec<EventId> {
        if !self.invalid().is_empty() {
            return self.valid_subset().heads();
        }
        let named: BTreeSet<&EventId> = self.events.values().flat_map(|e| &e.parents).collect();
        self.events
            .keys()
            .filter(|id| !named.contains(id))
            .copied()
            .collect()
    }

    /// The live add tags of each label (what a remove must name).
    pub fn label_tags(&self) -> BTreeMap<String, Vec<EventId>> {
        self.string_set_tags(StringSet::Labels)
    }

    /// The live add tags of each assignee.
    pub fn assignee_tags(&self) -> BTreeMap<String, Vec<EventId>> {
        self.string_set_tags(StringSet::Assignees)
    }

    fn string_set_tags(&self, set: StringSet) -> BTreeMap<String, Vec<EventId>> {
        if !self.invalid().is_empty() {
            return self.valid_subset().string_set_tags(set);
        }
        let causal = Causal::needed(self).then(|| Causal::build(self));
        self.string_set_tags_with(set, causal.as_ref())
    }

    /// The live add tags of one of the add-wins sets of strings the
    /// tracker also observes (labels, assignees): ordered against the
    /// tracker's observations by causality when there are any.
    fn string_set_tags_with(
        &self,
        set: StringSet,
        causal: Option<&Causal<'_>>,
    ) -> BTreeMap<String, Vec<EventId>> {
        if let Some(causal) = causal {
            return TrackerFold::new(causal).set_tags(
                |op| match set.op(op) {
                    SetOp::Add(v) => v,
                    _ => vec![],
                },
                |op| match set.op(op) {
                    SetOp::Remove(k, observed) => Some((k, observed)),
                    _ => None,
                },
                |e| set.observed(&e.op),
            );
        }
        self.set_tags(|op| set.op(op))
    }

    /// The live add tags of each link.
    pub fn link_tags(&self) -> BTreeMap<Link, Vec<EventId>> {
        if !self.invalid().is_empty() {
            return self.valid_subset().link_tags();
        }
        self.set_tags(|op| match op {
            Op::AddLink { kind, target } => SetOp::Add(vec![Link {
                kind: kind.clone(),
                target: *target,
            }]),
            Op::RemoveLink {
                kind,
                target,
                observed,
            } => SetOp::Remove(
                Link {
                    kind: kind.clone(),
                    target: *target,
                },
                observed,
            ),
            _ => SetOp::None,
        })
    }

    /// Observed-remove set: element -> add tags not cancelled by a remove.
    /// A tag is the pair (element, add event id): one create event adds
    /// several labels, and removing one of them must not cancel the others.
    fn set_tags<'s, K: Ord + Clone>(
        &'s self,
        classify: impl Fn(&'s Op) -> SetOp<'s, K>,
    ) -> BTreeMap<K, Vec<EventId>> {
        let mut removed: BTreeSet<(K, EventId)> = BTreeSet::new();
        let mut added: Vec<(K, EventId)> = Vec::new();
        for (id, e) in &self.events {
            match classify(&e.op) {
                SetOp::Add(elems) => added.extend(elems.into_iter().map(|k| (k, *id))),
                SetOp::Remove(k, observed) => {
                    removed.extend(observed.iter().map(|tag| (k.clone(), *tag)))
                }
                SetOp::None => {}
            }
        }
        let mut out: BTreeMap<K, Vec<EventId>> = BTreeMap::new();
        for (k, tag) in added {
            if !removed.contains(&(k.clone(), tag)) {
                out.entry(k).or_default().push(tag);
            }
        }
        for tags in out.values_mut() {
            tags.sort();
        }
        out
    }

    /// Fold the set into the issue's state.
    pub fn fold(&self, issue: IssueId) -> Result<IssueState, FoldError> {
        if let Some((id, e)) = self.events.iter().find(|(_, e)| e.issue != issue) {
            return Err(FoldError::WrongIssue {
                event: *id,
                found: e.issue,
                expected: issue,
            });
        }
        // Events that break the clock rule are damage: fold the rest.
        if !self.invalid().is_empty() {
            return self.valid_subset().fold(issue);
        }
        let ordered = self.ordered();
        // A local issue starts with `create`; an imported one with its first
        // tracker observation.
        let Some((_, first_create)) = ordered
            .iter()
            .find(|(_, e)| matches!(e.op, Op::Create { .. }))
            .or_else(|| {
                ordered
                    .iter()
                    .find(|(_, e)| matches!(e.op, Op::Observe { .. }))
            })
        else {
            return Err(FoldError::NoCreate {
                issue,
                events: self.len(),
            });
        };
        let mut title = String::new();
        let mut status = Status::Open;
        let mut fields: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut comments: BTreeMap<EventId, Comment> = BTreeMap::new();
        let mut comment_order: Vec<EventId> = Vec::new();
        let mut edits: BTreeMap<EventId, &str> = BTreeMap::new();
        let mut deleted: BTreeSet<EventId> = BTreeSet::new();
        // Ascending stamp order: the last write to a register wins.
        for (stamp, e) in &ordered {
            match &e.op {
                Op::Create {
                    title: t,
                    status: s,
                    ..
                } => {
                    title.clone_from(t);
                    status = *s;
                }
                Op::SetTitle { title: t } => title.clone_from(t),
                Op::SetStatus { status: s } => status = *s,
                Op::SetField { name, value } => {
                    fields.insert(name.clone(), value.clone());
                }
                Op::AddComment { body } => {
                    comment_order.push(stamp.id);
                    comments.insert(
                        stamp.id,
                        Comment {
                            id: stamp.id,
                            author: e.actor.clone(),
                            body: body.clone(),
                            edited: false,
                            created_ms: e.wall_ms,
                            remote: None,
                            on_behalf_of: None,
                        },
                    );
                }
                Op::EditComment { comment, body } => {
                    edits.insert(*comment, body);
                }
                Op::DeleteComment { comment } => {
                    deleted.insert(*comment);
                }
                Op::EditBody { .. }
                | Op::AddLabel { .. }
                | Op::RemoveLabel { .. }
                | Op::AddAssignee { .. }
                | Op::RemoveAssignee { .. }
                | Op::AddLink { .. }
                | Op::RemoveLink { .. }
                | Op::Observe { .. }
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
                | Op::OnBehalfOf { .. } => {}
            }
        }
        let attribution = attribution::resolve(self);
        for c in comments.values_mut() {
            c.on_behalf_of = attribution.events.get(&c.id).cloned();
        }
        let created_on_behalf_of = matches!(first_create.op, Op::Create { .. })
            .then(|| {
                ordered
                    .iter()
                    .find(|(_, e)| matches!(e.op, Op::Create { .. }))
                    .and_then(|(stamp, _)| attribution.events.get(&stamp.id).cloned())
            })
            .flatten();
        for (id, body) in edits {
            if let Some(c) = comments.get_mut(&id) {
                c.body = body.to_owned();
                c.edited = true;
            }
        }
        let deleted_comments = comment_order
            .iter()
            .filter(|id| deleted.contains(id))
            .count();
        let comments: Vec<Comment> = comment_order
            .into_iter()
            .filter(|id| !deleted.contains(id))
            .filter_map(|id| comments.remove(&id))
            .collect();
        let mut comments: Vec<Comment> = comments;
        let causal = Causal::needed(self).then(|| Causal::build(self));
        let body = self.body_with(issue, causal.as_ref())?.text();
        let mut deleted_comments = deleted_comments;
        if let Some(causal) = &causal {
            let t = TrackerFold::new(causal);
            title = t.title().unwrap_or(title);
            status = t.status().unwrap_or(status);
            deleted_comments += t.comments(&mut comments, &deleted, &self.created_at());
        }
        let remotes = self.remotes();
        let (created_by, created_ms) = if matches!(first_create.op, Op::Create { .. }) {
            (first_create.actor.clone(), first_create.wall_ms)
        } else {
            // First seen on a tracker: the tracker's creation time, the
            // same on every replica whichever revision it saw first.
            let tracker_created = remotes
                .iter()
                .filter_map(|r| r.created_at.as_deref())
                .filter_map(crate::time::parse_millis)
                .min();
            (
                first_create.actor.clone(),
                tracker_created.unwrap_or(first_create.wall_ms),
            )
        };
        Ok(IssueState {
            id: issue,
            title,
            body,
            status,
            labels: self
                .string_set_tags_with(StringSet::Labels, causal.as_ref())
                .into_keys()
                .collect(),
            assignees: self
                .string_set_tags_with(StringSet::Assignees, causal.as_ref())
                .into_keys()
                .collect(),
            links: self.link_tags().into_keys().collect(),
            fields: fields
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect(),
            comments,
            deleted_comments,
            created_by,
            created_ms,
            updated_ms: self.events.values().map(|e| e.wall_ms).max().unwrap_or(0),
            lamport: self.max_lamport(),
            event_count: self.len(),
            heads: self.heads(),
            remotes,
            merged_into: self.merged_into(),
            claims: claims::resolve(self),
            created_on_behalf_of,
            on_behalf_of: attribution.actors,
        })
    }

    /// The body document with the tracker's text synced in: what a writer
    /// edits (its `pending` operations must be written first) and what the
    /// projection records imports and exports against.
    pub fn body(&self, issue: IssueId) -> Result<BodyView, FoldError> {
        let causal = Causal::needed(self).then(|| Causal::build(self));
        self.body_with(issue, causal.as_ref())
    }

    fn body_with(
        &self,
        issue: IssueId,
        causal: Option<&Causal<'_>>,
    ) -> Result<BodyView, FoldError> {
        self.body_view_with(issue, |doc_text| match causal {
            Some(c) => TrackerFold::new(c).legacy_body(doc_text.to_owned()),
            None => doc_text.to_owned(),
        })
        .map_err(|source| FoldError::Body { issue, source })
    }

    /// The issue this one was folded into, if any.
    pub fn merged_into(&self) -> Option<IssueId> {
        self.events
            .values()
            .filter_map(|e| match e.op {
                Op::MergedInto { target } => Some(target),
                _ => None,
            })
            .min()
    }

    /// The tracker's creation timestamps, by (backend, remote id); comments
    /// are keyed `comment:<id>`.
    fn created_at(&self) -> BTreeMap<(String, String), String> {
        let mut out = BTreeMap::new();
        for e in self.events.values() {
            if let Op::ObserveCreated {
                backend,
                remote_id,
                created_at,
            } = &e.op
            {
                // Several values would be a tracker contradicting itself:
                // keep the smallest, deterministically.
                let slot = out
                    .entry((backend.clone(), remote_id.clone()))
                    .or_insert_with(|| created_at.clone());
                if *created_at < *slot {
                    slot.clone_from(created_at);
                }
            }
        }
        out
    }

    /// The tracker issues this issue is bound to (observed or bound).
    pub fn remotes(&self) -> Vec<RemoteState> {
        let created = self.created_at();
        let mut out: BTreeMap<(String, String), RemoteState> = BTreeMap::new();
        let mut newest: BTreeMap<(String, String), (u64, EventId)> = BTreeMap::new();
        for (id, e) in &self.events {
            let (backend, remote_id) = match &e.op {
                Op::Observe {
                    backend, remote_id, ..
                }
                | Op::Bind {
                    backend,
                    remote_id: Some(remote_id),
                }
                | Op::ObserveGone { backend, remote_id } => (backend, remote_id),
                _ => continue,
            };
            if remote_id.starts_with("comment:") {
                continue;
            }
            let key = (backend.clone(), remote_id.clone());
            let slot = out.entry(key.clone()).or_insert_with(|| RemoteState {
                backend: backend.clone(),
                remote_id: remote_id.clone(),
                revision: None,
                created_at: created.get(&key).cloned(),
                updated_at: None,
                gone: false,
            });
            match &e.op {
                Op::ObserveGone { .. } => slot.gone = true,
                Op::Observe {
                    revision,
                    updated_at,
                    ..
                } => {
                    let k = (*revision, *id);
                    if newest.get(&key).is_none_or(|n| *n < k) {
                        newest.insert(key, k);
                        slot.revision = Some(*revision);
                        slot.updated_at = Some(updated_at.clone());
                    }
                }
                _ => {}
            }
        }
        out.into_values().collect()
    }
}

/// How an operation acts on an observed-remove set.
/// The two add-wins sets of strings that trackers observe too.
#[derive(Clone, Copy, Debug)]
enum StringSet {
    Labels,
    Assignees,
}

impl StringSet {
    /// What `op` does to this set.
    fn op(self, op: &Op) -> SetOp<'_, String> {
        match (self, op) {
            (StringSet::Labels, Op::AddLabel { label }) => SetOp::Add(vec![label.clone()]),
            (StringSet::Labels, Op::Create { labels, .. }) => SetOp::Add(labels.clone()),
            (StringSet::Labels, Op::RemoveLabel { label, observed }) => {
                SetOp::Remove(label.clone(), observed)
            }
            (StringSet::Assignees, Op::AddAssignee { assignee }) => {
                SetOp::Add(vec![assignee.clone()])
            }
            (StringSet::Assignees, Op::Create { assignees, .. }) => SetOp::Add(assignees.clone()),
            (StringSet::Assignees, Op::RemoveAssignee { assignee, observed }) => {
                SetOp::Remove(assignee.clone(), observed)
            }
            _ => SetOp::None,
        }
    }

    /// The whole set as a tracker observation records it.
    fn observed(self, op: &Op) -> Option<Vec<String>> {
        match (self, op) {
            (StringSet::Labels, Op::Observe { labels, .. }) => Some(labels.clone()),
            (StringSet::Assignees, Op::Observe { assignees, .. }) => Some(assignees.clone()),
            _ => None,
        }
    }
}

enum SetOp<'a, K> {
    /// Adds these elements, tagged with the event id.
    Add(Vec<K>),
    /// Removes the element's adds with these tags.
    Remove(K, &'a Vec<EventId>),
    /// Does not touch the set.
    None,
}

impl FromIterator<(EventId, Event)> for EventSet {
    fn from_iter<T: IntoIterator<Item = (EventId, Event)>>(iter: T) -> Self {
        let mut set = EventSet::new();
        for (id, e) in iter {
            set.insert(id, e);
        }
        set
    }
}

impl IssueState {
    /// Canonical JSON of the state (what `issue show --json` prints).
    pub fn to_canonical_json(&self) -> String {
        serde_json::to_string(self).expect("BUG: issue state always serializes")
    }
}

/// The parts of the fold that involve tracker observations.
struct TrackerFold<'c, 'a> {
    c: &'c Causal<'a>,
}

fn is_issue_chain(key: &(String, String)) -> bool {
    !key.1.starts_with("comment:")
}

impl<'c, 'a> TrackerFold<'c, 'a> {
    fn new(c: &'c Causal<'a>) -> Self {
        TrackerFold { c }
    }

    fn locals<T>(&self, field: impl Fn(&Op) -> Option<T>) -> Vec<(Write, T)> {
        self.c
            .events
            .iter()
            .enumerate()
            .filter_map(|(i, (_, e))| field(&e.op).map(|v| (Write::Local(i), v)))
            .collect()
    }

    fn register<T: Clone + PartialEq>(
        &self,
        local: impl Fn(&Op) -> Option<T>,
        remote: impl Fn(&Event) -> Option<T>,
    ) -> Option<T> {
        let mut writes = self.locals(local);
        writes.extend(self.c.tracker_writes(is_issue_chain, remote));
        self.c.resolve(&writes)
    }

    fn title(&self) -> Option<String> {
        self.register(
            |op| match op {
                Op::Create { title, .. } | Op::SetTitle { title } => Some(title.clone()),
                _ => None,
            },
            |e| match &e.op {
                Op::Observe { title, .. } => Some(title.clone()),
                _ => None,
            },
        )
    }

    fn status(&self) -> Option<Status> {
        self.register(
            |op| match op {
                Op::Create { status, .. } | Op::SetStatus { status } => Some(*status),
                _ => None,
            },
            |e| match &e.op {
                Op::Observe { status, .. } => Some(*status),
                // Deleted on the tracker: closed as won't fix.
                Op::ObserveGone { .. } => Some(Status::WontFix),
                _ => None,
            },
        )
    }

    /// The body as format 1 displayed it (logs without sync points): the
    /// local automerge text, the tracker's text, or both merged when a
    /// tracker write and local edits are concurrent. Used once, to bootstrap
    /// such logs into format 2 (`textsync`).
    fn legacy_body(&self, local_text: String) -> String {
        let mut writes: Vec<(Write, Option<String>)> = self.locals(|op| match op {
            Op::Create { body: Some(_), .. } | Op::EditBody { .. } => Some(None),
            _ => None,
        });
        writes.extend(
            self.c
                .tracker_writes(is_issue_chain, |e| match &e.op {
                    Op::Observe { body, .. } => Some(body.clone()),
                    _ => None,
                })
                .into_iter()
                .map(|(w, b)| (w, Some(b))),
        );
        let ws: Vec<Write> = writes.iter().map(|(w, _)| *w).collect();
        let maximal = self.c.maximal(&ws);
        let newest_tracker = maximal
            .iter()
            .rev()
            .find(|w| matches!(w, Write::Tracker(..)));
        let Some(&Write::Tracker(c, p)) = newest_tracker else {
            return local_text;
        };
        let theirs = match &self.c.chains[c][p].event.op {
            Op::Observe { body, .. } => body.clone(),
            _ => return local_text,
        };
        if maximal.iter().all(|w| matches!(w, Write::Tracker(..))) {
            return theirs;
        }
        let base = p
            .checked_sub(1)
            .and_then(|q| match &self.c.chains[c][q].event.op {
                Op::Observe { body, .. } => Some(body.clone()),
                _ => None,
            })
            .unwrap_or_default();
        tracker::merge3(&base, &local_text, &theirs)
    }

    /// Observed-remove sets with tracker snapshots. Every observation that
    /// holds an element is an add tag. The tracker *removes* an element at
    /// an observation that lacks it while the previous observation of the
    /// same chain had it; such a removal cancels the tags that happened
    /// before it. An observation that merely lacks an element (a tracker
    /// that holds one assignee, or dropped a label it was sent) removes
    /// nothing. A local remove cancels the tags it names and every tracker
    /// tag it had seen.
    fn set_tags(
        &self,
        adds: impl Fn(&Op) -> Vec<String>,
        removes: impl Fn(&Op) -> Option<(String, &Vec<EventId>)>,
        snapshot: impl Fn(&Event) -> Option<Vec<String>>,
    ) -> BTreeMap<String, Vec<EventId>> {
        let c = self.c;
        let mut tags: Vec<(String, Write, EventId)> = Vec::new();
        let mut local_removes: Vec<(usize, String, &Vec<EventId>)> = Vec::new();
        for (i, (stamp, e)) in c.events.iter().enumerate() {
            for k in adds(&e.op) {
                tags.push((k, Write::Local(i), stamp.id));
            }
            if let Some((k, observed)) = removes(&e.op) {
                local_removes.push((i, k, observed));
            }
        }
        let mut tracker_removes: Vec<(Write, String)> = Vec::new();
        for (ci, chain) in c.chains.iter().enumerate() {
            if !is_issue_chain(&c.chain_keys[ci]) {
                continue;
            }
            let mut prev: Option<Vec<String>> = None;
            for (p, o) in chain.iter().enumerate() {
                let Some(elems) = snapshot(o.event) else {
                    continue;
                };
                let id = c.events[o.idx].0.id;
                for k in &elems {
                    tags.push((k.clone(), Write::Tracker(ci, p), id));
                }
                if let Some(prev) = &prev {
                    for k in prev.iter().filter(|k| !elems.contains(k)) {
                        tracker_removes.push((Write::Tracker(ci, p), k.clone()));
                    }
                }
                prev = Some(elems);
            }
        }
        let mut out: BTreeMap<String, Vec<EventId>> = BTreeMap::new();
        for (k, w, id) in tags {
            let by_local = local_removes.iter().any(|(r, rk, observed)| {
                *rk == k
                    && (observed.contains(&id)
                        || (matches!(w, Write::Tracker(..)) && c.before(w, Write::Local(*r))))
            });
            let by_tracker = tracker_removes
                .iter()
                .any(|(s, rk)| *rk == k && c.before(w, *s));
            if !by_local && !by_tracker {
                out.entry(k).or_default().push(id);
            }
        }
        for ids in out.values_mut() {
            ids.sort();
            ids.dedup();
        }
        out
    }

    /// Add tracker comments and resolve bodies of comments seen on both sides.
    /// Returns how many comments the tracker reported gone.
    fn comments(
        &self,
        comments: &mut Vec<Comment>,
        deleted: &BTreeSet<EventId>,
        created_at: &BTreeMap<(String, String), String>,
    ) -> usize {
        let c = self.c;
        // Local comment bound to each remote comment, by binding events.
        let mut bound: BTreeMap<(String, String), EventId> = BTreeMap::new();
        for (_, e) in &c.events {
            if let Op::BindComment {
                backend,
                comment,
                remote_id: Some(r),
            } = &e.op
            {
                bound
                    .entry((backend.clone(), r.clone()))
                    .or_insert(*comment);
            }
        }
        let mut gone = 0;
        let mut tracker_only: Vec<Comment> = Vec::new();
        // The local comment each comment chain is, and whether it ended.
        let mut chain_ids: Vec<Option<(EventId, bool)>> = Vec::new();
        for (ci, (backend, key)) in c.chain_keys.iter().enumerate() {
            let Some(remote_id) = key.strip_prefix("comment:") else {
                chain_ids.push(None);
                continue;
            };
            let chain = &c.chains[ci];
            let marker = chain.iter().find_map(|o| match &o.event.op {
                Op::ObserveComment { local, .. } => *local,
                _ => None,
            });
            let id = marker
                .or_else(|| bound.get(&(backend.clone(), remote_id.to_owned())).copied())
                .unwrap_or_else(|| remote_comment_id(backend, remote_id));
            let ended = chain
                .iter()
                .any(|o| matches!(o.event.op, Op::ObserveGone { .. }));
            chain_ids.push(Some((id, ended)));
        }
        // A comment moved from a retired twin has a live chain on the issue
        // kept: the end of its old chain does not delete it.
        let live: BTreeSet<EventId> = chain_ids
            .iter()
            .flatten()
            .filter(|(_, ended)| !ended)
            .map(|(id, _)| *id)
            .collect();
        // The live chains of each comment: more than one when a comment was
        // exported twice (a clone found no marker on the first copy, which
        // a tracker user had dropped): its copies are read together.
        let mut copies: BTreeMap<EventId, Vec<usize>> = BTreeMap::new();
        for (ci, slot) in chain_ids.iter().enumerate() {
            if let Some((id, false)) = slot {
                copies.entry(*id).or_default().push(ci);
            }
        }
        for (ci, slot) in chain_ids.iter().enumerate() {
            let Some((id, ended)) = *slot else {
                continue;
            };
            let (backend, key) = &c.chain_keys[ci];
            let remote_id = key.strip_prefix("comment:").unwrap_or(key);
            let chain = &c.chains[ci];
            if deleted.contains(&id) {
                comments.retain(|x| x.id != id);
                continue;
            }
            if ended {
                if !live.contains(&id) {
                    comments.retain(|x| x.id != id);
                    gone += 1;
                }
                continue;
            }
            let group = copies.get(&id).map_or(&[][..], Vec::as_slice);
            if group.first().is_some_and(|first| *first != ci) {
                continue; // read with the comment's first chain
            }
            let mut writes: Vec<(Write, String)> = self.locals(|op| match op {
                Op::EditComment { comment, body } if *comment == id => Some(body.clone()),
                _ => None,
            });
            if let Some(i) = c.idx(&id) {
                if let Op::AddComment { body } = &c.events[i].1.op {
                    writes.push((Write::Local(i), body.clone()));
                }
            }
            let local_bodies: BTreeSet<String> = writes.iter().map(|(_, b)| b.clone()).collect();
            let mut tracker_author = None;
            // Copies made by exporting the comment again: their first
            // observation repeats a local write (the marker names the
            // comment, the text is one it had) and says nothing new.
            let mut echoes: Vec<Write> = Vec::new();
            // A live chain is always in its comment's group.
            for &gci in group {
                let chain = &c.chains[gci];
                for (p, o) in chain.iter().enumerate() {
                    if let Op::ObserveComment {
                        body,
                        author,
                        local,
                        ..
                    } = &o.event.op
                    {
                        tracker_author.get_or_insert_with(|| author.clone());
                        let changed = p == 0
                            || !matches!(&chain[p - 1].event.op,
                                Op::ObserveComment { body: prev, .. } if prev == body);
                        if changed {
                            writes.push((Write::Tracker(gci, p), body.clone()));
                            if p == 0 && *local == Some(id) && local_bodies.contains(body) {
                                echoes.push(Write::Tracker(gci, p));
                            }
                        }
                    }
                }
            }
            // One copy: its writes as ever. Several: an echo loses to a
            // tracker user's edit of another copy that it is concurrent
            // with (the newest stamp among the rest wins).
            let text = if group.len() > 1 {
                let ws: Vec<Write> = writes.iter().map(|(w, _)| *w).collect();
                let maximal = c.maximal(&ws);
                let winner = maximal
                    .iter()
                    .rev()
                    .find(|w| !echoes.contains(w))
                    .or(maximal.last())
                    .copied();
                winner.and_then(|w| writes.iter().find(|(x, _)| *x == w).map(|(_, v)| v.clone()))
            } else {
                c.resolve(&writes)
            };
            let Some(text) = text else {
                continue;
            };
            let remote = tracker_author.map(|author| CommentRemote {
                backend: backend.clone(),
                remote_id: remote_id.to_owned(),
                author,
            });
            if let Some(existing) = comments.iter_mut().find(|x| x.id == id) {
                if existing.body != text {
                    existing.body = text;
                    existing.edited = true;
                }
                existing.remote = remote;
                continue;
            }
            let Some(first) = chain.first() else { continue };
            let author = match &first.event.op {
                Op::ObserveComment { author, .. } => {
                    ActorId::new(author).unwrap_or_else(|_| first.event.actor.clone())
                }
                _ => first.event.actor.clone(),
            };
            let created_ms = created_at
                .get(&(backend.clone(), key.clone()))
                .and_then(|t| crate::time::parse_millis(t))
                .unwrap_or(first.event.wall_ms);
            tracker_only.push(Comment {
                id,
                author,
                body: text,
                edited: chain.len() > 1,
                created_ms,
                remote,
                on_behalf_of: None,
            });
        }
        // Comments only the tracker has come after the local ones, oldest
        // first (ties by id), whatever their remote ids sort like.
        tracker_only.sort_by_key(|c| (c.created_ms, c.id));
        comments.extend(tracker_only);
        gone
    }
}

/// The comment id of a tracker comment that no local comment claims.
pub fn remote_comment_id(backend: &str, remote_id: &str) -> EventId {
    EventId(blake3::derive_key(
        "reposix remote comment id v1",
        format!("{backend}|{remote_id}").as_bytes(),
    ))
}
