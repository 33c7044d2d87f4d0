//! `reposix issue …` and `reposix log`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use serde::Serialize;

use reposix::crdt::{IssueState, Link};
use reposix::event::{ActorId, EventId, IssueId, Op, Status};
use reposix::repo::{Change, NewIssue, Repo, Written};
use reposix::store::index::IssueSummary;

use super::term::line;
use super::{Ctx, Exit, Failure};

/// Items joined on one line, each escaped for the terminal.
fn joined(items: &[String], sep: &str) -> String {
    items
        .iter()
        .map(|i| line(i).into_owned())
        .collect::<Vec<_>>()
        .join(sep)
}

#[derive(Subcommand)]
pub enum IssueCmd {
    /// Create an issue (without a title, or on a terminal without a body,
    /// your editor opens: title line, blank line, body).
    #[command(
        after_help = "Examples:\n  reposix issue new\n  reposix issue new 'Crash on start' -b 'It crashes.' -l bug\n  echo body | reposix issue new 'Title' -b -"
    )]
    New {
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
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
    },
    /// List issues (30 at a time; `--limit 0` for all).
    ///
    /// QUERY: `status:open label:bug -label:wontfix assignee:me
    /// author:alice updated:>2026-11-01 created:<7d "free text"
    /// sort:updated-desc` (see the README); the flags are sugar for terms.
    #[command(
        after_help = "Examples:\n  reposix issue list\n  reposix issue list 'label:bug -label:wontfix assignee:me'\n  reposix issue list 'status:all updated:>7d sort:created-asc' --limit 0\n  reposix issue list --json=id,title,status"
    )]
    List {
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
    },
    /// Show one issue with its comments.
    #[command(
        after_help = "Examples:\n  reposix issue show 3f2a\n  reposix issue show '#12'\n  reposix issue show gh#12 --json=title,status,url"
    )]
    Show {
        /// Issue id or unambiguous prefix.
        issue: String,
    },
    /// Change title, body or custom fields (with none given, your editor
    /// opens on the current title and body).
    #[command(
        after_help = "Examples:\n  reposix issue edit 3f2a                # opens your editor\n  reposix issue edit '#12' --title 'Crash on start (macOS)'\n  reposix issue edit 3f2a --field priority=1 --unset-field due"
    )]
    Edit {
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
    },
    /// Add, edit or delete a comment.
    #[command(
        after_help = "Examples:\n  reposix issue comment 3f2a 'Reproduced on 1.2'\n  reposix issue comment 3f2a               # opens your editor\n  git log -1 --format=%B | reposix issue comment 3f2a -"
    )]
    Comment {
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
    },
    /// Add labels (or remove them with --remove).
    #[command(
        after_help = "Examples:\n  reposix issue label 3f2a bug ui\n  reposix issue label 3f2a ui --remove"
    )]
    Label {
        /// Issue id or unambiguous prefix.
        issue: String,
        /// Labels.
        #[arg(required = true)]
        labels: Vec<String>,
        /// Remove instead of add.
        #[arg(long)]
        remove: bool,
    },
    /// Assign actors (or unassign with --remove).
    #[command(
        after_help = "Examples:\n  reposix issue assign 3f2a alice\n  reposix issue assign 3f2a alice --remove"
    )]
    Assign {
        /// Issue id or unambiguous prefix.
        issue: String,
        /// Assignees.
        #[arg(required = true)]
        who: Vec<String>,
        /// Remove instead of add.
        #[arg(long)]
        remove: bool,
    },
    /// Set the status.
    #[command(
        after_help = "Examples:\n  reposix issue status 3f2a closed\n  reposix issue status '#12' open"
    )]
    Status {
        /// Issue id or unambiguous prefix.
        issue: String,
        /// open, in_progress, in_review, done or wont_fix.
        #[arg(value_parser = parse_status)]
        status: Status,
    },
    /// Close an issue (status done, or wont_fix).
    #[command(
        after_help = "Examples:\n  reposix issue close 3f2a\n  reposix issue close '#12' --wont-fix"
    )]
    Close {
        /// Issue id or unambiguous prefix.
        issue: String,
        /// Close as wont_fix instead of done.
        #[arg(long)]
        wont_fix: bool,
    },
    /// Reopen an issue (status open).
    #[command(after_help = "Examples:\n  reposix issue reopen 3f2a")]
    Reopen {
        /// Issue id or unambiguous prefix.
        issue: String,
    },
    /// Link to another issue (or unlink with --remove).
    #[command(
        after_help = "Examples:\n  reposix issue link 3f2a 9c1d --kind blocks\n  reposix issue link 3f2a 9c1d --remove"
    )]
    Link {
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
    },
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

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
        .map_err(|e: reposix::event::DecodeError| e.to_string())
}

/// Sort keys for `list`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SortKey {
    /// Most recently updated first.
    Updated,
    /// Most recently created first.
    Created,
    /// Title, alphabetically.
    Title,
    /// Workflow order of status.
    Status,
}

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

#[derive(Serialize)]
struct WrittenJson {
    issue: IssueId,
    events: Vec<EventId>,
    retries: u32,
}

fn written(ctx: &Ctx, w: &Written, what: &str) -> Result<(), Failure> {
    let json = WrittenJson {
        issue: w.issue,
        events: w.events.clone(),
        retries: w.retries,
    };
    ctx.out.done(&json, || {
        if w.events.is_empty() {
            format!("{}: nothing to change", w.issue.short())
        } else {
            format!("{}: {what}", w.issue.short())
        }
    })
}

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

pub fn run(ctx: &Ctx, cmd: IssueCmd) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    match cmd {
        IssueCmd::Claim(args) => super::agents::claim(ctx, args),
        IssueCmd::Release { issue } => super::agents::release(ctx, &issue),
        IssueCmd::New {
            title,
            body,
            body_file,
            labels,
            assignees,
            status,
        } => {
            let actor = ctx.actor(&repo)?;
            let body = read_body(body, body_file)?;
            let (title, body) = match (title, body) {
                (Some(t), Some(b)) => (t, b),
                (Some(t), None)
                    if !(super::editor::interactive() && super::editor::available(&repo)) =>
                {
                    (t, String::new())
                }
                (t, b) => {
                    let template = format!(
                        "{}\n\n{}",
                        t.as_deref().unwrap_or(""),
                        b.as_deref().unwrap_or("")
                    );
                    let text = super::editor::edit(
                        &repo,
                        "issue new",
                        &template,
                        "# The first line is the title; after a blank line, the body (markdown).\n\
                         # Everything from the line above down is ignored. An empty text aborts.\n",
                    )?;
                    super::editor::title_and_body(&text)
                }
            };
            let w = repo.create(
                &actor,
                NewIssue {
                    title,
                    body,
                    status,
                    labels,
                    assignees,
                },
            )?;
            ctx.out.done(
                &WrittenJson {
                    issue: w.issue,
                    events: w.events.clone(),
                    retries: w.retries,
                },
                || format!("created issue {}", w.issue),
            )
        }
        IssueCmd::List {
            query,
            state,
            labels,
            assignee,
            text,
            sort,
            reverse,
            limit,
        } => {
            let mut q = query.unwrap_or_default();
            let quote = |v: &str| format!(" \"{}\"", v.replace('"', ""));
            if let Some(st) = state {
                q.push_str(&format!(" status:{st}"));
            }
            for l in labels {
                q.push_str(&quote(&format!("label:{l}")));
            }
            if let Some(a) = assignee {
                q.push_str(&quote(&format!("assignee:{a}")));
            }
            if let Some(t) = text {
                q.push_str(&quote(&t));
            }
            if let Some(k) = sort {
                let key = match k {
                    SortKey::Updated => "updated-desc",
                    SortKey::Created => "created-desc",
                    SortKey::Title => "title-asc",
                    SortKey::Status => "status-asc",
                };
                q.push_str(&format!(" sort:{key}"));
            }
            list(ctx, &repo, &q, reverse, limit)
        }
        IssueCmd::Show { issue } => {
            let id = super::names::resolve(&repo, &issue)?;
            let state = repo.show(id)?;
            let backends = repo.backends()?;
            let refs = super::names::tracker_refs(
                &backends,
                state
                    .remotes
                    .iter()
                    .map(|r| (r.backend.clone(), r.remote_id.clone())),
            );
            let mut json = serde_json::to_value(&state).expect("BUG: state serializes");
            json["trackers"] = serde_json::to_value(&refs).expect("BUG: refs serialize");
            json["created_at"] = reposix::time::format_millis(state.created_ms).into();
            json["updated_at"] = reposix::time::format_millis(state.updated_ms).into();
            if let Some(arr) = json["comments"].as_array_mut() {
                for (c, v) in state.comments.iter().zip(arr.iter_mut()) {
                    v["created_at"] = reposix::time::format_millis(c.created_ms).into();
                }
            }
            let style = super::term::Style::stdout();
            ctx.out
                .done_paged(&json, || render_state(&state, &refs, &style))
        }
        IssueCmd::Edit {
            issue,
            title,
            body,
            body_file,
            fields,
            unset,
        } => {
            let mut changes = Vec::new();
            if let Some(t) = title {
                changes.push(Change::Title(t));
            }
            if let Some(b) = read_body(body, body_file)? {
                changes.push(Change::Body(b));
            }
            for f in fields {
                let Some((k, v)) = f.split_once('=') else {
                    return Err(Failure::new(
                        Exit::Usage,
                        "usage",
                        format!("--field {f:?}: expected NAME=VALUE"),
                    ));
                };
                changes.push(Change::Field(k.to_owned(), Some(v.to_owned())));
            }
            for k in unset {
                changes.push(Change::Field(k, None));
            }
            if changes.is_empty() {
                let id = super::names::resolve(&repo, &issue)?;
                let state = repo.show(id)?;
                let text = super::editor::edit(
                    &repo,
                    "issue edit",
                    &format!("{}\n\n{}", state.title, state.body),
                    "# Edit the title (first line) and the body (after a blank line).\n\
                     # Everything from the line above down is ignored. An empty text aborts.\n",
                )?;
                let (title, body) = super::editor::title_and_body(&text);
                if title != state.title {
                    changes.push(Change::Title(title));
                }
                if body.trim_end() != state.body.trim_end() {
                    changes.push(Change::Body(body));
                }
            }
            apply(ctx, &repo, &issue, &changes, "edited")
        }
        IssueCmd::Comment {
            issue,
            text,
            edit,
            delete,
        } => {
            let id = super::names::resolve(&repo, &issue)?;
            let text = match text.as_deref() {
                Some("-") => read_body(None, Some(PathBuf::from("-")))?,
                _ => text,
            };
            let help = "# Write the comment (markdown). Everything from the line above down\n\
                        # is ignored. An empty text aborts.\n";
            let text = match (&edit, &delete, text) {
                (None, None, None) => Some(super::editor::edit(&repo, "issue comment", "", help)?),
                (Some(_), None, None) if !super::editor::available(&repo) => {
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
                    Some(super::editor::edit(
                        &repo,
                        "issue comment --edit",
                        &old,
                        help,
                    )?)
                }
                (_, _, t) => t,
            };
            let change = match (edit, delete, text) {
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
        IssueCmd::Label {
            issue,
            labels,
            remove,
        } => {
            let changes: Vec<_> = labels
                .into_iter()
                .map(|l| {
                    if remove {
                        Change::RemoveLabel(l)
                    } else {
                        Change::AddLabel(l)
                    }
                })
                .collect();
            apply(ctx, &repo, &issue, &changes, "labels updated")
        }
        IssueCmd::Assign { issue, who, remove } => {
            let changes: Vec<_> = who
                .into_iter()
                .map(|a| {
                    if remove {
                        Change::RemoveAssignee(a)
                    } else {
                        Change::AddAssignee(a)
                    }
                })
                .collect();
            apply(ctx, &repo, &issue, &changes, "assignees updated")
        }
        IssueCmd::Status { issue, status } => apply(
            ctx,
            &repo,
            &issue,
            &[Change::Status(status)],
            &format!("status {status}"),
        ),
        IssueCmd::Close { issue, wont_fix } => {
            let s = if wont_fix {
                Status::WontFix
            } else {
                Status::Done
            };
            apply(
                ctx,
                &repo,
                &issue,
                &[Change::Status(s)],
                &format!("closed ({s})"),
            )
        }
        IssueCmd::Reopen { issue } => apply(
            ctx,
            &repo,
            &issue,
            &[Change::Status(Status::Open)],
            "reopened",
        ),
        IssueCmd::Link {
            issue,
            target,
            kind,
            remove,
        } => {
            let target = super::names::resolve(&repo, &target)?;
            let link = Link { kind, target };
            let change = if remove {
                Change::Unlink(link)
            } else {
                Change::Link(link)
            };
            apply(
                ctx,
                &repo,
                &issue,
                &[change],
                if remove { "unlinked" } else { "linked" },
            )
        }
    }
}

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

fn list(ctx: &Ctx, repo: &Repo, query: &str, reverse: bool, limit: usize) -> Result<(), Failure> {
    let now = reposix::time::now_millis();
    let q = reposix::repo::query::Query::parse(query, now).map_err(|e| {
        Failure::new(Exit::Usage, "usage", e.to_string()).hint("see `reposix issue list --help`")
    })?;
    let listing = if q.needs_text() {
        repo.list_with_text()?
    } else {
        repo.list()?
    };
    for (refname, why) in &listing.damaged {
        ctx.out.warn(&format!("skipping damaged {refname}: {why}"));
    }
    let me = ctx.actor_name(repo);
    let env = reposix::repo::query::Env {
        me: me.as_deref(),
        now_ms: now,
    };
    let mut rows: Vec<&IssueSummary> = listing
        .issues
        .iter()
        .filter(|s| q.matches(s, &env))
        .collect();
    q.sort(&mut rows);
    if reverse {
        rows.reverse();
    }
    let total = rows.len();
    if limit > 0 {
        rows.truncate(limit);
    }
    let backends = repo.backends()?;
    let refs: Vec<Vec<super::names::TrackerRef>> = rows
        .iter()
        .map(|r| super::names::tracker_refs(&backends, r.remotes.iter().cloned()))
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
        issues: rows
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
        total,
        shown: rows.len(),
    };
    let style = super::term::Style::stdout();
    ctx.out.done_styled(&json, || {
        if total == 0 {
            return if listing.issues.is_empty() {
                "no issues yet: `reposix issue new \"a title\"`, or attach a tracker with `reposix backend add`\n".into()
            } else {
                format!(
                    "no issues match `{}` ({} issues in all; try `status:all`)\n",
                    line(query.trim()),
                    listing.issues.len()
                )
            };
        }
        let mut s = String::with_capacity(rows.len() * 80);
        for (r, t) in rows.iter().zip(&refs) {
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
        if total > rows.len() {
            s.push_str(&format!(
                "{} of {} shown (--limit 0 for all)\n",
                rows.len(),
                total
            ));
        }
        s
    })
}

fn render_state(
    s: &IssueState,
    refs: &[super::names::TrackerRef],
    style: &super::term::Style,
) -> String {
    let now = reposix::time::now_millis();
    let mut out = format!("{}  {}\n", s.id, line(&s.title));
    out.push_str(&format!("status:    {}\n", s.status));
    if !s.labels.is_empty() {
        out.push_str(&format!("labels:    {}\n", joined(&s.labels, ", ")));
    }
    if !s.assignees.is_empty() {
        out.push_str(&format!("assignees: {}\n", joined(&s.assignees, ", ")));
    }
    for l in &s.links {
        out.push_str(&format!("link:      {} {}\n", line(&l.kind), l.target));
    }
    for (k, v) in &s.fields {
        out.push_str(&format!("{}: {}\n", line(k), line(v)));
    }
    if let Some(t) = s.merged_into {
        out.push_str(&format!(
            "merged:    into {t} (another local copy of the same tracker issue)\n"
        ));
    }
    for (r, named) in s.remotes.iter().zip(refs) {
        out.push_str(&format!("tracker:   {}", line(&named.reference)));
        if let Some(u) = &named.url {
            out.push_str(&format!("  {}", line(u)));
        }
        if let Some(rev) = r.revision {
            out.push_str(&format!(" (revision {rev})"));
        }
        if r.gone {
            out.push_str(" — deleted on the tracker; kept here, not exported again");
        }
        out.push('\n');
    }
    for (agent, human) in &s.on_behalf_of {
        out.push_str(&format!("agent:     {agent} acts on behalf of {human}\n"));
    }
    out.push_str(&format!(
        "created {} by {}{} · updated {} · {} events\n",
        style.when(s.created_ms, now),
        s.created_by,
        for_whom(s.created_on_behalf_of.as_ref()),
        style.when(s.updated_ms, now),
        s.event_count
    ));
    if !s.body.is_empty() {
        out.push('\n');
        out.push_str(&s.body);
        if !s.body.ends_with('\n') {
            out.push('\n');
        }
    }
    for c in &s.comments {
        out.push_str(&format!(
            "\n--- comment {} by {}{}, {}{}\n{}\n",
            c.id.short(),
            c.author,
            for_whom(c.on_behalf_of.as_ref()),
            style.when(c.created_ms, now),
            if c.edited { " (edited)" } else { "" },
            c.body
        ));
    }
    out
}

/// ` (on behalf of HUMAN)` after an agent's name, or nothing.
fn for_whom(human: Option<&ActorId>) -> String {
    human
        .map(|h| format!(" (on behalf of {h})"))
        .unwrap_or_default()
}

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

pub fn log(ctx: &Ctx, issue: &str) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let id = super::names::resolve(&repo, issue)?;
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
    let style = super::term::Style::stdout();
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
