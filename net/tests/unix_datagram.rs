//! `green::net::UnixDatagram`.

use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::net::UnixDatagram;

/// A fresh socket path for this process and `name` (removed first if left over).
fn sock_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("green-dgram-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn two_greenlets_exchange_datagrams_concurrently() {
    const ROUNDS: usize = 200;
    let (a, b) = UnixDatagram::pair().unwrap();
    // `a` sends a numbered ping and waits for the pong; `b` answers each. Both park on
    // every recv, so the exchange only finishes if each wakes the other.
    let pinger = green::spawn(move || {
        let mut buf = [0u8; 64];
        for i in 0..ROUNDS {
            a.send(format!("ping {i}").as_bytes()).unwrap();
            let n = a.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("pong {i}").as_bytes());
        }
        ROUNDS
    });
    let ponger = green::spawn(move || {
        let mut buf = [0u8; 64];
        let mut answered = 0;
        for i in 0..ROUNDS {
            let n = b.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("ping {i}").as_bytes());
            b.send(format!("pong {i}").as_bytes()).unwrap();
            answered += 1;
        }
        answered
    });
    assert_eq!(pinger.join().unwrap(), ROUNDS);
    assert_eq!(ponger.join().unwrap(), ROUNDS);
}

#[test]
fn bound_sockets_send_to_and_recv_from() {
    let server_path = sock_path("server");
    let client_path = sock_path("client");
    let server = UnixDatagram::bind(&server_path).unwrap();
    let client = UnixDatagram::bind(&client_path).unwrap();
    let echo = green::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..5 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let to = from.as_pathname().unwrap().to_owned();
            server.send_to(&buf[..n].to_ascii_uppercase(), to).unwrap();
        }
    });
    let mut buf = [0u8; 64];
    for i in 0..5 {
        let msg = format!("datagram {i}");
        assert_eq!(
            client.send_to(msg.as_bytes(), &server_path).unwrap(),
            msg.len()
        );
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg.to_uppercase().as_bytes());
        assert_eq!(from.as_pathname(), Some(server_path.as_path()));
    }
    echo.join().unwrap();
    std::fs::remove_file(&server_path).unwrap();
    std::fs::remove_file(&client_path).unwrap();
}

#[test]
fn connected_unbound_socket() {
    let path = sock_path("connected");
    let server = UnixDatagram::bind(&path).unwrap();
    let client = UnixDatagram::unbound().unwrap();
    assert_eq!(
        client.peer_addr().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    client.connect(&path).unwrap();
    assert_eq!(
        client.peer_addr().unwrap().as_pathname(),
        Some(path.as_path())
    );
    client.send(b"hello").unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    assert!(from.is_unnamed());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn recv_timeout_expires_with_timed_out() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(a.read_timeout().unwrap(), Some(Duration::from_millis(50)));
    // Another greenlet keeps running while `a` waits.
    let ticker = green::spawn(|| {
        let mut ticks = 0;
        for _ in 0..5 {
            green::sleep(Duration::from_millis(1));
            ticks += 1;
        }
        ticks
    });
    let start = Instant::now();
    let err = a.recv(&mut [0u8; 8]).unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(
        waited >= Duration::from_millis(50),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
    assert_eq!(ticker.join().unwrap(), 5);
    assert_eq!(
        a.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

/// Fills the queue of the socket bound to `path` with 1-byte datagrams from another
/// socket (the kernel bounds it by `net.unix.max_dgram_qlen` datagrams); returns how
/// many it queued.
fn fill_queue(path: &Path) -> usize {
    let filler = StdUnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    let mut queued = 0;
    loop {
        match filler.send_to(b"f", path) {
            Ok(_) => queued += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return queued,
            Err(e) => panic!("filling the queue: {e}"),
        }
        assert!(queued < 1_000_000, "the queue never filled");
    }
}

#[test]
fn send_to_a_full_queue_waits_until_the_receiver_drains_it() {
    let path = sock_path("full");
    let receiver = UnixDatagram::bind(&path).unwrap();
    let queued = fill_queue(&path);
    // The sender is not the receiver's peer, so the kernel does not tell it when room
    // appears: it must still finish once the receiver drains the queue. The timeout
    // only bounds the test.
    let sender = UnixDatagram::unbound().unwrap();
    sender
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let p = path.clone();
    let send = green::spawn(move || sender.send_to(b"last", &p));
    green::sleep(Duration::from_millis(30));
    let mut buf = [0u8; 8];
    for _ in 0..queued {
        assert_eq!(receiver.recv(&mut buf).unwrap(), 1);
    }
    let start = Instant::now();
    assert_eq!(send.join().unwrap().unwrap(), 4);
    assert!(start.elapsed() < Duration::from_secs(5));
    let n = receiver.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"last");
    std::fs::remove_file(&path).unwrap();
}

/// This thread's CPU time (user and system) so far.
fn thread_cpu_time() -> Duration {
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is live for the call.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[test]
fn send_to_a_full_queue_waits_without_spinning() {
    let path = sock_path("full-cpu");
    let receiver = UnixDatagram::bind(&path).unwrap();
    let queued = fill_queue(&path);
    let sender = UnixDatagram::unbound().unwrap();
    sender.set_nonblocking(true).unwrap();
    let err = sender.send_to(b"x", &path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    sender.set_nonblocking(false).unwrap();
    // Each refused send raises a writable edge on the sender: a sender that waited for
    // edges would keep the thread busy for the whole wait.
    let p = path.clone();
    let send = green::spawn(move || sender.send_to(b"last", &p));
    let (wall, cpu) = (Instant::now(), thread_cpu_time());
    green::sleep(Duration::from_millis(300));
    let (wall, cpu) = (wall.elapsed(), thread_cpu_time() - cpu);
    assert!(
        cpu < wall / 4,
        "{cpu:?} of CPU in {wall:?} while the sender waited"
    );
    for _ in 0..queued {
        receiver.recv(&mut [0u8; 8]).unwrap();
    }
    assert_eq!(send.join().unwrap().unwrap(), 4);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn send_to_a_full_queue_times_out() {
    let path = sock_path("full-timeout");
    let _receiver = UnixDatagram::bind(&path).unwrap();
    fill_queue(&path);
    let sender = UnixDatagram::unbound().unwrap();
    sender
        .set_write_timeout(Some(Duration::from_millis(60)))
        .unwrap();
    let start = Instant::now();
    let err = sender.send_to(b"x", &path).unwrap_err();
    let waited = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(
        waited >= Duration::from_millis(60),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn nonblocking_mode_returns_would_block() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    assert_eq!(
        a.recv(&mut [0u8; 8]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    a.set_nonblocking(false).unwrap();
    a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    assert_eq!(
        a.recv(&mut [0u8; 8]).unwrap_err().kind(),
        ErrorKind::TimedOut
    );
}

#[test]
fn close_wakes_a_waiting_receiver() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    let a = Rc::new(a);
    let a2 = a.clone();
    let rx = green::spawn(move || a2.recv(&mut [0u8; 8]));
    green::yield_now();
    a.close();
    assert_eq!(
        rx.join().unwrap().unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert_eq!(
        a.send(b"x").unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    assert_eq!(
        a.try_clone().unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
}

#[test]
fn shutdown_and_take_error() {
    let (a, b) = UnixDatagram::pair().unwrap();
    assert!(a.take_error().unwrap().is_none());
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(a.send(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    b.shutdown(Shutdown::Read).unwrap();
    // A receive on a socket shut for reading returns at once, as std's blocking one:
    // no datagram, length 0, every time.
    for _ in 0..2 {
        assert_eq!(b.recv(&mut [0u8; 8]).unwrap(), 0);
        let (n, from) = b.recv_from(&mut [0u8; 8]).unwrap();
        assert_eq!(n, 0);
        assert!(from.is_unnamed());
    }
    let (c, _d) = StdUnixDatagram::pair().unwrap();
    c.shutdown(Shutdown::Read).unwrap();
    assert_eq!(c.recv(&mut [0u8; 8]).unwrap(), 0, "std's blocking receive");
}

#[test]
fn shutdown_wakes_a_waiting_receiver() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    let a = Rc::new(a);
    let a2 = a.clone();
    let rx = green::spawn(move || a2.recv(&mut [0u8; 8]));
    green::yield_now();
    a.shutdown(Shutdown::Read).unwrap();
    assert_eq!(rx.join().unwrap().unwrap(), 0);
}

#[test]
fn try_clone_keeps_settings_and_shares_the_socket() {
    let (a, b) = UnixDatagram::pair().unwrap();
    a.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let a2 = a.try_clone().unwrap();
    assert_eq!(a2.write_timeout().unwrap(), Some(Duration::from_secs(3)));
    drop(a);
    a2.send(b"from the clone").unwrap();
    let mut buf = [0u8; 32];
    let n = b.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from the clone");
}

#[test]
fn into_std_and_back() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let a = a.into_std().unwrap();
    // A blocking std socket again, usable from another thread.
    let sent = std::thread::spawn(move || a.send(b"via std").unwrap())
        .join()
        .unwrap();
    assert_eq!(sent, 7);
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(&mut buf).unwrap(), 7);
    let (c, d) = StdUnixDatagram::pair().unwrap();
    let c = UnixDatagram::try_from(c).unwrap();
    d.send(b"z").unwrap();
    assert_eq!(c.recv(&mut buf).unwrap(), 1);
}
