//! The mirror: a plain-git markdown projection of the issues, for readers
//! who have nothing but git, and the push that keeps it current.
//!
//! # Files
//!
//! One file per issue, `issues/<id>.md` (`pages/<id>.md` when the source of
//! truth is Confluence). A push replaces that directory on the mirror's
//! branch and keeps every other path (a README, `.github/workflows/`).
//!
//! - `<id>` is the tracker's id when the issue is bound to the mirrored
//!   backend (sim or GitHub number, JIRA key, Confluence page id: the names
//!   reposix 0.14 used), else the reposix issue id (a UUID). An id that is
//!   not a safe file name (`[A-Za-z0-9._-]`, not starting with `.`, at most
//!   128 bytes), or that two issues would share, falls back to the UUID.
//! - `version` is the tracker's revision in the newest observation of the
//!   issue when bound (sim and Confluence version numbers; GitHub and JIRA
//!   `updated_at` in ms), else the number of events in the issue's log.
//!
//! A file is YAML frontmatter readable by reposix 0.14 (`id`, `title`,
//! `status`, `assignee`, `labels`, `created_at`, `updated_at`, `version`,
//! plus `assignees` when there are several, `reposix_id`, and
//! `comments_marker` when needed), the body verbatim, then the comments:
//!
//! ```text
//! ---
//! id: 1
//! title: "Crash on start"
//! status: "open"
//! assignee: "alice"
//! labels: ["bug"]
//! created_at: "2026-04-13T00:00:00Z"
//! updated_at: "2026-04-13T00:05:00Z"
//! version: 3
//! reposix_id: "0b6f…"
//! ---
//! It crashes when offline.
//!
//! <!-- reposix:comments -->
//! <!-- reposix:comment 9c1d… -->
//! ### comment 9c1d0a2b3c4d by bob on 2026-04-13T00:05:00Z
//!
//! Reproduced on 1.2
//! ```
//!
//! Guarantees:
//! - deterministic: the same states give the same bytes (timestamps are
//!   RFC 3339 seconds from the states' ms fields, nothing reads a clock);
//! - every frontmatter string is a double-quoted YAML scalar with escapes
//!   (newlines, quotes, control and line-separator characters), so no
//!   frontmatter value spans a line and no title or label can end the
//!   frontmatter or add a key; the body follows the closing `---` verbatim;
//! - the comments section starts at a marker line that no line of the body
//!   or of any comment starts with: `<!-- reposix:` normally, else
//!   `<!-- reposix-N:` with the smallest such N, named in `comments_marker`;
//!   so a body holding `---`, `version: 999`, `<script>` or the marker
//!   itself parses back byte for byte ([`parse`] inverts [`render`]).
//!
//! # Push
//!
//! [`push_mirror`] builds the tree as git objects in the local repository
//! (no work tree, no index, no branch of the user's is read or moved),
//! commits it on top of the mirror branch's tip (fetched first into
//! `refs/reposix-mirror/<slug>/<branch>`) unless the tree is unchanged, and
//! pushes with `--force-with-lease` on every ref it updates (never `+`), in
//! one `--atomic` push:
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
//! with a message that has been through [`crate::sync::sanitize`] and has
//! the token masked.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use serde::Serialize;

use crate::backend::{BackendKind, BackendSpec};
use crate::crdt::{EventSet, IssueState};
use crate::event::{Op, Status};
use crate::store::{EventStore, GitEventStore, Oid, StoreError};
use crate::sync::{parse_porcelain, sanitize, PushStatus, RemoteFailure};
use crate::timestamp;

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

const TAG: &str = "reposix";
const MAX_NAME: usize = 128;

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
    match crate::sync::classify(text) {
        RemoteFailure::Auth => MirrorFailureReason::AuthFailed,
        RemoteFailure::NotFound => MirrorFailureReason::RemoteNotFound,
        RemoteFailure::Unreachable => MirrorFailureReason::NetworkFailed,
        RemoteFailure::Other if REJECTED.iter().any(|p| lower.contains(p)) => {
            MirrorFailureReason::PushRejected
        }
        RemoteFailure::Other => MirrorFailureReason::Unknown,
    }
}

// ---------------------------------------------------------------------------
// What is rendered

/// An issue's binding to the mirrored backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The tracker's id.
    pub remote_id: String,
    /// The tracker's revision in the newest observation (`None`: bound but
    /// not observed yet).
    pub revision: Option<u64>,
}

/// One issue to render: its folded state and its binding, if any.
#[derive(Debug, Clone)]
pub struct MirrorIssue {
    /// The folded state.
    pub state: IssueState,
    /// The binding to the mirrored backend.
    pub binding: Option<Binding>,
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

/// The binding of an event set to the backend `key`: the remote id of its
/// newest observation (or of a `bind` when never observed) and that
/// observation's revision.
pub fn binding(set: &EventSet, key: &str) -> Option<Binding> {
    let mut newest: Option<(u64, &str)> = None;
    let mut bound: Option<&str> = None;
    for (_, e) in set.iter() {
        match &e.op {
            Op::Observe {
                backend,
                remote_id,
                revision,
                ..
            } if backend == key => {
                let cand = (*revision, remote_id.as_str());
                if newest.is_none_or(|n| cand > n) {
                    newest = Some(cand);
                }
            }
            Op::Bind {
                backend,
                remote_id: Some(r),
            } if backend == key => {
                if bound.is_none_or(|b| r.as_str() < b) {
                    bound = Some(r);
                }
            }
            _ => {}
        }
    }
    match (newest, bound) {
        (Some((revision, id)), _) => Some(Binding {
            remote_id: id.to_owned(),
            revision: Some(revision),
        }),
        (None, Some(id)) => Some(Binding {
            remote_id: id.to_owned(),
            revision: None,
        }),
        (None, None) => None,
    }
}

/// Load and fold the issues the mirror shows: with a backend, those bound
/// to it; without, all of them. Any issue that does not load fails the
/// whole collection (a mirror rendered without it would delete its file).
pub fn collect(
    store: &GitEventStore,
    source: &MirrorSource,
) -> Result<Vec<MirrorIssue>, MirrorError> {
    let refs = store.list_refs().map_err(|source| MirrorError::Store {
        what: "listing issue refs".into(),
        source,
    })?;
    let mut out = Vec::new();
    for r in refs {
        let Some(issue) = r.issue else { continue };
        let log = store.load(issue).map_err(|source| MirrorError::Store {
            what: format!("loading issue {issue} for the mirror"),
            source,
        })?;
        let binding = match &source.backend {
            Some(key) => match binding(&log.events, key) {
                Some(b) => Some(b),
                None => continue,
            },
            None => None,
        };
        let state = log
            .events
            .fold(issue)
            .map_err(|source| MirrorError::Store {
                what: format!("folding issue {issue} for the mirror"),
                source: StoreError::Fold {
                    refname: log.refname.clone(),
                    source,
                },
            })?;
        out.push(MirrorIssue { state, binding });
    }
    Ok(out)
}

/// One comment as rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedComment {
    /// The comment's id (its event id, hex).
    pub id: String,
    /// Author (an actor name: no spaces or line breaks).
    pub author: String,
    /// When it was added, RFC 3339.
    pub created_at: String,
    /// Whether an edit replaced the original text.
    pub edited: bool,
    /// The text, verbatim.
    pub body: String,
}

/// One issue file: what [`render`] writes and [`parse`] reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedIssue {
    /// The tracker's id when bound, else the reposix issue id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Status.
    pub status: Status,
    /// Assignees (the frontmatter's `assignee` is the first).
    pub assignees: Vec<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Creation time, RFC 3339 (empty when a hand-written file has none).
    pub created_at: String,
    /// Last update, RFC 3339 (empty when a hand-written file has none).
    pub updated_at: String,
    /// Tracker revision when bound, else the number of events.
    pub version: u64,
    /// The reposix issue id, when known.
    pub reposix_id: Option<String>,
    /// Body, verbatim.
    pub body: String,
    /// Live comments, in the state's order.
    pub comments: Vec<RenderedComment>,
}

fn rfc3339_ms(ms: i64) -> String {
    timestamp::format_secs(ms.div_euclid(1000))
}

impl RenderedIssue {
    /// The rendering of one issue.
    pub fn from_issue(issue: &MirrorIssue) -> RenderedIssue {
        let s = &issue.state;
        RenderedIssue {
            id: issue
                .binding
                .as_ref()
                .map_or_else(|| s.id.to_string(), |b| b.remote_id.clone()),
            title: s.title.clone(),
            status: s.status,
            assignees: s.assignees.clone(),
            labels: s.labels.clone(),
            created_at: rfc3339_ms(s.created_ms),
            updated_at: rfc3339_ms(s.updated_ms),
            version: issue
                .binding
                .as_ref()
                .and_then(|b| b.revision)
                .unwrap_or(s.event_count as u64),
            reposix_id: Some(s.id.to_string()),
            body: s.body.clone(),
            comments: s
                .comments
                .iter()
                .map(|c| RenderedComment {
                    id: c.id.to_hex(),
                    author: c.author.to_string(),
                    created_at: rfc3339_ms(c.created_ms),
                    edited: c.edited,
                    body: c.body.clone(),
                })
                .collect(),
        }
    }

    /// The file's bytes.
    pub fn to_markdown(&self) -> String {
        let tag = pick_tag(self);
        let mut out = String::with_capacity(self.body.len() + 512);
        out.push_str("---\n");
        out.push_str("id: ");
        if is_canonical_decimal(&self.id) {
            out.push_str(&self.id);
        } else {
            out.push_str(&quote(&self.id));
        }
        out.push('\n');
        push_kv(&mut out, "title", &quote(&self.title));
        push_kv(&mut out, "status", &quote(self.status.as_str()));
        if let Some(first) = self.assignees.first() {
            push_kv(&mut out, "assignee", &quote(first));
        }
        if self.assignees.len() > 1 {
            push_kv(&mut out, "assignees", &quote_list(&self.assignees));
        }
        push_kv(&mut out, "labels", &quote_list(&self.labels));
        push_kv(&mut out, "created_at", &quote(&self.created_at));
        push_kv(&mut out, "updated_at", &quote(&self.updated_at));
        push_kv(&mut out, "version", &self.version.to_string());
        if let Some(r) = &self.reposix_id {
            push_kv(&mut out, "reposix_id", &quote(r));
        }
        if tag != TAG {
            push_kv(&mut out, "comments_marker", &quote(&tag));
        }
        out.push_str("---\n");
        out.push_str(&self.body);
        out.push('\n');
        out.push_str(&format!("<!-- {tag}:comments -->\n"));
        for c in &self.comments {
            let short: String = c.id.chars().take(12).collect();
            // Authors are actor names; a line break would end the heading.
            let author = c.author.replace(['\n', '\r'], " ");
            out.push_str(&format!("<!-- {tag}:comment {} -->\n", c.id));
            out.push_str(&format!(
                "### comment {short} by {author} on {}{}\n\n",
                c.created_at,
                if c.edited { " (edited)" } else { "" }
            ));
            out.push_str(&c.body);
            out.push('\n');
        }
        out
    }
}

fn push_kv(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

fn is_canonical_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 19
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
}

/// The smallest marker tag no line of the body or comments starts with.
fn pick_tag(issue: &RenderedIssue) -> String {
    let texts: Vec<&str> = std::iter::once(issue.body.as_str())
        .chain(issue.comments.iter().map(|c| c.body.as_str()))
        .collect();
    (0u64..)
        .map(|n| {
            if n == 0 {
                TAG.to_owned()
            } else {
                format!("{TAG}-{n}")
            }
        })
        .find(|tag| {
            let prefix = format!("<!-- {tag}:");
            !texts
                .iter()
                .any(|t| t.split('\n').any(|l| l.starts_with(&prefix)))
        })
        .expect("BUG: finitely many lines cannot use every marker tag")
}

/// A YAML double-quoted scalar: one line, whatever `s` holds.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // Line and paragraph separators, BOM, non-characters: not
            // printable in YAML, or line breaks to some readers.
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn safe_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NAME
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Render issues as files: path (`issues/<id>.md` or `pages/<id>.md`) to
/// bytes. Deterministic; see the module docs for names and format.
pub fn render(issues: &[MirrorIssue], kind: BackendKind) -> BTreeMap<String, Vec<u8>> {
    let dir = dir_for(kind);
    let rendered: Vec<RenderedIssue> = issues.iter().map(RenderedIssue::from_issue).collect();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rendered {
        *uses.entry(r.id.as_str()).or_default() += 1;
    }
    let mut out = BTreeMap::new();
    for (r, issue) in rendered.iter().zip(issues) {
        let name = if safe_name(&r.id) && uses[r.id.as_str()] == 1 {
            r.id.clone()
        } else {
            issue.state.id.to_string()
        };
        out.insert(format!("{dir}/{name}.md"), r.to_markdown().into_bytes());
    }
    out
}

// ---------------------------------------------------------------------------
// Parsing

#[derive(Debug)]
enum Value {
    Null,
    Str(String),
    Seq(Vec<String>),
}

/// Parse an issue file (the inverse of [`RenderedIssue::to_markdown`];
/// also reads reposix 0.14 files and hand edits using plain scalars and
/// block sequences). Unknown frontmatter keys are ignored.
pub fn parse(bytes: &[u8]) -> Result<RenderedIssue, MirrorError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| md_err(1, format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end_matches(['\n', '\r']) != "---" || !first.ends_with('\n') {
        return Err(md_err(1, "no frontmatter: the file must start with a `---` line"));
    }
    let mut offset = first.len();
    let mut fm: Vec<(usize, &str)> = Vec::new();
    let mut closed = false;
    for (n, line) in lines.enumerate() {
        offset += line.len();
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" {
            closed = true;
            break;
        }
        fm.push((n + 2, bare));
    }
    if !closed {
        return Err(md_err(1, "frontmatter has no closing `---` line"));
    }
    let fields = parse_frontmatter(&fm)?;
    let rest = &text[offset..];
    let rest_line = text[..offset].matches('\n').count() + 1;
    build(fields, rest, rest_line)
}

fn parse_frontmatter(lines: &[(usize, &str)]) -> Result<BTreeMap<String, Value>, MirrorError> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let mut open_seq: Option<String> = None;
    for &(n, line) in lines {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(item) = trimmed.strip_prefix("- ").or(if trimmed == "-" {
            Some("")
        } else {
            None
        }) {
            let Some(key) = &open_seq else {
                return Err(md_err(n, "a list item outside a list"));
            };
            let v = scalar(item.trim(), n)?;
            let Some(Value::Seq(items)) = out.get_mut(key) else {
                unreachable!("BUG: an open sequence is a sequence");
            };
            items.push(match v {
                Value::Str(s) => s,
                Value::Null => String::new(),
                Value::Seq(_) => return Err(md_err(n, "nested lists are not supported")),
            });
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(md_err(n, "unsupported YAML: an indented line"));
        }
        let Some((key, raw)) = line.split_once(':') else {
            return Err(md_err(n, "expected `key: value`"));
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(md_err(n, format!("invalid key {key:?}")));
        }
        if !raw.is_empty() && !raw.starts_with([' ', '\t']) {
            return Err(md_err(n, "expected a space after `:`"));
        }
        if out.contains_key(key) {
            return Err(md_err(n, format!("duplicate key {key:?}")));
        }
        let raw = raw.trim();
        open_seq = None;
        let value = if raw.is_empty() {
            open_seq = Some(key.to_owned());
            Value::Seq(Vec::new())
        } else {
            scalar(raw, n)?
        };
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// One value: double- or single-quoted, a flow sequence, or plain; only
/// whitespace or a comment may follow it.
fn scalar(raw: &str, line: usize) -> Result<Value, MirrorError> {
    let (value, rest) = match raw.chars().next() {
        None => return Ok(Value::Null),
        Some('"') => {
            let (s, rest) = double_quoted(&raw[1..], line)?;
            (Value::Str(s), rest)
        }
        Some('\'') => {
            let (s, rest) = single_quoted(&raw[1..], line)?;
            (Value::Str(s), rest)
        }
        Some('[') => {
            let (items, rest) = flow_seq(&raw[1..], line)?;
            (Value::Seq(items), rest)
        }
        Some(c) if "{|>&*!%@`".contains(c) => {
            return Err(md_err(line, format!("unsupported YAML value starting with {c:?}")));
        }
        Some(_) => {
            let end = raw.find(" #").or_else(|| raw.find("\t#"));
            let plain = raw[..end.unwrap_or(raw.len())].trim_end();
            let v = match plain {
                "~" | "null" | "Null" | "NULL" => Value::Null,
                s => Value::Str(s.to_owned()),
            };
            (v, "")
        }
    };
    let rest = rest.trim_start();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(md_err(line, format!("unexpected {rest:?} after the value")));
    }
    Ok(value)
}

fn double_quoted(s: &str, line: usize) -> Result<(String, &str), MirrorError> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let mut hex = |n: usize| -> Result<char, MirrorError> {
                    let digits: String = (0..n).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    u32::from_str_radix(&digits, 16)
                        .ok()
                        .filter(|_| digits.len() == n)
                        .and_then(char::from_u32)
                        .ok_or_else(|| md_err(line, format!("invalid escape \\{e}{digits}")))
                };
                let ch = match e {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\u{b}',
                    'f' => '\u{c}',
                    'r' => '\r',
                    'e' => '\u{1b}',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => hex(2)?,
                    'u' => hex(4)?,
                    'U' => hex(8)?,
                    other => return Err(md_err(line, format!("invalid escape \\{other}"))),
                };
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    Err(md_err(line, "unterminated double-quoted string"))
}

fn single_quoted(s: &str, line: usize) -> Result<(String, &str), MirrorError> {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                out.push('\'');
            } else {
                return Ok((out, &s[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    Err(md_err(line, "unterminated single-quoted string"))
}

fn flow_seq(s: &str, line: usize) -> Result<(Vec<String>, &str), MirrorError> {
    let mut items = Vec::new();
    let mut rest = s.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            return Ok((items, after));
        }
        let (item, after) = match rest.chars().next() {
            None => return Err(md_err(line, "unterminated list")),
            Some('"') => double_quoted(&rest[1..], line)?,
            Some('\'') => single_quoted(&rest[1..], line)?,
            Some(c) if "[{".contains(c) => {
                return Err(md_err(line, "nested collections are not supported"));
            }
            Some(_) => {
                let end = rest.find([',', ']']).unwrap_or(rest.len());
                (rest[..end].trim().to_owned(), &rest[end..])
            }
        };
        items.push(item);
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.starts_with(']') {
            return Err(md_err(line, "expected `,` or `]` in a list"));
        }
    }
}

fn take_str(
    fields: &mut BTreeMap<String, Value>,
    key: &str,
    line: usize,
) -> Result<Option<String>, MirrorError> {
    match fields.remove(key) {
        // `key:` with nothing after it (an empty block list) is null too.
        None | Some(Value::Null) => Ok(None),
        Some(Value::Seq(v)) if v.is_empty() => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(Value::Seq(_)) => Err(md_err(line, format!("{key} must be a single value"))),
    }
}

fn take_list(
    fields: &mut BTreeMap<String, Value>,
    key: &str,
    line: usize,
) -> Result<Option<Vec<String>>, MirrorError> {
    match fields.remove(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Seq(v)) => Ok(Some(v)),
        Some(Value::Str(_)) => Err(md_err(line, format!("{key} must be a list"))),
    }
}

fn build(
    mut fields: BTreeMap<String, Value>,
    rest: &str,
    rest_line: usize,
) -> Result<RenderedIssue, MirrorError> {
    let fm = 2; // frontmatter errors name its first line
    let id = take_str(&mut fields, "id", fm)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| md_err(fm, "frontmatter has no id"))?;
    let title =
        take_str(&mut fields, "title", fm)?.ok_or_else(|| md_err(fm, "frontmatter has no title"))?;
    let status = take_str(&mut fields, "status", fm)?
        .ok_or_else(|| md_err(fm, "frontmatter has no status"))?;
    let status: Status = status.parse().map_err(|_| {
        md_err(
            fm,
            format!("unknown status {status:?} (open, in_progress, in_review, done, wont_fix)"),
        )
    })?;
    let assignee = take_str(&mut fields, "assignee", fm)?;
    let assignees = match (take_list(&mut fields, "assignees", fm)?, assignee) {
        (Some(list), Some(first)) if list.first() != Some(&first) => {
            return Err(md_err(
                fm,
                format!("assignee {first:?} is not the first of assignees {list:?}: edit assignees"),
            ));
        }
        (Some(list), _) => list,
        (None, Some(first)) => vec![first],
        (None, None) => Vec::new(),
    };
    let labels = take_list(&mut fields, "labels", fm)?.unwrap_or_default();
    let created_at = take_str(&mut fields, "created_at", fm)?.unwrap_or_default();
    let updated_at = take_str(&mut fields, "updated_at", fm)?.unwrap_or_default();
    let version = match take_str(&mut fields, "version", fm)? {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| md_err(fm, format!("version {v:?} is not a number")))?,
    };
    let reposix_id = take_str(&mut fields, "reposix_id", fm)?;
    let tag = match take_str(&mut fields, "comments_marker", fm)? {
        None => TAG.to_owned(),
        Some(t) => {
            let ok = t == TAG
                || t.strip_prefix("reposix-").is_some_and(|n| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                });
            if !ok {
                return Err(md_err(fm, format!("comments_marker {t:?} is not reposix[-N]")));
            }
            t
        }
    };
    let marker = format!("\n<!-- {tag}:comments -->");
    let mut split = None;
    let mut from = 0;
    while let Some(i) = rest[from..].find(&marker) {
        let at = from + i;
        let after = &rest[at + marker.len()..];
        if after.is_empty() || after.starts_with('\n') {
            split = Some((at, after.strip_prefix('\n').unwrap_or(after)));
            break;
        }
        from = at + 1;
    }
    let (body, comments) = match split {
        // No marker: a hand-written file without comments.
        None => (rest.to_owned(), Vec::new()),
        Some((at, section)) => {
            let section_line = rest_line + rest[..at].matches('\n').count() + 2;
            (
                rest[..at].to_owned(),
                parse_comments(section, &tag, section_line)?,
            )
        }
    };
    Ok(RenderedIssue {
        id,
        title,
        status,
        assignees,
        labels,
        created_at,
        updated_at,
        version,
        reposix_id,
        body,
        comments,
    })
}

fn parse_comments(
    section: &str,
    tag: &str,
    first_line: usize,
) -> Result<Vec<RenderedComment>, MirrorError> {
    let prefix = format!("<!-- {tag}:comment ");
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    for line in section.split_inclusive('\n') {
        if line.starts_with(&prefix) {
            starts.push(at);
        }
        at += line.len();
    }
    if section.is_empty() {
        return Ok(Vec::new());
    }
    if starts.first() != Some(&0) {
        return Err(md_err(first_line, "text after the comments marker that is not a comment"));
    }
    starts.push(section.len());
    let mut out = Vec::new();
    for w in starts.windows(2) {
        let block = &section[w[0]..w[1]];
        let line = first_line + section[..w[0]].matches('\n').count();
        let block = block
            .strip_suffix('\n')
            .ok_or_else(|| md_err(line, "a comment must end with a line break"))?;
        let (marker, rest) = block
            .split_once('\n')
            .ok_or_else(|| md_err(line, "a comment needs a heading line"))?;
        let id = marker
            .strip_prefix(&prefix)
            .and_then(|m| m.strip_suffix(" -->"))
            .filter(|id| !id.is_empty() && !id.contains(' '))
            .ok_or_else(|| md_err(line, format!("malformed comment marker {marker:?}")))?;
        let (heading, rest) = rest
            .split_once('\n')
            .ok_or_else(|| md_err(line + 1, "a comment needs a blank line after its heading"))?;
        let body = rest
            .strip_prefix('\n')
            .ok_or_else(|| md_err(line + 2, "a comment needs a blank line after its heading"))?;
        let (author, created_at, edited) = parse_heading(heading)
            .ok_or_else(|| md_err(line + 1, format!("malformed comment heading {heading:?}")))?;
        out.push(RenderedComment {
            id: id.to_owned(),
            author,
            created_at,
            edited,
            body: body.to_owned(),
        });
    }
    Ok(out)
}

/// `### comment <short> by <author> on <time>[ (edited)]`.
fn parse_heading(h: &str) -> Option<(String, String, bool)> {
    let h = h.strip_prefix("### comment ")?;
    let (h, edited) = match h.strip_suffix(" (edited)") {
        Some(h) => (h, true),
        None => (h, false),
    };
    let (h, time) = h.rsplit_once(" on ")?;
    let (_short, author) = h.split_once(" by ")?;
    if time.contains(' ') {
        return None;
    }
    Some((author.to_owned(), time.to_owned(), edited))
}

/// Whether a commit message carries the trailer `key` (case-insensitive,
/// in the last paragraph, not the subject): the mark of a bot commit.
pub fn has_trailer(message: &str, key: &str) -> bool {
    let message = message.trim_end();
    let Some((_, last)) = message.rsplit_once("\n\n") else {
        return false;
    };
    last.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, _)| k.trim_end().eq_ignore_ascii_case(key))
    })
}

/// Whether `commit` is a bot commit (carries the trailer `key`, e.g.
/// [`DEFAULT_TRAILER`]); such commits are never read as user edits.
pub fn is_bot_commit(commit: &gix::Commit<'_>, key: &str) -> bool {
    commit
        .message_raw()
        .map(|m| has_trailer(&m.to_str_lossy(), key))
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Writing a rendered tree to a directory

/// What [`write_files`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteReport {
    /// Files written (new or changed), relative paths.
    pub written: Vec<String>,
    /// Files already holding the rendered bytes.
    pub unchanged: usize,
    /// `.md` files in the rendered directory that the render does not have.
    pub stale: Vec<String>,
    /// Whether the stale files were removed.
    pub pruned: bool,
}

/// Write rendered files under `dir` (atomically each, skipping files that
/// already hold the bytes). `.md` files in the kind's directory that the
/// render lacks are listed, and removed with `prune`.
pub fn write_files(
    dir: &Path,
    kind: BackendKind,
    files: &BTreeMap<String, Vec<u8>>,
    prune: bool,
) -> Result<WriteReport, MirrorError> {
    let sub = dir_for(kind);
    let target = dir.join(sub);
    std::fs::create_dir_all(&target).map_err(io_err(&target))?;
    let mut report = WriteReport {
        pruned: prune,
        ..WriteReport::default()
    };
    for (path, bytes) in files {
        let name = path
            .strip_prefix(sub)
            .and_then(|p| p.strip_prefix('/'))
            .filter(|n| n.strip_suffix(".md").is_some_and(safe_name))
            .ok_or_else(|| MirrorError::Invalid {
                what: "rendered path",
                value: path.clone(),
                why: "not <dir>/<safe name>.md",
            })?;
        let file = target.join(name);
        if std::fs::read(&file).is_ok_and(|old| old == *bytes) {
            report.unchanged += 1;
            continue;
        }
        let tmp = target.join(format!(".{name}.tmp.{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &file).map_err(io_err(&file))?;
        report.written.push(path.clone());
    }
    let entries = std::fs::read_dir(&target).map_err(io_err(&target))?;
    let mut stale = BTreeSet::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{sub}/{name}");
        if name.ends_with(".md") && !files.contains_key(&path) {
            if prune {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(io_err(&p))?;
            }
            stale.insert(path);
        }
    }
    report.stale = stale.into_iter().collect();
    Ok(report)
}

// ---------------------------------------------------------------------------
// Git objects

fn sig(secs: i64) -> gix::actor::Signature {
    gix::actor::Signature {
        name: "reposix".into(),
        email: "reposix@reposix".into(),
        time: gix::date::Time {
            seconds: secs,
            offset: 0,
        },
    }
}

/// Write the rendered files' blobs and the directory tree; `None` when
/// there are no files.
fn write_subtree(
    repo: &gix::Repository,
    sub: &str,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Option<Oid>, MirrorError> {
    let mut tree = gix::objs::Tree::empty();
    for (path, bytes) in files {
        let name = path
            .strip_prefix(sub)
            .and_then(|p| p.strip_prefix('/'))
            .expect("BUG: render puts every file in the kind's directory");
        let oid = repo
            .write_blob(bytes)
            .map_err(git_err(format!("writing {path}")))?
            .detach();
        tree.entries.push(gix::objs::tree::Entry {
            mode: gix::objs::tree::EntryKind::Blob.into(),
            filename: name.into(),
            oid,
        });
    }
    if tree.entries.is_empty() {
        return Ok(None);
    }
    tree.entries.sort();
    Ok(Some(
        repo.write_object(&tree)
            .map_err(git_err(format!("writing the {sub}/ tree")))?
            .detach(),
    ))
}

/// `base` with its `sub` entry replaced by `subtree` (removed when `None`).
fn replace_entry(
    repo: &gix::Repository,
    base: Option<Oid>,
    sub: &str,
    subtree: Option<Oid>,
) -> Result<Oid, MirrorError> {
    let mut tree = gix::objs::Tree::empty();
    if let Some(base) = base {
        let found = repo
            .find_tree(base)
            .map_err(git_err(format!("reading the mirror's tree {base}")))?;
        let decoded = found
            .decode()
            .map_err(git_err(format!("parsing the mirror's tree {base}")))?;
        tree.entries = decoded
            .entries
            .iter()
            .filter(|e| e.filename != sub.as_bytes())
            .map(|e| gix::objs::tree::Entry {
                mode: e.mode,
                filename: e.filename.to_owned(),
                oid: e.oid.to_owned(),
            })
            .collect();
    }
    if let Some(oid) = subtree {
        tree.entries.push(gix::objs::tree::Entry {
            mode: gix::objs::tree::EntryKind::Tree.into(),
            filename: sub.into(),
            oid,
        });
    }
    tree.entries.sort();
    Ok(repo
        .write_object(&tree)
        .map_err(git_err("writing the mirror's root tree"))?
        .detach())
}

fn write_commit(
    repo: &gix::Repository,
    tree: Oid,
    parents: &[Oid],
    message: String,
    secs: i64,
) -> Result<Oid, MirrorError> {
    let commit = gix::objs::Commit {
        tree,
        parents: parents.iter().copied().collect(),
        author: sig(secs),
        committer: sig(secs),
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    Ok(repo
        .write_object(&commit)
        .map_err(git_err("writing a mirror commit"))?
        .detach())
}

fn tree_of(repo: &gix::Repository, commit: Oid) -> Result<Oid, MirrorError> {
    let what = || format!("reading the mirror's commit {commit}");
    Ok(repo
        .find_commit(commit)
        .map_err(git_err(what()))?
        .tree_id()
        .map_err(git_err(what()))?
        .detach())
}

// ---------------------------------------------------------------------------
// Running git

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

/// How to push the mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Remote name, URL or path.
    pub mirror: String,
    /// The branch the files go to.
    pub branch: String,
    /// Trailer key of bot commits.
    pub trailer: String,
    /// Limit for each git invocation.
    pub timeout: Duration,
    /// Tries when a lease is lost to a concurrent writer (at least 1).
    pub attempts: u32,
    /// A token for git's credential prompts.
    pub credential: Option<Credential>,
    /// Set to kill the running git process and return
    /// [`MirrorError::Interrupted`].
    pub cancel: Option<Arc<AtomicBool>>,
}

impl MirrorOptions {
    /// Defaults for `mirror`: branch `main`, trailer `Reposix-Origin`,
    /// 120 s per git process, 3 attempts, no credential.
    pub fn new(mirror: impl Into<String>) -> MirrorOptions {
        MirrorOptions {
            mirror: mirror.into(),
            branch: DEFAULT_BRANCH.to_owned(),
            trailer: DEFAULT_TRAILER.to_owned(),
            timeout: Duration::from_secs(120),
            attempts: 3,
            credential: None,
            cancel: None,
        }
    }

    /// `mirror`, else git config `reposix.mirror`; branch and trailer from
    /// `reposix.mirrorBranch` and `reposix.mirrorTrailer`; the credential
    /// from the environment.
    pub fn configured(
        store: &GitEventStore,
        mirror: Option<&str>,
    ) -> Result<MirrorOptions, MirrorError> {
        let repo = store.repo();
        let config = repo.config_snapshot();
        let get = |key: &str| {
            config
                .string(key)
                .map(|v| v.to_str_lossy().trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mirror = match mirror {
            Some(m) => m.to_owned(),
            None => get("reposix.mirror").ok_or(MirrorError::NoMirror)?,
        };
        let mut opts = MirrorOptions::new(mirror);
        if let Some(b) = get("reposix.mirrorBranch") {
            opts.branch = b;
        }
        if let Some(t) = get("reposix.mirrorTrailer") {
            opts.trailer = t;
        }
        opts.credential = Credential::from_env();
        Ok(opts)
    }
}

/// A `GIT_ASKPASS` script in a private directory, removed on drop. It
/// holds no secret: it echoes the environment variables.
struct Askpass {
    dir: PathBuf,
    script: PathBuf,
}

impl Askpass {
    fn create() -> Result<Askpass, MirrorError> {
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

struct GitOutput {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// A running git process: killed with its children unless waited for.
struct ChildGuard(Child);

impl ChildGuard {
    fn kill_tree(&mut self) {
        // Children first (git-remote-http, ssh), while they are still
        // linked to git: once git is gone they are reparented.
        for _ in 0..2 {
            let pids = descendants(self.0.id());
            if pids.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(pids.iter().map(u32::to_string))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill_tree();
        }
    }
}

/// Processes descending from `root` (Linux `/proc`; empty elsewhere).
fn descendants(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent_of = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some(ppid) = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        parent_of.push((pid, ppid));
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parent_of {
            if parent == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

struct Git<'a> {
    git_dir: &'a Path,
    opts: &'a MirrorOptions,
    askpass: Option<&'a Path>,
    display: &'a str,
}

impl Git<'_> {
    fn clean(&self, text: &str) -> String {
        let mut text = sanitize(text);
        if let Some(c) = &self.opts.credential {
            if !c.token.is_empty() {
                text = text.replace(&c.token, "***");
            }
        }
        text
    }

    fn failure(&self, text: &str, refused: bool) -> MirrorError {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let message = lines[lines.len().saturating_sub(8)..].join("; ");
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
    fn run(&self, command: &'static str, args: &[OsString]) -> Result<GitOutput, MirrorError> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(self.git_dir)
            .arg(command)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(script) = self.askpass {
            cmd.env("GIT_ASKPASS", script);
        }
        if let Some(c) = &self.opts.credential {
            cmd.env(TOKEN_ENV, &c.token).env(USER_ENV, &c.user);
        }
        let child = cmd
            .spawn()
            .map_err(|source| MirrorError::Spawn { command, source })?;
        let mut guard = ChildGuard(child);
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let out = drain(
            guard
                .0
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err = drain(
            guard
                .0
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + self.opts.timeout;
        let mut nap = Duration::from_micros(500);
        let status = loop {
            if let Some(status) = guard
                .0
                .try_wait()
                .map_err(|source| MirrorError::Spawn { command, source })?
            {
                break status;
            }
            if self
                .opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst))
            {
                guard.kill_tree();
                return Err(MirrorError::Interrupted {
                    mirror: self.display.to_owned(),
                    command,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                guard.kill_tree();
                // The readers end once the killed processes' pipes close.
                return Err(MirrorError::Push {
                    mirror: self.display.to_owned(),
                    reason: MirrorFailureReason::NetworkFailed,
                    message: format!(
                        "`git {command}` did not finish within {} s and was killed",
                        self.opts.timeout.as_secs_f64()
                    ),
                });
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(20));
        };
        Ok(GitOutput {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }

    /// The values of `refs` on the mirror (absent ones are left out).
    fn ls_remote(&self, remote: &str, refs: &[&str]) -> Result<BTreeMap<String, Oid>, MirrorError> {
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

    fn fetch(&self, remote: &str, refspec: &str) -> Result<(), MirrorError> {
        let args: Vec<OsString> = [
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--recurse-submodules=no",
            "--no-auto-maintenance",
            remote,
            refspec,
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let out = self.run("fetch", &args)?;
        if !out.status.success() {
            return Err(self.failure(&out.stderr, false));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Push

/// What a successful mirror push did.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorReport {
    /// The slug (`sim`, `github`, `jira`, `confluence`).
    pub slug: String,
    /// The mirror (sanitized).
    pub mirror: String,
    /// The branch.
    pub branch: String,
    /// Files rendered.
    pub files: usize,
    /// Whether a new commit went onto the branch (false: tree unchanged).
    pub committed: bool,
    /// The branch's commit after the push (= `refs/mirrors/<slug>-head`).
    pub commit: String,
    /// The `refs/mirrors/<slug>-synced-at` tag object.
    pub tag: String,
    /// Sync time, RFC 3339.
    pub synced_at: String,
    /// Tries (more than 1 when a concurrent writer moved a ref).
    pub attempts: u32,
}

fn check_options(opts: &MirrorOptions) -> Result<(), MirrorError> {
    let branch_ok = gix::refs::FullName::try_from(format!("refs/heads/{}", opts.branch)).is_ok()
        && !opts.branch.is_empty()
        && !opts.branch.contains(['*', ':']);
    if !branch_ok {
        return Err(MirrorError::Invalid {
            what: "mirror branch",
            value: opts.branch.clone(),
            why: "not a branch name",
        });
    }
    let trailer_ok = opts.trailer.starts_with(|c: char| c.is_ascii_alphanumeric())
        && opts
            .trailer
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !trailer_ok {
        return Err(MirrorError::Invalid {
            what: "trailer key",
            value: opts.trailer.clone(),
            why: "letters, digits and `-` only",
        });
    }
    // `https://token@host/…`: a credential in a URL ends up in argv, in
    // git's messages and in the config. ssh's `git@host` is a user name.
    if has_credentials(&opts.mirror) {
        return Err(MirrorError::CredentialsInUrl {
            mirror: sanitize(&opts.mirror),
        });
    }
    Ok(())
}

fn has_credentials(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return false;
    }
    let rest = &url[url.find("://").map_or(0, |i| i + 3)..];
    rest.split(['/', '?', '#'])
        .next()
        .is_some_and(|authority| authority.contains('@'))
}

/// The mirror as git gets it and as messages show it. A configured remote
/// whose URL carries credentials is refused like such a URL.
fn resolve(store: &GitEventStore, mirror: &str) -> Result<(String, String), MirrorError> {
    let remote = crate::sync::resolve_remote(store, Some(mirror)).map_err(|_| {
        MirrorError::UnknownMirror {
            name: sanitize(mirror),
        }
    })?;
    let repo = store.repo();
    let config = repo.config_snapshot();
    for key in ["url", "pushurl"] {
        let url = config
            .string(format!("remote.{}.{key}", remote.arg).as_str())
            .map(|v| v.to_str_lossy().into_owned());
        if url.as_deref().is_some_and(has_credentials) {
            return Err(MirrorError::CredentialsInUrl {
                mirror: sanitize(&remote.display),
            });
        }
    }
    Ok((remote.arg, remote.display))
}

enum Verdict {
    Done,
    Retry,
    NoAtomic,
}

/// Render the issues of `source`, commit them to the mirror's branch and
/// push, with the two `refs/mirrors/` refs; see the module docs. Safe to
/// call after a tracker sync: an `Err` leaves the mirror and the local
/// `refs/mirrors/` refs as they were (the recorded lag).
pub fn push_mirror(
    store: &GitEventStore,
    source: &MirrorSource,
    opts: &MirrorOptions,
) -> Result<MirrorReport, MirrorError> {
    check_options(opts)?;
    let (remote, display) = resolve(store, &opts.mirror)?;
    let slug = source.slug();
    let sub = dir_for(source.kind);
    let issues = collect(store, source)?;
    let files = render(&issues, source.kind);
    let repo = store.repo();
    let subtree = write_subtree(&repo, sub, &files)?;
    let askpass = match &opts.credential {
        Some(_) => Some(Askpass::create()?),
        None => None,
    };
    let git = Git {
        git_dir: store.git_dir(),
        opts,
        askpass: askpass.as_ref().map(|a| a.script.as_path()),
        display: &display,
    };
    let branch_ref = format!("refs/heads/{}", opts.branch);
    let head = head_ref(slug);
    let tag_ref = synced_at_ref(slug);
    let private = format!("{PRIVATE_PREFIX}{slug}/{}", opts.branch);
    let trailer = format!("{}: {slug}", opts.trailer);
    let mut atomic = true;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let advertised = git.ls_remote(&remote, &[&branch_ref, &head, &tag_ref])?;
        let base = match advertised.get(&branch_ref) {
            Some(_) => {
                git.fetch(&remote, &format!("+{branch_ref}:{private}"))?;
                let tip = store
                    .read_ref(&repo, &private)
                    .map_err(|source| MirrorError::Store {
                        what: format!("reading {private}"),
                        source,
                    })?;
                Some(tip.ok_or_else(|| MirrorError::Push {
                    mirror: display.clone(),
                    reason: MirrorFailureReason::Unknown,
                    message: format!("fetching {branch_ref} left no {private}"),
                })?)
            }
            None => None,
        };
        let base_tree = base.map(|b| tree_of(&repo, b)).transpose()?;
        let root = replace_entry(&repo, base_tree, sub, subtree)?;
        let now = timestamp::now_secs();
        let when = timestamp::format_secs(now);
        let (commit, committed) = match base {
            Some(b) if base_tree == Some(root) => (b, false),
            _ => (
                write_commit(
                    &repo,
                    root,
                    &base.into_iter().collect::<Vec<_>>(),
                    format!("Sync from {slug} at {when}\n\n{trailer}\n"),
                    now,
                )?,
                true,
            ),
        };
        let synced = write_commit(
            &repo,
            root,
            &[commit],
            format!("mirror synced from {slug}\n\n{trailer}\n"),
            now,
        )?;
        let tag = repo
            .write_object(&gix::objs::Tag {
                target: synced,
                target_kind: gix::objs::Kind::Commit,
                name: format!("{slug}-synced-at").into(),
                tagger: Some(sig(now)),
                message: format!("mirror synced from {slug}\n").into(),
                signature: None,
            })
            .map_err(git_err("writing the synced-at tag"))?
            .detach();
        let updates = [
            (&branch_ref, commit, base),
            (&head, commit, advertised.get(&head).copied()),
            (&tag_ref, tag, advertised.get(&tag_ref).copied()),
        ];
        let mut args: Vec<OsString> = [
            "--porcelain",
            "--no-verify",
            "--no-signed",
            "--no-follow-tags",
            "--recurse-submodules=no",
            "--no-force-if-includes",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if atomic {
            args.push("--atomic".into());
        }
        for (name, _, expected) in &updates {
            args.push(
                format!(
                    "--force-with-lease={name}:{}",
                    expected.map(|o| o.to_string()).unwrap_or_default()
                )
                .into(),
            );
        }
        args.push(OsString::from(&remote));
        for (name, new, _) in &updates {
            args.push(format!("{new}:{name}").into());
        }
        let out = git.run("push", &args)?;
        let verdict = judge(&git, &out, &updates.map(|(n, _, _)| n.as_str()))?;
        match verdict {
            Verdict::Done => {
                record(&repo, &[(&head, commit), (&tag_ref, tag), (&private, commit)])?;
                return Ok(MirrorReport {
                    slug: slug.to_owned(),
                    mirror: display,
                    branch: opts.branch.clone(),
                    files: files.len(),
                    committed,
                    commit: commit.to_string(),
                    tag: tag.to_string(),
                    synced_at: when,
                    attempts,
                });
            }
            Verdict::NoAtomic if atomic => atomic = false,
            Verdict::Retry | Verdict::NoAtomic => {
                if attempts >= opts.attempts.max(1) {
                    return Err(MirrorError::Push {
                        mirror: display,
                        reason: MirrorFailureReason::PushRejected,
                        message: format!(
                            "the mirror moved during each of {attempts} attempts (lease lost); \
                             run the mirror push again"
                        ),
                    });
                }
            }
        }
    }
}

/// Read a push's outcome for our refs.
fn judge(git: &Git<'_>, out: &GitOutput, ours: &[&str]) -> Result<Verdict, MirrorError> {
    let parsed = parse_porcelain(&out.stdout);
    let status_of = |name: &str| parsed.iter().find(|(to, _)| to == name).map(|(_, s)| s);
    let all_landed = ours.iter().all(|n| {
        matches!(
            status_of(n),
            Some(PushStatus::Pushed | PushStatus::UpToDate)
        )
    });
    if out.status.success() && all_landed {
        return Ok(Verdict::Done);
    }
    let text = format!("{}\n{}", out.stderr, out.stdout);
    if parsed.is_empty() {
        if out.stderr.contains("does not support --atomic") {
            return Ok(Verdict::NoAtomic);
        }
        return Err(git.failure(&text, false));
    }
    let mut refusals = Vec::new();
    let mut retry = false;
    for name in ours {
        match status_of(name) {
            Some(PushStatus::Rejected { retryable, reason }) => {
                let collateral = reason.contains("atomic");
                if *retryable {
                    retry = true;
                } else if !collateral {
                    refusals.push(reason.clone());
                }
            }
            Some(PushStatus::Other(reason)) => refusals.push(reason.clone()),
            Some(PushStatus::Pushed | PushStatus::UpToDate) => {}
            None => refusals.push(format!("no status for {name}")),
        }
    }
    if refusals.is_empty() && retry {
        return Ok(Verdict::Retry);
    }
    Err(git.failure(&text, true))
}

/// Point local refs at what the mirror now has.
fn record(repo: &gix::Repository, refs: &[(&str, Oid)]) -> Result<(), MirrorError> {
    let edits: Vec<RefEdit> = refs
        .iter()
        .map(|(name, oid)| RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: "reposix mirror push".into(),
                },
                expected: PreviousValue::Any,
                new: gix::refs::Target::Object(*oid),
            },
            name: (*name)
                .try_into()
                .expect("BUG: slugs and checked branch names form valid ref names"),
            deref: false,
        })
        .collect();
    let now = sig(timestamp::now_secs());
    let mut buf = gix::date::parse::TimeBuf::default();
    repo.edit_references_as(edits, Some(now.to_ref(&mut buf)))
        .map_err(git_err(
            "the mirror was pushed, but recording refs/mirrors/ locally failed",
        ))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Staleness

/// The last successful sync, from the local `refs/mirrors/` refs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastSync {
    /// The slug.
    pub slug: String,
    /// Sync time, seconds since the epoch (the tag's tagger date).
    pub at: i64,
    /// The mirror commit of that sync (`refs/mirrors/<slug>-head`).
    pub head: Option<String>,
}

/// The last successful sync of the mirror of `slug`, if any.
pub fn last_sync(store: &GitEventStore, slug: &str) -> Option<LastSync> {
    let repo = store.repo();
    let oid = store.read_ref(&repo, &synced_at_ref(slug)).ok()??;
    let obj = repo.find_object(oid).ok()?;
    let at = match obj.kind {
        gix::objs::Kind::Tag => {
            let tag = obj.into_tag();
            let decoded = tag.decode().ok()?;
            decoded.tagger().ok()??.seconds()
        }
        gix::objs::Kind::Commit => obj.into_commit().time().ok()?.seconds,
        _ => return None,
    };
    let head = store
        .read_ref(&repo, &head_ref(slug))
        .ok()
        .flatten()
        .map(|o| o.to_string());
    Some(LastSync {
        slug: slug.to_owned(),
        at,
        head,
    })
}

/// `5 minutes ago`, `1 hour ago`, `just now`.
pub fn ago(secs: i64) -> String {
    let unit = |n: i64, what: &str| {
        if n == 1 {
            format!("1 {what} ago")
        } else {
            format!("{n} {what}s ago")
        }
    };
    match secs {
        s if s < 1 => "just now".into(),
        s if s < 60 => unit(s, "second"),
        s if s < 3600 => unit(s / 60, "minute"),
        s if s < 86_400 => unit(s / 3600, "hour"),
        s => unit(s / 86_400, "day"),
    }
}

/// A hint for messages about a tracker sync that retried or gave up: how
/// stale the mirror of `slug` is and what to run, or `None` when it was
/// never synced from here.
pub fn staleness(store: &GitEventStore, slug: &str) -> Option<String> {
    staleness_at(store, slug, timestamp::now_secs())
}

/// [`staleness`] as of `now` (seconds since the epoch).
pub fn staleness_at(store: &GitEventStore, slug: &str, now: i64) -> Option<String> {
    let last = last_sync(store, slug)?;
    Some(format!(
        "your mirror was last synced from {slug} at {} ({}); run `reposix mirror sync` \
         to bring the tracker and then the mirror up to date",
        timestamp::format_secs(last.at),
        ago(now - last.at)
    ))
}

/// Whether the mirror lags the local state.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorLag {
    /// The last successful sync, if any.
    pub last: Option<LastSync>,
    /// Whether the rendered local state equals what the last sync pushed
    /// (`None`: never synced).
    pub in_step: Option<bool>,
}

/// Compare the local state, rendered, with the last sync's mirror commit.
/// Writes only content-addressed objects (the rendered blobs and tree).
pub fn lag(store: &GitEventStore, source: &MirrorSource) -> Result<MirrorLag, MirrorError> {
    let last = last_sync(store, source.slug());
    let Some(head) = last.as_ref().and_then(|l| l.head.as_deref()) else {
        return Ok(MirrorLag {
            last,
            in_step: None,
        });
    };
    let repo = store.repo();
    let sub = dir_for(source.kind);
    let files = render(&collect(store, source)?, source.kind);
    let ours = write_subtree(&repo, sub, &files)?;
    let head = Oid::from_hex(head.as_bytes()).map_err(|_| MirrorError::Invalid {
        what: "mirror head",
        value: head.to_owned(),
        why: "not an object id",
    })?;
    let tree = tree_of(&repo, head)?;
    let theirs = repo
        .find_tree(tree)
        .map_err(git_err(format!("reading tree {tree}")))?
        .decode()
        .map_err(git_err(format!("parsing tree {tree}")))?
        .entries
        .iter()
        .find(|e| e.filename == sub.as_bytes())
        .map(|e| e.oid.to_owned());
    Ok(MirrorLag {
        last,
        in_step: Some(ours == theirs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> RenderedIssue {
        RenderedIssue {
            id: "1".into(),
            title: "Crash on start".into(),
            status: Status::InProgress,
            assignees: vec!["alice".into()],
            labels: vec!["bug".into(), "p1".into()],
            created_at: "2026-04-13T00:00:00Z".into(),
            updated_at: "2026-04-13T00:05:00Z".into(),
            version: 3,
            reposix_id: Some("0b6f2f9e-7d53-4c1e-9a3e-2f0c8d1b6a55".into()),
            body: "It crashes when offline.\n".into(),
            comments: vec![RenderedComment {
                id: "9c1d0a2b3c4d".repeat(5) + "abcd",
                author: "bob".into(),
                created_at: "2026-04-13T00:05:00Z".into(),
                edited: false,
                body: "Reproduced on 1.2".into(),
            }],
        }
    }

    #[test]
    fn renders_the_documented_shape() {
        let text = sample().to_markdown();
        let want = "---\n\
            id: 1\n\
            title: \"Crash on start\"\n\
            status: \"in_progress\"\n\
            assignee: \"alice\"\n\
            labels: [\"bug\", \"p1\"]\n\
            created_at: \"2026-04-13T00:00:00Z\"\n\
            updated_at: \"2026-04-13T00:05:00Z\"\n\
            version: 3\n\
            reposix_id: \"0b6f2f9e-7d53-4c1e-9a3e-2f0c8d1b6a55\"\n\
            ---\n\
            It crashes when offline.\n\
            \n\
            <!-- reposix:comments -->\n";
        assert!(text.starts_with(want), "{text}");
        assert!(text.ends_with(
            "### comment 9c1d0a2b3c4d by bob on 2026-04-13T00:05:00Z\n\nReproduced on 1.2\n"
        ));
        assert_eq!(parse(text.as_bytes()).expect("parses"), sample());
    }

    #[test]
    fn hostile_title_and_body_cannot_touch_the_frontmatter() {
        let mut issue = sample();
        issue.title = "x\"\n---\nversion: 999\n<script>alert(1)</script>".into();
        issue.body = "---\nversion: 999\nid: 666\n---\n<script>alert(1)</script>\n\
                      <!-- reposix:comments -->\n<!-- reposix:comment 00 -->\n"
            .into();
        issue.labels = vec!["a\", \"b".into(), "]".into()];
        let text = issue.to_markdown();
        let fm_end = text[4..].find("\n---\n").expect("closing fence") + 4;
        let fm = &text[..fm_end];
        assert_eq!(fm.matches("\nversion: ").count(), 1, "{fm}");
        assert!(fm.contains("\nversion: 3"), "{fm}");
        assert!(!fm.contains("\n---"), "{fm}");
        assert!(fm.contains("comments_marker: \"reposix-1\""), "{fm}");
        assert_eq!(parse(text.as_bytes()).expect("parses"), issue);
    }

    #[test]
    fn reads_reposix_014_files_and_hand_edits() {
        let text = "---\nid: 1\ntitle: Legacy issue\nstatus: open\nassignee: agent-alpha\n\
                    labels:\n- bug\n- p1\ncreated_at: 2025-01-01T00:00:00Z\n\
                    updated_at: 2025-01-01T00:00:00Z\nversion: 1\nparent_id: 42\n---\n\
                    Body goes here.\n";
        let got = parse(text.as_bytes()).expect("0.14 file parses");
        assert_eq!(got.id, "1");
        assert_eq!(got.title, "Legacy issue");
        assert_eq!(got.status, Status::Open);
        assert_eq!(got.assignees, ["agent-alpha"]);
        assert_eq!(got.labels, ["bug", "p1"]);
        assert_eq!(got.version, 1);
        assert_eq!(got.body, "Body goes here.\n");
        assert!(got.comments.is_empty());
        let edited = "---\nid: 'PROJ-1' # a comment\ntitle: 'it''s'\nstatus: done\nlabels: [a, \"b c\"]\n---\n";
        let got = parse(edited.as_bytes()).expect("hand edit parses");
        assert_eq!(got.id, "PROJ-1");
        assert_eq!(got.title, "it's");
        assert_eq!(got.labels, ["a", "b c"]);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for bad in [
            "no frontmatter\n",
            "---\nid: 1\ntitle: t\nstatus: open\n",
            "---\nid: 1\nid: 2\ntitle: t\nstatus: open\n---\n",
            "---\nid: 1\ntitle: t\nstatus: closed\n---\n",
            "---\nid: 1\ntitle: \"t\nstatus: open\n---\n",
            "---\nid: 1\ntitle: {a: b}\nstatus: open\n---\n",
            "---\nid: 1\ntitle: t\nstatus: open\nversion: x\n---\n",
            "---\nid: 1\ntitle: t\nstatus: open\n---\nb\n<!-- reposix:comments -->\nstray\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} parsed");
        }
        assert!(parse(b"---\n\xff\n---\n").is_err());
    }

    #[test]
    fn ids_become_safe_file_names_or_fall_back() {
        assert!(safe_name("1") && safe_name("PROJ-12") && safe_name("131192"));
        for bad in ["", "..", ".x", "a/b", "a b", "../../etc/passwd", "x\0"] {
            assert!(!safe_name(bad), "{bad:?}");
        }
        assert!(is_canonical_decimal("1") && is_canonical_decimal("0"));
        assert!(!is_canonical_decimal("007") && !is_canonical_decimal("1e5"));
    }

    #[test]
    fn trailers_mark_bot_commits() {
        let key = DEFAULT_TRAILER;
        assert!(has_trailer("Sync\n\nReposix-Origin: sim\n", key));
        assert!(has_trailer("Sync\n\nbody\n\nreposix-origin: sim", key));
        assert!(!has_trailer("Reposix-Origin: sim", key), "subject only");
        assert!(!has_trailer("fix typo\n\nReposix-Origin: sim\n\nmore", key));
        assert!(!has_trailer("fix typo\n\nSigned-off-by: a", key));
    }

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

    #[test]
    fn ago_reads_like_a_person() {
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(300), "5 minutes ago");
        assert_eq!(ago(3600), "1 hour ago");
        assert_eq!(ago(3 * 86_400 + 5), "3 days ago");
    }

    fn hostile_text() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("---".to_owned()),
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just("version: 999".to_owned()),
            Just("<script>alert(1)</script>".to_owned()),
            Just("<!-- reposix:comments -->".to_owned()),
            Just("<!-- reposix:comment 1 -->".to_owned()),
            Just("<!-- reposix-1:comments -->".to_owned()),
            Just("### comment x by y on z".to_owned()),
            Just("\"\\'#: [],{}".to_owned()),
            Just("\u{85}\u{2028}\u{feff}\u{7f}\t\0".to_owned()),
            any::<String>(),
        ];
        prop::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
    }

    fn actor_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9._@+-]{0,12}"
    }

    fn status() -> impl Strategy<Value = Status> {
        prop::sample::select(Status::ALL.to_vec())
    }

    prop_compose! {
        fn comment()(id in "[0-9a-f]{64}", author in actor_name(), secs in 0i64..4_000_000_000,
                     edited in any::<bool>(), body in hostile_text()) -> RenderedComment {
            RenderedComment { id, author, created_at: timestamp::format_secs(secs), edited, body }
        }
    }

    prop_compose! {
        fn issue()(id in prop_oneof!["[0-9]{1,6}", "[A-Z]{2,4}-[0-9]{1,4}", hostile_text()],
                   title in hostile_text(), status in status(),
                   assignees in prop::collection::vec(hostile_text(), 0..3),
                   labels in prop::collection::vec(hostile_text(), 0..4),
                   version in any::<u64>(), reposix_id in proptest::option::of(hostile_text()),
                   body in hostile_text(), comments in prop::collection::vec(comment(), 0..4))
            -> RenderedIssue {
            RenderedIssue {
                id: if id.is_empty() { "x".into() } else { id },
                title, status, assignees, labels,
                created_at: "2026-04-13T00:00:00Z".into(),
                updated_at: "2026-04-13T00:05:00Z".into(),
                version, reposix_id, body, comments,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// parse inverts render, whatever the text holds, and the
        /// frontmatter keeps its shape: one `version` line, no `---` inside.
        #[test]
        fn parse_inverts_render(issue in issue()) {
            let text = issue.to_markdown();
            let back = parse(text.as_bytes()).expect("rendered files parse");
            prop_assert_eq!(&back, &issue);
            let fm_end = text[4..].find("\n---\n").expect("closing fence") + 4;
            let fm = &text[..fm_end];
            prop_assert_eq!(fm.matches("\nversion: ").count(), 1);
            const KEYS: [&str; 11] = ["id", "title", "status", "assignee", "assignees",
                "labels", "created_at", "updated_at", "version", "reposix_id", "comments_marker"];
            for line in fm.split('\n').skip(1) {
                prop_assert!(KEYS.iter().any(|k| line.starts_with(&format!("{k}: "))), "{:?}", line);
            }
            let breaks = ['\r', '\u{85}', '\u{2028}', '\u{2029}'];
            prop_assert!(!fm.contains(breaks), "line break in {:?}", fm);
            prop_assert_eq!(issue.to_markdown(), text);
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }
    }
}
