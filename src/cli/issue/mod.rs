//! `reposix issue …`: one file per command, each parsing its arguments,
//! calling the library and printing; the helpers they share are here.

mod change;
mod comment;
mod edit;
mod list;
mod log;
mod new;
mod show;

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use reposix::event::{EventId, IssueId, Status};
use reposix::repo::{Change, Repo, Written};

use super::term::line;
use super::{Ctx, Exit, Failure};

pub use log::run as log;

/// The `reposix issue` subcommands.
#[derive(Subcommand)]
pub enum IssueCmd {
    /// Create an issue (without a title, or on a terminal without a body,
    /// your editor opens: title line, blank line, body).
    New(new::NewArgs),
    /// List issues (30 at a time; `--limit 0` for all).
    ///
    /// QUERY: `status:open label:bug -label:wontfix assignee:me
    /// author:alice updated:>2026-11-01 created:<7d "free text"
    /// sort:updated-desc` (see the README); the flags are sugar for terms.
    List(list::ListArgs),
    /// Show one issue with its comments.
    Show(show::ShowArgs),
    /// Change title, body or custom fields (with none given, your editor
    /// opens on the current title and body).
    Edit(edit::EditArgs),
    /// Add, edit or delete a comment.
    Comment(comment::CommentArgs),
    /// Add labels (or remove them with --remove).
    Label(change::LabelArgs),
    /// Assign actors (or unassign with --remove).
    Assign(change::AssignArgs),
    /// Set the status.
    Status(change::StatusArgs),
    /// Close an issue (status done, or wont_fix).
    Close(change::CloseArgs),
    /// Reopen an issue (status open).
    Reopen(change::ReopenArgs),
    /// Link to another issue (or unlink with --remove).
    Link(change::LinkArgs),
    /// Take a lease on an issue (or the first ready one with --next).
    #[command(
        after_help = "Examples:\n  reposix issue claim 3f2a\n  reposix issue claim --next -l backend --ttl 2h\n  reposix issue claim 3f2a --renew"
    )]
    Claim(super::agents::ClaimArgs),
    /// Give up your lease on an issue (and acknowledge a lost claim).
    #[command(after_help = "Examples:\n  reposix issue release 3f2a")]
    Release {
        /// Issue id or unambiguous prefix.
        issue: String,
    },
}

/// Run one `reposix issue` command.
pub fn run(ctx: &Ctx, cmd: IssueCmd) -> Result<(), Failure> {
    match cmd {
        IssueCmd::New(args) => new::run(ctx, args),
        IssueCmd::List(args) => list::run(ctx, args),
        IssueCmd::Show(args) => show::run(ctx, &args),
        IssueCmd::Edit(args) => edit::run(ctx, args),
        IssueCmd::Comment(args) => comment::run(ctx, args),
        IssueCmd::Label(args) => change::label(ctx, args),
        IssueCmd::Assign(args) => change::assign(ctx, args),
        IssueCmd::Status(args) => change::status(ctx, &args),
        IssueCmd::Close(args) => change::close(ctx, &args),
        IssueCmd::Reopen(args) => change::reopen(ctx, &args),
        IssueCmd::Link(args) => change::link(ctx, args),
        IssueCmd::Claim(args) => super::agents::claim(ctx, args),
        IssueCmd::Release { issue } => super::agents::release(ctx, &issue),
    }
}

/// Items joined on one line, each escaped for the terminal.
fn joined(items: &[String], sep: &str) -> String {
    items
        .iter()
        .map(|i| line(i).into_owned())
        .collect::<Vec<_>>()
        .join(sep)
}

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
        .map_err(|e: reposix::event::DecodeError| e.to_string())
}

/// The body given as text (`-`: stdin) or as a file (`-`: stdin).
fn read_body(body: Option<String>, file: Option<PathBuf>) -> Result<Option<String>, Failure> {
    // Read at most one byte past the limit: a huge file or stream is
    // refused without being held in memory.
    let limit = reposix::event::MAX_BODY_BYTES;
    let read = |what: String, r: &mut dyn std::io::Read| -> Result<String, Failure> {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(r, limit as u64 + 1), &mut buf)
            .map_err(|e| Failure::new(Exit::Invalid, "invalid", format!("{what}: {e}")))?;
        if buf.len() > limit {
            return Err(Failure::new(
                Exit::Invalid,
                "invalid",
                format!("{what}: the body is over the {limit}-byte limit"),
            ));
        }
        String::from_utf8(buf)
            .map_err(|_| Failure::new(Exit::Invalid, "invalid", format!("{what}: not UTF-8")))
    };
    match (body, file) {
        (Some(b), _) if b == "-" => Ok(Some(read("stdin".into(), &mut std::io::stdin().lock())?)),
        (Some(b), _) => Ok(Some(b)),
        (None, Some(path)) if path.as_os_str() == "-" => {
            Ok(Some(read("stdin".into(), &mut std::io::stdin().lock())?))
        }
        (None, Some(path)) => {
            let mut f = std::fs::File::open(&path).map_err(|e| {
                Failure::new(Exit::Invalid, "invalid", format!("{}: {e}", path.display()))
            })?;
            Ok(Some(read(path.display().to_string(), &mut f)?))
        }
        (None, None) => Ok(None),
    }
}

/// What a write printed in `--json` mode.
#[derive(Serialize)]
struct WrittenJson {
    issue: IssueId,
    events: Vec<EventId>,
    retries: u32,
}

impl From<&Written> for WrittenJson {
    fn from(w: &Written) -> WrittenJson {
        WrittenJson {
            issue: w.issue,
            events: w.events.clone(),
            retries: w.retries,
        }
    }
}

/// Report a write: `what` happened, or nothing to change.
fn written(ctx: &Ctx, w: &Written, what: &str) -> Result<(), Failure> {
    ctx.out.done(&WrittenJson::from(w), || {
        if w.events.is_empty() {
            format!("{}: nothing to change", w.issue.short())
        } else {
            format!("{}: {what}", w.issue.short())
        }
    })
}

/// Apply `changes` to `issue` as the acting actor, and report it.
fn apply(
    ctx: &Ctx,
    repo: &Repo,
    issue: &str,
    changes: &[Change],
    what: &str,
) -> Result<(), Failure> {
    let id = super::names::resolve(repo, issue)?;
    let actor = ctx.actor(repo)?;
    let w = repo.apply(id, &actor, changes)?;
    written(ctx, &w, what)
}
