//! A logger for tests that check what the runtime logs: it keeps the error lines. A
//! logger is process-wide, so a test file using it is a test binary of its own.

use std::sync::{Mutex, Once};

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.level() <= log::Level::Error {
            self.0.lock().unwrap().push(format!("{}", record.args()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

/// Installs the capturing logger (once per test binary).
pub fn install_logger() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOGGER).unwrap();
        log::set_max_level(log::LevelFilter::Error);
    });
}

/// How many error lines logged so far contain `what`.
pub fn logged(what: &str) -> usize {
    LOGGER
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains(what))
        .count()
}
