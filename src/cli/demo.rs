//! `reposix demo`: the main job, scripted, in a temporary directory, with
//! the simulator embedded (no accounts, no network beyond loopback).
//!
//! A tracker (the sim, seeded like reposix-sim 0.14, hostile bodies
//! included) is imported by alice's clone and shared through a plain bare
//! git remote with bob's clone. Then, at the same time and without talking
//! to each other: a tracker user edits an issue in the tracker, alice edits
//! it offline (body, labels, while two of her agents race comments into the
//! same ref), and bob edits it offline (title, a comment, a new issue).
//! Everyone syncs (git remote and tracker, in an unhelpful order) and the
//! result is the same in both clones and in the tracker.

use std::path::Path;

use anyhow::{bail, Context};
use reposix::event::{ActorId, IssueId, Status};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::sync::{sync, SyncOptions};
use reposix::tracker::projection::Projection;
use reposix::tracker::sim::SimBackend;
use reposix::tracker::{Backend, BackendSpec, IssuePatch};

use super::git::{git, init_bare};
use super::{Ctx, Failure};

/// The seed of reposix-sim 0.14 (six issues, hostile bodies on purpose).
const SEED: &str = reposix_sim::DEMO_SEED;

fn actor(name: &str) -> anyhow::Result<ActorId> {
    ActorId::new(name).context("demo actor name")
}

/// Run the tour in a new temporary directory, removed afterwards unless
/// `keep`.
pub fn run(ctx: &Ctx, keep: bool) -> Result<(), Failure> {
    let dir = tempfile::Builder::new()
        .prefix("reposix-demo-")
        .tempdir()
        .context("creating the demo's temporary directory")?;
    // Kept (even when the tour fails) or removed when this goes out of scope.
    let (root, _removed_on_drop) = if keep {
        (dir.keep(), None)
    } else {
        (dir.path().to_path_buf(), Some(dir))
    };
    let mut text = tour(&root)?;
    if keep {
        text.push_str(&format!("\nrepositories kept in {}\n", root.display()));
    }
    ctx.out
        .done(&serde_json::json!({ "transcript": text }), || text.clone())
}

/// One person's clone: their name, repository and actor.
struct Replica<'a> {
    name: &'a str,
    repo: Repo,
    who: ActorId,
}

impl Replica<'_> {
    fn git_sync(&self, remote: &Path, t: &mut String) -> anyhow::Result<()> {
        let report = sync(
            self.repo.store(),
            &SyncOptions {
                remote: Some(remote.to_string_lossy().into_owned()),
                ..SyncOptions::default()
            },
        )?;
        t.push_str(&format!(
            "{:<6} reposix sync origin: {} fetched, {} merged, {} pushed{}\n",
            self.name,
            report.fetched,
            report.merged,
            report.pushed,
            if report.retried.is_empty() {
                String::new()
            } else {
                format!(", {} retried after a rejected push", report.retried.len())
            }
        ));
        Ok(())
    }

    fn tracker_sync(&self, b: &dyn Backend, t: &mut String) -> anyhow::Result<()> {
        let p = Projection::new(self.repo.store(), b, self.who.clone(), &|_| {});
        let i = p.import(false)?;
        let e = p.export()?;
        p.import(false)?;
        if !e.failed.is_empty() {
            bail!("export failed: {:?}", e.failed);
        }
        t.push_str(&format!(
            "{:<6} reposix sync --backend sim: {} revisions imported, {} issues created and {} updated on the tracker, {} comments sent{}\n",
            self.name,
            i.observed,
            e.created,
            e.updated,
            e.comments,
            if e.conflicts_retried > 0 {
                format!(", {} conflicts re-imported and retried", e.conflicts_retried)
            } else {
                String::new()
            }
        ));
        Ok(())
    }
}

fn tour(root: &Path) -> anyhow::Result<String> {
    let mut t = String::new();
    std::fs::create_dir_all(root)?;
    let seed = root.join("seed.json");
    std::fs::write(&seed, SEED)?;
    let sim = reposix_sim::start(reposix_sim::SimConfig {
        seed_file: Some(seed),
        rate_limit: 0,
        ..reposix_sim::SimConfig::default()
    })?;
    let spec = BackendSpec::parse(&format!("sim::{}", sim.project_url("demo")))?;
    let tracker = SimBackend::new(&spec, "reposix-demo")?;
    let tracker_user = SimBackend::new(&spec, "tracker-user")?;
    t.push_str(&format!(
        "# a tracker: the embedded simulator at {} (seeded, hostile bodies included)\n",
        sim.base_url()
    ));

    let remote = root.join("origin.git");
    init_bare(&remote)?;
    let alice = Replica {
        name: "alice",
        repo: Repo::init(&root.join("alice"))?,
        who: actor("alice")?,
    };
    alice.tracker_sync(&tracker, &mut t)?;
    alice.git_sync(&remote, &mut t)?;
    git(root, &["clone", "-q", &remote.to_string_lossy(), "bob"])?;
    let bob = Replica {
        name: "bob",
        repo: Repo::init(&root.join("bob"))?,
        who: actor("bob")?,
    };
    bob.git_sync(&remote, &mut t)?;
    let listing = bob.repo.list()?;
    t.push_str(&format!(
        "bob    git clone + reposix sync: {} issues\n\n",
        listing.issues.len()
    ));

    let (target, remote_id) = pick(&alice.repo, &tracker)?;
    let before = alice.repo.show(target)?;
    t.push_str(&format!(
        "# issue {} \"{}\", edited at the same time by three parties who cannot see each other:\n",
        target.short(),
        before.title
    ));

    // The tracker user.
    let current = tracker_user
        .get(&remote_id)?
        .context("the issue is on the tracker")?;
    tracker_user.update(
        &remote_id,
        &IssuePatch {
            status: Some(Status::InReview),
            body: Some(format!(
                "{}\nTracker note: reproduced on staging.",
                current.body
            )),
            ..IssuePatch::default()
        },
        &current.revision,
    )?;
    t.push_str(
        "tracker: status in_review, a line appended to the body (in the tracker's web UI)\n",
    );

    // Alice, offline, with two agents racing on the same ref.
    let alice_dir = root.join("alice");
    let raced = std::thread::scope(|s| -> anyhow::Result<u32> {
        let agents: Vec<_> = ["agent-1", "agent-2"]
            .into_iter()
            .map(|name| {
                let dir = alice_dir.clone();
                s.spawn(move || -> anyhow::Result<u32> {
                    let repo = Repo::open(&dir)?;
                    let who = actor(name)?;
                    let mut retries = 0;
                    for i in 0..10 {
                        retries += repo
                            .apply(
                                target,
                                &who,
                                &[Change::Comment(format!("{name}: check {i} done"))],
                            )?
                            .retries;
                    }
                    Ok(retries)
                })
            })
            .collect();
        let mut retries = 0;
        for a in agents {
            retries += a
                .join()
                .map_err(|_| anyhow::anyhow!("a demo agent thread panicked"))??;
        }
        Ok(retries)
    })?;
    alice.repo.apply(
        target,
        &alice.who,
        &[
            Change::Body(format!("Summary: see below.\n{}", before.body)),
            Change::AddLabel("needs-triage".into()),
        ],
    )?;
    t.push_str(&format!(
        "alice:   offline, a summary line prepended to the body, +needs-triage; her agents add 20 comments\n         to the same ref at once ({raced} compare-and-swap races lost and retried, none rejected)\n"
    ));

    // Bob, offline.
    bob.repo.apply(
        target,
        &bob.who,
        &[
            Change::Title(format!("{} (regression)", before.title)),
            Change::Comment("Bisected to the connection pool change.".into()),
        ],
    )?;
    let bobs = bob.repo.create(
        &bob.who,
        NewIssue {
            title: "Pool size should be configurable".into(),
            body: "Follow-up from the regression.".into(),
            labels: vec!["enhancement".into()],
            ..NewIssue::default()
        },
    )?;
    t.push_str("bob:     offline, the title gets \"(regression)\", a comment, and a new issue\n\n");

    // Sync, in an order that maximises conflicts.
    t.push_str("# everyone syncs\n");
    bob.tracker_sync(&tracker, &mut t)?;
    alice.git_sync(&remote, &mut t)?;
    bob.git_sync(&remote, &mut t)?;
    alice.tracker_sync(&tracker, &mut t)?;
    alice.git_sync(&remote, &mut t)?;
    bob.git_sync(&remote, &mut t)?;
    bob.tracker_sync(&tracker, &mut t)?;
    alice.git_sync(&remote, &mut t)?;

    let a = alice.repo.show(target)?;
    let b = bob.repo.show(target)?;
    let remote_now = tracker.get(&remote_id)?.context("still on the tracker")?;
    t.push_str(&format!(
        "\n# issue {} afterwards (alice's clone)\n",
        target.short()
    ));
    t.push_str(&format!(
        "title:   {}\nstatus:  {}\nlabels:  {}\nbody:\n",
        a.title,
        a.status,
        a.labels.join(", ")
    ));
    for line in a.body.lines() {
        t.push_str(&format!("  | {line}\n"));
    }
    t.push_str(&format!(
        "comments: {} (20 from the agents, bob's, none lost, none twice)\n",
        a.comments.len()
    ));

    let clones_same = a.to_canonical_json() == b.to_canonical_json();
    let tracker_same = remote_now.title == a.title
        && remote_now.body == a.body
        && remote_now.status == a.status
        && remote_now.labels == a.labels;
    let all_clones_same = alice.repo.list()?.issues.iter().all(|s| {
        match (alice.repo.show(s.id), bob.repo.show(s.id)) {
            (Ok(x), Ok(y)) => x.to_canonical_json() == y.to_canonical_json(),
            _ => false,
        }
    });
    let on_tracker = tracker
        .list_changed(None)?
        .0
        .iter()
        .any(|r| r.title == "Pool size should be configurable");
    t.push_str(&format!(
        "\nbob's new issue {} is on the tracker: {}\n",
        bobs.issue.short(),
        yes(on_tracker)
    ));
    t.push_str(&format!(
        "alice and bob hold byte-identical state: {}\n",
        yes(clones_same && all_clones_same)
    ));
    t.push_str(&format!(
        "the tracker shows the same issue: {}\n",
        yes(tracker_same)
    ));
    t.push_str(
        "\nwhy: the title is a register, and bob's edit came after the revision he had seen, so it\n\
         wins by causality, not by clock; the tracker's status change and alice's label both hold;\n\
         the body is a text CRDT, so alice's and the tracker's line edits are both in it; comments\n\
         are append-only, so all of them are there; one tracker revision seen by two clones is one\n\
         event, so nothing comes back twice.\n",
    );
    if !(clones_same && all_clones_same && tracker_same && on_tracker) {
        bail!("the demo did not converge:\n{t}");
    }
    Ok(t)
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

/// The seeded issue with the hostile body, if any, else the first.
fn pick(repo: &Repo, tracker: &SimBackend) -> anyhow::Result<(IssueId, String)> {
    let (remotes, _) = tracker.list_changed(None)?;
    let r = remotes
        .iter()
        .find(|r| r.body.contains("version: 999"))
        .or_else(|| remotes.first())
        .context("the seeded tracker has issues")?;
    let issue = repo
        .list()?
        .issues
        .iter()
        .find(|s| s.title == r.title)
        .map(|s| s.id)
        .context("imported")?;
    Ok((issue, r.remote_id.clone()))
}
