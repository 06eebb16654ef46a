//! Channels that wait in `std::thread::park` (std's `mpsc`, crossbeam-channel) and
//! `park` itself, inside greenlets after `patch_all()`: every greenlet of a thread parks
//! through the thread's one park word.

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Sends `n` numbers, pausing now and then (so that the receiver waits often).
fn producer<S: Send + 'static>(send: impl Fn(u32) -> S + Send + 'static, n: u32, every: u32) {
    thread::spawn(move || {
        for i in 0..n {
            send(i);
            if i % every == 0 {
                thread::sleep(Duration::from_micros(300));
            }
        }
    });
}

#[test]
fn two_consumers_on_two_std_channels_fed_by_threads() {
    let _dog = watchdog::arm();
    support::setup();
    for round in 0..20 {
        let (tx1, rx1) = mpsc::channel::<u32>();
        let (tx2, rx2) = mpsc::sync_channel::<u32>(4);
        producer(move |i| tx1.send(i).unwrap(), 300, 7 + round);
        producer(move |i| tx2.send(i).unwrap(), 300, 5 + round);
        let t = Instant::now();
        let c1 = green::spawn(move || (0..300).map(|_| rx1.recv().unwrap()).sum::<u32>());
        let c2 = green::spawn(move || (0..300).map(|_| rx2.recv().unwrap()).sum::<u32>());
        assert_eq!(c1.join().unwrap(), 44850);
        assert_eq!(c2.join().unwrap(), 44850);
        assert!(t.elapsed() < Duration::from_secs(20), "round {round}");
    }
}

#[test]
fn many_greenlets_wait_on_std_channels_at_once() {
    let _dog = watchdog::arm();
    support::setup();
    let ticker = support::ticker();
    let n = 100;
    let t = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let (tx, rx) = mpsc::channel::<u32>();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(100));
                tx.send(i).unwrap();
            });
            green::spawn(move || rx.recv().unwrap())
        })
        .collect();
    for (i, r) in green::joinall(hs).into_iter().enumerate() {
        assert_eq!(r.unwrap(), i as u32);
    }
    support::assert_concurrent("mpsc recv", t.elapsed(), n, Duration::from_millis(100));
    assert!(ticker.ticks() >= 1);
}

#[test]
fn recv_timeout_of_greenlets_overlaps() {
    let _dog = watchdog::arm();
    support::setup();
    let t = Instant::now();
    let keep = Rc::new(Cell::new(Vec::new()));
    let hs: Vec<_> = (0..20)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<()>();
            let mut k = keep.take();
            k.push(tx);
            keep.set(k);
            green::spawn(move || rx.recv_timeout(Duration::from_millis(100)).is_err())
        })
        .collect();
    for r in green::joinall(hs) {
        assert!(r.unwrap());
    }
    support::assert_concurrent("recv_timeout", t.elapsed(), 20, Duration::from_millis(100));
}

#[test]
fn a_greenlet_answers_a_thread_that_the_main_greenlet_joins() {
    let _dog = watchdog::arm();
    support::setup();
    let (to_g, from_t) = mpsc::channel::<u32>();
    let (to_t, from_g) = mpsc::channel::<u32>();
    let server = green::spawn(move || {
        for v in from_t {
            to_t.send(v * 2).unwrap();
        }
    });
    let t = thread::spawn(move || {
        let mut sum = 0;
        for i in 0..100 {
            to_g.send(i).unwrap();
            sum += from_g.recv().unwrap();
        }
        sum
    });
    // join parks main; the server greenlet serves the thread meanwhile.
    assert_eq!(t.join().unwrap(), 9900);
    server.join().unwrap();
}

#[test]
fn unpark_from_another_os_thread() {
    let _dog = watchdog::arm();
    support::setup();
    let me = thread::current();
    let flags: Vec<_> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let hs: Vec<_> = flags
        .iter()
        .map(|f| {
            let f = f.clone();
            green::spawn(move || {
                let mut parks = 0;
                while !f.load(Ordering::Acquire) {
                    thread::park();
                    parks += 1;
                }
                parks
            })
        })
        .collect();
    green::yield_now(); // all three park
    let fl = flags.clone();
    let t = thread::spawn(move || {
        for f in fl {
            thread::sleep(Duration::from_millis(20));
            f.store(true, Ordering::Release);
            me.unpark();
        }
    });
    for r in green::joinall(hs) {
        assert!(r.unwrap() >= 1);
    }
    t.join().unwrap();
}

#[test]
fn park_timeout_in_greenlets_overlaps() {
    let _dog = watchdog::arm();
    support::setup();
    let t = Instant::now();
    let hs: Vec<_> = (0..20)
        .map(|_| {
            green::spawn(|| {
                let t = Instant::now();
                while t.elapsed() < Duration::from_millis(100) {
                    thread::park_timeout(
                        Duration::from_millis(100) - t.elapsed().min(Duration::from_millis(100)),
                    );
                }
            })
        })
        .collect();
    for r in green::joinall(hs) {
        r.unwrap();
    }
    support::assert_concurrent("park_timeout", t.elapsed(), 20, Duration::from_millis(100));
}

#[test]
fn crossbeam_two_consumers_fed_by_threads() {
    let _dog = watchdog::arm();
    support::setup();
    for round in 0..10 {
        let (tx1, rx1) = crossbeam_channel::unbounded::<u32>();
        let (tx2, rx2) = crossbeam_channel::bounded::<u32>(2);
        producer(move |i| tx1.send(i).unwrap(), 300, 3 + round);
        producer(move |i| tx2.send(i).unwrap(), 300, 4 + round);
        let c1 = green::spawn(move || (0..300).map(|_| rx1.recv().unwrap()).sum::<u32>());
        let c2 = green::spawn(move || (0..300).map(|_| rx2.recv().unwrap()).sum::<u32>());
        assert_eq!(c1.join().unwrap(), 44850);
        assert_eq!(c2.join().unwrap(), 44850);
    }
}

#[test]
fn crossbeam_select_in_a_greenlet() {
    let _dog = watchdog::arm();
    support::setup();
    let (tx1, rx1) = crossbeam_channel::unbounded::<u32>();
    let (tx2, rx2) = crossbeam_channel::unbounded::<u32>();
    let ticker = support::ticker();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(40));
        tx2.send(2).unwrap();
        drop(tx1);
    });
    let got = green::spawn(move || {
        crossbeam_channel::select! {
            recv(rx1) -> v => v.unwrap_or(0),
            recv(rx2) -> v => v.unwrap(),
        }
    })
    .join()
    .unwrap();
    assert_eq!(got, 2);
    t.join().unwrap();
    assert!(ticker.ticks() >= 3);
}

#[test]
fn scoped_threads_from_a_greenlet() {
    let _dog = watchdog::arm();
    support::setup();
    let ticker = support::ticker();
    let mut data = vec![1u64; 1000];
    thread::scope(|s| {
        for chunk in data.chunks_mut(250) {
            s.spawn(move || {
                thread::sleep(Duration::from_millis(30));
                chunk.iter_mut().for_each(|x| *x *= 2);
            });
        }
    });
    assert_eq!(data.iter().sum::<u64>(), 2000);
    assert!(ticker.ticks() >= 2, "the hub ran during the scope");
}

/// Both ends of one std channel in greenlets of one thread: std (like crossbeam)
/// never wakes a waiter of the sender's own OS thread, so the receiver is woken only
/// by what does (the sender's end dropped, a timeout). The patch cannot change that;
/// it reports the stall, naming green's channels.
#[test]
fn both_ends_of_a_std_channel_in_one_thread_are_reported() {
    let _dog = watchdog::arm();
    support::setup();
    green::monkey::set_park_stall_warning(Some(Duration::from_millis(200)));
    let (tx, rx) = mpsc::sync_channel::<u32>(1);
    let t = Instant::now();
    let receiver = green::spawn(move || (rx.recv().unwrap(), t.elapsed()));
    let sender = green::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        tx.send(7).unwrap(); // does not wake the receiver
        thread::sleep(Duration::from_millis(600));
        drop(tx); // this does
    });
    let (v, took) = receiver.join().unwrap();
    sender.join().unwrap();
    assert_eq!(v, 7);
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(support::logged(&[
        "std::thread::park",
        "never wake a waiter of their own OS thread",
        "green::Queue"
    ]));
    // green's own channel between the same two greenlets: no waiting for anything.
    let q = green::Queue::bounded(1);
    let q2 = q.clone();
    let t = Instant::now();
    let receiver = green::spawn(move || q2.get().unwrap());
    let sender = green::spawn(move || q.put(7).unwrap());
    sender.join().unwrap();
    assert_eq!(receiver.join().unwrap(), 7);
    assert!(t.elapsed() < Duration::from_millis(400));
    green::monkey::set_park_stall_warning(Some(Duration::from_secs(10)));
}

/// A token left for one parked greenlet while another runs can be consumed by the
/// runner's own `park` (std takes it without any call the patch sees): the parked
/// greenlet is still woken, a little later.
#[test]
fn a_token_taken_by_another_greenlets_park_is_recovered() {
    let _dog = watchdog::arm();
    support::setup();
    for _ in 0..5 {
        let me = thread::current();
        let for_parked = Arc::new(AtomicBool::new(false));
        let unparked = Arc::new(AtomicBool::new(false));
        let f = for_parked.clone();
        let parked = green::spawn(move || {
            while !f.load(Ordering::Acquire) {
                thread::park();
            }
        });
        green::yield_now(); // it parks
        let (f, u) = (for_parked.clone(), unparked.clone());
        let t = thread::spawn(move || {
            f.store(true, Ordering::Release);
            me.unpark(); // the word reads EMPTY: a silent token
            u.store(true, Ordering::Release);
        });
        // A greenlet that runs without a switch until the token is there, then parks:
        // its park takes the token and returns at once.
        let u = unparked.clone();
        let runner = green::spawn(move || {
            while !u.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            thread::park();
        });
        runner.join().unwrap();
        t.join().unwrap();
        let start = Instant::now();
        parked.join().unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
