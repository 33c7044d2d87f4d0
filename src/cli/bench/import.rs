//! `reposix bench-import`: importing N issues from the embedded sim, and
//! a no-change re-sync, against a plain HTTP loop GETting the same pages.

use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use reposix::repo::Repo;
use reposix::tracker::projection::Projection;
use reposix::tracker::sim::SimBackend;
use reposix::tracker::BackendSpec;

use super::measure::WorkDir;
use super::synthetic::bench_actor;
use crate::cli::{Ctx, Failure};

/// Arguments of `reposix bench-import`.
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
pub fn run(ctx: &Ctx, args: &BenchImportArgs) -> Result<(), Failure> {
    let f = bench_import(args)?;
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
    let work = WorkDir::new(None, "import")?;
    let root = work.path();
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
    let actor = bench_actor();
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
