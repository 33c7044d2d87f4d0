//! `reposix issue new`.

use std::path::PathBuf;

use clap::Args;

use reposix::event::Status;
use reposix::repo::NewIssue;

use super::{read_body, WrittenJson};
use crate::cli::editor;
use crate::cli::{Ctx, Failure};

/// Arguments of `reposix issue new`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue new\n  reposix issue new 'Crash on start' -b 'It crashes.' -l bug\n  echo body | reposix issue new 'Title' -b -"
)]
pub struct NewArgs {
    /// Title.
    title: Option<String>,
    /// Body text (`-` reads stdin).
    #[arg(short, long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Read the body from a file (`-` for stdin).
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// A label (repeatable).
    #[arg(short, long = "label")]
    labels: Vec<String>,
    /// An assignee (repeatable).
    #[arg(short, long = "assignee")]
    assignees: Vec<String>,
    /// Initial status.
    #[arg(long, value_parser = super::parse_status)]
    status: Option<Status>,
}

/// Create the issue; the editor fills in what was not given.
pub fn run(ctx: &Ctx, args: NewArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let actor = ctx.actor(&repo)?;
    let body = read_body(args.body, args.body_file)?;
    let (title, body) = match (args.title, body) {
        (Some(t), Some(b)) => (t, b),
        (Some(t), None) if !(editor::interactive() && editor::available(&repo)) => {
            (t, String::new())
        }
        (t, b) => {
            let template = format!(
                "{}\n\n{}",
                t.as_deref().unwrap_or(""),
                b.as_deref().unwrap_or("")
            );
            let text = editor::edit(
                &repo,
                "issue new",
                &template,
                "# The first line is the title; after a blank line, the body (markdown).\n\
                 # Everything from the line above down is ignored. An empty text aborts.\n",
            )?;
            editor::title_and_body(&text)
        }
    };
    let w = repo.create(
        &actor,
        NewIssue {
            title,
            body,
            status: args.status,
            labels: args.labels,
            assignees: args.assignees,
        },
    )?;
    ctx.out.done(&WrittenJson::from(&w), || {
        format!("created issue {}", w.issue)
    })
}
