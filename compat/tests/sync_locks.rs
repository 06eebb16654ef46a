//! std's locks between greenlets of one thread (and with other threads) after
//! `patch_all()`: `Mutex`, `Condvar`, `RwLock`, `Barrier`, `OnceLock`.

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn a_mutex_guard_held_across_a_patched_sleep_lets_the_others_run() {
    let _dog = watchdog::arm();
    support::setup();
    let m = Arc::new(Mutex::new(Vec::new()));
    let ticker = support::ticker();
    let t = Instant::now();
    let hs: Vec<_> = (0..10)
        .map(|i| {
            let m = m.clone();
            green::spawn(move || {
                let mut g = m.lock().unwrap();
                thread::sleep(Duration::from_millis(10)); // holding the guard
                g.push(i);
            })
        })
        .collect();
    for r in green::joinall(hs) {
        r.unwrap();
    }
    let took = t.elapsed();
    // The lock serialises the ten holders (≥ 100 ms), and the ticker ran meanwhile.
    assert!(took >= Duration::from_millis(90), "{took:?}");
    assert!(ticker.ticks() >= 5);
    assert_eq!(
        *m.lock().unwrap(),
        (0..10).collect::<Vec<_>>(),
        "FIFO hand-off"
    );
}

#[test]
fn a_mutex_shared_with_plain_threads_and_another_hub() {
    let _dog = watchdog::arm();
    support::setup();
    let m = Arc::new(Mutex::new(0u64));
    let worker = |m: Arc<Mutex<u64>>| {
        move || {
            for _ in 0..2000 {
                let mut g = m.lock().unwrap();
                *g += 1;
                if (*g).is_multiple_of(97) {
                    thread::yield_now();
                }
            }
        }
    };
    let plain: Vec<_> = (0..2).map(|_| thread::spawn(worker(m.clone()))).collect();
    let m2 = m.clone();
    let other_hub = thread::spawn(move || {
        let hs: Vec<_> = (0..5).map(|_| green::spawn(worker(m2.clone()))).collect();
        for r in green::joinall(hs) {
            r.unwrap();
        }
    });
    let hs: Vec<_> = (0..5).map(|_| green::spawn(worker(m.clone()))).collect();
    for r in green::joinall(hs) {
        r.unwrap();
    }
    other_hub.join().unwrap();
    for t in plain {
        t.join().unwrap();
    }
    assert_eq!(*m.lock().unwrap(), 12 * 2000);
}

#[test]
fn condvar_ping_pong_between_greenlets() {
    let _dog = watchdog::arm();
    support::setup();
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let p2 = pair.clone();
    let pong = green::spawn(move || {
        let (m, cv) = &*p2;
        let mut g = m.lock().unwrap();
        loop {
            while *g % 2 == 0 {
                g = cv.wait(g).unwrap();
            }
            if *g >= 1999 {
                return;
            }
            *g += 1;
            cv.notify_one();
        }
    });
    let (m, cv) = &*pair;
    let mut g = m.lock().unwrap();
    while *g < 1999 {
        *g += 1;
        cv.notify_one();
        while *g % 2 == 1 && *g < 1999 {
            g = cv.wait(g).unwrap();
        }
    }
    drop(g);
    pong.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 1999);
}

#[test]
fn condvar_wait_timeout_in_greenlets_overlaps() {
    let _dog = watchdog::arm();
    support::setup();
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let t = Instant::now();
    let hs: Vec<_> = (0..20)
        .map(|_| {
            let p = pair.clone();
            green::spawn(move || {
                let (m, cv) = &*p;
                let g = m.lock().unwrap();
                let (_g, r) = cv.wait_timeout(g, Duration::from_millis(100)).unwrap();
                r.timed_out()
            })
        })
        .collect();
    for r in green::joinall(hs) {
        assert!(r.unwrap());
    }
    support::assert_concurrent(
        "Condvar::wait_timeout",
        t.elapsed(),
        20,
        Duration::from_millis(100),
    );
}

#[test]
fn condvar_notified_from_a_plain_thread() {
    let _dog = watchdog::arm();
    support::setup();
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let ticker = support::ticker();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let p = pair.clone();
            green::spawn(move || {
                let (m, cv) = &*p;
                let g = cv.wait_while(m.lock().unwrap(), |v| *v == 0).unwrap();
                *g
            })
        })
        .collect();
    let p = pair.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        *p.0.lock().unwrap() = 7;
        p.1.notify_all();
    });
    for r in green::joinall(waiters) {
        assert_eq!(r.unwrap(), 7);
    }
    t.join().unwrap();
    assert!(ticker.ticks() >= 3, "the hub ran while they waited");
}

#[test]
fn rwlock_writer_held_across_a_switch() {
    let _dog = watchdog::arm();
    support::setup();
    let l = Arc::new(RwLock::new(0));
    let l1 = l.clone();
    let writer = green::spawn(move || {
        let mut w = l1.write().unwrap();
        thread::sleep(Duration::from_millis(50));
        *w = 1;
    });
    green::yield_now(); // the writer holds the lock and sleeps
    let readers: Vec<_> = (0..5)
        .map(|_| {
            let l = l.clone();
            green::spawn(move || *l.read().unwrap())
        })
        .collect();
    writer.join().unwrap();
    for r in green::joinall(readers) {
        assert_eq!(r.unwrap(), 1, "readers waited for the writer");
    }
}

#[test]
fn a_barrier_of_greenlets() {
    let _dog = watchdog::arm();
    support::setup();
    let b = Arc::new(Barrier::new(10));
    let after = Rc::new(Cell::new(0));
    let hs: Vec<_> = (0..10)
        .map(|i| {
            let (b, after) = (b.clone(), after.clone());
            green::spawn(move || {
                thread::sleep(Duration::from_millis(5 * i));
                assert_eq!(after.get(), 0, "nobody passed before all arrived");
                let leader = b.wait().is_leader();
                after.set(after.get() + 1);
                leader
            })
        })
        .collect();
    let leaders = green::joinall(hs)
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(leaders, 1);
    assert_eq!(after.get(), 10);
}

#[test]
fn oncelock_waiters_park_while_the_initialiser_sleeps() {
    let _dog = watchdog::arm();
    support::setup();
    static CELL: OnceLock<u32> = OnceLock::new();
    let ticker = support::ticker();
    let init = green::spawn(|| {
        *CELL.get_or_init(|| {
            thread::sleep(Duration::from_millis(60)); // patched: others run
            42
        })
    });
    green::yield_now();
    let waiters: Vec<_> = (0..5)
        .map(|_| green::spawn(|| *CELL.get_or_init(|| unreachable!())))
        .collect();
    assert_eq!(init.join().unwrap(), 42);
    for r in green::joinall(waiters) {
        assert_eq!(r.unwrap(), 42);
    }
    assert!(ticker.ticks() >= 5);
}

#[test]
fn a_kill_while_waiting_for_a_mutex_takes_effect_after_the_lock() {
    let _dog = watchdog::arm();
    support::setup();
    let m = Arc::new(Mutex::new(0));
    let m1 = m.clone();
    let got = Rc::new(Cell::new(false));
    let g1 = got.clone();
    let g = m.lock().unwrap();
    let waiter = green::spawn(move || {
        let mut g = m1.lock().unwrap(); // killed while waiting here
        *g += 1;
        g1.set(true);
        drop(g);
        green::yield_now(); // the kill unwinds here
        unreachable!();
    });
    green::sleep(Duration::from_millis(20));
    waiter.kill_nowait();
    green::sleep(Duration::from_millis(20));
    assert!(
        !got.get(),
        "still waiting for the lock: Mutex::lock cannot give up"
    );
    drop(g);
    assert!(waiter.join().unwrap_err().is_killed());
    assert!(got.get());
    assert_eq!(*m.lock().unwrap(), 1);
}
