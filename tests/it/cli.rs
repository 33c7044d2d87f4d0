//! The `reposix` command line as a spec: each test runs the built binary and
//! checks stdout, stderr and the exit code (see `enum Exit` in
//! `src/cli/mod.rs`: 2 usage, 3 not found, 4 ambiguous, 5 damaged,
//! 6 unsupported version, 7 invalid, 8 no actor).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::support::{issue_ref, TestRepo};

/// The titles of a `list --json` result, in order.
fn titles(list: &Value) -> Vec<String> {
    list["issues"]
        .as_array()
        .expect("issues array")
        .iter()
        .map(|i| i["title"].as_str().expect("title").to_owned())
        .collect()
}

/// `issue list --json ARGS…` titles.
fn list(t: &TestRepo, args: &[&str]) -> Vec<String> {
    let mut all = vec!["issue", "list"];
    all.extend_from_slice(args);
    titles(&t.json(&all))
}

// ---------------------------------------------------------------- init, actor

#[test]
fn init_creates_a_repository_and_is_idempotent() {
    let t = TestRepo::new();
    let fresh = t.home().join("fresh");
    let dir = fresh.to_str().expect("UTF-8 temp path");
    let run = t.rx(&["init", dir]).ok();
    assert!(
        run.stdout.starts_with("initialized reposix in "),
        "{}",
        run.stdout
    );
    assert!(fresh.join(".git/reposix").is_dir());
    // A second run, and a run in an existing git repository, change nothing.
    t.rx(&["init", dir]).ok();
    let data = t.json(&["init"]);
    assert!(data["git_dir"].as_str().expect("git_dir").ends_with(".git"));
    assert!(t.git_dir().join("reposix").is_dir());
}

#[test]
fn outside_a_repository_commands_fail_with_a_hint() {
    let t = TestRepo::new();
    let nowhere = t.home().join("nowhere");
    std::fs::create_dir(&nowhere).expect("mkdir");
    let mut cmd = t.command(crate::support::BIN);
    cmd.arg("-C").arg(&nowhere).args(["issue", "list"]);
    let run = t.run(cmd).code(1);
    assert!(
        run.stderr.contains("hint: run `reposix init`"),
        "{}",
        run.stderr
    );
}

#[test]
fn actor_new_list_and_use() {
    let t = TestRepo::new();
    let run = t.rx(&["actor", "new", "alice"]).ok();
    assert_eq!(run.stdout, "created actor alice\n");
    let run = t.rx(&["actor", "new", "bob", "--use"]).ok();
    assert_eq!(run.stdout, "created actor bob (default)\n");
    let run = t.rx(&["actor", "new", "alice"]).ok();
    assert_eq!(run.stdout, "actor alice already exists\n");
    let run = t.rx(&["actor", "list"]).ok();
    assert_eq!(run.stdout, "  alice\n* bob\n");

    let run = t.rx(&["actor", "use", "alice"]).ok();
    assert_eq!(run.stdout, "default actor is now alice\n");
    let data = t.json(&["actor", "list"]);
    assert_eq!(
        data,
        json!([{"actor": "alice", "default": true}, {"actor": "bob", "default": false}])
    );

    let run = t.rx(&["actor", "new", "no spaces"]).code(7);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
}

#[test]
fn actor_comes_from_flag_then_env_then_default_else_exit_8() {
    let t = TestRepo::new();
    let new = |actor_flag: Option<&str>, env: Option<&str>, title: &str| {
        let mut cmd = t.reposix();
        cmd.arg("--json");
        if let Some(a) = actor_flag {
            cmd.args(["--actor", a]);
        }
        if let Some(e) = env {
            cmd.env("REPOSIX_ACTOR", e);
        }
        cmd.args(["issue", "new", title]);
        t.run(cmd)
    };

    let run = new(None, None, "nobody").code(8);
    let err = run.envelope();
    assert_eq!(err["ok"], false);
    assert_eq!(err["error"]["kind"], "no_actor");
    assert_eq!(err["error"]["exit"], 8);
    let mut cmd = t.reposix();
    cmd.args(["issue", "new", "nobody"]);
    let run = t.run(cmd).code(8);
    assert!(run.stderr.contains("error: no actor"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("hint: run `reposix actor new NAME --use`"),
        "{}",
        run.stderr
    );

    let created_by = |run: crate::support::Run| {
        let id = run.ok().data()["issue"].as_str().expect("id").to_owned();
        t.show(&id)["created_by"]
            .as_str()
            .expect("creator")
            .to_owned()
    };
    assert_eq!(created_by(new(None, Some("envy"), "by env")), "envy");
    assert_eq!(
        created_by(new(Some("flag"), Some("envy"), "by flag")),
        "flag"
    );
    t.rx(&["actor", "new", "dflt", "--use"]).ok();
    assert_eq!(created_by(new(None, None, "by default")), "dflt");
    assert_eq!(
        created_by(new(None, Some("envy"), "env over default")),
        "envy"
    );
}

// ---------------------------------------------------------------- issues

#[test]
fn issue_new_then_show() {
    let t = TestRepo::new();
    let run = t
        .rx(&[
            "issue",
            "new",
            "Crash on start",
            "--body",
            "It crashes.\n",
            "-l",
            "bug",
            "-l",
            "p1",
            "-a",
            "ann",
            "--status",
            "in_progress",
        ])
        .ok();
    let id = run
        .stdout
        .strip_prefix("created issue ")
        .and_then(|s| s.strip_suffix('\n'))
        .expect("prints the new id")
        .to_owned();
    assert_eq!(id.len(), 36);

    let text = t.rx(&["issue", "show", &id]).ok().stdout;
    assert!(
        text.starts_with(&format!("{id}  Crash on start\n")),
        "{text}"
    );
    for line in [
        "status:    in_progress\n",
        "labels:    bug, p1\n",
        "assignees: ann\n",
        " by tester · updated ",
        " · 1 events\n",
        "\nIt crashes.\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }

    let s = t.show(&id);
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["title"], "Crash on start");
    assert_eq!(s["body"], "It crashes.\n");
    assert_eq!(s["status"], "in_progress");
    assert_eq!(s["labels"], json!(["bug", "p1"]));
    assert_eq!(s["assignees"], json!(["ann"]));
    assert_eq!(s["event_count"], 1);

    // An empty title is rejected.
    t.rx(&["issue", "new", "  "]).code(7);
}

#[test]
fn issue_list_filters_sorts_and_limits() {
    let t = TestRepo::new();
    t.new_issue("Alpha crash", &["-l", "bug", "-l", "p1", "-a", "ann"]);
    t.new_issue(
        "beta docs",
        &["-l", "docs", "--body", "mentions CRASH here"],
    );
    let gamma = t.new_issue("Gamma", &["-l", "bug", "-a", "ben"]);
    let delta = t.new_issue("Delta", &[]);
    t.rx(&["issue", "close", &delta]).ok();
    t.rx(&["issue", "status", &gamma, "in_review"]).ok();

    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // Default: open issues (not done or wont_fix).
    assert_eq!(
        sorted(list(&t, &[])),
        vec!["Alpha crash", "Gamma", "beta docs"]
    );
    assert_eq!(list(&t, &["--state", "closed"]), vec!["Delta"]);
    assert_eq!(list(&t, &["--state", "in_review"]), vec!["Gamma"]);
    assert_eq!(list(&t, &["--state", "all"]).len(), 4);
    assert_eq!(
        list(&t, &["--label", "bug", "--sort", "title"]),
        vec!["Alpha crash", "Gamma"]
    );
    assert_eq!(list(&t, &["-l", "bug", "-l", "p1"]), vec!["Alpha crash"]);
    assert_eq!(list(&t, &["--assignee", "ben"]), vec!["Gamma"]);
    // --text: title or body, case-insensitive.
    assert_eq!(
        list(&t, &["--text", "crash", "--sort", "title"]),
        vec!["Alpha crash", "beta docs"]
    );
    assert_eq!(
        list(&t, &["--state", "all", "--sort", "title"]),
        vec!["Alpha crash", "beta docs", "Delta", "Gamma"]
    );
    assert_eq!(
        list(&t, &["--state", "all", "--sort", "title", "--reverse"]),
        vec!["Gamma", "Delta", "beta docs", "Alpha crash"]
    );
    assert_eq!(
        list(&t, &["--state", "all", "--sort", "status"])[2..],
        ["Gamma".to_owned(), "Delta".to_owned()]
    );
    assert_eq!(
        list(&t, &["--state", "all", "--sort", "title", "--limit", "2"]),
        vec!["Alpha crash", "beta docs"]
    );
    // Created order: newest first (ties broken by id, so only check sets
    // when two issues share a millisecond).
    let created = list(&t, &["--state", "all", "--sort", "created"]);
    assert_eq!(created.len(), 4);

    // Text output: short id, status, title, labels, assignees.
    let text = t.rx(&["issue", "list", "--label", "p1"]).ok().stdout;
    let line = text.lines().next().expect("one line");
    // (issue 13: then the tracker ref column, empty here, and the time).
    assert!(
        line.contains("  open                   Alpha crash  [bug, p1]  @ann  "),
        "{line:?}"
    );
    assert_eq!(text.lines().count(), 1);
    t.rx(&["issue", "list", "--state", "bogus"]).code(2);
}

#[test]
fn issue_edit_title_body_and_fields() {
    let t = TestRepo::new();
    let id = t.new_issue("Old title", &["--body", "old body"]);
    let run = t
        .rx(&[
            "issue",
            "edit",
            &id,
            "--title",
            "New title",
            "--body",
            "new body",
            "--field",
            "severity=high",
            "--field",
            "area=ui",
        ])
        .ok();
    assert_eq!(run.stdout, format!("{}: edited\n", &id[..8]));
    let s = t.show(&id);
    assert_eq!(s["title"], "New title");
    assert_eq!(s["body"], "new body");
    assert_eq!(s["fields"], json!({"area": "ui", "severity": "high"}));

    t.rx(&["issue", "edit", &id, "--unset-field", "area"]).ok();
    assert_eq!(t.show(&id)["fields"], json!({"severity": "high"}));

    // Nothing to change: no event is written.
    let data = t.json(&["issue", "edit", &id, "--title", "New title"]);
    assert_eq!(data["events"], json!([]));
    let run = t.rx(&["issue", "edit", &id, "--title", "New title"]).ok();
    assert_eq!(run.stdout, format!("{}: nothing to change\n", &id[..8]));

    t.rx(&["issue", "edit", &id]).code(2);
    t.rx(&["issue", "edit", &id, "--field", "no-equals-sign"])
        .code(2);
    t.rx(&["issue", "edit", &id, "--field", "bad name=x"])
        .code(7);
}

#[test]
fn issue_comment_add_edit_delete() {
    let t = TestRepo::new();
    let id = t.new_issue("Discuss", &[]);
    let run = t.rx(&["issue", "comment", &id, "first!"]).ok();
    assert_eq!(run.stdout, format!("{}: comment recorded\n", &id[..8]));
    let second = t.json(&["issue", "comment", &id, "second"]);
    let second_id = second["events"][0].as_str().expect("event id").to_owned();

    let s = t.show(&id);
    let first_id = s["comments"][0]["id"].as_str().expect("id").to_owned();
    assert_eq!(s["comments"][0]["body"], "first!");
    assert_eq!(s["comments"][0]["author"], "tester");
    assert_eq!(s["comments"][1]["id"], second_id.as_str());

    // --edit and --delete take a comment id prefix.
    t.rx(&[
        "issue",
        "comment",
        &id,
        "--edit",
        &first_id[..10],
        "first, edited",
    ])
    .ok();
    t.rx(&["issue", "comment", &id, "--delete", &second_id[..10]])
        .ok();
    let s = t.show(&id);
    assert_eq!(
        s["comments"],
        json!([{
            "id": first_id,
            "author": "tester",
            "body": "first, edited",
            "edited": true,
            "created_ms": s["comments"][0]["created_ms"],
            "created_at": s["comments"][0]["created_at"],
        }])
    );
    assert_eq!(s["deleted_comments"], 1);
    let text = t.rx(&["issue", "show", &id]).ok().stdout;
    let created = s["comments"][0]["created_at"].as_str().expect("RFC 3339");
    assert!(
        text.contains(&format!(
            "--- comment {} by tester, {created} (edited)\nfirst, edited\n",
            &first_id[..12]
        )),
        "{text}"
    );

    t.rx(&["issue", "comment", &id, "--delete", &second_id[..10]])
        .code(3);
    t.rx(&["issue", "comment", &id, "--edit", "ffff"]).code(2);
    t.rx(&["issue", "comment", &id, "   "]).code(7);
}

#[test]
fn issue_label_and_assign_add_and_remove() {
    let t = TestRepo::new();
    let id = t.new_issue("Sets", &["-l", "bug"]);
    t.rx(&["issue", "label", &id, "ui", "p1"]).ok();
    assert_eq!(t.show(&id)["labels"], json!(["bug", "p1", "ui"]));
    t.rx(&["issue", "label", &id, "--remove", "bug", "ui"]).ok();
    assert_eq!(t.show(&id)["labels"], json!(["p1"]));
    let run = t.rx(&["issue", "label", &id, "p1"]).ok();
    assert!(
        run.stdout.ends_with(": nothing to change\n"),
        "{}",
        run.stdout
    );
    t.rx(&["issue", "label", &id, "has space"]).code(7);

    t.rx(&["issue", "assign", &id, "ann", "ben"]).ok();
    assert_eq!(t.show(&id)["assignees"], json!(["ann", "ben"]));
    t.rx(&["issue", "assign", &id, "--remove", "ann"]).ok();
    assert_eq!(t.show(&id)["assignees"], json!(["ben"]));
    t.rx(&["issue", "assign", &id]).code(2);
}

#[test]
fn issue_status_close_wont_fix_reopen() {
    let t = TestRepo::new();
    let id = t.new_issue("Lifecycle", &[]);
    let status = |t: &TestRepo| t.show(&id)["status"].as_str().map(str::to_owned);
    t.rx(&["issue", "status", &id, "in_progress"]).ok();
    assert_eq!(status(&t).as_deref(), Some("in_progress"));
    let run = t.rx(&["issue", "close", &id]).ok();
    assert_eq!(run.stdout, format!("{}: closed (done)\n", &id[..8]));
    assert_eq!(status(&t).as_deref(), Some("done"));
    t.rx(&["issue", "reopen", &id]).ok();
    assert_eq!(status(&t).as_deref(), Some("open"));
    t.rx(&["issue", "close", &id, "--wont-fix"]).ok();
    assert_eq!(status(&t).as_deref(), Some("wont_fix"));
    t.rx(&["issue", "status", &id, "sleeping"]).code(2);
}

#[test]
fn issue_link_and_unlink() {
    let t = TestRepo::new();
    let a = t.new_issue("A", &[]);
    let b = t.new_issue("B", &[]);
    t.rx(&["issue", "link", &a, &b, "--kind", "blocks"]).ok();
    assert_eq!(
        t.show(&a)["links"],
        json!([{"kind": "blocks", "target": b}])
    );
    let text = t.rx(&["issue", "show", &a]).ok().stdout;
    assert!(text.contains(&format!("link:      blocks {b}\n")), "{text}");
    t.rx(&["issue", "link", &a, &b, "--kind", "blocks", "--remove"])
        .ok();
    assert_eq!(t.show(&a)["links"], json!([]));

    t.rx(&["issue", "link", &a, &a]).code(7);
    // A target prefix must name a known issue. (A full id is taken as is:
    // the target may live on a replica not fetched yet.)
    let unknown = "0123456789abcdef"
        .chars()
        .find(|c| !a.starts_with(*c) && !b.starts_with(*c))
        .expect("16 digits, 2 issues")
        .to_string();
    t.rx(&["issue", "link", &a, &unknown]).code(3);
}

#[test]
fn log_lists_events_oldest_first() {
    let t = TestRepo::new();
    let id = t.new_issue("Logged", &[]);
    t.rx(&["issue", "label", &id, "bug"]).ok();
    t.rx_as("other", &["issue", "comment", &id, "hello there"])
        .ok();
    let entries = t.json(&["log", &id]);
    let entries = entries.as_array().expect("array");
    let ops: Vec<_> = entries.iter().map(|e| e["op"].clone()).collect();
    assert_eq!(ops, vec!["create", "add_label", "add_comment"]);
    let lamports: Vec<_> = entries.iter().map(|e| e["lamport"].clone()).collect();
    assert_eq!(lamports, vec![1, 2, 3]);
    assert_eq!(entries[2]["actor"], "other");
    assert_eq!(entries[2]["summary"], "comment: hello there");
    // Each event names the previous head as its parent.
    assert_eq!(entries[1]["parents"], json!([entries[0]["id"]]));

    let text = t.rx(&["log", &id]).ok().stdout;
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].ends_with("created \"Logged\""), "{text}");
    assert!(
        lines[1].contains("tester") && lines[1].ends_with("+label bug"),
        "{text}"
    );
}

#[test]
fn fsck_on_a_healthy_repository() {
    let t = TestRepo::new();
    let run = t.rx(&["fsck"]).ok();
    assert_eq!(
        run.stdout,
        "checked 0 issue refs, 0 commits, 0 events: ok\n"
    );
    let id = t.new_issue("One", &[]);
    t.rx(&["issue", "comment", &id, "two"]).ok();
    let run = t.rx(&["fsck"]).ok();
    assert_eq!(
        run.stdout,
        "tree layouts (format marker): 1 at 2\nchecked 1 issue refs, 2 commits, 2 events: ok\n"
    );
    assert_eq!(run.stderr, "");
    let data = t.json(&["fsck"]);
    assert_eq!(data["problems"], json!([]));
    assert_eq!(data["refs"], 1);
    assert_eq!(data["layouts"], json!({"2": 1}));
}

// ---------------------------------------------------------------- ids

#[test]
fn id_prefixes_resolve_when_unambiguous_else_exit_4() {
    let t = TestRepo::new();
    // Random v4 ids: by the 17th issue two share a first hex digit.
    let mut ids: Vec<String> = Vec::new();
    let (one, two) = loop {
        let id = t.new_issue(&format!("issue {}", ids.len()), &[]);
        if let Some(other) = ids.iter().find(|o| o.as_bytes()[0] == id.as_bytes()[0]) {
            break (other.clone(), id);
        }
        ids.push(id);
        assert!(ids.len() <= 16, "pigeonhole");
    };
    ids.push(two.clone());

    let run = t.rx(&["issue", "show", &one[..1]]).code(4);
    assert!(run.stderr.contains("is ambiguous"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&one) && run.stderr.contains(&two),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: give more characters"),
        "{}",
        run.stderr
    );
    let err = t
        .rx(&["--json", "issue", "show", &one[..1]])
        .code(4)
        .envelope();
    assert_eq!(err["error"]["kind"], "ambiguous");

    // The shortest prefix that tells `two` apart, plain and upper-cased,
    // and a prefix through the first hyphen.
    let unique = (1..=36)
        .map(|n| &two[..n])
        .find(|p| ids.iter().filter(|i| i.starts_with(p)).count() == 1)
        .expect("a unique prefix");
    for prefix in [
        unique.to_owned(),
        unique.to_uppercase(),
        two[..13].to_owned(),
    ] {
        assert_eq!(t.show(&prefix)["id"], two.as_str(), "prefix {prefix}");
    }
    // The undashed form's prefix works past the first group too.
    let plain: String = two.chars().filter(|c| *c != '-').collect();
    assert_eq!(t.show(&plain[..12])["id"], two.as_str());

    let unknown = "00000000-0000-4000-8000-000000000000";
    let run = t.rx(&["issue", "show", unknown]).code(3);
    assert!(
        run.stderr.contains(&format!("no issue {unknown}")),
        "{}",
        run.stderr
    );
    t.rx(&["issue", "show", "zzz"]).code(3);
    t.rx(&["issue", "comment", unknown, "x"]).code(3);
    t.rx(&["log", unknown]).code(3);
}

#[test]
fn json_envelope_has_schema_1_for_success_and_failure() {
    let t = TestRepo::new();
    let ok = t.rx(&["--json", "issue", "list"]).ok().envelope();
    assert_eq!(
        ok,
        json!({"schema": 1, "ok": true, "data": {"issues": [], "damaged": [], "total": 0, "shown": 0}})
    );

    let run = t
        .rx(&[
            "--json",
            "issue",
            "show",
            "00000000-0000-4000-8000-000000000000",
        ])
        .code(3);
    let err = run.envelope();
    assert_eq!(err["ok"], false);
    assert_eq!(err["error"]["kind"], "not_found");
    assert_eq!(err["error"]["exit"], 3);
    assert!(err["error"]["message"].as_str().is_some());
    assert!(err["error"]["hint"].as_str().is_some());
    assert_eq!(run.stderr, "", "JSON mode reports on stdout only");
    assert!(err.get("data").is_none());
}

#[test]
fn bad_usage_exits_2() {
    let t = TestRepo::new();
    let run = t.rx(&["issue", "frobnicate"]).code(2);
    assert!(run.stderr.contains("frobnicate"), "{}", run.stderr);
    t.rx(&["issue", "new"]).code(2);
    let help = t.rx(&["--help"]).ok();
    assert!(help.stdout.contains("Usage:"), "{}", help.stdout);
}

// ---------------------------------------------------------------- index

#[test]
fn index_follows_refs_moved_behind_its_back() {
    let t = TestRepo::new();
    let id = t.new_issue("First title", &[]);
    t.new_issue("Bystander", &[]);
    t.rx(&["issue", "edit", &id, "--title", "Second title"])
        .ok();
    let sorted = |v: Vec<String>| -> BTreeSet<String> { v.into_iter().collect() };
    assert_eq!(
        sorted(list(&t, &[])),
        sorted(vec!["Second title".into(), "Bystander".into()])
    );

    // Move the ref back one commit with plain git.
    let r = issue_ref(&id);
    t.git(&["update-ref", &r, &format!("{r}~1")]);
    assert_eq!(
        sorted(list(&t, &[])),
        sorted(vec!["First title".into(), "Bystander".into()])
    );
    assert_eq!(t.show(&id)["title"], "First title");

    // Delete a ref behind its back: it leaves the listing.
    t.git(&["update-ref", "-d", &r]);
    assert_eq!(list(&t, &[]), vec!["Bystander"]);
}

#[test]
fn deleting_or_garbling_the_index_is_harmless() {
    let t = TestRepo::new();
    let index = t.git_dir().join("reposix/index-v4");
    let a = t.new_issue("A", &["-l", "x"]);
    let expect = t.json(&["issue", "list", "--state", "all"]);
    assert!(index.exists(), "list writes the index");

    std::fs::remove_file(&index).expect("removing the index");
    assert_eq!(t.json(&["issue", "list", "--state", "all"]), expect);

    // Deleted between a write and a read.
    std::fs::remove_file(&index).expect("removing the index");
    t.rx(&["issue", "label", &a, "y"]).ok();
    let after = t.json(&["issue", "list", "--state", "all"]);
    assert_eq!(after["issues"][0]["labels"], json!(["x", "y"]));

    // Garbage in the file is ignored and replaced.
    std::fs::write(&index, b"not an index").expect("garbling the index");
    assert_eq!(t.json(&["issue", "list", "--state", "all"]), after);
    assert_ne!(std::fs::read(&index).expect("index"), b"not an index");
    t.rx(&["fsck"]).ok();
}

// ---------------------------------------------------------------- damage

/// Overwrite a loose object with garbage.
fn corrupt_object(t: &TestRepo, oid: &str) {
    let path = t.git_dir().join("objects").join(&oid[..2]).join(&oid[2..]);
    assert!(path.exists(), "{oid} is not a loose object");
    let mut perms = std::fs::metadata(&path).expect("object").permissions();
    #[allow(clippy::permissions_set_readonly_false)] // tests run as a user
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).expect("chmod +w");
    std::fs::write(&path, b"\x00garbage, not a zlib stream\xff").expect("corrupting");
}

#[test]
fn corrupt_blob_fails_show_but_list_serves_others() {
    let t = TestRepo::new();
    let healthy1 = t.new_issue("Healthy one", &[]);
    let victim = t.new_issue("Victim", &[]);
    let healthy2 = t.new_issue("Healthy two", &[]);
    t.rx(&["issue", "comment", &victim, "a comment"]).ok();
    let r = issue_ref(&victim);
    let events = t.git(&["rev-parse", &format!("{r}^{{tree}}:events")]);
    let listing = t.git(&["ls-tree", &events]);
    let blob = listing
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(2))
        .expect("an event blob")
        .to_owned();
    // No `list` has run yet, so the index is cold. (A warm index keyed by
    // ref tips would keep serving the summary it cached before the damage;
    // show and fsck read the objects.)
    corrupt_object(&t, &blob);

    let run = t.rx(&["issue", "show", &victim]).code(5);
    assert!(run.stderr.contains(&r), "names the ref: {}", run.stderr);
    assert!(
        run.stderr.contains(&blob),
        "names the object: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: run `reposix fsck`"),
        "{}",
        run.stderr
    );
    let err = t
        .rx(&["--json", "issue", "show", &victim])
        .code(5)
        .envelope();
    assert_eq!(err["error"]["kind"], "damaged");
    // Writing to it fails the same way (it must read the log first).
    t.rx(&["issue", "comment", &victim, "more"]).code(5);

    let run = t.rx(&["issue", "list", "--state", "all"]).ok();
    let mut shown: Vec<_> = run.stdout.lines().map(|l| l.to_owned()).collect();
    shown.sort();
    assert_eq!(shown.len(), 2, "{}", run.stdout);
    assert!(shown.iter().any(|l| l.contains("Healthy one  ")));
    assert!(shown.iter().any(|l| l.contains("Healthy two  ")));
    assert!(run.stderr.starts_with("warning: "), "{}", run.stderr);
    assert!(run.stderr.contains(&r), "{}", run.stderr);

    let data = t.json(&["issue", "list", "--state", "all"]);
    let ids: BTreeSet<_> = data["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, BTreeSet::from([healthy1.clone(), healthy2.clone()]));
    assert_eq!(data["damaged"][0]["refname"], r.as_str());
    assert!(data["damaged"][0]["error"]
        .as_str()
        .expect("why")
        .contains(&blob));
    t.show(&healthy1);

    let run = t.rx(&["fsck"]).code(5);
    assert!(
        run.stdout.contains(&format!("damaged: {r}: ")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with(": 1 problems\n"), "{}", run.stdout);
    // One envelope whose `ok` agrees with the exit code (issue 10, defect
    // 11: it said `ok: true` while exiting 5), the report as its data.
    let env = t.rx(&["--json", "fsck"]).code(5).envelope();
    assert_eq!(env["ok"], false, "{env}");
    assert_eq!(env["error"]["exit"], 5, "{env}");
    assert_eq!(env["data"]["problems"][0]["at"], r.as_str());
}

/// Write a commit whose tree holds only a `format` marker with `marker`.
fn commit_with_marker(t: &TestRepo, marker: &str) -> String {
    let blob = t.git_stdin(&["hash-object", "-w", "--stdin"], marker.as_bytes());
    let tree = t.git_stdin(
        &["mktree"],
        format!("100644 blob {blob}\tformat\n").as_bytes(),
    );
    t.git(&["commit-tree", &tree, "-m", "from the future"])
}

#[test]
fn unsupported_format_version_exits_6_naming_versions() {
    let t = TestRepo::new();
    t.new_issue("Today", &[]);
    let future = "0190a1b2-c3d4-4e5f-8a9b-0c1d2e3f4a5b";
    let commit = commit_with_marker(&t, "reposix-events 9\n");
    t.git(&["update-ref", &issue_ref(future), &commit]);

    let run = t.rx(&["issue", "show", future]).code(6);
    assert!(
        run.stderr
            .contains("unsupported format version 9 (supported: 1, 2)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&issue_ref(future)), "{}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    let err = t
        .rx(&["--json", "issue", "show", future])
        .code(6)
        .envelope();
    assert_eq!(err["error"]["kind"], "unsupported_version");

    // The rest of the store is still served.
    let run = t.rx(&["issue", "list"]).ok();
    assert!(run.stdout.contains("Today"), "{}", run.stdout);
    assert!(run.stderr.contains(&issue_ref(future)), "{}", run.stderr);
    assert!(
        run.stderr.contains("unsupported format version 9"),
        "{}",
        run.stderr
    );
}

#[test]
fn foreign_ref_under_the_namespace_is_reported_not_fatal() {
    let t = TestRepo::new();
    let id = t.new_issue("Real", &[]);
    let foreign = "refs/reposix/issues/not-a-uuid";
    let tip = t.git(&["rev-parse", &issue_ref(&id)]);
    t.git(&["update-ref", foreign, &tip]);

    let run = t.rx(&["issue", "list"]).ok();
    assert!(run.stdout.contains("Real"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1);
    assert!(run.stderr.contains(foreign), "{}", run.stderr);
    let data = t.json(&["issue", "list"]);
    assert_eq!(data["damaged"][0]["refname"], foreign);
    assert!(data["damaged"][0]["error"]
        .as_str()
        .expect("why")
        .contains("not a reposix issue ref"));
    // Prefix resolution ignores it.
    assert_eq!(t.show(&id[..8])["id"], id.as_str());
    let run = t.rx(&["fsck"]).code(5);
    assert!(run.stdout.contains(foreign), "{}", run.stdout);
}

// ---------------------------------------------------------------- demo

#[test]
fn demo_runs() {
    let t = TestRepo::new();
    let run = t.rx(&["demo"]).ok();
    assert!(
        run.stdout.contains("byte-identical state: yes"),
        "{}",
        run.stdout
    );
    // It cleaned up after itself in TMPDIR.
    let left: Vec<_> = std::fs::read_dir(t.home())
        .expect("home")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("reposix-demo-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
