//! Replacing a file atomically: the one way reposix writes its own files
//! (index, sync marks, configuration under `.git/reposix/`).
//!
//! The new content goes to a temporary file created in the target's own
//! directory with a fresh random name and `O_EXCL` (so it never opens
//! something planted there, a symlink included, and two writers never
//! share one), then is renamed over the target: a reader sees the old file
//! or the new one, never a mix. With [`Durability::Durable`] the file is
//! fsynced before the rename and the directory after it, so a crash or
//! power loss leaves the old content or the new, not an empty file.

use std::io::Write;
use std::path::Path;

/// How much a write must survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A cache that can be rebuilt: atomic, not fsynced.
    Cache,
    /// Data that matters (configuration, marks that decide what is
    /// scanned): fsync the file and its directory.
    Durable,
}

/// Replace `path` with `bytes` (creating its directory if needed).
pub fn write_atomic(path: &Path, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if durability == Durability::Durable {
        tmp.as_file().sync_all()?;
    }
    // On error the temporary file is removed when `tmp` drops.
    tmp.persist(path).map_err(|e| e.error)?;
    if durability == Durability::Durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsync a directory, so that a rename into it is on disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("f");
        write_atomic(&path, b"one", Durability::Durable).expect("first write");
        write_atomic(&path, b"two", Durability::Cache).expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["f"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        // Regression (issue 10, defect 12): temp names were predictable
        // (`<name>.tmp.<pid>`) and opened without O_EXCL, so a symlink
        // planted at that name redirected the write.
        let dir = tempfile::tempdir().expect("temp dir");
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"keep").expect("write outside");
        let path = dir.path().join("target");
        std::os::unix::fs::symlink(&outside, &path).expect("symlink");
        // The names the old copies used for their temporary files.
        let pid = std::process::id();
        for planted in [format!("target.tmp.{pid}"), format!("tmp.{pid}")] {
            std::os::unix::fs::symlink(&outside, dir.path().join(planted)).expect("symlink");
        }
        write_atomic(&path, b"new", Durability::Durable).expect("write");
        assert_eq!(std::fs::read(&outside).expect("read"), b"keep");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert!(!std::fs::symlink_metadata(&path)
            .expect("meta")
            .file_type()
            .is_symlink());
    }
}
