//! Keeping long-lived stores small: loose objects are packed and loose refs
//! folded into `packed-refs` at the points where git itself would.
//!
//! Single edits write loose objects (five per append: the event, two or
//! three trees, the commit); like `git commit`, writers then run `git gc
//! --auto`, which packs them in the background (`gc.autoDetach`) once there
//! are more loose objects than `gc.auto` allows. Unless the repository sets
//! `gc.auto` itself, reposix passes [`REPOSIX_GC_AUTO`] (git's default,
//! 6,700, lets 1,300 appends leave 26 MiB of loose objects first). The
//! check that decides whether to start git at all is git's own estimate,
//! done here without a process: the number of loose objects in
//! `objects/17/` times 256.
//! Bulk writers (imports, benchmarks) write packs directly and pack the
//! refs they created, so listing 100,000 issue refs reads one file.

use std::path::Path;
use std::process::{Command, Stdio};

use super::GitEventStore;

/// The `gc.auto` reposix runs `git gc --auto` with when the repository
/// does not set one: about 200 appends' worth of loose objects.
pub const REPOSIX_GC_AUTO: i64 = 1024;

/// The loose-object limit in force: the repository's `gc.auto`, else
/// [`REPOSIX_GC_AUTO`].
fn gc_auto(store: &GitEventStore) -> i64 {
    store
        .repo()
        .config_snapshot()
        .integer("gc.auto")
        .unwrap_or(REPOSIX_GC_AUTO)
}

/// Whether `git gc --auto` would find too many loose objects.
pub fn too_many_loose(store: &GitEventStore) -> bool {
    let limit = gc_auto(store);
    if limit <= 0 {
        return false;
    }
    let per_dir = (limit + 255) / 256;
    let dir = store.git_dir().join("objects").join("17");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let loose = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.len() == 38 && name.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .count() as i64;
    loose > per_dir
}

/// After a single write: let git pack loose objects when there are many.
/// Best effort: a failure only leaves objects loose.
pub fn after_write(store: &GitEventStore) {
    if too_many_loose(store) {
        let limit = format!("gc.auto={}", gc_auto(store));
        run_git(store.git_dir(), &["-c", &limit, "gc", "--auto", "--quiet"]);
    }
}

/// After a bulk write of `refs` new refs: pack them, so that listing them
/// reads `packed-refs` instead of one file each. Best effort.
pub fn after_bulk(git_dir: &Path, refs: u64) {
    if refs >= 256 {
        run_git(git_dir, &["pack-refs", "--all"]);
    }
}

fn run_git(git_dir: &Path, args: &[&str]) {
    let _ = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
