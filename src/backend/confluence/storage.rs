//! Confluence storage format (XHTML) <-> reposix plain-text bodies.
//!
//! Writing ([`from_text`]) is lossless: each line becomes one `<p>…</p>`
//! with the text XML-escaped (`&` `<` `>` as entities; `\r` and the other
//! C0 controls except tab as numeric references, because an XML parser
//! would normalise or refuse them raw), and the empty string is the empty
//! document. Markup-looking text (`<script>`, `<p>`, `&amp;`) is therefore
//! stored as characters, never as markup, and [`to_text`]`(`[`from_text`]`(s))
//! == s` for every string. XML 1.0 has no way to carry C0 controls other
//! than tab, newline and CR; Confluence may refuse a body holding them
//! (a 400, never a silent change).
//!
//! Reading ([`to_text`]) is a tolerant parser for what people write in
//! Confluence: blocks (`p`, headings, lists, tables, `pre`, macros with a
//! body, task lists, layouts) are joined with `"\n"`, `<br/>` is `"\n"`,
//! entities (XML, numeric and the common HTML ones such as `&nbsp;`) are
//! decoded, inline formatting is dropped, and richer elements take the
//! same markdown-like form as [`crate::backend::adf`] (`# heading`,
//! `- item`, `1. item`, `- [x] task`, `> quote`, `---`, cells joined with
//! ` | `, code macros fenced with ```` ``` ````). Macro parameters,
//! images and placeholders render as nothing; links as their text.

/// The storage-format body for a plain-text body.
pub fn from_text(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split('\n') {
        out.push_str("<p>");
        escape_into(line, &mut out);
        out.push_str("</p>");
    }
    out
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push_str(&format!("&#{};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// The plain text of a storage-format body.
pub fn to_text(storage: &str) -> String {
    render_blocks(&parse(storage)).join("\n")
}

#[derive(Debug)]
enum Node {
    Element {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<Node>,
    },
    Text(String),
}

impl Node {
    fn attr(&self, key: &str) -> Option<&str> {
        match self {
            Node::Element { attrs, .. } => attrs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
            Node::Text(_) => None,
        }
    }

    fn name(&self) -> &str {
        match self {
            Node::Element { name, .. } => name,
            Node::Text(_) => "",
        }
    }

    fn kids(&self) -> &[Node] {
        match self {
            Node::Element { children, .. } => children,
            Node::Text(_) => &[],
        }
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.kids().iter().find(|k| k.name() == name)
    }
}

const VOID: [&str; 8] = ["br", "hr", "img", "col", "meta", "link", "input", "wbr"];

/// Parse into a forest, forgiving unbalanced or stray tags.
fn parse(s: &str) -> Vec<Node> {
    struct Frame {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<Node>,
    }
    let mut stack: Vec<Frame> = vec![Frame {
        name: String::new(),
        attrs: Vec::new(),
        children: Vec::new(),
    }];
    fn close_top(stack: &mut Vec<Frame>) {
        let f = stack
            .pop()
            .expect("BUG: the root frame is never closed here");
        let node = Node::Element {
            name: f.name,
            attrs: f.attrs,
            children: f.children,
        };
        stack
            .last_mut()
            .expect("BUG: the root frame outlives every element")
            .children
            .push(node);
    }
    let push_text = |stack: &mut Vec<Frame>, t: String| {
        if t.is_empty() {
            return;
        }
        let top = &mut stack.last_mut().expect("root frame").children;
        match top.last_mut() {
            Some(Node::Text(prev)) => prev.push_str(&t),
            _ => top.push(Node::Text(t)),
        }
    };
    let mut rest = s;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut stack, unescape(rest));
            break;
        };
        if lt > 0 {
            push_text(&mut stack, unescape(&rest[..lt]));
            rest = &rest[lt..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
        } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").unwrap_or(after.len());
            push_text(&mut stack, after[..end].to_owned());
            rest = after.get(end + 3..).unwrap_or("");
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = rest.find('>').map_or("", |i| &rest[i + 1..]);
        } else if let Some(after) = rest.strip_prefix("</") {
            let Some(gt) = after.find('>') else {
                push_text(&mut stack, unescape(rest));
                break;
            };
            let name = after[..gt].trim().to_ascii_lowercase();
            if let Some(pos) = stack.iter().rposition(|f| f.name == name) {
                if pos > 0 {
                    while stack.len() > pos {
                        close_top(&mut stack);
                    }
                }
            }
            rest = &after[gt + 1..];
        } else {
            match parse_start_tag(rest) {
                Some(StartTag {
                    name,
                    attrs,
                    self_closing,
                    len,
                }) => {
                    rest = &rest[len..];
                    if self_closing || VOID.contains(&name.as_str()) {
                        stack
                            .last_mut()
                            .expect("root frame")
                            .children
                            .push(Node::Element {
                                name,
                                attrs,
                                children: Vec::new(),
                            });
                    } else {
                        stack.push(Frame {
                            name,
                            attrs,
                            children: Vec::new(),
                        });
                    }
                }
                None => {
                    push_text(&mut stack, "<".to_owned());
                    rest = &rest[1..];
                }
            }
        }
    }
    while stack.len() > 1 {
        close_top(&mut stack);
    }
    stack.pop().map(|f| f.children).unwrap_or_default()
}

/// A start tag as parsed.
struct StartTag {
    name: String,
    attrs: Vec<(String, String)>,
    self_closing: bool,
    /// Its length in bytes.
    len: usize,
}

/// `<name attr="v" …>` or `<name … />` at the start of `s`.
fn parse_start_tag(s: &str) -> Option<StartTag> {
    let b = s.as_bytes();
    let is_name = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'_' | b'.');
    if !b
        .get(1)
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return None;
    }
    let mut i = 1;
    while i < b.len() && is_name(b[i]) {
        i += 1;
    }
    let name = s[1..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        match b.get(i)? {
            b'>' => {
                return Some(StartTag {
                    name,
                    attrs,
                    self_closing: false,
                    len: i + 1,
                })
            }
            b'/' if b.get(i + 1) == Some(&b'>') => {
                return Some(StartTag {
                    name,
                    attrs,
                    self_closing: true,
                    len: i + 2,
                })
            }
            c if is_name(*c) => {
                let start = i;
                while i < b.len() && is_name(b[i]) {
                    i += 1;
                }
                let key = s[start..i].to_ascii_lowercase();
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                let mut value = String::new();
                if b.get(i) == Some(&b'=') {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    match b.get(i)? {
                        q @ (b'"' | b'\'') => {
                            let end = s[i + 1..].find(*q as char)? + i + 1;
                            value = unescape(&s[i + 1..end]);
                            i = end + 1;
                        }
                        _ => {
                            let start = i;
                            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                                i += 1;
                            }
                            value = unescape(&s[start..i]);
                        }
                    }
                }
                attrs.push((key, value));
            }
            _ => return None,
        }
    }
}

/// Decode XML, numeric and common HTML entities; leave unknown ones as text.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest[1..]
            .find(';')
            .filter(|semi| *semi <= 10)
            .and_then(|semi| entity(&rest[1..=semi]).map(|c| (c, semi + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '\u{2013}',
        "mdash" => '\u{2014}',
        "hellip" => '\u{2026}',
        "lsquo" => '\u{2018}',
        "rsquo" => '\u{2019}',
        "ldquo" => '\u{201c}',
        "rdquo" => '\u{201d}',
        "laquo" => '\u{ab}',
        "raquo" => '\u{bb}',
        "middot" => '\u{b7}',
        "bull" => '\u{2022}',
        "copy" => '\u{a9}',
        "reg" => '\u{ae}',
        "trade" => '\u{2122}',
        "euro" => '\u{20ac}',
        "pound" => '\u{a3}',
        "times" => '\u{d7}',
        "rarr" => '\u{2192}',
        "larr" => '\u{2190}',
        _ => return None,
    })
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "ul"
            | "ol"
            | "li"
            | "pre"
            | "blockquote"
            | "hr"
            | "table"
            | "thead"
            | "tbody"
            | "tr"
            | "div"
            | "section"
            | "ac:structured-macro"
            | "ac:task-list"
            | "ac:layout"
            | "ac:layout-section"
            | "ac:layout-cell"
            | "ac:rich-text-body"
    )
}

fn render_blocks(nodes: &[Node]) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut Vec<String>| {
        let t = run.trim();
        if !t.is_empty() {
            out.push(t.to_owned());
        }
        run.clear();
    };
    for node in nodes {
        match node {
            Node::Text(t) => run.push_str(t),
            Node::Element { name, .. } if is_block(name) => {
                flush(&mut run, &mut out);
                render_block(node, &mut out);
            }
            el => run.push_str(&render_inline(std::slice::from_ref(el))),
        }
    }
    flush(&mut run, &mut out);
    out
}

fn render_block(node: &Node, out: &mut Vec<String>) {
    let name = node.name();
    match name {
        "p" | "pre" => out.push(render_inline(node.kids())),
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
            let level = usize::from(name.as_bytes()[1] - b'0');
            out.push(format!(
                "{} {}",
                "#".repeat(level),
                render_inline(node.kids())
            ));
        }
        "ul" | "ol" => {
            let start: usize = node.attr("start").and_then(|s| s.parse().ok()).unwrap_or(1);
            let items: Vec<String> = node
                .kids()
                .iter()
                .filter(|k| k.name() == "li")
                .enumerate()
                .map(|(i, li)| {
                    let bullet = if name == "ol" {
                        format!("{}. ", start + i)
                    } else {
                        "- ".to_owned()
                    };
                    let indent = " ".repeat(bullet.len().min(4));
                    prefix_lines(&render_blocks(li.kids()).join("\n"), &bullet, &indent)
                })
                .collect();
            out.push(items.join("\n"));
        }
        "blockquote" => out.push(prefix_lines(
            &render_blocks(node.kids()).join("\n"),
            "> ",
            "> ",
        )),
        "hr" => out.push("---".to_owned()),
        "table" => {
            let mut rows = Vec::new();
            collect_rows(node, &mut rows);
            out.push(rows.join("\n"));
        }
        "tr" => {
            let mut rows = Vec::new();
            collect_rows(node, &mut rows);
            out.extend(rows);
        }
        "ac:structured-macro" => {
            if let Some(text) = render_macro(node, true) {
                out.push(text);
            }
        }
        "ac:task-list" => {
            let items: Vec<String> = node
                .kids()
                .iter()
                .filter(|k| k.name() == "ac:task")
                .map(|task| {
                    let done = task
                        .child("ac:task-status")
                        .is_some_and(|s| render_inline(s.kids()).trim() == "complete");
                    let body = task
                        .child("ac:task-body")
                        .map(|b| render_inline(b.kids()))
                        .unwrap_or_default();
                    prefix_lines(
                        body.trim(),
                        if done { "- [x] " } else { "- [ ] " },
                        "      ",
                    )
                })
                .collect();
            out.push(items.join("\n"));
        }
        // div, section, li out of a list, layouts, rich-text bodies.
        _ => out.extend(render_blocks(node.kids())),
    }
}

fn collect_rows(node: &Node, rows: &mut Vec<String>) {
    for k in node.kids() {
        match k.name() {
            "tr" => rows.push(
                k.kids()
                    .iter()
                    .filter(|c| matches!(c.name(), "td" | "th"))
                    .map(|c| render_blocks(c.kids()).join(" "))
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            "thead" | "tbody" | "tfoot" => collect_rows(k, rows),
            _ => {}
        }
    }
}

/// A macro's text: code macros fenced, bodies rendered, others by their
/// title parameter (inline) or nothing.
fn render_macro(node: &Node, block: bool) -> Option<String> {
    let macro_name = node.attr("ac:name").unwrap_or("");
    let param = |p: &str| {
        node.kids()
            .iter()
            .find(|k| k.name() == "ac:parameter" && k.attr("ac:name") == Some(p))
            .map(|k| render_inline(k.kids()))
    };
    if let Some(body) = node.child("ac:plain-text-body") {
        let text = render_inline(body.kids());
        return Some(if block && matches!(macro_name, "code" | "noformat") {
            format!("```{}\n{text}\n```", param("language").unwrap_or_default())
        } else {
            text
        });
    }
    if let Some(body) = node.child("ac:rich-text-body") {
        return Some(render_blocks(body.kids()).join("\n"));
    }
    match macro_name {
        "status" => param("title"),
        "jira" => param("key"),
        _ => None,
    }
}

fn prefix_lines(text: &str, first: &str, rest: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| format!("{}{line}", if i == 0 { first } else { rest }))
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_inline(nodes: &[Node]) -> String {
    let mut s = String::new();
    for node in nodes {
        match node {
            Node::Text(t) => s.push_str(t),
            Node::Element { name, children, .. } => match name.as_str() {
                "br" => s.push('\n'),
                "ac:parameter" | "ac:placeholder" | "ac:image" | "img" => {}
                "ac:emoticon" => match node.attr("ac:emoji-fallback") {
                    Some(f) => s.push_str(f),
                    None => s.push_str(&format!(":{}:", node.attr("ac:name").unwrap_or(""))),
                },
                "time" => s.push_str(node.attr("datetime").unwrap_or("")),
                "ac:structured-macro" => s.push_str(&render_macro(node, false).unwrap_or_default()),
                "ac:link" => {
                    let text = render_inline(children);
                    if !text.is_empty() {
                        s.push_str(&text);
                    } else if let Some(page) = node.child("ri:page") {
                        s.push_str(page.attr("ri:content-title").unwrap_or(""));
                    } else if let Some(user) = node.child("ri:user") {
                        s.push('@');
                        s.push_str(user.attr("ri:account-id").unwrap_or(""));
                    } else if let Some(att) = node.child("ri:attachment") {
                        s.push_str(att.attr("ri:filename").unwrap_or(""));
                    }
                }
                n if n.starts_with("ri:") => {}
                n if is_block(n) && n != "ac:rich-text-body" => {
                    s.push_str(&render_blocks(std::slice::from_ref(node)).join("\n"));
                }
                _ => s.push_str(&render_inline(children)),
            },
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_text_is_escaped_and_comes_back() {
        let body = "<script>alert('x')</script>\n---\nversion: 999\n&amp; &lt;\r\n\n";
        let storage = from_text(body);
        assert!(!storage.contains("<script>"), "{storage}");
        assert!(storage.starts_with("<p>&lt;script&gt;alert('x')&lt;/script&gt;</p>"));
        assert!(
            storage.contains("<p>&amp;amp; &amp;lt;&#13;</p>"),
            "{storage}"
        );
        assert_eq!(to_text(&storage), body);
        assert_eq!(from_text(""), "");
        assert_eq!(to_text(""), "");
        assert_eq!(to_text("<p></p>"), "");
        assert_eq!(to_text("<p/><p />"), "\n");
    }

    #[test]
    fn human_pages_render_readably() {
        let storage = "<h1>Title</h1>\n<p>Hello <strong>bold</strong>&nbsp;world<br/>next</p>\
            <ul><li><p>one</p></li><li>two<ol start=\"3\"><li>three</li></ol></li></ul>\
            <ac:structured-macro ac:name=\"code\"><ac:parameter ac:name=\"language\">rust</ac:parameter>\
            <ac:plain-text-body><![CDATA[fn main() { a < b && c }]]></ac:plain-text-body></ac:structured-macro>\
            <table><tbody><tr><th>k</th><th>v</th></tr><tr><td><p>a</p></td><td>b</td></tr></tbody></table>\
            <ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status>\
            <ac:task-body>ship it</ac:task-body></ac:task></ac:task-list>\
            <blockquote><p>quoted</p></blockquote><hr/>\
            <p>see <ac:link><ri:page ri:content-title=\"Home\" /></ac:link> and \
            <ac:structured-macro ac:name=\"status\"><ac:parameter ac:name=\"title\">DONE</ac:parameter></ac:structured-macro>\
            <ac:emoticon ac:name=\"smile\" /></p><!-- hidden --><p>&unknown; &#x41;&#66;</p>";
        assert_eq!(
            to_text(storage),
            "# Title\nHello bold\u{a0}world\nnext\n- one\n- two\n  3. three\n\
             ```rust\nfn main() { a < b && c }\n```\nk | v\na | b\n- [x] ship it\n> quoted\n---\n\
             see Home and DONE:smile:\n&unknown; AB"
        );
    }

    #[test]
    fn broken_markup_does_not_panic() {
        for s in [
            "<p>unclosed",
            "</p>stray",
            "<p <b>x",
            "a < b",
            "<![CDATA[x",
            "<!-- x",
            "<p a=\"x>y</p>",
            "&#xZZ;&#99999999;",
        ] {
            let _ = to_text(s);
        }
        assert_eq!(to_text("a < b"), "a < b");
    }

    proptest! {
        #[test]
        fn text_storage_text_is_identity(s in any::<String>()) {
            prop_assert_eq!(to_text(&from_text(&s)), s);
        }

        #[test]
        fn markup_heavy_text_is_identity(lines in proptest::collection::vec("[<>&;#a-z/!\\[\\]\"' \t\r-]{0,16}", 0..6)) {
            let s = lines.join("\n");
            prop_assert_eq!(to_text(&from_text(&s)), s);
        }
    }
}
