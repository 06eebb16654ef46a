//! tiny_http served the gevent way: one greenlet `recv()`s (tiny_http waits on a
//! `Condvar` for its connection threads), a greenlet per request handles it with a
//! patched 100 ms sleep; 50 clients at once.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn fifty_concurrent_requests_served_by_greenlets() {
    support::setup();
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let addr = server.server_addr().to_ip().unwrap();
    let n = 50;
    let s = server.clone();
    let dispatcher = green::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..n {
            let req = s.recv().unwrap(); // a Condvar wait: parks this greenlet
            handlers.push(green::spawn(move || {
                thread::sleep(Duration::from_millis(100)); // patched: parks this greenlet
                let body = format!("hello {}", req.url());
                req.respond(tiny_http::Response::from_string(body)).unwrap();
            }));
        }
        for r in green::joinall(handlers) {
            r.unwrap();
        }
    });
    let t = Instant::now();
    let clients: Vec<_> = (0..n)
        .map(|i| thread::spawn(move || get(addr, &format!("/{i}"))))
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let reply = c.join().unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with(&format!("hello /{i}")), "{reply}");
    }
    let took = t.elapsed();
    dispatcher.join().unwrap();
    support::assert_concurrent("tiny_http requests", took, n, Duration::from_millis(100));
}
