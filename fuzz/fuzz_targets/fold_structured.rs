//! A structure-aware generator of event sets feeding the fold: valid
//! canonical events with arbitrary operations, clocks at the extremes
//! (0, 1, parent + 1, parent + 2, `u64::MAX`, anything), parents that do
//! and do not exist, real and garbage body changes, tracker observations.
//!
//! Oracles:
//! - order independence and idempotence: the same set inserted forward,
//!   backward, rotated and twice over folds to the same result;
//! - the clock rule: `EventSet::invalid` is exactly what a naive reference
//!   implementation of `refs-format.md` section 5 says;
//! - no event dropped: every valid event is counted and reachable from the
//!   heads, every valid comment that no valid delete names is shown;
//! - no freeze: a writer's next event (`max_lamport + 1` on the heads) is
//!   valid and its title wins;
//! - cost: the fold's time and peak memory stay within a budget linear in
//!   the input size, so quadratic behaviour shows up as a crash.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use reposix::crdt::body::BodyDoc;
use reposix::crdt::EventSet;
use reposix::event::{ActorId, Bytes, Event, EventId, IssueId, Op, Status, EVENT_FORMAT_VERSION};

/// Counts live and peak heap bytes (the memory half of the cost oracle).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Time budget of one fold: fixed cost plus a linear term per input byte.
const TIME_FIXED: Duration = Duration::from_millis(250);
const TIME_PER_BYTE: Duration = Duration::from_micros(200);
/// Memory budget of one fold: fixed plus a linear term per input byte.
const MEM_FIXED: usize = 64 << 20;
const MEM_PER_BYTE: usize = 16 << 10;

fuzz_target!(init: install_panic_hook(), |data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(events) = generate(&mut u) {
        check(data.len(), &events);
    }
});

/// See `fold_events`: std's hook back, minus automerge's caught panics.
fn install_panic_hook() {
    drop(std::panic::take_hook());
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_automerge = info
            .location()
            .is_some_and(|l| l.file().contains("/automerge-"));
        if !in_automerge {
            default(info);
        }
    }));
}

const ACTORS: [&str; 3] = ["alice", "bob", "sim@0a1b2c3d"];
const NAMES: [&str; 3] = ["bug", "p1", "x"];
const TEXTS: [&str; 4] = ["", "hello", "hello world\n", "héllo\u{202e}"];
const BACKEND: &str = "sim::http://127.0.0.1:1/p";

fn pick<'a, T>(u: &mut Unstructured<'_>, from: &'a [T]) -> Result<&'a T> {
    u.choose(from)
}

/// Some ids of earlier events, sorted and unique.
fn some_ids(u: &mut Unstructured<'_>, earlier: &[EventId]) -> Result<Vec<EventId>> {
    let mut out = BTreeSet::new();
    if !earlier.is_empty() {
        for _ in 0..u.int_in_range(0..=3)? {
            out.insert(*pick(u, earlier)?);
        }
    }
    Ok(out.into_iter().collect())
}

fn generate(u: &mut Unstructured<'_>) -> Result<Vec<(EventId, Event)>> {
    let issue = IssueId::derived("fuzz|fold_structured");
    let n = u.int_in_range(0..=40)?;
    let mut out: Vec<(EventId, Event)> = Vec::new();
    let mut ids: Vec<EventId> = Vec::new();
    let mut comments: Vec<EventId> = Vec::new();
    let mut bodies: Vec<Bytes> = Vec::new();
    for _ in 0..n {
        let mut parents = some_ids(u, &ids)?;
        if u.ratio(1, 8)? {
            parents.push(EventId(u.arbitrary()?)); // a parent nobody has
        }
        parents.sort();
        parents.dedup();
        let below = out
            .iter()
            .filter(|(id, _)| parents.contains(id))
            .map(|(_, e)| e.lamport)
            .max();
        let top = out.iter().map(|(_, e)| e.lamport).max().unwrap_or(0);
        let lamport = match u.int_in_range(0..=7)? {
            0 => 0,
            1 => 1,
            2 | 3 => below.unwrap_or(0).saturating_add(1),
            4 => below.unwrap_or(0).saturating_add(2),
            5 => u64::MAX,
            6 => u.arbitrary()?,
            _ => top.saturating_add(1),
        };
        let name = |u: &mut Unstructured<'_>| pick(u, &NAMES).map(|s| (*s).to_owned());
        let text = |u: &mut Unstructured<'_>| pick(u, &TEXTS).map(|s| (*s).to_owned());
        let op = match u.int_in_range(0..=18)? {
            0 => Op::Create {
                title: "t".into(),
                body: body_change(u, issue, &bodies)?,
                status: *pick(u, &Status::ALL)?,
                labels: vec![name(u)?],
                assignees: vec![],
            },
            1 => Op::SetTitle {
                title: format!("title {}", u.int_in_range(0..=9u8)?),
            },
            2 => match body_change(u, issue, &bodies)? {
                Some(change) => Op::EditBody { change },
                None => Op::SetStatus {
                    status: Status::Done,
                },
            },
            3 => Op::SetStatus {
                status: *pick(u, &Status::ALL)?,
            },
            4 => Op::AddLabel { label: name(u)? },
            5 => Op::RemoveLabel {
                label: name(u)?,
                observed: some_ids(u, &ids)?,
            },
            6 => Op::AddAssignee { assignee: name(u)? },
            7 => Op::RemoveAssignee {
                assignee: name(u)?,
                observed: some_ids(u, &ids)?,
            },
            8 => Op::AddComment {
                body: format!("comment {}", u.int_in_range(0..=99u8)?),
            },
            9 if !comments.is_empty() => Op::EditComment {
                comment: *pick(u, &comments)?,
                body: text(u)?,
            },
            10 if !comments.is_empty() => Op::DeleteComment {
                comment: *pick(u, &comments)?,
            },
            11 => Op::AddLink {
                kind: name(u)?,
                target: IssueId::derived("fuzz|other"),
            },
            12 => Op::SetField {
                name: name(u)?,
                value: if u.arbitrary()? { Some(text(u)?) } else { None },
            },
            13 => Op::Observe {
                backend: BACKEND.into(),
                remote_id: "1".into(),
                revision: u.int_in_range(0..=5)?,
                token: "t".into(),
                title: format!("tracker {}", u.int_in_range(0..=3u8)?),
                body: text(u)?,
                status: *pick(u, &Status::ALL)?,
                labels: vec![name(u)?],
                assignees: vec![],
                updated_at: "2026-01-01T00:00:00Z".into(),
            },
            14 => Op::ObserveComment {
                backend: BACKEND.into(),
                remote_id: format!("{}", u.int_in_range(0..=2u8)?),
                local: if comments.is_empty() || u.arbitrary()? {
                    None
                } else {
                    Some(*pick(u, &comments)?)
                },
                author: "someone".into(),
                body: text(u)?,
                revision: u.int_in_range(0..=5)?,
                updated_at: "2026-01-01T00:00:00Z".into(),
            },
            15 => Op::Bind {
                backend: BACKEND.into(),
                remote_id: if u.arbitrary()? {
                    Some("1".into())
                } else {
                    None
                },
            },
            16 => Op::Exported {
                backend: BACKEND.into(),
                remote_id: "1".into(),
                revision: u.int_in_range(0..=5)?,
            },
            17 => Op::OnBehalfOf {
                human: ActorId::new(pick(u, &ACTORS)?).expect("valid actor"),
            },
            _ => Op::AddComment {
                body: "another".into(),
            },
        };
        if let Op::Create { body: Some(b), .. } | Op::EditBody { change: b } = &op {
            bodies.push(b.clone());
        }
        let is_comment = matches!(op, Op::AddComment { .. });
        let event = Event {
            v: op.since_version().max(EVENT_FORMAT_VERSION),
            issue,
            actor: ActorId::new(pick(u, &ACTORS)?).expect("valid actor"),
            lamport,
            wall_ms: u.arbitrary()?,
            parents,
            op,
        };
        if event.validate().is_err() {
            continue;
        }
        let (id, bytes) = event.seal();
        assert_eq!(
            Event::decode(&bytes).expect("what we encode decodes"),
            event,
            "encode/decode round trip"
        );
        if is_comment {
            comments.push(id);
        }
        ids.push(id);
        out.push((id, event));
    }
    Ok(out)
}

/// A body change: a real edit on top of earlier ones, garbage, or none.
fn body_change(
    u: &mut Unstructured<'_>,
    issue: IssueId,
    earlier: &[Bytes],
) -> Result<Option<Bytes>> {
    match u.int_in_range(0..=3)? {
        0 => Ok(None),
        1 => {
            let len = u.int_in_range(0..=64)?;
            Ok(Some(Bytes(u.bytes(len)?.to_vec())))
        }
        _ => {
            let Ok(mut doc) = BodyDoc::load(issue, earlier) else {
                return Ok(None);
            };
            Ok(doc.edit(*pick(u, &TEXTS)?))
        }
    }
}

/// The clock rule, naively: valid iff every parent is present and valid
/// and lamport <= 1 + the greatest lamport among all ancestors.
fn reference_invalid(events: &BTreeMap<EventId, Event>) -> BTreeSet<EventId> {
    fn ancestors(
        id: &EventId,
        events: &BTreeMap<EventId, Event>,
        out: &mut BTreeSet<EventId>,
    ) -> bool {
        let Some(e) = events.get(id) else {
            return false;
        };
        for p in &e.parents {
            if !events.contains_key(p) {
                return false;
            }
            if out.insert(*p) && !ancestors(p, events, out) {
                return false;
            }
        }
        true
    }
    let mut invalid = BTreeSet::new();
    // Parents come first in generation order, so one pass in any order
    // with a recursive check of every ancestor is enough.
    for (id, e) in events {
        let mut anc = BTreeSet::new();
        let complete = ancestors(id, events, &mut anc);
        let bound = anc
            .iter()
            .map(|a| events[a].lamport)
            .max()
            .map_or(1, |m| m.saturating_add(1));
        let own_ok = complete && e.lamport <= bound;
        let ancestors_ok = anc.iter().all(|a| {
            let ea = &events[a];
            let mut sub = BTreeSet::new();
            let c = ancestors(a, events, &mut sub);
            let b = sub
                .iter()
                .map(|x| events[x].lamport)
                .max()
                .map_or(1, |m| m.saturating_add(1));
            c && ea.lamport <= b
        });
        if !(own_ok && ancestors_ok) {
            invalid.insert(*id);
        }
    }
    invalid
}

fn folded(set: &EventSet, issue: IssueId) -> std::result::Result<String, String> {
    set.fold(issue)
        .map(|s| s.to_canonical_json())
        .map_err(|e| e.to_string())
}

fn check(input_len: usize, events: &[(EventId, Event)]) {
    let issue = IssueId::derived("fuzz|fold_structured");
    let forward: EventSet = events.iter().cloned().collect();

    // Cost: time and peak memory of one fold, linear budgets.
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    let a = folded(&forward, issue);
    let elapsed = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let time_budget = TIME_FIXED + TIME_PER_BYTE * input_len as u32;
    assert!(
        elapsed <= time_budget,
        "fold of {} events ({input_len} input bytes) took {elapsed:?} (budget {time_budget:?})",
        events.len()
    );
    let mem_budget = MEM_FIXED + MEM_PER_BYTE * input_len;
    assert!(
        peak <= mem_budget,
        "fold of {} events ({input_len} input bytes) peaked at {peak} bytes (budget {mem_budget})",
        events.len()
    );

    // Order independence and idempotence.
    let backward: EventSet = events.iter().rev().cloned().collect();
    let mid = events.len() / 2;
    let rotated: EventSet = events[mid..]
        .iter()
        .chain(&events[..mid])
        .cloned()
        .collect();
    let mut twice = forward.clone();
    twice.merge(&backward);
    for (what, other) in [
        ("backward", &backward),
        ("rotated", &rotated),
        ("twice", &twice),
    ] {
        assert_eq!(
            folded(other, issue),
            a,
            "fold depends on insertion ({what})"
        );
    }

    // The clock rule against the reference.
    let map: BTreeMap<EventId, Event> = events.iter().cloned().collect();
    let want = reference_invalid(&map);
    let got: BTreeSet<EventId> = forward.invalid().keys().copied().collect();
    assert_eq!(got, want, "invalid events differ from the reference");

    let Ok(json) = a else { return };
    let state: serde_json::Value = serde_json::from_str(&json).expect("state JSON");

    // No event dropped.
    assert_eq!(forward.len(), map.len());
    assert_eq!(
        state["event_count"].as_u64(),
        Some((map.len() - want.len()) as u64),
        "event_count counts the valid events"
    );
    let heads = forward.heads();
    let mut reached: BTreeSet<EventId> = BTreeSet::new();
    let mut stack = heads.clone();
    while let Some(id) = stack.pop() {
        if reached.insert(id) {
            stack.extend(map[&id].parents.iter().copied());
        }
    }
    let valid: BTreeSet<EventId> = map
        .keys()
        .filter(|id| !want.contains(id))
        .copied()
        .collect();
    assert_eq!(
        reached, valid,
        "heads do not reach exactly the valid events"
    );
    let deleted: BTreeSet<EventId> = valid
        .iter()
        .filter_map(|id| match &map[id].op {
            Op::DeleteComment { comment } => Some(*comment),
            _ => None,
        })
        .collect();
    let shown: BTreeSet<String> = state["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect();
    for id in &valid {
        if matches!(map[id].op, Op::AddComment { .. }) && !deleted.contains(id) {
            assert!(shown.contains(&id.to_hex()), "comment {id:?} dropped");
        }
    }

    // No freeze: the next honest write is valid and takes effect.
    let next = forward
        .max_lamport()
        .checked_add(1)
        .expect("a valid clock cannot be exhausted");
    let w = Event {
        v: EVENT_FORMAT_VERSION,
        issue,
        actor: ActorId::new("writer").expect("valid actor"),
        lamport: next,
        wall_ms: 0,
        parents: heads,
        op: Op::SetTitle {
            title: "written last".into(),
        },
    };
    let (wid, _) = w.seal();
    let mut after = forward.clone();
    after.insert(wid, w);
    assert!(
        !after.invalid().contains_key(&wid),
        "the writer's next event is invalid: {:?}",
        after.invalid().get(&wid)
    );
    let state = after
        .fold(issue)
        .expect("a valid write keeps the set folding");
    assert_eq!(state.title, "written last", "the latest write lost");
}
