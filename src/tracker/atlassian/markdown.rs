//! Markdown <-> the rich-text model that ADF and Confluence storage share.
//!
//! reposix bodies are markdown; JIRA keeps Atlassian Document Format and
//! Confluence keeps storage XHTML. Both adapters convert through one small
//! document model ([`Doc`]): paragraphs, ATX headings, fenced or indented
//! code blocks, bullet and ordered lists, and inline **strong**, *em*,
//! ~~strike~~, `code` and links, with line breaks. [`parse`] reads markdown
//! (CommonMark plus `~~strike~~`, through `pulldown-cmark`) into the model
//! and [`render`] writes the model back as markdown.
//!
//! # Guarantees
//!
//! - Nothing is dropped. Markdown outside the subset (block quotes, HTML,
//!   thematic breaks, setext headings, images, link reference definitions)
//!   is kept as its literal source text, which renders back to the same
//!   source, so it round-trips exactly.
//! - [`render`] is a pure function of the document, and `parse(render(d))
//!   == normalize(d)` for every document: it escapes only what would
//!   otherwise read back differently (text a tracker user typed as
//!   `**x**` comes back as `\*\*x\*\*`), checks its own output by parsing
//!   it, and escalates (more escaping, another emphasis character, marks
//!   dropped, at worst the block as literal text) until it reads back.
//! - Hence for any markdown `m`, with `m1 = render(parse(m))`:
//!   `render(parse(m1)) == m1`. Markdown already in the normal form comes
//!   back byte for byte.
//!
//! # The normal form
//!
//! Blocks are separated by one blank line; each further blank line (and
//! each line break before the first block or after the last) is an empty
//! paragraph, so `"a\n"` and `"a\n\n\nb"` survive. A line break inside a
//! paragraph is a hard break on the tracker (as GitHub shows it). Headings
//! are `# ATX`; bullets `-` (`*` for a list right after another bullet
//! list), ordered items `1.` (`1)` likewise), tight, continuation lines
//! indented to the item's content; code blocks fenced with backquotes;
//! `**strong**`, `*em*` (or `_em_`), `~~strike~~`; links `[text](url)`,
//! or `<url>` when the text is the URL. Whitespace at the edges of
//! emphasis moves outside it; `code` cannot also be strong, em or struck
//! (ADF forbids it); headings inside list items are literal `# ` text.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, LinkType, Options, Parser, Tag, TagEnd};

/// Inline formatting of a run of text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Marks {
    /// `**strong**`.
    pub strong: bool,
    /// `*emphasis*`.
    pub em: bool,
    /// `~~strike~~`.
    pub strike: bool,
    /// `` `code` ``.
    pub code: bool,
    /// A link's target.
    pub link: Option<String>,
}

/// Inline content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inline {
    /// Text (no line breaks) with its marks.
    Text(String, Marks),
    /// A line break.
    Break,
}

/// Block content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// A paragraph (also: literal text kept as it was).
    Para(Vec<Inline>),
    /// A heading, level 1 to 6.
    Heading(u8, Vec<Inline>),
    /// A code block.
    Code {
        /// The language (info string), possibly empty.
        lang: String,
        /// The code, without the final line break.
        text: String,
    },
    /// A list: ordered from `start`, or a bullet list.
    List {
        /// The first number of an ordered list.
        start: Option<u64>,
        /// Each item's blocks.
        items: Vec<Vec<Block>>,
    },
    /// An empty paragraph at the top level: one extra line break.
    Blank,
}

/// A document: its top-level blocks.
pub type Doc = Vec<Block>;

/// Plain text as inline content: one unmarked text per line.
pub fn literal(text: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push(Inline::Break);
        }
        if !line.is_empty() {
            out.push(Inline::Text(line.to_owned(), Marks::default()));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------

/// The canonical form of a document (idempotent): what [`parse`] returns
/// and what [`render`] writes.
pub fn normalize(doc: Doc) -> Doc {
    let mut out = Vec::new();
    for b in doc {
        norm_block(b, true, &mut out);
    }
    out
}

fn norm_block(b: Block, top: bool, out: &mut Vec<Block>) {
    match b {
        Block::Para(inl) => {
            let inl = norm_inlines(inl, false);
            if !inl.is_empty() {
                out.push(Block::Para(inl));
            } else if top {
                out.push(Block::Blank);
            }
        }
        Block::Blank => {
            if top {
                out.push(Block::Blank);
            }
        }
        Block::Heading(level, inl) => {
            let level = level.clamp(1, 6);
            if top {
                out.push(Block::Heading(level, norm_inlines(inl, true)));
            } else {
                // ADF has no heading in a list item: literal `# ` text.
                let mut v = vec![Inline::Text(
                    format!("{} ", "#".repeat(usize::from(level))),
                    Marks::default(),
                )];
                v.extend(inl);
                norm_block(Block::Para(v), false, out);
            }
        }
        Block::Code { lang, text } => {
            let lang = lang.trim();
            let lang = if lang
                .chars()
                .any(|c| c.is_control() || matches!(c, '`' | '\\' | '&'))
            {
                String::new()
            } else {
                lang.to_owned()
            };
            let text = text
                .replace('\0', "\u{fffd}")
                .replace("\r\n", "\n")
                .replace('\r', "\n");
            out.push(Block::Code { lang, text });
        }
        Block::List { start, items } => {
            let items: Vec<Vec<Block>> = items
                .into_iter()
                .map(|item| {
                    let mut v = Vec::new();
                    for b in item {
                        norm_block(b, false, &mut v);
                    }
                    v
                })
                .collect();
            if !items.is_empty() {
                out.push(Block::List {
                    start: start.map(|s| s.min(999_999_999)),
                    items,
                });
            }
        }
    }
}

/// Marks as flags plus an index into a link table (cheap per character).
#[derive(Clone, Copy, PartialEq, Eq)]
struct CharMarks {
    strong: bool,
    em: bool,
    strike: bool,
    code: bool,
    link: Option<usize>,
}

fn norm_inlines(inl: Vec<Inline>, heading: bool) -> Vec<Inline> {
    // Lines of (char, marks).
    let mut links: Vec<String> = Vec::new();
    let mut lines: Vec<Vec<(char, CharMarks)>> = vec![Vec::new()];
    for i in inl {
        match i {
            Inline::Break => {
                if heading {
                    lines
                        .last_mut()
                        .expect("one line at least")
                        .push((' ', no_marks()));
                } else {
                    lines.push(Vec::new());
                }
            }
            Inline::Text(t, m) => {
                let code = m.code && !t.contains('\r');
                let link = m
                    .link
                    .filter(|h| !h.is_empty() && !h.chars().any(char::is_control))
                    .map(|h| match links.iter().position(|l| *l == h) {
                        Some(p) => p,
                        None => {
                            links.push(h);
                            links.len() - 1
                        }
                    });
                let cm = CharMarks {
                    strong: m.strong && !code,
                    em: m.em && !code,
                    strike: m.strike && !code,
                    code,
                    link,
                };
                for c in t.chars() {
                    match c {
                        '\n' if !heading => lines.push(Vec::new()),
                        '\n' => lines.last_mut().expect("one line at least").push((' ', cm)),
                        '\0' => lines
                            .last_mut()
                            .expect("one line at least")
                            .push(('\u{fffd}', cm)),
                        c => lines.last_mut().expect("one line at least").push((c, cm)),
                    }
                }
            }
        }
    }
    for line in &mut lines {
        strip_edge_whitespace(line, |m| &mut m.strong);
        strip_edge_whitespace(line, |m| &mut m.em);
        strip_edge_whitespace(line, |m| &mut m.strike);
    }
    // Leading and trailing line breaks carry nothing markdown can say.
    while lines.first().is_some_and(Vec::is_empty) && lines.len() > 1 {
        lines.remove(0);
    }
    while lines.last().is_some_and(Vec::is_empty) && lines.len() > 1 {
        lines.pop();
    }
    let mut out = Vec::new();
    for (n, line) in lines.into_iter().enumerate() {
        if n > 0 {
            out.push(Inline::Break);
        }
        let mut cur: Option<(String, CharMarks)> = None;
        for (c, m) in line {
            match &mut cur {
                Some((s, cm)) if *cm == m => s.push(c),
                _ => {
                    if let Some((s, cm)) = cur.take() {
                        out.push(Inline::Text(s, to_marks(cm, &links)));
                    }
                    cur = Some((c.to_string(), m));
                }
            }
        }
        if let Some((s, cm)) = cur {
            out.push(Inline::Text(s, to_marks(cm, &links)));
        }
    }
    if out.iter().all(|i| *i == Inline::Break) {
        out.clear();
    }
    out
}

fn no_marks() -> CharMarks {
    CharMarks {
        strong: false,
        em: false,
        strike: false,
        code: false,
        link: None,
    }
}

fn to_marks(cm: CharMarks, links: &[String]) -> Marks {
    Marks {
        strong: cm.strong,
        em: cm.em,
        strike: cm.strike,
        code: cm.code,
        link: cm.link.map(|i| links[i].clone()),
    }
}

/// Emphasis cannot start or end with whitespace in markdown: the
/// whitespace at the edges of each run of `flag` loses it.
fn strip_edge_whitespace(
    line: &mut [(char, CharMarks)],
    flag: impl Fn(&mut CharMarks) -> &mut bool,
) {
    let mut i = 0;
    while i < line.len() {
        if !*flag(&mut line[i].1) {
            i += 1;
            continue;
        }
        let start = i;
        while i < line.len() && *flag(&mut line[i].1) {
            i += 1;
        }
        let end = i;
        let mut a = start;
        while a < end && line[a].0.is_whitespace() {
            *flag(&mut line[a].1) = false;
            a += 1;
        }
        let mut b = end;
        while b > a && line[b - 1].0.is_whitespace() {
            *flag(&mut line[b - 1].1) = false;
            b -= 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// The document a markdown text describes (normalised).
pub fn parse(md: &str) -> Doc {
    let events: Vec<(Event<'_>, Range<usize>)> = Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH)
        .into_offset_iter()
        .collect();
    let mut p = MdParser {
        src: md,
        events,
        pos: 0,
    };
    // Top-level blocks with the span of their content.
    let mut spans: Vec<(Vec<Block>, usize, usize)> = Vec::new();
    while p.pos < p.events.len() {
        let range = p.events[p.pos].1.clone();
        let blocks = p.block(false);
        let (s, e) = content_span(md, range);
        spans.push((blocks, s, e));
    }
    // Source no block covers (link reference definitions): literal text.
    let mut all: Vec<(Vec<Block>, usize, usize)> = Vec::new();
    let mut cursor = 0;
    for (blocks, s, e) in spans {
        push_gap(md, cursor, s, &mut all);
        cursor = cursor.max(e);
        all.push((blocks, s, e));
    }
    push_gap(md, cursor, md.len(), &mut all);

    let mut doc = Vec::new();
    let mut prev_end: Option<usize> = None;
    for (blocks, s, e) in all {
        let n = line_endings(&md[prev_end.unwrap_or(0)..s]);
        let blanks = match prev_end {
            None => n,
            Some(_) => n.saturating_sub(2),
        };
        doc.extend(std::iter::repeat_n(Block::Blank, blanks));
        // Literal blocks on consecutive lines (two HTML comments, say) stay
        // one paragraph, so their single line break survives.
        match (doc.last_mut(), blocks.as_slice()) {
            (Some(Block::Para(prev)), [Block::Para(next)]) if prev_end.is_some() && n == 1 => {
                prev.push(Inline::Break);
                prev.extend(next.iter().cloned());
            }
            _ => doc.extend(blocks),
        }
        prev_end = Some(e);
    }
    doc.extend(std::iter::repeat_n(
        Block::Blank,
        line_endings(&md[prev_end.unwrap_or(0)..]),
    ));
    normalize(doc)
}

fn push_gap(md: &str, from: usize, to: usize, all: &mut Vec<(Vec<Block>, usize, usize)>) {
    if from >= to {
        return;
    }
    let gap = &md[from..to];
    let trimmed = gap.trim();
    if trimmed.is_empty() {
        return;
    }
    let s = from + (gap.len() - gap.trim_start().len());
    let e = s + trimmed.len();
    all.push((vec![Block::Para(literal(&md[s..e]))], s, e));
}

/// A block's range without the whitespace around it.
fn content_span(md: &str, range: Range<usize>) -> (usize, usize) {
    let slice = &md[range.clone()];
    let s = range.start + (slice.len() - slice.trim_start().len());
    let e = range.start + slice.trim_end().len();
    (s, e.max(s))
}

fn line_endings(s: &str) -> usize {
    s.matches('\n').count() + s.matches('\r').count() - s.matches("\r\n").count()
}

struct MdParser<'a> {
    src: &'a str,
    events: Vec<(Event<'a>, Range<usize>)>,
    pos: usize,
}

impl MdParser<'_> {
    /// The source of `range` as literal text: trailing whitespace cut, and
    /// in a container the container's indentation (the block's column)
    /// cut from continuation lines.
    fn literal_block(&self, range: Range<usize>, nested: bool) -> Block {
        let slice = self.src[range.clone()].trim_end();
        if !nested {
            return Block::Para(literal(slice));
        }
        let line_start = self.src[..range.start].rfind('\n').map_or(0, |i| i + 1);
        let col = range.start - line_start;
        let text: Vec<&str> = slice
            .split('\n')
            .enumerate()
            .map(|(i, line)| {
                if i == 0 {
                    line
                } else {
                    let spaces = line.len() - line.trim_start_matches(' ').len();
                    &line[spaces.min(col)..]
                }
            })
            .collect();
        Block::Para(literal(&text.join("\n")))
    }

    /// Skip from a `Start` event (at `pos`) past its matching `End`.
    fn skip_element(&mut self) {
        let mut depth = 0usize;
        while self.pos < self.events.len() {
            match &self.events[self.pos].0 {
                Event::Start(_) => depth += 1,
                Event::End(_) => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.pos += 1;
            if depth == 0 {
                return;
            }
        }
    }

    /// One block at `pos` (consumed).
    fn block(&mut self, nested: bool) -> Vec<Block> {
        let (event, range) = self.events[self.pos].clone();
        match event {
            Event::Start(Tag::Paragraph) => {
                self.pos += 1;
                vec![Block::Para(self.inlines())]
            }
            Event::Start(Tag::Heading { level, .. })
                if self.src[range.clone()].trim_start().starts_with('#') =>
            {
                self.pos += 1;
                vec![Block::Heading(level as u8, self.inlines())]
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                self.pos += 1;
                let mut text = String::new();
                while self.pos < self.events.len() {
                    let (ev, _) = &self.events[self.pos];
                    self.pos += 1;
                    match ev {
                        Event::Text(t) => text.push_str(t),
                        Event::End(_) => break,
                        _ => {}
                    }
                }
                if text.ends_with('\n') {
                    text.pop();
                }
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info.trim().to_owned(),
                    CodeBlockKind::Indented => String::new(),
                };
                vec![Block::Code { lang, text }]
            }
            Event::Start(Tag::List(start)) => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.pos < self.events.len() {
                    match &self.events[self.pos].0 {
                        Event::Start(Tag::Item) => {
                            self.pos += 1;
                            items.push(self.item());
                        }
                        Event::End(_) => {
                            self.pos += 1;
                            break;
                        }
                        _ => self.pos += 1,
                    }
                }
                vec![Block::List { start, items }]
            }
            Event::Start(_) => {
                self.skip_element();
                vec![self.literal_block(range, nested)]
            }
            _ => {
                self.pos += 1;
                vec![self.literal_block(range, nested)]
            }
        }
    }

    /// A list item's blocks (after its `Start`, through its `End`). Tight
    /// items hold inline events directly: an implicit paragraph.
    fn item(&mut self) -> Vec<Block> {
        let mut blocks = Vec::new();
        while self.pos < self.events.len() {
            match &self.events[self.pos].0 {
                Event::End(TagEnd::Item) => {
                    self.pos += 1;
                    break;
                }
                ev if is_inline(ev) => {
                    blocks.push(Block::Para(self.inlines()));
                }
                _ => blocks.extend(self.block(true)),
            }
        }
        blocks
    }

    /// Inline content from `pos` up to the end of the enclosing element
    /// (its `End` consumed if it is a paragraph's or a heading's; an item's
    /// is left for [`MdParser::item`]).
    fn inlines(&mut self) -> Vec<Inline> {
        let mut out = Vec::new();
        let (mut strong, mut em, mut strike) = (0usize, 0usize, 0usize);
        let mut links: Vec<String> = Vec::new();
        let marks = |strong: usize, em: usize, strike: usize, links: &[String], code: bool| Marks {
            strong: strong > 0,
            em: em > 0,
            strike: strike > 0,
            code,
            link: links.last().cloned(),
        };
        while self.pos < self.events.len() {
            let (event, range) = self.events[self.pos].clone();
            match event {
                Event::Text(t) => out.push(Inline::Text(
                    t.to_string(),
                    marks(strong, em, strike, &links, false),
                )),
                Event::Code(t) => out.push(Inline::Text(
                    t.to_string(),
                    marks(strong, em, strike, &links, true),
                )),
                Event::SoftBreak | Event::HardBreak => out.push(Inline::Break),
                Event::InlineHtml(h) | Event::Html(h) => out.push(Inline::Text(
                    h.to_string(),
                    marks(strong, em, strike, &links, false),
                )),
                Event::Start(Tag::Strong) => strong += 1,
                Event::End(TagEnd::Strong) => strong = strong.saturating_sub(1),
                Event::Start(Tag::Emphasis) => em += 1,
                Event::End(TagEnd::Emphasis) => em = em.saturating_sub(1),
                Event::Start(Tag::Strikethrough) => strike += 1,
                Event::End(TagEnd::Strikethrough) => strike = strike.saturating_sub(1),
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    ..
                }) => links.push(if link_type == LinkType::Email {
                    format!("mailto:{dest_url}")
                } else {
                    dest_url.to_string()
                }),
                Event::End(TagEnd::Link) => {
                    links.pop();
                }
                Event::Start(Tag::Image { .. }) => {
                    self.skip_element();
                    out.push(Inline::Text(
                        self.src[range].to_owned(),
                        marks(strong, em, strike, &links, false),
                    ));
                    continue;
                }
                Event::End(TagEnd::Paragraph) | Event::End(TagEnd::Heading(_)) => {
                    self.pos += 1;
                    return out;
                }
                Event::End(_) => return out,
                Event::Start(t) if !is_inline_tag(&t) => return out,
                Event::Start(_) => {
                    self.skip_element();
                    out.push(Inline::Text(
                        self.src[range].to_owned(),
                        marks(strong, em, strike, &links, false),
                    ));
                    continue;
                }
                _ => out.push(Inline::Text(
                    self.src[range].to_owned(),
                    marks(strong, em, strike, &links, false),
                )),
            }
            self.pos += 1;
        }
        out
    }
}

fn is_inline_tag(t: &Tag<'_>) -> bool {
    matches!(
        t,
        Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Link { .. }
            | Tag::Image { .. }
            | Tag::Superscript
            | Tag::Subscript
    )
}

fn is_inline(ev: &Event<'_>) -> bool {
    match ev {
        Event::Start(t) => is_inline_tag(t),
        Event::End(_) | Event::Rule => false,
        _ => true,
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// How a rendering attempt writes text.
#[derive(Clone, Copy)]
struct Style {
    /// 0: raw; 1: markdown-active characters and line edges escaped;
    /// 2: every ASCII punctuation character escaped.
    level: u8,
    /// The emphasis delimiter.
    em: char,
}

const ATTEMPTS: [Style; 5] = [
    Style { level: 0, em: '*' },
    Style { level: 1, em: '*' },
    Style { level: 1, em: '_' },
    Style { level: 2, em: '*' },
    Style { level: 2, em: '_' },
];

/// The markdown for a document (see the module docs for the form).
pub fn render(doc: &Doc) -> String {
    let doc = normalize(doc.clone());
    for min_level in 0..=2u8 {
        let out = render_doc(&doc, min_level);
        if parse(&out) == doc {
            return out;
        }
    }
    // Blocks that read back alone but not together: as literal text.
    let flat: Doc = normalize(
        doc.iter()
            .map(|b| match b {
                Block::Blank => Block::Blank,
                b => Block::Para(literal(&render_block(b, ATTEMPTS[0], None))),
            })
            .collect(),
    );
    for min_level in 0..2u8 {
        let out = render_doc(&flat, min_level);
        if parse(&out) == flat {
            return out;
        }
    }
    render_doc(&flat, 2)
}

fn render_doc(doc: &Doc, min_level: u8) -> String {
    let mut out = String::new();
    let mut seen_block = false;
    let mut prev_list: Option<(bool, bool)> = None;
    for b in doc {
        if *b == Block::Blank {
            out.push('\n');
            continue;
        }
        if seen_block {
            out.push_str("\n\n");
        }
        seen_block = true;
        let alt = list_alt(b, prev_list);
        out.push_str(&render_checked(b, min_level, alt));
        prev_list = match b {
            Block::List { start, .. } => Some((start.is_some(), alt)),
            _ => None,
        };
    }
    out
}

/// Whether a list uses the alternative marker: it follows a list of its
/// kind that used the usual one (else the two would merge).
fn list_alt(b: &Block, prev: Option<(bool, bool)>) -> bool {
    match (b, prev) {
        (Block::List { start, .. }, Some((ordered, alt))) if start.is_some() == ordered => !alt,
        _ => false,
    }
}

/// A top-level block rendered so that it reads back as itself.
fn render_checked(b: &Block, min_level: u8, alt: bool) -> String {
    for style in ATTEMPTS.iter().filter(|s| s.level >= min_level) {
        let out = render_block(b, *style, Some(alt));
        if parse(&out) == [b.clone()] {
            return out;
        }
    }
    let stripped = strip_marks(b);
    if stripped != *b {
        return render_checked(&stripped, min_level, alt);
    }
    let flat = normalize(vec![Block::Para(literal(&render_block(
        b,
        ATTEMPTS[0],
        Some(alt),
    )))]);
    match flat.first() {
        Some(f) if *f != *b => render_checked(f, min_level, false),
        // Plain text escaped throughout always reads back (tested).
        _ => render_block(b, ATTEMPTS[4], Some(alt)),
    }
}

fn strip_marks(b: &Block) -> Block {
    let strip = |inl: &[Inline]| {
        inl.iter()
            .map(|i| match i {
                Inline::Text(t, _) => Inline::Text(t.clone(), Marks::default()),
                Inline::Break => Inline::Break,
            })
            .collect::<Vec<_>>()
    };
    let b = match b {
        Block::Para(i) => Block::Para(strip(i)),
        Block::Heading(l, i) => Block::Heading(*l, strip(i)),
        Block::List { start, items } => Block::List {
            start: *start,
            items: items
                .iter()
                .map(|item| item.iter().map(strip_marks).collect())
                .collect(),
        },
        b => b.clone(),
    };
    normalize(vec![b.clone()]).pop().unwrap_or(b)
}

/// One block's markdown. `alt` picks the list marker (`None`: usual).
fn render_block(b: &Block, style: Style, alt: Option<bool>) -> String {
    match b {
        Block::Blank => String::new(),
        Block::Para(inl) => render_inlines(inl, style, false),
        Block::Heading(level, inl) => {
            let hashes = "#".repeat(usize::from(*level));
            if inl.is_empty() {
                hashes
            } else {
                format!("{hashes} {}", render_inlines(inl, style, true))
            }
        }
        Block::Code { lang, text } => {
            let longest = longest_run(text, '`');
            let fence = "`".repeat((longest + 1).max(3));
            if text.is_empty() {
                format!("{fence}{lang}\n{fence}")
            } else {
                format!("{fence}{lang}\n{text}\n{fence}")
            }
        }
        Block::List { start, items } => {
            let alt = alt.unwrap_or(false);
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                let marker = match start {
                    Some(s) => format!("{}{}", s + i as u64, if alt { ')' } else { '.' }),
                    None => (if alt { "*" } else { "-" }).to_owned(),
                };
                let indent = " ".repeat(marker.len() + 1);
                let body = render_item(item, style);
                out.push_str(&marker);
                if !body.is_empty() {
                    out.push(' ');
                    for (n, line) in body.split('\n').enumerate() {
                        if n > 0 {
                            out.push('\n');
                            if !line.is_empty() {
                                out.push_str(&indent);
                            }
                        }
                        out.push_str(line);
                    }
                }
            }
            out
        }
    }
}

fn render_item(blocks: &[Block], style: Style) -> String {
    let mut out = String::new();
    let mut prev: Option<&Block> = None;
    let mut prev_list: Option<(bool, bool)> = None;
    for b in blocks {
        if let Some(p) = prev {
            // A list interrupts a paragraph only if it is a bullet list or
            // starts at 1, and its first item is not empty.
            let tight = matches!(p, Block::Para(_))
                && matches!(b, Block::List { start, items }
                    if matches!(start, None | Some(1)) && items.first().is_some_and(|i| !i.is_empty()));
            out.push_str(if tight { "\n" } else { "\n\n" });
        }
        let alt = list_alt(b, prev_list);
        out.push_str(&render_block(b, style, Some(alt)));
        prev_list = match b {
            Block::List { start, .. } => Some((start.is_some(), alt)),
            _ => None,
        };
        prev = Some(b);
    }
    out
}

/// `text` with `first` before its first line and `rest` before every other
/// (list items, block quotes): what ADF and storage rendering share.
pub(crate) fn prefix_lines(text: &str, first: &str, rest: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| format!("{}{line}", if i == 0 { first } else { rest }))
        .collect::<Vec<_>>()
        .join("\n")
}

fn longest_run(s: &str, c: char) -> usize {
    let mut best = 0;
    let mut cur = 0;
    for ch in s.chars() {
        if ch == c {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// A mark as it opens or closes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MarkKind {
    /// A link to this target.
    Link(String),
    /// Strong.
    Strong,
    /// Emphasis.
    Em,
    /// Strike.
    Strike,
    /// Code.
    Code,
}

fn has(m: &Marks, k: &MarkKind) -> bool {
    match k {
        MarkKind::Link(h) => m.link.as_deref() == Some(h.as_str()),
        MarkKind::Strong => m.strong,
        MarkKind::Em => m.em,
        MarkKind::Strike => m.strike,
        MarkKind::Code => m.code,
    }
}

fn kinds(m: &Marks) -> Vec<MarkKind> {
    let mut v = Vec::new();
    if let Some(h) = &m.link {
        v.push(MarkKind::Link(h.clone()));
    }
    if m.strong {
        v.push(MarkKind::Strong);
    }
    if m.em {
        v.push(MarkKind::Em);
    }
    if m.strike {
        v.push(MarkKind::Strike);
    }
    if m.code {
        v.push(MarkKind::Code);
    }
    v
}

/// Inline content as properly nested marks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// Open a mark.
    Open(MarkKind),
    /// Close the innermost open mark.
    Close(MarkKind),
    /// Text.
    Text(&'a str),
    /// A line break (every mark is closed before it).
    Break,
}

/// Nest the marks of `inl`: marks that last longer open first, code is
/// innermost, and every mark closes at a line break.
pub(crate) fn tokens(inl: &[Inline]) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut stack: Vec<MarkKind> = Vec::new();
    for (i, span) in inl.iter().enumerate() {
        match span {
            Inline::Break => {
                while let Some(k) = stack.pop() {
                    out.push(Token::Close(k));
                }
                out.push(Token::Break);
            }
            Inline::Text(t, m) => {
                let keep = stack.iter().take_while(|k| has(m, k)).count();
                while stack.len() > keep {
                    let k = stack.pop().expect("longer than keep");
                    out.push(Token::Close(k));
                }
                let mut new: Vec<MarkKind> = kinds(m)
                    .into_iter()
                    .filter(|k| !stack.contains(k))
                    .collect();
                // Code stays innermost: close it to open anything else.
                if !new.is_empty() && stack.last() == Some(&MarkKind::Code) {
                    out.push(Token::Close(MarkKind::Code));
                    stack.pop();
                    new.push(MarkKind::Code);
                }
                // Longest-lasting first; code always innermost.
                let extent = |k: &MarkKind| {
                    inl[i..]
                        .iter()
                        .take_while(|s| matches!(s, Inline::Text(_, m2) if has(m2, k)))
                        .count()
                };
                new.sort_by_key(|k| {
                    (
                        *k == MarkKind::Code,
                        std::cmp::Reverse(extent(k)),
                        match k {
                            MarkKind::Link(_) => 0,
                            MarkKind::Strong => 1,
                            MarkKind::Em => 2,
                            MarkKind::Strike => 3,
                            MarkKind::Code => 4,
                        },
                    )
                });
                for k in new {
                    out.push(Token::Open(k.clone()));
                    stack.push(k);
                }
                out.push(Token::Text(t));
            }
        }
    }
    while let Some(k) = stack.pop() {
        out.push(Token::Close(k));
    }
    out
}

fn render_inlines(inl: &[Inline], style: Style, heading: bool) -> String {
    let toks = tokens(inl);
    let mut out = String::new();
    let mut line_empty = true;
    let mut code: Option<String> = None;
    // Link text starts: (output offset, is the text exactly the target?).
    let mut link_starts: Vec<usize> = Vec::new();
    for (idx, tok) in toks.iter().enumerate() {
        match tok {
            Token::Break => {
                if style.level >= 1 && line_empty {
                    out.push('\\');
                }
                out.push('\n');
                line_empty = true;
            }
            Token::Open(MarkKind::Code) => code = Some(String::new()),
            Token::Close(MarkKind::Code) => {
                let c = code.take().unwrap_or_default();
                out.push_str(&code_span(&c));
                line_empty = false;
            }
            Token::Open(k) => {
                match k {
                    MarkKind::Link(_) => {
                        out.push('[');
                        link_starts.push(out.len());
                    }
                    MarkKind::Strong => out.push_str("**"),
                    MarkKind::Em => out.push(style.em),
                    MarkKind::Strike => out.push_str("~~"),
                    MarkKind::Code => {}
                }
                line_empty = false;
            }
            Token::Close(k) => match k {
                MarkKind::Link(href) => {
                    let start = link_starts.pop().unwrap_or(1);
                    let auto = text_between(&toks, idx).filter(|p| {
                        (p == href || format!("mailto:{p}") == *href) && autolink_ok(p)
                    });
                    match auto {
                        Some(p) => {
                            out.truncate(start - 1);
                            out.push('<');
                            out.push_str(&p);
                            out.push('>');
                        }
                        None => {
                            out.push_str("](");
                            out.push_str(&link_dest(href, style));
                            out.push(')');
                        }
                    }
                }
                MarkKind::Strong => out.push_str("**"),
                MarkKind::Em => out.push(style.em),
                MarkKind::Strike => out.push_str("~~"),
                MarkKind::Code => {}
            },
            Token::Text(t) => {
                if let Some(c) = &mut code {
                    c.push_str(t);
                    continue;
                }
                let line_end = toks[idx + 1..]
                    .iter()
                    .find(|t| !matches!(t, Token::Close(_) | Token::Open(_)))
                    .is_none_or(|t| *t == Token::Break);
                escape_text(t, style, line_empty, line_end, heading, &mut out);
                line_empty = false;
            }
        }
    }
    out
}

/// The text of a link closed at `close`, if it is one unmarked text.
fn text_between(toks: &[Token<'_>], close: usize) -> Option<String> {
    let mut i = close;
    let mut text = None;
    while i > 0 {
        i -= 1;
        match &toks[i] {
            Token::Open(MarkKind::Link(_)) => return text,
            Token::Text(t) if text.is_none() => text = Some((*t).to_owned()),
            _ => return None,
        }
    }
    None
}

fn autolink_ok(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let scheme_ok = (2..=32).contains(&scheme.len())
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    scheme_ok
        && !rest.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '\\' | '&'))
}

fn link_dest(href: &str, style: Style) -> String {
    let plain = style.level == 0
        && !href.is_empty()
        && !href.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '(' | ')' | '\\')
        });
    if plain {
        return href.to_owned();
    }
    let mut s = String::from("<");
    for c in href.chars() {
        if matches!(c, '<' | '>' | '\\' | '&') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('>');
    s
}

fn code_span(c: &str) -> String {
    let fence = "`".repeat(longest_run(c, '`') + 1);
    let pad = c.starts_with('`')
        || c.ends_with('`')
        || (c.starts_with(' ') && c.ends_with(' ') && !c.chars().all(|ch| ch == ' '));
    if pad {
        format!("{fence} {c} {fence}")
    } else {
        format!("{fence}{c}{fence}")
    }
}

fn escape_text(
    t: &str,
    style: Style,
    line_start: bool,
    line_end: bool,
    heading: bool,
    out: &mut String,
) {
    if style.level == 0 {
        out.push_str(t);
        return;
    }
    let chars: Vec<char> = t.chars().collect();
    let lead = if line_start {
        chars.iter().take_while(|c| c.is_whitespace()).count()
    } else {
        0
    };
    let trail = if line_end {
        chars[lead..]
            .iter()
            .rev()
            .take_while(|c| c.is_whitespace())
            .count()
    } else {
        0
    };
    // Digits then `.` or `)` at a line start would open an ordered list.
    let digits = if line_start {
        chars[lead..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    } else {
        0
    };
    for (i, &c) in chars.iter().enumerate() {
        let edge = i < lead || i >= chars.len() - trail;
        let first = line_start && i == lead;
        let after_digits = line_start && digits > 0 && i == lead + digits;
        if edge || c.is_control() {
            out.push_str(&format!("&#{};", c as u32));
        } else if c.is_ascii_punctuation()
            && (style.level >= 2
                || matches!(
                    c,
                    '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '&' | '~' | '!'
                )
                || first
                || (after_digits && matches!(c, '.' | ')'))
                || (heading && c == '#'))
        {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> Inline {
        Inline::Text(s.into(), Marks::default())
    }

    fn marked(s: &str, f: impl Fn(&mut Marks)) -> Inline {
        let mut m = Marks::default();
        f(&mut m);
        Inline::Text(s.into(), m)
    }

    #[test]
    fn the_subset_parses() {
        let doc = parse(
            "# Title\n\nSome **bold**, *em*, ~~gone~~, `code` and [a link](https://x.y/z).\nNext line\n\n\
             - one\n- two\n  1. three\n\n```rust\nfn main() {}\n```",
        );
        assert_eq!(
            doc,
            vec![
                Block::Heading(1, vec![t("Title")]),
                Block::Para(vec![
                    t("Some "),
                    marked("bold", |m| m.strong = true),
                    t(", "),
                    marked("em", |m| m.em = true),
                    t(", "),
                    marked("gone", |m| m.strike = true),
                    t(", "),
                    marked("code", |m| m.code = true),
                    t(" and "),
                    marked("a link", |m| m.link = Some("https://x.y/z".into())),
                    t("."),
                    Inline::Break,
                    t("Next line"),
                ]),
                Block::List {
                    start: None,
                    items: vec![
                        vec![Block::Para(vec![t("one")])],
                        vec![
                            Block::Para(vec![t("two")]),
                            Block::List {
                                start: Some(1),
                                items: vec![vec![Block::Para(vec![t("three")])]],
                            },
                        ],
                    ],
                },
                Block::Code {
                    lang: "rust".into(),
                    text: "fn main() {}".into()
                },
            ]
        );
    }

    #[test]
    fn normal_form_round_trips_exactly() {
        for md in [
            "",
            "\n",
            "a\n",
            "\na\n\n",
            "a\n\n\nb",
            "# Title\n\nSome **bold**, *em*, ~~gone~~, `code` and [a link](https://x.y/z).\nNext line",
            "- one\n- two\n  1. three\n\n* four",
            "1. a\n2. b\n\n1) c",
            "```rust\nfn main() {}\n```\n",
            "see <https://example.com/a?b=c>",
            "> quoted **x**\n> more",
            "<!-- reposix:0f3a -->",
            "text\n\n<!-- reposix:comments -->\n<!-- reposix:comment 1 -->\n",
            "---\nversion: 999\n---\n",
            "<script>alert(1)</script>",
            "| a | b |\n|---|---|\n| 1 | 2 |",
            "- [ ] task\n- [x] done",
            "![img](a.png) and <b>html</b>",
            "\\*\\*literal\\*\\*",
            "a *b **c** d* e",
            "**bold *and em***",
            "``a`b``",
        ] {
            let once = render(&parse(md));
            assert_eq!(once, md, "{md:?}");
        }
    }

    #[test]
    fn variants_normalise_once() {
        for (md, normal) in [
            ("__a__ _b_", "**a** *b*"),
            ("* a\n* b", "- a\n- b"),
            ("- a\n\n- b", "- a\n- b"),
            ("    code", "```\ncode\n```"),
            ("a  \nb", "a\nb"),
            ("# h\ntext", "# h\n\ntext"),
            ("[a][r]\n\n[r]: http://x", "[a](http://x)\n\n[r]: http://x"),
            (
                "[r]: https://e.com\n\nuse [r]",
                "[r]: https://e.com\n\nuse [r](https://e.com)",
            ),
        ] {
            let once = render(&parse(md));
            assert_eq!(once, normal, "{md:?}");
            assert_eq!(render(&parse(&once)), once, "{md:?}");
        }
    }

    #[test]
    fn typed_markdown_is_escaped() {
        let doc = vec![Block::Para(vec![t("**not bold** _x_ [a](b) `c` # d")])];
        let md = render(&doc);
        assert_eq!(md, "\\*\\*not bold\\*\\* \\_x\\_ \\[a\\](b) \\`c\\` # d");
        assert_eq!(parse(&md), doc);
        for text in [
            "# not a heading",
            "- not a list",
            "1. no",
            "    indented",
            "a\n===",
            "trailing  ",
        ] {
            let doc = normalize(vec![Block::Para(literal(text))]);
            let md = render(&doc);
            assert_eq!(parse(&md), doc, "{text:?} -> {md:?}");
        }
    }

    fn arb_inline() -> impl Strategy<Value = Inline> {
        prop_oneof![
            Just(Inline::Break),
            (
                "[ -~]{1,6}|.{1,4}",
                any::<[bool; 4]>(),
                prop::option::of("[a-z:/.()<> ]{0,8}")
            )
                .prop_map(|(s, [strong, em, strike, code], link)| Inline::Text(
                    s,
                    Marks {
                        strong,
                        em,
                        strike,
                        code,
                        link
                    }
                )),
        ]
    }

    fn arb_block() -> impl Strategy<Value = Block> {
        let leaf = prop_oneof![
            prop::collection::vec(arb_inline(), 0..6).prop_map(Block::Para),
            (1u8..7, prop::collection::vec(arb_inline(), 0..4))
                .prop_map(|(l, i)| Block::Heading(l, i)),
            ("[a-z` ]{0,6}", ".{0,20}").prop_map(|(lang, text)| Block::Code { lang, text }),
            Just(Block::Blank),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            (
                prop::option::of(0u64..12),
                prop::collection::vec(prop::collection::vec(inner, 0..3), 0..3),
            )
                .prop_map(|(start, items)| Block::List { start, items })
        })
    }

    /// What people write on a tracker: words, marks, links, lists. Each
    /// marked run is whole words. (Runs that overlap partially and so must
    /// close and reopen next to whitespace, `[a ~~b](u)~~ c~~`, cannot be
    /// written in markdown: they read back without their marks.)
    fn arb_tame_block() -> impl Strategy<Value = Block> {
        let inline = prop_oneof![
            Just(vec![Inline::Break]),
            (
                "[a-zA-Z0-9][a-z0-9 ,.:?!'-]{0,8}[a-z0-9]",
                any::<[bool; 4]>(),
                prop::option::of("https://[a-z]{1,5}\\.com/[a-z_?=&]{0,6}")
            )
                .prop_map(|(s, [strong, em, strike, code], link)| {
                    vec![
                        Inline::Text(
                            s,
                            Marks {
                                strong,
                                em,
                                strike,
                                code,
                                link,
                            },
                        ),
                        Inline::Text(" ".into(), Marks::default()),
                    ]
                }),
        ];
        // Never empty: an empty item nested in empty items is `- - -`.
        let inline = prop::collection::vec(inline, 1..6)
            .prop_map(|v| v.concat())
            .prop_filter("some text", |v| v.iter().any(|i| *i != Inline::Break));
        let leaf = prop_oneof![
            inline.clone().prop_map(Block::Para),
            (1u8..7, inline).prop_map(|(l, i)| Block::Heading(l, i)),
            ("[a-z]{0,6}", "[ -~\n]{0,20}").prop_map(|(lang, text)| Block::Code { lang, text }),
        ];
        let tree = leaf.prop_recursive(3, 24, 4, |inner| {
            (
                prop::option::of(0u64..12),
                prop::collection::vec(prop::collection::vec(inner, 1..3), 1..3),
            )
                .prop_map(|(start, items)| Block::List { start, items })
        });
        prop_oneof![4 => tree, 1 => Just(Block::Blank)]
    }

    /// Markdown-shaped text: fragments of the subset and of what is kept
    /// literal, glued with line breaks and spaces.
    fn arb_markdown() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-z ]{0,6}",
            Just("**".to_owned()),
            Just("*".to_owned()),
            Just("_".to_owned()),
            Just("~~".to_owned()),
            Just("`".to_owned()),
            Just("# ".to_owned()),
            Just("- ".to_owned()),
            Just("1. ".to_owned()),
            Just("  ".to_owned()),
            Just("    ".to_owned()),
            Just("> ".to_owned()),
            Just("```".to_owned()),
            Just("[a](http://b)".to_owned()),
            Just("<http://c>".to_owned()),
            Just("<!-- reposix:1 -->".to_owned()),
            Just("<b>".to_owned()),
            Just("\\".to_owned()),
            Just("&amp;".to_owned()),
            Just("---".to_owned()),
            Just("\n".to_owned()),
            Just("\n\n".to_owned()),
            Just("\t".to_owned()),
            Just("\r".to_owned()),
            ".{0,3}",
        ];
        prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn markdown_is_stable_after_one_normalisation(md in arb_markdown()) {
            let once = render(&parse(&md));
            prop_assert_eq!(&render(&parse(&once)), &once, "from {:?}", md);
        }

        #[test]
        fn any_text_is_stable_after_one_normalisation(md in any::<String>()) {
            let once = render(&parse(&md));
            prop_assert_eq!(&render(&parse(&once)), &once, "from {:?}", md);
        }

        #[test]
        fn any_document_renders_to_a_fixed_point(doc in prop::collection::vec(arb_block(), 0..6)) {
            let md = render(&doc);
            prop_assert_eq!(&render(&parse(&md)), &md, "from {:?}", doc);
        }

        #[test]
        fn documents_of_words_read_back_exactly(doc in prop::collection::vec(arb_tame_block(), 0..6)) {
            let md = render(&doc);
            prop_assert_eq!(parse(&md), normalize(doc.clone()), "via {:?}", md);
        }

        #[test]
        fn plain_text_reads_back(text in any::<String>()) {
            let doc = normalize(vec![Block::Para(literal(&text))]);
            let md = render(&doc);
            prop_assert_eq!(parse(&md), doc, "via {:?}", md);
        }
    }
}
