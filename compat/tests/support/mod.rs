//! What the compatibility tests share: the patch and the logger, a ticker greenlet
//! that measures how long the hub was kept from switching, the check for a test server,
//! a small HTTP server in greenlets, and the concurrency check.
#![allow(dead_code)] // each test file uses a part

#[path = "../../../tests/support/log_capture.rs"]
mod log_capture;
#[path = "../../../tests/support/ticker.rs"]
mod ticker;

#[allow(unused_imports)] // each test file uses a part
pub use ticker::{MAX_GAP, Ticker, ticker};

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Turns on everything `patch_all` patches (idempotent).
pub fn patch() {
    green::monkey::patch_all();
}

/// Installs the logger (every record from debug up) and patches everything: first
/// thing in a test that checks what is logged.
pub fn setup() {
    log_capture::install(log::LevelFilter::Debug);
    patch();
}

/// Whether a logged message contains every one of `words`.
pub fn logged(words: &[&str]) -> bool {
    log_capture::lines()
        .iter()
        .any(|l| words.iter().all(|w| l.text.contains(w)))
}

/// Whether a server answers on 127.0.0.1:`port`. Under CI (`CI` set) it must: the CI
/// script starts it, so a missing one fails the test. Elsewhere the test says it skips.
pub fn server_answers(what: &str, port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let up = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok();
    if !up {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} does not answer on {addr}; .ci/run starts it under CI"
        );
        eprintln!("skipped: no {what} answers on {addr} (.ci/run starts one)");
    }
    up
}

/// Joins every greenlet; their values, in order (a failed one fails the test).
pub fn join_all<T: 'static>(handles: Vec<green::JoinHandle<T>>) -> Vec<T> {
    green::joinall(handles)
        .into_iter()
        .map(|r| r.expect("the greenlet returned"))
        .collect()
}

/// Asserts that `n` operations of `each` took much less than done one after the other
/// (a quarter of it: the margin is wide, the machine is shared).
pub fn assert_concurrent(what: &str, total: Duration, n: u32, each: Duration) {
    let serial = each * n;
    eprintln!("{what}: {n} in {total:?} (serially at least {serial:?})");
    assert!(
        total < serial / 4,
        "{what}: {n} operations of {each:?} took {total:?}: not concurrent (serial {serial:?})"
    );
}

/// An HTTP/1.1 server on its own thread, in greenlets of that thread's hub (std
/// sockets under the patch): answers every request with `ok` after `delay`, one
/// greenlet per connection, keep-alive. Runs until the process ends.
pub fn http_server(delay: Duration) -> SocketAddr {
    let l = {
        green::monkey::patch_all();
        TcpListener::bind("127.0.0.1:0").unwrap()
    };
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let acceptor = green::spawn(move || {
            loop {
                let Ok((conn, _)) = l.accept() else { continue };
                green::spawn(move || serve(conn, delay));
            }
        });
        let _ = acceptor.join();
    });
    addr
}

fn serve(conn: TcpStream, delay: Duration) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        // The request line and headers.
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.to_ascii_lowercase();
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        if std::io::Read::read_exact(&mut r, &mut body).is_err() {
            return;
        }
        std::thread::sleep(delay); // patched: parks this greenlet
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
        if out.write_all(reply).is_err() {
            return;
        }
    }
}

/// Accepts `n` connections on `l`, each served by `serve` in a greenlet of its own; the
/// handle ends when all of them are served.
pub fn serve_n(
    l: TcpListener,
    n: u32,
    serve: impl Fn(TcpStream) + Clone + 'static,
) -> green::JoinHandle<()> {
    green::spawn(move || {
        let mut conns = Vec::new();
        for _ in 0..n {
            let (s, _) = l.accept().unwrap();
            let serve = serve.clone();
            conns.push(green::spawn(move || serve(s)));
        }
        for r in green::joinall(conns) {
            r.unwrap();
        }
    })
}

/// Runs `client(i)` for every `i` below `n`, each in a greenlet, all at once; returns
/// their results in order and how long they took together.
pub fn clients<R: 'static>(
    n: u32,
    client: impl Fn(u32) -> R + Clone + 'static,
) -> (Vec<R>, Duration) {
    let t = std::time::Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            green::spawn(move || client(i))
        })
        .collect();
    let out = green::joinall(hs).into_iter().map(|r| r.unwrap()).collect();
    (out, t.elapsed())
}
