//! The on-disk layout of an issue log, as pure functions over names and
//! tree entries (no I/O), so that decoding can be fuzzed and reasoned about.
//!
//! ```text
//! refs/reposix/issues/<issue-uuid>  -> commit
//! commit^{tree}
//!   format          blob   "reposix-events 1\n"   (checked first)
//!   events/         tree   every event of the issue reachable from this commit
//!     <blake3-hex>  blob   canonical CBOR of one event, named by its id
//! ```

use crate::event::{EventId, IssueId};

/// Namespace of issue refs.
pub const ISSUE_REF_PREFIX: &str = "refs/reposix/issues/";

/// The tree layout version this build writes and reads.
pub const LAYOUT_VERSION: u32 = 1;

/// Name of the format-marker entry in every commit's root tree.
pub const FORMAT_ENTRY: &str = "format";

/// Name of the events subtree.
pub const EVENTS_ENTRY: &str = "events";

/// The exact content of the format marker blob for [`LAYOUT_VERSION`].
pub fn format_marker() -> String {
    format!("reposix-events {LAYOUT_VERSION}\n")
}

/// Errors in the layout of a tree or marker.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The marker blob is not a reposix marker at all.
    #[error("format marker is not a reposix marker: {0:?}")]
    BadMarker(String),
    /// The marker names a version this build cannot read.
    #[error("unsupported format version {found} (supported: {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A required root entry is missing.
    #[error("tree has no `{0}` entry")]
    Missing(&'static str),
    /// An entry that has no place in the layout.
    #[error("unexpected tree entry {name:?} (mode {mode:o})")]
    Unexpected {
        /// Entry name (lossy).
        name: String,
        /// Entry mode.
        mode: u32,
    },
}

/// Kind of a tree entry, as far as the layout cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular (non-executable) file.
    Blob,
    /// A subtree.
    Tree,
    /// Anything else (executable, symlink, submodule).
    Other(u32),
}

/// Parse a format marker blob.
pub fn parse_marker(bytes: &[u8]) -> Result<u32, LayoutError> {
    let text = std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.strip_prefix("reposix-events "))
        .and_then(|s| s.strip_suffix('\n'))
        // Shortest decimal only: "01" is not a marker (fuzz target
        // decode_tree, crash-a1822f67), so one version has one marker.
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 9
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s.len() == 1 || !s.starts_with('0'))
        });
    let Some(n) = text.and_then(|s| s.parse::<u32>().ok()) else {
        let mut shown = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
        if bytes.len() > 40 {
            shown.push('…');
        }
        return Err(LayoutError::BadMarker(shown));
    };
    if n != LAYOUT_VERSION {
        return Err(LayoutError::UnsupportedVersion {
            found: n,
            supported: LAYOUT_VERSION,
        });
    }
    Ok(n)
}

/// Where the root entries of a commit tree point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEntries<Oid> {
    /// The format marker blob.
    pub format: Oid,
    /// The events subtree (`None` for an issue log with no events).
    pub events: Option<Oid>,
}

/// Check a root tree's entries.
pub fn parse_root<'a, Oid: Clone + 'a>(
    entries: impl IntoIterator<Item = (&'a [u8], EntryKind, Oid)>,
) -> Result<RootEntries<Oid>, LayoutError> {
    let mut format = None;
    let mut events = None;
    for (name, kind, oid) in entries {
        match (name, kind) {
            (b"format", EntryKind::Blob) => format = Some(oid),
            (b"events", EntryKind::Tree) => events = Some(oid),
            (name, kind) => return Err(unexpected(name, kind)),
        }
    }
    Ok(RootEntries {
        format: format.ok_or(LayoutError::Missing(FORMAT_ENTRY))?,
        events,
    })
}

/// Check the events subtree's entries: each a blob named by a 64-digit
/// lower-case hex event id.
pub fn parse_events<'a, Oid: 'a>(
    entries: impl IntoIterator<Item = (&'a [u8], EntryKind, Oid)>,
) -> Result<Vec<(EventId, Oid)>, LayoutError> {
    entries
        .into_iter()
        .map(|(name, kind, oid)| {
            let id = std::str::from_utf8(name)
                .ok()
                .filter(|s| {
                    s.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                })
                .and_then(|s| s.parse::<EventId>().ok());
            match (id, kind) {
                (Some(id), EntryKind::Blob) => Ok((id, oid)),
                _ => Err(unexpected(name, kind)),
            }
        })
        .collect()
}

fn unexpected(name: &[u8], kind: EntryKind) -> LayoutError {
    let mode = match kind {
        EntryKind::Blob => 0o100644,
        EntryKind::Tree => 0o040000,
        EntryKind::Other(m) => m,
    };
    let mut name = String::from_utf8_lossy(&name[..name.len().min(80)]).into_owned();
    if name.len() >= 80 {
        name.push('…');
    }
    LayoutError::Unexpected { name, mode }
}

/// The ref name of an issue.
pub fn issue_ref(issue: IssueId) -> String {
    format!("{ISSUE_REF_PREFIX}{issue}")
}

/// The issue a ref name belongs to, if it is a well-formed issue ref.
pub fn issue_of_ref(name: &str) -> Option<IssueId> {
    name.strip_prefix(ISSUE_REF_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_names_versions() {
        assert_eq!(parse_marker(format_marker().as_bytes()), Ok(1));
        assert_eq!(
            parse_marker(b"reposix-events 2\n"),
            Err(LayoutError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        assert!(matches!(
            parse_marker(b"hello"),
            Err(LayoutError::BadMarker(_))
        ));
        assert!(matches!(
            parse_marker(b"reposix-events 99999999999\n"),
            Err(LayoutError::BadMarker(_))
        ));
        // Regression (fuzz target decode_tree, crash-a1822f67): a leading
        // zero was read as version 1.
        assert!(matches!(
            parse_marker(b"reposix-events 01\n"),
            Err(LayoutError::BadMarker(_))
        ));
    }

    #[test]
    fn ref_names_round_trip() {
        let id = IssueId::new_random();
        assert_eq!(issue_of_ref(&issue_ref(id)), Some(id));
        assert_eq!(issue_of_ref("refs/reposix/issues/not-a-uuid"), None);
        assert_eq!(issue_of_ref("refs/heads/main"), None);
    }

    #[test]
    fn upper_case_event_names_are_rejected() {
        let name = "AB".repeat(32);
        assert!(parse_events([(name.as_bytes(), EntryKind::Blob, ())]).is_err());
        let name = "ab".repeat(32);
        assert!(parse_events([(name.as_bytes(), EntryKind::Blob, ())]).is_ok());
    }
}
