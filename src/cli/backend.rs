//! `reposix backend add|list|remove` and `reposix sync --backend NAME`.

use clap::Subcommand;
use serde::Serialize;

use reposix::mirror::edits::EditsError;
use reposix::repo::RepoError;
use reposix::sync::tracker::{SessionError, TrackerReport, TrackerSession, TrackerSyncOptions};
use reposix::tracker::projection::{ImportReport, Projection};
use reposix::tracker::{self as backend, BackendSpec};

use super::{Ctx, Exit, Failure};

#[derive(Subcommand)]
pub enum BackendCmd {
    /// Attach a tracker: `reposix backend add NAME <kind>::<address>`, e.g.
    /// `sim::http://127.0.0.1:7878/demo`, `github::owner/repo`,
    /// `jira::https://site.atlassian.net/PROJ`,
    /// `confluence::https://site.atlassian.net/SPACE`.
    #[command(
        after_help = "Examples:\n  reposix backend add gh github::owner/repo\n  reposix backend add site jira::https://acme.atlassian.net/PROJ\n  reposix backend add sim sim::http://127.0.0.1:7878/demo"
    )]
    Add {
        /// Local name.
        name: String,
        /// `<kind>::<address>`.
        spec: String,
    },
    /// List attached trackers.
    #[command(after_help = "Examples:\n  reposix backend list\n  reposix --json backend list")]
    List,
    /// Detach a tracker (its events stay in the logs).
    #[command(after_help = "Examples:\n  reposix backend remove gh")]
    Remove {
        /// Local name.
        name: String,
    },
}

impl From<backend::BackendError> for Failure {
    fn from(e: backend::BackendError) -> Failure {
        use backend::BackendError as B;
        let message = reposix::error_chain(&e);
        match e {
            B::Spec(_) => Failure::new(Exit::Invalid, "invalid", message),
            B::Egress { ref origin, .. } => {
                let hint = super::allow::egress_hint(origin);
                Failure::new(Exit::Egress, "egress_refused", message).hint(hint)
            }
            B::Auth { .. } => Failure::new(Exit::Tracker, "auth_failed", message).hint(
                "set GITHUB_TOKEN, or ATLASSIAN_EMAIL and ATLASSIAN_API_KEY, or configure a git credential helper",
            ),
            B::Unreachable { .. } => {
                Failure::new(Exit::RemoteUnreachable, "tracker_unreachable", message).hint(
                    "check the network and the backend's address (`reposix backend list`); \
                     local work is intact",
                )
            }
            _ => Failure::new(Exit::Tracker, "tracker", message),
        }
    }
}

impl From<reposix::tracker::projection::ProjectError> for Failure {
    fn from(e: reposix::tracker::projection::ProjectError) -> Failure {
        match e {
            reposix::tracker::projection::ProjectError::Backend(b) => b.into(),
            reposix::tracker::projection::ProjectError::Store(s) => RepoError::Store(s).into(),
            other => Failure::new(Exit::Damaged, "damaged", reposix::error_chain(&other)),
        }
    }
}

pub fn run(ctx: &Ctx, cmd: BackendCmd) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    match cmd {
        BackendCmd::Add { name, spec } => {
            let spec = BackendSpec::parse(&spec)?;
            let origin = add(&repo, &name, &spec)?;
            ctx.out.done(
                &serde_json::json!({"name": name, "spec": spec.to_spec_string(), "origin": origin}),
                || {
                    format!(
                        "backend {name} -> {}\nallowed origin {origin} (recorded in git config)",
                        spec.to_spec_string()
                    )
                },
            )
        }
        BackendCmd::List => {
            let all = repo.backends()?;
            let rows: Vec<_> = all
                .iter()
                .map(|(n, s)| {
                    serde_json::json!({
                        "name": n,
                        "spec": s.to_spec_string(),
                        "origin": super::allow::recorded(&repo, n),
                    })
                })
                .collect();
            ctx.out.done(&rows, || {
                if all.is_empty() {
                    return "no backends yet: `reposix backend add NAME <kind>::<address>`\n"
                        .into();
                }
                all.iter()
                    .map(|(n, s)| {
                        let origin = super::allow::recorded(&repo, n)
                            .unwrap_or_else(|| "(origin not recorded)".into());
                        format!("{n}\t{}\t{origin}\n", s.to_spec_string())
                    })
                    .collect()
            })
        }
        BackendCmd::Remove { name } => {
            let removed = repo.detach(&name)?;
            if !removed {
                return Err(Failure::new(
                    Exit::NotFound,
                    "not_found",
                    format!("no backend named {name}"),
                ));
            }
            ctx.out.done(&serde_json::json!({"removed": name}), || {
                format!("removed {name}")
            })
        }
    }
}

/// Attach `spec` as `name` and allow its origin; returns the origin.
pub fn add(repo: &reposix::repo::Repo, name: &str, spec: &BackendSpec) -> Result<String, Failure> {
    Ok(repo.attach(name, spec)?)
}

/// Which directions `sync --backend` runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Directions {
    /// Skip export.
    pub import_only: bool,
    /// Skip import.
    pub export_only: bool,
    /// Walk the whole tracker instead of the cursor.
    pub reconcile: bool,
    /// Change nothing; print what import and export would do.
    pub dry_run: bool,
    /// Publish local-only issues to a newly attached tracker without asking.
    pub yes: bool,
}

#[derive(Serialize)]
struct DryRunJson {
    dry_run: bool,
    backend: String,
    spec: String,
    import: Option<ImportReport>,
    planned: Vec<super::dry_run::Planned>,
}

/// `sync --backend NAME --dry-run`: the real projection on a scratch copy
/// against a tracker that records writes (see `dry_run`).
fn dry_run(
    ctx: &Ctx,
    repo: &reposix::repo::Repo,
    session: TrackerSession,
    dirs: Directions,
    progress: &dyn Fn(&str),
) -> Result<(), Failure> {
    use super::dry_run::Planned;
    let (name, spec, actor) = (
        session.name().to_owned(),
        session.spec().clone(),
        session.actor().clone(),
    );
    let name = name.as_str();
    let dry = super::dry_run::DryRunBackend::new(session.into_tracker());
    let (_tmp, scratch) = super::dry_run::scratch(repo)?;
    let p = Projection::new(scratch.store(), &dry, actor, progress);
    let import = if dirs.export_only {
        None
    } else {
        Some(p.import(dirs.reconcile)?)
    };
    if !dirs.import_only {
        if dirs.reconcile {
            p.export_all()?;
        } else {
            p.export()?;
        }
    }
    let out = DryRunJson {
        dry_run: true,
        backend: name.to_owned(),
        spec: spec.to_spec_string(),
        import,
        planned: dry.planned(),
    };
    ctx.out.done(&out, || {
        let mut s = format!("dry run: nothing was changed, here or on {name}\n");
        if let Some(i) = &out.import {
            s.push_str(&format!(
                "would import from {name}: {} listed, {} new revisions, {} new issues, {} comments\n",
                i.listed, i.observed, i.new_issues, i.comments
            ));
        }
        let mut counts = [0usize; 3];
        for p in &out.planned {
            s.push_str(&match p {
                Planned::Create { title } => {
                    counts[0] += 1;
                    format!("would create on {name}: {}\n", super::term::line(title))
                }
                Planned::Update { remote_id, fields } => {
                    counts[1] += 1;
                    format!("would update {name}#{remote_id}: {}\n", fields.join(", "))
                }
                Planned::Comment { remote_id } => {
                    counts[2] += 1;
                    format!("would comment on {name}#{remote_id}\n")
                }
                Planned::EditComment {
                    remote_id,
                    comment_id,
                } => format!("would edit comment {comment_id} on {name}#{remote_id}\n"),
                Planned::Delete { what } => format!("would delete {what} on {name}\n"),
                Planned::Link {
                    change,
                    kind,
                    from,
                    to,
                } => format!("would {change} the relation {name}#{from} {kind} {name}#{to}\n"),
            });
        }
        if !dirs.import_only {
            s.push_str(&format!(
                "would export to {name}: {} created, {} updated, {} comments\n",
                counts[0], counts[1], counts[2]
            ));
        }
        s
    })
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Failure {
        match e {
            SessionError::NoBackend { name } => Failure::new(
                Exit::NotFound,
                "not_found",
                format!("no backend named {name}"),
            )
            .hint("run `reposix backend list`, or `reposix backend add NAME <kind>::<address>`"),
            SessionError::Repo(r) => r.into(),
            SessionError::Backend(b) => b.into(),
            SessionError::Project(p) => p.into(),
            SessionError::Recover(e) => super::sync::sync_failure(e),
            e @ SessionError::MarkdownEdits(EditsError::Rejected(_)) => Failure::new(
                Exit::Invalid,
                "markdown_rejected",
                reposix::error_chain(&e),
            )
            .hint(
                "fix the file at that line, commit, and sync again (nothing was applied or sent)",
            ),
            e @ SessionError::MarkdownEdits(_) => {
                Failure::new(Exit::Failure, "markdown_edits", reposix::error_chain(&e))
            }
            SessionError::ConfirmationNeeded { name, local } => {
                confirmation_needed(&name, &format!("publish {local} local issues to {name}?"))
            }
        }
    }
}

/// The refusal to publish local-only issues without a confirmation.
fn confirmation_needed(name: &str, question: &str) -> Failure {
    Failure::new(
        Exit::Invalid,
        "confirmation_needed",
        format!("not exporting: {question}"),
    )
    .hint(format!(
        "see what would be sent with `reposix sync --backend {name} --dry-run`, then confirm with --yes \
         (or --import-only to only read)"
    ))
}

/// `reposix sync --backend NAME`: the library's tracker session (markdown
/// edits, import, export, import again), with progress and a summary.
pub fn sync(ctx: &Ctx, name: &str, dirs: Directions) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let actor = ctx.actor(&repo)?;
    let mut session = TrackerSession::open(&repo, name, actor.clone())?;
    let display = std::sync::Arc::new(super::progress::Progress::new(ctx.out.json));
    // Rate-limit waits and renames get their own line.
    let notices = display.clone();
    session.set_notice(std::sync::Arc::new(move |line: &str| notices.notice(line)));
    let progress = |line: &str| display.step(line);
    if dirs.dry_run {
        return dry_run(ctx, &repo, session, dirs, &progress);
    }
    let opts = TrackerSyncOptions {
        import_only: dirs.import_only,
        export_only: dirs.export_only,
        reconcile: dirs.reconcile,
    };
    let spec_text = session.spec().to_spec_string();
    let question = |local: usize| {
        format!(
            "publish {local} local issues to {name} ({spec_text})? nothing of this repository is there yet"
        )
    };
    let confirm = |local: usize| dirs.yes || super::term::ask_yes_no(&question(local));
    let out = session
        .run(&repo, opts, &progress, &confirm)
        .map_err(|e| match e {
            SessionError::ConfirmationNeeded { local, .. } => {
                confirmation_needed(name, &question(local))
            }
            e => {
                let f = Failure::from(e);
                match session.staleness(&repo) {
                    Some(s) => {
                        let hint = f.hint.clone().map_or(s.clone(), |h| format!("{h}; {s}"));
                        f.hint(hint)
                    }
                    None => f,
                }
            }
        })?;
    let failed = out.export.as_ref().map_or(0, |e| e.failed.len());
    let retried = out.export.as_ref().map_or(0, |e| e.conflicts_retried);
    let text = || {
        let mut s = String::new();
        if out.markdown_edits.files > 0 {
            s.push_str(&format!(
                "markdown edits: {} files, {} issues changed, {} created\n",
                out.markdown_edits.files,
                out.markdown_edits.issues_changed,
                out.markdown_edits.created
            ));
        }
        s.push_str(&tracker_text(name, &out));
        s
    };
    display.finish(&summary(name, &out));
    let linked = out.export.as_ref().map_or(0, |e| e.links_local_only);
    if linked > 0 {
        ctx.out.warn(&format!(
            "{linked} typed links stay local (kept in the refs, {name} is not told): {name} has no \
             relation for their kind, or their other end is not on {name} yet"
        ));
    }
    let refused = out.import.as_ref().map_or(0, |i| i.links_refused);
    if refused > 0 {
        ctx.out.warn(&format!(
            "{refused} relations on {name} were not imported: each would close a cycle of blocks \
             or parent with the links here"
        ));
    }
    let local_only = out.export.as_ref().map_or(0, |e| e.comments_local_only);
    if local_only > 0 {
        ctx.out.warn(&format!(
            "{name} has no comments API: {local_only} comments stayed local (they are kept in the issue log)"
        ));
    }
    for (issue, twin, kept) in out.export.iter().flat_map(|e| &e.twins_left) {
        ctx.out.warn(&format!(
            "{}: {name} holds it twice ({twin} and {kept}: two clones created it before \
             either saw the other's record, and the marker that would have told them was \
             deleted on the tracker); {kept} is kept and {name} cannot delete issues \
             through its API, so delete or close {twin} there",
            issue.short()
        ));
    }
    if let Some(now) = session.relocated() {
        ctx.out.warn(&format!(
            "{name} now answers as {} (renamed on the tracker); the stored address {} stays, \
             it is this backend's identity",
            now.to_spec_string(),
            spec_text
        ));
    }
    let stale = session.staleness(&repo);
    if retried > 0 {
        if let Some(s) = &stale {
            ctx.out.warn(&format!(
                "the tracker moved during the sync ({retried} conflicts re-imported and retried); {s}"
            ));
        }
    }
    if failed > 0 {
        // One envelope: `ok: false` with what was done as its data.
        ctx.out.text(text)?;
        let mut hint = format!("run `reposix sync --backend {name}` again");
        if let Some(s) = stale {
            hint.push_str(&format!("; {s}"));
        }
        return Err(Failure::new(
            Exit::Tracker,
            "export_incomplete",
            format!("{failed} issues could not be exported to {name}; local work is intact"),
        )
        .hint(hint)
        .data(&out));
    }
    ctx.out.done(&out, text)
}

/// What a tracker sync imported and exported, for people (shared by
/// `sync --backend` and `mirror sync`).
pub fn tracker_text(name: &str, out: &TrackerReport) -> String {
    let mut s = String::new();
    if !out.recovered.is_empty() {
        s.push_str(&format!(
            "recovered events a forced fetch had dropped: {}\n",
            super::sync::ids(&out.recovered)
        ));
    }
    for (issue, why) in &out.unrecoverable {
        s.push_str(&format!(
            "could not recover {issue} from its reflog: {why}\n"
        ));
    }
    if let Some(i) = &out.import {
        s.push_str(&format!(
            "imported from {name}: {} listed, {} new revisions, {} new issues, {} comments\n",
            i.listed, i.observed, i.new_issues, i.comments
        ));
        if i.gone > 0 {
            s.push_str(&format!(
                "{} issues or comments are gone from {name} (deleted there); recorded\n",
                i.gone
            ));
        }
        if i.links > 0 {
            s.push_str(&format!(
                "{} typed links added or removed here from relations changed on {name}\n",
                i.links
            ));
        }
    }
    if let Some(e) = &out.export {
        s.push_str(&format!(
            "exported to {name}: {} created, {} updated, {} recovered, {} comments, {} conflicts retried\n",
            e.created, e.updated, e.recovered, e.comments, e.conflicts_retried
        ));
        if e.links > 0 {
            s.push_str(&format!(
                "{} relations (typed links) added or removed on {name}\n",
                e.links
            ));
        }
        if e.gone > 0 {
            s.push_str(&format!(
                "{} issues were deleted on {name}: recorded (status wont_fix), not exported again\n",
                e.gone
            ));
        }
        if e.twins_retired > 0 {
            s.push_str(&format!(
                "{} second copies of issues deleted on {name}, their comments moved to the copy kept\n",
                e.twins_retired
            ));
        }
        for (issue, what) in &e.refused {
            s.push_str(&format!(
                "refused by {name}: {issue}: {what} (not sent again until it changes)\n"
            ));
        }
        for (issue, to) in &e.moved {
            s.push_str(&format!(
                "moved on {name}: {issue} is now {to}; recorded as gone here\n"
            ));
        }
        for (issue, why) in &e.failed {
            s.push_str(&format!("not exported: {issue}: {why}\n"));
        }
    }
    s
}

/// The one line that ends a `sync --backend` on stderr.
fn summary(name: &str, out: &TrackerReport) -> String {
    let mut parts = Vec::new();
    if let Some(i) = &out.import {
        parts.push(format!(
            "{} listed, {} new issues, {} new revisions imported",
            i.listed, i.new_issues, i.observed
        ));
    }
    if let Some(e) = &out.export {
        parts.push(format!(
            "{} created, {} updated, {} comments exported",
            e.created, e.updated, e.comments
        ));
        if !e.failed.is_empty() {
            parts.push(format!("{} failed", e.failed.len()));
        }
    }
    format!("sync with {name}: {}", parts.join("; "))
}

/// `reposix init <kind>::<address> DIR` (Pattern B): a new repository
/// attached to the tracker, imported, ready to edit.
pub fn init(ctx: &Ctx, spec: &str, dir: &std::path::Path) -> Result<(), Failure> {
    let spec = BackendSpec::parse(spec)?;
    let repo = reposix::repo::Repo::init(dir)?;
    let name = spec.kind.as_str();
    add(&repo, name, &spec)?;
    let sub = Ctx {
        out: super::Out {
            json: ctx.out.json,
            fields: ctx.out.fields.clone(),
        },
        actor: ctx.actor.clone().or_else(|| Some("reposix".into())),
        dir: dir.to_path_buf(),
    };
    sync(
        &sub,
        name,
        Directions {
            import_only: true,
            ..Directions::default()
        },
    )
}

/// `reposix attach <kind>::<address>` (Pattern C), inside an existing
/// repository such as a clone of a mirror: attach and import (issues are
/// reconciled by remote id, local unpushed edits are kept: they are events
/// or, in markdown files, become events on the next sync).
pub fn attach(ctx: &Ctx, spec: &str, name: Option<&str>) -> Result<(), Failure> {
    let spec = BackendSpec::parse(spec)?;
    let repo = reposix::repo::Repo::init(&ctx.dir)?;
    let name = name.unwrap_or(spec.kind.as_str()).to_owned();
    // Who records the import is known before anything is registered: a
    // missing actor must not leave a half-attached backend behind.
    ctx.actor(&repo)?;
    add(&repo, &name, &spec)?;
    sync(
        ctx,
        &name,
        Directions {
            import_only: true,
            reconcile: true,
            ..Directions::default()
        },
    )
}
