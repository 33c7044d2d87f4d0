//! Claims with their two guarantees (the ready queue, what is blocked and
//! the cycle check on dependency writes are in [`crate::repo::ready`]).
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

use std::ffi::OsString;
use std::time::Duration;

use serde::Serialize;

use crate::event::{ActorId, Event, EventId, IssueId, Op};
use crate::git;
use crate::git::push::{parse_porcelain, PushStatus};
use crate::git::redact::redact;
use crate::git::remote::{resolve_remote, Remote};
use crate::git::stderr::{classify, error_detail, RemoteFailure};
use crate::repo::{Repo, RepoError};
use crate::store::layout;
use crate::store::{EventStore, Oid, StoreError};
use crate::sync::SyncError;

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

/// The remote side of a claim: where to fetch and push one issue ref.
struct Link1<'r> {
    repo: &'r Repo,
    remote: Remote,
    timeout: Duration,
}

enum Fetched {
    /// The remote's value of the ref (`None`: it has no such ref).
    Tip(Option<Oid>),
    /// The remote did not answer.
    Offline(String),
}

impl Link1<'_> {
    fn git(&self, args: Vec<OsString>) -> Result<git::GitOutput, SyncError> {
        let store = self.repo.store();
        let mut cmd = git::command(store.git_dir());
        if let Ok(dir) = std::path::absolute(store.work_dir()) {
            cmd.current_dir(dir);
        }
        cmd.args(args);
        git::run(cmd, self.timeout, None).map_err(|e| match e {
            git::RunError::Spawn(source) => SyncError::Spawn {
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
            crate::sync::STAGING_ROOT,
            std::process::id(),
            fastrand::u64(..)
        );
        let refspec = format!("+{refname}:{tracking}");
        let args: Vec<OsString> = git::FETCH_CONFIG
            .iter()
            .chain(&["fetch"])
            .chain(&git::FETCH_FLAGS)
            .chain(&[self.remote.arg.as_str(), &refspec])
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
                kind: classify(&out.stderr),
                detail: redact(&error_detail(&out.stderr)),
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
        let refspec = format!("{commit}:{refname}");
        let args: Vec<OsString> = ["push"]
            .iter()
            .chain(&git::PUSH_FLAGS)
            .chain(&[lease.as_str(), &self.remote.arg, &refspec])
            .map(OsString::from)
            .collect();
        let out = self.git(args)?;
        let parsed = parse_porcelain(&out.stdout);
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
            kind: classify(&out.stderr),
            detail: redact(&error_detail(&out.stderr)),
        })
    }
}

/// Point a remote-tracking ref at what a push landed (best effort: the
/// next fetch corrects it).
fn update_ref(repo: &Repo, refname: &str, oid: Oid) -> Result<(), SyncError> {
    let mut cmd = git::command(repo.store().git_dir());
    cmd.args(["update-ref", refname, &oid.to_string()]);
    git::run(cmd, Duration::from_secs(30), None)
        .map(|_| ())
        .map_err(|_| SyncError::Timeout {
            remote: String::new(),
            command: "update-ref",
            secs: 30,
        })
}

/// Remove a private ref (best effort: `sync` removes stale ones).
fn delete_ref(repo: &Repo, refname: &str) -> Result<(), SyncError> {
    let mut cmd = git::command(repo.store().git_dir());
    cmd.args(["update-ref", "-d", refname]);
    git::run(cmd, Duration::from_secs(30), None)
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
        wall_ms: crate::time::now_millis(),
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
    let link = match resolve_remote(repo.store(), opts.remote.as_deref()) {
        Ok(remote) => Some(Link1 {
            repo,
            remote,
            timeout: opts.timeout,
        }),
        Err(_) if opts.remote.is_none() => None,
        Err(e) => return Err(SyncError::from(e).into()),
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
        let now = crate::time::now_millis();
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
                        kind: RemoteFailure::Other,
                        detail: redact(&reason),
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
    std::thread::sleep(crate::time::backoff(
        attempt,
        Duration::from_millis(20),
        Duration::from_millis(500),
    ));
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
