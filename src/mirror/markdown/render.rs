//! Issue states to markdown: frontmatter, body, comment files.

use super::*;

pub(super) fn rfc3339_ms(ms: i64) -> String {
    time::format_secs(ms.div_euclid(1000))
}

/// Whether the tracker holds our sync marker at the end of the issue's
/// body: trackers without a hidden field (sim, GitHub) get one on the
/// issues we create there, i.e. those whose id is not the one derived
/// from the remote identity.
pub(super) fn tracker_marker(issue: &MirrorIssue, kind: BackendKind, key: &str) -> Option<String> {
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
pub(super) fn remote_order(id: &str) -> (u8, u64, &str) {
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

pub(super) fn push_kv(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

pub(super) fn is_canonical_decimal(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 19
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
}

/// The smallest marker tag no line of any comment starts with.
pub(super) fn pick_tag(comments: &[RenderedComment]) -> String {
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
pub(super) fn quote(s: &str) -> String {
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

pub(super) fn quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", inner.join(", "))
}

pub(super) fn safe_name(id: &str) -> bool {
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
