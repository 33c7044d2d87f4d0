//! The repository's local configuration under `.git/reposix/`: actors,
//! the default actor, attributions of agents to the people they act for.

use super::*;

impl Repo {
    /// Known actors (from `.git/reposix/actors`), sorted.
    pub fn actors(&self) -> Result<Vec<ActorId>, RepoError> {
        let path = self.reposix_dir().join("actors");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return self.io(&path, Err(e)),
        };
        let mut out: Vec<ActorId> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| ActorId::new(l.trim()))
            .collect::<Result<_, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Register an actor. Returns false if it already existed.
    pub fn add_actor(&self, actor: &ActorId) -> Result<bool, RepoError> {
        let mut all = self.actors()?;
        if all.contains(actor) {
            return Ok(false);
        }
        all.push(actor.clone());
        all.sort();
        let text: String = all.iter().map(|a| format!("{a}\n")).collect();
        self.write_file("actors", &text)?;
        Ok(true)
    }

    /// The default actor (`.git/reposix/actor`), if set.
    pub fn default_actor(&self) -> Result<Option<ActorId>, RepoError> {
        let path = self.reposix_dir().join("actor");
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(ActorId::new(t.trim())?)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => self.io(&path, Err(e)),
        }
    }

    /// Make `actor` the default (registering it if needed).
    pub fn use_actor(&self, actor: &ActorId) -> Result<(), RepoError> {
        self.add_actor(actor)?;
        self.write_file("actor", &format!("{actor}\n"))
    }

    /// The human each agent acts for (`.git/reposix/on-behalf-of`, one
    /// `AGENT HUMAN` per line): local configuration, written into an
    /// issue's log as an `on_behalf_of` event by the agent's first write
    /// there (see [`Repo::apply`]).
    pub fn attributions(&self) -> Result<BTreeMap<ActorId, ActorId>, RepoError> {
        self.read_pairs("on-behalf-of", |agent, human| {
            Ok((
                ActorId::new(agent).map_err(|e| e.to_string())?,
                ActorId::new(human).map_err(|e| e.to_string())?,
            ))
        })
    }

    /// The human `agent` acts for, if any.
    pub fn on_behalf_of(&self, agent: &ActorId) -> Result<Option<ActorId>, RepoError> {
        Ok(self.attributions()?.remove(agent))
    }

    /// Record that `agent` acts for `human` (registering the agent).
    /// Returns false if it already did.
    pub fn set_on_behalf_of(&self, agent: &ActorId, human: &ActorId) -> Result<bool, RepoError> {
        if agent == human {
            return Err(RepoError::Rejected(format!(
                "{agent} cannot act on behalf of itself"
            )));
        }
        self.add_actor(agent)?;
        let mut all = self.attributions()?;
        if all.get(agent) == Some(human) {
            return Ok(false);
        }
        all.insert(agent.clone(), human.clone());
        let text: String = all.iter().map(|(a, h)| format!("{a} {h}\n")).collect();
        self.write_file("on-behalf-of", &text)?;
        Ok(true)
    }

    pub(super) fn write_file(&self, name: &str, text: &str) -> Result<(), RepoError> {
        let path = self.reposix_dir().join(name);
        self.io(
            &path,
            crate::store::fs::write_atomic(
                &path,
                text.as_bytes(),
                crate::store::fs::Durability::Durable,
            ),
        )
    }

    /// Read `.git/reposix/<name>`, one `KEY VALUE` per line (blank lines
    /// skipped; a missing file is empty), each pair through `parse`; a
    /// line without a space or one `parse` refuses is an error naming the
    /// file and the line.
    pub(super) fn read_pairs<K: Ord, V>(
        &self,
        name: &str,
        parse: impl Fn(&str, &str) -> Result<(K, V), String>,
    ) -> Result<BTreeMap<K, V>, RepoError> {
        let path = self.reposix_dir().join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return self.io(&path, Err(e)),
        };
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let bad = |why: &str| {
                RepoError::Rejected(format!("{}: malformed line {line:?}{why}", path.display()))
            };
            let (key, value) = line.trim().split_once(' ').ok_or_else(|| bad(""))?;
            let (k, v) = parse(key, value.trim()).map_err(|e| bad(&format!(": {e}")))?;
            out.insert(k, v);
        }
        Ok(out)
    }
}
