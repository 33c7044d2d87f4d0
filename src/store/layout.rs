//! The on-disk layout of an issue log, as pure functions over names and
//! tree entries (no I/O), so that decoding can be fuzzed and reasoned about.
//!
//! ```text
//! refs/reposix/issues/<issue-uuid>  -> commit
//! commit^{tree}
//!   format          blob   "reposix-events 2\n"   (checked first)
//!   events/         tree   every event of the issue reachable from this commit
//!     <blake3-hex>  blob   canonical CBOR of one event, named by its id
//!     <2 hex>/      tree   (layout 2) the events whose id continues with
//!                          these digits, once a directory holds more than
//!                          [`FANOUT_LIMIT`] events
//! ```
//!
//! Layout 1 keeps every event flat in `events/`, so an append rewrites a
//! tree as large as the log. Layout 2 fans a directory out by the next two
//! hex digits of the ids as soon as it holds more than [`FANOUT_LIMIT`]
//! events (as git notes do): an append rewrites a few trees of at most a
//! few hundred entries whatever the size of the log. The tree of an event
//! set is a function of the set ([`FanoutModel`]), so replicas holding the
//! same events hold the same trees.

use crate::event::{EventId, IssueId};

/// Namespace of issue refs.
pub const ISSUE_REF_PREFIX: &str = "refs/reposix/issues/";

/// The tree layout version this build writes (the `format` marker of the
/// commits it makes). Not the event envelope version (`v` of each event,
/// [`crate::event::EVENT_FORMAT_VERSION`]).
pub const LAYOUT_VERSION: u32 = 2;

/// Layout 1: every event flat in `events/`.
pub const LAYOUT_FLAT: u32 = 1;

/// Layout 2: `events/` fanned out by id prefix past [`FANOUT_LIMIT`].
pub const LAYOUT_FANOUT: u32 = 2;

/// The tree layout versions this build reads, as named in errors.
pub const SUPPORTED_LAYOUTS: &str = "1, 2";

/// Most events one directory of a layout-2 `events/` tree holds flat; a
/// directory with more fans out into subdirectories named by the next two
/// hex digits of the ids.
pub const FANOUT_LIMIT: usize = 256;

/// Name of the format-marker entry in every commit's root tree.
pub const FORMAT_ENTRY: &str = "format";

/// Name of the events subtree.
pub const EVENTS_ENTRY: &str = "events";

/// The exact content of the format marker blob for [`LAYOUT_VERSION`].
pub fn format_marker() -> String {
    marker_of(LAYOUT_VERSION)
}

/// The exact content of the format marker blob of layout `version`.
pub fn marker_of(version: u32) -> String {
    format!("reposix-events {version}\n")
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
        /// The versions this build reads.
        supported: &'static str,
    },
    /// A required root entry is missing.
    #[error("tree has no `{0}` entry")]
    Missing(&'static str),
    /// An event filed under a directory its id does not start with (the
    /// event id and the directory).
    #[error("event {} is filed under events/{}", .0.0, .0.1)]
    Misplaced(Box<(String, String)>),
    /// A layout-2 directory holding both events and subdirectories.
    #[error("directory events/{0} mixes events and subdirectories")]
    Mixed(String),
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
    if n != LAYOUT_FLAT && n != LAYOUT_FANOUT {
        return Err(LayoutError::UnsupportedVersion {
            found: n,
            supported: SUPPORTED_LAYOUTS,
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
        .map(|(name, kind, oid)| match (event_name(name), kind) {
            (Some(id), EntryKind::Blob) => Ok((id, oid)),
            _ => Err(unexpected(name, kind)),
        })
        .collect()
}

/// The event id an entry name spells (64 lower-case hex digits).
fn event_name(name: &[u8]) -> Option<EventId> {
    std::str::from_utf8(name)
        .ok()
        .filter(|s| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .and_then(|s| s.parse::<EventId>().ok())
}

/// A checked layout-2 directory: either flat events or subdirectories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dir<Oid> {
    /// Events (sorted by id), at most [`FANOUT_LIMIT`] in a canonical tree.
    Flat(Vec<(EventId, Oid)>),
    /// Subdirectories by next id byte (sorted).
    Fanned(Vec<(u8, Oid)>),
}

/// The path of the directory at `prefix` (ids' first bytes), relative to
/// `events/`: `ab/cd` for `[0xab, 0xcd]`.
pub fn dir_path(prefix: &[u8]) -> String {
    prefix
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Check the entries of the layout-2 directory whose ids start with
/// `prefix` (the bytes of the directory names above it; empty for
/// `events/` itself).
pub fn parse_dir<'a, Oid: 'a>(
    prefix: &[u8],
    entries: impl IntoIterator<Item = (&'a [u8], EntryKind, Oid)>,
) -> Result<Dir<Oid>, LayoutError> {
    let mut events = Vec::new();
    let mut subs = Vec::new();
    for (name, kind, oid) in entries {
        match kind {
            EntryKind::Blob => {
                let id = event_name(name).ok_or_else(|| unexpected(name, kind))?;
                if !id.0.starts_with(prefix) {
                    return Err(LayoutError::Misplaced(Box::new((
                        id.to_hex(),
                        dir_path(prefix),
                    ))));
                }
                events.push((id, oid));
            }
            EntryKind::Tree
                if name.len() == 2
                    && prefix.len() < 31
                    && name
                        .iter()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) =>
            {
                let hex = std::str::from_utf8(name).expect("BUG: checked ASCII hex digits");
                let byte = u8::from_str_radix(hex, 16).expect("BUG: checked two hex digits");
                subs.push((byte, oid));
            }
            _ => return Err(unexpected(name, kind)),
        }
    }
    match (events.is_empty(), subs.is_empty()) {
        (false, false) => Err(LayoutError::Mixed(dir_path(prefix))),
        (_, true) => {
            events.sort_by_key(|(id, _)| *id);
            Ok(Dir::Flat(events))
        }
        (true, false) => {
            subs.sort_by_key(|(b, _)| *b);
            Ok(Dir::Fanned(subs))
        }
    }
}

/// The canonical layout-2 placement of a growing set of event ids: a pure
/// model of the `events/` tree that the store's writers and the bulk writer
/// follow (a directory holds its events flat while there are at most
/// [`FANOUT_LIMIT`], else one subdirectory per next id byte).
#[derive(Debug, Default, Clone)]
pub struct FanoutModel {
    root: ModelDir,
}

#[derive(Debug, Clone)]
enum ModelDir {
    Flat(std::collections::BTreeSet<EventId>),
    Fanned(std::collections::BTreeMap<u8, ModelDir>),
}

impl Default for ModelDir {
    fn default() -> Self {
        ModelDir::Flat(Default::default())
    }
}

/// A file move that a split makes, as paths relative to the root tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The old path.
    pub from: String,
    /// The new path.
    pub to: String,
}

/// The path of event `id` in a directory at depth `depth`, relative to
/// the root tree.
pub fn event_path(id: &EventId, depth: usize) -> String {
    if depth == 0 {
        format!("{EVENTS_ENTRY}/{id}")
    } else {
        format!("{EVENTS_ENTRY}/{}/{id}", dir_path(&id.0[..depth]))
    }
}

impl FanoutModel {
    /// An empty model.
    pub fn new() -> FanoutModel {
        FanoutModel::default()
    }

    /// Add `id`. Returns `None` if it was present, else the moves the
    /// insertion made (when a directory fanned out) and the new event's
    /// path, in the order a tree editor must apply them.
    pub fn insert(&mut self, id: EventId) -> Option<(Vec<Move>, String)> {
        let mut dir = &mut self.root;
        let mut depth = 0;
        loop {
            match dir {
                ModelDir::Fanned(subs) => {
                    dir = subs.entry(id.0[depth]).or_default();
                    depth += 1;
                }
                ModelDir::Flat(ids) => {
                    if !ids.insert(id) {
                        return None;
                    }
                    if ids.len() <= FANOUT_LIMIT || depth >= 31 {
                        return Some((Vec::new(), event_path(&id, depth)));
                    }
                    return Some(self.settle(id));
                }
            }
        }
    }

    /// After a split, split any directory still over the limit on `id`'s
    /// path and return the moves and `id`'s final path.
    fn settle(&mut self, id: EventId) -> (Vec<Move>, String) {
        let mut moves = Vec::new();
        let mut dir = &mut self.root;
        let mut depth = 0;
        loop {
            match dir {
                ModelDir::Fanned(subs) => {
                    dir = subs.entry(id.0[depth]).or_default();
                    depth += 1;
                }
                ModelDir::Flat(ids) if ids.len() > FANOUT_LIMIT && depth < 31 => {
                    let all = std::mem::take(ids);
                    let mut subs: std::collections::BTreeMap<u8, ModelDir> = Default::default();
                    for e in all {
                        if e != id {
                            moves.push(Move {
                                from: event_path(&e, depth),
                                to: event_path(&e, depth + 1),
                            });
                        }
                        if let ModelDir::Flat(s) = subs.entry(e.0[depth]).or_default() {
                            s.insert(e);
                        }
                    }
                    *dir = ModelDir::Fanned(subs);
                }
                ModelDir::Flat(_) => return (moves, event_path(&id, depth)),
            }
        }
    }

    /// Every event with its path relative to the root tree, by id.
    pub fn paths(&self) -> Vec<(EventId, String)> {
        fn walk(d: &ModelDir, depth: usize, out: &mut Vec<(EventId, String)>) {
            match d {
                ModelDir::Flat(ids) => out.extend(ids.iter().map(|i| (*i, event_path(i, depth)))),
                ModelDir::Fanned(subs) => subs.values().for_each(|s| walk(s, depth + 1, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.root, 0, &mut out);
        out.sort();
        out
    }
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
        assert_eq!(parse_marker(format_marker().as_bytes()), Ok(2));
        assert_eq!(parse_marker(b"reposix-events 1\n"), Ok(1));
        let err = parse_marker(b"reposix-events 3\n").expect_err("a future version");
        assert_eq!(
            err,
            LayoutError::UnsupportedVersion {
                found: 3,
                supported: "1, 2"
            }
        );
        assert_eq!(
            err.to_string(),
            "unsupported format version 3 (supported: 1, 2)"
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

    fn id_with(first: &[u8], n: u64) -> EventId {
        let mut bytes = *blake3::hash(&n.to_le_bytes()).as_bytes();
        bytes[..first.len()].copy_from_slice(first);
        EventId(bytes)
    }

    #[test]
    fn model_fans_out_past_the_limit_and_moves_every_event_once() {
        let mut m = FanoutModel::new();
        let ids: Vec<EventId> = (0..FANOUT_LIMIT as u64 + 1)
            .map(|n| id_with(&[], n))
            .collect();
        for id in &ids[..FANOUT_LIMIT] {
            let (moves, path) = m.insert(*id).expect("new");
            assert!(moves.is_empty());
            assert_eq!(path, format!("events/{id}"));
        }
        assert!(m.insert(ids[0]).is_none(), "a duplicate is no insert");
        let last = ids[FANOUT_LIMIT];
        let (moves, path) = m.insert(last).expect("new");
        assert_eq!(moves.len(), FANOUT_LIMIT);
        assert_eq!(path, format!("events/{:02x}/{last}", last.0[0]));
        for (id, p) in m.paths() {
            assert_eq!(p, event_path(&id, 1));
        }
    }

    #[test]
    fn model_splits_again_when_every_id_shares_the_next_byte() {
        let mut m = FanoutModel::new();
        let mut all_moves = 0;
        for n in 0..=FANOUT_LIMIT as u64 {
            let (moves, _) = m.insert(id_with(&[7, 9], n)).expect("new");
            all_moves += moves.len();
        }
        // Splits at the root, in events/07 and in events/07/09 (the ids
        // differ from their third byte on): every old event moved three
        // times, each move applied in order.
        assert_eq!(all_moves, 3 * FANOUT_LIMIT);
        for (id, p) in m.paths() {
            assert_eq!(p, event_path(&id, 3), "{p}");
        }
    }

    #[test]
    fn dirs_are_either_flat_or_fanned_and_events_sit_under_their_prefix() {
        let a = id_with(&[0xab], 1);
        let name = a.to_hex();
        let flat = parse_dir(&[0xab], [(name.as_bytes(), EntryKind::Blob, ())]).expect("valid");
        assert_eq!(flat, Dir::Flat(vec![(a, ())]));
        assert!(matches!(
            parse_dir(&[0xac], [(name.as_bytes(), EntryKind::Blob, ())]),
            Err(LayoutError::Misplaced(_))
        ));
        let fanned = parse_dir(&[], [(&b"ab"[..], EntryKind::Tree, ())]).expect("valid");
        assert_eq!(fanned, Dir::Fanned(vec![(0xab, ())]));
        assert!(matches!(
            parse_dir(
                &[],
                [
                    (&b"ab"[..], EntryKind::Tree, ()),
                    (name.as_bytes(), EntryKind::Blob, ())
                ]
            ),
            Err(LayoutError::Mixed(_))
        ));
        for bad in [&b"AB"[..], b"a", b"abc", b"zz"] {
            assert!(
                parse_dir(&[], [(bad, EntryKind::Tree, ())]).is_err(),
                "{bad:?}"
            );
        }
    }
}
