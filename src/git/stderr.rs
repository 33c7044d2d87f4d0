//! What git's messages say: failure classes and the lines worth showing.

use serde::Serialize;

/// What git's message says went wrong with a remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteFailure {
    /// Could not connect (DNS, refused, unreachable network, timeout).
    Unreachable,
    /// Credentials missing or refused.
    Auth,
    /// Connected, but there is no repository there.
    NotFound,
    /// Anything else.
    Other,
}

impl std::fmt::Display for RemoteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RemoteFailure::Unreachable => "remote unreachable",
            RemoteFailure::Auth => "authentication failed",
            RemoteFailure::NotFound => "no repository there",
            RemoteFailure::Other => "git error",
        })
    }
}

/// Classify git's stderr.
pub fn classify(stderr: &str) -> RemoteFailure {
    const AUTH: &[&str] = &[
        "authentication failed",
        "permission denied",
        "terminal prompts disabled",
        "could not read username",
        "could not read password",
        "invalid username or password",
        "invalid credentials",
        "returned error: 401",
        "returned error: 403",
    ];
    const UNREACHABLE: &[&str] = &[
        "could not resolve host",
        "could not resolve hostname",
        "temporary failure in name resolution",
        "name or service not known",
        "unable to look up",
        "connection refused",
        "unable to connect",
        "failed to connect",
        "couldn't connect",
        "could not connect",
        "network is unreachable",
        "no route to host",
        "timed out",
        "connection reset",
    ];
    const NOT_FOUND: &[&str] = &[
        "does not appear to be a git repository",
        "repository not found",
        "not a git repository",
        "no such repository",
        "returned error: 404",
    ];
    let s = stderr.to_ascii_lowercase();
    let any = |pats: &[&str]| pats.iter().any(|p| s.contains(p));
    if any(AUTH) {
        RemoteFailure::Auth
    } else if any(UNREACHABLE) {
        RemoteFailure::Unreachable
    } else if any(NOT_FOUND) {
        RemoteFailure::NotFound
    } else {
        RemoteFailure::Other
    }
}

/// The lines of git's stderr that say what went wrong: its `fatal:` and
/// `error:` lines (which name the file or ref at fault) when there are
/// any, else the last few lines; never git's advice paragraphs. At most
/// six lines, joined with `; `.
pub fn error_detail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            ["fatal:", "error:", "remote: error", "remote: fatal"]
                .iter()
                .any(|p| lower.starts_with(p))
        })
        .collect();
    let chosen = if errors.is_empty() { &lines } else { &errors };
    let detail = chosen[chosen.len().saturating_sub(6)..].join("; ");
    if detail.is_empty() {
        "no message".into()
    } else {
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_reads_gits_messages() {
        assert_eq!(
            classify("fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused"),
            RemoteFailure::Unreachable
        );
        assert_eq!(
            classify("fatal: unable to access 'http://h/x/': Could not resolve host: h"),
            RemoteFailure::Unreachable
        );
        assert_eq!(
            classify("fatal: could not read Username for 'https://h': terminal prompts disabled"),
            RemoteFailure::Auth
        );
        assert_eq!(
            classify("git@h: Permission denied (publickey).\nfatal: Could not read from remote repository."),
            RemoteFailure::Auth
        );
        assert_eq!(
            classify("fatal: '/nope' does not appear to be a git repository"),
            RemoteFailure::NotFound
        );
        assert_eq!(classify("fatal: something else"), RemoteFailure::Other);
    }
}
