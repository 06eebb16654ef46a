//! Blocking detection: the monitor logs a warning naming the blocking greenlet.

use std::time::{Duration, Instant};

#[path = "../../tests/support/log_capture.rs"]
mod log_capture;

/// The warnings logged so far.
fn warnings() -> Vec<String> {
    log_capture::lines()
        .into_iter()
        .filter(|l| l.level == log::Level::Warn)
        .map(|l| l.text)
        .collect()
}

#[test]
fn monitor_warns_about_a_blocking_greenlet() {
    log_capture::install(log::LevelFilter::Warn);
    let monitor = green::monitor::start(Duration::from_millis(50));
    // A cooperative greenlet: sleeping is not blocking.
    green::sleep(Duration::from_millis(150));
    assert!(warnings().is_empty(), "idle hub reported as blocked");
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
    let logs = warnings();
    assert_eq!(logs.len(), 1, "one warning per stall: {logs:?}");
    assert!(logs[0].contains("busy-loop"), "{logs:?}");
    assert!(logs[0].contains(&format!("greenlet {id} ")), "{logs:?}");
}
