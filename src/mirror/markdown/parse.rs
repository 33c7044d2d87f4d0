//! Markdown back to issues: frontmatter (a YAML subset, with the line of
//! every error) and comment files.

use super::*;

/// Any YAML scalar as the text it was written as (`id: 1` and `id: "1"`
/// both read `1`).
#[derive(Debug)]
pub(super) struct Text(String);

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
pub(super) struct Frontmatter {
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
pub(super) fn yaml_err(e: serde_saphyr::Error) -> MirrorError {
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
pub(super) fn line_of<T>(v: &At<T>) -> usize {
    match usize::try_from(v.referenced.line()) {
        Ok(0) | Err(_) => 1,
        Ok(n) => n + 1,
    }
}

/// A key's text, with its line; `key:` with nothing after it is absent.
pub(super) fn text(v: Option<At<Option<Text>>>) -> Option<(String, usize)> {
    let v = v?;
    let line = line_of(&v);
    v.value.map(|t| (t.0, line))
}

pub(super) fn list(v: Option<At<Option<Vec<Text>>>>) -> Option<Vec<String>> {
    let v = v?;
    Some(
        v.value
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.0)
            .collect(),
    )
}

pub(super) fn build(fm: Frontmatter, body: String) -> Result<RenderedIssue, MirrorError> {
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

pub(super) fn comment_blocks(
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
pub(super) fn parse_heading(h: &str) -> Option<(String, String)> {
    let h = h.strip_prefix("### comment ")?;
    let (h, time) = h.rsplit_once(" on ")?;
    let (_short, author) = h.split_once(" by ")?;
    if time.contains(' ') {
        return None;
    }
    Some((author.to_owned(), time.to_owned()))
}
