//! The panic of a greenlet nobody can join is logged once, from the hub, where a logger
//! cannot switch greenlets: a logger that would (one writing through monkey-patched IO,
//! or waiting for something) must not let a kill escape the dying greenlet or leave it
//! half dead. Its own test binary: the logger is process-wide.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::time::Duration;

/// Records error messages; when called in a greenlet, yields, and parks for good on
/// messages containing "park".
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.level() != log::Level::Error {
            return;
        }
        let msg = format!("{}", record.args());
        self.0.lock().unwrap().push(msg.clone());
        if green::is_greenlet_context() && !green::getcurrent().is_main() {
            if msg.contains("park") {
                let _ = green::park::park(None);
            } else {
                green::yield_now();
            }
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOGGER).unwrap();
        log::set_max_level(log::LevelFilter::Error);
    });
}

fn logged(what: &str) -> usize {
    let logs = LOGGER.0.lock().unwrap();
    logs.iter().filter(|m| m.contains(what)).count()
}

#[test]
fn a_detached_panic_is_logged_once_and_a_joined_one_is_not() {
    install();
    // Detached before it runs: nobody can ever join it, so its panic is logged.
    drop(green::spawn(|| -> u32 {
        panic!("boom in a detached greenlet")
    }));
    green::sleep(Duration::from_millis(10));
    assert_eq!(logged("panicked: boom in a detached greenlet"), 1);
    assert_eq!(green::spawn(|| 7).join().unwrap(), 7, "the hub still works");

    // A joined greenlet's panic goes to its joiner, not to the log.
    let h = green::spawn(|| -> u32 { panic!("boom in a joined greenlet") });
    assert!(h.join().unwrap_err().is_panic());
    assert_eq!(logged("boom in a joined greenlet"), 0);
}

#[test]
fn a_kill_right_after_a_detached_panic_does_not_escape_the_greenlet() {
    install();
    let h = green::spawn(|| -> u32 { panic!("boom before a kill") });
    let g = h.greenlet().clone();
    drop(h);
    green::yield_now(); // it runs, panics and dies (its panic logged by the hub)
    green::throw_into(&g, Box::new(green::GreenletExit));
    let r = catch_unwind(AssertUnwindSafe(|| green::sleep(Duration::from_millis(5))));
    assert!(r.is_ok(), "the kill unwound out of main's sleep()");
    assert!(g.dead());
    assert_eq!(logged("panicked: boom before a kill"), 1);
}

#[test]
fn a_detached_panic_with_a_logger_that_would_park_leaves_no_orphan_behind() {
    install();
    // A logger that would wait forever in a greenlet: the message is logged from the hub,
    // so it does not wait, and the greenlet dies normally.
    drop(green::spawn(|| -> u32 { panic!("boom, then park") }));
    let r = catch_unwind(AssertUnwindSafe(|| {
        green::sleep(Duration::from_millis(5));
        green::sleep(Duration::from_millis(5));
    }));
    assert!(r.is_ok(), "an orphan's kill unwound out of main's sleep()");
    assert_eq!(logged("panicked: boom, then park"), 1);
}

#[test]
fn a_throw_a_spawned_greenlet_queued_for_itself_before_returning_is_not_logged() {
    install();
    let h = green::spawn(|| {
        green::throw_into(&green::getcurrent(), Box::new("stale self-throw"));
        7
    });
    assert_eq!(h.join().unwrap(), 7);
    green::sleep(Duration::from_millis(10)); // the stale queue entry comes up
    assert_eq!(logged("stale self-throw"), 0);
}
