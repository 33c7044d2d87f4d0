//! Typed dependencies between issues: kinds, the two graphs they form
//! (`blocks` and `parent`), cycle checks for writers and the deterministic
//! cycle breaking readers apply (`refs-format.md`, section 6e).
//!
//! Links are stored as before (`add_link` with a kind text in the log of
//! the issue the link is written on); this module gives the kinds below a
//! meaning and normalizes them into directed edges:
//!
//! | `A --kind K B` | edge |
//! |---|---|
//! | `blocks` | blocks graph `A → B` (B waits for A) |
//! | `blocked-by` | blocks graph `B → A` |
//! | `parent` | parent graph `A → B` (A is B's parent) |
//! | `child` | parent graph `B → A` |
//! | `discovered-from`, `related` (and the old default `relates`), `duplicate-of` | no edge |
//!
//! Other kind texts written by older builds still fold and are shown; they
//! carry no meaning here.
//!
//! **Cycle breaking.** Concurrent writes in different clones can close a
//! cycle that neither writer saw. Readers then ignore edges so that each
//! graph is acyclic: inside each strongly connected component, edges are
//! taken in ascending `(from, to)` byte order of their issue ids, and an
//! edge that would close a cycle with the edges taken before it is
//! ignored. Edges between components never close a cycle and are always
//! kept. The result is a function of the edge set (hence of the event
//! sets). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Link;
use crate::event::IssueId;

/// A link kind with a meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepKind {
    /// A blocks B: B cannot start before A is closed.
    Blocks,
    /// A is blocked by B.
    BlockedBy,
    /// A is the parent of B.
    Parent,
    /// A is a child of B.
    Child,
    /// A was found while working on B.
    DiscoveredFrom,
    /// A and B are related.
    Related,
    /// A duplicates B.
    DuplicateOf,
}

impl DepKind {
    /// Every kind.
    pub const ALL: [DepKind; 7] = [
        DepKind::Blocks,
        DepKind::BlockedBy,
        DepKind::Parent,
        DepKind::Child,
        DepKind::DiscoveredFrom,
        DepKind::Related,
        DepKind::DuplicateOf,
    ];

    /// The stored kind text.
    pub fn as_str(self) -> &'static str {
        match self {
            DepKind::Blocks => "blocks",
            DepKind::BlockedBy => "blocked-by",
            DepKind::Parent => "parent",
            DepKind::Child => "child",
            DepKind::DiscoveredFrom => "discovered-from",
            DepKind::Related => "related",
            DepKind::DuplicateOf => "duplicate-of",
        }
    }

    /// The kind a stored text names (`relates`, the old default, is
    /// `related`).
    pub fn parse(text: &str) -> Option<DepKind> {
        if text == "relates" {
            return Some(DepKind::Related);
        }
        DepKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Which graph a link of this kind is an edge of, and whether the edge
    /// points from the link's issue to its target (`true`) or back.
    pub fn graph(self) -> Option<(Graph, bool)> {
        match self {
            DepKind::Blocks => Some((Graph::Blocks, true)),
            DepKind::BlockedBy => Some((Graph::Blocks, false)),
            DepKind::Parent => Some((Graph::Parent, true)),
            DepKind::Child => Some((Graph::Parent, false)),
            _ => None,
        }
    }
}

/// The two graphs that must stay acyclic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Graph {
    /// blocks / blocked-by.
    Blocks,
    /// parent / child.
    Parent,
}

impl Graph {
    /// Name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Graph::Blocks => "blocks",
            Graph::Parent => "parent",
        }
    }
}

/// A directed edge of one graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Edge {
    /// For `blocks`: the blocker; for `parent`: the parent.
    pub from: IssueId,
    /// For `blocks`: the blocked issue; for `parent`: the child.
    pub to: IssueId,
}

/// The edge a link written on `issue` stands for, if its kind has one.
pub fn edge_of(issue: IssueId, link: &Link) -> Option<(Graph, Edge)> {
    let (graph, forward) = DepKind::parse(&link.kind)?.graph()?;
    let edge = if forward {
        Edge {
            from: issue,
            to: link.target,
        }
    } else {
        Edge {
            from: link.target,
            to: issue,
        }
    };
    Some((graph, edge))
}

/// Both graphs of a set of issues' links, as written (cycles included).
pub fn graphs<'a>(
    issues: impl IntoIterator<Item = (IssueId, &'a [Link])>,
) -> BTreeMap<Graph, BTreeSet<Edge>> {
    let mut out: BTreeMap<Graph, BTreeSet<Edge>> = BTreeMap::new();
    for (issue, links) in issues {
        for link in links {
            if let Some((g, e)) = edge_of(issue, link) {
                out.entry(g).or_default().insert(e);
            }
        }
    }
    out
}

/// A path `from → … → to` along `edges` (issue ids, both ends included),
/// if one exists. Adding the edge `to → from` would close it into a cycle.
pub fn path(edges: &BTreeSet<Edge>, from: IssueId, to: IssueId) -> Option<Vec<IssueId>> {
    let adj = adjacency(edges);
    let mut prev: BTreeMap<IssueId, IssueId> = BTreeMap::new();
    let mut stack = vec![from];
    let mut seen = BTreeSet::from([from]);
    while let Some(n) = stack.pop() {
        if n == to {
            let mut out = vec![to];
            let mut at = to;
            while let Some(p) = prev.get(&at) {
                out.push(*p);
                at = *p;
            }
            out.reverse();
            return Some(out);
        }
        for m in adj.get(&n).into_iter().flatten() {
            if seen.insert(*m) {
                prev.insert(*m, n);
                stack.push(*m);
            }
        }
    }
    None
}

fn adjacency(edges: &BTreeSet<Edge>) -> BTreeMap<IssueId, Vec<IssueId>> {
    let mut adj: BTreeMap<IssueId, Vec<IssueId>> = BTreeMap::new();
    for e in edges {
        adj.entry(e.from).or_default().push(e.to);
    }
    adj
}

/// An edge ignored to break a cycle, with the cycle it would have closed
/// (issue ids from its `to` back round to its `from`, then `to` again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrokenEdge {
    /// The graph.
    pub graph: Graph,
    /// The ignored edge.
    pub edge: Edge,
    /// The cycle it closed.
    pub cycle: Vec<IssueId>,
}

/// Break the cycles of one graph (see the module docs): the edges kept and
/// the edges ignored.
pub fn break_cycles(graph: Graph, edges: &BTreeSet<Edge>) -> (BTreeSet<Edge>, Vec<BrokenEdge>) {
    let comp = components(edges);
    let mut kept: BTreeSet<Edge> = BTreeSet::new();
    let mut inner: BTreeMap<usize, Vec<Edge>> = BTreeMap::new();
    for e in edges {
        match (comp.get(&e.from), comp.get(&e.to)) {
            (Some(a), Some(b)) if a == b => inner.entry(*a).or_default().push(*e),
            _ => {
                kept.insert(*e);
            }
        }
    }
    let mut broken = Vec::new();
    for (_, list) in inner {
        // `list` is in ascending (from, to) order: the set's order.
        let mut taken: BTreeSet<Edge> = BTreeSet::new();
        for e in list {
            if e.from == e.to {
                broken.push(BrokenEdge {
                    graph,
                    edge: e,
                    cycle: vec![e.to, e.from],
                });
                continue;
            }
            match path(&taken, e.to, e.from) {
                Some(mut cycle) => {
                    cycle.push(e.to);
                    broken.push(BrokenEdge {
                        graph,
                        edge: e,
                        cycle,
                    });
                }
                None => {
                    taken.insert(e);
                }
            }
        }
        kept.extend(taken);
    }
    (kept, broken)
}

/// Strongly connected components with more than one node or a self loop
/// (Tarjan, iterative): node -> component number. Nodes on no cycle are
/// absent.
fn components(edges: &BTreeSet<Edge>) -> BTreeMap<IssueId, usize> {
    let adj = adjacency(edges);
    let nodes: BTreeSet<IssueId> = edges.iter().flat_map(|e| [e.from, e.to]).collect();
    let mut index: BTreeMap<IssueId, usize> = BTreeMap::new();
    let mut low: BTreeMap<IssueId, usize> = BTreeMap::new();
    let mut on_stack: BTreeSet<IssueId> = BTreeSet::new();
    let mut stack: Vec<IssueId> = Vec::new();
    let mut out: BTreeMap<IssueId, usize> = BTreeMap::new();
    let mut next = 0usize;
    let mut comp_no = 0usize;
    let empty: Vec<IssueId> = Vec::new();
    for &root in &nodes {
        if index.contains_key(&root) {
            continue;
        }
        // (node, next child position)
        let mut work: Vec<(IssueId, usize)> = vec![(root, 0)];
        while let Some(&mut (n, ref mut pos)) = work.last_mut() {
            if *pos == 0 && !index.contains_key(&n) {
                index.insert(n, next);
                low.insert(n, next);
                next += 1;
                stack.push(n);
                on_stack.insert(n);
            }
            let succ = adj.get(&n).unwrap_or(&empty);
            if let Some(&m) = succ.get(*pos) {
                *pos += 1;
                if !index.contains_key(&m) {
                    work.push((m, 0));
                } else if on_stack.contains(&m) {
                    let lm = index[&m];
                    let ln = low[&n];
                    low.insert(n, ln.min(lm));
                }
                continue;
            }
            work.pop();
            if let Some(&(p, _)) = work.last() {
                let ln = low[&n];
                let lp = low[&p];
                low.insert(p, lp.min(ln));
            }
            if low[&n] == index[&n] {
                let mut members = Vec::new();
                while let Some(m) = stack.pop() {
                    on_stack.remove(&m);
                    members.push(m);
                    if m == n {
                        break;
                    }
                }
                let self_loop = adj.get(&n).is_some_and(|s| s.contains(&n));
                if members.len() > 1 || self_loop {
                    for m in members {
                        out.insert(m, comp_no);
                    }
                    comp_no += 1;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> IssueId {
        IssueId(uuid::Uuid::from_bytes([n; 16]))
    }

    fn e(a: u8, b: u8) -> Edge {
        Edge {
            from: id(a),
            to: id(b),
        }
    }

    #[test]
    fn acyclic_graphs_keep_every_edge() {
        let edges: BTreeSet<Edge> = [e(1, 2), e(2, 3), e(1, 3)].into();
        let (kept, broken) = break_cycles(Graph::Blocks, &edges);
        assert_eq!(kept, edges);
        assert!(broken.is_empty());
    }

    #[test]
    fn a_cycle_loses_the_edge_that_closes_it_in_id_order() {
        // 1→2, 2→3 taken first; 3→1 would close the cycle and is ignored.
        let edges: BTreeSet<Edge> = [e(3, 1), e(1, 2), e(2, 3), e(3, 4)].into();
        let (kept, broken) = break_cycles(Graph::Blocks, &edges);
        assert_eq!(kept, [e(1, 2), e(2, 3), e(3, 4)].into());
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].edge, e(3, 1));
        assert_eq!(broken[0].cycle, vec![id(1), id(2), id(3), id(1)]);
    }

    #[test]
    fn paths_name_the_cycle_a_write_would_close() {
        let edges: BTreeSet<Edge> = [e(1, 2), e(2, 3)].into();
        assert_eq!(path(&edges, id(1), id(3)), Some(vec![id(1), id(2), id(3)]));
        assert_eq!(path(&edges, id(3), id(1)), None);
    }

    #[test]
    fn kinds_normalize_to_edges() {
        let l = |k: &str| Link {
            kind: k.into(),
            target: id(2),
        };
        assert_eq!(edge_of(id(1), &l("blocks")), Some((Graph::Blocks, e(1, 2))));
        assert_eq!(
            edge_of(id(1), &l("blocked-by")),
            Some((Graph::Blocks, e(2, 1)))
        );
        assert_eq!(edge_of(id(1), &l("child")), Some((Graph::Parent, e(2, 1))));
        assert_eq!(edge_of(id(1), &l("relates")), None);
        assert_eq!(edge_of(id(1), &l("whatever")), None);
    }
}
