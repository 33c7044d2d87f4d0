//! reposix: issue trackers kept in git.
//!
//! Issues live as append-only event logs in git refs under
//! `refs/reposix/issues/`, one ref per issue, and are folded into state with
//! CRDT rules, so concurrent writers (people, agents, clones, processes)
//! merge instead of being rejected. The on-disk format is specified in
//! `refs-format.md`.
//!
//! Layers, dependencies pointing one way:
//! [`event`] -> [`crdt`] -> [`store`] -> [`repo`], [`sync`] -> `cli`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agents;
pub mod backend;
pub mod crdt;
pub mod event;
pub mod git_process;
pub mod mirror;
pub mod project;
pub mod query;
pub mod redact;
pub mod repo;
pub mod store;
pub mod sync;
pub mod time;
pub mod timestamp;

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
