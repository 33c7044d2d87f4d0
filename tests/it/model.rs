//! Model-based randomized test of the tracker projection (issue 8).
//!
//! Three clones of one bare remote, the bundled sim on loopback attached as
//! a backend in two of them, and a seeded random trace of steps: local
//! edits of every kind by several actors, `reposix sync` (alone and two
//! clones at once), plain `git fetch` of `refs/reposix/*` with and without
//! `+`, `reposix sync --backend` (alone and two clones at once), and
//! tracker users editing the sim over HTTP (several edits in one second,
//! bodies with and without the `<!-- reposix:… -->` marker, comments,
//! deletions). Then every clone syncs with git and the tracker until
//! nothing moves for two full rounds, and the oracle checks that:
//! - every clone holds byte-identical state (`issue list --json --state
//!   all` and every `issue show --json`);
//! - `reposix fsck` is clean in every clone;
//! - no issue is lost or duplicated, in any clone or on the tracker;
//! - every body token written and not deleted by someone who saw it is in
//!   its issue's body exactly once, in every clone and on the tracker; a
//!   deleted token is gone (but a tracker user's deletion in an issue later
//!   deleted on the tracker may never have been imported: such a token
//!   may stay, once); a body holds nothing but tokens and whitespace;
//! - every comment written and not deleted is there exactly once, and its
//!   text is made of that comment's own tokens, each at most once;
//! - the tracker agrees with the clones on every field it holds: title,
//!   status, labels, the one assignee (the one it has if still in the
//!   set, else the first of the sorted set), body
//!   without the marker, and comments when the sim serves them;
//! - no step exited with a code outside its allowed set (below).
//!
//! The product is driven only through the `reposix` binary, plain `git` and
//! HTTP to the sim, so the harness does not depend on how the projection
//! works inside. Every body edit inserts a unique token (`t<n>x`) at a word
//! or line boundary of the text the editor sees, or deletes a token the
//! editor sees; comments are tokens too (`c<n>x`, edits append `e<n>x`);
//! titles carry the issue's tag (`i<n>: …`), which is how issues are
//! matched between clones and the tracker. The model records who wrote and
//! who deleted what, so the oracle knows what must be there.
//!
//! Steps name issues and comments by position ("issue #k mod count"), so a
//! trace still means something when steps are removed: a failing trace is
//! shrunk by delta debugging (ddmin over its steps, keeping the failure's
//! symptom) and reported with its seed, a replay line and the commands of
//! the minimal run.
//!
//! Allowed exit codes: every local command 0 (a body edit also 7 when the
//! issue's history has not reached the clone yet); `reposix sync` 0 alone, 0 or
//! 10 when two clones sync at once (contention may leave an issue behind
//! until the next sync); `git fetch` without `+` 0 or 1 (git refuses a
//! non-fast-forward ref and says so), with `+` 0; `reposix sync --backend`
//! 0 alone, 0 or 11 when two clones sync with the tracker at once (retries
//! may run out); in the quiescence rounds and the checks, 0 only.
//!
//! Modes (environment variables):
//! - default (`cargo test`): the [`CI_SEEDS`], [`CI_STEPS`] steps each;
//! - `REPOSIX_MODEL_SEED=N` (`REPOSIX_MODEL_STEPS`, default 150;
//!   `REPOSIX_MODEL_KEEP=i,j,…` replays only those steps): one trace;
//! - `REPOSIX_SOAK=1` (`REPOSIX_SOAK_RUNS`, default 200;
//!   `REPOSIX_SOAK_STEPS`, default 150; `REPOSIX_SOAK_SEED`, the first
//!   seed, default 1000): many seeds, then one summary line;
//! - `REPOSIX_MODEL_VERBOSE=1`: print every command run, with its exit
//!   code and time; `REPOSIX_MODEL_KEEP_DIRS=1`: keep the clones' temporary
//!   directories (printed) to inspect a replay;
//! - `REPOSIX_MODEL_SHRINK_SECS`: time for shrinking a failure (default
//!   60, 0 = report unshrunk); `REPOSIX_MODEL_SYMPTOM`: shrink keeping this
//!   symptom instead of the first one found; `REPOSIX_MODEL_SHRINK_TRIES`
//!   (default 1): runs of a candidate trace before it counts as passing,
//!   for failures that show in some replays only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reposix_sim::{self as sim, SimConfig, SimHandle};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::{hermetic, BIN};

/// Seeds run by `cargo test` (9 runs the sim without its comments API).
/// They pass; seeds 2, 3, 4, 6 and 7 still find known gaps (README,
/// "Known gaps"), so CI guards what is fixed and the soak measures the rest.
const CI_SEEDS: [u64; 3] = [1, 5, 9];
/// Steps per CI run.
const CI_STEPS: usize = 150;
/// Quiescence gives up after this many rounds.
const MAX_ROUNDS: usize = 10;
/// A command still running after this long is killed and reported.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

const CLONES: usize = 3;
/// The clones with the sim attached as backend `sim`.
const ATTACHED: [usize; 2] = [0, 1];
const ACTORS: [[&str; 2]; CLONES] = [["alice", "bob"], ["carol", "dave"], ["erin", "frank"]];
const LABELS: [&str; 5] = ["bug", "ui", "p1", "p2", "ops"];
const PEOPLE: [&str; 4] = ["alice", "bob", "carol", "zed"];
const STATUSES: [&str; 5] = ["open", "in_progress", "in_review", "done", "wont_fix"];
const FIELDS: [&str; 3] = ["prio", "area", "size"];
const LINK_KINDS: [&str; 2] = ["relates", "blocks"];
const TRACKER_AGENT: &str = "tracker-user";
/// Whether traces run `sync --backend` in two clones at once. Two exports
/// racing to create the same new issue or comment can both create it (the
/// sim has no idempotency key); `false` makes those steps single syncs
/// without changing any other step of any seed.
const PARALLEL_TRACKER_SYNCS: bool = true;

// ------------------------------------------------------------ the trace

/// A body edit, relative to the text the editor sees.
#[derive(Clone, Debug)]
enum BodyEdit {
    /// Insert a new token at boundary `at` (mod the boundaries: the start
    /// and the end of every token), after a newline or a space.
    Insert { at: u64, newline: bool },
    /// Delete token `which` (mod the tokens seen) and one space next to it.
    Delete { which: u64 },
    /// Overwrite token `which` with a new token, in place.
    Replace { which: u64 },
}

/// One tracker user's edit of an issue.
#[derive(Clone, Debug)]
enum TrackerEdit {
    Title,
    Status(usize),
    Label { label: usize, remove: bool },
    Assignee(Option<usize>),
    Body { edit: BodyEdit, keep_marker: bool },
}

/// What a step does. Issues are "#k": the k-th (mod count) of the issues
/// the actor sees, by tag; comments likewise.
#[derive(Clone, Debug)]
enum Op {
    New {
        clone: usize,
        actor: usize,
        labels: u8,
        assignees: u8,
        status: usize,
    },
    Title {
        clone: usize,
        actor: usize,
        issue: u64,
    },
    Status {
        clone: usize,
        actor: usize,
        issue: u64,
        status: usize,
    },
    Label {
        clone: usize,
        actor: usize,
        issue: u64,
        label: usize,
        remove: bool,
    },
    Assign {
        clone: usize,
        actor: usize,
        issue: u64,
        who: usize,
        remove: bool,
    },
    Link {
        clone: usize,
        actor: usize,
        issue: u64,
        target: u64,
        kind: usize,
        remove: bool,
    },
    Field {
        clone: usize,
        actor: usize,
        issue: u64,
        field: usize,
        unset: bool,
    },
    Body {
        clone: usize,
        actor: usize,
        issue: u64,
        edit: BodyEdit,
    },
    Comment {
        clone: usize,
        actor: usize,
        issue: u64,
    },
    CommentEdit {
        clone: usize,
        actor: usize,
        issue: u64,
        comment: u64,
    },
    CommentDelete {
        clone: usize,
        actor: usize,
        issue: u64,
        comment: u64,
    },
    Sync {
        clone: usize,
    },
    SyncPair {
        a: usize,
        b: usize,
    },
    Fetch {
        clone: usize,
        force: bool,
    },
    Backend {
        clone: usize,
    },
    BackendPair {
        a: usize,
        b: usize,
    },
    TrackerNew {
        labels: u8,
        status: usize,
        assignee: Option<usize>,
    },
    /// One edit, or several in a row (the same second).
    TrackerEdits {
        issue: u64,
        edits: Vec<TrackerEdit>,
    },
    TrackerComment {
        issue: u64,
    },
    TrackerCommentEdit {
        issue: u64,
        comment: u64,
        keep_marker: bool,
    },
    TrackerDelete {
        issue: u64,
    },
}

/// A step: its index in the generated trace (tokens and tags derive from
/// it, so they stay unique when other steps are removed) and what it does.
#[derive(Clone, Debug)]
struct Step {
    n: usize,
    op: Op,
}

fn mask_names(mask: u8, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| (*n).to_owned())
        .collect()
}

fn describe_body_edit(e: &BodyEdit) -> String {
    match e {
        BodyEdit::Insert { at, newline } => format!(
            "insert a token at boundary #{at} ({})",
            if *newline { "new line" } else { "same line" }
        ),
        BodyEdit::Delete { which } => format!("delete token #{which}"),
        BodyEdit::Replace { which } => format!("replace token #{which}"),
    }
}

impl Step {
    /// One readable line.
    fn describe(&self) -> String {
        let who = |clone: &usize, actor: &usize| format!("c{clone}/{}", ACTORS[*clone][*actor]);
        let body = match &self.op {
            Op::New {
                clone,
                actor,
                labels,
                assignees,
                status,
            } => format!(
                "{}: issue new i{} (labels [{}], assignees [{}], status {})",
                who(clone, actor),
                self.n,
                mask_names(*labels, &LABELS).join(" "),
                mask_names(*assignees, &PEOPLE).join(" "),
                STATUSES[*status]
            ),
            Op::Title {
                clone,
                actor,
                issue,
            } => format!("{}: issue #{issue} title", who(clone, actor)),
            Op::Status {
                clone,
                actor,
                issue,
                status,
            } => format!(
                "{}: issue #{issue} status {}",
                who(clone, actor),
                STATUSES[*status]
            ),
            Op::Label {
                clone,
                actor,
                issue,
                label,
                remove,
            } => format!(
                "{}: issue #{issue} label {} {}",
                who(clone, actor),
                if *remove {
                    "remove one present, else add"
                } else {
                    "add"
                },
                LABELS[*label]
            ),
            Op::Assign {
                clone,
                actor,
                issue,
                who: w,
                remove,
            } => format!(
                "{}: issue #{issue} assignee {} {}",
                who(clone, actor),
                if *remove {
                    "remove one present, else add"
                } else {
                    "add"
                },
                PEOPLE[*w]
            ),
            Op::Link {
                clone,
                actor,
                issue,
                target,
                kind,
                remove,
            } => format!(
                "{}: issue #{issue} link {} #{target} ({})",
                who(clone, actor),
                if *remove {
                    "remove one present, else add"
                } else {
                    "add"
                },
                LINK_KINDS[*kind]
            ),
            Op::Field {
                clone,
                actor,
                issue,
                field,
                unset,
            } => format!(
                "{}: issue #{issue} field {} {}",
                who(clone, actor),
                FIELDS[*field],
                if *unset { "unset" } else { "set" }
            ),
            Op::Body {
                clone,
                actor,
                issue,
                edit,
            } => format!(
                "{}: issue #{issue} body: {}",
                who(clone, actor),
                describe_body_edit(edit)
            ),
            Op::Comment {
                clone,
                actor,
                issue,
            } => format!("{}: issue #{issue} comment c{}x", who(clone, actor), self.n),
            Op::CommentEdit {
                clone,
                actor,
                issue,
                comment,
            } => format!(
                "{}: issue #{issue} edit comment #{comment} (+e{}x)",
                who(clone, actor),
                self.n
            ),
            Op::CommentDelete {
                clone,
                actor,
                issue,
                comment,
            } => format!(
                "{}: issue #{issue} delete comment #{comment}",
                who(clone, actor)
            ),
            Op::Sync { clone } => format!("c{clone}: reposix sync"),
            Op::SyncPair { a, b } => format!("c{a} and c{b} at once: reposix sync"),
            Op::Fetch { clone, force } => format!(
                "c{clone}: git fetch origin '{}refs/reposix/*:refs/reposix/*'",
                if *force { "+" } else { "" }
            ),
            Op::Backend { clone } => format!("c{clone}: reposix sync --backend sim"),
            Op::BackendPair { a, b } => {
                format!("c{a} and c{b} at once: reposix sync --backend sim")
            }
            Op::TrackerNew {
                labels,
                status,
                assignee,
            } => format!(
                "tracker: new issue i{} (labels [{}], status {}, assignee {})",
                self.n,
                mask_names(*labels, &LABELS).join(" "),
                STATUSES[*status],
                assignee.map_or("none", |a| PEOPLE[a])
            ),
            Op::TrackerEdits { issue, edits } => {
                let list: Vec<String> = edits
                    .iter()
                    .map(|e| match e {
                        TrackerEdit::Title => "title".to_owned(),
                        TrackerEdit::Status(s) => format!("status {}", STATUSES[*s]),
                        TrackerEdit::Label { label, remove } => format!(
                            "labels {} {}",
                            if *remove { "-" } else { "+" },
                            LABELS[*label]
                        ),
                        TrackerEdit::Assignee(a) => {
                            format!("assignee {}", a.map_or("none", |a| PEOPLE[a]))
                        }
                        TrackerEdit::Body { edit, keep_marker } => format!(
                            "body {} ({} the marker)",
                            describe_body_edit(edit),
                            if *keep_marker { "keeping" } else { "dropping" }
                        ),
                    })
                    .collect();
                format!("tracker: issue #{issue}: {}", list.join("; "))
            }
            Op::TrackerComment { issue } => format!("tracker: issue #{issue} comment c{}x", self.n),
            Op::TrackerCommentEdit {
                issue,
                comment,
                keep_marker,
            } => format!(
                "tracker: issue #{issue} edit comment #{comment} (+e{}x, {} the marker)",
                self.n,
                if *keep_marker { "keeping" } else { "dropping" }
            ),
            Op::TrackerDelete { issue } => format!("tracker: delete issue #{issue}"),
        };
        format!("#{:<4} {body}", self.n)
    }
}

/// A seeded trace of `len` steps.
fn generate(seed: u64, len: usize) -> Vec<Step> {
    assert!(len * 10 <= TOKEN_IDS, "at most {} steps", TOKEN_IDS / 10);
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len)
        .map(|n| Step {
            n,
            op: random_op(&mut rng),
        })
        .collect()
}

fn random_body_edit(rng: &mut fastrand::Rng) -> BodyEdit {
    match rng.u8(0..10) {
        0..=5 => BodyEdit::Insert {
            at: rng.u64(..100),
            newline: rng.u8(0..4) == 0,
        },
        6..=8 => BodyEdit::Delete {
            which: rng.u64(..100),
        },
        _ => BodyEdit::Replace {
            which: rng.u64(..100),
        },
    }
}

fn random_tracker_edit(rng: &mut fastrand::Rng) -> TrackerEdit {
    match rng.u8(0..12) {
        0 | 1 => TrackerEdit::Title,
        2 | 3 => TrackerEdit::Status(rng.usize(..STATUSES.len())),
        4 | 5 => TrackerEdit::Label {
            label: rng.usize(..LABELS.len()),
            remove: rng.bool(),
        },
        6 => TrackerEdit::Assignee(if rng.u8(0..3) == 0 {
            None
        } else {
            Some(rng.usize(..PEOPLE.len()))
        }),
        _ => TrackerEdit::Body {
            edit: random_body_edit(rng),
            keep_marker: rng.u8(0..4) != 0,
        },
    }
}

fn random_op(rng: &mut fastrand::Rng) -> Op {
    let clone = rng.usize(..CLONES);
    let actor = rng.usize(..2);
    let issue = rng.u64(..100);
    let attached = |rng: &mut fastrand::Rng| ATTACHED[rng.usize(..ATTACHED.len())];
    // Weights out of 100: local 50, git 22, tracker sync 12, tracker 16.
    match rng.u8(0..100) {
        0..=5 => Op::New {
            clone,
            actor,
            labels: rng.u8(0..32) & rng.u8(0..32),
            assignees: if rng.bool() { rng.u8(0..16) } else { 0 },
            status: if rng.u8(0..3) == 0 {
                rng.usize(..STATUSES.len())
            } else {
                0
            },
        },
        6..=9 => Op::Title {
            clone,
            actor,
            issue,
        },
        10..=13 => Op::Status {
            clone,
            actor,
            issue,
            status: rng.usize(..STATUSES.len()),
        },
        14..=19 => Op::Label {
            clone,
            actor,
            issue,
            label: rng.usize(..LABELS.len()),
            remove: rng.bool(),
        },
        20..=24 => Op::Assign {
            clone,
            actor,
            issue,
            who: rng.usize(..PEOPLE.len()),
            remove: rng.u8(0..3) == 0,
        },
        25..=27 => Op::Link {
            clone,
            actor,
            issue,
            target: rng.u64(..100),
            kind: rng.usize(..LINK_KINDS.len()),
            remove: rng.u8(0..3) == 0,
        },
        28..=30 => Op::Field {
            clone,
            actor,
            issue,
            field: rng.usize(..FIELDS.len()),
            unset: rng.u8(0..4) == 0,
        },
        31..=42 => Op::Body {
            clone,
            actor,
            issue,
            edit: random_body_edit(rng),
        },
        43..=46 => Op::Comment {
            clone,
            actor,
            issue,
        },
        47 | 48 => Op::CommentEdit {
            clone,
            actor,
            issue,
            comment: rng.u64(..100),
        },
        49 => Op::CommentDelete {
            clone,
            actor,
            issue,
            comment: rng.u64(..100),
        },
        50..=61 => Op::Sync { clone },
        62..=65 => {
            let a = rng.usize(..CLONES);
            Op::SyncPair {
                a,
                b: (a + 1 + rng.usize(..CLONES - 1)) % CLONES,
            }
        }
        66..=71 => Op::Fetch {
            clone,
            force: rng.bool(),
        },
        72..=80 => Op::Backend {
            clone: attached(rng),
        },
        81..=83 if PARALLEL_TRACKER_SYNCS => Op::BackendPair {
            a: ATTACHED[0],
            b: ATTACHED[1],
        },
        81..=83 => Op::Backend { clone: ATTACHED[0] },
        84 | 85 => Op::TrackerNew {
            labels: rng.u8(0..32) & rng.u8(0..32),
            status: if rng.bool() {
                rng.usize(..STATUSES.len())
            } else {
                0
            },
            assignee: rng.bool().then(|| rng.usize(..PEOPLE.len())),
        },
        86..=95 => {
            let n = if rng.u8(0..4) == 0 {
                rng.usize(2..=4)
            } else {
                1
            };
            Op::TrackerEdits {
                issue,
                edits: (0..n).map(|_| random_tracker_edit(rng)).collect(),
            }
        }
        96 | 97 => Op::TrackerComment { issue },
        98 => Op::TrackerCommentEdit {
            issue,
            comment: rng.u64(..100),
            keep_marker: rng.u8(0..4) != 0,
        },
        _ => Op::TrackerDelete { issue },
    }
}

// ------------------------------------------------------------ text helpers

/// A token found in a text: where it is and its name (`t<id>` for a body
/// token, the text itself for `c<n>x` and `e<n>x`).
struct Token {
    start: usize,
    end: usize,
    text: String,
}

/// Body tokens start and end with a character no other token has (a CJK
/// ideograph chosen by the token's id), the id in between. Why: a body
/// edit reaches the CRDT as a character diff, and when tokens share
/// characters a diff may align a deletion across a token boundary
/// (`t1320x t1250x` -> `t1250x` can keep `t1` of the first token and
/// `250x` of the second), so that a concurrent insert lands inside a token
/// even when every merge is right. With a unique first and last character,
/// every optimal alignment keeps a surviving token's characters inside that
/// token: what the oracle finds cut, the product cut.
const TOKEN_BASE: u32 = 0x4E00;
/// How many body token ids there are (CJK Unified Ideographs).
const TOKEN_IDS: usize = 20_992;

/// The text of body token `id`.
fn body_token(id: usize) -> String {
    let c = u32::try_from(id)
        .ok()
        .filter(|_| id < TOKEN_IDS)
        .and_then(|i| char::from_u32(TOKEN_BASE + i))
        .expect("body token ids stay below TOKEN_IDS (at most 2099 steps)");
    format!("{c}{id}{c}")
}

/// Every well-formed body token in `text`, named `t<id>`, left to right.
fn body_tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let Some(c) = text[at..].chars().next() else {
            break;
        };
        let code = u32::from(c);
        if (TOKEN_BASE..TOKEN_BASE + TOKEN_IDS as u32).contains(&code) {
            let id = (code - TOKEN_BASE).to_string();
            let after = at + c.len_utf8();
            let whole = format!("{id}{c}");
            if text[after..].starts_with(&whole) {
                let end = after + whole.len();
                out.push(Token {
                    start: at,
                    end,
                    text: format!("t{id}"),
                });
                at = end;
                continue;
            }
        }
        at += c.len_utf8();
    }
    out
}

/// Every `<prefix><digits>x` in `text` (comment tokens), left to right.
fn tokens(text: &str, prefix: u8) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == prefix {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 && j < b.len() && b[j] == b'x' {
                out.push(Token {
                    start: i,
                    end: j + 1,
                    text: text[i..=j].to_owned(),
                });
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// What is left of `text` without `found` (tokens found in it).
fn residue(text: &str, found: &[Token]) -> String {
    let mut spans: Vec<(usize, usize)> = found.iter().map(|t| (t.start, t.end)).collect();
    spans.sort_unstable();
    let mut out = String::new();
    let mut at = 0;
    for (s, e) in spans {
        if s >= at {
            out.push_str(&text[at..s]);
            at = e;
        }
    }
    out.push_str(&text[at..]);
    out
}

fn count(list: &[Token]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in list {
        *m.entry(t.text.clone()).or_insert(0) += 1;
    }
    m
}

/// `body` edited as `edit` says, with `new` as the new token's text; `None`
/// when the edit has nothing to act on. Also returns the name of the token
/// deleted, if any.
fn apply_body_edit(body: &str, edit: &BodyEdit, new: &str) -> Option<(String, Option<String>)> {
    let toks = body_tokens(body);
    match edit {
        BodyEdit::Insert { at, newline } => {
            if body.trim().is_empty() {
                return Some((new.to_owned(), None));
            }
            let mut bounds = vec![0];
            bounds.extend(toks.iter().map(|t| t.end));
            let pos = bounds[index(*at, bounds.len())];
            let sep = if *newline { "\n" } else { " " };
            let text = if pos == 0 {
                format!("{new}{sep}{body}")
            } else {
                format!("{}{sep}{new}{}", &body[..pos], &body[pos..])
            };
            Some((text, None))
        }
        BodyEdit::Delete { which } => {
            if toks.is_empty() {
                return None;
            }
            let t = &toks[index(*which, toks.len())];
            let (mut s, mut e) = (t.start, t.end);
            if body[..s].ends_with([' ', '\n']) {
                s -= 1;
            } else if body[e..].starts_with([' ', '\n']) {
                e += 1;
            }
            Some((
                format!("{}{}", &body[..s], &body[e..]),
                Some(t.text.clone()),
            ))
        }
        BodyEdit::Replace { which } => {
            if toks.is_empty() {
                return None;
            }
            let t = &toks[index(*which, toks.len())];
            Some((
                format!("{}{new}{}", &body[..t.start], &body[t.end..]),
                Some(t.text.clone()),
            ))
        }
    }
}

fn index(k: u64, len: usize) -> usize {
    usize::try_from(k % len as u64).expect("below a usize length")
}

const MARKER_OPEN: &str = "<!-- reposix:";

/// A tracker body split into the text a user reads and the marker part
/// (the blank lines and `<!-- reposix:… -->` the adapter appends).
fn split_marker(body: &str) -> (&str, &str) {
    match body.find(MARKER_OPEN) {
        Some(p) => {
            let text = body[..p].trim_end_matches('\n');
            (text, &body[text.len()..])
        }
        None => (body, ""),
    }
}

/// `body` without any `<!-- reposix:… -->` marker and the two newlines
/// before it, as the clones should hold it.
fn strip_markers(body: &str) -> String {
    let mut out = body.to_owned();
    while let Some(p) = out.find(MARKER_OPEN) {
        let end = out[p..].find("-->").map_or(out.len(), |e| p + e + 3);
        let start = if out[..p].ends_with("\n\n") { p - 2 } else { p };
        out.replace_range(start..end, "");
    }
    out
}

/// The tag of an issue title `i<n>: …`.
fn tag_of(title: &str) -> Option<usize> {
    title.strip_prefix('i')?.split_once(':')?.0.parse().ok()
}

fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@+".contains(&b))
    {
        arg.to_owned()
    } else {
        format!("{arg:?}")
    }
}

// ------------------------------------------------------------ the model

/// Where a write came from.
fn local_writer(clone: usize, actor: usize) -> String {
    format!("c{clone}/{}", ACTORS[clone][actor])
}

#[derive(Debug)]
struct IssueModel {
    tracker_origin: bool,
    tracker_deleted: bool,
}

#[derive(Debug)]
struct TokenModel {
    issue: usize,
    writer: String,
    deleted_by: Option<String>,
}

#[derive(Debug)]
struct CommentModel {
    issue: usize,
    tracker_origin: bool,
    /// Edit tokens written for it (`e<n>x`).
    edits: BTreeSet<String>,
    deleted_by: Option<String>,
}

#[derive(Debug, Default)]
struct Model {
    issues: BTreeMap<usize, IssueModel>,
    tokens: BTreeMap<String, TokenModel>,
    comments: BTreeMap<String, CommentModel>,
}

impl Model {
    fn delete_token(&mut self, token: &str, by: &str) {
        if let Some(t) = self.tokens.get_mut(token) {
            t.deleted_by.get_or_insert_with(|| by.to_owned());
        }
    }
}

// ------------------------------------------------------------ a run

/// A broken promise, keyed by symptom (what the shrinker keeps).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    symptom: String,
    detail: String,
}

/// What a finished command left.
struct Out {
    code: i32,
    ms: u128,
    stdout: String,
    stderr: String,
}

/// How the sim runs in a trace: some seeds run it without comments, like
/// reposix-sim 0.14.
#[derive(Clone, Copy, Debug)]
struct Topology {
    comments_api: bool,
}

impl Topology {
    fn of(seed: u64) -> Topology {
        Topology {
            comments_api: seed % 5 != 4,
        }
    }
}

/// Everything one execution of a trace uses: temp dirs, clones, the sim.
struct World {
    root: TempDir,
    home: PathBuf,
    clones: Vec<PathBuf>,
    _sim: SimHandle,
    api: String,
    http: reqwest::blocking::Client,
    topology: Topology,
    model: Model,
    log: Vec<String>,
    violations: Vec<Violation>,
    outputs: usize,
    /// The step running, and the steps that ran a command or a request
    /// (the others were no-ops: nothing to act on).
    current: Option<usize>,
    acted: BTreeSet<usize>,
}

/// The issues a clone sees, by tag: (tag, id), sorted.
type Listing = Vec<(usize, String)>;

impl World {
    fn new(topology: Topology) -> World {
        let mut root = tempfile::Builder::new()
            .prefix("reposix-model-")
            .tempdir()
            .expect("a temp dir");
        if std::env::var_os("REPOSIX_MODEL_KEEP_DIRS").is_some() {
            // Debugging a replay: the clones stay for `reposix log`.
            root.disable_cleanup(true);
            eprintln!("model: keeping {}", root.path().display());
        }
        let home = root.path().join("home");
        std::fs::create_dir(&home).expect("creating HOME");
        std::fs::create_dir(root.path().join("out")).expect("creating out/");
        let remote = root.path().join("remote.git");
        let git_in = |dir: &Path, args: &[&str]| {
            let mut cmd = Command::new("git");
            hermetic(&mut cmd, &home).current_dir(dir).args(args);
            let out = cmd.output().expect("running git");
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        git_in(root.path(), &["init", "-q", "--bare", "remote.git"]);
        let remote_s = remote.to_string_lossy().into_owned();
        let mut clones = Vec::new();
        for c in 0..CLONES {
            let name = format!("c{c}");
            if c == 0 {
                git_in(root.path(), &["init", "-q", "-b", "main", &name]);
                git_in(
                    &root.path().join(&name),
                    &["remote", "add", "origin", &remote_s],
                );
            } else {
                git_in(root.path(), &["clone", "-q", &remote_s, &name]);
            }
            clones.push(root.path().join(name));
        }
        let sim = sim::start(SimConfig {
            rate_limit: 0,
            accept_comments: topology.comments_api,
            ..SimConfig::default()
        })
        .expect("the sim starts on loopback");
        let api = format!("{}/projects/demo", sim.base_url());
        reposix::tracker::http::install_crypto_provider();
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let mut world = World {
            root,
            home,
            clones,
            api,
            http,
            topology,
            model: Model::default(),
            log: Vec::new(),
            violations: Vec::new(),
            outputs: 0,
            current: None,
            acted: BTreeSet::new(),
            _sim: sim,
        };
        // Each clone's first actor is its default (who syncs).
        for (c, actors) in ACTORS.iter().enumerate() {
            let out = world.rx(c, None, &["actor", "new", actors[0], "--use"]);
            world.expect_code(None, "actor new", &out, &[0]);
        }
        let spec = format!("sim::{}", world._sim.project_url("demo"));
        for c in ATTACHED {
            let out = world.rx(c, None, &["backend", "add", "sim", &spec]);
            world.expect_code(None, "backend add", &out, &[0]);
        }
        world
    }

    // -------------------------------------------------- processes

    fn reposix(&self, clone: usize, actor: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        hermetic(&mut cmd, &self.home).current_dir(&self.clones[clone]);
        if let Some(a) = actor {
            cmd.args(["--actor", a]);
        }
        cmd.args(args);
        cmd
    }

    fn git_cmd(&self, clone: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, &self.home)
            .current_dir(&self.clones[clone])
            .args(args);
        cmd
    }

    /// Start a command with its output going to files (so two can run at
    /// once without pipes to drain).
    fn spawn(&mut self, mut cmd: Command) -> (Child, PathBuf, PathBuf, Instant) {
        self.outputs += 1;
        let base = self.root.path().join("out").join(self.outputs.to_string());
        let (o, e) = (base.with_extension("out"), base.with_extension("err"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).expect("an output file"))
            .stderr(std::fs::File::create(&e).expect("an output file"));
        let started = Instant::now();
        (cmd.spawn().expect("spawning a command"), o, e, started)
    }

    /// Wait for a spawned command; kill it after [`COMMAND_TIMEOUT`].
    fn finish(child: (Child, PathBuf, PathBuf, Instant)) -> Out {
        let (mut child, o, e, started) = child;
        let code = loop {
            if let Some(status) = child.try_wait().expect("waiting for a command") {
                break status.code().unwrap_or(-1);
            }
            if started.elapsed() > COMMAND_TIMEOUT {
                // The child we spawned, by handle.
                let _ = child.kill();
                let _ = child.wait();
                break -2;
            }
            // A watchdog's poll interval, not a synchronization.
            std::thread::sleep(Duration::from_millis(2));
        };
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        Out {
            code,
            ms: started.elapsed().as_millis(),
            stdout: read(&o),
            stderr: read(&e),
        }
    }

    fn run(&mut self, cmd: Command) -> Out {
        let child = self.spawn(cmd);
        World::finish(child)
    }

    fn rx(&mut self, clone: usize, actor: Option<&str>, args: &[&str]) -> Out {
        let cmd = self.reposix(clone, actor, args);
        let out = self.run(cmd);
        self.note_command(clone, actor, "reposix", args, &out);
        out
    }

    fn git(&mut self, clone: usize, args: &[&str]) -> Out {
        let cmd = self.git_cmd(clone, args);
        let out = self.run(cmd);
        self.note_command(clone, None, "git", args, &out);
        out
    }

    fn note_command(
        &mut self,
        clone: usize,
        actor: Option<&str>,
        prog: &str,
        args: &[&str],
        out: &Out,
    ) {
        self.acted.extend(self.current);
        let quoted: Vec<String> = args.iter().map(|a| quote(a)).collect();
        let actor = actor.map(|a| format!("--actor {a} ")).unwrap_or_default();
        self.log.push(format!(
            "  (c{clone}) {prog} {actor}{}  -> {} ({} ms)",
            quoted.join(" "),
            out.code,
            out.ms
        ));
    }

    fn expect_code(&mut self, step: Option<usize>, what: &str, out: &Out, allowed: &[i32]) {
        if allowed.contains(&out.code) {
            return;
        }
        let at = step.map(|n| format!("step #{n}: ")).unwrap_or_default();
        let stderr: String = out.stderr.lines().take(6).collect::<Vec<_>>().join(" | ");
        self.violations.push(Violation {
            symptom: format!("exit {} from `{what}`", out.code),
            detail: format!(
                "{at}`{what}` exited {} (allowed {allowed:?}): {stderr}",
                out.code
            ),
        });
    }

    fn violation(&mut self, symptom: &str, detail: String) {
        self.violations.push(Violation {
            symptom: symptom.to_owned(),
            detail,
        });
    }

    // -------------------------------------------------- reading state

    fn json_of(&mut self, clone: usize, args: &[&str]) -> Option<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let cmd = self.reposix(clone, None, &all);
        let out = self.run(cmd);
        if out.code != 0 {
            self.note_command(clone, None, "reposix", &all, &out);
            self.expect_code(None, &all.join(" "), &out, &[0]);
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        Some(v["data"].clone())
    }

    fn listing(&mut self, clone: usize) -> Listing {
        let data = self
            .json_of(clone, &["issue", "list", "--state", "all", "--limit", "0"])
            .unwrap_or(Value::Null);
        let mut out: Listing = data["issues"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| {
                let tag = tag_of(i["title"].as_str()?)?;
                Some((tag, i["id"].as_str()?.to_owned()))
            })
            .collect();
        out.sort();
        out
    }

    fn show(&mut self, clone: usize, id: &str) -> Option<Value> {
        let mut v = self.json_of(clone, &["issue", "show", id])?;
        // Tracker references and URLs are rendered from the clone's own
        // backend configuration (the sim is attached in two clones only):
        // presentation, not replicated state.
        if let Some(o) = v.as_object_mut() {
            o.remove("trackers");
        }
        Some(v)
    }

    fn http_json(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.api))
            .header("X-Reposix-Agent", TRACKER_AGENT);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().expect("the sim answers on loopback");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        if method != reqwest::Method::GET {
            self.acted.extend(self.current);
        }
        self.log.push(format!(
            "  (tracker) {method} {path} {} -> {status}",
            body.map(|b| b.to_string()).unwrap_or_default()
        ));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The tracker's issues, sorted by tag: (tag, record).
    fn tracker_issues(&mut self) -> Vec<(usize, Value)> {
        let resp = self
            .http
            .get(format!("{}/issues", self.api))
            .send()
            .expect("the sim answers on loopback");
        let list: Value = resp.json().expect("the sim lists JSON");
        let mut out: Vec<(usize, Value)> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((tag_of(r["title"].as_str()?)?, r.clone())))
            .collect();
        out.sort_by_key(|(t, r)| (*t, r["id"].as_u64()));
        out
    }

    fn tracker_comments(&mut self, id: u64) -> Vec<Value> {
        if !self.topology.comments_api {
            return Vec::new();
        }
        let resp = self
            .http
            .get(format!("{}/issues/{id}/comments", self.api))
            .send()
            .expect("the sim answers on loopback");
        resp.json::<Value>()
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// What has to stay still for the world to be quiet.
    fn fingerprint(&mut self) -> String {
        let mut fp = String::new();
        for c in 0..CLONES {
            let cmd = self.git_cmd(
                c,
                &[
                    "for-each-ref",
                    "--format=%(refname) %(objectname)",
                    "refs/reposix/issues/",
                ],
            );
            fp.push_str(&self.run(cmd).stdout);
        }
        for path in ["/issues", "/comments"] {
            if path == "/comments" && !self.topology.comments_api {
                continue;
            }
            let text = self
                .http
                .get(format!("{}{path}", self.api))
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            fp.push_str(&text);
        }
        fp
    }

    // -------------------------------------------------- steps

    /// The issue `#k` of what `clone` lists (by tag).
    fn pick_local(&mut self, clone: usize, k: u64) -> Option<(usize, String)> {
        let list = self.listing(clone);
        if list.is_empty() {
            return None;
        }
        Some(list[index(k, list.len())].clone())
    }

    fn step(&mut self, step: &Step) {
        self.log.push(step.describe());
        self.current = Some(step.n);
        self.run_step(step);
        self.current = None;
    }

    fn run_step(&mut self, step: &Step) {
        let n = step.n;
        match step.op.clone() {
            Op::New {
                clone,
                actor,
                labels,
                assignees,
                status,
            } => {
                let title = format!("i{n}: v{n}");
                let token = format!("t{}", n * 10);
                let text = body_token(n * 10);
                let mut args: Vec<String> = ["issue", "new", &title, "-b", &text]
                    .map(str::to_owned)
                    .to_vec();
                for l in mask_names(labels, &LABELS) {
                    args.extend(["-l".to_owned(), l]);
                }
                for a in mask_names(assignees, &PEOPLE) {
                    args.extend(["-a".to_owned(), a]);
                }
                args.extend(["--status".to_owned(), STATUSES[status].to_owned()]);
                let out = self.local(clone, actor, n, "issue new", &args);
                if out.code == 0 {
                    self.model.issues.insert(
                        n,
                        IssueModel {
                            tracker_origin: false,
                            tracker_deleted: false,
                        },
                    );
                    self.model.tokens.insert(
                        token,
                        TokenModel {
                            issue: n,
                            writer: local_writer(clone, actor),
                            deleted_by: None,
                        },
                    );
                }
            }
            Op::Title {
                clone,
                actor,
                issue,
            } => {
                if let Some((tag, id)) = self.pick_local(clone, issue) {
                    let title = format!("i{tag}: v{n}");
                    self.local(
                        clone,
                        actor,
                        n,
                        "issue edit --title",
                        &["issue", "edit", &id, "--title", &title],
                    );
                }
            }
            Op::Status {
                clone,
                actor,
                issue,
                status,
            } => {
                if let Some((_, id)) = self.pick_local(clone, issue) {
                    self.local(
                        clone,
                        actor,
                        n,
                        "issue status",
                        &["issue", "status", &id, STATUSES[status]],
                    );
                }
            }
            Op::Label {
                clone,
                actor,
                issue,
                label,
                remove,
            } => {
                let Some((_, id)) = self.pick_local(clone, issue) else {
                    return;
                };
                let present = self.show_strings(clone, &id, "labels");
                if remove && !present.is_empty() {
                    let l = present[label % present.len()].clone();
                    self.local(
                        clone,
                        actor,
                        n,
                        "issue label --remove",
                        &["issue", "label", &id, &l, "--remove"],
                    );
                } else {
                    self.local(
                        clone,
                        actor,
                        n,
                        "issue label",
                        &["issue", "label", &id, LABELS[label]],
                    );
                }
            }
            Op::Assign {
                clone,
                actor,
                issue,
                who,
                remove,
            } => {
                let Some((_, id)) = self.pick_local(clone, issue) else {
                    return;
                };
                let present = self.show_strings(clone, &id, "assignees");
                if remove && !present.is_empty() {
                    let w = present[who % present.len()].clone();
                    self.local(
                        clone,
                        actor,
                        n,
                        "issue assign --remove",
                        &["issue", "assign", &id, &w, "--remove"],
                    );
                } else {
                    self.local(
                        clone,
                        actor,
                        n,
                        "issue assign",
                        &["issue", "assign", &id, PEOPLE[who]],
                    );
                }
            }
            Op::Link {
                clone,
                actor,
                issue,
                target,
                kind,
                remove,
            } => {
                let Some((_, id)) = self.pick_local(clone, issue) else {
                    return;
                };
                let links: Vec<(String, String)> = self
                    .show(clone, &id)
                    .and_then(|s| s["links"].as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|l| {
                        Some((
                            l["target"].as_str()?.to_owned(),
                            l["kind"].as_str()?.to_owned(),
                        ))
                    })
                    .collect();
                if remove && !links.is_empty() {
                    let (t, k) = links[index(target, links.len())].clone();
                    self.local(
                        clone,
                        actor,
                        n,
                        "issue link --remove",
                        &["issue", "link", &id, &t, "--kind", &k, "--remove"],
                    );
                } else {
                    let Some((_, t)) = self.pick_local(clone, target) else {
                        return;
                    };
                    if t != id {
                        let args = ["issue", "link", &id, &t, "--kind", LINK_KINDS[kind]];
                        let out = self.rx(clone, Some(ACTORS[clone][actor]), &args);
                        // A `blocks` or `parent` link that would close a
                        // cycle is refused (exit 7, the cycle named): the
                        // documented answer, not a failure.
                        let cycle_refused = out.code == 7
                            && out.stderr.contains("would close a cycle of")
                            && ["blocks", "blocked-by", "parent", "child"]
                                .contains(&LINK_KINDS[kind]);
                        if !cycle_refused {
                            self.expect_code(Some(n), "issue link", &out, &[0]);
                        }
                    }
                }
            }
            Op::Field {
                clone,
                actor,
                issue,
                field,
                unset,
            } => {
                if let Some((_, id)) = self.pick_local(clone, issue) {
                    if unset {
                        self.local(
                            clone,
                            actor,
                            n,
                            "issue edit --unset-field",
                            &["issue", "edit", &id, "--unset-field", FIELDS[field]],
                        );
                    } else {
                        let kv = format!("{}=v{n}", FIELDS[field]);
                        self.local(
                            clone,
                            actor,
                            n,
                            "issue edit --field",
                            &["issue", "edit", &id, "--field", &kv],
                        );
                    }
                }
            }
            Op::Body {
                clone,
                actor,
                issue,
                edit,
            } => {
                let Some((tag, id)) = self.pick_local(clone, issue) else {
                    return;
                };
                let Some(body) = self
                    .show(clone, &id)
                    .and_then(|s| s["body"].as_str().map(str::to_owned))
                else {
                    return;
                };
                let token = format!("t{}", n * 10);
                let Some((text, deleted)) = apply_body_edit(&body, &edit, &body_token(n * 10))
                else {
                    return;
                };
                // An issue imported from the tracker before git brought its
                // history shows the tracker's text and refuses body edits
                // (exit 7, saying why) until then: nothing is written.
                let args = ["issue", "edit", &id, "--body", &text];
                let out = self.rx(clone, Some(ACTORS[clone][actor]), &args);
                let awaiting =
                    out.code == 7 && out.stderr.contains("cannot be edited in this clone yet");
                if !awaiting {
                    self.expect_code(Some(n), "issue edit --body", &out, &[0]);
                }
                if out.code == 0 {
                    let writer = local_writer(clone, actor);
                    if let Some(d) = deleted {
                        self.model.delete_token(&d, &writer);
                    }
                    if !matches!(edit, BodyEdit::Delete { .. }) {
                        self.model.tokens.insert(
                            token,
                            TokenModel {
                                issue: tag,
                                writer,
                                deleted_by: None,
                            },
                        );
                    }
                }
            }
            Op::Comment {
                clone,
                actor,
                issue,
            } => {
                let Some((tag, id)) = self.pick_local(clone, issue) else {
                    return;
                };
                let text = format!("c{n}x");
                let out = self.local(
                    clone,
                    actor,
                    n,
                    "issue comment",
                    &["issue", "comment", &id, &text],
                );
                if out.code == 0 {
                    self.model.comments.insert(
                        text,
                        CommentModel {
                            issue: tag,
                            tracker_origin: false,
                            edits: BTreeSet::new(),
                            deleted_by: None,
                        },
                    );
                }
            }
            Op::CommentEdit {
                clone,
                actor,
                issue,
                comment,
            } => {
                let Some((_, id, cid, body)) = self.pick_comment(clone, issue, comment) else {
                    return;
                };
                let Some(ctoken) = tokens(&body, b'c').first().map(|t| t.text.clone()) else {
                    return;
                };
                let edit = format!("e{n}x");
                let text = format!("{body} {edit}");
                let out = self.local(
                    clone,
                    actor,
                    n,
                    "issue comment --edit",
                    &["issue", "comment", &id, &text, "--edit", &cid],
                );
                if out.code == 0 {
                    if let Some(c) = self.model.comments.get_mut(&ctoken) {
                        c.edits.insert(edit);
                    }
                }
            }
            Op::CommentDelete {
                clone,
                actor,
                issue,
                comment,
            } => {
                let Some((_, id, cid, body)) = self.pick_comment(clone, issue, comment) else {
                    return;
                };
                let out = self.local(
                    clone,
                    actor,
                    n,
                    "issue comment --delete",
                    &["issue", "comment", &id, "--delete", &cid],
                );
                if out.code == 0 {
                    if let Some(t) = tokens(&body, b'c').first() {
                        if let Some(c) = self.model.comments.get_mut(&t.text) {
                            c.deleted_by
                                .get_or_insert_with(|| local_writer(clone, actor));
                        }
                    }
                }
            }
            Op::Sync { clone } => {
                let out = self.rx(clone, None, &["sync"]);
                self.expect_code(Some(n), "reposix sync", &out, &[0]);
            }
            Op::SyncPair { a, b } => {
                let ca = self.reposix(a, None, &["sync"]);
                let cb = self.reposix(b, None, &["sync"]);
                let (ha, hb) = (self.spawn(ca), self.spawn(cb));
                let (oa, ob) = (World::finish(ha), World::finish(hb));
                self.note_command(a, None, "reposix", &["sync", "&"], &oa);
                self.note_command(b, None, "reposix", &["sync", "&"], &ob);
                self.expect_code(Some(n), "reposix sync (two at once)", &oa, &[0, 10]);
                self.expect_code(Some(n), "reposix sync (two at once)", &ob, &[0, 10]);
            }
            Op::Fetch { clone, force } => {
                let spec = if force {
                    "+refs/reposix/*:refs/reposix/*"
                } else {
                    "refs/reposix/*:refs/reposix/*"
                };
                let out = self.git(clone, &["fetch", "-q", "origin", spec]);
                let allowed: &[i32] = if force { &[0] } else { &[0, 1] };
                self.expect_code(Some(n), "git fetch", &out, allowed);
            }
            Op::Backend { clone } => {
                let out = self.rx(clone, None, &["sync", "--backend", "sim", "--yes"]);
                self.expect_code(Some(n), "reposix sync --backend", &out, &[0]);
            }
            Op::BackendPair { a, b } => {
                let args = ["sync", "--backend", "sim", "--yes"];
                let ca = self.reposix(a, None, &args);
                let cb = self.reposix(b, None, &args);
                let (ha, hb) = (self.spawn(ca), self.spawn(cb));
                let (oa, ob) = (World::finish(ha), World::finish(hb));
                self.note_command(a, None, "reposix", &["sync", "--backend", "sim", "&"], &oa);
                self.note_command(b, None, "reposix", &["sync", "--backend", "sim", "&"], &ob);
                self.expect_code(
                    Some(n),
                    "reposix sync --backend (two at once)",
                    &oa,
                    &[0, 11],
                );
                self.expect_code(
                    Some(n),
                    "reposix sync --backend (two at once)",
                    &ob,
                    &[0, 11],
                );
            }
            Op::TrackerNew {
                labels,
                status,
                assignee,
            } => {
                let token = format!("t{}", n * 10);
                let mut rec = json!({
                    "title": format!("i{n}: v{n}"),
                    "body": body_token(n * 10),
                    "status": STATUSES[status],
                    "labels": mask_names(labels, &LABELS),
                });
                if let Some(a) = assignee {
                    rec["assignee"] = json!(PEOPLE[a]);
                }
                let (status, _) = self.http_json(reqwest::Method::POST, "/issues", Some(rec));
                self.expect_http(n, "POST issue", status, 201);
                if status == 201 {
                    self.model.issues.insert(
                        n,
                        IssueModel {
                            tracker_origin: true,
                            tracker_deleted: false,
                        },
                    );
                    self.model.tokens.insert(
                        token,
                        TokenModel {
                            issue: n,
                            writer: "tracker".to_owned(),
                            deleted_by: None,
                        },
                    );
                }
            }
            Op::TrackerEdits { issue, edits } => {
                let Some((tag, id)) = self.pick_tracker(issue) else {
                    return;
                };
                for (j, e) in edits.iter().enumerate() {
                    self.tracker_edit(n, j, tag, id, e);
                }
            }
            Op::TrackerComment { issue } => {
                if !self.topology.comments_api {
                    return;
                }
                let Some((tag, id)) = self.pick_tracker(issue) else {
                    return;
                };
                let text = format!("c{n}x");
                let (status, _) = self.http_json(
                    reqwest::Method::POST,
                    &format!("/issues/{id}/comments"),
                    Some(json!({ "body": text })),
                );
                self.expect_http(n, "POST comment", status, 201);
                if status == 201 {
                    self.model.comments.insert(
                        text,
                        CommentModel {
                            issue: tag,
                            tracker_origin: true,
                            edits: BTreeSet::new(),
                            deleted_by: None,
                        },
                    );
                }
            }
            Op::TrackerCommentEdit {
                issue,
                comment,
                keep_marker,
            } => {
                if !self.topology.comments_api {
                    return;
                }
                let Some((_, id)) = self.pick_tracker(issue) else {
                    return;
                };
                let list = self.tracker_comments(id);
                if list.is_empty() {
                    return;
                }
                let c = &list[index(comment, list.len())];
                let (Some(cid), Some(body)) = (c["id"].as_u64(), c["body"].as_str()) else {
                    return;
                };
                let (text, marker) = split_marker(body);
                let Some(ctoken) = tokens(text, b'c').first().map(|t| t.text.clone()) else {
                    return;
                };
                let edit = format!("e{n}x");
                let new = format!("{text} {edit}{}", if keep_marker { marker } else { "" });
                let (status, _) = self.http_json(
                    reqwest::Method::PATCH,
                    &format!("/comments/{cid}"),
                    Some(json!({ "body": new })),
                );
                self.expect_http(n, "PATCH comment", status, 200);
                if status == 200 {
                    if let Some(c) = self.model.comments.get_mut(&ctoken) {
                        c.edits.insert(edit);
                    }
                }
            }
            Op::TrackerDelete { issue } => {
                let Some((tag, id)) = self.pick_tracker(issue) else {
                    return;
                };
                let (status, _) =
                    self.http_json(reqwest::Method::DELETE, &format!("/issues/{id}"), None);
                self.expect_http(n, "DELETE issue", status, 204);
                if let Some(i) = self.model.issues.get_mut(&tag) {
                    i.tracker_deleted = true;
                }
            }
        }
    }

    fn local(
        &mut self,
        clone: usize,
        actor: usize,
        n: usize,
        what: &str,
        args: &[impl AsRef<str>],
    ) -> Out {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let out = self.rx(clone, Some(ACTORS[clone][actor]), &args);
        self.expect_code(Some(n), what, &out, &[0]);
        out
    }

    fn show_strings(&mut self, clone: usize, id: &str, key: &str) -> Vec<String> {
        self.show(clone, id)
            .and_then(|s| s[key].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// Issue `#k` and its comment `#j` in `clone`: (tag, issue id, comment
    /// id, comment text).
    fn pick_comment(
        &mut self,
        clone: usize,
        k: u64,
        j: u64,
    ) -> Option<(usize, String, String, String)> {
        let (tag, id) = self.pick_local(clone, k)?;
        let comments = self.show(clone, &id)?["comments"].as_array()?.clone();
        if comments.is_empty() {
            return None;
        }
        let c = &comments[index(j, comments.len())];
        Some((
            tag,
            id,
            c["id"].as_str()?.to_owned(),
            c["body"].as_str()?.to_owned(),
        ))
    }

    /// The tracker's issue `#k`, by tag: (tag, sim id).
    fn pick_tracker(&mut self, k: u64) -> Option<(usize, u64)> {
        let list = self.tracker_issues();
        if list.is_empty() {
            return None;
        }
        let (tag, rec) = &list[index(k, list.len())];
        Some((*tag, rec["id"].as_u64()?))
    }

    fn expect_http(&mut self, n: usize, what: &str, got: u16, want: u16) {
        if got != want {
            self.violation(
                &format!("tracker answered {got} to {what}"),
                format!("step #{n}: {what} got HTTP {got}, want {want}"),
            );
        }
    }

    fn tracker_edit(&mut self, n: usize, j: usize, tag: usize, id: u64, edit: &TrackerEdit) {
        let path = format!("/issues/{id}");
        let (status, current) = self.http_json(reqwest::Method::GET, &path, None);
        if status != 200 {
            return;
        }
        let patch = match edit {
            TrackerEdit::Title => json!({ "title": format!("i{tag}: v{n}.{j}") }),
            TrackerEdit::Status(s) => json!({ "status": STATUSES[*s] }),
            TrackerEdit::Label { label, remove } => {
                let mut labels: BTreeSet<String> = current["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect();
                if *remove {
                    labels.remove(LABELS[*label]);
                } else {
                    labels.insert(LABELS[*label].to_owned());
                }
                json!({ "labels": labels })
            }
            TrackerEdit::Assignee(a) => json!({ "assignee": a.map(|a| PEOPLE[a]) }),
            TrackerEdit::Body { edit, keep_marker } => {
                let body = current["body"].as_str().unwrap_or_default().to_owned();
                let (text, marker) = split_marker(&body);
                let token = format!("t{}", n * 10 + j);
                let Some((new, deleted)) = apply_body_edit(text, edit, &body_token(n * 10 + j))
                else {
                    return;
                };
                let new = format!("{new}{}", if *keep_marker { marker } else { "" });
                if let Some(d) = deleted {
                    self.model.delete_token(&d, "tracker");
                }
                if !matches!(edit, BodyEdit::Delete { .. }) {
                    self.model.tokens.insert(
                        token,
                        TokenModel {
                            issue: tag,
                            writer: "tracker".to_owned(),
                            deleted_by: None,
                        },
                    );
                }
                json!({ "body": new })
            }
        };
        let (status, _) = self.http_json(reqwest::Method::PATCH, &path, Some(patch));
        self.expect_http(n, "PATCH issue", status, 200);
    }

    // -------------------------------------------------- quiescence

    /// Sync every clone with git and the tracker until nothing moves for
    /// two full rounds. Returns false if it never settles.
    fn quiesce(&mut self) -> bool {
        self.log.push("quiesce:".to_owned());
        let mut before = self.fingerprint();
        let mut still = 0;
        for round in 0..MAX_ROUNDS {
            for c in 0..CLONES {
                let out = self.rx(c, None, &["sync"]);
                self.expect_code(None, "reposix sync (quiescing)", &out, &[0]);
                if ATTACHED.contains(&c) {
                    let out = self.rx(c, None, &["sync", "--backend", "sim", "--yes"]);
                    self.expect_code(None, "reposix sync --backend (quiescing)", &out, &[0]);
                }
            }
            let after = self.fingerprint();
            still = if after == before { still + 1 } else { 0 };
            before = after;
            if still == 2 {
                self.log
                    .push(format!("  settled after {} rounds", round + 1));
                return true;
            }
        }
        self.violation(
            "did not settle",
            format!("refs or the tracker still moved after {MAX_ROUNDS} rounds of sync"),
        );
        false
    }

    // -------------------------------------------------- the oracle

    fn check(&mut self) {
        // Per clone: the listing, every issue shown.
        let mut states: Vec<(Value, BTreeMap<String, Value>)> = Vec::new();
        for c in 0..CLONES {
            let mut list = self
                .json_of(c, &["issue", "list", "--state", "all", "--limit", "0"])
                .unwrap_or(Value::Null);
            // Presentation from the clone's own backends (see `show`).
            for i in list["issues"].as_array_mut().into_iter().flatten() {
                if let Some(o) = i.as_object_mut() {
                    o.remove("trackers");
                }
            }
            let mut shows = BTreeMap::new();
            let ids: Vec<String> = list["issues"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect();
            for id in ids {
                if let Some(s) = self.show(c, &id) {
                    shows.insert(id, s);
                }
            }
            states.push((list, shows));
            let out = self.rx(c, None, &["fsck"]);
            if out.code != 0 {
                self.violation(
                    "fsck not clean",
                    format!(
                        "c{c}: fsck exited {}: {}",
                        out.code,
                        out.stdout.lines().take(4).collect::<Vec<_>>().join(" | ")
                    ),
                );
            }
        }
        self.check_clones_agree(&states);
        for (c, (_, shows)) in states.iter().enumerate() {
            self.check_clone(c, shows);
        }
        self.check_tracker(&states[0].1);
    }

    fn check_clones_agree(&mut self, states: &[(Value, BTreeMap<String, Value>)]) {
        let (list0, shows0) = &states[0];
        for (c, (list, shows)) in states.iter().enumerate().skip(1) {
            if list == list0 && shows == shows0 {
                continue;
            }
            let ids: BTreeSet<&String> = shows.keys().chain(shows0.keys()).collect();
            let mut diffs = Vec::new();
            for id in ids {
                match (shows0.get(id), shows.get(id)) {
                    (Some(a), Some(b)) if a != b => {
                        let keys: Vec<&String> = a
                            .as_object()
                            .into_iter()
                            .flatten()
                            .filter(|(k, v)| b.get(k.as_str()) != Some(*v))
                            .map(|(k, _)| k)
                            .collect();
                        let tag = a["title"].as_str().and_then(tag_of);
                        diffs.push(format!(
                            "i{} differs in {keys:?}",
                            tag.map_or("?".into(), |t| t.to_string())
                        ));
                    }
                    (Some(_), None) => diffs.push(format!("{id} only in c0")),
                    (None, Some(_)) => diffs.push(format!("{id} only in c{c}")),
                    _ => {}
                }
            }
            if diffs.is_empty() {
                diffs.push("the listings differ".to_owned());
            }
            self.violation("clones differ", format!("c0 vs c{c}: {}", diffs.join("; ")));
        }
    }

    /// Issues, body tokens and comments of one clone against the model.
    fn check_clone(&mut self, c: usize, shows: &BTreeMap<String, Value>) {
        let mut by_tag: BTreeMap<usize, Vec<&Value>> = BTreeMap::new();
        for s in shows.values() {
            match s["title"].as_str().and_then(tag_of) {
                Some(t) => by_tag.entry(t).or_default().push(s),
                None => self.violation("issue without a tag", format!("c{c}: {}", s["title"])),
            }
        }
        let mut problems: Vec<(String, String)> = Vec::new();
        for (tag, m) in &self.model.issues {
            let k = by_tag.get(tag).map_or(0, Vec::len);
            let optional = m.tracker_origin && m.tracker_deleted;
            if k > 1 {
                problems.push((
                    "issue duplicated".into(),
                    format!("c{c}: i{tag} is there {k} times"),
                ));
            } else if k == 0 && !optional {
                problems.push(("issue lost".into(), format!("c{c}: i{tag} is missing")));
            }
        }
        for tag in by_tag.keys() {
            if !self.model.issues.contains_key(tag) {
                problems.push((
                    "unknown issue".into(),
                    format!("c{c}: i{tag} was never created"),
                ));
            }
        }
        // Body tokens, by the issue they are in.
        let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut comment_seen: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        for (tag, list) in &by_tag {
            for s in list {
                let body = s["body"].as_str().unwrap_or_default();
                let found = body_tokens(body);
                let rest = residue(body, &found);
                for t in found {
                    seen.entry(t.text).or_default().push(*tag);
                }
                if !rest.trim().is_empty() {
                    problems.push((
                        "stray text in a body".into(),
                        format!("c{c}: i{tag} body holds {:?} besides tokens", rest.trim()),
                    ));
                }
                for cm in s["comments"].as_array().into_iter().flatten() {
                    let text = cm["body"].as_str().unwrap_or_default().to_owned();
                    match tokens(&text, b'c').first() {
                        Some(t) => comment_seen
                            .entry(t.text.clone())
                            .or_default()
                            .push((*tag, text)),
                        None => problems.push((
                            "unknown comment".into(),
                            format!("c{c}: i{tag} comment {text:?}"),
                        )),
                    }
                }
            }
        }
        problems.extend(self.token_problems(&format!("c{c}"), &seen, |_| true));
        problems.extend(self.comment_problems(&format!("c{c}"), &comment_seen, |_| true));
        for (s, d) in problems {
            self.violation(&s, d);
        }
    }

    /// Body tokens found (token -> tags of the issues it is in) against the
    /// model, for issues `relevant` says to check.
    fn token_problems(
        &self,
        place: &str,
        seen: &BTreeMap<String, Vec<usize>>,
        relevant: impl Fn(usize) -> bool,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (token, m) in &self.model.tokens {
            if !relevant(m.issue) {
                continue;
            }
            let Some(issue) = self.model.issues.get(&m.issue) else {
                continue;
            };
            let here: Vec<usize> = seen.get(token).cloned().unwrap_or_default();
            let k = here.len();
            let optional = issue.tracker_deleted && m.writer == "tracker";
            // A tracker user's deletion in an issue later deleted on the
            // tracker may never have been seen: no import may have come in
            // between, and the tracker no longer serves the revision.
            let unseen = issue.tracker_deleted && m.deleted_by.as_deref() == Some("tracker");
            if let Some(by) = &m.deleted_by {
                if k > 1 || (k == 1 && !unseen) {
                    out.push((
                        if place == "tracker" {
                            "deleted token still on the tracker".into()
                        } else {
                            "deleted token came back".into()
                        },
                        format!(
                            "{place}: {token} (i{}, by {}) deleted by {by}, is there {k} times",
                            m.issue, m.writer
                        ),
                    ));
                }
            } else if k == 0 && !optional {
                out.push((
                    "body token lost".into(),
                    format!(
                        "{place}: {token} (i{}, by {}) is missing",
                        m.issue, m.writer
                    ),
                ));
            } else if k > 1 {
                out.push((
                    "body token duplicated".into(),
                    format!(
                        "{place}: {token} (i{}, by {}) is there {k} times",
                        m.issue, m.writer
                    ),
                ));
            }
            if here.iter().any(|t| *t != m.issue) {
                out.push((
                    "body token in another issue".into(),
                    format!("{place}: {token} of i{} found in {here:?}", m.issue),
                ));
            }
        }
        for token in seen.keys() {
            if !self.model.tokens.contains_key(token) {
                out.push((
                    "unknown body token".into(),
                    format!("{place}: {token} was never written"),
                ));
            }
        }
        out
    }

    /// Comments found (creation token -> (tag, text)) against the model.
    fn comment_problems(
        &self,
        place: &str,
        seen: &BTreeMap<String, Vec<(usize, String)>>,
        relevant: impl Fn(usize) -> bool,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (ctoken, m) in &self.model.comments {
            if !relevant(m.issue) {
                continue;
            }
            let Some(issue) = self.model.issues.get(&m.issue) else {
                continue;
            };
            let here = seen.get(ctoken).cloned().unwrap_or_default();
            let k = here.len();
            let optional = issue.tracker_deleted && m.tracker_origin;
            if let Some(by) = &m.deleted_by {
                if k > 0 {
                    out.push((
                        if place == "tracker" {
                            "deleted comment still on the tracker".into()
                        } else {
                            "deleted comment came back".into()
                        },
                        format!(
                            "{place}: comment {ctoken} on i{} deleted by {by}, is there {k} times",
                            m.issue
                        ),
                    ));
                }
            } else if k == 0 && !optional {
                out.push((
                    "comment lost".into(),
                    format!("{place}: comment {ctoken} on i{} is missing", m.issue),
                ));
            } else if k > 1 {
                out.push((
                    "comment duplicated".into(),
                    format!(
                        "{place}: comment {ctoken} on i{} is there {k} times",
                        m.issue
                    ),
                ));
            }
            for (tag, text) in &here {
                if *tag != m.issue {
                    out.push((
                        "comment on another issue".into(),
                        format!("{place}: comment {ctoken} of i{} found on i{tag}", m.issue),
                    ));
                }
                let c_ok = tokens(text, b'c').len() == 1;
                let e = tokens(text, b'e');
                let e_ok = e.iter().all(|t| m.edits.contains(&t.text))
                    && count(&e).values().all(|n| *n == 1);
                let found: Vec<Token> = tokens(text, b'c').into_iter().chain(e).collect();
                let rest = residue(text, &found);
                if !c_ok || !e_ok || !rest.trim().is_empty() {
                    out.push((
                        "comment text not its writers'".into(),
                        format!(
                            "{place}: comment {ctoken} reads {text:?} (edits written: {:?})",
                            m.edits
                        ),
                    ));
                }
            }
        }
        for ctoken in seen.keys() {
            if !self.model.comments.contains_key(ctoken) {
                out.push((
                    "unknown comment".into(),
                    format!("{place}: comment {ctoken} was never written"),
                ));
            }
        }
        out
    }

    /// The tracker against the model and against clone 0.
    fn check_tracker(&mut self, shows: &BTreeMap<String, Value>) {
        let records = self.tracker_issues();
        let mut by_tag: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
        for (t, r) in records {
            by_tag.entry(t).or_default().push(r);
        }
        let mut local: BTreeMap<usize, &Value> = BTreeMap::new();
        for s in shows.values() {
            if let Some(t) = s["title"].as_str().and_then(tag_of) {
                local.insert(t, s);
            }
        }
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut seen: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut comment_seen: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        let issues: Vec<(usize, bool)> = self
            .model
            .issues
            .iter()
            .map(|(t, m)| (*t, m.tracker_deleted))
            .collect();
        for (tag, deleted) in issues {
            let recs = by_tag.get(&tag).cloned().unwrap_or_default();
            if recs.len() > 1 {
                problems.push((
                    "issue duplicated on the tracker".into(),
                    format!("i{tag} is there {} times", recs.len()),
                ));
            } else if recs.is_empty() && !deleted {
                problems.push((
                    "issue missing on the tracker".into(),
                    format!("i{tag} is not on the tracker"),
                ));
            }
            let (Some(rec), Some(show)) = (recs.first(), local.get(&tag)) else {
                continue;
            };
            problems.extend(self.compare_with_tracker(tag, rec, show));
            if deleted {
                continue;
            }
            let body = rec["body"].as_str().unwrap_or_default();
            for t in body_tokens(body) {
                seen.entry(t.text).or_default().push(tag);
            }
            let id = rec["id"].as_u64().unwrap_or_default();
            for c in self.tracker_comments(id) {
                let text = strip_markers(c["body"].as_str().unwrap_or_default());
                if let Some(t) = tokens(&text, b'c').first() {
                    comment_seen
                        .entry(t.text.clone())
                        .or_default()
                        .push((tag, text));
                }
            }
        }
        // Only issues the tracker holds: a missing one is reported above.
        let live = |tag: usize| {
            by_tag.get(&tag).is_some_and(|r| r.len() == 1)
                && self
                    .model
                    .issues
                    .get(&tag)
                    .is_some_and(|m| !m.tracker_deleted)
        };
        problems.extend(self.token_problems("tracker", &seen, live));
        if self.topology.comments_api {
            problems.extend(self.comment_problems("tracker", &comment_seen, live));
        }
        for (s, d) in problems {
            self.violation(&s, d);
        }
    }

    /// Every field the tracker holds, against the clone's issue.
    fn compare_with_tracker(
        &mut self,
        tag: usize,
        rec: &Value,
        show: &Value,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut differ = |field: &str, tracker: String, clone: String, context: String| {
            if tracker != clone {
                out.push((
                    format!("tracker {field} differs"),
                    format!("i{tag}: tracker {field} {tracker}, clones {clone}{context}"),
                ));
            }
        };
        differ(
            "title",
            rec["title"].to_string(),
            show["title"].to_string(),
            String::new(),
        );
        differ(
            "status",
            rec["status"].to_string(),
            show["status"].to_string(),
            String::new(),
        );
        let set = |v: &Value| -> BTreeSet<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        };
        differ(
            "labels",
            format!("{:?}", set(&rec["labels"])),
            format!("{:?}", set(&show["labels"])),
            String::new(),
        );
        // The sim holds one assignee: the one it has if that is still in
        // the set (a tracker user's choice among ours stands), else the
        // first of the sorted set (refs-format.md 6a).
        let assignees = set(&show["assignees"]);
        let held = rec["assignee"].as_str().map(str::to_owned);
        let want = match &held {
            Some(h) if assignees.contains(h) => Some(h.clone()),
            _ => assignees.iter().next().cloned(),
        };
        differ(
            "assignee",
            format!("{:?}", held.as_deref()),
            format!("{:?}", want.as_deref()),
            format!(" (one of {assignees:?})"),
        );
        let raw = rec["body"].as_str().unwrap_or_default();
        let markers = raw.matches(MARKER_OPEN).count();
        let body = strip_markers(raw);
        let local_body = show["body"].as_str().unwrap_or_default();
        if body != local_body {
            let symptom = if body.split_whitespace().eq(local_body.split_whitespace()) {
                "tracker body differs in whitespace"
            } else {
                "tracker body differs"
            };
            out.push((
                symptom.to_owned(),
                format!("i{tag}: tracker {body:?}, clones {local_body:?}"),
            ));
        }
        if markers > 1 {
            out.push((
                "tracker body carries several markers".into(),
                format!("i{tag}: {raw:?}"),
            ));
        }
        if self.topology.comments_api {
            let id = rec["id"].as_u64().unwrap_or_default();
            let mut tracker: Vec<String> = self
                .tracker_comments(id)
                .iter()
                .map(|c| strip_markers(c["body"].as_str().unwrap_or_default()))
                .collect();
            let mut clone: Vec<String> = show["comments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["body"].as_str().map(str::to_owned))
                .collect();
            tracker.sort();
            clone.sort();
            if tracker != clone {
                out.push((
                    "tracker comments differ".into(),
                    format!("i{tag}: tracker {tracker:?}, clones {clone:?}"),
                ));
            }
        }
        out
    }
}

// ------------------------------------------------------------ runs

/// One execution of `steps`: the violations found, the command log.
struct Outcome {
    violations: Vec<Violation>,
    log: Vec<String>,
    acted: BTreeSet<usize>,
    took: Duration,
}

impl Outcome {
    fn symptoms(&self) -> BTreeSet<&str> {
        self.violations.iter().map(|v| v.symptom.as_str()).collect()
    }

    fn has(&self, symptom: &str) -> bool {
        self.violations.iter().any(|v| v.symptom == symptom)
    }
}

fn execute(topology: Topology, steps: &[Step]) -> Outcome {
    let started = Instant::now();
    let mut w = World::new(topology);
    for s in steps {
        w.step(s);
    }
    if w.quiesce() {
        w.check();
    }
    let mut violations = std::mem::take(&mut w.violations);
    violations.dedup();
    Outcome {
        violations,
        log: std::mem::take(&mut w.log),
        acted: std::mem::take(&mut w.acted),
        took: started.elapsed(),
    }
}

/// Time left for shrinking, and what a run costs (the failing run's time
/// per step, plus set-up and quiescence), so that no run starts that would
/// end well past the deadline.
struct Budget {
    deadline: Instant,
    secs_per_step: f64,
}

impl Budget {
    fn allows(&self, steps: usize) -> bool {
        let predicted = Duration::from_secs_f64(3.0 + self.secs_per_step * steps as f64);
        Instant::now() + predicted <= self.deadline
    }
}

/// ddmin over the steps, keeping `symptom`, within `budget`. Steps that
/// did nothing in the last failing run (no issue or comment to act on) are
/// dropped first. Returns the smallest failing trace found, its outcome and
/// the number of runs.
fn shrink(
    topology: Topology,
    steps: Vec<Step>,
    first: &Outcome,
    symptom: &str,
    budget: Duration,
) -> (Vec<Step>, Option<Outcome>, usize, bool) {
    let budget = Budget {
        deadline: Instant::now() + budget,
        secs_per_step: first.took.as_secs_f64() / steps.len().max(1) as f64,
    };
    let mut runs = 0;
    let mut best: Option<Outcome> = None;
    let mut cur = steps;
    let mut acted = first.acted.clone();
    let mut n = 2;
    let mut pruned_at = None;
    loop {
        // Drop the no-ops of the last failing run, if that still fails
        // (once per trace length).
        let pruned: Vec<Step> = cur
            .iter()
            .filter(|s| acted.contains(&s.n))
            .cloned()
            .collect();
        if pruned.len() < cur.len() && pruned_at != Some(cur.len()) && budget.allows(pruned.len()) {
            pruned_at = Some(cur.len());
            let (o, tried) = execute_until(topology, &pruned, symptom);
            runs += tried;
            if o.has(symptom) {
                cur = pruned;
                acted = o.acted.clone();
                best = Some(o);
            }
        }
        if cur.len() < 2 || !budget.allows(cur.len()) {
            break;
        }
        let chunk = cur.len().div_ceil(n);
        let mut reduced = false;
        // Removing one chunk at a time: a trace's later steps need its
        // earlier ones, so complements fail far more often than chunks.
        for start in (0..cur.len()).step_by(chunk) {
            let candidate: Vec<Step> = cur[..start]
                .iter()
                .chain(cur[(start + chunk).min(cur.len())..].iter())
                .cloned()
                .collect();
            if !budget.allows(candidate.len()) {
                break;
            }
            let (o, tried) = execute_until(topology, &candidate, symptom);
            runs += tried;
            if o.has(symptom) {
                cur = candidate;
                acted = o.acted.clone();
                best = Some(o);
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= cur.len() {
                // No single step can go: 1-minimal.
                return (cur, best, runs, true);
            }
            n = (2 * n).min(cur.len());
        }
    }
    let minimal = cur.len() < 2;
    (cur, best, runs, minimal)
}

/// Run `steps` until a run shows `symptom`, at most
/// `REPOSIX_MODEL_SHRINK_TRIES` times (default 1): a failure that shows in
/// some replays only (the order of concurrent insertions follows random
/// ids) still shrinks. The last outcome and the number of runs.
fn execute_until(topology: Topology, steps: &[Step], symptom: &str) -> (Outcome, usize) {
    let tries = env_u64("REPOSIX_MODEL_SHRINK_TRIES").unwrap_or(1).max(1) as usize;
    let mut n = 0;
    loop {
        let o = execute(topology, steps);
        n += 1;
        if n >= tries || o.has(symptom) {
            return (o, n);
        }
    }
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

fn shrink_budget() -> Duration {
    Duration::from_secs(env_u64("REPOSIX_MODEL_SHRINK_SECS").unwrap_or(60))
}

/// Runs `seed` (all `len` steps, or only `keep`); on failure shrinks and
/// returns the report.
fn run_seed(seed: u64, len: usize, keep: Option<&BTreeSet<usize>>) -> Result<(), String> {
    let topology = Topology::of(seed);
    let steps: Vec<Step> = generate(seed, len)
        .into_iter()
        .filter(|s| keep.is_none_or(|k| k.contains(&s.n)))
        .collect();
    let started = Instant::now();
    let outcome = execute(topology, &steps);
    let took = started.elapsed();
    if std::env::var_os("REPOSIX_MODEL_VERBOSE").is_some() {
        eprintln!("{}", outcome.log.join("\n"));
    }
    if outcome.violations.is_empty() {
        eprintln!(
            "model: seed {seed}: {} steps, converged ({:.1} s)",
            steps.len(),
            took.as_secs_f64()
        );
        return Ok(());
    }
    let symptom = std::env::var("REPOSIX_MODEL_SYMPTOM")
        .ok()
        .filter(|s| outcome.has(s))
        .unwrap_or_else(|| outcome.violations[0].symptom.clone());
    let mut report = String::new();
    let _ = writeln!(
        report,
        "model-based test failed: seed {seed}, {} steps, sim {} comments ({:.1} s)",
        steps.len(),
        if topology.comments_api {
            "with"
        } else {
            "without"
        },
        took.as_secs_f64()
    );
    write_violations(&mut report, &outcome.violations);
    let budget = shrink_budget();
    let (min, min_outcome, runs, minimal) = if budget.is_zero() {
        (steps.clone(), None, 0, false)
    } else {
        shrink(topology, steps.clone(), &outcome, &symptom, budget)
    };
    let kept: Vec<String> = min.iter().map(|s| s.n.to_string()).collect();
    let _ = writeln!(
        report,
        "\nminimal trace for [{symptom}]: {} of {} steps ({runs} shrinking runs){}",
        min.len(),
        steps.len(),
        if minimal {
            ", 1-minimal"
        } else {
            "; the shrinking budget ran out (REPOSIX_MODEL_SHRINK_SECS, default 60, shrinks further)"
        }
    );
    let keep_env = if min.len() == len {
        String::new()
    } else {
        format!(" REPOSIX_MODEL_KEEP={}", kept.join(","))
    };
    let _ = writeln!(
        report,
        "replay: REPOSIX_MODEL_SEED={seed} REPOSIX_MODEL_STEPS={len}{keep_env} cargo test --test it model::"
    );
    for s in &min {
        let _ = writeln!(report, "  {}", s.describe());
    }
    let shown = min_outcome.as_ref().unwrap_or(&outcome);
    if min_outcome.is_some() {
        let _ = writeln!(report, "violations of the minimal run:");
        write_violations(&mut report, &shown.violations);
        let _ = writeln!(report, "commands of the minimal run:");
        for line in &shown.log {
            let _ = writeln!(report, "{line}");
        }
    }
    Err(report)
}

/// Violations grouped by symptom: a count and the first two of each.
fn write_violations(report: &mut String, violations: &[Violation]) {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for v in violations {
        groups.entry(&v.symptom).or_default().push(&v.detail);
    }
    for (symptom, details) in groups {
        let _ = writeln!(report, "  [{symptom}] x{}", details.len());
        for d in details.iter().take(2) {
            let _ = writeln!(report, "      {d}");
        }
    }
}

fn parse_keep(text: &str) -> BTreeSet<usize> {
    text.split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

#[test]
fn model_random_traces_converge_with_nothing_lost_or_duplicated() {
    if std::env::var("REPOSIX_SOAK").is_ok_and(|v| v == "1") {
        return soak();
    }
    if let Some(seed) = env_u64("REPOSIX_MODEL_SEED") {
        let len = env_u64("REPOSIX_MODEL_STEPS").map_or(150, |n| n as usize);
        let keep = std::env::var("REPOSIX_MODEL_KEEP")
            .ok()
            .map(|k| parse_keep(&k));
        if let Err(report) = run_seed(seed, len, keep.as_ref()) {
            panic!("{report}");
        }
        return;
    }
    let started = Instant::now();
    for seed in CI_SEEDS {
        if let Err(report) = run_seed(seed, CI_STEPS, None) {
            panic!("{report}");
        }
    }
    eprintln!(
        "model: {} seeds of {CI_STEPS} steps converged in {:.1} s",
        CI_SEEDS.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Seed 3 shrunk to 15 steps: an issue exported by c1, its body emptied
/// on the tracker, edited in c0 and in c1 before either saw the other's
/// import, then replaced on the tracker. c0 imported the text c1 had
/// exported, in which c1's inserted token sits one word away from where
/// c0's merge of the same edits had it, did not recognise it, derived it
/// a second time and exported the doubled body. Where the token lands
/// depends on the random issue ids, so the trace runs three times (it
/// failed 4 runs in 4 before the fix).
#[test]
fn model_seed_3_shrunk_trace_keeps_a_moved_insertion_once() {
    replay_shrunk(
        3,
        "92,94,105,111,113,125,128,133,135,137,138,139,144,145,149",
        3,
    );
}

/// Seed 4 shrunk to 4 steps: a tracker user deletes a token and then the
/// whole issue before any clone imported the edit. The clones keep the
/// token (they never saw the deletion, and the tracker no longer serves
/// it): the checker reported "deleted token came back"; it now allows such
/// a token, once.
#[test]
fn model_seed_4_shrunk_trace_allows_a_deletion_no_clone_could_see() {
    replay_shrunk(4, "11,12,32,38", 1);
}

/// Seed 2 shrunk to 18 steps: an issue deleted on the sim has its id
/// given to the next export (the sim reuses the newest id) within the
/// same second; the clone that made that create then exported an edit of
/// the issue still bound to the id onto it (same version, so the
/// conditional write matched), and the two issues' tokens mixed. An id
/// bound to two created-here issues is now checked by the tracker's marker
/// before any write.
#[test]
fn model_seed_2_shrunk_trace() {
    replay_shrunk(
        2,
        "61,62,63,64,65,66,67,68,85,86,103,104,105,106,109,110,111,112",
        1,
    );
}

/// Soak seed 1000 shrunk to 4 steps (twins): clone 1 creates an issue,
/// pushes it through git, then exports it (sim #1); a tracker user edits
/// #1's body and drops the reposix marker. Clone 0 has the issue from git
/// but not clone 1's bind record: its import cannot match #1 to the issue
/// (no binding, no marker), and its export creates #2. Neither clone
/// could have avoided the second create; once the bindings meet, #1 is
/// kept and #2 retired (its comments moved, then deleted).
#[test]
fn model_seed_1000_shrunk_trace() {
    replay_shrunk(1000, "36,45,48,54", 1);
}

/// Soak seed 1003 shrunk to 17 steps: a clone imported an issue created
/// in another clone before git brought it the `create`; once it arrived,
/// the observed chain had no sync point and the fold took the set for a
/// format-1 log (a three-way merge from an empty base): the created text
/// twice, exported to the tracker. Such a chain is now synced as an
/// import from the `create`.
#[test]
fn model_seed_1003_shrunk_trace() {
    replay_shrunk(
        1003,
        "91,93,94,95,97,99,100,101,102,103,104,105,106,107,108,110,111",
        1,
    );
}

/// Soak seed 1008 shrunk to 12 steps: an issue deleted on the tracker
/// whose only later local change is a comment. Nothing needed a PATCH,
/// the comments endpoint answered 404, and every `sync --backend` exited
/// 11 with an idle tracker. The deletion is now confirmed and recorded.
#[test]
fn model_seed_1008_shrunk_trace() {
    replay_shrunk(1008, "24,27,28,53,55,56,57,76,77,78,79,80", 1);
}

/// Seed 7 shrunk to 11 steps: two replicas import a tracker issue, each
/// inserts a token, they sync with the tracker at once. One replica holds
/// the other's edit but not its export record, and its merge of the two
/// concurrent insertions glued them in the other order than the tracker's
/// (`剴1140剴冎910冎` where the tracker has `冎910冎剴1140剴`): the importer
/// did not recognise its own token in the tracker's text and exported it
/// twice. It passes since this round's body changes (joins dropping runs,
/// carried deletions, imports checked change by change; which one fixed
/// it was not isolated): 15 of 15 replays. The outcome depends on random
/// ids, so the trace runs three times.
#[test]
fn model_seed_7_shrunk_trace() {
    replay_shrunk(7, "48,51,88,89,90,91,105,106,113,114,115", 3);
}

/// Soak seed 1022 shrunk to 6 steps: two clones import one tracker text
/// and export at once, and each joins the two derived copies. Each join
/// dropped the same copy; the deletion carry took the other replica's join
/// for an edit deleting that copy and deleted the kept one too: the token
/// was lost everywhere. Only edits (not derived changes) are carried now.
#[test]
fn model_seed_1022_shrunk_trace() {
    replay_shrunk(1022, "36,42,44,50,79,80", 1);
}

/// Soak seed 1052 shrunk to 4 steps: an issue exported by one clone and
/// imported by the other, deleted on the tracker, whose id the sim gives
/// to a tracker user's new issue in the same second at the same version,
/// without a marker. The import took the new issue for the old one (texts
/// mixed); then the two clones derived different ids for it (with and
/// without its creation time) and one copy was merged into the old issue.
/// A revision observed with another text is now another object, and two
/// derived copies of one object merge into the smaller id. The outcome
/// depends on timing, so the trace runs three times.
#[test]
fn model_seed_1052_shrunk_trace_keeps_a_reused_id_apart() {
    replay_shrunk(1052, "1,88,92,94", 3);
}

/// A known gap, soak seed 1026 shrunk to 13 steps: a tracker user
/// deletes the marker of an exported issue, so a second clone's create of
/// the same issue finds no earlier one and keeps its own; a third sync
/// binds that create as a twin and retires (deletes) it; the sim gives
/// its id to a tracker user's new issue within the same second, and the
/// second clone, still bound to the id, takes the new issue for its own
/// (same creation time to the second, no marker to tell them apart): the
/// two issues' texts mix and one goes missing. Fails in every replay so
/// far. The same class as `model_seed_1024_an_id_reused_within_the_second`.
#[test]
#[ignore = "known gap: a tracker that reuses ids within a second"]
fn model_seed_1026_twins_and_a_reused_id() {
    replay_shrunk(1026, "84,91,94,100,104,105,106,108,116,120,129,132,133", 1);
}

/// A known gap, soak seed 1024 shrunk to 5 steps: a clone exports a new
/// issue; a tracker user deletes it and creates another, which the sim
/// gives the same id within the same second (ids are max + 1, creation
/// times have second precision, the new issue has no marker). Nothing the
/// tracker returns tells the two objects apart, so the clone imports the
/// new issue's title and body into its own: the issue is lost (its events
/// stay in its log). Fails in every replay so far (3 of 3).
#[test]
#[ignore = "known gap: a tracker that reuses ids within a second"]
fn model_seed_1024_an_id_reused_within_the_second() {
    replay_shrunk(1024, "39,40,41,47,59", 1);
}

/// Soak seed 1056 shrunk to 21 steps: two clones export a new issue at
/// once; the later create is deleted by its creator, but the other clone's
/// import listed it first and, its marker naming an issue bound elsewhere,
/// made it a second local issue for good (about half the replays, by
/// timing). A create that close to the bound one is now a twin.
/// `project::a_racing_create_listed_before_its_creator_deletes_it_is_a_twin`
/// pins the case without timing.
#[test]
fn model_seed_1056_shrunk_trace_binds_a_racing_create_as_a_twin() {
    replay_shrunk(
        1056,
        "0,1,16,18,19,21,28,29,30,31,37,38,39,49,50,51,52,53,54,55,56",
        2,
    );
}

/// Soak seed 1030 shrunk to 7 steps: two clones import the same tracker
/// issue from different revisions without each other's sync points (two
/// derived copies of its text), a third deletes a token in one copy, and
/// the join dropped that copy and kept the other: the token came back.
/// Deletions made in a dropped copy are now carried to the kept one.
#[test]
fn model_seed_1030_shrunk_trace() {
    replay_shrunk(1030, "1,4,9,11,13,16,17", 1);
}

/// Soak seed 1030 shrunk to 8 steps (failed in about 2 replays of 3): a
/// tracker issue imported by c1, which adds a token, exports it, then
/// deletes the token without exporting; c0, which never saw c1's log,
/// imports the exported text (a second derived copy, with the token) and
/// edits it. When the logs meet, the join keeps c1's copy with the
/// deletion and drops c0's; but c0 then exports its own text (with the
/// token), and the next join took the tracker's text (its writer had seen
/// neither the deletion nor the join): the token came back. Two sync
/// points of one revision with one text are the same tracker characters
/// (twins, refs-format.md section 6b): a deletion of one is a deletion of
/// the other. Three replays.
#[test]
fn model_seed_1030_a_deletion_in_a_dropped_copy_comes_back_by_export() {
    replay_shrunk(1030, "1,4,5,18,41,51,55,59", 3);
}

/// Soak seed 1021 shrunk to 9 steps: c0 creates an issue and exports it;
/// c1 adds a token and exports it (its record stays in c1); a tracker user
/// then adds a token of their own. c0 imports that revision from its own,
/// older sync point (a derived copy of c1's token), and when c1's edit
/// arrives, without c1's export record, the copy and the original were
/// both shown and exported: the token doubled. The tracker's text holds
/// the edit (and more), so the fold adds the import its writer would have
/// made with the edit at hand, and the join keeps one copy
/// (refs-format.md 6b, "Edits that arrive after their own import").
#[test]
fn model_seed_1021_an_edit_exported_before_a_tracker_write_is_not_doubled() {
    replay_shrunk(1021, "45,47,62,65,67,70,72,79,89", 1);
}

/// Soak seed 1021 shrunk to 27 steps (failed 8 replays of 8): two clones'
/// edits (`t670`, `t630`) are exported, and a third clone imports the
/// tracker's text, which holds both glued, from an older point, before
/// either edit or export record arrives. The fold found the state holding
/// one of the edits and added the import made from it, which still copied
/// the other: that token doubled, and a later deletion of one copy left
/// the other. The state holding all the edits the tracker's text holds
/// (their union) is the one to derive from, as for an import.
#[test]
fn model_seed_1021_two_exported_edits_a_stale_import_copied_are_kept_once() {
    replay_shrunk(
        1021,
        "4,5,7,15,56,57,63,64,65,66,67,68,69,70,72,73,85,86,87,88,91,92,93,94,95,96,97",
        2,
    );
}

/// Seed 1076 (sim with comments), shrunk to 22 steps (failed 3 of 3
/// replays before the fix, 0 of 3 after; the whole seed 2 of 2 runs): a
/// token clone 1 exported is replaced by a tracker user; clone 0, which
/// never had clone 1's point, imports from an older one and exports the
/// token again. The same fix as seed 1140: the deletion the stale import
/// missed is made although a separator of the word is gone already.
#[test]
fn model_seed_1076_a_deleted_token_stays_deleted() {
    replay_shrunk(
        1076,
        "2,11,12,16,17,18,25,26,30,44,47,48,53,54,56,57,58,59,60,61,74,75",
        2,
    );
}

/// Known gap (seed 1171, shrunk to 8 steps; failed 2 of 2 runs of the
/// whole seed): clone 0 exports a new issue (sim id 1) and a tracker user
/// deletes it; clone 1, which had the issue but not clone 0's `bind`,
/// exports it at the same time clone 0 finds it gone, and the sim gives
/// the new object the deleted one's id (ids are max + 1). Clone 0's
/// `observe_gone` names the id, not the object, so when the two meet the
/// new binding reads as gone too: later edits are never exported and the
/// tracker keeps the old values for good. Trackers other than the sim
/// never reuse ids; the fix is an `observe_gone` that covers only the
/// objects it saw created (refs-format.md 6a).
#[test]
#[ignore = "known gap: a gone record of an id the sim reuses covers the new object (see the README)"]
fn model_seed_1171_a_gone_id_the_sim_reuses_for_a_racing_create() {
    replay_shrunk(1171, "7,14,19,21,29,32,39,42", 1);
}

/// Seed 1207 (sim with comments), shrunk to 11 steps (1-minimal; failed
/// 3 of 3 replays before the fix): frank writes a token, carol deletes it
/// in another clone without syncing, both clones create the issue on the
/// tracker at once (carol's create wins, alice's later export of her
/// older state puts the token back as revision 2), a tracker user inserts
/// a token, and both import revision 3 at once, carol from revision 1 and
/// alice from 2. The join took carol's import as canonical (its heads'
/// history holds alice's export state, an ancestor of carol's), whose
/// copy of the token no deletion had touched: the token came back
/// everywhere. The canonical import is now the one derived from the
/// newest revision (refs-format.md 6b). In another ordering of the two
/// concurrent syncs (about 1 replay in 15) carol's import was canonical,
/// her deletion inside its history, and the word stayed: the deletion
/// of a character an export of a revision sent, by a writer that export
/// had not seen, now deletes its twin in the other points of that
/// revision too (0 of 30 replays fail after).
#[test]
fn model_seed_1207_a_deletion_survives_concurrent_tracker_syncs() {
    replay_shrunk(1207, "2,21,41,58,63,64,68,74,82,92,98", 2);
}

/// Seed 1216 (sim with comments), shrunk to 11 steps (1-minimal; failed
/// 2 of 2 runs before the fix): frank's comment is exported by clone 1, a
/// tracker user deletes the issue, erin edits the comment, and clone 1's
/// export of the edit got a 404, from the deleted issue, recorded as the
/// comment's: every clone lost the comment. The issue is now recorded
/// gone and the comment stays (`project::a_comment_edit_on_an_issue_deleted_on_the_tracker_keeps_the_comment`).
#[test]
fn model_seed_1216_a_comment_edit_on_a_deleted_issue_keeps_the_comment() {
    replay_shrunk(1216, "55,65,71,77,78,79,81,82,83,86,89", 2);
}

/// Known gap (seed 1273, shrunk to 8 steps; failed 2 of 2 runs): a
/// tracker user drops the marker from an exported issue's body, a clone
/// without the binding imports it as a derived copy, the tracker deletes
/// the issue, and frank edits the copy's body in a clone that syncs only
/// through git. When the clones meet, the copy is merged into the issue
/// created here, whose writes reach it through the tracker only ("a merged
/// copy exports what was written on it before the merge was known",
/// refs-format.md 6a); with the tracker's issue gone, frank's token is
/// left on the merged copy and is missing from the issue everyone shows.
/// The fix is a move of a merged copy's unexported writes onto the issue
/// kept when the tracker cannot relay them (a derived change from the
/// chain's sync point, as an import, so that replicas moving at once
/// write it once). Run with `--ignored`.
#[test]
#[ignore = "known gap: writes on a merged copy of an issue deleted on the tracker (seed 1273)"]
fn model_seed_1273_a_write_on_a_merged_copy_of_a_deleted_issue_is_kept() {
    replay_shrunk(1273, "5,7,8,12,19,48,53,75", 2);
}

/// Seed 1258 (sim with comments), shrunk to 11 steps (1-minimal; failed
/// 3 of 3 replays before the fix, 0 of 3 after): no tracker user writes.
/// dave creates an issue, frank adds a word, clone 1 exports it and dave
/// adds another; clone 0, which had neither edit, imports revision 1 from
/// the `create` and revision 2 from that import (copies of both words).
/// When the edits reached clone 0, the fold looked for a state holding
/// revision 2's text from clone 0's own import of revision 1, which has
/// frank's word twice with his edit: none, so dave's word stayed beside
/// its copy and was exported twice. The state found for revision 1 (the
/// `create` and frank's edit) now stands in as the base (refs-format.md
/// 6b, "Edits that arrive after their own import").
#[test]
fn model_seed_1258_a_word_imported_before_its_edit_arrived_is_not_doubled() {
    replay_shrunk(1258, "43,44,51,55,105,109,110,127,128,129,132", 2);
}

/// Known gap (seed 1255, shrunk to 5 steps, 1-minimal): a tracker user
/// creates an issue, clone 0 imports it, the issue is deleted and another
/// created under the same sim id, and clone 1, which never saw the first,
/// imports the second. Each clone derives the local id from the tracker's
/// id alone, so the two objects share one local issue (the sim's reused
/// ids, see the README). Run with `--ignored`.
#[test]
#[ignore = "known gap: two objects under one id the sim reuses share a local issue (seed 1255)"]
fn model_seed_1255_two_objects_under_a_reused_sim_id_stay_apart() {
    replay_shrunk(1255, "69,70,75,76,81", 2);
}

/// Seed 1468 (soak of 2026-12-02, shrunk to 9 steps, 1-minimal; failed
/// every replay before the fix):
/// clone 0 exports bob's comment, and a tracker user edits that comment,
/// dropping its marker. Clone 1 got bob's comment through git before
/// clone 0's record of the export; its marker search finds nothing, so it
/// creates the comment a second time. Once the records met, the comment
/// was bound to both tracker comments: the clones followed the newest
/// binding (losing the tracker user's edit of the other one, which an
/// exporter then overwrote) and the tracker kept both. Now the fold reads
/// every copy's edits (a copy's first observation, which repeats a local
/// text, loses to an edit of another copy), the oldest bound copy still
/// on the tracker is the comment's, and exporters retire the others
/// (refs-format.md 6a, "A comment exported twice").
#[test]
fn model_seed_1468_a_comment_exported_again_after_its_marker_was_dropped_is_not_doubled() {
    replay_shrunk(1468, "90,95,99,100,101,110,116,121,129", 2);
}

/// Known gap (seed 1402, soak of 2026-12-02, shrunk to 22 steps,
/// 1-minimal; fails every replay, on the code before this round too):
/// two replicas imported revision 7 of an issue (the same text twice, two
/// copies in the body document), and erin, in a clone whose refs a forced
/// `git fetch` then overwrote (her events come back from the reflog at its
/// next sync), replaced the space after `冄900冄` with a line of her own,
/// in the copy her document showed. The join that meets the two imports
/// keeps the other copy (as the joins' debug trace reads): it carries her
/// deletion of the space to the kept copy, but her inserted line stays
/// anchored after the dropped copy's `冄900冄`, which comes before the kept
/// one in the document. The
/// exporter sends her line before `冄900冄` (the tracker had meanwhile
/// glued a token to it), and a replica whose document shows her line
/// where she wrote it imports that text and exports her word twice.
/// Carrying insertions anchored in a dropped copy, as deletions are, is
/// the fix; not done. Run with `--ignored`.
#[test]
#[ignore = "known gap: a line written in a copy a join drops is not carried to the kept copy (seed 1402)"]
fn model_seed_1402_a_line_written_in_a_copy_a_join_drops_is_not_doubled() {
    replay_shrunk(
        1402,
        "13,14,82,85,86,88,90,92,93,95,96,115,120,123,127,129,130,131,132,147,148,149",
        2,
    );
}

/// Seed 1304 (sim without comments), shrunk to 12 steps (failed 2 of 2
/// replays before the fix, 0 of 5 after): bob's edit reaches the tracker
/// from clone 0 while clone 1, racing to create the same issue, binds to
/// it and imports it, a copy of bob's words; carol then writes on that
/// import in clone 1, whose join drops the copy before exporting. Clone
/// 0 got carol's edit through git before her export record and, finding
/// no state of its own with the tracker's text (carol's history holds
/// the copy, and the join that dropped it had not arrived), imported
/// carol's word a second time. An import now finds such a state with its
/// derived copies dropped (refs-format.md 6b, "What an import derives
/// from").
#[test]
fn model_seed_1304_a_word_written_on_a_joined_import_is_not_doubled() {
    replay_shrunk(1304, "21,41,42,44,47,76,77,110,111,135,137,138", 2);
}

/// Seed 1222 (sim with comments), shrunk to 21 steps (failed 3 of 3
/// replays before the fix, 0 of 3 after): a tracker user deletes a token
/// and the space before it, gluing `乐80乐` to `係450係`; bob then replaces
/// `乐80乐` with `兒850兒`. The diff read that as a typo fix of the glued
/// run (half of it touched) and kept the old token's digits, so clone 2's
/// concurrent insertion before `乐80乐` landed inside the new token
/// (`兒偬620偬 850兒`). The typo-fix test now leaves out the glued tokens
/// both texts keep (unit test
/// `a_token_of_a_glued_run_replaced_by_another_is_replaced_whole`).
#[test]
fn model_seed_1222_a_token_replaced_in_a_glued_run_is_not_cut() {
    replay_shrunk(
        1222,
        "8,12,23,27,28,29,31,35,36,37,41,45,51,62,63,64,68,71,72,85,86",
        2,
    );
}

/// Seed 1144 (sim without comments), shrunk to 5 steps, failing every
/// replay: clone 1 exports a new issue; a tracker user deletes the marker
/// from its body; clone 0, which has not seen clone 1's `bind`, imports it
/// as a new issue under a derived id and comments on it. When the two
/// meet, the derived copy is merged into the created issue, and its
/// comment, which the tracker cannot carry, was shown nowhere. The export
/// of the copy now writes it on the issue kept (refs-format.md 6a).
#[test]
fn model_seed_1144_a_comment_on_a_merged_copy_is_kept() {
    replay_shrunk(1144, "34,36,43,45,47", 2);
}

/// Seed 1140 (sim with comments), shrunk to 16 steps (failed 4 of 9
/// replays before the fix, 0 of 6 after): clone 1 exports a token; the
/// tracker user deletes it and the marker; clone 0, which never had clone
/// 1's export, imports the tracker's text from its older point (turning a
/// line break into a space) and exports its own copy of the token back.
/// The deletion clone 1's point and clone 0's import together show was
/// held back because the word's line break was already gone; the token
/// came back and stayed on the tracker (refs-format.md 6b, "Deletions an
/// import from a stale point missed"; unit test
/// `a_missed_deletion_does_not_wait_for_a_separator_gone_already`).
#[test]
fn model_seed_1140_a_deletion_a_stale_import_missed_is_made() {
    replay_shrunk(
        1140,
        "100,101,103,105,106,107,111,112,113,115,118,119,120,122,123,125",
        3,
    );
}

/// Seed 1121 (sim with comments), shrunk to 13 steps (failed 2 of 3
/// replays before the fix, 0 of 8 after): a tracker user's issue,
/// imported by clone 1 and commented there, is deleted on the tracker;
/// clone 0 exports a new issue, which the sim gives the deleted id, and
/// then the imported one, still bound to the id: its comment landed on
/// the new issue, and its deletion later came back. An imported issue
/// whose id now names an object created at another time, marked as
/// another issue, is gone (`project::an_imported_issue_whose_id_the_sim_reused_writes_nothing_there`).
#[test]
fn model_seed_1121_an_imported_issue_whose_id_was_reused_writes_nothing_there() {
    replay_shrunk(1121, "25,29,30,32,39,40,45,57,58,59,60,70,71", 3);
}

/// Seed 1017, shrunk to 14 steps (failing 3 of 3 replays, then 7 of 8
/// with the first half of the fix): clones 0 and 1 export one new issue
/// without seeing each other (twins on the sim, #1 and #2, the second
/// retired later); a tracker user edits #1 and drops the marker; bob's
/// edit in clone 0 reaches clone 1 after clone 1 derived a copy of it
/// from #2's text. The join of one chain dropped the copy; the join of
/// the other counted that as a writer's deletion of the word (and of its
/// twin, the original), or dropped the original by its diff: the word
/// was lost in every clone. Joins now count no derived change of any
/// chain as a deletion and drop the other chains' derived copies first
/// (refs-format.md 6b); 0 of 8 replays fail.
#[test]
fn model_seed_1017_a_token_written_beside_twin_exports_is_kept() {
    replay_shrunk(1017, "4,5,28,31,32,35,46,47,50,51,52,53,54,55", 2);
}

/// The event sets of seed 1017 where a fold lost bob's `俴500俴`, saved
/// from replays (`tests/fixtures/model/*.bundle`, each one issue ref at
/// the commit after which that clone's fold dropped the word). The fold
/// is a function of the event set, so each case is deterministic and
/// fails before its fix: `twin-deletion` (a join of one chain dropped a
/// clone's derived copy; the other chain's join took that as a deletion
/// of the copy's twin, the original), `other-join` (the same join's
/// deletion, read directly by the other chain's join) and `other-copy`
/// (one chain's join kept the other chain's derived copy and its diff
/// dropped the original, while the other chain's join dropped the copy).
#[test]
fn model_seed_1017_saved_event_sets_fold_with_the_word_once() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model");
    for (case, issue) in [
        ("twin-deletion", "242c208f-accb-42a1-83b8-38babe57154f"),
        ("other-join", "6ece625f-d104-4cab-b784-a18f9e030417"),
        ("other-copy", "972de45d-1234-46cd-afb2-b6a4652eb53b"),
    ] {
        let t = crate::support::TestRepo::new();
        let bundle = fixtures.join(format!("seed-1017-{case}.bundle"));
        let bundle = bundle.to_str().expect("a UTF-8 path");
        t.git(&[
            "fetch",
            "-q",
            bundle,
            &format!("refs/tmp/fx:refs/reposix/issues/{issue}"),
        ]);
        let shown = t.show(issue);
        let body = shown["body"].as_str().expect("a body");
        assert_eq!(
            body.matches("俴500俴").count(),
            1,
            "{case}: bob's word once in {body:?}"
        );
        for word in ["丨40丨", "俍461俍", "俏463俏"] {
            assert_eq!(
                body.matches(word).count(),
                1,
                "{case}: {word} once in {body:?}"
            );
        }
    }
}

/// Replay a shrunk trace of `seed` (the steps kept, as `REPOSIX_MODEL_KEEP`
/// takes them) `times` times; panics with the report of the first failure.
fn replay_shrunk(seed: u64, keep: &str, times: usize) {
    let keep = parse_keep(keep);
    for _ in 0..times {
        if let Err(report) = run_seed(seed, 150, Some(&keep)) {
            panic!("{report}");
        }
    }
}

/// Many seeds; shrinks the first failure of each symptom; one summary.
fn soak() {
    let runs = env_u64("REPOSIX_SOAK_RUNS").unwrap_or(200);
    let len = env_u64("REPOSIX_SOAK_STEPS").map_or(150, |n| n as usize);
    let first = env_u64("REPOSIX_SOAK_SEED").unwrap_or(1000);
    let started = Instant::now();
    let mut failed: Vec<(u64, BTreeSet<String>)> = Vec::new();
    let mut by_symptom: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut reports = Vec::new();
    for seed in first..first + runs {
        let topology = Topology::of(seed);
        let steps = generate(seed, len);
        let o = execute(topology, &steps);
        let symptoms: BTreeSet<String> = o.symptoms().into_iter().map(str::to_owned).collect();
        eprintln!(
            "soak: seed {seed}: {}",
            if symptoms.is_empty() {
                "ok".to_owned()
            } else {
                format!("{symptoms:?}")
            }
        );
        let new_symptom = symptoms
            .iter()
            .find(|s| !by_symptom.contains_key(*s))
            .cloned();
        for s in &symptoms {
            by_symptom.entry(s.clone()).or_default().push(seed);
        }
        if let Some(s) = new_symptom {
            let budget = shrink_budget();
            if !budget.is_zero() {
                let (min, _, shrink_runs, _) = shrink(topology, steps.clone(), &o, &s, budget);
                let kept: Vec<String> = min.iter().map(|s| s.n.to_string()).collect();
                let mut r = format!(
                    "[{s}] seed {seed}: {} steps after {shrink_runs} runs: REPOSIX_MODEL_SEED={seed} REPOSIX_MODEL_STEPS={len} REPOSIX_MODEL_KEEP={}\n",
                    min.len(),
                    kept.join(",")
                );
                for st in &min {
                    let _ = writeln!(r, "  {}", st.describe());
                }
                eprintln!("{r}");
                reports.push(r);
            }
        }
        if !symptoms.is_empty() {
            failed.push((seed, symptoms));
        }
    }
    let summary = format!(
        "model soak: {runs} runs of {len} steps ({} steps), {} failures, {:.0} s; by symptom: {}",
        runs * len as u64,
        failed.len(),
        started.elapsed().as_secs_f64(),
        if by_symptom.is_empty() {
            "none".to_owned()
        } else {
            by_symptom
                .iter()
                .map(|(s, seeds)| format!("[{s}] {} runs", seeds.len()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    eprintln!("{summary}");
    assert!(failed.is_empty(), "{summary}\n{}", reports.join("\n"));
}

// ------------------------------------------------------------ harness self-checks

#[test]
fn model_harness_text_helpers() {
    let (t1, t2, t3, t9) = (body_token(1), body_token(22), body_token(3), body_token(9));
    assert_eq!(t1, "\u{4e01}1\u{4e01}");
    let text = format!("{t1} {t2}{t3}\n\u{4e01}2\u{4e01} c4x");
    let found = body_tokens(&text);
    let names: Vec<&str> = found.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(
        names,
        ["t1", "t22", "t3"],
        "a wrong id inside is not a token"
    );
    assert_eq!(residue(&text, &found), " \n\u{4e01}2\u{4e01} c4x");
    let c = tokens("c4x e5x\nc1 e6", b'c');
    assert_eq!(
        c.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
        ["c4x"]
    );

    let body = format!("{t1} {t2}");
    let (b, d) = apply_body_edit(
        &body,
        &BodyEdit::Insert {
            at: 1,
            newline: false,
        },
        &t9,
    )
    .expect("insert");
    assert_eq!((b, d), (format!("{t1} {t9} {t2}"), None));
    let (b, _) = apply_body_edit(
        &body,
        &BodyEdit::Insert {
            at: 0,
            newline: true,
        },
        &t9,
    )
    .expect("insert");
    assert_eq!(b, format!("{t9}\n{t1} {t2}"));
    let three = format!("{t1} {t2} {t3}");
    let (b, d) = apply_body_edit(&three, &BodyEdit::Delete { which: 1 }, &t9).expect("delete");
    assert_eq!((b, d.as_deref()), (format!("{t1} {t3}"), Some("t22")));
    let (b, d) = apply_body_edit(&body, &BodyEdit::Replace { which: 0 }, &t9).expect("replace");
    assert_eq!((b, d.as_deref()), (format!("{t9} {t2}"), Some("t1")));
    assert!(apply_body_edit("", &BodyEdit::Delete { which: 0 }, &t9).is_none());
    assert_eq!(
        apply_body_edit(
            "",
            &BodyEdit::Insert {
                at: 5,
                newline: true
            },
            &t9
        )
        .map(|x| x.0),
        Some(t9.clone())
    );

    let marked = format!("{t1} {t2}\n\n<!-- reposix:0a1b-2c -->");
    assert_eq!(
        split_marker(&marked),
        (
            format!("{t1} {t2}").as_str(),
            "\n\n<!-- reposix:0a1b-2c -->"
        )
    );
    assert_eq!(strip_markers(&marked), format!("{t1} {t2}"));
    assert_eq!(
        strip_markers("a<!-- reposix:1 -->\n\n<!-- reposix:2 -->"),
        "a"
    );
    assert_eq!(tag_of("i12: v40.1"), Some(12));
    assert_eq!(tag_of("issue"), None);
    // The same seed makes the same trace.
    let a: Vec<String> = generate(5, 40).iter().map(Step::describe).collect();
    let b: Vec<String> = generate(5, 40).iter().map(Step::describe).collect();
    assert_eq!(a, b);
}
