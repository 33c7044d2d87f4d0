//! `reposix sync` through real git remotes: a bare repository on disk and
//! `git daemon` on loopback. Clones converge whatever the order of syncs,
//! racing pushers all land, plain `git fetch` never loses events, and an
//! unreachable remote fails fast without leaking credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{hermetic, Run, TestRepo, BIN};

/// One clone: a directory under a shared hermetic home.
struct Node {
    dir: PathBuf,
    home: PathBuf,
}

impl Node {
    /// `git init` plus `git remote add origin URL` (no fetch yet).
    fn init(w: &TestRepo, name: &str, url: &str) -> Node {
        let node = Node {
            dir: w.home().join(name),
            home: w.home().to_owned(),
        };
        std::fs::create_dir(&node.dir).expect("mkdir clone");
        node.git(&["init", "-q", "-b", "main"]);
        node.git(&["remote", "add", "origin", url]);
        node
    }

    /// `git clone URL name` (a clone made by plain git).
    fn clone(w: &TestRepo, name: &str, url: &str) -> Node {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, w.home())
            .current_dir(w.home())
            .args(["clone", "-q", url, name]);
        run(cmd).ok();
        Node {
            dir: w.home().join(name),
            home: w.home().to_owned(),
        }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        hermetic(&mut cmd, &self.home).current_dir(&self.dir);
        cmd
    }

    fn git_run(&self, args: &[&str]) -> Run {
        let mut cmd = self.cmd("git");
        cmd.args(args);
        run(cmd)
    }

    #[track_caller]
    fn git(&self, args: &[&str]) -> String {
        self.git_run(args).ok().stdout.trim_end().to_owned()
    }

    /// The `reposix` command for this clone, acting as `actor`.
    fn reposix(&self, actor: &str) -> Command {
        let mut cmd = self.cmd(BIN);
        cmd.arg("-C").arg(&self.dir).args(["--actor", actor]);
        cmd
    }

    fn rx(&self, actor: &str, args: &[&str]) -> Run {
        let mut cmd = self.reposix(actor);
        cmd.args(args);
        run(cmd)
    }

    #[track_caller]
    fn json(&self, actor: &str, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.rx(actor, &all).ok().data()
    }

    /// `reposix sync ARGS…`: must succeed; returns the report.
    #[track_caller]
    fn sync(&self, args: &[&str]) -> Value {
        let mut all = vec!["sync"];
        all.extend_from_slice(args);
        let report = self.json("syncer", &all);
        assert_eq!(report["behind"], serde_json::json!([]), "{report}");
        assert_eq!(report["damaged"], serde_json::json!([]), "{report}");
        report
    }

    #[track_caller]
    fn new_issue(&self, actor: &str, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["issue", "new", title];
        args.extend_from_slice(extra);
        let data = self.json(actor, &args);
        data["issue"].as_str().expect("issue id").to_owned()
    }

    #[track_caller]
    fn ids(&self) -> BTreeSet<String> {
        let data = self.json("reader", &["issue", "list", "--state", "all"]);
        data["issues"]
            .as_array()
            .expect("issues")
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// `issue show --json` stdout of every issue, byte for byte.
    #[track_caller]
    fn shows(&self) -> BTreeMap<String, String> {
        self.ids()
            .into_iter()
            .map(|id| {
                let out = self.rx("reader", &["--json", "issue", "show", &id]).ok();
                (id, out.stdout)
            })
            .collect()
    }

    #[track_caller]
    fn show(&self, id: &str) -> Value {
        self.json("reader", &["issue", "show", id])
    }

    /// Comment bodies of an issue.
    #[track_caller]
    fn comments(&self, id: &str) -> BTreeSet<String> {
        comment_bodies(&self.show(id))
    }
}

fn comment_bodies(show: &Value) -> BTreeSet<String> {
    show["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| c["body"].as_str().expect("body").to_owned())
        .collect()
}

fn run(mut cmd: Command) -> Run {
    let what = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd.output().expect("running a command");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        what,
    }
}

/// A bare repository `name` in the workspace; returns its path.
fn bare(w: &TestRepo, name: &str) -> PathBuf {
    let path = w.home().join(name);
    let mut cmd = Command::new("git");
    hermetic(&mut cmd, w.home())
        .current_dir(w.home())
        .args(["init", "-q", "--bare", name]);
    run(cmd).ok();
    path
}

fn path_url(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_owned()
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

/// `git daemon` serving a directory on loopback; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(w: &TestRepo, base: &Path) -> Daemon {
        let port = free_port();
        // The `git-daemon` program itself: `git daemon` would run it as a
        // child that outlives a kill of the `git` wrapper.
        let mut exec_path = Command::new("git");
        hermetic(&mut exec_path, w.home()).arg("--exec-path");
        let exec_path = run(exec_path).ok().stdout.trim().to_owned();
        let mut cmd = Command::new(Path::new(&exec_path).join("git-daemon"));
        hermetic(&mut cmd, w.home())
            .args(["--export-all", "--enable=receive-pack", "--reuseaddr"])
            .arg(format!("--base-path={}", base.display()))
            .args(["--listen=127.0.0.1", &format!("--port={port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut daemon = Daemon {
            child: cmd.spawn().expect("starting git daemon"),
            port,
        };
        // Readiness: poll until it accepts a connection (bounded).
        for _ in 0..400 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return daemon;
            }
            if let Some(status) = daemon.child.try_wait().expect("polling git daemon") {
                panic!("git daemon exited early: {status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("git daemon did not accept connections on port {port}");
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three clones edit overlapping issues offline and sync through `url` in
/// several orders and rounds; then all show byte-identical issues holding
/// every comment written anywhere, and concurrent body edits merged.
fn three_clones_converge(w: &TestRepo, url: &str) {
    let [a, b, c] = ["a", "b", "c"].map(|n| Node::init(w, n, url));
    let title = a.new_issue("alice", "Shared title", &[]);
    let labels = a.new_issue("alice", "Labels", &["-l", "x"]);
    let body = a.new_issue("alice", "Body", &["-b", "one\ntwo\nthree\n"]);
    let report = a.sync(&[]);
    assert_eq!(report["pushed"], 3, "{report}");
    for n in [&b, &c] {
        let report = n.sync(&[]);
        assert_eq!(report["created"], 3, "{report}");
    }
    let mut comments = BTreeSet::new();
    let mut comment = |n: &Node, actor: &str, issue: &str, text: &str| {
        n.rx(actor, &["issue", "comment", issue, text]).ok();
        comments.insert(text.to_owned());
    };

    // Round 1, offline: the same title three ways, opposite label changes,
    // body edits on different lines, comments, new issues.
    a.rx("alice", &["issue", "edit", &title, "--title", "from a"])
        .ok();
    b.rx("bob", &["issue", "edit", &title, "--title", "from b"])
        .ok();
    c.rx("carol", &["issue", "edit", &title, "--title", "from c"])
        .ok();
    a.rx("alice", &["issue", "label", &labels, "x", "--remove"])
        .ok();
    b.rx("bob", &["issue", "label", &labels, "y"]).ok();
    c.rx("carol", &["issue", "label", &labels, "z"]).ok();
    a.rx(
        "alice",
        &["issue", "edit", &body, "-b", "one by a\ntwo\nthree\n"],
    )
    .ok();
    b.rx(
        "bob",
        &["issue", "edit", &body, "-b", "one\ntwo\nthree by b\n"],
    )
    .ok();
    c.rx(
        "carol",
        &["issue", "edit", &body, "-b", "one\ntwo by c\nthree\n"],
    )
    .ok();
    for (n, actor) in [(&a, "alice"), (&b, "bob"), (&c, "carol")] {
        comment(n, actor, &title, &format!("{actor} on title, round 1"));
        comment(n, actor, &labels, &format!("{actor} on labels, round 1"));
        n.new_issue(actor, &format!("new from {actor}"), &[]);
    }
    for n in [&a, &b, &c] {
        n.sync(&[]);
    }

    // Round 2: more edits, halves of syncs in another order.
    c.rx("carol", &["issue", "label", &labels, "y", "--remove"])
        .ok();
    b.rx("bob", &["issue", "label", &labels, "x"]).ok();
    comment(&a, "alice", &body, "alice on body, round 2");
    comment(&c, "carol", &title, "carol on title, round 2");
    c.sync(&["--push"]);
    b.sync(&["--pull"]);
    comment(&b, "bob", &title, "bob on title, round 2");
    a.sync(&[]);
    b.sync(&[]);
    c.sync(&["--pull"]);

    // Round 3: everyone edits again, then syncs in yet another order.
    for (n, actor) in [(&a, "alice"), (&b, "bob"), (&c, "carol")] {
        comment(n, actor, &labels, &format!("{actor} on labels, round 3"));
    }
    a.rx("alice", &["issue", "close", &title]).ok();
    b.rx("bob", &["issue", "edit", &title, "--title", "final from b"])
        .ok();
    for n in [&b, &c, &a, &b, &c] {
        n.sync(&[]);
    }

    let states = [a.shows(), b.shows(), c.shows()];
    assert_eq!(states[0].len(), 6, "3 shared + 3 new issues");
    assert_eq!(states[0], states[1], "a and b differ");
    assert_eq!(states[0], states[2], "a and c differ");
    let mut seen = BTreeSet::new();
    for id in states[0].keys() {
        seen.extend(a.comments(id));
    }
    assert_eq!(seen, comments, "comments lost or invented");
    let merged_body = a.show(&body)["body"].as_str().expect("body").to_owned();
    assert_eq!(merged_body, "one by a\ntwo by c\nthree by b\n");
    // Tracking refs stay outside refs/reposix/; no staged push refs remain.
    for n in [&a, &b, &c] {
        assert_eq!(n.git(&["for-each-ref", "refs/reposix-push/"]), "");
        for r in n
            .git(&["for-each-ref", "--format=%(refname)", "refs/reposix/"])
            .lines()
        {
            assert!(r.starts_with("refs/reposix/issues/"), "{r}");
        }
    }
}

#[test]
fn three_clones_converge_through_a_bare_remote_on_disk() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    three_clones_converge(&w, &path_url(&remote));
}

#[test]
fn three_clones_converge_through_git_daemon_on_loopback() {
    let w = TestRepo::new();
    let base = w.home().join("served");
    std::fs::create_dir(&base).expect("mkdir");
    let mut cmd = Command::new("git");
    hermetic(&mut cmd, w.home())
        .current_dir(&base)
        .args(["init", "-q", "--bare", "remote.git"]);
    run(cmd).ok();
    let daemon = Daemon::start(&w, &base);
    three_clones_converge(&w, &daemon.url("remote.git"));
}

#[test]
fn four_processes_pushing_the_same_issue_at_once_all_land() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let seed = Node::init(&w, "seed", &url);
    let issue = seed.new_issue("seed", "Contended", &[]);
    seed.sync(&[]);
    let nodes: Vec<Node> = (0..4)
        .map(|i| {
            let n = Node::init(&w, &format!("n{i}"), &url);
            n.sync(&[]);
            let actor = format!("agent{i}");
            n.rx(
                &actor,
                &["issue", "comment", &issue, &format!("from {actor}")],
            )
            .ok();
            n.rx(&actor, &["issue", "edit", &issue, "--title", &actor])
                .ok();
            n.new_issue(&actor, &format!("own issue of {actor}"), &[]);
            n
        })
        .collect();

    // Barrier: each process waits for a line on its stdin before exec'ing
    // `reposix sync`; the lines are written once all four are running.
    let mut children: Vec<Child> = nodes
        .iter()
        .map(|n| {
            let mut cmd = n.cmd("sh");
            cmd.args(["-c", "read go && exec \"$0\" \"$@\"", BIN, "-C"])
                .arg(&n.dir)
                .args(["--json", "sync"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().expect("spawning sync")
        })
        .collect();
    let mut gates: Vec<_> = children
        .iter_mut()
        .map(|c| c.stdin.take().expect("piped stdin"))
        .collect();
    for gate in &mut gates {
        gate.write_all(b"go\n").expect("releasing a sync");
    }
    drop(gates);
    let mut retried = 0;
    for child in children {
        let out = child.wait_with_output().expect("waiting for sync");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sync exited {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(&stdout).expect("JSON envelope");
        assert_eq!(v["data"]["behind"], serde_json::json!([]), "{v}");
        retried += v["data"]["retried"].as_array().expect("retried").len();
    }
    eprintln!("issues retried across the four syncs: {retried}");

    // Everything landed on the remote itself.
    let on_remote = reposix::repo::Repo::open(&remote).expect("opening the bare remote");
    let id: reposix::event::IssueId = issue.parse().expect("issue id");
    let state = serde_json::to_value(on_remote.show(id).expect("show on remote")).expect("json");
    let want: BTreeSet<String> = (0..4).map(|i| format!("from agent{i}")).collect();
    assert_eq!(comment_bodies(&state), want);
    let titles: BTreeSet<String> = on_remote
        .list()
        .expect("listing the remote")
        .issues
        .iter()
        .map(|s| s.title.clone())
        .collect();
    for i in 0..4 {
        assert!(
            titles.contains(&format!("own issue of agent{i}")),
            "{titles:?}"
        );
    }
}

#[test]
fn plain_git_fetch_with_or_without_plus_loses_nothing_and_sync_merges_it() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "X", &[]);
    let y = a.new_issue("alice", "Y", &[]);
    a.sync(&[]);

    // A clone made by plain git, with the event refs fetched by plain git,
    // is a working store.
    let d = Node::clone(&w, "d", &url);
    d.git(&["fetch", "-q", "origin", "refs/reposix/*:refs/reposix/*"]);
    assert_eq!(d.ids(), BTreeSet::from([x.clone(), y.clone()]));
    // A first sync leaves its reflog mark: later scans only read reflogs
    // modified since, which must still catch the forced fetch below.
    assert_eq!(d.sync(&[])["pushed"], 0);

    // Both sides write to the same issues.
    a.rx("alice", &["issue", "comment", &x, "a on x"]).ok();
    a.rx("alice", &["issue", "edit", &y, "--title", "Y by a"])
        .ok();
    a.sync(&[]);
    d.rx("dave", &["issue", "comment", &x, "d on x"]).ok();
    d.rx("dave", &["issue", "comment", &y, "d on y"]).ok();
    let before = d.git(&["for-each-ref", "refs/reposix/"]);

    // Without `+`, git refuses the non-fast-forwards and keeps ours.
    let refused = d.git_run(&["fetch", "origin", "refs/reposix/*:refs/reposix/*"]);
    assert_ne!(refused.code, 0, "git accepted a non-fast-forward");
    assert!(
        refused.stderr.contains("non-fast-forward"),
        "{}",
        refused.stderr
    );
    assert_eq!(d.git(&["for-each-ref", "refs/reposix/"]), before);
    // Into another namespace: unknown to reposix, harmless.
    d.git(&["fetch", "-q", "origin", "refs/reposix/*:refs/side/*"]);
    // With `+`, git overwrites our refs: our comments vanish from them...
    d.git(&["fetch", "-q", "origin", "+refs/reposix/*:refs/reposix/*"]);
    assert!(!d.comments(&x).contains("d on x"));
    assert!(!d.comments(&y).contains("d on y"));

    // ...and the next sync takes them back from the reflog, merges, pushes.
    let report = d.sync(&[]);
    let recovered: BTreeSet<String> = report["recovered"]
        .as_array()
        .expect("recovered")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        recovered,
        BTreeSet::from([x.clone(), y.clone()]),
        "{report}"
    );
    assert_eq!(
        d.comments(&x),
        BTreeSet::from(["a on x".to_owned(), "d on x".to_owned()])
    );
    assert_eq!(d.comments(&y), BTreeSet::from(["d on y".to_owned()]));
    assert_eq!(d.show(&y)["title"], "Y by a");
    a.sync(&[]);
    assert_eq!(a.shows(), d.shows());
    // A second sync has nothing left to recover.
    assert_eq!(d.sync(&[])["recovered"], serde_json::json!([]));
}

/// Regression for grite #26: pulled events never reached the local view
/// ("Pulled 41 events, issue list 0").
#[test]
fn after_git_clone_and_sync_issue_list_shows_every_remote_issue() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    for i in 0..5 {
        a.new_issue("alice", &format!("issue {i}"), &["-l", "l"]);
    }
    let closed = a.new_issue("alice", "closed one", &[]);
    a.rx("alice", &["issue", "close", &closed]).ok();
    a.sync(&[]);

    let e = Node::clone(&w, "e", &url);
    assert!(e.ids().is_empty());
    let report = e.sync(&[]);
    assert_eq!(report["created"], 6, "{report}");
    assert_eq!(e.ids(), a.ids());
    assert_eq!(e.ids().len(), 6);
    assert_eq!(e.shows(), a.shows());
}

/// A `git gc --auto` that an earlier write started in the background
/// removes empty `objects/xx/` directories; a fetch unpacking loose objects
/// beside it failed with "unable to create temporary file" (CLI model seed
/// 1121, step 127, exit 1). What a sync fetches is kept as a pack, which no
/// gc removes from under it: no loose object is written, however few are
/// fetched.
#[test]
fn a_sync_writes_what_it_fetches_as_a_pack_and_no_loose_object() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let issue = a.new_issue("alice", "one issue", &[]);
    a.sync(&[]);

    let b = Node::init(&w, "b", &url);
    let loose = |node: &Node| -> (u64, u64) {
        let counts = node.git(&["count-objects", "-v"]);
        let field = |name: &str| {
            counts
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("a count")
        };
        (field("count:"), field("in-pack:"))
    };
    assert_eq!(loose(&b), (0, 0));
    let report = b.sync(&[]);
    assert_eq!(report["created"], 1, "{report}");
    let (count, in_pack) = loose(&b);
    assert_eq!(count, 0, "the fetch wrote loose objects");
    assert!(
        in_pack >= 3,
        "the issue's commit, tree and event: {in_pack}"
    );
    assert_eq!(b.show(&issue)["title"], "one issue");
}

#[test]
fn a_rejected_push_is_answered_per_issue_by_fetch_merge_and_push() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "X", &[]);
    let y = a.new_issue("alice", "Y", &[]);
    a.sync(&[]);
    let b = Node::init(&w, "b", &url);
    b.sync(&[]);
    b.rx("bob", &["issue", "comment", &x, "b on x"]).ok();
    b.sync(&[]);

    // a pushes without fetching first: its view of X is stale, Y is not.
    a.rx("alice", &["issue", "comment", &x, "a on x"]).ok();
    a.rx("alice", &["issue", "comment", &y, "a on y"]).ok();
    let report = a.sync(&["--push"]);
    assert_eq!(report["rounds"], 2, "{report}");
    assert_eq!(report["retried"], serde_json::json!([x]), "{report}");
    assert_eq!(report["pushed"], 2, "{report}");
    assert_eq!(report["merged"], 1, "{report}");

    b.sync(&[]);
    assert_eq!(
        b.comments(&x),
        BTreeSet::from(["a on x".to_owned(), "b on x".to_owned()])
    );
    assert_eq!(a.shows(), b.shows());
}

/// Rounds above the lease limit push without leases: still no `+`, so a
/// stale view is refused by git (not forced) and answered by a merge.
#[test]
fn without_leases_a_stale_push_is_still_refused_and_answered_by_a_merge() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "X", &[]);
    a.sync(&[]);
    let b = Node::init(&w, "b", &url);
    b.sync(&[]);
    b.rx("bob", &["issue", "comment", &x, "b on x"]).ok();
    b.sync(&[]);

    a.rx("alice", &["issue", "comment", &x, "a on x"]).ok();
    let report = a.sync(&["--push", "--lease-limit", "0"]);
    assert_eq!(report["rounds"], 2, "{report}");
    assert_eq!(report["retried"], serde_json::json!([x]), "{report}");
    let on_remote = reposix::repo::Repo::open(&remote).expect("open remote");
    let state = on_remote.show(x.parse().expect("id")).expect("show x");
    let bodies: BTreeSet<String> = state.comments.iter().map(|c| c.body.clone()).collect();
    assert_eq!(
        bodies,
        BTreeSet::from(["a on x".to_owned(), "b on x".to_owned()])
    );
}

#[test]
fn when_retries_run_out_the_issues_behind_are_named_and_nothing_is_lost() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "X", &[]);
    let y = a.new_issue("alice", "Y", &[]);
    a.sync(&[]);
    let b = Node::init(&w, "b", &url);
    b.sync(&[]);
    b.rx("bob", &["issue", "comment", &x, "b on x"]).ok();
    b.sync(&[]);

    a.rx("alice", &["issue", "comment", &x, "a on x"]).ok();
    a.rx("alice", &["issue", "comment", &y, "a on y"]).ok();
    let run = a
        .rx("alice", &["sync", "--push", "--retries", "0"])
        .code(10);
    let short = &x.replace('-', "")[..8];
    assert!(run.stderr.contains("still behind origin"), "{}", run.stderr);
    assert!(run.stderr.contains(short), "{}", run.stderr);
    assert!(run.stderr.contains("reposix sync"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing local is lost"),
        "{}",
        run.stderr
    );
    // The other issue was not held back; the contended one kept its event.
    let on_remote = reposix::repo::Repo::open(&remote).expect("open remote");
    let y_remote = on_remote.show(y.parse().expect("id")).expect("show y");
    assert_eq!(y_remote.comments.len(), 1);
    assert_eq!(a.comments(&x), BTreeSet::from(["a on x".to_owned()]));
    // JSON: the error envelope with the distinct exit code.
    let run = a.rx("alice", &["--json", "sync", "--push", "--retries", "0"]);
    let v = run.envelope();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "sync_incomplete");
    assert_eq!(v["error"]["exit"], 10);

    let report = a.sync(&[]);
    assert_eq!(report["merged"], 1, "{report}");
    b.sync(&[]);
    assert_eq!(
        b.comments(&x),
        BTreeSet::from(["a on x".to_owned(), "b on x".to_owned()])
    );
}

#[test]
fn a_sync_with_nothing_new_pushes_nothing_and_the_halves_do_what_they_say() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "X", &[]);
    a.sync(&[]);
    let remote_refs = || {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, w.home()).args([
            "--git-dir",
            remote.to_str().expect("UTF-8"),
            "for-each-ref",
        ]);
        run(cmd).ok().stdout
    };
    let before = remote_refs();
    let report = a.sync(&[]);
    assert_eq!(report["rounds"], 0, "a no-op ran git push: {report}");
    assert_eq!(report["pushed"], 0);
    assert_eq!(report["fetched"], 0);
    assert_eq!(remote_refs(), before);

    a.rx("alice", &["issue", "comment", &x, "later"]).ok();
    let report = a.sync(&["--pull"]);
    assert_eq!(report["rounds"], 0, "--pull pushed: {report}");
    assert_eq!(remote_refs(), before);
    let report = a.sync(&["--push"]);
    assert_eq!(report["pushed"], 1, "{report}");
    assert_ne!(remote_refs(), before);
}

#[test]
fn a_damaged_remote_log_is_reported_and_holds_back_no_other_issue() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let good = a.new_issue("alice", "good", &[]);
    a.sync(&[]);
    // Someone put a commit that is no issue log under an issue ref.
    let bad = "0b0b0b0b-0000-4000-8000-000000000000";
    let git_remote = |args: &[&str]| {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, w.home())
            .arg("--git-dir")
            .arg(&remote)
            .args(args);
        run(cmd).ok().stdout.trim().to_owned()
    };
    let empty_tree = git_remote(&["hash-object", "-t", "tree", "-w", "/dev/null"]);
    let commit = git_remote(&["commit-tree", &empty_tree, "-m", "junk"]);
    git_remote(&["update-ref", &format!("refs/reposix/issues/{bad}"), &commit]);

    let b = Node::init(&w, "b", &url);
    // Not a success: the damaged issue did not sync (exit 10, one envelope
    // with `ok: false` and the report as its data).
    let run = b.rx("bob", &["--json", "sync"]).code(10);
    let env = run.envelope();
    assert_eq!(env["ok"], false, "{env}");
    assert_eq!(env["error"]["exit"], 10, "{env}");
    let data = &env["data"];
    assert_eq!(data["created"], 1, "{data}");
    assert_eq!(data["damaged"][0]["issue"], bad, "{data}");
    let message = env["error"]["message"].as_str().expect("message");
    assert!(message.contains(bad), "{message}");
    assert_eq!(b.ids(), BTreeSet::from([good]));
}

#[test]
fn an_unreachable_remote_fails_fast_with_exit_9_and_local_issues_intact() {
    let w = TestRepo::new();
    let port = free_port();
    let a = Node::init(&w, "a", &format!("git://127.0.0.1:{port}/x"));
    let x = a.new_issue("alice", "X", &["-b", "offline body"]);
    a.rx("alice", &["issue", "comment", &x, "offline comment"])
        .ok();
    let before = a.shows();

    let started = Instant::now();
    let run = a.rx("alice", &["sync"]).code(9);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("remote unreachable"), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: local issues are intact"),
        "{}",
        run.stderr
    );
    let v = a
        .rx("alice", &["--json", "sync", "--push"])
        .code(9)
        .envelope();
    assert_eq!(v["error"]["kind"], "remote_unreachable");
    assert_eq!(a.shows(), before);
    assert_eq!(a.rx("alice", &["fsck"]).ok().code, 0);
}

#[test]
fn a_credential_in_a_remote_url_never_appears_in_output() {
    let w = TestRepo::new();
    let port = free_port();
    let url = format!("http://user:s3cret@127.0.0.1:{port}/x.git");
    let a = Node::init(&w, "a", &url);
    a.new_issue("alice", "X", &[]);
    let runs = [
        a.rx("alice", &["sync"]),
        a.rx("alice", &["--json", "sync"]),
        a.rx("alice", &["sync", "--push"]),
        a.rx("alice", &["sync", &url]),
        a.rx("alice", &["--json", "sync", &url]),
    ];
    for run in runs {
        assert_eq!(run.code, 9, "{}: {}{}", run.what, run.stdout, run.stderr);
        assert!(
            !run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"),
            "credential leaked by `{}`:\n{}{}",
            run.what.replace("s3cret", "<redacted>"),
            run.stdout,
            run.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// Hostile input and damage (issue 10)

/// Run `git` in `node` with `input` on stdin; stdout trimmed.
#[track_caller]
fn git_stdin(node: &Node, args: &[&str], input: &[u8]) -> String {
    let mut cmd = node.cmd("git");
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running git");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input)
        .expect("writing to git");
    let out = child.wait_with_output().expect("waiting for git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Write an issue-log commit by hand: the format marker plus `events`
/// (name, content) on top of `parent`.
fn raw_log_commit(node: &Node, events: &[(String, Vec<u8>)], parent: Option<&str>) -> String {
    let blob = |bytes: &[u8]| git_stdin(node, &["hash-object", "-w", "--stdin"], bytes);
    let format = blob(b"reposix-events 1\n");
    let mut listing = String::new();
    for (name, bytes) in events {
        listing.push_str(&format!("100644 blob {}\t{name}\n", blob(bytes)));
    }
    let events_tree = git_stdin(node, &["mktree"], listing.as_bytes());
    let root = git_stdin(
        node,
        &["mktree"],
        format!("040000 tree {events_tree}\tevents\n100644 blob {format}\tformat\n").as_bytes(),
    );
    let mut args = vec!["commit-tree", root.as_str(), "-m", "hand-made"];
    if let Some(p) = parent {
        args.extend(["-p", p]);
    }
    node.git(&args)
}

/// The (name, content) of every event blob at `rev`.
fn event_blobs(node: &Node, rev: &str) -> Vec<(String, Vec<u8>)> {
    node.git(&["ls-tree", &format!("{rev}:events")])
        .lines()
        .map(|l| {
            let (meta, name) = l.split_once('\t').expect("ls-tree line");
            let oid = meta.split_whitespace().nth(2).expect("oid");
            let mut cmd = node.cmd("git");
            cmd.args(["cat-file", "blob", oid]);
            let bytes = cmd.output().expect("cat-file").stdout;
            (name.to_owned(), bytes)
        })
        .collect()
}

/// Append an event with a hostile clock through the library (as a hostile
/// writer's own reposix would, before pushing with plain git).
fn append_clock_jump(node: &Node, issue: &str) {
    use reposix::event::{ActorId, Event, IssueId, Op, EVENT_FORMAT_VERSION};
    use reposix::store::EventStore;
    let repo = reposix::repo::Repo::open(&node.dir).expect("opens");
    let id: IssueId = issue.parse().expect("id");
    let log = repo.load(id).expect("loads");
    let e = Event {
        v: EVENT_FORMAT_VERSION,
        issue: id,
        actor: ActorId::new("mallory").expect("actor"),
        lamport: u64::MAX,
        wall_ms: 0,
        parents: log.events.heads(),
        op: Op::SetTitle {
            title: "pwned".into(),
        },
    };
    let (eid, bytes) = e.seal();
    repo.store()
        .append(id, &[(eid, bytes)], "hostile")
        .expect("appends");
}

fn issue_refs(node: &Node, git_dir: Option<&Path>) -> BTreeSet<String> {
    let mut cmd = node.cmd("git");
    if let Some(d) = git_dir {
        cmd.arg("--git-dir").arg(d);
    }
    cmd.args([
        "for-each-ref",
        "--format=%(refname)",
        "refs/reposix/issues/",
    ]);
    run(cmd)
        .ok()
        .stdout
        .lines()
        .map(|l| l.trim_start_matches("refs/reposix/issues/").to_owned())
        .collect()
}

/// Regression (issue 10, defect 3): after an unpushed edit, a forced
/// `git fetch +refs/reposix/*:…` and four more local writes, the edit was
/// gone for good: recovery read only the last 4 reflog entries.
#[test]
fn a_forced_fetch_loses_nothing_however_many_local_writes_follow() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "X", &[]);
    a.sync(&[]);
    let b = Node::clone(&w, "b", &url);
    b.sync(&[]);
    b.rx("bob", &["issue", "comment", &x, "from b"]).ok();
    b.sync(&[]);

    a.rx("alice", &["issue", "edit", &x, "--title", "Edited offline"])
        .ok();
    a.git(&["fetch", "-q", "origin", "+refs/reposix/*:refs/reposix/*"]);
    assert_eq!(
        a.show(&x)["title"],
        "X",
        "the forced fetch dropped the edit"
    );
    for i in 0..6 {
        a.rx("alice", &["issue", "comment", &x, &format!("later {i}")])
            .ok();
    }
    let report = a.sync(&[]);
    assert_eq!(report["recovered"], serde_json::json!([x]), "{report}");
    let shown = a.show(&x);
    assert_eq!(shown["title"], "Edited offline", "{shown}");
    assert_eq!(comment_bodies(&shown).len(), 7, "{shown}");
    b.sync(&[]);
    assert_eq!(a.shows(), b.shows());
}

/// Age a file as if a killed process had left it an hour ago.
fn make_stale(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let f = std::fs::File::create(path).expect("create lock");
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .expect("set mtime");
}

/// Regression (issue 10, defect 4): a killed `sync` left
/// `refs/reposix-remotes/<remote>/issues/<id>.lock`, stale-lock cleanup only
/// covered `refs/reposix/issues/*`, so every later sync failed, with an
/// error that did not name the file.
#[test]
fn a_lock_left_by_a_killed_sync_does_not_wedge_later_syncs() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "X", &[]);
    a.sync(&[]);
    let b = Node::clone(&w, "b", &url);
    b.sync(&[]);
    b.rx("bob", &["issue", "comment", &x, "from b"]).ok();
    b.sync(&[]);

    // A fresh lock (a sync running now): the failure names the file.
    let lock = a
        .dir
        .join(".git/refs/reposix-remotes/origin/issues")
        .join(format!("{x}.lock"));
    std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
    std::fs::write(&lock, b"").expect("lock");
    let run = a.rx("alice", &["sync"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{x}.lock")),
        "the error names the lock file: {}",
        run.stderr
    );

    // The same lock once stale (its writer was killed), and stale locks in
    // the other namespaces sync writes: cleared, the sync goes through.
    make_stale(&lock);
    let staged = a
        .dir
        .join(".git/refs/reposix-push/1-0/issues")
        .join(format!("{x}.lock"));
    make_stale(&staged);
    let report = a.sync(&[]);
    assert_eq!(report["fast_forwarded"], 1, "{report}");
    assert_eq!(
        report["stale_locks"].as_array().expect("locks").len(),
        2,
        "{report}"
    );
    assert!(!lock.exists() && !staged.exists());
    assert!(a.comments(&x).contains("from b"));
}

/// Regression (issue 10, defect 5): `reposix -C A sync` with
/// `origin = ../bare.git` resolved the path against the caller's directory
/// and pushed to another repository, exit 0.
#[test]
fn dash_c_resolves_a_relative_remote_against_the_repository() {
    let w = TestRepo::new();
    std::fs::create_dir_all(w.home().join("p")).expect("mkdir");
    std::fs::create_dir_all(w.home().join("q/sub")).expect("mkdir");
    let right = bare(&w, "p/bare.git");
    let decoy = bare(&w, "q/bare.git");
    let a = Node::init(&w, "p/a", "../bare.git");
    let x = a.new_issue("alice", "X", &[]);
    // Run from q/sub, where `../bare.git` is the decoy.
    let mut cmd = Command::new(BIN);
    hermetic(&mut cmd, w.home())
        .current_dir(w.home().join("q/sub"))
        .arg("-C")
        .arg(&a.dir)
        .args(["--actor", "alice", "sync"]);
    run(cmd).ok();
    assert_eq!(issue_refs(&a, Some(&right)), BTreeSet::from([x]));
    assert!(
        issue_refs(&a, Some(&decoy)).is_empty(),
        "pushed to the decoy"
    );
}

/// Regression (issue 10, defect 7): with damaged local issues (a ref to a
/// blob or a tag, an event that does not decode, a blob whose content does
/// not hash to its name, an event breaking the clock rule) `sync` pushed
/// them all with exit 0 and `damaged: []`.
#[test]
fn damaged_local_issues_are_not_pushed_and_the_exit_code_says_so() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let good = a.new_issue("alice", "Healthy", &[]);
    let to_blob = "0d000001-0000-4000-8000-000000000001";
    let to_tag = "0d000001-0000-4000-8000-000000000002";
    let undecodable = "0d000001-0000-4000-8000-000000000003";
    let mismatch = "0d000001-0000-4000-8000-000000000004";
    let blob = git_stdin(&a, &["hash-object", "-w", "--stdin"], b"junk");
    a.git(&[
        "update-ref",
        &format!("refs/reposix/issues/{to_blob}"),
        &blob,
    ]);
    let good_tip = a.git(&["rev-parse", &format!("refs/reposix/issues/{good}")]);
    a.git(&["tag", "-a", "-m", "a tag", "t1", &good_tip]);
    let tag = a.git(&["rev-parse", "t1"]);
    a.git(&["update-ref", &format!("refs/reposix/issues/{to_tag}"), &tag]);
    let garbage = b"garbage".to_vec();
    let name = reposix::event::EventId::of_bytes(&garbage).to_hex();
    let c = raw_log_commit(&a, &[(name, garbage)], None);
    a.git(&[
        "update-ref",
        &format!("refs/reposix/issues/{undecodable}"),
        &c,
    ]);
    let (_, create) = event_blobs(&a, &good_tip).remove(0);
    let c = raw_log_commit(&a, &[("a".repeat(64), create)], None);
    a.git(&["update-ref", &format!("refs/reposix/issues/{mismatch}"), &c]);
    let jumped = a.new_issue("alice", "Clock jump", &[]);
    append_clock_jump(&a, &jumped);

    let run = a.rx("alice", &["--json", "sync"]).code(10);
    let env = run.envelope();
    assert_eq!(env["ok"], false, "{env}");
    let damaged: BTreeSet<String> = env["data"]["damaged_local"]
        .as_array()
        .expect("damaged_local")
        .iter()
        .map(|d| d["issue"].as_str().expect("issue").to_owned())
        .collect();
    let want = BTreeSet::from([
        to_blob.to_owned(),
        to_tag.to_owned(),
        undecodable.to_owned(),
        mismatch.to_owned(),
        jumped.clone(),
    ]);
    assert_eq!(damaged, want, "{env}");
    assert_eq!(issue_refs(&a, Some(&remote)), BTreeSet::from([good]));
    let message = env["error"]["message"].as_str().expect("message");
    assert!(message.contains(&jumped), "{message}");
    // In text mode too: named on stderr, exit 10.
    let run = a.rx("alice", &["sync"]).code(10);
    assert!(run.stderr.contains(undecodable), "{}", run.stderr);
}

/// Regression (issue 10, defect 8): after a remote added a bad event to a
/// healthy issue, later local writes to it were never pushed, and `sync`
/// exited 0. Now: exit 10, the issue named, and what to do.
#[test]
fn a_poisoned_remote_ref_is_reported_with_exit_10_and_what_to_do() {
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "X", &[]);
    let y = a.new_issue("alice", "Y", &[]);
    let other = a.new_issue("alice", "Other", &[]);
    a.sync(&[]);
    let c = Node::clone(&w, "c", &url);
    c.sync(&[]);
    // On X, an event that does not decode, pushed with plain git.
    let tip = c.git(&["rev-parse", &format!("refs/reposix/issues/{x}")]);
    let mut events = event_blobs(&c, &tip);
    let garbage = b"\xa1garbage".to_vec();
    events.push((
        reposix::event::EventId::of_bytes(&garbage).to_hex(),
        garbage,
    ));
    let poisoned = raw_log_commit(&c, &events, Some(&tip));
    c.git(&[
        "push",
        "-q",
        "origin",
        &format!("{poisoned}:refs/reposix/issues/{x}"),
    ]);
    // On Y, an event with a hostile clock.
    append_clock_jump(&c, &y);
    c.git(&["push", "-q", "origin", &format!("refs/reposix/issues/{y}")]);

    a.rx("alice", &["issue", "comment", &x, "written after"])
        .ok();
    a.rx("alice", &["issue", "comment", &other, "unrelated"])
        .ok();
    let run = a.rx("alice", &["sync"]).code(10);
    for id in [&x, &y] {
        assert!(run.stderr.contains(id.as_str()), "{}", run.stderr);
    }
    assert!(run.stderr.contains("not merged"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    // Local work is intact, nothing hostile came in, the rest synced.
    assert!(a.comments(&x).contains("written after"));
    assert_eq!(a.show(&y)["title"], "Y");
    let d = Node::clone(&w, "d", &url);
    d.git(&["fetch", "-q", "origin", "refs/reposix/*:refs/reposix/*"]);
    assert!(d.comments(&other).contains("unrelated"));
}

/// A forced `git fetch` dropped a clone's own tracker records (the bind
/// and export of an issue it had exported and not pushed), and the next
/// `reposix sync --backend` worked from the log without them: only `reposix
/// sync` looked in the reflogs. A tracker sync imports and exports again
/// what such records state (the CLI soak's seed 1010 doubled a body token
/// that way). The tracker sync now recovers first, and says so.
#[test]
fn a_tracker_sync_first_recovers_what_a_forced_fetch_dropped() {
    reposix::tracker::http::install_crypto_provider();
    let sim = reposix_sim::start(reposix_sim::SimConfig {
        rate_limit: 0,
        ..reposix_sim::SimConfig::default()
    })
    .expect("sim starts");
    let project = sim.project_url("demo");
    let w = TestRepo::new();
    let remote = bare(&w, "remote.git");
    let url = path_url(&remote);
    let a = Node::init(&w, "a", &url);
    let x = a.new_issue("alice", "Recovered before export", &["-b", "first text"]);
    a.sync(&[]);
    a.rx(
        "alice",
        &["backend", "add", "sim", &format!("sim::{project}")],
    )
    .ok();
    a.rx("alice", &["sync", "--backend", "sim", "--yes"]).ok();
    assert_eq!(a.show(&x)["trackers"].as_array().map(Vec::len), Some(1));

    a.git(&["fetch", "-q", "origin", "+refs/reposix/*:refs/reposix/*"]);
    assert_eq!(
        a.show(&x)["trackers"].as_array().map(Vec::len),
        Some(0),
        "the forced fetch dropped the export record"
    );
    let report = a.json("alice", &["sync", "--backend", "sim"]);
    assert_eq!(report["recovered"], serde_json::json!([x]), "{report}");
    let shown = a.show(&x);
    assert_eq!(
        shown["trackers"].as_array().map(Vec::len),
        Some(1),
        "{shown}"
    );
    assert_eq!(shown["body"], "first text");
    let copies = reqwest::blocking::get(format!("{}/projects/demo/issues", sim.base_url()))
        .and_then(|r| r.json::<Vec<Value>>())
        .expect("the sim lists its issues")
        .into_iter()
        .filter(|i| i["title"] == "Recovered before export")
        .count();
    assert_eq!(copies, 1, "one copy on the tracker");
}
