//! Reading and writing the `events/` trees of both layouts (see
//! [`super::layout`]): whole-set walks for loading, path-only edits for
//! appends, unions for merges and diffs between two commits, each touching
//! only the subtrees that differ.
//!
//! Every tree read here is checked against the layout before use, so a
//! walk doubles as verification (fsck relies on it). Writes follow the
//! canonical placement, so the tree of a set does not depend on the order
//! in which its events arrived.

use std::collections::BTreeMap;

use gix::bstr::ByteSlice;

use super::layout::{self, Dir, EntryKind, FANOUT_LIMIT, LAYOUT_FANOUT, LAYOUT_FLAT};
use super::{Oid, StoreError, WriteRetrying};
use crate::event::EventId;

/// A commit's root tree, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    /// The tree layout version its `format` marker names.
    pub layout: u32,
    /// The `events` tree (`None`: an empty log).
    pub events: Option<Oid>,
}

/// What a diff between two event trees found.
#[derive(Debug, Default)]
pub struct Diff {
    /// Events (id, blob) the second tree has and the first lacks.
    pub added: Vec<(EventId, Oid)>,
    /// An event of the first tree that the second lacks, if any.
    pub lost: Option<EventId>,
}

/// Tree access for one ref (named in errors).
pub(crate) struct Trees<'r> {
    pub repo: &'r gix::Repository,
    pub refname: &'r str,
    /// Blob ids of the markers of layouts 1 and 2 (skip reading them).
    pub markers: [Oid; 2],
}

fn entry_kind(mode: gix::objs::tree::EntryMode) -> EntryKind {
    match mode.kind() {
        gix::objs::tree::EntryKind::Blob => EntryKind::Blob,
        gix::objs::tree::EntryKind::Tree => EntryKind::Tree,
        _ => EntryKind::Other(u32::from(mode.value())),
    }
}

impl Trees<'_> {
    fn git_err(&self, what: String) -> impl FnOnce(gix::Error) -> StoreError + '_ {
        move |source| StoreError::Git {
            refname: self.refname.to_owned(),
            what,
            source,
        }
    }

    fn layout_err(&self, object: Oid) -> impl FnOnce(layout::LayoutError) -> StoreError + '_ {
        move |source| StoreError::Layout {
            refname: self.refname.to_owned(),
            object: object.to_string(),
            source,
        }
    }

    /// Read and check a commit's root tree.
    pub fn root(&self, commit: Oid) -> Result<Root, StoreError> {
        let obj = self
            .repo
            .find_object(commit)
            .map_err(self.git_err(format!("reading commit {commit}")))?;
        if obj.kind != gix::objs::Kind::Commit {
            return Err(StoreError::Damaged {
                refname: self.refname.to_owned(),
                object: commit.to_string(),
                why: format!("expected a commit, found a {}", obj.kind),
            });
        }
        let tree_id = obj
            .into_commit()
            .tree_id()
            .map_err(self.git_err(format!("parsing commit {commit}")))?
            .detach();
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(self.git_err(format!("reading tree {tree_id}")))?;
        let decoded = tree
            .decode()
            .map_err(self.git_err(format!("parsing tree {tree_id}")))?;
        let root = layout::parse_root(
            decoded
                .entries
                .iter()
                .map(|e| (e.filename.as_bytes(), entry_kind(e.mode), e.oid.to_owned())),
        )
        .map_err(self.layout_err(tree_id))?;
        let layout = if root.format == self.markers[1] {
            LAYOUT_FANOUT
        } else if root.format == self.markers[0] {
            LAYOUT_FLAT
        } else {
            let blob = self
                .repo
                .find_blob(root.format)
                .map_err(self.git_err(format!("reading format marker {}", root.format)))?;
            layout::parse_marker(&blob.data).map_err(self.layout_err(root.format))?
        };
        Ok(Root {
            layout,
            events: root.events,
        })
    }

    /// Read and check one directory of an events tree.
    pub fn dir(&self, layout: u32, prefix: &[u8], tree_id: Oid) -> Result<Dir<Oid>, StoreError> {
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(self.git_err(format!("reading events tree {tree_id}")))?;
        let decoded = tree
            .decode()
            .map_err(self.git_err(format!("parsing events tree {tree_id}")))?;
        let entries = decoded
            .entries
            .iter()
            .map(|e| (e.filename.as_bytes(), entry_kind(e.mode), e.oid.to_owned()));
        if layout == LAYOUT_FLAT {
            return layout::parse_events(entries)
                .map(Dir::Flat)
                .map_err(self.layout_err(tree_id));
        }
        layout::parse_dir(prefix, entries).map_err(self.layout_err(tree_id))
    }

    /// Every (event id, blob id) under `root`, sorted by id.
    pub fn all(&self, root: Root) -> Result<Vec<(EventId, Oid)>, StoreError> {
        let mut out = Vec::new();
        if let Some(t) = root.events {
            self.collect(root.layout, &mut Vec::new(), t, &mut out)?;
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    fn collect(
        &self,
        layout: u32,
        prefix: &mut Vec<u8>,
        tree: Oid,
        out: &mut Vec<(EventId, Oid)>,
    ) -> Result<(), StoreError> {
        match self.dir(layout, prefix, tree)? {
            Dir::Flat(events) => out.extend(events),
            Dir::Fanned(subs) => {
                for (byte, sub) in subs {
                    prefix.push(byte);
                    self.collect(layout, prefix, sub, out)?;
                    prefix.pop();
                }
            }
        }
        Ok(())
    }

    fn write_tree(&self, entries: Vec<gix::objs::tree::Entry>) -> Result<Oid, StoreError> {
        let mut tree = gix::objs::Tree::empty();
        tree.entries = entries;
        // Names in one directory are all event ids or all two-digit
        // subdirectories: byte order is git's tree order.
        tree.entries.sort_by(|a, b| a.filename.cmp(&b.filename));
        Ok(self
            .repo
            .write_object_retrying(&tree)
            .map_err(self.git_err("writing an events tree".into()))?
            .detach())
    }

    fn write_flat(&self, events: &[(EventId, Oid)]) -> Result<Oid, StoreError> {
        self.write_tree(
            events
                .iter()
                .map(|(id, oid)| gix::objs::tree::Entry {
                    mode: gix::objs::tree::EntryKind::Blob.into(),
                    filename: id.to_hex().into(),
                    oid: *oid,
                })
                .collect(),
        )
    }

    fn write_fanned(&self, subs: &BTreeMap<u8, Oid>) -> Result<Oid, StoreError> {
        self.write_tree(
            subs.iter()
                .map(|(byte, oid)| gix::objs::tree::Entry {
                    mode: gix::objs::tree::EntryKind::Tree.into(),
                    filename: format!("{byte:02x}").into(),
                    oid: *oid,
                })
                .collect(),
        )
    }

    /// Write the canonical layout-2 directory at `prefix` holding `events`
    /// (sorted by id, unique).
    pub fn build(
        &self,
        prefix: &mut Vec<u8>,
        events: &[(EventId, Oid)],
    ) -> Result<Oid, StoreError> {
        if events.len() <= FANOUT_LIMIT || prefix.len() >= 31 {
            return self.write_flat(events);
        }
        let depth = prefix.len();
        let mut subs = BTreeMap::new();
        for group in events.chunk_by(|a, b| a.0 .0[depth] == b.0 .0[depth]) {
            let byte = group[0].0 .0[depth];
            prefix.push(byte);
            let sub = self.build(prefix, group)?;
            prefix.pop();
            subs.insert(byte, sub);
        }
        self.write_fanned(&subs)
    }

    /// Add `new` (sorted by id, unique) to the directory `dir` at `prefix`
    /// (read as `layout`), writing layout 2. `None` when every event was
    /// there already.
    pub fn insert(
        &self,
        layout: u32,
        prefix: &mut Vec<u8>,
        dir: Option<Oid>,
        new: &[(EventId, Oid)],
    ) -> Result<Option<Oid>, StoreError> {
        let current = match dir {
            Some(t) => self.dir(layout, prefix, t)?,
            None => Dir::Flat(Vec::new()),
        };
        match current {
            Dir::Flat(have) => {
                let merged = union(&have, new);
                if merged.len() == have.len() {
                    return Ok(None);
                }
                self.build(prefix, &merged).map(Some)
            }
            Dir::Fanned(subs) => {
                let depth = prefix.len();
                let mut subs: BTreeMap<u8, Oid> = subs.into_iter().collect();
                let mut changed = false;
                for group in new.chunk_by(|a, b| a.0 .0[depth] == b.0 .0[depth]) {
                    let byte = group[0].0 .0[depth];
                    prefix.push(byte);
                    let sub =
                        self.insert(LAYOUT_FANOUT, prefix, subs.get(&byte).copied(), group)?;
                    prefix.pop();
                    if let Some(sub) = sub {
                        subs.insert(byte, sub);
                        changed = true;
                    }
                }
                if !changed {
                    return Ok(None);
                }
                self.write_fanned(&subs).map(Some)
            }
        }
    }

    /// The union of two directories at `prefix`, written as layout 2
    /// (unless one already holds the other).
    pub fn union(
        &self,
        prefix: &mut Vec<u8>,
        a: (u32, Oid),
        b: (u32, Oid),
    ) -> Result<Oid, StoreError> {
        if a.1 == b.1 && a.0 == b.0 {
            return Ok(a.1);
        }
        let da = self.dir(a.0, prefix, a.1)?;
        let db = self.dir(b.0, prefix, b.1)?;
        match (da, db) {
            (Dir::Flat(ea), _) => Ok(self.insert(b.0, prefix, Some(b.1), &ea)?.unwrap_or(b.1)),
            (_, Dir::Flat(eb)) => Ok(self.insert(a.0, prefix, Some(a.1), &eb)?.unwrap_or(a.1)),
            (Dir::Fanned(sa), Dir::Fanned(sb)) => {
                let mut subs: BTreeMap<u8, Oid> = sa.into_iter().collect();
                for (byte, y) in sb {
                    let merged = match subs.get(&byte) {
                        Some(&x) => {
                            prefix.push(byte);
                            let m = self.union(prefix, (LAYOUT_FANOUT, x), (LAYOUT_FANOUT, y));
                            prefix.pop();
                            m?
                        }
                        None => y,
                    };
                    subs.insert(byte, merged);
                }
                self.write_fanned(&subs)
            }
        }
    }

    /// The union of two roots' event trees.
    pub fn union_roots(&self, a: Root, b: Root) -> Result<Option<Oid>, StoreError> {
        Ok(match (a.events, b.events) {
            (None, None) => None,
            (Some(x), None) => Some(self.relayout(a.layout, x)?),
            (None, Some(y)) => Some(self.relayout(b.layout, y)?),
            (Some(x), Some(y)) => {
                Some(self.union(&mut Vec::new(), (a.layout, x), (b.layout, y))?)
            }
        })
    }

    /// A layout-1 events tree rewritten as layout 2 (layout 2 as is).
    fn relayout(&self, layout: u32, tree: Oid) -> Result<Oid, StoreError> {
        if layout == LAYOUT_FANOUT {
            return Ok(tree);
        }
        let all = self.all(Root {
            layout,
            events: Some(tree),
        })?;
        self.build(&mut Vec::new(), &all)
    }

    /// What `b` adds to `a` and whether it lost any of `a`'s events
    /// (pairs of id and blob), reading only the subtrees that differ.
    pub fn diff(&self, a: Root, b: Root) -> Result<Diff, StoreError> {
        let mut out = Diff::default();
        match (a.events, b.events) {
            (None, None) => {}
            (Some(_), None) => {
                out.lost = self.all(a)?.first().map(|(id, _)| *id);
            }
            (None, Some(_)) => out.added = self.all(b)?,
            (Some(x), Some(y)) => {
                self.diff_dirs(&mut Vec::new(), (a.layout, x), (b.layout, y), &mut out)?
            }
        }
        out.added.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    fn diff_dirs(
        &self,
        prefix: &mut Vec<u8>,
        a: (u32, Oid),
        b: (u32, Oid),
        out: &mut Diff,
    ) -> Result<(), StoreError> {
        if a.1 == b.1 && a.0 == b.0 {
            return Ok(());
        }
        let da = self.dir(a.0, prefix, a.1)?;
        let db = self.dir(b.0, prefix, b.1)?;
        if let (Dir::Fanned(sa), Dir::Fanned(sb)) = (&da, &db) {
            let sa: BTreeMap<u8, Oid> = sa.iter().copied().collect();
            let sb: BTreeMap<u8, Oid> = sb.iter().copied().collect();
            for (byte, y) in &sb {
                prefix.push(*byte);
                let r = match sa.get(byte) {
                    Some(x) => self.diff_dirs(prefix, (a.0, *x), (b.0, *y), out),
                    None => self.collect(b.0, prefix, *y, &mut out.added),
                };
                prefix.pop();
                r?;
            }
            if out.lost.is_none() {
                if let Some((byte, x)) = sa.iter().find(|(k, _)| !sb.contains_key(k)) {
                    let mut lost = Vec::new();
                    prefix.push(*byte);
                    let r = self.collect(a.0, prefix, *x, &mut lost);
                    prefix.pop();
                    r?;
                    out.lost = lost.first().map(|(id, _)| *id);
                }
            }
            return Ok(());
        }
        let flatten = |d: Dir<Oid>, layout: u32, prefix: &mut Vec<u8>| match d {
            Dir::Flat(e) => Ok(e),
            Dir::Fanned(subs) => {
                let mut all = Vec::new();
                for (byte, sub) in subs {
                    prefix.push(byte);
                    let r = self.collect(layout, prefix, sub, &mut all);
                    prefix.pop();
                    r?;
                }
                all.sort_by_key(|(id, _)| *id);
                Ok::<_, StoreError>(all)
            }
        };
        let ea = flatten(da, a.0, prefix)?;
        let eb = flatten(db, b.0, prefix)?;
        let set_b: std::collections::HashSet<&(EventId, Oid)> = eb.iter().collect();
        if out.lost.is_none() {
            out.lost = ea.iter().find(|e| !set_b.contains(e)).map(|(id, _)| *id);
        }
        let set_a: std::collections::HashSet<&(EventId, Oid)> = ea.iter().collect();
        out.added
            .extend(eb.iter().filter(|e| !set_a.contains(e)).copied());
        Ok(())
    }
}

/// Sorted union by id; on equal ids the entry of `a` is kept.
pub(crate) fn union(a: &[(EventId, Oid)], b: &[(EventId, Oid)]) -> Vec<(EventId, Oid)> {
    let mut all: Vec<_> = a.iter().chain(b).copied().collect();
    all.sort_by_key(|(id, _)| *id);
    all.dedup_by_key(|(id, _)| *id);
    all
}
