//! The reactor's waiter bookkeeping: several waiters per direction, waits that end by
//! timeout, kill or deregistration, and (a leak would show as a hang) the hub's count
//! of IO waiters returning to zero so that "nothing can wake main" is still detected.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use green::__net::FdRegistration;
use green::BlockError;
use green::park::park;
use mio::Interest;

/// Runs `f` on a fresh thread (its own hub) and fails if it does not finish in time: a
/// leaked IO waiter makes the hub block in `epoll_wait` forever instead of reporting
/// `WouldBlockForever`.
fn on_thread(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => t.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The thread panicked: re-raise its panic.
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p)
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test thread hung"),
    }
}

/// Main has nothing left to wait for: the hub must say so rather than block.
fn assert_nothing_can_wake_main() {
    assert_eq!(park(None).unwrap_err(), BlockError::WouldBlockForever);
}

fn nonblocking_pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

#[test]
fn three_readers_on_one_registration_all_wake_on_one_edge() {
    on_thread(|| {
        let (mut a, b) = nonblocking_pair();
        let reg = Rc::new(FdRegistration::new(b.as_raw_fd()).unwrap());
        let woke = Rc::new(Cell::new(0));
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let (reg, woke) = (reg.clone(), woke.clone());
                green::spawn(move || {
                    reg.wait(Interest::READABLE, None).unwrap();
                    woke.set(woke.get() + 1);
                })
            })
            .collect();
        green::yield_now(); // all three park
        assert_eq!(woke.get(), 0);
        a.write_all(b"x").unwrap();
        for r in green::joinall(hs) {
            r.unwrap();
        }
        assert_eq!(woke.get(), 3);
        drop(reg);
        assert_nothing_can_wake_main();
    });
}

#[test]
fn timed_out_waits_leave_no_waiter_behind() {
    on_thread(|| {
        let (mut a, b) = nonblocking_pair();
        let reg = Rc::new(FdRegistration::new(b.as_raw_fd()).unwrap());
        // Let the hub poll away the edge the registration itself reports (writable).
        green::sleep(Duration::from_millis(1));
        // A reader and a reader+writer that time out, and one more reader that does not.
        let short = Some(Instant::now() + Duration::from_millis(20));
        let r1 = reg.clone();
        let t1 = green::spawn(move || r1.wait(Interest::READABLE, short).unwrap_err().kind());
        let r2 = reg.clone();
        let t2 = green::spawn(move || {
            r2.wait(Interest::READABLE | Interest::WRITABLE, short)
                .unwrap_err()
                .kind()
        });
        let r3 = reg.clone();
        let last = green::spawn(move || r3.wait(Interest::READABLE, None));
        assert_eq!(t1.join().unwrap(), io::ErrorKind::TimedOut);
        assert_eq!(t2.join().unwrap(), io::ErrorKind::TimedOut);
        a.write_all(b"x").unwrap();
        last.join().unwrap().unwrap();
        drop(reg);
        assert_nothing_can_wake_main();
    });
}

#[test]
fn killed_waiter_is_removed_and_others_still_wake() {
    on_thread(|| {
        let (mut a, b) = nonblocking_pair();
        let reg = Rc::new(FdRegistration::new(b.as_raw_fd()).unwrap());
        let r1 = reg.clone();
        let victim = green::spawn(move || r1.wait(Interest::READABLE, None));
        let r2 = reg.clone();
        let survivor = green::spawn(move || r2.wait(Interest::READABLE, None));
        green::yield_now();
        victim.kill();
        assert!(victim.join().is_err());
        a.write_all(b"x").unwrap();
        survivor.join().unwrap().unwrap();
        drop(reg);
        assert_nothing_can_wake_main();
    });
}

#[test]
fn forgetting_the_fd_wakes_waiters_with_connection_aborted() {
    // (A `FdRegistration` cannot be dropped while a greenlet borrows it to wait; `forget_fd`
    // takes the same deregister-and-wake path as its `Drop`.)
    on_thread(|| {
        let (_a, b) = nonblocking_pair();
        let fd = b.as_raw_fd();
        let hs: Vec<_> = [
            Interest::READABLE,
            Interest::WRITABLE,
            Interest::READABLE,
            Interest::READABLE | Interest::WRITABLE,
        ]
        .into_iter()
        .map(|i| green::spawn(move || green::__net::wait_fd(fd, i, None).unwrap_err().kind()))
        .collect();
        green::yield_now(); // all park
        green::__net::forget_fd(fd);
        for r in green::joinall(hs) {
            assert_eq!(r.unwrap(), io::ErrorKind::ConnectionAborted);
        }
        assert_nothing_can_wake_main();
    });
}

#[test]
fn retry_waits_for_an_edge_while_the_cache_says_drained() {
    on_thread(|| {
        let (mut a, mut b) = nonblocking_pair();
        let reg = FdRegistration::new(b.as_raw_fd()).unwrap();
        assert!(reg.is_ready(Interest::READABLE));
        assert!(reg.is_ready(Interest::WRITABLE));
        // Drained: retry must not call `f` before the next readable edge.
        reg.clear_ready(Interest::READABLE);
        assert!(!reg.is_ready(Interest::READABLE));
        assert!(reg.is_ready(Interest::READABLE | Interest::WRITABLE));
        let writer = green::spawn(move || {
            a.write_all(b"abc").unwrap();
            a
        });
        let calls = Cell::new(0);
        let mut buf = [0u8; 8];
        let n = reg
            .retry(Interest::READABLE, None, || {
                calls.set(calls.get() + 1);
                b.read(&mut buf)
            })
            .unwrap();
        assert_eq!(&buf[..n], b"abc");
        assert_eq!(calls.get(), 1, "f was tried before the edge");
        assert!(reg.is_ready(Interest::READABLE)); // set by the edge
        // A WouldBlock from `f` clears the cache; the next edge sets it again.
        let mut a = writer.join().unwrap();
        let calls = Cell::new(0);
        let w = green::spawn(move || {
            green::sleep(Duration::from_millis(5));
            a.write_all(b"d").unwrap();
            a
        });
        let n = reg
            .retry(Interest::READABLE, None, || {
                calls.set(calls.get() + 1);
                b.read(&mut buf)
            })
            .unwrap();
        assert_eq!(&buf[..n], b"d");
        assert_eq!(calls.get(), 2); // WouldBlock, then the data
        drop(w.join().unwrap());
        drop(reg);
        assert_nothing_can_wake_main();
    });
}
