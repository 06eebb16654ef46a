//! std code inside greenlets, with and without the patch.

#![cfg(feature = "monkey")]

#[path = "../../tests/support/watchdog.rs"]
mod watchdog;

use green_net::monkey;
use green_runtime as green;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/unix_backlog.rs"]
mod unix_backlog;

use unix_backlog::{backlog_zero_listener, delayed_acceptor};

/// These tests flip the global patch state and count fds: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    monkey::patch_all();
    g
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The inode behind `fd`, if `fd` is open: tells "still that socket" from "closed" (or
/// reused for something else) without counting the process's fds, which other threads
/// of the test binary open and close meanwhile.
fn inode_of(fd: i32) -> Option<u64> {
    // SAFETY: fstat only writes the stat buffer; a closed fd gives EBADF.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st.st_ino)
    }
}

/// How long five greenlets that each `std::thread::sleep` 200 ms take together.
fn five_std_sleeps() -> Duration {
    let t = Instant::now();
    let naps: Vec<_> = (0..5)
        .map(|_| green::spawn(|| thread::sleep(Duration::from_millis(200))))
        .collect();
    for r in green::joinall(naps) {
        r.unwrap();
    }
    t.elapsed()
}

#[test]
fn std_sleep_in_greenlets_overlaps_only_when_patched() {
    let _dog = watchdog::arm();
    let _g = serial();
    monkey::unpatch_all();
    let unpatched = five_std_sleeps();
    monkey::patch_all();
    let patched = five_std_sleeps();
    assert!(
        unpatched >= Duration::from_millis(990),
        "unpatched {unpatched:?}"
    );
    assert!(patched >= Duration::from_millis(195), "patched {patched:?}");
    // Side by side: about 200 ms, where one after the other takes 1 s.
    assert!(patched < Duration::from_millis(800), "patched {patched:?}");
}

/// Serves `n` connections with one greenlet each, all on this thread; returns the
/// acceptor's handle.
fn echo_server(l: TcpListener, n: usize) -> green::JoinHandle<()> {
    green::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..n {
            let (mut s, _) = l.accept().unwrap();
            handlers.push(green::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => break,
                        k => s.write_all(&buf[..k]).unwrap(),
                    }
                }
            }));
        }
        for r in green::joinall(handlers) {
            r.unwrap();
        }
    })
}

/// Waits (cooperatively, through the patched sleep) until `done` reaches `n`.
fn wait_count(done: &AtomicUsize, n: usize, limit: Duration) {
    let t = Instant::now();
    while done.load(Ordering::SeqCst) < n {
        assert!(
            t.elapsed() < limit,
            "only {} of {n} done",
            done.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn run_echo(clients: usize) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = echo_server(l, clients);
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let done = done.clone();
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let msg: Vec<u8> = (0..20_000).map(|k| (k * 7 + i) as u8).collect();
                let mut w = c.try_clone().unwrap();
                let m2 = msg.clone();
                let writer = thread::spawn(move || w.write_all(&m2).unwrap());
                let mut got = vec![0u8; msg.len()];
                c.read_exact(&mut got).unwrap();
                writer.join().unwrap();
                assert_eq!(got, msg);
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    // The main greenlet must not block the thread: the patched sleep lets the hub run.
    wait_count(&done, clients, Duration::from_secs(20));
    for t in threads {
        t.join().unwrap();
    }
    server.join_timeout_or_panic();
}

trait JoinOrPanic {
    fn join_timeout_or_panic(self);
}
impl JoinOrPanic for green::JoinHandle<()> {
    fn join_timeout_or_panic(self) {
        assert!(green::joinall_timeout(
            std::slice::from_ref(&self),
            Duration::from_secs(10)
        ));
        self.join().unwrap();
    }
}

#[test]
fn std_echo_server_in_greenlets_serves_50_std_clients_without_leaking_fds() {
    let _dog = watchdog::arm();
    let _g = serial();
    run_echo(2); // warm up: the hub's epoll and waker fds live as long as the thread
    let before = open_fds();
    run_echo(50);
    assert_eq!(open_fds(), before);
}

#[test]
fn read_timeout_keeps_std_error_kind_and_lets_others_run() {
    let _dog = watchdog::arm();
    let _g = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let t2 = ticks.clone();
    let t3 = ticks.clone();
    let reader = green::spawn(move || {
        c.set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        let t = Instant::now();
        let e = c.read(&mut [0u8; 8]).unwrap_err();
        (e.kind(), t.elapsed(), t3.load(Ordering::SeqCst))
    });
    let ticker = green::spawn(move || {
        for _ in 0..10 {
            thread::sleep(Duration::from_millis(10));
            t2.fetch_add(1, Ordering::SeqCst);
        }
    });
    let (kind, took, ticked) = reader.join().unwrap();
    ticker.join().unwrap();
    assert_eq!(kind, ErrorKind::WouldBlock);
    assert!(took >= Duration::from_millis(145), "{took:?}");
    assert_eq!(ticked, 10, "the ticker ran while the read waited");
}

#[test]
fn user_nonblocking_socket_still_says_would_block() {
    let _dog = watchdog::arm();
    let _g = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let h = green::spawn(move || {
        l.set_nonblocking(true).unwrap();
        c.set_nonblocking(true).unwrap();
        let t = Instant::now();
        let r = c.read(&mut [0u8; 8]).unwrap_err().kind();
        let (_s, _) = l.accept().unwrap(); // the connection is already queued
        let a = l.accept().unwrap_err().kind();
        (r, a, t.elapsed())
    });
    let (r, a, took) = h.join().unwrap();
    assert_eq!(r, ErrorKind::WouldBlock);
    assert_eq!(a, ErrorKind::WouldBlock);
    // Nothing arrives: a call that parked would never end. The bound only catches a
    // slow path, with room for a loaded machine.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn plain_threads_are_unaffected_while_greenlets_run() {
    let _dog = watchdog::arm();
    let _g = serial();
    let os = thread::spawn(|| {
        assert!(!green::is_greenlet_context());
        let t = Instant::now();
        thread::sleep(Duration::from_millis(100));
        let slept = t.elapsed();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        // A really blocking socket: the kernel's flag is untouched.
        // SAFETY: raw F_GETFL syscall, bypasses the hooks.
        let fl = unsafe { libc::syscall(libc::SYS_fcntl, s.as_raw_fd(), libc::F_GETFL) } as i32;
        let w = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            c.write_all(b"hi").unwrap();
            c
        });
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        drop(w.join().unwrap());
        (slept, fl & libc::O_NONBLOCK, b)
    });
    // Meanwhile this thread's greenlets keep sleeping cooperatively.
    let naps: Vec<_> = (0..10)
        .map(|_| green::spawn(|| thread::sleep(Duration::from_millis(150))))
        .collect();
    let t = Instant::now();
    green::joinall(naps);
    // Side by side: about 150 ms, where one after the other takes 1.5 s.
    assert!(
        t.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t.elapsed()
    );
    let (slept, nb, got) = os.join().unwrap();
    assert!(slept >= Duration::from_millis(100));
    assert_eq!(nb, 0);
    assert_eq!(&got, b"hi");
}

#[test]
fn closing_a_socket_wakes_the_greenlet_waiting_on_it() {
    let _dog = watchdog::arm();
    let _g = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap();
    let fd = c.as_raw_fd();
    let reader = green::spawn(move || {
        // Ends by itself (WouldBlock, a failure below) if the close never wakes it.
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = Instant::now();
        let r = c.read(&mut [0u8; 8]);
        let _ = c.into_raw_fd(); // already closed by the other greenlet
        (r.map_err(|e| (e.kind(), e.raw_os_error())), t.elapsed())
    });
    let closer = green::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        // SAFETY: closes the reader's fd on purpose; the reader never closes it again.
        unsafe { libc::close(fd) }
    });
    assert_eq!(closer.join().unwrap(), 0);
    let (r, took) = reader.join().unwrap();
    assert_eq!(r.unwrap_err().1, Some(libc::EBADF));
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn killing_a_greenlet_in_a_patched_sleep_reports_killed() {
    let _dog = watchdog::arm();
    let _g = serial();
    let after = Arc::new(AtomicUsize::new(0));
    let a2 = after.clone();
    let h = green::spawn(move || {
        thread::sleep(Duration::from_secs(5));
        // The kill could not unwind through std's frames: the sleep returned early, and
        // the kill is deferred to the next switch point, which this greenlet never
        // reaches: its return value is replaced by the kill.
        a2.fetch_add(1, Ordering::SeqCst);
        "slept"
    });
    green::sleep(Duration::from_millis(30)); // let it start and park in the std sleep
    let t = Instant::now();
    h.kill();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(
        after.load(Ordering::SeqCst),
        1,
        "the code after the sleep ran"
    );
}

#[test]
fn a_kill_deferred_in_a_patched_sleep_unwinds_at_the_next_switch() {
    let _dog = watchdog::arm();
    let _g = serial();
    let reached = Arc::new(AtomicUsize::new(0));
    let r2 = reached.clone();
    let h = green::spawn(move || {
        thread::sleep(Duration::from_secs(5));
        r2.fetch_add(1, Ordering::SeqCst);
        green::yield_now(); // the deferred kill unwinds here
        r2.fetch_add(1, Ordering::SeqCst);
    });
    green::sleep(Duration::from_millis(30));
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

#[test]
fn killing_a_greenlet_in_a_patched_read_reports_killed_and_closes_the_socket() {
    let _dog = watchdog::arm();
    let _g = serial();
    // Warm up: the hub's epoll and waker fds live as long as the thread.
    green::spawn(|| thread::sleep(Duration::from_millis(1)))
        .join()
        .unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    drop(l);
    let fd = s.as_raw_fd();
    let inode = inode_of(fd);
    assert!(inode.is_some());
    let failed = Arc::new(Mutex::new(None));
    let f2 = failed.clone();
    let h = green::spawn(move || {
        // Plain std code that handles its errors (no unwrap): the read fails with
        // ECANCELED when the kill arrives, the loop ends, `s` is dropped (closed).
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return "eof",
                Ok(_) => {}
                Err(e) => {
                    *f2.lock().unwrap() = e.raw_os_error();
                    return "error";
                }
            }
        }
    });
    green::sleep(Duration::from_millis(30)); // let it park in the std read
    assert_eq!(inode_of(fd), inode, "parked with its socket open");
    let t = Instant::now();
    h.kill();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(h.join().unwrap_err().is_killed());
    assert_eq!(*failed.lock().unwrap(), Some(libc::ECANCELED));
    assert_ne!(
        inode_of(fd),
        inode,
        "the killed greenlet's socket was closed"
    );
    drop(peer);
}

#[test]
fn after_a_deferred_kill_further_patched_calls_fail_at_once() {
    let _dog = watchdog::arm();
    let _g = serial();
    let seen = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    let h = green::spawn(move || {
        thread::sleep(Duration::from_secs(5)); // killed here
        let t = Instant::now();
        thread::sleep(Duration::from_secs(5)); // the kill is pending: returns at once
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let r = udp.recv(&mut [0u8; 4]).map_err(|e| e.raw_os_error());
        *s2.lock().unwrap() = Some((t.elapsed(), r));
    });
    green::sleep(Duration::from_millis(30));
    h.kill();
    assert!(h.join().unwrap_err().is_killed());
    let (took, r) = seen.lock().unwrap().take().unwrap();
    // The sleep asked for 5 s.
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(r, Err(Some(libc::ECANCELED)));
}

#[test]
fn a_deferred_kill_wins_over_a_panic_that_follows_it() {
    let _dog = watchdog::arm();
    // Serial: each test thread's hub opens fds, which the fd-counting tests see.
    let _g = serial();
    monkey::patch_sleep();
    let h = green::spawn(|| {
        // A plain std sleep, patched: the kill arrives inside it and is deferred.
        std::thread::sleep(std::time::Duration::from_secs(30));
        panic!("the code after the interrupted call panics");
    });
    green::sleep(std::time::Duration::from_millis(10));
    h.kill();
    let e = h.join().unwrap_err();
    assert!(e.is_killed(), "{e:?}");
}

#[test]
fn a_timeout_inside_a_patched_sleep_is_reported_and_does_not_escape() {
    let _dog = watchdog::arm();
    // Serial: each test thread's hub opens fds, which the fd-counting tests see.
    let _g = serial();
    monkey::patch_sleep();
    let h = green::spawn(|| {
        let r = green::with_timeout(Duration::from_millis(20), || {
            // Plain std sleep, patched: the timeout fires inside it and is deferred.
            std::thread::sleep(Duration::from_secs(30));
            "returned"
        });
        // Past the scope, switching must not raise the stale timeout.
        green::yield_now();
        green::sleep(Duration::from_millis(1));
        r.is_err()
    });
    assert!(
        h.join().unwrap(),
        "with_timeout reported the deferred timeout"
    );
}

#[test]
fn short_reads_and_peeks_on_patched_tcp_never_strand_queued_data() {
    let _dog = watchdog::arm();
    let _g = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // The peer (a plain thread) sends the next piece only after the greenlet answered
    // the previous one: no new data, hence no readiness edge, arrives while the
    // greenlet looks at what is queued.
    let peer = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut ack = [0u8; 1];
        for piece in [&b"abcd"[..], b"efgh"] {
            s.write_all(piece).unwrap();
            s.read_exact(&mut ack).unwrap();
        }
    });
    let h = green::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        // A read stranded by a wrong "drained" mark would wait for an edge that never
        // comes; the timeout turns that into an error instead of a hang.
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        // A short read: the socket is drained; the greenlet answers.
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"abcd");
        c.write_all(b"1").unwrap();
        // A short peek leaves the next piece queued: the read after it gets it.
        let p = c.peek(&mut buf).unwrap();
        assert_eq!(&buf[..p], b"efgh");
        let n = c.read(&mut buf).expect("the peeked data is still there");
        assert_eq!(&buf[..n], b"efgh");
        c.write_all(b"2").unwrap();
    });
    h.join().unwrap();
    peer.join().unwrap();
}

#[test]
fn a_reused_fd_number_closed_on_another_thread_is_registered_anew() {
    let _dog = watchdog::arm();
    let _g = serial();
    let l = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = l.local_addr().unwrap();
    let l2 = l.clone();
    // A first socket waits through this thread's reactor (registering its fd number)...
    let first = green::spawn(move || {
        let (mut s, _) = l2.accept().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).unwrap(), 2);
        s
    });
    let c1 = green::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        thread::sleep(Duration::from_millis(30));
        c.write_all(b"ab").unwrap();
        c
    });
    let s1 = first.join().unwrap();
    let c1 = c1.join().unwrap();
    let fd = s1.as_raw_fd();
    // ... and is closed on a plain thread: this thread's hub never sees the close.
    let c2 = thread::spawn(move || TcpStream::connect(addr).unwrap())
        .join()
        .unwrap();
    thread::spawn(move || drop(s1)).join().unwrap();
    let (mut s2, _) = l.accept().unwrap();
    if s2.as_raw_fd() != fd {
        // Another thread of the test binary took the number: nothing to check.
        eprintln!("fd {fd} not reused (got {}): inconclusive", s2.as_raw_fd());
        return;
    }
    // The new socket on the same number must wait on its own registration: data that
    // arrives while it waits wakes it (on the stale one it would wait until the timeout).
    let writer = thread::spawn(move || {
        let mut c2 = c2;
        thread::sleep(Duration::from_millis(50));
        c2.write_all(b"xyz").unwrap();
        c2
    });
    let r = green::spawn(move || {
        s2.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 16];
        s2.read(&mut buf).map_err(|e| e.kind())
    })
    .join()
    .unwrap();
    drop((c1, writer.join().unwrap()));
    assert_eq!(r, Ok(3));
}

#[test]
fn msg_waitall_on_a_patched_blocking_socket_waits_for_all_the_bytes() {
    let _dog = watchdog::arm();
    let _g = serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = green::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: a valid buffer of 8 bytes.
        let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), 8, libc::MSG_WAITALL) };
        // End of stream before all the bytes: what came.
        let mut rest = [0u8; 8];
        // SAFETY: as above.
        let m = unsafe {
            libc::recv(
                s.as_raw_fd(),
                rest.as_mut_ptr().cast(),
                8,
                libc::MSG_WAITALL,
            )
        };
        (n, buf, m, rest)
    });
    let client = green::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"abcd").unwrap();
        thread::sleep(Duration::from_millis(30));
        c.write_all(b"efgh").unwrap();
        thread::sleep(Duration::from_millis(30));
        c.write_all(b"ij").unwrap();
        // dropped: end of stream
    });
    client.join().unwrap();
    let (n, buf, m, rest) = server.join().unwrap();
    assert_eq!((n, &buf), (8, b"abcdefgh"));
    assert_eq!((m, &rest[..2]), (2, &b"ij"[..]));
}
#[test]
fn a_blocking_unix_connect_to_a_full_backlog_waits_for_room() {
    let _dog = watchdog::arm();
    use std::os::unix::net::UnixStream;
    let _g = serial();
    let (l, path) = backlog_zero_listener("monkey-backlog");
    let acceptor = delayed_acceptor(l, Duration::from_millis(200), 3);
    let p2 = path.clone();
    let h = green::spawn(move || {
        let t = Instant::now();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(UnixStream::connect(&p2).map_err(|e| e.kind())?);
        }
        Ok::<_, ErrorKind>((held, t.elapsed()))
    });
    let r = h.join().unwrap();
    let accepted = acceptor.join().unwrap();
    let _ = std::fs::remove_file(&path);
    let (held, took) = r.expect("a blocking connect waits for room in the backlog");
    assert_eq!(held.len(), 3);
    assert_eq!(accepted.len(), 3);
    assert!(took >= Duration::from_millis(150), "{took:?}");
}

#[test]
fn a_unix_connect_to_a_full_backlog_gives_up_after_the_send_timeout() {
    let _dog = watchdog::arm();
    let _g = serial();
    let (l, path) = backlog_zero_listener("monkey-backlog-timeout");
    let p2 = path.clone();
    let h = green::spawn(move || {
        let _first = std::os::unix::net::UnixStream::connect(&p2).unwrap(); // fills it
        // SAFETY: plain socket calls on a socket this closure owns, with valid buffers.
        unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            let r = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            assert_eq!(r, 0);
            let mut sun: libc::sockaddr_un = std::mem::zeroed();
            sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let bytes = p2.as_os_str().as_encoded_bytes();
            for (d, s) in sun.sun_path.iter_mut().zip(bytes) {
                *d = *s as libc::c_char;
            }
            let t = Instant::now();
            let r = libc::connect(
                fd,
                (&raw const sun).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            );
            let e = std::io::Error::last_os_error().raw_os_error();
            let took = t.elapsed();
            libc::close(fd);
            (r, e, took)
        }
    });
    let (r, e, took) = h.join().unwrap();
    drop(l);
    let _ = std::fs::remove_file(&path);
    assert_eq!((r, e), (-1, Some(libc::EAGAIN)));
    assert!(took >= Duration::from_millis(95), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn an_empty_write_after_a_short_one_returns_at_once() {
    let _dog = watchdog::arm();
    let _g = serial();
    let h = green::spawn(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_b, _) = l.accept().unwrap(); // never reads
        // Ends by itself (WouldBlock) if an empty write parks on the full send buffer.
        a.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let big = vec![0u8; 32 << 20];
        let n = a.write(&big).unwrap();
        assert!(n < big.len(), "a short write fills the send buffer");
        let t = Instant::now();
        let w = a.write(&[]).map_err(|e| e.kind());
        let v = a.write_vectored(&[]).map_err(|e| e.kind());
        (w, v, t.elapsed())
    });
    let (w, v, took) = h.join().unwrap();
    assert_eq!(w, Ok(0));
    assert_eq!(v, Ok(0));
    assert!(took < Duration::from_millis(500), "{took:?}");
}

#[test]
fn an_empty_read_still_waits_where_the_kernel_would() {
    let _dog = watchdog::arm();
    let _g = serial();
    let h = green::spawn(|| {
        // A blocking datagram read of zero bytes waits for a datagram (and drops it).
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let t = Instant::now();
        let r = u.recv(&mut []).map_err(|e| e.kind());
        let took = t.elapsed();
        u.send_to(b"x", u.local_addr().unwrap()).unwrap();
        (r, took, u.recv(&mut []).map_err(|e| e.kind()))
    });
    let (r, took, queued) = h.join().unwrap();
    assert_eq!(r, Err(ErrorKind::WouldBlock));
    assert!(took >= Duration::from_millis(45), "{took:?}");
    assert_eq!(queued, Ok(0));
}

/// A connected pair made on this thread before it has a hub: the hooks record both
/// sockets, but no greenlet has adopted them yet (the kernel's flags are the user's).
fn fresh_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (p, _) = l.accept().unwrap();
    (c, p)
}

#[test]
fn a_clone_of_a_fresh_socket_still_blocks_in_greenlets_after_the_original_is_adopted() {
    let _dog = watchdog::arm();
    let _g = serial();
    let (s, mut p) = fresh_pair();
    // Ends by itself (WouldBlock) if the data never comes.
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let s2 = s.try_clone().unwrap(); // same open file description, both not adopted
    let t = Instant::now();
    let r1 = green::spawn(move || {
        let mut b = [0u8; 4];
        (&s).read_exact(&mut b).map(|()| b).map_err(|e| e.kind())
    });
    let r2 = green::spawn(move || {
        let mut b = [0u8; 4];
        (&s2).read_exact(&mut b).map(|()| b).map_err(|e| e.kind())
    });
    green::sleep(Duration::from_millis(100)); // both parked (or failed)
    p.write_all(b"abcdefgh").unwrap();
    let (a, b) = (r1.join().unwrap(), r2.join().unwrap());
    let mut got = [a.expect("original"), b.expect("clone")];
    got.sort();
    assert_eq!(got, [*b"abcd", *b"efgh"]);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn a_clone_read_on_a_plain_thread_blocks_after_a_greenlet_adopted_the_original() {
    let _dog = watchdog::arm();
    let _g = serial();
    let (s, mut p) = fresh_pair();
    let s2 = s.try_clone().unwrap();
    // A greenlet adopts the original (the kernel's flag becomes O_NONBLOCK, for both).
    let r = green::spawn(move || {
        let mut s = s;
        s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let r = s.read(&mut [0u8; 4]).map_err(|e| e.kind());
        s.set_read_timeout(None).unwrap(); // for the clone too: it shares the option
        r
    })
    .join()
    .unwrap();
    assert_eq!(r, Err(ErrorKind::WouldBlock));
    // The clone, read on a plain thread with no timeout, waits for the data.
    let t = thread::spawn(move || {
        let mut s2 = s2;
        let t = Instant::now();
        let mut b = [0u8; 4];
        let r = s2.read_exact(&mut b).map(|()| b).map_err(|e| e.kind());
        (r, t.elapsed())
    });
    thread::sleep(Duration::from_millis(100));
    p.write_all(b"wxyz").unwrap();
    let (r, took) = t.join().unwrap();
    assert_eq!(r, Ok(*b"wxyz"));
    assert!(took >= Duration::from_millis(90), "{took:?}");
}

#[test]
fn options_set_on_a_socket_reach_its_clones() {
    let _dog = watchdog::arm();
    let _g = serial();
    for which in ["read timeout", "nonblocking"] {
        let h = green::spawn(move || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let s = TcpStream::connect(l.local_addr().unwrap()).unwrap(); // adopted
            let (_p, _) = l.accept().unwrap();
            let mut s2 = s.try_clone().unwrap();
            // Through the clone first: ends the read below by itself if the option set
            // through the original does not reach the clone.
            s2.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            if which == "read timeout" {
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
            } else {
                s.set_nonblocking(true).unwrap();
            }
            let t = Instant::now();
            let r = s2.read(&mut [0u8; 8]).map_err(|e| e.kind());
            let took = t.elapsed();
            // And back: blocking again through the clone is seen by the original.
            s2.set_nonblocking(false).unwrap();
            s2.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let t2 = Instant::now();
            let back = (&s).read(&mut [0u8; 8]).map_err(|e| e.kind());
            (r, took, back, t2.elapsed())
        });
        let (r, took, back, took_back) = h.join().unwrap();
        assert_eq!(r, Err(ErrorKind::WouldBlock), "{which}");
        assert!(took < Duration::from_secs(1), "{which}: {took:?}");
        if which == "read timeout" {
            assert!(took >= Duration::from_millis(95), "{which}: {took:?}");
        }
        assert_eq!(back, Err(ErrorKind::WouldBlock), "{which}");
        assert!(
            took_back >= Duration::from_millis(15) && took_back < Duration::from_secs(1),
            "{which}: {took_back:?}"
        );
    }
}
