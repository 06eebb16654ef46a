//! `std::thread::spawn` + `JoinHandle::join` from greenlets after `patch_all()`: the
//! join parks the greenlet (glibc's `pthread_join` runs on the blocking pool), so the
//! hub keeps running, and a thread that needs this hub's greenlets can finish.

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn joins_of_greenlets_overlap() {
    let _dog = watchdog::arm();
    support::setup();
    let t = Instant::now();
    let hs: Vec<_> = (0..20)
        .map(|i| {
            green::spawn(move || {
                let th = thread::spawn(move || {
                    thread::sleep(Duration::from_millis(100));
                    i * 2
                });
                th.join().unwrap()
            })
        })
        .collect();
    for (i, r) in green::joinall(hs).into_iter().enumerate() {
        assert_eq!(r.unwrap(), i * 2);
    }
    support::assert_concurrent("spawn + join", t.elapsed(), 20, Duration::from_millis(100));
}

#[test]
fn a_join_lets_the_hub_run() {
    let _dog = watchdog::arm();
    support::setup();
    let ticks = Rc::new(Cell::new(0));
    let tk = ticks.clone();
    let ticker = green::spawn(move || {
        for _ in 0..10 {
            green::sleep(Duration::from_millis(5));
            tk.set(tk.get() + 1);
        }
    });
    let th = thread::spawn(|| thread::sleep(Duration::from_millis(100)));
    th.join().unwrap(); // main parks
    assert_eq!(ticks.get(), 10);
    ticker.join().unwrap();
}

#[test]
fn joining_a_thread_that_needs_this_hubs_greenlets() {
    let _dog = watchdog::arm();
    support::setup();
    let (ask, asked) = mpsc::channel::<u32>();
    let (answer, answered) = mpsc::channel::<u32>();
    let server = green::spawn(move || {
        while let Ok(v) = asked.recv() {
            thread::sleep(Duration::from_millis(1)); // a patched sleep too
            answer.send(v + 1).unwrap();
        }
    });
    let th = thread::spawn(move || {
        let mut n = 0;
        for _ in 0..20 {
            ask.send(n).unwrap();
            n = answered.recv().unwrap();
        }
        n
    });
    assert_eq!(th.join().unwrap(), 20);
    server.join().unwrap();
}

#[test]
fn a_finished_thread_is_joined_at_once_and_panics_come_back() {
    let _dog = watchdog::arm();
    support::setup();
    let th = thread::spawn(|| 5);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(th.join().unwrap(), 5);
    let th = thread::spawn(|| panic!("boom"));
    let e = green::spawn(move || th.join().unwrap_err()).join().unwrap();
    assert_eq!(e.downcast_ref::<&str>(), Some(&"boom"));
}

#[test]
fn a_kill_during_a_join_waits_for_the_thread_then_unwinds() {
    let _dog = watchdog::arm();
    support::setup();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let t = Instant::now();
    let h = green::spawn(move || {
        let th = thread::spawn(|| thread::sleep(Duration::from_millis(100)));
        th.join().unwrap(); // killed meanwhile: still joins
        d.set(true);
        green::yield_now(); // the kill unwinds here
    });
    green::sleep(Duration::from_millis(20));
    h.kill_nowait();
    assert!(h.join().unwrap_err().is_killed());
    assert!(done.get(), "the join finished first");
    assert!(t.elapsed() >= Duration::from_millis(90));
}
