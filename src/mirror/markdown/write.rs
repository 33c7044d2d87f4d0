//! Writing rendered files to a directory: never through a symlink, temp
//! files created with `O_EXCL`, `--prune` limited to what reposix wrote.

use super::*;

// ---------------------------------------------------------------------------
// Writing rendered files to a directory

/// What [`write_files`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteReport {
    /// Files written (new or changed), relative paths.
    pub written: Vec<String>,
    /// Files already holding the rendered bytes.
    pub unchanged: usize,
    /// `.md` files in the rendered directories that the render does not have.
    pub stale: Vec<String>,
    /// Whether the stale files were removed.
    pub pruned: bool,
}

/// `dir/sub` as a real directory, created when missing. A symlink (or
/// anything else) there is refused: writing or pruning through it would
/// touch files outside `dir`.
pub(super) fn real_dir(
    dir: &Path,
    sub: &str,
    create: bool,
) -> Result<Option<PathBuf>, MirrorError> {
    let path = dir.join(sub);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => Ok(Some(path)),
        Ok(m) => Err(MirrorError::Invalid {
            what: "mirror directory",
            value: path.display().to_string(),
            why: if m.file_type().is_symlink() {
                "is a symbolic link: refusing to write or delete through it"
            } else {
                "is not a directory"
            },
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Ok(None);
            }
            std::fs::create_dir(&path).map_err(io_err(&path))?;
            Ok(Some(path))
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Replace `file` (a regular file, a symlink, or nothing) with `bytes`:
/// a new temporary file in the same directory (`O_EXCL`, random name),
/// synced, renamed over the entry. A symlink is replaced, never followed.
pub(super) fn replace_file(target: &Path, file: &Path, bytes: &[u8]) -> Result<(), MirrorError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".reposix-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // What `std::fs::write` asks for; the umask applies.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(target).map_err(io_err(target))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(tmp.path()))?;
    tmp.persist(file).map_err(|e| io_err(file)(e.error))?;
    Ok(())
}

/// Write rendered files (paths as [`render`] makes them) under `dir`,
/// each atomically, skipping files that already hold the bytes. `.md`
/// files in the rendered directories (the kind's and `comments/`) that
/// the render lacks are listed, and removed with `prune`. Never follows a
/// symlink to write or delete: a symlinked directory is refused, a
/// symlinked file is replaced by a regular file, a stale symlink is
/// removed itself.
pub fn write_files(
    dir: &Path,
    kind: BackendKind,
    files: &BTreeMap<String, Vec<u8>>,
    prune: bool,
) -> Result<WriteReport, MirrorError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut report = WriteReport {
        pruned: prune,
        ..WriteReport::default()
    };
    let subs = [dir_for(kind), COMMENTS_DIR];
    for path in files.keys() {
        let ok = path.split_once('/').is_some_and(|(d, n)| {
            subs.contains(&d) && n.strip_suffix(".md").is_some_and(safe_name)
        });
        if !ok {
            return Err(MirrorError::Invalid {
                what: "rendered path",
                value: path.clone(),
                why: "not <dir>/<safe name>.md",
            });
        }
    }
    // Every directory is checked before anything is written.
    for sub in subs {
        real_dir(dir, sub, false)?;
    }
    let mut stale = BTreeSet::new();
    for sub in subs {
        let ours: BTreeMap<&str, &Vec<u8>> = files
            .iter()
            .filter_map(|(path, bytes)| {
                let name = path.strip_prefix(sub)?.strip_prefix('/')?;
                Some((name, bytes))
            })
            .collect();
        let Some(target) = real_dir(dir, sub, !ours.is_empty())? else {
            continue;
        };
        let mut changed = false;
        for (name, bytes) in &ours {
            let file = target.join(name);
            let same = match std::fs::symlink_metadata(&file) {
                Ok(m) if m.is_file() => std::fs::read(&file).is_ok_and(|old| old == **bytes),
                Ok(m) if m.is_dir() => {
                    return Err(MirrorError::Invalid {
                        what: "mirror file",
                        value: file.display().to_string(),
                        why: "is a directory",
                    });
                }
                _ => false,
            };
            if same {
                report.unchanged += 1;
                continue;
            }
            replace_file(&target, &file, bytes)?;
            changed = true;
            report.written.push(format!("{sub}/{name}"));
        }
        let entries = std::fs::read_dir(&target).map_err(io_err(&target))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&target))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // The entry itself, not what a symlink points at.
            let kind = entry.file_type().map_err(io_err(&entry.path()))?;
            if !name.ends_with(".md") || kind.is_dir() || ours.contains_key(name.as_str()) {
                continue;
            }
            if prune {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(io_err(&p))?;
                changed = true;
            }
            stale.insert(format!("{sub}/{name}"));
        }
        if changed {
            sync_dir(&target)?;
        }
    }
    report.stale = stale.into_iter().collect();
    Ok(report)
}

/// Make renames and removals in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), MirrorError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
