//! `reposix bench-sync` (feature `bench`): `sync` against plain `git
//! fetch` + `git push`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use reposix::event::ActorId;
use reposix::repo::{Change, Repo};
use reposix::sync::{self, SyncOptions};

use super::measure::{best_of, reposix_json, timed, WorkDir};
use super::synthetic::{bench_actor, bulk_write, mixed_events};
use crate::cli::git::{git, init_bare};
use crate::cli::{Ctx, Failure};

/// `reposix --json sync` in `dir` as a whole process; its report.
fn sync_process(dir: &Path) -> anyhow::Result<serde_json::Value> {
    reposix_json(dir, &["sync"])
}

/// Arguments of `reposix bench-sync`.
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

/// Run the benchmark and print its table.
pub fn run(ctx: &Ctx, args: &BenchSyncArgs) -> Result<(), Failure> {
    let work = WorkDir::new(args.dir.as_ref(), "sync")?;
    let f = bench_sync(args, work.path())?;
    ctx.out.done(&f, || render(&f))
}

fn bench_sync(args: &BenchSyncArgs, root: &Path) -> anyhow::Result<SyncFigures> {
    let remote = root.join("remote.git");
    init_bare(&remote)?;
    let remote_url = remote.to_str().context("temp path is UTF-8")?;
    let (a_dir, b_dir) = (root.join("a"), root.join("b"));
    for dir in [&a_dir, &b_dir] {
        Repo::init(dir)?;
        git(dir, &["remote", "add", "origin", remote_url])?;
    }
    // Opened after `git remote add`: gix reads the configuration on open.
    let (a, b) = (Repo::open(&a_dir)?, Repo::open(&b_dir)?);
    let actor = bench_actor();
    let mut f = SyncFigures {
        issues: args.issues,
        events: args.issues * args.events_per_issue.max(1),
        diverged: args.diverged.min(args.issues),
        ..SyncFigures::default()
    };

    eprintln!("bench-sync: writing {} issues…", args.issues);
    let issues = bulk_write(&a, &actor, args.issues, |_, issue, _| {
        mixed_events(issue, &actor, args.events_per_issue)
    })?
    .ids;

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
    let plain = root.join("plain.git");
    init_bare(&plain)?;
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
        .map(drop)
    })?
    .as_secs_f64();
    init_bare(&root.join("plain-clone"))?;
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
        .map(drop)
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
        let fetch = best_of(args.runs, || git(&a_dir, &fetch_args).map(drop))?;
        let push = best_of(args.runs, || git(&a_dir, &push_args).map(drop))?;
        let both = best_of(args.runs, || {
            git(&a_dir, &fetch_args)?;
            git(&a_dir, &push_args).map(drop)
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
