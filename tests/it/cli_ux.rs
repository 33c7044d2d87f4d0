//! The command line people and agents reach for (issue 13): each test pins
//! one habit, through the real binary. A terminal is a pty made by
//! `script(1)`; an editor is a shell script set as `EDITOR`.

use std::time::{Duration, Instant};

use crate::support::{TestRepo, BIN};

fn sim(rate_limit: u32) -> reposix::sim::SimHandle {
    let seed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reposix-sim-seed.json"
    );
    reposix::sim::start(reposix::sim::SimConfig {
        seed_file: Some(seed.into()),
        rate_limit,
        ..reposix::sim::SimConfig::default()
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
fn dry_run_prints_creates_updates_and_comments_and_changes_nothing() {
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
    t.rx(&["issue", "comment", &first, "a remark"]).ok();
    t.new_issue("born here", &[]);
    let before = reposix_refs(&t);
    let run = t.rx(&["sync", "--backend", "s", "--dry-run"]).ok();
    assert!(
        run.stdout.contains("would create on s: born here"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(": title\n") && run.stdout.contains("would comment on s#"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("would export to s: 1 created, 1 updated, 1 comments"));
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
