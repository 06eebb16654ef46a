//! Blocking detection: the monitor logs a warning naming the blocking greenlet.

use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.level() == log::Level::Warn {
            self.0.lock().unwrap().push(format!("{}", record.args()));
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn monitor_warns_about_a_blocking_greenlet() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let monitor = green::monitor::start(Duration::from_millis(50));
    // A cooperative greenlet: sleeping is not blocking.
    green::sleep(Duration::from_millis(150));
    assert!(
        LOGGER.0.lock().unwrap().is_empty(),
        "idle hub reported as blocked"
    );
    let h = green::Builder::new()
        .name("busy-loop")
        .spawn(|| {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(400) {
                std::hint::spin_loop(); // never switches
            }
        })
        .unwrap();
    let id = h.greenlet().id();
    h.join().unwrap();
    drop(monitor);
    let logs = LOGGER.0.lock().unwrap().clone();
    assert_eq!(logs.len(), 1, "one warning per stall: {logs:?}");
    assert!(logs[0].contains("busy-loop"), "{logs:?}");
    assert!(logs[0].contains(&format!("greenlet {id} ")), "{logs:?}");
}
