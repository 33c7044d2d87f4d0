//! The benchmark commands (cargo feature `bench`): tooling that measures
//! reposix against plain git on the same work, for the README's tables;
//! not part of the product binary.
//!
//! One file per command: `store` (`bench`), `scale` (`bench deep|body|
//! wide`), `import` (`bench-import`), `sync` (`bench-sync`), `agents`
//! (`bench-agents`). They share `measure` (timing processes, the work
//! directory) and `synthetic` (generated stores, the `fast-import` floor).

mod agents;
mod import;
mod measure;
mod scale;
mod store;
mod sync;
mod synthetic;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Ctx, Failure};

/// The benchmark commands, flattened into the top-level commands.
#[derive(Subcommand)]
pub enum BenchCmd {
    /// Measure write, list and show speed against `git fast-import`.
    Bench(BenchArgs),
    /// Measure importing from the embedded sim against a plain HTTP loop.
    BenchImport(import::BenchImportArgs),
    /// Measure `sync` against plain `git fetch` + `git push`.
    BenchSync(sync::BenchSyncArgs),
    /// Measure `ready`/`blocked` against `issue list`, and swarm throughput.
    BenchAgents(agents::BenchAgentsArgs),
}

/// Arguments of `reposix bench`: a scale scenario, or the default run.
#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    scale: scale::ScaleArgs,
    #[command(flatten)]
    store: store::StoreArgs,
    /// Work in this directory (kept) instead of a temporary one.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Run one benchmark command.
pub fn run(ctx: &Ctx, cmd: BenchCmd) -> Result<(), Failure> {
    match cmd {
        BenchCmd::Bench(args) => match args.scale.scenario {
            Some(scenario) => {
                let work = measure::WorkDir::new(args.dir.as_ref(), "scale")?;
                scale::run(ctx, scenario, &args.scale, &work)
            }
            None => {
                let work = measure::WorkDir::new(args.dir.as_ref(), "store")?;
                store::run(ctx, &args.store, &work)
            }
        },
        BenchCmd::BenchImport(args) => import::run(ctx, &args),
        BenchCmd::BenchSync(args) => sync::run(ctx, &args),
        BenchCmd::BenchAgents(args) => agents::run(ctx, &args),
    }
}
