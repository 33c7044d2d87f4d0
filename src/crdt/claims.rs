//! Claims (leases): who holds an issue, decided from the event set alone.
//!
//! A `claim` event takes or renews a lease until `wall_ms + ttl_ms`; a
//! `release` ends the writer's lease. The resolution (`refs-format.md`,
//! section 6d) walks the claim and release events in stamp order
//! (lamport, actor, id), which respects causality:
//!
//! - a claim on a free issue (no lease, or the lease expired at the
//!   claim's wall time) takes it; a claim by the holder renews it;
//! - a claim while another actor's lease is live loses, unless it is
//!   *online* (pushed by compare-and-swap before it was reported) and the
//!   live lease is *provisional* (written offline) and not in the claim's
//!   causal past: then the online claim overrules it;
//! - a claim written while its writer saw another actor's live lease (a
//!   claim by another actor in its causal past that took or renewed the
//!   lease, not expired at its wall
//!   time, with no release of that actor after it in its past) was refused
//!   on the spot and never takes the issue, even if the holder's concurrent
//!   release sorts before it;
//! - a release by the holder frees the issue.
//!
//! A loss is *unknowing* when the loser had not seen the winning claim
//! (concurrent provisional claims, or an overruled provisional holder):
//! `sync` tells such losers until they acknowledge it with a `release`
//! that has the winning claim in its causal past.
//!
//! The result is a function of the event set (order and duplicates do not
//! matter); whether a lease is live *now* is a question asked of it with a
//! clock ([`Claims::holder_at`]). Wall time decides leases only, never a
//! field value. Pure: no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{EventSet, Stamp};
use crate::event::{ActorId, Event, EventId, Op};

/// A lease as resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// Who holds it.
    pub actor: ActorId,
    /// The claim that took it.
    pub claim: EventId,
    /// Wall time of that claim (ms).
    pub since_ms: i64,
    /// When it expires (ms), after renewals.
    pub until_ms: i64,
    /// Whether the claim that took it was online (linearized).
    pub online: bool,
}

/// A claim that did not get (or keep) the issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostClaim {
    /// The loser.
    pub actor: ActorId,
    /// The losing claim.
    pub claim: EventId,
    /// Who won.
    pub winner: ActorId,
    /// The winning claim.
    pub winner_claim: EventId,
    /// The loser had seen the winning claim when it claimed (an online
    /// claim refused on the spot is recorded this way).
    pub knew: bool,
    /// The loser has since released with the winning claim in its past.
    pub acknowledged: bool,
}

/// The claims of one issue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The last lease taken and not released (it may have expired: ask
    /// [`Claims::holder_at`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Claims that lost, in stamp order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<LostClaim>,
}

impl Claims {
    /// The live lease at wall time `now_ms`, if any.
    pub fn holder_at(&self, now_ms: i64) -> Option<&Lease> {
        self.lease.as_ref().filter(|l| l.until_ms > now_ms)
    }

    /// Whether nothing was ever claimed.
    pub fn is_empty(&self) -> bool {
        self.lease.is_none() && self.lost.is_empty()
    }

    /// Lost claims of `actor` it has not been told about and not
    /// acknowledged (what `sync` reports).
    pub fn unknowing_losses<'a>(
        &'a self,
        actor: &'a ActorId,
    ) -> impl Iterator<Item = &'a LostClaim> + 'a {
        self.lost
            .iter()
            .filter(move |l| &l.actor == actor && !l.knew && !l.acknowledged)
    }
}

/// Whether an operation takes part in claim resolution.
pub fn is_claim_op(op: &Op) -> bool {
    matches!(op, Op::Claim { .. } | Op::Release {})
}

/// Resolve the claims of a set (see the module docs).
pub fn resolve(set: &EventSet) -> Claims {
    let mut relevant: Vec<(Stamp, &Event)> = set
        .iter()
        .filter(|(_, e)| is_claim_op(&e.op))
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
    if relevant.is_empty() {
        return Claims::default();
    }
    relevant.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ancestry = Ancestry::new(set);
    let mut lease: Option<Lease> = None;
    let mut lost: Vec<LostClaim> = Vec::new();
    // Claims that took or renewed the lease (the only ones a writer can
    // have seen as a live lease).
    let mut took: BTreeSet<EventId> = BTreeSet::new();
    for (stamp, e) in &relevant {
        match e.op {
            Op::Claim { ttl_ms, online } => {
                let until_ms = e
                    .wall_ms
                    .saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
                let live = lease.as_ref().filter(|l| l.until_ms > e.wall_ms);
                // A claim written while its writer saw another actor's live
                // lease was refused on the spot (a losing claim is recorded
                // that way): it never takes the issue, even when the holder's
                // concurrent release sorts before it.
                let refused = if live.is_none() {
                    saw_live_lease(&mut ancestry, &relevant, &took, stamp.id, e)
                } else {
                    None
                };
                match (live, refused) {
                    (None, Some((holder, holder_claim))) => {
                        lost.push(LostClaim {
                            actor: e.actor.clone(),
                            claim: stamp.id,
                            winner: holder,
                            winner_claim: holder_claim,
                            knew: true,
                            acknowledged: false,
                        });
                    }
                    (None, None) => {
                        took.insert(stamp.id);
                        lease = Some(Lease {
                            actor: e.actor.clone(),
                            claim: stamp.id,
                            since_ms: e.wall_ms,
                            until_ms,
                            online,
                        })
                    }
                    (Some(l), _) if l.actor == e.actor => {
                        took.insert(stamp.id);
                        let l = lease.as_mut().expect("BUG: a live lease is a lease");
                        l.until_ms = until_ms;
                        l.online |= online;
                    }
                    (Some(l), _) => {
                        let knew = ancestry.reaches(stamp.id, l.claim);
                        if online && !l.online && !knew {
                            took.insert(stamp.id);
                            lost.push(LostClaim {
                                actor: l.actor.clone(),
                                claim: l.claim,
                                winner: e.actor.clone(),
                                winner_claim: stamp.id,
                                knew: false,
                                acknowledged: false,
                            });
                            lease = Some(Lease {
                                actor: e.actor.clone(),
                                claim: stamp.id,
                                since_ms: e.wall_ms,
                                until_ms,
                                online,
                            });
                        } else {
                            lost.push(LostClaim {
                                actor: e.actor.clone(),
                                claim: stamp.id,
                                winner: l.actor.clone(),
                                winner_claim: l.claim,
                                knew,
                                acknowledged: false,
                            });
                        }
                    }
                }
            }
            Op::Release {} if lease.as_ref().is_some_and(|l| l.actor == e.actor) => {
                lease = None;
            }
            _ => {}
        }
    }
    // Acknowledgements: a release by the loser that saw the winning claim.
    let releases: Vec<(EventId, &ActorId)> = relevant
        .iter()
        .filter(|(_, e)| matches!(e.op, Op::Release {}))
        .map(|(s, e)| (s.id, &e.actor))
        .collect();
    for l in &mut lost {
        l.acknowledged = releases
            .iter()
            .any(|(r, a)| **a == l.actor && ancestry.reaches(*r, l.winner_claim));
    }
    Claims { lease, lost }
}

/// The other actor's lease that claim `id` (event `e`) saw live when it
/// was written, if any: a claim by another actor in its causal past that
/// took or renewed the lease (`took`), whose lease had not expired at `e`'s wall time, with no release by that actor
/// after it in `e`'s causal past.
fn saw_live_lease(
    ancestry: &mut Ancestry<'_>,
    relevant: &[(Stamp, &Event)],
    took: &BTreeSet<EventId>,
    id: EventId,
    e: &Event,
) -> Option<(ActorId, EventId)> {
    let mut seen = None;
    for (d_stamp, d) in relevant {
        let Op::Claim { ttl_ms, .. } = d.op else {
            continue;
        };
        if !took.contains(&d_stamp.id) {
            continue;
        }
        let until = d
            .wall_ms
            .saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        if d.actor == e.actor || until <= e.wall_ms || !ancestry.reaches(id, d_stamp.id) {
            continue;
        }
        let released = relevant.iter().any(|(r_stamp, r)| {
            matches!(r.op, Op::Release {})
                && r.actor == d.actor
                && ancestry.reaches(id, r_stamp.id)
                && ancestry.reaches(r_stamp.id, d_stamp.id)
        });
        if !released {
            seen = Some((d.actor.clone(), d_stamp.id));
        }
    }
    seen
}

/// Causal ancestry queries over a set, memoized per start event.
struct Ancestry<'s> {
    set: &'s EventSet,
    memo: BTreeMap<EventId, BTreeSet<EventId>>,
}

impl<'s> Ancestry<'s> {
    fn new(set: &'s EventSet) -> Self {
        Ancestry {
            set,
            memo: BTreeMap::new(),
        }
    }

    /// Whether `target` is a strict ancestor of `from` (via `parents`).
    fn reaches(&mut self, from: EventId, target: EventId) -> bool {
        let set = self.set;
        self.memo
            .entry(from)
            .or_insert_with(|| {
                let mut seen = BTreeSet::new();
                let mut stack: Vec<EventId> = set
                    .get(&from)
                    .map(|e| e.parents.clone())
                    .unwrap_or_default();
                while let Some(id) = stack.pop() {
                    if seen.insert(id) {
                        if let Some(e) = set.get(&id) {
                            stack.extend(e.parents.iter().copied());
                        }
                    }
                }
                seen
            })
            .contains(&target)
    }
}
