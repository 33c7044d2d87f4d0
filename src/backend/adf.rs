//! Atlassian Document Format (ADF) <-> reposix plain-text bodies.
//!
//! Writing ([`from_text`]) is lossless: one `paragraph` per line, each
//! holding at most one `text` node with the line verbatim (`<script>`,
//! `version: 999` and `---` are just characters here). An empty line is
//! an empty paragraph (`"content":[]`, which the schema allows; a text
//! node's `text` may never be empty), and the empty string is the empty
//! document (`"content":[]`). So [`to_text`]`(`[`from_text`]`(s)) == s`
//! for every string, trailing newlines included.
//!
//! Reading ([`to_text`]) accepts any ADF a person wrote in JIRA and renders
//! it to readable plain text: top-level blocks are joined with `"\n"`,
//! `hardBreak` is `"\n"`, marks are dropped, and richer nodes take a
//! markdown-like form:
//!
//! | ADF node | text |
//! |---|---|
//! | `paragraph` | its inline text |
//! | `heading` (level n) | `#`×n, space, text |
//! | `bulletList` / `orderedList` / `taskList` / `decisionList` | `- item` / `1. item` / `- [ ] item`, `- [x] item` / `- item`, nested lists indented two spaces |
//! | `codeBlock` | a ```` ``` ```` fence with the language, the code, a closing fence |
//! | `blockquote` | each line prefixed `> ` |
//! | `rule` | `---` |
//! | `table` | one line per row, cells joined with ` \| ` |
//! | `mention` / `emoji` / `status` / `date` / `inlineCard` | its display text / shortcut / label / `yyyy-mm-dd` / URL |
//! | `panel`, `expand`, layouts, extensions with content | their content |
//! | media, placeholders, unknown leaf nodes | nothing |
//!
//! Rich formatting is therefore not preserved if reposix later rewrites
//! the body: an exported body is plain paragraphs again.

use serde_json::{json, Value};

/// The ADF document for a plain-text body.
pub fn from_text(text: &str) -> Value {
    if text.is_empty() {
        return json!({"type": "doc", "version": 1, "content": []});
    }
    let content: Vec<Value> = text
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": line}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": content})
}

/// The plain text of an ADF document (`null` or a non-document is empty).
pub fn to_text(doc: &Value) -> String {
    match doc.get("content").and_then(Value::as_array) {
        Some(nodes) => render_blocks(nodes).join("\n"),
        None => doc
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    }
}

fn node_type(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or("")
}

fn children(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn attr<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    node.get("attrs").and_then(|a| a.get(name))
}

fn attr_str<'a>(node: &'a Value, name: &str) -> Option<&'a str> {
    attr(node, name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Render block nodes: one entry per block (an entry may span lines).
fn render_blocks(nodes: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for node in nodes {
        render_block(node, &mut out);
    }
    out
}

fn render_block(node: &Value, out: &mut Vec<String>) {
    match node_type(node) {
        "paragraph" => out.push(render_inline(children(node))),
        "heading" => {
            let level = attr(node, "level")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 6);
            let level = usize::try_from(level).expect("clamped to 1..=6");
            out.push(format!(
                "{} {}",
                "#".repeat(level),
                render_inline(children(node))
            ));
        }
        "codeBlock" => {
            let lang = attr_str(node, "language").unwrap_or("");
            out.push(format!("```{lang}\n{}\n```", render_inline(children(node))));
        }
        "bulletList" | "decisionList" => out.push(render_list(children(node), |_| "- ".into())),
        "orderedList" => {
            let start = attr(node, "order").and_then(Value::as_u64).unwrap_or(1);
            out.push(render_list(children(node), |i| {
                format!("{}. ", start + i as u64)
            }));
        }
        "taskList" => out.push(render_task_list(children(node))),
        "blockquote" => {
            let inner = render_blocks(children(node)).join("\n");
            out.push(prefix_lines(&inner, "> ", "> "));
        }
        "rule" => out.push("---".into()),
        "table" => {
            let rows: Vec<String> = children(node)
                .iter()
                .map(|row| {
                    children(row)
                        .iter()
                        .map(|cell| render_blocks(children(cell)).join(" "))
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect();
            out.push(rows.join("\n"));
        }
        "expand" | "nestedExpand" => {
            if let Some(title) = attr_str(node, "title") {
                out.push(title.to_owned());
            }
            out.extend(render_blocks(children(node)));
        }
        "blockCard" | "embedCard" => {
            if let Some(url) = attr_str(node, "url") {
                out.push(url.to_owned());
            }
        }
        "mediaSingle" | "mediaGroup" | "media" | "extension" => {}
        // panel, layoutSection, layoutColumn, bodiedExtension, listItem out
        // of a list, and anything unknown: their content, or their text.
        _ => {
            let kids = children(node);
            if !kids.is_empty() {
                if kids.iter().all(is_inline) {
                    out.push(render_inline(kids));
                } else {
                    out.extend(render_blocks(kids));
                }
            } else if let Some(text) = node.get("text").and_then(Value::as_str) {
                out.push(text.to_owned());
            }
        }
    }
}

fn is_inline(node: &Value) -> bool {
    matches!(
        node_type(node),
        "text"
            | "hardBreak"
            | "mention"
            | "emoji"
            | "date"
            | "status"
            | "inlineCard"
            | "placeholder"
            | "mediaInline"
            | "inlineExtension"
    )
}

fn render_list(items: &[Value], bullet: impl Fn(usize) -> String) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let b = bullet(i);
            let indent = " ".repeat(b.chars().count().min(4));
            let inner = render_blocks(children(item)).join("\n");
            prefix_lines(&inner, &b, &indent)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_task_list(items: &[Value]) -> String {
    items
        .iter()
        .map(|item| match node_type(item) {
            "taskList" => prefix_lines(&render_task_list(children(item)), "  ", "  "),
            _ => {
                let done = attr_str(item, "state") == Some("DONE");
                let b = if done { "- [x] " } else { "- [ ] " };
                prefix_lines(&render_inline(children(item)), b, "      ")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn prefix_lines(text: &str, first: &str, rest: &str) -> String {
    text.split('\n')
        .enumerate()
        .map(|(i, line)| format!("{}{line}", if i == 0 { first } else { rest }))
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_inline(nodes: &[Value]) -> String {
    let mut s = String::new();
    for node in nodes {
        match node_type(node) {
            "text" => s.push_str(node.get("text").and_then(Value::as_str).unwrap_or("")),
            "hardBreak" => s.push('\n'),
            "mention" => match attr_str(node, "text") {
                Some(t) => s.push_str(t),
                None => {
                    s.push('@');
                    s.push_str(attr_str(node, "id").unwrap_or(""));
                }
            },
            "emoji" => s.push_str(
                attr_str(node, "text")
                    .or_else(|| attr_str(node, "shortName"))
                    .unwrap_or(""),
            ),
            "status" => s.push_str(attr_str(node, "text").unwrap_or("")),
            "inlineCard" => s.push_str(attr_str(node, "url").unwrap_or("")),
            "date" => {
                if let Some(ts) = attr_str(node, "timestamp") {
                    s.push_str(&render_date(ts));
                }
            }
            "placeholder" | "mediaInline" | "inlineExtension" => {}
            _ => {
                let kids = children(node);
                if kids.iter().all(is_inline) {
                    s.push_str(&render_inline(kids));
                } else {
                    s.push_str(&render_blocks(kids).join("\n"));
                }
            }
        }
    }
    s
}

/// An ADF `date` timestamp (ms since the epoch, as a string) as `yyyy-mm-dd`.
fn render_date(ts: &str) -> String {
    match ts.parse::<i64>() {
        Ok(ms) => crate::time::format_millis(ms)[..10].to_owned(),
        Err(_) => ts.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_and_trailing_newlines() {
        assert_eq!(
            from_text(""),
            json!({"type":"doc","version":1,"content":[]})
        );
        assert_eq!(
            from_text("a\n"),
            json!({"type":"doc","version":1,"content":[
                {"type":"paragraph","content":[{"type":"text","text":"a"}]},
                {"type":"paragraph","content":[]}
            ]})
        );
        for s in [
            "",
            "\n",
            "\n\n",
            "a\n",
            "\na",
            "<script>alert(1)</script>",
            "---\nversion: 999\n---\n",
        ] {
            assert_eq!(to_text(&from_text(s)), s);
        }
        assert_eq!(to_text(&Value::Null), "");
    }

    #[test]
    fn rich_documents_render_readably() {
        let doc = json!({"type":"doc","version":1,"content":[
            {"type":"heading","attrs":{"level":2},"content":[{"type":"text","text":"Plan"}]},
            {"type":"paragraph","content":[
                {"type":"text","text":"ask "},
                {"type":"mention","attrs":{"id":"5b10","text":"@Ann"}},
                {"type":"text","text":" now","marks":[{"type":"strong"}]},
                {"type":"hardBreak"},
                {"type":"emoji","attrs":{"shortName":":smile:"}},
                {"type":"text","text":" due "},
                {"type":"date","attrs":{"timestamp":"1704067200000"}}
            ]},
            {"type":"bulletList","content":[
                {"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"one"}]}]},
                {"type":"listItem","content":[
                    {"type":"paragraph","content":[{"type":"text","text":"two"}]},
                    {"type":"orderedList","attrs":{"order":3},"content":[
                        {"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"three"}]}]}
                    ]}
                ]}
            ]},
            {"type":"codeBlock","attrs":{"language":"rust"},"content":[{"type":"text","text":"fn main() {}"}]},
            {"type":"blockquote","content":[{"type":"paragraph","content":[{"type":"text","text":"quoted"}]}]},
            {"type":"rule"},
            {"type":"taskList","attrs":{"localId":"t"},"content":[
                {"type":"taskItem","attrs":{"localId":"1","state":"DONE"},"content":[{"type":"text","text":"shipped"}]}
            ]},
            {"type":"table","content":[{"type":"tableRow","content":[
                {"type":"tableHeader","content":[{"type":"paragraph","content":[{"type":"text","text":"k"}]}]},
                {"type":"tableCell","content":[{"type":"paragraph","content":[{"type":"text","text":"v"}]}]}
            ]}]},
            {"type":"mediaSingle","content":[{"type":"media","attrs":{"id":"x","type":"file","collection":"c"}}]},
            {"type":"panel","attrs":{"panelType":"info"},"content":[{"type":"paragraph","content":[
                {"type":"status","attrs":{"text":"BLOCKED","color":"red"}},
                {"type":"text","text":" see "},
                {"type":"inlineCard","attrs":{"url":"https://example.com"}}
            ]}]}
        ]});
        assert_eq!(
            to_text(&doc),
            "## Plan\nask @Ann now\n:smile: due 2024-01-01\n- one\n- two\n  3. three\n\
             ```rust\nfn main() {}\n```\n> quoted\n---\n- [x] shipped\nk | v\n\
             BLOCKED see https://example.com"
        );
    }

    /// The ADF JSON schema, copied from the vendor into the test fixtures.
    fn schema() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/atlassian/adf-schema.json"
        );
        let text = std::fs::read_to_string(path).expect("ADF schema fixture");
        serde_json::from_str(&text).expect("ADF schema is JSON")
    }

    /// Lightweight schema check of what [`from_text`] emits: every node's
    /// `<type>_node` definition exists, names the type, lists every key we
    /// set, has its required keys present, and text is never empty.
    fn check_against_schema(defs: &Value, node: &Value) {
        let ty = node_type(node);
        let def = &defs[format!("{ty}_node")];
        assert!(def.is_object(), "no definition for ADF node {ty:?}");
        let enum_types = def["properties"]["type"]["enum"]
            .as_array()
            .expect("type enum");
        assert!(enum_types.contains(&json!(ty)), "{ty} not in its own enum");
        let obj = node.as_object().expect("node is an object");
        for key in obj.keys() {
            assert!(
                def["properties"].get(key).is_some(),
                "{ty}.{key} not in the schema"
            );
        }
        for req in def["required"].as_array().expect("required list") {
            let req = req.as_str().expect("required names are strings");
            assert!(obj.contains_key(req), "{ty} lacks required {req}");
        }
        if ty == "doc" {
            assert!(def["properties"]["version"]["enum"]
                .as_array()
                .expect("version enum")
                .contains(&node["version"]));
        }
        if ty == "text" {
            let min = def["properties"]["text"]["minLength"]
                .as_u64()
                .expect("minLength");
            assert!(node["text"].as_str().expect("text is a string").len() as u64 >= min);
        }
        for child in children(node) {
            check_against_schema(defs, child);
        }
    }

    #[test]
    fn emitted_adf_fits_the_vendor_schema() {
        let s = schema();
        let defs = &s["definitions"];
        assert_eq!(s["$ref"], "#/definitions/doc_node");
        for text in ["", "one", "a\n\nb\n", "<p>&amp;</p>\u{0}\r\t"] {
            check_against_schema(defs, &from_text(text));
        }
    }

    proptest! {
        #[test]
        fn text_adf_text_is_identity(s in any::<String>()) {
            prop_assert_eq!(to_text(&from_text(&s)), s);
        }

        #[test]
        fn line_shaped_text_is_identity(lines in proptest::collection::vec("[ -~\u{a0}-\u{3ff}\t\r<>&\"']{0,12}", 0..8)) {
            let s = lines.join("\n");
            prop_assert_eq!(to_text(&from_text(&s)), s);
        }
    }
}
