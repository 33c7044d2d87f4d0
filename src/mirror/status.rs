//! How stale the mirror is, from the local `refs/mirrors/` refs: for
//! hints in tracker-sync messages and `reposix mirror status`.

use serde::Serialize;

use super::push::{tree_of, write_subtrees};
use super::{collect, git_err, head_ref, render, synced_at_ref, MirrorError, MirrorSource};
use crate::store::{GitEventStore, Oid};
use crate::time;

/// The last successful sync, from the local `refs/mirrors/` refs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastSync {
    /// The slug.
    pub slug: String,
    /// Sync time, seconds since the epoch (the tag's tagger date).
    pub at: i64,
    /// The mirror commit of that sync (`refs/mirrors/<slug>-head`).
    pub head: Option<String>,
}

/// The last successful sync of the mirror of `slug`, if any.
pub fn last_sync(store: &GitEventStore, slug: &str) -> Option<LastSync> {
    let repo = store.repo();
    let oid = store.read_ref(&repo, &synced_at_ref(slug)).ok()??;
    let obj = repo.find_object(oid).ok()?;
    let at = match obj.kind {
        gix::objs::Kind::Tag => {
            let tag = obj.into_tag();
            let decoded = tag.decode().ok()?;
            decoded.tagger().ok()??.seconds()
        }
        gix::objs::Kind::Commit => obj.into_commit().time().ok()?.seconds,
        _ => return None,
    };
    let head = store
        .read_ref(&repo, &head_ref(slug))
        .ok()
        .flatten()
        .map(|o| o.to_string());
    Some(LastSync {
        slug: slug.to_owned(),
        at,
        head,
    })
}

/// `5 minutes ago`, `1 hour ago`, `just now`.
pub fn ago(secs: i64) -> String {
    let unit = |n: i64, what: &str| {
        if n == 1 {
            format!("1 {what} ago")
        } else {
            format!("{n} {what}s ago")
        }
    };
    match secs {
        s if s < 1 => "just now".into(),
        s if s < 60 => unit(s, "second"),
        s if s < 3600 => unit(s / 60, "minute"),
        s if s < 86_400 => unit(s / 3600, "hour"),
        s => unit(s / 86_400, "day"),
    }
}

/// A hint for messages about a tracker sync that retried or gave up: how
/// stale the mirror of `slug` is and what to run, or `None` when it was
/// never synced from here.
pub fn staleness(store: &GitEventStore, slug: &str) -> Option<String> {
    staleness_at(store, slug, time::now_secs())
}

/// [`staleness`] as of `now` (seconds since the epoch).
pub fn staleness_at(store: &GitEventStore, slug: &str, now: i64) -> Option<String> {
    let last = last_sync(store, slug)?;
    Some(format!(
        "your mirror was last synced from {slug} at {} ({}); run `reposix mirror sync` \
         to bring the tracker and then the mirror up to date",
        time::format_secs(last.at),
        ago(now - last.at)
    ))
}

/// Whether the mirror lags the local state.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorLag {
    /// The last successful sync, if any.
    pub last: Option<LastSync>,
    /// Whether the rendered local state equals what the last sync pushed
    /// (`None`: never synced).
    pub in_step: Option<bool>,
}

/// Compare the local state, rendered, with the last sync's mirror commit.
/// Writes only content-addressed objects (the rendered blobs and tree).
pub fn lag(store: &GitEventStore, source: &MirrorSource) -> Result<MirrorLag, MirrorError> {
    let last = last_sync(store, source.slug());
    let Some(head) = last.as_ref().and_then(|l| l.head.as_deref()) else {
        return Ok(MirrorLag {
            last,
            in_step: None,
        });
    };
    let repo = store.repo();
    let files = render(
        &collect(store, source)?,
        source.kind,
        source.backend.as_deref(),
    );
    let ours = write_subtrees(&repo, source.kind, &files)?;
    let head = Oid::from_hex(head.as_bytes()).map_err(|_| MirrorError::Invalid {
        what: "mirror head",
        value: head.to_owned(),
        why: "not an object id",
    })?;
    let tree = tree_of(&repo, head)?;
    let found = repo
        .find_tree(tree)
        .map_err(git_err(format!("reading tree {tree}")))?;
    let decoded = found
        .decode()
        .map_err(git_err(format!("parsing tree {tree}")))?;
    let theirs: Vec<(&str, Option<Oid>)> = ours
        .iter()
        .map(|(sub, _)| {
            let oid = decoded
                .entries
                .iter()
                .find(|e| e.filename == sub.as_bytes())
                .map(|e| e.oid.to_owned());
            (*sub, oid)
        })
        .collect();
    Ok(MirrorLag {
        last,
        in_step: Some(ours == theirs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_like_a_person() {
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(300), "5 minutes ago");
        assert_eq!(ago(3600), "1 hour ago");
        assert_eq!(ago(3 * 86_400 + 5), "3 days ago");
    }
}
