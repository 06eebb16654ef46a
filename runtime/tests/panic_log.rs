//! A detached greenlet's panic is logged once, by the greenlet itself, and a logger that
//! switches greenlets while it logs (one writing through monkey-patched IO would) does
//! not disturb the greenlet's death or its outcome. Its own test binary: the logger is
//! process-wide.

use std::sync::Mutex;
use std::time::Duration;

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.level() != log::Level::Error {
            return;
        }
        self.0.lock().unwrap().push(format!("{}", record.args()));
        // Switch away and back while logging, where a greenlet may switch.
        if green::is_greenlet_context() && !green::getcurrent().is_main() {
            green::yield_now();
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

fn logged(what: &str) -> usize {
    LOGGER
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains(what))
        .count()
}

#[test]
fn a_detached_panic_is_logged_once_even_by_a_logger_that_switches() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Error);

    // Detached before it runs: nobody can ever join it, so its panic is logged.
    drop(green::spawn(|| -> u32 {
        panic!("boom in a detached greenlet")
    }));
    green::sleep(Duration::from_millis(10));
    assert_eq!(
        logged("detached greenlet panicked: boom in a detached greenlet"),
        1
    );

    // The hub and the next greenlets are fine.
    assert_eq!(green::spawn(|| 7).join().unwrap(), 7);

    // A joined greenlet's panic is reported to its joiner, not logged as detached.
    let h = green::spawn(|| -> u32 { panic!("boom in a joined greenlet") });
    assert!(matches!(h.join(), Err(green::JoinError::Panicked(_))));
    assert_eq!(logged("boom in a joined greenlet"), 0);
}
