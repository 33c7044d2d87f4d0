//! The clock rule: which events of a set are valid (`refs-format.md`,
//! section 5).
//!
//! An event is valid iff every parent is in the set and valid, and its
//! `lamport` is at most 1 + the greatest `lamport` among its ancestors
//! (parents, transitively; 0 when it has none). A clock can therefore grow
//! by at most one per causal step, so no event can push an issue's clock
//! to `u64::MAX` (where `max + 1` would wrap and freeze every later write)
//! without a chain of as many events below it. Any reader can check the
//! rule from the event set alone; an invalid event is damage: the fold
//! ignores it, fsck reports it, sync does not spread it.
//!
//! Pure: no I/O. Linear in events plus parent links; no recursion, so a
//! chain of any length is fine.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::event::{Event, EventId};

/// Why an event is not valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum Invalid {
    /// A parent is not in the issue's event set.
    MissingParent {
        /// The parent it names.
        parent: EventId,
    },
    /// A parent is itself invalid.
    InvalidParent {
        /// The parent.
        parent: EventId,
    },
    /// The clock jumps: `lamport` exceeds 1 + the greatest clock below it.
    ClockJump {
        /// The event's clock.
        lamport: u64,
        /// The largest clock the rule allows it.
        bound: u64,
    },
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::MissingParent { parent } => {
                write!(f, "its parent {} is not in the issue's log", parent.short())
            }
            Invalid::InvalidParent { parent } => {
                write!(f, "its parent {} is invalid", parent.short())
            }
            Invalid::ClockJump { lamport, bound } => write!(
                f,
                "lamport {lamport} exceeds {bound}, 1 + the greatest clock among its ancestors"
            ),
        }
    }
}

/// What is known of one event during the walk.
#[derive(Clone, Copy)]
enum Seen {
    /// Its parents are being looked at (on the stack).
    Visiting,
    /// Valid; the greatest clock among the event and its ancestors.
    Valid(u64),
    /// Not valid.
    Invalid,
}

/// Every invalid event of `events`, with the reason.
pub(crate) fn invalid_events(events: &BTreeMap<EventId, Event>) -> BTreeMap<EventId, Invalid> {
    let mut seen: HashMap<EventId, Seen> = HashMap::with_capacity(events.len());
    let mut out = BTreeMap::new();
    // Iterative post-order walk: (event, parents already pushed).
    let mut stack: Vec<(EventId, bool)> = Vec::new();
    for root in events.keys() {
        if seen.contains_key(root) {
            continue;
        }
        stack.push((*root, false));
        while let Some((id, expanded)) = stack.pop() {
            let Some(event) = events.get(&id) else {
                continue; // parents are only pushed when present
            };
            if !expanded {
                if seen.contains_key(&id) {
                    continue;
                }
                seen.insert(id, Seen::Visiting);
                stack.push((id, true));
                for p in &event.parents {
                    if events.contains_key(p) && !seen.contains_key(p) {
                        stack.push((*p, false));
                    }
                }
                continue;
            }
            let verdict = judge(event, events, &seen);
            match verdict {
                Ok(max) => seen.insert(id, Seen::Valid(max)),
                Err(why) => {
                    out.insert(id, why);
                    seen.insert(id, Seen::Invalid)
                }
            };
        }
    }
    out
}

/// The greatest clock among `event` and its ancestors if it is valid.
fn judge(
    event: &Event,
    events: &BTreeMap<EventId, Event>,
    seen: &HashMap<EventId, Seen>,
) -> Result<u64, Invalid> {
    let mut below: Option<u64> = None;
    for p in &event.parents {
        if !events.contains_key(p) {
            return Err(Invalid::MissingParent { parent: *p });
        }
        match seen.get(p) {
            Some(Seen::Valid(max)) => below = Some(below.map_or(*max, |b| b.max(*max))),
            // A cycle cannot be built from content hashes; treat one as damage.
            Some(Seen::Invalid | Seen::Visiting) | None => {
                return Err(Invalid::InvalidParent { parent: *p })
            }
        }
    }
    let bound = below.map_or(1, |b| b.saturating_add(1));
    if event.lamport > bound {
        return Err(Invalid::ClockJump {
            lamport: event.lamport,
            bound,
        });
    }
    Ok(below.map_or(event.lamport, |b| b.max(event.lamport)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ActorId, IssueId, Op, EVENT_FORMAT_VERSION};

    fn ev(lamport: u64, parents: &[EventId], n: u32) -> (EventId, Event) {
        let mut parents = parents.to_vec();
        parents.sort();
        let e = Event {
            v: EVENT_FORMAT_VERSION,
            issue: IssueId(uuid::Uuid::from_u128(7)),
            actor: ActorId::new("a").expect("valid actor"),
            lamport,
            wall_ms: 0,
            parents,
            op: Op::AddComment {
                body: format!("c{n}"),
            },
        };
        (e.seal().0, e)
    }

    fn set(events: &[(EventId, Event)]) -> BTreeMap<EventId, Event> {
        events.iter().cloned().collect()
    }

    #[test]
    fn chains_written_by_max_plus_one_are_valid() {
        let a = ev(1, &[], 0);
        let b = ev(2, &[a.0], 1);
        let c = ev(0, &[], 2); // an observation: lamport 0, no parents
        let d = ev(3, &[b.0, c.0], 3);
        assert!(invalid_events(&set(&[a, b, c, d])).is_empty());
    }

    #[test]
    fn a_clock_jump_and_everything_above_it_is_invalid() {
        let a = ev(1, &[], 0);
        let bad = ev(u64::MAX, &[a.0], 1);
        let above = ev(u64::MAX, &[bad.0], 2);
        let ok = ev(2, &[a.0], 3);
        let got = invalid_events(&set(&[a, bad.clone(), above.clone(), ok]));
        assert_eq!(
            got.get(&bad.0),
            Some(&Invalid::ClockJump {
                lamport: u64::MAX,
                bound: 2
            })
        );
        assert_eq!(
            got.get(&above.0),
            Some(&Invalid::InvalidParent { parent: bad.0 })
        );
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_root_may_hold_zero_or_one_only() {
        assert!(invalid_events(&set(&[ev(1, &[], 0)])).is_empty());
        assert_eq!(invalid_events(&set(&[ev(2, &[], 0)])).len(), 1);
    }

    #[test]
    fn a_low_clock_does_not_hide_the_ancestors_above_it() {
        // The bound counts every ancestor, not just the parents: an event
        // with a low clock over a high one must not make the next honest
        // write (max + 1) invalid.
        let a = ev(1, &[], 0);
        let b = ev(2, &[a.0], 1);
        let low = ev(0, &[b.0], 2);
        let next = ev(3, &[low.0], 3);
        assert!(invalid_events(&set(&[a, b, low, next])).is_empty());
    }

    #[test]
    fn clock_bound_is_one_more_than_what_the_parents_reach() {
        let a = ev(1, &[], 0);
        let b = ev(2, &[a.0], 1);
        let c = ev(3, &[b.0], 2);
        let side = ev(2, &[a.0], 3);
        let set: crate::crdt::EventSet = [a.clone(), b, c, side.clone()].into_iter().collect();
        assert_eq!(set.clock_bound(&[]), Some(1));
        assert_eq!(set.clock_bound(&[side.0]), Some(3));
        assert_eq!(set.clock_bound(&set.heads()), Some(set.max_lamport() + 1));
        assert_eq!(set.clock_bound(&[ev(1, &[], 9).0]), None);
    }

    #[test]
    fn a_missing_parent_makes_an_event_invalid() {
        let ghost = ev(1, &[], 9).0;
        let e = ev(2, &[ghost], 0);
        assert_eq!(
            invalid_events(&set(std::slice::from_ref(&e))).get(&e.0),
            Some(&Invalid::MissingParent { parent: ghost })
        );
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let mut events = vec![ev(1, &[], 0)];
        for i in 1..200_000u32 {
            let prev = events[events.len() - 1].0;
            events.push(ev(u64::from(i) + 1, &[prev], i));
        }
        assert!(invalid_events(&set(&events)).is_empty());
    }
}
