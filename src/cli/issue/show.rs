//! `reposix issue show`.

use clap::Args;

use reposix::crdt::incremental::IssueView;
use reposix::crdt::IssueState;
use reposix::event::ActorId;

use super::joined;
use crate::cli::names::{self, TrackerRef};
use crate::cli::term::{self, line};
use crate::cli::{Ctx, Failure, Pieces};

/// Arguments of `reposix issue show`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  reposix issue show 3f2a\n  reposix issue show '#12'\n  reposix issue show gh#12 --json=title,status,url"
)]
pub struct ShowArgs {
    /// Issue id or unambiguous prefix.
    issue: String,
}

/// Show one issue, its trackers and its comments.
pub fn run(ctx: &Ctx, args: &ShowArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let id = names::resolve(&repo, &args.issue)?;
    let view = repo.show_view(id)?;
    let backends = repo.backends()?;
    let refs = names::tracker_refs(
        &backends,
        view.header()
            .remotes
            .iter()
            .map(|r| (r.backend.clone(), r.remote_id.clone())),
    );
    if ctx.out.json {
        let state = view.into_state();
        let json = ShowJson {
            state: &state,
            refs: &refs,
        };
        return ctx.out.done_paged(&json, String::new);
    }
    let style = term::Style::stdout();
    ctx.out
        .paged_pieces(|pieces| render_state(&view, &refs, &style, pieces))
}

/// The JSON of `issue show`: the state with its times as RFC 3339 and its
/// tracker references. Built only when serialized (in `--json` mode): a
/// state of 100,000 comments as a value tree costs many times its text.
struct ShowJson<'a> {
    state: &'a IssueState,
    refs: &'a [TrackerRef],
}

impl serde::Serialize for ShowJson<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let state = self.state;
        let mut json = serde_json::to_value(state).map_err(serde::ser::Error::custom)?;
        json["trackers"] = serde_json::to_value(self.refs).map_err(serde::ser::Error::custom)?;
        json["created_at"] = reposix::time::format_millis(state.created_ms).into();
        json["updated_at"] = reposix::time::format_millis(state.updated_ms).into();
        if let Some(arr) = json["comments"].as_array_mut() {
            for (c, v) in state.comments.iter().zip(arr.iter_mut()) {
                v["created_at"] = reposix::time::format_millis(c.created_ms).into();
            }
        }
        json.serialize(ser)
    }
}

/// Comments are handed on in pieces of about this many bytes.
const PIECE: usize = 256 * 1024;

fn render_state(view: &IssueView, refs: &[TrackerRef], style: &term::Style, pieces: &mut Pieces) {
    let s = view.header();
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
    out.reserve(view.comments_size_hint().min(PIECE) + 64 * 1024);
    // Pieces pushed in place, and a time formatted once for the comments
    // that share it: a deep issue prints 100,000 of these.
    let mut when: Option<(i64, String)> = None;
    for c in view.comments() {
        out.push_str("\n--- comment ");
        c.id.push_short(&mut out);
        out.push_str(" by ");
        out.push_str(c.author);
        if let Some(h) = c.on_behalf_of {
            out.push_str(" (on behalf of ");
            out.push_str(h);
            out.push(')');
        }
        out.push_str(", ");
        // Relative times (a terminal) change by the millisecond; absolute
        // ones by the second.
        let key = if style.tty {
            c.created_ms
        } else {
            c.created_ms.div_euclid(1000)
        };
        match &when {
            Some((k, text)) if *k == key => out.push_str(text),
            _ => {
                let text = style.when(c.created_ms, now);
                out.push_str(&text);
                when = Some((key, text));
            }
        }
        if c.edited {
            out.push_str(" (edited)");
        }
        out.push('\n');
        out.push_str(c.body);
        out.push('\n');
        if out.len() >= PIECE {
            pieces.push(&out);
            out.clear();
        }
    }
    pieces.push(&out);
}

/// ` (on behalf of HUMAN)` after an agent's name, or nothing.
fn for_whom(human: Option<&ActorId>) -> String {
    human
        .map(|h| format!(" (on behalf of {h})"))
        .unwrap_or_default()
}
