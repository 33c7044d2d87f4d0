//! Debug logging (`-v`, `-vv`, `RUST_LOG`) through `tracing`, on stderr.
//!
//! Nothing is installed unless asked for, so a plain run pays nothing.
//! `RUST_LOG` (an `EnvFilter` directive, e.g. `reposix=debug`) wins over
//! `-v` (`reposix=debug`) and `-vv` (`reposix=trace`). The library logs
//! every HTTP request (method, URL, status, time; target
//! `reposix::tracker::http`) and every git invocation (arguments, exit
//! status, time; target `reposix::git`). Every line goes through
//! [`reposix::git::redact::redact`] before it reaches stderr, whatever a field
//! holds.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Install the subscriber for `-v` given `verbose` times, or `RUST_LOG`.
pub fn init(verbose: u8) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let directive = match (from_env, verbose) {
        (Some(v), _) => v,
        (None, 0) => return,
        (None, 1) => "reposix=debug".to_owned(),
        (None, _) => "reposix=trace".to_owned(),
    };
    let filter = EnvFilter::try_new(&directive).unwrap_or_else(|e| {
        let _ = writeln!(
            std::io::stderr(),
            "warning: RUST_LOG {directive:?} is not a valid filter ({e}); using reposix=debug"
        );
        EnvFilter::new("reposix=debug")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting)
        .with_ansi(false)
        .try_init();
}

/// Hands out a [`RedactingLine`] per event.
struct Redacting;

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> RedactingLine {
        RedactingLine(Vec::new())
    }
}

/// One formatted event, buffered whole and written redacted when dropped
/// (so a secret split across two `write` calls is still seen whole).
struct RedactingLine(Vec<u8>);

impl Write for RedactingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = reposix::git::redact::redact(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}
