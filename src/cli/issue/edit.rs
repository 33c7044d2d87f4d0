//! `reposix issue edit`.

use std::path::PathBuf;

use clap::Args;

use reposix::repo::Change;

use super::{apply, read_body};
use crate::cli::{editor, names};
use crate::cli::{Ctx, Exit, Failure};

/// Arguments of `reposix issue edit`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue edit 3f2a                # opens your editor\n  reposix issue edit '#12' --title 'Crash on start (macOS)'\n  reposix issue edit 3f2a --field priority=1 --unset-field due"
)]
pub struct EditArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
    /// New title.
    #[arg(long)]
    title: Option<String>,
    /// New body text (merged character-wise with concurrent edits; `-`
    /// reads stdin).
    #[arg(short, long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Read the new body from a file (`-` for stdin).
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Set a custom field: NAME=VALUE (repeatable).
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// Clear a custom field (repeatable).
    #[arg(long = "unset-field", value_name = "NAME")]
    unset: Vec<String>,
}

/// Apply the changes given, or those made in the editor when none is.
pub fn run(ctx: &Ctx, args: EditArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let mut changes = Vec::new();
    if let Some(t) = args.title {
        changes.push(Change::Title(t));
    }
    if let Some(b) = read_body(args.body, args.body_file)? {
        changes.push(Change::Body(b));
    }
    for f in args.fields {
        let Some((k, v)) = f.split_once('=') else {
            return Err(Failure::new(
                Exit::Usage,
                "usage",
                format!("--field {f:?}: expected NAME=VALUE"),
            ));
        };
        changes.push(Change::Field(k.to_owned(), Some(v.to_owned())));
    }
    for k in args.unset {
        changes.push(Change::Field(k, None));
    }
    if changes.is_empty() {
        let id = names::resolve(&repo, &args.issue)?;
        let state = repo.show(id)?;
        let text = editor::edit(
            &repo,
            "issue edit",
            &format!("{}\n\n{}", state.title, state.body),
            "# Edit the title (first line) and the body (after a blank line).\n\
             # Everything from the line above down is ignored. An empty text aborts.\n",
        )?;
        let (title, body) = editor::title_and_body(&text);
        if title != state.title {
            changes.push(Change::Title(title));
        }
        if body.trim_end() != state.body.trim_end() {
            changes.push(Change::Body(body));
        }
    }
    apply(ctx, &repo, &args.issue, &changes, "edited")
}
