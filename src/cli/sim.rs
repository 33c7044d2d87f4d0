//! `reposix sim`: run the tracker simulator in the foreground.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::Args;

use reposix_sim::{self as sim, SimConfig, SimError};

use super::{Ctx, Exit, Failure};

/// Arguments of `reposix sim`.
#[derive(Args)]
pub struct SimArgs {
    /// Loopback address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    bind: String,
    /// Seed data in reposix-sim's seed-file shape (one project, its issues);
    /// without it, the built-in `demo` project, as reposix-sim starts.
    #[arg(long, value_name = "FILE", conflicts_with = "no_seed")]
    seed_file: Option<PathBuf>,
    /// Start with no issues at all.
    #[arg(long)]
    no_seed: bool,
    /// Keep the state in this JSON file (loaded at start if it exists,
    /// saved after every write; the seed is then ignored).
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
    /// Requests per second per `X-Reposix-Agent` before 429 (0 = no limit).
    #[arg(long, default_value_t = 100, value_name = "N")]
    rate_limit: u32,
    /// Answer every N-th request with 500 (0 = never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    fail_every: u64,
    /// No comments API (404 there), like reposix-sim 0.14.
    #[arg(long)]
    no_comments: bool,
}

/// Serve the simulator until the process is killed.
pub fn run(ctx: &Ctx, args: SimArgs) -> Result<(), Failure> {
    let bind = resolve(&args.bind)?;
    let config = SimConfig {
        bind,
        seed_file: args.seed_file,
        builtin_seed: !args.no_seed,
        state_file: args.state_file,
        rate_limit: args.rate_limit,
        fail_every_n: args.fail_every,
        accept_comments: !args.no_comments,
        ..SimConfig::default()
    };
    let handle = sim::start(config).map_err(sim_failure)?;
    let url = handle.base_url();
    ctx.out.done(&serde_json::json!({ "base_url": url }), || {
        format!("reposix sim listening on {url} (backend address: sim::{url}/<project>)")
    })?;
    handle.wait();
    Ok(())
}

fn resolve(bind: &str) -> Result<SocketAddr, Failure> {
    let invalid = |why: String| {
        Failure::new(Exit::Invalid, "invalid", format!("--bind {bind:?}: {why}"))
            .hint("use a loopback address such as 127.0.0.1:7878")
    };
    let mut addrs = bind.to_socket_addrs().map_err(|e| invalid(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| invalid("resolves to no address".into()))
}

fn sim_failure(e: SimError) -> Failure {
    let message = reposix::error_chain(&e);
    match e {
        SimError::NotLoopback { .. } => Failure::new(Exit::Invalid, "invalid", message)
            .hint("use a loopback address such as 127.0.0.1:7878"),
        SimError::Read { .. } | SimError::Decode { .. } | SimError::Invalid { .. } => {
            Failure::new(Exit::Invalid, "invalid", message)
        }
        SimError::Bind { .. } | SimError::Serve { .. } => {
            Failure::new(Exit::Failure, "io", message)
                .hint("is another process using the port? try --bind 127.0.0.1:0")
        }
    }
}
