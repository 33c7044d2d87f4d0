//! Making text safe for a terminal: the one function every human-readable
//! output path goes through ([`escape`]).
//!
//! Titles, labels, comments, bodies, tracker text and remote events are
//! written by other people. Printed raw, an ESC starts a control sequence
//! (set the window title, a hyperlink, clear the screen), BEL rings, BS and
//! CR overwrite what was printed, and bidi controls such as U+202E reorder
//! the line so it reads differently from what it holds. Here every such
//! character is shown visibly escaped (`\x1b`, `\u{202e}`); `--json`
//! output stays exact (JSON escapes control characters itself).

use std::borrow::Cow;

/// Whether line breaks and tabs are kept (multi-line text such as a body)
/// or escaped too (a title or label on one line of a listing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    /// Keep `\n` and `\t`.
    Keep,
    /// Escape `\n` and `\t` as well.
    Escape,
}

/// Characters a terminal interprets rather than shows, or that reorder
/// what is shown.
fn is_unsafe(c: char, lines: Lines) -> bool {
    match c {
        '\n' | '\t' => lines == Lines::Escape,
        // C0, DEL and C1 controls (U+009B is a one-byte CSI).
        c if c.is_control() => true,
        // Bidi marks, embeddings, overrides and isolates; line and
        // paragraph separators.
        '\u{061c}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' => true,
        '\u{2028}' | '\u{2029}' => true,
        _ => false,
    }
}

/// `text` with every unsafe character shown as an escape.
pub fn escape(text: &str, lines: Lines) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c, lines)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !is_unsafe(c, lines) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// One-line text (a title, label, name): everything unsafe escaped,
/// line breaks included.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, Lines::Escape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_shown_escaped() {
        assert_eq!(
            escape("a\x1b]0;pwned\x07b\x08c\x7fd\u{202e}e\u{9b}f", Lines::Keep),
            "a\\x1b]0;pwned\\x07b\\x08c\\x7fd\\u{202e}e\\x9bf"
        );
        assert_eq!(
            escape("two\nlines\tok\r", Lines::Keep),
            "two\nlines\tok\\x0d"
        );
        assert_eq!(line("two\nlines"), "two\\x0alines");
        assert!(matches!(
            escape("plain ünïcode", Lines::Keep),
            Cow::Borrowed(_)
        ));
    }
}

/// Ask `question` on the terminal and read y/yes; false without a
/// terminal on both stdin and stderr (scripts must say `--yes`).
pub fn ask_yes_no(question: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return false;
    }
    let _ = write!(
        std::io::stderr(),
        "{} [y/N] ",
        escape(question, Lines::Escape)
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
