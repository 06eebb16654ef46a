//! The seeds' gevent echo server ("TCP服务端通过协程实现并发"), written with plain
//! `std::net::TcpListener`/`TcpStream`: no `green::net` import. `green` is used only
//! for `spawn` and `monkey::patch_all()`; after the patch, every `accept`, `read` and
//! `write` below parks its greenlet instead of blocking the thread, so one thread serves
//! all the clients. Replies are upper-cased; a reset or EOF ends a connection.
//!
//! Run the server: `cargo run --release --example monkey_echo_server -- --addr 127.0.0.1:8080`
//! (add `--quiet` to stop printing every message, as the seeds do).
//!
//! Self-test: `cargo run --release --example monkey_echo_server -- --self-test 400
//! --duration 3` runs 400 std-client greenlets (the seeds' 400 client threads) against
//! the server in the same thread for 3 s, prints messages/s and errors, and exits.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// `talk(conn)`: echo upper-cased until EOF or a reset.
fn talk(mut conn: TcpStream, quiet: bool, live: Rc<Cell<usize>>, peak: Rc<Cell<usize>>) {
    live.set(live.get() + 1);
    peak.set(peak.get().max(live.get()));
    let mut data = [0u8; 1024];
    loop {
        match conn.read(&mut data) {
            Ok(0) => break,
            Ok(n) => {
                if !quiet {
                    println!("{}", String::from_utf8_lossy(&data[..n]));
                }
                data[..n].make_ascii_uppercase();
                if let Err(e) = conn.write_all(&data[..n]) {
                    println!("{e}");
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                println!("{e}");
                break;
            }
            Err(e) => {
                eprintln!("read: {e}");
                break;
            }
        }
    }
    live.set(live.get() - 1);
    // `conn` is closed here, like the seeds' `conn.close()`.
}

/// `server1()`: accept forever (or until `stop` is set), one greenlet per connection.
fn server1(server: TcpListener, quiet: bool, stop: Rc<Cell<bool>>, peak: Rc<Cell<usize>>) {
    let live = Rc::new(Cell::new(0));
    loop {
        match server.accept() {
            Ok(_) if stop.get() => break,
            Ok((conn, _addr)) => {
                let (live, peak) = (live.clone(), peak.clone());
                green::spawn(move || talk(conn, quiet, live, peak));
            }
            Err(e) => {
                // EMFILE and friends: report, and keep serving (the patched `accept`
                // waited before failing, so this loop does not spin).
                eprintln!("accept: {e}");
                if e.raw_os_error() == Some(libc::ECANCELED) {
                    break; // this greenlet was killed inside `accept`
                }
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    messages: Cell<u64>,
    errors: Cell<u64>,
    connected: Cell<usize>,
}

/// The seeds' client, as a greenlet: send `"client-i n"`, read the upper-cased reply.
fn client(i: usize, addr: SocketAddr, until: Instant, stats: Rc<Stats>) {
    let mut c = match TcpStream::connect(addr) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("client {i}: connect: {e}");
            stats.errors.set(stats.errors.get() + 1);
            return;
        }
    };
    stats.connected.set(stats.connected.get() + 1);
    let mut res = [0u8; 1024];
    let mut n = 0u64;
    while Instant::now() < until {
        let data = format!("client-{i} {n}");
        let ok = c.write_all(data.as_bytes()).is_ok()
            && c.read_exact(&mut res[..data.len()]).is_ok()
            && res[..data.len()] == *data.to_ascii_uppercase().as_bytes();
        if !ok {
            stats.errors.set(stats.errors.get() + 1);
            return;
        }
        stats.messages.set(stats.messages.get() + 1);
        n += 1;
    }
}

fn threads_in_process() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|t| t.trim().to_string()))
        })
        .unwrap_or_else(|| "?".into())
}

fn self_test(server: TcpListener, clients: usize, duration: Duration) {
    let addr = server.local_addr().expect("local_addr");
    let stop = Rc::new(Cell::new(false));
    let peak = Rc::new(Cell::new(0));
    let g1 = {
        let (stop, peak) = (stop.clone(), peak.clone());
        green::spawn(move || server1(server, true, stop, peak))
    };
    let stats = Rc::new(Stats::default());
    let start = Instant::now();
    let until = start + duration;
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let stats = stats.clone();
            green::spawn(move || client(i, addr, until, stats))
        })
        .collect();
    // Sample the thread count while everything runs.
    std::thread::sleep(duration / 2); // patched: the main greenlet parks, the hub runs
    let threads = threads_in_process();
    for r in green::joinall(handles) {
        if let Err(e) = r {
            eprintln!("a client failed: {e}");
            stats.errors.set(stats.errors.get() + 1);
        }
    }
    let took = start.elapsed();
    // Wake the acceptor with one last connection and let it stop.
    stop.set(true);
    drop(TcpStream::connect(addr));
    if let Err(e) = g1.join() {
        eprintln!("the acceptor failed: {e}");
    }
    let m = stats.messages.get();
    println!(
        "self-test: {clients} std clients ({} connected), peak {} concurrent connections, \
         {threads} OS thread(s)",
        stats.connected.get(),
        peak.get()
    );
    println!(
        "{m} messages in {:.2} s: {:.0} messages/s, {} errors",
        took.as_secs_f64(),
        m as f64 / took.as_secs_f64(),
        stats.errors.get()
    );
}

fn usage() -> ! {
    eprintln!(
        "usage: monkey_echo_server [--addr HOST:PORT] [--quiet] \
         [--self-test N [--duration SECS]]"
    );
    std::process::exit(2)
}

fn main() {
    let mut addr: Option<String> = None;
    let mut quiet = false;
    let mut self_test_clients = None;
    let mut duration = Duration::from_secs(3);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = Some(args.next().unwrap_or_else(|| usage())),
            "--quiet" => quiet = true,
            "--self-test" | "--clients" => {
                let n = args.next().and_then(|n| n.parse().ok());
                self_test_clients = Some(n.unwrap_or_else(|| usage()));
            }
            "--duration" => {
                let s: f64 = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| usage());
                duration = Duration::from_secs_f64(s);
            }
            _ => usage(),
        }
    }

    // `from gevent import monkey; monkey.patch_all()`: first thing, before any socket.
    green::monkey::patch_all();

    // The self-test picks a free port unless told otherwise.
    let default = if self_test_clients.is_some() {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:8080"
    };
    let addr = addr.as_deref().unwrap_or(default);
    let server = match TcpListener::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bind {addr}: {e}");
            std::process::exit(1)
        }
    };

    match self_test_clients {
        Some(n) => self_test(server, n, duration),
        None => {
            println!("echo server on {}", server.local_addr().unwrap());
            let never = Rc::new(Cell::new(false));
            let g1 = green::spawn(move || server1(server, quiet, never, Rc::default()));
            if let Err(e) = g1.join() {
                eprintln!("the acceptor failed: {e}");
            }
        }
    }
}
