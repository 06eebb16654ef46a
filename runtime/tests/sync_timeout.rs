//! Timeouts: gevent's test__timeout.py behaviours.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::{sleep, spawn, with_timeout, Timeout};

const MS: Duration = Duration::from_millis(1);

#[test]
fn interrupts_and_runs_destructors() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let t = Instant::now();
    let r = with_timeout(20 * MS, move || {
        let _f = Flag(d);
        sleep(Duration::from_secs(10));
    });
    assert!(r.is_err());
    assert!(dropped.get());
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn finished_body_returns_value() {
    assert_eq!(with_timeout(Duration::from_secs(5), || 7), Ok(7));
    assert_eq!(
        with_timeout(Duration::from_secs(5), || {
            sleep(MS);
            8
        }),
        Ok(8)
    );
}

#[test]
fn nested_inner_shorter_fires_inner() {
    let outer = with_timeout(Duration::from_secs(5), || {
        let inner = with_timeout(10 * MS, || sleep(Duration::from_secs(10)));
        assert_eq!(inner.unwrap_err().duration(), 10 * MS);
        "outer finished"
    });
    assert_eq!(outer, Ok("outer finished"));
}

#[test]
fn nested_outer_shorter_passes_through_inner() {
    let inner_saw = Rc::new(Cell::new(false));
    let s = inner_saw.clone();
    let outer = with_timeout(10 * MS, move || {
        let r = with_timeout(Duration::from_secs(5), || sleep(Duration::from_secs(10)));
        s.set(true); // never reached: the outer timeout unwinds through
        r
    });
    let t = outer.unwrap_err();
    assert_eq!(t.duration(), 10 * MS);
    assert!(!inner_saw.get());
}

#[test]
fn guard_form_ids_tell_whose_timeout_fired() {
    let a = Timeout::start(Duration::from_secs(5));
    let b = Timeout::start(10 * MS);
    let t = Timeout::catch(|| sleep(Duration::from_secs(10))).unwrap_err();
    assert!(b.is(&t));
    assert!(!a.is(&t));
    assert!(a.pending());
    assert!(!b.pending());
}

#[test]
fn cancelled_timeout_never_fires_later() {
    for _ in 0..20 {
        let r = with_timeout(2 * MS, || sleep(Duration::from_micros(1500)));
        assert!(r.is_ok() || r.is_err());
    }
    // A body that finished just before its deadline: nothing may hit us afterwards.
    let r = with_timeout(5 * MS, || ());
    assert!(r.is_ok());
    let g = Timeout::start(5 * MS);
    g.cancel();
    // Sleep well past both deadlines: a stray throw would unwind this test.
    sleep(30 * MS);
}

#[test]
fn stale_throw_already_queued_is_withdrawn() {
    // `a` arms a timeout and hands the guard to `b`. Both timers (b's wake-up first,
    // then a's timeout) come due in the same batch while main spins, so the hub
    // queues `b` and then a's throw. `b` runs first and drops the guard: the throw
    // already queued must be withdrawn, and `a` must sleep on undisturbed.
    let slot: Rc<std::cell::RefCell<Option<green::TimeoutGuard>>> = Rc::default();
    let s = slot.clone();
    let b = spawn(move || {
        sleep(5 * MS);
        drop(s.borrow_mut().take());
    });
    let s = slot.clone();
    let a = spawn(move || {
        *s.borrow_mut() = Some(Timeout::start(6 * MS));
        Timeout::catch(|| sleep(60 * MS)).is_ok()
    });
    green::yield_now(); // both start: b sleeps, a arms its timeout and sleeps
    assert!(slot.borrow().is_some());
    let t = Instant::now();
    while t.elapsed() < 30 * MS {
        std::hint::spin_loop(); // no switch: both timers become overdue
    }
    b.join().unwrap();
    assert!(a.join().unwrap(), "a cancelled timeout hit its greenlet");
}

#[test]
fn timeout_in_spawned_greenlet_and_uncaught_payload() {
    let h = spawn(|| with_timeout(5 * MS, || sleep(Duration::from_secs(5))).is_err());
    assert!(h.join().unwrap());
    // Uncaught guard-form timeout unwinds the greenlet: it counts as panicked.
    let h = spawn(|| {
        let _g = Timeout::start(5 * MS);
        sleep(Duration::from_secs(5));
    });
    let err = h.join().unwrap_err();
    assert!(err.is_panic());
    assert!(err.into_panic().is::<Timeout>());
}

#[test]
fn other_panics_pass_through() {
    let r = std::panic::catch_unwind(|| {
        let _ = with_timeout(Duration::from_secs(5), || std::panic::panic_any(42u8));
    });
    assert_eq!(r.unwrap_err().downcast_ref::<u8>(), Some(&42));
}

#[test]
fn timeout_in_main_greenlet_interrupts_queue_get() {
    let q: green::Queue<i32> = green::Queue::new();
    let r = with_timeout(10 * MS, || q.get());
    assert!(r.is_err());
    assert_eq!(q.getters(), 0, "the interrupted getter left the line");
}
