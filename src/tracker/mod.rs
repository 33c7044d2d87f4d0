//! Tracker backends: one [`Backend`] trait, one adapter per tracker.
//!
//! An adapter translates between a tracker's wire shapes and the tracker-
//! neutral [`RemoteIssue`] / [`RemoteComment`] / [`IssuePatch`] model; it
//! knows nothing about events, refs or merging (that is `crate::tracker::projection`).
//! All HTTP goes through [`http::HttpClient`], which enforces the egress
//! allowlist, follows redirects only for reads within one origin, retries
//! rate limits (every method) and 5xx (reads) with backoff, and keeps
//! credentials out of URLs, logs and errors.
//!
//! Every adapter hands back bodies and comments with CRLF line endings
//! normalised to LF ([`normalize_newlines`]): GitHub's web editor saves
//! CRLF, and neither the sync marker nor local text should see it.

mod adapter;
pub mod adf;
pub mod atlassian;
pub mod confluence;
pub mod describe;
pub mod github;
pub mod http;
pub mod identity;
pub mod jira;
pub mod projection;

pub mod sim;

use crate::time::Stamp;
use std::fmt;
use std::str::FromStr;

use crate::event::Status;

pub use identity::IdentityMap;

/// Which tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// The bundled simulator (wire-compatible with reposix-sim 0.14).
    Sim,
    /// GitHub Issues (REST 2022-11-28).
    Github,
    /// JIRA Cloud (REST v3).
    Jira,
    /// Confluence Cloud (REST v2 pages).
    Confluence,
}

impl BackendKind {
    /// The slug used in specs, refs and mirror names.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sim => "sim",
            BackendKind::Github => "github",
            BackendKind::Jira => "jira",
            BackendKind::Confluence => "confluence",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sim" => Ok(BackendKind::Sim),
            "github" => Ok(BackendKind::Github),
            "jira" => Ok(BackendKind::Jira),
            "confluence" => Ok(BackendKind::Confluence),
            other => Err(BackendError::Spec(format!(
                "unknown backend kind {other:?} (expected sim, github, jira or confluence)"
            ))),
        }
    }
}

/// A backend address as written by the user: `<kind>::<address>`, e.g.
/// `sim::http://127.0.0.1:7878/demo`, `github::owner/repo`,
/// `jira::https://site.atlassian.net/PROJ`,
/// `confluence::https://site.atlassian.net/SPACE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// The tracker kind.
    pub kind: BackendKind,
    /// The kind-specific address, normalized (no trailing `/`).
    pub address: String,
}

impl BackendSpec {
    /// The origin requests for this tracker go to (for Atlassian gateway
    /// routes derived from a site: the site, from which the adapter derives
    /// the gateway prefix itself; for GitHub: `REPOSIX_GITHUB_API` if set,
    /// else the public API).
    pub fn origin(&self) -> String {
        match self.kind {
            BackendKind::Github => atlassian::origin_of(
                &std::env::var("REPOSIX_GITHUB_API")
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| github::DEFAULT_API.to_owned()),
            ),
            BackendKind::Sim | BackendKind::Jira | BackendKind::Confluence => {
                atlassian::origin_of(&self.address)
            }
        }
    }

    /// Parse `<kind>::<address>`.
    pub fn parse(s: &str) -> Result<BackendSpec, BackendError> {
        let Some((kind, address)) = s.split_once("::") else {
            return Err(BackendError::Spec(format!(
                "{s:?}: expected <kind>::<address>, e.g. sim::http://127.0.0.1:7878/demo"
            )));
        };
        let kind: BackendKind = kind.parse()?;
        let address = address.trim().trim_end_matches('/').to_owned();
        if address.is_empty() {
            return Err(BackendError::Spec(format!("{s:?}: empty address")));
        }
        if address.contains('@') && address.contains("://") {
            return Err(BackendError::Spec(
                "credentials do not belong in a backend address: use the environment \
                 (GITHUB_TOKEN, ATLASSIAN_EMAIL + ATLASSIAN_API_KEY) or a git credential helper"
                    .into(),
            ));
        }
        match kind {
            BackendKind::Github => {
                let parts: Vec<_> = address.split('/').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                    return Err(BackendError::Spec(format!(
                        "github address {address:?}: expected owner/repo"
                    )));
                }
            }
            BackendKind::Jira | BackendKind::Confluence => {
                atlassian::split_address_params(kind.as_str(), &address)?;
            }
            BackendKind::Sim => {
                let rest = address
                    .strip_prefix("http://")
                    .or_else(|| address.strip_prefix("https://"));
                match rest.and_then(|r| r.split_once('/')) {
                    Some((host, key)) if !host.is_empty() && !key.is_empty() => {}
                    _ => {
                        return Err(BackendError::Spec(format!(
                            "{kind} address {address:?}: expected http(s)://host/<project-or-space>"
                        )))
                    }
                }
            }
        }
        Ok(BackendSpec { kind, address })
    }

    /// The canonical text form.
    pub fn to_spec_string(&self) -> String {
        format!("{}::{}", self.kind, self.address)
    }

    /// The base URL and the trailing key (project slug, JIRA project key,
    /// Confluence space key) of an http(s) address.
    pub fn split_base(&self) -> Option<(&str, &str)> {
        self.address.rsplit_once('/')
    }
}

/// What a tracker can and cannot do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Comments can be listed and written.
    pub comments: bool,
    /// Updates take a concurrency token and fail on a stale one
    /// (sim `If-Match`, Confluence version+1). Without it, the exporter
    /// re-reads just before writing and compares revisions.
    pub conditional_update: bool,
    /// Issues can be closed (Confluence pages cannot: status is a label).
    pub closed_state: bool,
    /// More than one assignee.
    pub multiple_assignees: bool,
    /// A hidden place for a sync marker (JIRA issue properties, Confluence
    /// version messages); without it, markers go in the body as an HTML
    /// comment that import strips.
    pub hidden_marker: bool,
    /// The relations between issues the tracker holds and the adapter
    /// lists and writes ([`Backend::links`]); typed links of other kinds
    /// stay local (empty: every link stays local). A relation the tracker
    /// turns out not to offer at run time (a GitHub repository without the
    /// feature) is reported by the adapter as [`BackendError::Unsupported`].
    pub links: &'static [LinkKind],
}

/// A relation between two tracker issues, the form typed links take on a
/// tracker (`refs-format.md`, section 6e).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkKind {
    /// `from` blocks `to` (JIRA "Blocks", GitHub issue dependencies).
    Blocks,
    /// `from` duplicates `to` (JIRA "Duplicate").
    Duplicates,
    /// `from` and `to` are related, without a direction (JIRA "Relates").
    Relates,
    /// `from` is the parent of `to` (GitHub sub-issues).
    Parent,
}

impl LinkKind {
    /// The name used in link records (`link:<kind>:<from>:<to>`).
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Blocks => "blocks",
            LinkKind::Duplicates => "duplicates",
            LinkKind::Relates => "relates",
            LinkKind::Parent => "parent",
        }
    }

    /// The kind [`LinkKind::as_str`] names.
    pub fn parse(s: &str) -> Option<LinkKind> {
        [
            LinkKind::Blocks,
            LinkKind::Duplicates,
            LinkKind::Relates,
            LinkKind::Parent,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One relation as the tracker has it (or should have it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteLink {
    /// The relation.
    pub kind: LinkKind,
    /// The blocker, the duplicate, the parent (for `Relates`, the smaller
    /// of the two remote ids: see [`RemoteLink::new`]).
    pub from: String,
    /// The blocked issue, the original, the child.
    pub to: String,
    /// The tracker's own id of the relation where it has one (a JIRA issue
    /// link id), which removing it needs.
    pub id: Option<String>,
}

impl RemoteLink {
    /// A relation between the remote issues `from` and `to`; a `Relates`
    /// has no direction, so its ends are put in byte order (one relation,
    /// one form, whichever end wrote it).
    pub fn new(kind: LinkKind, from: &str, to: &str) -> RemoteLink {
        let (from, to) = if kind == LinkKind::Relates && to < from {
            (to, from)
        } else {
            (from, to)
        };
        RemoteLink {
            kind,
            from: from.to_owned(),
            to: to.to_owned(),
            id: None,
        }
    }

    /// Whether two values name the same relation (ids aside).
    pub fn same(&self, other: &RemoteLink) -> bool {
        self.kind == other.kind && self.from == other.from && self.to == other.to
    }
}

/// The relations one tracker issue takes part in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteLinks {
    /// Every relation of the kinds listed, whichever end the issue is.
    pub links: Vec<RemoteLink>,
    /// Kinds the tracker could not list here (the feature is off): the
    /// absence of a relation of these kinds says nothing.
    pub unavailable: Vec<LinkKind>,
}

/// A tracker's revision of an issue: the order of revisions and the
/// concurrency token to send with an update.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// Increases with every change of the remote issue (sim/Confluence
    /// version; GitHub/JIRA `updated_at` in ms since the epoch).
    pub order: u64,
    /// Opaque token for conditional writes (version number, ETag, raw
    /// `updated` timestamp).
    pub token: String,
}

/// One issue as the tracker has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteIssue {
    /// The tracker's id (sim id, GitHub number, JIRA key, Confluence page id).
    pub remote_id: String,
    /// Title / summary.
    pub title: String,
    /// Body, with any reposix marker removed, byte for byte otherwise.
    pub body: String,
    /// Status mapped onto reposix's five.
    pub status: Status,
    /// Labels, sorted, unique.
    pub labels: Vec<String>,
    /// Assignees, sorted, unique.
    pub assignees: Vec<String>,
    /// Revision.
    pub revision: Revision,
    /// Creation time, as the tracker wrote it and parsed.
    pub created_at: Stamp,
    /// Update time (the cursor unit), as the tracker wrote it and parsed.
    pub updated_at: Stamp,
    /// The reposix issue id found in a sync marker, if any.
    pub marker: Option<String>,
}

/// One comment as the tracker has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteComment {
    /// The tracker's comment id.
    pub remote_id: String,
    /// Author login / account name.
    pub author: String,
    /// Text (marker removed).
    pub body: String,
    /// Creation time, as the tracker wrote it and parsed.
    pub created_at: Stamp,
    /// Update time, as the tracker wrote it and parsed.
    pub updated_at: Stamp,
    /// The reposix comment id found in a sync marker, if any.
    pub marker: Option<String>,
}

/// A new remote issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRemoteIssue {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Status.
    pub status: Status,
    /// Labels.
    pub labels: Vec<String>,
    /// Assignees.
    pub assignees: Vec<String>,
    /// The reposix issue id, recorded as a sync marker where the tracker has
    /// room for one, so an interrupted create can be found instead of redone.
    pub marker: String,
}

/// A minimal update: only the fields that changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssuePatch {
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New status.
    pub status: Option<Status>,
    /// New full label set.
    pub labels: Option<Vec<String>>,
    /// New full assignee set.
    pub assignees: Option<Vec<String>>,
}

impl IssuePatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == IssuePatch::default()
    }
}

/// Errors from a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A bad `<kind>::<address>` or backend configuration.
    #[error("{0}")]
    Spec(String),
    /// The origin is not in `REPOSIX_ALLOWED_ORIGINS`.
    #[error("egress to {origin} refused: not an allowed origin (allowed: {allowed})")]
    Egress {
        /// The refused origin.
        origin: String,
        /// What is allowed.
        allowed: String,
    },
    /// A concurrency token was stale (409, version mismatch, `updated_at` moved).
    #[error("{what}: the tracker moved on (conflict)")]
    Conflict {
        /// What was being written.
        what: String,
    },
    /// The remote object does not exist.
    #[error("{what}: not found on the tracker")]
    NotFound {
        /// What was looked up.
        what: String,
    },
    /// Authentication failed or credentials are missing.
    #[error("{what}: authentication failed (HTTP {status})")]
    Auth {
        /// The request.
        what: String,
        /// Status code.
        status: u16,
    },
    /// Retries ran out on 429/5xx/timeouts.
    #[error("{what}: gave up after {attempts} attempts (last: {last})")]
    Exhausted {
        /// The request.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Any other HTTP error status.
    #[error("{what}: HTTP {status}: {message}")]
    Http {
        /// The request.
        what: String,
        /// Status code.
        status: u16,
        /// The tracker's message (sanitized, truncated).
        message: String,
    },
    /// A response that does not have the expected shape.
    #[error("{what}: malformed response: {why}")]
    Malformed {
        /// The request.
        what: String,
        /// What is wrong.
        why: String,
    },
    /// The tracker (or this adapter) cannot do this at all.
    #[error("{what}: not supported by this tracker")]
    Unsupported {
        /// What was asked.
        what: String,
    },
    /// The tracker could not be reached at all (connection refused, DNS)
    /// on this client's first request: nothing was sent, nothing retried.
    #[error("{what}: tracker unreachable: {why}")]
    Unreachable {
        /// The request.
        what: String,
        /// What failed (sanitized).
        why: String,
    },
    /// The request could not be sent (connection refused, DNS, TLS).
    #[error("{what}: {why}")]
    Transport {
        /// The request.
        what: String,
        /// What failed (sanitized).
        why: String,
    },
    /// A rate limit asks for a longer wait than the policy allows; nothing
    /// was applied.
    #[error("{what}: rate limited for {wait_secs} s more; try again later")]
    RateLimited {
        /// The request.
        what: String,
        /// How long the tracker asked to wait.
        wait_secs: u64,
    },
    /// The tracker cannot hold some values (a label it forbids, a login it
    /// will not assign, a body over its size limit, an assignee that is not
    /// an account id) or dropped them silently. Retrying the same values
    /// cannot succeed: the caller should record the refusal and not resend
    /// them until they change locally. `applied` is the tracker's state
    /// after everything else in the write was applied (`None`: nothing was
    /// written).
    #[error("{what}: the tracker refused {}", describe_refusals(.refusals))]
    Refused {
        /// The write.
        what: String,
        /// What was refused and why.
        refusals: Vec<Refusal>,
        /// The issue after the rest of the write, if anything was written.
        applied: Option<Box<RemoteIssue>>,
    },
    /// The issue is no longer here: GitHub transferred it to another
    /// repository. `to` names where it went (`github::owner/repo#number`).
    #[error("{what}: moved to {to}")]
    Moved {
        /// The request.
        what: String,
        /// The new place, as `<kind>::<address>#<remote id>`.
        to: String,
    },
}

/// One value a tracker refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The field: `title`, `body`, `labels`, `assignees`, `comment`.
    pub field: String,
    /// The refused value (a label, a login, or a length for a body).
    pub value: String,
    /// Why, in words a user can act on.
    pub reason: String,
}

fn describe_refusals(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| format!("{} {:?}: {}", r.field, r.value, r.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The role: a source-of-truth tracker.
pub trait Backend {
    /// The tracker kind.
    fn kind(&self) -> BackendKind;
    /// The normalized instance address (part of derived issue ids).
    fn instance(&self) -> String;
    /// What it can do.
    fn capabilities(&self) -> Capabilities;
    /// Issues changed since `cursor` (inclusive, so the caller dedupes by
    /// revision), or all issues with `None`, and the next cursor.
    fn list_changed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<RemoteIssue>, Option<String>), BackendError>;
    /// One issue, `None` if it does not exist (any more).
    fn get(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError>;
    /// Create an issue carrying `new.marker`.
    fn create(&self, new: &NewRemoteIssue) -> Result<RemoteIssue, BackendError>;
    /// Apply a patch if the issue is still at `expected` (where the tracker
    /// can check; otherwise the caller re-reads first). Returns the new state.
    fn update(
        &self,
        remote_id: &str,
        patch: &IssuePatch,
        expected: &Revision,
    ) -> Result<RemoteIssue, BackendError>;
    /// Find an issue carrying the marker `marker` (after an interrupted
    /// create), searching issues updated since `since` if given.
    fn find_by_marker(
        &self,
        marker: &str,
        since: Option<&str>,
    ) -> Result<Option<RemoteIssue>, BackendError>;
    /// Comments of an issue, oldest first (empty without the capability).
    fn comments(&self, remote_id: &str) -> Result<Vec<RemoteComment>, BackendError>;
    /// Add a comment carrying `marker`.
    fn add_comment(
        &self,
        remote_id: &str,
        body: &str,
        marker: &str,
    ) -> Result<RemoteComment, BackendError>;
    /// Replace a comment's text.
    fn edit_comment(
        &self,
        remote_id: &str,
        comment_id: &str,
        body: &str,
    ) -> Result<RemoteComment, BackendError>;
    /// Delete an issue (used only to retire a duplicate this client just
    /// created in a race with another client). An already deleted issue is
    /// not an error. Default: unsupported (the caller closes it instead).
    fn delete_issue(&self, remote_id: &str) -> Result<(), BackendError> {
        Err(BackendError::Unsupported {
            what: format!("deleting issue {remote_id}"),
        })
    }

    /// Delete a comment. An already deleted comment is not an error.
    fn delete_comment(&self, remote_id: &str, comment_id: &str) -> Result<(), BackendError> {
        Err(BackendError::Unsupported {
            what: format!("deleting comment {comment_id} of issue {remote_id}"),
        })
    }

    /// Where notices for the user go (rate-limit waits, a renamed
    /// repository). Default: nowhere.
    fn set_notice(&mut self, _notice: http::Notice) {}

    /// Map local assignee names to tracker identities (and back on import).
    /// Default: names are used as they are.
    fn set_identities(&mut self, _ids: IdentityMap) {}

    /// Whether two label sets are the same on this tracker (GitHub matches
    /// labels case-insensitively). Default: equal as sorted sets.
    fn labels_equal(&self, a: &[String], b: &[String]) -> bool {
        let mut a = a.to_vec();
        let mut b = b.to_vec();
        a.sort();
        a.dedup();
        b.sort();
        b.dedup();
        a == b
    }

    /// The address the tracker now answers under, if it moved during this
    /// run (a renamed GitHub repository). [`Backend::instance`] keeps the
    /// original identity. Default: never moves.
    fn relocated(&self) -> Option<BackendSpec> {
        None
    }

    /// The relations (of the kinds in [`Capabilities::links`]) that issue
    /// `remote_id` takes part in, at either end; relations with issues of
    /// other projects or repositories are left out. `fresh` asks for the
    /// tracker's state now; without it an adapter may answer from what the
    /// last listing carried. Default: unsupported.
    fn links(&self, remote_id: &str, _fresh: bool) -> Result<RemoteLinks, BackendError> {
        Err(BackendError::Unsupported {
            what: format!("listing the relations of issue {remote_id}"),
        })
    }

    /// Make the relation `link` (its `id` is ignored). A relation the
    /// tracker already has is not an error (trackers hold relations as a
    /// set). [`BackendError::Unsupported`]: the tracker does not offer this
    /// relation here. Default: unsupported.
    fn add_link(&self, link: &RemoteLink) -> Result<(), BackendError> {
        Err(BackendError::Unsupported {
            what: format!(
                "adding the relation {} {} -> {}",
                link.kind.as_str(),
                link.from,
                link.to
            ),
        })
    }

    /// Remove the relation `link` as listed by [`Backend::links`]. One
    /// already gone is not an error. Default: unsupported.
    fn remove_link(&self, link: &RemoteLink) -> Result<(), BackendError> {
        Err(BackendError::Unsupported {
            what: format!(
                "removing the relation {} {} -> {}",
                link.kind.as_str(),
                link.from,
                link.to
            ),
        })
    }
}

/// Open the adapter for `spec`, configured from the environment
/// (credentials, `REPOSIX_ALLOWED_ORIGINS`). `agent` names this client to
/// trackers that want one (the sim's `X-Reposix-Agent`).
pub fn open(spec: &BackendSpec, agent: &str) -> Result<Box<dyn Backend>, BackendError> {
    open_with(spec, agent, http::AllowList::from_env()?)
}

/// Like [`open`], with an explicit egress allowlist (the CLI's: the
/// environment's plus the origins recorded in git config).
pub fn open_with(
    spec: &BackendSpec,
    agent: &str,
    allow: http::AllowList,
) -> Result<Box<dyn Backend>, BackendError> {
    let var = |name: &str| std::env::var(name).ok();
    Ok(match spec.kind {
        BackendKind::Sim => Box::new(sim::SimBackend::with_client(
            spec,
            http::HttpClient::with_allowlist(http::Auth::None, agent, allow)?,
        )?),
        BackendKind::Github => {
            Box::new(github::GithubBackend::from_vars(&spec.address, var, allow)?)
        }
        BackendKind::Jira => Box::new(jira::JiraBackend::from_vars(&spec.address, &var, allow)?),
        BackendKind::Confluence => Box::new(confluence::ConfluenceBackend::from_vars(
            &spec.address,
            &var,
            allow,
        )?),
    })
}

/// Text with CRLF line endings normalised to LF (a lone CR is content and
/// stays). Every adapter applies it to the bodies and comments it imports.
pub fn normalize_newlines(text: &str) -> String {
    if text.contains("\r\n") {
        text.replace("\r\n", "\n")
    } else {
        text.to_owned()
    }
}

/// The HTML-comment marker used where a tracker has no hidden field.
pub fn body_marker(id: &str) -> String {
    format!("\n\n<!-- reposix:{id} -->")
}

/// Split a body into (text, marker id) if it ends with [`body_marker`],
/// whose two line breaks may each be `\n` or `\r\n` (and a line break may
/// follow it: web editors add one).
pub fn strip_body_marker(body: &str) -> (String, Option<String>) {
    const OPEN: &str = "<!-- reposix:";
    let trimmed = body
        .strip_suffix("\r\n")
        .or_else(|| body.strip_suffix('\n'))
        .unwrap_or(body);
    if let Some(start) = trimmed.rfind(OPEN) {
        let tail = &trimmed[start + OPEN.len()..];
        let before = &trimmed[..start];
        let text = before
            .strip_suffix('\n')
            .map(|b| b.strip_suffix('\r').unwrap_or(b))
            .and_then(|b| b.strip_suffix('\n'))
            .map(|b| b.strip_suffix('\r').unwrap_or(b));
        if let (Some(text), Some(id)) = (text, tail.strip_suffix(" -->")) {
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return (text.to_owned(), Some(id.to_owned()));
            }
        }
    }
    (body.to_owned(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_reject() {
        let s = BackendSpec::parse("sim::http://127.0.0.1:7878/demo/").expect("valid");
        assert_eq!(s.kind, BackendKind::Sim);
        assert_eq!(s.address, "http://127.0.0.1:7878/demo");
        assert_eq!(s.split_base(), Some(("http://127.0.0.1:7878", "demo")));
        assert!(BackendSpec::parse("github::owner/repo").is_ok());
        assert!(BackendSpec::parse("github::owner").is_err());
        assert!(BackendSpec::parse("gitlab::x/y").is_err());
        assert!(BackendSpec::parse("jira::https://user:tok@site.atlassian.net/P").is_err());
        assert!(BackendSpec::parse("sim:http://x/y").is_err());
        // Atlassian gateway addresses (scoped tokens) and an issue type.
        assert!(BackendSpec::parse("jira::https://api.atlassian.com/ex/jira/0a1b-2c/PROJ").is_ok());
        assert!(BackendSpec::parse("jira::https://a.atlassian.net/PROJ?issuetype=Bug").is_ok());
        assert!(BackendSpec::parse("jira::https://a.atlassian.net/x/PROJ").is_err());
    }

    #[test]
    fn body_markers_round_trip_and_leave_hostile_text_alone() {
        let body = "line\nversion: 999\n<script>x</script>";
        let marked = format!("{body}{}", body_marker("0f3a-77"));
        assert_eq!(
            strip_body_marker(&marked),
            (body.to_owned(), Some("0f3a-77".into()))
        );
        assert_eq!(strip_body_marker(body), (body.to_owned(), None));
        let fake = "text\n\n<!-- reposix:not hex! -->";
        assert_eq!(strip_body_marker(fake), (fake.to_owned(), None));
        // One line break is not a marker separator.
        let glued = "text\n<!-- reposix:0f3a -->";
        assert_eq!(strip_body_marker(glued), (glued.to_owned(), None));
    }

    // Regression (issue 9, point 2): GitHub's web editor saves CRLF, so the
    // marker came back after `\r\n\r\n` and was imported as body text.
    #[test]
    fn markers_are_found_after_crlf_line_breaks() {
        assert_eq!(
            strip_body_marker("a\r\nb\r\n\r\n<!-- reposix:0f3a-77 -->"),
            ("a\r\nb".to_owned(), Some("0f3a-77".into()))
        );
        assert_eq!(
            strip_body_marker("a\n\r\n<!-- reposix:0f3a -->\r\n"),
            ("a".to_owned(), Some("0f3a".into()))
        );
        assert_eq!(normalize_newlines("a\r\nb\rc\n"), "a\nb\rc\n");
        let body = "x\r\n\r\n";
        assert_eq!(
            strip_body_marker(&normalize_newlines(&format!("{body}{}", body_marker("ab")))),
            ("x\n\n".to_owned(), Some("ab".into()))
        );
    }
}
