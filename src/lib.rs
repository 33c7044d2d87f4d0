//! reposix: issue trackers kept in git.
//!
//! Issues live as append-only event logs in git refs under
//! `refs/reposix/issues/`, one ref per issue, and are folded into state with
//! CRDT rules, so concurrent writers (people, agents, clones, processes)
//! merge instead of being rejected. The on-disk format is specified in
//! `refs-format.md`.
//!
//! Layers, one folder or file each; a layer uses only the layers above it:
//!
//! | layer | what it holds |
//! |---|---|
//! | [`event`] | the event envelope and its operations, canonical CBOR |
//! | [`time`] | the one place timestamps are parsed and formatted |
//! | [`crdt`] | the pure fold of a set of events into an issue's state |
//! | [`store`] | event logs in refs, the index, the state cache, the one owner of `.git/reposix/` and its one atomic write |
//! | [`git`] | the system `git`: the one spawner, remote resolution, stderr classes, push results, the one redaction of secrets |
//! | [`tracker`] | the `Backend` trait, the HTTP client with its one backoff and the allowlist, one adapter per tracker, the projection (import, export, comments) |
//! | [`repo`] | the local API: config, writes from intent, reads, the list query, the ready queue, fsck |
//! | [`mirror`] | the markdown mirror: render, parse, push, status, edits |
//! | [`sync`] | the workflows that meet other replicas: git remotes, claims pushed to them, and the tracker session (markdown edits, import, export, import again) |
//!
//! The command line (`src/cli/`, one file per command) is the default cargo
//! feature `cli`; `reposix = { default-features = false }` is this library
//! alone. The tracker simulator is its own crate, `reposix-sim`
//! (`crates/reposix-sim`), which depends on nothing here.
//!
//! ```no_run
//! use reposix::event::ActorId;
//! use reposix::repo::{NewIssue, Repo};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let repo = Repo::open(std::path::Path::new("."))?;
//! let actor = ActorId::new("agent-7")?;
//! let new = NewIssue { title: "Flaky test".into(), ..NewIssue::default() };
//! let written = repo.create(&actor, new)?;
//! println!("{}", repo.show(written.issue)?.title);
//! # Ok(())
//! # }
//! ```
//!
//! `examples/agent.rs` goes further: it writes as an agent and syncs with a
//! git remote and a tracker.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod crdt;
pub mod event;
pub mod git;
pub mod mirror;
pub mod repo;
pub mod store;
pub mod sync;
pub mod time;
pub mod tracker;

/// Render an error and its sources as one line: `outer: inner: innermost`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
