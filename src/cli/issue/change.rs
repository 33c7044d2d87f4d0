//! The commands that make one kind of change: `reposix issue label`,
//! `assign`, `status`, `close`, `reopen` and `link`.

use clap::Args;

use reposix::crdt::Link;
use reposix::event::Status;
use reposix::repo::Change;

use super::apply;
use crate::cli::{names, Ctx, Failure};

/// Arguments of `reposix issue label`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue label 3f2a bug ui\n  reposix issue label 3f2a ui --remove"
)]
pub struct LabelArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
    /// Labels.
    #[arg(required = true)]
    labels: Vec<String>,
    /// Remove instead of add.
    #[arg(long)]
    remove: bool,
}

/// Arguments of `reposix issue assign`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue assign 3f2a alice\n  reposix issue assign 3f2a alice --remove"
)]
pub struct AssignArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
    /// Assignees.
    #[arg(required = true)]
    who: Vec<String>,
    /// Remove instead of add.
    #[arg(long)]
    remove: bool,
}

/// Arguments of `reposix issue status`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue status 3f2a closed\n  reposix issue status '#12' open"
)]
pub struct StatusArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
    /// open, in_progress, in_review, done or wont_fix.
    #[arg(value_parser = super::parse_status)]
    status: Status,
}

/// Arguments of `reposix issue close`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue close 3f2a\n  reposix issue close '#12' --wont-fix"
)]
pub struct CloseArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
    /// Close as wont_fix instead of done.
    #[arg(long)]
    wont_fix: bool,
}

/// Arguments of `reposix issue reopen`.
#[derive(Args)]
#[command(after_help = "Examples:\n  reposix issue reopen 3f2a")]
pub struct ReopenArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
}

/// Arguments of `reposix issue link`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue link 3f2a 9c1d --kind blocks\n  reposix issue link 3f2a 9c1d --remove"
)]
pub struct LinkArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
    /// The other issue.
    target: String,
    /// Relation kind.
    #[arg(long, default_value = "relates")]
    kind: String,
    /// Remove the link instead.
    #[arg(long)]
    remove: bool,
}

/// Add or remove labels.
pub fn label(ctx: &Ctx, args: LabelArgs) -> Result<(), Failure> {
    let change = if args.remove {
        Change::RemoveLabel
    } else {
        Change::AddLabel
    };
    let changes: Vec<_> = args.labels.into_iter().map(change).collect();
    apply(ctx, &ctx.repo()?, &args.issue, &changes, "labels updated")
}

/// Add or remove assignees.
pub fn assign(ctx: &Ctx, args: AssignArgs) -> Result<(), Failure> {
    let change = if args.remove {
        Change::RemoveAssignee
    } else {
        Change::AddAssignee
    };
    let changes: Vec<_> = args.who.into_iter().map(change).collect();
    apply(
        ctx,
        &ctx.repo()?,
        &args.issue,
        &changes,
        "assignees updated",
    )
}

/// Set the status.
pub fn status(ctx: &Ctx, args: &StatusArgs) -> Result<(), Failure> {
    let s = args.status;
    set_status(ctx, &args.issue, s, &format!("status {s}"))
}

/// Close as done, or as wont_fix.
pub fn close(ctx: &Ctx, args: &CloseArgs) -> Result<(), Failure> {
    let s = if args.wont_fix {
        Status::WontFix
    } else {
        Status::Done
    };
    set_status(ctx, &args.issue, s, &format!("closed ({s})"))
}

/// Set the status back to open.
pub fn reopen(ctx: &Ctx, args: &ReopenArgs) -> Result<(), Failure> {
    set_status(ctx, &args.issue, Status::Open, "reopened")
}

fn set_status(ctx: &Ctx, issue: &str, s: Status, what: &str) -> Result<(), Failure> {
    apply(ctx, &ctx.repo()?, issue, &[Change::Status(s)], what)
}

/// Link to another issue, or unlink.
pub fn link(ctx: &Ctx, args: LinkArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let target = names::resolve(&repo, &args.target)?;
    let link = Link {
        kind: args.kind,
        target,
    };
    let (change, what) = if args.remove {
        (Change::Unlink(link), "unlinked")
    } else {
        (Change::Link(link), "linked")
    };
    apply(ctx, &repo, &args.issue, &[change], what)
}
