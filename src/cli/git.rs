//! git for the scripted commands (the demo, the benchmarks): through the
//! library's one spawner, [`reposix::git::command`] and
//! [`reposix::git::run`], so they get its environment and its deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use reposix::git::RunError;

/// Long enough for a benchmark's push of 100,000 refs; a hung git still
/// ends.
const DEADLINE: Duration = Duration::from_secs(3600);

/// The git directory of `dir`: its `.git` when it has one (a work tree),
/// else `dir` (a bare repository, or one `init` will create).
pub fn git_dir(dir: &Path) -> PathBuf {
    let dot_git = dir.join(".git");
    if dot_git.exists() {
        dot_git
    } else {
        dir.to_path_buf()
    }
}

/// Run `git args` in the repository at `dir`; its stdout, or an error
/// with git's message.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = reposix::git::command(&git_dir(dir));
    cmd.args(args);
    let out = reposix::git::run(cmd, DEADLINE, None)
        .map_err(|e| match e {
            RunError::Spawn(e) => anyhow::Error::from(e).context("could not start git"),
            RunError::TimedOut => anyhow::anyhow!("killed after {}s", DEADLINE.as_secs()),
            RunError::Cancelled => anyhow::anyhow!("cancelled"),
        })
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("git {} failed: {}", args.join(" "), out.stderr.trim());
    }
    Ok(out.stdout)
}

/// `git init --bare` at `path` (created if missing).
pub fn init_bare(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    git(path, &["init", "-q", "--bare"]).map(drop)
}
