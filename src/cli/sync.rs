//! `reposix sync` (fetch, merge, push through a git remote) and
//! `reposix bench-sync` (its figures against plain `git fetch` + `git push`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use reposix::event::{ActorId, IssueId};
use reposix::repo::{Change, Repo};
use reposix::store::bulk::BulkWriter;
use reposix::sync::{self, Direction, RemoteFailure, SyncError, SyncOptions, SyncReport};

use super::{store_failure, Ctx, Exit, Failure};

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

fn sync_failure(e: SyncError) -> Failure {
    let message = sync::sanitize(&reposix::error_chain(&e));
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

fn ids(v: &[IssueId]) -> String {
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

pub fn run(ctx: &Ctx, args: SyncArgs) -> Result<(), Failure> {
    if let Some(name) = &args.backend {
        let dirs = super::backend::Directions {
            import_only: args.import_only,
            export_only: args.export_only,
            reconcile: args.reconcile,
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
        Some(r) => format!("reposix sync {}", sync::sanitize(r)),
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

#[derive(Args)]
pub struct BenchSyncArgs {
    /// Number of issues.
    #[arg(long, default_value_t = 10_000)]
    issues: usize,
    /// Events per issue (including the create).
    #[arg(long, default_value_t = 5)]
    events_per_issue: usize,
    /// Issues edited on both sides before the merge measurement.
    #[arg(long, default_value_t = 1_000)]
    diverged: usize,
    /// Runs of each no-op measurement (the best is kept).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Work in this directory (kept) instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize, Default)]
struct SyncFigures {
    issues: usize,
    events: usize,
    initial_push_s: f64,
    initial_push_verify_ms: f64,
    initial_git_push_s: f64,
    initial_git_fetch_s: f64,
    initial_clone_sync_s: f64,
    initial_clone_fetch_ms: f64,
    initial_clone_merge_ms: f64,
    noop_sync_ms: f64,
    noop_git_fetch_ms: f64,
    noop_git_push_ms: f64,
    noop_git_ms: f64,
    noop_ratio: f64,
    noop_packed_sync_ms: f64,
    noop_packed_git_ms: f64,
    noop_packed_ratio: f64,
    noop_reflog_scan_ms: f64,
    full_reflog_scan_ms: f64,
    diverged: usize,
    diverged_sync_s: f64,
    diverged_fetch_ms: f64,
    diverged_merge_ms: f64,
    diverged_push_ms: f64,
    diverged_verify_ms: f64,
    merges_per_s: f64,
    push_followup_s: f64,
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn best_of(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs.max(1) {
        best = best.min(timed(&mut f)?);
    }
    Ok(best)
}

/// `reposix sync --json` as a whole process; returns its report's data.
fn sync_process(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(std::env::current_exe()?)
        .arg("-C")
        .arg(dir)
        .args(["--json", "sync"])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("sync printed {}", String::from_utf8_lossy(&out.stdout)))?;
    if !out.status.success() || v["ok"] != true {
        bail!("reposix sync failed: {v}");
    }
    Ok(v["data"].clone())
}

pub fn bench(ctx: &Ctx, args: BenchSyncArgs) -> Result<(), Failure> {
    let f = bench_sync(&args)?;
    ctx.out.done(&f, || render(&f))
}

fn bench_sync(args: &BenchSyncArgs) -> anyhow::Result<SyncFigures> {
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("reposix-bench-sync-{}", fastrand::u64(..))),
    };
    let _cleanup = args
        .dir
        .is_none()
        .then(|| super::demo::TempDir(root.clone(), false));
    std::fs::create_dir_all(&root)?;
    let remote = root.join("remote.git");
    git(&root, &["init", "-q", "--bare", "remote.git"])?;
    let remote_url = remote.to_str().context("temp path is UTF-8")?;
    let (a_dir, b_dir) = (root.join("a"), root.join("b"));
    for dir in [&a_dir, &b_dir] {
        Repo::init(dir)?;
        git(dir, &["remote", "add", "origin", remote_url])?;
    }
    // Opened after `git remote add`: gix reads the configuration on open.
    let (a, b) = (Repo::open(&a_dir)?, Repo::open(&b_dir)?);
    let actor = ActorId::new("bench").context("actor")?;
    let mut f = SyncFigures {
        issues: args.issues,
        events: args.issues * args.events_per_issue.max(1),
        diverged: args.diverged.min(args.issues),
        ..SyncFigures::default()
    };

    eprintln!("bench-sync: writing {} issues…", args.issues);
    let mut writer = BulkWriter::start(a.store().git_dir())?;
    let mut issues = Vec::with_capacity(args.issues);
    for _ in 0..args.issues {
        let issue = IssueId::new_random();
        let commits: Vec<Vec<_>> = super::bench::issue_events(issue, &actor, args.events_per_issue)
            .into_iter()
            .map(|e| vec![e])
            .collect();
        writer.issue(issue, actor.as_str(), 1_700_000_000, &commits)?;
        issues.push(issue);
    }
    writer.finish()?;

    eprintln!("bench-sync: initial push and clone…");
    let mut initial = serde_json::Value::Null;
    f.initial_push_s = timed(|| {
        initial = sync_process(&a_dir)?;
        Ok(())
    })?
    .as_secs_f64();
    f.initial_push_verify_ms = initial["timings"]["verify_ms"].as_f64().unwrap_or_default();
    // The same with plain git: push every issue ref to another empty bare
    // remote, and fetch them all into an empty repository.
    git(&root, &["init", "-q", "--bare", "plain.git"])?;
    let plain = root.join("plain.git");
    let plain_url = plain.to_str().context("temp path is UTF-8")?;
    f.initial_git_push_s = timed(|| {
        git(
            &a_dir,
            &[
                "push",
                "-q",
                plain_url,
                "refs/reposix/issues/*:refs/reposix/issues/*",
            ],
        )
    })?
    .as_secs_f64();
    git(&root, &["init", "-q", "plain-clone"])?;
    f.initial_git_fetch_s = timed(|| {
        git(
            &root.join("plain-clone"),
            &[
                "fetch",
                "-q",
                "--no-tags",
                remote_url,
                "+refs/reposix/issues/*:refs/reposix-remotes/origin/issues/*",
            ],
        )
    })?
    .as_secs_f64();
    std::fs::remove_dir_all(&plain)?;
    std::fs::remove_dir_all(root.join("plain-clone"))?;
    let start = Instant::now();
    let data = sync_process(&b_dir)?;
    f.initial_clone_sync_s = start.elapsed().as_secs_f64();
    f.initial_clone_fetch_ms = data["timings"]["fetch_ms"].as_f64().unwrap_or_default();
    f.initial_clone_merge_ms = data["timings"]["merge_ms"].as_f64().unwrap_or_default();

    // No-op: nothing changed on either side. Warm up once (first scan of
    // reflogs, page cache), then keep the best of several runs.
    eprintln!("bench-sync: no-op sync vs git fetch + git push…");
    let noop = |f: &mut SyncFigures, packed: bool| -> anyhow::Result<()> {
        let data = sync_process(&a_dir)?;
        if data["pushed"] != 0 || data["rounds"] != 0 {
            bail!("the warm-up sync was not a no-op: {data}");
        }
        let sync = best_of(args.runs, || {
            let data = sync_process(&a_dir)?;
            if data["fetched"] != 0 || data["rounds"] != 0 {
                bail!("no-op sync fetched or pushed: {data}");
            }
            Ok(())
        })?;
        let fetch_args = [
            "fetch",
            "--quiet",
            "--no-tags",
            "origin",
            "+refs/reposix/issues/*:refs/reposix-remotes/origin/issues/*",
        ];
        let push_args = [
            "push",
            "--porcelain",
            "origin",
            "refs/reposix/issues/*:refs/reposix/issues/*",
        ];
        let fetch = best_of(args.runs, || git(&a_dir, &fetch_args))?;
        let push = best_of(args.runs, || git(&a_dir, &push_args))?;
        let both = best_of(args.runs, || {
            git(&a_dir, &fetch_args)?;
            git(&a_dir, &push_args)
        })?;
        let ratio = sync.as_secs_f64() / both.as_secs_f64();
        if packed {
            f.noop_packed_sync_ms = sync.as_secs_f64() * 1e3;
            f.noop_packed_git_ms = both.as_secs_f64() * 1e3;
            f.noop_packed_ratio = ratio;
        } else {
            f.noop_sync_ms = sync.as_secs_f64() * 1e3;
            f.noop_git_fetch_ms = fetch.as_secs_f64() * 1e3;
            f.noop_git_push_ms = push.as_secs_f64() * 1e3;
            f.noop_git_ms = both.as_secs_f64() * 1e3;
            f.noop_ratio = ratio;
        }
        Ok(())
    };
    noop(&mut f, false)?;
    for dir in [&a_dir, &remote] {
        git(dir, &["pack-refs", "--all"])?;
    }
    noop(&mut f, true)?;
    // The reflog recovery scan: skipped for reflogs unchanged since the
    // last sync, and in full (mark removed) over the second clone, whose
    // 10,000 refs all have reflogs.
    let data = sync_process(&a_dir)?;
    f.noop_reflog_scan_ms = data["timings"]["recover_ms"].as_f64().unwrap_or_default();
    sync_process(&b_dir)?;
    std::fs::remove_file(b_dir.join(".git/reposix/sync-reflog-mark"))?;
    let data = sync_process(&b_dir)?;
    f.full_reflog_scan_ms = data["timings"]["recover_ms"].as_f64().unwrap_or_default();

    // Diverged: the same issues edited on both sides, then one sync merges.
    eprintln!("bench-sync: {} issues diverged on both sides…", f.diverged);
    let (alice, bob) = (ActorId::new("alice")?, ActorId::new("bob")?);
    for issue in &issues[..f.diverged] {
        a.apply(*issue, &alice, &[Change::Comment("from a".into())])?;
        b.apply(*issue, &bob, &[Change::Comment("from b".into())])?;
    }
    let data = sync_process(&b_dir)?;
    if data["pushed"] != f.diverged {
        bail!("b pushed {} of {} issues", data["pushed"], f.diverged);
    }
    let start = Instant::now();
    let report = sync::sync(a.store(), &SyncOptions::default())?;
    f.diverged_sync_s = start.elapsed().as_secs_f64();
    if report.merged != f.diverged || report.pushed != f.diverged || !report.is_complete() {
        bail!(
            "diverged sync merged {} and pushed {} of {} issues",
            report.merged,
            report.pushed,
            f.diverged
        );
    }
    f.diverged_fetch_ms = report.timings.fetch_ms;
    f.diverged_merge_ms = report.timings.merge_ms;
    f.diverged_push_ms = report.timings.push_ms;
    f.diverged_verify_ms = report.timings.verify_ms;
    f.merges_per_s = f.diverged as f64 / (report.timings.merge_ms / 1e3);
    // The other side takes the merges (fast-forwards only).
    f.push_followup_s = timed(|| sync_process(&b_dir).map(drop))?.as_secs_f64();
    Ok(f)
}

fn render(f: &SyncFigures) -> String {
    format!(
        "reposix bench-sync: {issues} issues, {events} events, one bare remote on local disk\n\
         \n\
         | measure | reposix sync | plain git | ratio |\n\
         |---|---|---|---|\n\
         | no-op, loose refs, whole process, ms | {ns:.0} | {ng:.0} (fetch alone {nf:.0}, push alone {np:.0}) | {nr:.2}x |\n\
         | no-op, packed refs, whole process, ms | {ps:.0} | {pg:.0} | {pr:.2}x |\n\
         | reflog recovery scan in a no-op sync / over all {issues} reflogs, ms | {nrs:.1} / {frs:.0} | | |\n\
         | initial push of {issues} issues (of which checking them for damage {ipv:.0} ms), s | {ip:.2} | {igp:.2} (push) | {ipr:.2}x |\n\
         | initial sync of a new clone (fetch {icf:.0} ms, create refs {icm:.0} ms), s | {ic:.2} | {igf:.2} (fetch) | {icr:.2}x |\n\
         | {d} issues diverged on both sides: fetch + merge + push, s | {ds:.2} | | |\n\
         | of which fetch / merge (damage check) / push, ms | {df:.0} / {dm:.0} ({dv:.0}) / {dp:.0} | | |\n\
         | merge throughput, issues/s | {mps:.0} | | |\n\
         | the other side then fast-forwards {d} issues, s | {fu:.2} | | |\n",
        issues = f.issues,
        events = f.events,
        ns = f.noop_sync_ms,
        ng = f.noop_git_ms,
        nf = f.noop_git_fetch_ms,
        np = f.noop_git_push_ms,
        nr = f.noop_ratio,
        ps = f.noop_packed_sync_ms,
        pg = f.noop_packed_git_ms,
        pr = f.noop_packed_ratio,
        nrs = f.noop_reflog_scan_ms,
        frs = f.full_reflog_scan_ms,
        ip = f.initial_push_s,
        ipv = f.initial_push_verify_ms,
        ic = f.initial_clone_sync_s,
        icf = f.initial_clone_fetch_ms,
        igp = f.initial_git_push_s,
        igf = f.initial_git_fetch_s,
        ipr = f.initial_push_s / f.initial_git_push_s,
        icr = f.initial_clone_sync_s / f.initial_git_fetch_s,
        icm = f.initial_clone_merge_ms,
        d = f.diverged,
        ds = f.diverged_sync_s,
        df = f.diverged_fetch_ms,
        dm = f.diverged_merge_ms,
        dp = f.diverged_push_ms,
        dv = f.diverged_verify_ms,
        mps = f.merges_per_s,
        fu = f.push_followup_s,
    )
}
