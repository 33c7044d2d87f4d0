//! [`EventStore`] over a git repository, through gix.
//!
//! Objects are written loose (single edits); bulk writers use [`super::bulk`].
//! Ref updates are compare-and-swap transactions that fail immediately on a
//! held lock; the loop here decides what a failure means by re-reading the
//! ref: moved means a lost race (re-parent and retry), unmoved with a lock
//! file present means a concurrent writer (back off and retry), and a lock
//! older than [`STALE_LOCK`] was left by a killed process and is removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use super::layout;
use super::tree::{Diff, Trees};
use super::{
    Appended, EventStore, IssueLog, IssueRef, MergeOutcome, Oid, StoreError, WriteRetrying,
};
use crate::crdt::EventSet;
use crate::event::{check_event_size, DecodeError, Event, EventId, IssueId};

/// A ref lock older than this is taken to be left by a killed writer.
pub const STALE_LOCK: Duration = Duration::from_secs(10);

/// How long an append keeps retrying before giving up.
const APPEND_DEADLINE: Duration = Duration::from_secs(120);

/// [`GitEventStore::clear_stale_locks`] in the repository whose common git
/// directory is `common` (also a remote on this machine, where a
/// `receive-pack` killed with our push leaves its locks).
pub fn clear_stale_locks_in(common: &Path, namespaces: &[&str]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for ns in namespaces {
        let mut dirs = vec![common.join(ns.trim_end_matches('/'))];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                // The file type comes with the directory entry: only
                // lock files cost a stat (10,000 loose refs stay cheap).
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "lock") {
                    continue;
                }
                if older_than(&entry, STALE_LOCK) && std::fs::remove_file(&path).is_ok() {
                    removed.push(path);
                }
            }
        }
    }
    removed
}

/// Whether the file of `entry` was last modified more than `age` ago.
fn older_than(entry: &std::fs::DirEntry, age: Duration) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// A `receive-pack` `.keep` file this old is taken to be left by a killed
/// push whatever host wrote it (git holds one only while it updates refs).
pub const STALE_KEEP: Duration = Duration::from_secs(3600);

/// Remove the `.keep` files a killed `receive-pack` left in the packs of
/// the repository whose common git directory is `common` (a remote on this
/// machine). git 2.47 and later check that a file it moves into place over
/// an existing one has the same content; a keep file names the process
/// that wrote it, so after a push killed between moving its pack into
/// place and removing the keep, every later push of the same objects (the
/// same pack, the same name) is refused with "unable to migrate objects to
/// permanent storage". A keep is stale when it reads `receive-pack <pid>
/// on <host>`, and `<host>` is this machine and no process `<pid>` runs
/// (where `/proc` tells), or it is older than [`STALE_KEEP`]. Other keep
/// files (a user's `git index-pack --keep=<why>`) are left alone.
pub fn clear_stale_keeps_in(common: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(common.join("objects/pack")) else {
        return Vec::new();
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned());
    let proc_fs = Path::new("/proc/self").exists();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("pack-") || !name.ends_with(".keep") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some((pid, on)) = text
            .trim_end()
            .strip_prefix("receive-pack ")
            .and_then(|rest| rest.split_once(" on "))
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let dead_here = proc_fs
            && host.as_deref() == Some(on)
            && !Path::new("/proc").join(pid.to_string()).exists();
        if (dead_here || older_than(&entry, STALE_KEEP)) && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// The git-backed event store.
#[derive(Clone)]
pub struct GitEventStore {
    repo: gix::ThreadSafeRepository,
    git_dir: PathBuf,
    work_dir: PathBuf,
    /// Blob ids of the format markers of layouts 1 and 2.
    markers: [Oid; 2],
}

fn git_err(refname: &str, what: impl Into<String>) -> impl FnOnce(gix::Error) -> StoreError {
    let refname = refname.to_owned();
    let what = what.into();
    move |source| StoreError::Git {
        refname,
        what,
        source,
    }
}

impl GitEventStore {
    /// Open the repository containing `path` (a work tree or git dir).
    pub fn open(path: &Path) -> Result<GitEventStore, StoreError> {
        let repo = gix::discover(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        let git_dir = repo.git_dir().to_path_buf();
        let marker = |version| {
            gix::objs::compute_hash(
                repo.object_hash(),
                gix::objs::Kind::Blob,
                layout::marker_of(version).as_bytes(),
            )
            .expect("BUG: hashing a small buffer cannot fail")
        };
        let markers = [marker(layout::LAYOUT_FLAT), marker(layout::LAYOUT_FANOUT)];
        let work_dir = repo
            .workdir()
            .map_or_else(|| git_dir.clone(), Path::to_path_buf);
        Ok(GitEventStore {
            repo: repo.into_sync(),
            git_dir,
            work_dir,
            markers,
        })
    }

    /// The repository's git directory.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// `.git/reposix/`: the one place reposix's own files live (index,
    /// state cache, configuration, sync marks, projection caches). Every
    /// path under it is built from here.
    pub fn reposix_dir(&self) -> PathBuf {
        self.git_dir.join("reposix")
    }

    /// Where `git` runs for this repository, as `git -C` would: the top of
    /// the work tree, or the git directory of a bare repository. Relative
    /// remote paths resolve against it.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// Remove ref lock files older than [`STALE_LOCK`] under each of
    /// `namespaces` (e.g. `refs/reposix-remotes/`): a killed writer (ours
    /// or a `git fetch` we ran) leaves them, and git refuses to touch the
    /// ref until they go. Git renames a lock into place atomically, so the
    /// ref beside a lock is intact either way. Returns the files removed.
    pub fn clear_stale_locks(&self, namespaces: &[&str]) -> Vec<PathBuf> {
        clear_stale_locks_in(self.repo().common_dir(), namespaces)
    }

    /// A thread-local handle on the repository.
    pub fn repo(&self) -> gix::Repository {
        self.repo.to_thread_local()
    }

    /// Read a ref's target without locking. `None` if absent.
    pub fn read_ref(
        &self,
        repo: &gix::Repository,
        refname: &str,
    ) -> Result<Option<Oid>, StoreError> {
        let found = repo
            .try_find_reference(refname)
            .map_err(git_err(refname, "reading the ref"))?;
        Ok(found.and_then(|r| r.target().try_id().map(|id| id.to_owned())))
    }

    /// The parents of a commit (empty if it cannot be read).
    pub fn parents_of(&self, repo: &gix::Repository, commit: Oid) -> Vec<Oid> {
        repo.find_commit(commit)
            .map(|c| c.parent_ids().map(|p| p.detach()).collect())
            .unwrap_or_default()
    }

    /// Tree access for `refname` (names it in errors).
    pub(crate) fn trees<'r>(&self, repo: &'r gix::Repository, refname: &'r str) -> Trees<'r> {
        Trees {
            repo,
            refname,
            markers: self.markers,
        }
    }

    /// The tree layout version of a commit (its `format` marker), checked.
    pub fn layout_of(
        &self,
        repo: &gix::Repository,
        refname: &str,
        commit: Oid,
    ) -> Result<u32, StoreError> {
        Ok(self.trees(repo, refname).root(commit)?.layout)
    }

    /// The (event id, blob id) pairs of a commit, layout-checked but not
    /// decoded (the cheap view fsck walks history with).
    pub fn event_ids(
        &self,
        repo: &gix::Repository,
        refname: &str,
        commit: Oid,
    ) -> Result<Vec<(EventId, Oid)>, StoreError> {
        let trees = self.trees(repo, refname);
        trees.all(trees.root(commit)?)
    }

    /// What commit `new` adds to commit `old`, reading only the subtrees
    /// that differ: (id, blob) pairs `new` has and `old` lacks, and an
    /// event of `old` that `new` lost, if any.
    pub fn diff_commits(
        &self,
        repo: &gix::Repository,
        refname: &str,
        old: Oid,
        new: Oid,
    ) -> Result<Diff, StoreError> {
        let trees = self.trees(repo, refname);
        trees.diff(trees.root(old)?, trees.root(new)?)
    }

    /// Read, verify and decode every event of the commit `tip`.
    pub fn load_commit(
        &self,
        repo: &gix::Repository,
        refname: &str,
        issue: IssueId,
        tip: Oid,
    ) -> Result<EventSet, StoreError> {
        let load = |repo: &gix::Repository| {
            let entries = self.event_ids(repo, refname, tip)?;
            self.read_events(repo, refname, issue, &entries)
        };
        let mut result = load(repo);
        // `git gc` (started by writers, or by the user) may repack and
        // delete objects while a handle still holds the old list of packs:
        // a commit that was readable a moment ago then reads as missing. A
        // fresh handle sees the new packs; only a second miss is damage.
        for _ in 0..3 {
            match &result {
                Err(e) if crate::error_chain(e).contains("could not be found") => {}
                _ => break,
            }
            let Ok(fresh) = gix::open(&self.git_dir) else {
                break;
            };
            result = load(&fresh);
        }
        result
    }

    /// Load the commit `tip` and refuse it if an event breaks the clock
    /// rule (`refs-format.md`, section 5): damage is never installed.
    fn check_clock(
        &self,
        repo: &gix::Repository,
        refname: &str,
        issue: IssueId,
        tip: Oid,
    ) -> Result<(), StoreError> {
        let foreign = self.load_commit(repo, refname, issue, tip)?;
        if foreign.invalid().is_empty() {
            return Ok(());
        }
        Err(StoreError::InvalidEvents {
            refname: refname.to_owned(),
            invalid: foreign
                .invalid()
                .iter()
                .map(|(id, why)| (*id, why.clone()))
                .collect(),
        })
    }

    /// Read, verify and decode the event blobs `entries`.
    pub fn read_events(
        &self,
        repo: &gix::Repository,
        refname: &str,
        issue: IssueId,
        entries: &[(EventId, Oid)],
    ) -> Result<EventSet, StoreError> {
        let mut set = EventSet::new();
        for &(id, blob_id) in entries {
            let blob = repo
                .find_blob(blob_id)
                .map_err(git_err(refname, format!("reading event blob {blob_id}")))?;
            if EventId::of_bytes(&blob.data) != id {
                return Err(StoreError::Damaged {
                    refname: refname.to_owned(),
                    object: blob_id.to_string(),
                    why: format!("content does not hash to its name {}", id.short()),
                });
            }
            let event = Event::decode(&blob.data).map_err(|source| StoreError::BadEvent {
                refname: refname.to_owned(),
                object: blob_id.to_string(),
                source,
            })?;
            if event.issue != issue {
                return Err(StoreError::Damaged {
                    refname: refname.to_owned(),
                    object: blob_id.to_string(),
                    why: format!("event belongs to issue {}", event.issue),
                });
            }
            set.insert(id, event);
        }
        Ok(set)
    }

    fn lock_path(&self, refname: &str) -> PathBuf {
        self.git_dir.join(format!("{refname}.lock"))
    }

    /// Write the root tree (layout 2) around `events` and a commit of it
    /// on top of `parents`.
    fn write_commit(
        &self,
        repo: &gix::Repository,
        refname: &str,
        events: Option<Oid>,
        parents: &[Oid],
        message: &str,
        author: &str,
    ) -> Result<Oid, StoreError> {
        let marker = repo
            .write_blob_retrying(layout::format_marker().as_bytes())
            .map_err(git_err(refname, "writing the format marker"))?
            .detach();
        let mut root = gix::objs::Tree::empty();
        root.entries = events
            .map(|events_id| gix::objs::tree::Entry {
                mode: gix::objs::tree::EntryKind::Tree.into(),
                filename: layout::EVENTS_ENTRY.into(),
                oid: events_id,
            })
            .into_iter()
            .chain([gix::objs::tree::Entry {
                mode: gix::objs::tree::EntryKind::Blob.into(),
                filename: layout::FORMAT_ENTRY.into(),
                oid: marker,
            }])
            .collect();
        let root_id = repo
            .write_object_retrying(&root)
            .map_err(git_err(refname, "writing the root tree"))?
            .detach();
        let now = crate::time::now_secs();
        let sig = gix::actor::Signature {
            name: author.into(),
            email: format!("{author}@reposix").into(),
            time: gix::date::Time {
                seconds: now,
                offset: 0,
            },
        };
        let commit = gix::objs::Commit {
            tree: root_id,
            parents: parents.iter().copied().collect(),
            author: sig.clone(),
            committer: sig,
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        Ok(repo
            .write_object_retrying(&commit)
            .map_err(git_err(refname, "writing the commit"))?
            .detach())
    }

    /// Compare-and-swap `refname` from `expected` to `new`. `Ok(true)` if it
    /// moved, `Ok(false)` if the caller must re-read and retry.
    fn cas(
        &self,
        repo: &gix::Repository,
        refname: &str,
        expected: Option<Oid>,
        new: Oid,
        started: Instant,
        unexplained: &mut u32,
    ) -> Result<bool, StoreError> {
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    // A reflog lets the next sync recover events that a forced
                    // plain `git fetch +…` overwrote in this ref.
                    force_create_reflog: true,
                    message: "reposix".into(),
                },
                expected: match expected {
                    Some(oid) => PreviousValue::MustExistAndMatch(gix::refs::Target::Object(oid)),
                    None => PreviousValue::MustNotExist,
                },
                new: gix::refs::Target::Object(new),
            },
            name: refname
                .try_into()
                .map_err(|e: gix::refs::name::Error| StoreError::Damaged {
                    refname: refname.to_owned(),
                    object: String::new(),
                    why: format!("invalid ref name: {e}"),
                })?,
            deref: false,
        };
        let sig = gix::actor::Signature {
            name: "reposix".into(),
            email: "reposix@reposix".into(),
            time: gix::date::Time::now_utc(),
        };
        let mut time_buf = gix::date::parse::TimeBuf::default();
        let result = repo
            .refs
            .transaction()
            .prepare(
                [edit],
                gix::lock::acquire::Fail::Immediately,
                gix::lock::acquire::Fail::Immediately,
            )
            .and_then(|t| t.commit(Some(sig.to_ref(&mut time_buf))));
        let err = match result {
            Ok(_) => return Ok(true),
            Err(err) => err,
        };
        if self.read_ref(repo, refname)? != expected {
            return Ok(false); // lost the race
        }
        let lock = self.lock_path(refname);
        // Contention: retry until the deadline, then say which lock.
        let contended = || {
            if started.elapsed() > APPEND_DEADLINE {
                return Err(StoreError::Locked {
                    refname: refname.to_owned(),
                    lock: lock.display().to_string(),
                });
            }
            Ok(false)
        };
        match std::fs::metadata(&lock).and_then(|m| m.modified()) {
            Ok(modified) => {
                if modified.elapsed().unwrap_or_default() > STALE_LOCK {
                    // Left by a killed writer: the ref itself is intact (git
                    // renames the lock into place atomically), so drop it.
                    let _ = std::fs::remove_file(&lock);
                    return Ok(false);
                }
                contended()
            }
            Err(_) => match std::fs::exists(&lock) {
                // A lock there again: another writer took it between the
                // two looks (seen in `eight_processes_hundred_comments_each`,
                // a writer failed with "could not be obtained"): contention.
                Ok(true) => contended(),
                // No lock now: either a writer released it between our
                // attempt and this check (retry), or the failure is not
                // contention at all (a read-only store, a full disk): give
                // up after a few.
                Ok(false) => {
                    // A lock we could not take (another writer, or `git gc`
                    // packing refs) is contention however briefly it was
                    // held; anything else counts towards giving up.
                    if !crate::error_chain(&err).contains("(os error 17)") {
                        *unexplained += 1;
                    }
                    if *unexplained > 50 {
                        return Err(git_err(refname, "updating the ref")(err));
                    }
                    contended()
                }
                Err(_) => Err(git_err(refname, "updating the ref")(err)),
            },
        }
    }

    /// Whether `ancestor` is reachable from `descendant`.
    fn is_ancestor(
        &self,
        repo: &gix::Repository,
        refname: &str,
        ancestor: Oid,
        descendant: Oid,
    ) -> Result<bool, StoreError> {
        if ancestor == descendant {
            return Ok(true);
        }
        let base = repo.merge_base(ancestor, descendant).map_err(git_err(
            refname,
            format!("finding the merge base of {ancestor} and {descendant}"),
        ))?;
        Ok(base.map(|b| b.detach()) == Some(ancestor))
    }
}

/// Events checked and written as blobs, ready for a commit.
struct Sealed {
    /// Event id and blob, sorted and unique.
    blobs: Vec<(EventId, Oid)>,
    /// Who the commit is by (the first event's actor).
    actor: String,
    /// The commit message with its trailers.
    message: String,
}

fn backoff(attempt: u32) {
    // Spreads writers contending for one ref.
    std::thread::sleep(crate::time::backoff(
        attempt,
        Duration::from_micros(200),
        Duration::from_micros(200 << 6),
    ));
}

impl GitEventStore {
    /// Every ref under `prefix` (ending in `/`) whose last component names
    /// an issue, e.g. issue refs fetched into a remote-tracking namespace.
    pub fn list_refs_under(&self, prefix: &str) -> Result<Vec<IssueRef>, StoreError> {
        let repo = self.repo();
        let platform = repo.references().map_err(git_err(prefix, "listing refs"))?;
        let iter = platform
            .prefixed(prefix.trim_end_matches('/'))
            .map_err(git_err(prefix, "listing refs"))?;
        let mut out = Vec::new();
        for r in iter {
            let r = r.map_err(|e| StoreError::Damaged {
                refname: prefix.to_owned(),
                object: String::new(),
                why: format!("unreadable ref: {e}"),
            })?;
            let refname = r.name().as_bstr().to_str_lossy().into_owned();
            let Some(tip) = r.target().try_id().map(|id| id.to_owned()) else {
                out.push(IssueRef {
                    refname,
                    issue: None,
                    tip: Oid::null(repo.object_hash()),
                });
                continue;
            };
            let issue = refname
                .strip_prefix(prefix)
                .and_then(|rest| rest.parse::<IssueId>().ok());
            out.push(IssueRef {
                issue,
                refname,
                tip,
            });
        }
        out.sort_by(|a, b| a.refname.cmp(&b.refname));
        Ok(out)
    }
}

impl EventStore for GitEventStore {
    fn list_refs(&self) -> Result<Vec<IssueRef>, StoreError> {
        self.list_refs_under(layout::ISSUE_REF_PREFIX)
    }

    fn load(&self, issue: IssueId) -> Result<IssueLog, StoreError> {
        let repo = self.repo();
        let refname = layout::issue_ref(issue);
        let tip = self
            .read_ref(&repo, &refname)?
            .ok_or_else(|| StoreError::NotFound(issue.to_string()))?;
        let events = self.load_commit(&repo, &refname, issue, tip)?;
        Ok(IssueLog {
            issue,
            refname,
            tip,
            events,
        })
    }

    fn append(
        &self,
        issue: IssueId,
        events: &[(EventId, Vec<u8>)],
        summary: &str,
    ) -> Result<Appended, StoreError> {
        self.append_with_trailers(issue, events, summary, &[])
    }

    fn merge_tip(&self, issue: IssueId, other: Oid) -> Result<MergeOutcome, StoreError> {
        self.merge_tip_impl(issue, other)
    }
}

/// Content of the marker blob of a state ref.
const STATE_MARKER: &str = "reposix-state 1\n";

impl GitEventStore {
    /// Read a small key-value state ref (e.g. a backend's import cursor):
    /// a commit whose tree holds `format` (`reposix-state 1`) and one blob
    /// per key. Absent ref: empty map.
    pub fn read_state(
        &self,
        refname: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<u8>>, StoreError> {
        let repo = self.repo();
        match self.read_ref(&repo, refname)? {
            None => Ok(Default::default()),
            Some(tip) => self.read_state_at(&repo, refname, tip),
        }
    }

    fn read_state_at(
        &self,
        repo: &gix::Repository,
        refname: &str,
        tip: Oid,
    ) -> Result<std::collections::BTreeMap<String, Vec<u8>>, StoreError> {
        let commit = repo
            .find_commit(tip)
            .map_err(git_err(refname, format!("reading commit {tip}")))?;
        let tree_id = commit
            .tree_id()
            .map_err(git_err(refname, format!("parsing commit {tip}")))?
            .detach();
        let tree = repo
            .find_tree(tree_id)
            .map_err(git_err(refname, format!("reading tree {tree_id}")))?;
        let decoded = tree
            .decode()
            .map_err(git_err(refname, format!("parsing tree {tree_id}")))?;
        let mut out = std::collections::BTreeMap::new();
        let mut marker = false;
        for e in &decoded.entries {
            let name = e.filename.to_str_lossy().into_owned();
            let blob = repo
                .find_blob(e.oid.to_owned())
                .map_err(git_err(refname, format!("reading blob {}", e.oid)))?;
            if name == "format" {
                if blob.data.as_slice() != STATE_MARKER.as_bytes() {
                    return Err(StoreError::Layout {
                        refname: refname.to_owned(),
                        object: e.oid.to_string(),
                        source: layout::LayoutError::BadMarker(
                            String::from_utf8_lossy(&blob.data).into_owned(),
                        ),
                    });
                }
                marker = true;
            } else {
                out.insert(name, blob.data.clone());
            }
        }
        if !marker {
            return Err(StoreError::Layout {
                refname: refname.to_owned(),
                object: tree_id.to_string(),
                source: layout::LayoutError::Missing(layout::FORMAT_ENTRY),
            });
        }
        Ok(out)
    }

    /// Replace a state ref's content with `update(current)`, compare-and-
    /// swap, re-running `update` on the fresh content after a lost race (so
    /// `update` is where concurrent states merge).
    pub fn update_state(
        &self,
        refname: &str,
        message: &str,
        update: impl Fn(
            &std::collections::BTreeMap<String, Vec<u8>>,
        ) -> std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<(), StoreError> {
        let repo = self.repo();
        let started = Instant::now();
        let mut unexplained = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tip = self.read_ref(&repo, refname)?;
            let current = match tip {
                Some(t) => self.read_state_at(&repo, refname, t)?,
                None => Default::default(),
            };
            let next = update(&current);
            if tip.is_some() && next == current {
                return Ok(());
            }
            let mut tree = gix::objs::Tree::empty();
            let mut files: Vec<(String, Vec<u8>)> = next.into_iter().collect();
            files.push(("format".into(), STATE_MARKER.as_bytes().to_vec()));
            files.sort();
            for (name, data) in files {
                let oid = repo
                    .write_blob_retrying(&data)
                    .map_err(git_err(refname, "writing a state blob"))?
                    .detach();
                tree.entries.push(gix::objs::tree::Entry {
                    mode: gix::objs::tree::EntryKind::Blob.into(),
                    filename: name.into(),
                    oid,
                });
            }
            let tree_id = repo
                .write_object_retrying(&tree)
                .map_err(git_err(refname, "writing the state tree"))?
                .detach();
            let sig = gix::actor::Signature {
                name: "reposix".into(),
                email: "reposix@reposix".into(),
                time: gix::date::Time::now_utc(),
            };
            let commit = gix::objs::Commit {
                tree: tree_id,
                parents: tip.into_iter().collect(),
                author: sig.clone(),
                committer: sig,
                encoding: None,
                message: format!("reposix: {message}\n").into(),
                extra_headers: Vec::new(),
            };
            let id = repo
                .write_object_retrying(&commit)
                .map_err(git_err(refname, "writing the state commit"))?
                .detach();
            if self.cas(&repo, refname, tip, id, started, &mut unexplained)? {
                return Ok(());
            }
            backoff(attempt);
        }
    }

    /// [`EventStore::append`] with extra commit trailers, e.g.
    /// `Reposix-Origin: <backend>` on commits written by a projection.
    pub fn append_with_trailers(
        &self,
        issue: IssueId,
        events: &[(EventId, Vec<u8>)],
        summary: &str,
        trailers: &[(&str, &str)],
    ) -> Result<Appended, StoreError> {
        let repo = self.repo();
        let refname = layout::issue_ref(issue);
        let Sealed {
            blobs: ours,
            actor,
            message,
        } = self.sealed_blobs(&repo, &refname, issue, events, summary, trailers)?;
        let started = Instant::now();
        let mut unexplained = 0;
        let mut retries = 0;
        loop {
            let tip = self.read_ref(&repo, &refname)?;
            let Some(commit) = self.commit_on(&repo, &refname, tip, &ours, &message, &actor)?
            else {
                return Ok(Appended {
                    commit: tip.expect("BUG: events already present means a tip"),
                    retries,
                    already_present: true,
                });
            };
            if self.cas(&repo, &refname, tip, commit, started, &mut unexplained)? {
                return Ok(Appended {
                    commit,
                    retries,
                    already_present: false,
                });
            }
            retries += 1;
            backoff(retries);
        }
    }

    /// Write a commit adding `events` on top of the issue ref's current tip
    /// without moving the ref (a claim is pushed to the remote before the
    /// local ref shows it). Returns the tip it was built on and the commit.
    pub fn stage_append(
        &self,
        issue: IssueId,
        events: &[(EventId, Vec<u8>)],
        summary: &str,
    ) -> Result<(Option<Oid>, Oid), StoreError> {
        let repo = self.repo();
        let refname = layout::issue_ref(issue);
        let Sealed {
            blobs: ours,
            actor,
            message,
        } = self.sealed_blobs(&repo, &refname, issue, events, summary, &[])?;
        let tip = self.read_ref(&repo, &refname)?;
        match self.commit_on(&repo, &refname, tip, &ours, &message, &actor)? {
            Some(commit) => Ok((tip, commit)),
            None => Ok((tip, tip.expect("BUG: events already present means a tip"))),
        }
    }

    /// Move the issue ref from `old` to `new` if it still points at `old`
    /// (compare-and-swap); `false` if it moved meanwhile.
    pub fn swap_tip(&self, issue: IssueId, old: Option<Oid>, new: Oid) -> Result<bool, StoreError> {
        let repo = self.repo();
        let refname = layout::issue_ref(issue);
        let mut unexplained = 0;
        self.cas(&repo, &refname, old, new, Instant::now(), &mut unexplained)
    }

    /// Check events as a reader would, write their blobs, and build the
    /// commit message: (event id and blob, sorted and unique; actor; message).
    fn sealed_blobs(
        &self,
        repo: &gix::Repository,
        refname: &str,
        issue: IssueId,
        events: &[(EventId, Vec<u8>)],
        summary: &str,
        trailers: &[(&str, &str)],
    ) -> Result<Sealed, StoreError> {
        // Whatever a reader would reject is refused here, before anything
        // is written: one bad write must not make the issue unreadable.
        let mut actor = None;
        for (id, bytes) in events {
            let refused = |source| StoreError::Refused {
                refname: refname.to_owned(),
                event: id.short(),
                source,
            };
            check_event_size(bytes.len()).map_err(refused)?;
            let event = Event::decode(bytes).map_err(refused)?;
            if EventId::of_bytes(bytes) != *id {
                return Err(refused(DecodeError::Invalid {
                    what: "event id (not the hash of its bytes)",
                    value: id.to_hex(),
                }));
            }
            if event.issue != issue {
                return Err(refused(DecodeError::Invalid {
                    what: "issue (the event belongs to another issue)",
                    value: event.issue.to_string(),
                }));
            }
            actor.get_or_insert_with(|| event.actor.to_string());
        }
        let mut ours = Vec::with_capacity(events.len());
        for (id, bytes) in events {
            let oid = repo
                .write_blob_retrying(bytes)
                .map_err(git_err(refname, format!("writing event {}", id.short())))?
                .detach();
            ours.push((*id, oid));
        }
        let actor = actor.unwrap_or_else(|| "reposix".into());
        let mut message = format!("reposix: {summary}\n\n");
        for (key, value) in trailers {
            message.push_str(&format!("{key}: {value}\n"));
        }
        for (id, _) in events {
            message.push_str(&format!("Reposix-Event: {id}\n"));
        }
        ours.sort_by_key(|(id, _)| *id);
        ours.dedup_by_key(|(id, _)| *id);
        Ok(Sealed {
            blobs: ours,
            actor,
            message,
        })
    }

    /// The commit adding `ours` on `tip` (`None`: every event is there).
    fn commit_on(
        &self,
        repo: &gix::Repository,
        refname: &str,
        tip: Option<Oid>,
        ours: &[(EventId, Oid)],
        message: &str,
        actor: &str,
    ) -> Result<Option<Oid>, StoreError> {
        // Only the trees on the new events' paths are read and written
        // (layout 2); a layout-1 tip is rewritten once, as layout 2.
        let trees = self.trees(repo, refname);
        let events = match tip {
            Some(t) => {
                let root = trees.root(t)?;
                match trees.insert(root.layout, &mut Vec::new(), root.events, ours)? {
                    Some(events) => events,
                    None => return Ok(None),
                }
            }
            None => trees.build(&mut Vec::new(), ours)?,
        };
        let parents: Vec<Oid> = tip.into_iter().collect();
        self.write_commit(repo, refname, Some(events), &parents, message, actor)
            .map(Some)
    }

    fn merge_tip_impl(&self, issue: IssueId, other: Oid) -> Result<MergeOutcome, StoreError> {
        let repo = self.repo();
        let refname = layout::issue_ref(issue);
        let trees = self.trees(&repo, &refname);
        let theirs = trees.root(other)?;
        let started = Instant::now();
        let mut unexplained = 0;
        let mut attempt = 0;
        let mut verified_against: Option<Option<Oid>> = None;
        loop {
            attempt += 1;
            let tip = self.read_ref(&repo, &refname)?;
            // Never install damage: the foreign history must load cleanly.
            // The events the local tip holds were verified when they came;
            // only what the foreign tip adds is read (and every tree that
            // differs is layout-checked on the way).
            if verified_against != Some(tip) {
                match tip {
                    Some(t) => {
                        let added = trees.diff(trees.root(t)?, theirs)?.added;
                        self.read_events(&repo, &refname, issue, &added)?;
                        // The clock rule needs the ancestors of what is
                        // added: the whole foreign set, read once.
                        if !added.is_empty() {
                            self.check_clock(&repo, &refname, issue, other)?;
                        }
                    }
                    None => self.check_clock(&repo, &refname, issue, other)?,
                }
                verified_against = Some(tip);
            }
            let Some(tip) = tip else {
                if self.cas(&repo, &refname, None, other, started, &mut unexplained)? {
                    return Ok(MergeOutcome::Created);
                }
                backoff(attempt);
                continue;
            };
            if self.is_ancestor(&repo, &refname, other, tip)? {
                return Ok(MergeOutcome::UpToDate);
            }
            let ours = trees.root(tip)?;
            let superset = trees.diff(ours, theirs)?.lost.is_none();
            let (new, outcome) = if superset && self.is_ancestor(&repo, &refname, tip, other)? {
                (other, MergeOutcome::FastForward)
            } else {
                let message =
                    format!("reposix: merge\n\nReposix-Merge: {tip}\nReposix-Merge: {other}\n");
                let events = trees.union_roots(ours, theirs)?;
                let commit =
                    self.write_commit(&repo, &refname, events, &[tip, other], &message, "reposix")?;
                (commit, MergeOutcome::Merged)
            };
            if self.cas(&repo, &refname, Some(tip), new, started, &mut unexplained)? {
                return Ok(outcome);
            }
            backoff(attempt);
        }
    }
}
