//! Writing text in the user's editor, as `git commit` does: `$VISUAL`,
//! else `$EDITOR`, else git's `core.editor`, else `vi` on a terminal. The
//! file starts with a template; everything from the scissors line down is
//! ignored; an empty result aborts (nothing is written).

use std::io::IsTerminal;

use reposix::repo::Repo;

use super::{Exit, Failure};

/// The line below which the template's help is ignored.
pub const SCISSORS: &str = "# ------------------------ >8 ------------------------";

fn editor(repo: &Repo) -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    var("VISUAL")
        .or_else(|| var("EDITOR"))
        .or_else(|| repo.git_editor())
        .or_else(|| std::io::stdin().is_terminal().then(|| "vi".to_owned()))
}

/// Whether an editor can be opened.
pub fn available(repo: &Repo) -> bool {
    editor(repo).is_some()
}

/// Open the editor on `template` + the scissors + `help`; the text above
/// the scissors, trimmed. An empty result is an error (`aborted`).
pub fn edit(repo: &Repo, what: &str, template: &str, help: &str) -> Result<String, Failure> {
    let Some(cmd) = editor(repo) else {
        return Err(Failure::new(
            Exit::Usage,
            "usage",
            format!(
                "{what}: no text given and no editor (set VISUAL or EDITOR, or git's core.editor)"
            ),
        )
        .hint("pass the text as an argument, or `-` to read it from stdin"));
    };
    let path = repo.reposix_dir().join("EDIT_MESSAGE.md");
    let io =
        |e: std::io::Error| Failure::new(Exit::Failure, "io", format!("{}: {e}", path.display()));
    std::fs::write(&path, format!("{template}\n{SCISSORS}\n{help}")).map_err(io)?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{cmd} \"$@\""))
        .arg(&cmd)
        .arg(&path)
        .status()
        .map_err(io)?;
    if !status.success() {
        return Err(Failure::new(
            Exit::Invalid,
            "aborted",
            format!("{what}: the editor ({cmd}) exited with {status}; nothing was written"),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(io)?;
    let _ = std::fs::remove_file(&path);
    let kept = match text
        .find(&format!("{SCISSORS}\n"))
        .or_else(|| text.find(SCISSORS))
    {
        Some(i) => &text[..i],
        None => &text,
    };
    let kept = kept.trim();
    if kept.is_empty() {
        return Err(Failure::new(
            Exit::Invalid,
            "aborted",
            format!("{what}: empty text, aborted; nothing was written"),
        ));
    }
    Ok(kept.to_owned())
}

/// Split an edited issue into title (first line) and body (the rest after
/// the blank line).
pub fn title_and_body(text: &str) -> (String, String) {
    let (title, body) = text.split_once('\n').unwrap_or((text, ""));
    let body = body.trim_start_matches('\n').trim_end();
    let body = if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n")
    };
    (title.trim().to_owned(), body)
}

/// Whether stdin is a terminal (interactive use).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}
