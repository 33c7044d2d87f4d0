//! `reposix bench-agents` (feature `bench`): the agent commands at scale.
//!
//! - Latency: `ready`, `ready --limit 10`, `blocked` and `issue list` as
//!   whole `reposix` processes on one store of N issues (open and closed,
//!   priorities, `blocks` links), warm index, median of several runs.
//! - Swarm throughput: the README's `examples/swarm-agent.sh` (embedded),
//!   4 agents per clone on 2 clones of 1 bare remote on local disk, working
//!   a queue of Q labelled issues with `blocks` dependencies; once with the
//!   queue alone, once with the queue inside the N-issue store. Issues
//!   closed per second of wall time, from the first agent's start to the
//!   last agent's exit; checked afterwards (every queued issue closed, both
//!   clones agree).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use reposix::crdt::Link;
use reposix::event::{ActorId, IssueId, Op, Status};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::sync::{self, SyncOptions};

use super::measure::{reposix, reposix_json, WorkDir};
use super::synthetic::{bench_actor, bulk_write, chain, Sealed};
use crate::cli::git::{git, init_bare};
use crate::cli::{Ctx, Failure};

const SCRIPT: &str = include_str!("../../../examples/swarm-agent.sh");
const QUEUE_LABEL: &str = "swarm";

/// Arguments of `reposix bench-agents`.
#[derive(Args)]
pub struct BenchAgentsArgs {
    /// Issues in the store (besides the swarm's queue).
    #[arg(long, default_value_t = 10_000)]
    issues: usize,
    /// Issues in the swarm's queue.
    #[arg(long, default_value_t = 100)]
    queue: usize,
    /// Agents per clone (2 clones).
    #[arg(long, default_value_t = 4)]
    agents_per_clone: usize,
    /// Runs of each latency measurement (the median is reported).
    #[arg(long, default_value_t = 9)]
    runs: usize,
    /// Only the latency measurements (no swarm runs).
    #[arg(long)]
    latency_only: bool,
    /// Work in this directory (kept) instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Serialize, Default)]
struct Latency {
    command: String,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    rows: usize,
}

#[derive(Serialize, Default)]
struct Swarm {
    background: usize,
    queue: usize,
    agents: usize,
    wall_s: f64,
    issues_per_s: f64,
}

#[derive(Serialize, Default)]
struct AgentFigures {
    issues: usize,
    open: usize,
    ready: usize,
    blocked: usize,
    runs: usize,
    latency: Vec<Latency>,
    swarms: Vec<Swarm>,
}

/// One issue's events: open (or later closed), a priority, a comment, and
/// now and then a `blocks` link to an earlier issue.
fn events(
    issue: IssueId,
    actor: &ActorId,
    k: usize,
    earlier: &[IssueId],
    rng: &mut fastrand::Rng,
) -> Vec<Sealed> {
    let mut ops = vec![
        Op::Create {
            title: format!("Issue {k} {}", issue.short()),
            body: None,
            status: Status::Open,
            labels: vec!["bench".into()],
            assignees: vec![],
        },
        Op::SetField {
            name: "priority".into(),
            value: Some(rng.u8(0..4).to_string()),
        },
        Op::AddComment {
            body: format!("comment on {}", issue.short()),
        },
    ];
    if !earlier.is_empty() && rng.u8(0..10) < 2 {
        ops.push(Op::AddLink {
            kind: "blocked-by".into(),
            target: earlier[rng.usize(..earlier.len())],
        });
    }
    if rng.u8(0..10) < 3 {
        ops.push(Op::SetStatus {
            status: Status::Done,
        });
    }
    chain(issue, actor, (k as i64) * 1000, ops)
}

/// The queue: `n` issues labelled `swarm`, priorities, `blocks` among the
/// previous ten (the swarm test's shape).
fn queue(repo: &Repo, n: usize) -> anyhow::Result<()> {
    let creator = ActorId::new("planner").context("actor")?;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut issues: Vec<IssueId> = Vec::with_capacity(n);
    for i in 0..n {
        let id = repo
            .create(
                &creator,
                NewIssue {
                    title: format!("task {i}"),
                    labels: vec![QUEUE_LABEL.into()],
                    ..NewIssue::default()
                },
            )?
            .issue;
        let mut changes = vec![Change::Field(
            "priority".into(),
            Some(rng.u8(0..4).to_string()),
        )];
        for &blocker in &issues[i.saturating_sub(10)..i] {
            if rng.u8(0..10) < 2 {
                changes.push(Change::Link(Link {
                    kind: "blocked-by".into(),
                    target: blocker,
                }));
            }
        }
        repo.apply(id, &creator, &changes)?;
        issues.push(id);
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    let repo = Repo::open(dir)?;
    let report = sync::sync(repo.store(), &SyncOptions::default())?;
    if !report.is_complete() {
        bail!("incomplete sync in {}", dir.display());
    }
    Ok(())
}

/// Two clones of one bare remote holding `background` bulk issues and the
/// queue; returns the first clone.
fn setup(root: &Path, background: usize, queue_len: usize) -> anyhow::Result<(PathBuf, PathBuf)> {
    init_bare(&root.join("remote.git"))?;
    let (a, b) = (root.join("a"), root.join("b"));
    for dir in [&a, &b] {
        Repo::init(dir)?;
        git(dir, &["remote", "add", "origin", "../remote.git"])?;
    }
    let repo = Repo::open(&a)?;
    if background > 0 {
        let actor = bench_actor();
        let mut rng = fastrand::Rng::with_seed(1);
        bulk_write(&repo, &actor, background, |k, issue, earlier| {
            let lo = earlier.len().saturating_sub(50);
            events(issue, &actor, k, &earlier[lo..], &mut rng)
        })?;
    }
    queue(&repo, queue_len)?;
    sync_dir(&a)?;
    sync_dir(&b)?;
    Ok((a, b))
}

fn latency(dir: &Path, args: &[&str], runs: usize) -> anyhow::Result<Latency> {
    // Warm-up (index refresh, page cache), and the row count.
    let data = reposix_json(dir, args)?;
    let rows = data
        .as_array()
        .or_else(|| data["issues"].as_array())
        .or_else(|| data["blocked"].as_array())
        .map_or(0, Vec::len);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        times.push(reposix(dir, args)?.0.as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(Latency {
        command: format!("reposix {}", args.join(" ")),
        median_ms: times[times.len() / 2],
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        rows,
    })
}

fn spawn_agent(script: &Path, clone: &Path, name: &str) -> anyhow::Result<Child> {
    Ok(Command::new("bash")
        .arg(script)
        .current_dir(clone)
        .env("REPOSIX", std::env::current_exe()?)
        .env("REPOSIX_ACTOR", name)
        .env("REPOSIX_QUEUE_LABEL", QUEUE_LABEL)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

fn swarm(
    root: &Path,
    a: &Path,
    b: &Path,
    background: usize,
    args: &BenchAgentsArgs,
) -> anyhow::Result<Swarm> {
    let script = root.join("swarm-agent.sh");
    std::fs::write(&script, SCRIPT)?;
    let start = Instant::now();
    let mut children = Vec::new();
    for (clone, prefix) in [(a, "agent-a"), (b, "agent-b")] {
        for k in 0..args.agents_per_clone {
            children.push(spawn_agent(&script, clone, &format!("{prefix}{k}"))?);
        }
    }
    let mut failed = 0;
    for mut c in children {
        if !c.wait()?.success() {
            failed += 1;
        }
    }
    let wall = start.elapsed();
    if failed > 0 {
        bail!("{failed} agent(s) failed");
    }
    sync_dir(a)?;
    sync_dir(b)?;
    sync_dir(a)?;
    for dir in [a, b] {
        let listing = Repo::open(dir)?.list()?;
        let closed = listing
            .issues
            .iter()
            .filter(|s| s.labels.iter().any(|l| l == QUEUE_LABEL) && s.status.is_closed())
            .count();
        if closed != args.queue {
            bail!(
                "{}: {closed} of {} queued issues closed",
                dir.display(),
                args.queue
            );
        }
    }
    Ok(Swarm {
        background,
        queue: args.queue,
        agents: 2 * args.agents_per_clone,
        wall_s: wall.as_secs_f64(),
        issues_per_s: args.queue as f64 / wall.as_secs_f64(),
    })
}

/// Run the benchmark and print its table.
pub fn run(ctx: &Ctx, args: &BenchAgentsArgs) -> Result<(), Failure> {
    let work = WorkDir::new(args.dir.as_ref(), "agents")?;
    let f = bench_agents(args, work.path())?;
    ctx.out.done(&f, || render(&f))
}

fn bench_agents(args: &BenchAgentsArgs, root: &Path) -> anyhow::Result<AgentFigures> {
    let mut f = AgentFigures {
        issues: args.issues,
        runs: args.runs,
        ..AgentFigures::default()
    };

    if !args.latency_only {
        eprintln!("bench-agents: swarm on a queue of {} alone…", args.queue);
        let small = root.join("small");
        let (a, b) = setup(&small, 0, args.queue)?;
        f.swarms.push(swarm(&small, &a, &b, 0, args)?);
        std::fs::remove_dir_all(&small)?;
    }

    eprintln!(
        "bench-agents: {} issues and a queue of {}…",
        args.issues, args.queue
    );
    let big = root.join("big");
    let (a, b) = setup(&big, args.issues, args.queue)?;
    let listing = Repo::open(&a)?.list()?;
    f.open = listing
        .issues
        .iter()
        .filter(|s| !s.status.is_closed())
        .count();
    eprintln!("bench-agents: latency…");
    for cmd in [
        &["ready"][..],
        &["ready", "--limit", "10"],
        &["blocked"],
        &["issue", "list"],
        &["issue", "list", "--limit", "0"],
        &["issue", "list", "status:all", "--limit", "0"],
    ] {
        f.latency.push(latency(&a, cmd, args.runs)?);
    }
    f.ready = f.latency[0].rows;
    f.blocked = f.latency[2].rows;
    if !args.latency_only {
        eprintln!("bench-agents: swarm inside {} issues…", args.issues);
        f.swarms.push(swarm(&big, &a, &b, args.issues, args)?);
    }
    Ok(f)
}

fn render(f: &AgentFigures) -> String {
    let mut out = format!(
        "reposix bench-agents: {} issues ({} open, {} ready, {} blocked) plus the queue; \
         whole processes, warm index, median of {} runs\n\n\
         | command | rows | median ms | min ms | max ms |\n|---|---|---|---|---|\n",
        f.issues, f.open, f.ready, f.blocked, f.runs
    );
    for l in &f.latency {
        out.push_str(&format!(
            "| `{}` | {} | {:.1} | {:.1} | {:.1} |\n",
            l.command, l.rows, l.median_ms, l.min_ms, l.max_ms
        ));
    }
    out.push_str("\n| swarm | agents | queue | wall s | issues/s |\n|---|---|---|---|---|\n");
    for s in &f.swarms {
        out.push_str(&format!(
            "| queue {} | {} on 2 clones | {} | {:.1} | {:.2} |\n",
            if s.background == 0 {
                "alone".to_string()
            } else {
                format!("inside {} issues", s.background)
            },
            s.agents,
            s.queue,
            s.wall_s,
            s.issues_per_s
        ));
    }
    out
}
