//! The GitHub adapter against the local fake in `github_fake`.

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, UNIX_EPOCH};

use reposix::error_chain;
use reposix::event::Status;
use reposix::tracker::github::{GithubBackend, IN_PROGRESS_LABEL, IN_REVIEW_LABEL};
use reposix::tracker::http::{Auth, RetryPolicy, Secret};
use reposix::tracker::{Backend, BackendError, IssuePatch, NewRemoteIssue, RemoteIssue};
use serde_json::{json, Value};

use crate::github_fake::{
    iso, loopback, FakeGithub, Recorded, Seed, BOT, CLOCK_START, OTHER, REPO_ID, TOKEN,
};

fn new_issue(title: &str, body: &str, status: Status, marker: &str) -> NewRemoteIssue {
    NewRemoteIssue {
        title: title.into(),
        body: body.into(),
        status,
        labels: vec!["bug".into()],
        assignees: Vec::new(),
        marker: marker.into(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Requests the adapter (not the third party) sent with `method`.
fn sent_by_bot(fake: &FakeGithub, method: &str) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.user.as_deref() == Some(BOT) && r.method == method)
        .collect()
}

fn query(r: &Recorded) -> HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x{}", r.url))
        .expect("recorded URL parses")
        .query_pairs()
        .into_owned()
        .collect()
}

fn number(issue: &RemoteIssue) -> u64 {
    issue.remote_id.parse().expect("GitHub ids are numbers")
}

fn label_names(raw: &Value) -> Vec<String> {
    raw["labels"]
        .as_array()
        .expect("labels array")
        .iter()
        .map(|l| l["name"].as_str().expect("label name").to_owned())
        .collect()
}

/// The wire side of the status table in `src/backend/github.rs`.
fn assert_wire_status(raw: &Value, status: Status) {
    let labels = label_names(raw);
    let has = |l: &str| labels.iter().any(|x| x == l);
    let (state, reason, in_progress, in_review) = match status {
        Status::Open => ("open", None, false, false),
        Status::InProgress => ("open", None, true, false),
        Status::InReview => ("open", None, false, true),
        Status::Done => ("closed", Some("completed"), false, false),
        Status::WontFix => ("closed", Some("not_planned"), false, false),
    };
    assert_eq!(raw["state"], state, "{status}: {raw}");
    if let Some(r) = reason {
        assert_eq!(raw["state_reason"], r, "{status}");
    }
    assert_eq!(has(IN_PROGRESS_LABEL), in_progress, "{status}: {labels:?}");
    assert_eq!(has(IN_REVIEW_LABEL), in_review, "{status}: {labels:?}");
    assert!(has("bug"), "{status}: user labels kept: {labels:?}");
}

#[test]
fn list_follows_link_pagination_across_three_pages_to_repositories_path() {
    let fake = FakeGithub::start();
    for k in 0..240 {
        fake.seed(Seed {
            title: format!("item {k}"),
            pull_request: k % 24 == 0,
            ..Seed::default()
        });
    }
    let (issues, cursor) = fake.backend().list_changed(None).expect("list");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    assert_eq!(reqs[0].path(), "/repos/octo-org/widgets/issues");
    let q0 = query(&reqs[0]);
    for (k, v) in [
        ("state", "all"),
        ("sort", "updated"),
        ("direction", "desc"),
        ("per_page", "100"),
    ] {
        assert_eq!(q0.get(k).map(String::as_str), Some(v), "{k}");
    }
    for (r, page) in reqs[1..].iter().zip(["2", "3"]) {
        assert_eq!(r.path(), format!("/repositories/{REPO_ID}/issues"));
        let q = query(r);
        assert_eq!(q.get("page").map(String::as_str), Some(page));
        assert_eq!(
            q.get("state").map(String::as_str),
            Some("all"),
            "Link kept the query"
        );
        assert_eq!(r.status, 200);
    }

    assert_eq!(issues.len(), 230, "240 items minus 10 pull requests");
    let numbers: BTreeSet<u64> = issues.iter().map(number).collect();
    assert_eq!(numbers.len(), 230, "each issue once");
    assert!(
        numbers.iter().all(|n| (n - 1) % 24 != 0),
        "no pull request listed"
    );
    assert_eq!(issues[0].title, "item 239", "newest first");
    assert_eq!(cursor.as_deref(), Some(iso(CLOCK_START + 240).as_str()));
}

#[test]
fn pull_requests_are_skipped_in_lists_and_gets() {
    let fake = FakeGithub::start();
    let a = fake.seed(Seed::default());
    let pr = fake.seed(Seed {
        pull_request: true,
        ..Seed::default()
    });
    let c = fake.seed(Seed::default());
    assert!(fake.issue_json(pr)["pull_request"].is_object());
    let gh = fake.backend();
    let (issues, _) = gh.list_changed(None).expect("list");
    let numbers: Vec<u64> = issues.iter().map(number).collect();
    assert_eq!(numbers, [c, a]);
    assert_eq!(gh.get(&pr.to_string()).expect("get"), None);
    assert!(gh.get(&a.to_string()).expect("get").is_some());
}

#[test]
fn since_is_inclusive_and_the_cursor_is_the_newest_updated_at() {
    let fake = FakeGithub::start();
    let t = CLOCK_START;
    let at = |secs| Seed {
        updated_at: Some(secs),
        ..Seed::default()
    };
    let a = fake.seed(at(t - 300));
    let b = fake.seed(at(t - 200));
    let c = fake.seed(at(t - 200));
    let d = fake.seed(at(t - 100));
    let gh = fake.backend();
    let numbers = |issues: &[RemoteIssue]| issues.iter().map(number).collect::<BTreeSet<_>>();

    let (all, cursor) = gh.list_changed(None).expect("list");
    assert_eq!(numbers(&all), BTreeSet::from([a, b, c, d]));
    let cursor = cursor.expect("a cursor after a non-empty list");
    assert_eq!(cursor, iso(t - 100));

    let (from_b, _) = gh.list_changed(Some(&iso(t - 200))).expect("list");
    assert_eq!(
        numbers(&from_b),
        BTreeSet::from([b, c, d]),
        "since is inclusive"
    );
    let half = format!("{}.500Z", iso(t - 200).trim_end_matches('Z'));
    let (from_half, _) = gh.list_changed(Some(&half)).expect("list");
    assert_eq!(
        numbers(&from_half),
        BTreeSet::from([b, c, d]),
        "second precision"
    );

    let (again, same) = gh.list_changed(Some(&cursor)).expect("list");
    assert_eq!(
        numbers(&again),
        BTreeSet::from([d]),
        "only the boundary item again"
    );
    assert_eq!(same.as_deref(), Some(cursor.as_str()));

    let edited = fake.third_party().edit_title(b, "moved");
    let (changed, next) = gh.list_changed(Some(&cursor)).expect("list");
    assert_eq!(numbers(&changed), BTreeSet::from([b, d]));
    assert_eq!(next.as_deref(), edited["updated_at"].as_str());
}

#[test]
fn list_dedupes_an_item_repeated_when_an_issue_moves_mid_listing() {
    let fake = FakeGithub::start();
    for k in 0..150 {
        fake.seed(Seed {
            title: format!("item {k}"),
            ..Seed::default()
        });
    }
    // Desc order: page 1 is #150..#51. Touching #10 after page 1 moves it to
    // the front, so page 2 starts with #51 again and no longer has #10.
    fake.touch_after_page(1, 10);
    let gh = fake.backend();
    let (issues, cursor) = gh.list_changed(None).expect("list");

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let page2: Vec<Value> = serde_json::from_slice(&reqs[1].response).expect("page 2 JSON");
    assert_eq!(page2[0]["number"], 51, "the fake repeated #51 on page 2");

    let numbers: Vec<u64> = issues.iter().map(number).collect();
    let unique: BTreeSet<u64> = numbers.iter().copied().collect();
    assert_eq!(numbers.len(), unique.len(), "no duplicates: {numbers:?}");
    assert_eq!(
        unique,
        (1..=150).filter(|n| *n != 10).collect::<BTreeSet<_>>()
    );

    // The moved issue is newer than the cursor, so the next pass has it.
    let (next, _) = gh
        .list_changed(cursor.as_deref())
        .expect("list from the cursor");
    let moved = next
        .iter()
        .find(|i| number(i) == 10)
        .expect("#10 listed next time");
    assert!(moved.title.ends_with("(touched)"));
}

#[test]
fn all_five_statuses_round_trip_through_github() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    for (k, status) in Status::ALL.into_iter().enumerate() {
        let created = gh
            .create(&new_issue("s", "b", status, &format!("aa-{k}")))
            .expect("create");
        assert_eq!(created.status, status);
        assert_eq!(created.labels, ["bug"], "status labels never surface");
        let n = number(&created);
        assert_wire_status(&fake.issue_json(n), status);
        let read = gh.get(&created.remote_id).expect("get").expect("exists");
        assert_eq!(
            (read.status, read.labels.clone()),
            (status, strings(&["bug"]))
        );
    }
    for from in Status::ALL {
        for to in Status::ALL.into_iter().filter(|s| *s != from) {
            let created = gh.create(&new_issue("t", "b", from, "bb")).expect("create");
            let patch = IssuePatch {
                status: Some(to),
                ..IssuePatch::default()
            };
            let updated = gh
                .update(&created.remote_id, &patch, &created.revision)
                .expect("update");
            assert_eq!(updated.status, to, "{from} -> {to}");
            assert_wire_status(&fake.issue_json(number(&created)), to);
            let read = gh.get(&created.remote_id).expect("get").expect("exists");
            assert_eq!(read.status, to, "{from} -> {to} read back");
            assert_eq!(read.labels, ["bug"], "{from} -> {to}");
        }
    }
}

#[test]
fn github_only_states_import_onto_reposix_statuses() {
    let fake = FakeGithub::start();
    let seed = |state, reason, labels: &[&str]| {
        fake.seed(Seed {
            state,
            state_reason: reason,
            labels: strings(labels),
            ..Seed::default()
        })
    };
    let cases = [
        (
            seed("closed", Some("duplicate"), &[]),
            Status::WontFix,
            vec![],
        ),
        (seed("closed", None, &[]), Status::Done, vec![]),
        (
            seed("open", Some("reopened"), &["ui"]),
            Status::Open,
            vec!["ui"],
        ),
        (
            seed("closed", Some("completed"), &[IN_PROGRESS_LABEL, "ui"]),
            Status::Done,
            vec!["ui"],
        ),
        (
            seed("open", None, &[IN_PROGRESS_LABEL, IN_REVIEW_LABEL]),
            Status::InReview,
            vec![],
        ),
        (
            seed("open", None, &["Status:In_Progress", "b", "a"]),
            Status::InProgress,
            vec!["a", "b"],
        ),
    ];
    let gh = fake.backend();
    for (n, status, labels) in cases {
        let issue = gh.get(&n.to_string()).expect("get").expect("exists");
        assert_eq!(issue.status, status, "#{n}");
        assert_eq!(issue.labels, labels, "#{n}");
    }
}

#[test]
fn create_carries_a_marker_that_find_by_marker_finds() {
    let fake = FakeGithub::start();
    fake.seed(Seed::default());
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("mine", "text", Status::Open, "0f3a-0001"))
        .expect("create");
    let n = number(&created);
    assert_eq!(
        fake.issue_json(n)["body"],
        "text\n\n<!-- reposix:0f3a-0001 -->",
        "the marker is an HTML comment at the end of the body"
    );
    let posts = sent_by_bot(&fake, "POST");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].status, 201);
    fake.third_party()
        .create_issue(json!({ "title": "theirs", "body": "no marker" }));

    let found = gh.find_by_marker("0f3a-0001", None).expect("search");
    assert_eq!(found.as_ref().map(number), Some(n));
    let found = gh
        .find_by_marker("0f3a-0001", Some(created.updated_at.as_str()))
        .expect("search since");
    assert_eq!(found.map(|i| number(&i)), Some(n));
    assert_eq!(gh.find_by_marker("0f3a-0002", None).expect("search"), None);
    let later = iso(CLOCK_START + 100_000);
    assert_eq!(
        gh.find_by_marker("0f3a-0001", Some(&later))
            .expect("search"),
        None
    );
    assert!(matches!(
        gh.create(&new_issue("bad", "", Status::Open, "not hex!")),
        Err(BackendError::Spec(_))
    ));
}

#[test]
fn reads_strip_the_marker() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("t", "visible", Status::InReview, "abc-123"))
        .expect("create");
    assert_eq!(
        (created.body.as_str(), created.marker.as_deref()),
        ("visible", Some("abc-123"))
    );
    let got = gh.get(&created.remote_id).expect("get").expect("exists");
    assert_eq!(
        (got.body.as_str(), got.marker.as_deref()),
        ("visible", Some("abc-123"))
    );
    let (listed, _) = gh.list_changed(None).expect("list");
    assert_eq!(
        (listed[0].body.as_str(), listed[0].marker.as_deref()),
        ("visible", Some("abc-123"))
    );
    // Not a marker (not hex): left in the body, untouched.
    let theirs = fake.seed(Seed {
        body: Some("x\n\n<!-- reposix:not a marker -->".into()),
        ..Seed::default()
    });
    let got = gh.get(&theirs.to_string()).expect("get").expect("exists");
    assert_eq!(
        (got.body.as_str(), got.marker),
        ("x\n\n<!-- reposix:not a marker -->", None)
    );
    let null_body = fake.seed(Seed::default());
    let got = gh
        .get(&null_body.to_string())
        .expect("get")
        .expect("exists");
    assert_eq!(got.body, "", "a null body reads as empty");
}

#[test]
fn hostile_bodies_round_trip_byte_for_byte() {
    let bodies = [
        "<script>alert('x')</script>",
        "version: 999",
        "---\ntitle: x\n---",
        "---\ntitle: x\n---\nbody\nversion: 999\n<script>\n",
        "trailing spaces  \n\n\n",
        "crlf\r\nline\r\n",
        "",
        "ünïcødé ✓ \u{202e}rtl \t tab",
        "looks marked\n\n<!-- reposix:abcd -->",
        "\n\n<!-- reposix:",
    ];
    let fake = FakeGithub::start();
    let gh = fake.backend();
    for (k, body) in bodies.iter().enumerate() {
        let marker = format!("feed-{k}");
        let created = gh
            .create(&new_issue("version: 999", body, Status::Open, &marker))
            .expect("create");
        let n = number(&created);
        let raw = fake.issue_json(n);
        assert_eq!(
            raw["body"].as_str(),
            Some(format!("{body}\n\n<!-- reposix:{marker} -->").as_str())
        );
        // CRLF is normalised on every read (issue 9, point 2); the rest is
        // byte for byte.
        let read_back = body.replace("\r\n", "\n");
        assert_eq!(created.body, read_back);
        let got = gh.get(&created.remote_id).expect("get").expect("exists");
        assert_eq!(
            (got.body.as_str(), got.title.as_str()),
            (read_back.as_str(), "version: 999")
        );

        // And back: replace with another hostile body.
        let other = bodies[(k + 1) % bodies.len()];
        let patch = IssuePatch {
            body: Some(other.to_owned()),
            ..IssuePatch::default()
        };
        let updated = gh
            .update(&created.remote_id, &patch, &got.revision)
            .expect("update");
        assert_eq!(updated.body, other.replace("\r\n", "\n"));
        let raw = fake.issue_json(n);
        assert_eq!(
            raw["body"].as_str(),
            Some(format!("{other}\n\n<!-- reposix:{marker} -->").as_str())
        );
        let got = gh.get(&created.remote_id).expect("get").expect("exists");
        assert_eq!(
            (got.body.as_str(), got.marker.as_deref()),
            (other.replace("\r\n", "\n").as_str(), Some(marker.as_str()))
        );
    }
    // Written by someone else on GitHub, no marker: read exactly.
    for body in bodies {
        let n = fake
            .third_party()
            .create_issue(json!({ "title": "x", "body": body }))["number"]
            .as_u64()
            .expect("number");
        let got = gh.get(&n.to_string()).expect("get").expect("exists");
        if body == "looks marked\n\n<!-- reposix:abcd -->" {
            // Known limit of in-body markers: a body ending exactly like a
            // marker reads as marked.
            assert_eq!(
                (got.body.as_str(), got.marker.as_deref()),
                ("looks marked", Some("abcd"))
            );
        } else {
            let read_back = body.replace("\r\n", "\n");
            assert_eq!((got.body.as_str(), got.marker), (read_back.as_str(), None));
        }
    }
}

#[test]
fn update_conflicts_when_a_third_party_moved_updated_at() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("ours", "b", Status::Open, "aa"))
        .expect("create");
    let ours = IssuePatch {
        title: Some("our edit".into()),
        ..IssuePatch::default()
    };

    let theirs = fake
        .third_party()
        .edit_title(number(&created), "their edit");
    assert_ne!(
        theirs["updated_at"].as_str(),
        Some(created.updated_at.as_str())
    );
    let err = gh
        .update(&created.remote_id, &ours, &created.revision)
        .expect_err("stale revision");
    assert!(matches!(err, BackendError::Conflict { .. }), "{err:?}");
    assert!(
        sent_by_bot(&fake, "PATCH").is_empty(),
        "nothing written on conflict"
    );

    // A comment bumps updated_at too.
    let fresh = gh.get(&created.remote_id).expect("get").expect("exists");
    assert_eq!(fresh.title, "their edit");
    fake.third_party().comment(number(&created), "me too");
    let err = gh
        .update(&created.remote_id, &ours, &fresh.revision)
        .expect_err("stale");
    assert!(matches!(err, BackendError::Conflict { .. }), "{err:?}");

    let fresh = gh.get(&created.remote_id).expect("get").expect("exists");
    let done = gh
        .update(&created.remote_id, &ours, &fresh.revision)
        .expect("current revision");
    assert_eq!(done.title, "our edit");
    assert_eq!(fake.issue_json(number(&created))["title"], "our edit");
}

#[test]
fn update_conflicts_when_a_third_party_edit_keeps_updated_at_in_the_same_second() {
    let fake = FakeGithub::start();
    fake.set_tick(0); // every write lands in the same second
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("t", "ours", Status::Open, "aa"))
        .expect("create");
    let edited = fake
        .third_party()
        .patch_issue(number(&created), json!({ "body": "theirs" }));
    assert_eq!(
        edited["updated_at"].as_str(),
        Some(created.updated_at.as_str())
    );
    let patch = IssuePatch {
        title: Some("mine".into()),
        ..IssuePatch::default()
    };
    let err = gh
        .update(&created.remote_id, &patch, &created.revision)
        .expect_err("content moved within the second");
    assert!(matches!(err, BackendError::Conflict { .. }), "{err:?}");

    // The same from a revision that came from a listing.
    let listing = fake.backend();
    let (listed, _) = listing.list_changed(None).expect("list");
    fake.third_party()
        .patch_issue(number(&created), json!({ "title": "theirs too" }));
    let err = listing
        .update(&created.remote_id, &patch, &listed[0].revision)
        .expect_err("content moved within the second");
    assert!(matches!(err, BackendError::Conflict { .. }), "{err:?}");
    assert!(sent_by_bot(&fake, "PATCH").is_empty());
}

#[test]
fn update_sends_only_the_changed_fields() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let mut new = new_issue("title", "body", Status::Open, "c0de");
    new.assignees = strings(&["alice"]);
    let mut current = gh.create(&new).expect("create");
    fake.clear_requests();

    let steps: Vec<(IssuePatch, Option<Value>)> = vec![
        (
            IssuePatch {
                title: Some("t2".into()),
                ..Default::default()
            },
            Some(json!({ "title": "t2" })),
        ),
        (
            IssuePatch {
                status: Some(Status::InProgress),
                ..Default::default()
            },
            Some(json!({ "labels": ["bug", IN_PROGRESS_LABEL] })),
        ),
        (
            IssuePatch {
                status: Some(Status::InReview),
                ..Default::default()
            },
            Some(json!({ "labels": ["bug", IN_REVIEW_LABEL] })),
        ),
        (
            IssuePatch {
                status: Some(Status::Done),
                ..Default::default()
            },
            Some(json!({ "state": "closed", "state_reason": "completed", "labels": ["bug"] })),
        ),
        (
            IssuePatch {
                status: Some(Status::WontFix),
                ..Default::default()
            },
            Some(json!({ "state": "closed", "state_reason": "not_planned" })),
        ),
        (
            IssuePatch {
                status: Some(Status::Open),
                ..Default::default()
            },
            Some(json!({ "state": "open" })),
        ),
        (
            IssuePatch {
                labels: Some(strings(&["ui", "bug"])),
                ..Default::default()
            },
            Some(json!({ "labels": ["bug", "ui"] })),
        ),
        (
            IssuePatch {
                assignees: Some(strings(&["bob", "alice"])),
                ..Default::default()
            },
            Some(json!({ "assignees": ["alice", "bob"] })),
        ),
        (
            IssuePatch {
                body: Some("new body".into()),
                ..Default::default()
            },
            Some(json!({ "body": "new body\n\n<!-- reposix:c0de -->" })),
        ),
        (
            IssuePatch {
                title: Some("t3".into()),
                labels: Some(strings(&["ui"])),
                ..Default::default()
            },
            Some(json!({ "title": "t3", "labels": ["ui"] })),
        ),
        // Already so on GitHub: nothing to send.
        (
            IssuePatch {
                title: Some("t3".into()),
                ..Default::default()
            },
            None,
        ),
    ];
    for (k, (patch, want)) in steps.into_iter().enumerate() {
        let before = sent_by_bot(&fake, "PATCH").len();
        current = gh
            .update(&current.remote_id, &patch, &current.revision)
            .expect("update");
        let patches = sent_by_bot(&fake, "PATCH");
        match want {
            Some(body) => {
                assert_eq!(patches.len(), before + 1, "step {k}");
                let sent = patches.last().expect("one more PATCH");
                assert_eq!(sent.body.as_ref(), Some(&body), "step {k}");
                assert_eq!(sent.header("if-match"), None);
            }
            None => assert_eq!(patches.len(), before, "step {k}: no PATCH"),
        }
    }
    assert_eq!(
        (
            current.title.as_str(),
            current.body.as_str(),
            current.status
        ),
        ("t3", "new body", Status::Open)
    );
    assert_eq!(
        (current.labels.clone(), current.assignees.clone()),
        (strings(&["ui"]), strings(&["alice", "bob"]))
    );
}

#[test]
fn update_revalidates_with_if_none_match_and_a_304() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("t", "b", Status::Open, "aa"))
        .expect("create");
    fake.clear_requests();
    let again = gh.get(&created.remote_id).expect("get").expect("exists");
    assert_eq!(again, created);
    let patch = IssuePatch {
        title: Some("t2".into()),
        ..IssuePatch::default()
    };
    gh.update(&created.remote_id, &patch, &created.revision)
        .expect("update");
    let reqs = fake.requests();
    let summary: Vec<(&str, u16, bool)> = reqs
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.status,
                r.header("if-none-match").is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", 304, true),
            ("GET", 304, true),
            ("PATCH", 200, false)
        ]
    );
}

#[test]
fn primary_rate_limit_403_waits_until_reset() {
    let fake = FakeGithub::start();
    fake.seed(Seed::default());
    fake.rate_limit_next(2);
    let start = Instant::now();
    let (issues, _) = fake
        .backend()
        .list_changed(None)
        .expect("list after the limit resets");
    let elapsed = start.elapsed();
    assert_eq!(issues.len(), 1);
    let reqs = fake.requests();
    let statuses: Vec<u16> = reqs.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 403, 200]);
    for pair in reqs.windows(2) {
        let reset = UNIX_EPOCH + Duration::from_secs(pair[0].reset);
        assert!(
            pair[1].at >= reset,
            "retried at {:?}, before reset {reset:?}",
            pair[1].at
        );
    }
    assert!(elapsed < Duration::from_secs(10), "bounded: {elapsed:?}");
}

#[test]
fn secondary_rate_limit_429_honours_retry_after_and_writes_once() {
    let fake = FakeGithub::start();
    fake.too_many_requests_next(1);
    let gh = fake.backend();
    let start = Instant::now();
    gh.create(&new_issue("t", "b", Status::Open, "aa"))
        .expect("create after retry-after");
    let elapsed = start.elapsed();
    let posts = sent_by_bot(&fake, "POST");
    let statuses: Vec<u16> = posts.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 201]);
    let waited = posts[1].at.duration_since(posts[0].at).expect("in order");
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(elapsed < Duration::from_secs(10), "bounded: {elapsed:?}");
    let (issues, _) = gh.list_changed(None).expect("list");
    assert_eq!(issues.len(), 1, "one issue created");
}

#[test]
fn the_token_never_appears_in_errors_or_debug_output() {
    let secret = "ghp_s3cretNeverPrintMe00000000000000000";
    let fake = FakeGithub::start();
    let mut texts: Vec<String> = Vec::new();
    let mut record = |e: &BackendError| {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
        texts.push(error_chain(e));
    };

    let wrong = fake.backend_with_token(secret);
    let err = wrong.list_changed(None).expect_err("unknown token");
    assert!(
        matches!(err, BackendError::Auth { status: 401, .. }),
        "{err:?}"
    );
    record(&err);
    let err = wrong
        .create(&new_issue("t", "b", Status::Open, "aa"))
        .expect_err("unknown token");
    record(&err);

    // Connection refused: a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut closed = GithubBackend::with_api(
        "o/r",
        &format!("http://127.0.0.1:{port}"),
        Auth::Bearer(Secret::new(secret)),
        loopback(),
    )
    .expect("config");
    closed.set_retry(RetryPolicy {
        max_attempts: 2,
        base: Duration::from_millis(1),
        max_wait: Duration::from_millis(5),
        ..RetryPolicy::default()
    });
    record(&closed.get("1").expect_err("nothing listens"));
    let outside = GithubBackend::with_api(
        "o/r",
        "https://api.github.com",
        Auth::Bearer(Secret::new(secret)),
        loopback(),
    )
    .expect("config");
    record(&outside.get("1").expect_err("egress refused"));
    let vars = |k: &str| match k {
        "GITHUB_TOKEN" => Some(secret.to_owned()),
        _ => None,
    };
    let from_env = GithubBackend::from_vars("o/r", vars, loopback()).expect("config");
    record(&from_env.list_changed(None).expect_err("egress refused"));

    for backend in [&wrong, &closed, &outside, &from_env] {
        texts.push(format!("{backend:?}"));
    }
    for text in &texts {
        assert!(!text.contains(secret), "token leaked: {text}");
        assert!(!text.contains("s3cret"), "token fragment leaked: {text}");
    }
    // And it was sent, only in the Authorization header.
    let reqs = fake.requests();
    let bearer = format!("Bearer {secret}");
    assert!(reqs
        .iter()
        .all(|r| r.header("authorization") == Some(bearer.as_str())));
    assert!(reqs.iter().all(|r| !r.url.contains(secret)));
}

#[test]
fn egress_is_refused_for_an_api_outside_the_allowlist() {
    let outside = GithubBackend::with_api(
        "o/r",
        "https://api.github.com",
        Auth::Bearer(Secret::new(TOKEN)),
        loopback(),
    )
    .expect("config");
    match outside.list_changed(None) {
        Err(BackendError::Egress { origin, .. }) => assert_eq!(origin, "https://api.github.com"),
        other => panic!("expected Egress, got {other:?}"),
    }
    let env = |api: &str| {
        let api = api.to_owned();
        move |k: &str| match k {
            "REPOSIX_GITHUB_API" => Some(api.clone()),
            "GITHUB_TOKEN" => Some(TOKEN.to_owned()),
            _ => None,
        }
    };
    let ghe = GithubBackend::from_vars(
        "Octo-Org/Widgets",
        env("https://ghe.example.com/api/v3"),
        loopback(),
    )
    .expect("config");
    assert_eq!(ghe.instance(), "ghe.example.com/octo-org/widgets");
    assert!(matches!(ghe.get("1"), Err(BackendError::Egress { .. })));
    let public = GithubBackend::from_vars("Octo-Org/Widgets", env(""), loopback()).expect("config");
    assert_eq!(public.instance(), "octo-org/widgets");
    assert!(matches!(public.get("1"), Err(BackendError::Egress { .. })));

    // A loopback API from the environment is allowed and used.
    let fake = FakeGithub::start();
    let n = fake.seed(Seed::default());
    let local =
        GithubBackend::from_vars(&fake.address(), env(fake.url()), loopback()).expect("config");
    assert!(local.get(&n.to_string()).expect("reachable").is_some());
}

#[test]
fn pagination_never_follows_a_link_to_another_origin() {
    let fake = FakeGithub::start();
    for _ in 0..101 {
        fake.seed(Seed::default());
    }
    // Same server, but `localhost` is another origin than `127.0.0.1`.
    let port = fake.url().rsplit(':').next().expect("port").to_owned();
    fake.set_link_base(&format!("http://localhost:{port}"));
    let err = fake.backend().list_changed(None).expect_err("refused");
    assert!(matches!(err, BackendError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("http://localhost"), "{err}");
    assert_eq!(fake.requests().len(), 1, "the token went nowhere else");
}

#[test]
fn tracker_errors_map_to_backend_errors() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("t", "b", Status::Open, "aa"))
        .expect("create");
    assert_eq!(gh.get("999").expect("404 is None"), None);
    let any = IssuePatch {
        title: Some("x".into()),
        ..IssuePatch::default()
    };
    let err = gh
        .update("999", &any, &created.revision)
        .expect_err("missing");
    assert!(matches!(err, BackendError::NotFound { .. }), "{err:?}");
    assert!(matches!(
        gh.comments("999"),
        Err(BackendError::NotFound { .. })
    ));
    assert!(matches!(gh.get("abc"), Err(BackendError::Spec(_))));

    let empty = IssuePatch {
        title: Some(String::new()),
        ..IssuePatch::default()
    };
    match gh.update(&created.remote_id, &empty, &created.revision) {
        Err(BackendError::Http {
            status, message, ..
        }) => {
            assert_eq!(status, 422);
            assert_eq!(message, "Validation Failed (Issue.title: missing_field)");
        }
        other => panic!("expected 422, got {other:?}"),
    }
    fake.delete_issue(number(&created));
    assert_eq!(gh.get(&created.remote_id).expect("410 is None"), None);
    let err = gh
        .update(&created.remote_id, &any, &created.revision)
        .expect_err("gone");
    assert!(matches!(err, BackendError::NotFound { .. }), "{err:?}");
}

#[test]
fn comments_paginate_and_keep_markers_through_edits() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let issue = gh
        .create(&new_issue("t", "b", Status::Open, "aa"))
        .expect("create");
    let n = number(&issue);
    fake.seed_comments(n, 120);
    let ours = gh
        .add_comment(&issue.remote_id, "ours <script>", "c0ffee-01")
        .expect("comment");
    assert_eq!(
        (
            ours.body.as_str(),
            ours.marker.as_deref(),
            ours.author.as_str()
        ),
        ("ours <script>", Some("c0ffee-01"), BOT)
    );
    let id: u64 = ours.remote_id.parse().expect("numeric id");
    assert_eq!(
        fake.comment_body(id),
        "ours <script>\n\n<!-- reposix:c0ffee-01 -->"
    );

    fake.clear_requests();
    let all = gh.comments(&issue.remote_id).expect("comments");
    let paths: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            format!("/repos/octo-org/widgets/issues/{n}/comments"),
            format!("/repositories/{REPO_ID}/issues/{n}/comments")
        ]
    );
    assert_eq!(all.len(), 121);
    assert_eq!(all[0].body, "seeded comment 0", "oldest first");
    assert_eq!(all[0].author, OTHER);
    assert_eq!(all.last(), Some(&ours));

    let edited = gh
        .edit_comment(&issue.remote_id, &ours.remote_id, "edited\nversion: 999")
        .expect("edit");
    assert_eq!(
        (edited.body.as_str(), edited.marker.as_deref()),
        ("edited\nversion: 999", Some("c0ffee-01"))
    );
    assert_eq!(
        fake.comment_body(id),
        "edited\nversion: 999\n\n<!-- reposix:c0ffee-01 -->"
    );

    let theirs = &all[0];
    gh.edit_comment(&issue.remote_id, &theirs.remote_id, "fixed typo")
        .expect("edit theirs");
    assert_eq!(
        fake.comment_body(theirs.remote_id.parse().expect("id")),
        "fixed typo",
        "no marker added"
    );

    let other = gh
        .create(&new_issue("o", "b", Status::Open, "bb"))
        .expect("create");
    let err = gh
        .edit_comment(&other.remote_id, &ours.remote_id, "x")
        .expect_err("wrong issue");
    assert!(matches!(err, BackendError::NotFound { .. }), "{err:?}");
}

/// Send raw HTTP/1.1 and return the status code.
fn raw_status(fake: &FakeGithub, request: &str) -> u16 {
    let addr = fake.url().trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to the fake");
    stream.write_all(request.as_bytes()).expect("write request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

#[test]
fn the_fake_rejects_requests_missing_required_headers() {
    let fake = FakeGithub::start();
    let n = fake.seed(Seed::default());
    let get = |headers: &str| {
        format!("GET /repos/octo-org/widgets/issues/{n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n")
    };
    let ua = "User-Agent: test\r\n";
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let accept = "Accept: application/vnd.github+json\r\n";
    let version = "X-GitHub-Api-Version: 2022-11-28\r\n";
    assert_eq!(
        raw_status(&fake, &get(&format!("{ua}{auth}{accept}{version}"))),
        200
    );
    assert_eq!(
        raw_status(&fake, &get(&format!("{auth}{accept}{version}"))),
        403,
        "no User-Agent"
    );
    assert_eq!(
        raw_status(&fake, &get(&format!("{ua}{accept}{version}"))),
        401,
        "no token"
    );
    let wrong = "Authorization: Bearer ghp_wrong\r\n";
    assert_eq!(
        raw_status(&fake, &get(&format!("{ua}{wrong}{accept}{version}"))),
        401,
        "bad token"
    );
    assert_eq!(
        raw_status(&fake, &get(&format!("{ua}{auth}{accept}"))),
        400,
        "no API version"
    );
    let body = r#"{"title":"x"}"#;
    let patch = format!(
        "PATCH /repos/octo-org/widgets/issues/{n} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{ua}{auth}{accept}{version}If-Match: \"abc\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw_status(&fake, &patch), 400, "conditional PATCH");
    assert_eq!(fake.issue_json(n)["title"], "seeded", "nothing changed");
}

#[test]
fn the_fake_serves_the_fixture_issue_shape() {
    // Keys of an issue object in fixtures/github/paginate-issues.json.
    let fixture_keys = [
        "url",
        "repository_url",
        "labels_url",
        "comments_url",
        "events_url",
        "html_url",
        "id",
        "node_id",
        "number",
        "title",
        "user",
        "labels",
        "state",
        "locked",
        "assignee",
        "assignees",
        "milestone",
        "comments",
        "created_at",
        "updated_at",
        "closed_at",
        "author_association",
        "active_lock_reason",
        "body",
        "reactions",
        "timeline_url",
        "performed_via_github_app",
        "state_reason",
    ];
    let fake = FakeGithub::start();
    let n = fake.seed(Seed {
        labels: strings(&["bug"]),
        ..Seed::default()
    });
    let raw = fake.issue_json(n);
    for key in fixture_keys {
        assert!(raw.get(key).is_some(), "missing {key}");
    }
    assert!(
        raw["id"].as_u64().expect("id") > u64::from(u32::MAX),
        "int64 ids"
    );
    assert_eq!(raw["body"], Value::Null);
    assert_eq!(raw["labels"][0]["name"], "bug");
    assert_eq!(raw["labels"][0]["color"], "ededed");
    assert_eq!(raw["user"]["login"], OTHER);
}

// ---- issue 9: GitHub as it really is ----

/// Notices the adapter sent, collected.
fn notices(gh: &mut GithubBackend) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&seen);
    gh.set_notice(std::sync::Arc::new(move |line: &str| {
        sink.lock().expect("notice lock").push(line.to_owned());
    }));
    seen
}

// Regression (issue 9, point 2): a body or comment saved in GitHub's web
// editor comes back with CRLF; the marker was then imported as body text
// and every line gained a `\r`.
#[test]
fn crlf_from_the_web_editor_keeps_the_marker_and_adds_no_carriage_returns() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("t", "one\ntwo", Status::Open, "abc1"))
        .expect("create");
    let n = number(&created);
    fake.web_edit(n, "one\ntwo edited\n\n<!-- reposix:abc1 -->");
    assert!(fake.issue_json(n)["body"]
        .as_str()
        .is_some_and(|b| b.contains("\r\n")));
    let got = gh.get(&created.remote_id).expect("get").expect("exists");
    assert_eq!(
        (got.body.as_str(), got.marker.as_deref()),
        ("one\ntwo edited", Some("abc1"))
    );
    let (listed, _) = gh.list_changed(None).expect("list");
    assert_eq!(listed[0].body, "one\ntwo edited");

    let c = gh
        .add_comment(&created.remote_id, "hi\nthere", "c0ffee")
        .expect("comment");
    let id: u64 = c.remote_id.parse().expect("numeric");
    fake.web_edit_comment(id, "hi\nthere, edited\n\n<!-- reposix:c0ffee -->");
    let comments = gh.comments(&created.remote_id).expect("comments");
    assert_eq!(
        (comments[0].body.as_str(), comments[0].marker.as_deref()),
        ("hi\nthere, edited", Some("c0ffee"))
    );
    // Writing back keeps one marker and LF text.
    let got = gh.get(&created.remote_id).expect("get").expect("exists");
    let patch = IssuePatch {
        title: Some("t2".into()),
        ..IssuePatch::default()
    };
    gh.update(&created.remote_id, &patch, &got.revision)
        .expect("update");
    assert_eq!(
        sent_by_bot(&fake, "PATCH")
            .last()
            .and_then(|r| r.body.clone()),
        Some(json!({"title": "t2"}))
    );
}

// Regression (issue 9, point 3): a secondary limit answered as 403 while
// quota remains was not retried, and POSTs were retried only on 429.
#[test]
fn a_secondary_limit_403_with_retry_after_is_waited_out_for_a_post() {
    let fake = FakeGithub::start();
    let mut gh = fake.backend();
    let seen = notices(&mut gh);
    fake.secondary_403_next(1, Some(37));
    gh.create(&new_issue("t", "b", Status::Open, "aa"))
        .expect("created after the wait");
    let posts: Vec<u16> = sent_by_bot(&fake, "POST")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [403, 201], "refused once, then created once");
    assert!(
        fake.clock().sleeps().contains(&Duration::from_secs(37)),
        "waited retry-after: {:?}",
        fake.clock().sleeps()
    );
    assert_eq!(
        seen.lock().expect("lock").as_slice(),
        ["rate limited by github: waiting 37 s"]
    );
    assert_eq!(gh.list_changed(None).expect("list").0.len(), 1);
}

#[test]
fn a_secondary_limit_403_without_retry_after_waits_a_minute_then_doubles() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    fake.secondary_403_next(2, None);
    gh.list_changed(None).expect("list after two waits");
    let waits: Vec<Duration> = fake
        .clock()
        .sleeps()
        .into_iter()
        .filter(|d| *d >= Duration::from_secs(2))
        .collect();
    assert_eq!(waits, [Duration::from_secs(60), Duration::from_secs(120)]);
}

// Regression (issue 9, point 3): content creation is limited to about 80
// requests a minute; an initial export of more than ~80 issues failed.
#[test]
fn an_initial_export_of_200_issues_is_paced_under_the_content_limit() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    for k in 0..200 {
        gh.create(&NewRemoteIssue {
            labels: Vec::new(),
            ..new_issue(
                &format!("issue {k}"),
                "b",
                Status::Open,
                &format!("{k:04x}"),
            )
        })
        .unwrap_or_else(|e| panic!("create {k}: {e}"));
    }
    let refused = sent_by_bot(&fake, "POST")
        .iter()
        .filter(|r| r.status == 403)
        .count();
    assert_eq!(refused, 0, "pacing keeps under the limit");
    let slept = fake.clock().slept();
    assert!(
        slept >= Duration::from_secs(199) && slept < Duration::from_secs(200 + 60),
        "about a second between creates: {slept:?}"
    );
}

#[test]
fn a_rate_limit_longer_than_the_policy_allows_fails_at_once() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    fake.secondary_403_next(1, Some(7200));
    match gh.list_changed(None) {
        Err(BackendError::RateLimited { wait_secs, .. }) => assert_eq!(wait_secs, 7200),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(fake.clock().sleeps().is_empty(), "did not sleep two hours");
}

// Regression (issue 9, point 11): GitHub matches labels case-insensitively
// and answers with the repository's spelling; the adapter compared
// case-sensitively and re-sent the same label write every sync.
#[test]
fn label_case_differences_send_no_write_and_keep_the_repository_spelling() {
    let fake = FakeGithub::start();
    fake.create_label("Bug");
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("t", "b", Status::Open, "ab"))
        .expect("create with `bug`");
    assert_eq!(created.labels, ["Bug"], "the repository's spelling");
    let before = sent_by_bot(&fake, "PATCH").len();
    for _ in 0..3 {
        let current = gh.get(&created.remote_id).expect("get").expect("exists");
        let patch = IssuePatch {
            labels: Some(strings(&["bug"])),
            ..IssuePatch::default()
        };
        let after = gh
            .update(&created.remote_id, &patch, &current.revision)
            .expect("update");
        assert_eq!(after.labels, ["Bug"]);
    }
    assert_eq!(sent_by_bot(&fake, "PATCH").len(), before, "nothing to send");
    assert!(gh.labels_equal(&strings(&["bug", "UI"]), &strings(&["ui", "Bug"])));
    // A real change still goes out, keeping `Bug` as spelled.
    let current = gh.get(&created.remote_id).expect("get").expect("exists");
    let patch = IssuePatch {
        labels: Some(strings(&["bug", "ui"])),
        ..IssuePatch::default()
    };
    gh.update(&created.remote_id, &patch, &current.revision)
        .expect("update");
    assert_eq!(
        sent_by_bot(&fake, "PATCH")
            .last()
            .and_then(|r| r.body.clone()),
        Some(json!({"labels": ["Bug", "ui"]}))
    );
}

// Regression (issue 9, point 12): an unassignable login got a 422 on every
// sync; now it is refused before writing and the rest is applied.
#[test]
fn an_unassignable_login_is_refused_and_the_rest_applied() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("t", "b", Status::Open, "ab"))
        .expect("create");
    let patch = IssuePatch {
        title: Some("t2".into()),
        assignees: Some(strings(&["alice", "mallory"])),
        ..IssuePatch::default()
    };
    match gh.update(&created.remote_id, &patch, &created.revision) {
        Err(BackendError::Refused {
            refusals, applied, ..
        }) => {
            assert_eq!(refusals.len(), 1);
            assert_eq!(
                (refusals[0].field.as_str(), refusals[0].value.as_str()),
                ("assignees", "mallory")
            );
            let applied = applied.expect("the rest was written");
            assert_eq!(
                (applied.title.as_str(), applied.assignees.clone()),
                ("t2", strings(&["alice"]))
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(
        sent_by_bot(&fake, "PATCH").iter().all(|r| r.status == 200),
        "no 422"
    );
}

// Regression (issue 9, point 12): a token without push access can create
// issues, but GitHub drops their labels and assignees silently; the
// adapter reported success and re-sent them every sync.
#[test]
fn labels_and_assignees_dropped_without_push_access_are_reported() {
    let fake = FakeGithub::start();
    let gh = fake.backend_with_token(crate::github_fake::READER_TOKEN);
    let mut new = new_issue("t", "b", Status::InProgress, "ab");
    new.assignees = strings(&["alice"]);
    match gh.create(&new) {
        Err(BackendError::Refused {
            refusals, applied, ..
        }) => {
            let mut got: Vec<(String, String)> = refusals
                .iter()
                .map(|r| (r.field.clone(), r.value.clone()))
                .collect();
            got.sort();
            assert_eq!(
                got,
                [
                    ("assignees".to_owned(), "alice".to_owned()),
                    ("labels".to_owned(), "bug".to_owned()),
                    ("labels".to_owned(), IN_PROGRESS_LABEL.to_owned()),
                ]
            );
            assert!(refusals[0].reason.contains("push access"));
            let applied = applied.expect("the issue exists");
            assert_eq!(applied.marker.as_deref(), Some("ab"));
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[test]
fn assignees_are_mapped_to_logins_and_back() {
    let fake = FakeGithub::start();
    let mut gh = fake.backend();
    gh.set_identities(
        reposix::tracker::IdentityMap::from_entries(["ann github:alice"]).expect("valid"),
    );
    let mut new = new_issue("t", "b", Status::Open, "ab");
    new.assignees = strings(&["ann"]);
    let created = gh.create(&new).expect("create");
    assert_eq!(created.assignees, ["ann"]);
    let raw = fake.issue_json(number(&created));
    assert_eq!(raw["assignees"][0]["login"], "alice");
}

// Regression (issue 9, point 14): bodies over GitHub's limit were sent and
// refused with a 422 on every sync.
#[test]
fn bodies_over_65536_characters_are_refused_before_sending() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let long = "é".repeat(65_536 - 10);
    match gh.create(&new_issue("t", &long, Status::Open, "ab")) {
        Err(BackendError::Refused {
            refusals, applied, ..
        }) => {
            assert_eq!(refusals[0].field, "body");
            assert!(applied.is_none());
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(sent_by_bot(&fake, "POST").is_empty(), "nothing sent");
    let short = "é".repeat(65_000);
    gh.create(&new_issue("t", &short, Status::Open, "ab"))
        .expect("under the limit (counted in characters, not bytes)");
}

// Regression: an oversized body was refused only after the assignees were
// looked up (one request per assignee for nothing).
#[test]
fn an_oversized_body_is_refused_before_any_request_even_with_assignees() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let mut new = new_issue("t", &"x".repeat(70_000), Status::Open, "ab");
    new.assignees = vec!["ann".into(), "bob".into()];
    let before = fake.requests().len();
    match gh.create(&new) {
        Err(BackendError::Refused { refusals, .. }) => assert_eq!(refusals[0].field, "body"),
        other => panic!("expected Refused, got {other:?}"),
    }
    let sent: Vec<String> = fake.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.url))
        .collect();
    assert!(
        sent.is_empty(),
        "requests sent for a refused create: {sent:?}"
    );
}

// Regression (issue 9, point 9): a renamed repository redirects every
// request; any 3xx was a hard error.
#[test]
fn a_renamed_repository_is_followed_with_a_notice() {
    let fake = FakeGithub::start();
    let mut gh = fake.backend();
    let seen = notices(&mut gh);
    let created = gh
        .create(&new_issue("t", "b", Status::Open, "ab"))
        .expect("create");
    let instance = gh.instance();
    fake.rename_repo("octo-org", "gadgets");
    let (listed, _) = gh.list_changed(None).expect("list follows the redirect");
    assert_eq!(listed.len(), 1);
    let got = gh.get(&created.remote_id).expect("get").expect("exists");
    let patch = IssuePatch {
        title: Some("renamed".into()),
        ..IssuePatch::default()
    };
    gh.update(&created.remote_id, &patch, &got.revision)
        .expect("writes go to the new name");
    gh.create(&new_issue("t2", "b", Status::Open, "cd"))
        .expect("create under the new name");
    assert_eq!(
        gh.relocated().map(|s| s.to_spec_string()).as_deref(),
        Some("github::octo-org/gadgets")
    );
    assert_eq!(gh.instance(), instance, "the identity does not move");
    let notices = seen.lock().expect("lock").clone();
    assert!(
        notices.iter().any(|n| n.contains("octo-org/gadgets")),
        "{notices:?}"
    );
    let redirected: Vec<u16> = sent_by_bot(&fake, "GET")
        .iter()
        .map(|r| r.status)
        .filter(|s| (301..=308).contains(s) && *s != 304)
        .collect();
    assert_eq!(
        redirected,
        [301, 301],
        "the list and the name lookup redirect once; then the new name is used"
    );
}

// Regression (issue 9, point 9): a transferred issue answers 301.
#[test]
fn a_transferred_issue_is_reported_as_moved() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let created = gh
        .create(&new_issue("t", "b", Status::Open, "ab"))
        .expect("create");
    let new_number = fake.transfer_issue(number(&created));
    match gh.get(&created.remote_id) {
        Err(BackendError::Moved { to, .. }) => {
            assert_eq!(to, format!("github::octo-org/archive#{new_number}"))
        }
        other => panic!("expected Moved, got {other:?}"),
    }
    let patch = IssuePatch {
        title: Some("x".into()),
        ..IssuePatch::default()
    };
    assert!(matches!(
        gh.update(&created.remote_id, &patch, &created.revision),
        Err(BackendError::Moved { .. })
    ));
    assert!(sent_by_bot(&fake, "PATCH").is_empty());
}

// Regression (issue 9, point 14): marker recovery listed the whole
// repository.
#[test]
fn marker_recovery_reads_the_newest_issues_only() {
    let fake = FakeGithub::start();
    for k in 0..250 {
        fake.seed(Seed {
            title: format!("old {k}"),
            ..Seed::default()
        });
    }
    let gh = fake.backend();
    gh.create(&new_issue("mine", "b", Status::Open, "beef"))
        .expect("create");
    fake.clear_requests();
    let found = gh
        .find_by_marker("beef", None)
        .expect("find")
        .expect("found");
    assert_eq!(found.title, "mine");
    let gets = sent_by_bot(&fake, "GET");
    assert_eq!(
        gets.len(),
        1,
        "one page: {:?}",
        gets.iter().map(|r| &r.url).collect::<Vec<_>>()
    );
    assert_eq!(
        query(&gets[0]).get("sort").map(String::as_str),
        Some("created")
    );
}

// ---- issue 14: typed links as sub-issues and issue dependencies ----

use crate::github_fake::ISSUE_ID_BASE;
use crate::jira::{link, links_of, new_local, remote_of, tracker_sync, unlink, who};
use crate::support::TestRepo;
use reposix::tracker::projection::Projection;

fn number_of(repo: &reposix::repo::Repo, issue: reposix::event::IssueId) -> u64 {
    remote_of(repo, issue).parse().expect("a GitHub number")
}

// `blocks` becomes an issue dependency and `parent` a sub-issue, each
// written with the other end's database id (not its number) and the right
// way round; an export in step sends nothing; links removed here are
// removed there; `related` has no GitHub relation and stays local.
#[test]
fn links_blocks_and_parent_become_dependencies_and_sub_issues() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let t = TestRepo::new();
    let repo = t.open();
    let x = new_local(&repo, "X");
    let y = new_local(&repo, "Y");
    let z = new_local(&repo, "Z");
    link(&repo, "alice", x, "blocks", y);
    link(&repo, "alice", z, "child", x);
    link(&repo, "alice", x, "related", z);
    let (_, report) = tracker_sync(&repo, &gh, "alice");
    assert_eq!((report.links, report.links_local_only), (2, 1));
    let (nx, ny, nz) = (
        number_of(&repo, x),
        number_of(&repo, y),
        number_of(&repo, z),
    );
    assert_eq!(fake.dependencies(), [(ny, nx)], "Y is blocked by X");
    assert_eq!(fake.sub_issues(), [(nx, nz)], "Z is a sub-issue of X");
    let posts: Vec<Recorded> = sent_by_bot(&fake, "POST")
        .into_iter()
        .filter(|r| !r.path().ends_with("/issues"))
        .collect();
    let dep = posts
        .iter()
        .find(|r| {
            r.path()
                .ends_with(&format!("/issues/{ny}/dependencies/blocked_by"))
        })
        .expect("a dependency POST on the blocked issue");
    assert_eq!(dep.body, Some(json!({"issue_id": ISSUE_ID_BASE + nx})));
    let sub = posts
        .iter()
        .find(|r| r.path().ends_with(&format!("/issues/{nx}/sub_issues")))
        .expect("a sub-issue POST on the parent");
    assert_eq!(sub.body, Some(json!({"sub_issue_id": ISSUE_ID_BASE + nz})));
    fake.clear_requests();
    let p = Projection::new(repo.store(), &gh, who("alice"), &|_| {});
    assert_eq!(p.export_all().expect("export").links, 0);
    assert!(sent_by_bot(&fake, "POST").is_empty() && sent_by_bot(&fake, "DELETE").is_empty());
    unlink(&repo, "alice", x, "blocks", y);
    unlink(&repo, "alice", z, "child", x);
    let (_, report) = tracker_sync(&repo, &gh, "alice");
    assert_eq!(report.links, 2);
    assert!(fake.dependencies().is_empty() && fake.sub_issues().is_empty());
    let deletes: Vec<String> = sent_by_bot(&fake, "DELETE")
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert!(
        deletes.iter().any(|p| p.ends_with(&format!(
            "/issues/{ny}/dependencies/blocked_by/{}",
            ISSUE_ID_BASE + nx
        ))) && deletes
            .iter()
            .any(|p| p.ends_with(&format!("/issues/{nx}/sub_issue"))),
        "{deletes:?}"
    );
}

// Relations made on GitHub between two bound issues come here (GitHub does
// not move `updated_at` for them: a reconciling import reads them).
#[test]
fn links_made_on_github_are_imported() {
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let t = TestRepo::new();
    let repo = t.open();
    let x = new_local(&repo, "X");
    let y = new_local(&repo, "Y");
    tracker_sync(&repo, &gh, "alice");
    let (nx, ny) = (number_of(&repo, x), number_of(&repo, y));
    fake.add_sub_issue(ny, nx);
    fake.add_blocked_by(nx, ny);
    let p = Projection::new(repo.store(), &gh, who("alice"), &|_| {});
    let imported = p.import(true).expect("import");
    assert_eq!(imported.links, 2);
    let mut got = links_of(&repo, y);
    got.sort();
    assert_eq!(got, [("blocks".to_owned(), x), ("parent".to_owned(), x)]);
    fake.clear_requests();
    assert_eq!(
        p.export_all().expect("export").links,
        0,
        "nothing echoed back"
    );
    assert!(sent_by_bot(&fake, "POST").is_empty());
}

// A repository without the features (its endpoints answer 404, 410 or
// 422): links stay local, are counted, and the export does not fail.
#[test]
fn links_stay_local_on_a_repository_without_the_features() {
    for status in [404, 410, 422] {
        let fake = FakeGithub::start();
        fake.disable_relations(status);
        let t = TestRepo::new();
        let repo = t.open();
        let x = new_local(&repo, "X");
        let y = new_local(&repo, "Y");
        link(&repo, "alice", x, "blocks", y);
        link(&repo, "alice", x, "parent", y);
        let (_, report) = tracker_sync(&repo, &fake.backend(), "alice");
        assert_eq!(report.created, 2, "{status}");
        assert_eq!((report.links, report.links_local_only), (0, 2), "{status}");
        assert!(fake.dependencies().is_empty() && fake.sub_issues().is_empty());
    }
}

// A sub-issue has one parent on GitHub (a second is a 422): the second
// `parent` link stays local, counted, without failing the export.
#[test]
fn links_github_refuses_stay_local() {
    let fake = FakeGithub::start();
    let t = TestRepo::new();
    let repo = t.open();
    let p1 = new_local(&repo, "P1");
    let p2 = new_local(&repo, "P2");
    let c = new_local(&repo, "C");
    let gh = fake.backend();
    tracker_sync(&repo, &gh, "alice");
    link(&repo, "alice", p1, "parent", c);
    tracker_sync(&repo, &gh, "alice");
    link(&repo, "alice", p2, "parent", c);
    let (_, report) = tracker_sync(&repo, &gh, "alice");
    assert_eq!((report.links, report.links_local_only), (0, 1));
    let (n1, nc) = (number_of(&repo, p1), number_of(&repo, c));
    assert_eq!(fake.sub_issues(), [(n1, nc)]);
}

// ---- issue 14, point 5: agents acting for people, on GitHub ----

// A comment an agent wrote for alice reaches GitHub with a first line
// saying so; import drops exactly that line (the local text never grows),
// a sync in step sends nothing, and an edit carries the line once.
#[test]
fn attribution_lines_round_trip_through_github_comments() {
    use reposix::repo::Change;
    let fake = FakeGithub::start();
    let gh = fake.backend();
    let t = TestRepo::new();
    let repo = t.open();
    repo.set_on_behalf_of(&who("agent-7"), &who("alice"))
        .expect("configure");
    let issue = new_local(&repo, "Task");
    repo.apply(issue, &who("agent-7"), &[Change::Comment("Done.".into())])
        .expect("agent comment");
    repo.apply(issue, &who("alice"), &[Change::Comment("Thanks.".into())])
        .expect("own comment");
    tracker_sync(&repo, &gh, "alice");
    let n = number_of(&repo, issue);
    let raw: Vec<String> = sent_by_bot(&fake, "POST")
        .iter()
        .filter(|r| r.path().ends_with(&format!("/issues/{n}/comments")))
        .map(|r| {
            r.body.as_ref().expect("body")["body"]
                .as_str()
                .expect("text")
                .to_owned()
        })
        .collect();
    assert_eq!(raw.len(), 2, "{raw:?}");
    assert!(
        raw[0].starts_with("_agent-7 on behalf of alice_\n\nDone.\n\n<!-- reposix:"),
        "{raw:?}"
    );
    assert!(
        raw[1].starts_with("Thanks.\n\n<!-- reposix:"),
        "alice acts for herself: {raw:?}"
    );
    let texts = |repo: &reposix::repo::Repo| -> Vec<String> {
        repo.show(issue)
            .expect("show")
            .comments
            .iter()
            .map(|c| c.body.clone())
            .collect()
    };
    assert_eq!(texts(&repo), ["Done.", "Thanks."]);
    fake.clear_requests();
    for _ in 0..2 {
        let p = Projection::new(repo.store(), &gh, who("alice"), &|_| {});
        p.import(true)
            .expect("reconciling import re-reads every comment");
        let report = p.export_all().expect("export");
        assert_eq!(report.comments, 0, "in step: nothing sent");
    }
    assert!(sent_by_bot(&fake, "PATCH").is_empty() && sent_by_bot(&fake, "POST").is_empty());
    assert_eq!(texts(&repo), ["Done.", "Thanks."], "no growth");
    let first = repo.show(issue).expect("show").comments[0].id;
    repo.apply(
        issue,
        &who("agent-7"),
        &[Change::EditComment(first, "Done, really.".into())],
    )
    .expect("edit");
    tracker_sync(&repo, &gh, "alice");
    let patches = sent_by_bot(&fake, "PATCH");
    assert_eq!(patches.len(), 1);
    let sent = patches[0].body.as_ref().expect("body")["body"]
        .as_str()
        .expect("text")
        .to_owned();
    assert!(
        sent.starts_with("_agent-7 on behalf of alice_\n\nDone, really.\n\n<!-- reposix:"),
        "{sent}"
    );
    assert_eq!(sent.matches("on behalf of").count(), 1);
    assert_eq!(texts(&repo), ["Done, really.", "Thanks."]);
}
