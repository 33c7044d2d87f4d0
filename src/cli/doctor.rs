//! `reposix doctor`: checks the set-up without the network: git's version,
//! the acting actor, each attached tracker (kind, origin, Atlassian token
//! form, credentials present: names only, never values; origin allowed),
//! the listing index's health, and each mirror's lag. `--fix` repairs what
//! is safe to repair: it records an attached tracker's origin as allowed
//! (what `backend add` does today; trackers attached before it lack it)
//! and rebuilds the index (a derived cache). Problems exit 7; warnings
//! (a mirror behind, a fix that needs you) do not.

use std::time::Instant;

use clap::Args;
use reposix::mirror::{self, MirrorSource};
use reposix::repo::Repo;
use reposix::store::index::Index;
use reposix::tracker::describe::{describe, BackendReport};
use serde::Serialize;

use super::{Ctx, Exit, Failure};

/// Arguments of `reposix doctor`.
#[derive(Args)]
#[command(after_help = "Examples:
  reposix doctor              # check everything, exit 7 on a problem
  reposix doctor --fix        # also repair what is safe to repair
  reposix --json doctor       # the report as JSON (never a credential)")]
pub struct DoctorArgs {
    /// Repair what is safe to repair: record attached trackers' origins
    /// as allowed, rebuild the listing index.
    #[arg(long)]
    fix: bool,
}

#[derive(Serialize)]
struct Row {
    name: String,
    /// The origin `backend add` recorded as allowed, if any.
    recorded_origin: Option<String>,
    #[serde(flatten)]
    report: BackendReport,
}

#[derive(Serialize)]
struct GitCheck {
    version: Option<String>,
    problem: Option<String>,
}

#[derive(Serialize)]
struct ActorCheck {
    actor: Option<String>,
    problem: Option<String>,
}

#[derive(Serialize)]
struct IndexCheck {
    issues: usize,
    damaged: usize,
    /// Issues the index had to re-fold (stale entries) on this read.
    refreshed: usize,
    millis: u64,
    problem: Option<String>,
}

#[derive(Serialize)]
struct MirrorCheck {
    slug: &'static str,
    synced_at: String,
    in_step: Option<bool>,
    warning: Option<String>,
}

#[derive(Serialize)]
struct Report {
    git: GitCheck,
    actor: ActorCheck,
    backends: Vec<Row>,
    index: IndexCheck,
    mirrors: Vec<MirrorCheck>,
    fixed: Vec<String>,
    problems: usize,
}

fn git_check(repo: &Repo) -> GitCheck {
    let mut cmd = reposix::git::command(repo.store().git_dir());
    cmd.arg("version");
    match reposix::git::run(cmd, std::time::Duration::from_secs(30), None) {
        Ok(out) if out.status.success() => GitCheck {
            version: Some(
                out.stdout
                    .trim()
                    .trim_start_matches("git version ")
                    .to_owned(),
            ),
            problem: None,
        },
        Ok(out) => GitCheck {
            version: None,
            problem: Some(format!("`git version` failed: {}", out.stderr.trim())),
        },
        Err(e) => GitCheck {
            version: None,
            problem: Some(format!("git cannot be run: {e:?}")),
        },
    }
}

fn backend_rows(repo: &Repo) -> Result<Vec<Row>, Failure> {
    let allow = super::allow::allowlist(repo)?;
    let var = |name: &str| std::env::var(name).ok();
    Ok(repo
        .backends()?
        .into_iter()
        .map(|(name, spec)| Row {
            recorded_origin: super::allow::recorded(repo, &name),
            report: describe(&spec, &var, &allow),
            name,
        })
        .collect())
}

fn index_check(repo: &Repo, rebuild: bool) -> Result<IndexCheck, Failure> {
    let started = Instant::now();
    let listing = Index::new(repo.store())
        .list(rebuild)
        .map_err(|e| Failure::from(reposix::repo::RepoError::from(e)))?;
    let damaged = listing.damaged.len();
    Ok(IndexCheck {
        issues: listing.issues.len(),
        damaged,
        refreshed: listing.refreshed,
        millis: started.elapsed().as_millis() as u64,
        problem: (damaged > 0)
            .then(|| format!("{damaged} issue refs do not fold (run `reposix fsck` for details)")),
    })
}

/// Check the set-up, repair what is safe to with `--fix`, and report.
pub fn run(ctx: &Ctx, args: &DoctorArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let mut fixed = Vec::new();

    let git = git_check(&repo);
    let actor = match ctx.actor(&repo) {
        Ok(a) => ActorCheck {
            actor: Some(a.as_str().to_owned()),
            problem: None,
        },
        Err(f) => ActorCheck {
            actor: None,
            problem: Some(format!(
                "{} ({})",
                f.message,
                f.hint.as_deref().unwrap_or("")
            )),
        },
    };

    let mut backends = backend_rows(&repo)?;
    if args.fix {
        let specs = repo.backends()?;
        for row in backends.iter().filter(|r| r.recorded_origin.is_none()) {
            if let Some(spec) = specs.get(&row.name) {
                let origin = super::allow::record(&repo, &row.name, spec)?;
                fixed.push(format!(
                    "recorded {origin} as the allowed origin of {}",
                    row.name
                ));
            }
        }
        if !fixed.is_empty() {
            // A fresh handle: the old one's config snapshot predates the fix.
            backends = backend_rows(&ctx.repo()?)?;
        }
    }

    let mut index = index_check(&repo, false)?;
    if args.fix && (index.refreshed > 0 || index.problem.is_some()) {
        index = index_check(&repo, true)?;
        fixed.push(format!("rebuilt the index ({} issues)", index.issues));
    }

    let now = reposix::time::now_secs();
    let mut mirrors = Vec::new();
    for spec in repo.backends()?.values() {
        let source = MirrorSource::backend(spec);
        if mirrors
            .iter()
            .any(|m: &MirrorCheck| m.slug == source.slug())
        {
            continue;
        }
        let Ok(lag) = mirror::lag(repo.store(), &source) else {
            continue;
        };
        let Some(last) = &lag.last else { continue };
        mirrors.push(MirrorCheck {
            slug: source.slug(),
            synced_at: reposix::time::format_secs(last.at),
            in_step: lag.in_step,
            warning: (lag.in_step != Some(true)).then(|| {
                format!(
                    "last synced {}; the local state is ahead: run `reposix mirror push`",
                    mirror::ago(now - last.at)
                )
            }),
        });
    }

    let problems = usize::from(git.problem.is_some())
        + usize::from(actor.problem.is_some())
        + backends
            .iter()
            .filter(|r| r.report.problem.is_some())
            .count()
        + usize::from(index.problem.is_some());
    let report = Report {
        git,
        actor,
        backends,
        index,
        mirrors,
        fixed,
        problems,
    };
    if problems > 0 {
        // One envelope: `ok: false` with the report as its data.
        ctx.out.text(|| text(&report, args.fix))?;
        let mut f = Failure::new(
            Exit::Invalid,
            "doctor",
            format!("doctor found {problems} problem(s)"),
        );
        if !args.fix {
            f = f.hint("see above; `reposix doctor --fix` repairs what is safe to repair");
        }
        return Err(f.data(&report));
    }
    ctx.out.done(&report, || text(&report, args.fix))
}

fn text(r: &Report, fix: bool) -> String {
    let mut s = String::new();
    let mark = |problem: &Option<String>| if problem.is_some() { "✗" } else { "✓" };
    match &r.git.version {
        Some(v) => s.push_str(&format!("✓ git {v}\n")),
        None => s.push_str(&format!(
            "✗ git: {}\n",
            r.git.problem.as_deref().unwrap_or("?")
        )),
    }
    match &r.actor.actor {
        Some(a) => s.push_str(&format!("✓ actor: {a}\n")),
        None => s.push_str(&format!(
            "✗ actor: {}\n",
            r.actor.problem.as_deref().unwrap_or("?")
        )),
    }
    if r.backends.is_empty() {
        s.push_str("· backends: none attached (reposix backend add NAME <kind>::<address>)\n");
    }
    for b in &r.backends {
        s.push_str(&format!(
            "{} backend {}\t{}\n",
            mark(&b.report.problem),
            b.name,
            b.report.spec
        ));
        s.push_str(&format!(
            "  kind: {}\n  origin: {} ({})\n",
            b.report.kind,
            b.report.origin,
            match (&b.recorded_origin, b.report.origin_allowed) {
                (Some(_), true) => "allowed, recorded by backend add",
                (None, true) => "allowed",
                (_, false) => "not allowed",
            }
        ));
        if let Some(f) = &b.report.token_form {
            s.push_str(&format!("  token form: {f}\n"));
        }
        s.push_str(&format!("  credentials: {}\n", b.report.credentials));
        match &b.report.problem {
            Some(p) => s.push_str(&format!("  problem: {p}\n")),
            None => s.push_str("  ok\n"),
        }
    }
    s.push_str(&format!(
        "{} index: {} issues, {} damaged, {} re-folded, {} ms\n",
        mark(&r.index.problem),
        r.index.issues,
        r.index.damaged,
        r.index.refreshed,
        r.index.millis
    ));
    if let Some(p) = &r.index.problem {
        s.push_str(&format!("  problem: {p}\n"));
    }
    for m in &r.mirrors {
        match &m.warning {
            None => s.push_str(&format!(
                "✓ mirror {}: in step (synced at {})\n",
                m.slug, m.synced_at
            )),
            Some(w) => s.push_str(&format!("! mirror {}: {w}\n", m.slug)),
        }
    }
    for f in &r.fixed {
        s.push_str(&format!("fixed: {f}\n"));
    }
    if fix && r.fixed.is_empty() {
        s.push_str("nothing to fix\n");
    }
    s
}
