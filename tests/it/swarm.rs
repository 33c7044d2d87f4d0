//! The swarm: 8 agent processes (the README's `examples/swarm-agent.sh`,
//! 4 per clone) on 2 clones of 1 bare remote work a queue of 100 issues
//! with `blocks` dependencies.
//!
//! - online: no issue is worked by two agents, every issue is closed once,
//!   and no issue is claimed before each of its blockers was closed;
//! - one clone offline for part of the run: its claims are provisional,
//!   the double claims are detected when it comes back, resolved the same
//!   way in both clones, and each loser stops (it never works the issue).
//!
//! Size: CI runs a queue of 30 issues (same 8 agents on 2 clones, same
//! checks) so each test stays well under a minute; the issue's full run of
//! 100 issues is `REPOSIX_SWARM_ISSUES=100` (any N works).
//! Seeds: `REPOSIX_SWARM_SEEDS` (comma-separated, default `1`); soak:
//! `REPOSIX_SWARM_SOAK=N` runs N more seeds with 300 issues each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use reposix::crdt::claims::Claims;
use reposix::crdt::Link;
use reposix::event::{ActorId, EventId, IssueId, Op, Status};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::sync::{self, SyncOptions};

use crate::support::{hermetic, TestRepo, BIN};

const AGENTS_PER_CLONE: usize = 4;
const OFFLINE_URL: &str = "http://127.0.0.1:1/offline.git";

struct Swarm {
    w: TestRepo,
    a: PathBuf,
    b: PathBuf,
    issues: Vec<IssueId>,
    /// blocker -> blocked
    edges: Vec<(IssueId, IssueId)>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/swarm-agent.sh")
}

fn git(w: &TestRepo, dir: &Path, args: &[&str]) {
    let out = w
        .command("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("running git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    let repo = Repo::open(dir).map_err(|e| e.to_string())?;
    let report = sync::sync(repo.store(), &SyncOptions::default()).map_err(|e| e.to_string())?;
    if !report.is_complete() {
        return Err(format!("incomplete sync: {report:?}"));
    }
    Ok(())
}

impl Swarm {
    fn new(seed: u64, n: usize) -> Swarm {
        let w = TestRepo::new();
        let root = w.home().to_path_buf();
        let remote = root.join("remote.git");
        let out = w
            .command("git")
            .args(["init", "-q", "--bare"])
            .arg(&remote)
            .output()
            .expect("git init --bare");
        assert!(out.status.success());
        let (a, b) = (root.join("a"), root.join("b"));
        for dir in [&a, &b] {
            Repo::init(dir).expect("init clone");
            git(&w, dir, &["remote", "add", "origin", "../remote.git"]);
        }
        let repo = Repo::open(&a).expect("open a");
        let creator = ActorId::new("planner").expect("actor");
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut issues = Vec::new();
        let mut edges = Vec::new();
        for i in 0..n {
            let w = repo
                .create(
                    &creator,
                    NewIssue {
                        title: format!("task {i}"),
                        ..NewIssue::default()
                    },
                )
                .expect("create");
            let id = w.issue;
            let mut changes = vec![Change::Field(
                "priority".into(),
                Some(rng.u8(0..4).to_string()),
            )];
            // Blockers among the previous ten issues (a DAG by construction).
            let lo = i.saturating_sub(10);
            for &blocker in &issues[lo..i] {
                if rng.u8(0..10) < 2 {
                    edges.push((blocker, id));
                    // Both spellings of one dependency.
                    if rng.bool() {
                        changes.push(Change::Link(Link {
                            kind: "blocked-by".into(),
                            target: blocker,
                        }));
                    } else {
                        let link = Link {
                            kind: "blocks".into(),
                            target: id,
                        };
                        repo.apply(blocker, &creator, &[Change::Link(link)])
                            .expect("blocks");
                    }
                }
            }
            repo.apply(id, &creator, &changes)
                .expect("priority and deps");
            issues.push(id);
        }
        sync_dir(&a).expect("first push");
        sync_dir(&b).expect("first pull");
        Swarm {
            w,
            a,
            b,
            issues,
            edges,
        }
    }

    fn agent(&self, dir: &Path, name: &str) -> Child {
        let mut cmd = Command::new("bash");
        hermetic(&mut cmd, self.w.home())
            .arg(script())
            .current_dir(dir)
            .env("REPOSIX", BIN)
            .env("REPOSIX_ACTOR", name)
            .stdout(std::process::Stdio::null());
        // Each agent's stderr goes to a file, printed if the test fails.
        let err = std::fs::File::create(self.w.home().join(format!("{name}.err")))
            .expect("agent stderr file");
        cmd.stderr(err);
        cmd.spawn().expect("starting an agent")
    }

    fn agents(&self, clone: &Path, prefix: &str) -> Agents {
        Agents(
            (0..AGENTS_PER_CLONE)
                .map(|k| self.agent(clone, &format!("{prefix}{k}")))
                .collect(),
            self.w.home().to_path_buf(),
        )
    }

    /// Poll `cond` until it holds (a condition, not a guess at timing).
    fn wait_for(&self, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
        let started = Instant::now();
        while !cond() {
            assert!(started.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(&self, mut children: Agents, limit: Duration) {
        let started = Instant::now();
        for c in children.0.iter_mut() {
            loop {
                if let Some(status) = c.try_wait().expect("waiting for an agent") {
                    assert!(status.success(), "agent exited {status}");
                    break;
                }
                if started.elapsed() > limit {
                    let _ = c.kill();
                    panic!("swarm did not finish within {limit:?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Both clones see everything.
        sync_dir(&self.a).expect("final sync a");
        sync_dir(&self.b).expect("final sync b");
        sync_dir(&self.a).expect("final sync a again");
    }

    fn closed_in(&self, dir: &Path) -> usize {
        Repo::open(dir)
            .and_then(|r| r.list())
            .map(|l| l.issues.iter().filter(|s| s.status.is_closed()).count())
            .unwrap_or(0)
    }

    fn leases_in(&self, dir: &Path, prefix: &str) -> usize {
        Repo::open(dir)
            .and_then(|r| r.list())
            .map(|l| {
                l.issues
                    .iter()
                    .filter(|s| {
                        s.lease
                            .as_ref()
                            .is_some_and(|(a, _)| a.as_str().starts_with(prefix))
                    })
                    .count()
            })
            .unwrap_or(0)
    }
}

/// The agents' stderr files, for a failure message.
fn agent_stderr(home: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(home).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "err") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.push_str(&format!("--- {}\n{text}", path.display()));
        }
    }
    out
}

/// Agent processes, killed if the test fails before they finish (else
/// they would loop on, in a deleted directory, after the test).
/// On failure, the end of each agent's stderr is printed.
struct Agents(Vec<Child>, PathBuf);

impl Drop for Agents {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            let Ok(dir) = std::fs::read_dir(&self.1) else {
                return;
            };
            for entry in dir.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "err") {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(10).collect();
                    eprintln!("--- {} (last lines, newest first)", path.display());
                    for l in tail {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}

/// What happened to one issue, from its log in one clone.
struct Worked {
    claims: Claims,
    /// (actor, wall_ms) of each close.
    closes: Vec<(ActorId, i64)>,
    commenters: BTreeSet<ActorId>,
    /// Winning claim events: (actor, wall_ms).
    claim_events: BTreeMap<EventId, (ActorId, i64)>,
    state_json: String,
}

fn worked(dir: &Path, issue: IssueId) -> Worked {
    let repo = Repo::open(dir).expect("open");
    let log = repo.load(issue).expect("load");
    let state = log.events.fold(issue).expect("fold");
    let mut closes = Vec::new();
    let mut commenters = BTreeSet::new();
    let mut claim_events = BTreeMap::new();
    for (id, e) in log.events.iter() {
        match &e.op {
            Op::SetStatus {
                status: Status::Done,
            } => closes.push((e.actor.clone(), e.wall_ms)),
            Op::AddComment { .. } => {
                commenters.insert(e.actor.clone());
            }
            Op::Claim { .. } => {
                claim_events.insert(*id, (e.actor.clone(), e.wall_ms));
            }
            _ => {}
        }
    }
    Worked {
        claims: state.claims.clone(),
        closes,
        commenters,
        claim_events,
        state_json: state.to_canonical_json(),
    }
}

/// The checks both scenarios share; returns the claims that lost without
/// knowing it (issue and claim, for the failure message).
fn check(s: &Swarm) -> Vec<String> {
    let mut by_issue: BTreeMap<IssueId, Worked> = BTreeMap::new();
    let mut lost = Vec::new();
    for &issue in &s.issues {
        let wa = worked(&s.a, issue);
        let wb = worked(&s.b, issue);
        assert_eq!(wa.state_json, wb.state_json, "clones differ on {issue}");
        assert_eq!(
            wa.claims, wb.claims,
            "claims resolved differently on {issue}"
        );
        assert_eq!(wa.closes.len(), 1, "{issue} closed {:?}", wa.closes);
        assert_eq!(
            wa.commenters.len(),
            1,
            "{issue} worked by {:?}",
            wa.commenters
        );
        let worker = wa.commenters.iter().next().expect("one worker").clone();
        assert_eq!(wa.closes[0].0, worker, "{issue}: closed by another agent");
        for l in &wa.claims.lost {
            assert_ne!(
                l.actor, worker,
                "{issue}: a losing claimer worked it: {l:?}"
            );
            if !l.knew {
                lost.push(format!("{issue}: {l:?} (all claims: {:?})", wa.claims));
                assert!(l.acknowledged, "{issue}: loser did not stop/ack: {l:?}");
            }
        }
        by_issue.insert(issue, wa);
    }
    // Order: the worker's first claim on an issue follows the close of
    // each blocker.
    for (blocker, blocked) in &s.edges {
        let done = by_issue[blocker].closes[0].1;
        let w = &by_issue[blocked];
        let worker = w.commenters.iter().next().expect("worker");
        let first_claim = w
            .claim_events
            .values()
            .filter(|(a, _)| a == worker)
            .map(|(_, t)| *t)
            .min()
            .expect("the worker claimed it");
        assert!(
            first_claim >= done,
            "{blocked} claimed at {first_claim} before its blocker {blocker} closed at {done}"
        );
    }
    lost
}

/// Queue size per seed: 30 in CI, `REPOSIX_SWARM_ISSUES` otherwise.
const CI_ISSUES: usize = 30;

fn seeds(default: &[u64]) -> Vec<(u64, usize)> {
    let n: usize = std::env::var("REPOSIX_SWARM_ISSUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_ISSUES);
    let mut out: Vec<(u64, usize)> = match std::env::var("REPOSIX_SWARM_SEEDS") {
        Ok(v) => v
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .map(|s| (s, n))
            .collect(),
        Err(_) => default.iter().map(|s| (*s, n)).collect(),
    };
    let soak: u64 = std::env::var("REPOSIX_SWARM_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    out.extend((0..soak).map(|k| (1000 + k, 300)));
    out
}

#[test]
fn online_swarm_works_each_issue_once_in_dependency_order() {
    for (seed, n) in seeds(&[1]) {
        let s = Swarm::new(seed, n);
        let mut agents = s.agents(&s.a, "agent-a");
        agents.0.append(&mut s.agents(&s.b, "agent-b").0);
        s.finish(agents, Duration::from_secs(600));
        let lost = check(&s);
        assert!(
            lost.is_empty(),
            "seed {seed}: online claims never lose unknowingly: {lost:#?}\nagents' stderr:\n{}",
            agent_stderr(s.w.home())
        );
    }
}

#[test]
fn offline_clone_double_claims_are_detected_resolved_alike_and_losers_stop() {
    for (seed, n) in seeds(&[2]) {
        let s = Swarm::new(seed, n);
        git(&s.w, &s.b, &["remote", "set-url", "origin", OFFLINE_URL]);
        let mut agents = s.agents(&s.b, "agent-b");
        // Every offline agent holds a provisional claim ...
        let mut seen = 0;
        s.wait_for(
            "4 provisional claims on b (the last count is printed above)",
            Duration::from_secs(120),
            || {
                let n = s.leases_in(&s.b, "agent-b");
                if n != seen {
                    eprintln!("provisional claims on b: {n}");
                    seen = n;
                }
                n >= AGENTS_PER_CLONE
            },
        );
        agents.0.append(&mut s.agents(&s.a, "agent-a").0);
        // ... and the online clone has worked the top of the queue.
        s.wait_for("10 issues closed on a", Duration::from_secs(300), || {
            s.closed_in(&s.a) >= 10
        });
        git(
            &s.w,
            &s.b,
            &["remote", "set-url", "origin", "../remote.git"],
        );
        s.finish(agents, Duration::from_secs(600));
        let lost = check(&s);
        assert!(
            !lost.is_empty(),
            "seed {seed}: the double claims were not detected"
        );
    }
}
