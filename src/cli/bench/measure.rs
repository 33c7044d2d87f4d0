//! Timing for the benchmarks: whole `reposix` and `git` processes, the
//! best or the median of several runs, disk use, and the work directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Milliseconds, as the figures give them.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median (0 for no values).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// How long `f` took.
pub fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

/// The best of `runs` runs of `f` (at least one).
pub fn best_of(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs.max(1) {
        best = best.min(timed(&mut f)?);
    }
    Ok(best)
}

/// A whole `reposix` process (this executable) in `dir`, acting as
/// `bench`: its wall time and stdout; its failure is an error with what
/// it printed.
pub fn reposix(dir: &Path, args: &[&str]) -> anyhow::Result<(Duration, Vec<u8>)> {
    run_reposix(dir, args, Stdio::piped())
}

/// [`reposix`]'s wall time alone (its output discarded, as a terminal
/// user's would not be, but as `> /dev/null` is).
pub fn rx(dir: &Path, args: &[&str]) -> anyhow::Result<Duration> {
    Ok(run_reposix(dir, args, Stdio::null())?.0)
}

fn run_reposix(dir: &Path, args: &[&str], stdout: Stdio) -> anyhow::Result<(Duration, Vec<u8>)> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let out = Command::new(exe)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("REPOSIX_ACTOR", "bench")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "reposix {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((took, out.stdout))
}

/// The median of `runs` whole `reposix` processes, in ms.
pub fn rx_median(dir: &Path, args: &[&str], runs: usize) -> anyhow::Result<f64> {
    let mut v = Vec::new();
    for _ in 0..runs {
        v.push(ms(rx(dir, args)?));
    }
    Ok(median(v))
}

/// `reposix --json ARGS` as a whole process; the `data` of its envelope.
pub fn reposix_json(dir: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(args);
    let (_, out) = reposix(dir, &json_args)?;
    let v: serde_json::Value = serde_json::from_slice(&out)
        .with_context(|| format!("reposix printed {}", String::from_utf8_lossy(&out)))?;
    if v["ok"] != true {
        bail!("reposix {} failed: {v}", args.join(" "));
    }
    Ok(v["data"].clone())
}

/// A git process in the repository at `dir`, timed.
pub fn git_timed(dir: &Path, args: &[&str]) -> anyhow::Result<Duration> {
    timed(|| crate::cli::git::git(dir, args).map(drop))
}

/// A git process in the repository at `dir` reading `input` on stdin,
/// timed from its start (once spawned) to its exit, writing the input
/// included.
pub fn git_fed(dir: &Path, args: &[&str], input: &[u8]) -> anyhow::Result<Duration> {
    let mut cmd = reposix::git::command(&crate::cli::git::git_dir(dir));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("git {}", args.join(" ")))?;
    let start = Instant::now();
    let mut stdin = child.stdin.take().context("git's stdin")?;
    stdin.write_all(input)?;
    drop(stdin);
    let out = child.wait_with_output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// Disk use of a directory in KiB (allocated blocks, like `du -sk`).
pub fn du_kib(dir: &Path) -> u64 {
    let out = Command::new("du").arg("-sk").arg(dir).output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Where a run works: the directory given (kept), else a temporary one
/// (removed when this is dropped).
pub struct WorkDir {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl WorkDir {
    /// `dir` if given, else a new temporary `reposix-bench-NAME-…`.
    pub fn new(dir: Option<&PathBuf>, name: &str) -> anyhow::Result<WorkDir> {
        match dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                Ok(WorkDir {
                    path: d.clone(),
                    _temp: None,
                })
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix(&format!("reposix-bench-{name}-"))
                    .tempdir()
                    .context("creating a temporary directory")?;
                Ok(WorkDir {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                })
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
