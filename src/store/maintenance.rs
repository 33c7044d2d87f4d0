//! Keeping long-lived stores small: loose objects are packed and loose refs
//! folded into `packed-refs` at the points where git itself would.
//!
//! Single edits write loose objects (a few per append); like `git commit`,
//! writers then run `git gc --auto`, which does nothing until there are
//! more loose objects than `gc.auto` allows (6,700 by default) and then
//! packs them in the background (`gc.autoDetach`). The check that decides
//! whether to start git at all is git's own estimate, done here without a
//! process: the number of loose objects in `objects/17/` times 256.
//! Bulk writers (imports, benchmarks) write packs directly and pack the
//! refs they created, so listing 100,000 issue refs reads one file.

use std::path::Path;
use std::process::{Command, Stdio};

use super::GitEventStore;

/// git's default `gc.auto`.
const DEFAULT_GC_AUTO: i64 = 6700;

/// Whether git's `gc --auto` would find too many loose objects.
pub fn too_many_loose(store: &GitEventStore) -> bool {
    let limit = store
        .repo()
        .config_snapshot()
        .integer("gc.auto")
        .unwrap_or(DEFAULT_GC_AUTO);
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
        run_git(store.git_dir(), &["gc", "--auto", "--quiet"]);
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
