//! The mirror: a plain-git markdown projection of the issues, for readers
//! who have nothing but git, and the push that keeps it current.
//!
//! # Files
//!
//! Per issue, `issues/<id>.md` (`pages/<id>.md` when the source of truth
//! is Confluence): YAML frontmatter, then the body and nothing else; and,
//! when it has comments, `comments/<id>.md`. A push replaces those two
//! directories on the mirror's branch and keeps every other path (a
//! README, `.github/workflows/`).
//!
//! - `<id>` is the tracker's id when the issue is bound to the mirrored
//!   backend (sim or GitHub number, JIRA key, Confluence page id: the names
//!   reposix 0.14 used), else the reposix issue id (a UUID). An id that is
//!   not a safe file name (`[A-Za-z0-9._-]`, not starting with `.`, at most
//!   128 bytes), or that two issues would share, falls back to the UUID.
//! - The frontmatter is readable by reposix 0.14 (`id`, `title`, `status`,
//!   `assignee`, `labels`, `created_at`, `updated_at`, `version`, plus
//!   `assignees` when there are several, and `reposix_id`).
//!
//! ```text
//! issues/1.md                          comments/1.md
//! ---                                  <!-- reposix:comments -->
//! id: 1                                <!-- reposix:comment 9c1d… -->
//! title: "Crash on start"              ### comment 9c1d0a2b3c4d by bob on 2026-04-13T00:05:00Z
//! status: "open"
//! assignee: "alice"                    Reproduced on 1.2
//! labels: ["bug"]
//! created_at: "2026-04-13T00:00:00Z"
//! updated_at: "2026-04-13T00:05:00Z"
//! version: 3
//! reposix_id: "0b6f…"
//! ---
//! It crashes when offline.
//! ```
//!
//! ## Why comments are a sibling file (writers through reposix 0.14)
//!
//! A reposix 0.14 user may clone the mirror and `git push` through 0.14's
//! bus, which writes the tracker. Its source fixes what it reads: the
//! records are exactly the paths `issues/<digits>.md` and
//! `pages/<digits>.md` (`record_id_from_path`; every other path is
//! ignored); the frontmatter is YAML whose unknown keys are ignored; **the
//! body is everything after the closing `---`**; and a record whose title,
//! status, assignee, labels or body (line endings and trailing whitespace
//! aside) differs from the tracker's is PATCHed with those fields. So:
//!
//! - nothing but the body may follow the frontmatter: anything there
//!   (comments, a marker line) would be sent to the tracker as body text,
//!   and come back on our next import as body text beside the comments it
//!   repeats;
//! - comments go to `comments/<id>.md`, outside both record directories,
//!   which 0.14 never reads whatever the file holds;
//! - the body is the tracker's body byte for byte: the merged body, plus
//!   our sync marker at its end where the tracker keeps it in the body
//!   (sim and GitHub, on the issues we created there). An untouched file
//!   then equals the tracker's record and 0.14 writes nothing; an edited
//!   one keeps the marker. Pattern C edits drop the marker before diffing.
//!
//! ## Same bytes on every host
//!
//! The files are a pure function of the issues' event sets: no clock, no
//! order of arrival. For a bound issue, what a host that writes and a host
//! that only imports would see differently comes from the tracker
//! ([`binding`]): `id`, `version` and `updated_at` from the newest
//! revision observed; `created_at` the tracker's; comments that are on the
//! tracker in the tracker's id order, with its author and time, then
//! comments not exported yet (local actor and time). Unbound issues use the
//! fold's times and `version` is the number of events. Comments show no
//! "edited" flag (hosts that imported only the last revision could not
//! tell). Until the fold records the tracker's `created_at`, [`binding`]
//! takes it from the earliest revision observed: a host whose first import
//! came after a tracker edit renders another `created_at`.
//!
//! ## Format guarantees
//!
//! - every frontmatter string is a double-quoted YAML scalar with escapes
//!   (newlines, quotes, control and line-separator characters), so no
//!   frontmatter value spans a line and no title or label can end the
//!   frontmatter or add a key; a body holding `---`, `version: 999` or
//!   `<script>` parses back byte for byte ([`parse`] inverts
//!   [`RenderedIssue::to_markdown`]);
//! - [`parse`] reads the frontmatter with a YAML parser (`serde-saphyr`:
//!   plain, quoted, flow and block values, comments; anchors bounded) so
//!   hand edits and 0.14 files read as YAML; every error names the file's
//!   line;
//! - a comments file starts with a marker line `<!-- reposix:comments -->`
//!   (`reposix-N` with the smallest N no line of any comment starts with),
//!   then each comment after a `<!-- <tag>:comment <id> -->` line, so
//!   [`parse_comments`] inverts [`comments_to_markdown`] whatever the text;
//! - [`write_files`] never follows a symlink to write or delete.
//!
//! # Push
//!
//! [`push_mirror`] builds the tree as git objects in the local repository
//! (no work tree, no index; no branch of the user's is read or moved,
//! though git refreshes the remote-tracking ref of a mirror that is a
//! configured remote, as any fetch does), commits it on top of the mirror
//! branch's tip (fetched first into `refs/reposix-mirror/<slug>/<branch>`)
//! unless the tree is unchanged, and pushes with `--force-with-lease` on
//! every ref it updates (never `+`), in one `--atomic` push (non-atomic if
//! the server cannot):
//!
//! - `refs/heads/<branch>` (default `main`): the mirror commit;
//! - `refs/mirrors/<slug>-head`: the same commit, i.e. the rendered SoT
//!   state the mirror reflects (it only moves when that state moves);
//! - `refs/mirrors/<slug>-synced-at`: an annotated tag, message
//!   `mirror synced from <slug>`, tagger date the sync time, pointing at a
//!   sync commit (same tree, parent the mirror commit, dated the sync time,
//!   subject `mirror synced from <slug>`), so that
//!   `git log -1 refs/mirrors/<slug>-synced-at` prints the sync time even
//!   when the content did not change.
//!
//! Only after the push succeeded are the same two `refs/mirrors/` refs
//! written locally: after a failure they still tell the last successful
//! sync, which is how the lag is recorded ([`staleness`] reads it). Every
//! bot commit carries a trailer (default `Reposix-Origin: <slug>`, key set
//! by `git config reposix.mirrorTrailer`); [`is_bot_commit`] recognises them
//! so they are never read as user edits. A lost lease (someone else moved a
//! ref meanwhile) is answered by starting over, a few times.
//!
//! After the push, the mirror's default branch: a mirror on this machine
//! (a path or `file://`) that is bare and whose `HEAD` names a branch that
//! does not exist (a fresh `git init --bare`, which clones empty) gets its
//! `HEAD` pointed at the pushed branch; a `HEAD` naming an existing branch
//! is the owner's choice and stays. Other mirrors cannot be told over git;
//! their `HEAD` is read back (`git ls-remote --symref`) and reported
//! ([`MirrorReport::default_branch`]; `None`: a clone checks out nothing).
//!
//! Configuration is git config: `reposix.mirror` (remote name, URL or path),
//! `reposix.mirrorBranch`, `reposix.mirrorTrailer`. Credentials come from a
//! credential helper or from `REPOSIX_MIRROR_TOKEN` (user
//! `REPOSIX_MIRROR_USER`, default `x-access-token`), handed to git by a
//! `GIT_ASKPASS` script in a private temporary directory that echoes the
//! variable: the secret is only ever in the child's environment, never in
//! argv, a URL or a file, and URLs carrying credentials are refused. Every
//! git process runs with a timeout, prompts disabled and `LC_ALL=C`; on
//! timeout or cancellation it is killed with its children. (A terminal's
//! interrupt reaches them directly: they stay in our process group.)
//!
//! A failure is classified from git's output ([`MirrorFailureReason`]),
//! with a message that has been through [`crate::git::redact::redact`] and has
//! the token masked.
//!
//! # Layout
//!
//! `markdown` (collect, render, parse, write to a directory) knows nothing
//! of remotes; `git` runs git (askpass, timeout, kill); `push` builds the
//! objects and pushes; `status` reads the refs back for staleness hints;
//! `edits` reads Pattern C edits of the files back as events.

use std::path::Path;

use serde::Serialize;

use crate::git::stderr::RemoteFailure;
use crate::store::StoreError;
use crate::tracker::{BackendKind, BackendSpec};

pub mod edits;
mod git;
mod markdown;
mod push;
mod status;

pub use git::Credential;
pub use markdown::{
    binding, collect, comments_to_markdown, parse, parse_comments, render, render_issue,
    write_files, Binding, MirrorIssue, RenderedComment, RenderedIssue, TrackerComment, WriteReport,
};
pub use push::{has_trailer, is_bot_commit, push_mirror, MirrorOptions, MirrorReport};
pub use status::{ago, lag, last_sync, staleness, staleness_at, LastSync, MirrorLag};

/// The directory of the comments files, beside `issues/` or `pages/`.
pub const COMMENTS_DIR: &str = "comments";
/// The mirror branch unless configured otherwise.
pub const DEFAULT_BRANCH: &str = "main";
/// The trailer key of bot commits unless configured otherwise.
pub const DEFAULT_TRAILER: &str = "Reposix-Origin";
/// Namespace of the two refs that tell what and when the mirror synced.
pub const MIRRORS_PREFIX: &str = "refs/mirrors/";
/// Private namespace holding what the mirror's branch was when last seen.
pub const PRIVATE_PREFIX: &str = "refs/reposix-mirror/";
/// Environment variable holding the mirror's token (password).
pub const TOKEN_ENV: &str = "REPOSIX_MIRROR_TOKEN";
/// Environment variable holding the user name sent with the token.
pub const USER_ENV: &str = "REPOSIX_MIRROR_USER";
/// The user name sent with a token when none is given (GitHub's).
pub const DEFAULT_USER: &str = "x-access-token";

/// Errors from rendering, parsing and pushing the mirror.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A markdown file does not parse.
    #[error("line {line}: {why}")]
    Markdown {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// No mirror given and none configured.
    #[error("no mirror: pass MIRROR or set `git config reposix.mirror <remote, URL or path>`")]
    NoMirror,
    /// The mirror is neither a configured remote, a URL nor a path.
    #[error("no mirror {name:?}: not a configured remote, a URL or a path")]
    UnknownMirror {
        /// The name (sanitized).
        name: String,
    },
    /// A URL with credentials in it.
    #[error(
        "{mirror}: credentials do not belong in a mirror URL: use a credential helper or {TOKEN_ENV}"
    )]
    CredentialsInUrl {
        /// The URL (sanitized).
        mirror: String,
    },
    /// An option that is not valid.
    #[error("{what} {value:?} is not valid: {why}")]
    Invalid {
        /// Which option.
        what: &'static str,
        /// Its value.
        value: String,
        /// Why.
        why: &'static str,
    },
    /// Reading the issues failed.
    #[error("{what}")]
    Store {
        /// What was being read.
        what: String,
        /// The store error.
        #[source]
        source: StoreError,
    },
    /// gix failed reading or writing objects or refs.
    #[error("{what}")]
    Git {
        /// What was being done.
        what: String,
        /// The gix error.
        #[source]
        source: gix::Error,
    },
    /// `git` could not be started.
    #[error("cannot run `git {command}`")]
    Spawn {
        /// The subcommand.
        command: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the mirror failed; `message` is sanitized.
    #[error("mirror push to {mirror} failed ({reason}): {message}")]
    Push {
        /// The mirror (sanitized).
        mirror: String,
        /// The classification.
        reason: MirrorFailureReason,
        /// git's message, sanitized and shortened.
        message: String,
    },
    /// The caller cancelled (the git process was killed).
    #[error("`git {command}` with {mirror} was interrupted (killed)")]
    Interrupted {
        /// The mirror (sanitized).
        mirror: String,
        /// The subcommand.
        command: &'static str,
    },
    /// Reading or writing a file.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl MirrorError {
    /// The failure class, for errors from talking to the mirror.
    pub fn reason(&self) -> Option<MirrorFailureReason> {
        match self {
            MirrorError::Push { reason, .. } => Some(*reason),
            MirrorError::Interrupted { .. } => Some(MirrorFailureReason::NetworkFailed),
            MirrorError::UnknownMirror { .. } => Some(MirrorFailureReason::RemoteNotFound),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MirrorError + '_ {
    move |source| MirrorError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn git_err(what: impl Into<String>) -> impl FnOnce(gix::Error) -> MirrorError {
    let what = what.into();
    move |source| MirrorError::Git { what, source }
}

fn md_err(line: usize, why: impl Into<String>) -> MirrorError {
    MirrorError::Markdown {
        line,
        why: why.into(),
    }
}

/// Why a mirror push failed, read from git's output. Best effort: anything
/// unrecognised is [`MirrorFailureReason::Unknown`], never a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorFailureReason {
    /// Credentials missing or refused.
    AuthFailed,
    /// The remote refused to update a protected branch or ref.
    ProtectedRefRejected,
    /// Could not connect (refused, DNS, unreachable, timed out).
    NetworkFailed,
    /// Connected (or a path), but no repository there.
    RemoteNotFound,
    /// The remote refused the update (a hook, a lease lost for good).
    PushRejected,
    /// Anything else.
    Unknown,
}

impl MirrorFailureReason {
    /// The snake_case name (`auth_failed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorFailureReason::AuthFailed => "auth_failed",
            MirrorFailureReason::ProtectedRefRejected => "protected_ref_rejected",
            MirrorFailureReason::NetworkFailed => "network_failed",
            MirrorFailureReason::RemoteNotFound => "remote_not_found",
            MirrorFailureReason::PushRejected => "push_rejected",
            MirrorFailureReason::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for MirrorFailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classify git's output of a failed mirror operation. `refused` says
/// whether the remote answered the push with per-ref rejections (then the
/// connection and the credentials were fine).
pub fn classify(text: &str, refused: bool) -> MirrorFailureReason {
    const PROTECTED: &[&str] = &[
        "protected branch",
        "protected ref",
        "protected tag",
        "branch is protected",
        "gh006",
        "cannot force-push to this protected",
    ];
    const REJECTED: &[&str] = &[
        "[rejected]",
        "[remote rejected]",
        "hook declined",
        "failed to push some refs",
        "non-fast-forward",
        "stale info",
        "atomic push failed",
    ];
    let lower = text.to_ascii_lowercase();
    if PROTECTED.iter().any(|p| lower.contains(p)) {
        return MirrorFailureReason::ProtectedRefRejected;
    }
    if refused {
        return MirrorFailureReason::PushRejected;
    }
    match crate::git::stderr::classify(text) {
        RemoteFailure::Auth => MirrorFailureReason::AuthFailed,
        RemoteFailure::NotFound => MirrorFailureReason::RemoteNotFound,
        RemoteFailure::Unreachable => MirrorFailureReason::NetworkFailed,
        RemoteFailure::Other if REJECTED.iter().any(|p| lower.contains(p)) => {
            MirrorFailureReason::PushRejected
        }
        RemoteFailure::Other => MirrorFailureReason::Unknown,
    }
}

/// What the mirror mirrors: a backend kind (the slug) and, when bound to a
/// configured tracker, its instance key (`<kind>::<address>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSource {
    /// The kind: names the `refs/mirrors/<slug>-…` refs and the layout.
    pub kind: BackendKind,
    /// The backend instance key; `None` renders every issue unbound.
    pub backend: Option<String>,
}

impl MirrorSource {
    /// The issues bound to this tracker.
    pub fn backend(spec: &BackendSpec) -> MirrorSource {
        MirrorSource {
            kind: spec.kind,
            backend: Some(spec.to_spec_string()),
        }
    }

    /// Every issue, unbound, under `kind`'s slug and layout.
    pub fn unbound(kind: BackendKind) -> MirrorSource {
        MirrorSource {
            kind,
            backend: None,
        }
    }

    /// The slug: `sim`, `github`, `jira` or `confluence`.
    pub fn slug(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// The directory a kind's files go to: `pages` for Confluence, else `issues`.
pub fn dir_for(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Confluence => "pages",
        _ => "issues",
    }
}

/// `refs/mirrors/<slug>-head`.
pub fn head_ref(slug: &str) -> String {
    format!("{MIRRORS_PREFIX}{slug}-head")
}

/// `refs/mirrors/<slug>-synced-at`.
pub fn synced_at_ref(slug: &str) -> String {
    format!("{MIRRORS_PREFIX}{slug}-synced-at")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_gits_messages_and_never_fails() {
        use MirrorFailureReason as R;
        let cases = [
            ("fatal: '/nope.git' does not appear to be a git repository\nfatal: Could not read from remote repository.", false, R::RemoteNotFound),
            ("fatal: Authentication failed for 'http://127.0.0.1:1/m.git/'", false, R::AuthFailed),
            ("fatal: unable to access 'http://127.0.0.1:9/': Failed to connect to 127.0.0.1 port 9: Connection refused", false, R::NetworkFailed),
            ("remote: error: GH006: Protected branch update failed for refs/heads/main.\n ! [remote rejected] main -> main (protected branch hook declined)", true, R::ProtectedRefRejected),
            ("remote: nope\n ! [remote rejected] main -> main (pre-receive hook declined)", true, R::PushRejected),
            ("error: failed to push some refs to 'x'", false, R::PushRejected),
            ("something nobody has seen before", false, R::Unknown),
            ("", false, R::Unknown),
        ];
        for (text, refused, want) in cases {
            assert_eq!(classify(text, refused), want, "{text}");
        }
    }
}
