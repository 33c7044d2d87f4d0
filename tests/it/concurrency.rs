//! Many writers on one issue: processes running the real CLI, threads using
//! the library, and a writer killed with SIGKILL mid-loop. Afterwards every
//! acknowledged event is present, `fsck` is clean and every reader sees one
//! state. Writers start together behind a barrier; no sleep stands in for
//! synchronisation.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use reposix::event::{ActorId, EventId, IssueId};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::store::index::{Index, IssueSummary};
use reposix::store::EventStore;
use serde_json::Value;

use crate::support::{issue_ref, TestRepo, BIN};

/// The comment bodies of an `issue show --json` state.
fn comment_bodies(state: &Value) -> Vec<String> {
    state["comments"]
        .as_array()
        .expect("comments array")
        .iter()
        .map(|c| c["body"].as_str().expect("comment body").to_owned())
        .collect()
}

/// The event ids `reposix log --json` lists.
fn logged_ids(t: &TestRepo, issue: &str) -> BTreeSet<String> {
    t.json(&["log", issue])
        .as_array()
        .expect("log is an array")
        .iter()
        .map(|e| e["id"].as_str().expect("event id").to_owned())
        .collect()
}

/// Every reader agrees on one state: two `show`s, the warm index, a cold
/// index rebuild, and there is exactly one ref.
fn assert_one_resolved_state(t: &TestRepo, issue: &str) -> Value {
    let first = t.show(issue);
    let second = t.show(issue);
    assert_eq!(first, second, "two reads of the same issue differ");
    assert_eq!(t.refs("refs/reposix/"), vec![issue_ref(issue)]);
    let warm = t.json(&["issue", "list", "--state", "all"]);
    std::fs::remove_file(t.git_dir().join("reposix/index-v4")).expect("index file exists");
    let cold = t.json(&["issue", "list", "--state", "all"]);
    assert_eq!(
        warm, cold,
        "cold index rebuild disagrees with the warm index"
    );
    let row = &cold["issues"][0];
    assert_eq!(row["id"], first["id"]);
    let comments = first["comments"].as_array().expect("comments").len();
    assert_eq!(row["comments"], comments);
    assert_eq!(row["lamport"], first["lamport"]);
    first
}

#[test]
fn eight_processes_hundred_comments_each() {
    const PROCS: usize = 8;
    const EACH: usize = 100;
    let t = TestRepo::new();
    let issue = t.new_issue("contended by processes", &[]);
    // The index now caches a tip that the writers will move.
    t.json(&["issue", "list"]);
    // Each child blocks on `read` until the parent has spawned all of them.
    let script = r#"read -r go || exit 90
for i in $(seq 1 "$4"); do
  "$0" -C "$1" --actor "$2" issue comment "$3" "$2 comment $i" >/dev/null || exit
done"#;
    let started = Instant::now();
    let mut children: Vec<Child> = (0..PROCS)
        .map(|p| {
            t.command("bash")
                .arg("-c")
                .arg(script)
                .arg(BIN)
                .arg(t.path())
                .arg(format!("writer{p}"))
                .arg(&issue)
                .arg(EACH.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning a writer")
        })
        .collect();
    for c in &mut children {
        let mut go = c.stdin.take().expect("piped stdin");
        go.write_all(b"go\n").expect("releasing a writer");
    }
    for (p, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().expect("waiting for a writer");
        assert!(
            out.status.success(),
            "writer{p} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "{PROCS} processes x {EACH} comments: {:.1?}",
        started.elapsed()
    );

    let checks = Instant::now();
    let state = assert_one_resolved_state(&t, &issue);
    let bodies = comment_bodies(&state);
    let distinct: BTreeSet<_> = bodies.iter().cloned().collect();
    let expected: BTreeSet<_> = (0..PROCS)
        .flat_map(|p| (1..=EACH).map(move |i| format!("writer{p} comment {i}")))
        .collect();
    assert_eq!(bodies.len(), PROCS * EACH, "duplicated comments");
    assert_eq!(distinct, expected);
    assert_eq!(state["event_count"], PROCS * EACH + 1);
    assert_eq!(logged_ids(&t, &issue).len(), PROCS * EACH + 1);
    t.rx(&["fsck"]).ok();
    eprintln!("checks afterwards: {:.1?}", checks.elapsed());
}

#[test]
fn four_threads_hundred_comments_each() {
    const THREADS: usize = 4;
    const EACH: usize = 100;
    let t = TestRepo::new();
    let creator = ActorId::new("creator").expect("valid actor");
    let issue = t
        .open()
        .create(
            &creator,
            NewIssue {
                title: "contended by threads".into(),
                ..NewIssue::default()
            },
        )
        .expect("creating the issue")
        .issue;
    // The writers, plus one reader that runs until they are done.
    let barrier = Barrier::new(THREADS + 1);
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let (acked, retries, reads) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let repo = Repo::open(t.path()).expect("opening the repository");
            barrier.wait();
            let mut seen = 0;
            let mut reads = 0;
            while !done.load(Ordering::Acquire) {
                let state = repo.show(issue).expect("reading while others write");
                assert!(state.comments.len() >= seen, "a read lost comments");
                seen = state.comments.len();
                let listing = repo.list().expect("listing while others write");
                assert!(listing.damaged.is_empty(), "{:?}", listing.damaged);
                reads += 1;
            }
            reads
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|n| {
                let barrier = &barrier;
                let path = t.path();
                s.spawn(move || {
                    let repo = Repo::open(path).expect("opening the repository");
                    let actor = ActorId::new(&format!("thread{n}")).expect("valid actor");
                    let mut acked = Vec::with_capacity(EACH);
                    let mut retries = 0;
                    barrier.wait();
                    for i in 1..=EACH {
                        let text = format!("thread{n} comment {i}");
                        let w = repo
                            .apply(issue, &actor, &[Change::Comment(text)])
                            .expect("appending a comment");
                        assert_eq!(w.events.len(), 1);
                        acked.extend(w.events);
                        retries += w.retries;
                    }
                    (acked, retries)
                })
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|h| h.join()).collect();
        done.store(true, Ordering::Release);
        let reads = reader.join().expect("reader thread panicked");
        let (mut acked, mut retries) = (Vec::new(), 0);
        for r in results {
            let (ids, n) = r.expect("writer thread panicked");
            acked.extend(ids);
            retries += n;
        }
        (acked, retries, reads)
    });
    eprintln!(
        "{THREADS} threads x {EACH} comments: {:.1?}, {retries} lost CAS races retried, \
         {reads} concurrent reads",
        started.elapsed()
    );

    let repo = t.open();
    let state = repo.show(issue).expect("reading the issue");
    assert_eq!(
        state.to_canonical_json(),
        repo.show(issue).expect("reading again").to_canonical_json()
    );
    let ids: BTreeSet<EventId> = state.comments.iter().map(|c| c.id).collect();
    assert_eq!(ids, acked.iter().copied().collect::<BTreeSet<_>>());
    let bodies: BTreeSet<String> = state.comments.iter().map(|c| c.body.clone()).collect();
    let expected: BTreeSet<String> = (0..THREADS)
        .flat_map(|n| (1..=EACH).map(move |i| format!("thread{n} comment {i}")))
        .collect();
    assert_eq!(state.comments.len(), THREADS * EACH);
    assert_eq!(bodies, expected);

    let report = repo.fsck().expect("running fsck");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.events, THREADS * EACH + 1);

    assert_eq!(repo.store().list_refs().expect("listing refs").len(), 1);
    let index = Index::new(repo.store());
    let warm = index.list(false).expect("listing");
    let cold = index.list(true).expect("rebuilding the index");
    assert_eq!(warm.issues, vec![IssueSummary::of(&state)]);
    assert_eq!(cold.issues, warm.issues);
}

const WRITER_DIR: &str = "REPOSIX_IT_WRITER_DIR";
const WRITER_ISSUE: &str = "REPOSIX_IT_WRITER_ISSUE";

/// Not a test: the writer process of
/// [`sigkill_mid_write_loses_no_acknowledged_event`], which re-executes this
/// test binary running only this function. Appends comments forever and
/// prints `ack <event id>` once each append has returned.
#[test]
#[ignore = "child process of sigkill_mid_write_loses_no_acknowledged_event"]
fn sigkill_writer_child() {
    let (Some(dir), Ok(issue)) = (std::env::var_os(WRITER_DIR), std::env::var(WRITER_ISSUE)) else {
        return; // run by hand: nothing to do
    };
    let repo = Repo::open(Path::new(&dir)).expect("opening the repository");
    let actor = ActorId::new("doomed").expect("valid actor");
    let issue: IssueId = issue.parse().expect("valid issue id");
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let w = repo
            .apply(issue, &actor, &[Change::Comment(format!("doomed {n}"))])
            .expect("appending a comment");
        for id in w.events {
            // One short line, one write(2): it reaches the pipe whole.
            writeln!(out, "ack {id}").expect("writing to the parent");
        }
        out.flush().expect("writing to the parent");
    }
}

/// Kills the child if the test fails while it runs.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkill_mid_write_loses_no_acknowledged_event() {
    use std::os::unix::process::ExitStatusExt;

    const ROUNDS: usize = 6;
    const ACKS: usize = 20;
    let t = TestRepo::new();
    let issue = t.new_issue("killed writer", &[]);
    let lock = t.git_dir().join(format!("{}.lock", issue_ref(&issue)));
    let mut acked = BTreeSet::new();
    let mut locks_left = 0;
    for round in 0..ROUNDS {
        let exe = std::env::current_exe().expect("the test binary");
        let name = module_path!()
            .split_once("::")
            .map_or("", |(_, m)| m)
            .to_owned()
            + "::sigkill_writer_child";
        let child = t
            .command(exe)
            .args([
                "--exact",
                &name,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_DIR, t.path())
            .env(WRITER_ISSUE, &issue)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning the writer");
        let mut child = KillOnDrop(child);
        let mut reader = BufReader::new(child.0.stdout.take().expect("piped stdout"));
        let mut this_round = 0;
        let mut killed = false;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).expect("reading the writer") == 0 {
                break;
            }
            // Only complete lines count: the writer prints them after the
            // append returned.
            let Some(id) = line
                .strip_prefix("ack ")
                .and_then(|l| l.strip_suffix('\n'))
                .filter(|id| id.len() == 64)
            else {
                continue;
            };
            acked.insert(id.to_owned());
            this_round += 1;
            if this_round == ACKS && !killed {
                // Reading an ack means the writer has just started its next
                // append; a random delay of up to about one append spreads
                // the kill over the whole write (read, objects, ref update)
                // instead of always hitting the read. Not synchronisation:
                // any delay is correct.
                std::thread::sleep(Duration::from_micros(fastrand::u64(0..8_000)));
                child.0.kill().expect("sending SIGKILL"); // SIGKILL on unix
                killed = true;
            }
            // Keep reading: lines already in the pipe were acknowledged too.
        }
        let status = child.0.wait().expect("reaping the writer");
        assert!(
            killed,
            "round {round}: the writer stopped after {this_round} acks: {status}"
        );
        assert_eq!(status.signal(), Some(9), "round {round}: {status}");

        // A killed writer's lock is not damage.
        let lock_left = lock.exists();
        let fsck = t.rx(&["fsck"]).ok();
        if lock_left {
            locks_left += 1;
            assert!(fsck.stderr.contains("warning:"), "{}", fsck.stderr);
            assert!(fsck.stderr.contains(".lock"), "{}", fsck.stderr);
        }

        let logged = logged_ids(&t, &issue);
        let missing: Vec<_> = acked.difference(&logged).collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged events lost: {missing:?}"
        );

        // The next write gets through; age a left lock instead of waiting
        // out the 10 s staleness limit.
        if lock_left {
            t.command("touch")
                .args(["-d", "1 minute ago"])
                .arg(&lock)
                .status()
                .expect("running touch")
                .success()
                .then_some(())
                .expect("touch failed");
        }
        let w = t.json(&["issue", "comment", &issue, &format!("after kill {round}")]);
        let id = w["events"][0].as_str().expect("event id").to_owned();
        assert!(logged_ids(&t, &issue).contains(&id));
        assert!(!lock.exists(), "round {round}: the lock outlived a write");
    }
    eprintln!(
        "{ROUNDS} kills, {} acknowledged events, {locks_left} lock files left behind",
        acked.len()
    );
    t.rx(&["fsck"]).ok();
}

#[test]
fn lock_left_by_a_killed_writer_warns_and_clears_once_stale() {
    let t = TestRepo::new();
    let issue = t.new_issue("locked", &[]);
    let lock = t.git_dir().join(format!("{}.lock", issue_ref(&issue)));
    // What a writer killed between taking the lock and renaming it leaves.
    std::fs::write(&lock, "0000000000000000000000000000000000000000\n").expect("writing a lock");

    let fsck = t.rx(&["fsck"]).ok();
    assert!(fsck.stderr.contains("warning:"), "{}", fsck.stderr);
    assert!(
        fsck.stderr.contains(&lock.display().to_string()),
        "{}",
        fsck.stderr
    );
    let report = t.json(&["fsck"]);
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["warnings"][0]["at"], lock.display().to_string());

    t.command("touch")
        .args(["-d", "1 minute ago"])
        .arg(&lock)
        .status()
        .expect("running touch")
        .success()
        .then_some(())
        .expect("touch failed");
    t.rx(&["issue", "comment", &issue, "through the stale lock"])
        .ok();
    assert!(!lock.exists(), "a stale lock was not removed");
    let state = t.show(&issue);
    assert_eq!(comment_bodies(&state), vec!["through the stale lock"]);
    t.rx(&["fsck"]).ok();
}
