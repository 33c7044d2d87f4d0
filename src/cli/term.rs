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

/// Whether UTF-8 `text` holds a character [`is_unsafe`] flags, by its
/// bytes (a page of comments is megabytes; decoding every character to
/// ask was most of `issue show`'s time): C0 and DEL are single bytes, C1
/// controls are `C2 80`..`C2 9F`, U+061C is `D8 9C`, U+200E/F and
/// U+2028..U+202E are `E2 80 8E/8F/A8..AE`, U+2066..U+2069 are
/// `E2 81 A6..A9`.
fn needs_escape(text: &[u8], lines: Lines) -> bool {
    let mut i = 0;
    while let Some(k) = next_suspect(&text[i..]) {
        i += k;
        let next = |n: usize| text.get(i + n).copied();
        let unsafe_here = match text[i] {
            b'\n' | b'\t' => lines == Lines::Escape,
            0xc2 => matches!(next(1), Some(0x80..=0x9f)),
            0xd8 => next(1) == Some(0x9c),
            0xe2 => matches!(
                (next(1), next(2)),
                (Some(0x80), Some(0x8e | 0x8f | 0xa8..=0xae)) | (Some(0x81), Some(0xa6..=0xa9))
            ),
            _ => true,
        };
        if unsafe_here {
            return true;
        }
        i += 1;
    }
    false
}

/// The first byte that may start an unsafe character (below 0x20, DEL,
/// or a lead byte `C2`, `D8`, `E2`), eight bytes at a time over the
/// printable ASCII that most text is.
fn next_suspect(text: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let suspect = |b: u8| b < 0x20 || b == 0x7f || b == 0xc2 || b == 0xd8 || b == 0xe2;
    let mut chunks = text.chunks_exact(8);
    let mut at = 0;
    for c in chunks.by_ref() {
        let w = u64::from_le_bytes(c.try_into().expect("BUG: eight bytes"));
        // A byte below 0x20, a byte with the high bit set, or 0x7f
        // (0x7f + 1 sets the high bit): look closer.
        let low = w.wrapping_sub(LO * 0x20) & !w & HI;
        let high_or_del = (w | w.wrapping_add(LO)) & HI;
        if low | high_or_del != 0 {
            if let Some(k) = c.iter().position(|&b| suspect(b)) {
                return Some(at + k);
            }
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| suspect(b))
        .map(|k| at + k)
}

/// `text` with every unsafe character shown as an escape.
pub fn escape(text: &str, lines: Lines) -> Cow<'_, str> {
    if !needs_escape(text.as_bytes(), lines) {
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
    fn the_byte_scan_flags_exactly_the_unsafe_characters() {
        for lines in [Lines::Keep, Lines::Escape] {
            for c in (0..0x3000u32)
                .chain(0xfff0..0x10100)
                .filter_map(char::from_u32)
            {
                let mut buf = [0u8; 4];
                let one = c.encode_utf8(&mut buf);
                // At every offset of an eight-byte word, and in the tail.
                for k in [0, 1, 5, 7, 8, 13, 17] {
                    let text = format!("{}{one}{}", "a".repeat(k), "ü-b".repeat(3));
                    assert_eq!(
                        needs_escape(text.as_bytes(), lines),
                        is_unsafe(c, lines),
                        "U+{:04X} {lines:?} at {k}",
                        c as u32
                    );
                }
            }
        }
    }

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

/// How human output is dressed for where stdout goes: colour (a terminal,
/// `NO_COLOR` unset, `CLICOLOR` not `0`; `CLICOLOR_FORCE` forces it),
/// width (`COLUMNS`, else 100 on a terminal; unlimited elsewhere) and
/// times (relative on a terminal, RFC 3339 elsewhere).
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// Stdout is a terminal.
    pub tty: bool,
    /// Emit ANSI colours.
    pub color: bool,
    /// Fit lines to this many columns.
    pub width: Option<usize>,
}

impl Style {
    /// The style for stdout.
    pub fn stdout() -> Style {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let color = var("CLICOLOR_FORCE").is_some_and(|v| v != "0")
            || (tty && var("NO_COLOR").is_none() && var("CLICOLOR").is_none_or(|v| v != "0"));
        let width =
            var("COLUMNS")
                .and_then(|c| c.parse().ok())
                .or(if tty { Some(100) } else { None });
        Style { tty, color, width }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// A status, padded to its column, coloured by workflow stage.
    pub fn status(&self, s: reposix::event::Status) -> String {
        use reposix::event::Status as S;
        let padded = format!("{:<11}", s.as_str());
        let code = match s {
            S::Open => "32",
            S::InProgress | S::InReview => "33",
            S::Done | S::WontFix => "35",
        };
        self.paint(code, &padded)
    }

    /// Secondary text (times).
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// An instant: relative on a terminal, RFC 3339 elsewhere.
    pub fn when(&self, ms: i64, now_ms: i64) -> String {
        if self.tty {
            reposix::time::relative(ms, now_ms)
        } else {
            reposix::time::format_millis(ms)
        }
    }

    /// `text` cut with `…` to fit the width once `used` columns are taken
    /// (at least 20 columns are kept).
    pub fn fit(&self, text: &str, used: usize) -> String {
        let Some(width) = self.width else {
            return text.to_owned();
        };
        let room = width.saturating_sub(used).max(20);
        if text.chars().count() <= room {
            return text.to_owned();
        }
        let mut cut: String = text.chars().take(room - 1).collect();
        cut.push('…');
        cut
    }
}

/// Write `text` through the pager when stdout is a terminal:
/// `REPOSIX_PAGER`, else `PAGER`, else `less` (with `LESS=FRX` unless set);
/// an empty value or `cat` means no pager. Returns false if no pager ran
/// (the caller prints).
pub fn page(text: &str) -> bool {
    use std::io::{IsTerminal, Write};
    if !std::io::stdout().is_terminal() {
        return false;
    }
    let pager = std::env::var("REPOSIX_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less".into());
    let pager = pager.trim();
    if pager.is_empty() || pager == "cat" {
        return false;
    }
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", pager]).stdin(std::process::Stdio::piped());
    if std::env::var_os("LESS").is_none() {
        cmd.env("LESS", "FRX");
    }
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A pager quit early closes the pipe: not an error.
        let _ = stdin.write_all(text.as_bytes());
    }
    let _ = child.wait();
    true
}
