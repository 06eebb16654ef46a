//! Waking parked greenlets from other threads (`green::__net`).

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::__net::RemoteWait;
use green::park::Wake;

#[test]
fn a_wake_from_another_thread_ends_the_park() {
    let _dog = watchdog::arm();
    let wait = RemoteWait::new().unwrap();
    let (waker, done) = (wait.waker(), Arc::new(AtomicBool::new(false)));
    let d = done.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        d.store(true, Ordering::Release);
        waker.wake();
    });
    // Main parks with nothing else to wake it: the wait keeps the hub polling, so
    // this is not `WouldBlockForever`.
    while !done.load(Ordering::Acquire) {
        assert_eq!(wait.park(None), Ok(Wake::Unparked));
    }
    t.join().unwrap();
}

#[test]
fn a_wake_before_the_park_is_not_lost() {
    let _dog = watchdog::arm();
    let wait = RemoteWait::new().unwrap();
    let waker = wait.waker();
    std::thread::spawn(move || waker.wake()).join().unwrap();
    let start = Instant::now();
    assert_eq!(
        wait.park(Some(Instant::now() + Duration::from_secs(10))),
        Ok(Wake::Unparked)
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    // Consumed: the next park waits for its deadline.
    let deadline = Instant::now() + Duration::from_millis(20);
    assert_eq!(wait.park(Some(deadline)), Ok(Wake::TimedOut));
}

#[test]
fn a_wake_on_the_hubs_own_thread_takes_effect_at_once() {
    let _dog = watchdog::arm();
    let wait = std::rc::Rc::new(RemoteWait::new().unwrap());
    let w = wait.clone();
    let waiter = green::spawn(move || w.park(None));
    green::yield_now(); // it parks
    wait.waker().wake();
    assert_eq!(waiter.join().unwrap(), Ok(Wake::Unparked));
}

#[test]
fn a_waker_of_a_dropped_wait_does_nothing() {
    let _dog = watchdog::arm();
    let old = RemoteWait::new().unwrap();
    let stale = old.waker();
    drop(old);
    // A new wait may take the same slot: the stale waker must not wake it.
    let wait = RemoteWait::new().unwrap();
    let s = stale.clone();
    std::thread::spawn(move || s.wake()).join().unwrap();
    stale.wake();
    let deadline = Instant::now() + Duration::from_millis(30);
    assert_eq!(wait.park(Some(deadline)), Ok(Wake::TimedOut));
    // With no wait left, nothing keeps the hub polling.
    drop(wait);
    assert_eq!(
        green::park::park(None),
        Err(green::BlockError::WouldBlockForever)
    );
}

#[test]
fn many_greenlets_woken_by_many_threads_lose_no_wake() {
    let _dog = watchdog::arm();
    const GREENLETS: usize = 200;
    const ROUNDS: usize = 50;
    let flags: Arc<Vec<AtomicUsize>> = Arc::new((0..GREENLETS).map(|_| 0.into()).collect());
    let mut wakers = Vec::new();
    let mut handles = Vec::new();
    for i in 0..GREENLETS {
        let wait = RemoteWait::new().unwrap();
        wakers.push(wait.waker());
        let flags = flags.clone();
        handles.push(green::spawn(move || {
            // Each round, wait until the threads have bumped this greenlet's counter.
            for round in 1..=ROUNDS {
                while flags[i].load(Ordering::Acquire) < round {
                    wait.park(None).unwrap();
                }
            }
        }));
    }
    let wakers = Arc::new(wakers);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (flags, wakers) = (flags.clone(), wakers.clone());
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    for i in (t..GREENLETS).step_by(4) {
                        flags[i].fetch_add(1, Ordering::AcqRel);
                        wakers[i].wake();
                    }
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    // If a wake were lost, a greenlet would wait for good: bounded by a timeout.
    assert!(
        green::joinall_timeout(&handles, Duration::from_secs(60)),
        "a greenlet still waits: a wake was lost"
    );
    for h in handles {
        h.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn run_blocking_still_returns_its_value_and_panics() {
    let _dog = watchdog::arm();
    assert_eq!(green::run_blocking(|| 6 * 7), 42);
    let r = std::panic::catch_unwind(|| green::run_blocking(|| panic!("in the pool")));
    assert!(r.is_err());
}
