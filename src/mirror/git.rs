//! Running git against the mirror: no prompts, `LC_ALL=C`, a timeout, a
//! cancel flag, the credential through `GIT_ASKPASS` and the child's
//! environment only, and the process killed with its children when it
//! times out, is cancelled or is dropped unfinished.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::{
    classify, io_err, MirrorError, MirrorFailureReason, DEFAULT_USER, TOKEN_ENV, USER_ENV,
};
use crate::git::redact::redact as sanitize;
pub(super) use crate::git::GitOutput;
use crate::git::{self, RunError};
use crate::store::Oid;

/// A token for the mirror, handed to git through `GIT_ASKPASS` and the
/// child's environment only.
#[derive(Clone)]
pub struct Credential {
    /// The user name sent with the token.
    pub user: String,
    token: String,
}

impl Credential {
    /// A credential.
    pub fn new(user: impl Into<String>, token: impl Into<String>) -> Credential {
        Credential {
            user: user.into(),
            token: token.into(),
        }
    }

    /// From [`TOKEN_ENV`] (and [`USER_ENV`], default [`DEFAULT_USER`]), if set.
    pub fn from_env() -> Option<Credential> {
        let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())?;
        let user = std::env::var(USER_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_USER.to_owned());
        Some(Credential { user, token })
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}, ***)", self.user)
    }
}

/// A `GIT_ASKPASS` script in a private directory, removed on drop. It
/// holds no secret: it echoes the environment variables.
pub(super) struct Askpass {
    dir: PathBuf,
    /// The script.
    pub script: PathBuf,
}

impl Askpass {
    pub(super) fn create() -> Result<Askpass, MirrorError> {
        let dir = std::env::temp_dir().join(format!(
            "reposix-askpass-{}-{:016x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(io_err(&dir))?;
        let script = dir.join("askpass");
        let text = format!(
            "#!/bin/sh\n# reposix: answers git's credential prompts from the environment.\n\
             case \"$1\" in\n\
             [Uu]sername*) printf '%s\\n' \"${{{USER_ENV}:-{DEFAULT_USER}}}\" ;;\n\
             *) printf '%s\\n' \"${TOKEN_ENV}\" ;;\n\
             esac\n"
        );
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(0o700);
        }
        let written = open.open(&script).and_then(|mut f| {
            use std::io::Write;
            f.write_all(text.as_bytes())
        });
        let askpass = Askpass { dir, script };
        written.map_err(io_err(&askpass.script))?;
        Ok(askpass)
    }
}

impl Drop for Askpass {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// git against one mirror.
pub(super) struct Git<'a> {
    /// The local repository's git directory.
    pub git_dir: &'a Path,
    /// Limit for each invocation.
    pub timeout: Duration,
    /// Set: kill the running invocation.
    pub cancel: Option<&'a AtomicBool>,
    /// Handed to the askpass script through the environment.
    pub credential: Option<&'a Credential>,
    /// The askpass script (when there is a credential).
    pub askpass: Option<&'a Path>,
    /// The mirror as messages show it.
    pub display: &'a str,
}

impl Git<'_> {
    fn clean(&self, text: &str) -> String {
        let mut text = sanitize(text);
        if let Some(c) = &self.credential {
            if !c.token.is_empty() {
                text = text.replace(&c.token, "***");
            }
        }
        text
    }

    pub(super) fn failure(&self, text: &str, refused: bool) -> MirrorError {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        // The last lines, and git's first `error:`/`fatal:` lines, which
        // name the cause (a lock file, a missing repository) when a long
        // tail of per-ref rejections follows them.
        let tail = lines.len().saturating_sub(8);
        let is_error = |l: &str| {
            let l = l.strip_prefix("remote:").map_or(l, str::trim_start);
            l.starts_with("error:") || l.starts_with("fatal:")
        };
        let causes: Vec<usize> = (0..tail).filter(|i| is_error(lines[*i])).take(2).collect();
        let message = causes
            .into_iter()
            .chain(tail..lines.len())
            .map(|i| lines[i])
            .collect::<Vec<_>>()
            .join("; ");
        MirrorError::Push {
            mirror: self.display.to_owned(),
            reason: classify(text, refused),
            message: if message.is_empty() {
                "no message".into()
            } else {
                self.clean(&message)
            },
        }
    }

    /// Run `git <command> <args>`: no prompts, `LC_ALL=C`, stdin closed, a
    /// timeout; killed with its children on timeout or cancellation.
    pub(super) fn run(
        &self,
        command: &'static str,
        args: &[OsString],
    ) -> Result<GitOutput, MirrorError> {
        self.run_in(self.git_dir, command, args)
    }

    /// [`Git::run`] in another repository (a mirror on this machine).
    pub(super) fn run_in(
        &self,
        git_dir: &Path,
        command: &'static str,
        args: &[OsString],
    ) -> Result<GitOutput, MirrorError> {
        let mut cmd = git::command(git_dir);
        cmd.arg(command).args(args);
        if let Some(script) = self.askpass {
            cmd.env("GIT_ASKPASS", script);
        }
        if let Some(c) = &self.credential {
            cmd.env(TOKEN_ENV, &c.token).env(USER_ENV, &c.user);
        }
        git::run(cmd, self.timeout, self.cancel).map_err(|e| match e {
            RunError::Spawn(source) => MirrorError::Spawn { command, source },
            RunError::Cancelled => MirrorError::Interrupted {
                mirror: self.display.to_owned(),
                command,
            },
            RunError::TimedOut => MirrorError::Push {
                mirror: self.display.to_owned(),
                reason: MirrorFailureReason::NetworkFailed,
                message: format!(
                    "`git {command}` did not finish within {} s and was killed",
                    self.timeout.as_secs_f64()
                ),
            },
        })
    }

    /// The values of `refs` on the mirror (absent ones are left out).
    pub(super) fn ls_remote(
        &self,
        remote: &str,
        refs: &[&str],
    ) -> Result<BTreeMap<String, Oid>, MirrorError> {
        let mut args: Vec<OsString> = vec!["--refs".into(), remote.into()];
        args.extend(refs.iter().map(OsString::from));
        let out = self.run("ls-remote", &args)?;
        if !out.status.success() {
            return Err(self.failure(&out.stderr, false));
        }
        let mut found = BTreeMap::new();
        for line in out.stdout.lines() {
            let Some((oid, name)) = line.split_once('\t') else {
                continue;
            };
            if refs.contains(&name) {
                if let Ok(oid) = Oid::from_hex(oid.as_bytes()) {
                    found.insert(name.to_owned(), oid);
                }
            }
        }
        Ok(found)
    }

    /// The branch the mirror's `HEAD` names, when the mirror says (it
    /// does not while that branch does not exist).
    pub(super) fn remote_head(&self, remote: &str) -> Result<Option<String>, MirrorError> {
        let args: Vec<OsString> = vec!["--symref".into(), remote.into(), "HEAD".into()];
        let out = self.run("ls-remote", &args)?;
        if !out.status.success() {
            return Err(self.failure(&out.stderr, false));
        }
        Ok(out.stdout.lines().find_map(|l| {
            l.strip_prefix("ref: ")?
                .strip_suffix("\tHEAD")?
                .strip_prefix("refs/heads/")
                .map(str::to_owned)
        }))
    }

    pub(super) fn fetch(&self, remote: &str, refspec: &str) -> Result<(), MirrorError> {
        let args: Vec<OsString> = crate::git::FETCH_FLAGS
            .iter()
            .chain(&["--no-auto-maintenance", remote, refspec])
            .map(OsString::from)
            .collect();
        let out = self.run("fetch", &args)?;
        if !out.status.success() {
            return Err(self.failure(&out.stderr, false));
        }
        Ok(())
    }
}
