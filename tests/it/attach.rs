//! The seed's Patterns B and C end to end: `reposix init <spec> DIR`, a
//! mirror pushed from it, a plain `git clone` of the mirror that runs
//! `reposix attach`, markdown edits committed with git becoming events, and
//! concurrent edits in both clones and in the tracker converging.

use std::path::Path;

use reposix::event::Status;
use reposix::tracker::sim::SimBackend;
use reposix::tracker::{Backend, BackendSpec, IssuePatch};

use crate::support::TestRepo;

fn rx_in(t: &TestRepo, dir: &Path, args: &[&str]) -> crate::support::Run {
    let mut c = t.command(env!("CARGO_BIN_EXE_reposix"));
    c.arg("-C").arg(dir).args(["--actor", "tester"]).args(args);
    t.run(c)
}

fn git_in(t: &TestRepo, dir: &Path, args: &[&str]) {
    let mut c = t.command("git");
    c.arg("-C").arg(dir).args(args);
    t.run(c).ok();
}

#[test]
fn init_then_attach_in_a_mirror_clone_converges_with_markdown_edits() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/reposix-sim/seed.json");
    let sim = reposix_sim::start(reposix_sim::SimConfig {
        seed_file: Some(seed.into()),
        rate_limit: 0,
        ..reposix_sim::SimConfig::default()
    })
    .expect("sim");
    let spec = format!("sim::{}", sim.project_url("demo"));
    let tracker = SimBackend::new(&BackendSpec::parse(&spec).expect("spec"), "tracker-user")
        .expect("adapter");
    let t = TestRepo::new();
    let a = t.path().join("a");
    let mirror = t.path().join("mirror.git");
    let c = t.path().join("c");

    // Pattern B, then a mirror for everyone else.
    rx_in(&t, t.path(), &["init", &spec, &a.to_string_lossy()]).ok();
    git_in(
        &t,
        t.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            &mirror.to_string_lossy(),
        ],
    );
    rx_in(
        &t,
        &a,
        &[
            "mirror",
            "push",
            &mirror.to_string_lossy(),
            "--backend",
            "sim",
        ],
    )
    .ok();

    // Pattern C: a vanilla clone of the mirror, then attach.
    git_in(
        &t,
        t.path(),
        &[
            "clone",
            "-q",
            &mirror.to_string_lossy(),
            &c.to_string_lossy(),
        ],
    );
    assert!(c.join("issues/1.md").exists(), "the mirror has markdown");
    rx_in(&t, &c, &["attach", &spec]).ok();

    // Concurrent edits: C edits the markdown file and commits with git; A
    // edits labels; the tracker user changes the status.
    let path = c.join("issues/1.md");
    let text = std::fs::read_to_string(&path).expect("read");
    let before = tracker.get("1").expect("get").expect("exists");
    let edited = text
        .replacen(
            &format!("title: \"{}\"", before.title),
            "title: \"Edited in markdown\"",
            1,
        )
        .replacen(
            &before.body,
            &format!("{}\nA line from the markdown editor.", before.body),
            1,
        );
    assert_ne!(edited, text, "the edit changed the file");
    std::fs::write(&path, &edited).expect("write");
    git_in(&t, &c, &["commit", "-q", "-am", "edit issue 1"]);
    let a_issue = rx_in(&t, &a, &["--json", "issue", "list", "--state", "all"])
        .ok()
        .data()["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .find(|i| i["title"] == before.title.as_str())
        .expect("issue 1 in A")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    rx_in(&t, &a, &["issue", "label", &a_issue, "from-a"]).ok();
    let cur = tracker.get("1").expect("get").expect("exists");
    tracker
        .update(
            "1",
            &IssuePatch {
                status: Some(Status::InReview),
                ..IssuePatch::default()
            },
            &cur.revision,
        )
        .expect("tracker edit");

    // Everyone syncs with the tracker; nobody is rejected.
    rx_in(&t, &c, &["sync", "--backend", "sim"]).ok();
    rx_in(&t, &a, &["sync", "--backend", "sim"]).ok();
    rx_in(&t, &c, &["sync", "--backend", "sim"]).ok();

    let remote = tracker.get("1").expect("get").expect("exists");
    assert_eq!(remote.title, "Edited in markdown");
    assert!(
        remote.body.ends_with("A line from the markdown editor."),
        "{:?}",
        remote.body
    );
    assert_eq!(remote.status, Status::InReview);
    assert!(remote.labels.contains(&"from-a".to_string()));
    let show_a = rx_in(&t, &a, &["--json", "issue", "show", &a_issue])
        .ok()
        .data();
    let show_c = rx_in(&t, &c, &["--json", "issue", "show", &a_issue])
        .ok()
        .data();
    for field in ["title", "body", "status", "labels"] {
        assert_eq!(
            show_a[field], show_c[field],
            "{field} differs between the clones"
        );
    }
    assert_eq!(show_a["title"], "Edited in markdown");

    // The same commit is not read twice.
    let again = rx_in(&t, &c, &["--json", "sync", "--backend", "sim"])
        .ok()
        .data();
    assert_eq!(again["markdown_edits"]["files"], 0);
}
