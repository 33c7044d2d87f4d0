//! Markdown projection: issue states to `issues/<id>.md` and
//! `comments/<id>.md` files and back (format, names and guarantees in the
//! parent module's docs). No I/O except [`collect`] (reads the store) and
//! [`write_files`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

fn rfc3339_ms(ms: i64) -> String {
    time::format_secs(ms.div_euclid(1000))
}

/// Whether the tracker holds our sync marker at the end of the issue's
/// body: trackers without a hidden field (sim, GitHub) get one on the
/// issues we create there, i.e. those whose id is not the one derived
/// from the remote identity.
fn tracker_marker(issue: &MirrorIssue, kind: BackendKind, key: &str) -> Option<String> {
    let b = issue.binding.as_ref()?;
    let in_body = matches!(kind, BackendKind::Sim | BackendKind::Github);
    let ours = issue.state.id != IssueId::derived(&format!("{key}|{}", b.remote_id));
    (in_body && ours).then(|| body_marker(&issue.state.id.to_string()))
}

/// The rendering of one issue and its comments. `key` is the mirrored
/// backend instance (`None`: every issue unbound).
pub fn render_issue(
    issue: &MirrorIssue,
    kind: BackendKind,
    key: Option<&str>,
) -> (RenderedIssue, Vec<RenderedComment>) {
    let s = &issue.state;
    let b = issue.binding.as_ref();
    let mut body = s.body.clone();
    if let Some(marker) = key.and_then(|k| tracker_marker(issue, kind, k)) {
        body.push_str(&marker);
    }
    let rendered = RenderedIssue {
        id: Some(b.map_or_else(|| s.id.to_string(), |b| b.remote_id.clone())),
        title: s.title.clone(),
        status: s.status,
        assignees: s.assignees.clone(),
        labels: s.labels.clone(),
        created_at: rfc3339_ms(b.and_then(|b| b.created_ms).unwrap_or(s.created_ms)),
        updated_at: rfc3339_ms(b.and_then(|b| b.updated_ms).unwrap_or(s.updated_ms)),
        version: b.and_then(|b| b.revision).unwrap_or(s.event_count as u64),
        reposix_id: Some(s.id.to_string()),
        body,
    };
    // Comments on the tracker first, in the tracker's id order, with the
    // tracker's author; then comments not exported yet, in fold order.
    let mut on_tracker = Vec::new();
    let mut local = Vec::new();
    for c in &s.comments {
        let t = b.and_then(|b| b.comments.get(&c.id));
        let out = RenderedComment {
            id: c.id.to_hex(),
            author: t
                .and_then(|t| t.author.clone())
                .unwrap_or_else(|| c.author.to_string()),
            created_at: rfc3339_ms(t.and_then(|t| t.created_ms).unwrap_or(c.created_ms)),
            body: c.body.clone(),
        };
        match t {
            Some(t) => on_tracker.push((remote_order(&t.remote_id), out)),
            None => local.push(out),
        }
    }
    on_tracker.sort_by(|a, b| a.0.cmp(&b.0));
    let comments = on_tracker
        .into_iter()
        .map(|(_, c)| c)
        .chain(local)
        .collect();
    (rendered, comments)
}

/// Tracker ids in creation order: numbers numerically, before anything else.
fn remote_order(id: &str) -> (u8, u64, &str) {
    match id.parse::<u64>() {
        Ok(n) => (0, n, id),
        Err(_) => (1, 0, id),
    }
}

impl RenderedIssue {
    /// The file's bytes: the frontmatter, then the body verbatim.
    pub fn to_markdown(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 512);
        out.push_str("---\n");
        if let Some(id) = &self.id {
            if is_canonical_decimal(id) {
                push_kv(&mut out, "id", id);
            } else {
                push_kv(&mut out, "id", &quote(id));
            }
        }
        push_kv(&mut out, "title", &quote(&self.title));
        push_kv(&mut out, "status", &quote(self.status.as_str()));
        if let Some(first) = self.assignees.first() {
            push_kv(&mut out, "assignee", &quote(first));
        }
        if self.assignees.len() > 1 {
            push_kv(&mut out, "assignees", &quote_list(&self.assignees));
        }
        push_kv(&mut out, "labels", &quote_list(&self.labels));
        push_kv(&mut out, "created_at", &quote(&self.created_at));
        push_kv(&mut out, "updated_at", &quote(&self.updated_at));
        push_kv(&mut out, "version", &self.version.to_string());
        if let Some(r) = &self.reposix_id {
            push_kv(&mut out, "reposix_id", &quote(r));
        }
        out.push_str("---\n");
        out.push_str(&self.body);
        out
    }
}

/// The comments file's bytes: a marker line naming the tag, then each
/// comment after a marker line of its own.
pub fn comments_to_markdown(comments: &[RenderedComment]) -> String {
    let tag = pick_tag(comments);
    let mut out = format!("<!-- {tag}:comments -->\n");
    for c in comments {
        let short: String = c.id.chars().take(12).collect();
        // Authors are actor names or tracker logins; a line break would
        // end the heading.
        let author = c.author.replace(['\n', '\r'], " ");
        out.push_str(&format!("<!-- {tag}:comment {} -->\n", c.id));
        out.push_str(&format!(
            "### comment {short} by {author} on {}\n\n",
            c.created_at
        ));
        out.push_str(&c.body);
        out.push('\n');
    }
    out
}

fn push_kv(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

fn is_canonical_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 19
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
}

/// The smallest marker tag no line of any comment starts with.
fn pick_tag(comments: &[RenderedComment]) -> String {
    (0u64..)
        .map(|n| {
            if n == 0 {
                TAG.to_owned()
            } else {
                format!("{TAG}-{n}")
            }
        })
        .find(|tag| {
            let prefix = format!("<!-- {tag}:");
            !comments
                .iter()
                .any(|c| c.body.split('\n').any(|l| l.starts_with(&prefix)))
        })
        .expect("BUG: finitely many lines cannot use every marker tag")
}

/// A YAML double-quoted scalar: one line, whatever `s` holds.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // Line and paragraph separators, BOM, non-characters: not
            // printable in YAML, or line breaks to some readers.
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn safe_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NAME
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Render issues as files, path to bytes: `issues/<id>.md` (`pages/` for
/// Confluence) for each issue and `comments/<id>.md` for each issue with
/// comments. `key` is the mirrored backend instance, `None` when every
/// issue is rendered unbound. A pure function of the issues (their order
/// does not matter); see the module docs for names and format.
pub fn render(
    issues: &[MirrorIssue],
    kind: BackendKind,
    key: Option<&str>,
) -> BTreeMap<String, Vec<u8>> {
    let dir = dir_for(kind);
    let rendered: Vec<_> = issues.iter().map(|i| render_issue(i, kind, key)).collect();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for (r, _) in &rendered {
        if let Some(id) = &r.id {
            *uses.entry(id.as_str()).or_default() += 1;
        }
    }
    let mut out = BTreeMap::new();
    for ((r, comments), issue) in rendered.iter().zip(issues) {
        let name = match &r.id {
            Some(id) if safe_name(id) && uses[id.as_str()] == 1 => id.clone(),
            _ => issue.state.id.to_string(),
        };
        out.insert(format!("{dir}/{name}.md"), r.to_markdown().into_bytes());
        if !comments.is_empty() {
            out.insert(
                format!("{COMMENTS_DIR}/{name}.md"),
                comments_to_markdown(comments).into_bytes(),
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Parsing

/// Any YAML scalar as the text it was written as (`id: 1` and `id: "1"`
/// both read `1`).
#[derive(Debug)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a single value (text or a number)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

type At<T> = serde_saphyr::Spanned<T>;

/// The frontmatter keys reposix reads; any other key is ignored (reposix
/// 0.14 files carry `parent_id`, `extensions`).
#[derive(Debug, Deserialize)]
struct Frontmatter {
    id: Option<At<Option<Text>>>,
    title: Option<At<Option<Text>>>,
    status: Option<At<Option<Text>>>,
    assignee: Option<At<Option<Text>>>,
    assignees: Option<At<Option<Vec<Text>>>>,
    labels: Option<At<Option<Vec<Text>>>>,
    created_at: Option<At<Option<Text>>>,
    updated_at: Option<At<Option<Text>>>,
    version: Option<At<Option<Text>>>,
    reposix_id: Option<At<Option<Text>>>,
}

/// Parse an issue file (the inverse of [`RenderedIssue::to_markdown`];
/// also reads reposix 0.14 files and hand edits: the frontmatter is read
/// by a YAML parser, the body is everything after the closing `---`
/// line). Errors name the file's 1-based line.
pub fn parse(bytes: &[u8]) -> Result<RenderedIssue, MirrorError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        md_err(line, format!("not UTF-8 (at byte {})", e.valid_up_to()))
    })?;
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end_matches(['\n', '\r']) != "---" || !first.ends_with('\n') {
        return Err(md_err(
            1,
            "no frontmatter: the file must start with a `---` line",
        ));
    }
    let start = first.len();
    let mut pos = start;
    let mut fence = None;
    for line in text[start..].split_inclusive('\n') {
        if line.trim_end_matches(['\n', '\r']) == "---" {
            fence = Some((pos, pos + line.len()));
            break;
        }
        pos += line.len();
    }
    let Some((yaml_end, body_start)) = fence else {
        return Err(md_err(1, "frontmatter has no closing `---` line"));
    };
    let yaml = &text[start..yaml_end];
    let fm: Frontmatter = if yaml.trim().is_empty() {
        Frontmatter::empty()
    } else {
        serde_saphyr::from_str(yaml).map_err(yaml_err)?
    };
    build(fm, text[body_start..].to_owned())
}

/// A YAML error at its line of the file (the frontmatter starts on line 2).
fn yaml_err(e: serde_saphyr::Error) -> MirrorError {
    use serde_saphyr::MessageFormatter;
    let line = e
        .location()
        .map_or(1, |l| usize::try_from(l.line()).unwrap_or(0) + 1);
    let message = serde_saphyr::UserMessageFormatter.format_message(e.without_snippet());
    // The message may quote the input: control characters shown escaped.
    let message: String = message
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    md_err(line, message)
}

impl Frontmatter {
    fn empty() -> Frontmatter {
        Frontmatter {
            id: None,
            title: None,
            status: None,
            assignee: None,
            assignees: None,
            labels: None,
            created_at: None,
            updated_at: None,
            version: None,
            reposix_id: None,
        }
    }
}

/// The file line of a value (frontmatter line + 1), else line 1.
fn line_of<T>(v: &At<T>) -> usize {
    match usize::try_from(v.referenced.line()) {
        Ok(0) | Err(_) => 1,
        Ok(n) => n + 1,
    }
}

/// A key's text, with its line; `key:` with nothing after it is absent.
fn text(v: Option<At<Option<Text>>>) -> Option<(String, usize)> {
    let v = v?;
    let line = line_of(&v);
    v.value.map(|t| (t.0, line))
}

fn list(v: Option<At<Option<Vec<Text>>>>) -> Option<Vec<String>> {
    let v = v?;
    Some(
        v.value
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.0)
            .collect(),
    )
}

fn build(fm: Frontmatter, body: String) -> Result<RenderedIssue, MirrorError> {
    let id = text(fm.id).map(|(s, _)| s).filter(|s| !s.is_empty());
    let (title, _) = text(fm.title).ok_or_else(|| md_err(1, "frontmatter has no title"))?;
    let (status, line) = text(fm.status).ok_or_else(|| md_err(1, "frontmatter has no status"))?;
    let status: Status = status.parse().map_err(|_| {
        md_err(
            line,
            format!("unknown status {status:?} (open, in_progress, in_review, done, wont_fix)"),
        )
    })?;
    let assignee = text(fm.assignee);
    let assignees_line = fm.assignees.as_ref().map(line_of);
    let assignees = match (list(fm.assignees), assignee) {
        (Some(list), Some((first, line))) if list.first() != Some(&first) => {
            return Err(md_err(
                assignees_line.unwrap_or(line),
                format!(
                    "assignee {first:?} is not the first of assignees {list:?}: edit assignees"
                ),
            ));
        }
        (Some(list), _) => list,
        (None, Some((first, _))) => vec![first],
        (None, None) => Vec::new(),
    };
    let labels = list(fm.labels).unwrap_or_default();
    let created_at = text(fm.created_at).map(|(s, _)| s).unwrap_or_default();
    let updated_at = text(fm.updated_at).map(|(s, _)| s).unwrap_or_default();
    let version = match text(fm.version) {
        None => 0,
        Some((v, line)) => v
            .parse()
            .map_err(|_| md_err(line, format!("version {v:?} is not a number")))?,
    };
    let reposix_id = match text(fm.reposix_id) {
        None => None,
        Some((r, line)) => {
            r.parse::<IssueId>().map_err(|_| {
                md_err(
                    line,
                    format!("reposix_id {r:?} is not a reposix issue id (remove the line for a new issue)"),
                )
            })?;
            Some(r)
        }
    };
    Ok(RenderedIssue {
        id,
        title,
        status,
        assignees,
        labels,
        created_at,
        updated_at,
        version,
        reposix_id,
        body,
    })
}

/// Parse a comments file (the inverse of [`comments_to_markdown`]).
pub fn parse_comments(bytes: &[u8]) -> Result<Vec<RenderedComment>, MirrorError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| md_err(1, format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
    let (first, section) = text
        .split_once('\n')
        .ok_or_else(|| md_err(1, "a comments file starts with a marker line"))?;
    let tag = first
        .strip_prefix("<!-- ")
        .and_then(|t| t.strip_suffix(":comments -->"))
        .filter(|t| {
            *t == TAG
                || t.strip_prefix("reposix-")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .ok_or_else(|| md_err(1, format!("malformed comments marker {first:?}")))?;
    comment_blocks(section, tag, 2)
}

fn comment_blocks(
    section: &str,
    tag: &str,
    first_line: usize,
) -> Result<Vec<RenderedComment>, MirrorError> {
    let prefix = format!("<!-- {tag}:comment ");
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    for line in section.split_inclusive('\n') {
        if line.starts_with(&prefix) {
            starts.push(at);
        }
        at += line.len();
    }
    if section.is_empty() {
        return Ok(Vec::new());
    }
    if starts.first() != Some(&0) {
        return Err(md_err(
            first_line,
            "text after the comments marker that is not a comment",
        ));
    }
    starts.push(section.len());
    let mut out = Vec::new();
    for w in starts.windows(2) {
        let block = &section[w[0]..w[1]];
        let line = first_line + section[..w[0]].matches('\n').count();
        let block = block
            .strip_suffix('\n')
            .ok_or_else(|| md_err(line, "a comment must end with a line break"))?;
        let (marker, rest) = block
            .split_once('\n')
            .ok_or_else(|| md_err(line, "a comment needs a heading line"))?;
        let id = marker
            .strip_prefix(&prefix)
            .and_then(|m| m.strip_suffix(" -->"))
            .filter(|id| !id.is_empty() && !id.contains(' '))
            .ok_or_else(|| md_err(line, format!("malformed comment marker {marker:?}")))?;
        let (heading, rest) = rest
            .split_once('\n')
            .ok_or_else(|| md_err(line + 1, "a comment needs a blank line after its heading"))?;
        let body = rest
            .strip_prefix('\n')
            .ok_or_else(|| md_err(line + 2, "a comment needs a blank line after its heading"))?;
        let (author, created_at) = parse_heading(heading)
            .ok_or_else(|| md_err(line + 1, format!("malformed comment heading {heading:?}")))?;
        out.push(RenderedComment {
            id: id.to_owned(),
            author,
            created_at,
            body: body.to_owned(),
        });
    }
    Ok(out)
}

/// `### comment <short> by <author> on <time>`.
fn parse_heading(h: &str) -> Option<(String, String)> {
    let h = h.strip_prefix("### comment ")?;
    let (h, time) = h.rsplit_once(" on ")?;
    let (_short, author) = h.split_once(" by ")?;
    if time.contains(' ') {
        return None;
    }
    Some((author.to_owned(), time.to_owned()))
}

// ---------------------------------------------------------------------------
// Writing rendered files to a directory

/// What [`write_files`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WriteReport {
    /// Files written (new or changed), relative paths.
    pub written: Vec<String>,
    /// Files already holding the rendered bytes.
    pub unchanged: usize,
    /// `.md` files in the rendered directories that the render does not have.
    pub stale: Vec<String>,
    /// Whether the stale files were removed.
    pub pruned: bool,
}

/// `dir/sub` as a real directory, created when missing. A symlink (or
/// anything else) there is refused: writing or pruning through it would
/// touch files outside `dir`.
fn real_dir(dir: &Path, sub: &str, create: bool) -> Result<Option<PathBuf>, MirrorError> {
    let path = dir.join(sub);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => Ok(Some(path)),
        Ok(m) => Err(MirrorError::Invalid {
            what: "mirror directory",
            value: path.display().to_string(),
            why: if m.file_type().is_symlink() {
                "is a symbolic link: refusing to write or delete through it"
            } else {
                "is not a directory"
            },
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Ok(None);
            }
            std::fs::create_dir(&path).map_err(io_err(&path))?;
            Ok(Some(path))
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Replace `file` (a regular file, a symlink, or nothing) with `bytes`:
/// a new temporary file in the same directory (`O_EXCL`, random name),
/// synced, renamed over the entry. A symlink is replaced, never followed.
fn replace_file(target: &Path, file: &Path, bytes: &[u8]) -> Result<(), MirrorError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".reposix-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // What `std::fs::write` asks for; the umask applies.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(target).map_err(io_err(target))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(tmp.path()))?;
    tmp.persist(file).map_err(|e| io_err(file)(e.error))?;
    Ok(())
}

/// Write rendered files (paths as [`render`] makes them) under `dir`,
/// each atomically, skipping files that already hold the bytes. `.md`
/// files in the rendered directories (the kind's and `comments/`) that
/// the render lacks are listed, and removed with `prune`. Never follows a
/// symlink to write or delete: a symlinked directory is refused, a
/// symlinked file is replaced by a regular file, a stale symlink is
/// removed itself.
pub fn write_files(
    dir: &Path,
    kind: BackendKind,
    files: &BTreeMap<String, Vec<u8>>,
    prune: bool,
) -> Result<WriteReport, MirrorError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut report = WriteReport {
        pruned: prune,
        ..WriteReport::default()
    };
    let subs = [dir_for(kind), COMMENTS_DIR];
    for path in files.keys() {
        let ok = path.split_once('/').is_some_and(|(d, n)| {
            subs.contains(&d) && n.strip_suffix(".md").is_some_and(safe_name)
        });
        if !ok {
            return Err(MirrorError::Invalid {
                what: "rendered path",
                value: path.clone(),
                why: "not <dir>/<safe name>.md",
            });
        }
    }
    // Every directory is checked before anything is written.
    for sub in subs {
        real_dir(dir, sub, false)?;
    }
    let mut stale = BTreeSet::new();
    for sub in subs {
        let ours: BTreeMap<&str, &Vec<u8>> = files
            .iter()
            .filter_map(|(path, bytes)| {
                let name = path.strip_prefix(sub)?.strip_prefix('/')?;
                Some((name, bytes))
            })
            .collect();
        let Some(target) = real_dir(dir, sub, !ours.is_empty())? else {
            continue;
        };
        let mut changed = false;
        for (name, bytes) in &ours {
            let file = target.join(name);
            let same = match std::fs::symlink_metadata(&file) {
                Ok(m) if m.is_file() => std::fs::read(&file).is_ok_and(|old| old == **bytes),
                Ok(m) if m.is_dir() => {
                    return Err(MirrorError::Invalid {
                        what: "mirror file",
                        value: file.display().to_string(),
                        why: "is a directory",
                    });
                }
                _ => false,
            };
            if same {
                report.unchanged += 1;
                continue;
            }
            replace_file(&target, &file, bytes)?;
            changed = true;
            report.written.push(format!("{sub}/{name}"));
        }
        let entries = std::fs::read_dir(&target).map_err(io_err(&target))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&target))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // The entry itself, not what a symlink points at.
            let kind = entry.file_type().map_err(io_err(&entry.path()))?;
            if !name.ends_with(".md") || kind.is_dir() || ours.contains_key(name.as_str()) {
                continue;
            }
            if prune {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(io_err(&p))?;
                changed = true;
            }
            stale.insert(format!("{sub}/{name}"));
        }
        if changed {
            sync_dir(&target)?;
        }
    }
    report.stale = stale.into_iter().collect();
    Ok(report)
}

/// Make renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), MirrorError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
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
