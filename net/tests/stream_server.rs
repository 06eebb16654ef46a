//! `StreamServer`: a greenlet per connection, refusing before start and after stop,
//! the grace period and the kill of `stop`, the concurrency limit, the backlog, errors
//! reported instead of panics, handler panics, `serve_forever`.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use green::net::{StreamServer, TcpListener, TcpStream};

#[path = "../../tests/support/log_capture.rs"]
mod log_capture;

/// An address on which nothing listens: a port the kernel just handed out for port 0,
/// released at once.
fn unused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Waits (switching) until `cond` holds; fails the test after 5 s.
fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        green::sleep(Duration::from_millis(1));
    }
}

/// Upper-cases what arrives until EOF.
fn upper(mut conn: TcpStream, _peer: SocketAddr) {
    let mut buf = [0u8; 256];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n].to_ascii_uppercase()).is_err() {
            return;
        }
    }
}

/// Sends `msg` and reads the reply of the same length.
fn ask(conn: &mut TcpStream, msg: &str) -> String {
    conn.write_all(msg.as_bytes()).unwrap();
    let mut reply = vec![0u8; msg.len()];
    conn.read_exact(&mut reply).unwrap();
    String::from_utf8(reply).unwrap()
}

fn refused(addr: SocketAddr) -> bool {
    matches!(TcpStream::connect(addr), Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

#[test]
fn serves_many_clients_each_in_its_own_greenlet() {
    const CLIENTS: usize = 50;
    let peers = Rc::new(std::cell::RefCell::new(Vec::new()));
    let p = peers.clone();
    let server = StreamServer::new("127.0.0.1:0", move |conn, peer| {
        p.borrow_mut().push(peer);
        upper(conn, peer)
    });
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    // All connected before any is answered: the handlers run side by side.
    let mut conns: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    until("every handler", || server.connections() == CLIENTS);
    for (i, c) in conns.iter_mut().enumerate() {
        assert_eq!(ask(c, &format!("client {i}")), format!("CLIENT {i}"));
    }
    let mut expected: Vec<SocketAddr> = conns.iter().map(|c| c.local_addr().unwrap()).collect();
    let mut seen = peers.borrow().clone();
    expected.sort();
    seen.sort();
    assert_eq!(
        seen, expected,
        "each handler got its connection's peer address"
    );
    drop(conns);
    until("the handlers to end", || server.connections() == 0);
    server.stop(Duration::from_secs(1));
}

#[test]
fn refuses_connections_before_start_and_after_stop() {
    let addr = unused_addr();
    let server = StreamServer::new(addr, upper);
    assert!(refused(addr), "nothing listens before start");
    assert_eq!(
        server.local_addr().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    server.start().unwrap();
    assert_eq!(server.local_addr().unwrap(), addr);
    let mut c = TcpStream::connect(addr).unwrap();
    assert_eq!(ask(&mut c, "up"), "UP");
    drop(c);
    server.stop(Duration::from_secs(1));
    assert!(refused(addr), "nothing listens after stop");
    assert_eq!(server.local_addr().unwrap(), addr, "still known");
}

#[test]
fn refuses_connections_after_close_while_handlers_go_on() {
    let server = StreamServer::new("127.0.0.1:0", |mut conn: TcpStream, _| {
        green::sleep(Duration::from_millis(50));
        let _ = conn.write_all(b"late");
    });
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    until("the handler", || server.connections() == 1);
    server.close();
    assert!(server.closed() && !server.started());
    assert!(refused(addr), "refused at once after close");
    let mut reply = [0u8; 4];
    c.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"late", "close lets the running handler finish");
    until("the handler to end", || server.connections() == 0);
}

#[test]
fn a_server_made_with_a_listener_serves_what_queued_before_start() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = StreamServer::new(listener, upper);
    assert_eq!(server.local_addr().unwrap(), addr, "known before start");
    // The listener listens already: the kernel queues this connection.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"queued").unwrap();
    server.start().unwrap();
    let mut reply = [0u8; 6];
    c.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"QUEUED");
    drop(c);
    server.stop(Duration::from_secs(1));
    assert!(refused(addr));
}

#[test]
fn stop_waits_for_handlers_then_kills_the_rest() {
    struct OnDrop(Rc<Cell<bool>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let unwound = Rc::new(Cell::new(false));
    let u = unwound.clone();
    let server = StreamServer::new("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut first = [0u8; 1];
        if conn.read_exact(&mut first).is_err() {
            return;
        }
        if &first == b"q" {
            // Quick: done well within the grace period.
            green::sleep(Duration::from_millis(20));
            let _ = conn.write_all(b"done");
        } else {
            // Slow: would never end by itself.
            let _guard = OnDrop(u.clone());
            green::sleep(Duration::from_secs(3600));
            let _ = conn.write_all(b"never");
        }
    });
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let mut quick = TcpStream::connect(addr).unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    quick.write_all(b"q").unwrap();
    slow.write_all(b"s").unwrap();
    until("both handlers", || server.connections() == 2);
    let grace = Duration::from_millis(200);
    let t = Instant::now();
    server.stop(grace);
    let took = t.elapsed();
    assert!(took >= grace, "stop gave the grace period: {took:?}");
    assert!(took < Duration::from_secs(30), "then killed: {took:?}");
    assert_eq!(server.connections(), 0, "all gone when stop returns");
    assert!(
        unwound.get(),
        "the killed handler unwound (its destructors ran)"
    );
    let mut reply = [0u8; 4];
    quick.read_exact(&mut reply).unwrap();
    assert_eq!(
        &reply, b"done",
        "the quick handler finished in the grace period"
    );
    let mut rest = Vec::new();
    let n = slow.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "the killed handler's connection is closed unanswered");
    server.stop(grace); // twice: nothing left to wait for
    assert!(server.closed());
}

#[test]
fn stop_returns_as_soon_as_the_handlers_end() {
    let server = StreamServer::new("127.0.0.1:0", |_conn, _| {
        green::sleep(Duration::from_millis(10));
    });
    server.start().unwrap();
    let _c = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    until("the handler", || server.connections() == 1);
    let t = Instant::now();
    server.stop(Duration::from_secs(60));
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "did not wait out the grace"
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn max_connections_stops_accepting_while_full() {
    const LIMIT: usize = 2;
    const CLIENTS: usize = 6;
    let release = green::Event::new();
    let r = release.clone();
    let running = Rc::new(Cell::new(0usize));
    let most = Rc::new(Cell::new(0usize));
    let (run, m) = (running.clone(), most.clone());
    let server = StreamServer::new("127.0.0.1:0", move |mut conn: TcpStream, _| {
        run.set(run.get() + 1);
        m.set(m.get().max(run.get()));
        r.wait().unwrap();
        let _ = conn.write_all(b"ok");
        run.set(run.get() - 1);
    })
    .max_connections(LIMIT);
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    // Every connect completes (the kernel queues what the server does not accept).
    let mut conns: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    until("the first handlers", || server.connections() == LIMIT);
    green::sleep(Duration::from_millis(50));
    assert_eq!(server.connections(), LIMIT, "no accept while full");
    release.set();
    for c in &mut conns {
        let mut reply = [0u8; 2];
        c.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"ok", "queued, not dropped");
    }
    assert_eq!(most.get(), LIMIT, "never more than the limit at once");
    server.stop(Duration::from_secs(1));
}

#[test]
fn the_backlog_bounds_the_queue_while_the_server_is_full() {
    const BACKLOG: u32 = 2;
    const CLIENTS: usize = 12;
    let server = StreamServer::new("127.0.0.1:0", |_conn, _| {
        green::sleep(Duration::from_secs(3600));
    })
    .max_connections(1)
    .backlog(BACKLOG);
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let first = TcpStream::connect(addr).unwrap();
    until("the one handler", || server.connections() == 1);
    // The server accepts no more: the kernel queues up to about the backlog (Linux
    // takes one more than it), and leaves the other handshakes unanswered.
    let mut connected = Vec::new();
    for _ in 0..CLIENTS {
        if let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            connected.push(c);
        }
    }
    assert!(
        connected.len() >= BACKLOG as usize && connected.len() <= BACKLOG as usize + 2,
        "{} of {CLIENTS} connects completed with a backlog of {BACKLOG}",
        connected.len()
    );
    drop(first);
    server.stop(Duration::ZERO);
}

#[test]
fn start_reports_errors_instead_of_panicking() {
    let a = StreamServer::new("127.0.0.1:0", upper);
    a.start().unwrap();
    let taken = a.local_addr().unwrap();

    let b = StreamServer::new(taken, upper);
    assert_eq!(b.start().unwrap_err().kind(), ErrorKind::AddrInUse);
    assert!(!b.started() && !b.closed());
    a.stop(Duration::from_secs(1));
    b.start().unwrap(); // the same server, once the port is free
    let mut c = TcpStream::connect(taken).unwrap();
    assert_eq!(ask(&mut c, "again"), "AGAIN");
    drop(c);

    assert!(b.start().is_err(), "already started");
    b.stop(Duration::from_secs(1));
    assert!(b.start().is_err(), "a closed server does not start again");
    assert!(b.serve_forever().is_err());

    let zero = StreamServer::new("127.0.0.1:0", upper).max_connections(0);
    assert_eq!(zero.start().unwrap_err().kind(), ErrorKind::InvalidInput);
    let no_port = StreamServer::new("127.0.0.1", upper);
    assert_eq!(no_port.start().unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        no_port.start().unwrap_err().kind(),
        ErrorKind::InvalidInput,
        "the same error again"
    );
}

#[test]
fn a_panicking_handler_is_logged_and_the_server_goes_on() {
    log_capture::install(log::LevelFilter::Warn);
    let server = StreamServer::new("127.0.0.1:0", |conn: TcpStream, peer| {
        let mut first = [0u8; 1];
        if (&conn).read_exact(&mut first).is_ok() && &first == b"!" {
            panic!("handler boom");
        }
        (&conn).write_all(b"fine").unwrap();
        upper(conn, peer);
    });
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let mut bad = TcpStream::connect(addr).unwrap();
    bad.write_all(b"!").unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        bad.read_to_end(&mut rest).unwrap_or(0),
        0,
        "closed by the panic"
    );
    until("the panic to be logged", || {
        log_capture::logged("handler boom") > 0
    });
    let mut good = TcpStream::connect(addr).unwrap();
    good.write_all(b".").unwrap();
    let mut reply = [0u8; 4];
    good.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"fine", "the server goes on");
    assert!(server.started());
    drop(good);
    server.stop(Duration::from_secs(1));
}

#[test]
fn serve_forever_returns_once_a_handler_stops_the_server() {
    let slot: Rc<std::cell::RefCell<Option<StreamServer>>> = Rc::default();
    let s = slot.clone();
    let server = StreamServer::new("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut cmd = [0u8; 4];
        if conn.read_exact(&mut cmd).is_ok() && &cmd == b"quit" {
            let server = s.borrow().clone();
            if let Some(server) = server {
                // The caller is a handler: stop neither waits for nor kills it.
                server.stop(Duration::from_secs(60));
                let _ = conn.write_all(b"bye!");
            }
        }
    });
    *slot.borrow_mut() = Some(server.clone());
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let client = green::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"quit").unwrap();
        let mut reply = [0u8; 4];
        c.read_exact(&mut reply).unwrap();
        reply
    });
    let t = Instant::now();
    server.serve_forever().unwrap();
    assert!(t.elapsed() < Duration::from_secs(30));
    assert!(server.closed());
    assert_eq!(server.connections(), 0);
    assert_eq!(&client.join().unwrap(), b"bye!");
    assert!(refused(addr));
    slot.borrow_mut().take();
}

#[test]
fn killing_serve_forever_closes_the_server_and_kills_its_handlers() {
    let server = StreamServer::new("127.0.0.1:0", |_conn, _| {
        green::sleep(Duration::from_secs(3600));
    });
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let s = server.clone();
    let serving = green::spawn(move || s.serve_forever());
    let _c = TcpStream::connect(addr).unwrap();
    until("the handler", || server.connections() == 1);
    serving.kill();
    assert!(server.closed());
    assert!(refused(addr));
    until("the handler to be killed", || server.connections() == 0);
}

#[test]
fn dropping_the_last_handle_closes_the_server() {
    let server = StreamServer::new("127.0.0.1:0", upper);
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    drop(server);
    assert!(refused(addr));
}

#[test]
fn the_debug_form_tells_the_state() {
    let server = StreamServer::new("127.0.0.1:0", upper).max_connections(3);
    let text = format!("{server:?}");
    assert!(text.contains("New") && text.contains("Some(3)"), "{text}");
    server.start().unwrap();
    assert!(format!("{server:?}").contains("Started"));
    server.close();
    assert!(format!("{server:?}").contains("Closed"));
}
