//! Progress of long tracker work, on stderr, for people.
//!
//! On a terminal (stderr is a tty, not `--json`, `TERM` is not `dumb`)
//! progress lines (`importing…`, `1500/5000 issues`) rewrite one status
//! line once the work has run for about a second
//! (`REPOSIX_PROGRESS_AFTER_MS`, default 1000); off a terminal they are not
//! printed. Notices that matter in a log too (a rate-limit wait, a renamed
//! repository) are printed on their own line either way. [`Progress::finish`]
//! clears the status line and prints the summary line.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A progress display; `Sync` so the tracker's notice hook can share it.
pub struct Progress {
    tty: bool,
    quiet: bool,
    start: Instant,
    after: Duration,
    /// Whether a status line is on screen (to clear before other output).
    status_shown: Mutex<bool>,
}

impl Progress {
    /// A display for a command whose output mode is `json`.
    pub fn new(json: bool) -> Progress {
        let tty = !json
            && std::io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        let after = std::env::var("REPOSIX_PROGRESS_AFTER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(1), Duration::from_millis);
        Progress {
            tty,
            quiet: json,
            start: Instant::now(),
            after,
            status_shown: Mutex::new(false),
        }
    }

    /// A progress line: the status line on a terminal after the delay.
    pub fn step(&self, line: &str) {
        if !self.tty || self.start.elapsed() < self.after {
            return;
        }
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = self.start.elapsed().as_secs_f64();
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K{} [{elapsed:.0} s]",
            super::safe_message(line.trim())
        );
        *shown = true;
    }

    /// A notice (rate-limit wait, rename): its own line, terminal or not.
    pub fn notice(&self, line: &str) {
        if self.quiet {
            return;
        }
        self.clear();
        let _ = writeln!(std::io::stderr(), "{}", super::safe_message(line));
    }

    fn clear(&self) {
        let mut shown = self.status_shown.lock().unwrap_or_else(|e| e.into_inner());
        if *shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            *shown = false;
        }
    }

    /// Clear the status line and print `summary` (with the elapsed time) on
    /// stderr, unless in `--json` mode.
    pub fn finish(&self, summary: &str) {
        if self.quiet {
            return;
        }
        self.clear();
        let _ = writeln!(
            std::io::stderr(),
            "{summary} in {:.1} s",
            self.start.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
