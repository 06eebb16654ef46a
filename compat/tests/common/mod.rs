//! What the compatibility tests share: a logger that keeps the messages, a small HTTP
//! server in greenlets, and the concurrency check.
#![allow(dead_code)] // each test binary uses a part

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// Messages logged so far (every level), oldest first.
pub static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Keep;

impl log::Log for Keep {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        let line = format!("{} {}", r.level(), r.args());
        if r.level() <= log::Level::Warn {
            eprintln!("{line}");
        }
        LOGGED.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    fn flush(&self) {}
}

/// Patches everything (first thing in every test) and installs the logger.
pub fn setup() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&Keep).expect("logger");
        log::set_max_level(log::LevelFilter::Debug);
    });
    green::monkey::patch_all();
}

/// Whether a logged message contains every one of `words`.
pub fn logged(words: &[&str]) -> bool {
    LOGGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|m| words.iter().all(|w| m.contains(w)))
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

/// A greenlet that counts 5 ms ticks until told to stop: proof that the hub ran while
/// others waited.
pub fn ticker() -> (std::rc::Rc<std::cell::Cell<bool>>, green::JoinHandle<u32>) {
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let s = stop.clone();
    let h = green::spawn(move || {
        let mut n = 0;
        while !s.get() {
            green::sleep(Duration::from_millis(5));
            n += 1;
        }
        n
    });
    (stop, h)
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
