//! Name resolution on a helper thread.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream, lookup_host};

#[test]
fn resolves_localhost() {
    let addrs = lookup_host("localhost:8080").unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080),
        "{addrs:?}"
    );
    // And connecting by name works, trying each address.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let client = green::spawn(move || {
        let mut c = TcpStream::connect(("localhost", port)).or_else(|_| {
            TcpStream::connect(("127.0.0.1", port)) // localhost may name ::1 first only
        })?;
        c.write_all(b"x")
    });
    let (mut s, _) = l.accept().unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    client.join().unwrap().unwrap();
}

#[test]
fn invalid_name_is_an_error_quickly() {
    let t = Instant::now();
    let err = lookup_host(("no-such-host.invalid", 80)).unwrap_err();
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    let err = TcpStream::connect("no-such-host.invalid:80").unwrap_err();
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(20));
    // Malformed input is InvalidInput, without a lookup.
    assert_eq!(
        lookup_host("no port here").unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
}

#[test]
fn literals_resolve_in_place() {
    let a = lookup_host("127.0.0.1:5").unwrap();
    assert_eq!(a, ["127.0.0.1:5".parse().unwrap()]);
    let a = lookup_host(("::1", 5)).unwrap();
    assert_eq!(a, ["[::1]:5".parse().unwrap()]);
}

#[test]
fn other_greenlets_run_during_a_lookup() {
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let r2 = ran.clone();
    let other = green::spawn(move || r2.set(true));
    // Spawned greenlets run only when the main one blocks: the lookup parks it on a
    // helper thread, so `other` has run by the time the lookup returns.
    lookup_host(("localhost", 1)).unwrap();
    assert!(ran.get(), "the lookup blocked the thread");
    other.join().unwrap();
}
