//! What every adapter shares around the [`Backend`](super::Backend)
//! contract, beyond HTTP ([`super::http`]): refusing a write before
//! anything is sent, reporting a write that was applied with refusals,
//! reading a listing cursor, naming an answer that does not decode.
//!
//! Guarantees: a refusal before sending carries no applied issue; one after
//! writing always carries the issue as the tracker answered it; a cursor
//! that is not an RFC 3339 timestamp is a [`BackendError::Spec`], parsed
//! by [`crate::time`], the one parser.

use super::{BackendError, Refusal, RemoteIssue};

/// `Err(Refused)` with nothing applied when there are `refusals`: the
/// check an adapter makes before it sends a write.
pub(super) fn refuse_unsent(what: &str, refusals: Vec<Refusal>) -> Result<(), BackendError> {
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(BackendError::Refused {
            what: what.to_owned(),
            refusals,
            applied: None,
        })
    }
}

/// `Ok(issue)`, or `Refused` carrying the issue as written when something
/// was refused on the way (the rest of the write was applied).
pub(super) fn applied(
    what: String,
    issue: RemoteIssue,
    refusals: Vec<Refusal>,
) -> Result<RemoteIssue, BackendError> {
    if refusals.is_empty() {
        Ok(issue)
    } else {
        Err(BackendError::Refused {
            what,
            refusals,
            applied: Some(Box::new(issue)),
        })
    }
}

/// The instant a listing cursor names, in milliseconds since the epoch
/// (`None` without a cursor); `tracker` names the adapter in the error.
pub(super) fn cursor_millis(
    tracker: &str,
    cursor: Option<&str>,
) -> Result<Option<i64>, BackendError> {
    cursor
        .map(|c| {
            crate::time::parse_millis(c).ok_or_else(|| {
                BackendError::Spec(format!(
                    "{tracker} cursor {c:?} is not an RFC 3339 timestamp"
                ))
            })
        })
        .transpose()
}

/// A tracker answer that does not have the expected shape.
pub(super) fn malformed(what: &str, why: &str) -> BackendError {
    BackendError::Malformed {
        what: what.to_owned(),
        why: why.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_rfc3339_or_refused() {
        assert_eq!(cursor_millis("sim", None).expect("no cursor"), None);
        assert_eq!(
            cursor_millis("sim", Some("2026-04-13T00:00:00Z")).expect("valid"),
            Some(1_776_038_400_000)
        );
        assert_eq!(
            cursor_millis("JIRA", Some("2021-01-18T23:45:00.000+0000")).expect("JIRA form"),
            Some(1_611_013_500_000)
        );
        let e = cursor_millis("sim", Some("yesterday")).expect_err("not a timestamp");
        assert!(
            matches!(&e, BackendError::Spec(m) if m.starts_with("sim cursor \"yesterday\"")),
            "{e}"
        );
    }

    #[test]
    fn refusals_before_sending_carry_nothing_applied() {
        assert!(refuse_unsent("t", Vec::new()).is_ok());
        let r = Refusal {
            field: "title".into(),
            value: "300 characters".into(),
            reason: "too long".into(),
        };
        match refuse_unsent("t", vec![r]) {
            Err(BackendError::Refused {
                applied: None,
                refusals,
                ..
            }) => {
                assert_eq!(refusals.len(), 1);
            }
            other => panic!("expected a refusal with nothing applied, got {other:?}"),
        }
    }
}
