//! Projection scenarios against the bundled simulator on loopback: import,
//! export, conflicts, crashes, hostile bodies, and clones meeting through git.

use std::cell::Cell;

use reposix::crdt::IssueState;
use reposix::event::{ActorId, IssueId, Status};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::tracker::projection::Projection;
use reposix::tracker::sim::SimBackend;
use reposix::tracker::{
    Backend, BackendError, BackendKind, BackendSpec, Capabilities, IssuePatch, NewRemoteIssue,
    RemoteComment, RemoteIssue, Revision,
};
use reposix_sim::{SimConfig, SimHandle};

use crate::support::TestRepo;

fn sim(config: SimConfig) -> SimHandle {
    reposix_sim::start(config).expect("sim starts on loopback")
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

/// A tracker user's delete, raw HTTP.
fn tracker_delete(s: &SimHandle, remote_id: &str) {
    let resp = reqwest::blocking::Client::new()
        .delete(format!("{}/projects/demo/issues/{remote_id}", s.base_url()))
        .header("X-Reposix-Agent", "tracker-user")
        .send()
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 204);
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

/// A local issue with a title and a body.
fn created(repo: &Repo, who: &str, title: &str, body: &str) -> reposix::repo::Written {
    repo.create(
        &actor(who),
        NewIssue {
            title: title.into(),
            body: body.into(),
            ..NewIssue::default()
        },
    )
    .expect("create")
}

fn only_issue(repo: &Repo) -> IssueId {
    let listing = repo.list().expect("list");
    assert_eq!(listing.issues.len(), 1, "{:?}", listing.issues);
    listing.issues[0].id
}

/// `reposix sync` of `from` then `into` through a bare remote shared by
/// the test's clones (created on first use next to `from`).
fn git_sync(into: &TestRepo, from: &TestRepo) {
    for t in [from, into] {
        git_sync_one(t, if std::ptr::eq(t, from) { into } else { from });
    }
}

/// `reposix sync` of `t` alone with the remote it shares with `other`.
fn git_sync_one(t: &TestRepo, other: &TestRepo) {
    let remote = shared_remote(t, other);
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
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/reposix-sim/seed.json");
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

// ---------------------------------------------------------------------------
// Issue 8: each case the randomized checker found, pinned. Every one of these
// failed on the projection of format 1 (three-way merges against a guessed
// base, state-based tracker removals, markers before bindings).

/// A tracker record as the sim serves it (marker included).
fn tracker_raw(s: &SimHandle, remote_id: &str) -> serde_json::Value {
    reqwest::blocking::Client::new()
        .get(format!("{}/projects/demo/issues/{remote_id}", s.base_url()))
        .header("X-Reposix-Agent", "tracker-user")
        .send()
        .expect("GET")
        .json()
        .expect("json")
}

/// A tracker user's raw PATCH (no If-Match: the web UI's last write wins).
fn tracker_patch_raw(s: &SimHandle, remote_id: &str, fields: serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .patch(format!("{}/projects/demo/issues/{remote_id}", s.base_url()))
        .header("X-Reposix-Agent", "tracker-user")
        .json(&fields)
        .send()
        .expect("PATCH");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text());
}

fn tracker_comments(s: &SimHandle, remote_id: &str) -> Vec<serde_json::Value> {
    reqwest::blocking::Client::new()
        .get(format!(
            "{}/projects/demo/issues/{remote_id}/comments",
            s.base_url()
        ))
        .header("X-Reposix-Agent", "tracker-user")
        .send()
        .expect("GET comments")
        .json()
        .expect("json")
}

fn body_of(repo: &Repo, id: IssueId) -> String {
    repo.show(id).expect("show").body
}

#[track_caller]
fn once(text: &str, token: &str) {
    assert_eq!(
        text.matches(token).count(),
        1,
        "{token:?} should appear exactly once in {text:?}"
    );
}

/// Case 1: an export is not a tracker edit. Bob wrote "bob1" and pushed;
/// alice exported it; bob, before seeing her export, wrote "bob2". The
/// format-1 merge used the revision before the export as base and doubled
/// "bob1".
#[test]
fn exported_text_is_not_merged_back_in() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let third = backend(&s, "tracker-user");
    let remote = tracker_create(&s, &third, "X", "base");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    sync(&alice, &b, "alice");
    git_sync(&c, &a);
    let id = only_issue(&bob);
    bob.apply(id, &actor("bob"), &[Change::Body("base bob1".into())])
        .expect("edit");
    git_sync(&a, &c);
    sync(&alice, &b, "alice");
    bob.apply(id, &actor("bob"), &[Change::Body("base bob1 bob2".into())])
        .expect("edit");
    git_sync(&c, &a);
    git_sync(&a, &c);
    assert_eq!(body_of(&alice, id), "base bob1 bob2");
    assert_eq!(body_of(&bob, id), "base bob1 bob2");
    sync(&bob, &b, "bob");
    let tracker = b.get(&remote.remote_id).expect("get").expect("exists");
    assert_eq!(tracker.body, "base bob1 bob2");
}

/// Found by the model checker (soak seed 1003): a clone imports an issue
/// created in another clone before git brings it the `create`. Once the
/// `create` arrives, the observed chain has no sync point; the fold took
/// the set for a format-1 log and showed a three-way merge from an empty
/// base, the create's text twice, which the next export sent to the
/// tracker. The chain is now synced as an import from the `create`.
#[test]
fn an_import_made_before_the_create_arrived_keeps_the_text_once() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let w = created(&alice, "alice", "Made here", "original line");
    sync(&alice, &b, "alice");
    let remote_id = alice.show(w.issue).expect("show").remotes[0]
        .remote_id
        .clone();
    // The backend's update keeps the marker, as a web editor does.
    tracker_edit(
        &b,
        &remote_id,
        IssuePatch {
            body: Some("tracker line\noriginal line".into()),
            ..IssuePatch::default()
        },
    );
    // Bob imports first (no `create` yet), then git brings the log.
    sync(&bob, &b, "bob");
    git_sync(&c, &a);
    assert_eq!(body_of(&bob, w.issue), "tracker line\noriginal line");
    sync(&bob, &b, "bob");
    let tracker = b.get(&remote_id).expect("get").expect("exists");
    assert_eq!(tracker.body, "tracker line\noriginal line");
    git_sync(&a, &c);
    sync(&alice, &b, "alice");
    assert_eq!(body_of(&alice, w.issue), "tracker line\noriginal line");
}

/// Found by the model checker (soak seed 1006): alice edits the body,
/// pushes the edit through git, then exports it; bob imports the
/// tracker's text before git brings him her edit (a derived copy of it),
/// then gets the edit but not her export record. The body showed her line
/// twice, and bob's next export sent it so. The fold now finds that the
/// state with her edit is exactly the tracker's text and drops the copy.
#[test]
fn an_edit_that_arrives_after_its_import_is_kept_once() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let w = created(&alice, "alice", "Made here", "first line");
    git_sync(&c, &a);
    alice
        .apply(
            w.issue,
            &actor("alice"),
            &[Change::Body("first line\nsecond line".into())],
        )
        .expect("edit");
    // The edit reaches the remote before the export, whose record stays
    // in alice's clone for now.
    git_sync_one(&a, &c);
    sync(&alice, &b, "alice");
    sync(&bob, &b, "bob");
    git_sync_one(&c, &a);
    assert_eq!(body_of(&bob, w.issue), "first line\nsecond line");
    sync(&bob, &b, "bob");
    let remote_id = bob.show(w.issue).expect("show").remotes[0]
        .remote_id
        .clone();
    let tracker = b.get(&remote_id).expect("get").expect("exists");
    assert_eq!(tracker.body, "first line\nsecond line");
    git_sync(&a, &c);
    git_sync(&c, &a);
    assert_eq!(body_of(&alice, w.issue), "first line\nsecond line");
    assert_eq!(body_of(&bob, w.issue), "first line\nsecond line");
}

/// Soak seed 1030: two clones import one tracker issue from different
/// revisions without seeing each other (two derived copies of its first
/// text), and a third deletes a word in one copy. The join that meets the
/// copies keeps one; the deletion, made in the copy it dropped, is carried
/// to the copy it kept, whether the join is written before the deletion
/// arrives or after.
#[test]
fn a_deletion_in_a_copy_that_a_join_drops_is_carried_to_the_kept_copy() {
    for join_first in [true, false] {
        let s = quiet_sim();
        let b = backend(&s, "reposix");
        let third = backend(&s, "tracker-user");
        let remote = tracker_create(&s, &third, "X", "alpha one");
        let (c0, c1, c2) = (TestRepo::new(), TestRepo::new(), TestRepo::new());
        let (r0, r1, r2) = (c0.open(), c1.open(), c2.open());
        sync(&r1, &b, "carol");
        git_sync(&c2, &c1);
        tracker_edit(
            &third,
            &remote.remote_id,
            IssuePatch {
                body: Some("alpha one beta".into()),
                ..IssuePatch::default()
            },
        );
        // c0 imports the newer revision from nothing: a second copy.
        sync(&r0, &b, "alice");
        let id = only_issue(&r2);
        r2.apply(id, &actor("frank"), &[Change::Body("one".into())])
            .expect("edit");
        if join_first {
            // The join is written (and exported) before the deletion
            // reaches c0.
            git_sync(&c0, &c1);
            sync(&r0, &b, "alice");
        }
        git_sync(&c0, &c2);
        sync(&r0, &b, "alice");
        git_sync(&c2, &c0);
        let tracker = b.get(&remote.remote_id).expect("get").expect("exists");
        for (who, body) in [
            ("c0", body_of(&r0, id)),
            ("c2", body_of(&r2, id)),
            ("tracker", tracker.body),
        ] {
            assert!(
                !body.contains("alpha"),
                "{who} (join first: {join_first}): {body:?}"
            );
            once(&body, "one");
            once(&body, "beta");
        }
    }
}

/// tracker_model's thirteenth trace: a word is deleted by a clone after a
/// second clone got it and not the deletion. A third clone, with both,
/// exports; the second, which has not seen that export, imports the
/// tracker's text and exports its own, word included. When the records
/// meet, the word must stay deleted: its return on the tracker was a stale
/// state, not anyone's edit.
#[test]
fn a_deletion_the_last_tracker_writer_had_not_seen_holds() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (c0, c1, c2) = (TestRepo::new(), TestRepo::new(), TestRepo::new());
    let (r0, r1, r2) = (c0.open(), c1.open(), c2.open());
    let w = created(&r1, "carol", "Shared", "seed");
    git_sync(&c2, &c1);
    r2.apply(
        w.issue,
        &actor("frank"),
        &[Change::Body("seed stale".into())],
    )
    .expect("edit");
    git_sync(&c1, &c2);
    git_sync(&c0, &c1);
    r2.apply(w.issue, &actor("frank"), &[Change::Body("seed".into())])
        .expect("delete");
    git_sync(&c0, &c2);
    r0.apply(w.issue, &actor("alice"), &[Change::Body("new seed".into())])
        .expect("edit");
    sync(&r0, &b, "alice");
    sync(&r1, &b, "carol");
    let remote_id = r1.show(w.issue).expect("show").remotes[0].remote_id.clone();
    assert!(
        b.get(&remote_id)
            .expect("get")
            .expect("exists")
            .body
            .contains("stale"),
        "the stale export this test is about did not happen"
    );
    // From the moment c0 holds both exports, and every step after.
    git_sync(&c0, &c1);
    assert!(
        !body_of(&r0, w.issue).contains("stale"),
        "c0 after the meet"
    );
    for _ in 0..2 {
        git_sync(&c2, &c0);
        sync(&r0, &b, "alice");
        sync(&r1, &b, "carol");
        git_sync(&c0, &c1);
        for r in [&r0, &r1, &r2] {
            assert!(!body_of(r, w.issue).contains("stale"));
        }
    }
    git_sync(&c2, &c0);
    let tracker = b.get(&remote_id).expect("get").expect("exists");
    for (who, body) in [
        ("c0", body_of(&r0, w.issue)),
        ("c1", body_of(&r1, w.issue)),
        ("c2", body_of(&r2, w.issue)),
        ("tracker", tracker.body),
    ] {
        assert!(!body.contains("stale"), "{who}: {body:?}");
        once(&body, "new");
        once(&body, "seed");
    }
}

/// Case 2: one tracker edit imported by two clones, each editing the body
/// afterwards: the tracker's text must be in the body once.
#[test]
fn a_tracker_edit_imported_by_two_clones_lands_once() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let third = backend(&s, "tracker-user");
    let remote = tracker_create(&s, &third, "X", "base");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (ra, rc) = (a.open(), c.open());
    sync(&ra, &b, "alice");
    git_sync(&c, &a);
    let id = only_issue(&rc);
    tracker_edit(
        &third,
        &remote.remote_id,
        IssuePatch {
            body: Some("base TRACKER".into()),
            ..IssuePatch::default()
        },
    );
    for r in [&ra, &rc] {
        Projection::new(r.store(), &b, actor("x"), &|_| {})
            .import(false)
            .expect("import");
    }
    ra.apply(
        id,
        &actor("alice"),
        &[Change::Body("base TRACKER c0".into())],
    )
    .expect("edit");
    rc.apply(
        id,
        &actor("carol"),
        &[Change::Body("c1 base TRACKER".into())],
    )
    .expect("edit");
    git_sync(&c, &a);
    git_sync(&a, &c);
    sync(&ra, &b, "alice");
    git_sync(&c, &a);
    for r in [&ra, &rc] {
        let body = body_of(r, id);
        for t in ["TRACKER", "c0", "c1", "base"] {
            once(&body, t);
        }
    }
    assert_eq!(body_of(&ra, id), body_of(&rc, id));
    let tracker = b.get(&remote.remote_id).expect("get").expect("exists");
    assert_eq!(tracker.body, body_of(&ra, id));
}

/// Case 3: two tracker edits imported separately, and an offline local
/// edit from before both: nothing of T1 may be lost.
#[test]
fn tracker_edits_imported_separately_all_survive_a_concurrent_local_edit() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let third = backend(&s, "tracker-user");
    let remote = tracker_create(&s, &third, "X", "base\n");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (online, offline) = (a.open(), c.open());
    sync(&online, &b, "alice");
    git_sync(&c, &a);
    let id = only_issue(&offline);
    offline
        .apply(id, &actor("olga"), &[Change::Body("L\nbase\n".into())])
        .expect("offline edit");
    for (n, text) in [(1, "base\nT1\n"), (2, "base\nT1\nT2\n")] {
        tracker_edit(
            &third,
            &remote.remote_id,
            IssuePatch {
                body: Some(text.into()),
                ..IssuePatch::default()
            },
        );
        Projection::new(online.store(), &b, actor("alice"), &|_| {})
            .import(false)
            .unwrap_or_else(|e| panic!("import {n}: {e}"));
    }
    git_sync(&a, &c);
    git_sync(&c, &a);
    for r in [&online, &offline] {
        let body = body_of(r, id);
        for t in ["L\n", "base\n", "T1\n", "T2\n"] {
            once(&body, t);
        }
    }
    sync(&offline, &b, "olga");
    let tracker = b.get(&remote.remote_id).expect("get").expect("exists");
    assert_eq!(tracker.body, body_of(&offline, id));
}

/// Case 4: a tracker user deletes the `<!-- reposix:… -->` marker. The
/// binding decides, not the marker: no second local issue, and sync goes on.
#[test]
fn a_deleted_marker_neither_duplicates_the_issue_nor_wedges_sync() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let t = TestRepo::new();
    let repo = t.open();
    let w = repo
        .create(
            &actor("alice"),
            NewIssue {
                title: "Local first".into(),
                body: "text".into(),
                ..NewIssue::default()
            },
        )
        .expect("create");
    sync(&repo, &b, "alice");
    let remote_id = repo.show(w.issue).expect("show").remotes[0]
        .remote_id
        .clone();
    let raw = tracker_raw(&s, &remote_id);
    let body = raw["body"].as_str().expect("body");
    assert!(body.contains("<!-- reposix:"), "{body:?}");
    tracker_patch_raw(
        &s,
        &remote_id,
        serde_json::json!({"body": "text, edited on the tracker"}),
    );
    sync(&repo, &b, "alice");
    assert_eq!(only_issue(&repo), w.issue);
    repo.apply(w.issue, &actor("alice"), &[Change::Title("Renamed".into())])
        .expect("edit");
    sync(&repo, &b, "alice");
    let tracker = b.get(&remote_id).expect("get").expect("exists");
    assert_eq!(tracker.title, "Renamed");
    assert_eq!(tracker.body, "text, edited on the tracker");
    assert_eq!(only_issue(&repo), w.issue);
}

/// Found by the model checker (soak seed 1000): alice exports her issue;
/// a tracker user deletes its marker; bob, who has the issue from git but
/// not alice's binding, can match nothing to it and creates it a second
/// time (nobody could have avoided that). Once the bindings meet, the
/// first remote issue is kept everywhere; the twin's comments move to it
/// (once, although both clones retire it) and the twin is deleted.
#[test]
fn twins_created_without_a_marker_are_retired_into_the_first() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let w = created(&alice, "alice", "Made here", "text");
    git_sync_one(&a, &c);
    sync(&alice, &b, "alice");
    let first = alice.show(w.issue).expect("show").remotes[0]
        .remote_id
        .clone();
    alice
        .apply(
            w.issue,
            &actor("alice"),
            &[Change::Comment("said on the first".into())],
        )
        .expect("comment");
    sync(&alice, &b, "alice");
    tracker_patch_raw(&s, &first, serde_json::json!({"body": "text, no marker"}));
    git_sync_one(&c, &a);
    sync(&bob, &b, "bob");
    let listed = b.list_changed(None).expect("list").0;
    assert_eq!(listed.len(), 2, "the twin exists: {listed:?}");
    let twin = listed
        .iter()
        .map(|r| r.remote_id.clone())
        .find(|r| *r != first)
        .expect("a second remote issue");
    tracker_comment(&s, &twin, "said on the twin");
    // Alice lists the twin twice in one sync (a copy derived, then, after
    // her export, the twin itself as her issue's): its comment listing
    // lacks her comment, which must not read as deleted on the tracker.
    sync(&alice, &b, "alice");
    sync(&bob, &b, "bob");
    git_sync(&a, &c);
    // Both retire it: the comment moves once, the twin goes.
    sync(&alice, &b, "alice");
    sync(&bob, &b, "bob");
    git_sync(&c, &a);
    git_sync(&a, &c);
    sync(&alice, &b, "alice");
    assert!(b.get(&twin).expect("get").is_none(), "the twin was deleted");
    let on_first: Vec<String> = b
        .comments(&first)
        .expect("comments")
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(on_first, ["said on the first", "said on the twin"]);
    for repo in [&alice, &bob] {
        let state = repo.show(w.issue).expect("show");
        let bodies: Vec<&str> = state.comments.iter().map(|c| c.body.as_str()).collect();
        assert_eq!(bodies, ["said on the first", "said on the twin"]);
        assert_eq!(state.body, "text, no marker");
        let live: Vec<&str> = state
            .remotes
            .iter()
            .filter(|r| !r.gone)
            .map(|r| r.remote_id.as_str())
            .collect();
        assert_eq!(live, [first.as_str()]);
        let listing = repo.list().expect("list");
        assert_eq!(listing.issues.len(), 1, "{:?}", listing.issues);
    }
}

/// Another replica's create of `issue` ("Raced", "text") racing the one
/// already made, not settled yet: its remote id.
fn racing_create(b: &SimBackend, issue: IssueId) -> String {
    b.create(&NewRemoteIssue {
        title: "Raced".into(),
        body: "text".into(),
        status: Status::Open,
        labels: vec![],
        assignees: vec![],
        marker: issue.to_string(),
    })
    .expect("racing create")
    .remote_id
}

/// Found by the model checker (soak seed 1056): two clones export a new
/// issue at once. The later create loses (`settle_twin` deletes it), but a
/// third sync listed it in between: its marker names an issue already
/// bound to the winner here, and the import made it a second local issue,
/// which nothing ever removed. A remote issue created that close to the
/// one its marker's issue is bound to is a twin of that issue.
#[test]
fn a_racing_create_listed_before_its_creator_deletes_it_is_a_twin() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let w = created(&alice, "alice", "Raced", "text");
    sync(&alice, &b, "alice");
    git_sync(&c, &a);
    // Carol's create of the same issue, not settled yet.
    let twin = racing_create(&b, w.issue);
    sync(&bob, &b, "bob");
    let listing = bob.list().expect("list");
    assert_eq!(listing.issues.len(), 1, "{:?}", listing.issues);
    assert!(b.get(&twin).expect("get").is_none(), "bob retired the twin");
    git_sync(&a, &c);
    sync(&alice, &b, "alice");
    for repo in [&alice, &bob] {
        let state = repo.show(w.issue).expect("show");
        let live: Vec<&str> = state
            .remotes
            .iter()
            .filter(|r| !r.gone)
            .map(|r| r.remote_id.as_str())
            .collect();
        assert_eq!(live.len(), 1, "{:?}", state.remotes);
        assert_ne!(live[0], twin);
        assert_eq!(state.body, "text");
        assert_eq!(repo.list().expect("list").issues.len(), 1);
    }
    assert_eq!(b.list_changed(None).expect("list").0.len(), 1);
}

/// A twin whose id the tracker gave to another issue before anyone retired
/// it (the sim reuses the newest id after a delete): retiring it would
/// delete a tracker user's issue. The exporter reads the twin first and
/// records it gone instead.
#[test]
fn a_twin_whose_id_was_reused_is_not_deleted() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let w = created(&alice, "alice", "Raced", "text");
    sync(&alice, &b, "alice");
    git_sync(&c, &a);
    let twin = racing_create(&b, w.issue);
    // Bob imports the twin; its creator deletes it and a tracker user's
    // create takes the id before bob exports.
    Projection::new(bob.store(), &b, actor("bob"), &|_| {})
        .import(false)
        .expect("import");
    tracker_delete(&s, &twin);
    let other = tracker_create(&s, &b, "Someone else's", "their text");
    assert_eq!(other.remote_id, twin, "the sim reuses the newest id");
    sync(&bob, &b, "bob");
    let kept = b.get(&twin).expect("get").expect("the other issue is kept");
    assert_eq!(kept.title, "Someone else's");
    assert_eq!(kept.body, "their text");
    let state = bob.show(w.issue).expect("show");
    assert_eq!(state.body, "text");
    assert_eq!(state.title, "Raced");
}

/// Found by the model checker (soak seed 1017): alice and bob export the
/// same issue at once, bob after deleting a line of it. Bob's create
/// loses to alice's (found by marker, his copy deleted), and bob recorded
/// alice's text as exported from his document: the deleted line came back
/// everywhere. The winner's text is now synced like an import.
#[test]
fn a_create_that_loses_to_another_clones_keeps_local_edits() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let w = created(&alice, "alice", "Made here", "keep\ndrop");
    git_sync(&c, &a);
    bob.apply(w.issue, &actor("bob"), &[Change::Body("keep".into())])
        .expect("edit");
    sync(&alice, &b, "alice");
    // Bob exports without importing first: his create races alice's.
    let report = Projection::new(bob.store(), &b, actor("bob"), &|_| {})
        .export()
        .expect("export");
    assert_eq!(body_of(&bob, w.issue), "keep");
    assert_eq!((report.created, report.recovered), (0, 1), "{report:?}");
    sync(&bob, &b, "bob");
    git_sync(&a, &c);
    git_sync(&c, &a);
    sync(&alice, &b, "alice");
    let listed = b.list_changed(None).expect("list").0;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].body, "keep");
    assert_eq!(body_of(&alice, w.issue), "keep");
    assert_eq!(body_of(&bob, w.issue), "keep");
}

/// Found by the model checker (seed 2): the sim gives a deleted issue's id
/// to the next create, here within the same second (equal creation times)
/// and at the same version. A clone whose export run created that issue
/// and then came to the one still bound to the deleted id (not noticed:
/// the import before it saw nothing) sent that one's edit to the other's
/// tracker copy (the conditional write matched), and the two issues'
/// texts mixed. The tracker's marker now decides whose the id is.
#[test]
fn a_reused_tracker_id_is_not_written_by_the_issue_that_had_it() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let t = TestRepo::new();
    let alice = t.open();
    let old = created(&alice, "alice", "Old one", "old text");
    sync(&alice, &b, "alice");
    let remote_id = alice.show(old.issue).expect("show").remotes[0]
        .remote_id
        .clone();
    tracker_delete(&s, &remote_id);
    alice
        .apply(
            old.issue,
            &actor("alice"),
            &[Change::Title("Stale edit".into())],
        )
        .expect("edit");
    // Export walks issues in id order: the new issue must come first, so
    // that its create takes the freed id before the old one is exported.
    // Issues that sort after the old one are created on the tracker later.
    let new = loop {
        let w = created(&alice, "alice", "New one", "new text");
        if w.issue < old.issue {
            break w;
        }
    };
    sync(&alice, &b, "alice");
    let reused = alice.show(new.issue).expect("show").remotes[0]
        .remote_id
        .clone();
    assert_eq!(reused, remote_id, "the sim reuses the newest id");
    let tracker = b.get(&remote_id).expect("get").expect("exists");
    assert_eq!(tracker.title, "New one");
    assert_eq!(tracker.body, "new text");
    let state = alice.show(old.issue).expect("show");
    assert!(state.remotes[0].gone, "{:?}", state.remotes);
    assert_eq!(state.body, "old text");
    assert_eq!(alice.show(new.issue).expect("show").body, "new text");
}

/// Found by the model checker (soak seed 1052, 4 steps): bob imported
/// alice's exported issue (sim #1, version 1); a tracker user deleted it
/// and created another, which the sim gave id 1 and version 1 again in
/// the same second (equal creation times) and which carries no marker.
/// Bob's import took it for alice's issue: its text replaced hers. A
/// revision names one state of one object: the same revision with another
/// title or body is another object.
#[test]
fn a_reused_id_at_the_same_revision_is_another_issue() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let third = backend(&s, "tracker-user");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let w = created(&alice, "alice", "Hers", "her text");
    sync(&alice, &b, "alice");
    sync(&bob, &b, "bob");
    let remote_id = bob.show(w.issue).expect("show").remotes[0]
        .remote_id
        .clone();
    tracker_delete(&s, &remote_id);
    let other = tracker_create(&s, &third, "Theirs", "their text");
    assert_eq!(other.remote_id, remote_id, "the sim reuses the newest id");
    sync(&bob, &b, "bob");
    let hers = bob.show(w.issue).expect("show");
    assert_eq!(hers.title, "Hers");
    assert_eq!(hers.body, "her text");
    let listing = bob.list().expect("list");
    let theirs: Vec<_> = listing
        .issues
        .iter()
        .filter(|i| i.title == "Theirs")
        .collect();
    assert_eq!(theirs.len(), 1, "{:?}", listing.issues);
    assert_ne!(theirs[0].id, w.issue);
}

/// Found by the model checker (CLI seed 1121, 13 steps): alice imported
/// a tracker user's issue; the tracker user deleted it and the sim gave
/// its id to alice's next create (ids are max + 1). Alice's later comment
/// on the imported issue, which still thought itself bound to the id, was
/// exported onto the new issue. An imported issue whose id the tracker
/// now gives to an object with another creation time, marked as another
/// issue, is gone: nothing of it is written there.
#[test]
fn an_imported_issue_whose_id_the_sim_reused_writes_nothing_there() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/reposix-sim/seed.json");
    let s = sim(SimConfig {
        seed_file: Some(seed.into()),
        rate_limit: 0,
        ..SimConfig::default()
    });
    let b = backend(&s, "reposix");
    let t = TestRepo::new();
    let alice = t.open();
    sync(&alice, &b, "alice");
    let listing = alice.list().expect("list");
    // The seed's newest issue: its id is the one the sim gives next.
    let (old, remote_id) = listing
        .issues
        .iter()
        .filter_map(|i| {
            let shown = alice.show(i.id).expect("show");
            let rid = shown.remotes.first()?.remote_id.clone();
            Some((i.id, rid))
        })
        .max_by_key(|(_, rid)| rid.parse::<u64>().expect("numeric id"))
        .expect("seeded issues");
    assert!(old.is_derived());
    tracker_delete(&s, &remote_id);
    alice
        .apply(
            old,
            &actor("alice"),
            &[Change::Comment("on the imported issue".into())],
        )
        .expect("comment");
    // Export walks issues in id order: the new issue must come first, so
    // that its create takes the freed id before the old one is exported
    // (an import after the create would tell the two objects apart by
    // their revision, see above). Issues that sort after the old one are
    // created on the tracker later.
    let new = loop {
        let w = created(&alice, "alice", "New one", "new text");
        if w.issue < old {
            break w;
        }
    };
    sync(&alice, &b, "alice");
    let shown = alice.show(new.issue).expect("show");
    assert_eq!(
        shown.remotes[0].remote_id, remote_id,
        "the sim reuses the id"
    );
    let on_tracker = tracker_comments(&s, &remote_id);
    assert!(
        on_tracker.iter().all(|c| !c["body"]
            .as_str()
            .unwrap_or("")
            .contains("on the imported issue")),
        "{on_tracker:?}"
    );
    let state = alice.show(old).expect("show");
    assert!(state.remotes[0].gone, "{:?}", state.remotes);
    assert_eq!(state.comments.len(), 1);
    let tracker = b.get(&remote_id).expect("get").expect("exists");
    assert_eq!(tracker.title, "New one");
}

/// Case 5: a tracker comment that does not move the issue's revision is
/// still imported by `--reconcile`, and a second attached clone does not
/// create an exported comment again.
#[test]
fn comments_are_found_without_a_new_revision_and_never_created_twice() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let third = backend(&s, "tracker-user");
    let remote = tracker_create(&s, &third, "X", "");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (ra, rc) = (a.open(), c.open());
    sync(&ra, &b, "alice");
    sync(&rc, &b, "carol");
    let id = only_issue(&ra);
    // Alice comments and shares it by git before exporting; carol, attached
    // too, gets it but not alice's export.
    ra.apply(id, &actor("alice"), &[Change::Comment("from alice".into())])
        .expect("comment");
    git_sync(&c, &a);
    sync(&ra, &b, "alice");
    sync(&rc, &b, "carol");
    let on_tracker = tracker_comments(&s, &remote.remote_id);
    assert_eq!(on_tracker.len(), 1, "{on_tracker:?}");
    tracker_comment(&s, &remote.remote_id, "from the tracker");
    Projection::new(ra.store(), &b, actor("alice"), &|_| {})
        .import(true)
        .expect("reconcile");
    let comments: Vec<String> = ra
        .show(id)
        .expect("show")
        .comments
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(comments, vec!["from alice", "from the tracker"]);
}

/// Case 6: a local edit of a comment that came from the tracker is sent.
/// (Also pins a fold bug it exposed: the edit's observation and the one it
/// replaced share a second-granular revision, the causal order between them
/// was cyclic, and the comment vanished from the fold.)
#[test]
fn local_edits_of_tracker_comments_are_exported() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let third = backend(&s, "tracker-user");
    let remote = tracker_create(&s, &third, "X", "");
    tracker_comment(&s, &remote.remote_id, "typo'd");
    let t = TestRepo::new();
    let repo = t.open();
    sync(&repo, &b, "alice");
    let id = only_issue(&repo);
    let comment = repo.show(id).expect("show").comments[0].id;
    repo.apply(
        id,
        &actor("alice"),
        &[Change::EditComment(comment, "fixed".into())],
    )
    .expect("edit comment");
    sync(&repo, &b, "alice");
    let on_tracker = tracker_comments(&s, &remote.remote_id);
    assert_eq!(on_tracker.len(), 1);
    assert_eq!(on_tracker[0]["body"], "fixed");
    assert_eq!(repo.show(id).expect("show").comments[0].body, "fixed");
}

/// Case 7: a tracker that holds one assignee does not make the local set
/// lose the others, now or after a later export of another field.
#[test]
fn a_single_assignee_tracker_does_not_drop_local_assignees() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let t = TestRepo::new();
    let repo = t.open();
    let w = repo
        .create(
            &actor("alice"),
            NewIssue {
                title: "Two people".into(),
                assignees: vec!["alice".into(), "bob".into()],
                ..NewIssue::default()
            },
        )
        .expect("create");
    sync(&repo, &b, "alice");
    assert_eq!(
        repo.show(w.issue).expect("show").assignees,
        ["alice", "bob"]
    );
    repo.apply(
        w.issue,
        &actor("alice"),
        &[Change::AddAssignee("carol".into())],
    )
    .expect("assign");
    sync(&repo, &b, "alice");
    repo.apply(w.issue, &actor("alice"), &[Change::Title("Three".into())])
        .expect("title");
    sync(&repo, &b, "alice");
    let state = repo.show(w.issue).expect("show");
    assert_eq!(state.assignees, ["alice", "bob", "carol"]);
    let remote = b
        .get(&state.remotes[0].remote_id)
        .expect("get")
        .expect("exists");
    assert_eq!(remote.assignees, ["alice"]);
    assert_eq!(remote.title, "Three");
}

/// A clone that imported the tracker's only issue, then deleted there.
fn imported_then_deleted(s: &SimHandle, b: &SimBackend) -> (TestRepo, IssueId) {
    imported_then_deleted_after(s, b, |_, _| {})
}

/// [`imported_then_deleted`], running `before` (on the clone's repository
/// and issue) before the tracker deletes the issue.
fn imported_then_deleted_after(
    s: &SimHandle,
    b: &SimBackend,
    before: impl FnOnce(&Repo, IssueId),
) -> (TestRepo, IssueId) {
    let third = backend(s, "tracker-user");
    let remote = tracker_create(s, &third, "Doomed", "");
    let t = TestRepo::new();
    let repo = t.open();
    sync(&repo, b, "alice");
    let id = only_issue(&repo);
    before(&repo, id);
    tracker_delete(s, &remote.remote_id);
    (t, id)
}

/// Import and export once: the export finds the issue gone and records
/// it so. The state after.
fn export_finds_it_gone(repo: &Repo, b: &SimBackend, id: IssueId) -> IssueState {
    let p = Projection::new(repo.store(), b, actor("alice"), &|_| {});
    p.import(false).expect("import");
    let report = p.export().expect("export");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.gone, 1);
    let state = repo.show(id).expect("show");
    assert!(state.remotes[0].gone, "{:?}", state.remotes);
    state
}

/// Case 8: an issue deleted on the tracker is recorded, shown, and later
/// local edits do not wedge sync.
#[test]
fn an_issue_deleted_on_the_tracker_is_recorded_and_does_not_wedge_sync() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (t, id) = imported_then_deleted(&s, &b);
    let repo = t.open();
    repo.apply(id, &actor("alice"), &[Change::Title("Still here".into())])
        .expect("edit");
    let state = export_finds_it_gone(&repo, &b, id);
    assert_eq!(state.status, Status::WontFix);
    assert_eq!(state.title, "Still here");
    // And again: nothing to do, nothing failing.
    sync(&repo, &b, "alice");
    // A reconcile notices deletions without any local edit too.
    let third = backend(&s, "tracker-user");
    let other = tracker_create(&s, &third, "Also doomed", "");
    sync(&repo, &b, "alice");
    tracker_delete(&s, &other.remote_id);
    let report = Projection::new(repo.store(), &b, actor("alice"), &|_| {})
        .import(true)
        .expect("reconcile");
    assert_eq!(report.gone, 1);
}

/// Found by the model checker (soak seed 1008): an issue deleted on the
/// tracker whose only local change since is a new comment. No field
/// needs a PATCH, so the 404 came from the comments endpoint, and every
/// later sync failed (exit 11) with an idle tracker. Now the deletion is
/// confirmed on the issue and recorded; the comment stays local.
#[test]
fn a_comment_on_an_issue_deleted_on_the_tracker_does_not_wedge_sync() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (t, id) = imported_then_deleted(&s, &b);
    let repo = t.open();
    repo.apply(id, &actor("alice"), &[Change::Comment("late word".into())])
        .expect("comment");
    for round in 0..2 {
        let p = Projection::new(repo.store(), &b, actor("alice"), &|_| {});
        p.import(false).expect("import");
        let report = p.export().expect("export");
        assert!(
            report.failed.is_empty(),
            "round {round}: {:?}",
            report.failed
        );
        assert_eq!(report.gone, usize::from(round == 0), "round {round}");
    }
    let state = repo.show(id).expect("show");
    assert!(state.remotes[0].gone, "{:?}", state.remotes);
    assert_eq!(state.comments.len(), 1);
    assert_eq!(state.comments[0].body, "late word");
}

/// Found by the model checker (soak seed 1216, shrunk to 11 steps): a
/// comment exported to the tracker, the issue deleted there, then the
/// comment edited here. The edit's 404 came from the deleted issue, was
/// recorded as the comment's deletion, and the fold deleted the comment
/// in every clone. Now the 404 is confirmed on the issue, the issue is
/// recorded gone, and the comment stays with its edit.
#[test]
fn a_comment_edit_on_an_issue_deleted_on_the_tracker_keeps_the_comment() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (t, id) = imported_then_deleted_after(&s, &b, |repo, id| {
        repo.apply(id, &actor("alice"), &[Change::Comment("first word".into())])
            .expect("comment");
        sync(repo, &b, "alice");
    });
    let repo = t.open();
    let comment = repo.show(id).expect("show").comments[0].id;
    repo.apply(
        id,
        &actor("alice"),
        &[Change::EditComment(comment, "first word, edited".into())],
    )
    .expect("edit");
    let state = export_finds_it_gone(&repo, &b, id);
    assert_eq!(state.comments.len(), 1, "{:?}", state.comments);
    assert_eq!(state.comments[0].body, "first word, edited");
}

/// Case 9: a tracker without a comments API: the export says how many
/// comments stayed local.
#[test]
fn comments_a_tracker_cannot_hold_are_counted() {
    let s = sim(SimConfig {
        rate_limit: 0,
        accept_comments: false,
        ..SimConfig::default()
    });
    let b = backend(&s, "reposix");
    let t = TestRepo::new();
    let repo = t.open();
    let w = repo
        .create(
            &actor("alice"),
            NewIssue {
                title: "Talkative".into(),
                ..NewIssue::default()
            },
        )
        .expect("create");
    repo.apply(w.issue, &actor("alice"), &[Change::Comment("one".into())])
        .expect("comment");
    let p = Projection::new(repo.store(), &b, actor("alice"), &|_| {});
    let report = p.export().expect("export");
    assert_eq!(report.created, 1);
    assert_eq!(report.comments_local_only, 1);
}

/// The sim gives a deleted issue's id to the next issue created. A clone
/// still bound to the deleted one must not take the new one for it: the
/// tracker's creation time tells them apart (found by the CLI checker).
#[test]
fn a_reused_remote_id_names_a_new_issue() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (ra, rc) = (a.open(), c.open());
    let first = ra
        .create(
            &actor("alice"),
            NewIssue {
                title: "first".into(),
                body: "one".into(),
                ..NewIssue::default()
            },
        )
        .expect("create")
        .issue;
    sync(&ra, &b, "alice");
    git_sync(&c, &a);
    let remote_id = ra.show(first).expect("show").remotes[0].remote_id.clone();
    let resp = reqwest::blocking::Client::new()
        .delete(format!("{}/projects/demo/issues/{remote_id}", s.base_url()))
        .header("X-Reposix-Agent", "tracker-user")
        .send()
        .expect("DELETE");
    assert_eq!(resp.status().as_u16(), 204);
    // Within the same second, so creation times cannot tell the two apart:
    // the marker the new issue carries does.
    let second = rc
        .create(
            &actor("carol"),
            NewIssue {
                title: "second".into(),
                body: "two".into(),
                ..NewIssue::default()
            },
        )
        .expect("create")
        .issue;
    sync(&rc, &b, "carol");
    assert_eq!(
        rc.show(second).expect("show").remotes[0].remote_id,
        remote_id,
        "the sim reuses the id"
    );
    git_sync(&a, &c);
    sync(&ra, &b, "alice");
    git_sync(&c, &a);
    for r in [&ra, &rc] {
        let one = r.show(first).expect("show");
        let two = r.show(second).expect("show");
        assert_eq!(one.title, "first");
        assert_eq!(one.body, "one");
        assert!(one.remotes.iter().all(|x| x.gone), "{:?}", one.remotes);
        assert_eq!(two.title, "second");
        assert_eq!(two.body, "two");
        assert_eq!(r.list().expect("list").issues.len(), 2);
    }
}

/// Alice creates an issue and exports it; a tracker user then rewrites its
/// body without the `<!-- reposix:… -->` marker. Returns (issue, remote id).
fn exported_then_marker_deleted(alice: &Repo, s: &SimHandle, b: &SimBackend) -> (IssueId, String) {
    let original = alice
        .create(
            &actor("alice"),
            NewIssue {
                title: "ours".into(),
                body: "text".into(),
                ..NewIssue::default()
            },
        )
        .expect("create")
        .issue;
    sync(alice, b, "alice");
    let remote_id = alice.show(original).expect("show").remotes[0]
        .remote_id
        .clone();
    tracker_patch_raw(
        s,
        &remote_id,
        serde_json::json!({"body": "text, markerless"}),
    );
    (original, remote_id)
}

/// Case 4 across clones (found by the CLI checker): a tracker user deletes
/// the marker of an issue alice created and exported; bob, who never saw
/// alice's binding, imports it as an issue of its own. When the clones
/// meet, bob's copy folds into alice's issue: one issue, listed once.
#[test]
fn a_copy_imported_without_the_marker_folds_into_the_original() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let (original, _) = exported_then_marker_deleted(&alice, &s, &b);
    sync(&bob, &b, "bob");
    assert_eq!(bob.list().expect("list").issues.len(), 1);
    git_sync(&c, &a);
    git_sync(&a, &c);
    sync(&alice, &b, "alice");
    sync(&bob, &b, "bob");
    git_sync(&c, &a);
    git_sync(&a, &c);
    for r in [&alice, &bob] {
        let listing = r.list().expect("list");
        assert_eq!(listing.issues.len(), 1, "{:?}", listing.issues);
        assert_eq!(listing.issues[0].id, original);
        let state = r.show(original).expect("show");
        assert_eq!(state.body, "text, markerless");
    }
}

/// Alice's exported issue whose marker a tracker user deleted; bob imports
/// it as a copy of his own; alice learns of the copy and folds it into her
/// issue. Bob has not heard of the merge yet.
struct MergedBehindBob {
    _sim: SimHandle,
    b: SimBackend,
    a: TestRepo,
    c: TestRepo,
    alice: Repo,
    bob: Repo,
    original: IssueId,
    remote_id: String,
    copy: IssueId,
}

impl MergedBehindBob {
    fn new() -> MergedBehindBob {
        let s = quiet_sim();
        let b = backend(&s, "reposix");
        let (a, c) = (TestRepo::new(), TestRepo::new());
        let (alice, bob) = (a.open(), c.open());
        let (original, remote_id) = exported_then_marker_deleted(&alice, &s, &b);
        sync(&bob, &b, "bob");
        let copy = bob.list().expect("list").issues[0].id;
        assert_ne!(copy, original, "bob imported a copy of his own");
        git_sync(&a, &c);
        sync(&alice, &b, "alice");
        assert_eq!(alice.list().expect("list").issues.len(), 1);
        MergedBehindBob {
            _sim: s,
            b,
            a,
            c,
            alice,
            bob,
            original,
            remote_id,
            copy,
        }
    }

    /// Bob's writes travel: git both ways and both trackers syncs, twice.
    fn settle(&self) {
        git_sync(&self.c, &self.a);
        for _ in 0..2 {
            sync(&self.bob, &self.b, "bob");
            sync(&self.alice, &self.b, "alice");
            git_sync(&self.c, &self.a);
            git_sync(&self.a, &self.c);
        }
    }
}

/// Found by the CLI checker (seed 1): bob comments on his copy before he
/// learns that alice folded it into her issue. The copy was no longer
/// exported once merged, so the comment stayed in a log nobody lists.
/// It must reach the tracker (once) and the issue the copy was merged into.
#[test]
fn a_comment_on_a_copy_written_before_the_merge_was_known_is_not_lost() {
    let m = MergedBehindBob::new();
    m.bob
        .apply(
            m.copy,
            &actor("bob"),
            &[Change::Comment("bob's note".into())],
        )
        .expect("comment");
    m.settle();
    for r in [&m.alice, &m.bob] {
        let state = r.show(m.original).expect("show");
        let notes = state
            .comments
            .iter()
            .filter(|c| c.body == "bob's note")
            .count();
        assert_eq!(notes, 1, "{:?}", state.comments);
    }
    let on_tracker = m.b.comments(&m.remote_id).expect("comments");
    assert_eq!(
        on_tracker
            .iter()
            .filter(|c| c.body.contains("bob's note"))
            .count(),
        1
    );
}

/// Found by the CLI checker (soak seed 1009, shrunk to 8 steps, about one
/// replay in three): as above, but bob edits his copy's body and labels
/// before he learns of the merge. A merged copy exported its comments
/// only, so the text and the label stayed in a log nobody lists. They
/// reach the tracker and, from there, the issue the copy was merged into.
#[test]
fn a_body_edit_on_a_copy_written_before_the_merge_was_known_is_not_lost() {
    let m = MergedBehindBob::new();
    let text = format!("{} bobs-token", m.bob.show(m.copy).expect("show").body);
    m.bob
        .apply(
            m.copy,
            &actor("bob"),
            &[Change::Body(text), Change::AddLabel("bobs-label".into())],
        )
        .expect("edit");
    m.settle();
    for r in [&m.alice, &m.bob] {
        let state = r.show(m.original).expect("show");
        once(&state.body, "bobs-token");
        assert!(
            state.labels.contains(&"bobs-label".to_owned()),
            "{:?}",
            state.labels
        );
    }
    let on_tracker = m.b.get(&m.remote_id).expect("get").expect("still there");
    once(&on_tracker.body, "bobs-token");
    assert!(on_tracker.labels.contains(&"bobs-label".to_owned()));
}

/// Found by the CLI checker (seed 4): bob imports alice's issue from the
/// tracker before git brings its history, and replaces its text. The text
/// was bootstrapped from nothing in bob's clone, a second copy of the one
/// alice's `create` holds: once the clones met, the replaced text came back.
/// Until the history arrives the body shows the tracker's text and refuses
/// edits (saying why); afterwards the same edit replaces the text once.
#[test]
fn a_body_imported_before_its_history_arrives_is_shown_and_not_duplicated() {
    let s = quiet_sim();
    let b = backend(&s, "reposix");
    let (a, c) = (TestRepo::new(), TestRepo::new());
    let (alice, bob) = (a.open(), c.open());
    let id = alice
        .create(
            &actor("alice"),
            NewIssue {
                title: "theirs".into(),
                body: "old words".into(),
                ..NewIssue::default()
            },
        )
        .expect("create")
        .issue;
    sync(&alice, &b, "alice");
    sync(&bob, &b, "bob");
    assert_eq!(bob.show(id).expect("show").body, "old words");
    let refused = bob
        .apply(id, &actor("bob"), &[Change::Body("new words".into())])
        .expect_err("no body edit before the history arrives");
    assert!(
        refused
            .to_string()
            .contains("cannot be edited in this clone yet"),
        "{refused}"
    );
    git_sync(&c, &a);
    bob.apply(id, &actor("bob"), &[Change::Body("new words".into())])
        .expect("edit once the history is here");
    for _ in 0..2 {
        sync(&bob, &b, "bob");
        sync(&alice, &b, "alice");
        git_sync(&c, &a);
        git_sync(&a, &c);
    }
    for r in [&alice, &bob] {
        assert_eq!(r.show(id).expect("show").body, "new words");
    }
}
