//! The command line people and agents reach for (issue 13): each test pins
//! one habit, through the real binary. A terminal is a pty made by
//! `script(1)`; an editor is a shell script set as `EDITOR`.

use std::time::{Duration, Instant};

use crate::support::{TestRepo, BIN};

fn sim(rate_limit: u32) -> reposix_sim::SimHandle {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/reposix-sim/seed.json");
    reposix_sim::start(reposix_sim::SimConfig {
        seed_file: Some(seed.into()),
        rate_limit,
        ..reposix_sim::SimConfig::default()
    })
    .expect("sim starts")
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Quote `s` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `reposix -C <repo> --actor tester ARGS…` run on a pseudo-terminal (via
/// `script`), with extra environment; returns (exit code, everything the
/// terminal showed).
fn on_tty(t: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut line = format!(
        "{} -C {} --actor tester",
        sh_quote(BIN),
        sh_quote(&t.path().to_string_lossy())
    );
    for a in args {
        line.push(' ');
        line.push_str(&sh_quote(a));
    }
    let mut cmd = t.command("script");
    cmd.args(["-qefc", &line, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = t.run(cmd);
    (run.code, run.stdout)
}

fn config(t: &TestRepo, key: &str) -> String {
    t.git_run(&["config", "--get-all", key])
        .stdout
        .trim()
        .to_owned()
}

// ------------------------------------------- 1. attached trackers are allowed

#[test]
fn backend_add_records_the_trackers_origin_and_list_shows_it() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let run = t.rx(&["backend", "add", "gh", "github::octo/repo"]).ok();
    assert!(
        run.stdout.contains("allowed origin https://api.github.com"),
        "{}",
        run.stdout
    );
    assert_eq!(
        config(&t, "reposix.backend.gh.allowedOrigin"),
        "https://api.github.com"
    );
    t.rx(&[
        "backend",
        "add",
        "j",
        "jira::https://acme.atlassian.net/PROJ",
    ])
    .ok();
    let rows = t.json(&["backend", "list"]);
    assert_eq!(rows[0]["name"], "gh");
    assert_eq!(rows[0]["origin"], "https://api.github.com");
    assert_eq!(rows[1]["origin"], "https://acme.atlassian.net");
    let run = t.rx(&["backend", "list"]).ok();
    assert!(
        run.stdout
            .contains("j\tjira::https://acme.atlassian.net/PROJ\thttps://acme.atlassian.net"),
        "{}",
        run.stdout
    );
    // Removing the backend removes what it allowed.
    t.rx(&["backend", "remove", "gh"]).ok();
    assert_eq!(config(&t, "reposix.backend.gh.allowedOrigin"), "");
}

#[test]
fn an_attached_tracker_is_reachable_and_anything_else_is_refused_by_exact_origin() {
    let s = sim(0);
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let origin = s.base_url().trim_end_matches('/').to_owned();
    let sync = |t: &TestRepo| {
        let mut cmd = t.reposix();
        cmd.args(["--actor", "tester", "sync", "--backend", "s"])
            // Loopback is no longer allowed by default: only what the
            // repository allows reaches the sim.
            .env("REPOSIX_ALLOWED_ORIGINS", "http://127.0.0.2");
        t.run(cmd)
    };
    t.rx(&[
        "backend",
        "add",
        "s",
        &format!("sim::{}", s.project_url("demo")),
    ])
    .ok();
    sync(&t).ok();
    // The user revokes it: refused, and the hint names the exact origin.
    t.git(&["config", "--unset-all", "reposix.backend.s.allowedOrigin"]);
    let run = sync(&t).code(12);
    assert!(
        run.stderr
            .contains(&format!("git config --add reposix.allowedOrigins {origin}")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("https://host"), "{}", run.stderr);
    // The git config key allows it again.
    t.git(&["config", "--add", "reposix.allowedOrigins", &origin]);
    sync(&t).ok();
}

// ------------------------------------------------ 2. fail fast, progress

#[test]
fn an_unreachable_tracker_fails_at_once_with_exit_9() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let port = closed_port();
    t.rx(&[
        "backend",
        "add",
        "s",
        &format!("sim::http://127.0.0.1:{port}/demo"),
    ])
    .ok();
    let start = Instant::now();
    let run = t.rx(&["sync", "--backend", "s"]).code(9);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(run.stderr.contains("tracker unreachable"), "{}", run.stderr);
    let run = t.rx(&["--json", "sync", "--backend", "s"]).code(9);
    assert_eq!(run.envelope()["error"]["kind"], "tracker_unreachable");
}

#[test]
fn progress_shows_on_a_terminal_only_and_a_summary_line_ends_the_sync() {
    let s = sim(0);
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    t.rx(&[
        "backend",
        "add",
        "s",
        &format!("sim::{}", s.project_url("demo")),
    ])
    .ok();
    // Off a terminal: no progress lines, the summary line only.
    let run = t.rx(&["sync", "--backend", "s"]).ok();
    assert!(!run.stderr.contains("importing"), "{}", run.stderr);
    assert!(
        run.stderr.contains("sync with s: 6 listed"),
        "{}",
        run.stderr
    );
    // On a terminal (progress from the first moment): a status line
    // rewritten in place, then cleared before the summary.
    let (code, shown) = on_tty(
        &t,
        &["sync", "--backend", "s"],
        &[("REPOSIX_PROGRESS_AFTER_MS", "0")],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("\r\x1b[Kimporting from"), "{shown:?}");
    assert!(shown.contains("\r\x1b[Ksync with s:"), "{shown:?}");
}

// ------------------------------------------- 3. dry run, first-export prompt

fn reposix_refs(t: &TestRepo) -> String {
    t.git(&["for-each-ref", "refs/reposix/"])
}

#[test]
fn dry_run_prints_creates_and_updates_and_changes_nothing() {
    let s = sim(0);
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    t.rx(&[
        "backend",
        "add",
        "s",
        &format!("sim::{}", s.project_url("demo")),
    ])
    .ok();
    t.rx(&["sync", "--backend", "s"]).ok();
    let imported = t.json(&["issue", "list", "--state", "all"]);
    let first = imported["issues"][0]["id"].as_str().expect("id").to_owned();
    t.rx(&["issue", "edit", &first, "--title", "renamed here"])
        .ok();
    t.new_issue("born here", &[]);
    let before = reposix_refs(&t);
    let run = t.rx(&["sync", "--backend", "s", "--dry-run"]).ok();
    assert!(
        run.stdout.contains("would create on s: born here"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(": title\n"), "{}", run.stdout);
    assert!(run
        .stdout
        .contains("would export to s: 1 created, 1 updated, 0 comments"));
    let data = t.json(&["sync", "--backend", "s", "--dry-run"]);
    assert_eq!(data["dry_run"], true);
    let actions: Vec<&str> = data["planned"]
        .as_array()
        .expect("planned")
        .iter()
        .map(|p| p["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "create").count(), 1);
    // Nothing changed here, nothing on the tracker: a real sync still has
    // all of it to do.
    assert_eq!(reposix_refs(&t), before);
    let data = t.json(&["sync", "--backend", "s"]);
    assert_eq!(data["export"]["created"], 1, "{data}");
    assert_eq!(data["export"]["updated"], 1, "{data}");
}

#[test]
fn the_first_export_of_local_issues_to_a_new_tracker_asks_or_needs_yes() {
    let s = sim(0);
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    t.new_issue("private draft", &[]);
    t.rx(&[
        "backend",
        "add",
        "e",
        &format!("sim::{}", s.project_url("empty")),
    ])
    .ok();
    // Not a terminal: refused, nothing sent.
    let run = t.rx(&["sync", "--backend", "e"]).code(7);
    assert!(
        run.stderr.contains("publish 1 local issues to e"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--dry-run"), "{}", run.stderr);
    // A terminal that answers no: refused too.
    let (code, shown) = on_tty_input(&t, &["sync", "--backend", "e"], "n\n");
    assert_eq!(code, 7, "{shown}");
    assert!(shown.contains("[y/N]"), "{shown}");
    // A terminal that answers yes: exported.
    let (code, shown) = on_tty_input(&t, &["--json", "sync", "--backend", "e"], "y\n");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("\"created\":1"), "{shown}");
    // Once something is there, no more questions.
    t.new_issue("second", &[]);
    t.rx(&["sync", "--backend", "e"]).ok();
    // --yes skips the question for a fresh tracker.
    t.rx(&[
        "backend",
        "add",
        "f",
        &format!("sim::{}", s.project_url("fresh")),
    ])
    .ok();
    t.rx(&["sync", "--backend", "f", "--yes"]).ok();
}

/// Like [`on_tty`], typing `input` on the terminal.
fn on_tty_input(t: &TestRepo, args: &[&str], input: &str) -> (i32, String) {
    let mut line = format!(
        "{} -C {} --actor tester",
        sh_quote(BIN),
        sh_quote(&t.path().to_string_lossy())
    );
    for a in args {
        line.push(' ');
        line.push_str(&sh_quote(a));
    }
    let mut child = t
        .command("script")
        .args(["-qefc", &line, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("typing");
    }
    let out = child.wait_with_output().expect("script ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

// ------------------------------------------- 4. tracker numbers and URLs

#[test]
fn issues_are_named_by_number_backend_number_url_or_prefix() {
    let s = sim(0);
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    t.rx(&[
        "backend",
        "add",
        "s",
        &format!("sim::{}", s.project_url("demo")),
    ])
    .ok();
    t.rx(&["sync", "--backend", "s"]).ok();
    let by_hash = t.json(&["issue", "show", "#1"]);
    let id = by_hash["id"].as_str().expect("id").to_owned();
    assert_eq!(by_hash["trackers"][0]["ref"], "s#1");
    let url = by_hash["trackers"][0]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(url, format!("{}/projects/demo/issues/1", s.base_url()));
    for name in ["1", "s#1", url.as_str(), &id[..8]] {
        assert_eq!(
            t.json(&["issue", "show", name])["id"],
            id.as_str(),
            "{name}"
        );
    }
    let text = t.rx(&["issue", "show", "#1"]).ok().stdout;
    assert!(text.contains(&format!("tracker:   s#1  {url}")), "{text}");
    let list = t.rx(&["issue", "list", "--state", "all"]).ok().stdout;
    assert!(list.contains("  s#1 "), "{list}");
    t.rx(&["issue", "show", "#999"]).code(3);
    t.rx(&["issue", "show", "nope#1"]).code(3);
    // Every command that names an issue takes them.
    t.rx(&["issue", "label", "s#1", "triaged"]).ok();
    t.rx(&["log", "#1"]).ok();
}

// ------------------------------------------- 5. the editor

fn editor_script(t: &TestRepo, name: &str, body: &str) -> String {
    let path = t.home().join(format!("{name}.sh"));
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write editor");
    std::process::Command::new("chmod")
        .args(["+x", &path.to_string_lossy()])
        .status()
        .expect("chmod");
    path.to_string_lossy().into_owned()
}

fn rx_env(t: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> crate::support::Run {
    let mut cmd = t.reposix();
    cmd.args(["--actor", "tester"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    t.run(cmd)
}

#[test]
fn the_editor_writes_new_issues_edits_and_comments_and_empty_aborts() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    // The editor replaces the text above the scissors (the help below stays).
    let writes = editor_script(
        &t,
        "writes",
        "f=\"$1\"; { printf 'From the editor\\n\\nBody line\\n'; sed -n '/>8/,$p' \"$f\"; } > \"$f.new\" && mv \"$f.new\" \"$f\"",
    );
    let run = rx_env(&t, &["--json", "issue", "new"], &[("EDITOR", &writes)]).ok();
    let id = run.data()["issue"].as_str().expect("id").to_owned();
    let s = t.show(&id);
    assert_eq!(s["title"], "From the editor");
    assert_eq!(s["body"], "Body line\n");
    // VISUAL wins over EDITOR; edit opens on the current text.
    let appends = editor_script(&t, "appends", "sed -i '1s/$/ (edited)/' \"$1\"");
    rx_env(
        &t,
        &["issue", "edit", &id],
        &[("VISUAL", &appends), ("EDITOR", "false")],
    )
    .ok();
    assert_eq!(t.show(&id)["title"], "From the editor (edited)");
    rx_env(&t, &["issue", "comment", &id], &[("EDITOR", &writes)]).ok();
    let s = t.show(&id);
    assert_eq!(
        s["comments"][0]["body"], "From the editor\n\nBody line",
        "{s}"
    );
    // `-` reads stdin.
    let mut cmd = t.reposix();
    cmd.args(["--actor", "tester", "issue", "comment", &id, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"piped remark\n")
            .expect("write");
    }
    assert!(child.wait().expect("wait").success());
    assert_eq!(t.show(&id)["comments"][1]["body"], "piped remark\n");
    // An editor that leaves nothing aborts, and nothing is written.
    let empties = editor_script(&t, "empties", ": > \"$1\"");
    let run = rx_env(&t, &["issue", "new"], &[("EDITOR", &empties)]).code(7);
    assert!(run.stderr.contains("aborted"), "{}", run.stderr);
    assert_eq!(t.json(&["issue", "list"])["total"], 1);
    // No editor at all: a usage error that says what to do.
    let run = t.rx(&["issue", "new"]).code(2);
    assert!(run.stderr.contains("EDITOR"), "{}", run.stderr);
    // git's core.editor is used too.
    t.git(&["config", "core.editor", &writes]);
    t.rx(&["issue", "new"]).ok();
}

// ------------------------------------------- 6. --json envelope and fields

#[test]
fn json_fields_select_and_usage_errors_keep_the_envelope() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    t.new_issue("one", &["-l", "bug"]);
    let run = t.rx(&["--json=title,labels", "issue", "list"]).ok();
    let data = run.data();
    assert_eq!(
        data["issues"][0],
        serde_json::json!({"title": "one", "labels": ["bug"]})
    );
    assert_eq!(data["total"], 1);
    let run = t.rx(&["--json=nope", "issue", "list"]).code(2);
    assert!(run.envelope()["error"]["hint"]
        .as_str()
        .expect("hint")
        .contains("title"));
    let run = t.rx(&["--json", "issue", "frobnicate"]).code(2);
    assert_eq!(run.envelope()["ok"], false);
    let run = t.rx(&["--json=id", "issue", "frobnicate"]).code(2);
    assert_eq!(run.envelope()["error"]["kind"], "usage");
}

// ------------------------------------------- 7-9. dates, queries, limits

#[test]
fn queries_filter_negate_and_sort_on_the_index() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    t.new_issue("Crash on start", &["-l", "bug", "-a", "tester"]);
    t.new_issue("Crash on exit", &["-l", "bug", "-l", "wontfix"]);
    t.new_issue("Docs typo", &["-l", "docs"]);
    let closed = t.new_issue("Old crash", &["-l", "bug"]);
    t.rx(&["issue", "close", &closed]).ok();
    let titles = |q: &str| -> Vec<String> {
        t.json(&["issue", "list", q])["issues"]
            .as_array()
            .expect("issues")
            .iter()
            .map(|i| i["title"].as_str().expect("title").to_owned())
            .collect()
    };
    assert_eq!(titles("label:bug -label:wontfix"), ["Crash on start"]);
    assert_eq!(titles("assignee:me"), ["Crash on start"]);
    assert_eq!(
        titles("status:all \"crash\" sort:title-asc"),
        ["Crash on exit", "Crash on start", "Old crash"]
    );
    assert_eq!(titles("status:closed"), ["Old crash"]);
    assert_eq!(
        titles("author:tester updated:>2000-01-01 docs"),
        ["Docs typo"]
    );
    assert!(titles("updated:<2000-01-01").is_empty());
    // Flags are sugar for terms.
    let flags = t.json(&["issue", "list", "-l", "bug", "--state", "all"]);
    assert_eq!(flags["total"], 3);
    let run = t.rx(&["issue", "list", "status:nope"]).code(2);
    assert!(run.stderr.contains("status:nope"), "{}", run.stderr);
    let run = t.rx(&["issue", "list", "label:none-such"]).ok();
    assert!(run.stdout.starts_with("no issues match"), "{}", run.stdout);
}

#[test]
fn lists_show_30_of_n_with_totals_and_dates_in_rfc3339() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let run = t.rx(&["issue", "list"]).ok();
    assert!(run.stdout.starts_with("no issues yet"), "{}", run.stdout);
    for i in 0..32 {
        t.rx(&["issue", "new", &format!("issue {i}")]).ok();
    }
    let run = t.rx(&["issue", "list"]).ok();
    assert_eq!(run.stdout.lines().count(), 31, "{}", run.stdout);
    assert!(run.stdout.ends_with("30 of 32 shown (--limit 0 for all)\n"));
    let all = t.json(&["issue", "list", "--limit", "0"]);
    assert_eq!(all["issues"].as_array().expect("issues").len(), 32);
    assert_eq!(all["total"], 32);
    let at = all["issues"][0]["updated_at"].as_str().expect("updated_at");
    assert!(reposix::time::parse_millis(at).is_some(), "{at}");
    // Off a terminal, times are RFC 3339; on one, relative and coloured
    // unless NO_COLOR.
    assert!(run.stdout.lines().next().expect("line").ends_with('Z'));
    let (code, shown) = on_tty(
        &t,
        &["issue", "list", "--limit", "1"],
        &[("REPOSIX_PAGER", "")],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("just now"), "{shown:?}");
    assert!(shown.contains("\x1b[32mopen"), "{shown:?}");
    let (_, plain) = on_tty(
        &t,
        &["issue", "list", "--limit", "1"],
        &[("REPOSIX_PAGER", ""), ("NO_COLOR", "1")],
    );
    assert!(!plain.contains("\x1b[32m"), "{plain:?}");
    // The pager gets the output on a terminal.
    let (_, paged) = on_tty(
        &t,
        &["issue", "list", "--limit", "1"],
        &[("REPOSIX_PAGER", "sed 's/^/PAGED: /'")],
    );
    assert!(paged.contains("PAGED: "), "{paged:?}");
    let log = t.json(&["log", all["issues"][0]["id"].as_str().expect("id")]);
    assert!(log[0]["at"].as_str().expect("at").ends_with('Z'));
}

// ------------------------------------------- 10. identity from git

#[test]
fn the_actor_defaults_to_gits_identity_and_attach_does_not_half_register() {
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let mut cmd = t.reposix();
    cmd.args(["issue", "new", "no one"]);
    t.run(cmd).code(8);
    // attach without an actor registers nothing.
    let mut cmd = t.reposix();
    cmd.args(["attach", "sim::http://127.0.0.1:9/demo"]);
    t.run(cmd).code(8);
    assert!(t
        .json(&["backend", "list"])
        .as_array()
        .expect("rows")
        .is_empty());
    t.git(&["config", "user.email", "ann@example.com"]);
    let mut cmd = t.reposix();
    cmd.args(["--json", "issue", "new", "by git"]);
    let id = t.run(cmd).ok().data()["issue"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(t.show(&id)["created_by"], "ann@example.com");
}

// ------------------------------------------- 13. tooling is not in the product

#[test]
fn bench_commands_are_not_in_the_default_binary() {
    let t = TestRepo::new();
    let help = t.rx(&["--help"]).ok().stdout;
    assert!(!help.contains("bench"), "{help}");
    t.rx(&["bench"]).code(2);
}
