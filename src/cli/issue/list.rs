//! `reposix issue list`: the library selects (query, order, limit), this
//! file prints.

use clap::{Args, ValueEnum};
use serde::Serialize;

use reposix::repo::query::{self, Env, ListQuery};

use super::joined;
use crate::cli::names::{self, TrackerRef};
use crate::cli::term::{self, line};
use crate::cli::{Ctx, Exit, Failure};

/// Arguments of `reposix issue list`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue list\n  reposix issue list 'label:bug -label:wontfix assignee:me'\n  reposix issue list 'status:all updated:>7d sort:created-asc' --limit 0\n  reposix issue list --json=id,title,status"
)]
pub struct ListArgs {
    /// A query (see above).
    query: Option<String>,
    /// Which issues: open (not done/wont_fix), closed, all, or one status.
    #[arg(long)]
    state: Option<String>,
    /// Only issues with this label (repeatable: all must match).
    #[arg(short, long = "label")]
    labels: Vec<String>,
    /// Only issues assigned to this actor (`me`: the acting actor).
    #[arg(short, long)]
    assignee: Option<String>,
    /// Only issues whose title or body contains this text (case-insensitive).
    #[arg(short, long)]
    text: Option<String>,
    /// Sort key.
    #[arg(long, value_enum)]
    sort: Option<SortKey>,
    /// Reverse the sort order.
    #[arg(long)]
    reverse: bool,
    /// Print at most this many (0: all).
    #[arg(long, default_value_t = 30)]
    limit: usize,
}

/// Sort keys for `list`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SortKey {
    /// Most recently updated first.
    Updated,
    /// Most recently created first.
    Created,
    /// Title, alphabetically.
    Title,
    /// Workflow order of status.
    Status,
}

impl From<SortKey> for query::SortKey {
    fn from(k: SortKey) -> query::SortKey {
        match k {
            SortKey::Updated => query::SortKey::Updated,
            SortKey::Created => query::SortKey::Created,
            SortKey::Title => query::SortKey::Title,
            SortKey::Status => query::SortKey::Status,
        }
    }
}

impl From<ListArgs> for ListQuery {
    fn from(a: ListArgs) -> ListQuery {
        ListQuery {
            query: a.query.unwrap_or_default(),
            state: a.state,
            labels: a.labels,
            assignee: a.assignee,
            text: a.text,
            sort: a.sort.map(Into::into),
            reverse: a.reverse,
            limit: a.limit,
        }
    }
}

#[derive(Serialize)]
struct ListJson {
    issues: Vec<serde_json::Value>,
    /// Issues matching the query (before the limit).
    total: usize,
    shown: usize,
    damaged: Vec<DamagedJson>,
}

#[derive(Serialize)]
struct DamagedJson {
    refname: String,
    error: String,
}

/// List the issues the query selects.
pub fn run(ctx: &Ctx, args: ListArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let now = reposix::time::now_millis();
    let request = ListQuery::from(args);
    let q = request.parse(now).map_err(|e| {
        Failure::new(Exit::Usage, "usage", e.to_string()).hint("see `reposix issue list --help`")
    })?;
    let listing = repo.list_for(&q)?;
    for (refname, why) in &listing.damaged {
        ctx.out.warn(&format!("skipping damaged {refname}: {why}"));
    }
    let me = ctx.actor_name(&repo);
    let env = Env {
        me: me.as_deref(),
        now_ms: now,
    };
    let page = q.select(&listing.issues, &env);
    let backends = repo.backends()?;
    let refs: Vec<Vec<TrackerRef>> = page
        .rows
        .iter()
        .map(|r| names::tracker_refs(&backends, r.remotes.iter().cloned()))
        .collect();
    let json = ListJson {
        damaged: listing
            .damaged
            .iter()
            .map(|(r, e)| DamagedJson {
                refname: r.clone(),
                error: e.clone(),
            })
            .collect(),
        issues: page
            .rows
            .iter()
            .zip(&refs)
            .map(|(r, t)| {
                let mut v = serde_json::to_value(r).expect("BUG: summaries serialize");
                v["created_at"] = reposix::time::format_millis(r.created_ms).into();
                v["updated_at"] = reposix::time::format_millis(r.updated_ms).into();
                v["trackers"] = serde_json::to_value(t).expect("BUG: refs serialize");
                v
            })
            .collect(),
        total: page.total,
        shown: page.rows.len(),
    };
    let style = term::Style::stdout();
    ctx.out.done_styled(&json, || {
        if page.total == 0 {
            return if listing.issues.is_empty() {
                "no issues yet: `reposix issue new \"a title\"`, or attach a tracker with `reposix backend add`\n".into()
            } else {
                format!(
                    "no issues match `{}` ({} issues in all; try `status:all`)\n",
                    line(request.spelled().trim()),
                    listing.issues.len()
                )
            };
        }
        let mut s = String::with_capacity(page.rows.len() * 80);
        for (r, t) in page.rows.iter().zip(&refs) {
            let when = style.when(r.updated_ms, now);
            let tracker = t.first().map(|t| t.reference.as_str()).unwrap_or("");
            let mut tail = String::new();
            if !r.labels.is_empty() {
                tail.push_str(&format!("  [{}]", joined(&r.labels, ", ")));
            }
            if !r.assignees.is_empty() {
                tail.push_str(&format!("  @{}", joined(&r.assignees, " @")));
            }
            let head = format!("{}  {:<11}  {:<8}  ", r.id.short(), r.status.as_str(), line(tracker));
            let title = style.fit(&line(&r.title), head.chars().count() + tail.chars().count() + when.chars().count() + 2);
            s.push_str(&format!(
                "{}  {}  {:<8}  {}{}  {}\n",
                r.id.short(),
                style.status(r.status),
                line(tracker),
                title,
                tail,
                style.dim(&when)
            ));
        }
        if page.total > page.rows.len() {
            s.push_str(&format!(
                "{} of {} shown (--limit 0 for all)\n",
                page.rows.len(),
                page.total
            ));
        }
        s
    })
}
