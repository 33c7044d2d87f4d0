//! Intent to operations: what a user's change means as events against the
//! current state of an issue (add-wins sets name the adds they remove,
//! body edits are diffed against the merged text).

use super::*;

/// What writers read besides the state: the whole event set, or the open
/// fold of a local issue (the same answers, without the events).
pub(super) enum Basis<'a> {
    Set(&'a EventSet),
    Folded(&'a Folded),
}

impl Basis<'_> {
    fn label_tags(&self) -> std::collections::BTreeMap<String, Vec<EventId>> {
        match self {
            Basis::Set(s) => s.label_tags(),
            Basis::Folded(f) => f.label_tags(),
        }
    }
    fn assignee_tags(&self) -> std::collections::BTreeMap<String, Vec<EventId>> {
        match self {
            Basis::Set(s) => s.assignee_tags(),
            Basis::Folded(f) => f.assignee_tags(),
        }
    }
    fn link_tags(&self) -> std::collections::BTreeMap<Link, Vec<EventId>> {
        match self {
            Basis::Set(s) => s.link_tags(),
            Basis::Folded(f) => f.link_tags(),
        }
    }
    fn body(&self, issue: IssueId) -> Result<BodyView, FoldError> {
        match self {
            Basis::Set(s) => s.body(issue),
            Basis::Folded(f) => match f.take_body_doc() {
                // Local events only: no legacy chain to bootstrap.
                Some(doc) => f
                    .body_set()
                    .body_view_on(issue, doc, str::to_owned)
                    .map_err(|source| FoldError::Body { issue, source }),
                None => f.body_set().body(issue),
            },
        }
    }
    pub(super) fn tip_info(&self) -> TipInfo {
        match self {
            Basis::Set(s) => TipInfo {
                heads: s.heads(),
                lamport: s.max_lamport(),
            },
            Basis::Folded(f) => TipInfo {
                heads: f.heads(),
                lamport: f.max_lamport(),
            },
        }
    }
}

pub(super) fn comment_op(text: &str) -> Result<Op, RepoError> {
    if text.trim().is_empty() {
        return Err(RepoError::Rejected("a comment cannot be empty".into()));
    }
    check_len("comment", text, MAX_COMMENT_BYTES)?;
    Ok(Op::AddComment {
        body: text.to_owned(),
    })
}

/// Turn intended changes into operations against the current state;
/// with them the body document after the edit, when the body was edited
/// (it holds the basis's body changes and the new one).
pub(super) fn ops_for(
    issue: IssueId,
    state: &IssueState,
    basis: &Basis<'_>,
    changes: &[Change],
) -> Result<(Vec<Op>, Option<BodyDoc>), RepoError> {
    let mut ops = Vec::new();
    let labels = basis.label_tags();
    let assignees = basis.assignee_tags();
    let links = basis.link_tags();
    let mut body: Option<BodyView> = None;
    for change in changes {
        match change {
            Change::Title(t) => {
                let t = t.trim();
                check_len("title", t, MAX_TITLE_BYTES)?;
                if t != state.title {
                    ops.push(Op::SetTitle {
                        title: t.to_owned(),
                    });
                }
            }
            Change::Body(text) => {
                check_len("body", text, MAX_BODY_BYTES)?;
                let view = match &mut body {
                    Some(v) => v,
                    None => body.insert(
                        basis
                            .body(issue)
                            .map_err(|e| RepoError::Rejected(crate::error_chain(&e)))?,
                    ),
                };
                if view.awaiting_create() {
                    if *text == view.text() {
                        continue;
                    }
                    return Err(RepoError::Rejected(format!(
                        "the body of {issue} cannot be edited in this clone yet: the issue was \
                         created in another clone and imported here from the tracker before \
                         its history arrived; run `reposix sync` (or `git fetch` its refs) first"
                    )));
                }
                ops.extend(view.edit(text));
            }
            Change::Status(s) => {
                if *s != state.status {
                    ops.push(Op::SetStatus { status: *s });
                }
            }
            Change::AddLabel(l) => {
                check_name("label", l)?;
                if !labels.contains_key(l) {
                    ops.push(Op::AddLabel { label: l.clone() });
                }
            }
            Change::RemoveLabel(l) => {
                if let Some(tags) = labels.get(l) {
                    ops.push(Op::RemoveLabel {
                        label: l.clone(),
                        observed: tags.clone(),
                    });
                }
            }
            Change::AddAssignee(a) => {
                check_name("assignee", a)?;
                if !assignees.contains_key(a) {
                    ops.push(Op::AddAssignee {
                        assignee: a.clone(),
                    });
                }
            }
            Change::RemoveAssignee(a) => {
                if let Some(tags) = assignees.get(a) {
                    ops.push(Op::RemoveAssignee {
                        assignee: a.clone(),
                        observed: tags.clone(),
                    });
                }
            }
            Change::Comment(text) => ops.push(comment_op(text)?),
            Change::EditComment(id, text) => {
                check_len("comment", text, MAX_COMMENT_BYTES)?;
                let Some(c) = state.comments.iter().find(|c| c.id == *id) else {
                    return Err(RepoError::Rejected(format!(
                        "no live comment {}",
                        id.short()
                    )));
                };
                if c.body != *text {
                    ops.push(Op::EditComment {
                        comment: *id,
                        body: text.clone(),
                    });
                }
            }
            Change::DeleteComment(id) => {
                if !state.comments.iter().any(|c| c.id == *id) {
                    return Err(RepoError::Rejected(format!(
                        "no live comment {}",
                        id.short()
                    )));
                }
                ops.push(Op::DeleteComment { comment: *id });
            }
            Change::Link(link) => {
                check_name("link kind", &link.kind)?;
                if link.target == issue {
                    return Err(RepoError::Rejected("an issue cannot link to itself".into()));
                }
                if !links.contains_key(link) {
                    ops.push(Op::AddLink {
                        kind: link.kind.clone(),
                        target: link.target,
                    });
                }
            }
            Change::Unlink(link) => {
                if let Some(tags) = links.get(link) {
                    ops.push(Op::RemoveLink {
                        kind: link.kind.clone(),
                        target: link.target,
                        observed: tags.clone(),
                    });
                }
            }
            Change::Field(name, value) => {
                check_name("field name", name)?;
                if let Some(v) = value {
                    check_len("field value", v, MAX_FIELD_VALUE_BYTES)?;
                }
                if state.fields.get(name) != value.as_ref() {
                    ops.push(Op::SetField {
                        name: name.clone(),
                        value: value.clone(),
                    });
                }
            }
        }
    }
    let edited = ops.iter().any(|o| matches!(o, Op::EditBody { .. }));
    Ok((ops, body.filter(|_| edited).map(|v| v.doc)))
}
