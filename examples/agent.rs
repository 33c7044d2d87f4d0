//! An agent on reposix, as a library: open a repository, write as an
//! agent, sync with a git remote and with a tracker.
//!
//! `cargo run --example agent` does it all in a fresh temporary sandbox (a
//! repository, a bare remote and the bundled tracker simulator on
//! loopback); `cargo run --example agent -- DIR REMOTE TRACKER` works in
//! your repository DIR, syncing with git remote REMOTE and the tracker
//! attached there as TRACKER (`reposix backend add`).

use std::error::Error;
use std::path::PathBuf;

use reposix::event::ActorId;
use reposix::repo::{Change, NewIssue, Repo};
use reposix::sync::tracker::{TrackerSession, TrackerSyncOptions};
use reposix::sync::{sync, SyncOptions};
use reposix::tracker::BackendSpec;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _sandbox; // keeps the temporary directory and the simulator alive
    let (dir, remote, tracker) = match args.as_slice() {
        [dir, remote, tracker] => (PathBuf::from(dir), remote.clone(), tracker.clone()),
        _ => {
            let tmp = tempfile::tempdir()?;
            let remote = tmp.path().join("remote.git");
            let git = std::process::Command::new("git")
                .args(["init", "-q", "--bare"])
                .arg(&remote)
                .status()?;
            assert!(git.success(), "git init --bare failed");
            let sim = reposix_sim::start(reposix_sim::SimConfig::default())?;
            let repo = Repo::init(&tmp.path().join("work"))?;
            let spec = BackendSpec::parse(&format!("sim::{}", sim.project_url("demo")))?;
            repo.attach("sim", &spec)?;
            let dir = tmp.path().join("work");
            _sandbox = (tmp, sim);
            (dir, remote.display().to_string(), "sim".to_owned())
        }
    };

    // 1. Open the repository and write as an agent.
    let repo = Repo::open(&dir)?;
    let agent = ActorId::new("agent-7")?;
    let new = NewIssue {
        title: "Nightly build flakes on the ARM runner".into(),
        body: "Seen three times this week.".into(),
        ..NewIssue::default()
    };
    let issue = repo.create(&agent, new)?.issue;
    let changes = [
        Change::AddLabel("ci".into()),
        Change::Comment("Bisecting: the flake started with the toolchain bump.".into()),
    ];
    repo.apply(issue, &agent, &changes)?;
    println!("wrote {issue}: {}", repo.show(issue)?.title);

    // 2. Sync the event refs with a git remote: fetch, merge, push.
    let report = sync(
        repo.store(),
        &SyncOptions {
            remote: Some(remote),
            ..SyncOptions::default()
        },
    )?;
    println!(
        "git: {} issues pushed, {} merged",
        report.pushed, report.merged
    );

    // 3. Sync with the tracker: import, export, import again.
    let session = TrackerSession::open(&repo, &tracker, agent)?;
    let out = session.run(&repo, TrackerSyncOptions::default(), &|_| {}, &|_| true)?;
    let export = out.export.unwrap_or_default();
    println!(
        "{tracker}: {} created, {} comments",
        export.created, export.comments
    );
    Ok(())
}
