//! Which origins the CLI lets HTTP reach: the library's allowlist
//! (`reposix::repo::trackers`), with failures as CLI failures and the hint
//! a refused origin gets.

use reposix::repo::trackers::ALLOWED_ORIGINS_KEY;
use reposix::repo::Repo;
use reposix::tracker::http::AllowList;
use reposix::tracker::BackendSpec;

use super::Failure;

/// Record `spec`'s origin as allowed for backend `name`; returns it.
pub fn record(repo: &Repo, name: &str, spec: &BackendSpec) -> Result<String, Failure> {
    Ok(repo.record_origin(name, spec)?)
}

/// The origin recorded for backend `name`, if any.
pub fn recorded(repo: &Repo, name: &str) -> Option<String> {
    repo.recorded_origin(name)
}

/// The allowlist for this repository.
pub fn allowlist(repo: &Repo) -> Result<AllowList, Failure> {
    Ok(repo.allowlist()?)
}

/// The hint for a refused origin: the exact ways to allow it.
pub fn egress_hint(origin: &str) -> String {
    format!(
        "{origin} is not an attached tracker's origin; to allow it: \
         `git config --add {ALLOWED_ORIGINS_KEY} {origin}` (or REPOSIX_ALLOWED_ORIGINS={origin})"
    )
}
