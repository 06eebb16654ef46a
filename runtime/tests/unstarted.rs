//! Greenlets made without starting them: `Builder::build`, then `JoinHandle::start` or
//! `start_later` (gevent's `Greenlet(f)`, `start()`, `start_later()`), and the state
//! queries (`is_started`, `is_finished`, `is_successful`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{BlockError, Builder, JoinError};

fn counter() -> (Rc<Cell<u32>>, impl FnOnce() -> u32 + 'static) {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    (runs, move || {
        r.set(r.get() + 1);
        r.get()
    })
}

#[test]
fn a_built_greenlet_runs_only_once_started() {
    let (runs, f) = counter();
    let h = Builder::new().name("built").build(f).unwrap();
    green::yield_now();
    green::sleep(Duration::from_millis(2));
    assert_eq!(runs.get(), 0, "not started: the hub does not run it");
    assert!(!h.is_started() && !h.is_finished() && !h.is_successful());
    assert!(!h.greenlet().started());
    assert_eq!(h.greenlet().name(), Some("built"));
    h.start();
    assert!(h.is_started() && !h.is_finished());
    assert_eq!(
        runs.get(),
        0,
        "scheduled, as a spawn: it runs when we block"
    );
    assert_eq!(h.join().unwrap(), 1);
}

#[test]
fn start_twice_or_after_the_end_runs_it_once() {
    let (runs, f) = counter();
    let h = Builder::new().build(f).unwrap();
    h.start();
    h.start();
    h.start_later(Duration::ZERO);
    h.wait().unwrap();
    assert!(h.is_finished() && h.is_successful() && h.is_started());
    h.start();
    h.start_later(Duration::ZERO);
    green::sleep(Duration::from_millis(2));
    assert_eq!(runs.get(), 1);
    assert_eq!(h.value(), Some(1));
}

#[test]
fn start_later_waits_for_the_delay() {
    let t = Instant::now();
    let h = Builder::new().build(Instant::now).unwrap();
    h.start_later(Duration::from_millis(30));
    assert!(h.is_started());
    let started_at = h.join().unwrap();
    assert!(started_at.duration_since(t) >= Duration::from_millis(30));
}

#[test]
fn start_after_start_later_changes_nothing() {
    // As gevent's start(): a greenlet scheduled already stays as scheduled.
    let t = Instant::now();
    let (runs, f) = counter();
    let h = Builder::new().build(f).unwrap();
    h.start_later(Duration::from_millis(30));
    h.start();
    green::sleep(Duration::from_millis(5));
    assert_eq!(runs.get(), 0, "not started early");
    assert_eq!(h.join().unwrap(), 1);
    assert!(t.elapsed() >= Duration::from_millis(30));
}

#[test]
fn killing_a_greenlet_scheduled_to_start_later_cancels_its_start() {
    let (runs, f) = counter();
    let h = Builder::new().build(f).unwrap();
    h.start_later(Duration::from_secs(60));
    let t = Instant::now();
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(runs.get(), 0);
    assert!(t.elapsed() < Duration::from_secs(30));
    // Its start timer is gone: nothing is left for the hub to wait for.
    let ev = green::Event::new();
    assert_eq!(ev.wait(), Err(BlockError::WouldBlockForever));
}

#[test]
fn joining_a_greenlet_nobody_starts_would_block_forever() {
    // Nothing could ever start it: gevent's LoopExit.
    let h = Builder::new().build(|| ()).unwrap();
    assert!(matches!(
        h.join(),
        Err(JoinError::Blocked(BlockError::WouldBlockForever))
    ));
}

#[test]
fn killing_a_built_greenlet_means_it_never_runs() {
    let (runs, f) = counter();
    let h = Builder::new().build(f).unwrap();
    h.kill();
    assert!(h.is_finished() && h.is_started() && !h.is_successful());
    h.start();
    green::yield_now();
    assert_eq!(runs.get(), 0);
    assert!(h.join().unwrap_err().is_killed());
}

#[test]
fn dropping_a_built_handle_drops_the_closure_unrun() {
    let captured = Rc::new(());
    let c = captured.clone();
    let h = Builder::new().build(move || drop(c)).unwrap();
    assert_eq!(Rc::strong_count(&captured), 2);
    drop(h);
    assert_eq!(Rc::strong_count(&captured), 1);
}

#[test]
fn a_built_greenlet_can_be_linked_before_it_starts() {
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let h = Builder::new().build(|| 9).unwrap();
    h.link_value(move |v| s.set(*v));
    h.start();
    h.wait().unwrap();
    assert_eq!(seen.get(), 9);
}
