//! The git store across replicas: issue refs copied with nothing but plain
//! `git fetch`, edited offline on both sides, then merged.

use reposix::crdt::Stamp;
use reposix::event::{ActorId, IssueId, Op};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::store::MergeOutcome;

use crate::support::{issue_ref, TestRepo};

const SIDE: &str = "refs/reposix-in/issues/";

fn actor(name: &str) -> ActorId {
    ActorId::new(name).expect("valid actor name")
}

/// Fetch `from`'s issue refs into `to`'s side namespace with plain git.
fn fetch_side(to: &TestRepo, from: &TestRepo) {
    let src = from.path().to_str().expect("UTF-8 temp path");
    to.git(&[
        "fetch",
        "-q",
        src,
        &format!("+refs/reposix/issues/*:{SIDE}*"),
    ]);
}

/// Merge everything under the side namespace; one issue, with this outcome.
#[track_caller]
fn merge_side(repo: &Repo, issue: IssueId, want: MergeOutcome) {
    let results = repo.merge_refs_under(SIDE).expect("listing side refs");
    assert_eq!(results.len(), 1, "{results:?}");
    let (id, outcome) = &results[0];
    assert_eq!(*id, issue);
    assert_eq!(*outcome.as_ref().expect("merging"), want);
}

/// The parents of a commit, per `git cat-file -p`.
fn parents(t: &TestRepo, rev: &str) -> Vec<String> {
    t.git(&["cat-file", "-p", rev])
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("parent "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn divergent_heads_merge_deterministically() {
    let a = TestRepo::new();
    let b = TestRepo::new();
    let (alice, bob) = (actor("alice"), actor("bob"));
    let body = "Steps:\n1. open the app\n2. click login\nExpected: a form.\n";
    let ra = a.open();
    let issue = ra
        .create(
            &alice,
            NewIssue {
                title: "Login broken".into(),
                body: body.into(),
                labels: vec!["bug".into(), "triage".into(), "ui".into()],
                ..NewIssue::default()
            },
        )
        .expect("creating the issue")
        .issue;
    let r = issue_ref(&issue.to_string());
    b.git(&[
        "fetch",
        "-q",
        a.path().to_str().expect("UTF-8 temp path"),
        "refs/reposix/*:refs/reposix/*",
    ]);
    let rb = b.open();

    // Offline on both sides. Alice sets her title last (higher Lamport
    // clock), bob sets his first but writes later in wall time.
    let apply = |repo: &Repo, who: &ActorId, changes: &[Change]| {
        let w = repo.apply(issue, who, changes).expect("applying changes");
        assert_eq!(w.events.len(), changes.len(), "a change was a no-op");
    };
    apply(
        &ra,
        &alice,
        &[
            Change::AddLabel("needs-design".into()),
            Change::RemoveLabel("triage".into()),
        ],
    );
    apply(
        &ra,
        &alice,
        &[Change::Body(
            body.replace("1. open the app", "1. open the app in Firefox"),
        )],
    );
    apply(&ra, &alice, &[Change::Title("Login button dead".into())]);
    apply(&rb, &bob, &[Change::Title("Login does nothing".into())]);
    apply(
        &rb,
        &bob,
        &[
            Change::AddLabel("p1".into()),
            Change::RemoveLabel("ui".into()),
            Change::Body(body.replace("a form.", "a login form.")),
        ],
    );
    let (tip_a, tip_b) = (a.git(&["rev-parse", &r]), b.git(&["rev-parse", &r]));
    assert_ne!(tip_a, tip_b);

    // Exchange refs with plain git, then merge on both sides: A merges
    // bob's history into alice's, B alice's into bob's.
    fetch_side(&a, &b);
    fetch_side(&b, &a);
    merge_side(&ra, issue, MergeOutcome::Merged);
    merge_side(&rb, issue, MergeOutcome::Merged);

    let sa = ra.show(issue).expect("reading A");
    let sb = rb.show(issue).expect("reading B");
    assert_eq!(sa.to_canonical_json(), sb.to_canonical_json());
    assert_eq!(
        a.git(&["rev-parse", &format!("{r}^{{tree}}")]),
        b.git(&["rev-parse", &format!("{r}^{{tree}}")]),
        "the merged trees differ"
    );

    // Title: last writer by (lamport, actor, event id), from the log.
    let log = ra.load(issue).expect("loading the log");
    let titles: Vec<(Stamp, String)> = log
        .events
        .ordered()
        .into_iter()
        .filter_map(|(stamp, e)| match &e.op {
            Op::SetTitle { title } => Some((stamp, title.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    let (_, winner) = titles
        .iter()
        .max_by(|x, y| x.0.cmp(&y.0))
        .expect("two titles");
    assert_eq!(&sa.title, winner);

    assert_eq!(sa.labels, vec!["bug", "needs-design", "p1"]);
    assert_eq!(
        sa.body,
        "Steps:\n1. open the app in Firefox\n2. click login\nExpected: a login form.\n"
    );

    // Each tip is a merge commit joining the two offline histories.
    for (t, ours, theirs) in [(&a, &tip_a, &tip_b), (&b, &tip_b, &tip_a)] {
        assert_eq!(parents(t, &r), vec![ours.clone(), theirs.clone()]);
    }

    // Merging again changes nothing.
    merge_side(&ra, issue, MergeOutcome::UpToDate);
    assert_eq!(
        ra.show(issue).expect("reading A").to_canonical_json(),
        sa.to_canonical_json()
    );

    // A third replica merging both results, B's first, agrees too.
    let c = TestRepo::new();
    let rc = c.open();
    fetch_side(&c, &b);
    merge_side(&rc, issue, MergeOutcome::Created);
    fetch_side(&c, &a);
    merge_side(&rc, issue, MergeOutcome::Merged);
    assert_eq!(
        rc.show(issue).expect("reading C").to_canonical_json(),
        sa.to_canonical_json()
    );
    let report = rc.fsck().expect("fsck");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn merge_never_installs_a_damaged_foreign_log() {
    let t = TestRepo::new();
    let repo = t.open();
    let issue = repo
        .create(
            &actor("alice"),
            NewIssue {
                title: "Local".into(),
                ..NewIssue::default()
            },
        )
        .expect("creating the issue")
        .issue;
    let r = issue_ref(&issue.to_string());
    let before = t.git(&["rev-parse", &r]);
    let state = repo.show(issue).expect("reading").to_canonical_json();

    // A fetched tip for the same issue written by a future format version.
    let marker = t.git_stdin(&["hash-object", "-w", "--stdin"], b"reposix-events 9\n");
    let tree = t.git_stdin(
        &["mktree"],
        format!("100644 blob {marker}\tformat\n").as_bytes(),
    );
    let commit = t.git(&["commit-tree", &tree, "-p", &before, "-m", "future"]);
    t.git(&["update-ref", &format!("{SIDE}{issue}"), &commit]);

    let results = repo.merge_refs_under(SIDE).expect("listing side refs");
    assert_eq!(results.len(), 1);
    let err = results[0]
        .1
        .as_ref()
        .expect_err("a future format must not merge");
    assert!(err.is_unsupported_version(), "{err}");
    assert_eq!(t.git(&["rev-parse", &r]), before, "the local ref moved");
    assert_eq!(
        repo.show(issue).expect("reading").to_canonical_json(),
        state
    );
}
