//! `DatagramServer`: a greenlet per datagram, nothing bound before start or after stop,
//! the concurrency limit, the grace period and the kill of `stop`, errors, panics.

use std::cell::Cell;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::net::{DatagramServer, UdpSocket};

#[path = "../../tests/support/log_capture.rs"]
mod log_capture;

/// A UDP address on which nothing is bound: a port the kernel just handed out for
/// port 0, released at once.
fn unused_addr() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// Waits (switching) until `cond` holds; fails the test after 5 s.
fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        green::sleep(Duration::from_millis(1));
    }
}

/// A client connected to `addr`, with a receive timeout.
fn client(addr: SocketAddr) -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

fn echo_upper(data: &[u8], from: SocketAddr, sock: &UdpSocket) {
    let _ = sock.send_to(&data.to_ascii_uppercase(), from);
}

/// The most handlers that ran at once.
type Most = Rc<Cell<usize>>;

/// A handler that waits `d`, then answers upper-cased, and the most handlers that ran
/// at once.
fn slow_echo(d: Duration) -> (impl Fn(&[u8], SocketAddr, &UdpSocket), Most) {
    let (running, most) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
    let m = most.clone();
    let handler = move |data: &[u8], from, sock: &UdpSocket| {
        running.set(running.get() + 1);
        m.set(m.get().max(running.get()));
        green::sleep(d);
        echo_upper(data, from, sock);
        running.set(running.get() - 1);
    };
    (handler, most)
}

/// Whether a datagram sent to `addr` is refused (ICMP port unreachable): nothing is
/// bound there.
fn refused(addr: SocketAddr) -> bool {
    let c = client(addr);
    c.send(b"anyone?").unwrap();
    matches!(c.recv(&mut [0u8; 16]), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

#[test]
fn answers_each_datagram_in_its_own_greenlet() {
    const N: usize = 20;
    let (handler, most) = slow_echo(Duration::from_millis(20));
    let server = DatagramServer::new("127.0.0.1:0", handler);
    server.start().unwrap();
    let c = client(server.local_addr().unwrap());
    for i in 0..N {
        c.send(format!("d{i}").as_bytes()).unwrap();
    }
    let mut got: Vec<String> = (0..N)
        .map(|_| {
            let mut buf = [0u8; 16];
            let n = c.recv(&mut buf).unwrap();
            String::from_utf8(buf[..n].to_vec()).unwrap()
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("D{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    assert!(
        most.get() > 1,
        "handlers ran side by side (at most {})",
        most.get()
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn nothing_is_bound_before_start_or_after_stop() {
    let addr = unused_addr();
    let server = DatagramServer::new(addr, echo_upper);
    assert!(refused(addr), "nothing bound before start");
    server.start().unwrap();
    let c = client(addr);
    c.send(b"hi").unwrap();
    let mut buf = [0u8; 8];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"HI");
    server.stop(Duration::from_secs(1));
    assert!(refused(addr), "released by stop");
}

#[test]
fn max_handlers_stops_receiving_while_full() {
    const LIMIT: usize = 2;
    const N: usize = 8;
    let (handler, most) = slow_echo(Duration::from_millis(10));
    let server = DatagramServer::new("127.0.0.1:0", handler).max_handlers(LIMIT);
    server.start().unwrap();
    let c = client(server.local_addr().unwrap());
    for _ in 0..N {
        c.send(b"x").unwrap();
    }
    for _ in 0..N {
        let mut buf = [0u8; 4];
        assert_eq!(c.recv(&mut buf).unwrap(), 1, "queued, then answered");
    }
    assert_eq!(most.get(), LIMIT, "never more than the limit at once");
    server.stop(Duration::from_secs(1));
}

#[test]
fn stop_gives_the_grace_period_then_kills() {
    let server = DatagramServer::new("127.0.0.1:0", |data: &[u8], from, sock: &UdpSocket| {
        if data == b"slow" {
            green::sleep(Duration::from_secs(3600));
        } else {
            green::sleep(Duration::from_millis(20));
        }
        let _ = sock.send_to(data, from);
    });
    server.start().unwrap();
    let c = client(server.local_addr().unwrap());
    c.send(b"slow").unwrap();
    c.send(b"quick").unwrap();
    until("both handlers", || server.handlers() == 2);
    let grace = Duration::from_millis(200);
    let t = Instant::now();
    server.stop(grace);
    let took = t.elapsed();
    assert!(took >= grace && took < Duration::from_secs(30), "{took:?}");
    assert_eq!(server.handlers(), 0);
    let mut buf = [0u8; 8];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"quick", "answered within the grace period");
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        c.recv(&mut buf).is_err(),
        "the killed handler never answered"
    );
}

#[test]
fn errors_are_reported_and_panics_logged() {
    log_capture::install(log::LevelFilter::Warn);
    let a = DatagramServer::new("127.0.0.1:0", echo_upper);
    a.start().unwrap();
    let b = DatagramServer::new(a.local_addr().unwrap(), echo_upper);
    assert_eq!(b.start().unwrap_err().kind(), ErrorKind::AddrInUse);
    assert!(a.start().is_err(), "already started");
    let zero = DatagramServer::new("127.0.0.1:0", echo_upper).max_handlers(0);
    assert_eq!(zero.start().unwrap_err().kind(), ErrorKind::InvalidInput);

    let server = DatagramServer::new("127.0.0.1:0", |data: &[u8], from, sock: &UdpSocket| {
        if data == b"!" {
            panic!("datagram boom");
        }
        echo_upper(data, from, sock);
    });
    server.start().unwrap();
    let c = client(server.local_addr().unwrap());
    c.send(b"!").unwrap();
    until("the panic to be logged", || {
        log_capture::logged("datagram boom") > 0
    });
    c.send(b"ok").unwrap();
    let mut buf = [0u8; 8];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"OK", "the server goes on");
    server.stop(Duration::from_secs(1));
    server.stop(Duration::from_secs(1));
    assert!(
        server.start().is_err(),
        "a closed server does not start again"
    );
    a.close();
}

#[test]
fn a_server_made_with_a_socket_uses_it() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let server = DatagramServer::new(sock, echo_upper);
    assert_eq!(server.local_addr().unwrap(), addr);
    server.start().unwrap();
    let c = client(addr);
    c.send(b"mine").unwrap();
    let mut buf = [0u8; 8];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"MINE");
    server.stop(Duration::from_secs(1));
    assert!(refused(addr));
}

#[test]
fn serve_forever_returns_after_stop() {
    let server = DatagramServer::new("127.0.0.1:0", echo_upper);
    let s = server.clone();
    green::spawn(move || {
        green::sleep(Duration::from_millis(10));
        s.stop(Duration::from_secs(1));
    });
    server.serve_forever().unwrap();
    assert!(server.closed() && !server.started());
}

#[test]
fn dropping_the_last_handle_or_closing_the_socket_ends_the_server() {
    let server = DatagramServer::new("127.0.0.1:0", echo_upper);
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    drop(server);
    green::sleep(Duration::from_millis(10)); // the receive loop ends and drops the socket
    assert!(refused(addr), "released");

    let server = DatagramServer::new("127.0.0.1:0", |_: &[u8], _, sock: &UdpSocket| sock.close());
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    client(addr).send(b"close it").unwrap();
    until("the server to close", || server.closed());
    server.stop(Duration::from_secs(1));
    assert!(refused(addr));
}
