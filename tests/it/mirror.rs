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

use reposix::backend::sim::SimBackend;
use reposix::backend::{Backend, BackendKind, BackendSpec};
use reposix::mirror::{self, MirrorError, MirrorFailureReason, MirrorOptions, MirrorSource};
use reposix::sim::{SimConfig, SimHandle};

use crate::support::{Run, TestRepo};

/// Never in any output: given to git through the askpass environment.
const SECRET: &str = "s3cr3t-t0ken-do-not-print";

fn quiet_sim() -> SimHandle {
    reposix::sim::start(SimConfig {
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
    reposix::timestamp::now_secs()
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
    t.new_issue("Hostile --- \"quotes\"", &[&format!("--body={hostile}")]);
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
    assert_eq!(data["mirror"]["report"]["files"], 2, "{data}");
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
    assert!(one.contains("### comment "), "{one}");
    assert!(one.contains(" by tester on "), "{one}");
    let parsed = mirror::parse(one.as_bytes()).expect("parses");
    assert_eq!(parsed.body, "It crashes when offline.\n");
    assert_eq!(parsed.comments.len(), 1);
    assert_eq!(parsed.comments[0].body, "Reproduced on 1.2");
    let parsed = mirror::parse(two.as_bytes()).expect("hostile file parses");
    assert_eq!(parsed.title, "Hostile --- \"quotes\"");
    assert_eq!(parsed.body, hostile);
    assert_ne!(parsed.id, one_id);
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
    let once = mirror::render(
        &mirror::collect(repo.store(), &source).expect("collect"),
        source.kind,
    );
    let twice = mirror::render(
        &mirror::collect(repo.store(), &source).expect("collect"),
        source.kind,
    );
    assert_eq!(once, twice);

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
            reposix::timestamp::format_secs(last.at)
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
