//! Projection scenarios against the bundled simulator on loopback: import,
//! export, conflicts, crashes, hostile bodies, and clones meeting through git.

use std::cell::Cell;

use reposix::backend::sim::SimBackend;
use reposix::backend::{
    Backend, BackendError, BackendKind, BackendSpec, Capabilities, IssuePatch, NewRemoteIssue,
    RemoteComment, RemoteIssue, Revision,
};
use reposix::event::{ActorId, IssueId, Status};
use reposix::project::Projection;
use reposix::repo::{Change, NewIssue, Repo};
use reposix::sim::{SimConfig, SimHandle};

use crate::support::TestRepo;

fn sim(config: SimConfig) -> SimHandle {
    reposix::sim::start(config).expect("sim starts on loopback")
}

fn quiet_sim() -> SimHandle {
    sim(SimConfig {
        rate_limit: 0,
        ..SimConfig::default()
    })
}

fn backend(s: &SimHandle, agent: &str) -> SimBackend {
    let spec = BackendSpec::parse(&format!("sim::{}", s.project_url("demo"))).expect("spec");
    SimBackend::new(&spec, agent).expect("adapter")
}

fn actor(name: &str) -> ActorId {
    ActorId::new(name).expect("actor")
}

/// Import then export, as `reposix sync --backend` does.
fn sync(repo: &Repo, b: &dyn Backend, who: &str) {
    let p = Projection::new(repo.store(), b, actor(who), &|_| {});
    p.import(false).expect("import");
    let report = p.export().expect("export");
    assert!(
        report.failed.is_empty(),
        "export failures: {:?}",
        report.failed
    );
    p.import(false).expect("import after export");
}

/// A third-party user editing the tracker directly.
fn tracker_edit(b: &SimBackend, remote_id: &str, patch: IssuePatch) -> RemoteIssue {
    let current = b.get(remote_id).expect("get").expect("exists");
    b.update(remote_id, &patch, &current.revision)
        .expect("tracker edit")
}

/// A tracker user's create: raw HTTP, so it carries no reposix marker.
fn tracker_create(s: &SimHandle, b: &SimBackend, title: &str, body: &str) -> RemoteIssue {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/projects/demo/issues", s.base_url()))
        .header("X-Reposix-Agent", "tracker-user")
        .json(&serde_json::json!({"title": title, "body": body}))
        .send()
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 201);
    let rec: serde_json::Value = resp.json().expect("json");
    let id = rec["id"].as_u64().expect("id").to_string();
    b.get(&id).expect("get").expect("exists")
}

/// A tracker user's comment, raw HTTP.
fn tracker_comment(s: &SimHandle, remote_id: &str, body: &str) {
    let resp = reqwest::blocking::Client::new()
        .post(format!(
            "{}/projects/demo/issues/{remote_id}/comments",
            s.base_url()
        ))
        .header("X-Reposix-Agent", "tracker-user")
        .json(&serde_json::json!({ "body": body }))
        .send()
        .expect("POST comment");
    assert_eq!(resp.status().as_u16(), 201);
}

fn only_issue(repo: &Repo) -> IssueId {
    let listing = repo.list().expect("list");
    assert_eq!(listing.issues.len(), 1, "{:?}", listing.issues);
    listing.issues[0].id
}

/// `reposix sync` of `from` then `into` through a bare remote shared by
/// the test's clones (created on first use next to `from`).
fn git_sync(into: &TestRepo, from: &TestRepo) {
    let remote = shared_remote(from, into);
    for t in [from, into] {
        let report = reposix::sync::sync(
            t.open().store(),
            &reposix::sync::SyncOptions {
                remote: Some(remote.to_string_lossy().into_owned()),
                ..reposix::sync::SyncOptions::default()
            },
        )
        .expect("reposix sync");
        assert!(report.is_complete(), "{report:?}");
    }
}

fn shared_remote(a: &TestRepo, b: &TestRepo) -> std::path::PathBuf {
    // One remote per pair of clones, whichever way round they are named.
    let (x, y) = if a.path() < b.path() { (a, b) } else { (b, a) };
    let name = format!(
        "remote-{}.git",
        y.path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let dir = x.path().parent().expect("tempdir has a parent").join(name);
    if !dir.exists() {
        let ok = std::process::Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .expect("git init --bare")
            .success();
        assert!(ok);
    }
    dir
}

#[test]
fn tracker_field_and_local_field_both_land_on_both_sides() {
    let s = quiet_sim();
    let b = backend(&s, "reposix-a");
    let third = backend(&s, "tracker-user");
    let remote = tracker_create(&s, &third, "Printer on fire", "It is on fire.");
    let t = TestRepo::new();
    let repo = t.open();
    sync(&repo, &b, "alice");
    let id = only_issue(&repo);

    tracker_edit(
        &third,
        &remote.remote_id,
        IssuePatch {
            title: Some("Printer on fire (3rd floor)".into()),
            ..IssuePatch::default()
        },
    );
    repo.apply(id, &actor("alice"), &[Change::AddLabel("hardware".into())])
        .expect("local edit");
    sync(&repo, &b, "alice");

    let local = repo.show(id).expect("show");
    let tracker = b.get(&remote.remote_id).expect("get").expect("exists");
    assert_eq!(local.title, "Printer on fire (3rd floor)");
    assert_eq!(local.labels, vec!["hardware".to_string()]);
    assert_eq!(tracker.title, local.title);
    assert_eq!(tracker.labels, local.labels);
}

#[test]
fn same_field_on_both_sides_has_one_winner_everywhere() {
    let s = quiet_sim();
    let b = backend(&s, "reposix-a");
    let third = backend(&s, "tracker-user");
    let remote = tracker_create(&s, &third, "Old", "");
    let a = TestRepo::new();
    let c = TestRepo::new();
    let (ra, rc) = (a.open(), c.open());
    sync(&ra, &b, "alice");
    sync(&rc, &b, "carol");
    let id = only_issue(&ra);
    assert_eq!(only_issue(&rc), id, "both clones derive the same issue");

    ra.apply(id, &actor("alice"), &[Change::Title("Local".into())])
        .expect("edit");
    tracker_edit(
        &third,
        &remote.remote_id,
        IssuePatch {
            title: Some("Tracker".into()),
            ..IssuePatch::default()
        },
    );
    sync(&ra, &b, "alice");
    sync(&rc, &b, "carol");
    git_sync(&c, &a);
    git_sync(&a, &c);
    sync(&ra, &b, "alice");
    sync(&rc, &b, "carol");

    let sa = ra.show(id).expect("show");
    let sc = rc.show(id).expect("show");
    let tracker = b.get(&remote.remote_id).expect("get").expect("exists");
    assert_eq!(sa.to_canonical_json(), sc.to_canonical_json());
    assert_eq!(sa.title, tracker.title);
    // The concurrent local edit wins (observations order below local
    // writes they did not see), and the exporter then sent it.
    assert_eq!(sa.title, "Local");
}

#[test]
fn body_edited_on_both_sides_keeps_both_edits() {
    let s = quiet_sim();
    let b = backend(&s, "reposix-a");
    let third = backend(&s, "tracker-user");
    let base = "first line\nsecond line\nthird line\n";
    let remote = tracker_create(&s, &third, "Doc", base);
    let t = TestRepo::new();
    let repo = t.open();
    sync(&repo, &b, "alice");
    let id = only_issue(&repo);

    repo.apply(
        id,
        &actor("alice"),
        &[Change::Body(
            base.replace("first line", "FIRST line (local)"),
        )],
    )
    .expect("local body edit");
    tracker_edit(
        &third,
        &remote.remote_id,
        IssuePatch {
            body: Some(base.replace("third line", "third line (tracker)")),
            ..IssuePatch::default()
        },
    );
    sync(&repo, &b, "alice");

    let want = "FIRST line (local)\nsecond line\nthird line (tracker)\n";
    assert_eq!(repo.show(id).expect("show").body, want);
    let tracker = b.get(&remote.remote_id).expect("get").expect("exists");
    assert_eq!(tracker.body, want);
}

#[test]
fn two_clones_importing_independently_meet_without_duplicates() {
    let s = quiet_sim();
    let b = backend(&s, "reposix-a");
    let third = backend(&s, "tracker-user");
    let r1 = tracker_create(&s, &third, "One", "body one");
    tracker_create(&s, &third, "Two", "body two");
    tracker_comment(&s, &r1.remote_id, "a tracker comment");
    let a = TestRepo::new();
    let c = TestRepo::new();
    let (ra, rc) = (a.open(), c.open());
    sync(&ra, &b, "alice");
    sync(&rc, &b, "carol");
    git_sync(&a, &c);
    git_sync(&c, &a);

    for repo in [&ra, &rc] {
        let listing = repo.list().expect("list");
        assert_eq!(listing.issues.len(), 2, "one local issue per remote issue");
        for summary in &listing.issues {
            let state = repo.show(summary.id).expect("show");
            let texts: Vec<_> = state.comments.iter().map(|c| c.body.as_str()).collect();
            let unique: std::collections::BTreeSet<_> = texts.iter().collect();
            assert_eq!(texts.len(), unique.len(), "duplicate comments: {texts:?}");
        }
    }
    let one_a = ra
        .list()
        .expect("list")
        .issues
        .into_iter()
        .find(|i| i.title == "One")
        .expect("One");
    let one = ra.show(one_a.id).expect("show");
    assert_eq!(one.comments.len(), 1, "the tracker comment, once");
    assert_eq!(one.comments[0].body, "a tracker comment");
    assert_eq!(
        one.to_canonical_json(),
        rc.show(one_a.id).expect("show").to_canonical_json()
    );
}

#[test]
fn a_later_local_edit_beats_an_older_tracker_value_seen_by_another_clone() {
    // Clone A imports revision N (title T) and sets the title to Y; the
    // tracker moves to N+1 on another field; clone B, which never saw N,
    // imports N+1. After A and B meet, Y holds everywhere and on the tracker.
    let s = quiet_sim();
    let b = backend(&s, "reposix-a");
    let third = backend(&s, "tracker-user");
    let remote = tracker_create(&s, &third, "T", "body");
    let a = TestRepo::new();
    let bb = TestRepo::new();
    let (ra, rb) = (a.open(), bb.open());
    let pa = Projection::new(ra.store(), &b, actor("alice"), &|_| {});
    pa.import(false).expect("A imports N");
    let id = only_issue(&ra);
    ra.apply(id, &actor("alice"), &[Change::Title("Y".into())])
        .expect("A edits");
    tracker_edit(
        &third,
        &remote.remote_id,
        IssuePatch {
            status: Some(Status::InProgress),
            ..IssuePatch::default()
        },
    );
    let pb = Projection::new(rb.store(), &b, actor("bob"), &|_| {});
    pb.import(false).expect("B imports N+1");
    assert_eq!(rb.show(id).expect("show").title, "T");

    git_sync(&a, &bb);
    git_sync(&bb, &a);
    for repo in [&ra, &rb] {
        let state = repo.show(id).expect("show");
        assert_eq!(state.title, "Y");
        assert_eq!(state.status, Status::InProgress);
    }
    sync(&rb, &b, "bob");
    assert_eq!(
        b.get(&remote.remote_id)
            .expect("get")
            .expect("exists")
            .title,
        "Y"
    );
    git_sync(&a, &bb);
    sync(&ra, &b, "alice");
    assert_eq!(ra.show(id).expect("show").title, "Y");
    assert_eq!(
        ra.show(id).expect("show").to_canonical_json(),
        rb.show(id).expect("show").to_canonical_json()
    );
}

/// A backend that fails right after a remote create succeeded, like a
/// process killed between the tracker's answer and the local record.
struct CrashAfterCreate<'a> {
    inner: &'a SimBackend,
    crashed: Cell<bool>,
}

impl Backend for CrashAfterCreate<'_> {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
    fn instance(&self) -> String {
        self.inner.instance()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn list_changed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<RemoteIssue>, Option<String>), BackendError> {
        self.inner.list_changed(cursor)
    }
    fn get(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError> {
        self.inner.get(remote_id)
    }
    fn create(&self, new: &NewRemoteIssue) -> Result<RemoteIssue, BackendError> {
        self.inner.create(new)?;
        self.crashed.set(true);
        panic!("killed after the remote write");
    }
    fn update(
        &self,
        remote_id: &str,
        patch: &IssuePatch,
        expected: &Revision,
    ) -> Result<RemoteIssue, BackendError> {
        self.inner.update(remote_id, patch, expected)
    }
    fn find_by_marker(
        &self,
        marker: &str,
        since: Option<&str>,
    ) -> Result<Option<RemoteIssue>, BackendError> {
        self.inner.find_by_marker(marker, since)
    }
    fn comments(&self, remote_id: &str) -> Result<Vec<RemoteComment>, BackendError> {
        self.inner.comments(remote_id)
    }
    fn add_comment(
        &self,
        remote_id: &str,
        body: &str,
        marker: &str,
    ) -> Result<RemoteComment, BackendError> {
        self.inner.add_comment(remote_id, body, marker)?;
        self.crashed.set(true);
        panic!("killed after the remote write");
    }
    fn edit_comment(
        &self,
        remote_id: &str,
        comment_id: &str,
        body: &str,
    ) -> Result<RemoteComment, BackendError> {
        self.inner.edit_comment(remote_id, comment_id, body)
    }
}

#[test]
fn export_interrupted_after_remote_create_does_not_duplicate() {
    let s = quiet_sim();
    let b = backend(&s, "reposix-a");
    let t = TestRepo::new();
    let repo = t.open();
    let w = repo
        .create(
            &actor("alice"),
            NewIssue {
                title: "Made offline".into(),
                body: "local body".into(),
                ..NewIssue::default()
            },
        )
        .expect("create");
    let crashing = CrashAfterCreate {
        inner: &b,
        crashed: Cell::new(false),
    };
    let p = Projection::new(repo.store(), &crashing, actor("alice"), &|_| {});
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.export()));
    assert!(
        died.is_err() && crashing.crashed.get(),
        "the run died after the remote create"
    );

    sync(&repo, &b, "alice");
    let (all, _) = b.list_changed(None).expect("list");
    assert_eq!(all.len(), 1, "the tracker has the issue once: {all:?}");
    assert_eq!(all[0].title, "Made offline");
    assert_eq!(all[0].body, "local body");

    // The same for a comment.
    repo.apply(w.issue, &actor("alice"), &[Change::Comment("hello".into())])
        .expect("comment");
    let crashing = CrashAfterCreate {
        inner: &b,
        crashed: Cell::new(false),
    };
    let p = Projection::new(repo.store(), &crashing, actor("alice"), &|_| {});
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.export()));
    assert!(
        died.is_err() && crashing.crashed.get(),
        "the run died after the remote comment"
    );
    sync(&repo, &b, "alice");
    let comments = b.comments(&all[0].remote_id).expect("comments");
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(repo.show(w.issue).expect("show").comments.len(), 1);
}

#[test]
fn no_echo_after_export() {
    let s = quiet_sim();
    let b = backend(&s, "reposix-a");
    let t = TestRepo::new();
    let repo = t.open();
    let w = repo
        .create(
            &actor("alice"),
            NewIssue {
                title: "Mine".into(),
                labels: vec!["x".into()],
                ..NewIssue::default()
            },
        )
        .expect("create");
    sync(&repo, &b, "alice");
    let before = repo.load(w.issue).expect("load").events.len();
    sync(&repo, &b, "alice");
    sync(&repo, &b, "alice");
    assert_eq!(
        repo.load(w.issue).expect("load").events.len(),
        before,
        "re-syncing with no change adds no events"
    );
    let p = Projection::new(repo.store(), &b, actor("alice"), &|_| {});
    assert_eq!(
        p.export().expect("export").unchanged,
        1,
        "an issue in step is skipped"
    );
    assert_eq!(
        p.export_all().expect("export").unchanged,
        0,
        "reconcile folds everything"
    );
    repo.apply(
        w.issue,
        &actor("alice"),
        &[Change::Title("Mine, renamed".into())],
    )
    .expect("edit");
    let report = p.export().expect("export");
    assert_eq!(
        (report.unchanged, report.updated),
        (0, 1),
        "a moved ref is exported"
    );
}

#[test]
fn storm_of_429_and_500_completes_and_converges() {
    let s = sim(SimConfig {
        rate_limit: 20,
        fail_every_n: 4,
        ..SimConfig::default()
    });
    let b = backend(&s, "reposix-a");
    let t = TestRepo::new();
    let repo = t.open();
    for i in 0..4 {
        repo.create(
            &actor("alice"),
            NewIssue {
                title: format!("storm {i}"),
                body: format!("body {i}"),
                ..NewIssue::default()
            },
        )
        .expect("create");
    }
    sync(&repo, &b, "alice");
    let (all, _) = b.list_changed(None).expect("list");
    assert_eq!(all.len(), 4);
    for summary in repo.list().expect("list").issues {
        let st = repo.show(summary.id).expect("show");
        let remote = all
            .iter()
            .find(|r| r.title == st.title)
            .expect("on tracker");
        assert_eq!(remote.body, st.body);
    }
}

#[test]
fn hostile_bodies_survive_both_directions_byte_for_byte() {
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reposix-sim-seed.json"
    );
    let s = sim(SimConfig {
        rate_limit: 0,
        seed_file: Some(seed.into()),
        ..SimConfig::default()
    });
    let b = backend(&s, "reposix-a");
    let t = TestRepo::new();
    let repo = t.open();
    sync(&repo, &b, "alice");
    let (remote, _) = b.list_changed(None).expect("list");
    let listing = repo.list().expect("list");
    assert_eq!(listing.issues.len(), remote.len());
    for r in &remote {
        let local = listing
            .issues
            .iter()
            .find(|i| i.title == r.title)
            .expect("imported");
        assert_eq!(repo.show(local.id).expect("show").body, r.body);
    }
    assert!(remote.iter().any(|r| r.body.contains("<script>")));
    assert!(remote.iter().any(|r| r.body.contains("version: 999")));

    let hostile = "---\ntitle: fake\nversion: 999\n---\n<script>alert(1)</script>\n";
    let w = repo
        .create(
            &actor("alice"),
            NewIssue {
                title: "Hostile".into(),
                body: hostile.into(),
                ..NewIssue::default()
            },
        )
        .expect("create");
    sync(&repo, &b, "alice");
    let (remote, _) = b.list_changed(None).expect("list");
    let r = remote
        .iter()
        .find(|r| r.title == "Hostile")
        .expect("exported");
    assert_eq!(r.body, hostile);
    assert_eq!(repo.show(w.issue).expect("show").body, hostile);
}
