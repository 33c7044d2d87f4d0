//! Markdown edits in an attached clone of a mirror become events (the
//! seed's Pattern C: `$EDITOR issues/1.md && git commit`, then
//! `reposix sync --backend …`).
//!
//! The base of an edit is the last commit already read (kept in
//! `.git/reposix/markdown-base`) when it is an ancestor of `HEAD`, else the
//! newest bot commit (carrying the mirror trailer) reachable from `HEAD`;
//! with neither, `HEAD` itself becomes the base and nothing is read as an
//! edit. For every `issues/*.md` or `pages/*.md` that differs between base
//! and `HEAD`, the fields the user changed (frontmatter title, status,
//! labels, assignees; the body) are diffed against the base rendering and
//! applied as events by the acting actor. The body is merged three ways
//! (base rendering, current merged body, edited file) so tracker changes
//! imported since the base are kept; the tracker's sync marker that the
//! mirror shows at the end of a body is not part of it.
//!
//! A file is the issue its `reposix_id` names, else the one its `id` (the
//! tracker's) derives, else (a file without either, as a person writes a
//! new one) the issue of the same path in the base; a file new to the
//! branch naming no existing issue becomes a new issue. Deleted files and
//! `comments/` are not read.
//!
//! All or nothing: every changed file is parsed before any is applied; if
//! one is rejected, nothing is applied, the base does not move, and the
//! error names each file and line (fix, commit, and sync again).

use std::collections::{HashMap, HashSet};

use gix::bstr::ByteSlice;

use super::markdown::{parse, RenderedIssue};
use super::MirrorError;
use crate::event::{ActorId, IssueId};
use crate::repo::{Change, NewIssue, Repo, RepoError};
use crate::tracker::body_marker;

/// What reading the markdown edits did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct EditsReport {
    /// Files that differed from their base.
    pub files: usize,
    /// Issues that received events.
    pub issues_changed: usize,
    /// Issues created from new files.
    pub created: usize,
}

/// One changed file the parser rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The file, relative to the work tree.
    pub path: String,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.why)
    }
}

/// Errors reading the repository's history.
#[derive(Debug, thiserror::Error)]
pub enum EditsError {
    /// Git failed.
    #[error("reading markdown edits: {what}")]
    Git {
        /// What was being read.
        what: String,
        /// The git error.
        #[source]
        source: gix::Error,
    },
    /// Changed files the parser rejects; nothing was applied.
    #[error("markdown edits not read, nothing applied: {}", join(.0))]
    Rejected(Vec<Rejection>),
    /// Applying an edit failed.
    #[error("applying the markdown edit in {path}")]
    Apply {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: RepoError,
    },
    /// Recording what was read failed.
    #[error("recording the markdown base in {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn join(r: &[Rejection]) -> String {
    r.iter()
        .map(Rejection::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn git_err(what: impl Into<String>) -> impl FnOnce(gix::Error) -> EditsError {
    let what = what.into();
    move |source| EditsError::Git { what, source }
}

type Files = HashMap<String, gix::hash::ObjectId>;

/// `issues/*.md` and `pages/*.md` of a commit's tree.
fn markdown_files(
    repo: &gix::Repository,
    commit: gix::hash::ObjectId,
) -> Result<Files, EditsError> {
    let tree = repo
        .find_commit(commit)
        .map_err(git_err(format!("commit {commit}")))?
        .tree()
        .map_err(git_err(format!("tree of {commit}")))?;
    let mut out = HashMap::new();
    for dir in ["issues", "pages"] {
        let Some(entry) = tree.find_entry(dir).filter(|e| e.mode().is_tree()) else {
            continue;
        };
        let sub = repo
            .find_tree(entry.object_id())
            .map_err(git_err(format!("{dir}/ in {commit}")))?;
        let decoded = sub
            .decode()
            .map_err(git_err(format!("{dir}/ in {commit}")))?;
        for e in &decoded.entries {
            let name = e.filename.to_str_lossy();
            if e.mode.is_blob() && name.ends_with(".md") {
                out.insert(format!("{dir}/{name}"), e.oid.to_owned());
            }
        }
    }
    Ok(out)
}

fn base_file(repo: &Repo) -> std::path::PathBuf {
    repo.reposix_dir().join("markdown-base")
}

/// Read the user's markdown edits since the base and apply them as events.
pub fn import_markdown_edits(
    repo: &Repo,
    backend_key: &str,
    actor: &ActorId,
    trailer: &str,
) -> Result<EditsReport, EditsError> {
    let git = repo.store().repo();
    let mut report = EditsReport::default();
    let Ok(head) = git.head_id() else {
        return Ok(report); // unborn HEAD: nothing to read
    };
    let head = head.detach();
    let Some(base) = find_base(repo, &git, head, trailer)? else {
        save_base(repo, head)?;
        return Ok(report);
    };
    if base == head {
        return Ok(report);
    }
    let before = markdown_files(&git, base)?;
    let after = markdown_files(&git, head)?;
    let blob = |id: gix::hash::ObjectId, path: &str| -> Result<Vec<u8>, EditsError> {
        Ok(git
            .find_blob(id)
            .map_err(git_err(format!("reading {path} ({id})")))?
            .data
            .clone())
    };
    let mut paths: Vec<_> = after.keys().collect();
    paths.sort();
    let mut edits = Vec::new();
    let mut rejected = Vec::new();
    for path in paths {
        let oid = after[path];
        if before.get(path) == Some(&oid) {
            continue;
        }
        report.files += 1;
        match parse(&blob(oid, path)?) {
            Ok(edited) => {
                // The base is a bot rendering; one that does not parse
                // (an older format) is no base.
                let old = match before.get(path) {
                    Some(id) => parse(&blob(*id, path)?).ok(),
                    None => None,
                };
                edits.push((path, old, edited));
            }
            Err(MirrorError::Markdown { line, why }) => rejected.push(Rejection {
                path: path.clone(),
                line,
                why,
            }),
            Err(other) => rejected.push(Rejection {
                path: path.clone(),
                line: 1,
                why: other.to_string(),
            }),
        }
    }
    if !rejected.is_empty() {
        return Err(EditsError::Rejected(rejected));
    }
    let mut touched = HashSet::new();
    for (path, old, edited) in edits {
        match apply(repo, backend_key, actor, old.as_ref(), &edited) {
            Ok(Some((issue, created))) => {
                touched.insert(issue);
                report.created += usize::from(created);
            }
            Ok(None) => {}
            Err(source) => {
                return Err(EditsError::Apply {
                    path: path.clone(),
                    source,
                })
            }
        }
    }
    report.issues_changed = touched.len();
    save_base(repo, head)?;
    Ok(report)
}

fn save_base(repo: &Repo, head: gix::hash::ObjectId) -> Result<(), EditsError> {
    let path = base_file(repo);
    // Durable: a base that went back would read edits twice.
    crate::store::fs::write_atomic(
        &path,
        format!("{head}\n").as_bytes(),
        crate::store::fs::Durability::Durable,
    )
    .map_err(|source| EditsError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The last processed commit if it is an ancestor of `head`, else the
/// newest bot commit reachable from `head`.
fn find_base(
    repo: &Repo,
    git: &gix::Repository,
    head: gix::hash::ObjectId,
    trailer: &str,
) -> Result<Option<gix::hash::ObjectId>, EditsError> {
    if let Some(saved) = std::fs::read_to_string(base_file(repo))
        .ok()
        .and_then(|s| gix::hash::ObjectId::from_hex(s.trim().as_bytes()).ok())
    {
        let is_ancestor = saved == head
            || git
                .merge_base(saved, head)
                .ok()
                .is_some_and(|b| b.map(|b| b.detach()) == Some(saved));
        if is_ancestor {
            return Ok(Some(saved));
        }
    }
    let walk = git
        .rev_walk([head])
        .sorting(gix::revision::walk::Sorting::ByCommitTime(
            Default::default(),
        ))
        .all()
        .map_err(git_err("walking history"))?;
    // Bounded: a mirror's bot commits are recent; a repository that never
    // had one is not worth walking to the root.
    for info in walk.take(1000) {
        let info = info.map_err(|e| EditsError::Git {
            what: "walking history".into(),
            source: gix::Error::from_error(e),
        })?;
        let commit = info.object().map_err(git_err("reading a commit"))?;
        if super::is_bot_commit(&commit, trailer) {
            return Ok(Some(info.id));
        }
    }
    Ok(None)
}

/// The issue a file names: its `reposix_id`, else the id derived from its
/// tracker `id`.
fn named(backend_key: &str, file: &RenderedIssue) -> Option<IssueId> {
    file.reposix_id
        .as_deref()
        .and_then(|s| s.parse::<IssueId>().ok())
        .or_else(|| {
            file.id
                .as_ref()
                .map(|id| IssueId::derived(&format!("{backend_key}|{id}")))
        })
}

/// `body` without the tracker's sync marker of `issue`, which the mirror
/// shows at the end of the body of issues the tracker holds one for.
fn without_marker(body: &str, issue: IssueId) -> String {
    let marker = body_marker(&issue.to_string());
    match body.strip_suffix(&marker) {
        Some(b) => b.to_owned(),
        None => body.replacen(&marker, "", 1),
    }
}

/// Apply one edited file; returns the issue and whether it was created.
fn apply(
    repo: &Repo,
    backend_key: &str,
    actor: &ActorId,
    old: Option<&RenderedIssue>,
    new: &RenderedIssue,
) -> Result<Option<(IssueId, bool)>, RepoError> {
    let create = || -> Result<Option<(IssueId, bool)>, RepoError> {
        let w = repo.create(
            actor,
            NewIssue {
                title: new.title.clone(),
                body: new.body.clone(),
                status: Some(new.status),
                labels: new.labels.clone(),
                assignees: new.assignees.clone(),
            },
        )?;
        Ok(Some((w.issue, true)))
    };
    let Some(issue) = named(backend_key, new).or_else(|| old.and_then(|o| named(backend_key, o)))
    else {
        // A file naming no issue: a new one (a person's new file).
        return create();
    };
    let current = match repo.show(issue) {
        Ok(s) => s,
        Err(RepoError::Store(crate::store::StoreError::NotFound(_))) if old.is_none() => {
            return create();
        }
        Err(e) => return Err(e),
    };
    // Against the base rendering when there is one, so only what the user
    // changed is applied; a file new to the branch is compared with the
    // current state.
    let (title, status, labels, assignees, body) = match old {
        Some(o) => (
            &o.title,
            o.status,
            &o.labels,
            &o.assignees,
            without_marker(&o.body, issue),
        ),
        None => (
            &current.title,
            current.status,
            &current.labels,
            &current.assignees,
            current.body.clone(),
        ),
    };
    // Editors end a file with a line break: one added at the end of a
    // file whose base had none is not an edit of the body.
    let raw = match old {
        Some(o) if !o.body.ends_with('\n') => new.body.strip_suffix('\n').unwrap_or(&new.body),
        _ => new.body.as_str(),
    };
    let new_body = without_marker(raw, issue);
    let mut changes = Vec::new();
    if new.title != *title {
        changes.push(Change::Title(new.title.clone()));
    }
    if new.status != status {
        changes.push(Change::Status(new.status));
    }
    for l in new.labels.iter().filter(|l| !labels.contains(l)) {
        changes.push(Change::AddLabel(l.clone()));
    }
    for l in labels.iter().filter(|l| !new.labels.contains(l)) {
        changes.push(Change::RemoveLabel(l.clone()));
    }
    for a in new.assignees.iter().filter(|a| !assignees.contains(a)) {
        changes.push(Change::AddAssignee(a.clone()));
    }
    for a in assignees.iter().filter(|a| !new.assignees.contains(a)) {
        changes.push(Change::RemoveAssignee(a.clone()));
    }
    if new_body != body {
        changes.push(Change::Body(crate::crdt::merge3(
            &body,
            &current.body,
            &new_body,
        )));
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let w = repo.apply(issue, actor, &changes)?;
    Ok((!w.events.is_empty()).then_some((issue, false)))
}
