//! The JIRA adapter against the local fake in `jira_fake`.

use std::time::{Duration, Instant};

use reposix::backend::jira::JiraBackend;
use reposix::backend::{Backend, BackendError, IssuePatch, NewRemoteIssue};
use reposix::event::Status;
use serde_json::{json, Value};

use super::jira_fake::{basic_auth, check_adf, loopback, FakeJira, Seed, BOT_ACCOUNT, TOKEN};

const HOSTILE: &str =
    "<script>alert('x')</script>\n---\nversion: 999\n---\n\n  indented\tand tabbed \r\n\
                       &amp; &lt;p&gt; {\"type\":\"doc\"} \u{0} \u{1f600} \u{202e}rtl\n\n";

fn new_issue(title: &str, body: &str, marker: &str) -> NewRemoteIssue {
    NewRemoteIssue {
        title: title.into(),
        body: body.into(),
        status: Status::Open,
        labels: vec!["alpha".into()],
        assignees: Vec::new(),
        marker: marker.into(),
    }
}

fn searches(fake: &FakeJira) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path() == "/rest/api/3/search/jql")
        .map(|r| r.body.expect("search bodies are JSON"))
        .collect()
}

/// Regression: following page tokens through `ORDER BY updated ASC` skipped
/// an issue when one already served was edited mid-walk (it moves to the
/// end and every later row shifts back a place); a skipped issue older than
/// the cursor was never listed again.
#[test]
fn listing_never_skips_an_issue_when_one_moves_during_the_walk() {
    for (tick_ms, label) in [
        (25_000, "pages spanning minutes"),
        (1_000, "one dense minute"),
    ] {
        let fake = FakeJira::start();
        fake.set_tick(tick_ms);
        let keys: Vec<String> = (0..7)
            .map(|i| {
                fake.seed(Seed {
                    summary: format!("issue {i}"),
                    ..Seed::default()
                })
            })
            .collect();
        fake.set_page_cap(2);
        // A third party edits the first issue while we are on page 1.
        fake.touch_after_search_page(1, &keys[0]);
        let b = fake.backend();
        let (issues, cursor) = b.list_changed(None).expect("lists");
        let mut got: Vec<&str> = issues.iter().map(|i| i.remote_id.as_str()).collect();
        got.sort_unstable();
        assert_eq!(
            got,
            keys.iter().map(String::as_str).collect::<Vec<_>>(),
            "{label}"
        );
        let first = issues
            .iter()
            .find(|i| i.remote_id == keys[0])
            .expect("present");
        assert_eq!(
            first.title, "issue 0 (touched)",
            "{label}: the newer copy wins"
        );
        assert_eq!(
            cursor.as_deref(),
            Some(first.updated_at.as_str()),
            "{label}"
        );

        let bodies = searches(&fake);
        assert_eq!(
            bodies[0]["jql"],
            json!("project = \"PROJ\" ORDER BY updated ASC")
        );
        assert_eq!(bodies[0]["maxResults"], json!(100));
        assert!(bodies[0].get("nextPageToken").is_none());
        for f in [
            "summary",
            "description",
            "status",
            "labels",
            "assignee",
            "created",
            "updated",
        ] {
            assert!(
                bodies[0]["fields"]
                    .as_array()
                    .expect("fields")
                    .contains(&json!(f)),
                "{f}"
            );
        }
        assert!(
            bodies.iter().any(|b| b["nextPageToken"].is_string()),
            "{label}: tokens are followed"
        );
        assert!(
            bodies.iter().all(|b| b["jql"] == bodies[0]["jql"]
                || b["jql"]
                    .as_str()
                    .expect("jql")
                    .contains("updated >= \"2026-01-05 14:3")),
            "{label}: restarts begin at the minute of the last issue served"
        );
    }
}

#[test]
fn a_write_in_the_cursors_minute_is_seen_on_the_next_listing() {
    let fake = FakeJira::start();
    let a = fake.seed(Seed {
        summary: "a".into(),
        ..Seed::default()
    }); // 14:30:01
    let b_key = fake.seed(Seed {
        summary: "b".into(),
        ..Seed::default()
    }); // 14:30:02
    let b = fake.backend();
    let (_, cursor) = b.list_changed(None).expect("lists");
    let cursor = cursor.expect("a cursor");
    assert_eq!(cursor, "2026-01-05T14:30:02.000+0000");

    fake.edit(&a, |i| i.summary = "a, edited in the same minute".into()); // 14:30:03
    let (issues, next) = b.list_changed(Some(&cursor)).expect("lists");
    let jql = searches(&fake).last().expect("searched")["jql"].clone();
    assert_eq!(
        jql,
        json!("project = \"PROJ\" AND updated >= \"2026-01-05 14:29\" ORDER BY updated ASC")
    );
    let edited = issues
        .iter()
        .find(|i| i.remote_id == a)
        .expect("the same-minute write is seen");
    assert_eq!(edited.title, "a, edited in the same minute");
    assert_eq!(next.as_deref(), Some("2026-01-05T14:30:03.000+0000"));

    // A write stamped with the very millisecond of the cursor is seen too.
    fake.set_tick(0);
    fake.edit(&b_key, |i| i.summary = "b, same millisecond".into());
    let (issues, next2) = b.list_changed(next.as_deref()).expect("lists");
    assert!(issues.iter().any(|i| i.title == "b, same millisecond"));
    assert_eq!(next2, next, "the cursor never goes back");

    // Nothing new: the slack returns old rows again (the caller dedupes by
    // revision) and the cursor stays.
    fake.set_tick(120_000);
    fake.seed(Seed::default()); // two minutes later, moves the clock on
    let (_, later) = b.list_changed(next.as_deref()).expect("lists");
    assert!(later.as_deref() > next.as_deref());
}

#[test]
fn all_five_statuses_round_trip_through_transitions() {
    let fake = FakeJira::start();
    let b = fake.backend();
    let created = b.create(&new_issue("t", "", "m-1")).expect("creates");
    assert_eq!(created.status, Status::Open);
    let mut rev = created.revision;
    for (want, name) in [
        (Status::InProgress, "In Progress"),
        (Status::InReview, "In Review"),
        (Status::Done, "Done"),
        (Status::WontFix, "Won't Do"),
        (Status::Open, "To Do"),
    ] {
        let patch = IssuePatch {
            status: Some(want),
            ..IssuePatch::default()
        };
        let after = b
            .update(&created.remote_id, &patch, &rev)
            .expect("transitions");
        assert_eq!(after.status, want);
        let stored = fake.issue(&created.remote_id);
        assert_eq!(super::jira_fake::STATUSES[stored.status].1, name);
        assert_eq!(
            b.get(&created.remote_id)
                .expect("reads")
                .expect("exists")
                .status,
            want
        );
        rev = after.revision;
    }
    // Created straight into a status: created, then transitioned.
    let mut n = new_issue("born done", "", "m-2");
    n.status = Status::WontFix;
    assert_eq!(b.create(&n).expect("creates").status, Status::WontFix);

    // Seeded by a third party in each status, read back by category + name.
    for (name, want) in [
        ("To Do", Status::Open),
        ("In Progress", Status::InProgress),
        ("In Review", Status::InReview),
        ("Done", Status::Done),
        ("Won't Do", Status::WontFix),
    ] {
        let key = fake.seed(Seed {
            status: name,
            ..Seed::default()
        });
        assert_eq!(
            b.get(&key).expect("reads").expect("exists").status,
            want,
            "{name}"
        );
    }
}

#[test]
fn a_status_without_a_transition_is_a_clear_error() {
    let fake = FakeJira::start();
    fake.disable_status("In Review");
    let b = fake.backend();
    let created = b.create(&new_issue("t", "", "m")).expect("creates");
    let patch = IssuePatch {
        status: Some(Status::InReview),
        ..IssuePatch::default()
    };
    let err = b
        .update(&created.remote_id, &patch, &created.revision)
        .expect_err("no way there");
    assert!(matches!(err, BackendError::Spec(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("in_review") && text.contains("\"In Progress\""),
        "{text}"
    );
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path().ends_with("/transitions")),
        "no near-miss transition was taken"
    );
}

#[test]
fn hostile_bodies_survive_adf_byte_for_byte() {
    let fake = FakeJira::start();
    let b = fake.backend();
    let created = b
        .create(&new_issue("<b>title</b> & co", HOSTILE, "m"))
        .expect("creates");
    assert_eq!(created.body, HOSTILE);
    assert_eq!(created.title, "<b>title</b> & co");
    let stored = fake.issue(&created.remote_id).description;
    assert_eq!(
        check_adf(&stored),
        Ok(()),
        "the fake validated it against the schema"
    );
    let texts: Vec<&str> = stored["content"]
        .as_array()
        .expect("paragraphs")
        .iter()
        .flat_map(|p| p["content"].as_array().expect("content").iter())
        .map(|t| t["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        texts[0], "<script>alert('x')</script>",
        "stored as text, not markup"
    );

    let fresh = b.get(&created.remote_id).expect("reads").expect("exists");
    assert_eq!(fresh.body, HOSTILE);
    let other = "\n\nleading blank lines\n";
    let patch = IssuePatch {
        body: Some(other.into()),
        ..IssuePatch::default()
    };
    let updated = b
        .update(&created.remote_id, &patch, &fresh.revision)
        .expect("updates");
    assert_eq!(updated.body, other);
    let emptied = b
        .update(
            &created.remote_id,
            &IssuePatch {
                body: Some(String::new()),
                ..IssuePatch::default()
            },
            &updated.revision,
        )
        .expect("updates");
    assert_eq!(emptied.body, "");

    let c = b
        .add_comment(&created.remote_id, HOSTILE, "c-marker")
        .expect("comments");
    assert_eq!(c.body, HOSTILE);
    assert_eq!(c.author, BOT_ACCOUNT);
    let edited = b
        .edit_comment(&created.remote_id, &c.remote_id, "edited <i>")
        .expect("edits");
    assert_eq!(edited.body, "edited <i>");
    let all = b.comments(&created.remote_id).expect("lists comments");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].body, "edited <i>");
}

#[test]
fn comments_page_by_start_at() {
    let fake = FakeJira::start();
    let key = fake.seed(Seed::default());
    fake.seed_comments(&key, 5);
    fake.set_comment_page_cap(2);
    let b = fake.backend();
    let comments = b.comments(&key).expect("lists");
    let bodies: Vec<&str> = comments.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "comment 0",
            "comment 1",
            "comment 2",
            "comment 3",
            "comment 4"
        ]
    );
    let starts: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.path().ends_with("/comment"))
        .map(|r| {
            super::jira_fake::query_params(&r.url)
                .into_iter()
                .find(|(k, _)| k == "startAt")
                .expect("startAt")
                .1
        })
        .collect();
    assert_eq!(starts, ["0", "2", "4"]);
    assert!(fake
        .requests()
        .iter()
        .all(|r| !r.path().ends_with("/comment") || r.url.contains("orderBy=created")));
}

#[test]
fn an_interrupted_create_is_found_by_its_marker() {
    let fake = FakeJira::start();
    let b = fake.backend();
    let since = "2026-01-05T14:30:00.000+0000";
    fake.garble_next_create();
    let err = b
        .create(&new_issue("lost", "body", "0f3a-77"))
        .expect_err("the response is lost");
    assert!(matches!(err, BackendError::Malformed { .. }), "{err:?}");
    assert_eq!(fake.issue_count(), 1, "but the issue exists");

    // A new process looks before creating again.
    let again = fake.backend();
    let found = again
        .find_by_marker("0f3a-77", Some(since))
        .expect("searches")
        .expect("found");
    assert_eq!(found.title, "lost");
    assert_eq!(found.marker.as_deref(), Some("0f3a-77"));
    let jql = searches(&fake).last().expect("searched")["jql"].clone();
    assert_eq!(
        jql,
        json!("project = \"PROJ\" AND issue.property[reposix].id = \"0f3a-77\"")
    );
    assert_eq!(
        again
            .find_by_marker("ffff-00", Some(since))
            .expect("searches"),
        None
    );

    // The marker was part of the create request itself.
    let create = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path() == "/rest/api/3/issue")
        .expect("created");
    assert_eq!(
        create.body.expect("JSON")["properties"],
        json!([{"key": "reposix", "value": {"id": "0f3a-77"}}])
    );
    // Listings carry the marker too.
    let (issues, _) = again.list_changed(None).expect("lists");
    assert_eq!(issues[0].marker.as_deref(), Some("0f3a-77"));
}

#[test]
fn without_property_search_the_marker_is_found_by_scanning() {
    let fake = FakeJira::start();
    let b = fake.backend();
    fake.seed(Seed::default());
    let created = b
        .create(&new_issue("mine", "", "abcd-01"))
        .expect("creates");
    fake.seed(Seed::default());
    fake.set_property_search(false);
    fake.clear_requests();
    let found = b
        .find_by_marker("abcd-01", Some("2026-01-05T14:30:00.000+0000"))
        .expect("falls back")
        .expect("found");
    assert_eq!(found.remote_id, created.remote_id);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [400, 200],
        "the property clause is refused, then a scan"
    );
    assert_eq!(b.find_by_marker("abcd-02", None).expect("scans"), None);
}

#[test]
fn an_update_conflicts_when_a_third_party_moved_the_issue() {
    let fake = FakeJira::start();
    let b = fake.backend();
    let created = b.create(&new_issue("mine", "", "m")).expect("creates");
    fake.edit(&created.remote_id, |i| i.summary = "theirs".into());
    fake.clear_requests();
    let patch = IssuePatch {
        title: Some("ours".into()),
        ..IssuePatch::default()
    };
    let err = b
        .update(&created.remote_id, &patch, &created.revision)
        .expect_err("stale");
    assert!(matches!(err, BackendError::Conflict { .. }), "{err:?}");
    assert!(
        fake.requests().iter().all(|r| r.method == "GET"),
        "nothing was written"
    );
    assert_eq!(fake.issue(&created.remote_id).summary, "theirs");

    let missing = b
        .update("PROJ-99", &patch, &created.revision)
        .expect_err("no such issue");
    assert!(
        matches!(missing, BackendError::NotFound { .. }),
        "{missing:?}"
    );
    assert_eq!(b.get("PROJ-99").expect("a 404 is not an error"), None);
}

#[test]
fn updates_send_only_what_changed() {
    let fake = FakeJira::start();
    let b = fake.backend();
    let mut n = new_issue("t", "body", "m");
    n.labels = vec!["a".into(), "b".into()];
    let created = b.create(&n).expect("creates");
    let puts = |fake: &FakeJira| -> Vec<Value> {
        fake.requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .map(|r| r.body.expect("JSON"))
            .collect()
    };

    fake.clear_requests();
    let r1 = b
        .update(
            &created.remote_id,
            &IssuePatch {
                title: Some("t2".into()),
                ..IssuePatch::default()
            },
            &created.revision,
        )
        .expect("updates");
    assert_eq!(puts(&fake), [json!({"fields": {"summary": "t2"}})]);

    fake.clear_requests();
    let patch = IssuePatch {
        labels: Some(vec!["b".into(), "c".into()]),
        ..IssuePatch::default()
    };
    let r2 = b
        .update(&created.remote_id, &patch, &r1.revision)
        .expect("updates");
    assert_eq!(
        puts(&fake),
        [json!({"update": {"labels": [{"add": "c"}, {"remove": "a"}]}})]
    );
    assert_eq!(r2.labels, ["b", "c"]);

    fake.clear_requests();
    let patch = IssuePatch {
        assignees: Some(vec![BOT_ACCOUNT.into()]),
        body: Some("body".into()),
        ..IssuePatch::default()
    };
    let r3 = b
        .update(&created.remote_id, &patch, &r2.revision)
        .expect("updates");
    assert_eq!(
        puts(&fake),
        [json!({"fields": {"assignee": {"accountId": BOT_ACCOUNT}}})],
        "the body did not change"
    );
    assert_eq!(r3.assignees, [BOT_ACCOUNT]);

    fake.clear_requests();
    let same = IssuePatch {
        title: Some("t2".into()),
        labels: Some(vec!["c".into(), "b".into()]),
        ..IssuePatch::default()
    };
    let r4 = b
        .update(&created.remote_id, &same, &r3.revision)
        .expect("updates");
    assert!(puts(&fake).is_empty(), "nothing differs, nothing is sent");
    assert_eq!(r4.revision, r3.revision);

    // Labels JIRA cannot hold are refused before anything is sent.
    fake.clear_requests();
    let bad = IssuePatch {
        labels: Some(vec!["needs review".into()]),
        ..IssuePatch::default()
    };
    let err = b
        .update(&created.remote_id, &bad, &r4.revision)
        .expect_err("refused");
    assert!(err.to_string().contains("whitespace"), "{err}");
    assert!(fake.requests().is_empty());
}

#[test]
fn a_429_with_retry_after_is_waited_out() {
    let fake = FakeJira::start();
    fake.seed(Seed::default());
    fake.throttle_next(1, 1);
    let b = fake.backend();
    let start = Instant::now();
    let (issues, _) = b.list_changed(None).expect("completes after the wait");
    assert_eq!(issues.len(), 1);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[test]
fn credentials_never_show_and_egress_is_refused() {
    let fake = FakeJira::start();
    let wrong = "ATATT-wrong-token-SECRET-998877";
    let b = fake.backend_with(basic_auth(wrong));
    let err = b.list_changed(None).expect_err("401");
    assert!(
        matches!(err, BackendError::Auth { status: 401, .. }),
        "{err:?}"
    );
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{b:?}"),
        format!("{:?}", fake.backend()),
    ] {
        assert!(!shown.contains(wrong) && !shown.contains(TOKEN), "{shown}");
    }
    let outside = JiraBackend::new(
        "https://acme.atlassian.net",
        "PROJ",
        basic_auth(TOKEN),
        loopback(),
    )
    .expect("constructs");
    let err = outside.list_changed(None).expect_err("refused");
    assert!(matches!(err, BackendError::Egress { .. }), "{err:?}");
    assert!(!err.to_string().contains(TOKEN));
    assert!(
        err.to_string().contains("https://acme.atlassian.net"),
        "{err}"
    );
}
