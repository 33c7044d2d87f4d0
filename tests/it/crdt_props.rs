//! Property tests for the CRDT laws (design brief, "Merge semantics").
//!
//! Histories are simulated, not drawn at random from the event space: 2-4
//! replicas of one issue each write operations against *their own* view
//! (Lamport clock = view max + 1, parents = view heads, removes naming the
//! add tags the view sees) and now and then sync by merging another
//! replica's event set. The properties are then checked on the events those
//! replicas produced:
//!
//! - permutation and duplication of the events give byte-identical state;
//! - merge of event sets is commutative, associative and idempotent;
//! - the fold agrees with a naive reference model written here, without
//!   looking at `crdt/mod.rs`;
//! - wall-clock times never change the merged state.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use reposix::crdt::body::BodyDoc;
use reposix::crdt::{EventSet, IssueState, Link};
use reposix::event::{ActorId, Bytes, Event, EventId, IssueId, Op, Status, EVENT_FORMAT_VERSION};

const ISSUE: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
/// Actor names are deliberately not in replica order, so actor order and
/// replica order disagree.
const ACTORS: [&str; 4] = ["kim", "amy", "zed", "bob"];
const TITLES: [&str; 4] = [
    "Crash on start",
    "Crash on startup",
    "Panic in parser",
    "Ünïcode title",
];
const LABELS: [&str; 4] = ["bug", "ui", "p1", "docs"];
const PEOPLE: [&str; 3] = ["ann", "ben", "cy"];
const LINK_KINDS: [&str; 2] = ["relates", "blocks"];
const LINK_TARGETS: [&str; 2] = [
    "0190a1b2-0000-7000-8000-000000000001",
    "0190a1b2-0000-7000-8000-000000000002",
];
const FIELDS: [&str; 2] = ["severity", "area"];
const WORDS: [&str; 5] = ["hello", " world", "é", "日本", "\n- item"];

fn issue() -> IssueId {
    ISSUE.parse().expect("valid issue id")
}

fn link_target(i: u32) -> IssueId {
    LINK_TARGETS[i as usize % LINK_TARGETS.len()]
        .parse()
        .expect("valid issue id")
}

fn pick<T: Copy>(items: &[T], i: u32) -> T {
    items[i as usize % items.len()]
}

/// What a replica does in one step. Parameters `a` and `b` are interpreted
/// against the replica's view (e.g. which comment to edit).
#[derive(Clone, Copy, Debug)]
enum Action {
    Sync,
    SetTitle,
    EditBody,
    SetStatus,
    AddLabel,
    RemoveLabel,
    AddAssignee,
    RemoveAssignee,
    AddComment,
    EditComment,
    DeleteComment,
    AddLink,
    RemoveLink,
    SetField,
}

#[derive(Clone, Debug)]
struct Step {
    replica: usize,
    action: Action,
    a: u32,
    b: u32,
    wall_ms: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Script {
    replicas: usize,
    /// Whether the last replica writes under the first replica's actor name
    /// (one person on two machines): (lamport, actor) ties become possible
    /// and the event id decides.
    shared_actor: bool,
    create_labels: u8,
    create_assignees: u8,
    create_body: Option<&'static str>,
    create_status: u32,
    create_title: u32,
    create_wall_ms: i64,
    steps: Vec<Step>,
}

/// The events a simulated run produced.
pub(crate) struct History {
    /// Every event, in the order it was written (a causal order).
    pub(crate) log: Vec<(EventId, Event)>,
    /// Each replica's final event set.
    replicas: Vec<EventSet>,
}

fn wall_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        1_600_000_000_000i64..1_800_000_000_000,
        -1000i64..1000,
        any::<i64>(),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => Just(Action::Sync),
        1 => Just(Action::SetTitle),
        2 => Just(Action::EditBody),
        1 => Just(Action::SetStatus),
        2 => Just(Action::AddLabel),
        2 => Just(Action::RemoveLabel),
        1 => Just(Action::AddAssignee),
        1 => Just(Action::RemoveAssignee),
        2 => Just(Action::AddComment),
        2 => Just(Action::EditComment),
        1 => Just(Action::DeleteComment),
        1 => Just(Action::AddLink),
        1 => Just(Action::RemoveLink),
        1 => Just(Action::SetField),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (0usize..4, action(), any::<u32>(), any::<u32>(), wall_ms()).prop_map(
        |(replica, action, a, b, wall_ms)| Step {
            replica,
            action,
            a,
            b,
            wall_ms,
        },
    )
}

pub(crate) fn script(shared_actor: impl Strategy<Value = bool>) -> impl Strategy<Value = Script> {
    (
        2usize..=4,
        shared_actor,
        any::<u8>(),
        any::<u8>(),
        prop::option::of(prop::sample::select(&WORDS[..])),
        any::<u32>(),
        any::<u32>(),
        wall_ms(),
        prop::collection::vec(step(), 0..40),
    )
        .prop_map(
            |(replicas, shared_actor, labels, assignees, body, status, title, wall, steps)| {
                Script {
                    replicas,
                    shared_actor,
                    create_labels: labels,
                    create_assignees: assignees,
                    create_body: body,
                    create_status: status,
                    create_title: title,
                    create_wall_ms: wall,
                    steps,
                }
            },
        )
}

fn subset(items: &[&str], mask: u8) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| (*s).to_owned())
        .collect();
    v.sort();
    v
}

/// A new body text: an insertion, a deletion or a replacement, on chars.
fn mutate_text(text: &str, a: u32, b: u32) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = a as usize % (chars.len() + 1);
    let word = pick(&WORDS, b / 3);
    match b % 3 {
        0 => {
            chars.splice(at..at, word.chars());
        }
        1 => {
            let end = (at + 1 + (b / 3) as usize % 4).min(chars.len());
            chars.drain(at..end);
        }
        _ => return format!("{word}{}", b % 100),
    }
    chars.into_iter().collect()
}

pub(crate) fn run(script: &Script) -> History {
    let issue = issue();
    let actors: Vec<ActorId> = (0..script.replicas)
        .map(|r| {
            let name = if script.shared_actor && r == script.replicas - 1 {
                ACTORS[0]
            } else {
                ACTORS[r]
            };
            ActorId::new(name).expect("valid actor")
        })
        .collect();
    let body = script.create_body.and_then(|text| {
        BodyDoc::load(issue, [])
            .expect("empty body loads")
            .edit(text)
    });
    let create = Event {
        v: EVENT_FORMAT_VERSION,
        issue,
        actor: actors[0].clone(),
        lamport: 1,
        wall_ms: script.create_wall_ms,
        parents: vec![],
        op: Op::Create {
            title: pick(&TITLES, script.create_title).to_owned(),
            body,
            status: pick(&Status::ALL, script.create_status),
            labels: subset(&LABELS, script.create_labels),
            assignees: subset(&PEOPLE, script.create_assignees),
        },
    };
    let (create_id, _) = create.seal();
    let mut log = vec![(create_id, create.clone())];
    // Every replica is a clone made after the issue was created.
    let mut replicas: Vec<EventSet> = (0..script.replicas)
        .map(|_| [(create_id, create.clone())].into_iter().collect())
        .collect();

    for s in &script.steps {
        let r = s.replica % script.replicas;
        let view = &replicas[r];
        let op = match s.action {
            Action::Sync => {
                let mut from = s.a as usize % script.replicas;
                if from == r {
                    from = (from + 1) % script.replicas;
                }
                let other = replicas[from].clone();
                replicas[r].merge(&other);
                continue;
            }
            Action::SetTitle => Op::SetTitle {
                title: pick(&TITLES, s.a).to_owned(),
            },
            Action::EditBody => {
                let mut doc = BodyDoc::load(issue, view.body_changes()).expect("body loads");
                let new_text = mutate_text(&doc.text(), s.a, s.b);
                match doc.edit(&new_text) {
                    Some(change) => Op::EditBody { change },
                    None => continue,
                }
            }
            Action::SetStatus => Op::SetStatus {
                status: pick(&Status::ALL, s.a),
            },
            Action::AddLabel => Op::AddLabel {
                label: pick(&LABELS, s.a).to_owned(),
            },
            Action::RemoveLabel => {
                let tags = view.label_tags();
                let Some((label, observed)) = tags.into_iter().nth(s.a as usize % 4) else {
                    continue;
                };
                Op::RemoveLabel { label, observed }
            }
            Action::AddAssignee => Op::AddAssignee {
                assignee: pick(&PEOPLE, s.a).to_owned(),
            },
            Action::RemoveAssignee => {
                let tags = view.assignee_tags();
                let Some((assignee, observed)) = tags.into_iter().nth(s.a as usize % 3) else {
                    continue;
                };
                Op::RemoveAssignee { assignee, observed }
            }
            Action::AddComment => Op::AddComment {
                body: format!("comment {}", s.a % 100),
            },
            Action::EditComment | Action::DeleteComment => {
                // Any comment the replica has seen, deleted or not: a
                // concurrent delete may have reached it already.
                let seen: Vec<EventId> = view
                    .iter()
                    .filter(|(_, e)| matches!(e.op, Op::AddComment { .. }))
                    .map(|(id, _)| *id)
                    .collect();
                if seen.is_empty() {
                    continue;
                }
                let comment = seen[s.a as usize % seen.len()];
                if matches!(s.action, Action::EditComment) {
                    Op::EditComment {
                        comment,
                        body: format!("edited {}", s.b % 100),
                    }
                } else {
                    Op::DeleteComment { comment }
                }
            }
            Action::AddLink => Op::AddLink {
                kind: pick(&LINK_KINDS, s.a).to_owned(),
                target: link_target(s.b),
            },
            Action::RemoveLink => {
                let tags = view.link_tags();
                let Some((link, observed)) = tags.into_iter().nth(s.a as usize % 4) else {
                    continue;
                };
                Op::RemoveLink {
                    kind: link.kind,
                    target: link.target,
                    observed,
                }
            }
            Action::SetField => Op::SetField {
                name: pick(&FIELDS, s.a).to_owned(),
                value: (s.b % 3 != 0).then(|| format!("v{}", s.b % 7)),
            },
        };
        let event = Event {
            v: EVENT_FORMAT_VERSION,
            issue,
            actor: actors[r].clone(),
            lamport: view.max_lamport() + 1,
            wall_ms: s.wall_ms,
            parents: view.heads(),
            op,
        };
        event.validate().expect("simulated events are valid");
        let (id, _) = event.seal();
        replicas[r].insert(id, event.clone());
        log.push((id, event));
    }
    History { log, replicas }
}

fn set_of<'a>(events: impl IntoIterator<Item = &'a (EventId, Event)>) -> EventSet {
    events.into_iter().cloned().collect()
}

fn json(set: &EventSet) -> String {
    set.fold(issue()).expect("folds").to_canonical_json()
}

fn ids(set: &EventSet) -> Vec<EventId> {
    set.iter().map(|(id, _)| *id).collect()
}

fn union(a: &EventSet, b: &EventSet) -> EventSet {
    let mut out = a.clone();
    out.merge(b);
    out
}

/// A deterministic pseudo-random permutation of `0..n` (xorshift64*).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        v.swap(i, next() as usize % (i + 1));
    }
    v
}

// ---------------------------------------------------------------------------
// The reference model: the merge rules of the design brief, written naively
// (whole-set scans, no incremental state), independently of crdt/mod.rs.

type Key = (u64, String, EventId);

fn key(id: &EventId, e: &Event) -> Key {
    (e.lamport, e.actor.as_str().to_owned(), *id)
}

#[derive(Debug, PartialEq)]
struct Expected {
    title: String,
    body: String,
    status: Status,
    labels: Vec<String>,
    assignees: Vec<String>,
    links: Vec<(String, IssueId)>,
    fields: BTreeMap<String, String>,
    /// (id, author, text, edited, created_ms) in (lamport, actor, id) order.
    comments: Vec<(EventId, String, String, bool, i64)>,
    deleted_comments: usize,
    created_by: String,
    created_ms: i64,
    updated_ms: i64,
    lamport: u64,
    event_count: usize,
    heads: Vec<EventId>,
}

impl Expected {
    fn of_state(s: &IssueState) -> Expected {
        Expected {
            title: s.title.clone(),
            body: s.body.clone(),
            status: s.status,
            labels: s.labels.clone(),
            assignees: s.assignees.clone(),
            links: s
                .links
                .iter()
                .map(|l: &Link| (l.kind.clone(), l.target))
                .collect(),
            fields: s.fields.clone(),
            comments: s
                .comments
                .iter()
                .map(|c| {
                    (
                        c.id,
                        c.author.as_str().to_owned(),
                        c.body.clone(),
                        c.edited,
                        c.created_ms,
                    )
                })
                .collect(),
            deleted_comments: s.deleted_comments,
            created_by: s.created_by.as_str().to_owned(),
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
            lamport: s.lamport,
            event_count: s.event_count,
            heads: s.heads.clone(),
        }
    }
}

/// Observed-remove set: an element is present iff some add of it is not
/// named by a remove *of that element*.
fn or_set<K: Ord + Clone>(adds: &[(K, EventId)], removes: &[(K, EventId)]) -> Vec<K> {
    let removed: BTreeSet<&(K, EventId)> = removes.iter().collect();
    adds.iter()
        .filter(|tag| !removed.contains(tag))
        .map(|(k, _)| k.clone())
        .collect::<BTreeSet<K>>()
        .into_iter()
        .collect()
}

fn reference(log: &[(EventId, Event)]) -> Expected {
    let events: BTreeMap<EventId, &Event> = log.iter().map(|(id, e)| (*id, e)).collect();
    let last = |pred: &dyn Fn(&Op) -> bool| {
        events
            .iter()
            .filter(|(_, e)| pred(&e.op))
            .max_by_key(|(id, e)| key(id, e))
            .map(|(_, e)| &e.op)
    };
    let title = match last(&|op| matches!(op, Op::Create { .. } | Op::SetTitle { .. })) {
        Some(Op::Create { title, .. } | Op::SetTitle { title }) => title.clone(),
        _ => unreachable!("a create exists"),
    };
    let status = match last(&|op| matches!(op, Op::Create { .. } | Op::SetStatus { .. })) {
        Some(Op::Create { status, .. } | Op::SetStatus { status }) => *status,
        _ => unreachable!("a create exists"),
    };
    let mut fields = BTreeMap::new();
    for name in FIELDS {
        if let Some(Op::SetField {
            value: Some(value), ..
        }) = last(&|op| matches!(op, Op::SetField { name: n, .. } if n == name))
        {
            fields.insert(name.to_owned(), value.clone());
        }
    }

    let (mut label_adds, mut label_removes) = (vec![], vec![]);
    let (mut person_adds, mut person_removes) = (vec![], vec![]);
    let (mut link_adds, mut link_removes) = (vec![], vec![]);
    for (id, e) in &events {
        match &e.op {
            Op::Create {
                labels, assignees, ..
            } => {
                label_adds.extend(labels.iter().map(|l| (l.clone(), *id)));
                person_adds.extend(assignees.iter().map(|a| (a.clone(), *id)));
            }
            Op::AddLabel { label } => label_adds.push((label.clone(), *id)),
            Op::RemoveLabel { label, observed } => {
                label_removes.extend(observed.iter().map(|o| (label.clone(), *o)))
            }
            Op::AddAssignee { assignee } => person_adds.push((assignee.clone(), *id)),
            Op::RemoveAssignee { assignee, observed } => {
                person_removes.extend(observed.iter().map(|o| (assignee.clone(), *o)))
            }
            Op::AddLink { kind, target } => link_adds.push(((kind.clone(), *target), *id)),
            Op::RemoveLink {
                kind,
                target,
                observed,
            } => link_removes.extend(observed.iter().map(|o| ((kind.clone(), *target), *o))),
            _ => {}
        }
    }

    let deletes: BTreeSet<EventId> = events
        .values()
        .filter_map(|e| match &e.op {
            Op::DeleteComment { comment } => Some(*comment),
            _ => None,
        })
        .collect();
    let mut adds: Vec<(Key, EventId, &Event)> = events
        .iter()
        .filter(|(_, e)| matches!(e.op, Op::AddComment { .. }))
        .map(|(id, e)| (key(id, e), *id, *e))
        .collect();
    adds.sort_by(|a, b| a.0.cmp(&b.0));
    let deleted_comments = adds
        .iter()
        .filter(|(_, id, _)| deletes.contains(id))
        .count();
    let comments = adds
        .iter()
        .filter(|(_, id, _)| !deletes.contains(id))
        .map(|(_, cid, e)| {
            let Op::AddComment { body } = &e.op else {
                unreachable!()
            };
            let edit = last(&|op| matches!(op, Op::EditComment { comment, .. } if comment == cid));
            let (text, edited) = match edit {
                Some(Op::EditComment { body, .. }) => (body.clone(), true),
                _ => (body.clone(), false),
            };
            (*cid, e.actor.as_str().to_owned(), text, edited, e.wall_ms)
        })
        .collect();

    let (_, first_create) = events
        .iter()
        .filter(|(_, e)| matches!(e.op, Op::Create { .. }))
        .min_by_key(|(id, e)| key(id, e))
        .expect("a create exists");
    let named: BTreeSet<EventId> = events.values().flat_map(|e| e.parents.clone()).collect();

    // The body is automerge's business; the model only insists that the
    // changes are applied as a set, here in write order rather than by id.
    let changes: Vec<&Bytes> = log
        .iter()
        .filter_map(|(_, e)| match &e.op {
            Op::Create { body, .. } => body.as_ref(),
            Op::EditBody { change } => Some(change),
            _ => None,
        })
        .collect();
    let body = BodyDoc::load(issue(), changes).expect("body loads").text();

    Expected {
        title,
        body,
        status,
        labels: or_set(&label_adds, &label_removes),
        assignees: or_set(&person_adds, &person_removes),
        links: or_set(&link_adds, &link_removes),
        fields,
        comments,
        deleted_comments,
        created_by: first_create.actor.as_str().to_owned(),
        created_ms: first_create.wall_ms,
        updated_ms: events.values().map(|e| e.wall_ms).max().expect("non-empty"),
        lamport: events.values().map(|e| e.lamport).max().expect("non-empty"),
        event_count: events.len(),
        heads: events
            .keys()
            .filter(|id| !named.contains(id))
            .copied()
            .collect(),
    }
}

/// Re-stamp every event with a new wall time, re-sealing in write order and
/// rewriting every id reference (parents, observed, comment targets).
/// Returns the new log and the old -> new id map.
fn rewall(
    log: &[(EventId, Event)],
    walls: &[i64],
) -> (Vec<(EventId, Event)>, BTreeMap<EventId, EventId>) {
    let mut map: BTreeMap<EventId, EventId> = BTreeMap::new();
    let mut out = Vec::with_capacity(log.len());
    for (i, (old_id, e)) in log.iter().enumerate() {
        let m = |id: &EventId| *map.get(id).expect("references point to earlier events");
        let sorted = |ids: &[EventId]| {
            let mut v: Vec<EventId> = ids.iter().map(m).collect();
            v.sort();
            v
        };
        let mut e = e.clone();
        e.wall_ms = walls[i % walls.len()];
        e.parents = sorted(&e.parents);
        match &mut e.op {
            Op::RemoveLabel { observed, .. }
            | Op::RemoveAssignee { observed, .. }
            | Op::RemoveLink { observed, .. } => *observed = sorted(observed),
            Op::EditComment { comment, .. } | Op::DeleteComment { comment } => {
                *comment = m(comment)
            }
            _ => {}
        }
        let (new_id, _) = e.seal();
        map.insert(*old_id, new_id);
        out.push((new_id, e));
    }
    (out, map)
}

/// The state with every display-only wall time zeroed and ids translated.
fn without_walls(mut s: IssueState, map: impl Fn(EventId) -> EventId) -> String {
    s.created_ms = 0;
    s.updated_ms = 0;
    for c in &mut s.comments {
        c.id = map(c.id);
        c.created_ms = 0;
    }
    s.heads = s.heads.into_iter().map(map).collect();
    s.heads.sort();
    s.to_canonical_json()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn permutation_and_duplication_give_identical_state(
        script in script(any::<bool>()),
        seed in any::<u64>(),
        dups in prop::collection::vec(any::<u32>(), 0..20),
        chunks in 1usize..5,
    ) {
        let h = run(&script);
        let expected = json(&set_of(&h.log));

        let mut shuffled: Vec<(EventId, Event)> = h.log.clone();
        shuffled.extend(dups.iter().map(|d| h.log[*d as usize % h.log.len()].clone()));
        let order = permutation(shuffled.len(), seed);
        let shuffled: Vec<_> = order.iter().map(|&i| shuffled[i].clone()).collect();

        // One at a time, in the shuffled order.
        let one_by_one = set_of(&shuffled);
        prop_assert_eq!(one_by_one.len(), h.log.len());
        prop_assert_eq!(json(&one_by_one), expected.clone());

        // As a union of overlapping partial sets merged in reverse order.
        let size = shuffled.len().div_ceil(chunks);
        let mut merged = EventSet::new();
        for part in shuffled.chunks(size).rev() {
            merged.merge(&set_of(part));
        }
        prop_assert_eq!(json(&merged), expected.clone());

        // The replicas, fully synced in any order, agree with the log.
        let mut synced = EventSet::new();
        for i in permutation(h.replicas.len(), seed) {
            synced.merge(&h.replicas[i]);
        }
        prop_assert_eq!(json(&synced), expected);
    }

    #[test]
    fn merge_is_commutative_associative_idempotent(
        script in script(any::<bool>()),
        mask in prop::collection::vec(any::<bool>(), 1..64),
    ) {
        let h = run(&script);
        let a = &h.replicas[0];
        let b = &h.replicas[1];
        // A third set that no replica had: an arbitrary subset of the log
        // (not causally closed), keeping the create so that it folds.
        let c: EventSet = h
            .log
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || mask[i % mask.len()])
            .map(|(_, ev)| ev.clone())
            .collect();
        for (x, y) in [(a, b), (a, &c), (b, &c)] {
            prop_assert_eq!(ids(&union(x, y)), ids(&union(y, x)));
            prop_assert_eq!(json(&union(x, y)), json(&union(y, x)));
        }
        let left = union(&union(a, b), &c);
        let right = union(a, &union(b, &c));
        prop_assert_eq!(ids(&left), ids(&right));
        prop_assert_eq!(json(&left), json(&right));
        for x in [a, b, &c] {
            prop_assert_eq!(ids(&union(x, x)), ids(x));
            prop_assert_eq!(json(&union(x, x)), json(x));
        }
        let ab = union(a, b);
        prop_assert_eq!(json(&union(&ab, b)), json(&ab));
        prop_assert_eq!(json(&union(&ab, a)), json(&ab));
    }

    #[test]
    fn fold_agrees_with_reference_model(script in script(any::<bool>())) {
        let h = run(&script);
        let all = set_of(&h.log);
        let state = all.fold(issue()).expect("folds");
        prop_assert_eq!(Expected::of_state(&state), reference(&h.log));
        // Each replica's partial view too.
        for replica in &h.replicas {
            let log: Vec<(EventId, Event)> = h
                .log
                .iter()
                .filter(|(id, _)| replica.contains(id))
                .cloned()
                .collect();
            let state = replica.fold(issue()).expect("folds");
            prop_assert_eq!(Expected::of_state(&state), reference(&log));
        }
    }

    // Distinct actors per replica: with one actor on two replicas, equal
    // (lamport, actor) pairs are broken by event id, and the id hashes the
    // whole event, wall time included. That tie-break is arbitrary but
    // deterministic; it is not wall time deciding who wins.
    #[test]
    fn state_never_depends_on_wall_clocks(
        script in script(Just(false)),
        walls in prop::collection::vec(wall_ms(), 1..50),
    ) {
        let h = run(&script);
        let (log2, map) = rewall(&h.log, &walls);
        let before = set_of(&h.log).fold(issue()).expect("folds");
        let after = set_of(&log2).fold(issue()).expect("folds");
        prop_assert_eq!(
            without_walls(before, |id| map[&id]),
            without_walls(after, |id| id)
        );
    }
}

/// Regression: a remove of one label named the create event that added
/// several, and cancelled every label of that create, not just its own.
#[test]
fn removing_one_initial_label_keeps_the_others() {
    let issue = issue();
    let alice = ActorId::new("alice").expect("valid actor");
    let create = Event {
        v: EVENT_FORMAT_VERSION,
        issue,
        actor: alice.clone(),
        lamport: 1,
        wall_ms: 0,
        parents: vec![],
        op: Op::Create {
            title: "t".into(),
            body: None,
            status: Status::Open,
            labels: vec!["bug".into(), "ui".into()],
            assignees: vec!["ann".into(), "ben".into()],
        },
    };
    let (create_id, _) = create.seal();
    let mut set: EventSet = [(create_id, create)].into_iter().collect();
    let observed = set.label_tags()["bug"].clone();
    assert_eq!(observed, vec![create_id]);
    for op in [
        Op::RemoveLabel {
            label: "bug".into(),
            observed: observed.clone(),
        },
        Op::RemoveAssignee {
            assignee: "ann".into(),
            observed,
        },
    ] {
        let e = Event {
            v: EVENT_FORMAT_VERSION,
            issue,
            actor: alice.clone(),
            lamport: set.max_lamport() + 1,
            wall_ms: 0,
            parents: set.heads(),
            op,
        };
        let (id, _) = e.seal();
        set.insert(id, e);
    }
    let state = set.fold(issue).expect("folds");
    assert_eq!(state.labels, vec!["ui".to_owned()]);
    assert_eq!(state.assignees, vec!["ben".to_owned()]);
    assert_eq!(set.label_tags().keys().collect::<Vec<_>>(), vec!["ui"]);
}
