//! `reposix issue claim|release`, `reposix ready`, `reposix blocked`,
//! `reposix prime`, and the lost-claim report of `reposix sync`.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use reposix::event::{ActorId, IssueId};
use reposix::repo::ready::{self, ReadyFilter, ReadyIssue};
use reposix::repo::{Repo, RepoError};
use reposix::sync::claims::{self, ClaimMode, ClaimOptions, ClaimOutcome};
use reposix::sync::{self as gitsync, Direction, SyncOptions};

use super::term::line;
use super::{Ctx, Exit, Failure};

/// Arguments of `reposix issue claim`.
#[derive(Args, Debug)]
pub struct ClaimArgs {
    /// Issue id or unambiguous prefix (or --next).
    #[arg(required_unless_present = "next", conflicts_with = "next")]
    issue: Option<String>,
    /// Take the first ready issue nobody holds (see `reposix ready`).
    #[arg(long)]
    next: bool,
    /// Lease length: `90s`, `30m`, `2h`, `1d` (or seconds).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    ttl: Duration,
    /// Extend a lease you hold (else claiming it again is a no-op).
    #[arg(long)]
    renew: bool,
    /// Remote to claim through (default: as `sync` chooses).
    #[arg(long)]
    remote: Option<String>,
    /// With --next: only issues with every one of these labels.
    #[arg(long = "label", short = 'l', requires = "next")]
    labels: Vec<String>,
}

/// Parse a lease length.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (e.g. 90s, 30m, 2h, 1d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86400),
        _ => return Err(format!("unknown unit in {text:?} (s, m, h, d)")),
    };
    if secs == 0 || secs > 30 * 86400 {
        return Err(format!("{text:?}: a lease is 1 s to 30 d"));
    }
    Ok(Duration::from_secs(secs))
}

fn agent_failure(e: claims::AgentError) -> Failure {
    match e {
        claims::AgentError::Repo(r) => r.into(),
        claims::AgentError::Store(s) => RepoError::Store(s).into(),
        claims::AgentError::Sync(s) => Failure::new(
            Exit::Failure,
            "remote",
            reposix::error_chain(&s),
        )
        .hint("the claim was not made; check the remote, or claim offline with --remote pointing nowhere"),
        e @ claims::AgentError::Contended { .. } => {
            Failure::new(Exit::SyncIncomplete, "contended", e.to_string())
                .hint("run the claim again")
        }
    }
}

fn until(ms: i64) -> String {
    let left = (ms - reposix::time::now_millis()).max(0) / 1000;
    if left >= 3600 {
        format!("{}h{:02}m", left / 3600, (left % 3600) / 60)
    } else {
        format!("{}m{:02}s", left / 60, left % 60)
    }
}

/// `reposix issue claim`.
pub fn claim(ctx: &Ctx, args: ClaimArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let actor = ctx.actor(&repo)?;
    let opts = ClaimOptions {
        ttl: args.ttl,
        renew: args.renew,
        remote: args.remote.clone(),
        ..ClaimOptions::default()
    };
    if args.next {
        return claim_next(ctx, &repo, &actor, &opts, &args.labels);
    }
    let issue = repo.resolve(args.issue.as_deref().unwrap_or_default())?;
    let outcome = claims::claim(&repo, issue, &actor, &opts).map_err(agent_failure)?;
    report_claim(ctx, &outcome)
}

fn report_claim(ctx: &Ctx, outcome: &ClaimOutcome) -> Result<(), Failure> {
    match outcome {
        ClaimOutcome::Held {
            issue,
            mode,
            until_ms,
            event,
            offline_reason,
        } => {
            if let Some(why) = offline_reason {
                ctx.out.warn(&format!(
                    "remote not reachable, claim is provisional until the next sync: {why}"
                ));
            }
            ctx.out.done(outcome, || {
                let verb = if event.is_some() { "claimed" } else { "already held" };
                let how = match mode {
                    ClaimMode::Online => "online",
                    ClaimMode::Provisional => "provisional",
                    ClaimMode::Local => "local, no remote",
                };
                format!("{verb} {issue} ({how}), expires in {}", until(*until_ms))
            })
        }
        ClaimOutcome::Refused {
            issue,
            holder,
            until_ms,
            ..
        } => Err(Failure::new(
            Exit::ClaimHeld,
            "claim_held",
            format!(
                "issue {issue} is held by {holder} (expires in {}); your claim is recorded as losing",
                until(*until_ms)
            ),
        )
        .hint("take another issue: `reposix issue claim --next`")
        .data(outcome)),
    }
}

fn claim_next(
    ctx: &Ctx,
    repo: &Repo,
    actor: &ActorId,
    opts: &ClaimOptions,
    labels: &[String],
) -> Result<(), Failure> {
    let opts = opts.clone();
    // Fresh candidates: pull everything once (offline: the local view).
    let sync_opts = SyncOptions {
        remote: opts.remote.clone(),
        direction: Direction::Pull,
        ..SyncOptions::default()
    };
    // Only a freshness step: each claim below fetches its issue again, so
    // a failed pull (offline, a concurrent fetch holding a lock) just
    // leaves the local view.
    match gitsync::sync(repo.store(), &sync_opts) {
        Ok(_) | Err(gitsync::SyncError::NoRemote { .. }) => {}
        Err(e) if e.is_unreachable() => {}
        Err(e) => ctx.out.warn(&format!(
            "could not pull before choosing: {}",
            reposix::error_chain(&e)
        )),
    }
    let listing = repo.list()?;
    let graphs = ready::dep_graphs(&listing.issues);
    let filter = ReadyFilter {
        labels: labels.to_vec(),
        ..ReadyFilter::default()
    };
    let candidates: Vec<ReadyIssue> = ready::ready(
        &listing.issues,
        &graphs,
        Some(actor),
        reposix::time::now_millis(),
        &filter,
    )
    .into_iter()
    .filter(|r| r.held_until_ms.is_none())
    .collect();
    let mut lost_races = 0;
    for c in candidates.iter().take(16) {
        match claims::claim(repo, c.id, actor, &opts) {
            Ok(o @ ClaimOutcome::Held { .. }) => return report_claim(ctx, &o),
            Ok(ClaimOutcome::Refused { .. }) => lost_races += 1,
            Err(claims::AgentError::Repo(RepoError::Rejected(_))) => {}
            Err(e) => return Err(agent_failure(e)),
        }
    }
    let open = listing
        .issues
        .iter()
        // With `--label`, the queue is the issues with those labels: an
        // agent working one label is done when that label's issues are.
        .filter(|s| {
            !s.status.is_closed() && !s.merged && labels.iter().all(|l| s.labels.contains(l))
        })
        .count();
    if open == 0 {
        return Err(
            Failure::new(Exit::AllDone, "all_done", "no open issues left")
                .data(&serde_json::json!({"open": 0})),
        );
    }
    Err(Failure::new(
        Exit::NothingReady,
        "nothing_ready",
        format!(
            "nothing ready: {open} open issue(s) wait on blockers or are held ({lost_races} lost race(s))"
        ),
    )
    .hint("sync and try again later; `reposix blocked` shows what waits on what")
    .data(&serde_json::json!({"open": open, "lost_races": lost_races})))
}

/// `reposix issue release`.
pub fn release(ctx: &Ctx, issue: &str) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let actor = ctx.actor(&repo)?;
    let id = repo.resolve(issue)?;
    let event = claims::release(&repo, id, &actor).map_err(agent_failure)?;
    ctx.out.done(
        &serde_json::json!({"issue": id, "event": event}),
        || match event {
            Some(_) => format!("released {id}"),
            None => format!("{id}: nothing to release"),
        },
    )
}

/// Arguments of `reposix ready`.
#[derive(Args, Debug)]
pub struct ReadyArgs {
    /// At most this many.
    #[arg(long)]
    limit: Option<usize>,
    /// Only issues with every one of these labels.
    #[arg(long = "label", short = 'l')]
    labels: Vec<String>,
    /// Only issues with this assignee.
    #[arg(long)]
    assignee: Option<String>,
}

fn me(ctx: &Ctx, repo: &Repo) -> Option<ActorId> {
    ctx.actor(repo).ok()
}

/// `reposix ready`.
pub fn ready(ctx: &Ctx, args: ReadyArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let me = me(ctx, &repo);
    let listing = repo.list()?;
    let graphs = ready::dep_graphs(&listing.issues);
    let filter = ReadyFilter {
        labels: args.labels,
        assignee: args.assignee,
        limit: args.limit,
    };
    let rows = ready::ready(
        &listing.issues,
        &graphs,
        me.as_ref(),
        reposix::time::now_millis(),
        &filter,
    );
    ctx.out.done(&rows, || {
        rows.iter()
            .map(|r| {
                format!(
                    "{}  p{:<3} {}{}\n",
                    r.id.short(),
                    r.priority.as_deref().unwrap_or("-"),
                    line(&r.title),
                    if r.held_until_ms.is_some() {
                        "  (held by you)"
                    } else {
                        ""
                    }
                )
            })
            .collect()
    })
}

/// `reposix blocked`.
pub fn blocked(ctx: &Ctx) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let listing = repo.list()?;
    let graphs = ready::dep_graphs(&listing.issues);
    let rows = ready::blocked(&listing.issues, &graphs, reposix::time::now_millis());
    #[derive(Serialize)]
    struct Json<'a> {
        blocked: &'a [ready::BlockedIssue],
        ignored_for_cycles: &'a [reposix::crdt::deps::BrokenEdge],
    }
    ctx.out.done(
        &Json {
            blocked: &rows,
            ignored_for_cycles: &graphs.broken,
        },
        || {
            let mut out = String::new();
            for b in &rows {
                out.push_str(&format!("{}  {}\n", b.id.short(), line(&b.title)));
                for w in &b.waits_on {
                    out.push_str(&format!(
                        "    waits on {} {} [{}]{}\n",
                        w.id.short(),
                        line(w.title.as_deref().unwrap_or("(not here: sync?)")),
                        w.status.map(|s| s.as_str()).unwrap_or("unknown"),
                        w.holder
                            .as_ref()
                            .map(|h| format!(", held by {h}"))
                            .unwrap_or_default()
                    ));
                }
            }
            for b in &graphs.broken {
                out.push_str(&format!(
                    "cycle: {} ignored ({})\n",
                    b.graph.as_str(),
                    b.cycle
                        .iter()
                        .map(IssueId::short)
                        .collect::<Vec<_>>()
                        .join(" → ")
                ));
            }
            out
        },
    )
}

/// Arguments of `reposix prime`.
#[derive(Args, Debug)]
pub struct PrimeArgs {
    /// Token budget (estimated at 4 bytes a token).
    #[arg(long, default_value_t = 1500)]
    budget: usize,
}

#[derive(Serialize)]
struct Prime {
    actor: Option<String>,
    budget_tokens: usize,
    used_tokens: usize,
    commands: Vec<(&'static str, &'static str)>,
    held: Vec<serde_json::Value>,
    expiring_soon: Vec<IssueId>,
    ready: Vec<ReadyIssue>,
    lost_claims: Vec<serde_json::Value>,
    left_out: Vec<String>,
}

const COMMANDS: [(&str, &str); 5] = [
    (
        "reposix issue claim --next",
        "take the first ready issue (exit 15: nothing ready yet, 16: all done)",
    ),
    (
        "reposix issue comment ID \"…\"",
        "record progress on the issue you hold",
    ),
    ("reposix issue close ID", "finish it (status done)"),
    (
        "reposix sync",
        "share your work; exit 14: you lost a claim, stop and `reposix issue release ID`",
    ),
    (
        "reposix ready / reposix blocked",
        "what may start / what waits on what",
    ),
];

/// `reposix prime`.
pub fn prime(ctx: &Ctx, args: PrimeArgs) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let me = me(ctx, &repo);
    let listing = repo.list()?;
    let graphs = ready::dep_graphs(&listing.issues);
    let now = reposix::time::now_millis();
    let ready = ready::ready(
        &listing.issues,
        &graphs,
        me.as_ref(),
        now,
        &ReadyFilter::default(),
    );
    let held = me
        .as_ref()
        .map(|a| ready::held_by(&listing.issues, a, now))
        .unwrap_or_default();
    let lost = me
        .as_ref()
        .map(|a| ready::unknowing_losses(&listing.issues, a))
        .unwrap_or_default();
    let budget_bytes = args.budget.saturating_mul(4);
    let mut text = String::new();
    let mut left_out = Vec::new();
    let head =
        format!(
        "reposix primer for {}: issues live in git refs; write, then `reposix sync`.\nCommands:\n",
        me.as_ref().map(ActorId::as_str).unwrap_or("(no actor: set REPOSIX_ACTOR)")
    );
    text.push_str(&head);
    for (c, what) in COMMANDS {
        text.push_str(&format!("  {c}  — {what}\n"));
    }
    let mut p = Prime {
        actor: me.as_ref().map(|a| a.to_string()),
        budget_tokens: args.budget,
        used_tokens: 0,
        commands: COMMANDS.to_vec(),
        held: Vec::new(),
        expiring_soon: Vec::new(),
        ready: Vec::new(),
        lost_claims: Vec::new(),
        left_out: Vec::new(),
    };
    // Sections in order of importance; a line that does not fit is left
    // out and counted, never cut.
    let push = |text: &mut String, line_text: String| -> bool {
        if text.len() + line_text.len() + 80 > budget_bytes {
            return false;
        }
        text.push_str(&line_text);
        true
    };
    if !lost.is_empty() {
        push(&mut text, "LOST CLAIMS (stop work, then release):\n".into());
        let mut skipped = 0;
        for (issue, winner) in &lost {
            if push(
                &mut text,
                format!("  {} now held by {winner}\n", issue.short()),
            ) {
                p.lost_claims
                    .push(serde_json::json!({"issue": issue, "winner": winner}));
            } else {
                skipped += 1;
            }
        }
        if skipped > 0 {
            left_out.push(format!("{skipped} lost claim(s)"));
        }
    }
    if !held.is_empty() {
        push(&mut text, "You hold:\n".into());
        let mut skipped = 0;
        for s in &held {
            let until_ms = s.lease.as_ref().map(|(_, u)| *u).unwrap_or(now);
            let soon = until_ms - now < 10 * 60 * 1000;
            let l = format!(
                "  {} {} (expires in {}{})\n",
                s.id.short(),
                line(&s.title),
                until(until_ms),
                if soon {
                    ", SOON: renew with `claim ID --renew`"
                } else {
                    ""
                }
            );
            if push(&mut text, l) {
                p.held.push(
                    serde_json::json!({"issue": s.id, "title": s.title, "until_ms": until_ms}),
                );
                if soon {
                    p.expiring_soon.push(s.id);
                }
            } else {
                skipped += 1;
            }
        }
        if skipped > 0 {
            left_out.push(format!("{skipped} held issue(s)"));
        }
    }
    push(
        &mut text,
        format!("Ready ({} in all, by priority then age):\n", ready.len()),
    );
    let mut shown = 0;
    for r in &ready {
        let l = format!(
            "  {} p{} {}\n",
            r.id.short(),
            r.priority.as_deref().unwrap_or("-"),
            line(&r.title)
        );
        if !push(&mut text, l) {
            break;
        }
        p.ready.push(r.clone());
        shown += 1;
    }
    if shown < ready.len() {
        left_out.push(format!(
            "{} ready issue(s) (run `reposix ready`)",
            ready.len() - shown
        ));
    }
    if !left_out.is_empty() {
        text.push_str(&format!(
            "Left out to fit {} tokens: {}.\n",
            args.budget,
            left_out.join(", ")
        ));
    }
    p.used_tokens = text.len().div_ceil(4);
    p.left_out = left_out;
    ctx.out.done(&p, || text.clone())
}

/// After a successful `sync`: the caller's claims that lost without its
/// knowing, as a failure (exit 14) naming each issue and winner.
pub fn lost_claims(ctx: &Ctx, repo: &Repo) -> Result<Option<Failure>, Failure> {
    let Ok(actor) = ctx.actor(repo) else {
        return Ok(None);
    };
    let listing = repo.list()?;
    let lost = ready::unknowing_losses(&listing.issues, &actor);
    if lost.is_empty() {
        return Ok(None);
    }
    let list: Vec<String> = lost
        .iter()
        .map(|(i, w)| format!("{} (held by {w})", i.short()))
        .collect();
    Ok(Some(
        Failure::new(
            Exit::ClaimLost,
            "claim_lost",
            format!(
                "{actor} lost provisional claim(s) to concurrent claims: {}",
                list.join(", ")
            ),
        )
        .hint("stop working on these and run `reposix issue release ID` for each")
        .data(&serde_json::json!({
            "lost": lost.iter().map(|(i, w)| serde_json::json!({"issue": i, "winner": w})).collect::<Vec<_>>()
        })),
    ))
}
