//! `reposix mirror render|push|sync|status`: the plain-git markdown mirror
//! (see `reposix::mirror` for the format, the refs and the guarantees).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;

use reposix::mirror::{
    self, MirrorError, MirrorFailureReason, MirrorOptions, MirrorReport, MirrorSource,
};
use reposix::repo::Repo;
use reposix::sync::tracker::{TrackerReport, TrackerSession, TrackerSyncOptions};
use reposix::tracker::{BackendKind, BackendSpec};

use super::{store_failure, Ctx, Exit, Failure};

#[derive(Subcommand)]
pub enum MirrorCmd {
    /// Write the issues as markdown into DIR (default: the work tree):
    /// `issues/<id>.md` (`pages/<id>.md` for Confluence) and
    /// `comments/<id>.md`. Never writes or deletes through a symlink.
    #[command(
        after_help = "Examples:\n  reposix mirror render /tmp/issues-md --kind sim\n  reposix mirror render --backend gh --prune"
    )]
    Render {
        /// Target directory.
        #[arg(value_name = "DIR")]
        target: Option<PathBuf>,
        #[command(flatten)]
        source: SourceArgs,
        /// Remove `.md` files in those directories that the render lacks.
        #[arg(long)]
        prune: bool,
    },
    /// Commit the rendered issues to the mirror's branch and push it, with
    /// `refs/mirrors/<slug>-head` and `refs/mirrors/<slug>-synced-at`.
    #[command(
        after_help = "Examples:\n  reposix mirror push ../issues-mirror.git --kind sim\n  git config reposix.mirror origin-mirror && reposix mirror push --backend gh"
    )]
    Push {
        /// Remote name, URL or path (default: `git config reposix.mirror`).
        mirror: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        push: PushArgs,
    },
    /// The tracker first (import, export, import), then the mirror, best
    /// effort: a failed mirror push warns, keeps the lag on record, exits 0.
    #[command(
        after_help = "Examples:\n  reposix mirror sync\n  reposix mirror sync origin-mirror --backend gh --import-only"
    )]
    Sync {
        /// Remote name, URL or path (default: `git config reposix.mirror`).
        mirror: Option<String>,
        /// The tracker (default: the only one attached).
        #[arg(long, value_name = "NAME")]
        backend: Option<String>,
        /// Only import from the tracker (what the mirror's CI job runs).
        #[arg(long)]
        import_only: bool,
        #[command(flatten)]
        push: PushArgs,
    },
    /// When the mirror last synced from here, and whether it lags.
    #[command(
        after_help = "Examples:\n  reposix mirror status\n  reposix mirror status --backend gh"
    )]
    Status {
        #[command(flatten)]
        source: SourceArgs,
    },
}

#[derive(Args)]
pub struct SourceArgs {
    /// Mirror the issues bound to this tracker (default: the only one
    /// attached).
    #[arg(long, value_name = "NAME", conflicts_with = "kind")]
    backend: Option<String>,
    /// Mirror every issue, unbound, under this kind's slug and layout
    /// (sim, github, jira, confluence).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
}

#[derive(Args)]
pub struct PushArgs {
    /// The mirror's branch (default: `git config reposix.mirrorBranch`,
    /// else main).
    #[arg(long)]
    branch: Option<String>,
    /// Trailer key marking bot commits (default: `git config
    /// reposix.mirrorTrailer`, else Reposix-Origin).
    #[arg(long, value_name = "KEY")]
    trailer: Option<String>,
    /// Give up on a `git` invocation after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    timeout: u64,
}

pub fn run(ctx: &Ctx, cmd: MirrorCmd) -> Result<(), Failure> {
    match cmd {
        MirrorCmd::Render {
            target,
            source,
            prune,
        } => render(ctx, target, &source, prune),
        MirrorCmd::Push {
            mirror,
            source,
            push,
        } => push_cmd(ctx, mirror, &source, &push),
        MirrorCmd::Sync {
            mirror,
            backend,
            import_only,
            push,
        } => sync(ctx, mirror, backend, import_only, &push),
        MirrorCmd::Status { source } => status(ctx, &source),
    }
}

/// The tracker named `name`, else the only one attached.
fn pick_backend(repo: &Repo, name: Option<&str>) -> Result<(String, BackendSpec), Failure> {
    let all = repo.backends()?;
    match name {
        Some(n) => all
            .get(n)
            .map(|s| (n.to_owned(), s.clone()))
            .ok_or_else(|| {
                Failure::new(Exit::NotFound, "not_found", format!("no backend named {n}"))
                    .hint("run `reposix backend list`")
            }),
        None if all.len() == 1 => Ok(all
            .into_iter()
            .next()
            .expect("BUG: one backend is there")),
        None if all.is_empty() => Err(Failure::new(
            Exit::Invalid,
            "no_backend",
            "no tracker attached",
        )
        .hint("attach one with `reposix backend add NAME <kind>::<address>`, or pass --kind KIND to mirror unbound issues")),
        None => Err(Failure::new(
            Exit::Invalid,
            "ambiguous_backend",
            format!(
                "several trackers attached ({})",
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
        .hint("pass --backend NAME")),
    }
}

fn source(repo: &Repo, args: &SourceArgs) -> Result<MirrorSource, Failure> {
    if let Some(kind) = &args.kind {
        let kind: BackendKind = kind.parse()?;
        return Ok(MirrorSource::unbound(kind));
    }
    let (_, spec) = pick_backend(repo, args.backend.as_deref())?;
    Ok(MirrorSource::backend(&spec))
}

fn options(repo: &Repo, mirror: Option<&str>, args: &PushArgs) -> Result<MirrorOptions, Failure> {
    let mut opts = MirrorOptions::configured(repo.store(), mirror).map_err(mirror_failure)?;
    if let Some(b) = &args.branch {
        opts.branch = b.clone();
    }
    if let Some(t) = &args.trailer {
        opts.trailer = t.clone();
    }
    opts.timeout = Duration::from_secs(args.timeout.max(1));
    Ok(opts)
}

fn hint_for(reason: MirrorFailureReason) -> &'static str {
    match reason {
        MirrorFailureReason::AuthFailed => {
            "the mirror refused the credentials: set REPOSIX_MIRROR_TOKEN (and REPOSIX_MIRROR_USER) or configure a git credential helper"
        }
        MirrorFailureReason::ProtectedRefRejected => {
            "the mirror's branch is protected: let the bot push to it, or choose another with `git config reposix.mirrorBranch NAME`"
        }
        MirrorFailureReason::NetworkFailed => {
            "the mirror could not be reached; run `reposix mirror push` again later"
        }
        MirrorFailureReason::RemoteNotFound => {
            "check the mirror's URL or path (`git config reposix.mirror`, `git remote -v`)"
        }
        MirrorFailureReason::PushRejected => {
            "the mirror refused the push (a hook, or writers racing): run `reposix mirror push` again once resolved"
        }
        MirrorFailureReason::Unknown => "see git's message above",
    }
}

fn mirror_failure(e: MirrorError) -> Failure {
    let message = reposix::error_chain(&e);
    if let Some(reason) = e.reason() {
        let exit = match reason {
            MirrorFailureReason::NetworkFailed => Exit::RemoteUnreachable,
            MirrorFailureReason::PushRejected | MirrorFailureReason::ProtectedRefRejected => {
                Exit::SyncIncomplete
            }
            _ => Exit::Failure,
        };
        return Failure::new(exit, reason.as_str(), message).hint(hint_for(reason));
    }
    match e {
        MirrorError::NoMirror => Failure::new(Exit::Invalid, "no_mirror", message),
        MirrorError::CredentialsInUrl { .. }
        | MirrorError::Invalid { .. }
        | MirrorError::Markdown { .. } => Failure::new(Exit::Invalid, "invalid", message),
        MirrorError::Store { source, .. } => store_failure(&source, message),
        MirrorError::Spawn { .. } => {
            Failure::new(Exit::Failure, "git_missing", message).hint("install git")
        }
        _ => Failure::new(Exit::Failure, "io", message),
    }
}

fn render(ctx: &Ctx, dir: Option<PathBuf>, args: &SourceArgs, prune: bool) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let source = source(&repo, args)?;
    let dir = match dir {
        Some(d) => d,
        None => repo
            .store()
            .repo()
            .workdir()
            .map(|p| p.to_path_buf())
            .ok_or_else(|| {
                Failure::new(
                    Exit::Invalid,
                    "invalid",
                    "a bare repository has no work tree",
                )
                .hint("pass DIR")
            })?,
    };
    let issues = mirror::collect(repo.store(), &source).map_err(mirror_failure)?;
    let files = mirror::render(&issues, source.kind, source.backend.as_deref());
    let report = mirror::write_files(&dir, source.kind, &files, prune).map_err(mirror_failure)?;
    #[derive(Serialize)]
    struct RenderJson<'a> {
        dir: String,
        slug: &'static str,
        files: usize,
        #[serde(flatten)]
        report: &'a mirror::WriteReport,
    }
    let out = RenderJson {
        dir: dir.display().to_string(),
        slug: source.slug(),
        files: files.len(),
        report: &report,
    };
    if !prune && !report.stale.is_empty() && !ctx.out.json {
        ctx.out.warn(&format!(
            "{} file(s) not in the render (pass --prune to remove): {}",
            report.stale.len(),
            report.stale.join(", ")
        ));
    }
    ctx.out.done(&out, || {
        format!(
            "rendered {} issues into {}/{}: {} written, {} unchanged{}",
            files.len(),
            out.dir,
            mirror::dir_for(source.kind),
            report.written.len(),
            report.unchanged,
            if prune && !report.stale.is_empty() {
                format!(", {} removed", report.stale.len())
            } else {
                String::new()
            }
        )
    })
}

fn pushed_text(r: &MirrorReport) -> String {
    format!(
        "mirror {}: {} files, {} {} ({}{}); refs/mirrors/{}-head and -synced-at at {}",
        r.mirror,
        r.files,
        r.branch,
        &r.commit[..12.min(r.commit.len())],
        if r.committed {
            "new commit"
        } else {
            "unchanged"
        },
        if r.default_branch_set {
            ", now the mirror's default branch"
        } else {
            ""
        },
        r.slug,
        r.synced_at
    )
}

/// A clone of a mirror whose `HEAD` names no branch checks out nothing;
/// and the lock files a killed run had left, now removed.
fn warn_default_branch(ctx: &Ctx, r: &MirrorReport) {
    if !ctx.out.json {
        for l in &r.stale_locks {
            ctx.out.warn(&format!(
                "removed a stale lock left by a killed writer: {l}"
            ));
        }
    }
    if r.default_branch.is_none() && !ctx.out.json {
        ctx.out.warn(&format!(
            "the mirror's HEAD names no branch, so a clone checks out nothing: \
             make {} its default branch on the server",
            r.branch
        ));
    }
}

fn push_cmd(
    ctx: &Ctx,
    mirror_arg: Option<String>,
    args: &SourceArgs,
    push: &PushArgs,
) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let source = source(&repo, args)?;
    let opts = options(&repo, mirror_arg.as_deref(), push)?;
    let report = mirror::push_mirror(repo.store(), &source, &opts).map_err(mirror_failure)?;
    warn_default_branch(ctx, &report);
    ctx.out.done(&report, || pushed_text(&report))
}

#[derive(Serialize)]
struct MirrorOutcome {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<MirrorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<MirrorFailureReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    staleness: Option<String>,
}

#[derive(Serialize)]
struct SyncJson {
    #[serde(flatten)]
    tracker: TrackerReport,
    mirror: MirrorOutcome,
}

/// Tracker first; the mirror only after the tracker write landed, and its
/// failure is a warning (the SoT is what writers depend on).
fn sync(
    ctx: &Ctx,
    mirror_arg: Option<String>,
    backend_name: Option<String>,
    import_only: bool,
    push: &PushArgs,
) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let actor = ctx.actor(&repo)?;
    let (name, spec) = pick_backend(&repo, backend_name.as_deref())?;
    let source = MirrorSource::backend(&spec);
    let opts = options(&repo, mirror_arg.as_deref(), push)?;
    let stale = || mirror::staleness(repo.store(), source.slug());
    let with_staleness = |f: Failure| match stale() {
        Some(s) => {
            let hint = match &f.hint {
                Some(h) => format!("{h}; {s}"),
                None => s,
            };
            f.hint(hint)
        }
        None => f,
    };
    let session =
        TrackerSession::open(&repo, &name, actor).map_err(|e| with_staleness(e.into()))?;
    let json = ctx.out.json;
    let progress = move |line: &str| {
        if !json {
            eprintln!("{line}");
        }
    };
    let tracker_opts = TrackerSyncOptions {
        import_only,
        ..TrackerSyncOptions::default()
    };
    // The mirror host publishes what it holds: no question asked.
    let report = session
        .run(&repo, tracker_opts, &progress, &|_| true)
        .map_err(|e| with_staleness(e.into()))?;
    let outcome = match mirror::push_mirror(repo.store(), &source, &opts) {
        Ok(report) => {
            warn_default_branch(ctx, &report);
            MirrorOutcome {
                ok: true,
                report: Some(report),
                reason: None,
                message: None,
                staleness: None,
            }
        }
        Err(e) => {
            let staleness = stale();
            let reason = e.reason().unwrap_or(MirrorFailureReason::Unknown);
            let message = reposix::error_chain(&e);
            if !json {
                ctx.out.warn(&format!(
                    "{message}; the tracker write landed, the mirror lags behind it"
                ));
                if let Some(s) = &staleness {
                    ctx.out.warn(s);
                }
            }
            MirrorOutcome {
                ok: false,
                report: None,
                reason: Some(reason),
                message: Some(message),
                staleness,
            }
        }
    };
    let failed = report.export.as_ref().map_or(0, |e| e.failed.len());
    let out = SyncJson {
        tracker: report,
        mirror: outcome,
    };
    ctx.out.done(&out, || {
        let mut s = super::backend::tracker_text(&name, &out.tracker);
        match &out.mirror.report {
            Some(r) => s.push_str(&pushed_text(r)),
            None => s.push_str(&format!(
                "mirror not updated ({})",
                out.mirror.reason.map_or("unknown", |r| r.as_str())
            )),
        }
        s
    })?;
    if failed > 0 {
        return Err(with_staleness(
            Failure::new(
                Exit::Tracker,
                "export_incomplete",
                format!("{failed} issues could not be exported to {name}; local work is intact"),
            )
            .hint(format!("run `reposix mirror sync --backend {name}` again")),
        ));
    }
    Ok(())
}

fn status(ctx: &Ctx, args: &SourceArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let source = source(&repo, args)?;
    let lag = mirror::lag(repo.store(), &source).map_err(mirror_failure)?;
    let now = reposix::time::now_secs();
    let slug = source.slug();
    #[derive(Serialize)]
    struct StatusJson<'a> {
        slug: &'static str,
        #[serde(flatten)]
        lag: &'a mirror::MirrorLag,
        synced_at: Option<String>,
        age_secs: Option<i64>,
    }
    let out = StatusJson {
        slug,
        lag: &lag,
        synced_at: lag.last.as_ref().map(|l| reposix::time::format_secs(l.at)),
        age_secs: lag.last.as_ref().map(|l| now - l.at),
    };
    ctx.out.done(&out, || match &lag.last {
        None => format!(
            "mirror of {slug}: never synced from this repository (no refs/mirrors/{slug}-synced-at)"
        ),
        Some(last) => format!(
            "mirror of {slug}: last synced at {} ({}), head {}\nlocal state: {}",
            reposix::time::format_secs(last.at),
            mirror::ago(now - last.at),
            last.head.as_deref().map_or("?", |h| &h[..12.min(h.len())]),
            match lag.in_step {
                Some(true) => "in step with the mirror".to_owned(),
                _ => "ahead of the mirror: run `reposix mirror push`".to_owned(),
            }
        ),
    })
}
