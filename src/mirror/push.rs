//! The mirror push: the rendered tree as git objects on top of the mirror
//! branch's tip, one atomic leased push of the branch and the two
//! `refs/mirrors/` refs, the local refs written only after it landed.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use gix::bstr::ByteSlice;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use serde::Serialize;

use super::git::{Askpass, Git, GitOutput};
use super::{
    collect, dir_for, git_err, head_ref, render, synced_at_ref, Credential, MirrorError,
    MirrorFailureReason, MirrorSource, COMMENTS_DIR, DEFAULT_BRANCH, DEFAULT_TRAILER,
    PRIVATE_PREFIX,
};
use crate::git::push::{parse_porcelain, PushStatus};
use crate::git::redact::redact as sanitize;
use crate::store::git::STALE_LOCK;
use crate::store::{GitEventStore, Oid};
use crate::time;
use crate::tracker::BackendKind;

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

/// Write the blobs of the rendered files under `sub/` and their tree;
/// `None` when there are none.
fn write_subtree(
    repo: &gix::Repository,
    sub: &str,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Option<Oid>, MirrorError> {
    let mut tree = gix::objs::Tree::empty();
    for (path, bytes) in files {
        let Some(name) = path.strip_prefix(sub).and_then(|p| p.strip_prefix('/')) else {
            continue;
        };
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

/// The directories a render owns on the mirror's branch (the kind's and
/// `comments/`) with their trees as git objects (`None`: no files).
pub(super) type Subtrees = Vec<(&'static str, Option<Oid>)>;

/// Write the rendered files as the mirror's subtrees.
pub(super) fn write_subtrees(
    repo: &gix::Repository,
    kind: BackendKind,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Subtrees, MirrorError> {
    [dir_for(kind), COMMENTS_DIR]
        .into_iter()
        .map(|sub| Ok((sub, write_subtree(repo, sub, files)?)))
        .collect()
}

/// `base` with the entries of `subtrees` replaced (removed when `None`);
/// every other entry is kept.
fn replace_entries(
    repo: &gix::Repository,
    base: Option<Oid>,
    subtrees: &Subtrees,
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
            .filter(|e| !subtrees.iter().any(|(sub, _)| e.filename == sub.as_bytes()))
            .map(|e| gix::objs::tree::Entry {
                mode: e.mode,
                filename: e.filename.to_owned(),
                oid: e.oid.to_owned(),
            })
            .collect();
    }
    for (sub, oid) in subtrees {
        if let Some(oid) = oid {
            tree.entries.push(gix::objs::tree::Entry {
                mode: gix::objs::tree::EntryKind::Tree.into(),
                filename: (*sub).into(),
                oid: *oid,
            });
        }
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

pub(super) fn tree_of(repo: &gix::Repository, commit: Oid) -> Result<Oid, MirrorError> {
    let what = || format!("reading the mirror's commit {commit}");
    Ok(repo
        .find_commit(commit)
        .map_err(git_err(what()))?
        .tree_id()
        .map_err(git_err(what()))?
        .detach())
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
    /// The branch a clone of the mirror checks out (its `HEAD`), when the
    /// mirror says; `None`: unknown, or a `HEAD` naming no branch (a
    /// clone checks out nothing).
    pub default_branch: Option<String>,
    /// Whether this push pointed the mirror's `HEAD` at the branch.
    pub default_branch_set: bool,
    /// Ref lock files a killed run had left (here, or in a mirror on this
    /// machine) that this push removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale_locks: Vec<String>,
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
    let trailer_ok = opts
        .trailer
        .starts_with(|c: char| c.is_ascii_alphanumeric())
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

/// The mirror as git gets it, as messages show it, and its git directory
/// when it is a repository on this machine. A configured remote whose URL
/// carries credentials is refused like such a URL.
struct Target {
    arg: String,
    display: String,
    local: Option<PathBuf>,
}

fn resolve(store: &GitEventStore, mirror: &str) -> Result<Target, MirrorError> {
    let remote = crate::git::remote::resolve_remote(store, Some(mirror)).map_err(|_| {
        MirrorError::UnknownMirror {
            name: sanitize(mirror),
        }
    })?;
    let repo = store.repo();
    let config = repo.config_snapshot();
    let mut push_url = None;
    for key in ["url", "pushurl"] {
        let url = config
            .string(format!("remote.{}.{key}", remote.arg).as_str())
            .map(|v| v.to_str_lossy().into_owned());
        if url.as_deref().is_some_and(has_credentials) {
            return Err(MirrorError::CredentialsInUrl {
                mirror: sanitize(&remote.display),
            });
        }
        push_url = url.or(push_url);
    }
    let local = local_repo(push_url.as_deref().unwrap_or(&remote.arg));
    Ok(Target {
        arg: remote.arg,
        display: remote.display,
        local,
    })
}

/// The git directory of a mirror given as a path or `file://` URL (as git
/// resolves it: relative to the working directory), if one is there.
fn local_repo(url: &str) -> Option<PathBuf> {
    let path = match url.strip_prefix("file://") {
        Some(p) => p,
        None if url.contains("://") => return None,
        // scp-like `host:path`
        None if url
            .split('/')
            .next()
            .is_some_and(|first| first.contains(':')) =>
        {
            return None
        }
        None => url,
    };
    let path = Path::new(path);
    let git_dir = if path.join(".git").is_dir() {
        path.join(".git")
    } else {
        path.to_path_buf()
    };
    git_dir.join("HEAD").is_file().then_some(git_dir)
}

/// After a push: the mirror's default branch (what a clone checks out),
/// pointed at `branch` when the mirror is on this machine and its `HEAD`
/// names a branch that does not exist (a fresh `git init --bare`): then a
/// clone would check out nothing. A `HEAD` naming an existing branch is the
/// owner's choice and stays. Best effort: the push already landed.
fn default_branch(git: &Git<'_>, target: &Target, branch: &str) -> (Option<String>, bool) {
    let run = |dir: &Path, args: &[&str]| {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        git.run_in(dir, "symbolic-ref", &args)
            .ok()
            .filter(|o| o.status.success())
    };
    if let Some(dir) = &target.local {
        let named = run(dir, &["-q", "HEAD"]).and_then(|o| {
            o.stdout
                .trim()
                .strip_prefix("refs/heads/")
                .map(str::to_owned)
        });
        let rev_parse = |args: &[&str]| {
            let args: Vec<OsString> = args.iter().map(OsString::from).collect();
            git.run_in(dir, "rev-parse", &args)
                .ok()
                .filter(|o| o.status.success())
        };
        let exists = |b: &str| rev_parse(&["-q", "--verify", &format!("refs/heads/{b}")]).is_some();
        // A work tree's HEAD is what is checked out there: never moved.
        let bare = rev_parse(&["--is-bare-repository"]).is_some_and(|o| o.stdout.trim() == "true");
        return match named {
            Some(b) if b == branch || exists(&b) => (Some(b), false),
            Some(_) if bare => match run(dir, &["HEAD", &format!("refs/heads/{branch}")]) {
                Some(_) => (Some(branch.to_owned()), true),
                None => (None, false),
            },
            _ => (None, false),
        };
    }
    (git.remote_head(&target.arg).ok().flatten(), false)
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
    let target = resolve(store, &opts.mirror)?;
    let (remote, display) = (target.arg.clone(), target.display.clone());
    let slug = source.slug();
    let issues = collect(store, source)?;
    let files = render(&issues, source.kind, source.backend.as_deref());
    let repo = store.repo();
    let subtrees = write_subtrees(&repo, source.kind, &files)?;
    let askpass = match &opts.credential {
        Some(_) => Some(Askpass::create()?),
        None => None,
    };
    let git = Git {
        git_dir: store.git_dir(),
        timeout: opts.timeout,
        cancel: opts.cancel.as_deref(),
        credential: opts.credential.as_ref(),
        askpass: askpass.as_ref().map(|a| a.script.as_path()),
        display: &display,
    };
    let branch_ref = format!("refs/heads/{}", opts.branch);
    let head = head_ref(slug);
    let tag_ref = synced_at_ref(slug);
    let private = format!("{PRIVATE_PREFIX}{slug}/{}", opts.branch);
    let trailer = format!("{}: {slug}", opts.trailer);
    // A run killed while git or gix held a ref lock (the fetch into the
    // private ref, the local record, or the `receive-pack` of a mirror on
    // this machine, which also locks `HEAD` when it names the branch, as
    // does our `symbolic-ref`) leaves the lock file behind, and every later
    // push would fail on it: clear those old enough to be a dead writer's.
    let mut stale_locks: Vec<String> = store
        .clear_stale_locks(&[PRIVATE_PREFIX, "refs/mirrors/"])
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    if let Some(dir) = &target.local {
        stale_locks.extend(clear_stale_ref_locks(
            dir,
            &["HEAD", &branch_ref, &head, &tag_ref],
        ));
    }
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
        let root = replace_entries(&repo, base_tree, &subtrees)?;
        let now = time::now_secs();
        let when = time::format_secs(now);
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
        let mut args: Vec<OsString> = crate::git::PUSH_FLAGS.iter().map(OsString::from).collect();
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
                record(
                    &repo,
                    &[(&head, commit), (&tag_ref, tag), (&private, commit)],
                )?;
                let (default_branch, default_branch_set) =
                    default_branch(&git, &target, &opts.branch);
                return Ok(MirrorReport {
                    default_branch,
                    default_branch_set,
                    stale_locks,
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

/// Remove the lock files of `refs` in the repository at `git_dir` (files
/// ref storage) that are older than [`STALE_LOCK`]: left by a killed
/// writer, as git renames a lock into place atomically. Returns the files
/// removed.
fn clear_stale_ref_locks(git_dir: &Path, refs: &[&str]) -> Vec<String> {
    let mut removed = Vec::new();
    for name in refs {
        let lock = git_dir.join(format!("{name}.lock"));
        let stale = std::fs::symlink_metadata(&lock)
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > STALE_LOCK);
        if stale && std::fs::remove_file(&lock).is_ok() {
            removed.push(lock.display().to_string());
        }
    }
    removed
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
    if parsed.is_empty() {
        if out.stderr.contains("does not support --atomic") {
            return Ok(Verdict::NoAtomic);
        }
        return Err(git.failure(&out.stderr, false));
    }
    // git's messages, then one `<ref>: <summary>` per refused ref.
    let mut text = out.stderr.clone();
    for (name, status) in &parsed {
        if let PushStatus::Rejected { reason, .. } | PushStatus::Other(reason) = status {
            text.push_str(&format!("\n{name}: {reason}"));
        }
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
    let now = sig(time::now_secs());
    let mut buf = gix::date::parse::TimeBuf::default();
    repo.edit_references_as(edits, Some(now.to_ref(&mut buf)))
        .map_err(git_err(
            "the mirror was pushed, but recording refs/mirrors/ locally failed",
        ))?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_mark_bot_commits() {
        let key = DEFAULT_TRAILER;
        assert!(has_trailer("Sync\n\nReposix-Origin: sim\n", key));
        assert!(has_trailer("Sync\n\nbody\n\nreposix-origin: sim", key));
        assert!(!has_trailer("Reposix-Origin: sim", key), "subject only");
        assert!(!has_trailer("fix typo\n\nReposix-Origin: sim\n\nmore", key));
        assert!(!has_trailer("fix typo\n\nSigned-off-by: a", key));
    }
}
