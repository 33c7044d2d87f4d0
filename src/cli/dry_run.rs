//! `reposix sync --backend NAME --dry-run`: what import and export would
//! do, with nothing changed.
//!
//! The real projection runs, unchanged, on a scratch copy of the
//! repository (a temporary bare repository borrowing the objects through
//! `objects/info/alternates`, with copies of `refs/reposix/*` and of
//! `.git/reposix/`), against [`DryRunBackend`]: reads reach the tracker,
//! writes are recorded and answered with what the tracker would have
//! answered. The repository, its refs and the tracker are left as they
//! were; the scratch copy is deleted when the run ends.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use reposix::repo::Repo;
use reposix::tracker::http::Notice;
use reposix::tracker::{
    Backend, BackendError, BackendKind, BackendSpec, Capabilities, IdentityMap, IssuePatch,
    NewRemoteIssue, RemoteComment, RemoteIssue, RemoteLink, RemoteLinks, Revision,
};

use super::{Exit, Failure};

/// One write the sync would have made.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Planned {
    /// A new tracker issue.
    Create {
        /// Its title.
        title: String,
    },
    /// A change to a tracker issue.
    Update {
        /// The tracker's id.
        remote_id: String,
        /// The fields that would change.
        fields: Vec<&'static str>,
    },
    /// A new comment.
    Comment {
        /// The tracker issue (a `(new N)` placeholder for one created in
        /// the same run).
        remote_id: String,
    },
    /// A comment's text replaced.
    EditComment {
        /// The tracker issue.
        remote_id: String,
        /// The comment.
        comment_id: String,
    },
    /// A deletion (a duplicate or a deleted comment).
    Delete {
        /// What would be deleted.
        what: String,
    },
    /// A relation (typed link) made or removed.
    Link {
        /// `add` or `remove`.
        change: &'static str,
        /// `blocks`, `duplicates`, `relates` or `parent`.
        kind: &'static str,
        /// The blocker, duplicate or parent.
        from: String,
        /// The other end.
        to: String,
    },
}

/// A tracker that answers reads and records writes.
pub struct DryRunBackend {
    inner: Box<dyn Backend>,
    planned: Mutex<Vec<Planned>>,
    /// States this run would have produced, by remote id.
    fabricated: Mutex<HashMap<String, RemoteIssue>>,
}

impl DryRunBackend {
    /// Wrap `inner` (configure its notices and identities first).
    pub fn new(inner: Box<dyn Backend>) -> DryRunBackend {
        DryRunBackend {
            inner,
            planned: Mutex::new(Vec::new()),
            fabricated: Mutex::new(HashMap::new()),
        }
    }

    /// What the run would have written, in order.
    pub fn planned(&self) -> Vec<Planned> {
        self.planned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn plan(&self, p: Planned) {
        self.planned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
    }

    fn current(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError> {
        if let Some(r) = self
            .fabricated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(remote_id)
        {
            return Ok(Some(r.clone()));
        }
        self.inner.get(remote_id)
    }

    fn remember(&self, r: &RemoteIssue) {
        self.fabricated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r.remote_id.clone(), r.clone());
    }
}

fn now() -> String {
    reposix::time::format_secs(reposix::time::now_secs())
}

impl Backend for DryRunBackend {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
    fn instance(&self) -> String {
        self.inner.instance()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn list_changed(
        &self,
        cursor: Option<&str>,
    ) -> Result<(Vec<RemoteIssue>, Option<String>), BackendError> {
        self.inner.list_changed(cursor)
    }
    fn get(&self, remote_id: &str) -> Result<Option<RemoteIssue>, BackendError> {
        self.current(remote_id)
    }
    fn create(&self, new: &NewRemoteIssue) -> Result<RemoteIssue, BackendError> {
        let n = self
            .fabricated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            + 1;
        self.plan(Planned::Create {
            title: new.title.clone(),
        });
        let r = RemoteIssue {
            remote_id: format!("(new {n})"),
            title: new.title.clone(),
            body: new.body.clone(),
            status: new.status,
            labels: new.labels.clone(),
            assignees: new.assignees.clone(),
            revision: Revision {
                order: 1,
                token: "dry-run".into(),
            },
            created_at: now().into(),
            updated_at: now().into(),
            marker: Some(new.marker.clone()),
        };
        self.remember(&r);
        Ok(r)
    }
    fn update(
        &self,
        remote_id: &str,
        patch: &IssuePatch,
        _expected: &Revision,
    ) -> Result<RemoteIssue, BackendError> {
        let mut r = self
            .current(remote_id)?
            .ok_or_else(|| BackendError::Malformed {
                what: format!("dry run: updating {remote_id}"),
                why: "the tracker no longer has it".into(),
            })?;
        let mut fields = Vec::new();
        if let Some(t) = &patch.title {
            r.title = t.clone();
            fields.push("title");
        }
        if let Some(b) = &patch.body {
            r.body = b.clone();
            fields.push("body");
        }
        if let Some(s) = patch.status {
            r.status = s;
            fields.push("status");
        }
        if let Some(l) = &patch.labels {
            r.labels = l.clone();
            fields.push("labels");
        }
        if let Some(a) = &patch.assignees {
            r.assignees = a.clone();
            fields.push("assignees");
        }
        r.revision = Revision {
            order: r.revision.order + 1,
            token: format!("{}+dry-run", r.revision.token),
        };
        r.updated_at = now().into();
        self.plan(Planned::Update {
            remote_id: remote_id.to_owned(),
            fields,
        });
        self.remember(&r);
        Ok(r)
    }
    fn find_by_marker(
        &self,
        marker: &str,
        since: Option<&str>,
    ) -> Result<Option<RemoteIssue>, BackendError> {
        let mine = self
            .fabricated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|r| r.marker.as_deref() == Some(marker))
            .cloned();
        match mine {
            Some(r) => Ok(Some(r)),
            None => self.inner.find_by_marker(marker, since),
        }
    }
    fn comments(&self, remote_id: &str) -> Result<Vec<RemoteComment>, BackendError> {
        if remote_id.starts_with("(new ") {
            return Ok(Vec::new());
        }
        self.inner.comments(remote_id)
    }
    fn add_comment(
        &self,
        remote_id: &str,
        body: &str,
        marker: &str,
    ) -> Result<RemoteComment, BackendError> {
        self.plan(Planned::Comment {
            remote_id: remote_id.to_owned(),
        });
        Ok(RemoteComment {
            remote_id: format!("(new comment on {remote_id})"),
            author: "reposix".into(),
            body: body.to_owned(),
            created_at: now().into(),
            updated_at: now().into(),
            marker: Some(marker.to_owned()),
        })
    }
    fn edit_comment(
        &self,
        remote_id: &str,
        comment_id: &str,
        body: &str,
    ) -> Result<RemoteComment, BackendError> {
        self.plan(Planned::EditComment {
            remote_id: remote_id.to_owned(),
            comment_id: comment_id.to_owned(),
        });
        Ok(RemoteComment {
            remote_id: comment_id.to_owned(),
            author: "reposix".into(),
            body: body.to_owned(),
            created_at: now().into(),
            updated_at: now().into(),
            marker: None,
        })
    }
    fn delete_issue(&self, remote_id: &str) -> Result<(), BackendError> {
        self.plan(Planned::Delete {
            what: format!("issue {remote_id}"),
        });
        Ok(())
    }
    fn delete_comment(&self, remote_id: &str, comment_id: &str) -> Result<(), BackendError> {
        self.plan(Planned::Delete {
            what: format!("comment {comment_id} of issue {remote_id}"),
        });
        Ok(())
    }
    fn set_notice(&mut self, notice: Notice) {
        self.inner.set_notice(notice);
    }
    fn set_identities(&mut self, ids: IdentityMap) {
        self.inner.set_identities(ids);
    }
    fn labels_equal(&self, a: &[String], b: &[String]) -> bool {
        self.inner.labels_equal(a, b)
    }
    fn relocated(&self) -> Option<BackendSpec> {
        self.inner.relocated()
    }
    fn links(&self, remote_id: &str, fresh: bool) -> Result<RemoteLinks, BackendError> {
        if remote_id.starts_with("(new ") {
            return Ok(RemoteLinks::default());
        }
        self.inner.links(remote_id, fresh)
    }
    fn add_link(&self, link: &RemoteLink) -> Result<(), BackendError> {
        self.plan(Planned::Link {
            change: "add",
            kind: link.kind.as_str(),
            from: link.from.clone(),
            to: link.to.clone(),
        });
        Ok(())
    }
    fn remove_link(&self, link: &RemoteLink) -> Result<(), BackendError> {
        self.plan(Planned::Link {
            change: "remove",
            kind: link.kind.as_str(),
            from: link.from.clone(),
            to: link.to.clone(),
        });
        Ok(())
    }
}

/// A scratch copy of `repo` (see the module header); dropped with the
/// returned temp dir.
pub fn scratch(repo: &Repo) -> Result<(tempfile::TempDir, Repo), Failure> {
    let io = |what: &str, e: &dyn std::fmt::Display| {
        Failure::new(Exit::Failure, "io", format!("dry run: {what}: {e}"))
    };
    let tmp = tempfile::Builder::new()
        .prefix("reposix-dry-run-")
        .tempdir()
        .map_err(|e| io("temp dir", &e))?;
    let dir = tmp.path().join("scratch.git");
    gix::init_bare(&dir).map_err(|e| io("git init", &e))?;
    let objects = repo.store().repo().common_dir().join("objects");
    let objects = std::path::absolute(&objects).unwrap_or(objects);
    std::fs::create_dir_all(dir.join("objects/info")).map_err(|e| io("objects/info", &e))?;
    std::fs::write(
        dir.join("objects/info/alternates"),
        format!("{}\n", objects.display()),
    )
    .map_err(|e| io("alternates", &e))?;
    let git = |git_dir: &Path, args: &[&str], input: Option<String>| {
        let mut cmd = reposix::git::command(git_dir);
        cmd.args(args);
        let out = match input {
            None => reposix::git::run(cmd, std::time::Duration::from_secs(120), None)
                .map_err(|e| io("git", &format!("{e:?}")))?,
            Some(text) => {
                // update-ref --stdin: feed through a file (stdin is closed).
                let f = tmp.path().join("refs.txt");
                std::fs::write(&f, text).map_err(|e| io("refs", &e))?;
                cmd.stdin(std::fs::File::open(&f).map_err(|e| io("refs", &e))?);
                reposix::git::run(cmd, std::time::Duration::from_secs(120), None)
                    .map_err(|e| io("git", &format!("{e:?}")))?
            }
        };
        if !out.status.success() {
            return Err(io(&format!("git {}", args.join(" ")), &out.stderr.trim()));
        }
        Ok(out.stdout)
    };
    let refs = git(
        repo.store().git_dir(),
        &[
            "for-each-ref",
            "--format=create %(refname) %(objectname)",
            "refs/reposix/",
        ],
        None,
    )?;
    if !refs.is_empty() {
        git(&dir, &["update-ref", "--stdin"], Some(refs))?;
    }
    copy_dir(&repo.reposix_dir(), &dir.join("reposix")).map_err(|e| io("copying state", &e))?;
    let copy = Repo::open(&dir)?;
    Ok((tmp, copy))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    for e in entries {
        let e = e?;
        let ty = e.file_type()?;
        let target = to.join(e.file_name());
        if ty.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else if ty.is_file() && !e.file_name().to_string_lossy().ends_with(".lock") {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}
