//! UDP and Unix-domain sockets.

use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use green::net::{UdpSocket, UnixListener, UnixStream};

#[path = "common/unix_backlog.rs"]
mod unix_backlog;

use unix_backlog::{backlog_zero_listener, delayed_acceptor};

#[test]
fn udp_round_trip() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let echo = green::spawn(move || {
        let mut buf = [0u8; 1500];
        for _ in 0..10 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server
                .send_to(&buf[..n].to_ascii_uppercase(), from)
                .unwrap();
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 1500];
    for i in 0..10 {
        let msg = format!("datagram {i}");
        client.send(msg.as_bytes()).unwrap();
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg.to_uppercase().as_bytes());
    }
    echo.join().unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let err = client.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[test]
fn unix_listener_and_pair() {
    let path = std::env::temp_dir().join(format!("green-net-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let server = green::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..20 {
            let (mut s, _) = l.accept().unwrap();
            handlers.push(green::spawn(move || {
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).unwrap();
                s.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
            }));
        }
        green::joinall(handlers);
    });
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let p = path.clone();
            green::spawn(move || {
                let mut c = UnixStream::connect(&p).unwrap();
                let msg = format!("unix {i}");
                c.write_all(msg.as_bytes()).unwrap();
                let mut buf = vec![0u8; msg.len()];
                c.read_exact(&mut buf).unwrap();
                assert_eq!(buf, msg.to_uppercase().as_bytes());
            })
        })
        .collect();
    for r in green::joinall(clients) {
        r.unwrap();
    }
    server.join().unwrap();
    std::fs::remove_file(&path).unwrap();

    let (a, b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let a2 = a.clone();
    let reader = green::spawn(move || (&*a2).read(&mut [0u8; 4]));
    green::sleep(Duration::from_millis(10));
    a.close();
    assert_eq!(
        reader.join().unwrap().unwrap_err().kind(),
        ErrorKind::ConnectionAborted
    );
    drop(b);
}

/// `UnixStream::connect` to a listener whose backlog is full retries after naps (the
/// kernel gives no readiness to park on) until the listener accepts, and other greenlets
/// run while it waits.
#[test]
fn unix_connect_to_a_full_backlog_waits_for_room_cooperatively() {
    use std::time::Instant;
    let (l, path) = backlog_zero_listener("net-backlog");
    let acceptor = delayed_acceptor(l, Duration::from_millis(200), 3);
    let ticks = Rc::new(std::cell::Cell::new(0u32));
    let t2 = ticks.clone();
    let ticker = green::spawn(move || {
        for _ in 0..10 {
            green::sleep(Duration::from_millis(10));
            t2.set(t2.get() + 1);
        }
    });
    let p2 = path.clone();
    let t = Instant::now();
    let conns = green::spawn(move || {
        (0..3)
            .map(|_| UnixStream::connect(&p2).map_err(|e| e.kind()))
            .collect::<Result<Vec<_>, _>>()
    })
    .join()
    .unwrap();
    let took = t.elapsed();
    let ticks_during = ticks.get();
    ticker.join().unwrap();
    let accepted = acceptor.join().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(conns.expect("connects wait for room").len(), 3);
    assert_eq!(accepted.len(), 3);
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(
        ticks_during >= 5,
        "other greenlets ran only {ticks_during} times"
    );
}
