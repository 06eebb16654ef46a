//! Hook bookkeeping driven by the fake runtime of `rt` (cfg(test)).

use super::rt::{FAKE_GREENLET, FORGETS, WAITS};
use super::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

fn as_greenlet<R>(f: impl FnOnce() -> R) -> R {
    FAKE_GREENLET.with(|g| g.set(true));
    let r = f();
    FAKE_GREENLET.with(|g| g.set(false));
    r
}

fn real_nonblocking(fd: i32) -> bool {
    // SAFETY: raw syscall, bypasses every hook.
    let fl = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) } as i32;
    fl & libc::O_NONBLOCK != 0
}

fn user_nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL through the hook.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl & libc::O_NONBLOCK != 0
}

fn pair() -> (TcpStream, TcpStream) {
    patch_all();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = as_greenlet(|| TcpStream::connect(l.local_addr().unwrap()).unwrap());
    let (s, _) = as_greenlet(|| l.accept().unwrap());
    (c, s)
}

#[test]
fn adoption_keeps_the_users_view() {
    let (mut c, mut s) = pair();
    let fd = c.as_raw_fd();
    // connect went through the adopted path: the real fd is non-blocking, the user's not.
    assert!(real_nonblocking(fd));
    assert!(!user_nonblocking(fd));
    c.set_read_timeout(Some(Duration::from_millis(40))).unwrap();
    let t = Instant::now();
    let waits = WAITS.load(Ordering::Relaxed);
    let e = as_greenlet(|| c.read(&mut [0u8; 4]).unwrap_err());
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(
        t.elapsed() >= Duration::from_millis(35),
        "{:?}",
        t.elapsed()
    );
    assert!(WAITS.load(Ordering::Relaxed) > waits, "the read parked");
    // The user's non-blocking flag is a view; the real fd stays non-blocking.
    c.set_nonblocking(true).unwrap();
    assert!(user_nonblocking(fd) && real_nonblocking(fd));
    let waits = WAITS.load(Ordering::Relaxed);
    let e = as_greenlet(|| c.read(&mut [0u8; 4]).unwrap_err());
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert_eq!(
        WAITS.load(Ordering::Relaxed),
        waits,
        "the read did not park"
    );
    c.set_nonblocking(false).unwrap();
    assert!(!user_nonblocking(fd) && real_nonblocking(fd));
    // A greenlet read gets data written later.
    let w = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        s.write_all(b"ping").unwrap();
        s
    });
    let mut buf = [0u8; 4];
    as_greenlet(|| c.read_exact(&mut buf)).unwrap();
    assert_eq!(&buf, b"ping");
    drop(w.join().unwrap());
}

#[test]
fn adopted_socket_still_blocks_on_plain_threads() {
    let (mut c, mut s) = pair();
    let fd = s.as_raw_fd();
    as_greenlet(|| s.write_all(b"x")).unwrap(); // adopts the accepted socket
    assert!(real_nonblocking(fd));
    let mut one = [0u8; 1];
    c.read_exact(&mut one).unwrap();
    // Plain thread, no timeout: the read must block (emulated with poll) until data.
    let t = Instant::now();
    let h = thread::spawn(move || {
        let mut b = [0u8; 3];
        s.read_exact(&mut b).unwrap();
        (b, s)
    });
    thread::sleep(Duration::from_millis(50));
    c.write_all(b"abc").unwrap();
    let (b, mut s) = h.join().unwrap();
    assert_eq!(&b, b"abc");
    assert!(t.elapsed() >= Duration::from_millis(45));
    // ... and honours SO_RCVTIMEO with std's error kind.
    s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let t = Instant::now();
    assert_eq!(s.read(&mut one).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(t.elapsed() >= Duration::from_millis(25));
}

#[test]
fn clones_share_the_record_and_close_forgets() {
    let (mut c, _s) = pair();
    as_greenlet(|| {
        c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let _ = c.read(&mut [0u8; 1]);
    });
    let d = c.try_clone().unwrap();
    let rec = fdtable::get(d.as_raw_fd()).unwrap().desc().unwrap();
    assert!(std::ptr::eq(
        rec,
        fdtable::get(c.as_raw_fd()).unwrap().desc().unwrap()
    ));
    assert_eq!(rec.state(), fdtable::ADOPTED);
    assert!(rec.rcv_timeout().is_some());
    assert!(!user_nonblocking(d.as_raw_fd()));
    let fd = c.as_raw_fd();
    let forgets = FORGETS.load(Ordering::Relaxed);
    drop(c);
    assert!(
        FORGETS.load(Ordering::Relaxed) > forgets,
        "close of a registered fd forgets it"
    );
    assert!(fdtable::get(fd).unwrap().desc().is_none());
    // The clone keeps the record.
    assert_eq!(rec.state(), fdtable::ADOPTED);
    assert!(std::ptr::eq(
        rec,
        fdtable::get(d.as_raw_fd()).unwrap().desc().unwrap()
    ));
}

#[test]
fn files_and_user_nonblocking_sockets_are_untouched() {
    patch_all();
    let mut f = std::fs::File::open("/proc/self/stat").unwrap();
    let mut s = String::new();
    as_greenlet(|| f.read_to_string(&mut s)).unwrap();
    assert!(!real_nonblocking(f.as_raw_fd()));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let waits = WAITS.load(Ordering::Relaxed);
    assert_eq!(
        as_greenlet(|| l.accept()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(WAITS.load(Ordering::Relaxed), waits);
}

#[test]
fn sleeps_go_to_the_runtime_in_greenlets() {
    patch_sleep();
    let t = Instant::now();
    as_greenlet(|| thread::sleep(Duration::from_millis(30)));
    assert!(t.elapsed() >= Duration::from_millis(30));
    // Absolute clock_nanosleep in the past returns at once.
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointers.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let r = as_greenlet(|| {
        // SAFETY: valid pointers.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &now,
                std::ptr::null_mut(),
            )
        }
    });
    assert_eq!(r, 0);
    let bad = libc::timespec {
        tv_sec: 0,
        tv_nsec: 2_000_000_000,
    };
    // SAFETY: valid pointers.
    let r = as_greenlet(|| unsafe {
        libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &bad, std::ptr::null_mut())
    });
    assert_eq!(r, libc::EINVAL);
}

#[test]
fn an_unwind_caught_in_a_hook_is_deferred_to_the_runtime() {
    let before = super::rt::DEFERRED.load(Ordering::Relaxed);
    let r = hooks::guarded(|| -> u8 { std::panic::resume_unwind(Box::new("kill")) });
    assert!(r.is_none());
    assert_eq!(super::rt::DEFERRED.load(Ordering::Relaxed), before + 1);
    assert_eq!(hooks::guarded(|| 7), Some(7));
}

fn drained(fd: i32) -> bool {
    !rt::fd_ready(fd, 0, mio::Interest::READABLE)
}

#[test]
fn a_short_tcp_read_marks_the_socket_drained_and_the_next_read_waits_first() {
    let (mut c, mut s) = pair();
    let fd = c.as_raw_fd();
    s.write_all(b"abcd").unwrap();
    let mut buf = [0u8; 16];
    // Fewer bytes than asked for: the receive queue is empty now.
    assert_eq!(as_greenlet(|| c.read(&mut buf)).unwrap(), 4);
    assert!(drained(fd));
    // Data arrives; the next read waits for readiness before its syscall (the fake
    // runtime's wait is a `poll`, which returns at once, and counts as the edge).
    s.write_all(b"efgh").unwrap();
    let waits = rt::THREAD_WAITS.with(|w| w.get());
    assert_eq!(as_greenlet(|| c.read(&mut buf)).unwrap(), 4);
    assert_eq!(&buf[..4], b"efgh");
    let waited = rt::THREAD_WAITS.with(|w| w.get()) - waits;
    assert_eq!(waited, 1, "waited before reading");
    assert!(drained(fd), "short again");
    // A short peek leaves the data queued: not drained, and the read gets it at once.
    s.write_all(b"ijkl").unwrap();
    rt::DRAINED.with(|d| d.borrow_mut().clear());
    assert_eq!(as_greenlet(|| c.peek(&mut buf)).unwrap(), 4);
    assert!(!drained(fd), "a peek does not drain");
    assert_eq!(as_greenlet(|| c.read(&mut buf)).unwrap(), 4);
    assert_eq!(&buf[..4], b"ijkl");
    // A read that fills the buffer says nothing about the queue: no wait next time.
    s.write_all(&[7u8; 16]).unwrap();
    rt::DRAINED.with(|d| d.borrow_mut().clear());
    assert_eq!(as_greenlet(|| c.read(&mut buf)).unwrap(), 16);
    assert!(!drained(fd));
}

#[test]
fn outside_tcp_or_greenlets_short_reads_change_nothing() {
    patch_all();
    // A Unix stream: reads stop between messages, so a short read proves nothing.
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.write_all(b"xy").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(as_greenlet(|| a.read(&mut buf)).unwrap(), 2);
    assert!(!drained(a.as_raw_fd()));
    // A TCP socket read on a plain thread (emulated blocking) does not use the reactor.
    let (mut c, mut s) = pair();
    s.write_all(b"z").unwrap();
    assert_eq!(c.read(&mut buf).unwrap(), 1);
    assert!(!drained(c.as_raw_fd()));
}

#[test]
fn greenlet_calls_on_adopted_sockets_count_against_the_budget() {
    let (mut c, mut s) = pair();
    let spent = || rt::SPENT.with(|n| n.get());
    let mut buf = [0u8; 4];
    // In a greenlet: each call on an adopted socket counts once.
    let before = spent();
    as_greenlet(|| {
        s.write_all(b"abcd").unwrap();
        c.read_exact(&mut buf).unwrap();
    });
    assert_eq!(spent() - before, 2);
    // On a plain thread (emulated blocking), or on a file: nothing counts.
    let before = spent();
    s.write_all(b"efgh").unwrap();
    c.read_exact(&mut buf).unwrap();
    let mut f = std::fs::File::open("/proc/self/stat").unwrap();
    let mut text = String::new();
    as_greenlet(|| f.read_to_string(&mut text)).unwrap();
    assert_eq!(spent(), before);
}
