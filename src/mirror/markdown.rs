//! Markdown projection: issue states to `issues/<id>.md` files and back
//! (format, names and guarantees in the parent module's docs). No I/O
//! except [`collect`] (reads the store) and [`write_files`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::{dir_for, io_err, md_err, MirrorError, MirrorSource};
use crate::backend::BackendKind;
use crate::crdt::{EventSet, IssueState};
use crate::event::{Op, Status};
use crate::store::{EventStore, GitEventStore, StoreError};
use crate::timestamp;

/// The comments marker tag unless the text forces another.
const TAG: &str = "reposix";
/// Longest tracker id used as a file name.
const MAX_NAME: usize = 128;

/// An issue's binding to the mirrored backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The tracker's id.
    pub remote_id: String,
    /// The tracker's revision in the newest observation (`None`: bound but
    /// not observed yet).
    pub revision: Option<u64>,
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
/// newest observation (or of a `bind` when never observed) and that
/// observation's revision.
pub fn binding(set: &EventSet, key: &str) -> Option<Binding> {
    // Deterministic whatever the set holds: the largest (revision, id)
    // observed, else the smallest id bound.
    let newest = set
        .iter()
        .filter_map(|(_, e)| match &e.op {
            Op::Observe {
                backend,
                remote_id,
                revision,
                ..
            } if backend == key => Some((*revision, remote_id.as_str())),
            _ => None,
        })
        .max();
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
    match (newest, bound) {
        (Some((revision, id)), _) => Some(Binding {
            remote_id: id.to_owned(),
            revision: Some(revision),
        }),
        (None, Some(id)) => Some(Binding {
            remote_id: id.to_owned(),
            revision: None,
        }),
        (None, None) => None,
    }
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
    /// Author (an actor name: no spaces or line breaks).
    pub author: String,
    /// When it was added, RFC 3339.
    pub created_at: String,
    /// Whether an edit replaced the original text.
    pub edited: bool,
    /// The text, verbatim.
    pub body: String,
}

/// One issue file: what [`render`] writes and [`parse`] reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedIssue {
    /// The tracker's id when bound, else the reposix issue id.
    pub id: String,
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
    /// Body, verbatim.
    pub body: String,
    /// Live comments, in the state's order.
    pub comments: Vec<RenderedComment>,
}

fn rfc3339_ms(ms: i64) -> String {
    timestamp::format_secs(ms.div_euclid(1000))
}

impl RenderedIssue {
    /// The rendering of one issue.
    pub fn from_issue(issue: &MirrorIssue) -> RenderedIssue {
        let s = &issue.state;
        RenderedIssue {
            id: issue
                .binding
                .as_ref()
                .map_or_else(|| s.id.to_string(), |b| b.remote_id.clone()),
            title: s.title.clone(),
            status: s.status,
            assignees: s.assignees.clone(),
            labels: s.labels.clone(),
            created_at: rfc3339_ms(s.created_ms),
            updated_at: rfc3339_ms(s.updated_ms),
            version: issue
                .binding
                .as_ref()
                .and_then(|b| b.revision)
                .unwrap_or(s.event_count as u64),
            reposix_id: Some(s.id.to_string()),
            body: s.body.clone(),
            comments: s
                .comments
                .iter()
                .map(|c| RenderedComment {
                    id: c.id.to_hex(),
                    author: c.author.to_string(),
                    created_at: rfc3339_ms(c.created_ms),
                    edited: c.edited,
                    body: c.body.clone(),
                })
                .collect(),
        }
    }

    /// The file's bytes.
    pub fn to_markdown(&self) -> String {
        let tag = pick_tag(self);
        let mut out = String::with_capacity(self.body.len() + 512);
        out.push_str("---\n");
        out.push_str("id: ");
        if is_canonical_decimal(&self.id) {
            out.push_str(&self.id);
        } else {
            out.push_str(&quote(&self.id));
        }
        out.push('\n');
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
        if tag != TAG {
            push_kv(&mut out, "comments_marker", &quote(&tag));
        }
        out.push_str("---\n");
        out.push_str(&self.body);
        out.push('\n');
        out.push_str(&format!("<!-- {tag}:comments -->\n"));
        for c in &self.comments {
            let short: String = c.id.chars().take(12).collect();
            // Authors are actor names; a line break would end the heading.
            let author = c.author.replace(['\n', '\r'], " ");
            out.push_str(&format!("<!-- {tag}:comment {} -->\n", c.id));
            out.push_str(&format!(
                "### comment {short} by {author} on {}{}\n\n",
                c.created_at,
                if c.edited { " (edited)" } else { "" }
            ));
            out.push_str(&c.body);
            out.push('\n');
        }
        out
    }
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

/// The smallest marker tag no line of the body or comments starts with.
fn pick_tag(issue: &RenderedIssue) -> String {
    let texts: Vec<&str> = std::iter::once(issue.body.as_str())
        .chain(issue.comments.iter().map(|c| c.body.as_str()))
        .collect();
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
            !texts
                .iter()
                .any(|t| t.split('\n').any(|l| l.starts_with(&prefix)))
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

/// Render issues as files: path (`issues/<id>.md` or `pages/<id>.md`) to
/// bytes. Deterministic; see the module docs for names and format.
pub fn render(issues: &[MirrorIssue], kind: BackendKind) -> BTreeMap<String, Vec<u8>> {
    let dir = dir_for(kind);
    let rendered: Vec<RenderedIssue> = issues.iter().map(RenderedIssue::from_issue).collect();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rendered {
        *uses.entry(r.id.as_str()).or_default() += 1;
    }
    let mut out = BTreeMap::new();
    for (r, issue) in rendered.iter().zip(issues) {
        let name = if safe_name(&r.id) && uses[r.id.as_str()] == 1 {
            r.id.clone()
        } else {
            issue.state.id.to_string()
        };
        out.insert(format!("{dir}/{name}.md"), r.to_markdown().into_bytes());
    }
    out
}

// ---------------------------------------------------------------------------
// Parsing

#[derive(Debug)]
enum Value {
    Null,
    Str(String),
    Seq(Vec<String>),
}

/// Parse an issue file (the inverse of [`RenderedIssue::to_markdown`];
/// also reads reposix 0.14 files and hand edits using plain scalars and
/// block sequences). Unknown frontmatter keys are ignored.
pub fn parse(bytes: &[u8]) -> Result<RenderedIssue, MirrorError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| md_err(1, format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end_matches(['\n', '\r']) != "---" || !first.ends_with('\n') {
        return Err(md_err(
            1,
            "no frontmatter: the file must start with a `---` line",
        ));
    }
    let mut offset = first.len();
    let mut fm: Vec<(usize, &str)> = Vec::new();
    let mut closed = false;
    for (n, line) in lines.enumerate() {
        offset += line.len();
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" {
            closed = true;
            break;
        }
        fm.push((n + 2, bare));
    }
    if !closed {
        return Err(md_err(1, "frontmatter has no closing `---` line"));
    }
    let fields = parse_frontmatter(&fm)?;
    let rest = &text[offset..];
    let rest_line = text[..offset].matches('\n').count() + 1;
    build(fields, rest, rest_line)
}

fn parse_frontmatter(lines: &[(usize, &str)]) -> Result<BTreeMap<String, Value>, MirrorError> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let mut open_seq: Option<String> = None;
    for &(n, line) in lines {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(item) =
            trimmed
                .strip_prefix("- ")
                .or(if trimmed == "-" { Some("") } else { None })
        {
            let Some(key) = &open_seq else {
                return Err(md_err(n, "a list item outside a list"));
            };
            let v = scalar(item.trim(), n)?;
            let Some(Value::Seq(items)) = out.get_mut(key) else {
                unreachable!("BUG: an open sequence is a sequence");
            };
            items.push(match v {
                Value::Str(s) => s,
                Value::Null => String::new(),
                Value::Seq(_) => return Err(md_err(n, "nested lists are not supported")),
            });
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(md_err(n, "unsupported YAML: an indented line"));
        }
        let Some((key, raw)) = line.split_once(':') else {
            return Err(md_err(n, "expected `key: value`"));
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(md_err(n, format!("invalid key {key:?}")));
        }
        if !raw.is_empty() && !raw.starts_with([' ', '\t']) {
            return Err(md_err(n, "expected a space after `:`"));
        }
        if out.contains_key(key) {
            return Err(md_err(n, format!("duplicate key {key:?}")));
        }
        let raw = raw.trim();
        open_seq = None;
        let value = if raw.is_empty() {
            open_seq = Some(key.to_owned());
            Value::Seq(Vec::new())
        } else {
            scalar(raw, n)?
        };
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// One value: double- or single-quoted, a flow sequence, or plain; only
/// whitespace or a comment may follow it.
fn scalar(raw: &str, line: usize) -> Result<Value, MirrorError> {
    let (value, rest) = match raw.chars().next() {
        None => return Ok(Value::Null),
        Some('"') => {
            let (s, rest) = double_quoted(&raw[1..], line)?;
            (Value::Str(s), rest)
        }
        Some('\'') => {
            let (s, rest) = single_quoted(&raw[1..], line)?;
            (Value::Str(s), rest)
        }
        Some('[') => {
            let (items, rest) = flow_seq(&raw[1..], line)?;
            (Value::Seq(items), rest)
        }
        Some(c) if "{|>&*!%@`".contains(c) => {
            return Err(md_err(
                line,
                format!("unsupported YAML value starting with {c:?}"),
            ));
        }
        Some(_) => {
            let end = raw.find(" #").or_else(|| raw.find("\t#"));
            let plain = raw[..end.unwrap_or(raw.len())].trim_end();
            let v = match plain {
                "~" | "null" | "Null" | "NULL" => Value::Null,
                s => Value::Str(s.to_owned()),
            };
            (v, "")
        }
    };
    let rest = rest.trim_start();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(md_err(line, format!("unexpected {rest:?} after the value")));
    }
    Ok(value)
}

fn double_quoted(s: &str, line: usize) -> Result<(String, &str), MirrorError> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let mut hex = |n: usize| -> Result<char, MirrorError> {
                    let digits: String = (0..n)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    u32::from_str_radix(&digits, 16)
                        .ok()
                        .filter(|_| digits.len() == n)
                        .and_then(char::from_u32)
                        .ok_or_else(|| md_err(line, format!("invalid escape \\{e}{digits}")))
                };
                let ch = match e {
                    '0' => '\0',
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    't' | '\t' => '\t',
                    'n' => '\n',
                    'v' => '\u{b}',
                    'f' => '\u{c}',
                    'r' => '\r',
                    'e' => '\u{1b}',
                    ' ' => ' ',
                    '"' => '"',
                    '/' => '/',
                    '\\' => '\\',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    'x' => hex(2)?,
                    'u' => hex(4)?,
                    'U' => hex(8)?,
                    other => return Err(md_err(line, format!("invalid escape \\{other}"))),
                };
                out.push(ch);
            }
            c => out.push(c),
        }
    }
    Err(md_err(line, "unterminated double-quoted string"))
}

fn single_quoted(s: &str, line: usize) -> Result<(String, &str), MirrorError> {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                out.push('\'');
            } else {
                return Ok((out, &s[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    Err(md_err(line, "unterminated single-quoted string"))
}

fn flow_seq(s: &str, line: usize) -> Result<(Vec<String>, &str), MirrorError> {
    let mut items = Vec::new();
    let mut rest = s.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            return Ok((items, after));
        }
        let (item, after) = match rest.chars().next() {
            None => return Err(md_err(line, "unterminated list")),
            Some('"') => double_quoted(&rest[1..], line)?,
            Some('\'') => single_quoted(&rest[1..], line)?,
            Some(c) if "[{".contains(c) => {
                return Err(md_err(line, "nested collections are not supported"));
            }
            Some(_) => {
                let end = rest.find([',', ']']).unwrap_or(rest.len());
                (rest[..end].trim().to_owned(), &rest[end..])
            }
        };
        items.push(item);
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.starts_with(']') {
            return Err(md_err(line, "expected `,` or `]` in a list"));
        }
    }
}

fn take_str(
    fields: &mut BTreeMap<String, Value>,
    key: &str,
    line: usize,
) -> Result<Option<String>, MirrorError> {
    match fields.remove(key) {
        // `key:` with nothing after it (an empty block list) is null too.
        None | Some(Value::Null) => Ok(None),
        Some(Value::Seq(v)) if v.is_empty() => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(Value::Seq(_)) => Err(md_err(line, format!("{key} must be a single value"))),
    }
}

fn take_list(
    fields: &mut BTreeMap<String, Value>,
    key: &str,
    line: usize,
) -> Result<Option<Vec<String>>, MirrorError> {
    match fields.remove(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Seq(v)) => Ok(Some(v)),
        Some(Value::Str(_)) => Err(md_err(line, format!("{key} must be a list"))),
    }
}

fn build(
    mut fields: BTreeMap<String, Value>,
    rest: &str,
    rest_line: usize,
) -> Result<RenderedIssue, MirrorError> {
    let fm = 2; // frontmatter errors name its first line
    let id = take_str(&mut fields, "id", fm)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| md_err(fm, "frontmatter has no id"))?;
    let title = take_str(&mut fields, "title", fm)?
        .ok_or_else(|| md_err(fm, "frontmatter has no title"))?;
    let status = take_str(&mut fields, "status", fm)?
        .ok_or_else(|| md_err(fm, "frontmatter has no status"))?;
    let status: Status = status.parse().map_err(|_| {
        md_err(
            fm,
            format!("unknown status {status:?} (open, in_progress, in_review, done, wont_fix)"),
        )
    })?;
    let assignee = take_str(&mut fields, "assignee", fm)?;
    let assignees = match (take_list(&mut fields, "assignees", fm)?, assignee) {
        (Some(list), Some(first)) if list.first() != Some(&first) => {
            return Err(md_err(
                fm,
                format!(
                    "assignee {first:?} is not the first of assignees {list:?}: edit assignees"
                ),
            ));
        }
        (Some(list), _) => list,
        (None, Some(first)) => vec![first],
        (None, None) => Vec::new(),
    };
    let labels = take_list(&mut fields, "labels", fm)?.unwrap_or_default();
    let created_at = take_str(&mut fields, "created_at", fm)?.unwrap_or_default();
    let updated_at = take_str(&mut fields, "updated_at", fm)?.unwrap_or_default();
    let version = match take_str(&mut fields, "version", fm)? {
        None => 0,
        Some(v) => v
            .parse()
            .map_err(|_| md_err(fm, format!("version {v:?} is not a number")))?,
    };
    let reposix_id = take_str(&mut fields, "reposix_id", fm)?;
    let tag = match take_str(&mut fields, "comments_marker", fm)? {
        None => TAG.to_owned(),
        Some(t) => {
            let ok = t == TAG
                || t.strip_prefix("reposix-")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                return Err(md_err(
                    fm,
                    format!("comments_marker {t:?} is not reposix[-N]"),
                ));
            }
            t
        }
    };
    let marker = format!("\n<!-- {tag}:comments -->");
    let mut split = None;
    let mut from = 0;
    while let Some(i) = rest[from..].find(&marker) {
        let at = from + i;
        let after = &rest[at + marker.len()..];
        if after.is_empty() || after.starts_with('\n') {
            split = Some((at, after.strip_prefix('\n').unwrap_or(after)));
            break;
        }
        from = at + 1;
    }
    let (body, comments) = match split {
        // No marker: a hand-written file without comments.
        None => (rest.to_owned(), Vec::new()),
        Some((at, section)) => {
            let section_line = rest_line + rest[..at].matches('\n').count() + 2;
            (
                rest[..at].to_owned(),
                parse_comments(section, &tag, section_line)?,
            )
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
        comments,
    })
}

fn parse_comments(
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
        let (author, created_at, edited) = parse_heading(heading)
            .ok_or_else(|| md_err(line + 1, format!("malformed comment heading {heading:?}")))?;
        out.push(RenderedComment {
            id: id.to_owned(),
            author,
            created_at,
            edited,
            body: body.to_owned(),
        });
    }
    Ok(out)
}

/// `### comment <short> by <author> on <time>[ (edited)]`.
fn parse_heading(h: &str) -> Option<(String, String, bool)> {
    let h = h.strip_prefix("### comment ")?;
    let (h, edited) = match h.strip_suffix(" (edited)") {
        Some(h) => (h, true),
        None => (h, false),
    };
    let (h, time) = h.rsplit_once(" on ")?;
    let (_short, author) = h.split_once(" by ")?;
    if time.contains(' ') {
        return None;
    }
    Some((author.to_owned(), time.to_owned(), edited))
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
    /// `.md` files in the rendered directory that the render does not have.
    pub stale: Vec<String>,
    /// Whether the stale files were removed.
    pub pruned: bool,
}

/// Write rendered files under `dir` (atomically each, skipping files that
/// already hold the bytes). `.md` files in the kind's directory that the
/// render lacks are listed, and removed with `prune`.
pub fn write_files(
    dir: &Path,
    kind: BackendKind,
    files: &BTreeMap<String, Vec<u8>>,
    prune: bool,
) -> Result<WriteReport, MirrorError> {
    let sub = dir_for(kind);
    let target = dir.join(sub);
    std::fs::create_dir_all(&target).map_err(io_err(&target))?;
    let mut report = WriteReport {
        pruned: prune,
        ..WriteReport::default()
    };
    for (path, bytes) in files {
        let name = path
            .strip_prefix(sub)
            .and_then(|p| p.strip_prefix('/'))
            .filter(|n| n.strip_suffix(".md").is_some_and(safe_name))
            .ok_or_else(|| MirrorError::Invalid {
                what: "rendered path",
                value: path.clone(),
                why: "not <dir>/<safe name>.md",
            })?;
        let file = target.join(name);
        if std::fs::read(&file).is_ok_and(|old| old == *bytes) {
            report.unchanged += 1;
            continue;
        }
        let tmp = target.join(format!(".{name}.tmp.{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &file).map_err(io_err(&file))?;
        report.written.push(path.clone());
    }
    let entries = std::fs::read_dir(&target).map_err(io_err(&target))?;
    let mut stale = BTreeSet::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{sub}/{name}");
        if name.ends_with(".md") && !files.contains_key(&path) {
            if prune {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(io_err(&p))?;
            }
            stale.insert(path);
        }
    }
    report.stale = stale.into_iter().collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> RenderedIssue {
        RenderedIssue {
            id: "1".into(),
            title: "Crash on start".into(),
            status: Status::InProgress,
            assignees: vec!["alice".into()],
            labels: vec!["bug".into(), "p1".into()],
            created_at: "2026-04-13T00:00:00Z".into(),
            updated_at: "2026-04-13T00:05:00Z".into(),
            version: 3,
            reposix_id: Some("0b6f2f9e-7d53-4c1e-9a3e-2f0c8d1b6a55".into()),
            body: "It crashes when offline.\n".into(),
            comments: vec![RenderedComment {
                id: "9c1d0a2b3c4d".repeat(5) + "abcd",
                author: "bob".into(),
                created_at: "2026-04-13T00:05:00Z".into(),
                edited: false,
                body: "Reproduced on 1.2".into(),
            }],
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
            It crashes when offline.\n\
            \n\
            <!-- reposix:comments -->\n";
        assert!(text.starts_with(want), "{text}");
        assert!(text.ends_with(
            "### comment 9c1d0a2b3c4d by bob on 2026-04-13T00:05:00Z\n\nReproduced on 1.2\n"
        ));
        assert_eq!(parse(text.as_bytes()).expect("parses"), sample());
    }

    #[test]
    fn hostile_title_and_body_cannot_touch_the_frontmatter() {
        let mut issue = sample();
        issue.title = "x\"\n---\nversion: 999\n<script>alert(1)</script>".into();
        issue.body = "---\nversion: 999\nid: 666\n---\n<script>alert(1)</script>\n\
                      <!-- reposix:comments -->\n<!-- reposix:comment 00 -->\n"
            .into();
        issue.labels = vec!["a\", \"b".into(), "]".into()];
        let text = issue.to_markdown();
        let fm_end = text[4..].find("\n---\n").expect("closing fence") + 4;
        let fm = &text[..fm_end];
        assert_eq!(fm.matches("\nversion: ").count(), 1, "{fm}");
        assert!(fm.contains("\nversion: 3"), "{fm}");
        assert!(!fm.contains("\n---"), "{fm}");
        assert!(fm.contains("comments_marker: \"reposix-1\""), "{fm}");
        assert_eq!(parse(text.as_bytes()).expect("parses"), issue);
    }

    #[test]
    fn reads_reposix_014_files_and_hand_edits() {
        let text = "---\nid: 1\ntitle: Legacy issue\nstatus: open\nassignee: agent-alpha\n\
                    labels:\n- bug\n- p1\ncreated_at: 2025-01-01T00:00:00Z\n\
                    updated_at: 2025-01-01T00:00:00Z\nversion: 1\nparent_id: 42\n---\n\
                    Body goes here.\n";
        let got = parse(text.as_bytes()).expect("0.14 file parses");
        assert_eq!(got.id, "1");
        assert_eq!(got.title, "Legacy issue");
        assert_eq!(got.status, Status::Open);
        assert_eq!(got.assignees, ["agent-alpha"]);
        assert_eq!(got.labels, ["bug", "p1"]);
        assert_eq!(got.version, 1);
        assert_eq!(got.body, "Body goes here.\n");
        assert!(got.comments.is_empty());
        let edited = "---\nid: 'PROJ-1' # a comment\ntitle: 'it''s'\nstatus: done\nlabels: [a, \"b c\"]\n---\n";
        let got = parse(edited.as_bytes()).expect("hand edit parses");
        assert_eq!(got.id, "PROJ-1");
        assert_eq!(got.title, "it's");
        assert_eq!(got.labels, ["a", "b c"]);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for bad in [
            "no frontmatter\n",
            "---\nid: 1\ntitle: t\nstatus: open\n",
            "---\nid: 1\nid: 2\ntitle: t\nstatus: open\n---\n",
            "---\nid: 1\ntitle: t\nstatus: closed\n---\n",
            "---\nid: 1\ntitle: \"t\nstatus: open\n---\n",
            "---\nid: 1\ntitle: {a: b}\nstatus: open\n---\n",
            "---\nid: 1\ntitle: t\nstatus: open\nversion: x\n---\n",
            "---\nid: 1\ntitle: t\nstatus: open\n---\nb\n<!-- reposix:comments -->\nstray\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} parsed");
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
            Just("\"\\'#: [],{}".to_owned()),
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
                     edited in any::<bool>(), body in hostile_text()) -> RenderedComment {
            RenderedComment { id, author, created_at: timestamp::format_secs(secs), edited, body }
        }
    }

    prop_compose! {
        fn issue()(id in prop_oneof!["[0-9]{1,6}", "[A-Z]{2,4}-[0-9]{1,4}", hostile_text()],
                   title in hostile_text(), status in status(),
                   assignees in prop::collection::vec(hostile_text(), 0..3),
                   labels in prop::collection::vec(hostile_text(), 0..4),
                   version in any::<u64>(), reposix_id in proptest::option::of(hostile_text()),
                   body in hostile_text(), comments in prop::collection::vec(comment(), 0..4))
            -> RenderedIssue {
            RenderedIssue {
                id: if id.is_empty() { "x".into() } else { id },
                title, status, assignees, labels,
                created_at: "2026-04-13T00:00:00Z".into(),
                updated_at: "2026-04-13T00:05:00Z".into(),
                version, reposix_id, body, comments,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// parse inverts render, whatever the text holds, and the
        /// frontmatter keeps its shape: one `version` line, no `---` inside.
        #[test]
        fn parse_inverts_render(issue in issue()) {
            let text = issue.to_markdown();
            let back = parse(text.as_bytes()).expect("rendered files parse");
            prop_assert_eq!(&back, &issue);
            let fm_end = text[4..].find("\n---\n").expect("closing fence") + 4;
            let fm = &text[..fm_end];
            prop_assert_eq!(fm.matches("\nversion: ").count(), 1);
            const KEYS: [&str; 11] = ["id", "title", "status", "assignee", "assignees",
                "labels", "created_at", "updated_at", "version", "reposix_id", "comments_marker"];
            for line in fm.split('\n').skip(1) {
                prop_assert!(KEYS.iter().any(|k| line.starts_with(&format!("{k}: "))), "{:?}", line);
            }
            let breaks = ['\r', '\u{85}', '\u{2028}', '\u{2029}'];
            prop_assert!(!fm.contains(breaks), "line break in {:?}", fm);
            prop_assert_eq!(issue.to_markdown(), text);
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&bytes);
        }
    }
}
