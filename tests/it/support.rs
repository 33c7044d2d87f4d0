//! Shared fixtures: [`TestRepo`], a temporary directory holding a real git
//! repository (made by `git init`), and runners for `git` and the built
//! `reposix` binary under a hermetic environment: no system or global git
//! config, `HOME` and `TMPDIR` inside the temp dir, fixed author, committer
//! and dates, no inherited `REPOSIX_ACTOR`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use reposix::repo::Repo;
use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_reposix");

/// The actor [`TestRepo::rx`] acts as.
pub const ACTOR: &str = "tester";

/// Apply the hermetic environment to a child command.
pub fn hermetic<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TMPDIR", home)
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
}

/// What a finished child process left.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The command line, for failure messages.
    pub what: String,
}

impl Run {
    fn from_output(what: String, out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
            what,
        }
    }

    /// Assert the exit code, showing the whole run if it differs.
    #[track_caller]
    pub fn code(self, want: i32) -> Run {
        assert_eq!(
            self.code, want,
            "`{}` exited {} (want {want})\n--- stdout\n{}--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Assert success.
    #[track_caller]
    pub fn ok(self) -> Run {
        self.code(0)
    }

    /// Parse stdout as one `--json` envelope, checking its schema version.
    #[track_caller]
    pub fn envelope(&self) -> Value {
        let v: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{}", self.what, self.stdout));
        assert_eq!(v["schema"], 1, "envelope schema of `{}`: {v}", self.what);
        v
    }

    /// The `data` of a successful `--json` envelope.
    #[track_caller]
    pub fn data(&self) -> Value {
        let v = self.envelope();
        assert_eq!(v["ok"], true, "`{}` failed: {v}", self.what);
        v["data"].clone()
    }
}

/// A temporary git repository with a hermetic environment.
pub struct TestRepo {
    tmp: TempDir,
    root: PathBuf,
}

impl TestRepo {
    /// `git init` a fresh repository (no reposix set-up: the store needs none).
    pub fn new() -> TestRepo {
        let tmp = tempfile::Builder::new()
            .prefix("reposix-it-")
            .tempdir()
            .expect("creating a temp dir");
        let root = tmp.path().join("repo");
        std::fs::create_dir(&root).expect("creating the work tree");
        let repo = TestRepo { tmp, root };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The work tree.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The git directory.
    pub fn git_dir(&self) -> PathBuf {
        self.root.join(".git")
    }

    /// The temp dir (also `HOME` and `TMPDIR` of every child).
    pub fn home(&self) -> &Path {
        self.tmp.path()
    }

    /// A hermetic command running in the work tree.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        hermetic(&mut cmd, self.home()).current_dir(&self.root);
        cmd
    }

    /// Run `git` in the work tree; any exit code.
    pub fn git_run(&self, args: &[&str]) -> Run {
        let out = self
            .command("git")
            .args(args)
            .output()
            .expect("running git");
        Run::from_output(format!("git {}", args.join(" ")), out)
    }

    /// Run `git`, assert success, return stdout without the final newline.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        let run = self.git_run(args).ok();
        run.stdout.trim_end_matches('\n').to_owned()
    }

    /// Fetch every event ref of `other` with plain git (fast-forward only).
    #[track_caller]
    pub fn fetch_events(&self, other: &TestRepo) {
        self.git(&[
            "fetch",
            "-q",
            other.path().to_str().expect("utf-8"),
            "refs/reposix/*:refs/reposix/*",
        ]);
    }

    /// Run `git` with `input` on stdin, assert success, return stdout
    /// without the final newline.
    #[track_caller]
    pub fn git_stdin(&self, args: &[&str], input: &[u8]) -> String {
        let mut child = self
            .command("git")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running git");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .expect("writing to git");
        let out = child.wait_with_output().expect("waiting for git");
        let run = Run::from_output(format!("git {}", args.join(" ")), out).ok();
        run.stdout.trim_end_matches('\n').to_owned()
    }

    /// A hermetic `reposix -C <work tree>` command with no actor given.
    pub fn reposix(&self) -> Command {
        let mut cmd = self.command(BIN);
        cmd.arg("-C").arg(&self.root);
        cmd
    }

    /// Run a prepared command to completion.
    pub fn run(&self, mut cmd: Command) -> Run {
        let what = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let out = cmd.output().expect("running the command");
        Run::from_output(what, out)
    }

    /// `reposix -C <dir> --actor <actor> ARGS…`; any exit code.
    pub fn rx_as(&self, actor: &str, args: &[&str]) -> Run {
        let mut cmd = self.reposix();
        cmd.args(["--actor", actor]).args(args);
        let what = format!("reposix --actor {actor} {}", args.join(" "));
        let out = cmd.output().expect("running reposix");
        Run::from_output(what, out)
    }

    /// `reposix` acting as [`ACTOR`]; any exit code.
    pub fn rx(&self, args: &[&str]) -> Run {
        self.rx_as(ACTOR, args)
    }

    /// `reposix --json ARGS…` as [`ACTOR`]: assert success, return `data`.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.rx(&all).ok().data()
    }

    /// Create an issue with the CLI; returns its full id.
    #[track_caller]
    pub fn new_issue(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["issue", "new", title];
        args.extend_from_slice(extra);
        let data = self.json(&args);
        data["issue"]
            .as_str()
            .expect("issue id in output")
            .to_owned()
    }

    /// The folded state of an issue, from `issue show --json`.
    #[track_caller]
    pub fn show(&self, issue: &str) -> Value {
        self.json(&["issue", "show", issue])
    }

    /// A library handle on the repository.
    pub fn open(&self) -> Repo {
        Repo::open(&self.root).expect("opening the repository")
    }

    /// Every ref under `prefix`, as `git for-each-ref` lists them.
    pub fn refs(&self, prefix: &str) -> Vec<String> {
        self.git(&["for-each-ref", "--format=%(refname)", prefix])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The ref of an issue.
pub fn issue_ref(issue: &str) -> String {
    format!("refs/reposix/issues/{issue}")
}
