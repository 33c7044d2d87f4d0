//! The state cache: folded states of deep issues, keyed by their ref's tip,
//! under `.git/reposix/state/<issue-id>`.
//!
//! A derived cache like the listing index: verified against the ref on
//! every read (a state is used only for the tip it names), checksummed, and
//! deleting it at any time only costs a fold. Issues with fewer than
//! [`CACHE_MIN_EVENTS`] events are not cached (their fold is cheaper than
//! a file).
//!
//! A file is a *snapshot* (the open fold [`Folded`] of a local issue, or the
//! folded state of an issue with tracker operations) followed by *append
//! records*: the events one append added, with the tips before and after it
//! and the heads and clock after it. An append writes one record at the end
//! of the file (its cost does not depend on the log); a writer that needs
//! only the heads and clock reads the records, not the snapshot; a full read
//! replays them on the snapshot (an incremental fold). When the tip moved by
//! other means (another process that did not record, `git fetch`), the
//! events between the cached tip and the ref's tip are found by a tree diff
//! that reads only the subtrees that differ, and folded in where the CRDT
//! allows it (see [`crate::crdt::incremental`]); otherwise, and whenever the
//! cached tip is not an ancestor's set of the new one, the issue is folded
//! whole. Reads that replay many records rewrite the snapshot.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use super::{GitEventStore, Oid, StoreError};
use crate::crdt::incremental::{state_from_bytes, state_to_bytes, Folded, IssueView};
use crate::crdt::{EventSet, IssueState};
use crate::event::{Event, EventId, IssueId};

/// Issues with fewer events are not cached (unless their body is large).
pub const CACHE_MIN_EVENTS: usize = 64;

/// Issues whose body has at least this many bytes are cached whatever
/// their number of events: folding them means building the automerge
/// document of the whole text.
pub const CACHE_MIN_BODY: usize = 32 * 1024;

/// Snapshots are rewritten when more append records than this follow them.
pub const MAX_RECORDS: usize = 256;

const MAGIC: &[u8; 8] = b"rxstate5";
const KIND_FOLDED: u8 = b'F';
const KIND_STATE: u8 = b'S';
const KIND_APPEND: u8 = b'A';

/// How a state was obtained (for tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cached snapshot, plus this many append records replayed.
    Cached(usize),
    /// The snapshot plus the events a tree diff found (this many).
    Advanced(usize),
    /// A fold of the whole log.
    Folded,
}

/// A folded issue.
pub struct Cached {
    /// The tip it is the state of.
    pub tip: Oid,
    /// The state.
    pub state: IssueState,
    /// The open fold, for local issues.
    pub folded: Option<Folded>,
    /// The whole event set, when it was loaded.
    pub events: Option<EventSet>,
    /// How it was obtained.
    pub source: Source,
}

/// What a writer needs to build on a tip: its event heads and clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipInfo {
    /// Event heads (sorted).
    pub heads: Vec<EventId>,
    /// Largest Lamport clock.
    pub lamport: u64,
}

/// One parsed record.
struct Record<'a> {
    kind: u8,
    body: &'a [u8],
}

fn put_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(&blake3::hash(body).as_bytes()[..8]);
}

/// Parse records until the end or the first damaged one (a torn write at
/// the end loses only itself).
fn records(mut bytes: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while bytes.len() >= 17 {
        let len = u64::from_le_bytes(bytes[..8].try_into().expect("BUG: 8 bytes"));
        let Ok(len) = usize::try_from(len) else { break };
        if bytes.len() < 17 + len {
            break;
        }
        let kind = bytes[8];
        let body = &bytes[9..9 + len];
        if blake3::hash(body).as_bytes()[..8] != bytes[9 + len..17 + len] {
            break;
        }
        out.push(Record { kind, body });
        bytes = &bytes[17 + len..];
    }
    out
}

/// An append record: parent tip, new tip, lamport, heads, events.
struct Append {
    parent: Oid,
    tip: Oid,
    lamport: u64,
    heads: Vec<EventId>,
    events: Vec<Vec<u8>>,
}

fn oid_bytes(oid: &Oid) -> &[u8] {
    oid.as_bytes()
}

impl Append {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(oid_bytes(&self.parent));
        b.extend_from_slice(oid_bytes(&self.tip));
        b.extend_from_slice(&self.lamport.to_le_bytes());
        b.extend_from_slice(&(self.heads.len() as u32).to_le_bytes());
        for h in &self.heads {
            b.extend_from_slice(&h.0);
        }
        for e in &self.events {
            b.extend_from_slice(&(e.len() as u32).to_le_bytes());
            b.extend_from_slice(e);
        }
        b
    }

    fn decode(b: &[u8]) -> Option<Append> {
        let take = |b: &mut &[u8], n: usize| -> Option<Vec<u8>> {
            if b.len() < n {
                return None;
            }
            let (h, t) = b.split_at(n);
            *b = t;
            Some(h.to_vec())
        };
        let mut b = b;
        let parent = Oid::try_from(take(&mut b, 20)?.as_slice()).ok()?;
        let tip = Oid::try_from(take(&mut b, 20)?.as_slice()).ok()?;
        let lamport = u64::from_le_bytes(take(&mut b, 8)?.try_into().ok()?);
        let n = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
        let mut heads = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            heads.push(EventId(take(&mut b, 32)?.try_into().ok()?));
        }
        let mut events = Vec::new();
        while !b.is_empty() {
            let len = u32::from_le_bytes(take(&mut b, 4)?.try_into().ok()?) as usize;
            events.push(take(&mut b, len)?);
        }
        Some(Append {
            parent,
            tip,
            lamport,
            heads,
            events,
        })
    }
}

/// The state cache of one store.
pub struct StateCache<'a> {
    store: &'a GitEventStore,
    dir: PathBuf,
    /// Whether callers need [`Cached::folded`] (writers) or only the state.
    keep_folded: bool,
    /// Rewrite the snapshot whenever a read replayed anything (see
    /// [`StateCache::view`]).
    settle: bool,
}

impl<'a> StateCache<'a> {
    /// The cache of `store`.
    pub fn new(store: &'a GitEventStore) -> StateCache<'a> {
        StateCache {
            dir: store.reposix_dir().join("state"),
            store,
            keep_folded: true,
            settle: false,
        }
    }

    /// The cache of `store` for readers: [`Cached::folded`] is left out
    /// (the state is built without copying the comments).
    pub fn for_reading(store: &'a GitEventStore) -> StateCache<'a> {
        StateCache {
            keep_folded: false,
            ..StateCache::new(store)
        }
    }

    /// The state of `issue` at `tip` for reading through: its comments
    /// stay in the cache file's bytes when the snapshot is of `tip`
    /// ([`IssueView`]). Otherwise the state is read as
    /// [`StateCache::for_reading`] reads it, and a snapshot that needed
    /// records or a tree diff replayed is rewritten, so that the next view
    /// of the same tip reads in place.
    pub fn view(
        &self,
        repo: &gix::Repository,
        refname: &str,
        issue: IssueId,
        tip: Oid,
    ) -> Result<IssueView, StoreError> {
        if let Some(v) = self.view_in_place(issue, tip) {
            return Ok(v);
        }
        let settling = StateCache {
            keep_folded: false,
            settle: true,
            ..StateCache::new(self.store)
        };
        Ok(IssueView::from_state(
            settling.get(repo, refname, issue, tip)?.state,
        ))
    }

    /// [`StateCache::view`] when the snapshot is of `tip` and an open fold.
    fn view_in_place(&self, issue: IssueId, tip: Oid) -> Option<IssueView> {
        let bytes = std::fs::read(self.path(issue)).ok()?;
        let body = bytes.strip_prefix(MAGIC)?;
        let snap = records(body).into_iter().next()?;
        if snap.kind != KIND_FOLDED || Oid::try_from(snap.body.get(..20)?).ok()? != tip {
            return None;
        }
        let n = u32::from_le_bytes(snap.body.get(28..32)?.try_into().ok()?) as usize;
        // The snapshot record's body starts after the magic, its length
        // and its kind.
        let at = MAGIC.len() + 9;
        let payload = at + 32 + 32 * n..at + snap.body.len();
        IssueView::from_folded_bytes(bytes, payload)
    }

    fn path(&self, issue: IssueId) -> PathBuf {
        self.dir.join(issue.to_string())
    }

    /// The heads and clock of `tip`, from the append records alone (no
    /// snapshot is decoded), if the cache's newest tip is `tip`.
    pub fn tip_info(&self, issue: IssueId, tip: Oid) -> Option<TipInfo> {
        self.tip_info_counted(issue, tip).map(|(info, _)| info)
    }

    /// [`StateCache::tip_info`] and the number of append records read.
    fn tip_info_counted(&self, issue: IssueId, tip: Oid) -> Option<(TipInfo, usize)> {
        let mut f = std::fs::File::open(self.path(issue)).ok()?;
        let mut head = [0u8; 17 + 20 + 12];
        f.read_exact(&mut head).ok()?;
        if &head[..8] != MAGIC {
            return None;
        }
        let snap_len = usize::try_from(u64::from_le_bytes(head[8..16].try_into().ok()?)).ok()?;
        // The snapshot's tip, clock and heads lead its body: read them and
        // skip the rest of it.
        let mut at = Oid::try_from(&head[17..37]).ok()?;
        let lamport = u64::from_le_bytes(head[37..45].try_into().ok()?);
        let n = u32::from_le_bytes(head[45..49].try_into().ok()?) as usize;
        let mut heads = vec![0u8; 32 * n];
        f.read_exact(&mut heads).ok()?;
        let mut info = TipInfo {
            heads: heads
                .chunks(32)
                .map(|c| EventId(c.try_into().expect("BUG: 32-byte chunks")))
                .collect(),
            lamport,
        };
        f.seek(SeekFrom::Start((8 + 17 + snap_len) as u64)).ok()?;
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).ok()?;
        let recs = records(&rest);
        let count = recs.len();
        for r in recs {
            let Some(a) = (r.kind == KIND_APPEND)
                .then(|| Append::decode(r.body))
                .flatten()
            else {
                break;
            };
            if a.parent != at {
                // A record written against a snapshot that was replaced
                // meanwhile (two writers): not ours to replay.
                continue;
            }
            at = a.tip;
            info = TipInfo {
                heads: a.heads,
                lamport: a.lamport,
            };
        }
        (at == tip).then_some((info, count))
    }

    /// The folded state of `issue` at `tip` (the ref's current value),
    /// from the cache where it can be, else folded (and cached when the
    /// issue is deep enough).
    pub fn get(
        &self,
        repo: &gix::Repository,
        refname: &str,
        issue: IssueId,
        tip: Oid,
    ) -> Result<Cached, StoreError> {
        if let Some(c) = self.cached(repo, refname, issue, tip) {
            return Ok(c);
        }
        let events = self.store.load_commit(repo, refname, issue, tip)?;
        let state = events.fold(issue).map_err(|source| StoreError::Fold {
            refname: refname.to_owned(),
            source,
        })?;
        let worth_it = events.len() >= CACHE_MIN_EVENTS || state.body.len() >= CACHE_MIN_BODY;
        // Invalid events (the clock rule) are damage: the open fold, like
        // the state, is of the valid part.
        let folded = worth_it
            .then(|| Folded::from_set(&events.valid_subset(), issue))
            .flatten();
        if worth_it {
            self.write_snapshot(issue, tip, folded.as_ref(), &state);
        }
        Ok(Cached {
            tip,
            state,
            folded,
            events: Some(events),
            source: Source::Folded,
        })
    }

    /// The cached state, replayed and advanced to `tip` where possible.
    fn cached(
        &self,
        repo: &gix::Repository,
        refname: &str,
        issue: IssueId,
        tip: Oid,
    ) -> Option<Cached> {
        let bytes = std::fs::read(self.path(issue)).ok()?;
        let body = bytes.strip_prefix(MAGIC)?;
        let recs = records(body);
        let (snap, appends) = recs.split_first()?;
        let snap_tip = Oid::try_from(snap.body.get(..20)?).ok()?;
        let n = u32::from_le_bytes(snap.body.get(28..32)?.try_into().ok()?) as usize;
        let payload = snap.body.get(32 + 32 * n..)?;
        match snap.kind {
            KIND_STATE => {
                // Tracker issues: the state of exactly one tip.
                if snap_tip != tip {
                    return None;
                }
                return Some(Cached {
                    tip,
                    state: state_from_bytes(payload).ok()?,
                    folded: None,
                    events: None,
                    source: Source::Cached(0),
                });
            }
            KIND_FOLDED => {}
            _ => return None,
        }
        let mut folded = Folded::from_bytes(payload).ok()?;
        if folded.is_empty() {
            return None;
        }
        let mut at = snap_tip;
        let mut replayed = 0;
        // Replaying a body change rebuilds the body document: worth keeping.
        let mut body_replayed = false;
        for r in appends {
            if at == tip {
                break;
            }
            let Some(a) = (r.kind == KIND_APPEND)
                .then(|| Append::decode(r.body))
                .flatten()
            else {
                break;
            };
            if a.parent != at {
                // A record written against a snapshot that was replaced
                // meanwhile (two writers): not ours to replay.
                continue;
            }
            let decoded: Option<Vec<(EventId, Event)>> = a
                .events
                .iter()
                .map(|b| Some((EventId::of_bytes(b), Event::decode(b).ok()?)))
                .collect();
            let decoded = decoded?;
            let refs: Vec<(EventId, &Event)> = decoded.iter().map(|(id, e)| (*id, e)).collect();
            if !folded.add(&refs).ok()? {
                return None;
            }
            body_replayed |= decoded.iter().any(|(_, e)| {
                matches!(
                    e.op,
                    crate::event::Op::EditBody { .. } | crate::event::Op::Create { .. }
                )
            });
            at = a.tip;
            replayed += 1;
        }
        let source = if at == tip {
            Source::Cached(replayed)
        } else {
            // Moved by other means: what the ref's tip adds to ours.
            let diff = self.store.diff_commits(repo, refname, at, tip).ok()?;
            if diff.lost.is_some() {
                return None;
            }
            let set = self
                .store
                .read_events(repo, refname, issue, &diff.added)
                .ok()?;
            let refs: Vec<(EventId, &Event)> = set.iter().map(|(id, e)| (*id, e)).collect();
            if !folded.clock_plausible(&refs) || !folded.add(&refs).ok()? {
                return None;
            }
            Source::Advanced(refs.len())
        };
        let rewrite = body_replayed
            || !matches!(source, Source::Cached(n) if n <= MAX_RECORDS)
            || (self.settle && source != Source::Cached(0));
        let (state, folded) = if self.keep_folded || rewrite {
            let state = folded.state().ok()?;
            if rewrite {
                self.write_snapshot(issue, tip, Some(&folded), &state);
            }
            (state, Some(folded))
        } else {
            (folded.into_state().ok()?, None)
        };
        Some(Cached {
            tip,
            state,
            folded: folded.filter(|_| self.keep_folded),
            events: None,
            source,
        })
    }

    /// Record that an append moved `issue` from `parent` to `tip` by adding
    /// `events` (sealed bytes), with the heads and clock after it. Appends
    /// one record if the cache's newest tip is `parent`; otherwise leaves
    /// the cache alone (the next read advances it). Best effort: a failure
    /// only costs a fold later. Returns whether the records have outgrown
    /// their snapshot ([`MAX_RECORDS`]): the caller then reads the state
    /// once through [`StateCache::get`], which rewrites the snapshot, so
    /// that a writer that only appends (an agent posting progress, a bot)
    /// does not read a longer list of records at every append.
    pub fn record_append(
        &self,
        issue: IssueId,
        parent: Oid,
        tip: Oid,
        info: &TipInfo,
        events: &[Vec<u8>],
    ) -> bool {
        if !self.is_folded(issue) {
            return false;
        }
        let Some((_, count)) = self.tip_info_counted(issue, parent) else {
            return false;
        };
        let a = Append {
            parent,
            tip,
            lamport: info.lamport,
            heads: info.heads.clone(),
            events: events.to_vec(),
        };
        let mut rec = Vec::new();
        put_record(&mut rec, KIND_APPEND, &a.encode());
        // One write of the whole record: appends from two processes do not
        // interleave, and a torn one is dropped by the checksum.
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.path(issue))
            .and_then(|mut f| f.write_all(&rec))
            .is_ok()
            && count + 1 > MAX_RECORDS
    }

    /// Whether the file's snapshot is an open fold (append records can
    /// follow it; a tracker issue's state cannot be advanced).
    fn is_folded(&self, issue: IssueId) -> bool {
        let mut head = [0u8; 17];
        std::fs::File::open(self.path(issue))
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && &head[..8] == MAGIC
            && head[16] == KIND_FOLDED
    }

    /// After a writer appended `events` (sealed, with their ids) to the
    /// tip `folded` is the fold of, making `tip`: fold them in with the
    /// body document the writer's edit built (`doc`: the fold's body
    /// changes and the new one; see [`Folded::add_with_body_doc`]) and
    /// cache the state of `tip` as a snapshot. Best effort: `false` when it
    /// could not (the caller records the append instead).
    pub fn snapshot_after_edit(
        &self,
        issue: IssueId,
        tip: Oid,
        mut folded: Folded,
        doc: crate::crdt::body::BodyDoc,
        events: &[(EventId, Vec<u8>)],
    ) -> bool {
        let decoded: Option<Vec<(EventId, Event)>> = events
            .iter()
            .map(|(id, b)| Some((*id, Event::decode(b).ok()?)))
            .collect();
        let Some(decoded) = decoded else {
            return false;
        };
        let refs: Vec<(EventId, &Event)> = decoded.iter().map(|(id, e)| (*id, e)).collect();
        if !folded.add_with_body_doc(&refs, doc).unwrap_or(false) {
            return false;
        }
        let Ok(state) = folded.state() else {
            return false;
        };
        self.write_snapshot(issue, tip, Some(&folded), &state);
        true
    }

    fn write_snapshot(
        &self,
        issue: IssueId,
        tip: Oid,
        folded: Option<&Folded>,
        state: &IssueState,
    ) {
        let (kind, payload) = match folded {
            Some(f) => (KIND_FOLDED, f.to_bytes()),
            None => (KIND_STATE, state_to_bytes(state)),
        };
        let mut body = Vec::with_capacity(64 + 32 * state.heads.len() + payload.len());
        body.extend_from_slice(oid_bytes(&tip));
        body.extend_from_slice(&state.lamport.to_le_bytes());
        body.extend_from_slice(&(state.heads.len() as u32).to_le_bytes());
        for h in &state.heads {
            body.extend_from_slice(&h.0);
        }
        body.extend_from_slice(&payload);
        let mut out = MAGIC.to_vec();
        put_record(&mut out, kind, &body);
        // A cache: not fsynced, and a failed write only costs a fold.
        let _ = super::fs::write_atomic(
            &self.dir.join(issue.to_string()),
            &out,
            super::fs::Durability::Cache,
        );
    }
}
