//! The blocking pool's settings: queueing when full, idle threads exiting, bad input.
//! The pool is process-wide, so the tests of this file take turns (`SERIAL`).

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use green::blocking::{self, Config};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits (cooperatively) until `f` holds, for at most `limit`.
fn eventually(limit: Duration, f: impl Fn() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        green::sleep(Duration::from_millis(10));
    }
    f()
}

#[test]
fn bad_settings_are_errors() {
    let _dog = watchdog::arm();
    let _s = serial();
    let before = blocking::config();
    let e = blocking::configure(Config::new().max_threads(0)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = blocking::configure(Config::new().idle_timeout(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        blocking::config(),
        before,
        "a refused setting changes nothing"
    );
}

#[test]
fn a_full_pool_queues_callers_in_order() {
    let _dog = watchdog::arm();
    let _s = serial();
    blocking::configure(Config::new().max_threads(2)).unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let jobs: Vec<_> = (0..6)
        .map(|i| {
            let started = started.clone();
            green::spawn(move || {
                green::run_blocking(move || {
                    started.lock().unwrap().push(i);
                    std::thread::sleep(Duration::from_millis(100));
                    i
                })
            })
        })
        .collect();
    // While two run, the other four wait in the queue (not failed, not run).
    assert!(
        eventually(Duration::from_secs(5), || blocking::stats().queued == 4),
        "{:?}",
        blocking::stats()
    );
    assert!(blocking::stats().threads <= 2, "{:?}", blocking::stats());
    let done: Vec<usize> = green::joinall(jobs)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(done, [0, 1, 2, 3, 4, 5]);
    let order = started.lock().unwrap().clone();
    // First come, first served: each pair starts before the next pair.
    let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
    for i in 0..6 {
        for j in (i / 2 + 1) * 2..6 {
            assert!(pos(i) < pos(j), "job {i} started after job {j}: {order:?}");
        }
    }
    // Three waves of 100 ms on two threads.
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(290), "{took:?}");
    blocking::configure(Config::new()).unwrap();
}

#[test]
fn idle_threads_exit_after_the_idle_timeout() {
    let _dog = watchdog::arm();
    let _s = serial();
    blocking::configure(Config::new().idle_timeout(Duration::from_millis(100))).unwrap();
    let hs: Vec<_> = (0..3)
        .map(|_| {
            green::spawn(|| green::run_blocking(|| std::thread::sleep(Duration::from_millis(30))))
        })
        .collect();
    green::joinall(hs);
    assert!(blocking::stats().threads >= 1);
    assert!(
        eventually(Duration::from_secs(5), || blocking::stats().threads == 0),
        "{:?}",
        blocking::stats()
    );
    blocking::configure(Config::new()).unwrap();
}

#[test]
fn raising_the_maximum_starts_threads_for_queued_jobs() {
    let _dog = watchdog::arm();
    let _s = serial();
    blocking::configure(Config::new().max_threads(1)).unwrap();
    // Each job waits (10 s at most) until all four run at once, which only more
    // threads allow; it returns how many ran at once.
    let running = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..4)
        .map(|_| {
            let running = running.clone();
            green::spawn(move || {
                green::run_blocking(move || {
                    running.fetch_add(1, Ordering::SeqCst);
                    let end = Instant::now() + Duration::from_secs(10);
                    while running.load(Ordering::SeqCst) < 4 && Instant::now() < end {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    running.load(Ordering::SeqCst)
                })
            })
        })
        .collect();
    assert!(eventually(Duration::from_secs(5), || blocking::stats()
        .queued
        == 3));
    blocking::configure(Config::new().max_threads(4)).unwrap();
    let ran_at_once: Vec<usize> = green::joinall(jobs)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ran_at_once, [4, 4, 4, 4]);
    blocking::configure(Config::new()).unwrap();
}

#[test]
fn a_panic_in_run_blocking_reaches_the_caller_and_the_thread_serves_on() {
    let _dog = watchdog::arm();
    let _s = serial();
    blocking::configure(Config::new().max_threads(1)).unwrap();
    let ran_on = Arc::new(Mutex::new(None));
    let r = ran_on.clone();
    let caught = std::panic::catch_unwind(move || {
        green::run_blocking(move || {
            *r.lock().unwrap() = Some(std::thread::current().id());
            panic!("boom in the pool");
        })
    });
    let payload = caught.expect_err("the closure's panic resumes in the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in the pool"));
    let first = ran_on.lock().unwrap().expect("the closure ran");
    // The same (only) thread takes the next job.
    let next = green::run_blocking(|| std::thread::current().id());
    assert_eq!(next, first);
    blocking::configure(Config::new()).unwrap();
}

#[test]
fn a_panicking_job_leaves_its_thread_serving() {
    let _dog = watchdog::arm();
    let _s = serial();
    blocking::configure(Config::new().max_threads(1)).unwrap();
    green::sleep(Duration::ZERO); // this thread has a hub
    let ran_on = Arc::new(Mutex::new(None));
    let r = ran_on.clone();
    green::__net::submit(Box::new(move || {
        *r.lock().unwrap() = Some(std::thread::current().id());
        panic!("a job panics");
    }))
    .unwrap();
    // The thread outlives the panic and goes idle; had it died, its count would stay
    // taken (the maximum is 1) and the next job would never run.
    assert!(
        eventually(Duration::from_secs(10), || {
            let s = blocking::stats();
            ran_on.lock().unwrap().is_some() && s.threads == 1 && s.idle == 1
        }),
        "{:?}",
        blocking::stats()
    );
    let first = ran_on.lock().unwrap().expect("the job ran");
    assert_eq!(green::run_blocking(|| std::thread::current().id()), first);
    blocking::configure(Config::new()).unwrap();
}
