//! The basics of a command line (issue 13, points 12 and the snapshots):
//! completions, man pages, `--help` examples, `-v`/`RUST_LOG` logging with
//! secrets redacted, `doctor` and `doctor --fix`, and snapshots of the
//! human output (`insta`; volatile parts filtered) so that changes to it
//! are reviewed. Point 11 (mirror default branch, rejected markdown edits
//! naming file and line) is pinned in `tests/it/mirror.rs`.

use crate::support::{Run, TestRepo};

fn sim() -> reposix_sim::SimHandle {
    reposix_sim::start(reposix_sim::SimConfig {
        rate_limit: 0,
        ..reposix_sim::SimConfig::default()
    })
    .expect("sim starts on loopback")
}

fn spec(s: &reposix_sim::SimHandle) -> String {
    format!("sim::{}", s.project_url("demo"))
}

/// `reposix ARGS…` with extra environment, as the test actor.
fn rx_env(t: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = t.reposix();
    cmd.args(["--actor", "tester"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    t.run(cmd)
}

#[test]
fn completions_print_a_script_each_shell_accepts() {
    let t = TestRepo::new();
    let bash = t.rx(&["completions", "bash"]).ok().stdout;
    assert!(bash.contains("complete -F"), "{bash}");
    assert!(bash.contains("mirror") && bash.contains("doctor"));
    let file = t.home().join("reposix.bash");
    std::fs::write(&file, &bash).expect("write");
    let check = t.run({
        let mut c = t.command("bash");
        c.arg("-n").arg(&file);
        c
    });
    check.ok();
    let zsh = t.rx(&["completions", "zsh"]).ok().stdout;
    assert!(zsh.starts_with("#compdef reposix"), "{zsh}");
    let fish = t.rx(&["completions", "fish"]).ok().stdout;
    assert!(fish.contains("complete -c reposix"), "{fish}");
    t.rx(&["completions", "tcsh"]).code(2);
}

#[test]
fn man_writes_a_page_per_command_with_its_examples() {
    let t = TestRepo::new();
    let dir = t.home().join("man1");
    let data = t.json(&["man", &dir.to_string_lossy()]);
    let files: Vec<&str> = data["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("path"))
        .collect();
    for page in ["reposix.1", "reposix-issue-list.1", "reposix-doctor.1"] {
        assert!(
            files.iter().any(|f| f.ends_with(&format!("/{page}"))),
            "{page} in {files:?}"
        );
    }
    assert!(!files.iter().any(|f| f.contains("bench")), "{files:?}");
    let list = std::fs::read_to_string(dir.join("reposix-issue-list.1")).expect("page");
    assert!(list.starts_with(".ie") || list.contains(".TH"), "{list}");
    assert!(list.contains("Examples:"), "{list}");
    assert!(list.contains("label:bug"), "{list}");
}

/// The subcommand names a `--help` lists under `Commands:`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|n| n != "help")
        .collect()
}

#[test]
fn every_command_help_shows_examples() {
    let t = TestRepo::new();
    let mut todo = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = t.rx(&args).ok().stdout;
        let subs = subcommands(&help);
        if !path.is_empty() {
            seen += 1;
            assert!(
                help.contains("Examples:\n  reposix "),
                "reposix {} --help has no examples:\n{help}",
                path.join(" ")
            );
        }
        for s in subs {
            let mut next = path.clone();
            next.push(s);
            todo.push(next);
        }
    }
    assert!(seen >= 40, "walked only {seen} commands");
}

#[test]
fn verbose_logs_http_requests_and_git_invocations_with_secrets_masked() {
    let s = sim();
    let t = TestRepo::new();
    t.rx(&["backend", "add", "sot", &spec(&s)]).ok();
    let run = t
        .rx(&["-v", "sync", "--backend", "sot", "--import-only"])
        .ok();
    let http = run
        .stderr
        .lines()
        .find(|l| l.contains("HTTP GET http://127.0.0.1:") && l.contains("-> 200"))
        .unwrap_or_else(|| panic!("an HTTP line in:\n{}", run.stderr));
    assert!(
        http.contains("DEBUG") && http.contains("elapsed_ms="),
        "{http}"
    );
    // Without -v or RUST_LOG: silent.
    let quiet = t.rx(&["sync", "--backend", "sot", "--import-only"]).ok();
    assert!(!quiet.stderr.contains("DEBUG"), "{}", quiet.stderr);

    // A git invocation whose arguments hold a known secret (the
    // repository's path does here): logged, the secret masked.
    let secret = "ghp-zq-secret-7a9b3c";
    let dir = t.home().join(format!("work-{secret}"));
    t.git(&["init", "-q", &dir.to_string_lossy()]);
    let mut cmd = t.command(crate::support::BIN);
    cmd.arg("-C")
        .arg(&dir)
        .args(["--actor", "tester", "doctor"])
        .env("RUST_LOG", "reposix=debug")
        .env("GITHUB_TOKEN", secret);
    let run = t.run(cmd);
    let git = run
        .stderr
        .lines()
        .find(|l| l.contains("git --git-dir") && l.contains(" version: exit status: 0"))
        .unwrap_or_else(|| panic!("a git line in:\n{}", run.stderr));
    assert!(git.contains("work-***"), "{git}");
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
    assert!(!run.stdout.contains(secret), "{}", run.stdout);
}

#[test]
fn doctor_reports_git_actor_backends_credentials_index_and_mirror_lag() {
    let s = sim();
    let t = TestRepo::new();
    t.rx(&["backend", "add", "sot", &spec(&s)]).ok();
    t.rx(&["backend", "add", "gh", "github::owner/repo"]).ok();
    t.new_issue("One", &["-b", "x"]);
    let mirror = t.home().join("m.git");
    t.git(&["init", "-q", "--bare", &mirror.to_string_lossy()]);
    t.json(&[
        "mirror",
        "push",
        &mirror.to_string_lossy(),
        "--backend",
        "sot",
    ]);
    t.new_issue("Two", &[]);
    // The mirror renders the issues of its tracker: export Two there.
    t.rx(&["sync", "--backend", "sot", "--yes"]).ok();

    let secret = "ghp_doctor_never_printed_42";
    let run = rx_env(&t, &["--json", "doctor"], &[("GITHUB_TOKEN", secret)]).ok();
    assert!(!run.stdout.contains(secret));
    let data = run.data();
    assert!(data["git"]["version"]
        .as_str()
        .is_some_and(|v| v.starts_with('2')));
    assert_eq!(data["actor"]["actor"], "tester");
    let backends = data["backends"].as_array().expect("backends");
    assert_eq!(backends.len(), 2, "{data}");
    let gh = backends.iter().find(|b| b["name"] == "gh").expect("gh");
    assert_eq!(gh["credentials"], "GITHUB_TOKEN", "{data}");
    let sot = backends.iter().find(|b| b["name"] == "sot").expect("sot");
    assert_eq!(sot["origin_allowed"], true, "{data}");
    assert_eq!(sot["recorded_origin"], sot["origin"], "{data}");
    assert_eq!(data["index"]["issues"], 2, "{data}");
    assert_eq!(data["index"]["damaged"], 0, "{data}");
    let mirrors = data["mirrors"].as_array().expect("mirrors");
    assert_eq!(mirrors.len(), 1, "{data}");
    assert_eq!(mirrors[0]["in_step"], false, "{data}");
    assert!(mirrors[0]["warning"]
        .as_str()
        .is_some_and(|w| w.contains("reposix mirror push")));
    assert_eq!(data["problems"], 0);

    // Without an actor or a git identity: a problem, exit 7.
    let mut cmd = t.reposix();
    cmd.args(["doctor"]);
    let run = t.run(cmd).code(7);
    assert!(run.stdout.contains("✗ actor:"), "{}", run.stdout);
}

#[test]
fn doctor_fix_records_an_attached_trackers_origin() {
    let s = sim();
    let t = TestRepo::new();
    t.rx(&["backend", "add", "sot", &spec(&s)]).ok();
    t.rx(&["backend", "add", "gh", "github::owner/repo"]).ok();
    // As a backend attached before `backend add` recorded origins.
    t.git(&["config", "--unset-all", "reposix.backend.gh.allowedOrigin"]);
    let run = t.rx(&["doctor"]).code(7);
    assert!(run.stdout.contains("not allowed"), "{}", run.stdout);
    assert!(run.stderr.contains("doctor --fix"), "{}", run.stderr);
    let run = t.rx(&["doctor", "--fix"]).ok();
    assert!(
        run.stdout
            .contains("fixed: recorded https://api.github.com as the allowed origin of gh"),
        "{}",
        run.stdout
    );
    assert!(t
        .git(&["config", "reposix.backend.gh.allowedOrigin"])
        .starts_with("https://api.github.com"));
    let run = t.rx(&["doctor", "--fix"]).ok();
    assert!(run.stdout.contains("nothing to fix"), "{}", run.stdout);
}

/// Human output with its volatile parts replaced: the given ids (and
/// their prefixes of 6 characters or more), event and comment hashes (12
/// hex digits), RFC 3339 times, loopback ports, the temporary paths.
fn normalize(text: &str, t: &TestRepo, ids: &[(&str, &str)]) -> String {
    let mut s = text
        .replace(&t.path().to_string_lossy().into_owned(), "<repo>")
        .replace(&t.home().to_string_lossy().into_owned(), "<home>");
    for (id, name) in ids {
        for len in (6..=id.len()).rev() {
            s = s.replace(&id[..len], name);
        }
    }
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..chars.len().min(i + 20)].iter().collect();
        let is_time = rest.len() == 20
            && rest.char_indices().all(|(k, c)| match k {
                4 | 7 => c == '-',
                10 => c == 'T',
                13 | 16 => c == ':',
                19 => c == 'Z',
                _ => c.is_ascii_digit(),
            });
        if is_time {
            out.push_str("<time>");
            i += 20;
            continue;
        }
        let word_start = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let hex12 = word_start
            && chars.len() >= i + 12
            && chars[i..i + 12]
                .iter()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(c))
            && chars.get(i + 12).is_none_or(|c| !c.is_ascii_alphanumeric());
        if hex12 {
            out.push_str("<hash>");
            i += 12;
            continue;
        }
        if rest.starts_with("127.0.0.1:") {
            out.push_str("127.0.0.1:<port>");
            i += 10;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn snapshot_repo() -> (TestRepo, Vec<(String, String)>) {
    let t = TestRepo::new();
    let a = t.new_issue("Crash on start", &["-b", "It crashes.\n", "-l", "bug"]);
    let b = t.new_issue("Docs: explain sync", &["-l", "docs"]);
    t.rx(&["issue", "comment", &a, "Reproduced on 1.2"]).ok();
    t.rx(&["issue", "close", &b]).ok();
    (t, vec![(a, "<id-a>".into()), (b, "<id-b>".into())])
}

fn ids(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[test]
fn snapshot_issue_list_show_and_log() {
    let (t, names) = snapshot_repo();
    let ids = ids(&names);
    let list = t.rx(&["issue", "list", "status:all"]).ok().stdout;
    insta::assert_snapshot!("issue_list", normalize(&list, &t, &ids));
    let show = t.rx(&["issue", "show", ids[0].0]).ok().stdout;
    insta::assert_snapshot!("issue_show", normalize(&show, &t, &ids));
    let log = t.rx(&["log", ids[0].0]).ok().stdout;
    insta::assert_snapshot!("issue_log", normalize(&log, &t, &ids));
    let empty = TestRepo::new();
    let none = empty.rx(&["issue", "list"]).ok().stdout;
    insta::assert_snapshot!("issue_list_empty", normalize(&none, &empty, &[]));
}

#[test]
fn snapshot_backend_list_and_doctor() {
    let s = sim();
    let t = TestRepo::new();
    t.rx(&["backend", "add", "sot", &spec(&s)]).ok();
    let list = t.rx(&["backend", "list"]).ok().stdout;
    insta::assert_snapshot!("backend_list", normalize(&list, &t, &[]));
    let doctor = t.rx(&["doctor"]).ok().stdout;
    // The git version and the index's timing vary by host and run.
    let doctor: String = doctor
        .lines()
        .map(|l| {
            if l.starts_with("✓ git ") {
                "✓ git <version>".to_owned()
            } else if let Some(i) = l.find(" re-folded, ") {
                format!("{} re-folded, <ms> ms", &l[..i])
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("doctor", normalize(&doctor, &t, &[]));
}
