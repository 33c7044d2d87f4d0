//! Reading `git push --porcelain`.

/// The outcome git reports for one ref of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushStatus {
    /// Updated (`' '`), created (`*`) or forced (`+`).
    Pushed,
    /// Already had that value (`=`).
    UpToDate,
    /// Refused (`!`); `retryable` when fetching and merging may help
    /// (non-fast-forward, stale lease, a lock held by a concurrent push).
    Rejected {
        /// git's summary, e.g. `[rejected] (stale info)`.
        reason: String,
        /// Whether fetch, merge, push again may succeed.
        retryable: bool,
    },
    /// Anything else (`-`: deleted), not expected here.
    Other(String),
}

/// Parse `git push --porcelain` output: one `(remote ref, status)` per ref
/// line (`<flag>\t<from>:<to>\t<summary>`), ignoring `To …` and `Done`.
pub fn parse_porcelain(stdout: &str) -> Vec<(String, PushStatus)> {
    const RETRYABLE: &[&str] = &[
        "non-fast-forward",
        "stale info",
        "fetch first",
        "lock",
        "failed to update ref",
        "incorrect old value",
        "expected",
    ];
    let mut out = Vec::new();
    for line in stdout.lines() {
        let mut fields = line.splitn(3, '\t');
        let (Some(flag), Some(spec), summary) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mut chars = flag.chars();
        let (Some(flag), None) = (chars.next(), chars.next()) else {
            continue;
        };
        let Some((_, to)) = spec.split_once(':') else {
            continue;
        };
        let summary = summary.unwrap_or("").trim().to_owned();
        let status = match flag {
            ' ' | '*' | '+' => PushStatus::Pushed,
            '=' => PushStatus::UpToDate,
            '!' => {
                let lower = summary.to_ascii_lowercase();
                PushStatus::Rejected {
                    retryable: RETRYABLE.iter().any(|p| lower.contains(p)),
                    reason: summary,
                }
            }
            _ => PushStatus::Other(summary),
        };
        out.push((to.to_owned(), status));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn porcelain_lines_give_per_ref_results() {
        // `\x20`: the flag of a fast-forward is a space.
        let out = "To ../r.git\n\
            \x20\t1111111111111111111111111111111111111111:refs/reposix/issues/a\t052eedf..186dc02\n\
            *\t1111111111111111111111111111111111111111:refs/reposix/issues/b\t[new reference]\n\
            !\t1111111111111111111111111111111111111111:refs/reposix/issues/c\t[rejected] (stale info)\n\
            !\t1111111111111111111111111111111111111111:refs/reposix/issues/d\t[rejected] (non-fast-forward)\n\
            !\t1111111111111111111111111111111111111111:refs/reposix/issues/e\t[remote rejected] (pre-receive hook declined)\n\
            !\t1111111111111111111111111111111111111111:refs/reposix/issues/f\t[remote rejected] (failed to update ref)\n\
            =\t1111111111111111111111111111111111111111:refs/reposix/issues/g\t[up to date]\n\
            +\t1111111111111111111111111111111111111111:refs/reposix/issues/h\t186dc02...052eedf (forced update)\n\
            Done\n";
        let got: BTreeMap<_, _> = parse_porcelain(out).into_iter().collect();
        assert_eq!(got.len(), 8);
        let at = |k: &str| got[&format!("refs/reposix/issues/{k}")].clone();
        assert_eq!(at("a"), PushStatus::Pushed);
        assert_eq!(at("b"), PushStatus::Pushed);
        assert_eq!(at("h"), PushStatus::Pushed);
        assert_eq!(at("g"), PushStatus::UpToDate);
        let retryable = |k: &str| match at(k) {
            PushStatus::Rejected { retryable, .. } => retryable,
            other => panic!("{k}: {other:?}"),
        };
        assert!(retryable("c"));
        assert!(retryable("d"));
        assert!(!retryable("e"));
        assert!(retryable("f"));
    }
}
