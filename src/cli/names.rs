//! How issues are named on the command line, everywhere one is named:
//!
//! - `#N`: the issue bound to tracker issue `N` (any attached backend;
//!   ambiguous if two backends have an `N`);
//! - `NAME#N`: tracker issue `N` of the backend named `NAME`;
//! - a tracker URL (`https://github.com/o/r/issues/12`,
//!   `https://site.atlassian.net/browse/PROJ-7`, a Confluence page URL,
//!   the sim's issue URL) of an attached backend;
//! - digits alone: a tracker number when an issue is bound to one, else an
//!   id prefix;
//! - anything else: the local id or an unambiguous prefix of it.
//!
//! And back: [`tracker_refs`] gives an issue's `NAME#N` and URL for `show`
//! and `list`.

use std::collections::BTreeMap;

use serde::Serialize;

use reposix::event::IssueId;
use reposix::repo::Repo;
use reposix::tracker::{BackendKind, BackendSpec};

use super::{Exit, Failure};

/// One tracker issue an issue is bound to, for people.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TrackerRef {
    /// The local backend name (`gh`), or the backend key when no attached
    /// backend matches it.
    pub backend: String,
    /// `NAME#N`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The tracker's id.
    pub remote_id: String,
    /// Its web address, where the tracker kind has one.
    pub url: Option<String>,
}

/// Whether an event's backend key (`kind::instance`) is `spec`.
pub fn key_matches(spec: &BackendSpec, key: &str) -> bool {
    let s = spec.to_spec_string();
    let s = s.split('?').next().unwrap_or(&s);
    key.eq_ignore_ascii_case(s.trim_end_matches('/'))
}

/// The web address of tracker issue `remote_id` on `spec`.
pub fn issue_url(spec: &BackendSpec, remote_id: &str) -> Option<String> {
    let address = spec.address.split('?').next().unwrap_or(&spec.address);
    let address = address.trim_end_matches('/');
    let (site, key) = address.rsplit_once('/')?;
    Some(match spec.kind {
        BackendKind::Github => format!("https://github.com/{address}/issues/{remote_id}"),
        BackendKind::Jira => format!("{site}/browse/{remote_id}"),
        BackendKind::Confluence => format!("{site}/wiki/spaces/{key}/pages/{remote_id}"),
        BackendKind::Sim => format!("{site}/projects/{key}/issues/{remote_id}"),
    })
}

/// The references of `remotes` ((backend key, remote id) pairs).
pub fn tracker_refs(
    backends: &BTreeMap<String, BackendSpec>,
    remotes: impl IntoIterator<Item = (String, String)>,
) -> Vec<TrackerRef> {
    remotes
        .into_iter()
        .map(
            |(key, remote_id)| match backends.iter().find(|(_, s)| key_matches(s, &key)) {
                Some((name, spec)) => TrackerRef {
                    backend: name.clone(),
                    reference: format!("{name}#{remote_id}"),
                    url: issue_url(spec, &remote_id),
                    remote_id,
                },
                None => TrackerRef {
                    reference: format!("{key}#{remote_id}"),
                    backend: key,
                    url: None,
                    remote_id,
                },
            },
        )
        .collect()
}

fn not_found(what: String) -> Failure {
    Failure::new(Exit::NotFound, "not_found", what)
        .hint("run `reposix issue list` to see issues and their tracker references")
}

/// The issue `text` names (see the module header).
pub fn resolve(repo: &Repo, text: &str) -> Result<IssueId, Failure> {
    let text = text.trim();
    if text.contains("://") {
        return by_url(repo, text);
    }
    if let Some((name, n)) = text.split_once('#') {
        if name.is_empty() {
            return by_remote(repo, None, n, text);
        }
        return by_remote(repo, Some(name), n, text);
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        match by_remote(repo, None, text, text) {
            Err(f) if f.exit == Exit::NotFound => {}
            other => return other,
        }
    }
    Ok(repo.resolve(text)?)
}

fn by_url(repo: &Repo, url: &str) -> Result<IssueId, Failure> {
    let clean = url.split(['#']).next().unwrap_or(url).trim_end_matches('/');
    let path = clean.split('?').next().unwrap_or(clean);
    let candidate = clean
        .split_once("pageId=")
        .map(|(_, id)| id.split('&').next().unwrap_or(id))
        .or_else(|| path.rsplit('/').next())
        .unwrap_or("");
    for (name, spec) in repo.backends()? {
        if issue_url(&spec, candidate).is_some_and(|u| u.eq_ignore_ascii_case(path))
            || (spec.kind == BackendKind::Confluence
                && clean.contains("pageId=")
                && spec
                    .address
                    .rsplit_once('/')
                    .is_some_and(|(site, _)| clean.starts_with(site)))
        {
            return by_remote(repo, Some(&name), candidate, url);
        }
    }
    Err(not_found(format!(
        "{url} is not an issue address of an attached tracker"
    ))
    .hint("run `reposix backend list`"))
}

fn by_remote(
    repo: &Repo,
    name: Option<&str>,
    remote_id: &str,
    said: &str,
) -> Result<IssueId, Failure> {
    let backends = repo.backends()?;
    let wanted: Vec<(&String, &BackendSpec)> = match name {
        Some(n) => match backends.get_key_value(n) {
            Some(pair) => vec![pair],
            None => {
                return Err(Failure::new(
                    Exit::NotFound,
                    "not_found",
                    format!("{said}: no backend named {n}"),
                )
                .hint("run `reposix backend list`"))
            }
        },
        None => backends.iter().collect(),
    };
    let listing = repo.list()?;
    let mut found: Vec<(IssueId, String)> = Vec::new();
    for s in listing.issues.iter().filter(|s| !s.merged) {
        for (key, id) in &s.remotes {
            if id != remote_id {
                continue;
            }
            match wanted.iter().find(|(_, spec)| key_matches(spec, key)) {
                Some((n, _)) => found.push((s.id, format!("{n}#{id}"))),
                // Bound to a tracker that is no longer attached: only `#N`.
                None if name.is_none() => found.push((s.id, format!("{key}#{id}"))),
                None => {}
            }
        }
    }
    found.sort();
    found.dedup_by_key(|(id, _)| *id);
    match found.as_slice() {
        [(one, _)] => Ok(*one),
        [] => Err(not_found(format!(
            "no issue is bound to tracker issue {said}"
        ))),
        many => Err(Failure::new(
            Exit::Ambiguous,
            "ambiguous",
            format!(
                "{said} names several issues: {}",
                many.iter()
                    .map(|(_, r)| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .hint("say which tracker: NAME#N")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_per_tracker_kind() {
        let spec = |s: &str| BackendSpec::parse(s).expect("valid");
        assert_eq!(
            issue_url(&spec("github::octo/repo"), "12").as_deref(),
            Some("https://github.com/octo/repo/issues/12")
        );
        assert_eq!(
            issue_url(
                &spec("jira::https://acme.atlassian.net/PROJ?issuetype=Bug"),
                "PROJ-7"
            )
            .as_deref(),
            Some("https://acme.atlassian.net/browse/PROJ-7")
        );
        assert_eq!(
            issue_url(&spec("sim::http://127.0.0.1:7878/demo"), "3").as_deref(),
            Some("http://127.0.0.1:7878/projects/demo/issues/3")
        );
        assert!(key_matches(
            &spec("jira::https://acme.atlassian.net/PROJ?issuetype=Bug"),
            "jira::https://acme.atlassian.net/PROJ"
        ));
    }
}
