//! Git: running the system `git` (this module is the one place child git
//! processes are started, waited for with a deadline, and killed), which
//! remote a command means ([`remote`]), what git's messages and push
//! results say ([`stderr`], [`push`]), and the one redaction of secrets
//! ([`redact`]).
//!
//! Every invocation gets `GIT_TERMINAL_PROMPT=0` and `GCM_INTERACTIVE=never`
//! (a missing credential fails instead of hanging), `LC_ALL=C` (messages
//! that callers classify stay in English), and a closed stdin. On timeout
//! or cancellation git is killed together with its children
//! (`git-remote-http`, ssh), which otherwise outlive it holding the pipes.

pub mod push;
pub mod redact;
pub mod remote;
pub mod stderr;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What every `git push` of reposix's refs carries after `push`: output
/// per ref that [`push::parse_porcelain`] reads, and none of what is meant
/// for branches of code (hooks such as tests or linters, signing, tags,
/// submodules, a user's `push.useForceIfIncludes`).
pub const PUSH_FLAGS: [&str; 6] = [
    "--porcelain",
    "--no-verify",
    "--no-signed",
    "--no-follow-tags",
    "--recurse-submodules=no",
    "--no-force-if-includes",
];

/// What every `git fetch` of reposix's refs carries before `fetch`: keep
/// what it fetches as a pack, however few objects. Unpacked, they would be
/// written as loose objects into `objects/xx/` directories that a `git gc
/// --auto` running beside the fetch (writers start one, see
/// `store::maintenance`) may remove between their creation and the write,
/// and the fetch fails ("unable to create temporary file"); `objects/pack`
/// is never removed. Git's own auto maintenance after a fetch folds the
/// small packs together.
pub const FETCH_CONFIG: [&str; 2] = ["-c", "fetch.unpackLimit=1"];

/// What every `git fetch` of reposix's refs carries after `fetch`: no
/// progress, no tags, no `FETCH_HEAD`, no submodules.
pub const FETCH_FLAGS: [&str; 4] = [
    "--quiet",
    "--no-tags",
    "--no-write-fetch-head",
    "--recurse-submodules=no",
];

/// What a finished git invocation printed.
#[derive(Debug)]
pub struct GitOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

/// Why a git invocation did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// It could not be started.
    #[error("could not start git")]
    Spawn(#[source] std::io::Error),
    /// It ran past its deadline and was killed.
    #[error("git ran past its deadline and was killed")]
    TimedOut,
    /// The caller's cancel flag was set; it was killed.
    #[error("git was cancelled")]
    Cancelled,
}

/// `git --git-dir <git_dir>` with the environment described above, run
/// where `git -C` would run it (so relative remote paths in the
/// configuration or the arguments resolve against the repository, not the
/// caller's directory): the top of the work tree for a `.git` directory,
/// else the git directory itself. Callers that know the work tree better
/// (a linked worktree) set `current_dir` again.
pub fn command(git_dir: &Path) -> Command {
    let git_dir = std::path::absolute(git_dir).unwrap_or_else(|_| git_dir.to_path_buf());
    let mut cmd = Command::new("git");
    let top = match git_dir.file_name() {
        Some(name) if name == ".git" => git_dir.parent(),
        _ => Some(git_dir.as_path()),
    };
    if let Some(top) = top.filter(|d| d.is_dir()) {
        cmd.current_dir(top);
    }
    cmd.arg("--git-dir")
        .arg(&git_dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GCM_INTERACTIVE", "never")
        .env("LC_ALL", "C")
        .env("LANGUAGE", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Run `cmd` (from [`command`]) to completion, within `timeout`, stopping
/// early when `cancel` is set.
pub fn run(
    mut cmd: Command,
    timeout: Duration,
    cancel: Option<&AtomicBool>,
) -> Result<GitOutput, RunError> {
    let started = Instant::now();
    // Debug log (`reposix -v`): the invocation, its outcome, its time.
    let shown = tracing::enabled!(tracing::Level::DEBUG).then(|| describe(&cmd));
    let log = |outcome: &str| {
        if let Some(shown) = &shown {
            tracing::debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "{shown}: {outcome}"
            );
        }
    };
    let child = cmd.spawn().map_err(|e| {
        log(&format!("could not start: {e}"));
        RunError::Spawn(e)
    })?;
    let mut guard = ChildGuard(child);
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(
        guard
            .0
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        guard
            .0
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_micros(500);
    let status = loop {
        if let Some(status) = guard.0.try_wait().map_err(RunError::Spawn)? {
            break status;
        }
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            guard.kill_tree();
            log("cancelled");
            return Err(RunError::Cancelled);
        }
        let now = Instant::now();
        if now >= deadline {
            // The readers end once the killed processes' pipes close.
            guard.kill_tree();
            log("timed out");
            return Err(RunError::TimedOut);
        }
        std::thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    log(&format!("{status}"));
    Ok(GitOutput {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// `git arg…` as a debug line shows it (the log writer redacts it; the
/// secrets reposix hands git travel in the environment, never here).
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    crate::git::redact::redact(&s)
}

/// A running git process: killed with its children unless waited for.
struct ChildGuard(Child);

impl ChildGuard {
    fn kill_tree(&mut self) {
        // Children first (git-remote-http, ssh), while they are still
        // linked to git: once git is gone they are reparented.
        for _ in 0..2 {
            let pids = descendants(self.0.id());
            if pids.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(pids.iter().map(u32::to_string))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill_tree();
        }
    }
}

/// Processes descending from `root` (Linux `/proc`; empty elsewhere).
fn descendants(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent_of = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some(ppid) = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        parent_of.push((pid, ppid));
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parent_of {
            if parent == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}
