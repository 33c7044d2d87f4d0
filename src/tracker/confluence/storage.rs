//! Confluence storage format (XHTML) <-> reposix markdown bodies.
//!
//! Both directions go through the document model of
//! [`crate::tracker::atlassian::markdown`], as for ADF.
//! [`from_markdown`] writes `<p>`, `<h1>`…`<h6>`, `<ul>`/`<ol start>` with
//! `<li>`, the `code` macro (the code in CDATA), `<strong>`, `<em>`, `<s>`,
//! `<code>`, `<a href>` and `<br />`, and `<p></p>` for each extra blank
//! line. Text is XML-escaped (`&` `<` `>` as entities; `\r` and the other
//! C0 controls except tab as numeric references, because an XML parser
//! would normalise or refuse them raw): markdown the subset lacks (HTML,
//! `<!-- reposix:… -->`, block quotes, …) is stored as its literal text,
//! never as markup. XML 1.0 has no way to carry C0 controls other than
//! tab, newline and CR; Confluence may refuse a body holding them (a 400,
//! never a silent change).
//!
//! Reading ([`to_markdown`]) is a tolerant parser for what people write in
//! Confluence: entities (XML, numeric and the common HTML ones such as
//! `&nbsp;`) are decoded; `p`, headings, lists, the `code` and `noformat`
//! macros, `strong`/`b`, `em`/`i`, `s`/`del`/`strike`, `code`, `a href`
//! and `br` map to the model (other inline formatting is dropped, its
//! text kept); task lists become `[ ] `/`[x] ` bullet items; tables,
//! block quotes, rules and macros with a body become literal text in the
//! same markdown-like form as [`crate::tracker::adf`] (cells joined with
//! ` | `, `> ` lines, `---`); macro parameters, images and placeholders
//! render as nothing; `ac:link`s as their text. Text typed on the page
//! that reads as markdown is escaped, and the result is a fixed point of
//! the round trip (see the model's guarantees).

use crate::tracker::atlassian::markdown::{self, literal, prefix_lines, Block, Doc, Inline, Marks};

/// The storage-format body for a markdown body.
pub fn from_markdown(md: &str) -> String {
    from_doc(&markdown::parse(md))
}

/// The markdown of a storage-format body.
pub fn to_markdown(storage: &str) -> String {
    markdown::render(&to_doc(storage))
}

/// The storage-format body for a document of the model.
pub fn from_doc(doc: &Doc) -> String {
    let mut out = String::new();
    for b in &markdown::normalize(doc.clone()) {
        block_to_storage(b, &mut out);
    }
    out
}

fn block_to_storage(b: &Block, out: &mut String) {
    match b {
        Block::Blank => out.push_str("<p></p>"),
        Block::Para(inl) => {
            out.push_str("<p>");
            inlines_to_storage(inl, out);
            out.push_str("</p>");
        }
        Block::Heading(level, inl) => {
            out.push_str(&format!("<h{level}>"));
            inlines_to_storage(inl, out);
            out.push_str(&format!("</h{level}>"));
        }
        Block::Code { lang, text } => {
            out.push_str("<ac:structured-macro ac:name=\"code\">");
            if !lang.is_empty() {
                out.push_str("<ac:parameter ac:name=\"language\">");
                escape_into(lang, out);
                out.push_str("</ac:parameter>");
            }
            out.push_str("<ac:plain-text-body><![CDATA[");
            out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]></ac:plain-text-body></ac:structured-macro>");
        }
        Block::List { start, items } => {
            let tag = match start {
                Some(1) => {
                    out.push_str("<ol>");
                    "ol"
                }
                Some(n) => {
                    out.push_str(&format!("<ol start=\"{n}\">"));
                    "ol"
                }
                None => {
                    out.push_str("<ul>");
                    "ul"
                }
            };
            for item in items {
                out.push_str("<li>");
                for b in item {
                    block_to_storage(b, out);
                }
                out.push_str("</li>");
            }
            out.push_str(&format!("</{tag}>"));
        }
    }
}

fn inlines_to_storage(inl: &[Inline], out: &mut String) {
    use markdown::{MarkKind, Token};
    for tok in markdown::tokens(inl) {
        match tok {
            Token::Break => out.push_str("<br />"),
            Token::Text(t) => escape_into(t, out),
            Token::Open(k) => match k {
                MarkKind::Link(href) => {
                    out.push_str("<a href=\"");
                    escape_into(&href, out);
                    out.push_str("\">");
                }
                MarkKind::Strong => out.push_str("<strong>"),
                MarkKind::Em => out.push_str("<em>"),
                MarkKind::Strike => out.push_str("<s>"),
                MarkKind::Code => out.push_str("<code>"),
            },
            Token::Close(k) => out.push_str(match k {
                MarkKind::Link(_) => "</a>",
                MarkKind::Strong => "</strong>",
                MarkKind::Em => "</em>",
                MarkKind::Strike => "</s>",
                MarkKind::Code => "</code>",
            }),
        }
    }
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push_str(&format!("&#{};", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// The document of the model a storage-format body describes.
pub fn to_doc(storage: &str) -> Doc {
    let mut out = Vec::new();
    storage_blocks(&parse(storage), &mut out);
    markdown::normalize(out)
}

/// Blocks, with runs of inline nodes between them as paragraphs (a run
/// that is only whitespace, the layout between tags, is nothing).
fn storage_blocks(nodes: &[Node], out: &mut Doc) {
    let mut run: Vec<&Node> = Vec::new();
    let flush = |run: &mut Vec<&Node>, out: &mut Doc| {
        if run.is_empty() {
            return;
        }
        let inl = storage_inlines_of(run.iter().copied());
        let blank = inl.iter().all(|i| match i {
            Inline::Text(t, _) => t.trim().is_empty(),
            Inline::Break => false,
        });
        if !blank {
            out.push(Block::Para(trim_inlines(inl)));
        }
        run.clear();
    };
    for node in nodes {
        match node {
            Node::Element { name, .. } if is_block(name) => {
                flush(&mut run, out);
                storage_block(node, out);
            }
            n => run.push(n),
        }
    }
    flush(&mut run, out);
}

/// Inline runs between blocks lose the layout whitespace at their edges.
fn trim_inlines(mut inl: Vec<Inline>) -> Vec<Inline> {
    if let Some(Inline::Text(t, _)) = inl.first_mut() {
        *t = t.trim_start().to_owned();
    }
    if let Some(Inline::Text(t, _)) = inl.last_mut() {
        *t = t.trim_end().to_owned();
    }
    inl
}

fn storage_block(node: &Node, out: &mut Doc) {
    let name = node.name();
    match name {
        "p" => out.push(Block::Para(storage_inlines(node.kids()))),
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
            out.push(Block::Heading(
                name.as_bytes()[1] - b'0',
                storage_inlines(node.kids()),
            ));
        }
        "ul" | "ol" => {
            let start = (name == "ol").then(|| {
                node.attr("start")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(1)
            });
            let items = node
                .kids()
                .iter()
                .filter(|k| k.name() == "li")
                .map(|li| {
                    let mut blocks = Vec::new();
                    storage_blocks(li.kids(), &mut blocks);
                    blocks
                })
                .collect();
            out.push(Block::List { start, items });
        }
        "ac:structured-macro" => {
            let macro_name = node.attr("ac:name").unwrap_or("");
            match node.child("ac:plain-text-body") {
                Some(body) if matches!(macro_name, "code" | "noformat") => {
                    let lang = node
                        .kids()
                        .iter()
                        .find(|k| {
                            k.name() == "ac:parameter" && k.attr("ac:name") == Some("language")
                        })
                        .map(|k| render_inline(k.kids()))
                        .unwrap_or_default();
                    out.push(Block::Code {
                        lang,
                        text: render_inline(body.kids()),
                    });
                }
                _ => match node.child("ac:rich-text-body") {
                    Some(body) => storage_blocks(body.kids(), out),
                    None => {
                        if let Some(text) = render_macro(node, true) {
                            out.push(Block::Para(literal(&text)));
                        }
                    }
                },
            }
        }
        "ac:task-list" => {
            let items = tasks(node)
                .map(|(done, task)| {
                    let mut inl = vec![Inline::Text(
                        if done { "[x] " } else { "[ ] " }.to_owned(),
                        Marks::default(),
                    )];
                    if let Some(body) = task.child("ac:task-body") {
                        inl.extend(trim_inlines(storage_inlines(body.kids())));
                    }
                    vec![Block::Para(inl)]
                })
                .collect();
            out.push(Block::List { start: None, items });
        }
        "pre" | "blockquote" | "hr" | "table" | "tr" => {
            let mut text = Vec::new();
            render_block(node, &mut text);
            out.extend(text.iter().map(|t| Block::Para(literal(t))));
        }
        // div, section, li out of a list, layouts, rich-text bodies.
        _ => storage_blocks(node.kids(), out),
    }
}

fn storage_inlines(nodes: &[Node]) -> Vec<Inline> {
    storage_inlines_of(nodes.iter())
}

fn storage_inlines_of<'a>(nodes: impl Iterator<Item = &'a Node>) -> Vec<Inline> {
    let mut out = Vec::new();
    for node in nodes {
        inline_into(node, &Marks::default(), &mut out);
    }
    out
}

fn inline_into(node: &Node, marks: &Marks, out: &mut Vec<Inline>) {
    match node {
        Node::Text(t) => out.push(Inline::Text(t.clone(), marks.clone())),
        Node::Element { name, children, .. } => {
            let mut m = marks.clone();
            match name.as_str() {
                "br" => return out.push(Inline::Break),
                "strong" | "b" => m.strong = true,
                "em" | "i" => m.em = true,
                "s" | "del" | "strike" => m.strike = true,
                "code" => m.code = true,
                "a" => m.link = node.attr("href").map(str::to_owned),
                "span" | "u" | "sup" | "sub" | "small" | "big" | "font" => {}
                _ => {
                    let text = render_inline(std::slice::from_ref(node));
                    let mut inl = literal(&text);
                    for i in &mut inl {
                        if let Inline::Text(_, tm) = i {
                            *tm = marks.clone();
                        }
                    }
                    return out.extend(inl);
                }
            }
            for c in children {
                inline_into(c, &m, out);
            }
        }
    }
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
            let items: Vec<String> = tasks(node)
                .map(|(done, task)| {
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

/// The tasks of an `ac:task-list`, each with whether it is complete.
fn tasks(list: &Node) -> impl Iterator<Item = (bool, &Node)> {
    list.kids()
        .iter()
        .filter(|k| k.name() == "ac:task")
        .map(|task| {
            let done = task
                .child("ac:task-status")
                .is_some_and(|s| render_inline(s.kids()).trim() == "complete");
            (done, task)
        })
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
        let body = "<script>alert('x')</script>\n\n---\nversion: 999\n---\n\n&amp; &lt;\u{1}\n";
        let storage = from_markdown(body);
        assert!(!storage.contains("<script>"), "{storage}");
        assert!(
            storage.starts_with("<p>&lt;script&gt;alert('x')&lt;/script&gt;</p>"),
            "{storage}"
        );
        assert!(storage.contains("<p>&amp; &lt;&#1;</p>"), "{storage}");
        assert_eq!(
            to_markdown(&storage),
            "<script>alert('x')</script>\n\n---\nversion: 999\n---\n\n& <\u{1}\n"
        );
        for s in [
            "",
            "\n",
            "a\n\n\nb\n",
            "<script>alert('x')</script>\n\n---\nversion: 999\n---",
            "text\n\n<!-- reposix:0f3a -->",
            "# T\n\n**b** *e* ~~s~~ `c` [l](https://x.y/?a=1&b=2)\nnext\n\n- a\n  1. b\n\n```rust\nx ]]> y\n```",
        ] {
            assert_eq!(to_markdown(&from_markdown(s)), s, "{s:?}");
        }
        assert_eq!(from_markdown(""), "");
        assert_eq!(to_markdown(""), "");
        assert_eq!(to_markdown("<p></p>"), "\n");
        assert_eq!(to_markdown("<p/><p />"), "\n\n");
    }

    #[test]
    fn markdown_becomes_storage_markup() {
        assert_eq!(
            from_markdown("**bold** and *em* [x](https://e.com/?a&b)\n\n1. one\n2. `two`"),
            "<p><strong>bold</strong> and <em>em</em> <a href=\"https://e.com/?a&amp;b\">x</a></p>\
             <ol><li><p>one</p></li><li><p><code>two</code></p></li></ol>"
        );
        assert_eq!(
            from_markdown("## H\n\n```sh\nls ]]> x\n```"),
            "<h2>H</h2><ac:structured-macro ac:name=\"code\"><ac:parameter ac:name=\"language\">sh\
             </ac:parameter><ac:plain-text-body><![CDATA[ls ]]]]><![CDATA[> x]]></ac:plain-text-body>\
             </ac:structured-macro>"
        );
    }

    // Issue 9, point 14: text typed on a page as `**x**` must come back
    // escaped, or sending it back would make it bold.
    #[test]
    fn literal_markdown_typed_on_a_page_is_escaped() {
        let md = to_markdown("<p>**not bold** and <b>bold</b></p><p>1. not a list</p>");
        assert_eq!(md, "\\*\\*not bold\\*\\* and **bold**\n\n1\\. not a list");
        assert_eq!(
            from_markdown(&md),
            "<p>**not bold** and <strong>bold</strong></p><p>1. not a list</p>"
        );
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
        let md = to_markdown(storage);
        assert_eq!(
            md,
            "# Title\n\nHello **bold**\u{a0}world\nnext\n\n- one\n- two\n\n  3. three\n\n\
             ```rust\nfn main() { a < b && c }\n```\n\nk | v\na | b\n\n- [x] ship it\n\n> quoted\n\n---\n\n\
             see Home and DONE:smile:\n\n&unknown; AB"
        );
        assert_eq!(to_markdown(&from_markdown(&md)), md);
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
            let _ = to_markdown(s);
        }
        assert_eq!(to_markdown("a < b"), "a < b");
    }

    proptest! {
        #[test]
        fn markdown_storage_markdown_is_stable(s in any::<String>()) {
            let once = to_markdown(&from_markdown(&s));
            prop_assert_eq!(to_markdown(&from_markdown(&once)), once);
        }

        #[test]
        fn pages_read_to_a_fixed_point(lines in proptest::collection::vec("[<>&;#a-z/!\\[\\]\"' \t\r*_`-]{0,16}|<(strong|em|s|code|p|li|ul|ol|br/|h2|a href=\"x\")>|</(strong|em|s|code|p|li|ul|ol|h2|a)>", 0..12)) {
            let page = lines.concat();
            let once = to_markdown(&page);
            prop_assert_eq!(to_markdown(&from_markdown(&once)), once, "from {:?}", page);
        }
    }
}
