//! Sync through git remotes: fetch the event refs, merge what diverged with
//! the CRDT, push, and answer a rejected push by fetching, merging and
//! pushing again.
//!
//! The transport is the system `git` (so users' remotes, URLs, ssh config,
//! credential helpers and `remote.<name>.pushurl` just work), run with
//! `GIT_TERMINAL_PROMPT=0` and a timeout. What the remote last showed us is
//! kept in remote-tracking refs `refs/reposix-remotes/<remote>/issues/<id>`,
//! outside `refs/reposix/` so that a plain `git fetch 'refs/reposix/*:…'` of
//! this repository does not drag them along.
//!
//! Guarantees:
//! - local issue refs only move through [`EventStore::merge_tip`]: history
//!   is never rewritten and a ref never loses an event it had;
//! - a ref is pushed only if it differs from the remote-tracking value and
//!   descends from it, never with `+`: the values are staged under
//!   [`STAGING_ROOT`] (unless every issue ref is pushed, as in a first
//!   push) and pushed by one pattern refspec, each ref with
//!   `--force-with-lease=<ref>:<tracking value, or empty if new>` (a round
//!   of more than [`SyncOptions::lease_limit`] refs goes without: leases
//!   are redundant without `+` and cost git O(remote refs x leases)).
//!   A matching lease lets git force a non-fast-forward, which is why
//!   descent is checked here first;
//! - results are per issue: a rejected or damaged issue does not hold back
//!   the others; a rejection is answered by fetch, merge, push with bounded,
//!   jittered exponential backoff, and what is still behind is reported;
//! - events that a forced plain `git fetch +refs/reposix/*:…` dropped from a
//!   local ref are found in the ref's reflog at the start of a sync and
//!   merged back;
//! - credentials never reach our output: git's messages are passed through
//!   [`crate::git::redact::redact`], and we never build a URL.

pub mod claims;
pub mod tracker;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gix::bstr::ByteSlice;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use serde::Serialize;

use crate::event::IssueId;
use crate::git::push::{parse_porcelain, PushStatus};
use crate::git::redact::redact;
use crate::git::remote::{resolve_remote, NoRemote, Remote, TRACKING_ROOT};
use crate::git::stderr::{classify, error_detail, RemoteFailure};
use crate::git::{self, GitOutput, RunError};
use crate::store::cache::{StateCache, CACHE_MIN_BODY, CACHE_MIN_EVENTS};
use crate::store::layout::ISSUE_REF_PREFIX;
use crate::store::{EventStore, GitEventStore, MergeOutcome, Oid, StoreError};

/// File under `.git/reposix/` holding when the last reflog scan started.
const REFLOG_MARK: &str = "sync-reflog-mark";

/// Reflogs modified this long before the last scan are looked at again
/// (coarse file-system clocks).
const MTIME_SLACK: Duration = Duration::from_secs(2);

/// Budget for the arguments of one `git push` (the OS limits argv; a round
/// with more leases than fit is split into several invocations).
const ARGV_BUDGET: usize = 512 * 1024;

/// Private namespace where a push stages the values it pushes, one
/// sub-namespace per `git push` (`<pid>-<random>/issues/<id>`), removed
/// when the push returns.
pub const STAGING_ROOT: &str = "refs/reposix-push/";

/// Staging namespaces older than this were left by a killed sync.
const STALE_STAGING: Duration = Duration::from_secs(3600);

/// Errors from sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The remote is neither configured nor a URL or path.
    #[error("no remote {name:?}: not a configured remote, a URL or a path")]
    NoRemote {
        /// The name asked for.
        name: String,
    },
    /// `git` could not be started or waited for.
    #[error("cannot run `git {command}`")]
    Spawn {
        /// The subcommand.
        command: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `git` failed talking to the remote.
    #[error("`git {command}` with {remote} failed ({kind}): {detail}")]
    Remote {
        /// The remote (sanitized).
        remote: String,
        /// The subcommand.
        command: &'static str,
        /// What kind of failure git's message describes.
        kind: RemoteFailure,
        /// git's message (sanitized, shortened).
        detail: String,
    },
    /// `git` did not finish in time (and was killed).
    #[error("`git {command}` with {remote} did not finish within {secs} s")]
    Timeout {
        /// The remote (sanitized).
        remote: String,
        /// The subcommand.
        command: &'static str,
        /// The limit.
        secs: u64,
    },
    /// The local store failed (not a per-issue problem: listing refs).
    #[error("{what}")]
    Store {
        /// What was being done.
        what: String,
        /// The store error.
        #[source]
        source: StoreError,
    },
    /// gix failed reading or updating the repository.
    #[error("{what}")]
    Repo {
        /// What was being done.
        what: String,
        /// The gix error.
        #[source]
        source: gix::Error,
    },
    /// Reading or writing one of reposix's files.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl From<NoRemote> for SyncError {
    fn from(e: NoRemote) -> SyncError {
        SyncError::NoRemote { name: e.name }
    }
}

impl SyncError {
    /// Whether the remote could not be reached (network down, host unknown,
    /// connection refused, timeout): try again later; nothing local changed.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            SyncError::Timeout { .. }
                | SyncError::Remote {
                    kind: RemoteFailure::Unreachable,
                    ..
                }
        )
    }
}

/// Which halves of a sync to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Fetch, merge, push.
    #[default]
    Both,
    /// Fetch and merge only.
    Pull,
    /// Push only (a rejection still fetches and merges before retrying).
    Push,
}

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Remote name, URL or path; `None`: the current branch's remote, else
    /// `origin`.
    pub remote: Option<String>,
    /// Which halves to run.
    pub direction: Direction,
    /// Push attempts before reporting an issue as still behind (at least 1).
    pub max_rounds: u32,
    /// Limit for each `git` invocation.
    pub timeout: Duration,
    /// A push round with more refs than this carries no leases. They are
    /// redundant without `+` (git refuses non-fast-forwards, and the remote
    /// applies each update as a compare-and-swap against the value it
    /// advertised), and git checks them in O(remote refs x leases):
    /// measured, leases on 10,000 new refs cost 25 s of an initial push.
    pub lease_limit: usize,
}

impl Default for SyncOptions {
    fn default() -> SyncOptions {
        SyncOptions {
            remote: None,
            direction: Direction::Both,
            max_rounds: 7,
            timeout: Duration::from_secs(120),
            lease_limit: 500,
        }
    }
}

/// One issue that a sync could not complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueProblem {
    /// The issue.
    pub issue: IssueId,
    /// Why (sanitized).
    pub reason: String,
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Reflog recovery scan.
    pub recover_ms: f64,
    /// `git fetch` (all rounds).
    pub fetch_ms: f64,
    /// Comparing and merging (all rounds).
    pub merge_ms: f64,
    /// `git push` (all rounds).
    pub push_ms: f64,
    /// Checking that local logs about to be pushed are not damaged (part
    /// of `merge_ms`).
    pub verify_ms: f64,
}

/// What a sync did. Counts are of issues.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// The remote (sanitized).
    pub remote: String,
    /// Which halves ran.
    pub direction: Direction,
    /// Issues whose remote value changed since we last looked.
    pub fetched: usize,
    /// Issues new here, taken from the remote.
    pub created: usize,
    /// Local refs fast-forwarded to the remote's value.
    pub fast_forwarded: usize,
    /// Local refs joined with the remote's by a merge commit.
    pub merged: usize,
    /// Issues whose reflog held events a forced plain `git fetch` had
    /// dropped from the ref, merged back.
    pub recovered: Vec<IssueId>,
    /// Issues pushed.
    pub pushed: usize,
    /// `git push` rounds run (0 when there was nothing to push).
    pub rounds: u32,
    /// Issues pushed again after a rejection.
    pub retried: Vec<IssueId>,
    /// Issues the remote still has changes for that we could not push over
    /// when the rounds ran out (local work is kept; sync again).
    pub behind: Vec<IssueId>,
    /// Issues the remote refused for good (e.g. a hook); not retried.
    pub rejected: Vec<IssueProblem>,
    /// Issues whose remote log (or a reflog entry) does not load or
    /// breaks the clock rule (damaged, or a newer format): not merged, left
    /// as they were locally, and not pushed over.
    pub damaged: Vec<IssueProblem>,
    /// Local issues whose log is damaged (does not load, breaks the clock
    /// rule, does not fold): not pushed, so the damage does not spread.
    pub damaged_local: Vec<IssueProblem>,
    /// Ref lock files left by a killed writer that were removed (and, in
    /// a remote on this machine, pack keep files a killed `receive-pack`
    /// left).
    pub stale_locks: Vec<String>,
    /// Where the time went.
    pub timings: Timings,
}

impl SyncReport {
    /// Whether every issue ended in step with the remote: nothing behind,
    /// refused or damaged on either side.
    pub fn is_complete(&self) -> bool {
        self.behind.is_empty()
            && self.rejected.is_empty()
            && self.damaged.is_empty()
            && self.damaged_local.is_empty()
    }
}

/// The old and new values named by a reflog (`<old> <new> <ident>\t<message>`
/// per line), newest first, each once. Lines that do not parse are
/// skipped.
pub fn reflog_oids(text: impl std::io::BufRead) -> std::io::Result<Vec<Oid>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for line in text.split(b'\n') {
        let line = line?;
        let mut words = line.split(|b| *b == b' ');
        for word in [words.next(), words.next()].into_iter().flatten() {
            if let Ok(oid) = Oid::from_hex(word) {
                if !oid.is_null() && seen.insert(oid) {
                    out.push(oid);
                }
            }
        }
    }
    out.reverse();
    Ok(out)
}

/// What [`recover_from_reflogs`] did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Issues whose dropped commits were merged back.
    pub recovered: Vec<IssueId>,
    /// Reflog entries that could not be merged, per issue.
    pub damaged: BTreeMap<IssueId, String>,
}

/// The local issue refs' tips (issue refs only), for
/// [`recover_from_reflogs`].
pub fn local_issue_tips(store: &GitEventStore) -> Result<BTreeMap<IssueId, Oid>, SyncError> {
    tips_under(store, ISSUE_REF_PREFIX)
}

/// The issue refs under `prefix` and their tips.
fn tips_under(store: &GitEventStore, prefix: &str) -> Result<BTreeMap<IssueId, Oid>, SyncError> {
    let refs = store
        .list_refs_under(prefix)
        .map_err(|source| SyncError::Store {
            what: format!("listing refs under {prefix}"),
            source,
        })?;
    Ok(refs
        .into_iter()
        .filter_map(|r| Some((r.issue?, r.tip)))
        .collect())
}

/// Merge back commits a forced plain `git fetch` (or any other non-reposix
/// ref update) dropped from a local issue ref (`local`: the issue refs and
/// their tips): its reflog still names them. Only reflogs modified since
/// the last scan are read, each in full, so the recovery holds however
/// many writes followed the overwrite; what bounds it is git's reflog
/// expiry (an entry for a commit no longer reachable from the ref is
/// dropped by `git gc` after `gc.reflogExpireUnreachable`, 30 days by
/// default). Both syncs run it first: a tracker sync working from a log
/// that lost its own export records would export and import again what
/// they record.
pub fn recover_from_reflogs(
    store: &GitEventStore,
    repo: &gix::Repository,
    local: &BTreeMap<IssueId, Oid>,
) -> Result<Recovery, SyncError> {
    let mut out = Recovery::default();
    let started = SystemTime::now();
    let mark_path = store.reposix_dir().join(REFLOG_MARK);
    let since = std::fs::read_to_string(&mark_path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .and_then(|ns| (UNIX_EPOCH + Duration::from_nanos(ns)).checked_sub(MTIME_SLACK));
    let logs = repo.common_dir().join("logs");
    for (&issue, &tip) in local {
        let refname = crate::store::layout::issue_ref(issue);
        let path = logs.join(&refname);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // no reflog: nothing to recover
        };
        if let (Some(since), Ok(modified)) = (since, meta.modified()) {
            if modified < since {
                continue;
            }
        }
        let file = std::fs::File::open(&path).map_err(|source| SyncError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let oids = reflog_oids(std::io::BufReader::new(file)).map_err(|source| SyncError::Io {
            path: path.display().to_string(),
            source,
        })?;
        // Commits the ref holds now; recomputed after each merge.
        let mut held: Option<HashSet<Oid>> = None;
        for oid in oids {
            if oid == tip || !repo.has_object(oid) {
                continue;
            }
            let held = match &mut held {
                Some(h) => h,
                None => held.insert(ancestry(store, repo, &refname)),
            };
            if held.contains(&oid) {
                continue;
            }
            match store.merge_tip(issue, oid) {
                Ok(outcome) => {
                    held.clear();
                    held.extend(ancestry(store, repo, &refname));
                    if outcome != MergeOutcome::UpToDate && !out.recovered.contains(&issue) {
                        out.recovered.push(issue);
                    }
                }
                Err(e) => {
                    // Not merged: do not try this entry again below.
                    held.insert(oid);
                    out.damaged.insert(
                        issue,
                        format!("reflog entry {oid}: {}", crate::error_chain(&e)),
                    );
                }
            }
        }
    }
    let stamp = started
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    write_atomic(&mark_path, &format!("{stamp}\n"))?;
    Ok(out)
}

/// Every commit reachable from `refname` now (empty if unreadable).
fn ancestry(store: &GitEventStore, repo: &gix::Repository, refname: &str) -> HashSet<Oid> {
    let Ok(Some(tip)) = store.read_ref(repo, refname) else {
        return HashSet::new();
    };
    let mut out = HashSet::new();
    if let Ok(walk) = repo.rev_walk([tip]).all() {
        for info in walk.flatten() {
            out.insert(info.id);
        }
    }
    out.insert(tip);
    out
}

/// Sync the store with a remote. See the module docs for what it
/// guarantees. Per-issue problems land in the report; an `Err` means the
/// remote could not be talked to at all (local state is intact either way).
pub fn sync(store: &GitEventStore, opts: &SyncOptions) -> Result<SyncReport, SyncError> {
    let remote = resolve_remote(store, opts.remote.as_deref())?;
    let mut s = Session {
        store,
        repo: store.repo(),
        report: SyncReport {
            remote: remote.display.clone(),
            direction: opts.direction,
            ..SyncReport::default()
        },
        remote,
        opts,
        local: BTreeMap::new(),
        tracking: None,
        fetched: BTreeSet::new(),
        damaged: BTreeMap::new(),
        damaged_local: BTreeMap::new(),
        verified: BTreeMap::new(),
        rejected: BTreeMap::new(),
        pushed: BTreeSet::new(),
        retried: BTreeSet::new(),
    };
    s.run()?;
    Ok(s.finish())
}

struct Session<'a> {
    store: &'a GitEventStore,
    repo: gix::Repository,
    remote: Remote,
    opts: &'a SyncOptions,
    report: SyncReport,
    /// Local issue refs as last read or written by this session.
    local: BTreeMap<IssueId, Oid>,
    /// Remote-tracking refs as last read or written (`None`: not read yet).
    tracking: Option<BTreeMap<IssueId, Oid>>,
    fetched: BTreeSet<IssueId>,
    damaged: BTreeMap<IssueId, String>,
    damaged_local: BTreeMap<IssueId, String>,
    /// Local tips checked healthy in this session.
    verified: BTreeMap<IssueId, Oid>,
    rejected: BTreeMap<IssueId, String>,
    pushed: BTreeSet<IssueId>,
    retried: BTreeSet<IssueId>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn problems(map: BTreeMap<IssueId, String>) -> Vec<IssueProblem> {
    map.into_iter()
        .map(|(issue, reason)| IssueProblem { issue, reason })
        .collect()
}

/// Jittered exponential backoff before push round `round + 1`.
fn backoff(round: u32) {
    std::thread::sleep(crate::time::backoff(
        round,
        Duration::from_millis(50),
        Duration::from_secs(2),
    ));
}

impl Session<'_> {
    /// The git directory of the remote when it is a repository on this
    /// machine (a path or `file://` URL; relative to where git runs, the
    /// top of this repository), else `None`.
    fn local_remote_dir(&self) -> Option<PathBuf> {
        let config = self.repo.config_snapshot();
        let url = ["pushurl", "url"]
            .iter()
            .find_map(|key| {
                config
                    .string(format!("remote.{}.{key}", self.remote.arg).as_str())
                    .map(|v| v.to_str_lossy().into_owned())
            })
            .unwrap_or_else(|| self.remote.arg.clone());
        let path = match url.strip_prefix("file://") {
            Some(p) => p,
            None if url.contains("://") => return None,
            // scp-like `host:path`
            None if url.split('/').next().is_some_and(|s| s.contains(':')) => return None,
            None => &url,
        };
        let top = match self.store.git_dir().file_name() {
            Some(name) if name == ".git" => self.store.git_dir().parent()?.to_path_buf(),
            _ => self.store.git_dir().to_path_buf(),
        };
        let path = top.join(path);
        let git_dir = if path.join(".git").is_dir() {
            path.join(".git")
        } else {
            path
        };
        git_dir.join("HEAD").is_file().then_some(git_dir)
    }

    fn run(&mut self) -> Result<(), SyncError> {
        // Locks a killed sync (or a git it ran) left would wedge every
        // later one: clear the stale ones in each namespace we write.
        self.report.stale_locks = self
            .store
            .clear_stale_locks(&["refs/reposix/", TRACKING_ROOT, STAGING_ROOT])
            .into_iter()
            .chain(
                // A remote on this machine: a `receive-pack` killed with a
                // sync leaves its locks there, and each later push of
                // those issues is refused.
                // Its keep files too: one left by a `receive-pack` killed
                // after moving its pack into place refuses every later
                // push of the same objects.
                self.local_remote_dir()
                    .map(|dir| {
                        let mut cleared =
                            crate::store::git::clear_stale_locks_in(&dir, &["refs/reposix/"]);
                        cleared.extend(crate::store::git::clear_stale_keeps_in(&dir));
                        cleared
                    })
                    .unwrap_or_default(),
            )
            .map(|p| p.display().to_string())
            .collect();
        self.local = self.local_tips()?;
        let started = Instant::now();
        self.recover_from_reflogs()?;
        self.report.timings.recover_ms = ms(started.elapsed());
        if self.opts.direction != Direction::Push {
            self.fetch()?;
        }
        // Also with --push: whatever an earlier fetch left in the tracking
        // refs is merged before pushing over it.
        self.merge_remote()?;
        if self.opts.direction != Direction::Pull {
            self.clean_stale_staging()?;
            self.push_rounds()?;
        }
        Ok(())
    }

    fn finish(self) -> SyncReport {
        let mut report = self.report;
        report.fetched = self.fetched.len();
        report.pushed = self.pushed.len();
        report.retried = self.retried.into_iter().collect();
        report.rejected = problems(self.rejected);
        report.damaged = problems(self.damaged);
        report.damaged_local = problems(self.damaged_local);
        report
    }

    /// Re-read one local ref after this session moved it.
    fn refresh_local(&mut self, issue: IssueId) {
        let refname = crate::store::layout::issue_ref(issue);
        match self.store.read_ref(&self.repo, &refname) {
            Ok(Some(tip)) => {
                self.local.insert(issue, tip);
            }
            // Unreadable now: list it again next time rather than guess.
            _ => {
                self.local.remove(&issue);
            }
        }
    }

    /// The remote-tracking refs, read once and then kept up to date.
    fn tracking(&mut self) -> Result<BTreeMap<IssueId, Oid>, SyncError> {
        if self.tracking.is_none() {
            self.tracking = Some(self.tracking_tips()?);
        }
        Ok(self.tracking.clone().unwrap_or_default())
    }

    fn local_tips(&self) -> Result<BTreeMap<IssueId, Oid>, SyncError> {
        self.tips(ISSUE_REF_PREFIX)
    }

    fn tracking_tips(&self) -> Result<BTreeMap<IssueId, Oid>, SyncError> {
        self.tips(&self.remote.tracking)
    }

    fn tips(&self, prefix: &str) -> Result<BTreeMap<IssueId, Oid>, SyncError> {
        tips_under(self.store, prefix)
    }

    /// Whether `tip` contains `other` (equal, or `other` is an ancestor).
    fn contains(&self, tip: Oid, other: Oid) -> bool {
        tip == other
            || matches!(self.repo.merge_base(other, tip), Ok(Some(base)) if base.detach() == other)
    }

    /// [`recover_from_reflogs`] for this session's local refs.
    fn recover_from_reflogs(&mut self) -> Result<(), SyncError> {
        let recovery = recover_from_reflogs(self.store, &self.repo, &self.local)?;
        for issue in recovery.recovered {
            self.refresh_local(issue);
            self.report.recovered.push(issue);
        }
        self.damaged.extend(recovery.damaged);
        Ok(())
    }

    fn fetch(&mut self) -> Result<(), SyncError> {
        let started = Instant::now();
        let before = match self.tracking.take() {
            Some(t) => t,
            None => self.tracking_tips()?,
        };
        let refspec = format!("+{ISSUE_REF_PREFIX}*:{}*", self.remote.tracking);
        let args: Vec<OsString> = git::FETCH_CONFIG
            .iter()
            .chain(&["fetch"])
            .chain(&git::FETCH_FLAGS)
            .chain(&[
                "--no-show-forced-updates",
                "--prune",
                &self.remote.arg,
                &refspec,
            ])
            .map(OsString::from)
            .collect();
        // A concurrent sync in this repository may hold a tracking ref's lock.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let out = self.git("fetch", &args)?;
            if out.status.success() {
                break;
            }
            let lower = out.stderr.to_ascii_lowercase();
            let lock =
                lower.contains("cannot lock ref") || lower.contains("unable to update local");
            if !lock || attempt >= 4 {
                return Err(self.remote_error("fetch", &out.stderr));
            }
            backoff(attempt);
        }
        let after = self.tracking_tips()?;
        for (issue, tip) in &after {
            if before.get(issue) != Some(tip) {
                self.fetched.insert(*issue);
            }
        }
        self.tracking = Some(after);
        self.report.timings.fetch_ms += ms(started.elapsed());
        Ok(())
    }

    /// Bring every local issue ref up to its remote-tracking value: create,
    /// fast-forward or merge; leave it where it is ahead.
    fn merge_remote(&mut self) -> Result<(), SyncError> {
        let started = Instant::now();
        for (issue, theirs) in self.tracking()? {
            if let Some(ours) = self.local.get(&issue) {
                if self.contains(*ours, theirs) {
                    continue;
                }
            }
            let merged = self.store.merge_tip(issue, theirs);
            if merged.is_ok() {
                self.refresh_local(issue);
            }
            match merged {
                Ok(MergeOutcome::Created) => self.report.created += 1,
                Ok(MergeOutcome::FastForward) => self.report.fast_forwarded += 1,
                Ok(MergeOutcome::Merged) => self.report.merged += 1,
                Ok(MergeOutcome::UpToDate) => {}
                Err(e) => {
                    self.damaged.insert(issue, crate::error_chain(&e));
                }
            }
        }
        self.report.timings.merge_ms += ms(started.elapsed());
        Ok(())
    }

    fn push_rounds(&mut self) -> Result<(), SyncError> {
        let mut round = 0;
        loop {
            let started = Instant::now();
            let tracking = self.tracking()?;
            let mut todo = Vec::new();
            let mut stuck = Vec::new();
            for (issue, ours) in self.local.clone() {
                if self.damaged.contains_key(&issue)
                    || self.damaged_local.contains_key(&issue)
                    || self.rejected.contains_key(&issue)
                {
                    continue;
                }
                let theirs = tracking.get(&issue).copied();
                match theirs {
                    Some(t) if t == ours => continue,
                    // Pushing this with a lease on `t` would force it over
                    // the remote's events: it must wait for a merge.
                    Some(t) if !self.contains(ours, t) => stuck.push(issue),
                    // Damage is never pushed: it would spread to every clone.
                    _ if !self.verify_local(issue, ours) => {}
                    _ => todo.push((issue, ours, theirs)),
                }
            }
            self.report.timings.merge_ms += ms(started.elapsed());
            if todo.is_empty() {
                self.report.behind = stuck;
                return Ok(());
            }
            round += 1;
            self.report.rounds = round;
            let started = Instant::now();
            let results = self.push(&todo)?;
            self.report.timings.push_ms += ms(started.elapsed());
            let mut again = stuck;
            let mut landed = Vec::new();
            for (issue, ours, _) in &todo {
                let refname = crate::store::layout::issue_ref(*issue);
                match results.get(&refname) {
                    Some(PushStatus::Pushed) => {
                        self.pushed.insert(*issue);
                        landed.push((refname, *ours));
                    }
                    Some(PushStatus::UpToDate) => landed.push((refname, *ours)),
                    Some(PushStatus::Rejected {
                        retryable: true, ..
                    })
                    | None => again.push(*issue),
                    Some(PushStatus::Rejected { reason, .. } | PushStatus::Other(reason)) => {
                        self.rejected.insert(*issue, redact(reason));
                    }
                }
            }
            self.set_tracking(&landed)?;
            if again.is_empty() {
                return Ok(());
            }
            if round >= self.opts.max_rounds.max(1) {
                self.report.behind = again;
                return Ok(());
            }
            self.retried.extend(again);
            backoff(round);
            self.fetch()?;
            self.merge_remote()?;
        }
    }

    /// One round of pushes: one `git push` (more only if the leases would
    /// overflow argv). The values to push are staged in a private namespace
    /// and pushed with one pattern refspec: git matches every explicit
    /// refspec against every local ref (measured: 1,000 `<oid>:<ref>`
    /// refspecs in a repository of 4,000 refs cost 7 s of CPU in
    /// `git push`), a pattern costs one pass.
    fn push(
        &mut self,
        todo: &[(IssueId, Oid, Option<Oid>)],
    ) -> Result<BTreeMap<String, PushStatus>, SyncError> {
        let mut results = BTreeMap::new();
        let with_leases = todo.len() <= self.opts.lease_limit;
        let mut rest = todo;
        while !rest.is_empty() {
            let mut leases = Vec::new();
            let mut size = 0;
            for (issue, _, theirs) in rest.iter().take_while(|_| with_leases) {
                let lease = format!(
                    "--force-with-lease={}:{}",
                    crate::store::layout::issue_ref(*issue),
                    theirs.map(|t| t.to_string()).unwrap_or_default()
                );
                size += lease.len() + 1 + std::mem::size_of::<usize>();
                if !leases.is_empty() && size > ARGV_BUDGET {
                    break;
                }
                leases.push(lease);
            }
            let (chunk, tail) = rest.split_at(if with_leases {
                leases.len()
            } else {
                rest.len()
            });
            rest = tail;
            // Pushing every issue ref at the values checked (a first push
            // to a remote): push them in place, no staging needed.
            let (source, staged) = if self.is_every_issue_ref(chunk)? {
                (ISSUE_REF_PREFIX.to_owned(), Vec::new())
            } else {
                let staging = format!(
                    "{STAGING_ROOT}{}-{:016x}/issues/",
                    std::process::id(),
                    fastrand::u64(..)
                );
                let staged: Vec<(String, Option<Oid>)> = chunk
                    .iter()
                    .map(|(issue, ours, _)| (format!("{staging}{issue}"), Some(*ours)))
                    .collect();
                self.edit_refs(&staged, "staging refs to push")?;
                (staging, staged)
            };
            // Per-issue results: no all-or-nothing push.
            let mut args: Vec<OsString> = ["push"]
                .iter()
                .chain(&git::PUSH_FLAGS)
                .chain(&["--no-atomic"])
                .map(OsString::from)
                .collect();
            args.extend(leases.into_iter().map(OsString::from));
            args.push(OsString::from(&self.remote.arg));
            args.push(OsString::from(format!("{source}*:{ISSUE_REF_PREFIX}*")));
            let out = self.git("push", &args);
            let unstaged: Vec<(String, Option<Oid>)> =
                staged.into_iter().map(|(name, _)| (name, None)).collect();
            // Left-overs are harmless (outside refs/reposix/) and removed
            // by a later sync once stale.
            let _ = self.edit_refs(&unstaged, "removing staged refs");
            let out = out?;
            let parsed = parse_porcelain(&out.stdout);
            if !out.status.success() && parsed.is_empty() {
                return Err(self.remote_error("push", &out.stderr));
            }
            results.extend(parsed);
        }
        Ok(results)
    }

    /// Whether `chunk` holds exactly the refs under `refs/reposix/issues/`,
    /// each at the value listed there now.
    fn is_every_issue_ref(&self, chunk: &[(IssueId, Oid, Option<Oid>)]) -> Result<bool, SyncError> {
        if chunk.len() != self.local.len() {
            return Ok(false);
        }
        let now = self
            .store
            .list_refs_under(ISSUE_REF_PREFIX)
            .map_err(|source| SyncError::Store {
                what: format!("listing refs under {ISSUE_REF_PREFIX}"),
                source,
            })?;
        let want: BTreeMap<IssueId, Oid> = chunk.iter().map(|(i, o, _)| (*i, *o)).collect();
        Ok(now.len() == want.len()
            && now
                .iter()
                .all(|r| r.issue.is_some_and(|i| want.get(&i) == Some(&r.tip))))
    }

    /// Whether the local log at `tip` is healthy enough to push: it loads
    /// (layout, hashes, decoding), keeps the clock rule and folds (through
    /// the state cache when the cache keeps it). A damaged one is recorded
    /// in `damaged_local`.
    fn verify_local(&mut self, issue: IssueId, tip: Oid) -> bool {
        if self.verified.get(&issue) == Some(&tip) {
            return true;
        }
        let started = Instant::now();
        let healthy = self.check_local(issue, tip);
        self.report.timings.verify_ms += ms(started.elapsed());
        healthy
    }

    fn check_local(&mut self, issue: IssueId, tip: Oid) -> bool {
        let refname = crate::store::layout::issue_ref(issue);
        let checked = self
            .store
            .load_commit(&self.repo, &refname, issue, tip)
            .and_then(|set| {
                if !set.invalid().is_empty() {
                    return Err(StoreError::InvalidEvents {
                        refname: refname.clone(),
                        invalid: set
                            .invalid()
                            .iter()
                            .map(|(id, why)| (*id, why.clone()))
                            .collect(),
                    });
                }
                // A log the state cache keeps (deep, or a large body) folds
                // through it: a state cached for this tip is an earlier fold
                // of these very events (the fold is a function of them), and
                // one cached for an older tip is advanced as every reader
                // does (a 1 MiB body written and rewritten: ~1 GB folded
                // whole, ~50 MB from the saved document). Any other log is
                // folded from the events just read, not read again.
                let body_bytes: usize = set.body_changes().iter().map(|c| c.0.len()).sum();
                if set.len() < CACHE_MIN_EVENTS && body_bytes < CACHE_MIN_BODY {
                    return set
                        .fold(issue)
                        .map(drop)
                        .map_err(|source| StoreError::Fold {
                            refname: refname.clone(),
                            source,
                        });
                }
                drop(set);
                StateCache::new(self.store)
                    .get(&self.repo, &refname, issue, tip)
                    .map(drop)
            });
        match checked {
            Ok(_) => {
                self.verified.insert(issue, tip);
                true
            }
            Err(e) => {
                self.damaged_local.insert(issue, crate::error_chain(&e));
                false
            }
        }
    }

    /// Remove staging namespaces a killed sync left behind (older than
    /// [`STALE_STAGING`]; a running sync's are younger).
    fn clean_stale_staging(&self) -> Result<(), SyncError> {
        let dir = self.repo.common_dir().join(STAGING_ROOT);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok());
            if age.is_none_or(|a| a < STALE_STAGING) {
                continue;
            }
            let prefix = format!("{STAGING_ROOT}{}/", entry.file_name().to_string_lossy());
            let names: Vec<(String, Option<Oid>)> = self
                .repo
                .references()
                .and_then(|p| {
                    Ok(p.prefixed(prefix.trim_end_matches('/'))?
                        .filter_map(Result::ok)
                        .map(|r| (r.name().as_bstr().to_str_lossy().into_owned(), None))
                        .collect())
                })
                .map_err(|source| SyncError::Repo {
                    what: format!("listing refs under {prefix}"),
                    source,
                })?;
            self.edit_refs(&names, "removing stale staged refs")?;
            let _ = std::fs::remove_dir_all(entry.path());
        }
        Ok(())
    }

    /// Record what the remote now has for refs that landed.
    fn set_tracking(&mut self, landed: &[(String, Oid)]) -> Result<(), SyncError> {
        let edits: Vec<(String, Option<Oid>)> = landed
            .iter()
            .map(|(refname, oid)| {
                let rest = refname
                    .strip_prefix(ISSUE_REF_PREFIX)
                    .expect("BUG: issue refs start with the issue prefix");
                (format!("{}{rest}", self.remote.tracking), Some(*oid))
            })
            .collect();
        if self
            .edit_refs(&edits, "updating remote-tracking refs")
            .is_err()
        {
            // Only a cache of what the remote has (e.g. a concurrent sync
            // holds a lock): a stale value costs a rejected push and a
            // retry, never data. Read the refs again next time.
            self.tracking = None;
            return Ok(());
        }
        let tracking = self.tracking.get_or_insert_with(BTreeMap::new);
        for (refname, oid) in landed {
            if let Some(issue) = refname
                .strip_prefix(ISSUE_REF_PREFIX)
                .and_then(|id| id.parse().ok())
            {
                tracking.insert(issue, *oid);
            }
        }
        Ok(())
    }

    /// Set (`Some`) or delete (`None`) refs outside `refs/reposix/`, in one
    /// transaction, whatever they held before.
    fn edit_refs(&self, edits: &[(String, Option<Oid>)], what: &str) -> Result<(), SyncError> {
        if edits.is_empty() {
            return Ok(());
        }
        let edits: Vec<RefEdit> = edits
            .iter()
            .map(|(name, oid)| RefEdit {
                change: match oid {
                    Some(oid) => Change::Update {
                        log: LogChange {
                            mode: RefLog::AndReference,
                            force_create_reflog: false,
                            message: "reposix sync".into(),
                        },
                        expected: PreviousValue::Any,
                        new: gix::refs::Target::Object(*oid),
                    },
                    None => Change::Delete {
                        expected: PreviousValue::Any,
                        log: RefLog::AndReference,
                    },
                },
                name: name
                    .as_str()
                    .try_into()
                    .expect("BUG: our prefixes and issue ids form valid ref names"),
                deref: false,
            })
            .collect();
        let sig = gix::actor::Signature {
            name: "reposix".into(),
            email: "reposix@reposix".into(),
            time: gix::date::Time::now_utc(),
        };
        let mut time_buf = gix::date::parse::TimeBuf::default();
        self.repo
            .edit_references_as(edits, Some(sig.to_ref(&mut time_buf)))
            .map_err(|source| SyncError::Repo {
                what: what.to_owned(),
                source,
            })?;
        Ok(())
    }

    fn remote_error(&self, command: &'static str, stderr: &str) -> SyncError {
        SyncError::Remote {
            remote: self.remote.display.clone(),
            command,
            kind: classify(stderr),
            detail: redact(&error_detail(stderr)),
        }
    }

    /// Run `git` against this repository: no prompts, a timeout, stdin
    /// closed. A failed exit status is the caller's to interpret.
    fn git(&self, command: &'static str, args: &[OsString]) -> Result<GitOutput, SyncError> {
        run_git(self.store, args, self.opts.timeout).map_err(|e| match e {
            RunError::Spawn(source) => SyncError::Spawn { command, source },
            RunError::TimedOut | RunError::Cancelled => SyncError::Timeout {
                remote: self.remote.display.clone(),
                command,
                secs: self.opts.timeout.as_secs(),
            },
        })
    }
}

fn run_git(
    store: &GitEventStore,
    args: &[OsString],
    timeout: Duration,
) -> Result<GitOutput, RunError> {
    let mut cmd = git::command(store.git_dir());
    // Where `git -C` would run, so relative remote paths resolve there and
    // not against the caller's directory (`reposix -C DIR sync`).
    if let Ok(dir) = std::path::absolute(store.work_dir()) {
        cmd.current_dir(dir);
    }
    cmd.args(args);
    git::run(cmd, timeout, None)
}

fn write_atomic(path: &Path, text: &str) -> Result<(), SyncError> {
    // Durable: a mark newer than the scan it stands for would skip reflogs.
    crate::store::fs::write_atomic(path, text.as_bytes(), crate::store::fs::Durability::Durable)
        .map_err(|source| SyncError::Io {
            path: path.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflog_oids_are_every_old_and_new_value_newest_first() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let c = "c".repeat(40);
        let z = "0".repeat(40);
        let text = format!(
            "{z} {a} reposix <r@r> 1 +0000\treposix\n\
             {a} {b} reposix <r@r> 2 +0000\treposix\n\
             {b} {c} x <x@x> 3 +0000\tfetch: forced-update\n"
        );
        let hex = |o: Vec<Oid>| o.iter().map(|o| o.to_string()).collect::<Vec<_>>();
        let got = reflog_oids(text.as_bytes()).expect("reads");
        assert_eq!(hex(got), [c, b, a]);
        assert!(reflog_oids(&b"garbage\n"[..]).expect("reads").is_empty());
    }
}
