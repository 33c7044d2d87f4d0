//! `reposix sync` (fetch, merge, push through a git remote) and
//! `reposix bench-sync` (its figures against plain `git fetch` + `git push`).

use std::time::Duration;

use clap::Args;

use reposix::event::IssueId;
use reposix::git::redact::redact;
use reposix::git::stderr::RemoteFailure;
use reposix::sync::{self, Direction, SyncError, SyncOptions, SyncReport};

use super::{store_failure, Ctx, Exit, Failure};

/// Arguments of `reposix sync`.
#[derive(Args)]
pub struct SyncArgs {
    /// Remote name, URL or path (default: the current branch's remote,
    /// else `origin`).
    remote: Option<String>,
    /// Fetch and merge only.
    #[arg(long, conflicts_with = "push")]
    pull: bool,
    /// Push only (a rejected push still fetches and merges, then retries).
    #[arg(long)]
    push: bool,
    /// Push again this many times after a rejection before giving up.
    #[arg(long, default_value_t = 6, value_name = "N")]
    retries: u32,
    /// Give up on a `git` invocation after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    timeout: u64,
    /// Rounds pushing more refs than this go without leases (see
    /// `SyncOptions::lease_limit`).
    #[arg(long, default_value_t = SyncOptions::default().lease_limit, hide = true)]
    lease_limit: usize,
    /// Sync with this tracker backend instead of a git remote (see
    /// `reposix backend add`): import, then export.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["remote", "pull", "push"])]
    backend: Option<String>,
    /// With --backend: import only.
    #[arg(long, requires = "backend", conflicts_with = "export_only")]
    import_only: bool,
    /// With --backend: export only.
    #[arg(long, requires = "backend")]
    export_only: bool,
    /// With --backend: walk the whole tracker instead of the cursor, and
    /// repair anything the incremental path missed.
    #[arg(long, requires = "backend")]
    reconcile: bool,
    /// With --backend: change nothing, here or on the tracker; print what
    /// import and export would do (creates, updates, comments).
    #[arg(long, requires = "backend")]
    dry_run: bool,
    /// With --backend: publish local-only issues to a tracker that has
    /// none of them yet without asking.
    #[arg(long, short = 'y', requires = "backend")]
    yes: bool,
}

impl SyncArgs {
    fn options(&self) -> SyncOptions {
        SyncOptions {
            remote: self.remote.clone(),
            direction: match (self.pull, self.push) {
                (true, _) => Direction::Pull,
                (_, true) => Direction::Push,
                _ => Direction::Both,
            },
            max_rounds: self.retries.saturating_add(1),
            timeout: Duration::from_secs(self.timeout.max(1)),
            lease_limit: self.lease_limit,
        }
    }
}

pub(crate) fn sync_failure(e: SyncError) -> Failure {
    let message = redact(&reposix::error_chain(&e));
    if e.is_unreachable() {
        return Failure::new(Exit::RemoteUnreachable, "remote_unreachable", message).hint(
            "local issues are intact and every other command works offline; run `reposix sync` again when the remote is reachable",
        );
    }
    match &e {
        SyncError::NoRemote { .. } => Failure::new(Exit::Failure, "no_remote", message)
            .hint("add one with `git remote add origin URL`, or name one: `reposix sync REMOTE`"),
        SyncError::Remote { kind, .. } => match kind {
            RemoteFailure::Auth => Failure::new(Exit::Failure, "remote_auth", message).hint(
                "git could not authenticate and prompts are disabled: set up a credential helper or an ssh key",
            ),
            RemoteFailure::NotFound => Failure::new(Exit::Failure, "remote_not_found", message)
                .hint("check the remote's URL with `git remote -v`"),
            _ => Failure::new(Exit::Failure, "remote_failed", message),
        },
        SyncError::Store { source, .. } => store_failure(source, message),
        SyncError::Spawn { .. } => {
            Failure::new(Exit::Failure, "git_missing", message).hint("install git")
        }
        _ => Failure::new(Exit::Failure, "io", message),
    }
}

pub(crate) fn ids(v: &[IssueId]) -> String {
    v.iter().map(IssueId::short).collect::<Vec<_>>().join(", ")
}

fn summary(r: &SyncReport) -> String {
    let mut parts = Vec::new();
    if r.direction != Direction::Push {
        parts.push(format!("fetched {}", r.fetched));
    }
    parts.push(format!(
        "new {}, fast-forwarded {}, merged {}",
        r.created, r.fast_forwarded, r.merged
    ));
    if r.direction != Direction::Pull {
        let mut pushed = format!("pushed {}", r.pushed);
        if !r.retried.is_empty() {
            pushed.push_str(&format!(
                " ({} retried, {} rounds)",
                r.retried.len(),
                r.rounds
            ));
        }
        parts.push(pushed);
    }
    let mut text = format!("{}: {}\n", r.remote, parts.join("; "));
    if !r.recovered.is_empty() {
        text.push_str(&format!(
            "recovered events a forced fetch had dropped: {}\n",
            ids(&r.recovered)
        ));
    }
    text
}

/// Sync with a git remote, or with a tracker (`--backend`).
pub fn run(ctx: &Ctx, args: SyncArgs) -> Result<(), Failure> {
    if let Some(name) = &args.backend {
        let dirs = super::backend::Directions {
            import_only: args.import_only,
            export_only: args.export_only,
            reconcile: args.reconcile,
            dry_run: args.dry_run,
            yes: args.yes,
        };
        return super::backend::sync(ctx, name, dirs);
    }
    let repo = ctx.repo()?;
    let report = sync::sync(repo.store(), &args.options()).map_err(sync_failure)?;
    for l in &report.stale_locks {
        ctx.out.warn(&format!(
            "removed a stale lock left by a killed writer: {l}"
        ));
    }
    if report.is_complete() {
        if let Some(lost) = super::agents::lost_claims(ctx, &repo)? {
            ctx.out.text(|| summary(&report))?;
            return Err(lost);
        }
        return ctx.out.done(&report, || summary(&report));
    }
    // One envelope: `ok: false`, the report as its data, exit 10.
    ctx.out.text(|| summary(&report))?;
    let again = match &args.remote {
        Some(r) => format!("reposix sync {}", redact(r)),
        None => "reposix sync".to_owned(),
    };
    let mut problems = Vec::new();
    let mut hints = Vec::new();
    if !report.behind.is_empty() {
        problems.push(format!(
            "{} issue(s) still behind {} after {} push rounds: {}",
            report.behind.len(),
            report.remote,
            report.rounds,
            ids(&report.behind)
        ));
        hints.push(format!(
            "run `{again}` again (with `--retries N` for a busy remote)"
        ));
    }
    for r in &report.rejected {
        problems.push(format!(
            "{} refused {}: {}",
            report.remote,
            r.issue.short(),
            r.reason
        ));
    }
    for d in &report.damaged_local {
        problems.push(format!(
            "local issue {} is damaged, not pushed: {}",
            d.issue, d.reason
        ));
    }
    if !report.damaged_local.is_empty() {
        hints.push(
            "`reposix fsck` lists the damage; a damaged issue is kept locally and never pushed"
                .to_owned(),
        );
    }
    for d in &report.damaged {
        problems.push(format!(
            "{}'s log of issue {} is damaged, not merged (your local log is kept and not pushed over it): {}",
            report.remote, d.issue, d.reason
        ));
    }
    if let Some(d) = report.damaged.first() {
        hints.push(format!(
            "have the remote's copy repaired (`reposix fsck` in the clone that pushed it names the bad event), or replace it with yours: `git push --force-with-lease {} refs/reposix/issues/{}` (drops what only the remote has)",
            report.remote, d.issue
        ));
    }
    hints.push("the other issues are in step".to_owned());
    Err(Failure::new(
        Exit::SyncIncomplete,
        "sync_incomplete",
        format!("{}; nothing local is lost", problems.join("; ")),
    )
    .hint(hints.join("; "))
    .data(&report))
}

// ---------------------------------------------------------------------------
// bench-sync
