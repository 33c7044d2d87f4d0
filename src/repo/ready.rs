//! The work an agent may start: the ready queue and what is blocked (both
//! read the listing index only, no issue log is loaded, so they cost what
//! `issue list` costs), who holds what, and the cycle check on dependency
//! writes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::crdt::deps::{self, BrokenEdge, Edge, Graph};
use crate::crdt::{IssueState, Link};
use crate::event::{ActorId, IssueId, Status};
use crate::repo::RepoError;
use crate::store::index::IssueSummary;

/// Numeric priority of an issue (`priority` field; lower first). Absent
/// or not a number: after every numbered issue.
pub fn priority_of(s: &IssueSummary) -> i64 {
    s.priority
        .as_deref()
        .and_then(|p| p.trim().parse::<i64>().ok())
        .unwrap_or(i64::MAX)
}

/// The dependency graphs of a listing, cycles broken.
#[derive(Debug, Default)]
pub struct DepGraphs {
    /// Kept `blocks` edges by blocked issue: its blockers.
    pub blockers: BTreeMap<IssueId, BTreeSet<IssueId>>,
    /// Edges ignored to break cycles.
    pub broken: Vec<BrokenEdge>,
}

/// Build the graphs of `issues` (cycles broken as in [`deps`]).
pub fn dep_graphs(issues: &[IssueSummary]) -> DepGraphs {
    let graphs = deps::graphs(issues.iter().map(|s| (s.id, s.links.as_slice())));
    let mut out = DepGraphs::default();
    for (g, edges) in &graphs {
        let (kept, broken) = deps::break_cycles(*g, edges);
        out.broken.extend(broken);
        if *g == Graph::Blocks {
            for e in kept {
                out.blockers.entry(e.to).or_default().insert(e.from);
            }
        }
    }
    out
}

/// Filters of `ready`.
#[derive(Debug, Clone, Default)]
pub struct ReadyFilter {
    /// Every one of these labels.
    pub labels: Vec<String>,
    /// This assignee.
    pub assignee: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// One ready issue.
#[derive(Debug, Clone, Serialize)]
pub struct ReadyIssue {
    /// The issue.
    pub id: IssueId,
    /// Title.
    pub title: String,
    /// Priority field as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// Created (ms).
    pub created_ms: i64,
    /// Labels.
    pub labels: Vec<String>,
    /// The caller's live lease, if it holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until_ms: Option<i64>,
}

/// Open issues with no open blocker and no live claim by someone other
/// than `me`, by priority, then age, then id.
pub fn ready(
    issues: &[IssueSummary],
    graphs: &DepGraphs,
    me: Option<&ActorId>,
    now: i64,
    filter: &ReadyFilter,
) -> Vec<ReadyIssue> {
    let by_id: BTreeMap<IssueId, &IssueSummary> = issues.iter().map(|s| (s.id, s)).collect();
    let mut out: Vec<&IssueSummary> = issues
        .iter()
        .filter(|s| !s.status.is_closed() && !s.merged)
        .filter(|s| match &s.lease {
            Some((holder, until)) if *until > now => Some(holder) == me,
            _ => true,
        })
        .filter(|s| open_blockers(s.id, graphs, &by_id).is_empty())
        .filter(|s| filter.labels.iter().all(|l| s.labels.contains(l)))
        .filter(|s| {
            filter
                .assignee
                .as_ref()
                .is_none_or(|a| s.assignees.contains(a))
        })
        .collect();
    out.sort_by_key(|s| (priority_of(s), s.created_ms, s.id));
    out.into_iter()
        .take(filter.limit.unwrap_or(usize::MAX))
        .map(|s| ReadyIssue {
            id: s.id,
            title: s.title.clone(),
            priority: s.priority.clone(),
            created_ms: s.created_ms,
            labels: s.labels.clone(),
            held_until_ms: s
                .lease
                .as_ref()
                .filter(|(h, until)| Some(h) == me && *until > now)
                .map(|(_, u)| *u),
        })
        .collect()
}

/// The blockers of `issue` that are not closed (unknown issues count as
/// open: they may simply not be synced yet).
pub fn open_blockers(
    issue: IssueId,
    graphs: &DepGraphs,
    by_id: &BTreeMap<IssueId, &IssueSummary>,
) -> Vec<IssueId> {
    graphs
        .blockers
        .get(&issue)
        .into_iter()
        .flatten()
        .filter(|b| by_id.get(b).is_none_or(|s| !s.status.is_closed()))
        .copied()
        .collect()
}

/// One blocked issue and what it waits on.
#[derive(Debug, Clone, Serialize)]
pub struct BlockedIssue {
    /// The issue.
    pub id: IssueId,
    /// Title.
    pub title: String,
    /// Its open blockers: (id, title if known, status if known).
    pub waits_on: Vec<Blocker>,
}

/// A blocker as shown by `blocked`.
#[derive(Debug, Clone, Serialize)]
pub struct Blocker {
    /// The blocker.
    pub id: IssueId,
    /// Its title, when known here.
    pub title: Option<String>,
    /// Its status, when known here.
    pub status: Option<Status>,
    /// Its live holder.
    pub holder: Option<ActorId>,
}

/// Open issues with at least one open blocker.
pub fn blocked(issues: &[IssueSummary], graphs: &DepGraphs, now: i64) -> Vec<BlockedIssue> {
    let by_id: BTreeMap<IssueId, &IssueSummary> = issues.iter().map(|s| (s.id, s)).collect();
    let mut out = Vec::new();
    for s in issues.iter().filter(|s| !s.status.is_closed() && !s.merged) {
        let open = open_blockers(s.id, graphs, &by_id);
        if open.is_empty() {
            continue;
        }
        out.push(BlockedIssue {
            id: s.id,
            title: s.title.clone(),
            waits_on: open
                .into_iter()
                .map(|b| {
                    let known = by_id.get(&b);
                    Blocker {
                        id: b,
                        title: known.map(|k| k.title.clone()),
                        status: known.map(|k| k.status),
                        holder: known
                            .and_then(|k| k.lease.as_ref())
                            .filter(|(_, u)| *u > now)
                            .map(|(a, _)| a.clone()),
                    }
                })
                .collect(),
        });
    }
    out.sort_by_key(|b| (std::cmp::Reverse(b.waits_on.len()), b.id));
    out
}

/// Refuse a link on `issue` that would close a cycle of `blocks` or
/// `parent` with the links known here; the message names the cycle.
pub fn check_link(issues: &[IssueSummary], issue: IssueId, link: &Link) -> Result<(), RepoError> {
    let Some((graph, edge)) = deps::edge_of(issue, link) else {
        return Ok(());
    };
    let graphs = deps::graphs(issues.iter().map(|s| (s.id, s.links.as_slice())));
    let empty = BTreeSet::new();
    let edges = graphs.get(&graph).unwrap_or(&empty);
    if edges.contains(&edge) {
        return Ok(());
    }
    let cycle = if edge.from == edge.to {
        Some(vec![edge.from])
    } else {
        deps::path(edges, edge.to, edge.from)
    };
    if let Some(mut cycle) = cycle {
        cycle.insert(0, edge.from);
        let titles: BTreeMap<IssueId, &str> =
            issues.iter().map(|s| (s.id, s.title.as_str())).collect();
        let named: Vec<String> = cycle
            .iter()
            .map(|i| match titles.get(i) {
                Some(t) => format!("{} ({t})", i.short()),
                None => i.short(),
            })
            .collect();
        return Err(RepoError::Rejected(format!(
            "refused: `{}` would close a cycle of {}: {}",
            link.kind,
            graph.as_str(),
            named.join(" → ")
        )));
    }
    Ok(())
}

/// Lost claims of `actor` it has not been told of, from the index.
pub fn unknowing_losses(issues: &[IssueSummary], actor: &ActorId) -> Vec<(IssueId, ActorId)> {
    issues
        .iter()
        .flat_map(|s| {
            s.lost
                .iter()
                .filter(|(loser, _)| loser == actor)
                .map(move |(_, winner)| (s.id, winner.clone()))
        })
        .collect()
}

/// Issues whose live lease `actor` holds.
pub fn held_by<'a>(issues: &'a [IssueSummary], actor: &ActorId, now: i64) -> Vec<&'a IssueSummary> {
    issues
        .iter()
        .filter(|s| {
            !s.status.is_closed()
                && s.lease
                    .as_ref()
                    .is_some_and(|(a, until)| a == actor && *until > now)
        })
        .collect()
}

/// The edges of a state's links, for `show`.
pub fn edges_of(state: &IssueState) -> Vec<(Graph, Edge)> {
    state
        .links
        .iter()
        .filter_map(|l| deps::edge_of(state.id, l))
        .collect()
}
