//! A logger for tests that check what green logs, shared by the test binaries of every
//! crate of the workspace through `#[path]`: it keeps the records at or above the level
//! given to [`install`], with their level and target. A logger is process-wide, so each
//! test binary that uses it installs it (the first call wins).
#![allow(dead_code)] // each test binary uses a part

use std::sync::{Mutex, MutexGuard, Once};

/// One record kept.
#[derive(Clone, Debug)]
pub struct Line {
    pub level: log::Level,
    pub target: String,
    pub text: String,
}

struct Capture(Mutex<Vec<Line>>);

impl Capture {
    fn lock(&self) -> MutexGuard<'_, Vec<Line>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.lock().push(Line {
            level: record.level(),
            target: record.target().to_owned(),
            text: record.args().to_string(),
        });
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

/// Installs the capturing logger, keeping the records at `max` or more severe (once
/// per test binary: later calls change nothing).
pub fn install(max: log::LevelFilter) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOGGER).expect("another logger is installed");
        log::set_max_level(max);
    });
}

/// The records kept so far, oldest first.
pub fn lines() -> Vec<Line> {
    LOGGER.lock().clone()
}

/// How many records kept so far contain `what`.
pub fn logged(what: &str) -> usize {
    LOGGER
        .lock()
        .iter()
        .filter(|l| l.text.contains(what))
        .count()
}
