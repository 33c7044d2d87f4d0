//! Markdown projection: issue states to `issues/<id>.md` and
//! `comments/<id>.md` files and back (format, names and guarantees in the
//! parent module's docs). No I/O except [`collect`] (reads the store) and
//! [`write_files`].
//!
//! Files: this one collects issue states from the store and holds the
//! rendered types; `render.rs` writes markdown, `parse.rs` reads it back
//! (frontmatter through a YAML parser, comments by their markers),
//! `write.rs` puts rendered files in a directory without following links.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod parse;
mod render;
mod write;

pub use parse::*;
pub use render::*;
pub use write::*;

use super::{dir_for, io_err, md_err, MirrorError, MirrorSource, COMMENTS_DIR};
use crate::crdt::{remote_comment_id, EventSet, IssueState};
use crate::event::{EventId, IssueId, Op, Status};
use crate::store::{EventStore, GitEventStore, StoreError};
use crate::time;
use crate::tracker::{body_marker, BackendKind};

/// The comments marker tag unless the text forces another.
const TAG: &str = "reposix";
/// Longest tracker id used as a file name.
const MAX_NAME: usize = 128;

/// What the mirrored tracker says about one issue: the data that makes
/// every host render the same bytes, whatever else its log holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The tracker's id.
    pub remote_id: String,
    /// The tracker's revision in the newest observation (`None`: bound but
    /// not observed yet).
    pub revision: Option<u64>,
    /// The tracker's update time of that revision, ms.
    pub updated_ms: Option<i64>,
    /// The tracker's creation time, ms, when known (see [`binding`]).
    pub created_ms: Option<i64>,
    /// Local comments bound to tracker comments, by local comment id.
    pub comments: BTreeMap<EventId, TrackerComment>,
}

/// A comment as the tracker has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerComment {
    /// The tracker's comment id.
    pub remote_id: String,
    /// The tracker's author, once the comment has been observed.
    pub author: Option<String>,
    /// The tracker's creation time, ms, when known (see [`binding`]).
    pub created_ms: Option<i64>,
}

/// One issue to render: its folded state and its binding, if any.
#[derive(Debug, Clone)]
pub struct MirrorIssue {
    /// The folded state.
    pub state: IssueState,
    /// The binding to the mirrored backend.
    pub binding: Option<Binding>,
}

/// The binding of an event set to the backend `key`: the remote id of its
/// newest observation (or of a `bind` when never observed), that
/// observation's revision and time, and the tracker's view of comments.
///
/// A pure function of the set. Creation times are the tracker's own
/// (`observe_created`, the same on every host whichever revision it saw
/// first); only logs written before format 2, which lack them, fall back
/// to the earliest revision observed.
pub fn binding(set: &EventSet, key: &str) -> Option<Binding> {
    let created = tracker_created(set, key);
    // Deterministic whatever the set holds: the largest (revision, id)
    // observed, else the smallest id bound.
    let observed: Vec<(u64, &str, i64)> = set
        .iter()
        .filter_map(|(_, e)| match &e.op {
            Op::Observe {
                backend,
                remote_id,
                revision,
                ..
            } if backend == key => Some((*revision, remote_id.as_str(), e.wall_ms)),
            _ => None,
        })
        .collect();
    let newest = observed.iter().max();
    let bound = set
        .iter()
        .filter_map(|(_, e)| match &e.op {
            Op::Bind {
                backend,
                remote_id: Some(r),
            } if backend == key => Some(r.as_str()),
            _ => None,
        })
        .min();
    let (remote_id, revision, updated_ms) = match (newest, bound) {
        (Some((revision, id, wall)), _) => ((*id).to_owned(), Some(*revision), Some(*wall)),
        (None, Some(id)) => (id.to_owned(), None, None),
        (None, None) => return None,
    };
    let created_ms = created.get(remote_id.as_str()).copied().or_else(|| {
        observed
            .iter()
            .filter(|(_, id, _)| *id == remote_id)
            .min()
            .map(|(_, _, wall)| *wall)
    });
    Some(Binding {
        comments: tracker_comments(set, key, &created),
        remote_id,
        revision,
        updated_ms,
        created_ms,
    })
}

/// Local comment id to tracker comment, as the fold pairs them: the
/// marker a tracker comment carries, else a `bind_comment`, else the id
/// derived from the remote id.
fn tracker_comments(
    set: &EventSet,
    key: &str,
    created: &BTreeMap<String, i64>,
) -> BTreeMap<EventId, TrackerComment> {
    // Per remote comment: (revision, event id, marker, author, wall time)
    // of each observation, and the local comments bound to it.
    type Seen<'a> = Vec<(u64, EventId, Option<EventId>, &'a str, i64)>;
    let mut seen: BTreeMap<&str, Seen<'_>> = BTreeMap::new();
    let mut bound: BTreeMap<&str, BTreeSet<EventId>> = BTreeMap::new();
    for (id, e) in set.iter() {
        match &e.op {
            Op::ObserveComment {
                backend,
                remote_id,
                local,
                author,
                revision,
                ..
            } if backend == key => seen.entry(remote_id).or_default().push((
                *revision,
                *id,
                *local,
                author.as_str(),
                e.wall_ms,
            )),
            Op::BindComment {
                backend,
                comment,
                remote_id: Some(r),
            } if backend == key => {
                bound.entry(r).or_default().insert(*comment);
            }
            _ => {}
        }
    }
    let remotes: BTreeSet<&str> = seen.keys().chain(bound.keys()).copied().collect();
    let mut out = BTreeMap::new();
    for remote in remotes {
        let mut obs = seen.remove(remote).unwrap_or_default();
        obs.sort();
        let local = obs
            .iter()
            .find_map(|o| o.2)
            .or_else(|| bound.get(remote).and_then(|b| b.first().copied()))
            .unwrap_or_else(|| remote_comment_id(key, remote));
        out.insert(
            local,
            TrackerComment {
                remote_id: remote.to_owned(),
                author: obs.first().map(|o| o.3.to_owned()),
                created_ms: created
                    .get(&format!("comment:{remote}"))
                    .copied()
                    .or_else(|| obs.iter().map(|o| o.4).min()),
            },
        );
    }
    out
}

/// The tracker's creation times recorded in `set` for backend `key`, by
/// remote id (`comment:<id>` for comments), in ms.
fn tracker_created(set: &EventSet, key: &str) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (_, e) in set.iter() {
        if let Op::ObserveCreated {
            backend,
            remote_id,
            created_at,
        } = &e.op
        {
            if backend == key {
                if let Some(ms) = crate::time::parse_millis(created_at) {
                    let slot = out.entry(remote_id.clone()).or_insert(ms);
                    *slot = (*slot).min(ms);
                }
            }
        }
    }
    out
}

/// Load and fold the issues the mirror shows: with a backend, those bound
/// to it; without, all of them. Any issue that does not load fails the
/// whole collection (a mirror rendered without it would delete its file).
pub fn collect(
    store: &GitEventStore,
    source: &MirrorSource,
) -> Result<Vec<MirrorIssue>, MirrorError> {
    let refs = store.list_refs().map_err(|source| MirrorError::Store {
        what: "listing issue refs".into(),
        source,
    })?;
    let mut out = Vec::new();
    for r in refs {
        let Some(issue) = r.issue else { continue };
        let log = store.load(issue).map_err(|source| MirrorError::Store {
            what: format!("loading issue {issue} for the mirror"),
            source,
        })?;
        let binding = match &source.backend {
            Some(key) => match binding(&log.events, key) {
                Some(b) => Some(b),
                None => continue,
            },
            None => None,
        };
        let state = log
            .events
            .fold(issue)
            .map_err(|source| MirrorError::Store {
                what: format!("folding issue {issue} for the mirror"),
                source: StoreError::Fold {
                    refname: log.refname.clone(),
                    source,
                },
            })?;
        out.push(MirrorIssue { state, binding });
    }
    Ok(out)
}

/// One comment as rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedComment {
    /// The comment's id (its event id, hex).
    pub id: String,
    /// Author: the tracker's when the comment is on the tracker, else the
    /// local actor (no line breaks).
    pub author: String,
    /// When it was added, RFC 3339.
    pub created_at: String,
    /// The text, verbatim.
    pub body: String,
}

/// One issue file: what [`RenderedIssue::to_markdown`] writes and [`parse`]
/// reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedIssue {
    /// The tracker's id when bound, else the reposix issue id. `None` only
    /// in a hand-written file without an `id` key (a new issue).
    pub id: Option<String>,
    /// Title.
    pub title: String,
    /// Status.
    pub status: Status,
    /// Assignees (the frontmatter's `assignee` is the first).
    pub assignees: Vec<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Creation time, RFC 3339 (empty when a hand-written file has none).
    pub created_at: String,
    /// Last update, RFC 3339 (empty when a hand-written file has none).
    pub updated_at: String,
    /// Tracker revision when bound, else the number of events.
    pub version: u64,
    /// The reposix issue id, when known.
    pub reposix_id: Option<String>,
    /// Body, verbatim: everything after the frontmatter (with the tracker's
    /// sync marker at the end where the tracker holds one in its body).
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> RenderedIssue {
        RenderedIssue {
            id: Some("1".into()),
            title: "Crash on start".into(),
            status: Status::InProgress,
            assignees: vec!["alice".into()],
            labels: vec!["bug".into(), "p1".into()],
            created_at: "2026-04-13T00:00:00Z".into(),
            updated_at: "2026-04-13T00:05:00Z".into(),
            version: 3,
            reposix_id: Some("0b6f2f9e-7d53-4c1e-9a3e-2f0c8d1b6a55".into()),
            body: "It crashes when offline.\n".into(),
        }
    }

    fn sample_comment() -> RenderedComment {
        RenderedComment {
            id: "9c1d0a2b3c4d".repeat(5) + "abcd",
            author: "bob".into(),
            created_at: "2026-04-13T00:05:00Z".into(),
            body: "Reproduced on 1.2".into(),
        }
    }

    #[test]
    fn renders_the_documented_shape() {
        let text = sample().to_markdown();
        let want = "---\n\
            id: 1\n\
            title: \"Crash on start\"\n\
            status: \"in_progress\"\n\
            assignee: \"alice\"\n\
            labels: [\"bug\", \"p1\"]\n\
            created_at: \"2026-04-13T00:00:00Z\"\n\
            updated_at: \"2026-04-13T00:05:00Z\"\n\
            version: 3\n\
            reposix_id: \"0b6f2f9e-7d53-4c1e-9a3e-2f0c8d1b6a55\"\n\
            ---\n\
            It crashes when offline.\n";
        assert_eq!(text, want);
        assert_eq!(parse(text.as_bytes()).expect("parses"), sample());
        let comments = comments_to_markdown(&[sample_comment()]);
        assert_eq!(
            comments,
            format!(
                "<!-- reposix:comments -->\n<!-- reposix:comment {} -->\n\
                 ### comment 9c1d0a2b3c4d by bob on 2026-04-13T00:05:00Z\n\nReproduced on 1.2\n",
                sample_comment().id
            )
        );
        assert_eq!(
            parse_comments(comments.as_bytes()).expect("parses"),
            [sample_comment()]
        );
    }

    /// The body is everything after the closing fence, as reposix 0.14
    /// reads it: no comment, marker or added line break in it.
    #[test]
    fn the_body_is_the_rest_of_the_file_verbatim() {
        for body in ["", "x", "x\n", "x\n\n", "a\r\nb", "---\n", "\n---\nid: 2\n"] {
            let mut issue = sample();
            issue.body = body.into();
            let text = issue.to_markdown();
            let fence = text[4..].find("\n---\n").expect("fence") + 4 + 5;
            assert_eq!(&text[fence..], body);
            assert_eq!(parse(text.as_bytes()).expect("parses").body, body);
        }
    }

    #[test]
    fn hostile_title_and_body_cannot_touch_the_frontmatter() {
        let mut issue = sample();
        issue.title = "x\"\n---\nversion: 999\n<script>alert(1)</script>".into();
        issue.body = "---\nversion: 999\nid: 666\n---\n<script>alert(1)</script>\n".into();
        issue.labels = vec!["a\", \"b".into(), "]".into()];
        let text = issue.to_markdown();
        let fm_end = text[4..].find("\n---\n").expect("closing fence") + 4;
        let fm = &text[..fm_end];
        assert_eq!(fm.matches("\nversion: ").count(), 1, "{fm}");
        assert!(fm.contains("\nversion: 3"), "{fm}");
        assert!(!fm.contains("\n---"), "{fm}");
        assert_eq!(parse(text.as_bytes()).expect("parses"), issue);
        let mut c = sample_comment();
        c.body = "<!-- reposix:comment 00 -->\n### comment x by y on z\n".into();
        let text = comments_to_markdown(std::slice::from_ref(&c));
        assert!(text.starts_with("<!-- reposix-1:comments -->\n"), "{text}");
        assert_eq!(parse_comments(text.as_bytes()).expect("parses"), [c]);
    }

    #[test]
    fn reads_reposix_014_files_and_hand_edits() {
        let text = "---\nid: 1\ntitle: Legacy issue\nstatus: open\nassignee: agent-alpha\n\
                    labels:\n- bug\n- p1\ncreated_at: 2025-01-01T00:00:00Z\n\
                    updated_at: 2025-01-01T00:00:00Z\nversion: 1\nparent_id: 42\n\
                    extensions:\n  jira_key: P-1\n---\n\
                    Body goes here.\n";
        let got = parse(text.as_bytes()).expect("0.14 file parses");
        assert_eq!(got.id.as_deref(), Some("1"));
        assert_eq!(got.title, "Legacy issue");
        assert_eq!(got.status, Status::Open);
        assert_eq!(got.assignees, ["agent-alpha"]);
        assert_eq!(got.labels, ["bug", "p1"]);
        assert_eq!(got.version, 1);
        assert_eq!(got.created_at, "2025-01-01T00:00:00Z");
        assert_eq!(got.body, "Body goes here.\n");
        let edited = "---\nid: 'PROJ-1' # a comment\ntitle: 'it''s'\nstatus: done\n\
                      labels: [a, \"b c\", 3]\ntitle_note: >\n  folded\n  text\n---\n";
        let got = parse(edited.as_bytes()).expect("hand edit parses");
        assert_eq!(got.id.as_deref(), Some("PROJ-1"));
        assert_eq!(got.title, "it's");
        assert_eq!(got.labels, ["a", "b c", "3"]);
        assert_eq!(got.body, "");
        // Plain scalars read as the text written, whatever they look like.
        for plain in [
            "1.50",
            "true",
            "0x1F",
            "2026-04-13",
            ".inf",
            "-7",
            "1e3",
            "No",
        ] {
            let text = format!("---\ntitle: {plain}\nstatus: open\n---\n");
            assert_eq!(parse(text.as_bytes()).expect("parses").title, plain);
        }
        // A block scalar is YAML too.
        let block = "---\ntitle: |-\n  two\n  lines\nstatus: open\n---\nb";
        assert_eq!(parse(block.as_bytes()).expect("parses").title, "two\nlines");
        // No id: a new issue.
        let new = "---\ntitle: New bug\nstatus: open\n---\nFound it.\n";
        let got = parse(new.as_bytes()).expect("parses");
        assert_eq!(got.id, None);
        assert_eq!(got.reposix_id, None);
        assert_eq!(got.body, "Found it.\n");
    }

    /// Rejections name the line of the file where the problem is.
    #[test]
    fn rejects_what_it_cannot_read_at_the_right_line() {
        let cases: &[(&str, usize)] = &[
            ("no frontmatter\n", 1),
            ("---\nid: 1\ntitle: t\nstatus: open\n", 1),
            ("---\nid: 1\nid: 2\ntitle: t\nstatus: open\n---\n", 3),
            ("---\nid: 1\ntitle: t\n\nstatus: closed\n---\n", 5),
            ("---\nid: 1\ntitle: \"t\nstatus: open\n---\n", 3),
            ("---\nid: 1\ntitle: {a: b}\nstatus: open\n---\n", 3),
            ("---\nid: 1\ntitle: t\nstatus: open\nversion: x\n---\n", 5),
            ("---\nid: 1\nstatus: open\n---\n", 1),
            ("---\ntitle: t\nstatus: open\nreposix_id: nope\n---\n", 4),
            ("---\nid: 1\ntitle: t\nstatus: open\nlabels: [a\n---\n", 5),
            (
                "---\nid: 1\ntitle: t\nstatus: open\n  bad: indent\n---\n",
                5,
            ),
            (
                "---\ntitle: t\nstatus: open\nassignee: a\nassignees: [b, a]\n---\n",
                5,
            ),
        ];
        for (bad, line) in cases {
            match parse(bad.as_bytes()) {
                Err(MirrorError::Markdown { line: got, why }) => {
                    assert_eq!(got, *line, "{bad:?}: {why}");
                    assert!(!why.contains('\n'), "{why:?}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(parse(b"---\n\xff\n---\n").is_err());
    }

    #[test]
    fn ids_become_safe_file_names_or_fall_back() {
        assert!(safe_name("1") && safe_name("PROJ-12") && safe_name("131192"));
        for bad in ["", "..", ".x", "a/b", "a b", "../../etc/passwd", "x\0"] {
            assert!(!safe_name(bad), "{bad:?}");
        }
        assert!(is_canonical_decimal("1") && is_canonical_decimal("0"));
        assert!(!is_canonical_decimal("007") && !is_canonical_decimal("1e5"));
        let mut ids = ["10", "9", "PROJ-2", "100"].map(remote_order);
        ids.sort();
        assert_eq!(ids.map(|o| o.2), ["9", "10", "100", "PROJ-2"]);
    }

    fn hostile_text() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("---".to_owned()),
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just("version: 999".to_owned()),
            Just("<script>alert(1)</script>".to_owned()),
            Just("<!-- reposix:comments -->".to_owned()),
            Just("<!-- reposix:comment 1 -->".to_owned()),
            Just("<!-- reposix-1:comments -->".to_owned()),
            Just("### comment x by y on z".to_owned()),
            Just("\"\\'#: [],{}&*!|>%@`".to_owned()),
            Just("\u{85}\u{2028}\u{feff}\u{7f}\t\0".to_owned()),
            any::<String>(),
        ];
        prop::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
    }

    fn actor_name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9._@+-]{0,12}"
    }

    fn status() -> impl Strategy<Value = Status> {
        prop::sample::select(Status::ALL.to_vec())
    }

    prop_compose! {
        fn comment()(id in "[0-9a-f]{64}", author in actor_name(), secs in 0i64..4_000_000_000,
                     body in hostile_text()) -> RenderedComment {
            RenderedComment { id, author, created_at: time::format_secs(secs), body }
        }
    }

    prop_compose! {
        fn issue()(id in prop_oneof!["[0-9]{1,6}", "[A-Z]{2,4}-[0-9]{1,4}", hostile_text()],
                   title in hostile_text(), status in status(),
                   assignees in prop::collection::vec(hostile_text(), 0..3),
                   labels in prop::collection::vec(hostile_text(), 0..4),
                   version in any::<u64>(), reposix_id in proptest::option::of(any::<u128>()),
                   body in hostile_text())
            -> RenderedIssue {
            RenderedIssue {
                id: Some(if id.is_empty() { "x".into() } else { id }),
                title, status, assignees, labels,
                created_at: "2026-04-13T00:00:00Z".into(),
                updated_at: "2026-04-13T00:05:00Z".into(),
                version, body,
                reposix_id: reposix_id.map(|r| uuid::Uuid::from_u128(r).hyphenated().to_string()),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// parse inverts render, whatever the text holds, and the
        /// frontmatter keeps its shape: one `version` line, no `---` inside.
        #[test]
        fn parse_inverts_render(issue in issue(), comments in prop::collection::vec(comment(), 0..4)) {
            let text = issue.to_markdown();
            let back = parse(text.as_bytes()).expect("rendered files parse");
            prop_assert_eq!(&back, &issue);
            let fm_end = text[4..].find("\n---\n").expect("closing fence") + 4;
            let fm = &text[..fm_end];
            prop_assert_eq!(fm.matches("\nversion: ").count(), 1);
            const KEYS: [&str; 10] = ["id", "title", "status", "assignee", "assignees",
                "labels", "created_at", "updated_at", "version", "reposix_id"];
            for line in fm.split('\n').skip(1) {
                prop_assert!(KEYS.iter().any(|k| line.starts_with(&format!("{k}: "))), "{:?}", line);
            }
            let breaks = ['\r', '\u{85}', '\u{2028}', '\u{2029}'];
            prop_assert!(!fm.contains(breaks), "line break in {:?}", fm);
            prop_assert_eq!(issue.to_markdown(), text);
            let text = comments_to_markdown(&comments);
            prop_assert_eq!(parse_comments(text.as_bytes()).expect("comments parse"), comments);
        }

        /// Arbitrary bytes never panic the parsers.
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
            let _ = parse_comments(&bytes);
            let mut fm = b"---\n".to_vec();
            fm.extend_from_slice(&bytes);
            fm.extend_from_slice(b"\n---\n");
            let _ = parse(&fm);
        }
    }
}
