//! Bulk writes through `git fast-import`: one pack instead of many loose
//! objects, for imports and benchmarks that create many issues at once.
//!
//! Only creates refs that do not exist yet: fast-import refuses to move an
//! existing ref to a commit that does not descend from it, so a clash fails
//! the batch without touching the existing log. The layout is exactly the
//! one [`super::git`] writes (cumulative `events/` tree plus `format`,
//! layout 2: a directory fans out past [`layout::FANOUT_LIMIT`] events, by
//! [`layout::FanoutModel`]). Refs are packed at the end when there are many
//! ([`super::maintenance::after_bulk`]).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use super::{layout, StoreError};
use crate::event::{check_event_size, EventId, IssueId};

/// A running fast-import session.
#[must_use = "call finish() or the batch is abandoned"]
pub struct BulkWriter {
    child: Child,
    git_dir: std::path::PathBuf,
    input: BufWriter<ChildStdin>,
    marks: u64,
    commits: u64,
    blobs: u64,
    refs: u64,
    summary: String,
    trailers: String,
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::GitCommand {
        command: "fast-import".into(),
        detail: e.to_string(),
    }
}

/// What a finished batch wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkStats {
    /// Commits written.
    pub commits: u64,
    /// Event blobs written.
    pub blobs: u64,
}

impl BulkWriter {
    /// Start `git fast-import` on the repository at `git_dir`.
    pub fn start(git_dir: &Path) -> Result<BulkWriter, StoreError> {
        let mut child = Command::new("git")
            .arg("--git-dir")
            .arg(git_dir)
            .args(["fast-import", "--quiet", "--done", "--date-format=raw"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err)?;
        let stdin = child.stdin.take().expect("BUG: stdin was piped");
        let mut w = BulkWriter {
            child,
            git_dir: git_dir.to_path_buf(),
            input: BufWriter::with_capacity(1 << 20, stdin),
            marks: 1,
            commits: 0,
            blobs: 0,
            refs: 0,
            summary: "bulk".into(),
            trailers: String::new(),
        };
        let marker = layout::format_marker();
        write!(
            w.input,
            "blob\nmark :1\ndata {}\n{}\n",
            marker.len(),
            marker
        )
        .map_err(io_err)?;
        Ok(w)
    }

    /// Name the commits' purpose and add a trailer to every commit (e.g.
    /// `Reposix-Origin: <backend>` for an import).
    pub fn describe(&mut self, summary: &str, trailers: &[(&str, &str)]) {
        self.summary = summary.to_owned();
        self.trailers = trailers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
    }

    /// Write a new issue's log: one commit per batch in `commits`, each
    /// batch's events added to the cumulative tree. `wall_secs` stamps the
    /// commits (display only).
    pub fn issue(
        &mut self,
        issue: IssueId,
        author: &str,
        wall_secs: i64,
        commits: &[Vec<(EventId, Vec<u8>)>],
    ) -> Result<(), StoreError> {
        let refname = layout::issue_ref(issue);
        let mut model = layout::FanoutModel::new();
        self.refs += 1;
        // Readers reject events over the size limit: never write one.
        for (id, bytes) in commits.iter().flatten() {
            check_event_size(bytes.len()).map_err(|source| StoreError::Refused {
                refname: refname.clone(),
                event: id.short(),
                source,
            })?;
        }
        for (n, batch) in commits.iter().enumerate() {
            let first_mark = self.marks + 1;
            for (_, bytes) in batch {
                self.marks += 1;
                self.blobs += 1;
                write!(
                    self.input,
                    "blob\nmark :{}\ndata {}\n",
                    self.marks,
                    bytes.len()
                )
                .map_err(io_err)?;
                self.input.write_all(bytes).map_err(io_err)?;
                self.input.write_all(b"\n").map_err(io_err)?;
            }
            let mut message = format!("reposix: {}\n\n{}", self.summary, self.trailers);
            for (id, _) in batch {
                message.push_str(&format!("Reposix-Event: {id}\n"));
            }
            write!(
                self.input,
                "commit {refname}\nauthor {author} <{author}@reposix> {wall_secs} +0000\ncommitter {author} <{author}@reposix> {wall_secs} +0000\ndata {}\n{message}\n",
                message.len()
            )
            .map_err(io_err)?;
            if n == 0 {
                self.input
                    .write_all(b"M 100644 :1 format\n")
                    .map_err(io_err)?;
            }
            for (i, (id, _)) in batch.iter().enumerate() {
                let Some((moves, path)) = model.insert(*id) else {
                    continue;
                };
                for m in moves {
                    writeln!(self.input, "R {} {}", m.from, m.to).map_err(io_err)?;
                }
                writeln!(self.input, "M 100644 :{} {path}", first_mark + i as u64)
                    .map_err(io_err)?;
            }
            self.input.write_all(b"\n").map_err(io_err)?;
            self.commits += 1;
        }
        Ok(())
    }

    /// End the stream and wait for fast-import to write the pack and refs.
    pub fn finish(mut self) -> Result<BulkStats, StoreError> {
        self.input.write_all(b"done\n").map_err(io_err)?;
        self.input.flush().map_err(io_err)?;
        let BulkWriter {
            child,
            input,
            commits,
            blobs,
            refs,
            git_dir,
            ..
        } = self;
        drop(input);
        let out = child.wait_with_output().map_err(io_err)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(StoreError::GitCommand {
                command: "fast-import".into(),
                detail: stderr.lines().take(5).collect::<Vec<_>>().join(" | "),
            });
        }
        super::maintenance::after_bulk(&git_dir, refs);
        Ok(BulkStats { commits, blobs })
    }
}
