//! Property tests of the tracker merge rules (refs-format.md 6a): however
//! clones sample a tracker's revisions, a local edit made after seeing a
//! revision beats every tracker value up to that revision, and beats
//! nothing written on the tracker after the revision its edit was exported in.

use proptest::prelude::*;

use reposix::crdt::EventSet;
use reposix::event::{ActorId, Event, EventId, IssueId, Op, Status, EVENT_FORMAT_VERSION};

const BACKEND: &str = "sim::http://127.0.0.1:1/demo";

fn issue() -> IssueId {
    IssueId::derived("tracker-props")
}

/// The observation of tracker revision `rev` with title `title`, with the
/// fixed envelope every importer writes.
fn observe(rev: u64, title: &str) -> (EventId, Event) {
    observe_with(rev, title, vec![])
}

fn observe_with(rev: u64, title: &str, labels: Vec<String>) -> (EventId, Event) {
    let e = Event {
        v: EVENT_FORMAT_VERSION,
        issue: issue(),
        actor: ActorId::new("sim@00000000").expect("actor"),
        lamport: 0,
        wall_ms: rev as i64 * 1000,
        parents: vec![],
        op: Op::Observe {
            backend: BACKEND.into(),
            remote_id: "1".into(),
            revision: rev,
            token: rev.to_string(),
            title: title.into(),
            body: String::new(),
            status: Status::Open,
            labels,
            assignees: vec![],
            updated_at: format!("rev {rev}"),
        },
    };
    let (id, _) = e.seal();
    (id, e)
}

fn local(set: &EventSet, who: &str, op: Op) -> (EventId, Event) {
    let e = Event {
        v: EVENT_FORMAT_VERSION,
        issue: issue(),
        actor: ActorId::new(who).expect("actor"),
        lamport: set.max_lamport() + 1,
        wall_ms: 0,
        parents: set.heads(),
        op,
    };
    let (id, _) = e.seal();
    (id, e)
}

/// Tracker titles by revision 1..=n; two clones each observe a subset.
fn scenario() -> impl Strategy<Value = (Vec<String>, Vec<bool>, Vec<bool>, usize)> {
    (2usize..8).prop_flat_map(|n| {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), n)
                .prop_map(|v| v.into_iter().map(String::from).collect()),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec(any::<bool>(), n),
            0..n,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_local_edit_beats_every_tracker_value_it_had_seen(
        (titles, seen_a, seen_b, cut) in scenario()
    ) {
        // Clone A observes some revisions up to `cut` (and at least `cut`
        // itself), then edits the title. Clone B observes any revisions up
        // to `cut`. Whatever B saw, A's edit wins after the merge.
        let mut a = EventSet::new();
        for (i, title) in titles.iter().enumerate().take(cut + 1) {
            if seen_a[i] || i == cut {
                let (id, e) = observe(i as u64 + 1, title);
                a.insert(id, e);
            }
        }
        let (id, e) = local(&a, "alice", Op::SetTitle { title: "LOCAL".into() });
        a.insert(id, e);
        let mut b = EventSet::new();
        for (i, title) in titles.iter().enumerate().take(cut + 1) {
            if seen_b[i] {
                let (id, e) = observe(i as u64 + 1, title);
                b.insert(id, e);
            }
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        let s1 = ab.fold(issue()).expect("fold");
        let s2 = ba.fold(issue()).expect("fold");
        prop_assert_eq!(s1.to_canonical_json(), s2.to_canonical_json());
        prop_assert_eq!(s1.title, "LOCAL");
    }

    #[test]
    fn a_tracker_write_after_our_export_beats_what_we_exported(
        (titles, seen, _, _) in scenario()
    ) {
        // A edits the title, exports it at revision r (recorded), the
        // tracker then changes the title at r+1: the tracker's later value
        // wins, whatever other revisions the clone observed.
        let mut set = EventSet::new();
        let r = titles.len() as u64;
        for (i, title) in titles.iter().enumerate() {
            if seen[i] {
                let (id, e) = observe(i as u64 + 1, title);
                set.insert(id, e);
            }
        }
        let (id, e) = local(&set, "alice", Op::SetTitle { title: "LOCAL".into() });
        set.insert(id, e);
        let (id, e) = local(&set, "alice", Op::Exported {
            backend: BACKEND.into(),
            remote_id: "1".into(),
            revision: r + 1,
        });
        set.insert(id, e);
        let (id, e) = observe(r + 1, "LOCAL");
        set.insert(id, e);
        let (id, e) = observe(r + 2, "LATER ON THE TRACKER");
        set.insert(id, e);
        prop_assert_eq!(set.fold(issue()).expect("fold").title, "LATER ON THE TRACKER");
    }

    #[test]
    fn a_local_remove_cancels_every_tracker_add_it_had_seen(
        (titles, seen_a, seen_b, cut) in scenario()
    ) {
        // The tracker holds label `x` at every revision. Clone A sees some
        // revisions up to `cut` and removes `x`, naming only the tags it
        // saw. Clone B saw other revisions up to `cut`. After the merge `x`
        // stays removed: A's remove had seen revision `cut`, so it covers
        // the earlier observations B brought.
        let x = || vec!["x".to_string()];
        let mut a = EventSet::new();
        for (i, title) in titles.iter().enumerate().take(cut + 1) {
            if seen_a[i] || i == cut {
                let (id, e) = observe_with(i as u64 + 1, title, x());
                a.insert(id, e);
            }
        }
        let observed = a.label_tags().remove("x").unwrap_or_default();
        let (id, e) = local(&a, "alice", Op::RemoveLabel { label: "x".into(), observed });
        a.insert(id, e);
        let mut b = EventSet::new();
        for (i, title) in titles.iter().enumerate().take(cut + 1) {
            if seen_b[i] {
                let (id, e) = observe_with(i as u64 + 1, title, x());
                b.insert(id, e);
            }
        }
        a.merge(&b);
        prop_assert!(a.fold(issue()).expect("fold").labels.is_empty());
    }
}
