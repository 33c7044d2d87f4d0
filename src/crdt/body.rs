//! The issue body as an automerge `Text`.
//!
//! Every issue's body document starts from the same *genesis* change, derived
//! from the issue id alone (fixed actor, time 0), so every replica can rebuild
//! it and every body change, from any writer, builds on the same text object.
//! Body events carry one automerge change each; the text is the result of
//! applying the set of changes, which automerge makes order-independent.
//!
//! Pure: no I/O, no clock (changes are stamped with time 0).

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, Change, ObjType, ReadDoc, ROOT};

use crate::event::{Bytes, IssueId};

/// Errors from applying body changes.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Change bytes that automerge cannot load.
    #[error("malformed body change: {0}")]
    BadChange(String),
    /// A change that loads but cannot be applied.
    #[error("body change cannot be applied: {0}")]
    Apply(String),
}

const BODY_KEY: &str = "body";

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
        std::panic::catch_unwind(|| Self::load_untrusted(issue, &changes)).unwrap_or_else(|_| {
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
        doc.apply_changes(parsed)
            .map_err(|e| BodyError::Apply(e.to_string()))?;
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

    /// Make one change turning the text into `new_text` (a character diff,
    /// so it merges with concurrent edits), written by a fresh automerge
    /// actor. Returns `None` when the text is already `new_text`.
    pub fn edit(&mut self, new_text: &str) -> Option<Bytes> {
        if self.text() == new_text {
            return None;
        }
        self.doc.set_actor(automerge::ActorId::random());
        self.doc
            .update_text(&self.text, new_text)
            .expect("BUG: updating a text object cannot fail");
        self.doc
            .commit_with(CommitOptions::default().with_time(0))?;
        let change = self.doc.get_last_local_change()?;
        Some(Bytes(change.raw_bytes().to_vec()))
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
    fn garbage_change_is_an_error() {
        let issue = IssueId::new_random();
        assert!(BodyDoc::load(issue, [&Bytes(vec![1, 2, 3])]).is_err());
    }
}
