//! reposix as a library another program builds on: the tracker session
//! (`reposix::sync::tracker`) driven without the command line, as
//! `examples/agent.rs` does.

use std::cell::Cell;

use reposix::event::ActorId;
use reposix::repo::{Change, NewIssue, Repo};
use reposix::sync::tracker::{SessionError, TrackerSession, TrackerSyncOptions};
use reposix::tracker::sim::SimBackend;
use reposix::tracker::{Backend, BackendSpec};
use reposix_sim::{SimConfig, SimHandle};

use crate::support::TestRepo;

fn sim() -> SimHandle {
    reposix_sim::start(SimConfig {
        rate_limit: 0,
        ..SimConfig::default()
    })
    .expect("sim starts on loopback")
}

fn spec(s: &SimHandle) -> BackendSpec {
    BackendSpec::parse(&format!("sim::{}", s.project_url("demo"))).expect("spec")
}

/// Titles of the issues the tracker holds, sorted.
fn tracker_titles(s: &SimHandle) -> Vec<String> {
    let b = SimBackend::new(&spec(s), "observer").expect("adapter");
    let (issues, _) = b.list_changed(None).expect("list the sim");
    let mut titles: Vec<String> = issues.into_iter().map(|i| i.title).collect();
    titles.sort();
    titles
}

fn agent() -> ActorId {
    ActorId::new("agent-7").expect("actor")
}

#[test]
fn tracker_session_exports_what_an_agent_wrote_and_a_second_run_sends_nothing() {
    let s = sim();
    let t = TestRepo::new();
    let repo = Repo::open(t.path()).expect("open");
    repo.attach("sim", &spec(&s)).expect("attach");
    let new = NewIssue {
        title: "Flaky build".into(),
        body: "seen three times".into(),
        ..NewIssue::default()
    };
    let issue = repo.create(&agent(), new).expect("create").issue;
    repo.apply(issue, &agent(), &[Change::Comment("bisecting".into())])
        .expect("comment");

    let session = TrackerSession::open(&repo, "sim", agent()).expect("open the session");
    let first = session
        .run(&repo, TrackerSyncOptions::default(), &|_| {}, &|_| true)
        .expect("first run");
    let export = first.export.expect("an export ran");
    assert_eq!((export.created, export.comments), (1, 1), "{export:?}");
    assert_eq!(tracker_titles(&s), ["Flaky build"]);
    let shown = repo.show(issue).expect("show");
    assert_eq!(
        shown.remotes.len(),
        1,
        "the issue is bound to the sim issue"
    );

    let second = session
        .run(&repo, TrackerSyncOptions::default(), &|_| {}, &|_| true)
        .expect("second run");
    let export = second.export.expect("an export ran");
    assert_eq!((export.created, export.updated, export.comments), (0, 0, 0));
    assert_eq!(second.import.expect("an import ran").new_issues, 0);
    assert_eq!(tracker_titles(&s), ["Flaky build"], "nothing created twice");
}

#[test]
fn tracker_session_asks_before_a_first_publication_and_sends_nothing_when_refused() {
    let s = sim();
    let t = TestRepo::new();
    let repo = Repo::open(t.path()).expect("open");
    repo.attach("sim", &spec(&s)).expect("attach");
    for title in ["one", "two"] {
        let new = NewIssue {
            title: title.into(),
            ..NewIssue::default()
        };
        repo.create(&agent(), new).expect("create");
    }
    let session = TrackerSession::open(&repo, "sim", agent()).expect("open the session");
    let asked = Cell::new(None);
    let refuse = |local: usize| {
        asked.set(Some(local));
        false
    };
    match session.run(&repo, TrackerSyncOptions::default(), &|_| {}, &refuse) {
        Err(SessionError::ConfirmationNeeded { name, local }) => {
            assert_eq!((name.as_str(), local), ("sim", 2));
        }
        other => panic!("expected a refusal to publish, got {other:?}"),
    }
    assert_eq!(asked.get(), Some(2), "the caller was asked, with the count");
    assert!(tracker_titles(&s).is_empty(), "nothing was sent");

    // Reading only asks nothing.
    let never = |_: usize| -> bool { panic!("an import-only run must not ask") };
    let opts = TrackerSyncOptions {
        import_only: true,
        ..TrackerSyncOptions::default()
    };
    let read = session
        .run(&repo, opts, &|_| {}, &never)
        .expect("import only");
    assert!(read.export.is_none());
}

#[test]
fn tracker_session_names_a_tracker_that_is_not_attached() {
    let t = TestRepo::new();
    let repo = Repo::open(t.path()).expect("open");
    match TrackerSession::open(&repo, "nowhere", agent()) {
        Err(SessionError::NoBackend { name }) => assert_eq!(name, "nowhere"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a session opened on a tracker that is not attached"),
    }
}
