//! `reposix bench`: figures for the README, measured against plain git on
//! the same work in the same run.
//!
//! Builds N issues with M events each through the bulk writer, then times:
//! bulk write rate, `git fast-import` writing the same number of commits,
//! trees and blobs (the floor), single loose appends, a cold index rebuild,
//! a warm `issue list` (in process and as a whole `reposix` process), and
//! `issue show`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use reposix::crdt::body::BodyDoc;
use reposix::event::{ActorId, Event, EventId, IssueId, Op, Status, EVENT_FORMAT_VERSION};
use reposix::repo::{Change, Repo};
use reposix::store::bulk::BulkWriter;
use reposix::store::index::Index;

use super::{Ctx, Failure};

/// A scale scenario of `reposix bench` (see `bench_scale`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Scenario {
    /// One issue of N events (sizes: events).
    Deep,
    /// A body of N characters (sizes: characters).
    Body,
    /// N issues of 3 events (sizes: the first is the issue count).
    Wide,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Run a scale scenario instead of the default run.
    #[arg(value_enum)]
    scenario: Option<Scenario>,
    /// Scenario sizes, comma-separated (deep default 10,100,1000,10000,
    /// 100000; body 10000,100000,1000000; wide 100000).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// deep: also grow one issue by this many `issue comment` processes.
    #[arg(long, default_value_t = 1500)]
    grow: usize,
    /// Number of issues.
    #[arg(long, default_value_t = 10_000)]
    issues: usize,
    /// Events per issue (including the create).
    #[arg(long, default_value_t = 10)]
    events_per_issue: usize,
    /// Loose single appends to time.
    #[arg(long, default_value_t = 200)]
    appends: usize,
    /// Work in this directory (kept) instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("git {}", args.join(" ")))?;
    if !st.success() {
        bail!("git {} failed", args.join(" "));
    }
    Ok(())
}

/// The events of one synthetic issue: a create with a body, then a mix of
/// comments, labels, title, status and a body edit.
pub(super) fn issue_events(issue: IssueId, actor: &ActorId, n: usize) -> Vec<(EventId, Vec<u8>)> {
    let body_text = format!("Synthetic issue {issue}\n\nSteps:\n1. run\n2. observe\n");
    let body = BodyDoc::load(issue, [])
        .expect("BUG: empty body loads")
        .edit(&body_text);
    let mut out = Vec::with_capacity(n);
    let mut parents = vec![];
    for i in 0..n {
        let op = match i {
            0 => Op::Create {
                title: format!("Issue {}", issue.short()),
                body: body.clone(),
                status: Status::Open,
                labels: vec!["bench".into()],
                assignees: vec![],
            },
            _ => match i % 5 {
                0 => Op::AddLabel {
                    label: format!("l{i}"),
                },
                1 => Op::AddComment {
                    body: format!("comment {i} on {}", issue.short()),
                },
                2 => Op::SetTitle {
                    title: format!("Issue {} rev {i}", issue.short()),
                },
                3 => Op::SetStatus {
                    status: Status::ALL[i % Status::ALL.len()],
                },
                _ => Op::SetField {
                    name: "priority".into(),
                    value: Some(format!("p{}", i % 4)),
                },
            },
        };
        let e = Event {
            v: EVENT_FORMAT_VERSION,
            issue,
            actor: actor.clone(),
            lamport: i as u64 + 1,
            wall_ms: 1_700_000_000_000 + i as i64,
            parents: std::mem::take(&mut parents),
            op,
        };
        let (id, bytes) = e.seal();
        parents = vec![id];
        out.push((id, bytes));
    }
    out
}

/// The floor: `git fast-import` writing the same shape (one blob and one
/// commit per event, cumulative two-level trees) from precomputed bytes.
pub(super) fn fast_import_floor(dir: &Path, sizes: &[Vec<usize>]) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(dir)?;
    git(dir, &["init", "-q", "--bare"])?;
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["fast-import", "--quiet", "--done", "--date-format=raw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    // Precompute the stream so only fast-import's own work is timed.
    let mut stream = Vec::new();
    stream.extend_from_slice(b"blob\nmark :1\ndata 17\nreposix-events 2\n\n");
    let mut mark = 1u64;
    for (i, issue) in sizes.iter().enumerate() {
        for (j, size) in issue.iter().enumerate() {
            mark += 1;
            let content: Vec<u8> = format!("{i}-{j}-")
                .bytes()
                .chain(std::iter::repeat(b'x'))
                .take((*size).max(8))
                .collect();
            write!(stream, "blob\nmark :{mark}\ndata {}\n", content.len())?;
            stream.extend_from_slice(&content);
            stream.push(b'\n');
            let msg = "reposix: bulk\n\nReposix-Event: 0000000000000000000000000000000000000000000000000000000000000000\n";
            write!(
                stream,
                "commit refs/reposix/issues/i{i}\nauthor a <a@reposix> 1700000000 +0000\ncommitter a <a@reposix> 1700000000 +0000\ndata {}\n{msg}\n",
                msg.len()
            )?;
            if j == 0 {
                stream.extend_from_slice(b"M 100644 :1 format\n");
            }
            writeln!(stream, "M 100644 :{mark} events/{:064x}", mark)?;
            stream.push(b'\n');
        }
    }
    stream.extend_from_slice(b"done\n");
    let start = Instant::now();
    let mut stdin = child.stdin.take().context("fast-import stdin")?;
    stdin.write_all(&stream)?;
    drop(stdin);
    if !child.wait()?.success() {
        bail!("git fast-import (floor) failed");
    }
    Ok(start.elapsed())
}

fn time_list_process(dir: &Path, runs: usize) -> anyhow::Result<Duration> {
    let exe = std::env::current_exe()?;
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        let st = Command::new(&exe)
            .arg("-C")
            .arg(dir)
            .args(["issue", "list", "--state", "all"])
            .stdout(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("reposix issue list failed");
        }
        best = best.min(start.elapsed());
    }
    Ok(best)
}

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

pub fn run(ctx: &Ctx, args: BenchArgs) -> Result<(), Failure> {
    use super::bench_scale as scale;
    if let Some(scenario) = args.scenario {
        let (root, _cleanup) = scale::work_dir(args.dir.as_ref(), "scale");
        std::fs::create_dir_all(&root).map_err(anyhow::Error::from)?;
        let sizes = |default: &[usize]| {
            if args.sizes.is_empty() {
                default.to_vec()
            } else {
                args.sizes.clone()
            }
        };
        return match scenario {
            Scenario::Deep => {
                let sizes = sizes(&[10, 100, 1000, 10_000, 100_000]);
                let f = scale::deep(&root, &sizes, 15, args.grow)?;
                ctx.out.done(&f, || scale::render_deep(&f))
            }
            Scenario::Body => {
                let f = scale::body(&root, &sizes(&[10_000, 100_000, 1_000_000]))?;
                ctx.out.done(&f, || scale::render_body(&f))
            }
            Scenario::Wide => {
                let f = scale::wide(&root, sizes(&[100_000])[0])?;
                ctx.out.done(&f, || scale::render_wide(&f))
            }
        };
    }
    let figures = bench(&args)?;
    ctx.out.done(&figures, || render(&figures))
}

fn bench(args: &BenchArgs) -> anyhow::Result<Figures> {
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("reposix-bench-{}", fastrand::u64(..))),
    };
    let _cleanup = (args.dir.is_none()).then(|| super::demo::TempDir(root.clone(), false));
    let store_dir = root.join("store");
    let repo = Repo::init(&store_dir)?;
    let actor = ActorId::new("bench").context("actor")?;
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
    let mut sizes = Vec::with_capacity(args.issues);
    let mut writer = BulkWriter::start(repo.store().git_dir())?;
    let mut ids = Vec::with_capacity(args.issues);
    for _ in 0..args.issues {
        let issue = IssueId::new_random();
        let events = issue_events(issue, &actor, args.events_per_issue);
        sizes.push(events.iter().map(|(_, b)| b.len()).collect::<Vec<_>>());
        let commits: Vec<Vec<_>> = events.into_iter().map(|e| vec![e]).collect();
        writer.issue(issue, actor.as_str(), 1_700_000_000, &commits)?;
        ids.push(issue);
    }
    let stats = writer.finish()?;
    let bulk = start.elapsed();
    f.commits = stats.commits;
    f.bulk_write_s = bulk.as_secs_f64();
    f.bulk_events_per_s = f.events as f64 / f.bulk_write_s;

    // 2. The floor: fast-import alone on the same number of objects.
    eprintln!("bench: git fast-import floor…");
    let floor = fast_import_floor(&root.join("floor.git"), &sizes)?;
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
    if args.appends > 0 {
        let target = ids[0];
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

#[derive(Args)]
pub struct BenchImportArgs {
    /// Issues on the simulated tracker.
    #[arg(long, default_value_t = 5_000)]
    issues: usize,
}

#[derive(Serialize, Default)]
struct ImportFigures {
    issues: usize,
    import_s: f64,
    import_requests: u64,
    resync_s: f64,
    resync_requests: u64,
    floor_s: f64,
    floor_requests: u64,
    import_vs_floor: f64,
}

/// `reposix bench-import`: import N issues from the embedded sim, then a
/// no-change re-sync, against a plain HTTP loop GETting the same pages.
pub fn run_import(ctx: &Ctx, args: BenchImportArgs) -> Result<(), Failure> {
    let f = bench_import(&args)?;
    ctx.out.done(&f, || {
        format!(
            "reposix bench-import: {} issues on the sim\n\n\
             | measure | seconds | requests |\n|---|---|---|\n\
             | import (first sync, empty repository) | {:.2} | {} |\n\
             | no-change re-sync (import + export, after a first full sync) | {:.2} | {} |\n\
             | floor: plain HTTP loop, same GETs as the import | {:.2} | {} |\n\
             \nimport / floor: {:.1}x\n",
            f.issues,
            f.import_s,
            f.import_requests,
            f.resync_s,
            f.resync_requests,
            f.floor_s,
            f.floor_requests,
            f.import_vs_floor
        )
    })
}

fn bench_import(args: &BenchImportArgs) -> anyhow::Result<ImportFigures> {
    use reposix::tracker::projection::Projection;
    use reposix::tracker::sim::SimBackend;
    use reposix::tracker::BackendSpec;

    let root = std::env::temp_dir().join(format!("reposix-bench-import-{}", fastrand::u64(..)));
    let _cleanup = super::demo::TempDir(root.clone(), false);
    let sim = reposix_sim::start(reposix_sim::SimConfig {
        rate_limit: 0,
        ..reposix_sim::SimConfig::default()
    })?;
    let base = format!("{}/projects/demo", sim.base_url());
    eprintln!("bench-import: creating {} issues on the sim…", args.issues);
    let client = reqwest::blocking::Client::new();
    for i in 0..args.issues {
        let resp = client
            .post(format!("{base}/issues"))
            .header("X-Reposix-Agent", "bench-setup")
            .json(&serde_json::json!({
                "title": format!("Issue {i}"),
                "body": format!("Body of issue {i}.\nSecond line."),
                "labels": ["bench"],
            }))
            .send()?;
        if resp.status().as_u16() != 201 {
            bail!("sim refused a create: {}", resp.status());
        }
    }
    let spec = BackendSpec::parse(&format!("sim::{}", sim.project_url("demo")))?;
    let repo = Repo::init(&root.join("store"))?;
    let actor = ActorId::new("bench").context("actor")?;
    let mut f = ImportFigures {
        issues: args.issues,
        ..ImportFigures::default()
    };

    eprintln!("bench-import: importing…");
    let backend = SimBackend::new(&spec, "bench")?;
    let start = Instant::now();
    let p = Projection::new(repo.store(), &backend, actor.clone(), &|_| {});
    let report = p.import(false)?;
    f.import_s = start.elapsed().as_secs_f64();
    f.import_requests = backend.http_stats().requests;
    if report.new_issues != args.issues {
        bail!(
            "imported {} issues, expected {}",
            report.new_issues,
            args.issues
        );
    }

    // The rest of the first sync: export finds nothing to send and notes
    // every issue as in step with the tracker.
    let first = Projection::new(repo.store(), &backend, actor.clone(), &|_| {}).export()?;
    if first.updated + first.created != 0 {
        bail!("exporting freshly imported issues wrote to the tracker: {first:?}");
    }

    eprintln!("bench-import: no-change re-sync…");
    let backend = SimBackend::new(&spec, "bench")?;
    let start = Instant::now();
    let p = Projection::new(repo.store(), &backend, actor, &|_| {});
    p.import(false)?;
    let e = p.export()?;
    f.resync_s = start.elapsed().as_secs_f64();
    f.resync_requests = backend.http_stats().requests;
    if e.updated + e.created != 0 {
        bail!("a no-change re-sync wrote to the tracker: {e:?}");
    }

    // The floor: the same GETs, with nothing done to the answers.
    eprintln!("bench-import: plain HTTP loop…");
    let start = Instant::now();
    let mut requests = 0u64;
    let list: Vec<serde_json::Value> = client.get(format!("{base}/issues")).send()?.json()?;
    requests += 1;
    let probe = client.get(format!("{base}/comments")).send()?;
    requests += 1;
    let _ = probe.bytes()?;
    for issue in &list {
        let id = issue["id"].as_u64().context("id")?;
        let _ = client
            .get(format!("{base}/issues/{id}/comments"))
            .send()?
            .bytes()?;
        requests += 1;
    }
    f.floor_s = start.elapsed().as_secs_f64();
    f.floor_requests = requests;
    f.import_vs_floor = f.import_s / f.floor_s;
    Ok(f)
}
