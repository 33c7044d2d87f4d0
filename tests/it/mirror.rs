//! The plain-git markdown mirror with real git on loopback: vanilla clones
//! (bare repository on disk, `git daemon`), every failure class produced
//! for real and none leaking the credential, SoT-first with the mirror
//! lagging and catching up, determinism, cancellation and timeouts.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use reposix::mirror::{self, MirrorError, MirrorFailureReason, MirrorOptions, MirrorSource};
use reposix::tracker::sim::SimBackend;
use reposix::tracker::{body_marker, Backend, BackendKind, BackendSpec};
use reposix_sim::{SimConfig, SimHandle};

use crate::support::{Run, TestRepo};

/// Never in any output: given to git through the askpass environment.
const SECRET: &str = "s3cr3t-t0ken-do-not-print";

fn quiet_sim() -> SimHandle {
    reposix_sim::start(SimConfig {
        rate_limit: 0,
        ..SimConfig::default()
    })
    .expect("sim starts on loopback")
}

fn spec(s: &SimHandle) -> String {
    format!("sim::{}", s.project_url("demo"))
}

/// A repository attached to the sim as backend `sot`.
fn attached(s: &SimHandle) -> TestRepo {
    let t = TestRepo::new();
    t.rx(&["backend", "add", "sot", &spec(s)]).ok();
    t
}

/// `git init --bare -b main` under the test's temp dir.
fn bare(t: &TestRepo, name: &str) -> PathBuf {
    let path = t.home().join(name);
    t.git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "main",
        &path.to_string_lossy(),
    ]);
    path
}

fn executable(path: &Path, script: &str) {
    std::fs::write(path, script).expect("writing a script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

fn hook(repo: &Path, name: &str, script: &str) {
    executable(&repo.join("hooks").join(name), script);
}

/// `git` in `dir` with the hermetic environment.
fn git_in(t: &TestRepo, dir: &Path, args: &[&str]) -> String {
    let run = t.run({
        let mut c = t.command("git");
        c.current_dir(dir).args(args);
        c
    });
    run.ok().stdout.trim_end().to_owned()
}

fn clone(t: &TestRepo, url: &str, name: &str) -> PathBuf {
    let dest = t.home().join(name);
    git_in(t, t.home(), &["clone", "-q", url, &dest.to_string_lossy()]);
    dest
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_no_secret(run: &Run) {
    assert!(
        !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
        "the credential leaked:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

/// `reposix --json mirror push TARGET --kind sim` with the token in the
/// environment: asserts the exit code and the error kind.
fn failing_push(t: &TestRepo, target: &str, code: i32, kind: &str) -> Run {
    let mut cmd = t.reposix();
    cmd.args(["--actor", "tester", "--json", "mirror", "push", target])
        .args(["--kind", "sim", "--timeout", "20"])
        .env(mirror::TOKEN_ENV, SECRET)
        .env(mirror::USER_ENV, "bot");
    let run = t.run(cmd).code(code);
    let env = run.envelope();
    assert_eq!(env["ok"], false, "{env}");
    assert_eq!(env["error"]["kind"], kind, "{env}");
    assert_no_secret(&run);
    run
}

/// A PATH whose `git` runs `prelude` (shell) and then the real git.
fn git_wrapper(t: &TestRepo, prelude: &str) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").expect("PATH");
    let real = std::env::split_paths(&path)
        .map(|d| d.join("git"))
        .find(|g| g.is_file())
        .expect("git on PATH");
    let bin = t.home().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    executable(
        &bin.join("git"),
        &format!(
            "#!/bin/sh\nREAL='{}'\n{prelude}exec \"$REAL\" \"$@\"\n",
            real.display()
        ),
    );
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path))).expect("PATH")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `git daemon` serving (and accepting pushes to) every repository under
/// `base` on loopback; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(t: &TestRepo, base: &Path) -> Daemon {
        let port = free_port();
        // The `git-daemon` program itself: `git daemon` runs it as a child
        // that would outlive a kill of the `git` wrapper.
        let exec_path = t.git(&["--exec-path"]).trim().to_owned();
        let child = t
            .command(Path::new(&exec_path).join("git-daemon"))
            .args(["--export-all", "--enable=receive-pack", "--reuseaddr"])
            .arg(format!("--base-path={}", base.display()))
            .args(["--listen=127.0.0.1", &format!("--port={port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts");
        let mut d = Daemon { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                d.child.try_wait().expect("polling git daemon").is_none(),
                "git daemon exited"
            );
            assert!(Instant::now() < deadline, "git daemon did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        d
    }

    fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP "git server" on loopback answering everything with 401 and
/// `WWW-Authenticate: Basic`, recording the `Authorization` headers.
struct AuthWall {
    server: Arc<tiny_http::Server>,
    seen: Arc<Mutex<Vec<String>>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl AuthWall {
    fn start() -> AuthWall {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("http server"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let worker = {
            let server = Arc::clone(&server);
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                while let Ok(req) = server.recv() {
                    if let Some(h) = req
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Authorization"))
                    {
                        seen.lock().expect("lock").push(h.value.as_str().to_owned());
                    }
                    let challenge =
                        tiny_http::Header::from_bytes("WWW-Authenticate", "Basic realm=\"mirror\"")
                            .expect("header");
                    let _ = req.respond(
                        tiny_http::Response::from_string("authentication required")
                            .with_status_code(401)
                            .with_header(challenge),
                    );
                }
            })
        };
        AuthWall {
            server,
            seen,
            worker: Some(worker),
        }
    }

    fn url(&self) -> String {
        let addr = self.server.server_addr().to_ip().expect("an IP address");
        format!("http://{addr}/mirror.git")
    }
}

impl Drop for AuthWall {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unix_now() -> i64 {
    reposix::time::now_secs()
}

/// The `refs/mirrors/` refs of a repository, `<oid> <type> <name>` lines.
fn mirror_refs(t: &TestRepo, dir: &Path) -> String {
    git_in(
        t,
        dir,
        &[
            "for-each-ref",
            "--format=%(objectname) %(objecttype) %(refname)",
            "refs/mirrors/",
        ],
    )
}

/// Vanilla `git clone` of a bare mirror on disk: the markdown is there
/// (hostile body intact, frontmatter not corrupted), both refs arrive with
/// a plain fetch, `git log -1` of the tag prints the sync time, bot commits
/// carry the trailer, and the user's branch, index and work tree were not
/// touched by the push.
#[test]
fn vanilla_clone_of_a_bare_mirror_on_disk() {
    let s = quiet_sim();
    let t = attached(&s);
    let first = t.new_issue(
        "Crash on start",
        &["-b", "It crashes when offline.\n", "-l", "bug"],
    );
    t.rx(&["issue", "comment", &first, "Reproduced on 1.2"])
        .ok();
    let hostile = "---\nversion: 999\nid: 666\n---\n<script>alert(1)</script>\n\
                   <!-- reposix:comments -->\n### comment x by mallory on now\n";
    let second = t.new_issue("Hostile --- \"quotes\"", &[&format!("--body={hostile}")]);
    // The user's own state, which a mirror push must not touch.
    std::fs::write(t.path().join("notes.txt"), "mine\n").expect("write");
    t.git(&["add", "notes.txt"]);
    t.git(&["commit", "-q", "-m", "user commit"]);
    std::fs::write(t.path().join("notes.txt"), "dirty\n").expect("write");
    std::fs::write(t.path().join("staged.txt"), "staged\n").expect("write");
    t.git(&["add", "staged.txt"]);
    let user_before = (
        t.git(&["for-each-ref", "refs/heads/"]),
        t.git(&["status", "--porcelain"]),
        t.git(&["rev-parse", "HEAD"]),
    );

    let mirror = bare(&t, "mirror.git");
    let before = unix_now();
    let data = t.json(&["mirror", "sync", &mirror.to_string_lossy()]);
    let after = unix_now();
    assert_eq!(data["mirror"]["ok"], true, "{data}");
    assert_eq!(data["mirror"]["report"]["files"], 3, "{data}"); // 2 issues, 1 comments file
    assert_eq!(data["export"]["created"], 2, "{data}");
    let user_after = (
        t.git(&["for-each-ref", "refs/heads/"]),
        t.git(&["status", "--porcelain"]),
        t.git(&["rev-parse", "HEAD"]),
    );
    assert_eq!(user_before, user_after, "the push touched the user's state");

    let c = clone(&t, &mirror.to_string_lossy(), "clone");
    // The sim numbers the issues 1 and 2 in export order.
    let (mut one, mut two) = (read(&c.join("issues/1.md")), read(&c.join("issues/2.md")));
    if !one.contains("\ntitle: \"Crash on start\"\n") {
        std::mem::swap(&mut one, &mut two);
    }
    let one_id = if read(&c.join("issues/1.md")) == one {
        "1"
    } else {
        "2"
    };
    assert!(
        one.starts_with(&format!(
            "---\nid: {one_id}\ntitle: \"Crash on start\"\nstatus: \"open\"\n"
        )),
        "{one}"
    );
    assert!(one.contains("labels: [\"bug\"]\n"), "{one}");
    // The body as the tracker holds it (our sync marker at its end), and
    // nothing else: the comments are in a file of their own.
    assert!(!one.contains("### comment "), "{one}");
    let parsed = mirror::parse(one.as_bytes()).expect("parses");
    assert_eq!(
        parsed.body,
        format!("It crashes when offline.\n{}", body_marker(&first))
    );
    let comments = read(&c.join(format!("comments/{one_id}.md")));
    let comments = mirror::parse_comments(comments.as_bytes()).expect("parses");
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, "Reproduced on 1.2");
    let parsed = mirror::parse(two.as_bytes()).expect("hostile file parses");
    assert_eq!(parsed.title, "Hostile --- \"quotes\"");
    assert_eq!(parsed.body, format!("{hostile}{}", body_marker(&second)));
    assert_ne!(parsed.id.as_deref(), Some(one_id));
    assert_ne!(parsed.version, 999);
    let fm = &two[..two[4..].find("\n---\n").expect("fence") + 4];
    assert!(
        !fm.contains("version: 999") && !fm.contains("id: 666") && !fm.contains("<script>"),
        "{fm}"
    );

    git_in(
        &t,
        &c,
        &["fetch", "-q", "origin", "refs/mirrors/*:refs/mirrors/*"],
    );
    let refs = mirror_refs(&t, &c);
    let head = git_in(&t, &c, &["rev-parse", "origin/main"]);
    assert!(
        refs.contains(&format!("{head} commit refs/mirrors/sim-head")),
        "{refs}"
    );
    assert!(refs.contains(" tag refs/mirrors/sim-synced-at"), "{refs}");
    let log = git_in(
        &t,
        &c,
        &["log", "-1", "--format=%at %s", "refs/mirrors/sim-synced-at"],
    );
    let (at, subject) = log.split_once(' ').expect("time and subject");
    let at: i64 = at.parse().expect("a time");
    assert!(
        (before..=after).contains(&at),
        "{at} not in {before}..={after}"
    );
    assert_eq!(subject, "mirror synced from sim");
    let tagger = git_in(
        &t,
        &c,
        &[
            "for-each-ref",
            "--format=%(taggerdate:unix) %(contents:subject)",
            "refs/mirrors/sim-synced-at",
        ],
    );
    assert_eq!(tagger, format!("{at} mirror synced from sim"));
    // The local refs say the same.
    assert_eq!(mirror_refs(&t, t.path()), refs);

    // Bot commits carry the trailer; a person's commit does not.
    let repo = gix::open(&c).expect("open clone");
    let tip = repo.head_commit().expect("head commit");
    assert!(mirror::is_bot_commit(&tip, mirror::DEFAULT_TRAILER));
    std::fs::write(c.join("issues/1.md"), "edited by hand\n").expect("write");
    git_in(&t, &c, &["commit", "-q", "-am", "fix typo"]);
    let repo = gix::open(&c).expect("open clone");
    let tip = repo.head_commit().expect("head commit");
    assert!(!mirror::is_bot_commit(&tip, mirror::DEFAULT_TRAILER));
    git_in(&t, &mirror, &["fsck", "--strict", "--no-progress"]);
}

/// The same over loopback `git daemon` (push and clone with git://), with
/// a Confluence layout (`pages/`) and a file already on the mirror's branch
/// (a README) that the push keeps.
#[test]
fn vanilla_clone_over_loopback_git_daemon() {
    let t = TestRepo::new();
    t.new_issue("A page", &["-b", "Page body\n"]);
    let base = t.home().join("served");
    std::fs::create_dir(&base).expect("mkdir");
    let seed = t.home().join("seed");
    git_in(
        &t,
        t.home(),
        &["init", "-q", "-b", "main", &seed.to_string_lossy()],
    );
    std::fs::write(seed.join("README.md"), "Our mirror\n").expect("write");
    git_in(&t, &seed, &["add", "README.md"]);
    git_in(&t, &seed, &["commit", "-q", "-m", "readme"]);
    git_in(
        &t,
        t.home(),
        &[
            "clone",
            "-q",
            "--bare",
            &seed.to_string_lossy(),
            &base.join("m.git").to_string_lossy(),
        ],
    );
    let d = Daemon::start(&t, &base);
    let url = d.url("m.git");
    let before = unix_now();
    let data = t.json(&["mirror", "push", &url, "--kind", "confluence"]);
    let after = unix_now();
    assert_eq!(data["slug"], "confluence", "{data}");
    assert_eq!(data["committed"], true, "{data}");

    let c = clone(&t, &url, "clone");
    assert_eq!(read(&c.join("README.md")), "Our mirror\n");
    let pages: Vec<_> = std::fs::read_dir(c.join("pages"))
        .expect("pages/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pages.len(), 1, "{pages:?}");
    let page = read(&c.join("pages").join(&pages[0]));
    assert_eq!(
        mirror::parse(page.as_bytes()).expect("parses").title,
        "A page"
    );
    git_in(
        &t,
        &c,
        &["fetch", "-q", "origin", "refs/mirrors/*:refs/mirrors/*"],
    );
    let refs = mirror_refs(&t, &c);
    assert!(
        refs.contains(" commit refs/mirrors/confluence-head"),
        "{refs}"
    );
    assert!(
        refs.contains(" tag refs/mirrors/confluence-synced-at"),
        "{refs}"
    );
    let log = git_in(
        &t,
        &c,
        &[
            "log",
            "-1",
            "--format=%at %s",
            "refs/mirrors/confluence-synced-at",
        ],
    );
    let (at, subject) = log.split_once(' ').expect("time and subject");
    let at: i64 = at.parse().expect("a time");
    assert!(
        (before..=after).contains(&at),
        "{at} not in {before}..={after}"
    );
    assert_eq!(subject, "mirror synced from confluence");
    assert_eq!(
        git_in(&t, &c, &["log", "--format=%s", "origin/main"]),
        format!(
            "Sync from confluence at {}\nreadme",
            data["synced_at"].as_str().expect("time")
        )
    );
}

#[test]
fn missing_remote_is_remote_not_found() {
    let t = TestRepo::new();
    t.new_issue("x", &[]);
    let missing = t.home().join("does-not-exist.git");
    failing_push(&t, &missing.to_string_lossy(), 1, "remote_not_found");
    assert!(t.refs("refs/mirrors/").is_empty());
}

#[test]
fn pre_receive_hook_rejection_is_push_rejected() {
    let t = TestRepo::new();
    t.new_issue("x", &[]);
    let m = bare(&t, "m.git");
    hook(
        &m,
        "pre-receive",
        "#!/bin/sh\necho 'policy: no pushes today' >&2\nexit 1\n",
    );
    let run = failing_push(&t, &m.to_string_lossy(), 10, "push_rejected");
    assert!(run.stdout.contains("no pushes today"), "{}", run.stdout);
    assert!(t.refs("refs/mirrors/").is_empty());
    assert_eq!(
        git_in(&t, &m, &["for-each-ref"]),
        "",
        "the mirror was changed"
    );
}

/// A forge-style protected branch (an update hook refusing refs/heads/main
/// with GitHub's message): classified, and the local refs stay at the last
/// successful sync.
#[test]
fn protected_branch_is_protected_ref_rejected() {
    let t = TestRepo::new();
    let id = t.new_issue("x", &[]);
    let m = bare(&t, "m.git");
    let target = m.to_string_lossy().into_owned();
    t.json(&["mirror", "push", &target, "--kind", "sim"]);
    let synced = t.refs("refs/mirrors/");
    let values = t.git(&["for-each-ref", "refs/mirrors/"]);
    assert_eq!(synced.len(), 2);
    hook(
        &m,
        "update",
        "#!/bin/sh\nif [ \"$1\" = refs/heads/main ]; then\n  \
         echo \"error: GH006: Protected branch update failed for $1.\" >&2\n  exit 1\nfi\nexit 0\n",
    );
    t.rx(&["issue", "edit", &id, "--title", "y"]).ok();
    failing_push(&t, &target, 10, "protected_ref_rejected");
    assert_eq!(t.git(&["for-each-ref", "refs/mirrors/"]), values);
}

/// An HTTP remote demanding auth: the token reaches the server through
/// GIT_ASKPASS and the environment (never argv: a `git` wrapper logs every
/// argument list), is refused, and appears in no output.
#[test]
fn http_remote_demanding_auth_is_auth_failed() {
    let t = TestRepo::new();
    t.new_issue("x", &[]);
    let wall = AuthWall::start();
    let log = t.home().join("git-argv.log");
    let path = git_wrapper(
        &t,
        &format!("printf '%s\\n' \"$*\" >> '{}'\n", log.display()),
    );
    let mut cmd = t.reposix();
    cmd.args(["--actor", "tester", "--json", "mirror", "push", &wall.url()])
        .args(["--kind", "sim", "--timeout", "20"])
        .env("PATH", path)
        .env(mirror::TOKEN_ENV, SECRET)
        .env(mirror::USER_ENV, "bot");
    let run = t.run(cmd).code(1);
    let env = run.envelope();
    assert_eq!(env["error"]["kind"], "auth_failed", "{env}");
    assert_no_secret(&run);
    let argv = read(&log);
    assert!(argv.contains("ls-remote"), "{argv}");
    assert!(!argv.contains(SECRET), "the token was in argv:\n{argv}");
    let seen = wall.seen.lock().expect("lock").clone();
    let want = format!("Basic {}", base64(format!("bot:{SECRET}").as_bytes()));
    assert!(
        seen.contains(&want),
        "the server never got the token: {seen:?}"
    );
}

#[test]
fn closed_loopback_port_is_network_failed() {
    let t = TestRepo::new();
    t.new_issue("x", &[]);
    let port = free_port();
    failing_push(
        &t,
        &format!("git://127.0.0.1:{port}/m.git"),
        9,
        "network_failed",
    );
}

/// Someone pushes to the mirror between our look and our push: the lease
/// fails, and we start over on top of their commit (kept in the history,
/// their README kept in the tree) instead of forcing over it.
#[test]
fn a_lease_lost_to_a_concurrent_push_is_retried_on_top() {
    let t = TestRepo::new();
    let id = t.new_issue("x", &[]);
    let m = bare(&t, "m.git");
    let target = m.to_string_lossy().into_owned();
    t.json(&["mirror", "push", &target, "--kind", "sim"]);
    let other = clone(&t, &target, "other");
    std::fs::write(other.join("README.md"), "theirs\n").expect("write");
    git_in(&t, &other, &["add", "README.md"]);
    git_in(&t, &other, &["commit", "-q", "-m", "theirs"]);
    let theirs = git_in(&t, &other, &["rev-parse", "HEAD"]);
    let raced = t.home().join("raced");
    // Lands their commit just before reposix's first push runs.
    let path = git_wrapper(
        &t,
        &format!(
            "case \" $* \" in *\" push --porcelain \"*)\n  \
             if [ ! -e '{mark}' ]; then : > '{mark}'; \"$REAL\" -C '{other}' push -q origin HEAD:main; fi;;\n\
             esac\n",
            mark = raced.display(),
            other = other.display()
        ),
    );
    t.rx(&["issue", "edit", &id, "--title", "y"]).ok();
    let mut cmd = t.reposix();
    cmd.args(["--actor", "tester", "--json", "mirror", "push", &target])
        .args(["--kind", "sim"])
        .env("PATH", path);
    let data = t.run(cmd).ok().data();
    assert!(raced.exists(), "the race did not happen");
    assert_eq!(data["attempts"], 2, "{data}");
    assert_eq!(data["committed"], true, "{data}");
    git_in(&t, &m, &["merge-base", "--is-ancestor", &theirs, "main"]);
    assert_eq!(git_in(&t, &m, &["show", "main:README.md"]), "theirs");
    let files = git_in(&t, &m, &["ls-tree", "-r", "--name-only", "main", "issues/"]);
    let file = git_in(&t, &m, &["show", &format!("main:{files}")]);
    assert!(file.contains("title: \"y\""), "{file}");
}

/// SoT first, mirror best-effort: with the mirror refusing pushes, the
/// tracker write lands, the command warns and exits 0, the refs keep the
/// last sync (the lag is visible), and the next run catches the mirror up.
#[test]
fn sot_write_lands_while_the_mirror_fails_then_catches_up() {
    let s = quiet_sim();
    let t = attached(&s);
    let id = t.new_issue("Old title", &[]);
    let m = bare(&t, "m.git");
    let target = m.to_string_lossy().into_owned();
    t.git(&["config", "reposix.mirror", &target]);
    t.json(&["mirror", "sync"]);
    let synced = t.git(&["for-each-ref", "refs/mirrors/"]);
    let mirror_main = git_in(&t, &m, &["rev-parse", "main"]);

    hook(
        &m,
        "pre-receive",
        "#!/bin/sh\necho 'mirror is read-only today' >&2\nexit 1\n",
    );
    t.rx(&["issue", "edit", &id, "--title", "New title"]).ok();
    let run = t.rx(&["mirror", "sync"]).ok();
    assert!(run.stderr.contains("warning: "), "{}", run.stderr);
    assert!(run.stderr.contains("push_rejected"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("your mirror was last synced from sim at "),
        "{}",
        run.stderr
    );
    // The tracker has the write.
    let b =
        SimBackend::new(&BackendSpec::parse(&spec(&s)).expect("spec"), "checker").expect("adapter");
    assert_eq!(
        b.get("1").expect("get").expect("issue 1").title,
        "New title"
    );
    // The mirror and the refs did not move: the lag is on record.
    assert_eq!(git_in(&t, &m, &["rev-parse", "main"]), mirror_main);
    assert_eq!(t.git(&["for-each-ref", "refs/mirrors/"]), synced);
    let status = t.json(&["mirror", "status"]);
    assert_eq!(status["in_step"], false, "{status}");
    let hint = mirror::staleness(t.open().store(), "sim").expect("a hint");
    assert!(
        hint.starts_with("your mirror was last synced from sim at "),
        "{hint}"
    );

    // The JSON form says the same, with exit 0.
    let data = t.json(&["mirror", "sync"]);
    assert_eq!(data["mirror"]["ok"], false, "{data}");
    assert_eq!(data["mirror"]["reason"], "push_rejected", "{data}");

    std::fs::remove_file(m.join("hooks/pre-receive")).expect("remove hook");
    let data = t.json(&["mirror", "sync"]);
    assert_eq!(data["mirror"]["ok"], true, "{data}");
    assert_ne!(git_in(&t, &m, &["rev-parse", "main"]), mirror_main);
    let file = git_in(&t, &m, &["show", "main:issues/1.md"]);
    assert!(file.contains("title: \"New title\""), "{file}");
    assert_ne!(t.git(&["for-each-ref", "refs/mirrors/"]), synced);
    assert_eq!(t.json(&["mirror", "status"])["in_step"], true);
}

/// Same state, same bytes; a push of an unchanged tree adds no commit to
/// the branch (the synced-at tag still records the sync); staleness reads
/// the tag.
#[test]
fn render_is_deterministic_and_unchanged_trees_are_not_committed() {
    let t = TestRepo::new();
    let id = t.new_issue("One", &["-b", "body\n", "-a", "alice", "-a", "bob"]);
    t.rx(&["issue", "comment", &id, "first"]).ok();
    t.new_issue("Two", &[]);
    let (a, b) = (t.home().join("a"), t.home().join("b"));
    t.json(&["mirror", "render", &a.to_string_lossy(), "--kind", "github"]);
    t.json(&["mirror", "render", &b.to_string_lossy(), "--kind", "github"]);
    let files = |d: &Path| {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d.join("issues"))
            .expect("issues/")
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(files(&a).len(), 2);
    assert_eq!(files(&a), files(&b));
    let repo = t.open();
    let source = MirrorSource::unbound(BackendKind::Github);
    let mut issues = mirror::collect(repo.store(), &source).expect("collect");
    let once = mirror::render(&issues, source.kind, None);
    issues.reverse();
    let twice = mirror::render(&issues, source.kind, None);
    assert_eq!(once, twice);
    assert_eq!(once.len(), 3, "two issues and one comments file");

    let m = bare(&t, "m.git");
    let target = m.to_string_lossy().into_owned();
    let first = t.json(&["mirror", "push", &target, "--kind", "github"]);
    let second = t.json(&["mirror", "push", &target, "--kind", "github"]);
    assert_eq!(first["committed"], true);
    assert_eq!(second["committed"], false, "{second}");
    assert_eq!(first["commit"], second["commit"]);
    assert_eq!(git_in(&t, &m, &["rev-list", "--count", "main"]), "1");

    let last = mirror::last_sync(repo.store(), "github").expect("synced");
    let hint = mirror::staleness_at(repo.store(), "github", last.at + 300).expect("a hint");
    assert!(
        hint.starts_with(&format!(
            "your mirror was last synced from github at {} (5 minutes ago); run `reposix mirror sync`",
            reposix::time::format_secs(last.at)
        )),
        "{hint}"
    );
    assert!(mirror::staleness(repo.store(), "jira").is_none());
}

/// A listener that accepts connections and never answers: git waits.
fn silent_server() -> (String, mpsc::Receiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/m.git", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if tx.send(stream).is_err() {
                break;
            }
        }
    });
    (url, rx)
}

/// Cancelling kills git and its helper (the connection it held closes).
#[test]
fn cancel_kills_git_and_its_children() {
    let t = TestRepo::new();
    t.new_issue("x", &[]);
    let (url, accepted) = silent_server();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut opts = MirrorOptions::new(url);
    opts.cancel = Some(Arc::clone(&cancel));
    let root = t.path().to_path_buf();
    let push = std::thread::spawn(move || {
        let repo = reposix::repo::Repo::open(&root).expect("open");
        mirror::push_mirror(
            repo.store(),
            &MirrorSource::unbound(BackendKind::Sim),
            &opts,
        )
    });
    let mut conn = accepted
        .recv_timeout(Duration::from_secs(20))
        .expect("git connected");
    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    let result = push.join().expect("push thread");
    assert!(
        matches!(result, Err(MirrorError::Interrupted { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break, // closed: the process holding it is gone
            Ok(_) => continue,
            Err(e) => panic!("the connection stayed open after the kill: {e}"),
        }
    }
}

#[test]
fn a_hung_remote_times_out_as_network_failed() {
    let t = TestRepo::new();
    t.new_issue("x", &[]);
    let (url, _accepted) = silent_server();
    let mut opts = MirrorOptions::new(url);
    opts.timeout = Duration::from_secs(1);
    let repo = t.open();
    let err = mirror::push_mirror(
        repo.store(),
        &MirrorSource::unbound(BackendKind::Sim),
        &opts,
    )
    .expect_err("a hung remote fails");
    assert_eq!(
        err.reason(),
        Some(MirrorFailureReason::NetworkFailed),
        "{err}"
    );
    assert!(
        err.to_string().contains("did not finish within 1 s"),
        "{err}"
    );
}

mod reposix014;

/// `reposix -C DIR --actor tester ARGS…`; any exit code.
fn rx_in(t: &TestRepo, dir: &Path, args: &[&str]) -> Run {
    let mut c = t.command(crate::support::BIN);
    c.arg("-C").arg(dir).args(["--actor", "tester"]).args(args);
    t.run(c)
}

/// A sim whose seeded issues were created and last updated on
/// 2026-04-13 (so any later write moves `updated_at` away from
/// `created_at`), without the rate limit.
fn seeded_sim(t: &TestRepo) -> SimHandle {
    let seed = t.home().join("seed.json");
    std::fs::write(
        &seed,
        serde_json::json!({
            "project": {"slug": "demo", "name": "Demo"},
            "issues": [
                {"id": 1, "title": "Seeded one", "status": "open", "labels": ["bug"],
                 "body": "From the tracker.\n",
                 "created_at": "2026-04-13T00:00:00Z", "updated_at": "2026-04-13T00:00:00Z"},
                {"id": 2, "title": "Seeded two", "status": "in_progress", "assignee": "agent-alpha",
                 "body": "version: 999\n<script>alert(1)</script>\n",
                 "created_at": "2026-04-13T00:00:00Z", "updated_at": "2026-04-13T00:00:00Z"}
            ]
        })
        .to_string(),
    )
    .expect("write the seed");
    reposix_sim::start(SimConfig {
        seed_file: Some(seed),
        rate_limit: 0,
        ..SimConfig::default()
    })
    .expect("sim starts on loopback")
}

/// A sim backend handle acting as a person on the tracker's web UI.
fn tracker_user(s: &SimHandle) -> SimBackend {
    SimBackend::new(&BackendSpec::parse(&spec(s)).expect("spec"), "web-user").expect("adapter")
}

/// Every file under `dir` except `.git`, path to bytes.
fn tree_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if e.file_name() == ".git" {
                continue;
            }
            if e.file_type().expect("file type").is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&p).expect("read"),
                );
            }
        }
    }
    out
}

/// Issue 8, case 11: a reposix 0.14 user writes through our mirror with
/// its `git push` bus. Before, every file differed from the tracker (our
/// comments block in the body, our sync marker missing), so the bus
/// PATCHed every issue, folding the rendered comments into every tracker
/// body and stripping the markers, and our next import showed each
/// comment twice. Now the body in `issues/<id>.md` is the tracker's body
/// and comments live in `comments/<id>.md`, which 0.14 never reads: an
/// edit of one file PATCHes that issue only.
#[test]
fn a_reposix_014_bus_push_through_the_mirror_patches_only_what_was_edited() {
    let t = TestRepo::new();
    let s = seeded_sim(&t);
    t.rx(&["backend", "add", "sot", &spec(&s)]).ok();
    t.json(&["sync", "--backend", "sot"]);
    let ours = t.new_issue("Ours", &["-b", "Local body.\n", "-l", "p1"]);
    t.rx(&["issue", "comment", &ours, "first comment"]).ok();
    t.rx(&["issue", "comment", &ours, "second comment\n\n---\nid: 7\n"])
        .ok();
    let seeded: Vec<String> = t.json(&["issue", "list", "--state", "all"])["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .filter(|i| i["title"] == "Seeded one")
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    t.rx(&[
        "issue",
        "comment",
        &seeded[0],
        "a comment on a tracker issue",
    ])
    .ok();
    let mirror = bare(&t, "mirror.git");
    let data = t.json(&["mirror", "sync", &mirror.to_string_lossy()]);
    assert_eq!(data["mirror"]["ok"], true, "{data}");
    let before = reposix014::sim_records(s.addr(), "demo");
    assert_eq!(before.len(), 3);
    let comments_before: Vec<usize> = ["1", "2", "3"]
        .iter()
        .map(|id| tracker_user(&s).comments(id).expect("comments").len())
        .collect();
    assert_eq!(comments_before, [1, 0, 2]);

    // The 0.14 user: a plain clone of the mirror, one edit, the bus push.
    let c = clone(&t, &mirror.to_string_lossy(), "c014");
    assert!(c.join("comments/3.md").exists(), "comments are beside");
    let path = c.join("issues/3.md");
    let text = read(&path);
    let edited = text.replacen("title: \"Ours\"", "title: \"Ours, edited in 0.14\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).expect("write");
    git_in(&t, &c, &["commit", "-q", "-am", "retitle through 0.14"]);
    let push = reposix014::bus_push(&t, &c, &mirror, s.addr(), "demo").expect("0.14 accepts it");
    assert_eq!(
        push,
        reposix014::BusPush {
            patched: vec![3],
            ..Default::default()
        },
        "0.14 wrote what was not edited"
    );
    let after = reposix014::sim_records(s.addr(), "demo");
    for (id, (record, version)) in &after {
        assert!(
            !record.body.contains("<!-- reposix:comment") && !record.body.contains("### comment"),
            "issue {id}'s tracker body gained our comments: {:?}",
            record.body
        );
        if *id != 3 {
            assert_eq!(
                &before[id],
                &(record.clone(), *version),
                "issue {id} was written"
            );
        }
    }
    assert_eq!(after[&3].0.title, "Ours, edited in 0.14");
    assert_eq!(
        after[&3].0.body,
        format!("Local body.\n{}", body_marker(&ours)),
        "the body and its sync marker are kept"
    );

    // Our next import and mirror push: the edit arrives, each comment once.
    let data = t.json(&["mirror", "sync", &mirror.to_string_lossy()]);
    assert_eq!(data["mirror"]["ok"], true, "{data}");
    let shown = t.show(&ours);
    assert_eq!(shown["title"], "Ours, edited in 0.14");
    assert_eq!(shown["body"], "Local body.\n");
    let bodies: Vec<&str> = shown["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| c["body"].as_str().expect("body"))
        .collect();
    assert_eq!(bodies, ["first comment", "second comment\n\n---\nid: 7\n"]);
    assert_eq!(
        t.show(&seeded[0])["comments"].as_array().map(Vec::len),
        Some(1)
    );
    let comments_after: Vec<usize> = ["1", "2", "3"]
        .iter()
        .map(|id| tracker_user(&s).comments(id).expect("comments").len())
        .collect();
    assert_eq!(
        comments_after, comments_before,
        "comments duplicated on the tracker"
    );
    // The mirror builds on the 0.14 commit and shows the edit.
    let log = git_in(&t, &mirror, &["log", "--format=%s", "main"]);
    assert!(log.contains("retitle through 0.14"), "{log}");
    let file = git_in(&t, &mirror, &["show", "main:issues/3.md"]);
    assert!(file.contains("title: \"Ours, edited in 0.14\""), "{file}");
    // A second bus push of the unchanged mirror writes nothing.
    git_in(&t, &c, &["pull", "-q", "--no-rebase", "origin", "main"]);
    let push = reposix014::bus_push(&t, &c, &mirror, s.addr(), "demo").expect("0.14 accepts it");
    assert_eq!(push, reposix014::BusPush::default());
}

/// Issue 8, case 10: two hosts that share only the tracker render the
/// same bytes. Host A imported seeded issue 1 at revision 1, host B first
/// imported it after a tracker edit (revision 2); A wrote a comment and an
/// issue locally and exported them, B imported them. Before, `created_at`
/// came from whichever revision a host saw first and comment authors were
/// the local actor on A but the tracker login on B, so two hosts running
/// `mirror push` rewrote each other forever.
///
/// Needs from the fold (`IssueState`): the tracker's `created_at` of each
/// bound remote issue, and for comments bound to a tracker comment the
/// tracker's author and `created_at`; `mirror::binding` takes them from
/// there (it fails on `created_at` until then).
#[test]
fn two_hosts_sharing_only_the_tracker_render_identical_mirrors() {
    let t = TestRepo::new();
    let s = seeded_sim(&t);
    let a = t.home().join("a");
    let b = t.home().join("b");
    for dir in [&a, &b] {
        std::fs::create_dir(dir).expect("mkdir");
        git_in(&t, dir, &["init", "-q", "-b", "main"]);
        rx_in(&t, dir, &["backend", "add", "sot", &spec(&s)]).ok();
    }
    rx_in(&t, &a, &["sync", "--backend", "sot"]).ok();
    // The tracker moves on: a title edit of issue 1 (revision 2).
    let web = tracker_user(&s);
    let cur = web.get("1").expect("get").expect("issue 1");
    web.update(
        "1",
        &reposix::tracker::IssuePatch {
            title: Some("Seeded one, retitled on the web".into()),
            ..Default::default()
        },
        &cur.revision,
    )
    .expect("tracker edit");
    rx_in(&t, &b, &["sync", "--backend", "sot"]).ok();
    // A writes locally and exports: a comment on issue 1, a new issue with
    // a comment.
    let list = rx_in(&t, &a, &["--json", "issue", "list", "--state", "all"])
        .ok()
        .data();
    let one = list["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .find(|i| i["title"] == "Seeded one")
        .expect("issue 1 on A")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    rx_in(&t, &a, &["issue", "comment", &one, "from host A"]).ok();
    let made = rx_in(
        &t,
        &a,
        &["--json", "issue", "new", "Made on A", "-b", "text\n"],
    )
    .ok()
    .data()["issue"]
        .as_str()
        .expect("id")
        .to_owned();
    rx_in(&t, &a, &["issue", "comment", &made, "also from A"]).ok();
    rx_in(&t, &a, &["sync", "--backend", "sot"]).ok();
    rx_in(&t, &b, &["sync", "--backend", "sot"]).ok();
    rx_in(&t, &a, &["sync", "--backend", "sot"]).ok();
    let (ra, rb) = (t.home().join("render-a"), t.home().join("render-b"));
    rx_in(
        &t,
        &a,
        &[
            "mirror",
            "render",
            &ra.to_string_lossy(),
            "--backend",
            "sot",
        ],
    )
    .ok();
    rx_in(
        &t,
        &b,
        &[
            "mirror",
            "render",
            &rb.to_string_lossy(),
            "--backend",
            "sot",
        ],
    )
    .ok();
    let (fa, fb) = (tree_files(&ra), tree_files(&rb));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        [
            "comments/1.md",
            "comments/3.md",
            "issues/1.md",
            "issues/2.md",
            "issues/3.md"
        ]
    );
    let differing: Vec<String> = fa
        .iter()
        .filter(|(path, bytes)| fb.get(*path) != Some(*bytes))
        .map(|(path, bytes)| {
            let theirs = fb
                .get(path)
                .map(|b| String::from_utf8_lossy(b).into_owned());
            let lines: Vec<String> = String::from_utf8_lossy(bytes)
                .lines()
                .zip(theirs.as_deref().unwrap_or("").lines())
                .filter(|(x, y)| x != y)
                .map(|(x, y)| format!("  A: {x}\n  B: {y}"))
                .collect();
            format!("{path}:\n{}", lines.join("\n"))
        })
        .collect();
    assert!(
        differing.is_empty() && fa.len() == fb.len(),
        "the hosts render different bytes:\n{}",
        differing.join("\n")
    );
}

/// Issue 13, point 11: a mirror made with a plain `git init --bare` (its
/// HEAD names `master`, which never exists) cloned empty: the push now
/// points HEAD at the branch it pushed. A HEAD naming an existing branch
/// is the owner's choice and stays.
#[test]
fn mirror_push_sets_the_default_branch_of_a_fresh_bare_repository() {
    let t = TestRepo::new();
    t.new_issue("x", &["-b", "body\n"]);
    let m = t.home().join("fresh.git");
    git_in(
        &t,
        t.home(),
        &["init", "-q", "--bare", &m.to_string_lossy()],
    );
    assert_eq!(
        git_in(&t, &m, &["symbolic-ref", "HEAD"]),
        "refs/heads/master"
    );
    let data = t.json(&["mirror", "push", &m.to_string_lossy(), "--kind", "sim"]);
    assert_eq!(data["default_branch"], "main", "{data}");
    assert_eq!(data["default_branch_set"], true, "{data}");
    assert_eq!(git_in(&t, &m, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    let c = clone(&t, &m.to_string_lossy(), "c");
    assert_eq!(
        std::fs::read_dir(c.join("issues"))
            .expect("issues/")
            .count(),
        1
    );
    let data = t.json(&["mirror", "push", &m.to_string_lossy(), "--kind", "sim"]);
    assert_eq!(data["default_branch"], "main", "{data}");
    assert_eq!(data["default_branch_set"], false, "{data}");

    // Someone's repository whose default branch is `trunk`: kept.
    let theirs = t.home().join("theirs.git");
    git_in(
        &t,
        t.home(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "trunk",
            &theirs.to_string_lossy(),
        ],
    );
    let seed = clone(&t, &theirs.to_string_lossy(), "seed");
    std::fs::write(seed.join("README.md"), "ours\n").expect("write");
    git_in(&t, &seed, &["add", "README.md"]);
    git_in(&t, &seed, &["commit", "-q", "-m", "readme"]);
    git_in(&t, &seed, &["push", "-q", "origin", "HEAD:trunk"]);
    let data = t.json(&["mirror", "push", &theirs.to_string_lossy(), "--kind", "sim"]);
    assert_eq!(data["default_branch"], "trunk", "{data}");
    assert_eq!(data["default_branch_set"], false, "{data}");
    assert_eq!(
        git_in(&t, &theirs, &["symbolic-ref", "HEAD"]),
        "refs/heads/trunk"
    );

    // Over git:// the HEAD cannot be set from here: said, not hidden.
    let base = t.home().join("served");
    std::fs::create_dir(&base).expect("mkdir");
    git_in(&t, &base, &["init", "-q", "--bare", "m.git"]);
    let d = Daemon::start(&t, &base);
    let run = t
        .rx(&["mirror", "push", &d.url("m.git"), "--kind", "sim"])
        .ok();
    assert!(
        run.stderr
            .contains("the mirror's HEAD names no branch, so a clone checks out nothing"),
        "{}",
        run.stderr
    );
}

/// Issue 10, defect 9: `mirror render` followed a committed `issues`
/// symlink out of its directory (writing there, and `--prune` deleting
/// `*.md` files there). Now a symlinked directory is refused, a symlinked
/// file is replaced by a regular file (its target untouched), a stale
/// symlink is removed itself, and temporary files are created anew
/// (`O_EXCL`, random names) in the directory.
#[cfg(unix)]
#[test]
fn render_never_follows_a_symlink_to_write_or_delete() {
    use std::os::unix::fs::symlink;
    let t = TestRepo::new();
    let id = t.new_issue("x", &["-b", "body\n"]);
    t.rx(&["issue", "comment", &id, "a comment"]).ok();
    let outside = t.home().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("victim.md"), "precious\n").expect("write");
    let dir = t.home().join("render");
    std::fs::create_dir(&dir).expect("mkdir");
    symlink(&outside, dir.join("issues")).expect("symlink");
    let before = tree_files(&outside);
    let run = t
        .rx(&[
            "--json",
            "mirror",
            "render",
            &dir.to_string_lossy(),
            "--kind",
            "sim",
            "--prune",
        ])
        .code(7);
    let env = run.envelope();
    assert!(
        env["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("is a symbolic link")),
        "{env}"
    );
    assert_eq!(
        tree_files(&outside),
        before,
        "render wrote or deleted outside"
    );

    // `comments` symlinked: refused too.
    std::fs::remove_file(dir.join("issues")).expect("unlink");
    symlink(&outside, dir.join("comments")).expect("symlink");
    t.rx(&[
        "mirror",
        "render",
        &dir.to_string_lossy(),
        "--kind",
        "sim",
        "--prune",
    ])
    .code(7);
    assert_eq!(
        tree_files(&outside),
        before,
        "render wrote or deleted outside"
    );
    std::fs::remove_file(dir.join("comments")).expect("unlink");

    // Files that are symlinks: replaced or removed themselves.
    std::fs::create_dir(dir.join("issues")).expect("mkdir");
    std::fs::write(outside.join("target.md"), "theirs\n").expect("write");
    let name = format!("{id}.md");
    symlink(outside.join("target.md"), dir.join("issues").join(&name)).expect("symlink");
    symlink(outside.join("victim.md"), dir.join("issues/stale.md")).expect("symlink");
    let before = tree_files(&outside);
    let data = t.json(&[
        "mirror",
        "render",
        &dir.to_string_lossy(),
        "--kind",
        "sim",
        "--prune",
    ]);
    assert_eq!(
        data["stale"],
        serde_json::json!(["issues/stale.md"]),
        "{data}"
    );
    assert_eq!(
        tree_files(&outside),
        before,
        "render wrote or deleted outside"
    );
    let file = dir.join("issues").join(&name);
    assert!(!std::fs::symlink_metadata(&file)
        .expect("stat")
        .file_type()
        .is_symlink());
    assert!(read(&file).contains("title: \"x\""));
    assert!(!dir.join("issues/stale.md").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("issues"))
        .expect("read_dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, [name], "temporary files left behind");
}

/// A repository attached to the sim with an exported issue, its mirror,
/// and a plain clone of that mirror attached as `sim` (Pattern C).
fn pattern_c(t: &TestRepo, s: &SimHandle) -> (String, PathBuf) {
    t.rx(&["backend", "add", "sot", &spec(s)]).ok();
    let id = t.new_issue("Seeded", &["-b", "Line one.\n"]);
    let mirror = bare(t, "mirror.git");
    t.json(&["mirror", "sync", &mirror.to_string_lossy()]);
    let c = clone(t, &mirror.to_string_lossy(), "c");
    rx_in(t, &c, &["attach", &spec(s)]).ok();
    (id, c)
}

/// Issue 13, point 11: markdown edits the parser rejects used to be
/// skipped with a warning and exit 0 (and errors named the frontmatter's
/// first line, not the bad one). Now the sync exits 7 naming each file
/// and line, applies nothing (not even the valid edits of the same
/// commit), sends nothing, and reads the same range again once fixed.
#[test]
fn rejected_markdown_edits_exit_7_naming_file_and_line_and_apply_nothing() {
    let t = TestRepo::new();
    let s = quiet_sim();
    let (id, c) = pattern_c(&t, &s);
    let path = c.join("issues/1.md");
    let text = read(&path);
    assert!(
        text.ends_with(" -->"),
        "the body ends with the sync marker: {text:?}"
    );
    // As an editor saves it: with a line break at the end.
    let retitled = text.replacen("title: \"Seeded\"", "title: \"Retitled\"", 1) + "\n";
    std::fs::write(&path, retitled).expect("write");
    let bad = "---\ntitle: \"New one\"\nstatus: \"open\"\nlabels: [a\n---\nBody.\n";
    std::fs::write(c.join("issues/new.md"), bad).expect("write");
    let bad_status = text.replacen("status: \"open\"", "status: \"closed\"", 1);
    std::fs::write(c.join("issues/2.md"), &bad_status).expect("write");
    git_in(&t, &c, &["add", "-A"]);
    git_in(&t, &c, &["commit", "-q", "-m", "edits"]);
    let run = rx_in(&t, &c, &["--json", "sync", "--backend", "sim"]).code(7);
    let env = run.envelope();
    assert_eq!(env["error"]["kind"], "markdown_rejected", "{env}");
    let message = env["error"]["message"].as_str().expect("message");
    let status_line = bad_status
        .lines()
        .position(|l| l.starts_with("status:"))
        .expect("a status line")
        + 1;
    assert!(message.contains("issues/new.md:4: "), "{message}");
    assert!(
        message.contains(&format!(
            "issues/2.md:{status_line}: unknown status \"closed\""
        )),
        "{message}"
    );
    let text_run = rx_in(&t, &c, &["sync", "--backend", "sim"]).code(7);
    assert!(
        text_run.stderr.contains("issues/new.md:4: "),
        "{}",
        text_run.stderr
    );
    // Nothing applied, nothing sent.
    assert_eq!(
        rx_in(&t, &c, &["--json", "issue", "show", &id]).ok().data()["title"],
        "Seeded"
    );
    assert_eq!(
        tracker_user(&s).get("1").expect("get").expect("1").title,
        "Seeded"
    );

    // Fixed and committed: the whole range is read, each edit once.
    std::fs::write(c.join("issues/new.md"), bad.replace("[a\n", "[a]\n")).expect("write");
    std::fs::remove_file(c.join("issues/2.md")).expect("rm");
    git_in(&t, &c, &["add", "-A"]);
    git_in(&t, &c, &["commit", "-q", "-m", "fixed"]);
    let data = rx_in(&t, &c, &["--json", "sync", "--backend", "sim"])
        .ok()
        .data();
    assert_eq!(data["markdown_edits"]["files"], 2, "{data}");
    assert_eq!(data["markdown_edits"]["created"], 1, "{data}");
    let remote = tracker_user(&s).get("1").expect("get").expect("1");
    assert_eq!(remote.title, "Retitled");
    assert_eq!(
        remote.body, "Line one.\n",
        "the editor's final line break is no edit"
    );
    assert_eq!(
        remote.marker.as_deref(),
        Some(id.as_str()),
        "the marker is kept"
    );
}

/// Issue 8, case 12: in Pattern C a new markdown file without an `id:` key
/// was skipped with a warning, while the README says it becomes a new
/// issue. Now it does, once.
#[test]
fn a_new_markdown_file_without_an_id_becomes_a_new_issue() {
    let t = TestRepo::new();
    let s = quiet_sim();
    let (_, c) = pattern_c(&t, &s);
    std::fs::write(
        c.join("issues/found-a-bug.md"),
        "---\ntitle: Found in markdown\nstatus: in_progress\nlabels:\n  - bug\n---\nSteps.\n",
    )
    .expect("write");
    git_in(&t, &c, &["add", "-A"]);
    git_in(&t, &c, &["commit", "-q", "-m", "a new issue in markdown"]);
    let data = rx_in(&t, &c, &["--json", "sync", "--backend", "sim"])
        .ok()
        .data();
    assert_eq!(data["markdown_edits"]["created"], 1, "{data}");
    assert_eq!(data["export"]["created"], 1, "{data}");
    let remote = tracker_user(&s)
        .get("2")
        .expect("get")
        .expect("issue 2 on the tracker");
    assert_eq!(remote.title, "Found in markdown");
    assert_eq!(remote.body, "Steps.\n");
    assert_eq!(remote.status, reposix::event::Status::InProgress);
    assert_eq!(remote.labels, ["bug"]);
    let again = rx_in(&t, &c, &["--json", "sync", "--backend", "sim"])
        .ok()
        .data();
    assert_eq!(again["markdown_edits"]["files"], 0, "{again}");
    assert!(
        tracker_user(&s).get("3").expect("get").is_none(),
        "created twice"
    );
}
