//! Local assignee names <-> tracker identities.
//!
//! reposix assignees are plain names (`alice`, `agent-7`). Trackers want
//! their own identities: GitHub a login, JIRA an account id (display names
//! and emails are refused). The map comes from the repository's git config,
//! one multi-valued key:
//!
//! ```text
//! git config --add reposix.identity "alice jira:557058:f00dcafe-0000"
//! git config --add reposix.identity "alice github:alice-gh"
//! ```
//!
//! Export sends the mapped identity; import turns it back into the local
//! name, so a round trip is stable. A name without an entry is sent as it
//! is (GitHub logins are often the names people use), and an identity
//! without an entry is imported as it is.
//!
//! Guarantees: the map is one-to-one per tracker kind (an entry that would
//! make it ambiguous is an error naming both entries), and parsing never
//! panics.

use super::{BackendError, BackendKind};

/// The git config key holding the entries.
pub const CONFIG_KEY: &str = "reposix.identity";

/// Local names <-> tracker identities, per tracker kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityMap {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    local: String,
    kind: BackendKind,
    remote: String,
}

impl IdentityMap {
    /// An empty map.
    pub fn new() -> IdentityMap {
        IdentityMap::default()
    }

    /// The map of config entries `<local name> <kind>:<identity>`.
    pub fn from_entries<'a>(
        lines: impl IntoIterator<Item = &'a str>,
    ) -> Result<IdentityMap, BackendError> {
        let mut map = IdentityMap::new();
        for line in lines {
            map.add_entry(line)?;
        }
        Ok(map)
    }

    /// Add one entry `<local name> <kind>:<identity>`.
    pub fn add_entry(&mut self, line: &str) -> Result<(), BackendError> {
        let bad = |why: &str| {
            BackendError::Spec(format!(
                "{CONFIG_KEY} entry {line:?}: {why} (expected \"<name> <kind>:<identity>\", \
                 e.g. \"alice jira:557058:f00d\")"
            ))
        };
        let mut parts = line.split_whitespace();
        let (Some(local), Some(target), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected two words"));
        };
        let (kind, remote) = target.split_once(':').ok_or_else(|| bad("no kind"))?;
        let kind: BackendKind = kind.parse().map_err(|_| bad("unknown tracker kind"))?;
        if remote.is_empty() {
            return Err(bad("empty identity"));
        }
        self.add(local, kind, remote)
    }

    /// Map `local` to `remote` on trackers of `kind`.
    pub fn add(
        &mut self,
        local: &str,
        kind: BackendKind,
        remote: &str,
    ) -> Result<(), BackendError> {
        for e in self.entries.iter().filter(|e| e.kind == kind) {
            if e.local == local && e.remote == remote {
                return Ok(());
            }
            if e.local == local || e.remote == remote {
                return Err(BackendError::Spec(format!(
                    "{CONFIG_KEY}: \"{local} {kind}:{remote}\" and \"{} {kind}:{}\" make the \
                     {kind} identity map ambiguous",
                    e.local, e.remote
                )));
            }
        }
        self.entries.push(Entry {
            local: local.to_owned(),
            kind,
            remote: remote.to_owned(),
        });
        Ok(())
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tracker identity of a local name, if mapped.
    pub fn to_remote(&self, kind: BackendKind, local: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.kind == kind && e.local == local)
            .map(|e| e.remote.as_str())
    }

    /// The local name of a tracker identity, if mapped.
    pub fn to_local(&self, kind: BackendKind, remote: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.kind == kind && e.remote == remote)
            .map(|e| e.local.as_str())
    }

    /// The identity to send for `local` (the name itself when unmapped).
    pub fn outgoing<'a>(&'a self, kind: BackendKind, local: &'a str) -> &'a str {
        self.to_remote(kind, local).unwrap_or(local)
    }

    /// The local name for a tracker identity (itself when unmapped).
    pub fn incoming<'a>(&'a self, kind: BackendKind, remote: &'a str) -> &'a str {
        self.to_local(kind, remote).unwrap_or(remote)
    }

    /// `(local, identity)` pairs for trackers of `kind`.
    pub fn pairs(&self, kind: BackendKind) -> Vec<(&str, &str)> {
        self.entries
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| (e.local.as_str(), e.remote.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_map_both_ways() {
        let m = IdentityMap::from_entries([
            "alice jira:557058:f00d",
            "alice github:alice-gh",
            "bob  jira:5b10ac8d82e05b22cc7d4ef5",
        ])
        .expect("valid");
        assert_eq!(m.to_remote(BackendKind::Jira, "alice"), Some("557058:f00d"));
        assert_eq!(m.to_local(BackendKind::Github, "alice-gh"), Some("alice"));
        assert_eq!(m.outgoing(BackendKind::Github, "carol"), "carol");
        assert_eq!(m.incoming(BackendKind::Jira, "557058:f00d"), "alice");
        assert_eq!(m.pairs(BackendKind::Jira).len(), 2);
    }

    #[test]
    fn bad_and_ambiguous_entries_are_errors() {
        for bad in [
            "alice",
            "alice jira",
            "alice gitlab:x",
            "alice jira:",
            "a b c",
        ] {
            assert!(IdentityMap::from_entries([bad]).is_err(), "{bad:?}");
        }
        assert!(IdentityMap::from_entries(["a jira:x", "a jira:y"]).is_err());
        assert!(IdentityMap::from_entries(["a jira:x", "b jira:x"]).is_err());
        assert!(IdentityMap::from_entries(["a jira:x", "a jira:x", "a github:x"]).is_ok());
    }
}
