//! `green::block_on`: futures polled from greenlets; `JoinHandle` as a future.

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A future completed by whoever calls `complete` (any thread).
#[derive(Clone, Default)]
struct Flag(Arc<Mutex<(bool, Option<Waker>)>>);

impl Flag {
    fn complete(&self) {
        let w = {
            let mut s = self.0.lock().unwrap();
            s.0 = true;
            s.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl Future for Flag {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.lock().unwrap();
        if s.0 {
            return Poll::Ready(());
        }
        s.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[test]
fn a_future_woken_from_another_thread_parks_only_its_greenlet() {
    let _dog = watchdog::arm();
    let flag = Flag::default();
    let f = flag.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        f.complete();
    });
    let ticks = green::spawn(|| {
        let mut n = 0;
        let end = Instant::now() + Duration::from_millis(60);
        while Instant::now() < end {
            green::sleep(Duration::from_millis(1));
            n += 1;
        }
        n
    });
    let start = Instant::now();
    green::block_on(flag);
    assert!(start.elapsed() >= Duration::from_millis(90));
    assert!(ticks.is_finished(), "the ticker ran while main waited");
    assert!(ticks.join().unwrap() >= 5);
    t.join().unwrap();
}

#[test]
fn a_wake_during_the_poll_is_not_lost() {
    let _dog = watchdog::arm();
    // Wakes itself and returns Pending once: block_on must poll again.
    struct SelfWake(bool);
    impl Future for SelfWake {
        type Output = &'static str;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            if self.0 {
                return Poll::Ready("again");
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    let start = Instant::now();
    assert_eq!(green::block_on(SelfWake(false)), "again");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_wake_from_a_thread_racing_the_park_is_not_lost() {
    let _dog = watchdog::arm();
    for _ in 0..200 {
        let flag = Flag::default();
        let f = flag.clone();
        let t = std::thread::spawn(move || f.complete());
        green::block_on(flag);
        t.join().unwrap();
    }
}

#[test]
fn greenlets_block_on_concurrently() {
    let _dog = watchdog::arm();
    let flags: Vec<Flag> = (0..10).map(|_| Flag::default()).collect();
    let waiters: Vec<_> = flags
        .iter()
        .cloned()
        .map(|f| green::spawn(move || green::block_on(f)))
        .collect();
    let fs = flags.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        for f in fs.iter().rev() {
            f.complete();
        }
    });
    for r in green::joinall(waiters) {
        r.unwrap();
    }
    t.join().unwrap();
}

#[test]
fn a_join_handle_is_a_future() {
    let _dog = watchdog::arm();
    let h = green::spawn(|| {
        green::sleep(Duration::from_millis(20));
        "slept"
    });
    assert_eq!(green::block_on(h.into_future()).unwrap(), "slept");
    // Inside an async block, with `.await`, several at once.
    let a = green::spawn(|| 1);
    let b = green::spawn(|| {
        green::sleep(Duration::from_millis(10));
        2
    });
    let sum = green::block_on(async move { a.await.unwrap() + b.await.unwrap() });
    assert_eq!(sum, 3);
}

#[test]
fn awaiting_a_failed_greenlet_gives_its_error() {
    let _dog = watchdog::arm();
    // Ends as a kill does, while awaited.
    let killed = green::spawn(|| {
        green::sleep(Duration::from_millis(10));
        std::panic::resume_unwind(Box::new(green::GreenletExit))
    });
    assert!(
        green::block_on(killed.into_future())
            .unwrap_err()
            .is_killed()
    );
    let panicked = green::spawn(|| -> u8 { panic!("boom") });
    let e = green::block_on(panicked.into_future()).unwrap_err();
    assert!(e.is_panic(), "{e:?}");
}

#[test]
fn a_finished_greenlet_is_ready_at_once() {
    let _dog = watchdog::arm();
    let h = green::spawn(|| 5);
    green::yield_now();
    assert!(h.is_finished());
    assert_eq!(green::block_on(h.into_future()).unwrap(), 5);
}
