//! Generated stores for the benchmarks: event chains sealed as a writer
//! would, bulk-written with one commit per event, and the floor they are
//! measured against (`git fast-import` writing the same shape).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use reposix::crdt::body::BodyDoc;
use reposix::event::{ActorId, Event, EventId, IssueId, Op, Status, EVENT_FORMAT_VERSION};
use reposix::repo::Repo;
use reposix::store::bulk::BulkWriter;

/// The wall clock of the first generated event (ms since the epoch).
const FIRST_WALL_MS: i64 = 1_700_000_000_000;

/// The actor of the generated events and of the benchmarks' writes.
pub fn bench_actor() -> ActorId {
    ActorId::new("bench").expect("BUG: \"bench\" is a valid actor name")
}

/// One sealed event: its id and its bytes.
pub type Sealed = (EventId, Vec<u8>);

/// `ops` as one issue's chain of events by `actor`, each the parent of
/// the next, the `i`-th at Lamport `i + 1` and wall clock
/// `FIRST_WALL_MS + offset_ms + i`.
pub fn chain(
    issue: IssueId,
    actor: &ActorId,
    offset_ms: i64,
    ops: impl IntoIterator<Item = Op>,
) -> Vec<Sealed> {
    let mut parents = vec![];
    ops.into_iter()
        .enumerate()
        .map(|(i, op)| {
            let (id, bytes) = Event {
                v: EVENT_FORMAT_VERSION.max(op.since_version()),
                issue,
                actor: actor.clone(),
                lamport: i as u64 + 1,
                wall_ms: FIRST_WALL_MS + offset_ms + i as i64,
                parents: std::mem::take(&mut parents),
                op,
            }
            .seal();
            parents = vec![id];
            (id, bytes)
        })
        .collect()
}

/// The events of one synthetic issue: a create with a body, then a mix of
/// comments, labels, title, status and a body edit.
pub fn mixed_events(issue: IssueId, actor: &ActorId, n: usize) -> Vec<Sealed> {
    let body_text = format!("Synthetic issue {issue}\n\nSteps:\n1. run\n2. observe\n");
    let body = BodyDoc::load(issue, [])
        .expect("BUG: empty body loads")
        .edit(&body_text);
    let ops = (0..n).map(|i| match i {
        0 => Op::Create {
            title: format!("Issue {}", issue.short()),
            body: body.clone(),
            status: Status::Open,
            labels: vec!["bench".into()],
            assignees: vec![],
        },
        _ => match i % 5 {
            0 => Op::AddLabel {
                label: format!("l{i}"),
            },
            1 => Op::AddComment {
                body: format!("comment {i} on {}", issue.short()),
            },
            2 => Op::SetTitle {
                title: format!("Issue {} rev {i}", issue.short()),
            },
            3 => Op::SetStatus {
                status: Status::ALL[i % Status::ALL.len()],
            },
            _ => Op::SetField {
                name: "priority".into(),
                value: Some(format!("p{}", i % 4)),
            },
        },
    });
    chain(issue, actor, 0, ops)
}

/// What [`bulk_write`] wrote.
pub struct Written {
    /// The issues, in the order written.
    pub ids: Vec<IssueId>,
    /// Each issue's event sizes in bytes (the floor writes the same).
    pub sizes: Vec<Vec<usize>>,
    /// Commits written.
    pub commits: u64,
}

/// Write `n` issues into `repo` through the bulk writer, one commit per
/// event; `events(k, issue, earlier)` gives the `k`-th issue's events
/// (`earlier`: the issues written before it).
pub fn bulk_write(
    repo: &Repo,
    actor: &ActorId,
    n: usize,
    mut events: impl FnMut(usize, IssueId, &[IssueId]) -> Vec<Sealed>,
) -> anyhow::Result<Written> {
    let mut writer = BulkWriter::start(repo.store().git_dir())?;
    let mut ids = Vec::with_capacity(n);
    let mut sizes = Vec::with_capacity(n);
    for k in 0..n {
        let issue = IssueId::new_random();
        let sealed = events(k, issue, &ids);
        sizes.push(sealed.iter().map(|(_, b)| b.len()).collect());
        let commits: Vec<Vec<_>> = sealed.into_iter().map(|e| vec![e]).collect();
        writer.issue(issue, actor.as_str(), 1_700_000_000, &commits)?;
        ids.push(issue);
    }
    let stats = writer.finish()?;
    Ok(Written {
        ids,
        sizes,
        commits: stats.commits,
    })
}

/// The floor: `git fast-import` writing the same shape (one blob and one
/// commit per event, cumulative two-level trees) from precomputed bytes.
pub fn fast_import_floor(dir: &Path, sizes: &[Vec<usize>]) -> anyhow::Result<Duration> {
    crate::cli::git::init_bare(dir)?;
    // Precompute the stream so only fast-import's own work is timed.
    let mut stream = Vec::new();
    stream.extend_from_slice(b"blob\nmark :1\ndata 17\nreposix-events 2\n\n");
    let mut mark = 1u64;
    for (i, issue) in sizes.iter().enumerate() {
        for (j, size) in issue.iter().enumerate() {
            mark += 1;
            let content: Vec<u8> = format!("{i}-{j}-")
                .bytes()
                .chain(std::iter::repeat(b'x'))
                .take((*size).max(8))
                .collect();
            write!(stream, "blob\nmark :{mark}\ndata {}\n", content.len())?;
            stream.extend_from_slice(&content);
            stream.push(b'\n');
            let msg = "reposix: bulk\n\nReposix-Event: 0000000000000000000000000000000000000000000000000000000000000000\n";
            write!(
                stream,
                "commit refs/reposix/issues/i{i}\nauthor a <a@reposix> 1700000000 +0000\ncommitter a <a@reposix> 1700000000 +0000\ndata {}\n{msg}\n",
                msg.len()
            )?;
            if j == 0 {
                stream.extend_from_slice(b"M 100644 :1 format\n");
            }
            writeln!(stream, "M 100644 :{mark} events/{:064x}", mark)?;
            stream.push(b'\n');
        }
    }
    stream.extend_from_slice(b"done\n");
    super::measure::git_fed(
        dir,
        &["fast-import", "--quiet", "--done", "--date-format=raw"],
        &stream,
    )
    .context("git fast-import (floor)")
}
