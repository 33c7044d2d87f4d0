//! Ordering tracker observations against local events.
//!
//! A tracker revision seen by two clones is one logical write: `observe`
//! events have fixed envelope values, so both clones write the same bytes.
//! Their *position* among local events is not a Lamport clock (the importer's
//! clock is an accident) but causality:
//!
//! - a local event happens after an observation if the writer had it, or a
//!   later revision of the same remote issue, among its ancestors;
//! - an observation at revision `r` happens after a local event if an
//!   `exported` record at a revision `<= r` of that remote issue has the local
//!   event among its ancestors (the tracker had it when `r` was written);
//! - observations of one remote issue are ordered by revision;
//! - local events are ordered by their ancestry (and through the tracker:
//!   exported, then observed at a later revision by another writer).
//!
//! A register's value is written by the causally maximal writes; among
//! several concurrent ones the greatest stamp (lamport, actor, id) wins, so
//! a concurrent local write beats a tracker write (observations have
//! lamport 0) and the exporter then sends it. A tracker write is a field of
//! an observation that differs from the previous observation of the same
//! remote issue in the set (the first observation writes every field).
//!
//! Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, ObjType, ReadDoc, ROOT};

use super::{EventSet, Stamp};
use crate::event::{Event, EventId, Op};

/// One write to a register or one add tag of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// A local event (index into the ordered events).
    Local(usize),
    /// An observation: chain index and position in the chain.
    Tracker(usize, usize),
}

pub(crate) struct Obs<'a> {
    pub idx: usize,
    pub revision: u64,
    pub event: &'a Event,
}

/// Causal structure of one issue's events.
pub(crate) struct Causal<'a> {
    pub events: Vec<(Stamp, &'a Event)>,
    index: HashMap<EventId, usize>,
    anc: Vec<Vec<u64>>,
    /// Observation chains, keyed by (backend, remote key), sorted by
    /// (revision, id). Issue chains use the remote id; comment chains use
    /// `comment:<remote id>`.
    pub chain_keys: Vec<(String, String)>,
    pub chains: Vec<Vec<Obs<'a>>>,
    /// Exported records per chain: (revision, event index).
    exports: Vec<Vec<(u64, usize)>>,
}

fn has(bits: &[u64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

impl<'a> Causal<'a> {
    /// Whether the set has anything from a tracker.
    pub fn needed(set: &EventSet) -> bool {
        set.iter().any(|(_, e)| {
            matches!(
                e.op,
                Op::Observe { .. } | Op::ObserveComment { .. } | Op::ObserveGone { .. }
            )
        })
    }

    pub fn build(set: &'a EventSet) -> Causal<'a> {
        let events = set.ordered();
        let n = events.len();
        let words = n.div_ceil(64);
        let index: HashMap<EventId, usize> = events
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (s.id, i))
            .collect();
        let mut anc = vec![vec![0u64; words]; n];
        // Stamp order puts parents first (their lamport is smaller); a
        // parent out of order only weakens what is known, deterministically.
        for i in 0..n {
            let mut bits = vec![0u64; words];
            for p in &events[i].1.parents {
                if let Some(&j) = index.get(p) {
                    if j < i {
                        for (w, pw) in bits.iter_mut().zip(&anc[j]) {
                            *w |= pw;
                        }
                        bits[j / 64] |= 1 << (j % 64);
                    }
                }
            }
            anc[i] = bits;
        }
        let mut keyed: BTreeMap<(String, String), Vec<Obs<'a>>> = BTreeMap::new();
        let mut exported: BTreeMap<(String, String), Vec<(u64, usize)>> = BTreeMap::new();
        for (i, (_, e)) in events.iter().enumerate() {
            match &e.op {
                Op::Observe {
                    backend,
                    remote_id,
                    revision,
                    ..
                } => keyed
                    .entry((backend.clone(), remote_id.clone()))
                    .or_default()
                    .push(Obs {
                        idx: i,
                        revision: *revision,
                        event: e,
                    }),
                Op::ObserveComment {
                    backend,
                    remote_id,
                    revision,
                    ..
                } => keyed
                    .entry((backend.clone(), format!("comment:{remote_id}")))
                    .or_default()
                    .push(Obs {
                        idx: i,
                        revision: *revision,
                        event: e,
                    }),
                // The tracker no longer has the object: the last word of its
                // chain, after every revision.
                Op::ObserveGone { backend, remote_id } => keyed
                    .entry((backend.clone(), remote_id.clone()))
                    .or_default()
                    .push(Obs {
                        idx: i,
                        revision: u64::MAX,
                        event: e,
                    }),
                Op::Exported {
                    backend,
                    remote_id,
                    revision,
                } => exported
                    .entry((backend.clone(), remote_id.clone()))
                    .or_default()
                    .push((*revision, i)),
                _ => {}
            }
        }
        let mut chain_keys = Vec::new();
        let mut chains = Vec::new();
        let mut exports = Vec::new();
        for (key, mut obs) in keyed {
            obs.sort_by(|a, b| {
                (a.revision, events[a.idx].0.id).cmp(&(b.revision, events[b.idx].0.id))
            });
            exports.push(exported.remove(&key).unwrap_or_default());
            chain_keys.push(key);
            chains.push(obs);
        }
        Causal {
            events,
            index,
            anc,
            chain_keys,
            chains,
            exports,
        }
    }

    /// Index of an event id.
    pub fn idx(&self, id: &EventId) -> Option<usize> {
        self.index.get(id).copied()
    }

    fn stamp(&self, w: Write) -> &Stamp {
        match w {
            Write::Local(i) => &self.events[i].0,
            Write::Tracker(c, p) => &self.events[self.chains[c][p].idx].0,
        }
    }

    /// Highest position in chain `c` among the ancestors of event `i`.
    fn seen_pos(&self, c: usize, i: usize) -> Option<usize> {
        self.chains[c]
            .iter()
            .rposition(|o| o.idx == i || has(&self.anc[i], o.idx))
    }

    /// Whether local event `a` reached the tracker on chain `c` at or
    /// before `revision`.
    fn exported_by(&self, a: usize, c: usize, revision: u64) -> bool {
        self.exports[c]
            .iter()
            .any(|&(r, x)| r <= revision && (x == a || has(&self.anc[x], a)))
    }

    /// Whether observation `k` of chain `c` is of a tracker comment created
    /// from local event `x` (its marker names `x`, an `add_comment`): its
    /// creator had `x`, whether or not its `exported` record is here.
    fn created_from(&self, x: usize, c: usize, k: usize) -> bool {
        matches!(&self.chains[c][k].event.op,
            Op::ObserveComment { local: Some(l), .. } if *l == self.events[x].0.id)
    }

    /// Direct happens-before between two writes.
    fn hb(&self, a: Write, b: Write) -> bool {
        match (a, b) {
            (Write::Local(x), Write::Local(y)) => {
                has(&self.anc[y], x)
                    || (0..self.chains.len()).any(|c| {
                        self.exports[c].iter().any(|&(r, e)| {
                            (e == x || has(&self.anc[e], x))
                                && self
                                    .seen_pos(c, y)
                                    .is_some_and(|p| self.chains[c][p].revision >= r)
                        })
                    })
            }
            (Write::Tracker(c, k), Write::Local(y)) => self.seen_pos(c, y).is_some_and(|p| p >= k),
            (Write::Local(x), Write::Tracker(c, k)) => {
                self.exported_by(x, c, self.chains[c][k].revision) || self.created_from(x, c, k)
            }
            (Write::Tracker(c1, j), Write::Tracker(c2, k)) => c1 == c2 && j < k,
        }
    }

    /// Whether `a` happens before `b`, closed transitively over `among`.
    fn reach(&self, among: &[Write]) -> Vec<Vec<bool>> {
        let m = among.len();
        let mut r: Vec<Vec<bool>> = (0..m)
            .map(|i| {
                (0..m)
                    .map(|j| i != j && self.hb(among[i], among[j]))
                    .collect()
            })
            .collect();
        // Warshall: close the relation transitively.
        for k in 0..m {
            let via = r[k].clone();
            for row in r.iter_mut() {
                if row[k] {
                    for (cell, &through) in row.iter_mut().zip(&via) {
                        *cell |= through;
                    }
                }
            }
        }
        r
    }

    /// The causally maximal writes, in ascending stamp order. Tracker
    /// timestamps of one second, or hostile data, can make the relation
    /// cyclic; then the writes of a maximal cycle are all maximal (a write
    /// is maximal when everything after it is also before it), so there is
    /// always a winner and no value is ever dropped.
    pub fn maximal(&self, writes: &[Write]) -> Vec<Write> {
        let r = self.reach(writes);
        let m = writes.len();
        let mut out: Vec<Write> = writes
            .iter()
            .enumerate()
            .filter(|(i, _)| (0..m).all(|j| !r[*i][j] || r[j][*i]))
            .map(|(_, w)| *w)
            .collect();
        out.sort_by(|a, b| self.stamp(*a).cmp(self.stamp(*b)));
        out.dedup();
        out
    }

    /// The winning value among writes: greatest stamp among the maximal.
    pub fn resolve<T: Clone>(&self, writes: &[(Write, T)]) -> Option<T> {
        let ws: Vec<Write> = writes.iter().map(|(w, _)| *w).collect();
        let winner = *self.maximal(&ws).last()?;
        writes
            .iter()
            .find(|(w, _)| *w == winner)
            .map(|(_, v)| v.clone())
    }

    /// Tracker writes of one field: observations whose value differs from
    /// the previous observation of the same chain.
    pub fn tracker_writes<T: PartialEq + Clone>(
        &self,
        chains: impl Fn(&(String, String)) -> bool,
        field: impl Fn(&Event) -> Option<T>,
    ) -> Vec<(Write, T)> {
        let mut out = Vec::new();
        for (c, chain) in self.chains.iter().enumerate() {
            if !chains(&self.chain_keys[c]) {
                continue;
            }
            let mut prev: Option<T> = None;
            for (p, o) in chain.iter().enumerate() {
                let Some(v) = field(o.event) else { continue };
                if prev.as_ref() != Some(&v) {
                    out.push((Write::Tracker(c, p), v.clone()));
                }
                prev = Some(v);
            }
        }
        out
    }

    /// Whether `w` happens before `b` (direct rules only; used for tags).
    pub fn before(&self, w: Write, b: Write) -> bool {
        self.hb(w, b)
    }
}

/// Character-wise three-way merge of `ours` and `theirs` from `base`,
/// through automerge with fixed actors and time, so it is deterministic.
pub fn merge3(base: &str, ours: &str, theirs: &str) -> String {
    if ours == theirs || theirs == base {
        return ours.to_owned();
    }
    if ours == base {
        return theirs.to_owned();
    }
    let run = || -> Result<String, automerge::AutomergeError> {
        let mut doc = AutoCommit::new().with_actor(automerge::ActorId::from([0u8; 16]));
        let text = doc.put_object(ROOT, "t", ObjType::Text)?;
        doc.splice_text(&text, 0, 0, base)?;
        doc.commit_with(CommitOptions::default().with_time(0));
        let mut a = doc.fork().with_actor(automerge::ActorId::from([1u8; 16]));
        a.update_text(&text, ours)?;
        a.commit_with(CommitOptions::default().with_time(0));
        let mut b = doc.fork().with_actor(automerge::ActorId::from([2u8; 16]));
        b.update_text(&text, theirs)?;
        b.commit_with(CommitOptions::default().with_time(0));
        a.merge(&mut b)?;
        a.text(&text)
    };
    // Merging two strings cannot fail; if automerge ever disagrees, keep
    // the tracker's text rather than lose the fold.
    run().unwrap_or_else(|_| theirs.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge3_keeps_both_edits() {
        let base = "one\ntwo\nthree\n";
        let ours = "ONE\ntwo\nthree\n";
        let theirs = "one\ntwo\nthree!\n";
        assert_eq!(merge3(base, ours, theirs), "ONE\ntwo\nthree!\n");
        assert_eq!(merge3(base, ours, theirs), merge3(base, ours, theirs));
    }
}
