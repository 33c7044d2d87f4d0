//! Hostile input (issue 10): clocks, sizes, control characters, secrets
//! echoed by trackers, and envelopes that must agree with exit codes. Each
//! test pins one defect found by the adversarial pass and failed before
//! its fix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use reposix::event::{ActorId, Event, IssueId, Op, EVENT_FORMAT_VERSION};
use reposix::store::EventStore;

use crate::support::TestRepo;

/// Append an event to an issue the way a hostile remote writer would:
/// straight into the log, on top of the current heads.
pub fn append_raw(t: &TestRepo, issue: &str, lamport: u64, op: Op) -> String {
    let repo = t.open();
    let id: IssueId = issue.parse().expect("issue id");
    let log = repo.load(id).expect("loads");
    let e = Event {
        v: EVENT_FORMAT_VERSION,
        issue: id,
        actor: ActorId::new("mallory").expect("actor"),
        lamport,
        wall_ms: 0,
        parents: log.events.heads(),
        op,
    };
    let (eid, bytes) = e.seal();
    repo.store()
        .append(id, &[(eid, bytes)], "hostile")
        .expect("the store appends sealed events");
    eid.to_hex()
}

/// Regression (issue 10, defect 1): one event with `lamport = u64::MAX`
/// made `max + 1` wrap to 0, so every later title, status or field edit
/// exited 0 and never took effect; fsck did not flag it.
#[test]
fn a_hostile_lamport_clock_does_not_freeze_an_issue() {
    let t = TestRepo::new();
    let id = t.new_issue("Original", &["-l", "bug"]);
    let bad = append_raw(
        &t,
        &id,
        u64::MAX,
        Op::SetTitle {
            title: "pwned".into(),
        },
    );
    // The invalid event is ignored by the fold...
    assert_eq!(t.show(&id)["title"], "Original");
    // ...and later writes take effect.
    t.rx(&["issue", "edit", &id, "--title", "Renamed"]).ok();
    t.rx(&["issue", "status", &id, "in_progress"]).ok();
    t.rx(&["issue", "edit", &id, "--field", "priority=high"])
        .ok();
    let shown = t.show(&id);
    assert_eq!(shown["title"], "Renamed", "{shown}");
    assert_eq!(shown["status"], "in_progress", "{shown}");
    assert_eq!(shown["fields"]["priority"], "high", "{shown}");
    // fsck names the issue, the event and why.
    let run = t.rx(&["fsck"]).code(5);
    assert!(run.stdout.contains(&id), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("invalid event {bad}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("lamport"), "{}", run.stdout);
    // The log shows it, marked.
    let log = t.rx(&["log", &id]).ok();
    assert!(log.stdout.contains("[invalid"), "{}", log.stdout);
}

/// A clock jump below the top is caught too: an event over a chain is
/// bounded by its ancestors, not by how many events the issue has.
#[test]
fn an_event_jumping_its_clock_by_two_is_damage_too() {
    let t = TestRepo::new();
    let id = t.new_issue("Original", &[]);
    t.rx(&["issue", "comment", &id, "one"]).ok();
    // Heads have lamport 2; the honest next value is 3.
    append_raw(
        &t,
        &id,
        4,
        Op::SetTitle {
            title: "jumped".into(),
        },
    );
    assert_eq!(t.show(&id)["title"], "Original");
    t.rx(&["fsck"]).code(5);
}

/// `n` bytes of body text.
fn big_text(n: usize) -> String {
    "0123456789abcdef\n".repeat(n / 17 + 1)[..n].to_owned()
}

/// Regression (issue 10, defect 2): a 5 MB body was written (exit 0), the
/// event was over the reader's 4 MiB limit, and the whole issue, earlier
/// comments included, became unreadable and unwritable.
#[test]
fn an_oversized_body_is_refused_and_the_issue_stays_readable() {
    let t = TestRepo::new();
    let id = t.new_issue("Keep me", &[]);
    t.rx(&["issue", "comment", &id, "an earlier comment"]).ok();
    let tip = t.git(&["rev-parse", &crate::support::issue_ref(&id)]);
    let file = t.home().join("big.md");
    std::fs::write(&file, big_text(5 * 1024 * 1024)).expect("write");
    let file = file.to_str().expect("UTF-8");

    let run = t.rx(&["issue", "edit", &id, "--body-file", file]).code(7);
    assert!(run.stderr.contains("1048576-byte limit"), "{}", run.stderr);
    let run = t.rx(&["issue", "new", "Big", "--body-file", file]).code(7);
    assert!(run.stderr.contains("limit"), "{}", run.stderr);
    // From stdin too, without reading it all.
    let mut cmd = t.reposix();
    cmd.args([
        "--actor",
        "tester",
        "issue",
        "edit",
        &id,
        "--body-file",
        "-",
    ])
    .stdin(std::fs::File::open(file).expect("open"));
    t.run(cmd).code(7);

    // Nothing was written; the issue reads and takes writes as before.
    assert_eq!(t.git(&["rev-parse", &crate::support::issue_ref(&id)]), tip);
    let shown = t.show(&id);
    assert_eq!(shown["comments"][0]["body"], "an earlier comment");
    t.rx(&["issue", "comment", &id, "a later comment"]).ok();
    t.rx(&["fsck"]).ok();
}

/// The store refuses an event a reader would reject, whoever the writer:
/// the CLI's limits are not the only line of defence.
#[test]
fn the_store_refuses_an_event_over_the_reader_limit() {
    let t = TestRepo::new();
    let id = t.new_issue("Keep me", &[]);
    let repo = t.open();
    let issue: IssueId = id.parse().expect("id");
    let log = repo.load(issue).expect("loads");
    let e = Event {
        v: EVENT_FORMAT_VERSION,
        issue,
        actor: ActorId::new("importer").expect("actor"),
        lamport: log.events.max_lamport() + 1,
        wall_ms: 0,
        parents: log.events.heads(),
        op: Op::AddComment {
            body: big_text(5 * 1024 * 1024),
        },
    };
    let (eid, bytes) = e.seal();
    let err = repo
        .store()
        .append(issue, &[(eid, bytes)], "too big")
        .expect_err("refused");
    assert!(
        reposix::error_chain(&err).contains("4194304 byte limit"),
        "{err}"
    );
    assert_eq!(t.show(&id)["title"], "Keep me");
}

const HOSTILE_TITLE: &str = "evil \x1b]0;pwned\x07 \x1b[2J \x08\x7f \u{202e}txt.exe \u{9b}31m";

fn assert_no_raw_controls(what: &str, text: &str) {
    for c in ['\x1b', '\x07', '\x08', '\x7f', '\u{202e}', '\u{9b}', '\r'] {
        assert!(
            !text.contains(c),
            "{what} printed {c:?} raw:\n{}",
            text.escape_debug()
        );
    }
}

/// Regression (issue 10, defect 6): titles, labels, comments and fields
/// holding ESC, BEL, BS, DEL or U+202E were printed raw by `issue list`,
/// `show` and `log` (window titles, hyperlinks, screen clears).
#[test]
fn text_output_shows_control_characters_escaped_and_json_stays_exact() {
    let t = TestRepo::new();
    let id = t.new_issue(
        HOSTILE_TITLE,
        &[
            "-b",
            "body \x1b[31mred\x1b[0m\nline two",
            "-l",
            "a\u{202e}b",
        ],
    );
    t.rx(&["issue", "comment", &id, "comment \x1b]8;;http://x\x07link"])
        .ok();
    t.rx(&["issue", "edit", &id, "--field", "f=\x1b[1mv"]).ok();
    for args in [
        vec!["issue", "list"],
        vec!["issue", "show", &id],
        vec!["log", &id],
    ] {
        let run = t.rx(&args).ok();
        assert_no_raw_controls(&args.join(" "), &run.stdout);
        assert!(run.stdout.contains("\\x1b"), "{}", run.stdout);
    }
    let show = t.rx(&["issue", "show", &id]).ok().stdout;
    assert!(show.contains("\\u{202e}txt.exe"), "{show}");
    assert!(
        show.contains("line two\n"),
        "bodies keep their lines: {show}"
    );
    // A message that quotes hostile input is escaped on stderr too.
    let run = t.rx(&["issue", "show", "\x1b[2J"]).code(3);
    assert_no_raw_controls("error", &run.stderr);
    // JSON is exact.
    assert_eq!(t.show(&id)["title"], HOSTILE_TITLE);
    let list = t.json(&["issue", "list"]);
    assert_eq!(list["issues"][0]["title"], HOSTILE_TITLE);
}

/// `show` writes a long page in pieces (it is never held whole when stdout
/// is not a terminal): each piece is masked and escaped on its own, so a
/// secret or a control character in the fourth of four 100 KB comments,
/// past the first piece, is masked and escaped like one in the first.
#[test]
fn a_long_page_is_masked_and_escaped_piece_by_piece() {
    let t = TestRepo::new();
    let id = t.new_issue("Long", &[]);
    let secret = "ghp-zq-secret-4d5e6f";
    let filler = "word ".repeat(20_000);
    for i in 0..4 {
        let text = format!("comment {i}\n{filler}\ntoken {secret} bell \x07 end {i}");
        t.rx(&["issue", "comment", &id, &text]).ok();
    }
    let mut cmd = t.command(crate::support::BIN);
    cmd.args(["--actor", "tester", "issue", "show", &id])
        .env("GITHUB_TOKEN", secret);
    let run = t.run(cmd);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.len() > 400_000, "{} bytes", run.stdout.len());
    assert!(!run.stdout.contains(secret), "the secret is masked");
    assert_no_raw_controls("show", &run.stdout);
    for i in 0..4 {
        assert!(
            run.stdout.contains(&format!("bell \\x07 end {i}\n")),
            "comment {i}"
        );
    }
    assert_eq!(run.stdout.matches("token ***").count(), 4);
    assert!(run.stdout.ends_with('\n'));
}

/// A fake GitHub API that answers every request with `status` and a body
/// echoing the token it was sent (as some trackers and proxies do).
struct EchoTracker {
    url: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoTracker {
    fn start(status: u16) -> EchoTracker {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", server.server_addr());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let Ok(Some(mut req)) = server.recv_timeout(std::time::Duration::from_millis(20))
                else {
                    continue;
                };
                let auth = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_owned())
                    .unwrap_or_default();
                let mut sink = Vec::new();
                let _ = req.as_reader().read_to_end(&mut sink);
                let token = auth.split_whitespace().last().unwrap_or("").to_owned();
                let body = format!(
                    "{{\"message\":\"Bad credentials: token {token} is revoked (header: {auth})\"}}"
                );
                let resp = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(
                        tiny_http::Header::from_bytes("Content-Type", "application/json")
                            .expect("header"),
                    );
                let _ = req.respond(resp);
            }
        });
        EchoTracker {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Regression (issue 10, defect 10): a token echoed by a tracker's error
/// body was printed on stderr and in `--json` output.
#[test]
fn a_token_echoed_by_a_tracker_is_never_printed() {
    const TOKEN: &str = "ghp_EchoedT0kenNeverPrinted42";
    let fake = EchoTracker::start(422);
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    t.rx(&["backend", "add", "gh", "github::octo/widgets"]).ok();
    for json in [false, true] {
        let mut cmd = t.reposix();
        cmd.env("GITHUB_TOKEN", TOKEN)
            .env("REPOSIX_GITHUB_API", &fake.url)
            .args(["--actor", "tester"]);
        if json {
            cmd.arg("--json");
        }
        cmd.args(["sync", "--backend", "gh", "--yes"]);
        let run = t.run(cmd);
        assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(all.contains("Bad credentials"), "{all}");
        assert!(
            !all.contains(TOKEN) && !all.contains("T0kenNever"),
            "token printed:\n{}",
            all.replace(TOKEN, "<TOKEN>")
        );
        if json {
            let env = run.envelope();
            assert_eq!(env["ok"], false);
        }
    }
}

fn sim_with_body_limit(limit: usize) -> reposix_sim::SimHandle {
    reposix_sim::start(reposix_sim::SimConfig {
        rate_limit: 0,
        body_limit: limit,
        ..reposix_sim::SimConfig::default()
    })
    .expect("sim starts")
}

/// Regression (issue 10, defect 11): `sync --backend --json` printed an
/// `ok: true` envelope, then a second `ok: false` one, and exited 11.
#[test]
fn a_failed_export_prints_one_envelope_that_agrees_with_the_exit_code() {
    let sim = sim_with_body_limit(2048);
    let t = TestRepo::new();
    t.rx(&["init"]).ok();
    let spec = format!("sim::{}", sim.project_url("demo"));
    t.rx(&["backend", "add", "demo", &spec]).ok();
    t.new_issue("Fits", &["-b", "short"]);
    // The tracker refuses this one (413: its body is over the limit).
    t.new_issue("Too big for the tracker", &["-b", &big_text(8000)]);
    let run = t
        .rx(&["--json", "sync", "--backend", "demo", "--yes"])
        .code(11);
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "one envelope:\n{}",
        run.stdout
    );
    let env = run.envelope();
    assert_eq!(env["ok"], false, "{env}");
    assert_eq!(env["error"]["exit"], 11, "{env}");
    assert_eq!(
        env["data"]["export"]["failed"]
            .as_array()
            .expect("failed")
            .len(),
        1,
        "{env}"
    );
}

/// Every failing command prints one envelope with `ok: false` and its exit
/// code; every succeeding one `ok: true` (usage errors included).
#[test]
fn ok_is_false_exactly_when_the_exit_code_is_not_zero() {
    let t = TestRepo::new();
    let a = t.new_issue("a1", &[]);
    t.new_issue("a2", &[]);
    let runs = [
        (vec!["--json", "issue", "show", "ffffffff"], 3),
        (vec!["--json", "issue", "show", ""], 3),
        (vec!["--json", "issue", "new", " "], 7),
        (vec!["--json", "issue", "label", &a, "has space"], 7),
        (vec!["--json", "issue", "status", &a, "nope"], 2),
        (vec!["--json", "issue", "frobnicate"], 2),
        (vec!["--json", "fsck"], 0),
        (vec!["--json", "issue", "list"], 0),
    ];
    for (args, code) in runs {
        let run = t.rx(&args).code(code);
        assert_eq!(
            run.stdout.lines().count(),
            1,
            "{}: {}",
            run.what,
            run.stdout
        );
        let env = run.envelope();
        assert_eq!(env["ok"], code == 0, "{}: {env}", run.what);
        if code != 0 {
            assert_eq!(env["error"]["exit"], code, "{}: {env}", run.what);
        }
    }
}
