//! `reposix backend add|list|remove` and `reposix sync --backend NAME`.

use clap::Subcommand;
use serde::Serialize;

use reposix::backend::{self, BackendSpec};
use reposix::project::{ExportReport, ImportReport, Projection};
use reposix::repo::RepoError;

use super::{Ctx, Exit, Failure};

#[derive(Subcommand)]
pub enum BackendCmd {
    /// Attach a tracker: `reposix backend add NAME <kind>::<address>`, e.g.
    /// `sim::http://127.0.0.1:7878/demo`, `github::owner/repo`,
    /// `jira::https://site.atlassian.net/PROJ`,
    /// `confluence::https://site.atlassian.net/SPACE`.
    Add {
        /// Local name.
        name: String,
        /// `<kind>::<address>`.
        spec: String,
    },
    /// List attached trackers.
    List,
    /// Detach a tracker (its events stay in the logs).
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
            B::Egress { .. } => Failure::new(Exit::Egress, "egress_refused", message).hint(
                "allow the tracker's origin: REPOSIX_ALLOWED_ORIGINS=https://host (comma-separated)",
            ),
            B::Auth { .. } => Failure::new(Exit::Tracker, "auth_failed", message).hint(
                "set GITHUB_TOKEN, or ATLASSIAN_EMAIL and ATLASSIAN_API_KEY, or configure a git credential helper",
            ),
            _ => Failure::new(Exit::Tracker, "tracker", message),
        }
    }
}

impl From<reposix::project::ProjectError> for Failure {
    fn from(e: reposix::project::ProjectError) -> Failure {
        match e {
            reposix::project::ProjectError::Backend(b) => b.into(),
            reposix::project::ProjectError::Store(s) => RepoError::Store(s).into(),
            other => Failure::new(Exit::Damaged, "damaged", reposix::error_chain(&other)),
        }
    }
}

pub fn run(ctx: &Ctx, cmd: BackendCmd) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    match cmd {
        BackendCmd::Add { name, spec } => {
            let spec = BackendSpec::parse(&spec)?;
            repo.add_backend(&name, &spec)?;
            ctx.out.done(
                &serde_json::json!({"name": name, "spec": spec.to_spec_string()}),
                || format!("backend {name} -> {}", spec.to_spec_string()),
            )
        }
        BackendCmd::List => {
            let all = repo.backends()?;
            let rows: Vec<_> = all
                .iter()
                .map(|(n, s)| serde_json::json!({"name": n, "spec": s.to_spec_string()}))
                .collect();
            ctx.out.done(&rows, || {
                all.iter()
                    .map(|(n, s)| format!("{n}\t{}\n", s.to_spec_string()))
                    .collect()
            })
        }
        BackendCmd::Remove { name } => {
            if !repo.remove_backend(&name)? {
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

/// Which directions `sync --backend` runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Directions {
    /// Skip export.
    pub import_only: bool,
    /// Skip import.
    pub export_only: bool,
    /// Walk the whole tracker instead of the cursor.
    pub reconcile: bool,
}

#[derive(Serialize)]
struct BackendSyncJson {
    backend: String,
    spec: String,
    markdown_edits: reposix::mirror::edits::EditsReport,
    import: Option<ImportReport>,
    export: Option<ExportReport>,
}

/// `reposix sync --backend NAME`: import, then export, then import the
/// results (which records nothing new unless the tracker moved meanwhile).
pub fn sync(ctx: &Ctx, name: &str, dirs: Directions) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let actor = ctx.actor(&repo)?;
    let backends = repo.backends()?;
    let Some(spec) = backends.get(name) else {
        return Err(Failure::new(
            Exit::NotFound,
            "not_found",
            format!("no backend named {name}"),
        )
        .hint("run `reposix backend list`, or `reposix backend add NAME <kind>::<address>`"));
    };
    let mut tracker = backend::open(spec, &format!("reposix-{actor}"))?;
    let json = ctx.out.json;
    let progress = move |line: &str| {
        if !json {
            eprintln!("{}", super::safe_message(line));
        }
    };
    // Rate-limit waits and renames show up like progress lines.
    tracker.set_notice(std::sync::Arc::new(progress));
    let identities: Vec<String> = repo
        .store()
        .repo()
        .config_snapshot()
        .strings(backend::identity::CONFIG_KEY)
        .unwrap_or_default()
        .iter()
        .map(|v| v.to_string())
        .collect();
    tracker.set_identities(backend::IdentityMap::from_entries(
        identities.iter().map(String::as_str),
    )?);
    let p = Projection::new(repo.store(), tracker.as_ref(), actor.clone(), &progress);
    // In a clone of a mirror, committed edits to the markdown files become
    // events first, so this same run exports them.
    let trailer = repo
        .store()
        .repo()
        .config_snapshot()
        .string("reposix.mirrorTrailer")
        .map(|v| v.to_string())
        .unwrap_or_else(|| reposix::mirror::DEFAULT_TRAILER.to_owned());
    let edits = reposix::mirror::edits::import_markdown_edits(&repo, p.key(), &actor, &trailer)
        .map_err(|e| match e {
            reposix::mirror::edits::EditsError::Rejected(_) => Failure::new(
                Exit::Invalid,
                "markdown_rejected",
                reposix::error_chain(&e),
            )
            .hint(
                "fix the file at that line, commit, and sync again (nothing was applied or sent)",
            ),
            _ => Failure::new(Exit::Failure, "markdown_edits", reposix::error_chain(&e)),
        })?;
    let with_staleness =
        |f: Failure| match reposix::mirror::staleness(repo.store(), spec.kind.as_str()) {
            Some(s) => {
                let hint = f.hint.clone().map_or(s.clone(), |h| format!("{h}; {s}"));
                f.hint(hint)
            }
            None => f,
        };
    let import = if dirs.export_only {
        None
    } else {
        Some(
            p.import(dirs.reconcile)
                .map_err(|e| with_staleness(e.into()))?,
        )
    };
    let export = if dirs.import_only {
        None
    } else {
        let e = if dirs.reconcile {
            p.export_all()
        } else {
            p.export()
        }
        .map_err(|e| with_staleness(e.into()))?;
        p.import(false).map_err(|e| with_staleness(e.into()))?;
        Some(e)
    };
    let failed = export.as_ref().map_or(0, |e| e.failed.len());
    let retried = export.as_ref().map_or(0, |e| e.conflicts_retried);
    let out = BackendSyncJson {
        backend: name.to_owned(),
        spec: spec.to_spec_string(),
        markdown_edits: edits,
        import,
        export,
    };
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
        }
        if let Some(e) = &out.export {
            s.push_str(&format!(
                "exported to {name}: {} created, {} updated, {} recovered, {} comments, {} conflicts retried\n",
                e.created, e.updated, e.recovered, e.comments, e.conflicts_retried
            ));
            if e.gone > 0 {
                s.push_str(&format!(
                    "{} issues were deleted on {name}: recorded (status wont_fix), not exported again\n",
                    e.gone
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
    };
    let local_only = out.export.as_ref().map_or(0, |e| e.comments_local_only);
    if local_only > 0 {
        ctx.out.warn(&format!(
            "{name} has no comments API: {local_only} comments stayed local (they are kept in the issue log)"
        ));
    }
    if let Some(now) = tracker.relocated() {
        ctx.out.warn(&format!(
            "{name} now answers as {} (renamed on the tracker); the stored address {} stays, \
             it is this backend's identity",
            now.to_spec_string(),
            spec.to_spec_string()
        ));
    }
    let stale = reposix::mirror::staleness(repo.store(), spec.kind.as_str());
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

/// `reposix init <kind>::<address> DIR` (Pattern B): a new repository
/// attached to the tracker, imported, ready to edit.
pub fn init(ctx: &Ctx, spec: &str, dir: &std::path::Path) -> Result<(), Failure> {
    let spec = BackendSpec::parse(spec)?;
    let repo = reposix::repo::Repo::init(dir)?;
    let name = spec.kind.as_str();
    repo.add_backend(name, &spec)?;
    let sub = Ctx {
        out: super::Out { json: ctx.out.json },
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
    repo.add_backend(&name, &spec)?;
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
