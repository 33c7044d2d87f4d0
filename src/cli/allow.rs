//! Which origins the CLI lets HTTP reach: a tracker the user attached is a
//! tracker the user allowed.
//!
//! The allowlist is `REPOSIX_ALLOWED_ORIGINS` (default: loopback only),
//! plus every value of the git config key `reposix.allowedOrigins`, plus
//! the origin `reposix backend add` (and `init`/`attach`) recorded for each
//! attached backend under `reposix.backend.<name>.allowedOrigin`
//! (`backend list` shows it, `backend remove` drops it). Anything else is
//! refused before a byte is sent.

use reposix::repo::Repo;
use reposix::tracker::atlassian::origin_of;
use reposix::tracker::http::AllowList;
use reposix::tracker::{BackendKind, BackendSpec};

use super::{Exit, Failure};

/// The git config key users add origins to.
pub const CONFIG_KEY: &str = "reposix.allowedOrigins";

fn backend_key(name: &str) -> String {
    format!("reposix.backend.{name}.allowedOrigin")
}

/// The origin requests for `spec` go to (for Atlassian gateway routes
/// derived from a site: the site, from which the adapter derives the
/// gateway prefix itself).
pub fn origin_for(spec: &BackendSpec) -> String {
    match spec.kind {
        BackendKind::Github => origin_of(
            &std::env::var("REPOSIX_GITHUB_API")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| reposix::tracker::github::DEFAULT_API.to_owned()),
        ),
        BackendKind::Sim | BackendKind::Jira | BackendKind::Confluence => origin_of(&spec.address),
    }
}

fn git_config(repo: &Repo, args: &[&str]) -> Result<reposix::git::GitOutput, Failure> {
    let mut cmd = reposix::git::command(repo.store().git_dir());
    cmd.arg("config").args(args);
    reposix::git::run(cmd, std::time::Duration::from_secs(30), None).map_err(|e| {
        Failure::new(
            Exit::Failure,
            "io",
            format!("git config {}: {e:?}", args.join(" ")),
        )
    })
}

/// Record `spec`'s origin as allowed for backend `name`; returns it.
pub fn record(repo: &Repo, name: &str, spec: &BackendSpec) -> Result<String, Failure> {
    let origin = origin_for(spec);
    // Refuse what the allowlist could not parse, so a recorded value never
    // breaks later runs.
    AllowList::parse(&origin).map_err(|e| Failure::new(Exit::Invalid, "invalid", e.to_string()))?;
    let out = git_config(repo, &["--replace-all", &backend_key(name), &origin])?;
    if !out.status.success() {
        return Err(Failure::new(
            Exit::Failure,
            "io",
            format!("recording the origin of {name}: {}", out.stderr.trim()),
        ));
    }
    Ok(origin)
}

/// Drop what [`record`] wrote for `name` (nothing if there is none).
pub fn forget(repo: &Repo, name: &str) -> Result<(), Failure> {
    // Exit 5 means "no such key": nothing to drop.
    git_config(repo, &["--unset-all", &backend_key(name)])?;
    Ok(())
}

fn strings(repo: &Repo, key: &str) -> Vec<String> {
    repo.store()
        .repo()
        .config_snapshot()
        .strings(key)
        .unwrap_or_default()
        .iter()
        .map(|v| v.to_string())
        .collect()
}

/// The origin recorded for backend `name`, if any.
pub fn recorded(repo: &Repo, name: &str) -> Option<String> {
    strings(repo, &backend_key(name)).pop()
}

/// The allowlist for this repository (see the module header).
pub fn allowlist(repo: &Repo) -> Result<AllowList, Failure> {
    let bad = |e: reposix::tracker::BackendError| {
        Failure::new(Exit::Invalid, "invalid", e.to_string())
            .hint("fix the value (scheme://host[:port], comma-separated)")
    };
    let mut allow = AllowList::from_env().map_err(bad)?;
    for v in strings(repo, CONFIG_KEY) {
        allow.extend(&v, CONFIG_KEY).map_err(bad)?;
    }
    for name in repo.backends()?.keys() {
        for v in strings(repo, &backend_key(name)) {
            allow.extend(&v, &backend_key(name)).map_err(bad)?;
        }
    }
    Ok(allow)
}

/// The hint for a refused origin: the exact ways to allow it.
pub fn egress_hint(origin: &str) -> String {
    format!(
        "{origin} is not an attached tracker's origin; to allow it: \
         `git config --add {CONFIG_KEY} {origin}` (or REPOSIX_ALLOWED_ORIGINS={origin})"
    )
}
