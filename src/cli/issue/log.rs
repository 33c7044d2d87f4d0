//! `reposix log`: an issue's event history.

use serde::Serialize;

use reposix::event::{ActorId, EventId, Op};

use crate::cli::names;
use crate::cli::term::{self, line};
use crate::cli::{Ctx, Failure};

#[derive(Serialize)]
struct LogEntry<'a> {
    id: EventId,
    lamport: u64,
    actor: &'a str,
    /// The human the actor (an agent) wrote this event for.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_behalf_of: Option<&'a str>,
    wall_ms: i64,
    /// `wall_ms` as RFC 3339 (display only: merges never read it).
    at: String,
    parents: &'a [EventId],
    op: &'a str,
    summary: String,
    /// Why the event breaks the clock rule (it is ignored by the fold).
    #[serde(skip_serializing_if = "Option::is_none")]
    invalid: Option<String>,
}

fn op_summary(op: &Op) -> String {
    match op {
        Op::Create { title, .. } => format!("created {title:?}"),
        Op::SetTitle { title } => format!("title {title:?}"),
        Op::EditBody { change } => format!("edited body ({} byte change)", change.0.len()),
        Op::SetStatus { status } => format!("status {status}"),
        Op::AddLabel { label } => format!("+label {label}"),
        Op::RemoveLabel { label, .. } => format!("-label {label}"),
        Op::AddAssignee { assignee } => format!("+assignee {assignee}"),
        Op::RemoveAssignee { assignee, .. } => format!("-assignee {assignee}"),
        Op::AddComment { body } => {
            let first = body.lines().next().unwrap_or("");
            format!("comment: {}", first.chars().take(60).collect::<String>())
        }
        Op::EditComment { comment, .. } => format!("edited comment {}", comment.short()),
        Op::DeleteComment { comment } => format!("deleted comment {}", comment.short()),
        Op::AddLink { kind, target } => format!("+link {kind} {}", target.short()),
        Op::RemoveLink { kind, target, .. } => format!("-link {kind} {}", target.short()),
        Op::Claim { ttl_ms, online } => format!(
            "claim for {}s ({})",
            ttl_ms / 1000,
            if *online { "online" } else { "provisional" }
        ),
        Op::Release {} => "release".to_owned(),
        Op::OnBehalfOf { human } => format!("acts on behalf of {human}"),
        Op::SetField {
            name,
            value: Some(v),
        } => format!("{name} = {v:?}"),
        Op::SetField { name, value: None } => format!("{name} cleared"),
        Op::Observe {
            backend,
            remote_id,
            revision,
            ..
        } => format!("observed {backend} #{remote_id} at revision {revision}"),
        Op::ObserveComment {
            backend, remote_id, ..
        } => format!("observed {backend} comment {remote_id}"),
        Op::Bind {
            backend,
            remote_id: Some(r),
        } => format!("bound to {backend} #{r}"),
        Op::Bind {
            backend,
            remote_id: None,
        } => format!("creating on {backend}"),
        Op::BindComment {
            backend,
            comment,
            remote_id,
        } => match remote_id {
            Some(r) => format!("comment {} bound to {backend} comment {r}", comment.short()),
            None => format!("creating comment {} on {backend}", comment.short()),
        },
        Op::Exported {
            backend,
            remote_id,
            revision,
        } => format!("exported to {backend} #{remote_id} (revision {revision})"),
        Op::SyncBody {
            backend,
            remote_id,
            revision,
            changes,
            ..
        } => match changes.len() {
            0 => format!("body in step with {backend} #{remote_id} at revision {revision}"),
            n => format!(
                "body merged with {backend} #{remote_id} at revision {revision} ({n} change{})",
                if n == 1 { "" } else { "s" }
            ),
        },
        Op::ObserveCreated {
            backend,
            remote_id,
            created_at,
        } => format!("{backend} #{remote_id} created at {created_at}"),
        Op::ObserveGone { backend, remote_id } => {
            format!("gone from {backend} (#{remote_id} deleted or moved)")
        }
        Op::MergedInto { target } => format!("merged into {}", target.short()),
    }
}

/// Print the issue's events in causal order.
pub fn run(ctx: &Ctx, issue: &str) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let id = names::resolve(&repo, issue)?;
    let log = repo.load(id).map_err(Failure::from)?;
    let ordered = log.events.ordered();
    let invalid = log.events.invalid();
    let attribution = reposix::crdt::attribution::resolve(&log.events);
    let entries: Vec<LogEntry<'_>> = ordered
        .iter()
        .map(|(stamp, e)| LogEntry {
            id: stamp.id,
            lamport: e.lamport,
            actor: e.actor.as_str(),
            on_behalf_of: attribution.events.get(&stamp.id).map(ActorId::as_str),
            wall_ms: e.wall_ms,
            at: reposix::time::format_millis(e.wall_ms),
            parents: &e.parents,
            op: e.op.kind(),
            summary: op_summary(&e.op),
            invalid: invalid.get(&stamp.id).map(ToString::to_string),
        })
        .collect();
    let style = term::Style::stdout();
    let now = reposix::time::now_millis();
    ctx.out.done_paged(&entries, || {
        entries
            .iter()
            .map(|e| {
                let invalid = e
                    .invalid
                    .as_ref()
                    .map(|why| format!("  [invalid, ignored: {why}]"))
                    .unwrap_or_default();
                let actor = match e.on_behalf_of {
                    Some(h) => format!("{} (for {h})", e.actor),
                    None => e.actor.to_owned(),
                };
                format!(
                    "{} {:>4} {:<12} {:<20} {}{invalid}\n",
                    e.id.short(),
                    e.lamport,
                    line(&actor),
                    style.when(e.wall_ms, now),
                    line(&e.summary)
                )
            })
            .collect()
    })
}
