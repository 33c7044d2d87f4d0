//! `reposix-sim`: run the tracker simulator in the foreground.
//!
//! `reposix-sim [--bind ADDR] [--seed-file FILE | --no-seed]
//! [--state-file FILE] [--rate-limit N] [--fail-every N] [--no-comments]`
//! (the same options as `reposix sim`). Prints the base URL, then serves
//! until killed.

#![forbid(unsafe_code)]

use std::net::ToSocketAddrs;
use std::process::ExitCode;

use reposix_sim::SimConfig;

const USAGE: &str = "usage: reposix-sim [--bind ADDR] [--seed-file FILE | --no-seed] \
[--state-file FILE] [--rate-limit N] [--fail-every N] [--no-comments]";

fn main() -> ExitCode {
    match config(std::env::args().skip(1)) {
        Ok(Some(config)) => match reposix_sim::start(config) {
            Ok(handle) => {
                println!("reposix-sim listening on {}", handle.base_url());
                handle.wait();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("reposix-sim: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("reposix-sim: {why}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The configuration the arguments ask for; `None` for `--help`.
fn config(mut args: impl Iterator<Item = String>) -> Result<Option<SimConfig>, String> {
    let mut config = SimConfig {
        bind: ([127, 0, 0, 1], 7878).into(),
        builtin_seed: true,
        ..SimConfig::default()
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--bind" => {
                let v = value("--bind")?;
                config.bind = v
                    .to_socket_addrs()
                    .map_err(|e| format!("--bind {v:?}: {e}"))?
                    .next()
                    .ok_or(format!("--bind {v:?} resolves to no address"))?;
            }
            "--seed-file" => config.seed_file = Some(value("--seed-file")?.into()),
            "--no-seed" => config.builtin_seed = false,
            "--state-file" => config.state_file = Some(value("--state-file")?.into()),
            "--rate-limit" => {
                let v = value("--rate-limit")?;
                config.rate_limit = v
                    .parse()
                    .map_err(|_| format!("--rate-limit {v:?}: not a number"))?;
            }
            "--fail-every" => {
                let v = value("--fail-every")?;
                config.fail_every_n = v
                    .parse()
                    .map_err(|_| format!("--fail-every {v:?}: not a number"))?;
            }
            "--no-comments" => config.accept_comments = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<SimConfig>, String> {
        config(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn options_match_reposix_sim() {
        let c = parse(&["--bind", "127.0.0.1:0", "--no-seed", "--rate-limit", "0"])
            .expect("valid")
            .expect("a config");
        assert_eq!(c.bind.port(), 0);
        assert!(!c.builtin_seed);
        assert_eq!(c.rate_limit, 0);
        let d = parse(&[]).expect("valid").expect("a config");
        assert!(
            d.builtin_seed,
            "the demo seed unless --no-seed, as reposix-sim"
        );
        assert_eq!(d.bind.port(), 7878);
        assert!(parse(&["--help"]).expect("valid").is_none());
        assert!(parse(&["--rate-limit", "x"]).is_err());
        assert!(parse(&["--bind"]).is_err(), "a missing value is an error");
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
