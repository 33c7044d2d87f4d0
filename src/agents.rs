//! Agents at work: claims with their two guarantees, the ready queue and
//! what is blocked, and the cycle check on dependency writes.
//!
//! Claims (`refs-format.md`, section 6d):
//! - *online* (the remote answers): the claim event is written into a
//!   commit on top of the issue as just fetched, and that commit is pushed
//!   to the remote's issue ref with `--force-with-lease=<ref>:<fetched
//!   value>` (never `+`). Only when the push lands is the local ref moved
//!   and the claim reported held; the remote's ref is the linearization
//!   point. A lost race is answered by fetching again: if another claim
//!   got there first, a losing claim is recorded (it has the winner in its
//!   causal past) and [`ClaimOutcome::Refused`] names the holder;
//! - *provisional* (the remote does not answer, or there is none): the
//!   claim is written with a compare-and-swap of the local ref (so agents
//!   sharing a clone are still linearized among themselves) and resolved
//!   against other replicas' claims when they meet.
//!
//! `ready` and `blocked` read the listing index only (no issue log is
//! loaded), so they cost what `issue list` costs.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::crdt::deps::{self, BrokenEdge, Edge, Graph};
use crate::crdt::{IssueState, Link};
use crate::event::{ActorId, Event, EventId, IssueId, Op, Status};
use crate::git_process;
use crate::repo::{Repo, RepoError};
use crate::store::index::IssueSummary;
use crate::store::layout;
use crate::store::{EventStore, Oid, StoreError};
use crate::sync::{self, PushStatus, SyncError};

/// Errors from claiming and releasing.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The remote failed in a way that is not "unreachable".
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The push kept losing races.
    #[error("claim of {issue}: the remote kept moving ({attempts} attempts); try again")]
    Contended {
        /// The issue.
        issue: IssueId,
        /// Attempts made.
        attempts: u32,
    },
}

/// Default lease length.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// How a claim was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimMode {
    /// Pushed to the remote by compare-and-swap before it was reported.
    Online,
    /// The remote did not answer: provisional until clones meet.
    Provisional,
    /// No remote is configured: linearized on this clone only.
    Local,
}

/// What a claim did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimOutcome {
    /// The caller holds the issue.
    Held {
        /// The issue.
        issue: IssueId,
        /// How.
        mode: ClaimMode,
        /// Expiry (ms).
        until_ms: i64,
        /// The claim event written (`None`: already held, nothing written).
        event: Option<EventId>,
        /// Why a remote was not used, when provisional.
        #[serde(skip_serializing_if = "Option::is_none")]
        offline_reason: Option<String>,
    },
    /// Someone else holds it; a losing claim was recorded.
    Refused {
        /// The issue.
        issue: IssueId,
        /// The holder.
        holder: ActorId,
        /// Their lease's expiry (ms).
        until_ms: i64,
        /// The losing claim recorded.
        recorded: EventId,
    },
}

/// Options of a claim or release.
#[derive(Debug, Clone)]
pub struct ClaimOptions {
    /// Lease length.
    pub ttl: Duration,
    /// Renew a lease the caller holds (else holding it is a no-op).
    pub renew: bool,
    /// Remote name, URL or path (`None`: as `sync` chooses).
    pub remote: Option<String>,
    /// Limit for each git invocation.
    pub timeout: Duration,
}

impl Default for ClaimOptions {
    fn default() -> Self {
        ClaimOptions {
            ttl: DEFAULT_TTL,
            renew: false,
            remote: None,
            // As `sync`: a loaded machine must not turn a slow remote
            // into a provisional claim.
            timeout: Duration::from_secs(120),
        }
    }
}

/// Wall clock in ms.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The remote side of a claim: where to fetch and push one issue ref.
struct Link1<'r> {
    repo: &'r Repo,
    remote: sync::Remote,
    timeout: Duration,
}

enum Fetched {
    /// The remote's value of the ref (`None`: it has no such ref).
    Tip(Option<Oid>),
    /// The remote did not answer.
    Offline(String),
}

impl Link1<'_> {
    fn git(&self, args: Vec<OsString>) -> Result<git_process::GitOutput, SyncError> {
        let store = self.repo.store();
        let mut cmd = git_process::command(store.git_dir());
        if let Ok(dir) = std::path::absolute(store.work_dir()) {
            cmd.current_dir(dir);
        }
        cmd.args(args);
        git_process::run(cmd, self.timeout, None).map_err(|e| match e {
            git_process::RunError::Spawn(source) => SyncError::Spawn {
                command: "fetch",
                source,
            },
            _ => SyncError::Timeout {
                remote: self.remote.display.clone(),
                command: "fetch",
                secs: self.timeout.as_secs(),
            },
        })
    }

    fn offline(&self, e: SyncError) -> Result<Fetched, AgentError> {
        if e.is_unreachable() {
            Ok(Fetched::Offline(crate::error_chain(&e)))
        } else {
            Err(e.into())
        }
    }

    /// Fetch one issue ref into its remote-tracking ref.
    fn fetch(&self, issue: IssueId) -> Result<Fetched, AgentError> {
        let refname = layout::issue_ref(issue);
        // A private ref per fetch: agents sharing a clone fetch at once,
        // and git refuses to update a ref another fetch holds locked.
        let tracking = format!(
            "{}claim-{}-{:016x}/{issue}",
            sync::STAGING_ROOT,
            std::process::id(),
            fastrand::u64(..)
        );
        let args: Vec<OsString> = [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--recurse-submodules=no",
            &self.remote.arg,
            &format!("+{refname}:{tracking}"),
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let out = match self.git(args) {
            Ok(o) => o,
            Err(e) => return self.offline(e),
        };
        if !out.status.success() {
            let lower = out.stderr.to_ascii_lowercase();
            if lower.contains("couldn't find remote ref") {
                return Ok(Fetched::Tip(None));
            }
            let e = SyncError::Remote {
                remote: self.remote.display.clone(),
                command: "fetch",
                kind: sync::classify(&out.stderr),
                detail: sync::sanitize(&sync::error_detail(&out.stderr)),
            };
            return self.offline(e);
        }
        let repo = self.repo.store().repo();
        let tip = self.repo.store().read_ref(&repo, &tracking)?;
        let _ = delete_ref(self.repo, &tracking);
        Ok(Fetched::Tip(tip))
    }

    /// Push `commit` to the issue ref if the remote still has `expected`.
    fn push(
        &self,
        issue: IssueId,
        commit: Oid,
        expected: Option<Oid>,
    ) -> Result<Option<PushStatus>, SyncError> {
        let refname = layout::issue_ref(issue);
        let lease = format!(
            "--force-with-lease={refname}:{}",
            expected.map(|o| o.to_string()).unwrap_or_default()
        );
        let args: Vec<OsString> = [
            "push",
            "--porcelain",
            "--no-verify",
            "--no-signed",
            "--no-follow-tags",
            "--recurse-submodules=no",
            &lease,
            &self.remote.arg,
            &format!("{commit}:{refname}"),
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let out = self.git(args)?;
        let parsed = sync::parse_porcelain(&out.stdout);
        if let Some((_, status)) = parsed.into_iter().find(|(r, _)| *r == refname) {
            if status == PushStatus::Pushed || status == PushStatus::UpToDate {
                let tracking = format!("{}{issue}", self.remote.tracking);
                let _ = update_ref(self.repo, &tracking, commit);
            }
            return Ok(Some(status));
        }
        if out.status.success() {
            return Ok(None);
        }
        Err(SyncError::Remote {
            remote: self.remote.display.clone(),
            command: "push",
            kind: sync::classify(&out.stderr),
            detail: sync::sanitize(&sync::error_detail(&out.stderr)),
        })
    }
}

/// Point a remote-tracking ref at what a push landed (best effort: the
/// next fetch corrects it).
fn update_ref(repo: &Repo, refname: &str, oid: Oid) -> Result<(), SyncError> {
    let mut cmd = git_process::command(repo.store().git_dir());
    cmd.args(["update-ref", refname, &oid.to_string()]);
    git_process::run(cmd, Duration::from_secs(30), None)
        .map(|_| ())
        .map_err(|_| SyncError::Timeout {
            remote: String::new(),
            command: "update-ref",
            secs: 30,
        })
}

/// Remove a private ref (best effort: `sync` removes stale ones).
fn delete_ref(repo: &Repo, refname: &str) -> Result<(), SyncError> {
    let mut cmd = git_process::command(repo.store().git_dir());
    cmd.args(["update-ref", "-d", refname]);
    git_process::run(cmd, Duration::from_secs(30), None)
        .map(|_| ())
        .map_err(|_| SyncError::Timeout {
            remote: String::new(),
            command: "update-ref",
            secs: 30,
        })
}

/// Build one event of `actor` on top of the issue's current log.
fn event_on(repo: &Repo, issue: IssueId, actor: &ActorId, op: Op) -> Result<Event, AgentError> {
    Ok(event_at(repo, issue, actor, op)?.0)
}

/// [`event_on`], with the tip of the log it was built on.
fn event_at(
    repo: &Repo,
    issue: IssueId,
    actor: &ActorId,
    op: Op,
) -> Result<(Event, Oid), AgentError> {
    let log = repo.load(issue)?;
    let lamport = log.events.max_lamport().saturating_add(1);
    let event = Event {
        v: op.since_version(),
        issue,
        actor: actor.clone(),
        lamport,
        wall_ms: now_ms(),
        parents: log.events.heads(),
        op,
    };
    event.validate().map_err(RepoError::from)?;
    Ok((event, log.tip))
}

/// Append `event` locally by compare-and-swap on `built_on`, the tip it
/// was built on; `None` if the ref moved (look and build again).
fn append_cas(repo: &Repo, event: &Event, built_on: Oid) -> Result<Option<EventId>, AgentError> {
    let (id, bytes) = event.seal();
    let (base, commit) = repo
        .store()
        .stage_append(event.issue, &[(id, bytes)], event.op.kind())?;
    if base != Some(built_on) {
        return Ok(None);
    }
    if Some(commit) == base {
        return Ok(Some(id));
    }
    Ok(repo
        .store()
        .swap_tip(event.issue, base, commit)?
        .then_some(id))
}

/// Claim `issue` for `actor` (see the module docs).
pub fn claim(
    repo: &Repo,
    issue: IssueId,
    actor: &ActorId,
    opts: &ClaimOptions,
) -> Result<ClaimOutcome, AgentError> {
    let link = match sync::resolve_remote(repo.store(), opts.remote.as_deref()) {
        Ok(remote) => Some(Link1 {
            repo,
            remote,
            timeout: opts.timeout,
        }),
        Err(SyncError::NoRemote { .. }) if opts.remote.is_none() => None,
        Err(e) => return Err(e.into()),
    };
    let ttl_ms = u64::try_from(opts.ttl.as_millis()).unwrap_or(u64::MAX);
    const ATTEMPTS: u32 = 12;
    let mut offline_reason: Option<String> = None;
    for attempt in 1..=ATTEMPTS {
        // 1. The remote's current value, merged in.
        let mut expected: Option<Option<Oid>> = None;
        if let (Some(l), None) = (&link, &offline_reason) {
            match l.fetch(issue)? {
                Fetched::Tip(tip) => {
                    if let Some(t) = tip {
                        repo.store().merge_tip(issue, t)?;
                    }
                    expected = Some(tip);
                }
                Fetched::Offline(why) => offline_reason = Some(why),
            }
        }
        // 2. Who holds it now, at a tip the claim is then built and
        // installed on (a claim by another agent of this clone landing in
        // between sends us round again, so no two agents both see it free).
        let seen = repo.load(issue)?.tip;
        let state = repo.show(issue)?;
        if state.status.is_closed() {
            return Err(RepoError::Rejected(format!(
                "issue {issue} is {}: nothing to claim",
                state.status
            ))
            .into());
        }
        let now = now_ms();
        if let Some(l) = state.claims.holder_at(now) {
            if &l.actor == actor && !opts.renew {
                return Ok(ClaimOutcome::Held {
                    issue,
                    mode: mode_of(&link, &offline_reason),
                    until_ms: l.until_ms,
                    event: None,
                    offline_reason,
                });
            }
            if &l.actor != actor {
                // Recorded as a losing claim: it has the holder's claim in
                // its causal past.
                let event = event_on(
                    repo,
                    issue,
                    actor,
                    Op::Claim {
                        ttl_ms,
                        online: false,
                    },
                )?;
                let (id, bytes) = event.seal();
                repo.store().append(issue, &[(id, bytes)], "claim")?;
                return Ok(ClaimOutcome::Refused {
                    issue,
                    holder: l.actor.clone(),
                    until_ms: l.until_ms,
                    recorded: id,
                });
            }
        }
        // 3. Write the claim: pushed first when online.
        let online = expected.is_some();
        let (event, built_on) = event_at(repo, issue, actor, Op::Claim { ttl_ms, online })?;
        if built_on != seen {
            backoff(attempt);
            continue;
        }
        let until_ms = event
            .wall_ms
            .saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        if let (Some(l), Some(expected)) = (&link, expected) {
            let (id, bytes) = event.seal();
            let (base, commit) = repo.store().stage_append(issue, &[(id, bytes)], "claim")?;
            if base != Some(seen) {
                backoff(attempt);
                continue;
            }
            match l.push(issue, commit, expected) {
                Ok(Some(PushStatus::Pushed | PushStatus::UpToDate)) => {
                    repo.store().merge_tip(issue, commit)?;
                    return Ok(ClaimOutcome::Held {
                        issue,
                        mode: ClaimMode::Online,
                        until_ms,
                        event: Some(id),
                        offline_reason: None,
                    });
                }
                Ok(Some(PushStatus::Rejected {
                    retryable: true, ..
                }))
                | Ok(None) => {
                    backoff(attempt);
                    continue;
                }
                Ok(Some(PushStatus::Rejected { reason, .. } | PushStatus::Other(reason))) => {
                    return Err(SyncError::Remote {
                        remote: l.remote.display.clone(),
                        command: "push",
                        kind: sync::RemoteFailure::Other,
                        detail: sync::sanitize(&reason),
                    }
                    .into())
                }
                Err(e) if e.is_unreachable() => {
                    // Whether it landed is unknown: claim provisionally
                    // (a second claim of ours is a renewal).
                    offline_reason = Some(crate::error_chain(&e));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(id) = append_cas(repo, &event, seen)? {
            return Ok(ClaimOutcome::Held {
                issue,
                mode: mode_of(&link, &offline_reason),
                until_ms,
                event: Some(id),
                offline_reason,
            });
        }
    }
    Err(AgentError::Contended {
        issue,
        attempts: ATTEMPTS,
    })
}

fn mode_of(link: &Option<Link1<'_>>, offline: &Option<String>) -> ClaimMode {
    match (link, offline) {
        (None, _) => ClaimMode::Local,
        (Some(_), Some(_)) => ClaimMode::Provisional,
        (Some(_), None) => ClaimMode::Online,
    }
}

fn backoff(attempt: u32) {
    let cap_ms = (20u64 << attempt.min(5)).min(500);
    std::thread::sleep(Duration::from_millis(fastrand::u64(cap_ms / 4..=cap_ms)));
}

/// Release `issue`: ends the caller's lease and acknowledges its lost
/// claims. Written locally (the next `sync` pushes it). `None` when the
/// caller neither holds the issue nor has an unacknowledged lost claim.
pub fn release(
    repo: &Repo,
    issue: IssueId,
    actor: &ActorId,
) -> Result<Option<EventId>, AgentError> {
    let state = repo.show(issue)?;
    let holds = state
        .claims
        .lease
        .as_ref()
        .is_some_and(|l| &l.actor == actor);
    let unacknowledged = state
        .claims
        .lost
        .iter()
        .any(|l| &l.actor == actor && !l.acknowledged);
    if !holds && !unacknowledged {
        return Ok(None);
    }
    let event = event_on(repo, issue, actor, Op::Release {})?;
    let (id, bytes) = event.seal();
    repo.store().append(issue, &[(id, bytes)], "release")?;
    Ok(Some(id))
}

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
