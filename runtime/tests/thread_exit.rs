//! Greenlets still alive when their thread ends are unwound when the thread's hub is
//! dropped: their destructors run. Its own test binary: it installs a logger (the line
//! about greenlets that would not unwind), which is process-wide.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use green::{Event, Greenlet, Value, getcurrent, spawn, yield_now};

#[path = "../../tests/support/log_capture.rs"]
mod log_capture;
use log_capture::logged;

const HOUR: Duration = Duration::from_secs(3600);

/// Sets its flag when dropped.
struct Guard(Arc<AtomicBool>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `body` on a new thread with a guard, joins the thread, and returns whether the
/// guard was dropped by then and how long the thread took.
fn on_a_thread(body: impl FnOnce(Guard) + Send + 'static) -> (bool, Duration) {
    let flag = Arc::new(AtomicBool::new(false));
    let guard = Guard(flag.clone());
    let t = Instant::now();
    std::thread::spawn(move || body(guard)).join().unwrap();
    (flag.load(Ordering::SeqCst), t.elapsed())
}

#[test]
fn a_greenlet_sleeping_forever_is_unwound_when_its_thread_ends() {
    let (dropped, _) = on_a_thread(|guard| {
        let _h = spawn(move || {
            let _g = guard;
            green::sleep(HOUR);
        });
        yield_now(); // it starts and parks
    });
    assert!(dropped);
}

#[test]
fn a_greenlet_waiting_for_an_event_only_it_holds_is_unwound() {
    // Once the thread's function returns, the greenlet's own stack is all that holds
    // the event, and the event's waiter list all that holds the greenlet.
    let (dropped, _) = on_a_thread(|guard| {
        let ev = Event::new();
        let e = ev.clone();
        drop(spawn(move || {
            let _g = guard;
            let _ = e.wait();
        }));
        yield_now();
    });
    assert!(dropped);
}

#[test]
fn unstarted_and_explicitly_suspended_greenlets_are_unwound_too() {
    let (dropped, _) = on_a_thread(|guard| {
        drop(spawn(move || drop(guard)));
    });
    assert!(dropped, "a spawned greenlet that never ran");
    let (dropped, _) = on_a_thread(|guard| {
        // It switched back to main and keeps a handle to itself.
        let main = getcurrent();
        let me: Rc<RefCell<Option<Greenlet>>> = Rc::default();
        let m = me.clone();
        let g = Greenlet::new(move |_: Value| {
            let _keep = m;
            let _g = guard;
            main.switch(());
        });
        *me.borrow_mut() = Some(g.clone());
        g.switch(());
    });
    assert!(dropped, "a greenlet suspended by an explicit switch");
}

#[test]
fn a_destructor_that_waits_has_its_wait_ended() {
    /// Waits in its destructor (for an hour, then for an event nobody sets), then
    /// drops its guard.
    struct Waits(Option<Guard>, Event);
    impl Drop for Waits {
        fn drop(&mut self) {
            green::sleep(HOUR);
            let _ = self.1.wait();
            self.0.take();
        }
    }
    let (dropped, took) = on_a_thread(|guard| {
        let _h = spawn(move || {
            let _w = Waits(Some(guard), Event::new());
            green::sleep(HOUR);
        });
        yield_now();
    });
    assert!(dropped);
    assert!(took < Duration::from_secs(60), "{took:?}");
}

#[test]
fn greenlets_that_refuse_to_die_are_left_with_a_log_line() {
    log_capture::install(log::LevelFilter::Error);
    let before = logged("would not unwind");
    let (dropped, took) = on_a_thread(|guard| {
        // One catches every kill and parks again, one yields again and again.
        let _parks = spawn(|| {
            loop {
                let _ = catch_unwind(|| green::sleep(HOUR));
            }
        });
        let _yields = spawn(move || {
            let _g = guard;
            loop {
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    loop {
                        yield_now();
                    }
                }));
            }
        });
        yield_now();
    });
    assert!(!dropped, "it never died");
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert_eq!(logged("would not unwind"), before + 1);
}
