//! `reposix bench` (no scenario): figures for the README, measured against
//! plain git on the same work in the same run.
//!
//! Builds N issues with M events each through the bulk writer, then times:
//! bulk write rate, `git fast-import` writing the same number of commits,
//! trees and blobs (the floor), single loose appends, a cold index rebuild,
//! a warm `issue list` (in process and as a whole `reposix` process), and
//! `issue show`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use serde::Serialize;

use reposix::repo::{Change, Repo};
use reposix::store::index::Index;

use super::measure::{ms, rx, WorkDir};
use super::synthetic::{bench_actor, bulk_write, fast_import_floor, mixed_events};
use crate::cli::git::git;
use crate::cli::{Ctx, Failure};

/// The sizes of the default run.
#[derive(Args)]
pub struct StoreArgs {
    /// Number of issues.
    #[arg(long, default_value_t = 10_000)]
    issues: usize,
    /// Events per issue (including the create).
    #[arg(long, default_value_t = 10)]
    events_per_issue: usize,
    /// Loose single appends to time.
    #[arg(long, default_value_t = 200)]
    appends: usize,
}

#[derive(Serialize, Default)]
struct Figures {
    issues: usize,
    events: usize,
    commits: u64,
    bulk_write_s: f64,
    bulk_events_per_s: f64,
    fast_import_s: f64,
    fast_import_events_per_s: f64,
    bulk_vs_fast_import: f64,
    loose_appends: usize,
    loose_append_ms: f64,
    index_rebuild_cold_ms: f64,
    list_warm_ms: f64,
    list_warm_process_ms: f64,
    list_warm_packed_ms: f64,
    list_warm_packed_process_ms: f64,
    show_ms: f64,
}

/// Run the default benchmark in `work` and print its table.
pub fn run(ctx: &Ctx, args: &StoreArgs, work: &WorkDir) -> Result<(), Failure> {
    let figures = bench(args, work.path())?;
    ctx.out.done(&figures, || render(&figures))
}

/// The best of `runs` whole `reposix issue list --state all` processes.
fn time_list_process(dir: &Path, runs: usize) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        best = best.min(rx(dir, &["issue", "list", "--state", "all"])?);
    }
    Ok(best)
}

/// The best of `runs` warm listings in process.
fn time_list(repo: &Repo, runs: usize, expect: usize) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        let listing = Index::new(repo.store()).list(false)?;
        let took = start.elapsed();
        if listing.issues.len() != expect || listing.refreshed != 0 {
            bail!(
                "warm listing saw {} issues ({} refreshed), expected {expect} cached",
                listing.issues.len(),
                listing.refreshed
            );
        }
        best = best.min(took);
    }
    Ok(best)
}

fn bench(args: &StoreArgs, root: &Path) -> anyhow::Result<Figures> {
    let store_dir = root.join("store");
    let repo = Repo::init(&store_dir)?;
    let actor = bench_actor();
    let mut f = Figures {
        issues: args.issues,
        events: args.issues * args.events_per_issue,
        ..Figures::default()
    };
    eprintln!(
        "bench: writing {} issues x {} events…",
        args.issues, args.events_per_issue
    );

    // 1. Bulk write: event building, encoding, hashing and fast-import.
    let start = Instant::now();
    let written = bulk_write(&repo, &actor, args.issues, |_, issue, _| {
        mixed_events(issue, &actor, args.events_per_issue)
    })?;
    let bulk = start.elapsed();
    f.commits = written.commits;
    f.bulk_write_s = bulk.as_secs_f64();
    f.bulk_events_per_s = f.events as f64 / f.bulk_write_s;

    // 2. The floor: fast-import alone on the same number of objects.
    eprintln!("bench: git fast-import floor…");
    let floor = fast_import_floor(&root.join("floor.git"), &written.sizes)?;
    f.fast_import_s = floor.as_secs_f64();
    f.fast_import_events_per_s = f.events as f64 / f.fast_import_s;
    f.bulk_vs_fast_import = f.bulk_events_per_s / f.fast_import_events_per_s;

    // 3. Cold index rebuild (no index file), then warm listings.
    eprintln!("bench: index…");
    let _ = std::fs::remove_file(Index::new(repo.store()).path());
    let start = Instant::now();
    let listing = Index::new(repo.store()).list(true)?;
    f.index_rebuild_cold_ms = ms(start.elapsed());
    if listing.issues.len() != args.issues || !listing.damaged.is_empty() {
        bail!(
            "rebuild listed {} issues, {} damaged",
            listing.issues.len(),
            listing.damaged.len()
        );
    }
    f.list_warm_ms = ms(time_list(&repo, 5, args.issues)?);
    f.list_warm_process_ms = ms(time_list_process(&store_dir, 3)?);
    git(&store_dir, &["pack-refs", "--all"])?;
    f.list_warm_packed_ms = ms(time_list(&repo, 5, args.issues)?);
    f.list_warm_packed_process_ms = ms(time_list_process(&store_dir, 3)?);

    // 4. show.
    let ids = &written.ids;
    let sample: Vec<_> = ids
        .iter()
        .step_by((ids.len() / 50).max(1))
        .take(50)
        .collect();
    let start = Instant::now();
    for id in &sample {
        repo.show(**id)?;
    }
    f.show_ms = ms(start.elapsed()) / sample.len().max(1) as f64;

    // 5. Loose single appends (the interactive path), on one issue.
    if let (Some(&target), true) = (ids.first(), args.appends > 0) {
        let start = Instant::now();
        for i in 0..args.appends {
            repo.apply(target, &actor, &[Change::Comment(format!("append {i}"))])?;
        }
        f.loose_appends = args.appends;
        f.loose_append_ms = ms(start.elapsed()) / args.appends as f64;
    }
    Ok(f)
}

fn render(f: &Figures) -> String {
    format!(
        "reposix bench: {issues} issues, {events} events, {commits} commits\n\
         \n\
         | measure | reposix | git | ratio |\n\
         |---|---|---|---|\n\
         | bulk write, events/s | {be:.0} | {fe:.0} (fast-import) | {ratio:.2}x of git's rate |\n\
         | bulk write, total s | {bs:.2} | {fs:.2} | |\n\
         | single loose append (one issue, growing to {la} events), ms | {lam:.2} | | |\n\
         | index rebuild from cold, ms | {cold:.0} | | |\n\
         | `issue list` warm, {issues} issues, loose refs, in process / whole process, ms | {lw:.1} / {lwp:.1} | | |\n\
         | `issue list` warm, packed refs, in process / whole process, ms | {lpw:.1} / {lpwp:.1} | | |\n\
         | `issue show`, ms | {show:.2} | | |\n",
        issues = f.issues,
        events = f.events,
        commits = f.commits,
        be = f.bulk_events_per_s,
        fe = f.fast_import_events_per_s,
        ratio = f.bulk_vs_fast_import,
        bs = f.bulk_write_s,
        fs = f.fast_import_s,
        la = f.loose_appends,
        lam = f.loose_append_ms,
        cold = f.index_rebuild_cold_ms,
        lw = f.list_warm_ms,
        lwp = f.list_warm_process_ms,
        lpw = f.list_warm_packed_ms,
        lpwp = f.list_warm_packed_process_ms,
        show = f.show_ms,
    )
}
