//! A model-based randomized test of the projection at library speed
//! (issue 8): three replicas, two of them attached to the bundled sim,
//! random local edits, tracker-side edits over HTTP (with and without the
//! body marker, several in one second), imports and exports, and replicas
//! meeting by event-set union in random orders. After quiescing, every
//! replica holds the same state, the tracker agrees on every field it
//! holds, and every body token and comment written is there exactly once
//! unless someone who saw it deleted it.
//!
//! proptest generates the traces and shrinks a failure to a minimal one.
//! `REPOSIX_SOAK=1` runs many more cases (`REPOSIX_SOAK_CASES`, default
//! 300). `REPOSIX_MODEL_TRACE=1` prints every replica's and the tracker's
//! bodies after each step; `REPOSIX_MODEL_DEBUG=1` prints the event logs of
//! a failing run. The CLI-level checker (`model.rs`) covers processes, git remotes
//! and plain `git fetch`; this one covers the merge rules quickly.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use reposix::event::{ActorId, IssueId};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::store::EventStore;
use reposix::tracker::projection::Projection;
use reposix::tracker::sim::SimBackend;
use reposix::tracker::{Backend, BackendSpec};
use reposix_sim::{SimConfig, SimHandle};

use crate::support::TestRepo;

const CLONES: usize = 3;
/// Replicas 0 and 1 are attached to the tracker.
const ATTACHED: usize = 2;

#[derive(Clone, Debug)]
enum Step {
    /// Insert a new token (or delete a visible one) in a replica's body.
    LocalBody {
        clone: usize,
        issue: usize,
        pos: usize,
        delete: bool,
    },
    LocalTitle {
        clone: usize,
        issue: usize,
    },
    LocalLabel {
        clone: usize,
        issue: usize,
        label: usize,
        remove: bool,
    },
    LocalAssignee {
        clone: usize,
        issue: usize,
        who: usize,
        remove: bool,
    },
    LocalComment {
        clone: usize,
        issue: usize,
    },
    LocalCommentEdit {
        clone: usize,
        issue: usize,
        pick: usize,
    },
    LocalCommentDelete {
        clone: usize,
        issue: usize,
        pick: usize,
    },
    /// A tracker user edits the body over HTTP, last write wins.
    TrackerBody {
        issue: usize,
        pos: usize,
        delete: bool,
        drop_marker: bool,
    },
    TrackerTitle {
        issue: usize,
    },
    TrackerLabel {
        issue: usize,
        label: usize,
    },
    TrackerComment {
        issue: usize,
    },
    /// Replica `to` receives every event `from` has.
    Meet {
        from: usize,
        to: usize,
    },
    /// Import, export, import, as `sync --backend`.
    Backend {
        clone: usize,
    },
    /// Import only.
    Import {
        clone: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let c = 0..CLONES;
    let a = 0..ATTACHED;
    let i = 0..2usize;
    prop_oneof![
        4 => (c.clone(), i.clone(), any::<usize>(), prop::bool::weighted(0.25))
            .prop_map(|(clone, issue, pos, delete)| Step::LocalBody { clone, issue, pos, delete }),
        1 => (c.clone(), i.clone()).prop_map(|(clone, issue)| Step::LocalTitle { clone, issue }),
        1 => (c.clone(), i.clone(), 0..3usize, any::<bool>())
            .prop_map(|(clone, issue, label, remove)| Step::LocalLabel { clone, issue, label, remove }),
        1 => (c.clone(), i.clone(), 0..3usize, any::<bool>())
            .prop_map(|(clone, issue, who, remove)| Step::LocalAssignee { clone, issue, who, remove }),
        2 => (c.clone(), i.clone()).prop_map(|(clone, issue)| Step::LocalComment { clone, issue }),
        1 => (c.clone(), i.clone(), any::<usize>())
            .prop_map(|(clone, issue, pick)| Step::LocalCommentEdit { clone, issue, pick }),
        1 => (c.clone(), i.clone(), any::<usize>())
            .prop_map(|(clone, issue, pick)| Step::LocalCommentDelete { clone, issue, pick }),
        3 => (i.clone(), any::<usize>(), prop::bool::weighted(0.25), prop::bool::weighted(0.2))
            .prop_map(|(issue, pos, delete, drop_marker)| Step::TrackerBody { issue, pos, delete, drop_marker }),
        1 => i.clone().prop_map(|issue| Step::TrackerTitle { issue }),
        1 => (i.clone(), 0..3usize).prop_map(|(issue, label)| Step::TrackerLabel { issue, label }),
        1 => i.clone().prop_map(|issue| Step::TrackerComment { issue }),
        4 => (c.clone(), c.clone()).prop_map(|(from, to)| Step::Meet { from, to }),
        3 => a.clone().prop_map(|clone| Step::Backend { clone }),
        1 => a.prop_map(|clone| Step::Import { clone }),
    ]
}

const LABELS: [&str; 3] = ["bug", "ui", "p1"];
const PEOPLE: [&str; 3] = ["ann", "bo", "cy"];

struct World {
    sim: SimHandle,
    backend: SimBackend,
    clones: Vec<(TestRepo, Repo)>,
    /// The two issues: one first seen on the tracker, one created locally.
    issues: [IssueId; 2],
    /// Remote id of each issue, once known.
    remote: [Option<String>; 2],
    next: usize,
    /// Body tokens written, per issue, and the ones legitimately deleted.
    written: [BTreeSet<String>; 2],
    deleted: [BTreeSet<String>; 2],
    /// Comment texts written; each text's first version (edits are LWW
    /// per comment: of the versions of one comment, exactly one that no
    /// edit replaced survives); texts an edit replaced; first versions of
    /// deleted comments (a delete wins over every edit).
    comments: [BTreeSet<String>; 2],
    comment_root: [BTreeMap<String, String>; 2],
    comments_replaced: [BTreeSet<String>; 2],
    comments_deleted: [BTreeSet<String>; 2],
    http: reqwest::blocking::Client,
}

fn actor(i: usize) -> ActorId {
    ActorId::new(&format!("r{i}")).expect("actor")
}

/// The brackets of a token: `[` and `]`, or with `REPOSIX_MODEL_LETTERS=1`
/// (or [`LETTERS`] set in the test's thread) the letters `ɑ` and `ɒ`.
/// Brackets split glued tokens into words; letters do not, as in the CLI
/// model's tokens (`侚410侚`, of letters): two insertions a merge glued
/// together are one run of letters.
fn brackets() -> (char, char) {
    if LETTERS.with(std::cell::Cell::get) {
        ('ɑ', 'ɒ')
    } else {
        ('[', ']')
    }
}

thread_local! {
    /// Whether tokens are bracketed with letters (see [`brackets`]).
    static LETTERS: std::cell::Cell<bool> = std::cell::Cell::new(
        std::env::var("REPOSIX_MODEL_LETTERS").is_ok_and(|v| v == "1"),
    );
}

/// `word` between the brackets of a token.
fn bracketed(word: &str) -> String {
    let (open, close) = brackets();
    format!("{open}{word}{close}")
}

/// The tokens of a body, in order: every bracketed run. Concurrent inserts
/// at one place merge character-wise and may lose the space between two
/// tokens; brackets keep each token findable whatever surrounds it.
fn tokens(text: &str) -> Vec<&str> {
    let (open, close) = brackets();
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let Some(len) = rest[start..].find(close) else {
            break;
        };
        let end = start + len + close.len_utf8();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

impl World {
    fn new() -> World {
        let sim = reposix_sim::start(SimConfig {
            rate_limit: 0,
            ..SimConfig::default()
        })
        .expect("sim");
        let spec = BackendSpec::parse(&format!("sim::{}", sim.project_url("demo"))).expect("spec");
        let backend = SimBackend::new(&spec, "reposix").expect("adapter");
        let http = reqwest::blocking::Client::new();
        let resp = http
            .post(format!("{}/projects/demo/issues", sim.base_url()))
            .header("X-Reposix-Agent", "tracker-user")
            .json(&serde_json::json!({"title": "from the tracker", "body": bracketed("base")}))
            .send()
            .expect("POST");
        assert_eq!(resp.status().as_u16(), 201);
        let clones: Vec<(TestRepo, Repo)> = (0..CLONES)
            .map(|_| {
                let t = TestRepo::new();
                let r = t.open();
                (t, r)
            })
            .collect();
        let mut world = World {
            sim,
            backend,
            clones,
            issues: [IssueId::new_random(); 2],
            remote: [Some("1".into()), None],
            next: 0,
            written: Default::default(),
            deleted: Default::default(),
            comments: Default::default(),
            comment_root: Default::default(),
            comments_replaced: Default::default(),
            comments_deleted: Default::default(),
            http,
        };
        world.written[0].insert(bracketed("base"));
        world.sync_backend(0);
        let imported = world.clones[0].1.list().expect("list").issues[0].id;
        let local = world.clones[1]
            .1
            .create(
                &actor(1),
                NewIssue {
                    title: "local".into(),
                    body: bracketed("seed"),
                    ..NewIssue::default()
                },
            )
            .expect("create")
            .issue;
        world.written[1].insert(bracketed("seed"));
        world.issues = [imported, local];
        world
    }

    fn token(&mut self, kind: &str) -> String {
        self.next += 1;
        bracketed(&format!("{kind}{}", self.next))
    }

    fn has(&self, clone: usize, issue: usize) -> bool {
        self.clones[clone].1.show(self.issues[issue]).is_ok()
    }

    fn sync_backend(&mut self, clone: usize) {
        let p = Projection::new(
            self.clones[clone].1.store(),
            &self.backend,
            actor(clone),
            &|_| {},
        );
        p.import(false).expect("import");
        let report = p.export().expect("export");
        assert!(
            report.failed.is_empty(),
            "export failed: {:?}",
            report.failed
        );
        p.import(false).expect("import");
        for (n, issue) in self.issues.iter().enumerate() {
            if let Ok(state) = self.clones[clone].1.show(*issue) {
                if let Some(r) = state.remotes.first() {
                    self.remote[n] = Some(r.remote_id.clone());
                }
            }
        }
    }

    fn meet(&self, from: usize, to: usize) {
        if from == to {
            return;
        }
        let (src, dst) = (&self.clones[from].1, &self.clones[to].1);
        for issue in self.issues {
            let Ok(log) = src.load(issue) else { continue };
            let have = dst.load(issue).map(|l| l.events).unwrap_or_default();
            let missing: Vec<_> = log
                .events
                .iter()
                .filter(|(id, _)| !have.contains(id))
                .map(|(_, e)| e.seal())
                .collect();
            if !missing.is_empty() {
                dst.store().append(issue, &missing, "meet").expect("append");
            }
        }
    }

    fn tracker_get(&self, remote: &str) -> serde_json::Value {
        self.http
            .get(format!(
                "{}/projects/demo/issues/{remote}",
                self.sim.base_url()
            ))
            .header("X-Reposix-Agent", "tracker-user")
            .send()
            .expect("GET")
            .json()
            .expect("json")
    }

    fn tracker_patch(&self, remote: &str, fields: serde_json::Value) {
        let resp = self
            .http
            .patch(format!(
                "{}/projects/demo/issues/{remote}",
                self.sim.base_url()
            ))
            .header("X-Reposix-Agent", "tracker-user")
            .json(&fields)
            .send()
            .expect("PATCH");
        assert_eq!(resp.status().as_u16(), 200);
    }

    fn apply(&mut self, s: &Step) {
        match *s {
            Step::LocalBody {
                clone,
                issue,
                pos,
                delete,
            } => {
                if !self.has(clone, issue) {
                    return;
                }
                let repo = &self.clones[clone].1;
                let body = repo.show(self.issues[issue]).expect("show").body;
                let mut words: Vec<String> = tokens(&body).into_iter().map(str::to_owned).collect();
                let mut gone = None;
                let mut added = None;
                if delete && !words.is_empty() {
                    gone = Some(words.remove(pos % words.len()));
                } else {
                    let t = self.token("b");
                    words.insert(pos % (words.len() + 1), t.clone());
                    added = Some(t);
                }
                let applied = self.clones[clone].1.apply(
                    self.issues[issue],
                    &actor(clone),
                    &[Change::Body(words.join(" "))],
                );
                match applied {
                    Ok(_) => {
                        self.deleted[issue].extend(gone);
                        self.written[issue].extend(added);
                    }
                    // Imported before the issue's history reached this
                    // replica: refused, nothing written.
                    Err(e) if e.to_string().contains("cannot be edited in this clone yet") => {}
                    Err(e) => panic!("body edit: {e:?}"),
                }
            }
            Step::LocalTitle { clone, issue } => {
                if !self.has(clone, issue) {
                    return;
                }
                let t = self.token("title");
                self.clones[clone]
                    .1
                    .apply(self.issues[issue], &actor(clone), &[Change::Title(t)])
                    .expect("title");
            }
            Step::LocalLabel {
                clone,
                issue,
                label,
                remove,
            } => {
                if !self.has(clone, issue) {
                    return;
                }
                let l = LABELS[label].to_owned();
                let change = if remove {
                    Change::RemoveLabel(l)
                } else {
                    Change::AddLabel(l)
                };
                self.clones[clone]
                    .1
                    .apply(self.issues[issue], &actor(clone), &[change])
                    .expect("label");
            }
            Step::LocalAssignee {
                clone,
                issue,
                who,
                remove,
            } => {
                if !self.has(clone, issue) {
                    return;
                }
                let p = PEOPLE[who].to_owned();
                let change = if remove {
                    Change::RemoveAssignee(p)
                } else {
                    Change::AddAssignee(p)
                };
                self.clones[clone]
                    .1
                    .apply(self.issues[issue], &actor(clone), &[change])
                    .expect("assignee");
            }
            Step::LocalComment { clone, issue } => {
                if !self.has(clone, issue) {
                    return;
                }
                let t = self.token("c");
                self.comments[issue].insert(t.clone());
                self.comment_root[issue].insert(t.clone(), t.clone());
                self.clones[clone]
                    .1
                    .apply(self.issues[issue], &actor(clone), &[Change::Comment(t)])
                    .expect("comment");
            }
            Step::LocalCommentEdit { clone, issue, pick }
            | Step::LocalCommentDelete { clone, issue, pick } => {
                if !self.has(clone, issue) {
                    return;
                }
                let state = self.clones[clone].1.show(self.issues[issue]).expect("show");
                if state.comments.is_empty() {
                    return;
                }
                let c = &state.comments[pick % state.comments.len()];
                let root = self.comment_root[issue]
                    .get(&c.body)
                    .cloned()
                    .unwrap_or_else(|| c.body.clone());
                let change = if matches!(s, Step::LocalCommentEdit { .. }) {
                    let t = self.token("c");
                    self.comments[issue].insert(t.clone());
                    self.comment_root[issue].insert(t.clone(), root);
                    self.comments_replaced[issue].insert(c.body.clone());
                    Change::EditComment(c.id, t)
                } else {
                    self.comments_deleted[issue].insert(root);
                    Change::DeleteComment(c.id)
                };
                self.clones[clone]
                    .1
                    .apply(self.issues[issue], &actor(clone), &[change])
                    .expect("comment change");
            }
            Step::TrackerBody {
                issue,
                pos,
                delete,
                drop_marker,
            } => {
                let Some(remote) = self.remote[issue].clone() else {
                    return;
                };
                let raw = self.tracker_get(&remote);
                let body = raw["body"].as_str().unwrap_or_default().to_owned();
                let (text, marker) = match body.find("\n\n<!-- reposix:") {
                    Some(at) => (body[..at].to_owned(), body[at..].to_owned()),
                    None => (body, String::new()),
                };
                let mut words: Vec<String> = tokens(&text).into_iter().map(str::to_owned).collect();
                if delete && !words.is_empty() {
                    let gone = words.remove(pos % words.len());
                    self.deleted[issue].insert(gone);
                } else {
                    let t = self.token("t");
                    words.insert(pos % (words.len() + 1), t.clone());
                    self.written[issue].insert(t);
                }
                let marker = if drop_marker { String::new() } else { marker };
                self.tracker_patch(
                    &remote,
                    serde_json::json!({"body": words.join(" ") + &marker}),
                );
            }
            Step::TrackerTitle { issue } => {
                let Some(remote) = self.remote[issue].clone() else {
                    return;
                };
                let t = self.token("ttitle");
                self.tracker_patch(&remote, serde_json::json!({ "title": t }));
            }
            Step::TrackerLabel { issue, label } => {
                let Some(remote) = self.remote[issue].clone() else {
                    return;
                };
                let raw = self.tracker_get(&remote);
                let mut labels: Vec<String> = raw["labels"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let l = LABELS[label].to_owned();
                if let Some(at) = labels.iter().position(|x| *x == l) {
                    labels.remove(at);
                } else {
                    labels.push(l);
                }
                self.tracker_patch(&remote, serde_json::json!({ "labels": labels }));
            }
            Step::TrackerComment { issue } => {
                let Some(remote) = self.remote[issue].clone() else {
                    return;
                };
                let t = self.token("tc");
                self.comments[issue].insert(t.clone());
                self.comment_root[issue].insert(t.clone(), t.clone());
                let resp = self
                    .http
                    .post(format!(
                        "{}/projects/demo/issues/{remote}/comments",
                        self.sim.base_url()
                    ))
                    .header("X-Reposix-Agent", "tracker-user")
                    .json(&serde_json::json!({ "body": t }))
                    .send()
                    .expect("POST comment");
                assert_eq!(resp.status().as_u16(), 201);
            }
            Step::Meet { from, to } => self.meet(from, to),
            Step::Backend { clone } => self.sync_backend(clone),
            Step::Import { clone } => {
                Projection::new(
                    self.clones[clone].1.store(),
                    &self.backend,
                    actor(clone),
                    &|_| {},
                )
                .import(false)
                .expect("import");
            }
        }
    }

    fn quiesce(&mut self) {
        let mut last = String::new();
        for _round in 0..6 {
            for from in 0..CLONES {
                for to in 0..CLONES {
                    self.meet(from, to);
                }
            }
            for c in 0..ATTACHED {
                if std::env::var_os("REPOSIX_MODEL_TRACE").is_some() {
                    self.trace_bodies("quiesce ");
                    eprintln!("quiesce: sync_backend {c}");
                }
                self.sync_backend(c);
            }
            // A full reconcile once, so comments that did not move a
            // revision are seen too.
            Projection::new(self.clones[0].1.store(), &self.backend, actor(0), &|_| {})
                .import(true)
                .expect("reconcile");
            for from in 0..CLONES {
                for to in 0..CLONES {
                    self.meet(from, to);
                }
            }
            let now = self.snapshot(0);
            if std::env::var_os("REPOSIX_MODEL_SNAP").is_some() {
                eprintln!("SNAP {now}");
            }
            if now == last {
                return;
            }
            last = now;
        }
        if std::env::var_os("REPOSIX_MODEL_DEBUG").is_some() {
            for (n, issue) in self.issues.iter().enumerate() {
                let Ok(log) = self.clones[0].1.load(*issue) else {
                    continue;
                };
                eprintln!("--- replica 0 issue {n}");
                for (stamp, e) in log.events.ordered() {
                    eprintln!("{} {} {} {:?}", stamp.id.short(), e.actor, e.lamport, e.op);
                }
            }
        }
        panic!("did not settle in 6 rounds");
    }

    /// Every replica's body of each issue, and the tracker's.
    fn trace_bodies(&self, when: &str) {
        for (n, issue) in self.issues.iter().enumerate() {
            for (c, (_, repo)) in self.clones.iter().enumerate() {
                let state = repo.show(*issue).ok();
                let body = state.as_ref().map(|s| s.body.clone());
                let comments: Vec<String> = state
                    .iter()
                    .flat_map(|s| s.comments.iter().map(|c| c.body.clone()))
                    .collect();
                eprintln!("  {when}issue {n} replica {c}: {body:?} comments {comments:?}");
            }
            if let Some(r) = self.remote[n].clone() {
                let comments: Vec<String> = self
                    .backend
                    .comments(&r)
                    .map(|cs| cs.into_iter().map(|c| c.body).collect())
                    .unwrap_or_default();
                eprintln!(
                    "  {when}issue {n} tracker: {:?} comments {comments:?}",
                    self.tracker_get(&r)["body"]
                );
            }
        }
    }

    fn snapshot(&self, clone: usize) -> String {
        self.issues
            .iter()
            .map(|i| {
                self.clones[clone]
                    .1
                    .show(*i)
                    .map(|s| s.to_canonical_json())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn check(&self) -> Result<(), String> {
        let first = self.snapshot(0);
        for c in 1..CLONES {
            if self.snapshot(c) != first {
                return Err(format!("replica {c} differs from replica 0"));
            }
        }
        for (n, issue) in self.issues.iter().enumerate() {
            let state = self.clones[0].1.show(*issue).map_err(|e| e.to_string())?;
            let words: BTreeMap<&str, usize> =
                tokens(&state.body)
                    .into_iter()
                    .fold(BTreeMap::new(), |mut m, w| {
                        *m.entry(w).or_default() += 1;
                        m
                    });
            let mut rest = state.body.clone();
            for t in words.keys() {
                rest = rest.replace(t, "");
            }
            if !rest.trim().is_empty() {
                return Err(format!(
                    "issue {n}: a token was cut, or text came from nowhere: {:?}",
                    state.body
                ));
            }
            for t in &self.written[n] {
                let want = usize::from(!self.deleted[n].contains(t));
                let got = words.get(t.as_str()).copied().unwrap_or(0);
                if got != want {
                    return Err(format!(
                        "issue {n}: token {t} appears {got} times (want {want}) in {:?}",
                        state.body
                    ));
                }
            }
            if let Some(extra) = words.keys().find(|w| !self.written[n].contains(**w)) {
                return Err(format!(
                    "issue {n}: unknown token {extra} in {:?}",
                    state.body
                ));
            }
            let live: Vec<&str> = state.comments.iter().map(|c| c.body.as_str()).collect();
            // Per comment (its versions, by first version): none if it
            // was deleted, else exactly one version no edit replaced.
            let mut versions: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for t in &self.comments[n] {
                let root = self.comment_root[n].get(t).unwrap_or(t);
                versions.entry(root.as_str()).or_default().push(t.as_str());
            }
            for (root, vs) in &versions {
                let count = |t: &&str| live.iter().filter(|c| **c == *t).count();
                let deleted = self.comments_deleted[n].contains(*root);
                let leaves: Vec<&&str> = vs
                    .iter()
                    .filter(|t| !self.comments_replaced[n].contains(**t))
                    .collect();
                let got: usize = vs.iter().map(count).sum();
                let got_leaves: usize = leaves.iter().map(|t| count(t)).sum();
                let want = usize::from(!deleted);
                if got != want || got_leaves != want {
                    return Err(format!(
                        "issue {n}: comment {root} (versions {vs:?}) appears {got} times \
                         (want {want} of {leaves:?}): {live:?}"
                    ));
                }
            }
            let Some(remote) = state.remotes.first() else {
                continue;
            };
            if remote.gone {
                continue;
            }
            let tracker = self
                .backend
                .get(&remote.remote_id)
                .map_err(|e| e.to_string())?
                .ok_or("tracker lost the issue")?;
            if tracker.title != state.title
                || tracker.body != state.body
                || tracker.status != state.status
                || tracker.labels != state.labels
            {
                return Err(format!(
                    "issue {n}: tracker disagrees:\n tracker {:?} {:?} {:?} {:?}\n local   {:?} {:?} {:?} {:?}",
                    tracker.title, tracker.body, tracker.status, tracker.labels,
                    state.title, state.body, state.status, state.labels
                ));
            }
            let want_assignee: Vec<String> = if state
                .assignees
                .contains(&tracker.assignees.first().cloned().unwrap_or_default())
            {
                tracker.assignees.clone()
            } else {
                state.assignees.iter().take(1).cloned().collect()
            };
            if tracker.assignees != want_assignee {
                return Err(format!(
                    "issue {n}: tracker assignee {:?} for local {:?}",
                    tracker.assignees, state.assignees
                ));
            }
            let mut on_tracker: Vec<String> = self
                .backend
                .comments(&remote.remote_id)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|c| c.body)
                .collect();
            let mut here: Vec<String> = live.iter().map(|s| s.to_string()).collect();
            on_tracker.sort();
            here.sort();
            if on_tracker != here {
                return Err(format!(
                    "issue {n}: comments differ: tracker {on_tracker:?}, local {here:?}"
                ));
            }
        }
        for (c, (_, repo)) in self.clones.iter().enumerate() {
            let report = repo.fsck().map_err(|e| e.to_string())?;
            if !report.problems.is_empty() {
                return Err(format!("replica {c}: fsck: {:?}", report.problems));
            }
        }
        Ok(())
    }
}

fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut w = World::new();
    let dbg = std::env::var_os("REPOSIX_MODEL_TRACE").is_some();
    for s in steps {
        w.apply(s);
        if dbg {
            eprintln!("step {s:?}");
            w.trace_bodies("");
        }
    }
    w.quiesce();
    if dbg {
        w.trace_bodies("end ");
    }
    let r = w.check();
    if r.is_err() && std::env::var_os("REPOSIX_MODEL_DEBUG").is_some() {
        for (c, (_, repo)) in w.clones.iter().enumerate() {
            for (n, issue) in w.issues.iter().enumerate() {
                let Ok(log) = repo.load(*issue) else { continue };
                eprintln!("--- replica {c} issue {n}");
                for (stamp, e) in log.events.ordered() {
                    eprintln!("{} {} {} {:?}", stamp.id.short(), e.actor, e.lamport, e.op);
                }
            }
        }
    }
    r.map_err(TestCaseError::fail)
}

fn cases() -> u32 {
    if std::env::var_os("REPOSIX_SOAK").is_some() {
        std::env::var("REPOSIX_SOAK_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300)
    } else {
        12
    }
}

/// CI explores the same cases every run (a failure there is a regression,
/// not luck); `REPOSIX_SOAK=1` draws fresh ones, and
/// `REPOSIX_MODEL_RNG_SEED=N` picks another fixed draw.
fn rng_seed() -> proptest::test_runner::RngSeed {
    use proptest::test_runner::RngSeed;
    if let Some(n) = std::env::var("REPOSIX_MODEL_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return RngSeed::Fixed(n);
    }
    if std::env::var_os("REPOSIX_SOAK").is_some() {
        RngSeed::Random
    } else {
        RngSeed::Fixed(CI_RNG_SEED)
    }
}

/// The draw CI runs.
const CI_RNG_SEED: u64 = 1;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        rng_seed: rng_seed(),
        max_shrink_iters: 150,
        .. ProptestConfig::default()
    })]

    /// Not yet green in every draw: most draws of 12 cases pass, some
    /// still find a trace that loses or doubles a token or a comment (see
    /// the README's known gaps); it runs with `--ignored` or
    /// `REPOSIX_SOAK=1` (`REPOSIX_MODEL_RNG_SEED=N` for draw N,
    /// `REPOSIX_MODEL_LETTERS=1` for tokens of letters) until it passes,
    /// and each trace it shrinks is pinned below.
    #[test]
    #[ignore = "known gaps remain: run with --ignored (see the README)"]
    fn projection_converges_without_loss_or_duplication(steps in prop::collection::vec(step(), 10..60)) {
        run(&steps)?;
    }
}

/// The first trace the checker shrank to (a local body edit exported by
/// one replica and imported by another from an older sync point, then the
/// replicas meet): the local token came out twice.
#[test]
fn first_shrunk_trace() {
    run(&[
        Step::LocalComment { clone: 0, issue: 0 },
        Step::Backend { clone: 0 },
        Step::Backend { clone: 1 },
        Step::LocalCommentDelete {
            clone: 0,
            issue: 0,
            pick: 0,
        },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 1,
            delete: false,
        },
        Step::TrackerBody {
            issue: 1,
            pos: 7644045711098462508,
            delete: false,
            drop_marker: false,
        },
        Step::LocalTitle { clone: 2, issue: 1 },
        Step::LocalTitle { clone: 0, issue: 0 },
        Step::TrackerBody {
            issue: 1,
            pos: 7340626304773825522,
            delete: true,
            drop_marker: true,
        },
        Step::Meet { from: 2, to: 1 },
    ])
    .expect("converges");
}

/// The second shrunk trace: local edits exported together with a tracker
/// edit by one replica, then imported by another that has the local edits
/// but not the export's record: every local token came out twice.
#[test]
fn second_shrunk_trace() {
    run(&[
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 0,
            delete: false,
        },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 0,
            delete: false,
        },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 3157815780301,
            delete: false,
        },
        Step::Import { clone: 0 },
        Step::LocalCommentEdit {
            clone: 1,
            issue: 1,
            pick: 9524527166605474448,
        },
        Step::Import { clone: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 15356155386007821690,
            delete: false,
            drop_marker: false,
        },
        Step::Meet { from: 1, to: 1 },
        Step::Meet { from: 2, to: 2 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 12423420783322999707,
            delete: false,
        },
    ])
    .expect("converges");
}

/// The third shrunk trace.
#[test]
fn third_shrunk_trace() {
    run(&[
        Step::Meet { from: 1, to: 2 },
        Step::Meet { from: 1, to: 0 },
        Step::Backend { clone: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 0,
            delete: false,
            drop_marker: false,
        },
        Step::Backend { clone: 0 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 483489846934707,
            delete: false,
        },
        Step::LocalCommentDelete {
            clone: 2,
            issue: 0,
            pick: 3040756853284827410,
        },
        Step::TrackerComment { issue: 1 },
        Step::LocalAssignee {
            clone: 2,
            issue: 1,
            who: 0,
            remove: true,
        },
        Step::TrackerTitle { issue: 0 },
    ])
    .expect("converges");
}

/// The fourth shrunk trace: a replica imports an issue another replica
/// created and exported before it has that issue's `create`; the create
/// arrives by git afterwards. Deriving the tracker's text from genesis put
/// it in twice, and the next export sent it doubled.
#[test]
fn fourth_shrunk_trace() {
    run(&[
        Step::Meet { from: 1, to: 2 },
        Step::Backend { clone: 1 },
        Step::Backend { clone: 0 },
        Step::Meet { from: 2, to: 0 },
        Step::Backend { clone: 0 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 0,
            delete: false,
        },
        Step::LocalCommentDelete {
            clone: 0,
            issue: 0,
            pick: 1484744557267982,
        },
        Step::TrackerComment { issue: 1 },
        Step::LocalAssignee {
            clone: 2,
            issue: 1,
            who: 0,
            remove: true,
        },
        Step::TrackerTitle { issue: 0 },
    ])
    .expect("converges");
}

/// The fifth shrunk trace.
#[test]
fn fifth_shrunk_trace() {
    run(&[
        Step::TrackerBody {
            issue: 0,
            pos: 3323379965186030472,
            delete: false,
            drop_marker: false,
        },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 100091,
            delete: true,
        },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 9336280274032233139,
            delete: false,
        },
        Step::TrackerComment { issue: 1 },
        Step::Backend { clone: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 11884799725010610916,
            delete: false,
            drop_marker: false,
        },
        Step::Meet { from: 0, to: 0 },
        Step::Backend { clone: 0 },
        Step::Backend { clone: 1 },
        Step::Meet { from: 2, to: 0 },
    ])
    .expect("converges");
}

/// The sixth shrunk trace.
#[test]
fn sixth_shrunk_trace() {
    run(&[
        Step::LocalCommentEdit {
            clone: 0,
            issue: 0,
            pick: 500813951750987206,
        },
        Step::Meet { from: 0, to: 2 },
        Step::LocalBody {
            clone: 2,
            issue: 0,
            pos: 1604574536149873426,
            delete: false,
        },
        Step::TrackerBody {
            issue: 0,
            pos: 6705872567413990509,
            delete: false,
            drop_marker: false,
        },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 8799161338862673800,
            delete: false,
        },
        Step::LocalLabel {
            clone: 2,
            issue: 0,
            label: 2,
            remove: false,
        },
        Step::Meet { from: 0, to: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 9847913169565489861,
            delete: false,
            drop_marker: false,
        },
        Step::TrackerBody {
            issue: 1,
            pos: 1661762152359067304,
            delete: true,
            drop_marker: false,
        },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 13796387294167265002,
            delete: true,
        },
    ])
    .expect("converges");
}

/// The seventh shrunk trace.
#[test]
fn seventh_shrunk_trace() {
    run(&[
        Step::TrackerBody {
            issue: 0,
            pos: 340308207502598593,
            delete: false,
            drop_marker: false,
        },
        Step::TrackerBody {
            issue: 0,
            pos: 1207883367343067,
            delete: false,
            drop_marker: true,
        },
        Step::Meet { from: 0, to: 2 },
        Step::LocalBody {
            clone: 2,
            issue: 0,
            pos: 1604574536149873426,
            delete: false,
        },
        Step::Backend { clone: 0 },
        Step::LocalLabel {
            clone: 2,
            issue: 0,
            label: 2,
            remove: false,
        },
        Step::Meet { from: 0, to: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 9847913169565489861,
            delete: false,
            drop_marker: false,
        },
        Step::TrackerBody {
            issue: 1,
            pos: 1661762152359067304,
            delete: true,
            drop_marker: false,
        },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 13796387294167265002,
            delete: true,
        },
    ])
    .expect("converges");
}

/// The eighth shrunk trace (twins): clone 1 exports the local issue
/// (tracker #2), a tracker user deletes its marker, and clone 0, which
/// received the issue before that export, exports it again (tracker #3:
/// no marker to find #2 by). The issue ends bound to two tracker issues
/// of one backend; the first is kept and the twin retired (its comments
/// moved to the first, then deleted). It failed before twins were
/// retired (tokens or comments lost or doubled).
#[test]
fn eighth_shrunk_trace() {
    run(&[
        Step::Meet { from: 1, to: 0 },
        Step::Backend { clone: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 15379969271571495376,
            delete: false,
            drop_marker: true,
        },
        Step::LocalComment { clone: 1, issue: 1 },
        Step::Backend { clone: 0 },
        Step::TrackerTitle { issue: 0 },
        Step::TrackerTitle { issue: 1 },
        Step::Backend { clone: 0 },
        Step::Backend { clone: 0 },
        Step::TrackerBody {
            issue: 1,
            pos: 1337045242735268490,
            delete: false,
            drop_marker: false,
        },
        Step::Meet { from: 0, to: 1 },
        Step::TrackerComment { issue: 1 },
    ])
    .expect("converges");
}

/// The ninth trace (the CI draw of seed 1, shrinking stopped at 30 steps):
/// three replicas editing one local issue's body around tracker writes
/// ended with a local token twice. The tenth trace is its minimal form.
#[test]
fn ninth_shrunk_trace() {
    run(&ninth_steps()).expect("converges");
}

fn ninth_steps() -> Vec<Step> {
    vec![
        Step::Backend { clone: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 13366641415398383856,
            delete: true,
            drop_marker: true,
        },
        Step::Meet { from: 1, to: 2 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 5254298430658579574,
            delete: false,
        },
        Step::Meet { from: 2, to: 1 },
        Step::Backend { clone: 1 },
        Step::Backend { clone: 1 },
        Step::LocalBody {
            clone: 2,
            issue: 0,
            pos: 16930367236945153213,
            delete: false,
        },
        Step::TrackerBody {
            issue: 1,
            pos: 16189098849877608226,
            delete: false,
            drop_marker: false,
        },
        Step::Backend { clone: 0 },
        Step::LocalLabel {
            clone: 2,
            issue: 0,
            label: 0,
            remove: false,
        },
        Step::LocalBody {
            clone: 1,
            issue: 1,
            pos: 3570777284707065662,
            delete: false,
        },
        Step::LocalCommentEdit {
            clone: 2,
            issue: 0,
            pick: 596963543193538279,
        },
        Step::LocalTitle { clone: 2, issue: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 4046570064430784648,
            delete: false,
            drop_marker: false,
        },
        Step::LocalTitle { clone: 2, issue: 1 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 1056982783645317590,
            delete: false,
        },
        Step::Import { clone: 0 },
        Step::Backend { clone: 0 },
        Step::TrackerComment { issue: 1 },
        Step::LocalComment { clone: 2, issue: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 10495350312939876138,
            delete: false,
            drop_marker: false,
        },
        Step::Backend { clone: 0 },
        Step::TrackerBody {
            issue: 1,
            pos: 7128789465199573185,
            delete: false,
            drop_marker: false,
        },
        Step::TrackerLabel { issue: 0, label: 1 },
        Step::TrackerBody {
            issue: 0,
            pos: 5595092770314452974,
            delete: true,
            drop_marker: false,
        },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 14598047707300359512,
            delete: false,
        },
        Step::TrackerTitle { issue: 0 },
        Step::LocalCommentEdit {
            clone: 2,
            issue: 0,
            pick: 13843690284111717543,
        },
    ]
}

/// The tenth trace (shrunk by hand from the ninth): two replicas insert
/// at the start of a body the tracker emptied; their insertions merge
/// without a space (`[b1][b3]`), a replica that never synced before
/// imports the tracker's edit and exports `[t2][b1][b3]`, and the other
/// attached replica, importing that, did not recognise its own two
/// insertions in the tracker's word and derived them a second time. The
/// order of the merged insertions depends on the random issue id, so the
/// trace runs several times (it failed 8 times in 20 before the fix).
#[test]
fn tenth_shrunk_trace() {
    let steps = vec![
        Step::Backend { clone: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 13366641415398383856,
            delete: true,
            drop_marker: true,
        },
        Step::Meet { from: 1, to: 2 },
        Step::Backend { clone: 1 },
        Step::LocalBody {
            clone: 1,
            issue: 1,
            pos: 3570777284707065662,
            delete: false,
        },
        Step::TrackerBody {
            issue: 1,
            pos: 10495350312939876138,
            delete: false,
            drop_marker: false,
        },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 14598047707300359512,
            delete: false,
        },
    ];
    replays_converge(&steps, 8);
}

/// The eleventh trace (the CI draw of seed 1 after the tenth was fixed):
/// a tracker user replaces the body `[seed]` by `[t1]` after deleting it;
/// one replica derives `[seed]` → `[t1]` from the export (a typo-fix
/// diff keeping the brackets of `[seed]`), another had derived the
/// deletion, and a third inserted a token concurrently: the body came out
/// `[[b2] t1]`.
#[test]
fn eleventh_shrunk_trace() {
    let steps = vec![
        Step::Backend { clone: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 0,
            delete: true,
            drop_marker: false,
        },
        Step::Meet { from: 1, to: 2 },
        Step::Meet { from: 1, to: 0 },
        Step::Backend { clone: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 16189098849877608226,
            delete: false,
            drop_marker: false,
        },
        Step::Backend { clone: 0 },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 14598047707300359512,
            delete: false,
        },
    ];
    replays_converge(&steps, 8);
}

/// The twelfth trace: a replica deletes a local token another replica
/// inserted, while the inserter exports it and a third replica, which
/// never had it, imports it from the tracker (a second copy of the same
/// text, derived). When they meet, the deletion must win over both
/// copies: the token came back.
#[test]
fn twelfth_shrunk_trace() {
    let steps = vec![
        Step::Meet { from: 0, to: 1 },
        Step::LocalCommentDelete {
            clone: 0,
            issue: 0,
            pick: 1606913052788820325,
        },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 7658896138738661237,
            delete: false,
        },
        Step::Meet { from: 1, to: 2 },
        Step::LocalBody {
            clone: 2,
            issue: 0,
            pos: 858479384815319213,
            delete: true,
        },
        Step::LocalTitle { clone: 0, issue: 0 },
        Step::Backend { clone: 1 },
        Step::Backend { clone: 0 },
        Step::LocalCommentDelete {
            clone: 1,
            issue: 1,
            pick: 4979306784297988543,
        },
        Step::LocalBody {
            clone: 0,
            issue: 1,
            pos: 11226039170735322769,
            delete: false,
        },
    ];
    replays_converge(&steps, 4);
}

/// The thirteenth trace: a replica deletes a token it inserted, after a
/// second replica got the insertion and not the deletion. A third
/// replica, with both, exports; the second, which never saw that export's
/// record, imports the tracker's text from the issue's `create` and
/// exports again with the token. When the records meet, the newest
/// tracker text has the token, and the join brought it back.
#[test]
fn thirteenth_shrunk_trace() {
    let steps = vec![
        Step::Meet { from: 1, to: 2 },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 14963832759521102773,
            delete: false,
        },
        Step::TrackerBody {
            issue: 0,
            pos: 401820482334497612,
            delete: false,
            drop_marker: false,
        },
        Step::Meet { from: 2, to: 1 },
        Step::Meet { from: 1, to: 0 },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 1497831212444405529,
            delete: true,
        },
        Step::Meet { from: 2, to: 0 },
        Step::LocalBody {
            clone: 0,
            issue: 1,
            pos: 13613161675696034598,
            delete: false,
        },
        Step::Backend { clone: 0 },
        Step::Backend { clone: 1 },
    ];
    run(&steps).expect("converges");
}

/// The fourteenth trace (27 steps, proptest stopped shrinking): a join
/// that keeps the canonical point as the chain's (a deletion its writer
/// had not seen) was recorded again by every fold, each time dropping the
/// previous record's change too, so replicas never settled.
#[test]
fn fourteenth_shrunk_trace() {
    let steps = vec![
        Step::Meet { from: 1, to: 2 },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 16016134063256562157,
            delete: false,
        },
        Step::Backend { clone: 1 },
        Step::Meet { from: 2, to: 1 },
        Step::TrackerBody {
            issue: 1,
            pos: 10496999388800909982,
            delete: true,
            drop_marker: false,
        },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 1497831212444405529,
            delete: true,
        },
        Step::Backend { clone: 1 },
        Step::LocalBody {
            clone: 2,
            issue: 0,
            pos: 620630512954205649,
            delete: false,
        },
        Step::Meet { from: 2, to: 0 },
        Step::TrackerBody {
            issue: 1,
            pos: 16925638998665914942,
            delete: false,
            drop_marker: true,
        },
        Step::LocalBody {
            clone: 0,
            issue: 1,
            pos: 13613161675696034598,
            delete: false,
        },
        Step::Backend { clone: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 3611929367175234858,
            delete: true,
            drop_marker: false,
        },
        Step::Backend { clone: 0 },
        Step::Meet { from: 1, to: 0 },
        Step::TrackerLabel { issue: 0, label: 1 },
        Step::LocalBody {
            clone: 0,
            issue: 1,
            pos: 12134611041328111431,
            delete: false,
        },
        Step::LocalComment { clone: 2, issue: 0 },
        Step::Meet { from: 0, to: 2 },
        Step::TrackerBody {
            issue: 0,
            pos: 15177324286323273083,
            delete: false,
            drop_marker: false,
        },
        Step::TrackerComment { issue: 1 },
        Step::LocalBody {
            clone: 0,
            issue: 1,
            pos: 1106160739101296582,
            delete: false,
        },
        Step::TrackerBody {
            issue: 0,
            pos: 14463087096913361511,
            delete: false,
            drop_marker: true,
        },
        Step::Backend { clone: 1 },
        Step::Meet { from: 0, to: 0 },
        Step::LocalAssignee {
            clone: 2,
            issue: 1,
            who: 0,
            remove: false,
        },
        Step::Import { clone: 0 },
    ];
    run(&steps).expect("converges");
}

/// The fifteenth trace: a replica exports a word it has not seen deleted;
/// another replica, which has the deletion and not that export, imports a
/// later tracker edit. Its document's text (the word inserted and deleted
/// since the sync point) looked held by the tracker's text, so the import
/// derived from it and put the word back as new text. Each change since
/// the point is now checked on its own.
#[test]
fn fifteenth_shrunk_trace() {
    let steps = vec![
        Step::Meet { from: 1, to: 2 },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 14963832759521102773,
            delete: false,
        },
        Step::Backend { clone: 1 },
        Step::Meet { from: 2, to: 1 },
        Step::Meet { from: 1, to: 0 },
        Step::LocalBody {
            clone: 2,
            issue: 1,
            pos: 1497831212444405529,
            delete: true,
        },
        Step::Backend { clone: 1 },
        Step::Meet { from: 2, to: 0 },
        Step::TrackerBody {
            issue: 1,
            pos: 16925638998665914942,
            delete: false,
            drop_marker: true,
        },
        Step::Backend { clone: 0 },
        Step::LocalBody {
            clone: 0,
            issue: 1,
            pos: 1106160739101296582,
            delete: false,
        },
    ];
    run(&steps).expect("converges");
}

/// The sixteenth trace: two replicas edit the same comment concurrently
/// (one of them the tracker's copy of it). Comment edits are LWW per
/// comment: one version survives, everywhere, and the checker now expects
/// exactly that (it expected both).
#[test]
fn sixteenth_shrunk_trace() {
    let steps = vec![
        Step::LocalComment { clone: 1, issue: 1 },
        Step::Backend { clone: 1 },
        Step::Meet { from: 1, to: 2 },
        Step::LocalCommentEdit {
            clone: 1,
            issue: 1,
            pick: 0,
        },
        Step::Backend { clone: 0 },
        Step::LocalCommentEdit {
            clone: 0,
            issue: 1,
            pick: 37943226242,
        },
        Step::LocalTitle { clone: 1, issue: 0 },
        Step::TrackerTitle { issue: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 1393936672038838899,
            delete: false,
            drop_marker: false,
        },
        Step::TrackerComment { issue: 0 },
    ];
    run(&steps).expect("converges");
}

/// The seventeenth trace: a tracker user deletes `[b2]` from `[b2][t1]`
/// (two tokens glued by concurrent insertions) while a replica inserts a
/// token before it. The character diff deleted `b2][`, equal text one
/// place over, and the concurrent insertion cut the tokens (`[3] [b t1]`).
/// Then a replica whose state differed from the tracker's in spacing
/// alone did not recognise its own token there and derived it again.
/// Diffs now slide a deletion or insertion to token edges, and spacing is
/// not content when an import looks for a state the tracker holds.
#[test]
fn seventeenth_shrunk_trace() {
    let steps = vec![
        Step::Backend { clone: 1 },
        Step::TrackerBody {
            issue: 0,
            pos: 5383034123078647385,
            delete: false,
            drop_marker: false,
        },
        Step::Backend { clone: 0 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 539641394761656278,
            delete: true,
        },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 17079899815228737376,
            delete: false,
        },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 4282893165476296095,
            delete: true,
        },
        Step::Meet { from: 0, to: 1 },
        Step::Backend { clone: 1 },
        Step::TrackerBody {
            issue: 0,
            pos: 7300246747741571674,
            delete: true,
            drop_marker: false,
        },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 11639963907423728238,
            delete: false,
        },
    ];
    run(&steps).expect("converges");
}

/// Replays the trace in `REPOSIX_MODEL_STEPS_FILE` (one step a line: its
/// name, then `field=value` pairs), for shrinking a saved failure by hand.
///
/// With `REPOSIX_MODEL_SHRINK_OUT` set, shrinks it instead (proptest
/// stops early on long traces): chunks of steps, then single steps, are
/// left out while the rest still fails in one of
/// `REPOSIX_MODEL_SHRINK_TRIES` (default 3) replays (the order of
/// concurrent insertions depends on random ids); each smaller failing
/// trace is written to that file as it is found.
#[test]
#[ignore = "a tool: needs REPOSIX_MODEL_STEPS_FILE"]
fn replay_steps_file() {
    let Some(path) = std::env::var_os("REPOSIX_MODEL_STEPS_FILE") else {
        return;
    };
    let text = std::fs::read_to_string(path).expect("steps file");
    let Some(out) = std::env::var_os("REPOSIX_MODEL_SHRINK_OUT") else {
        run(&parse_steps(&text)).expect("converges");
        return;
    };
    let tries: usize = std::env::var("REPOSIX_MODEL_SHRINK_TRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let fails = |lines: &[&str]| {
        let steps = parse_steps(&lines.join("\n"));
        (0..tries).any(|_| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&steps)))
                .map_or(true, |r| r.is_err())
        })
    };
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(fails(&lines), "the trace converges: nothing to shrink");
    let mut chunk = lines.len().div_ceil(2);
    while chunk >= 1 {
        let mut i = 0;
        let mut smaller = false;
        while i < lines.len() && lines.len() > 1 {
            let mut rest = lines.clone();
            rest.drain(i..(i + chunk).min(lines.len()));
            if fails(&rest) {
                lines = rest;
                smaller = true;
                std::fs::write(&out, lines.join("\n") + "\n").expect("write the shrunk trace");
                eprintln!("shrink: {} steps", lines.len());
            } else {
                i += chunk;
            }
        }
        if !smaller {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    std::fs::write(&out, lines.join("\n") + "\n").expect("write the shrunk trace");
    eprintln!("shrink: done, {} steps", lines.len());
}

/// Replay a pinned trace (one step a line, as [`parse_steps`] reads) this
/// many times: the order of concurrent insertions depends on random ids,
/// so one replay can pass by luck.
fn converges_in_every_replay(steps: &str, replays: usize) {
    replays_converge(&parse_steps(steps), replays);
}

/// Run `steps` this many times; every run must converge.
fn replays_converge(steps: &[Step], replays: usize) {
    for _ in 0..replays {
        run(steps).expect("converges");
    }
}

/// Steps written one a line: the step's name, then `field=value` pairs
/// (`true`/`false` for flags), as the shrinking tools write them.
fn parse_steps(text: &str) -> Vec<Step> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next().expect("a step name");
            let f: BTreeMap<&str, u64> = parts
                .map(|p| {
                    let (k, v) = p.split_once('=').expect("field=value");
                    let v = match v {
                        "true" => 1,
                        "false" => 0,
                        v => v.parse().expect("a number"),
                    };
                    (k, v)
                })
                .collect();
            let u = |k: &str| f[k] as usize;
            let b = |k: &str| f[k] != 0;
            match name {
                "LocalBody" => Step::LocalBody {
                    clone: u("clone"),
                    issue: u("issue"),
                    pos: u("pos"),
                    delete: b("delete"),
                },
                "LocalTitle" => Step::LocalTitle {
                    clone: u("clone"),
                    issue: u("issue"),
                },
                "LocalLabel" => Step::LocalLabel {
                    clone: u("clone"),
                    issue: u("issue"),
                    label: u("label"),
                    remove: b("remove"),
                },
                "LocalAssignee" => Step::LocalAssignee {
                    clone: u("clone"),
                    issue: u("issue"),
                    who: u("who"),
                    remove: b("remove"),
                },
                "LocalComment" => Step::LocalComment {
                    clone: u("clone"),
                    issue: u("issue"),
                },
                "LocalCommentEdit" => Step::LocalCommentEdit {
                    clone: u("clone"),
                    issue: u("issue"),
                    pick: u("pick"),
                },
                "LocalCommentDelete" => Step::LocalCommentDelete {
                    clone: u("clone"),
                    issue: u("issue"),
                    pick: u("pick"),
                },
                "TrackerBody" => Step::TrackerBody {
                    issue: u("issue"),
                    pos: u("pos"),
                    delete: b("delete"),
                    drop_marker: b("drop_marker"),
                },
                "TrackerTitle" => Step::TrackerTitle { issue: u("issue") },
                "TrackerLabel" => Step::TrackerLabel {
                    issue: u("issue"),
                    label: u("label"),
                },
                "TrackerComment" => Step::TrackerComment { issue: u("issue") },
                "Meet" => Step::Meet {
                    from: u("from"),
                    to: u("to"),
                },
                "Backend" => Step::Backend { clone: u("clone") },
                "Import" => Step::Import { clone: u("clone") },
                other => panic!("unknown step {other}"),
            }
        })
        .collect()
}

/// Two saved failures of the library property (41 and 45 steps) that this
/// round's first twin rule failed in about half the replays: it paired
/// characters of two same-text states position by position even where one
/// state held the other's character elsewhere, and where an import's
/// diff had reused a deleted `[b1]`'s characters in `[t11]` (cutting it to
/// `t1`), and joins that removed twins by element doubled `[b15]`. Twins
/// are now copies only, counted while side by side. Four replays each.
#[test]
fn twins_are_copies_side_by_side() {
    for steps in [TWINS_A, TWINS_B] {
        converges_in_every_replay(steps, 4);
    }
}

const TWINS_A: &str = "
TrackerBody issue=0 pos=16272122111014951084 delete=true drop_marker=false
LocalCommentEdit clone=0 issue=0 pick=3645778266492596191
TrackerTitle issue=0
TrackerLabel issue=0 label=2
Backend clone=1
LocalLabel clone=2 issue=0 label=1 remove=true
LocalTitle clone=2 issue=1
Backend clone=1
TrackerTitle issue=1
LocalCommentDelete clone=1 issue=1 pick=4829423243652051102
LocalBody clone=0 issue=1 pos=5794399978862685170 delete=false
Meet from=1 to=0
Meet from=0 to=2
TrackerBody issue=0 pos=15565894673115783249 delete=false drop_marker=false
LocalBody clone=0 issue=0 pos=2592681537898573658 delete=false
LocalCommentDelete clone=1 issue=0 pick=12325663955305125975
Meet from=1 to=0
LocalBody clone=2 issue=0 pos=3698869769559612607 delete=true
Meet from=0 to=1
Meet from=2 to=0
TrackerTitle issue=0
LocalBody clone=0 issue=0 pos=6915202931205428525 delete=false
LocalBody clone=2 issue=0 pos=9176202679703176917 delete=true
LocalCommentDelete clone=2 issue=1 pick=3337985227096085391
Meet from=1 to=1
Backend clone=0
LocalBody clone=1 issue=1 pos=15249663237953413202 delete=false
LocalLabel clone=0 issue=0 label=0 remove=false
LocalBody clone=1 issue=0 pos=11815561653872703743 delete=true
TrackerComment issue=0
LocalCommentEdit clone=1 issue=1 pick=2416653862988138033
TrackerLabel issue=0 label=2
Backend clone=0
TrackerBody issue=1 pos=6725359043326211122 delete=false drop_marker=false
TrackerBody issue=0 pos=16634058191028324550 delete=false drop_marker=false
Meet from=2 to=2
Import clone=1
TrackerBody issue=0 pos=3926860203778622890 delete=false drop_marker=true
LocalComment clone=0 issue=0
LocalComment clone=2 issue=1
LocalBody clone=0 issue=0 pos=4650372899210447608 delete=false
";

const TWINS_B: &str = "
LocalCommentEdit clone=1 issue=0 pick=9852766163509779264
LocalTitle clone=2 issue=0
LocalBody clone=1 issue=0 pos=7206463696281001599 delete=false
Backend clone=1
LocalBody clone=0 issue=0 pos=764645018532801210 delete=false
LocalTitle clone=1 issue=1
Backend clone=1
TrackerComment issue=1
LocalAssignee clone=1 issue=1 who=1 remove=false
Backend clone=0
TrackerBody issue=1 pos=15295617796048663869 delete=false drop_marker=false
LocalTitle clone=1 issue=1
Backend clone=1
TrackerBody issue=1 pos=11338327146398684511 delete=false drop_marker=false
Meet from=0 to=0
Import clone=1
LocalAssignee clone=2 issue=0 who=2 remove=false
LocalComment clone=2 issue=0
LocalComment clone=2 issue=0
LocalBody clone=1 issue=0 pos=13264388133700636950 delete=true
LocalBody clone=1 issue=0 pos=5929651936879156095 delete=false
Backend clone=0
LocalComment clone=0 issue=1
TrackerTitle issue=1
TrackerTitle issue=1
Backend clone=0
Backend clone=1
Meet from=0 to=2
TrackerBody issue=0 pos=10411184314209150249 delete=false drop_marker=false
Backend clone=0
LocalBody clone=2 issue=0 pos=1609352745514145927 delete=false
LocalCommentDelete clone=0 issue=0 pick=10068686346789854992
LocalComment clone=2 issue=0
Backend clone=0
TrackerBody issue=1 pos=11979860501597862103 delete=true drop_marker=false
LocalTitle clone=2 issue=1
TrackerTitle issue=1
LocalBody clone=0 issue=1 pos=12216032558969962127 delete=false
TrackerLabel issue=1 label=2
Backend clone=1
LocalBody clone=0 issue=1 pos=7010472143935861194 delete=true
TrackerBody issue=0 pos=8482323276477718655 delete=false drop_marker=false
LocalBody clone=1 issue=0 pos=15446949865884968310 delete=false
Meet from=0 to=0
LocalBody clone=2 issue=1 pos=9654383308794556744 delete=true
";

/// The eighteenth trace (shrunk by hand from a saved proptest failure):
/// a replica's document glued a concurrent insertion to a word (`[b2][t1]`)
/// that the tracker holds apart. The import's check of the whole state's
/// text failed on the glue, so it derived from a smaller state and put
/// `[b2]` in twice. An import now checks each change since the point on
/// its own.
#[test]
fn eighteenth_shrunk_trace() {
    let steps = vec![
        Step::Import { clone: 1 },
        Step::TrackerBody {
            issue: 0,
            pos: 5961748840789101005,
            delete: false,
            drop_marker: false,
        },
        Step::Backend { clone: 0 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 8888705861665072096,
            delete: true,
        },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 17079899815228737376,
            delete: false,
        },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 4282893165476296095,
            delete: true,
        },
        Step::TrackerBody {
            issue: 0,
            pos: 11602661829494517403,
            delete: false,
            drop_marker: false,
        },
        Step::Meet { from: 1, to: 0 },
        Step::Backend { clone: 1 },
        Step::Backend { clone: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 7300246747741571674,
            delete: true,
            drop_marker: false,
        },
    ];
    run(&steps).expect("converges");
}

/// The nineteenth trace (shrunk by hand from a saved proptest failure;
/// timing-dependent, so it runs four times): a join dropped the derived
/// copy a local insertion was anchored to, which moved the insertion. The
/// change-by-change check then found the insertion not held at its place
/// on the tracker and the import derived it again. An insertion moved is
/// now judged by the state's whole text; only deletions must be held
/// change by change.
#[test]
fn nineteenth_shrunk_trace() {
    let steps = vec![
        Step::TrackerBody {
            issue: 0,
            pos: 18130719281818169205,
            delete: false,
            drop_marker: false,
        },
        Step::Backend { clone: 1 },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 4819750893041665137,
            delete: false,
        },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 11768035766583965407,
            delete: false,
        },
        Step::Import { clone: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 11506481960772720154,
            delete: false,
            drop_marker: false,
        },
    ];
    replays_converge(&steps, 4);
}

/// The twentieth trace (shrunk by hand; timing-dependent, so it runs four
/// times): a join dropped one replica's copy of `[base]`, which that
/// replica had deleted, and its diff removed the other copy's `[t1]`. The
/// two runs were next to each other, so the carry aligned them together,
/// found `[base]` unmatched and carried nothing: `[base]` came back. Runs
/// are now split by inserting change and aligned on their own when the
/// joint alignment misses them.
#[test]
fn twentieth_shrunk_trace() {
    let steps = vec![
        Step::TrackerBody {
            issue: 0,
            pos: 1053868219688875692,
            delete: false,
            drop_marker: true,
        },
        Step::Backend { clone: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 4672896277687609195,
            delete: false,
            drop_marker: false,
        },
        Step::Backend { clone: 1 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 6709267796937421141,
            delete: true,
        },
        Step::LocalBody {
            clone: 0,
            issue: 1,
            pos: 9276164475896126519,
            delete: false,
        },
    ];
    replays_converge(&steps, 4);
}

/// The twenty-first trace (a saved failure shrunk by hand from 37 steps;
/// timing-dependent, so it runs four times). One replica exports `[b1]`;
/// the other deletes `[base]` and imports the tracker's next text, deriving
/// a second copy of `[b1]`. Their join is not the tracker's text (it keeps
/// `[base]` deleted), so it was recorded at the canonical point, outside
/// the heads every later join started from. The next import's join worked
/// from the texts before it and, merged with it, put `[t2]` in twice; and
/// the import took the state with both copies of `[b1]` for one the
/// tracker holds (each change's insertion was held on its own, by the same
/// copy). Joins now start from the joins recorded before them, and a
/// state holds only if the tracker has as many copies of what its changes
/// inserted.
#[test]
fn twenty_first_shrunk_trace() {
    let steps = vec![
        Step::Meet { from: 0, to: 1 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 6915202931205428525,
            delete: false,
        },
        Step::Backend { clone: 0 },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 11815561653872703743,
            delete: true,
        },
        Step::TrackerBody {
            issue: 0,
            pos: 16634058191028324550,
            delete: false,
            drop_marker: false,
        },
        Step::Import { clone: 1 },
        Step::TrackerBody {
            issue: 0,
            pos: 3926860203778622890,
            delete: false,
            drop_marker: true,
        },
    ];
    replays_converge(&steps, 4);
}

/// The twenty-second trace (shrunk by hand from a saved failure of 37
/// steps; timing-dependent, so it runs four times). A replica inserts
/// `[b1]`; the tracker deletes `[base]` and inserts `[t3]`; another
/// replica exports `[t3][b1] `; a third deletes `[b1]` and imports that
/// text. `[b1]` came back: the import's diff replaced the glued word
/// `[t3][b1]` whole, making a second copy of `[b1]` that the deletion of
/// the first did not touch, and the deletion read as held because the
/// tracker had "replaced" the word. The diff now keeps a glued word
/// (recipe v5), and a deletion is held only where the tracker's text lost
/// the token.
#[test]
fn twenty_second_shrunk_trace() {
    let steps = vec![
        Step::Meet { from: 0, to: 2 },
        Step::LocalBody {
            clone: 2,
            issue: 0,
            pos: 7366795286508965326,
            delete: false,
        },
        Step::LocalComment { clone: 2, issue: 0 },
        Step::Meet { from: 2, to: 1 },
        Step::TrackerBody {
            issue: 0,
            pos: 8734655788940392130,
            delete: true,
            drop_marker: false,
        },
        Step::Meet { from: 1, to: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 12837396958672479196,
            delete: false,
            drop_marker: false,
        },
        Step::LocalCommentDelete {
            clone: 0,
            issue: 0,
            pick: 13833675840862591840,
        },
        Step::Backend { clone: 1 },
        Step::TrackerLabel { issue: 1, label: 0 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 15417203834510004280,
            delete: true,
        },
        Step::Backend { clone: 0 },
    ];
    replays_converge(&steps, 4);
}

/// The twenty-third trace (a saved failure of 37 steps shrunk by hand to
/// 9; timing-dependent, so it runs four times): `[b15]` twice, glued to
/// its copy. Fixed by the twenty-first trace's changes and the glued-word
/// diff; pinned on its own since it reaches them by another path.
#[test]
fn twenty_third_shrunk_trace() {
    let steps = vec![
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 2592681537898573658,
            delete: false,
        },
        Step::Meet { from: 0, to: 1 },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 6915202931205428525,
            delete: false,
        },
        Step::LocalBody {
            clone: 1,
            issue: 0,
            pos: 11815561653872703743,
            delete: true,
        },
        Step::Backend { clone: 0 },
        Step::TrackerBody {
            issue: 0,
            pos: 16634058191028324550,
            delete: false,
            drop_marker: false,
        },
        Step::Import { clone: 1 },
        Step::TrackerBody {
            issue: 0,
            pos: 3926860203778622890,
            delete: false,
            drop_marker: true,
        },
        Step::LocalBody {
            clone: 0,
            issue: 0,
            pos: 4650372899210447608,
            delete: false,
        },
    ];
    replays_converge(&steps, 4);
}

/// A saved failure shrunk by hand to 12 steps (failed in about 2 replays
/// of 3): two replicas order two concurrent insertions differently
/// (`[t1][b2]` here, `[b2] [t1]` on the tracker). One replica deletes
/// `[t1]` and then imports the tracker's text, written by a replica that
/// had not seen the deletion: from the state without the deletion, the
/// diff kept `[b2]` and moved `[t1]` (a deletion and a new copy), and the
/// concurrent deletion of the original did not reach the copy; or, in
/// other replays, the diff took `[t1]` to `[t3]` for a typo fix and the
/// deletion left `[b2]3`. Now a deletion is carried to text an import's
/// change moved, and kept tokens anchor a run before a typo fix is tried
/// (recipe v6). Four replays.
#[test]
fn a_deletion_follows_a_token_an_import_moved() {
    converges_in_every_replay(
        "
    TrackerBody issue=0 pos=1414712580962299535 delete=false drop_marker=false
    Backend clone=1
    Meet from=0 to=2
    LocalBody clone=2 issue=0 pos=7366795286508965326 delete=false
    Meet from=2 to=1
    TrackerBody issue=0 pos=8734655788940392130 delete=true drop_marker=false
    Backend clone=0
    Meet from=1 to=0
    TrackerBody issue=0 pos=12837396958672479196 delete=false drop_marker=false
    LocalBody clone=0 issue=0 pos=15417203834510004280 delete=true
    Backend clone=1
    Backend clone=0
",
        4,
    );
}

/// Library draw 5's saved failure, shrunk by hand to 19 steps (failed in
/// about half the replays). Replica 0 shows `[t9] [t1][b4] ` (two derived
/// copies of the tracker's text, joined) and deletes `[t1]`; replica 1,
/// which had not seen the deletion, exports `[t9] [t10] [b4] [t1]` from
/// its own copy. The join keeps the exporter's copy; the deletion was made
/// in the copy an earlier join kept, and that join dropped the exporter's
/// copy as a second copy of it: the dropped twin is deleted too (section
/// 6b). A carried deletion also aligned `[t1]` with `[t1` and `]` of
/// `[t10]`, leaving a fragment `0` (copies are now side by side).
#[test]
fn a_deletion_in_a_dropped_copy_survives_an_export_of_the_other() {
    converges_in_every_replay(
        "
    TrackerBody issue=0 pos=1414712580962299535 delete=false drop_marker=false
    Backend clone=1
    LocalComment clone=1 issue=0
    Meet from=0 to=2
    TrackerTitle issue=1
    LocalBody clone=2 issue=0 pos=7366795286508965326 delete=false
    LocalComment clone=2 issue=0
    TrackerBody issue=1 pos=10437663149157463601 delete=true drop_marker=false
    TrackerBody issue=1 pos=12060653765301949547 delete=true drop_marker=false
    Meet from=2 to=1
    TrackerComment issue=1
    LocalComment clone=1 issue=1
    TrackerBody issue=0 pos=8734655788940392130 delete=true drop_marker=false
    TrackerBody issue=0 pos=5799460331252658130 delete=false drop_marker=false
    Import clone=0
    Meet from=1 to=0
    TrackerBody issue=0 pos=12837396958672479196 delete=false drop_marker=false
    Backend clone=1
    LocalBody clone=0 issue=0 pos=15417203834510004280 delete=true
",
        4,
    );
}

/// Library draw 15, shrunk to 10 steps: a clone writes `[b1]` then `[b4]`
/// and pushes; another clone imports the tracker's new text, deletes
/// `[b1]` and exports `[b4] [base] [t2] [t3]`. The first clone, which has
/// seen neither, imports that text. Its edits were not all held (the
/// tracker lacks `[b1]`), so it derived from the old sync point and
/// `[b4]` came in a second time, then went to the tracker. The tracker
/// holding `[b4]` means its writer had `[b4]`'s change and so `[b1]`'s
/// (its history): `[b1]` was deleted there, not missed.
#[test]
fn an_edit_the_tracker_holds_vouches_for_its_history() {
    converges_in_every_replay(
        "
    LocalBody clone=0 issue=0 pos=3689124325228565180 delete=false
    TrackerBody issue=0 pos=806724654974651215 delete=false drop_marker=false
    TrackerBody issue=0 pos=10571536942190633618 delete=false drop_marker=false
    LocalBody clone=0 issue=0 pos=12800900436577119568 delete=false
    Meet from=0 to=1
    Import clone=1
    LocalBody clone=1 issue=0 pos=13917081821704731695 delete=true
    Backend clone=1
    Backend clone=0
    Meet from=0 to=2
",
        4,
    );
}

/// Library draw 18, shrunk to 10 steps: two clones respace `[seed]
/// [b2][t1]` concurrently (an import and a body edit that inserts `[b5]`),
/// so the merged text the tracker gets has a doubled space. The other clone
/// then imports it: the edit that inserted `[b5]` had also removed a space
/// the tracker's text still has, so it counted as not held, the import
/// derived from the old point and `[b5]` came in twice. Respacing a word
/// deletes none of its tokens: only words an edit lost must be lost in the
/// tracker's text.
#[test]
fn a_respacing_the_tracker_merged_differently_is_still_held() {
    converges_in_every_replay(
        "
    Backend clone=1
    TrackerBody issue=1 pos=7450327240269611489 delete=false drop_marker=false
    LocalBody clone=1 issue=1 pos=996511926850575263 delete=false
    Meet from=1 to=0
    LocalComment clone=0 issue=1
    Backend clone=0
    TrackerBody issue=1 pos=7511116520849730588 delete=false drop_marker=false
    LocalBody clone=0 issue=1 pos=12792052729019523028 delete=false
    Meet from=0 to=0
    LocalCommentEdit clone=0 issue=1 pick=12597331999900604095
",
        4,
    );
}

/// Library draw 18 again (58 steps, after the respacing fix): two derived
/// changes had put `[t1] [t2]` in twice and a join dropped one copy. The
/// join's deletion was checked by place, and the tracker's text, which
/// kept the other copy, did not "delete" the one the join dropped: the
/// state with the clone's own `[b20]` did not count as held, the import
/// derived from a state without it and `[b20]` came in a second time. A
/// derived change's deletions are now counted by token. Two replays
/// (before the fix about half of them failed; 58 steps take 9 s each).
#[test]
fn a_join_that_dropped_a_copy_is_held_by_the_copy_the_tracker_kept() {
    converges_in_every_replay(
        "
    LocalBody clone=0 issue=1 pos=16080393207332500423 delete=true
    Backend clone=1
    TrackerBody issue=0 pos=17873515206356972233 delete=false drop_marker=false
    LocalLabel clone=1 issue=0 label=2 remove=true
    Backend clone=0
    Meet from=2 to=2
    LocalComment clone=2 issue=1
    Meet from=1 to=2
    TrackerBody issue=0 pos=15458294068316676440 delete=false drop_marker=false
    LocalTitle clone=2 issue=0
    LocalBody clone=2 issue=0 pos=2027984954182098204 delete=true
    Import clone=0
    TrackerComment issue=0
    LocalComment clone=2 issue=1
    Meet from=1 to=2
    TrackerLabel issue=0 label=2
    TrackerBody issue=1 pos=8584999795476179189 delete=false drop_marker=true
    Meet from=1 to=1
    LocalCommentDelete clone=2 issue=0 pick=9073413288086623531
    LocalAssignee clone=1 issue=0 who=2 remove=false
    TrackerBody issue=0 pos=17241723964864071133 delete=false drop_marker=false
    TrackerComment issue=0
    TrackerBody issue=1 pos=14836237874075604185 delete=true drop_marker=false
    TrackerBody issue=1 pos=4862447399523633630 delete=false drop_marker=true
    LocalCommentDelete clone=1 issue=1 pick=17096027740973767085
    LocalComment clone=1 issue=1
    Backend clone=0
    TrackerBody issue=1 pos=6884090271980574851 delete=false drop_marker=false
    Meet from=1 to=2
    TrackerLabel issue=1 label=2
    LocalLabel clone=0 issue=1 label=2 remove=false
    Backend clone=0
    LocalBody clone=1 issue=1 pos=6110348581407120167 delete=false
    TrackerBody issue=1 pos=9832567807990197946 delete=false drop_marker=false
    LocalBody clone=0 issue=1 pos=10967909069528986231 delete=false
    Meet from=1 to=0
    Import clone=0
    LocalComment clone=0 issue=1
    LocalCommentEdit clone=0 issue=1 pick=3948838482658506263
    Backend clone=1
    Backend clone=1
    Backend clone=0
    Meet from=0 to=0
    LocalCommentEdit clone=0 issue=1 pick=3482169488814737219
    TrackerBody issue=1 pos=7511116520849730588 delete=false drop_marker=false
    Meet from=2 to=0
    TrackerBody issue=0 pos=446272481260066808 delete=false drop_marker=false
    LocalBody clone=1 issue=0 pos=6211111490180404070 delete=false
    TrackerTitle issue=0
    TrackerBody issue=0 pos=5835478549638084679 delete=false drop_marker=false
    Meet from=2 to=2
    TrackerComment issue=1
    LocalLabel clone=2 issue=1 label=1 remove=true
    Meet from=0 to=0
    LocalBody clone=0 issue=1 pos=12792052729019523028 delete=false
    Meet from=2 to=2
    Meet from=0 to=0
    LocalCommentEdit clone=0 issue=1 pick=12597331999900604095
",
        2,
    );
}

/// Library draw 20 (10 steps): a clone's edit `[b1]` reaches a second
/// clone, which exports it; a tracker user deletes `[b1]`; a third clone
/// that got `[b1]` from the first (without the export record) imports the
/// tracker's text. To it `[b1]` is an edit the tracker has not seen, so it
/// keeps it and exports it again: the deletion was undone. Once the export
/// record arrives the fold knows that revision 1 had `[b1]` and revision 2,
/// whose sync point does not descend from revision 1's, dropped it: the
/// deletion that import missed is made (`BodyView::missed_deletions`), and
/// the next export sends it.
#[test]
fn a_tracker_deletion_of_an_edit_exported_elsewhere_is_kept() {
    converges_in_every_replay(
        "
    Meet from=0 to=2
    LocalBody clone=2 issue=0 pos=9332357303494613762 delete=false
    Meet from=2 to=1
    Backend clone=1
    TrackerBody issue=0 pos=1446594793114441448 delete=true drop_marker=false
    Meet from=2 to=0
    Backend clone=0
    LocalCommentDelete clone=2 issue=0 pick=18345467039021859503
    TrackerLabel issue=0 label=0
    TrackerLabel issue=0 label=0
",
        2,
    );
}

/// Library draw 26 (34 steps), two comment faults. (1) A comment exported
/// by one clone and deleted there (here and on the tracker) was exported
/// again by a clone that had the comment but not its binding; the second
/// copy outlived the deletion, because only the newest binding's tracker
/// comment was deleted. Every copy of a deleted comment is deleted now.
/// (2) An edit exported by one clone and imported by another in the same
/// second as the first export: both observations had one revision (the
/// sim's one-second times) and ordered by event id, so the older text
/// could read as the tracker's newest write. An observation of a comment
/// whose chain already has that revision with another text is recorded
/// one revision later. Before, about half the replays failed.
#[test]
fn a_deleted_comment_loses_every_copy_and_same_second_edits_keep_their_order() {
    converges_in_every_replay(
        "
    TrackerBody issue=0 pos=16517405788712895509 delete=false drop_marker=false
    Meet from=1 to=2
    TrackerLabel issue=1 label=0
    Meet from=2 to=1
    LocalTitle clone=0 issue=1
    Meet from=2 to=2
    Meet from=1 to=0
    LocalBody clone=1 issue=0 pos=6783682813518547409 delete=true
    LocalComment clone=1 issue=0
    TrackerComment issue=1
    LocalBody clone=2 issue=1 pos=12911282843211227634 delete=false
    LocalComment clone=2 issue=1
    Backend clone=1
    Meet from=2 to=1
    Backend clone=0
    LocalBody clone=2 issue=0 pos=15372900271320800218 delete=false
    Meet from=2 to=0
    Backend clone=1
    LocalCommentDelete clone=1 issue=1 pick=12207861447523189927
    LocalBody clone=1 issue=1 pos=7024006395361840341 delete=false
    Import clone=1
    LocalLabel clone=2 issue=0 label=1 remove=false
    LocalBody clone=0 issue=1 pos=6375678129785589435 delete=false
    Backend clone=1
    LocalComment clone=1 issue=1
    TrackerBody issue=0 pos=9481470414243226538 delete=true drop_marker=true
    Meet from=1 to=2
    LocalCommentEdit clone=2 issue=1 pick=5732640956928104062
    Meet from=0 to=1
    LocalCommentDelete clone=0 issue=0 pick=6198225434460227974
    Backend clone=0
    Backend clone=1
    Backend clone=0
    LocalCommentDelete clone=2 issue=0 pick=15607864028680550437
",
        4,
    );
}

/// Library draw 33 (49 steps): the case of draw 20, with the export record
/// arriving only after eight more sync points of the chain. The fold first
/// looked for points that missed the tracker's deletions among the newest
/// five revisions only, and the stale pair had left that window by then.
/// It now looks among the newest 32 points. Before, three replays in four
/// failed.
#[test]
fn a_missed_deletion_is_made_when_the_export_record_arrives_late() {
    converges_in_every_replay(
        "
    Meet from=0 to=1
    Backend clone=1
    Import clone=1
    LocalBody clone=1 issue=0 pos=13124685276415927409 delete=false
    TrackerBody issue=1 pos=6347096945201311981 delete=true drop_marker=false
    Backend clone=0
    LocalAssignee clone=1 issue=0 who=2 remove=true
    TrackerLabel issue=0 label=1
    TrackerBody issue=0 pos=12944133258411497045 delete=false drop_marker=false
    Meet from=1 to=0
    Backend clone=1
    Meet from=0 to=1
    Backend clone=1
    Meet from=0 to=0
    LocalTitle clone=1 issue=1
    LocalComment clone=2 issue=0
    LocalLabel clone=2 issue=1 label=0 remove=true
    Backend clone=1
    Backend clone=1
    TrackerBody issue=0 pos=13625324827926625946 delete=true drop_marker=false
    LocalBody clone=1 issue=1 pos=7590417870927454836 delete=false
    Backend clone=0
    LocalBody clone=0 issue=0 pos=2926331172991365886 delete=true
    LocalLabel clone=1 issue=0 label=1 remove=false
    TrackerBody issue=1 pos=10097568579512854706 delete=false drop_marker=false
    Meet from=0 to=2
    LocalAssignee clone=2 issue=0 who=1 remove=true
    LocalAssignee clone=0 issue=1 who=2 remove=true
    LocalCommentEdit clone=2 issue=1 pick=16558869963156178115
    TrackerLabel issue=0 label=2
    Meet from=2 to=0
    LocalBody clone=1 issue=1 pos=15616331528857232046 delete=false
    Meet from=1 to=2
    LocalTitle clone=2 issue=1
    TrackerTitle issue=0
    Import clone=1
    Meet from=2 to=2
    LocalCommentEdit clone=2 issue=0 pick=4683272870560602374
    TrackerBody issue=1 pos=6219830995880452513 delete=false drop_marker=false
    LocalAssignee clone=2 issue=0 who=2 remove=false
    Import clone=1
    TrackerTitle issue=0
    LocalBody clone=0 issue=0 pos=14807757708270622423 delete=false
    TrackerBody issue=0 pos=14077452163154814036 delete=false drop_marker=false
    LocalBody clone=0 issue=0 pos=13457654331846051977 delete=false
    LocalComment clone=2 issue=1
    Backend clone=0
    LocalTitle clone=1 issue=0
    Backend clone=1
",
        3,
    );
}

/// Library draw 38 (10 steps): a clone writes comment `[c1]`, another clone
/// gets it, the first edits it to `[c2]` and exports it (the tracker
/// comment is created with `[c2]` and the comment's marker). The second
/// clone imports the tracker comment without the first's export record:
/// its add of `[c1]` and the tracker's `[c2]` looked concurrent, the local
/// write won, and `[c1]` went back to the tracker. A tracker comment that
/// carries a comment's marker was created from that comment, so its
/// observations follow the comment's `add_comment`. Failed in every replay.
#[test]
fn a_tracker_comment_follows_the_comment_it_was_created_from() {
    converges_in_every_replay(
        "
    Backend clone=1
    Backend clone=0
    LocalComment clone=0 issue=1
    Meet from=0 to=1
    LocalCommentEdit clone=0 issue=1 pick=0
    Backend clone=0
    LocalBody clone=0 issue=0 pos=3955034441398157885 delete=false
    TrackerTitle issue=0
    Backend clone=1
    LocalBody clone=0 issue=0 pos=10112790434138555830 delete=true
",
        2,
    );
}

/// Library draw 58 (10 steps): clone 1 writes `[b1]`, clone 0 gets it,
/// clone 1 exports it (revision 3) and then deletes it (revision 4). Clone
/// 0, without clone 1's records, imports revision 4 from its old point,
/// keeps `[b1]` as an edit the tracker has not seen and exports it
/// (revision 5, from a state older than revision 4's). Clone 1 imports
/// revision 5 as new text: its import covers every point, so it was taken
/// as the chain's point, and `[b1]` came back. An import whose history
/// holds an export of its own revision made from other heads now goes
/// through the full join, where the deletion the exporter had not seen
/// holds. Failed in every replay.
#[test]
fn an_import_of_a_stale_export_keeps_the_deletion_its_writer_had_not_seen() {
    converges_in_every_replay(
        "
    Backend clone=1
    LocalBody clone=1 issue=0 pos=138447152108818627 delete=false
    Meet from=1 to=0
    TrackerBody issue=0 pos=1563476592708535928 delete=false drop_marker=false
    Backend clone=1
    LocalBody clone=1 issue=0 pos=4426765953945663614 delete=true
    Backend clone=1
    Backend clone=0
    Backend clone=1
    LocalLabel clone=2 issue=0 label=0 remove=true
",
        2,
    );
}

/// The CLI soak's seed 1064, shrunk to 6 steps (here with tokens of
/// letters, as the CLI model writes them). Clone 0 imported the tracker's
/// issue and wrote `ɑb1ɒ`; the tracker wrote `ɑt2ɒ`; clone 1 imported
/// that from genesis and got clone 0's events (not its next records);
/// clone 0 merged the two and exported them glued, `ɑb1ɒɑt2ɒ`, one run
/// of letters. Clone 1 then asked whether the tracker's text holds clone
/// 0's edit: counted by whole runs of letters, `ɑb1ɒ` was not there, so
/// clone 1 derived it again and exported both copies (bracketed tokens,
/// `[b1][t2]`, split at the brackets and passed). A run of the tracker's
/// text made of the state's tokens glued together now counts as those
/// tokens. Failed in about half of the replays.
#[test]
fn an_edit_glued_into_a_run_of_letters_is_not_imported_again() {
    LETTERS.with(|l| l.set(true));
    converges_in_every_replay(
        "
    LocalBody clone=0 issue=0 pos=5 delete=false
    TrackerBody issue=0 pos=7 delete=false drop_marker=false
    Backend clone=1
    Meet from=0 to=1
    Backend clone=0
    Backend clone=1
",
        6,
    );
}

/// Letters draw 6, cut down to 3 steps (failed in every replay): clone 0
/// writes `ɑb1ɒ` and `ɑb2ɒ`, the tracker `ɑt3ɒ` at the same place; clone
/// 0's sync merges and exports `ɑb2ɒɑt3ɒ` glued; clone 1, which has clone
/// 0's edits from git but not its export record, did not find `ɑb2ɒ`
/// whole in the tracker's text (glued to a token new to clone 1), derived
/// it again and exported it twice. An inserted token glued to a rest at
/// the edge of a run counts as held.
#[test]
fn an_edit_glued_to_the_trackers_new_token_is_not_imported_again() {
    LETTERS.with(|l| l.set(true));
    converges_in_every_replay(
        "
    LocalBody clone=0 issue=0 pos=804934005381430837 delete=false
    LocalBody clone=0 issue=0 pos=246335 delete=false
    TrackerBody issue=0 pos=9578060044126886557 delete=false drop_marker=false
",
        4,
    );
}

/// Letters draws 6, 7, 9 and 11 (a saved case, cut down to 11 steps;
/// failed in most replays): clone 2's `ɑb1ɒ` reaches clones 1 and 0; a
/// tracker user replaces the whole body with `ɑt3ɒ`; clone 1 merges and
/// exports `ɑt3ɒɑb1ɒ` glued; clone 0 deletes `ɑb1ɒ` and syncs. Two faults
/// put `ɑb1ɒ` back: counted as whole runs, the tracker's text had lost
/// `ɑb1ɒ`, so clone 0's deletion read as held there and its whole state as
/// the tracker's minus its own edits; and the diff from the state with
/// `ɑb1ɒ` to the tracker's text replaced the run whole (a second copy,
/// which the deletion of the first does not reach). A token glued to an
/// insertion is still there, and the diff keeps it (recipe v8).
#[test]
fn a_deleted_token_glued_by_the_trackers_merge_stays_deleted() {
    LETTERS.with(|l| l.set(true));
    converges_in_every_replay(
        "
    Meet from=0 to=2
    LocalBody clone=2 issue=0 pos=7366795286508965326 delete=false
    LocalComment clone=2 issue=0
    Meet from=2 to=1
    TrackerBody issue=0 pos=8734655788940392130 delete=true drop_marker=false
    Meet from=1 to=0
    TrackerBody issue=0 pos=12837396958672479196 delete=false drop_marker=false
    LocalCommentDelete clone=0 issue=0 pick=13833675840862591840
    Backend clone=1
    LocalBody clone=0 issue=0 pos=15417203834510004280 delete=true
    Backend clone=0
",
        4,
    );
}

/// Letters draws 8 and 10 (a saved case, cut down to 15 steps; failed in
/// about one replay of four): a merge glues `ɑt1ɒɑb2ɒ` in clone 0, which
/// then deletes `ɑt1ɒ`; the tracker's text (exported by clone 1 meanwhile)
/// has `ɑb2ɒ ɑt4ɒ ɑt1ɒ`. Counted whole, the glued run was gone from the
/// tracker's text, so clone 0's deletion read as made there and its state
/// as held by it: the import derived from that state and `ɑt1ɒ` came
/// back. A deletion count splits a run glued from tokens the texts hold
/// apart, in every text alike.
#[test]
fn deleting_a_token_glued_by_a_merge_is_not_read_as_the_trackers_deletion() {
    LETTERS.with(|l| l.set(true));
    converges_in_every_replay(
        "
    TrackerBody issue=0 pos=1414712580962299535 delete=false drop_marker=false
    Meet from=0 to=2
    LocalBody clone=2 issue=0 pos=7366795286508965326 delete=false
    LocalComment clone=2 issue=0
    Meet from=2 to=1
    TrackerBody issue=0 pos=8734655788940392130 delete=true drop_marker=false
    Backend clone=0
    Meet from=1 to=0
    TrackerBody issue=0 pos=12837396958672479196 delete=false drop_marker=false
    LocalCommentDelete clone=0 issue=0 pick=13833675840862591840
    Backend clone=1
    TrackerLabel issue=1 label=0
    LocalBody clone=0 issue=0 pos=15417203834510004280 delete=true
    Backend clone=0
    TrackerBody issue=1 pos=3471828080546828092 delete=false drop_marker=false
",
        12,
    );
}

/// A saved case of the property, replayed with letters (failed 5 of 6
/// replays when the fold began adding the import a stale importer would
/// have made, 0 of 6 before): an import found a state holding a second
/// copy of `ɑt1ɒ` glued to the first (`ɑt1ɒɑt1ɒ`), counted as one run and
/// so as no copy, derived from it, and the diff grew `ɑt1ɒ` into the
/// tracker's `ɑt14ɒ` by inserting inside it; a concurrent insertion there
/// cut the token (`ɑt1ɑb15ɒ 4ɒ`). The copy count now splits the glued run.
#[test]
fn an_import_from_a_state_with_a_glued_second_copy_does_not_cut_a_token() {
    LETTERS.with(|l| l.set(true));
    converges_in_every_replay(
        "
    Import clone=1
    TrackerBody issue=0 pos=5961748840789101005 delete=false drop_marker=false
    Backend clone=0
    LocalBody clone=0 issue=0 pos=8888705861665072096 delete=true
    LocalBody clone=1 issue=0 pos=17079899815228737376 delete=false
    LocalBody clone=1 issue=0 pos=4282893165476296095 delete=true
    TrackerBody issue=0 pos=11602661829494517403 delete=false drop_marker=false
    Meet from=1 to=0
    Meet from=1 to=1
    Meet from=0 to=0
    Meet from=1 to=0
    TrackerTitle issue=1
    Backend clone=1
    LocalBody clone=1 issue=1 pos=17542532870390693308 delete=false
    LocalBody clone=1 issue=1 pos=10698574574833519545 delete=false
    LocalBody clone=1 issue=1 pos=5436902711048400624 delete=false
    Backend clone=1
    TrackerBody issue=1 pos=1534549999004364753 delete=false drop_marker=false
    Backend clone=0
    LocalLabel clone=1 issue=0 label=1 remove=false
    LocalComment clone=1 issue=0
    LocalBody clone=1 issue=1 pos=17400543324741488 delete=false
    LocalBody clone=2 issue=1 pos=11114227127209412709 delete=false
    Meet from=0 to=0
    LocalLabel clone=2 issue=0 label=2 remove=true
    TrackerComment issue=0
    TrackerBody issue=0 pos=7300246747741571674 delete=true drop_marker=false
    LocalComment clone=0 issue=0
    TrackerBody issue=0 pos=12865003794711253840 delete=false drop_marker=false
    LocalLabel clone=0 issue=1 label=2 remove=false
    TrackerComment issue=0
    LocalTitle clone=2 issue=0
    LocalAssignee clone=2 issue=1 who=2 remove=false
    TrackerBody issue=0 pos=11762468022628223690 delete=false drop_marker=false
    LocalBody clone=1 issue=0 pos=11639963907423728238 delete=false
    LocalTitle clone=2 issue=0
    Meet from=0 to=0
",
        6,
    );
}

/// The same class as above (library draw 5 with tokens of letters, 10
/// steps): clone 0's new `ɑb5ɒ`, exported glued to `ɑb2ɒ`, was not found
/// as a run of its own by clone 1, which had it from git and derived it
/// again. Failed in most replays.
#[test]
fn an_edit_exported_glued_to_a_neighbour_is_not_imported_again() {
    LETTERS.with(|l| l.set(true));
    converges_in_every_replay(
        "
    LocalBody clone=0 issue=0 pos=4580881515408386437 delete=false
    LocalBody clone=0 issue=0 pos=6024474489670549750 delete=false
    TrackerBody issue=0 pos=12636319276758221963 delete=true drop_marker=true
    Backend clone=0
    TrackerBody issue=0 pos=4189605251689176712 delete=false drop_marker=true
    LocalAssignee clone=0 issue=0 who=1 remove=true
    LocalComment clone=1 issue=1
    LocalBody clone=0 issue=0 pos=4246222217627555385 delete=false
    Meet from=0 to=2
    Meet from=2 to=1
",
        4,
    );
}

/// Saved case 10 of the property, replayed with letters (failed 3 of 4
/// replays once the copy count split glued runs) and cut down to 12 steps
/// by a ddmin over replays (failed 4 of 8 on recipe v8, 0 of 8 on v9).
/// Traced on the whole case: an import derived the tracker's text from a
/// state where a token was glued to a neighbour the tracker's text has
/// apart (`ɑt1ɒɑb5ɒ` become `ɑt11ɒ ɑb5ɒ ɑt1ɒ`); the diff took the glued
/// run as one token and grew `ɑt1ɒ` into `ɑt11ɒ` from inside, and a
/// concurrent deletion of `ɑt1ɒ` left the inserted digit behind
/// (`ɑb5ɒ1`; here `ɑb2ɒ3 ɑtɒ`). Recipe v9 splits the old run into the
/// runs the new text has apart.
#[test]
fn an_import_does_not_grow_a_token_glued_to_a_neighbour_from_inside() {
    LETTERS.with(|l| l.set(true));
    converges_in_every_replay(
        "
    TrackerBody issue=0 pos=1414712580962299535 delete=false drop_marker=false
    Backend clone=1
    Meet from=0 to=2
    LocalBody clone=2 issue=0 pos=7366795286508965326 delete=false
    Meet from=2 to=1
    TrackerBody issue=0 pos=8734655788940392130 delete=true drop_marker=false
    Backend clone=0
    Meet from=1 to=0
    TrackerBody issue=0 pos=12837396958672479196 delete=false drop_marker=false
    Backend clone=1
    LocalBody clone=0 issue=0 pos=15417203834510004280 delete=true
    Backend clone=0
",
        12,
    );
}

/// Draw 90 (`REPOSIX_MODEL_RNG_SEED=90`), shrunk by proptest to 10 steps,
/// failing every run: the replicas did not settle in 6 rounds. A stale
/// export's covering import was refused as the chain's point because the
/// fold found deletions its exporter had not seen, although none of them
/// was in the canonical point's text; so every fold derived a join, which
/// the next fold refused again. The covering import is now refused only
/// when such a deletion changes that text (refs-format.md 6b).
#[test]
fn draw_90_settles() {
    converges_in_every_replay(DRAW_90, 4);
}

const DRAW_90: &str = "
TrackerBody issue=0 pos=82614570758360 delete=false drop_marker=false
Meet from=0 to=1
Meet from=0 to=2
TrackerBody issue=0 pos=5299216438521211016 delete=false drop_marker=true
Backend clone=1
TrackerBody issue=0 pos=2843574043841139547 delete=true drop_marker=false
LocalBody clone=2 issue=0 pos=1097103841671552379 delete=true
LocalBody clone=1 issue=0 pos=4783897238943629761 delete=false
Backend clone=1
TrackerBody issue=1 pos=838598979237698956 delete=true drop_marker=false
";

/// Draw 91 (`REPOSIX_MODEL_RNG_SEED=91`), shrunk by proptest to 10 steps,
/// failing every run (on the code before too): clone 1 writes `[b1]`,
/// clone 0 gets it and exports it, a tracker user deletes it, clone 0
/// imports the deletion. Clone 1, without clone 0's export record,
/// imports the tracker's text from its origin (no change: the text is its
/// create's) and exports its document, `[b1]` included. The join of that
/// newest revision left out the deletions of derived changes (clone 0's
/// import is one), so its diff wrote `[b1]` again. Words an unseen import
/// deleted that the tracker's text lost at its revision now count as
/// deletions the exporter had not seen (refs-format.md 6b).
#[test]
fn draw_91_a_tracker_deletion_stays_deleted_after_a_stale_export() {
    converges_in_every_replay(DRAW_91, 4);
}

const DRAW_91: &str = "
LocalBody clone=1 issue=1 pos=611687938785015929 delete=false
Meet from=1 to=0
Backend clone=0
TrackerBody issue=1 pos=4758138120701362921 delete=true drop_marker=false
Backend clone=0
Backend clone=1
Import clone=1
LocalBody clone=0 issue=0 pos=2748235773034226035 delete=false
LocalAssignee clone=2 issue=1 who=1 remove=true
TrackerTitle issue=0
";

/// Draw 92 (`REPOSIX_MODEL_RNG_SEED=92`), shrunk by hand to 5 steps,
/// failing every run: clone 0 imported the issue's first revision, clone
/// 1 its second (`[t1] [base]`) from its origin, then a tracker user wrote
/// `[t2]` between the two words and clone 1 deleted both. The fold of the
/// second revision took clone 0's derivation of it as canonical and its
/// words as twins of clone 1's deleted copy; the import of the third,
/// derived from that point, keeps `[t2]` between them, so the run of twins
/// was no longer side by side and the join of the third revision wrote
/// both words back. A run split by text inserted since counts when each
/// piece is whole words (refs-format.md 6b).
#[test]
fn draw_92_deleted_twins_stay_deleted_around_a_tracker_insertion() {
    converges_in_every_replay(DRAW_92, 4);
}

const DRAW_92: &str = "
TrackerBody issue=0 pos=0 delete=false drop_marker=false
Backend clone=1
TrackerBody issue=0 pos=431546904609645040 delete=false drop_marker=false
LocalBody clone=1 issue=0 pos=9333719304717328340 delete=true
LocalBody clone=1 issue=0 pos=6475577466802568706 delete=true
";

/// Draw 105 (`REPOSIX_MODEL_RNG_SEED=105`), shrunk by proptest to 30
/// steps, failing about half the runs (on the code before too; 0 of 6
/// after the fix): clone 0 exports clone 1's `[b1]`, a tracker user
/// deletes it; clone 1, without clone 0's export, exports `[b1]` back
/// (the stale export of draw 91), and a tracker user writes `[t15]`
/// beside it; once `[b1]` is deleted again, the tracker's text has
/// `[t15]` where a clone's point has `[b1]`, and the import from that
/// point read `[b1] ` to `[t15] ` as a typo fix (half of the run's
/// characters are brackets and the space),
/// so `[t15]` was built on `[b1]`'s brackets and digit; the join that
/// deletes `[b1]` again took them, leaving `t5`. A typo fix now counts
/// letters and digits only (unit test
/// `a_word_replaced_by_another_is_replaced_whole`).
/// Library draw 124 (49 steps; shrunk with `replay_steps_file` to 9,
/// failing 3 of 3 replays before the fix, 0 of 3 after): clone 1
/// exports its word beside the tracker user's, clone 0 meets it and
/// deletes a token from a glued run, which its diff wrote as a rewrite
/// of the run. The join that left the deleted characters out of
/// the tracker's text (a deletion its writer had not seen) removed them
/// by diffing to that text, which picked other copies of a space and a
/// bracket; with the edit merged, the token after it lost its `[`
/// (`[base] [b3] t4] [t1]`; in the 49-step trace the token was then lost
/// whole). Such a join now deletes those very characters (refs-format.md
/// 6b, "Deletions the tracker's writer had not seen").
#[test]
fn draw_124_a_join_deletes_the_characters_a_writer_deleted_not_their_lookalikes() {
    converges_in_every_replay(DRAW_124, 4);
}

const DRAW_124: &str = "
Meet from=0 to=1
TrackerBody issue=0 pos=8831452132733455363 delete=false drop_marker=false
TrackerBody issue=0 pos=3040671825990866722 delete=false drop_marker=false
Import clone=0
LocalBody clone=1 issue=0 pos=11661217233785945479 delete=false
TrackerBody issue=0 pos=7289846783420085102 delete=false drop_marker=false
Backend clone=1
Meet from=1 to=0
LocalBody clone=0 issue=0 pos=14182839748327113387 delete=true
";

#[test]
fn draw_105_a_tracker_word_replacing_an_undone_stale_export_is_kept() {
    converges_in_every_replay(DRAW_105, 4);
}

const DRAW_105: &str = "
Meet from=1 to=2
LocalBody clone=1 issue=1 pos=17015937523459494052 delete=false
TrackerComment issue=0
LocalComment clone=1 issue=1
TrackerTitle issue=0
LocalBody clone=0 issue=0 pos=2276423750544398824 delete=false
Meet from=1 to=0
TrackerTitle issue=0
TrackerBody issue=0 pos=8920239919982312762 delete=false drop_marker=false
Meet from=0 to=1
LocalCommentDelete clone=1 issue=1 pick=12477192776427691819
Meet from=2 to=2
Backend clone=0
LocalComment clone=1 issue=0
TrackerBody issue=1 pos=16273237668155388421 delete=false drop_marker=false
LocalTitle clone=1 issue=1
LocalTitle clone=2 issue=0
TrackerBody issue=1 pos=12296681085902329509 delete=true drop_marker=false
LocalTitle clone=2 issue=1
LocalComment clone=1 issue=1
Meet from=0 to=0
Backend clone=1
LocalBody clone=1 issue=0 pos=13027453907381972665 delete=false
LocalTitle clone=2 issue=0
LocalComment clone=1 issue=1
Import clone=0
TrackerBody issue=1 pos=1241933800813594553 delete=false drop_marker=false
LocalLabel clone=0 issue=0 label=2 remove=true
LocalTitle clone=1 issue=0
LocalAssignee clone=1 issue=1 who=0 remove=true
";
