//! The issue body as an automerge `Text`.
//!
//! Every issue's body document starts from the same *genesis* change, derived
//! from the issue id alone (fixed actor, time 0), so every replica can rebuild
//! it and every body change, from any writer, builds on the same text object.
//! Body events carry automerge changes; the text is the result of applying
//! the set of changes, which automerge makes order-independent.
//!
//! Two kinds of change are written:
//! - a person's or agent's edit ([`BodyDoc::edit_in_changes`]): a fresh
//!   random automerge actor per edit, time 0; an edit of more than
//!   [`EDIT_CHANGE_OPS`] characters is committed as several changes of
//!   that actor, one after another (automerge's memory while it builds a
//!   change grows with the change: see the constant);
//! - a *derived* change ([`BodyDoc::derived_change`]): the edit that turns
//!   the document at given heads into a given text, with an actor derived
//!   from a seed that names everything it depends on (heads, target text,
//!   purpose). Replicas that derive the same change get the same bytes and
//!   automerge keeps one copy; that is how a tracker's text enters the
//!   document exactly once (see `refs-format.md`, section 6b).
//!
//! Edits are computed with a line-then-character diff (`crdt::textdiff`)
//! and applied as splices: time and memory grow with the size of the text
//! and of the change, not their product. Changes are applied to a document
//! in batches of at most [`APPLY_BATCH_BYTES`] of change bytes, for the
//! same reason.
//!
//! Pure: no I/O, no clock (changes are stamped with time 0).

use std::panic::{catch_unwind, AssertUnwindSafe};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, Change, ChangeHash, ObjType, ReadDoc, ROOT};

use super::textdiff;
use crate::event::{Bytes, IssueId};

/// A text element: the (counter, actor) of the operation inserting it.
pub type Element = (u64, automerge::ActorId);

/// A set of text elements.
pub type Elements = std::collections::HashSet<Element>;

/// Errors from applying body changes.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Change bytes that automerge cannot load.
    #[error("malformed body change: {0}")]
    BadChange(String),
    /// A change that loads but cannot be applied.
    #[error("body change cannot be applied: {0}")]
    Apply(String),
    /// Heads that name no change of the document.
    #[error("unknown body heads: {0}")]
    UnknownHeads(String),
}

const BODY_KEY: &str = "body";

/// Version of the derived-change recipe (diff algorithm and seed layout).
/// Part of every seed, so two builds that would derive different bytes
/// never share an automerge actor.
const DERIVE_RECIPE: &str =
    "reposix derived body change v10 (histogram lines, myers words with their spacing, myers chars of extended words slid to token edges unless a token grown is found whole elsewhere, kept tokens of letters and digits before a typo fix, new runs split where they begin or end with an old run, old runs split into runs the new text has apart, typo fixes counted in letters and digits without glued tokens both keep; imports seeded without the revision)";

/// The genesis document of `issue`'s body: an empty text object.
fn genesis(issue: IssueId) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(automerge::ActorId::from(issue.0.as_bytes()));
    doc.put_object(ROOT, BODY_KEY, ObjType::Text)
        .expect("BUG: putting a text object on a fresh document cannot fail");
    doc.commit_with(CommitOptions::default().with_time(0));
    doc
}

/// A body document: genesis plus a set of changes.
pub struct BodyDoc {
    doc: AutoCommit,
    text: automerge::ObjId,
}

/// Automerge change hash as stored in events (32 bytes).
pub fn hash_bytes(h: &ChangeHash) -> Bytes {
    Bytes(h.as_ref().to_vec())
}

fn to_hash(b: &Bytes) -> Option<ChangeHash> {
    ChangeHash::try_from(b.0.as_slice()).ok()
}

/// The hash of a stored change, if it parses.
pub fn change_hash(change: &Bytes) -> Option<Bytes> {
    Change::from_bytes(change.0.clone())
        .ok()
        .map(|c| hash_bytes(&c.hash()))
}

/// The hash of the last change of the write whose first change is `first`:
/// among `others`, the change by `first`'s automerge actor with the highest
/// sequence number (a large edit is several changes of one fresh actor,
/// [`BodyDoc::edit_in_changes`]), else `first`'s own. `None` when `first`
/// does not parse.
pub fn last_of_write<'a>(
    first: &Bytes,
    others: impl IntoIterator<Item = &'a Bytes>,
) -> Option<Bytes> {
    let first = Change::from_bytes(first.0.clone()).ok()?;
    let mut last = (first.seq(), first.hash());
    for b in others {
        if let Ok(c) = Change::from_bytes(b.0.clone()) {
            if c.actor_id() == first.actor_id() && c.seq() > last.0 {
                last = (c.seq(), c.hash());
            }
        }
    }
    Some(hash_bytes(&last.1))
}

/// The automerge actor of a derived change: 16 bytes of a keyed hash.
fn derived_actor(seed: &[u8]) -> automerge::ActorId {
    let key = blake3::derive_key(DERIVE_RECIPE, seed);
    let mut id = [0u8; 16];
    id.copy_from_slice(&key[..16]);
    // Never the genesis actor (an issue id): those have a UUID version
    // nibble; set a reserved one.
    id[6] = (id[6] & 0x0f) | 0xf0;
    automerge::ActorId::from(id)
}

/// Characters deleted or inserted per change of a local edit
/// ([`BodyDoc::edit_in_changes`]). automerge 0.12 holds a transaction's
/// operations at about 300 bytes each until it commits: inserting 1,000,000
/// characters peaks at 313 MB in one transaction and at 16 to 31 MB in
/// transactions of 16K to 64K characters (measured in a scratch crate,
/// release build), and is no slower.
pub const EDIT_CHANGE_OPS: usize = 32 * 1024;

/// Change bytes applied to a document in one call. Applying changes costs
/// automerge a transient of about 200 bytes per character of the document
/// *and* of the changes applied at once: 1,000,000 characters as 64 changes
/// peak at 516 MB applied together, 246 MB in batches of 8 changes
/// (~130 KB), in about the same time; one change at a time is no smaller
/// and several times slower.
pub const APPLY_BATCH_BYTES: usize = 128 * 1024;

/// Apply `changes` to `doc` in causal order (a change after the ones it
/// depends on), in batches of about [`APPLY_BATCH_BYTES`]. Callers pass
/// changes in any order (event id order, say): unordered batches would
/// leave most changes waiting in automerge's queue for a dependency in a
/// later batch and apply them all in the last call.
fn apply_batched(doc: &mut AutoCommit, changes: Vec<Change>) -> Result<(), BodyError> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    for c in causal_order(changes) {
        bytes += c.raw_bytes().len();
        batch.push(c);
        if bytes >= APPLY_BATCH_BYTES {
            doc.apply_changes(std::mem::take(&mut batch))
                .map_err(|e| BodyError::Apply(e.to_string()))?;
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        doc.apply_changes(batch)
            .map_err(|e| BodyError::Apply(e.to_string()))?;
    }
    Ok(())
}

/// `changes` with every change after those of the set it depends on
/// (Kahn's algorithm over the dependencies inside the set; a repeated
/// change is kept once). Dependencies outside the set (genesis, the
/// document's own changes) do not order anything.
fn causal_order(changes: Vec<Change>) -> Vec<Change> {
    use std::collections::HashMap;
    let mut seen = std::collections::HashSet::new();
    let changes: Vec<Change> = changes
        .into_iter()
        .filter(|c| seen.insert(c.hash()))
        .collect();
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    let mut waiting = vec![0usize; changes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, c) in changes.iter().enumerate() {
        for d in c.deps() {
            if let Some(&j) = index.get(d) {
                waiting[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut ready: Vec<usize> = (0..changes.len())
        .rev()
        .filter(|&i| waiting[i] == 0)
        .collect();
    let mut order = Vec::with_capacity(changes.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &k in dependents[i].iter().rev() {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.push(k);
            }
        }
    }
    let mut slots: Vec<Option<Change>> = changes.into_iter().map(Some).collect();
    let mut out: Vec<Change> = order.into_iter().filter_map(|i| slots[i].take()).collect();
    // Nothing is left over (change hashes cannot form a cycle); should
    // anything be, it is applied last rather than dropped.
    out.extend(slots.into_iter().flatten());
    out
}

/// Write `new_text` into `obj` as splices, committing a change (time 0)
/// whenever [`EDIT_CHANGE_OPS`] characters have been deleted or inserted
/// since the last one, and at the end; the changes' bytes, in order.
/// Splitting a splice keeps the operations it makes: the pieces of a
/// deletion delete the same characters, and each piece of an insertion
/// goes after the one before it.
fn write_text_in_changes(
    doc: &mut AutoCommit,
    obj: &automerge::ObjId,
    new_text: &str,
) -> Vec<Bytes> {
    let old = doc
        .text(obj)
        .expect("BUG: the body object was checked to be text");
    let splices = textdiff::splices(&old, new_text);
    let mut out = Vec::new();
    let mut pending = 0usize;
    let commit = |doc: &mut AutoCommit, out: &mut Vec<Bytes>| {
        if doc
            .commit_with(CommitOptions::default().with_time(0))
            .is_some()
        {
            if let Some(c) = doc.get_last_local_change() {
                out.push(Bytes(c.raw_bytes().to_vec()));
            }
        }
    };
    for s in &splices {
        let room = EDIT_CHANGE_OPS - pending;
        let ins_len = s.ins.chars().count();
        if s.del + ins_len <= room {
            doc.splice_text(obj, s.pos, s.del as isize, &s.ins)
                .expect("BUG: splices computed from the current text apply");
            pending += s.del + ins_len;
        } else {
            let mut del = s.del;
            while del > 0 {
                let n = del.min(EDIT_CHANGE_OPS - pending);
                doc.splice_text(obj, s.pos, n as isize, "")
                    .expect("BUG: splices computed from the current text apply");
                del -= n;
                pending += n;
                if pending >= EDIT_CHANGE_OPS {
                    commit(doc, &mut out);
                    pending = 0;
                }
            }
            let (mut rest, mut pos) = (s.ins.as_str(), s.pos);
            while !rest.is_empty() {
                let room = EDIT_CHANGE_OPS - pending;
                let cut = rest.char_indices().nth(room).map_or(rest.len(), |(i, _)| i);
                let (piece, tail) = rest.split_at(cut);
                doc.splice_text(obj, pos, 0, piece)
                    .expect("BUG: splices computed from the current text apply");
                let n = piece.chars().count();
                pos += n;
                pending += n;
                rest = tail;
                if pending >= EDIT_CHANGE_OPS {
                    commit(doc, &mut out);
                    pending = 0;
                }
            }
        }
        if pending >= EDIT_CHANGE_OPS {
            commit(doc, &mut out);
            pending = 0;
        }
    }
    if pending > 0 {
        commit(doc, &mut out);
    }
    out
}

/// Write `new_text` into `obj` as splices (one transaction, not committed).
fn write_text(doc: &mut AutoCommit, obj: &automerge::ObjId, new_text: &str) -> bool {
    let old = doc
        .text(obj)
        .expect("BUG: the body object was checked to be text");
    let splices = textdiff::splices(&old, new_text);
    for s in &splices {
        doc.splice_text(obj, s.pos, s.del as isize, &s.ins)
            .expect("BUG: splices computed from the current text apply");
    }
    !splices.is_empty()
}

/// The seed of a join's derived change (refs-format.md, section 6b):
/// `kind‖len‖seed‖heads‖0xff‖what it drops‖blake3(text)`.
fn join_seed(kind: &[u8], seed: &[u8], at: &[Bytes], drops: &[u8], text: &str) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(kind.len() + seed.len() + 8 + at.len() * 32 + drops.len() + 33);
    out.extend_from_slice(kind);
    out.extend_from_slice(&(seed.len() as u64).to_le_bytes());
    out.extend_from_slice(seed);
    for h in at {
        out.extend_from_slice(&h.0);
    }
    out.push(0xff);
    out.extend_from_slice(drops);
    out.extend_from_slice(blake3::hash(text.as_bytes()).as_bytes());
    out
}

/// The element (see [`Element`]) of a text character's object id.
fn element(id: &automerge::ObjId) -> Option<Element> {
    match id {
        automerge::ObjId::Id(counter, actor, _) => Some((*counter, actor.clone())),
        automerge::ObjId::Root => None,
    }
}

/// The text elements the changes delete, leaving out the changes in
/// `derived` (hashes).
fn deletions_by(
    changes: impl IntoIterator<Item = Change>,
    derived: &[Bytes],
) -> Result<Elements, BodyError> {
    let derived: std::collections::HashSet<ChangeHash> =
        derived.iter().filter_map(to_hash).collect();
    let mut out = Elements::default();
    for change in changes {
        if derived.contains(&change.hash()) {
            continue;
        }
        // Decoding asserts on corrupt operations (see `load`).
        let expanded = catch_unwind(AssertUnwindSafe(|| change.decode()))
            .map_err(|_| BodyError::Apply("automerge panicked decoding a body change".into()))?;
        for op in expanded.operations {
            if let (
                automerge::legacy::OpType::Delete,
                automerge::legacy::Key::Seq(automerge::legacy::ElementId::Id(id)),
            ) = (&op.action, &op.key)
            {
                out.insert((id.counter(), id.actor().clone()));
            }
        }
    }
    Ok(out)
}

impl BodyDoc {
    /// Rebuild the body of `issue` from its change set (any order).
    pub fn load<'a>(
        issue: IssueId,
        changes: impl IntoIterator<Item = &'a Bytes>,
    ) -> Result<BodyDoc, BodyError> {
        let changes: Vec<&Bytes> = changes.into_iter().collect();
        // automerge 0.12 panics on some changes that parse but are corrupt
        // (fuzz target fold_events, crash-bf5b5e99: an assertion in
        // op_set2/change/batch.rs). Stored events are untrusted input: a bad
        // one must fail the fold, not the process.
        catch_unwind(|| Self::load_untrusted(issue, &changes)).unwrap_or_else(|_| {
            Err(BodyError::Apply(
                "automerge panicked on the body changes".into(),
            ))
        })
    }

    fn load_untrusted(issue: IssueId, changes: &[&Bytes]) -> Result<BodyDoc, BodyError> {
        let mut doc = genesis(issue);
        let parsed = changes
            .iter()
            .map(|b| {
                Change::from_bytes(b.0.clone()).map_err(|e| BodyError::BadChange(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        apply_batched(&mut doc, parsed)?;
        Self::checked(doc)
    }

    /// [`BodyDoc::load`] starting from a document [`BodyDoc::save`] wrote
    /// (a cache; automerge's `load` is several times faster than applying
    /// the changes again). The result must be exactly genesis plus
    /// `changes`: a saved document holding anything else, or whose body is
    /// not the text object, is refused, and the caller loads the changes.
    pub fn load_saved<'a>(
        issue: IssueId,
        saved: &[u8],
        changes: impl IntoIterator<Item = &'a Bytes>,
    ) -> Result<BodyDoc, BodyError> {
        let changes: Vec<&Bytes> = changes.into_iter().collect();
        catch_unwind(|| Self::load_saved_untrusted(issue, saved, &changes)).unwrap_or_else(|_| {
            Err(BodyError::Apply(
                "automerge panicked on a saved body document".into(),
            ))
        })
    }

    fn load_saved_untrusted(
        issue: IssueId,
        saved: &[u8],
        changes: &[&Bytes],
    ) -> Result<BodyDoc, BodyError> {
        let mut doc = AutoCommit::load(saved)
            .map_err(|e| BodyError::BadChange(e.to_string()))?
            .with_actor(automerge::ActorId::from(issue.0.as_bytes()));
        let parsed = changes
            .iter()
            .map(|b| {
                Change::from_bytes(b.0.clone()).map_err(|e| BodyError::BadChange(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The heads genesis plus `changes` have: the changes no other one
        // depends on (genesis when there are none).
        let deps: std::collections::HashSet<ChangeHash> = parsed
            .iter()
            .flat_map(|c| c.deps().iter().copied())
            .collect();
        let mut expected: Vec<ChangeHash> = parsed
            .iter()
            .map(|c| c.hash())
            .filter(|h| !deps.contains(h))
            .collect();
        if expected.is_empty() {
            expected = genesis(issue).get_heads();
        }
        expected.sort();
        expected.dedup();
        apply_batched(&mut doc, parsed)?;
        let mut heads = doc.get_heads();
        heads.sort();
        if heads != expected {
            return Err(BodyError::Apply(
                "the saved body document holds other changes".into(),
            ));
        }
        Self::checked(doc)
    }

    /// The document saved in compact form, for [`BodyDoc::load_saved`].
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// A loaded document whose body is the text object genesis made.
    fn checked(doc: AutoCommit) -> Result<BodyDoc, BodyError> {
        let text = match doc.get(ROOT, BODY_KEY) {
            Ok(Some((automerge::Value::Object(ObjType::Text), id))) => id,
            other => {
                return Err(BodyError::Apply(format!(
                    "body text object replaced by a change: {other:?}"
                )))
            }
        };
        // Read the text once here, under the guard, so `text()` cannot
        // panic later.
        doc.text(&text)
            .map_err(|e| BodyError::Apply(e.to_string()))?;
        Ok(BodyDoc { doc, text })
    }

    /// The current text.
    pub fn text(&self) -> String {
        self.doc
            .text(&self.text)
            .expect("BUG: the body object was checked to be text")
    }

    /// The document's heads (sorted change hashes).
    pub fn heads(&mut self) -> Vec<Bytes> {
        let mut h: Vec<Bytes> = self.doc.get_heads().iter().map(hash_bytes).collect();
        h.sort();
        h
    }

    /// Whether the document holds a change with this hash.
    pub fn has(&mut self, hash: &Bytes) -> bool {
        to_hash(hash).is_some_and(|h| self.doc.get_change_by_hash(&h).is_some())
    }

    /// Whether every change in `others` is `tip` or one of its ancestors.
    pub fn covers(&mut self, tip: &[Bytes], others: &[Bytes]) -> bool {
        self.covers_each(tip, &[others]) == [true]
    }

    /// For each of `others`, whether `tip` covers it (see
    /// [`BodyDoc::covers`]), with one walk of the document.
    pub fn covers_each(&mut self, tip: &[Bytes], others: &[&[Bytes]]) -> Vec<bool> {
        let Some(tip) = tip.iter().map(to_hash).collect::<Option<Vec<_>>>() else {
            return vec![false; others.len()];
        };
        let outside: std::collections::HashSet<ChangeHash> = self
            .doc
            .get_changes(&tip)
            .iter()
            .map(|c| c.hash())
            .collect();
        others
            .iter()
            .map(|o| {
                o.iter()
                    .all(|h| to_hash(h).is_some_and(|h| !outside.contains(&h)))
            })
            .collect()
    }

    /// The changes in the history of `state` and not in that of `base`.
    pub fn changes_between(&mut self, base: &[Bytes], state: &[Bytes]) -> Vec<Bytes> {
        let (Some(base), Some(state)) = (
            base.iter().map(to_hash).collect::<Option<Vec<_>>>(),
            state.iter().map(to_hash).collect::<Option<Vec<_>>>(),
        ) else {
            return Vec::new();
        };
        let outside_state: std::collections::HashSet<ChangeHash> = self
            .doc
            .get_changes(&state)
            .iter()
            .map(|c| c.hash())
            .collect();
        self.doc
            .get_changes(&base)
            .iter()
            .map(|c| c.hash())
            .filter(|h| !outside_state.contains(h))
            .map(|h| hash_bytes(&h))
            .collect()
    }

    /// The changes `hash` was made on (its dependencies), if the document
    /// holds it.
    pub fn deps(&mut self, hash: &Bytes) -> Option<Vec<Bytes>> {
        let h = to_hash(hash)?;
        let change = self.doc.get_change_by_hash(&h)?;
        let mut deps: Vec<Bytes> = change.deps().iter().map(hash_bytes).collect();
        deps.sort();
        Some(deps)
    }

    /// Whether `hash` is a change a person or agent wrote (an edit or a
    /// `create` body: a random actor), not a derived change or genesis.
    pub fn is_edit(&mut self, hash: &Bytes) -> bool {
        let Some(h) = to_hash(hash) else { return false };
        let Some(change) = self.doc.get_change_by_hash(&h) else {
            return false;
        };
        let actor = change.actor_id().to_bytes();
        // Edits are written by UUID v4 actors (version nibble 4), derived
        // changes by actors with the reserved nibble `f` (`derived_actor`).
        // Edits stored before that rule were fully random: one in sixteen
        // reads as derived, which only withholds what `is_edit` vouches for.
        // Genesis is the issue id, whose change inserts no text.
        actor.len() == 16 && actor[6] & 0xf0 != 0xf0 && !change.is_empty()
    }

    /// The text of the document at `heads`.
    pub fn text_at(&mut self, heads: &[Bytes]) -> Result<String, BodyError> {
        let fork = self.fork(heads)?;
        Ok(fork
            .text(&self.text)
            .expect("BUG: the body object exists from genesis on"))
    }

    fn fork(&mut self, heads: &[Bytes]) -> Result<AutoCommit, BodyError> {
        let hashes = heads
            .iter()
            .map(|h| {
                to_hash(h).ok_or_else(|| BodyError::UnknownHeads(format!("{} bytes", h.0.len())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(missing) = hashes
            .iter()
            .find(|h| self.doc.get_change_by_hash(h).is_none())
        {
            return Err(BodyError::UnknownHeads(missing.to_string()));
        }
        let doc = &mut self.doc;
        catch_unwind(AssertUnwindSafe(|| doc.fork_at(&hashes)))
            .map_err(|_| BodyError::Apply("automerge panicked forking the body".into()))?
            .map_err(|e| BodyError::Apply(e.to_string()))
    }

    /// The changes turning the text into `new_text` (a diff, so they merge
    /// with concurrent edits), written by a fresh automerge actor: one
    /// change per [`EDIT_CHANGE_OPS`] characters deleted or inserted, each
    /// depending on the one before. Empty when the text is already
    /// `new_text`. What writers store: a create's body is the first change,
    /// the rest follow as `edit_body` events of the same write.
    pub fn edit_in_changes(&mut self, new_text: &str) -> Vec<Bytes> {
        if self.text() == new_text {
            return Vec::new();
        }
        self.doc
            .set_actor(automerge::ActorId::from(uuid::Uuid::new_v4().as_bytes()));
        write_text_in_changes(&mut self.doc, &self.text, new_text)
    }

    /// Like [`BodyDoc::edit_in_changes`], in one change whatever its size
    /// (tests and benchmark fixtures). Returns `None` when the text is
    /// already `new_text`.
    pub fn edit(&mut self, new_text: &str) -> Option<Bytes> {
        if self.text() == new_text {
            return None;
        }
        // A UUID v4: random, and its version nibble is never a derived
        // actor's (`is_edit` tells the two apart).
        self.doc
            .set_actor(automerge::ActorId::from(uuid::Uuid::new_v4().as_bytes()));
        write_text(&mut self.doc, &self.text, new_text);
        self.doc
            .commit_with(CommitOptions::default().with_time(0))?;
        let change = self.doc.get_last_local_change()?;
        Some(Bytes(change.raw_bytes().to_vec()))
    }

    /// The change that turns the document *at `at`* into `new_text`,
    /// derived deterministically: its actor comes from `seed` (which must
    /// name everything the change depends on besides `at` and `new_text`,
    /// which are mixed in here), its time is 0. The change is also applied
    /// to this document. `None` when the text at `at` is `new_text` already.
    pub fn derived_change(
        &mut self,
        at: &[Bytes],
        new_text: &str,
        seed: &[u8],
    ) -> Result<Option<Bytes>, BodyError> {
        let mut fork = self.fork(at)?;
        let mut full_seed = Vec::with_capacity(seed.len() + 64 + at.len() * 32);
        full_seed.extend_from_slice(&(seed.len() as u64).to_le_bytes());
        full_seed.extend_from_slice(seed);
        for h in at {
            full_seed.extend_from_slice(&h.0);
        }
        full_seed.extend_from_slice(blake3::hash(new_text.as_bytes()).as_bytes());
        fork.set_actor(derived_actor(&full_seed));
        let changed = write_text(&mut fork, &self.text, new_text);
        Ok(self.commit_derived(fork, changed)?.map(|(c, _)| c))
    }

    /// Delete from `fork` the live characters the changes `drop` inserted;
    /// whether there were any.
    fn remove_inserted(&self, fork: &mut AutoCommit, drop: &[Bytes]) -> bool {
        let ranges = self.op_ranges(drop);
        self.delete_where(fork, |id| match id {
            automerge::ObjId::Id(counter, actor, _) => ranges
                .iter()
                .any(|(a, lo, hi)| a == actor && (*lo..=*hi).contains(counter)),
            automerge::ObjId::Root => false,
        })
    }

    /// Like [`BodyDoc::derived_change`], but before diffing to `new_text`
    /// the change deletes every live character inserted by the changes in
    /// `drop` (their hashes): when two derivations of the same tracker text
    /// meet, the copies of the redundant one go, and the other's, which
    /// later edits may build on, stay.
    pub fn derived_change_dropping(
        &mut self,
        at: &[Bytes],
        drop: &[Bytes],
        new_text: &str,
        seed: &[u8],
    ) -> Result<Option<(Bytes, bool)>, BodyError> {
        let mut fork = self.fork(at)?;
        let dropped: Vec<u8> = drop.iter().flat_map(|h| h.0.iter().copied()).collect();
        let full_seed = join_seed(b"dropping", seed, at, &dropped, new_text);
        fork.set_actor(derived_actor(&full_seed));
        let mut changed = self.remove_inserted(&mut fork, drop);
        changed |= write_text(&mut fork, &self.text, new_text);
        self.commit_derived(fork, changed)
    }

    /// The elements of the body text that changes outside the history of
    /// `at`, other than the changes in `derived`, delete: deletions made by
    /// writers (edits, carried deletions) that the state at `at` has not
    /// seen. Keyed by (counter, actor) of the inserting operation.
    pub fn deleted_outside(
        &mut self,
        at: &[Bytes],
        derived: &[Bytes],
    ) -> Result<Elements, BodyError> {
        let Some(at) = at.iter().map(to_hash).collect::<Option<Vec<_>>>() else {
            return Ok(Elements::default());
        };
        let outside: Vec<Change> = self.doc.get_changes(&at).into_iter().collect();
        deletions_by(outside, derived)
    }

    /// The text elements the changes `hashes` delete (those this document
    /// holds).
    pub fn deleted_by(&mut self, hashes: &[Bytes]) -> Result<Elements, BodyError> {
        let changes: Vec<Change> = hashes
            .iter()
            .filter_map(to_hash)
            .filter_map(|h| self.doc.get_change_by_hash(&h))
            .collect();
        deletions_by(changes, &[])
    }

    /// The characters of the state at `a` paired with those of the state at
    /// `b`, position by position, when both states have the same text (two
    /// sync points of one tracker revision: the same tracker characters,
    /// derived or sent by two writers); `None` when the texts differ.
    pub fn twins(
        &mut self,
        a: &[Bytes],
        b: &[Bytes],
    ) -> Result<Option<Vec<(Element, Element)>>, BodyError> {
        let (fa, fb) = (self.fork(a)?, self.fork(b)?);
        let (ca, cb) = (self.live_chars(&fa), self.live_chars(&fb));
        if ca.len() != cb.len() || ca.iter().zip(&cb).any(|(x, y)| x.1 != y.1) {
            return Ok(None);
        }
        Ok(Some(
            ca.into_iter()
                .zip(cb)
                .filter_map(|((x, _), (y, _))| Some((element(&x)?, element(&y)?)))
                .collect(),
        ))
    }

    /// The text at `at` without the characters `gone` (see
    /// [`BodyDoc::deleted_outside`]).
    pub fn text_without(&mut self, at: &[Bytes], gone: &Elements) -> Result<String, BodyError> {
        let fork = self.fork(at)?;
        Ok(self
            .live_chars(&fork)
            .into_iter()
            .filter(|(id, _)| element(id).is_none_or(|e| !gone.contains(&e)))
            .map(|(_, c)| c)
            .collect())
    }

    /// The live characters of the document at `at`: element, character,
    /// and the index in `changes` of the change that inserted it, if one
    /// of them did.
    pub fn owned_chars(
        &mut self,
        at: &[Bytes],
        changes: &[Bytes],
    ) -> Result<Vec<(Element, char, Option<usize>)>, BodyError> {
        let ranges = self.op_ranges(changes);
        let fork = self.fork(at)?;
        Ok(self
            .live_chars(&fork)
            .into_iter()
            .filter_map(|(id, c)| match id {
                automerge::ObjId::Id(counter, actor, _) => {
                    let owner = ranges
                        .iter()
                        .position(|(a, lo, hi)| *a == actor && (*lo..=*hi).contains(&counter));
                    Some(((counter, actor), c, owner))
                }
                automerge::ObjId::Root => None,
            })
            .collect())
    }

    /// (actor, first op, last op) of each change the document holds, in
    /// the order given (a change it lacks gets an empty range).
    fn op_ranges(&self, changes: &[Bytes]) -> Vec<(automerge::ActorId, u64, u64)> {
        changes
            .iter()
            .map(|h| {
                to_hash(h)
                    .and_then(|hash| self.doc.get_change_by_hash(&hash))
                    .map_or((automerge::ActorId::from([0u8; 16]), 1, 0), |c| {
                        (c.actor_id().clone(), c.start_op().get(), c.max_op())
                    })
            })
            .collect()
    }

    /// Like [`BodyDoc::derived_change_dropping`], for single characters:
    /// before diffing to `new_text` the change deletes the elements `gone`
    /// (sorted), where live at `at`.
    pub fn derived_change_removing(
        &mut self,
        at: &[Bytes],
        gone: &[Element],
        new_text: &str,
        seed: &[u8],
    ) -> Result<Option<(Bytes, bool)>, BodyError> {
        let mut fork = self.fork(at)?;
        let mut removed = Vec::new();
        for (counter, actor) in gone {
            removed.extend_from_slice(&counter.to_le_bytes());
            removed.extend_from_slice(&(actor.to_bytes().len() as u64).to_le_bytes());
            removed.extend_from_slice(actor.to_bytes());
        }
        let full_seed = join_seed(b"removing", seed, at, &removed, new_text);
        fork.set_actor(derived_actor(&full_seed));
        let mut changed = self.delete_where(&mut fork, |id| {
            element(id).is_some_and(|e| gone.binary_search(&e).is_ok())
        });
        changed |= write_text(&mut fork, &self.text, new_text);
        self.commit_derived(fork, changed)
    }

    /// Live characters of `fork`'s body text: (element id, character), in
    /// text order.
    fn live_chars(&self, fork: &AutoCommit) -> Vec<(automerge::ObjId, char)> {
        let text = fork
            .text(&self.text)
            .expect("BUG: the body object exists from genesis on");
        fork.list_range(&self.text, ..)
            .map(|item| item.id())
            .zip(text.chars())
            .collect()
    }

    /// The deletions a join `r` must carry across copies (refs-format.md,
    /// section 6b, "Deletions carried across copies"), as a derived change
    /// applied to this document, or `None` when there are none.
    ///
    /// A join deletes characters that are a second copy of text it keeps
    /// (a dropped derived copy, or a duplicate its diff removed). A change
    /// concurrent with `r` (not an ancestor, not built on it) that deleted
    /// some of those characters was deleting text that `r` keeps in the
    /// other copy: the aligned characters of `r`'s text are deleted too,
    /// where still live. A run of deleted characters counts as a copy only
    /// when all of it aligns with `r`'s text, compactly, and each character
    /// it aligns with was inserted by a change concurrent with the one that
    /// inserted it (copies are made by writers that lacked each other's
    /// text; two equal words one writer typed are not copies). Any derived
    /// change `r` (an import's, one head as its base) also carries to what
    /// it *moved*: a run it deleted that aligns with characters `r` itself
    /// inserted (its diff deleted a token here and wrote it again there).
    pub fn carried_deletions(
        &mut self,
        r: &Bytes,
        derived: &[Bytes],
    ) -> Result<Option<Bytes>, BodyError> {
        let heads = self.heads();
        if heads.len() < 2 {
            return Ok(None);
        }
        let Some(deps) = self.deps(r) else {
            return Ok(None);
        };
        let concurrent: Vec<Bytes> = heads
            .iter()
            .filter(|h| !self.covers(std::slice::from_ref(*h), std::slice::from_ref(r)))
            .cloned()
            .collect();
        if concurrent.is_empty() {
            return Ok(None);
        }
        // Which characters edits concurrent with `r` deleted (not other
        // derived changes: a join made elsewhere drops the same copy).
        let mut view_heads = deps.clone();
        view_heads.extend(concurrent);
        let concurrent: Vec<Change> = self
            .changes_between(&deps, &view_heads)
            .iter()
            .filter_map(to_hash)
            .filter_map(|h| self.doc.get_change_by_hash(&h))
            .collect();
        let edited = deletions_by(concurrent, derived)?;
        let gone = |id: &automerge::ObjId| element(id).is_some_and(|e| edited.contains(&e));
        let targets: std::collections::HashSet<automerge::ObjId> = self
            .copies_dropped(r, &deps, &gone, false)?
            .into_iter()
            .flatten()
            .filter(|(d, _)| gone(d))
            .map(|(_, k)| k)
            .collect();
        if targets.is_empty() {
            return Ok(None);
        }
        let mut fork = self.fork(&heads)?;
        let mut seed = Vec::new();
        seed.extend_from_slice(b"carry");
        for h in std::iter::once(r).chain(&heads) {
            seed.extend_from_slice(&(h.0.len() as u64).to_le_bytes());
            seed.extend_from_slice(&h.0);
        }
        fork.set_actor(derived_actor(&seed));
        let changed = self.delete_where(&mut fork, |id| targets.contains(id));
        Ok(self.commit_derived(fork, changed)?.map(|(c, _)| c))
    }

    /// The tracker's deletions a sync point missed (refs-format.md, section
    /// 6b, "Deletions an import from a stale point missed"), as a derived
    /// change applied to this document, or `None` when there are none.
    ///
    /// `newer` is a sync point of a later tracker revision than `older`,
    /// whose text is `newer_text`, and does not descend from `older`: its
    /// importer derived that text from an older point. The tracker went
    /// from `older`'s text to `newer_text`, so the whole words it deleted
    /// (by the alignment of the two texts, and only tokens `newer_text` has
    /// fewer copies of) were deleted by someone who saw them. The characters
    /// of such words that `newer`'s state never had, and that are still
    /// live here, survived only because that importer lacked them: they are
    /// deleted.
    pub fn missed_deletions(
        &mut self,
        older: &[Bytes],
        newer: &[Bytes],
        newer_text: &str,
        seed: &[u8],
    ) -> Result<Option<Bytes>, BodyError> {
        let fork = self.fork(older)?;
        let chars = self.live_chars(&fork);
        let old_text: String = chars.iter().map(|(_, c)| *c).collect();
        let lost = textdiff::lost_tokens(&old_text, newer_text);
        if lost.is_empty() {
            return Ok(None);
        }
        let kept = textdiff::alignment(&old_text, newer_text);
        let mut runs: Vec<&[(automerge::ObjId, char)]> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if kept[i].is_some() {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && kept[i].is_none() {
                i += 1;
            }
            let run: String = chars[start..i].iter().map(|(_, c)| *c).collect();
            if textdiff::run_is_lost(&run, &lost) {
                runs.push(&chars[start..i]);
            }
        }
        if runs.is_empty() {
            return Ok(None);
        }
        let fork = self.fork(newer)?;
        let in_newer: std::collections::HashSet<automerge::ObjId> = self
            .live_chars(&fork)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let heads = self.heads();
        let mut now = self.fork(&heads)?;
        let at: std::collections::HashMap<automerge::ObjId, usize> = self
            .live_chars(&now)
            .into_iter()
            .enumerate()
            .map(|(i, (id, _))| (id, i))
            .collect();
        // A run counts when `newer`'s state has none of it (its history
        // deleted none of it either, or it would not be live here) and it
        // is whole and side by side here: a diff that reused some of its
        // characters in another word (`[b1]` read as a typo of `[t11]`) has
        // made them part of that word.
        // A separator of the run that is gone here already (another
        // derivation replaced it, a line break by a space) needs nothing and
        // does not hold the word back.
        let mut doomed: std::collections::HashSet<automerge::ObjId> = Default::default();
        for run in runs {
            let live: Option<Vec<(usize, &automerge::ObjId)>> = run
                .iter()
                .filter(|(id, c)| !c.is_whitespace() || at.contains_key(id))
                .map(|(id, _)| {
                    (!in_newer.contains(id))
                        .then(|| at.get(id).map(|&p| (p, id)))
                        .flatten()
                })
                .collect();
            if let Some(live) =
                live.filter(|p| !p.is_empty() && p.windows(2).all(|w| w[0].0 + 1 == w[1].0))
            {
                doomed.extend(live.into_iter().map(|(_, id)| id.clone()));
            }
        }
        now.set_actor(derived_actor(&join_seed(
            b"missed",
            seed,
            &heads,
            &[],
            newer_text,
        )));
        let changed = self.delete_where(&mut now, |id| doomed.contains(id));
        Ok(self.commit_derived(now, changed)?.map(|(c, _)| c))
    }

    /// The characters that derived changes outside the history of `at`
    /// deleted as second copies of characters in `gone`, word by word (section 6b): a
    /// join dropped one copy and kept the other, and a writer then deleted
    /// the kept one. A state that has not seen the join still shows the
    /// dropped copy; it is the same text, deleted by the same writer.
    pub fn dropped_twins(
        &mut self,
        at: &[Bytes],
        derived: &[Bytes],
        gone: &Elements,
    ) -> Result<Vec<Vec<Element>>, BodyError> {
        let mut out = Vec::new();
        for r in derived {
            if !self.has(r) || self.covers(at, std::slice::from_ref(r)) {
                continue;
            }
            let Some(deps) = self.deps(r).filter(|d| !d.is_empty()) else {
                continue;
            };
            for run in self.copies_dropped(r, &deps, &|_| true, true)? {
                let gone_run: Vec<Element> = run
                    .iter()
                    .filter(|(_, k)| element(k).is_some_and(|k| gone.contains(&k)))
                    .filter_map(|(d, _)| element(d))
                    .collect();
                if !gone_run.is_empty() {
                    out.push(gone_run);
                }
            }
        }
        Ok(out)
    }

    /// The characters a derived change `r` (built on `deps`) deleted as a
    /// second copy of text it keeps, each with the character of `r`'s text
    /// it aligns with: (deleted, kept), run by run. Only runs holding a character
    /// `wanted` accepts are aligned. The rules are those of
    /// [`BodyDoc::carried_deletions`]; with `words`, each word of a run is
    /// a run of its own (a join drops a derived copy whole, some of whose
    /// words were copies of kept text and others of text deleted since).
    fn copies_dropped(
        &mut self,
        r: &Bytes,
        deps: &[Bytes],
        wanted: &dyn Fn(&automerge::ObjId) -> bool,
        words: bool,
    ) -> Result<Vec<Vec<(automerge::ObjId, automerge::ObjId)>>, BodyError> {
        // A join starts from two or more points' heads; any other derived
        // change (an import's sync point) can only have moved text.
        let join = deps.len() >= 2;
        let fork = self.fork(deps)?;
        let before = self.live_chars(&fork);
        let fork = self.fork(std::slice::from_ref(r))?;
        let after = self.live_chars(&fork);
        let after_ids: std::collections::HashSet<&automerge::ObjId> =
            after.iter().map(|(id, _)| id).collect();
        // The characters `r` deleted, in text order, with their position in
        // the base (for runs).
        let deleted: Vec<(usize, &automerge::ObjId, char)> = before
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| !after_ids.contains(id))
            .map(|(i, (id, c))| (i, id, *c))
            .collect();
        if deleted.is_empty() {
            return Ok(Vec::new());
        }
        if !deleted.iter().any(|(_, id, _)| wanted(id)) {
            return Ok(Vec::new());
        }
        let deleted_text: String = deleted.iter().map(|(_, _, c)| *c).collect();
        let after_text: String = after.iter().map(|(_, c)| *c).collect();
        let map = textdiff::alignment(&deleted_text, &after_text);
        let inserter = self.inserters();
        let owners: Vec<Option<Bytes>> = deleted.iter().map(|(_, id, _)| inserter(id)).collect();
        let mut out = Vec::new();
        // Runs: consecutive in the base, inserted by one change.
        let mut runs = (0..deleted.len())
            .collect::<Vec<usize>>()
            .chunk_by(|a, b| deleted[*a].0 + 1 == deleted[*b].0 && owners[*a] == owners[*b])
            .map(<[usize]>::to_vec)
            .collect::<Vec<_>>();
        if words {
            runs = runs
                .iter()
                .flat_map(|run| {
                    run.split(|&k| deleted[k].2.is_whitespace())
                        .filter(|w| !w.is_empty())
                        .map(<[usize]>::to_vec)
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        for run in runs {
            if !run.iter().any(|&k| wanted(deleted[k].1)) {
                continue;
            }
            // Aligned with everything the join deleted, else on its own
            // (a neighbouring run the join deleted for another reason can
            // pull the joint alignment elsewhere).
            let joint: Vec<Option<usize>> = run.iter().map(|&k| map[k]).collect();
            let solid_mapped = |m: &[Option<usize>]| {
                run.iter()
                    .zip(m)
                    .all(|(&k, j)| j.is_some() || deleted[k].2.is_whitespace())
            };
            let local = if solid_mapped(&joint) {
                joint
            } else {
                let run_text: String = run.iter().map(|&k| deleted[k].2).collect();
                textdiff::alignment(&run_text, &after_text)
            };
            if !solid_mapped(&local) {
                continue;
            }
            let pairs: Vec<(usize, usize)> = run
                .iter()
                .zip(&local)
                .filter(|(&k, _)| !deleted[k].2.is_whitespace())
                .filter_map(|(&k, j)| j.map(|j| (k, j)))
                .collect();
            let (Some(lo), Some(hi)) = (
                pairs.iter().map(|p| p.1).min(),
                pairs.iter().map(|p| p.1).max(),
            ) else {
                continue;
            };
            if hi - lo + 1 > 2 * run.len() {
                continue;
            }
            // A copy is the same characters side by side: `[t1]` does not
            // align with `[t1` and `]` of `[t10]`.
            let torn = run
                .iter()
                .zip(&local)
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| {
                    let ((&a, ja), (&b, jb)) = (w[0], w[1]);
                    !deleted[a].2.is_whitespace()
                        && !deleted[b].2.is_whitespace()
                        && matches!((ja, jb), (Some(x), Some(y)) if x + 1 != *y)
                });
            if torn {
                continue;
            }
            let copies = pairs
                .iter()
                .all(|&(k, j)| match (&owners[k], inserter(&after[j].0)) {
                    // Moved by `r`: its diff deleted the text here and
                    // wrote it again there.
                    (Some(a), Some(b)) if b == *r => *a != b,
                    (Some(a), Some(b)) => {
                        join && *a != b
                            && !self.covers(std::slice::from_ref(a), std::slice::from_ref(&b))
                            && !self.covers(std::slice::from_ref(&b), std::slice::from_ref(a))
                    }
                    _ => false,
                });
            if !copies {
                continue;
            }
            out.push(
                run.iter()
                    .zip(&local)
                    .filter_map(|(&k, j)| j.map(|j| (deleted[k].1.clone(), after[j].0.clone())))
                    .collect(),
            );
        }
        Ok(out)
    }

    /// A lookup from a text element to the hash of the change that
    /// inserted it.
    fn inserters(&mut self) -> impl Fn(&automerge::ObjId) -> Option<Bytes> + use<> {
        let mut by_actor: std::collections::HashMap<automerge::ActorId, Vec<(u64, u64, Bytes)>> =
            Default::default();
        for c in self.doc.get_changes(&[]) {
            by_actor.entry(c.actor_id().clone()).or_default().push((
                c.start_op().get(),
                c.max_op(),
                hash_bytes(&c.hash()),
            ));
        }
        move |id| match id {
            automerge::ObjId::Id(counter, actor, _) => by_actor
                .get(actor)?
                .iter()
                .find(|(lo, hi, _)| (*lo..=*hi).contains(counter))
                .map(|(_, _, h)| h.clone()),
            automerge::ObjId::Root => None,
        }
    }

    /// Commit a derived change made in `fork` (time 0) and apply it here:
    /// its bytes, and whether this document lacked it. `None` when the
    /// fork changed nothing.
    fn commit_derived(
        &mut self,
        mut fork: AutoCommit,
        changed: bool,
    ) -> Result<Option<(Bytes, bool)>, BodyError> {
        if !changed
            || fork
                .commit_with(CommitOptions::default().with_time(0))
                .is_none()
        {
            return Ok(None);
        }
        let Some(change) = fork.get_last_local_change() else {
            return Ok(None);
        };
        let bytes = Bytes(change.raw_bytes().to_vec());
        let new = self.doc.get_change_by_hash(&change.hash()).is_none();
        self.apply(&bytes)?;
        Ok(Some((bytes, new)))
    }

    /// Delete from `fork`'s text every live character `doomed` picks;
    /// whether there were any.
    fn delete_where(
        &self,
        fork: &mut AutoCommit,
        doomed: impl Fn(&automerge::ObjId) -> bool,
    ) -> bool {
        let positions: Vec<usize> = fork
            .list_range(&self.text, ..)
            .enumerate()
            .filter(|(_, item)| doomed(&item.id()))
            .map(|(i, _)| i)
            .collect();
        for pos in positions.iter().rev() {
            fork.splice_text(&self.text, *pos, 1, "")
                .expect("BUG: a live character's position is in the text");
        }
        !positions.is_empty()
    }

    /// Apply one more change.
    pub fn apply(&mut self, change: &Bytes) -> Result<(), BodyError> {
        let parsed = Change::from_bytes(change.0.clone())
            .map_err(|e| BodyError::BadChange(e.to_string()))?;
        let doc = &mut self.doc;
        catch_unwind(AssertUnwindSafe(|| doc.apply_changes([parsed])))
            .map_err(|_| BodyError::Apply("automerge panicked on a body change".into()))?
            .map_err(|e| BodyError::Apply(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_is_deterministic() {
        let issue = IssueId::derived("x");
        let mut a = genesis(issue);
        let mut b = genesis(issue);
        assert_eq!(a.save(), b.save());
    }

    #[test]
    fn concurrent_edits_both_survive_in_any_order() {
        let issue = IssueId::new_random();
        let mut base = BodyDoc::load(issue, []).expect("empty body");
        let c0 = base.edit("hello world").expect("a change");
        let mut left = BodyDoc::load(issue, [&c0]).expect("loads");
        let mut right = BodyDoc::load(issue, [&c0]).expect("loads");
        let l = left.edit("HELLO world").expect("a change");
        let r = right.edit("hello world!!").expect("a change");
        let ab = BodyDoc::load(issue, [&c0, &l, &r]).expect("loads").text();
        let ba = BodyDoc::load(issue, [&r, &l, &c0]).expect("loads").text();
        assert_eq!(ab, ba);
        assert_eq!(ab, "HELLO world!!");
    }

    #[test]
    fn a_saved_document_loads_as_its_changes_do_and_nothing_else() {
        let issue = IssueId::new_random();
        let mut base = BodyDoc::load(issue, []).expect("empty body");
        let c0 = base.edit("hello world").expect("a change");
        let c1 = base.edit("hello there world").expect("a change");
        let mut saved_at_c0 = BodyDoc::load(issue, [&c0]).expect("loads");
        let saved = saved_at_c0.save();
        // The saved document plus a later change: the same text and heads.
        let mut from_saved = BodyDoc::load_saved(issue, &saved, [&c0, &c1]).expect("loads");
        let mut whole = BodyDoc::load(issue, [&c0, &c1]).expect("loads");
        assert_eq!(from_saved.text(), "hello there world");
        assert_eq!(from_saved.heads(), whole.heads());
        // Edits on a document loaded from a save merge like any other.
        let c2 = from_saved.edit("hello there world!").expect("a change");
        let merged = BodyDoc::load(issue, [&c0, &c1, &c2]).expect("loads");
        assert_eq!(merged.text(), "hello there world!");
        // A save holding a change the set lacks is refused.
        let mut ahead = BodyDoc::load(issue, [&c0, &c1]).expect("loads");
        let ahead = ahead.save();
        assert!(BodyDoc::load_saved(issue, &ahead, [&c0]).is_err());
        // Another issue's save, or garbage, is refused (no panic).
        let other = IssueId::new_random();
        let mut foreign = BodyDoc::load(other, []).expect("empty body");
        let foreign = foreign.save();
        assert!(BodyDoc::load_saved(issue, &foreign, [&c0]).is_err());
        assert!(BodyDoc::load_saved(issue, &foreign, []).is_err());
        assert!(BodyDoc::load_saved(issue, &[1, 2, 3], [&c0]).is_err());
    }

    #[test]
    fn garbage_change_is_an_error() {
        let issue = IssueId::new_random();
        assert!(BodyDoc::load(issue, [&Bytes(vec![1, 2, 3])]).is_err());
    }

    #[test]
    fn derived_changes_are_the_same_bytes_on_every_replica() {
        let issue = IssueId::new_random();
        let mut a = BodyDoc::load(issue, []).expect("empty");
        let base = a.edit("base\n").expect("a change");
        let at = a.heads();
        // Replica b has a local edit the derivation must not depend on.
        let mut b = BodyDoc::load(issue, [&base]).expect("loads");
        let local = b.edit("base\nlocal\n").expect("a change");
        let from_a = a
            .derived_change(&at, "base\ntracker\n", b"seed")
            .expect("derives")
            .expect("a change");
        let from_b = b
            .derived_change(&at, "base\ntracker\n", b"seed")
            .expect("derives")
            .expect("a change");
        assert_eq!(from_a, from_b);
        let all = BodyDoc::load(issue, [&base, &local, &from_a, &from_b]).expect("loads");
        let text = all.text();
        assert_eq!(text.matches("tracker").count(), 1, "{text:?}");
        assert_eq!(text.matches("local").count(), 1, "{text:?}");
    }

    /// Two copies of ` [t1]` derived apart (with `drop_one`, `two` derives
    /// ` [t10]`), a join dropping one of them, and an edit concurrent with
    /// the join that deletes `one`'s token.
    fn joined_copies(join_text: &str, drop_one: bool) -> (BodyDoc, [Bytes; 4]) {
        let issue = IssueId::new_random();
        let mut a = BodyDoc::load(issue, []).expect("empty");
        let base = a.edit("x").expect("c");
        let at = a.heads();
        let one = a
            .derived_change(&at, "x [t1]", b"one")
            .expect("d")
            .expect("c");
        let two_text = if drop_one { "x [t10]" } else { "x [t1]" };
        let two = a
            .derived_change(&at, two_text, b"two")
            .expect("d")
            .expect("c");
        let union = a.heads();
        let (oh, th) = (change_hash(&one).expect("h"), change_hash(&two).expect("h"));
        let dropped = if drop_one { oh.clone() } else { th.clone() };
        let (join, _) = a
            .derived_change_dropping(&union, &[dropped], join_text, b"join")
            .expect("derives")
            .expect("a change");
        assert_eq!(a.text(), join_text);
        // The writer had `one`'s copy only, and deleted its token.
        let mut b = BodyDoc::load(issue, [&base, &one]).expect("loads");
        let edit = b.edit("x ").expect("c");
        a.apply(&edit).expect("applies");
        let eh = change_hash(&edit).expect("h");
        (a, [oh, th, change_hash(&join).expect("h"), eh])
    }

    #[test]
    fn a_word_a_join_dropped_as_a_copy_is_the_twin_of_the_word_it_kept() {
        let (mut a, [one, two, join, _]) = joined_copies("x [t1]", false);
        let only_two = [two.clone()];
        let derived = [one, two, join];
        // A state holding only `two`'s copy has seen neither the join nor
        // the deletion of `one`'s copy.
        let gone = a.deleted_outside(&only_two, &derived).expect("gone");
        assert!(!gone.is_empty());
        assert!(a
            .text_without(&only_two, &gone)
            .expect("t")
            .contains("[t1]"));
        let twins = a.dropped_twins(&only_two, &derived, &gone).expect("twins");
        assert_eq!(twins.len(), 1, "one word");
        assert_eq!(twins[0].len(), 4, "the four characters of `two`'s `[t1]`");
        let mut all = gone.clone();
        all.extend(twins.into_iter().flatten());
        let text = a.text_without(&only_two, &all).expect("t");
        assert!(!text.contains("[t1]"), "{text:?}");
        // A state that saw the join has nothing more to leave out.
        let at_join = a.heads();
        assert!(a
            .dropped_twins(&at_join, &derived, &gone)
            .expect("twins")
            .is_empty());
    }

    #[test]
    fn states_with_one_text_pair_their_characters_position_by_position() {
        let issue = IssueId::new_random();
        let mut a = BodyDoc::load(issue, []).expect("empty");
        a.edit("x").expect("c");
        let at = a.heads();
        let one = a
            .derived_change(&at, "x [t1]", b"one")
            .expect("d")
            .expect("c");
        let two = a
            .derived_change(&at, "x [t1]", b"two")
            .expect("d")
            .expect("c");
        let (one, two) = (change_hash(&one).expect("h"), change_hash(&two).expect("h"));
        let pairs = a
            .twins(std::slice::from_ref(&one), &[two])
            .expect("t")
            .expect("same text");
        assert_eq!(pairs.len(), "x [t1]".chars().count());
        assert_eq!(pairs[0].0, pairs[0].1, "the shared `x` is its own twin");
        assert!(pairs[2..].iter().all(|(p, q)| p != q), "the copies differ");
        assert!(
            a.twins(&[one], &at).expect("t").is_none(),
            "other texts pair nothing"
        );
    }

    #[test]
    fn a_token_is_not_a_copy_of_pieces_of_a_longer_one() {
        // The join keeps `[t10]` and drops `[t1]`; the writer deletes `[t1]`.
        // `[t1]` aligns with `[t1` and `]` of `[t10]`, which is not a copy:
        // nothing is carried, and `[t10]` stays whole.
        let (mut a, [one, two, join, _]) = joined_copies("x [t10]", true);
        assert_eq!(a.heads().len(), 2);
        let carried = a
            .carried_deletions(&join, &[one, two, join.clone()])
            .expect("carry");
        assert!(carried.is_none(), "carried into {:?}", a.text());
        assert!(a.text().contains("[t10]"), "{:?}", a.text());
    }

    /// CLI model seed 1140 (16 steps): a clone imported the tracker's
    /// text from a point older than another clone's export, and its
    /// derivation turned the line break before a token into a space; the
    /// tracker user had deleted the token. The word the tracker deleted
    /// was held back because its line break, part of the unaligned run,
    /// was no longer live: the token came back and was exported again.
    #[test]
    fn a_missed_deletion_does_not_wait_for_a_separator_gone_already() {
        let issue = IssueId::new_random();
        let mut doc = BodyDoc::load(issue, []).expect("empty");
        let base = doc.edit("xa1\nyb2").expect("a change");
        // The export: a token inserted on the second line.
        let mut left = BodyDoc::load(issue, [&base]).expect("loads");
        let older = left.edit("xa1\ntok9 yb2").expect("a change");
        // The stale import: the line break became a space, the token is
        // not in its state.
        let mut right = BodyDoc::load(issue, [&base]).expect("loads");
        let newer = right.edit("xa1 yb2").expect("a change");
        let mut merged = BodyDoc::load(issue, [&base, &older, &newer]).expect("loads");
        assert!(merged.text().contains("tok9"), "{:?}", merged.text());
        let change = merged
            .missed_deletions(
                &[change_hash(&older).expect("hash")],
                &[change_hash(&newer).expect("hash")],
                "xa1 yb2",
                b"seed",
            )
            .expect("derives");
        assert!(change.is_some(), "nothing deleted: {:?}", merged.text());
        let text = merged.text();
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>(),
            ["xa1", "yb2"],
            "{text:?}"
        );
    }

    #[test]
    fn dropping_removes_the_redundant_copy_whatever_the_order() {
        let issue = IssueId::new_random();
        let mut a = BodyDoc::load(issue, []).expect("empty");
        let base = a.edit("base").expect("c");
        let at = a.heads();
        let one = a
            .derived_change(&at, "x 🎉é base", b"one")
            .expect("d")
            .expect("c");
        let two = a
            .derived_change(&at, "x 🎉é base", b"two")
            .expect("d")
            .expect("c");
        assert_eq!(a.text().matches("🎉é").count(), 2, "{:?}", a.text());
        let union = a.heads();
        let two_hash = change_hash(&two).expect("hash");
        a.derived_change_dropping(&union, &[two_hash], "x 🎉é base", b"join")
            .expect("derives")
            .expect("a change");
        assert_eq!(a.text(), "x 🎉é base");
        // The copy that stays is `one`'s: an edit made on top of `one`
        // alone still applies where it was.
        let mut b = BodyDoc::load(issue, [&base, &one]).expect("loads");
        let edit = b.edit("x 🎉é! base").expect("c");
        a.apply(&edit).expect("applies");
        assert_eq!(a.text(), "x 🎉é! base");
    }

    #[test]
    fn covers_follows_ancestry() {
        let issue = IssueId::new_random();
        let mut a = BodyDoc::load(issue, []).expect("empty");
        let one = change_hash(&a.edit("one").expect("c")).expect("hash");
        let two = change_hash(&a.edit("one two").expect("c")).expect("hash");
        let (one_s, two_s) = (std::slice::from_ref(&one), std::slice::from_ref(&two));
        assert!(a.covers(two_s, one_s));
        assert!(!a.covers(one_s, two_s));
        assert!(a.covers(two_s, two_s));
        assert_eq!(a.text_at(&[one]).expect("text"), "one");
    }

    /// A text of `lines` numbered lines of a few words (`salt` varies them).
    fn lines_of(lines: usize, salt: &str) -> String {
        (0..lines)
            .map(|i| format!("{i:05} {salt} the parser fails {salt} when input is empty\n"))
            .collect()
    }

    #[test]
    fn a_large_edit_is_several_changes_that_merge_as_one_would() {
        let issue = IssueId::new_random();
        let base_text = lines_of(1_000, "old");
        let mut base = BodyDoc::load(issue, []).expect("empty");
        let base_changes = base.edit_in_changes(&base_text);
        assert!(base_changes.len() >= 2, "{} changes", base_changes.len());
        // A rewrite of every line, in several changes of one actor.
        let rewrite: String = (0..1_000)
            .map(|i| format!("{i:05} lorem ipsum dolor sit amet, consectetur {i}\n"))
            .collect();
        let mut chunked = BodyDoc::load(issue, &base_changes).expect("loads");
        let parts = chunked.edit_in_changes(&rewrite);
        assert!(parts.len() >= 2, "{} changes", parts.len());
        assert_eq!(chunked.text(), rewrite);
        // The same rewrite in one change, and a concurrent edit of line 7.
        let mut whole = BodyDoc::load(issue, &base_changes).expect("loads");
        let one = whole.edit(&rewrite).expect("a change");
        let mut other = BodyDoc::load(issue, &base_changes).expect("loads");
        let concurrent = other
            .edit(&base_text.replacen("00007 old the", "00007 old THE", 1))
            .expect("a change");
        // Any order of arrival (the chunks reversed: causal order is the
        // loader's job), the same text as with the one change.
        let mut all: Vec<&Bytes> = base_changes.iter().chain(&parts).collect();
        all.push(&concurrent);
        all.reverse();
        let merged_chunks = BodyDoc::load(issue, all).expect("loads").text();
        let merged_one = BodyDoc::load(issue, base_changes.iter().chain([&one, &concurrent]))
            .expect("loads")
            .text();
        assert_eq!(merged_chunks, merged_one);
        assert!(merged_chunks.contains("THE"), "the concurrent edit is kept");
        // Every change of the write is one actor's: the last is the state
        // the write left.
        let last = last_of_write(&parts[0], parts.iter().rev()).expect("parses");
        assert_eq!(
            Some(last.clone()),
            change_hash(parts.last().expect("parts"))
        );
        assert_eq!(chunked.heads(), vec![last]);
        // Another write's changes are not the write's.
        assert_eq!(
            last_of_write(&parts[0], [&concurrent]),
            change_hash(&parts[0])
        );
    }

    #[test]
    fn a_small_edit_is_one_change() {
        let issue = IssueId::new_random();
        let mut doc = BodyDoc::load(issue, []).expect("empty");
        let changes = doc.edit_in_changes("a short body\nof two lines");
        assert_eq!(changes.len(), 1);
        assert!(doc.edit_in_changes("a short body\nof two lines").is_empty());
    }
}
