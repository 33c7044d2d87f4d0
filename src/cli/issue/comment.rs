//! `reposix issue comment`: add, edit or delete a comment.

use std::path::PathBuf;

use clap::Args;

use reposix::crdt::IssueState;
use reposix::event::EventId;
use reposix::repo::Change;

use super::{read_body, written};
use crate::cli::{editor, names};
use crate::cli::{Ctx, Exit, Failure};

/// Arguments of `reposix issue comment`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue comment 3f2a 'Reproduced on 1.2'\n  reposix issue comment 3f2a               # opens your editor\n  git log -1 --format=%B | reposix issue comment 3f2a -"
)]
pub struct CommentArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
    /// Comment text (for a new comment or --edit); `-` reads stdin;
    /// none opens your editor.
    text: Option<String>,
    /// Edit this comment (id or prefix) instead of adding one.
    #[arg(long, value_name = "COMMENT", conflicts_with = "delete")]
    edit: Option<String>,
    /// Delete this comment (id or prefix).
    #[arg(long, value_name = "COMMENT")]
    delete: Option<String>,
}

const HELP: &str = "# Write the comment (markdown). Everything from the line above down\n\
                    # is ignored. An empty text aborts.\n";

/// Add, edit or delete the comment.
pub fn run(ctx: &Ctx, args: CommentArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let id = names::resolve(&repo, &args.issue)?;
    let text = match args.text.as_deref() {
        Some("-") => read_body(None, Some(PathBuf::from("-")))?,
        _ => args.text,
    };
    let text = match (&args.edit, &args.delete, text) {
        (None, None, None) => Some(editor::edit(&repo, "issue comment", "", HELP)?),
        (Some(_), None, None) if !editor::available(&repo) => {
            return Err(Failure::new(Exit::Usage, "usage", "give the comment text"));
        }
        (Some(c), None, None) => {
            let state = repo.show(id)?;
            let cid = comment_id(&state, c)?;
            let old = state
                .comments
                .iter()
                .find(|x| x.id == cid)
                .map(|x| x.body.clone())
                .unwrap_or_default();
            Some(editor::edit(&repo, "issue comment --edit", &old, HELP)?)
        }
        (_, _, t) => t,
    };
    let change = match (args.edit, args.delete, text) {
        (None, Some(c), _) => {
            let state = repo.show(id)?;
            Change::DeleteComment(comment_id(&state, &c)?)
        }
        (Some(c), None, Some(text)) => {
            let state = repo.show(id)?;
            Change::EditComment(comment_id(&state, &c)?, text)
        }
        (None, None, Some(text)) => Change::Comment(text),
        _ => {
            return Err(Failure::new(Exit::Usage, "usage", "give the comment text"));
        }
    };
    let actor = ctx.actor(&repo)?;
    let w = repo.apply(id, &actor, &[change])?;
    written(ctx, &w, "comment recorded")
}

/// The comment of `state` whose id starts with `prefix`.
fn comment_id(state: &IssueState, prefix: &str) -> Result<EventId, Failure> {
    let p = prefix.to_ascii_lowercase();
    let found: Vec<_> = state
        .comments
        .iter()
        .filter(|c| c.id.to_hex().starts_with(&p))
        .collect();
    match found.as_slice() {
        [one] if !p.is_empty() => Ok(one.id),
        [] | [_] => Err(Failure::new(
            Exit::NotFound,
            "not_found",
            format!("no comment {prefix} on issue {}", state.id.short()),
        )),
        _ => Err(Failure::new(
            Exit::Ambiguous,
            "ambiguous",
            format!("comment prefix {prefix} is ambiguous"),
        )),
    }
}
