//! `reposix demo`: a scripted tour in a temporary directory.
//!
//! Two replicas of one issue store (alice's repository and bob's, the second
//! made with nothing but `git fetch` of the event refs) edit the same issues
//! at the same time: conflicting titles, opposite label changes, body edits
//! in different places, comments; inside alice's repository two threads race
//! on one issue. Then each side fetches the other's refs with plain git and
//! merges; both print the same state.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use reposix::event::ActorId;
use reposix::repo::{Change, NewIssue, Repo};

use super::{Ctx, Failure};

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn actor(name: &str) -> anyhow::Result<ActorId> {
    ActorId::new(name).context("demo actor name")
}

pub struct TempDir(pub PathBuf, pub bool);

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn run(ctx: &Ctx, keep: bool) -> Result<(), Failure> {
    let root = std::env::temp_dir().join(format!("reposix-demo-{}", fastrand::u64(..)));
    let guard = TempDir(root.clone(), keep);
    let text = tour(&guard.0)?;
    let mut text = text;
    if keep {
        text.push_str(&format!("\nrepositories kept in {}\n", root.display()));
    }
    ctx.out
        .done(&serde_json::json!({ "transcript": text }), || text.clone())
}

fn tour(root: &Path) -> anyhow::Result<String> {
    let mut t = String::new();
    let a_dir = root.join("alice");
    let b_dir = root.join("bob");
    let alice_repo = Repo::init(&a_dir)?;
    let (alice, bob, carol) = (actor("alice")?, actor("bob")?, actor("carol")?);
    t.push_str(&format!("# two replicas in {}\n", root.display()));

    let body = "Steps to reproduce:\n1. open the app\n2. click login\nExpected: a form.\n";
    let login = alice_repo
        .create(
            &alice,
            NewIssue {
                title: "Login button does nothing".into(),
                body: body.into(),
                labels: vec!["bug".into(), "triage".into()],
                ..NewIssue::default()
            },
        )?
        .issue;
    let busy = alice_repo
        .create(
            &alice,
            NewIssue {
                title: "Flaky CI on main".into(),
                ..NewIssue::default()
            },
        )?
        .issue;
    t.push_str(&format!(
        "alice created {} (labels bug, triage) and {}\n",
        login.short(),
        busy.short()
    ));

    // Bob's replica: plain git, no reposix involved.
    std::fs::create_dir_all(&b_dir)?;
    git(&b_dir, &["init", "-q"])?;
    let a_path = a_dir.to_string_lossy().into_owned();
    git(
        &b_dir,
        &["fetch", "-q", &a_path, "refs/reposix/*:refs/reposix/*"],
    )?;
    let bob_repo = Repo::open(&b_dir)?;
    t.push_str(
        "bob fetched the event refs with `git fetch <alice> 'refs/reposix/*:refs/reposix/*'`\n\n",
    );

    // Concurrent, offline edits on both replicas, and two writers racing
    // inside alice's repository.
    t.push_str("# concurrently, with no communication:\n");
    let a_path_buf = a_dir.clone();
    let b_path_buf = b_dir.clone();
    let (alice2, bob2, carol2) = (alice.clone(), bob.clone(), carol.clone());
    let results = std::thread::scope(|s| {
        let a = s.spawn(move || -> anyhow::Result<u32> {
            let repo = Repo::open(&a_path_buf)?;
            let mut retries = 0;
            retries += repo
                .apply(
                    login,
                    &alice2,
                    &[
                        Change::Title("Login button does nothing on Safari".into()),
                        Change::RemoveLabel("triage".into()),
                        Change::Body(
                            body.replace("1. open the app", "1. open the app in Safari 17"),
                        ),
                        Change::Comment("Reproduced on macOS 14.".into()),
                    ],
                )?
                .retries;
            for i in 0..20 {
                retries += repo
                    .apply(
                        busy,
                        &alice2,
                        &[Change::Comment(format!("alice: run {i} failed"))],
                    )?
                    .retries;
            }
            Ok(retries)
        });
        let c = s.spawn(move || -> anyhow::Result<u32> {
            let repo = Repo::open(&a_dir)?;
            let mut retries = 0;
            for i in 0..20 {
                retries += repo
                    .apply(
                        busy,
                        &carol2,
                        &[Change::Comment(format!("carol: run {i} passed"))],
                    )?
                    .retries;
            }
            Ok(retries)
        });
        let b = s.spawn(move || -> anyhow::Result<u32> {
            let repo = Repo::open(&b_path_buf)?;
            Ok(repo
                .apply(
                    login,
                    &bob2,
                    &[
                        Change::Title("Login button unresponsive".into()),
                        Change::AddLabel("ui".into()),
                        Change::Body(
                            body.replace("Expected: a form.", "Expected: the login form."),
                        ),
                        Change::Comment("Also on Firefox?".into()),
                        Change::Status(reposix::event::Status::InProgress),
                    ],
                )?
                .retries)
        });
        [a.join(), c.join(), b.join()]
    });
    let mut retries = 0;
    for r in results {
        retries += r.map_err(|_| anyhow::anyhow!("a demo writer thread panicked"))??;
    }
    t.push_str("alice: title \"…on Safari\", -triage, body step 1 edited, a comment, 20 comments on the CI issue\n");
    t.push_str("carol: 20 comments on the CI issue, in alice's repository at the same time\n");
    t.push_str(
        "bob:   title \"…unresponsive\", +ui, body last line edited, a comment, in_progress\n",
    );
    t.push_str(&format!(
        "(alice and carol lost {retries} compare-and-swap races on the shared ref; each was retried, none rejected)\n\n"
    ));

    // Exchange with plain git fetch into a side namespace, then merge.
    let b_path = root.join("bob").to_string_lossy().into_owned();
    git(
        &root.join("alice"),
        &[
            "fetch",
            "-q",
            &b_path,
            "+refs/reposix/issues/*:refs/reposix-demo/bob/issues/*",
        ],
    )?;
    git(
        &root.join("bob"),
        &[
            "fetch",
            "-q",
            &a_path,
            "+refs/reposix/issues/*:refs/reposix-demo/alice/issues/*",
        ],
    )?;
    let alice_repo = Repo::open(&root.join("alice"))?;
    for (issue, outcome) in alice_repo.merge_refs_under("refs/reposix-demo/bob/issues/")? {
        t.push_str(&format!(
            "alice merges bob's {}: {:?}\n",
            issue.short(),
            outcome?
        ));
    }
    for (issue, outcome) in bob_repo.merge_refs_under("refs/reposix-demo/alice/issues/")? {
        t.push_str(&format!(
            "bob merges alice's {}: {:?}\n",
            issue.short(),
            outcome?
        ));
    }

    let a_state = alice_repo.show(login)?;
    let b_state = bob_repo.show(login)?;
    t.push_str("\n# merged issue, as alice sees it\n");
    t.push_str(&summary(&a_state));
    let same = a_state.to_canonical_json() == b_state.to_canonical_json();
    let busy_a = alice_repo.show(busy)?;
    let busy_b = bob_repo.show(busy)?;
    t.push_str(&format!(
        "\nCI issue: {} comments on alice's side, {} on bob's (40 written)\n",
        busy_a.comments.len(),
        busy_b.comments.len()
    ));
    let all_same = same && busy_a.to_canonical_json() == busy_b.to_canonical_json();
    t.push_str(&format!(
        "both replicas hold byte-identical state: {}\n",
        if all_same { "yes" } else { "NO" }
    ));
    if !all_same {
        bail!("replicas diverged after merge:\n{t}");
    }
    t.push_str(
        "\nwhy: the title is a last-writer-wins register ordered by (lamport, actor, event id),\n\
         never by wall clock, so every replica picks the same winner; alice's -triage and\n\
         bob's +ui both hold (observed-remove sets); the body is an automerge text, so both\n\
         line edits are in it; comments are append-only, so all of them are there.\n",
    );
    Ok(t)
}

fn summary(s: &reposix::crdt::IssueState) -> String {
    let mut out = format!(
        "title:     {}\nstatus:    {}\nlabels:    {}\n",
        s.title,
        s.status,
        s.labels.join(", ")
    );
    out.push_str("body:\n");
    for line in s.body.lines() {
        out.push_str(&format!("  | {line}\n"));
    }
    for c in &s.comments {
        out.push_str(&format!("comment by {}: {}\n", c.author, c.body));
    }
    out
}
