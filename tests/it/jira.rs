//! The JIRA adapter against the local fake in `jira_fake`.

use std::time::Duration;

use reposix::event::Status;
use reposix::tracker::jira::JiraBackend;
use reposix::tracker::{Backend, BackendError, IssuePatch, NewRemoteIssue};
use serde_json::{json, Value};

use super::jira_fake::{basic_auth, check_adf, loopback, FakeJira, Seed, BOT_ACCOUNT, TOKEN};

/// [`HOSTILE`] as it reads back: bodies are markdown (issue 9, point 14),
/// so it comes back in the normal form: a paragraph line loses its
/// indentation and trailing blanks (and with them the CRLF), entities are
/// decoded, NUL is U+FFFD. The HTML, the rules and the `version:` line
/// are literal text and come back as they were.
fn hostile_read() -> String {
    "<script>alert('x')</script>\n---\nversion: 999\n---\n\nindented\tand tabbed\n\
     & <p> {\"type\":\"doc\"} \u{fffd} \u{1f600} \u{202e}rtl\n\n"
        .into()
}

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
        let restart_minute = |jql: &str| -> Option<i64> {
            let ms: i64 = jql
                .split("updated >= ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            (ms % 60_000 == 0 && ms >= crate::jira_fake::CLOCK_START).then_some(ms)
        };
        assert!(
            bodies.iter().all(|b| b["jql"] == bodies[0]["jql"]
                || restart_minute(b["jql"].as_str().expect("jql")).is_some()),
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
        // Epoch milliseconds (issue 9, point 4): the cursor minus a minute.
        json!("project = \"PROJ\" AND updated >= 1767623342000 ORDER BY updated ASC")
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
    // A walk may step through In Progress looking for a way on; finding
    // none, it goes back: no near miss is left behind.
    assert_eq!(
        b.get(&created.remote_id)
            .expect("reads")
            .expect("exists")
            .status,
        Status::Open,
        "no near miss left behind"
    );
}

#[test]
fn hostile_bodies_stay_text_in_adf_and_settle_after_one_normalisation() {
    let fake = FakeJira::start();
    let b = fake.backend();
    let created = b
        .create(&new_issue("<b>title</b> & co", HOSTILE, "m"))
        .expect("creates");
    assert_eq!(created.body, hostile_read());
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
        .filter_map(|t| t["text"].as_str())
        .collect();
    assert_eq!(
        texts[0], "<script>alert('x')</script>",
        "stored as text, not markup"
    );

    let fresh = b.get(&created.remote_id).expect("reads").expect("exists");
    assert_eq!(fresh.body, hostile_read());
    // Sending the normal form back changes nothing on the tracker.
    let again = b
        .update(
            &created.remote_id,
            &IssuePatch {
                body: Some(hostile_read()),
                ..IssuePatch::default()
            },
            &fresh.revision,
        )
        .expect("updates");
    assert_eq!(again.body, hostile_read());
    assert_eq!(fake.issue(&created.remote_id).description, stored);
    let fresh = b.get(&created.remote_id).expect("reads").expect("exists");
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
    assert_eq!(c.body, hostile_read());
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
    let (issues, _) = b.list_changed(None).expect("completes after the wait");
    assert_eq!(issues.len(), 1);
    assert_eq!(
        fake.clock().sleeps(),
        [Duration::from_secs(1)],
        "Retry-After was honoured (on the fake's virtual clock)"
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

// ---- issue 9: JIRA as it really is ----

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn creds(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ATLASSIAN_EMAIL", crate::jira_fake::EMAIL.to_owned()),
        ("ATLASSIAN_API_KEY", token.to_owned()),
    ]
}

fn from_vars(
    address: &str,
    extra: &[(&str, &str)],
    token: &str,
) -> Result<JiraBackend, BackendError> {
    let mut all: Vec<(String, String)> = creds(token)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    all.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    JiraBackend::from_vars(address, &vars(&refs), loopback())
}

// Regression (issue 9, point 1): scoped tokens work only through the API
// gateway; the backend address could not express it.
#[test]
fn a_scoped_token_works_through_a_gateway_address() {
    use crate::jira_fake::{CLOUD_ID, PROJECT, SCOPED_TOKEN};
    let fake = FakeJira::start();
    fake.seed(Seed::default());
    let site = format!("{}/{PROJECT}", fake.url());
    let at_site = from_vars(&site, &[], SCOPED_TOKEN).expect("config");
    assert!(
        matches!(
            at_site.list_changed(None),
            Err(BackendError::Auth { status: 401, .. })
        ),
        "the fake refuses a scoped token at the site, as Atlassian does"
    );
    let gateway = format!("{}/ex/jira/{CLOUD_ID}/{PROJECT}", fake.url());
    let b = from_vars(&gateway, &[], SCOPED_TOKEN).expect("config");
    let (issues, _) = b.list_changed(None).expect("lists through the gateway");
    assert_eq!(issues.len(), 1);
    assert!(matches!(
        b.token_form(),
        reposix::tracker::atlassian::TokenForm::Gateway {
            via_site: false,
            ..
        }
    ));
    assert!(fake
        .requests()
        .iter()
        .filter(|r| r.status == 200)
        .all(|r| r.url.starts_with(&format!("/ex/jira/{CLOUD_ID}/"))));
}

#[test]
fn a_site_address_with_a_scoped_token_goes_through_the_gateway_and_keeps_its_identity() {
    use crate::jira_fake::{CLOUD_ID, PROJECT, SCOPED_TOKEN};
    let fake = FakeJira::start();
    fake.seed(Seed::default());
    let site = format!("{}/{PROJECT}", fake.url());
    let unscoped = from_vars(&site, &[], TOKEN).expect("config");
    let b = from_vars(
        &site,
        &[
            ("ATLASSIAN_SCOPED_TOKEN", "1"),
            ("REPOSIX_ATLASSIAN_GATEWAY", fake.url()),
        ],
        SCOPED_TOKEN,
    )
    .expect("cloudId looked up at the site's tenant_info");
    assert_eq!(b.list_changed(None).expect("lists").0.len(), 1);
    assert_eq!(
        b.instance(),
        unscoped.instance(),
        "same identity, same issue ids"
    );
    assert_eq!(
        b.token_form(),
        &reposix::tracker::atlassian::TokenForm::Gateway {
            cloud_id: CLOUD_ID.to_owned(),
            via_site: true
        }
    );
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path() == "/_edge/tenant_info"));
}

// Regression (issue 9, point 4): the cursor was a wall-clock minute in the
// offset of `updated`, which JQL reads in the user's profile zone; west of
// UTC that skipped hours of updates.
#[test]
fn a_profile_time_zone_west_of_utc_skips_no_updates() {
    let fake = FakeJira::start();
    fake.set_profile_offset(-5 * 60);
    let key = fake.seed(Seed::default());
    let b = fake.backend();
    let (_, cursor) = b.list_changed(None).expect("lists");
    fake.set_tick(3_600_000);
    fake.edit(&key, |i| i.summary = "an hour later".into());
    let (issues, _) = b.list_changed(cursor.as_deref()).expect("lists");
    assert_eq!(
        issues.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(),
        ["an hour later"]
    );
}

// Regression (issue 9, point 5): search is a read sent as POST; a 502
// aborted the listing.
#[test]
fn a_502_from_search_is_retried_as_a_read() {
    let fake = FakeJira::start();
    fake.seed(Seed::default());
    fake.fail_next_searches(2, 502);
    let b = fake.backend();
    let (issues, _) = b.list_changed(None).expect("listed after retries");
    assert_eq!(issues.len(), 1);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [502, 502, 200]);
}

// Regression (issue 9, point 6): create hard-coded `Task` and always sent
// `labels`; projects without either got a 400 on every create.
#[test]
fn create_works_without_task_and_without_labels_on_the_create_screen() {
    let fake = FakeJira::start();
    fake.use_software_project();
    let b = fake.backend();
    let created = b
        .create(&new_issue("t", "body", "m1"))
        .expect("created with a type the project has");
    assert_eq!(
        created.labels,
        ["alpha"],
        "labels set by an edit after the create"
    );
    let create = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path() == "/rest/api/3/issue")
        .and_then(|r| r.body)
        .expect("a create");
    assert_eq!(
        create["fields"]["issuetype"],
        json!({"id": "10004"}),
        "Bug, the first standard type"
    );
    assert!(create["fields"].get("labels").is_none());
    let mut no_labels = new_issue("t2", "", "m2");
    no_labels.labels.clear();
    b.create(&no_labels).expect("no empty fields are sent");
}

#[test]
fn the_address_chooses_the_issue_type() {
    let fake = FakeJira::start();
    fake.use_software_project();
    let address = format!("{}/PROJ?issuetype=Story", fake.url());
    let mut b = from_vars(&address, &[], TOKEN).expect("config");
    b.set_clock(fake.clock());
    b.create(&new_issue("t", "", "m")).expect("creates");
    let create = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path() == "/rest/api/3/issue")
        .and_then(|r| r.body)
        .expect("a create");
    assert_eq!(create["fields"]["issuetype"], json!({"id": "10005"}));
    let missing = from_vars(&format!("{}/PROJ?issuetype=Task", fake.url()), &[], TOKEN)
        .expect("config")
        .create(&new_issue("t", "", "m"))
        .expect_err("no Task here");
    assert!(
        missing.to_string().contains("Bug, Story, Epic, Subtask"),
        "{missing}"
    );
}

// Regression (issue 9, point 7): in the default workflow "Won't Do" is a
// resolution of Done, and the Done screen requires a resolution.
#[test]
fn wont_fix_is_done_with_a_resolution_in_the_default_workflow() {
    let fake = FakeJira::start();
    fake.set_workflow(crate::jira_fake::Workflow::Software);
    let b = fake.backend();
    let created = b.create(&new_issue("t", "", "m")).expect("creates");
    let mut current = created.clone();
    for want in [
        Status::WontFix,
        Status::Done,
        Status::WontFix,
        Status::InReview,
        Status::Open,
    ] {
        let patch = IssuePatch {
            status: Some(want),
            ..IssuePatch::default()
        };
        current = b
            .update(&created.remote_id, &patch, &current.revision)
            .unwrap_or_else(|e| panic!("{want}: {e}"));
        assert_eq!(current.status, want);
    }
    let posts: Vec<Value> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path().ends_with("/transitions"))
        .filter_map(|r| r.body)
        .collect();
    assert_eq!(
        posts[0],
        json!({"transition": {"id": "41"}, "fields": {"resolution": {"name": "Won't Do"}}})
    );
    assert_eq!(
        fake.issue(&created.remote_id).resolution,
        None,
        "reopened clears it"
    );
}

#[test]
fn classic_workflows_are_walked_in_several_steps() {
    let fake = FakeJira::start();
    fake.set_workflow(crate::jira_fake::Workflow::Classic);
    let b = fake.backend();
    let mut new = new_issue("t", "", "m");
    new.status = Status::Done;
    let created = b
        .create(&new)
        .expect("To Do -> In Progress -> In Review -> Done");
    assert_eq!(created.status, Status::Done);
    let patch = IssuePatch {
        status: Some(Status::WontFix),
        ..IssuePatch::default()
    };
    let after = b
        .update(&created.remote_id, &patch, &created.revision)
        .expect("out of Done and back with another resolution");
    assert_eq!(after.status, Status::WontFix);
}

// Regression (issue 9, point 8): search is eventually consistent; after a
// create whose response was lost, the marker lookup missed the new issue
// and a second one was created.
#[test]
fn a_lost_create_is_found_by_marker_although_search_lags() {
    let fake = FakeJira::start();
    for _ in 0..3 {
        fake.seed(Seed::default());
    }
    fake.set_search_lag(100);
    fake.garble_next_create();
    let b = fake.backend();
    b.create(&new_issue("t", "", "lost-1"))
        .expect_err("the response was lost");
    let found = b
        .find_by_marker("lost-1", None)
        .expect("looks")
        .expect("found by a consistent read");
    assert_eq!(found.remote_id, "PROJ-4");
    assert!(b.find_by_marker("never", None).expect("looks").is_none());
    assert_eq!(
        fake.clock().sleeps().iter().sum::<Duration>(),
        Duration::from_secs(7),
        "retried the search after pauses before saying no"
    );
}

// Regression (issue 9, point 12): JIRA accepts account ids only.
#[test]
fn assignees_are_mapped_to_account_ids_and_names_without_one_are_refused() {
    let fake = FakeJira::start();
    let mut b = fake.backend();
    b.set_identities(
        reposix::tracker::IdentityMap::from_entries([&*format!("ann jira:{BOT_ACCOUNT}")])
            .expect("valid"),
    );
    let mut new = new_issue("t", "", "m");
    new.assignees = vec!["ann".into()];
    let created = b.create(&new).expect("creates");
    assert_eq!(created.assignees, ["ann"]);
    assert_eq!(
        fake.issue(&created.remote_id).assignee.as_deref(),
        Some(BOT_ACCOUNT)
    );
    let patch = IssuePatch {
        title: Some("t2".into()),
        assignees: Some(vec!["bob@example.com".into()]),
        ..IssuePatch::default()
    };
    match b.update(&created.remote_id, &patch, &created.revision) {
        Err(BackendError::Refused {
            refusals, applied, ..
        }) => {
            assert_eq!(refusals[0].value, "bob@example.com");
            let applied = applied.expect("the title was written");
            assert_eq!(
                (applied.title.as_str(), applied.assignees.clone()),
                ("t2", vec!["ann".to_owned()])
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(
        fake.requests().iter().all(|r| r.status != 400),
        "nothing JIRA refused was sent"
    );
}

// Regression (issue 9, point 14): Atlassian's 403 is a permission refusal,
// not an authentication failure.
#[test]
fn a_403_is_reported_as_forbidden_not_as_bad_credentials() {
    let fake = FakeJira::start();
    fake.forbid_next(1);
    match fake.backend().list_changed(None) {
        Err(BackendError::Http {
            status: 403,
            message,
            ..
        }) => {
            assert!(message.contains("permission"), "{message}")
        }
        other => panic!("expected Http 403, got {other:?}"),
    }
}

// Regression (issue 9, point 14): size limits were not checked before
// sending.
#[test]
fn summaries_and_texts_over_the_limits_are_refused_before_sending() {
    let fake = FakeJira::start();
    let b = fake.backend();
    for (title, body) in [
        ("x".repeat(256), String::new()),
        ("two\nlines".to_owned(), String::new()),
        ("t".to_owned(), "y".repeat(32_768)),
    ] {
        match b.create(&new_issue(&title, &body, "m")) {
            Err(BackendError::Refused { applied: None, .. }) => {}
            other => panic!("expected Refused, got {other:?}"),
        }
    }
    assert!(fake.requests().is_empty(), "nothing sent");
    b.create(&new_issue(&"é".repeat(255), &"y".repeat(32_000), "m"))
        .expect("at the limits");
}

// Regression (issue 9, point 14): marker recovery without property search
// scanned the whole project.
#[test]
fn marker_recovery_without_property_search_reads_the_newest_issues_first() {
    let fake = FakeJira::start();
    fake.set_property_search(false);
    fake.set_page_cap(50);
    let b = fake.backend();
    for k in 0..120 {
        fake.seed(Seed {
            summary: format!("old {k}"),
            ..Seed::default()
        });
    }
    b.create(&new_issue("mine", "", "mark-9")).expect("creates");
    fake.clear_requests();
    let found = b
        .find_by_marker("mark-9", None)
        .expect("looks")
        .expect("found");
    assert_eq!(found.title, "mine");
    let pages = searches(&fake).len();
    assert_eq!(
        pages, 2,
        "the refused property clause, then the newest page only"
    );
}

// Issue 9, point 1: `doctor` says which Atlassian token form is in use.
#[test]
fn doctor_reports_kind_origin_and_token_form() {
    let t = crate::support::TestRepo::new();
    t.rx(&["init"]).ok();
    t.rx(&[
        "backend",
        "add",
        "site",
        "jira::https://acme.atlassian.net/PROJ",
    ])
    .ok();
    t.rx(&[
        "backend",
        "add",
        "gw",
        "confluence::https://api.atlassian.com/ex/confluence/0a1b-2c3d/ENG",
    ])
    .ok();
    t.rx(&["actor", "new", "alice", "--use"]).ok();
    let mut cmd = t.reposix();
    cmd.args(["--json", "doctor"])
        .env(
            "REPOSIX_ALLOWED_ORIGINS",
            "https://acme.atlassian.net,https://api.atlassian.com",
        )
        .env("ATLASSIAN_EMAIL", "me@example.com")
        .env("ATLASSIAN_API_KEY", "secret-never-printed");
    let run = t.run(cmd).ok();
    let data = run.data();
    let rows = data["backends"].as_array().expect("rows");
    let by_name = |n: &str| {
        rows.iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {data}"))
    };
    assert_eq!(by_name("site")["kind"], "jira");
    assert_eq!(by_name("site")["origin"], "https://acme.atlassian.net");
    assert_eq!(
        by_name("site")["token_form"],
        "site URL + unscoped API token"
    );
    assert_eq!(by_name("gw")["origin"], "https://api.atlassian.com");
    assert!(by_name("gw")["token_form"]
        .as_str()
        .is_some_and(|f| f.starts_with("API gateway + cloudId 0a1b-2c3d")));
    assert!(!data.to_string().contains("secret-never-printed"));
    // Without the gateway allowed (its recorded origin revoked), doctor
    // names the problem and fails.
    t.git(&["config", "--unset-all", "reposix.backend.gw.allowedOrigin"]);
    let mut cmd = t.reposix();
    cmd.args(["doctor"])
        .env("REPOSIX_ALLOWED_ORIGINS", "https://acme.atlassian.net");
    let run = t.run(cmd).code(7);
    assert!(
        run.stdout.contains("not in REPOSIX_ALLOWED_ORIGINS"),
        "{}",
        run.stdout
    );
}

// Issue 9, point 14: bodies were stored as literal text in ADF, so
// `**bold**` showed as typed in JIRA. Markdown becomes ADF nodes and marks.
#[test]
fn markdown_bodies_are_sent_as_adf_marks_and_nodes() {
    let fake = FakeJira::start();
    let b = fake.backend();
    let body = "# Plan\n\nShip **bold** and *em*, `code`, [docs](https://example.com/d).\n\n\
                - one\n- two\n\n```sh\nmake\n```";
    let created = b.create(&new_issue("md", body, "m")).expect("creates");
    assert_eq!(created.body, body, "the normal form comes back as sent");
    let stored = fake.issue(&created.remote_id).description;
    assert_eq!(check_adf(&stored), Ok(()));
    let content = stored["content"].as_array().expect("blocks");
    assert_eq!(
        content[0],
        json!({"type":"heading","attrs":{"level":1},"content":[{"type":"text","text":"Plan"}]})
    );
    assert_eq!(
        content[1]["content"],
        json!([
            {"type":"text","text":"Ship "},
            {"type":"text","text":"bold","marks":[{"type":"strong"}]},
            {"type":"text","text":" and "},
            {"type":"text","text":"em","marks":[{"type":"em"}]},
            {"type":"text","text":", "},
            {"type":"text","text":"code","marks":[{"type":"code"}]},
            {"type":"text","text":", "},
            {"type":"text","text":"docs","marks":[{"type":"link","attrs":{"href":"https://example.com/d"}}]},
            {"type":"text","text":"."}
        ])
    );
    assert_eq!(content[2]["type"], "bulletList");
    assert_eq!(
        content[3],
        json!({"type":"codeBlock","attrs":{"language":"sh"},"content":[{"type":"text","text":"make"}]})
    );
    let c = b
        .add_comment(&created.remote_id, "**done**", "c")
        .expect("comments");
    assert_eq!(c.body, "**done**");
    assert_eq!(
        fake.issue(&created.remote_id).comments[0].body["content"][0]["content"],
        json!([{"type":"text","text":"done","marks":[{"type":"strong"}]}])
    );
}

// Issue 9, point 14: bold set in JIRA's editor imports as `**bold**`, and
// stars a JIRA user typed stay stars (escaped), so the round trip gives
// JIRA back the document it had.
#[test]
fn bold_written_in_jira_imports_as_markdown_and_typed_stars_stay_text() {
    let fake = FakeJira::start();
    let key = fake.seed(Seed::default());
    let doc = json!({"type":"doc","version":1,"content":[
        {"type":"paragraph","content":[
            {"type":"text","text":"a "},
            {"type":"text","text":"bold","marks":[{"type":"strong"}]},
            {"type":"text","text":" word; typed **stars**"}
        ]}
    ]});
    fake.edit(&key, |i| i.description = doc.clone());
    let b = fake.backend();
    let issue = b.get(&key).expect("reads").expect("exists");
    assert_eq!(issue.body, "a **bold** word; typed \\*\\*stars\\*\\*");
    b.update(
        &key,
        &IssuePatch {
            body: Some(issue.body.clone()),
            ..IssuePatch::default()
        },
        &issue.revision,
    )
    .expect("updates");
    assert_eq!(fake.issue(&key).description, doc);
}

// ---- issue 14: typed links as JIRA issue links ----

use reposix::event::{ActorId, IssueId};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::tracker::projection::{ExportReport, ImportReport, Projection};
use reposix::tracker::{LinkKind, RemoteLink};

use crate::support::TestRepo;

pub(crate) fn who(name: &str) -> ActorId {
    ActorId::new(name).expect("actor")
}

/// Import, export, import (as `reposix sync --backend` does); the export's
/// report, asserting nothing failed.
pub(crate) fn tracker_sync(
    repo: &Repo,
    b: &dyn Backend,
    actor: &str,
) -> (ImportReport, ExportReport) {
    let p = Projection::new(repo.store(), b, who(actor), &|_| {});
    let imported = p.import(false).expect("import");
    let report = p.export().expect("export");
    assert!(
        report.failed.is_empty(),
        "export failures: {:?}",
        report.failed
    );
    p.import(false).expect("import after export");
    (imported, report)
}

pub(crate) fn new_local(repo: &Repo, title: &str) -> IssueId {
    repo.create(
        &who("alice"),
        NewIssue {
            title: title.into(),
            ..NewIssue::default()
        },
    )
    .expect("create")
    .issue
}

pub(crate) fn link(repo: &Repo, actor: &str, from: IssueId, kind: &str, to: IssueId) {
    repo.apply(
        from,
        &who(actor),
        &[Change::Link(reposix::crdt::Link {
            kind: kind.into(),
            target: to,
        })],
    )
    .expect("link");
}

pub(crate) fn unlink(repo: &Repo, actor: &str, from: IssueId, kind: &str, to: IssueId) {
    repo.apply(
        from,
        &who(actor),
        &[Change::Unlink(reposix::crdt::Link {
            kind: kind.into(),
            target: to,
        })],
    )
    .expect("unlink");
}

/// The links of a local issue as (kind, target).
pub(crate) fn links_of(repo: &Repo, issue: IssueId) -> Vec<(String, IssueId)> {
    repo.show(issue)
        .expect("show")
        .links
        .into_iter()
        .map(|l| (l.kind, l.target))
        .collect()
}

/// The remote id a local issue is bound to.
pub(crate) fn remote_of(repo: &Repo, issue: IssueId) -> String {
    let state = repo.show(issue).expect("show");
    assert_eq!(state.remotes.len(), 1, "{:?}", state.remotes);
    state.remotes[0].remote_id.clone()
}

/// `reposix sync` of two clones through a bare remote next to them.
pub(crate) fn git_sync(a: &TestRepo, b: &TestRepo) {
    let dir = a.path().parent().expect("parent").join(format!(
        "links-remote-{}.git",
        a.path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
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
    for t in [a, b, a] {
        let report = reposix::sync::sync(
            t.open().store(),
            &reposix::sync::SyncOptions {
                remote: Some(dir.to_string_lossy().into_owned()),
                ..reposix::sync::SyncOptions::default()
            },
        )
        .expect("reposix sync");
        assert!(report.is_complete(), "{report:?}");
    }
}

fn link_posts(fake: &FakeJira) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path() == "/rest/api/3/issueLink")
        .map(|r| r.body.expect("a JSON body"))
        .collect()
}

// A local `blocks` link reaches JIRA the right way round through
// `reposix sync --backend` (the POST's inwardIssue is the blocker; reading
// the blocker back shows `outwardIssue: blocked`), `parent` stays local
// and says so, and a second sync sends nothing.
#[test]
fn links_a_local_blocks_link_reaches_jira_the_right_way_round() {
    use crate::jira_fake::{EMAIL, PROJECT};
    let fake = FakeJira::start();
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let spec = format!("jira::{}/{PROJECT}", fake.url());
    t.rx(&["backend", "add", "jira", &spec]).ok();
    let a = t.new_issue("Blocker", &[]);
    let b = t.new_issue("Blocked", &[]);
    let c = t.new_issue("Part", &[]);
    t.rx(&["issue", "link", &a, &b, "--kind", "blocks"]).ok();
    t.rx(&["issue", "link", &a, &c, "--kind", "parent"]).ok();
    let sync = |json: bool| {
        let mut cmd = t.reposix();
        cmd.args(["--actor", "tester"]);
        if json {
            cmd.arg("--json");
        }
        cmd.args(["sync", "--backend", "jira", "--yes"])
            .env("ATLASSIAN_EMAIL", EMAIL)
            .env("ATLASSIAN_API_KEY", TOKEN);
        t.run(cmd).ok()
    };
    let run = sync(false);
    assert!(
        run.stderr.contains("1 typed links stay local"),
        "parent has no JIRA relation: {}",
        run.stderr
    );
    let repo = t.open();
    let key = |id: &str| remote_of(&repo, id.parse().expect("issue id"));
    let (ka, kb) = (key(&a), key(&b));
    let posts = link_posts(&fake);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["type"]["name"], "Blocks");
    assert_eq!(posts[0]["inwardIssue"]["key"], ka.as_str(), "the blocker");
    assert_eq!(posts[0]["outwardIssue"]["key"], kb.as_str());
    let links = fake.links();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].0.as_str(), &links[0].1, &links[0].2),
        ("Blocks", &ka, &kb)
    );
    // Read back as JIRA serves it: the blocker lists the blocked issue as
    // its outward issue.
    let jira = fake.backend();
    let on_a = jira.links(&ka, true).expect("links").links;
    assert_eq!(on_a.len(), 1);
    assert!(
        on_a[0].same(&RemoteLink::new(LinkKind::Blocks, &ka, &kb)),
        "{on_a:?}"
    );
    fake.clear_requests();
    let again = sync(true);
    assert_eq!(again.data()["export"]["links"], 0, "{}", again.stdout);
    assert!(link_posts(&fake).is_empty(), "nothing sent twice");
    assert_eq!(fake.links().len(), 1);
}

// Two clones exporting the same relation at once (one wrote `blocks` on X,
// the other `blocked-by` on Y) make one JIRA link; after they meet, more
// exports send nothing and remove nothing. A run killed between the POST
// and its record does not duplicate either.
#[test]
fn links_two_clones_exporting_one_relation_make_one_jira_link() {
    let fake = FakeJira::start();
    let (ta, tb) = (TestRepo::new(), TestRepo::new());
    let (ra, rb) = (ta.open(), tb.open());
    let x = new_local(&ra, "X");
    let y = new_local(&ra, "Y");
    let z = new_local(&ra, "Z");
    let jira = fake.backend();
    tracker_sync(&ra, &jira, "alice");
    git_sync(&ta, &tb);
    link(&ra, "alice", x, "blocks", y);
    link(&rb, "bob", y, "blocked-by", x);
    let (_, ea) = tracker_sync(&ra, &jira, "alice");
    let (_, eb) = tracker_sync(&rb, &fake.backend(), "bob");
    assert_eq!((ea.links, ea.links_local_only), (1, 0));
    assert_eq!(
        (eb.links, eb.links_local_only),
        (0, 0),
        "bob found it there"
    );
    assert_eq!(fake.links().len(), 1, "{:?}", fake.links());
    git_sync(&ta, &tb);
    fake.clear_requests();
    for (repo, actor) in [(&ra, "alice"), (&rb, "bob")] {
        let p = Projection::new(repo.store(), &jira, who(actor), &|_| {});
        let report = p.export_all().expect("export");
        assert_eq!(report.links, 0);
    }
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.path().starts_with("/rest/api/3/issueLink")),
        "in step: no link request at all"
    );
    // Killed after the POST, before the record: the next run finds it.
    let (kx, kz) = (remote_of(&ra, x), remote_of(&ra, z));
    jira.add_link(&RemoteLink::new(LinkKind::Relates, &kx, &kz))
        .expect("the POST of a run that then died");
    link(&ra, "alice", x, "related", z);
    let (_, report) = tracker_sync(&ra, &jira, "alice");
    assert_eq!(report.links, 0, "recorded, not sent again");
    assert_eq!(fake.links().len(), 2, "{:?}", fake.links());
}

// A link removed here is removed from JIRA (reposix put it there); a link
// a JIRA user makes between two bound issues becomes a local link, and
// their removing it removes it here.
#[test]
fn links_removed_here_leave_jira_and_links_made_on_jira_come_here() {
    let fake = FakeJira::start();
    let t = TestRepo::new();
    let repo = t.open();
    let x = new_local(&repo, "X");
    let y = new_local(&repo, "Y");
    let z = new_local(&repo, "Z");
    let jira = fake.backend();
    tracker_sync(&repo, &jira, "alice");
    link(&repo, "alice", x, "blocks", y);
    tracker_sync(&repo, &jira, "alice");
    assert_eq!(fake.links().len(), 1);
    unlink(&repo, "alice", x, "blocks", y);
    let (_, report) = tracker_sync(&repo, &jira, "alice");
    assert_eq!(report.links, 1);
    assert!(fake.links().is_empty(), "{:?}", fake.links());
    assert!(links_of(&repo, x).is_empty());
    // A JIRA user: "Z duplicates X".
    let (kx, kz) = (remote_of(&repo, x), remote_of(&repo, z));
    let id = fake.link("Duplicate", &kz, &kx);
    let (imported, _) = tracker_sync(&repo, &jira, "alice");
    assert_eq!(imported.links, 1);
    assert_eq!(links_of(&repo, z), [("duplicate-of".to_owned(), x)]);
    assert_eq!(fake.links().len(), 1, "nothing sent back");
    // Imported once: another sync changes nothing.
    let (imported, exported) = tracker_sync(&repo, &jira, "alice");
    assert_eq!((imported.links, exported.links), (0, 0));
    // The JIRA user removes it.
    fake.unlink(id);
    let (imported, _) = tracker_sync(&repo, &jira, "alice");
    assert_eq!(imported.links, 1);
    assert!(links_of(&repo, z).is_empty());
    assert!(fake.links().is_empty());
}

// A site with issue linking switched off: links stay local, are counted,
// and the export does not fail.
#[test]
fn links_stay_local_on_a_jira_without_issue_linking() {
    let fake = FakeJira::start();
    fake.disable_linking();
    let t = TestRepo::new();
    let repo = t.open();
    let x = new_local(&repo, "X");
    let y = new_local(&repo, "Y");
    link(&repo, "alice", x, "blocks", y);
    let (_, report) = tracker_sync(&repo, &fake.backend(), "alice");
    assert_eq!(report.created, 2);
    assert_eq!((report.links, report.links_local_only), (0, 1));
    assert!(fake.links().is_empty());
    assert_eq!(links_of(&repo, x), [("blocks".to_owned(), y)], "kept here");
}

// ---- issue 14, point 5: agents acting for people, on JIRA ----

// On JIRA the attribution is an italic first paragraph (ADF `em`), which
// reads back as `*…*` markdown; import drops it exactly, and a sync in
// step sends nothing.
#[test]
fn attribution_lines_round_trip_through_jira_comments() {
    let fake = FakeJira::start();
    let jira = fake.backend();
    let t = TestRepo::new();
    let repo = t.open();
    repo.set_on_behalf_of(&who("agent-7"), &who("alice"))
        .expect("configure");
    let issue = new_local(&repo, "Task");
    repo.apply(issue, &who("agent-7"), &[Change::Comment("Done.".into())])
        .expect("agent comment");
    tracker_sync(&repo, &jira, "alice");
    let key = remote_of(&repo, issue);
    let comments = fake.issue(&key).comments;
    assert_eq!(comments.len(), 1);
    let first = &comments[0].body["content"][0];
    assert_eq!(first["type"], "paragraph");
    assert_eq!(first["content"][0]["text"], "agent-7 on behalf of alice");
    assert_eq!(first["content"][0]["marks"], json!([{"type": "em"}]));
    assert_eq!(
        comments[0].body["content"][1]["content"][0]["text"],
        "Done."
    );
    fake.clear_requests();
    for _ in 0..2 {
        let p = Projection::new(repo.store(), &jira, who("alice"), &|_| {});
        p.import(true)
            .expect("reconciling import re-reads every comment");
        let report = p.export_all().expect("export");
        assert_eq!(report.comments, 0, "in step: nothing sent");
    }
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.method == "GET" || r.path() == "/rest/api/3/search/jql"));
    let state = repo.show(issue).expect("show");
    assert_eq!(state.comments.len(), 1);
    assert_eq!(state.comments[0].body, "Done.");
}
