//! Which remote a command talks to, and where what it last showed is kept.

use gix::bstr::ByteSlice;

use super::redact::redact;
use crate::store::GitEventStore;

/// Root of the remote-tracking namespace (one sub-namespace per remote).
pub const TRACKING_ROOT: &str = "refs/reposix-remotes/";

/// A resolved remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// What `git fetch`/`git push` get: the remote's name, or the URL/path.
    pub arg: String,
    /// For messages: `arg` with any credentials masked.
    pub display: String,
    /// Remote-tracking prefix, ending in `issues/`.
    pub tracking: String,
}

/// No remote of that name, and it is not a URL or a path either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no remote {name:?}: not a configured remote, a URL or a path")]
pub struct NoRemote {
    /// The name asked for, credentials masked.
    pub name: String,
}

/// Resolve the remote to sync with: `name` if given, else the current
/// branch's remote, else `origin`. A configured remote gets the tracking
/// namespace `refs/reposix-remotes/<name>/issues/`; a URL or path one named
/// by a hash of its credential-free form.
pub fn resolve_remote(store: &GitEventStore, name: Option<&str>) -> Result<Remote, NoRemote> {
    let repo = store.repo();
    let name = match name {
        Some(n) => n.to_owned(),
        None => default_remote(&repo),
    };
    let configured = repo.remote_names().iter().any(|n| n.as_bstr() == name);
    let display = redact(&name);
    if configured {
        let tracking = format!("{TRACKING_ROOT}{name}/issues/");
        if gix::refs::FullName::try_from(format!("{tracking}x").as_str()).is_ok() {
            return Ok(Remote {
                arg: name,
                display,
                tracking,
            });
        }
    } else if !(name.contains([':', '/', '\\']) || store.work_dir().join(&name).exists()) {
        return Err(NoRemote { name: display });
    }
    let hash = blake3::hash(display.as_bytes()).to_hex();
    Ok(Remote {
        tracking: format!("{TRACKING_ROOT}url-{}/issues/", &hash[..16]),
        arg: name,
        display,
    })
}

fn default_remote(repo: &gix::Repository) -> String {
    let branch = repo.head_name().ok().flatten();
    branch
        .as_ref()
        .and_then(|b| {
            let short = b.shorten();
            repo.branch_remote_name(short, gix::remote::Direction::Fetch)
                .map(|n| n.as_bstr().to_str_lossy().into_owned())
        })
        .unwrap_or_else(|| "origin".to_owned())
}
