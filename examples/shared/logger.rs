//! A minimal logger for the `log` crate that writes to stderr, so that the library's
//! own lines (a warning when `accept` runs out of file descriptors, a panic in a
//! greenlet nobody joins) are seen.

use std::time::{Duration, Instant};

use log::{LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

/// Installs the logger. The level comes from `RUST_LOG` when it holds one of `off`,
/// `error`, `warn`, `info`, `debug`, `trace`; otherwise it is `warn`.
pub fn init() {
    let level = match std::env::var("RUST_LOG") {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("RUST_LOG={v:?} is not a log level; using warn");
            LevelFilter::Warn
        }),
        Err(_) => LevelFilter::Warn,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// Failures closer together than this belong to one episode.
const EPISODE_GAP: Duration = Duration::from_secs(5);

/// Reports failures that come in runs with one line per run (an episode: failures
/// less than [`EPISODE_GAP`] apart), not one line per failure.
#[derive(Debug, Default)]
pub struct Episode {
    last: Option<Instant>,
}

impl Episode {
    /// Notes a failure; prints `what: e` on stderr if it starts an episode.
    pub fn error(&mut self, what: &str, e: &dyn std::fmt::Display) {
        let now = Instant::now();
        if self.last.is_none_or(|t| now - t >= EPISODE_GAP) {
            eprintln!(
                "{what}: {e} (repeats less than {} s apart are not printed)",
                EPISODE_GAP.as_secs()
            );
        }
        self.last = Some(now);
    }
}
