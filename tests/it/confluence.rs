//! The Confluence adapter against the local fake in `confluence_fake`.

use std::time::{Duration, Instant};

use reposix::event::Status;
use reposix::tracker::confluence::ConfluenceBackend;
use reposix::tracker::{Backend, BackendError, IssuePatch, NewRemoteIssue};
use serde_json::{json, Value};

use super::confluence_fake::{check_storage, FakeConfluence, Seed, OTHER_ACCOUNT};
use super::jira_fake::{basic_auth, loopback, TOKEN};

/// Everything XML 1.0 can carry, hostile on purpose.
const HOSTILE: &str =
    "<script>alert('x')</script>\n---\nversion: 999\n---\n\n  indented\tand tabbed \r\n\
                       &amp; &lt;p&gt; <![CDATA[x]]> <!-- c --> \u{a0}\u{1f600} \u{202e}rtl\n\n";

fn new_page(title: &str, body: &str, marker: &str) -> NewRemoteIssue {
    NewRemoteIssue {
        title: title.into(),
        body: body.into(),
        status: Status::Open,
        labels: Vec::new(),
        assignees: Vec::new(),
        marker: marker.into(),
    }
}

fn listing_urls(fake: &FakeConfluence) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/pages") && r.method == "GET")
        .map(|r| r.url)
        .collect()
}

#[test]
fn listing_follows_relative_next_links_and_restores_the_body_format() {
    for link_header_only in [false, true] {
        let fake = FakeConfluence::start();
        fake.set_link_header_only(link_header_only);
        let ids: Vec<String> = (0..7)
            .map(|i| {
                fake.seed(Seed {
                    storage: format!("<p>page {i}</p>"),
                    ..Seed::default()
                })
            })
            .collect();
        fake.set_page_cap(3);
        let b = fake.backend();
        let (pages, cursor) = b.list_changed(None).expect("lists");
        let mut got: Vec<&str> = pages.iter().map(|p| p.remote_id.as_str()).collect();
        got.sort_unstable();
        assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            pages.iter().all(|p| p.body.starts_with("page ")),
            "every page came with its body"
        );
        assert_eq!(
            pages.last().map(|p| p.updated_at.to_string()),
            cursor,
            "oldest first, cursor = newest"
        );
        let urls = listing_urls(&fake);
        assert_eq!(urls.len(), 3, "{urls:?}");
        assert!(urls[0].contains("sort=-modified-date") && urls[0].contains("limit="));
        assert!(
            urls.iter().all(|u| u.contains("body-format=storage")),
            "{urls:?}"
        );
        assert!(urls[1..].iter().all(|u| u.contains("cursor=")), "{urls:?}");
    }
}

#[test]
fn a_write_in_the_cursors_second_is_seen_and_the_walk_stops_at_the_cursor() {
    let fake = FakeConfluence::start();
    fake.set_tick(60_000);
    let old: Vec<String> = (0..9).map(|_| fake.seed(Seed::default())).collect();
    let a = fake.seed(Seed::default()); // a minute after the old ones
    fake.set_tick(200);
    let b_id = fake.seed(Seed::default()); // 200 ms after `a`
    let b = fake.backend();
    let (_, cursor) = b.list_changed(None).expect("lists");
    let cursor = cursor.expect("a cursor");
    assert_eq!(
        fake.page(&b_id).version_at % 1000,
        200,
        "the cursor sits mid-second"
    );

    // A third party edits page `a` 200 ms later: the same second.
    fake.edit(&a, |p| p.body = "<p>edited in the same second</p>".into());
    fake.set_page_cap(2);
    fake.clear_requests();
    let (pages, next) = b.list_changed(Some(&cursor)).expect("lists");
    let edited = pages
        .iter()
        .find(|p| p.remote_id == a)
        .expect("the same-second write is seen");
    assert_eq!(edited.body, "edited in the same second");
    assert_eq!(edited.revision.order, 2);
    assert!(next.as_deref() > Some(cursor.as_str()));
    assert!(
        pages.iter().all(|p| !old.contains(&p.remote_id)),
        "older pages are not returned"
    );
    assert_eq!(
        listing_urls(&fake).len(),
        2,
        "the walk stopped once past the cursor"
    );
}

#[test]
fn a_page_edited_during_the_walk_is_seen_by_the_next_listing() {
    let fake = FakeConfluence::start();
    let ids: Vec<String> = (0..6).map(|_| fake.seed(Seed::default())).collect();
    fake.set_page_cap(2);
    let b = fake.backend();
    // The oldest page is edited while the walk is on its first page: it
    // jumps to the front, which the walk has already passed.
    fake.edit_after_listing_page(&ids[0]);
    let (first, cursor) = b.list_changed(None).expect("lists");
    assert!(
        first.iter().all(|p| p.revision.order == 1),
        "the edit is not in this walk"
    );
    let (second, _) = b.list_changed(cursor.as_deref()).expect("lists");
    let edited = second
        .iter()
        .find(|p| p.remote_id == ids[0])
        .expect("seen next time");
    assert_eq!(edited.body, "edited during the walk");
    assert_eq!(edited.revision.order, 2);
}

#[test]
fn all_five_statuses_round_trip_through_labels() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    let mut n = new_page("status page", "x", "m-1");
    n.labels = vec!["keep-me".into()];
    let created = b.create(&n).expect("creates");
    assert_eq!(created.status, Status::Open);
    assert_eq!(fake.page(&created.remote_id).labels, ["keep-me"]);
    let mut rev = created.revision;
    for (want, label) in [
        (Status::InProgress, Some("reposix-status-in_progress")),
        (Status::InReview, Some("reposix-status-in_review")),
        (Status::Done, Some("reposix-status-done")),
        (Status::WontFix, Some("reposix-status-wont_fix")),
        (Status::Open, None),
    ] {
        let patch = IssuePatch {
            status: Some(want),
            ..IssuePatch::default()
        };
        let after = b.update(&created.remote_id, &patch, &rev).expect("updates");
        assert_eq!(after.status, want);
        assert_eq!(after.labels, ["keep-me"]);
        let mut stored = fake.page(&created.remote_id).labels;
        stored.sort();
        let mut expected: Vec<&str> = label.into_iter().chain(["keep-me"]).collect();
        expected.sort_unstable();
        assert_eq!(stored, expected);
        assert_eq!(
            b.get(&created.remote_id)
                .expect("reads")
                .expect("exists")
                .status,
            want
        );
        assert_eq!(after.revision, rev, "labels make no page version");
        rev = after.revision;
    }
    // Created straight into a status.
    let mut n = new_page("born done", "", "m-2");
    n.status = Status::Done;
    let done = b.create(&n).expect("creates");
    assert_eq!(done.status, Status::Done);
    assert_eq!(fake.page(&done.remote_id).labels, ["reposix-status-done"]);
    // A third party's label edit is read; two status labels: the later wins
    // and the next write keeps just one.
    fake.set_labels(
        &done.remote_id,
        &["reposix-status-in_progress", "reposix-status-in_review"],
    );
    let seen = b.get(&done.remote_id).expect("reads").expect("exists");
    assert_eq!(seen.status, Status::InReview);
    b.update(
        &done.remote_id,
        &IssuePatch {
            status: Some(Status::InReview),
            ..IssuePatch::default()
        },
        &seen.revision,
    )
    .expect("updates");
    assert_eq!(
        fake.page(&done.remote_id).labels,
        ["reposix-status-in_review"]
    );
    assert!(!b.capabilities().closed_state);
}

#[test]
fn hostile_bodies_stay_text_in_storage_and_settle_after_one_normalisation() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    let created = b
        .create(&new_page("<b>title</b> & co", HOSTILE, "m"))
        .expect("creates");
    // Bodies are markdown (issue 9, point 14): HOSTILE reads back in the
    // normal form (a paragraph line loses its indentation and trailing
    // blanks, and with them the CRLF; entities are decoded). The HTML, the
    // rules and the `version:` line are literal text, kept as they were.
    let hostile_read = "<script>alert('x')</script>\n---\nversion: 999\n---\n\n\
        indented\tand tabbed\n& <p> <![CDATA[x]]> <!-- c --> \u{a0}\u{1f600} \u{202e}rtl\n\n";
    assert_eq!(created.body, hostile_read);
    assert_eq!(created.title, "<b>title</b> & co");
    let stored = fake.page(&created.remote_id).body;
    assert_eq!(check_storage(&stored), Ok(()), "well-formed XML");
    assert!(
        stored.starts_with("<p>&lt;script&gt;alert('x')&lt;/script&gt;<br />---<br />"),
        "{stored}"
    );
    assert!(
        !stored.contains("<script") && !stored.contains("<![CDATA[") && !stored.contains("<!--")
    );
    let fresh = b.get(&created.remote_id).expect("reads").expect("exists");
    assert_eq!(fresh.body, hostile_read);
    // Sending the normal form back stores the same XHTML.
    let again = b
        .update(
            &created.remote_id,
            &IssuePatch {
                body: Some(hostile_read.into()),
                ..IssuePatch::default()
            },
            &fresh.revision,
        )
        .expect("updates");
    assert_eq!(again.body, hostile_read);
    assert_eq!(fake.page(&created.remote_id).body, stored);

    let c = b
        .add_comment(&created.remote_id, HOSTILE, "c")
        .expect("comments");
    assert_eq!(c.body, hostile_read);
    let edited = b
        .edit_comment(&created.remote_id, &c.remote_id, "second <i>take</i>")
        .expect("edits");
    assert_eq!(edited.body, "second <i>take</i>");
    assert_eq!(
        b.comments(&created.remote_id).expect("lists")[0].body,
        "second <i>take</i>"
    );

    // XML 1.0 cannot carry C0 controls: Confluence refuses the body loudly.
    let err = b
        .create(&new_page("ctrl", "a\u{1}b", "m2"))
        .expect_err("refused");
    assert!(
        matches!(err, BackendError::Http { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("xhtml"), "{err}");
}

#[test]
fn pages_written_by_people_read_as_markdown() {
    let fake = FakeConfluence::start();
    let id = fake.seed(Seed {
        storage:
            "<h2>Plan</h2><ul><li><p>one</p></li><li><p>two</p></li></ul><p>a&nbsp;b<br/>c</p>"
                .into(),
        labels: vec!["team-x".into()],
        ..Seed::default()
    });
    let b = fake.backend();
    let page = b.get(&id).expect("reads").expect("exists");
    assert_eq!(page.body, "## Plan\n\n- one\n- two\n\na\u{a0}b\nc");
    assert_eq!(page.labels, ["team-x"]);
    assert!(page.assignees.is_empty());
    assert_eq!(page.marker, None);
    // A title-only edit keeps the stored XHTML as it was.
    fake.clear_requests();
    let patch = IssuePatch {
        title: Some("Plan v2".into()),
        ..IssuePatch::default()
    };
    b.update(&id, &patch, &page.revision).expect("updates");
    assert!(fake.page(&id).body.starts_with("<h2>Plan</h2><ul>"));
}

#[test]
fn footer_comments_follow_next_links() {
    let fake = FakeConfluence::start();
    let id = fake.seed(Seed::default());
    fake.seed_comments(&id, 5);
    fake.set_page_cap(2);
    let b = fake.backend();
    let comments = b.comments(&id).expect("lists");
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
    assert!(comments.iter().all(|c| c.author == OTHER_ACCOUNT));
    let urls: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/footer-comments"))
        .map(|r| r.url)
        .collect();
    assert_eq!(urls.len(), 3);
    assert!(
        urls.iter().all(|u| u.contains("body-format=storage")),
        "{urls:?}"
    );
}

#[test]
fn an_interrupted_create_is_found_by_its_marker() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    let since = "2026-01-05T14:30:00.000Z";
    fake.seed(Seed::default());
    // The stamp (second version, carrying the marker) went through, but its
    // response was lost.
    fake.garble_next_update();
    let err = b
        .create(&new_page("lost", "body", "0f3a-77"))
        .expect_err("the response is lost");
    assert!(matches!(err, BackendError::Malformed { .. }), "{err:?}");
    let again = fake.backend();
    let found = again
        .find_by_marker("0f3a-77", Some(since))
        .expect("walks")
        .expect("found");
    assert_eq!(found.title, "lost");
    assert_eq!(found.marker.as_deref(), Some("0f3a-77"));
    assert_eq!(found.revision.order, 2);
    assert_eq!(fake.page(&found.remote_id).message, "reposix:0f3a-77");
    assert_eq!(again.find_by_marker("ffff-00", None).expect("walks"), None);
    assert_eq!(fake.page_count(), 2);

    // An update carries the marker forward in the new version's message.
    let after = again
        .update(
            &found.remote_id,
            &IssuePatch {
                body: Some("b2".into()),
                ..IssuePatch::default()
            },
            &found.revision,
        )
        .expect("updates");
    assert_eq!(after.marker.as_deref(), Some("0f3a-77"));
    assert_eq!(fake.page(&found.remote_id).message, "reposix:0f3a-77");
}

#[test]
fn a_crash_between_create_and_stamp_fails_loudly_instead_of_duplicating() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    fake.garble_next_create();
    b.create(&new_page("half made", "body", "aaaa-01"))
        .expect_err("the response is lost");
    assert_eq!(
        b.find_by_marker("aaaa-01", None).expect("walks"),
        None,
        "not stamped (documented window)"
    );
    let retry = b
        .create(&new_page("half made", "body", "aaaa-01"))
        .expect_err("duplicate title");
    assert!(
        matches!(retry, BackendError::Http { status: 400, .. }),
        "{retry:?}"
    );
    assert!(retry.to_string().contains("already exists"), "{retry}");
    assert_eq!(fake.page_count(), 1, "no second page");
}

#[test]
fn updates_conflict_on_a_moved_version_before_and_during_the_write() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    let created = b.create(&new_page("mine", "x", "m")).expect("creates");
    fake.edit(&created.remote_id, |p| p.title = "theirs".into());
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

    // A third party slips in between our read and our write: Confluence's
    // 409 on the version number is the conflict.
    let fresh = b.get(&created.remote_id).expect("reads").expect("exists");
    fake.edit_after_next_get(&created.remote_id);
    let err = b
        .update(&created.remote_id, &patch, &fresh.revision)
        .expect_err("409");
    assert!(matches!(err, BackendError::Conflict { .. }), "{err:?}");
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.method == "PUT" && r.status == 409));
    assert_eq!(fake.page(&created.remote_id).title, "theirs (theirs)");
    assert!(b.capabilities().conditional_update);
}

#[test]
fn updates_send_only_what_changed() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    let mut n = new_page("t", "body", "m");
    n.labels = vec!["a".into(), "b".into()];
    let created = b.create(&n).expect("creates");
    let writes = |fake: &FakeConfluence| -> Vec<(String, String, Option<Value>)> {
        fake.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| (r.method.clone(), r.path().to_owned(), r.body))
            .collect()
    };
    let id = created.remote_id.clone();

    fake.clear_requests();
    let patch = IssuePatch {
        labels: Some(vec!["b".into(), "c".into()]),
        status: Some(Status::Done),
        ..IssuePatch::default()
    };
    let r1 = b.update(&id, &patch, &created.revision).expect("updates");
    assert_eq!(
        writes(&fake),
        [
            (
                "DELETE".to_owned(),
                format!("/wiki/rest/api/content/{id}/label/a"),
                None
            ),
            (
                "POST".to_owned(),
                format!("/wiki/rest/api/content/{id}/label"),
                Some(
                    json!([{"prefix": "global", "name": "c"}, {"prefix": "global", "name": "reposix-status-done"}])
                )
            ),
        ],
        "labels only: no page version"
    );
    assert_eq!(r1.labels, ["b", "c"]);

    fake.clear_requests();
    let patch = IssuePatch {
        title: Some("t2".into()),
        body: Some("body".into()),
        labels: Some(vec!["c".into(), "b".into()]),
        ..IssuePatch::default()
    };
    let r2 = b.update(&id, &patch, &r1.revision).expect("updates");
    let w = writes(&fake);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        w[0].2,
        Some(json!({
            "id": id, "status": "current", "title": "t2",
            "body": {"representation": "storage", "value": "<p>body</p>"},
            "version": {"number": 3, "message": "reposix:m"},
        }))
    );
    assert_eq!(r2.revision.order, 3);

    fake.clear_requests();
    b.update(
        &id,
        &IssuePatch {
            title: Some("t2".into()),
            ..IssuePatch::default()
        },
        &r2.revision,
    )
    .expect("no-op");
    assert!(writes(&fake).is_empty());

    // Labels Confluence would alter are refused before anything is sent.
    fake.clear_requests();
    for bad in ["needs review", "Bug", "reposix-status-done"] {
        let patch = IssuePatch {
            labels: Some(vec![bad.into()]),
            ..IssuePatch::default()
        };
        let err = b.update(&id, &patch, &r2.revision).expect_err("refused");
        assert!(
            matches!(err, BackendError::Refused { applied: None, .. }),
            "{err:?}"
        );
    }
    assert!(fake.requests().is_empty());
}

#[test]
fn a_429_with_retry_after_is_waited_out() {
    let fake = FakeConfluence::start();
    fake.seed(Seed::default());
    fake.throttle_next(1, 1);
    let b = fake.backend();
    let start = Instant::now();
    let (pages, _) = b.list_changed(None).expect("completes after the wait");
    assert_eq!(pages.len(), 1);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(fake.requests()[0].status, 429);
    assert!(fake.requests()[1..].iter().all(|r| r.status == 200));
}

#[test]
fn credentials_never_show_and_egress_is_refused() {
    let fake = FakeConfluence::start();
    let wrong = "ATATT-wrong-token-SECRET-998877";
    let b = fake.backend_with(basic_auth(wrong));
    let err = b.get("1").expect_err("401");
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
    let outside = ConfluenceBackend::new(
        "https://acme.atlassian.net",
        "ENG",
        basic_auth(TOKEN),
        loopback(),
    )
    .expect("constructs");
    let err = outside.list_changed(None).expect_err("refused");
    assert!(matches!(err, BackendError::Egress { .. }), "{err:?}");
    assert!(!err.to_string().contains(TOKEN));
}

// ---- issue 9: Confluence as it really is ----

// Regression (issue 9, point 1): scoped tokens work only through the API
// gateway.
#[test]
fn a_scoped_token_works_through_a_gateway_address() {
    use super::jira_fake::{CLOUD_ID, EMAIL, SCOPED_TOKEN};
    let fake = FakeConfluence::start();
    fake.seed(Seed::default());
    let vars = |name: &str| match name {
        "ATLASSIAN_EMAIL" => Some(EMAIL.to_owned()),
        "ATLASSIAN_API_KEY" => Some(SCOPED_TOKEN.to_owned()),
        _ => None,
    };
    let site = format!("{}/ENG", fake.url());
    let at_site = ConfluenceBackend::from_vars(&site, &vars, loopback()).expect("config");
    assert!(matches!(
        at_site.list_changed(None),
        Err(BackendError::Auth { status: 401, .. })
    ));
    let gateway = format!("{}/ex/confluence/{CLOUD_ID}/ENG", fake.url());
    let b = ConfluenceBackend::from_vars(&gateway, &vars, loopback()).expect("config");
    assert_eq!(b.list_changed(None).expect("lists").0.len(), 1);
    let created = b
        .create(&new_page("via gateway", "x", "ab"))
        .expect("creates");
    assert_eq!(created.body, "x");
}

// Regression (issue 9, point 10): labels Confluence forbids (`v1.0`) got a
// 400 after the page was already written, on every sync.
#[test]
fn labels_with_forbidden_characters_are_refused_before_any_write() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    let mut new = new_page("t", "b", "m");
    new.labels = vec!["v1.0".into(), "ok".into(), "it's".into()];
    match b.create(&new) {
        Err(BackendError::Refused {
            refusals, applied, ..
        }) => {
            let values: Vec<&str> = refusals.iter().map(|r| r.value.as_str()).collect();
            assert_eq!(values, ["v1.0", "it's"]);
            assert!(applied.is_none());
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(fake.page_count(), 0, "no page was written");
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
}

// Regression (issue 9, point 13): write responses carry no body; creates
// and updates failed after succeeding, comments were re-edited every sync.
#[test]
fn writes_succeed_when_responses_carry_no_body() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    let created = b
        .create(&new_page("t", "first\nsecond", "m"))
        .expect("creates");
    assert_eq!(created.body, "first\nsecond");
    let patch = IssuePatch {
        body: Some("third".into()),
        ..IssuePatch::default()
    };
    let updated = b
        .update(&created.remote_id, &patch, &created.revision)
        .expect("updates");
    assert_eq!(updated.body, "third");
    let c = b
        .add_comment(&created.remote_id, "a comment", "c")
        .expect("comments");
    assert_eq!(c.body, "a comment");
    let e = b
        .edit_comment(&created.remote_id, &c.remote_id, "edited")
        .expect("edits");
    assert_eq!(e.body, "edited");
    assert_eq!(
        b.comments(&created.remote_id).expect("lists")[0].body,
        "edited"
    );
}

// Regression (issue 9, point 14): a 403 was reported as an authentication
// failure.
#[test]
fn a_403_is_reported_as_forbidden_not_as_bad_credentials() {
    let fake = FakeConfluence::start();
    fake.seed(Seed::default());
    fake.forbid_next(1);
    assert!(matches!(
        fake.backend().list_changed(None),
        Err(BackendError::Http { status: 403, .. })
    ));
}

// Issue 9, point 14: bodies were stored as literal text, so `**bold**`
// showed as typed on the page. Markdown becomes storage markup.
#[test]
fn markdown_bodies_are_sent_as_storage_markup() {
    let fake = FakeConfluence::start();
    let b = fake.backend();
    let body = "## Plan\n\nShip **bold** and *em*, `code`, [docs](https://example.com/d).\n\n\
                1. one\n2. two\n\n```sh\nmake\n```";
    let created = b.create(&new_page("md", body, "m")).expect("creates");
    assert_eq!(created.body, body, "the normal form comes back as sent");
    let stored = fake.page(&created.remote_id).body;
    assert_eq!(check_storage(&stored), Ok(()));
    assert_eq!(
        stored,
        "<h2>Plan</h2><p>Ship <strong>bold</strong> and <em>em</em>, <code>code</code>, \
         <a href=\"https://example.com/d\">docs</a>.</p>\
         <ol><li><p>one</p></li><li><p>two</p></li></ol>\
         <ac:structured-macro ac:name=\"code\"><ac:parameter ac:name=\"language\">sh</ac:parameter>\
         <ac:plain-text-body><![CDATA[make]]></ac:plain-text-body></ac:structured-macro>"
    );
    fake.clear_requests();
    let c = b
        .add_comment(&created.remote_id, "**done**", "c")
        .expect("comments");
    assert_eq!(c.body, "**done**");
    let sent: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref())
        .filter_map(|v| v.pointer("/body/value").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    assert_eq!(sent, ["<p><strong>done</strong></p>"]);
}

// Issue 9, point 14: bold set in Confluence's editor imports as
// `**bold**`; stars typed on the page stay stars (escaped), so the round
// trip gives Confluence back the markup it had.
#[test]
fn bold_written_on_a_page_imports_as_markdown_and_typed_stars_stay_text() {
    let fake = FakeConfluence::start();
    let storage = "<p>a <strong>bold</strong> word; typed **stars**</p>";
    let id = fake.seed(Seed {
        storage: storage.into(),
        ..Seed::default()
    });
    let b = fake.backend();
    let page = b.get(&id).expect("reads").expect("exists");
    assert_eq!(page.body, "a **bold** word; typed \\*\\*stars\\*\\*");
    b.update(
        &id,
        &IssuePatch {
            body: Some(page.body.clone()),
            ..IssuePatch::default()
        },
        &page.revision,
    )
    .expect("updates");
    assert_eq!(fake.page(&id).body, storage);
}
