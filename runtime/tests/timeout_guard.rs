//! `TimeoutGuard`: made without starting it (`new`, `with_error`), started later,
//! raising an error of the caller's, and caught by its own `catch`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use green::{JoinError, Timeout, TimeoutGuard};

#[derive(Debug, PartialEq)]
struct TooSlow(u32);

#[test]
fn an_unstarted_timeout_is_not_pending_and_never_fires() {
    let t = TimeoutGuard::new(Duration::from_millis(1));
    assert!(!t.pending());
    let r = Timeout::catch(|| green::sleep(Duration::from_millis(20)));
    assert_eq!(r, Ok(()));
    assert!(!t.pending());
}

#[test]
fn start_arms_it_from_then_and_only_once() {
    let t = TimeoutGuard::new(Duration::from_millis(30));
    green::sleep(Duration::from_millis(40)); // longer than the duration: not armed yet
    let started = Instant::now();
    assert!(t.start());
    assert!(!t.start(), "already pending");
    let r = t.catch(|| green::sleep(Duration::from_secs(10)));
    assert!(r.unwrap_err().is::<Timeout>());
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert!(!t.pending());
    // Fired: it may be started again.
    assert!(t.start());
    assert!(t.catch(|| green::sleep(Duration::from_secs(10))).is_err());
}

#[test]
fn a_timeout_with_an_error_raises_it() {
    let t = Timeout::start_with_error(Duration::from_millis(5), TooSlow(3));
    let err = t
        .catch(|| green::sleep(Duration::from_secs(10)))
        .unwrap_err();
    assert_eq!(err.downcast_ref::<TooSlow>(), Some(&TooSlow(3)));
    // Started again after it raised its error: a plain timeout.
    assert!(t.start());
    let err = t
        .catch(|| green::sleep(Duration::from_secs(10)))
        .unwrap_err();
    assert!(t.is(err.downcast_ref::<Timeout>().unwrap()));
}

#[test]
fn timeout_catch_does_not_catch_an_error_timeout() {
    let _t = Timeout::start_with_error(Duration::from_millis(5), TooSlow(1));
    let r = catch_unwind(AssertUnwindSafe(|| {
        Timeout::catch(|| green::sleep(Duration::from_secs(10)))
    }));
    let p = r.expect_err("the error passes through Timeout::catch");
    assert_eq!(p.downcast_ref::<TooSlow>(), Some(&TooSlow(1)));
}

#[test]
fn catch_lets_other_timeouts_and_panics_pass() {
    let outer = Timeout::start(Duration::from_millis(5));
    let inner = TimeoutGuard::with_error(Duration::from_secs(10), TooSlow(2));
    inner.start();
    let r = outer.catch(|| inner.catch(|| green::sleep(Duration::from_secs(10))));
    assert!(outer.is(r.unwrap_err().downcast_ref::<Timeout>().unwrap()));
    let p = catch_unwind(AssertUnwindSafe(|| inner.catch(|| panic!("boom"))));
    assert_eq!(p.unwrap_err().downcast_ref::<&str>(), Some(&"boom"));
    // The inner one never fired: its error is still there, and it is still pending.
    assert!(inner.pending());
}

#[test]
fn an_uncaught_error_timeout_ends_a_spawned_greenlet_with_the_error() {
    let h = green::spawn(|| {
        let _t = Timeout::start_with_error(Duration::from_millis(5), TooSlow(9));
        green::sleep(Duration::from_secs(10));
    });
    match h.join() {
        Err(JoinError::Panicked(p)) => assert_eq!(p.downcast_ref::<TooSlow>(), Some(&TooSlow(9))),
        other => panic!("{other:?}"),
    }
}
