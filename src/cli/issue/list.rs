//! `reposix issue list`: the library selects (query, order, limit), this
//! file prints.

use clap::{Args, ValueEnum};
use serde::Serialize;

use reposix::crdt::Link;
use reposix::event::{ActorId, IssueId, Status};
use reposix::repo::query::{self, Env, ListQuery};
use reposix::store::index::IssueSummary;

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

/// Keys in alphabetical order at every level (printed without a value
/// tree, see `Out::done_as`).
#[derive(Serialize)]
struct ListJson<'a> {
    damaged: Vec<DamagedJson>,
    issues: Vec<RowJson<'a>>,
    shown: usize,
    /// Issues matching the query (before the limit).
    total: usize,
}

/// One row of `issue list --json`: the summary's fields, its times as
/// RFC 3339 and its tracker references. Keys in the order serde_json's
/// maps give them (alphabetical), as when each row was a map; built
/// without a map per row, so 100,000 rows print in a fraction of the time
/// and memory (`a_row_is_the_summary_with_its_times_and_trackers` pins it
/// to the summary's own serialization).
#[derive(Serialize)]
struct RowJson<'a> {
    assignees: &'a [String],
    comments: usize,
    created_at: String,
    created_by: &'a ActorId,
    created_ms: i64,
    gone: &'a [(String, String)],
    id: IssueId,
    labels: &'a [String],
    lamport: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<&'a (ActorId, i64)>,
    #[serde(skip_serializing_if = "empty")]
    links: &'a [Link],
    #[serde(skip_serializing_if = "empty")]
    lost: &'a [(ActorId, ActorId)],
    merged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<&'a str>,
    remote_created: &'a [(String, String, String)],
    remotes: &'a [(String, String)],
    status: Status,
    title: &'a str,
    trackers: &'a [TrackerRef],
    updated_at: String,
    updated_ms: i64,
}

fn empty<T>(v: &&[T]) -> bool {
    v.is_empty()
}

impl<'a> RowJson<'a> {
    fn of(r: &'a IssueSummary, trackers: &'a [TrackerRef]) -> RowJson<'a> {
        RowJson {
            assignees: &r.assignees,
            comments: r.comments,
            created_at: reposix::time::format_millis(r.created_ms),
            created_by: &r.created_by,
            created_ms: r.created_ms,
            gone: &r.gone,
            id: r.id,
            labels: &r.labels,
            lamport: r.lamport,
            lease: r.lease.as_ref(),
            links: &r.links,
            lost: &r.lost,
            merged: r.merged,
            priority: r.priority.as_deref(),
            remote_created: &r.remote_created,
            remotes: &r.remotes,
            status: r.status,
            title: &r.title,
            trackers,
            updated_at: reposix::time::format_millis(r.updated_ms),
            updated_ms: r.updated_ms,
        }
    }
}

#[derive(Serialize)]
struct DamagedJson {
    error: String,
    refname: String,
}

/// List the issues the query selects.
pub fn run(ctx: &Ctx, args: ListArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let now = reposix::time::now_millis();
    let request = ListQuery::from(args);
    let q = request.parse(now).map_err(|e| {
        Failure::new(Exit::Usage, "usage", e.to_string()).hint("see `reposix issue list --help`")
    })?;
    let me = ctx.actor_name(&repo);
    let env = Env {
        me: me.as_deref(),
        now_ms: now,
    };
    let page = repo.select(&q, &env)?;
    for (refname, why) in &page.damaged {
        ctx.out.warn(&format!("skipping damaged {refname}: {why}"));
    }
    let backends = repo.backends()?;
    let refs: Vec<Vec<TrackerRef>> = page
        .rows
        .iter()
        .map(|r| names::tracker_refs(&backends, r.remotes.iter().cloned()))
        .collect();
    let json = ListJson {
        damaged: page
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
            .map(|(r, t)| RowJson::of(r, t))
            .collect(),
        total: page.total,
        shown: page.rows.len(),
    };
    let style = term::Style::stdout();
    ctx.out.done_styled(
        &json,
        || {
        if page.total == 0 {
            return if page.issues == 0 {
                "no issues yet: `reposix issue new \"a title\"`, or attach a tracker with `reposix backend add`\n".into()
            } else {
                format!(
                    "no issues match `{}` ({} issues in all; try `status:all`)\n",
                    line(request.spelled().trim()),
                    page.issues
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
        },
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row prints exactly what the summary's own serialization does,
    /// plus the two times and the tracker references: a field added to
    /// the summary and not to the row fails here.
    #[test]
    fn a_row_is_the_summary_with_its_times_and_trackers() {
        let actor = |n: &str| ActorId::new(n).expect("an actor");
        let full = IssueSummary {
            id: IssueId::new_random(),
            title: "a \"title\"".into(),
            status: Status::InReview,
            labels: vec!["bug".into()],
            assignees: vec!["alice".into()],
            created_by: actor("bob"),
            created_ms: 1_700_000_000_000,
            updated_ms: 1_700_000_001_000,
            comments: 3,
            body: "not listed".into(),
            lamport: 9,
            remotes: vec![("sim::x".into(), "1".into())],
            gone: vec![("sim::x".into(), "2".into())],
            remote_created: vec![("sim::x".into(), "1".into(), "2026-01-01T00:00:00Z".into())],
            merged: false,
            links: vec![Link {
                kind: "blocks".into(),
                target: IssueId::new_random(),
            }],
            priority: Some("1".into()),
            lease: Some((actor("carol"), 5)),
            lost: vec![(actor("dave"), actor("erin"))],
        };
        let bare = IssueSummary {
            links: Vec::new(),
            priority: None,
            lease: None,
            lost: Vec::new(),
            ..full.clone()
        };
        let trackers = vec![TrackerRef {
            backend: "sim".into(),
            reference: "sim#1".into(),
            remote_id: "1".into(),
            url: None,
        }];
        for s in [&full, &bare] {
            let mut want = serde_json::to_value(s).expect("serializes");
            want["created_at"] = reposix::time::format_millis(s.created_ms).into();
            want["updated_at"] = reposix::time::format_millis(s.updated_ms).into();
            want["trackers"] = serde_json::to_value(&trackers).expect("serializes");
            let got = serde_json::to_string(&RowJson::of(s, &trackers)).expect("serializes");
            assert_eq!(got, serde_json::to_string(&want).expect("serializes"));
        }
    }
}
