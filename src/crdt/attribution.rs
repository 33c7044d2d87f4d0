//! Agents acting for people: whom each event was written for, decided from
//! the event set alone (`refs-format.md`, section 6f).
//!
//! An `on_behalf_of` event says that its actor acts for a human from then
//! on. Events are taken in stamp order (lamport, actor, id), which respects
//! causality; each event of an actor is attributed to the human named by
//! that actor's latest `on_behalf_of` up to and including it. An actor with
//! no such event acts for itself. The result is a function of the event
//! set (order and duplicates do not matter). Pure: no I/O, no clock.

use std::collections::BTreeMap;

use super::EventSet;
use crate::event::{ActorId, EventId, Op};

/// Who each event was written for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    /// The human each attributed event was written for (events of actors
    /// acting for themselves are absent).
    pub events: BTreeMap<EventId, ActorId>,
    /// The human each actor acts for after the last event.
    pub actors: BTreeMap<ActorId, ActorId>,
}

/// Whether `op` is an attribution (folded by [`resolve`] only).
pub fn is_attribution(op: &Op) -> bool {
    matches!(op, Op::OnBehalfOf { .. })
}

/// Resolve the attributions of a set.
pub fn resolve(set: &EventSet) -> Attribution {
    let mut out = Attribution::default();
    if !set.iter().any(|(_, e)| is_attribution(&e.op)) {
        return out;
    }
    for (stamp, e) in set.ordered() {
        if let Op::OnBehalfOf { human } = &e.op {
            out.actors.insert(e.actor.clone(), human.clone());
        }
        if let Some(human) = out.actors.get(&e.actor) {
            out.events.insert(stamp.id, human.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, IssueId};

    fn ev(issue: IssueId, actor: &str, lamport: u64, parents: Vec<EventId>, op: Op) -> Event {
        Event {
            v: op.since_version(),
            issue,
            actor: ActorId::new(actor).expect("actor"),
            lamport,
            wall_ms: 0,
            parents,
            op,
        }
    }

    fn comment(text: &str) -> Op {
        Op::AddComment { body: text.into() }
    }

    fn acts_for(human: &str) -> Op {
        Op::OnBehalfOf {
            human: ActorId::new(human).expect("human"),
        }
    }

    #[test]
    fn each_event_is_attributed_to_the_human_in_force_at_it() {
        let issue = IssueId::new_random();
        let before = ev(issue, "agent-7", 1, vec![], comment("mine"));
        let (b, _) = before.seal();
        let alice = ev(issue, "agent-7", 2, vec![b], acts_for("alice"));
        let (a, _) = alice.seal();
        let for_alice = ev(issue, "agent-7", 3, vec![a], comment("for alice"));
        let (fa, _) = for_alice.seal();
        let bob = ev(issue, "agent-7", 4, vec![fa], acts_for("bob"));
        let (bo, _) = bob.seal();
        let for_bob = ev(issue, "agent-7", 5, vec![bo], comment("for bob"));
        let (fb, _) = for_bob.seal();
        let human = ev(issue, "carol", 6, vec![fb], comment("carol's own"));
        let (c, _) = human.seal();
        let events = [before, alice, for_alice, bob, for_bob, human];
        let set_of = |evs: Vec<Event>| {
            let mut set = EventSet::new();
            for e in evs {
                let (id, _) = e.seal();
                set.insert(id, e);
            }
            set
        };
        let forward = set_of(events.to_vec());
        let backward = set_of(events.iter().rev().chain(&events).cloned().collect());
        let r = resolve(&forward);
        assert_eq!(r, resolve(&backward), "a function of the set");
        let name = |n: &str| ActorId::new(n).expect("actor");
        assert_eq!(r.events.get(&b), None);
        assert_eq!(r.events.get(&a), Some(&name("alice")));
        assert_eq!(r.events.get(&fa), Some(&name("alice")));
        assert_eq!(r.events.get(&fb), Some(&name("bob")));
        assert_eq!(r.events.get(&c), None);
        assert_eq!(r.actors, BTreeMap::from([(name("agent-7"), name("bob"))]));
    }
}
