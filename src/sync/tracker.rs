//! A sync with a tracker, as `reposix sync --backend NAME` and
//! `reposix mirror sync` run it, for any program that links the library.
//!
//! One run ([`TrackerSession::run`]):
//! 1. committed edits to the markdown files of a mirror clone become events
//!    (`crate::mirror::edits`), so this same run exports them;
//! 2. import: what changed on the tracker since the cursor (or everything,
//!    with `reconcile`) is recorded as events;
//! 3. export: what changed here is sent, after the caller confirmed the
//!    first publication of local-only issues to a tracker none of them is
//!    bound to yet;
//! 4. import again, which records nothing new unless the tracker moved
//!    meanwhile (it records the revisions the export wrote).
//!
//! The tracker is opened with the repository's allowlist (environment, git
//! config and the origins recorded for attached trackers, see
//! [`crate::repo::trackers`]) and identity map, so HTTP reaches no origin
//! the user did not allow.

use std::collections::BTreeMap;

use crate::event::{ActorId, IssueId};
use crate::mirror::edits::{import_markdown_edits, EditsError, EditsReport};
use crate::repo::{Repo, RepoError};
use crate::store::index::IssueSummary;
use crate::tracker::projection::{ExportReport, ImportReport, ProjectError, Projection};
use crate::tracker::{self, http, Backend, BackendError, BackendSpec};

/// Errors of a tracker sync. Local work is intact whatever the error.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No tracker attached under that name.
    #[error("no backend named {name}")]
    NoBackend {
        /// The name asked for.
        name: String,
    },
    /// The repository (its configuration or its store) failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The tracker could not be opened (bad address, refused origin,
    /// missing credentials).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Committed markdown edits could not be read; nothing was applied
    /// or sent.
    #[error(transparent)]
    MarkdownEdits(#[from] EditsError),
    /// Import or export failed.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// Commits a forced fetch dropped could not be looked for (a reflog or
    /// the store could not be read); nothing was sent.
    #[error(transparent)]
    Recover(#[from] crate::sync::SyncError),
    /// Local-only issues would be published to a tracker none of them is
    /// bound to, and the caller did not confirm it.
    #[error("not exporting: {local} local issues would be published to {name}, where nothing of this repository is yet")]
    ConfirmationNeeded {
        /// The tracker.
        name: String,
        /// How many local issues would be created there.
        local: usize,
    },
}

/// What a run does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerSyncOptions {
    /// Skip export.
    pub import_only: bool,
    /// Skip import (the import after the export still runs).
    pub export_only: bool,
    /// Walk the whole tracker instead of the cursor, and export every
    /// issue instead of those that changed.
    pub reconcile: bool,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrackerReport {
    /// The tracker's local name.
    pub backend: String,
    /// Its `<kind>::<address>`.
    pub spec: String,
    /// Issues whose commits a forced fetch had dropped, merged back from
    /// their reflogs before anything was imported or exported.
    pub recovered: Vec<IssueId>,
    /// Reflog entries that could not be merged back, per issue.
    pub unrecoverable: BTreeMap<IssueId, String>,
    /// Committed markdown edits read as events.
    pub markdown_edits: EditsReport,
    /// The first import (`None` with `export_only`).
    pub import: Option<ImportReport>,
    /// The export (`None` with `import_only`).
    pub export: Option<ExportReport>,
}

/// One attached tracker, opened for a sync.
pub struct TrackerSession {
    name: String,
    spec: BackendSpec,
    actor: ActorId,
    tracker: Box<dyn Backend>,
}

impl TrackerSession {
    /// Open the tracker attached as `name`, acting as `actor` (who records
    /// imports and exports; the HTTP agent is `reposix-<actor>`).
    pub fn open(repo: &Repo, name: &str, actor: ActorId) -> Result<TrackerSession, SessionError> {
        let spec = repo
            .backends()?
            .remove(name)
            .ok_or_else(|| SessionError::NoBackend {
                name: name.to_owned(),
            })?;
        let allow = repo.allowlist()?;
        let mut tracker = tracker::open_with(&spec, &format!("reposix-{actor}"), allow)?;
        tracker.set_identities(repo.identity_map()?);
        Ok(TrackerSession {
            name: name.to_owned(),
            spec,
            actor,
            tracker,
        })
    }

    /// The tracker's local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tracker's spec as attached.
    pub fn spec(&self) -> &BackendSpec {
        &self.spec
    }

    /// Who records imports and exports.
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Where rate-limit waits and renames are told (one line each).
    pub fn set_notice(&mut self, notice: http::Notice) {
        self.tracker.set_notice(notice);
    }

    /// The tracker itself (for a dry run, which wraps it).
    pub fn into_tracker(self) -> Box<dyn Backend> {
        self.tracker
    }

    /// The address the tracker now answers as, if it was renamed there
    /// (the attached spec stays this tracker's identity).
    pub fn relocated(&self) -> Option<BackendSpec> {
        self.tracker.relocated()
    }

    /// How stale the markdown mirror of this tracker is, if one was ever
    /// synced: a sentence to add to a failure's hint.
    pub fn staleness(&self, repo: &Repo) -> Option<String> {
        crate::mirror::staleness(repo.store(), self.spec.kind.as_str())
    }

    /// Run the sync (see the module header). `confirm` is asked, with the
    /// number of local-only issues, before they are first published to a
    /// tracker none of this repository's issues is bound to; `false` ends
    /// the run with [`SessionError::ConfirmationNeeded`] after the import.
    pub fn run(
        &self,
        repo: &Repo,
        opts: TrackerSyncOptions,
        progress: &dyn Fn(&str),
        confirm: &dyn Fn(usize) -> bool,
    ) -> Result<TrackerReport, SessionError> {
        // A forced `git fetch` may have dropped this clone's own import
        // and export records: working without them would import and
        // export again what they record.
        let store = repo.store();
        let recovery = crate::sync::recover_from_reflogs(
            store,
            &store.repo(),
            &crate::sync::local_issue_tips(store)?,
        )?;
        let p = Projection::new(
            repo.store(),
            self.tracker.as_ref(),
            self.actor.clone(),
            progress,
        );
        let trailer = repo
            .config_string("reposix.mirrorTrailer")
            .unwrap_or_else(|| crate::mirror::DEFAULT_TRAILER.to_owned());
        let markdown_edits = import_markdown_edits(repo, p.key(), &self.actor, &trailer)?;
        let import = if opts.export_only {
            None
        } else {
            Some(p.import(opts.reconcile)?)
        };
        let export = if opts.import_only {
            None
        } else {
            let (local, bound) = exposure(repo, p.key())?;
            if local > 0 && bound == 0 && !confirm(local) {
                return Err(SessionError::ConfirmationNeeded {
                    name: self.name.clone(),
                    local,
                });
            }
            let e = if opts.reconcile {
                p.export_all()?
            } else {
                p.export()?
            };
            p.import(false)?;
            Some(e)
        };
        Ok(TrackerReport {
            backend: self.name.clone(),
            spec: self.spec.to_spec_string(),
            recovered: recovery.recovered,
            unrecoverable: recovery.damaged,
            markdown_edits,
            import,
            export,
        })
    }
}

/// Local issues an export would create on the tracker `key` (not bound to
/// it, not merged), and how many issues are bound to it.
pub fn exposure(repo: &Repo, key: &str) -> Result<(usize, usize), RepoError> {
    let listing = repo.list()?;
    let bound = |s: &&IssueSummary| {
        s.remotes.iter().any(|(b, _)| b == key) || s.gone.iter().any(|(b, _)| b == key)
    };
    let with = listing.issues.iter().filter(bound).count();
    let local = listing
        .issues
        .iter()
        .filter(|s| !s.merged && !bound(s))
        .count();
    Ok((local, with))
}
