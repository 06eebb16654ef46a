//! TCP behaviour over loopback: concurrency in one thread, EOF, reset, refused,
//! timeouts, close while waiting, bulk transfer, use outside a hub.

use std::cell::Cell;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

mod common;

use common::{pair, wait_by_fd_for_a_byte};

/// A per-connection loop: upper-case what arrives until EOF or an error.
fn talk(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n].to_ascii_uppercase())?;
    }
}

#[test]
fn many_clients_one_thread() {
    const CLIENTS: usize = 200;
    const ROUNDS: usize = 20;
    let thread = std::thread::current().id();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Rc::new(Cell::new(0usize));
    let s2 = served.clone();
    let server = green::spawn(move || {
        for _ in 0..CLIENTS {
            let (conn, _) = listener.accept().unwrap();
            let s = s2.clone();
            green::spawn(move || {
                assert_eq!(std::thread::current().id(), thread);
                talk(conn).unwrap();
                s.set(s.get() + 1);
            });
        }
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            green::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let mut buf = [0u8; 64];
                for n in 0..ROUNDS {
                    let msg = format!("greenlet-{i} {n}");
                    c.write_all(msg.as_bytes()).unwrap();
                    c.read_exact(&mut buf[..msg.len()]).unwrap();
                    assert_eq!(&buf[..msg.len()], msg.to_uppercase().as_bytes());
                }
                ROUNDS
            })
        })
        .collect();
    let total: usize = green::joinall(clients)
        .into_iter()
        .map(Result::unwrap)
        .sum();
    server.join().unwrap();
    // Let the handlers see EOF.
    while served.get() < CLIENTS {
        green::sleep(Duration::from_millis(1));
    }
    assert_eq!(total, CLIENTS * ROUNDS);
}

#[test]
fn eof_reads_zero() {
    let (c, mut s) = pair();
    drop(c);
    assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0);
}

#[test]
fn reset_by_peer() {
    let (c, mut s) = pair();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `c` owns an open socket; we pass a live linger struct and its size.
    let r = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
    drop(c); // sends RST
    let err = s.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn connect_refused() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is dropped: nothing listens on `addr` now.
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let err = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn read_timeout_expires_with_timed_out() {
    let (mut c, _s) = pair();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let t = Instant::now();
    let err = c.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(t.elapsed() < Duration::from_secs(2));
    // Other greenlets run during the wait.
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    let ticker = green::spawn(move || {
        for _ in 0..3 {
            green::sleep(Duration::from_millis(5));
            t2.set(t2.get() + 1);
        }
    });
    let err = c.read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    ticker.join().unwrap();
    assert_eq!(ticks.get(), 3);
    assert!(c.set_read_timeout(Some(Duration::ZERO)).is_err());
}

#[test]
fn write_timeout_expires_with_timed_out() {
    let (mut c, _s) = pair(); // the server never reads
    c.set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let chunk = vec![0u8; 1 << 16];
    let t = Instant::now();
    let err = loop {
        if let Err(e) = c.write(&chunk) {
            break e;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "buffers never filled");
    };
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[test]
fn connect_timeout_on_full_backlog() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: re-listening on our own open listener only changes its backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let addr = l.local_addr().unwrap();
    let mut kept = Vec::new();
    let mut timed_out = false;
    for _ in 0..8 {
        let t = Instant::now();
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => kept.push(s),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                assert!(t.elapsed() >= Duration::from_millis(100));
                assert!(t.elapsed() < Duration::from_secs(2));
                timed_out = true;
                break;
            }
        }
    }
    assert!(timed_out, "no connect stalled ({} accepted)", kept.len());
    // A fresh listener: a tiny timeout either connects or times out, never hangs.
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    match TcpStream::connect_timeout(&l2.local_addr().unwrap(), Duration::from_nanos(1)) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}"),
    }
}

#[test]
fn close_wakes_reader_writer_and_acceptor() {
    let (c, _c_peer) = pair();
    let (_s_peer, s) = pair();
    let c = Rc::new(c);
    let s = Rc::new(s);
    // A reader parked on `c` (nothing to read), a writer parked on `s` (buffers full,
    // its peer never reads); two connections so the writer does not feed the reader.
    let c2 = c.clone();
    let reader = green::spawn(move || (&*c2).read(&mut [0u8; 16]));
    let s2 = s.clone();
    let writer = green::spawn(move || {
        let chunk = vec![0u8; 1 << 16];
        loop {
            (&*s2).write_all(&chunk)?;
        }
    });
    let l = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let l2 = l.clone();
    let acceptor = green::spawn(move || l2.accept().map(|_| ()));
    let t = Instant::now();
    green::sleep(Duration::from_millis(50)); // all three park
    assert!(!reader.is_finished() && !writer.is_finished() && !acceptor.is_finished());
    let closer = green::spawn(move || {
        c.close();
        s.close();
        l.close();
    });
    closer.join().unwrap();
    let r: io::Result<usize> = reader.join().unwrap();
    let w: io::Result<()> = writer.join().unwrap();
    let a = acceptor.join().unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::ConnectionAborted);
    assert_eq!(w.unwrap_err().kind(), ErrorKind::ConnectionAborted);
    assert_eq!(a.unwrap_err().kind(), ErrorKind::ConnectionAborted);
    assert!(t.elapsed() < Duration::from_secs(2));
}

fn pattern(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

fn send_pattern(mut w: &TcpStream, len: usize) -> io::Result<()> {
    let mut buf = vec![0u8; 100_003];
    let mut sent = 0;
    while sent < len {
        let n = buf.len().min(len - sent);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            *b = pattern(sent + k);
        }
        w.write_all(&buf[..n])?;
        sent += n;
    }
    Ok(())
}

fn recv_pattern(mut r: &TcpStream, len: usize) -> io::Result<usize> {
    let mut buf = vec![0u8; 65_536];
    let mut got = 0;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(got);
        }
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, pattern(got + k), "byte {} differs", got + k);
        }
        got += n;
        assert!(got <= len);
    }
}

#[test]
fn sixteen_mib_both_directions() {
    const LEN: usize = 16 << 20;
    let (c, s) = pair();
    let (c, s) = (Rc::new(c), Rc::new(s));
    let mut hs = Vec::new();
    for (a, b) in [(c.clone(), s.clone()), (s, c)] {
        // `a` sends to `b`'s reader; the reader on `b` runs while `b` also sends.
        let a2 = a.clone();
        hs.push(green::spawn(move || {
            send_pattern(&a2, LEN).unwrap();
            a2.shutdown(std::net::Shutdown::Write).unwrap();
            0
        }));
        hs.push(green::spawn(move || recv_pattern(&b, LEN).unwrap()));
    }
    let got: Vec<usize> = green::joinall(hs).into_iter().map(Result::unwrap).collect();
    assert_eq!(got, [0, LEN, 0, LEN]);
}

#[test]
fn try_clone_shares_the_connection() {
    let (mut c, s) = pair();
    let s2 = s.try_clone().unwrap();
    let w = green::spawn(move || {
        let mut s2 = s2;
        s2.write_all(b"from clone").unwrap();
    });
    let mut buf = [0u8; 10];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"from clone");
    w.join().unwrap();
    drop(s);
}

#[test]
fn blocking_use_outside_any_hub() {
    std::thread::spawn(|| {
        assert!(!green::is_greenlet_context());
        // A green server on a plain thread, a std client on another.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            std::thread::sleep(Duration::from_millis(20)); // the server waits meanwhile
            c.write_all(b"std client").unwrap();
            let mut buf = [0u8; 10];
            c.read_exact(&mut buf).unwrap();
            buf
        });
        let (s, _) = l.accept().unwrap();
        let mut buf = [0u8; 10];
        (&s).read_exact(&mut buf).unwrap();
        (&s).write_all(&buf.to_ascii_uppercase()).unwrap();
        assert_eq!(&client.join().unwrap(), b"STD CLIENT");

        // A green client of a std server.
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = std_l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(b"hello").unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        server.join().unwrap();
        // into_std gives back a blocking std stream.
        let std_c = c.into_std().unwrap();
        // Blocking again: the server has gone, so this waits for and reads EOF.
        assert_eq!((&std_c).read(&mut buf).unwrap(), 0);
    })
    .join()
    .unwrap();
}

// --- The readiness cache: a short read marks the socket drained; no edge may be lost. ---

/// Runs `f` on a fresh thread and fails if it does not finish in time (a lost wakeup
/// shows as a greenlet parked forever).
fn within_20s(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => t.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p)
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("lost wakeup: hung"),
    }
}

#[test]
fn ping_pong_many_messages_of_many_sizes_loses_no_wakeup() {
    within_20s(|| {
        let (a, b) = pair();
        a.set_nodelay(true).unwrap();
        b.set_nodelay(true).unwrap();
        const ROUNDS: usize = 3000;
        // Echo side: reads whatever arrives (short reads mark it drained), writes it back.
        let echo = green::spawn(move || {
            let mut b = b;
            let mut buf = [0u8; 700];
            let mut total = 0;
            loop {
                let n = b.read(&mut buf).unwrap();
                if n == 0 {
                    return total;
                }
                total += n;
                b.write_all(&buf[..n]).unwrap();
            }
        });
        let mut a = a;
        let mut sent = 0;
        for i in 0..ROUNDS {
            // Sizes below, at and above the echo's buffer, sent in one or two pieces.
            let len = 1 + (i * 37) % 2000;
            let msg: Vec<u8> = (0..len).map(|k| (k + i) as u8).collect();
            if i % 3 == 0 {
                let (x, y) = msg.split_at(len / 2);
                a.write_all(x).unwrap();
                green::yield_now();
                a.write_all(y).unwrap();
            } else {
                a.write_all(&msg).unwrap();
            }
            let mut back = vec![0u8; len];
            a.read_exact(&mut back).unwrap();
            assert_eq!(back, msg, "round {i}");
            sent += len;
        }
        a.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(echo.join().unwrap(), sent);
    });
}

#[test]
fn a_read_after_a_short_read_parks_until_new_data() {
    within_20s(|| {
        let (mut a, b) = pair();
        let b = Rc::new(b);
        a.write_all(b"hello").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!((&*b).read(&mut buf).unwrap(), 5); // short: drained
        let got = Rc::new(Cell::new(0usize));
        let (b2, g2) = (b.clone(), got.clone());
        let reader = green::spawn(move || {
            let mut buf = [0u8; 64];
            let n = (&*b2).read(&mut buf).unwrap();
            g2.set(n);
            buf[..n].to_vec()
        });
        // The reader parks (no data) and stays parked while the hub polls.
        green::sleep(Duration::from_millis(20));
        assert_eq!(got.get(), 0);
        assert!(!reader.is_finished());
        a.write_all(b"world!").unwrap();
        assert_eq!(reader.join().unwrap(), b"world!");
    });
}

#[test]
fn data_arriving_after_a_short_read_without_a_poll_is_not_lost() {
    within_20s(|| {
        let (mut a, mut b) = pair();
        a.write_all(b"one").unwrap();
        // Make sure "one" is in b's receive queue before the read.
        green::sleep(Duration::from_millis(5));
        let mut buf = [0u8; 64];
        assert_eq!(b.read(&mut buf).unwrap(), 3); // short: drained
        // New data arrives with no hub poll in between (a blocking std write from
        // another thread); the edge is still pending in epoll.
        let mut a_std = a.try_clone().unwrap().into_std().unwrap();
        std::thread::spawn(move || a_std.write_all(b"two").unwrap())
            .join()
            .unwrap();
        assert_eq!(b.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"two");
        // An edge recorded while nobody waited: data arrives, the hub polls (sleep),
        // then the read finds the cache set.
        a.write_all(b"three").unwrap();
        green::sleep(Duration::from_millis(5));
        assert_eq!(b.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"three");
    });
}

#[test]
fn nonblocking_read_after_a_short_read_still_tries_the_socket() {
    within_20s(|| {
        let (mut a, mut b) = pair();
        b.set_nonblocking(true).unwrap();
        a.write_all(b"x").unwrap();
        green::sleep(Duration::from_millis(5));
        let mut buf = [0u8; 64];
        assert_eq!(b.read(&mut buf).unwrap(), 1); // short: drained
        assert_eq!(b.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        // Data arrives; no poll happens (no switch) before the next non-blocking read,
        // which must still find it.
        let mut a_std = a.try_clone().unwrap().into_std().unwrap();
        std::thread::spawn(move || a_std.write_all(b"yz").unwrap())
            .join()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(b.read(&mut buf).unwrap(), 2);
    });
}

#[test]
fn close_wakes_a_reader_parked_on_a_drained_socket() {
    within_20s(|| {
        let (mut a, b) = pair();
        let b = Rc::new(b);
        a.write_all(b"hi").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!((&*b).read(&mut buf).unwrap(), 2); // drained
        let b2 = b.clone();
        let reader = green::spawn(move || (&*b2).read(&mut [0u8; 8]).unwrap_err().kind());
        green::yield_now(); // parks without trying the socket
        b.close();
        assert_eq!(reader.join().unwrap(), ErrorKind::ConnectionAborted);
    });
}

#[test]
fn eof_that_arrived_with_the_last_data_is_not_lost_after_a_short_read() {
    within_20s(|| {
        let (mut a, mut b) = pair();
        a.write_all(b"last words").unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        // The hub polls: the one edge (data + hang-up) is consumed now.
        green::sleep(Duration::from_millis(5));
        let mut buf = [0u8; 64];
        assert_eq!(b.read(&mut buf).unwrap(), 10); // short, but EOF is pending
        assert_eq!(b.read(&mut buf).unwrap(), 0);
        assert_eq!(b.read(&mut buf).unwrap(), 0);
    });
}

/// Fails the test (instead of hanging it) if `f` has not finished within `secs`.
fn within<T: 'static>(secs: u64, f: impl FnOnce() -> T + 'static) -> T {
    let h = green::spawn(f);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !h.is_finished() {
        assert!(Instant::now() < deadline, "still waiting after {secs} s");
        green::sleep(Duration::from_millis(5));
    }
    h.join().unwrap()
}

#[test]
fn empty_writes_return_at_once_and_empty_reads_wait_as_in_std() {
    let (mut a, mut b) = pair();
    // An empty read waits for data (or EOF), as std's does on a blocking socket.
    let mut b2 = b.try_clone().unwrap();
    let reader = green::spawn(move || b2.read(&mut []).unwrap());
    green::sleep(Duration::from_millis(20));
    assert!(!reader.is_finished());
    // Fill the send path so that the readiness cache says "not writable".
    a.set_nonblocking(true).unwrap();
    while a.write(&[0u8; 65536]).is_ok() {}
    a.set_nonblocking(false).unwrap();
    assert_eq!(within(5, move || reader.join().unwrap()), 0);
    let n = within(5, move || {
        let w = a.write(&[]).unwrap();
        let wv = (&a).write_vectored(&[]).unwrap();
        let r = b.read(&mut []).unwrap();
        (w, wv, r)
    });
    assert_eq!(n, (0, 0, 0));
}

#[test]
fn a_vectored_read_of_more_than_iov_max_slices_leaves_no_data_stranded() {
    let (mut a, mut b) = pair();
    a.write_all(&[7u8; 1500]).unwrap();
    green::sleep(Duration::from_millis(20));
    let got = within(5, move || {
        let mut store = vec![[0u8; 1]; 2000];
        let mut bufs: Vec<io::IoSliceMut> =
            store.iter_mut().map(|x| io::IoSliceMut::new(x)).collect();
        let first = b.read_vectored(&mut bufs).unwrap(); // the kernel takes 1024 slices
        let mut rest = [0u8; 1000];
        let mut n = first;
        while n < 1500 {
            n += b.read(&mut rest).unwrap();
        }
        n
    });
    assert_eq!(got, 1500);
}

#[test]
fn urgent_data_does_not_strand_what_follows_it() {
    let (a, mut b) = pair();
    let fd = a.as_raw_fd();
    let send = |data: &[u8], flags: libc::c_int| {
        // SAFETY: `data` is valid for reads of its length; `fd` is an open socket.
        let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), flags) };
        assert_eq!(n, data.len() as isize);
    };
    send(b"hello", 0);
    send(b"!", libc::MSG_OOB);
    send(b"world", 0);
    green::sleep(Duration::from_millis(20)); // all of it arrives before the first read
    let got = within(5, move || {
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while got.len() < 10 {
            let n = b.read(&mut buf).unwrap(); // stops at the urgent mark first
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    assert_eq!(got, b"helloworld");
    drop(a);
}

#[test]
fn a_std_socket_the_reactor_knows_by_fd_can_become_a_green_one() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_peer, _) = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    // What the monkey patch does for a std socket that waited once in a greenlet.
    let soon = Some(Instant::now() + Duration::from_millis(1));
    let _ = green::__net::wait_fd(s.as_raw_fd(), mio::Interest::READABLE, soon);
    let g = TcpStream::from_std(s).unwrap();
    drop(g);
}

#[test]
fn waiting_by_fd_on_a_green_socket_uses_its_registration() {
    let (a, b) = pair();
    let a = wait_by_fd_for_a_byte(a, &b);
    // Again: found without registering (remembered), still this socket's edges.
    drop(wait_by_fd_for_a_byte(a, &b));
}

#[test]
fn bind_with_backlog_sets_the_listen_backlog() {
    /// The listen backlog, as the kernel reports it for a listening socket in
    /// `tcp_info.tcpi_sacked` (what `ss -lt` shows as Send-Q).
    fn backlog_of(l: &TcpListener) -> u32 {
        // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: `info` is writable for `len` bytes; the fd is an open socket.
        let r = unsafe {
            libc::getsockopt(
                l.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &raw mut len,
            )
        };
        assert_eq!(r, 0, "{}", io::Error::last_os_error());
        info.tcpi_sacked
    }
    let l = TcpListener::bind_with_backlog("127.0.0.1:0", 7).unwrap();
    assert_eq!(backlog_of(&l), 7);
    assert_eq!(backlog_of(&TcpListener::bind("127.0.0.1:0").unwrap()), 1024);
    let huge = TcpListener::bind_with_backlog("127.0.0.1:0", u32::MAX).unwrap();
    assert!(
        backlog_of(&huge) >= 128,
        "capped by the kernel, not an error"
    );
}
