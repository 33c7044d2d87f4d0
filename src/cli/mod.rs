//! The `reposix` command line.
//!
//! Every command takes `--json`, which prints exactly one envelope on
//! stdout: `{"schema":1,"ok":true,"data":…}` or `{"schema":1,"ok":false,
//! "error":{"kind":…,"message":…,"hint":…,"exit":N}}` (plus `data` when a
//! command that failed has a partial result to show, e.g. `fsck`, `sync`);
//! `ok` is false exactly when the exit code is not 0. Exit codes are in
//! [`Exit`] and in the README.
//!
//! Text output goes through [`term::escape`] (control characters and bidi
//! overrides shown escaped), messages through [`reposix::git::redact::redact`],
//! data through [`reposix::git::redact::redact_known`].

mod agents;
mod allow;
mod backend;
#[cfg(feature = "bench")]
mod bench;
mod demo;
mod doctor;
mod dry_run;
mod editor;
mod git;
mod issue;
mod log;
mod mirror;
mod names;
mod progress;
mod sim;
mod sync;
mod term;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

use reposix::event::{ActorId, DecodeError};
use reposix::repo::{Repo, RepoError};
use reposix::store::StoreError;

/// Version of the `--json` envelope.
pub const JSON_SCHEMA: u32 = 1;

/// Process exit codes (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// An unexpected failure (I/O, git).
    Failure = 1,
    /// Bad command-line usage (clap).
    Usage = 2,
    /// No such issue.
    NotFound = 3,
    /// An id prefix matches several issues.
    Ambiguous = 4,
    /// Stored data is damaged (also: `fsck` found problems).
    Damaged = 5,
    /// Stored data has a format version this build does not read.
    UnsupportedVersion = 6,
    /// Input rejected (invalid name, empty title, unknown comment…).
    Invalid = 7,
    /// No actor configured.
    NoActor = 8,
    /// `sync`: the remote cannot be reached (local work is intact).
    RemoteUnreachable = 9,
    /// `sync`: some issues are still behind the remote after the retries,
    /// or the remote refused them; the others synced, nothing local is lost.
    SyncIncomplete = 10,
    /// A tracker refused or failed (auth, HTTP errors, retries exhausted,
    /// an export left incomplete); local work is intact.
    Tracker = 11,
    /// HTTP to an origin that is not allowed was refused (see `allow`).
    Egress = 12,
    /// `issue claim`: someone else holds the issue (your claim is recorded
    /// as losing).
    ClaimHeld = 13,
    /// `sync`: a provisional claim of yours lost to a concurrent claim;
    /// stop, and `issue release` it.
    ClaimLost = 14,
    /// `issue claim --next`: nothing is ready now (open issues wait on
    /// blockers or are held).
    NothingReady = 15,
    /// `issue claim --next`: no open issue is left.
    AllDone = 16,
}

#[derive(Parser)]
#[command(
    name = "reposix",
    version,
    about = "Issue trackers kept in git: event logs in refs, merged with CRDTs"
)]
struct Cli {
    /// Print one JSON envelope on stdout instead of text; `--json=a,b`
    /// keeps only those fields of each record (as `gh` does).
    #[arg(
        long,
        global = true,
        value_name = "FIELDS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    json: Option<String>,
    /// Act as this actor (overrides REPOSIX_ACTOR and the default actor).
    #[arg(long, global = true, env = "REPOSIX_ACTOR")]
    actor: Option<String>,
    /// Run as if started in this directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Debug logging on stderr (HTTP requests, git invocations; secrets
    /// redacted); `-vv` for more. `RUST_LOG` overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a git repository (if needed) and set up reposix in it.
    ///
    /// `reposix init [DIR]` sets up a local store; `reposix init
    /// <kind>::<address> DIR` also attaches that tracker (as backend
    /// `<kind>`) and imports it, ready to edit (Pattern B).
    #[command(
        after_help = "Examples:\n  reposix init\n  reposix init sim::http://127.0.0.1:7878/demo work   # attach and import\n  reposix init github::owner/repo work"
    )]
    Init {
        /// `<kind>::<address>` of a tracker, or the directory.
        first: Option<String>,
        /// The directory, when a tracker is given.
        #[arg(id = "init_dir", value_name = "DIR")]
        target: Option<PathBuf>,
    },
    /// Attach a tracker to the repository in the current directory (e.g. a
    /// clone of a mirror, Pattern C) and import it; the markdown files'
    /// later edits become events on `reposix sync --backend`.
    #[command(
        after_help = "Examples:\n  reposix attach github::owner/repo          # in a clone of the mirror\n  reposix attach sim::http://127.0.0.1:7878/demo --name sim"
    )]
    Attach {
        /// `<kind>::<address>`.
        spec: String,
        /// Local name of the backend (default: the kind).
        #[arg(long)]
        name: Option<String>,
    },
    /// Manage actors (who writes events).
    #[command(subcommand)]
    #[command(after_help = "Examples:\n  reposix actor new alice --use\n  reposix actor list")]
    Actor(ActorCmd),
    /// Create, read and change issues.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  reposix issue new 'Crash on start' -b 'It crashes.'\n  reposix issue list 'status:open label:bug'\n  reposix issue show '#12'"
    )]
    Issue(issue::IssueCmd),
    /// Show an issue's event history.
    #[command(
        after_help = "Examples:\n  reposix log 3f2a\n  reposix log '#12'\n  reposix --json log 3f2a"
    )]
    Log {
        /// Issue id or unambiguous prefix.
        issue: String,
    },
    /// Verify every issue ref, commit and event; exit 5 on damage.
    #[command(after_help = "Examples:\n  reposix fsck\n  reposix --json fsck")]
    Fsck,
    /// A scripted tour in a temporary repository: two actors edit the same
    /// issues concurrently, then the merged result is printed.
    #[command(after_help = "Examples:\n  reposix demo\n  reposix demo --keep")]
    Demo {
        /// Keep the temporary repository and print its path.
        #[arg(long)]
        keep: bool,
    },
    /// The benchmark commands (`bench`, `bench-import`, `bench-sync`,
    /// `bench-agents`).
    #[cfg(feature = "bench")]
    #[command(flatten)]
    Bench(bench::BenchCmd),
    /// Fetch issues from a git remote, merge, push (retrying rejections).
    #[command(
        after_help = "Examples:\n  reposix sync                      # the current branch's remote\n  reposix sync origin --pull\n  reposix sync --backend gh --dry-run\n  reposix sync --backend gh --import-only"
    )]
    Sync(sync::SyncArgs),
    /// Run the tracker simulator (reposix-sim 0.14 compatible) until killed.
    #[command(
        after_help = "Examples:\n  reposix sim\n  reposix sim --bind 127.0.0.1:0 --no-seed --rate-limit 0"
    )]
    Sim(sim::SimArgs),
    /// Attach, list and detach trackers.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  reposix backend add gh github::owner/repo\n  reposix backend list\n  reposix backend remove gh"
    )]
    Backend(backend::BackendCmd),
    /// The plain-git markdown mirror: render, push, sync, status.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  reposix mirror push ../issues-mirror.git --kind sim\n  reposix mirror sync origin-mirror\n  reposix mirror status"
    )]
    Mirror(mirror::MirrorCmd),
    /// Check the set-up: git version, actor, trackers and their allowed
    /// origins, credentials present (never shown), index health, mirror
    /// lag; `--fix` repairs what is safe to repair.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script on stdout.
    #[command(
        after_help = "Examples:\n  reposix completions bash > ~/.local/share/bash-completion/completions/reposix\n  reposix completions zsh > ~/.zfunc/_reposix\n  reposix completions fish > ~/.config/fish/completions/reposix.fish"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (`reposix.1`, `reposix-issue-list.1`, …) into DIR.
    #[command(
        after_help = "Examples:\n  reposix man ~/.local/share/man/man1 && man reposix-issue-list"
    )]
    Man {
        /// Directory to write into (created if missing).
        #[arg(value_name = "DIR")]
        out: PathBuf,
    },
    /// Open issues nobody else holds whose blockers are all closed, by
    /// priority (the `priority` field, lower first), then age.
    #[command(
        after_help = "Examples:\n  reposix ready\n  reposix ready --limit 5 -l backend\n  reposix --json ready"
    )]
    Ready(agents::ReadyArgs),
    /// Open issues waiting on open blockers, and what they wait on.
    #[command(after_help = "Examples:\n  reposix blocked\n  reposix --json blocked")]
    Blocked,
    /// A short briefing for an agent: commands, what it holds, what is
    /// ready; says what it left out to fit the budget.
    #[command(after_help = "Examples:\n  reposix prime\n  reposix prime --budget 800")]
    Prime(agents::PrimeArgs),
}

#[derive(Subcommand)]
enum ActorCmd {
    /// Register an actor (and make it the default with --use).
    #[command(
        after_help = "Examples:\n  reposix actor new alice\n  reposix actor new ci-bot --use\n  reposix actor new agent-7 --on-behalf-of alice"
    )]
    New {
        /// Name: letters, digits and `._@+-`.
        name: String,
        /// Also make it the default actor.
        #[arg(long = "use")]
        make_default: bool,
        /// The person this actor (an agent) acts for: recorded in each
        /// issue it writes to, shown by `show` and `log` on every replica.
        #[arg(long, value_name = "HUMAN")]
        on_behalf_of: Option<String>,
    },
    /// List registered actors; `*` marks the default.
    #[command(after_help = "Examples:\n  reposix actor list\n  reposix --json actor list")]
    List,
    /// Make an actor the default.
    #[command(after_help = "Examples:\n  reposix actor use alice")]
    Use {
        /// The actor.
        name: String,
    },
}

/// An error the CLI reports: exit code, kind, message, hint, and the
/// partial result of the command if it has one.
pub struct Failure {
    exit: Exit,
    kind: &'static str,
    message: String,
    hint: Option<String>,
    data: Option<serde_json::Value>,
}

impl Failure {
    fn new(exit: Exit, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            kind,
            message: message.into(),
            hint: None,
            data: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// Attach what the command did before failing: the `data` of the one
    /// (`ok: false`) envelope in `--json` mode.
    fn data<T: Serialize>(mut self, data: &T) -> Failure {
        self.data = serde_json::to_value(data).ok();
        self
    }
}

impl From<RepoError> for Failure {
    fn from(e: RepoError) -> Failure {
        let message = reposix::error_chain(&e);
        match &e {
            RepoError::Store(s) => store_failure(s, message),
            RepoError::Invalid(DecodeError::UnsupportedVersion { .. }) => {
                Failure::new(Exit::UnsupportedVersion, "unsupported_version", message)
            }
            RepoError::Invalid(_) | RepoError::Rejected(_) => {
                Failure::new(Exit::Invalid, "invalid", message)
            }
            RepoError::NoActor => Failure::new(Exit::NoActor, "no_actor", message)
                .hint("run `reposix actor new NAME --use`"),
            RepoError::Config(_) => Failure::new(Exit::Invalid, "invalid", message)
                .hint("fix the value (scheme://host[:port], comma-separated)"),
            RepoError::Io { .. } | RepoError::Init { .. } => {
                Failure::new(Exit::Failure, "io", message)
            }
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::new(Exit::Failure, "failure", format!("{e:#}"))
    }
}

fn store_failure(s: &StoreError, message: String) -> Failure {
    if s.is_unsupported_version() {
        return Failure::new(Exit::UnsupportedVersion, "unsupported_version", message)
            .hint("this data was written by a newer reposix: upgrade to read it");
    }
    match s {
        StoreError::NotFound(_) => Failure::new(Exit::NotFound, "not_found", message)
            .hint("run `reposix issue list` to see issue ids"),
        StoreError::Ambiguous { .. } => Failure::new(Exit::Ambiguous, "ambiguous", message)
            .hint("give more characters of the id"),
        StoreError::Open { .. } => Failure::new(Exit::Failure, "not_a_repository", message)
            .hint("run `reposix init` or pass -C DIR"),
        StoreError::Refused { .. } => Failure::new(Exit::Invalid, "invalid", message)
            .hint("nothing was written; see the limit named above"),
        _ if s.is_damage() => Failure::new(Exit::Damaged, "damaged", message)
            .hint("run `reposix fsck` for a full report; other issues are unaffected"),
        _ => Failure::new(Exit::Failure, "failure", message),
    }
}

/// Output context: text or JSON.
pub struct Out {
    json: bool,
    /// `--json=FIELDS`: the fields kept.
    fields: Option<Vec<String>>,
}

impl Out {
    /// Emit a success: `text` in text mode, `data` in the JSON envelope.
    fn done<T: Serialize>(&self, data: &T, text: impl FnOnce() -> String) -> Result<(), Failure> {
        self.done_as(data, text, false)
    }

    /// [`Out::done`]; with `ordered`, `data` serializes with its keys in
    /// alphabetical order at every level (as a JSON map would give them)
    /// and, unless fields are picked, is written straight to text, not
    /// through a value tree (which costs many times the text for a
    /// 100,000-row listing).
    fn done_as<T: Serialize>(
        &self,
        data: &T,
        text: impl FnOnce() -> String,
        ordered: bool,
    ) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        let result = if self.json {
            #[derive(Serialize)]
            struct Envelope<'a, T> {
                schema: u32,
                ok: bool,
                data: &'a T,
            }
            let json = match &self.fields {
                None if ordered => serde_json::to_string(&Envelope {
                    schema: JSON_SCHEMA,
                    ok: true,
                    data,
                }),
                fields => {
                    let data =
                        serde_json::to_value(data).expect("BUG: output data always serializes");
                    let data = match fields {
                        Some(f) => select_fields(data, f)?,
                        None => data,
                    };
                    serde_json::to_string(&Envelope {
                        schema: JSON_SCHEMA,
                        ok: true,
                        data: &data,
                    })
                }
            }
            .expect("BUG: output data always serializes");
            let json = reposix::git::redact::redact_known(&json);
            stdout
                .write_all(json.as_bytes())
                .and_then(|()| stdout.write_all(b"\n"))
        } else {
            write_text(&mut stdout, &safe_text(text()))
        };
        stdout_written(result)
    }

    /// Like [`Out::done`], through the pager on a terminal.
    fn done_paged<T: Serialize>(
        &self,
        data: &T,
        text: impl FnOnce() -> String,
    ) -> Result<(), Failure> {
        if self.json {
            return self.done(data, text);
        }
        let text = safe_text(text());
        if term::page(&text) {
            return Ok(());
        }
        stdout_written(write_text(&mut std::io::stdout().lock(), &text))
    }

    /// Text output made in pieces of whole lines (text mode only): `make`
    /// gives each piece to [`Pieces::push`]. On a terminal the whole text
    /// goes through the pager as [`Out::done_paged`] sends it; otherwise
    /// each piece is made safe and written as it comes, so a text of
    /// megabytes (100,000 comments) is never held whole.
    fn paged_pieces(&self, make: impl FnOnce(&mut Pieces)) -> Result<(), Failure> {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            let mut pieces = Pieces::Whole(String::new());
            make(&mut pieces);
            let Pieces::Whole(text) = pieces else {
                unreachable!("BUG: a whole text stays whole")
            };
            return self.done_paged(&(), || text);
        }
        let mut pieces = Pieces::Stream {
            out: std::io::stdout().lock(),
            result: Ok(()),
            last: b'\n',
        };
        make(&mut pieces);
        let Pieces::Stream {
            mut out,
            result,
            last,
        } = pieces
        else {
            unreachable!("BUG: a stream stays a stream")
        };
        let result = result.and_then(|()| match last {
            b'\n' => Ok(()),
            _ => out.write_all(b"\n"),
        });
        stdout_written(result.and_then(|()| out.flush()))
    }

    /// Like [`Out::done_paged`] for text that carries colour codes: the
    /// caller has escaped every stored string in it (with [`term::line`]
    /// or [`term::escape`]); known secrets are still masked here. `ordered`
    /// as [`Out::done_as`] says.
    fn done_styled<T: Serialize>(
        &self,
        data: &T,
        text: impl FnOnce() -> String,
        ordered: bool,
    ) -> Result<(), Failure> {
        if self.json {
            return self.done_as(data, text, ordered);
        }
        let text = text();
        let text = reposix::git::redact::redact_known(&text);
        if term::page(&text) {
            return Ok(());
        }
        stdout_written(std::io::stdout().lock().write_all(text.as_bytes()))
    }

    /// Print `text` on stdout in text mode only (the part of a failed
    /// command's result that the `--json` envelope carries as `data`).
    fn text(&self, text: impl FnOnce() -> String) -> Result<(), Failure> {
        if self.json {
            return Ok(());
        }
        self.done(&(), text)
    }

    fn warn(&self, line: &str) {
        let _ = writeln!(std::io::stderr(), "warning: {}", safe_message(line));
    }
}

/// The outcome of writing to stdout: a closed pipe (`| head`) is not a
/// failure.
fn stdout_written(result: std::io::Result<()>) -> Result<(), Failure> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::new(
            Exit::Failure,
            "io",
            format!("writing output: {e}"),
        )),
        _ => Ok(()),
    }
}

/// `--json=FIELDS`: keep `fields` of each record: of every object in an
/// array, of every object in a listing's `issues`, else of the object. A
/// field no record has is a usage error naming the fields there are.
fn select_fields(data: serde_json::Value, fields: &[String]) -> Result<serde_json::Value, Failure> {
    use serde_json::Value;
    let pick = |v: &Value| -> Result<Value, Failure> {
        let Value::Object(map) = v else {
            return Ok(v.clone());
        };
        let mut out = serde_json::Map::new();
        for f in fields {
            match map.get(f) {
                Some(x) => {
                    out.insert(f.clone(), x.clone());
                }
                None => {
                    return Err(Failure::new(
                        Exit::Usage,
                        "usage",
                        format!("--json: unknown field {f:?}"),
                    )
                    .hint(format!(
                        "available fields: {}",
                        map.keys().cloned().collect::<Vec<_>>().join(",")
                    )))
                }
            }
        }
        Ok(Value::Object(out))
    };
    match data {
        Value::Array(items) => Ok(Value::Array(
            items.iter().map(pick).collect::<Result<_, _>>()?,
        )),
        Value::Object(mut map) if map.get("issues").is_some_and(Value::is_array) => {
            let issues = map.remove("issues").unwrap_or_default();
            let picked = match issues {
                Value::Array(items) => {
                    Value::Array(items.iter().map(pick).collect::<Result<_, _>>()?)
                }
                other => other,
            };
            map.insert("issues".into(), picked);
            Ok(Value::Object(map))
        }
        other => pick(&other),
    }
}

/// Stored text on its way to a terminal: known secrets masked, control
/// characters escaped.
/// Write text made safe ([`safe_text`]), ending it with a line break.
fn write_text(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    if text.is_empty() {
        Ok(())
    } else if text.ends_with('\n') {
        out.write_all(text.as_bytes())
    } else {
        writeln!(out, "{text}")
    }
}

/// Where [`Out::paged_pieces`] sends its pieces.
pub enum Pieces {
    /// Collected for the pager.
    Whole(String),
    /// Written to stdout as they come.
    Stream {
        out: std::io::StdoutLock<'static>,
        /// The first failure to write (later pieces are dropped).
        result: std::io::Result<()>,
        /// The last byte written (a text ends with a newline).
        last: u8,
    },
}

impl Pieces {
    /// Add whole lines of text (a piece never splits a line: secrets are
    /// masked piece by piece, and no secret spans a line break).
    pub fn push(&mut self, text: &str) {
        match self {
            Pieces::Whole(all) => all.push_str(text),
            Pieces::Stream { out, result, last } => {
                if result.is_err() || text.is_empty() {
                    return;
                }
                let text = reposix::git::redact::redact_known(text);
                let text = term::escape(&text, term::Lines::Keep);
                *result = out.write_all(text.as_bytes());
                *last = *text.as_bytes().last().unwrap_or(last);
            }
        }
    }
}

fn safe_text(text: String) -> String {
    let text = changed_or(text, reposix::git::redact::redact_known);
    changed_or(text, |t| term::escape(t, term::Lines::Keep))
}

/// `f`'s result when it changed `text`, else `text` itself: no copy of a
/// text that needs no change (a page of comments is megabytes).
fn changed_or(text: String, f: impl Fn(&str) -> std::borrow::Cow<'_, str>) -> String {
    let changed = match f(&text) {
        std::borrow::Cow::Owned(s) => Some(s),
        std::borrow::Cow::Borrowed(_) => None,
    };
    changed.unwrap_or(text)
}

/// A message (error, warning, hint, progress) on its way to a terminal:
/// every credential masked, control characters escaped.
fn safe_message(text: &str) -> String {
    term::escape(&reposix::git::redact::redact(text), term::Lines::Keep).into_owned()
}

/// Context every command gets.
pub struct Ctx {
    out: Out,
    actor: Option<String>,
    dir: PathBuf,
}

impl Ctx {
    fn repo(&self) -> Result<Repo, Failure> {
        Ok(Repo::open(&self.dir)?)
    }

    /// The acting actor's name if there is one (for `assignee:me`).
    fn actor_name(&self, repo: &Repo) -> Option<String> {
        self.actor(repo).ok().map(|a| a.as_str().to_owned())
    }

    /// The acting actor: `--actor`, else `REPOSIX_ACTOR`, else the default.
    fn actor(&self, repo: &Repo) -> Result<ActorId, Failure> {
        match &self.actor {
            Some(name) => Ok(ActorId::new(name).map_err(RepoError::from)?),
            None => match repo.default_actor()? {
                Some(a) => Ok(a),
                None => repo.git_identity().ok_or_else(|| {
                    Failure::from(RepoError::NoActor).hint(
                        "run `reposix actor new NAME --use`, or set git's user.email or user.name",
                    )
                }),
            },
        }
    }
}

/// Parse arguments, run, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    reposix::tracker::http::install_crypto_provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if e.use_stderr()
                && std::env::args_os().any(|a| {
                    a.to_str()
                        .is_some_and(|a| a == "--json" || a.starts_with("--json="))
                }) =>
        {
            // Usage errors get their envelope too (`ok: false`, exit 2).
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad usage");
            let f = Failure::new(Exit::Usage, "usage", first.trim_start_matches("error: "))
                .hint("run `reposix --help`");
            return report(
                &Out {
                    json: true,
                    fields: None,
                },
                f,
            );
        }
        Err(e) => {
            let code = if e.use_stderr() { Exit::Usage as u8 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    log::init(cli.verbose);
    let ctx = Ctx {
        out: Out {
            json: cli.json.is_some(),
            fields: cli.json.as_deref().filter(|f| !f.is_empty()).map(|f| {
                f.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect()
            }),
        },
        actor: cli.actor,
        dir: cli.dir.unwrap_or_else(|| PathBuf::from(".")),
    };
    match run(&ctx, cli.command) {
        Ok(()) => ExitCode::from(Exit::Ok as u8),
        Err(f) => report(&ctx.out, f),
    }
}

fn report(out: &Out, f: Failure) -> ExitCode {
    let message = reposix::git::redact::redact(&f.message);
    let hint = f.hint.as_deref().map(reposix::git::redact::redact);
    if out.json {
        let mut env = serde_json::json!({
            "schema": JSON_SCHEMA,
            "ok": false,
            "error": {"kind": f.kind, "message": message, "hint": hint, "exit": f.exit as u8},
        });
        if let Some(data) = f.data {
            env["data"] = data;
        }
        let env = env.to_string();
        let env = reposix::git::redact::redact_known(&env);
        let _ = writeln!(std::io::stdout(), "{env}");
    } else {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "error: {}", safe_message(&message));
        if let Some(h) = &hint {
            let _ = writeln!(err, "hint: {}", safe_message(h));
        }
    }
    ExitCode::from(f.exit as u8)
}

fn run(ctx: &Ctx, command: Command) -> Result<(), Failure> {
    match command {
        Command::Init { first, target } => match first {
            Some(spec) if spec.contains("::") => {
                let dir = target.ok_or_else(|| {
                    Failure::new(
                        Exit::Usage,
                        "usage",
                        "reposix init <kind>::<address> DIR: give the directory",
                    )
                })?;
                backend::init(ctx, &spec, &dir)
            }
            first => {
                if target.is_some() {
                    return Err(Failure::new(
                        Exit::Usage,
                        "usage",
                        "reposix init [DIR] takes one directory (or: reposix init <kind>::<address> DIR)",
                    ));
                }
                let dir = first.map(PathBuf::from).unwrap_or_else(|| ctx.dir.clone());
                let repo = Repo::init(&dir)?;
                let git_dir = repo.store().git_dir().display().to_string();
                ctx.out
                    .done(&serde_json::json!({ "git_dir": git_dir }), || {
                        format!("initialized reposix in {git_dir}")
                    })
            }
        },
        Command::Attach { spec, name } => backend::attach(ctx, &spec, name.as_deref()),
        Command::Actor(cmd) => actor(ctx, cmd),
        Command::Issue(cmd) => issue::run(ctx, cmd),
        Command::Log { issue } => issue::log(ctx, &issue),
        Command::Fsck => fsck(ctx),
        Command::Demo { keep } => demo::run(ctx, keep),
        #[cfg(feature = "bench")]
        Command::Bench(cmd) => bench::run(ctx, cmd),
        Command::Sync(args) => sync::run(ctx, args),
        Command::Sim(args) => sim::run(ctx, args),
        Command::Backend(cmd) => backend::run(ctx, cmd),
        Command::Mirror(cmd) => mirror::run(ctx, cmd),
        Command::Doctor(args) => doctor::run(ctx, &args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "reposix", &mut buf);
            stdout_written(std::io::stdout().lock().write_all(&buf))
        }
        Command::Man { out } => man_pages(ctx, &out),
        Command::Ready(args) => agents::ready(ctx, args),
        Command::Blocked => agents::blocked(ctx),
        Command::Prime(args) => agents::prime(ctx, args),
    }
}

/// `reposix man DIR`: one page per command, hidden ones aside (as
/// `clap_mangen::generate_to` does), the examples in each page's EXTRA
/// section.
fn man_pages(ctx: &Ctx, out: &std::path::Path) -> Result<(), Failure> {
    fn walk(
        cmd: clap::Command,
        out: &std::path::Path,
        files: &mut Vec<String>,
    ) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, out, files)?;
        }
        let path = clap_mangen::Man::new(cmd).generate_to(out)?;
        files.push(path.display().to_string());
        Ok(())
    }
    let io = |e: std::io::Error| {
        Failure::new(
            Exit::Failure,
            "io",
            format!("writing man pages into {}: {e}", out.display()),
        )
    };
    std::fs::create_dir_all(out).map_err(io)?;
    let mut cmd = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    cmd.build();
    let mut files = Vec::new();
    walk(cmd, out, &mut files).map_err(io)?;
    files.sort();
    ctx.out.done(
        &serde_json::json!({"dir": out.display().to_string(), "files": files}),
        || format!("wrote {} man pages into {}", files.len(), out.display()),
    )
}

fn actor(ctx: &Ctx, cmd: ActorCmd) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    match cmd {
        ActorCmd::New {
            name,
            make_default,
            on_behalf_of,
        } => {
            let actor = ActorId::new(&name).map_err(RepoError::from)?;
            let human = on_behalf_of
                .map(|h| ActorId::new(&h).map_err(RepoError::from))
                .transpose()?;
            let created = !repo.actors()?.contains(&actor);
            // Checked (not acting for itself) before anything is written.
            let changed = match &human {
                Some(h) => repo.set_on_behalf_of(&actor, h)?,
                None => repo.add_actor(&actor)?,
            } && human.is_some();
            if make_default {
                repo.use_actor(&actor)?;
            }
            let acts_for = repo.on_behalf_of(&actor)?;
            ctx.out.done(
                &serde_json::json!({
                    "actor": actor.as_str(),
                    "created": created,
                    "default": make_default,
                    "on_behalf_of": acts_for.as_ref().map(ActorId::as_str),
                }),
                || {
                    let mut text = match (created, make_default) {
                        (true, true) => format!("created actor {actor} (default)"),
                        (true, false) => format!("created actor {actor}"),
                        (false, true) => format!("actor {actor} exists; now the default"),
                        (false, false) => format!("actor {actor} already exists"),
                    };
                    match (&acts_for, changed) {
                        (Some(h), true) => {
                            text.push_str(&format!(", acting on behalf of {h}"));
                        }
                        (Some(h), false) => {
                            text.push_str(&format!(" (acts on behalf of {h})"));
                        }
                        (None, _) => {}
                    }
                    text
                },
            )
        }
        ActorCmd::List => {
            let all = repo.actors()?;
            let default = repo.default_actor()?;
            let attributions = repo.attributions()?;
            let rows: Vec<_> = all
                .iter()
                .map(|a| {
                    let mut row = serde_json::json!({"actor": a.as_str(), "default": Some(a) == default.as_ref()});
                    if let Some(h) = attributions.get(a) {
                        row["on_behalf_of"] = h.as_str().into();
                    }
                    row
                })
                .collect();
            ctx.out.done(&rows, || {
                all.iter()
                    .map(|a| {
                        let mark = if Some(a) == default.as_ref() {
                            "*"
                        } else {
                            " "
                        };
                        match attributions.get(a) {
                            Some(h) => format!("{mark} {a} (on behalf of {h})\n"),
                            None => format!("{mark} {a}\n"),
                        }
                    })
                    .collect()
            })
        }
        ActorCmd::Use { name } => {
            let actor = ActorId::new(&name).map_err(RepoError::from)?;
            repo.use_actor(&actor)?;
            ctx.out
                .done(&serde_json::json!({"actor": actor.as_str()}), || {
                    format!("default actor is now {actor}")
                })
        }
    }
}

fn fsck(ctx: &Ctx) -> Result<(), Failure> {
    let repo = ctx.repo()?;
    let report = repo.fsck()?;
    let clean = report.problems.is_empty();
    if !ctx.out.json {
        for w in &report.warnings {
            ctx.out.warn(&format!("{}: {}", w.at, w.what));
        }
    }
    let text = || {
        let mut text = String::new();
        for p in &report.problems {
            text.push_str(&format!("damaged: {}: {}\n", p.at, p.what));
        }
        if report.refs > 0 {
            text.push_str(&format!("{}\n", report.layout_summary()));
        }
        text.push_str(&format!(
            "checked {} issue refs, {} commits, {} events: {}\n",
            report.refs,
            report.commits,
            report.events,
            if clean {
                "ok".to_string()
            } else {
                format!("{} problems", report.problems.len())
            }
        ));
        text
    };
    if clean {
        return ctx.out.done(&report, text);
    }
    // One envelope: `ok: false`, the report as its data, exit 5.
    ctx.out.text(text)?;
    Err(Failure::new(
        Exit::Damaged,
        "damaged",
        format!(
            "fsck found {} problem(s) in {} issue ref(s)",
            report.problems.len(),
            report
                .problems
                .iter()
                .map(|p| &p.at)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        ),
    )
    .hint("damaged issues are not synced; the other issues are unaffected")
    .data(&report))
}
