//! A logger for tests that check what green logs: it keeps the warning and error
//! lines. A logger is process-wide, so each test binary installs its own.

use std::sync::{Mutex, Once};

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.level() <= log::Level::Warn {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

/// Installs the capturing logger (once per test binary).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOGGER).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// How many lines logged so far contain `what`.
pub fn logged(what: &str) -> usize {
    LOGGER
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains(what))
        .count()
}
