//! The trackers attached to a repository: their specs
//! (`.git/reposix/backends`), the origins HTTP may reach, and the identity
//! map between local names and tracker accounts.
//!
//! The allowlist is `REPOSIX_ALLOWED_ORIGINS` (default: loopback only),
//! plus every value of the git config key [`ALLOWED_ORIGINS_KEY`], plus
//! the origin recorded for each attached tracker under
//! `reposix.backend.<name>.allowedOrigin` by [`Repo::attach`] (a tracker
//! the user attached is a tracker the user allowed). Anything else is
//! refused before a byte is sent.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Repo, RepoError};
use crate::event::check_name;
use crate::tracker::http::AllowList;
use crate::tracker::{identity, BackendError, BackendSpec, IdentityMap};

/// The git config key users add allowed origins to.
pub const ALLOWED_ORIGINS_KEY: &str = "reposix.allowedOrigins";

/// The git config key holding the origin recorded for tracker `name`.
pub fn origin_key(name: &str) -> String {
    format!("reposix.backend.{name}.allowedOrigin")
}

/// A configuration value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {source}")]
pub struct ConfigError {
    /// Where the value came from (a git config key or an environment
    /// variable).
    pub key: String,
    /// What is wrong with it.
    #[source]
    pub source: BackendError,
}

impl Repo {
    /// Configured tracker backends: name -> spec (`.git/reposix/backends`,
    /// one `NAME SPEC` per line; local configuration like git remotes).
    pub fn backends(&self) -> Result<BTreeMap<String, BackendSpec>, RepoError> {
        self.read_pairs("backends", |name, spec| {
            Ok((
                name.to_owned(),
                BackendSpec::parse(spec).map_err(|e| e.to_string())?,
            ))
        })
    }

    /// Add (or replace) a backend.
    pub fn add_backend(&self, name: &str, spec: &BackendSpec) -> Result<(), RepoError> {
        check_name("backend name", name)?;
        let mut all = self.backends()?;
        all.insert(name.to_owned(), spec.clone());
        self.write_backends(&all)
    }

    /// Remove a backend; false if there was none by that name.
    pub fn remove_backend(&self, name: &str) -> Result<bool, RepoError> {
        let mut all = self.backends()?;
        let had = all.remove(name).is_some();
        self.write_backends(&all)?;
        Ok(had)
    }

    fn write_backends(&self, all: &BTreeMap<String, BackendSpec>) -> Result<(), RepoError> {
        let text: String = all
            .iter()
            .map(|(n, s)| format!("{n} {}\n", s.to_spec_string()))
            .collect();
        self.write_file("backends", &text)
    }

    /// Attach `spec` as `name` and allow its origin (recorded in git
    /// config); returns the origin.
    pub fn attach(&self, name: &str, spec: &BackendSpec) -> Result<String, RepoError> {
        self.add_backend(name, spec)?;
        self.record_origin(name, spec)
    }

    /// Detach tracker `name` and forget its origin; false if there was
    /// none by that name. Its events stay in the logs.
    pub fn detach(&self, name: &str) -> Result<bool, RepoError> {
        let removed = self.remove_backend(name)?;
        // `git config --unset-all` exits 5 when there is no such key:
        // nothing to drop, not an error.
        self.git_config(&["--unset-all", &origin_key(name)])?;
        Ok(removed)
    }

    /// Record `spec`'s origin as allowed for tracker `name`; returns it.
    pub fn record_origin(&self, name: &str, spec: &BackendSpec) -> Result<String, RepoError> {
        let origin = spec.origin();
        // Refuse what the allowlist could not parse, so a recorded value
        // never breaks later runs.
        AllowList::parse(&origin).map_err(|e| RepoError::Rejected(e.to_string()))?;
        let out = self.git_config(&["--replace-all", &origin_key(name), &origin])?;
        if !out.status.success() {
            return Err(RepoError::Io {
                path: "git config".into(),
                source: std::io::Error::other(format!(
                    "recording the origin of {name}: {}",
                    out.stderr.trim()
                )),
            });
        }
        Ok(origin)
    }

    /// The origin recorded for tracker `name`, if any.
    pub fn recorded_origin(&self, name: &str) -> Option<String> {
        self.config_strings(&origin_key(name)).pop()
    }

    /// The origins HTTP may reach from this repository (see the module
    /// header).
    pub fn allowlist(&self) -> Result<AllowList, RepoError> {
        let bad = |key: &str| {
            let key = key.to_owned();
            move |source| RepoError::Config(ConfigError { key, source })
        };
        let mut allow = AllowList::from_env().map_err(bad("REPOSIX_ALLOWED_ORIGINS"))?;
        for v in self.config_strings(ALLOWED_ORIGINS_KEY) {
            allow
                .extend(&v, ALLOWED_ORIGINS_KEY)
                .map_err(bad(ALLOWED_ORIGINS_KEY))?;
        }
        for name in self.backends()?.keys() {
            let key = origin_key(name);
            for v in self.config_strings(&key) {
                allow.extend(&v, &key).map_err(bad(&key))?;
            }
        }
        Ok(allow)
    }

    /// Local names <-> tracker accounts, from the git config key
    /// `reposix.identity`.
    pub fn identity_map(&self) -> Result<IdentityMap, RepoError> {
        let entries = self.config_strings(identity::CONFIG_KEY);
        IdentityMap::from_entries(entries.iter().map(String::as_str)).map_err(|source| {
            RepoError::Config(ConfigError {
                key: identity::CONFIG_KEY.to_owned(),
                source,
            })
        })
    }

    /// Every value of a multi-valued git config key (none if unset).
    pub fn config_strings(&self, key: &str) -> Vec<String> {
        self.store
            .repo()
            .config_snapshot()
            .strings(key)
            .unwrap_or_default()
            .iter()
            .map(|v| v.to_string())
            .collect()
    }

    /// The last value of a git config key, if set.
    pub fn config_string(&self, key: &str) -> Option<String> {
        self.store
            .repo()
            .config_snapshot()
            .string(key)
            .map(|v| v.to_string())
    }

    fn git_config(&self, args: &[&str]) -> Result<crate::git::GitOutput, RepoError> {
        let mut cmd = crate::git::command(self.store.git_dir());
        cmd.arg("config").args(args);
        crate::git::run(cmd, Duration::from_secs(30), None).map_err(|e| RepoError::Io {
            path: "git config".into(),
            source: std::io::Error::other(format!(
                "git config {}: {}",
                args.join(" "),
                crate::error_chain(&e)
            )),
        })
    }
}
