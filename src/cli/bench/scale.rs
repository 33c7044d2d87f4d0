//! `reposix bench deep|body|wide`: how costs grow with the size of an
//! issue's log, of a body, and of a store, each measured through the whole
//! `reposix` process (as a user pays it) beside git's own plumbing on the
//! same objects where one exists.
//!
//! - `deep`: one issue of N events (bulk-written, one commit per event):
//!   show cold and warm, a comment appended, `reposix sync` to an empty
//!   bare remote vs `git push` of the same ref, `.git` size; and an issue
//!   grown by `--grow` comments, one `reposix issue comment` each.
//! - `body`: a body of N bytes: create, a small edit, a complete
//!   rewrite, a concurrent edit on two clones merged, peak memory.
//! - `wide`: N issues of 3 events: bulk write vs `git fast-import`, the
//!   default list, the full JSON list, a filtered list, show, a cold index
//!   rebuild vs `git cat-file --batch` over the same objects, and
//!   `git for-each-ref`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use reposix::crdt::body::BodyDoc;
use reposix::event::{ActorId, IssueId, Op, Status};
use reposix::repo::{Change, NewIssue, Repo};
use reposix::store::index::Index;

use super::measure::{du_kib, git_fed, git_timed, median, ms, rx, rx_median, WorkDir};
use super::synthetic::{bench_actor, bulk_write, chain, fast_import_floor, Sealed};
use crate::cli::git::{git, init_bare};
use crate::cli::{Ctx, Failure};

/// A scale scenario of `reposix bench`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Scenario {
    /// One issue of N events (sizes: events).
    Deep,
    /// A body of N bytes (sizes: bytes).
    Body,
    /// N issues of 3 events (sizes: the first is the issue count).
    Wide,
}

/// The scenario and its sizes.
#[derive(Args)]
pub struct ScaleArgs {
    /// Run a scale scenario instead of the default run.
    #[arg(value_enum)]
    pub scenario: Option<Scenario>,
    /// Scenario sizes, comma-separated (deep default 10,100,1000,10000,
    /// 100000; body 10000,100000,1000000; wide 100000).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// deep: also grow one issue by this many `issue comment` processes.
    #[arg(long, default_value_t = 1500)]
    grow: usize,
}

/// Run `scenario` in `work` and print its table.
pub fn run(ctx: &Ctx, scenario: Scenario, args: &ScaleArgs, work: &WorkDir) -> Result<(), Failure> {
    let root = work.path();
    let sizes = |default: &[usize]| {
        if args.sizes.is_empty() {
            default.to_vec()
        } else {
            args.sizes.clone()
        }
    };
    match scenario {
        Scenario::Deep => {
            let sizes = sizes(&[10, 100, 1000, 10_000, 100_000]);
            let f = deep(root, &sizes, 15, args.grow)?;
            ctx.out.done(&f, || render_deep(&f))
        }
        Scenario::Body => {
            let f = body(root, &sizes(&[10_000, 100_000, 1_000_000]))?;
            ctx.out.done(&f, || render_body(&f))
        }
        Scenario::Wide => {
            let f = wide(root, sizes(&[100_000])[0])?;
            ctx.out.done(&f, || render_wide(&f))
        }
    }
}

/// A chain of events of one issue: a create, then short comments.
fn comment_thread(issue: IssueId, actor: &ActorId, n: usize) -> Vec<Sealed> {
    let ops = (0..n).map(|i| {
        if i == 0 {
            Op::Create {
                title: "A long thread".into(),
                body: None,
                status: Status::Open,
                labels: vec!["deep".into()],
                assignees: vec![],
            }
        } else {
            Op::AddComment {
                body: format!("progress update {i}: step done"),
            }
        }
    });
    chain(issue, actor, 0, ops)
}

// ---------------------------------------------------------------- deep

#[derive(Serialize, Default)]
struct DeepRow {
    events: usize,
    event_bytes: u64,
    show_cold_ms: f64,
    show_warm_ms: f64,
    append_ms: f64,
    show_after_appends_ms: f64,
    sync_ms: f64,
    git_push_ms: f64,
    git_kib: u64,
}

#[derive(Serialize, Default)]
struct Grow {
    comments: usize,
    append_ms_at: Vec<(usize, f64)>,
    git_kib: u64,
    git_kib_after_gc: u64,
    event_bytes: u64,
}

#[derive(Serialize, Default)]
struct DeepFigures {
    rows: Vec<DeepRow>,
    grow: Option<Grow>,
}

fn deep(root: &Path, sizes: &[usize], appends: usize, grow: usize) -> anyhow::Result<DeepFigures> {
    let actor = bench_actor();
    let mut f = DeepFigures::default();
    for &n in sizes {
        eprintln!("bench deep: {n} events…");
        let dir = root.join(format!("deep-{n}"));
        let repo = Repo::init(&dir)?;
        let written = bulk_write(&repo, &actor, 1, |_, issue, _| {
            comment_thread(issue, &actor, n.max(1))
        })?;
        let event_bytes = written.sizes.iter().flatten().map(|b| *b as u64).sum();
        let id = written.ids[0].to_string();
        let show_cold_ms = ms(rx(&dir, &["issue", "show", &id])?);
        let show_warm_ms = rx_median(&dir, &["issue", "show", &id], 5)?;
        let mut times = Vec::new();
        for i in 0..appends {
            times.push(ms(rx(
                &dir,
                &["issue", "comment", &id, &format!("appended {i}")],
            )?));
        }
        let append_ms = median(times);
        let show_after_appends_ms = rx_median(&dir, &["issue", "show", &id], 3)?;
        // Sync to an empty bare remote, and git's own push of the same ref.
        let remote = root.join(format!("deep-{n}-remote.git"));
        let floor = root.join(format!("deep-{n}-floor.git"));
        for bare in [&remote, &floor] {
            init_bare(bare)?;
        }
        let sync_ms = ms(rx(&dir, &["sync", &remote.to_string_lossy()])?);
        let git_push_ms = ms(git_timed(
            &dir,
            &[
                "push",
                "-q",
                &floor.to_string_lossy(),
                "refs/reposix/issues/*:refs/reposix/issues/*",
            ],
        )?);
        f.rows.push(DeepRow {
            events: n,
            event_bytes,
            show_cold_ms,
            show_warm_ms,
            append_ms,
            show_after_appends_ms,
            sync_ms,
            git_push_ms,
            git_kib: du_kib(&dir.join(".git")),
        });
    }
    if grow > 0 {
        eprintln!("bench deep: growing one issue by {grow} comments, one process each…");
        let dir = root.join("grow");
        let repo = Repo::init(&dir)?;
        let issue = repo
            .create(
                &actor,
                NewIssue {
                    title: "Grown by comments".into(),
                    ..NewIssue::default()
                },
            )?
            .issue;
        let id = issue.to_string();
        let checkpoints: Vec<usize> = [10usize, 100, 500, 1000, 1500, 3000, 10000]
            .into_iter()
            .filter(|c| *c <= grow)
            .collect();
        let mut at = Vec::new();
        let mut window = Vec::new();
        for i in 1..=grow {
            let t = ms(rx(
                &dir,
                &["issue", "comment", &id, &format!("short comment {i}")],
            )?);
            window.push(t);
            if window.len() > 9 {
                window.remove(0);
            }
            if checkpoints.contains(&i) {
                at.push((i, median(window.clone())));
            }
        }
        let event_bytes = repo
            .load(issue)?
            .events
            .iter()
            .map(|(_, e)| e.seal().1.len() as u64)
            .sum();
        let git_kib = du_kib(&dir.join(".git"));
        // A `gc --auto` the appends started may still be running in the
        // background: wait for it (git refuses a second gc meanwhile).
        let started = Instant::now();
        while git(&dir, &["gc", "-q"]).is_err() {
            if started.elapsed() > Duration::from_secs(300) {
                bail!("git gc did not get to run within 300 s");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        f.grow = Some(Grow {
            comments: grow,
            append_ms_at: at,
            git_kib,
            git_kib_after_gc: du_kib(&dir.join(".git")),
            event_bytes,
        });
    }
    Ok(f)
}

fn render_deep(f: &DeepFigures) -> String {
    let mut s = String::from(
        "reposix bench deep: one issue of N events (one commit each), whole processes\n\n\
         | events | show cold ms | show warm ms | append ms | show after appends ms | sync to empty bare ms | git push ms | sync / push | .git KiB | event KiB |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let base = f.rows.first().map(|r| r.append_ms).unwrap_or(1.0);
    for r in &f.rows {
        s.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} ({:.2}x) | {:.1} | {:.0} | {:.0} | {:.2} | {} | {} |\n",
            r.events,
            r.show_cold_ms,
            r.show_warm_ms,
            r.append_ms,
            r.append_ms / base,
            r.show_after_appends_ms,
            r.sync_ms,
            r.git_push_ms,
            r.sync_ms / r.git_push_ms.max(0.001),
            r.git_kib,
            r.event_bytes / 1024,
        ));
    }
    if let Some(g) = &f.grow {
        s.push_str(&format!(
            "\ngrown by {} `reposix issue comment` processes: append ms at ",
            g.comments
        ));
        let first = g.append_ms_at.first().map(|(_, t)| *t).unwrap_or(1.0);
        let parts: Vec<String> = g
            .append_ms_at
            .iter()
            .map(|(n, t)| format!("{n}: {t:.1} ({:.2}x)", t / first))
            .collect();
        s.push_str(&parts.join(", "));
        s.push_str(&format!(
            "\n.git: {} KiB (events {} KiB); after `git gc`: {} KiB\n",
            g.git_kib,
            g.event_bytes / 1024,
            g.git_kib_after_gc
        ));
    }
    s
}

// ---------------------------------------------------------------- body

#[derive(Serialize, Default)]
struct BodyRow {
    chars: usize,
    create_ms: f64,
    edit_ms: f64,
    rewrite_ms: f64,
    edit_in_process_ms: f64,
    edit_peak_rss_kib: u64,
    rss_before_kib: u64,
    concurrent_merge_ms: f64,
    show_after_merge_ms: f64,
    merged_ok: bool,
}

#[derive(Serialize, Default)]
struct BodyFigures {
    rows: Vec<BodyRow>,
}

/// Synthetic prose: lines of about 60 bytes, `bytes` in all (the body
/// limit counts bytes; the text mixes in multi-byte characters).
fn text_of(bytes: usize, seed: u64) -> String {
    let words = [
        "the", "parser", "fails", "when", "input", "is", "empty", "and", "we", "retry", "après",
        "日本", "config", "value", "returns", "error", "on", "startup",
    ];
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut s = String::with_capacity(bytes + 64);
    let mut line = 0;
    while s.len() < bytes {
        let mut l = format!("{line:05} ");
        while l.len() < 60 {
            l.push_str(words[rng.usize(..words.len())]);
            l.push(' ');
        }
        s.push_str(l.trim_end());
        s.push('\n');
        line += 1;
    }
    s
}

/// Every `step`-th line changed.
fn edit_lines(text: &str, step: usize, offset: usize, tag: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i % step == offset {
                format!("{l} [{tag}]\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

/// This process's resident set: (now, peak) in KiB, from /proc.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Reset the peak resident set (Linux: `5` to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn body(root: &Path, sizes: &[usize]) -> anyhow::Result<BodyFigures> {
    let actor = bench_actor();
    let mut f = BodyFigures::default();
    for &n in sizes {
        eprintln!("bench body: {n} bytes…");
        let dir = root.join(format!("body-{n}"));
        let repo = Repo::init(&dir)?;
        let text = text_of(n, n as u64);
        let file = root.join(format!("body-{n}.txt"));
        std::fs::write(&file, &text)?;
        let start = Instant::now();
        let issue = repo
            .create(
                &actor,
                NewIssue {
                    title: "Big page".into(),
                    body: text.clone(),
                    ..NewIssue::default()
                },
            )?
            .issue;
        let create_ms = ms(start.elapsed());
        let id = issue.to_string();
        // A small edit: one line in 50.
        let edited = edit_lines(&text, 50, 7, "edited");
        std::fs::write(&file, &edited)?;
        let edit_ms = ms(rx(
            &dir,
            &["issue", "edit", &id, "--body-file", &file.to_string_lossy()],
        )?);
        // A complete rewrite to another text of the same size.
        let other = text_of(n, n as u64 + 1);
        std::fs::write(&file, &other)?;
        let rewrite_ms = ms(rx(
            &dir,
            &["issue", "edit", &id, "--body-file", &file.to_string_lossy()],
        )?);
        // In process, with the peak resident set around the edit.
        let again = edit_lines(&other, 40, 3, "again");
        let (rss_before, _) = rss_kib();
        reset_peak();
        let start = Instant::now();
        repo.apply(issue, &actor, &[Change::Body(again.clone())])?;
        let edit_in_process_ms = ms(start.elapsed());
        let (_, peak) = rss_kib();
        // Two clones edit different lines at once; one merges the other.
        let clone_dir = root.join(format!("body-{n}-clone"));
        let clone = Repo::init(&clone_dir)?;
        git(
            &clone_dir,
            &[
                "fetch",
                "-q",
                &dir.to_string_lossy(),
                "refs/reposix/*:refs/reposix/*",
            ],
        )?;
        let left = edit_lines(&again, 30, 1, "left");
        let right = edit_lines(&again, 30, 16, "right");
        repo.apply(issue, &actor, &[Change::Body(left)])?;
        clone.apply(
            issue,
            &ActorId::new("other").context("actor")?,
            &[Change::Body(right)],
        )?;
        git(
            &clone_dir,
            &[
                "fetch",
                "-q",
                &dir.to_string_lossy(),
                "+refs/reposix/issues/*:refs/bench-in/*",
            ],
        )?;
        let start = Instant::now();
        for (_, r) in clone.merge_refs_under("refs/bench-in/")? {
            r?;
        }
        let merged = clone.show(issue)?;
        let concurrent_merge_ms = ms(start.elapsed());
        let merged_ok =
            merged.body.matches("[left]").count() > 0 && merged.body.matches("[right]").count() > 0;
        let show_after_merge_ms = rx_median(&clone_dir, &["issue", "show", &id], 3)?;
        f.rows.push(BodyRow {
            chars: n,
            create_ms,
            edit_ms,
            rewrite_ms,
            edit_in_process_ms,
            edit_peak_rss_kib: peak,
            rss_before_kib: rss_before,
            concurrent_merge_ms,
            show_after_merge_ms,
            merged_ok,
        });
    }
    Ok(f)
}

fn render_body(f: &BodyFigures) -> String {
    let mut s = String::from(
        "reposix bench body: a body of N bytes\n\n\
         | bytes | create (in process) ms | edit 1 line in 50, whole process ms | rewrite whole text, whole process ms | edit in process ms | peak RSS during edit KiB (before: KiB) | concurrent edits: merge + show ms | show after merge, whole process ms |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in &f.rows {
        s.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {} ({}) | {:.1}{} | {:.1} |\n",
            r.chars,
            r.create_ms,
            r.edit_ms,
            r.rewrite_ms,
            r.edit_in_process_ms,
            r.edit_peak_rss_kib,
            r.rss_before_kib,
            r.concurrent_merge_ms,
            if r.merged_ok { "" } else { " (LOST AN EDIT)" },
            r.show_after_merge_ms,
        ));
    }
    s
}

// ---------------------------------------------------------------- wide

#[derive(Serialize, Default)]
struct WideFigures {
    issues: usize,
    events: usize,
    bulk_write_s: f64,
    fast_import_s: f64,
    bulk_vs_fast_import: f64,
    for_each_ref_ms: f64,
    cold_rebuild_ms: f64,
    cold_rebuild_in_process_ms: f64,
    cat_file_batch_ms: f64,
    objects: usize,
    list_default_ms: f64,
    list_json_all_ms: f64,
    list_filtered_ms: f64,
    list_text_ms: f64,
    show_ms: f64,
    git_kib: u64,
}

/// The events of one wide-store issue: a create (one of 20 team labels, a
/// status), a comment, a retitle.
fn wide_events(issue: IssueId, actor: &ActorId, k: usize) -> Vec<Sealed> {
    let body = BodyDoc::load(issue, [])
        .expect("BUG: an empty body loads")
        .edit(&format!(
            "Imported issue {k}\n\nSteps to reproduce:\n1. run\n"
        ));
    let ops = [
        Op::Create {
            title: format!("Issue {k}"),
            body,
            status: Status::ALL[k % Status::ALL.len()],
            labels: vec![format!("team-{}", k % 20)],
            assignees: vec![],
        },
        Op::AddComment {
            body: format!("comment on {k}"),
        },
        Op::SetTitle {
            title: format!("Issue {k} (triaged)"),
        },
    ];
    chain(issue, actor, (k * 10) as i64, ops)
}

fn wide(root: &Path, n: usize) -> anyhow::Result<WideFigures> {
    let actor = bench_actor();
    let dir = root.join("wide");
    let repo = Repo::init(&dir)?;
    let mut f = WideFigures {
        issues: n,
        events: n * 3,
        ..WideFigures::default()
    };
    eprintln!("bench wide: writing {n} issues x 3 events…");
    let start = Instant::now();
    let written = bulk_write(&repo, &actor, n, |k, issue, _| {
        wide_events(issue, &actor, k)
    })?;
    f.bulk_write_s = start.elapsed().as_secs_f64();
    eprintln!("bench wide: git fast-import floor…");
    f.fast_import_s =
        fast_import_floor(&root.join("wide-floor.git"), &written.sizes)?.as_secs_f64();
    f.bulk_vs_fast_import = f.fast_import_s / f.bulk_write_s;

    eprintln!("bench wide: listing…");
    f.for_each_ref_ms = ms(git_timed(&dir, &["for-each-ref", "refs/reposix/issues/"])?);
    // Cold rebuild, whole process: no index.
    let index = Index::new(repo.store());
    let remove_index = || {
        let dir = index
            .path()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("index-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    };
    remove_index();
    f.cold_rebuild_ms = ms(rx(&dir, &["issue", "list", "--state", "all"])?);
    remove_index();
    let start = Instant::now();
    let listing = index.list(true)?;
    f.cold_rebuild_in_process_ms = ms(start.elapsed());
    if listing.issues.len() != n {
        bail!(
            "rebuild listed {} issues, expected {n}",
            listing.issues.len()
        );
    }
    // The floor: the objects a rebuild reads (each tip's commit, its root
    // and events trees, its event blobs), through one `git cat-file
    // --batch` (the object list made beforehand, in ref order).
    let objects = tip_objects(&repo)?;
    f.objects = objects.iter().filter(|b| **b == b'\n').count();
    f.cat_file_batch_ms = ms(git_fed(&dir, &["cat-file", "--batch"], &objects)?);
    f.list_default_ms = rx_median(&dir, &["issue", "list"], 5)?;
    f.list_json_all_ms = rx_median(
        &dir,
        &["--json", "issue", "list", "--state", "all", "--limit", "0"],
        3,
    )?;
    f.list_filtered_ms = rx_median(&dir, &["issue", "list", "-l", "team-7"], 5)?;
    f.list_text_ms = rx_median(&dir, &["issue", "list", "--text", "reproduce"], 3)?;
    let id = written
        .ids
        .get(n / 2)
        .map(ToString::to_string)
        .unwrap_or_default();
    f.show_ms = rx_median(&dir, &["issue", "show", &id], 5)?;
    f.git_kib = du_kib(&dir.join(".git"));
    Ok(f)
}

/// Each issue tip's commit, trees and event blobs, one hex id a line.
fn tip_objects(repo: &Repo) -> anyhow::Result<Vec<u8>> {
    let store = repo.store();
    let g = store.repo();
    let mut out = Vec::new();
    let mut line = |oid: &dyn std::fmt::Display| {
        out.extend_from_slice(oid.to_string().as_bytes());
        out.push(b'\n');
    };
    for r in reposix::store::EventStore::list_refs(store)? {
        line(&r.tip);
        let commit = g.find_commit(r.tip)?;
        let root = commit.tree_id()?.detach();
        line(&root);
        let mut stack = vec![root];
        while let Some(t) = stack.pop() {
            let tree = g.find_tree(t)?;
            for e in tree.decode()?.entries {
                if e.mode.is_tree() {
                    line(&e.oid);
                    stack.push(e.oid.to_owned());
                } else if e.filename != "format" {
                    line(&e.oid);
                }
            }
        }
    }
    Ok(out)
}

fn render_wide(f: &WideFigures) -> String {
    format!(
        "reposix bench wide: {issues} issues x 3 events, whole processes\n\n\
         | measure | reposix | git | ratio |\n|---|---|---|---|\n\
         | bulk write, s | {bw:.2} | {fi:.2} (fast-import, same objects) | {r:.2}x of git's rate |\n\
         | `issue list` (default: open, by update), ms | {ld:.0} | {fer:.0} (`for-each-ref` of the refs) | |\n\
         | `issue list --json --state all --limit 0` (every issue), ms | {lj:.0} | | |\n\
         | `issue list -l team-7`, ms | {lf:.0} | | |\n\
         | `issue list --text reproduce`, ms | {lt:.0} | | |\n\
         | `issue show`, ms | {sh:.1} | | |\n\
         | cold index rebuild (whole process / in process), ms | {cr:.0} / {cri:.0} | {cf:.0} (`cat-file --batch`, {obj} objects) | {crr:.2}x |\n\
         | `.git`, KiB | {kib} | | |\n",
        issues = f.issues,
        bw = f.bulk_write_s,
        fi = f.fast_import_s,
        r = f.bulk_vs_fast_import,
        ld = f.list_default_ms,
        fer = f.for_each_ref_ms,
        lj = f.list_json_all_ms,
        lf = f.list_filtered_ms,
        lt = f.list_text_ms,
        sh = f.show_ms,
        cr = f.cold_rebuild_ms,
        cri = f.cold_rebuild_in_process_ms,
        cf = f.cat_file_batch_ms,
        obj = f.objects,
        crr = f.cold_rebuild_ms / f.cat_file_batch_ms.max(0.001),
        kib = f.git_kib,
    )
}
