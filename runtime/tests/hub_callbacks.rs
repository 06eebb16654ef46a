//! Code that runs in the hub (timer callbacks, links) must not wait or switch: a
//! `sleep`, `yield_now`, `wait` or switch there panics with a clear message, which the
//! hub catches and logs, instead of blocking the thread or doing nothing. Waits that
//! return a `Result` return `BlockError::InHub`. Its own test binary: it installs a
//! logger, which is process-wide.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{BlockError, Event, JoinError, spawn};

#[path = "../../tests/support/log_capture.rs"]
mod log_capture;
use log_capture::logged;

const MS: Duration = Duration::from_millis(1);

#[test]
fn a_link_that_sleeps_is_reported_and_does_not_block_the_thread() {
    log_capture::install(log::LevelFilter::Error);
    let before = logged("green: sleep: cannot block in the hub");
    let after_sleep = Rc::new(Cell::new(false));
    let a = after_sleep.clone();
    let h = spawn(|| 1);
    h.link(move |_| {
        green::sleep(Duration::from_secs(20));
        a.set(true);
    });
    let t = Instant::now();
    h.wait().unwrap();
    green::sleep(MS);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(!after_sleep.get(), "the link went on after its sleep");
    assert_eq!(logged("green: sleep: cannot block in the hub"), before + 1);
    assert_eq!(h.join().unwrap(), 1, "the hub still works");
}

#[test]
fn a_timer_callback_that_yields_or_waits_is_reported() {
    log_capture::install(log::LevelFilter::Error);
    let before = (
        logged("green: yield_now: cannot block in the hub"),
        logged("green: wait/iwait: cannot block in the hub"),
    );
    let went_on = Rc::new(Cell::new(0));
    let w = went_on.clone();
    green::timer::call_later(Duration::ZERO, move || {
        green::yield_now();
        w.set(w.get() + 1);
    });
    let ev = Event::new();
    let e = ev.clone();
    let w = went_on.clone();
    green::timer::call_later(Duration::ZERO, move || {
        let _ = green::wait(&[&e], None, None);
        w.set(w.get() + 1);
    });
    green::sleep(5 * MS);
    assert_eq!(went_on.get(), 0);
    assert_eq!(
        (
            logged("green: yield_now: cannot block in the hub"),
            logged("green: wait/iwait: cannot block in the hub"),
        ),
        (before.0 + 1, before.1 + 1)
    );
}

#[test]
fn waits_with_an_error_to_return_report_in_hub() {
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let ev = Event::new();
    let e = ev.clone();
    let sleeper = spawn(|| green::sleep(Duration::from_secs(60)));
    let g = sleeper.greenlet().clone();
    green::timer::call_later(Duration::ZERO, move || {
        let lock = green::Lock::new();
        let _held = lock.acquire().unwrap();
        s.set(Some((
            e.wait(),
            lock.acquire().map(|_| ()),
            green::park::park(None),
            g.try_switch(()).map(|_| ()),
        )));
    });
    green::sleep(5 * MS);
    let (event, lock, park, switch) = seen.take().expect("the callback ran");
    assert_eq!(event, Err(BlockError::InHub));
    assert_eq!(lock, Err(green::LockError::Blocked(BlockError::InHub)));
    assert_eq!(park, Err(BlockError::InHub));
    assert_eq!(switch, Err(green::SwitchError::InHub));
    // A join in a link: the error, not a panic.
    let h = spawn(|| ());
    let other = sleeper;
    let got = Rc::new(Cell::new(None));
    let g2 = got.clone();
    h.link(move |_| {
        g2.set(Some(matches!(
            other.join(),
            Err(JoinError::Blocked(BlockError::InHub))
        )))
    });
    h.wait().unwrap();
    assert_eq!(got.get(), Some(true));
}
